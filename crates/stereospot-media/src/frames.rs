//! Frame I/O: decode any input ffmpeg can read to upright RGB24 (or planar YUV) frames over a
//! pipe, and encode RGB24 (or YUV) frames to H.264 MP4.
//!
//! Both directions stream through one pipe each, so memory stays at a few frames whatever the
//! video's length. The pipes carry planar YUV (`yuv420p`, or `yuv444p` into a 4:4:4 writer),
//! half the bytes of RGB24; the colour conversion happens in Rust ([`crate::color`]), so the
//! matrix, range and chroma interpolation are ours to choose rather than ffmpeg's defaults. The core is async ([`AsyncFrameReader`], [`AsyncFrameWriter`], on
//! `tokio::process`); [`FrameReader`] and [`FrameWriter`] are blocking adaptors (each owns a
//! small current-thread runtime) for CPU-heavy consumers running on plain threads, rayon or
//! `spawn_blocking`. Do not call the blocking adaptors from inside an async task.
//!
//! Timing: the reader passes every decoded frame through exactly once (`-fps_mode passthrough`:
//! no frame is duplicated or dropped, even for variable-frame-rate input); the writer produces
//! constant-frame-rate output at the rate it is given. Give it
//! [`FrameSource::frame_rate`], which for variable-frame-rate input is the average rate
//! (frames / duration), so the output lasts as long as the input.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdin, ChildStdout};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::color::{ChromaSubsampling, YuvFormat, YuvFrame, YuvMatrix, YuvRange};
use crate::config::{Media, file_url};
use crate::error::{MediaError, Result, Tool};
use crate::probe::{Hdr, MediaInfo, Rational, VideoStream};
use crate::process::{StderrTail, drain_stderr, failed, kill_and_reap};

/// One RGB24 frame: `width * height * 3` bytes, rows top to bottom, no padding.
#[derive(Clone, PartialEq, Eq)]
pub struct RgbFrame {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Zero-based position in the stream (set by the reader).
    pub index: u64,
    /// Pixels, `R G B` per pixel.
    pub data: Vec<u8>,
}

impl std::fmt::Debug for RgbFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RgbFrame")
            .field("width", &self.width)
            .field("height", &self.height)
            .field("index", &self.index)
            .field("bytes", &self.data.len())
            .finish()
    }
}

impl RgbFrame {
    /// A black frame.
    pub fn new(width: u32, height: u32) -> Self {
        RgbFrame {
            width,
            height,
            index: 0,
            data: vec![0; frame_len(width, height)],
        }
    }

    /// The pixel at (x, y).
    ///
    /// # Panics
    ///
    /// When (x, y) lies outside the frame.
    pub fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        let i = (y as usize * self.width as usize + x as usize) * 3;
        [self.data[i], self.data[i + 1], self.data[i + 2]]
    }
}

fn nearest_even(x: f64) -> u32 {
    (((x / 2.0).round() as u32) * 2).max(2)
}

fn frame_len(width: u32, height: u32) -> usize {
    width as usize * height as usize * 3
}

/// How the reader resizes frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resize {
    /// Exactly this size (both even).
    Exact {
        /// Width.
        width: u32,
        /// Height.
        height: u32,
    },
    /// Keep the aspect ratio and fit within this box (never upscales).
    Fit {
        /// Maximum width.
        max_width: u32,
        /// Maximum height.
        max_height: u32,
    },
}

/// Options of the frame reader.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReadOptions {
    /// Resize frames (after rotation and pixel-aspect correction).
    pub resize: Option<Resize>,
    /// Kill ffmpeg if the whole read takes longer than this (none by default: the consumer sets
    /// the pace, and a slow depth model is not a hung ffmpeg).
    pub timeout: Option<Duration>,
}

/// What the reader will deliver.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameSource {
    /// Frame width (always even).
    pub width: u32,
    /// Frame height (always even).
    pub height: u32,
    /// Rate to write the frames back at (see the module docs on timing).
    pub frame_rate: Rational,
    /// Frames the container announces (exact after [`Media::validate_with`]; an estimate or
    /// `None` otherwise).
    pub frame_count: Option<u64>,
    /// Whether HDR input is being tone-mapped to SDR.
    pub tone_mapped: Option<Hdr>,
    /// What ffmpeg delivers and [`YuvFrame`]s carry: always 4:2:0; the matrix and range are the
    /// source's (BT.709 limited after tone mapping), see the crate docs on colour.
    pub yuv: YuvFormat,
    /// The ffmpeg filter chain applied (for logs).
    pub filters: String,
    /// The probe of the input.
    pub info: MediaInfo,
}

/// Whether ffmpeg calls the pixel format an RGB (or palette) one rather than YUV or grey.
fn is_rgb_pix_fmt(pix_fmt: &str) -> bool {
    [
        "rgb", "bgr", "gbr", "argb", "abgr", "0rgb", "0bgr", "rgba", "bgra", "x2rgb", "x2bgr",
        "pal8", "monow", "monob",
    ]
    .iter()
    .any(|p| pix_fmt.starts_with(p))
}

