//! The fine-tuning engine: optimiser groups and clipping against a hand computation, exact
//! resume, corrupt-checkpoint fallback, and a short training run that learns.

use std::sync::Arc;

use burn::module::{Module, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};
use coca_tasks::engine::backbone::CocaBackbone;
use coca_tasks::engine::checkpoint;
use coca_tasks::engine::optim::{OptimConfig, Optimizers};
use coca_tasks::engine::params::{clip_global_norm, param_infos};
use coca_tasks::engine::{Backbone, Trainer};
use coca_tasks::inputs::Inputs;
use coca_tasks::pretrain::{Pretrain, PretrainConfig};

use crate::common::{Tol, assert_close, colour_pairs, tiny_config, tmp};

#[derive(Module, Debug)]
struct Inner {
    weight: Param<Tensor<2>>,
}

#[derive(Module, Debug)]
struct Head {
    weight: Param<Tensor<2>>,
    bias: Param<Tensor<1>>,
}

#[derive(Module, Debug)]
struct Toy {
    coca: Inner,
    head: Head,
}

fn t2(v: &[f32], device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(v.to_vec(), [1, v.len()]), device)
}

fn vals<const D: usize>(p: &Param<Tensor<D>>) -> Vec<f64> {
    p.val()
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .unwrap()
        .into_iter()
        .map(f64::from)
        .collect()
}

/// Reference AdamW (PyTorch semantics) in f64.
#[allow(clippy::too_many_arguments)]
fn adamw_ref(
    p: &mut [f64],
    m: &mut [f64],
    v: &mut [f64],
    g: &[f64],
    t: i32,
    lr: f64,
    wd: f64,
    c: &OptimConfig,
) {
    for i in 0..p.len() {
        m[i] = c.beta1 * m[i] + (1.0 - c.beta1) * g[i];
        v[i] = c.beta2 * v[i] + (1.0 - c.beta2) * g[i] * g[i];
        let mh = m[i] / (1.0 - c.beta1.powi(t));
        let vh = v[i] / (1.0 - c.beta2.powi(t));
        p[i] = p[i] * (1.0 - lr * wd) - lr * mh / (vh.sqrt() + c.eps);
    }
}

#[test]
fn adamw_with_groups_and_global_clipping_matches_a_hand_computation() {
    let device = Device::flex().autodiff();
    let p_inner = [0.5f32, -1.0, 2.0];
    let p_hw = [1.0f32, 0.25];
    let p_hb = [0.1f32, -0.3];
    let mut model = Toy {
        coca: Inner {
            weight: Param::from_tensor(t2(&p_inner, &device)),
        },
        head: Head {
            weight: Param::from_tensor(t2(&p_hw, &device)),
            bias: Param::from_tensor(Tensor::from_data(
                TensorData::new(p_hb.to_vec(), [2]),
                &device,
            )),
        },
    };
    let cfg = OptimConfig {
        lr_head: 0.1,
        lr_backbone: 0.01,
        weight_decay: 0.5,
        beta1: 0.9,
        beta2: 0.99,
        eps: 1e-8,
    };
    let infos = param_infos(&model);
    assert_eq!(
        infos.iter().map(|p| p.path.as_str()).collect::<Vec<_>>(),
        ["coca.weight", "head.weight", "head.bias"]
    );
    let mut optim = Optimizers::new(&infos, &cfg);
    // Gradients are the constant coefficients of a linear loss.
    let a = [3.0f32, -4.0, 1.0];
    let b = [2.0f32, 0.5];
    let c = [-1.0f32, 6.0];
    let (mut ri, mut rw, mut rb) = (
        p_inner.map(f64::from).to_vec(),
        p_hw.map(f64::from).to_vec(),
        p_hb.map(f64::from).to_vec(),
    );
    let mut state = [
        vec![0.0; 3],
        vec![0.0; 3],
        vec![0.0; 2],
        vec![0.0; 2],
        vec![0.0; 2],
        vec![0.0; 2],
    ];
    let max_norm = 2.0;
    for step in 1..=2 {
        let loss = (model.coca.weight.val() * t2(&a, &device)).sum()
            + (model.head.weight.val() * t2(&b, &device)).sum()
            + (model.head.bias.val()
                * Tensor::from_data(TensorData::new(c.to_vec(), [2]), &device))
            .sum();
        let mut grads = GradientsParams::from_grads(loss.backward(), &model);
        let norm = clip_global_norm(&model, &mut grads, max_norm);
        let all: Vec<f64> = a
            .iter()
            .chain(&b)
            .chain(&c)
            .map(|&x| f64::from(x))
            .collect();
        let want_norm = all.iter().map(|x| x * x).sum::<f64>().sqrt();
        assert!(
            (norm - want_norm).abs() < 1e-4,
            "norm {norm} vs {want_norm}"
        );
        let scale = max_norm / (want_norm + 1e-6);
        let g = |v: &[f32]| v.iter().map(|&x| f64::from(x) * scale).collect::<Vec<_>>();
        model = optim.step(model, grads, 1.0);
        let [m0, v0, m1, v1, m2, v2] = &mut state;
        adamw_ref(
            &mut ri,
            m0,
            v0,
            &g(&a),
            step,
            cfg.lr_backbone,
            cfg.weight_decay,
            &cfg,
        );
        adamw_ref(
            &mut rw,
            m1,
            v1,
            &g(&b),
            step,
            cfg.lr_head,
            cfg.weight_decay,
            &cfg,
        );
        adamw_ref(&mut rb, m2, v2, &g(&c), step, cfg.lr_head, 0.0, &cfg); // no decay on biases
        for (got, want, name) in [
            (vals(&model.coca.weight), &ri, "coca.weight"),
            (vals(&model.head.weight), &rw, "head.weight"),
            (vals(&model.head.bias), &rb, "head.bias"),
        ] {
            assert_close(&format!("step {step} {name}"), &got, want, Tol::abs(1e-5));
        }
    }
}

