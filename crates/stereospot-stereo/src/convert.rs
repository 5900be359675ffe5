//! One video in, one stereoscopic video out: the frame loop every conversion runs (the
//! `stereospot convert` command, and the video worker per segment).
//!
//! Three threads, joined by bounded channels of capacity [`PIPELINE_DEPTH`], with frame buffers
//! recycled through return channels, so memory stays at a few frames whatever the length:
//!
//! ```text
//! reader thread: ffmpeg decode -> RgbFrame ──► caller's thread: depth -> normalise -> synthesise
//!                                              -> compose ──► writer thread: RgbFrame -> ffmpeg encode
//! ```
//!
//! The caller's thread runs the depth model (ONNX Runtime and rayon use every core themselves),
//! so decoding and encoding pipe I/O overlap with it. Each stage's busy time is measured
//! ([`ConvertStats`]) for the benchmark.
//!
//! [`convert_video`] writes a video-only MP4 (segments: the audio is muxed once at reassembly);
//! [`convert_file`] adds the source's audio and writes the output atomically: a cancelled or
//! failed conversion leaves no file at the output path.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::{Duration, Instant};

use stereospot_media::{
    EncodeOptions, FrameReader, FrameSource, FrameWriter, JoinOptions, Media, ReadOptions,
    RgbFrame, WrittenVideo,
};

use crate::compose::StereoFormat;
use crate::depth::DepthModel;
use crate::stabilize::{DepthNormalizer, NormalizerOptions, RangeState, seed_state};
use crate::synth::{SynthOptions, synthesize_composed_into};
use crate::{DepthMap, Result, StereoError};

/// Frames in flight between two stages.
pub const PIPELINE_DEPTH: usize = 2;

/// How to convert.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConvertOptions {
    /// Output layout.
    pub format: StereoFormat,
    /// View synthesis (divergence, convergence, dilation).
    pub synth: SynthOptions,
    /// Temporal depth normalisation.
    pub normalizer: NormalizerOptions,
    /// Seed for the normaliser (e.g. a job-wide range). `None`: the median range of the first
    /// [`NormalizerOptions::seed_frames`] frames, so independently converted segments meet
    /// without a depth jump (see [`crate::stabilize`]).
    pub initial_range: Option<RangeState>,
    /// A seed from [`crate::stabilize::relative_range`] (the pipeline's: the frames just before
    /// the segment, computed at chunking), used instead of the segment's own first frames; wins
    /// over `initial_range`.
    pub relative_seed: Option<RangeState>,
    /// Decoding options (e.g. a resize for previews).
    pub read: ReadOptions,
    /// Encoder settings.
    pub encode: EncodeOptions,
}

/// Progress after each frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConvertProgress {
    /// Frames written so far.
    pub frames_done: u64,
    /// Frames the source announces, when known.
    pub frames_total: Option<u64>,
    /// Since the conversion started.
    pub elapsed: Duration,
}

impl ConvertProgress {
    /// Frames per second so far.
    pub fn fps(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 {
            self.frames_done as f64 / s
        } else {
            0.0
        }
    }
}

/// Busy time of each stage, summed over the frames (the stages overlap, so these add up to more
/// than the wall time when the pipeline is working well).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct StageTimes {
    /// Waiting for and receiving decoded frames (ffmpeg decode, pipe, pixel conversion).
    pub decode: Duration,
    /// The depth model.
    pub depth: Duration,
    /// Temporal normalisation.
    pub normalize: Duration,
    /// Left/right view synthesis and composing the output layout, one fused pass over the rows
    /// ([`synthesize_composed_into`]; the `synth` bench times the two apart).
    pub synth_compose: Duration,
    /// Handing frames to the encoder (pipe, pixel conversion, and waiting on x264 when it is
    /// the bottleneck).
    pub encode: Duration,
}

/// What a conversion did.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvertStats {
    /// Frames converted.
    pub frames: u64,
    /// Input frame size.
    pub input_size: (u32, u32),
    /// Output frame size.
    pub output_size: (u32, u32),
    /// Wall time of the whole conversion.
    pub wall: Duration,
    /// Per-stage busy time.
    pub stages: StageTimes,
    /// Scene cuts the normaliser detected.
    pub scene_cuts: u64,
    /// The normaliser's range after the last frame.
    pub final_range: Option<RangeState>,
    /// The video written.
    pub video: WrittenVideo,
}