/// The matrix and range of the YUV frames the reader gets from ffmpeg, and whether ffmpeg has
/// to be told to produce them (`scale` options before the final `format=yuv420p`).
///
/// - Tone-mapped HDR: BT.709, limited (the tone-mapping chain writes exactly that).
/// - YUV (and grey) sources: the source's own matrix and range, kept as they are: the
///   `color_space` tag (`bt709`; `bt470bg`, `smpte170m`: BT.601; `bt2020nc`), and for untagged
///   streams what players assume, BT.709 from 720 lines up and BT.601 below; the `color_range`
///   tag, `yuvj*` formats being full range, untagged streams limited. Every conversion ffmpeg
///   makes on the way (bit depth, 4:2:2 to 4:2:0, scaling) is told that range in and out, so
///   none of them converts it (ffmpeg 5.1 silently converts full to limited range when it
///   converts a `yuvj420p` picture, and tags the result wrongly).
/// - RGB sources (`gbrp` H.264, PNG, palette formats): converted to BT.709 limited by ffmpeg.
pub(crate) fn reader_format(video: &VideoStream, tone_map: bool) -> (YuvFormat, Option<String>) {
    let yuv420 = |matrix, range| YuvFormat {
        subsampling: ChromaSubsampling::Yuv420,
        matrix,
        range,
    };
    if tone_map {
        return (yuv420(YuvMatrix::Bt709, YuvRange::Limited), None);
    }
    let pix_fmt = video.pix_fmt.as_deref();
    if pix_fmt.is_some_and(is_rgb_pix_fmt) {
        return (
            yuv420(YuvMatrix::Bt709, YuvRange::Limited),
            Some("out_color_matrix=bt709:out_range=tv".into()),
        );
    }
    let matrix = YuvMatrix::from_tag(video.color.space.as_deref(), video.height);
    let range = YuvRange::from_tag(video.color.range.as_deref(), pix_fmt);
    let r = range.tag();
    (
        yuv420(matrix, range),
        Some(format!("in_range={r}:out_range={r}")),
    )
}

/// The filter chain and output size for reading `video` upright, even-sized, as planar YUV
/// 4:2:0 in the [`reader_format`].
pub(crate) fn reader_filters(
    video: &VideoStream,
    resize: Option<Resize>,
    tone_map: bool,
) -> Result<(String, u32, u32)> {
    let (_, convert) = reader_format(video, tone_map);
    let mut chain: Vec<String> = Vec::new();
    if tone_map {
        // Linearise, tone-map to BT.709 (Hable), then to 8-bit 4:2:0 BT.709 limited range, the
        // chroma sited at the centre of each 2x2 block as the Rust conversion expects.
        chain.push(
            "zscale=t=linear:npl=100,format=gbrpf32le,zscale=p=bt709,tonemap=tonemap=hable:desat=0,zscale=t=bt709:m=bt709:r=tv:c=center,format=yuv420p"
                .into(),
        );
    }
    if let Some(f) = video.rotation.filter() {
        chain.push(f.into());
    }
    let (dw, dh) = video.display_size();
    let (mut w, mut h) = (dw as f64, dh as f64);
    let mut needs_scale = false;
    if let Some(sar) = video.sample_aspect_ratio.filter(|s| s.num > 0 && s.den > 0) {
        // Non-square pixels: stretch the stored width (the height after a quarter turn).
        if video.rotation.swaps_dimensions() {
            h *= sar.as_f64();
        } else {
            w *= sar.as_f64();
        }
        needs_scale = true;
    }
    match resize {
        Some(Resize::Exact { width, height }) => {
            if width == 0 || height == 0 || width % 2 == 1 || height % 2 == 1 {
                return Err(MediaError::InvalidArgument(format!(
                    "resize to {width}x{height}: both sides must be even and non-zero"
                )));
            }
            needs_scale |= (width as f64, height as f64) != (w, h);
            (w, h) = (width as f64, height as f64);
        }
        Some(Resize::Fit {
            max_width,
            max_height,
        }) => {
            if max_width < 2 || max_height < 2 {
                return Err(MediaError::InvalidArgument(format!(
                    "fit within {max_width}x{max_height}: too small"
                )));
            }
            let f = (max_width as f64 / w).min(max_height as f64 / h).min(1.0);
            if f < 1.0 {
                (w, h) = (w * f, h * f);
                needs_scale = true;
            }
        }
        None => {}
    }
    let (ew, eh) = if needs_scale {
        // Resampling anyway: the nearest even size.
        (nearest_even(w), nearest_even(h))
    } else {
        (w as u32 & !1, h as u32 & !1)
    };
    if ew == 0 || eh == 0 {
        return Err(MediaError::InvalidArgument(format!(
            "frames of {dw}x{dh} are too small"
        )));
    }
    let already_420 = tone_map || video.pix_fmt.as_deref() == Some("yuv420p");
    if needs_scale {
        let mut f = format!("scale={ew}:{eh}:flags=bicubic");
        if let Some(c) = &convert {
            f = format!("{f}:{c}");
        }
        chain.push(f);
    } else {
        if (ew, eh) != (dw, dh) {
            // Odd size: drop the last column/row rather than resample the whole picture.
            chain.push(format!("crop={ew}:{eh}:0:0"));
        }
        if let Some(c) = convert.filter(|_| !already_420) {
            chain.push(format!("scale={c}"));
        }
    }
    chain.push("format=yuv420p".into());
    Ok((chain.join(","), ew, eh))
}

/// Streams RGB24 (or planar YUV) frames out of any input ffmpeg can read (async core; see
/// [`FrameReader`] for the blocking adaptor).
#[derive(Debug)]
pub struct AsyncFrameReader {
    child: Child,
    stdout: Option<ChildStdout>,
    stderr: Option<JoinHandle<StderrTail>>,
    source: FrameSource,
    /// The YUV frame behind the next RGB frame.
    scratch: YuvFrame,
    next_index: u64,
    deadline: Option<Instant>,
    timeout: Option<Duration>,
    finished: bool,
}

impl AsyncFrameReader {
    /// Probes `path` and starts decoding it.
    pub async fn open(media: &Media, path: &Path, opts: &ReadOptions) -> Result<Self> {
        let info = media.probe(path).await?;
        Self::open_probed(media, path, info, opts).await
    }

