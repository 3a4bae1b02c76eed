//! RandAugment (Cubuk et al., 2020), as timm's `rand-m{M}-n{N}` policy: `N` operations drawn
//! uniformly from 15, each applied with probability 0.5 at magnitude `M` on the 0-10 scale of
//! the original TensorFlow implementation (10 = the strongest of the paper's ranges). The
//! operations reproduce Pillow's (`ImageOps`, `ImageEnhance`, affine `transform` with bilinear
//! resampling), which timm and the reference pipelines run on; `tests/data/randaugment` holds
//! Pillow's outputs.
//!
//! CoCa fine-tunes VQAv2 and SNLI-VE with RandAugment(1, 10) after RandomResizedCrop.

use image::RgbImage;
use rand::Rng;
use serde::{Deserialize, Serialize};

/// One RandAugment operation with its argument.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AugmentOp {
    AutoContrast,
    Equalize,
    Invert,
    /// Counter-clockwise degrees about the centre.
    Rotate(f64),
    /// Bits kept per channel (1-8).
    Posterize(u8),
    /// Values at or above the threshold are inverted (256 leaves the image unchanged).
    Solarize(u16),
    /// Adds to values below 128 (saturating).
    SolarizeAdd(u8),
    /// Saturation: 0 = grey, 1 = unchanged.
    Color(f32),
    /// 0 = flat mean grey, 1 = unchanged.
    Contrast(f32),
    /// 0 = black, 1 = unchanged.
    Brightness(f32),
    /// 0 = smoothed, 1 = unchanged, above 1 sharper.
    Sharpness(f32),
    /// Output `(x, y)` samples input `(x + s*y, y)`.
    ShearX(f64),
    /// Output `(x, y)` samples input `(x, y + s*x)`.
    ShearY(f64),
    /// Output `(x, y)` samples input `(x + t, y)` (pixels).
    TranslateX(f64),
    /// Output `(x, y)` samples input `(x, y + t)` (pixels).
    TranslateY(f64),
}

/// The 15 operations of timm's RandAugment, in its order.
pub const OP_NAMES: [&str; 15] = [
    "AutoContrast",
    "Equalize",
    "Invert",
    "Rotate",
    "Posterize",
    "Solarize",
    "SolarizeAdd",
    "Color",
    "Contrast",
    "Brightness",
    "Sharpness",
    "ShearX",
    "ShearY",
    "TranslateXRel",
    "TranslateYRel",
];

/// RandAugment settings: `[train] randaugment = { ops = 1, magnitude = 10 }` in run configs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RandAugment {
    /// Operations applied per image (`N`).
    pub ops: usize,
    /// Magnitude `M` on the 0-10 scale (values above 10 extrapolate, as in timm).
    pub magnitude: f32,
    /// Probability with which each drawn operation is applied.
    #[serde(default = "half")]
    pub prob: f32,
}

fn half() -> f32 {
    0.5
}

impl RandAugment {
    /// `rand-m{magnitude}-n{ops}`.
    pub fn new(ops: usize, magnitude: f32) -> Self {
        Self {
            ops,
            magnitude,
            prob: 0.5,
        }
    }

    /// Checks the settings: a finite, non-negative magnitude and a probability in [0, 1].
    pub fn validate(&self) -> Result<(), String> {
        if !(self.magnitude.is_finite() && self.magnitude >= 0.0) {
            return Err(format!(
                "randaugment magnitude must be a non-negative number, got {}",
                self.magnitude
            ));
        }
        if !(0.0..=1.0).contains(&self.prob) {
            return Err(format!(
                "randaugment prob must be in [0, 1], got {}",
                self.prob
            ));
        }
        Ok(())
    }

    /// Draws the operations for one image (those that the coin flips skip are left out).
    pub fn sample(&self, width: u32, rng: &mut impl Rng) -> Vec<AugmentOp> {
        let level = self.magnitude / 10.0;
        let geo = f64::from(level);
        let mut out = Vec::with_capacity(self.ops);
        for _ in 0..self.ops {
            let which = rng.random_range(0..OP_NAMES.len());
            let sign: f64 = if rng.random_bool(0.5) { -1.0 } else { 1.0 };
            let apply = rng.random::<f32>() < self.prob;
            if !apply {
                continue;
            }
            let enhance = level * 1.8 + 0.1;
            out.push(match which {
                0 => AugmentOp::AutoContrast,
                1 => AugmentOp::Equalize,
                2 => AugmentOp::Invert,
                3 => AugmentOp::Rotate(sign * geo * 30.0),
                4 => AugmentOp::Posterize(((level * 4.0) as u8).clamp(1, 8)),
                5 => AugmentOp::Solarize((level * 256.0).clamp(0.0, 256.0) as u16),
                6 => AugmentOp::SolarizeAdd((level * 110.0).clamp(0.0, 255.0) as u8),
                7 => AugmentOp::Color(enhance),
                8 => AugmentOp::Contrast(enhance),
                9 => AugmentOp::Brightness(enhance),
                10 => AugmentOp::Sharpness(enhance),
                11 => AugmentOp::ShearX(sign * geo * 0.3),
                12 => AugmentOp::ShearY(sign * geo * 0.3),
                13 => AugmentOp::TranslateX(sign * geo * 0.45 * f64::from(width)),
                _ => AugmentOp::TranslateY(sign * geo * 0.45 * f64::from(width)),
            });
        }
        out
    }

