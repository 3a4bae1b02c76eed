//! `coca-cli evaluate <task>`: official metrics on prediction files, no model needed. The
//! scoring lives with each task (its `TaskSpec::evaluate_files`).

use std::process::ExitCode;

use anyhow::Result;

use crate::args::EvaluateArgs;

pub fn run(args: EvaluateArgs) -> Result<ExitCode> {
    let spec = coca_tasks::registry::find(&args.task)?;
    let report = spec.evaluate_files(&args.files)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report.json)?);
    } else {
        println!("{}", report.text);
    }
    Ok(ExitCode::SUCCESS)
}
