//! VQAv2 data: questions + annotations files as downloaded, and the answer vocabulary.
//!
//! Files (see `visualqa.org`): `v2_OpenEnded_mscoco_{split}_questions.json`
//! `{data_subtype, questions: [{image_id, question, question_id}]}` and
//! `v2_mscoco_{split}_annotations.json` `{annotations: [{question_id, image_id, answer_type,
//! multiple_choice_answer, answers: [10 x {answer, ..}], ..}]}`. Test splits have no annotations.
//! The image of a question is `COCO_{subtype}_{image_id:012}.jpg` (test-dev questions use the
//! `test2015` images).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Result, TaskError};
use crate::metrics::vqa::{
    VqaAnnotation, load_vqa_annotations, load_vqa_questions, normalize_answer,
};
use crate::metrics::{data_err, read_json};

/// One VQAv2 question with its image and (except for test splits) its ten human answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VqaExample {
    /// Unique question id.
    pub question_id: u64,
    /// COCO image id.
    pub image_id: u64,
    /// The question text.
    pub question: String,
    /// Path of the image (it may not exist; the trainer reports missing images).
    pub image: PathBuf,
    /// The raw human answers (ten in VQAv2; empty for test splits).
    pub answers: Vec<String>,
    /// `yes/no`, `number` or `other` (`None` for test splits).
    pub answer_type: Option<String>,
    /// The most frequent human answer, raw (`None` for test splits).
    pub multiple_choice_answer: Option<String>,
}

/// Loads a VQAv2 questions file, joined with its annotations file when given.
///
/// Images are looked up as `image_dir/COCO_{subtype}_{id:012}.jpg` or
/// `image_dir/{subtype}/COCO_...jpg`, where `subtype` is the questions file's `data_subtype`
/// (or, if absent, parsed from a `v2_OpenEnded_mscoco_{split}_questions.json` file name).
/// Missing images are not an error. When annotations are given, every question needs one
/// (with the same image id); annotations of other questions are ignored.
pub fn load_vqa(
    questions: &Path,
    annotations: Option<&Path>,
    image_dir: &Path,
) -> Result<Vec<VqaExample>> {
    let qfile = load_vqa_questions(questions)?;
    let subtype = match qfile.data_subtype.as_deref() {
        Some(s) if !s.trim().is_empty() => s.trim().to_string(),
        _ => subtype_from_file_name(questions).ok_or_else(|| {
            data_err(
                questions,
                "no `data_subtype` in the file and the file name is not \
                 `v2_OpenEnded_mscoco_{split}_questions.json`: cannot name the images",
            )
        })?,
    };
    let images = ImageLocator::new(image_dir, image_subtype(&subtype));

    let mut anns: Option<HashMap<u64, VqaAnnotation>> = None;
    if let Some(apath) = annotations {
        let afile = load_vqa_annotations(apath)?;
        let mut map = HashMap::with_capacity(afile.annotations.len());
        for a in afile.annotations {
            let qid = a.question_id;
            if map.insert(qid, a).is_some() {
                return Err(data_err(
                    apath,
                    format!("question_id {qid} is annotated twice"),
                ));
            }
        }
        anns = Some(map);
    }

    let mut seen = HashSet::with_capacity(qfile.questions.len());
    let mut out = Vec::with_capacity(qfile.questions.len());
    for q in qfile.questions {
        if !seen.insert(q.question_id) {
            return Err(data_err(
                questions,
                format!("question_id {} appears twice", q.question_id),
            ));
        }
        let mut ex = VqaExample {
            question_id: q.question_id,
            image_id: q.image_id,
            question: q.question,
            image: images.path(q.image_id),
            answers: Vec::new(),
            answer_type: None,
            multiple_choice_answer: None,
        };
        if let (Some(map), Some(apath)) = (anns.as_mut(), annotations) {
            let a = map.remove(&ex.question_id).ok_or_else(|| {
                data_err(
                    apath,
                    format!(
                        "no annotation for question_id {} of {}",
                        ex.question_id,
                        questions.display()
                    ),
                )
            })?;
            if a.image_id != ex.image_id {
                return Err(data_err(
                    apath,
                    format!(
                        "question_id {} has image_id {} here but {} in {}",
                        ex.question_id,
                        a.image_id,
                        ex.image_id,
                        questions.display()
                    ),
                ));
            }
            ex.answers = a.answers.into_iter().map(|x| x.answer).collect();
            ex.answer_type = Some(a.answer_type);
            ex.multiple_choice_answer = Some(a.multiple_choice_answer);
        }
        out.push(ex);
    }
    Ok(out)
}