    /// Applies a random draw of operations; `fill` colours areas that geometric operations
    /// uncover (timm uses the normalisation mean).
    pub fn apply(&self, img: RgbImage, fill: [u8; 3], rng: &mut impl Rng) -> RgbImage {
        self.sample(img.width(), rng)
            .into_iter()
            .fold(img, |im, op| op.apply(&im, fill))
    }
}

impl AugmentOp {
    /// The operation on an RGB image.
    pub fn apply(&self, img: &RgbImage, fill: [u8; 3]) -> RgbImage {
        match *self {
            AugmentOp::AutoContrast => lut(img, &auto_contrast_luts(img)),
            AugmentOp::Equalize => lut(img, &equalize_luts(img)),
            AugmentOp::Invert => same_lut(img, |v| 255 - v),
            AugmentOp::Posterize(bits) => {
                let mask = !((1u16 << (8 - bits.clamp(1, 8))) - 1) as u8;
                same_lut(img, |v| v & mask)
            }
            AugmentOp::Solarize(t) => same_lut(img, |v| if u16::from(v) < t { v } else { 255 - v }),
            AugmentOp::SolarizeAdd(a) => {
                same_lut(img, |v| if v < 128 { v.saturating_add(a) } else { v })
            }
            AugmentOp::Color(f) => blend(&grey(img), img, f),
            AugmentOp::Contrast(f) => {
                let m = mean_luma(img);
                blend(
                    &RgbImage::from_pixel(img.width(), img.height(), image::Rgb([m; 3])),
                    img,
                    f,
                )
            }
            AugmentOp::Brightness(f) => blend(&RgbImage::new(img.width(), img.height()), img, f),
            AugmentOp::Sharpness(f) => blend(&smooth(img), img, f),
            AugmentOp::Rotate(deg) => affine(img, rotation_matrix(img, deg), fill),
            AugmentOp::ShearX(s) => affine(img, [1.0, s, 0.0, 0.0, 1.0, 0.0], fill),
            AugmentOp::ShearY(s) => affine(img, [1.0, 0.0, 0.0, s, 1.0, 0.0], fill),
            AugmentOp::TranslateX(t) => affine(img, [1.0, 0.0, t, 0.0, 1.0, 0.0], fill),
            AugmentOp::TranslateY(t) => affine(img, [1.0, 0.0, 0.0, 0.0, 1.0, t], fill),
        }
    }
}

/// Per-channel 256-entry tables.
type Luts = [[u8; 256]; 3];

fn lut(img: &RgbImage, luts: &Luts) -> RgbImage {
    let mut out = img.clone();
    for px in out.pixels_mut() {
        for c in 0..3 {
            px.0[c] = luts[c][usize::from(px.0[c])];
        }
    }
    out
}

fn same_lut(img: &RgbImage, f: impl Fn(u8) -> u8) -> RgbImage {
    let mut t = [0u8; 256];
    for (i, v) in t.iter_mut().enumerate() {
        *v = f(i as u8);
    }
    lut(img, &[t; 3])
}

fn histograms(img: &RgbImage) -> [[u64; 256]; 3] {
    let mut h = [[0u64; 256]; 3];
    for px in img.pixels() {
        for c in 0..3 {
            h[c][usize::from(px.0[c])] += 1;
        }
    }
    h
}

fn identity() -> [u8; 256] {
    std::array::from_fn(|i| i as u8)
}