impl ConvertStats {
    /// End-to-end frames per second.
    pub fn fps(&self) -> f64 {
        let s = self.wall.as_secs_f64();
        if s > 0.0 { self.frames as f64 / s } else { 0.0 }
    }
}

/// Converts `input` into a video-only stereoscopic MP4 at `output` (written atomically by the
/// frame writer). Blocking: run it on a plain thread or `spawn_blocking`.
///
/// `progress` is called after every frame; setting `cancel` stops at the next frame with
/// [`StereoError::Cancelled`] and leaves no output.
pub fn convert_video(
    media: &Media,
    input: &Path,
    output: &Path,
    model: &mut dyn DepthModel,
    opts: &ConvertOptions,
    progress: &mut dyn FnMut(ConvertProgress),
    cancel: &AtomicBool,
) -> Result<ConvertStats> {
    let started = Instant::now();
    let reader = FrameReader::open(media, input, &opts.read)?;
    let source: FrameSource = reader.source().clone();
    let (w, h) = (source.width, source.height);
    let (ow, oh) = opts.format.output_size(w, h);
    let writer = FrameWriter::create(media, output, ow, oh, source.frame_rate, &opts.encode)?;
    tracing::info!(
        input = %input.display(),
        output = %output.display(),
        model = model.name(),
        format = %opts.format,
        width = w,
        height = h,
        out_width = ow,
        out_height = oh,
        frames = ?source.frame_count,
        "converting"
    );

    // Decoded frames flow forward on `decoded`, their buffers come back on `free_in`; composed
    // frames flow forward on `composed`, their buffers come back on `free_out`.
    let (decoded_tx, decoded_rx) = sync_channel::<Result<RgbFrame>>(PIPELINE_DEPTH);
    let (free_in_tx, free_in_rx) = sync_channel::<RgbFrame>(PIPELINE_DEPTH + 2);
    let (composed_tx, composed_rx) = sync_channel::<RgbFrame>(PIPELINE_DEPTH);
    let (free_out_tx, free_out_rx) = sync_channel::<RgbFrame>(PIPELINE_DEPTH + 2);

    std::thread::scope(|scope| -> Result<ConvertStats> {
        let reader_thread = std::thread::Builder::new()
            .name("stereo-decode".into())
            .spawn_scoped(scope, move || {
                read_loop(reader, decoded_tx, free_in_rx, w, h)
            })
            .map_err(|e| StereoError::Runtime(format!("cannot start the decode thread: {e}")))?;
        let writer_thread = std::thread::Builder::new()
            .name("stereo-encode".into())
            .spawn_scoped(scope, move || write_loop(writer, composed_rx, free_out_tx))
            .map_err(|e| StereoError::Runtime(format!("cannot start the encode thread: {e}")))?;

        let processed = process_loop(
            model,
            opts,
            &source,
            (ow, oh),
            decoded_rx,
            free_in_tx,
            composed_tx,
            free_out_rx,
            progress,
            cancel,
            started,
        );
        // The channels are closed now (process_loop consumed its ends): both threads finish.
        let decode_time = join_thread(reader_thread)?;
        let written = join_thread(writer_thread);
        let (frames, mut stages, scene_cuts, final_range) = processed?;
        let (video, encode_time) = written?;
        stages.decode = decode_time;
        stages.encode = encode_time;
        let stats = ConvertStats {
            frames,
            input_size: (w, h),
            output_size: (ow, oh),
            wall: started.elapsed(),
            stages,
            scene_cuts,
            final_range,
            video,
        };
        tracing::info!(
            frames,
            fps = format!("{:.2}", stats.fps()),
            scene_cuts,
            "converted"
        );
        Ok(stats)
    })
}

fn join_thread<T>(handle: std::thread::ScopedJoinHandle<'_, Result<T>>) -> Result<T> {
    handle
        .join()
        .map_err(|_| StereoError::Runtime("a conversion thread panicked".into()))?
}

/// Decode thread: fills recycled buffers until the end of the stream or until the consumer
/// hangs up. Returns the time spent reading.
fn read_loop(
    mut reader: FrameReader,
    tx: SyncSender<Result<RgbFrame>>,
    free: Receiver<RgbFrame>,
    w: u32,
    h: u32,
) -> Result<Duration> {
    let mut busy = Duration::ZERO;
    let mut allocated = 0;
    loop {
        let mut frame = match free.try_recv() {
            Ok(f) => f,
            Err(_) if allocated < PIPELINE_DEPTH + 2 => {
                allocated += 1;
                RgbFrame::new(w, h)
            }
            // Every buffer is in flight: wait for one to come back (or for the consumer to go).
            Err(_) => match free.recv() {
                Ok(f) => f,
                Err(_) => return Ok(busy),
            },
        };
        let t = Instant::now();
        let got = reader.read_into(&mut frame);
        busy += t.elapsed();
        match got {
            Ok(true) => {
                if tx.send(Ok(frame)).is_err() {
                    return Ok(busy);
                }
            }
            Ok(false) => return Ok(busy),
            Err(e) => {
                // The consumer reports it; if it has gone already, nothing to do.
                let _ = tx.send(Err(e.into()));
                return Ok(busy);
            }
        }
    }
}

