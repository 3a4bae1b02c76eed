//! NumPy `.npz` archives (a zip of `.npy` files, as `np.savez` writes them): big_vision's
//! checkpoint format.
//!
//! Arrays keep their dtype descriptor and raw bytes, so saving what was read writes every array
//! back byte for byte (and each `.npy` entry with numpy's own header layout).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;

use crate::error::{CocaError, Result};

/// One array of an archive: numpy's dtype descriptor (e.g. `<f4`), shape, and the raw C-order
/// bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyArray {
    /// numpy's `descr`, e.g. `<f4`, `|u1`.
    pub descr: String,
    /// Dimensions (empty for a 0-d array).
    pub shape: Vec<usize>,
    /// The values' bytes in C order.
    pub data: Vec<u8>,
}

impl NpyArray {
    /// A little-endian float32 array.
    pub fn from_f32(shape: Vec<usize>, values: &[f32]) -> Self {
        Self {
            descr: "<f4".into(),
            shape,
            data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The values as f32 (from f32, f64, integer or bool arrays); `None` for other dtypes.
    pub fn to_f32(&self) -> Option<Vec<f32>> {
        let d = &self.data;
        let (order, kind) = self.descr.split_at(1);
        let le = match order {
            "<" | "|" | "=" => true,
            ">" => false,
            _ => return None,
        };
        macro_rules! conv {
            ($t:ty, $n:expr) => {
                d.chunks_exact($n)
                    .map(|c| {
                        let b: [u8; $n] = c.try_into().unwrap_or([0; $n]);
                        (if le {
                            <$t>::from_le_bytes(b)
                        } else {
                            <$t>::from_be_bytes(b)
                        }) as f32
                    })
                    .collect()
            };
        }
        Some(match kind {
            "f4" => conv!(f32, 4),
            "f8" => conv!(f64, 8),
            "i1" => d.iter().map(|&b| b as i8 as f32).collect(),
            "u1" | "b1" => d.iter().map(|&b| f32::from(b)).collect(),
            "i2" => conv!(i16, 2),
            "u2" => conv!(u16, 2),
            "i4" => conv!(i32, 4),
            "u4" => conv!(u32, 4),
            "i8" => conv!(i64, 8),
            "u8" => conv!(u64, 8),
            _ => return None,
        })
    }

    /// Parses one `.npy` file (format versions 1, 2 and 3, C order).
    pub fn parse(bytes: &[u8]) -> std::result::Result<Self, String> {
        if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
            return Err("not a .npy array (bad magic)".into());
        }
        let (hlen, start) = match bytes[6] {
            1 => (usize::from(u16::from_le_bytes([bytes[8], bytes[9]])), 10),
            2 | 3 if bytes.len() >= 12 => (
                u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
                12,
            ),
            v => return Err(format!("unsupported .npy format version {v}")),
        };
        let header = bytes
            .get(start..start + hlen)
            .ok_or("truncated .npy header")?;
        let header = std::str::from_utf8(header).map_err(|_| "non-UTF-8 .npy header")?;
        let descr = header_value(header, "descr")
            .and_then(|v| {
                let q = v.chars().next().filter(|c| *c == '\'' || *c == '"')?;
                v[1..].split(q).next().map(str::to_string)
            })
            .ok_or("no descr string in the .npy header")?;
        if header_value(header, "fortran_order").is_some_and(|v| v.starts_with("True")) {
            return Err("Fortran-order arrays are not supported".into());
        }
        let shape_s = header_value(header, "shape").ok_or("no shape in the .npy header")?;
        let inner = shape_s
            .strip_prefix('(')
            .and_then(|s| s.split(')').next())
            .ok_or("bad shape in the .npy header")?;
        let shape = inner
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<usize>()
                    .map_err(|_| format!("bad dimension `{s}`"))
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let item = descr
            .get(2..)
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| format!("unsupported dtype `{descr}`"))?;
        let data = &bytes[start + hlen..];
        let want = shape.iter().product::<usize>() * item;
        if data.len() != want {
            return Err(format!(
                "{} data bytes, shape {shape:?} of {descr} needs {want}",
                data.len()
            ));
        }
        Ok(Self {
            descr,
            shape,
            data: data.to_vec(),
        })
    }

