//! How the SDK runs and scores SNLI-VE (the task's [`TaskSpec`]).

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{Result, TaskError};
use crate::metrics::accuracy::classification_accuracy;
use crate::registry::{EvalFile, EvalFiles, Report, TaskSpec};
use crate::run::{Done, Setup};

use super::clippo::ClippoSnliVe;
use super::data::load_snli_ve;
use super::{SnliVe, SnliVeData, SnliVeTaskConfig};
use crate::engine::Backbone;

/// SNLI-VE in the registry.
pub struct SnliVeSpec;

/// The registry entry.
pub static SPEC: SnliVeSpec = SnliVeSpec;

impl TaskSpec for SnliVeSpec {
    fn name(&self) -> &'static str {
        "snli-ve"
    }

    fn about(&self) -> &'static str {
        "SNLI-VE: entailment / neutral / contradiction of a hypothesis about an image"
    }

    fn run(&self, setup: Setup<'_>) -> Result<Done> {
        let data: SnliVeData = setup.data()?;
        let (train, val) = setup.splits(|| data.load(), || data.load_val())?;
        let config: SnliVeTaskConfig = setup.task_config()?;
        match setup.backbone() {
            Backbone::Coca(_) => {
                let task = SnliVe {
                    inputs: setup.inputs(self.name())?,
                    heads: setup.decoder_heads(self.name())?,
                };
                setup.act(task, train, val)
            }
            Backbone::Clippo(b) => {
                let task = ClippoSnliVe {
                    heads: b.config.num_heads,
                    inputs: setup.rendered_inputs(self.name(), config.render)?,
                };
                setup.act(task, train, val)
            }
        }
    }

    fn eval_files(&self) -> &'static [EvalFile] {
        &[
            EvalFile {
                flag: "data",
                help: "Ground truth `snli_ve_{dev,test}.jsonl`",
            },
            EvalFile {
                flag: "predictions",
                help: "Predictions: JSON Lines with `line` (1-based line of the data file) or `pairID`, and `prediction`",
            },
        ]
    }

    fn evaluate_files(&self, files: &EvalFiles) -> Result<Report> {
        let (data, predictions) = (files.get("data")?, files.get("predictions")?);
        let gold = load_snli_ve(data, Path::new("."))?;
        let text =
            std::fs::read_to_string(predictions).map_err(|e| TaskError::io(predictions, e))?;
        let bad = |line: usize, msg: &str| TaskError::Data {
            path: predictions.to_path_buf(),
            msg: format!("line {line}: {msg}"),
        };
        let mut by_line: BTreeMap<usize, String> = BTreeMap::new();
        let mut by_pair: BTreeMap<String, String> = BTreeMap::new();
        for (n, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let v: serde_json::Value = serde_json::from_str(line).map_err(|e| TaskError::Json {
                path: predictions.to_path_buf(),
                line: Some(n + 1),
                msg: e.to_string(),
            })?;
            let pred = v["prediction"]
                .as_str()
                .ok_or_else(|| bad(n + 1, "no string `prediction`"))?;
            if let Some(l) = v["line"].as_u64() {
                by_line.insert(l as usize, pred.to_string());
            } else if let Some(p) = v["pairID"].as_str() {
                by_pair.insert(p.to_string(), pred.to_string());
            } else {
                return Err(bad(n + 1, "needs `line` or `pairID`"));
            }
        }
        let mut preds = Vec::new();
        let mut labels = Vec::new();
        for e in &gold.examples {
            let p = by_line
                .get(&e.line)
                .or_else(|| e.pair_id.as_ref().and_then(|id| by_pair.get(id)))
                .ok_or_else(|| TaskError::Data {
                    path: predictions.to_path_buf(),
                    msg: format!("no prediction for line {} of {}", e.line, data.display()),
                })?;
            preds.push(p.clone());
            labels.push(e.label.name());
        }
        let s = classification_accuracy(&preds, &labels)?;
        let mut text = format!("accuracy: {:.4} ({}/{})", s.accuracy, s.correct, s.total);
        for (c, a) in &s.per_class {
            text.push_str(&format!(
                "\n{c}: {:.4} ({}/{})",
                a.accuracy, a.correct, a.total
            ));
        }
        let json = serde_json::to_value(&s).map_err(|e| TaskError::Config(e.to_string()))?;
        Ok(Report { json, text })
    }
}
