//! Image loading and open_clip-compatible preprocessing.
//!
//! The resampling reproduces Pillow's `Image.resize(..., BICUBIC)` on 8-bit RGB bit for bit
//! (separable, antialiased, 22-bit fixed-point coefficients), which is what open_clip's
//! torchvision transforms call. Evaluation: shortest side to `image_size`, centre crop,
//! scale to `[0, 1]`, normalise. Training: torchvision's `RandomResizedCrop` with
//! scale `(0.9, 1.0)` and ratio `(3/4, 4/3)`, no flip.
//!
//! Known differences from open_clip + Pillow, all outside the RGB resampling itself:
//! JPEG is decoded by zune-jpeg, not libjpeg-turbo (a few levels apart on chroma-subsampled
//! files); and the transforms here see RGB, whereas open_clip resizes in the file's own mode
//! when its loader does not convert first (premultiplied alpha for RGBA/LA, nearest
//! neighbour for palette and 1-bit images).

use std::io::Cursor;
use std::path::Path;

use image::{DynamicImage, ImageFormat, ImageReader, RgbImage};
use rand::Rng;

use crate::error::{CocaError, Result};
use crate::randaugment::RandAugment;

/// OpenAI CLIP per-channel mean (RGB), used by every open_clip CoCa checkpoint.
pub const OPENAI_CLIP_MEAN: [f32; 3] = [0.481_454_66, 0.457_827_5, 0.408_210_73];
/// OpenAI CLIP per-channel standard deviation (RGB).
#[allow(clippy::excessive_precision)] // written as open_clip writes them
pub const OPENAI_CLIP_STD: [f32; 3] = [0.268_629_54, 0.261_302_58, 0.275_777_11];

/// Scale range of the training-time random resized crop (fraction of the image area).
const TRAIN_SCALE: (f64, f64) = (0.9, 1.0);
/// Aspect-ratio range of the training-time random resized crop (width / height).
const TRAIN_RATIO: (f64, f64) = (3.0 / 4.0, 4.0 / 3.0);

/// Image preprocessing settings: square output side and normalisation constants.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PreprocessConfig {
    /// Side of the square model input, in pixels.
    pub image_size: usize,
    /// Per-channel mean subtracted after scaling to `[0, 1]`.
    pub mean: [f32; 3],
    /// Per-channel standard deviation divided by after subtracting the mean.
    pub std: [f32; 3],
}

impl PreprocessConfig {
    /// The OpenAI CLIP mean/std at the given input side.
    pub fn openai(image_size: usize) -> Self {
        Self {
            image_size,
            mean: OPENAI_CLIP_MEAN,
            std: OPENAI_CLIP_STD,
        }
    }
}

/// Reads and decodes an image file (format detected from its content) into 8-bit RGB.
pub fn load_image(path: impl AsRef<Path>) -> Result<RgbImage> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| CocaError::io(path, e))?;
    decode_image(&bytes, path)
}

/// Decodes image bytes (PNG, JPEG, BMP, GIF, WebP or TIFF, detected from the header) into
/// 8-bit RGB; `name` is the file the bytes came from, used in errors.
///
/// Like Pillow's `convert("RGB")`: alpha is discarded, grey is replicated, palettes are
/// expanded, 16-bit samples keep their high byte (as Pillow unpacks 16-bit RGB/RGBA/LA PNG;
/// for 16-bit greyscale Pillow instead clips values above 255), CMYK JPEG is converted by the
/// decoder (`c * k / 255` on Adobe-inverted data, as Pillow). The first frame of an animation
/// is used; EXIF orientation is not applied (open_clip does not apply it either). Truncated
/// files are errors, as in Pillow.
pub fn decode_image(bytes: &[u8], name: &Path) -> Result<RgbImage> {
    let image_err = |reason: String| CocaError::Image {
        path: name.to_path_buf(),
        reason,
    };
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| image_err(format!("cannot read header: {e}")))?;
    let format = reader.format();
    if format.is_none() {
        return Err(image_err(
            "unrecognised image format (expected PNG, JPEG, BMP, GIF, WebP or TIFF)".into(),
        ));
    }
    let decoded = reader.decode().map_err(|e| image_err(e.to_string()))?;
    // The JPEG (and lossy WebP) decoders can accept a cut-off file and fill in the missing
    // part; Pillow refuses it ("image file is truncated"), and so do we.
    let complete = match format {
        Some(ImageFormat::Jpeg) => jpeg_is_complete(bytes),
        Some(ImageFormat::WebP) => riff_is_complete(bytes),
        _ => true,
    };
    if !complete {
        let kind = if format == Some(ImageFormat::Jpeg) {
            "JPEG"
        } else {
            "WebP"
        };
        return Err(image_err(format!(
            "truncated {kind} file ({} bytes, no end of image)",
            bytes.len()
        )));
    }
    if decoded.width() == 0 || decoded.height() == 0 {
        return Err(image_err(format!(
            "image has no pixels ({}x{})",
            decoded.width(),
            decoded.height()
        )));
    }
    Ok(to_rgb8(decoded))
}

