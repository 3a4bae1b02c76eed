//! Wording: articles, number words, lists, captions and Karpathy-style tokens.

use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use super::scene::{Kind, Scene, Shape, pick};

/// "a" or "an" for the phrase that follows.
pub(crate) fn article(phrase: &str) -> &'static str {
    match phrase.chars().next() {
        Some('a' | 'e' | 'i' | 'o' | 'u') => "an",
        _ => "a",
    }
}

/// The phrase with its indefinite article ("an orange star").
pub(crate) fn with_article(phrase: &str) -> String {
    format!("{} {phrase}", article(phrase))
}

/// "zero" .. "ten"; larger numbers as digits.
pub(crate) fn number_word(n: usize) -> String {
    const WORDS: [&str; 11] = [
        "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    ];
    WORDS
        .get(n)
        .map_or_else(|| n.to_string(), |w| (*w).to_string())
}

/// "x", "x and y", "x, y and z".
pub(crate) fn join_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// First letter upper-cased.
pub(crate) fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Karpathy-style tokens: lower-cased alphanumeric runs, punctuation dropped.
pub(crate) fn tokens(s: &str) -> Vec<String> {
    s.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(|t| t.to_ascii_lowercase())
        .collect()
}

/// "2 squares" phrased as "two squares" / "a square".
pub(crate) fn counted(n: usize, kind: Kind) -> String {
    if n == 1 {
        with_article(kind.name())
    } else {
        format!("{} {}", number_word(n), kind.plural())
    }
}

/// "a red circle", optionally with size and caption synonyms ("a big red disc").
fn describe(shape: &Shape, rng: &mut StdRng, with_size: bool, synonyms: bool) -> String {
    let noun = if synonyms {
        *pick(rng, shape.kind.caption_nouns())
    } else {
        shape.kind.name()
    };
    let phrase = if with_size {
        format!(
            "{} {} {noun}",
            pick(rng, shape.size.caption_words()),
            shape.color.name()
        )
    } else {
        format!("{} {noun}", shape.color.name())
    };
    with_article(&phrase)
}

/// Kinds with their counts in first-appearance order: "two circles and a star".
fn kind_summary(scene: &Scene) -> String {
    let mut kinds: Vec<Kind> = Vec::new();
    for s in &scene.shapes {
        if !kinds.contains(&s.kind) {
            kinds.push(s.kind);
        }
    }
    let parts: Vec<String> = kinds
        .iter()
        .map(|&k| counted(scene.count_kind(k), k))
        .collect();
    join_list(&parts)
}

const CAPTION_TEMPLATES: usize = 7;

fn caption_template(scene: &Scene, t: usize, rng: &mut StdRng) -> String {
    let n = scene.shapes.len();
    match t {
        // a large red circle and a small blue square on a gray background.
        0 => {
            let items: Vec<String> = scene
                .shapes
                .iter()
                .map(|s| describe(s, rng, true, false))
                .collect();
            format!("{} on {}.", join_list(&items), scene.background.phrase(rng))
        }
        // two shapes: a red circle and a blue square.
        1 => {
            let items: Vec<String> = scene
                .shapes
                .iter()
                .map(|s| describe(s, rng, false, false))
                .collect();
            if n == 1 {
                format!("a single shape: {}.", items.join(""))
            } else {
                format!("{} shapes: {}.", number_word(n), join_list(&items))
            }
        }
        // a red circle to the left of a blue square.
        2 => {
            if n == 2 {
                let (a, b) = (&scene.shapes[0], &scene.shapes[1]);
                let da = describe(a, rng, false, true);
                let db = describe(b, rng, false, true);
                if a.col != b.col && (a.row == b.row || rng.random_bool(0.5)) {
                    let (l, r) = if a.col < b.col { (da, db) } else { (db, da) };
                    if rng.random_bool(0.5) {
                        format!("{l} to the left of {r}.")
                    } else {
                        format!("{r} to the right of {l}.")
                    }
                } else if rng.random_bool(0.5) {
                    // shapes are in reading order, so `a` is above `b`.
                    format!("{da} above {db}.")
                } else {
                    format!("{db} below {da}.")
                }
            } else {
                let items: Vec<String> = scene
                    .shapes
                    .iter()
                    .map(|s| {
                        let d = describe(s, rng, false, true);
                        format!("{d} {}", s.location_phrase(rng))
                    })
                    .collect();
                format!("{}.", join_list(&items))
            }
        }
        // an image of a big red disc and a tiny blue box.
        3 => {
            let head = pick(
                rng,
                &[
                    "a picture of",
                    "an image of",
                    "a drawing of",
                    "an illustration of",
                    "a simple graphic with",
                ],
            );
            let items: Vec<String> = scene
                .shapes
                .iter()
                .map(|s| {
                    let with_size = rng.random_bool(0.6);
                    describe(s, rng, with_size, true)
                })
                .collect();
            format!("{head} {}.", join_list(&items))
        }
        // two circles and a star on a dark gray background.
        4 => {
            let summary = kind_summary(scene);
            if rng.random_bool(0.5) {
                format!("{summary} on {}.", scene.background.phrase(rng))
            } else if n == 1 {
                format!("there is only {summary} in the picture.")
            } else {
                format!(
                    "there are {} shapes in the picture: {summary}.",
                    number_word(n)
                )
            }
        }
        // a red shape, two blue shapes and a green shape.
        5 => {
            let mut colors: Vec<super::scene::Color> = Vec::new();
            for s in &scene.shapes {
                if !colors.contains(&s.color) {
                    colors.push(s.color);
                }
            }
            let parts: Vec<String> = colors
                .iter()
                .map(|&c| match scene.count_color(c) {
                    1 => format!("{} shape", with_article(c.name())),
                    k => format!("{} {} shapes", number_word(k), c.name()),
                })
                .collect();
            format!("{} on {}.", join_list(&parts), scene.background.phrase(rng))
        }
        // the largest shape is a red circle in the center.
        _ => {
            let big = scene
                .shapes
                .iter()
                .filter(|s| s.size == super::scene::SizeClass::Large)
                .collect::<Vec<_>>();
            if let Some(s) = big.first() {
                let d = describe(s, rng, false, true);
                if big.len() == 1 && n > 1 {
                    format!("the biggest shape is {d} {}.", s.location_phrase(rng))
                } else {
                    format!("{d} {} among other shapes.", s.location_phrase(rng))
                }
            } else {
                let s = &scene.shapes[rng.random_range(0..n)];
                let d = describe(s, rng, true, true);
                if n == 1 {
                    format!(
                        "{d} {} on {}.",
                        s.location_phrase(rng),
                        scene.background.phrase(rng)
                    )
                } else {
                    format!(
                        "{d} {} and {} other small shapes.",
                        s.location_phrase(rng),
                        number_word(n - 1)
                    )
                }
            }
        }
    }
}

/// `k` distinct captions (lower-case, final period) from shuffled templates.
pub(crate) fn captions(scene: &Scene, k: usize, rng: &mut StdRng) -> Vec<String> {
    let mut order: Vec<usize> = (0..CAPTION_TEMPLATES).collect();
    order.shuffle(rng);
    let mut out: Vec<String> = Vec::with_capacity(k);
    let mut i = 0;
    while out.len() < k {
        let c = caption_template(scene, order[i % CAPTION_TEMPLATES], rng);
        // Distinct captions when possible; give up after a few rounds (tiny scenes).
        if !out.contains(&c) || i >= 4 * CAPTION_TEMPLATES {
            out.push(c);
        }
        i += 1;
    }
    out
}

/// Caption as a person would type it: sometimes capitalised, sometimes without the final
/// period, occasionally with a trailing space.
pub(crate) fn humanize(caption: &str, rng: &mut StdRng) -> String {
    let mut s = if rng.random_bool(0.6) {
        capitalize(caption)
    } else {
        caption.to_string()
    };
    if rng.random_bool(0.2) {
        s = s.trim_end_matches('.').to_string();
    }
    if rng.random_bool(0.05) {
        s.push(' ');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn wording_helpers() {
        assert_eq!(with_article("orange star"), "an orange star");
        assert_eq!(with_article("red circle"), "a red circle");
        assert_eq!(
            join_list(&["a".into(), "b".into(), "c".into()]),
            "a, b and c"
        );
        assert_eq!(
            tokens("A red circle, left."),
            vec!["a", "red", "circle", "left"]
        );
        assert_eq!(counted(2, Kind::Star), "two stars");
    }

    #[test]
    fn five_captions_per_scene() {
        let mut rng = StdRng::seed_from_u64(9);
        for _ in 0..200 {
            let scene = Scene::sample(&mut rng);
            let caps = captions(&scene, 5, &mut rng);
            assert_eq!(caps.len(), 5);
            for c in &caps {
                assert!(c.ends_with('.'), "{c}");
                assert!(!c.contains("  "), "{c}");
            }
        }
    }
}
