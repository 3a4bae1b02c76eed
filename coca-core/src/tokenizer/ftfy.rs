//! A port of `ftfy.fix_text` 6.3 with its default configuration.

use std::borrow::Cow;
use std::sync::LazyLock;

use tokenizers::utils::SysRegex;
use unicode_normalization::UnicodeNormalization;

use super::{html, replace_matches};

/// ftfy fixes text in segments of at most this many characters.
const MAX_DECODE_LENGTH: usize = 1_000_000;
/// ftfy repeats its fixes until nothing changes; this bounds the repetition.
const MAX_PASSES: usize = 64;

/// The single-byte encodings ftfy tries, in its order:
/// (name, is sloppy, the characters of bytes 0x80..=0xFF).
const CHARMAPS: [(&str, bool, &str); 10] = [
    (
        "latin-1",
        false,
        concat!(
            "\u{80}\u{81}\u{82}\u{83}\u{84}\u{85}\u{86}\u{87}\u{88}\u{89}\u{8a}\u{8b}\u{8c}\u{8d}\u{8e}\u{8f}",
            "\u{90}\u{91}\u{92}\u{93}\u{94}\u{95}\u{96}\u{97}\u{98}\u{99}\u{9a}\u{9b}\u{9c}\u{9d}\u{9e}\u{9f}",
            "\u{a0}\u{a1}\u{a2}\u{a3}\u{a4}\u{a5}\u{a6}\u{a7}\u{a8}\u{a9}\u{aa}\u{ab}\u{ac}\u{ad}\u{ae}\u{af}",
            "\u{b0}\u{b1}\u{b2}\u{b3}\u{b4}\u{b5}\u{b6}\u{b7}\u{b8}\u{b9}\u{ba}\u{bb}\u{bc}\u{bd}\u{be}\u{bf}",
            "\u{c0}\u{c1}\u{c2}\u{c3}\u{c4}\u{c5}\u{c6}\u{c7}\u{c8}\u{c9}\u{ca}\u{cb}\u{cc}\u{cd}\u{ce}\u{cf}",
            "\u{d0}\u{d1}\u{d2}\u{d3}\u{d4}\u{d5}\u{d6}\u{d7}\u{d8}\u{d9}\u{da}\u{db}\u{dc}\u{dd}\u{de}\u{df}",
            "\u{e0}\u{e1}\u{e2}\u{e3}\u{e4}\u{e5}\u{e6}\u{e7}\u{e8}\u{e9}\u{ea}\u{eb}\u{ec}\u{ed}\u{ee}\u{ef}",
            "\u{f0}\u{f1}\u{f2}\u{f3}\u{f4}\u{f5}\u{f6}\u{f7}\u{f8}\u{f9}\u{fa}\u{fb}\u{fc}\u{fd}\u{fe}\u{ff}",
        ),
    ),
    (
        "sloppy-windows-1252",
        true,
        concat!(
            "\u{20ac}\u{81}\u{201a}\u{192}\u{201e}\u{2026}\u{2020}\u{2021}\u{2c6}\u{2030}\u{160}\u{2039}\u{152}\u{8d}\u{17d}\u{8f}",
            "\u{90}\u{2018}\u{2019}\u{201c}\u{201d}\u{2022}\u{2013}\u{2014}\u{2dc}\u{2122}\u{161}\u{203a}\u{153}\u{9d}\u{17e}\u{178}",
            "\u{a0}\u{a1}\u{a2}\u{a3}\u{a4}\u{a5}\u{a6}\u{a7}\u{a8}\u{a9}\u{aa}\u{ab}\u{ac}\u{ad}\u{ae}\u{af}",
            "\u{b0}\u{b1}\u{b2}\u{b3}\u{b4}\u{b5}\u{b6}\u{b7}\u{b8}\u{b9}\u{ba}\u{bb}\u{bc}\u{bd}\u{be}\u{bf}",
            "\u{c0}\u{c1}\u{c2}\u{c3}\u{c4}\u{c5}\u{c6}\u{c7}\u{c8}\u{c9}\u{ca}\u{cb}\u{cc}\u{cd}\u{ce}\u{cf}",
            "\u{d0}\u{d1}\u{d2}\u{d3}\u{d4}\u{d5}\u{d6}\u{d7}\u{d8}\u{d9}\u{da}\u{db}\u{dc}\u{dd}\u{de}\u{df}",
            "\u{e0}\u{e1}\u{e2}\u{e3}\u{e4}\u{e5}\u{e6}\u{e7}\u{e8}\u{e9}\u{ea}\u{eb}\u{ec}\u{ed}\u{ee}\u{ef}",
            "\u{f0}\u{f1}\u{f2}\u{f3}\u{f4}\u{f5}\u{f6}\u{f7}\u{f8}\u{f9}\u{fa}\u{fb}\u{fc}\u{fd}\u{fe}\u{ff}",
        ),
    ),
    (
        "sloppy-windows-1251",
        true,
        concat!(
            "\u{402}\u{403}\u{201a}\u{453}\u{201e}\u{2026}\u{2020}\u{2021}\u{20ac}\u{2030}\u{409}\u{2039}\u{40a}\u{40c}\u{40b}\u{40f}",
            "\u{452}\u{2018}\u{2019}\u{201c}\u{201d}\u{2022}\u{2013}\u{2014}\u{98}\u{2122}\u{459}\u{203a}\u{45a}\u{45c}\u{45b}\u{45f}",
            "\u{a0}\u{40e}\u{45e}\u{408}\u{a4}\u{490}\u{a6}\u{a7}\u{401}\u{a9}\u{404}\u{ab}\u{ac}\u{ad}\u{ae}\u{407}",
            "\u{b0}\u{b1}\u{406}\u{456}\u{491}\u{b5}\u{b6}\u{b7}\u{451}\u{2116}\u{454}\u{bb}\u{458}\u{405}\u{455}\u{457}",
            "\u{410}\u{411}\u{412}\u{413}\u{414}\u{415}\u{416}\u{417}\u{418}\u{419}\u{41a}\u{41b}\u{41c}\u{41d}\u{41e}\u{41f}",
            "\u{420}\u{421}\u{422}\u{423}\u{424}\u{425}\u{426}\u{427}\u{428}\u{429}\u{42a}\u{42b}\u{42c}\u{42d}\u{42e}\u{42f}",
            "\u{430}\u{431}\u{432}\u{433}\u{434}\u{435}\u{436}\u{437}\u{438}\u{439}\u{43a}\u{43b}\u{43c}\u{43d}\u{43e}\u{43f}",
            "\u{440}\u{441}\u{442}\u{443}\u{444}\u{445}\u{446}\u{447}\u{448}\u{449}\u{44a}\u{44b}\u{44c}\u{44d}\u{44e}\u{44f}",
        ),
    ),
    (
        "sloppy-windows-1250",
        true,
        concat!(
            "\u{20ac}\u{81}\u{201a}\u{83}\u{201e}\u{2026}\u{2020}\u{2021}\u{88}\u{2030}\u{160}\u{2039}\u{15a}\u{164}\u{17d}\u{179}",
            "\u{90}\u{2018}\u{2019}\u{201c}\u{201d}\u{2022}\u{2013}\u{2014}\u{98}\u{2122}\u{161}\u{203a}\u{15b}\u{165}\u{17e}\u{17a}",
            "\u{a0}\u{2c7}\u{2d8}\u{141}\u{a4}\u{104}\u{a6}\u{a7}\u{a8}\u{a9}\u{15e}\u{ab}\u{ac}\u{ad}\u{ae}\u{17b}",
            "\u{b0}\u{b1}\u{2db}\u{142}\u{b4}\u{b5}\u{b6}\u{b7}\u{b8}\u{105}\u{15f}\u{bb}\u{13d}\u{2dd}\u{13e}\u{17c}",
            "\u{154}\u{c1}\u{c2}\u{102}\u{c4}\u{139}\u{106}\u{c7}\u{10c}\u{c9}\u{118}\u{cb}\u{11a}\u{cd}\u{ce}\u{10e}",
            "\u{110}\u{143}\u{147}\u{d3}\u{d4}\u{150}\u{d6}\u{d7}\u{158}\u{16e}\u{da}\u{170}\u{dc}\u{dd}\u{162}\u{df}",
            "\u{155}\u{e1}\u{e2}\u{103}\u{e4}\u{13a}\u{107}\u{e7}\u{10d}\u{e9}\u{119}\u{eb}\u{11b}\u{ed}\u{ee}\u{10f}",
            "\u{111}\u{144}\u{148}\u{f3}\u{f4}\u{151}\u{f6}\u{f7}\u{159}\u{16f}\u{fa}\u{171}\u{fc}\u{fd}\u{163}\u{2d9}",
        ),
    ),
    (
        "sloppy-windows-1253",
        true,
        concat!(
            "\u{20ac}\u{81}\u{201a}\u{192}\u{201e}\u{2026}\u{2020}\u{2021}\u{88}\u{2030}\u{8a}\u{2039}\u{8c}\u{8d}\u{8e}\u{8f}",
            "\u{90}\u{2018}\u{2019}\u{201c}\u{201d}\u{2022}\u{2013}\u{2014}\u{98}\u{2122}\u{9a}\u{203a}\u{9c}\u{9d}\u{9e}\u{9f}",
            "\u{a0}\u{385}\u{386}\u{a3}\u{a4}\u{a5}\u{a6}\u{a7}\u{a8}\u{a9}\u{aa}\u{ab}\u{ac}\u{ad}\u{ae}\u{2015}",
            "\u{b0}\u{b1}\u{b2}\u{b3}\u{384}\u{b5}\u{b6}\u{b7}\u{388}\u{389}\u{38a}\u{bb}\u{38c}\u{bd}\u{38e}\u{38f}",
            "\u{390}\u{391}\u{392}\u{393}\u{394}\u{395}\u{396}\u{397}\u{398}\u{399}\u{39a}\u{39b}\u{39c}\u{39d}\u{39e}\u{39f}",
            "\u{3a0}\u{3a1}\u{d2}\u{3a3}\u{3a4}\u{3a5}\u{3a6}\u{3a7}\u{3a8}\u{3a9}\u{3aa}\u{3ab}\u{3ac}\u{3ad}\u{3ae}\u{3af}",
            "\u{3b0}\u{3b1}\u{3b2}\u{3b3}\u{3b4}\u{3b5}\u{3b6}\u{3b7}\u{3b8}\u{3b9}\u{3ba}\u{3bb}\u{3bc}\u{3bd}\u{3be}\u{3bf}",
            "\u{3c0}\u{3c1}\u{3c2}\u{3c3}\u{3c4}\u{3c5}\u{3c6}\u{3c7}\u{3c8}\u{3c9}\u{3ca}\u{3cb}\u{3cc}\u{3cd}\u{3ce}\u{ff}",
        ),
    ),
    (
        "sloppy-windows-1254",
        true,
        concat!(
            "\u{20ac}\u{81}\u{201a}\u{192}\u{201e}\u{2026}\u{2020}\u{2021}\u{2c6}\u{2030}\u{160}\u{2039}\u{152}\u{8d}\u{8e}\u{8f}",
            "\u{90}\u{2018}\u{2019}\u{201c}\u{201d}\u{2022}\u{2013}\u{2014}\u{2dc}\u{2122}\u{161}\u{203a}\u{153}\u{9d}\u{9e}\u{178}",
            "\u{a0}\u{a1}\u{a2}\u{a3}\u{a4}\u{a5}\u{a6}\u{a7}\u{a8}\u{a9}\u{aa}\u{ab}\u{ac}\u{ad}\u{ae}\u{af}",
            "\u{b0}\u{b1}\u{b2}\u{b3}\u{b4}\u{b5}\u{b6}\u{b7}\u{b8}\u{b9}\u{ba}\u{bb}\u{bc}\u{bd}\u{be}\u{bf}",
            "\u{c0}\u{c1}\u{c2}\u{c3}\u{c4}\u{c5}\u{c6}\u{c7}\u{c8}\u{c9}\u{ca}\u{cb}\u{cc}\u{cd}\u{ce}\u{cf}",
            "\u{11e}\u{d1}\u{d2}\u{d3}\u{d4}\u{d5}\u{d6}\u{d7}\u{d8}\u{d9}\u{da}\u{db}\u{dc}\u{130}\u{15e}\u{df}",
            "\u{e0}\u{e1}\u{e2}\u{e3}\u{e4}\u{e5}\u{e6}\u{e7}\u{e8}\u{e9}\u{ea}\u{eb}\u{ec}\u{ed}\u{ee}\u{ef}",
            "\u{11f}\u{f1}\u{f2}\u{f3}\u{f4}\u{f5}\u{f6}\u{f7}\u{f8}\u{f9}\u{fa}\u{fb}\u{fc}\u{131}\u{15f}\u{ff}",
        ),
    ),
    (
        "sloppy-windows-1257",
        true,
        concat!(
            "\u{20ac}\u{81}\u{201a}\u{83}\u{201e}\u{2026}\u{2020}\u{2021}\u{88}\u{2030}\u{8a}\u{2039}\u{8c}\u{a8}\u{2c7}\u{b8}",
            "\u{90}\u{2018}\u{2019}\u{201c}\u{201d}\u{2022}\u{2013}\u{2014}\u{98}\u{2122}\u{9a}\u{203a}\u{9c}\u{af}\u{2db}\u{9f}",
            "\u{a0}\u{a1}\u{a2}\u{a3}\u{a4}\u{a5}\u{a6}\u{a7}\u{d8}\u{a9}\u{156}\u{ab}\u{ac}\u{ad}\u{ae}\u{c6}",
            "\u{b0}\u{b1}\u{b2}\u{b3}\u{b4}\u{b5}\u{b6}\u{b7}\u{f8}\u{b9}\u{157}\u{bb}\u{bc}\u{bd}\u{be}\u{e6}",
            "\u{104}\u{12e}\u{100}\u{106}\u{c4}\u{c5}\u{118}\u{112}\u{10c}\u{c9}\u{179}\u{116}\u{122}\u{136}\u{12a}\u{13b}",
            "\u{160}\u{143}\u{145}\u{d3}\u{14c}\u{d5}\u{d6}\u{d7}\u{172}\u{141}\u{15a}\u{16a}\u{dc}\u{17b}\u{17d}\u{df}",
            "\u{105}\u{12f}\u{101}\u{107}\u{e4}\u{e5}\u{119}\u{113}\u{10d}\u{e9}\u{17a}\u{117}\u{123}\u{137}\u{12b}\u{13c}",
            "\u{161}\u{144}\u{146}\u{f3}\u{14d}\u{f5}\u{f6}\u{f7}\u{173}\u{142}\u{15b}\u{16b}\u{fc}\u{17c}\u{17e}\u{2d9}",
        ),
    ),
    (
        "iso-8859-2",
        false,
        concat!(
            "\u{80}\u{81}\u{82}\u{83}\u{84}\u{85}\u{86}\u{87}\u{88}\u{89}\u{8a}\u{8b}\u{8c}\u{8d}\u{8e}\u{8f}",
            "\u{90}\u{91}\u{92}\u{93}\u{94}\u{95}\u{96}\u{97}\u{98}\u{99}\u{9a}\u{9b}\u{9c}\u{9d}\u{9e}\u{9f}",
            "\u{a0}\u{104}\u{2d8}\u{141}\u{a4}\u{13d}\u{15a}\u{a7}\u{a8}\u{160}\u{15e}\u{164}\u{179}\u{ad}\u{17d}\u{17b}",
            "\u{b0}\u{105}\u{2db}\u{142}\u{b4}\u{13e}\u{15b}\u{2c7}\u{b8}\u{161}\u{15f}\u{165}\u{17a}\u{2dd}\u{17e}\u{17c}",
            "\u{154}\u{c1}\u{c2}\u{102}\u{c4}\u{139}\u{106}\u{c7}\u{10c}\u{c9}\u{118}\u{cb}\u{11a}\u{cd}\u{ce}\u{10e}",
            "\u{110}\u{143}\u{147}\u{d3}\u{d4}\u{150}\u{d6}\u{d7}\u{158}\u{16e}\u{da}\u{170}\u{dc}\u{dd}\u{162}\u{df}",
            "\u{155}\u{e1}\u{e2}\u{103}\u{e4}\u{13a}\u{107}\u{e7}\u{10d}\u{e9}\u{119}\u{eb}\u{11b}\u{ed}\u{ee}\u{10f}",
            "\u{111}\u{144}\u{148}\u{f3}\u{f4}\u{151}\u{f6}\u{f7}\u{159}\u{16f}\u{fa}\u{171}\u{fc}\u{fd}\u{163}\u{2d9}",
        ),
    ),
    (
        "macroman",
        false,
        concat!(
            "\u{c4}\u{c5}\u{c7}\u{c9}\u{d1}\u{d6}\u{dc}\u{e1}\u{e0}\u{e2}\u{e4}\u{e3}\u{e5}\u{e7}\u{e9}\u{e8}",
            "\u{ea}\u{eb}\u{ed}\u{ec}\u{ee}\u{ef}\u{f1}\u{f3}\u{f2}\u{f4}\u{f6}\u{f5}\u{fa}\u{f9}\u{fb}\u{fc}",
            "\u{2020}\u{b0}\u{a2}\u{a3}\u{a7}\u{2022}\u{b6}\u{df}\u{ae}\u{a9}\u{2122}\u{b4}\u{a8}\u{2260}\u{c6}\u{d8}",
            "\u{221e}\u{b1}\u{2264}\u{2265}\u{a5}\u{b5}\u{2202}\u{2211}\u{220f}\u{3c0}\u{222b}\u{aa}\u{ba}\u{3a9}\u{e6}\u{f8}",
            "\u{bf}\u{a1}\u{ac}\u{221a}\u{192}\u{2248}\u{2206}\u{ab}\u{bb}\u{2026}\u{a0}\u{c0}\u{c3}\u{d5}\u{152}\u{153}",
            "\u{2013}\u{2014}\u{201c}\u{201d}\u{2018}\u{2019}\u{f7}\u{25ca}\u{ff}\u{178}\u{2044}\u{20ac}\u{2039}\u{203a}\u{fb01}\u{fb02}",
            "\u{2021}\u{b7}\u{201a}\u{201e}\u{2030}\u{c2}\u{ca}\u{c1}\u{cb}\u{c8}\u{cd}\u{ce}\u{cf}\u{cc}\u{d3}\u{d4}",
            "\u{f8ff}\u{d2}\u{da}\u{db}\u{d9}\u{131}\u{2c6}\u{2dc}\u{af}\u{2d8}\u{2d9}\u{2da}\u{b8}\u{2dd}\u{2db}\u{2c7}",
        ),
    ),
    (
        "cp437",
        false,
        concat!(
            "\u{c7}\u{fc}\u{e9}\u{e2}\u{e4}\u{e0}\u{e5}\u{e7}\u{ea}\u{eb}\u{e8}\u{ef}\u{ee}\u{ec}\u{c4}\u{c5}",
            "\u{c9}\u{e6}\u{c6}\u{f4}\u{f6}\u{f2}\u{fb}\u{f9}\u{ff}\u{d6}\u{dc}\u{a2}\u{a3}\u{a5}\u{20a7}\u{192}",
            "\u{e1}\u{ed}\u{f3}\u{fa}\u{f1}\u{d1}\u{aa}\u{ba}\u{bf}\u{2310}\u{ac}\u{bd}\u{bc}\u{a1}\u{ab}\u{bb}",
            "\u{2591}\u{2592}\u{2593}\u{2502}\u{2524}\u{2561}\u{2562}\u{2556}\u{2555}\u{2563}\u{2551}\u{2557}\u{255d}\u{255c}\u{255b}\u{2510}",
            "\u{2514}\u{2534}\u{252c}\u{251c}\u{2500}\u{253c}\u{255e}\u{255f}\u{255a}\u{2554}\u{2569}\u{2566}\u{2560}\u{2550}\u{256c}\u{2567}",
            "\u{2568}\u{2564}\u{2565}\u{2559}\u{2558}\u{2552}\u{2553}\u{256b}\u{256a}\u{2518}\u{250c}\u{2588}\u{2584}\u{258c}\u{2590}\u{2580}",
            "\u{3b1}\u{df}\u{393}\u{3c0}\u{3a3}\u{3c3}\u{b5}\u{3c4}\u{3a6}\u{398}\u{3a9}\u{3b4}\u{221e}\u{3c6}\u{3b5}\u{2229}",
            "\u{2261}\u{b1}\u{2265}\u{2264}\u{2320}\u{2321}\u{f7}\u{2248}\u{b0}\u{2219}\u{b7}\u{221a}\u{207f}\u{b2}\u{25a0}\u{a0}",
        ),
    ),
];
const COMMON: &str = "\u{a0}\u{ad}\u{b7}\u{b4}\u{2013}\u{2014}\u{2015}\u{2026}\u{2019}";
const C1: &str = "\u{80}-\u{9f}";
const BAD: &str = "\u{a6}\u{a4}\u{a8}\u{ac}\u{af}\u{b8}\u{192}\u{2c6}\u{2c7}\u{2d8}\u{2db}\u{2dc}\u{2020}\u{2021}\u{2030}\u{2310}\u{25ca}\u{fffd}\u{aa}\u{ba}";
const LAW: &str = "\u{b6}\u{a7}";
const CURRENCY: &str = "\u{a2}\u{a3}\u{a5}\u{20a7}\u{20ac}";
const START_PUNCTUATION: &str = "\u{a1}\u{ab}\u{bf}\u{a9}\u{384}\u{385}\u{2018}\u{201a}\u{201c}\u{201e}\u{2022}\u{2039}\u{f8ff}";
const END_PUNCTUATION: &str = "\u{ae}\u{bb}\u{2dd}\u{201d}\u{203a}\u{2122}";
const NUMERIC: &str = concat!(
    "\u{b2}\u{b3}\u{b9}\u{b1}\u{bc}\u{bd}\u{be}\u{d7}\u{b5}\u{f7}\u{2044}\u{2202}\u{2206}\u{220f}\u{2211}\u{221a}\u{221e}\u{2229}\u{222b}\u{2248}\u{2260}\u{2261}\u{2264}\u{2265}",
    "\u{2116}",
);
const KAOMOJI: &str =
    "\u{d2}-\u{d6}\u{d9}-\u{dc}\u{f2}-\u{f6}\u{f8}-\u{fc}\u{150}\u{14c}\u{16a}\u{172}\u{b0}";
