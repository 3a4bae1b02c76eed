//! `coca-cli tokenize`.

use std::process::ExitCode;

use anyhow::{Result, bail};
use coca_core::hub::resolve_tokenizer;
use coca_core::tokenizer::ClipTokenizer;

use crate::args::TokenizeArgs;

pub fn run(args: TokenizeArgs) -> Result<ExitCode> {
    if args.context_length < 2 {
        bail!("--context-length must be at least 2 (start and end tokens)");
    }
    let tokenizer = ClipTokenizer::from_file(resolve_tokenizer(args.tokenizer.as_deref(), None)?)?;
    for text in &args.texts {
        let ids = tokenizer.encode(text, args.context_length)?;
        println!("{}", serde_json::to_string(&ids)?);
    }
    Ok(ExitCode::SUCCESS)
}
