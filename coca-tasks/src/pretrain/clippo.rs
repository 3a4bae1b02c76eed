//! CLIPPO's objective on image-caption pairs: the caption rendered as pixels, both through the
//! one ViT, big_vision's contrastive loss `0.5 * (CE_i2t + CE_t2i)` over
//! `z_img . z_txt^T * t`; optionally text/text pairs (e.g. consecutive sentences, the paper's
//! 25% C4 pairs) mixed in, both sides rendered.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use coca_core::clippo::{Clippo, contrastive_loss};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::Deserialize;
use serde_json::json;

use super::{CaptionPair, retrieval_recall, rows};
use crate::engine::Backbone;
use crate::engine::data::for_each_eval_batch;
use crate::error::{Result, TaskError};
use crate::inputs::rendered::RenderedInputs;
use crate::jsonl::for_each_json_line;
use crate::task::{EvalContext, Evaluation, StepOutput, Task, Tower};

/// One contrastive pair: a photo with its caption, or two related texts.
#[derive(Debug, Clone, PartialEq)]
pub enum ContrastItem {
    Image(CaptionPair),
    /// Two texts (both rendered), e.g. consecutive sentences.
    Texts(String, String),
}

/// A line of a text-pairs JSONL file: `{"first": "...", "second": "..."}` or `["...", "..."]`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum TextPairLine {
    Object { first: String, second: String },
    Array(String, String),
}

/// Reads text pairs from JSON Lines; an empty text or an empty file is an error naming it.
pub fn load_text_pairs(path: &Path) -> Result<Vec<(String, String)>> {
    let mut pairs = Vec::new();
    for_each_json_line(path, |line, l: TextPairLine| {
        let (a, b) = match l {
            TextPairLine::Object { first, second } => (first, second),
            TextPairLine::Array(a, b) => (a, b),
        };
        if a.trim().is_empty() || b.trim().is_empty() {
            return Err(TaskError::Data {
                path: path.to_path_buf(),
                msg: format!("line {line}: an empty text"),
            });
        }
        pairs.push((a, b));
        Ok(())
    })?;
    if pairs.is_empty() {
        return Err(TaskError::Data {
            path: path.to_path_buf(),
            msg: "no text pairs".into(),
        });
    }
    Ok(pairs)
}

/// The training list with text pairs at `share` of it: image pairs all kept, text pairs drawn
/// (seeded, cycling through a shuffled order) until they are `share` of the whole, so each
/// epoch holds that share and a shuffled batch holds it on average.
pub fn mix_text_pairs(
    images: Vec<CaptionPair>,
    texts: &[(String, String)],
    share: f64,
    seed: u64,
) -> Result<Vec<ContrastItem>> {
    if !(0.0..1.0).contains(&share) {
        return Err(TaskError::Config(format!(
            "[task] text_pair_share = {share}: must be in [0, 1)"
        )));
    }
    let n_text = if texts.is_empty() {
        0
    } else {
        (images.len() as f64 * share / (1.0 - share)).round() as usize
    };
    let mut order: Vec<usize> = (0..texts.len()).collect();
    let mut rng = StdRng::seed_from_u64(seed ^ 0x7e47_9a1c);
    order.shuffle(&mut rng);
    let mut items: Vec<ContrastItem> = images.into_iter().map(ContrastItem::Image).collect();
    items.extend((0..n_text).map(|k| {
        let (a, b) = &texts[order[k % order.len()]];
        ContrastItem::Texts(a.clone(), b.clone())
    }));
    Ok(items)
}

/// The model: CLIPPO alone.
#[derive(Module, Debug)]
pub struct ClippoPretrainModel {
    pub clippo: Clippo,
}

/// Contrastive training of a CLIPPO model.
pub struct ClippoPretrain {
    pub inputs: RenderedInputs,
    /// The text pairs file in use, for `task.json`.
    pub text_pairs: Option<PathBuf>,
    pub text_pair_share: f64,
}

impl Task for ClippoPretrain {
    type Model = ClippoPretrainModel;
    type Item = ContrastItem;
    /// (left: photo or first text, right: caption or second text), both `[S, S, 3]`.
    type Prepared = (Vec<f32>, Vec<f32>);
    type Batch = (Tensor<4>, Tensor<4>);

