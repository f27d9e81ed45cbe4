# Source on a lent GPU machine (no registry there): install the carried wheels (.whl/) into /tmp/site.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
  && export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1
# The GPU image's OpenCV (5.x) has no Haar cascades, so the built-in characters' face check cannot run there
# (docs/performance.md). For timing runs only, every Python process started from here (the daemon too) takes
# `identities.face_detected` as true: the gallery characters are fixed and were checked where OpenCV 4 runs.
if ! python3 -c "import cv2; cv2.CascadeClassifier" 2>/dev/null; then
    cat > /tmp/site/sitecustomize.py <<'PY'
import sys
from importlib.abc import MetaPathFinder

NAME = "engine_core.data.synth.identities"


class _FaceCheckOff(MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != NAME:
            return None
        spec = next(s for f in sys.meta_path if f is not self and hasattr(f, "find_spec")
                    for s in [f.find_spec(name, path, target)] if s is not None)
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            module.face_detected = lambda img: True
        spec.loader.exec_module = exec_module
        return spec


sys.meta_path.insert(0, _FaceCheckOff())
print("gpu_env: OpenCV without Haar cascades: the gallery's face check is off (timing run)", file=sys.stderr)
PY
    echo "gpu_env: wrote /tmp/site/sitecustomize.py (face check off)"
fi