/// Whether a JPEG stream has an end-of-image marker after its first top-level scan header.
///
/// Marker segments are walked from SOI (so an EXIF thumbnail's own EOI inside APP1 does not
/// count); entropy-coded data cannot contain `FF D9`, so any later `FF D9` is the real EOI.
fn jpeg_is_complete(b: &[u8]) -> bool {
    const EOI: [u8; 2] = [0xFF, 0xD9];
    let has_eoi = |from: usize| {
        b.get(from..)
            .is_some_and(|r| r.windows(2).any(|w| w == EOI))
    };
    let mut i = 2; // after SOI
    loop {
        while b.get(i) == Some(&0xFF) && b.get(i + 1) == Some(&0xFF) {
            i += 1; // fill bytes
        }
        let (Some(&0xFF), Some(&marker)) = (b.get(i), b.get(i + 1)) else {
            // Not where a marker should be (the decoder skipped junk): search from here.
            return has_eoi(i);
        };
        match marker {
            0xD9 => return true,
            0x01 | 0xD0..=0xD7 => {
                i += 2; // markers without a length
                continue;
            }
            _ => {}
        }
        let (Some(&hi), Some(&lo)) = (b.get(i + 2), b.get(i + 3)) else {
            return false;
        };
        let next = i + 2 + usize::from(u16::from_be_bytes([hi, lo]));
        if marker == 0xDA {
            return has_eoi(next);
        }
        i = next;
    }
}

/// Whether a RIFF container (WebP) holds as many bytes as its header declares.
fn riff_is_complete(b: &[u8]) -> bool {
    match b.get(4..8) {
        Some(size) => {
            let declared = u32::from_le_bytes([size[0], size[1], size[2], size[3]]);
            b.len() as u64 >= u64::from(declared) + 8
        }
        None => false,
    }
}

/// Converts any decoded image to 8-bit RGB the way Pillow does for the common cases.
fn to_rgb8(img: DynamicImage) -> RgbImage {
    match img {
        DynamicImage::ImageRgb8(i) => i,
        DynamicImage::ImageLuma8(i) => expand(i.dimensions(), 1, i.as_raw(), |v| v),
        DynamicImage::ImageLumaA8(i) => expand(i.dimensions(), 2, i.as_raw(), |v| v),
        DynamicImage::ImageRgba8(i) => expand(i.dimensions(), 4, i.as_raw(), |v| v),
        // Pillow unpacks 16-bit PNG samples ("RGB;16B", "LA;16B", ...) by keeping the high byte.
        DynamicImage::ImageLuma16(i) => expand(i.dimensions(), 1, i.as_raw(), high_byte),
        DynamicImage::ImageLumaA16(i) => expand(i.dimensions(), 2, i.as_raw(), high_byte),
        DynamicImage::ImageRgb16(i) => expand(i.dimensions(), 3, i.as_raw(), high_byte),
        DynamicImage::ImageRgba16(i) => expand(i.dimensions(), 4, i.as_raw(), high_byte),
        other => other.to_rgb8(),
    }
}

/// RGB from interleaved samples with `channels` per pixel: the first three are kept (alpha
/// dropped), or a lone grey value (with or without alpha) is replicated.
fn expand<T: Copy>(
    (w, h): (u32, u32),
    channels: usize,
    src: &[T],
    to_u8: impl Fn(T) -> u8,
) -> RgbImage {
    let mut out = RgbImage::new(w, h);
    let dst: &mut [u8] = &mut out;
    for (d, px) in dst.chunks_exact_mut(3).zip(src.chunks_exact(channels)) {
        if channels >= 3 {
            d[0] = to_u8(px[0]);
            d[1] = to_u8(px[1]);
            d[2] = to_u8(px[2]);
        } else {
            d.fill(to_u8(px[0]));
        }
    }
    out
}

/// High byte of a 16-bit sample.
fn high_byte(v: u16) -> u8 {
    (v >> 8) as u8
}

