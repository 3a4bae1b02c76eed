//! COCO captioning data: the Karpathy split file `dataset_coco.json` as downloaded, and the
//! COCO-format ground-truth and results files that the caption evaluator reads.
//!
//! `dataset_coco.json` is `{images: [{filepath, filename, cocoid, split, sentences: [{raw,
//! tokens}]}]}` with `split` one of `train`, `restval`, `val`, `test`; the Karpathy training
//! set is `train` + `restval`. Ground truth is `{images: [{id}], annotations: [{image_id,
//! caption, id}]}`; results are `[{image_id, caption}]`, one per image.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Result, TaskError};
use crate::metrics::caption::{
    CocoCaptionAnnotation, CocoCaptionGt, CocoCaptionResult, CocoImage, group_coco_gt,
    load_coco_caption_gt, load_coco_caption_results,
};
use crate::metrics::{data_err, read_json};

/// The split names of `dataset_coco.json`.
pub const KARPATHY_SPLITS: [&str; 4] = ["train", "restval", "val", "test"];

/// One image with its reference captions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaptionImage {
    /// COCO image id (`cocoid`).
    pub image_id: u64,
    /// Path of the image (it may not exist; the trainer reports missing images).
    pub image: PathBuf,
    /// The reference captions (`raw`, surrounding whitespace trimmed), at least one.
    pub captions: Vec<String>,
}

/// An image entry of `dataset_coco.json` (fields the loader reads).
#[derive(Deserialize)]
struct KarpathyImage {
    #[serde(default)]
    filepath: Option<String>,
    filename: String,
    cocoid: u64,
    split: String,
    sentences: Vec<KarpathySentence>,
}

/// A sentence of `dataset_coco.json`.
#[derive(Deserialize)]
struct KarpathySentence {
    #[serde(default)]
    raw: Option<String>,
    #[serde(default)]
    tokens: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct KarpathyFile {
    images: Vec<KarpathyImage>,
}

/// Loads the images of the given Karpathy splits from `dataset_coco.json`, in file order.
///
/// `"train"` includes `restval` (the 113k-image Karpathy training set); `"restval"` alone is
/// also accepted. Images are `image_root/{filepath}/{filename}` (missing images are not an
/// error). An unknown split name is [`TaskError::Config`]; an image without captions or an
/// image id listed twice is [`TaskError::Data`].
pub fn load_karpathy(
    dataset_json: &Path,
    image_root: &Path,
    splits: &[&str],
) -> Result<Vec<CaptionImage>> {
    let mut wanted: HashSet<&str> = HashSet::new();
    for &s in splits {
        match s {
            "train" => {
                wanted.insert("train");
                wanted.insert("restval");
            }
            "restval" | "val" | "test" => {
                wanted.insert(s);
            }
            other => {
                return Err(TaskError::Config(format!(
                    "unknown Karpathy split {other:?} (expected one of {KARPATHY_SPLITS:?})"
                )));
            }
        }
    }
    let file: KarpathyFile = read_json(dataset_json)?;
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for im in file.images {
        if !wanted.contains(im.split.as_str()) {
            continue;
        }
        let id = im.cocoid;
        if !seen.insert(id) {
            return Err(data_err(
                dataset_json,
                format!("cocoid {id} is listed twice"),
            ));
        }
        let mut captions = Vec::with_capacity(im.sentences.len());
        for (j, s) in im.sentences.into_iter().enumerate() {
            let text = match (s.raw, s.tokens) {
                (Some(raw), _) => raw.trim().to_string(),
                (None, Some(tokens)) => tokens.join(" "),
                (None, None) => String::new(),
            };
            if text.is_empty() {
                return Err(data_err(
                    dataset_json,
                    format!("sentence {j} of cocoid {id} is empty"),
                ));
            }
            captions.push(text);
        }
        if captions.is_empty() {
            return Err(data_err(
                dataset_json,
                format!("cocoid {id} has no sentences"),
            ));
        }
        let dir = match im.filepath.as_deref() {
            Some(fp) if !fp.is_empty() => image_root.join(fp),
            _ => image_root.to_path_buf(),
        };
        out.push(CaptionImage {
            image_id: id,
            image: dir.join(&im.filename),
            captions,
        });
    }
    Ok(out)
}

/// An image entry of a [`CocoGroundTruth`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CocoGtImage {
    /// Image id.
    pub id: u64,
    /// Image file name, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_name: Option<String>,
}