    /// Starts decoding a file already probed (or validated: the frame count is then exact).
    pub async fn open_probed(
        media: &Media,
        path: &Path,
        info: MediaInfo,
        opts: &ReadOptions,
    ) -> Result<Self> {
        let Some(video) = info.video.clone() else {
            return Err(MediaError::NoVideoStream {
                has_audio: !info.audio.is_empty(),
            });
        };
        let tone_mapped = match video.hdr() {
            Some(hdr) if media.has_zscale().await? => Some(hdr),
            Some(_) => {
                return Err(MediaError::UnsupportedPixelFormat {
                    pix_fmt: video.pix_fmt.clone().unwrap_or_else(|| "unknown".into()),
                    reason: Some("HDR video needs the zscale filter to be tone-mapped".into()),
                });
            }
            None => None,
        };
        let (filters, width, height) = reader_filters(&video, opts.resize, tone_mapped.is_some())?;
        let (yuv, _) = reader_format(&video, tone_mapped.is_some());
        let frame_rate = video
            .output_frame_rate()
            .map(Rational::reduced)
            .ok_or_else(|| MediaError::UnsupportedFrameRate {
                fps: 0.0,
                max: media.config().limits.max_frame_rate,
            })?;

        let mut inv = media.ffmpeg(opts.timeout.unwrap_or(Duration::MAX));
        inv.arg("-noautorotate");
        media.untrusted_input(&mut inv, path)?;
        inv.args(["-map", &format!("0:{}", video.index)]);
        inv.args(["-an", "-sn", "-dn", "-fps_mode", "passthrough"]);
        inv.args(["-vf", &filters]);
        inv.args(["-pix_fmt", "yuv420p", "-f", "rawvideo", "pipe:1"]);
        let mut child = inv.spawn(false, true)?;
        let stderr = child.stderr.take().map(drain_stderr);
        let stdout = child.stdout.take();
        if let Some(out) = &stdout {
            widen_pipe(out);
        }
        tracing::debug!(
            path = %path.display(), width, height, %filters, matrix = ?yuv.matrix, range = ?yuv.range,
            "frame reader started"
        );
        Ok(AsyncFrameReader {
            child,
            stdout,
            stderr,
            source: FrameSource {
                width,
                height,
                frame_rate,
                frame_count: video.frame_count,
                tone_mapped,
                yuv,
                filters,
                info,
            },
            scratch: YuvFrame::new(width, height, yuv),
            next_index: 0,
            deadline: opts.timeout.map(|t| Instant::now() + t),
            timeout: opts.timeout,
            finished: false,
        })
    }

    /// What the frames look like.
    pub fn source(&self) -> &FrameSource {
        &self.source
    }

    /// Frames delivered so far.
    pub fn frames_read(&self) -> u64 {
        self.next_index
    }

    /// Reads the next frame into `frame` (reusing its buffer). Returns `false` at the end of the
    /// stream, after checking that ffmpeg exited cleanly.
    ///
    /// The YUV to RGB conversion is CPU work (about half a millisecond per 1080p frame on AVX2,
    /// spread over rayon's threads); inside a multi-threaded tokio runtime it runs in
    /// `block_in_place`.
    pub async fn read_into(&mut self, frame: &mut RgbFrame) -> Result<bool> {
        let mut yuv = std::mem::take(&mut self.scratch);
        let res = match self.read_yuv_into(&mut yuv).await {
            Ok(true) => cpu_bound(|| yuv.to_rgb_into(frame)).map(|()| true),
            other => other,
        };
        self.scratch = yuv;
        res
    }

    /// Reads the next frame into a new buffer.
    pub async fn read_frame(&mut self) -> Result<Option<RgbFrame>> {
        // Allocated zeroed at its final size: a large zeroed allocation comes straight from the
        // kernel's zero pages, where growing an empty vector would write every byte twice.
        let mut frame = RgbFrame::new(self.source.width, self.source.height);
        Ok(self.read_into(&mut frame).await?.then_some(frame))
    }

    /// Reads the next frame as ffmpeg delivers it, planar YUV 4:2:0 in
    /// [`FrameSource::yuv`]'s matrix and range, into `frame` (reusing its buffers): no colour
    /// conversion at all, for consumers that work on luma or pass frames through. Returns
    /// `false` at the end of the stream, after checking that ffmpeg exited cleanly.
    pub async fn read_yuv_into(&mut self, frame: &mut YuvFrame) -> Result<bool> {
        if self.finished {
            return Ok(false);
        }
        frame.width = self.source.width;
        frame.height = self.source.height;
        frame.format = self.source.yuv;
        frame.resize();
        let frame_len = frame.y.len() + frame.u.len() + frame.v.len();
        let deadline = self.deadline;
        let Some(stdout) = self.stdout.as_mut() else {
            return Ok(false);
        };
        let read = read_planes(
            stdout,
            [&mut frame.y[..], &mut frame.u[..], &mut frame.v[..]],
        );
        let got = match deadline {
            Some(d) => match tokio::time::timeout_at(d, read).await {
                Ok(r) => r,
                Err(_) => return Err(self.time_out().await),
            },
            None => read.await,
        }
        .map_err(|e| MediaError::io("reading frames from ffmpeg", e))?;
        if got == frame_len {
            frame.index = self.next_index;
            self.next_index += 1;
            return Ok(true);
        }
        // End of stream: a clean end falls exactly on a frame boundary and a zero exit status.
        self.stdout = None;
        self.finish_process().await?;
        if got != 0 {
            return Err(MediaError::Internal(format!(
                "ffmpeg ended in the middle of frame {} ({got} of {frame_len} bytes)",
                self.next_index
            )));
        }
        Ok(false)
    }

    /// Reads the next frame as planar YUV into a new buffer.
    pub async fn read_yuv_frame(&mut self) -> Result<Option<YuvFrame>> {
        let mut frame = YuvFrame::zeroed(self.source.width, self.source.height, self.source.yuv);
        Ok(self.read_yuv_into(&mut frame).await?.then_some(frame))
    }

    /// Stops early: kills ffmpeg and reaps it.
    pub async fn abort(mut self) {
        self.stdout = None;
        kill_and_reap(&mut self.child).await;
        self.finished = true;
    }

