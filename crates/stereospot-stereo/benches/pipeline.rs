//! End-to-end conversion benchmark (not a test). In one run, for a 720p and a 1080p input:
//! per-stage time per frame (decode, depth, normalise, synthesis and compose, encode), end-to-end
//! fps, and the ratio against the floor: plain `ffmpeg` decode+encode of the same file with the
//! same encoder settings, measured alternately with the conversion so machine noise hits both.
//! The same floor is also run on each conversion's output, which shows how much of the gap is
//! the encoder's own cost on stereo content (an anaglyph's colour edges cost x264 more bits and
//! time than the source).
//!
//! The conversion synthesises and composes in one fused pass, so that stage is split on the
//! input's first frame: synthesis and compose apart, and fused (median of 9 calls each).
//!
//! Depth engines: `fast` always; Depth Anything V2 through ONNX Runtime when
//! `STEREOSPOT_BENCH_MODEL` names a model file (a random-weight export of the official Small
//! architecture times the same as the real one: `scripts/stereo/export_full_model.py`), on the
//! first `STEREOSPOT_BENCH_MODEL_FRAMES` frames (default 20), plus its bare 518x518 forward.
//!
//! Run: `cargo bench -p stereospot-stereo --bench pipeline`. `STEREOSPOT_BENCH_RUNS` sets the
//! repetitions (default 3, the median is printed); `STEREOSPOT_BENCH_ONLY=720p` (or `1080p`) runs
//! one input only.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use stereospot_media::{EncodeOptions, Media, MediaConfig, ReadOptions};
use stereospot_stereo::compose::{AnaglyphMethod, StereoFormat};
use stereospot_stereo::convert::{ConvertOptions, ConvertStats, convert_video};
use stereospot_stereo::depth::DepthModel;
use stereospot_stereo::depth::fast::{FastDepth, FastDepthOptions};

fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-y"])
        .args(args)
        .output()
        .expect("ffmpeg on PATH");
    assert!(
        out.status.success(),
        "ffmpeg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The floor: decode and encode the same file with the same encoder settings, one process.
fn floor(input: &Path, out: &Path, enc: &EncodeOptions, frames: Option<u64>) -> Duration {
    let crf = enc.crf.to_string();
    let n = frames.map(|n| n.to_string());
    let mut args = vec!["-i", input.to_str().expect("utf-8 path"), "-an"];
    if let Some(n) = &n {
        args.extend(["-frames:v", n.as_str()]);
    }
    args.extend([
        "-c:v",
        "libx264",
        "-preset",
        &enc.preset,
        "-crf",
        &crf,
        "-pix_fmt",
        "yuv420p",
        "-movflags",
        "+faststart",
        out.to_str().expect("utf-8 path"),
    ]);
    let t = Instant::now();
    ffmpeg(&args);
    t.elapsed()
}

/// CPU time used so far by this process and its waited-for children (ffmpeg), from
/// `/proc/self/stat` (Linux; zero elsewhere). Ticks are `USER_HZ`, 100 on Linux.
fn cpu_total() -> Duration {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return Duration::ZERO;
    };
    // Fields after the command name (which is in parentheses and may hold spaces): utime,
    // stime, cutime and cstime are the 14th to 17th fields of the line.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let ticks: u64 = rest
        .split_whitespace()
        .skip(11)
        .take(4)
        .filter_map(|v| v.parse::<u64>().ok())
        .sum();
    Duration::from_millis(ticks * 10)
}

/// Runs `f` and returns its result with the CPU time it took (children included).
fn with_cpu<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let c0 = cpu_total();
    let r = f();
    (r, cpu_total().saturating_sub(c0))
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration, frames: u64) -> f64 {
    d.as_secs_f64() * 1000.0 / frames.max(1) as f64
}

struct Row {
    label: String,
    stats: ConvertStats,
    floor: Duration,
    /// The same floor run on the conversion's own output: what x264 alone costs on the stereo
    /// content (anaglyph edges cost the encoder more than the source does).
    output_floor: Duration,
    /// CPU time (all threads and child processes) of the conversion, the floor and the output's
    /// floor, medians.
    cpu: [Duration; 3],
}

