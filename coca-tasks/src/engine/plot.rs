//! PNG plots of a fine-tuning run: training loss, learning rate(s) and validation metrics.
//!
//! [`charts_from_metrics`] turns a `metrics.jsonl` into [`Chart`]s and [`write_png`] draws them,
//! stacked vertically, into one PNG (written atomically, so a viewer never sees a half-written
//! file).
//!
//! Text needs a TrueType/OpenType font found at run time (see [`font_available`]): the
//! environment variable `COCA_PLOT_FONT` names one explicitly (`none` disables text), otherwise
//! common system locations are searched. Without a font the charts are still drawn (lines, grid,
//! frame), just without any text.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use plotters::coord::Shift;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::error::{Result, TaskError};

/// Width of the PNG in pixels.
const WIDTH: u32 = 1000;
/// Height of each chart in pixels.
const CHART_HEIGHT: u32 = 320;
/// Font family name under which the discovered font is registered (plotters' sans-serif).
const FAMILY: &str = "sans-serif";
/// A font family that is never registered (used in no-font mode).
const NO_FONT: &str = "coca-plot-no-font";

/// One line of a chart.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series {
    /// Legend label.
    pub name: String,
    /// `(x, y)` points, drawn in the given order; non-finite points are skipped.
    pub points: Vec<(f64, f64)>,
    /// Draw the raw values faintly plus a smoothed solid line (forward-backward EMA, no lag).
    pub smooth: bool,
}

/// One chart (panel) of a PNG.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Chart {
    /// Caption above the chart.
    pub title: String,
    /// X axis description.
    pub x_label: String,
    /// Y axis description.
    pub y_label: String,
    /// Logarithmic y axis; falls back to linear when some value is not positive.
    pub log_y: bool,
    /// Lines of the chart.
    pub series: Vec<Series>,
}

/// Draws `charts` stacked vertically into one PNG (1000 px wide, 320 px per chart).
///
/// The file is written to a temporary file in the same directory and renamed into place.
pub fn write_png(path: &Path, charts: &[Chart]) -> Result<()> {
    render(path, charts, font_available())
}

/// Reads a `metrics.jsonl` and builds the standard charts.
///
/// Each non-blank line is a JSON object. Records with `"kind": "train"` or `"kind": "eval"` need
/// a numeric `"step"`; records of other kinds (or without a kind) are ignored, as are
/// non-numeric fields. Charts, each only when it has data (the loss chart is always returned):
///
/// - training loss: `loss` and the task's loss terms (every other numeric train field that is
///   not a learning rate, `grad_norm` or a count), smoothed;
/// - learning rates (train fields starting with `lr`);
/// - the global gradient norm before clipping (`grad_norm`), smoothed;
/// - validation losses: eval fields containing `loss` or named like a training loss term;
/// - validation metrics: the other eval fields. `metric` (the field checkpoints are ranked by)
///   is left out when it repeats another field, or its negation, at every step.
///
/// If a step repeats (a resumed run) the last value wins. Malformed lines give
/// [`TaskError::Json`] with the 1-based line number.
pub fn charts_from_metrics(jsonl: &Path) -> Result<Vec<Chart>> {
    let text = std::fs::read_to_string(jsonl).map_err(|e| TaskError::io(jsonl, e))?;
    let bad = |line: usize, msg: String| TaskError::Json {
        path: jsonl.to_path_buf(),
        line: Some(line),
        msg,
    };
    let mut train: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    let mut eval: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for (idx, line) in text.lines().enumerate() {
        let line_no = idx + 1;
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value =
            serde_json::from_str(line).map_err(|e| bad(line_no, e.to_string()))?;
        let serde_json::Value::Object(obj) = value else {
            return Err(bad(line_no, "expected a JSON object".into()));
        };
        let target = match obj.get("kind").and_then(|k| k.as_str()) {
            Some("train") => &mut train,
            Some("eval") => &mut eval,
            _ => continue,
        };
        let step = obj
            .get("step")
            .and_then(|s| s.as_f64())
            .filter(|s| s.is_finite())
            .ok_or_else(|| bad(line_no, "record has no numeric \"step\"".into()))?;
        for (key, v) in &obj {
            if BOOKKEEPING_KEYS.contains(&key.as_str()) {
                continue;
            }
            if let Some(y) = v.as_f64() {
                target.entry(key.clone()).or_default().push((step, y));
            }
        }
    }

    let step_chart = |title: &str, y_label: &str, series: Vec<Series>, log_y: bool| Chart {
        title: title.into(),
        x_label: "step".into(),
        y_label: y_label.into(),
        log_y,
        series,
    };
    let mut charts = Vec::new();
    let lr = take_series(&mut train, |k| k.starts_with("lr"), "lr", false);
    let grad_norm = take_series(&mut train, |k| k == "grad_norm", "", true);
    let loss = take_series(&mut train, |_| true, "loss", true);
    let loss_terms: Vec<String> = loss.iter().map(|s| s.name.clone()).collect();
    let log_loss = wide_positive_range(&loss);
    charts.push(step_chart("Training loss", "loss", loss, log_loss));
    if !lr.is_empty() {
        charts.push(step_chart("Learning rate", "learning rate", lr, false));
    }
    if !grad_norm.is_empty() {
        let log = wide_positive_range(&grad_norm);
        charts.push(step_chart(
            "Gradient norm (global, before clipping)",
            "L2 norm",
            grad_norm,
            log,
        ));
    }
    drop_repeated_metric(&mut eval);
    let is_loss = |k: &str| k.contains("loss") || loss_terms.iter().any(|t| t == k);
    let val_losses = take_series(&mut eval, is_loss, "loss", false);
    if !val_losses.is_empty() {
        charts.push(step_chart("Validation losses", "loss", val_losses, false));
    }
    let metrics = take_series(&mut eval, |_| true, "metric", false);
    if !metrics.is_empty() {
        charts.push(step_chart("Validation metrics", "value", metrics, false));
    }
    Ok(charts)
}

