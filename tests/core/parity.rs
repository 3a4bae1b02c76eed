//! Parity of the Rust CoCa with open_clip 3.3.0 on the `coca-tiny` fixture.

use coca_core::burn::tensor::{Device, Int, Tensor, TensorData};
use coca_core::loss::CocaLossConfig;
use coca_core::{Coca, Pretrained};

use crate::common::{
    Closeness, Tol, assert_close, assert_close_shaped, fixture, gradient_tolerance,
    parity_tolerance, read_reference, test_device, values,
};

fn reference_losses() -> (f32, f32) {
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("coca-tiny/reference.json")).unwrap(),
    )
    .unwrap();
    let l = &json["losses"];
    (
        l["contrastive"].as_f64().unwrap() as f32,
        l["caption_weighted"].as_f64().unwrap() as f32,
    )
}

fn inputs(reference: &ReferenceMap, device: &Device) -> (Tensor<4>, Tensor<2, Int>) {
    let (ps, pv) = &reference["pixel_values"];
    let pixels = Tensor::from_data(TensorData::new(pv.clone(), ps.clone()), device);
    let (ts, tv) = &reference["text_tokens"];
    let tokens: Vec<i64> = tv.iter().map(|&v| v as i64).collect();
    (
        pixels,
        Tensor::from_data(TensorData::new(tokens, ts.clone()), device),
    )
}

type ReferenceMap = std::collections::BTreeMap<String, (Vec<usize>, Vec<f32>)>;

fn check_forward(
    model: &Coca,
    reference: &ReferenceMap,
    device: &Device,
    tol: Tol,
) -> Vec<(String, Closeness)> {
    let (pixels, text) = inputs(reference, device);
    let out = model.forward(pixels, text);
    let logits = out.logits(model);
    let [b, _, v] = logits.dims();
    let mut diffs = vec![
        ("image_features", values(out.image.features.clone())),
        ("image_embs", values(out.image.embs.clone())),
        ("text_features", values(out.text.features.clone())),
        ("text_token_embs", values(out.text.token_embs.clone())),
        (
            "caption_logits_first6",
            values(logits.clone().slice([0..b, 0..6, 0..v])),
        ),
    ]
    .into_iter()
    .map(|(name, got)| {
        let c = assert_close_shaped(name, &got, &reference[name], tol);
        (name.to_string(), c)
    })
    .collect::<Vec<_>>();
    let loss = CocaLossConfig::default().compute(model, &out);
    let sparse = values(loss.caption.clone()).1;
    // The dense and the sparse (non-pad rows only) caption losses agree.
    let dense = values(coca_core::loss::caption_loss(logits, out.labels.clone(), 0) * 2.0).1;
    let (want_c, want_cap) = reference_losses();
    for (name, got, want) in [
        ("loss.caption_dense_vs_sparse", dense, sparse.clone()),
        ("loss.contrastive", values(loss.contrastive).1, vec![want_c]),
        ("loss.caption_weighted", sparse, vec![want_cap]),
    ] {
        diffs.push((name.into(), assert_close(name, &got, &want, tol)));
    }
    diffs
}

fn load(file: &str, device: &Device) -> Coca {
    let path = fixture("coca-tiny").join(file);
    Pretrained::load(path.to_str().unwrap(), device)
        .unwrap()
        .model
}

#[test]
fn forward_matches_open_clip_from_safetensors_and_bin() {
    let reference = read_reference(&fixture("coca-tiny/reference.safetensors"));
    let device = test_device();
    for file in ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"] {
        let diffs = check_forward(
            &load(file, &device),
            &reference,
            &device,
            parity_tolerance(),
        );
        eprintln!("{file}: {diffs:?}");
    }
}

#[test]
fn loading_the_directory_equals_loading_the_file() {
    let device = Device::flex();
    let dir = Pretrained::load(fixture("coca-tiny").to_str().unwrap(), &device).unwrap();
    assert!(dir.files.weights.ends_with("open_clip_model.safetensors"));
    assert_eq!(dir.config.embed_dim, 32);
    assert_eq!(dir.preprocess.image_size, 64);
}

#[test]
fn gradients_match_open_clip() {
    let reference = read_reference(&fixture("coca-tiny/reference.safetensors"));
    let device = test_device().autodiff();
    let tol = gradient_tolerance();
    let model = load("open_clip_model.safetensors", &device);
    let (pixels, text) = inputs(&reference, &device);
    let out = model.forward(pixels, text);
    let loss = CocaLossConfig::default().compute(&model, &out).total;
    let grads = loss.backward();
    let g = |t: Tensor<2>| values(t.grad(&grads).expect("gradient"));
    let mut got = vec![
        (
            "grad.visual.conv1.weight",
            values(model.visual.conv1.weight.val().grad(&grads).unwrap()),
        ),
        (
            "grad.visual.attn_pool.query",
            g(model.visual.attn_pool.query.val()),
        ),
        (
            "grad.text.cls_emb",
            values(model.text.cls_emb.val().grad(&grads).unwrap()),
        ),
        (
            "grad.text_decoder.resblocks.0.mlp.c_fc.weight",
            g(model.text_decoder.resblocks[0].mlp.c_fc.weight.val()),
        ),
        (
            "grad.text_decoder.cross_attn.0.ln_1_kv.weight",
            values(
                model.text_decoder.cross_attn[0]
                    .ln_1_kv
                    .as_ref()
                    .unwrap()
                    .weight
                    .val()
                    .grad(&grads)
                    .unwrap(),
            ),
        ),
        (
            "grad.logit_scale",
            values(model.logit_scale.val().grad(&grads).unwrap()),
        ),
    ];
    // The token embedding gradient is compared on the listed rows only.
    let (_, rows) = &reference["grad_rows.text.token_embedding.weight"];
    let full = g(model.text.token_embedding.weight.val());
    let width = full.0[1];
    let picked: Vec<f32> = rows
        .iter()
        .flat_map(|&r| full.1[r as usize * width..(r as usize + 1) * width].to_vec())
        .collect();
    got.push((
        "grad.text.token_embedding.weight",
        (vec![rows.len(), width], picked),
    ));
    for (name, mut value) in got {
        let want = &reference[name];
        if want.0.is_empty() {
            value.0 = vec![]; // 0-d scalar in the reference, [1] here
        }
        // Rounding error grows with the magnitude of the summed terms, not of each result:
        // the absolute part scales with the tensor's largest value, small enough that the
        // rows of tiny gradients (e.g. 255 of the 256 pooler queries, ~1e-5) are checked.
        let scale = want.1.iter().fold(0f32, |m, v| m.max(v.abs()));
        assert!(
            scale.is_finite() && scale > 0.0,
            "{name}: reference scale {scale}"
        );
        let tol = Tol::new(tol.atol * f64::from(scale), tol.rtol);
        let c = assert_close_shaped(name, &value, want, tol);
        eprintln!("{name}: {c:?} (atol {:e})", tol.atol);
    }
}

#[test]
fn export_round_trip_writes_the_same_tensors() {
    let device = Device::flex();
    let src = fixture("coca-tiny/open_clip_model.safetensors");
    let model = load("open_clip_model.safetensors", &device);
    let out = std::env::temp_dir().join(format!("coca-export-{}.safetensors", std::process::id()));
    coca_core::checkpoint::save_open_clip(&model, &out).unwrap();
    let a = read_reference(&src);
    let b = read_reference(&out);
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (k, v) in &a {
        assert_close_shaped(k, &b[k], v, Tol::EXACT);
    }
    std::fs::remove_file(out).ok();
}
