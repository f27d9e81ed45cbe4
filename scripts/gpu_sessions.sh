#!/usr/bin/env bash
# Many sessions of the paper preset on one GPU (random weights, timing only): 1, 2, 4, 8 sessions chatting at once
# through a real daemon, as their SDK clients see them (engine_core/daemon/bench_sessions.py; docs/performance.md,
# "Many sessions"). Run from the repository root on a lent GPU after `bash scripts/gpu_wheels.sh` here.
#   bash scripts/gpu_sessions.sh OUTDIR     (one call: ~5 min; SESSIONS, SECONDS_PER_COUNT, BENCH_TIMEOUT override)
set -uo pipefail
OUT=${1:-out}
mkdir -p "$OUT"
source scripts/gpu_env.sh
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.txt" 2>&1
python3 -c "import torch, transformers; print(torch.__version__, transformers.__version__)" >> "$OUT/gpu.txt"
cat "$OUT/gpu.txt"
# the Thinker's tokens, text and speech streamed (--actor-tokens off: the path docs/performance.md measures), the
# speech decoder run; each reply interrupted after 3 s (random weights speak to their token limit)
timeout ${BENCH_TIMEOUT:-330} python3 -m engine_core.daemon.bench_sessions --model paper --device cuda \
    --random-weights --mode chat --sessions ${SESSIONS:-1,2,4,8} --seconds ${SECONDS_PER_COUNT:-15} --reply-s 3 \
    --daemon-args "--actor-tokens off" --log "$OUT/daemon.log" --json "$OUT/paper-sessions.json" \
    2>&1 | tee "$OUT/paper-sessions.txt"
echo "bench rc=${PIPESTATUS[0]}"
grep -E "ERROR|Error|Traceback|one by one|could not" "$OUT/daemon.log" | head -20
nvidia-smi --query-gpu=memory.used --format=csv >> "$OUT/gpu.txt" 2>&1
