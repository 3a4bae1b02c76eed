//! COCO caption metrics equal to `pycocoevalcap` (`COCOEvalCap`): PTB tokenisation, then
//! BLEU-1..4, METEOR, ROUGE-L and CIDEr(-D) on the tokenised text.
//!
//! METEOR needs the reference Java jar: set `COCA_METEOR_JAR` to `meteor-1.5.jar` (with its
//! `data/` folder next to it) and have `java` on `PATH`; otherwise [`CaptionScores::meteor`]
//! is `None` and [`CaptionScores::meteor_note`] says why. No substitute value is ever made up.

pub mod bleu;
pub mod cider;
pub mod meteor;
pub mod ptb;
pub mod rouge;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};

pub(crate) use super::np_mean;
use super::{data_err, is_py_space, read_json};
use crate::error::Result;

/// PTB-tokenised references and candidate of one image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenizedImage {
    /// Tokenised reference captions (at least one).
    pub refs: Vec<String>,
    /// Tokenised candidate caption.
    pub hyp: String,
}

/// Corpus caption scores as `pycocoevalcap` reports them (fractions, not x100).
#[derive(Debug, Clone, PartialEq)]
pub struct CaptionScores {
    /// BLEU-1..4 (corpus level).
    pub bleu: [f64; 4],
    /// ROUGE-L (mean over images).
    pub rouge_l: f64,
    /// CIDEr-D (mean over images), COCO's "CIDEr".
    pub cider: f64,
    /// METEOR 1.5, `None` when it could not be computed (see `meteor_note`).
    pub meteor: Option<f64>,
    /// CIDEr-D of each image.
    pub per_image_cider: BTreeMap<u64, f64>,
    /// METEOR of each image (what the jar prints for it), `None` when `meteor` is.
    pub per_image_meteor: Option<BTreeMap<u64, f64>>,
    /// Why `meteor` is `None`.
    pub meteor_note: Option<String>,
}

impl CaptionScores {
    /// `{"Bleu_1".., "Bleu_4", "METEOR" (only when computed), "ROUGE_L", "CIDEr"}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

impl Serialize for CaptionScores {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        for (k, v) in ["Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4"]
            .iter()
            .zip(self.bleu)
        {
            m.serialize_entry(k, &v)?;
        }
        if let Some(v) = self.meteor {
            m.serialize_entry("METEOR", &v)?;
        }
        m.serialize_entry("ROUGE_L", &self.rouge_l)?;
        m.serialize_entry("CIDEr", &self.cider)?;
        m.end()
    }
}

/// An image entry of a COCO-format ground-truth file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CocoImage {
    /// Image id.
    pub id: u64,
}

/// A caption of a COCO-format ground-truth file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CocoCaptionAnnotation {
    /// Image id.
    pub image_id: u64,
    /// Reference caption.
    pub caption: String,
    /// Annotation id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
}

/// A COCO-format caption ground truth `{images, annotations}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CocoCaptionGt {
    /// Evaluated images; when empty, the images of the annotations.
    #[serde(default)]
    pub images: Vec<CocoImage>,
    /// Reference captions.
    pub annotations: Vec<CocoCaptionAnnotation>,
}

/// One entry of a COCO-format results file `[{image_id, caption}]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CocoCaptionResult {
    /// Image id.
    pub image_id: u64,
    /// Generated caption.
    pub caption: String,
}

/// Groups a ground truth by image. Every listed image needs a caption and every caption a
/// listed image (when `images` is given).
pub fn group_coco_gt(gt: &CocoCaptionGt, path: &Path) -> Result<BTreeMap<u64, Vec<String>>> {
    let mut out: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for im in &gt.images {
        out.insert(im.id, Vec::new());
    }
    let listed = !gt.images.is_empty();
    for a in &gt.annotations {
        match out.get_mut(&a.image_id) {
            Some(v) => v.push(a.caption.clone()),
            None if !listed => out.entry(a.image_id).or_default().push(a.caption.clone()),
            None => {
                return Err(data_err(
                    path,
                    format!("caption for image {} which is not in `images`", a.image_id),
                ));
            }
        }
    }
    if let Some((id, _)) = out.iter().find(|(_, v)| v.is_empty()) {
        return Err(data_err(
            path,
            format!("image {id} has no reference caption"),
        ));
    }
    if out.is_empty() {
        return Err(data_err(path, "no reference captions"));
    }
    Ok(out)
}

