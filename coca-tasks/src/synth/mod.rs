//! A procedurally generated "shapes" world written in the official file formats of the four
//! downstream tasks, so that every loader, head, metric and CLI path can run without
//! downloads, and a tiny model can show it learns in minutes on a CPU.
//!
//! Images show 1-4 shapes (circle, square, triangle, star) in six colours (red, green, blue,
//! yellow, purple, orange), two sizes, placed on a 3x3 grid, over a plain, gradient or noisy
//! neutral background. Images are square or 4:3 either way; the grid covers the centred square,
//! so the centre crop of the preprocessing keeps every shape the files talk about.
//! [`generate`] writes, under `OUT`:
//!
//! ```text
//! coco/images/{train2014,val2014}/COCO_{dir}_{id:012}.jpg
//! coco/dataset_coco.json                      Karpathy split (train | restval | val | test)
//! coco/annotations/captions_{train,val}2014.json
//! vqa/v2_OpenEnded_mscoco_{train,val}2014_questions.json
//! vqa/v2_mscoco_{train,val}2014_annotations.json   (questions about the COCO images)
//! snli-ve/snli_ve_{train,dev,test}.jsonl, snli-ve/flickr30k-images/{id}.jpg
//! nlvr2/{train,dev,test1}.json (JSON Lines), nlvr2/images/train/{directory}/*.png,
//! nlvr2/images/{dev,test1}/*.png (a few of them JPEG-encoded, as in the official data)
//! summary.json                                 [`SynthSummary`]
//! ```
//!
//! Output is a pure function of the seed and the counts: the same seed gives byte-identical
//! files, whatever the number of threads.

mod coco;
mod facts;
mod nlvr2;
mod render;
mod scene;
mod snli_ve;
mod text;
mod vqa;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use crate::error::{Result, TaskError};

/// Preset world sizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SynthSize {
    /// 64 px images, a few hundred to a few thousand per task, NLVR2 statements of the
    /// [`Nlvr2Statements::Each`] kind only: for tests and CI (a few seconds).
    Tiny,
    /// 96 px images, a few thousand per task: for learning demos on a CPU.
    Small,
    /// 128 px images, tens of thousands per task.
    Medium,
}

impl SynthSize {
    /// Every preset, smallest first.
    pub const ALL: [SynthSize; 3] = [SynthSize::Tiny, SynthSize::Small, SynthSize::Medium];

    /// The lower-case name (`tiny`, `small`, `medium`).
    pub fn name(self) -> &'static str {
        match self {
            SynthSize::Tiny => "tiny",
            SynthSize::Small => "small",
            SynthSize::Medium => "medium",
        }
    }

    /// How many images, questions and examples this preset generates.
    pub fn counts(self) -> SynthCounts {
        match self {
            SynthSize::Tiny => SynthCounts {
                image_size: 64,
                coco_train: 1_700,
                coco_restval: 300,
                coco_val: 50,
                coco_test: 50,
                vqa_questions_per_image: 5,
                snli_ve_train_images: 100,
                snli_ve_dev_images: 25,
                snli_ve_test_images: 25,
                nlvr2_train_sets: 800,
                nlvr2_dev_sets: 300,
                nlvr2_test1_sets: 20,
                nlvr2_statements: Nlvr2Statements::Each,
            },
            SynthSize::Small => SynthCounts {
                image_size: 96,
                coco_train: 1_700,
                coco_restval: 300,
                coco_val: 250,
                coco_test: 250,
                vqa_questions_per_image: 5,
                snli_ve_train_images: 1_000,
                snli_ve_dev_images: 200,
                snli_ve_test_images: 200,
                nlvr2_train_sets: 600,
                nlvr2_dev_sets: 120,
                nlvr2_test1_sets: 120,
                nlvr2_statements: Nlvr2Statements::All,
            },
            SynthSize::Medium => SynthCounts {
                image_size: 128,
                coco_train: 17_000,
                coco_restval: 3_000,
                coco_val: 1_000,
                coco_test: 1_000,
                vqa_questions_per_image: 5,
                snli_ve_train_images: 10_000,
                snli_ve_dev_images: 1_000,
                snli_ve_test_images: 1_000,
                nlvr2_train_sets: 6_000,
                nlvr2_dev_sets: 600,
                nlvr2_test1_sets: 600,
                nlvr2_statements: Nlvr2Statements::All,
            },
        }
    }
}

impl fmt::Display for SynthSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SynthSize {
    type Err = TaskError;

    fn from_str(s: &str) -> Result<Self> {
        SynthSize::ALL
            .into_iter()
            .find(|z| z.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                TaskError::Config(format!(
                    "unknown synthetic world size {s:?} (expected tiny, small or medium)"
                ))
            })
    }
}

