//! Short CPU fine-tuning runs of every task on the synthetic world (tiny model): the loss
//! falls, the official metric is computed, the predictions file is written and reloads; and
//! unreadable images are counted and skipped (or fail the run in strict mode).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use coca_tasks::engine::RunConfig;
use coca_tasks::run::finetune;

use crate::common::tiny_config;

/// The tiny synthetic world, generated once per test binary.
pub fn world() -> &'static Path {
    static WORLD: OnceLock<PathBuf> = OnceLock::new();
    WORLD.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("coca-tasks-world-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        coca_tasks::synth::generate(&dir, 0, coca_tasks::synth::SynthSize::Tiny).unwrap();
        dir
    })
}

fn q(p: PathBuf) -> String {
    format!("\"{}\"", p.display())
}

/// The shared tiny run configuration with this file's batch, schedule and seed.
pub fn config(out: &Path, steps: usize, data: Vec<String>, extra: &[&str]) -> RunConfig {
    let mut overrides = vec![
        "train.batch_size=16",
        "train.warmup_steps=5",
        "train.lr_head=2e-3",
        "train.seed=0",
        "eval.batch_size=64",
    ];
    overrides.extend(data.iter().map(String::as_str));
    overrides.extend_from_slice(extra);
    tiny_config(out, steps, &overrides)
}

pub fn data_for(task: &str) -> Vec<String> {
    let w = world();
    match task {
        "vqa" => vec![
            format!(
                "data.train.questions={}",
                q(w.join("vqa/v2_OpenEnded_mscoco_train2014_questions.json"))
            ),
            format!(
                "data.train.annotations={}",
                q(w.join("vqa/v2_mscoco_train2014_annotations.json"))
            ),
            format!("data.train.images={}", q(w.join("coco/images"))),
            format!(
                "data.val.questions={}",
                q(w.join("vqa/v2_OpenEnded_mscoco_val2014_questions.json"))
            ),
            format!(
                "data.val.annotations={}",
                q(w.join("vqa/v2_mscoco_val2014_annotations.json"))
            ),
            format!("data.val.images={}", q(w.join("coco/images"))),
            "data.min_answer_count=3".into(),
            "task.caption_loss_weight=0.5".into(),
        ],
        "snli-ve" => vec![
            format!("data.train={}", q(w.join("snli-ve/snli_ve_train.jsonl"))),
            format!("data.val={}", q(w.join("snli-ve/snli_ve_dev.jsonl"))),
            format!("data.images={}", q(w.join("snli-ve/flickr30k-images"))),
        ],
        "nlvr2" => vec![
            format!("data.train={}", q(w.join("nlvr2/train.json"))),
            format!("data.val={}", q(w.join("nlvr2/dev.json"))),
            format!("data.images={}", q(w.join("nlvr2/images"))),
        ],
        "caption" | "pretrain" => vec![
            format!("data.karpathy={}", q(w.join("coco/dataset_coco.json"))),
            format!("data.images={}", q(w.join("coco/images"))),
        ],
        "classify" => vec![
            format!("data.train={}", q(w.join("classify/train"))),
            format!("data.val={}", q(w.join("classify/val.csv"))),
        ],
        "video" => vec![
            format!("data.train={}", q(w.join("video/train.csv"))),
            format!("data.val={}", q(w.join("video/val.csv"))),
            format!("data.frames={}", q(w.join("video/frames"))),
        ],
        other => panic!("no synthetic data for {other}"),
    }
}

pub fn losses(run: &Path) -> Vec<f64> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["kind"] == "train")
        .map(|v| v["loss"].as_f64().unwrap())
        .collect()
}