/// Removes the eval field `metric` when another field equals it, or its negation (a loss
/// ranked by `-loss`), at every step.
fn drop_repeated_metric(eval: &mut BTreeMap<String, Vec<(f64, f64)>>) {
    let Some(metric) = eval.get("metric") else {
        return;
    };
    let same = |other: &[(f64, f64)], sign: f64| {
        other.len() == metric.len()
            && other
                .iter()
                .zip(metric)
                .all(|(a, b)| a.0 == b.0 && (sign * a.1 - b.1).abs() <= 1e-9 * b.1.abs().max(1.0))
    };
    let repeated = eval
        .iter()
        .any(|(k, v)| k != "metric" && (same(v, 1.0) || same(v, -1.0)));
    if repeated {
        eval.remove("metric");
    }
}

/// Numeric fields that are not metrics.
const BOOKKEEPING_KEYS: &[&str] = &[
    "step",
    "epoch",
    "time",
    "timestamp",
    "elapsed_s",
    "wall_s",
    "img_per_s",
    "samples_per_s",
    "skipped_images",
];

/// Removes the fields selected by `pick` and returns them as series (`first` leads, then by
/// name), sorted by step with the last value kept for a repeated step.
fn take_series(
    fields: &mut BTreeMap<String, Vec<(f64, f64)>>,
    pick: impl Fn(&str) -> bool,
    first: &str,
    smooth: bool,
) -> Vec<Series> {
    let mut names: Vec<String> = fields.keys().filter(|k| pick(k)).cloned().collect();
    names.sort_by_key(|k| (k != first, k.clone()));
    names
        .into_iter()
        .filter_map(|name| {
            let mut points = fields.remove(&name)?;
            points.sort_by(|a, b| a.0.total_cmp(&b.0)); // stable: equal steps keep file order
            let mut deduped: Vec<(f64, f64)> = Vec::with_capacity(points.len());
            for p in points {
                match deduped.last_mut() {
                    Some(last) if last.0 == p.0 => *last = p,
                    _ => deduped.push(p),
                }
            }
            Some(Series {
                name,
                points: deduped,
                smooth,
            })
        })
        .collect()
}

/// True if all finite y values are positive and span more than a factor of 20.
fn wide_positive_range(series: &[Series]) -> bool {
    let ys = || series.iter().flat_map(|s| s.points.iter().map(|p| p.1));
    let ys_finite = || ys().filter(|y| y.is_finite());
    let lo = ys_finite().fold(f64::INFINITY, f64::min);
    let hi = ys_finite().fold(f64::NEG_INFINITY, f64::max);
    lo > 0.0 && hi / lo > 20.0
}

// ---------------------------------------------------------------------------------------------
// Fonts

/// Whether a font could be registered for chart text (searched once per process).
///
/// Order: `COCA_PLOT_FONT` (a font file; `none` disables text), well-known files
/// (DejaVu Sans, Liberation Sans, Noto Sans, Arial, ...), then a shallow scan of the usual font
/// directories for `.ttf`/`.otf` files.
pub fn font_available() -> bool {
    static FONT_OK: OnceLock<bool> = OnceLock::new();
    *FONT_OK.get_or_init(|| {
        if let Some(explicit) = std::env::var_os("COCA_PLOT_FONT").filter(|v| !v.is_empty()) {
            if explicit.eq_ignore_ascii_case("none") {
                return false;
            }
            if register(Path::new(&explicit)) {
                return true;
            }
        }
        font_candidates().iter().any(|p| register(p))
    })
}

/// Registers the font at `path` (and a `-Bold` sibling if there is one); false if unusable.
fn register(path: &Path) -> bool {
    let Some(bytes) = read_font(path) else {
        return false;
    };
    if plotters::style::register_font(FAMILY, FontStyle::Normal, bytes).is_err() {
        return false;
    }
    if let (Some(stem), Some(ext)) = (path.file_stem(), path.extension()) {
        let stem = stem.to_string_lossy();
        let base = stem.strip_suffix("-Regular").unwrap_or(&stem);
        let bold = path.with_file_name(format!("{base}-Bold.{}", ext.to_string_lossy()));
        if let Some(bytes) = read_font(&bold) {
            let _ = plotters::style::register_font(FAMILY, FontStyle::Bold, bytes);
        }
    }
    true
}

