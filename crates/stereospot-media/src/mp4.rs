//! A tiny ISO BMFF (MP4) box reader: just enough to count the video samples of MP4 files this
//! crate wrote itself, without starting an ffprobe per file (process start-up dominates the cost
//! of checking short segments).

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use crate::error::{MediaError, Result};

/// The largest `moov` box we read into memory (a 3-hour film's index is a few MB).
const MOOV_LIMIT: u64 = 256 << 20;

/// What the first video track of an MP4 looks like.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct VideoTrack {
    /// Number of samples (frames).
    pub samples: u64,
    /// The sample description (`stsd` body): codec, size and decoder configuration (avcC...).
    pub sample_entry: Vec<u8>,
    /// Track duration from the media header, seconds.
    pub duration: Option<f64>,
}

/// Size of a visual sample entry's fixed part, its box header included (ISO/IEC 14496-12).
const VISUAL_SAMPLE_ENTRY_LEN: usize = 86;

impl VideoTrack {
    /// The codec configuration: the sample description without the per-file bit-rate box
    /// (`btrt`). Segments can be joined by stream copy only when these bytes are identical.
    pub fn codec_config(&self) -> Vec<u8> {
        // stsd body: version/flags (4), entry count (4), then the first entry.
        let Some(entry) = self.sample_entry.get(8..) else {
            return self.sample_entry.clone();
        };
        let Some(fixed) = entry.get(..VISUAL_SAMPLE_ENTRY_LEN) else {
            return self.sample_entry.clone();
        };
        let mut key = fixed[4..].to_vec(); // without the entry's own size
        for (kind, body) in children(&entry[VISUAL_SAMPLE_ENTRY_LEN..]) {
            if &kind != b"btrt" {
                key.extend_from_slice(&kind);
                key.extend_from_slice(body);
            }
        }
        key
    }

    /// Codec four-character code and coded size, for messages.
    pub fn describe(&self) -> String {
        let e = &self.sample_entry;
        let fourcc = e
            .get(12..16)
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_else(|| "?".into());
        let dim = |at: usize| e.get(at..at + 2).map(|b| u16::from_be_bytes([b[0], b[1]]));
        match (dim(40), dim(42)) {
            (Some(w), Some(h)) => format!("{fourcc} {w}x{h}"),
            _ => fourcc,
        }
    }
}

/// Number of samples in the first video track, or `None` when the file has no such track or is
/// fragmented (samples listed in fragments, not in `stsz`).
pub(crate) fn video_sample_count(path: &Path) -> Result<Option<u64>> {
    Ok(video_track(path)?.map(|t| t.samples))
}

/// The first video track, or `None` when there is none, the file is fragmented, or it is not an
/// MP4 at all.
pub(crate) fn video_track(path: &Path) -> Result<Option<VideoTrack>> {
    let err = |e: std::io::Error| MediaError::io(format!("reading {}", path.display()), e);
    let mut f = std::fs::File::open(path).map_err(err)?;
    let len = f.metadata().map_err(err)?.len();
    let mut pos = 0u64;
    while pos + 8 <= len {
        f.seek(SeekFrom::Start(pos)).map_err(err)?;
        let mut head = [0u8; 16];
        f.read_exact(&mut head[..8]).map_err(err)?;
        let mut size = u64::from(u32::from_be_bytes([head[0], head[1], head[2], head[3]]));
        let kind = [head[4], head[5], head[6], head[7]];
        let mut header = 8;
        if size == 1 {
            f.read_exact(&mut head[8..16]).map_err(err)?;
            size = u64::from_be_bytes([
                head[8], head[9], head[10], head[11], head[12], head[13], head[14], head[15],
            ]);
            header = 16;
        } else if size == 0 {
            size = len - pos;
        }
        if size < header || pos.checked_add(size).is_none_or(|end| end > len) {
            return Err(MediaError::Internal(format!(
                "{} has a malformed MP4 box",
                path.display()
            )));
        }
        if &kind == b"moov" {
            let body_len = size - header;
            if body_len > MOOV_LIMIT {
                return Ok(None);
            }
            let mut body = vec![0u8; body_len as usize];
            f.read_exact(&mut body).map_err(err)?;
            return Ok(video_samples_in_moov(&body));
        }
        pos += size;
    }
    Ok(None)
}

