//! Caption generation: greedy, beam search and top-k/top-p sampling, with a key/value cache
//! (each image's cross-attention keys/values computed once) or, for checking, without one.

pub mod beam;
pub mod cache;
pub mod logits;

use burn::tensor::{Int, Tensor, TensorData};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use crate::error::{CocaError, Result};
use crate::model::Coca;
use crate::tokenizer::{EOT, PAD, SOT};
pub use cache::{DecoderCache, KvCache};
use logits::{LogitProcessor, log_softmax_row, sample_token};

/// How the next token is chosen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum DecodeStrategy {
    /// The most likely token.
    Greedy,
    /// Beam search; hypotheses scored by `sum logprob / generated_len^length_penalty`.
    Beam {
        num_beams: usize,
        length_penalty: f32,
        early_stopping: bool,
    },
    /// Sampling from the temperature-scaled distribution, optionally truncated to the top-k
    /// tokens and/or the top-p probability mass.
    Sample {
        top_k: Option<usize>,
        top_p: Option<f32>,
        temperature: f32,
        seed: u64,
    },
}

/// Generation settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerationConfig {
    pub strategy: DecodeStrategy,
    /// Tokens to generate at most (the start token and the prefix not counted).
    pub max_new_tokens: usize,
    /// The end token is forbidden before this many tokens were generated.
    pub min_new_tokens: usize,
    /// CTRL-style penalty (> 1 discourages tokens already in the sequence); 1 disables it.
    pub repetition_penalty: f32,
    /// Keep generating after the end token (always `max_new_tokens` tokens).
    pub ignore_eos: bool,
    /// Use the key/value cache (true) or re-run the whole prefix each step, as open_clip does.
    pub use_cache: bool,
}

impl Default for GenerationConfig {
    fn default() -> Self {
        Self {
            strategy: DecodeStrategy::Greedy,
            max_new_tokens: 20,
            min_new_tokens: 0,
            repetition_penalty: 1.0,
            ignore_eos: false,
            use_cache: true,
        }
    }
}

/// One generated caption.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Caption {
    /// Generated ids (after the start token and the prefix; the end token included if produced).
    pub tokens: Vec<u32>,
    /// Sum of the log-probabilities of the generated tokens.
    pub logprob: f32,
}

/// Computes next-token logits for a set of rows; rows can be dropped or reordered.
pub(crate) trait Stepper {
    /// Feeds `new[r]` (same length for every row) and returns each row's logits at its last position.
    fn step(&mut self, new: &[Vec<u32>]) -> Vec<Vec<f32>>;
    /// Keeps rows `rows` (indices into the current rows, repeats allowed) in this order.
    fn select(&mut self, rows: &[usize]);
}

fn index_tensor(rows: &[usize], device: &burn::tensor::Device) -> Tensor<1, Int> {
    let data: Vec<i64> = rows.iter().map(|&r| r as i64).collect();
    Tensor::from_data(TensorData::new(data, [rows.len()]), device)
}

fn tokens_tensor(rows: &[Vec<u32>], device: &burn::tensor::Device) -> Tensor<2, Int> {
    crate::pretrained::tokens_to_tensor(rows, device)
}

fn last_logits(logits: Tensor<3>) -> Vec<Vec<f32>> {
    let [b, n, v] = logits.dims();
    let flat: Vec<f32> = logits
        .slice([0..b, n - 1..n, 0..v])
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .unwrap_or_default();
    flat.chunks(v).map(<[f32]>::to_vec).collect()
}

/// Incremental decoding with [`DecoderCache`].
pub(crate) struct CachedStepper<'a> {
    model: &'a Coca,
    cache: DecoderCache,
}

impl Stepper for CachedStepper<'_> {
    fn step(&mut self, new: &[Vec<u32>]) -> Vec<Vec<f32>> {
        let device = self.model.logit_scale.val().device();
        last_logits(
            self.model
                .decode_step(tokens_tensor(new, &device), &mut self.cache),
        )
    }

    fn select(&mut self, rows: &[usize]) {
        let device = self.model.logit_scale.val().device();
        self.cache.select(&index_tensor(rows, &device));
    }
}

/// Re-runs both text towers on the whole sequence every step (open_clip's way).
pub(crate) struct FullStepper<'a> {
    model: &'a Coca,
    image_embs: Tensor<3>,
    seqs: Vec<Vec<u32>>,
}

impl Stepper for FullStepper<'_> {
    fn step(&mut self, new: &[Vec<u32>]) -> Vec<Vec<f32>> {
        for (seq, n) in self.seqs.iter_mut().zip(new) {
            seq.extend_from_slice(n);
        }
        let device = self.image_embs.device();
        let text = self.model.encode_text(tokens_tensor(&self.seqs, &device));
        last_logits(self.model.decode(self.image_embs.clone(), text.token_embs))
    }

    fn select(&mut self, rows: &[usize]) {
        let device = self.image_embs.device();
        self.image_embs = self
            .image_embs
            .clone()
            .select(0, index_tensor(rows, &device));
        self.seqs = rows.iter().map(|&r| self.seqs[r].clone()).collect();
    }
}

