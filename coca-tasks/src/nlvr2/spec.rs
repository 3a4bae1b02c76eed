//! How the SDK runs and scores NLVR2 (the task's [`TaskSpec`]).

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{Result, TaskError};
use crate::metrics::accuracy::{Nlvr2Example as Scored, nlvr2_scores};
use crate::registry::{EvalFile, EvalFiles, Report, TaskSpec};
use crate::run::{Done, Setup};

use super::data::{load_nlvr2, read_predictions_csv};
use super::{Nlvr2, Nlvr2Data};

/// NLVR2 in the registry.
pub struct Nlvr2Spec;

/// The registry entry.
pub static SPEC: Nlvr2Spec = Nlvr2Spec;

impl TaskSpec for Nlvr2Spec {
    fn name(&self) -> &'static str {
        "nlvr2"
    }

    fn about(&self) -> &'static str {
        "NLVR2: is a sentence true of a pair of images"
    }

    fn run(&self, setup: Setup<'_>) -> Result<Done> {
        let data: Nlvr2Data = setup.data()?;
        let (train, val) = setup.splits(|| data.load(), || data.load_val())?;
        let task = Nlvr2 {
            inputs: setup.inputs(self.name())?,
            heads: setup.decoder_heads(self.name())?,
        };
        setup.act(task, train, val)
    }

    fn eval_files(&self) -> &'static [EvalFile] {
        &[
            EvalFile {
                flag: "data",
                help: "Ground truth (`dev.json` / `test1.json`, JSON Lines)",
            },
            EvalFile {
                flag: "predictions",
                help: "Predictions CSV `identifier,prediction`",
            },
        ]
    }

    fn evaluate_files(&self, files: &EvalFiles) -> Result<Report> {
        let (data, predictions) = (files.get("data")?, files.get("predictions")?);
        let gold = load_nlvr2(data, Path::new("."))?;
        let preds: BTreeMap<String, bool> =
            read_predictions_csv(predictions)?.into_iter().collect();
        let mut scored = Vec::new();
        for e in &gold {
            let label = e.label.ok_or_else(|| TaskError::Data {
                path: data.to_path_buf(),
                msg: format!("{} has no label", e.identifier),
            })?;
            let prediction = *preds.get(&e.identifier).ok_or_else(|| TaskError::Data {
                path: predictions.to_path_buf(),
                msg: format!("no prediction for {}", e.identifier),
            })?;
            scored.push(Scored {
                identifier: e.identifier.clone(),
                label,
                prediction,
            });
        }
        let s = nlvr2_scores(&scored)?;
        let text = format!(
            "accuracy: {:.4}\nconsistency: {:.4}",
            s.accuracy, s.consistency
        );
        let json = serde_json::to_value(&s).map_err(|e| TaskError::Config(e.to_string()))?;
        Ok(Report { json, text })
    }
}
