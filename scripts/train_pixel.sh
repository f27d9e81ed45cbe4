#!/usr/bin/env bash
# Train the pixel model (SmallVAE + Actor: docs/pixel-model.md) on a lent GPU, in pieces of at most ~8 minutes.
#   here:   xstreamer data bank --out .bank/bank.npz --utterances 330 --identities 4000 --seed 1
#   there:  bash scripts/train_pixel.sh vae 2.5      # render the corpus (if absent), train the VAE
#           bash scripts/train_pixel.sh actor 5       # train (or resume) the Actor for 5 minutes
#   env:    CLIPS WORKERS RUN VAE BATCH LR MOUTH_WEIGHT SAMPLER_LEVELS INIT (fine-tune from these Actor weights)
# Results (weights, loss logs and curves) are copied to $OUT (or ./runs/out).
set -euo pipefail
STAGE=$1; MINUTES=${2:-5}
XS="python3 -m xstreamer"
RUN=${RUN:-/tmp/xs_run}; OUTDIR=${OUT:-runs/out}; CORPUS=$RUN/corpus
mkdir -p "$RUN" "$OUTDIR"
if [[ ! -f $CORPUS/manifest.json ]]; then
    $XS data render --bank .bank/bank.npz --out "$CORPUS" --clips "${CLIPS:-2400}" --seed 1 --workers "${WORKERS:-16}" 2>&1 | tail -1
    du -sh "$CORPUS"
fi
case $STAGE in
  vae)
    $XS train --what vae --data "$CORPUS" --preset pixel --out "$RUN/vae" --device cuda --batch 32 \
        --max-minutes "$MINUTES" --resume --no-progress
    cp "$RUN/vae/vae.safetensors" "$RUN/vae/loss.jsonl" "$OUTDIR/" ; cp "$RUN/vae/loss.png" "$OUTDIR/vae_loss.png" || true
    mv "$OUTDIR/loss.jsonl" "$OUTDIR/vae_loss.jsonl" ;;
  actor)
    VAE=${VAE:-$RUN/vae/vae.safetensors}
    $XS train --what actor --data "$CORPUS" --preset pixel --out "$RUN/actor" --vae "$VAE" --device cuda \
        --batch "${BATCH:-32}" --lr "${LR:-3e-4}" --mouth-weight "${MOUTH_WEIGHT:-0}" --sampler-levels "${SAMPLER_LEVELS:-0}" ${INIT:+--init "$INIT"} \
        --max-minutes "$MINUTES" --resume --no-progress
    cp "$RUN/actor/actor.safetensors" "$OUTDIR/"; cp "$RUN/actor/loss.jsonl" "$OUTDIR/actor_loss.jsonl"
    cp "$RUN/actor/loss.png" "$OUTDIR/actor_loss.png" || true ;;
  *) echo "stage: vae | actor" >&2; exit 2 ;;
esac
