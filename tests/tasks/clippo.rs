//! The tasks on a CLIPPO backbone (`[model] family = "clippo"`, read off a `.npz` id or a
//! `clippo_*` preset): the same engine, loaders, metrics, export and `predict` as CoCa's.

use std::path::Path;

use coca_core::clippo::npz::read_npz;
use coca_tasks::run::finetune;

use crate::tasks::{config, data_for, losses, predict, world};

/// A short run of `task` on a CLIPPO backbone: the loss falls, the export holds `clippo.npz`
/// and a `task.json` of family `clippo`, and `predict` with the export scores the validation
/// split as the run did.
fn run_clippo(task: &str, steps: usize, extra: &[&str]) -> (std::path::PathBuf, f64) {
    let out = std::env::temp_dir().join(format!("coca-clippo-{task}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let mut sets = vec!["model.preset=\"clippo_tiny\"", "train.lr_backbone=1e-3"];
    sets.extend_from_slice(extra);
    let outcome = finetune(task, config(&out, steps, data_for(task), &sets), false).unwrap();
    let l = losses(&out);
    let (first, last) = (
        l[..5].iter().sum::<f64>() / 5.0,
        l[l.len() - 5..].iter().sum::<f64>() / 5.0,
    );
    assert!(
        last < first,
        "{task}: loss did not fall ({first} -> {last})"
    );
    let export = out.join("export");
    assert!(export.join("clippo.npz").is_file(), "{task}: no clippo.npz");
    assert!(!export.join("open_clip_model.safetensors").exists());
    let info: serde_json::Value =
        serde_json::from_slice(&std::fs::read(export.join("task.json")).unwrap()).unwrap();
    assert_eq!(info["family"], "clippo", "{info}");
    assert_eq!(info["backbone"], "clippo.npz");
    let metric = outcome.best_metric.unwrap();
    let e = predict(task, &out, "train.seed=1", &out.join("predict"));
    let last_metric = match task {
        "pretrain" => -outcome.final_metrics["loss"],
        _ => outcome.final_metrics["accuracy"],
    };
    assert!(
        (e.metric - last_metric).abs() < 1e-6,
        "{task}: predict {} vs run {last_metric} (best {metric})",
        e.metric
    );
    (out, last_metric)
}

#[test]
fn clippo_pretrains_on_rendered_captions_and_text_pairs() {
    // Text pairs at half of the training list (the paper: a quarter).
    let pairs =
        std::env::temp_dir().join(format!("coca-clippo-pairs-{}.jsonl", std::process::id()));
    std::fs::write(
        &pairs,
        "{\"first\": \"a red circle.\", \"second\": \"a circle that is red.\"}\n[\"two squares.\", \"a pair of squares.\"]\n",
    )
    .unwrap();
    let set = format!("task.text_pairs=\"{}\"", pairs.display());
    let (out, _) = run_clippo(
        "pretrain",
        30,
        &[
            set.as_str(),
            "task.text_pair_share=0.5",
            "train.batch_size=32",
        ],
    );
    let metrics: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("metrics.json")).unwrap()).unwrap();
    for k in ["i2t_r1", "t2i_r1", "loss"] {
        assert!(metrics["final"][k].is_number(), "no {k}: {metrics}");
    }
    // Both loss terms are logged per step.
    let text = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    let train: serde_json::Value = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["kind"] == "train")
        .unwrap();
    assert!(
        train["i2t"].is_number() && train["t2i"].is_number(),
        "{train}"
    );
    // The backbone of the best checkpoint exports as a big_vision .npz equal to the export's
    // (the run's best step is its last evaluation here).
    let npz = out.join("from-run.npz");
    coca_tasks::engine::export::export_backbone_from_run(&out, &npz).unwrap();
    let (a, b) = (
        read_npz(&npz).unwrap(),
        read_npz(&out.join("export/clippo.npz")).unwrap(),
    );
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    std::fs::remove_file(pairs).ok();
}

