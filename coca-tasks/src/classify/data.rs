//! Image-classification data: a torchvision `ImageFolder` directory or a `path,label` CSV.
//!
//! **ImageFolder** (`root/<class>/<image>`): class names are the sub-directory names sorted by
//! code point, as torchvision's `ImageFolder.find_classes`; each class folder is walked
//! recursively (sorted), keeping files whose extension is one of torchvision's
//! `IMG_EXTENSIONS` (case-insensitive). Unlike torchvision, hidden entries (names starting with
//! `.`, e.g. `.ipynb_checkpoints`, `.DS_Store`) are ignored. A class folder without any image
//! is an error naming it (torchvision raises too).
//!
//! **CSV** (a regular file): a header naming the columns `path` and `label` (any order, other
//! columns ignored), RFC 4180 quoting (`"a,b"`, `""` for a quote, quoted line breaks); paths are
//! relative to the CSV's folder (absolute paths are kept). Blank lines are skipped.
//!
//! Classes come from the training split; a validation label that is not a training class is
//! an error naming the file, the line (CSV) and the label.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Result, TaskError};

/// torchvision's `IMG_EXTENSIONS`.
pub const IMG_EXTENSIONS: [&str; 9] = [
    "jpg", "jpeg", "png", "ppm", "bmp", "pgm", "tif", "tiff", "webp",
];

/// One labelled image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassifyItem {
    /// The image file (may not exist: the trainer reports unreadable images).
    pub path: PathBuf,
    /// The path as listed: relative to the ImageFolder root or as written in the CSV; the key
    /// of the predictions file.
    pub name: String,
    /// Index into the class list.
    pub label: usize,
}

/// A labelled split before class indices are assigned.
#[derive(Debug, Clone, PartialEq)]
pub struct RawSplit {
    /// The rows in file (CSV) or sorted (ImageFolder) order.
    pub rows: Vec<RawRow>,
    /// The source (directory or CSV file).
    pub source: PathBuf,
}

/// One row of a [`RawSplit`].
#[derive(Debug, Clone, PartialEq)]
pub struct RawRow {
    pub path: PathBuf,
    pub name: String,
    pub label: String,
    /// 1-based CSV line of the record (0 for ImageFolder entries).
    pub line: usize,
}

fn data_err(path: &Path, msg: impl Into<String>) -> TaskError {
    TaskError::Data {
        path: path.to_path_buf(),
        msg: msg.into(),
    }
}

/// Whether `name` has an image extension (case-insensitive).
pub fn is_image_file(name: &str) -> bool {
    name.rsplit_once('.').is_some_and(|(stem, ext)| {
        !stem.is_empty() && IMG_EXTENSIONS.iter().any(|e| e.eq_ignore_ascii_case(ext))
    })
}

fn is_hidden(name: &std::ffi::OsStr) -> bool {
    name.to_string_lossy().starts_with('.')
}

/// Sorted, non-hidden entries of `dir`.
fn sorted_entries(dir: &Path) -> Result<Vec<(String, PathBuf, bool)>> {
    let rd = std::fs::read_dir(dir).map_err(|e| TaskError::io(dir, e))?;
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| TaskError::io(dir, e))?;
        if is_hidden(&entry.file_name()) {
            continue;
        }
        let path = entry.path();
        // Follows symbolic links, as torchvision (`os.walk(followlinks=True)`).
        let is_dir = path.is_dir();
        out.push((
            entry.file_name().to_string_lossy().into_owned(),
            path,
            is_dir,
        ));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

fn walk_images(dir: &Path, rel: &str, out: &mut Vec<(PathBuf, String)>) -> Result<()> {
    for (name, path, is_dir) in sorted_entries(dir)? {
        let rel_name = format!("{rel}/{name}");
        if is_dir {
            walk_images(&path, &rel_name, out)?;
        } else if is_image_file(&name) {
            out.push((path, rel_name));
        }
    }
    Ok(())
}

/// Reads an ImageFolder directory: every image of every class folder, classes in sorted order.
pub fn read_image_folder(root: &Path) -> Result<RawSplit> {
    let mut rows = Vec::new();
    let classes: Vec<(String, PathBuf)> = sorted_entries(root)?
        .into_iter()
        .filter(|(_, _, d)| *d)
        .map(|(n, p, _)| (n, p))
        .collect();
    if classes.is_empty() {
        return Err(data_err(
            root,
            "no class folders (expected root/<class>/<image>)",
        ));
    }
    for (class, dir) in classes {
        let mut images = Vec::new();
        walk_images(&dir, &class, &mut images)?;
        if images.is_empty() {
            return Err(data_err(
                &dir,
                format!(
                    "class folder `{class}` has no image (extensions: {})",
                    IMG_EXTENSIONS.join(", ")
                ),
            ));
        }
        rows.extend(images.into_iter().map(|(path, name)| RawRow {
            path,
            name,
            label: class.clone(),
            line: 0,
        }));
    }
    Ok(RawSplit {
        rows,
        source: root.to_path_buf(),
    })
}

