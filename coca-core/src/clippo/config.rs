//! CLIPPO model sizes: the released ViT-B/16 preset and the sizes read off a checkpoint's shapes.

use std::collections::BTreeMap;

/// The sizes of a one-tower CLIPPO ViT (`big_vision/models/proj/clippo/one_tower.py` with a
/// MAP-pooled `vit` image model, learned position embedding, no cls token).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ClippoConfig {
    /// Token width `D`.
    pub width: usize,
    /// Encoder blocks.
    pub depth: usize,
    /// Attention heads (`D / heads` per head).
    pub num_heads: usize,
    /// Hidden width of the MLPs (blocks and MAP head).
    pub mlp_dim: usize,
    /// Square patch side.
    pub patch_size: usize,
    /// Square input side.
    pub image_size: usize,
    /// Embedding size (`head` output).
    pub out_dim: usize,
}

/// The checkpoint key prefix of the tower.
pub const IMG: &str = "params/img";
/// The checkpoint key of the log-temperature.
pub const T_KEY: &str = "params/t";

impl ClippoConfig {
    /// The released CLIPPO models: ViT-B/16 at 224 px, `out_dim` 768.
    pub fn clippo_b16() -> Self {
        Self {
            width: 768,
            depth: 12,
            num_heads: 12,
            mlp_dim: 3072,
            patch_size: 16,
            image_size: 224,
            out_dim: 768,
        }
    }

    /// A tiny model for CPU tests and the synthetic world: 128 px, 16 px patches (one glyph
    /// cell per token), width 64, 2 blocks, 4 heads, `out_dim` 32.
    pub fn tiny() -> Self {
        Self {
            width: 64,
            depth: 2,
            num_heads: 4,
            mlp_dim: 256,
            patch_size: 16,
            image_size: 128,
            out_dim: 32,
        }
    }

    /// A preset by name (`clippo_B16`, `clippo_tiny`; case-insensitive).
    pub fn preset(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().replace(['-', '/'], "_").as_str() {
            "clippo_b16" | "clippo_b_16" => Some(Self::clippo_b16()),
            "clippo_tiny" => Some(Self::tiny()),
            _ => None,
        }
    }

    /// Patches per side.
    pub fn grid(&self) -> usize {
        self.image_size / self.patch_size
    }

    /// Tokens (`grid^2`).
    pub fn num_tokens(&self) -> usize {
        self.grid() * self.grid()
    }

    /// Per-head width.
    pub fn head_dim(&self) -> usize {
        self.width / self.num_heads
    }

    /// Checks the sizes fit together.
    pub fn validate(&self) -> Result<(), String> {
        let nonzero = [
            ("width", self.width),
            ("depth", self.depth),
            ("num_heads", self.num_heads),
            ("mlp_dim", self.mlp_dim),
            ("patch_size", self.patch_size),
            ("image_size", self.image_size),
            ("out_dim", self.out_dim),
        ];
        if let Some((name, _)) = nonzero.iter().find(|(_, v)| *v == 0) {
            return Err(format!("{name} is 0"));
        }
        if !self.width.is_multiple_of(self.num_heads) {
            return Err(format!(
                "width {} is not a multiple of num_heads {}",
                self.width, self.num_heads
            ));
        }
        if !self.image_size.is_multiple_of(self.patch_size) {
            return Err(format!(
                "image_size {} is not a multiple of patch_size {}",
                self.image_size, self.patch_size
            ));
        }
        Ok(())
    }

