//! The world: shapes with a kind, colour, size and grid cell, on a background; random sampling.

use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

/// Picks one element of a non-empty internal table.
pub(crate) fn pick<'a, T>(rng: &mut StdRng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

/// Index drawn with probability proportional to `weights` (not all zero).
pub(crate) fn pick_weighted(rng: &mut StdRng, weights: &[u32]) -> usize {
    let total: u32 = weights.iter().sum();
    let mut x = rng.random_range(0..total.max(1));
    for (i, &w) in weights.iter().enumerate() {
        if x < w {
            return i;
        }
        x -= w;
    }
    weights.len() - 1
}

/// Shape colours: six hues far apart from each other and from the neutral backgrounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Color {
    Red,
    Green,
    Blue,
    Yellow,
    Purple,
    Orange,
}

impl Color {
    pub(crate) const ALL: [Color; 6] = [
        Color::Red,
        Color::Green,
        Color::Blue,
        Color::Yellow,
        Color::Purple,
        Color::Orange,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Color::Red => "red",
            Color::Green => "green",
            Color::Blue => "blue",
            Color::Yellow => "yellow",
            Color::Purple => "purple",
            Color::Orange => "orange",
        }
    }

    pub(crate) fn rgb(self) -> [u8; 3] {
        match self {
            Color::Red => [220, 30, 35],
            Color::Green => [30, 165, 60],
            Color::Blue => [35, 75, 225],
            Color::Yellow => [245, 215, 30],
            Color::Purple => [145, 50, 190],
            Color::Orange => [250, 135, 20],
        }
    }

    /// What some annotators answer instead of the plain colour name.
    pub(crate) fn answer_variants(self) -> &'static [&'static str] {
        match self {
            Color::Red => &["dark red", "bright red", "crimson"],
            Color::Green => &["dark green", "bright green", "lime"],
            Color::Blue => &["dark blue", "royal blue", "bright blue"],
            Color::Yellow => &["bright yellow", "gold", "yellowish"],
            Color::Purple => &["violet", "dark purple", "magenta"],
            Color::Orange => &["dark orange", "orangish", "bright orange"],
        }
    }
}

/// Shape kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Kind {
    Circle,
    Square,
    Triangle,
    Star,
}

impl Kind {
    pub(crate) const ALL: [Kind; 4] = [Kind::Circle, Kind::Square, Kind::Triangle, Kind::Star];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Circle => "circle",
            Kind::Square => "square",
            Kind::Triangle => "triangle",
            Kind::Star => "star",
        }
    }

    pub(crate) fn plural(self) -> &'static str {
        match self {
            Kind::Circle => "circles",
            Kind::Square => "squares",
            Kind::Triangle => "triangles",
            Kind::Star => "stars",
        }
    }

    /// Nouns a caption writer may use for this kind.
    pub(crate) fn caption_nouns(self) -> &'static [&'static str] {
        match self {
            Kind::Circle => &["circle", "circle", "disc", "round shape"],
            Kind::Square => &["square", "square", "box", "block"],
            Kind::Triangle => &["triangle"],
            Kind::Star => &["star", "star", "star shape"],
        }
    }

    /// What some annotators answer instead of the plain kind name.
    pub(crate) fn answer_variants(self) -> &'static [&'static str] {
        match self {
            Kind::Circle => &["a circle", "round", "oval", "disc"],
            Kind::Square => &["a square", "box", "rectangle", "block"],
            Kind::Triangle => &["a triangle", "triangular", "pyramid"],
            Kind::Star => &["a star", "star shape", "pentagram"],
        }
    }
}

/// Two size classes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum SizeClass {
    Small,
    Large,
}

impl SizeClass {
    pub(crate) fn name(self) -> &'static str {
        match self {
            SizeClass::Small => "small",
            SizeClass::Large => "large",
        }
    }

    /// Adjectives a caption writer may use.
    pub(crate) fn caption_words(self) -> &'static [&'static str] {
        match self {
            SizeClass::Small => &["small", "small", "little", "tiny"],
            SizeClass::Large => &["large", "large", "big"],
        }
    }

    pub(crate) fn answer_variants(self) -> &'static [&'static str] {
        match self {
            SizeClass::Small => &["little", "tiny", "smaller"],
            SizeClass::Large => &["big", "larger", "huge"],
        }
    }

    /// Radius as a fraction of the image's shorter side.
    pub(crate) fn radius_fraction(self) -> f32 {
        match self {
            SizeClass::Small => 0.095,
            SizeClass::Large => 0.155,
        }
    }
}

/// Coarse regions of the 3x3 grid used by statements and questions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Region {
    Left,
    Right,
    Top,
    Bottom,
    Center,
}

impl Region {
    pub(crate) const ALL: [Region; 5] = [
        Region::Left,
        Region::Right,
        Region::Top,
        Region::Bottom,
        Region::Center,
    ];

