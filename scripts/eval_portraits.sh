#!/usr/bin/env bash
# The default model on portraits that were not used to tune it (docs/default-model.md, "Any portrait"):
#   two public-domain photos (US government portraits shipped in the face_recognition 1.3.0 sdist's tests),
#   a painting-style rendering of a third (OpenCV's stylization filter), and a built-in character the renderer was
#   not tuned on; plus, for reference, the two photos it was tuned on (matplotlib's and scikit-image's samples).
#   Usage: bash scripts/eval_portraits.sh OUT_DIR [extra `xstreamer eval` args]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:?out dir}; shift || true
PY=${PY:-.venv/bin/python}
mkdir -p "$OUT/faces"
if [[ ! -f $OUT/faces/obama3.jpg ]]; then
    $PY -m pip download -q --no-deps --no-binary :all: face_recognition==1.3.0 -d "$OUT/faces"
    tar -xzf "$OUT"/faces/face_recognition-1.3.0.tar.gz -C "$OUT/faces" --strip-components=3 \
        face_recognition-1.3.0/tests/test_images/obama.jpg face_recognition-1.3.0/tests/test_images/obama2.jpg \
        face_recognition-1.3.0/tests/test_images/obama3.jpg
fi
$PY - "$OUT/faces" <<'PY'
import sys
from pathlib import Path

import cv2
from matplotlib import cbook

out = Path(sys.argv[1])
cv2.imwrite(str(out / "painting.png"), cv2.stylization(cv2.imread(str(out / "obama.jpg")), sigma_s=60, sigma_r=0.45))
hopper = cv2.imread(str(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))
cv2.imwrite(str(out / "grace_hopper.png"), hopper)
try:
    import skimage.data
    cv2.imwrite(str(out / "astronaut.png"), cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR))
except ImportError:
    pass
PY
ASTRONAUT=()
[[ -f $OUT/faces/astronaut.png ]] && ASTRONAUT=("$OUT/faces/astronaut.png")
$PY -m xstreamer eval --model "${MODEL:-default}" --out "$OUT/portraits.json" --frames-png "$OUT/portraits.png" \
    --portraits "$OUT/faces/obama3.jpg" "$OUT/faces/obama2.jpg" "$OUT/faces/painting.png" char:kemi \
    "$OUT/faces/grace_hopper.png" "${ASTRONAUT[@]}" "$@"