/// Encode thread: writes composed frames until the producer hangs up, then finishes the file
/// (or, if the producer stopped early, drops the writer, which removes the partial file).
fn write_loop(
    mut writer: FrameWriter,
    rx: Receiver<RgbFrame>,
    free: SyncSender<RgbFrame>,
) -> Result<(WrittenVideo, Duration)> {
    let mut busy = Duration::ZERO;
    while let Ok(frame) = rx.recv() {
        let t = Instant::now();
        writer.write_frame(&frame)?;
        busy += t.elapsed();
        // The producer may have gone; the buffer is simply dropped then.
        let _ = free.try_send(frame);
    }
    let t = Instant::now();
    let video = writer.finish()?;
    busy += t.elapsed();
    Ok((video, busy))
}

type Processed = (u64, StageTimes, u64, Option<RangeState>);

/// The caller's-thread stages: depth, normalisation, synthesis, composition, hand-off.
struct Processor<'a> {
    model: &'a mut dyn DepthModel,
    opts: &'a ConvertOptions,
    source: &'a FrameSource,
    out_size: (u32, u32),
    free_in: SyncSender<RgbFrame>,
    composed: SyncSender<RgbFrame>,
    free_out: Receiver<RgbFrame>,
    progress: &'a mut dyn FnMut(ConvertProgress),
    cancel: &'a AtomicBool,
    started: Instant,
    depth01: DepthMap,
    stages: StageTimes,
    frames: u64,
    out_allocated: usize,
}

impl Processor<'_> {
    fn check_cancel(&self) -> Result<()> {
        if self.cancel.load(Ordering::Relaxed) {
            return Err(StereoError::Cancelled);
        }
        Ok(())
    }

    fn estimate(&mut self, frame: &RgbFrame, raw: &mut DepthMap) -> Result<()> {
        let t = Instant::now();
        self.model.estimate_into(frame, raw)?;
        self.stages.depth += t.elapsed();
        if (raw.width, raw.height) != (frame.width, frame.height) {
            return Err(StereoError::Runtime(format!(
                "depth model {} returned {}x{} for a {}x{} frame",
                self.model.name(),
                raw.width,
                raw.height,
                frame.width,
                frame.height
            )));
        }
        Ok(())
    }

    /// Normalises, synthesises, composes and hands the frame to the encoder. `false` when the
    /// encoder has stopped (its error is reported when its thread is joined).
    fn finish_frame(
        &mut self,
        normalizer: &mut DepthNormalizer,
        frame: RgbFrame,
        raw: &DepthMap,
    ) -> Result<bool> {
        let t1 = Instant::now();
        normalizer.normalize_into(&frame, raw, &mut self.depth01);
        let t2 = Instant::now();
        let mut out = match self.free_out.try_recv() {
            Ok(f) => f,
            Err(_) if self.out_allocated < PIPELINE_DEPTH + 2 => {
                self.out_allocated += 1;
                RgbFrame::new(self.out_size.0, self.out_size.1)
            }
            Err(_) => self
                .free_out
                .recv()
                .map_err(|_| StereoError::Runtime("the encode thread stopped".into()))?,
        };
        let t3 = Instant::now();
        synthesize_composed_into(
            &frame,
            &self.depth01,
            &self.opts.synth,
            self.opts.format,
            &mut out,
        )?;
        self.stages.normalize += t2 - t1;
        self.stages.synth_compose += t3.elapsed();
        // The decode thread may have finished; then the buffer is not needed.
        let _ = self.free_in.try_send(frame);
        if self.composed.send(out).is_err() {
            return Ok(false);
        }
        self.frames += 1;
        (self.progress)(ConvertProgress {
            frames_done: self.frames,
            frames_total: self.source.frame_count,
            elapsed: self.started.elapsed(),
        });
        Ok(true)
    }
}