/// Reads a plausible font file into leaked (process-lifetime) memory, as plotters requires.
fn read_font(path: &Path) -> Option<&'static [u8]> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() || meta.len() < 1024 || meta.len() > 64 << 20 {
        return None;
    }
    let bytes = std::fs::read(path).ok()?;
    // TrueType, OpenType (CFF) and "true" (old Apple) magic numbers.
    let magic = bytes.get(..4)?;
    if !matches!(magic, [0, 1, 0, 0] | b"OTTO" | b"true") {
        return None;
    }
    Some(Box::leak(bytes.into_boxed_slice()))
}

/// Candidate font files, best first.
fn font_candidates() -> Vec<PathBuf> {
    const KNOWN: &[&str] = &[
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/TTF/DejaVuSans.ttf",
        "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
        "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
        "/usr/share/fonts/liberation-sans/LiberationSans-Regular.ttf",
        "/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf",
        "/usr/share/fonts/noto/NotoSans-Regular.ttf",
        "/System/Library/Fonts/Supplemental/Arial.ttf",
        "/Library/Fonts/Arial.ttf",
        "/System/Library/Fonts/Geneva.ttf",
        "C:\\Windows\\Fonts\\arial.ttf",
        "C:\\Windows\\Fonts\\segoeui.ttf",
    ];
    let mut out: Vec<PathBuf> = KNOWN.iter().map(PathBuf::from).collect();

    let mut dirs: Vec<PathBuf> = [
        "/usr/share/fonts",
        "/usr/local/share/fonts",
        "/System/Library/Fonts",
        "/Library/Fonts",
    ]
    .iter()
    .map(PathBuf::from)
    .collect();
    if let Some(home) = std::env::var_os("HOME") {
        let home = PathBuf::from(home);
        dirs.push(home.join(".local/share/fonts"));
        dirs.push(home.join(".fonts"));
    }
    let mut found = Vec::new();
    let mut budget = 5000usize; // directory entries examined at most
    for dir in dirs {
        scan_fonts(&dir, 3, &mut budget, &mut found);
    }
    found.sort_by_key(|p| (font_rank(p), p.clone()));
    out.extend(found);
    out
}

/// Collects `.ttf`/`.otf` files under `dir`, descending at most `depth` levels.
fn scan_fonts(dir: &Path, depth: usize, budget: &mut usize, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if *budget == 0 {
            return;
        }
        *budget -= 1;
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            if depth > 0 {
                scan_fonts(&path, depth - 1, budget, out);
            }
        } else if path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("ttf") || e.eq_ignore_ascii_case("otf"))
        {
            out.push(path);
        }
    }
}

/// Lower is better: plain sans-serif faces first, decorative/symbol faces last.
fn font_rank(path: &Path) -> u32 {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let mut rank = 0;
    if !name.contains("sans") {
        rank += 4;
    }
    for bad in [
        "bold",
        "italic",
        "oblique",
        "light",
        "thin",
        "black",
        "condensed",
        "mono",
    ] {
        if name.contains(bad) {
            rank += 2;
        }
    }
    for very_bad in ["math", "symbol", "emoji", "dingbat", "icon", "serif-"] {
        if name.contains(very_bad) {
            rank += 20;
        }
    }
    rank
}

// ---------------------------------------------------------------------------------------------
// Rendering

