//! The training loop shared by every task.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use burn::module::Module;
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::{Device, DeviceError, FloatDType};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use super::backbone::Backbone;
use super::checkpoint::{self, CheckpointData, TrainState};
use super::config::{Precision, RunConfig};
use super::data::{Order, Prefetcher};
use super::export;
use super::log::MetricsLog;
use super::optim::Optimizers;
use super::params::{cast_grads, clamp_logit_scale, clip_global_norm, drop_grads, param_infos};
use super::schedule::WarmupCosine;
use crate::error::{Result, TaskError};
use crate::task::{EvalContext, Evaluation, Task};
use coca_core::precision::cast_params;

/// How a run ended.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub run_dir: PathBuf,
    /// Optimiser steps done.
    pub steps: usize,
    /// Metrics of the last evaluation.
    pub final_metrics: BTreeMap<String, f64>,
    pub best_metric: Option<f64>,
    pub best_step: Option<usize>,
    /// Stopped by Ctrl-C (a checkpoint was written; `--resume` continues).
    pub interrupted: bool,
    /// Stopped early because the metric stopped improving.
    pub early_stopped: bool,
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
static HANDLER: std::sync::Once = std::sync::Once::new();

/// Installs a Ctrl-C handler that lets the current step finish and a checkpoint be written.
fn install_interrupt_handler() {
    HANDLER.call_once(|| {
        if let Err(e) = ctrlc::set_handler(|| {
            if INTERRUPTED.swap(true, Ordering::SeqCst) {
                eprintln!("second interrupt: exiting now");
                std::process::exit(130);
            }
            eprintln!(
                "interrupt: finishing the step and writing a checkpoint (Ctrl-C again to abort)"
            );
        }) {
            tracing::warn!("cannot install the Ctrl-C handler: {e}");
        }
    });
}