/// `ImageOps.autocontrast(cutoff=0)`: stretch each channel's range to 0-255.
fn auto_contrast_luts(img: &RgbImage) -> Luts {
    let h = histograms(img);
    std::array::from_fn(|c| {
        let lo = h[c].iter().position(|&n| n > 0);
        let hi = h[c].iter().rposition(|&n| n > 0);
        match (lo, hi) {
            (Some(lo), Some(hi)) if hi > lo => {
                let scale = 255.0 / (hi - lo) as f64;
                let offset = -(lo as f64) * scale;
                std::array::from_fn(|i| (i as f64 * scale + offset).clamp(0.0, 255.0) as u8)
            }
            _ => identity(),
        }
    })
}

/// `ImageOps.equalize`: per-channel histogram equalisation.
fn equalize_luts(img: &RgbImage) -> Luts {
    let h = histograms(img);
    std::array::from_fn(|c| {
        let used: Vec<u64> = h[c].iter().copied().filter(|&n| n > 0).collect();
        if used.len() <= 1 {
            return identity();
        }
        let step = (used.iter().sum::<u64>() - used[used.len() - 1]) / 255;
        if step == 0 {
            return identity();
        }
        let mut n = step / 2;
        std::array::from_fn(|i| {
            let v = (n / step).min(255) as u8;
            n += h[c][i];
            v
        })
    })
}

/// ITU-R 601-2 luma as Pillow's `convert("L")` computes it.
fn luma(p: [u8; 3]) -> u8 {
    ((u32::from(p[0]) * 19595 + u32::from(p[1]) * 38470 + u32::from(p[2]) * 7471 + 0x8000) >> 16)
        as u8
}

fn grey(img: &RgbImage) -> RgbImage {
    let mut out = img.clone();
    for px in out.pixels_mut() {
        px.0 = [luma(px.0); 3];
    }
    out
}

/// `int(mean(L) + 0.5)`, the grey `ImageEnhance.Contrast` blends with.
fn mean_luma(img: &RgbImage) -> u8 {
    let n = u64::from(img.width()) * u64::from(img.height());
    if n == 0 {
        return 0;
    }
    let sum: u64 = img.pixels().map(|p| u64::from(luma(p.0))).sum();
    (sum as f64 / n as f64 + 0.5) as u8
}

/// `Image.blend(degenerate, image, alpha)`: `d + alpha * (i - d)` in f32, truncated and clipped.
fn blend(degenerate: &RgbImage, img: &RgbImage, alpha: f32) -> RgbImage {
    let mut out = img.clone();
    for (o, d) in out.iter_mut().zip(degenerate.iter()) {
        let v = f32::from(*d) + alpha * (f32::from(*o) - f32::from(*d));
        *o = if v <= 0.0 {
            0
        } else if v >= 255.0 {
            255
        } else {
            v as u8
        };
    }
    out
}

/// `ImageFilter.SMOOTH` (3x3 kernel 1 1 1 / 1 5 1 / 1 1 1, /13); border pixels are copied.
fn smooth(img: &RgbImage) -> RgbImage {
    let (w, h) = img.dimensions();
    let mut out = img.clone();
    if w < 3 || h < 3 {
        return out;
    }
    let k = [1.0f32 / 13.0, 5.0 / 13.0];
    for y in 1..h - 1 {
        for x in 1..w - 1 {
            for c in 0..3 {
                let at = |dx: i32, dy: i32| {
                    f32::from(
                        img.get_pixel((x as i32 + dx) as u32, (y as i32 + dy) as u32)
                            .0[c],
                    )
                };
                let mut s = 0.0f32;
                for dy in [1, 0, -1] {
                    let mid = if dy == 0 { k[1] } else { k[0] };
                    s += at(-1, dy) * k[0] + at(0, dy) * mid + at(1, dy) * k[0];
                }
                out.get_pixel_mut(x, y).0[c] = clip8_round(s);
            }
        }
    }
    out
}

fn clip8_round(v: f32) -> u8 {
    if v <= 0.0 {
        0
    } else if v >= 255.0 {
        255
    } else {
        (v + 0.5) as u8
    }
}

/// Pillow's `Image.rotate(deg)` inverse matrix (about the centre, no expansion).
fn rotation_matrix(img: &RgbImage, deg: f64) -> [f64; 6] {
    let (w, h) = (f64::from(img.width()), f64::from(img.height()));
    let a = -deg.rem_euclid(360.0).to_radians();
    let r15 = |v: f64| (v * 1e15).round() / 1e15;
    let (cos, sin) = (r15(a.cos()), r15(a.sin()));
    let mut m = [cos, sin, 0.0, -sin, cos, 0.0];
    let (cx, cy) = (w / 2.0, h / 2.0);
    m[2] = m[0] * -cx + m[1] * -cy + m[2] + cx;
    m[5] = m[3] * -cx + m[4] * -cy + m[5] + cy;
    m
}

