#!/usr/bin/env bash
# Runs on the CUDA machine from the repository root, with the bundle of examples/cuda/bundle.sh
# carried (default .device/, holding bundle.tar.gz; an unpacked folder works too). Results go under OUT (default $OUT, else runs/device).
#
#   examples/cuda/device.sh parity|generation|train|all|synth
#
#   parity      the coca-core parity and generation tests on cuda:0 (tolerance 1e-3)
#   generation  captions of 30 tokens, B-32 size, batch 32: cached vs uncached, images/s
#   train       300 steps of a B-32-size CoCa (random init) on the synthetic world, batch 128,
#               f32 then bf16: metrics.jsonl, curves.png, peak GPU memory (nvidia-smi)
#   synth       the synthetic pipeline (examples/synth/run-cpu.sh) with the B-32-size configs
#               on the medium world: pretraining, then the four tasks; COCA_STEPS (default 250)
#               steps per run so that it fits one 10-minute call; metrics, plots and official
#               evaluations under OUT/synth (checkpoints stay in /tmp). Not part of `all`.
#
# COCA_DEVICE (default cuda:0), COCA_BUNDLE (default .device), COCA_TRAIN_STEPS (300),
# COCA_TRAIN_BATCH (128), COCA_SYNTH_SIZE (medium) and COCA_SYNTH_CONFIGS (cuda-b32) change the
# defaults, e.g. to try the script on a CPU build.
set -euo pipefail
what=${1:-all}
bundle=${COCA_BUNDLE:-.device}
dev=${COCA_DEVICE:-cuda:0}
out=${OUT:-runs/device}
mkdir -p "$out"
if [ -f "$bundle/bundle.tar.gz" ]; then
  unpacked=${TMPDIR:-/tmp}/coca-bundle
  rm -rf "$unpacked" && mkdir -p "$unpacked"
  tar -C "$unpacked" -xzf "$bundle/bundle.tar.gz"
  bundle=$unpacked
fi
if [ -f "$bundle/scripts/cuda-env.sh" ] && [ "$dev" != cpu ]; then
  # shellcheck disable=SC1091
  source "$bundle/scripts/cuda-env.sh"
fi
bin=$bundle/bin
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader > "$out/gpu.txt" 2>/dev/null || true

# Samples GPU memory in use every 0.2 s into $1 until the returned pid is killed.
sample_memory() {
  (while true; do
    nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits 2>/dev/null | head -1
    sleep 0.2
  done) > "$1" &
  echo $!
}

parity() {
  COCA_TEST_DEVICE=$dev COCA_FIXTURES=$bundle/fixtures "$bin/core-tests" --test-threads 1 \
    --nocapture parity generation 2>&1 | tee "$out/parity.log"
}

generation() {
  "$bin/bench_generation" --device "$dev" --batch "${COCA_GEN_BATCH:-32}" --tokens 30 \
    --repeats 2 2>&1 | tee "$out/generation.log"
}

train() {
  local world=$out/world
  "$bin/coca-cli" synth --out "$world" --size small --seed 0 > /dev/null
  for precision in f32 bf16; do
    if [ "$precision" = bf16 ] && [ "$dev" = cpu ]; then continue; fi
    local run=$out/train-$precision
    rm -rf "$run"
    local mem steps=${COCA_TRAIN_STEPS:-300} rc=0
    mem=$(sample_memory "$out/memory-$precision.txt")
    "$bin/coca-cli" finetune pretrain --config examples/synth/cuda-b32-pretrain.toml \
      --set "run.device=\"$dev\"" --set "train.precision=\"$precision\"" \
      --set "train.steps=$steps" --set "train.batch_size=${COCA_TRAIN_BATCH:-128}" \
      --set "train.warmup_steps=$((steps / 10))" --set eval.every=0 --set checkpoint.every=0 \
      --set run.progress=false \
      --set "data.karpathy=\"$world/coco/dataset_coco.json\"" --set "data.images=\"$world/coco/images\"" \
      --set "run.out_dir=\"$run\"" > "$out/train-$precision.summary.json" || rc=$?
    kill "$mem" 2>/dev/null || true
    if [ "$rc" -ne 0 ]; then return "$rc"; fi
    python3 - "$run/metrics.jsonl" "$out/memory-$precision.txt" "$precision" <<'PY' | tee -a "$out/train.txt"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"train"' in l]
ips = [r["img_per_s"] for r in rows[len(rows) // 5:]]  # skip the first fifth (warm-up)
mem = [int(x) for x in open(sys.argv[2]).read().split() if x.isdigit()]
print(json.dumps({
    "precision": sys.argv[3], "steps": rows[-1]["step"],
    "img_per_s_median": sorted(ips)[len(ips) // 2] if ips else None,
    "loss_first": rows[0]["loss"], "loss_last": rows[-1]["loss"],
    "peak_gpu_memory_mib": max(mem) if mem else None,
}))
PY
  done
}

synth() {
  local runs=${TMPDIR:-/tmp}/coca-synth start=$SECONDS rc=0
  rm -rf "$runs"
  COCA_CLI=$bin/coca-cli COCA_CONFIGS=${COCA_SYNTH_CONFIGS:-cuda-b32} \
    COCA_SIZE=${COCA_SYNTH_SIZE:-medium} COCA_STEPS=${COCA_STEPS:-250} COCA_DEVICE=$dev \
    examples/synth/run-cpu.sh "$runs" > "$out/synth.log" 2>&1 || rc=$?
  echo "synth: exit $rc after $((SECONDS - start)) s" | tee -a "$out/synth.log"
  mkdir -p "$out/synth"
  cp "$runs"/*.json "$out/synth/" 2>/dev/null || true
  for task in pretrain vqa snli-ve nlvr2 caption; do
    [ -d "$runs/$task" ] || continue
    mkdir -p "$out/synth/$task"
    for f in metrics.json metrics.jsonl curves.png official_eval.json config.toml results_caption.json; do
      [ -f "$runs/$task/$f" ] && cp "$runs/$task/$f" "$out/synth/$task/"
    done
  done
  return "$rc"
}

case $what in
  parity) parity ;;
  generation) generation ;;
  train) train ;;
  synth) synth ;;
  all) parity; generation; train ;;
  *) echo "usage: $0 parity|generation|train|all|synth" >&2; exit 2 ;;
esac