/// Parses RFC 4180 CSV text into records with the 1-based line each starts on. Blank lines
/// are skipped; a UTF-8 BOM is dropped; `\r\n` and `\n` both end records.
pub fn parse_csv(text: &str, path: &Path) -> Result<CsvRecords> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut records = Vec::new();
    let mut fields: Vec<String> = Vec::new();
    let mut field = String::new();
    let mut line = 1usize;
    let mut start_line = 1usize;
    let mut in_quotes = false;
    let mut quoted_field = false;
    let mut chars = text.chars().peekable();
    let mut record_has_content = false;
    while let Some(c) = chars.next() {
        if in_quotes {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => in_quotes = false,
                '\n' => {
                    line += 1;
                    field.push('\n');
                }
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' if field.is_empty() && !quoted_field => {
                in_quotes = true;
                quoted_field = true;
                record_has_content = true;
            }
            '"' => {
                return Err(data_err(
                    path,
                    format!("line {line}: a quote inside an unquoted field"),
                ));
            }
            ',' => {
                fields.push(std::mem::take(&mut field));
                quoted_field = false;
                record_has_content = true;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                if record_has_content || !field.is_empty() {
                    fields.push(std::mem::take(&mut field));
                    records.push((start_line, std::mem::take(&mut fields)));
                }
                quoted_field = false;
                record_has_content = false;
                line += 1;
                start_line = line;
            }
            _ => {
                if quoted_field {
                    return Err(data_err(
                        path,
                        format!("line {line}: text after a closing quote"),
                    ));
                }
                field.push(c);
                record_has_content = true;
            }
        }
    }
    if in_quotes {
        return Err(data_err(
            path,
            format!("line {start_line}: unterminated quoted field"),
        ));
    }
    if record_has_content || !field.is_empty() {
        fields.push(field);
        records.push((start_line, fields));
    }
    Ok(records)
}

/// CSV records: `(1-based line, fields)`.
pub type CsvRecords = Vec<(usize, Vec<String>)>;

/// A CSV file with a header: the index of each requested column and the records after it.
pub fn read_csv_columns(path: &Path, columns: &[&str]) -> Result<(Vec<usize>, CsvRecords)> {
    let text = std::fs::read_to_string(path).map_err(|e| TaskError::io(path, e))?;
    let mut records = parse_csv(&text, path)?.into_iter();
    let Some((_, header)) = records.next() else {
        return Err(data_err(path, "empty CSV (no header)"));
    };
    let mut idx = Vec::with_capacity(columns.len());
    for col in columns {
        let i = header
            .iter()
            .position(|h| h.trim() == *col)
            .ok_or_else(|| {
                data_err(
                    path,
                    format!("missing column `{col}` (header: {})", header.join(",")),
                )
            })?;
        idx.push(i);
    }
    let rows: CsvRecords = records.collect();
    for (line, fields) in &rows {
        if fields.len() != header.len() {
            return Err(data_err(
                path,
                format!(
                    "line {line}: {} fields, the header has {}",
                    fields.len(),
                    header.len()
                ),
            ));
        }
    }
    Ok((idx, rows))
}

/// Reads a `path,label` CSV; paths are relative to its folder.
pub fn read_label_csv(csv: &Path) -> Result<RawSplit> {
    let (idx, records) = read_csv_columns(csv, &["path", "label"])?;
    let base = csv.parent().unwrap_or(Path::new(""));
    let mut rows = Vec::with_capacity(records.len());
    for (line, fields) in records {
        let name = fields[idx[0]].trim().to_string();
        let label = fields[idx[1]].trim().to_string();
        if name.is_empty() {
            return Err(data_err(csv, format!("line {line}: empty `path`")));
        }
        if label.is_empty() {
            return Err(data_err(csv, format!("line {line}: empty `label`")));
        }
        rows.push(RawRow {
            path: base.join(&name),
            name,
            label,
            line,
        });
    }
    if rows.is_empty() {
        return Err(data_err(csv, "no rows after the header"));
    }
    Ok(RawSplit {
        rows,
        source: csv.to_path_buf(),
    })
}

/// Reads a split from an ImageFolder directory or a CSV file (chosen by what `path` is).
pub fn read_split(path: &Path) -> Result<RawSplit> {
    if path.is_dir() {
        read_image_folder(path)
    } else {
        read_label_csv(path)
    }
}

/// The sorted class names of a split.
pub fn classes_of(split: &RawSplit) -> Vec<String> {
    let set: BTreeSet<&str> = split.rows.iter().map(|r| r.label.as_str()).collect();
    set.into_iter().map(str::to_string).collect()
}

