//! `coca-cli evaluate <task>`: official metrics on prediction files, no model needed.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use coca_tasks::metrics::accuracy::{Nlvr2Example, classification_accuracy, nlvr2_scores};
use coca_tasks::metrics::caption::evaluate_caption_files;
use coca_tasks::metrics::vqa::evaluate_vqa_files;
use coca_tasks::nlvr2::data::{load_nlvr2, read_predictions_csv};
use coca_tasks::snli_ve::data::load_snli_ve;

use crate::args::EvaluateCommand;

fn print(json: bool, value: serde_json::Value, text: impl FnOnce() -> String) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        println!("{}", text());
    }
    Ok(())
}

pub fn run(cmd: EvaluateCommand) -> Result<ExitCode> {
    match cmd {
        EvaluateCommand::Vqa {
            questions,
            annotations,
            results,
            json,
        } => {
            let s = evaluate_vqa_files(&questions, &annotations, &results)?;
            let value = serde_json::json!({
                "overall": s.overall,
                "per_answer_type": s.per_answer_type,
                "per_question_type": s.per_question_type,
            });
            print(json, value, || {
                // The official evaluator's report.
                let mut out = format!("Overall Accuracy is: {:.2}", s.overall);
                out.push_str("\nPer Question Type Accuracy is the following:");
                for (t, a) in &s.per_question_type {
                    out.push_str(&format!("\n{t} : {a:.2}"));
                }
                out.push_str("\nPer Answer Type Accuracy is the following:");
                for (t, a) in &s.per_answer_type {
                    out.push_str(&format!("\n{t} : {a:.2}"));
                }
                out
            })?;
        }
        EvaluateCommand::SnliVe {
            data,
            predictions,
            json,
        } => {
            let gold = load_snli_ve(&data, std::path::Path::new("."))?;
            let text = std::fs::read_to_string(&predictions)
                .with_context(|| format!("cannot read {}", predictions.display()))?;
            let mut by_line: BTreeMap<usize, String> = BTreeMap::new();
            let mut by_pair: BTreeMap<String, String> = BTreeMap::new();
            for (n, line) in text
                .lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
            {
                let v: serde_json::Value = serde_json::from_str(line).with_context(|| {
                    format!("{}:{}: malformed JSON", predictions.display(), n + 1)
                })?;
                let pred = v["prediction"].as_str().with_context(|| {
                    format!(
                        "{}:{}: no string `prediction`",
                        predictions.display(),
                        n + 1
                    )
                })?;
                if let Some(l) = v["line"].as_u64() {
                    by_line.insert(l as usize, pred.to_string());
                } else if let Some(p) = v["pairID"].as_str() {
                    by_pair.insert(p.to_string(), pred.to_string());
                } else {
                    bail!(
                        "{}:{}: needs `line` or `pairID`",
                        predictions.display(),
                        n + 1
                    );
                }
            }
            let mut preds = Vec::new();
            let mut labels = Vec::new();
            for e in &gold.examples {
                let p = by_line
                    .get(&e.line)
                    .or_else(|| e.pair_id.as_ref().and_then(|id| by_pair.get(id)))
                    .with_context(|| {
                        format!("no prediction for line {} of {}", e.line, data.display())
                    })?;
                preds.push(p.clone());
                labels.push(e.label.name());
            }
            let s = classification_accuracy(&preds, &labels)?;
            let value = serde_json::to_value(&s)?;
            print(json, value, || {
                let mut out = format!("accuracy: {:.4} ({}/{})", s.accuracy, s.correct, s.total);
                for (c, a) in &s.per_class {
                    out.push_str(&format!(
                        "\n{c}: {:.4} ({}/{})",
                        a.accuracy, a.correct, a.total
                    ));
                }
                out
            })?;
        }
        EvaluateCommand::Nlvr2 {
            data,
            predictions,
            json,
        } => {
            let gold = load_nlvr2(&data, std::path::Path::new("."))?;
            let preds: BTreeMap<String, bool> =
                read_predictions_csv(&predictions)?.into_iter().collect();
            let mut scored = Vec::new();
            for e in &gold {
                let label = e.label.with_context(|| {
                    format!("{} has no label in {}", e.identifier, data.display())
                })?;
                let prediction = *preds.get(&e.identifier).with_context(|| {
                    format!(
                        "no prediction for {} in {}",
                        e.identifier,
                        predictions.display()
                    )
                })?;
                scored.push(Nlvr2Example {
                    identifier: e.identifier.clone(),
                    label,
                    prediction,
                });
            }
            let s = nlvr2_scores(&scored)?;
            print(json, serde_json::to_value(&s)?, || {
                format!(
                    "accuracy: {:.4}\nconsistency: {:.4}",
                    s.accuracy, s.consistency
                )
            })?;
        }
        EvaluateCommand::Caption {
            annotations,
            results,
            json,
        } => {
            let s = evaluate_caption_files(&annotations, &results)?;
            let value = s.to_json();
            print(json, value.clone(), || {
                let mut out = String::new();
                if let serde_json::Value::Object(m) = &value {
                    for (k, v) in m {
                        out.push_str(&format!("{k}: {:.4}\n", v.as_f64().unwrap_or(f64::NAN)));
                    }
                }
                if let Some(note) = &s.meteor_note {
                    out.push_str(&format!("METEOR: not computed ({note})"));
                }
                out.trim_end().to_string()
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
