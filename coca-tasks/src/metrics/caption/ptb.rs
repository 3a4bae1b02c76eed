//! PTB tokenisation as `pycocoevalcap/tokenizer/ptbtokenizer.py` performs it.
//!
//! Upstream joins all captions with `\n` (after replacing `\n` inside captions by spaces),
//! runs Stanford CoreNLP 3.4.1's `PTBTokenizer -preserveLines -lowerCase` on that text, and
//! drops the tokens listed in [`PUNCTUATIONS`] from each output line. This module re-implements
//! the `PTBLexer` rules of that release (JFlex longest match, the earlier rule on ties, trailing
//! context counted in the match length): words and contractions (`do n't`, `it 's`, `gon na`,
//! `can not`), hyphenated and slashed compounds, numbers, fractions, dates and phone numbers,
//! abbreviations and acronyms (`mr.`, `u.s.`, with the extra sentence-final `.`), quotes (to
//! `` ` `` / `'` / ``` `` ``` / `''`), brackets (to `-lrb-` etc., which survive the punctuation
//! filter, as upstream), dashes, ellipses, currency, URLs, e-mail addresses, `@names`, `#tags`,
//! SGML tags and smileys. Characters no rule accepts are deleted, as `PTBTokenizer` does; this
//! includes everything outside the Basic Multilingual Plane (e.g. emoji).
//!
//! Line breaks are the Java lexer's: besides the `\n` between captions, `\r`, `\r\n`, U+2028,
//! U+2029, `\x0b` and `\x0c` end an output line (U+0085 does not: it is an ellipsis), unless a
//! longer token starts there (URL and e-mail patterns admit some of them, as they admit U+3000
//! or U+FEFF: `a\x0bwww.x.com` is one token). A caption holding a line break gives two lines,
//! and as upstream zips captions with lines, every later caption of the same call then gets the
//! line of the caption before it; [`ptb_tokenize_all`] returns exactly that pairing.
//!
//! Checked exactly against pycocoevalcap 1.2 output: `tests/fixtures/caption-metrics/`
//! `ptb-cases.json` (300 hand-picked captions, line-break cases) and `ptb-random.json` (1500
//! random captions of tricky pieces and separators, made by `make_ptb_random.py` there).

/// Tokens that `pycocoevalcap` removes after tokenisation (compared after lower-casing, so the
/// bracket tokens, which come out as `-lrb-` etc., are *not* removed).
pub const PUNCTUATIONS: [&str; 17] = [
    "''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!", ",", ":", "-", "--",
    "...", ";",
];

/// Tokenises one caption like `pycocoevalcap` (lower-cased, punctuation tokens removed,
/// tokens joined by single spaces).
pub fn ptb_tokenize(caption: &str) -> String {
    ptb_tokenize_all(&[caption]).pop().unwrap_or_default()
}

/// Tokenises captions like one `PTBTokenizer.tokenize` call of `pycocoevalcap`: the captions
/// form the lines of one text, so a caption's first word can affect how the previous caption's
/// last token is split (e.g. `U.S.` before a line starting with `The`).
///
/// Caption `k` gets output line `k`, as upstream's `zip(image_id, lines)` gives it; a caption
/// with a line break of its own (see the module docs) shifts the later ones.
pub fn ptb_tokenize_all<S: AsRef<str>>(captions: &[S]) -> Vec<String> {
    ptb_token_lines(captions)
        .into_iter()
        .map(|toks| drop_punctuation(&toks.join(" ")))
        .collect()
}

