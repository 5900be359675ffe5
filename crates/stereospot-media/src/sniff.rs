//! A look at a file's first bytes before ffprobe sees it, and the classification of ffprobe's
//! failures into errors a user can act on.
//!
//! ffprobe picks the mp4 demuxer for anything named `.mp4`, so random bytes, an HTML page and a
//! truncated MP4 all fail with the same "moov atom not found". The first bytes tell them apart.

use std::io::Read;
use std::path::Path;

use crate::error::{MediaError, Result};
use crate::process::StderrTail;

/// What the first bytes of a file look like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Head {
    /// Total file size.
    pub size: u64,
    /// The container family recognised from magic bytes, if any.
    pub magic: Option<&'static str>,
}

const HEAD_BYTES: usize = 4096;

/// Reads the first bytes: empty files, playlists and scripts are rejected here, before any
/// ffmpeg process could follow a reference inside them.
pub(crate) fn sniff(path: &Path) -> Result<Head> {
    let mut file = std::fs::File::open(path)
        .map_err(|e| MediaError::io(format!("opening {}", path.display()), e))?;
    let size = file
        .metadata()
        .map_err(|e| MediaError::io(format!("reading metadata of {}", path.display()), e))?
        .len();
    if size == 0 {
        return Err(MediaError::EmptyFile);
    }
    let mut buf = Vec::with_capacity(HEAD_BYTES);
    file.by_ref()
        .take(HEAD_BYTES as u64)
        .read_to_end(&mut buf)
        .map_err(|e| MediaError::io(format!("reading {}", path.display()), e))?;
    classify_head(&buf, size)
}

pub(crate) fn classify_head(buf: &[u8], size: u64) -> Result<Head> {
    if buf.is_empty() {
        return Err(MediaError::EmptyFile);
    }
    let text = text_start(buf);
    if let Some(text) = &text {
        let lower = text.to_ascii_lowercase();
        if lower.starts_with("#extm3u") {
            return Err(MediaError::ForbiddenReference {
                kind: "HLS playlist".into(),
            });
        }
        if lower.starts_with("ffconcat") || lower.starts_with("file ") || lower.starts_with("file'")
        {
            return Err(MediaError::ForbiddenReference {
                kind: "ffconcat script".into(),
            });
        }
        if lower.starts_with("[playlist]") {
            return Err(MediaError::ForbiddenReference {
                kind: "playlist".into(),
            });
        }
        if lower.starts_with("<?xml") && lower.contains("<mpd") {
            return Err(MediaError::ForbiddenReference {
                kind: "DASH manifest".into(),
            });
        }
        if lower.starts_with("<!doctype html") || lower.starts_with("<html") {
            return Err(MediaError::NotMedia {
                detail: "it is a web page (HTML), not a video".into(),
            });
        }
    }
    Ok(Head {
        size,
        magic: magic(buf),
    })
}

/// The file's start as text when it looks like text (UTF-8, no control bytes besides whitespace),
/// with a byte-order mark and leading whitespace removed.
fn text_start(buf: &[u8]) -> Option<String> {
    let buf = buf.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(buf);
    let end = buf.len().min(512);
    let s = match std::str::from_utf8(&buf[..end]) {
        Ok(s) => s,
        // A multi-byte character cut at the window's end is still text.
        Err(e) if e.valid_up_to() + 4 >= end => {
            std::str::from_utf8(&buf[..e.valid_up_to()]).ok()?
        }
        Err(_) => return None,
    };
    if s.chars()
        .any(|c| c.is_control() && !c.is_ascii_whitespace())
    {
        return None;
    }
    Some(s.trim_start().to_string())
}

/// Container magic numbers.
fn magic(buf: &[u8]) -> Option<&'static str> {
    if buf.len() >= 8 {
        let box_type = &buf[4..8];
        let iso = [
            b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot", b"styp", b"moof",
            b"sidx",
        ];
        if iso.iter().any(|t| box_type == *t) {
            return Some("mp4");
        }
    }
    let starts = |m: &[u8]| buf.starts_with(m);
    if starts(b"\x1A\x45\xDF\xA3") {
        Some("matroska")
    } else if starts(b"RIFF") {
        Some("riff")
    } else if starts(b"FLV") {
        Some("flv")
    } else if starts(b"OggS") {
        Some("ogg")
    } else if starts(b"\x30\x26\xB2\x75\x8E\x66\xCF\x11") {
        Some("asf")
    } else if starts(b"\x00\x00\x01\xBA") {
        Some("mpeg-ps")
    } else if buf.len() > 188 && buf[0] == 0x47 && buf[188] == 0x47 {
        Some("mpeg-ts")
    } else {
        None
    }
}