/// The split named by an official questions file name, e.g. `val2014` for
/// `v2_OpenEnded_mscoco_val2014_questions.json`.
pub fn subtype_from_file_name(questions: &Path) -> Option<String> {
    let name = questions.file_name()?.to_str()?;
    let split = name
        .strip_prefix("v2_OpenEnded_mscoco_")?
        .strip_suffix("_questions.json")?;
    (!split.is_empty()).then(|| split.to_string())
}

/// The subtype used in image file names: `test-dev2015` questions use `test2015` images.
pub fn image_subtype(data_subtype: &str) -> String {
    match data_subtype.strip_prefix("test-dev") {
        Some(year) => format!("test{year}"),
        None => data_subtype.to_string(),
    }
}

/// The COCO image file name of `image_id` in `subtype`: `COCO_{subtype}_{image_id:012}.jpg`.
pub fn coco_image_name(subtype: &str, image_id: u64) -> String {
    format!("COCO_{subtype}_{image_id:012}.jpg")
}

/// Resolves image paths: `dir/name` if it exists, else `dir/subtype/name` if it exists, else
/// whichever layout the directory looks like it uses.
struct ImageLocator {
    dir: PathBuf,
    subdir: PathBuf,
    subtype: String,
    prefer_subdir: bool,
}

impl ImageLocator {
    fn new(dir: &Path, subtype: String) -> Self {
        let subdir = dir.join(&subtype);
        let prefer_subdir = subdir.is_dir();
        ImageLocator {
            dir: dir.to_path_buf(),
            subdir,
            subtype,
            prefer_subdir,
        }
    }

    fn path(&self, image_id: u64) -> PathBuf {
        let name = coco_image_name(&self.subtype, image_id);
        let direct = self.dir.join(&name);
        let nested = self.subdir.join(&name);
        if direct.is_file() {
            direct
        } else if nested.is_file() || self.prefer_subdir {
            nested
        } else {
            direct
        }
    }
}

/// The answer classes of a VQA classifier head; the index of an answer is its class.
///
/// Answers are stored normalised (VQA evaluator normalisation). Build it with
/// [`AnswerVocab::build`] or [`AnswerVocab::new`]; if `answers` is changed in place, call
/// [`AnswerVocab::reindex`].
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(from = "VocabFile", into = "VocabFile")]
pub struct AnswerVocab {
    /// The answers (normalised), in class order.
    pub answers: Vec<String>,
    lookup: HashMap<String, usize>,
}

/// The serialised form of [`AnswerVocab`]: `{"answers": [...]}`.
#[derive(Serialize, Deserialize)]
struct VocabFile {
    answers: Vec<String>,
}

impl From<VocabFile> for AnswerVocab {
    fn from(f: VocabFile) -> Self {
        AnswerVocab::new(f.answers)
    }
}

impl From<AnswerVocab> for VocabFile {
    fn from(v: AnswerVocab) -> Self {
        VocabFile { answers: v.answers }
    }
}

impl PartialEq for AnswerVocab {
    fn eq(&self, other: &Self) -> bool {
        self.answers == other.answers
    }
}

impl AnswerVocab {
    /// A vocabulary of the given (already normalised) answers, in class order. For a repeated
    /// answer, [`index`](Self::index) returns its first position.
    pub fn new(answers: Vec<String>) -> Self {
        let mut v = AnswerVocab {
            answers,
            lookup: HashMap::new(),
        };
        v.reindex();
        v
    }

    /// Rebuilds the lookup table after `answers` was changed in place.
    pub fn reindex(&mut self) {
        self.lookup.clear();
        for (i, a) in self.answers.iter().enumerate() {
            self.lookup.entry(a.clone()).or_insert(i);
        }
    }

