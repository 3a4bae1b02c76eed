//! NLVR2: `{train,dev,test1}.json` (JSON Lines) over pairs of images; each set has one
//! sentence and 2-4 image pairs labelled True/False.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::Serialize;

use super::render::{Encoding, RenderJob};
use super::scene::{Color, Kind, Region, Scene, pick, pick_weighted};
use super::text::{capitalize, number_word, with_article};
use super::{
    MajorityBaseline, Nlvr2Statements, Nlvr2Summary, SynthCounts, image_dims, json_err, majority,
    write_file,
};
use crate::error::Result;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Side {
    Left,
    Right,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Side::Left => "left",
            Side::Right => "right",
        }
    }
    fn other(self) -> Side {
        match self {
            Side::Left => Side::Right,
            Side::Right => Side::Left,
        }
    }
}

/// A checkable claim about an image pair.
#[derive(Clone, Debug, PartialEq)]
enum PairFact {
    SideCountKind(Side, Kind, usize),
    EachHasColor(Color),
    EachHasKind(Kind),
    BothHave(Color, Kind),
    MoreKind(Side, Kind),
    MoreShapes(Side),
    TotalShapes(usize),
    TotalKind(Kind, usize),
    ExactlyOneHasKind(Kind),
    NeitherHasColor(Color),
    SideHasAt(Side, Color, Kind, Region),
    SameCount,
}

impl PairFact {
    fn eval(&self, left: &Scene, right: &Scene) -> bool {
        let side = |s: Side| if s == Side::Left { left } else { right };
        match *self {
            PairFact::SideCountKind(s, k, n) => side(s).count_kind(k) == n,
            PairFact::EachHasColor(c) => left.count_color(c) > 0 && right.count_color(c) > 0,
            PairFact::EachHasKind(k) => left.count_kind(k) > 0 && right.count_kind(k) > 0,
            PairFact::BothHave(c, k) => left.find(c, k).is_some() && right.find(c, k).is_some(),
            PairFact::MoreKind(s, k) => side(s).count_kind(k) > side(s.other()).count_kind(k),
            PairFact::MoreShapes(s) => side(s).shapes.len() > side(s.other()).shapes.len(),
            PairFact::TotalShapes(n) => left.shapes.len() + right.shapes.len() == n,
            PairFact::TotalKind(k, n) => left.count_kind(k) + right.count_kind(k) == n,
            PairFact::ExactlyOneHasKind(k) => (left.count_kind(k) > 0) != (right.count_kind(k) > 0),
            PairFact::NeitherHasColor(c) => left.count_color(c) == 0 && right.count_color(c) == 0,
            PairFact::SideHasAt(s, c, k, r) => side(s)
                .find(c, k)
                .is_some_and(|sh| r.contains(sh.col, sh.row)),
            PairFact::SameCount => left.shapes.len() == right.shapes.len(),
        }
    }

    fn sample(rng: &mut StdRng, statements: Nlvr2Statements) -> PairFact {
        let side = if rng.random_bool(0.5) {
            Side::Left
        } else {
            Side::Right
        };
        let c = *pick(rng, &Color::ALL);
        let k = *pick(rng, &Kind::ALL);
        if statements == Nlvr2Statements::Each {
            return if rng.random_bool(0.75) {
                PairFact::EachHasColor(c)
            } else {
                PairFact::BothHave(c, k)
            };
        }
        match pick_weighted(rng, &[14, 10, 10, 6, 10, 8, 8, 7, 9, 7, 6, 5]) {
            0 => PairFact::SideCountKind(side, k, pick_weighted(rng, &[1, 4, 3])),
            1 => PairFact::EachHasColor(c),
            2 => PairFact::EachHasKind(k),
            3 => PairFact::BothHave(c, k),
            4 => PairFact::MoreKind(side, k),
            5 => PairFact::MoreShapes(side),
            6 => PairFact::TotalShapes(rng.random_range(3..=6)),
            7 => PairFact::TotalKind(k, rng.random_range(1..=3)),
            8 => PairFact::ExactlyOneHasKind(k),
            9 => PairFact::NeitherHasColor(c),
            10 => {
                let r = *pick(rng, &[Region::Top, Region::Bottom, Region::Center]);
                PairFact::SideHasAt(side, c, k, r)
            }
            _ => PairFact::SameCount,
        }
    }

