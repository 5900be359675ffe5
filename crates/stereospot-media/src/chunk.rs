//! Chunking: split a source into independently decodable, video-only MP4 segments of about a
//! target duration, such that the segments together hold exactly the source's frames.
//!
//! See the crate documentation for the strategy (stream copy at clean keyframes when the
//! keyframes allow it, otherwise one re-encode with keyframes forced at the cuts) and the numbers
//! behind it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};

use crate::config::{Media, file_url};
use crate::error::{MediaError, Result};
use crate::packets::PacketScan;
use crate::probe::{MediaInfo, VideoStream};
use crate::process::{StdoutMode, run, temp_dir};
use crate::validate::{DecodeCheck, ValidateOptions, Validated};

/// How segments are cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChunkMethod {
    /// Stream copy when the source's keyframes allow segments within the tolerance of the
    /// target, re-encode otherwise. The default.
    #[default]
    Auto,
    /// Stream copy at clean keyframes (lossless, fast); fails when the keyframes are too far
    /// apart for the tolerance.
    Copy,
    /// Re-encode the video once with a keyframe forced at every cut (any source, any spacing).
    Reencode,
}

/// Encoder settings for re-encoded segments: an intermediate that is converted again, so quality
/// high and speed first.
#[derive(Debug, Clone, PartialEq)]
pub struct ReencodeSettings {
    /// x264 CRF (default 16).
    pub crf: u8,
    /// x264 preset (default "veryfast").
    pub preset: String,
}

impl Default for ReencodeSettings {
    fn default() -> Self {
        ReencodeSettings {
            crf: 16,
            preset: "veryfast".into(),
        }
    }
}

/// Options of [`Media::chunk`].
#[derive(Debug, Clone, PartialEq)]
pub struct ChunkOptions {
    /// Wanted segment duration (default 20 s).
    pub target_duration: Duration,
    /// Copy, re-encode, or decide (default).
    pub method: ChunkMethod,
    /// Accepted deviation from the target for copied segments, as a fraction (default 0.5: every
    /// segment but the last between 0.5x and 1.5x the target; the last at most 1.5x).
    pub tolerance: f64,
    /// Settings when re-encoding.
    pub reencode: ReencodeSettings,
    /// Validation run first (the chunker always validates its input).
    pub validate: ValidateOptions,
}

impl Default for ChunkOptions {
    fn default() -> Self {
        ChunkOptions {
            target_duration: Duration::from_secs(20),
            method: ChunkMethod::Auto,
            tolerance: 0.5,
            reencode: ReencodeSettings::default(),
            validate: ValidateOptions {
                decode_check: DecodeCheck::default(),
            },
        }
    }
}

/// One segment.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentInfo {
    /// Zero-based index.
    pub index: u32,
    /// Number of segments.
    pub total: u32,
    /// The segment file (`segment_{index:05}.mp4` in the output directory).
    pub path: PathBuf,
    /// Frames in the segment.
    pub frame_count: u64,
    /// Index of the segment's first frame in the source.
    pub first_frame: u64,
    /// Presentation time of the first frame, from the start of the source's video.
    pub start_time: Duration,
    /// Duration of the segment.
    pub duration: Duration,
}

/// The result of chunking.
#[derive(Debug, Clone)]
pub struct Chunked {
    /// The method actually used (`Copy` or `Reencode`, never `Auto`).
    pub method: ChunkMethod,
    /// Why that method (for logs and job details).
    pub reason: String,
    /// The segments, in order.
    pub segments: Vec<SegmentInfo>,
    /// Frames in the source (= the sum of segment frame counts).
    pub frame_count: u64,
    /// The validated source.
    pub source: MediaInfo,
}