/// A pretraining run of the tiny model; `init_seed` seeds the random initialisation (a resumed
/// run is given another one, so that only what it restores can make it match).
fn pretrain_trainer(
    out: &std::path::Path,
    images: &std::path::Path,
    steps: usize,
    extra: &[&str],
    init_seed: u64,
) -> Trainer<Pretrain> {
    let config = tiny_config(out, steps, extra);
    let device = Device::flex();
    device.seed(init_seed);
    let backbone = CocaBackbone::load(&config.model, &device).unwrap();
    let pairs = colour_pairs(images, 8);
    let task = Pretrain {
        inputs: Inputs::new(&backbone),
        config: PretrainConfig::default(),
    };
    Trainer {
        task: Arc::new(task),
        config,
        backbone: Backbone::Coca(backbone),
        train: Arc::new(pairs.clone()),
        val: pairs[..4].to_vec(),
    }
}

fn final_weights(run: &std::path::Path) -> Vec<u8> {
    let (_, data) = checkpoint::latest_valid(run).expect("a checkpoint");
    data.model
}

/// The records of `metrics.jsonl` of one kind.
fn records(run: &std::path::Path, kind: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["kind"] == kind)
        .collect()
}

/// The fields of a train record that depend on the state of the run (not on timing).
fn trajectory(r: &serde_json::Value) -> [serde_json::Value; 5] {
    ["step", "epoch", "loss", "lr_head", "grad_norm"].map(|k| r[k].clone())
}

#[test]
fn resuming_after_a_kill_reproduces_the_uninterrupted_run() {
    let root = tmp("resume");
    let images = root.join("images");
    std::fs::create_dir_all(&images).unwrap();
    let straight = root.join("straight");
    // Crop augmentation is on (the default), so the resumed run must also continue the
    // augmentation RNG; 8 pairs in batches of 4 with 2 micro-batches a step: every step is a
    // new epoch, so the data order must continue too.
    let extra = [
        "checkpoint.every=3",
        "checkpoint.keep_last=10",
        "train.grad_accum=2",
    ];
    let outcome = pretrain_trainer(&straight, &images, 6, &extra, 1)
        .run(false)
        .unwrap();
    assert_eq!(outcome.steps, 6);
    // A run killed right after its step-3 checkpoint: copy the run directory without later
    // state, and cut metrics.jsonl after the step-3 records.
    let killed = root.join("killed");
    std::fs::create_dir_all(killed.join("checkpoints")).unwrap();
    for f in ["config.toml", "backbone.json"] {
        std::fs::copy(straight.join(f), killed.join(f)).unwrap();
    }
    let log = std::fs::read_to_string(straight.join("metrics.jsonl")).unwrap();
    let before: Vec<&str> = log
        .lines()
        .filter(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["step"].as_u64() <= Some(3)
        })
        .collect();
    std::fs::write(killed.join("metrics.jsonl"), before.join("\n") + "\n").unwrap();
    let src = checkpoint::dir_of(&straight, 3);
    let dst = checkpoint::dir_of(&killed, 3);
    std::fs::create_dir_all(&dst).unwrap();
    for e in std::fs::read_dir(&src).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
    }
    // Another initialisation seed: a resume that restarted from scratch would not end where
    // the straight run ends.
    let resumed = pretrain_trainer(&killed, &images, 6, &extra, 99)
        .run(true)
        .unwrap();
    assert_eq!(resumed.steps, 6);
    assert!(
        final_weights(&straight) == final_weights(&killed),
        "resumed weights differ from the straight run"
    );
    // The log: the lines before the kill kept verbatim, one resume record at step 3, then
    // steps 4..=6 exactly once each with the straight run's data position (epoch), loss,
    // schedule position (lr) and gradient norm.
    let resumed_log = std::fs::read_to_string(killed.join("metrics.jsonl")).unwrap();
    let kept: Vec<&str> = resumed_log.lines().take(before.len()).collect();
    assert_eq!(kept, before, "the lines before the interruption changed");
    let resumes = records(&killed, "resume");
    assert_eq!(resumes.len(), 1, "{resumes:?}");
    assert_eq!(resumes[0]["step"], 3);
    assert_eq!(resumes[0]["skipped_corrupt"], serde_json::json!([]));
    let steps: Vec<u64> = records(&killed, "train")
        .iter()
        .map(|r| r["step"].as_u64().unwrap())
        .collect();
    assert_eq!(steps, (1..=6).collect::<Vec<_>>(), "train steps logged");
    let want: Vec<_> = records(&straight, "train").iter().map(trajectory).collect();
    let got: Vec<_> = records(&killed, "train").iter().map(trajectory).collect();
    assert_eq!(
        got, want,
        "the resumed trajectory differs from the straight run"
    );

    // A truncated newest checkpoint is detected; the previous good one is used, and the
    // resume says so in metrics.jsonl.
    let newest = checkpoint::dir_of(&killed, 6).join("model.bpk");
    let bytes = std::fs::read(&newest).unwrap();
    std::fs::write(&newest, &bytes[..bytes.len() / 2]).unwrap();
    let (dir, data) = checkpoint::latest_valid(&killed).unwrap();
    assert_eq!(data.state.step, 3, "fell back to {}", dir.display());
    std::fs::remove_file(killed.join("metrics.json")).ok();
    let again = pretrain_trainer(&killed, &images, 6, &extra, 5)
        .run(true)
        .unwrap();
    assert_eq!(again.steps, 6);
    let resumes = records(&killed, "resume");
    let last = resumes.last().unwrap();
    assert_eq!(last["step"], 3, "{resumes:?}");
    let skipped = last["skipped_corrupt"].as_array().unwrap();
    assert_eq!(skipped.len(), 1, "{last}");
    assert!(
        skipped[0]["checkpoint"]
            .as_str()
            .unwrap()
            .ends_with("step-00000006"),
        "{last}"
    );
    assert!(final_weights(&straight) == final_weights(&killed));
    std::fs::remove_dir_all(root).ok();
}

