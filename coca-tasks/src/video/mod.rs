//! Video action recognition as in the CoCa paper: every sampled frame goes through the shared
//! image encoder, all `T x (1 + N)` tokens of a clip go to one attentional pooler (no early
//! temporal fusion), then a linear softmax classifier.
//!
//! Frames `[B*T, 3, S, S]` -> `coca.visual.trunk` -> `[B*T, 1+N, W]` -> reshaped
//! `[B, T*(1+N), W]` (plus, when `temporal_embedding` is on, a learned `[T, W]` embedding added
//! to every token of frame `t`) -> pooler (query outputs averaged) -> classifier. Frame
//! sampling, multi-clip / multi-crop test views and the short-clip policy are in [`sampling`];
//! test views are averaged as softmax probabilities. `frozen` mode is as in
//! [`classify`](crate::classify): the encoder runs outside the autodiff graph.

pub mod data;
pub mod sampling;
pub mod source;
mod spec;
pub mod synth;

pub use spec::SPEC;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use burn::module::{Module, Param};
use burn::tensor::{Device, Int, Tensor, TensorData};
use coca_core::Coca;
use coca_core::preprocess::{
    preprocess_eval, preprocess_train_with, resize_bicubic, to_normalized_chw,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::classify::{
    ClassifyHead, Mode, encoder_tokens, encoder_width, evaluation_of, probability_rows,
    softmax_cross_entropy,
};
use crate::engine::Backbone;
use crate::engine::data::for_each_eval_batch;
use crate::error::{Result, TaskError};
use crate::inputs::Inputs;
use crate::task::{EvalContext, Evaluation, StepOutput, Task, Tower};
pub use data::ClipItem;
use data::{classes_of, index_clips, read_clip_list};
use source::FrameSource;

/// `[data]` of `video`: clip lists (Kinetics CSV or plain list) and the frames folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VideoData {
    pub train: PathBuf,
    pub val: PathBuf,
    /// Folder of the clip folders of decoded frames.
    pub frames: PathBuf,
}

impl VideoData {
    /// The classes (sorted training labels) and both splits.
    pub fn load(&self) -> Result<(Vec<String>, Vec<ClipItem>, Vec<ClipItem>)> {
        let train = read_clip_list(&self.train, &self.frames)?;
        let classes = classes_of(&train);
        let train = index_clips(&self.train, train, &classes)?;
        let val = self.load_val(&classes)?;
        tracing::info!(
            classes = classes.len(),
            train = train.len(),
            val = val.len(),
            "video clips listed"
        );
        Ok((classes, train, val))
    }

    /// Only the validation clips, labelled with `classes` (what `predict` scores).
    pub fn load_val(&self, classes: &[String]) -> Result<Vec<ClipItem>> {
        index_clips(&self.val, read_clip_list(&self.val, &self.frames)?, classes)
    }
}

fn eight() -> usize {
    8
}
fn one() -> usize {
    1
}

/// `[task]` of `video`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VideoTaskConfig {
    /// Frames sampled per clip (`T`).
    #[serde(default = "eight")]
    pub frames: usize,
    /// Temporal test views per clip (uniformly offset samplings), averaged.
    #[serde(default = "one")]
    pub clips: usize,
    /// Spatial test crops per view (1 = centre, 3 = both ends and centre), averaged.
    #[serde(default = "one")]
    pub crops: usize,
    /// A learned `[T, W]` embedding added to each frame's tokens.
    #[serde(default)]
    pub temporal_embedding: bool,
    /// Learned queries of the pooler (their outputs are averaged).
    #[serde(default = "one")]
    pub queries: usize,
    #[serde(default)]
    pub mode: Mode,
}

impl Default for VideoTaskConfig {
    fn default() -> Self {
        Self {
            frames: 8,
            clips: 1,
            crops: 1,
            temporal_embedding: false,
            queries: 1,
            mode: Mode::Frozen,
        }
    }
}

impl VideoTaskConfig {
    /// Rejects zero counts.
    pub fn validate(&self) -> Result<()> {
        for (k, v) in [
            ("frames", self.frames),
            ("clips", self.clips),
            ("crops", self.crops),
            ("queries", self.queries),
        ] {
            if v == 0 {
                return Err(TaskError::Config(format!("[task] {k} must be at least 1")));
            }
        }
        Ok(())
    }
}

/// The video head: optional temporal embedding, pooler over all tokens, classifier.
#[derive(Module, Debug)]
pub struct VideoHead {
    /// `[T, W]`, added to the tokens of frame `t`.
    pub temporal_embedding: Option<Param<Tensor<2>>>,
    pub pool: ClassifyHead,
}

/// CoCa + video head.
#[derive(Module, Debug)]
pub struct VideoModel {
    pub coca: Coca,
    pub head: VideoHead,
    #[module(skip)]
    pub frozen: bool,
    /// Frames per view (`T`).
    #[module(skip)]
    pub frames: usize,
}