/// What a world contains. Image sides vary around `image_size` (square, 4:3 and 3:4).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SynthCounts {
    /// Shorter image side in pixels.
    pub image_size: u32,
    /// Karpathy `train` images (in `train2014`).
    pub coco_train: usize,
    /// Karpathy `restval` images (in `val2014`, used for training).
    pub coco_restval: usize,
    /// Karpathy `val` images (in `val2014`).
    pub coco_val: usize,
    /// Karpathy `test` images (in `val2014`).
    pub coco_test: usize,
    /// VQA questions per COCO image (fewer when a scene offers too few distinct ones).
    pub vqa_questions_per_image: usize,
    /// SNLI-VE train images (six hypotheses each: two per label).
    pub snli_ve_train_images: usize,
    /// SNLI-VE dev images.
    pub snli_ve_dev_images: usize,
    /// SNLI-VE test images.
    pub snli_ve_test_images: usize,
    /// NLVR2 train sets (one sentence and 2-4 image pairs each).
    pub nlvr2_train_sets: usize,
    /// NLVR2 dev sets.
    pub nlvr2_dev_sets: usize,
    /// NLVR2 test1 sets.
    pub nlvr2_test1_sets: usize,
    /// Which statements the NLVR2 sets make.
    #[serde(default)]
    pub nlvr2_statements: Nlvr2Statements,
}

/// The statements of the NLVR2 sets (each set's pairs are half true, half false, so the text
/// alone predicts nothing).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Nlvr2Statements {
    /// Every kind: counts per image and in total, comparisons of counts, positions, "exactly
    /// one image", "neither image", "each image".
    #[default]
    All,
    /// Only that each of the two images contains a colour (3 in 4: "each image contains at
    /// least one red shape") or a coloured kind ("both images contain a red star"): what the
    /// tiny model of the CPU pipeline learns in a few hundred steps (docs/results.md).
    Each,
}

/// What [`generate`] wrote; also saved as `OUT/summary.json`. Paths are relative to
/// [`SynthSummary::root`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SynthSummary {
    /// The output directory (not serialised, so that `summary.json` does not depend on it).
    #[serde(skip)]
    pub root: PathBuf,
    /// The generation seed.
    pub seed: u64,
    /// The preset, or `None` for custom counts.
    pub size: Option<SynthSize>,
    /// The counts generated.
    pub counts: SynthCounts,
    /// COCO captioning files.
    pub coco: CocoSummary,
    /// VQAv2 files.
    pub vqa: VqaSummary,
    /// SNLI-VE files.
    pub snli_ve: SnliVeSummary,
    /// NLVR2 files.
    pub nlvr2: Nlvr2Summary,
    /// Every file written, `summary.json` included.
    pub files_written: usize,
    /// The summaries of the tasks that generate their own data ([`TaskSpec::synth`]), by task
    /// name; each has a run configuration in `configs/<task>.toml`.
    #[serde(flatten)]
    pub tasks: BTreeMap<String, serde_json::Value>,
}

impl SynthSummary {
    /// `root` joined with a path of this summary.
    pub fn path(&self, relative: impl AsRef<Path>) -> PathBuf {
        self.root.join(relative)
    }
}

/// The COCO part of a [`SynthSummary`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CocoSummary {
    /// `coco/dataset_coco.json`.
    pub karpathy: PathBuf,
    /// `coco/images`, holding `train2014/` and `val2014/`.
    pub image_dir: PathBuf,
    /// COCO caption ground truth per image directory (`train2014`, `val2014`).
    pub captions: BTreeMap<String, PathBuf>,
    /// Images per Karpathy split (`train`, `restval`, `val`, `test`).
    pub images: BTreeMap<String, usize>,
    /// Captions per image.
    pub captions_per_image: usize,
    /// The best constant caption and its CIDEr on the `val` split.
    pub baseline: Option<CaptionBaseline>,
    /// Chance recall@1 of retrieval on the `val` split, as continued pretraining scores it.
    #[serde(default)]
    pub retrieval_chance: Option<RetrievalChance>,
}

/// Recall@1 that retrieval without any knowledge of which caption goes with which image reaches
/// on a Karpathy split, scored as continued pretraining does
/// ([`retrieval_recall`](crate::pretrain::retrieval_recall): each distinct image once, a tie
/// with a wrong candidate a miss). Equal caption texts have equal embeddings, so an uninformed
/// model hits with probability 1 / distinct images for text->image, and for image->text with
/// the share of distinct caption texts that belong to that image alone (mean over images).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RetrievalChance {
    /// The split scored (`val`).
    pub split: String,
    /// (image, caption) pairs: the rows and columns of the score matrix.
    pub pairs: usize,
    /// Distinct images.
    pub images: usize,
    /// Distinct caption texts (trimmed, as the loader reads them).
    pub distinct_captions: usize,
    /// Chance text->image R@1: 1 / `images`.
    pub t2i_r1: f64,
    /// Chance image->text R@1: the mean over images of (caption texts of that image alone) /
    /// `distinct_captions`.
    pub i2t_r1: f64,
}