/// Items of `split` with indices into `classes`; an unknown label is an error naming the
/// file, line and label.
pub fn index_split(split: RawSplit, classes: &[String]) -> Result<Vec<ClassifyItem>> {
    let source = split.source;
    split
        .rows
        .into_iter()
        .map(|r| {
            let label = classes.binary_search(&r.label).map_err(|_| {
                let at = if r.line > 0 {
                    format!("line {}: ", r.line)
                } else {
                    format!("{}: ", r.name)
                };
                data_err(
                    &source,
                    format!(
                        "{at}unknown label {:?} (not a class of the training split: {})",
                        r.label,
                        classes.join(", ")
                    ),
                )
            })?;
            Ok(ClassifyItem {
                path: r.path,
                name: r.name,
                label,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("coca-classify-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn touch(p: &Path) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, b"x").unwrap();
    }

    #[test]
    fn image_folder_is_sorted_filtered_and_recursive() {
        let d = tmp("folder");
        for f in [
            "dog/b.JPG",
            "dog/a.png",
            "dog/notes.txt",
            "dog/.hidden.jpg",
            "cat/sub/z.jpeg",
            "cat/c.webp",
            "Bird/x.TIFF",
            ".cache/y.jpg",
        ] {
            touch(&d.join(f));
        }
        touch(&d.join("stray.jpg"));
        let s = read_image_folder(&d).unwrap();
        let names: Vec<&str> = s.rows.iter().map(|r| r.name.as_str()).collect();
        // Code-point order: upper case before lower case, as Python's sorted().
        assert_eq!(
            names,
            [
                "Bird/x.TIFF",
                "cat/c.webp",
                "cat/sub/z.jpeg",
                "dog/a.png",
                "dog/b.JPG"
            ]
        );
        assert_eq!(classes_of(&s), ["Bird", "cat", "dog"]);
        assert_eq!(s.rows[2].path, d.join("cat/sub/z.jpeg"));
    }

    #[test]
    fn empty_class_folder_is_named() {
        let d = tmp("empty");
        touch(&d.join("a/1.jpg"));
        touch(&d.join("b/readme.md"));
        let err = read_image_folder(&d).unwrap_err().to_string();
        assert!(err.contains(&d.join("b").display().to_string()), "{err}");
        assert!(err.contains("no image"), "{err}");
    }

    #[test]
    fn csv_quotes_lines_and_columns() {
        let text = "label,extra,path\r\n\"a, b\",\"x\"\"y\",img/1.jpg\n\ncat,\"multi\nline\",\"img/2 ,.jpg\"\n";
        let recs = parse_csv(text, Path::new("t.csv")).unwrap();
        assert_eq!(recs.len(), 3);
        assert_eq!(
            recs[1],
            (2, vec!["a, b".into(), "x\"y".into(), "img/1.jpg".into()])
        );
        assert_eq!(recs[2].0, 4);
        assert_eq!(recs[2].1[1], "multi\nline");
        assert!(parse_csv("a,\"b\nc", Path::new("t.csv")).is_err());
        assert!(parse_csv("a,b\"c\n", Path::new("t.csv")).is_err());

        let d = tmp("csv");
        std::fs::write(d.join("l.csv"), text).unwrap();
        let s = read_label_csv(&d.join("l.csv")).unwrap();
        assert_eq!(s.rows[0].path, d.join("img/1.jpg"));
        assert_eq!(s.rows[1].label, "cat");
        assert_eq!(s.rows[1].line, 4);
        assert_eq!(classes_of(&s), ["a, b", "cat"]);
    }

    #[test]
    fn csv_missing_column_names_file_and_column() {
        let d = tmp("csvcol");
        let p = d.join("train.csv");
        std::fs::write(&p, "path,class\na.jpg,cat\n").unwrap();
        let err = read_label_csv(&p).unwrap_err().to_string();
        assert!(err.contains("train.csv"), "{err}");
        assert!(err.contains("missing column `label`"), "{err}");
        std::fs::write(&p, "path,label\na.jpg,cat,extra\n").unwrap();
        let err = read_label_csv(&p).unwrap_err().to_string();
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn unknown_label_names_file_line_and_label() {
        let d = tmp("unknown");
        let p = d.join("val.csv");
        std::fs::write(&p, "path,label\na.jpg,cat\nb.jpg,zebra\n").unwrap();
        let classes = vec!["cat".to_string(), "dog".to_string()];
        let err = index_split(read_label_csv(&p).unwrap(), &classes)
            .unwrap_err()
            .to_string();
        assert!(err.contains("val.csv"), "{err}");
        assert!(err.contains("line 3"), "{err}");
        assert!(err.contains("\"zebra\""), "{err}");
        let items = index_split(
            read_label_csv(&p).unwrap(),
            &["cat".into(), "dog".into(), "zebra".into()],
        )
        .unwrap();
        assert_eq!(items.iter().map(|i| i.label).collect::<Vec<_>>(), [0, 2]);
    }

    #[test]
    fn image_extensions() {
        assert!(is_image_file("a.JpEg"));
        assert!(is_image_file("a.b.webp"));
        assert!(!is_image_file("a.gif"));
        assert!(!is_image_file(".jpg"));
        assert!(!is_image_file("jpg"));
    }
}
