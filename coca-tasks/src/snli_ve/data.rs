//! SNLI-VE data: `snli_ve_{train,dev,test}.jsonl` as downloaded.
//!
//! One JSON object per line: hypothesis `sentence2`, label `gold_label` (`entailment`,
//! `neutral`, `contradiction`, or `-` when annotators disagreed: such lines are dropped and
//! counted), and the Flickr30k image id in `Flickr30K_ID` or `Flikr30kID` (string or number,
//! with or without `.jpg`). The image is `<image dir>/{id}.jpg`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Result, TaskError};
use crate::jsonl::for_each_json_line;

/// A visual-entailment label; [`index`](VeLabel::index) is the class of a 3-way classifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VeLabel {
    /// The image entails the hypothesis (class 0).
    Entailment,
    /// The image neither entails nor contradicts the hypothesis (class 1).
    Neutral,
    /// The image contradicts the hypothesis (class 2).
    Contradiction,
}

impl VeLabel {
    /// All labels in class order.
    pub const ALL: [VeLabel; 3] = [
        VeLabel::Entailment,
        VeLabel::Neutral,
        VeLabel::Contradiction,
    ];

    /// The class index (0 entailment, 1 neutral, 2 contradiction).
    pub fn index(self) -> usize {
        self as usize
    }

    /// The label of class `index`.
    pub fn from_index(index: usize) -> Option<Self> {
        Self::ALL.get(index).copied()
    }

    /// The name used in the data files (`entailment`, `neutral`, `contradiction`).
    pub fn name(self) -> &'static str {
        match self {
            VeLabel::Entailment => "entailment",
            VeLabel::Neutral => "neutral",
            VeLabel::Contradiction => "contradiction",
        }
    }
}

impl fmt::Display for VeLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The error of parsing a [`VeLabel`] from text that is not a label name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown SNLI-VE label {0:?} (expected entailment, neutral or contradiction)")]
pub struct ParseVeLabelError(pub String);

impl FromStr for VeLabel {
    type Err = ParseVeLabelError;

    /// Parses a label name, ignoring case and surrounding whitespace.
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        let t = s.trim();
        VeLabel::ALL
            .into_iter()
            .find(|l| l.name().eq_ignore_ascii_case(t))
            .ok_or_else(|| ParseVeLabelError(s.to_string()))
    }
}

/// One labelled SNLI-VE example.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VeExample {
    /// The `pairID` of the line, when present (e.g. `3416050480.jpg#4r1n`).
    pub pair_id: Option<String>,
    /// Path of the Flickr30k image (it may not exist; the trainer reports missing images).
    pub image: PathBuf,
    /// The hypothesis (`sentence2`).
    pub hypothesis: String,
    /// The gold label.
    pub label: VeLabel,
    /// 1-based line number in the JSON Lines file.
    pub line: usize,
}

/// The examples of one SNLI-VE file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VeData {
    /// Labelled examples in file order.
    pub examples: Vec<VeExample>,
    /// Lines dropped because their `gold_label` is `-` (no annotator majority).
    pub dropped_unlabelled: usize,
}

/// The fields of a line that the loader reads (others are ignored).
#[derive(Deserialize)]
struct RawLine {
    #[serde(rename = "Flickr30K_ID", default)]
    flickr30k_id: Option<Value>,
    #[serde(rename = "Flikr30kID", default)]
    flikr30k_id: Option<Value>,
    #[serde(rename = "pairID", default)]
    pair_id: Option<String>,
    sentence2: String,
    gold_label: String,
}

/// Loads an SNLI-VE JSON Lines file; images are `image_dir/{id}.jpg`.
///
/// Blank lines are skipped and `-` labels dropped (counted in
/// [`VeData::dropped_unlabelled`]). A malformed line is [`TaskError::Json`] with its line
/// number; a line with an unknown label or no usable image id is [`TaskError::Data`] naming
/// the line. Missing images are not an error.
pub fn load_snli_ve(jsonl: &Path, image_dir: &Path) -> Result<VeData> {
    let mut data = VeData {
        examples: Vec::new(),
        dropped_unlabelled: 0,
    };
    for_each_json_line(jsonl, |line, raw: RawLine| {
        let label_text = raw.gold_label.trim();
        if label_text == "-" {
            data.dropped_unlabelled += 1;
            return Ok(());
        }
        let label = label_text
            .parse::<VeLabel>()
            .map_err(|e| line_err(jsonl, line, e.to_string()))?;
        let id = image_id(jsonl, line, &raw)?;
        data.examples.push(VeExample {
            pair_id: raw.pair_id,
            image: image_dir.join(format!("{id}.jpg")),
            hypothesis: raw.sentence2,
            label,
            line,
        });
        Ok(())
    })?;
    Ok(data)
}

/// The Flickr30k id of a line, from either spelling, without a `.jpg` suffix.
fn image_id(path: &Path, line: usize, raw: &RawLine) -> Result<String> {
    let a = raw
        .flickr30k_id
        .as_ref()
        .map(|v| id_text(path, line, "Flickr30K_ID", v))
        .transpose()?;
    let b = raw
        .flikr30k_id
        .as_ref()
        .map(|v| id_text(path, line, "Flikr30kID", v))
        .transpose()?;
    match (a, b) {
        (Some(a), Some(b)) if a != b => Err(line_err(
            path,
            line,
            format!("`Flickr30K_ID` {a:?} and `Flikr30kID` {b:?} disagree"),
        )),
        (Some(id), _) | (None, Some(id)) => Ok(id),
        (None, None) => Err(line_err(
            path,
            line,
            "no image id (`Flickr30K_ID` or `Flikr30kID`)",
        )),
    }
}

