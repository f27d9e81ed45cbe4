#!/usr/bin/env bash
# On a lent GPU: train the default preset's motion Actor from a compact speech bank (xstreamer data compact), as the
# shipped weights were trained (docs/default-model.md). Here first: bash scripts/gpu_wheels.sh, and put the bank in
# a carried folder.   Usage: bash scripts/gpu_train_motion.sh BANK OUT MINUTES [extra train args]
set -euo pipefail
cd "$(dirname "$0")/.."
BANK=$1; OUT=$2; MINUTES=$3; shift 3
source scripts/gpu_env.sh
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 -m xstreamer train --what actor --data "$BANK" --preset default --device cuda --out "$OUT/run" \
    --max-minutes "$MINUTES" --no-progress "$@" | tee "$OUT/train.json"
cp "$OUT/run/actor.safetensors" "$OUT/run/loss.jsonl" "$OUT/"