    async fn time_out(&mut self) -> MediaError {
        kill_and_reap(&mut self.child).await;
        self.finished = true;
        self.stdout = None;
        MediaError::Timeout {
            tool: Tool::Ffmpeg,
            after: self.timeout.unwrap_or_default(),
        }
    }

    async fn finish_process(&mut self) -> Result<()> {
        self.finished = true;
        let wait = self.child.wait();
        let status = match self.deadline {
            Some(d) => match tokio::time::timeout_at(d, wait).await {
                Ok(s) => s,
                Err(_) => return Err(self.time_out().await),
            },
            None => wait.await,
        }
        .map_err(|e| MediaError::io("waiting for ffmpeg", e))?;
        let tail = match self.stderr.take() {
            Some(t) => t.await.unwrap_or_default(),
            None => StderrTail::default(),
        };
        if status.success() {
            Ok(())
        } else {
            Err(reader_failure(status, &tail))
        }
    }
}

/// A reader's ffmpeg failing is, almost always, the input's fault.
fn reader_failure(status: std::process::ExitStatus, tail: &StderrTail) -> MediaError {
    let text = tail.text();
    let input_markers = [
        "Invalid data",
        "decoding",
        "partial file",
        "ended prematurely",
        "moov atom",
        "Invalid NAL",
        "corrupt",
    ];
    if input_markers.iter().any(|m| text.contains(m)) {
        MediaError::Corrupt {
            detail: format!(
                "decoding failed ({})",
                tail.last_line().unwrap_or("no detail")
            ),
        }
    } else {
        failed(Tool::Ffmpeg, status, tail)
    }
}

/// Frames are megabytes: a 1 MiB pipe (the largest an unprivileged process may ask for by
/// default) instead of 64 KiB cuts the reads, writes and wake-ups per frame sixteenfold. Best
/// effort: a smaller pipe only costs speed.
#[cfg(target_os = "linux")]
fn widen_pipe(fd: &impl std::os::fd::AsFd) {
    if let Err(e) = rustix::pipe::fcntl_setpipe_size(fd, 1 << 20) {
        tracing::debug!(error = %e, "could not enlarge the pipe");
    }
}

#[cfg(not(target_os = "linux"))]
fn widen_pipe<T>(_: &T) {}

/// Runs CPU-bound work from async code: in `block_in_place` on a multi-threaded runtime (other
/// tasks move off this worker meanwhile), directly on a current-thread one (the blocking
/// adaptors' own runtimes, where nothing else is waiting).
fn cpu_bound<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

/// Fills the planes one after the other until they are full or the stream ends; returns the
/// bytes read.
async fn read_planes(r: &mut ChildStdout, planes: [&mut [u8]; 3]) -> std::io::Result<usize> {
    let mut total = 0;
    for p in planes {
        let n = read_full(r, p).await?;
        total += n;
        if n < p.len() {
            break;
        }
    }
    Ok(total)
}

/// Reads until `buf` is full or the stream ends; returns the bytes read.
async fn read_full(r: &mut ChildStdout, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        let n = r.read(&mut buf[filled..]).await?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    Ok(filled)
}

/// Output pixel format of the writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputPixelFormat {
    /// 4:2:0, plays everywhere (browsers, phones, TVs). The default.
    #[default]
    Yuv420p,
    /// 4:4:4, full colour resolution (sharper anaglyph colour edges) but High 4:4:4 profile,
    /// which most browsers and hardware decoders cannot play.
    Yuv444p,
}

impl OutputPixelFormat {
    fn name(self) -> &'static str {
        self.subsampling().pix_fmt()
    }

    /// The chroma subsampling it stands for.
    pub fn subsampling(self) -> ChromaSubsampling {
        match self {
            OutputPixelFormat::Yuv420p => ChromaSubsampling::Yuv420,
            OutputPixelFormat::Yuv444p => ChromaSubsampling::Yuv444,
        }
    }
}

/// x264 presets, fastest first.
pub const X264_PRESETS: &[&str] = &[
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
    "placebo",
];

/// H.264 encoder settings.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodeOptions {
    /// Constant rate factor, 0 (lossless) to 51 (worst); default 18 (visually near-lossless).
    pub crf: u8,
    /// x264 preset (see [`X264_PRESETS`]); default "medium".
    pub preset: String,
    /// Output pixel format.
    pub pix_fmt: OutputPixelFormat,
    /// Kill ffmpeg if writing takes longer than this (none by default).
    pub timeout: Option<Duration>,
}

impl Default for EncodeOptions {
    fn default() -> Self {
        EncodeOptions {
            crf: 18,
            preset: "medium".into(),
            pix_fmt: OutputPixelFormat::Yuv420p,
            timeout: None,
        }
    }
}

impl EncodeOptions {
    pub(crate) fn check(&self) -> Result<()> {
        if self.crf > 51 {
            return Err(MediaError::InvalidArgument(format!(
                "crf {} is outside 0..=51",
                self.crf
            )));
        }
        if !X264_PRESETS.contains(&self.preset.as_str()) {
            return Err(MediaError::InvalidArgument(format!(
                "unknown x264 preset {:?}",
                self.preset
            )));
        }
        Ok(())
    }
}

/// What a finished writer produced.
#[derive(Debug, Clone, PartialEq)]
pub struct WrittenVideo {
    /// The MP4 file.
    pub path: PathBuf,
    /// Frames written.
    pub frames: u64,
    /// Frames / rate.
    pub duration: Duration,
}