/// Distinct line colours (the matplotlib "tab10" palette).
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Draws `charts` into `path`; `text` false draws no text at all (no font needed).
fn render(path: &Path, charts: &[Chart], text: bool) -> Result<()> {
    let data_err = |msg: String| TaskError::Data {
        path: path.to_path_buf(),
        msg,
    };
    if charts.is_empty() {
        return Err(data_err("no charts to draw".into()));
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .ok_or_else(|| data_err("not a file path".into()))?
        .to_string_lossy();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    // The `.png` extension matters: the encoder picks the format from it.
    let tmp = dir.join(format!(
        ".{file_name}.{}.{}.tmp.png",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let height = CHART_HEIGHT.saturating_mul(charts.len() as u32);
    let drawn = (|| -> std::result::Result<(), String> {
        let root = BitMapBackend::new(&tmp, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        for (area, chart) in root.split_evenly((charts.len(), 1)).iter().zip(charts) {
            draw_chart(area, chart, text).map_err(|e| format!("chart {:?}: {e}", chart.title))?;
        }
        root.present().map_err(|e| e.to_string())
    })();
    let result = drawn
        .map_err(data_err)
        .and_then(|()| std::fs::rename(&tmp, path).map_err(|e| TaskError::io(path, e)));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// A y axis that is linear or base-10 logarithmic, with readable tick positions.
#[derive(Debug, Clone)]
struct YAxis {
    lo: f64,
    hi: f64,
    log: bool,
}

impl YAxis {
    /// Position of `v` along the axis, 0 at `lo` and 1 at `hi`.
    fn frac(&self, v: f64) -> f64 {
        if self.log {
            (v.log10() - self.lo.log10()) / (self.hi.log10() - self.lo.log10())
        } else {
            (v - self.lo) / (self.hi - self.lo)
        }
    }

    /// Ticks at mantissas `m` × 10^k inside the range.
    fn log_ticks(&self, mantissas: &[f64]) -> Vec<f64> {
        let (k0, k1) = (
            self.lo.log10().floor() as i32,
            self.hi.log10().ceil() as i32,
        );
        let mut out = Vec::new();
        for k in k0..=k1 {
            for m in mantissas {
                let v = m * 10f64.powi(k);
                if v >= self.lo * (1.0 - 1e-12) && v <= self.hi * (1.0 + 1e-12) {
                    out.push(v);
                }
            }
        }
        out
    }
}

impl Ranged for YAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let t = self.frac(*value);
        let px = limit.0 as f64 + t * (limit.1 - limit.0) as f64;
        if px.is_nan() {
            limit.0
        } else {
            px.round().clamp(-1e7, 1e7) as i32
        }
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        let max = hint.max_num_points();
        let linear = || RangedCoordf64::from(self.lo..self.hi).key_points(max);
        if !self.log || max == 0 {
            return linear();
        }
        let sets: &[&[f64]] = if hint.weight().allow_light_points() {
            &[
                &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0],
                &[1.0, 2.0, 5.0],
                &[1.0],
            ]
        } else {
            &[&[1.0, 2.0, 5.0], &[1.0]]
        };
        let mut best = Vec::new();
        for set in sets {
            let ticks = self.log_ticks(set);
            if ticks.len() <= max {
                best = ticks;
                break;
            }
            best = ticks;
        }
        if best.len() > max {
            let stride = best.len().div_ceil(max);
            best = best.into_iter().step_by(stride).collect();
        }
        if best.len() < 2 { linear() } else { best }
    }

    fn range(&self) -> Range<f64> {
        self.lo..self.hi
    }
}

/// Finite points of a series (and positive y when `log`).
fn clean(points: &[(f64, f64)], log: bool) -> Vec<(f64, f64)> {
    points
        .iter()
        .copied()
        .filter(|(x, y)| x.is_finite() && y.is_finite() && (!log || *y > 0.0))
        .collect()
}

/// Zero-lag smoothing: a bias-corrected exponential moving average run forwards and then
/// backwards, with a window that grows with the number of points.
fn smooth(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let n = points.len() as f64;
    let window = (n / 60.0).max(if n >= 10.0 { 2.0 } else { 1.0 });
    let w = 1.0 - 1.0 / window;
    let ema = |ys: &mut dyn Iterator<Item = &mut f64>| {
        let (mut acc, mut norm) = (0.0, 0.0);
        for y in ys {
            acc = w * acc + (1.0 - w) * *y;
            norm = w * norm + (1.0 - w);
            *y = acc / norm;
        }
    };
    let mut out = points.to_vec();
    ema(&mut out.iter_mut().map(|p| &mut p.1));
    ema(&mut out.iter_mut().rev().map(|p| &mut p.1));
    out
}

/// Outline of the per-bucket min/max band of `points` over the x range `x`, `buckets` wide.
fn envelope(points: &[(f64, f64)], x: (f64, f64), buckets: usize) -> Vec<(f64, f64)> {
    let mut bands: Vec<Option<(f64, f64, f64)>> = vec![None; buckets]; // (x, min, max)
    for &(px, py) in points {
        let b = ((px - x.0) / (x.1 - x.0) * buckets as f64) as usize; // saturating cast
        let slot = &mut bands[b.min(buckets - 1)];
        *slot = Some(match *slot {
            None => (px, py, py),
            Some((bx, lo, hi)) => (bx, lo.min(py), hi.max(py)),
        });
    }
    let bands: Vec<_> = bands.into_iter().flatten().collect();
    let upper = bands.iter().map(|&(bx, _, hi)| (bx, hi));
    let lower = bands.iter().rev().map(|&(bx, lo, _)| (bx, lo));
    upper.chain(lower).collect()
}

/// `lo..hi` of the values, padded by `frac` of the span; widened if degenerate.
fn padded_range(values: impl Iterator<Item = f64>, frac: f64, log: bool) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if !(lo.is_finite() && hi.is_finite()) {
        return if log { (0.1, 10.0) } else { (0.0, 1.0) };
    }
    if log {
        let (a, b) = (lo.log10(), hi.log10());
        let pad = if b - a < 1e-9 { 0.15 } else { (b - a) * frac };
        let range = (10f64.powf(a - pad), 10f64.powf(b + pad));
        if range.0 > 0.0 && range.1.is_finite() && range.0 < range.1 {
            return range;
        }
        return (lo, hi.max(lo * 2.0));
    }
    let span = hi - lo;
    let pad = if span <= f64::EPSILON * hi.abs().max(lo.abs()) || span == 0.0 {
        if hi.abs() > 0.0 { hi.abs() * 0.1 } else { 1.0 }
    } else {
        span * frac
    };
    let range = (lo - pad, hi + pad);
    if range.0.is_finite() && range.1.is_finite() && range.0 < range.1 {
        range
    } else if lo < hi {
        (lo, hi)
    } else {
        (lo - 1.0, lo + 1.0)
    }
}

/// Tick label for a linear axis whose ticks are about `step` apart.
fn fmt_linear(v: f64, step: f64) -> String {
    if v == 0.0 || v.abs() < step * 1e-6 {
        return "0".into();
    }
    let a = v.abs();
    if !(1e-3..1e6).contains(&a) {
        let digits = (a.log10().floor() - step.abs().log10().floor()).clamp(0.0, 6.0) as usize;
        return trim_sci(&format!("{v:.digits$e}"));
    }
    let decimals = (-step.abs().log10().floor()).clamp(0.0, 8.0) as usize;
    trim_fixed(&format!("{v:.decimals$}"))
}

/// Tick label with three significant digits (log axes).
fn fmt_sig(v: f64) -> String {
    let a = v.abs();
    if v == 0.0 {
        "0".into()
    } else if !(1e-3..1e6).contains(&a) {
        trim_sci(&format!("{v:.2e}"))
    } else {
        let decimals = (2.0 - a.log10().floor()).clamp(0.0, 8.0) as usize;
        trim_fixed(&format!("{v:.decimals$}"))
    }
}

/// `"2.50e-4"` → `"2.5e-4"`.
fn trim_sci(s: &str) -> String {
    match s.split_once('e') {
        Some((m, e)) => format!("{}e{e}", trim_fixed(m)),
        None => s.to_string(),
    }
}

/// `"1.500"` → `"1.5"`, `"2.000"` → `"2"`.
fn trim_fixed(s: &str) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s.to_string()
    }
}

