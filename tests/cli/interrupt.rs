//! Ctrl-C during `coca-cli finetune`: the step finishes, a checkpoint is written, the exit code
//! is 130, and `--resume` continues from that checkpoint to the end.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{
    assert_resumed, coca, metrics_lines, snli_ve_sets, stderr, stdout, synth_world, tmp,
};

fn train_lines(run: &std::path::Path) -> usize {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .map(|s| s.lines().filter(|l| l.contains("\"train\"")).count())
        .unwrap_or(0)
}

#[cfg(unix)]
#[test]
fn ctrl_c_checkpoints_and_resume_finishes() {
    let dir = tmp("interrupt");
    let world = synth_world(&dir);
    let run = dir.join("run");
    let mut sets = snli_ve_sets(&world, &run);
    sets.extend(
        [
            "train.steps=100000",
            "train.batch_size=4",
            "train.lr_head=1e-3",
            "train.lr_backbone=1e-4",
            "train.weight_decay=0.1",
            "train.log_every=1",
        ]
        .map(String::from),
    );
    let config = dir.join("run.toml");
    std::fs::write(&config, "").unwrap();
    let mut args = vec![
        "finetune".to_string(),
        "snli-ve".into(),
        "--config".into(),
        config.display().to_string(),
    ];
    for s in &sets {
        args.extend(["--set".to_string(), s.clone()]);
    }
    let child = Command::new(env!("CARGO_BIN_EXE_coca-cli"))
        .args(&args)
        .env("HF_HUB_OFFLINE", "1")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while train_lines(&run) < 3 {
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "training did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("--resume"), "{err}");
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["interrupted"], true);
    let steps = summary["steps"].as_u64().unwrap();
    assert!((3..100_000).contains(&steps), "{steps}");
    // The last step was finished, checkpointed and evaluated; the run is not final yet.
    assert!(run.join(format!("checkpoints/step-{steps:08}")).is_dir());
    assert!(!run.join("metrics.json").exists());
    assert!(!run.join("export").exists());
    let log = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let last: serde_json::Value = serde_json::from_str(log.lines().last().unwrap()).unwrap();
    assert_eq!(
        (last["kind"].as_str(), last["step"].as_u64()),
        (Some("eval"), Some(steps))
    );

    // Resume to two steps past the interruption.
    let before = metrics_lines(&run);
    let target = (steps + 2).to_string();
    let o = coca(&[
        "finetune",
        "snli-ve",
        "--resume",
        &run.display().to_string(),
        "--set",
        &format!("train.steps={target}"),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let summary: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(summary["interrupted"], false);
    assert_eq!(summary["steps"].as_u64(), Some(steps + 2));
    assert!(run.join("metrics.json").is_file() && run.join("export").is_dir());
    assert_resumed(&run, &before, steps, steps + 2);
    std::fs::remove_dir_all(dir).ok();
}