    fn text(&self, rng: &mut StdRng) -> String {
        match *self {
            PairFact::SideCountKind(s, k, n) => {
                let what = match n {
                    0 => format!("no {}", k.plural()),
                    1 => format!("exactly one {}", k.name()),
                    n => format!("exactly {} {}", number_word(n), k.plural()),
                };
                if rng.random_bool(0.5) {
                    format!("the {} image contains {what}.", s.name())
                } else {
                    format!("there are {what} in the {} image.", s.name())
                }
            }
            PairFact::EachHasColor(c) => {
                if rng.random_bool(0.5) {
                    format!("there is {} shape in each image.", with_article(c.name()))
                } else {
                    format!("each image contains at least one {} shape.", c.name())
                }
            }
            PairFact::EachHasKind(k) => {
                if rng.random_bool(0.5) {
                    format!("both images contain {}.", with_article(k.name()))
                } else {
                    format!("there is at least one {} in each image.", k.name())
                }
            }
            PairFact::BothHave(c, k) => {
                format!(
                    "both images contain {}.",
                    with_article(&format!("{} {}", c.name(), k.name()))
                )
            }
            PairFact::MoreKind(s, k) => format!(
                "the {} image has more {} than the {} image.",
                s.name(),
                k.plural(),
                s.other().name()
            ),
            PairFact::MoreShapes(s) => {
                if rng.random_bool(0.5) {
                    format!(
                        "the {} image contains more shapes than the {} image.",
                        s.name(),
                        s.other().name()
                    )
                } else {
                    format!(
                        "the {} image contains fewer shapes than the {} image.",
                        s.other().name(),
                        s.name()
                    )
                }
            }
            PairFact::TotalShapes(n) => {
                if rng.random_bool(0.5) {
                    format!("there are exactly {} shapes in total.", number_word(n))
                } else {
                    format!(
                        "the two images contain {} shapes altogether.",
                        number_word(n)
                    )
                }
            }
            PairFact::TotalKind(k, n) => {
                let what = if n == 1 {
                    format!("exactly one {}", k.name())
                } else {
                    format!("exactly {} {}", number_word(n), k.plural())
                };
                format!("the images contain {what} in total.")
            }
            PairFact::ExactlyOneHasKind(k) => {
                if rng.random_bool(0.5) {
                    format!("exactly one image contains {}.", with_article(k.name()))
                } else {
                    format!(
                        "one image contains {} and the other does not.",
                        with_article(k.name())
                    )
                }
            }
            PairFact::NeitherHasColor(c) => format!(
                "neither image contains {}.",
                with_article(&format!("{} shape", c.name()))
            ),
            PairFact::SideHasAt(s, c, k, r) => format!(
                "in the {} image, {} is {}.",
                s.name(),
                with_article(&format!("{} {}", c.name(), k.name())),
                r.phrase()
            ),
            PairFact::SameCount => (*pick(
                rng,
                &[
                    "both images contain the same number of shapes.",
                    "the two images have equally many shapes.",
                ],
            ))
            .to_string(),
        }
    }

    /// The sentence of a [`Nlvr2Statements::Each`] world: one wording per statement (the tiny
    /// model learns "there is a red shape in each image" less well than "each image contains
    /// at least one red shape").
    fn each_text(&self, rng: &mut StdRng) -> String {
        match *self {
            PairFact::EachHasColor(c) => {
                format!("each image contains at least one {} shape.", c.name())
            }
            _ => self.text(rng),
        }
    }

    /// The kind the sentence is mostly about (for the `synset`/`query` fields).
    fn topic(&self) -> Option<Kind> {
        match *self {
            PairFact::SideCountKind(_, k, _)
            | PairFact::EachHasKind(k)
            | PairFact::BothHave(_, k)
            | PairFact::MoreKind(_, k)
            | PairFact::TotalKind(k, _)
            | PairFact::ExactlyOneHasKind(k)
            | PairFact::SideHasAt(_, _, k, _) => Some(k),
            _ => None,
        }
    }
}

fn synset(kind: Kind) -> &'static str {
    match kind {
        Kind::Circle => "n13873502",
        Kind::Square => "n13879320",
        Kind::Triangle => "n13881512",
        Kind::Star => "n13894434",
    }
}

#[derive(Serialize)]
struct Line {
    identifier: String,
    sentence: String,
    label: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    directory: Option<u32>,
    synset: &'static str,
    query: String,
}

