//! CIDEr-D as `pycocoevalcap/cider/cider_scorer.py` computes it (the metric COCO reports as
//! "CIDEr"): n = 1..4 TF-IDF vectors with document frequencies counted over the references of
//! the evaluated images (`idf = log(#images) - log(max(1, df))`), clipped numerator
//! `min(hyp, ref) * ref`, cosine per n, Gaussian length penalty (sigma = 6), mean over n,
//! mean over references, x10; the corpus score is the mean over images.
//!
//! Upstream quirk kept on purpose: the "length" in the penalty counts bigrams, not words.

use std::collections::HashMap;

use super::{TokenizedImage, np_mean, py_split};

const N: usize = 4;
const SIGMA: f64 = 6.0;

/// N-gram counts in first-occurrence order (Python dict order), unigrams first.
struct Counts<'a> {
    items: Vec<(&'a [&'a str], f64)>,
}

fn precook<'a>(words: &'a [&'a str]) -> Counts<'a> {
    let mut index: HashMap<&[&str], usize> = HashMap::new();
    let mut items: Vec<(&[&str], f64)> = Vec::new();
    for k in 1..=N {
        for w in words.windows(k) {
            match index.get(w) {
                Some(&i) => items[i].1 += 1.0,
                None => {
                    index.insert(w, items.len());
                    items.push((w, 1.0));
                }
            }
        }
    }
    Counts { items }
}

struct Vector<'a> {
    vec: [HashMap<&'a [&'a str], f64>; N],
    order: Vec<&'a [&'a str]>,
    norm: [f64; N],
    length: f64,
}

fn counts2vec<'a>(cnts: &Counts<'a>, df: &HashMap<&[&str], f64>, ref_len: f64) -> Vector<'a> {
    let mut vec: [HashMap<&[&str], f64>; N] = Default::default();
    let mut norm = [0.0f64; N];
    let mut length = 0.0;
    let mut order = Vec::with_capacity(cnts.items.len());
    for &(ngram, tf) in &cnts.items {
        let d = df.get(ngram).copied().unwrap_or(0.0).max(1.0).ln();
        let n = ngram.len() - 1;
        let v = tf * (ref_len - d);
        vec[n].insert(ngram, v);
        order.push(ngram);
        norm[n] += v.powi(2);
        if n == 1 {
            length += tf;
        }
    }
    Vector {
        vec,
        order,
        norm: norm.map(f64::sqrt),
        length,
    }
}

fn sim(hyp: &Vector, rf: &Vector) -> [f64; N] {
    let delta = hyp.length - rf.length;
    let mut val = [0.0f64; N];
    for &ngram in &hyp.order {
        let n = ngram.len() - 1;
        let h = hyp.vec[n][ngram];
        let r = rf.vec[n].get(ngram).copied().unwrap_or(0.0);
        val[n] += h.min(r) * r;
    }
    for (n, v) in val.iter_mut().enumerate() {
        if hyp.norm[n] != 0.0 && rf.norm[n] != 0.0 {
            *v /= hyp.norm[n] * rf.norm[n];
        }
        // np.e ** x, i.e. pow(e, x), as upstream
        *v *= std::f64::consts::E.powf(-delta.powi(2) / (2.0 * SIGMA.powi(2)));
    }
    val
}

/// Mean and per-image CIDEr-D over PTB-tokenised images (each with at least one reference).
pub fn cider_d(images: &[TokenizedImage]) -> (f64, Vec<f64>) {
    let words: Vec<(Vec<Vec<&str>>, Vec<&str>)> = images
        .iter()
        .map(|im| {
            (
                im.refs.iter().map(|r| py_split(r)).collect(),
                py_split(&im.hyp),
            )
        })
        .collect();
    let cooked: Vec<(Vec<Counts>, Counts)> = words
        .iter()
        .map(|(refs, hyp)| (refs.iter().map(|r| precook(r)).collect(), precook(hyp)))
        .collect();
    let mut df: HashMap<&[&str], f64> = HashMap::new();
    for (refs, _) in &cooked {
        let mut seen = std::collections::HashSet::new();
        for r in refs {
            for &(ng, _) in &r.items {
                if seen.insert(ng) {
                    *df.entry(ng).or_insert(0.0) += 1.0;
                }
            }
        }
    }
    let ref_len = (cooked.len() as f64).ln();
    let scores: Vec<f64> = cooked
        .iter()
        .map(|(refs, test)| {
            let hyp = counts2vec(test, &df, ref_len);
            let mut score = [0.0f64; N];
            for r in refs {
                let s = sim(&hyp, &counts2vec(r, &df, ref_len));
                for n in 0..N {
                    score[n] += s[n];
                }
            }
            let mut avg = np_mean(&score);
            avg /= refs.len() as f64;
            avg * 10.0
        })
        .collect();
    (np_mean(&scores), scores)
}