/// A captioning baseline that gives every image the same caption.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CaptionBaseline {
    pub caption: String,
    /// CIDEr on the training images it was chosen on.
    pub train_cider: f64,
    /// CIDEr on the Karpathy `val` split.
    pub cider: f64,
}

/// The VQAv2 part of a [`SynthSummary`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct VqaSummary {
    /// Question files per subtype (`train2014`, `val2014`).
    pub questions: BTreeMap<String, PathBuf>,
    /// Annotation files per subtype.
    pub annotations: BTreeMap<String, PathBuf>,
    /// Questions per subtype.
    pub questions_count: BTreeMap<String, usize>,
    /// Questions per subtype and answer type (`yes/no`, `number`, `other`).
    pub answer_types: BTreeMap<String, BTreeMap<String, usize>>,
    /// Blind baselines on `val2014`.
    pub baseline: VqaBaseline,
}

/// Answer-prior baselines: what a model that ignores the image (and mostly the question) scores.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct VqaBaseline {
    /// The split scored (`val2014`).
    pub split: String,
    /// Questions scored.
    pub questions: usize,
    /// The single answer scoring best on the split (e.g. `yes`).
    pub answer: String,
    /// VQA accuracy of always answering `answer`, in [0, 1] (x100 for the official scale).
    pub accuracy: f64,
    /// VQA accuracy in [0, 1] of answering, per question type (`how many`, `what color is
    /// the`, ...), that type's best single answer: a language-prior baseline.
    pub question_type_prior_accuracy: f64,
}

/// The accuracy of always predicting the most frequent label of a split.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MajorityBaseline {
    /// The most frequent label.
    pub label: String,
    /// Its share of the scored examples, in [0, 1].
    pub accuracy: f64,
    /// Examples scored.
    pub examples: usize,
}

/// The SNLI-VE part of a [`SynthSummary`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SnliVeSummary {
    /// JSONL file per split (`train`, `dev`, `test`).
    pub files: BTreeMap<String, PathBuf>,
    /// `snli-ve/flickr30k-images`.
    pub image_dir: PathBuf,
    /// Images per split.
    pub images: BTreeMap<String, usize>,
    /// Lines per split and gold label, `-` (lines loaders must drop) included.
    pub labels: BTreeMap<String, BTreeMap<String, usize>>,
    /// Majority-class baselines on `dev` and `test` (`-` lines excluded).
    pub baselines: BTreeMap<String, MajorityBaseline>,
}

/// The NLVR2 part of a [`SynthSummary`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Nlvr2Summary {
    /// JSON Lines file per split (`train`, `dev`, `test1`).
    pub files: BTreeMap<String, PathBuf>,
    /// `nlvr2/images`.
    pub image_dir: PathBuf,
    /// Image pairs (= examples) per split.
    pub pairs: BTreeMap<String, usize>,
    /// Unique sentences (consistency groups) per split.
    pub sentences: BTreeMap<String, usize>,
    /// Examples per split and label (`True`, `False`).
    pub labels: BTreeMap<String, BTreeMap<String, usize>>,
    /// `.png` files that are really JPEG-encoded.
    pub jpeg_encoded_png: usize,
    /// Majority-label baselines on `dev` and `test1`.
    pub baselines: BTreeMap<String, MajorityBaseline>,
}

/// Generates the world of preset `size` under `out` (created if needed; existing files with
/// the same names are overwritten, others left alone). Deterministic in `seed`.
pub fn generate(out: &Path, seed: u64, size: SynthSize) -> Result<SynthSummary> {
    generate_world(out, seed, &size.counts(), Some(size))
}

/// Like [`generate`] with explicit counts (`size` is `None` in the summary).
pub fn generate_with_counts(out: &Path, seed: u64, counts: &SynthCounts) -> Result<SynthSummary> {
    generate_world(out, seed, counts, None)
}