/// Writes the three JSONL files; returns the render jobs for every image.
pub(crate) fn generate(
    out: &Path,
    counts: &SynthCounts,
    rng: &mut StdRng,
    summary: &mut Nlvr2Summary,
) -> Result<Vec<RenderJob>> {
    let mut jobs = Vec::new();
    let n_dirs = (counts.nlvr2_train_sets as u32 / 8).clamp(1, 100);
    for (split, n_sets) in [
        ("train", counts.nlvr2_train_sets),
        ("dev", counts.nlvr2_dev_sets),
        ("test1", counts.nlvr2_test1_sets),
    ] {
        let path = out.join(format!("nlvr2/{split}.json"));
        let mut text = String::new();
        let mut labels: BTreeMap<String, usize> = BTreeMap::new();
        let mut pairs = 0;
        for set_id in 0..n_sets {
            let fact = PairFact::sample(rng, counts.nlvr2_statements);
            let sentence = capitalize(&match counts.nlvr2_statements {
                Nlvr2Statements::All => fact.text(rng),
                Nlvr2Statements::Each => fact.each_text(rng),
            });
            let sentence_id = rng.random_range(0..4u32);
            let directory = (split == "train").then(|| rng.random_range(0..n_dirs));
            let topic = fact.topic().unwrap_or(*pick(rng, &Kind::ALL));
            let query = format!("{} {}", topic.plural(), rng.random_range(1..=9));
            let n_pairs = rng.random_range(2..=4usize);
            let mut targets: Vec<bool> = (0..n_pairs).map(|i| i % 2 == 0).collect();
            if n_pairs % 2 == 1 && rng.random_bool(0.5) {
                targets[n_pairs - 1] = false;
            }
            targets.shuffle(rng);
            for (pair_id, want) in targets.into_iter().enumerate() {
                let mut found = None;
                for _ in 0..2000 {
                    let l = Scene::sample(rng);
                    let r = Scene::sample(rng);
                    if fact.eval(&l, &r) == want {
                        found = Some((l, r));
                        break;
                    }
                }
                let (l, r) = found.unwrap_or_else(|| (Scene::sample(rng), Scene::sample(rng)));
                let label = if fact.eval(&l, &r) { "True" } else { "False" };
                let base = format!("{split}-{set_id}-{pair_id}");
                let dir = match directory {
                    Some(d) => out.join(format!("nlvr2/images/train/{d}")),
                    None => out.join(format!("nlvr2/images/{split}")),
                };
                for (i, scene) in [l, r].into_iter().enumerate() {
                    let (width, height) = image_dims(rng, counts.image_size);
                    // Like the official data, a few `.png` files are really JPEG.
                    let jpeg = (set_id == 0 && pair_id == 0 && i == 1) || rng.random_bool(0.02);
                    if jpeg {
                        summary.jpeg_encoded_png += 1;
                    }
                    jobs.push(RenderJob {
                        path: dir.join(format!("{base}-img{i}.png")),
                        scene,
                        width,
                        height,
                        seed: rng.random(),
                        encoding: if jpeg { Encoding::Jpeg } else { Encoding::Png },
                    });
                }
                pairs += 1;
                let line = Line {
                    identifier: format!("{base}-{sentence_id}"),
                    sentence: sentence.clone(),
                    label,
                    directory,
                    synset: synset(topic),
                    query: query.clone(),
                };
                let json = serde_json::to_string(&line).map_err(|e| json_err(&path, e))?;
                let _ = writeln!(text, "{json}");
                *labels.entry(label.to_string()).or_default() += 1;
            }
        }
        write_file(&path, text.as_bytes())?;
        let rel = PathBuf::from(format!("nlvr2/{split}.json"));
        summary.files.insert(split.to_string(), rel);
        summary.pairs.insert(split.to_string(), pairs);
        summary.sentences.insert(split.to_string(), n_sets);
        if split != "train" {
            let (label, accuracy, examples) = majority(&labels, &[]);
            summary.baselines.insert(
                split.to_string(),
                MajorityBaseline {
                    label,
                    accuracy,
                    examples,
                },
            );
        }
        summary.labels.insert(split.to_string(), labels);
    }
    summary.image_dir = PathBuf::from("nlvr2/images");
    Ok(jobs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn colour_sentences_take_an_before_a_vowel() {
        let mut rng = StdRng::seed_from_u64(0);
        let orange = PairFact::NeitherHasColor(Color::Orange).text(&mut rng);
        assert_eq!(orange, "neither image contains an orange shape.");
        let red = PairFact::NeitherHasColor(Color::Red).text(&mut rng);
        assert_eq!(red, "neither image contains a red shape.");
    }

    #[test]
    fn every_pair_fact_can_be_true_and_false() {
        let mut rng = StdRng::seed_from_u64(2);
        for i in 0..400 {
            let statements = if i % 4 == 0 {
                Nlvr2Statements::Each
            } else {
                Nlvr2Statements::All
            };
            let f = PairFact::sample(&mut rng, statements);
            let mut seen = [false; 2];
            for _ in 0..4000 {
                let (l, r) = (Scene::sample(&mut rng), Scene::sample(&mut rng));
                seen[f.eval(&l, &r) as usize] = true;
                if seen[0] && seen[1] {
                    break;
                }
            }
            assert!(seen[0] && seen[1], "{f:?}");
            assert!(f.text(&mut rng).ends_with('.'));
        }
    }

    #[test]
    fn each_statements_quantify_over_both_images() {
        let mut rng = StdRng::seed_from_u64(3);
        let mut seen = [0usize; 2];
        for _ in 0..300 {
            let f = PairFact::sample(&mut rng, Nlvr2Statements::Each);
            let text = f.each_text(&mut rng);
            assert!(
                text.starts_with("each image contains at least one ")
                    || text.starts_with("both images contain "),
                "{text}"
            );
            seen[match f {
                PairFact::EachHasColor(_) => 0,
                PairFact::BothHave(..) => 1,
                _ => panic!("{f:?} is not an each/both statement"),
            }] += 1;
        }
        assert!(seen[0] > 3 * seen[1] / 2 && seen[1] > 40, "{seen:?}");
    }
}
