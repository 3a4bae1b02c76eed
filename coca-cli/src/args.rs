//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Fine-tune and use CoCa (Contrastive Captioner) image-text models.
#[derive(Debug, Parser)]
#[command(name = "coca-cli", version, about)]
pub struct Cli {
    /// More log output (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Compute image and/or text embeddings and write them as safetensors.
    Embed(EmbedArgs),
    /// Print token ids (one JSON array per text).
    Tokenize(TokenizeArgs),
    /// Zero-shot classification of images against class names.
    ZeroShot(ZeroShotArgs),
    /// Generate captions for images (directories expand to the images in them).
    Caption(CaptionArgs),
    /// Fine-tune on a downstream task (or continue CoCa pretraining).
    Finetune(FinetuneArgs),
    /// Score predictions with a task's official metric (no model needed).
    #[command(subcommand)]
    Evaluate(EvaluateArgs),
    /// Run the exported model of a fine-tuning run on its validation data.
    Predict(PredictArgs),
    /// Write a model's backbone as an open_clip `safetensors` state dict.
    Export(ExportArgs),
    /// Generate the synthetic "shapes" world in the official dataset formats.
    Synth(SynthArgs),
    /// Render text as pixels the way CLIPPO sees it (big_vision's `render_unifont`).
    Render(RenderArgs),
}

/// A task name from the registry (`vqa`, `snli-ve`, ...), checked by clap.
fn task_parser() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(
        coca_tasks::registry::TASKS
            .iter()
            .map(|t| clap::builder::PossibleValue::new(t.name()).help(t.about())),
    )
}

#[derive(Debug, Args)]
pub struct FinetuneArgs {
    #[arg(value_parser = task_parser())]
    pub task: String,
    /// Run configuration (TOML). Not needed with --resume (the run's config.toml is used).
    #[arg(long, required_unless_present = "resume")]
    pub config: Option<PathBuf>,
    /// Override a setting: `section.key=value` (repeatable), e.g. `train.steps=100`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Continue the run in this directory from its newest valid checkpoint.
    #[arg(long, value_name = "RUN_DIR")]
    pub resume: Option<PathBuf>,
    /// Fail on unreadable images instead of skipping them.
    #[arg(long)]
    pub strict: bool,
}

/// `coca-cli evaluate <task> --<file> PATH ... [--json]`: one subcommand per registered task
/// with the files its [`TaskSpec::eval_files`](coca_tasks::registry::TaskSpec::eval_files)
/// names, built from the registry.
#[derive(Debug, Clone)]
pub struct EvaluateArgs {
    pub task: String,
    pub files: coca_tasks::registry::EvalFiles,
    /// Print the scores as JSON.
    pub json: bool,
}

impl clap::FromArgMatches for EvaluateArgs {
    fn from_arg_matches(matches: &clap::ArgMatches) -> Result<Self, clap::Error> {
        let Some((name, sub)) = matches.subcommand() else {
            return Err(clap::Error::new(clap::error::ErrorKind::MissingSubcommand));
        };
        let spec = coca_tasks::registry::find(name)
            .map_err(|e| clap::Error::raw(clap::error::ErrorKind::InvalidSubcommand, e))?;
        let mut files = coca_tasks::registry::EvalFiles::default();
        for f in spec.eval_files() {
            if let Some(p) = sub.get_one::<PathBuf>(f.flag) {
                files.0.insert(f.flag.to_string(), p.clone());
            }
        }
        Ok(Self {
            task: name.to_string(),
            files,
            json: sub.get_flag("json"),
        })
    }

