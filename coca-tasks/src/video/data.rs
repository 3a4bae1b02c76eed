//! Video clip lists: the Kinetics CSV and a plain `clip_dir label` list, over decoded frames.
//!
//! **Kinetics** (detected by a CSV header naming `youtube_id`): columns `label`, `youtube_id`,
//! `time_start`, `time_end` (integers, seconds) and usually `split` (ignored); other columns are
//! ignored. The clip's frames are in `<frames>/<youtube_id>_<time_start:06>_<time_end:06>/`
//! (the Kinetics downloaders' clip naming), numbered `img_00001.jpg ...` (rawframes).
//!
//! **Plain list** (anything else): one clip per non-blank line, `clip_dir label`, separated by
//! whitespace; the label is the rest of the line (Kinetics labels contain spaces), `clip_dir`
//! is relative to `frames` (or absolute).
//!
//! A clip's frames are the image files of its folder (extensions as `classify`'s ImageFolder,
//! hidden files ignored) in natural order (`img_2` before `img_10`). Missing folders, empty
//! folders and unreadable frames are found when a clip is prepared, not when the list is read:
//! they are reported and skipped (or fail in strict mode).

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::classify::data::{is_image_file, parse_csv};
use crate::error::{Result, TaskError};

/// One labelled clip.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClipItem {
    /// The folder of its decoded frames.
    pub dir: PathBuf,
    /// The clip id: `<youtube_id>_<start:06>_<end:06>` or the list's `clip_dir`; the key of the
    /// predictions file.
    pub name: String,
    /// Index into the class list.
    pub label: usize,
}

/// A listed clip with its label name and 1-based line.
#[derive(Debug, Clone, PartialEq)]
pub struct RawClip {
    pub dir: PathBuf,
    pub name: String,
    pub label: String,
    pub line: usize,
}

fn data_err(path: &Path, msg: impl Into<String>) -> TaskError {
    TaskError::Data {
        path: path.to_path_buf(),
        msg: msg.into(),
    }
}

/// The clip folder name of a Kinetics row.
pub fn kinetics_clip_name(youtube_id: &str, start: u64, end: u64) -> String {
    format!("{youtube_id}_{start:06}_{end:06}")
}

fn parse_seconds(path: &Path, line: usize, col: &str, v: &str) -> Result<u64> {
    let v = v.trim();
    // Some releases write `12.0`; only whole seconds name a clip folder.
    let int = v.strip_suffix(".0").unwrap_or(v);
    int.parse::<u64>().map_err(|_| {
        data_err(
            path,
            format!("line {line}: `{col}` {v:?} is not a whole number of seconds"),
        )
    })
}

/// Whether `text` starts with a Kinetics header (a CSV header naming `youtube_id`).
fn is_kinetics(text: &str) -> bool {
    let first = text
        .trim_start_matches('\u{feff}')
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    first
        .split(',')
        .any(|h| h.trim().trim_matches('"') == "youtube_id")
}

/// Reads a clip list (format detected from its header); clip folders are under `frames`.
pub fn read_clip_list(path: &Path, frames: &Path) -> Result<Vec<RawClip>> {
    let text = std::fs::read_to_string(path).map_err(|e| TaskError::io(path, e))?;
    let clips = if is_kinetics(&text) {
        read_kinetics(&text, path, frames)?
    } else {
        read_plain(&text, path, frames)?
    };
    if clips.is_empty() {
        return Err(data_err(path, "no clips listed"));
    }
    Ok(clips)
}

fn read_kinetics(text: &str, path: &Path, frames: &Path) -> Result<Vec<RawClip>> {
    let mut records = parse_csv(text, path)?.into_iter();
    let (_, header) = records.next().ok_or_else(|| data_err(path, "empty CSV"))?;
    let col = |c: &str| -> Result<usize> {
        header.iter().position(|h| h.trim() == c).ok_or_else(|| {
            data_err(
                path,
                format!("missing column `{c}` (header: {})", header.join(",")),
            )
        })
    };
    let (l, y, s, e) = (
        col("label")?,
        col("youtube_id")?,
        col("time_start")?,
        col("time_end")?,
    );
    let mut clips = Vec::new();
    for (line, f) in records {
        if f.len() != header.len() {
            return Err(data_err(
                path,
                format!(
                    "line {line}: {} fields, the header has {}",
                    f.len(),
                    header.len()
                ),
            ));
        }
        let label = f[l].trim().to_string();
        let id = f[y].trim();
        if label.is_empty() || id.is_empty() || id.contains(['/', '\\']) {
            return Err(data_err(
                path,
                format!("line {line}: empty label or bad youtube_id {id:?}"),
            ));
        }
        let start = parse_seconds(path, line, "time_start", &f[s])?;
        let end = parse_seconds(path, line, "time_end", &f[e])?;
        let name = kinetics_clip_name(id, start, end);
        clips.push(RawClip {
            dir: frames.join(&name),
            name,
            label,
            line,
        });
    }
    Ok(clips)
}

fn read_plain(text: &str, path: &Path, frames: &Path) -> Result<Vec<RawClip>> {
    let mut clips = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let t = raw.trim().trim_start_matches('\u{feff}');
        if t.is_empty() {
            continue;
        }
        let Some((dir, label)) = t.split_once(char::is_whitespace) else {
            return Err(data_err(
                path,
                format!("line {line}: expected `clip_dir label`, got {t:?}"),
            ));
        };
        let label = label.trim().to_string();
        clips.push(RawClip {
            dir: frames.join(dir),
            name: dir.to_string(),
            label,
            line,
        });
    }
    Ok(clips)
}

