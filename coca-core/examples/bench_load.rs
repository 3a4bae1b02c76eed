//! Benchmark: loading a checkpoint on the CPU.
//!
//! `cargo run --release -p coca-core --example bench_load -- [--make PRESET DIR] PATH`
//!
//! `--make PRESET DIR` first writes random weights of `PRESET` to
//! `DIR/open_clip_model.safetensors` and loads that. Prints one JSON line per figure:
//! reading the file, building the (lazy) model, applying the weights, and the whole
//! `Pretrained::load`.

use std::path::PathBuf;
use std::time::Instant;

use coca_core::checkpoint::{LoadOptions, detect_format, load_state_dict, read_state_dict};
use coca_core::config::CocaConfig;
use coca_core::device::parse_device;
use coca_core::{Coca, Pretrained};

fn emit(what: &str, model: &str, format: &str, seconds: f64) {
    println!(
        "{}",
        serde_json::json!({"what": what, "model": model, "format": format, "seconds": seconds})
    );
}

fn main() -> coca_core::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let device = parse_device("cpu")?;
    let (preset, path) = match args.iter().position(|a| a == "--make") {
        Some(i) => {
            let (Some(preset), Some(dir)) = (args.get(i + 1), args.get(i + 2)) else {
                return Err(coca_core::CocaError::Invalid(
                    "--make needs PRESET and DIR".into(),
                ));
            };
            let cfg = CocaConfig::preset(preset)?;
            let path = PathBuf::from(dir).join("open_clip_model.safetensors");
            let t = Instant::now();
            coca_core::checkpoint::save_open_clip(&Coca::new(&cfg, &device), &path)?;
            emit("make", preset, "safetensors", t.elapsed().as_secs_f64());
            (preset.clone(), path)
        }
        None => {
            let Some(p) = args.last() else {
                return Err(coca_core::CocaError::Invalid(
                    "usage: bench_load [--make PRESET DIR] PATH".into(),
                ));
            };
            (String::from("?"), PathBuf::from(p))
        }
    };
    let format = match detect_format(&path)? {
        coca_core::checkpoint::CheckpointFormat::Safetensors => "safetensors",
        coca_core::checkpoint::CheckpointFormat::Pytorch => "pytorch",
    };

    // Stages, then the whole public path.
    let t = Instant::now();
    let state = read_state_dict(&path)?;
    emit(
        "read_state_dict",
        &preset,
        format,
        t.elapsed().as_secs_f64(),
    );
    let cfg = CocaConfig::preset(if preset == "?" {
        "coca_ViT-B-32"
    } else {
        &preset
    })?;
    let t = Instant::now();
    let model = Coca::new(&cfg, &device);
    emit("Coca::new", &preset, format, t.elapsed().as_secs_f64());
    let t = Instant::now();
    let model = load_state_dict(model, state, &path, &LoadOptions::default())?;
    emit(
        "load_state_dict",
        &preset,
        format,
        t.elapsed().as_secs_f64(),
    );
    drop(model);

    let t = Instant::now();
    let p = Pretrained::load(&path.display().to_string(), &device)?;
    emit("load", &preset, format, t.elapsed().as_secs_f64());
    drop(p);
    Ok(())
}