const UPPER_ACCENTED: &str = concat!(
    "\u{c0}-\u{d1}\u{d8}\u{dc}\u{dd}\u{102}\u{100}\u{104}\u{106}\u{10c}\u{10e}\u{110}\u{118}\u{11a}\u{112}\u{116}\u{11e}\u{122}\u{130}\u{12a}\u{136}\u{139}\u{13d}",
    "\u{141}\u{13b}\u{143}\u{147}\u{145}\u{152}\u{158}\u{15a}\u{15e}\u{160}\u{162}\u{164}\u{16e}\u{170}\u{178}\u{179}\u{17b}\u{17d}\u{490}",
);
const LOWER_ACCENTED: &str = concat!(
    "\u{df}\u{e0}-\u{f1}\u{103}\u{105}\u{101}\u{107}\u{10d}\u{10f}\u{111}\u{119}\u{11b}\u{113}\u{117}\u{11f}\u{123}\u{12f}\u{12b}\u{137}\u{13a}\u{13e}\u{142}\u{13c}",
    "\u{153}\u{155}\u{15b}\u{15f}\u{161}\u{165}\u{fc}\u{17a}\u{17c}\u{17e}\u{491}\u{fb01}\u{fb02}",
);
const UPPER_COMMON: &str = "\u{de}\u{391}-\u{3a9}\u{386}\u{388}\u{389}\u{38a}\u{38c}\u{38e}\u{38f}\u{3aa}\u{3ab}\u{401}-\u{42f}";
const LOWER_COMMON: &str = "\u{3b1}-\u{3c9}\u{3ac}\u{3ad}\u{3ae}\u{3af}\u{3b0}\u{430}-\u{45f}";
const BOX: &str = "\u{2502}\u{250c}\u{2510}\u{2518}\u{251c}\u{2524}\u{252c}\u{253c}\u{2550}-\u{256c}\u{2580}\u{2584}\u{2588}\u{258c}\u{2590}\u{2591}\u{2592}\u{2593}";
const UTF8_FIRST_OF_2: &str = concat!(
    "\u{102}\u{c2}\u{c4}\u{100}\u{c5}\u{c3}\u{c6}\u{106}\u{10c}\u{c7}\u{10e}\u{110}\u{c9}\u{11a}\u{ca}\u{cb}\u{116}\u{c8}\u{112}\u{118}\u{d0}\u{11e}\u{122}\u{cd}",
    "\u{ce}\u{cf}\u{130}\u{cc}\u{12a}\u{136}\u{139}\u{13b}\u{141}\u{143}\u{147}\u{145}\u{d1}\u{d3}\u{d4}\u{d6}\u{150}\u{d2}\u{14c}\u{d8}\u{d5}\u{158}\u{15a}\u{160}",
    "\u{15e}\u{162}\u{de}\u{da}\u{db}\u{dc}\u{170}\u{d9}\u{16a}\u{172}\u{16e}\u{dd}\u{179}\u{17d}\u{17b}\u{df}\u{d7}\u{392}\u{393}\u{394}\u{395}\u{396}\u{397}\u{398}",
    "\u{399}\u{39a}\u{39b}\u{39c}\u{39d}\u{39e}\u{39f}\u{3a0}\u{3a1}\u{3a3}\u{3a4}\u{3a5}\u{3a6}\u{3a7}\u{3a8}\u{3a9}\u{3aa}\u{3ab}\u{3ac}\u{3ad}\u{3ae}\u{3af}\u{412}\u{413}",
    "\u{414}\u{415}\u{416}\u{417}\u{418}\u{419}\u{41a}\u{41b}\u{41c}\u{41d}\u{41e}\u{41f}\u{420}\u{421}\u{422}\u{423}\u{424}\u{425}\u{426}\u{427}\u{428}\u{429}\u{42a}\u{42b}",
    "\u{42c}\u{42d}\u{42e}\u{42f}",
);
const UTF8_FIRST_OF_3: &str = concat!(
    "\u{e1}\u{103}\u{e2}\u{e4}\u{e0}\u{101}\u{105}\u{e5}\u{e3}\u{e6}\u{107}\u{10d}\u{e7}\u{10f}\u{e9}\u{11b}\u{ea}\u{eb}\u{117}\u{e8}\u{113}\u{119}\u{119}\u{123}",
    "\u{ed}\u{ee}\u{ef}\u{ec}\u{12b}\u{12f}\u{137}\u{13a}\u{13c}\u{155}\u{17a}\u{3b0}\u{3b1}\u{3b2}\u{3b3}\u{3b4}\u{3b5}\u{3b6}\u{3b7}\u{3b8}\u{3b9}\u{3ba}\u{3bb}\u{3bc}",
    "\u{3bd}\u{3be}\u{3bf}\u{430}\u{431}\u{432}\u{433}\u{434}\u{435}\u{436}\u{437}\u{438}\u{439}\u{43a}\u{43b}\u{43c}\u{43d}\u{43e}\u{43f}",
);
const UTF8_FIRST_OF_4: &str = "\u{111}\u{f0}\u{11f}\u{f3}\u{161}\u{3c0}\u{3c3}\u{440}\u{443}";
const UTF8_CONTINUATION: &str = concat!(
    "\u{80}-\u{bf}\u{20}\u{104}\u{c6}\u{13d}\u{141}\u{d8}\u{156}\u{15a}\u{160}\u{15e}\u{164}\u{178}\u{179}\u{17d}\u{17b}\u{152}\u{105}\u{e6}\u{192}\u{13e}\u{142}",
    "\u{f8}\u{157}\u{15b}\u{161}\u{15f}\u{165}\u{17a}\u{17e}\u{17c}\u{153}\u{2c6}\u{2c7}\u{2d8}\u{2db}\u{2dc}\u{2dd}\u{384}\u{385}\u{386}\u{388}\u{389}\u{38a}\u{38c}\u{38e}",
    "\u{38f}\u{401}\u{402}\u{403}\u{404}\u{405}\u{406}\u{407}\u{408}\u{409}\u{40a}\u{40b}\u{40c}\u{40e}\u{40f}\u{451}\u{452}\u{453}\u{454}\u{455}\u{456}\u{457}\u{458}\u{459}",
    "\u{45a}\u{45b}\u{45c}\u{45e}\u{45f}\u{490}\u{491}\u{2013}\u{2014}\u{2015}\u{2018}\u{2019}\u{201a}\u{201c}\u{201d}\u{201e}\u{2020}\u{2021}\u{2022}\u{2026}\u{2030}\u{2039}\u{203a}\u{20ac}",
    "\u{2116}\u{2122}",
);
const UTF8_CONTINUATION_STRICT: &str = concat!(
    "\u{80}-\u{bf}\u{104}\u{c6}\u{13d}\u{141}\u{d8}\u{156}\u{15a}\u{160}\u{15e}\u{164}\u{178}\u{179}\u{17d}\u{17b}\u{152}\u{105}\u{e6}\u{192}\u{13e}\u{142}\u{f8}",
    "\u{157}\u{15b}\u{161}\u{15f}\u{165}\u{17a}\u{17e}\u{17c}\u{153}\u{2c6}\u{2c7}\u{2d8}\u{2db}\u{2dc}\u{2dd}\u{384}\u{385}\u{386}\u{388}\u{389}\u{38a}\u{38c}\u{38e}\u{38f}",
    "\u{401}\u{402}\u{403}\u{404}\u{405}\u{406}\u{407}\u{408}\u{409}\u{40a}\u{40b}\u{40c}\u{40e}\u{40f}\u{451}\u{452}\u{453}\u{454}\u{455}\u{456}\u{457}\u{458}\u{459}\u{45a}",
    "\u{45b}\u{45c}\u{45e}\u{45f}\u{490}\u{491}\u{2020}\u{2021}\u{2030}\u{2039}\u{203a}\u{20ac}\u{2116}\u{2122}",
);