    /// "on the left", "at the top", "in the center".
    pub(crate) fn phrase(self) -> &'static str {
        match self {
            Region::Left => "on the left",
            Region::Right => "on the right",
            Region::Top => "at the top",
            Region::Bottom => "at the bottom",
            Region::Center => "in the center",
        }
    }

    /// Whether a shape in cell (`col`, `row`) lies in this region.
    pub(crate) fn contains(self, col: u8, row: u8) -> bool {
        match self {
            Region::Left => col == 0,
            Region::Right => col == 2,
            Region::Top => row == 0,
            Region::Bottom => row == 2,
            Region::Center => col == 1 && row == 1,
        }
    }
}

/// One shape of a scene.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Shape {
    pub kind: Kind,
    pub color: Color,
    pub size: SizeClass,
    /// Grid column: 0 left, 1 centre, 2 right.
    pub col: u8,
    /// Grid row: 0 top, 1 middle, 2 bottom.
    pub row: u8,
    /// Offset of the centre from the cell centre, as fractions of the shorter image side.
    pub jitter: (f32, f32),
    /// The colour actually painted (the palette colour, slightly perturbed).
    pub rgb: [u8; 3],
}

impl Shape {
    /// "red circle".
    pub(crate) fn noun(&self) -> String {
        format!("{} {}", self.color.name(), self.kind.name())
    }

    /// The answer to "where is the ...?": "left", "top right", "center", ...
    pub(crate) fn where_answer(&self) -> &'static str {
        match (self.col, self.row) {
            (0, 0) => "top left",
            (1, 0) => "top",
            (2, 0) => "top right",
            (0, 1) => "left",
            (2, 1) => "right",
            (0, 2) => "bottom left",
            (1, 2) => "bottom",
            (2, 2) => "bottom right",
            _ => "center",
        }
    }

    /// A prepositional phrase locating the shape ("in the top left corner", "on the right").
    pub(crate) fn location_phrase(&self, rng: &mut StdRng) -> String {
        match self.where_answer() {
            "center" => pick(rng, &["in the center", "in the middle"]).to_string(),
            "left" => pick(rng, &["on the left", "on the left side"]).to_string(),
            "right" => pick(rng, &["on the right", "on the right side"]).to_string(),
            "top" => pick(rng, &["at the top", "near the top"]).to_string(),
            "bottom" => pick(rng, &["at the bottom", "near the bottom"]).to_string(),
            corner => {
                if rng.random_bool(0.5) {
                    format!("in the {corner} corner")
                } else {
                    format!("at the {corner}")
                }
            }
        }
    }
}

/// Neutral background tones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tone {
    White,
    LightGray,
    Beige,
    DarkGray,
    Slate,
    Black,
}

impl Tone {
    pub(crate) const ALL: [Tone; 6] = [
        Tone::White,
        Tone::LightGray,
        Tone::Beige,
        Tone::DarkGray,
        Tone::Slate,
        Tone::Black,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Tone::White => "white",
            Tone::LightGray => "light gray",
            Tone::Beige => "beige",
            Tone::DarkGray => "dark gray",
            Tone::Slate => "slate",
            Tone::Black => "black",
        }
    }

    pub(crate) fn rgb(self) -> [u8; 3] {
        match self {
            Tone::White => [242, 242, 238],
            Tone::LightGray => [196, 198, 200],
            Tone::Beige => [226, 214, 188],
            Tone::DarkGray => [78, 78, 80],
            Tone::Slate => [52, 62, 78],
            Tone::Black => [22, 22, 26],
        }
    }
}

/// Direction of a gradient background.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum GradientDir {
    Horizontal,
    Vertical,
    Diagonal,
}

/// A scene background.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Background {
    Plain(Tone),
    Gradient(Tone, Tone, GradientDir),
    /// A tone with uniform per-pixel noise of the given amplitude.
    Noise(Tone, u8),
}

impl Background {
    fn sample(rng: &mut StdRng) -> Background {
        let tone = *pick(rng, &Tone::ALL);
        match pick_weighted(rng, &[40, 30, 30]) {
            0 => Background::Plain(tone),
            1 => {
                let mut other = *pick(rng, &Tone::ALL);
                while other == tone {
                    other = *pick(rng, &Tone::ALL);
                }
                let dir = *pick(
                    rng,
                    &[
                        GradientDir::Horizontal,
                        GradientDir::Vertical,
                        GradientDir::Diagonal,
                    ],
                );
                Background::Gradient(tone, other, dir)
            }
            _ => Background::Noise(tone, rng.random_range(8..=22)),
        }
    }

