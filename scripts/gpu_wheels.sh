#!/usr/bin/env bash
# Here, before a lent-GPU run: download (into .whl/, git-ignored) the wheels the GPU image lacks, at the versions
# this machine's .venv runs. On the GPU machine `source scripts/gpu_env.sh` installs them (docs/performance.md).
set -euo pipefail
cd "$(dirname "$0")/.."
PKGS="pyzmq pydantic pydantic_core annotated-types typing-inspection typing_extensions platformdirs gguf diffusers
      importlib_metadata zipp"
PLAT=""
for n in 17 24 26 27 28 31 34 35; do PLAT="$PLAT --platform manylinux_2_${n}_x86_64"; done
mkdir -p .whl
for p in $PKGS; do
    v=$(.venv/bin/python -m pip show "$p" 2>/dev/null | sed -n 's/^Version: //p')
    [[ -n $v ]] || { echo "gpu_wheels: $p is not installed in .venv" >&2; exit 1; }
    .venv/bin/python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux2014_x86_64 $PLAT -d .whl "$p==$v"
done
du -sh .whl
