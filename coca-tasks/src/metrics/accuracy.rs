//! Classification accuracy (SNLI-VE) and NLVR2 accuracy + consistency.
//!
//! NLVR2 consistency follows the official script (`lil-lab/nlvr`, `nlvr2/eval/metrics.py`): an
//! identifier `split-setid-pairid-sentenceid` is split on `-`, its third field (the image-pair
//! id) is blanked and the fields re-joined, so every image pair that shares the same sentence
//! (same split, set id and sentence id) falls in one group. Consistency is the share of groups
//! whose examples are all predicted correctly. Scores are fractions in [0, 1], as the official
//! script prints them.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

use super::data_err;
use crate::error::Result;

/// Accuracy of one gold class (its recall).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassAccuracy {
    /// `correct / total`.
    pub accuracy: f64,
    /// Examples of this gold class predicted correctly.
    pub correct: usize,
    /// Examples of this gold class.
    pub total: usize,
}

/// Overall and per-class accuracy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassificationScores {
    /// `correct / total` over all examples.
    pub accuracy: f64,
    /// Examples predicted correctly.
    pub correct: usize,
    /// Examples.
    pub total: usize,
    /// Accuracy restricted to the examples of each gold label.
    pub per_class: BTreeMap<String, ClassAccuracy>,
}

/// Accuracy of `predictions` against gold `labels` (same order), overall and per gold class.
///
/// Labels are compared exactly (e.g. `entailment` / `neutral` / `contradiction` for SNLI-VE).
/// Errors when the lengths differ or there are no examples.
pub fn classification_accuracy<P: AsRef<str>, G: AsRef<str>>(
    predictions: &[P],
    labels: &[G],
) -> Result<ClassificationScores> {
    if predictions.len() != labels.len() {
        return Err(data_err(
            "<predictions>",
            format!(
                "{} predictions for {} labelled examples",
                predictions.len(),
                labels.len()
            ),
        ));
    }
    if labels.is_empty() {
        return Err(data_err("<predictions>", "no examples to score"));
    }
    let mut per: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut correct = 0;
    for (p, g) in predictions.iter().zip(labels) {
        let hit = p.as_ref() == g.as_ref();
        correct += usize::from(hit);
        let e = per.entry(g.as_ref().to_string()).or_default();
        e.0 += usize::from(hit);
        e.1 += 1;
    }
    Ok(ClassificationScores {
        accuracy: correct as f64 / labels.len() as f64,
        correct,
        total: labels.len(),
        per_class: per
            .into_iter()
            .map(|(k, (c, t))| {
                (
                    k,
                    ClassAccuracy {
                        accuracy: c as f64 / t as f64,
                        correct: c,
                        total: t,
                    },
                )
            })
            .collect(),
    })
}

/// One scored NLVR2 example.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Nlvr2Example {
    /// `split-setid-pairid-sentenceid`, e.g. `dev-850-0-0`.
    pub identifier: String,
    /// The gold label (`"True"` in the data files).
    pub label: bool,
    /// The model's prediction.
    pub prediction: bool,
}

/// NLVR2 accuracy and consistency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Nlvr2Scores {
    /// Share of examples predicted correctly.
    pub accuracy: f64,
    /// Share of unique sentences whose examples are all predicted correctly.
    pub consistency: f64,
    /// Examples.
    pub total: usize,
    /// Examples predicted correctly.
    pub correct: usize,
    /// Unique sentences (groups).
    pub sentences: usize,
    /// Sentences with every example correct.
    pub consistent_sentences: usize,
}

/// The consistency group of an NLVR2 identifier, as the official script builds it: the third
/// `-`-separated field (image-pair id) blanked, e.g. `dev-850-1-0` -> `dev-850--0`.
pub fn nlvr2_sentence_key(identifier: &str) -> Result<String> {
    let mut fields: Vec<&str> = identifier.split('-').collect();
    if fields.len() < 4 {
        return Err(data_err(
            "<nlvr2>",
            format!("identifier {identifier:?} is not split-setid-pairid-sentenceid"),
        ));
    }
    fields[2] = "";
    Ok(fields.join("-"))
}

