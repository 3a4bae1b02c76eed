//! Rasterisation (anti-aliased signed-distance shapes over a background), encoding, and a
//! parallel writer whose output does not depend on the thread count.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use image::{ImageEncoder, RgbImage};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::scene::{Background, GradientDir, Kind, Scene};
use crate::error::{Result, TaskError};

/// JPEG quality of every `.jpg` written.
pub(crate) const JPEG_QUALITY: u8 = 92;

/// How an image file is encoded (independently of its extension).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Encoding {
    Jpeg,
    Png,
}

/// One image to render and write.
#[derive(Clone, Debug)]
pub(crate) struct RenderJob {
    pub path: PathBuf,
    pub scene: Scene,
    pub width: u32,
    pub height: u32,
    /// Seed of the per-pixel noise.
    pub seed: u64,
    pub encoding: Encoding,
}

/// Unit five-pointed star (outer radius 1, inner 0.45, first point up), precomputed so that
/// no platform-dependent trigonometry enters the pixels.
const STAR: [(f32, f32); 10] = [
    (0.0, -1.0),
    (0.264_503, -0.364_058),
    (0.951_057, -0.309_017),
    (0.427_975, 0.139_058),
    (0.587_785, 0.809_017),
    (0.0, 0.45),
    (-0.587_785, 0.809_017),
    (-0.427_975, 0.139_058),
    (-0.951_057, -0.309_017),
    (-0.264_503, -0.364_058),
];

/// Unit equilateral triangle (circumradius 1, point up, centroid at the origin).
const TRIANGLE: [(f32, f32); 3] = [(0.0, -1.0), (0.866_025_4, 0.5), (-0.866_025_4, 0.5)];

/// Signed distance from `p` to a closed polygon (negative inside, even-odd rule).
fn polygon_sdf(p: (f32, f32), v: &[(f32, f32)]) -> f32 {
    let mut d2 = f32::MAX;
    let mut inside = false;
    let mut j = v.len() - 1;
    for i in 0..v.len() {
        let (a, b) = (v[j], v[i]);
        let e = (b.0 - a.0, b.1 - a.1);
        let w = (p.0 - a.0, p.1 - a.1);
        let t = ((w.0 * e.0 + w.1 * e.1) / (e.0 * e.0 + e.1 * e.1)).clamp(0.0, 1.0);
        let q = (w.0 - e.0 * t, w.1 - e.1 * t);
        d2 = d2.min(q.0 * q.0 + q.1 * q.1);
        if (a.1 > p.1) != (b.1 > p.1) {
            let x = a.0 + (p.1 - a.1) / (b.1 - a.1) * (b.0 - a.0);
            if p.0 < x {
                inside = !inside;
            }
        }
        j = i;
    }
    let d = d2.sqrt();
    if inside { -d } else { d }
}

