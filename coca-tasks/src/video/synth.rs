//! Synthetic Kinetics-format video set whose label cannot be read from one frame.
//!
//! Each clip has 8-12 frames (64 px JPEG at the tiny size) over one background. The label is
//! the colour of a large shape (4 classes: blue, green, red, yellow) that is visible in only
//! 2 or 3 consecutive frames at a random place in the clip; every frame (those too) shows 1-2
//! small distractor shapes in purple or orange, which carry no information about the label.
//!
//! A classifier that sees one uniformly random frame is right when that frame shows the shape
//! (probability `v / f` for `v` visible frames of `f`), and otherwise can only guess a constant
//! class. Its best accuracy, computed exactly on the validation clips, is
//! `single_frame_ceiling = (sum_i v_i/f_i + max_c sum_{i: y_i = c} (1 - v_i/f_i)) / n`. With
//! `T = 8` evaluation frames (segment centres) at least one visible frame is always sampled
//! (`eval_coverage`, also computed exactly), so a video model can reach 100%.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use super::data::kinetics_clip_name;
use super::sampling::eval_indices;
use crate::classify::render::{Blob, COLORS, Outline, Picture, write_all};
use crate::engine::data::mix;
use crate::error::{Result, TaskError};
use crate::synth::SynthSize;

/// Label colours (sorted names) and distractor colours.
const LABELS: [&str; 4] = ["blue", "green", "red", "yellow"];
const DISTRACTORS: [&str; 2] = ["purple", "orange"];

/// Clip counts of a [`SynthSize`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct VideoCounts {
    pub train_per_class: usize,
    pub val_per_class: usize,
    pub image_size: u32,
    /// Frames per clip, inclusive range.
    pub min_frames: usize,
    pub max_frames: usize,
}

impl VideoCounts {
    /// Tiny: 40 / 10 clips per class at 64 px; small: 120 / 25 at 96 px; medium: 400 / 50 at
    /// 128 px; 8-12 frames per clip.
    pub fn of(size: SynthSize) -> Self {
        let (train_per_class, val_per_class, image_size) = match size {
            SynthSize::Tiny => (40, 10, 64),
            SynthSize::Small => (120, 25, 96),
            SynthSize::Medium => (400, 50, 128),
        };
        Self {
            train_per_class,
            val_per_class,
            image_size,
            min_frames: 8,
            max_frames: 12,
        }
    }
}

/// What was written, with the baselines of the validation clips.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VideoSynthSummary {
    pub classes: Vec<String>,
    /// Kinetics CSVs and the frames folder, relative to the output directory.
    pub train_csv: PathBuf,
    pub val_csv: PathBuf,
    pub frames_dir: PathBuf,
    pub train_clips: usize,
    pub val_clips: usize,
    pub image_size: u32,
    pub min_frames: usize,
    pub max_frames: usize,
    /// `1 / classes`.
    pub chance: f64,
    /// The most frequent validation class and its share.
    pub majority_label: String,
    pub majority: f64,
    /// The best accuracy from one uniformly random frame per clip (exact, see the module doc).
    pub single_frame_ceiling: f64,
    /// Share of validation clips in which `T = 8` evaluation frames include a visible one.
    pub eval_coverage: f64,
}

fn colour(name: &str) -> [u8; 3] {
    COLORS
        .iter()
        .find(|(n, _)| *n == name)
        .map_or([128, 128, 128], |c| c.1)
}

fn youtube_id(rng: &mut StdRng) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    (0..11)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Writes the set under `out`; deterministic in `seed`.
pub fn write(out: &Path, seed: u64, size: SynthSize) -> Result<VideoSynthSummary> {
    write_counts(out, seed, VideoCounts::of(size))
}