#[allow(clippy::too_many_arguments)]
fn process_loop(
    model: &mut dyn DepthModel,
    opts: &ConvertOptions,
    source: &FrameSource,
    out_size: (u32, u32),
    decoded: Receiver<Result<RgbFrame>>,
    free_in: SyncSender<RgbFrame>,
    composed: SyncSender<RgbFrame>,
    free_out: Receiver<RgbFrame>,
    progress: &mut dyn FnMut(ConvertProgress),
    cancel: &AtomicBool,
    started: Instant,
) -> Result<Processed> {
    let (w, h) = (source.width, source.height);
    let mut p = Processor {
        model,
        opts,
        source,
        out_size,
        free_in,
        composed,
        free_out,
        progress,
        cancel,
        started,
        depth01: DepthMap::new(w, h),
        stages: StageTimes::default(),
        frames: 0,
        out_allocated: 0,
    };

    // Seeding (see `crate::stabilize`, segment boundaries): without a given range, the
    // normaliser starts from the median range of the first `seed_frames` frames, so that
    // independently converted segments meet without a depth jump. Those frames are copied (their
    // decode buffers go back at once) and their depth is kept, so nothing is estimated twice.
    let mut lead: Vec<(RgbFrame, DepthMap)> = Vec::new();
    let seed_frames = if opts.initial_range.is_some() || opts.relative_seed.is_some() {
        0
    } else {
        opts.normalizer.seed_frames
    };
    while lead.len() < seed_frames {
        let Ok(frame) = decoded.recv() else { break };
        let frame = frame?;
        p.check_cancel()?;
        let mut raw = DepthMap::new(0, 0);
        p.estimate(&frame, &mut raw)?;
        let _ = p.free_in.try_send(frame.clone());
        lead.push((frame, raw));
    }
    let seed = opts
        .initial_range
        .or_else(|| seed_state(lead.iter().map(|(f, d)| (f, d)), &opts.normalizer));
    let mut normalizer = match (opts.relative_seed, seed) {
        (Some(rel), _) => DepthNormalizer::with_relative_seed(opts.normalizer, rel),
        (None, Some(state)) => DepthNormalizer::with_state(opts.normalizer, state),
        (None, None) => DepthNormalizer::new(opts.normalizer),
    };
    for (frame, raw) in lead {
        p.check_cancel()?;
        if !p.finish_frame(&mut normalizer, frame, &raw)? {
            return Ok((
                p.frames,
                p.stages,
                normalizer.scene_cuts(),
                normalizer.state(),
            ));
        }
    }
    // One depth buffer for the rest of the frames: engines that can reuse it do.
    let mut raw = DepthMap::new(0, 0);
    while let Ok(frame) = decoded.recv() {
        let frame = frame?;
        p.check_cancel()?;
        p.estimate(&frame, &mut raw)?;
        if !p.finish_frame(&mut normalizer, frame, &raw)? {
            break;
        }
    }
    Ok((
        p.frames,
        p.stages,
        normalizer.scene_cuts(),
        normalizer.state(),
    ))
}

/// [`convert_video`] plus the source's first audio track: the result at `output` has the
/// source's audio (copied, or AAC when MP4 cannot carry it) and appears only when everything
/// succeeded. Blocking.
pub fn convert_file(
    media: &Media,
    input: &Path,
    output: &Path,
    model: &mut dyn DepthModel,
    opts: &ConvertOptions,
    progress: &mut dyn FnMut(ConvertProgress),
    cancel: &AtomicBool,
) -> Result<ConvertStats> {
    let dir = match output.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(p) => p.to_path_buf(),
        None => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(|e| StereoError::io(&dir, e))?;
    // Beside the output, so the final move is a rename; removed on every path.
    let work = tempfile::Builder::new()
        .prefix(".stereospot-convert-")
        .tempdir_in(&dir)
        .map_err(|e| StereoError::io(&dir, e))?;
    let video = work.path().join("video.mp4");
    let mut stats = convert_video(media, input, &video, model, opts, progress, cancel)?;
    if cancel.load(Ordering::Relaxed) {
        return Err(StereoError::Cancelled);
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| StereoError::Runtime(format!("cannot start a runtime: {e}")))?;
    let joined = rt.block_on(media.join(
        std::slice::from_ref(&video),
        output,
        &JoinOptions {
            audio_from: Some(input.to_path_buf()),
            timeout: None,
        },
    ))?;
    tracing::info!(output = %output.display(), audio = ?joined.audio, "muxed the source audio");
    stats.video.path = joined.path;
    Ok(stats)
}
