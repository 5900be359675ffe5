//! `ffprobe -print_format json -show_streams -show_format`, parsed into typed structs.
//!
//! The parser is a pure function ([`MediaInfo::from_ffprobe_json`]) tested against real ffprobe
//! outputs checked in under `tests/fixtures/`, so it runs without ffmpeg.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::config::Media;
use crate::error::{MediaError, Result};
use crate::process::{StdoutMode, run};
use crate::sniff;

/// An exact rational number as ffprobe prints it ("30000/1001").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rational {
    /// Numerator.
    pub num: i64,
    /// Denominator.
    pub den: i64,
}

impl Rational {
    /// `num/den`.
    pub const fn new(num: i64, den: i64) -> Self {
        Rational { num, den }
    }

    /// Parses "30000/1001", "30:1" or "25"; `None` for "0/0", "N/A" or a zero denominator.
    pub fn parse(s: &str) -> Option<Rational> {
        let s = s.trim();
        let (n, d) = match s.split_once(['/', ':']) {
            Some((n, d)) => (n.trim().parse().ok()?, d.trim().parse().ok()?),
            None => (s.parse().ok()?, 1),
        };
        (d != 0 && n != 0).then_some(Rational { num: n, den: d })
    }

    /// The value as a float.
    pub fn as_f64(self) -> f64 {
        self.num as f64 / self.den as f64
    }

    /// The inverse (1/x).
    pub fn recip(self) -> Rational {
        Rational {
            num: self.den,
            den: self.num,
        }
    }

    /// Smallest terms with a positive denominator.
    pub fn reduced(self) -> Rational {
        fn gcd(a: i64, b: i64) -> i64 {
            if b == 0 { a.abs() } else { gcd(b, a % b) }
        }
        let g = gcd(self.num, self.den).max(1);
        let sign = if self.den < 0 { -1 } else { 1 };
        Rational {
            num: sign * self.num / g,
            den: sign * self.den / g,
        }
    }
}

impl std::fmt::Display for Rational {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.num, self.den)
    }
}

/// Clockwise rotation a player applies to show the stored frames upright.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Rotation {
    /// Stored upright.
    #[default]
    None,
    /// Rotate 90 degrees clockwise (a phone held upright, recording in portrait).
    Cw90,
    /// Upside down.
    R180,
    /// Rotate 90 degrees counter-clockwise.
    Ccw90,
}

impl Rotation {
    /// From clockwise degrees, rounded to the nearest quarter turn.
    pub fn from_clockwise_degrees(deg: f64) -> Rotation {
        let quarter = ((deg / 90.0).round() as i64).rem_euclid(4);
        match quarter {
            1 => Rotation::Cw90,
            2 => Rotation::R180,
            3 => Rotation::Ccw90,
            _ => Rotation::None,
        }
    }

    /// Clockwise degrees: 0, 90, 180 or 270.
    pub fn clockwise_degrees(self) -> u32 {
        match self {
            Rotation::None => 0,
            Rotation::Cw90 => 90,
            Rotation::R180 => 180,
            Rotation::Ccw90 => 270,
        }
    }

    /// Whether width and height swap on display.
    pub fn swaps_dimensions(self) -> bool {
        matches!(self, Rotation::Cw90 | Rotation::Ccw90)
    }

    /// The value ffprobe prints as the display matrix `rotation` (counter-clockwise degrees), which
    /// is also what ffmpeg 5.1's `-metadata:s:v rotate=` writes back as a display matrix.
    pub fn display_matrix_degrees(self) -> i32 {
        match self {
            Rotation::None => 0,
            Rotation::Cw90 => -90,
            Rotation::R180 => 180,
            Rotation::Ccw90 => 90,
        }
    }

    /// The ffmpeg filter that applies this rotation (`None` when upright).
    pub fn filter(self) -> Option<&'static str> {
        match self {
            Rotation::None => None,
            Rotation::Cw90 => Some("transpose=clock"),
            Rotation::R180 => Some("hflip,vflip"),
            Rotation::Ccw90 => Some("transpose=cclock"),
        }
    }
}

/// High dynamic range transfer functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Hdr {
    /// SMPTE ST 2084 (HDR10, Dolby Vision base layers).
    Pq,
    /// ARIB STD-B67 (HLG broadcast HDR).
    Hlg,
}