/// An image id value (non-negative integer or string) as text, `.jpg` stripped.
fn id_text(path: &Path, line: usize, field: &str, v: &Value) -> Result<String> {
    let text = match v {
        Value::Number(n) if n.is_u64() => n.to_string(),
        Value::String(s) => {
            let s = s.trim();
            let s = match s.len().checked_sub(4) {
                Some(cut) if s.is_char_boundary(cut) && s[cut..].eq_ignore_ascii_case(".jpg") => {
                    &s[..cut]
                }
                _ => s,
            };
            s.to_string()
        }
        other => {
            return Err(line_err(
                path,
                line,
                format!("`{field}` must be a string or a non-negative integer, not {other}"),
            ));
        }
    };
    if text.is_empty() || text.contains(['/', '\\']) {
        return Err(line_err(path, line, format!("bad `{field}` {v}")));
    }
    Ok(text)
}

fn line_err(path: &Path, line: usize, msg: impl fmt::Display) -> TaskError {
    TaskError::Data {
        path: path.to_path_buf(),
        msg: format!("line {line}: {msg}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(name: &str) -> PathBuf {
        crate::test_paths::test_data("snli_ve").join(name)
    }

    #[test]
    fn labels() {
        for (i, l) in VeLabel::ALL.into_iter().enumerate() {
            assert_eq!(l.index(), i);
            assert_eq!(VeLabel::from_index(i), Some(l));
            assert_eq!(l.name().parse::<VeLabel>(), Ok(l));
            assert_eq!(l.to_string(), l.name());
        }
        assert_eq!(" Neutral ".parse::<VeLabel>(), Ok(VeLabel::Neutral));
        assert!("-".parse::<VeLabel>().is_err());
        assert_eq!(VeLabel::from_index(3), None);
        assert_eq!(
            serde_json::to_string(&VeLabel::Contradiction)
                .ok()
                .as_deref(),
            Some("\"contradiction\"")
        );
    }

    #[test]
    fn loads_both_id_spellings_and_drops_unlabelled() {
        let imgs = p("flickr30k-images");
        let d = load_snli_ve(&p("snli_ve_dev.jsonl"), &imgs).expect("dev loads");
        assert_eq!(d.dropped_unlabelled, 2);
        let ids: Vec<PathBuf> = d.examples.iter().map(|e| e.image.clone()).collect();
        assert_eq!(
            ids,
            vec![
                imgs.join("2248275918.jpg"), // Flikr30kID "2248275918.jpg"
                imgs.join("2248275918.jpg"), // Flickr30K_ID "2248275918"
                imgs.join("3416050480.jpg"), // Flickr30K_ID 3416050480 (number)
                imgs.join("4564320256.jpg"), // Flikr30kID 4564320256 (number)
                imgs.join("36979.jpg"),      // Flickr30K_ID "36979.JPG"
            ]
        );
        assert!(d.examples[0].image.is_file());
        assert!(!d.examples[3].image.is_file(), "missing images are fine");
        let labels: Vec<VeLabel> = d.examples.iter().map(|e| e.label).collect();
        assert_eq!(
            labels,
            vec![
                VeLabel::Neutral,
                VeLabel::Entailment,
                VeLabel::Contradiction,
                VeLabel::Entailment,
                VeLabel::Neutral,
            ]
        );
        assert_eq!(d.examples[0].hypothesis, "The sisters are hugging goodbye.");
        assert_eq!(
            d.examples[0].pair_id.as_deref(),
            Some("2248275918.jpg#0r1n")
        );
        assert_eq!(d.examples[2].pair_id, None);
        // Line numbers are file lines (line 3 is "-", line 5 is blank).
        let lines: Vec<usize> = d.examples.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![1, 2, 4, 6, 8]);
    }

    #[test]
    fn malformed_line_has_file_and_line_number() {
        let err = load_snli_ve(&p("malformed.jsonl"), &p("flickr30k-images"))
            .expect_err("line 3 is malformed");
        match &err {
            TaskError::Json { path, line, .. } => {
                assert_eq!(path, &p("malformed.jsonl"));
                assert_eq!(*line, Some(3));
            }
            other => panic!("expected Json error, got {other}"),
        }
        assert!(err.to_string().contains("malformed.jsonl:3"), "{err}");
    }

    #[test]
    fn bad_lines_are_data_errors_with_line() {
        let err =
            load_snli_ve(&p("bad_label.jsonl"), &p("flickr30k-images")).expect_err("unknown label");
        assert!(matches!(err, TaskError::Data { .. }));
        assert!(err.to_string().contains("line 2"), "{err}");
        assert!(err.to_string().contains("maybe"), "{err}");
        let err = load_snli_ve(&p("no_image_id.jsonl"), &p("flickr30k-images")).expect_err("no id");
        assert!(err.to_string().contains("line 1"), "{err}");
        assert!(err.to_string().contains("Flickr30K_ID"), "{err}");
        let err = load_snli_ve(&p("nope.jsonl"), &p("flickr30k-images")).expect_err("missing");
        assert!(matches!(err, TaskError::Io { .. }));
        assert!(err.to_string().contains("nope.jsonl"), "{err}");
    }
}
