//! Ports of Python's `html.unescape` and of ftfy's stricter `unescape_html`.

use std::borrow::Cow;

/// HTML5 entity names that also decode without a trailing semicolon (`html.entities.html5`).
const LEGACY_NAMES: [&str; 106] = [
    "AElig", "AMP", "Aacute", "Acirc", "Agrave", "Aring", "Atilde", "Auml", "COPY", "Ccedil",
    "ETH", "Eacute", "Ecirc", "Egrave", "Euml", "GT", "Iacute", "Icirc", "Igrave", "Iuml", "LT",
    "Ntilde", "Oacute", "Ocirc", "Ograve", "Oslash", "Otilde", "Ouml", "QUOT", "REG", "THORN",
    "Uacute", "Ucirc", "Ugrave", "Uuml", "Yacute", "aacute", "acirc", "acute", "aelig", "agrave",
    "amp", "aring", "atilde", "auml", "brvbar", "ccedil", "cedil", "cent", "copy", "curren", "deg",
    "divide", "eacute", "ecirc", "egrave", "eth", "euml", "frac12", "frac14", "frac34", "gt",
    "iacute", "icirc", "iexcl", "igrave", "iquest", "iuml", "laquo", "lt", "macr", "micro",
    "middot", "nbsp", "not", "ntilde", "oacute", "ocirc", "ograve", "ordf", "ordm", "oslash",
    "otilde", "ouml", "para", "plusmn", "pound", "quot", "raquo", "reg", "sect", "shy", "sup1",
    "sup2", "sup3", "szlig", "thorn", "times", "uacute", "ucirc", "ugrave", "uml", "uuml",
    "yacute", "yen", "yuml",
];

/// HTML5 entities whose value is two code points (`html_escape` 0.2 keeps only the first).
const TWO_CHAR_ENTITIES: [(&str, &str); 93] = [
    ("NotEqualTilde", "\u{2242}\u{338}"),
    ("NotGreaterFullEqual", "\u{2267}\u{338}"),
    ("NotGreaterGreater", "\u{226b}\u{338}"),
    ("NotGreaterSlantEqual", "\u{2a7e}\u{338}"),
    ("NotHumpDownHump", "\u{224e}\u{338}"),
    ("NotHumpEqual", "\u{224f}\u{338}"),
    ("NotLeftTriangleBar", "\u{29cf}\u{338}"),
    ("NotLessLess", "\u{226a}\u{338}"),
    ("NotLessSlantEqual", "\u{2a7d}\u{338}"),
    ("NotNestedGreaterGreater", "\u{2aa2}\u{338}"),
    ("NotNestedLessLess", "\u{2aa1}\u{338}"),
    ("NotPrecedesEqual", "\u{2aaf}\u{338}"),
    ("NotRightTriangleBar", "\u{29d0}\u{338}"),
    ("NotSquareSubset", "\u{228f}\u{338}"),
    ("NotSquareSuperset", "\u{2290}\u{338}"),
    ("NotSubset", "\u{2282}\u{20d2}"),
    ("NotSucceedsEqual", "\u{2ab0}\u{338}"),
    ("NotSucceedsTilde", "\u{227f}\u{338}"),
    ("NotSuperset", "\u{2283}\u{20d2}"),
    ("ThickSpace", "\u{205f}\u{200a}"),
    ("acE", "\u{223e}\u{333}"),
    ("bne", "=\u{20e5}"),
    ("bnequiv", "\u{2261}\u{20e5}"),
    ("caps", "\u{2229}\u{fe00}"),
    ("cups", "\u{222a}\u{fe00}"),
    ("fjlig", "fj"),
    ("gesl", "\u{22db}\u{fe00}"),
    ("gvertneqq", "\u{2269}\u{fe00}"),
    ("gvnE", "\u{2269}\u{fe00}"),
    ("lates", "\u{2aad}\u{fe00}"),
    ("lesg", "\u{22da}\u{fe00}"),
    ("lvertneqq", "\u{2268}\u{fe00}"),
    ("lvnE", "\u{2268}\u{fe00}"),
    ("nGg", "\u{22d9}\u{338}"),
    ("nGt", "\u{226b}\u{20d2}"),
    ("nGtv", "\u{226b}\u{338}"),
    ("nLl", "\u{22d8}\u{338}"),
    ("nLt", "\u{226a}\u{20d2}"),
    ("nLtv", "\u{226a}\u{338}"),
    ("nang", "\u{2220}\u{20d2}"),
    ("napE", "\u{2a70}\u{338}"),
    ("napid", "\u{224b}\u{338}"),
    ("nbump", "\u{224e}\u{338}"),
    ("nbumpe", "\u{224f}\u{338}"),
    ("ncongdot", "\u{2a6d}\u{338}"),
    ("nedot", "\u{2250}\u{338}"),
    ("nesim", "\u{2242}\u{338}"),
    ("ngE", "\u{2267}\u{338}"),
    ("ngeqq", "\u{2267}\u{338}"),
    ("ngeqslant", "\u{2a7e}\u{338}"),
    ("nges", "\u{2a7e}\u{338}"),
    ("nlE", "\u{2266}\u{338}"),
    ("nleqq", "\u{2266}\u{338}"),
    ("nleqslant", "\u{2a7d}\u{338}"),
    ("nles", "\u{2a7d}\u{338}"),
    ("notinE", "\u{22f9}\u{338}"),
    ("notindot", "\u{22f5}\u{338}"),
    ("nparsl", "\u{2afd}\u{20e5}"),
    ("npart", "\u{2202}\u{338}"),
    ("npre", "\u{2aaf}\u{338}"),
    ("npreceq", "\u{2aaf}\u{338}"),
    ("nrarrc", "\u{2933}\u{338}"),
    ("nrarrw", "\u{219d}\u{338}"),
    ("nsce", "\u{2ab0}\u{338}"),
    ("nsubE", "\u{2ac5}\u{338}"),
    ("nsubset", "\u{2282}\u{20d2}"),
    ("nsubseteqq", "\u{2ac5}\u{338}"),
    ("nsucceq", "\u{2ab0}\u{338}"),
    ("nsupE", "\u{2ac6}\u{338}"),
    ("nsupset", "\u{2283}\u{20d2}"),
    ("nsupseteqq", "\u{2ac6}\u{338}"),
    ("nvap", "\u{224d}\u{20d2}"),
    ("nvge", "\u{2265}\u{20d2}"),
    ("nvgt", ">\u{20d2}"),
    ("nvle", "\u{2264}\u{20d2}"),
    ("nvlt", "<\u{20d2}"),
    ("nvltrie", "\u{22b4}\u{20d2}"),
    ("nvrtrie", "\u{22b5}\u{20d2}"),
    ("nvsim", "\u{223c}\u{20d2}"),
    ("race", "\u{223d}\u{331}"),
    ("smtes", "\u{2aac}\u{fe00}"),
    ("sqcaps", "\u{2293}\u{fe00}"),
    ("sqcups", "\u{2294}\u{fe00}"),
    ("varsubsetneq", "\u{228a}\u{fe00}"),
    ("varsubsetneqq", "\u{2acb}\u{fe00}"),
    ("varsupsetneq", "\u{228b}\u{fe00}"),
    ("varsupsetneqq", "\u{2acc}\u{fe00}"),
    ("vnsub", "\u{2282}\u{20d2}"),
    ("vnsup", "\u{2283}\u{20d2}"),
    ("vsubnE", "\u{2acb}\u{fe00}"),
    ("vsubne", "\u{228a}\u{fe00}"),
    ("vsupnE", "\u{2acc}\u{fe00}"),
    ("vsupne", "\u{228b}\u{fe00}"),
];