/// Colour tags of a video stream (absent tags are `None`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ColorInfo {
    /// "tv" (limited) or "pc" (full).
    pub range: Option<String>,
    /// Matrix, e.g. "bt709", "bt2020nc".
    pub space: Option<String>,
    /// Transfer, e.g. "bt709", "smpte2084", "arib-std-b67".
    pub transfer: Option<String>,
    /// Primaries, e.g. "bt709", "bt2020".
    pub primaries: Option<String>,
}

impl ColorInfo {
    /// The HDR transfer, when the stream is tagged as HDR.
    pub fn hdr(&self) -> Option<Hdr> {
        match self.transfer.as_deref() {
            Some("smpte2084") => Some(Hdr::Pq),
            Some("arib-std-b67") => Some(Hdr::Hlg),
            _ => None,
        }
    }
}

/// The video stream StereoSpot converts.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoStream {
    /// Stream index in the container (use it in `-map 0:<index>`).
    pub index: u32,
    /// Codec name, e.g. "h264".
    pub codec: String,
    /// Codec profile, e.g. "High".
    pub profile: Option<String>,
    /// Stored (coded, before rotation) width.
    pub width: u32,
    /// Stored height.
    pub height: u32,
    /// Rotation to apply for display.
    pub rotation: Rotation,
    /// Sample (pixel) aspect ratio when not square.
    pub sample_aspect_ratio: Option<Rational>,
    /// Decoder pixel format, e.g. "yuv420p", "yuv420p10le".
    pub pix_fmt: Option<String>,
    /// Bits per component.
    pub bit_depth: Option<u8>,
    /// Colour tags.
    pub color: ColorInfo,
    /// ffprobe's `r_frame_rate`: the base rate all timestamps fit.
    pub frame_rate: Option<Rational>,
    /// ffprobe's `avg_frame_rate`: frames divided by duration.
    pub avg_frame_rate: Option<Rational>,
    /// Number of frames, when the container says (mp4 does, Matroska does not). A packet scan
    /// ([`crate::PacketScan`]) gives it for every container.
    pub frame_count: Option<u64>,
    /// Variable frame rate. From the header this is a guess (`r_frame_rate` differs from
    /// `avg_frame_rate`); [`Media::validate`] replaces it with the packet timestamps' verdict.
    pub variable_frame_rate: bool,
    /// Stream time base.
    pub time_base: Option<Rational>,
    /// First presentation time, seconds.
    pub start_time: Option<f64>,
    /// Stream duration when known.
    pub duration: Option<Duration>,
    /// Reorder depth (non-zero means B-frames).
    pub has_b_frames: u32,
}

impl VideoStream {
    /// Width and height as displayed (after rotation, before any pixel-aspect correction).
    pub fn display_size(&self) -> (u32, u32) {
        if self.rotation.swaps_dimensions() {
            (self.height, self.width)
        } else {
            (self.width, self.height)
        }
    }

    /// Whether the stream is tagged HDR (PQ or HLG).
    pub fn hdr(&self) -> Option<Hdr> {
        self.color.hdr()
    }

    /// The rate at which to write this stream's frames back at constant frame rate: the average
    /// rate (frames / duration) for variable-frame-rate input, so the duration is kept; the nominal
    /// rate otherwise.
    pub fn output_frame_rate(&self) -> Option<Rational> {
        let nominal = self.frame_rate.filter(|r| r.as_f64() > 0.0);
        let avg = self.avg_frame_rate.filter(|r| r.as_f64() > 0.0);
        if self.variable_frame_rate {
            avg.or(nominal)
        } else {
            nominal.or(avg)
        }
    }
}

/// An audio stream.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioStream {
    /// Stream index in the container.
    pub index: u32,
    /// Codec name, e.g. "aac".
    pub codec: String,
    /// Samples per second.
    pub sample_rate: Option<u32>,
    /// Channel count.
    pub channels: Option<u32>,
    /// First presentation time, seconds.
    pub start_time: Option<f64>,
    /// Duration when known.
    pub duration: Option<Duration>,
}

