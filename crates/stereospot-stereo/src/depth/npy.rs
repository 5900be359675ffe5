//! A small reader and writer for NumPy `.npy` files (format 1.0 to 3.0, C order, little-endian
//! `float32` and `uint8`): the exchange format with the Python reference (test fixtures, the
//! `depth-preprocess` and `depth-forward` commands).

use std::io::{Read, Write};
use std::path::Path;

use crate::{Result, StereoError};

const MAGIC: &[u8] = b"\x93NUMPY";

/// An element type an `.npy` file can hold here.
pub trait NpyElement: Copy + Sized {
    /// The NumPy `descr` of this type (little-endian).
    const DESCR: &'static str;
    /// Size in bytes.
    const SIZE: usize;
    /// Decodes one little-endian value.
    fn from_le(bytes: &[u8]) -> Self;
    /// Appends the little-endian bytes of `self`.
    fn push_le(self, out: &mut Vec<u8>);
}

impl NpyElement for f32 {
    const DESCR: &'static str = "<f4";
    const SIZE: usize = 4;
    fn from_le(bytes: &[u8]) -> Self {
        f32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
    }
    fn push_le(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
}

impl NpyElement for u8 {
    const DESCR: &'static str = "|u1";
    const SIZE: usize = 1;
    fn from_le(bytes: &[u8]) -> Self {
        bytes[0]
    }
    fn push_le(self, out: &mut Vec<u8>) {
        out.push(self);
    }
}

/// An n-dimensional array in C (row-major) order.
#[derive(Clone, PartialEq)]
pub struct NpyArray<T> {
    /// Dimensions, outermost first.
    pub shape: Vec<usize>,
    /// Values, row-major.
    pub data: Vec<T>,
}

impl<T> std::fmt::Debug for NpyArray<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NpyArray")
            .field("shape", &self.shape)
            .finish_non_exhaustive()
    }
}

fn invalid(path: &Path, message: impl Into<String>) -> StereoError {
    StereoError::io(
        path,
        std::io::Error::new(std::io::ErrorKind::InvalidData, message.into()),
    )
}

/// Reads an `.npy` file holding `T` values.
pub fn read<T: NpyElement>(path: &Path) -> Result<NpyArray<T>> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|e| StereoError::io(path, e))?;
    parse(&bytes).map_err(|message| invalid(path, message))
}

/// Parses the bytes of an `.npy` file.
pub fn parse<T: NpyElement>(bytes: &[u8]) -> std::result::Result<NpyArray<T>, String> {
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err("not a .npy file (bad magic)".into());
    }
    let major = bytes[6];
    let (header_len, start) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        _ => return Err(format!("unsupported .npy version {major}")),
    };
    let header = bytes
        .get(start..start + header_len)
        .ok_or("truncated .npy header")?;
    let header = std::str::from_utf8(header).map_err(|_| "the .npy header is not text")?;
    let descr = dict_value(header, "descr").ok_or("no descr in the .npy header")?;
    let descr = descr.trim_matches(|c| c == '\'' || c == '"');
    // A one-byte type has no byte order: NumPy writes `|u1`, but accept `<u1` too.
    let same_type = descr == T::DESCR || (T::SIZE == 1 && descr[1..] == T::DESCR[1..]);
    if !same_type {
        return Err(format!(
            "holds {descr} values, expected {} (convert with numpy's astype)",
            T::DESCR
        ));
    }
    match dict_value(header, "fortran_order") {
        Some("False") => {}
        Some(_) => return Err("Fortran-order arrays are not supported".into()),
        None => return Err("no fortran_order in the .npy header".into()),
    }
    let shape = dict_value(header, "shape").ok_or("no shape in the .npy header")?;
    let shape = shape
        .trim_start_matches('(')
        .trim_end_matches(')')
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<usize>()
                .map_err(|_| format!("bad dimension {s:?}"))
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let count = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or("the .npy shape overflows")?;
    let body = &bytes[start + header_len..];
    if body.len() != count * T::SIZE {
        return Err(format!(
            "shape {shape:?} needs {} bytes of data, the file has {}",
            count * T::SIZE,
            body.len()
        ));
    }
    let data = body.chunks_exact(T::SIZE).map(T::from_le).collect();
    Ok(NpyArray { shape, data })
}