    fn update_from_arg_matches(&mut self, matches: &clap::ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

impl clap::Subcommand for EvaluateArgs {
    fn augment_subcommands(cmd: clap::Command) -> clap::Command {
        let mut cmd = cmd.subcommand_required(true).arg_required_else_help(true);
        for spec in coca_tasks::registry::TASKS
            .iter()
            .filter(|t| !t.eval_files().is_empty())
        {
            let mut sub = clap::Command::new(spec.name()).about(spec.about());
            for f in spec.eval_files() {
                sub = sub.arg(
                    clap::Arg::new(f.flag)
                        .long(f.flag)
                        .required(true)
                        .value_name("PATH")
                        .value_parser(clap::value_parser!(PathBuf))
                        .help(f.help),
                );
            }
            sub = sub.arg(
                clap::Arg::new("json")
                    .long("json")
                    .action(clap::ArgAction::SetTrue)
                    .help("Print the scores as JSON"),
            );
            cmd = cmd.subcommand(sub);
        }
        cmd
    }

    fn augment_subcommands_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_subcommands(cmd)
    }

    fn has_subcommand(name: &str) -> bool {
        coca_tasks::registry::find(name).is_ok()
    }
}

#[derive(Debug, Args)]
pub struct PredictArgs {
    #[arg(value_parser = task_parser())]
    pub task: String,
    /// A finished fine-tuning run directory (with `export/`).
    #[arg(long)]
    pub run: PathBuf,
    /// Override a setting, e.g. `data.val=snli_ve_test.jsonl` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Where predictions and metrics go (default: RUN/predict).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["model", "run"])))]
pub struct ExportArgs {
    /// A model id (directory, file, hf-hub:<repo>, short name).
    #[arg(long)]
    pub model: Option<String>,
    /// A fine-tuning run directory (its best, else newest, checkpoint).
    #[arg(long)]
    pub run: Option<PathBuf>,
    /// Output file: an open_clip `.safetensors` (CoCa); for a CLIPPO model a big_vision `.npz`
    /// when it ends in `.npz`, else safetensors.
    #[arg(long)]
    pub out: PathBuf,
}

/// Size of the synthetic world.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SynthSizeArg {
    Tiny,
    Small,
    Medium,
}

#[derive(Debug, Args)]
pub struct SynthArgs {
    /// Output directory.
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[arg(long, value_enum, default_value_t = SynthSizeArg::Tiny)]
    pub size: SynthSizeArg,
}

/// Options shared by commands that load a model.
#[derive(Debug, Args)]
pub struct ModelArgs {
    /// Model id: a directory with open_clip files, a checkpoint file, `hf-hub:<owner/repo>`,
    /// or a short name (coca-b32, coca-b32-coco, coca-l14, coca-l14-coco); for `embed` and
    /// `zero-shot` also a CLIPPO big_vision `.npz` (path or `hf-hub:<owner>/<repo>/<file.npz>`)
    /// or a directory holding `clippo.npz`.
    #[arg(long, short)]
    pub model: String,
    /// tokenizer.json to use (default: the model's own, else the CLIP vocabulary built in).
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
    /// Device: cpu, cuda:N (needs --features libtorch) or cubecl-cuda:N (needs --features cuda).
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

#[derive(Debug, Args)]
pub struct EmbedArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Image file (repeatable).
    #[arg(long = "image")]
    pub images: Vec<PathBuf>,
    /// Text (repeatable).
    #[arg(long = "text")]
    pub texts: Vec<String>,
    /// Output safetensors file.
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct TokenizeArgs {
    /// tokenizer.json to use (default: the CLIP vocabulary built in).
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
    /// Pad / truncate to this many tokens.
    #[arg(long, default_value_t = 76)]
    pub context_length: usize,
    /// Texts to tokenize.
    #[arg(required = true)]
    pub texts: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ZeroShotArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Comma-separated class names.
    #[arg(long)]
    pub labels: String,
    /// Prompt template with `{}` for the class name (repeatable; default "a photo of a {}.").
    #[arg(long = "template")]
    pub templates: Vec<String>,
    /// How many classes to print per image.
    #[arg(long, default_value_t = 5)]
    pub top: usize,
    /// Print one JSON object per image instead of text.
    #[arg(long)]
    pub json: bool,
    /// Images to classify.
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
}

/// Decoding strategy of `caption`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Decode {
    Greedy,
    Beam,
    Sample,
}

#[derive(Debug, Args)]
pub struct CaptionArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Decoding strategy.
    #[arg(long, value_enum, default_value_t = Decode::Beam)]
    pub decode: Decode,
    /// Beams for beam search.
    #[arg(long, default_value_t = 4)]
    pub beams: usize,
    /// Beam search length penalty (score = logprob / length^penalty).
    #[arg(long, default_value_t = 1.0)]
    pub length_penalty: f32,
    /// Sampling: keep the k most likely tokens.
    #[arg(long)]
    pub top_k: Option<usize>,
    /// Sampling: keep the smallest set of tokens whose probability reaches p.
    #[arg(long)]
    pub top_p: Option<f32>,
    /// Sampling temperature.
    #[arg(long, default_value_t = 1.0)]
    pub temperature: f32,
    /// Sampling seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Repetition penalty (1 = off).
    #[arg(long, default_value_t = 1.0)]
    pub repetition_penalty: f32,
    /// Maximum number of generated tokens.
    #[arg(long, default_value_t = 20)]
    pub max_tokens: usize,
    /// Minimum number of generated tokens before the end token is allowed.
    #[arg(long, default_value_t = 5)]
    pub min_tokens: usize,
    /// Do not stop at the end token.
    #[arg(long)]
    pub ignore_eos: bool,
    /// Text the captions start with, e.g. "a picture of".
    #[arg(long)]
    pub prefix: Option<String>,
    /// Images per forward pass.
    #[arg(long, default_value_t = 8)]
    pub batch_size: usize,
    /// Decode without the key/value cache (re-run the prefix each step, as open_clip does).
    #[arg(long)]
    pub no_cache: bool,
    /// One JSON object per line: {"image", "caption", "tokens"}.
    #[arg(long)]
    pub json: bool,
    /// Images or directories of images.
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
}

/// `coca-cli render`: big_vision's `render_unifont` arguments.
#[derive(Debug, Args)]
pub struct RenderArgs {
    /// The text to render.
    #[arg(long)]
    pub text: String,
    /// Width and height of the image.
    #[arg(long, default_value_t = 224)]
    pub size: usize,
    /// Glyph size (only 16, Unifont's own, is supported).
    #[arg(long, default_value_t = 16)]
    pub font_size: usize,
    /// Grey level of the ink.
    #[arg(long, default_value_t = 0)]
    pub text_brightness: u8,
    /// Grey level of the background.
    #[arg(long, default_value_t = 127)]
    pub background_brightness: u8,
    /// Do not lower-case ASCII letters.
    #[arg(long)]
    pub keep_case: bool,
    /// Output PNG.
    #[arg(long)]
    pub out: PathBuf,
}
