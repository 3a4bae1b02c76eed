//! COCO images with the Karpathy split file (`dataset_coco.json`) and the official caption
//! annotation files (`captions_{train,val}2014.json`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::Serialize;

use super::render::{Encoding, RenderJob};
use super::scene::Scene;
use super::text::{captions, humanize, tokens};
use super::{CaptionBaseline, RetrievalChance, SynthCounts, image_dims, write_json};
use crate::error::Result;
use crate::metrics::caption::evaluate_captions_without_meteor;

/// Captions per COCO image.
pub(crate) const CAPTIONS_PER_IMAGE: usize = 5;

/// One generated COCO image.
#[derive(Clone, Debug)]
pub(crate) struct CocoImage {
    pub id: u64,
    /// `train2014` or `val2014`.
    pub dir: &'static str,
    /// Karpathy split: `train`, `restval`, `val` or `test`.
    pub split: &'static str,
    pub width: u32,
    pub height: u32,
    pub scene: Scene,
    pub seed: u64,
    /// Raw captions as annotators typed them.
    pub captions: Vec<String>,
}

impl CocoImage {
    /// `COCO_train2014_000000123456.jpg`.
    pub(crate) fn file_name(&self) -> String {
        format!("COCO_{}_{:012}.jpg", self.dir, self.id)
    }
}

/// Samples the COCO images: Karpathy `train` images live in `train2014`, `restval`, `val` and
/// `test` images in `val2014` (as in the real split); the list is shuffled.
pub(crate) fn build(rng: &mut StdRng, counts: &SynthCounts) -> Vec<CocoImage> {
    let plan = [
        ("train", "train2014", counts.coco_train),
        ("restval", "val2014", counts.coco_restval),
        ("val", "val2014", counts.coco_val),
        ("test", "val2014", counts.coco_test),
    ];
    let total: usize = plan.iter().map(|p| p.2).sum();
    let max_id = (total as u64 * 4).max(581_929);
    let mut used = BTreeSet::new();
    let mut images = Vec::with_capacity(total);
    for (split, dir, n) in plan {
        for _ in 0..n {
            let id = loop {
                let id = rng.random_range(1..=max_id);
                if used.insert(id) {
                    break id;
                }
            };
            let (width, height) = image_dims(rng, counts.image_size);
            let scene = Scene::sample(rng);
            let caps = captions(&scene, CAPTIONS_PER_IMAGE, rng)
                .iter()
                .map(|c| humanize(c, rng))
                .collect();
            images.push(CocoImage {
                id,
                dir,
                split,
                width,
                height,
                scene,
                seed: rng.random(),
                captions: caps,
            });
        }
    }
    images.shuffle(rng);
    images
}

/// Render jobs writing `OUT/coco/images/{dir}/{file_name}`.
pub(crate) fn jobs(out: &Path, images: &[CocoImage]) -> Vec<RenderJob> {
    images
        .iter()
        .map(|im| RenderJob {
            path: out.join("coco/images").join(im.dir).join(im.file_name()),
            scene: im.scene.clone(),
            width: im.width,
            height: im.height,
            seed: im.seed,
            encoding: Encoding::Jpeg,
        })
        .collect()
}

#[derive(Serialize)]
struct KarpathyFile<'a> {
    images: Vec<KarpathyImage<'a>>,
    dataset: &'static str,
}

#[derive(Serialize)]
struct KarpathyImage<'a> {
    filepath: &'static str,
    sentids: Vec<usize>,
    filename: String,
    imgid: usize,
    split: &'static str,
    sentences: Vec<KarpathySentence<'a>>,
    cocoid: u64,
}

#[derive(Serialize)]
struct KarpathySentence<'a> {
    tokens: Vec<String>,
    raw: &'a str,
    imgid: usize,
    sentid: usize,
}

#[derive(Serialize)]
struct CaptionFile<'a> {
    info: Info,
    licenses: Vec<()>,
    images: Vec<CaptionImage>,
    annotations: Vec<CaptionAnnotation<'a>>,
}

#[derive(Serialize)]
struct Info {
    description: &'static str,
    version: &'static str,
    year: u32,
}

#[derive(Serialize)]
struct CaptionImage {
    id: u64,
    file_name: String,
    width: u32,
    height: u32,
}

#[derive(Serialize)]
struct CaptionAnnotation<'a> {
    image_id: u64,
    id: u64,
    caption: &'a str,
}

