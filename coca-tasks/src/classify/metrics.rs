//! Classification metrics from class scores: top-1 (`accuracy`), `top5`, mean per-class
//! accuracy, the confusion matrix (and its PNG), the predictions CSV and its scoring.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::data::{parse_csv, read_split};
use crate::error::{Result, TaskError};

/// Scores of a classification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassifyScores {
    /// Top-1 accuracy (a fraction).
    pub accuracy: f64,
    /// Share of examples whose class is among the 5 best scored (all classes if fewer).
    pub top5: f64,
    /// Mean over the classes present in the gold labels of their top-1 recall.
    pub mean_class_accuracy: f64,
    /// Examples scored.
    pub total: usize,
    /// `confusion[gold][predicted]` counts over the class list.
    pub confusion: Vec<Vec<usize>>,
}

impl ClassifyScores {
    /// `accuracy`, `top5`, `mean_class_accuracy` as metrics.
    pub fn metrics(&self) -> BTreeMap<String, f64> {
        BTreeMap::from([
            ("accuracy".to_string(), self.accuracy),
            ("top5".to_string(), self.top5),
            ("mean_class_accuracy".to_string(), self.mean_class_accuracy),
        ])
    }

    /// What `coca-cli evaluate classify|video` prints: the metrics as JSON and as text.
    pub fn report(&self) -> crate::registry::Report {
        let metrics = self.metrics();
        let text = metrics
            .iter()
            .map(|(k, v)| format!("{k}: {v:.4}"))
            .collect::<Vec<_>>()
            .join("\n");
        crate::registry::Report {
            json: serde_json::json!(metrics),
            text,
        }
    }
}

/// Class indices of `probs` from best to worst (ties: lower index first); NaN ranks last.
pub fn ranking(probs: &[f32]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..probs.len()).collect();
    idx.sort_by(|&a, &b| {
        let (pa, pb) = (probs[a], probs[b]);
        match (pa.is_nan(), pb.is_nan()) {
            (true, true) => a.cmp(&b),
            (true, false) => std::cmp::Ordering::Greater,
            (false, true) => std::cmp::Ordering::Less,
            _ => pb.total_cmp(&pa).then(a.cmp(&b)),
        }
    });
    idx
}

/// Scores rankings (best class first) against gold class indices, over `classes` classes.
/// Errors when the lengths differ, there is no example, or an index is out of range.
pub fn score_rankings(
    rankings: &[Vec<usize>],
    gold: &[usize],
    classes: usize,
) -> Result<ClassifyScores> {
    let err = |msg: String| TaskError::Data {
        path: "<predictions>".into(),
        msg,
    };
    if rankings.len() != gold.len() {
        return Err(err(format!(
            "{} predictions for {} labelled examples",
            rankings.len(),
            gold.len()
        )));
    }
    if gold.is_empty() {
        return Err(err("no examples to score".into()));
    }
    let mut confusion = vec![vec![0usize; classes]; classes];
    let (mut top1, mut top5) = (0usize, 0usize);
    let mut per = vec![(0usize, 0usize); classes];
    for (r, &g) in rankings.iter().zip(gold) {
        let Some(&first) = r.first() else {
            return Err(err("an empty ranking".into()));
        };
        if g >= classes || first >= classes {
            return Err(err(format!("class index out of range ({classes} classes)")));
        }
        confusion[g][first] += 1;
        let hit = first == g;
        top1 += usize::from(hit);
        top5 += usize::from(r.iter().take(5).any(|&c| c == g));
        per[g].0 += usize::from(hit);
        per[g].1 += 1;
    }
    let present: Vec<f64> = per
        .iter()
        .filter(|(_, t)| *t > 0)
        .map(|&(c, t)| c as f64 / t as f64)
        .collect();
    let n = gold.len() as f64;
    Ok(ClassifyScores {
        accuracy: top1 as f64 / n,
        top5: top5 as f64 / n,
        mean_class_accuracy: present.iter().sum::<f64>() / present.len() as f64,
        total: gold.len(),
        confusion,
    })
}

/// One line of the predictions CSV: `name,label,top5` with `top5` = `cat:0.9100;dog:0.0500;...`
/// (the 5 best classes and their probabilities, best first).
pub fn prediction_line(name: &str, probs: &[f32], classes: &[String]) -> String {
    let r = ranking(probs);
    let top: Vec<String> = r
        .iter()
        .take(5)
        .map(|&c| format!("{}:{:.4}", classes[c], probs[c]))
        .collect();
    format!(
        "{},{},{}",
        csv_field(name),
        csv_field(&classes[r[0]]),
        csv_field(&top.join(";"))
    )
}

