//! Beam search, organised like transformers' `BeamSearchScorer` (which open_clip's
//! `CoCa.generate(generation_type="beam_search")` drives).
//!
//! The beams of each image are split into `num_groups` groups of `group_size` beams. Every
//! (image, group) searches on its own: at the start its first beam has score 0 and the others
//! -1e9; each step the `2 * group_size` best continuations of its beams (beam score plus the
//! processed next-token value) are walked in rank order; an end token of rank `< group_size`
//! becomes a finished hypothesis, other end tokens are skipped, and the first `group_size`
//! other continuations are the next beams. A hypothesis is scored
//! `sum / length^length_penalty`; each (image, group) keeps its best `group_size` hypotheses
//! and is done once it holds that many and either `early_stopping` is set or its worst one
//! scores at least the best current candidate divided by the current length^length_penalty.
//! When the token budget runs out the open beams become hypotheses too; per image the best
//! hypothesis over all its groups wins (the last of equal scores, as transformers picks).
//! No diversity penalty is applied, so the groups of an image are identical copies.
//!
//! Finished (image, group)s leave the batch; the others keep decoding.

use burn::tensor::Tensor;

use super::logits::{LogitProcessor, logsumexp};
use super::{Caption, GenerationConfig, Stepper, stepper};
use crate::error::{CocaError, Result};
use crate::model::Coca;
use crate::tokenizer::SOT;

/// The start score of every beam of a group but the first (transformers' value): such beams
/// never reach the top `2 * group_size` candidates while the vocabulary is large enough.
const DEAD_BEAM: f32 = -1e9;

/// What a beam's score adds up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BeamScores {
    /// Log-probabilities: `log_softmax` of the processed logits.
    LogSoftmax,
    /// The processed logits themselves (open_clip: no `log_softmax`).
    RawLogits,
}

/// How a beam search runs.
#[derive(Debug, Clone)]
pub(crate) struct BeamSettings {
    pub num_beams: usize,
    pub num_groups: usize,
    pub length_penalty: f32,
    /// Done as soon as a group holds `group_size` hypotheses.
    pub early_stopping: bool,
    pub scores: BeamScores,
    /// Hypothesis lengths count the start token and the prefix (open_clip/transformers) rather
    /// than the generated tokens only.
    pub count_start: bool,
}

#[derive(Debug, Clone)]
struct Hypothesis {
    /// Generated tokens (the end token included when it ended the hypothesis).
    tokens: Vec<u32>,
    logprob: f32,
    /// `sum / length^length_penalty`, in f64 as transformers computes it (Python floats).
    score: f64,
}

/// The best `capacity` hypotheses, in insertion order (transformers' `BeamHypotheses`).
#[derive(Debug)]
struct Hypotheses {
    items: Vec<Hypothesis>,
    capacity: usize,
}

impl Hypotheses {
    fn is_full(&self) -> bool {
        self.items.len() >= self.capacity
    }

    /// The lowest score and its first index.
    fn worst(&self) -> Option<(usize, f64)> {
        self.items
            .iter()
            .enumerate()
            .fold(None, |acc: Option<(usize, f64)>, (i, h)| match acc {
                Some((_, s)) if s <= h.score => acc,
                _ => Some((i, h.score)),
            })
    }

    fn add(&mut self, hyp: Hypothesis) {
        let better = self.worst().is_none_or(|(_, w)| hyp.score > w);
        if !self.is_full() || better {
            self.items.push(hyp);
            if self.items.len() > self.capacity
                && let Some((i, _)) = self.worst()
            {
                self.items.remove(i);
            }
        }
    }
}

#[derive(Debug, Clone)]
struct Beam {
    tokens: Vec<u32>,
    /// Running score (f32, as transformers keeps `beam_scores`).
    sum: f32,
    logprob: f32,
}

/// One (image, group).
#[derive(Debug)]
struct Group {
    image: usize,
    beams: Vec<Beam>,
    hyps: Hypotheses,
    done: bool,
}

/// A continuation: (score, beam, token, logprob).
type Candidate = (f32, usize, u32, f32);

fn length_norm(len: usize, length_penalty: f32) -> f64 {
    (len.max(1) as f64).powf(f64::from(length_penalty))
}

/// Beam search over `image_embs [B, M, W]`; `eos` is the end token.
pub(crate) fn beam_search(
    model: &Coca,
    image_embs: Tensor<3>,
    prefix: &[u32],
    cfg: &GenerationConfig,
    settings: &BeamSettings,
    eos: u32,
) -> Result<Vec<Caption>> {
    let b = image_embs.dims()[0];
    let positions = 1 + prefix.len() + cfg.max_new_tokens;
    let mut step = stepper(model, image_embs, cfg.use_cache, positions);
    search(step.as_mut(), b, prefix, cfg, settings, eos)
}