/// Encodes RGB24 (or planar YUV) frames to an H.264 MP4 (`+faststart`). The file appears at
/// its path only when [`AsyncFrameWriter::finish`] succeeds; until then ffmpeg writes a hidden
/// partial file beside it, removed if the writer is dropped or fails.
///
/// RGB24 frames are converted in Rust to the output's planar YUV (BT.709, limited range, 4:2:0
/// chroma the average of each 2x2 block, correctly rounded), which is what goes down the pipe
/// and into x264 unchanged; the stream is tagged BT.709 (matrix, primaries, transfer), limited
/// range, and for 4:2:0 centre-sited chroma.
#[derive(Debug)]
pub struct AsyncFrameWriter {
    child: Child,
    stdin: Option<ChildStdin>,
    stderr: Option<JoinHandle<StderrTail>>,
    partial: Option<PathBuf>,
    path: PathBuf,
    width: u32,
    height: u32,
    /// What goes down the pipe.
    format: YuvFormat,
    /// The converted frame (RGB writes).
    scratch: YuvFrame,
    frame_rate: Rational,
    frames: u64,
    deadline: Option<Instant>,
    timeout: Option<Duration>,
}

impl AsyncFrameWriter {
    /// Starts ffmpeg writing `path` from frames of `width` x `height` at `frame_rate`.
    pub async fn create(
        media: &Media,
        path: &Path,
        width: u32,
        height: u32,
        frame_rate: Rational,
        opts: &EncodeOptions,
    ) -> Result<Self> {
        opts.check()?;
        if width == 0 || height == 0 {
            return Err(MediaError::InvalidArgument(format!(
                "frame size {width}x{height}"
            )));
        }
        if opts.pix_fmt == OutputPixelFormat::Yuv420p && (width % 2 == 1 || height % 2 == 1) {
            return Err(MediaError::InvalidArgument(format!(
                "yuv420p output needs even dimensions, got {width}x{height}"
            )));
        }
        if frame_rate.num <= 0 || frame_rate.den <= 0 {
            return Err(MediaError::InvalidArgument(format!(
                "frame rate {frame_rate}"
            )));
        }
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
        let file_name = path.file_name().ok_or_else(|| {
            MediaError::InvalidArgument(format!("{} is not a file path", path.display()))
        })?;
        let mut partial_name = std::ffi::OsString::from(".");
        partial_name.push(file_name);
        partial_name.push(format!(".partial-{}", std::process::id()));
        let partial = match dir {
            Some(d) => d.join(&partial_name),
            None => PathBuf::from(&partial_name),
        };

        let format = YuvFormat::bt709(opts.pix_fmt.subsampling());
        let pix_fmt = opts.pix_fmt.name();
        let mut inv = media.ffmpeg(opts.timeout.unwrap_or(Duration::MAX));
        inv.args(["-f", "rawvideo", "-pix_fmt", pix_fmt]);
        inv.args(["-s", &format!("{width}x{height}")]);
        inv.args(["-framerate", &frame_rate.to_string()]);
        inv.args(["-i", "pipe:0"]);
        inv.args(["-map", "0:v", "-fps_mode", "passthrough"]);
        // The frames arrive in the output's format: no filter, no conversion in ffmpeg.
        inv.args(["-pix_fmt", pix_fmt]);
        inv.args(["-c:v", "libx264", "-preset", &opts.preset]);
        inv.args(["-crf", &opts.crf.to_string()]);
        // Say what the samples are, so players do not guess.
        inv.args([
            "-color_primaries",
            "bt709",
            "-color_trc",
            "bt709",
            "-colorspace",
            "bt709",
            "-color_range",
            "tv",
        ]);
        if format.subsampling == ChromaSubsampling::Yuv420 {
            inv.args(["-chroma_sample_location", "center"]);
        }
        inv.args(["-movflags", "+faststart", "-f", "mp4"]);
        inv.arg(file_url(&partial)?);
        let mut child = inv.spawn(true, false)?;
        let stderr = child.stderr.take().map(drain_stderr);
        let stdin = child.stdin.take();
        if let Some(input) = &stdin {
            widen_pipe(input);
        }
        Ok(AsyncFrameWriter {
            child,
            stdin,
            stderr,
            partial: Some(partial),
            path: path.to_path_buf(),
            width,
            height,
            format,
            scratch: YuvFrame::new(width, height, format),
            frame_rate,
            frames: 0,
            deadline: opts.timeout.map(|t| Instant::now() + t),
            timeout: opts.timeout,
        })
    }

    /// Frames written so far.
    pub fn frames_written(&self) -> u64 {
        self.frames
    }

    /// What the writer encodes: BT.709, limited range, 4:2:0 or 4:4:4 as
    /// [`EncodeOptions::pix_fmt`] says. [`AsyncFrameWriter::write_yuv`] takes frames in this
    /// format only.
    pub fn format(&self) -> YuvFormat {
        self.format
    }

    /// Writes one frame (`width * height * 3` bytes of RGB24).
    ///
    /// The RGB to YUV conversion is CPU work (about half a millisecond per 1080p frame on AVX2,
    /// spread over rayon's threads); inside a multi-threaded tokio runtime it runs in
    /// `block_in_place`.
    pub async fn write(&mut self, rgb: &[u8]) -> Result<()> {
        let expected = frame_len(self.width, self.height);
        if rgb.len() != expected {
            return Err(MediaError::InvalidArgument(format!(
                "frame {} has {} bytes, expected {expected} for {}x{} RGB24",
                self.frames,
                rgb.len(),
                self.width,
                self.height
            )));
        }
        if self.stdin.is_none() {
            return Err(MediaError::InvalidArgument("the writer is closed".into()));
        }
        let mut yuv = std::mem::take(&mut self.scratch);
        let (w, h) = (self.width as usize, self.height as usize);
        cpu_bound(|| {
            crate::color::rgb_to_yuv(
                yuv.format.matrix,
                yuv.format.range,
                yuv.format.subsampling,
                (w, h),
                rgb,
                (&mut yuv.y, &mut yuv.u, &mut yuv.v),
            )
        });
        let res = self.send([&yuv.y, &yuv.u, &yuv.v]).await;
        self.scratch = yuv;
        res
    }

