//! The packet scan: one demux pass over the video stream (no decoding) listing every packet's
//! timestamps, keyframe flag and byte position. It is cheap (seconds for hours of video) and
//! gives what the header alone cannot: the exact frame count in every container, whether the
//! frame rate is really variable, where a stream copy can cut cleanly, and whether the file was
//! cut short.

use std::path::Path;
use std::time::Duration;

use crate::config::Media;
use crate::error::{MediaError, Result};
use crate::probe::Rational;
use crate::process::{StdoutMode, run};

/// One video packet (one frame for every codec StereoSpot accepts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet {
    /// Presentation timestamp in the stream time base.
    pub pts: Option<i64>,
    /// Decoding timestamp.
    pub dts: Option<i64>,
    /// Duration in the stream time base.
    pub duration: Option<i64>,
    /// Keyframe (random access point) flag.
    pub key: bool,
    /// Byte offset in the file.
    pub pos: Option<u64>,
    /// Size in bytes.
    pub size: u64,
}

/// Every video packet of a file, in decoding order.
#[derive(Debug, Clone, PartialEq)]
pub struct PacketScan {
    /// Stream time base.
    pub time_base: Rational,
    /// Packets in decoding (file) order.
    pub packets: Vec<Packet>,
    /// What ffprobe complained about while reading (empty for a healthy file).
    pub errors: Vec<String>,
}

impl PacketScan {
    /// Parses one line of `ffprobe -of compact=p=0` packet output ("pts=0|dts=-1024|...").
    pub fn parse_line(line: &str) -> Option<Packet> {
        let mut p = Packet {
            pts: None,
            dts: None,
            duration: None,
            key: false,
            pos: None,
            size: 0,
        };
        let mut any = false;
        for field in line.split('|') {
            let Some((k, v)) = field.split_once('=') else {
                continue;
            };
            any = true;
            match k {
                "pts" => p.pts = v.parse().ok(),
                "dts" => p.dts = v.parse().ok(),
                "duration" => p.duration = v.parse().ok(),
                "flags" => p.key = v.starts_with('K'),
                "pos" => p.pos = v.parse().ok(),
                "size" => p.size = v.parse().unwrap_or(0),
                _ => {}
            }
        }
        any.then_some(p)
    }

    /// Number of frames.
    pub fn frame_count(&self) -> u64 {
        self.packets.len() as u64
    }

    /// Whether every packet has a presentation timestamp.
    pub fn has_all_pts(&self) -> bool {
        self.packets.iter().all(|p| p.pts.is_some())
    }

    /// Presentation timestamps in display order (sorted), in the stream time base.
    pub fn display_pts(&self) -> Vec<i64> {
        let mut v: Vec<i64> = self.packets.iter().filter_map(|p| p.pts).collect();
        v.sort_unstable();
        v
    }

    /// First presentation timestamp, seconds.
    pub fn start_seconds(&self) -> Option<f64> {
        self.packets
            .iter()
            .filter_map(|p| p.pts)
            .min()
            .map(|t| self.seconds(t))
    }

    /// Time from the first frame's start to the last frame's end.
    pub fn duration(&self) -> Option<Duration> {
        let pts = self.display_pts();
        let (first, last) = (*pts.first()?, *pts.last()?);
        let last_dur = self
            .packets
            .iter()
            .find(|p| p.pts == Some(last))
            .and_then(|p| p.duration)
            .filter(|d| *d > 0)
            .or_else(|| self.typical_frame_duration())
            .unwrap_or(0);
        let span = self.seconds(last - first + last_dur);
        (span.is_finite() && span >= 0.0).then(|| Duration::from_secs_f64(span))
    }

    /// The median distance between consecutive frames, in the time base.
    pub fn typical_frame_duration(&self) -> Option<i64> {
        let pts = self.display_pts();
        let mut deltas: Vec<i64> = pts.windows(2).map(|w| w[1] - w[0]).collect();
        if deltas.is_empty() {
            return None;
        }
        deltas.sort_unstable();
        Some(deltas[deltas.len() / 2])
    }

