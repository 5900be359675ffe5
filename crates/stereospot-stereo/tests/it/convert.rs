//! `convert_file` end to end on every shared video: frame count, duration, audio, a clean decode
//! of the output, and no partial file after a cancel.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;

use stereospot_media::{EncodeOptions, Media, MediaConfig};
use stereospot_stereo::compose::{AnaglyphMethod, StereoFormat};
use stereospot_stereo::convert::{ConvertOptions, ConvertProgress, convert_file};
use stereospot_stereo::depth::DepthModel;
use stereospot_stereo::depth::fast::{FastDepth, FastDepthOptions};

/// The shared test videos: `shared/data/video` next to the checkout.
pub fn video_dir() -> PathBuf {
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data/video"
    ));
    assert!(
        dir.join("realshort.mp4").is_file(),
        "test videos not found at {}: the `shared/` folder must sit next to the repository checkout",
        dir.display()
    );
    dir
}

pub const SHARED: &[&str] = &[
    "realshort.mp4",
    "cockatoo_yuv420.mp4",
    "car-detection.mp4",
    "book.mkv",
];

fn ffprobe(args: &[&str], path: &Path) -> String {
    let out = Command::new("ffprobe")
        .args(["-hide_banner", "-loglevel", "error"])
        .args(args)
        .arg(path)
        .output()
        .expect("ffprobe must be installed (scripts/deps.sh test)");
    assert!(
        out.status.success(),
        "ffprobe {args:?} {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Decoded video frames, counted by ffprobe's decoder.
pub fn decoded_frames(path: &Path) -> u64 {
    ffprobe(
        &[
            "-select_streams",
            "v:0",
            "-count_frames",
            "-show_entries",
            "stream=nb_read_frames",
            "-of",
            "csv=p=0",
        ],
        path,
    )
    .trim_end_matches(',')
    .parse()
    .expect("frame count")
}

/// Average frame duration in seconds.
fn frame_period(path: &Path) -> f64 {
    let r = ffprobe(
        &[
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=avg_frame_rate",
            "-of",
            "csv=p=0",
        ],
        path,
    );
    let (n, d) = r.trim_end_matches(',').split_once('/').expect("rate n/d");
    let (n, d): (f64, f64) = (n.parse().expect("n"), d.parse().expect("d"));
    d / n
}

/// Duration of the video stream from its packets (first pts to last pts + duration).
pub fn video_duration(path: &Path) -> f64 {
    let text = ffprobe(
        &[
            "-select_streams",
            "v:0",
            "-show_entries",
            "packet=pts_time,duration_time",
            "-of",
            "csv=p=0",
        ],
        path,
    );
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    for line in text.lines() {
        let mut it = line.split(',');
        let (Some(pts), Some(dur)) = (it.next(), it.next()) else {
            continue;
        };
        let (Ok(pts), Ok(dur)) = (pts.parse::<f64>(), dur.parse::<f64>()) else {
            continue;
        };
        lo = lo.min(pts);
        hi = hi.max(pts + dur);
    }
    hi - lo
}

pub fn has_audio(path: &Path) -> bool {
    !ffprobe(
        &[
            "-select_streams",
            "a",
            "-show_entries",
            "stream=index",
            "-of",
            "csv=p=0",
        ],
        path,
    )
    .is_empty()
}

/// Decodes every stream with ffmpeg at `-v error`: any message is a decode error.
pub fn assert_decodes_cleanly(path: &Path) {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-v", "error", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg");
    assert!(out.status.success(), "ffmpeg failed on {}", path.display());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.trim().is_empty(),
        "{} does not decode cleanly: {stderr}",
        path.display()
    );
}

fn size(path: &Path) -> (u32, u32) {
    let s = ffprobe(
        &[
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=width,height",
            "-of",
            "csv=p=0",
        ],
        path,
    );
    let mut it = s.trim_end_matches(',').split(',');
    (
        it.next().and_then(|v| v.parse().ok()).expect("width"),
        it.next().and_then(|v| v.parse().ok()).expect("height"),
    )
}

fn quick_encode() -> EncodeOptions {
    EncodeOptions {
        preset: "ultrafast".into(),
        crf: 23,
        ..EncodeOptions::default()
    }
}