/// `[\s]` and `\w` as Python's `re` reads them in a `str` pattern.
const PY_SPACE: &str = r"[\s\x{1c}-\x{1f}]";
const PY_WORD: &str = r"[\p{L}\p{N}_]";

/// ftfy's `BADNESS_RE`: character sequences that are much likelier mojibake than intended text.
static BADNESS_RE: LazyLock<Option<SysRegex>> = LazyLock::new(|| {
    let alternatives = [
        format!("[{C1}]"),
        format!(
            "[{BAD}{LOWER_ACCENTED}{UPPER_ACCENTED}{BOX}{START_PUNCTUATION}{END_PUNCTUATION}{CURRENCY}{NUMERIC}{LAW}][{BAD}]"
        ),
        format!("[a-zA-Z][{LOWER_COMMON}{UPPER_COMMON}][{BAD}]"),
        format!(
            "[{BAD}][{LOWER_ACCENTED}{UPPER_ACCENTED}{BOX}{START_PUNCTUATION}{END_PUNCTUATION}{CURRENCY}{NUMERIC}{LAW}]"
        ),
        format!(
            "[{LOWER_ACCENTED}{LOWER_COMMON}{BOX}{END_PUNCTUATION}{CURRENCY}{NUMERIC}][{UPPER_ACCENTED}]"
        ),
        format!("[{BOX}{END_PUNCTUATION}{CURRENCY}{NUMERIC}][{LOWER_ACCENTED}]"),
        format!("[{LOWER_ACCENTED}{BOX}{END_PUNCTUATION}][{CURRENCY}]"),
        format!("{PY_SPACE}[{UPPER_ACCENTED}][{CURRENCY}]"),
        format!("[{UPPER_ACCENTED}{BOX}][{NUMERIC}{LAW}]"),
        format!(
            "[{LOWER_ACCENTED}{UPPER_ACCENTED}{BOX}{CURRENCY}{END_PUNCTUATION}][{START_PUNCTUATION}][{NUMERIC}]"
        ),
        format!(
            "[{LOWER_ACCENTED}{UPPER_ACCENTED}{CURRENCY}{NUMERIC}{BOX}{LAW}][{END_PUNCTUATION}][{START_PUNCTUATION}]"
        ),
        format!("[{CURRENCY}{NUMERIC}{BOX}][{START_PUNCTUATION}]"),
        format!("[a-z][{UPPER_ACCENTED}][{START_PUNCTUATION}{CURRENCY}]"),
        format!("[{BOX}][{KAOMOJI}]"),
        format!(
            "[{LOWER_ACCENTED}{UPPER_ACCENTED}{CURRENCY}{NUMERIC}{START_PUNCTUATION}{END_PUNCTUATION}{LAW}][{BOX}]"
        ),
        format!("[{BOX}][{END_PUNCTUATION}]"),
        format!(
            "[{LOWER_ACCENTED}{UPPER_ACCENTED}][{START_PUNCTUATION}{END_PUNCTUATION}]{PY_WORD}"
        ),
        // The ligature œ when not followed by an unaccented Latin letter.
        "[Œœ][^A-Za-z]".to_owned(),
        // Degree signs after capital letters.
        format!("[{UPPER_ACCENTED}]°"),
        // Common Windows-1252 2-character mojibake that isn't covered by the cases above.
        format!("[ÂÃÎÐ][€œŠš¢£Ÿž\u{a0}\u{ad}®©°·»{START_PUNCTUATION}{END_PUNCTUATION}–—´]"),
        "×[²³]".to_owned(),
        // Windows-1252 mojibake of Arabic words.
        format!(
            "[ØÙ][{COMMON}{CURRENCY}{BAD}{NUMERIC}{START_PUNCTUATION}ŸŠ®°µ»][ØÙ][{COMMON}{CURRENCY}{BAD}{NUMERIC}{START_PUNCTUATION}ŸŠ®°µ»]"
        ),
        // Windows-1252 mojibake starting 3-character sequences of some South Asian scripts.
        "à[²µ¹¼½¾]".to_owned(),
        // MacRoman mojibake that isn't covered by the cases above.
        "√[±∂†≠®™´≤≥¥µø]".to_owned(),
        "≈[°¢]".to_owned(),
        "‚Ä[ìîïòôúùû†°¢π]".to_owned(),
        "‚[âó][àä°ê]".to_owned(),
        // Windows-1251 mojibake of characters in the U+2000 range.
        "вЂ".to_owned(),
        // Windows-1251 mojibake of Latin-1 characters and/or the Cyrillic alphabet.
        format!("[ВГРС][{C1}{BAD}{START_PUNCTUATION}{END_PUNCTUATION}{CURRENCY}°µ][ВГРС]"),
        "ГўВЂВ.[A-Za-z ]".to_owned(),
        // Windows-1252 encodings of 'à' and 'á', as well as \xa0 itself.
        "Ã[\u{a0}¡]".to_owned(),
        format!("[a-z]{PY_SPACE}?[ÃÂ] "),
        "^[ÃÂ] ".to_owned(),
        // Â preceding a character as an encoding of exactly the same character.
        format!("[a-z.,?!{END_PUNCTUATION}]Â[ {START_PUNCTUATION}{END_PUNCTUATION}]"),
        // Windows-1253 mojibake of characters in the U+2000 range.
        "β€[™\u{a0}Ά\u{ad}®°]".to_owned(),
        // Windows-1253 mojibake of Latin-1 characters and/or the Greek alphabet.
        format!("[ΒΓΞΟ][{C1}{BAD}{START_PUNCTUATION}{END_PUNCTUATION}{CURRENCY}°][ΒΓΞΟ]"),
        // Windows-1257 mojibake of characters in the U+2000 range.
        "ā€".to_owned(),
    ];
    SysRegex::new(&alternatives.join("|")).ok()
});