/// Pillow's affine `transform` with bilinear resampling: output pixel `(x, y)` samples the
/// input at `m · (x + 0.5, y + 0.5)`; samples outside the image take `fill`.
fn affine(img: &RgbImage, m: [f64; 6], fill: [u8; 3]) -> RgbImage {
    let (w, h) = img.dimensions();
    let (wi, hi) = (i64::from(w), i64::from(h));
    let mut out = RgbImage::from_pixel(w, h, image::Rgb(fill));
    let clip = |v: i64, n: i64| v.clamp(0, n - 1) as u32;
    for y in 0..h {
        for x in 0..w {
            let (xo, yo) = (f64::from(x) + 0.5, f64::from(y) + 0.5);
            let xin = m[0] * xo + m[1] * yo + m[2];
            let yin = m[3] * xo + m[4] * yo + m[5];
            if xin < 0.0 || xin >= f64::from(w) || yin < 0.0 || yin >= f64::from(h) {
                continue;
            }
            let (xs, ys) = (xin - 0.5, yin - 0.5);
            let (x0, y0) = (xs.floor() as i64, ys.floor() as i64);
            let (dx, dy) = (xs - x0 as f64, ys - y0 as f64);
            let px = out.get_pixel_mut(x, y);
            for c in 0..3 {
                let v =
                    |xx: i64, yy: i64| f64::from(img.get_pixel(clip(xx, wi), clip(yy, hi)).0[c]);
                let top = v(x0, y0) + (v(x0 + 1, y0) - v(x0, y0)) * dx;
                let bottom = if y0 + 1 < hi {
                    v(x0, y0 + 1) + (v(x0 + 1, y0 + 1) - v(x0, y0 + 1)) * dx
                } else {
                    top
                };
                px.0[c] = (top + (bottom - top) * dy) as u8;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn pattern() -> RgbImage {
        RgbImage::from_fn(24, 20, |x, y| {
            image::Rgb([(x * 10) as u8, (y * 12) as u8, ((x + y) * 5) as u8])
        })
    }

    #[test]
    fn neutral_arguments_leave_the_image_unchanged() {
        let img = pattern();
        for op in [
            AugmentOp::Rotate(0.0),
            AugmentOp::ShearX(0.0),
            AugmentOp::TranslateY(0.0),
            AugmentOp::Color(1.0),
            AugmentOp::Contrast(1.0),
            AugmentOp::Brightness(1.0),
            AugmentOp::Sharpness(1.0),
            AugmentOp::Posterize(8),
            AugmentOp::Solarize(256),
            AugmentOp::SolarizeAdd(0),
        ] {
            assert_eq!(op.apply(&img, [1, 2, 3]), img, "{op:?}");
        }
        let twice = AugmentOp::Invert.apply(&AugmentOp::Invert.apply(&img, [0; 3]), [0; 3]);
        assert_eq!(twice, img);
    }

    #[test]
    fn draws_are_seeded_and_cover_every_operation() {
        let ra = RandAugment::new(2, 10.0);
        let draw = |seed| ra.sample(224, &mut StdRng::seed_from_u64(seed));
        assert_eq!(draw(7), draw(7));
        let mut seen = std::collections::BTreeSet::new();
        let mut rng = StdRng::seed_from_u64(1);
        let mut applied = 0;
        for _ in 0..2000 {
            for op in ra.sample(224, &mut rng) {
                applied += 1;
                seen.insert(
                    format!("{op:?}")
                        .split('(')
                        .next()
                        .unwrap_or("")
                        .to_string(),
                );
                if let AugmentOp::Rotate(d) = op {
                    assert!((d.abs() - 30.0).abs() < 1e-4, "{d}");
                }
                if let AugmentOp::TranslateX(t) = op {
                    assert!((t.abs() - 100.8).abs() < 1e-3, "{t}");
                }
            }
        }
        assert_eq!(seen.len(), 15, "{seen:?}");
        // Each of the 2 x 2000 draws is applied with probability 0.5.
        assert!((1800..2200).contains(&applied), "{applied}");
        assert!(RandAugment::new(1, -1.0).validate().is_err());
    }

    #[test]
    fn applying_keeps_size_and_is_deterministic() {
        let ra = RandAugment::new(3, 10.0);
        let a = ra.apply(pattern(), [9; 3], &mut StdRng::seed_from_u64(3));
        let b = ra.apply(pattern(), [9; 3], &mut StdRng::seed_from_u64(3));
        assert_eq!(a, b);
        assert_eq!(a.dimensions(), (24, 20));
    }
}