/// Plans copy cuts: decoding-order indices of clean keyframes (which are also display indices),
/// or why copying cannot meet the tolerance.
pub(crate) fn plan_copy(
    scan: &PacketScan,
    target: f64,
    tolerance: f64,
) -> std::result::Result<Vec<usize>, String> {
    let times = frame_times(scan);
    let total = scan.duration().map(|d| d.as_secs_f64()).unwrap_or(0.0);
    let clean = scan.clean_cut_points();
    let (lo, hi) = (target * (1.0 - tolerance), target * (1.0 + tolerance));
    let mut cuts = Vec::new();
    let mut last = 0.0;
    while total - last > hi {
        let best = clean
            .iter()
            .copied()
            .filter(|&i| times[i] > last + lo && times[i] <= last + hi)
            .min_by(|&a, &b| {
                let da = (times[a] - last - target).abs();
                let db = (times[b] - last - target).abs();
                da.total_cmp(&db)
            });
        match best {
            Some(i) => {
                cuts.push(i);
                last = times[i];
            }
            None => {
                return Err(format!(
                    "no clean keyframe between {:.1}s and {:.1}s ({} usable keyframes in {:.1}s)",
                    last + lo,
                    last + hi,
                    clean.len(),
                    total
                ));
            }
        }
    }
    Ok(cuts)
}

/// Plans re-encode cuts: equal frame counts, as many segments as the target duration suggests.
pub(crate) fn plan_reencode(frames: usize, total: f64, target: f64) -> (Vec<usize>, usize) {
    let n_seg = ((total / target).round() as usize).clamp(1, frames.max(1));
    let per = frames.div_ceil(n_seg).max(1);
    let cuts = (1..n_seg)
        .map(|k| k * per)
        .filter(|&c| c < frames)
        .collect();
    (cuts, per)
}

/// Display times (seconds from the first frame) in display order.
fn frame_times(scan: &PacketScan) -> Vec<f64> {
    let pts = scan.display_pts();
    let first = pts.first().copied().unwrap_or(0);
    pts.iter().map(|p| scan.seconds(p - first)).collect()
}

/// Segment boundaries from cuts: (first frame, frame count, start, duration) per segment.
pub(crate) fn segment_bounds(
    cuts: &[usize],
    times: &[f64],
    total: f64,
) -> Vec<(u64, u64, f64, f64)> {
    let n = times.len();
    let mut starts = vec![0usize];
    starts.extend_from_slice(cuts);
    starts
        .iter()
        .enumerate()
        .map(|(k, &s)| {
            let end = starts.get(k + 1).copied().unwrap_or(n);
            let t0 = times.get(s).copied().unwrap_or(0.0);
            let t1 = if end < n { times[end] } else { total };
            (s as u64, (end - s) as u64, t0, (t1 - t0).max(0.0))
        })
        .collect()
}

/// Output options: the video stream only, no metadata or chapters from the user's file.
const VIDEO_ONLY: &[&str] = &[
    "-an",
    "-sn",
    "-dn",
    "-map_metadata",
    "-1",
    "-map_chapters",
    "-1",
];

/// Codecs the MP4 muxer takes as they are (anything else is re-encoded).
const COPYABLE_CODECS: &[&str] = &["h264", "hevc", "av1", "vp9", "mpeg4"];

