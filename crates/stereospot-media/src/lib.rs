//! StereoSpot's media layer: the one crate that talks to ffmpeg, ffprobe and yt-dlp. The stereo
//! engine reads and writes frames through it; the media worker ingests URLs, validates, chunks
//! and joins with it.
//!
//! ```no_run
//! # async fn demo() -> stereospot_media::Result<()> {
//! use std::path::{Path, PathBuf};
//! use stereospot_media::*;
//!
//! let media = Media::new(MediaConfig::default());
//! // Media worker: check the upload, cut it into segments.
//! let chunked = media
//!     .chunk(Path::new("source.mp4"), Path::new("segments"), &ChunkOptions::default())
//!     .await?;
//! // Stereo engine, per segment, on a blocking thread: frames in, frames out.
//! let seg = chunked.segments[0].path.clone();
//! let m = media.clone();
//! tokio::task::spawn_blocking(move || -> Result<()> {
//!     let reader = FrameReader::open(&m, &seg, &ReadOptions::default())?;
//!     let src = reader.source().clone();
//!     let mut writer = FrameWriter::create(
//!         &m, Path::new("out_00000.mp4"), src.width, src.height, src.frame_rate,
//!         &EncodeOptions::default(),
//!     )?;
//!     for frame in reader {
//!         let frame = frame?; // depth, view synthesis, compositing would go here
//!         writer.write_frame(&frame)?;
//!     }
//!     writer.finish()?;
//!     Ok(())
//! })
//! .await
//! .expect("engine thread")?;
//! // Media worker: join the converted segments with the source's audio.
//! let outputs: Vec<PathBuf> = vec![PathBuf::from("out_00000.mp4")];
//! media
//!     .join(&outputs, Path::new("final.mp4"), &JoinOptions {
//!         audio_from: Some(PathBuf::from("source.mp4")),
//!         timeout: None,
//!     })
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! # Processes
//!
//! Every ffmpeg and ffprobe run gets an argument vector (never a shell string), `kill_on_drop`,
//! and a time limit after which it is killed and [`MediaError::Timeout`] returned; limits scale
//! with the media's duration ([`Timeouts`]). A missing program is
//! [`MediaError::ToolMissing`] ("ffmpeg not found: install it with apt-get install
//! ffmpeg"), a failed one carries the last lines of its stderr. Temporary directories are
//! [`tempfile::TempDir`] guards under [`MediaConfig::temp_root`], removed on every path,
//! including errors and timeouts (the tests assert the temp root is empty afterwards).
//!
//! # Untrusted input
//!
//! An upload is hostile until validated. Three layers keep ffmpeg from reading anything but the
//! file itself:
//!
//! 1. The first bytes are sniffed before any ffmpeg runs: HLS playlists (`#EXTM3U`), ffconcat
//!    scripts and DASH manifests are rejected as [`MediaError::ForbiddenReference`], HTML pages
//!    as `not_media`, empty files as `empty_file`.
//! 2. `-protocol_whitelist file,pipe`: no network protocol, whatever a demuxer asks for.
//! 3. `-format_whitelist` with [`DEFAULT_DEMUXERS`]: ordinary containers only. Demuxers that
//!    open other files by name (hls, dash, concat, image2 patterns, sdp, tee, ...) are not on it,
//!    so even a file that slipped past the sniffer cannot name `/etc/passwd` or another user's
//!    upload (`file` is an allowed protocol, so layer 2 alone would not stop that). The mov
//!    demuxer's external data references stay at ffmpeg's default, disabled.
//!
//! Inputs are always passed as `file:/absolute/path`, so a name like `http:x.mp4` is never a URL.
//! The join's concat list is written by us, lists only links we created (`00000.mp4`, ...) next
//! to it, and is read with `-safe 1`.
//!
//! # Validation
//!
//! [`Media::validate`] returns a [`MediaInfo`] or an error with a stable [`MediaError::code`]:
//! `empty_file`, `not_media`, `unsupported_container`, `forbidden_reference`, `no_video_stream`
//! (audio-only uploads say so), `corrupt` (truncated or undecodable), `too_large_resolution`
//! (default limit 3840x2160 in either orientation), `too_long` (default 3 hours),
//! `unsupported_frame_rate` (default above 240 fps), `unsupported_codec`,
//! `unsupported_pixel_format`. Besides ffprobe's header, validation runs a packet scan (one
//! demux pass, no decoding: exact frame count in every container, the real frame-rate
//! variability, clean cut points, and truncation: "partial file", fewer packets than announced,
//! packets past the end of the file) and decodes the first 10 s ([`DecodeCheck`]): leniently,
//! like a player (errors the decoder conceals pass; no decodable frame is `corrupt`), while
//! `Full` decodes everything strictly and fails at the first decoding error. A 50 %-truncated
//! MP4 is `corrupt` whether its index was at the end ("moov atom missing") or at the start (the
//! packet scan). Errors for which [`MediaError::is_input_error`] is false (timeouts, missing
//! programs, I/O) are about the machine: retry rather than blame the upload.
//!
//! # Frames: orientation, size, 10-bit and HDR
//!
//! [`FrameReader`] (blocking) and [`AsyncFrameReader`] deliver RGB24 frames ([`RgbFrame`], what
//! the stereo engine works on), or the planar YUV they come from ([`YuvFrame`], `read_yuv_*`),
//! that are:
//!
//! - **upright**: the display matrix (or a legacy `rotate` tag) is applied with explicit
//!   `transpose`/`flip` filters, so the output size is known before the first frame;
//! - **square-pixelled** (anamorphic input is scaled to its display aspect);
//! - **even-sized**: an odd width or height loses its last column or row (853x481 gives
//!   852x480) rather than being resampled, so every 4:2:0 encoder accepts the result;
//! - **8-bit SDR**. Policy: 10-bit (and 12-bit) SDR, 4:2:2 and 4:4:4 are converted to 8-bit
//!   4:2:0 by ffmpeg's scaler (`format=yuv420p`, range kept, see [Colour](#colour)). HDR
//!   (PQ/HDR10 or HLG transfer) is tone-mapped to BT.709 SDR (zscale linearisation, Hable curve)
//!   instead of showing washed-out PQ code values; an ffmpeg without zscale makes HDR input an
//!   `unsupported_pixel_format` error rather than a silently wrong picture. Over 16 bits per
//!   component is refused.
//!
//! [`FrameWriter`] encodes RGB24 (or [`YuvFrame`]s in its format) to H.264 in MP4 (CRF,
//! preset, `yuv420p` for playback everywhere or `yuv444p` for full colour resolution), tags
//! BT.709, and writes `+faststart` so browsers can start playback before the download ends. Its
//! output appears only when [`FrameWriter::finish`] succeeds. Both stream planar YUV through
//! one pipe (1 MiB pipes on Linux), so memory stays at a few frames whatever the video's
//! length. The blocking types own a current-thread tokio runtime: use them from plain threads,
//! rayon or `spawn_blocking`, never from inside an async task (the async types are for that;
//! they run the colour conversion in `block_in_place` on a multi-threaded runtime).
//!
//! **Timing (variable frame rate).** The reader passes every decoded frame through exactly
//! once (`-fps_mode passthrough`): no duplicates, no drops, frame *n* of the reader is frame
//! *n* of the file. The writer produces constant-frame-rate output at the rate it is given;
//! [`FrameSource::frame_rate`] is the nominal rate for constant-rate input and the average
//! rate (frames / duration) for variable-rate input, so a converted segment lasts exactly as
//! long as its source segment. Within a variable-rate segment frames are shown at even
//! intervals (a deviation bounded by the source's own jitter inside one segment); it never
//! accumulates across segments, because every segment keeps its duration and the join places
//! segments back to back. Chunking and joining themselves keep the source's timestamps
//! exactly (tested on a 30/10 fps alternating input).
//!
//! # Colour
//!
//! The pipes carry planar YUV, not RGB: ffmpeg decodes (and rotates, crops, scales, tone-maps)
//! into `yuv420p`, and the conversion to RGB24 happens in Rust ([`color`]); the writer converts
//! RGB24 to `yuv420p` (or `yuv444p`) in Rust and x264 takes it unchanged. This halves the pipe
//! traffic, takes ffmpeg's scaler (its slowest part here) out of both processes, and makes the
//! colour decisions ours rather than ffmpeg's defaults:
//!
//! - **Matrix** ([`YuvMatrix`]), from the probe's `color_space`: `bt709`; `bt470bg`,
//!   `smpte170m` (and `fcc`) as BT.601; `bt2020nc` as BT.2020. Untagged streams (most phone
//!   and web video) get what players assume: BT.709 from 720 lines up, BT.601 below. ffmpeg's
//!   own `format=rgb24` assumes BT.601 for everything untagged, so untagged HD reads slightly
//!   differently than before this crate did its own conversion (greens and reds, a few levels),
//!   and now as players show it. Tone-mapped HDR is BT.709 (the tone-mapping chain writes it);
//!   RGB sources (`gbrp`, PNG, palette formats) are converted to BT.709 by ffmpeg.
//! - **Range** ([`YuvRange`]), from `color_range` (`yuvj*` formats are full range; untagged is
//!   limited). Decision: the source's range is *kept* and the Rust conversion uses
//!   range-specific coefficients, rather than having ffmpeg normalise to limited range with
//!   `scale=out_range=tv`: no extra scaler pass or re-quantisation for full-range sources, and
//!   one behaviour across ffmpeg versions. Every scaler step is told `in_range=R:out_range=R`
//!   explicitly, because ffmpeg 5.1 otherwise silently converts a `yuvj420p` picture to limited
//!   range while still tagging it full. [`FrameSource::yuv`] and every [`YuvFrame`] say which
//!   matrix and range their samples are in.
//! - **Chroma**: 4:2:0 chroma is taken as centre-sited (what ffmpeg's scaler assumes, and what
//!   the writer produces: each chroma sample is the average of its 2x2 block, tagged
//!   `chroma_sample_location=center`) and upsampled bilinearly (9/16, 3/16, 3/16, 1/16 of the
//!   four nearest samples), not replicated. H.264's nominal left siting is a quarter of a chroma
//!   sample away; like ffmpeg 5.1, the reader does not shift for it.
//! - **Precision**: fixed-point 16-bit kernels (5 to 8 fractional bits), correctly rounded
//!   except within a few hundredths of a level of a rounding tie and never more than one level
//!   off the floating-point formulas (tested exhaustively for all 2^24 YUV triples, every
//!   matrix and range). Against ffmpeg's most accurate conversion (`accurate_rnd` +
//!   `full_chroma_int`, bicubic) of the same YUV, the reader's RGB has a mean absolute error of
//!   0.03-0.17 levels on the shared videos (worst pixel 11-25 levels, next to sharp chroma
//!   edges, where bicubic and bilinear interpolation differ) and 0.3-0.8 on synthetic test
//!   patterns with saturated one-pixel detail. A lossless RGB -> writer -> reader -> RGB round
//!   trip errs by 0.31 levels on average on a smooth picture (at most 2; ffmpeg's own round
//!   trip: 0.36) and by at most 1 level two pixels away from saturated colour edges (at the
//!   edges 4:2:0 cannot hold the colour: mean 4.4 against ffmpeg's 3.9, fewer samples off by
//!   more than two levels: 10.6 % against 12.5 %).
//! - **Speed**: the kernels are plain loops that vectorise, no intrinsics, spread over rayon's
//!   threads. [`multiversion!`] builds them for baseline x86-64 (SSE2) and again for AVX2+FMA,
//!   and the CPU picks the build at run time ([`simd`]; the same bytes either way). A 1080p
//!   frame takes about 0.5 ms each way with two threads on the AVX2 build, 0.85-1.4 ms of CPU
//!   time (0.41 ns per pixel YUV to RGB, 0.54 RGB to 4:2:0, 0.66 RGB to 4:4:4; the baseline
//!   build is 1.6-2.4x slower: 0.95, 0.89, 1.23), against the roughly 145 ms of CPU time a
//!   plain ffmpeg decode + x264 `medium` encode spends on it (`BENCH_ONLY=conversions cargo
//!   bench -p stereospot-media --bench media`).
//!
//! # Chunking strategy, and the numbers behind it
//!
//! [`Media::chunk`] cuts the video (video only) into MP4 segments of about
//! [`ChunkOptions::target_duration`] (default 20 s), such that the segments hold exactly the
//! source's frames: their frame counts add up to the source's, each decodes on its own, and a
//! join reproduces the source frame for frame. Two methods, chosen per file by
//! [`ChunkMethod::Auto`]:
//!
//! - **Stream copy at clean keyframes** when the keyframes allow every segment within ±50 %
//!   of the target (the last one at most +50 %). A *clean* keyframe is one where every
//!   earlier packet is displayed before it and every later one at or after it, which rules
//!   out open-GOP keyframes whose leading pictures refer to the previous group. The cut uses
//!   ffmpeg's segment muxer with `-segment_frames` at exact packet indices. Lossless, and the
//!   segments keep the source's timestamps, rotation metadata (written back per segment) and
//!   codec.
//! - **Re-encode once, then cut** otherwise (keyframes far apart, as in `book.mkv` with one
//!   keyframe in 109 frames; codecs MP4 cannot carry; variable frame rate *with* B-frames,
//!   whose copied MP4 segments would have inexact durations): x264 (`veryfast`, CRF 16, no
//!   B-frames so every sample duration is exact even at a variable frame rate) with a keyframe
//!   forced every *N* frames into one intermediate file, which is then cut by stream copy at
//!   those keyframes into equal-frame-count segments. The picture is upright and even-sized.
//!
//! Measured by `cargo bench -p stereospot-media --bench media` on the 2-core development
//! machine (shared with other builds), 14 s inputs, 5 s target, median of 3 runs, the
//! baseline `ffmpeg -c copy` of the same file measured in the same run (two runs shown):
//!
//! | input | copy chunk + join | re-encode chunk + join | plain remux |
//! |---|---|---|---|
//! | 720p (cockatoo, 280 frames) | 0.76-0.79 s (5.8-6.3x remux) | 4.8-5.0 s (38-39x) | 0.13 s |
//! | 1080p (upscaled cockatoo) | 0.87-0.94 s (6.9-8.6x) | 9.8-10.2 s (81-89x) | 0.11-0.13 s |
//! | 720p looped to 4 min 40 s, 60 segments | 1.37-1.44 s (8.5-8.6x) | not run | 0.16-0.17 s |
//!
//! Stream copy is 6-11x faster than re-encoding and lossless, so it is the default wherever it
//! is exact; re-encoding is the fallback that always works (re-encoded joins stay above 35 dB
//! average PSNR against the source in the tests). Copy chunk + join costs under a second more
//! than a remux, mostly process start-up (probe, packet scan, cut, one probe per join; segment
//! sample tables are checked in process), and grows slowly with the number of segments.
//! Validation's 10 s decode check adds 0.7 s (720p) to 1.5 s (1080p).
//!
//! Frame I/O (reader thread, bounded channel, writer thread; x264 `medium`, CRF 18, as the
//! writer's defaults) against a plain `ffmpeg` decode + encode with the same settings, the three
//! pipelines alternating within each run; throughput ratio (plain time / ours), median of 3 and
//! of 5 runs, per-run extremes in brackets, and the ratio of CPU seconds:
//!
//! | input | RGB API (what the stereo engine uses) | YUV passthrough | plain ffmpeg |
//! |---|---|---|---|
//! | 720p (cockatoo, 280 frames) | 30.4-30.5 fps: 0.91-0.95 (0.81-1.00), CPU 0.91-0.94 | 30.1-32.5 fps: 0.93-0.97, CPU 0.93-0.98 | 32.2-33.4 fps |
//! | 1080p (upscaled cockatoo) | 13.2 fps: 0.95 (0.91-1.02), CPU 0.94 | 13.6 fps: 0.98, CPU 0.97 | 13.9 fps |
//!
//! (load averages between 0.7 and 6 during these runs; the 1080p row is from the quieter run.
//! In runs with load 4 to 8 the 1080p throughput ratio ranged from 0.68 to 1.18 while the CPU
//! ratio stayed within 0.87-0.95.)
//!
//! The ratio was 0.83-0.91 when the pipes carried RGB24 and ffmpeg's scaler converted in both
//! processes. Passing YUV through untouched costs what two processes and two pipes cost (the
//! YUV row: the extra ffprobe and ffmpeg start-ups, and each frame copied through two pipes);
//! the Rust conversions add 1-3 % of CPU time on top. Wall-clock ratios on this
//! machine swing by about 0.1 from run to run while other builds run (which also favours
//! pipelines of more processes, as they get a larger share of a contended CPU), so the bench
//! also reports CPU seconds (own and children's), which measure the cost independently of
//! the share. Before that, widening the pipes to 1 MiB brought this crate's own overhead to
//! nothing measurable (it had halved reader throughput with 64 KiB pipes). ffmpeg's faster
//! BGR24 path was tried and rejected: it leaves unaveraged chroma rows at slice boundaries (a
//! test guards against it; the Rust writer averages every 2x2 block).
//!
//! # Joining
//!
//! [`Media::join`] concatenates segments with the concat demuxer and `-c copy`, then muxes the
//! *source's* first audio track once over the whole length (copied when MP4 carries the codec:
//! AAC, MP3, AC-3, E-AC-3, ALAC; re-encoded to AAC otherwise), so there are no gaps or clicks at
//! segment joins. The audio is shifted by the source's video start so the A/V offset is the
//! source's (tested with a flash/tone marker: under one frame, copied and re-encoded, with and
//! without conversion in between). Segments must share one codec configuration (checked on the
//! MP4 sample descriptions in process); the frame count of the result is verified; the output is
//! `+faststart` and appears only when complete. Audio the source had before its first video
//! frame is not played (the output starts with the picture).
//!
//! # URL ingest
//!
//! [`ingest::download`] fetches a video page or file URL with yt-dlp (`scripts/deps.sh` installs
//! a pinned version into `.tools/yt-dlp/`; `YT_DLP_PATH` overrides). The URL must be http(s)
//! ([`ingest::check_url`], before any process starts), and yt-dlp's every connection goes
//! through a [`ingest::FilterProxy`] started for that download: the proxy resolves each host
//! itself, refuses loopback, private, shared, link-local (metadata), unique-local, multicast and
//! reserved addresses in every spelling (IPv4-mapped and other IPv6 forms included; see
//! [`ingest::address`]), and connects to the address it checked, so a redirect, a manifest or a
//! fragment URL cannot lead anywhere the first URL could not. Formats are capped at
//! `MAX_VIDEO_HEIGHT` (1080), downloads at a size and a duration limit; errors carry stable
//! codes (`invalid_url`, `forbidden_address`, `video_unavailable`, `too_large`, ...). Details
//! in the [`ingest`] module docs.
//!
//! # Portability
//!
//! Written and tested against ffmpeg 5.1 (Debian 12). Two behaviours are version-specific and
//! covered by tests that would fail on a change: rotation is carried through stream-copied
//! segments with `-metadata:s:v:0 rotate=` (ffmpeg 6 replaced that with `-display_rotation`),
//! and `-fps_mode` needs ffmpeg 5.1 or later.

mod chunk;
pub mod color;
mod config;
mod error;
mod frames;
pub mod ingest;
mod join;
mod mp4;
mod packets;
mod probe;
mod process;
pub mod simd;
mod sniff;
mod validate;

pub use chunk::{ChunkMethod, ChunkOptions, Chunked, ReencodeSettings, SegmentInfo};
pub use color::{ChromaSubsampling, YuvFormat, YuvFrame, YuvMatrix, YuvRange};
pub use config::{DEFAULT_DEMUXERS, Limits, Media, MediaConfig, Timeouts};
pub use error::{MediaError, Result, Tool};
pub use frames::{
    AsyncFrameReader, AsyncFrameWriter, EncodeOptions, FrameReader, FrameSource, FrameWriter,
    OutputPixelFormat, ReadOptions, Resize, RgbFrame, WrittenVideo, X264_PRESETS,
};
pub use join::{AudioHandling, JoinOptions, Joined};
pub use packets::{Packet, PacketScan};
pub use probe::{
    AudioStream, ColorInfo, Hdr, MediaInfo, Rational, Rotation, VideoStream, bit_depth_of_pix_fmt,
};
pub use validate::{DecodeCheck, ValidateOptions, Validated};
