#!/usr/bin/env bash
# The paper preset on one GPU with the Actor's token stream and the speech decoder (random weights, timing only):
# run from the repository root on a lent GPU after `bash scripts/gpu_wheels.sh` here (docs/performance.md).
#   bash scripts/gpu_token_stream.sh OUTDIR     (fits one 600 s call: ~550 s at most; GPU_TESTS="tests/..." adds tests)
set -uo pipefail
OUT=${1:-out}
mkdir -p "$OUT"
source scripts/gpu_env.sh
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.txt" 2>&1
python3 -c "import torch, transformers; print(torch.__version__, transformers.__version__)" >> "$OUT/gpu.txt"
B="python3 -m xstreamer bench --preset paper --device cuda --random-weights --seconds ${BENCH_SECONDS:-20} --trials ${BENCH_TRIALS:-3}"
# 1. the paper preset as it ships: the Actor writes and speaks the reply (its tokens decoded by the speech decoder)
timeout ${BENCH_TIMEOUT:-230} $B --json "$OUT/paper-tokens.json" > "$OUT/paper-tokens.txt" 2>&1; echo "tokens rc=$?"
# 2. the Thinker's tokens, text and speech streamed (the earlier path), now with the speech decoder run
timeout ${BENCH_TIMEOUT:-230} $B --actor-tokens off --json "$OUT/paper-thinker.json" > "$OUT/paper-thinker.txt" 2>&1; echo "thinker rc=$?"
# 3. the speech decoder alone, block by block
timeout 50 python3 -m engine_core.bench.speech_decode --device cuda --seconds 12 --replies 3 \
    --json "$OUT/speech-decode.json" > "$OUT/speech-decode.txt" 2>&1; echo "decode rc=$?"
# 4. the GPU tests
timeout 60 python3 -m pytest -q -m gpu -p no:cacheprovider tests/test_actor_tokens.py tests/test_glm4voice_codecs.py \
    ${GPU_TESTS-} \
    > "$OUT/gpu-tests.txt" 2>&1; echo "tests rc=$?"
for f in paper-tokens paper-thinker; do tail -n 75 "$OUT/$f.txt" | grep -E "fps|first_packet_ms |first_speech|actor_tokens|speech_decode|token_forwards|pass_ms |peak|decode_ms|other_ms|thinker_ms|Error|error" ; done
tail -n 3 "$OUT/speech-decode.txt" "$OUT/gpu-tests.txt"
