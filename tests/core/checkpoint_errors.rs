//! Bad checkpoints give errors that name the file and the problem.

use std::path::PathBuf;

use coca_core::Pretrained;
use coca_core::burn::tensor::Device;
use coca_core::checkpoint::{StateDict, load_state_dict, read_state_dict, write_safetensors};

use crate::common::fixture;

fn tmp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("coca-ckpt-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn tiny_state() -> StateDict {
    read_state_dict(&fixture("coca-tiny/open_clip_model.safetensors")).unwrap()
}

fn load_err(state: StateDict) -> String {
    let device = Device::flex();
    let cfg =
        coca_core::config::OpenClipConfig::from_file(&fixture("coca-tiny/open_clip_config.json"))
            .unwrap();
    let model = coca_core::Coca::new(&cfg.model_cfg, &device);
    load_state_dict(
        model,
        state,
        std::path::Path::new("ckpt.safetensors"),
        &Default::default(),
    )
    .unwrap_err()
    .to_string()
}

#[test]
fn missing_extra_and_misshaped_keys_are_listed() {
    let mut state = tiny_state();
    state.remove("visual.proj");
    let e = load_err(state);
    assert!(
        e.contains("ckpt.safetensors") && e.contains("missing") && e.contains("visual.proj"),
        "{e}"
    );

    let mut state = tiny_state();
    let extra = state["logit_scale"].clone();
    state.insert("visual.extra_head.weight".into(), extra);
    let e = load_err(state);
    assert!(
        e.contains("unexpected") && e.contains("visual.extra_head.weight"),
        "{e}"
    );

    let mut state = tiny_state();
    let wrong = state["text.ln_final.weight"].clone();
    state.insert("text.ln_final.bias".into(), wrong.clone());
    state.insert(
        "visual.ln_post.weight".into(),
        coca_core::burn::tensor::TensorData::new(vec![0f32; 7], [7]),
    );
    let e = load_err(state);
    assert!(
        e.contains("misshaped") && e.contains("visual.ln_post.weight"),
        "{e}"
    );
}

#[test]
fn module_prefix_is_accepted() {
    let dir = tmp_dir("module");
    let state: StateDict = tiny_state()
        .into_iter()
        .map(|(k, v)| (format!("module.{k}"), v))
        .collect();
    write_safetensors(&dir.join("open_clip_model.safetensors"), &state, None).unwrap();
    std::fs::copy(
        fixture("coca-tiny/open_clip_config.json"),
        dir.join("open_clip_config.json"),
    )
    .unwrap();
    Pretrained::load(dir.to_str().unwrap(), &Device::flex()).unwrap();
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn truncated_and_foreign_files_are_reported() {
    let dir = tmp_dir("trunc");
    for (name, source) in [
        (
            "open_clip_model.safetensors",
            "coca-tiny/open_clip_model.safetensors",
        ),
        (
            "open_clip_pytorch_model.bin",
            "coca-tiny/open_clip_pytorch_model.bin",
        ),
    ] {
        let bytes = std::fs::read(fixture(source)).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        let e = read_state_dict(&path).unwrap_err().to_string();
        assert!(e.contains(name), "{e}");
        std::fs::remove_file(&path).unwrap();
    }
    let text = dir.join("notes.bin");
    std::fs::write(&text, "hello, not a checkpoint").unwrap();
    let e = read_state_dict(&text).unwrap_err().to_string();
    assert!(
        e.contains("notes.bin") && e.contains("unrecognised header"),
        "{e}"
    );
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn unknown_model_id_is_reported() {
    let e = Pretrained::load("definitely-not-a-model", &Device::flex())
        .unwrap_err()
        .to_string();
    assert!(e.contains("definitely-not-a-model"), "{e}");
}
