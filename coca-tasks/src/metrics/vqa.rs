//! VQAv2 accuracy, exactly as the official evaluator (`vqaEval.py` of GT-Vision-Lab/VQA, n = 2).
//!
//! Per question, both the ten ground-truth answers and the prediction have `\n`/`\t` replaced by
//! spaces and are stripped. Only when the ten answers are not all identical are they (and the
//! prediction) normalised with [`process_punctuation`] then [`process_digit_article`]. The score
//! of a question is the mean over the ten leave-one-out subsets of `min(1, matches / 3)`; scores
//! are reported x100 and rounded to 2 decimals like the official code (`round(x, 2)`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{data_err, is_decimal_digit, is_py_space, py_round, py_sum, read_json};
use crate::error::Result;

/// A VQAv2 questions file (`v2_OpenEnded_mscoco_{split}_questions.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VqaQuestions {
    /// `"Open-Ended"` in the official files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_type: Option<String>,
    /// `"mscoco"` in the official files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_type: Option<String>,
    /// e.g. `"val2014"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_subtype: Option<String>,
    /// The questions.
    pub questions: Vec<VqaQuestion>,
}

/// One question of a [`VqaQuestions`] file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VqaQuestion {
    /// COCO image id.
    pub image_id: u64,
    /// The question text.
    pub question: String,
    /// Unique question id.
    pub question_id: u64,
}

/// A VQAv2 annotations file (`v2_mscoco_{split}_annotations.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VqaAnnotations {
    /// `"mscoco"` in the official files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_type: Option<String>,
    /// e.g. `"val2014"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_subtype: Option<String>,
    /// One annotation per question.
    pub annotations: Vec<VqaAnnotation>,
}

/// The ground truth of one question.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VqaAnnotation {
    /// Question id (links to [`VqaQuestion::question_id`]).
    pub question_id: u64,
    /// COCO image id.
    pub image_id: u64,
    /// Question type (e.g. `"what color is the"`).
    pub question_type: String,
    /// `yes/no`, `number` or `other`.
    pub answer_type: String,
    /// The most frequent answer (used to build answer vocabularies, not for scoring).
    pub multiple_choice_answer: String,
    /// The human answers (ten in VQAv2).
    pub answers: Vec<VqaAnswer>,
}

/// One human answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VqaAnswer {
    /// The answer text.
    pub answer: String,
    /// `yes`, `maybe` or `no`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer_confidence: Option<String>,
    /// 1..=10 within a question.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer_id: Option<u64>,
}

/// One entry of a results file (`[{"question_id", "answer"}]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VqaResult {
    /// Question id.
    pub question_id: u64,
    /// The predicted answer (raw; normalised by the evaluator).
    pub answer: String,
}

/// VQA accuracies in percent, rounded to 2 decimals as the official evaluator does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VqaScores {
    /// Mean over all questions.
    pub overall: f64,
    /// Mean per answer type (`yes/no`, `number`, `other`).
    pub per_answer_type: BTreeMap<String, f64>,
    /// Mean per question type.
    pub per_question_type: BTreeMap<String, f64>,
    /// Score of each question.
    pub per_question: BTreeMap<u64, f64>,
}

/// Reads a VQAv2 questions file.
pub fn load_vqa_questions(path: impl AsRef<Path>) -> Result<VqaQuestions> {
    read_json(path.as_ref())
}

/// Reads a VQAv2 annotations file.
pub fn load_vqa_annotations(path: impl AsRef<Path>) -> Result<VqaAnnotations> {
    read_json(path.as_ref())
}

/// Reads a VQAv2 results file (`[{"question_id", "answer"}]`).
pub fn load_vqa_results(path: impl AsRef<Path>) -> Result<Vec<VqaResult>> {
    read_json(path.as_ref())
}