/// A CSV field, quoted when needed.
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// A predictions CSV: header `<key>,label,top5`, then one [`prediction_line`] per item.
pub fn predictions_csv<'a>(
    key: &str,
    rows: impl IntoIterator<Item = (&'a str, &'a [f32])>,
    classes: &[String],
) -> Vec<u8> {
    let mut out = format!("{key},label,top5\n");
    for (name, probs) in rows {
        out.push_str(&prediction_line(name, probs, classes));
        out.push('\n');
    }
    out.into_bytes()
}

/// One parsed prediction: the item key, the top-1 label and the ranked labels.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedPrediction {
    pub key: String,
    pub line: usize,
    /// Ranked labels, best first (the top-1 label first even without a `top5` column).
    pub ranked: Vec<String>,
}

/// Reads a predictions CSV with columns `key` (`path` or `clip`), `label` and optional `top5`.
pub fn read_predictions(path: &Path, key: &str) -> Result<Vec<ParsedPrediction>> {
    let text = std::fs::read_to_string(path).map_err(|e| TaskError::io(path, e))?;
    let err = |msg: String| TaskError::Data {
        path: path.to_path_buf(),
        msg,
    };
    let mut recs = parse_csv(&text, path)?.into_iter();
    let (_, header) = recs
        .next()
        .ok_or_else(|| err("empty CSV (no header)".into()))?;
    let col = |c: &str| header.iter().position(|h| h.trim() == c);
    let k = col(key).ok_or_else(|| err(format!("missing column `{key}`")))?;
    let l = col("label").ok_or_else(|| err("missing column `label`".into()))?;
    let t = col("top5");
    let mut out = Vec::new();
    for (line, f) in recs {
        if f.len() != header.len() {
            return Err(err(format!(
                "line {line}: {} fields, the header has {}",
                f.len(),
                header.len()
            )));
        }
        let top1 = f[l].trim().to_string();
        let mut ranked = vec![top1.clone()];
        if let Some(t) = t {
            for (j, part) in f[t].split(';').filter(|p| !p.is_empty()).enumerate() {
                let (label, p) = part.rsplit_once(':').ok_or_else(|| {
                    err(format!(
                        "line {line}: top5 entry {part:?} is not label:prob"
                    ))
                })?;
                let ok = p
                    .trim()
                    .parse::<f64>()
                    .is_ok_and(|v| (0.0..=1.0).contains(&v));
                if !ok {
                    return Err(err(format!(
                        "line {line}: top5 entry {part:?}: the probability is not in [0, 1]"
                    )));
                }
                if j == 0 && label != top1 {
                    return Err(err(format!(
                        "line {line}: top5 starts with {label:?} but label is {top1:?}"
                    )));
                }
                if j > 0 {
                    ranked.push(label.to_string());
                }
            }
        }
        out.push(ParsedPrediction {
            key: f[k].trim().to_string(),
            line,
            ranked,
        });
    }
    Ok(out)
}

/// Scores gold `(key, label)` pairs against parsed predictions. Every gold key needs exactly
/// one prediction; a predicted key that is not labelled is an error naming it and its line.
pub fn score_keyed(
    predictions_path: &Path,
    predictions: &[ParsedPrediction],
    gold: &[(String, String)],
) -> Result<ClassifyScores> {
    let err = |msg: String| TaskError::Data {
        path: predictions_path.to_path_buf(),
        msg,
    };
    let mut classes: Vec<String> = gold.iter().map(|(_, l)| l.clone()).collect();
    for p in predictions {
        classes.extend(p.ranked.iter().cloned());
    }
    classes.sort();
    classes.dedup();
    let index: HashMap<&str, usize> = classes
        .iter()
        .enumerate()
        .map(|(i, c)| (c.as_str(), i))
        .collect();
    let gold_of: HashMap<&str, usize> = gold
        .iter()
        .map(|(k, l)| (k.as_str(), index[l.as_str()]))
        .collect();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut rankings = Vec::new();
    let mut golds = Vec::new();
    for p in predictions {
        let Some(&g) = gold_of.get(p.key.as_str()) else {
            return Err(err(format!(
                "line {}: {:?} is not in the labels",
                p.line, p.key
            )));
        };
        if let Some(first) = seen.insert(p.key.as_str(), p.line) {
            return Err(err(format!(
                "line {}: {:?} already predicted on line {first}",
                p.line, p.key
            )));
        }
        rankings.push(p.ranked.iter().map(|l| index[l.as_str()]).collect());
        golds.push(g);
    }
    if let Some((k, _)) = gold.iter().find(|(k, _)| !seen.contains_key(k.as_str())) {
        let missing = gold.len() - seen.len();
        return Err(err(format!(
            "{missing} labelled items have no prediction, e.g. {k:?}"
        )));
    }
    // Mean class accuracy runs over the gold classes only (score_rankings skips the others).
    score_rankings(&rankings, &golds, classes.len())
}