/// What ffprobe says about a file.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaInfo {
    /// ffmpeg's demuxer name, e.g. "mov,mp4,m4a,3gp,3g2,mj2" or "matroska,webm".
    pub container: String,
    /// Container duration when known.
    pub duration: Option<Duration>,
    /// Container start time (the smallest stream start), seconds.
    pub start_time: Option<f64>,
    /// File size in bytes.
    pub size_bytes: Option<u64>,
    /// Overall bit rate.
    pub bit_rate: Option<u64>,
    /// The first real video stream (cover art and thumbnails are skipped).
    pub video: Option<VideoStream>,
    /// Audio streams, in container order.
    pub audio: Vec<AudioStream>,
}

impl MediaInfo {
    /// Parses ffprobe's `-print_format json -show_streams -show_format` output.
    pub fn from_ffprobe_json(json: &str) -> Result<MediaInfo> {
        let raw: RawProbe = serde_json::from_str(json).map_err(|e| {
            MediaError::Internal(format!("ffprobe printed JSON this parser cannot read: {e}"))
        })?;
        let format = raw.format.unwrap_or_default();
        let mut video = None;
        let mut audio = Vec::new();
        for s in &raw.streams {
            match s.codec_type.as_deref() {
                Some("video") if video.is_none() && !s.is_picture() => {
                    video = Some(parse_video(s));
                }
                Some("audio") => audio.push(AudioStream {
                    index: s.index,
                    codec: s.codec_name.clone().unwrap_or_else(|| "unknown".into()),
                    sample_rate: num(&s.sample_rate).map(|v| v as u32),
                    channels: num(&s.channels).map(|v| v as u32),
                    start_time: num(&s.start_time),
                    duration: duration_of(s),
                }),
                _ => {}
            }
        }
        Ok(MediaInfo {
            container: format.format_name.unwrap_or_default(),
            duration: num(&format.duration).and_then(secs),
            start_time: num(&format.start_time),
            size_bytes: num(&format.size).map(|v| v as u64),
            bit_rate: num(&format.bit_rate).map(|v| v as u64),
            video,
            audio,
        })
    }

    /// Best known duration: the container's, else the video stream's.
    pub fn best_duration(&self) -> Option<Duration> {
        self.duration
            .or_else(|| self.video.as_ref().and_then(|v| v.duration))
    }
}

fn parse_video(s: &RawStream) -> VideoStream {
    let pix_fmt = s.pix_fmt.clone().filter(|p| p != "none" && !p.is_empty());
    let frame_rate = s.r_frame_rate.as_deref().and_then(Rational::parse);
    let avg_frame_rate = s.avg_frame_rate.as_deref().and_then(Rational::parse);
    let variable_frame_rate = match (frame_rate, avg_frame_rate) {
        (Some(r), Some(a)) => {
            let (r, a) = (r.as_f64(), a.as_f64());
            (r - a).abs() > 0.01 * r.max(a)
        }
        _ => false,
    };
    let bit_depth = num(&s.bits_per_raw_sample)
        .map(|v| v as u8)
        .filter(|v| *v > 0)
        .or_else(|| pix_fmt.as_deref().and_then(bit_depth_of_pix_fmt));
    VideoStream {
        index: s.index,
        codec: s.codec_name.clone().unwrap_or_else(|| "unknown".into()),
        profile: s.profile.clone(),
        width: num(&s.width).unwrap_or(0.0) as u32,
        height: num(&s.height).unwrap_or(0.0) as u32,
        rotation: rotation_of(s),
        sample_aspect_ratio: s
            .sample_aspect_ratio
            .as_deref()
            .and_then(Rational::parse)
            .filter(|r| r.num != r.den),
        pix_fmt,
        bit_depth,
        color: ColorInfo {
            range: s.color_range.clone().filter(|v| v != "unknown"),
            space: s.color_space.clone().filter(|v| v != "unknown"),
            transfer: s.color_transfer.clone().filter(|v| v != "unknown"),
            primaries: s.color_primaries.clone().filter(|v| v != "unknown"),
        },
        frame_rate,
        avg_frame_rate,
        frame_count: num(&s.nb_frames).map(|v| v as u64).filter(|v| *v > 0),
        variable_frame_rate,
        time_base: s.time_base.as_deref().and_then(Rational::parse),
        start_time: num(&s.start_time),
        duration: duration_of(s),
        has_b_frames: num(&s.has_b_frames).unwrap_or(0.0) as u32,
    }
}