/// Reads a COCO-format ground truth, grouped by image id.
pub fn load_coco_caption_gt(path: impl AsRef<Path>) -> Result<BTreeMap<u64, Vec<String>>> {
    let path = path.as_ref();
    let gt: CocoCaptionGt = read_json(path)?;
    group_coco_gt(&gt, path)
}

/// Reads a COCO-format results file; an image may have only one caption.
pub fn load_coco_caption_results(path: impl AsRef<Path>) -> Result<BTreeMap<u64, String>> {
    let path = path.as_ref();
    let res: Vec<CocoCaptionResult> = read_json(path)?;
    let mut out = BTreeMap::new();
    for r in res {
        let id = r.image_id;
        if out.insert(id, r.caption).is_some() {
            return Err(data_err(
                path,
                format!("more than one caption for image {id}"),
            ));
        }
    }
    Ok(out)
}

/// Loads a ground truth and a results file and evaluates; errors name the offending file.
pub fn evaluate_caption_files(
    gt: impl AsRef<Path>,
    results: impl AsRef<Path>,
) -> Result<CaptionScores> {
    let (gp, rp) = (gt.as_ref(), results.as_ref());
    let gts = load_coco_caption_gt(gp)?;
    let res = load_coco_caption_results(rp)?;
    evaluate_inner(&gts, &res, gp, rp, MeteorRun::FromEnv)
}

/// Scores raw (untokenised) captions like `COCOEvalCap.evaluate()`.
///
/// Every ground-truth image needs exactly one result and every result a ground-truth image
/// (upstream asserts both). METEOR is computed only when `COCA_METEOR_JAR` and `java` are
/// available (each call starts the jar, which takes seconds); if they are but the jar fails,
/// that is an error.
pub fn evaluate_captions(
    gts: &BTreeMap<u64, Vec<String>>,
    res: &BTreeMap<u64, String>,
) -> Result<CaptionScores> {
    evaluate_inner(
        gts,
        res,
        Path::new("<ground truth>"),
        Path::new("<results>"),
        MeteorRun::FromEnv,
    )
}

/// [`evaluate_captions`] without METEOR, whatever the environment (no Java process): for
/// callers that only need BLEU, ROUGE-L or CIDEr, e.g. in a loop.
pub fn evaluate_captions_without_meteor(
    gts: &BTreeMap<u64, Vec<String>>,
    res: &BTreeMap<u64, String>,
) -> Result<CaptionScores> {
    evaluate_inner(
        gts,
        res,
        Path::new("<ground truth>"),
        Path::new("<results>"),
        MeteorRun::Off,
    )
}

/// Whether and with which jar [`evaluate_inner`] runs METEOR.
enum MeteorRun {
    /// The jar of `COCA_METEOR_JAR`, when set and `java` is on `PATH`.
    FromEnv,
    /// Not at all.
    Off,
    /// This jar (`java` must be on `PATH`).
    #[cfg(test)]
    Jar(std::path::PathBuf),
}