    /// Whether frame intervals really vary. Intervals may differ by one tick of the time base
    /// (29.97 fps in Matroska's millisecond base alternates 33 and 34 ms) and by 0.5 %; anything
    /// beyond that is a variable frame rate.
    pub fn is_variable_frame_rate(&self) -> bool {
        let pts = self.display_pts();
        let deltas: Vec<i64> = pts.windows(2).map(|w| w[1] - w[0]).collect();
        let (Some(min), Some(max)) = (deltas.iter().min(), deltas.iter().max()) else {
            return false;
        };
        let slack = 1 + (*max as f64 * 0.005) as i64;
        max - min > slack
    }

    /// Whether frames are stored out of display order (B-frames).
    pub fn has_reordering(&self) -> bool {
        let mut max = i64::MIN;
        for p in &self.packets {
            match p.pts {
                Some(pts) if pts < max => return true,
                Some(pts) => max = pts,
                None => {}
            }
        }
        false
    }

    /// Decoding-order indices where a stream copy can start a new, independently decodable
    /// segment whose frames are exactly those displayed from this packet on: a keyframe with every
    /// earlier packet displayed before it and every later packet displayed at or after it. That
    /// excludes open-GOP keyframes, whose leading pictures refer to the previous group.
    pub fn clean_cut_points(&self) -> Vec<usize> {
        let n = self.packets.len();
        if n == 0 || !self.has_all_pts() {
            return Vec::new();
        }
        let pts: Vec<i64> = self.packets.iter().map(|p| p.pts.unwrap_or(0)).collect();
        let mut suffix_min = vec![i64::MAX; n + 1];
        for i in (0..n).rev() {
            suffix_min[i] = suffix_min[i + 1].min(pts[i]);
        }
        let mut cuts = Vec::new();
        let mut prefix_max = i64::MIN;
        for i in 0..n {
            if i > 0 && self.packets[i].key && prefix_max < pts[i] && pts[i] <= suffix_min[i] {
                cuts.push(i);
            }
            prefix_max = prefix_max.max(pts[i]);
        }
        cuts
    }

    /// Converts a timestamp of this stream to seconds.
    pub fn seconds(&self, ts: i64) -> f64 {
        ts as f64 * self.time_base.as_f64()
    }

    /// Checks the scan against the file: ffprobe complaints, fewer packets than the header
    /// announced, or packets that end past the end of the file mean the file is cut short or
    /// damaged.
    pub fn check_integrity(&self, declared_frames: Option<u64>, file_size: u64) -> Result<()> {
        if let Some(first) = self.errors.first() {
            return Err(MediaError::Corrupt {
                detail: format!("reading the video stream failed ({first})"),
            });
        }
        if self.packets.is_empty() {
            return Err(MediaError::Corrupt {
                detail: "the video stream has no frames".into(),
            });
        }
        if let Some(declared) = declared_frames {
            let got = self.frame_count();
            // A little slack: some muxers count a trailing empty sample.
            if got + 1 + declared / 100 < declared {
                return Err(MediaError::Corrupt {
                    detail: format!(
                        "only {got} of the {declared} frames it announces are in the file; the upload was probably cut short"
                    ),
                });
            }
        }
        let end = self
            .packets
            .iter()
            .filter_map(|p| p.pos.map(|pos| pos + p.size))
            .max();
        if end.is_some_and(|end| end > file_size) {
            return Err(MediaError::Corrupt {
                detail: "the last frames lie past the end of the file; the upload was probably cut short".into(),
            });
        }
        Ok(())
    }
}

