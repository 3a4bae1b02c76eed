//! Statements about one scene whose truth the picture decides (entailment / contradiction
//! hypotheses) and statements it cannot decide (neutral hypotheses).

use rand::Rng;
use rand::rngs::StdRng;

use super::scene::{Color, Kind, Region, Scene, SizeClass, pick, pick_weighted};
use super::text::{counted, number_word, with_article};

/// A checkable claim about one scene.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Fact {
    Exists(Color, Kind),
    ExistsColor(Color),
    ExistsKind(Kind),
    NoKind(Kind),
    CountAll(usize),
    CountKind(Kind, usize),
    CountColor(Color, usize),
    At(Color, Kind, Region),
    SizeIs(Color, Kind, SizeClass),
    LeftOf((Color, Kind), (Color, Kind)),
    Above((Color, Kind), (Color, Kind)),
    AllColor(Color),
    AllKind(Kind),
}

impl Fact {
    /// Whether the claim holds in `scene` (claims about an absent shape are false).
    pub(crate) fn eval(&self, scene: &Scene) -> bool {
        match *self {
            Fact::Exists(c, k) => scene.find(c, k).is_some(),
            Fact::ExistsColor(c) => scene.count_color(c) > 0,
            Fact::ExistsKind(k) => scene.count_kind(k) > 0,
            Fact::NoKind(k) => scene.count_kind(k) == 0,
            Fact::CountAll(n) => scene.shapes.len() == n,
            Fact::CountKind(k, n) => scene.count_kind(k) == n,
            Fact::CountColor(c, n) => scene.count_color(c) == n,
            Fact::At(c, k, r) => scene.find(c, k).is_some_and(|s| r.contains(s.col, s.row)),
            Fact::SizeIs(c, k, z) => scene.find(c, k).is_some_and(|s| s.size == z),
            Fact::LeftOf(a, b) => match (scene.find(a.0, a.1), scene.find(b.0, b.1)) {
                (Some(x), Some(y)) => x.col < y.col,
                _ => false,
            },
            Fact::Above(a, b) => match (scene.find(a.0, a.1), scene.find(b.0, b.1)) {
                (Some(x), Some(y)) => x.row < y.row,
                _ => false,
            },
            Fact::AllColor(c) => scene.shapes.iter().all(|s| s.color == c),
            Fact::AllKind(k) => scene.shapes.iter().all(|s| s.kind == k),
        }
    }

    /// A random candidate, with parameters drawn mostly from the scene's own shapes.
    fn sample(scene: &Scene, rng: &mut StdRng) -> Fact {
        let own = pick(rng, &scene.shapes).clone();
        let (c, k) = if rng.random_bool(0.6) {
            (own.color, own.kind)
        } else if rng.random_bool(0.5) {
            (own.color, *pick(rng, &Kind::ALL))
        } else {
            (*pick(rng, &Color::ALL), own.kind)
        };
        let other = pick(rng, &scene.shapes).clone();
        let n_near = |rng: &mut StdRng, n: usize| -> usize {
            if rng.random_bool(0.5) {
                n
            } else {
                (n as i64 + *pick(rng, &[-1i64, 1, 2])).max(0) as usize
            }
        };
        match pick_weighted(rng, &[14, 7, 7, 6, 9, 9, 5, 12, 8, 8, 6, 3, 3]) {
            0 => Fact::Exists(c, k),
            1 => Fact::ExistsColor(c),
            2 => Fact::ExistsKind(k),
            3 => Fact::NoKind(k),
            4 => Fact::CountAll(n_near(rng, scene.shapes.len()).max(1)),
            5 => Fact::CountKind(k, n_near(rng, scene.count_kind(k)).max(1)),
            6 => Fact::CountColor(c, n_near(rng, scene.count_color(c)).max(1)),
            7 => {
                let r = if rng.random_bool(0.5) {
                    *pick(rng, &Region::ALL)
                } else {
                    // A region the chosen shape really is in, when it has one.
                    Region::ALL
                        .iter()
                        .copied()
                        .find(|r| r.contains(own.col, own.row))
                        .unwrap_or(Region::Center)
                };
                Fact::At(c, k, r)
            }
            8 => {
                let z = if rng.random_bool(0.5) {
                    SizeClass::Small
                } else {
                    SizeClass::Large
                };
                Fact::SizeIs(c, k, z)
            }
            9 => Fact::LeftOf((c, k), (other.color, other.kind)),
            10 => Fact::Above((c, k), (other.color, other.kind)),
            11 => Fact::AllColor(c),
            _ => Fact::AllKind(k),
        }
    }

    /// A claim about `scene` whose truth is `want`.
    pub(crate) fn sample_with_truth(scene: &Scene, want: bool, rng: &mut StdRng) -> Fact {
        for _ in 0..400 {
            let f = Fact::sample(scene, rng);
            if f.eval(scene) == want && f.is_sensible() {
                return f;
            }
        }
        // Fallbacks that always have the wanted truth.
        if want {
            Fact::CountAll(scene.shapes.len())
        } else {
            Fact::CountAll(scene.shapes.len() + 1)
        }
    }

    /// Rules out self-relations ("the red circle is left of the red circle").
    fn is_sensible(&self) -> bool {
        match self {
            Fact::LeftOf(a, b) | Fact::Above(a, b) => a != b,
            _ => true,
        }
    }

