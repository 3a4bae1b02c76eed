//! The CLIP text tokenizer, producing the same token ids as `open_clip` 3.3.0's `SimpleTokenizer`.
//!
//! The CLIP BPE vocabulary ships inside the crate ([`ClipTokenizer::builtin`]), so no file or
//! network is needed; a `tokenizer.json` can still be loaded ([`ClipTokenizer::from_file`]).
//!
//! `open_clip` cleans text before byte-level BPE: `ftfy.fix_text`, `html.unescape` twice, strip,
//! whitespace runs collapsed to one space, lowercase. A `tokenizer.json` only carries part of that
//! (NFC, whitespace, lowercase) and a different split pattern, so this module does the cleaning and
//! the pre-tokenization itself (ports of ftfy 6.3 and Python's `html.unescape` are in submodules)
//! and uses the BPE model only.

use std::borrow::Cow;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};

use tokenizers::models::ModelWrapper;
use tokenizers::utils::SysRegex;
use tokenizers::{Model, Tokenizer};

use crate::error::{CocaError, Result};

mod ftfy;
mod html;
#[cfg(test)]
mod tests;
mod vocab;

use vocab::{BYTE_ENCODER, byte_of};

/// Id of the start-of-text token `<start_of_text>` (`<|startoftext|>` in `tokenizer.json`).
pub const SOT: u32 = 49406;
/// Id of the end-of-text token `<end_of_text>` (`<|endoftext|>` in `tokenizer.json`).
pub const EOT: u32 = 49407;
/// Id used to pad encodings to the context length (it is also the vocabulary token `!`).
pub const PAD: u32 = 0;

const SOT_TOKEN: &str = "<|startoftext|>";
const EOT_TOKEN: &str = "<|endoftext|>";
/// The special-token spellings `open_clip`'s split pattern recognises inside text.
const SOT_TEXT: &str = "<start_of_text>";
const EOT_TEXT: &str = "<end_of_text>";
const END_OF_WORD: &str = "</w>";
/// What errors about the builtin tokenizer name as its path.
const BUILTIN_NAME: &str = "<builtin CLIP BPE>";

/// `open_clip`'s split pattern, which it compiles with `regex.IGNORECASE`. Text is already lowercase
/// when it is split, so the only case-insensitive effects left are `ſ` matching `s`, and U+0345
/// (which case-folds to a letter) matching neither the letter class nor its negation.
const SPLIT_PATTERN: &str = concat!(
    "<[s\u{17f}]tart_of_text>|<end_of_text>|'[s\u{17f}]|'t|'re|'ve|'m|'ll|'d",
    r"|\p{L}+|\p{N}|[^\s\p{L}\p{N}\x{345}]+",
);

static SPLIT_RE: LazyLock<Option<SysRegex>> = LazyLock::new(|| SysRegex::new(SPLIT_PATTERN).ok());

/// The CLIP byte-level BPE tokenizer with `open_clip`'s text cleaning.
///
/// Cloning is cheap: clones share the BPE model.
#[derive(Clone)]
pub struct ClipTokenizer {
    tokenizer: Arc<Tokenizer>,
    /// The `tokenizer.json` it was loaded from; `None` for the builtin vocabulary.
    source: Option<PathBuf>,
}

impl fmt::Debug for ClipTokenizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let source = match &self.source {
            Some(path) => Cow::Owned(path.display().to_string()),
            None => Cow::Borrowed("builtin"),
        };
        f.debug_struct("ClipTokenizer")
            .field("source", &source)
            .field("vocab_size", &self.vocab_size())
            .finish_non_exhaustive()
    }
}

/// The builtin tokenizer, built once from the embedded vocabulary.
static BUILTIN: LazyLock<std::result::Result<ClipTokenizer, String>> = LazyLock::new(|| {
    let tokenizer = vocab::build()?;
    if SPLIT_RE.is_none() {
        return Err("the CLIP split pattern does not compile".into());
    }
    Ok(ClipTokenizer {
        tokenizer: Arc::new(tokenizer),
        source: None,
    })
});

