//! Each command on the fixtures: results and error paths.

use crate::common::{
    Tol, assert_close, assert_close_shaped, coca, coca_logging, fixture, q, read_tensors, stderr,
    stdout, synth_world, tmp,
};

fn s(p: &std::path::Path) -> String {
    p.display().to_string()
}

#[test]
fn tokenize_prints_open_clip_ids() {
    let cases: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("tokenizer/token_ids.json")).unwrap(),
    )
    .unwrap();
    // The built-in CLIP vocabulary: no --tokenizer.
    for case in cases["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["context_length"] == 16)
        .take(6)
    {
        let o = coca(&[
            "tokenize",
            "--context-length",
            "16",
            case["text"].as_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let got: Vec<u32> = serde_json::from_str(stdout(&o).trim()).unwrap();
        let mut want: Vec<u32> = serde_json::from_value(case["ids"].clone()).unwrap();
        want.resize(16, 0);
        assert_eq!(got, want, "{}", case["text"]);
    }
}

#[test]
fn caption_greedy_reproduces_open_clip_and_reports_bad_images() {
    let dir = tmp("caption");
    let bad = dir.join("broken.png");
    std::fs::write(&bad, b"not a png").unwrap();
    let model = s(&fixture("coca-tiny"));
    let images: Vec<String> = (0..3)
        .map(|i| s(&fixture(&format!("coca-tiny/images/img{i}.png"))))
        .collect();
    let mut args = vec![
        "caption",
        "--model",
        &model,
        "--decode",
        "greedy",
        "--max-tokens",
        "10",
        "--min-tokens",
        "0",
        "--ignore-eos",
        "--json",
    ];
    args.extend(images.iter().map(String::as_str));
    let bad_s = s(&bad);
    args.push(&bad_s);
    let o = coca(&args);
    assert!(
        !o.status.success(),
        "an unreadable image must make the exit code non-zero"
    );
    assert!(stderr(&o).contains("broken.png"), "{}", stderr(&o));
    let reference = std::fs::read(fixture("coca-tiny/reference.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&reference).unwrap();
    let g = st.tensor("greedy_tokens").unwrap();
    let ids: Vec<i64> = g
        .data()
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let lines: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    for (i, line) in lines.iter().enumerate() {
        let want: Vec<i64> = ids[i * 11 + 1..(i + 1) * 11].to_vec();
        let got: Vec<i64> = serde_json::from_value(line["tokens"].clone()).unwrap();
        assert_eq!(got, want, "image {i}");
        assert!(
            line["caption"].is_string()
                && line["image"]
                    .as_str()
                    .unwrap()
                    .ends_with(&format!("img{i}.png"))
        );
    }
}

#[test]
fn embed_writes_open_clip_features() {
    let dir = tmp("embed");
    let out = dir.join("e.safetensors");
    let info: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("coca-tiny/reference.json")).unwrap(),
    )
    .unwrap();
    let model = s(&fixture("coca-tiny"));
    let mut args = vec!["embed", "--model", &model, "--out"];
    let out_s = s(&out);
    args.push(&out_s);
    let images: Vec<String> = info["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| s(&fixture(&format!("coca-tiny/{}", p.as_str().unwrap()))))
        .collect();
    for image in &images {
        args.extend(["--image", image.as_str()]);
    }
    for text in info["texts"].as_array().unwrap() {
        args.extend(["--text", text.as_str().unwrap()]);
    }
    assert_eq!((images.len(), args.len()), (3, 5 + 2 * 6));
    // Info logs on; stderr is a pipe here, so they carry no ANSI colour codes.
    let o = coca_logging(&args, "info");
    assert!(o.status.success(), "{}", stderr(&o));
    let log = stderr(&o);
    assert!(log.contains("loading CoCa"), "{log}");
    assert!(
        !log.contains('\u{1b}'),
        "ANSI escape codes in a piped log: {log:?}"
    );
    let got = read_tensors(&out);
    let want = read_tensors(&fixture("coca-tiny/reference.safetensors"));
    // Images go through the CLI's own decoding and preprocessing here, so this also checks
    // that path end to end against open_clip.
    for name in [
        "image_features",
        "image_embs",
        "text_features",
        "text_token_embs",
    ] {
        let c = assert_close_shaped(name, &got[name], &want[name], Tol::new(1e-4, 1e-4));
        eprintln!("{name}: {c:?}");
    }
    std::fs::remove_dir_all(dir).ok();
}

/// `embed` of a CLIPPO model: the same output names as for CoCa, the texts rendered at the
/// model's size with the renderer's defaults, matching big_vision's `zimg` / `ztxt`.
#[test]
fn embed_of_a_clippo_checkpoint_matches_big_vision() {
    let dir = tmp("embed-clippo");
    let out = dir.join("e.safetensors");
    let info: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("clippo-tiny/model/reference.json")).unwrap(),
    )
    .unwrap();
    let model = s(&fixture("clippo-tiny/model/clippo_tiny.npz"));
    let out_s = s(&out);
    let mut args = vec!["embed", "--model", &model, "--out", &out_s];
    let images: Vec<String> = info["image_files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| s(&fixture(&format!("clippo-tiny/{}", p.as_str().unwrap()))))
        .collect();
    for image in &images {
        args.extend(["--image", image.as_str()]);
    }
    let texts: Vec<&str> = info["texts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    for text in &texts {
        args.extend(["--text", text]);
    }
    assert_eq!((images.len(), texts.len()), (3, 3));
    let o = coca(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let got = read_tensors(&out);
    assert_eq!(got.len(), 2, "{:?}", got.keys().collect::<Vec<_>>());
    let r = coca_core::clippo::npz::read_npz(&fixture("clippo-tiny/model/reference.npz")).unwrap();
    for (name, key) in [("image_features", "zimg"), ("text_features", "ztxt")] {
        let a = &r[key];
        let want = (a.shape.clone(), a.to_f32().unwrap());
        let c = assert_close_shaped(name, &got[name], &want, Tol::new(1e-4, 1e-4));
        eprintln!("{name}: {c:?}");
    }
    // A tokenizer makes no sense for a model that reads pixels.
    let o = coca(&[
        "embed",
        "--model",
        &model,
        "--text",
        "a",
        "--tokenizer",
        "t.json",
        "--out",
        &out_s,
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("no tokenizer"), "{}", stderr(&o));
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn bad_inputs_give_clear_errors_and_nonzero_exits() {
    let model = s(&fixture("coca-tiny"));
    let img = s(&fixture("coca-tiny/images/img0.png"));
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "zero-shot",
                "--model",
                &model,
                "--labels",
                "a,b",
                "--device",
                "cuda:0",
                &img,
            ],
            "--features libtorch",
        ),
        (
            vec![
                "zero-shot",
                "--model",
                "no-such-model",
                "--labels",
                "a",
                &img,
            ],
            "no-such-model",
        ),
        (
            vec![
                "zero-shot",
                "--model",
                &model,
                "--labels",
                "a",
                "/nonexistent/x.png",
            ],
            "/nonexistent/x.png",
        ),
        (
            vec![
                "tokenize",
                "--tokenizer",
                "/nonexistent/tokenizer.json",
                "hi",
            ],
            "/nonexistent/tokenizer.json",
        ),
        (
            vec!["finetune", "vqa", "--config", "/nonexistent/run.toml"],
            "/nonexistent/run.toml",
        ),
    ];
    for (args, needle) in cases {
        let o = coca(&args);
        assert!(!o.status.success(), "{args:?} succeeded");
        assert!(stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
        assert!(
            !stderr(&o).contains("panicked"),
            "{args:?} panicked: {}",
            stderr(&o)
        );
    }
}

#[test]
fn zero_shot_matches_open_clip_features() {
    // With the template "{}" and the fixture's texts as labels, the class embeddings are
    // open_clip's text features, so the probabilities follow from the reference features:
    // softmax(100 * image_features . text_features^T), as open_clip's zero-shot evaluation.
    let info: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("coca-tiny/reference.json")).unwrap(),
    )
    .unwrap();
    let reference = read_tensors(&fixture("coca-tiny/reference.safetensors"));
    let paths: Vec<String> = info["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| s(&fixture(&format!("coca-tiny/{}", p.as_str().unwrap()))))
        .collect();
    zero_shot_matches(
        &s(&fixture("coca-tiny")),
        &paths,
        &info["texts"],
        &reference["image_features"],
        &reference["text_features"],
    );
}

/// The same for a CLIPPO checkpoint: prompts rendered through the one tower, against
/// big_vision's `zimg` / `ztxt`.
#[test]
fn zero_shot_of_a_clippo_checkpoint_matches_big_vision() {
    let info: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("clippo-tiny/model/reference.json")).unwrap(),
    )
    .unwrap();
    let r = coca_core::clippo::npz::read_npz(&fixture("clippo-tiny/model/reference.npz")).unwrap();
    let arr = |k: &str| (r[k].shape.clone(), r[k].to_f32().unwrap());
    let paths: Vec<String> = info["image_files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| s(&fixture(&format!("clippo-tiny/{}", p.as_str().unwrap()))))
        .collect();
    zero_shot_matches(
        &s(&fixture("clippo-tiny/model/clippo_tiny.npz")),
        &paths,
        &info["texts"],
        &arr("zimg"),
        &arr("ztxt"),
    );
}

fn zero_shot_matches(
    model: &str,
    paths: &[String],
    texts: &serde_json::Value,
    img: &(Vec<usize>, Vec<f32>),
    txt: &(Vec<usize>, Vec<f32>),
) {
    let texts: Vec<&str> = texts
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    let labels = texts.join(",");
    let (n, d) = (img.0[0], img.0[1]);
    assert_eq!((txt.0[0], txt.0[1], texts.len(), paths.len()), (n, d, 3, 3));
    let model = model.to_string();
    let mut args = vec![
        "zero-shot",
        "--model",
        &model,
        "--labels",
        &labels,
        "--template",
        "{}",
        "--top",
        "3",
        "--json",
    ];
    args.extend(paths.iter().map(String::as_str));
    let o = coca(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let lines: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), n);
    for (i, line) in lines.iter().enumerate() {
        let logits: Vec<f64> = (0..n)
            .map(|j| {
                (0..d)
                    .map(|k| f64::from(img.1[i * d + k]) * f64::from(txt.1[j * d + k]))
                    .sum::<f64>()
                    * 100.0
            })
            .collect();
        let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let z: f64 = logits.iter().map(|l| (l - max).exp()).sum();
        let want: Vec<f64> = logits.iter().map(|l| (l - max).exp() / z).collect();
        let top = line["top"].as_array().unwrap();
        assert_eq!(top.len(), n, "{line}");
        let mut got = vec![f64::NAN; n];
        for t in top {
            let j = texts
                .iter()
                .position(|x| *x == t["label"].as_str().unwrap())
                .unwrap();
            got[j] = t["prob"].as_f64().unwrap();
        }
        // 1e-4 on the features is up to 1e-2 on the logits (scale 100).
        assert_close(
            &format!("image {i} probabilities"),
            &got,
            &want,
            Tol::abs(2e-3),
        );
    }
}

