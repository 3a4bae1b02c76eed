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

/// A model of either family, as `embed` and `zero-shot` take it.
#[allow(clippy::large_enum_variant)] // one value per command
pub enum AnyModel {
    Coca(Pretrained, Option<ClipTokenizer>),
    Clippo(coca_core::clippo::Clippo),
}

/// Loads what `ModelArgs` names, of the family its id says (a `.npz`, or a directory with
/// `clippo.npz`, is CLIPPO). The CoCa tokenizer is resolved only when `need_tokenizer`.
pub fn load_any(args: &ModelArgs, need_tokenizer: bool) -> Result<(Device, AnyModel)> {
    if !coca_core::clippo::is_clippo_id(&args.model) {
        let (device, coca, tokenizer) = load(args, need_tokenizer)?;
        return Ok((device, AnyModel::Coca(coca, tokenizer)));
    }
    if let Some(tok) = &args.tokenizer {
        anyhow::bail!(
            "--tokenizer {}: {} is a CLIPPO model, which has no tokenizer (text is rendered)",
            tok.display(),
            args.model
        );
    }
    let device = parse_device(&args.device)?;
    let model = coca_core::clippo::load(&args.model, &device)?;
    Ok((device, AnyModel::Clippo(model)))
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