impl Media {
    /// Lists every packet of stream `stream_index` (no decoding).
    pub async fn scan_packets(
        &self,
        path: &Path,
        stream_index: u32,
        time_base: Rational,
        media_duration: Duration,
    ) -> Result<PacketScan> {
        let mut inv = self.ffprobe(self.config().timeouts.for_copy(media_duration));
        inv.args(["-select_streams", &stream_index.to_string()]);
        inv.args([
            "-show_entries",
            "packet=pts,dts,duration,flags,pos,size",
            "-of",
            "compact=p=0",
        ]);
        inv.args(["-protocol_whitelist", "file,pipe"]);
        inv.arg("-format_whitelist")
            .arg(self.config().allowed_demuxers.join(","));
        inv.arg(crate::config::file_url(path)?);
        let mut packets = Vec::new();
        let mut on_line = |line: &str| {
            if let Some(p) = PacketScan::parse_line(line) {
                packets.push(p);
            }
        };
        let fin = run(&inv, StdoutMode::Lines(&mut on_line)).await?;
        let errors: Vec<String> = fin.stderr.text().lines().map(str::to_string).collect();
        if !fin.status.success() && packets.is_empty() {
            return Err(MediaError::Corrupt {
                detail: format!(
                    "the video stream cannot be read ({})",
                    fin.stderr.last_line().unwrap_or("no detail")
                ),
            });
        }
        Ok(PacketScan {
            time_base,
            packets,
            errors,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(pts_in_decode_order: &[i64], keys: &[usize]) -> PacketScan {
        PacketScan {
            time_base: Rational::new(1, 1000),
            packets: pts_in_decode_order
                .iter()
                .enumerate()
                .map(|(i, pts)| Packet {
                    pts: Some(*pts),
                    dts: None,
                    duration: Some(40),
                    key: keys.contains(&i),
                    pos: Some(i as u64 * 10),
                    size: 10,
                })
                .collect(),
            errors: Vec::new(),
        }
    }

    #[test]
    fn parses_compact_lines_in_any_field_order() {
        let p = PacketScan::parse_line("pts=0|dts=-1024|duration=512|size=14149|pos=48|flags=K_")
            .expect("packet");
        assert_eq!(p.pts, Some(0));
        assert_eq!(p.dts, Some(-1024));
        assert!(p.key);
        assert_eq!((p.pos, p.size), (Some(48), 14149));
        let p = PacketScan::parse_line("flags=__|pts=N/A|dts=N/A|pos=N/A|size=3").expect("packet");
        assert_eq!((p.pts, p.pos, p.key), (None, None, false));
        assert!(PacketScan::parse_line("").is_none());
    }

    #[test]
    fn closed_gop_keyframes_are_clean_cuts_and_open_gop_ones_are_not() {
        // Closed GOPs with B-frames: I0 P3 B1 B2 | I4 P7 B5 B6 (pts in frame units * 40).
        let closed = scan(&[0, 120, 40, 80, 160, 280, 200, 240], &[0, 4]);
        assert_eq!(closed.clean_cut_points(), vec![4]);
        // Open GOP: the second I-frame (pts 240) is followed by B-frames shown before it.
        let open = scan(&[0, 120, 40, 80, 240, 160, 200, 360, 280, 320], &[0, 4]);
        assert!(open.clean_cut_points().is_empty());
        assert!(closed.has_reordering());
        assert!(!scan(&[0, 40, 80], &[0]).has_reordering());
    }

    #[test]
    fn duration_frame_count_and_vfr() {
        let s = scan(&[0, 40, 80, 120], &[0]);
        assert_eq!(s.frame_count(), 4);
        assert_eq!(s.duration(), Some(Duration::from_millis(160)));
        assert!(!s.is_variable_frame_rate());
        // 29.97 fps in a millisecond time base: 33/34 ms alternation is still constant.
        let ntsc = scan(&[0, 33, 67, 100, 133, 167, 200], &[0]);
        assert!(!ntsc.is_variable_frame_rate());
        let vfr = scan(&[0, 33, 67, 100, 200, 300], &[0]);
        assert!(vfr.is_variable_frame_rate());
    }

    #[test]
    fn integrity_catches_short_reads_errors_and_overruns() {
        let s = scan(&[0, 40, 80, 120], &[0]);
        assert!(s.check_integrity(Some(4), 40).is_ok());
        assert_eq!(
            s.check_integrity(Some(8), 40).expect_err("short").code(),
            "corrupt"
        );
        assert_eq!(
            s.check_integrity(None, 35).expect_err("overrun").code(),
            "corrupt"
        );
        let mut e = s.clone();
        e.errors.push("partial file".into());
        assert_eq!(
            e.check_integrity(None, 40).expect_err("err").code(),
            "corrupt"
        );
    }
}
