//! Tests of the `classify` task (model, loss, training through the engine).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::tensor::{Device, Int, Tensor, TensorData};

use super::*;
use crate::engine::backbone::CocaBackbone;
use crate::engine::{Backbone, RunConfig, Trainer};

/// A fresh temporary directory.
pub(crate) fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("coca-task-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A run configuration of the tiny preset (`extra`: `section.key=value` overrides).
pub(crate) fn tiny_run(out: &Path, steps: usize, batch: usize, extra: &[&str]) -> RunConfig {
    let text = format!(
        r#"
[model]
preset = "tiny"
[train]
steps = {steps}
batch_size = {batch}
warmup_steps = 1
lr_head = 1e-3
lr_backbone = 1e-3
weight_decay = 0.05
seed = 3
workers = 2
log_every = 1
augment = "none"
[eval]
batch_size = 32
[run]
out_dir = "{}"
progress = false
"#,
        out.display()
    );
    let mut table: toml::Table = text.parse().unwrap();
    let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    crate::engine::config::apply_overrides(&mut table, &extra).unwrap();
    RunConfig::from_table(table, "test").unwrap()
}

/// Losses of the `train` records of a run's `metrics.jsonl`.
pub(crate) fn train_losses(run: &Path) -> Vec<f64> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["kind"] == "train")
        .map(|v| v["loss"].as_f64().unwrap())
        .collect()
}

/// A small synthetic set: `per_class` train and 2 val images of each of the 6 colours.
fn small_set(name: &str, per_class: usize) -> (PathBuf, synth::ClassifySynthSummary) {
    let d = tmp(name);
    let s = synth::write_counts(
        &d,
        5,
        synth::ClassifyCounts {
            train_per_class: per_class,
            val_per_class: 2,
            image_size: 64,
        },
    )
    .unwrap();
    (d, s)
}

fn trainer(
    run: &Path,
    data: &Path,
    steps: usize,
    batch: usize,
    mode: &str,
    extra: &[&str],
) -> Trainer<Classify> {
    let config = tiny_run(run, steps, batch, extra);
    let device = Device::flex();
    device.seed(11);
    let backbone = CocaBackbone::load(&config.model, &device).unwrap();
    let data = ClassifyData {
        train: data.join("train"),
        val: data.join("val.csv"),
    };
    let (classes, train, val) = data.load().unwrap();
    let task = Classify {
        inputs: Inputs::new(&backbone).with_augmentation(&config.train),
        classes,
        config: ClassifyTaskConfig {
            queries: 2,
            mode: if mode == "frozen" {
                Mode::Frozen
            } else {
                Mode::Finetune
            },
        },
        heads: backbone.config.vision_heads(),
        confusion_png: Some(run.join("confusion.png")),
    };
    Trainer {
        task: Arc::new(task),
        config,
        backbone: Backbone::Coca(backbone),
        train: Arc::new(train),
        val,
    }
}

#[test]
fn cross_entropy_by_hand() {
    let device = Device::flex();
    let logits = Tensor::<2>::from_data(
        TensorData::new(vec![0.0f32, 0.0, 3f32.ln(), 0.0], [2, 2]),
        &device,
    );
    let labels = Tensor::<1, Int>::from_data(TensorData::new(vec![0i64, 1], [2]), &device);
    let loss: f32 = softmax_cross_entropy(logits, labels).into_scalar();
    // (ln 2 + ln 4) / 2.
    assert!((f64::from(loss) - 1.5 * 2f64.ln()).abs() < 1e-6, "{loss}");
}

#[test]
fn frozen_encoder_records_no_graph() {
    let device = Device::flex().autodiff();
    let coca = coca_core::Coca::new(&coca_core::CocaConfig::tiny(), &device);
    let coca = burn::module::Module::train(coca);
    let pixels = Tensor::<4>::zeros([2, 3, 64, 64], &device);
    let frozen = encoder_tokens(&coca, pixels.clone(), true);
    assert_eq!(frozen.dims(), [2, 65, 64]);
    assert!(frozen.is_autodiff(), "returned on the autodiff backend");
    assert!(!frozen.is_tracked(), "no encoder activation in the graph");
    let tuned = encoder_tokens(&coca, pixels, false);
    assert!(tuned.is_tracked(), "fine-tuning records the encoder");
    // Same numbers either way (up to kernel rounding).
    let a: Vec<f32> = frozen.into_data().try_to_vec::<f32>().unwrap();
    let b: Vec<f32> = tuned.into_data().try_to_vec::<f32>().unwrap();
    assert_eq!(a.len(), b.len());
    let worst = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, |m, d| {
            if d.is_nan() || m.is_nan() {
                f32::NAN
            } else {
                m.max(d)
            }
        });
    assert!(worst <= 1e-4, "max difference {worst}");
}