    /// The normalised `multiple_choice_answer`s that occur at least `min_count` times (and at
    /// least once), sorted by count (descending) then text. The official recipe uses
    /// `min_count = 9` on train+val (3,129 answers).
    pub fn build(examples: &[VqaExample], min_count: usize) -> AnswerVocab {
        let mut counts: HashMap<String, usize> = HashMap::new();
        for mca in examples
            .iter()
            .filter_map(|e| e.multiple_choice_answer.as_deref())
        {
            let norm = normalize_answer(mca);
            if !norm.is_empty() {
                *counts.entry(norm).or_insert(0) += 1;
            }
        }
        let mut kept: Vec<(String, usize)> = counts
            .into_iter()
            .filter(|&(_, c)| c >= min_count.max(1))
            .collect();
        kept.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        AnswerVocab::new(kept.into_iter().map(|(a, _)| a).collect())
    }

    /// The class of `answer`: an exact match, else the match of its normalised form.
    pub fn index(&self, answer: &str) -> Option<usize> {
        self.lookup
            .get(answer)
            .or_else(|| self.lookup.get(&normalize_answer(answer)))
            .copied()
    }

    /// The answer of class `index`.
    pub fn answer(&self, index: usize) -> Option<&str> {
        self.answers.get(index).map(String::as_str)
    }

    /// Number of classes.
    pub fn len(&self) -> usize {
        self.answers.len()
    }

    /// Whether the vocabulary has no answers.
    pub fn is_empty(&self) -> bool {
        self.answers.is_empty()
    }

    /// Writes the vocabulary as JSON `{"answers": [...]}`.
    pub fn save(&self, path: &Path) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(&VocabFile {
            answers: self.answers.clone(),
        })
        .map_err(|e| TaskError::Json {
            path: path.to_path_buf(),
            line: None,
            msg: e.to_string(),
        })?;
        std::fs::write(path, bytes).map_err(|e| TaskError::io(path, e))
    }

    /// Reads a vocabulary written by [`save`](Self::save); repeated or empty answers are an error.
    pub fn load(path: &Path) -> Result<Self> {
        let file: VocabFile = read_json(path)?;
        Self::checked(file.answers, path)
    }

    /// The vocabulary an exported VQA head was trained with (`task_info.answers` of its
    /// `task.json`).
    pub fn from_task_json(path: &Path) -> Result<Self> {
        let v: serde_json::Value = read_json(path)?;
        let answers: Vec<String> = serde_json::from_value(v["task_info"]["answers"].clone())
            .map_err(|e| {
                data_err(
                    path,
                    format!("no answer vocabulary (task_info.answers): {e}"),
                )
            })?;
        Self::checked(answers, path)
    }

    /// Rejects empty or repeated answers (errors name `path`).
    fn checked(answers: Vec<String>, path: &Path) -> Result<Self> {
        let mut seen = HashSet::with_capacity(answers.len());
        for (i, a) in answers.iter().enumerate() {
            if a.is_empty() {
                return Err(data_err(path, format!("answer {i} is empty")));
            }
            if !seen.insert(a.as_str()) {
                return Err(data_err(path, format!("answer {a:?} appears twice")));
            }
        }
        Ok(AnswerVocab::new(answers))
    }

    /// Soft targets of a question from its raw human answers: each normalised answer in the
    /// vocabulary gets a score by how many annotators gave it (1 -> 0.3, 2 -> 0.6, 3 -> 0.9,
    /// 4 or more -> 1.0). Answers outside the vocabulary are ignored. Sorted by class.
    pub fn soft_targets(&self, answers: &[String]) -> Vec<(usize, f32)> {
        let mut counts: BTreeMap<usize, usize> = BTreeMap::new();
        for a in answers {
            if let Some(i) = self.lookup.get(&normalize_answer(a)) {
                *counts.entry(*i).or_insert(0) += 1;
            }
        }
        counts
            .into_iter()
            .map(|(i, c)| (i, soft_score(c)))
            .collect()
    }
}

