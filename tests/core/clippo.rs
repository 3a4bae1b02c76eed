//! CLIPPO against big_vision's own outputs (`tests/fixtures/clippo-tiny`, README there):
//! the 33 `render_unifont` images pixel for pixel, the tiny model's outputs, intermediates,
//! loss and every parameter's gradient, strict `.npz` loading and the exact save round trip.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use coca_core::burn::tensor::{Device, Tensor, TensorData};
use coca_core::clippo::model::{TowerOutput, tensor_values};
use coca_core::clippo::npz::{NpyArray, read_npz, write_npz};
use coca_core::clippo::preprocess::{preprocess_eval, value_range};
use coca_core::clippo::render::{RenderOptions, render_text};
use coca_core::clippo::{Clippo, contrastive_loss};
use sha2::{Digest, Sha256};

use crate::common::{Tol, assert_close, fixture, gradient_tolerance, test_device};

fn tmp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("coca-clippo-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn model_path() -> PathBuf {
    fixture("clippo-tiny/model/clippo_tiny.npz")
}

fn reference() -> BTreeMap<String, NpyArray> {
    read_npz(&fixture("clippo-tiny/model/reference.npz")).unwrap()
}

fn f32s(a: &NpyArray) -> Vec<f32> {
    a.to_f32().expect("numeric array")
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn png_rgb(path: &Path) -> (u32, u32, Vec<u8>) {
    let img = image::open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .to_rgb8();
    (img.width(), img.height(), img.into_raw())
}

/// Render options from a `render.json` entry's `settings`.
fn options(s: &serde_json::Value) -> RenderOptions {
    let n = |k: &str| s[k].as_u64().unwrap_or_else(|| panic!("settings.{k}")) as usize;
    RenderOptions {
        image_size: n("image_size"),
        font_size: n("font_size"),
        max_chars: n("max_chars"),
        background_brightness: n("background_brightness") as u8,
        text_brightness: n("text_brightness") as u8,
        lower: s["lower"].as_bool().unwrap(),
        monospace: s["monospace"].as_bool().unwrap(),
        spacing: n("spacing"),
        min_width: n("min_width"),
    }
}

#[test]
fn every_fixture_render_is_pixel_exact() {
    let dir = fixture("clippo-tiny");
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("render.json")).unwrap()).unwrap();
    let entries = meta["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 33);
    let mut failures = Vec::new();
    for e in entries {
        let file = e["file"].as_str().unwrap();
        let text = e["string"].as_str().unwrap();
        // The JSON's code points and the string agree (the test renders what the op rendered).
        let cps: Vec<String> = text
            .chars()
            .map(|c| format!("U+{:04X}", c as u32))
            .collect();
        let want_cps: Vec<String> = e["codepoints"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        assert_eq!(cps, want_cps, "{file}: code points");
        let rendered = render_text(text, &options(&e["settings"])).unwrap();
        let got = rendered.to_rgb();
        let (w, h, want) = png_rgb(&dir.join(file));
        assert_eq!(
            [h as u64, w as u64, 3],
            [
                e["shape"][0].as_u64().unwrap(),
                e["shape"][1].as_u64().unwrap(),
                e["shape"][2].as_u64().unwrap()
            ],
            "{file}: PNG shape"
        );
        assert_eq!(
            sha256_hex(&want),
            e["sha256_raw_uint8"].as_str().unwrap(),
            "{file}: the PNG does not hold the recorded array"
        );
        let ink = rendered
            .grey
            .iter()
            .filter(|&&v| v != options(&e["settings"]).background_brightness)
            .count();
        if (w as usize, h as usize) != (rendered.size, rendered.size) || got != want {
            let diff = got.iter().zip(&want).filter(|(a, b)| a != b).count() / 3;
            failures.push(format!("{file}: {diff} pixels differ ({ink} ink pixels)"));
        } else if sha256_hex(&got) != e["sha256_raw_uint8"].as_str().unwrap() {
            failures.push(format!("{file}: sha256 differs"));
        } else {
            assert_eq!(ink as u64, e["ink_pixels"].as_u64().unwrap(), "{file}");
        }
    }
    assert!(
        failures.is_empty(),
        "{} of 33 renders differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn the_model_inputs_are_the_renderer_and_value_range_outputs() {
    let r = reference();
    let texts = ["a cat", "Big Dog!", "東京"];
    let mut rendered = Vec::new();
    for t in texts {
        rendered.extend(
            render_text(t, &RenderOptions::with_size(32))
                .unwrap()
                .to_rgb(),
        );
    }
    assert_eq!(r["texts_u8"].data, rendered, "texts_u8");
    let to_range: Vec<f32> = rendered.iter().map(|&v| value_range(v)).collect();
    assert_eq!(f32s(&r["texts"]), to_range, "texts (bit-exact value_range)");
    // The photos are already at the model's 32 px: preprocessing is value_range only.
    let mut images = Vec::new();
    for i in 0..3 {
        let path = fixture(&format!("clippo-tiny/model/images/img{i}.png"));
        let img = image::open(&path).unwrap().to_rgb8();
        images.extend(preprocess_eval(&img, 32));
    }
    assert_eq!(f32s(&r["images"]), images, "images");
}

fn nhwc(a: &NpyArray, device: &Device) -> Tensor<4> {
    let s: [usize; 4] = a.shape.clone().try_into().unwrap();
    Tensor::from_data(TensorData::new(f32s(a), s), device)
}

fn check<const D: usize>(name: &str, t: Tensor<D>, r: &BTreeMap<String, NpyArray>, tol: Tol) {
    let want = &r[name];
    let (shape, got) = tensor_values(t).unwrap();
    assert_eq!(shape, want.shape, "{name}: shape");
    let c = assert_close(name, &got, &f32s(want), tol);
    eprintln!("{name}: max |diff| {:.2e}", c.max_abs);
}

fn check_tower(prefix: &str, o: &TowerOutput, r: &BTreeMap<String, NpyArray>, tol: Tol) {
    let p = |k: &str| format!("out/{prefix}/{k}");
    check(&p("stem"), o.stem.clone(), r, tol);
    check(&p("with_posemb"), o.with_posemb.clone(), r, tol);
    for (i, b) in o.blocks.iter().enumerate() {
        let q = |k: &str| p(&format!("encoder/block{i:02}/{k}"));
        check(&q("sa"), b.sa.clone(), r, tol);
        check(&q("+sa"), b.plus_sa.clone(), r, tol);
        check(&q("mlp"), b.mlp.clone(), r, tol);
        check(&q("+mlp"), b.plus_mlp.clone(), r, tol);
    }
    let last = o.blocks.last().unwrap().plus_mlp.clone();
    check(&p("encoder/pre_ln"), last, r, tol);
    check(&p("encoded"), o.encoded.clone(), r, tol);
    check(&p("head_input"), o.head_input.clone(), r, tol);
    check(&p("pre_logits"), o.head_input.clone(), r, tol);
    check(&p("logits"), o.logits.clone(), r, tol);
    check(&p("norm"), o.norm.clone(), r, tol);
    check(&p("normalized"), o.normalized.clone(), r, tol);
}

/// Tight enough to tell exact-erf GELU from the tanh form (6e-5 on `zimg`, fixture README).
fn output_tolerance() -> Tol {
    let on_cpu = matches!(
        std::env::var("COCA_TEST_DEVICE").as_deref(),
        Ok("cpu") | Err(_)
    );
    if on_cpu {
        Tol::new(1e-5, 1e-5)
    } else {
        Tol::new(1e-3, 1e-3)
    }
}

#[test]
fn outputs_intermediates_and_loss_match_big_vision() {
    let r = reference();
    let device = test_device();
    let model = Clippo::load_npz(&model_path(), &device).unwrap();
    let cfg = model.config();
    assert_eq!(
        (
            cfg.width,
            cfg.depth,
            cfg.num_heads,
            cfg.mlp_dim,
            cfg.patch_size,
            cfg.image_size
        ),
        (32, 1, 2, 128, 16, 32)
    );
    assert_eq!(cfg.out_dim, 16);
    let tol = output_tolerance();
    let out = model.forward(nhwc(&r["images"], &device), nhwc(&r["texts"], &device));
    check_tower("img", &out.img, &r, tol);
    check_tower("txt", &out.txt, &r, tol);
    check("zimg", out.img.normalized.clone(), &r, tol);
    check("ztxt", out.txt.normalized.clone(), &r, tol);
    check("zimg_prenorm", out.img.logits.clone(), &r, tol);
    check("t", out.t.clone(), &r, tol);
    check("t_parameter", model.t.val(), &r, Tol::EXACT);
    // An image-only call embeds the same way.
    check("zimg", model.embed(nhwc(&r["images"], &device)), &r, tol);
    let loss = contrastive_loss(out.img.normalized, out.txt.normalized, out.t);
    check("logits", loss.logits, &r, tol);
    for (name, t) in [
        ("loss", loss.total),
        ("loss_i2t", loss.i2t),
        ("loss_t2i", loss.t2i),
    ] {
        let (_, got) = tensor_values(t).unwrap();
        let c = assert_close(name, &got, &f32s(&r[name]), tol);
        eprintln!("{name}: {} (|diff| {:.2e})", got[0], c.max_abs);
    }
}

#[test]
fn every_parameter_gradient_matches_big_vision() {
    let r = reference();
    let grads_ref = read_npz(&fixture("clippo-tiny/model/grads.npz")).unwrap();
    let device = test_device().autodiff();
    let model = Clippo::load_npz(&model_path(), &device).unwrap();
    let out = model.forward(nhwc(&r["images"], &device), nhwc(&r["texts"], &device));
    let loss = contrastive_loss(out.img.normalized, out.txt.normalized, out.t);
    let grads = loss.total.backward();
    let tol = gradient_tolerance();
    let params = model.named_params();
    let keys: Vec<&String> = params.iter().map(|(k, _)| k).collect();
    assert_eq!(keys, grads_ref.keys().collect::<Vec<_>>(), "gradient keys");
    assert_eq!(params.len(), 39);
    for (key, p) in &params {
        let (shape, got) = p
            .grad(&grads)
            .unwrap_or_else(|| panic!("{key}: no gradient"))
            .unwrap();
        let want = &grads_ref[key];
        assert_eq!(shape, want.shape, "{key}: gradient shape");
        let want = f32s(want);
        if key.ends_with("/key/bias") {
            // Softmax is shift-invariant per query: the key bias gradient is exactly 0 in
            // exact arithmetic and float noise (~1e-9) in both implementations.
            let zeros = vec![0f32; want.len()];
            assert_close(&format!("{key} (reference)"), &want, &zeros, Tol::abs(1e-7));
            assert_close(key, &got, &zeros, Tol::abs(1e-7));
            continue;
        }
        // atol relative to the tensor's largest gradient (see gradient_tolerance).
        let scale = want.iter().fold(0f64, |m, v| m.max(f64::from(v.abs())));
        let t = Tol::new(tol.atol * scale.max(1e-3), tol.rtol);
        let c = assert_close(key, &got, &want, t);
        eprintln!(
            "{key}: max |diff| {:.2e} (max |grad| {scale:.2e})",
            c.max_abs
        );
    }
    // The named gradients of reference.npz are the same arrays as grads.npz.
    for (name, a) in &r {
        if let Some(key) = name.strip_prefix("grad/") {
            assert_eq!(a.data, grads_ref[key].data, "{name}");
        }
    }
}

fn load_err(arrays: &BTreeMap<String, NpyArray>, name: &str) -> String {
    let path = tmp_dir(name).join("ckpt.npz");
    write_npz(&path, arrays).unwrap();
    Clippo::load_npz(&path, &Device::flex())
        .err()
        .unwrap_or_else(|| panic!("{name}: a bad checkpoint loaded"))
        .to_string()
}

#[test]
fn strict_load_names_missing_extra_and_misshaped_keys() {
    let base = read_npz(&model_path()).unwrap();
    assert_eq!(base.len(), 39);
    let ln = "params/img/MAPHead_0/LayerNorm_0/scale";

    let mut a = base.clone();
    a.remove("params/img/MAPHead_0/probe");
    let e = load_err(&a, "missing");
    assert!(
        e.contains("missing keys: params/img/MAPHead_0/probe"),
        "{e}"
    );
    assert!(e.contains("ckpt.npz"), "the error names the file: {e}");

    let mut a = base.clone();
    a.insert(
        "params/img/extra/kernel".into(),
        NpyArray::from_f32(vec![2], &[1.0, 2.0]),
    );
    let e = load_err(&a, "extra");
    assert!(
        e.contains("unexpected keys: params/img/extra/kernel"),
        "{e}"
    );

    let mut a = base.clone();
    a.insert(ln.into(), NpyArray::from_f32(vec![31], &[1.0; 31]));
    let e = load_err(&a, "misshaped");
    assert!(
        e.contains(&format!("misshaped keys: {ln} (file [31], model [32])")),
        "{e}"
    );

    // All three at once are all listed.
    let mut a = base.clone();
    a.remove("params/t");
    a.insert("params/u".into(), NpyArray::from_f32(vec![1], &[0.0]));
    a.insert(ln.into(), NpyArray::from_f32(vec![31], &[1.0; 31]));
    let e = load_err(&a, "all");
    for k in ["params/t", "params/u", ln] {
        assert!(e.contains(k), "{k} not named: {e}");
    }
    // A key the config is derived from.
    let mut a = base;
    a.remove("params/img/head/kernel");
    let e = load_err(&a, "derive");
    assert!(e.contains("params/img/head/kernel"), "{e}");
}

/// The raw bytes of every `.npy` entry of an archive.
fn entries(path: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut zip = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    (0..zip.len())
        .map(|i| {
            let mut f = zip.by_index(i).unwrap();
            let mut b = Vec::new();
            f.read_to_end(&mut b).unwrap();
            (f.name().unwrap().to_string(), b)
        })
        .collect()
}

#[test]
fn save_round_trip_is_exact_and_safetensors_export_matches() {
    let src = model_path();
    let original = read_npz(&src).unwrap();
    let model = Clippo::load_npz(&src, &Device::flex()).unwrap();
    let dir = tmp_dir("roundtrip");
    let out = dir.join("saved.npz");
    model.save_npz(&out).unwrap();
    let saved = read_npz(&out).unwrap();
    assert_eq!(
        saved.keys().collect::<Vec<_>>(),
        original.keys().collect::<Vec<_>>()
    );
    for (k, a) in &original {
        assert_eq!(saved[k].descr, a.descr, "{k}: dtype");
        assert_eq!(saved[k].shape, a.shape, "{k}: shape");
        assert!(saved[k].data == a.data, "{k}: array bytes differ");
    }
    // Each `.npy` entry, header included, is byte-identical to the one numpy wrote.
    assert_eq!(entries(&out), entries(&src), ".npy entries");
    // And the saved file loads again.
    Clippo::load_npz(&out, &Device::flex()).unwrap();

    let st = dir.join("saved.safetensors");
    model.save_safetensors(&st).unwrap();
    let bytes = std::fs::read(&st).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    assert_eq!(st.len(), original.len());
    for (k, a) in &original {
        let v = st.tensor(k).unwrap();
        assert_eq!(v.dtype(), safetensors::Dtype::F32, "{k}");
        assert_eq!(v.shape(), a.shape.as_slice(), "{k}");
        assert!(
            v.data() == a.data.as_slice(),
            "{k}: safetensors bytes differ"
        );
    }
}

#[test]
fn resize_matches_tensorflow_bilinear_bit_for_bit() {
    use coca_core::clippo::preprocess::resize_tf_bilinear;
    let arrays = read_npz(&fixture("clippo-resize/resize.npz")).unwrap();
    let names: Vec<&str> = arrays
        .keys()
        .filter_map(|k| k.strip_suffix("/input"))
        .collect();
    assert_eq!(names.len(), 4);
    for name in names {
        let input = &arrays[&format!("{name}/input")];
        let want = &arrays[&format!("{name}/output")];
        let img = image::RgbImage::from_raw(
            input.shape[1] as u32,
            input.shape[0] as u32,
            input.data.clone(),
        )
        .unwrap();
        let (h, w) = (want.shape[0] as u32, want.shape[1] as u32);
        let got = resize_tf_bilinear(&img, w, h);
        let diff = got
            .as_raw()
            .iter()
            .zip(&want.data)
            .filter(|(a, b)| a != b)
            .count();
        assert_eq!(
            diff,
            0,
            "{name}: {diff} of {} values differ",
            want.data.len()
        );
        if h == w {
            let pre = preprocess_eval(&img, w);
            let want_f: Vec<f32> = want.data.iter().map(|&v| value_range(v)).collect();
            assert_eq!(pre, want_f, "{name}: preprocess_eval");
        }
    }
}