// ---------------------------------------------------------------------------------------------
// Pillow-exact bicubic resampling (libImaging/Resample.c, 8 bits per channel).
// ---------------------------------------------------------------------------------------------

/// Fractional bits of Pillow's fixed-point coefficients (`32 - 8 - 2`).
const PRECISION_BITS: u32 = 22;

/// Pillow's bicubic kernel, a = -0.5, with its exact operation order.
fn bicubic_filter(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

/// Fixed-point filter taps for one axis: with `(start, len) = bounds[i]`, output `i` reads
/// inputs `start..start + len` with coefficients `kk[i * ksize..][..len]`.
struct Coeffs {
    ksize: usize,
    bounds: Vec<(usize, usize)>,
    kk: Vec<i32>,
}

/// Pillow's `precompute_coeffs` followed by `normalize_coeffs_8bpc`, for the full input range.
fn precompute_coeffs(in_size: usize, out_size: usize) -> Coeffs {
    // Pillow keeps the box as floats: scale = (double)(in1 - in0) / outSize.
    let scale = f64::from(in_size as f32) / out_size as f64;
    let filterscale = if scale < 1.0 { 1.0 } else { scale };
    let support = 2.0 * filterscale;
    let ksize = support.ceil() as usize * 2 + 1;
    let ss = 1.0 / filterscale;
    let mut bounds = Vec::with_capacity(out_size);
    let mut kk = vec![0i32; out_size * ksize];
    let mut weights = vec![0f64; ksize];
    for (xx, row) in kk.chunks_exact_mut(ksize).enumerate() {
        let center = (xx as f64 + 0.5) * scale;
        // C's (int) cast truncates toward zero; negative values are clamped to 0 anyway.
        let xmin = ((center - support + 0.5) as i64).max(0) as usize;
        let xmax = ((center + support + 0.5) as i64)
            .min(in_size as i64)
            .max(xmin as i64) as usize;
        let n = (xmax - xmin).min(ksize);
        let mut ww = 0.0;
        for (x, w) in weights[..n].iter_mut().enumerate() {
            *w = bicubic_filter(((x + xmin) as f64 - center + 0.5) * ss);
            ww += *w;
        }
        for (k, &w) in row[..n].iter_mut().zip(&weights[..n]) {
            let w = if ww != 0.0 { w / ww } else { w };
            let scaled = w * f64::from(1u32 << PRECISION_BITS);
            *k = if w < 0.0 {
                (-0.5 + scaled) as i32
            } else {
                (0.5 + scaled) as i32
            };
        }
        bounds.push((xmin, n));
    }
    Coeffs { ksize, bounds, kk }
}

/// Pillow's `clip8`: fixed-point accumulator to a byte.
fn clip8(v: i64) -> u8 {
    if v >= (1i64 << PRECISION_BITS << 8) {
        255
    } else if v <= 0 {
        0
    } else {
        (v >> PRECISION_BITS) as u8
    }
}

/// Horizontal pass over input rows `row0..row0 + rows` of an RGB buffer `in_w` wide.
fn resample_horizontal(src: &[u8], in_w: usize, row0: usize, rows: usize, c: &Coeffs) -> Vec<u8> {
    let out_w = c.bounds.len();
    let mut out = vec![0u8; out_w * rows * 3];
    for (y, out_row) in out.chunks_exact_mut(out_w * 3).enumerate() {
        let in_row = &src[(row0 + y) * in_w * 3..][..in_w * 3];
        for (xx, (&(xmin, n), px)) in c.bounds.iter().zip(out_row.chunks_exact_mut(3)).enumerate() {
            let k = &c.kk[xx * c.ksize..][..n];
            let taps = &in_row[xmin * 3..][..n * 3];
            let mut ss = [1i64 << (PRECISION_BITS - 1); 3];
            for (&kx, p) in k.iter().zip(taps.chunks_exact(3)) {
                let kx = i64::from(kx);
                ss[0] += i64::from(p[0]) * kx;
                ss[1] += i64::from(p[1]) * kx;
                ss[2] += i64::from(p[2]) * kx;
            }
            px[0] = clip8(ss[0]);
            px[1] = clip8(ss[1]);
            px[2] = clip8(ss[2]);
        }
    }
    out
}

/// Vertical pass; `row_offset` is subtracted from the tap rows (rows before it were not kept).
fn resample_vertical(src: &[u8], w: usize, row_offset: usize, c: &Coeffs, out: &mut [u8]) {
    let stride = w * 3;
    let mut acc = vec![0i64; stride];
    for (yy, (&(ymin, n), out_row)) in c
        .bounds
        .iter()
        .zip(out.chunks_exact_mut(stride))
        .enumerate()
    {
        let k = &c.kk[yy * c.ksize..][..n];
        let first = ymin - row_offset;
        acc.fill(1i64 << (PRECISION_BITS - 1));
        for (y, &ky) in k.iter().enumerate() {
            let ky = i64::from(ky);
            let row = &src[(first + y) * stride..][..stride];
            for (a, &p) in acc.iter_mut().zip(row) {
                *a += i64::from(p) * ky;
            }
        }
        for (o, &a) in out_row.iter_mut().zip(&acc) {
            *o = clip8(a);
        }
    }
}

/// Resizes to `width` x `height` exactly like Pillow's `Image.resize(size, Image.BICUBIC)` on
/// an RGB image (Pillow 13): two separable 8-bit passes, each skipped when its dimension is
/// unchanged; the horizontal pass runs first unless the height shrinks by more than twice
/// as many pixels as the width.
pub fn resize_bicubic(img: &RgbImage, width: u32, height: u32) -> RgbImage {
    let (in_w, in_h) = (img.width() as usize, img.height() as usize);
    let (out_w, out_h) = (width as usize, height as usize);
    if (in_w, in_h) == (out_w, out_h) {
        return img.clone();
    }
    let mut out = RgbImage::new(width, height);
    if out_w == 0 || out_h == 0 || in_w == 0 || in_h == 0 {
        // Nothing to produce, or nothing to sample (an empty accumulator rounds to black).
        return out;
    }
    let src: &[u8] = img.as_raw();
    let dst: &mut [u8] = &mut out;
    let horiz = (out_w != in_w).then(|| precompute_coeffs(in_w, out_w));
    let vert = (out_h != in_h).then(|| precompute_coeffs(in_h, out_h));
    match (horiz, vert) {
        (Some(horiz), Some(vert)) if vertical_pass_first(in_w, in_h, out_w, out_h) => {
            let mut tmp = vec![0u8; in_w * out_h * 3];
            resample_vertical(src, in_w, 0, &vert, &mut tmp);
            dst.copy_from_slice(&resample_horizontal(&tmp, in_w, 0, out_h, &horiz));
        }
        (Some(horiz), Some(vert)) => {
            // Only the rows the vertical pass reads are resampled horizontally.
            let first = vert.bounds.first().map_or(0, |b| b.0);
            let last = vert.bounds.last().map_or(0, |b| b.0 + b.1);
            let tmp = resample_horizontal(src, in_w, first, last - first, &horiz);
            resample_vertical(&tmp, out_w, first, &vert, dst);
        }
        (Some(horiz), None) => {
            dst.copy_from_slice(&resample_horizontal(src, in_w, 0, in_h, &horiz));
        }
        (None, Some(vert)) => resample_vertical(src, in_w, 0, &vert, dst),
        (None, None) => {}
    }
    out
}

/// Pillow 13's pass order (`ImagingResampleInner`): the vertical pass runs first when the
/// height shrinks by more than twice as many pixels as the width. Pillow 12.3 and earlier
/// always ran the horizontal pass first; the two agree whenever this returns `false`
/// (for the eval transform: every image that is not more than about twice as tall as wide).
fn vertical_pass_first(in_w: usize, in_h: usize, out_w: usize, out_h: usize) -> bool {
    let dy = in_h as i64 - out_h as i64;
    let dx = in_w as i64 - out_w as i64;
    dy > 0 && dy > dx * 2
}

/// torchvision `Resize(size)` (shortest side to `size`, long side `int(size * long / short)`,
/// Pillow bicubic) followed by `CenterCrop(size)` (offsets rounded half to even).
pub fn resize_shortest_center_crop(img: &RgbImage, size: u32) -> RgbImage {
    let (w, h) = img.dimensions();
    if w == 0 || h == 0 || size == 0 {
        return RgbImage::new(size, size);
    }
    let (short, long) = if w <= h { (w, h) } else { (h, w) };
    let new_long = ((u64::from(size) * u64::from(long)) as f64 / f64::from(short)) as u32;
    let (new_w, new_h) = if w <= h {
        (size, new_long)
    } else {
        (new_long, size)
    };
    let resized = resize_bicubic(img, new_w, new_h);
    center_crop(&resized, size)
}

/// torchvision's `center_crop` for a crop no larger than the image.
fn center_crop(img: &RgbImage, size: u32) -> RgbImage {
    let (w, h) = img.dimensions();
    if (w, h) == (size, size) {
        return img.clone();
    }
    let top = (f64::from(h.saturating_sub(size)) / 2.0).round_ties_even() as u32;
    let left = (f64::from(w.saturating_sub(size)) / 2.0).round_ties_even() as u32;
    image::imageops::crop_imm(img, left, top, size.min(w), size.min(h)).to_image()
}

/// torchvision `RandomResizedCrop(size, scale=(0.9, 1.0), ratio=(3/4, 4/3), BICUBIC)`: picks
/// a crop box (10 attempts, then the centre-crop fallback) and resizes it to `size` x `size`
/// with Pillow-exact bicubic resampling.
pub fn random_resized_crop(img: &RgbImage, size: u32, rng: &mut impl Rng) -> RgbImage {
    let (width, height) = img.dimensions();
    if width == 0 || height == 0 || size == 0 {
        return RgbImage::new(size, size);
    }
    let (top, left, h, w) = random_crop_box(width, height, rng);
    let crop = image::imageops::crop_imm(img, left, top, w, h).to_image();
    resize_bicubic(&crop, size, size)
}

/// torchvision `RandomResizedCrop.get_params`: `(top, left, height, width)`.
fn random_crop_box(width: u32, height: u32, rng: &mut impl Rng) -> (u32, u32, u32, u32) {
    let area = f64::from(width) * f64::from(height);
    let (log_lo, log_hi) = (TRAIN_RATIO.0.ln(), TRAIN_RATIO.1.ln());
    for _ in 0..10 {
        let target_area = area * rng.random_range(TRAIN_SCALE.0..TRAIN_SCALE.1);
        let aspect_ratio = rng.random_range(log_lo..log_hi).exp();
        let w = (target_area * aspect_ratio).sqrt().round_ties_even();
        let h = (target_area / aspect_ratio).sqrt().round_ties_even();
        if w > 0.0 && w <= f64::from(width) && h > 0.0 && h <= f64::from(height) {
            let (w, h) = (w as u32, h as u32);
            let top = rng.random_range(0..=height - h);
            let left = rng.random_range(0..=width - w);
            return (top, left, h, w);
        }
    }
    // Fallback to a central crop with the ratio clamped into range.
    let in_ratio = f64::from(width) / f64::from(height);
    let (w, h) = if in_ratio < TRAIN_RATIO.0 {
        let h = (f64::from(width) / TRAIN_RATIO.0).round_ties_even() as u32;
        (width, h.clamp(1, height))
    } else if in_ratio > TRAIN_RATIO.1 {
        let w = (f64::from(height) * TRAIN_RATIO.1).round_ties_even() as u32;
        (w.clamp(1, width), height)
    } else {
        (width, height)
    };
    ((height - h) / 2, (width - w) / 2, h, w)
}

/// torchvision `ToTensor` + `Normalize`: `(p / 255 - mean) / std` in f32, laid out `[3, H, W]`.
pub fn to_normalized_chw(img: &RgbImage, cfg: &PreprocessConfig) -> Vec<f32> {
    let plane = img.width() as usize * img.height() as usize;
    let mut out = vec![0f32; 3 * plane];
    for (i, px) in img.as_raw().chunks_exact(3).enumerate() {
        for c in 0..3 {
            out[c * plane + i] = (f32::from(px[c]) / 255.0 - cfg.mean[c]) / cfg.std[c];
        }
    }
    out
}

/// Evaluation preprocessing (open_clip `image_transform(is_train=False)`, resize mode
/// "shortest"): `[3, S, S]` floats with `S = cfg.image_size`.
pub fn preprocess_eval(img: &RgbImage, cfg: &PreprocessConfig) -> Vec<f32> {
    let size = side(cfg);
    to_normalized_chw(&resize_shortest_center_crop(img, size), cfg)
}

/// Training preprocessing (open_clip `image_transform(is_train=True)` without extra
/// augmentation): random resized crop, no flip, `[3, S, S]` floats.
pub fn preprocess_train(img: &RgbImage, cfg: &PreprocessConfig, rng: &mut impl Rng) -> Vec<f32> {
    preprocess_train_with(img, cfg, true, None, rng)
}

/// Training preprocessing with optional extras: RandomResizedCrop when `crop` (else the eval
/// resize and centre crop), then RandAugment when given (timm's order), `[3, S, S]` floats.
/// Areas uncovered by RandAugment's geometric operations take the normalisation mean colour.
pub fn preprocess_train_with(
    img: &RgbImage,
    cfg: &PreprocessConfig,
    crop: bool,
    randaugment: Option<&RandAugment>,
    rng: &mut impl Rng,
) -> Vec<f32> {
    let size = side(cfg);
    let mut out = if crop {
        random_resized_crop(img, size, rng)
    } else {
        resize_shortest_center_crop(img, size)
    };
    if let Some(ra) = randaugment {
        let fill = cfg
            .mean
            .map(|m| (m * 255.0).round().clamp(0.0, 255.0) as u8);
        out = ra.apply(out, fill, rng);
    }
    to_normalized_chw(&out, cfg)
}

/// The configured side as `u32` (saturating: no real input side exceeds it).
fn side(cfg: &PreprocessConfig) -> u32 {
    u32::try_from(cfg.image_size).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageBuffer, Luma, LumaA, Rgb, Rgba};
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use std::path::PathBuf;

    fn fixture_dir() -> PathBuf {
        let dir = crate::test_paths::fixture("coca-tiny");
        assert!(
            dir.join("reference.safetensors").is_file(),
            "fixture missing: {} (expected tests/fixtures/coca-tiny of the repository)",
            dir.display()
        );
        dir
    }

    /// A fresh scratch directory unique to this process and test.
    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("coca-preprocess-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        dir
    }

    #[test]
    fn eval_matches_open_clip_fixture() {
        let dir = fixture_dir();
        let bytes = std::fs::read(dir.join("reference.safetensors")).expect("read fixture");
        let st = safetensors::SafeTensors::deserialize(&bytes).expect("parse fixture");
        let t = st.tensor("pixel_values").expect("pixel_values in fixture");
        assert_eq!(t.dtype(), safetensors::Dtype::F32);
        assert_eq!(t.shape(), &[3, 3, 64, 64]);
        let expected: Vec<f32> = t
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let cfg = PreprocessConfig::openai(64);
        let per_image = 3 * 64 * 64;
        assert_eq!(expected.len(), 3 * per_image);
        for i in 0..3 {
            let img =
                load_image(dir.join(format!("images/img{i}.png"))).expect("load fixture image");
            let got = preprocess_eval(&img, &cfg);
            // Pillow's fixed-point bicubic, torchvision's crop offsets and the same f32
            // arithmetic for ToTensor + Normalize: bit for bit open_clip's pixels.
            crate::test_compare::assert_close(
                &format!("pixel_values[{i}]"),
                &got,
                &expected[i * per_image..][..per_image],
                crate::test_compare::Tol::EXACT,
            );
        }
    }

    #[test]
    fn resize_keeps_aspect_and_crops_centre() {
        let img = RgbImage::from_fn(97, 61, |x, y| Rgb([x as u8, y as u8, (x ^ y) as u8]));
        let out = resize_shortest_center_crop(&img, 32);
        assert_eq!(out.dimensions(), (32, 32));
        // Same size: a no-op, as torchvision returns the image unchanged.
        let same = RgbImage::from_fn(20, 20, |x, y| Rgb([x as u8, y as u8, 7]));
        assert_eq!(resize_shortest_center_crop(&same, 20), same);
        // A constant image stays constant through the resampler.
        let flat = RgbImage::from_pixel(50, 13, Rgb([200, 10, 99]));
        let r = resize_bicubic(&flat, 17, 40);
        assert!(r.pixels().all(|p| *p == Rgb([200, 10, 99])));
    }

    /// The test pattern behind the pinned Pillow outputs below.
    fn pattern(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            Rgb([
                ((x * 37 + y * 11) % 256) as u8,
                ((x * x + y * 53) % 256) as u8,
                ((x * y * 7 + 13) % 256) as u8,
            ])
        })
    }

    #[test]
    fn resize_matches_pinned_pillow_13_output() {
        // Image.fromarray(pattern).resize((w, h), Image.BICUBIC) with Pillow 13.0.0.
        // 6x19 -> 4x5 runs the vertical pass first, 19x7 -> 5x3 the horizontal one.
        let vertical_first: [u8; 60] = [
            27, 88, 16, 79, 91, 31, 137, 99, 47, 195, 110, 67, 67, 109, 23, 119, 112, 74, 183, 120,
            137, 204, 131, 155, 110, 122, 31, 167, 125, 127, 201, 133, 169, 69, 144, 82, 153, 130,
            40, 213, 133, 162, 123, 141, 94, 47, 152, 155, 200, 121, 51, 155, 124, 168, 43, 132,
            130, 100, 143, 121,
        ];
        let horizontal_first: [u8; 45] = [
            70, 42, 20, 153, 68, 39, 96, 133, 64, 146, 168, 88, 98, 85, 97, 96, 160, 44, 159, 174,
            125, 118, 129, 154, 122, 101, 126, 122, 156, 145, 124, 74, 76, 139, 87, 144, 135, 99,
            99, 127, 155, 130, 146, 99, 121,
        ];
        assert_eq!(
            resize_bicubic(&pattern(6, 19), 4, 5).as_raw()[..],
            vertical_first
        );
        assert_eq!(
            resize_bicubic(&pattern(19, 7), 5, 3).as_raw()[..],
            horizontal_first
        );
    }

    #[test]
    fn png_variants_become_rgb() {
        let dir = temp_dir("variants");
        let gray = dir.join("gray.png");
        ImageBuffer::<Luma<u8>, _>::from_pixel(5, 4, Luma([100]))
            .save(&gray)
            .unwrap();
        let gray_alpha = dir.join("gray_alpha.png");
        ImageBuffer::<LumaA<u8>, _>::from_pixel(5, 4, LumaA([60, 0]))
            .save(&gray_alpha)
            .unwrap();
        let rgba = dir.join("rgba.png");
        ImageBuffer::<Rgba<u8>, _>::from_pixel(5, 4, Rgba([10, 20, 30, 0]))
            .save(&rgba)
            .unwrap();
        let rgb16 = dir.join("rgb16.png");
        ImageBuffer::<Rgb<u16>, _>::from_pixel(5, 4, Rgb([0x1234, 0xffff, 0x00ff]))
            .save(&rgb16)
            .unwrap();
        let gray16 = dir.join("gray16.png");
        ImageBuffer::<Luma<u16>, _>::from_pixel(5, 4, Luma([0xab00]))
            .save(&gray16)
            .unwrap();
        let cases = [
            (&gray, [100, 100, 100]),
            (&gray_alpha, [60, 60, 60]),
            (&rgba, [10, 20, 30]),
            (&rgb16, [0x12, 0xff, 0x00]),
            (&gray16, [0xab, 0xab, 0xab]),
        ];
        for (path, px) in cases {
            let img = load_image(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(img.dimensions(), (5, 4), "{}", path.display());
            assert!(img.pixels().all(|p| p.0 == px), "{}", path.display());
            let x = preprocess_eval(&img, &PreprocessConfig::openai(8));
            assert_eq!(x.len(), 3 * 8 * 8);
        }
        // Decoded by content, not by extension.
        let disguised = dir.join("really_png.jpg");
        std::fs::copy(&gray, &disguised).unwrap();
        assert_eq!(load_image(&disguised).unwrap().dimensions(), (5, 4));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn bad_files_are_errors_naming_the_path() {
        let dir = temp_dir("bad");
        let good = dir.join("good.png");
        RgbImage::from_fn(40, 30, |x, y| Rgb([x as u8, y as u8, 3]))
            .save(&good)
            .unwrap();
        let bytes = std::fs::read(&good).unwrap();
        let truncated = dir.join("truncated.png");
        std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
        let text = dir.join("notes.png");
        std::fs::write(&text, "this is not an image\n").unwrap();
        for path in [&truncated, &text] {
            let err = load_image(path).expect_err("a broken file must not load");
            assert!(
                matches!(&err, CocaError::Image { path: p, .. } if p == path),
                "{}: expected an Image error, got {err:?}",
                path.display()
            );
            assert!(err.to_string().contains(&*path.to_string_lossy()), "{err}");
        }
        // The JPEG decoder itself accepts cut-off files; Pillow does not, nor do we.
        let jpeg = dir.join("photo.jpg");
        pattern(64, 48).save(&jpeg).unwrap();
        assert_eq!(load_image(&jpeg).unwrap().dimensions(), (64, 48));
        let jpeg_bytes = std::fs::read(&jpeg).unwrap();
        for cut in [jpeg_bytes.len() * 6 / 10, jpeg_bytes.len() - 2] {
            let path = dir.join(format!("cut{cut}.jpg"));
            std::fs::write(&path, &jpeg_bytes[..cut]).unwrap();
            match load_image(&path) {
                Err(CocaError::Image { path: p, reason }) => {
                    assert_eq!(p, path);
                    assert!(reason.contains("truncated"), "{reason}");
                }
                other => panic!("{}: expected an Image error, got {other:?}", path.display()),
            }
        }
        let missing = dir.join("missing.png");
        match load_image(&missing) {
            Err(CocaError::Io { path, .. }) => assert_eq!(path, missing),
            other => panic!("expected an Io error, got {other:?}"),
        }
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn random_resized_crop_is_sized_and_deterministic() {
        let img = RgbImage::from_fn(97, 61, |x, y| Rgb([x as u8, y as u8, (x * y) as u8]));
        let a = random_resized_crop(&img, 48, &mut StdRng::seed_from_u64(7));
        let b = random_resized_crop(&img, 48, &mut StdRng::seed_from_u64(7));
        assert_eq!(a.dimensions(), (48, 48));
        assert_eq!(a, b);
        // Near-square, so the crop box varies (97x61 is too wide for a 0.9-area crop with
        // ratio <= 4/3 and always takes torchvision's fallback).
        let squarish = RgbImage::from_fn(80, 70, |x, y| Rgb([x as u8, y as u8, (x * y) as u8]));
        let mut rng = StdRng::seed_from_u64(1);
        let outs: Vec<RgbImage> = (0..4)
            .map(|_| random_resized_crop(&squarish, 48, &mut rng))
            .collect();
        assert!(outs.windows(2).any(|w| w[0] != w[1]), "crops never vary");
        // A very elongated image takes the centre-crop fallback.
        let thin = RgbImage::from_pixel(300, 7, Rgb([1, 2, 3]));
        let out = random_resized_crop(&thin, 16, &mut rng);
        assert_eq!(out.dimensions(), (16, 16));
        let cfg = PreprocessConfig::openai(16);
        let x1 = preprocess_train(&img, &cfg, &mut StdRng::seed_from_u64(3));
        let x2 = preprocess_train(&img, &cfg, &mut StdRng::seed_from_u64(3));
        assert_eq!(x1.len(), 3 * 16 * 16);
        assert_eq!(x1, x2);
    }

    #[test]
    fn crop_boxes_stay_in_range() {
        let mut rng = StdRng::seed_from_u64(11);
        for &(w, h) in &[(1, 1), (2, 9), (640, 480), (17, 500), (1000, 3)] {
            for _ in 0..50 {
                let (top, left, ch, cw) = random_crop_box(w, h, &mut rng);
                assert!(ch >= 1 && cw >= 1 && top + ch <= h && left + cw <= w);
            }
        }
    }

    #[test]
    fn normalisation_is_channel_major() {
        let img = RgbImage::from_fn(2, 1, |x, _| Rgb([if x == 0 { 255 } else { 0 }, 0, 0]));
        let cfg = PreprocessConfig::openai(2);
        let v = to_normalized_chw(&img, &cfg);
        assert_eq!(v.len(), 6);
        assert!((v[0] - (1.0 - cfg.mean[0]) / cfg.std[0]).abs() < 1e-6);
        assert!((v[1] + cfg.mean[0] / cfg.std[0]).abs() < 1e-6);
        assert!((v[2] + cfg.mean[1] / cfg.std[1]).abs() < 1e-6);
    }

    #[test]
    fn train_transform_options_compose() {
        let img = RgbImage::from_fn(50, 40, |x, y| {
            image::Rgb([(x * 5) as u8, (y * 6) as u8, ((x * y) % 256) as u8])
        });
        let cfg = PreprocessConfig::openai(32);
        let rng = || StdRng::seed_from_u64(11);
        // No crop and no RandAugment is the eval transform.
        assert_eq!(
            preprocess_train_with(&img, &cfg, false, None, &mut rng()),
            preprocess_eval(&img, &cfg)
        );
        assert_eq!(
            preprocess_train_with(&img, &cfg, true, None, &mut rng()),
            preprocess_train(&img, &cfg, &mut rng())
        );
        // Every drawn operation applied.
        let ra = RandAugment {
            ops: 1,
            magnitude: 10.0,
            prob: 1.0,
        };
        let mut changed = 0;
        for seed in 0..20 {
            let a = preprocess_train_with(
                &img,
                &cfg,
                false,
                Some(&ra),
                &mut StdRng::seed_from_u64(seed),
            );
            let b = preprocess_train_with(
                &img,
                &cfg,
                false,
                Some(&ra),
                &mut StdRng::seed_from_u64(seed),
            );
            assert_eq!(a, b, "seeded");
            assert_eq!(a.len(), 3 * 32 * 32);
            changed += usize::from(a != preprocess_eval(&img, &cfg));
        }
        // Solarize at magnitude 10 is the identity; most draws change the image.
        assert!(changed >= 15, "{changed}");
    }
}