/// Requests the running training loop to stop after the current step (as Ctrl-C does).
pub fn request_stop() {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// The device of a run, configured for its precision (a device's float dtype is set once per
/// process, before its first tensor; asking again for the same dtype is fine).
pub fn run_device(config: &RunConfig) -> Result<Device> {
    let mut device = coca_core::device::parse_device(&config.run.device)?;
    let want = match config.train.precision {
        Precision::F32 => FloatDType::F32,
        Precision::Bf16 => FloatDType::BF16,
    };
    if coca_core::precision::device_dtype(&device) != want {
        device.configure(want).map_err(|e| {
            let why = match e {
                DeviceError::AlreadyInitialized { .. } => {
                    "the device already ran in another precision in this process".to_string()
                }
                other => other.to_string(),
            };
            TaskError::Config(format!(
                "cannot use {:?} on {}: {why}",
                config.train.precision, config.run.device
            ))
        })?;
    }
    Ok(device)
}

/// Trains `task` on `train`, evaluating on `val`, as `config` says.
pub struct Trainer<T: Task> {
    pub task: Arc<T>,
    pub config: RunConfig,
    pub backbone: Backbone,
    pub train: Arc<Vec<T::Item>>,
    pub val: Vec<T::Item>,
}

impl<T: Task> Trainer<T> {
    /// Runs (or, when the run directory has checkpoints and `resume` is set, continues) training.
    pub fn run(self, resume: bool) -> Result<RunOutcome> {
        let cfg = &self.config;
        let run_dir = cfg.run.out_dir.clone();
        std::fs::create_dir_all(&run_dir).map_err(|e| TaskError::io(&run_dir, e))?;
        if self.train.is_empty() {
            return Err(TaskError::Config("the training set is empty".into()));
        }
        let device = run_device(cfg)?;
        let ad = device.clone().autodiff();
        INTERRUPTED.store(false, Ordering::SeqCst);
        install_interrupt_handler();

        if self.backbone.family() == super::backbone::Family::Clippo
            && cfg.model.freeze == super::params::Freeze::TextTowers
        {
            return Err(TaskError::Config(
                "[model] freeze = \"text-towers\": a CLIPPO model has no text tower (its one \
                 ViT reads images and rendered text); use \"image-encoder\" or \"all-but-head\""
                    .into(),
            ));
        }
        let mut weights = Weights::new(
            self.task.build_model(&self.backbone, &device)?.train(),
            &device,
        );
        let mut state = TrainState {
            step: 0,
            micro_batches: 0,
            best_metric: None,
            best_step: None,
            evals_without_improvement: 0,
        };
        let params = param_infos(weights.model());
        let trainable: Vec<_> = params
            .iter()
            .filter(|p| !cfg.model.freeze.is_frozen(&p.path))
            .cloned()
            .collect();
        let mut optim = Optimizers::new(&trainable, &cfg.train.optim());
        let found = if resume {
            checkpoint::find_latest_valid(&run_dir)
        } else {
            checkpoint::LatestValid {
                loaded: None,
                skipped: Vec::new(),
            }
        };
        if resume && found.loaded.is_none() && !checkpoint::list(&run_dir).is_empty() {
            return Err(TaskError::Data {
                path: checkpoint::checkpoints_dir(&run_dir),
                msg: "no checkpoint could be read (all corrupt)".into(),
            });
        }
        let skipped = found.skipped;
        let resumed = found.loaded;
        let mut resume_record = None;
        if let Some((dir, data)) = resumed {
            if skipped.is_empty() {
                tracing::info!(checkpoint = %dir.display(), step = data.state.step, "resuming");
            } else {
                tracing::error!(
                    checkpoint = %dir.display(),
                    step = data.state.step,
                    skipped = skipped.len(),
                    "resuming from an OLDER checkpoint: the newer ones are corrupt and were \
                     skipped; training after step {} is redone",
                    data.state.step
                );
            }
            resume_record = Some(json!({
                "kind": "resume",
                "step": data.state.step,
                "from": dir.display().to_string(),
                "skipped_corrupt": skipped
                    .iter()
                    .map(|(d, why)| json!({"checkpoint": d.display().to_string(), "error": why}))
                    .collect::<Vec<_>>(),
            }));
            weights = weights.load(data.model, &dir.join("model.bpk"))?;
            // Parameter ids come from the checkpoint: rebuild the groups before loading moments.
            let params = param_infos(weights.model());
            let trainable: Vec<_> = params
                .iter()
                .filter(|p| !cfg.model.freeze.is_frozen(&p.path))
                .cloned()
                .collect();
            optim =
                Optimizers::new(&trainable, &cfg.train.optim()).load_bytes(&data.optim, &device)?;
            state = data.state;
        } else {
            coca_core::checkpoint::write_atomic(
                &run_dir.join("config.toml"),
                cfg.to_toml()?.as_bytes(),
            )?;
            export::write_backbone_info(&run_dir, &self.backbone)?;
        }
        let trainable_numel: usize = trainable.iter().map(|p| p.numel()).sum();
        let total_numel: usize = params.iter().map(|p| p.numel()).sum();
        tracing::info!(
            task = self.task.name(),
            params = total_numel,
            trainable = trainable_numel,
            train_items = self.train.len(),
            val_items = self.val.len(),
            "training"
        );

        let log = MetricsLog::open(
            &run_dir.join("metrics.jsonl"),
            (state.step > 0).then_some(state.step),
        )?;
        if let Some(record) = &resume_record {
            log.write(record)?;
        }
        let t = &cfg.train;
        let schedule = WarmupCosine {
            warmup_steps: t.warmup_steps,
            total_steps: t.steps,
            min_ratio: t.min_lr_ratio,
        };
        let order = Order::new(self.train.len(), t.batch_size, t.seed);
        let augment_seed = t.augments().then_some(t.seed ^ 0xA5A5_5A5A);
        let prefetch = Prefetcher::start(
            self.task.clone(),
            self.train.clone(),
            order.clone(),
            state.micro_batches,
            t.workers,
            t.prefetch,
            augment_seed,
        );
        let eval_ctx = EvalContext {
            device: device.clone(),
            batch_size: cfg.eval.batch_size,
            workers: t.workers,
            strict: cfg.run.strict,
        };
        let bar = if cfg.run.progress {
            let bar = ProgressBar::new(t.steps as u64);
            bar.set_style(
                ProgressStyle::with_template(
                    "{bar:30} {pos}/{len} steps  {msg}  [{elapsed} < {eta}]",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.set_position(state.step as u64);
            bar
        } else {
            ProgressBar::hidden()
        };

        let mut last_eval = Evaluation::default();
        let mut skipped_images = 0usize;
        let mut window = (Instant::now(), 0usize);
        let mut interrupted = false;
        let mut early_stopped = false;
        while state.step < t.steps {
            let factor = schedule.factor(state.step);
            let mut accumulator = GradientsAccumulator::<T::Model>::new();
            let mut loss_sum = 0.0f64;
            let mut logs: BTreeMap<&'static str, f64> = BTreeMap::new();
            for _ in 0..t.grad_accum {
                let prepared = prefetch.next()?;
                state.micro_batches = prepared.micro_batch + 1;
                for (idx, err) in &prepared.failures {
                    if cfg.run.strict {
                        return Err(TaskError::Config(format!(
                            "training item {idx}: {err} (strict mode)"
                        )));
                    }
                    skipped_images += 1;
                    bar.suspend(|| tracing::warn!("skipping training item {idx}: {err}"));
                }
                if prepared.items.is_empty() {
                    continue;
                }
                window.1 += prepared.items.len();
                let batch = self.task.collate(prepared.items, &ad);
                let model = weights.model();
                let out = self.task.train_step(model, batch);
                let loss_value = f64::from(out.loss.clone().into_scalar::<f32>());
                if !loss_value.is_finite() {
                    bar.abandon();
                    return Err(TaskError::NonFinite {
                        step: state.step + 1,
                        value: loss_value,
                    });
                }
                loss_sum += loss_value / t.grad_accum as f64;
                for (name, v) in out.logs {
                    *logs.entry(name).or_default() +=
                        f64::from(v.into_scalar::<f32>()) / t.grad_accum as f64;
                }
                let grads = (out.loss / t.grad_accum as f64).backward();
                let grads = weights.master_grads(GradientsParams::from_grads(grads, model));
                accumulator.accumulate(model, grads);
            }
            let mut grads = accumulator.grads();
            let model = weights.model();
            drop_grads(model, &mut grads, |p| cfg.model.freeze.is_frozen(&p.path));
            let grad_norm = if t.grad_clip > 0.0 {
                clip_global_norm(model, &mut grads, t.grad_clip)
            } else {
                f64::NAN
            };
            weights = weights.step(&mut optim, grads, factor);
            state.step += 1;
            bar.set_position(state.step as u64);
            bar.set_message(format!("loss {loss_sum:.4}  lr {:.2e}", t.lr_head * factor));

            if state.step.is_multiple_of(t.log_every.max(1)) || state.step == t.steps {
                let secs = window.0.elapsed().as_secs_f64().max(1e-9);
                let mut record = json!({
                    "kind": "train",
                    "step": state.step,
                    "epoch": order.epoch_at(state.micro_batches),
                    "loss": loss_sum,
                    "lr_head": t.lr_head * factor,
                    "lr_backbone": t.lr_backbone * factor,
                    "grad_norm": if grad_norm.is_finite() { json!(grad_norm) } else { json!(null) },
                    "img_per_s": window.1 as f64 / secs,
                    "skipped_images": skipped_images,
                });
                for (k, v) in &logs {
                    record[*k] = json!(v);
                }
                log.write(&record)?;
                window = (Instant::now(), 0);
            }
            interrupted = INTERRUPTED.load(Ordering::SeqCst);
            let last = state.step == t.steps;
            let eval_now = last
                || interrupted
                || (cfg.eval.every > 0 && state.step.is_multiple_of(cfg.eval.every));
            let mut improved = false;
            if eval_now && !self.val.is_empty() {
                let evaluation = bar.suspend(|| {
                    self.task
                        .evaluate(&weights.model().valid(), &self.val, &eval_ctx)
                })?;
                improved = state.best_metric.is_none_or(|b| evaluation.metric > b);
                if improved {
                    state.best_metric = Some(evaluation.metric);
                    state.best_step = Some(state.step);
                    state.evals_without_improvement = 0;
                } else {
                    state.evals_without_improvement += 1;
                }
                let mut record =
                    json!({"kind": "eval", "step": state.step, "metric": evaluation.metric});
                for (k, v) in &evaluation.metrics {
                    record[k] = json!(v);
                }
                log.write(&record)?;
                bar.suspend(|| {
                    tracing::info!(step = state.step, metric = evaluation.metric, "evaluation")
                });
                if let Some((name, bytes)) = &evaluation.predictions {
                    coca_core::checkpoint::write_atomic(&run_dir.join(name), bytes)?;
                }
                for s in &evaluation.skipped {
                    bar.suspend(|| tracing::warn!("evaluation skipped {s}"));
                }
                last_eval = evaluation;
                write_plots(&run_dir, log.path());
                if let Some(patience) = cfg.eval.early_stopping_patience {
                    early_stopped = state.evals_without_improvement >= patience && !last;
                }
            }
            let ckpt_now = last
                || interrupted
                || early_stopped
                || improved
                || (cfg.checkpoint.every > 0 && state.step.is_multiple_of(cfg.checkpoint.every));
            if ckpt_now {
                let data = CheckpointData {
                    state: state.clone(),
                    model: checkpoint::model_bytes(weights.master())?,
                    optim: optim.to_bytes()?,
                };
                checkpoint::save(&run_dir, &data)?;
                checkpoint::prune(&run_dir, cfg.checkpoint.keep_last, state.best_step);
            }
            if interrupted || early_stopped {
                break;
            }
        }
        drop(prefetch);
        bar.finish_and_clear();

        let mut final_metrics = last_eval.metrics.clone();
        final_metrics.insert("metric".into(), last_eval.metric);
        let summary = json!({
            "task": self.task.name(),
            "steps": state.step,
            "final": final_metrics,
            "best_metric": state.best_metric,
            "best_step": state.best_step,
            "interrupted": interrupted,
            "early_stopped": early_stopped,
            "skipped_images": skipped_images,
        });
        if !interrupted {
            let json = serde_json::to_vec_pretty(&summary)
                .map_err(|e| TaskError::Config(e.to_string()))?;
            coca_core::checkpoint::write_atomic(&run_dir.join("metrics.json"), &json)?;
            // Export the best model (by the validation metric), else the last one.
            let export_model = match state.best_step {
                Some(best) if best != state.step => {
                    let dir = checkpoint::dir_of(&run_dir, best);
                    let data = checkpoint::load(&dir)?;
                    checkpoint::load_model_bytes(weights.master().valid(), data.model, &dir)?
                }
                _ => weights.master().valid(),
            };
            export::export_run(
                &*self.task,
                &export_model,
                &self.backbone,
                &run_dir.join("export"),
            )?;
        }
        write_plots(&run_dir, log.path());
        Ok(RunOutcome {
            run_dir,
            steps: state.step,
            final_metrics,
            best_metric: state.best_metric,
            best_step: state.best_step,
            interrupted,
            early_stopped,
        })
    }
}

fn write_plots(run_dir: &Path, metrics: &Path) {
    let result = super::plot::charts_from_metrics(metrics)
        .and_then(|charts| super::plot::write_png(&run_dir.join("curves.png"), &charts));
    if let Err(e) = result {
        tracing::warn!("cannot draw the training curves: {e}");
    }
}

/// The weights a run trains. In f32 the optimiser updates the model itself. In bf16 it updates
/// an f32 master copy, and the model the forward and backward passes run is that copy cast to
/// bf16 after every step: updates far smaller than a weight (a learning rate of 2e-5 against
/// weights near 1) are lost when added in bf16, whose 8-bit significand holds about 2-3 digits.
/// Checkpoints and exports hold the master weights.
struct Weights<M> {
    model: M,
    master: Option<M>,
    /// The float dtype of `model`.
    dtype: FloatDType,
}

impl<M: Module + Clone> Weights<M> {
    /// `model` (built on `device`) as trained at the device's float dtype.
    fn new(model: M, device: &Device) -> Self {
        match coca_core::precision::device_dtype(device) {
            FloatDType::F32 => Self {
                model: cast_params(model, FloatDType::F32),
                master: None,
                dtype: FloatDType::F32,
            },
            dtype => Self::from_master(cast_params(model, FloatDType::F32), dtype),
        }
    }

    /// f32 master weights and their cast to `dtype` for the passes.
    fn from_master(master: M, dtype: FloatDType) -> Self {
        Self {
            model: cast_params(master.clone(), dtype),
            master: Some(master),
            dtype,
        }
    }

    /// The model the passes run (bf16 in bf16 runs).
    fn model(&self) -> &M {
        &self.model
    }

    /// The f32 weights the optimiser updates.
    fn master(&self) -> &M {
        self.master.as_ref().unwrap_or(&self.model)
    }

    /// Gradients in the master weights' dtype (f32), so that accumulation, the global norm
    /// and the optimiser moments are f32.
    fn master_grads(&self, grads: GradientsParams) -> GradientsParams {
        match self.master {
            Some(_) => cast_grads(&self.model, grads, FloatDType::F32),
            None => grads,
        }
    }

    /// One optimiser step (then `logit_scale` clamped) on the master weights.
    fn step(self, optim: &mut Optimizers, grads: GradientsParams, factor: f64) -> Self {
        match self.master {
            None => Self {
                model: clamp_logit_scale(optim.step(self.model, grads, factor)),
                ..self
            },
            Some(master) => {
                drop(self.model);
                let master = clamp_logit_scale(optim.step(master, grads, factor));
                Self::from_master(master, self.dtype)
            }
        }
    }

    /// Replaces the master weights by those of a checkpoint.
    fn load(self, bytes: Vec<u8>, source: &Path) -> Result<Self> {
        match self.master {
            None => Ok(Self {
                model: checkpoint::load_model_bytes(self.model, bytes, source)?,
                ..self
            }),
            Some(master) => {
                let master = checkpoint::load_model_bytes(master, bytes, source)?;
                Ok(Self::from_master(
                    cast_params(master, FloatDType::F32),
                    self.dtype,
                ))
            }
        }
    }
}