/// Beam search for `b` images whose next-token logits `step` computes.
fn search(
    step: &mut dyn Stepper,
    b: usize,
    prefix: &[u32],
    cfg: &GenerationConfig,
    settings: &BeamSettings,
    eos: u32,
) -> Result<Vec<Caption>> {
    let groups_per_image = settings.num_groups.max(1);
    let gs = (settings.num_beams / groups_per_image).max(1);
    let start: Vec<u32> = std::iter::once(SOT).chain(prefix.iter().copied()).collect();
    let offset = if settings.count_start { start.len() } else { 0 };
    let norm = |len: usize| length_norm(len, settings.length_penalty);

    let mut groups: Vec<Group> = (0..b * groups_per_image)
        .map(|u| Group {
            image: u / groups_per_image,
            beams: (0..gs)
                .map(|j| {
                    let s = if j == 0 { 0.0 } else { DEAD_BEAM };
                    Beam {
                        tokens: Vec::new(),
                        sum: s,
                        logprob: s,
                    }
                })
                .collect(),
            hyps: Hypotheses {
                items: Vec::new(),
                capacity: gs,
            },
            done: false,
        })
        .collect();
    // Rows are group-major: row = position of the group in `active` * gs + beam.
    let rows: Vec<usize> = groups
        .iter()
        .flat_map(|g| std::iter::repeat_n(g.image, gs))
        .collect();
    step.select(&rows);
    let mut active: Vec<usize> = (0..groups.len()).collect();
    let mut feed: Vec<Vec<u32>> = vec![start.clone(); rows.len()];
    let processor = LogitProcessor::new(cfg);
    for t in 0..cfg.max_new_tokens {
        let mut logits = step.step(&feed);
        if let Some(v) = logits.first().map(Vec::len)
            && eos as usize >= v
            && !cfg.ignore_eos
        {
            return Err(CocaError::Invalid(format!(
                "end token {eos} is outside the vocabulary ({v} tokens)"
            )));
        }
        let mut next_rows = Vec::new();
        let mut next_feed = Vec::new();
        let mut still_active = Vec::new();
        for (pos, &u) in active.iter().enumerate() {
            let group = &mut groups[u];
            let mut candidates: Vec<Candidate> = Vec::with_capacity(2 * gs * gs);
            for (j, beam) in group.beams.iter().enumerate() {
                let mut l = std::mem::take(&mut logits[pos * gs + j]);
                let seq: Vec<u32> = start.iter().chain(&beam.tokens).copied().collect();
                processor.apply(&mut l, &seq, t);
                let lse = logsumexp(&l);
                let value = |i: usize| match settings.scores {
                    BeamScores::RawLogits => l[i],
                    BeamScores::LogSoftmax => l[i] - lse,
                };
                let mut idx: Vec<usize> = (0..l.len()).filter(|&i| l[i].is_finite()).collect();
                let take = (2 * gs).min(idx.len());
                if take == 0 {
                    continue;
                }
                idx.select_nth_unstable_by(take - 1, |&a, &c| value(c).total_cmp(&value(a)));
                for &i in &idx[..take] {
                    let score = beam.sum + value(i);
                    if score.is_finite() {
                        candidates.push((score, j, i as u32, beam.logprob + (l[i] - lse)));
                    }
                }
            }
            candidates.sort_by(|a, c| c.0.total_cmp(&a.0).then((a.1, a.2).cmp(&(c.1, c.2))));
            candidates.truncate(2 * gs);
            // The length the step's candidates reach (transformers' `cur_len`).
            let len = offset + t + 1;
            let mut chosen: Vec<Candidate> = Vec::with_capacity(gs);
            for (rank, &c) in candidates.iter().enumerate() {
                let (score, j, token, logprob) = c;
                if token == eos && !cfg.ignore_eos {
                    if rank < gs {
                        let mut tokens = group.beams[j].tokens.clone();
                        tokens.push(eos);
                        group.hyps.add(Hypothesis {
                            tokens,
                            logprob,
                            score: f64::from(score) / norm(len),
                        });
                    }
                } else {
                    chosen.push(c);
                }
                if chosen.len() == gs {
                    break;
                }
            }
            let best = candidates.first().map_or(f32::NEG_INFINITY, |c| c.0);
            let done = chosen.is_empty()
                || (group.hyps.is_full()
                    && (settings.early_stopping
                        || group
                            .hyps
                            .worst()
                            .is_some_and(|(_, w)| w >= f64::from(best) / norm(len))));
            if done {
                group.done = true;
                continue;
            }
            // Fewer continuations than beams (tiny vocabularies): pad with dead beams.
            while chosen.len() < gs {
                chosen.push((f32::NEG_INFINITY, 0, eos, f32::NEG_INFINITY));
            }
            let old = std::mem::take(&mut group.beams);
            for (score, j, token, logprob) in chosen {
                let mut tokens = old[j].tokens.clone();
                tokens.push(token);
                group.beams.push(Beam {
                    tokens,
                    sum: score,
                    logprob,
                });
                next_rows.push(pos * gs + j);
                next_feed.push(vec![token]);
            }
            still_active.push(u);
        }
        active = still_active;
        if active.is_empty() {
            break;
        }
        step.select(&next_rows);
        feed = next_feed;
    }
    // Groups still searching when the token budget ran out: open beams become hypotheses.
    for group in groups.iter_mut().filter(|g| !g.done) {
        for beam in std::mem::take(&mut group.beams) {
            if beam.sum.is_finite() {
                let len = offset + beam.tokens.len();
                group.hyps.add(Hypothesis {
                    score: f64::from(beam.sum) / norm(len),
                    tokens: beam.tokens,
                    logprob: beam.logprob,
                });
            }
        }
    }
    let mut best: Vec<Option<Hypothesis>> = vec![None; b];
    for group in groups {
        let slot = &mut best[group.image];
        for h in group.hyps.items {
            if slot.as_ref().is_none_or(|s| h.score >= s.score) {
                *slot = Some(h);
            }
        }
    }
    Ok(best
        .into_iter()
        .map(|h| {
            h.map_or(
                Caption {
                    tokens: Vec::new(),
                    logprob: f32::NEG_INFINITY,
                    score: f32::NEG_INFINITY,
                },
                |h| Caption {
                    tokens: h.tokens,
                    logprob: h.logprob,
                    score: h.score as f32,
                },
            )
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generation::DecodeStrategy;

    /// Logits that depend on the tokens generated so far (the start token left out).
    struct Scripted {
        seqs: Vec<Vec<u32>>,
        logits: fn(&[u32]) -> Vec<f32>,
    }

    impl Stepper for Scripted {
        fn step(&mut self, new: &[Vec<u32>]) -> Vec<Vec<f32>> {
            for (s, n) in self.seqs.iter_mut().zip(new) {
                s.extend_from_slice(n);
            }
            self.seqs.iter().map(|s| (self.logits)(&s[1..])).collect()
        }

        fn select(&mut self, rows: &[usize]) {
            self.seqs = rows.iter().map(|&r| self.seqs[r].clone()).collect();
        }
    }

    const A: u32 = 0;
    const B: u32 = 1;
    const X: u32 = 2;
    const Y: u32 = 3;
    const Z: u32 = 4;
    const W: u32 = 5;
    const Q: u32 = 6;
    const END: u32 = 7;

    /// Eight tokens; every one not named scores -10 - 0.1 * id (no ties).
    fn script(generated: &[u32]) -> Vec<f32> {
        let mut l: Vec<f32> = (0..8).map(|k| -10.0 - 0.1 * k as f32).collect();
        let named: &[(u32, f32)] = match generated {
            [] => &[(A, 1.0), (B, 0.9)],
            [A] => &[(END, 1.0), (X, 0.8)],
            [B] => &[(END, 0.85), (Y, 0.7)],
            [A, X] => &[(Z, 0.2)],
            [B, Y] => &[(W, 0.3)],
            [A, X, Z] => &[(Q, 5.0)],
            _ => &[],
        };
        for &(t, v) in named {
            l[t as usize] = v;
        }
        l
    }

    /// transformers' rule that an end token ranked below the group size does not become a
    /// hypothesis, worked by hand on `script` with 2 beams (raw logits, lengths with the start
    /// token, 4 new tokens at most):
    /// - step 1 ranks (a, end) 2.0, (a, x) 1.8, (b, end) 1.75, (b, y) 1.6: (a, end) is a
    ///   hypothesis scoring 2.0 / 3; (b, end), rank 2, is skipped;
    /// - step 2: best candidate (a, x, z) 2.0 at length 4; one hypothesis, so not done (had
    ///   (b, end) been kept, the worst of two, 1.75 / 3 >= 2.0 / 4, would stop the search here);
    /// - step 3: (a, x, z, q) 7.0 is still open at the end and wins with 7.0 / 5 over 2.0 / 3.
    #[test]
    fn end_tokens_ranked_below_the_group_size_are_skipped() {
        let cfg = GenerationConfig {
            strategy: DecodeStrategy::OpenClipBeam {
                num_beams: 2,
                num_beam_groups: 1,
                eos_token: END,
            },
            max_new_tokens: 4,
            ..Default::default()
        };
        let settings = BeamSettings {
            num_beams: 2,
            num_groups: 1,
            length_penalty: 1.0,
            early_stopping: false,
            scores: BeamScores::RawLogits,
            count_start: true,
        };
        let mut step = Scripted {
            seqs: vec![Vec::new()],
            logits: script,
        };
        let out = search(&mut step, 1, &[], &cfg, &settings, END).unwrap();
        assert_eq!(out[0].tokens, vec![A, X, Z, Q]);
        assert!((out[0].score - 7.0 / 5.0).abs() < 1e-6, "{}", out[0].score);
    }
}
