//! Shared test helpers: locating the shared videos, generating edge-case inputs with ffmpeg's
//! lavfi sources into temp dirs, and independent oracles (ffmpeg's own decoder, ffprobe) to
//! compare our results against.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Once;

use stereospot_media::{Media, MediaConfig};

/// The shared test videos: `shared/data/video` next to the checkout.
pub fn video_dir() -> PathBuf {
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data/video"
    ));
    assert!(
        dir.join("realshort.mp4").is_file(),
        "test videos not found at {}: the `shared/` folder must sit next to the repository checkout \
         (CI clones the repository with shared/ beside it)",
        dir.display()
    );
    dir
}

/// One of the shared videos.
pub fn video(name: &str) -> PathBuf {
    let p = video_dir().join(name);
    assert!(p.is_file(), "missing test video {}", p.display());
    p
}

/// The four shared videos.
pub const SHARED: &[&str] = &[
    "realshort.mp4",
    "cockatoo_yuv420.mp4",
    "car-detection.mp4",
    "book.mkv",
];

/// Tracing output in tests only when TEST_LOG is set (Zero To Production style).
pub fn init_tracing() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| "stereospot_media=debug".into()),
                )
                .with_test_writer()
                .try_init();
        }
    });
}

/// A media handle whose temp root is a fresh directory, plus a work directory for inputs and
/// outputs. `assert_clean` checks the temp root was left empty.
pub struct Env {
    pub media: Media,
    pub temp_root: tempfile::TempDir,
    pub work: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Env {
        Env::with(|_| {})
    }

    pub fn with(tweak: impl FnOnce(&mut MediaConfig)) -> Env {
        init_tracing();
        let temp_root = tempfile::tempdir().expect("temp root");
        let work = tempfile::tempdir().expect("work dir");
        let mut config = MediaConfig {
            temp_root: temp_root.path().to_path_buf(),
            ..MediaConfig::default()
        };
        tweak(&mut config);
        Env {
            media: Media::new(config),
            temp_root,
            work,
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.work.path().join(name)
    }

    /// The temp root holds nothing: every operation cleaned up after itself.
    pub fn assert_clean(&self) {
        let left: Vec<_> = std::fs::read_dir(self.temp_root.path())
            .expect("read temp root")
            .map(|e| e.expect("entry").path())
            .collect();
        assert!(left.is_empty(), "temp files left behind: {left:?}");
    }

    /// Runs ffmpeg (test-side generation), panicking with its stderr on failure.
    pub fn ffmpeg(&self, args: &[&str]) {
        ffmpeg(args);
    }

    /// Generates a file from lavfi sources: `inputs` are lavfi graphs, `rest` the output options;
    /// returns the output path in the work dir.
    pub fn generate(&self, name: &str, inputs: &[&str], rest: &[&str]) -> PathBuf {
        let out = self.path(name);
        let mut args: Vec<&str> = Vec::new();
        for i in inputs {
            args.extend(["-f", "lavfi", "-i", i]);
        }
        args.extend(rest);
        let out_s = out.to_str().expect("utf-8 path").to_string();
        args.push(&out_s);
        ffmpeg(&args);
        out
    }
}

pub fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-y"])
        .args(args)
        .output()
        .expect("ffmpeg must be installed for these tests (scripts/deps.sh test installs it)");
    assert!(
        out.status.success(),
        "ffmpeg {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn ffprobe_text(args: &[&str]) -> String {
    let out = Command::new("ffprobe")
        .args(["-hide_banner", "-loglevel", "error"])
        .args(args)
        .output()
        .expect("ffprobe must be installed");
    assert!(
        out.status.success(),
        "ffprobe {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// MD5 of every decoded video frame, decoded by plain ffmpeg (autorotation on, native pixel
/// format): the oracle for "identical frames".
pub fn frame_md5s(path: &Path) -> Vec<String> {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-i"])
        .arg(path)
        .args([
            "-map",
            "0:v:0",
            "-fps_mode",
            "passthrough",
            "-f",
            "framemd5",
            "-",
        ])
        .output()
        .expect("ffmpeg");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit(',').next().map(|s| s.trim().to_string()))
        .collect()
}

/// Presentation times (seconds, display order, from the first frame) of the video packets.
pub fn frame_times(path: &Path) -> Vec<f64> {
    let text = ffprobe_text(&[
        "-select_streams",
        "v:0",
        "-show_entries",
        "packet=pts_time",
        "-of",
        "csv=p=0",
        path.to_str().expect("utf-8"),
    ]);
    let mut t: Vec<f64> = text
        .lines()
        .filter_map(|l| l.trim().trim_end_matches(',').parse().ok())
        .collect();
    t.sort_by(f64::total_cmp);
    let first = t.first().copied().unwrap_or(0.0);
    t.iter().map(|x| x - first).collect()
}

/// Stream start times and durations: (codec_type, start_time, duration).
pub fn streams(path: &Path) -> Vec<(String, f64, f64)> {
    let text = ffprobe_text(&[
        "-show_entries",
        "stream=codec_type,start_time,duration",
        "-of",
        "csv=p=0",
        path.to_str().expect("utf-8"),
    ]);
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (
                f[0].to_string(),
                f.get(1).and_then(|s| s.parse().ok()).unwrap_or(f64::NAN),
                f.get(2).and_then(|s| s.parse().ok()).unwrap_or(f64::NAN),
            )
        })
        .collect()
}

