//! NLVR2 data: `train.json`, `dev.json`, `test1.json` (JSON Lines) as downloaded, and the
//! predictions CSV read by the official evaluator.
//!
//! Each line has `identifier` (`split-setid-pairid-sentenceid`), `sentence`, `label`
//! (`"True"`/`"False"`) and, in train only, `directory`. The two images of an example are the
//! identifier without its last field plus `-img0.png` (left) and `-img1.png` (right), stored in
//! `<image root>/train/{directory}/` for train and `<image root>/{split}/` otherwise.

use std::collections::HashSet;
use std::fmt;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Result, TaskError};
use crate::jsonl::for_each_json_line;

/// One NLVR2 example: a sentence about a pair of images.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Nlvr2Example {
    /// `split-setid-pairid-sentenceid`, e.g. `dev-850-0-0`.
    pub identifier: String,
    /// The sentence.
    pub sentence: String,
    /// Whether the sentence is true of the image pair (`None` when the file has no labels).
    pub label: Option<bool>,
    /// Path of the left image (`...-img0.png`; it may not exist).
    pub left: PathBuf,
    /// Path of the right image (`...-img1.png`; it may not exist).
    pub right: PathBuf,
}

/// The fields of a line that the loader reads (others are ignored).
#[derive(Deserialize)]
struct RawLine {
    identifier: String,
    sentence: String,
    #[serde(default)]
    label: Option<Value>,
    #[serde(default)]
    directory: Option<Value>,
}

/// Loads an NLVR2 JSON Lines file and resolves the image paths under `image_root`.
///
/// For each example, the first of these directories holding its left (or right) image is used:
/// `{split}/{directory}/`, `{split}/`, `{directory}/`, the root itself (entries with
/// `directory` only where the line has one; `split` is the identifier's first field). When
/// none holds them, the paths name the first. Missing images are not an error; malformed lines
/// ([`TaskError::Json`]), bad identifiers or labels, and repeated identifiers
/// ([`TaskError::Data`]) are, with their line number.
pub fn load_nlvr2(jsonl: &Path, image_root: &Path) -> Result<Vec<Nlvr2Example>> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for_each_json_line(jsonl, |line, raw: RawLine| {
        let identifier = raw.identifier.trim().to_string();
        let (split, pair) = split_identifier(&identifier).ok_or_else(|| {
            line_err(
                jsonl,
                line,
                format!("identifier {identifier:?} is not split-setid-pairid-sentenceid"),
            )
        })?;
        let label = match &raw.label {
            None | Some(Value::Null) => None,
            Some(v) => Some(parse_label(v).ok_or_else(|| {
                line_err(
                    jsonl,
                    line,
                    format!("label {v} is not \"True\" or \"False\""),
                )
            })?),
        };
        let directory = match &raw.directory {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                directory_text(v)
                    .ok_or_else(|| line_err(jsonl, line, format!("bad `directory` {v}")))?,
            ),
        };
        if !seen.insert(identifier.clone()) {
            return Err(line_err(
                jsonl,
                line,
                format!("identifier {identifier:?} appears twice"),
            ));
        }
        let left_name = format!("{pair}-img0.png");
        let right_name = format!("{pair}-img1.png");
        let dir = image_dir(
            image_root,
            split,
            directory.as_deref(),
            &left_name,
            &right_name,
        );
        out.push(Nlvr2Example {
            left: dir.join(&left_name),
            right: dir.join(&right_name),
            identifier,
            sentence: raw.sentence,
            label,
        });
        Ok(())
    })?;
    Ok(out)
}

/// Splits `split-setid-pairid-sentenceid` into the split (`dev`) and the image-pair prefix
/// (`dev-850-0`); `None` unless there are at least four non-empty fields.
pub fn split_identifier(identifier: &str) -> Option<(&str, &str)> {
    let fields: Vec<&str> = identifier.split('-').collect();
    if fields.len() < 4 || fields.iter().any(|f| f.is_empty()) {
        return None;
    }
    let (pair, _sentence) = identifier.rsplit_once('-')?;
    Some((fields[0], pair))
}

/// A label: `"True"`/`"False"` in any case, or a JSON boolean.
fn parse_label(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) => parse_bool(s),
        _ => None,
    }
}

/// `true`/`false` in any case, surrounding whitespace ignored.
fn parse_bool(s: &str) -> Option<bool> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// A train `directory` (number or string) as a single path component.
fn directory_text(v: &Value) -> Option<String> {
    let text = match v {
        Value::Number(n) if n.is_u64() => n.to_string(),
        Value::String(s) => s.trim().to_string(),
        _ => return None,
    };
    let plain = !text.is_empty() && text != ".." && text != "." && !text.contains(['/', '\\']);
    plain.then_some(text)
}