/// [`write`] with explicit counts.
pub fn write_counts(out: &Path, seed: u64, counts: VideoCounts) -> Result<VideoSynthSummary> {
    let frames_dir = out.join("frames");
    let mut jobs: Vec<(PathBuf, Picture)> = Vec::new();
    let mut ids = HashSet::new();
    // Validation clips: (label, visible share).
    let mut val: Vec<(usize, f64, bool)> = Vec::new();
    for (split, per_class, salt) in [
        ("train", counts.train_per_class, 1u64),
        ("val", counts.val_per_class, 2u64),
    ] {
        let mut csv = String::from("label,youtube_id,time_start,time_end,split\n");
        for i in 0..per_class * LABELS.len() {
            let label = i % LABELS.len();
            let mut rng = StdRng::seed_from_u64(mix(&[seed, salt, i as u64]));
            let mut id = youtube_id(&mut rng);
            while !ids.insert(id.clone()) {
                id = youtube_id(&mut rng);
            }
            let start: u64 = rng.random_range(0..300);
            let end = start + 10;
            let name = kinetics_clip_name(&id, start, end);
            let _ = writeln!(csv, "{},{id},{start},{end},{split}", LABELS[label]);
            let dir = frames_dir.join(&name);
            std::fs::create_dir_all(&dir).map_err(|e| TaskError::io(&dir, e))?;
            let f = rng.random_range(counts.min_frames..=counts.max_frames);
            let v = rng.random_range(2..=3usize).min(f);
            let first = rng.random_range(0..=f - v);
            let base = Picture::random_background(&mut rng);
            let outline = Outline::ALL[rng.random_range(0..Outline::ALL.len())];
            let object = Blob::random(outline, colour(LABELS[label]), 0.22, &mut rng);
            for k in 0..f {
                let mut pic = base.clone();
                pic.seed = rng.random();
                for _ in 0..rng.random_range(1..=2) {
                    let o = Outline::ALL[rng.random_range(0..Outline::ALL.len())];
                    let c = DISTRACTORS[rng.random_range(0..DISTRACTORS.len())];
                    pic.blobs.push(Blob::random(o, colour(c), 0.08, &mut rng));
                }
                // Drawn last: distractors never hide the labelled shape.
                if (first..first + v).contains(&k) {
                    pic.blobs.push(object.clone());
                }
                jobs.push((dir.join(format!("img_{:05}.jpg", k + 1)), pic));
            }
            if split == "val" {
                let seen = eval_indices(f, 8, 1, 0)
                    .iter()
                    .any(|k| (first..first + v).contains(k));
                val.push((label, v as f64 / f as f64, seen));
            }
        }
        let path = out.join(format!("{split}.csv"));
        std::fs::write(&path, csv).map_err(|e| TaskError::io(&path, e))?;
    }
    write_all(&jobs, counts.image_size)?;
    let n = val.len().max(1) as f64;
    let mut per_class: BTreeMap<usize, (usize, f64)> = BTreeMap::new();
    for &(l, p, _) in &val {
        let e = per_class.entry(l).or_default();
        e.0 += 1;
        e.1 += 1.0 - p;
    }
    let visible: f64 = val.iter().map(|v| v.1).sum();
    let best_guess = per_class.values().map(|v| v.1).fold(0.0, f64::max);
    let (maj, maj_n) = per_class.iter().fold(
        (0usize, 0usize),
        |b, (&l, &(c, _))| if c > b.1 { (l, c) } else { b },
    );
    Ok(VideoSynthSummary {
        classes: LABELS.iter().map(|s| s.to_string()).collect(),
        train_csv: "train.csv".into(),
        val_csv: "val.csv".into(),
        frames_dir: "frames".into(),
        train_clips: counts.train_per_class * LABELS.len(),
        val_clips: val.len(),
        image_size: counts.image_size,
        min_frames: counts.min_frames,
        max_frames: counts.max_frames,
        chance: 1.0 / LABELS.len() as f64,
        majority_label: LABELS[maj].to_string(),
        majority: maj_n as f64 / n,
        single_frame_ceiling: (visible + best_guess) / n,
        eval_coverage: val.iter().filter(|v| v.2).count() as f64 / n,
    })
}
