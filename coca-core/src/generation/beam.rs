//! Beam search. Each image keeps `num_beams` live hypotheses; finished ones are scored
//! `sum logprob / generated_len^length_penalty`. Images finish independently and leave the batch.

use burn::tensor::Tensor;

use super::logits::{LogitProcessor, log_softmax_row};
use super::{Caption, GenerationConfig, stepper};
use crate::error::Result;
use crate::model::Coca;
use crate::tokenizer::{EOT, SOT};

#[derive(Debug, Clone)]
struct Hypothesis {
    tokens: Vec<u32>,
    logprob: f32,
    score: f32,
}

fn normalised(logprob: f32, len: usize, length_penalty: f32) -> f32 {
    logprob / (len.max(1) as f32).powf(length_penalty)
}

/// Per-image state.
struct ImageBeams {
    /// Live beams: generated tokens and their summed log-probability.
    beams: Vec<(Vec<u32>, f32)>,
    finished: Vec<Hypothesis>,
    done: bool,
}

impl ImageBeams {
    fn add_finished(&mut self, hyp: Hypothesis, num_beams: usize) {
        self.finished.push(hyp);
        self.finished.sort_by(|a, b| b.score.total_cmp(&a.score));
        self.finished.truncate(num_beams);
    }

    fn worst_finished(&self) -> f32 {
        self.finished.last().map_or(f32::NEG_INFINITY, |h| h.score)
    }
}

/// Beam search over `image_embs [B, M, W]`.
pub(crate) fn beam_search(
    model: &Coca,
    image_embs: Tensor<3>,
    prefix: &[u32],
    cfg: &GenerationConfig,
    num_beams: usize,
    length_penalty: f32,
    early_stopping: bool,
) -> Result<Vec<Caption>> {
    let b = image_embs.dims()[0];
    let k = num_beams;
    let start: Vec<u32> = std::iter::once(SOT).chain(prefix.iter().copied()).collect();
    // Rows are laid out image-major: row = position of image in `active` * k + beam.
    let rows: Vec<usize> = (0..b).flat_map(|i| std::iter::repeat_n(i, k)).collect();
    let mut step = stepper(model, image_embs, cfg.use_cache);
    step.select(&rows);
    let mut images: Vec<ImageBeams> = (0..b)
        .map(|_| ImageBeams {
            // Only the first beam is live at the start, so the k beams do not duplicate each other.
            beams: (0..k)
                .map(|j| (Vec::new(), if j == 0 { 0.0 } else { f32::NEG_INFINITY }))
                .collect(),
            finished: Vec::new(),
            done: false,
        })
        .collect();
    let mut active: Vec<usize> = (0..b).collect();
    let mut feed: Vec<Vec<u32>> = vec![start.clone(); b * k];
    let processor = LogitProcessor::new(cfg);
    for t in 0..cfg.max_new_tokens {
        let logits = step.step(&feed);
        let mut next_rows = Vec::new();
        let mut next_feed = Vec::new();
        let mut still_active = Vec::new();
        for (pos, &img) in active.iter().enumerate() {
            let state = &mut images[img];
            // Candidates (score, beam, token): the best 2k continuations of each beam suffice.
            let mut candidates: Vec<(f32, usize, u32)> = Vec::with_capacity(2 * k * k);
            for (j, (tokens, beam_lp)) in state.beams.iter().enumerate() {
                if !beam_lp.is_finite() {
                    continue;
                }
                let mut l = logits[pos * k + j].clone();
                let seq: Vec<u32> = start.iter().chain(tokens.iter()).copied().collect();
                processor.apply(&mut l, &seq, t);
                let logp = log_softmax_row(&l);
                let mut idx: Vec<usize> =
                    (0..logp.len()).filter(|&i| logp[i].is_finite()).collect();
                let take = (2 * k).min(idx.len());
                if take == 0 {
                    continue;
                }
                idx.select_nth_unstable_by(take - 1, |&a, &c| logp[c].total_cmp(&logp[a]));
                for &i in &idx[..take] {
                    candidates.push((beam_lp + logp[i], j, i as u32));
                }
            }
            candidates.sort_by(|a, c| c.0.total_cmp(&a.0));
            let mut chosen: Vec<(usize, u32, f32)> = Vec::with_capacity(k);
            for (rank, &(score, j, token)) in candidates.iter().enumerate() {
                if token == EOT && !cfg.ignore_eos {
                    if rank < k {
                        let mut tokens = state.beams[j].0.clone();
                        tokens.push(EOT);
                        let len = tokens.len();
                        state.add_finished(
                            Hypothesis {
                                tokens,
                                logprob: score,
                                score: normalised(score, len, length_penalty),
                            },
                            k,
                        );
                    }
                } else {
                    chosen.push((j, token, score));
                }
                if chosen.len() == k {
                    break;
                }
            }
            let gen_len = t + 1;
            let best_live = chosen.iter().map(|c| c.2).fold(f32::NEG_INFINITY, f32::max);
            let done = chosen.is_empty()
                || (state.finished.len() >= k
                    && (early_stopping
                        || state.worst_finished()
                            >= normalised(best_live, gen_len, length_penalty)));
            if done {
                state.done = true;
                continue;
            }
            // Pad with dead beams if fewer than k continuations exist (tiny vocabularies).
            while chosen.len() < k {
                chosen.push((0, EOT, f32::NEG_INFINITY));
            }
            let old = std::mem::take(&mut state.beams);
            for (j, token, score) in chosen {
                let mut tokens = old[j].0.clone();
                tokens.push(token);
                state.beams.push((tokens, score));
                next_rows.push(pos * k + j);
                next_feed.push(vec![token]);
            }
            still_active.push(img);
        }
        active = still_active;
        if active.is_empty() {
            break;
        }
        step.select(&next_rows);
        feed = next_feed;
    }
    // Images still searching when the token budget ran out: live beams become hypotheses.
    for state in images.iter_mut().filter(|s| !s.done) {
        for (tokens, lp) in std::mem::take(&mut state.beams) {
            if lp.is_finite() {
                let len = tokens.len();
                state.add_finished(
                    Hypothesis {
                        tokens,
                        logprob: lp,
                        score: normalised(lp, len, length_penalty),
                    },
                    k,
                );
            }
        }
    }
    Ok(images
        .into_iter()
        .map(|s| {
            s.finished
                .into_iter()
                .next()
                .map(|h| Caption {
                    tokens: h.tokens,
                    logprob: h.logprob,
                })
                .unwrap_or(Caption {
                    tokens: Vec::new(),
                    logprob: f32::NEG_INFINITY,
                })
        })
        .collect())
}
