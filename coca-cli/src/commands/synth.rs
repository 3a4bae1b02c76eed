//! `coca-cli synth`.

use std::process::ExitCode;

use anyhow::Result;
use coca_tasks::synth::{SynthSize, generate};

use crate::args::{SynthArgs, SynthSizeArg};

pub fn run(args: SynthArgs) -> Result<ExitCode> {
    let size = match args.size {
        SynthSizeArg::Tiny => SynthSize::Tiny,
        SynthSizeArg::Small => SynthSize::Small,
        SynthSizeArg::Medium => SynthSize::Medium,
    };
    let summary = generate(&args.out, args.seed, size)?;
    eprintln!(
        "wrote {} files under {}",
        summary.files_written,
        args.out.display()
    );
    println!("{}", serde_json::to_string_pretty(&summary)?);
    Ok(ExitCode::SUCCESS)
}