fn generate_world(
    out: &Path,
    seed: u64,
    counts: &SynthCounts,
    size: Option<SynthSize>,
) -> Result<SynthSummary> {
    if counts.image_size < 16 {
        return Err(TaskError::Config(format!(
            "synthetic image size {} is too small (at least 16 pixels)",
            counts.image_size
        )));
    }
    for dir in [
        "coco/images/train2014",
        "coco/images/val2014",
        "coco/annotations",
        "vqa",
        "snli-ve/flickr30k-images",
        "nlvr2/images/dev",
        "nlvr2/images/test1",
    ] {
        render::create_dir(&out.join(dir))?;
    }
    // Each task draws from its own stream, so changing one leaves the others' files unchanged.
    let stream = |tag: u64| StdRng::seed_from_u64(splitmix(seed ^ splitmix(tag)));

    let mut rng = stream(1);
    let coco_images = coco::build(&mut rng, counts);
    coco::write(out, &coco_images, &mut rng)?;
    let mut jobs = coco::jobs(out, &coco_images);
    let mut coco_summary = CocoSummary {
        karpathy: "coco/dataset_coco.json".into(),
        image_dir: "coco/images".into(),
        captions_per_image: coco::CAPTIONS_PER_IMAGE,
        baseline: coco::constant_caption_baseline(&coco_images)?,
        retrieval_chance: coco::retrieval_chance(&coco_images, "val"),
        ..Default::default()
    };
    for dir in ["train2014", "val2014"] {
        coco_summary.captions.insert(
            dir.to_string(),
            format!("coco/annotations/captions_{dir}.json").into(),
        );
    }
    for im in &coco_images {
        *coco_summary.images.entry(im.split.to_string()).or_default() += 1;
    }

    let vqa_summary = vqa::write(
        out,
        &coco_images,
        counts.vqa_questions_per_image,
        &mut stream(2),
    )?;

    let mut snli_summary = SnliVeSummary::default();
    jobs.extend(snli_ve::generate(
        out,
        counts,
        &mut stream(3),
        &mut snli_summary,
    )?);

    let mut nlvr2_summary = Nlvr2Summary::default();
    let nlvr2_jobs = nlvr2::generate(out, counts, &mut stream(4), &mut nlvr2_summary)?;
    let mut dirs: Vec<&Path> = nlvr2_jobs.iter().filter_map(|j| j.path.parent()).collect();
    dirs.sort();
    dirs.dedup();
    for d in dirs {
        render::create_dir(d)?;
    }
    jobs.extend(nlvr2_jobs);

    render::run_jobs(&jobs)?;

    // Images, Karpathy + 2 caption files, 4 VQA files, 3 + 3 JSONL files, summary.json.
    let mut files_written = jobs.len() + 3 + 4 + 3 + 3 + 1;
    let mut tasks = BTreeMap::new();
    // Worlds of custom counts (tests) hold the COCO-world tasks only.
    if let Some(size) = size {
        for spec in crate::registry::TASKS {
            let name = spec.name();
            let dir = out.join(name);
            let Some(task) = spec.synth(&dir, splitmix(seed ^ splitmix(name_tag(name))), size)?
            else {
                continue;
            };
            files_written += count_files(&dir)? + 1;
            write_config(out, name, &task)?;
            let mut entry = task.summary;
            if let (Some(bar), serde_json::Value::Object(map)) = (&task.bar, &mut entry) {
                map.insert("pipeline_bar".into(), serde_json::json!(bar));
            }
            tasks.insert(name.to_string(), entry);
        }
    }
    let summary = SynthSummary {
        root: out.to_path_buf(),
        seed,
        size,
        counts: counts.clone(),
        coco: coco_summary,
        vqa: vqa_summary,
        snli_ve: snli_summary,
        nlvr2: nlvr2_summary,
        files_written,
        tasks,
    };
    write_summary(&summary)?;
    Ok(summary)
}

/// Reads `OUT/summary.json` of a generated world (`root` set to `out`).
pub fn load_summary(out: &Path) -> Result<SynthSummary> {
    let path = out.join("summary.json");
    let bytes = std::fs::read(&path).map_err(|e| TaskError::io(&path, e))?;
    let mut summary: SynthSummary =
        serde_json::from_slice(&bytes).map_err(|e| json_err(&path, e))?;
    summary.root = out.to_path_buf();
    Ok(summary)
}

fn write_summary(summary: &SynthSummary) -> Result<()> {
    let path = summary.root.join("summary.json");
    let mut bytes = serde_json::to_vec_pretty(summary).map_err(|e| json_err(&path, e))?;
    bytes.push(b'\n');
    write_file(&path, &bytes)
}