/// Scores a classification predictions CSV (`path,label,top5`) against labels (a `path,label`
/// CSV or an ImageFolder directory; keys are the listed / relative paths).
pub fn score_predictions_file(predictions: &Path, labels: &Path) -> Result<ClassifyScores> {
    let split = read_split(labels)?;
    let gold: Vec<(String, String)> = split.rows.into_iter().map(|r| (r.name, r.label)).collect();
    let preds = read_predictions(predictions, "path")?;
    score_keyed(predictions, &preds, &gold)
}

/// Draws a confusion matrix (rows: gold class, columns: predicted; cells shaded by the row
/// share) as PNG bytes; class names are written when a font is available
/// ([`crate::engine::plot::font_available`]).
pub fn confusion_png_bytes(matrix: &[Vec<usize>], classes: &[String]) -> Result<Vec<u8>> {
    use plotters::prelude::*;
    let n = matrix.len().max(1);
    let cell: u32 = (480 / n as u32).clamp(6, 48);
    let text = crate::engine::plot::font_available();
    let margin: u32 = if text { 140 } else { 10 };
    let side = margin + cell * n as u32 + 10;
    let (w, h) = (side, side);
    let mut buf = vec![255u8; (w * h * 3) as usize];
    let drawn = (|| -> std::result::Result<(), String> {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        for (g, row) in matrix.iter().enumerate() {
            let total: usize = row.iter().sum();
            for (p, &c) in row.iter().enumerate() {
                let share = if total == 0 {
                    0.0
                } else {
                    c as f64 / total as f64
                };
                let v = (255.0 * (1.0 - share)).round() as u8;
                let color = if g == p {
                    RGBColor(v, v, 255)
                } else {
                    RGBColor(255, v, v)
                };
                let x0 = (margin + p as u32 * cell) as i32;
                let y0 = (margin + g as u32 * cell) as i32;
                root.draw(&Rectangle::new(
                    [(x0, y0), (x0 + cell as i32, y0 + cell as i32)],
                    color.filled(),
                ))
                .map_err(|e| e.to_string())?;
                root.draw(&Rectangle::new(
                    [(x0, y0), (x0 + cell as i32, y0 + cell as i32)],
                    RGBColor(200, 200, 200),
                ))
                .map_err(|e| e.to_string())?;
            }
        }
        if text {
            let style = ("sans-serif", (cell as f64 * 0.6).clamp(8.0, 14.0)).into_font();
            for (i, name) in classes.iter().enumerate().take(n) {
                let short: String = name.chars().take(18).collect();
                let y = (margin + i as u32 * cell + cell / 3) as i32;
                root.draw(&Text::new(short.clone(), (4, y), style.clone()))
                    .map_err(|e| e.to_string())?;
                let x = (margin + i as u32 * cell) as i32;
                root.draw(&Text::new(
                    short,
                    (x + cell as i32 / 3, (margin - 4) as i32),
                    style.clone().transform(FontTransform::Rotate270),
                ))
                .map_err(|e| e.to_string())?;
            }
        }
        root.present().map_err(|e| e.to_string())
    })();
    drawn.map_err(|msg| TaskError::Data {
        path: "<confusion matrix>".into(),
        msg,
    })?;
    let img = image::RgbImage::from_raw(w, h, buf).ok_or_else(|| TaskError::Data {
        path: "<confusion matrix>".into(),
        msg: "bad image buffer".into(),
    })?;
    let mut bytes = Vec::new();
    image::ImageEncoder::write_image(
        image::codecs::png::PngEncoder::new(&mut bytes),
        img.as_raw(),
        w,
        h,
        image::ExtendedColorType::Rgb8,
    )
    .map_err(|e| TaskError::Data {
        path: "<confusion matrix>".into(),
        msg: e.to_string(),
    })?;
    Ok(bytes)
}

