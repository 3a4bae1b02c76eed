//! Caption generation: greedy, beam search (on log-probabilities, or open_clip's own beam
//! search reproduced token for token) and top-k/top-p sampling, with a key/value cache (each
//! image's cross-attention keys/values computed once) or, for checking, without one.

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
use logits::{LogitProcessor, logsumexp, sample_token};
use rayon::prelude::*;

/// How the next token is chosen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum DecodeStrategy {
    /// The most likely token.
    Greedy,
    /// Beam search on log-probabilities (`log_softmax` of the processed logits); a hypothesis
    /// is scored `sum logprob / generated_len^length_penalty` (generated tokens, the end token
    /// included). Done once `num_beams` hypotheses are finished (`early_stopping`) or, without
    /// it, once the worst of them scores at least the best candidate of the step divided by
    /// the step's length^length_penalty (transformers' heuristic).
    Beam {
        num_beams: usize,
        length_penalty: f32,
        early_stopping: bool,
    },
    /// open_clip's CoCa beam search: `CoCa.generate(generation_type="beam_search")` of open_clip
    /// 3.3 with transformers' `BeamSearchScorer` (see [`OpenClipBeamSearch`] for its arguments).
    /// Beams add up the processed *raw logits* (no `log_softmax`); `num_beams` is split into
    /// `num_beam_groups` groups searched separately without a diversity penalty (so they are
    /// copies: `N` beams in `G` groups return what `N / G` beams in one group do, at `G` times
    /// the cost); a hypothesis scores `sum / length` with the start token and the prefix
    /// counted (and the end token, when it ended the hypothesis); transformers' stopping
    /// heuristic (no early stopping); the best hypothesis over the groups wins.
    #[serde(rename = "open_clip_beam")]
    OpenClipBeam {
        num_beams: usize,
        num_beam_groups: usize,
        /// The end token (open_clip's `eos_token_id`).
        #[serde(default = "default_end_token")]
        eos_token: u32,
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

fn default_end_token() -> u32 {
    EOT
}

impl DecodeStrategy {
    /// The token that ends a caption: [`EOT`] unless the strategy names another.
    pub fn end_token(&self) -> u32 {
        match self {
            Self::OpenClipBeam { eos_token, .. } => *eos_token,
            _ => EOT,
        }
    }
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

/// The arguments of open_clip's `CoCa.generate(image, generation_type="beam_search", ...)`
/// that its beam search uses, with open_clip's defaults. [`OpenClipBeamSearch::config`] maps
/// them onto a [`GenerationConfig`] for [`generate`] with an empty prefix (open_clip's beam
/// search always starts from the start token alone and ignores `text`, `max_seq_len`,
/// `temperature`, `top_p` and `top_k`); `pad_token_id` and `fixed_output_length` only shape
/// the returned rows (see [`Caption`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct OpenClipBeamSearch {
    /// Longest sequence, start token included (`seq_len`, default 30).
    pub seq_len: usize,
    /// The end token is forbidden while the sequence, start token included, is shorter than
    /// this (`min_seq_len`, default 5).
    pub min_seq_len: usize,
    /// Beams per image over all groups (`num_beams`, default 6).
    pub num_beams: usize,
    /// Groups the beams are split into (`num_beam_groups`, default 3).
    pub num_beam_groups: usize,
    /// `repetition_penalty` (default 1, off).
    pub repetition_penalty: f32,
    /// `eos_token_id` (default [`EOT`]).
    pub eos_token_id: u32,
}

impl Default for OpenClipBeamSearch {
    fn default() -> Self {
        Self {
            seq_len: 30,
            min_seq_len: 5,
            num_beams: 6,
            num_beam_groups: 3,
            repetition_penalty: 1.0,
            eos_token_id: EOT,
        }
    }
}

impl OpenClipBeamSearch {
    /// The equivalent settings: `max_new_tokens = seq_len - 1`, `min_new_tokens =
    /// min_seq_len - 1` (open_clip counts the start token); fails where open_clip does
    /// (`seq_len <= min_seq_len`; beams not a multiple of the groups, checked by [`generate`]).
    pub fn config(&self) -> Result<GenerationConfig> {
        if self.seq_len <= self.min_seq_len {
            return Err(CocaError::Invalid(format!(
                "open_clip beam search: seq_len ({}) must be larger than min_seq_len ({})",
                self.seq_len, self.min_seq_len
            )));
        }
        Ok(GenerationConfig {
            strategy: DecodeStrategy::OpenClipBeam {
                num_beams: self.num_beams,
                num_beam_groups: self.num_beam_groups,
                eos_token: self.eos_token_id,
            },
            max_new_tokens: self.seq_len - 1,
            min_new_tokens: self.min_seq_len.saturating_sub(1),
            repetition_penalty: self.repetition_penalty,
            ignore_eos: false,
            use_cache: true,
        })
    }
}

/// One generated caption.
///
/// open_clip's `generate` returns, per image, `[sot] + prefix + tokens` right-padded with
/// `pad_token_id` to the longest row of the batch (to `seq_len` with `fixed_output_length`):
/// its beam search appends the end token exactly to the hypotheses that ended with it, which
/// are the ones whose `tokens` end with the end token here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Caption {
    /// Generated ids (after the start token and the prefix; the end token included if produced).
    pub tokens: Vec<u32>,
    /// Sum of the log-probabilities of the generated tokens (of the processed distributions:
    /// after the repetition penalty and the minimum length).
    pub logprob: f32,
    /// The score the strategy ranked this caption by: for beam searches the winning
    /// hypothesis' length-normalised score (for [`DecodeStrategy::OpenClipBeam`] the summed
    /// processed logits / length, transformers' `sequence_scores`); otherwise `logprob`.
    #[serde(default)]
    pub score: f32,
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
    rows_to_host(logits.slice([0..b, n - 1..n, 0..v]).reshape([b, v]))
}

