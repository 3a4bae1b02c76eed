//! Tests of the `video` task (preparation, model, training through the engine, synthetic set).

use std::path::Path;
use std::sync::Arc;

use burn::tensor::{Device, Tensor};

use super::*;
use crate::classify::tests::{tiny_run, tmp, train_losses};
use crate::engine::backbone::CocaBackbone;
use crate::engine::{Backbone, Trainer};

fn tiny_counts(train_per_class: usize, val_per_class: usize) -> synth::VideoCounts {
    synth::VideoCounts {
        train_per_class,
        val_per_class,
        image_size: 64,
        min_frames: 8,
        max_frames: 12,
    }
}

fn task(backbone: &CocaBackbone, classes: Vec<String>, config: VideoTaskConfig) -> Video {
    Video::new(
        Inputs::new(backbone),
        classes,
        config,
        backbone.config.vision_heads(),
    )
}

fn backbone() -> CocaBackbone {
    let config = tiny_run(Path::new("/unused"), 1, 1, &[]);
    CocaBackbone::load(&config.model, &Device::flex()).unwrap()
}

/// A clip folder with `n` solid-colour frames (frame k has red = 20 k).
fn clip(dir: &Path, n: usize) -> ClipItem {
    std::fs::create_dir_all(dir).unwrap();
    for k in 0..n {
        let img = image::RgbImage::from_pixel(80, 64, image::Rgb([20 * k as u8, 0, 0]));
        img.save(dir.join(format!("img_{:05}.png", k + 1))).unwrap();
    }
    ClipItem {
        dir: dir.to_path_buf(),
        name: dir.file_name().unwrap().to_string_lossy().into_owned(),
        label: 0,
    }
}

/// The red value of frame `i` of view `v` of a prepared clip (un-normalised).
fn frame_red(p: &[f32], b: &CocaBackbone, view_frames: usize, v: usize, i: usize) -> u8 {
    let s = b.preprocess.image_size;
    let at = ((v * view_frames + i) * 3) * s * s;
    let x = p[at + s * s / 2];
    ((x * b.preprocess.std[0] + b.preprocess.mean[0]) * 255.0).round() as u8
}

#[test]
fn short_clip_repeats_frames_and_is_counted() {
    let b = backbone();
    let d = tmp("video-short");
    let t = task(&b, vec!["a".into()], VideoTaskConfig::default());
    let item = clip(&d.join("c"), 3);
    let (p, label, views) = t.prepare(&item, None).unwrap();
    assert_eq!((label, views), (0, 1));
    assert_eq!(p.len(), 8 * 3 * 64 * 64);
    let reds: Vec<u8> = (0..8).map(|i| frame_red(&p, &b, 8, 0, i)).collect();
    assert_eq!(reds, [0, 0, 0, 20, 20, 20, 40, 40], "floor(i * 3 / 8)");
    assert_eq!(t.short_clips.load(Ordering::Relaxed), 1);
    let mut rng = StdRng::seed_from_u64(0);
    t.prepare(&item, Some(&mut rng)).unwrap();
    assert_eq!(t.short_clips.load(Ordering::Relaxed), 2);
    let long = clip(&d.join("long"), 9);
    t.prepare(&long, None).unwrap();
    assert_eq!(t.short_clips.load(Ordering::Relaxed), 2, "9 frames >= T");
}

#[test]
fn views_follow_the_sampling_grid() {
    let b = backbone();
    let d = tmp("video-views");
    let config = VideoTaskConfig {
        frames: 4,
        clips: 2,
        crops: 3,
        ..VideoTaskConfig::default()
    };
    let t = task(&b, vec!["a".into()], config);
    let item = clip(&d.join("c"), 8);
    let (p, _, views) = t.prepare(&item, None).unwrap();
    assert_eq!(views, 6);
    assert_eq!(p.len(), 6 * 4 * 3 * 64 * 64);
    // View (clip k, crop j) = k * 3 + j; clip 0 takes frames [0, 2, 4, 6], clip 1 [1, 3, 5, 7].
    for (view, frames) in [(0, [0, 2, 4, 6]), (2, [0, 2, 4, 6]), (3, [1, 3, 5, 7])] {
        let reds: Vec<u8> = (0..4).map(|i| frame_red(&p, &b, 4, view, i)).collect();
        assert_eq!(reds, frames.map(|f| 20 * f as u8), "view {view}");
    }
    // Training: one view, each frame inside its segment.
    let mut rng = StdRng::seed_from_u64(3);
    let (p, _, views) = t.prepare(&item, Some(&mut rng)).unwrap();
    assert_eq!(views, 1);
    for i in 0..4 {
        let f = frame_red(&p, &b, 4, 0, i) / 20;
        assert!((2 * i..2 * i + 2).contains(&(f as usize)), "frame {i}: {f}");
    }
}