/// Loads the three official files and evaluates; errors name the offending file.
pub fn evaluate_vqa_files(
    questions: impl AsRef<Path>,
    annotations: impl AsRef<Path>,
    results: impl AsRef<Path>,
) -> Result<VqaScores> {
    let (qp, ap, rp) = (questions.as_ref(), annotations.as_ref(), results.as_ref());
    let q = load_vqa_questions(qp)?;
    let a = load_vqa_annotations(ap)?;
    let r = load_vqa_results(rp)?;
    evaluate_inner(&q, &a, &r, [qp, ap, rp])
}

/// Evaluates results against the ground truth like the official `VQAEval(vqa, vqaRes, n=2)`.
///
/// Questions and annotations must describe the same question ids, and the results must contain
/// exactly one answer for each of them (the official `loadRes` asserts the same coverage).
/// Errors use the placeholder paths `<questions>`, `<annotations>`, `<results>`; use
/// [`evaluate_vqa_files`] for errors naming real files.
pub fn evaluate_vqa(
    questions: &VqaQuestions,
    annotations: &VqaAnnotations,
    results: &[VqaResult],
) -> Result<VqaScores> {
    evaluate_inner(
        questions,
        annotations,
        results,
        [
            Path::new("<questions>"),
            Path::new("<annotations>"),
            Path::new("<results>"),
        ],
    )
}

fn evaluate_inner(
    questions: &VqaQuestions,
    annotations: &VqaAnnotations,
    results: &[VqaResult],
    [qpath, apath, rpath]: [&Path; 3],
) -> Result<VqaScores> {
    if annotations.annotations.is_empty() {
        return Err(data_err(apath, "no annotations: nothing to evaluate"));
    }
    let mut ann_ids = HashSet::with_capacity(annotations.annotations.len());
    for a in &annotations.annotations {
        if !ann_ids.insert(a.question_id) {
            return Err(data_err(
                apath,
                format!("question {} is annotated twice", a.question_id),
            ));
        }
        if a.answers.is_empty() {
            return Err(data_err(
                apath,
                format!("question {} has no answers", a.question_id),
            ));
        }
    }
    let mut q_ids = HashSet::with_capacity(questions.questions.len());
    for q in &questions.questions {
        if !q_ids.insert(q.question_id) {
            return Err(data_err(
                qpath,
                format!("question {} is listed twice", q.question_id),
            ));
        }
        if !ann_ids.contains(&q.question_id) {
            return Err(data_err(
                apath,
                format!(
                    "question {} (from the questions file) has no annotation",
                    q.question_id
                ),
            ));
        }
    }
    if let Some(a) = annotations
        .annotations
        .iter()
        .find(|a| !q_ids.contains(&a.question_id))
    {
        return Err(data_err(
            qpath,
            format!(
                "annotated question {} is missing from the questions file",
                a.question_id
            ),
        ));
    }
    let mut res: HashMap<u64, &str> = HashMap::with_capacity(results.len());
    for r in results {
        if !ann_ids.contains(&r.question_id) {
            return Err(data_err(
                rpath,
                format!(
                    "result for question {} which is not in the annotations",
                    r.question_id
                ),
            ));
        }
        if res.insert(r.question_id, &r.answer).is_some() {
            return Err(data_err(
                rpath,
                format!("two results for question {}", r.question_id),
            ));
        }
    }
    if res.len() != ann_ids.len() {
        let missing: Vec<u64> = annotations
            .annotations
            .iter()
            .map(|a| a.question_id)
            .filter(|id| !res.contains_key(id))
            .take(5)
            .collect();
        return Err(data_err(
            rpath,
            format!(
                "results cover {} of {} questions (missing e.g. {missing:?}); the official \
                 evaluator requires an answer for every annotated question",
                res.len(),
                ann_ids.len()
            ),
        ));
    }

    let mut acc_qa = Vec::with_capacity(annotations.annotations.len());
    let mut acc_ques_type: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut acc_ans_type: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut per_question = BTreeMap::new();
    for ann in &annotations.annotations {
        let answer = res.get(&ann.question_id).copied().unwrap_or_default();
        let avg = question_accuracy(&ann.answers, answer);
        acc_qa.push(avg);
        acc_ques_type
            .entry(ann.question_type.clone())
            .or_default()
            .push(avg);
        acc_ans_type
            .entry(ann.answer_type.clone())
            .or_default()
            .push(avg);
        per_question.insert(ann.question_id, py_round(100.0 * avg, 2));
    }
    let mean100 = |v: &[f64]| py_round(100.0 * py_sum(v.iter().copied()) / v.len() as f64, 2);
    Ok(VqaScores {
        overall: mean100(&acc_qa),
        per_answer_type: acc_ans_type
            .iter()
            .map(|(k, v)| (k.clone(), mean100(v)))
            .collect(),
        per_question_type: acc_ques_type
            .iter()
            .map(|(k, v)| (k.clone(), mean100(v)))
            .collect(),
        per_question,
    })
}