impl Media {
    /// Validates `source` and splits its video into segments in `out_dir` (created if needed).
    /// Segment files are staged in a temp dir under the temp root and moved into `out_dir` only
    /// when all of them are complete and verified; on failure nothing is left behind.
    pub async fn chunk(
        &self,
        source: &Path,
        out_dir: &Path,
        opts: &ChunkOptions,
    ) -> Result<Chunked> {
        if !(opts.tolerance >= 0.0 && opts.tolerance < 1.0) {
            return Err(MediaError::InvalidArgument(format!(
                "tolerance {} is outside [0, 1)",
                opts.tolerance
            )));
        }
        if opts.target_duration < Duration::from_millis(100) {
            return Err(MediaError::InvalidArgument(format!(
                "target duration {:?} is too short",
                opts.target_duration
            )));
        }
        let validated = self.validate_with(source, &opts.validate).await?;
        let video = validated.video()?.clone();
        let scan = &validated.scan;
        let frames = scan.packets.len();
        let total = scan
            .duration()
            .or(validated.info.best_duration())
            .unwrap_or_default();
        let target = opts.target_duration.as_secs_f64();

        let copy_plan = if !COPYABLE_CODECS.contains(&video.codec.as_str()) {
            Err(format!("{} cannot be stream-copied into MP4", video.codec))
        } else if !scan.has_all_pts() {
            Err("the source's frames have no timestamps".to_string())
        } else if scan.is_variable_frame_rate() && scan.has_reordering() {
            // MP4 derives durations from decoding timestamps: with B-frames at a variable rate a
            // copied segment's duration is off by the reordering delay, and joins would drift.
            Err(
                "variable frame rate with B-frames: copied segments would not have exact durations"
                    .to_string(),
            )
        } else {
            plan_copy(scan, target, opts.tolerance)
        };
        let (method, reason, cuts, per) = match (opts.method, copy_plan) {
            (ChunkMethod::Reencode, _) => {
                let (cuts, per) = plan_reencode(frames, total.as_secs_f64(), target);
                (
                    ChunkMethod::Reencode,
                    "re-encode requested".to_string(),
                    cuts,
                    per,
                )
            }
            (ChunkMethod::Copy | ChunkMethod::Auto, Ok(cuts)) => (
                ChunkMethod::Copy,
                "keyframes allow clean cuts near the target".to_string(),
                cuts,
                0,
            ),
            (ChunkMethod::Copy, Err(why)) => {
                return Err(MediaError::InvalidArgument(format!(
                    "cannot chunk by stream copy: {why}"
                )));
            }
            (ChunkMethod::Auto, Err(why)) => {
                let (cuts, per) = plan_reencode(frames, total.as_secs_f64(), target);
                (ChunkMethod::Reencode, why, cuts, per)
            }
        };
        tracing::info!(
            source = %source.display(),
            ?method,
            %reason,
            segments = cuts.len() + 1,
            frames,
            "chunking"
        );

        let staging = temp_dir(&self.config().temp_root, "chunk")?;
        let result = self
            .run_chunk(
                source,
                &validated,
                &video,
                method,
                &cuts,
                per,
                staging.path(),
                total,
                opts,
            )
            .await;
        match result {
            Ok(files) => {
                let times = frame_times(scan);
                let bounds = segment_bounds(&cuts, &times, total.as_secs_f64());
                let moved = move_segments(&files, out_dir)?;
                let total_segments = moved.len() as u32;
                let segments = moved
                    .into_iter()
                    .zip(bounds)
                    .enumerate()
                    .map(|(i, (path, (first, count, t0, dur)))| SegmentInfo {
                        index: i as u32,
                        total: total_segments,
                        path,
                        frame_count: count,
                        first_frame: first,
                        start_time: Duration::from_secs_f64(t0),
                        duration: Duration::from_secs_f64(dur),
                    })
                    .collect();
                Ok(Chunked {
                    method,
                    reason,
                    segments,
                    frame_count: frames as u64,
                    source: validated.info.clone(),
                })
            }
            Err(e) if opts.method == ChunkMethod::Auto && method == ChunkMethod::Copy => {
                // A copy that did not verify (a muxer cutting elsewhere than planned) falls back.
                tracing::warn!(error = %e, "stream-copy chunking failed verification, re-encoding");
                drop(staging);
                let retry = ChunkOptions {
                    method: ChunkMethod::Reencode,
                    validate: ValidateOptions {
                        decode_check: DecodeCheck::Skip,
                    },
                    ..opts.clone()
                };
                let mut out = Box::pin(self.chunk(source, out_dir, &retry)).await?;
                out.reason = format!("stream copy failed verification ({e})");
                Ok(out)
            }
            Err(e) => Err(e),
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn run_chunk(
        &self,
        source: &Path,
        validated: &Validated,
        video: &VideoStream,
        method: ChunkMethod,
        cuts: &[usize],
        per: usize,
        staging: &Path,
        total: Duration,
        opts: &ChunkOptions,
    ) -> Result<Vec<PathBuf>> {
        let timeouts = &self.config().timeouts;
        // Shift the source so the video's first frame is at 0 in the first segment too (ffmpeg
        // already subtracts the container start; the video may start later than the audio).
        let offset = video_offset(&validated.info, video);
        let intermediate = staging.join("reencoded.mp4");
        let (input, stream, rotation, offset) = match method {
            ChunkMethod::Reencode => {
                // Re-encode the whole video once, keyframes forced at the cuts, then cut that
                // by stream copy. Cutting in the same pass would give each segment's last frame
                // the encoder's nominal duration instead of the real one (wrong for VFR).
                let mut inv = self.ffmpeg(timeouts.for_encode(total));
                if offset != 0.0 {
                    inv.args(["-itsoffset", &format!("{offset:.6}")]);
                }
                self.untrusted_input(&mut inv, source)?;
                inv.args(["-map", &format!("0:{}", video.index)]);
                inv.args(VIDEO_ONLY);
                inv.args(["-fps_mode", "passthrough"]);
                let (w, h) = video.display_size();
                if w % 2 == 1 || h % 2 == 1 {
                    inv.args(["-vf", "crop=trunc(iw/2)*2:trunc(ih/2)*2:0:0"]);
                }
                inv.args(["-c:v", "libx264", "-preset", &opts.reencode.preset]);
                inv.args(["-crf", &opts.reencode.crf.to_string()]);
                // No B-frames: decoding order = display order, so every MP4 sample duration is
                // the real frame duration, even at a variable frame rate.
                inv.args(["-bf", "0"]);
                inv.args(["-force_key_frames", &format!("expr:not(mod(n,{per}))")]);
                inv.args(["-avoid_negative_ts", "disabled", "-f", "mp4"]);
                inv.arg(file_url(&intermediate)?);
                run(&inv, StdoutMode::Ignore)
                    .await?
                    .check(crate::Tool::Ffmpeg)?;
                // Autorotation made the pictures upright; the offset is applied.
                (intermediate.as_path(), 0, 0, 0.0)
            }
            _ => (
                source,
                video.index,
                video.rotation.display_matrix_degrees(),
                offset,
            ),
        };

        let mut inv = self.ffmpeg(timeouts.for_copy(total));
        if offset != 0.0 {
            inv.args(["-itsoffset", &format!("{offset:.6}")]);
        }
        self.untrusted_input(&mut inv, input)?;
        inv.args(["-map", &format!("0:{stream}")]);
        inv.args(VIDEO_ONLY);
        inv.args(["-c:v", "copy"]);
        if rotation != 0 {
            // The segment muxer drops the display matrix; write it back per segment.
            inv.args(["-metadata:s:v:0", &format!("rotate={rotation}")]);
        }
        // MP4 allows negative DTS (B-frames) through an edit list: keep timestamps as they are.
        inv.args(["-avoid_negative_ts", "disabled"]);
        if cuts.is_empty() {
            inv.args(["-f", "mp4"]);
            inv.arg(file_url(&staging.join("seg_00000.mp4"))?);
        } else {
            let list: Vec<String> = cuts.iter().map(usize::to_string).collect();
            inv.args(["-f", "segment", "-segment_format", "mp4"]);
            inv.args(["-segment_frames", &list.join(",")]);
            inv.args(["-reset_timestamps", "1"]);
            inv.arg(file_url(&staging.join("seg_%05d.mp4"))?);
        }
        run(&inv, StdoutMode::Ignore)
            .await?
            .check(crate::Tool::Ffmpeg)?;
        if method == ChunkMethod::Reencode {
            let _ = std::fs::remove_file(&intermediate);
        }

        let mut files: Vec<PathBuf> = std::fs::read_dir(staging)
            .map_err(|e| MediaError::io(format!("listing {}", staging.display()), e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("seg_") && n.ends_with(".mp4"))
            })
            .collect();
        files.sort();
        if files.len() != cuts.len() + 1 {
            return Err(MediaError::Internal(format!(
                "ffmpeg wrote {} segments, {} were planned",
                files.len(),
                cuts.len() + 1
            )));
        }
        // Verify: each segment holds exactly the planned frames. Our own MP4s are read in
        // process (starting an ffprobe per segment would cost more than the cut itself).
        let frames = validated.scan.packets.len();
        let counts: Vec<u64> = futures::stream::iter(files.iter())
            .map(|file| async move {
                match crate::mp4::video_sample_count(file)? {
                    Some(n) => Ok(n),
                    None => self.count_packets(file, total).await,
                }
            })
            .buffered(parallelism())
            .try_collect()
            .await?;
        for (k, got) in counts.into_iter().enumerate() {
            let start = if k == 0 { 0 } else { cuts[k - 1] };
            let end = cuts.get(k).copied().unwrap_or(frames);
            if got != (end - start) as u64 {
                return Err(MediaError::Internal(format!(
                    "segment {k} holds {got} frames, {} were planned",
                    end - start
                )));
            }
        }
        Ok(files)
    }

    /// Number of video packets (frames) in a file, by demuxing (no decoding).
    pub async fn count_packets(&self, path: &Path, budget: Duration) -> Result<u64> {
        let mut inv = self.ffprobe(self.config().timeouts.for_copy(budget));
        inv.args(["-select_streams", "v:0", "-count_packets"]);
        inv.args(["-show_entries", "stream=nb_read_packets", "-of", "csv=p=0"]);
        inv.args(["-protocol_whitelist", "file,pipe"]);
        inv.arg("-format_whitelist")
            .arg(self.config().allowed_demuxers.join(","));
        inv.arg(file_url(path)?);
        let fin = run(&inv, StdoutMode::Collect { limit: 4096 })
            .await?
            .check(crate::Tool::Ffprobe)?;
        let text = String::from_utf8_lossy(&fin.stdout);
        text.trim()
            .trim_end_matches(',')
            .parse()
            .map_err(|_| MediaError::Internal(format!("unexpected packet count {text:?}")))
    }
}

/// How many ffprobe checks run at once.
pub(crate) fn parallelism() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 8))
}

