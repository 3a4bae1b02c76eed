//! The CLIP byte-level BPE vocabulary shipped inside the crate, and the byte <-> character table.
//!
//! `assets/clip_bpe_merges.txt.gz` holds the merges of `open_clip`'s `bpe_simple_vocab_16e6.txt.gz`
//! that `open_clip` uses (`merges[1:49152-256-2+1]`): a header line, then one merge `a b` a line.
//! `open_clip` builds the vocabulary from them as below, so ids are its ids.

use std::io::Read;
use std::sync::LazyLock;

use tokenizers::Tokenizer;
use tokenizers::models::bpe::{BPE, Vocab};

use super::{END_OF_WORD, EOT, EOT_TOKEN, SOT, SOT_TOKEN};

/// The gzip-compressed merges list.
const MERGES_GZ: &[u8] = include_bytes!("../../assets/clip_bpe_merges.txt.gz");

/// How many merges `open_clip` uses: `49152 - 256 - 2` (lines 1 to 48894 of the file).
pub(super) const N_MERGES: usize = 49152 - 256 - 2;

/// Size of the vocabulary: 256 byte characters, the same with `</w>`, the merges, SOT and EOT.
pub(super) const VOCAB_SIZE: usize = 49408;
const _: () = assert!(VOCAB_SIZE == 2 * 256 + N_MERGES + 2);

/// GPT-2/CLIP `bytes_to_unicode`: the printable character that stands for each byte.
pub(super) static BYTE_ENCODER: LazyLock<[char; 256]> = LazyLock::new(|| {
    let printable = |b: u32| {
        (0x21..=0x7e).contains(&b) || (0xa1..=0xac).contains(&b) || (0xae..=0xff).contains(&b)
    };
    let mut table = ['\0'; 256];
    let mut next = 256u32;
    for (b, slot) in (0u32..).zip(table.iter_mut()) {
        let code = if printable(b) {
            b
        } else {
            next += 1;
            next - 1
        };
        *slot = char::from_u32(code).unwrap_or('\u{fffd}');
    }
    table
});

/// Inverse of [`BYTE_ENCODER`], indexed by code point (all of them are below U+0144).
static BYTE_DECODER: LazyLock<Vec<Option<u8>>> = LazyLock::new(|| {
    let mut table = vec![None; 0x144];
    for (b, &c) in (0u8..=255).zip(BYTE_ENCODER.iter()) {
        if let Some(slot) = table.get_mut(c as usize) {
            *slot = Some(b);
        }
    }
    table
});

/// The byte a byte-level character stands for.
pub(super) fn byte_of(c: char) -> Option<u8> {
    BYTE_DECODER.get(c as usize).copied().flatten()
}

/// The byte-level characters in vocabulary order: `bytes_to_unicode().values()`, which lists the
/// printable bytes (mapped to themselves) first and then the others (mapped to U+0100 onwards),
/// i.e. in code point order.
fn byte_characters() -> Vec<char> {
    let mut chars = BYTE_ENCODER.to_vec();
    chars.sort_unstable();
    chars
}

/// Parses the merges text: skips the header line, takes the next [`N_MERGES`] lines.
fn parse_merges(text: &str) -> Result<Vec<(String, String)>, String> {
    let merges = text
        .split('\n')
        .skip(1)
        .take(N_MERGES)
        .enumerate()
        .map(|(i, line)| {
            let mut parts = line.split_whitespace();
            match (parts.next(), parts.next(), parts.next()) {
                (Some(a), Some(b), None) => Ok((a.to_owned(), b.to_owned())),
                _ => Err(format!("merge line {} is not two tokens: {line:?}", i + 2)),
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    if merges.len() != N_MERGES {
        return Err(format!("has {} merges, expected {N_MERGES}", merges.len()));
    }
    Ok(merges)
}

/// `open_clip`'s vocabulary for `merges`: byte characters, byte characters + `</w>`, each merge
/// joined, then SOT and EOT (spelled as in the Hugging Face CLIP `tokenizer.json`).
fn build_vocab(merges: &[(String, String)]) -> Result<Vocab, String> {
    let bytes = byte_characters();
    let tokens = bytes
        .iter()
        .map(char::to_string)
        .chain(bytes.iter().map(|c| format!("{c}{END_OF_WORD}")))
        .chain(merges.iter().map(|(a, b)| format!("{a}{b}")))
        .chain([SOT_TOKEN.to_owned(), EOT_TOKEN.to_owned()]);
    let mut vocab = Vocab::default();
    for (id, token) in (0u32..).zip(tokens) {
        if let Some(first) = vocab.insert(token.clone(), id) {
            return Err(format!(
                "token {token:?} appears twice (ids {first} and {id})"
            ));
        }
    }
    if vocab.len() != VOCAB_SIZE {
        return Err(format!(
            "vocabulary has {} tokens, expected {VOCAB_SIZE}",
            vocab.len()
        ));
    }
    for (token, id) in [(SOT_TOKEN, SOT), (EOT_TOKEN, EOT)] {
        if vocab.get(token) != Some(&id) {
            return Err(format!("`{token}` does not get id {id}"));
        }
    }
    Ok(vocab)
}

/// Decompresses the embedded merges and builds the BPE with the settings of the CLIP
/// `tokenizer.json` (`</w>` word ends, empty continuing-subword prefix, EOT as unknown token).
pub(super) fn build() -> Result<Tokenizer, String> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(MERGES_GZ)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot decompress the embedded merges: {e}"))?;
    let merges = parse_merges(&text)?;
    let vocab = build_vocab(&merges)?;
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .continuing_subword_prefix(String::new())
        .end_of_word_suffix(END_OF_WORD.to_owned())
        .unk_token(EOT_TOKEN.to_owned())
        .build()
        .map_err(|e| format!("cannot build the BPE: {e}"))?;
    Ok(Tokenizer::new(bpe))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_merges_checks_the_lines() {
        let mut text = String::from("#version: 0.2\n");
        for i in 0..N_MERGES + 5 {
            text.push_str(&format!("a{i} b\n"));
        }
        let merges = parse_merges(&text).expect("valid merges");
        assert_eq!(merges.len(), N_MERGES);
        assert_eq!(merges[0], ("a0".to_owned(), "b".to_owned()));
        assert_eq!(merges[N_MERGES - 1].0, format!("a{}", N_MERGES - 1));

        let short = "#version: 0.2\na b\nc d\n";
        assert!(parse_merges(short).is_err());
        let three = text.replacen("a7 b", "a7 b c", 1);
        let err = parse_merges(&three).expect_err("three tokens");
        assert!(err.contains("line 9"), "{err}");
    }

    #[test]
    fn byte_characters_are_bytes_to_unicode_values_in_order() {
        let chars = byte_characters();
        // Printable ASCII first, then ¡..¬, ®..ÿ, then U+0100.. for the other 68 bytes.
        assert_eq!(chars[0], '!');
        assert_eq!(chars[93], '~');
        assert_eq!(chars[94], '¡');
        assert_eq!(chars[188], '\u{100}');
        assert_eq!(chars[255], '\u{143}');
        assert_eq!(byte_of(chars[188]), Some(0));
        assert_eq!(byte_of('Ġ'), Some(b' '));
    }
}
