//! Text rendered as pixels with GNU Unifont, bit-exact with big_vision's `render_unifont`
//! (`big_vision/pp/proj/clippo/pp_ops.py`).
//!
//! The rules (docs/REFERENCE.md §5): ASCII-only lower-casing, then the first `max_chars` code
//! points; one 16x16 bit cell per code point (half-width glyphs in the left 8 columns; code
//! points without a glyph, and all above U+FFFF, are blank); each glyph trimmed to its ink
//! columns with `spacing` blank columns on the left, none on the right, at least `min_width`
//! wide; glyph `i` goes to row `floor(cumsum(w)_i / (size - max w))` (f32), so wrapping is
//! mid-word; rows 16 px tall from the top left, cut at the bottom; grey RGB output.

use crate::error::{CocaError, Result};

/// Glyph cell size of Unifont (and the only font size the renderer supports).
pub const CELL: usize = 16;

/// The arguments of `render_unifont`, with big_vision's defaults (`image_size` 224, the CLIPPO
/// training setting).
#[derive(Debug, Clone, PartialEq)]
pub struct RenderOptions {
    /// Width and height of the output image.
    pub image_size: usize,
    /// Glyph size in pixels; only 16 (no resampling) is supported.
    pub font_size: usize,
    /// Code points kept after lower-casing; 0 keeps all.
    pub max_chars: usize,
    /// Grey level of the background.
    pub background_brightness: u8,
    /// Grey level of the ink.
    pub text_brightness: u8,
    /// Lower-case ASCII `A-Z` (and nothing else) first.
    pub lower: bool,
    /// Keep every glyph 16 px wide instead of trimming it.
    pub monospace: bool,
    /// Blank columns kept left of a trimmed glyph.
    pub spacing: usize,
    /// Minimum width of a trimmed glyph (a space is this wide).
    pub min_width: usize,
}

impl Default for RenderOptions {
    fn default() -> Self {
        Self {
            image_size: 224,
            font_size: CELL,
            max_chars: 768,
            background_brightness: 127,
            text_brightness: 0,
            lower: true,
            monospace: false,
            spacing: 1,
            min_width: 4,
        }
    }
}

impl RenderOptions {
    /// The defaults at another image size.
    pub fn with_size(image_size: usize) -> Self {
        Self {
            image_size,
            ..Self::default()
        }
    }
}

/// A rendered text: `size x size` grey pixels, row-major.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// Width and height.
    pub size: usize,
    /// `size * size` grey levels, row-major.
    pub grey: Vec<u8>,
}

impl Rendered {
    /// The op's output layout: `H x W x 3` bytes with three equal channels.
    pub fn to_rgb(&self) -> Vec<u8> {
        self.grey.iter().flat_map(|&v| [v, v, v]).collect()
    }

    /// As an RGB image (for writing PNGs).
    pub fn to_image(&self) -> image::RgbImage {
        let side = u32::try_from(self.size).unwrap_or(u32::MAX);
        image::RgbImage::from_raw(side, side, self.to_rgb())
            .unwrap_or_else(|| image::RgbImage::new(0, 0))
    }

    /// Writes the image as an 8-bit RGB PNG (lossless: the op's exact pixels).
    pub fn save_png(&self, path: &std::path::Path) -> Result<()> {
        self.to_image()
            .save_with_format(path, image::ImageFormat::Png)
            .map_err(|e| CocaError::Image {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })
    }

    /// `value_range(-1, 1)` of the RGB image, `H x W x 3` (NHWC without the batch).
    pub fn to_unit_range(&self) -> Vec<f32> {
        self.to_rgb()
            .into_iter()
            .map(crate::clippo::preprocess::value_range)
            .collect()
    }
}

/// The 16x16 bit cell of a code point: `cell[y] >> (15 - x) & 1` is the pixel at column `x`.
/// Half-width glyphs fill the left 8 columns; a code point without a glyph (or above U+FFFF,
/// big_vision's upper-plane file being empty) is blank.
pub fn glyph_cell(cp: char) -> [u16; CELL] {
    let mut cell = [0u16; CELL];
    if u32::from(cp) > 0xFFFF {
        return cell;
    }
    match unifont::get_glyph(cp) {
        Some(unifont::Glyph::Halfwidth(rows)) => {
            for (c, &r) in cell.iter_mut().zip(rows) {
                *c = u16::from(r) << 8;
            }
        }
        Some(unifont::Glyph::Fullwidth(rows)) => cell = *rows,
        None => {}
    }
    cell
}

