//! SNLI-VE: `snli_ve_{train,dev,test}.jsonl` over separate "Flickr30k" images.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::Serialize;

use super::facts::{Fact, neutral_statement};
use super::render::{Encoding, RenderJob};
use super::scene::{Scene, pick};
use super::text::{capitalize, captions, humanize};
use super::{
    MajorityBaseline, SnliVeSummary, SynthCounts, image_dims, json_err, majority, write_file,
};
use crate::error::Result;

const LABELS: [&str; 3] = ["entailment", "neutral", "contradiction"];

#[derive(Serialize)]
struct Line<'a> {
    #[serde(rename = "Flickr30K_ID", skip_serializing_if = "Option::is_none")]
    flickr30k_id: Option<String>,
    #[serde(rename = "Flikr30kID", skip_serializing_if = "Option::is_none")]
    flikr30k_id: Option<String>,
    annotator_labels: Vec<&'a str>,
    #[serde(rename = "captionID")]
    caption_id: String,
    gold_label: &'a str,
    #[serde(rename = "pairID")]
    pair_id: String,
    sentence1: String,
    sentence2: String,
}

/// Annotator votes agreeing (by majority) with `gold`; `-` gets a 2-2-1 split.
fn annotator_labels(gold: &str, five: bool, rng: &mut StdRng) -> Vec<&'static str> {
    if gold == "-" {
        let mut v = LABELS.to_vec();
        v.shuffle(rng);
        return vec![v[0], v[1], v[0], v[1], v[2]];
    }
    let gold = LABELS
        .iter()
        .copied()
        .find(|l| *l == gold)
        .unwrap_or("neutral");
    if !five {
        return vec![gold];
    }
    (0..5)
        .map(|i| {
            if i < 3 || rng.random_bool(0.7) {
                gold
            } else {
                *pick(rng, &LABELS)
            }
        })
        .collect()
}

/// Generates the images and the three JSONL files; returns the render jobs.
pub(crate) fn generate(
    out: &Path,
    counts: &SynthCounts,
    rng: &mut StdRng,
    summary: &mut SnliVeSummary,
) -> Result<Vec<RenderJob>> {
    let image_dir = PathBuf::from("snli-ve/flickr30k-images");
    let mut jobs = Vec::new();
    let mut used = BTreeSet::new();
    for (split, n_images) in [
        ("train", counts.snli_ve_train_images),
        ("dev", counts.snli_ve_dev_images),
        ("test", counts.snli_ve_test_images),
    ] {
        let mut text = String::new();
        let mut labels: BTreeMap<String, usize> = BTreeMap::new();
        for _ in 0..n_images {
            let id = loop {
                let id: u64 = rng.random_range(10_000_000..=9_999_999_999);
                if used.insert(id) {
                    break id.to_string();
                }
            };
            let (width, height) = image_dims(rng, counts.image_size);
            let scene = Scene::sample(rng);
            jobs.push(RenderJob {
                path: out.join(&image_dir).join(format!("{id}.jpg")),
                scene: scene.clone(),
                width,
                height,
                seed: rng.random(),
                encoding: Encoding::Jpeg,
            });
            let premises: Vec<String> = captions(&scene, 5, rng)
                .iter()
                .map(|c| humanize(c, rng))
                .collect();
            let mut golds = vec![
                "entailment",
                "entailment",
                "neutral",
                "neutral",
                "contradiction",
                "contradiction",
            ];
            // A few pairs without annotator agreement, which loaders must drop.
            if rng.random_bool(0.05) {
                golds.push("-");
            }
            golds.shuffle(rng);
            for (j, gold) in golds.into_iter().enumerate() {
                let hypothesis = match gold {
                    "entailment" => Fact::sample_with_truth(&scene, true, rng).text(rng),
                    "contradiction" => Fact::sample_with_truth(&scene, false, rng).text(rng),
                    "neutral" => neutral_statement(&scene, rng),
                    _ => {
                        let want = rng.random_bool(0.5);
                        Fact::sample_with_truth(&scene, want, rng).text(rng)
                    }
                };
                let k = rng.random_range(0..premises.len());
                let mut image_id = id.clone();
                if rng.random_bool(0.15) {
                    image_id.push_str(".jpg");
                }
                let (flickr30k_id, flikr30k_id) = if rng.random_bool(0.2) {
                    (None, Some(image_id))
                } else {
                    (Some(image_id), None)
                };
                let suffix = match gold {
                    "entailment" => "e",
                    "neutral" => "n",
                    "contradiction" => "c",
                    _ => "x",
                };
                let line = Line {
                    flickr30k_id,
                    flikr30k_id,
                    annotator_labels: annotator_labels(gold, split != "train", rng),
                    caption_id: format!("{id}.jpg#{k}"),
                    gold_label: gold,
                    pair_id: format!("{id}.jpg#{k}r{}{suffix}", j + 1),
                    sentence1: premises[k].clone(),
                    sentence2: capitalize(&hypothesis),
                };
                let path = out.join(format!("snli-ve/snli_ve_{split}.jsonl"));
                let json = serde_json::to_string(&line).map_err(|e| json_err(&path, e))?;
                let _ = writeln!(text, "{json}");
                *labels.entry(gold.to_string()).or_default() += 1;
            }
        }
        let rel = PathBuf::from(format!("snli-ve/snli_ve_{split}.jsonl"));
        write_file(&out.join(&rel), text.as_bytes())?;
        summary.files.insert(split.to_string(), rel);
        summary.images.insert(split.to_string(), n_images);
        if split != "train" {
            let (label, accuracy, examples) = majority(&labels, &["-"]);
            summary.baselines.insert(
                split.to_string(),
                MajorityBaseline {
                    label,
                    accuracy,
                    examples,
                },
            );
        }
        summary.labels.insert(split.to_string(), labels);
    }
    summary.image_dir = image_dir;
    Ok(jobs)
}