/// Writes [`confusion_png_bytes`] to `path` atomically.
pub fn confusion_png(matrix: &[Vec<usize>], classes: &[String], path: &Path) -> Result<()> {
    let bytes = confusion_png_bytes(matrix, classes)?;
    Ok(coca_core::checkpoint::write_atomic(path, &bytes)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top5_and_mean_class_by_hand() {
        // 3 classes; class 0 has 3 examples (2 right), class 1 one (wrong), class 2 none.
        let rankings = vec![
            vec![0, 1, 2],
            vec![0, 2, 1],
            vec![1, 2, 0], // gold 0, rank 3: wrong, in top-5 (3 classes)
            vec![2, 0, 1], // gold 1: wrong
        ];
        let s = score_rankings(&rankings, &[0, 0, 0, 1], 3).unwrap();
        assert_eq!(s.accuracy, 0.5);
        assert_eq!(s.top5, 1.0);
        // (2/3 + 0/1) / 2 classes present.
        assert!((s.mean_class_accuracy - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(
            s.confusion,
            vec![vec![2, 1, 0], vec![0, 0, 1], vec![0, 0, 0]]
        );
        // Top-5 of 7 classes: rank 6 is a miss.
        let r = vec![vec![1, 2, 3, 4, 5, 0, 6], vec![6, 5, 4, 3, 2, 1, 0]];
        let s = score_rankings(&r, &[0, 2], 7).unwrap();
        assert_eq!((s.accuracy, s.top5), (0.0, 0.5));
        assert!(score_rankings(&r, &[0], 7).is_err());
        assert!(score_rankings(&[], &[], 7).is_err());
        assert!(score_rankings(&r, &[0, 9], 7).is_err());
    }

    #[test]
    fn ranking_breaks_ties_by_index_and_puts_nan_last() {
        assert_eq!(ranking(&[0.2, f32::NAN, 0.5, 0.2]), vec![2, 0, 3, 1]);
    }

    #[test]
    fn predictions_round_trip_and_score() {
        let classes: Vec<String> = ["a", "b,c", "d"].iter().map(|s| s.to_string()).collect();
        let bytes = predictions_csv(
            "path",
            [
                ("x/1.jpg", &[0.7f32, 0.2, 0.1][..]),
                ("x/2.jpg", &[0.1f32, 0.3, 0.6][..]),
            ],
            &classes,
        );
        let text = String::from_utf8(bytes).unwrap();
        assert_eq!(
            text.lines().nth(1),
            Some("x/1.jpg,a,\"a:0.7000;b,c:0.2000;d:0.1000\"")
        );
        let d = std::env::temp_dir().join(format!("coca-classify-pred-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join("p.csv");
        std::fs::write(&p, &text).unwrap();
        let parsed = read_predictions(&p, "path").unwrap();
        assert_eq!(parsed[1].ranked, ["d", "b,c", "a"]);
        let gold = vec![
            ("x/1.jpg".to_string(), "a".to_string()),
            ("x/2.jpg".to_string(), "b,c".to_string()),
        ];
        let s = score_keyed(&p, &parsed, &gold).unwrap();
        assert_eq!((s.accuracy, s.top5), (0.5, 1.0));
        // An unlabelled path is named; a missing prediction too.
        let err = score_keyed(&p, &parsed, &gold[..1])
            .unwrap_err()
            .to_string();
        assert!(err.contains("x/2.jpg") && err.contains("line 3"), "{err}");
        let err = score_keyed(&p, &parsed[..1], &gold)
            .unwrap_err()
            .to_string();
        assert!(err.contains("x/2.jpg"), "{err}");
        std::fs::write(&p, "path,top5\nx,a:1\n").unwrap();
        let err = read_predictions(&p, "path").unwrap_err().to_string();
        assert!(err.contains("missing column `label`"), "{err}");
        std::fs::write(&p, "path,label,top5\nx,a,a:7\n").unwrap();
        assert!(read_predictions(&p, "path").is_err());
    }

    #[test]
    fn confusion_png_is_a_png_of_the_matrix() {
        let classes: Vec<String> = ["a", "b"].iter().map(|s| s.to_string()).collect();
        let bytes = confusion_png_bytes(&[vec![3, 1], vec![0, 2]], &classes).unwrap();
        let img = image::load_from_memory(&bytes).unwrap().to_rgb8();
        assert!(img.width() > 20);
        // A perfectly predicted row (class b) has a saturated diagonal cell and a white
        // off-diagonal one.
        let margin = if crate::engine::plot::font_available() {
            140
        } else {
            10
        };
        let cell = 48;
        let px = |g: u32, p: u32| {
            img.get_pixel(margin + p * cell + cell / 2, margin + g * cell + cell / 2)
                .0
        };
        assert_eq!(px(1, 1), [0, 0, 255]);
        assert_eq!(px(1, 0), [255, 255, 255]);
        assert_eq!(px(0, 1), [255, 191, 191]);
    }
}