    /// Writes one frame of planar YUV as it is. It must be in the writer's
    /// [`format`](AsyncFrameWriter::format) (a frame read from a BT.601 or full-range source is
    /// not: convert it through RGB, [`YuvFrame::to_rgb`]) and size.
    pub async fn write_yuv(&mut self, frame: &YuvFrame) -> Result<()> {
        if (frame.width, frame.height) != (self.width, self.height) {
            return Err(MediaError::InvalidArgument(format!(
                "frame is {}x{}, the writer was opened for {}x{}",
                frame.width, frame.height, self.width, self.height
            )));
        }
        if frame.format != self.format {
            return Err(MediaError::InvalidArgument(format!(
                "frame is {:?}, the writer encodes {:?}",
                frame.format, self.format
            )));
        }
        frame.check()?;
        self.send([&frame.y, &frame.u, &frame.v]).await
    }

    /// Sends one frame's planes down the pipe.
    async fn send(&mut self, planes: [&[u8]; 3]) -> Result<()> {
        let Some(stdin) = self.stdin.as_mut() else {
            return Err(MediaError::InvalidArgument("the writer is closed".into()));
        };
        let write = async {
            for p in planes {
                stdin.write_all(p).await?;
            }
            Ok::<(), std::io::Error>(())
        };
        let res = match self.deadline {
            Some(d) => match tokio::time::timeout_at(d, write).await {
                Ok(r) => r,
                Err(_) => return Err(self.time_out().await),
            },
            None => write.await,
        };
        if let Err(e) = res {
            // ffmpeg went away (broken pipe): its stderr says why.
            self.stdin = None;
            let status = self.child.wait().await;
            let tail = match self.stderr.take() {
                Some(t) => t.await.unwrap_or_default(),
                None => StderrTail::default(),
            };
            return Err(match status {
                Ok(st) if !st.success() => failed(Tool::Ffmpeg, st, &tail),
                _ => MediaError::io("writing frames to ffmpeg", e),
            });
        }
        self.frames += 1;
        Ok(())
    }

    /// Writes one frame.
    pub async fn write_frame(&mut self, frame: &RgbFrame) -> Result<()> {
        if (frame.width, frame.height) != (self.width, self.height) {
            return Err(MediaError::InvalidArgument(format!(
                "frame is {}x{}, the writer was opened for {}x{}",
                frame.width, frame.height, self.width, self.height
            )));
        }
        self.write(&frame.data).await
    }

    /// Closes the input, waits for ffmpeg to finish the file, and moves it into place.
    pub async fn finish(mut self) -> Result<WrittenVideo> {
        if self.frames == 0 {
            return Err(MediaError::InvalidArgument("no frames were written".into()));
        }
        if let Some(mut stdin) = self.stdin.take() {
            stdin
                .shutdown()
                .await
                .map_err(|e| MediaError::io("closing ffmpeg's input", e))?;
        }
        let wait = self.child.wait();
        let status = match self.deadline {
            Some(d) => match tokio::time::timeout_at(d, wait).await {
                Ok(s) => s,
                Err(_) => return Err(self.time_out().await),
            },
            None => wait.await,
        }
        .map_err(|e| MediaError::io("waiting for ffmpeg", e))?;
        let tail = match self.stderr.take() {
            Some(t) => t.await.unwrap_or_default(),
            None => StderrTail::default(),
        };
        if !status.success() {
            return Err(failed(Tool::Ffmpeg, status, &tail));
        }
        let partial = self
            .partial
            .take()
            .ok_or_else(|| MediaError::Internal("writer finished twice".into()))?;
        std::fs::rename(&partial, &self.path).map_err(|e| {
            let _ = std::fs::remove_file(&partial);
            MediaError::io(format!("moving the output to {}", self.path.display()), e)
        })?;
        Ok(WrittenVideo {
            path: self.path.clone(),
            frames: self.frames,
            duration: Duration::from_secs_f64(self.frames as f64 / self.frame_rate.as_f64()),
        })
    }

    /// Stops: kills ffmpeg and removes the partial file.
    pub async fn abort(mut self) {
        self.stdin = None;
        kill_and_reap(&mut self.child).await;
    }

    async fn time_out(&mut self) -> MediaError {
        self.stdin = None;
        kill_and_reap(&mut self.child).await;
        MediaError::Timeout {
            tool: Tool::Ffmpeg,
            after: self.timeout.unwrap_or_default(),
        }
    }
}

impl Drop for AsyncFrameWriter {
    fn drop(&mut self) {
        // kill_on_drop stops ffmpeg; the partial file must not outlive the writer.
        if let Some(p) = self.partial.take() {
            let _ = self.child.start_kill();
            let _ = std::fs::remove_file(p);
        }
    }
}

fn blocking_runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| MediaError::io("starting the frame I/O runtime", e))
}

/// Blocking frame reader for CPU-bound consumers (threads, rayon, `spawn_blocking`). Also an
/// iterator of frames.
#[derive(Debug)]
pub struct FrameReader {
    // Field order matters: the reader (and its child) drops before the runtime.
    inner: Option<AsyncFrameReader>,
    source: FrameSource,
    rt: tokio::runtime::Runtime,
}

impl FrameReader {
    /// Probes `path` and starts decoding it.
    pub fn open(media: &Media, path: &Path, opts: &ReadOptions) -> Result<Self> {
        let rt = blocking_runtime()?;
        let inner = rt.block_on(AsyncFrameReader::open(media, path, opts))?;
        Ok(FrameReader {
            source: inner.source().clone(),
            inner: Some(inner),
            rt,
        })
    }

    /// Starts decoding a file already probed or validated.
    pub fn open_probed(
        media: &Media,
        path: &Path,
        info: MediaInfo,
        opts: &ReadOptions,
    ) -> Result<Self> {
        let rt = blocking_runtime()?;
        let inner = rt.block_on(AsyncFrameReader::open_probed(media, path, info, opts))?;
        Ok(FrameReader {
            source: inner.source().clone(),
            inner: Some(inner),
            rt,
        })
    }

