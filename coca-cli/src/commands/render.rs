//! `coca-cli render`: text as CLIPPO's pixels (big_vision's `render_unifont`), as a PNG.

use std::process::ExitCode;

use anyhow::{Context, Result};
use coca_core::clippo::render::{RenderOptions, render_text};

use crate::args::RenderArgs;

pub fn run(args: RenderArgs) -> Result<ExitCode> {
    let opts = RenderOptions {
        image_size: args.size,
        font_size: args.font_size,
        text_brightness: args.text_brightness,
        background_brightness: args.background_brightness,
        lower: !args.keep_case,
        ..RenderOptions::default()
    };
    let rendered = render_text(&args.text, &opts)?;
    rendered
        .save_png(&args.out)
        .with_context(|| format!("writing {}", args.out.display()))?;
    Ok(ExitCode::SUCCESS)
}
