#!/usr/bin/env bash
# The whole tiny pipeline on CPU: synthetic world -> continued CoCa pretraining on its captions
# -> fine-tuning of VQAv2, SNLI-VE, NLVR2 and captioning from that checkpoint -> official
# evaluations. One run directory per task under OUT_DIR, each with its metrics.json.
#
#   examples/synth/run-cpu.sh OUT_DIR
#
# COCA_CLI overrides the command used (default: cargo run --release -p coca-cli --);
# COCA_CONFIGS picks the configuration set (default: cpu; cuda-b32 for the B-32-size model on
# cuda:0, which needs a --features libtorch build); COCA_SIZE the world (default: tiny);
# COCA_TOKENIZER a tokenizer.json to use (default: the CLIP vocabulary built in); COCA_STEPS the steps of every run (default: configs);
# COCA_DEVICE and COCA_PRECISION the device and precision of every run (default: configs), e.g.
# COCA_DEVICE=libtorch-cpu COCA_PRECISION=bf16 with a libtorch build.
set -euo pipefail
if [ $# -ne 1 ]; then
  echo "usage: $0 OUT_DIR" >&2
  exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$1"
out=$(cd "$1" && pwd)
read -r -a coca <<< "${COCA_CLI:-cargo run --release -q -p coca-cli --}"
tok=${COCA_TOKENIZER:-}
common=(--set "run.progress=false")
if [ -n "${COCA_DEVICE:-}" ]; then common+=(--set "run.device=\"$COCA_DEVICE\""); fi
if [ -n "${COCA_PRECISION:-}" ]; then common+=(--set "train.precision=\"$COCA_PRECISION\""); fi
if [ -n "${COCA_STEPS:-}" ]; then common+=(--set "train.steps=$COCA_STEPS" --set "train.warmup_steps=0" --set "eval.every=0" --set "checkpoint.every=0"); fi
q() { printf '"%s"' "$1"; }

data=$out/data
"${coca[@]}" synth --out "$data" --size "${COCA_SIZE:-tiny}" --seed 0 > "$out/synth-summary.json"

configs=${COCA_CONFIGS:-cpu}
pre=()
if [ -n "$tok" ]; then pre+=(--set "model.tokenizer=$(q "$tok")"); fi
"${coca[@]}" finetune pretrain --config "$here/$configs-pretrain.toml" "${common[@]}" "${pre[@]}" \
  --set "data.karpathy=$(q "$data/coco/dataset_coco.json")" --set "data.images=$(q "$data/coco/images")" \
  --set "run.out_dir=$(q "$out/pretrain")" > "$out/pretrain.summary.json"
from=(--set "model.id=$(q "$out/pretrain/export")")

"${coca[@]}" finetune vqa --config "$here/$configs-vqa.toml" "${common[@]}" "${from[@]}" \
  --set "data.train.questions=$(q "$data/vqa/v2_OpenEnded_mscoco_train2014_questions.json")" \
  --set "data.train.annotations=$(q "$data/vqa/v2_mscoco_train2014_annotations.json")" \
  --set "data.train.images=$(q "$data/coco/images")" \
  --set "data.val.questions=$(q "$data/vqa/v2_OpenEnded_mscoco_val2014_questions.json")" \
  --set "data.val.annotations=$(q "$data/vqa/v2_mscoco_val2014_annotations.json")" \
  --set "data.val.images=$(q "$data/coco/images")" \
  --set "run.out_dir=$(q "$out/vqa")" > "$out/vqa.summary.json"
"${coca[@]}" evaluate vqa --json --questions "$data/vqa/v2_OpenEnded_mscoco_val2014_questions.json" \
  --annotations "$data/vqa/v2_mscoco_val2014_annotations.json" --results "$out/vqa/results_vqa.json" \
  > "$out/vqa/official_eval.json"

"${coca[@]}" finetune snli-ve --config "$here/$configs-snli-ve.toml" "${common[@]}" "${from[@]}" \
  --set "data.train=$(q "$data/snli-ve/snli_ve_train.jsonl")" --set "data.val=$(q "$data/snli-ve/snli_ve_dev.jsonl")" \
  --set "data.images=$(q "$data/snli-ve/flickr30k-images")" --set "run.out_dir=$(q "$out/snli-ve")" > "$out/snli-ve.summary.json"
"${coca[@]}" evaluate snli-ve --json --data "$data/snli-ve/snli_ve_dev.jsonl" \
  --predictions "$out/snli-ve/predictions_snli_ve.jsonl" > "$out/snli-ve/official_eval.json"

"${coca[@]}" finetune nlvr2 --config "$here/$configs-nlvr2.toml" "${common[@]}" "${from[@]}" \
  --set "data.train=$(q "$data/nlvr2/train.json")" --set "data.val=$(q "$data/nlvr2/dev.json")" \
  --set "data.images=$(q "$data/nlvr2/images")" --set "run.out_dir=$(q "$out/nlvr2")" > "$out/nlvr2.summary.json"
"${coca[@]}" evaluate nlvr2 --json --data "$data/nlvr2/dev.json" \
  --predictions "$out/nlvr2/predictions_nlvr2.csv" > "$out/nlvr2/official_eval.json"

"${coca[@]}" finetune caption --config "$here/$configs-caption.toml" "${common[@]}" "${from[@]}" \
  --set "data.karpathy=$(q "$data/coco/dataset_coco.json")" --set "data.images=$(q "$data/coco/images")" \
  --set "run.out_dir=$(q "$out/caption")" > "$out/caption.summary.json"

# Tasks that generate their own data (classification, video, ...): `coca-cli synth` wrote
# configs/<task>.toml, their example configuration with [data] filled in. Fine-tuned from the
# pretraining export too.
shopt -s nullglob
for cfg in "$data"/configs/*.toml; do
  task=$(basename "$cfg" .toml)
  "${coca[@]}" finetune "$task" --config "$cfg" "${common[@]}" "${from[@]}" \
    --set "run.out_dir=$(q "$out/$task")" > "$out/$task.summary.json"
done

echo "done: $out/*/metrics.json" >&2
