//! ROUGE-L as `pycocoevalcap/rouge/rouge.py` computes it: per image, the LCS-based precision
//! and recall against each reference, their maxima over references combined into an F-score
//! with beta = 1.2; the corpus score is the mean over images.

use super::{TokenizedImage, np_mean};

const BETA: f64 = 1.2;

/// Length of the longest common subsequence of two token lists.
fn lcs(a: &[&str], b: &[&str]) -> usize {
    let (long, short) = if a.len() < b.len() { (b, a) } else { (a, b) };
    let mut prev = vec![0usize; short.len() + 1];
    let mut cur = vec![0usize; short.len() + 1];
    for x in long {
        for (j, y) in short.iter().enumerate() {
            cur[j + 1] = if x == y {
                prev[j] + 1
            } else {
                prev[j + 1].max(cur[j])
            };
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[short.len()]
}

/// ROUGE-L of one candidate against its references (tokens split on single spaces, as
/// upstream's `split(" ")`).
pub fn rouge_l_image(candidate: &str, refs: &[String]) -> f64 {
    let cand: Vec<&str> = candidate.split(' ').collect();
    let mut prec_max = f64::NEG_INFINITY;
    let mut rec_max = f64::NEG_INFINITY;
    for r in refs {
        let toks: Vec<&str> = r.split(' ').collect();
        let l = lcs(&toks, &cand) as f64;
        prec_max = prec_max.max(l / cand.len() as f64);
        rec_max = rec_max.max(l / toks.len() as f64);
    }
    if prec_max != 0.0 && rec_max != 0.0 && prec_max.is_finite() && rec_max.is_finite() {
        let b2 = BETA.powi(2);
        ((1.0 + b2) * prec_max * rec_max) / (rec_max + b2 * prec_max)
    } else {
        0.0
    }
}

/// Mean and per-image ROUGE-L over PTB-tokenised images.
pub fn rouge_l(images: &[TokenizedImage]) -> (f64, Vec<f64>) {
    let per: Vec<f64> = images
        .iter()
        .map(|im| rouge_l_image(&im.hyp, &im.refs))
        .collect();
    (np_mean(&per), per)
}
