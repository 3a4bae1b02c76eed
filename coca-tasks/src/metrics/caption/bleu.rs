//! Corpus BLEU-1..4 as `pycocoevalcap/bleu/bleu_scorer.py` computes it with `option='closest'`.
//!
//! Per image: clipped n-gram matches against the maximum count over the references, the
//! reference length closest to the candidate's (ties to the shorter). Corpus score: summed
//! matches / summed candidate n-grams, brevity penalty on summed lengths, with the upstream
//! smoothing constants `tiny = 1e-15` and `small = 1e-9`.

use std::collections::HashMap;

use super::{TokenizedImage, py_split};

const TINY: f64 = 1e-15;
const SMALL: f64 = 1e-9;

/// Corpus and per-image BLEU-1..4.
#[derive(Debug, Clone, PartialEq)]
pub struct BleuScores {
    /// Corpus-level BLEU-1..4 (what COCO reports).
    pub corpus: [f64; 4],
    /// Per-image BLEU-1..4 (upstream's `bleu_list`), in input order.
    pub per_image: Vec<[f64; 4]>,
}

struct Cooked {
    testlen: usize,
    reflen: usize,
    guess: [usize; 4],
    correct: [usize; 4],
}

fn ngram_counts<'a>(words: &'a [&'a str]) -> HashMap<&'a [&'a str], usize> {
    let mut counts = HashMap::new();
    for k in 1..=4 {
        for w in words.windows(k) {
            *counts.entry(w).or_insert(0) += 1;
        }
    }
    counts
}

fn cook(image: &TokenizedImage) -> Cooked {
    let refs: Vec<Vec<&str>> = image.refs.iter().map(|r| py_split(r)).collect();
    let mut maxcounts: HashMap<&[&str], usize> = HashMap::new();
    for r in &refs {
        for (ng, c) in ngram_counts(r) {
            let e = maxcounts.entry(ng).or_insert(0);
            *e = (*e).max(c);
        }
    }
    let test = py_split(&image.hyp);
    let testlen = test.len();
    // min over (|l - testlen|, l): closest length, ties to the shorter reference.
    let reflen = refs
        .iter()
        .map(|r| r.len())
        .min_by_key(|&l| (l.abs_diff(testlen), l))
        .unwrap_or(0);
    let mut correct = [0usize; 4];
    for (ng, c) in ngram_counts(&test) {
        correct[ng.len() - 1] += c.min(maxcounts.get(ng).copied().unwrap_or(0));
    }
    let guess = [1, 2, 3, 4].map(|k| (testlen + 1).saturating_sub(k));
    Cooked {
        testlen,
        reflen,
        guess,
        correct,
    }
}

fn score(testlen: usize, reflen: usize, guess: &[usize; 4], correct: &[usize; 4]) -> [f64; 4] {
    let mut out = [0.0; 4];
    let mut bleu = 1.0f64;
    for k in 0..4 {
        bleu *= (correct[k] as f64 + TINY) / (guess[k] as f64 + SMALL);
        out[k] = bleu.powf(1.0 / (k as f64 + 1.0));
    }
    let ratio = (testlen as f64 + TINY) / (reflen as f64 + SMALL);
    if ratio < 1.0 {
        for v in &mut out {
            *v *= (1.0 - 1.0 / ratio).exp();
        }
    }
    out
}

/// BLEU-1..4 over PTB-tokenised images (each with at least one reference).
pub fn bleu(images: &[TokenizedImage]) -> BleuScores {
    let mut per_image = Vec::with_capacity(images.len());
    let (mut testlen, mut reflen) = (0usize, 0usize);
    let (mut guess, mut correct) = ([0usize; 4], [0usize; 4]);
    for image in images {
        let c = cook(image);
        testlen += c.testlen;
        reflen += c.reflen;
        for k in 0..4 {
            guess[k] += c.guess[k];
            correct[k] += c.correct[k];
        }
        per_image.push(score(c.testlen, c.reflen, &c.guess, &c.correct));
    }
    BleuScores {
        corpus: score(testlen, reflen, &guess, &correct),
        per_image,
    }
}