pub(crate) fn stepper<'a>(
    model: &'a Coca,
    image_embs: Tensor<3>,
    use_cache: bool,
) -> Box<dyn Stepper + 'a> {
    let rows = image_embs.dims()[0];
    if use_cache {
        Box::new(CachedStepper {
            model,
            cache: DecoderCache::new(model, image_embs),
        })
    } else {
        Box::new(FullStepper {
            model,
            image_embs,
            seqs: vec![Vec::new(); rows],
        })
    }
}

/// Generates one caption per image from decoder memory `image_embs [B, M, W]`, starting from
/// the start token followed by `prefix` (token ids without start/end tokens).
pub fn generate(
    model: &Coca,
    image_embs: Tensor<3>,
    prefix: &[u32],
    cfg: &GenerationConfig,
) -> Result<Vec<Caption>> {
    let context = model.context_length();
    if 1 + prefix.len() + cfg.max_new_tokens > context {
        return Err(CocaError::Invalid(format!(
            "start token + prefix ({} tokens) + max new tokens ({}) exceed the context length {context}",
            prefix.len(),
            cfg.max_new_tokens
        )));
    }
    if cfg.min_new_tokens > cfg.max_new_tokens {
        return Err(CocaError::Invalid(format!(
            "min new tokens ({}) exceed max new tokens ({})",
            cfg.min_new_tokens, cfg.max_new_tokens
        )));
    }
    if cfg.repetition_penalty.is_nan() || cfg.repetition_penalty <= 0.0 {
        return Err(CocaError::Invalid(
            "repetition penalty must be positive".into(),
        ));
    }
    match &cfg.strategy {
        DecodeStrategy::Beam {
            num_beams,
            length_penalty,
            early_stopping,
        } => {
            if *num_beams == 0 {
                return Err(CocaError::Invalid(
                    "beam search needs at least one beam".into(),
                ));
            }
            beam::beam_search(
                model,
                image_embs,
                prefix,
                cfg,
                *num_beams,
                *length_penalty,
                *early_stopping,
            )
        }
        DecodeStrategy::Greedy => independent_rows(model, image_embs, prefix, cfg, None),
        DecodeStrategy::Sample {
            top_k,
            top_p,
            temperature,
            seed,
        } => {
            if temperature.is_nan() || *temperature <= 0.0 {
                return Err(CocaError::Invalid("temperature must be positive".into()));
            }
            if top_p.is_some_and(|p| !(p > 0.0 && p <= 1.0)) {
                return Err(CocaError::Invalid("top-p must be in (0, 1]".into()));
            }
            let sampler = Sampler {
                top_k: *top_k,
                top_p: *top_p,
                temperature: *temperature,
                rng: StdRng::seed_from_u64(*seed),
            };
            independent_rows(model, image_embs, prefix, cfg, Some(sampler))
        }
    }
}

struct Sampler {
    top_k: Option<usize>,
    top_p: Option<f32>,
    temperature: f32,
    rng: StdRng,
}

/// Greedy decoding or sampling: every row advances on its own and leaves the batch when it ends.
fn independent_rows(
    model: &Coca,
    image_embs: Tensor<3>,
    prefix: &[u32],
    cfg: &GenerationConfig,
    mut sampler: Option<Sampler>,
) -> Result<Vec<Caption>> {
    let b = image_embs.dims()[0];
    let start: Vec<u32> = std::iter::once(SOT).chain(prefix.iter().copied()).collect();
    let mut seqs = vec![start.clone(); b];
    let mut out = vec![
        Caption {
            tokens: Vec::new(),
            logprob: 0.0
        };
        b
    ];
    let mut active: Vec<usize> = (0..b).collect();
    let mut step = stepper(model, image_embs, cfg.use_cache);
    let mut feed: Vec<Vec<u32>> = vec![start; b];
    let processor = LogitProcessor::new(cfg);
    for t in 0..cfg.max_new_tokens {
        let logits = step.step(&feed);
        let mut keep = Vec::new();
        let mut next_feed = Vec::new();
        for (pos, (row, mut l)) in active.iter().copied().zip(logits).enumerate() {
            processor.apply(&mut l, &seqs[row], t);
            let logp = log_softmax_row(&l);
            let token = match sampler.as_mut() {
                None => argmax(&l),
                Some(s) => sample_token(&l, s.top_k, s.top_p, s.temperature, &mut s.rng),
            };
            seqs[row].push(token);
            out[row].tokens.push(token);
            out[row].logprob += logp[token as usize];
            if token != EOT || cfg.ignore_eos {
                keep.push(pos);
                next_feed.push(vec![token]);
            }
        }
        if keep.len() != active.len() {
            step.select(&keep);
            active = keep.iter().map(|&p| active[p]).collect();
        }
        if active.is_empty() {
            break;
        }
        feed = next_feed;
    }
    let _ = PAD;
    Ok(out)
}

/// Index of the largest value (the first one on ties).
pub fn argmax(values: &[f32]) -> u32 {
    let mut best = 0;
    for (i, v) in values.iter().enumerate() {
        if *v > values[best] {
            best = i;
        }
    }
    best as u32
}
