//! The tiny end-to-end pipeline of `examples/synth/run-cpu.sh` (synthetic world, continued
//! pretraining, four fine-tunings, official evaluations) on CPU.

use std::process::Command;

use crate::common::tmp;

fn metrics(path: std::path::PathBuf) -> serde_json::Value {
    serde_json::from_slice(
        &std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap()
}

#[test]
fn tiny_pipeline_runs_end_to_end_and_beats_baselines() {
    let out = tmp("pipeline");
    let script = crate::common::workspace_dir().join("examples/synth/run-cpu.sh");
    let status = Command::new("bash")
        .arg(script)
        .arg(&out)
        .env("COCA_CLI", env!("CARGO_BIN_EXE_coca-cli"))
        .env_remove("COCA_TOKENIZER")
        .env("HF_HUB_OFFLINE", "1")
        .env("RUST_LOG", "warn")
        .status()
        .unwrap();
    assert!(status.success(), "run-cpu.sh failed");
    let synth = metrics(out.join("synth-summary.json"));
    for task in ["pretrain", "vqa", "snli-ve", "nlvr2", "caption"] {
        assert!(
            out.join(task).join("metrics.json").is_file(),
            "{task}/metrics.json missing"
        );
    }
    // SNLI-VE: majority class is 1/3.
    let snli = metrics(out.join("snli-ve/metrics.json"))["final"]["accuracy"]
        .as_f64()
        .unwrap();
    let snli_base = synth["snli_ve"]["baselines"]["dev"]["accuracy"]
        .as_f64()
        .unwrap();
    assert!(
        snli > snli_base + 0.2,
        "SNLI-VE {snli} vs majority {snli_base}"
    );
    // VQA (official evaluator, percent) against always answering the most common answer.
    let vqa = metrics(out.join("vqa/official_eval.json"))["overall"]
        .as_f64()
        .unwrap();
    let vqa_base = 100.0 * synth["vqa"]["baseline"]["accuracy"].as_f64().unwrap();
    assert!(
        vqa > vqa_base + 5.0,
        "VQA {vqa} vs majority answer {vqa_base}"
    );
    // Captioning against the best constant caption (the synthetic captions are templated, so
    // a constant caption already scores a fair CIDEr).
    let cider = metrics(out.join("caption/metrics.json"))["final"]["CIDEr"]
        .as_f64()
        .unwrap();
    let cider_base = synth["coco"]["baseline"]["cider"].as_f64().unwrap();
    assert!(
        cider > cider_base + 0.15,
        "CIDEr {cider} vs constant caption {cider_base}"
    );
    // NLVR2 needs grounding in two images at once and is the weakest on a tiny model: 0.586
    // against 0.511 on 307 dev pairs (docs/results.md); on an earlier world 0.577 / 0.547 /
    // 0.554 with training seeds 0 / 1 / 2. So the bar is a small margin over the majority label.
    let nlvr2 = metrics(out.join("nlvr2/metrics.json"))["final"]["accuracy"]
        .as_f64()
        .unwrap();
    let nlvr2_base = synth["nlvr2"]["baselines"]["dev"]["accuracy"]
        .as_f64()
        .unwrap();
    assert!(
        nlvr2 > nlvr2_base + 0.02,
        "NLVR2 {nlvr2} vs majority {nlvr2_base}"
    );
    // Tasks with their own synthetic data state what they must beat (`pipeline_bar`).
    let tasks = coca_tasks::registry::names();
    let mut checked = 0;
    for (task, entry) in synth.as_object().unwrap() {
        let Some(bar) = entry.get("pipeline_bar") else {
            continue;
        };
        assert!(
            tasks.contains(&task.as_str()),
            "{task} is not a registered task"
        );
        let bar: coca_tasks::registry::Bar = serde_json::from_value(bar.clone()).unwrap();
        let got = metrics(out.join(task).join("metrics.json"))["final"][&bar.metric]
            .as_f64()
            .unwrap_or_else(|| panic!("{task}: no final.{}", bar.metric));
        assert!(
            got > bar.value,
            "{task}: {} {got} vs {} {}",
            bar.metric,
            bar.what,
            bar.value
        );
        checked += 1;
    }
    eprintln!("{checked} registry tasks checked against their bars");
    std::fs::remove_dir_all(out).ok();
}