    /// What the frames look like.
    pub fn source(&self) -> &FrameSource {
        &self.source
    }

    /// Frames delivered so far.
    pub fn frames_read(&self) -> u64 {
        self.inner
            .as_ref()
            .map(AsyncFrameReader::frames_read)
            .unwrap_or(0)
    }

    /// Reads the next frame into `frame`; `false` at the end.
    pub fn read_into(&mut self, frame: &mut RgbFrame) -> Result<bool> {
        let Some(inner) = self.inner.as_mut() else {
            return Ok(false);
        };
        self.rt.block_on(inner.read_into(frame))
    }

    /// Reads the next frame.
    pub fn read_frame(&mut self) -> Result<Option<RgbFrame>> {
        let Some(inner) = self.inner.as_mut() else {
            return Ok(None);
        };
        self.rt.block_on(inner.read_frame())
    }

    /// Reads the next frame as planar YUV into `frame`; `false` at the end. See
    /// [`AsyncFrameReader::read_yuv_into`].
    pub fn read_yuv_into(&mut self, frame: &mut YuvFrame) -> Result<bool> {
        let Some(inner) = self.inner.as_mut() else {
            return Ok(false);
        };
        self.rt.block_on(inner.read_yuv_into(frame))
    }

    /// Reads the next frame as planar YUV.
    pub fn read_yuv_frame(&mut self) -> Result<Option<YuvFrame>> {
        let Some(inner) = self.inner.as_mut() else {
            return Ok(None);
        };
        self.rt.block_on(inner.read_yuv_frame())
    }
}

impl Iterator for FrameReader {
    type Item = Result<RgbFrame>;

    fn next(&mut self) -> Option<Self::Item> {
        self.read_frame().transpose()
    }
}

impl Drop for FrameReader {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.take()
            && !inner.finished
        {
            self.rt.block_on(inner.abort());
        }
    }
}

/// Blocking frame writer for CPU-bound producers.
#[derive(Debug)]
pub struct FrameWriter {
    inner: Option<AsyncFrameWriter>,
    rt: tokio::runtime::Runtime,
}

impl FrameWriter {
    /// Starts ffmpeg writing `path`; see [`AsyncFrameWriter::create`].
    pub fn create(
        media: &Media,
        path: &Path,
        width: u32,
        height: u32,
        frame_rate: Rational,
        opts: &EncodeOptions,
    ) -> Result<Self> {
        let rt = blocking_runtime()?;
        let inner = rt.block_on(AsyncFrameWriter::create(
            media, path, width, height, frame_rate, opts,
        ))?;
        Ok(FrameWriter {
            inner: Some(inner),
            rt,
        })
    }

    /// Writes one frame of RGB24 bytes.
    pub fn write(&mut self, rgb: &[u8]) -> Result<()> {
        let rt = &self.rt;
        let inner = self
            .inner
            .as_mut()
            .ok_or_else(|| MediaError::InvalidArgument("the writer is closed".into()))?;
        rt.block_on(inner.write(rgb))
    }

    /// Writes one frame.
    pub fn write_frame(&mut self, frame: &RgbFrame) -> Result<()> {
        let rt = &self.rt;
        let inner = self
            .inner
            .as_mut()
            .ok_or_else(|| MediaError::InvalidArgument("the writer is closed".into()))?;
        rt.block_on(inner.write_frame(frame))
    }

    /// Writes one frame of planar YUV in the writer's format; see
    /// [`AsyncFrameWriter::write_yuv`].
    pub fn write_yuv(&mut self, frame: &YuvFrame) -> Result<()> {
        let rt = &self.rt;
        let inner = self
            .inner
            .as_mut()
            .ok_or_else(|| MediaError::InvalidArgument("the writer is closed".into()))?;
        rt.block_on(inner.write_yuv(frame))
    }

    /// What the writer encodes (BT.709, limited range, 4:2:0 or 4:4:4).
    pub fn format(&self) -> Option<YuvFormat> {
        self.inner.as_ref().map(AsyncFrameWriter::format)
    }

    /// Frames written so far.
    pub fn frames_written(&self) -> u64 {
        self.inner
            .as_ref()
            .map(AsyncFrameWriter::frames_written)
            .unwrap_or(0)
    }

    /// Finishes the file; see [`AsyncFrameWriter::finish`].
    pub fn finish(mut self) -> Result<WrittenVideo> {
        let inner = self
            .inner
            .take()
            .ok_or_else(|| MediaError::InvalidArgument("the writer is closed".into()))?;
        self.rt.block_on(inner.finish())
    }
}

impl Drop for FrameWriter {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.take() {
            self.rt.block_on(inner.abort());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::Rotation;

    fn video(w: u32, h: u32) -> VideoStream {
        VideoStream {
            index: 0,
            codec: "h264".into(),
            profile: None,
            width: w,
            height: h,
            rotation: Rotation::None,
            sample_aspect_ratio: None,
            pix_fmt: Some("yuv420p".into()),
            bit_depth: Some(8),
            color: Default::default(),
            frame_rate: Some(Rational::new(30, 1)),
            avg_frame_rate: Some(Rational::new(30, 1)),
            frame_count: None,
            variable_frame_rate: false,
            time_base: None,
            start_time: None,
            duration: None,
            has_b_frames: 0,
        }
    }

    #[test]
    fn plain_yuv420p_input_passes_through_ffmpeg_unconverted() {
        let (f, w, h) = reader_filters(&video(1280, 720), None, false).expect("ok");
        assert_eq!((f.as_str(), w, h), ("format=yuv420p", 1280, 720));
    }

