//! Test helpers: PNG and PFM reading, PSNR, the data directory.

use std::path::{Path, PathBuf};

use stereospot_stereo::{DepthMap, RgbFrame};

/// `shared/data/stereo` (or `STEREOSPOT_STEREO_DATA`).
pub fn stereo_data() -> PathBuf {
    if let Some(p) = std::env::var_os("STEREOSPOT_STEREO_DATA") {
        return PathBuf::from(p);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/stereo")
}

/// Reads an 8-bit (or 16-bit, stripped) PNG of any colour type as RGB24.
pub fn read_png(path: &Path) -> RgbFrame {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder
        .read_info()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut buf = vec![
        0;
        reader
            .output_buffer_size()
            .expect("PNG size fits in memory")
    ];
    let info = reader
        .next_frame(&mut buf)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (w, h) = (info.width, info.height);
    let channels = match info.color_type {
        png::ColorType::Grayscale => 1,
        png::ColorType::GrayscaleAlpha => 2,
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        png::ColorType::Indexed => panic!("{}: palette not expanded", path.display()),
    };
    let mut frame = RgbFrame::new(w, h);
    let src = &buf[..info.buffer_size()];
    for (y, row) in src.chunks_exact(info.line_size).enumerate() {
        for x in 0..w as usize {
            let p = &row[x * channels..];
            let rgb = if channels < 3 {
                [p[0]; 3]
            } else {
                [p[0], p[1], p[2]]
            };
            let i = (y * w as usize + x) * 3;
            frame.data[i..i + 3].copy_from_slice(&rgb);
        }
    }
    frame
}

/// Parses a greyscale PFM (`Pf`): header `Pf\n<w> <h>\n<scale>\n`, then little-endian floats if
/// the scale is negative (big-endian otherwise), rows from the bottom up. Returns the map with
/// rows top to bottom, values as stored (so unknown stays `inf` or 0).
pub fn parse_pfm(bytes: &[u8]) -> Result<DepthMap, String> {
    let mut fields = Vec::new();
    let mut pos = 0;
    // Three whitespace-separated header tokens after the magic, ended by one whitespace byte.
    while fields.len() < 4 {
        while pos < bytes.len() && bytes[pos].is_ascii_whitespace() {
            pos += 1;
        }
        let start = pos;
        while pos < bytes.len() && !bytes[pos].is_ascii_whitespace() {
            pos += 1;
        }
        if start == pos {
            return Err("truncated header".into());
        }
        fields.push(std::str::from_utf8(&bytes[start..pos]).map_err(|e| e.to_string())?);
    }
    pos += 1; // the single whitespace byte after the scale
    match fields[0] {
        "Pf" => {}
        "PF" => return Err("colour PFM, expected greyscale (Pf)".into()),
        m => return Err(format!("bad magic {m:?}")),
    }
    let w: u32 = fields[1]
        .parse()
        .map_err(|_| format!("bad width {:?}", fields[1]))?;
    let h: u32 = fields[2]
        .parse()
        .map_err(|_| format!("bad height {:?}", fields[2]))?;
    let scale: f32 = fields[3]
        .parse()
        .map_err(|_| format!("bad scale {:?}", fields[3]))?;
    if scale == 0.0 || !scale.is_finite() {
        return Err(format!("bad scale {scale}"));
    }
    let n = w as usize * h as usize;
    let body = bytes.get(pos..).unwrap_or_default();
    if body.len() != n * 4 {
        return Err(format!("{} data bytes, expected {}", body.len(), n * 4));
    }
    let mut data = vec![0.0f32; n];
    for (i, c) in body.chunks_exact(4).enumerate() {
        let b = [c[0], c[1], c[2], c[3]];
        let v = if scale < 0.0 {
            f32::from_le_bytes(b)
        } else {
            f32::from_be_bytes(b)
        };
        // Stored bottom row first.
        let (y, x) = (i / w as usize, i % w as usize);
        data[(h as usize - 1 - y) * w as usize + x] = v;
    }
    DepthMap::from_vec(w, h, data).ok_or_else(|| "size".into())
}

/// PSNR in dB of `a` against `b` over the pixels where `mask` is true (all when `None`).
pub fn psnr(a: &RgbFrame, b: &RgbFrame, mask: Option<&[bool]>) -> f64 {
    assert_eq!((a.width, a.height), (b.width, b.height));
    let (mut se, mut n) = (0.0f64, 0u64);
    for (i, (pa, pb)) in a
        .data
        .chunks_exact(3)
        .zip(b.data.chunks_exact(3))
        .enumerate()
    {
        if mask.is_some_and(|m| !m[i]) {
            continue;
        }
        for c in 0..3 {
            let d = f64::from(pa[c]) - f64::from(pb[c]);
            se += d * d;
        }
        n += 3;
    }
    let mse = se / n.max(1) as f64;
    if mse == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (255.0 * 255.0 / mse).log10()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pfm(magic: &str, w: u32, h: u32, scale: &str, rows_bottom_up: &[f32], le: bool) -> Vec<u8> {
        let mut b = format!("{magic}\n{w} {h}\n{scale}\n").into_bytes();
        for v in rows_bottom_up {
            b.extend(if le { v.to_le_bytes() } else { v.to_be_bytes() });
        }
        b
    }

    #[test]
    fn pfm_rows_are_flipped_and_both_byte_orders_read() {
        // Stored bottom-up: the first stored row is the image's last.
        let stored = [1.0, 2.0, 3.0, 4.0, 5.0, f32::INFINITY];
        for (scale, le) in [("-1.0", true), ("1.0", false), ("-0.5", true)] {
            let d = parse_pfm(&pfm("Pf", 3, 2, scale, &stored, le)).expect("parse");
            assert_eq!((d.width, d.height), (3, 2));
            assert_eq!(d.data[..3], [4.0, 5.0, f32::INFINITY]);
            assert_eq!(d.data[3..], [1.0, 2.0, 3.0]);
        }
    }

    #[test]
    fn bad_pfms_are_refused() {
        let ok = pfm("Pf", 2, 1, "-1.0", &[1.0, 2.0], true);
        assert!(parse_pfm(&ok).is_ok());
        assert!(parse_pfm(&ok[..ok.len() - 1]).is_err());
        assert!(parse_pfm(&pfm("PF", 2, 1, "-1.0", &[1.0, 2.0], true)).is_err());
        assert!(parse_pfm(&pfm("P5", 2, 1, "-1.0", &[1.0, 2.0], true)).is_err());
        assert!(parse_pfm(&pfm("Pf", 2, 1, "0", &[1.0, 2.0], true)).is_err());
        assert!(parse_pfm(b"Pf\n2").is_err());
    }

    #[test]
    fn psnr_of_known_errors() {
        let a = RgbFrame::new(4, 1);
        let mut b = RgbFrame::new(4, 1);
        assert_eq!(psnr(&a, &b, None), f64::INFINITY);
        b.data[0] = 255; // one channel of one pixel off by 255: MSE = 255^2 / 12
        assert!((psnr(&a, &b, None) - 10.0 * 12f64.log10()).abs() < 1e-9);
        let mask = [false, true, true, true];
        assert_eq!(psnr(&a, &b, Some(&mask)), f64::INFINITY);
    }
}