#[test]
fn export_of_an_unmodified_checkpoint_round_trips() {
    let dir = tmp("export");
    let out = dir.join("out.safetensors");
    let o = coca(&[
        "export",
        "--model",
        &s(&fixture("coca-tiny/open_clip_pytorch_model.bin")),
        "--out",
        &s(&out),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let a = std::fs::read(fixture("coca-tiny/open_clip_model.safetensors")).unwrap();
    let b = std::fs::read(&out).unwrap();
    let (a, b) = (
        safetensors::SafeTensors::deserialize(&a).unwrap(),
        safetensors::SafeTensors::deserialize(&b).unwrap(),
    );
    let mut ka = a.names();
    let mut kb = b.names();
    ka.sort();
    kb.sort();
    assert_eq!(ka, kb);
    for k in ka {
        let (x, y) = (a.tensor(k).unwrap(), b.tensor(k).unwrap());
        assert_eq!(x.shape(), y.shape(), "{k}");
        assert_eq!(x.data(), y.data(), "{k}");
    }
}

#[test]
fn evaluate_vqa_matches_the_official_evaluator() {
    let d = fixture("vqa-metric");
    let files = [
        s(&d.join("questions.json")),
        s(&d.join("annotations.json")),
        s(&d.join("results.json")),
    ];
    let args = [
        "evaluate",
        "vqa",
        "--questions",
        &files[0],
        "--annotations",
        &files[1],
        "--results",
        &files[2],
    ];
    let o = coca(&[&args[..], &["--json"]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    let got: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let want: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("expected.json")).unwrap()).unwrap();
    let overall = want["overall"].as_f64().unwrap();
    assert!(
        (got["overall"].as_f64().unwrap() - overall).abs() <= 0.01,
        "{got} vs {want}"
    );
    for (t, v) in want["per_answer_type"].as_object().unwrap() {
        assert!(
            (got["per_answer_type"][t].as_f64().unwrap() - v.as_f64().unwrap()).abs() <= 0.01,
            "{t}"
        );
    }
    // Per question type: the official mean of the per-question scores of each type.
    let anns: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("annotations.json")).unwrap())
            .unwrap();
    let mut by_type: std::collections::BTreeMap<String, Vec<f64>> = Default::default();
    for a in anns["annotations"].as_array().unwrap() {
        let qid = a["question_id"].as_u64().unwrap().to_string();
        by_type
            .entry(a["question_type"].as_str().unwrap().to_string())
            .or_default()
            .push(want["per_question"][&qid].as_f64().unwrap());
    }
    // The text report lists the same figures, as the official evaluator prints them.
    let o = coca(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.starts_with(&format!(
            "Overall Accuracy is: {:.2}\n",
            got["overall"].as_f64().unwrap()
        )) && text.contains("\nPer Question Type Accuracy is the following:\n")
            && text.contains("\nPer Answer Type Accuracy is the following:\n"),
        "{text}"
    );
    let got_types = got["per_question_type"].as_object().unwrap();
    assert_eq!(got_types.len(), by_type.len());
    for (t, v) in &by_type {
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        assert!(
            (got_types[t].as_f64().unwrap() - mean).abs() <= 0.02,
            "question type {t}: {} vs {mean}",
            got_types[t]
        );
        let line = format!("\n{t} : {:.2}", got_types[t].as_f64().unwrap());
        assert!(text.contains(&line), "{line:?} not in {text}");
    }
}