/// ftfy's `UTF8_DETECTOR_RE`: runs of characters that look like UTF-8 read as a single-byte
/// encoding, not preceded by a strict continuation character.
static UTF8_DETECTOR_RE: LazyLock<Option<SysRegex>> = LazyLock::new(|| {
    SysRegex::new(&format!(
        "(?<![{UTF8_CONTINUATION_STRICT}])(?:[{UTF8_FIRST_OF_2}][{UTF8_CONTINUATION}]\
         |[{UTF8_FIRST_OF_3}][{UTF8_CONTINUATION}]{{2}}|[{UTF8_FIRST_OF_4}][{UTF8_CONTINUATION}]{{3}})+"
    ))
    .ok()
});

/// ftfy's `ANSI_RE` (terminal escapes); `\d` is any Unicode decimal digit, as in Python.
static ANSI_RE: LazyLock<Option<SysRegex>> =
    LazyLock::new(|| SysRegex::new(r"\x{1b}\[(?:\d|;)*[a-zA-Z]").ok());

/// The byte -> character tables of [`CHARMAPS`], decoded once.
static CHARMAP_CHARS: LazyLock<Vec<Vec<char>>> = LazyLock::new(|| {
    CHARMAPS
        .iter()
        .map(|(_, _, high)| high.chars().collect())
        .collect()
});