/// Turns an ffprobe failure on a user's file into the most specific error we can justify.
pub(crate) fn classify_probe_failure(
    head: &Head,
    stderr: &StderrTail,
    allowed: &[String],
) -> MediaError {
    let text = stderr.text();
    let last = stderr
        .last_line()
        .unwrap_or("ffmpeg could not read it")
        .to_string();
    if text.contains("not on whitelist") && text.contains("Format") {
        return MediaError::UnsupportedContainer {
            accepted: summarize(allowed),
        };
    }
    if text.contains("Protocol '") && text.contains("not on whitelist")
        || text.contains("Unsafe file name")
    {
        return MediaError::ForbiddenReference {
            kind: "file that refers to other files or URLs".into(),
        };
    }
    match head.magic {
        // A recognised container that ffmpeg cannot open is a damaged one.
        Some(kind) => MediaError::Corrupt {
            detail: if text.contains("moov atom not found") {
                "the MP4 index (moov atom) is missing; the upload was probably cut short".into()
            } else {
                format!("it starts like a {kind} file but cannot be read ({last})")
            },
        },
        None => MediaError::NotMedia {
            detail: "ffmpeg does not recognise its format".into(),
        },
    }
}

fn summarize(allowed: &[String]) -> String {
    let common = ["mp4", "mov", "webm", "matroska", "avi", "mpegts"];
    let mut shown: Vec<&str> = common
        .iter()
        .copied()
        .filter(|c| allowed.iter().any(|a| a == c))
        .collect();
    if shown.is_empty() {
        shown = allowed.iter().take(6).map(String::as_str).collect();
    }
    shown.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(buf: &[u8]) -> &'static str {
        match classify_head(buf, buf.len() as u64) {
            Ok(_) => "ok",
            Err(e) => e.code(),
        }
    }

    #[test]
    fn playlists_scripts_and_pages_are_caught_by_their_first_bytes() {
        assert_eq!(code(b""), "empty_file");
        assert_eq!(
            code(b"#EXTM3U\n#EXTINF:1,\nfile:///etc/passwd\n"),
            "forbidden_reference"
        );
        assert_eq!(code(b"\xEF\xBB\xBF  #EXTM3U\n"), "forbidden_reference");
        assert_eq!(
            code(b"ffconcat version 1.0\nfile '/etc/passwd'\n"),
            "forbidden_reference"
        );
        assert_eq!(code(b"file '/etc/passwd'\n"), "forbidden_reference");
        assert_eq!(code(b"<?xml version=\"1.0\"?><MPD>"), "forbidden_reference");
        assert_eq!(code(b"<!DOCTYPE html><html></html>"), "not_media");
        assert_eq!(code(b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00"), "ok");
    }

    #[test]
    fn magic_numbers() {
        let head = classify_head(b"\x00\x00\x00\x20ftypisom", 100).expect("ok");
        assert_eq!(head.magic, Some("mp4"));
        let head = classify_head(b"\x1A\x45\xDF\xA3\x01\x00", 100).expect("ok");
        assert_eq!(head.magic, Some("matroska"));
        let head = classify_head(&[0x13, 0x99, 0x07, 0x42, 0xfe, 0, 1, 2, 3], 100).expect("ok");
        assert_eq!(head.magic, None);
    }

    #[test]
    fn probe_failures_are_classified_by_magic_and_stderr() {
        let mut moov = StderrTail::default();
        moov.push(b"[mov,mp4 @ 0x1] moov atom not found\nx.mp4: Invalid data found when processing input\n");
        let mp4 = Head {
            size: 10,
            magic: Some("mp4"),
        };
        let unknown = Head {
            size: 10,
            magic: None,
        };
        assert_eq!(classify_probe_failure(&mp4, &moov, &[]).code(), "corrupt");
        assert_eq!(
            classify_probe_failure(&unknown, &moov, &[]).code(),
            "not_media"
        );

        let mut wl = StderrTail::default();
        wl.push(b"[hls @ 0x1] Format not on whitelist 'mov,mp4'\n");
        let e = classify_probe_failure(&unknown, &wl, &["mp4".to_string(), "mov".to_string()]);
        assert_eq!(e.code(), "unsupported_container");
        assert!(e.to_string().contains("mp4, mov"), "{e}");

        let mut proto = StderrTail::default();
        proto.push(b"Protocol 'http' not on whitelist 'file,pipe'!\n");
        assert_eq!(
            classify_probe_failure(&mp4, &proto, &[]).code(),
            "forbidden_reference"
        );
    }
}
