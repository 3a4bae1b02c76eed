//! VQAv2 questions and ten human-like answers per question about the COCO images, plus the
//! answer-prior baselines.

use std::collections::BTreeMap;
use std::path::Path;

use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::Serialize;

use super::coco::CocoImage;
use super::facts::Fact;
use super::scene::{Color, Kind, Region, Scene, SizeClass, pick, pick_weighted};
use super::text::{capitalize, number_word, with_article};
use super::write_json;
use super::{VqaBaseline, VqaSummary};
use crate::error::Result;

/// What kind of value an answer is (drives synonyms and annotator mistakes).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Space {
    YesNo,
    Number,
    Color(Color),
    Kind(Kind),
    Where,
    Size(SizeClass),
}

/// A question with its canonical (already normalised) answer.
#[derive(Clone, Debug)]
struct Qa {
    question: String,
    question_type: &'static str,
    answer_type: &'static str,
    answer: String,
    space: Space,
}

fn yes_no(scene: &Scene, rng: &mut StdRng) -> Option<Qa> {
    let want = rng.random_bool(0.5);
    let shape = pick(rng, &scene.shapes).clone();
    let (question, qt, fact) = match rng.random_range(0..6) {
        0 => {
            let (c, k) = if want {
                (shape.color, shape.kind)
            } else {
                scene.absent_pair(rng)
            };
            let noun = format!("{} {}", c.name(), k.name());
            (
                format!("is there {}?", with_article(&noun)),
                "is there a",
                Fact::Exists(c, k),
            )
        }
        1 => {
            let absent: Vec<Kind> = Kind::ALL
                .into_iter()
                .filter(|&k| scene.count_kind(k) == 0)
                .collect();
            let k = if want || absent.is_empty() {
                shape.kind
            } else {
                *pick(rng, &absent)
            };
            if rng.random_bool(0.5) {
                (
                    format!("are there any {}?", k.plural()),
                    "are there",
                    Fact::ExistsKind(k),
                )
            } else {
                (
                    format!("is there {} in the picture?", with_article(k.name())),
                    "is there a",
                    Fact::ExistsKind(k),
                )
            }
        }
        2 => {
            let absent: Vec<Color> = Color::ALL
                .into_iter()
                .filter(|&c| scene.count_color(c) == 0)
                .collect();
            let c = if want || absent.is_empty() {
                shape.color
            } else {
                *pick(rng, &absent)
            };
            (
                format!("are there any {} shapes?", c.name()),
                "are there",
                Fact::ExistsColor(c),
            )
        }
        3 => {
            let s = scene.unique_kind(shape.kind)?;
            let others: Vec<Color> = Color::ALL.into_iter().filter(|&c| c != s.color).collect();
            let c = if want { s.color } else { *pick(rng, &others) };
            (
                format!("is the {} {}?", s.kind.name(), c.name()),
                "is the",
                Fact::Exists(c, s.kind),
            )
        }
        4 => {
            let regions: Vec<Region> = Region::ALL
                .into_iter()
                .filter(|r| r.contains(shape.col, shape.row) == want)
                .collect();
            let r = *pick(rng, &regions);
            (
                format!("is the {} {}?", shape.noun(), r.phrase()),
                "is the",
                Fact::At(shape.color, shape.kind, r),
            )
        }
        _ => {
            let z = match (shape.size, want) {
                (SizeClass::Small, true) | (SizeClass::Large, false) => SizeClass::Small,
                _ => SizeClass::Large,
            };
            (
                format!("is the {} {}?", shape.noun(), z.name()),
                "is the",
                Fact::SizeIs(shape.color, shape.kind, z),
            )
        }
    };
    let yes = fact.eval(scene);
    Some(Qa {
        question,
        question_type: qt,
        answer_type: "yes/no",
        answer: if yes { "yes" } else { "no" }.to_string(),
        space: Space::YesNo,
    })
}

fn number(scene: &Scene, rng: &mut StdRng) -> Qa {
    let shape = pick(rng, &scene.shapes).clone();
    let (question, n) = match rng.random_range(0..4) {
        0 => (
            (*pick(
                rng,
                &[
                    "how many shapes are there?",
                    "how many shapes are in the picture?",
                ],
            ))
            .to_string(),
            scene.shapes.len(),
        ),
        1 | 2 => {
            let k = if rng.random_bool(0.75) {
                shape.kind
            } else {
                *pick(rng, &Kind::ALL)
            };
            let q = if rng.random_bool(0.5) {
                format!("how many {} are there?", k.plural())
            } else {
                format!("how many {} can you see?", k.plural())
            };
            (q, scene.count_kind(k))
        }
        _ => {
            let c = if rng.random_bool(0.75) {
                shape.color
            } else {
                *pick(rng, &Color::ALL)
            };
            (
                format!("how many {} shapes are there?", c.name()),
                scene.count_color(c),
            )
        }
    };
    Qa {
        question,
        question_type: "how many",
        answer_type: "number",
        answer: n.to_string(),
        space: Space::Number,
    }
}