/// The raw text of `'key': value` in a header dict (up to the next top-level comma or brace).
fn dict_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let at = header
        .find(&format!("'{key}'"))
        .or_else(|| header.find(&format!("\"{key}\"")))?;
    let rest = &header[at + key.len() + 2..];
    let rest = rest.trim_start().strip_prefix(':')?.trim_start();
    let end = if rest.starts_with('(') {
        rest.find(')')? + 1
    } else {
        rest.find([',', '}']).unwrap_or(rest.len())
    };
    Some(rest[..end].trim())
}

/// Encodes an array as `.npy` (format 1.0, or 2.0 for very long shapes).
pub fn encode<T: NpyElement>(shape: &[usize], data: &[T]) -> std::result::Result<Vec<u8>, String> {
    let count: usize = shape.iter().product();
    if count != data.len() {
        return Err(format!(
            "shape {shape:?} holds {count} values, got {}",
            data.len()
        ));
    }
    let dims = match shape {
        [one] => format!("({one},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {dims}, }}",
        T::DESCR
    );
    // Pad with spaces so the data starts on a 64-byte boundary; the header ends with '\n'.
    let (version, prefix) = if header.len() + 11 < 65536 {
        (1u8, 10)
    } else {
        (2u8, 12)
    };
    let total = (prefix + header.len() + 1).div_ceil(64) * 64;
    header.push_str(&" ".repeat(total - prefix - header.len() - 1));
    header.push('\n');
    let mut out = Vec::with_capacity(total + data.len() * T::SIZE);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[version, 0]);
    if version == 1 {
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    } else {
        out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    }
    out.extend_from_slice(header.as_bytes());
    for &v in data {
        v.push_le(&mut out);
    }
    Ok(out)
}

/// Writes an `.npy` file.
pub fn write<T: NpyElement>(path: &Path, shape: &[usize], data: &[T]) -> Result<()> {
    let bytes = encode(shape, data).map_err(StereoError::InvalidArgument)?;
    std::fs::File::create(path)
        .and_then(|mut f| f.write_all(&bytes))
        .map_err(|e| StereoError::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_f32_and_u8() {
        let data: Vec<f32> = (0..24).map(|i| i as f32 * 0.5 - 3.0).collect();
        let bytes = encode(&[2, 3, 4], &data).unwrap();
        assert_eq!(
            bytes.len() % 64,
            (24 * 4) % 64,
            "data starts on a 64-byte boundary"
        );
        let back: NpyArray<f32> = parse(&bytes).unwrap();
        assert_eq!(back.shape, vec![2, 3, 4]);
        assert_eq!(back.data, data);

        let bytes = encode(&[5], &[1u8, 2, 3, 4, 5]).unwrap();
        let back: NpyArray<u8> = parse(&bytes).unwrap();
        assert_eq!(back.shape, vec![5]);
        assert_eq!(back.data, vec![1, 2, 3, 4, 5]);
    }

    #[test]
    fn header_is_what_numpy_writes() {
        let bytes = encode(&[1, 2], &[0f32, 1.0]).unwrap();
        let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        let header = std::str::from_utf8(&bytes[10..10 + header_len]).unwrap();
        assert!(header.starts_with("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2), }"));
        assert!(header.ends_with('\n'));
        assert_eq!((10 + header_len) % 64, 0);
    }

    #[test]
    fn parses_scalars_and_version_2() {
        let mut bytes = encode(&[], &[7f32]).unwrap();
        let back: NpyArray<f32> = parse(&bytes).unwrap();
        assert_eq!((back.shape.len(), back.data[0]), (0, 7.0));
        // Rewrite as version 2.0 (4-byte header length).
        let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as u32;
        bytes[6] = 2;
        bytes.splice(8..10, header_len.to_le_bytes());
        let back: NpyArray<f32> = parse(&bytes).unwrap();
        assert_eq!(back.data, vec![7.0]);
    }

    #[test]
    fn rejects_wrong_type_order_and_size() {
        let bytes = encode(&[2], &[1f32, 2.0]).unwrap();
        assert!(parse::<u8>(&bytes).unwrap_err().contains("<f4"));
        let mut fortran = bytes.clone();
        let at = fortran.windows(5).position(|w| w == b"False").unwrap();
        fortran[at..at + 5].copy_from_slice(b"True ");
        assert!(parse::<f32>(&fortran).unwrap_err().contains("Fortran"));
        assert!(parse::<f32>(&bytes[..bytes.len() - 1]).is_err());
        assert!(parse::<f32>(b"not numpy at all").is_err());
        assert!(encode(&[3], &[1f32]).is_err());
    }
}
