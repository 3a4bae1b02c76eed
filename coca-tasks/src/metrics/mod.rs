//! Evaluation metrics that reproduce the official scorers.
//!
//! - [`vqa`]: VQAv2 accuracy exactly as the official `vqaEval.py` (answer normalisation,
//!   10 leave-one-out subsets, rounding to 2 decimals).
//! - [`accuracy`]: classification accuracy (SNLI-VE) and NLVR2 accuracy + consistency.
//! - [`caption`]: COCO caption metrics as `pycocoevalcap` computes them (PTB tokenisation,
//!   BLEU-1..4, ROUGE-L, CIDEr-D and, when Java and the jar are available, METEOR 1.5).

pub mod accuracy;
pub mod caption;
pub mod vqa;

pub use accuracy::{
    ClassAccuracy, ClassificationScores, Nlvr2Example, Nlvr2Scores, classification_accuracy,
    nlvr2_scores, nlvr2_sentence_key,
};
pub use caption::{CaptionScores, evaluate_caption_files, evaluate_captions};
pub use vqa::{VqaScores, evaluate_vqa, evaluate_vqa_files, normalize_answer};

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use crate::error::{Result, TaskError};

/// Reads and parses a JSON file; errors name the file.
pub(crate) fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = std::fs::read(path).map_err(|e| TaskError::io(path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| TaskError::Json {
        path: path.to_path_buf(),
        line: None,
        msg: e.to_string(),
    })
}

/// A `TaskError::Data` about `path`.
pub(crate) fn data_err(path: impl Into<PathBuf>, msg: impl Into<String>) -> TaskError {
    TaskError::Data {
        path: path.into(),
        msg: msg.into(),
    }
}

/// Python's `round(x, ndigits)`: the exact binary value rounded to `ndigits` decimals,
/// ties to even (Rust's fixed-precision formatting is exact and rounds ties to even).
pub(crate) fn py_round(x: f64, ndigits: usize) -> f64 {
    if !x.is_finite() {
        return x;
    }
    format!("{x:.ndigits$}").parse().unwrap_or(x)
}

/// Python's built-in `sum` over floats (CPython >= 3.12 uses Neumaier compensated summation).
pub(crate) fn py_sum(values: impl IntoIterator<Item = f64>) -> f64 {
    let mut sum = 0.0f64;
    let mut c = 0.0f64;
    for x in values {
        let t = sum + x;
        if sum.abs() >= x.abs() {
            c += (sum - t) + x;
        } else {
            c += (x - t) + sum;
        }
        sum = t;
    }
    if c != 0.0 && c.is_finite() {
        sum + c
    } else {
        sum
    }
}

/// NumPy's `np.mean` of a 1-D float64 array (pairwise summation, blocks of 8 below 128).
pub(crate) fn np_mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    np_pairwise_sum(values) / values.len() as f64
}

fn np_pairwise_sum(a: &[f64]) -> f64 {
    let n = a.len();
    if n < 8 {
        let mut res = 0.0;
        for &x in a {
            res += x;
        }
        res
    } else if n <= 128 {
        let mut r = [0.0f64; 8];
        r.copy_from_slice(&a[..8]);
        let mut i = 8;
        while i + 8 <= n {
            for k in 0..8 {
                r[k] += a[i + k];
            }
            i += 8;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        while i < n {
            res += a[i];
            i += 1;
        }
        res
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        np_pairwise_sum(&a[..n2]) + np_pairwise_sum(&a[n2..])
    }
}

/// Unicode decimal digit (general category Nd), what Python's `\d` and Java's
/// `Character.isDigit` accept.
pub(crate) fn is_decimal_digit(c: char) -> bool {
    if c.is_ascii_digit() {
        return true;
    }
    let u = c as u32;
    if u < 0x660 {
        return false;
    }
    // First code point ("zero") of each block of ten Nd characters.
    const ZEROS: &[u32] = &[
        0x0660, 0x06F0, 0x07C0, 0x0966, 0x09E6, 0x0A66, 0x0AE6, 0x0B66, 0x0BE6, 0x0C66, 0x0CE6,
        0x0D66, 0x0DE6, 0x0E50, 0x0ED0, 0x0F20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0,
        0x1A80, 0x1A90, 0x1B50, 0x1BB0, 0x1C40, 0x1C50, 0xA620, 0xA8D0, 0xA900, 0xA9D0, 0xA9F0,
        0xAA50, 0xABF0, 0xFF10, 0x104A0, 0x10D30, 0x11066, 0x110F0, 0x11136, 0x111D0, 0x112F0,
        0x11450, 0x114D0, 0x11650, 0x116C0, 0x11730, 0x118E0, 0x11950, 0x11C50, 0x11D50, 0x11DA0,
        0x16A60, 0x16AC0, 0x16B50, 0x1E140, 0x1E2F0, 0x1E950, 0x1FBF0,
    ];
    if (0x1D7CE..=0x1D7FF).contains(&u) {
        return true; // mathematical digits
    }
    ZEROS.iter().any(|&z| (z..z + 10).contains(&u))
}

/// Python's `str.isspace` for one character.
pub(crate) fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn py_round_matches_python() {
        // Values checked against CPython's round().
        assert_eq!(py_round(0.125, 2), 0.12);
        assert_eq!(py_round(0.375, 2), 0.38);
        assert_eq!(py_round(2.675, 2), 2.67);
        assert_eq!(py_round(1.005, 2), 1.0);
        assert_eq!(py_round(57.86666666666667, 2), 57.87);
        assert_eq!(py_round(33.333333333333336, 2), 33.33);
        assert_eq!(py_round(66.66666666666667, 2), 66.67);
    }

    #[test]
    fn decimal_digits() {
        assert!(is_decimal_digit('7'));
        assert!(is_decimal_digit('\u{0663}'));
        assert!(is_decimal_digit('\u{FF15}'));
        assert!(!is_decimal_digit('½'));
        assert!(!is_decimal_digit('²'));
        assert!(!is_decimal_digit('a'));
    }
}