/// Sorted distinct labels.
pub fn classes_of(clips: &[RawClip]) -> Vec<String> {
    let set: BTreeSet<&str> = clips.iter().map(|c| c.label.as_str()).collect();
    set.into_iter().map(str::to_string).collect()
}

/// Clips with class indices; an unknown label is an error naming the file, line and label.
pub fn index_clips(path: &Path, clips: Vec<RawClip>, classes: &[String]) -> Result<Vec<ClipItem>> {
    clips
        .into_iter()
        .map(|c| {
            let label = classes.binary_search(&c.label).map_err(|_| {
                data_err(
                    path,
                    format!(
                        "line {}: unknown label {:?} (not a class of the training split)",
                        c.line, c.label
                    ),
                )
            })?;
            Ok(ClipItem {
                dir: c.dir,
                name: c.name,
                label,
            })
        })
        .collect()
}

/// Natural order of file names: digit runs compare as numbers.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return Ordering::Equal,
            (None, _) => return Ordering::Less,
            (_, None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let da = a.iter().take_while(|c| c.is_ascii_digit()).count();
                let db = b.iter().take_while(|c| c.is_ascii_digit()).count();
                let (na, nb) = (&a[..da], &b[..db]);
                let strip = |s: &[u8]| -> usize { s.iter().take_while(|&&c| c == b'0').count() };
                let (ta, tb) = (&na[strip(na)..], &nb[strip(nb)..]);
                let ord = ta.len().cmp(&tb.len()).then_with(|| ta.cmp(tb));
                if ord != Ordering::Equal {
                    return ord;
                }
                a = &a[da..];
                b = &b[db..];
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(y);
                }
                a = &a[1..];
                b = &b[1..];
            }
        }
    }
}

/// The frame files of a clip folder in natural order; an unreadable folder is an error naming it.
pub fn list_frames(dir: &Path) -> Result<Vec<PathBuf>> {
    let rd = std::fs::read_dir(dir).map_err(|e| TaskError::io(dir, e))?;
    let mut names = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| TaskError::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') && is_image_file(&name) {
            names.push(name);
        }
    }
    names.sort_by(|a, b| natural_cmp(a, b));
    Ok(names.into_iter().map(|n| dir.join(n)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("coca-video-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn kinetics_csv_names_clip_folders() {
        let d = tmp("kin");
        let p = d.join("train.csv");
        std::fs::write(
            &p,
            "label,youtube_id,time_start,time_end,split\n\"air drumming\",--6bJUbfpnQ,17,27,train\nabseiling,-3B32lodo2M,59.0,69,train\n",
        )
        .unwrap();
        let clips = read_clip_list(&p, Path::new("/f")).unwrap();
        assert_eq!(clips[0].name, "--6bJUbfpnQ_000017_000027");
        assert_eq!(clips[0].dir, Path::new("/f/--6bJUbfpnQ_000017_000027"));
        assert_eq!(clips[0].label, "air drumming");
        assert_eq!(clips[1].name, "-3B32lodo2M_000059_000069");
        assert_eq!(clips[1].line, 3);
        assert_eq!(classes_of(&clips), ["abseiling", "air drumming"]);
    }

    #[test]
    fn kinetics_bad_rows_and_missing_columns() {
        let d = tmp("kinbad");
        let p = d.join("val.csv");
        std::fs::write(&p, "label,youtube_id,time_start,split\na,x,1,val\n").unwrap();
        let err = read_clip_list(&p, &d).unwrap_err().to_string();
        assert!(
            err.contains("val.csv") && err.contains("missing column `time_end`"),
            "{err}"
        );
        std::fs::write(&p, "label,youtube_id,time_start,time_end\na,x,1.5,3\n").unwrap();
        let err = read_clip_list(&p, &d).unwrap_err().to_string();
        assert!(
            err.contains("line 2") && err.contains("time_start"),
            "{err}"
        );
        std::fs::write(&p, "label,youtube_id,time_start,time_end\nzebra,x,1,3\n").unwrap();
        let clips = read_clip_list(&p, &d).unwrap();
        let err = index_clips(&p, clips, &["a".into()])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 2") && err.contains("\"zebra\"") && err.contains("val.csv"),
            "{err}"
        );
    }

    #[test]
    fn plain_list_with_spaces_in_labels() {
        let d = tmp("plain");
        let p = d.join("list.txt");
        std::fs::write(&p, "clips/a  air drumming\n\nclips/b\tabseiling\n").unwrap();
        let clips = read_clip_list(&p, Path::new("/frames")).unwrap();
        assert_eq!(clips.len(), 2);
        assert_eq!(clips[0].dir, Path::new("/frames/clips/a"));
        assert_eq!(clips[0].label, "air drumming");
        assert_eq!((clips[1].name.as_str(), clips[1].line), ("clips/b", 3));
        std::fs::write(&p, "lonely\n").unwrap();
        let err = read_clip_list(&p, &d).unwrap_err().to_string();
        assert!(err.contains("line 1"), "{err}");
    }

    #[test]
    fn frames_in_natural_order() {
        let d = tmp("frames");
        for f in [
            "img_10.jpg",
            "img_2.jpg",
            "img_1.JPG",
            ".img_3.jpg",
            "flow_x.txt",
        ] {
            std::fs::write(d.join(f), b"x").unwrap();
        }
        let names: Vec<String> = list_frames(&d)
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["img_1.JPG", "img_2.jpg", "img_10.jpg"]);
        assert_eq!(natural_cmp("img_00002", "img_10"), Ordering::Less);
        assert_eq!(natural_cmp("a01", "a1"), Ordering::Equal);
        assert!(
            list_frames(&d.join("missing"))
                .unwrap_err()
                .to_string()
                .contains("missing")
        );
    }
}
