//! Caption generation: greedy parity with open_clip, cache equivalence, beam search properties.

use coca_core::burn::tensor::{Device, Tensor, TensorData};
use coca_core::generation::{DecodeStrategy, GenerationConfig, generate};
use coca_core::{Coca, Pretrained};

use crate::common::{fixture, read_reference, test_device};

fn model_and_embs(device: &Device) -> (Coca, Tensor<3>, Vec<Vec<u32>>) {
    let reference = read_reference(&fixture("coca-tiny/reference.safetensors"));
    let model = Pretrained::load(fixture("coca-tiny").to_str().unwrap(), device)
        .unwrap()
        .model;
    let (ps, pv) = &reference["pixel_values"];
    let pixels = Tensor::from_data(TensorData::new(pv.clone(), ps.clone()), device);
    let embs = model.encode_image(pixels).embs;
    let (gs, gv) = &reference["greedy_tokens"];
    let greedy = gv
        .chunks(gs[1])
        .map(|r| r.iter().map(|&v| v as u32).collect())
        .collect();
    (model, embs, greedy)
}

fn cfg(
    strategy: DecodeStrategy,
    max: usize,
    ignore_eos: bool,
    use_cache: bool,
) -> GenerationConfig {
    GenerationConfig {
        strategy,
        max_new_tokens: max,
        min_new_tokens: 0,
        repetition_penalty: 1.0,
        ignore_eos,
        use_cache,
    }
}

fn beam(k: usize, lp: f32) -> DecodeStrategy {
    DecodeStrategy::Beam {
        num_beams: k,
        length_penalty: lp,
        early_stopping: true,
    }
}

#[test]
fn greedy_reproduces_open_clip_tokens() {
    let device = test_device();
    let (model, embs, want) = model_and_embs(&device);
    for use_cache in [true, false] {
        let got = generate(
            &model,
            embs.clone(),
            &[],
            &cfg(DecodeStrategy::Greedy, 10, true, use_cache),
        )
        .unwrap();
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(w[0], 49406);
            assert_eq!(g.tokens, w[1..].to_vec(), "use_cache={use_cache}");
        }
    }
}

#[test]
fn cached_and_uncached_decoding_agree() {
    let device = test_device();
    let (model, embs, _) = model_and_embs(&device);
    for strategy in [DecodeStrategy::Greedy, beam(3, 1.0), beam(2, 0.0)] {
        for ignore_eos in [false, true] {
            let a = generate(
                &model,
                embs.clone(),
                &[320],
                &cfg(strategy.clone(), 8, ignore_eos, true),
            )
            .unwrap();
            let b = generate(
                &model,
                embs.clone(),
                &[320],
                &cfg(strategy.clone(), 8, ignore_eos, false),
            )
            .unwrap();
            let ta: Vec<_> = a.iter().map(|c| c.tokens.clone()).collect();
            let tb: Vec<_> = b.iter().map(|c| c.tokens.clone()).collect();
            assert_eq!(ta, tb, "{strategy:?} ignore_eos={ignore_eos}");
            for (x, y) in a.iter().zip(&b) {
                assert!(
                    (x.logprob - y.logprob).abs() < 1e-3,
                    "{} vs {}",
                    x.logprob,
                    y.logprob
                );
            }
        }
    }
}

#[test]
fn one_beam_equals_greedy() {
    let device = test_device();
    let (model, embs, _) = model_and_embs(&device);
    for ignore_eos in [false, true] {
        let g = generate(
            &model,
            embs.clone(),
            &[],
            &cfg(DecodeStrategy::Greedy, 9, ignore_eos, true),
        )
        .unwrap();
        let b = generate(
            &model,
            embs.clone(),
            &[],
            &cfg(beam(1, 1.0), 9, ignore_eos, true),
        )
        .unwrap();
        assert_eq!(
            g.iter().map(|c| &c.tokens).collect::<Vec<_>>(),
            b.iter().map(|c| &c.tokens).collect::<Vec<_>>()
        );
    }
}

#[test]
fn beam_search_finds_more_likely_captions_than_greedy() {
    let device = test_device();
    let (model, embs, _) = model_and_embs(&device);
    let g = generate(
        &model,
        embs.clone(),
        &[],
        &cfg(DecodeStrategy::Greedy, 6, true, true),
    )
    .unwrap();
    let b = generate(&model, embs, &[], &cfg(beam(5, 0.0), 6, true, true)).unwrap();
    let mut strictly_better = 0;
    for (g, b) in g.iter().zip(&b) {
        assert_eq!(b.tokens.len(), 6);
        assert!(
            b.logprob >= g.logprob - 1e-4,
            "beam {} < greedy {}",
            b.logprob,
            g.logprob
        );
        if b.logprob > g.logprob + 1e-3 {
            strictly_better += 1;
        }
    }
    assert!(
        strictly_better > 0,
        "beam search never beat greedy: {g:?} vs {b:?}"
    );
}

#[test]
fn sampling_is_seeded_and_rows_stop_at_eot() {
    let device = test_device();
    let (model, embs, _) = model_and_embs(&device);
    let s = |seed| DecodeStrategy::Sample {
        top_k: Some(50),
        top_p: Some(0.95),
        temperature: 1.0,
        seed,
    };
    let a = generate(&model, embs.clone(), &[], &cfg(s(7), 12, false, true)).unwrap();
    let b = generate(&model, embs.clone(), &[], &cfg(s(7), 12, false, true)).unwrap();
    assert_eq!(a, b);
    for c in &a {
        if let Some(p) = c.tokens.iter().position(|&t| t == 49407) {
            assert_eq!(
                p,
                c.tokens.len() - 1,
                "nothing after the end token: {:?}",
                c.tokens
            );
        }
    }
}

#[test]
fn too_long_requests_are_rejected() {
    let device = test_device();
    let (model, embs, _) = model_and_embs(&device);
    let e = generate(
        &model,
        embs,
        &[],
        &cfg(DecodeStrategy::Greedy, 200, false, true),
    )
    .unwrap_err();
    assert!(e.to_string().contains("context length"), "{e}");
}