/// A stream tag from a task name (FNV-1a), so that each task's data depends only on the seed.
fn name_tag(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn count_files(dir: &Path) -> Result<usize> {
    let mut n = 0;
    for entry in std::fs::read_dir(dir).map_err(|e| TaskError::io(dir, e))? {
        let entry = entry.map_err(|e| TaskError::io(dir, e))?;
        let path = entry.path();
        n += if path.is_dir() {
            count_files(&path)?
        } else {
            1
        };
    }
    Ok(n)
}

/// `OUT/configs/<task>.toml`: the task's example configuration with `[data]` pointing at
/// the generated files.
fn write_config(out: &Path, name: &str, task: &crate::registry::SynthTask) -> Result<()> {
    let path = out.join("configs").join(format!("{name}.toml"));
    let mut table: toml::Table = task
        .config
        .parse()
        .map_err(|e| TaskError::Config(format!("example config of {name}: {e}")))?;
    table.insert("data".into(), toml::Value::Table(task.data.clone()));
    let mut text = format!(
        "# {name} on the synthetic world (written by `coca-cli synth`; the task's example \
         configuration with [data] filled in).\n"
    );
    text.push_str(&toml::to_string(&table).map_err(|e| TaskError::Config(e.to_string()))?);
    render::create_dir(&out.join("configs"))?;
    write_file(&path, text.as_bytes())
}

/// SplitMix64 finaliser: decorrelates derived seeds.
fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Image dimensions around `base`: mostly square, some 4:3 landscape and 3:4 portrait.
fn image_dims(rng: &mut StdRng, base: u32) -> (u32, u32) {
    let long = base * 4 / 3;
    match scene::pick_weighted(rng, &[55, 30, 15]) {
        0 => (base, base),
        1 => (long, base),
        _ => (base, long),
    }
}

fn json_err(path: &Path, e: serde_json::Error) -> TaskError {
    TaskError::Json {
        path: path.to_path_buf(),
        line: None,
        msg: e.to_string(),
    }
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).map_err(|e| TaskError::io(path, e))
}

/// Serialises `value` compactly (like the official files) to `path`.
fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let bytes = serde_json::to_vec(value).map_err(|e| json_err(path, e))?;
    write_file(path, &bytes)
}

/// (most frequent label, its share, examples) ignoring `skip` labels; ties go to the label
/// that sorts first.
fn majority(labels: &BTreeMap<String, usize>, skip: &[&str]) -> (String, f64, usize) {
    let kept = labels.iter().filter(|(l, _)| !skip.contains(&l.as_str()));
    let total: usize = kept.clone().map(|(_, n)| n).sum();
    let mut best: Option<(&String, usize)> = None;
    for (l, &n) in kept {
        if best.is_none_or(|(_, b)| n > b) {
            best = Some((l, n));
        }
    }
    match best {
        Some((l, n)) if total > 0 => (l.clone(), n as f64 / total as f64, total),
        _ => (String::new(), 0.0, 0),
    }
}