/// True when every pattern compiled (checked by the tests).
#[cfg(test)]
pub(super) fn patterns_compile() -> bool {
    BADNESS_RE.is_some()
        && UTF8_DETECTOR_RE.is_some()
        && ANSI_RE.is_some()
        && super::SPLIT_RE.is_some()
}

fn is_match(re: Option<&SysRegex>, text: &str) -> bool {
    re.is_some_and(|re| re.find_iter(text).next().is_some())
}

/// ftfy's `is_bad`: whether the text looks like it contains mojibake.
pub(super) fn is_bad(text: &str) -> bool {
    is_match(BADNESS_RE.as_ref(), text)
}

/// The Windows-1252 character for byte `0x80..=0x9f` (bytes it leaves undefined map to the
/// same-numbered C1 control, as in ftfy's sloppy codec and Python's `html` module).
pub(super) fn windows_1252_c1(byte: u32) -> char {
    let index = byte.wrapping_sub(0x80) as usize;
    CHARMAP_CHARS
        .get(1)
        .and_then(|chars| chars.get(index))
        .copied()
        .unwrap_or('\u{fffd}')
}

/// `ftfy.fix_text`: fixes each line (at most [`MAX_DECODE_LENGTH`] characters at a time). HTML
/// entities are decoded until a segment containing `<` is seen.
pub(super) fn fix_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut unescape_html = true;
    let mut rest = text;
    while !rest.is_empty() {
        let mut end = rest.find('\n').map_or(rest.len(), |i| i + 1);
        if let Some((at, _)) = rest[..end].char_indices().nth(MAX_DECODE_LENGTH) {
            end = at;
        }
        let segment = &rest[..end];
        if segment.contains('<') {
            unescape_html = false;
        }
        out.push_str(&fix_segment(segment, unescape_html));
        rest = &rest[end..];
    }
    out
}