impl VideoModel {
    /// Logits `[V, classes]` of `V` views of `T` frames each (`pixels [V*T, 3, S, S]`).
    pub fn logits(&self, pixels: Tensor<4>) -> Tensor<2> {
        let t = self.frames.max(1);
        let tokens = encoder_tokens(&self.coca, pixels, self.frozen);
        let [bt, n, w] = tokens.dims();
        let v = bt / t;
        let mut tokens = tokens.reshape([v, t, n, w]);
        if let Some(emb) = &self.head.temporal_embedding {
            tokens = tokens + emb.val().reshape([1, t, 1, w]);
        }
        self.head
            .pool
            .classify_tokens(tokens.reshape([v, t * n, w]))
    }
}

/// The `video` task.
pub struct Video {
    pub inputs: Inputs,
    /// Class names, sorted (index = class).
    pub classes: Vec<String>,
    pub config: VideoTaskConfig,
    /// Attention heads of the pooler (the image encoder's head count).
    pub heads: usize,
    /// Clips prepared so far that had fewer frames than `T` (frames repeated).
    pub short_clips: AtomicUsize,
}

/// Name of the predictions file.
pub const PREDICTIONS_FILE: &str = "predictions_video.csv";

/// One prepared clip: `views * T` frames `[3, S, S]` flattened, its class, the view count.
pub type PreparedClip = (Vec<f32>, usize, usize);

impl Video {
    /// A task over `classes`.
    pub fn new(
        inputs: Inputs,
        classes: Vec<String>,
        config: VideoTaskConfig,
        heads: usize,
    ) -> Self {
        Self {
            inputs,
            classes,
            config,
            heads,
            short_clips: AtomicUsize::new(0),
        }
    }

    /// Test-time crops of a frame: `[3, S, S]` each.
    fn eval_crops(&self, img: &image::RgbImage) -> Vec<Vec<f32>> {
        let cfg = &self.inputs.preprocess;
        if self.config.crops <= 1 {
            return vec![preprocess_eval(img, cfg)];
        }
        let size = u32::try_from(cfg.image_size).unwrap_or(u32::MAX);
        let (w, h) = img.dimensions();
        if w == 0 || h == 0 {
            return vec![preprocess_eval(img, cfg); self.config.crops];
        }
        let (short, long) = (w.min(h), w.max(h));
        let new_long = ((u64::from(size) * u64::from(long)) as f64 / f64::from(short)) as u32;
        let (nw, nh) = if w <= h {
            (size, new_long)
        } else {
            (new_long, size)
        };
        let resized = resize_bicubic(img, nw, nh);
        sampling::crop_offsets(new_long, size, self.config.crops)
            .into_iter()
            .map(|off| {
                let (x, y) = if w <= h { (0, off) } else { (off, 0) };
                let crop = image::imageops::crop_imm(&resized, x, y, size, size).to_image();
                to_normalized_chw(&crop, cfg)
            })
            .collect()
    }
}

impl Task for Video {
    type Model = VideoModel;
    type Item = ClipItem;
    type Prepared = PreparedClip;
    type Batch = (Tensor<4>, Tensor<1, Int>, usize);

