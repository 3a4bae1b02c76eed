//! JSON Lines reading shared by the dataset loaders: errors carry the file and 1-based line.

use std::io::{BufRead, BufReader};
use std::path::Path;

use serde::Deserialize;

use crate::error::{Result, TaskError};

/// Calls `f(line_number, value)` for each non-blank line of a JSON Lines file (1-based line
/// numbers; a UTF-8 BOM and `\r\n` endings are accepted).
pub fn for_each_json_line<T, F>(path: &Path, mut f: F) -> Result<()>
where
    T: for<'de> Deserialize<'de>,
    F: FnMut(usize, T) -> Result<()>,
{
    let file = std::fs::File::open(path).map_err(|e| TaskError::io(path, e))?;
    let mut reader = BufReader::new(file);
    let mut buf = Vec::new();
    let mut line = 0;
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| TaskError::io(path, e))?;
        if n == 0 {
            return Ok(());
        }
        line += 1;
        let mut bytes = buf.as_slice();
        if line == 1 {
            bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let value: T = serde_json::from_slice(bytes).map_err(|e| TaskError::Json {
            path: path.to_path_buf(),
            line: Some(line),
            msg: e.to_string(),
        })?;
        f(line, value)?;
    }
}
