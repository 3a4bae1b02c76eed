//! Synthetic classification set: one large shape per image on a random background; the class
//! is the shape's colour (6 classes). Written as an ImageFolder (`train/<class>/*.jpg`,
//! `val/<class>/*.jpg`) and the same images listed in `train.csv` / `val.csv` (`path,label`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use super::render::{Blob, COLORS, Outline, Picture, write_all};
use crate::engine::data::mix;
use crate::error::{Result, TaskError};
use crate::synth::SynthSize;

/// Images per class and image side of a [`SynthSize`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassifyCounts {
    pub train_per_class: usize,
    pub val_per_class: usize,
    pub image_size: u32,
}

impl ClassifyCounts {
    /// Tiny: 100 / 20 per class at 64 px; small: 300 / 50 at 96 px; medium: 1000 / 100 at 128 px.
    pub fn of(size: SynthSize) -> Self {
        let (train_per_class, val_per_class, image_size) = match size {
            SynthSize::Tiny => (100, 20, 64),
            SynthSize::Small => (300, 50, 96),
            SynthSize::Medium => (1000, 100, 128),
        };
        Self {
            train_per_class,
            val_per_class,
            image_size,
        }
    }
}

/// What was written, with the baselines of the validation split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassifySynthSummary {
    /// Class names (sorted).
    pub classes: Vec<String>,
    /// ImageFolder roots and CSV lists, relative to the output directory.
    pub train_dir: PathBuf,
    pub val_dir: PathBuf,
    pub train_csv: PathBuf,
    pub val_csv: PathBuf,
    pub train_images: usize,
    pub val_images: usize,
    pub image_size: u32,
    /// `1 / classes`.
    pub chance: f64,
    /// The most frequent validation class and its share.
    pub majority_label: String,
    pub majority: f64,
}

/// Writes the set under `out`; deterministic in `seed`.
pub fn write(out: &Path, seed: u64, size: SynthSize) -> Result<ClassifySynthSummary> {
    write_counts(out, seed, ClassifyCounts::of(size))
}

/// [`write`] with explicit counts.
pub fn write_counts(out: &Path, seed: u64, counts: ClassifyCounts) -> Result<ClassifySynthSummary> {
    let mut palette: Vec<(&str, [u8; 3])> = COLORS.to_vec();
    palette.sort_by_key(|c| c.0);
    let names: Vec<String> = palette.iter().map(|c| c.0.to_string()).collect();
    let mut jobs = Vec::new();
    let mut val_counts: BTreeMap<String, usize> = BTreeMap::new();
    for (split, per_class, salt) in [
        ("train", counts.train_per_class, 1u64),
        ("val", counts.val_per_class, 2u64),
    ] {
        let mut csv = String::from("path,label\n");
        for (ci, &(name, rgb)) in palette.iter().enumerate() {
            let dir = out.join(split).join(name);
            std::fs::create_dir_all(&dir).map_err(|e| TaskError::io(&dir, e))?;
            for i in 0..per_class {
                let mut rng = StdRng::seed_from_u64(mix(&[seed, salt, ci as u64, i as u64]));
                let outline = Outline::ALL[rng.random_range(0..Outline::ALL.len())];
                let mut pic = Picture::random_background(&mut rng);
                pic.blobs.push(Blob::random(outline, rgb, 0.2, &mut rng));
                let rel = format!("{split}/{name}/{i:05}.jpg");
                let _ = writeln!(csv, "{rel},{name}");
                jobs.push((out.join(&rel), pic));
                if split == "val" {
                    *val_counts.entry(name.to_string()).or_default() += 1;
                }
            }
        }
        let path = out.join(format!("{split}.csv"));
        std::fs::write(&path, csv).map_err(|e| TaskError::io(&path, e))?;
    }
    write_all(&jobs, counts.image_size)?;
    let val_total: usize = val_counts.values().sum();
    let (majority_label, majority_n) =
        val_counts
            .iter()
            .fold((String::new(), 0usize), |best, (l, &n)| {
                if n > best.1 { (l.clone(), n) } else { best }
            });
    Ok(ClassifySynthSummary {
        chance: 1.0 / names.len() as f64,
        train_dir: "train".into(),
        val_dir: "val".into(),
        train_csv: "train.csv".into(),
        val_csv: "val.csv".into(),
        train_images: counts.train_per_class * names.len(),
        val_images: val_total,
        image_size: counts.image_size,
        majority: majority_n as f64 / val_total.max(1) as f64,
        majority_label,
        classes: names,
    })
}