#[test]
fn bad_clips_are_reported_and_skipped() {
    let b = backbone();
    let d = tmp("video-bad");
    let good = clip(&d.join("good"), 8);
    let empty = clip(&d.join("empty"), 0);
    let corrupt = clip(&d.join("corrupt"), 8);
    std::fs::write(
        corrupt.dir.join("img_00003.png"),
        b"\x89PNG\r\n\x1a\n garbage",
    )
    .unwrap();
    let missing = ClipItem {
        dir: d.join("missing"),
        name: "missing".into(),
        label: 0,
    };
    let t = task(&b, vec!["a".into(), "b".into()], VideoTaskConfig::default());
    let err = t.prepare(&empty, None).unwrap_err().to_string();
    assert!(err.contains("no frames") && err.contains("empty"), "{err}");
    let err = t.prepare(&corrupt, None).unwrap_err().to_string();
    assert!(err.contains("img_00003.png"), "{err}");
    assert!(
        t.prepare(&missing, None)
            .unwrap_err()
            .to_string()
            .contains("missing")
    );
    let model = t
        .build_model(&Backbone::Coca(b.clone()), &Device::flex())
        .unwrap();
    let items = vec![good, empty, corrupt, missing];
    let mut ctx = EvalContext {
        device: Device::flex(),
        batch_size: 2,
        workers: 2,
        strict: false,
    };
    let e = t.evaluate(&model, &items, &ctx).unwrap();
    assert_eq!(e.skipped.len(), 3, "{:?}", e.skipped);
    let (name, bytes) = e.predictions.unwrap();
    assert_eq!(name, PREDICTIONS_FILE);
    let text = String::from_utf8(bytes).unwrap();
    assert_eq!(text.lines().collect::<Vec<_>>().len(), 2, "{text}");
    assert!(text.starts_with("clip,label,top5\ngood,"), "{text}");
    ctx.strict = true;
    assert!(t.evaluate(&model, &items, &ctx).is_err());
}

#[test]
fn model_pools_all_frames_with_optional_temporal_embedding() {
    let b = backbone();
    let device = Device::flex().autodiff();
    let config = VideoTaskConfig {
        frames: 3,
        temporal_embedding: true,
        queries: 2,
        ..VideoTaskConfig::default()
    };
    let t = task(&b, vec!["a".into(), "b".into(), "c".into()], config);
    let mut fresh = b.clone();
    fresh.coca = coca_core::Coca::new(&b.config, &device);
    let model =
        burn::module::Module::train(t.build_model(&Backbone::Coca(fresh), &device).unwrap());
    let names: Vec<String> = burn::store::ModuleSnapshot::collect(&model, None, None, false)
        .into_iter()
        .map(|s| s.name)
        .filter(|n| n.starts_with("head."))
        .collect();
    assert!(
        names.contains(&"head.temporal_embedding".to_string()),
        "{names:?}"
    );
    // 2 clips x 3 frames; the second clip's frames are reversed copies of the first's.
    let frames = Tensor::<4>::random(
        [3, 3, 64, 64],
        burn::tensor::Distribution::Normal(0.0, 1.0),
        &device,
    );
    let reversed = Tensor::cat(
        vec![
            frames.clone().narrow(0, 2, 1),
            frames.clone().narrow(0, 1, 1),
            frames.clone().narrow(0, 0, 1),
        ],
        0,
    );
    let logits = model.logits(Tensor::cat(vec![frames.clone(), reversed.clone()], 0));
    assert_eq!(logits.dims(), [2, 3]);
    let v: Vec<f32> = logits.into_data().try_to_vec::<f32>().unwrap();
    // With a temporal embedding frame order matters; without, the pooler is order-invariant.
    let gap = (0..3).map(|c| (v[c] - v[3 + c]).abs()).fold(0f32, f32::max);
    assert!(gap > 1e-5, "temporal embedding has an effect: {v:?}");
    let mut plain = model.clone();
    plain.head.temporal_embedding = None;
    let v: Vec<f32> = plain
        .logits(Tensor::cat(vec![frames, reversed], 0))
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    let gap = (0..3).map(|c| (v[c] - v[3 + c]).abs()).fold(0f32, f32::max);
    assert!(gap < 1e-4, "order-invariant without it: {v:?}");
}