/// The directory of an example's images (see [`load_nlvr2`]).
fn image_dir(
    root: &Path,
    split: &str,
    directory: Option<&str>,
    left: &str,
    right: &str,
) -> PathBuf {
    let mut candidates = Vec::with_capacity(4);
    if let Some(d) = directory {
        candidates.push(root.join(split).join(d));
    }
    candidates.push(root.join(split));
    if let Some(d) = directory {
        candidates.push(root.join(d));
    }
    candidates.push(root.to_path_buf());
    let found = candidates
        .iter()
        .position(|c| c.join(left).is_file() || c.join(right).is_file())
        .unwrap_or(0);
    candidates.swap_remove(found)
}

/// Writes predictions as the official `nlvr2/eval/metrics.py` reads them: one
/// `identifier,prediction` line per example, prediction `True` or `False`, **no header** (the
/// script treats every line as a prediction, so a header would count as one).
pub fn write_predictions_csv(path: &Path, preds: &[(String, bool)]) -> Result<()> {
    let mut seen = HashSet::with_capacity(preds.len());
    let mut text = String::with_capacity(preds.len() * 24);
    for (id, pred) in preds {
        if id.is_empty() || id.contains([',', '\n', '\r']) || id.trim() != id {
            return Err(data_err(
                path,
                format!("identifier {id:?} cannot be written to a CSV line"),
            ));
        }
        if !seen.insert(id.as_str()) {
            return Err(data_err(path, format!("identifier {id:?} predicted twice")));
        }
        text.push_str(id);
        text.push_str(if *pred { ",True\n" } else { ",False\n" });
    }
    std::fs::write(path, text).map_err(|e| TaskError::io(path, e))
}

/// Reads an `identifier,prediction` CSV as written by [`write_predictions_csv`].
///
/// Predictions are `true`/`false` in any case (the official script compares lowercased
/// text); blank lines and an `identifier,prediction` header line are skipped. A line without
/// exactly two fields, an unknown prediction or a repeated identifier is [`TaskError::Data`]
/// with its line number.
pub fn read_predictions_csv(path: &Path) -> Result<Vec<(String, bool)>> {
    let file = std::fs::File::open(path).map_err(|e| TaskError::io(path, e))?;
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for (i, text) in BufReader::new(file).lines().enumerate() {
        let line = i + 1;
        let text = text.map_err(|e| TaskError::io(path, e))?;
        let text = text.trim_start_matches('\u{feff}').trim();
        if text.is_empty() {
            continue;
        }
        let fields: Vec<&str> = text.split(',').map(str::trim).collect();
        if fields.len() != 2 || fields[0].is_empty() {
            return Err(line_err(
                path,
                line,
                format!("expected `identifier,prediction`, got {text:?}"),
            ));
        }
        if out.is_empty()
            && fields[0].eq_ignore_ascii_case("identifier")
            && fields[1].eq_ignore_ascii_case("prediction")
        {
            continue;
        }
        let pred = parse_bool(fields[1]).ok_or_else(|| {
            line_err(
                path,
                line,
                format!("prediction {:?} is not True or False", fields[1]),
            )
        })?;
        if !seen.insert(fields[0].to_string()) {
            return Err(line_err(
                path,
                line,
                format!("identifier {:?} predicted twice", fields[0]),
            ));
        }
        out.push((fields[0].to_string(), pred));
    }
    Ok(out)
}

fn data_err(path: &Path, msg: impl Into<String>) -> TaskError {
    TaskError::Data {
        path: path.to_path_buf(),
        msg: msg.into(),
    }
}