/// A fresh scratch directory for a test.
#[cfg(test)]
fn test_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "coca-synth-{name}-{}-{}",
        std::process::id(),
        rand::Rng::random::<u32>(&mut rand::rng())
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use std::collections::{BTreeSet, HashSet};

    fn read_json(path: &Path) -> Value {
        serde_json::from_slice(&std::fs::read(path).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn read_jsonl(path: &Path) -> Vec<Value> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn keys(v: &Value, want: &[&str]) {
        let obj = v
            .as_object()
            .unwrap_or_else(|| panic!("not an object: {v}"));
        for k in want {
            assert!(obj.contains_key(*k), "missing {k:?} in {v}");
        }
    }

    fn small_counts() -> SynthCounts {
        SynthCounts {
            image_size: 32,
            coco_train: 12,
            coco_restval: 3,
            coco_val: 4,
            coco_test: 4,
            vqa_questions_per_image: 5,
            snli_ve_train_images: 8,
            snli_ve_dev_images: 4,
            snli_ve_test_images: 4,
            nlvr2_train_sets: 6,
            nlvr2_dev_sets: 3,
            nlvr2_test1_sets: 3,
            nlvr2_statements: Nlvr2Statements::All,
        }
    }

    fn all_files(root: &Path) -> BTreeSet<PathBuf> {
        let mut out = BTreeSet::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    out.insert(p.strip_prefix(root).unwrap().to_path_buf());
                }
            }
        }
        out
    }

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        let (a, b, c) = (test_dir("det-a"), test_dir("det-b"), test_dir("det-c"));
        let sa = generate_with_counts(&a, 7, &small_counts()).unwrap();
        generate_with_counts(&b, 7, &small_counts()).unwrap();
        generate_with_counts(&c, 8, &small_counts()).unwrap();
        let files = all_files(&a);
        assert_eq!(files, all_files(&b));
        assert_eq!(files.len(), sa.files_written);
        for f in &files {
            assert_eq!(
                std::fs::read(a.join(f)).unwrap(),
                std::fs::read(b.join(f)).unwrap(),
                "{} differs",
                f.display()
            );
        }
        for f in [
            "coco/dataset_coco.json",
            "vqa/v2_mscoco_val2014_annotations.json",
            "snli-ve/snli_ve_train.jsonl",
            "nlvr2/train.json",
        ] {
            assert_ne!(
                std::fs::read(a.join(f)).unwrap(),
                std::fs::read(c.join(f)).unwrap(),
                "{f} ignores the seed"
            );
        }
        for d in [a, b, c] {
            let _ = std::fs::remove_dir_all(d);
        }
    }

    #[test]
    fn tiny_world_is_in_the_official_formats() {
        let out = test_dir("tiny");
        let start = std::time::Instant::now();
        let summary = generate(&out, 0, SynthSize::Tiny).unwrap();
        eprintln!(
            "tiny world: {} files in {:.2?}",
            summary.files_written,
            start.elapsed()
        );
        assert_eq!(load_summary(&out).unwrap(), summary);
        let counts = SynthSize::Tiny.counts();

        // --- COCO Karpathy.
        let k = read_json(&out.join(&summary.coco.karpathy));
        assert_eq!(k["dataset"], "coco");
        let images = k["images"].as_array().unwrap();
        assert_eq!(
            images.len(),
            counts.coco_train + counts.coco_restval + counts.coco_val + counts.coco_test
        );
        let mut splits: BTreeMap<String, usize> = BTreeMap::new();
        let mut sentids = HashSet::new();
        for (n, im) in images.iter().enumerate() {
            keys(
                im,
                &[
                    "filepath",
                    "filename",
                    "cocoid",
                    "imgid",
                    "split",
                    "sentids",
                    "sentences",
                ],
            );
            assert_eq!(im["imgid"], n);
            let split = im["split"].as_str().unwrap();
            let fp = im["filepath"].as_str().unwrap();
            assert_eq!(
                fp,
                if split == "train" {
                    "train2014"
                } else {
                    "val2014"
                }
            );
            let name = im["filename"].as_str().unwrap();
            let id = im["cocoid"].as_u64().unwrap();
            assert_eq!(name, format!("COCO_{fp}_{id:012}.jpg"));
            let bytes = std::fs::read(out.join("coco/images").join(fp).join(name)).unwrap();
            assert_eq!(&bytes[..3], &[0xFF, 0xD8, 0xFF], "{name} is not a JPEG");
            let sents = im["sentences"].as_array().unwrap();
            assert_eq!(sents.len(), 5);
            for s in sents {
                keys(s, &["raw", "tokens", "imgid", "sentid"]);
                assert_eq!(s["imgid"], n);
                assert!(sentids.insert(s["sentid"].as_u64().unwrap()));
                assert!(!s["tokens"].as_array().unwrap().is_empty());
            }
            *splits.entry(split.to_string()).or_default() += 1;
        }
        assert_eq!(splits, summary.coco.images);
        assert_eq!(splits["restval"], counts.coco_restval);
        let first = image::open(
            out.join("coco/images")
                .join(images[0]["filepath"].as_str().unwrap())
                .join(images[0]["filename"].as_str().unwrap()),
        )
        .unwrap();
        assert_eq!(first.width().min(first.height()), counts.image_size);

        // --- Chance retrieval R@1 on `val`: the pairs pretraining scores (one per caption, in
        // file order), with random embeddings that are equal for equal inputs, scored by the
        // same recall function; the mean over draws must match the summary's chance.
        let chance = summary.coco.retrieval_chance.clone().unwrap();
        let val_pairs: Vec<(usize, String)> = images
            .iter()
            .enumerate()
            .filter(|(_, im)| im["split"] == "val")
            .flat_map(|(n, im)| {
                let sents = im["sentences"].as_array().unwrap().clone();
                sents
                    .into_iter()
                    .map(move |s| (n, s["raw"].as_str().unwrap().trim().to_string()))
            })
            .collect();
        assert_eq!(chance.split, "val");
        assert_eq!(chance.pairs, val_pairs.len());
        assert_eq!(chance.images, counts.coco_val);
        let texts: BTreeSet<&str> = val_pairs.iter().map(|p| p.1.as_str()).collect();
        assert_eq!(chance.distinct_captions, texts.len());
        assert!(chance.distinct_captions > chance.images, "{chance:?}");
        let mut rng = StdRng::seed_from_u64(11);
        let draws = 200;
        let (mut t2i, mut i2t) = (0.0, 0.0);
        for _ in 0..draws {
            let img: BTreeMap<usize, [f32; 4]> = val_pairs
                .iter()
                .map(|p| (p.0, std::array::from_fn(|_| rand::Rng::random(&mut rng))))
                .collect();
            let txt: BTreeMap<&str, [f32; 4]> = val_pairs
                .iter()
                .map(|p| {
                    (
                        p.1.as_str(),
                        std::array::from_fn(|_| rand::Rng::random(&mut rng)),
                    )
                })
                .collect();
            let image_feats: Vec<Vec<f32>> = val_pairs.iter().map(|p| img[&p.0].to_vec()).collect();
            let text_feats: Vec<Vec<f32>> = val_pairs
                .iter()
                .map(|p| txt[p.1.as_str()].to_vec())
                .collect();
            let groups: Vec<usize> = val_pairs.iter().map(|p| p.0).collect();
            let r: BTreeMap<String, f64> =
                crate::pretrain::retrieval_recall(&image_feats, &text_feats, &groups)
                    .into_iter()
                    .collect();
            i2t += r["i2t_r1"] / draws as f64;
            t2i += r["t2i_r1"] / draws as f64;
        }
        assert!(
            (t2i - chance.t2i_r1).abs() < 0.25 * chance.t2i_r1,
            "{t2i} vs {chance:?}"
        );
        assert!(
            (i2t - chance.i2t_r1).abs() < 0.25 * chance.i2t_r1,
            "{i2t} vs {chance:?}"
        );

        // --- COCO caption ground truth.
        for (dir, path) in &summary.coco.captions {
            let v = read_json(&out.join(path));
            keys(&v, &["info", "licenses", "images", "annotations"]);
            let ids: HashSet<u64> = v["images"]
                .as_array()
                .unwrap()
                .iter()
                .map(|im| {
                    keys(im, &["id", "file_name", "width", "height"]);
                    assert!(im["file_name"].as_str().unwrap().contains(dir.as_str()));
                    im["id"].as_u64().unwrap()
                })
                .collect();
            let anns = v["annotations"].as_array().unwrap();
            assert_eq!(anns.len(), ids.len() * 5);
            for a in anns {
                keys(a, &["image_id", "id", "caption"]);
                assert!(ids.contains(&a["image_id"].as_u64().unwrap()));
            }
        }

        // --- VQA.
        let coco_ids: HashSet<u64> = images
            .iter()
            .map(|im| im["cocoid"].as_u64().unwrap())
            .collect();
        for sub in ["train2014", "val2014"] {
            let q = read_json(&out.join(&summary.vqa.questions[sub]));
            keys(
                &q,
                &[
                    "info",
                    "task_type",
                    "data_type",
                    "license",
                    "data_subtype",
                    "questions",
                ],
            );
            assert_eq!(q["data_subtype"], sub);
            let a = read_json(&out.join(&summary.vqa.annotations[sub]));
            keys(&a, &["info", "license", "data_subtype", "annotations"]);
            let qs = q["questions"].as_array().unwrap();
            let anns = a["annotations"].as_array().unwrap();
            assert_eq!(qs.len(), anns.len());
            assert_eq!(qs.len(), summary.vqa.questions_count[sub]);
            let mut types: BTreeMap<String, usize> = BTreeMap::new();
            let mut yes = 0;
            for (q, a) in qs.iter().zip(anns) {
                keys(q, &["image_id", "question", "question_id"]);
                keys(
                    a,
                    &[
                        "question_id",
                        "image_id",
                        "question_type",
                        "answer_type",
                        "multiple_choice_answer",
                        "answers",
                    ],
                );
                assert_eq!(q["question_id"], a["question_id"]);
                assert!(coco_ids.contains(&q["image_id"].as_u64().unwrap()));
                let answers = a["answers"].as_array().unwrap();
                assert_eq!(answers.len(), 10);
                for (i, x) in answers.iter().enumerate() {
                    keys(x, &["answer", "answer_confidence", "answer_id"]);
                    assert_eq!(x["answer_id"], i + 1);
                }
                let mc = a["multiple_choice_answer"].as_str().unwrap();
                let n_mc = answers.iter().filter(|x| x["answer"] == mc).count();
                assert!(n_mc >= 6);
                let at = a["answer_type"].as_str().unwrap();
                if at == "number" {
                    assert!(mc.parse::<u32>().is_ok(), "{mc}");
                }
                if at == "yes/no" {
                    assert!(mc == "yes" || mc == "no");
                    yes += (mc == "yes") as usize;
                }
                *types.entry(at.to_string()).or_default() += 1;
            }
            assert_eq!(types, summary.vqa.answer_types[sub]);
            assert_eq!(types.len(), 3, "{types:?}");
            let share_yes = yes as f64 / types["yes/no"] as f64;
            assert!((0.3..0.7).contains(&share_yes), "yes share {share_yes}");
        }
        let b = &summary.vqa.baseline;
        assert!(b.accuracy > 0.05 && b.accuracy < 0.4, "{b:?}");
        assert!(b.question_type_prior_accuracy >= b.accuracy);
        assert!(b.question_type_prior_accuracy < 0.6, "{b:?}");

        // --- SNLI-VE.
        for split in ["train", "dev", "test"] {
            let lines = read_jsonl(&out.join(&summary.snli_ve.files[split]));
            let mut labels: BTreeMap<String, usize> = BTreeMap::new();
            let mut flikr = 0;
            for l in &lines {
                keys(
                    l,
                    &[
                        "sentence1",
                        "sentence2",
                        "gold_label",
                        "pairID",
                        "captionID",
                    ],
                );
                let id = match (l.get("Flickr30K_ID"), l.get("Flikr30kID")) {
                    (Some(id), None) => id,
                    (None, Some(id)) => {
                        flikr += 1;
                        id
                    }
                    _ => panic!("exactly one image id key expected: {l}"),
                };
                let id = id.as_str().unwrap().trim_end_matches(".jpg");
                assert!(
                    out.join(format!("snli-ve/flickr30k-images/{id}.jpg"))
                        .is_file()
                );
                *labels
                    .entry(l["gold_label"].as_str().unwrap().to_string())
                    .or_default() += 1;
            }
            assert!(flikr > 0 && flikr < lines.len() / 2);
            assert_eq!(labels, summary.snli_ve.labels[split]);
            for l in ["entailment", "neutral", "contradiction"] {
                assert_eq!(labels[l], 2 * summary.snli_ve.images[split], "{split} {l}");
            }
        }
        assert!((summary.snli_ve.baselines["test"].accuracy - 1.0 / 3.0).abs() < 1e-9);

        // --- NLVR2.
        for split in ["train", "dev", "test1"] {
            let lines = read_jsonl(&out.join(&summary.nlvr2.files[split]));
            assert_eq!(lines.len(), summary.nlvr2.pairs[split]);
            let mut groups = HashSet::new();
            let mut trues = 0;
            for l in &lines {
                keys(l, &["identifier", "sentence", "label", "synset", "query"]);
                assert_eq!(l.get("directory").is_some(), split == "train");
                let id = l["identifier"].as_str().unwrap();
                let f: Vec<&str> = id.split('-').collect();
                assert_eq!(f.len(), 4);
                assert_eq!(f[0], split);
                groups.insert(format!("{}-{}--{}", f[0], f[1], f[3]));
                let stem = &id[..id.rfind('-').unwrap()];
                let dir = match l.get("directory") {
                    Some(d) => out.join(format!("nlvr2/images/train/{}", d.as_u64().unwrap())),
                    None => out.join(format!("nlvr2/images/{split}")),
                };
                for side in ["img0", "img1"] {
                    let p = dir.join(format!("{stem}-{side}.png"));
                    let img = image::load_from_memory(&std::fs::read(&p).unwrap()).unwrap();
                    assert!(img.width() >= counts.image_size);
                }
                let label = l["label"].as_str().unwrap();
                assert!(label == "True" || label == "False");
                trues += (label == "True") as usize;
            }
            assert_eq!(groups.len(), summary.nlvr2.sentences[split]);
            let share = trues as f64 / lines.len() as f64;
            assert!((0.35..0.65).contains(&share), "{split}: True share {share}");
        }
        assert!(summary.nlvr2.jpeg_encoded_png >= 3);
        let _ = std::fs::remove_dir_all(&out);
    }

    /// Every string value in a JSON document.
    fn strings(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::String(s) => out.push(s.clone()),
            Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
            Value::Object(o) => o.values().for_each(|x| strings(x, out)),
            _ => {}
        }
    }

    #[test]
    fn sentences_use_the_right_indefinite_article() {
        let out = test_dir("articles");
        let mut counts = small_counts();
        counts.nlvr2_train_sets = 300;
        counts.coco_train = 60;
        let summary = generate_with_counts(&out, 3, &counts).unwrap();
        let mut texts = Vec::new();
        strings(&read_json(&out.join(&summary.coco.karpathy)), &mut texts);
        for path in summary
            .vqa
            .questions
            .values()
            .chain(summary.vqa.annotations.values())
        {
            strings(&read_json(&out.join(path)), &mut texts);
        }
        for path in summary
            .snli_ve
            .files
            .values()
            .chain(summary.nlvr2.files.values())
        {
            read_jsonl(&out.join(path))
                .iter()
                .for_each(|v| strings(v, &mut texts));
        }
        assert!(texts.len() > 1000, "{} strings", texts.len());
        for text in &texts {
            let words: Vec<String> = text.split_whitespace().map(|w| w.to_lowercase()).collect();
            for pair in words.windows(2) {
                let vowel = pair[1].starts_with(['a', 'e', 'i', 'o', 'u']);
                let wrong = match pair[0].as_str() {
                    "a" => vowel,
                    "an" => !vowel,
                    _ => false,
                };
                assert!(!wrong, "wrong article in {text:?}");
            }
        }
    }

    #[test]
    fn sizes_parse() {
        assert_eq!("Tiny".parse::<SynthSize>().unwrap(), SynthSize::Tiny);
        assert_eq!(SynthSize::Medium.to_string(), "medium");
        assert!("huge".parse::<SynthSize>().is_err());
    }

    #[test]
    fn output_dir_errors_name_the_path() {
        let file = test_dir("not-a-dir");
        std::fs::write(&file, b"x").unwrap();
        let err = generate_with_counts(&file, 0, &small_counts()).unwrap_err();
        assert!(err.to_string().contains(&*file.to_string_lossy()), "{err}");
        let _ = std::fs::remove_file(&file);
    }
}