fn evaluate_inner(
    gts: &BTreeMap<u64, Vec<String>>,
    res: &BTreeMap<u64, String>,
    gt_path: &Path,
    res_path: &Path,
    meteor_run: MeteorRun,
) -> Result<CaptionScores> {
    let images = tokenize_for_eval(gts, res, gt_path, res_path)?;
    let b = bleu::bleu(&images);
    let (rouge_l, _) = rouge::rouge_l(&images);
    let (cider, per_cider) = cider::cider_d(&images);
    let jar = match meteor_run {
        MeteorRun::Off => Err("METEOR not computed: not requested".to_string()),
        MeteorRun::FromEnv => match meteor::meteor_jar_from_env() {
            None => Err(format!(
                "METEOR not computed: {} is not set",
                meteor::METEOR_JAR_ENV
            )),
            Some(_) if !meteor::java_on_path() => {
                Err("METEOR not computed: no `java` on PATH".to_string())
            }
            Some(jar) => Ok(jar),
        },
        #[cfg(test)]
        MeteorRun::Jar(jar) => Ok(jar),
    };
    let (meteor, per_image_meteor, meteor_note) = match jar {
        Err(note) => (None, None, Some(note)),
        Ok(jar) => {
            let (corpus, per) = meteor::meteor_score(&jar, &images)?;
            (
                Some(corpus),
                Some(gts.keys().copied().zip(per).collect()),
                None,
            )
        }
    };
    Ok(CaptionScores {
        bleu: b.corpus,
        rouge_l,
        cider,
        meteor,
        per_image_cider: gts.keys().copied().zip(per_cider).collect(),
        per_image_meteor,
        meteor_note,
    })
}

/// Checks that results and ground truth cover the same images and PTB-tokenises both (as two
/// tokenizer runs, references then candidates, like upstream), in image-id order.
pub fn tokenize_for_eval(
    gts: &BTreeMap<u64, Vec<String>>,
    res: &BTreeMap<u64, String>,
    gt_path: &Path,
    res_path: &Path,
) -> Result<Vec<TokenizedImage>> {
    if let Some(id) = res.keys().find(|id| !gts.contains_key(id)) {
        return Err(data_err(
            res_path,
            format!("result for image {id} which is not in the ground truth"),
        ));
    }
    let missing: BTreeSet<u64> = gts
        .keys()
        .filter(|id| !res.contains_key(id))
        .copied()
        .collect();
    if !missing.is_empty() {
        let some: Vec<u64> = missing.iter().take(5).copied().collect();
        return Err(data_err(
            res_path,
            format!(
                "no result for {} of {} images (e.g. {some:?})",
                missing.len(),
                gts.len()
            ),
        ));
    }
    if gts.is_empty() {
        return Err(data_err(gt_path, "no images to evaluate"));
    }
    if let Some((id, _)) = gts.iter().find(|(_, v)| v.is_empty()) {
        return Err(data_err(
            gt_path,
            format!("image {id} has no reference caption"),
        ));
    }
    let flat: Vec<&str> = gts.values().flatten().map(String::as_str).collect();
    let mut refs = ptb::ptb_tokenize_all(&flat).into_iter();
    let hyps = ptb::ptb_tokenize_all(&res.values().map(String::as_str).collect::<Vec<_>>());
    Ok(gts
        .values()
        .zip(hyps)
        .map(|(v, hyp)| TokenizedImage {
            refs: refs.by_ref().take(v.len()).collect(),
            hyp,
        })
        .collect())
}