    /// Every checkpoint key with its shape, as big_vision names them (`params/img/...`,
    /// `params/t`).
    pub fn expected_shapes(&self) -> BTreeMap<String, Vec<usize>> {
        let (d, h, hd, m, p) = (
            self.width,
            self.num_heads,
            self.head_dim(),
            self.mlp_dim,
            self.patch_size,
        );
        let mut out = BTreeMap::new();
        let mut put = |k: String, s: &[usize]| {
            out.insert(k, s.to_vec());
        };
        let attention = |put: &mut dyn FnMut(String, &[usize]), pre: &str| {
            let a = format!("{pre}/MultiHeadDotProductAttention_0");
            for qkv in ["query", "key", "value"] {
                put(format!("{a}/{qkv}/kernel"), &[d, h, hd]);
                put(format!("{a}/{qkv}/bias"), &[h, hd]);
            }
            put(format!("{a}/out/kernel"), &[h, hd, d]);
            put(format!("{a}/out/bias"), &[d]);
            put(format!("{pre}/MlpBlock_0/Dense_0/kernel"), &[d, m]);
            put(format!("{pre}/MlpBlock_0/Dense_0/bias"), &[m]);
            put(format!("{pre}/MlpBlock_0/Dense_1/kernel"), &[m, d]);
            put(format!("{pre}/MlpBlock_0/Dense_1/bias"), &[d]);
        };
        put(format!("{IMG}/embedding/kernel"), &[p, p, 3, d]);
        put(format!("{IMG}/embedding/bias"), &[d]);
        put(format!("{IMG}/pos_embedding"), &[1, self.num_tokens(), d]);
        for i in 0..self.depth {
            let pre = format!("{IMG}/Transformer/encoderblock_{i}");
            for ln in ["LayerNorm_0", "LayerNorm_1"] {
                put(format!("{pre}/{ln}/scale"), &[d]);
                put(format!("{pre}/{ln}/bias"), &[d]);
            }
            attention(&mut put, &pre);
        }
        put(format!("{IMG}/Transformer/encoder_norm/scale"), &[d]);
        put(format!("{IMG}/Transformer/encoder_norm/bias"), &[d]);
        let map = format!("{IMG}/MAPHead_0");
        put(format!("{map}/probe"), &[1, 1, d]);
        put(format!("{map}/LayerNorm_0/scale"), &[d]);
        put(format!("{map}/LayerNorm_0/bias"), &[d]);
        attention(&mut put, &map);
        put(format!("{IMG}/head/kernel"), &[d, self.out_dim]);
        put(format!("{IMG}/head/bias"), &[self.out_dim]);
        put(T_KEY.to_string(), &[1]);
        out
    }

    /// The sizes read off a checkpoint's shapes (key -> shape). Errors name the key that is
    /// missing or whose rank does not fit.
    pub fn from_shapes(shapes: &BTreeMap<String, Vec<usize>>) -> Result<Self, String> {
        let get = |key: String, rank: usize| -> Result<Vec<usize>, String> {
            let s = shapes
                .get(&key)
                .ok_or_else(|| format!("missing key {key} (needed to derive the config)"))?;
            if s.len() == rank {
                Ok(s.clone())
            } else {
                Err(format!("key {key} has shape {s:?}, expected rank {rank}"))
            }
        };
        let emb = get(format!("{IMG}/embedding/kernel"), 4)?;
        if emb[0] != emb[1] || emb[2] != 3 {
            return Err(format!(
                "key {IMG}/embedding/kernel has shape {emb:?}, expected [p, p, 3, width]"
            ));
        }
        let (patch_size, width) = (emb[0], emb[3]);
        let pos = get(format!("{IMG}/pos_embedding"), 3)?;
        let tokens = pos[1];
        let grid = (tokens as f64).sqrt().round() as usize;
        if grid * grid != tokens {
            return Err(format!(
                "key {IMG}/pos_embedding has {tokens} tokens, not a square grid"
            ));
        }
        let depth = (0..)
            .take_while(|i| {
                shapes.contains_key(&format!(
                    "{IMG}/Transformer/encoderblock_{i}/LayerNorm_0/scale"
                ))
            })
            .count();
        let q = get(
            format!("{IMG}/Transformer/encoderblock_0/MultiHeadDotProductAttention_0/query/kernel"),
            3,
        )?;
        let mlp = get(
            format!("{IMG}/Transformer/encoderblock_0/MlpBlock_0/Dense_0/kernel"),
            2,
        )?;
        let head = get(format!("{IMG}/head/kernel"), 2)?;
        let cfg = Self {
            width,
            depth,
            num_heads: q[1],
            mlp_dim: mlp[1],
            patch_size,
            image_size: grid * patch_size,
            out_dim: head[1],
        };
        cfg.validate()?;
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_preset_derives_back_from_its_own_shapes() {
        let b16 = ClippoConfig::preset("clippo_B16").unwrap();
        let shapes = b16.expected_shapes();
        // 12 blocks x 16 tensors + embedding (2) + posemb + encoder_norm (2) + MAP (15) + head
        // (2) + t.
        assert_eq!(shapes.len(), 12 * 16 + 2 + 1 + 2 + 15 + 2 + 1);
        assert_eq!(shapes[&format!("{IMG}/pos_embedding")], vec![1, 196, 768]);
        assert_eq!(ClippoConfig::from_shapes(&shapes).unwrap(), b16);
    }
}