/// Upstream's `' '.join(w for w in line.rstrip().split(' ') if w not in PUNCTUATIONS)`.
fn drop_punctuation(line: &str) -> String {
    line.trim_end_matches(super::super::is_py_space)
        .split(' ')
        .filter(|w| !PUNCTUATIONS.contains(w))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The raw lower-cased `PTBTokenizer` tokens of output lines `0..captions.len()` of one call,
/// before punctuation removal: line `k` belongs to caption `k` unless an earlier caption held a
/// line break (then, as upstream, it is the line after one of that caption's breaks and the
/// lines beyond the last caption are dropped). Missing lines are empty.
pub fn ptb_token_lines<S: AsRef<str>>(captions: &[S]) -> Vec<Vec<String>> {
    let text = captions
        .iter()
        .map(|c| c.as_ref().replace('\n', " "))
        .collect::<Vec<_>>()
        .join("\n");
    let mut lines = Lexer::new(&text).run();
    lines.resize(captions.len(), Vec::new());
    lines
}

// ---------------------------------------------------------------------------------------------
// Character classes (JFlex / Java semantics, BMP only).

fn bmp(c: char) -> bool {
    (c as u32) <= 0xFFFF
}

fn is_space(c: char) -> bool {
    matches!(
        c,
        ' ' | '\t' | '\u{A0}' | '\u{2000}'..='\u{200A}' | '\u{3000}'
    )
}

/// `{NEWLINE}` (`\r|\r?\n|\u2028|\u2029|\u000B|\u000C|\u0085`) character.
fn is_newline(c: char) -> bool {
    matches!(
        c,
        '\n' | '\r' | '\u{2028}' | '\u{2029}' | '\u{0B}' | '\u{0C}' | '\u{85}'
    )
}

fn is_spacenl(c: char) -> bool {
    is_space(c) || is_newline(c)
}

fn is_digit(c: char) -> bool {
    bmp(c) && super::super::is_decimal_digit(c)
}

/// `\p{Alpha}`: ASCII letters in the JFlex version behind CoreNLP 3.4.1.
fn is_alpha(c: char) -> bool {
    c.is_ascii_alphabetic()
}

/// `[\p{Alpha}\p{Digit}]` (ASCII, see [`is_alpha`]).
fn is_alnum(c: char) -> bool {
    c.is_ascii_alphanumeric()
}

/// `[:letter:]` (Java `Character.isLetter`, BMP only).
fn is_jletter(c: char) -> bool {
    bmp(c) && c.is_alphabetic()
}

/// `[:letter:]|[:digit:]`.
fn is_letter_digit(c: char) -> bool {
    is_jletter(c) || is_digit(c)
}

/// `{LETTER}`: letters plus the combining marks and odd letters the lexer lists.
fn is_letter(c: char) -> bool {
    if !bmp(c) {
        return false;
    }
    if c.is_alphabetic() {
        return true;
    }
    let u = c as u32;
    const EXTRA: &[(u32, u32)] = &[
        (0x00AD, 0x00AD),
        (0x0237, 0x024F),
        (0x02C2, 0x02C5),
        (0x02D2, 0x02DF),
        (0x02E5, 0x02FF),
        (0x0300, 0x036F),
        (0x0370, 0x037D),
        (0x0384, 0x0385),
        (0x03CF, 0x03CF),
        (0x03F6, 0x03F6),
        (0x03FC, 0x03FF),
        (0x0483, 0x0487),
        (0x04CF, 0x04CF),
        (0x04F6, 0x04FF),
        (0x0510, 0x0525),
        (0x055A, 0x055F),
        (0x0591, 0x05BD),
        (0x05BF, 0x05BF),
        (0x05C1, 0x05C2),
        (0x05C4, 0x05C5),
        (0x05C7, 0x05C7),
        (0x0615, 0x061A),
        (0x063B, 0x063F),
        (0x064B, 0x065E),
        (0x0670, 0x0670),
        (0x06D6, 0x06EF),
        (0x06FA, 0x06FF),
        (0x070F, 0x070F),
        (0x0711, 0x0711),
        (0x0730, 0x074F),
        (0x0750, 0x077F),
        (0x07A6, 0x07B1),
        (0x07CA, 0x07F5),
        (0x07FA, 0x07FA),
        (0x0900, 0x0903),
        (0x093C, 0x093C),
        (0x093E, 0x094E),
        (0x0951, 0x0955),
        (0x0962, 0x0963),
        (0x0981, 0x0983),
        (0x09BC, 0x09C4),
        (0x09C7, 0x09C8),
        (0x09CB, 0x09CD),
        (0x09D7, 0x09D7),
        (0x09E2, 0x09E3),
        (0x0A01, 0x0A03),
        (0x0A3C, 0x0A3C),
        (0x0A3E, 0x0A4F),
        (0x0A81, 0x0A83),
        (0x0ABC, 0x0ACF),
        (0x0B82, 0x0B82),
        (0x0BBE, 0x0BC2),
        (0x0BC6, 0x0BC8),
        (0x0BCA, 0x0BCD),
        (0x0C01, 0x0C03),
        (0x0C3E, 0x0C56),
        (0x0D3E, 0x0D44),
        (0x0D46, 0x0D48),
        (0x0E30, 0x0E3A),
        (0x0E47, 0x0E4E),
        (0x0EB1, 0x0EBC),
        (0x0EC8, 0x0ECD),
    ];
    EXTRA.iter().any(|&(a, b)| (a..=b).contains(&u))
}

/// `{APOS}`: straight apostrophe, CP1252 and Unicode right single quote.
fn is_apos(c: char) -> bool {
    matches!(c, '\'' | '\u{92}' | '\u{2019}')
}

/// `{APOSETCETERA}`.
fn is_apos_etc(c: char) -> bool {
    is_apos(c) || matches!(c, '`' | '\u{91}' | '\u{2018}' | '\u{201B}')
}

/// `{HYPHEN}`.
fn is_hyphen(c: char) -> bool {
    matches!(c, '-' | '_' | '\u{058A}' | '\u{2010}' | '\u{2011}')
}

fn is_quote_char(c: char) -> bool {
    matches!(c, '`' | '\u{2018}'..='\u{201F}' | '\u{91}'..='\u{94}'
        | '\u{2039}' | '\u{203A}' | '\u{AB}' | '\u{BB}')
}

fn is_misc_symbol(c: char) -> bool {
    let u = c as u32;
    matches!(
        c,
        '+' | '%'
            | '&'
            | '~'
            | '^'
            | '|'
            | '\\'
            | '\u{A6}'
            | '\u{A7}'
            | '\u{A8}'
            | '\u{A9}'
            | '\u{AC}'
            | '\u{AE}'
            | '\u{AF}'
            | '\u{B0}'
            ..='\u{BA}'
                | '\u{D7}'
                | '\u{F7}'
                | '\u{387}'
                | '\u{5BE}'
                | '\u{5C0}'
                | '\u{5C3}'
                | '\u{5C6}'
                | '\u{5F3}'
                | '\u{5F4}'
    ) || [
        (0x0600, 0x0603),
        (0x0606, 0x060A),
        (0x060C, 0x060C),
        (0x0614, 0x0614),
        (0x061B, 0x061B),
        (0x061E, 0x061E),
        (0x066A, 0x066A),
        (0x066D, 0x066D),
        (0x0703, 0x070D),
        (0x07F6, 0x07F8),
        (0x0964, 0x0965),
        (0x0E4F, 0x0E4F),
        (0x1FBD, 0x1FBD),
        (0x2016, 0x2017),
        (0x2020, 0x2025),
        (0x2030, 0x2038),
        (0x203B, 0x203C),
        (0x203E, 0x2044),
        (0x207A, 0x207F),
        (0x208A, 0x208E),
        (0x2100, 0x214F),
        (0x2190, 0x21FF),
        (0x2200, 0x2BFF),
        (0x3001, 0x3006),
        (0x3008, 0x3020),
        (0x30FB, 0x30FB),
        (0xFF01, 0xFF0F),
        (0xFF1A, 0xFF20),
        (0xFF3B, 0xFF40),
        (0xFF5B, 0xFF65),
    ]
    .iter()
    .any(|&(a, b)| (a..=b).contains(&u))
}

/// Drops soft hyphens; a token made only of them becomes `-` (as `LexerUtils` does).
fn remove_soft_hyphens(s: &str) -> String {
    let out: String = s.chars().filter(|&c| c != '\u{AD}').collect();
    if out.is_empty() { "-".to_string() } else { out }
}

/// `latexQuotes` normalisation of a quote-bearing token.
fn latex_quotes(tok: &str, probably_left: bool) -> String {
    let single = if probably_left { "`" } else { "'" };
    let double = if probably_left { "``" } else { "''" };
    let tok = tok.replace("&apos;", single).replace("&quot;", double);
    let mut out = String::with_capacity(tok.len());
    for c in tok.chars() {
        match c {
            '\'' => out.push_str(single),
            '"' => out.push_str(double),
            '\u{91}' | '\u{2018}' | '\u{201B}' | '\u{2039}' => out.push('`'),
            '\u{92}' | '\u{2019}' | '\u{203A}' => out.push('\''),
            '\u{93}' | '\u{201C}' | '\u{AB}' => out.push_str("``"),
            '\u{94}' | '\u{201D}' | '\u{BB}' => out.push_str("''"),
            _ => out.push(c),
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Abbreviation tables (see `Lexer::entry` for the `[x]` notation).

const ABBREV1: &[&str] = &[
    // months, days
    "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "mon",
    "tue", "tues", "wed", "thu", "thurs", "fri", // states
    "ala", "ariz", "[A]z", "[A]rk", "calif", "colo", "conn", "ct", "dak", "[D]el", "fla", "ga",
    "[I]ll", "ind", "kan", "kans", "ky", "[L]a", "[M]ass", "md", "mich", "minn", "[M]iss", "mo",
    "mont", "neb", "nev", "okla", "[O]re", "[P]a", "penn", "tenn", "[T]ex", "va", "vt", "[W]ash",
    "wis", "wisc", "wyo", // companies
    "inc", "co", "cos", "corp", "pt[y]", "pt[e]", "pt[y]s", "pt[e]s", "ppt[y]", "ppt[e]",
    "ppt[y]s", "ppt[e]s", "ltd", "plc", "rt", "bancorp", "bhd", "assn", "univ", "intl", "sys",
    // numbers, titles
    "tel", "est", "ext", "sq", "jr", "bros", "ed.d", "ph.d", "esq", "etc", "al", "seq", "bldg",
    "sr", "blvd", "rd",
];

const ABBREV4: &[&str] = &[
    "mr", "mrs", "ms", "[M]iss", "dr", "drs", "prof", "profs", "sen", "sens", "rep", "reps",
    "atty", "attys", "lt", "col", "gen", "messrs", "gov", "govs", "adm", "rev", "maj", "sgt",
    "cpl", "pvt", "capt", "st", "ste", "ave", "pres", "lieut", "rt", "hon", "brig", "comdr",
    "cmdr", "pfc", "spc", "supt", "supts", "det", "mt", "ft", "adj", "adv", "asst", "assoc", "ens",
    "insp", "mlle", "mme", "msgr", "sfc", "vs", "alex", "wm", "jos", "cie", "a.k.a", "cf", "treas",
    "ph", "invt", "elec", "natl", "m[f]g", "m[t]g", "dept",
];

const ABBREV3: &[&str] = &[
    "ca", "fig", "figs", "prop", "no", "nos", "art", "bldg", "pp", "op",
];

/// Capitalised words after which an acronym's final period also ends the sentence.
const SENTENCE_STARTS: &[&str] = &[
    "About",
    "According",
    "Additionally",
    "After",
    "An",
    "A",
    "As",
    "At",
    "But",
    "Earlier",
    "He",
    "Her",
    "Here",
    "However",
    "If",
    "In",
    "It",
    "Last",
    "Many",
    "More",
    "Mr.",
    "Ms.",
    "Now",
    "Once",
    "One",
    "Other",
    "Our",
    "She",
    "Since",
    "So",
    "Some",
    "Such",
    "That",
    "The",
    "Their",
    "Then",
    "There",
    "These",
    "They",
    "This",
    "We",
    "When",
    "While",
    "What",
    "Yet",
    "You",
];

const FILENAME_EXT: &[&str] = &[
    "bat", "bmp", "bz2", "c", "class", "cgi", "cpp", "dll", "doc", "docx", "exe", "gif", "gz", "h",
    "htm", "html", "jar", "java", "jpeg", "jpg", "mov", "mp3", "pdf", "php", "pl", "png", "ppt",
    "ps", "py", "sql", "tar", "txt", "wav", "x", "xml", "zip",
];

// ---------------------------------------------------------------------------------------------
// The lexer.

/// What a rule emits.
enum Emit {
    /// The consumed text, as is.
    Same,
    /// A normalised token.
    Text(String),
}

struct Cand {
    /// Match length including trailing context (decides the longest match).
    len: usize,
    /// Characters consumed.
    consume: usize,
    emit: Emit,
}

fn cand(len: usize) -> Option<Cand> {
    (len > 0).then_some(Cand {
        len,
        consume: len,
        emit: Emit::Same,
    })
}

struct Lexer {
    c: Vec<char>,
}

impl Lexer {
    fn new(text: &str) -> Self {
        Lexer {
            c: text.chars().collect(),
        }
    }

    fn at(&self, i: usize) -> Option<char> {
        self.c.get(i).copied()
    }

    fn is(&self, i: usize, f: impl Fn(char) -> bool) -> bool {
        self.at(i).is_some_and(f)
    }

    fn text(&self, i: usize, len: usize) -> String {
        self.c[i..i + len].iter().collect()
    }

    /// Caseless literal match; returns its length.
    fn lit(&self, i: usize, s: &str) -> Option<usize> {
        let mut j = i;
        for l in s.chars() {
            let c = self.at(j)?;
            if !caseless_eq(c, l) {
                return None;
            }
            j += 1;
        }
        Some(j - i)
    }

    /// A table entry: caseless, except characters written `[x]`, which must match exactly
    /// (character classes are not caseless in JFlex).
    fn entry(&self, i: usize, e: &str) -> Option<usize> {
        let mut j = i;
        let mut chars = e.chars();
        while let Some(l) = chars.next() {
            let c = self.at(j)?;
            if l == '[' {
                let exact = chars.next()?;
                chars.next(); // ']'
                if c != exact {
                    return None;
                }
            } else if !caseless_eq(c, l) {
                return None;
            }
            j += 1;
        }
        Some(j - i)
    }

    /// Longest entry of a table followed by a period.
    fn table_dot(&self, i: usize, table: &[&str]) -> Option<usize> {
        table
            .iter()
            .filter_map(|e| self.entry(i, e))
            .filter(|&l| self.at(i + l) == Some('.'))
            .max()
            .map(|l| l + 1)
    }

    fn run(&self) -> Vec<Vec<String>> {
        let mut lines: Vec<Vec<String>> = vec![Vec::new()];
        let mut i = 0;
        while i < self.c.len() {
            let ch = self.c[i];
            // What the lexer skips or breaks lines at: a `{NEWLINE}` (`-preserveLines` ends the
            // output line there), a run of `{SPACES}`, an ignored invisible character. Their rules
            // come late, so a longer token starting here wins: the URL and e-mail classes do not
            // exclude e.g. `\x0b`, U+2028, U+3000 or U+FEFF. U+0085 goes to the ellipsis rule.
            let skip = if is_newline(ch) && ch != '\u{85}' {
                let nl = if ch == '\r' && self.at(i + 1) == Some('\n') {
                    2
                } else {
                    1
                };
                Some((nl, true))
            } else if is_space(ch) {
                Some((self.run_of(i, is_space), false))
            } else if matches!(
                ch,
                '\0' | '\u{200B}' | '\u{200E}' | '\u{200F}' | '\u{FEFF}' | '\u{7F}'
            ) {
                Some((1, false))
            } else {
                None
            };
            if let Some((len, newline)) = skip {
                match self.best(i).filter(|c| c.len > len) {
                    Some(c) => self.push_token(&mut lines, i, c, &mut i),
                    None => {
                        if newline {
                            lines.push(Vec::new());
                        }
                        i += len;
                    }
                }
                continue;
            }
            match self.best(i) {
                Some(c) => self.push_token(&mut lines, i, c, &mut i),
                None => i += 1, // untokenizable: deleted
            }
        }
        lines
    }

    /// Appends the (lower-cased) token of match `c` at `at` to the last line; moves `next` past it.
    fn push_token(&self, lines: &mut [Vec<String>], at: usize, c: Cand, next: &mut usize) {
        let tok = match c.emit {
            Emit::Same => self.text(at, c.consume),
            Emit::Text(t) => t,
        };
        if let Some(line) = lines.last_mut() {
            line.push(tok.to_lowercase());
        }
        *next = at + c.consume.max(1);
    }

    /// JFlex semantics: the longest match wins, the earlier rule on ties.
    fn best(&self, i: usize) -> Option<Cand> {
        let rules: &[&dyn Fn(usize) -> Option<Cand>] = &[
            &|i| {
                cand(
                    ["c++", "c#", "f#"]
                        .iter()
                        .filter_map(|s| self.lit(i, s))
                        .max()
                        .unwrap_or(0),
                )
            },
            &|i| self.assimilation(i),
            &|i| self.sgml(i),
            &|i| self.spmdash(i),
            &|i| {
                self.lit(i, "&amp;").map(|l| Cand {
                    len: l,
                    consume: l,
                    emit: Emit::Text("&".into()),
                })
            },
            &|i| self.sppunc(i),
            &|i| self.word_redaux(i),
            &|i| self.sword_sredaux(i),
            &|i| {
                let w = self.word(i);
                (w > 0).then(|| Cand {
                    len: w,
                    consume: w,
                    emit: Emit::Text(remove_soft_hyphens(&self.text(i, w))),
                })
            },
            &|i| cand(self.apoword(i)),
            &|i| self.apoword2(i),
            &|i| cand(self.fullurl(i)),
            &|i| cand(self.likelyurl(i)),
            &|i| cand(self.email(i)),
            &|i| cand(self.twitter(i)),
            &|i| self.redaux_ctx(i),
            &|i| self.sredaux_ctx(i),
            &|i| cand(self.date(i)),
            &|i| {
                let n = self.number(i);
                (n > 0).then(|| Cand {
                    len: n,
                    consume: n,
                    emit: Emit::Text(remove_soft_hyphens(&self.text(i, n))),
                })
            },
            &|i| cand(self.subsupnum(i)),
            &|i| {
                let n = self.frac(i);
                (n > 0).then(|| Cand {
                    len: n,
                    consume: n,
                    emit: Emit::Text(self.text(i, n).replace(' ', "\u{A0}")),
                })
            },
            &|i| self.frac2(i),
            &|i| cand(self.tbspec(i)),
            &|i| cand(self.thing3(i)),
            &|i| cand(self.dolsign(i)),
            &|i| self.dolsign2(i),
            &|i| self.acronym_sentence_end(i),
            &|i| self.abbrev3(i),
            &|i| self.abbrev1(i),
            &|i| cand(self.abbrev2(i)),
            &|i| self.abbrev4_space(i),
            &|i| self.acro_spacenl(i),
            &|i| self.tbspec2(i),
            &|i| self.filename(i),
            &|i| self.word_dot_insentp(i),
            &|i| self.phone(i),
            &|i| self.dblquot(i),
            &|i| self.lt_gt(i),
            &|i| self.smiley(i),
            &|i| self.asian_smiley(i),
            &|i| self.bracket(i),
            &|i| self.hyphens(i),
            &|i| self.ldots(i),
            &|i| {
                cand(
                    self.run_of(i, |c| c == '@')
                        .max(self.run_of(i, |c| c == '#'))
                        .max(self.run_of(i, |c| c == '_')),
                )
            },
            &|i| cand(self.asts(i)),
            &|i| {
                cand(usize::from(
                    self.is(i, |c| matches!(c, ',' | ';' | ':' | '\u{3001}')),
                ))
            },
            &|i| cand(self.run_of(i, |c| c == '?' || c == '!')),
            &|i| {
                cand(usize::from(self.is(i, |c| {
                    matches!(
                        c,
                        '.' | '\u{A1}'
                            | '\u{BF}'
                            | '\u{37E}'
                            | '\u{589}'
                            | '\u{61F}'
                            | '\u{6D4}'
                            | '\u{700}'
                            ..='\u{702}' | '\u{7FA}' | '\u{3002}'
                    )
                })))
            },
            &|i| cand(usize::from(self.at(i) == Some('='))),
            &|i| cand(usize::from(self.at(i) == Some('/'))),
            &|i| {
                let n = self.hthing(i);
                (n > 0).then(|| Cand {
                    len: n,
                    consume: n,
                    emit: Emit::Text(remove_soft_hyphens(&self.text(i, n))),
                })
            },
            &|i| {
                let t = self.thing(i);
                (t > 0
                    && self.at(i + t) == Some('.')
                    && self.is(i + t + 1, |c| matches!(c, ',' | ';' | ':' | '\u{3001}')))
                .then_some(Cand {
                    len: t + 2,
                    consume: t + 1,
                    emit: Emit::Same,
                })
            },
            &|i| cand(self.thing(i)),
            &|i| {
                let n = self.thinga(i);
                (n > 0).then(|| Cand {
                    len: n,
                    consume: n,
                    emit: Emit::Text(self.text(i, n).replace("&amp;", "&")),
                })
            },
            &|i| self.quotes(i),
            &|i| self.redaux_plain(i),
            &|i| self.misc(i),
        ];
        let mut best: Option<Cand> = None;
        for rule in rules {
            if let Some(c) = rule(i)
                && best.as_ref().is_none_or(|b| c.len > b.len)
            {
                best = Some(c);
            }
        }
        best
    }

    /// Length of one `{SPACENL}` at `i` (0 if none): `\r\n` is a single `{NEWLINE}`.
    fn spacenl_len(&self, i: usize) -> usize {
        if self.at(i) == Some('\r') && self.at(i + 1) == Some('\n') {
            2
        } else {
            usize::from(self.is(i, is_spacenl))
        }
    }

    fn run_of(&self, i: usize, f: impl Fn(char) -> bool) -> usize {
        let mut j = i;
        while self.is(j, &f) {
            j += 1;
        }
        j - i
    }

    // --- rules -----------------------------------------------------------------------------

    /// `cannot`, `'twas` (split 3 from the end); `'tis`, `gonna`, `gotta`, `lemme`, `gimme`,
    /// `wanna` (split 2 from the end).
    fn assimilation(&self, i: usize) -> Option<Cand> {
        let mut best: Option<(usize, usize)> = None;
        let mut consider = |len: Option<usize>, back: usize| {
            if let Some(l) = len
                && best.is_none_or(|(b, _)| l > b)
            {
                best = Some((l, back));
            }
        };
        consider(self.lit(i, "cannot"), 3);
        consider(self.lit(i, "'twas"), 3);
        for w in ["gonna", "gotta", "lemme", "gimme", "wanna"] {
            consider(self.lit(i, w), 2);
        }
        if self.is(i, is_apos) {
            consider(self.lit(i + 1, "tis").map(|l| l + 1), 2);
        }
        best.map(|(len, back)| Cand {
            len,
            consume: len - back,
            emit: Emit::Same,
        })
    }

    /// `{SGML}`: an SGML/XML tag (`<b>`, `</p>`, `<a href="x">`, `<!-- ... >`); spaces inside
    /// become no-break spaces.
    fn sgml(&self, i: usize) -> Option<Cand> {
        let len = self.sgml_len(i)?;
        Some(Cand {
            len,
            consume: len,
            emit: Emit::Text(self.text(i, len).replace(' ', "\u{A0}")),
        })
    }

    fn sgml_len(&self, i: usize) -> Option<usize> {
        if self.at(i) != Some('<') {
            return None;
        }
        let name = |j: usize| -> usize {
            if !self.is(j, |c| c.is_ascii_alphabetic()) {
                return 0;
            }
            1 + self.run_of(j + 1, |c| {
                c.is_ascii_alphanumeric() || matches!(c, '_' | ':' | '.' | '-')
            })
        };
        let spaces = |j: usize| self.run_of(j, |c| c == ' ');
        let close = |j: usize| -> Option<usize> {
            let k = j + spaces(j);
            (self.at(k) == Some('>')).then_some(k + 1 - i)
        };
        let j = i + 1;
        // <!... or <?...
        if self.is(j, |c| c == '!' || c == '?')
            && self.is(j + 1, |c| c.is_ascii_alphabetic() || c == '-')
        {
            let k = j + 2 + self.run_of(j + 2, |c| !matches!(c, '>' | '\r' | '\n'));
            return close(k);
        }
        // </name>
        if self.at(j) == Some('/') {
            let n = name(j + 1);
            return if n > 0 { close(j + 1 + n) } else { None };
        }
        // <name attr attr=value ... /?>
        let n = name(j);
        if n == 0 {
            return None;
        }
        let mut k = j + n;
        loop {
            let sp = spaces(k);
            if sp == 0 {
                break;
            }
            let an = name(k + sp);
            if an == 0 {
                break;
            }
            let mut m = k + sp + an;
            let eq = m + spaces(m);
            if self.at(eq) == Some('=') {
                let v = eq + 1 + spaces(eq + 1);
                let vlen = match self.at(v) {
                    Some(q @ ('\'' | '"')) => {
                        let body = self.run_of(v + 1, |c| c != q);
                        if self.at(v + 1 + body) == Some(q) {
                            body + 2
                        } else {
                            0
                        }
                    }
                    _ => name(v),
                };
                if vlen > 0 {
                    m = v + vlen;
                }
            }
            k = m;
        }
        let mut end = k + spaces(k);
        if self.at(end) == Some('/') {
            end += 1;
        }
        close(end)
    }

    fn spmdash(&self, i: usize) -> Option<Cand> {
        let len = if self.is(i, |c| {
            matches!(
                c,
                '\u{96}' | '\u{97}' | '\u{2013}' | '\u{2014}' | '\u{2015}'
            )
        }) {
            Some(1)
        } else {
            ["&MD;", "&mdash;", "&ndash;"]
                .iter()
                .filter_map(|s| self.lit(i, s))
                .max()
        }?;
        Some(Cand {
            len,
            consume: len,
            emit: Emit::Text("--".into()),
        })
    }

    fn sppunc(&self, i: usize) -> Option<Cand> {
        if self.at(i) != Some('&') {
            return None;
        }
        for s in ["HT", "TL", "UR", "LR", "QC", "QL", "QR", "odq", "cdq"] {
            if let Some(l) = self.lit(i + 1, s)
                && self.at(i + 1 + l) == Some(';')
            {
                return cand(l + 2);
            }
        }
        if self.at(i + 1) == Some('#') {
            let d = self.run_of(i + 2, |c| c.is_ascii_digit());
            if d > 0 && self.at(i + 2 + d) == Some(';') {
                return cand(d + 3);
            }
        }
        None
    }

    /// `{WORD}`: `{LETTER}({LETTER}|{DIGIT})*([.!?]{LETTER}({LETTER}|{DIGIT})*)*`.
    fn word(&self, i: usize) -> usize {
        if !self.is(i, is_letter) {
            return 0;
        }
        let mut j = i + 1;
        loop {
            while self.is(j, |c| is_letter(c) || is_digit(c)) {
                j += 1;
            }
            if self.is(j, |c| matches!(c, '.' | '!' | '?')) && self.is(j + 1, is_letter) {
                j += 2;
            } else {
                return j - i;
            }
        }
    }

    /// `{REDAUX}`: `{APOS}([msdMSD]|re|ve|ll)`.
    fn redaux(&self, i: usize) -> usize {
        if !self.is(i, is_apos) {
            return 0;
        }
        if ["re", "ve", "ll"]
            .iter()
            .any(|s| self.lit(i + 1, s).is_some())
        {
            return 3;
        }
        if self.is(i + 1, |c| matches!(c, 'm' | 's' | 'd' | 'M' | 'S' | 'D')) {
            return 2;
        }
        0
    }

    /// `{SREDAUX}`: `n{APOSETCETERA}t`.
    fn sredaux(&self, i: usize) -> usize {
        if self.is(i, |c| c == 'n' || c == 'N')
            && self.is(i + 1, is_apos_etc)
            && self.is(i + 2, |c| c == 't' || c == 'T')
        {
            3
        } else {
            0
        }
    }

    fn word_redaux(&self, i: usize) -> Option<Cand> {
        let w = self.word(i);
        if w == 0 {
            return None;
        }
        let r = self.redaux(i + w);
        (r > 0).then(|| Cand {
            len: w + r,
            consume: w,
            emit: Emit::Text(remove_soft_hyphens(&self.text(i, w))),
        })
    }

    /// `{SWORD}/{SREDAUX}`: a word not ending in `n` before `n't`.
    fn sword_sredaux(&self, i: usize) -> Option<Cand> {
        let run = self.run_of(i, |c| c.is_ascii_alphabetic() || c == '\u{AD}');
        // The n of n't is the last letter of the run.
        let mut k = i + run;
        while k > i && self.at(k - 1) == Some('\u{AD}') {
            k -= 1;
        }
        if k < i + 2 || self.sredaux(k - 1) == 0 {
            return None;
        }
        let end = k - 1; // SWORD ends before the n
        let mut last = end;
        while last > i && self.at(last - 1) == Some('\u{AD}') {
            last -= 1;
        }
        if last == i
            || !self.is(last - 1, |c| {
                c.is_ascii_alphabetic() && c != 'n' && c != 'N'
            })
        {
            return None;
        }
        let len = end - i;
        Some(Cand {
            len: len + 3,
            consume: len,
            emit: Emit::Text(remove_soft_hyphens(&self.text(i, len))),
        })
    }

    /// `{APOWORD}` (the alternatives relevant to English text).
    fn apoword(&self, i: usize) -> usize {
        let mut best = 0;
        let c0 = match self.at(i) {
            Some(c) => c,
            None => return 0,
        };
        // {APOS}n{APOS}?, {APOS}em, {APOS}[2-9]0s, {APOS}till?, {APOS}cause
        if is_apos(c0) {
            if self.is(i + 1, |c| c == 'n' || c == 'N') {
                best = best.max(if self.is(i + 2, is_apos) { 3 } else { 2 });
            }
            for s in ["em", "til", "till", "cause"] {
                if let Some(l) = self.lit(i + 1, s) {
                    best = best.max(l + 1);
                }
            }
            if self.is(i + 1, |c| ('2'..='9').contains(&c))
                && self.at(i + 2) == Some('0')
                && self.is(i + 3, |c| c == 's' || c == 'S')
            {
                best = best.max(4);
            }
        }
        // [lLdDjJ]{APOS}
        if matches!(c0, 'l' | 'L' | 'd' | 'D' | 'j' | 'J') && self.is(i + 1, is_apos) {
            best = best.max(2);
        }
        for (s, apos_at) in [("dunkin", 6), ("somethin", 8), ("ol", 2)] {
            if let Some(l) = self.lit(i, s)
                && self.is(i + apos_at, is_apos)
            {
                best = best.max(l + 1);
            }
        }
        for s in [
            "cont'd.",
            "cont'd",
            "'twas",
            "nor'easter",
            "c'mon",
            "e'er",
            "s'mores",
            "ev'ry",
            "li'l",
            "nat'l",
        ] {
            if let Some(l) = self.lit(i, s) {
                best = best.max(l);
            }
        }
        // O{APOSETCETERA}o
        if matches!(c0, 'o' | 'O')
            && self.is(i + 1, is_apos_etc)
            && self.is(i + 2, |c| c == 'o' || c == 'O')
        {
            best = best.max(3);
        }
        // [A-HJ-XZn]{APOSETCETERA}[:letter:]{2}[:letter:]*
        if (c0.is_ascii_uppercase() && c0 != 'I' && c0 != 'Y' || c0 == 'n')
            && self.is(i + 1, is_apos_etc)
        {
            let l = self.run_of(i + 2, is_jletter);
            if l >= 2 {
                best = best.max(l + 2);
            }
        }
        // [:letter:][:letter:]*[aeiouyAEIOUY]{APOSETCETERA}[aeiouA-Z][:letter:]*
        let l = self.run_of(i, is_jletter);
        if l >= 2
            && self.is(i + l - 1, |c| "aeiouyAEIOUY".contains(c))
            && self.is(i + l, is_apos_etc)
            && self.is(i + l + 1, |c| "aeiou".contains(c) || c.is_ascii_uppercase())
        {
            best = best.max(l + 2 + self.run_of(i + l + 2, is_jletter));
        }
        best
    }

    /// `y{APOS}/[:letter:]` (y'all -> y' all).
    fn apoword2(&self, i: usize) -> Option<Cand> {
        (self.is(i, |c| c == 'y' || c == 'Y')
            && self.is(i + 1, is_apos)
            && self.is(i + 2, is_jletter))
        .then_some(Cand {
            len: 3,
            consume: 2,
            emit: Emit::Same,
        })
    }

    /// `https?://...` up to a character that cannot end a URL.
    fn fullurl(&self, i: usize) -> usize {
        let scheme = self.lit(i, "https://").or_else(|| self.lit(i, "http://"));
        let Some(s) = scheme else { return 0 };
        let body = |c: char| {
            !matches!(
                c,
                ' ' | '\t' | '\n' | '\u{0C}' | '\r' | '"' | '<' | '>' | '|' | '(' | ')'
            )
        };
        let run = self.run_of(i + s, body);
        // the last character may not be one of .!?(){},-
        let mut end = i + s + run;
        while end > i + s
            && self.is(end - 1, |c| {
                matches!(c, '.' | '!' | '?' | '{' | '}' | ',' | '-')
            })
        {
            end -= 1;
        }
        if end < i + s + 2 { 0 } else { end - i }
    }

    /// `{LIKELYURL}`: `www.(label.)+[a-zA-Z]{2,4}` or `(label.)+(com|net|org|edu)`, then an
    /// optional `/path`.
    fn likelyurl(&self, i: usize) -> usize {
        let mut end = 0;
        // www\.([^ \t\n\f\r"<>|.!?(){},]+\.)+[a-zA-Z]{2,4}
        if let Some(w) = self.lit(i, "www.") {
            let ok = |c: char| {
                !matches!(
                    c,
                    ' ' | '\t'
                        | '\n'
                        | '\u{0C}'
                        | '\r'
                        | '"'
                        | '<'
                        | '>'
                        | '|'
                        | '.'
                        | '!'
                        | '?'
                        | '('
                        | ')'
                        | '{'
                        | '}'
                        | ','
                )
            };
            let mut j = i + w;
            loop {
                let l = self.run_of(j, ok);
                if l == 0 || self.at(j + l) != Some('.') {
                    break;
                }
                j += l + 1;
                let t = self.run_of(j, |c| c.is_ascii_alphabetic());
                if t >= 2 {
                    end = end.max(j + t.min(4));
                }
            }
        }
        // ([^ \t\n\f\r"`'<>|.!?(){},-_$]+\.)+(com|net|org|edu); ",-_" is a range there.
        let ok2 = |c: char| {
            !matches!(
                c,
                ' ' | '\t'
                    | '\n'
                    | '\u{0C}'
                    | '\r'
                    | '"'
                    | '`'
                    | '\''
                    | '<'
                    | '>'
                    | '|'
                    | '.'
                    | '!'
                    | '?'
                    | '('
                    | ')'
                    | '{'
                    | '}'
                    | '$'
            ) && !(','..='_').contains(&c)
        };
        let mut j = i;
        loop {
            let l = self.run_of(j, ok2);
            if l == 0 || self.at(j + l) != Some('.') {
                break;
            }
            j += l + 1;
            if ["com", "net", "org", "edu"]
                .iter()
                .any(|t| self.lit(j, t).is_some())
            {
                end = end.max(j + 3);
            }
        }
        if end == 0 {
            return 0;
        }
        // (\/[^ \t\n\f\r"<>|()]+[^ \t\n\f\r"<>|.!?(){},-])?
        if self.at(end) == Some('/') {
            let body = |c: char| {
                !matches!(
                    c,
                    ' ' | '\t' | '\n' | '\u{0C}' | '\r' | '"' | '<' | '>' | '|' | '(' | ')'
                )
            };
            let run = self.run_of(end + 1, body);
            let mut last = end + 1 + run;
            while last > end + 2
                && self.is(last - 1, |c| {
                    matches!(c, '.' | '!' | '?' | '{' | '}' | ',' | '-')
                })
            {
                last -= 1;
            }
            if last >= end + 3 {
                end = last;
            }
        }
        end - i
    }

    /// `{EMAIL}`: `<?[a-zA-Z0-9][^ \t\n\f\r"<>|(){}\u00A0]*@(label\.)*label>?` where labels
    /// are runs of the same characters without `.`.
    fn email(&self, i: usize) -> usize {
        let mut j = i;
        if self.at(j) == Some('<') {
            j += 1;
        } else if let Some(l) = self.lit(j, "&lt;") {
            j += l;
        }
        if !self.is(j, |c| c.is_ascii_alphanumeric()) {
            return 0;
        }
        let ok = |c: char| {
            !matches!(
                c,
                ' ' | '\t'
                    | '\n'
                    | '\u{0C}'
                    | '\r'
                    | '"'
                    | '<'
                    | '>'
                    | '|'
                    | '('
                    | ')'
                    | '{'
                    | '}'
                    | '\u{A0}'
            )
        };
        let run_end = j + 1 + self.run_of(j + 1, ok);
        let mut end = 0;
        for p in j + 1..run_end {
            if self.at(p) != Some('@') {
                continue;
            }
            // Longest (label\.)*label after the @.
            let mut k = p + 1;
            let mut last_ok = 0;
            while k < run_end && self.at(k) != Some('.') {
                k += 1;
                last_ok = k;
                if k < run_end
                    && self.at(k) == Some('.')
                    && k + 1 < run_end
                    && self.at(k + 1) != Some('.')
                {
                    k += 1;
                }
            }
            end = end.max(last_ok);
        }
        if end == 0 {
            return 0;
        }
        if self.at(end) == Some('>') {
            end += 1;
        } else if let Some(l) = self.lit(end, "&gt;") {
            end += l;
        }
        end - i
    }

    /// `@name` and `#tag`.
    fn twitter(&self, i: usize) -> usize {
        match self.at(i) {
            Some('@') if self.is(i + 1, |c| c.is_ascii_alphabetic() || c == '_') => {
                1 + self.run_of(i + 1, |c| c.is_ascii_alphanumeric() || c == '_')
            }
            Some('#') if self.is(i + 1, is_letter) => 1 + self.run_of(i + 1, is_letter),
            _ => 0,
        }
    }

    fn redaux_ctx(&self, i: usize) -> Option<Cand> {
        let r = self.redaux(i);
        (r > 0 && self.is(i + r, |c| !is_alpha(c))).then(|| Cand {
            len: r + 1,
            consume: r,
            emit: Emit::Text(latex_quotes(&self.text(i, r), false)),
        })
    }

    fn sredaux_ctx(&self, i: usize) -> Option<Cand> {
        let r = self.sredaux(i);
        (r > 0 && self.is(i + r, |c| !is_alpha(c))).then(|| Cand {
            len: r + 1,
            consume: r,
            emit: Emit::Text(latex_quotes(&self.text(i, r), false)),
        })
    }

    /// The `{REDAUX}` / `{SREDAUX}` fall-backs (at the end of the text).
    fn redaux_plain(&self, i: usize) -> Option<Cand> {
        let r = self.redaux(i).max(self.sredaux(i));
        (r > 0).then(|| Cand {
            len: r,
            consume: r,
            emit: Emit::Text(latex_quotes(&self.text(i, r), false)),
        })
    }

    fn digits(&self, i: usize, min: usize, max: usize) -> Option<usize> {
        let n = self.run_of(i, is_digit);
        (n >= min && n <= max).then_some(n)
    }

    /// `{DATE}`: `\d{1,2}[-/]\d{1,2}[-/]\d{2,4}`.
    fn date(&self, i: usize) -> usize {
        let sep = |j: usize| self.is(j, |c| c == '-' || c == '/');
        let Some(a) = self.digits(i, 1, 2) else {
            return 0;
        };
        if !sep(i + a) {
            return 0;
        }
        let Some(b) = self.digits(i + a + 1, 1, 2) else {
            return 0;
        };
        if !sep(i + a + 1 + b) {
            return 0;
        }
        let j = i + a + b + 2;
        let n = self.run_of(j, is_digit);
        if n < 2 {
            return 0;
        }
        a + b + 2 + n.min(4)
    }

    /// `{NUMBER}`: `[-+]?` then digits with `.`, `:`, `,` (or soft hyphen) groups.
    fn number(&self, i: usize) -> usize {
        let mut j = i;
        if self.is(j, |c| c == '-' || c == '+') {
            j += 1;
        }
        let start = j;
        j += self.run_of(j, is_digit);
        while self.is(j, |c| {
            matches!(c, '.' | ':' | ',' | '\u{AD}' | '\u{66B}' | '\u{66C}')
        }) && self.is(j + 1, is_digit)
        {
            j += 1 + self.run_of(j + 1, is_digit);
        }
        if j == start { 0 } else { j - i }
    }

    fn subsupnum(&self, i: usize) -> usize {
        let mut j = i;
        if self.is(j, |c| {
            matches!(c, '\u{207A}' | '\u{207B}' | '\u{208A}' | '\u{208B}')
        }) {
            j += 1;
        }
        let sup = self.run_of(j, |c| {
            matches!(
                c,
                '\u{2070}' | '\u{B9}' | '\u{B2}' | '\u{B3}' | '\u{2074}'..='\u{2079}'
            )
        });
        let sub = self.run_of(j, |c| ('\u{2080}'..='\u{2089}').contains(&c));
        let n = sup.max(sub);
        if n == 0 { 0 } else { j + n - i }
    }

    /// `{FRAC}`: `(\d{1,4}[- \u00A0])?\d{1,4}(\\?/|\u2044)\d{1,4}`.
    fn frac(&self, i: usize) -> usize {
        let simple = |j: usize| -> usize {
            let Some(a) = self.digits(j, 1, 4) else {
                return 0;
            };
            let mut k = j + a;
            if self.at(k) == Some('\\') && self.at(k + 1) == Some('/') {
                k += 2;
            } else if self.is(k, |c| c == '/' || c == '\u{2044}') {
                k += 1;
            } else {
                return 0;
            }
            let b = self.run_of(k, is_digit);
            if b == 0 { 0 } else { k + b.min(4) - j }
        };
        let mut best = simple(i);
        if let Some(a) = self.digits(i, 1, 4)
            && self.is(i + a, |c| matches!(c, '-' | ' ' | '\u{A0}'))
        {
            let s = simple(i + a + 1);
            if s > 0 {
                best = best.max(a + 1 + s);
            }
        }
        best
    }

    fn frac2(&self, i: usize) -> Option<Cand> {
        let c = self.at(i)?;
        let text = match c {
            '\u{BC}' => "1/4".to_string(),
            '\u{BD}' => "1/2".to_string(),
            '\u{BE}' => "3/4".to_string(),
            '\u{2153}' => "1/3".to_string(),
            '\u{2154}' => "2/3".to_string(),
            '\u{2155}'..='\u{215E}' => c.to_string(),
            _ => return None,
        };
        Some(Cand {
            len: 1,
            consume: 1,
            emit: Emit::Text(text),
        })
    }

    /// `{TBSPEC}`: `-LRB-` etc., `pro-`, `anti-`, `S&P-500`, `Cap'n`, `c'est`, ...
    fn tbspec(&self, i: usize) -> usize {
        let mut best = 0;
        for s in [
            "-RRB-",
            "-LRB-",
            "-RCB-",
            "-LCB-",
            "-RSB-",
            "-LSB-",
            "C.D.s",
            "pro-",
            "anti-",
            "S&P-500",
            "S&amp;P-500",
            "S&Ls",
            "S&amp;Ls",
        ] {
            if let Some(l) = self.lit(i, s) {
                best = best.max(l);
            }
        }
        for (s, apos) in [("cap", 3), ("c", 1)] {
            if self.lit(i, s).is_some() && self.is(i + apos, is_apos) {
                let rest = if s == "cap" { "n" } else { "est" };
                if let Some(l) = self.lit(i + apos + 1, rest) {
                    best = best.max(apos + 1 + l);
                }
            }
        }
        best
    }

    /// `{THING3}`: `X+(-A+){0,2}(\\?/X+(-A+){0,2}){1,2}` (`and/or`, `black/white`).
    fn thing3(&self, i: usize) -> usize {
        let segment = |j: usize| -> usize {
            let n = self.run_of(j, is_alnum);
            if n == 0 {
                return 0;
            }
            let mut k = j + n;
            for _ in 0..2 {
                if self.at(k) == Some('-') {
                    let a = self.run_of(k + 1, is_alpha);
                    if a > 0 {
                        k += 1 + a;
                        continue;
                    }
                }
                break;
            }
            k - j
        };
        let first = segment(i);
        if first == 0 {
            return 0;
        }
        let mut k = i + first;
        let mut best = 0;
        for _ in 0..2 {
            let slash = if self.at(k) == Some('\\') && self.at(k + 1) == Some('/') {
                2
            } else if self.at(k) == Some('/') {
                1
            } else {
                break;
            };
            let s = segment(k + slash);
            if s == 0 {
                break;
            }
            k += slash + s;
            best = k - i;
        }
        best
    }

    /// `{DOLSIGN}`: `[A-Z]*\$` or `#`.
    fn dolsign(&self, i: usize) -> usize {
        if self.at(i) == Some('#') {
            return 1;
        }
        let n = self.run_of(i, |c| c.is_ascii_uppercase());
        if self.at(i + n) == Some('$') {
            n + 1
        } else {
            0
        }
    }

    fn dolsign2(&self, i: usize) -> Option<Cand> {
        let c = self.at(i)?;
        let text = match c {
            '\u{A2}' => "cents".to_string(),
            '\u{A3}' => "#".to_string(),
            '\u{80}' | '\u{20AC}' => "$".to_string(),
            '\u{A4}' | '\u{A5}' | '\u{20A0}' | '\u{60B}' | '\u{E3F}' | '\u{20A4}' | '\u{FFE0}'
            | '\u{FFE1}' | '\u{FFE5}' | '\u{FFE6}' => c.to_string(),
            _ => return None,
        };
        Some(Cand {
            len: 1,
            consume: 1,
            emit: Emit::Text(text),
        })
    }

    /// `{ACRO}`: `[A-Za-z](\.[A-Za-z])*` and a few fixed forms.
    fn acro(&self, i: usize) -> usize {
        let mut best = 0;
        if self.is(i, |c| c.is_ascii_alphabetic()) {
            let mut j = i + 1;
            while self.at(j) == Some('.') && self.is(j + 1, |c| c.is_ascii_alphabetic()) {
                j += 2;
            }
            best = j - i;
        }
        for p in ["Canada", "Sino", "Korean", "EU", "Japan", "non"] {
            if let Some(l) = self.lit(i, p)
                && let Some(m) = self.lit(i + l, "-U.S")
            {
                best = best.max(l + m);
            }
        }
        for s in ["U.S.-U.K", "U.S.-U.S.S.R"] {
            if let Some(l) = self.lit(i, s) {
                best = best.max(l);
            }
        }
        best
    }

    /// Longest `{ACRO}` directly followed by `.` (the regex may stop the acronym early).
    fn acro_dot(&self, i: usize) -> Option<usize> {
        let a = self.acro(i);
        if a > 0 && self.at(i + a) == Some('.') {
            return Some(a);
        }
        // [A-Za-z](\.[A-Za-z])* can end at any letter.
        let mut k = a;
        while k >= 3 {
            k -= 2;
            if self.at(i + k) == Some('.') && self.is(i + k - 1, |c| c.is_ascii_alphabetic()) {
                return Some(k);
            }
        }
        None
    }

    /// `{ACRONYM}/({SPACENLS})(The|He|...){SPACENL}`: the acronym ends a sentence; its
    /// period is returned again as a separate `.` token.
    fn acronym_sentence_end(&self, i: usize) -> Option<Cand> {
        let a = self.acro_dot(i)?;
        let acr = a + 1;
        let sp = self.run_of(i + acr, is_spacenl);
        if sp == 0 {
            return None;
        }
        let k = i + acr + sp;
        let mut best = None;
        for w in SENTENCE_STARTS {
            let first = w.chars().next()?;
            if self.at(k) != Some(first) {
                continue;
            }
            if let Some(l) = self.lit(k + 1, &w[1..])
                && self.is(k + 1 + l, is_spacenl)
            {
                best = best.max(Some(1 + l));
            }
        }
        if best.is_none() {
            let s = self.sgml_len(k)?;
            if self.is(k + s, is_spacenl) {
                best = Some(s);
            }
        }
        let w = best?;
        let len = acr + sp + w + 1;
        if a == 1 {
            // A one-letter "acronym" is returned as the letter; the period comes next.
            return Some(Cand {
                len,
                consume: 1,
                emit: Emit::Same,
            });
        }
        Some(Cand {
            len,
            consume: acr - 1,
            emit: Emit::Text(self.text(i, acr)),
        })
    }

    /// `{ABBREV3}/{SPACENL}?[:digit:]` (`no. 5`, `fig. 3`).
    fn abbrev3(&self, i: usize) -> Option<Cand> {
        let l = self.table_dot(i, ABBREV3)?;
        let sp = self.spacenl_len(i + l);
        self.is(i + l + sp, is_digit).then_some(Cand {
            len: l + sp + 1,
            consume: l,
            emit: Emit::Same,
        })
    }

    /// `{ABBREV1}` (`etc.`, `Inc.`, months, states...): before a sentence start (`SENTEND1`:
    /// space then space/capital/SGML) or at the end of the text the period is also returned as
    /// a `.` token.
    fn abbrev1(&self, i: usize) -> Option<Cand> {
        let l = self.table_dot(i, ABBREV1)?;
        let end = i + l;
        let sentend = self.is(end, is_spacenl)
            && (self.is(end + 1, |c| is_spacenl(c) || c.is_uppercase())
                || self.sgml_len(end + 1).is_some());
        if sentend {
            let ctx = if !self.is(end + 1, |c| is_spacenl(c) || c.is_uppercase()) {
                1 + self.sgml_len(end + 1).unwrap_or(0)
            } else {
                2
            };
            return Some(Cand {
                len: l + ctx,
                consume: l - 1,
                emit: Emit::Text(self.text(i, l)),
            });
        }
        if end + 2 <= self.c.len() {
            return Some(Cand {
                len: l + 2,
                consume: l,
                emit: Emit::Same,
            });
        }
        Some(Cand {
            len: l,
            consume: l - 1,
            emit: Emit::Text(self.text(i, l)),
        })
    }

    /// `{ABBREV2}`: titles, `vs.`, acronyms (`u.s.`, `a.m.`, single letters) with their period.
    fn abbrev2(&self, i: usize) -> usize {
        let t = self.table_dot(i, ABBREV4).unwrap_or(0);
        let a = self.acro_dot(i).map_or(0, |a| a + 1);
        t.max(a)
    }

    /// `{ABBREV4}/{SPACE}`.
    fn abbrev4_space(&self, i: usize) -> Option<Cand> {
        let mut l = ABBREV4
            .iter()
            .filter_map(|e| self.entry(i, e))
            .filter(|&l| self.is(i + l, is_space))
            .max()
            .unwrap_or(0);
        let a = self.acro(i);
        if a > 0 && self.is(i + a, is_space) {
            l = l.max(a);
        }
        (l > 0).then_some(Cand {
            len: l + 1,
            consume: l,
            emit: Emit::Same,
        })
    }

    /// `{ACRO}/{SPACENL}`.
    fn acro_spacenl(&self, i: usize) -> Option<Cand> {
        let a = self.acro(i);
        (a > 0 && self.is(i + a, is_spacenl)).then_some(Cand {
            len: a + 1,
            consume: a,
            emit: Emit::Same,
        })
    }

    /// `{APOS}[0-9][0-9]/{SPACENL}` (`'80`).
    fn tbspec2(&self, i: usize) -> Option<Cand> {
        (self.is(i, is_apos)
            && self.is(i + 1, |c| c.is_ascii_digit())
            && self.is(i + 2, |c| c.is_ascii_digit())
            && self.is(i + 3, is_spacenl))
        .then_some(Cand {
            len: 4,
            consume: 3,
            emit: Emit::Same,
        })
    }

    /// `{FILENAME}/({SPACENL}|[.?!,"'<])`: `X+([._]X+)*\.ext`.
    fn filename(&self, i: usize) -> Option<Cand> {
        let mut seg_ends = Vec::new(); // (end, separator before this segment)
        let n = self.run_of(i, is_alnum);
        if n == 0 {
            return None;
        }
        let mut j = i + n;
        seg_ends.push((j, None, i));
        while self.is(j, |c| matches!(c, '.' | '_')) {
            let m = self.run_of(j + 1, is_alnum);
            if m == 0 {
                break;
            }
            let sep = self.at(j);
            seg_ends.push((j + 1 + m, sep, j + 1));
            j += 1 + m;
        }
        for &(end, sep, start) in seg_ends.iter().skip(1).rev() {
            if sep != Some('.') {
                continue;
            }
            let ext: String = self.c[start..end].iter().collect::<String>().to_lowercase();
            if FILENAME_EXT.contains(&ext.as_str())
                && self.is(end, |c| {
                    is_spacenl(c) || matches!(c, '.' | '?' | '!' | ',' | '"' | '\'' | '<')
                })
            {
                return Some(Cand {
                    len: end - i + 1,
                    consume: end - i,
                    emit: Emit::Same,
                });
            }
        }
        None
    }

    /// `{WORD}\./{INSENTP}` (`word.,`).
    fn word_dot_insentp(&self, i: usize) -> Option<Cand> {
        let w = self.word(i);
        (w > 0
            && self.at(i + w) == Some('.')
            && self.is(i + w + 1, |c| matches!(c, ',' | ';' | ':' | '\u{3001}')))
        .then(|| Cand {
            len: w + 2,
            consume: w + 1,
            emit: Emit::Text(remove_soft_hyphens(&self.text(i, w + 1))),
        })
    }

    /// End positions of `[0-9]{min,max}` starting at each of `starts`.
    fn digit_ends(&self, starts: &[usize], min: usize, max: usize) -> Vec<usize> {
        let mut out = Vec::new();
        for &j in starts {
            let n = self.run_of(j, |c| c.is_ascii_digit()).min(max);
            out.extend((min..=n).map(|k| j + k));
        }
        out
    }

    /// Positions after an optional / required single character of `set` at each of `starts`.
    fn char_ends(&self, starts: &[usize], set: &[char], optional: bool) -> Vec<usize> {
        let mut out = Vec::new();
        for &j in starts {
            if optional {
                out.push(j);
            }
            if self.is(j, |c| set.contains(&c)) {
                out.push(j + 1);
            }
        }
        out
    }

    /// `{PHONE}`: `(555) 123-4567`, `10 100 1000`, `12.345.6789` ...; spaces become no-break
    /// spaces and parentheses `-LRB-`/`-RRB-`.
    fn phone(&self, i: usize) -> Option<Cand> {
        const SEP: &[char] = &['-', ' ', '\u{A0}'];
        const SP: &[char] = &[' ', '\u{A0}'];
        let mut ends: Vec<usize> = Vec::new();
        // \([0-9]{2,3}\)[ \u00A0]?
        let mut heads = Vec::new();
        if self.at(i) == Some('(') {
            let d = self.digit_ends(&[i + 1], 2, 3);
            let close: Vec<usize> = d
                .into_iter()
                .filter(|&j| self.at(j) == Some(')'))
                .map(|j| j + 1)
                .collect();
            heads.extend(self.char_ends(&close, SP, true));
        }
        // (\+\+?)?([0-9]{2,4}[\- \u00A0])?[0-9]{2,4}[\- \u00A0]
        let plus = self.char_ends(&self.char_ends(&[i], &['+'], true), &['+'], true);
        let plus: Vec<usize> = plus
            .into_iter()
            .filter(|&j| j == i || self.at(i) == Some('+'))
            .collect();
        let first = self.char_ends(&self.digit_ends(&plus, 2, 4), SEP, false);
        let mut starts = plus.clone();
        starts.extend(first);
        heads.extend(self.char_ends(&self.digit_ends(&starts, 2, 4), SEP, false));
        // [0-9]{3,4}[\- \u00A0]?[0-9]{3,5}
        let mid = self.char_ends(&self.digit_ends(&heads, 3, 4), SEP, true);
        ends.extend(self.digit_ends(&mid, 3, 5));
        // ((\+\+?)?[0-9]{2,4}\.)?[0-9]{2,4}\.[0-9]{3,4}\.[0-9]{3,5}
        let first = self.char_ends(&self.digit_ends(&plus, 2, 4), &['.'], false);
        let mut starts = vec![i];
        starts.extend(first);
        let a = self.char_ends(&self.digit_ends(&starts, 2, 4), &['.'], false);
        let b = self.char_ends(&self.digit_ends(&a, 3, 4), &['.'], false);
        ends.extend(self.digit_ends(&b, 3, 5));
        let end = ends.into_iter().max()?;
        let t = self
            .text(i, end - i)
            .replace(' ', "\u{A0}")
            .replace('(', "-LRB-")
            .replace(')', "-RRB-");
        Some(Cand {
            len: end - i,
            consume: end - i,
            emit: Emit::Text(t),
        })
    }

    /// `{DBLQUOT}`: `"`, `&quot;` (`` `` `` before a word or number) or `''`.
    fn dblquot(&self, i: usize) -> Option<Cand> {
        if self.lit(i, "''").is_some() {
            return Some(Cand {
                len: 2,
                consume: 2,
                emit: Emit::Text("''".into()),
            });
        }
        let l = if self.at(i) == Some('"') {
            1
        } else {
            self.lit(i, "&quot;")?
        };
        let left = self.is(i + l, |c| is_alnum(c) || c == '$');
        Some(Cand {
            len: l + usize::from(left),
            consume: l,
            emit: Emit::Text(latex_quotes(&self.text(i, l), left)),
        })
    }

    fn lt_gt(&self, i: usize) -> Option<Cand> {
        let (l, t) = match self.at(i)? {
            '<' => (1, "<"),
            '>' => (1, ">"),
            '&' => {
                if let Some(l) = self.lit(i, "&lt;") {
                    (l, "<")
                } else {
                    (self.lit(i, "&gt;")?, ">")
                }
            }
            _ => return None,
        };
        Some(Cand {
            len: l,
            consume: l,
            emit: Emit::Text(t.into()),
        })
    }

    /// `{SMILEY}/[^\p{Alpha}\p{Digit}]`: `[<>]?[:;=][\-o\*']?[\(\)DPdpO\\{@\|\[\]]`.
    fn smiley(&self, i: usize) -> Option<Cand> {
        let mut j = i;
        if self.is(j, |c| c == '<' || c == '>') {
            j += 1;
        }
        if !self.is(j, |c| matches!(c, ':' | ';' | '=')) {
            return None;
        }
        j += 1;
        if self.is(j, |c| matches!(c, '-' | 'o' | '*' | '\'')) && self.is(j + 1, is_smiley_mouth) {
            j += 1;
        }
        if !self.is(j, is_smiley_mouth) {
            return None;
        }
        j += 1;
        if !self.is(j, |c| !is_alnum(c)) {
            return None;
        }
        let t = self
            .text(i, j - i)
            .replace('(', "-LRB-")
            .replace(')', "-RRB-");
        Some(Cand {
            len: j - i + 1,
            consume: j - i,
            emit: Emit::Text(t),
        })
    }

    /// `{ASIANSMILEY}`: `^_^`, `-_-`, `(^_^)`, `(^-^)` ...
    fn asian_smiley(&self, i: usize) -> Option<Cand> {
        let eye = |j: usize| {
            self.is(j, |c| {
                matches!(c, '-' | '^' | 'x' | '=' | '~' | '<' | '>' | '\'')
            })
        };
        let len = if eye(i) && self.at(i + 1) == Some('_') && eye(i + 2) {
            3
        } else if self.at(i) == Some('(') && eye(i + 1) {
            let mid = usize::from(self.is(i + 2, |c| c == '_' || c == '.'));
            if eye(i + 2 + mid) && self.at(i + 3 + mid) == Some(')') {
                4 + mid
            } else if self.at(i + 1) != Some('-')
                && self.at(i + 2) == Some('-')
                && self.is(i + 3, |c| {
                    matches!(c, '^' | 'x' | '=' | '~' | '<' | '>' | '\'' | '`')
                })
                && self.at(i + 4) == Some(')')
            {
                5
            } else {
                return None;
            }
        } else {
            return None;
        };
        let t = self
            .text(i, len)
            .replace('(', "-LRB-")
            .replace(')', "-RRB-");
        Some(Cand {
            len,
            consume: len,
            emit: Emit::Text(t),
        })
    }

    fn bracket(&self, i: usize) -> Option<Cand> {
        let t = match self.at(i)? {
            '(' => "-LRB-",
            ')' => "-RRB-",
            '{' => "-LCB-",
            '}' => "-RCB-",
            '[' => "-LSB-",
            ']' => "-RSB-",
            _ => return None,
        };
        Some(Cand {
            len: 1,
            consume: 1,
            emit: Emit::Text(t.into()),
        })
    }

    /// `{HYPHENS}`: runs of 3 or 4 become `--`.
    fn hyphens(&self, i: usize) -> Option<Cand> {
        let n = self.run_of(i, |c| c == '-');
        if n == 0 {
            return None;
        }
        let emit = if (3..=4).contains(&n) {
            Emit::Text("--".into())
        } else {
            Emit::Same
        };
        Some(Cand {
            len: n,
            consume: n,
            emit,
        })
    }

    /// `{LDOTS}` (three to five periods, or `…`) and `{SPACEDLDOTS}` (`. . .`) -> `...`.
    fn ldots(&self, i: usize) -> Option<Cand> {
        let ell = |len: usize| Cand {
            len,
            consume: len,
            emit: Emit::Text("...".into()),
        };
        if self.is(i, |c| c == '\u{85}' || c == '\u{2026}') {
            return Some(ell(1));
        }
        let dots = self.run_of(i, |c| c == '.');
        let mut best = (dots >= 3).then(|| ell(dots.min(5)));
        // \.[ \u00A0](\.[ \u00A0])+\.
        let sp = |c: char| c == ' ' || c == '\u{A0}';
        let mut j = i;
        let mut pairs = 0;
        while self.at(j) == Some('.') && self.is(j + 1, sp) {
            j += 2;
            pairs += 1;
        }
        let spaced = if pairs >= 2 && self.at(j) == Some('.') {
            j + 1 - i
        } else if pairs >= 3 {
            j - 1 - i // the last period was followed by a space: end there
        } else {
            0
        };
        if spaced > 0 && best.as_ref().is_none_or(|b| spaced > b.len) {
            best = Some(ell(spaced));
        }
        best
    }

    /// `{ASTS}`: `\*+` or `(\\\*){1,3}`.
    fn asts(&self, i: usize) -> usize {
        let n = self.run_of(i, |c| c == '*');
        if n > 0 {
            return n;
        }
        let mut j = i;
        let mut k = 0;
        while k < 3 && self.at(j) == Some('\\') && self.at(j + 1) == Some('*') {
            j += 2;
            k += 1;
        }
        j - i
    }

    /// `{THING}`: alphanumeric runs joined by hyphens/underscores, with `d'`/`o'`/`l'`
    /// prefixes (`t-shirt`, `3-year-old`, `o'clock`).
    fn thing(&self, i: usize) -> usize {
        // One part: ([dDoOlL]{APOSETCETERA}X)? X+ ; returns the longest part length.
        let part = |j: usize| -> usize {
            let plain = self.run_of(j, is_letter_digit);
            let mut best = plain;
            if self.is(j, |c| matches!(c, 'd' | 'D' | 'o' | 'O' | 'l' | 'L'))
                && self.is(j + 1, is_apos_etc)
                && self.is(j + 2, is_letter_digit)
            {
                let rest = self.run_of(j + 3, is_letter_digit);
                if rest > 0 {
                    best = best.max(3 + rest);
                }
            }
            best
        };
        let first = part(i);
        if first == 0 {
            return 0;
        }
        let mut j = i + first;
        while self.is(j, is_hyphen) {
            let p = part(j + 1);
            if p == 0 {
                break;
            }
            j += 1 + p;
        }
        j - i
    }

    /// `{HTHING}`: `X[A-Za-z0-9.,]*(-([A-Za-z0-9]+|{ACRO2}\.))+` (`u.s.-based`, `1.5-inch`).
    fn hthing(&self, i: usize) -> usize {
        if !self.is(i, is_alnum) {
            return 0;
        }
        let mut j = i
            + 1
            + self.run_of(i + 1, |c| {
                c.is_ascii_alphanumeric() || matches!(c, '.' | ',' | '\u{AD}')
            });
        let mut best = 0;
        while self.at(j) == Some('-') {
            let acro2 = self
                .acro_dot(j + 1)
                .filter(|&a| a >= 3)
                .map_or(0, |a| a + 1);
            let plain = self.run_of(j + 1, |c| c.is_ascii_alphanumeric() || c == '\u{AD}');
            let seg = acro2.max(plain);
            if seg == 0 {
                break;
            }
            j += 1 + seg;
            best = j - i;
        }
        best
    }

    /// `{THINGA}`: `[A-Z]+(([+&]|&amp;)[A-Z]+)+` (`AT&T`).
    fn thinga(&self, i: usize) -> usize {
        let up = |c: char| c.is_ascii_uppercase();
        let n = self.run_of(i, up);
        if n == 0 {
            return 0;
        }
        let mut j = i + n;
        let mut best = 0;
        loop {
            let sep = if self.is(j, |c| c == '+' || c == '&') {
                self.lit(j, "&amp;").unwrap_or(1)
            } else {
                break;
            };
            let m = self.run_of(j + sep, up);
            if m == 0 {
                break;
            }
            j += sep + m;
            best = j - i;
        }
        best
    }

    /// `{QUOTES}`: an apostrophe or one or two quote characters. A straight `'` before an
    /// ASCII letter and a non-space is taken as an opening quote.
    fn quotes(&self, i: usize) -> Option<Cand> {
        // '/[A-Za-z][^ \t\n\r\u00A0]: only these five characters, not every {SPACENL}.
        if self.at(i) == Some('\'')
            && self.is(i + 1, |c| c.is_ascii_alphabetic())
            && self.is(i + 2, |c| !matches!(c, ' ' | '\t' | '\n' | '\r' | '\u{A0}'))
        {
            return Some(Cand {
                len: 3,
                consume: 1,
                emit: Emit::Text("`".into()),
            });
        }
        let l = if self.is(i, is_quote_char) {
            1 + usize::from(self.is(i + 1, is_quote_char))
        } else if self.is(i, is_apos) {
            1
        } else if self.lit(i, "&apos;").is_some() {
            6
        } else {
            return None;
        };
        Some(Cand {
            len: l,
            consume: l,
            emit: Emit::Text(latex_quotes(&self.text(i, l), false)),
        })
    }

    fn misc(&self, i: usize) -> Option<Cand> {
        if self.lit(i, "<<").is_some() || self.lit(i, ">>").is_some() {
            return cand(2);
        }
        self.is(i, is_misc_symbol).then_some(Cand {
            len: 1,
            consume: 1,
            emit: Emit::Same,
        })
    }
}

fn is_smiley_mouth(c: char) -> bool {
    matches!(
        c,
        '(' | ')' | 'D' | 'P' | 'd' | 'p' | 'O' | '\\' | '{' | '@' | '|' | '[' | ']'
    )
}

/// JFlex `%caseless` comparison of one character with a literal character.
fn caseless_eq(c: char, lit: char) -> bool {
    if c.is_ascii() && lit.is_ascii() {
        return c.eq_ignore_ascii_case(&lit);
    }
    c == lit || c.to_lowercase().eq(lit.to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn cases_fixture() -> Value {
        let path = crate::test_paths::fixture("caption-metrics/ptb-cases.json");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn str_of<'a>(v: &'a Value, key: &str, case: &str) -> &'a str {
        v[key]
            .as_str()
            .unwrap_or_else(|| panic!("{case}: `{key}` is not a string in the fixture"))
    }

    /// Fails listing the first 40 failures (each names its case).
    fn panic_on_failures(what: &str, total: usize, failures: &[String]) {
        const SHOWN: usize = 40;
        assert!(
            failures.is_empty(),
            "{} of {total} {what} differ from pycocoevalcap:\n{}{}",
            failures.len(),
            failures[..failures.len().min(SHOWN)].join("\n"),
            if failures.len() > SHOWN {
                format!("\n... and {} more", failures.len() - SHOWN)
            } else {
                String::new()
            }
        );
    }

    #[test]
    fn punctuation_list_is_upstreams() {
        let f = cases_fixture();
        let want: Vec<&str> = f["punctuations_removed"]
            .as_array()
            .expect("punctuations_removed is a list")
            .iter()
            .map(|v| v.as_str().expect("punctuation is a string"))
            .collect();
        assert_eq!(PUNCTUATIONS.as_slice(), want.as_slice());
    }

    /// All 300 captions in one call, like the fixture was made: raw Java lines and tokenised
    /// captions must be identical.
    #[test]
    fn cases_match_pycocoevalcap_exactly() {
        let f = cases_fixture();
        let cases = f["cases"].as_array().expect("`cases` is a list");
        assert_eq!(cases.len(), 300, "fixture case count");
        let captions: Vec<&str> = cases
            .iter()
            .enumerate()
            .map(|(i, c)| str_of(c, "caption", &format!("case {i}")))
            .collect();
        let raw = ptb_token_lines(&captions);
        let tokenized = ptb_tokenize_all(&captions);
        assert_eq!(raw.len(), captions.len(), "one raw line per caption");
        assert_eq!(tokenized.len(), captions.len(), "one result per caption");
        let mut failures = Vec::new();
        for (i, ((case, raw), tok)) in cases.iter().zip(&raw).zip(&tokenized).enumerate() {
            let name = format!("case {i} {:?}", captions[i]);
            let (want_raw, want_tok) = (
                str_of(case, "ptb_raw", &name),
                str_of(case, "tokenized", &name),
            );
            let got_raw = raw.join(" ");
            if got_raw != want_raw {
                failures.push(format!("{name}: ptb_raw {got_raw:?}, want {want_raw:?}"));
            }
            if tok != want_tok {
                failures.push(format!("{name}: tokenized {tok:?}, want {want_tok:?}"));
            }
        }
        panic_on_failures("case outputs", 2 * cases.len(), &failures);
    }

    /// Captions with a Java line break: the Java lines of the caption alone, what a
    /// one-caption call returns, and the shift in a call with a following caption.
    #[test]
    fn line_break_cases_match_pycocoevalcap() {
        let f = cases_fixture();
        let cases = f["line_break_cases"]
            .as_array()
            .expect("`line_break_cases` is a list");
        assert!(cases.len() >= 6, "fixture line-break case count");
        let mut failures = Vec::new();
        for (i, case) in cases.iter().enumerate() {
            let caption = str_of(case, "caption", &format!("line-break case {i}"));
            let name = format!("line-break case {i} {caption:?}");
            let want_lines: Vec<&str> = case["java_lines"]
                .as_array()
                .unwrap_or_else(|| panic!("{name}: `java_lines` is not a list"))
                .iter()
                .map(|v| v.as_str().unwrap_or_else(|| panic!("{name}: java line")))
                .collect();
            // Every output line of a one-caption text (upstream only keeps the first).
            let got_lines: Vec<String> = Lexer::new(&caption.replace('\n', " "))
                .run()
                .iter()
                .map(|l| l.join(" "))
                .collect();
            if got_lines != want_lines {
                failures.push(format!(
                    "{name}: java lines {got_lines:?}, want {want_lines:?}"
                ));
            }
            let alone = ptb_tokenize_all(&[caption]);
            let want_alone = str_of(case, "tokenized_alone", &name);
            if alone != [want_alone] {
                failures.push(format!("{name}: alone {alone:?}, want [{want_alone:?}]"));
            }
            let batch = &case["in_batch_with_next"];
            let next = str_of(batch, "next_caption", &name);
            let got = ptb_tokenize_all(&[caption, next]);
            let want = [str_of(batch, "this", &name), str_of(batch, "next", &name)];
            if got != want {
                failures.push(format!("{name}: with next {next:?} {got:?}, want {want:?}"));
            }
        }
        panic_on_failures("line-break checks", 3 * cases.len(), &failures);
    }

    /// 1500 random captions of tokenizer-sensitive pieces and separators (exotic spaces, line
    /// breaks, invisible characters next to URLs, quotes, abbreviations) in one call: every
    /// Java output line of the joined text, and what upstream returns for each caption.
    #[test]
    fn random_captions_match_pycocoevalcap_exactly() {
        let path = crate::test_paths::fixture("caption-metrics/ptb-random.json");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let f: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let list = |key: &str| -> Vec<&str> {
            f[key]
                .as_array()
                .unwrap_or_else(|| panic!("`{key}` is not a list in the fixture"))
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    v.as_str()
                        .unwrap_or_else(|| panic!("{key}[{i}] is not a string in the fixture"))
                })
                .collect()
        };
        let captions = list("captions");
        let want_tok = list("tokenized");
        let want_lines = list("java_lines");
        assert_eq!(
            want_tok.len(),
            captions.len(),
            "fixture: one result per caption"
        );

        let mut failures = Vec::new();
        let joined = captions
            .iter()
            .map(|c| c.replace('\n', " "))
            .collect::<Vec<_>>()
            .join("\n");
        let got_lines: Vec<String> = Lexer::new(&joined)
            .run()
            .iter()
            .map(|l| l.join(" "))
            .collect();
        if got_lines.len() != want_lines.len() {
            failures.push(format!(
                "{} Java output lines, want {}",
                got_lines.len(),
                want_lines.len()
            ));
        }
        for (k, (g, w)) in got_lines.iter().zip(&want_lines).enumerate() {
            if g != w {
                failures.push(format!("java line {k}: {g:?}, want {w:?}"));
            }
        }
        let got = ptb_tokenize_all(&captions);
        assert_eq!(got.len(), captions.len(), "one result per caption");
        for (i, (g, w)) in got.iter().zip(&want_tok).enumerate() {
            if g != w {
                failures.push(format!(
                    "random case {i} {:?}: tokenized {g:?}, want {w:?}",
                    captions[i]
                ));
            }
        }
        panic_on_failures(
            "random-caption outputs",
            want_lines.len() + captions.len(),
            &failures,
        );
    }
}