/// Python's `str.split()` (runs of whitespace, no empty tokens).
pub(crate) fn py_split(s: &str) -> Vec<&str> {
    s.split(is_py_space).filter(|w| !w.is_empty()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    struct Fixture {
        text: String,
        json: Value,
        order: Vec<u64>,
        gts: BTreeMap<u64, Vec<String>>,
        res: BTreeMap<u64, String>,
    }

    fn fixture() -> Fixture {
        let path = crate::test_paths::fixture("caption-metrics/coco-eval-small.json");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let json: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let order: Vec<u64> = json["image_order"]
            .as_array()
            .expect("image_order")
            .iter()
            .map(|v| v.as_u64().expect("image id"))
            .collect();
        let mut gts: BTreeMap<u64, Vec<String>> = BTreeMap::new();
        for a in json["annotations"].as_array().expect("annotations") {
            let id = a["image_id"].as_u64().expect("image_id");
            gts.entry(id)
                .or_default()
                .push(a["caption"].as_str().expect("caption").to_string());
        }
        let mut res = BTreeMap::new();
        for r in json["results"].as_array().expect("results") {
            res.insert(
                r["image_id"].as_u64().expect("image_id"),
                r["caption"].as_str().expect("caption").to_string(),
            );
        }
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(
            sorted,
            gts.keys().copied().collect::<Vec<_>>(),
            "image_order covers the ground truth"
        );
        Fixture {
            text,
            json,
            order,
            gts,
            res,
        }
    }

    fn strings(v: &Value) -> Vec<String> {
        v.as_array()
            .expect("array")
            .iter()
            .map(|s| s.as_str().expect("string").to_string())
            .collect()
    }

    fn floats(v: &Value) -> Vec<f64> {
        v.as_array()
            .expect("array")
            .iter()
            .map(|x| x.as_f64().expect("number"))
            .collect()
    }

    /// The number literal (or list of them) of key `metric` in the object of key `section` of
    /// the fixture, parsed by Rust's correctly rounded `str::parse`: serde_json without its
    /// `float_roundtrip` feature may read a decimal as the neighbouring double, which would
    /// rule out exact comparisons. Cross-checked against the serde_json values.
    fn exact_floats(f: &Fixture, section: &str, metric: &str) -> Vec<f64> {
        let name = format!("fixture {section}.{metric}");
        let rest = f
            .text
            .find(&format!("\"{section}\""))
            .map(|i| &f.text[i..])
            .unwrap_or_else(|| panic!("{name}: no `{section}`"));
        let key = format!("\"{metric}\"");
        let after = rest
            .find(&key)
            .map(|i| rest[i + key.len()..].trim_start())
            .and_then(|r| r.strip_prefix(':'))
            .map(str::trim_start)
            .unwrap_or_else(|| panic!("{name}: no `{metric}`"));
        let body = match after.strip_prefix('[') {
            Some(list) => list.find(']').map(|e| &list[..e]),
            None => after.find([',', '}']).map(|e| &after[..e]),
        }
        .unwrap_or_else(|| panic!("{name}: unterminated value"));
        let exact: Vec<f64> = body
            .split(',')
            .map(|s| {
                s.trim()
                    .parse()
                    .unwrap_or_else(|e| panic!("{name}: {s:?} is not a number: {e}"))
            })
            .collect();
        let v = &f.json[section][metric];
        let serde = if v.is_array() {
            floats(v)
        } else {
            vec![
                v.as_f64()
                    .unwrap_or_else(|| panic!("{name} is not a number")),
            ]
        };
        assert_close(
            &format!("{name} (text vs serde_json)"),
            &exact,
            &serde,
            0.0,
            1e-15,
        );
        exact
    }

    /// Per-image values of `metric` from the fixture, keyed by image id.
    fn per_image(f: &Fixture, metric: &str) -> BTreeMap<u64, f64> {
        let values = exact_floats(f, "per_image", metric);
        assert_eq!(
            values.len(),
            f.order.len(),
            "fixture per_image.{metric} has one value per image of image_order"
        );
        f.order.iter().copied().zip(values).collect()
    }

    /// Corpus value of `metric` from the fixture.
    fn corpus(f: &Fixture, metric: &str) -> f64 {
        match exact_floats(f, "scores", metric)[..] {
            [v] => v,
            ref other => panic!("fixture scores.{metric}: {other:?} is not one number"),
        }
    }

    /// Fails unless `got` and `want` have the same length and every pair is finite with
    /// `|got - want| <= atol + rtol * |want|`; returns the largest `|got - want|`.
    fn assert_close(name: &str, got: &[f64], want: &[f64], atol: f64, rtol: f64) -> f64 {
        assert_eq!(
            got.len(),
            want.len(),
            "{name}: {} values, the fixture has {}",
            got.len(),
            want.len()
        );
        let mut worst = 0.0_f64;
        for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
            assert!(
                w.is_finite(),
                "{name}[{i}]: fixture value {w} is not finite"
            );
            let d = (g - w).abs();
            assert!(
                g.is_finite() && d <= atol + rtol * w.abs(),
                "{name}[{i}]: {g} vs pycocoevalcap {w} (|diff| {d:e}, atol {atol:e}, rtol {rtol:e})"
            );
            worst = worst.max(d);
        }
        worst
    }

    /// [`assert_close`] on two id-keyed maps, which must have the same ids; a failure names
    /// the image.
    fn assert_close_map(
        name: &str,
        got: &BTreeMap<u64, f64>,
        want: &BTreeMap<u64, f64>,
        atol: f64,
        rtol: f64,
    ) -> f64 {
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            want.keys().collect::<Vec<_>>(),
            "{name}: image ids differ from the fixture's"
        );
        got.iter()
            .zip(want.values())
            .map(|((id, &g), &w)| {
                assert_close(&format!("{name} of image {id}"), &[g], &[w], atol, rtol)
            })
            .fold(0.0, f64::max)
    }

    /// Image ids (in evaluation order) zipped with per-image values, lengths checked.
    fn keyed(ids: &[u64], values: impl ExactSizeIterator<Item = f64>) -> BTreeMap<u64, f64> {
        assert_eq!(values.len(), ids.len(), "one value per image");
        ids.iter().copied().zip(values).collect()
    }

    #[test]
    fn ptb_tokenisation_matches_fixture_exactly() {
        let f = fixture();
        // Same line order as upstream: images in order, references in annotation order.
        let refs: Vec<&str> = f
            .order
            .iter()
            .flat_map(|id| f.gts[id].iter().map(String::as_str))
            .collect();
        let mut got = ptb::ptb_tokenize_all(&refs).into_iter();
        let mut checked = 0;
        for id in &f.order {
            let want = strings(&f.json["ptb_tokenized"]["gts"][id.to_string()]);
            for w in want {
                assert_eq!(
                    got.next().as_deref(),
                    Some(w.as_str()),
                    "reference of image {id}"
                );
                checked += 1;
            }
        }
        assert_eq!(
            got.next(),
            None,
            "more tokenised references than the fixture has"
        );
        let hyps: Vec<&str> = f.order.iter().map(|id| f.res[id].as_str()).collect();
        let got = ptb::ptb_tokenize_all(&hyps);
        assert_eq!(got.len(), hyps.len(), "one tokenised candidate per image");
        for (id, got) in f.order.iter().zip(got) {
            let want = strings(&f.json["ptb_tokenized"]["res"][id.to_string()]);
            assert_eq!(vec![got], want, "candidate of image {id}");
            checked += 1;
        }
        assert_eq!(checked, refs.len() + hyps.len());
    }

    /// Absolute and relative tolerance of the BLEU / ROUGE-L / CIDEr comparisons: f64 sums in
    /// another order than numpy's and `exp`/`log` of another libm (measured: all equal but one
    /// per-image BLEU-2, 1.1e-16 off).
    const ATOL: f64 = 1e-14;
    const RTOL: f64 = 1e-14;

    #[test]
    fn scores_match_pycocoevalcap_fixture() {
        let f = fixture();
        let images = tokenize_for_eval(&f.gts, &f.res, Path::new("gt"), Path::new("res"))
            .expect("tokenises");
        let ids: Vec<u64> = f.gts.keys().copied().collect();
        let want = |name: &str| corpus(&f, name);
        let mut report = Vec::new();
        let check = |name: &str, got: f64, want: f64| {
            let d = assert_close(name, &[got], &[want], ATOL, RTOL);
            format!("{name}: {d:.1e}")
        };

        let b = bleu::bleu(&images);
        for k in 0..4 {
            let name = format!("Bleu_{}", k + 1);
            report.push(check(&name, b.corpus[k], want(&name)));
            let got = keyed(&ids, b.per_image.iter().map(|v| v[k]));
            let d = assert_close_map(&name, &got, &per_image(&f, &name), ATOL, RTOL);
            report.push(format!("{name} per image (max): {d:.1e}"));
        }
        let (rouge, rouge_per) = rouge::rouge_l(&images);
        report.push(check("ROUGE_L", rouge, want("ROUGE_L")));
        let got = keyed(&ids, rouge_per.iter().copied());
        let d = assert_close_map("ROUGE_L", &got, &per_image(&f, "ROUGE_L"), ATOL, RTOL);
        report.push(format!("ROUGE_L per image (max): {d:.1e}"));

        let all = evaluate_captions_without_meteor(&f.gts, &f.res).expect("evaluates");
        report.push(check("CIDEr", all.cider, want("CIDEr")));
        let d = assert_close_map(
            "CIDEr",
            &all.per_image_cider,
            &per_image(&f, "CIDEr"),
            ATOL,
            RTOL,
        );
        report.push(format!("CIDEr per image (max): {d:.1e}"));
        assert_eq!(all.bleu, b.corpus);
        assert_eq!(all.rouge_l, rouge);

        // Without METEOR it is absent, never guessed.
        assert_eq!(all.meteor, None);
        assert_eq!(all.per_image_meteor, None);
        assert_eq!(
            all.meteor_note.as_deref(),
            Some("METEOR not computed: not requested")
        );
        let json = all.to_json();
        assert!(json.get("METEOR").is_none(), "{json}");
        let fields = [
            all.bleu[0],
            all.bleu[1],
            all.bleu[2],
            all.bleu[3],
            all.rouge_l,
            all.cider,
        ];
        for (key, v) in ["Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "ROUGE_L", "CIDEr"]
            .into_iter()
            .zip(fields)
        {
            assert_eq!(
                json.get(key).and_then(Value::as_f64),
                Some(v),
                "{key} in {json}"
            );
        }
        eprintln!(
            "caption fixture agreement (max |diff|): {}",
            report.join("; ")
        );
    }

    /// Whether `CI` says this is a CI run (set, and not empty, `0` or `false`).
    fn in_ci() -> bool {
        std::env::var("CI").is_ok_and(|v| !matches!(v.trim(), "" | "0" | "false" | "FALSE"))
    }

    /// Tolerance of the METEOR comparison: none. The jar does the arithmetic and prints each
    /// double in full (Java `Double.toString`), which Python's `float()` and Rust's `parse` read
    /// back to the same double (measured: corpus and all 60 per-image values identical).
    const METEOR_TOL: f64 = 0.0;

    /// METEOR 1.5 through the reference jar, corpus and per image, against pycocoevalcap's
    /// values. Needs `COCA_METEOR_JAR` (see `.ci/meteor.sh`) and `java`; fails in CI without them.
    #[test]
    fn meteor_matches_pycocoevalcap_fixture() {
        let env = meteor::METEOR_JAR_ENV;
        let Some(jar) = meteor::meteor_jar_from_env() else {
            assert!(
                !in_ci(),
                "CI is set but {env} is not: METEOR must be checked in CI \
                 (export {env}=\"$(.ci/meteor.sh)\")"
            );
            eprintln!(
                "METEOR NOT CHECKED: {env} is not set, so the METEOR fixture test did not run \
                 (export {env}=\"$(.ci/meteor.sh)\" with java on PATH to run it)"
            );
            return;
        };
        assert!(
            meteor::java_on_path(),
            "{env} is set ({}) but there is no `java` on PATH",
            jar.display()
        );
        let f = fixture();
        let all = evaluate_inner(
            &f.gts,
            &f.res,
            Path::new("gt"),
            Path::new("res"),
            MeteorRun::Jar(jar.clone()),
        )
        .unwrap_or_else(|e| panic!("METEOR run failed: {e}"));
        let want = corpus(&f, "METEOR");
        let got = all.meteor.expect("METEOR computed");
        let d_corpus = assert_close("METEOR (corpus)", &[got], &[want], METEOR_TOL, 0.0);
        let per = all
            .per_image_meteor
            .as_ref()
            .expect("per-image METEOR computed");
        let d_per = assert_close_map(
            "METEOR per image",
            per,
            &per_image(&f, "METEOR"),
            METEOR_TOL,
            0.0,
        );
        assert_eq!(all.meteor_note, None);
        assert_eq!(
            all.to_json().get("METEOR").and_then(Value::as_f64),
            Some(got),
            "METEOR in the JSON scores"
        );
        eprintln!(
            "METEOR checked with {}: corpus |diff| {d_corpus:e}, per image max |diff| {d_per:e}",
            jar.display()
        );
    }

    #[test]
    fn coverage_errors_are_reported() {
        let gts: BTreeMap<u64, Vec<String>> = [
            (1, vec!["a dog".to_string()]),
            (2, vec!["a cat".to_string()]),
        ]
        .into_iter()
        .collect();
        let res: BTreeMap<u64, String> = [(1, "a dog".to_string())].into_iter().collect();
        let err = evaluate_captions(&gts, &res).unwrap_err().to_string();
        assert!(err.contains("no result for 1 of 2 images"), "{err}");
        let res: BTreeMap<u64, String> = [
            (1, "a dog".to_string()),
            (2, "x".to_string()),
            (3, "y".to_string()),
        ]
        .into_iter()
        .collect();
        let err = evaluate_captions(&gts, &res).unwrap_err().to_string();
        assert!(
            err.contains("image 3") && err.contains("not in the ground truth"),
            "{err}"
        );
    }

    #[test]
    fn coco_loaders_check_the_files() {
        let dir = std::env::temp_dir().join(format!("coca-caption-loaders-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let gt = dir.join("gt.json");
        std::fs::write(
            &gt,
            r#"{"images":[{"id":1},{"id":2}],"annotations":[{"image_id":1,"caption":"A dog.","id":7},{"image_id":2,"caption":"A cat.","id":8}]}"#,
        )
        .expect("write");
        let res = dir.join("res.json");
        std::fs::write(
            &res,
            r#"[{"image_id":1,"caption":"a dog"},{"image_id":5,"caption":"a cat"}]"#,
        )
        .expect("write");
        let err = evaluate_caption_files(&gt, &res).unwrap_err().to_string();
        assert!(err.contains("res.json") && err.contains("image 5"), "{err}");
        std::fs::write(
            &res,
            r#"[{"image_id":1,"caption":"a dog"},{"image_id":1,"caption":"a cat"}]"#,
        )
        .expect("write");
        let err = load_coco_caption_results(&res).unwrap_err().to_string();
        assert!(
            err.contains("res.json") && err.contains("more than one caption"),
            "{err}"
        );
        std::fs::write(
            &res,
            r#"[{"image_id":1,"caption":"a dog"},{"image_id":2,"caption":"a cat"}]"#,
        )
        .expect("write");
        let s = evaluate_caption_files(&gt, &res).expect("evaluates");
        assert!(s.bleu[0] > 0.99 && s.rouge_l > 0.99, "{s:?}");
        std::fs::write(
            &gt,
            r#"{"images":[{"id":1},{"id":3}],"annotations":[{"image_id":1,"caption":"A dog."}]}"#,
        )
        .expect("write");
        let err = load_coco_caption_gt(&gt).unwrap_err().to_string();
        assert!(
            err.contains("gt.json") && err.contains("image 3 has no reference"),
            "{err}"
        );
        std::fs::write(&gt, "{not json").expect("write");
        let err = load_coco_caption_gt(&gt).unwrap_err().to_string();
        assert!(
            err.contains("gt.json") && err.contains("malformed JSON"),
            "{err}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