/// Display rotation: the display matrix side data wins (ffprobe prints its angle
/// counter-clockwise); the legacy `rotate` tag (clockwise, written by old muxers and printed by old
/// ffprobe versions) is the fallback.
fn rotation_of(s: &RawStream) -> Rotation {
    for sd in &s.side_data_list {
        if sd.side_data_type.as_deref() == Some("Display Matrix")
            && let Some(ccw) = num(&sd.rotation)
        {
            return Rotation::from_clockwise_degrees(-ccw);
        }
    }
    if let Some(tag) = s
        .tags
        .as_ref()
        .and_then(|t| t.get("rotate"))
        .and_then(|v| num(&Some(v.clone())))
    {
        return Rotation::from_clockwise_degrees(tag);
    }
    Rotation::None
}

/// Bits per component from a pixel format name ("yuv420p10le" -> 10, "rgb24" -> 8).
pub fn bit_depth_of_pix_fmt(pix_fmt: &str) -> Option<u8> {
    let p = pix_fmt.trim_end_matches("le").trim_end_matches("be");
    for (suffix, depth) in [
        ("p16", 16),
        ("p14", 14),
        ("p12", 12),
        ("p10", 10),
        ("p9", 9),
    ] {
        if p.ends_with(suffix) {
            return Some(depth);
        }
    }
    match p {
        "p010" | "p210" | "p410" | "x2rgb10" | "x2bgr10" | "gray10" | "y210" => Some(10),
        "p016" | "gray16" | "rgb48" | "bgr48" | "rgba64" | "bgra64" | "ya16" => Some(16),
        "gray12" => Some(12),
        "" => None,
        _ => Some(8),
    }
}

fn duration_of(s: &RawStream) -> Option<Duration> {
    num(&s.duration).and_then(secs).or_else(|| {
        // Matroska keeps per-stream durations in a DURATION tag ("00:00:03.666000000").
        let tags = s.tags.as_ref()?;
        let v = tags.get("DURATION").or_else(|| tags.get("duration"))?;
        parse_hms(v.as_str()?)
    })
}

fn parse_hms(s: &str) -> Option<Duration> {
    let mut parts = s.split(':');
    let h: f64 = parts.next()?.parse().ok()?;
    let m: f64 = parts.next()?.parse().ok()?;
    let sec: f64 = parts.next()?.parse().ok()?;
    secs(h * 3600.0 + m * 60.0 + sec)
}

fn secs(v: f64) -> Option<Duration> {
    (v.is_finite() && v >= 0.0).then(|| Duration::from_secs_f64(v))
}

/// A JSON value that ffprobe prints either as a number or as a string ("N/A" counts as absent).
fn num(v: &Option<Value>) -> Option<f64> {
    match v.as_ref()? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
        _ => None,
    }
}

#[derive(Debug, Deserialize)]
struct RawProbe {
    #[serde(default)]
    streams: Vec<RawStream>,
    format: Option<RawFormat>,
}

#[derive(Debug, Default, Deserialize)]
struct RawFormat {
    format_name: Option<String>,
    start_time: Option<Value>,
    duration: Option<Value>,
    size: Option<Value>,
    bit_rate: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct RawStream {
    index: u32,
    codec_name: Option<String>,
    codec_type: Option<String>,
    profile: Option<String>,
    width: Option<Value>,
    height: Option<Value>,
    sample_aspect_ratio: Option<String>,
    pix_fmt: Option<String>,
    color_range: Option<String>,
    color_space: Option<String>,
    color_transfer: Option<String>,
    color_primaries: Option<String>,
    has_b_frames: Option<Value>,
    r_frame_rate: Option<String>,
    avg_frame_rate: Option<String>,
    time_base: Option<String>,
    start_time: Option<Value>,
    duration: Option<Value>,
    nb_frames: Option<Value>,
    bits_per_raw_sample: Option<Value>,
    sample_rate: Option<Value>,
    channels: Option<Value>,
    #[serde(default)]
    disposition: std::collections::HashMap<String, Value>,
    tags: Option<serde_json::Map<String, Value>>,
    #[serde(default)]
    side_data_list: Vec<RawSideData>,
}

impl RawStream {
    /// Cover art and thumbnails are "video" streams of one picture: not something to convert.
    fn is_picture(&self) -> bool {
        ["attached_pic", "timed_thumbnails", "still_image"]
            .iter()
            .any(|k| self.disposition.get(*k).and_then(Value::as_i64) == Some(1))
    }
}

#[derive(Debug, Deserialize)]
struct RawSideData {
    side_data_type: Option<String>,
    rotation: Option<Value>,
}

impl Media {
    /// Runs ffprobe on a file (with the untrusted-input restrictions) and parses the result.
    /// This checks nothing beyond "ffprobe can read it"; [`Media::validate`] applies the rules.
    pub async fn probe(&self, path: &Path) -> Result<MediaInfo> {
        Ok(self.probe_impl(path, None).await?.0)
    }