/// Picks the legend corner that covers the fewest data points.
fn legend_position(
    points: &[(f64, f64)],
    x: (f64, f64),
    y: &YAxis,
    rows: usize,
) -> SeriesLabelPosition {
    let h = ((rows as f64 * 20.0 + 14.0) / 240.0).min(0.9);
    let w = 0.3;
    let corners = [
        (SeriesLabelPosition::UpperRight, true, true),
        (SeriesLabelPosition::LowerRight, true, false),
        (SeriesLabelPosition::UpperLeft, false, true),
        (SeriesLabelPosition::LowerLeft, false, false),
    ];
    let mut best = (usize::MAX, SeriesLabelPosition::UpperRight);
    for (pos, right, upper) in corners {
        let count = points
            .iter()
            .filter(|&&(px, py)| {
                let fx = (px - x.0) / (x.1 - x.0);
                let fy = y.frac(py);
                let in_x = if right { fx >= 1.0 - w } else { fx <= w };
                let in_y = if upper { fy >= 1.0 - h } else { fy <= h };
                in_x && in_y
            })
            .count();
        if count < best.0 {
            best = (count, pos);
        }
    }
    best.1
}

type AreaResult = std::result::Result<(), Box<dyn std::error::Error>>;

/// Draws one chart into `area`.
fn draw_chart(
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    chart: &Chart,
    text: bool,
) -> AreaResult {
    // Log scale only if every finite value is positive (and there is at least one).
    let finite_ys = || {
        chart
            .series
            .iter()
            .flat_map(|s| s.points.iter())
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .map(|p| p.1)
    };
    let log = chart.log_y && finite_ys().next().is_some() && finite_ys().all(|y| y > 0.0);
    let fell_back = chart.log_y && !log && finite_ys().next().is_some();

    let series: Vec<(&Series, Vec<(f64, f64)>)> = chart
        .series
        .iter()
        .map(|s| (s, clean(&s.points, log)))
        .collect();
    let all: Vec<(f64, f64)> = series.iter().flat_map(|(_, p)| p.iter().copied()).collect();
    let x = padded_range(all.iter().map(|p| p.0), 0.01, false);
    let (ylo, yhi) = padded_range(all.iter().map(|p| p.1), 0.05, log);
    let y_axis = YAxis {
        lo: ylo,
        hi: yhi,
        log,
    };

    let mut builder = ChartBuilder::on(area);
    builder.margin(10).margin_right(25);
    if text {
        let mut title = chart.title.clone();
        if fell_back {
            title.push_str("  (linear y: values <= 0)");
        }
        // `FontDesc::style` would keep the regular face; look the bold one up explicitly.
        let title_style = TextStyle::from(FontDesc::new(
            FontFamily::Name(FAMILY),
            19.0,
            FontStyle::Bold,
        ))
        .color(&RGBColor(40, 40, 40));
        builder
            .caption(title, title_style)
            .x_label_area_size(42)
            .y_label_area_size(78);
    }
    let mut ctx = builder.build_cartesian_2d(x.0..x.1, y_axis.clone())?;

    let x_step = (x.1 - x.0) / 10.0;
    let x_fmt = move |v: &f64| fmt_linear(*v, x_step);
    let y_step = (yhi - ylo) / 6.0;
    let y_fmt = move |v: &f64| {
        if log {
            fmt_sig(*v)
        } else {
            fmt_linear(*v, y_step)
        }
    };
    let mut mesh = ctx.configure_mesh();
    mesh.x_labels(10)
        .y_labels(7)
        .x_max_light_lines(2)
        .y_max_light_lines(2)
        .bold_line_style(BLACK.mix(0.12))
        .light_line_style(BLACK.mix(0.04));
    if text {
        mesh.x_desc(chart.x_label.as_str())
            .y_desc(chart.y_label.as_str())
            .label_style((FAMILY, 14))
            .axis_desc_style((FAMILY, 15))
            .axis_style(BLACK.mix(0.6))
            .x_label_formatter(&x_fmt)
            .y_label_formatter(&y_fmt);
    } else {
        // No labels are drawn; the unregistered family makes any stray text fail loudly in tests.
        mesh.disable_x_axis()
            .disable_y_axis()
            .label_style(FontFamily::Name(NO_FONT));
    }
    mesh.draw()?;
    if !text {
        // Without labels there is no axis: frame the plotting area instead.
        let frame = ctx.plotting_area().strip_coord_spec();
        let (w, h) = frame.dim_in_pixel();
        frame.draw(&Rectangle::new(
            [(0, 0), (w as i32 - 1, h as i32 - 1)],
            BLACK.mix(0.6),
        ))?;
    }

    let plot_width = (ctx.plotting_area().dim_in_pixel().0 as usize).max(1);
    let mut rows = 0;
    for (i, (s, points)) in series.iter().enumerate() {
        if points.is_empty() {
            continue;
        }
        let color = PALETTE[i % PALETTE.len()];
        let solid = color.stroke_width(2);
        let name = s.name.clone();
        if s.smooth && points.len() > 2 {
            let faint = color.mix(0.25);
            if points.len() > 4 * plot_width {
                // Too dense for a line (it would turn solid): draw the min/max envelope instead.
                let band = envelope(points, x, plot_width);
                ctx.draw_series(std::iter::once(Polygon::new(band, faint.filled())))?;
            } else {
                ctx.draw_series(LineSeries::new(points.iter().copied(), faint))?;
            }
            let smoothed = smooth(points);
            let drawn = ctx.draw_series(LineSeries::new(smoothed, solid))?;
            if text {
                drawn
                    .label(format!("{name} (smoothed)"))
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], solid));
            }
        } else {
            let drawn = ctx.draw_series(LineSeries::new(points.iter().copied(), solid))?;
            if text {
                drawn
                    .label(name)
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], solid));
            }
            if points.len() <= 60 {
                ctx.draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
            }
        }
        rows += 1;
    }

    if text && rows > 0 {
        ctx.configure_series_labels()
            .position(legend_position(&all, x, &y_axis, rows))
            .margin(8)
            .label_font((FAMILY, 14))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .draw()?;
    }
    if text && all.is_empty() {
        let plot = ctx.plotting_area().strip_coord_spec();
        let (w, h) = plot.dim_in_pixel();
        let grey = BLACK.mix(0.5);
        let style = TextStyle::from((FAMILY, 18).into_font())
            .color(&grey)
            .pos(Pos::new(HPos::Center, VPos::Center));
        plot.draw_text("no data yet", &style, (w as i32 / 2, h as i32 / 2))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh scratch directory, removed on drop.
    struct TempDir(PathBuf);
    impl TempDir {
        fn new(tag: &str) -> Self {
            static N: AtomicU64 = AtomicU64::new(0);
            let dir = std::env::temp_dir().join(format!(
                "coca-plot-{tag}-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn synthetic_charts() -> Vec<Chart> {
        let loss: Vec<(f64, f64)> = (0..600)
            .map(|i| {
                let noise = ((i * 7919 % 97) as f64 / 97.0 - 0.5) * 0.6;
                (
                    i as f64,
                    4.0 * (-(i as f64) / 150.0).exp() + 0.3 + noise * 0.5,
                )
            })
            .collect();
        let lr: Vec<(f64, f64)> = (0..600)
            .map(|i| {
                let warm = (i as f64 / 50.0).min(1.0);
                (i as f64, 1e-4 * warm * (1.0 - i as f64 / 600.0))
            })
            .collect();
        vec![
            Chart {
                title: "Training loss".into(),
                x_label: "step".into(),
                y_label: "loss".into(),
                log_y: true,
                series: vec![Series {
                    name: "loss".into(),
                    points: loss,
                    smooth: true,
                }],
            },
            Chart {
                title: "Learning rate".into(),
                x_label: "step".into(),
                y_label: "learning rate".into(),
                log_y: true, // contains 0: falls back to linear
                series: vec![
                    Series {
                        name: "lr".into(),
                        points: lr.clone(),
                        smooth: false,
                    },
                    Series {
                        name: "lr_head".into(),
                        points: lr.iter().map(|&(x, y)| (x, y * 10.0)).collect(),
                        smooth: false,
                    },
                ],
            },
            Chart {
                title: "Degenerate".into(),
                x_label: "step".into(),
                y_label: "value".into(),
                log_y: false,
                series: vec![
                    Series {
                        name: "empty".into(),
                        points: vec![],
                        smooth: true,
                    },
                    Series {
                        name: "single".into(),
                        points: vec![(100.0, 0.5)],
                        smooth: true,
                    },
                    Series {
                        name: "nan".into(),
                        points: vec![(f64::NAN, 1.0), (100.0, f64::INFINITY), (100.0, 0.5)],
                        smooth: false,
                    },
                ],
            },
        ]
    }

    /// Decodes the PNG, checks its size and that it is not a single colour.
    fn check_png(path: &Path, charts: usize) {
        let img = image::open(path).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), (WIDTH, CHART_HEIGHT * charts as u32));
        let first = *img.get_pixel(0, 0);
        let differing = img.pixels().filter(|p| **p != first).count();
        assert!(
            differing > 1000,
            "image is (nearly) blank: {differing} pixels differ"
        );
    }

    #[test]
    fn writes_decodable_png() {
        let dir = TempDir::new("png");
        let path = dir.0.join("plot.png");
        let charts = synthetic_charts();
        write_png(&path, &charts).unwrap();
        check_png(&path, charts.len());
        // Overwriting works and leaves no temporary files behind.
        write_png(&path, &charts[..1]).unwrap();
        check_png(&path, 1);
        let names: Vec<_> = std::fs::read_dir(&dir.0).unwrap().flatten().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn no_font_mode_draws_without_text() {
        let dir = TempDir::new("nofont");
        let path = dir.0.join("plot.png");
        let charts = synthetic_charts();
        render(&path, &charts, false).unwrap();
        check_png(&path, charts.len());
    }

    #[test]
    fn empty_and_constant_charts() {
        let dir = TempDir::new("degenerate");
        let path = dir.0.join("plot.png");
        let charts = vec![
            Chart {
                log_y: true, // no title, no axis labels, no series
                ..Chart::default()
            },
            Chart {
                title: "constant".into(),
                log_y: true,
                series: vec![Series {
                    name: "c".into(),
                    points: (0..50).map(|i| (i as f64, 2.0)).collect(),
                    smooth: true,
                }],
                ..Chart::default()
            },
            Chart {
                title: "zero".into(),
                series: vec![Series {
                    name: "z".into(),
                    points: vec![(5.0, 0.0), (5.0, 0.0)],
                    smooth: false,
                }],
                ..Chart::default()
            },
        ];
        let mut charts = charts;
        charts.push(Chart {
            title: "dense (envelope)".into(),
            series: vec![Series {
                name: "dense".into(),
                points: (0..20_000)
                    .map(|i| (i as f64, ((i * 7919) % 101) as f64))
                    .collect(),
                smooth: true,
            }],
            ..Chart::default()
        });
        for text in [true, false] {
            render(&path, &charts, text && font_available()).unwrap();
            let img = image::open(&path).unwrap();
            assert_eq!(img.height(), CHART_HEIGHT * charts.len() as u32);
        }
        assert!(write_png(&path, &[]).is_err());
    }

    #[test]
    fn charts_from_metrics_builds_standard_charts() {
        let dir = TempDir::new("metrics");
        let jsonl = dir.0.join("metrics.jsonl");
        let mut s = String::new();
        for step in 1..=200 {
            let loss = 3.0 / (step as f64).sqrt();
            s.push_str(&format!(
                "{{\"kind\":\"train\",\"step\":{step},\"loss\":{loss},\"caption\":{},\"lr\":{},\"lr_head\":{},\"grad_norm\":{},\"img_per_s\":512.0,\"skipped_images\":3,\"note\":\"x\"}}\n",
                loss / 2.0,
                1e-5 * step as f64 / 200.0,
                1e-4 * step as f64 / 200.0,
                10.0 / step as f64,
            ));
            if step % 50 == 0 {
                let val_loss = 1.0 - step as f64 / 500.0;
                s.push_str(&format!(
                    "{{\"kind\":\"eval\",\"step\":{step},\"metric\":{},\"accuracy\":{},\"val_loss\":{val_loss},\"caption\":0.5,\"split\":\"val\"}}\n",
                    -val_loss,
                    0.5 + step as f64 / 1000.0,
                ));
            }
        }
        s.push_str("{\"kind\":\"info\",\"message\":\"done\"}\n\n");
        std::fs::write(&jsonl, s).unwrap();
        let charts = charts_from_metrics(&jsonl).unwrap();
        let titles: Vec<_> = charts.iter().map(|c| c.title.as_str()).collect();
        assert_eq!(
            titles,
            [
                "Training loss",
                "Learning rate",
                "Gradient norm (global, before clipping)",
                "Validation losses",
                "Validation metrics"
            ]
        );
        let names = |c: &Chart| c.series.iter().map(|s| s.name.clone()).collect::<Vec<_>>();
        // The loss leads, its terms follow; counts and throughput are not plotted.
        assert_eq!(names(&charts[0]), ["loss", "caption"]);
        assert!(charts[0].series.iter().all(|s| s.smooth));
        assert_eq!(charts[0].series[0].points.len(), 200);
        assert_eq!(names(&charts[1]), ["lr", "lr_head"]);
        assert_eq!(names(&charts[2]), ["grad_norm"]);
        assert!(charts[2].log_y, "grad norm spans 10 .. 0.05");
        // `caption` is a training loss term, so its validation value is a loss too; `metric`
        // is `-val_loss` and left out.
        assert_eq!(names(&charts[3]), ["caption", "val_loss"]);
        assert_eq!(names(&charts[4]), ["accuracy"]);
        assert_eq!(charts[4].series[0].points.len(), 4);
        let png = dir.0.join("metrics.png");
        write_png(&png, &charts).unwrap();
        check_png(&png, 5);
    }

    /// Charts of a `metrics.jsonl` holding `text`.
    fn charts_of(text: &str) -> Vec<Chart> {
        let dir = TempDir::new("jsonl");
        let jsonl = dir.0.join("metrics.jsonl");
        std::fs::write(&jsonl, text).unwrap();
        charts_from_metrics(&jsonl).unwrap()
    }

    fn last_chart_names(charts: &[Chart]) -> Vec<&str> {
        let last = charts.last().unwrap();
        last.series.iter().map(|s| s.name.as_str()).collect()
    }

    #[test]
    fn metric_is_kept_unless_it_repeats_a_field() {
        let charts = charts_of(
            "{\"kind\":\"eval\",\"step\":1,\"metric\":0.5,\"accuracy\":0.5,\"consistency\":0.1}\n\
             {\"kind\":\"eval\",\"step\":2,\"metric\":0.6,\"accuracy\":0.6,\"consistency\":0.2}\n",
        );
        assert_eq!(last_chart_names(&charts), ["accuracy", "consistency"]);
        // Equal at one step only: a different quantity, kept (and shown first).
        let charts = charts_of(
            "{\"kind\":\"eval\",\"step\":1,\"metric\":0.5,\"accuracy\":0.5}\n\
             {\"kind\":\"eval\",\"step\":2,\"metric\":0.7,\"accuracy\":0.6}\n",
        );
        assert_eq!(last_chart_names(&charts), ["metric", "accuracy"]);
    }

    #[test]
    fn repeated_steps_keep_last_value() {
        let charts = charts_of(
            "{\"kind\":\"train\",\"step\":1,\"loss\":5}\n{\"kind\":\"train\",\"step\":2,\"loss\":4}\n\
             {\"kind\":\"train\",\"step\":2,\"loss\":3}\n{\"kind\":\"train\",\"step\":3,\"loss\":2}\n",
        );
        assert_eq!(charts.len(), 1);
        assert_eq!(
            charts[0].series[0].points,
            [(1.0, 5.0), (2.0, 3.0), (3.0, 2.0)]
        );
    }

    #[test]
    fn malformed_line_names_file_and_line() {
        let dir = TempDir::new("malformed");
        let jsonl = dir.0.join("metrics.jsonl");
        std::fs::write(
            &jsonl,
            "{\"kind\":\"train\",\"step\":1,\"loss\":2.0}\n\n{\"kind\":\"train\",\"step\":2,\"loss\":\n",
        )
        .unwrap();
        let err = charts_from_metrics(&jsonl).unwrap_err();
        assert!(
            matches!(err, TaskError::Json { line: Some(3), .. }),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(msg.contains("metrics.jsonl:3"), "{msg}");

        std::fs::write(&jsonl, "{\"kind\":\"eval\",\"acc\":0.5}\n").unwrap();
        let err = charts_from_metrics(&jsonl).unwrap_err();
        assert!(
            matches!(err, TaskError::Json { line: Some(1), .. }),
            "{err:?}"
        );

        std::fs::write(&jsonl, "[1, 2]\n").unwrap();
        assert!(charts_from_metrics(&jsonl).is_err());
        assert!(charts_from_metrics(&dir.0.join("missing.jsonl")).is_err());
    }

    #[test]
    fn tick_labels_are_compact() {
        assert_eq!(fmt_linear(2000.0, 100.0), "2000");
        assert_eq!(fmt_linear(0.25, 0.05), "0.25");
        assert_eq!(fmt_linear(2.5e-4, 1e-5), "2.5e-4");
        assert_eq!(fmt_linear(0.30000000000000004, 0.1), "0.3");
        assert_eq!(fmt_sig(0.5), "0.5");
        assert_eq!(fmt_sig(2.0), "2");
        assert_eq!(fmt_sig(1e-5), "1e-5");
    }

    #[test]
    fn log_axis_ticks() {
        let axis = YAxis {
            lo: 0.3,
            hi: 5.0,
            log: true,
        };
        assert_eq!(axis.key_points(10), [0.5, 1.0, 2.0, 5.0]);
        let narrow = YAxis {
            lo: 2.1,
            hi: 2.6,
            log: true,
        };
        assert!(narrow.key_points(6).len() >= 2);
    }
}