    #[test]
    fn other_formats_are_converted_keeping_their_range() {
        let mut v = video(640, 480);
        v.pix_fmt = Some("yuvj420p".into());
        v.color.range = Some("pc".into());
        let (f, _, _) = reader_filters(&v, None, false).expect("ok");
        assert_eq!(f, "scale=in_range=pc:out_range=pc,format=yuv420p");
        v.pix_fmt = Some("yuv422p10le".into());
        v.color.range = None;
        let (f, _, _) = reader_filters(&v, None, false).expect("ok");
        assert_eq!(f, "scale=in_range=tv:out_range=tv,format=yuv420p");
        let fit = Some(Resize::Fit {
            max_width: 320,
            max_height: 320,
        });
        let (f, _, _) = reader_filters(&v, fit, false).expect("ok");
        assert_eq!(
            f,
            "scale=320:240:flags=bicubic:in_range=tv:out_range=tv,format=yuv420p"
        );
        v.pix_fmt = Some("gbrp".into());
        let (f, _, _) = reader_filters(&v, None, false).expect("ok");
        assert_eq!(
            f,
            "scale=out_color_matrix=bt709:out_range=tv,format=yuv420p"
        );
    }

    #[test]
    fn the_yuv_format_follows_the_tags_and_players_defaults() {
        let fmt = |v: &VideoStream, tone_map| reader_format(v, tone_map).0;
        let (m601, m709) = (YuvMatrix::Bt601, YuvMatrix::Bt709);
        let (tv, pc) = (YuvRange::Limited, YuvRange::Full);
        // Untagged: BT.709 from 720 lines up, BT.601 below; limited range.
        let hd = fmt(&video(1280, 720), false);
        assert_eq!((hd.matrix, hd.range), (m709, tv));
        let sd = fmt(&video(640, 480), false);
        assert_eq!((sd.matrix, sd.range), (m601, tv));
        let mut v = video(1920, 1080);
        v.color.space = Some("smpte170m".into());
        v.color.range = Some("pc".into());
        let f = fmt(&v, false);
        assert_eq!((f.matrix, f.range), (m601, pc));
        v.color.space = Some("bt2020nc".into());
        assert_eq!(fmt(&v, false).matrix, YuvMatrix::Bt2020);
        // Tone mapping writes BT.709 limited whatever came in.
        let f = fmt(&v, true);
        assert_eq!((f.matrix, f.range), (m709, tv));
        // JPEG-style formats are full range even untagged.
        let mut j = video(640, 480);
        j.pix_fmt = Some("yuvj420p".into());
        assert_eq!(fmt(&j, false).range, pc);
        assert_eq!(fmt(&j, false).subsampling, ChromaSubsampling::Yuv420);
    }

    #[test]
    fn odd_sizes_are_cropped_to_even() {
        let (f, w, h) = reader_filters(&video(853, 481), None, false).expect("ok");
        assert_eq!(
            (f.as_str(), w, h),
            ("crop=852:480:0:0,format=yuv420p", 852, 480)
        );
    }

    #[test]
    fn rotation_swaps_the_output_size() {
        let mut v = video(640, 360);
        v.rotation = Rotation::Cw90;
        let (f, w, h) = reader_filters(&v, None, false).expect("ok");
        assert_eq!(
            (f.as_str(), w, h),
            ("transpose=clock,format=yuv420p", 360, 640)
        );
        v.rotation = Rotation::R180;
        let (f, w, h) = reader_filters(&v, None, false).expect("ok");
        assert_eq!((f.as_str(), w, h), ("hflip,vflip,format=yuv420p", 640, 360));
    }

    #[test]
    fn non_square_pixels_are_made_square() {
        let mut v = video(720, 480);
        v.sample_aspect_ratio = Some(Rational::new(32, 27));
        let (f, w, h) = reader_filters(&v, None, false).expect("ok");
        assert_eq!((w, h), (854, 480));
        assert!(f.starts_with("scale=854:480"), "{f}");
    }

    #[test]
    fn resize_fit_keeps_aspect_and_even_sizes_and_never_upscales() {
        let fit = Some(Resize::Fit {
            max_width: 640,
            max_height: 640,
        });
        let (_, w, h) = reader_filters(&video(1920, 1080), fit, false).expect("ok");
        assert_eq!((w, h), (640, 360));
        let (f, w, h) = reader_filters(&video(320, 240), fit, false).expect("ok");
        assert_eq!((f.as_str(), w, h), ("format=yuv420p", 320, 240));
        let exact = Some(Resize::Exact {
            width: 518,
            height: 518,
        });
        let (f, w, h) = reader_filters(&video(1280, 720), exact, false).expect("ok");
        assert_eq!((w, h), (518, 518));
        assert!(f.starts_with("scale=518:518"));
        let odd = Some(Resize::Exact {
            width: 517,
            height: 518,
        });
        assert_eq!(
            reader_filters(&video(1280, 720), odd, false)
                .expect_err("odd")
                .code(),
            "invalid_argument"
        );
    }

    #[test]
    fn hdr_input_is_tone_mapped_first() {
        let (f, _, _) = reader_filters(&video(1920, 1080), None, true).expect("ok");
        assert!(f.starts_with("zscale=t=linear"), "{f}");
        assert!(f.contains("tonemap=tonemap=hable"), "{f}");
        // Straight to BT.709 limited 4:2:0 with centre-sited chroma, before any other filter
        // could ask for another format.
        assert!(
            f.contains("zscale=t=bt709:m=bt709:r=tv:c=center,format=yuv420p"),
            "{f}"
        );
    }

    #[test]
    fn encode_options_are_checked() {
        assert!(EncodeOptions::default().check().is_ok());
        let bad = EncodeOptions {
            crf: 60,
            ..EncodeOptions::default()
        };
        assert_eq!(bad.check().expect_err("crf").code(), "invalid_argument");
        let bad = EncodeOptions {
            preset: "; rm -rf /".into(),
            ..EncodeOptions::default()
        };
        assert_eq!(bad.check().expect_err("preset").code(), "invalid_argument");
    }
}