/// Seconds to add to the source's (container-normalised) timestamps so its first video frame is
/// at zero: ffmpeg subtracts the container start, which is earlier than the video's when audio
/// starts first.
pub(crate) fn video_offset(info: &MediaInfo, video: &VideoStream) -> f64 {
    match (info.start_time, video.start_time) {
        (Some(container), Some(v)) if v > container => container - v,
        _ => 0.0,
    }
}

/// Moves staged segment files into `out_dir` as `segment_{index:05}.mp4`; on failure removes
/// what was already moved.
fn move_segments(files: &[PathBuf], out_dir: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out_dir)
        .map_err(|e| MediaError::io(format!("creating {}", out_dir.display()), e))?;
    let mut moved = Vec::with_capacity(files.len());
    for (i, f) in files.iter().enumerate() {
        let dest = out_dir.join(format!("segment_{i:05}.mp4"));
        let res = std::fs::rename(f, &dest).or_else(|_| {
            // Different file systems: copy, then the staging dir is removed anyway.
            std::fs::copy(f, &dest).map(|_| ())
        });
        if let Err(e) = res {
            let _ = std::fs::remove_file(&dest);
            for m in &moved {
                let _ = std::fs::remove_file(m);
            }
            return Err(MediaError::io(
                format!("moving a segment to {}", dest.display()),
                e,
            ));
        }
        moved.push(dest);
    }
    Ok(moved)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packets::Packet;
    use crate::probe::Rational;
    use proptest::prelude::*;

    /// A CFR stream at 25 fps (time base 1/1000) with keyframes at the given display indices and
    /// no B-frames.
    fn cfr(frames: usize, keys: &[usize]) -> PacketScan {
        PacketScan {
            time_base: Rational::new(1, 1000),
            packets: (0..frames)
                .map(|i| Packet {
                    pts: Some(i as i64 * 40),
                    dts: Some(i as i64 * 40),
                    duration: Some(40),
                    key: i == 0 || keys.contains(&i),
                    pos: None,
                    size: 1,
                })
                .collect(),
            errors: Vec::new(),
        }
    }

    #[test]
    fn copy_cuts_at_the_keyframe_nearest_the_target() {
        // 60 s, keyframes every 2 s (50 frames): cuts at 20 s and 40 s exactly.
        let keys: Vec<usize> = (1..30).map(|k| k * 50).collect();
        let scan = cfr(1500, &keys);
        assert_eq!(plan_copy(&scan, 20.0, 0.5), Ok(vec![500, 1000]));
    }

    #[test]
    fn copy_takes_a_single_segment_when_the_whole_fits() {
        let scan = cfr(700, &[]);
        assert_eq!(plan_copy(&scan, 20.0, 0.5), Ok(vec![]));
    }

    #[test]
    fn copy_is_refused_when_keyframes_are_too_far_apart() {
        // 60 s with a single keyframe at 45 s.
        let scan = cfr(1500, &[1125]);
        let why = plan_copy(&scan, 20.0, 0.5).expect_err("infeasible");
        assert!(why.contains("no clean keyframe"), "{why}");
    }

    #[test]
    fn reencode_plans_balanced_segments() {
        let (cuts, per) = plan_reencode(1500, 60.0, 20.0);
        assert_eq!((cuts, per), (vec![500, 1000], 500));
        let (cuts, per) = plan_reencode(280, 14.0, 20.0);
        assert_eq!((cuts, per), (vec![], 280));
        let (cuts, per) = plan_reencode(109, 3.6, 1.0);
        assert_eq!((cuts, per), (vec![28, 56, 84], 28));
    }

    #[test]
    fn bounds_cover_every_frame_once() {
        let times: Vec<f64> = (0..10).map(|i| i as f64 * 0.5).collect();
        let b = segment_bounds(&[4, 7], &times, 5.0);
        assert_eq!(
            b,
            vec![(0, 4, 0.0, 2.0), (4, 3, 2.0, 1.5), (7, 3, 3.5, 1.5)]
        );
    }

    #[test]
    fn video_offset_moves_a_late_video_to_zero() {
        let json = r#"{"streams":[{"index":0,"codec_type":"video","codec_name":"h264","width":2,
            "height":2,"pix_fmt":"yuv420p","start_time":"0.52"}],
            "format":{"format_name":"matroska,webm","start_time":"0.0"}}"#;
        let info = MediaInfo::from_ffprobe_json(json).expect("parses");
        let v = info.video.clone().expect("video");
        assert!((video_offset(&info, &v) + 0.52).abs() < 1e-9);
    }

    proptest! {
        #[test]
        fn copy_plans_partition_frames_within_tolerance(
            frames in 50usize..3000,
            gop in 5usize..400,
            target_frames in 25usize..1000,
        ) {
            let keys: Vec<usize> = (1..frames).filter(|i| i % gop == 0).collect();
            let scan = cfr(frames, &keys);
            let target = target_frames as f64 * 0.04;
            if let Ok(cuts) = plan_copy(&scan, target, 0.5) {
                let times = frame_times(&scan);
                let total = frames as f64 * 0.04;
                let bounds = segment_bounds(&cuts, &times, total);
                let sum: u64 = bounds.iter().map(|b| b.1).sum();
                prop_assert_eq!(sum, frames as u64);
                for (k, b) in bounds.iter().enumerate() {
                    prop_assert!(b.1 > 0);
                    prop_assert!(b.3 <= target * 1.5 + 1e-9);
                    if k + 1 < bounds.len() {
                        prop_assert!(b.3 > target * 0.5 - 1e-9);
                    }
                }
                for c in &cuts {
                    prop_assert!(keys.contains(c));
                }
            }
        }

        #[test]
        fn reencode_plans_partition_frames(frames in 1usize..100_000, secs in 0.1f64..20_000.0, target in 1.0f64..60.0) {
            let (cuts, per) = plan_reencode(frames, secs, target);
            prop_assert!(per >= 1);
            let mut prev = 0;
            for c in &cuts {
                prop_assert!(*c > prev && *c < frames);
                prop_assert_eq!(c % per, 0);
                prev = *c;
            }
        }
    }
}
