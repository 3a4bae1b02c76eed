//! Benchmark a user can rerun: memory bandwidth, checkpoint loading, image encoding, caption
//! decoding (with its bound) and a tiny-model training step. One JSON line per figure.
//!
//! `cargo run --release -p coca-core --example bench -- [--preset coca_ViT-B-32]
//! [--device cpu] [--only bandwidth,load,encode,decode,uncached,beam,train] [--batches 1,4,16,32]
//! [--tokens 30] [--repeats 2] [--checkpoint DIR] [--profile]`
//!
//! Random weights (speed does not depend on them). `load` writes the preset's random weights
//! once to `DIR/open_clip_model.safetensors` (default: a `coca-bench-PRESET` folder in the
//! temporary directory) and times `Pretrained::load` of that file. `decode` runs greedy
//! decoding of exactly `tokens` tokens (`ignore_eos`) with the key/value cache at every batch
//! size, and (`uncached`) open_clip's uncached way at batch 16, and relates each cached step to the time
//! reading its bytes would take at the measured bandwidth (`bound_s_per_step`). `beam` runs
//! beam search (3 beams, log-probabilities) and open_clip's beam search (6 beams in 3 groups).
//! `--profile` times the parts of one cached greedy decoding step at the largest batch.

use std::time::Instant;

use coca_core::burn::module::Module;
use coca_core::burn::tensor::module::attention;
use coca_core::burn::tensor::ops::AttentionModuleOptions;
use coca_core::burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use coca_core::config::CocaConfig;
use coca_core::device::parse_device;
use coca_core::generation::{
    DecodeStrategy, DecoderCache, GenerationConfig, OpenClipBeamSearch, argmax, generate,
    logits::logsumexp,
};
use coca_core::model::block::ResidualAttentionBlock;
use coca_core::{Coca, Pretrained};
use serde_json::{Value, json};

fn args() -> Vec<String> {
    std::env::args().collect()
}

fn arg(name: &str, default: &str) -> String {
    let args = args();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| default.to_string())
}

fn flag(name: &str) -> bool {
    args().iter().any(|a| a == name)
}

fn emit(v: Value) {
    println!("{v}");
}

/// `base` with the fields of `extra` added.
fn with(base: &Value, extra: Value) -> Value {
    let mut v = base.clone();
    if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
        o.extend(e.clone());
    }
    v
}

/// Best of `repeats` timings of `f` after one warm-up, in seconds.
fn time<T>(repeats: usize, mut f: impl FnMut() -> T) -> f64 {
    std::hint::black_box(f());
    let mut best = f64::INFINITY;
    for _ in 0..repeats.max(1) {
        let t = Instant::now();
        std::hint::black_box(f());
        best = best.min(t.elapsed().as_secs_f64());
    }
    best
}