    /// [`Media::probe`] plus an exact count of the video stream's packets (frames), in one
    /// ffprobe run. Counting demuxes the whole file (no decoding): cheap, but proportional to its
    /// length, so the time limit is scaled by `media_duration`.
    pub async fn probe_counting(
        &self,
        path: &Path,
        media_duration: Duration,
    ) -> Result<(MediaInfo, u64)> {
        let (info, count) = self.probe_impl(path, Some(media_duration)).await?;
        Ok((info, count.unwrap_or(0)))
    }

    async fn probe_impl(
        &self,
        path: &Path,
        count_for: Option<Duration>,
    ) -> Result<(MediaInfo, Option<u64>)> {
        let head = sniff::sniff(path)?;
        let timeout = match count_for {
            Some(d) => self.config().timeouts.probe + self.config().timeouts.for_copy(d),
            None => self.config().timeouts.probe,
        };
        let mut inv = self.ffprobe(timeout);
        inv.args(["-print_format", "json", "-show_format", "-show_streams"]);
        if count_for.is_some() {
            inv.arg("-count_packets");
        }
        inv.args(["-protocol_whitelist", "file,pipe"]);
        inv.arg("-format_whitelist")
            .arg(self.config().allowed_demuxers.join(","));
        inv.arg(crate::config::file_url(path)?);
        let fin = run(&inv, StdoutMode::Collect { limit: 16 << 20 }).await?;
        if !fin.status.success() {
            return Err(sniff::classify_probe_failure(
                &head,
                &fin.stderr,
                &self.config().allowed_demuxers,
            ));
        }
        let text = String::from_utf8_lossy(&fin.stdout);
        let info = MediaInfo::from_ffprobe_json(&text)?;
        let count = match (count_for, &info.video) {
            (Some(_), Some(v)) => video_packet_count(&text, v.index),
            _ => None,
        };
        Ok((info, count))
    }
}

/// `nb_read_packets` of stream `index` in ffprobe JSON run with `-count_packets`.
fn video_packet_count(json: &str, index: u32) -> Option<u64> {
    let raw: Value = serde_json::from_str(json).ok()?;
    raw.get("streams")?
        .as_array()?
        .iter()
        .find(|s| s.get("index").and_then(Value::as_u64) == Some(u64::from(index)))
        .and_then(|s| num(&s.get("nb_read_packets").cloned()))
        .map(|v| v as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rationals_parse_like_ffprobe_prints_them() {
        assert_eq!(
            Rational::parse("30000/1001"),
            Some(Rational::new(30000, 1001))
        );
        assert_eq!(Rational::parse("16:9"), Some(Rational::new(16, 9)));
        assert_eq!(Rational::parse("25"), Some(Rational::new(25, 1)));
        assert_eq!(Rational::parse("0/0"), None);
        assert_eq!(Rational::parse("N/A"), None);
        assert_eq!(Rational::new(1200, 60).reduced(), Rational::new(20, 1));
        assert_eq!(Rational::new(3, -6).reduced(), Rational::new(-1, 2));
    }

    #[test]
    fn rotation_conversions_agree() {
        for r in [
            Rotation::None,
            Rotation::Cw90,
            Rotation::R180,
            Rotation::Ccw90,
        ] {
            assert_eq!(
                Rotation::from_clockwise_degrees(r.clockwise_degrees() as f64),
                r
            );
            assert_eq!(
                Rotation::from_clockwise_degrees(-(r.display_matrix_degrees() as f64)),
                r
            );
        }
        assert_eq!(Rotation::from_clockwise_degrees(-90.0), Rotation::Ccw90);
        assert_eq!(Rotation::from_clockwise_degrees(450.0), Rotation::Cw90);
        assert_eq!(Rotation::from_clockwise_degrees(89.6), Rotation::Cw90);
    }

    #[test]
    fn bit_depths_from_pixel_format_names() {
        assert_eq!(bit_depth_of_pix_fmt("yuv420p"), Some(8));
        assert_eq!(bit_depth_of_pix_fmt("yuvj420p"), Some(8));
        assert_eq!(bit_depth_of_pix_fmt("yuv420p10le"), Some(10));
        assert_eq!(bit_depth_of_pix_fmt("yuv422p12be"), Some(12));
        assert_eq!(bit_depth_of_pix_fmt("p010le"), Some(10));
        assert_eq!(bit_depth_of_pix_fmt("rgb48le"), Some(16));
        assert_eq!(bit_depth_of_pix_fmt("gbrp10le"), Some(10));
    }

    #[test]
    fn legacy_rotate_tag_is_clockwise_and_side_data_wins() {
        let tag_only = r#"{"streams":[{"index":0,"codec_type":"video","codec_name":"h264",
            "width":1920,"height":1080,"pix_fmt":"yuv420p","r_frame_rate":"30/1",
            "avg_frame_rate":"30/1","tags":{"rotate":"90"}}],
            "format":{"format_name":"mov,mp4,m4a,3gp,3g2,mj2","duration":"1.0"}}"#;
        let info = MediaInfo::from_ffprobe_json(tag_only).expect("parses");
        let v = info.video.expect("video");
        assert_eq!(v.rotation, Rotation::Cw90);
        assert_eq!(v.display_size(), (1080, 1920));