/// Accuracy in [0, 1] of one prediction against the human answers (before x100 and rounding).
pub fn question_accuracy(answers: &[VqaAnswer], prediction: &str) -> f64 {
    let mut gts: Vec<VqaAnswer> = answers
        .iter()
        .map(|a| VqaAnswer {
            answer: clean(&a.answer),
            ..a.clone()
        })
        .collect();
    let mut res_ans = clean(prediction);
    let first = gts.first().map(|a| a.answer.clone()).unwrap_or_default();
    if gts.iter().any(|a| a.answer != first) {
        for a in &mut gts {
            a.answer = normalize_answer(&a.answer);
        }
        res_ans = normalize_answer(&res_ans);
    }
    if gts.is_empty() {
        return 0.0;
    }
    // Leave-one-out: Python removes every answer *dict* equal to the left-out one.
    let accs = gts.iter().map(|left_out| {
        let matches = gts
            .iter()
            .filter(|g| *g != left_out && g.answer == res_ans)
            .count();
        (matches as f64 / 3.0).min(1.0)
    });
    py_sum(accs) / gts.len() as f64
}

fn clean(s: &str) -> String {
    s.replace(['\n', '\t'], " ")
        .trim_matches(is_py_space)
        .to_string()
}

/// The answer normalisation of `vqaEval.py`: [`process_punctuation`] then
/// [`process_digit_article`]. Use it to build answer vocabularies.
pub fn normalize_answer(answer: &str) -> String {
    process_digit_article(&process_punctuation(answer))
}

const PUNCT: [char; 21] = [
    ';', '/', '[', ']', '"', '{', '}', '(', ')', '=', '+', '\\', '_', '-', '>', '<', '@', '`', ',',
    '?', '!',
];

/// `processPunctuation` of `vqaEval.py`.
///
/// Each punctuation mark is deleted when it is next to a space somewhere in the text, or when
/// the text contains a digit-comma-digit sequence (`commaStrip`); otherwise it becomes a space.
/// Then `periodStrip` deletes periods not followed by a digit; like the official call
/// `periodStrip.sub("", text, re.UNICODE)`, which passes 32 as the *count*, at most 32 of them.
pub fn process_punctuation(in_text: &str) -> String {
    let chars: Vec<char> = in_text.chars().collect();
    let comma_strip = chars
        .windows(3)
        .any(|w| is_decimal_digit(w[0]) && w[1] == ',' && is_decimal_digit(w[2]));
    let mut out = in_text.to_string();
    for p in PUNCT {
        let near_space = chars
            .windows(2)
            .any(|w| (w[0] == p && w[1] == ' ') || (w[0] == ' ' && w[1] == p));
        if near_space || comma_strip {
            out = out.replace(p, "");
        } else {
            out = out.replace(p, " ");
        }
    }
    let chars: Vec<char> = out.chars().collect();
    let mut result = String::with_capacity(out.len());
    let mut removed = 0;
    for (i, &c) in chars.iter().enumerate() {
        let next_is_digit = chars.get(i + 1).is_some_and(|&n| is_decimal_digit(n));
        if c == '.' && !next_is_digit && removed < 32 {
            removed += 1;
        } else {
            result.push(c);
        }
    }
    result
}

