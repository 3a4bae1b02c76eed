//! bf16 training on the CPU backend (each `coca-cli` process sets its device's float dtype
//! once, so these runs live in their own processes): the optimiser's f32 master weights move
//! as f32 training moves them, a run resumes exactly, and prediction (with and without a task
//! head) runs in bf16 and reproduces the run's last evaluation.

use std::collections::HashMap;
use std::path::Path;

use crate::common::{
    Tol, assert_close, assert_resumed, coca, fixture, metrics_lines, q, snli_ve_sets, stderr,
    stdout, synth_world, tmp,
};

/// Continued pretraining of the open_clip tiny fixture on the synthetic captions.
fn pretrain(world: &Path, run: &Path, precision: &str, steps: usize, resume: bool) {
    let mut args: Vec<String> = vec!["finetune".into(), "pretrain".into()];
    if resume {
        args.extend(["--resume".into(), run.display().to_string()]);
    } else {
        let config = run.with_extension("toml");
        std::fs::write(&config, "").unwrap();
        args.extend(["--config".into(), config.display().to_string()]);
        for s in [
            format!("model.id={}", q(&fixture("coca-tiny"))),
            format!("data.karpathy={}", q(&world.join("coco/dataset_coco.json"))),
            format!("data.images={}", q(&world.join("coco/images"))),
            format!("run.out_dir={}", q(run)),
            format!("train.precision=\"{precision}\""),
            "run.progress=false".into(),
            "train.batch_size=8".into(),
            // A small backbone rate (the paper's fine-tuning range) and a constant schedule,
            // so that a run cut short and resumed follows the same rates.
            "train.lr_backbone=1e-5".into(),
            "train.lr_head=1e-5".into(),
            "train.warmup_steps=0".into(),
            "train.min_lr_ratio=1.0".into(),
            "train.log_every=1".into(),
            "eval.every=0".into(),
            "eval.batch_size=32".into(),
            "checkpoint.every=0".into(),
        ] {
            args.extend(["--set".into(), s]);
        }
    }
    args.extend(["--set".into(), format!("train.steps={steps}")]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = coca(&args);
    assert!(o.status.success(), "{precision}: {}", stderr(&o));
}

fn weights(path: &Path) -> HashMap<String, Vec<f32>> {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    st.tensors()
        .into_iter()
        .map(|(name, view)| {
            assert_eq!(view.dtype(), safetensors::Dtype::F32, "{name}");
            let v = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            (name, v)
        })
        .collect()
}

fn export(run: &Path) -> HashMap<String, Vec<f32>> {
    weights(&run.join("export/open_clip_model.safetensors"))
}

fn train_losses(run: &Path) -> Vec<f64> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["kind"] == "train")
        .map(|r| r["loss"].as_f64().unwrap())
        .collect()
}

#[test]
fn bf16_training_keeps_f32_master_weights() {
    let dir = tmp("bf16");
    let world = synth_world(&dir);
    let steps = 10;
    let (f32_run, bf16_run) = (dir.join("f32"), dir.join("bf16"));
    pretrain(&world, &f32_run, "f32", steps, false);
    pretrain(&world, &bf16_run, "bf16", steps, false);

    // The update of the weights over the run (final - pretrained) points where f32 training
    // takes it, with the same size. Added to bf16 weights directly, most of these updates
    // (about 1e-5 per step) would round away: weights near 1 (LayerNorm) move in steps of
    // 2^-7, and 93% of all weights stayed at their starting value in such a run.
    let start = weights(&fixture("coca-tiny/open_clip_model.safetensors"));
    let (w32, w16) = (export(&f32_run), export(&bf16_run));
    let (mut dot, mut n32, mut n16) = (0f64, 0f64, 0f64);
    assert_eq!(w32.len(), start.len(), "f32 export tensors");
    assert_eq!(w16.len(), start.len(), "bf16 export tensors");
    for (name, s) in &start {
        assert_eq!(
            (w32[name].len(), w16[name].len()),
            (s.len(), s.len()),
            "{name}"
        );
        for ((a, b), s) in w32[name].iter().zip(&w16[name]).zip(s) {
            let (d32, d16) = (f64::from(a - s), f64::from(b - s));
            dot += d32 * d16;
            n32 += d32 * d32;
            n16 += d16 * d16;
        }
    }
    let cosine = dot / (n32.sqrt() * n16.sqrt());
    let ratio = (n16 / n32).sqrt();
    assert!(cosine > 0.99, "cosine of bf16 and f32 updates {cosine}");
    assert!((0.9..1.1).contains(&ratio), "norm ratio {ratio}");
    let ln = "text.transformer.resblocks.0.ln_1.weight";
    assert!(
        !start[ln].is_empty() && w16[ln].iter().zip(&start[ln]).all(|(a, b)| a != b),
        "every LayerNorm weight moves"
    );
    let (l32, l16) = (train_losses(&f32_run), train_losses(&bf16_run));
    assert_eq!((l32.len(), l16.len()), (steps, steps));
    assert_close("bf16 losses vs f32", &l16, &l32, Tol::new(0.0, 0.02));

    // Cut short and resumed: the same weights as the straight run (master weights and the
    // optimiser's f32 moments are in the checkpoint).
    let resumed = dir.join("resumed");
    pretrain(&world, &resumed, "bf16", steps / 2, false);
    let before = metrics_lines(&resumed);
    pretrain(&world, &resumed, "bf16", steps, true);
    assert_resumed(&resumed, &before, (steps / 2) as u64, steps as u64);
    assert_eq!(train_losses(&resumed), l16, "resumed bf16 losses");
    // Both exports are of the last step only if its validation loss is the best so far.
    for run in [&bf16_run, &resumed] {
        let summary: serde_json::Value =
            serde_json::from_slice(&std::fs::read(run.join("metrics.json")).unwrap()).unwrap();
        assert_eq!(summary["best_step"], steps, "{summary}");
    }
    assert!(export(&resumed) == w16, "resumed bf16 run differs");

    // Prediction reloads the f32 export into the bf16 run's device: the metrics of the run's
    // last evaluation again.
    let o = coca(&[
        "predict",
        "pretrain",
        "--run",
        &bf16_run.display().to_string(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let predicted: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bf16_run.join("metrics.json")).unwrap()).unwrap();
    let final_loss = summary["final"]["loss"].as_f64().unwrap();
    let predicted_loss = predicted["metrics"]["loss"].as_f64().unwrap_or(f64::NAN);
    assert!(
        (final_loss - predicted_loss).abs() < 1e-6 * final_loss.abs(),
        "run {final_loss} vs predict {predicted_loss}: {predicted}"
    );

    // A task with a head: the f32 head of the export goes into a bf16 model for `predict`,
    // which scores the dev split as the run's last evaluation did.
    let snli = dir.join("snli-ve");
    let config = snli.with_extension("toml");
    std::fs::write(&config, "").unwrap();
    let mut sets = snli_ve_sets(&world, &snli);
    sets.extend(
        [
            "train.precision=\"bf16\"",
            "train.steps=3",
            "train.warmup_steps=0",
            "train.batch_size=8",
        ]
        .map(String::from),
    );
    let mut args = vec!["finetune", "snli-ve", "--config", config.to_str().unwrap()];
    for s in &sets {
        args.extend(["--set", s.as_str()]);
    }
    let o = coca(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let run: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let o = coca(&["predict", "snli-ve", "--run", snli.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let predicted: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(
        predicted["metrics"]["accuracy"], run["final"]["accuracy"],
        "{predicted} vs {run}"
    );
    std::fs::remove_dir_all(dir).ok();
}