/// The value of the HTML5 entity `&name;`, if `name` is one.
pub(super) fn entity(name: &str) -> Option<String> {
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    if let Ok(i) = TWO_CHAR_ENTITIES.binary_search_by(|(n, _)| n.cmp(&name)) {
        return Some(TWO_CHAR_ENTITIES[i].1.to_owned());
    }
    let reference = format!("&{name};");
    match html_escape::decode_html_entities(&reference) {
        Cow::Owned(value) if value != reference => Some(value),
        _ => None,
    }
}

fn legacy_entity(name: &str) -> Option<String> {
    LEGACY_NAMES
        .binary_search(&name)
        .ok()
        .and_then(|_| entity(name))
}

/// What Python's `html` module turns the numeric reference `&#num;` into.
fn numeric(num: u32) -> Cow<'static, str> {
    let c = match num {
        0x00 => '\u{fffd}',
        0x0d => '\r',
        0x80..=0x9f => super::ftfy::windows_1252_c1(num),
        0xd800..=0xdfff | 0x11_0000.. => '\u{fffd}',
        0x01..=0x08 | 0x0b | 0x0e..=0x1f | 0x7f | 0xfdd0..=0xfdef => return Cow::Borrowed(""),
        n if n & 0xfffe == 0xfffe => return Cow::Borrowed(""),
        n => char::from_u32(n).unwrap_or('\u{fffd}'),
    };
    Cow::Owned(c.to_string())
}

