//! Benchmark: caption generation with and without the key/value cache.
//!
//! `cargo run --release -p coca-core --example bench_generation -- [--preset coca_ViT-B-32]
//! [--device cpu|cuda:0] [--batch 4] [--tokens 30] [--repeats 2]`
//!
//! Random weights (the speed does not depend on them); greedy decoding of exactly `tokens`
//! tokens (`ignore_eos`), plus beam search (3 beams) with the cache.

use std::time::Instant;

use coca_core::Coca;
use coca_core::burn::tensor::{Distribution, Tensor};
use coca_core::config::CocaConfig;
use coca_core::device::parse_device;
use coca_core::generation::{DecodeStrategy, GenerationConfig, generate};

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| default.to_string())
}

fn main() -> coca_core::Result<()> {
    let preset = arg("--preset", "coca_ViT-B-32");
    let device = parse_device(&arg("--device", "cpu"))?;
    let batch: usize = arg("--batch", "4").parse().unwrap_or(4);
    let tokens: usize = arg("--tokens", "30").parse().unwrap_or(30);
    let repeats: usize = arg("--repeats", "2").parse().unwrap_or(2);
    let cfg = if preset == "tiny" {
        CocaConfig::tiny()
    } else {
        CocaConfig::preset(&preset)?
    };
    let model = Coca::new(&cfg, &device);
    let s = cfg.vision_cfg.image_size;
    let pixels = Tensor::<4>::random([batch, 3, s, s], Distribution::Normal(0.0, 1.0), &device);
    let embs = model.encode_image(pixels).embs;
    let run = |strategy: DecodeStrategy, use_cache: bool| -> coca_core::Result<f64> {
        let settings = GenerationConfig {
            strategy,
            max_new_tokens: tokens,
            min_new_tokens: 0,
            repetition_penalty: 1.0,
            ignore_eos: true,
            use_cache,
        };
        generate(&model, embs.clone(), &[], &settings)?; // warm-up
        let t = Instant::now();
        for _ in 0..repeats {
            generate(&model, embs.clone(), &[], &settings)?;
        }
        Ok(t.elapsed().as_secs_f64() / repeats as f64)
    };
    let cached = run(DecodeStrategy::Greedy, true)?;
    let uncached = run(DecodeStrategy::Greedy, false)?;
    let beam = run(
        DecodeStrategy::Beam {
            num_beams: 3,
            length_penalty: 1.0,
            early_stopping: true,
        },
        true,
    )?;
    println!(
        "preset {preset}, batch {batch}, {tokens} tokens, decoding only (image encoding excluded)"
    );
    println!(
        "greedy, cached:   {cached:.3} s/batch  {:.2} images/s",
        batch as f64 / cached
    );
    println!(
        "greedy, uncached: {uncached:.3} s/batch  {:.2} images/s",
        batch as f64 / uncached
    );
    println!("speed-up of the cache: {:.2}x", uncached / cached);
    println!(
        "beam 3, cached:   {beam:.3} s/batch  {:.2} images/s",
        batch as f64 / beam
    );
    Ok(())
}