fn video_trainer(
    run: &Path,
    data: &Path,
    steps: usize,
    mode: Mode,
    extra: &[&str],
) -> Trainer<Video> {
    let config = tiny_run(run, steps, 4, extra);
    let device = Device::flex();
    device.seed(13);
    let backbone = CocaBackbone::load(&config.model, &device).unwrap();
    let d = VideoData {
        train: data.join("train.csv"),
        val: data.join("val.csv"),
        frames: data.join("frames"),
    };
    let (classes, train, val) = d.load().unwrap();
    let t = Video::new(
        Inputs::new(&backbone).with_augmentation(&config.train),
        classes,
        VideoTaskConfig {
            mode,
            ..VideoTaskConfig::default()
        },
        backbone.config.vision_heads(),
    );
    Trainer {
        task: Arc::new(t),
        config,
        backbone: Backbone::Coca(backbone),
        train: Arc::new(train),
        val,
    }
}

#[test]
fn frozen_video_training_keeps_the_backbone_and_writes_predictions() {
    let data = tmp("video-frozen-data");
    synth::write_counts(&data, 2, tiny_counts(2, 1)).unwrap();
    let run = tmp("video-frozen-run");
    let t = video_trainer(&run, &data, 2, Mode::Frozen, &[]);
    let before =
        coca_core::checkpoint::state_dict(&t.backbone.coca("video").unwrap().coca).unwrap();
    let outcome = t.run(false).unwrap();
    let after =
        coca_core::checkpoint::read_state_dict(&run.join("export/open_clip_model.safetensors"))
            .unwrap();
    assert_eq!(before.len(), after.len());
    for (k, v) in &before {
        assert_eq!(after.get(k), Some(v), "{k} changed");
    }
    let preds = run.join(PREDICTIONS_FILE);
    let s = score_predictions_file(&preds, &data.join("val.csv")).unwrap();
    assert_eq!(s.total, 4);
    assert_eq!(s.accuracy, outcome.final_metrics["accuracy"]);
    assert_eq!(s.top5, 1.0, "4 classes: always in the top 5");
    let classes = crate::classify::classes_from_task_json(&run.join("export/task.json")).unwrap();
    assert_eq!(classes, ["blue", "green", "red", "yellow"]);
}

#[test]
fn short_video_training_learns() {
    let data = tmp("video-learn-data");
    let summary = synth::write_counts(&data, 4, tiny_counts(6, 2)).unwrap();
    assert_eq!(summary.train_clips, 24);
    let run = tmp("video-learn-run");
    let t = video_trainer(&run, &data, 30, Mode::Frozen, &["train.lr_head=5e-3"]);
    t.run(false).unwrap();
    let losses = train_losses(&run);
    let first: f64 = losses[..5].iter().sum::<f64>() / 5.0;
    let last: f64 = losses[losses.len() - 5..].iter().sum::<f64>() / 5.0;
    assert!(last < 0.8 * first, "loss {first} -> {last}");
}