fn print_row(r: &Row) {
    let s = &r.stats.stages;
    let f = r.stats.frames;
    let floor_fps = f as f64 / r.floor.as_secs_f64();
    println!(
        "{:<26} {:>5} fr  decode {:6.1}  depth {:7.1}  norm {:5.1}  synth+compose {:5.1}  encode {:6.1} ms/fr | {:6.2} fps vs floor {:6.2} fps: {:5.2}x the floor's time",
        r.label,
        f,
        ms(s.decode, f),
        ms(s.depth, f),
        ms(s.normalize, f),
        ms(s.synth_compose, f),
        ms(s.encode, f),
        r.stats.fps(),
        floor_fps,
        r.stats.wall.as_secs_f64() / r.floor.as_secs_f64(),
    );
    println!(
        "{:<26} the floor run on the output itself: {:.2}x the floor's time (encoder cost of the stereo content; the conversion is {:.2}x that)",
        "",
        r.output_floor.as_secs_f64() / r.floor.as_secs_f64(),
        r.stats.wall.as_secs_f64() / r.output_floor.as_secs_f64(),
    );
    let [conv, floor, out] = r.cpu.map(|d| d.as_secs_f64());
    println!(
        "{:<26} CPU time: conversion {conv:.1} s ({:.1} ms/fr, {:.2} cores busy), floor {floor:.1} s ({:.2} cores busy), output's floor {out:.1} s; conversion / floor {:.2}x",
        "",
        conv * 1e3 / f as f64,
        conv / r.stats.wall.as_secs_f64(),
        floor / r.floor.as_secs_f64(),
        conv / floor,
    );
}

fn bench_input(
    media: &Media,
    label: &str,
    input: &Path,
    work: &Path,
    model: &mut dyn DepthModel,
    frames: Option<u64>,
    runs: usize,
) -> Row {
    let enc = EncodeOptions::default(); // x264 medium, CRF 18, yuv420p
    let opts = ConvertOptions {
        format: StereoFormat::Anaglyph(AnaglyphMethod::Dubois),
        encode: enc.clone(),
        read: ReadOptions::default(),
        ..ConvertOptions::default()
    };
    let clip = match frames {
        // Cut the input to the first `n` frames once (stream copy would cut at keyframes).
        Some(n) => {
            let p = work.join(format!("{label}-clip.mp4"));
            ffmpeg(&[
                "-i",
                input.to_str().expect("utf-8"),
                "-an",
                "-frames:v",
                &n.to_string(),
                "-c:v",
                "libx264",
                "-preset",
                "veryfast",
                "-crf",
                "12",
                p.to_str().expect("utf-8"),
            ]);
            p
        }
        None => input.to_path_buf(),
    };
    let mut floors = Vec::new();
    let mut output_floors = Vec::new();
    let mut walls = Vec::new();
    let mut cpus: [Vec<Duration>; 3] = Default::default();
    let mut best: Option<ConvertStats> = None;
    for i in 0..runs {
        let (t, c) = with_cpu(|| floor(&clip, &work.join("floor.mp4"), &enc, None));
        floors.push(t);
        cpus[1].push(c);
        let out = work.join(format!("conv-{i}.mp4"));
        let (stats, c) = with_cpu(|| {
            convert_video(
                media,
                &clip,
                &out,
                model,
                &opts,
                &mut |_| {},
                &AtomicBool::new(false),
            )
            .expect("conversion")
        });
        cpus[0].push(c);
        let (t, c) = with_cpu(|| floor(&out, &work.join("floor.mp4"), &enc, None));
        output_floors.push(t);
        cpus[2].push(c);
        let _ = std::fs::remove_file(&out);
        walls.push(stats.wall);
        best = Some(stats);
    }
    let wall = median(walls.clone());
    let mut stats = best.expect("at least one run");
    // Report the median wall; stage times are from the last run.
    stats.wall = wall;
    Row {
        label: label.to_string(),
        stats,
        floor: median(floors),
        output_floor: median(output_floors),
        cpu: cpus.map(median),
    }
}

