//! Host-side processing of next-token logits: repetition penalty, minimum length, sampling.
//!
//! The two adjustments are those of transformers' `RepetitionPenaltyLogitsProcessor` and
//! `MinLengthLogitsProcessor` as open_clip's `CoCa.generate` uses them: the penalty applies
//! to every id of the sequence so far (start token and prefix included), and the end token is
//! set to `-inf` while fewer than `min_new_tokens` tokens were generated.

use rand::Rng;

use super::GenerationConfig;

/// The logit adjustments every strategy applies before choosing.
#[derive(Debug, Clone)]
pub struct LogitProcessor {
    repetition_penalty: f32,
    min_new_tokens: usize,
    end_token: u32,
}

impl LogitProcessor {
    /// From the generation settings.
    pub fn new(cfg: &GenerationConfig) -> Self {
        Self {
            repetition_penalty: cfg.repetition_penalty,
            min_new_tokens: cfg.min_new_tokens,
            end_token: cfg.strategy.end_token(),
        }
    }

    /// Adjusts `logits` of the next token of `seq` (all tokens so far), `generated` tokens in.
    pub fn apply(&self, logits: &mut [f32], seq: &[u32], generated: usize) {
        if self.repetition_penalty != 1.0 {
            let mut seen = seq.to_vec();
            seen.sort_unstable();
            seen.dedup();
            for t in seen {
                if let Some(l) = logits.get_mut(t as usize) {
                    *l = if *l < 0.0 {
                        *l * self.repetition_penalty
                    } else {
                        *l / self.repetition_penalty
                    };
                }
            }
        }
        if generated < self.min_new_tokens
            && let Some(l) = logits.get_mut(self.end_token as usize)
        {
            *l = f32::NEG_INFINITY;
        }
    }
}

/// `log(sum(exp(logits)))` of one row (accumulated in f64).
pub fn logsumexp(logits: &[f32]) -> f32 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if !max.is_finite() {
        return max;
    }
    let sum: f64 = logits.iter().map(|&l| ((l - max) as f64).exp()).sum();
    max + sum.ln() as f32
}

/// Samples a token from `softmax(logits / temperature)` restricted to the `top_k` most likely
/// tokens and to the smallest set whose probability reaches `top_p`.
pub fn sample_token(
    logits: &[f32],
    top_k: Option<usize>,
    top_p: Option<f32>,
    temperature: f32,
    rng: &mut impl Rng,
) -> u32 {
    let mut order: Vec<usize> = (0..logits.len())
        .filter(|&i| logits[i].is_finite())
        .collect();
    if order.is_empty() {
        return super::argmax(logits);
    }
    order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
    if let Some(k) = top_k {
        order.truncate(k.max(1));
    }
    let max = logits[order[0]];
    let mut probs: Vec<f64> = order
        .iter()
        .map(|&i| (((logits[i] - max) / temperature) as f64).exp())
        .collect();
    let total: f64 = probs.iter().sum();
    probs.iter_mut().for_each(|p| *p /= total);
    if let Some(p) = top_p {
        let mut mass = 0.0;
        let mut keep = 0;
        for q in &probs {
            keep += 1;
            mass += q;
            if mass >= p as f64 {
                break;
            }
        }
        order.truncate(keep);
        probs.truncate(keep);
        let total: f64 = probs.iter().sum();
        probs.iter_mut().for_each(|q| *q /= total);
    }
    let mut u: f64 = rng.random();
    for (i, q) in order.iter().zip(&probs) {
        if u < *q {
            return *i as u32;
        }
        u -= q;
    }
    order[order.len() - 1] as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenizer::EOT;
    use rand::SeedableRng;

    #[test]
    fn top_k_one_is_greedy_and_top_p_restricts_support() {
        let logits = vec![0.1, 3.0, 2.9, -1.0];
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        for _ in 0..20 {
            assert_eq!(sample_token(&logits, Some(1), None, 1.0, &mut rng), 1);
            let t = sample_token(&logits, None, Some(0.5), 1.0, &mut rng);
            assert!(
                t == 1,
                "top-p 0.5 keeps only the first token (p=0.49..0.5 needs it alone) got {t}"
            );
        }
    }

    #[test]
    fn repetition_penalty_and_min_length() {
        let cfg = GenerationConfig {
            repetition_penalty: 2.0,
            min_new_tokens: 2,
            ..Default::default()
        };
        let p = LogitProcessor::new(&cfg);
        let mut l = vec![0.0; EOT as usize + 1];
        l[5] = 4.0;
        l[6] = -4.0;
        p.apply(&mut l, &[5, 6], 1);
        assert_eq!((l[5], l[6]), (2.0, -8.0));
        assert_eq!(l[EOT as usize], f32::NEG_INFINITY);
    }

    #[test]
    fn min_length_forbids_the_strategy_end_token() {
        let cfg = GenerationConfig {
            strategy: crate::generation::DecodeStrategy::OpenClipBeam {
                num_beams: 2,
                num_beam_groups: 1,
                eos_token: 7,
            },
            min_new_tokens: 3,
            ..Default::default()
        };
        let p = LogitProcessor::new(&cfg);
        let mut l = vec![1.0; EOT as usize + 1];
        p.apply(&mut l, &[1], 2);
        assert_eq!(l[7], f32::NEG_INFINITY);
        assert_eq!(l[EOT as usize], 1.0);
        let mut l = vec![1.0; 8];
        p.apply(&mut l, &[1], 3);
        assert_eq!(l[7], 1.0);
    }

    #[test]
    fn logsumexp_of_a_row() {
        let l = [0.5f32, -1.0, 2.0, f32::NEG_INFINITY];
        let want = (0.5f64.exp() + (-1.0f64).exp() + 2.0f64.exp()).ln();
        assert!((f64::from(logsumexp(&l)) - want).abs() < 1e-6);
        assert_eq!(logsumexp(&[f32::NEG_INFINITY; 3]), f32::NEG_INFINITY);
    }
}
