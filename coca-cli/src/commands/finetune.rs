//! `coca-cli finetune`, `predict` and `export`.

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use coca_core::Pretrained;
use coca_core::burn::tensor::Device;
use coca_tasks::engine::RunConfig;
use coca_tasks::run::{finetune, predict as run_predict};

use crate::args::{ExportArgs, FinetuneArgs, PredictArgs};

pub fn run(args: FinetuneArgs) -> Result<ExitCode> {
    let (config, resume) = match (&args.resume, &args.config) {
        (Some(dir), _) => {
            let path = dir.join("config.toml");
            let mut cfg = RunConfig::load(&path, &args.overrides)
                .with_context(|| format!("cannot resume {}", dir.display()))?;
            cfg.run.out_dir = dir.clone();
            (cfg, true)
        }
        (None, Some(path)) => (RunConfig::load(path, &args.overrides)?, false),
        (None, None) => bail!("give --config F.toml or --resume RUN_DIR"),
    };
    let mut config = config;
    config.run.strict |= args.strict;
    let outcome = finetune(&args.task, config, resume)?;
    let summary = serde_json::json!({
        "run_dir": outcome.run_dir.display().to_string(),
        "steps": outcome.steps,
        "final": outcome.final_metrics,
        "best_metric": outcome.best_metric,
        "best_step": outcome.best_step,
        "interrupted": outcome.interrupted,
        "early_stopped": outcome.early_stopped,
    });
    println!("{}", serde_json::to_string_pretty(&summary)?);
    if outcome.interrupted {
        eprintln!(
            "interrupted: continue with `coca-cli finetune {} --resume {}`",
            args.task,
            outcome.run_dir.display()
        );
        return Ok(ExitCode::from(130));
    }
    Ok(ExitCode::SUCCESS)
}

pub fn predict(args: PredictArgs) -> Result<ExitCode> {
    let out = args.out.clone().unwrap_or_else(|| args.run.join("predict"));
    let evaluation = run_predict(&args.task, &args.run, &args.overrides, &out)?;
    println!(
        "{}",
        serde_json::to_string_pretty(
            &serde_json::json!({"metric": evaluation.metric, "metrics": evaluation.metrics})
        )?
    );
    for s in &evaluation.skipped {
        eprintln!("skipped: {s}");
    }
    if let Some((name, _)) = &evaluation.predictions {
        eprintln!("predictions written to {}", out.join(name).display());
    }
    Ok(if evaluation.skipped.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

pub fn export(args: ExportArgs) -> Result<ExitCode> {
    match (&args.model, &args.run) {
        (Some(id), _) if coca_core::clippo::is_clippo_id(id) => {
            let clippo = coca_core::clippo::load(id, &Device::flex())?;
            if args.out.extension().is_some_and(|e| e == "npz") {
                clippo.save_npz(&args.out)?;
            } else {
                clippo.save_safetensors(&args.out)?;
            }
        }
        (Some(id), _) => {
            let coca = Pretrained::load(id, &Device::flex())?;
            coca_core::checkpoint::save_open_clip(&coca.model, &args.out)?;
        }
        (None, Some(run)) => {
            let from = coca_tasks::engine::export::export_backbone_from_run(run, &args.out)?;
            eprintln!("exported the backbone of {}", from.display());
        }
        (None, None) => bail!("give --model or --run"),
    }
    eprintln!("wrote {}", args.out.display());
    Ok(ExitCode::SUCCESS)
}