/// Counts the frames of each validation clip that show the large label-coloured shape, from
/// the written JPEGs, and recomputes the ceiling independently of the generator's bookkeeping.
#[test]
fn synthetic_ceiling_matches_the_frames() {
    let data = tmp("video-ceiling");
    let s = synth::write_counts(&data, 9, tiny_counts(1, 6)).unwrap();
    assert_eq!((s.val_clips, s.chance), (24, 0.25));
    let d = VideoData {
        train: data.join("train.csv"),
        val: data.join("val.csv"),
        frames: data.join("frames"),
    };
    let (classes, _, val) = d.load().unwrap();
    let rgb = |name: &str| {
        crate::classify::render::COLORS
            .iter()
            .find(|c| c.0 == name)
            .unwrap()
            .1
    };
    let mut visible_share = 0.0;
    let mut per_class = vec![0.0f64; classes.len()];
    for clip in &val {
        let target = rgb(&classes[clip.label]);
        let frames = data::list_frames(&clip.dir).unwrap();
        let shown = frames
            .iter()
            .filter(|f| {
                let img = image::open(f).unwrap().to_rgb8();
                let close = img
                    .pixels()
                    .filter(|p| {
                        p.0.iter()
                            .zip(target)
                            .map(|(&a, b)| (i32::from(a) - i32::from(b)).abs())
                            .max()
                            .unwrap_or(255)
                            < 45
                    })
                    .count();
                close > 150
            })
            .count();
        assert!(
            (2..=3).contains(&shown),
            "{}: {shown} frames show the shape",
            clip.name
        );
        assert!((8..=12).contains(&frames.len()));
        let p = shown as f64 / frames.len() as f64;
        visible_share += p;
        per_class[clip.label] += 1.0 - p;
    }
    let n = val.len() as f64;
    let ceiling = (visible_share + per_class.iter().copied().fold(0.0, f64::max)) / n;
    assert!(
        (ceiling - s.single_frame_ceiling).abs() < 1e-12,
        "{ceiling} vs {}",
        s.single_frame_ceiling
    );
    assert!(s.single_frame_ceiling < 0.6, "{}", s.single_frame_ceiling);
    assert_eq!(s.eval_coverage, 1.0);
}

/// Peak resident memory of this process (kB), from `/proc/self/status`.
fn vm_hwm_kb() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Training throughput and peak memory of the tiny preset, one mode per process:
/// `cargo test -p coca-tasks --lib video::tests::bench_frozen -- --ignored --nocapture`
/// (and `bench_finetune`). Batch 16 clips x 8 frames, 8 steps after 2 warm-up steps.
fn bench(mode: Mode) {
    let data = tmp(&format!("video-bench-data-{mode:?}"));
    synth::write_counts(&data, 1, tiny_counts(8, 1)).unwrap();
    let run = tmp(&format!("video-bench-run-{mode:?}"));
    let mut t = video_trainer(&run, &data, 10, mode, &["train.batch_size=16"]);
    t.val.truncate(1);
    let before = vm_hwm_kb();
    let start = std::time::Instant::now();
    t.run(false).unwrap();
    let secs = start.elapsed().as_secs_f64();
    let rates: Vec<f64> = std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["kind"] == "train" && v["step"].as_u64().is_some_and(|s| s > 2))
        .filter_map(|v| v["img_per_s"].as_f64())
        .collect();
    let clips_per_s = rates.iter().sum::<f64>() / rates.len() as f64;
    println!(
        "BENCH mode={mode:?} frames_per_s={:.1} clips_per_s={clips_per_s:.2} peak_rss_mb={:.1} rss_before_mb={:.1} wall_s={secs:.1}",
        clips_per_s * 8.0,
        vm_hwm_kb().unwrap_or(0) as f64 / 1024.0,
        before.unwrap_or(0) as f64 / 1024.0,
    );
}

#[test]
#[ignore = "benchmark: run alone, one mode per process"]
fn bench_frozen() {
    bench(Mode::Frozen);
}

#[test]
#[ignore = "benchmark: run alone, one mode per process"]
fn bench_finetune() {
    bench(Mode::Finetune);
}

#[test]
fn task_config_defaults() {
    let c: VideoTaskConfig = toml::from_str("").unwrap();
    assert_eq!(c, VideoTaskConfig::default());
    assert_eq!((c.frames, c.clips, c.crops, c.queries), (8, 1, 1, 1));
    assert!(!c.temporal_embedding);
    assert_eq!(c.mode, Mode::Frozen);
    assert!(toml::from_str::<VideoTaskConfig>("frame = 4").is_err());
    let z: VideoTaskConfig = toml::from_str("clips = 0").unwrap();
    assert!(z.validate().unwrap_err().to_string().contains("clips"));
}