/// Writes `coco/dataset_coco.json` and `coco/annotations/captions_{train,val}2014.json`.
pub(crate) fn write(out: &Path, images: &[CocoImage], rng: &mut StdRng) -> Result<()> {
    let mut sentid = 0;
    let kimages = images
        .iter()
        .enumerate()
        .map(|(imgid, im)| {
            let sentences: Vec<KarpathySentence> = im
                .captions
                .iter()
                .map(|raw| {
                    sentid += 1;
                    KarpathySentence {
                        tokens: tokens(raw),
                        raw,
                        imgid,
                        sentid: sentid - 1,
                    }
                })
                .collect();
            KarpathyImage {
                filepath: im.dir,
                sentids: sentences.iter().map(|s| s.sentid).collect(),
                filename: im.file_name(),
                imgid,
                split: im.split,
                sentences,
                cocoid: im.id,
            }
        })
        .collect();
    write_json(
        &out.join("coco/dataset_coco.json"),
        &KarpathyFile {
            images: kimages,
            dataset: "coco",
        },
    )?;

    let mut ann_id: u64 = rng.random_range(1..1000);
    for dir in ["train2014", "val2014"] {
        let mut file = CaptionFile {
            info: Info {
                description: "synthetic shapes world in COCO caption format",
                version: "1.0",
                year: 2014,
            },
            licenses: Vec::new(),
            images: Vec::new(),
            annotations: Vec::new(),
        };
        let mut in_dir: Vec<&CocoImage> = images.iter().filter(|im| im.dir == dir).collect();
        in_dir.sort_by_key(|im| im.id);
        for im in in_dir {
            file.images.push(CaptionImage {
                id: im.id,
                file_name: im.file_name(),
                width: im.width,
                height: im.height,
            });
            for c in &im.captions {
                ann_id += rng.random_range(1..=7);
                file.annotations.push(CaptionAnnotation {
                    image_id: im.id,
                    id: ann_id,
                    caption: c,
                });
            }
        }
        write_json(
            &out.join(format!("coco/annotations/captions_{dir}.json")),
            &file,
        )?;
    }
    Ok(())
}

/// The constant-caption baseline: among the first captions of 40 training images, the one that
/// scores the highest CIDEr when given for every one of 200 training images; reported with its
/// CIDEr on the Karpathy `val` split (what the captioning run is evaluated on).
pub(crate) fn constant_caption_baseline(images: &[CocoImage]) -> Result<Option<CaptionBaseline>> {
    let refs = |split: &str, n: usize| -> BTreeMap<u64, Vec<String>> {
        images
            .iter()
            .filter(|im| im.split == split)
            .take(n)
            .map(|im| (im.id, im.captions.clone()))
            .collect()
    };
    let score = |gts: &BTreeMap<u64, Vec<String>>, caption: &str| -> Result<f64> {
        let res = gts.keys().map(|&id| (id, caption.to_string())).collect();
        Ok(evaluate_captions_without_meteor(gts, &res)?.cider)
    };
    let (train, val) = (refs("train", 200), refs("val", usize::MAX));
    if train.is_empty() || val.is_empty() {
        return Ok(None);
    }
    let mut best: Option<(f64, &str)> = None;
    for im in images.iter().filter(|im| im.split == "train").take(40) {
        let Some(candidate) = im.captions.first() else {
            continue;
        };
        let cider = score(&train, candidate)?;
        if best.is_none_or(|(b, _)| cider > b) {
            best = Some((cider, candidate));
        }
    }
    let Some((train_cider, caption)) = best else {
        return Ok(None);
    };
    Ok(Some(CaptionBaseline {
        caption: caption.to_string(),
        train_cider,
        cider: score(&val, caption)?,
    }))
}

/// Chance retrieval recall@1 on the images of Karpathy split `split` ([`RetrievalChance`]);
/// `None` when the split has no images.
pub(crate) fn retrieval_chance(images: &[CocoImage], split: &str) -> Option<RetrievalChance> {
    let in_split: Vec<&CocoImage> = images.iter().filter(|im| im.split == split).collect();
    let pairs: usize = in_split.iter().map(|im| im.captions.len()).sum();
    let texts: BTreeSet<&str> = in_split
        .iter()
        .flat_map(|im| im.captions.iter().map(|c| c.trim()))
        .collect();
    if in_split.is_empty() || texts.is_empty() {
        return None;
    }
    // How many images use each caption text: a text of two images ties for both (a miss).
    let mut owners: std::collections::BTreeMap<&str, BTreeSet<usize>> = Default::default();
    for (n, im) in in_split.iter().enumerate() {
        for c in &im.captions {
            owners.entry(c.trim()).or_default().insert(n);
        }
    }
    let own_only = |n: usize| {
        owners
            .values()
            .filter(|o| o.len() == 1 && o.contains(&n))
            .count()
    };
    let i2t = (0..in_split.len())
        .map(|n| own_only(n) as f64 / texts.len() as f64)
        .sum::<f64>()
        / in_split.len() as f64;
    Some(RetrievalChance {
        split: split.to_string(),
        pairs,
        images: in_split.len(),
        distinct_captions: texts.len(),
        t2i_r1: 1.0 / in_split.len() as f64,
        i2t_r1: i2t,
    })
}