/// `ftfy.fix_and_explain` without the explanation: applies every fixer until nothing changes.
fn fix_segment(segment: &str, unescape_html: bool) -> String {
    let mut text = segment.to_owned();
    for _ in 0..MAX_PASSES {
        let mut next = if unescape_html {
            html::ftfy_unescape(&text).into_owned()
        } else {
            text.clone()
        };
        next = fix_encoding(&next);
        next = fix_c1_controls(&next).into_owned();
        next = next.chars().flat_map(latin_ligature).collect();
        next = next.chars().flat_map(character_width).collect();
        next = next.chars().map(uncurl_quote).collect();
        next = fix_line_breaks(&next);
        next = replace_matches(ANSI_RE.as_ref(), &next, |_| Cow::Borrowed("")).into_owned();
        next.retain(|c| !is_removed_control(c));
        next = next.nfc().collect();
        if next == text {
            break;
        }
        text = next;
    }
    text
}

/// `fix_c1_controls`: U+0080..=U+009F read as Windows-1252.
fn fix_c1_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_c1) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.chars()
            .map(|c| {
                if is_c1(c) {
                    windows_1252_c1(c as u32)
                } else {
                    c
                }
            })
            .collect(),
    )
}

fn is_c1(c: char) -> bool {
    ('\u{80}'..='\u{9f}').contains(&c)
}