/// Streaming read bandwidth (bytes/s): summing a 1 GiB f32 buffer on `threads` threads.
fn bandwidth(threads: usize) -> f64 {
    let n = (1usize << 30) / 4;
    let buf = vec![1.0f32; n];
    let sum_chunk = |c: &[f32]| -> f32 {
        let mut acc = [0.0f32; 16];
        let mut it = c.chunks_exact(16);
        for x in &mut it {
            for (a, v) in acc.iter_mut().zip(x) {
                *a += v;
            }
        }
        acc.iter().sum::<f32>() + it.remainder().iter().sum::<f32>()
    };
    let secs = time(3, || {
        std::thread::scope(|s| {
            let per = n.div_ceil(threads);
            let handles: Vec<_> = buf
                .chunks(per)
                .map(|c| s.spawn(move || sum_chunk(c)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or(0.0))
                .sum::<f32>()
        })
    });
    (n * 4) as f64 / secs
}

fn params(m: &impl Module) -> usize {
    m.num_params()
}

/// Bytes one cached decoding step reads: every weight it uses once, plus the cached keys and
/// values (self-attention at `len` positions, cross-attention over `memory` image tokens).
fn step_bytes(model: &Coca, batch: usize, len: usize, memory: usize) -> (usize, usize) {
    let dec = &model.text_decoder;
    let w = dec.ln_final.weight.val().dims()[0];
    let text_w = model.text.ln_final.weight.val().dims()[0];
    let mut weights: usize = model.text.transformer.resblocks.iter().map(params).sum();
    weights += dec.resblocks.iter().map(params).sum::<usize>();
    // Cross-attention blocks: their key/value projections (and `ln_1_kv`) run once per image.
    weights += dec
        .cross_attn
        .iter()
        .map(|b| params(b) - 2 * w * w - 2 * w - 2 * w)
        .sum::<usize>();
    weights += params(&dec.ln_final) + dec.text_projection.val().dims().iter().product::<usize>();
    let layers_text = model.text.transformer.resblocks.len();
    let layers_dec = dec.resblocks.len();
    let cache = 2 * batch * len * (layers_text * text_w + layers_dec * w)
        + 2 * batch * memory * layers_dec * w;
    (weights * 4, cache * 4)
}

fn random_embs(model: &Coca, cfg: &CocaConfig, batch: usize, device: &Device) -> Tensor<3> {
    let s = cfg.vision_cfg.image_size;
    let pixels = Tensor::<4>::random([batch, 3, s, s], Distribution::Normal(0.0, 1.0), device);
    model.encode_image(pixels).embs
}

fn greedy(tokens: usize, use_cache: bool) -> GenerationConfig {
    GenerationConfig {
        strategy: DecodeStrategy::Greedy,
        max_new_tokens: tokens,
        min_new_tokens: 0,
        repetition_penalty: 1.0,
        ignore_eos: true,
        use_cache,
    }
}

fn main() -> coca_core::Result<()> {
    let preset = arg("--preset", "coca_ViT-B-32");
    let device_name = arg("--device", "cpu");
    let device = parse_device(&device_name)?;
    let only = arg("--only", "bandwidth,load,encode,decode,uncached,beam,train");
    let want = |what: &str| only.split(',').any(|w| w == what);
    let batches: Vec<usize> = arg("--batches", "1,4,16,32")
        .split(',')
        .filter_map(|b| b.parse().ok())
        .collect();
    let tokens: usize = arg("--tokens", "30").parse().unwrap_or(30);
    let repeats: usize = arg("--repeats", "2").parse().unwrap_or(2);
    let cfg = if preset == "tiny" {
        CocaConfig::tiny()
    } else {
        CocaConfig::preset(&preset)?
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let base = json!({"preset": preset, "device": device_name, "threads": threads});
    let with = |extra: Value| with(&base, extra);

    let mut bw = None;
    let mut peak = None;
    if want("bandwidth") || want("decode") {
        let n = 1024;
        let a = Tensor::<2>::random([n, n], Distribution::Normal(0.0, 1.0), &device);
        let secs = time(3, || a.clone().matmul(a.clone()));
        let flops = 2.0 * (n * n * n) as f64 / secs;
        emit(with(
            json!({"figure": "matmul_peak", "gflop_per_s": flops / 1e9,
            "what": "1024x1024 by 1024x1024 f32 matmul on the device"}),
        ));
        peak = Some(flops);
        let one = bandwidth(1);
        let all = bandwidth(threads);
        emit(with(
            json!({"figure": "memory_bandwidth", "gb_per_s_1_thread": one / 1e9,
            "gb_per_s_all_threads": all / 1e9, "what": "sum of a 1 GiB f32 buffer"}),
        ));
        bw = Some(all);
    }

    if want("load") {
        let dir = match arg("--checkpoint", "").as_str() {
            "" => std::env::temp_dir().join(format!("coca-bench-{preset}")),
            d => std::path::PathBuf::from(d),
        };
        let path = dir.join("open_clip_model.safetensors");
        if !path.exists() {
            std::fs::create_dir_all(&dir).map_err(|e| {
                coca_core::CocaError::Invalid(format!("cannot create {}: {e}", dir.display()))
            })?;
            coca_core::checkpoint::save_open_clip(&Coca::new(&cfg, &device), &path)?;
        }
        let id = path.display().to_string();
        let secs = time(repeats, || Pretrained::load(&id, &device).map(|_| ()));
        emit(with(
            json!({"figure": "load", "format": "safetensors", "seconds": secs,
            "file": id}),
        ));
        // f32 weights stay in the mapped file until used: the first forward pass reads them
        // from the page cache. What that costs, against the same pass once they are in.
        let t = Instant::now();
        let loaded = Pretrained::load(&id, &device)?;
        let load_s = t.elapsed().as_secs_f64();
        let s = cfg.vision_cfg.image_size;
        let one = Tensor::<4>::random([1, 3, s, s], Distribution::Normal(0.0, 1.0), &device);
        let t = Instant::now();
        std::hint::black_box(loaded.model.encode_image(one.clone()).embs.into_data());
        let first = t.elapsed().as_secs_f64();
        let t = Instant::now();
        std::hint::black_box(loaded.model.encode_image(one).embs.into_data());
        let second = t.elapsed().as_secs_f64();
        emit(with(json!({"figure": "load_first_use", "load_s": load_s,
            "first_encode_s": first, "second_encode_s": second,
            "what": "Pretrained::load, then encode_image of one image twice"})));
    }

    let model = Coca::new(&cfg, &device);
    let embs_of = |b: usize| random_embs(&model, &cfg, b, &device);
    let mut encode_s_per_image = None;
    if want("encode") || want("decode") {
        let b = 16;
        let s = cfg.vision_cfg.image_size;
        let pixels = Tensor::<4>::random([b, 3, s, s], Distribution::Normal(0.0, 1.0), &device);
        let secs = time(repeats, || {
            model.encode_image(pixels.clone()).embs.into_data()
        });
        encode_s_per_image = Some(secs / b as f64);
        emit(with(
            json!({"figure": "encode", "batch": b, "seconds": secs,
            "images_per_s": b as f64 / secs, "what": "encode_image, preprocessing excluded"}),
        ));
    }

    if want("decode") {
        let memory = embs_of(1).dims()[1];
        for &b in &batches {
            let embs = embs_of(b);
            let secs = time(repeats, || {
                generate(&model, embs.clone(), &[], &greedy(tokens, true))
            });
            let per_step = secs / tokens as f64;
            // Average cached length over the steps: 1 + t for step t.
            let (wb, cb) = step_bytes(&model, b, 1 + tokens / 2, memory);
            let bound = bw.map(|bw| (wb + cb) as f64 / bw);
            // One multiply-add per weight and row (attention's own products are not counted).
            let compute = peak.map(|p| 2.0 * (wb / 4 * b) as f64 / p);
            let enc = encode_s_per_image.map(|e| e * b as f64);
            emit(with(
                json!({"figure": "decode", "strategy": "greedy", "cache": true,
                "batch": b, "tokens": tokens, "seconds": secs, "images_per_s": b as f64 / secs,
                "images_per_s_incl_encoding": enc.map(|e| b as f64 / (secs + e)),
                "s_per_step": per_step, "weight_bytes_per_step": wb,
                "cache_bytes_per_step_avg": cb, "bound_s_per_step": bound,
                "ratio_to_bound": bound.map(|bd| per_step / bd),
                "compute_bound_s_per_step": compute}),
            ));
            if b == 16 && want("uncached") {
                let secs = time(repeats.min(1), || {
                    generate(&model, embs.clone(), &[], &greedy(tokens, false))
                });
                let enc = encode_s_per_image.map(|e| e * b as f64);
                emit(with(
                    json!({"figure": "decode", "strategy": "greedy", "cache": false,
                    "batch": b, "tokens": tokens, "seconds": secs,
                    "images_per_s": b as f64 / secs,
                    "images_per_s_incl_encoding": enc.map(|e| b as f64 / (secs + e))}),
                ));
            }
        }
    }

    if want("beam") {
        let b: usize = arg("--beam-batch", "4").parse().unwrap_or(4);
        let embs = embs_of(b);
        let beam3 = GenerationConfig {
            strategy: DecodeStrategy::Beam {
                num_beams: 3,
                length_penalty: 1.0,
                early_stopping: true,
            },
            ..greedy(tokens, true)
        };
        let secs = time(repeats, || generate(&model, embs.clone(), &[], &beam3));
        emit(with(
            json!({"figure": "decode", "strategy": "beam3", "cache": true, "batch": b,
            "tokens": tokens, "seconds": secs, "images_per_s": b as f64 / secs}),
        ));
        let oc = OpenClipBeamSearch {
            seq_len: tokens + 1,
            ..OpenClipBeamSearch::default()
        }
        .config()?;
        let secs = time(repeats, || generate(&model, embs.clone(), &[], &oc));
        emit(with(
            json!({"figure": "decode", "strategy": "open_clip_beam_6_in_3_groups",
            "cache": true, "batch": b, "max_tokens": tokens, "seconds": secs,
            "images_per_s": b as f64 / secs}),
        ));
    }

    if flag("--matmul-probe") {
        // Distinct weights (more than the caches hold), each used once per round, as in decoding.
        for &(m, k, n, count) in &[
            (16usize, 512usize, 2048usize, 36usize),
            (16, 2048, 512, 36),
            (16, 512, 49408, 1),
            (1, 512, 2048, 36),
            (4, 512, 2048, 36),
            (4, 2048, 512, 36),
            (8, 512, 2048, 36),
            (32, 512, 2048, 36),
        ] {
            let x = Tensor::<2>::random([m, k], Distribution::Normal(0.0, 1.0), &device);
            let ws: Vec<Tensor<2>> = (0..count)
                .map(|_| Tensor::<2>::random([n, k], Distribution::Normal(0.0, 1.0), &device))
                .collect();
            let ps: Vec<Tensor<2>> = ws
                .iter()
                .map(|w| {
                    Tensor::<2>::zeros([k, n], &device)
                        .slice_assign([0..k, 0..n], w.clone().transpose())
                })
                .collect();
            let a = time(3, || {
                for w in &ws {
                    std::hint::black_box(x.clone().matmul(w.clone().transpose()));
                }
            }) / count as f64;
            let c = time(3, || {
                for w in &ws {
                    std::hint::black_box(w.clone().matmul(x.clone().transpose()));
                }
            }) / count as f64;
            let p1 = time(3, || {
                for p in &ps {
                    std::hint::black_box(x.clone().matmul(p.clone()));
                }
            }) / count as f64;
            let p2 = time(3, || {
                for p in &ps {
                    std::hint::black_box(p.clone().transpose().matmul(x.clone().transpose()));
                }
            }) / count as f64;
            let gb = (n * k * 4) as f64 / 1e9;
            emit(
                json!({"probe": [m, k, n], "ms": {"x_wT": a * 1e3, "w_xT": c * 1e3, "x_p": p1 * 1e3, "pT_xT": p2 * 1e3},
                "gb_per_s": [gb / a, gb / c, gb / p1, gb / p2]}),
            );
        }
    }

    if flag("--cache-probe") {
        // In-place writes cost the same whatever the buffer's size; a copy would grow with it.
        for cap in [32usize, 4096] {
            let mut cache = coca_core::model::kv_cache::KvCache::with_capacity(cap);
            let kv = || Tensor::<4>::random([16, 8, 1, 64], Distribution::Default, &device);
            let mut secs = 0.0;
            for i in 0..30 {
                let (k, v) = (kv(), kv());
                let t = Instant::now();
                let views = cache.append(k, v);
                if i > 0 {
                    secs += t.elapsed().as_secs_f64();
                }
                drop(views);
            }
            emit(with(json!({"figure": "kv_cache_append", "capacity": cap,
                "buffer_mb": (2 * 16 * 8 * cap * 64 * 4) as f64 / 1e6,
                "us_per_append": secs * 1e6 / 29.0, "what": "[16, 8, 1, 64] keys and values"})));
        }
    }

    if flag("--profile") {
        let b = batches.iter().copied().max().unwrap_or(16);
        profile(&model, &embs_of(b), tokens, &base);
    }

    if want("train") {
        train_step(repeats, &base)?;
    }
    Ok(())
}

/// Times the parts of cached greedy decoding steps (`decode_step` op for op), averaged over
/// the steps of a `tokens`-token caption.
fn profile(model: &Coca, embs: &Tensor<3>, tokens: usize, base: &Value) {
    let device = embs.device();
    let b = embs.dims()[0];
    let mut cache = DecoderCache::with_capacity(model, embs.clone(), 1 + tokens);
    let mut parts: Vec<(&str, f64)> = Vec::new();
    let mut add = |name: &'static str, t: Instant| {
        let dt = t.elapsed().as_secs_f64();
        match parts.iter_mut().find(|(n, _)| *n == name) {
            Some((_, s)) => *s += dt,
            None => parts.push((name, dt)),
        }
    };
    let mut feed = vec![coca_core::tokenizer::SOT as i64; b];
    let total = Instant::now();
    for _ in 0..tokens {
        let t = Instant::now();
        let ids = Tensor::<2, Int>::from_data(TensorData::new(feed.clone(), [b, 1]), &device);
        let mut x = model.text.embed_tokens(ids, cache.len);
        add("embed", t);
        let blocks = model.text.transformer.resblocks.iter().zip(&mut cache.text);
        for (block, c) in blocks {
            x = self_attn(block, x, c, &mut add, "text");
        }
        let dec = &model.text_decoder;
        for ((block, cross), (c, (k, v))) in dec
            .resblocks
            .iter()
            .zip(&dec.cross_attn)
            .zip(cache.decoder.iter_mut().zip(&cache.cross))
        {
            x = self_attn(block, x, c, &mut add, "decoder");
            let t = Instant::now();
            let q = cross
                .attn
                .split_heads(cross.attn.project_q(cross.ln_1.forward(x.clone())));
            let q = q;
            add("cross: ln_1 + q projection", t);
            let t = Instant::now();
            let o = attention_core(q, k.clone(), v.clone());
            add("cross: attention core", t);
            let t = Instant::now();
            let y = x + cross.attn.out_proj.forward(o);
            let y = y;
            add("cross: out projection", t);
            let t = Instant::now();
            x = cross.feed_forward(y);
            add("cross: MLP", t);
        }
        cache.len += 1;
        let t = Instant::now();
        let logits = dec.logits(x);
        let vocab = logits.dims()[2];
        let logits = logits.reshape([b, vocab]);
        add("ln_final + vocabulary projection", t);
        let t = Instant::now();
        let flat: Vec<f32> = logits.into_data().try_to_vec::<f32>().unwrap_or_default();
        add("logits to host", t);
        let t = Instant::now();
        // As `generate` does it: each row's log-normaliser in parallel, then the argmax.
        use rayon::prelude::*;
        let lse: Vec<f32> = flat.par_chunks(vocab).map(logsumexp).collect();
        for (i, row) in flat.chunks(vocab).enumerate() {
            let token = argmax(row);
            std::hint::black_box(row[token as usize] - lse[i]);
            feed[i] = i64::from(token);
        }
        add("argmax + log-normaliser (host)", t);
    }
    let total = total.elapsed().as_secs_f64();
    let summed: f64 = parts.iter().map(|(_, s)| s).sum();
    for (name, s) in &parts {
        emit(with(
            base,
            json!({"figure": "decode_step_profile", "batch": b, "part": name,
            "ms_per_step": s * 1e3 / tokens as f64, "share": s / summed}),
        ));
    }
    emit(with(
        base,
        json!({"figure": "decode_step_profile", "batch": b, "part": "total",
        "ms_per_step": total * 1e3 / tokens as f64}),
    ));
}

/// Attention of the one new position as the model computes it (`cpu::attend_one` where it
/// applies, burn's attention otherwise), heads merged: `[B, 1, H * dh]`.
fn attention_core(q: Tensor<4>, k: Tensor<4>, v: Tensor<4>) -> Tensor<3> {
    if let Some(o) = coca_core::cpu::attend_one(&q, &k, &v) {
        return o;
    }
    let b = q.dims()[0];
    let o = attention(q, k, v, None, None, AttentionModuleOptions::default());
    let [_, heads, _, dh] = o.dims();
    o.swap_dims(1, 2).reshape([b, 1, heads * dh])
}

fn self_attn(
    block: &ResidualAttentionBlock,
    x: Tensor<3>,
    cache: &mut coca_core::model::kv_cache::KvCache,
    add: &mut impl FnMut(&'static str, Instant),
    tower: &str,
) -> Tensor<3> {
    let names: [&'static str; 5] = if tower == "text" {
        [
            "text self: ln_1 + qkv projection",
            "text self: cache write",
            "text self: attention core",
            "text self: out projection",
            "text self: MLP",
        ]
    } else {
        [
            "decoder self: ln_1 + qkv projection",
            "decoder self: cache write",
            "decoder self: attention core",
            "decoder self: out projection",
            "decoder self: MLP",
        ]
    };
    let t = Instant::now();
    let (q, k, v) = block.attn.project_qkv(block.ln_1.forward(x.clone()));
    let q = block.attn.split_heads(q);
    let (k, v) = (block.attn.split_heads(k), block.attn.split_heads(v));
    add(names[0], t);
    let t = Instant::now();
    let (k, v) = cache.append(k, v);
    add(names[1], t);
    let t = Instant::now();
    let o = attention_core(q, k, v);
    add(names[2], t);
    let t = Instant::now();
    let x = x + block.attn.out_proj.forward(o);
    add(names[3], t);
    let t = Instant::now();
    let x = block.feed_forward(x);
    add(names[4], t);
    x
}

/// One training step of the tiny model (forward, CoCa loss, backward, SGD update) on the
/// autodiff version of the device, images/s.
fn train_step(repeats: usize, base: &Value) -> coca_core::Result<()> {
    use coca_core::burn::optim::{GradientsParams, SgdConfig};
    use coca_core::loss::CocaLossConfig;
    let device = parse_device(&arg("--device", "cpu"))?.autodiff();
    let cfg = CocaConfig::tiny();
    let b: usize = arg("--train-batch", "32").parse().unwrap_or(32);
    let s = cfg.vision_cfg.image_size;
    let ctx = cfg.text_cfg.context_length;
    let vocab = cfg.text_cfg.vocab_size as i64;
    let pixels = Tensor::<4>::random([b, 3, s, s], Distribution::Normal(0.0, 1.0), &device);
    let ids: Vec<i64> = (0..b * ctx)
        .map(|i| 1 + (i as i64 * 7919) % (vocab - 1))
        .collect();
    let text = Tensor::<2, Int>::from_data(TensorData::new(ids, [b, ctx]), &device);
    let mut model = Some(Coca::new(&cfg, &device));
    let mut optim = SgdConfig::new().init();
    let loss_cfg = CocaLossConfig::default();
    let secs = time(repeats.max(3), || {
        let Some(m) = model.take() else { return 0.0 };
        let out = m.forward(pixels.clone(), text.clone());
        let loss = loss_cfg.compute(&m, &out).total;
        let value = loss.clone().into_scalar::<f32>();
        let grads = GradientsParams::from_grads(loss.backward(), &m);
        model = Some(optim.step(1e-3, m, grads));
        value
    });
    emit(with(
        base,
        json!({"figure": "train_step", "preset": "tiny", "batch": b,
        "seconds": secs, "images_per_s": b as f64 / secs,
        "what": "forward + CoCa loss + backward + SGD step, autodiff"}),
    ));
    Ok(())
}