/// Matches Python's `_charref` pattern right after a `&`; returns the bytes consumed and the
/// replacement text.
fn charref(rest: &str) -> Option<(usize, Cow<'_, str>)> {
    let bytes = rest.as_bytes();
    if bytes.first() == Some(&b'#') {
        let (radix, digits_at) = match bytes.get(1) {
            Some(b'x' | b'X') => (16, 2),
            _ => (10, 1),
        };
        let digits = bytes[digits_at..]
            .iter()
            .take_while(|b| {
                if radix == 16 {
                    b.is_ascii_hexdigit()
                } else {
                    b.is_ascii_digit()
                }
            })
            .count();
        if digits == 0 {
            return None;
        }
        let num = rest[digits_at..digits_at + digits]
            .chars()
            .filter_map(|c| c.to_digit(radix))
            .fold(0u32, |acc, d| acc.saturating_mul(radix).saturating_add(d));
        let mut end = digits_at + digits;
        if bytes.get(end) == Some(&b';') {
            end += 1;
        }
        return Some((end, numeric(num)));
    }
    let name_end = rest
        .char_indices()
        .take_while(|&(_, c)| !matches!(c, '\t' | '\n' | '\u{c}' | ' ' | '<' | '&' | '#' | ';'))
        .take(32)
        .last()
        .map(|(i, c)| i + c.len_utf8())?;
    let name = &rest[..name_end];
    if bytes.get(name_end) == Some(&b';') {
        let end = name_end + 1;
        if let Some(value) = entity(name) {
            return Some((end, Cow::Owned(value)));
        }
        Some((end, longest_prefix(&rest[..end])))
    } else {
        if let Some(value) = legacy_entity(name) {
            return Some((name_end, Cow::Owned(value)));
        }
        Some((name_end, longest_prefix(name)))
    }
}

/// Python's fallback for an unknown name `s`: the longest prefix (of at least two characters,
/// shorter than `s`) that is an entity without semicolon, else `&s` unchanged.
fn longest_prefix(s: &str) -> Cow<'_, str> {
    let bounds: Vec<usize> = s.char_indices().map(|(i, _)| i).collect();
    for &at in bounds.iter().skip(2).rev() {
        if let Some(value) = legacy_entity(&s[..at]) {
            return Cow::Owned(value + &s[at..]);
        }
    }
    Cow::Owned(format!("&{s}"))
}

/// Python's `html.unescape`: named (with and without `;`), decimal and hex references.
pub(super) fn unescape(s: &str) -> Cow<'_, str> {
    if !s.contains('&') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut pos = 0;
    while let Some(offset) = s[pos..].find('&') {
        let amp = pos + offset;
        out.push_str(&s[pos..amp]);
        match charref(&s[amp + 1..]) {
            Some((consumed, value)) => {
                out.push_str(&value);
                pos = amp + 1 + consumed;
            }
            None => {
                out.push('&');
                pos = amp + 1;
            }
        }
    }
    out.push_str(&s[pos..]);
    Cow::Owned(out)
}

/// ftfy's `unescape_html`: only `&name;` / `&#...;` forms of 1 to 24 ASCII letters or digits,
/// plus all-caps spellings such as `&EACUTE;` of lowercase entities.
pub(super) fn ftfy_unescape(s: &str) -> Cow<'_, str> {
    if !s.contains('&') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut pos = 0;
    while let Some(offset) = s[pos..].find('&') {
        let amp = pos + offset;
        out.push_str(&s[pos..amp]);
        let bytes = &s.as_bytes()[amp + 1..];
        let hash = usize::from(bytes.first() == Some(&b'#'));
        let run = bytes[hash..]
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric())
            .count();
        if (1..=24).contains(&run) && bytes.get(hash + run) == Some(&b';') {
            let end = amp + 1 + hash + run + 1;
            let reference = &s[amp..end];
            out.push_str(&ftfy_entity(reference, hash == 1).unwrap_or(Cow::Borrowed(reference)));
            pos = end;
        } else {
            out.push('&');
            pos = amp + 1;
        }
    }
    out.push_str(&s[pos..]);
    Cow::Owned(out)
}

/// ftfy's `_unescape_fixup` for a matched `&...;`.
fn ftfy_entity(reference: &str, numeric_form: bool) -> Option<Cow<'_, str>> {
    if numeric_form {
        let value = unescape(reference);
        return (!value.contains(';')).then_some(value);
    }
    let name = &reference[1..reference.len() - 1];
    if let Some(value) = entity(name) {
        return Some(Cow::Owned(value));
    }
    // ftfy also accepts `&NAME;` for a lowercase entity `&name;` when Python's unescape
    // leaves `&NAME;` alone, decoding it to the uppercased value.
    let lower = name.to_ascii_lowercase();
    if name.bytes().any(|b| b.is_ascii_lowercase()) || unescape(reference) != reference {
        return None;
    }
    entity(&lower).map(|value| Cow::Owned(value.to_uppercase()))
}