#[test]
fn clippo_vqa_and_snli_ve_read_the_text_rendered_onto_the_image() {
    // The shared VQA data adds a captioning loss, which needs CoCa's decoder.
    let (out, acc) = run_clippo(
        "vqa",
        30,
        &["train.lr_head=1e-2", "task.caption_loss_weight=0.0"],
    );
    assert!((0.0..=100.0).contains(&acc));
    // The results file scores the same with the official evaluator.
    let w = world();
    let s = coca_tasks::metrics::vqa::evaluate_vqa_files(
        w.join("vqa/v2_OpenEnded_mscoco_val2014_questions.json"),
        w.join("vqa/v2_mscoco_val2014_annotations.json"),
        out.join("results_vqa.json"),
    )
    .unwrap();
    assert!(
        (s.overall - acc).abs() < 0.01 + 1e-9,
        "{} vs {acc}",
        s.overall
    );
    let (out, acc) = run_clippo(
        "snli-ve",
        30,
        &["task.render={ placement = \"bottom\", rows = 3 }"],
    );
    assert!((0.0..=1.0).contains(&acc));
    let info: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("export/task.json")).unwrap()).unwrap();
    assert_eq!(info["task_info"]["render"]["placement"], "bottom", "{info}");
    assert_eq!(info["task_info"]["render"]["rows"], 3);
}

#[test]
fn clippo_classifies_with_a_pooler_over_its_tokens_and_zero_shot_beside() {
    let (out, acc) = run_clippo("classify", 30, &["train.lr_head=1e-2"]);
    assert!((0.0..=1.0).contains(&acc));
    for f in [
        "zero_shot.json",
        "confusion.png",
        "predictions_classify.csv",
    ] {
        assert!(out.join(f).is_file(), "no {f}");
    }
}

#[test]
fn frozen_clippo_backbone_is_exported_bit_identical() {
    // Start from a checkpoint file so that the starting weights are known exactly.
    let dir = std::env::temp_dir().join(format!("coca-clippo-frozen-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let start = dir.join("start.npz");
    let device = coca_core::burn::tensor::Device::flex();
    coca_core::clippo::Clippo::new(&coca_core::clippo::ClippoConfig::tiny(), &device)
        .save_npz(&start)
        .unwrap();
    let id = format!("model.id=\"{}\"", start.display());
    let out = dir.join("run");
    finetune(
        "snli-ve",
        config(
            &out,
            6,
            data_for("snli-ve"),
            &[
                id.as_str(),
                "model.freeze=\"all-but-head\"",
                "train.lr_backbone=1e-2",
            ],
        ),
        false,
    )
    .unwrap();
    let (a, b) = (
        read_npz(&start).unwrap(),
        read_npz(&out.join("export/clippo.npz")).unwrap(),
    );
    assert_eq!(a.len(), b.len());
    for (k, v) in &a {
        assert!(b[k] == *v, "{k} changed although frozen");
    }
    // ... and with the image encoder trained, it changes.
    let out = dir.join("trained");
    finetune(
        "snli-ve",
        config(
            &out,
            6,
            data_for("snli-ve"),
            &[id.as_str(), "train.lr_backbone=1e-2"],
        ),
        false,
    )
    .unwrap();
    let b = read_npz(&out.join("export/clippo.npz")).unwrap();
    assert!(
        a.iter().any(|(k, v)| b[k] != *v),
        "training left the backbone unchanged"
    );
}

#[test]
fn clippo_refuses_what_it_cannot_do_by_name() {
    let out = std::env::temp_dir().join(format!("coca-clippo-refuse-{}", std::process::id()));
    let clippo = "model.preset=\"clippo_tiny\"";
    let err = |task: &str, extra: &[&str]| -> String {
        let mut sets = vec![clippo, "train.warmup_steps=0"];
        sets.extend_from_slice(extra);
        finetune(task, config(&out, 2, data_for(task), &sets), false)
            .unwrap_err()
            .to_string()
    };
    let e = err("caption", &[]);
    assert!(e.contains("caption") && e.contains("CoCa"), "{e}");
    let e = err("snli-ve", &["model.freeze=\"text-towers\""]);
    assert!(e.contains("text-towers") && e.contains("CLIPPO"), "{e}");
    let e = err("snli-ve", &["model.tokenizer=\"tok.json\""]);
    assert!(e.contains("tokenizer") && e.contains("CLIPPO"), "{e}");
    let e = err("vqa", &[]); // the shared VQA data sets caption_loss_weight = 0.5
    assert!(e.contains("caption_loss_weight"), "{e}");
    let e = err("snli-ve", &["task.render={ rows = 8 }"]);
    assert!(e.contains("render.rows"), "{e}");
    let e = err("snli-ve", &["model.preset=\"clippo_huge\""]);
    assert!(e.contains("clippo_huge"), "{e}");
    // Text pairs train CLIPPO only.
    let e = finetune(
        "pretrain",
        config(
            &out,
            2,
            data_for("pretrain"),
            &["task.text_pairs=\"p.jsonl\"", "train.warmup_steps=0"],
        ),
        false,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("text_pairs") && e.contains("CLIPPO"), "{e}");
    assert!(!Path::new(&out).join("export").exists());
}