    fn name(&self) -> &'static str {
        "video"
    }

    fn build_model(&self, backbone: &Backbone, device: &Device) -> Result<VideoModel> {
        let coca = backbone.coca(self.name())?.coca.clone();
        let width = encoder_width(&coca);
        let t = self.config.frames.max(1);
        Ok(VideoModel {
            coca,
            head: VideoHead {
                temporal_embedding: self
                    .config
                    .temporal_embedding
                    .then(|| coca_core::model::layers::lazy_normal([t, width], 0.02, device)),
                pool: ClassifyHead::with_queries(
                    width,
                    self.heads,
                    self.config.queries,
                    self.classes.len(),
                    device,
                ),
            },
            frozen: self.config.mode == Mode::Frozen,
            frames: t,
        })
    }

    fn backbone<'a>(&self, model: &'a VideoModel) -> Tower<'a> {
        Tower::Coca(&model.coca)
    }

    /// Lists and samples the clip's frames and decodes them. Errors (reported and skipped by
    /// the engine, or fatal in strict mode): a missing or empty clip folder, an unreadable frame,
    /// an undecodable video file (see [`source`]).
    fn prepare(&self, item: &ClipItem, augment: Option<&mut StdRng>) -> Result<PreparedClip> {
        let frames = FrameSource::open(&item.dir)?;
        let n = frames.len();
        let t = self.config.frames.max(1);
        if n == 0 {
            return Err(TaskError::Data {
                path: item.dir.clone(),
                msg: format!("clip {}: no frames", item.name),
            });
        }
        if n < t {
            self.short_clips.fetch_add(1, Ordering::Relaxed);
        }
        let mut cache: HashMap<usize, image::RgbImage> = HashMap::new();
        let mut decode = |i: usize| -> Result<image::RgbImage> {
            if let Some(img) = cache.get(&i) {
                return Ok(img.clone());
            }
            let img = frames.frame(i)?;
            cache.insert(i, img.clone());
            Ok(img)
        };
        let mut out = Vec::new();
        match augment {
            Some(rng) => {
                let idx = sampling::train_indices(n, t, rng);
                // One crop / RandAugment draw for the whole clip: every frame replays the seed.
                let seed: u64 = rng.random();
                for i in idx {
                    let img = decode(i)?;
                    out.extend(preprocess_train_with(
                        &img,
                        &self.inputs.preprocess,
                        self.inputs.crop,
                        self.inputs.randaugment.as_ref(),
                        &mut StdRng::seed_from_u64(seed),
                    ));
                }
                Ok((out, item.label, 1))
            }
            None => {
                let (clips, crops) = (self.config.clips.max(1), self.config.crops.max(1));
                // Views in (clip, crop) order, each T frames.
                let mut views: Vec<Vec<Vec<f32>>> = vec![Vec::new(); clips * crops];
                for k in 0..clips {
                    for i in sampling::eval_indices(n, t, clips, k) {
                        let img = decode(i)?;
                        for (j, c) in self.eval_crops(&img).into_iter().enumerate() {
                            views[k * crops + j].push(c);
                        }
                    }
                }
                for v in views {
                    out.extend(v.into_iter().flatten());
                }
                Ok((out, item.label, clips * crops))
            }
        }
    }

    fn collate(&self, items: Vec<PreparedClip>, device: &Device) -> Self::Batch {
        let n = items.len();
        let s = self.inputs.preprocess.image_size;
        let views = items.first().map_or(1, |i| i.2);
        let t = self.config.frames.max(1);
        let mut pixels = Vec::with_capacity(n * views * t * 3 * s * s);
        let mut labels = Vec::with_capacity(n);
        for (p, l, _) in items {
            pixels.extend(p);
            labels.push(l);
        }
        (
            Tensor::from_data(TensorData::new(pixels, [n * views * t, 3, s, s]), device),
            crate::head::label_tensor(labels, device),
            views,
        )
    }

    fn train_step(&self, model: &VideoModel, (pixels, labels, _): Self::Batch) -> StepOutput {
        StepOutput {
            loss: softmax_cross_entropy(model.logits(pixels), labels),
            logs: vec![],
        }
    }

    fn evaluate(
        &self,
        model: &VideoModel,
        items: &[ClipItem],
        ctx: &EvalContext,
    ) -> Result<Evaluation> {
        let short_before = self.short_clips.load(Ordering::Relaxed);
        let mut probs: Vec<(usize, Vec<f32>)> = Vec::new();
        let skipped = for_each_eval_batch(self, items, ctx, |idx, (pixels, _, views)| {
            let rows = probability_rows(model.logits(pixels));
            for (k, &i) in idx.iter().enumerate() {
                let mut mean = vec![0f32; self.classes.len()];
                for row in &rows[k * views..(k + 1) * views] {
                    for (m, p) in mean.iter_mut().zip(row) {
                        *m += p / views as f32;
                    }
                }
                probs.push((i, mean));
            }
            Ok(())
        })?;
        let short = self.short_clips.load(Ordering::Relaxed) - short_before;
        if short > 0 {
            tracing::warn!(
                clips = short,
                frames = self.config.frames,
                "evaluation clips with fewer frames than T: frames repeated (index floor(i*n/T))"
            );
        }
        let (evaluation, _) = evaluation_of(
            &probs,
            |i| items[i].label,
            "clip",
            |i| items[i].name.clone(),
            &self.classes,
            PREDICTIONS_FILE,
            skipped,
        )?;
        Ok(evaluation)
    }

    fn export_info(&self) -> serde_json::Value {
        json!({
            "classes": self.classes,
            "head": "attentional-pooler",
            "frames": self.config.frames,
            "clips": self.config.clips,
            "crops": self.config.crops,
            "temporal_embedding": self.config.temporal_embedding,
            "queries": self.config.queries,
            "query_reduce": "mean",
            "pooler_heads": self.heads,
            "mode": self.config.mode,
            "sampling": "train: TSN segments; eval: segment centres; fewer frames than T: floor(i*n/T)",
        })
    }
}

/// Scores a video predictions CSV (`clip,label,top5`) against a clip list (Kinetics CSV or
/// plain list; keys are the clip ids). A predicted clip that is not listed, a listed clip
/// without prediction and a repeated clip are errors naming them.
pub fn score_predictions_file(
    predictions: &std::path::Path,
    labels: &std::path::Path,
) -> Result<crate::classify::metrics::ClassifyScores> {
    let clips = read_clip_list(labels, std::path::Path::new(""))?;
    let gold: Vec<(String, String)> = clips.into_iter().map(|c| (c.name, c.label)).collect();
    let preds = crate::classify::metrics::read_predictions(predictions, "clip")?;
    crate::classify::metrics::score_keyed(predictions, &preds, &gold)
}

#[cfg(test)]
mod tests;