/// `fix_latin_ligatures`: Latin ligatures and legacy digraphs spelled out.
fn latin_ligature(c: char) -> CharOrStr {
    let spelled = match c {
        'Ĳ' => "IJ",
        'ĳ' => "ij",
        'ŉ' => "ʼn",
        'Ǳ' => "DZ",
        'ǲ' => "Dz",
        'ǳ' => "dz",
        'Ǆ' => "DŽ",
        'ǅ' => "Dž",
        'ǆ' => "dž",
        'Ǉ' => "LJ",
        'ǈ' => "Lj",
        'ǉ' => "lj",
        'Ǌ' => "NJ",
        'ǋ' => "Nj",
        'ǌ' => "nj",
        'ﬀ' => "ff",
        'ﬁ' => "fi",
        'ﬂ' => "fl",
        'ﬃ' => "ffi",
        'ﬄ' => "ffl",
        'ﬅ' => "ſt",
        'ﬆ' => "st",
        _ => return CharOrStr::Char(Some(c)),
    };
    CharOrStr::Str(spelled.chars())
}

/// `fix_character_width`: U+3000 to a space, halfwidth/fullwidth forms U+FF01..=U+FFEF to
/// their NFKC form.
fn character_width(c: char) -> CharOrStr {
    match c {
        '\u{3000}' => CharOrStr::Char(Some(' ')),
        '\u{ff01}'..='\u{ffef}' => {
            CharOrStr::Owned(std::iter::once(c).nfkc().collect::<Vec<_>>().into_iter())
        }
        _ => CharOrStr::Char(Some(c)),
    }
}

/// One character's replacement in a character-by-character fix.
enum CharOrStr {
    Char(Option<char>),
    Str(std::str::Chars<'static>),
    Owned(std::vec::IntoIter<char>),
}

impl Iterator for CharOrStr {
    type Item = char;

    fn next(&mut self) -> Option<char> {
        match self {
            CharOrStr::Char(c) => c.take(),
            CharOrStr::Str(chars) => chars.next(),
            CharOrStr::Owned(chars) => chars.next(),
        }
    }
}

/// `uncurl_quotes`: curly quotes to straight ones.
fn uncurl_quote(c: char) -> char {
    match c {
        '\u{201c}'..='\u{201f}' => '"',
        '\u{2bc}' | '\u{2018}'..='\u{201b}' => '\'',
        _ => c,
    }
}

/// `fix_line_breaks`: CRLF, CR, U+2028, U+2029 and U+0085 to `\n`.
fn fix_line_breaks(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                chars.next_if_eq(&'\n');
                out.push('\n');
            }
            '\u{2028}' | '\u{2029}' | '\u{85}' => out.push('\n'),
            _ => out.push(c),
        }
    }
    out
}

/// `remove_control_chars`: the characters ftfy deletes.
fn is_removed_control(c: char) -> bool {
    matches!(
        c,
        '\u{0}'..='\u{8}'
            | '\u{b}'
            | '\u{e}'..='\u{1f}'
            | '\u{7f}'
            | '\u{206a}'..='\u{206f}'
            | '\u{feff}'
            | '\u{fff9}'..='\u{fffc}'
    )
}

/// `ftfy.fix_encoding`: undoes mojibake, one step at a time, until nothing changes.
pub(super) fn fix_encoding(text: &str) -> String {
    let mut text = text.to_owned();
    for _ in 0..MAX_PASSES {
        match fix_encoding_step(&text) {
            Some(fixed) if fixed != text => text = fixed,
            _ => break,
        }
    }
    text
}

/// `_fix_encoding_one_step_and_explain`; `None` when the text is left as it is.
fn fix_encoding_step(text: &str) -> Option<String> {
    if text.is_ascii() || !is_bad(text) {
        return None;
    }
    let mut latin1_possible = false;
    for (index, &(name, sloppy, _)) in CHARMAPS.iter().enumerate() {
        let Some(mut bytes) = encode_single_byte(text, index, sloppy) else {
            continue;
        };
        latin1_possible |= index == 0;
        if name != "macroman" && find_altered_utf8(&bytes, 0).is_some() {
            bytes = restore_byte_a0(&bytes);
        }
        if sloppy {
            bytes = replace_lossy_sequences(&bytes);
        }
        let decoded = if bytes.contains(&0xed) || bytes.contains(&0xc0) {
            decode_utf8_variants(&bytes)
        } else {
            String::from_utf8(bytes).ok()
        };
        if decoded.is_some() {
            return decoded;
        }
    }
    if is_match(UTF8_DETECTOR_RE.as_ref(), text) {
        let fixed = decode_inconsistent_utf8(text);
        if fixed != text {
            return Some(fixed);
        }
    }
    // ftfy checks for "windows-1252" among the possible encodings, which only ever lists
    // "sloppy-windows-1252", so Latin-1 text always gets this strict re-decoding.
    if latin1_possible {
        let strict: Option<String> = text
            .chars()
            .map(|c| match c {
                '\u{81}' | '\u{8d}' | '\u{8f}' | '\u{90}' | '\u{9d}' => None,
                c if is_c1(c) => Some(windows_1252_c1(c as u32)),
                c => Some(c),
            })
            .collect();
        if let Some(fixed) = strict.filter(|fixed| fixed != text) {
            return Some(fixed);
        }
    }
    if text.chars().any(is_c1) {
        return Some(fix_c1_controls(text).into_owned());
    }
    None
}

/// `text.encode(CHARMAPS[index])`, or `None` if some character is not in that encoding.
/// Sloppy codecs write U+FFFD as byte 0x1A (and cannot write U+001A itself).
fn encode_single_byte(text: &str, index: usize, sloppy: bool) -> Option<Vec<u8>> {
    let high = CHARMAP_CHARS.get(index)?;
    text.chars()
        .map(|c| match c {
            '\u{1a}' => (!sloppy).then_some(0x1a),
            '\u{fffd}' if sloppy => Some(0x1a),
            c if c.is_ascii() => Some(c as u8),
            c => high
                .iter()
                .position(|&h| h == c)
                .and_then(|i| u8::try_from(0x80 + i).ok()),
        })
        .collect()
}

/// `decode_inconsistent_utf8`: fixes mojibake-looking runs inside otherwise fine text.
fn decode_inconsistent_utf8(text: &str) -> String {
    let total = text.chars().count();
    replace_matches(UTF8_DETECTOR_RE.as_ref(), text, |run| {
        if run.chars().count() < total && is_bad(run) {
            Cow::Owned(fix_encoding(run))
        } else {
            Cow::Borrowed(run)
        }
    })
    .into_owned()
}

/// A fixed-length byte pattern: one inclusive range list per byte.
type BytePattern = &'static [&'static [(u8, u8)]];

