#!/usr/bin/env bash
# CLIPPO on the synthetic world, CPU: a tiny one-tower ViT trained from scratch on the captions
# rendered as pixels, then VQAv2 and SNLI-VE fine-tuned from that export with the text rendered
# onto the image, and the official evaluations. The world (seed 0) and the VQA / SNLI-VE
# budgets are run-cpu.sh's, so the results compare with CoCa's (docs/results.md).
#
#   examples/synth/run-clippo-cpu.sh OUT_DIR
#
# COCA_CLI overrides the command used (default: cargo run --release -p coca-cli --);
# COCA_SIZE the world (default: tiny); COCA_STEPS the steps of every run (default: configs);
# COCA_DEVICE the device of every run.
set -euo pipefail
if [ $# -ne 1 ]; then
  echo "usage: $0 OUT_DIR" >&2
  exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$1"
out=$(cd "$1" && pwd)
read -r -a coca <<< "${COCA_CLI:-cargo run --release -q -p coca-cli --}"
common=(--set "run.progress=false")
if [ -n "${COCA_DEVICE:-}" ]; then common+=(--set "run.device=\"$COCA_DEVICE\""); fi
if [ -n "${COCA_STEPS:-}" ]; then common+=(--set "train.steps=$COCA_STEPS" --set "train.warmup_steps=0" --set "eval.every=0" --set "checkpoint.every=0"); fi
q() { printf '"%s"' "$1"; }

data=$out/data
if [ ! -f "$out/synth-summary.json" ]; then
  "${coca[@]}" synth --out "$data" --size "${COCA_SIZE:-tiny}" --seed 0 > "$out/synth-summary.json"
fi

"${coca[@]}" finetune pretrain --config "$here/cpu-clippo-pretrain.toml" "${common[@]}" \
  --set "data.karpathy=$(q "$data/coco/dataset_coco.json")" --set "data.images=$(q "$data/coco/images")" \
  --set "run.out_dir=$(q "$out/clippo-pretrain")" > "$out/clippo-pretrain.summary.json"
from=(--set "model.id=$(q "$out/clippo-pretrain/export")")

"${coca[@]}" finetune vqa --config "$here/cpu-clippo-vqa.toml" "${common[@]}" "${from[@]}" \
  --set "data.train.questions=$(q "$data/vqa/v2_OpenEnded_mscoco_train2014_questions.json")" \
  --set "data.train.annotations=$(q "$data/vqa/v2_mscoco_train2014_annotations.json")" \
  --set "data.train.images=$(q "$data/coco/images")" \
  --set "data.val.questions=$(q "$data/vqa/v2_OpenEnded_mscoco_val2014_questions.json")" \
  --set "data.val.annotations=$(q "$data/vqa/v2_mscoco_val2014_annotations.json")" \
  --set "data.val.images=$(q "$data/coco/images")" \
  --set "run.out_dir=$(q "$out/clippo-vqa")" > "$out/clippo-vqa.summary.json"
"${coca[@]}" evaluate vqa --json --questions "$data/vqa/v2_OpenEnded_mscoco_val2014_questions.json" \
  --annotations "$data/vqa/v2_mscoco_val2014_annotations.json" --results "$out/clippo-vqa/results_vqa.json" \
  > "$out/clippo-vqa/official_eval.json"

"${coca[@]}" finetune snli-ve --config "$here/cpu-clippo-snli-ve.toml" "${common[@]}" "${from[@]}" \
  --set "data.train=$(q "$data/snli-ve/snli_ve_train.jsonl")" --set "data.val=$(q "$data/snli-ve/snli_ve_dev.jsonl")" \
  --set "data.images=$(q "$data/snli-ve/flickr30k-images")" --set "run.out_dir=$(q "$out/clippo-snli-ve")" \
  > "$out/clippo-snli-ve.summary.json"
"${coca[@]}" evaluate snli-ve --json --data "$data/snli-ve/snli_ve_dev.jsonl" \
  --predictions "$out/clippo-snli-ve/predictions_snli_ve.jsonl" > "$out/clippo-snli-ve/official_eval.json"

echo "done: $out/clippo-*/metrics.json" >&2