/// Renders `scene` at `width` x `height`; the only randomness (background noise) comes from
/// `seed`.
///
/// The background fills the whole image, but the 3x3 grid of shape cells covers only its
/// centred square: the centre crop of CoCa's preprocessing keeps every shape whole, so no
/// caption, answer or label speaks of a shape the model cannot see.
pub(crate) fn render(scene: &Scene, width: u32, height: u32, seed: u64) -> RgbImage {
    let (w, h) = (width as usize, height as usize);
    let mut px = vec![[0f32; 3]; w * h];
    fill_background(&mut px, w, h, &scene.background, seed);
    let m = width.min(height) as f32;
    let (x0, y0) = ((width as f32 - m) / 2.0, (height as f32 - m) / 2.0);
    for shape in &scene.shapes {
        let cx = x0 + (shape.col as f32 + 0.5) / 3.0 * m + shape.jitter.0 * m;
        let cy = y0 + (shape.row as f32 + 0.5) / 3.0 * m + shape.jitter.1 * m;
        let r = shape.size.radius_fraction() * m;
        let poly: Vec<(f32, f32)> = match shape.kind {
            Kind::Triangle => TRIANGLE
                .iter()
                .map(|&(x, y)| (cx + x * 1.25 * r, cy + y * 1.25 * r))
                .collect(),
            Kind::Star => STAR
                .iter()
                .map(|&(x, y)| (cx + x * 1.2 * r, cy + y * 1.2 * r))
                .collect(),
            _ => Vec::new(),
        };
        let half = 0.86 * r;
        let sdf = |x: f32, y: f32| -> f32 {
            match shape.kind {
                Kind::Circle => ((x - cx) * (x - cx) + (y - cy) * (y - cy)).sqrt() - r,
                Kind::Square => {
                    let qx = (x - cx).abs() - half;
                    let qy = (y - cy).abs() - half;
                    let ox = qx.max(0.0);
                    let oy = qy.max(0.0);
                    (ox * ox + oy * oy).sqrt() + qx.max(qy).min(0.0)
                }
                Kind::Triangle | Kind::Star => polygon_sdf((x, y), &poly),
            }
        };
        let reach = 1.3 * r + 2.0;
        let x0 = ((cx - reach).floor().max(0.0)) as usize;
        let x1 = ((cx + reach).ceil().max(0.0) as usize).min(w);
        let y0 = ((cy - reach).floor().max(0.0)) as usize;
        let y1 = ((cy + reach).ceil().max(0.0) as usize).min(h);
        let col = shape.rgb.map(f32::from);
        for y in y0..y1 {
            for x in x0..x1 {
                let d = sdf(x as f32 + 0.5, y as f32 + 0.5);
                let cov = (0.5 - d).clamp(0.0, 1.0);
                if cov > 0.0 {
                    let p = &mut px[y * w + x];
                    for c in 0..3 {
                        p[c] += (col[c] - p[c]) * cov;
                    }
                }
            }
        }
    }
    let mut img = RgbImage::new(width, height);
    for (i, p) in img.pixels_mut().enumerate() {
        p.0 = px[i].map(|v| v.round().clamp(0.0, 255.0) as u8);
    }
    img
}

fn fill_background(px: &mut [[f32; 3]], w: usize, h: usize, bg: &Background, seed: u64) {
    match *bg {
        Background::Plain(t) => px.fill(t.rgb().map(f32::from)),
        Background::Gradient(a, b, dir) => {
            let (a, b) = (a.rgb().map(f32::from), b.rgb().map(f32::from));
            let wd = (w.max(2) - 1) as f32;
            let hd = (h.max(2) - 1) as f32;
            for y in 0..h {
                for x in 0..w {
                    let t = match dir {
                        GradientDir::Horizontal => x as f32 / wd,
                        GradientDir::Vertical => y as f32 / hd,
                        GradientDir::Diagonal => (x as f32 / wd + y as f32 / hd) * 0.5,
                    };
                    px[y * w + x] = [0, 1, 2].map(|c| a[c] + (b[c] - a[c]) * t);
                }
            }
        }
        Background::Noise(t, amp) => {
            let base = t.rgb().map(f32::from);
            let amp = f32::from(amp);
            let mut rng = StdRng::seed_from_u64(seed);
            for p in px.iter_mut() {
                // Mostly luminance noise with a little colour.
                let l: f32 = rng.random_range(-amp..=amp);
                *p = [0, 1, 2].map(|c| base[c] + l + rng.random_range(-3.0f32..=3.0));
            }
        }
    }
}

/// Encodes an image into memory.
pub(crate) fn encode(img: &RgbImage, encoding: Encoding) -> std::result::Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    let (w, h) = img.dimensions();
    let res = match encoding {
        Encoding::Jpeg => {
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, JPEG_QUALITY)
                .write_image(img.as_raw(), w, h, image::ExtendedColorType::Rgb8)
        }
        Encoding::Png => image::codecs::png::PngEncoder::new(&mut bytes).write_image(
            img.as_raw(),
            w,
            h,
            image::ExtendedColorType::Rgb8,
        ),
    };
    res.map_err(|e| e.to_string())?;
    Ok(bytes)
}