#[test]
fn frozen_training_keeps_every_backbone_tensor_bit_identical() {
    let (data, _) = small_set("frozen-data", 2);
    let state = |path: &Path| coca_core::checkpoint::read_state_dict(path).unwrap();
    for mode in ["frozen", "finetune"] {
        let run = tmp(&format!("frozen-run-{mode}"));
        let t = trainer(&run, &data, 2, 6, mode, &[]);
        let before =
            coca_core::checkpoint::state_dict(&t.backbone.coca("classify").unwrap().coca).unwrap();
        let outcome = t.run(false).unwrap();
        assert_eq!(outcome.steps, 2);
        let after = state(&run.join("export/open_clip_model.safetensors"));
        assert_eq!(before.len(), after.len());
        let changed: Vec<&String> = before
            .iter()
            .filter(|(k, v)| after.get(*k) != Some(v))
            .map(|(k, _)| k)
            .collect();
        if mode == "frozen" {
            assert!(changed.is_empty(), "frozen run changed {changed:?}");
        } else {
            assert!(
                changed.len() > 10,
                "fine-tuning changes the backbone: {changed:?}"
            );
        }
        // The head trains in both modes.
        let head = state(&run.join("export/head.safetensors"));
        assert!(head.contains_key("head.pool.query"), "{:?}", head.keys());
        assert!(run.join("confusion.png").is_file());
        let task = std::fs::read_to_string(run.join("export/task.json")).unwrap();
        let classes = classes_from_task_json(&run.join("export/task.json")).unwrap();
        assert_eq!(classes.len(), 6, "{task}");
        let preds = std::fs::read_to_string(run.join(PREDICTIONS_FILE)).unwrap();
        assert_eq!(preds.lines().count(), 13, "header + 12 val images");
        assert!(preds.starts_with("path,label,top5\n"), "{preds}");
        // The predictions score against the val CSV as the run scored them.
        let scores =
            metrics::score_predictions_file(&run.join(PREDICTIONS_FILE), &data.join("val.csv"))
                .unwrap();
        assert_eq!(scores.accuracy, outcome.final_metrics["accuracy"]);
        assert_eq!(scores.top5, outcome.final_metrics["top5"]);
    }
}

#[test]
fn short_training_learns() {
    let (data, summary) = small_set("learn-data", 16);
    assert_eq!(summary.train_images, 96);
    let run = tmp("learn-run");
    let t = trainer(&run, &data, 40, 16, "frozen", &["train.lr_head=5e-3"]);
    let outcome = t.run(false).unwrap();
    let losses = train_losses(&run);
    let first: f64 = losses[..5].iter().sum::<f64>() / 5.0;
    let last: f64 = losses[losses.len() - 5..].iter().sum::<f64>() / 5.0;
    assert!(last < 0.8 * first, "loss {first} -> {last}");
    assert!(
        outcome.final_metrics["accuracy"] > summary.chance,
        "{:?} vs chance {}",
        outcome.final_metrics,
        summary.chance
    );
}

#[test]
fn zero_shot_scores_every_item() {
    let (data, _) = small_set("zs-data", 1);
    let device = Device::flex();
    let config = tiny_run(&tmp("zs-run"), 1, 1, &[]);
    let backbone = CocaBackbone::load(&config.model, &device).unwrap();
    let d = ClassifyData {
        train: data.join("train.csv"),
        val: data.join("val"),
    };
    let (classes, _, val) = d.load().unwrap();
    let task = Classify {
        inputs: Inputs::new(&backbone),
        classes,
        config: ClassifyTaskConfig::default(),
        heads: 2,
        confusion_png: None,
    };
    let ctx = EvalContext {
        device,
        batch_size: 5,
        workers: 1,
        strict: true,
    };
    let s = task
        .zero_shot(
            &backbone.coca,
            &val,
            &coca_core::zero_shot::DEFAULT_TEMPLATES,
            &ctx,
        )
        .unwrap();
    assert_eq!(s.total, 12);
    assert!((0.0..=1.0).contains(&s.accuracy) && s.top5 >= s.accuracy);
    let bad: [&str; 1] = ["no placeholder"];
    assert!(task.zero_shot(&backbone.coca, &val, &bad, &ctx).is_err());
}

#[test]
fn corrupt_image_is_skipped_or_strict_error() {
    let (data, _) = small_set("corrupt-data", 1);
    std::fs::write(data.join("val/red/00000.jpg"), b"\xff\xd8\xff garbage").unwrap();
    let device = Device::flex();
    let config = tiny_run(&tmp("corrupt-run"), 1, 1, &[]);
    let backbone = CocaBackbone::load(&config.model, &device).unwrap();
    let d = ClassifyData {
        train: data.join("train"),
        val: data.join("val"),
    };
    let (classes, _, val) = d.load().unwrap();
    let task = Classify {
        inputs: Inputs::new(&backbone),
        classes,
        config: ClassifyTaskConfig::default(),
        heads: 2,
        confusion_png: None,
    };
    let model = task
        .build_model(&Backbone::Coca(backbone.clone()), &device)
        .unwrap();
    let mut ctx = EvalContext {
        device,
        batch_size: 4,
        workers: 1,
        strict: false,
    };
    let e = task.evaluate(&model, &val, &ctx).unwrap();
    assert_eq!(e.skipped.len(), 1, "{:?}", e.skipped);
    assert!(e.skipped[0].contains("00000.jpg"), "{:?}", e.skipped);
    let (_, bytes) = e.predictions.unwrap();
    assert_eq!(String::from_utf8(bytes).unwrap().lines().count(), 12);
    ctx.strict = true;
    assert!(task.evaluate(&model, &val, &ctx).is_err());
}