/// `[B, vocab]` logits as one host vector per row.
fn rows_to_host(logits: Tensor<2>) -> Vec<Vec<f32>> {
    let v = logits.dims()[1];
    let flat: Vec<f32> = logits
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
        rows_to_host(
            self.model
                .decode_step(tokens_tensor(new, &device), &mut self.cache),
        )
    }

    fn select(&mut self, rows: &[usize]) {
        self.cache.select(rows);
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

/// A stepper over `image_embs`; `positions` (start token, prefix and new tokens) sizes the cache.
pub(crate) fn stepper<'a>(
    model: &'a Coca,
    image_embs: Tensor<3>,
    use_cache: bool,
    positions: usize,
) -> Box<dyn Stepper + 'a> {
    let rows = image_embs.dims()[0];
    if use_cache {
        Box::new(CachedStepper {
            model,
            cache: DecoderCache::with_capacity(model, image_embs, positions),
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
            let settings = beam::BeamSettings {
                num_beams: *num_beams,
                num_groups: 1,
                length_penalty: *length_penalty,
                early_stopping: *early_stopping,
                scores: beam::BeamScores::LogSoftmax,
                count_start: false,
            };
            beam::beam_search(model, image_embs, prefix, cfg, &settings, EOT)
        }
        DecodeStrategy::OpenClipBeam {
            num_beams,
            num_beam_groups,
            eos_token,
        } => {
            if *num_beams == 0 || *num_beam_groups == 0 || num_beams % num_beam_groups != 0 {
                return Err(CocaError::Invalid(format!(
                    "open_clip beam search: num_beams ({num_beams}) must be a positive multiple \
                     of num_beam_groups ({num_beam_groups})"
                )));
            }
            let settings = beam::BeamSettings {
                num_beams: *num_beams,
                num_groups: *num_beam_groups,
                length_penalty: 1.0,
                early_stopping: false,
                scores: beam::BeamScores::RawLogits,
                count_start: true,
            };
            beam::beam_search(model, image_embs, prefix, cfg, &settings, *eos_token)
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
            logprob: 0.0,
            score: 0.0,
        };
        b
    ];
    let mut active: Vec<usize> = (0..b).collect();
    let mut step = stepper(
        model,
        image_embs,
        cfg.use_cache,
        start.len() + cfg.max_new_tokens,
    );
    let mut feed: Vec<Vec<u32>> = vec![start; b];
    let processor = LogitProcessor::new(cfg);
    for t in 0..cfg.max_new_tokens {
        let logits = step.step(&feed);
        let mut keep = Vec::new();
        let mut next_feed = Vec::new();
        // Each row's logits processed and normalised (rows in parallel); then tokens in row
        // order (the sampler's random stream is sequential).
        let rows: Vec<(Vec<f32>, f32)> = logits
            .into_par_iter()
            .zip(active.par_iter())
            .map(|(mut l, &row)| {
                processor.apply(&mut l, &seqs[row], t);
                let lse = logsumexp(&l);
                (l, lse)
            })
            .collect();
        for (pos, (row, (l, lse))) in active.iter().copied().zip(rows).enumerate() {
            let token = match sampler.as_mut() {
                None => argmax(&l),
                Some(s) => sample_token(&l, s.top_k, s.top_p, s.temperature, &mut s.rng),
            };
            seqs[row].push(token);
            out[row].tokens.push(token);
            out[row].logprob += l[token as usize] - lse;
            out[row].score = out[row].logprob;
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