impl ClipTokenizer {
    /// The CLIP BPE vocabulary shipped inside the crate (the merges of `open_clip`'s
    /// `bpe_simple_vocab_16e6.txt.gz`, ids equal to `open_clip`'s). It is decompressed and built
    /// on the first call; later calls return a cheap clone.
    ///
    /// # Errors
    /// [`CocaError::Tokenizer`] if the embedded vocabulary cannot be built (a broken build).
    pub fn builtin() -> Result<Self> {
        BUILTIN.clone().map_err(|reason| CocaError::Tokenizer {
            path: PathBuf::from(BUILTIN_NAME),
            reason,
        })
    }

    /// The tokenizer at `path` ([`from_file`](Self::from_file)), or the [`builtin`](Self::builtin)
    /// one for `None`.
    ///
    /// # Errors
    /// Those of [`from_file`](Self::from_file) or [`builtin`](Self::builtin).
    pub fn load(path: Option<&Path>) -> Result<Self> {
        match path {
            Some(path) => Self::from_file(path),
            None => Self::builtin(),
        }
    }

    /// The `tokenizer.json` this tokenizer was loaded from; `None` for the builtin one.
    pub fn source(&self) -> Option<&Path> {
        self.source.as_deref()
    }

    /// Loads a CLIP `tokenizer.json` (HF tokenizers format) and checks that it is the byte-level
    /// BPE with `</w>` word ends and the ids 49406/49407 for start/end of text.
    ///
    /// # Errors
    /// [`CocaError::Io`] if the file cannot be read, [`CocaError::Tokenizer`] (naming the path) if
    /// it is not such a tokenizer.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let bytes = std::fs::read(&path).map_err(|source| CocaError::io(&path, source))?;
        let invalid = |reason: String| CocaError::Tokenizer {
            path: path.clone(),
            reason,
        };
        let tokenizer =
            Tokenizer::from_bytes(&bytes).map_err(|e| invalid(format!("cannot parse: {e}")))?;
        let ModelWrapper::BPE(bpe) = tokenizer.get_model() else {
            return Err(invalid("the model is not BPE".into()));
        };
        if bpe.end_of_word_suffix.as_deref() != Some(END_OF_WORD) {
            return Err(invalid(format!(
                "the BPE end-of-word suffix is not `{END_OF_WORD}`"
            )));
        }
        for (token, id) in [(SOT_TOKEN, SOT), (EOT_TOKEN, EOT)] {
            if tokenizer.token_to_id(token) != Some(id) {
                return Err(invalid(format!("`{token}` does not have id {id}")));
            }
        }
        for &c in BYTE_ENCODER.iter() {
            for token in [c.to_string(), format!("{c}{END_OF_WORD}")] {
                if bpe.token_to_id(&token).is_none() {
                    return Err(invalid(format!(
                        "the byte-level token `{token}` is missing"
                    )));
                }
            }
        }
        if SPLIT_RE.is_none() {
            return Err(invalid("the CLIP split pattern does not compile".into()));
        }
        Ok(Self {
            tokenizer: Arc::new(tokenizer),
            source: Some(path),
        })
    }

    /// `open_clip`'s text cleaning: `ftfy.fix_text`, `html.unescape` twice, strip, whitespace runs
    /// collapsed to one space, lowercase.
    pub fn clean(text: &str) -> String {
        collapse_and_lower(&unescape_twice(&ftfy::fix_text(text)))
    }

    /// Encodes `text` as `[SOT] + bpe + [EOT]`, truncated to `context_length` with the last token
    /// forced to EOT, then padded with [`PAD`] to exactly `context_length` ids.
    ///
    /// # Errors
    /// [`CocaError::Invalid`] if `context_length` is 0; [`CocaError::Tokenizer`] if BPE fails.
    pub fn encode(&self, text: &str, context_length: usize) -> Result<Vec<u32>> {
        if context_length == 0 {
            return Err(CocaError::Invalid(
                "context_length must be at least 1".into(),
            ));
        }
        let mut ids = self.encode_unpadded(text)?;
        if ids.len() > context_length {
            ids.truncate(context_length);
            if let Some(last) = ids.last_mut() {
                *last = EOT;
            }
        }
        ids.resize(context_length, PAD);
        Ok(ids)
    }

    /// [`encode`](Self::encode) for each text.
    ///
    /// # Errors
    /// The first error of [`encode`](Self::encode).
    pub fn encode_batch(&self, texts: &[&str], context_length: usize) -> Result<Vec<Vec<u32>>> {
        texts
            .iter()
            .map(|text| self.encode(text, context_length))
            .collect()
    }

    /// Encodes `text` as `[SOT] + bpe + [EOT]`, without truncation or padding.
    ///
    /// # Errors
    /// [`CocaError::Tokenizer`] if the BPE model fails on a word.
    pub fn encode_unpadded(&self, text: &str) -> Result<Vec<u32>> {
        let cleaned = Self::clean(text);
        let split = SPLIT_RE
            .as_ref()
            .ok_or_else(|| self.error("the CLIP split pattern does not compile".into()))?;
        let model = self.tokenizer.get_model();
        let mut ids = vec![SOT];
        for (start, end) in split.find_iter(&cleaned) {
            let piece = &cleaned[start..end];
            match piece {
                SOT_TEXT => ids.push(SOT),
                EOT_TEXT => ids.push(EOT),
                _ => {
                    let word: String = piece
                        .bytes()
                        .map(|b| BYTE_ENCODER[usize::from(b)])
                        .collect();
                    let tokens = model
                        .tokenize(&word)
                        .map_err(|e| self.error(format!("cannot tokenize {piece:?}: {e}")))?;
                    ids.extend(tokens.iter().map(|token| token.id));
                }
            }
        }
        ids.push(EOT);
        Ok(ids)
    }

    /// Decodes ids to text like `open_clip`'s `decode`: stops at the first [`EOT`], drops [`SOT`] and
    /// trailing [`PAD`]s (id 0 is also the token `!`, so zeros inside the text are kept), maps the
    /// byte-level characters back to UTF-8 (invalid sequences become U+FFFD), turns `</w>` into a
    /// space, and trims.
    ///
    /// # Errors
    /// [`CocaError::Tokenizer`] for an id outside the vocabulary.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        let end = ids.iter().position(|&id| id == EOT).unwrap_or(ids.len());
        let mut body = &ids[..end];
        while let [rest @ .., PAD] = body {
            body = rest;
        }
        let model = self.tokenizer.get_model();
        let mut bytes = Vec::with_capacity(body.len() * 4);
        for &id in body.iter().filter(|&&id| id != SOT) {
            let token = model
                .id_to_token(id)
                .ok_or_else(|| self.error(format!("token id {id} is not in the vocabulary")))?;
            for c in token.chars() {
                let byte = byte_of(c).ok_or_else(|| {
                    self.error(format!(
                        "token id {id} ({token:?}) is not a byte-level token"
                    ))
                })?;
                bytes.push(byte);
            }
        }
        let text = String::from_utf8_lossy(&bytes).replace(END_OF_WORD, " ");
        Ok(text.trim().to_owned())
    }

    /// Number of ids in the vocabulary (49408 for CLIP), special tokens included.
    pub fn vocab_size(&self) -> usize {
        self.tokenizer.get_vocab_size(true)
    }

    fn error(&self, reason: String) -> CocaError {
        CocaError::Tokenizer {
            path: self
                .source
                .clone()
                .unwrap_or_else(|| PathBuf::from(BUILTIN_NAME)),
            reason,
        }
    }
}

/// `open_clip`'s second cleaning step: `html.unescape(html.unescape(text))`.
fn unescape_twice(text: &str) -> String {
    html::unescape(&html::unescape(text)).into_owned()
}

/// `open_clip`'s last cleaning steps: `" ".join(text.strip().split()).lower()`.
fn collapse_and_lower(text: &str) -> String {
    text.split(py_isspace)
        .filter(|word| !word.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Python's `str.isspace`: Unicode White_Space plus the separators U+001C..=U+001F.
fn py_isspace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Replaces every match of `re` in `text` with `replace(matched)`.
fn replace_matches<'t>(
    re: Option<&SysRegex>,
    text: &'t str,
    mut replace: impl FnMut(&'t str) -> Cow<'t, str>,
) -> Cow<'t, str> {
    let Some(re) = re else {
        return Cow::Borrowed(text);
    };
    let mut out = String::new();
    let mut last = 0;
    let mut matched = false;
    for (start, end) in re.find_iter(text) {
        matched = true;
        out.push_str(&text[last..start]);
        out.push_str(&replace(&text[start..end]));
        last = end;
    }
    if !matched {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[last..]);
    Cow::Owned(out)
}