/// Iterates the child boxes of a box body: (type, body).
fn children(mut data: &[u8]) -> impl Iterator<Item = ([u8; 4], &[u8])> {
    std::iter::from_fn(move || {
        if data.len() < 8 {
            return None;
        }
        let size32 = u32::from_be_bytes([data[0], data[1], data[2], data[3]]) as usize;
        let kind = [data[4], data[5], data[6], data[7]];
        let (size, header) = match size32 {
            0 => (data.len(), 8),
            1 if data.len() >= 16 => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&data[8..16]);
                (usize::try_from(u64::from_be_bytes(b)).ok()?, 16)
            }
            _ => (size32, 8),
        };
        if size < header || size > data.len() {
            return None;
        }
        let body = &data[header..size];
        data = &data[size..];
        Some((kind, body))
    })
}

fn child<'a>(data: &'a [u8], kind: &[u8; 4]) -> Option<&'a [u8]> {
    children(data).find(|(k, _)| k == kind).map(|(_, b)| b)
}

fn video_samples_in_moov(moov: &[u8]) -> Option<VideoTrack> {
    for (kind, trak) in children(moov) {
        if &kind != b"trak" {
            continue;
        }
        let mdia = child(trak, b"mdia")?;
        let hdlr = child(mdia, b"hdlr")?;
        if hdlr.get(8..12) != Some(b"vide") {
            continue;
        }
        let stbl = child(child(mdia, b"minf")?, b"stbl")?;
        let stsz = child(stbl, b"stsz")?;
        let stsd = child(stbl, b"stsd")?;
        let count = u32::from_be_bytes(stsz.get(8..12)?.try_into().ok()?);
        let duration = child(mdia, b"mdhd").and_then(media_duration);
        return (count > 0).then(|| VideoTrack {
            samples: u64::from(count),
            sample_entry: stsd.to_vec(),
            duration,
        });
    }
    None
}

/// Duration in seconds from an `mdhd` body (version 0 or 1).
fn media_duration(mdhd: &[u8]) -> Option<f64> {
    let be32 = |at: usize| -> Option<u64> {
        Some(u64::from(u32::from_be_bytes(
            mdhd.get(at..at + 4)?.try_into().ok()?,
        )))
    };
    let (timescale, duration) = match mdhd.first()? {
        0 => (be32(12)?, be32(16)?),
        1 => (
            be32(20)?,
            u64::from_be_bytes(mdhd.get(24..32)?.try_into().ok()?),
        ),
        _ => return None,
    };
    (timescale > 0).then(|| duration as f64 / timescale as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boxed(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut v = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        v.extend_from_slice(kind);
        v.extend_from_slice(body);
        v
    }

    fn trak(handler: &[u8; 4], samples: u32) -> Vec<u8> {
        let mut hdlr = vec![0u8; 8];
        hdlr.extend_from_slice(handler);
        hdlr.extend_from_slice(&[0u8; 12]);
        let mut stsz = vec![0u8; 8];
        stsz.extend_from_slice(&samples.to_be_bytes());
        let mut stbl_body = boxed(b"stsd", b"\0\0\0\0\0\0\0\x01entry");
        stbl_body.extend(boxed(b"stsz", &stsz));
        let stbl = boxed(b"stbl", &stbl_body);
        let minf = boxed(b"minf", &stbl);
        let mut mdhd = vec![0u8; 12];
        mdhd.extend_from_slice(&1000u32.to_be_bytes());
        mdhd.extend_from_slice(&2500u32.to_be_bytes());
        mdhd.extend_from_slice(&[0u8; 4]);
        let mut mdia = boxed(b"mdhd", &mdhd);
        mdia.extend(boxed(b"hdlr", &hdlr));
        mdia.extend(minf);
        boxed(b"trak", &boxed(b"mdia", &mdia))
    }

    #[test]
    fn finds_the_video_track_sample_count() {
        let mut moov = trak(b"soun", 99);
        moov.extend(trak(b"vide", 42));
        let mut file = boxed(b"ftyp", b"isom\0\0\0\0");
        file.extend(boxed(b"mdat", &[1, 2, 3]));
        file.extend(boxed(b"moov", &moov));
        let dir = tempfile::tempdir().expect("dir");
        let p = dir.path().join("x.mp4");
        std::fs::write(&p, &file).expect("write");
        assert_eq!(video_sample_count(&p).expect("read"), Some(42));
        let t = video_track(&p).expect("read").expect("track");
        assert!(t.sample_entry.ends_with(b"entry"));
        assert_eq!(t.duration, Some(2.5));

        std::fs::write(&p, boxed(b"ftyp", b"isom")).expect("write");
        assert_eq!(video_sample_count(&p).expect("read"), None);

        let mut bad = boxed(b"ftyp", b"isom");
        bad.extend_from_slice(&[0, 0, 1, 0, b'm', b'o', b'o', b'v']);
        std::fs::write(&p, &bad).expect("write");
        assert_eq!(video_sample_count(&p).expect_err("bad").code(), "internal");
    }
}