/// Converts `input` with `model` and checks the output against the source.
pub fn convert_and_check(
    model: &mut dyn DepthModel,
    input: &Path,
    format: StereoFormat,
    out_dir: &Path,
) -> PathBuf {
    let media = Media::new(MediaConfig::default());
    let output = out_dir.join(format!(
        "{}-{}-{format}.mp4",
        input.file_stem().and_then(|s| s.to_str()).unwrap_or("out"),
        model.name().replace([':', '/'], "_")
    ));
    let opts = ConvertOptions {
        format,
        encode: quick_encode(),
        ..ConvertOptions::default()
    };
    let mut last = None;
    let mut progress = |p: ConvertProgress| last = Some(p);
    let stats = convert_file(
        &media,
        input,
        &output,
        model,
        &opts,
        &mut progress,
        &AtomicBool::new(false),
    )
    .unwrap_or_else(|e| panic!("converting {}: {e}", input.display()));

    let src_frames = decoded_frames(input);
    let out_frames = decoded_frames(&output);
    assert_eq!(
        out_frames,
        src_frames,
        "{}: output frame count",
        input.display()
    );
    assert_eq!(stats.frames, src_frames);
    assert_eq!(last.map(|p| p.frames_done), Some(src_frames));
    let period = frame_period(input);
    let (d_in, d_out) = (video_duration(input), video_duration(&output));
    assert!(
        (d_in - d_out).abs() <= period + 1e-3,
        "{}: duration {d_out:.4}s vs source {d_in:.4}s (frame {period:.4}s)",
        input.display()
    );
    assert_eq!(
        has_audio(&output),
        has_audio(input),
        "{}: audio present iff the source has it",
        input.display()
    );
    assert_decodes_cleanly(&output);
    let (w, h) = stats.input_size;
    assert_eq!(size(&output), format.output_size(w, h));
    // Nothing but the output in the directory: the work files are gone.
    let leftovers: Vec<_> = std::fs::read_dir(out_dir)
        .expect("read out dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(
        leftovers.is_empty(),
        "work files left behind: {leftovers:?}"
    );
    output
}

#[test]
fn fast_depth_converts_every_shared_video() {
    let dir = tempfile::tempdir().expect("tempdir");
    for name in SHARED {
        let mut model = FastDepth::new(FastDepthOptions::default());
        convert_and_check(
            &mut model,
            &video_dir().join(name),
            StereoFormat::Anaglyph(AnaglyphMethod::Dubois),
            dir.path(),
        );
    }
}

#[test]
fn every_format_has_its_geometry() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = video_dir().join("realshort.mp4");
    for format in [
        StereoFormat::Sbs,
        StereoFormat::Hsbs,
        StereoFormat::Tab,
        StereoFormat::Anaglyph(AnaglyphMethod::Color),
        StereoFormat::Anaglyph(AnaglyphMethod::HalfColor),
        StereoFormat::Anaglyph(AnaglyphMethod::Gray),
    ] {
        let mut model = FastDepth::new(FastDepthOptions::default());
        let out = convert_and_check(&mut model, &input, format, dir.path());
        let (w, h) = size(&out);
        match format {
            StereoFormat::Sbs => assert_eq!((w, h), (640, 240)),
            _ => assert_eq!((w, h), (320, 240)),
        }
    }
}

#[test]
fn cancel_leaves_no_output() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = dir.path().join("cancelled.mp4");
    let cancel = AtomicBool::new(false);
    let media = Media::new(MediaConfig::default());
    let mut model = FastDepth::new(FastDepthOptions::default());
    let opts = ConvertOptions {
        encode: quick_encode(),
        ..ConvertOptions::default()
    };
    let mut progress = |p: ConvertProgress| {
        if p.frames_done == 5 {
            cancel.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    };
    let err = convert_file(
        &media,
        &video_dir().join("car-detection.mp4"),
        &output,
        &mut model,
        &opts,
        &mut progress,
        &cancel,
    )
    .expect_err("cancelled");
    assert!(
        matches!(err, stereospot_stereo::StereoError::Cancelled),
        "{err}"
    );
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .expect("read dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "left behind after a cancel: {left:?}");
}

/// The same checks with the ONNX engine (the official architecture at a tiny width, random
/// weights: the real model's contract, pre- and post-processing, at a small input size so the
/// test stays quick).
#[test]
fn onnx_tiny_model_converts_every_shared_video() {
    use stereospot_stereo::depth::onnx::{OnnxDepthModel, OnnxOptions};
    crate::helpers::require_onnxruntime();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut model = OnnxDepthModel::load(
        &crate::helpers::tiny_model(),
        &OnnxOptions {
            input_size: 70,
            ..OnnxOptions::default()
        },
    )
    .expect("tiny model");
    for name in SHARED {
        convert_and_check(
            &mut model,
            &video_dir().join(name),
            StereoFormat::Sbs,
            dir.path(),
        );
    }
}