const EXAMPLE: &str = include_str!("example.toml");

#[test]
fn example_config_parses() {
    let c = crate::classify::tests::example_config(
        EXAMPLE,
        Path::new("/tmp/x"),
        &[
            ("train", Path::new("a")),
            ("val", Path::new("b")),
            ("frames", Path::new("f")),
        ],
        &[],
    );
    let data: VideoData = crate::engine::RunConfig::section(&c.data, "data").unwrap();
    assert_eq!(data.frames, Path::new("f"));
    let task: VideoTaskConfig = crate::engine::RunConfig::section(&c.task, "task").unwrap();
    assert_eq!(task, VideoTaskConfig::default());
}

/// The example run on the tiny synthetic set from a random-init tiny model, frozen and
/// fine-tuned (`cargo test -p coca-tasks --lib video::tests::example_runs -- --ignored
/// --nocapture`); prints top-1 against chance and the single-frame ceiling.
#[test]
#[ignore = "minutes of CPU: run on demand"]
fn example_runs() {
    let data = tmp("video-example-data");
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
        let run = tmp(&format!("video-example-run-{mode}"));
        let config = crate::classify::tests::example_config(
            EXAMPLE,
            &run,
            &[
                ("train", &data.join("train.csv")),
                ("val", &data.join("val.csv")),
                ("frames", &data.join("frames")),
            ],
            &extra,
        );
        let device = Device::flex();
        device.seed(0);
        let backbone = CocaBackbone::load(&config.model, &device).unwrap();
        let d: VideoData = crate::engine::RunConfig::section(&config.data, "data").unwrap();
        let (classes, train, val) = d.load().unwrap();
        let task = Video::new(
            Inputs::new(&backbone).with_augmentation(&config.train),
            classes,
            crate::engine::RunConfig::section(&config.task, "task").unwrap(),
            backbone.config.vision_heads(),
        );
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
            "EXAMPLE video mode={mode} accuracy={:.4} top5={:.4} mean_class={:.4} chance={:.4} single_frame_ceiling={:.4} wall_s={:.0}",
            outcome.final_metrics["accuracy"],
            outcome.final_metrics["top5"],
            outcome.final_metrics["mean_class_accuracy"],
            s.chance,
            s.single_frame_ceiling,
            start.elapsed().as_secs_f64()
        );
    }
}

/// Needs `ffmpeg` on PATH: a clip stored as a lossless video file (beside the list's clip
/// path, as the Kinetics downloaders name them) prepares exactly as its frame folder does, for
/// training and evaluation.
#[cfg(feature = "video-files")]
#[test]
fn a_lossless_video_file_prepares_like_its_frame_folder() {
    let b = backbone();
    let d = tmp("video-file");
    let config = VideoTaskConfig {
        frames: 4,
        ..VideoTaskConfig::default()
    };
    let t = task(&b, vec!["a".into()], config);
    let folder = clip(&d.join("frames/c"), 9);
    std::fs::create_dir_all(d.join("videos")).unwrap();
    let ok = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-nostdin", "-framerate", "5", "-i"])
        .arg(folder.dir.join("img_%05d.png"))
        .args(["-c:v", "ffv1", "-pix_fmt", "bgr0"])
        .arg(d.join("videos/c.mkv"))
        .status()
        .expect("ffmpeg on PATH (the video-files feature decodes with it)")
        .success();
    assert!(ok);
    let video = ClipItem {
        dir: d.join("videos/c"),
        ..folder.clone()
    };
    assert_eq!(
        t.prepare(&video, None).unwrap(),
        t.prepare(&folder, None).unwrap()
    );
    let (mut r1, mut r2) = (StdRng::seed_from_u64(3), StdRng::seed_from_u64(3));
    assert_eq!(
        t.prepare(&video, Some(&mut r1)).unwrap(),
        t.prepare(&folder, Some(&mut r2)).unwrap()
    );
}