    /// The claim in words (lower case, final period).
    pub(crate) fn text(&self, rng: &mut StdRng) -> String {
        let cn = |c: Color, k: Kind| format!("{} {}", c.name(), k.name());
        match *self {
            Fact::Exists(c, k) => {
                let a = with_article(&cn(c, k));
                match rng.random_range(0..4) {
                    0 => format!("there is {a}."),
                    1 => format!("the image contains {a}."),
                    2 => format!("{a} can be seen."),
                    _ => format!("the picture shows {a}."),
                }
            }
            Fact::ExistsColor(c) => match rng.random_range(0..3) {
                0 => format!("there is {} shape.", with_article(c.name())),
                1 => format!("one of the shapes is {}.", c.name()),
                _ => format!("something {} is in the picture.", c.name()),
            },
            Fact::ExistsKind(k) => match rng.random_range(0..3) {
                0 => format!("there is {}.", with_article(k.name())),
                1 => format!("the image contains at least one {}.", k.name()),
                _ => format!("{} is shown.", with_article(k.name())),
            },
            Fact::NoKind(k) => match rng.random_range(0..3) {
                0 => format!("there are no {}.", k.plural()),
                1 => format!("the picture has no {} in it.", k.plural()),
                _ => format!("no {} is visible.", k.name()),
            },
            Fact::CountAll(n) => {
                if n == 1 {
                    (*pick(
                        rng,
                        &[
                            "there is only one shape.",
                            "the image shows a single shape.",
                        ],
                    ))
                    .to_string()
                } else {
                    let w = number_word(n);
                    match rng.random_range(0..3) {
                        0 => format!("there are {w} shapes."),
                        1 => format!("the image shows exactly {w} shapes."),
                        _ => format!("{w} shapes are visible."),
                    }
                }
            }
            Fact::CountKind(k, n) => {
                if n == 1 {
                    if rng.random_bool(0.5) {
                        format!("there is exactly one {}.", k.name())
                    } else {
                        format!("only one {} is shown.", k.name())
                    }
                } else if rng.random_bool(0.5) {
                    format!("there are {}.", counted(n, k))
                } else {
                    format!("exactly {} are shown.", counted(n, k))
                }
            }
            Fact::CountColor(c, n) => {
                if n == 1 {
                    format!("exactly one shape is {}.", c.name())
                } else if rng.random_bool(0.5) {
                    format!("{} shapes are {}.", number_word(n), c.name())
                } else {
                    format!("there are exactly {} {} shapes.", number_word(n), c.name())
                }
            }
            Fact::At(c, k, r) => {
                if rng.random_bool(0.5) {
                    format!("the {} is {}.", cn(c, k), r.phrase())
                } else {
                    format!("{} is {}.", with_article(&cn(c, k)), r.phrase())
                }
            }
            Fact::SizeIs(c, k, z) => {
                if rng.random_bool(0.5) {
                    format!("the {} is {}.", cn(c, k), z.name())
                } else {
                    format!(
                        "there is {}.",
                        with_article(&format!("{} {}", z.name(), cn(c, k)))
                    )
                }
            }
            Fact::LeftOf(a, b) => {
                if rng.random_bool(0.5) {
                    format!(
                        "the {} is to the left of the {}.",
                        cn(a.0, a.1),
                        cn(b.0, b.1)
                    )
                } else {
                    format!(
                        "the {} is to the right of the {}.",
                        cn(b.0, b.1),
                        cn(a.0, a.1)
                    )
                }
            }
            Fact::Above(a, b) => {
                if rng.random_bool(0.5) {
                    format!("the {} is above the {}.", cn(a.0, a.1), cn(b.0, b.1))
                } else {
                    format!("the {} is below the {}.", cn(b.0, b.1), cn(a.0, a.1))
                }
            }
            Fact::AllColor(c) => {
                if rng.random_bool(0.5) {
                    format!("all the shapes are {}.", c.name())
                } else {
                    format!("every shape is {}.", c.name())
                }
            }
            Fact::AllKind(k) => {
                if rng.random_bool(0.5) {
                    format!("all the shapes are {}.", k.plural())
                } else {
                    format!("every shape is {}.", with_article(k.name()))
                }
            }
        }
    }
}

/// A statement the picture can neither confirm nor refute (material, time, author, purpose).
pub(crate) fn neutral_statement(scene: &Scene, rng: &mut StdRng) -> String {
    let s = pick(rng, &scene.shapes);
    let the = format!("the {} {}", s.color.name(), s.kind.name());
    match rng.random_range(0..8) {
        0 => format!(
            "{the} is made of {}.",
            pick(rng, &["wood", "paper", "plastic", "metal", "glass", "felt"])
        ),
        1 => format!(
            "the picture was taken at {}.",
            pick(rng, &["noon", "night", "dawn", "dusk"])
        ),
        2 => format!(
            "the shapes were drawn by {}.",
            pick(rng, &["a child", "an artist", "a student", "a teacher"])
        ),
        3 => format!(
            "{the} is {}.",
            pick(
                rng,
                &["heavy", "warm", "cold", "soft", "expensive", "sticky"]
            )
        ),
        4 => format!(
            "someone is about to {} {the}.",
            pick(rng, &["move", "erase", "paint over", "cut out"])
        ),
        5 => format!(
            "the image is part of {}.",
            pick(
                rng,
                &[
                    "a children's book",
                    "a math lesson",
                    "a puzzle game",
                    "an art exhibition"
                ]
            )
        ),
        6 => format!("{the} is the artist's favorite shape."),
        _ => format!(
            "{the} was cut out of {}.",
            pick(rng, &["cardboard", "felt", "colored paper"])
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn sampled_facts_have_the_requested_truth() {
        let mut rng = StdRng::seed_from_u64(1);
        for i in 0..1000 {
            let scene = Scene::sample(&mut rng);
            let want = i % 2 == 0;
            let f = Fact::sample_with_truth(&scene, want, &mut rng);
            assert_eq!(f.eval(&scene), want, "{f:?} on {scene:?}");
            assert!(f.text(&mut rng).ends_with('.'));
        }
    }
}