/// `processDigitArticle` of `vqaEval.py`: lower-case, split on whitespace, number words to
/// digits (`none` -> `0`, `zero`..`ten`), drop `a`/`an`/`the`, then the contractions table
/// (`dont` -> `don't`, ...), joined with single spaces.
pub fn process_digit_article(in_text: &str) -> String {
    let lower = in_text.to_lowercase();
    let words: Vec<&str> = lower
        .split(is_py_space)
        .filter(|w| !w.is_empty())
        .map(|w| manual_map(w).unwrap_or(w))
        .filter(|w| !matches!(*w, "a" | "an" | "the"))
        .map(
            |w| match CONTRACTIONS.binary_search_by(|(k, _)| (*k).cmp(w)) {
                Ok(i) => CONTRACTIONS[i].1,
                Err(_) => w,
            },
        )
        .collect();
    words.join(" ")
}

fn manual_map(word: &str) -> Option<&'static str> {
    Some(match word {
        "none" | "zero" => "0",
        "one" => "1",
        "two" => "2",
        "three" => "3",
        "four" => "4",
        "five" => "5",
        "six" => "6",
        "seven" => "7",
        "eight" => "8",
        "nine" => "9",
        "ten" => "10",
        _ => return None,
    })
}

/// The contractions table of `vqaEval.py`, sorted by key (byte order) for binary search.
/// Keys with capitals (`Im`, `Ive`, ...) can never match after lower-casing; kept as upstream.
const CONTRACTIONS: &[(&str, &str)] = &[
    ("'ow'sat", "'ow's'at"),
    ("'ows'at", "'ow's'at"),
    ("I'dve", "I'd've"),
    ("Id've", "I'd've"),
    ("Im", "I'm"),
    ("Ive", "I've"),
    ("aint", "ain't"),
    ("arent", "aren't"),
    ("cant", "can't"),
    ("couldn'tve", "couldn't've"),
    ("couldnt", "couldn't"),
    ("couldnt've", "couldn't've"),
    ("couldve", "could've"),
    ("didnt", "didn't"),
    ("doesnt", "doesn't"),
    ("dont", "don't"),
    ("hadn'tve", "hadn't've"),
    ("hadnt", "hadn't"),
    ("hadnt've", "hadn't've"),
    ("hasnt", "hasn't"),
    ("havent", "haven't"),
    ("he'dve", "he'd've"),
    ("hed", "he'd"),
    ("hed've", "he'd've"),
    ("hes", "he's"),
    ("howd", "how'd"),
    ("howll", "how'll"),
    ("hows", "how's"),
    ("isnt", "isn't"),
    ("it'dve", "it'd've"),
    ("itd", "it'd"),
    ("itd've", "it'd've"),
    ("itll", "it'll"),
    ("let's", "let's"),
    ("maam", "ma'am"),
    ("mightn'tve", "mightn't've"),
    ("mightnt", "mightn't"),
    ("mightnt've", "mightn't've"),
    ("mightve", "might've"),
    ("mustnt", "mustn't"),
    ("mustve", "must've"),
    ("neednt", "needn't"),
    ("notve", "not've"),
    ("oclock", "o'clock"),
    ("oughtnt", "oughtn't"),
    ("ow's'at", "'ow's'at"),
    ("shant", "shan't"),
    ("she'dve", "she'd've"),
    ("she's", "she's"),
    ("shed've", "she'd've"),
    ("shouldn'tve", "shouldn't've"),
    ("shouldnt", "shouldn't"),
    ("shouldnt've", "shouldn't've"),
    ("shouldve", "should've"),
    ("somebody'd", "somebodyd"),
    ("somebody'dve", "somebody'd've"),
    ("somebodyd've", "somebody'd've"),
    ("somebodyll", "somebody'll"),
    ("somebodys", "somebody's"),
    ("someone'dve", "someone'd've"),
    ("someoned", "someone'd"),
    ("someoned've", "someone'd've"),
    ("someonell", "someone'll"),
    ("someones", "someone's"),
    ("something'dve", "something'd've"),
    ("somethingd", "something'd"),
    ("somethingd've", "something'd've"),
    ("somethingll", "something'll"),
    ("thats", "that's"),
    ("there'dve", "there'd've"),
    ("thered", "there'd"),
    ("thered've", "there'd've"),
    ("therere", "there're"),
    ("theres", "there's"),
    ("they'dve", "they'd've"),
    ("theyd", "they'd"),
    ("theyd've", "they'd've"),
    ("theyll", "they'll"),
    ("theyre", "they're"),
    ("theyve", "they've"),
    ("twas", "'twas"),
    ("wasnt", "wasn't"),
    ("we'dve", "we'd've"),
    ("wed've", "we'd've"),
    ("werent", "weren't"),
    ("weve", "we've"),
    ("whatll", "what'll"),
    ("whatre", "what're"),
    ("whats", "what's"),
    ("whatve", "what've"),
    ("whens", "when's"),
    ("whered", "where'd"),
    ("wheres", "where's"),
    ("whereve", "where've"),
    ("who'dve", "who'd've"),
    ("whod", "who'd"),
    ("whod've", "who'd've"),
    ("wholl", "who'll"),
    ("whos", "who's"),
    ("whove", "who've"),
    ("whyll", "why'll"),
    ("whyre", "why're"),
    ("whys", "why's"),
    ("wont", "won't"),
    ("wouldn'tve", "wouldn't've"),
    ("wouldnt", "wouldn't"),
    ("wouldnt've", "wouldn't've"),
    ("wouldve", "would've"),
    ("y'all'dve", "y'all'd've"),
    ("y'alld've", "y'all'd've"),
    ("y'allll", "y'all'll"),
    ("yall", "y'all"),
    ("yall'd've", "y'all'd've"),
    ("yall'll", "y'all'll"),
    ("you'dve", "you'd've"),
    ("youd", "you'd"),
    ("youd've", "you'd've"),
    ("youll", "you'll"),
    ("youre", "you're"),
    ("youve", "you've"),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> std::path::PathBuf {
        let p = crate::test_paths::fixture("vqa-metric").join(name);
        assert!(
            p.is_file(),
            "VQA fixture missing: {} (expected under tests/fixtures)",
            p.display()
        );
        p
    }

    #[test]
    fn matches_official_vqa_eval_on_fixture() {
        let scores = evaluate_vqa_files(
            fixture("questions.json"),
            fixture("annotations.json"),
            fixture("results.json"),
        )
        .expect("fixture evaluates");
        let expected: serde_json::Value =
            read_json(&fixture("expected.json")).expect("expected.json parses");
        let close = |a: f64, b: f64| (a - b).abs() <= 0.01 + 1e-9;

        let overall = expected["overall"].as_f64().expect("overall");
        assert!(
            close(scores.overall, overall),
            "overall {} vs {overall}",
            scores.overall
        );

        let types = expected["per_answer_type"]
            .as_object()
            .expect("per_answer_type");
        assert_eq!(types.len(), scores.per_answer_type.len());
        for (k, v) in types {
            let got = scores.per_answer_type[k.as_str()];
            assert!(
                close(got, v.as_f64().expect("number")),
                "answer type {k}: {got} vs {v}"
            );
        }

        // The official per-question-type figure is the mean of that type's question scores.
        let mut by_type: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
        let anns = load_vqa_annotations(fixture("annotations.json")).expect("annotations");
        for a in &anns.annotations {
            let q = expected["per_question"][a.question_id.to_string()].as_f64();
            by_type
                .entry(a.question_type.as_str())
                .or_default()
                .push(q.expect("fixture scores every question"));
        }
        assert_eq!(by_type.len(), scores.per_question_type.len());
        for (t, v) in &by_type {
            let mean = v.iter().sum::<f64>() / v.len() as f64;
            let got = scores.per_question_type[*t];
            assert!(
                (got - mean).abs() <= 0.02,
                "question type {t}: {got} vs {mean}"
            );
        }

        let per_q = expected["per_question"].as_object().expect("per_question");
        assert_eq!(per_q.len(), scores.per_question.len());
        let mut max_diff = 0.0f64;
        for (k, v) in per_q {
            let id: u64 = k.parse().expect("numeric question id");
            let got = scores.per_question[&id];
            let want = v.as_f64().expect("number");
            max_diff = max_diff.max((got - want).abs());
            assert!(close(got, want), "question {id}: {got} vs {want}");
        }
        eprintln!("VQA fixture: max |diff| per question = {max_diff}");
    }

    #[test]
    fn normalisation_edge_cases() {
        // Expected values from the official processPunctuation + processDigitArticle.
        let cases = [
            ("Yes.", "yes"),
            ("3.5", "3.5"),
            ("1,000 dogs!", "1000 dogs"),
            ("hello,world", "hello world"),
            ("a - b", "b"),
            ("The Two dogs", "2 dogs"),
            ("none", "0"),
            ("dont", "don't"),
            ("Im", "im"),
            ("It's 10 o'clock", "it's 10 o'clock"),
            ("black/white", "black white"),
            ("t-shirt", "t shirt"),
            ("..5", ".5"),
            ("  two\tthree  ", "2 3"),
            ("ten.", "10"),
            ("red, white, and blue", "red white and blue"),
            ("a,b 1,2", "ab 12"),
            ("Whats up?!", "what's up"),
            ("yall'll", "y'all'll"),
            ("(none)", "0"),
            ("5 ft. 2 in.", "5 ft 2 in"),
            ("U.S.A.", "usa"),
        ];
        for (input, want) in cases {
            assert_eq!(normalize_answer(input), want, "input {input:?}");
        }
        // periodStrip.sub(..., re.UNICODE) removes at most 32 periods.
        let many = format!("x{}y", ".".repeat(40));
        assert_eq!(normalize_answer(&many), "x........y");
    }

    fn ann(qid: u64, answers: &[&str]) -> VqaAnnotation {
        VqaAnnotation {
            question_id: qid,
            image_id: 1,
            question_type: "what".into(),
            answer_type: "other".into(),
            multiple_choice_answer: answers[0].into(),
            answers: answers
                .iter()
                .enumerate()
                .map(|(i, a)| VqaAnswer {
                    answer: a.to_string(),
                    answer_confidence: Some("yes".into()),
                    answer_id: Some(i as u64 + 1),
                })
                .collect(),
        }
    }

    #[test]
    fn unanimous_answers_are_not_normalised() {
        let a = ann(1, &["no!"; 10]);
        assert_eq!(question_accuracy(&a.answers, "no!"), 1.0);
        assert_eq!(question_accuracy(&a.answers, "no"), 0.0);
        let mut answers = vec!["two"; 2];
        answers.extend(["2"; 8]);
        let b = ann(2, &answers);
        // Not unanimous: "two" -> "2" everywhere, so all ten match.
        assert_eq!(question_accuracy(&b.answers, "Two"), 1.0);
        // One matching answer: 9 subsets contain it (1/3), one does not (0).
        let mut c: Vec<&str> = vec!["red"];
        c.extend(["blue"; 9]);
        let c = ann(3, &c);
        let acc = question_accuracy(&c.answers, "red");
        assert!((acc - 0.3).abs() < 1e-12, "{acc}");
    }

    #[test]
    fn scores_are_grouped_by_question_and_answer_type() {
        let mut three: Vec<&str> = vec!["red"; 3];
        three.extend(["blue"; 7]);
        // (question id, question type, answer type, answers, prediction)
        let rows = [
            (1, "what color is the", "other", vec!["red"; 10], "red"),
            (2, "what color is the", "other", vec!["red"; 10], "blue"),
            (3, "what color is the", "other", three, "red"),
            (4, "is there a", "yes/no", vec!["yes"; 10], "yes"),
        ];
        let questions = VqaQuestions {
            task_type: None,
            data_type: None,
            data_subtype: None,
            questions: rows
                .iter()
                .map(|r| VqaQuestion {
                    image_id: 1,
                    question: "q?".into(),
                    question_id: r.0,
                })
                .collect(),
        };
        let annotations = VqaAnnotations {
            data_type: None,
            data_subtype: None,
            annotations: rows
                .iter()
                .map(|r| VqaAnnotation {
                    question_type: r.1.into(),
                    answer_type: r.2.into(),
                    ..ann(r.0, &r.3)
                })
                .collect(),
        };
        let results: Vec<VqaResult> = rows
            .iter()
            .map(|r| VqaResult {
                question_id: r.0,
                answer: r.4.into(),
            })
            .collect();
        let s = evaluate_vqa(&questions, &annotations, &results).expect("valid");
        // Three matching answers of ten: 3 leave-one-out subsets keep 2 (2/3), 7 keep 3 (1).
        let q3 = 100.0 * (3.0 * 2.0 / 3.0 + 7.0) / 10.0;
        assert_eq!(s.per_question[&3], 90.0);
        let color = (100.0 + 0.0 + q3) / 3.0;
        assert!((s.per_question_type["what color is the"] - color).abs() < 0.006);
        assert_eq!(s.per_question_type["is there a"], 100.0);
        assert!((s.per_answer_type["other"] - color).abs() < 0.006);
        assert_eq!(s.per_answer_type["yes/no"], 100.0);
        assert!((s.overall - (100.0 + 0.0 + q3 + 100.0) / 4.0).abs() < 0.006);
    }

    #[test]
    fn coverage_errors_are_reported() {
        let questions = VqaQuestions {
            task_type: None,
            data_type: None,
            data_subtype: None,
            questions: vec![VqaQuestion {
                image_id: 1,
                question: "q?".into(),
                question_id: 1,
            }],
        };
        let annotations = VqaAnnotations {
            data_type: None,
            data_subtype: None,
            annotations: vec![ann(1, &["yes"; 10])],
        };
        let ok = evaluate_vqa(
            &questions,
            &annotations,
            &[VqaResult {
                question_id: 1,
                answer: "yes".into(),
            }],
        )
        .expect("valid");
        assert_eq!(ok.overall, 100.0);
        let missing = evaluate_vqa(&questions, &annotations, &[])
            .unwrap_err()
            .to_string();
        assert!(
            missing.contains("<results>") && missing.contains("cover 0 of 1"),
            "{missing}"
        );
        let extra = evaluate_vqa(
            &questions,
            &annotations,
            &[
                VqaResult {
                    question_id: 1,
                    answer: "yes".into(),
                },
                VqaResult {
                    question_id: 9,
                    answer: "yes".into(),
                },
            ],
        )
        .unwrap_err()
        .to_string();
        assert!(extra.contains("question 9"), "{extra}");
        let mut q2 = questions.clone();
        q2.questions.push(VqaQuestion {
            image_id: 1,
            question: "q?".into(),
            question_id: 2,
        });
        let no_ann = evaluate_vqa(&q2, &annotations, &[])
            .unwrap_err()
            .to_string();
        assert!(
            no_ann.contains("question 2") && no_ann.contains("no annotation"),
            "{no_ann}"
        );
    }

    #[test]
    fn load_errors_name_the_file() {
        let err = load_vqa_results("/nonexistent/results.json")
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/results.json"), "{err}");
    }
}