#[test]
fn a_short_run_learns_and_writes_its_outputs() {
    let root = tmp("learn");
    let images = root.join("images");
    std::fs::create_dir_all(&images).unwrap();
    let run = root.join("run");
    let outcome = pretrain_trainer(
        &run,
        &images,
        200,
        &[
            "eval.every=100",
            "train.lr_backbone=5e-4",
            "train.lr_head=5e-4",
        ],
        1,
    )
    .run(false)
    .unwrap();
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let train: Vec<f64> = lines
        .iter()
        .filter(|v| v["kind"] == "train")
        .map(|v| v["loss"].as_f64().unwrap())
        .collect();
    assert_eq!(train.len(), 200);
    let first: f64 = train[..10].iter().sum::<f64>() / 10.0;
    let last: f64 = train[190..].iter().sum::<f64>() / 10.0;
    assert!(last < 0.5 * first, "loss did not fall: {first} -> {last}");
    assert_eq!(lines.iter().filter(|v| v["kind"] == "eval").count(), 2);
    for f in [
        "metrics.json",
        "curves.png",
        "config.toml",
        "export/open_clip_model.safetensors",
        "export/open_clip_config.json",
        "export/task.json",
    ] {
        assert!(run.join(f).is_file(), "{f} missing");
    }
    // The built-in CLIP vocabulary needs no tokenizer.json beside the export.
    assert!(!run.join("export/tokenizer.json").exists());
    let task: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("export/task.json")).unwrap()).unwrap();
    assert_eq!(task["tokenizer"], serde_json::Value::Null);
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(summary["steps"], 200);
    assert!(outcome.final_metrics.contains_key("i2t_r1"));
    // The exported backbone loads back with coca-core.
    coca_core::Pretrained::load(run.join("export").to_str().unwrap(), &Device::flex()).unwrap();
    std::fs::remove_dir_all(root).ok();
}

#[test]
fn train_inputs_follow_the_augmentation_settings() {
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    let out = tmp("augment");
    let pairs = colour_pairs(&out, 1);
    let image = &pairs[0].image;
    let inputs_for = |extra: &[&str]| {
        let config = tiny_config(&out, 4, extra);
        let backbone = CocaBackbone::load(&config.model, &Device::flex()).unwrap();
        Inputs::new(&backbone).with_augmentation(&config.train)
    };
    let rng = || StdRng::seed_from_u64(5);
    let eval = inputs_for(&[]).image(image, None).unwrap();
    // No crop and no RandAugment: the eval transform even when training.
    let plain = inputs_for(&["train.augment=\"none\""]);
    assert_eq!(plain.image(image, Some(&mut rng())).unwrap(), eval);
    // RandAugment alone changes the image, the same way for the same seed.
    let ra = inputs_for(&[
        "train.augment=\"none\"",
        "train.randaugment={ ops = 2, magnitude = 10, prob = 1.0 }",
    ]);
    let a = ra.image(image, Some(&mut rng())).unwrap();
    assert_ne!(a, eval);
    assert_eq!(a, ra.image(image, Some(&mut rng())).unwrap());
    std::fs::remove_dir_all(out).ok();
}
