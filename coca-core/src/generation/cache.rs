//! Key/value caches for incremental decoding. They live outside the modules, which stay `&self`.

use burn::tensor::{Int, Tensor};

use crate::model::Coca;

/// Projected keys and values `[B, t, d]` of the positions seen so far by one causal layer.
#[derive(Debug, Clone, Default)]
pub struct KvCache {
    kv: Option<(Tensor<3>, Tensor<3>)>,
}

impl KvCache {
    /// Number of cached positions.
    pub fn len(&self) -> usize {
        self.kv.as_ref().map_or(0, |(k, _)| k.dims()[1])
    }

    /// Whether nothing is cached yet.
    pub fn is_empty(&self) -> bool {
        self.kv.is_none()
    }

    /// Appends new keys/values and returns all of them.
    pub fn append(&mut self, k: Tensor<3>, v: Tensor<3>) -> (Tensor<3>, Tensor<3>) {
        let (k, v) = match self.kv.take() {
            None => (k, v),
            Some((pk, pv)) => (Tensor::cat(vec![pk, k], 1), Tensor::cat(vec![pv, v], 1)),
        };
        self.kv = Some((k.clone(), v.clone()));
        (k, v)
    }

    /// Keeps/reorders batch rows (beam search).
    pub fn select(&mut self, rows: &Tensor<1, Int>) {
        if let Some((k, v)) = self.kv.take() {
            self.kv = Some((k.select(0, rows.clone()), v.select(0, rows.clone())));
        }
    }
}

/// Everything the text towers need to decode one more token for a batch of rows.
#[derive(Debug, Clone)]
pub struct DecoderCache {
    /// One per layer of the unimodal text tower.
    pub text: Vec<KvCache>,
    /// One per causal self-attention layer of the multimodal decoder.
    pub decoder: Vec<KvCache>,
    /// Cross-attention keys/values of the image tokens, one pair per decoder layer.
    pub cross: Vec<(Tensor<3>, Tensor<3>)>,
    /// Positions decoded so far.
    pub len: usize,
}

impl DecoderCache {
    /// An empty cache for decoding against `image_embs [B, M, W]`; cross-attention keys/values
    /// are computed here, once.
    pub fn new(model: &Coca, image_embs: Tensor<3>) -> Self {
        Self {
            text: vec![KvCache::default(); model.text.transformer.resblocks.len()],
            decoder: vec![KvCache::default(); model.text_decoder.resblocks.len()],
            cross: model
                .text_decoder
                .cross_attn
                .iter()
                .map(|b| b.cross_kv(image_embs.clone()))
                .collect(),
            len: 0,
        }
    }

    /// Keeps/reorders batch rows (beam search, dropping finished rows).
    pub fn select(&mut self, rows: &Tensor<1, Int>) {
        for c in self.text.iter_mut().chain(self.decoder.iter_mut()) {
            c.select(rows);
        }
        for (k, v) in &mut self.cross {
            *k = k.clone().select(0, rows.clone());
            *v = v.clone().select(0, rows.clone());
        }
    }
}

impl Coca {
    /// Decodes `tokens [B, n]` that follow the `cache.len` positions already in `cache`, and
    /// returns the caption logits `[B, n, vocab]` of the new positions.
    pub fn decode_step(&self, tokens: Tensor<2, Int>, cache: &mut DecoderCache) -> Tensor<3> {
        let mut x = self.text.embed_tokens(tokens, cache.len);
        for (block, c) in self.text.transformer.resblocks.iter().zip(&mut cache.text) {
            x = block.forward_cached(x, c);
        }
        let dec = &self.text_decoder;
        for ((block, cross), (c, (k, v))) in dec
            .resblocks
            .iter()
            .zip(&dec.cross_attn)
            .zip(cache.decoder.iter_mut().zip(&cache.cross))
        {
            x = block.forward_cached(x, c);
            x = cross.forward_cross_cached(x, k.clone(), v.clone());
        }
        cache.len += x.dims()[1];
        dec.logits(x)
    }
}
