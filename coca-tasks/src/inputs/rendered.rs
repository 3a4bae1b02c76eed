//! Host-side inputs of a CLIPPO backbone, all NHWC in `[-1, 1]`: photos as big_vision
//! evaluates them (`resize` = TensorFlow bilinear, `value_range(-1, 1)`), text rendered with
//! `render_unifont`, and text rendered into a band of a photo (CLIPPO's VQA: the question
//! shown together with the image; SNLI-VE: the hypothesis).
//!
//! There is no train-time augmentation (big_vision's CLIPPO training preprocessing is
//! `decode|resize|value_range` too; a flip or crop would also mangle rendered text).

use std::path::Path;

use burn::tensor::{Device, Tensor, TensorData};
use coca_core::clippo::preprocess::{preprocess_eval, resize_tf_bilinear, value_range};
use coca_core::clippo::render::{CELL, RenderOptions, render_text};
use coca_core::preprocess::load_image;
use serde::{Deserialize, Serialize};

use crate::error::{Result, TaskError};

/// Which edge of the image the text band sits on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Placement {
    /// Text above the (squeezed) photo.
    #[default]
    Top,
    /// Text below the photo.
    Bottom,
}

/// How text goes onto a photo: `[task] render = { placement = "top", rows = 2 }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextBand {
    #[serde(default)]
    pub placement: Placement,
    /// Height of the band in glyph rows (16 px each); the photo is resized into the rest.
    #[serde(default = "two")]
    pub rows: usize,
}

fn two() -> usize {
    2
}

impl Default for TextBand {
    fn default() -> Self {
        Self {
            placement: Placement::Top,
            rows: 2,
        }
    }
}

/// Image and text preprocessing of a CLIPPO model.
#[derive(Debug, Clone)]
pub struct RenderedInputs {
    /// The model's square input side.
    pub image_size: usize,
    /// Renderer settings (big_vision's defaults at `image_size`).
    pub render: RenderOptions,
    /// Where text goes in an (image, text) input.
    pub band: TextBand,
}

impl RenderedInputs {
    /// Inputs of a model taking `image_size`-pixel images, text banded as `band`; an error when
    /// the band leaves no room for the photo.
    pub fn new(image_size: usize, band: TextBand) -> Result<Self> {
        if band.rows == 0 || band.rows * CELL >= image_size {
            return Err(TaskError::Config(format!(
                "[task] render.rows = {}: the text band must be 1 to {} glyph rows at image size \
                 {image_size}",
                band.rows,
                (image_size.saturating_sub(1)) / CELL
            )));
        }
        Ok(Self {
            image_size,
            render: RenderOptions::with_size(image_size),
            band,
        })
    }

    /// A photo: `[S, S, 3]` values.
    pub fn image(&self, path: &Path) -> Result<Vec<f32>> {
        let img = load_image(path)?;
        Ok(preprocess_eval(&img, self.image_size as u32))
    }

    /// A text rendered alone: `[S, S, 3]` values.
    pub fn text(&self, text: &str) -> Result<Vec<f32>> {
        Ok(render_text(text, &self.render)?.to_unit_range())
    }

    /// A photo with `text` rendered into a band of `band.rows` glyph rows on the `placement`
    /// edge; the photo is resized (TF bilinear) into the remaining `S x (S - band)` pixels:
    /// `[S, S, 3]` values.
    pub fn image_with_text(&self, path: &Path, text: &str) -> Result<Vec<f32>> {
        let img = load_image(path)?;
        Ok(self
            .compose(&img, text)?
            .into_iter()
            .map(value_range)
            .collect())
    }

    /// The uint8 `[S, S, 3]` composite of [`image_with_text`](Self::image_with_text).
    pub fn compose(&self, img: &image::RgbImage, text: &str) -> Result<Vec<u8>> {
        let s = self.image_size;
        let band = self.band.rows * CELL;
        // Rows fill from the top and are cut at the bottom, so the first `band` rows of a
        // square rendering are the rendering into an `S x band` canvas.
        let rendered = render_text(text, &self.render)?.to_rgb();
        let text_rows = &rendered[..band * s * 3];
        let photo = resize_tf_bilinear(img, s as u32, (s - band) as u32).into_raw();
        let mut out = Vec::with_capacity(s * s * 3);
        match self.band.placement {
            Placement::Top => {
                out.extend_from_slice(text_rows);
                out.extend_from_slice(&photo);
            }
            Placement::Bottom => {
                out.extend_from_slice(&photo);
                out.extend_from_slice(text_rows);
            }
        }
        Ok(out)
    }

    /// Stacks `[S, S, 3]` inputs into `[N, S, S, 3]`.
    pub fn stack(&self, rows: Vec<Vec<f32>>, device: &Device) -> Tensor<4> {
        let s = self.image_size;
        let n = rows.len();
        Tensor::from_data(TensorData::new(rows.concat(), [n, s, s, 3]), device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn photo(w: u32, h: u32) -> image::RgbImage {
        image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 7) as u8, (y * 5) as u8, 200]))
    }

    #[test]
    fn the_band_holds_the_rendering_and_the_photo_the_rest() {
        let band = TextBand {
            placement: Placement::Top,
            rows: 2,
        };
        let inputs = RenderedInputs::new(64, band).unwrap();
        let img = photo(40, 30);
        let out = inputs.compose(&img, "is it red?").unwrap();
        let rendered = render_text("is it red?", &RenderOptions::with_size(64))
            .unwrap()
            .to_rgb();
        let band_bytes = 32 * 64 * 3;
        assert_eq!(out.len(), 64 * 64 * 3);
        assert_eq!(&out[..band_bytes], &rendered[..band_bytes]);
        assert!(out[..band_bytes].contains(&0), "ink in the band");
        let squeezed = resize_tf_bilinear(&img, 64, 32).into_raw();
        assert_eq!(&out[band_bytes..], &squeezed[..]);

        let bottom = RenderedInputs::new(
            64,
            TextBand {
                placement: Placement::Bottom,
                rows: 2,
            },
        )
        .unwrap()
        .compose(&img, "is it red?")
        .unwrap();
        assert_eq!(&bottom[..squeezed.len()], &squeezed[..]);
        assert_eq!(&bottom[squeezed.len()..], &rendered[..band_bytes]);
    }

    #[test]
    fn a_band_without_room_for_the_photo_is_refused() {
        for rows in [0, 4, 9] {
            let band = TextBand {
                placement: Placement::Top,
                rows,
            };
            let err = RenderedInputs::new(64, band).unwrap_err().to_string();
            assert!(err.contains("render.rows"), "{err}");
        }
        assert!(
            RenderedInputs::new(
                64,
                TextBand {
                    placement: Placement::Top,
                    rows: 3
                }
            )
            .is_ok()
        );
    }
}