/// A COCO-format caption ground truth, as written by [`write_coco_ground_truth`].
///
/// It carries `info`, `licenses` and `type` because the `pycocotools` copy bundled with the
/// original `coco-caption` code reads them in `loadRes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CocoGroundTruth {
    /// Free-form description.
    #[serde(default)]
    pub info: serde_json::Map<String, serde_json::Value>,
    /// Licenses (empty when written here).
    #[serde(default)]
    pub licenses: Vec<serde_json::Value>,
    /// `"captions"`.
    #[serde(rename = "type", default = "captions_type")]
    pub kind: String,
    /// The evaluated images.
    pub images: Vec<CocoGtImage>,
    /// The reference captions; ids count from 1.
    pub annotations: Vec<CocoCaptionAnnotation>,
}

fn captions_type() -> String {
    "captions".to_string()
}

impl CocoGroundTruth {
    /// The ground truth of `images`; each image needs a caption and a distinct id (else
    /// [`TaskError::Data`] about `<ground truth>`).
    pub fn from_images(images: &[CaptionImage]) -> Result<Self> {
        Self::build(images).map_err(|msg| data_err(Path::new("<ground truth>"), msg))
    }

    fn build(images: &[CaptionImage]) -> std::result::Result<Self, String> {
        let mut seen = HashSet::with_capacity(images.len());
        let mut gt = CocoGroundTruth {
            info: serde_json::Map::new(),
            licenses: Vec::new(),
            kind: captions_type(),
            images: Vec::with_capacity(images.len()),
            annotations: Vec::new(),
        };
        gt.info.insert(
            "description".into(),
            "COCO-format caption ground truth written by coca-tasks".into(),
        );
        for im in images {
            if !seen.insert(im.image_id) {
                return Err(format!("image {} is listed twice", im.image_id));
            }
            if im.captions.is_empty() {
                return Err(format!("image {} has no caption", im.image_id));
            }
            gt.images.push(CocoGtImage {
                id: im.image_id,
                file_name: im
                    .image
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned()),
            });
            for c in &im.captions {
                let id = gt.annotations.len() as u64 + 1;
                gt.annotations.push(CocoCaptionAnnotation {
                    image_id: im.image_id,
                    caption: c.clone(),
                    id: Some(id),
                });
            }
        }
        Ok(gt)
    }

    /// The reference captions grouped by image id, checked as the evaluator checks them
    /// (`path` names the file in errors).
    pub fn references(&self, path: &Path) -> Result<BTreeMap<u64, Vec<String>>> {
        let gt = CocoCaptionGt {
            images: self.images.iter().map(|i| CocoImage { id: i.id }).collect(),
            annotations: self.annotations.clone(),
        };
        group_coco_gt(&gt, path)
    }
}

/// Reads a COCO-format caption ground truth (e.g. `captions_val2014.json` or one written by
/// [`write_coco_ground_truth`]), grouped by image id.
pub fn load_coco_captions(path: &Path) -> Result<BTreeMap<u64, Vec<String>>> {
    load_coco_caption_gt(path)
}

/// Writes the COCO-format ground truth of `images` (see [`CocoGroundTruth`]).
pub fn write_coco_ground_truth(path: &Path, images: &[CaptionImage]) -> Result<()> {
    let gt = CocoGroundTruth::build(images).map_err(|msg| data_err(path, msg))?;
    write_json(path, &gt)
}

/// Writes a COCO-format results file `[{image_id, caption}]`; an image id listed twice is
/// [`TaskError::Data`] (nothing is written).
pub fn write_results(path: &Path, results: &[(u64, String)]) -> Result<()> {
    let mut seen = HashSet::with_capacity(results.len());
    let mut out = Vec::with_capacity(results.len());
    for (id, caption) in results {
        if !seen.insert(*id) {
            return Err(data_err(
                path,
                format!("more than one caption for image {id}"),
            ));
        }
        out.push(CocoCaptionResult {
            image_id: *id,
            caption: caption.clone(),
        });
    }
    write_json(path, &out)
}