#[test]
fn evaluate_caption_matches_pycocoevalcap() {
    let dir = tmp("capeval");
    let f: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("caption-metrics/coco-eval-small.json")).unwrap(),
    )
    .unwrap();
    let anns: Vec<serde_json::Value> = f["annotations"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, a)| serde_json::json!({"image_id": a["image_id"], "caption": a["caption"], "id": i}))
        .collect();
    let mut ids: Vec<u64> = anns
        .iter()
        .map(|a| a["image_id"].as_u64().unwrap())
        .collect();
    ids.sort();
    ids.dedup();
    let images: Vec<serde_json::Value> = ids.iter().map(|i| serde_json::json!({"id": i})).collect();
    let gt = serde_json::json!({"images": images, "annotations": anns});
    std::fs::write(dir.join("gt.json"), gt.to_string()).unwrap();
    std::fs::write(dir.join("res.json"), f["results"].to_string()).unwrap();
    let o = coca(&[
        "evaluate",
        "caption",
        "--json",
        "--annotations",
        &s(&dir.join("gt.json")),
        "--results",
        &s(&dir.join("res.json")),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let got: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    for k in ["Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "ROUGE_L", "CIDEr"] {
        let want = f["scores"][k].as_f64().unwrap();
        assert!(
            (got[k].as_f64().unwrap() - want).abs() < 1e-4,
            "{k}: {} vs {want}",
            got[k]
        );
    }
}

/// `coca-cli render` writes exactly big_vision's `render_unifont` image (fixture renders with
/// the training settings and with custom size, case and brightness), and refuses a font size
/// it does not implement.
#[test]
fn render_writes_big_vision_pixels() {
    let dir = tmp("render");
    let cases: [(&str, &str, &[&str]); 2] = [
        ("a photo of a cat", "render/00_lower_224.png", &[]),
        (
            "Hello World, MiXeD CaSe 123 \u{c4}\u{d6}\u{dc}",
            "render/27_s128_nolower_128.png",
            &[
                "--size",
                "128",
                "--keep-case",
                "--text-brightness",
                "200",
                "--background-brightness",
                "30",
            ],
        ),
    ];
    for (text, file, extra) in cases {
        let out = dir.join("out.png");
        let mut args = vec!["render", "--text", text, "--out"];
        let out_s = s(&out);
        args.push(&out_s);
        args.extend_from_slice(extra);
        let o = coca(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        let got = image::open(&out).unwrap().to_rgb8();
        let want = image::open(fixture("clippo-tiny").join(file))
            .unwrap()
            .to_rgb8();
        assert_eq!(got.dimensions(), want.dimensions(), "{file}");
        assert!(got.as_raw() == want.as_raw(), "{file}: pixels differ");
    }
    let o = coca(&[
        "render",
        "--text",
        "x",
        "--font-size",
        "8",
        "--out",
        &s(&dir.join("bad.png")),
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("font"), "{}", stderr(&o));
    std::fs::remove_dir_all(dir).ok();
}

/// `classify` and `video` as a user drives them from the shell: `finetune` with the
/// configuration `synth` wrote, `predict` with the run's export, `evaluate` of the
/// predictions file (same accuracy as the run), and a bad dataset named with a non-zero exit.
#[test]
fn classify_and_video_from_the_command_line() {
    let dir = tmp("cli-classify-video");
    let world = synth_world(&dir);
    for (task, labels, file) in [
        // The labels as the configuration names the validation split (classify: a folder).
        (
            "classify",
            world.join("classify/val"),
            "predictions_classify.csv",
        ),
        (
            "video",
            world.join("video/val.csv"),
            "predictions_video.csv",
        ),
    ] {
        let run = dir.join(format!("run-{task}"));
        let config = s(&world.join(format!("configs/{task}.toml")));
        let sets = [
            "model.preset=\"tiny\"".to_string(),
            format!("run.out_dir={}", q(&run)),
            "run.progress=false".into(),
            "train.steps=4".into(),
            "train.warmup_steps=0".into(),
            "train.batch_size=4".into(),
            "task.frames=2".into(),
            "eval.every=0".into(),
            "checkpoint.every=0".into(),
        ];
        let mut args = vec!["finetune", task, "--config", &config];
        for set in &sets {
            if task == "classify" && set.starts_with("task.frames") {
                continue;
            }
            args.extend(["--set", set.as_str()]);
        }
        let o = coca(&args);
        assert!(o.status.success(), "{task}: {}", stderr(&o));
        let metrics: serde_json::Value =
            serde_json::from_slice(&std::fs::read(run.join("metrics.json")).unwrap()).unwrap();
        let acc = metrics["final"]["accuracy"].as_f64().unwrap();
        assert!(metrics["final"]["top5"].is_number(), "{metrics}");
        let pred = dir.join(format!("predict-{task}"));
        let o = coca(&["predict", task, "--run", &s(&run), "--out", &s(&pred)]);
        assert!(o.status.success(), "{task} predict: {}", stderr(&o));
        let o = coca(&[
            "evaluate",
            task,
            "--data",
            &s(&labels),
            "--predictions",
            &s(&pred.join(file)),
            "--json",
        ]);
        assert!(o.status.success(), "{task} evaluate: {}", stderr(&o));
        let report: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
        let scored = report["accuracy"].as_f64().unwrap();
        assert!(
            (scored - acc).abs() < 1e-9,
            "{task}: evaluate {scored} vs run {acc}"
        );
    }
    // A class folder without images: named, non-zero exit, no panic.
    let bad = dir.join("bad");
    std::fs::create_dir_all(bad.join("red")).unwrap();
    std::fs::create_dir_all(bad.join("empty")).unwrap();
    let red = std::fs::read_dir(world.join("classify/train/red"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::copy(&red, bad.join("red/a.jpg")).unwrap();
    let config = s(&world.join("configs/classify.toml"));
    let train = format!("data.train={}", q(&bad));
    let out = format!("run.out_dir={}", q(&dir.join("run-bad")));
    let o = coca(&[
        "finetune",
        "classify",
        "--config",
        &config,
        "--set",
        "model.preset=\"tiny\"",
        "--set",
        &train,
        "--set",
        &out,
    ]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("empty") && !e.contains("panicked"), "{e}");
    std::fs::remove_dir_all(dir).ok();
}