impl RenderJob {
    fn run(&self) -> Result<()> {
        let img = render(&self.scene, self.width, self.height, self.seed);
        let bytes = encode(&img, self.encoding).map_err(|msg| TaskError::Data {
            path: self.path.clone(),
            msg: format!("image encoding failed: {msg}"),
        })?;
        std::fs::write(&self.path, bytes).map_err(|e| TaskError::io(&self.path, e))
    }
}

/// Creates `dir` (and parents); the error names the directory.
pub(crate) fn create_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| TaskError::io(dir, e))
}

/// Renders and writes every job on all available cores. Each file depends only on its job, so
/// the output is the same for any number of threads.
pub(crate) fn run_jobs(jobs: &[RenderJob]) -> Result<()> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 32)
        .min(jobs.len().max(1));
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let error: Mutex<Option<TaskError>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                while !failed.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(job) = jobs.get(i) else { break };
                    if let Err(e) = job.run() {
                        failed.store(true, Ordering::Relaxed);
                        if let Ok(mut slot) = error.lock() {
                            slot.get_or_insert(e);
                        }
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
    use crate::synth::scene::{Color, Shape, SizeClass, Tone};

    fn one(kind: Kind, color: Color) -> Scene {
        Scene {
            shapes: vec![Shape {
                kind,
                color,
                size: SizeClass::Large,
                col: 1,
                row: 1,
                jitter: (0.0, 0.0),
                rgb: color.rgb(),
            }],
            background: Background::Plain(Tone::White),
        }
    }

    #[test]
    fn shapes_are_painted_at_their_cell() {
        for kind in Kind::ALL {
            let img = render(&one(kind, Color::Blue), 64, 64, 0);
            assert_eq!(
                img.get_pixel(32, 33).0,
                Color::Blue.rgb(),
                "{kind:?} centre"
            );
            assert_eq!(img.get_pixel(2, 2).0, Tone::White.rgb(), "{kind:?} corner");
            let painted = img.pixels().filter(|p| p.0 == Color::Blue.rgb()).count();
            // Large shapes cover a clearly visible share of the image.
            assert!(painted > 150, "{kind:?}: {painted} pixels");
        }
    }

    #[test]
    fn shapes_stay_in_the_centred_square() {
        // 4:3 landscape and portrait: a shape in an edge cell lies wholly inside the centre
        // crop (the central 48x48), with only background beside it.
        let mut scene = one(Kind::Square, Color::Blue);
        scene.shapes[0].col = 2;
        let img = render(&scene, 64, 48, 0);
        let blue = |x0: u32, x1: u32, y0: u32, y1: u32| {
            (x0..x1)
                .flat_map(|x| (y0..y1).map(move |y| (x, y)))
                .filter(|&(x, y)| img.get_pixel(x, y).0 == Color::Blue.rgb())
                .count()
        };
        assert!(blue(8, 56, 0, 48) > 100, "the shape is inside the crop");
        assert_eq!(blue(56, 64, 0, 48), 0, "nothing right of the crop");
        scene.shapes[0].col = 1;
        scene.shapes[0].row = 0;
        let img = render(&scene, 48, 64, 0);
        let top = (0..48)
            .flat_map(|x| (0..8).map(move |y| (x, y)))
            .filter(|&(x, y)| img.get_pixel(x, y).0 == Color::Blue.rgb())
            .count();
        assert_eq!(top, 0, "nothing above the crop");
    }

    #[test]
    fn encodings_round_trip() {
        let img = render(&one(Kind::Star, Color::Red), 48, 40, 1);
        for enc in [Encoding::Jpeg, Encoding::Png] {
            let bytes = encode(&img, enc).unwrap();
            let back = image::load_from_memory(&bytes).unwrap();
            assert_eq!((back.width(), back.height()), (48, 40));
        }
    }
}