fn other(scene: &Scene, rng: &mut StdRng) -> Option<Qa> {
    let shape = pick(rng, &scene.shapes).clone();
    let qa = |question: String, qt: &'static str, answer: &str, space: Space| Qa {
        question,
        question_type: qt,
        answer_type: "other",
        answer: answer.to_string(),
        space,
    };
    Some(match pick_weighted(rng, &[4, 3, 2, 1]) {
        0 => {
            if rng.random_bool(0.6) {
                let s = scene.unique_kind(shape.kind)?;
                qa(
                    format!("what color is the {}?", s.kind.name()),
                    "what color is the",
                    s.color.name(),
                    Space::Color(s.color),
                )
            } else {
                let r = *pick(rng, &Region::ALL);
                let s = scene.unique_in(r)?;
                qa(
                    format!("what color is the shape {}?", r.phrase()),
                    "what color is the",
                    s.color.name(),
                    Space::Color(s.color),
                )
            }
        }
        1 => {
            if rng.random_bool(0.6) {
                let r = *pick(rng, &Region::ALL);
                let s = scene.unique_in(r)?;
                qa(
                    format!("what shape is {}?", r.phrase()),
                    "what shape is",
                    s.kind.name(),
                    Space::Kind(s.kind),
                )
            } else {
                let s = scene.unique_color(shape.color)?;
                qa(
                    format!("what is the shape of the {} object?", s.color.name()),
                    "what is the",
                    s.kind.name(),
                    Space::Kind(s.kind),
                )
            }
        }
        2 => qa(
            format!("where is the {}?", shape.noun()),
            "where is the",
            shape.where_answer(),
            Space::Where,
        ),
        _ => qa(
            format!("what size is the {}?", shape.noun()),
            "what size is the",
            shape.size.name(),
            Space::Size(shape.size),
        ),
    })
}

const WHERE: [&str; 9] = [
    "top left",
    "top",
    "top right",
    "left",
    "center",
    "right",
    "bottom left",
    "bottom",
    "bottom right",
];

fn where_variants(answer: &str) -> Vec<String> {
    match answer {
        "center" => vec!["middle".into(), "in the middle".into()],
        "left" | "right" => vec![format!("on the {answer}"), format!("{answer} side")],
        "top" | "bottom" => vec![format!("at the {answer}"), format!("{answer} middle")],
        corner => vec![
            format!("{corner} corner"),
            corner.replace("top", "upper").replace("bottom", "lower"),
        ],
    }
}

