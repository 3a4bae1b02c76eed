//! One module per subcommand; each is thin glue over the library crates.

mod caption;
mod embed;
mod evaluate;
mod finetune;
mod render;
mod synth;
mod tokenize;
mod zero_shot;

use std::process::ExitCode;

use anyhow::Result;
use coca_core::burn::tensor::Device;
use coca_core::hub::resolve_tokenizer;
use coca_core::tokenizer::ClipTokenizer;
use coca_core::{Pretrained, device::parse_device};

use crate::args::{Cli, Command, ModelArgs};

/// Runs the chosen subcommand.
pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Embed(a) => embed::run(a),
        Command::Tokenize(a) => tokenize::run(a),
        Command::ZeroShot(a) => zero_shot::run(a),
        Command::Caption(a) => caption::run(a),
        Command::Finetune(a) => finetune::run(a),
        Command::Evaluate(a) => evaluate::run(a),
        Command::Predict(a) => finetune::predict(a),
        Command::Export(a) => finetune::export(a),
        Command::Synth(a) => synth::run(a),
        Command::Render(a) => render::run(a),
    }
}

/// Loads what `ModelArgs` names. The tokenizer is resolved only when `need_tokenizer`.
pub fn load(
    args: &ModelArgs,
    need_tokenizer: bool,
) -> Result<(Device, Pretrained, Option<ClipTokenizer>)> {
    let device = parse_device(&args.device)?;
    let coca = Pretrained::load(&args.model, &device)?;
    let tokenizer = if need_tokenizer {
        let path = resolve_tokenizer(args.tokenizer.as_deref(), Some(&coca.files));
        let tokenizer = ClipTokenizer::load(path.as_deref())?;
        let name = path.map_or_else(
            || "the built-in CLIP tokenizer".to_string(),
            |p| p.display().to_string(),
        );
        coca.config.check_tokenizer(tokenizer.vocab_size(), &name)?;
        Some(tokenizer)
    } else {
        None
    };
    Ok((device, coca, tokenizer))
}