        let both = tag_only.replace(
            r#""tags":{"rotate":"90"}"#,
            r#""tags":{"rotate":"90"},"side_data_list":[{"side_data_type":"Display Matrix","rotation":180}]"#,
        );
        let v = MediaInfo::from_ffprobe_json(&both)
            .expect("parses")
            .video
            .expect("video");
        assert_eq!(v.rotation, Rotation::R180);
    }

    #[test]
    fn cover_art_is_not_the_video_stream() {
        let json = r#"{"streams":[
            {"index":0,"codec_type":"audio","codec_name":"mp3","sample_rate":"44100","channels":2},
            {"index":1,"codec_type":"video","codec_name":"mjpeg","width":500,"height":500,
             "disposition":{"attached_pic":1}}],
            "format":{"format_name":"mp3","duration":"180.0"}}"#;
        let info = MediaInfo::from_ffprobe_json(json).expect("parses");
        assert!(info.video.is_none());
        assert_eq!(info.audio.len(), 1);
        assert_eq!(info.audio[0].sample_rate, Some(44100));
    }

    #[test]
    fn packet_counts_are_read_from_count_packets_output() {
        let json = r#"{"streams":[{"index":0,"codec_type":"audio","nb_read_packets":"9"},
            {"index":1,"codec_type":"video","nb_read_packets":"42"}]}"#;
        assert_eq!(video_packet_count(json, 1), Some(42));
        assert_eq!(video_packet_count(json, 2), None);
    }

    #[test]
    fn garbage_json_is_an_internal_error() {
        let err = MediaInfo::from_ffprobe_json("{not json").expect_err("fails");
        assert_eq!(err.code(), "internal");
    }

    #[test]
    fn output_rate_is_average_for_vfr_and_nominal_otherwise() {
        let json = r#"{"streams":[{"index":0,"codec_type":"video","codec_name":"h264",
            "width":2,"height":2,"r_frame_rate":"30/1","avg_frame_rate":"1200/59"}],
            "format":{"format_name":"mov"}}"#;
        let v = MediaInfo::from_ffprobe_json(json)
            .expect("parses")
            .video
            .expect("video");
        assert!(v.variable_frame_rate);
        assert_eq!(v.output_frame_rate(), Some(Rational::new(1200, 59)));
    }
}