/// Accuracy and consistency over scored examples (each identifier once).
pub fn nlvr2_scores(examples: &[Nlvr2Example]) -> Result<Nlvr2Scores> {
    if examples.is_empty() {
        return Err(data_err("<nlvr2>", "no examples to score"));
    }
    let mut seen = HashSet::with_capacity(examples.len());
    let mut groups: BTreeMap<String, bool> = BTreeMap::new();
    let mut correct = 0;
    for ex in examples {
        if !seen.insert(ex.identifier.as_str()) {
            return Err(data_err(
                "<nlvr2>",
                format!("identifier {:?} scored twice", ex.identifier),
            ));
        }
        let hit = ex.label == ex.prediction;
        correct += usize::from(hit);
        let all_ok = groups
            .entry(nlvr2_sentence_key(&ex.identifier)?)
            .or_insert(true);
        *all_ok &= hit;
    }
    let consistent = groups.values().filter(|&&ok| ok).count();
    Ok(Nlvr2Scores {
        accuracy: correct as f64 / examples.len() as f64,
        consistency: consistent as f64 / groups.len() as f64,
        total: examples.len(),
        correct,
        sentences: groups.len(),
        consistent_sentences: consistent,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(id: &str, label: bool, prediction: bool) -> Nlvr2Example {
        Nlvr2Example {
            identifier: id.into(),
            label,
            prediction,
        }
    }

    #[test]
    fn sentence_key_blanks_the_pair_id() {
        assert_eq!(nlvr2_sentence_key("dev-850-1-0").unwrap(), "dev-850--0");
        assert_eq!(nlvr2_sentence_key("test1-12-3-2").unwrap(), "test1-12--2");
        assert!(nlvr2_sentence_key("dev-850-1").is_err());
    }

    #[test]
    fn nlvr2_consistency_groups_image_pairs_of_a_sentence() {
        let scores = nlvr2_scores(&[
            // sentence dev-1--0: four image pairs, one wrong -> inconsistent
            ex("dev-1-0-0", true, true),
            ex("dev-1-1-0", false, false),
            ex("dev-1-2-0", true, false),
            ex("dev-1-3-0", false, false),
            // sentence dev-1--1 (same set, other sentence): all right -> consistent
            ex("dev-1-0-1", true, true),
            ex("dev-1-1-1", false, false),
            // sentence dev-2--0: all right
            ex("dev-2-0-0", false, false),
        ])
        .unwrap();
        assert_eq!(scores.total, 7);
        assert_eq!(scores.correct, 6);
        assert!((scores.accuracy - 6.0 / 7.0).abs() < 1e-12);
        assert_eq!(scores.sentences, 3);
        assert_eq!(scores.consistent_sentences, 2);
        assert!((scores.consistency - 2.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn nlvr2_rejects_duplicates() {
        let err = nlvr2_scores(&[ex("dev-1-0-0", true, true), ex("dev-1-0-0", true, true)]);
        assert!(err.is_err());
    }

    #[test]
    fn classification_overall_and_per_class() {
        let pred = [
            "entailment",
            "neutral",
            "neutral",
            "contradiction",
            "entailment",
        ];
        let gold = [
            "entailment",
            "neutral",
            "contradiction",
            "contradiction",
            "neutral",
        ];
        let s = classification_accuracy(&pred, &gold).unwrap();
        assert_eq!((s.correct, s.total), (3, 5));
        assert!((s.accuracy - 0.6).abs() < 1e-12);
        assert_eq!(
            s.per_class["entailment"],
            ClassAccuracy {
                accuracy: 1.0,
                correct: 1,
                total: 1
            }
        );
        assert_eq!(
            s.per_class["neutral"],
            ClassAccuracy {
                accuracy: 0.5,
                correct: 1,
                total: 2
            }
        );
        assert_eq!(
            s.per_class["contradiction"],
            ClassAccuracy {
                accuracy: 0.5,
                correct: 1,
                total: 2
            }
        );
        assert!(classification_accuracy(&pred[..2], &gold).is_err());
    }
}