fn line_err(path: &Path, line: usize, msg: impl fmt::Display) -> TaskError {
    data_err(path, format!("line {line}: {msg}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(name: &str) -> PathBuf {
        crate::test_paths::test_data("nlvr2").join(name)
    }

    #[test]
    fn identifiers() {
        assert_eq!(split_identifier("dev-850-0-0"), Some(("dev", "dev-850-0")));
        assert_eq!(
            split_identifier("test1-12-3-1"),
            Some(("test1", "test1-12-3"))
        );
        assert_eq!(split_identifier("dev-850-0"), None);
        assert_eq!(split_identifier("dev--0-0"), None);
    }

    #[test]
    fn train_uses_directory_and_label_case() {
        let root = p("images");
        let ex = load_nlvr2(&p("train.json"), &root).expect("train loads");
        assert_eq!(ex.len(), 3);
        assert_eq!(ex[0].identifier, "train-10171-0-0");
        assert_eq!(ex[0].sentence, "An image shows one leather pencil case.");
        assert_eq!(
            ex[0].left,
            root.join("train/44/train-10171-0-img0.png"),
            "directory 44 as a number"
        );
        assert_eq!(ex[0].right, root.join("train/44/train-10171-0-img1.png"));
        assert!(ex[0].left.is_file() && ex[0].right.is_file());
        // Directory as a string; images missing: the primary layout is named.
        assert_eq!(ex[1].left, root.join("train/7/train-2-1-img0.png"));
        // Fallback: images directly in `<root>/{directory}/`.
        assert_eq!(ex[2].left, root.join("91/train-5-0-img0.png"));
        assert!(ex[2].left.is_file());
        let labels: Vec<Option<bool>> = ex.iter().map(|e| e.label).collect();
        assert_eq!(labels, vec![Some(false), Some(true), Some(true)]);
    }

    #[test]
    fn dev_images_under_split_and_fallback_to_root() {
        let root = p("images");
        let ex = load_nlvr2(&p("dev.json"), &root).expect("dev loads");
        assert_eq!(ex.len(), 3);
        assert_eq!(ex[0].left, root.join("dev/dev-850-0-img0.png"));
        assert_eq!(ex[0].right, root.join("dev/dev-850-0-img1.png"));
        assert!(ex[0].left.is_file());
        assert_eq!(ex[1].left, root.join("dev/dev-850-0-img0.png"));
        // Only in the root itself.
        assert_eq!(ex[2].left, root.join("dev-900-1-img0.png"));
        assert!(ex[2].left.is_file());
        // "TRUE", "false", and no label at all.
        let labels: Vec<Option<bool>> = ex.iter().map(|e| e.label).collect();
        assert_eq!(labels, vec![Some(true), Some(false), None]);
    }

    #[test]
    fn bad_files() {
        let root = p("images");
        let err = load_nlvr2(&p("malformed.json"), &root).expect_err("malformed");
        assert!(
            matches!(&err, TaskError::Json { line: Some(2), .. }),
            "{err}"
        );
        assert!(err.to_string().contains("malformed.json:2"), "{err}");
        let err = load_nlvr2(&p("bad_label.json"), &root).expect_err("bad label");
        assert!(err.to_string().contains("line 1"), "{err}");
        assert!(err.to_string().contains("yes"), "{err}");
        let err = load_nlvr2(&p("duplicate.json"), &root).expect_err("duplicate");
        assert!(err.to_string().contains("line 2"), "{err}");
        assert!(err.to_string().contains("twice"), "{err}");
        let err = load_nlvr2(&p("bad_identifier.json"), &root).expect_err("identifier");
        assert!(err.to_string().contains("dev-850-0"), "{err}");
        let err = load_nlvr2(&p("nope.json"), &root).expect_err("missing");
        assert!(matches!(err, TaskError::Io { .. }));
    }

    #[test]
    fn predictions_csv_round_trip() {
        let dir = std::env::temp_dir().join(format!("coca-nlvr2-csv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp dir");
        let path = dir.join("preds.csv");
        let preds = vec![
            ("dev-850-0-0".to_string(), true),
            ("dev-850-1-0".to_string(), false),
        ];
        write_predictions_csv(&path, &preds).expect("write");
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(text, "dev-850-0-0,True\ndev-850-1-0,False\n");
        assert_eq!(read_predictions_csv(&path).expect("read back"), preds);

        std::fs::write(
            &path,
            "identifier,prediction\ndev-1-0-0,TRUE\n\ndev-1-1-0, false\n",
        )
        .expect("write");
        assert_eq!(
            read_predictions_csv(&path).expect("header and case"),
            vec![
                ("dev-1-0-0".to_string(), true),
                ("dev-1-1-0".to_string(), false)
            ]
        );
        std::fs::write(&path, "dev-1-0-0,True\ndev-1-0-0,False\n").expect("write");
        let err = read_predictions_csv(&path).expect_err("duplicate");
        assert!(err.to_string().contains("line 2"), "{err}");
        std::fs::write(&path, "dev-1-0-0,maybe\n").expect("write");
        assert!(read_predictions_csv(&path).is_err());
        assert!(write_predictions_csv(&path, &[("a,b".to_string(), true)]).is_err());
        assert!(
            write_predictions_csv(&path, &[("x".to_string(), true), ("x".to_string(), false)])
                .is_err()
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}