/// The columns `[first, last)` a glyph keeps after trimming (`trim_letter`).
fn trim(cell: &[u16; CELL], spacing: usize, min_width: usize) -> (usize, usize) {
    let ink = cell.iter().fold(0u16, |a, &r| a | r);
    let (a, b) = if ink == 0 {
        (0, 0)
    } else {
        (
            ink.leading_zeros() as usize,
            15 - ink.trailing_zeros() as usize,
        )
    };
    let first = a.saturating_sub(spacing);
    // `letter[:, first:last]` clamps the end at the cell's 16 columns.
    let last = (b + spacing).max(first + min_width).min(CELL);
    (first, last)
}

/// The code points the op renders: ASCII-lower-cased when asked, cut at `max_chars`.
pub fn render_codepoints(text: &str, opts: &RenderOptions) -> Vec<char> {
    let chars = text.chars().map(|c| {
        if opts.lower {
            c.to_ascii_lowercase()
        } else {
            c
        }
    });
    if opts.max_chars > 0 {
        chars.take(opts.max_chars).collect()
    } else {
        chars.collect()
    }
}

/// Renders `text` as `render_unifont` does.
///
/// Errors when `font_size` is not 16 (big_vision resamples the glyphs then; not supported) or
/// when the image is not wider than the widest glyph (the op divides by their difference).
pub fn render_text(text: &str, opts: &RenderOptions) -> Result<Rendered> {
    if opts.font_size != CELL {
        return Err(CocaError::Invalid(format!(
            "render: font size {} is not supported (only {CELL}, the glyphs' own size)",
            opts.font_size
        )));
    }
    let size = opts.image_size;
    let mut grey = vec![opts.background_brightness; size * size];
    let cps = render_codepoints(text, opts);
    if cps.is_empty() {
        return Ok(Rendered { size, grey });
    }
    // Each glyph: its cell and the columns it keeps.
    let glyphs: Vec<([u16; CELL], usize, usize)> = cps
        .iter()
        .map(|&c| {
            let cell = glyph_cell(c);
            let (first, last) = if opts.monospace {
                (0, CELL)
            } else {
                trim(&cell, opts.spacing, opts.min_width)
            };
            (cell, first, last)
        })
        .collect();
    let max_w = glyphs.iter().map(|g| g.2 - g.1).max().unwrap_or(0);
    if size <= max_w {
        return Err(CocaError::Invalid(format!(
            "render: image size {size} must exceed the widest glyph ({max_w} px)"
        )));
    }
    let div = (size - max_w) as f32;
    let mut cum = 0usize;
    let mut x = 0usize;
    let mut row = 0usize;
    for (cell, first, last) in glyphs {
        cum += last - first;
        // The op accumulates in int64 and casts to float32 before dividing.
        let r = ((cum as f32) / div).floor() as usize;
        if r != row {
            row = r;
            x = 0;
        }
        let y0 = row * CELL;
        if y0 >= size {
            break;
        }
        for col in first..last {
            if x >= size {
                break;
            }
            for (dy, &bits) in cell.iter().enumerate() {
                let y = y0 + dy;
                if y >= size {
                    break;
                }
                if (bits >> (15 - col)) & 1 == 1 {
                    grey[y * size + x] = opts.text_brightness;
                }
            }
            x += 1;
        }
    }
    Ok(Rendered { size, grey })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn space_is_four_blank_columns_and_letters_keep_one_on_the_left() {
        assert_eq!(trim(&glyph_cell(' '), 1, 4), (0, 4));
        // 'l' in Unifont: ink in columns 3..=4 of the half-width cell.
        let l = glyph_cell('l');
        let ink = l.iter().fold(0u16, |a, &r| a | r);
        let a = ink.leading_zeros() as usize;
        let b = 15 - ink.trailing_zeros() as usize;
        let (first, last) = trim(&l, 1, 4);
        assert_eq!(first, a - 1);
        assert_eq!(last, (b + 1).max(first + 4));
        // Ink in the last column: the slice end is clamped at 16.
        let mut edge = [0u16; CELL];
        edge[3] = 1;
        assert_eq!(trim(&edge, 1, 4), (14, 16));
    }

    #[test]
    fn lower_casing_is_ascii_only_and_happens_before_the_cut() {
        let opts = RenderOptions {
            max_chars: 3,
            ..RenderOptions::default()
        };
        assert_eq!(render_codepoints("ÉAbCD", &opts), vec!['É', 'a', 'b']);
    }

    #[test]
    fn other_font_sizes_are_refused() {
        let opts = RenderOptions {
            font_size: 8,
            ..RenderOptions::default()
        };
        assert!(render_text("a", &opts).is_err());
    }

    #[test]
    fn upper_planes_are_blank() {
        assert_eq!(glyph_cell('😀'), [0; CELL]);
        assert_ne!(glyph_cell('a'), [0; CELL]);
    }
}