fn matches_at(bytes: &[u8], at: usize, pattern: BytePattern) -> bool {
    bytes.len() >= at + pattern.len()
        && pattern
            .iter()
            .zip(&bytes[at..])
            .all(|(ranges, b)| ranges.iter().any(|&(lo, hi)| (lo..=hi).contains(b)))
}

/// The first alternative of `alternatives` matching at `at`, as its length.
fn match_any(bytes: &[u8], at: usize, alternatives: &[BytePattern]) -> Option<usize> {
    alternatives
        .iter()
        .find(|p| matches_at(bytes, at, p))
        .map(|p| p.len())
}

const CONT: &[(u8, u8)] = &[(0x80, 0xbf)];
const SP: &[(u8, u8)] = &[(b' ', b' ')];
const CONT_NOT_85_A0: &[(u8, u8)] = &[(0x80, 0x84), (0x86, 0x9f), (0xa1, 0xbf)];

/// ftfy's `ALTERED_UTF8_RE`: UTF-8 sequences in which a 0xA0 byte became a space.
const ALTERED_UTF8: [BytePattern; 6] = [
    &[
        &[
            (0xc2, 0xc3),
            (0xc5, 0xc5),
            (0xce, 0xce),
            (0xd0, 0xd0),
            (0xd9, 0xd9),
        ],
        SP,
    ],
    &[&[(0xe2, 0xe3)], SP, CONT_NOT_85_A0],
    &[&[(0xe0, 0xe3)], CONT_NOT_85_A0, SP],
    &[&[(0xf0, 0xf0)], SP, CONT, CONT],
    &[&[(0xf0, 0xf0)], CONT, SP, CONT],
    &[&[(0xf0, 0xf0)], CONT, CONT, SP],
];

/// The first match of [`ALTERED_UTF8`] at or after `from`, as (start, length).
fn find_altered_utf8(bytes: &[u8], from: usize) -> Option<(usize, usize)> {
    (from..bytes.len()).find_map(|at| match_any(bytes, at, &ALTERED_UTF8).map(|len| (at, len)))
}

/// `restore_byte_a0`: puts back the 0xA0 bytes that became spaces inside UTF-8 sequences.
fn restore_byte_a0(bytes: &[u8]) -> Vec<u8> {
    // A_GRAVE_WORD_RE: b"\xc3 (?! |quele|quela|quilo|s )" becomes b"\xc3\xa0 ".
    let mut with_a_grave = Vec::with_capacity(bytes.len() + 8);
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] == 0xc3 && bytes.get(at + 1) == Some(&b' ') {
            let after = &bytes[at + 2..];
            let excluded = [&b" "[..], b"quele", b"quela", b"quilo", b"s "];
            if !excluded.iter().any(|word| after.starts_with(word)) {
                with_a_grave.extend_from_slice(b"\xc3\xa0 ");
                at += 2;
                continue;
            }
        }
        with_a_grave.push(bytes[at]);
        at += 1;
    }
    let mut out = with_a_grave;
    let mut from = 0;
    while let Some((start, len)) = find_altered_utf8(&out, from) {
        for b in &mut out[start..start + len] {
            if *b == b' ' {
                *b = 0xa0;
            }
        }
        from = start + len;
    }
    out
}

const SUB: &[(u8, u8)] = &[(0x1a, 0x1a)];
const SUB_Q: &[(u8, u8)] = &[(0x1a, 0x1a), (b'?', b'?')];
const SUB_CONT: &[(u8, u8)] = &[(0x1a, 0x1a), (0x80, 0xbf)];
const SUB_Q_CONT: &[(u8, u8)] = &[(0x1a, 0x1a), (b'?', b'?'), (0x80, 0xbf)];
const ED: &[(u8, u8)] = &[(0xed, 0xed)];
const LEAD3: &[(u8, u8)] = &[(0xe0, 0xef)];
const LEAD4: &[(u8, u8)] = &[(0xf0, 0xf4)];

/// ftfy's `LOSSY_UTF8_RE`: UTF-8 sequences in which a sloppy codec wrote 0x1A (or `?`) for a
/// lost byte.
const LOSSY_UTF8: [BytePattern; 10] = [
    &[&[(0xc2, 0xdf)], SUB],
    &[&[(0xc2, 0xc3)], &[(b'?', b'?')]],
    &[ED, &[(0xa0, 0xaf)], SUB_Q, ED, &[(0xb0, 0xbf)], SUB_Q_CONT],
    &[ED, &[(0xa0, 0xaf)], SUB_Q_CONT, ED, &[(0xb0, 0xbf)], SUB_Q],
    &[LEAD3, SUB_Q, SUB_CONT],
    &[LEAD3, SUB_CONT, SUB_Q],
    &[LEAD4, SUB_Q, SUB_CONT, SUB_CONT],
    &[LEAD4, SUB_CONT, SUB_Q, SUB_CONT],
    &[LEAD4, SUB_CONT, SUB_CONT, SUB_Q],
    &[SUB],
];

/// `replace_lossy_sequences`: each [`LOSSY_UTF8`] match becomes the UTF-8 of U+FFFD.
fn replace_lossy_sequences(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        if let Some(len) = match_any(bytes, at, &LOSSY_UTF8) {
            out.extend_from_slice("\u{fffd}".as_bytes());
            at += len;
        } else {
            out.push(bytes[at]);
            at += 1;
        }
    }
    out
}

/// ftfy's `utf-8-variants` codec (strict): UTF-8, plus CESU-8 surrogate pairs and the Java
/// null `C0 80`.
fn decode_utf8_variants(bytes: &[u8]) -> Option<String> {
    let mut out = String::with_capacity(bytes.len());
    let mut at = 0;
    while let Some(&lead) = bytes.get(at) {
        let next = bytes.get(at + 1).copied();
        if lead == 0xc0 {
            if next != Some(0x80) {
                return None;
            }
            out.push('\0');
            at += 2;
            continue;
        }
        if lead == 0xed && next.is_none_or(|b| (0xa0..=0xbf).contains(&b)) {
            const CESU8: BytePattern = &[ED, &[(0xa0, 0xaf)], CONT, ED, &[(0xb0, 0xbf)], CONT];
            if !matches_at(bytes, at, CESU8) {
                return None;
            }
            let b = &bytes[at..at + 6];
            let code = ((u32::from(b[1]) & 0x0f) << 16)
                + ((u32::from(b[2]) & 0x3f) << 10)
                + ((u32::from(b[4]) & 0x0f) << 6)
                + (u32::from(b[5]) & 0x3f)
                + 0x10000;
            out.push(char::from_u32(code)?);
            at += 6;
            continue;
        }
        let width = match lead {
            0x00..=0x7f => 1,
            0xc2..=0xdf => 2,
            0xe0..=0xef => 3,
            0xf0..=0xf4 => 4,
            _ => return None,
        };
        let chunk = bytes.get(at..at + width)?;
        out.push_str(std::str::from_utf8(chunk).ok()?);
        at += width;
    }
    Some(out)
}