/// Ten annotator answers (answer, confidence): the canonical answer at least six times, some
/// synonyms or variants, and sometimes one or two wrong answers.
fn human_answers(qa: &Qa, rng: &mut StdRng) -> Vec<(String, &'static str)> {
    let canon = qa.answer.as_str();
    let variants: Vec<String> = match qa.space {
        Space::YesNo => {
            if canon == "yes" {
                vec!["yeah".into(), "yep".into()]
            } else {
                vec!["nope".into()]
            }
        }
        Space::Number => match canon.parse::<usize>() {
            Ok(n) => vec![number_word(n)],
            Err(_) => Vec::new(),
        },
        Space::Color(c) => c.answer_variants().iter().map(|s| s.to_string()).collect(),
        Space::Kind(k) => k.answer_variants().iter().map(|s| s.to_string()).collect(),
        Space::Size(z) => z.answer_variants().iter().map(|s| s.to_string()).collect(),
        Space::Where => where_variants(canon),
    };
    let wrongs: Vec<String> = match qa.space {
        Space::YesNo => vec![if canon == "yes" { "no" } else { "yes" }.into()],
        Space::Number => match canon.parse::<usize>() {
            Ok(0) => vec!["1".into()],
            Ok(n) => vec![(n - 1).to_string(), (n + 1).to_string()],
            Err(_) => Vec::new(),
        },
        Space::Color(c) => Color::ALL
            .iter()
            .filter(|&&o| o != c)
            .map(|o| o.name().to_string())
            .collect(),
        Space::Kind(k) => Kind::ALL
            .iter()
            .filter(|&&o| o != k)
            .map(|o| o.name().to_string())
            .collect(),
        Space::Size(z) => vec![
            if z == SizeClass::Small {
                "large"
            } else {
                "small"
            }
            .into(),
        ],
        Space::Where => WHERE
            .iter()
            .filter(|&&w| w != canon)
            .map(|w| w.to_string())
            .collect(),
    };
    let n_wrong = if wrongs.is_empty() {
        0
    } else {
        pick_weighted(rng, &[60, 28, 12])
    };
    let n_var = if variants.is_empty() {
        0
    } else {
        pick_weighted(rng, &[50, 30, 20])
    };
    let mut out: Vec<(String, &'static str)> = Vec::with_capacity(10);
    for _ in 0..n_var {
        let conf = if rng.random_bool(0.6) { "yes" } else { "maybe" };
        out.push((pick(rng, &variants).clone(), conf));
    }
    for _ in 0..n_wrong {
        let conf = if rng.random_bool(0.7) { "maybe" } else { "yes" };
        out.push((pick(rng, &wrongs).clone(), conf));
    }
    while out.len() < 10 {
        let conf = if rng.random_bool(0.85) {
            "yes"
        } else {
            "maybe"
        };
        out.push((canon.to_string(), conf));
    }
    out.shuffle(rng);
    out
}

/// Questions for one image: about five, distinct, mixed like VQAv2 (yes/no ~38%, number ~14%,
/// other ~48%).
fn questions_for(scene: &Scene, per_image: usize, rng: &mut StdRng) -> Vec<Qa> {
    let mut out: Vec<Qa> = Vec::new();
    let mut tries = 0;
    while out.len() < per_image && tries < 60 {
        tries += 1;
        let qa = match pick_weighted(rng, &[38, 14, 48]) {
            0 => yes_no(scene, rng),
            1 => Some(number(scene, rng)),
            _ => other(scene, rng),
        };
        if let Some(qa) = qa
            && !out.iter().any(|q| q.question == qa.question)
        {
            out.push(qa);
        }
    }
    out
}

#[derive(Serialize)]
struct QuestionsFile {
    info: Empty,
    task_type: &'static str,
    data_type: &'static str,
    license: Empty,
    data_subtype: &'static str,
    questions: Vec<QuestionOut>,
}

#[derive(Serialize)]
struct Empty {}

#[derive(Serialize)]
struct QuestionOut {
    image_id: u64,
    question: String,
    question_id: u64,
}

#[derive(Serialize)]
struct AnnotationsFile {
    info: Empty,
    license: Empty,
    data_subtype: &'static str,
    annotations: Vec<AnnotationOut>,
}

#[derive(Serialize)]
struct AnnotationOut {
    question_type: &'static str,
    multiple_choice_answer: String,
    answers: Vec<AnswerOut>,
    image_id: u64,
    answer_type: &'static str,
    question_id: u64,
}

#[derive(Serialize)]
struct AnswerOut {
    answer: String,
    answer_confidence: &'static str,
    answer_id: u32,
}

/// Writes the question and annotation files of `train2014` and `val2014` (questions about the
/// COCO images of each directory) and computes the answer-prior baselines on `val2014`.
pub(crate) fn write(
    out: &Path,
    images: &[CocoImage],
    per_image: usize,
    rng: &mut StdRng,
) -> Result<VqaSummary> {
    let mut summary = VqaSummary::default();
    for subtype in ["train2014", "val2014"] {
        let mut in_dir: Vec<&CocoImage> = images.iter().filter(|im| im.dir == subtype).collect();
        in_dir.sort_by_key(|im| im.id);
        let mut questions = Vec::new();
        let mut annotations = Vec::new();
        for im in in_dir {
            for (k, qa) in questions_for(&im.scene, per_image, rng)
                .into_iter()
                .enumerate()
            {
                let question_id = im.id * 1000 + k as u64;
                let answers = human_answers(&qa, rng)
                    .into_iter()
                    .enumerate()
                    .map(|(i, (answer, conf))| AnswerOut {
                        answer,
                        answer_confidence: conf,
                        answer_id: i as u32 + 1,
                    })
                    .collect();
                questions.push(QuestionOut {
                    image_id: im.id,
                    question: capitalize(&qa.question),
                    question_id,
                });
                *summary
                    .answer_types
                    .entry(subtype.to_string())
                    .or_default()
                    .entry(qa.answer_type.to_string())
                    .or_default() += 1;
                annotations.push(AnnotationOut {
                    question_type: qa.question_type,
                    multiple_choice_answer: qa.answer,
                    answers,
                    image_id: im.id,
                    answer_type: qa.answer_type,
                    question_id,
                });
            }
        }
        if subtype == "val2014" {
            summary.baseline = baseline(&annotations);
        }
        summary
            .questions_count
            .insert(subtype.to_string(), questions.len());
        let qpath = format!("vqa/v2_OpenEnded_mscoco_{subtype}_questions.json");
        let apath = format!("vqa/v2_mscoco_{subtype}_annotations.json");
        write_json(
            &out.join(&qpath),
            &QuestionsFile {
                info: Empty {},
                task_type: "Open-Ended",
                data_type: "mscoco",
                license: Empty {},
                data_subtype: subtype,
                questions,
            },
        )?;
        write_json(
            &out.join(&apath),
            &AnnotationsFile {
                info: Empty {},
                license: Empty {},
                data_subtype: subtype,
                annotations,
            },
        )?;
        summary.questions.insert(subtype.to_string(), qpath.into());
        summary
            .annotations
            .insert(subtype.to_string(), apath.into());
    }
    Ok(summary)
}

/// The official answer normalisation.
#[cfg(test)]
fn normalize(answer: &str) -> String {
    crate::metrics::vqa::normalize_answer(answer)
}

/// VQA accuracy in [0, 1] of `prediction` against the human answers (the official evaluator).
pub(crate) fn vqa_accuracy(answers: &[String], prediction: &str) -> f64 {
    let answers: Vec<crate::metrics::vqa::VqaAnswer> = answers
        .iter()
        .enumerate()
        .map(|(k, a)| crate::metrics::vqa::VqaAnswer {
            answer: a.clone(),
            answer_confidence: None,
            answer_id: Some(k as u64 + 1),
        })
        .collect();
    crate::metrics::vqa::question_accuracy(&answers, prediction)
}

/// Best constant answer overall and per question type, scored on `annotations`.
fn baseline(annotations: &[AnnotationOut]) -> VqaBaseline {
    let answers: Vec<Vec<String>> = annotations
        .iter()
        .map(|a| a.answers.iter().map(|x| x.answer.clone()).collect())
        .collect();
    let mut candidates: Vec<&str> = annotations
        .iter()
        .map(|a| a.multiple_choice_answer.as_str())
        .collect();
    candidates.sort_unstable();
    candidates.dedup();
    let best = |idx: &[usize]| -> (String, f64) {
        let mut best = (String::new(), 0.0f64);
        for &c in &candidates {
            let total: f64 = idx.iter().map(|&i| vqa_accuracy(&answers[i], c)).sum();
            if total > best.1 {
                best = (c.to_string(), total);
            }
        }
        best
    };
    let n = annotations.len().max(1) as f64;
    let all: Vec<usize> = (0..annotations.len()).collect();
    let (answer, total) = best(&all);
    let mut by_type: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, a) in annotations.iter().enumerate() {
        by_type.entry(a.question_type).or_default().push(i);
    }
    let prior_total: f64 = by_type.values().map(|idx| best(idx).1).sum();
    VqaBaseline {
        split: "val2014".to_string(),
        questions: annotations.len(),
        answer,
        accuracy: total / n,
        question_type_prior_accuracy: prior_total / n,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn accuracy_follows_the_leave_one_out_rule() {
        let ten = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let all_yes = ten(&["yes"; 10]);
        assert_eq!(vqa_accuracy(&all_yes, "yes"), 1.0);
        assert_eq!(vqa_accuracy(&all_yes, "no"), 0.0);
        let two = ten(&["2", "2", "two", "3", "2", "2", "2", "2", "2", "2"]);
        assert_eq!(vqa_accuracy(&two, "2"), 1.0);
        // One matching answer: 9 subsets with 1 match (1/3), one with 0.
        let one = ten(&[
            "red", "blue", "blue", "blue", "blue", "blue", "blue", "blue", "blue", "blue",
        ]);
        assert!((vqa_accuracy(&one, "red") - 0.3).abs() < 1e-12);
    }

    #[test]
    fn answers_are_ten_with_canonical_majority() {
        let mut rng = StdRng::seed_from_u64(5);
        for _ in 0..300 {
            let scene = Scene::sample(&mut rng);
            for qa in questions_for(&scene, 5, &mut rng) {
                let ans = human_answers(&qa, &mut rng);
                assert_eq!(ans.len(), 10);
                let canon = ans.iter().filter(|a| a.0 == qa.answer).count();
                assert!(canon >= 6, "{qa:?} {ans:?}");
                assert_eq!(normalize(&qa.answer), qa.answer);
                let texts: Vec<String> = ans.iter().map(|a| a.0.clone()).collect();
                assert!(vqa_accuracy(&texts, &qa.answer) > 0.99);
            }
        }
    }
}
