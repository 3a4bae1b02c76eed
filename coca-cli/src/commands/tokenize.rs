//! `coca-cli tokenize`.

use std::process::ExitCode;

use anyhow::{Result, bail};
use coca_core::tokenizer::ClipTokenizer;

use crate::args::TokenizeArgs;

pub fn run(args: TokenizeArgs) -> Result<ExitCode> {
    if args.context_length < 2 {
        bail!("--context-length must be at least 2 (start and end tokens)");
    }
    let tokenizer = ClipTokenizer::load(args.tokenizer.as_deref())?;
    for text in &args.texts {
        let ids = tokenizer.encode(text, args.context_length)?;
        println!("{}", serde_json::to_string(&ids)?);
    }
    Ok(ExitCode::SUCCESS)
}