    fn name(&self) -> &'static str {
        "pretrain"
    }

    fn build_model(&self, backbone: &Backbone, _device: &Device) -> Result<ClippoPretrainModel> {
        Ok(ClippoPretrainModel {
            clippo: backbone.clippo(self.name())?.clippo.clone(),
        })
    }

    fn backbone<'a>(&self, model: &'a ClippoPretrainModel) -> Tower<'a> {
        Tower::Clippo(&model.clippo)
    }

    fn prepare(
        &self,
        item: &ContrastItem,
        _augment: Option<&mut StdRng>,
    ) -> Result<Self::Prepared> {
        match item {
            ContrastItem::Image(p) => {
                Ok((self.inputs.image(&p.image)?, self.inputs.text(&p.caption)?))
            }
            ContrastItem::Texts(a, b) => Ok((self.inputs.text(a)?, self.inputs.text(b)?)),
        }
    }

    fn collate(&self, items: Vec<Self::Prepared>, device: &Device) -> Self::Batch {
        let (left, right): (Vec<_>, Vec<_>) = items.into_iter().unzip();
        (
            self.inputs.stack(left, device),
            self.inputs.stack(right, device),
        )
    }

    fn train_step(&self, model: &ClippoPretrainModel, (left, right): Self::Batch) -> StepOutput {
        let out = model.clippo.forward(left, right);
        let loss = contrastive_loss(out.img.normalized, out.txt.normalized, out.t);
        StepOutput {
            loss: loss.total,
            logs: vec![("i2t", loss.i2t), ("t2i", loss.t2i)],
        }
    }

    /// The held-out contrastive loss (per batch, as in training) and retrieval recall@1 over
    /// the whole split; image-caption pairs only.
    fn evaluate(
        &self,
        model: &ClippoPretrainModel,
        items: &[ContrastItem],
        ctx: &EvalContext,
    ) -> Result<Evaluation> {
        let (mut loss_sum, mut n) = (0.0f64, 0usize);
        let (mut image_feats, mut text_feats) = (Vec::new(), Vec::new());
        let mut groups: Vec<&Path> = Vec::new();
        let skipped = for_each_eval_batch(self, items, ctx, |idx, (left, right)| {
            let out = model.clippo.forward(left, right);
            let (zi, zt) = (out.img.normalized, out.txt.normalized);
            let loss = contrastive_loss(zi.clone(), zt.clone(), out.t);
            loss_sum += f64::from(loss.total.into_scalar::<f32>()) * idx.len() as f64;
            n += idx.len();
            for &i in idx {
                if let ContrastItem::Image(p) = &items[i] {
                    groups.push(p.image.as_path());
                }
            }
            let keep: Vec<bool> = idx
                .iter()
                .map(|&i| matches!(items[i], ContrastItem::Image(_)))
                .collect();
            for ((zi, zt), keep) in rows(zi).into_iter().zip(rows(zt)).zip(keep) {
                if keep {
                    image_feats.push(zi);
                    text_feats.push(zt);
                }
            }
            Ok(())
        })?;
        let loss = loss_sum / n.max(1) as f64;
        let mut metrics = BTreeMap::from([("loss".to_string(), loss)]);
        metrics.extend(retrieval_recall(&image_feats, &text_feats, &groups));
        Ok(Evaluation {
            metric: -loss,
            metrics,
            predictions: None,
            skipped,
        })
    }

    fn export_info(&self) -> serde_json::Value {
        json!({"objective": "clippo", "family": "clippo", "text_pairs": self.text_pairs, "text_pair_share": self.text_pair_share})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn images(n: usize) -> Vec<CaptionPair> {
        (0..n)
            .map(|i| CaptionPair {
                image: PathBuf::from(format!("{i}.png")),
                caption: format!("caption {i}"),
            })
            .collect()
    }

    #[test]
    fn text_pairs_make_up_the_configured_share_of_the_training_list() {
        let texts: Vec<(String, String)> =
            (0..3).map(|i| (format!("a{i}"), format!("b{i}"))).collect();
        for (n, share, want) in [(30, 0.25, 10), (10, 0.5, 10), (12, 0.0, 0)] {
            let items = mix_text_pairs(images(n), &texts, share, 0).unwrap();
            let t = items
                .iter()
                .filter(|i| matches!(i, ContrastItem::Texts(..)))
                .count();
            assert_eq!((items.len() - t, t), (n, want), "share {share}");
        }
        // Cycling through all pairs before repeating one.
        let items = mix_text_pairs(images(9), &texts, 0.25, 3).unwrap();
        let drawn: std::collections::BTreeSet<_> = items
            .iter()
            .filter_map(|i| match i {
                ContrastItem::Texts(a, _) => Some(a.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(drawn.len(), 3);
        assert!(mix_text_pairs(images(4), &texts, 1.0, 0).is_err());
    }

    #[test]
    fn text_pair_files_are_checked_line_by_line() {
        let dir = std::env::temp_dir().join(format!("coca-text-pairs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.jsonl");
        std::fs::write(
            &good,
            "{\"first\": \"a\", \"second\": \"b\"}\n[\"c\", \"d\"]\n",
        )
        .unwrap();
        assert_eq!(
            load_text_pairs(&good).unwrap(),
            vec![("a".into(), "b".into()), ("c".into(), "d".into())]
        );
        let empty_text = dir.join("empty-text.jsonl");
        std::fs::write(
            &empty_text,
            "[\"c\", \"d\"]\n{\"first\": \" \", \"second\": \"b\"}\n",
        )
        .unwrap();
        let e = load_text_pairs(&empty_text).unwrap_err().to_string();
        assert!(
            e.contains("empty-text.jsonl") && e.contains("line 2"),
            "{e}"
        );
        let empty = dir.join("empty.jsonl");
        std::fs::write(&empty, "").unwrap();
        assert!(
            load_text_pairs(&empty)
                .unwrap_err()
                .to_string()
                .contains("no text pairs")
        );
        std::fs::remove_dir_all(dir).ok();
    }
}