#[test]
fn task_config_defaults_and_unknown_keys() {
    let c: ClassifyTaskConfig = toml::from_str("").unwrap();
    assert_eq!(c, ClassifyTaskConfig::default());
    assert_eq!((c.queries, c.mode), (1, Mode::Frozen));
    let c: ClassifyTaskConfig = toml::from_str("mode = \"finetune\"\nqueries = 4").unwrap();
    assert_eq!((c.queries, c.mode), (4, Mode::Finetune));
    assert!(toml::from_str::<ClassifyTaskConfig>("querys = 2").is_err());
    assert!(toml::from_str::<ClassifyData>("train = \"a\"\nval = \"b\"\nimages = \"c\"").is_err());
}

/// An example config (`example.toml` text) with the tiny preset, `data` paths and overrides.
pub(crate) fn example_config(
    text: &str,
    out: &Path,
    data: &[(&str, &Path)],
    extra: &[&str],
) -> RunConfig {
    let mut table: toml::Table = text.parse().unwrap();
    let mut o = vec![
        format!("run.out_dir={:?}", out.display().to_string()),
        "model.preset=\"tiny\"".to_string(),
        "run.progress=false".to_string(),
    ];
    for (k, p) in data {
        o.push(format!("data.{k}={:?}", p.display().to_string()));
    }
    o.extend(extra.iter().map(|s| s.to_string()));
    crate::engine::config::apply_overrides(&mut table, &o).unwrap();
    RunConfig::from_table(table, "example.toml").unwrap()
}

pub(crate) const EXAMPLE: &str = include_str!("example.toml");

#[test]
fn example_config_parses() {
    let c = example_config(
        EXAMPLE,
        Path::new("/tmp/x"),
        &[("train", Path::new("a")), ("val", Path::new("b"))],
        &[],
    );
    let data: ClassifyData = RunConfig::section(&c.data, "data").unwrap();
    assert_eq!(data.train, Path::new("a"));
    let task: ClassifyTaskConfig = RunConfig::section(&c.task, "task").unwrap();
    assert_eq!(task, ClassifyTaskConfig::default());
    assert_eq!((c.train.lr_head, c.train.min_lr_ratio), (5e-4, 0.0));
    assert_eq!(c.model.freeze, crate::engine::params::Freeze::AllButHead);
}

/// The example run on the tiny synthetic set from a random-init tiny model, frozen and
/// fine-tuned (`cargo test -p coca-tasks --lib classify::tests::example_runs -- --ignored
/// --nocapture`); prints top-1 against chance.
#[test]
#[ignore = "a minute of CPU: run on demand"]
fn example_runs() {
    let data = tmp("example-data");
    let s = synth::write(&data, 0, crate::synth::SynthSize::Tiny).unwrap();
    for (mode, extra) in [
        ("frozen", vec![]),
        (
            "finetune",
            vec![
                "task.mode=\"finetune\"",
                "model.freeze=\"none\"",
                "train.lr_backbone=5e-4",
            ],
        ),
    ] {
        let run = tmp(&format!("example-run-{mode}"));
        let config = example_config(
            EXAMPLE,
            &run,
            &[
                ("train", &data.join("train")),
                ("val", &data.join("val.csv")),
            ],
            &extra,
        );
        let device = Device::flex();
        device.seed(0);
        let backbone = CocaBackbone::load(&config.model, &device).unwrap();
        let d: ClassifyData = RunConfig::section(&config.data, "data").unwrap();
        let (classes, train, val) = d.load().unwrap();
        let task = Classify {
            inputs: Inputs::new(&backbone).with_augmentation(&config.train),
            classes,
            config: RunConfig::section(&config.task, "task").unwrap(),
            heads: backbone.config.vision_heads(),
            confusion_png: Some(run.join("confusion.png")),
        };
        let start = std::time::Instant::now();
        let outcome = Trainer {
            task: Arc::new(task),
            config,
            backbone: Backbone::Coca(backbone),
            train: Arc::new(train),
            val,
        }
        .run(false)
        .unwrap();
        println!(
            "EXAMPLE classify mode={mode} accuracy={:.4} top5={:.4} mean_class={:.4} chance={:.4} majority={:.4} wall_s={:.0}",
            outcome.final_metrics["accuracy"],
            outcome.final_metrics["top5"],
            outcome.final_metrics["mean_class_accuracy"],
            s.chance,
            s.majority,
            start.elapsed().as_secs_f64()
        );
    }
}
