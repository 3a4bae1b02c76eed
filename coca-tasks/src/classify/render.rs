//! A small rasteriser for the synthetic classification and video sets: shapes (2x2
//! supersampled) over a plain or noisy background, written as JPEG in parallel.
//!
//! (The shared world's renderer in `synth::render` is private to `synth`; this one keeps the
//! task folders self-contained.)

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use image::{ImageEncoder, RgbImage};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::error::{Result, TaskError};

/// The palette: class colours of the synthetic sets (name, RGB), in this order.
pub(crate) const COLORS: [(&str, [u8; 3]); 6] = [
    ("red", [220, 30, 35]),
    ("green", [30, 165, 60]),
    ("blue", [35, 75, 225]),
    ("yellow", [245, 215, 30]),
    ("purple", [145, 50, 190]),
    ("orange", [250, 135, 20]),
];

/// Background tones (greys and beige, far from every palette colour).
pub(crate) const TONES: [[u8; 3]; 5] = [
    [242, 242, 238],
    [196, 198, 200],
    [226, 214, 188],
    [78, 78, 80],
    [40, 44, 52],
];

/// A shape's outline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outline {
    Circle,
    Square,
    Triangle,
}

impl Outline {
    pub(crate) const ALL: [Outline; 3] = [Outline::Circle, Outline::Square, Outline::Triangle];
}

/// One shape; centre and radius are fractions of the image side.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Blob {
    pub outline: Outline,
    pub rgb: [u8; 3],
    pub cx: f32,
    pub cy: f32,
    pub r: f32,
}

impl Blob {
    /// A shape of `outline` and palette colour `rgb` (perturbed by up to 12 per channel) at a
    /// random position that keeps it inside the image.
    pub(crate) fn random(outline: Outline, rgb: [u8; 3], r: f32, rng: &mut StdRng) -> Blob {
        let rgb = rgb.map(|v| (i32::from(v) + rng.random_range(-12..=12)).clamp(0, 255) as u8);
        let lo = r * 1.1;
        Blob {
            outline,
            rgb,
            cx: rng.random_range(lo..1.0 - lo),
            cy: rng.random_range(lo..1.0 - lo),
            r,
        }
    }

    fn covers(&self, x: f32, y: f32) -> bool {
        let (dx, dy) = (x - self.cx, y - self.cy);
        match self.outline {
            Outline::Circle => dx * dx + dy * dy <= self.r * self.r,
            Outline::Square => dx.abs() <= 0.86 * self.r && dy.abs() <= 0.86 * self.r,
            Outline::Triangle => {
                // Point up, circumradius 1.2 r: inside the three half-planes.
                let s = 1.2 * self.r;
                let (ux, uy) = (dx / s, dy / s);
                uy <= 0.5 && uy >= -1.0 + 1.732_050_8 * ux.abs()
            }
        }
    }
}

/// One image's content.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Picture {
    pub background: [u8; 3],
    /// Amplitude of uniform per-pixel noise (0 = plain).
    pub noise: u8,
    pub blobs: Vec<Blob>,
    /// Seed of the noise.
    pub seed: u64,
}

impl Picture {
    /// A random background tone, plain or noisy, without shapes.
    pub(crate) fn random_background(rng: &mut StdRng) -> Picture {
        Picture {
            background: TONES[rng.random_range(0..TONES.len())],
            noise: if rng.random_bool(0.5) {
                0
            } else {
                rng.random_range(6..=16)
            },
            blobs: Vec::new(),
            seed: rng.random(),
        }
    }

    /// Rasterises at `size` x `size`.
    pub(crate) fn render(&self, size: u32) -> RgbImage {
        let mut rng = StdRng::seed_from_u64(self.seed);
        let n = size as f32;
        let mut img = RgbImage::new(size, size);
        for (x, y, px) in img.enumerate_pixels_mut() {
            let mut acc = [0f32; 3];
            for (ox, oy) in [(0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75)] {
                let (fx, fy) = ((x as f32 + ox) / n, (y as f32 + oy) / n);
                let c = self
                    .blobs
                    .iter()
                    .rev()
                    .find(|b| b.covers(fx, fy))
                    .map_or(self.background, |b| b.rgb);
                for k in 0..3 {
                    acc[k] += f32::from(c[k]) / 4.0;
                }
            }
            let noise = if self.noise > 0 {
                rng.random_range(-i32::from(self.noise)..=i32::from(self.noise))
            } else {
                0
            };
            px.0 = acc.map(|v| (v.round() as i32 + noise).clamp(0, 255) as u8);
        }
        img
    }
}

/// JPEG bytes of an image (quality 92).
pub(crate) fn jpeg(img: &RgbImage) -> std::result::Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 92)
        .write_image(
            img.as_raw(),
            img.width(),
            img.height(),
            image::ExtendedColorType::Rgb8,
        )
        .map_err(|e| e.to_string())?;
    Ok(bytes)
}

/// Renders and writes every `(path, picture)` as a `size`-pixel JPEG on all cores (each file
/// depends only on its job). Parent folders must exist.
pub(crate) fn write_all(jobs: &[(PathBuf, Picture)], size: u32) -> Result<()> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 16)
        .min(jobs.len().max(1));
    let next = AtomicUsize::new(0);
    let error: Mutex<Option<TaskError>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((path, pic)) = jobs.get(i) else {
                        break;
                    };
                    let result = jpeg(&pic.render(size))
                        .map_err(|msg| TaskError::Data {
                            path: path.clone(),
                            msg: format!("image encoding failed: {msg}"),
                        })
                        .and_then(|b| std::fs::write(path, b).map_err(|e| TaskError::io(path, e)));
                    if let Err(e) = result {
                        if let Ok(mut slot) = error.lock() {
                            slot.get_or_insert(e);
                        }
                        next.store(jobs.len(), Ordering::Relaxed);
                        break;
                    }
                }
            });
        }
    });
    match error.into_inner() {
        Ok(Some(e)) => Err(e),
        Ok(None) => Ok(()),
        Err(poisoned) => poisoned.into_inner().map_or(Ok(()), Err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_are_painted_where_they_are() {
        for outline in Outline::ALL {
            let pic = Picture {
                background: TONES[0],
                noise: 0,
                blobs: vec![Blob {
                    outline,
                    rgb: COLORS[2].1,
                    cx: 0.5,
                    cy: 0.5,
                    r: 0.2,
                }],
                seed: 0,
            };
            let img = pic.render(64);
            assert_eq!(img.get_pixel(32, 33).0, COLORS[2].1, "{outline:?} centre");
            assert_eq!(img.get_pixel(2, 2).0, TONES[0], "{outline:?} corner");
            let painted = img.pixels().filter(|p| p.0 == COLORS[2].1).count();
            assert!(painted > 150, "{outline:?}: {painted}");
        }
    }
}