    /// "a white background", "a grainy beige background", ...
    pub(crate) fn phrase(&self, rng: &mut StdRng) -> String {
        match self {
            Background::Plain(t) => {
                let adj = pick(rng, &["", "", "plain "]);
                format!("a {adj}{} background", t.name())
            }
            Background::Gradient(a, b, _) => {
                if rng.random_bool(0.5) {
                    format!("a {} and {} gradient background", a.name(), b.name())
                } else {
                    "a shaded background".to_string()
                }
            }
            Background::Noise(t, _) => {
                let adj = pick(rng, &["grainy", "noisy", "speckled"]);
                format!("a {adj} {} background", t.name())
            }
        }
    }
}

/// One image's content.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Scene {
    pub shapes: Vec<Shape>,
    pub background: Background,
}

impl Scene {
    /// A random scene with 1-4 shapes in distinct grid cells and distinct (colour, kind) pairs,
    /// shapes listed in reading order (top to bottom, left to right).
    pub(crate) fn sample(rng: &mut StdRng) -> Scene {
        let n = 1 + pick_weighted(rng, &[25, 30, 25, 20]);
        let mut cells: Vec<u8> = (0..9).collect();
        cells.shuffle(rng);
        let mut combos: Vec<(Color, Kind)> = Color::ALL
            .iter()
            .flat_map(|&c| Kind::ALL.iter().map(move |&k| (c, k)))
            .collect();
        combos.shuffle(rng);
        let mut shapes: Vec<Shape> = (0..n)
            .map(|i| {
                let (color, kind) = combos[i];
                let size = if rng.random_bool(0.5) {
                    SizeClass::Large
                } else {
                    SizeClass::Small
                };
                let base = color.rgb();
                let rgb = base.map(|v| (v as i32 + rng.random_range(-12..=12)).clamp(0, 255) as u8);
                Shape {
                    kind,
                    color,
                    size,
                    col: cells[i] % 3,
                    row: cells[i] / 3,
                    jitter: (rng.random_range(-0.03..0.03), rng.random_range(-0.03..0.03)),
                    rgb,
                }
            })
            .collect();
        shapes.sort_by_key(|s| (s.row, s.col));
        Scene {
            shapes,
            background: Background::sample(rng),
        }
    }

    pub(crate) fn count_kind(&self, kind: Kind) -> usize {
        self.shapes.iter().filter(|s| s.kind == kind).count()
    }

    pub(crate) fn count_color(&self, color: Color) -> usize {
        self.shapes.iter().filter(|s| s.color == color).count()
    }

    pub(crate) fn find(&self, color: Color, kind: Kind) -> Option<&Shape> {
        self.shapes
            .iter()
            .find(|s| s.color == color && s.kind == kind)
    }

    /// The only shape of this kind, if exactly one.
    pub(crate) fn unique_kind(&self, kind: Kind) -> Option<&Shape> {
        let mut it = self.shapes.iter().filter(|s| s.kind == kind);
        let first = it.next()?;
        it.next().is_none().then_some(first)
    }

    /// The only shape of this colour, if exactly one.
    pub(crate) fn unique_color(&self, color: Color) -> Option<&Shape> {
        let mut it = self.shapes.iter().filter(|s| s.color == color);
        let first = it.next()?;
        it.next().is_none().then_some(first)
    }

    /// The only shape in this region, if exactly one.
    pub(crate) fn unique_in(&self, region: Region) -> Option<&Shape> {
        let mut it = self.shapes.iter().filter(|s| region.contains(s.col, s.row));
        let first = it.next()?;
        it.next().is_none().then_some(first)
    }

    /// A (colour, kind) pair absent from the scene, preferring ones that share the colour or the
    /// kind of a present shape (hard negatives).
    pub(crate) fn absent_pair(&self, rng: &mut StdRng) -> (Color, Kind) {
        for _ in 0..32 {
            let s = pick(rng, &self.shapes);
            let cand = if rng.random_bool(0.5) {
                (s.color, *pick(rng, &Kind::ALL))
            } else {
                (*pick(rng, &Color::ALL), s.kind)
            };
            if self.find(cand.0, cand.1).is_none() {
                return cand;
            }
        }
        loop {
            let cand = (*pick(rng, &Color::ALL), *pick(rng, &Kind::ALL));
            if self.find(cand.0, cand.1).is_none() {
                return cand;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn scenes_have_distinct_cells_and_pairs() {
        let mut rng = StdRng::seed_from_u64(3);
        for _ in 0..500 {
            let s = Scene::sample(&mut rng);
            assert!((1..=4).contains(&s.shapes.len()));
            for (i, a) in s.shapes.iter().enumerate() {
                for b in &s.shapes[i + 1..] {
                    assert!((a.col, a.row) != (b.col, b.row));
                    assert!((a.color, a.kind) != (b.color, b.kind));
                }
            }
            let (c, k) = s.absent_pair(&mut rng);
            assert!(s.find(c, k).is_none());
        }
    }
}
