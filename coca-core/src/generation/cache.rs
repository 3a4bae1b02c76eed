//! The decoding state of both text towers: a [`KvCache`] per causal layer (the cache types
//! belong to the model, see [`crate::model::kv_cache`]) and each image's cross-attention
//! keys/values, computed once.

use burn::tensor::{Int, Tensor, TensorData};

use crate::model::Coca;
pub use crate::model::kv_cache::KvCache;

/// Everything the text towers need to decode one more token for a batch of rows.
#[derive(Debug, Clone)]
pub struct DecoderCache {
    /// One per layer of the unimodal text tower.
    pub text: Vec<KvCache>,
    /// One per causal self-attention layer of the multimodal decoder.
    pub decoder: Vec<KvCache>,
    /// Cross-attention keys/values of the image tokens split into heads,
    /// `[B, heads, M, head_dim]`, one pair per decoder layer.
    pub cross: Vec<(Tensor<4>, Tensor<4>)>,
    /// Positions decoded so far.
    pub len: usize,
    /// The row of the first batch each current row's cross-attention keys/values come from.
    cross_rows: Vec<usize>,
}

impl DecoderCache {
    /// An empty cache for decoding against `image_embs [B, M, W]`, sized for the model's
    /// whole context; cross-attention keys/values are computed here, once.
    pub fn new(model: &Coca, image_embs: Tensor<3>) -> Self {
        Self::with_capacity(model, image_embs, model.context_length())
    }

    /// As [`Self::new`], with buffers for `positions` positions (start token, prefix and
    /// generated tokens); decoding further grows them.
    pub fn with_capacity(model: &Coca, image_embs: Tensor<3>, positions: usize) -> Self {
        let caches = |n: usize| vec![KvCache::with_capacity(positions); n];
        Self {
            text: caches(model.text.transformer.resblocks.len()),
            decoder: caches(model.text_decoder.resblocks.len()),
            cross: model
                .text_decoder
                .cross_attn
                .iter()
                .map(|b| b.cross_kv(image_embs.clone()))
                .collect(),
            len: 0,
            cross_rows: (0..image_embs.dims()[0]).collect(),
        }
    }

    /// Keeps/reorders batch rows (beam search, dropping finished rows): `rows` index the
    /// current rows, repeats allowed. Cross-attention keys/values are gathered only when some
    /// row now decodes against another image than before (beams of one image reordered among
    /// themselves keep them as they are).
    pub fn select(&mut self, rows: &[usize]) {
        let Some(device) = self.cross.first().map(|(k, _)| k.device()) else {
            return;
        };
        let data: Vec<i64> = rows.iter().map(|&r| r as i64).collect();
        let index = Tensor::<1, Int>::from_data(TensorData::new(data, [rows.len()]), &device);
        for c in self.text.iter_mut().chain(self.decoder.iter_mut()) {
            c.select(&index);
        }
        let cross_rows: Vec<usize> = rows.iter().map(|&r| self.cross_rows[r]).collect();
        if cross_rows != self.cross_rows {
            for (k, v) in &mut self.cross {
                *k = k.clone().select(0, index.clone());
                *v = v.clone().select(0, index.clone());
            }
            self.cross_rows = cross_rows;
        }
    }
}

impl Coca {
    /// Decodes `tokens [B, n]` that follow the `cache.len` positions already in `cache`, and
    /// returns the caption logits `[B, vocab]` of the last new position (the vocabulary
    /// projection is computed for that position only).
    pub fn decode_step(&self, tokens: Tensor<2, Int>, cache: &mut DecoderCache) -> Tensor<2> {
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
        let [b, n, w] = x.dims();
        cache.len += n;
        let last = if n == 1 {
            x
        } else {
            x.slice([0..b, n - 1..n, 0..w])
        };
        let logits = dec.logits(last);
        let vocab = logits.dims()[2];
        logits.reshape([b, vocab])
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Device, Distribution};

    use super::*;
    use crate::config::CocaConfig;
    use crate::tokenizer::SOT;

    fn ids(rows: &[i64], device: &Device) -> Tensor<2, Int> {
        Tensor::from_data(TensorData::new(rows.to_vec(), [rows.len(), 1]), device)
    }

    fn host(t: Tensor<2>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap_or_default()
    }

    fn assert_same(got: &[f32], want: &[f32], what: &str) {
        assert_eq!(got.len(), want.len(), "{what}: lengths");
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!(
                g.is_finite() && w.is_finite() && (g - w).abs() <= 1e-5 * (1.0 + w.abs()),
                "{what}: logit {i}: {g} vs {w}"
            );
        }
    }

    /// Rows selected after a step (swapped, repeated) decode against their own images, as a
    /// fresh cache over the images in the new order does; a cache that must grow agrees too.
    #[test]
    fn selected_rows_keep_their_images_and_history() {
        let device = Device::flex();
        let cfg = CocaConfig::tiny();
        let model = Coca::new(&cfg, &device);
        let s = cfg.vision_cfg.image_size;
        let pixels = Tensor::<4>::random([3, 3, s, s], Distribution::Normal(0.0, 1.0), &device);
        let embs = model.encode_image(pixels).embs;
        let sot = i64::from(SOT);
        for rows in [vec![1, 0, 2], vec![2, 2, 0], vec![1, 0]] {
            let n = rows.len();
            let next: Vec<i64> = (0..n as i64).map(|i| 5 + 7 * i).collect();
            // Two steps on all images, select, two more steps.
            let mut cache = DecoderCache::with_capacity(&model, embs.clone(), 1);
            model.decode_step(ids(&[sot; 3], &device), &mut cache);
            model.decode_step(ids(&[3, 4, 5], &device), &mut cache);
            cache.select(&rows);
            model.decode_step(ids(&next, &device), &mut cache);
            let got = host(model.decode_step(ids(&next, &device), &mut cache));
            // The same histories from the start, images in the selected order.
            let index: Vec<i64> = rows.iter().map(|&r| r as i64).collect();
            let picked = embs
                .clone()
                .select(0, Tensor::from_data(TensorData::new(index, [n]), &device));
            let mut fresh = DecoderCache::new(&model, picked);
            let second: Vec<i64> = rows.iter().map(|&r| [3, 4, 5][r]).collect();
            model.decode_step(ids(&vec![sot; n], &device), &mut fresh);
            model.decode_step(ids(&second, &device), &mut fresh);
            model.decode_step(ids(&next, &device), &mut fresh);
            let want = host(model.decode_step(ids(&next, &device), &mut fresh));
            assert_same(&got, &want, &format!("rows {rows:?}"));
            assert_eq!(cache.len, 4);
        }
    }
}
