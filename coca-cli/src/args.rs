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
}

/// Options shared by commands that load a model.
#[derive(Debug, Args)]
pub struct ModelArgs {
    /// Model id: a directory with open_clip files, a checkpoint file, `hf-hub:<owner/repo>`,
    /// or a short name (coca-b32, coca-b32-coco, coca-l14, coca-l14-coco).
    #[arg(long, short)]
    pub model: String,
    /// tokenizer.json to use (default: the model's own, else the hub's CLIP tokenizer).
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
    /// tokenizer.json to use (default: the hub's CLIP tokenizer).
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