/// Reads a COCO-format results file; an image with more than one caption is
/// [`TaskError::Data`].
pub fn load_results(path: &Path) -> Result<BTreeMap<u64, String>> {
    load_coco_caption_results(path)
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let bytes = serde_json::to_vec(value).map_err(|e| TaskError::Json {
        path: path.to_path_buf(),
        line: None,
        msg: e.to_string(),
    })?;
    std::fs::write(path, bytes).map_err(|e| TaskError::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(name: &str) -> PathBuf {
        crate::test_paths::test_data("coco").join(name)
    }

    fn ids(images: &[CaptionImage]) -> Vec<u64> {
        images.iter().map(|i| i.image_id).collect()
    }

    fn tmp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("coca-caption-data-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp dir");
        dir.join(name)
    }

    #[test]
    fn karpathy_train_includes_restval() {
        let root = p("images");
        let ds = p("dataset_coco.json");
        let train = load_karpathy(&ds, &root, &["train"]).expect("train");
        assert_eq!(ids(&train), vec![57870, 384029, 222016]);
        assert_eq!(
            train[0].image,
            root.join("train2014/COCO_train2014_000000057870.jpg")
        );
        assert!(train[0].image.is_file());
        assert_eq!(
            train[1].image,
            root.join("val2014/COCO_val2014_000000384029.jpg"),
            "restval images live in val2014"
        );
        assert_eq!(
            train[0].captions,
            vec![
                "A restaurant has modern wooden tables and chairs.",
                "A long restaurant table with rattan rounded back chairs.",
            ]
        );
        assert_eq!(
            ids(&load_karpathy(&ds, &root, &["restval"]).expect("restval")),
            vec![384029]
        );
        assert_eq!(
            ids(&load_karpathy(&ds, &root, &["val"]).expect("val")),
            vec![391895]
        );
        assert_eq!(
            ids(&load_karpathy(&ds, &root, &["test"]).expect("test")),
            vec![522418, 184613]
        );
        assert_eq!(
            ids(&load_karpathy(&ds, &root, &["val", "test"]).expect("val+test")),
            vec![391895, 522418, 184613]
        );
        // Captions from tokens when `raw` is absent.
        let test = load_karpathy(&ds, &root, &["test"]).expect("test");
        assert_eq!(
            test[1].captions,
            vec!["a child holding a flowered umbrella"]
        );
        let err = load_karpathy(&ds, &root, &["validation"]).expect_err("unknown split");
        assert!(matches!(err, TaskError::Config(_)), "{err}");
    }

    #[test]
    fn karpathy_bad_files() {
        let root = p("images");
        let err = load_karpathy(&p("dataset_no_sentences.json"), &root, &["val"])
            .expect_err("no sentences");
        assert!(err.to_string().contains("391895"), "{err}");
        let err =
            load_karpathy(&p("dataset_duplicate.json"), &root, &["test"]).expect_err("duplicate");
        assert!(err.to_string().contains("twice"), "{err}");
        let err = load_karpathy(&p("missing_dataset.json"), &root, &["test"]).expect_err("missing");
        assert!(matches!(err, TaskError::Io { .. }));
        assert!(err.to_string().contains("missing_dataset.json"));
        let err = load_karpathy(&p("results_duplicate.json"), &root, &["test"])
            .expect_err("not a Karpathy file");
        assert!(matches!(err, TaskError::Json { .. }), "{err}");
    }

    #[test]
    fn ground_truth_round_trip_and_official_format() {
        let ds = p("dataset_coco.json");
        let test = load_karpathy(&ds, &p("images"), &["test"]).expect("test");
        let path = tmp("gt.json");
        write_coco_ground_truth(&path, &test).expect("write gt");
        let refs = load_coco_captions(&path).expect("read gt");
        assert_eq!(refs.len(), 2);
        assert_eq!(refs[&522418], test[0].captions);
        assert_eq!(refs[&184613], test[1].captions);
        let text = std::fs::read_to_string(&path).expect("read");
        let gt: CocoGroundTruth = serde_json::from_str(&text).expect("parse");
        assert_eq!(gt.kind, "captions");
        assert_eq!(gt.annotations[0].id, Some(1));
        assert_eq!(gt.annotations.len(), 4);
        assert_eq!(
            gt.images[0].file_name.as_deref(),
            Some("COCO_val2014_000000522418.jpg")
        );
        assert_eq!(gt.references(&path).expect("refs"), refs);

        let mut dup = test.clone();
        dup.push(test[0].clone());
        let err = write_coco_ground_truth(&path, &dup).expect_err("duplicate image");
        assert!(err.to_string().contains("gt.json"), "{err}");
        assert!(CocoGroundTruth::from_images(&dup).is_err());

        // A hand-written official-style file with extra fields.
        let refs = load_coco_captions(&p("captions_val_gt.json")).expect("official gt");
        assert_eq!(refs.len(), 2);
        assert_eq!(refs[&391895].len(), 2);
        std::fs::remove_file(&path).ok();
    }

    #[test]
    fn results_round_trip_and_duplicates() {
        let path = tmp("results.json");
        let res = vec![
            (522418, "a woman cutting a cake".to_string()),
            (184613, "a child with an umbrella".to_string()),
        ];
        write_results(&path, &res).expect("write");
        let back = load_results(&path).expect("read");
        assert_eq!(back.len(), 2);
        assert_eq!(back[&184613], "a child with an umbrella");
        let dup = vec![(1, "a".to_string()), (1, "b".to_string())];
        let err = write_results(&path, &dup).expect_err("duplicate");
        assert!(err.to_string().contains("image 1"), "{err}");
        let err = load_results(&p("results_duplicate.json")).expect_err("duplicate file");
        assert!(matches!(err, TaskError::Data { .. }), "{err}");
        assert!(err.to_string().contains("results_duplicate.json"), "{err}");
        std::fs::remove_file(&path).ok();
    }
}
