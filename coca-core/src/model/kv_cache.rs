//! Key/value cache of one causal self-attention layer for incremental decoding, kept outside
//! the modules (which stay `&self`).
//!
//! Keys and values are stored split into heads, `[B, heads, capacity, head_dim]`, in buffers
//! allocated once: each step writes its new positions in place (`slice_assign` on a buffer
//! nothing else holds, which burn's `flex` backend does without copying it) and attention
//! reads a view of the filled positions. A buffer that runs full grows to twice its size.

use burn::tensor::{Int, Tensor};

/// Projected keys and values of the positions seen so far by one causal layer.
#[derive(Debug, Clone, Default)]
pub struct KvCache {
    /// `[B, H, capacity, dh]` key and value buffers; positions `0..len` are filled.
    kv: Option<(Tensor<4>, Tensor<4>)>,
    len: usize,
    /// Positions the first allocation holds (at least the first append's).
    reserve: usize,
}

impl KvCache {
    /// An empty cache whose buffers, once allocated, hold `capacity` positions before growing.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            kv: None,
            len: 0,
            reserve: capacity,
        }
    }

    /// Number of cached positions.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is cached yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Positions the buffers hold before they must grow (0 before the first append).
    pub fn capacity(&self) -> usize {
        self.kv.as_ref().map_or(0, |(k, _)| k.dims()[2])
    }

    /// Writes the keys/values `[B, H, n, dh]` of `n` new positions after the cached ones and
    /// returns views `[B, H, len + n, dh]` of all of them.
    pub fn append(&mut self, k: Tensor<4>, v: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
        let [b, h, n, dh] = k.dims();
        let (start, end) = (self.len, self.len + n);
        let (kb, vb) = match self.kv.take() {
            Some((kb, vb)) if kb.dims()[2] >= end => (kb, vb),
            old => {
                let old_cap = old.as_ref().map_or(0, |(k, _)| k.dims()[2]);
                let cap = end.max(self.reserve).max(2 * old_cap);
                let grow = |old: Option<Tensor<4>>| {
                    let buf = Tensor::<4>::zeros([b, h, cap, dh], &k.device());
                    match old {
                        Some(o) if start > 0 => {
                            let filled = o.slice([0..b, 0..h, 0..start, 0..dh]);
                            buf.slice_assign([0..b, 0..h, 0..start, 0..dh], filled)
                        }
                        _ => buf,
                    }
                };
                let (ok, ov) = old.unzip();
                (grow(ok), grow(ov))
            }
        };
        let range = [0..b, 0..h, start..end, 0..dh];
        let kb = kb.slice_assign(range.clone(), k);
        let vb = vb.slice_assign(range, v);
        let all = [0..b, 0..h, 0..end, 0..dh];
        let views = (kb.clone().slice(all.clone()), vb.clone().slice(all));
        self.kv = Some((kb, vb));
        self.len = end;
        views
    }

    /// Keeps/reorders batch rows (beam search); `rows` index the current rows.
    pub fn select(&mut self, rows: &Tensor<1, Int>) {
        if let Some((k, v)) = self.kv.take() {
            self.kv = Some((k.select(0, rows.clone()), v.select(0, rows.clone())));
        }
    }
}

/// A contiguous copy of `t` (attention reads contiguous keys/values without copying them).
pub fn contiguous(t: Tensor<4>) -> Tensor<4> {
    let [a, b, c, d] = t.dims();
    Tensor::<4>::empty([a, b, c, d], &t.device()).slice_assign([0..a, 0..b, 0..c, 0..d], t)
}