/// The VQA soft score of an answer given by `count` annotators: `min(1, 0.3 * count)`.
pub fn soft_score(count: usize) -> f32 {
    match count {
        0 => 0.0,
        1 => 0.3,
        2 => 0.6,
        3 => 0.9,
        _ => 1.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(name: &str) -> PathBuf {
        crate::test_paths::test_data("vqa").join(name)
    }

    fn load_val() -> Vec<VqaExample> {
        load_vqa(
            &p("v2_OpenEnded_mscoco_val2014_questions.json"),
            Some(&p("v2_mscoco_val2014_annotations.json")),
            &p("images"),
        )
        .expect("val loads")
    }

    #[test]
    fn joins_questions_and_annotations() {
        let ex = load_val();
        assert_eq!(ex.len(), 4);
        assert_eq!(ex[0].question_id, 262148000);
        assert_eq!(ex[0].image_id, 262148);
        assert_eq!(ex[0].question, "Where is he looking?");
        assert_eq!(ex[0].answers.len(), 10);
        assert_eq!(ex[0].answers[0], "down");
        assert_eq!(ex[0].answer_type.as_deref(), Some("other"));
        assert_eq!(ex[0].multiple_choice_answer.as_deref(), Some("down"));
        // The image exists only under images/val2014/: found there.
        assert_eq!(
            ex[0].image,
            p("images/val2014/COCO_val2014_000000262148.jpg")
        );
        assert!(ex[0].image.is_file());
        // Missing image: not an error; named in the layout the directory uses.
        assert_eq!(
            ex[3].image,
            p("images/val2014/COCO_val2014_000000000042.jpg")
        );
    }

    #[test]
    fn image_directly_in_dir_and_subtype_from_file_name() {
        // No data_subtype in this file: parsed from the name; no annotations (test split).
        let ex = load_vqa(
            &p("v2_OpenEnded_mscoco_test2015_questions.json"),
            None,
            &p("images/test2015"),
        )
        .expect("test loads");
        assert_eq!(ex.len(), 2);
        assert_eq!(
            ex[0].image,
            p("images/test2015/COCO_test2015_000000000001.jpg")
        );
        assert!(ex[0].image.is_file());
        assert!(ex[0].answers.is_empty());
        assert_eq!(ex[0].answer_type, None);
        assert_eq!(ex[0].multiple_choice_answer, None);
    }

    #[test]
    fn test_dev_uses_test2015_images() {
        assert_eq!(image_subtype("test-dev2015"), "test2015");
        assert_eq!(image_subtype("val2014"), "val2014");
        assert_eq!(
            subtype_from_file_name(Path::new(
                "/x/v2_OpenEnded_mscoco_test-dev2015_questions.json"
            ))
            .as_deref(),
            Some("test-dev2015")
        );
        assert_eq!(subtype_from_file_name(Path::new("questions.json")), None);
    }

    #[test]
    fn question_without_annotation_is_a_clear_error() {
        let err = load_vqa(
            &p("v2_OpenEnded_mscoco_val2014_questions.json"),
            Some(&p("annotations_missing_one.json")),
            &p("images"),
        )
        .expect_err("a question lacks its annotation");
        let msg = err.to_string();
        assert!(matches!(err, TaskError::Data { .. }), "{msg}");
        assert!(msg.contains("262148001"), "{msg}");
        assert!(msg.contains("annotations_missing_one.json"), "{msg}");
    }

    #[test]
    fn missing_and_malformed_files_name_the_file() {
        let err = load_vqa(&p("nope_questions.json"), None, &p("images")).expect_err("missing");
        assert!(matches!(err, TaskError::Io { .. }));
        assert!(err.to_string().contains("nope_questions.json"));
        let err =
            load_vqa(&p("malformed_questions.json"), None, &p("images")).expect_err("malformed");
        assert!(matches!(err, TaskError::Json { .. }));
        assert!(err.to_string().contains("malformed_questions.json"));
        // No data_subtype and an unofficial name: cannot name images.
        let err =
            load_vqa(&p("questions_no_subtype.json"), None, &p("images")).expect_err("no subtype");
        assert!(err.to_string().contains("data_subtype"), "{err}");
    }

    #[test]
    fn vocab_min_count_and_order() {
        let ex = load_val();
        // MC answers: "down", "Down.", "2", "two" -> normalised "down" x2, "2" x2.
        let v = AnswerVocab::build(&ex, 1);
        assert_eq!(v.answers, vec!["2", "down"]);
        let v2 = AnswerVocab::build(&ex, 2);
        assert_eq!(v2.answers, vec!["2", "down"]);
        let v3 = AnswerVocab::build(&ex, 3);
        assert!(v3.is_empty());

        let mk = |mca: &str| VqaExample {
            question_id: 0,
            image_id: 0,
            question: String::new(),
            image: PathBuf::new(),
            answers: vec![],
            answer_type: None,
            multiple_choice_answer: Some(mca.to_string()),
        };
        let many: Vec<VqaExample> = [
            "yes", "no", "yes", "b", "cat", "Cat", "no", "yes", "a", "an", "c",
        ]
        .into_iter()
        .map(mk)
        .collect();
        let v = AnswerVocab::build(&many, 2);
        // counts: yes 3, cat 2, no 2 (ties by text), b 1 and c 1 dropped; the articles "a"
        // and "an" normalise to "" and are never answers.
        assert_eq!(v.answers, vec!["yes", "cat", "no"]);
        assert_eq!(v.len(), 3);
        assert_eq!(v.index("no"), Some(2));
        assert_eq!(v.index("No!"), Some(2), "lookup normalises");
        assert_eq!(v.index("b"), None);
        assert_eq!(v.answer(0), Some("yes"));
    }

    #[test]
    fn soft_targets_by_annotator_count() {
        let v = AnswerVocab::new(
            ["red", "blue", "green", "white", "black"]
                .map(String::from)
                .to_vec(),
        );
        let answers: Vec<String> = [
            "red", "Blue", "blue", "green", "green", "green", "white", "white", "white", "white",
        ]
        .into_iter()
        .chain(["black"; 6])
        .chain(["unknown"])
        .map(String::from)
        .collect();
        let t = v.soft_targets(&answers);
        assert_eq!(t, vec![(0, 0.3), (1, 0.6), (2, 0.9), (3, 1.0), (4, 1.0)]);
        assert!(v.soft_targets(&[]).is_empty());
        // Normalisation before counting: "2" and "two" are the same answer.
        let v = AnswerVocab::new(vec!["2".into()]);
        assert_eq!(
            v.soft_targets(&["two".into(), "2".into(), "2 ".into()]),
            vec![(0, 0.9)]
        );
    }

    #[test]
    fn vocab_save_load_round_trip() {
        let dir = std::env::temp_dir().join(format!("coca-vqa-vocab-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp dir");
        let path = dir.join("vocab.json");
        let v = AnswerVocab::new(vec!["yes".into(), "no".into(), "2".into()]);
        v.save(&path).expect("save");
        let back = AnswerVocab::load(&path).expect("load");
        assert_eq!(back, v);
        assert_eq!(back.index("2"), Some(2));
        std::fs::write(&path, r#"{"answers": ["yes", "yes"]}"#).expect("write");
        let err = AnswerVocab::load(&path).expect_err("duplicate");
        assert!(err.to_string().contains("twice"), "{err}");

        // The vocabulary of an export's task.json.
        let task = dir.join("task.json");
        std::fs::write(&task, r#"{"task_info": {"answers": ["yes", "no", "2"]}}"#).expect("w");
        assert_eq!(AnswerVocab::from_task_json(&task).expect("task.json"), v);
        for (text, want) in [
            (r#"{"task_info": {"labels": ["a"]}}"#, "task_info.answers"),
            (
                r#"{"task_info": {"answers": ["a", ""]}}"#,
                "answer 1 is empty",
            ),
            ("{", "task.json"),
        ] {
            std::fs::write(&task, text).expect("write");
            let err = AnswerVocab::from_task_json(&task)
                .expect_err(text)
                .to_string();
            assert!(err.contains(want) && err.contains("task.json"), "{err}");
        }
        std::fs::remove_dir_all(&dir).ok();
    }
}