fn run_task(kind: &str, steps: usize, extra: &[&str]) -> (PathBuf, coca_tasks::engine::RunOutcome) {
    let out = std::env::temp_dir().join(format!("coca-tasks-run-{}-{}", kind, std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let outcome = finetune(kind, config(&out, steps, data_for(kind), extra), false).unwrap();
    let l = losses(&out);
    let (first, last) = (
        l[..5].iter().sum::<f64>() / 5.0,
        l[l.len() - 5..].iter().sum::<f64>() / 5.0,
    );
    assert!(
        last < first,
        "{}: loss did not fall ({first} -> {last})",
        kind
    );
    assert!(out.join("metrics.json").is_file() && out.join("export/task.json").is_file());
    (out, outcome)
}

/// `predict` with the exported model of the run in `out`, one config override, into `dir`.
pub fn predict(kind: &str, out: &Path, set: &str, dir: &Path) -> coca_tasks::task::Evaluation {
    coca_tasks::run::predict(kind, out, &[set.to_string()], dir).unwrap()
}

#[test]
fn vqa_trains_and_writes_official_results() {
    let (out, outcome) = run_task("vqa", 40, &[]);
    let acc = outcome.final_metrics["accuracy"];
    assert!((0.0..=100.0).contains(&acc));
    // The results file reloads and scores the same with the official evaluator.
    let w = world();
    let s = coca_tasks::metrics::vqa::evaluate_vqa_files(
        w.join("vqa/v2_OpenEnded_mscoco_val2014_questions.json"),
        w.join("vqa/v2_mscoco_val2014_annotations.json"),
        out.join("results_vqa.json"),
    )
    .unwrap();
    assert!(
        (s.overall - acc).abs() < 0.01 + 1e-9,
        "official {} vs in-run {acc}",
        s.overall
    );
    assert!(out.join("answer_vocab.json").is_file());
    // Prediction with the exported model (and the answer vocabulary of its task.json) scores
    // the annotated split as the run did, without the training files.
    let e = predict(
        "vqa",
        &out,
        "data.train.questions=\"/nonexistent/questions.json\"",
        &out.join("predict-val"),
    );
    assert!((e.metric - acc).abs() < 1e-6, "{} vs {acc}", e.metric);
    // ... and a split without annotations (as test-dev).
    let pred_dir = out.join("predict");
    let e = predict("vqa", &out, "data.val.annotations=\"\"", &pred_dir);
    assert!(e.metric.is_nan() && e.metrics.is_empty());
    let results =
        coca_tasks::metrics::vqa::load_vqa_results(pred_dir.join("results_vqa.json")).unwrap();
    let questions = coca_tasks::metrics::vqa::load_vqa_questions(
        w.join("vqa/v2_OpenEnded_mscoco_val2014_questions.json"),
    )
    .unwrap();
    assert_eq!(results.len(), questions.questions.len());
}

#[test]
fn snli_ve_trains_and_beats_chance() {
    let (out, outcome) = run_task("snli-ve", 60, &[]);
    assert!(
        outcome.final_metrics["accuracy"] > 0.45,
        "{:?}",
        outcome.final_metrics
    );
    let lines = std::fs::read_to_string(out.join("predictions_snli_ve.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 150);
    // `predict` reads only the split it scores: the training file need not exist.
    let pred_dir = out.join("predict");
    let e = predict(
        "snli-ve",
        &out,
        "data.train=\"/nonexistent/snli_ve_train.jsonl\"",
        &pred_dir,
    );
    assert!((e.metric - outcome.final_metrics["accuracy"]).abs() < 1e-9);
    let again = std::fs::read_to_string(pred_dir.join("predictions_snli_ve.jsonl")).unwrap();
    assert_eq!(again, lines);
}

#[test]
fn nlvr2_trains_and_writes_the_csv() {
    // NLVR2 barely moves off ln 2 in a few steps on the whole synthetic world, so the loss
    // check runs on 48 training pairs (10 epochs in 30 steps of 16): it must fall.
    let train: String = std::fs::read_to_string(world().join("nlvr2/train.json"))
        .unwrap()
        .lines()
        .take(48)
        .map(|l| format!("{l}\n"))
        .collect();
    let small =
        std::env::temp_dir().join(format!("coca-nlvr2-train48-{}.json", std::process::id()));
    std::fs::write(&small, train).unwrap();
    let set = format!("data.train={}", q(small.clone()));
    let (out, outcome) = run_task("nlvr2", 30, &[set.as_str()]);
    std::fs::remove_file(small).ok();
    assert!(outcome.final_metrics.contains_key("consistency"));
    let preds =
        coca_tasks::nlvr2::data::read_predictions_csv(&out.join("predictions_nlvr2.csv")).unwrap();
    let dev = std::fs::read_to_string(world().join("nlvr2/dev.json")).unwrap();
    assert_eq!(preds.len(), dev.lines().count());
}

#[test]
fn captioning_trains_and_scores_with_coco_metrics() {
    let (out, outcome) = run_task(
        "caption",
        40,
        &["task.beams=2", "task.max_tokens=8", "task.min_tokens=2"],
    );
    assert!(
        outcome.final_metrics.contains_key("CIDEr") && outcome.final_metrics.contains_key("Bleu_4")
    );
    let results =
        coca_tasks::caption::data::load_results(&out.join("results_caption.json")).unwrap();
    assert_eq!(results.len(), 50);
}

#[test]
fn unreadable_images_are_skipped_or_fatal_in_strict_mode() {
    // A copy of the SNLI-VE split whose first image is corrupt.
    let w = world();
    let dir = std::env::temp_dir().join(format!("coca-tasks-badimg-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let images = dir.join("images");
    std::fs::create_dir_all(&images).unwrap();
    for e in std::fs::read_dir(w.join("snli-ve/flickr30k-images")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), images.join(e.file_name())).unwrap();
    }
    let load = |split: &str| {
        coca_tasks::snli_ve::data::load_snli_ve(
            &w.join(format!("snli-ve/snli_ve_{split}.jsonl")),
            &images,
        )
        .unwrap()
    };
    let first = load("train").examples[0].image.clone();
    let first_dev = load("dev").examples[0].image.clone();
    std::fs::write(&first, b"garbage").unwrap();
    std::fs::write(&first_dev, b"garbage").unwrap();
    let data = vec![
        format!("data.train={}", q(w.join("snli-ve/snli_ve_train.jsonl"))),
        format!("data.val={}", q(w.join("snli-ve/snli_ve_dev.jsonl"))),
        format!("data.images={}", q(images.clone())),
    ];
    let outcome = finetune(
        "snli-ve",
        config(&dir.join("run"), 20, data.clone(), &[]),
        false,
    )
    .unwrap();
    assert_eq!(outcome.steps, 20);
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("run/metrics.json")).unwrap()).unwrap();
    assert!(summary["skipped_images"].as_u64().unwrap() > 0, "{summary}");
    let predicted = std::fs::read_to_string(dir.join("run/predictions_snli_ve.jsonl"))
        .unwrap()
        .lines()
        .count();
    assert!(
        predicted < 150,
        "the corrupt validation image was not skipped"
    );
    let strict = finetune(
        "snli-ve",
        config(&dir.join("strict"), 20, data, &["run.strict=true"]),
        false,
    );
    let e = strict.unwrap_err().to_string();
    let name = first.file_name().unwrap().to_string_lossy().to_string();
    assert!(e.contains(&name) && e.contains("strict"), "{e}");
}

/// `classify` and `video` through the registry as a user drives them: finetune from the
/// run config, predict with the export, and score the predictions file with `evaluate`.
#[test]
fn classify_and_video_train_predict_and_evaluate_through_the_registry() {
    let w = world();
    for (task, labels, file, extra) in [
        (
            "classify",
            w.join("classify/val.csv"),
            "predictions_classify.csv",
            vec!["train.lr_head=1e-2"],
        ),
        (
            "video",
            w.join("video/val.csv"),
            "predictions_video.csv",
            vec!["train.lr_head=1e-2", "task.frames=4", "train.batch_size=4"],
        ),
    ] {
        let (out, outcome) = run_task(task, 30, &extra);
        let acc = outcome.final_metrics["accuracy"];
        for key in ["top5", "mean_class_accuracy"] {
            assert!(outcome.final_metrics.contains_key(key), "{task}: no {key}");
        }
        assert!(out.join(file).is_file(), "{task}: {file} missing");
        let e = predict(
            task,
            &out,
            "data.train=\"/nonexistent\"",
            &out.join("predict"),
        );
        assert!(
            (e.metric - acc).abs() < 1e-9,
            "{task}: {} vs {acc}",
            e.metric
        );
        let spec = coca_tasks::registry::find(task).unwrap();
        let mut files = coca_tasks::registry::EvalFiles::default();
        files.0.insert("data".into(), labels);
        files
            .0
            .insert("predictions".into(), out.join("predict").join(file));
        let report = spec.evaluate_files(&files).unwrap();
        let scored = report.json["accuracy"].as_f64().unwrap();
        assert!(
            (scored - acc).abs() < 1e-9,
            "{task}: evaluate {scored} vs {acc}"
        );
        if task == "classify" {
            assert!(out.join("confusion.png").is_file() && out.join("zero_shot.json").is_file());
        }
    }
}