/// Number of audio packets of the first audio stream.
pub fn audio_packets(path: &Path) -> u64 {
    let text = ffprobe_text(&[
        "-select_streams",
        "a:0",
        "-count_packets",
        "-show_entries",
        "stream=nb_read_packets",
        "-of",
        "csv=p=0",
        path.to_str().expect("utf-8"),
    ]);
    text.trim().trim_end_matches(',').parse().unwrap_or(0)
}

/// Average and minimum PSNR (dB, luma+chroma average) of `a` against `b`, both decoded by plain
/// ffmpeg with timestamps reset to start at zero, cropped to the smaller size.
pub fn psnr(a: &Path, b: &Path, crop: Option<(u32, u32)>) -> (f64, f64) {
    let crop = crop
        .map(|(w, h)| format!(",crop={w}:{h}:0:0"))
        .unwrap_or_default();
    let graph =
        format!("[0:v]setpts=PTS-STARTPTS{crop}[a];[1:v]setpts=PTS-STARTPTS{crop}[b];[a][b]psnr");
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-loglevel", "info", "-i"])
        .arg(a)
        .arg("-i")
        .arg(b)
        .args(["-lavfi", &graph, "-f", "null", "-"])
        .output()
        .expect("ffmpeg");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let line = err
        .lines()
        .find(|l| l.contains("PSNR") && l.contains("average:"))
        .unwrap_or_else(|| panic!("no PSNR line in {err}"));
    let field = |name: &str| -> f64 {
        let v = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name} in {line}"));
        if v == "inf" {
            100.0
        } else {
            v.parse().expect("number")
        }
    };
    (field("average:"), field("min:"))
}

/// RGB frames decoded by plain ffmpeg (autorotation on): the oracle for the frame reader.
pub fn ffmpeg_rgb_frames(path: &Path, extra_vf: Option<&str>) -> Vec<u8> {
    let vf = match extra_vf {
        Some(f) => format!("{f},format=rgb24"),
        None => "format=rgb24".into(),
    };
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-i"])
        .arg(path)
        .args([
            "-map",
            "0:v:0",
            "-fps_mode",
            "passthrough",
            "-vf",
            &vf,
            "-f",
            "rawvideo",
            "-",
        ])
        .output()
        .expect("ffmpeg");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// RGB frames converted by ffmpeg's scaler at its most accurate (`accurate_rnd`,
/// `full_chroma_int`: every pixel's chroma interpolated, bicubic), from the YUV matrix and range
/// given (ffmpeg 5.1 itself would assume BT.601 for untagged streams): the oracle the reader's
/// Rust conversion is compared with. `extra_vf` runs first (it may end in a YUV format).
pub fn ffmpeg_rgb_reference(
    path: &Path,
    extra_vf: Option<&str>,
    format: stereospot_media::YuvFormat,
) -> Vec<u8> {
    let convert = format!(
        "scale=in_color_matrix={}:in_range={}:flags=bicubic+accurate_rnd+full_chroma_int,format=rgb24",
        format.matrix.scale_name(),
        format.range.tag()
    );
    let vf = match extra_vf {
        Some(f) => format!("{f},{convert}"),
        None => convert,
    };
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-i"])
        .arg(path)
        .args([
            "-map",
            "0:v:0",
            "-fps_mode",
            "passthrough",
            "-vf",
            &vf,
            "-f",
            "rawvideo",
            "-",
        ])
        .output()
        .expect("ffmpeg");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Raw frames in `pix_fmt` decoded by plain ffmpeg (autorotation on), after `extra_vf`.
pub fn ffmpeg_raw_frames(path: &Path, extra_vf: Option<&str>, pix_fmt: &str) -> Vec<u8> {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-nostdin", "-loglevel", "error", "-i"])
        .arg(path)
        .args(["-map", "0:v:0", "-fps_mode", "passthrough"]);
    if let Some(f) = extra_vf {
        cmd.args(["-vf", f]);
    }
    let out = cmd
        .args(["-pix_fmt", pix_fmt, "-f", "rawvideo", "-"])
        .output()
        .expect("ffmpeg");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// How far apart two byte buffers of the same size are: mean and largest absolute difference,
/// and the share of samples more than two levels apart.
#[derive(Debug, Clone, Copy)]
pub struct Diff {
    pub mean: f64,
    pub max: u8,
    pub over2: f64,
}

impl std::fmt::Display for Diff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "mean abs error {:.3}, max {}, {:.3}% of samples off by more than 2",
            self.mean,
            self.max,
            self.over2 * 100.0
        )
    }
}

pub fn diff(a: &[u8], b: &[u8]) -> Diff {
    assert_eq!(a.len(), b.len(), "sizes differ");
    let (mut sum, mut max, mut over2) = (0u64, 0u8, 0usize);
    for (x, y) in a.iter().zip(b) {
        let d = x.abs_diff(*y);
        sum += u64::from(d);
        max = max.max(d);
        over2 += usize::from(d > 2);
    }
    let n = a.len().max(1) as f64;
    Diff {
        mean: sum as f64 / n,
        max,
        over2: over2 as f64 / n,
    }
}

/// PSNR of two RGB24 buffers of the same size.
pub fn psnr_rgb(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    let se: u64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| {
            let d = i64::from(*x) - i64::from(*y);
            (d * d) as u64
        })
        .sum();
    if se == 0 {
        return 100.0;
    }
    let mse = se as f64 / a.len() as f64;
    10.0 * (255.0f64 * 255.0 / mse).log10()
}
