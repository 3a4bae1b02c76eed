#!/usr/bin/env bash
# A long run for memory and checkpoint stability: continued pretraining of the tiny model on the
# tiny synthetic world (batch 8, checkpoints every 500 steps keeping the last 2, evaluations every
# 1000), with the process's resident memory sampled every 5 s.
#
#   examples/synth/soak.sh OUT_DIR [STEPS]      (default 6000 steps)
#
# COCA_CLI, COCA_DEVICE and COCA_TOKENIZER as for run-cpu.sh. Writes OUT_DIR/run (the run
# directory), OUT_DIR/rss.tsv (seconds, step, RSS in KiB) and prints, per 1000 steps, the
# lowest and highest RSS seen: a leak shows as a rising lowest value.
set -euo pipefail
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  echo "usage: $0 OUT_DIR [STEPS]" >&2
  exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$1"
out=$(cd "$1" && pwd)
steps=${2:-6000}
read -r -a coca <<< "${COCA_CLI:-cargo run --release -q -p coca-cli --}"
tok=${COCA_TOKENIZER:-}
q() { printf '"%s"' "$1"; }
args=(--set "run.progress=false" --set "run.out_dir=$(q "$out/run")" --set "train.steps=$steps"
  --set "train.batch_size=8" --set "train.warmup_steps=100" --set "eval.every=1000"
  --set "checkpoint.every=500" --set "checkpoint.keep_last=2")
if [ -n "$tok" ]; then args+=(--set "model.tokenizer=$(q "$tok")"); fi
if [ -n "${COCA_DEVICE:-}" ]; then args+=(--set "run.device=\"$COCA_DEVICE\""); fi

data=$out/data
[ -f "$data/summary.json" ] || "${coca[@]}" synth --out "$data" --size tiny --seed 0 > /dev/null
rm -rf "$out/run"
"${coca[@]}" finetune pretrain --config "$here/cpu-pretrain.toml" "${args[@]}" \
  --set "data.karpathy=$(q "$data/coco/dataset_coco.json")" --set "data.images=$(q "$data/coco/images")" \
  > "$out/summary.json" &
pid=$!
start=$(date +%s)
: > "$out/rss.tsv"
while kill -0 "$pid" 2> /dev/null; do
  # The training process is the newest coca-cli under $pid (itself, or a child of cargo run).
  p=$(pgrep -n -f "coca-cli.* finetune pretrain" -P "$pid" || echo "$pid")
  rss=$(awk '/VmRSS/{print $2}' "/proc/$p/status" 2> /dev/null || true)
  step=$(tail -n 1 "$out/run/metrics.jsonl" 2> /dev/null | grep -o '"step":[0-9]*' | cut -d: -f2 || true)
  [ -n "$rss" ] && echo "$(($(date +%s) - start)) ${step:-0} $rss" >> "$out/rss.tsv"
  sleep 5
done
wait "$pid"
echo "steps  lowest RSS (MiB)  highest RSS (MiB)"
awk '$2 > 0 { b = int(($2 - 1) / 1000); if (!(b in lo) || $3 < lo[b]) lo[b] = $3; if ($3 > hi[b]) hi[b] = $3 }
  END { for (b in lo) printf "%5d-%-5d %8.0f %8.0f\n", b * 1000 + 1, (b + 1) * 1000, lo[b] / 1024, hi[b] / 1024 }' \
  "$out/rss.tsv" | sort -n
ls "$out/run/checkpoints"
