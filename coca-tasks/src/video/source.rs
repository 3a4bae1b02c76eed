//! Where a clip's frames come from: a folder of decoded frames (always; rawframes layout,
//! natural order), or a video file (`.mp4`, `.mkv`, `.webm`, `.avi`, `.mov`: the clip path
//! itself, or the clip path with that extension, as the Kinetics downloaders name them). Video
//! files are decoded by the `ffmpeg` / `ffprobe` programs when coca is built with the
//! `video-files` feature; without it they are an error that says so.

use std::path::{Path, PathBuf};

use crate::error::{Result, TaskError};

use super::data::list_frames;

/// Extensions read as video files.
pub const VIDEO_EXTENSIONS: [&str; 5] = ["mp4", "mkv", "webm", "avi", "mov"];

/// The frames of one clip.
pub enum FrameSource {
    /// Frame files in order.
    Folder(Vec<PathBuf>),
    /// Every frame of a decoded video file.
    Decoded(Vec<image::RgbImage>),
}

impl FrameSource {
    /// Opens the clip at `path`: a frame folder, or a video file (see the module docs).
    pub fn open(path: &Path) -> Result<Self> {
        if path.is_dir() {
            return Ok(FrameSource::Folder(list_frames(path)?));
        }
        match video_file(path) {
            Some(file) => Ok(FrameSource::Decoded(decode(&file)?)),
            // No folder and no video file: the folder's own error.
            None => Ok(FrameSource::Folder(list_frames(path)?)),
        }
    }

    /// Number of frames.
    pub fn len(&self) -> usize {
        match self {
            FrameSource::Folder(f) => f.len(),
            FrameSource::Decoded(f) => f.len(),
        }
    }

    /// Whether the clip has no frame.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Frame `i` (0-based).
    pub fn frame(&self, i: usize) -> Result<image::RgbImage> {
        match self {
            FrameSource::Folder(f) => Ok(coca_core::preprocess::load_image(&f[i])?),
            FrameSource::Decoded(f) => Ok(f[i].clone()),
        }
    }
}

fn is_video(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| VIDEO_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// The video file a clip path names: itself, or itself with a video extension.
fn video_file(path: &Path) -> Option<PathBuf> {
    if path.is_file() && is_video(path) {
        return Some(path.to_path_buf());
    }
    let name = path.file_name()?.to_string_lossy().into_owned();
    VIDEO_EXTENSIONS
        .iter()
        .map(|ext| path.with_file_name(format!("{name}.{ext}")))
        .find(|p| p.is_file())
}

#[cfg(not(feature = "video-files"))]
fn decode(path: &Path) -> Result<Vec<image::RgbImage>> {
    Err(TaskError::Data {
        path: path.to_path_buf(),
        msg: "a video file: this build reads frame folders only; build with `--features \
              video-files` (and ffmpeg on PATH) to decode video files"
            .into(),
    })
}

/// Decodes every frame of the first video stream as RGB with `ffprobe` (size) and `ffmpeg`
/// (`-f rawvideo -pix_fmt rgb24`, no auto-rotation so that the size matches).
#[cfg(feature = "video-files")]
fn decode(path: &Path) -> Result<Vec<image::RgbImage>> {
    use std::process::Command;
    let fail = |msg: String| TaskError::Data {
        path: path.to_path_buf(),
        msg,
    };
    let run = |cmd: &mut Command, what: &str| -> Result<Vec<u8>> {
        let out = cmd
            .output()
            .map_err(|e| fail(format!("cannot run {what} (is ffmpeg installed?): {e}")))?;
        if !out.status.success() {
            return Err(fail(format!(
                "{what} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(out.stdout)
    };
    let probe = run(
        Command::new("ffprobe")
            .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
            .args(["stream=width,height", "-of", "csv=p=0"])
            .arg(path),
        "ffprobe",
    )?;
    let probe = String::from_utf8_lossy(&probe);
    let (w, h) = probe
        .trim()
        .split_once(',')
        .and_then(|(w, h)| Some((w.trim().parse::<u32>().ok()?, h.trim().parse::<u32>().ok()?)))
        .filter(|&(w, h)| w > 0 && h > 0)
        .ok_or_else(|| fail(format!("no video stream (ffprobe said {:?})", probe.trim())))?;
    let raw = run(
        Command::new("ffmpeg")
            .args(["-v", "error", "-nostdin", "-noautorotate", "-i"])
            .arg(path)
            .args(["-map", "0:v:0", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]),
        "ffmpeg",
    )?;
    let size = (w * h * 3) as usize;
    if raw.len() % size != 0 {
        return Err(fail(format!(
            "ffmpeg gave {} bytes, not a whole number of {w}x{h} frames",
            raw.len()
        )));
    }
    Ok(raw
        .chunks_exact(size)
        .filter_map(|c| image::RgbImage::from_raw(w, h, c.to_vec()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("coca-vsrc-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_clip_path_names_a_folder_or_a_video_file_beside_it() {
        let d = tmp("names");
        std::fs::write(d.join("abc_000001_000011.mp4"), b"").unwrap();
        assert_eq!(
            video_file(&d.join("abc_000001_000011")),
            Some(d.join("abc_000001_000011.mp4"))
        );
        assert_eq!(
            video_file(&d.join("abc_000001_000011.mp4")),
            Some(d.join("abc_000001_000011.mp4"))
        );
        assert_eq!(video_file(&d.join("missing")), None);
        std::fs::remove_dir_all(d).ok();
    }

    #[cfg(not(feature = "video-files"))]
    #[test]
    fn without_the_feature_a_video_file_is_a_named_error() {
        let d = tmp("nofeature");
        let clip = d.join("clip.mp4");
        std::fs::write(&clip, b"not decoded").unwrap();
        let e = FrameSource::open(&d.join("clip"))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("clip.mp4") && e.contains("video-files"), "{e}");
        std::fs::remove_dir_all(d).ok();
    }

    /// Needs `ffmpeg` on PATH: a lossless video made from frames decodes to those frames.
    #[cfg(feature = "video-files")]
    #[test]
    fn a_lossless_video_decodes_to_its_frames() {
        let d = tmp("ffv1");
        let frames = d.join("frames");
        std::fs::create_dir_all(&frames).unwrap();
        let imgs: Vec<image::RgbImage> = (0..5u8)
            .map(|k| {
                image::RgbImage::from_fn(24, 16, |x, y| {
                    image::Rgb([k * 40, (x * 9) as u8, (y * 13) as u8])
                })
            })
            .collect();
        for (i, img) in imgs.iter().enumerate() {
            img.save(frames.join(format!("img_{:05}.png", i + 1)))
                .unwrap();
        }
        let video = d.join("clip.mkv");
        let ok = std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-nostdin", "-framerate", "5", "-i"])
            .arg(frames.join("img_%05d.png"))
            .args(["-c:v", "ffv1", "-pix_fmt", "bgr0"])
            .arg(&video)
            .status()
            .expect("ffmpeg on PATH (the video-files feature decodes with it)");
        assert!(ok.success());
        let src = FrameSource::open(&d.join("clip")).unwrap();
        assert_eq!(src.len(), 5);
        for (i, want) in imgs.iter().enumerate() {
            assert!(src.frame(i).unwrap() == *want, "frame {i} differs");
        }
        // A file that is no video is a named error, not a panic.
        let bad = d.join("bad.mp4");
        std::fs::write(&bad, b"garbage").unwrap();
        let e = FrameSource::open(&bad).err().unwrap().to_string();
        assert!(e.contains("bad.mp4"), "{e}");
        std::fs::remove_dir_all(d).ok();
    }
}
