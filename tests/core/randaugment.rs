//! RandAugment operations against Pillow's (tests/data/randaugment, made by its make.py).

use std::path::PathBuf;

use coca_core::preprocess::load_image;
use coca_core::randaugment::AugmentOp;

fn data(rel: &str) -> PathBuf {
    crate::common::test_data("randaugment").join(rel)
}

#[test]
fn operations_match_pillow() {
    let listing: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data("ops.json")).unwrap()).unwrap();
    let fill: Vec<u8> = serde_json::from_value(listing["fill"].clone()).unwrap();
    let fill = [fill[0], fill[1], fill[2]];
    let input = load_image(data("input.png")).unwrap();
    let ops = listing["ops"].as_array().unwrap();
    assert_eq!(ops.len(), 20);
    for case in ops {
        let name = case["name"].as_str().unwrap();
        let arg = case["arg"].as_f64().unwrap_or(0.0);
        let op = match case["op"].as_str().unwrap() {
            "AutoContrast" => AugmentOp::AutoContrast,
            "Equalize" => AugmentOp::Equalize,
            "Invert" => AugmentOp::Invert,
            "Posterize" => AugmentOp::Posterize(arg as u8),
            "Solarize" => AugmentOp::Solarize(arg as u16),
            "SolarizeAdd" => AugmentOp::SolarizeAdd(arg as u8),
            "Color" => AugmentOp::Color(arg as f32),
            "Contrast" => AugmentOp::Contrast(arg as f32),
            "Brightness" => AugmentOp::Brightness(arg as f32),
            "Sharpness" => AugmentOp::Sharpness(arg as f32),
            "Rotate" => AugmentOp::Rotate(arg),
            "ShearX" => AugmentOp::ShearX(arg),
            "ShearY" => AugmentOp::ShearY(arg),
            "TranslateX" => AugmentOp::TranslateX(arg),
            "TranslateY" => AugmentOp::TranslateY(arg),
            other => panic!("unknown op {other}"),
        };
        let want = load_image(data(&format!("expected/{name}.png"))).unwrap();
        let got = op.apply(&input, fill);
        assert_eq!(got.dimensions(), want.dimensions(), "{name}");
        let diffs: Vec<i32> = got
            .iter()
            .zip(want.iter())
            .map(|(a, b)| (i32::from(*a) - i32::from(*b)).abs())
            .collect();
        let max = diffs.iter().copied().max().unwrap_or(0);
        let off = diffs.iter().filter(|&&d| d > 0).count();
        eprintln!(
            "{name}: max diff {max}, {off} of {} values differ",
            diffs.len()
        );
        assert!(max == 0, "{name}: max diff {max} ({off} values differ)");
    }
}