    /// The `.npy` bytes, laid out as numpy's `write_array` does (format 1.0, header padded
    /// to 64 bytes).
    pub fn to_npy(&self) -> Vec<u8> {
        let shape = match self.shape.len() {
            0 => "()".to_string(),
            1 => format!("({},)", self.shape[0]),
            _ => format!(
                "({})",
                self.shape
                    .iter()
                    .map(usize::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let mut header = format!(
            "{{'descr': '{}', 'fortran_order': False, 'shape': {shape}, }}",
            self.descr
        );
        let pad = 64 - (10 + header.len() + 1) % 64;
        header.extend(std::iter::repeat_n(' ', pad % 64));
        header.push('\n');
        let mut out = Vec::with_capacity(10 + header.len() + self.data.len());
        out.extend_from_slice(b"\x93NUMPY\x01\x00");
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(&self.data);
        out
    }
}

/// The text after `'key':` in a `.npy` header dict, up to the end.
fn header_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let pat1 = format!("'{key}':");
    let pat2 = format!("\"{key}\":");
    let i = header
        .find(&pat1)
        .map(|i| i + pat1.len())
        .or_else(|| header.find(&pat2).map(|i| i + pat2.len()))?;
    Some(header[i..].trim_start())
}

/// Reads every array of an `.npz` file, keyed by entry name without `.npy` (stored or
/// deflated entries).
pub fn read_npz(path: &Path) -> Result<BTreeMap<String, NpyArray>> {
    let bad = |reason: String| CocaError::Checkpoint {
        path: path.to_path_buf(),
        reason,
    };
    let file = std::fs::File::open(path).map_err(|e| CocaError::io(path, e))?;
    let mut zip = zip::ZipArchive::new(std::io::BufReader::new(file))
        .map_err(|e| bad(format!("not a .npz (zip) archive: {e}")))?;
    let mut out = BTreeMap::new();
    for i in 0..zip.len() {
        let mut entry = zip
            .by_index(i)
            .map_err(|e| bad(format!("zip entry {i}: {e}")))?;
        let name = entry
            .name()
            .map_err(|e| bad(format!("zip entry {i}: {e}")))?
            .to_string();
        let key = name.strip_suffix(".npy").unwrap_or(&name).to_string();
        let mut bytes = Vec::with_capacity(usize::try_from(entry.size()).unwrap_or(0));
        entry
            .read_to_end(&mut bytes)
            .map_err(|e| bad(format!("{name}: {e}")))?;
        let array = NpyArray::parse(&bytes).map_err(|e| bad(format!("{name}: {e}")))?;
        out.insert(key, array);
    }
    Ok(out)
}

/// Writes arrays as an uncompressed `.npz` (`np.savez`): one `<key>.npy` entry each, in key
/// order.
pub fn write_npz(path: &Path, arrays: &BTreeMap<String, NpyArray>) -> Result<()> {
    let bad = |reason: String| CocaError::Checkpoint {
        path: path.to_path_buf(),
        reason,
    };
    let file = std::fs::File::create(path).map_err(|e| CocaError::io(path, e))?;
    let mut zip = zip::ZipWriter::new(std::io::BufWriter::new(file));
    for (key, array) in arrays {
        let bytes = array.to_npy();
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .large_file(bytes.len() >= u32::MAX as usize);
        zip.start_file(format!("{key}.npy"), options)
            .map_err(|e| bad(format!("{key}: {e}")))?;
        zip.write_all(&bytes)
            .map_err(|e| bad(format!("{key}: {e}")))?;
    }
    let mut inner = zip.finish().map_err(|e| bad(e.to_string()))?;
    inner.flush().map_err(|e| CocaError::io(path, e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_headers_parse_back_for_every_rank() {
        for shape in [vec![], vec![3], vec![2, 3], vec![1, 2, 3, 4]] {
            let n: usize = shape.iter().product();
            let values: Vec<f32> = (0..n).map(|i| i as f32 * 0.5 - 1.0).collect();
            let a = NpyArray::from_f32(shape.clone(), &values);
            let bytes = a.to_npy();
            assert_eq!((bytes.len() - a.data.len()) % 64, 0, "header aligned to 64");
            let b = NpyArray::parse(&bytes).unwrap();
            assert_eq!(b, a);
            assert_eq!(b.to_f32().unwrap(), values);
        }
    }

    #[test]
    fn truncated_data_is_an_error() {
        let mut bytes = NpyArray::from_f32(vec![4], &[1.0; 4]).to_npy();
        bytes.pop();
        assert!(NpyArray::parse(&bytes).unwrap_err().contains("data bytes"));
    }
}