fn main() {
    let runs: usize = std::env::var("STEREOSPOT_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let videos = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data/video"
    ));
    let cockatoo = videos.join("cockatoo_yuv420.mp4");
    assert!(
        cockatoo.is_file(),
        "{} not found: shared/ must sit next to the checkout",
        cockatoo.display()
    );
    let work = tempfile::tempdir().expect("tempdir");
    let hd = work.path().join("cockatoo_1080p.mp4");
    eprintln!("generating the 1080p input (upscaled cockatoo, 120 frames)...");
    ffmpeg(&[
        "-i",
        cockatoo.to_str().expect("utf-8"),
        "-frames:v",
        "120",
        "-vf",
        "scale=1920:1080:flags=bicubic",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-crf",
        "12",
        hd.to_str().expect("utf-8"),
    ]);
    let media = Media::new(MediaConfig::default());
    println!(
        "x264 medium CRF 18 yuv420p, anaglyph dubois; {} cores; median of {runs} runs (stage times: last run)",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let mut fast = FastDepth::new(FastDepthOptions::default());
    let only = std::env::var("STEREOSPOT_BENCH_ONLY").unwrap_or_default();
    for (label, input) in [("720p", cockatoo.as_path()), ("1080p", hd.as_path())] {
        if !only.is_empty() && only != label {
            continue;
        }
        let row = bench_input(
            &media,
            &format!("{label} fast"),
            input,
            work.path(),
            &mut fast,
            None,
            runs,
        );
        print_row(&row);
        stage_split(&media, input);
    }
    onnx_rows(&media, &[("720p", &cockatoo), ("1080p", &hd)], work.path());
}

/// Times synthesis and composition apart and fused on the first frame of `input` (fast depth).
fn stage_split(media: &Media, input: &Path) {
    use stereospot_media::{FrameReader, RgbFrame};
    use stereospot_stereo::DepthMap;
    use stereospot_stereo::compose::compose_into;
    use stereospot_stereo::stabilize::{DepthNormalizer, NormalizerOptions};
    use stereospot_stereo::synth::{
        StereoPair, SynthOptions, synthesize_composed_into, synthesize_into,
    };

    let mut reader = FrameReader::open(media, input, &ReadOptions::default()).expect("open");
    let (w, h) = (reader.source().width, reader.source().height);
    let mut frame = RgbFrame::new(w, h);
    assert!(reader.read_into(&mut frame).expect("decode"), "no frame");
    let raw = FastDepth::default().estimate(&frame).expect("depth");
    let mut depth = DepthMap::new(w, h);
    DepthNormalizer::new(NormalizerOptions::default()).normalize_into(&frame, &raw, &mut depth);
    let opts = SynthOptions::default();
    let format = StereoFormat::Anaglyph(AnaglyphMethod::Dubois);
    let time = |f: &mut dyn FnMut()| {
        f();
        let mut v: Vec<Duration> = (0..9)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed()
            })
            .collect();
        v.sort();
        v[v.len() / 2].as_secs_f64() * 1e3
    };
    let mut pair = StereoPair::new(w, h);
    let mut out = RgbFrame::new(0, 0);
    let synth = time(&mut || synthesize_into(&frame, &depth, &opts, &mut pair).expect("synth"));
    let compose = time(&mut || compose_into(&pair, format, &mut out).expect("compose"));
    let fused = time(&mut || {
        synthesize_composed_into(&frame, &depth, &opts, format, &mut out).expect("fused")
    });
    println!(
        "{:<26} first frame: synthesis {synth:5.1} + compose {compose:5.1} ms apart, {fused:5.1} ms fused",
        format!("{w}x{h}")
    );
}

/// Depth Anything V2 rows, when `STEREOSPOT_BENCH_MODEL` names a model file: the bare 518x518
/// forward, then the conversion of the first frames of each input.
fn onnx_rows(media: &Media, inputs: &[(&str, &PathBuf)], work: &Path) {
    use stereospot_stereo::depth::onnx::{OnnxDepthModel, OnnxOptions};
    let Some(path) = std::env::var_os("STEREOSPOT_BENCH_MODEL").map(PathBuf::from) else {
        println!(
            "Depth Anything V2 rows skipped: set STEREOSPOT_BENCH_MODEL to a model file (a random-weight export of the official Small architecture times like the real one: scripts/stereo/export_bench_models.py)"
        );
        return;
    };
    let frames: u64 = std::env::var("STEREOSPOT_BENCH_MODEL_FRAMES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let mut model = OnnxDepthModel::load(&path, &OnnxOptions::default()).expect("model loads");
    // The bare forward at 518x518 (one warm-up, then the median of 5).
    let data = vec![0.1f32; 3 * 518 * 518];
    model.forward([1, 3, 518, 518], &data).expect("forward");
    let mut times = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        model.forward([1, 3, 518, 518], &data).expect("forward");
        times.push(t.elapsed());
    }
    println!(
        "{}: bare forward at 518x518: {:.3} s (median of 5)",
        path.display(),
        median(times).as_secs_f64()
    );
    for (label, input) in inputs {
        let row = bench_input(
            media,
            &format!("{label} dav2 ({frames} fr)"),
            input,
            work,
            &mut model,
            Some(frames),
            1,
        );
        print_row(&row);
    }
}
