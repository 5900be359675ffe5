//! Media layer benchmark (not a test): prints, for a 720p and a 1080p input measured in the same
//! run,
//!
//! 1. chunk + join wall time against a plain `ffmpeg -c copy` remux of the same file, for the
//!    automatic method and for forced stream-copy and forced re-encode chunking (chunking's
//!    probe and packet scan included; validation's decode check timed separately);
//! 2. frame reader + writer throughput (a reader thread feeding a writer thread through a
//!    bounded channel, as the stereo engine does) against a plain `ffmpeg` decode + encode with the
//!    same encoder settings: through the RGB API (YUV to RGB and back in Rust), and passing the
//!    planar YUV frames through untouched; the three alternate within each run, so machine noise
//!    hits them alike, and the per-run ratios are printed besides the medians;
//! 3. the Rust colour conversions alone on a 1080p frame (all threads, and one thread: the CPU
//!    time they take from the encoder), the best build for this CPU against the baseline (SSE2)
//!    one (`stereospot_media::simd`).
//!
//! Run: `cargo bench -p stereospot-media --bench media` (release profile). The 720p input is
//! `shared/data/video/cockatoo_yuv420.mp4`; the 1080p one is generated from it by upscaling.
//! Environment: `BENCH_PRESET` (x264 preset, default `medium`, the writer's default),
//! `BENCH_CRF` (default 18), `BENCH_RUNS` (repetitions, median reported, default 3),
//! `BENCH_TARGET_SECS` (segment target, default 5: the inputs are 14 s long), `BENCH_ONLY=frames`
//! (frame I/O and conversions only, skipping chunk and join) or `BENCH_ONLY=conversions`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use stereospot_media::simd::{self, Isa};
use stereospot_media::{
    ChromaSubsampling, ChunkMethod, ChunkOptions, DecodeCheck, EncodeOptions, FrameReader,
    FrameWriter, JoinOptions, Media, MediaConfig, ReadOptions, RgbFrame, ValidateOptions,
    YuvFormat, YuvFrame,
};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

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

/// The 1, 5 and 15 minute load averages (Linux), to tell a quiet machine from a busy one.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// CPU seconds (user + system) used so far by this process and by the children it has waited
/// for (`/proc/self/stat`, Linux; clock ticks taken as the usual 100 per second; 0 elsewhere).
/// Less sensitive than wall time to other work on the machine: it measures what a pipeline
/// costs, not how much of the CPU it managed to get.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
        return 0.0;
    };
    // Fields from the third on (state first): utime, stime, cutime, cstime are 14 to 17.
    let f: Vec<&str> = rest.split_whitespace().collect();
    f.get(11..15).map_or(0.0, |t| {
        t.iter().filter_map(|v| v.parse::<f64>().ok()).sum::<f64>() / 100.0
    })
}

/// Wall and CPU seconds of `f`.
fn timed_cpu(f: impl FnOnce()) -> (f64, f64) {
    let cpu = cpu_seconds();
    let wall = timed(f);
    (wall, cpu_seconds() - cpu)
}

fn timed(f: impl FnOnce()) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_secs_f64()
}

struct Bench {
    media: Media,
    rt: tokio::runtime::Runtime,
    work: PathBuf,
    runs: usize,
    preset: String,
    crf: u8,
    target: Duration,
}

impl Bench {
    fn chunk_join(&self, src: &Path, method: ChunkMethod) -> (f64, f64, ChunkMethod, usize) {
        let seg_dir = self.work.join("segments");
        let _ = std::fs::remove_dir_all(&seg_dir);
        let out = self.work.join("joined.mp4");
        let opts = ChunkOptions {
            target_duration: self.target,
            method,
            // Probe + packet scan only: the decode check is timed on its own below.
            validate: ValidateOptions {
                decode_check: DecodeCheck::Skip,
            },
            ..ChunkOptions::default()
        };
        let t = Instant::now();
        let chunked = self
            .rt
            .block_on(self.media.chunk(src, &seg_dir, &opts))
            .expect("chunk");
        let chunk_s = t.elapsed().as_secs_f64();
        let paths: Vec<PathBuf> = chunked.segments.iter().map(|s| s.path.clone()).collect();
        let t = Instant::now();
        self.rt
            .block_on(self.media.join(
                &paths,
                &out,
                &JoinOptions {
                    audio_from: Some(src.to_path_buf()),
                    timeout: None,
                },
            ))
            .expect("join");
        let join_s = t.elapsed().as_secs_f64();
        (chunk_s, join_s, chunked.method, chunked.segments.len())
    }

    fn validate(&self, src: &Path) -> f64 {
        timed(|| {
            self.rt
                .block_on(self.media.validate(src))
                .expect("validate");
        })
    }

    fn remux(&self, src: &Path) -> f64 {
        let out = self.work.join("remux.mp4");
        timed(|| {
            ffmpeg(&[
                "-i",
                src.to_str().expect("utf-8"),
                "-c",
                "copy",
                "-movflags",
                "+faststart",
                out.to_str().expect("utf-8"),
            ])
        })
    }

    /// Plain ffmpeg decode + encode: (wall seconds, CPU seconds).
    fn plain_transcode(&self, src: &Path) -> (f64, f64) {
        let out = self.work.join("plain.mp4");
        timed_cpu(|| {
            ffmpeg(&[
                "-i",
                src.to_str().expect("utf-8"),
                "-map",
                "0:v:0",
                "-c:v",
                "libx264",
                "-preset",
                &self.preset,
                "-crf",
                &self.crf.to_string(),
                "-pix_fmt",
                "yuv420p",
                "-movflags",
                "+faststart",
                out.to_str().expect("utf-8"),
            ])
        })
    }

    /// Reader thread -> bounded channel -> writer thread, RGB frames (what the stereo engine
    /// uses). Returns (wall seconds, CPU seconds, frames).
    fn reader_writer(&self, src: &Path) -> (f64, f64, u64) {
        self.pipeline(src, |r| r.read_frame(), |w, f: &RgbFrame| w.write_frame(f))
    }

    /// The same with planar YUV frames passed through (no colour conversion anywhere).
    fn reader_writer_yuv(&self, src: &Path) -> (f64, f64, u64) {
        self.pipeline(
            src,
            |r| r.read_yuv_frame(),
            |w, f: &YuvFrame| w.write_yuv(f),
        )
    }

    fn pipeline<F: Send + 'static>(
        &self,
        src: &Path,
        read: impl Fn(&mut FrameReader) -> stereospot_media::Result<Option<F>> + Send + 'static,
        write: impl Fn(&mut FrameWriter, &F) -> stereospot_media::Result<()>,
    ) -> (f64, f64, u64) {
        let out = self.work.join("frames.mp4");
        let cpu = cpu_seconds();
        let t = Instant::now();
        let (tx, rx) = std::sync::mpsc::sync_channel::<F>(4);
        let media = self.media.clone();
        let src = src.to_path_buf();
        let mut reader = FrameReader::open(&media, &src, &ReadOptions::default()).expect("reader");
        let source = reader.source().clone();
        let read_thread = std::thread::spawn(move || {
            while let Some(f) = read(&mut reader).expect("frame") {
                if tx.send(f).is_err() {
                    break;
                }
            }
        });
        let mut writer = FrameWriter::create(
            &media,
            &out,
            source.width,
            source.height,
            source.frame_rate,
            &EncodeOptions {
                crf: self.crf,
                preset: self.preset.clone(),
                ..EncodeOptions::default()
            },
        )
        .expect("writer");
        for f in rx {
            write(&mut writer, &f).expect("write");
        }
        let written = writer.finish().expect("finish");
        read_thread.join().expect("reader thread");
        (
            t.elapsed().as_secs_f64(),
            cpu_seconds() - cpu,
            written.frames,
        )
    }
}

/// Milliseconds per call of `f`, median of `n`.
fn per_call_ms(n: usize, mut f: impl FnMut()) -> f64 {
    f();
    median(
        (0..n)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect(),
    )
}

/// The Rust conversions on one 1080p frame of real video (the upscaled cockatoo's first frame).
fn conversions(media: &Media, hd: &Path) {
    let mut reader = FrameReader::open(media, hd, &ReadOptions::default()).expect("reader");
    let yuv = reader.read_yuv_frame().expect("read").expect("a frame");
    drop(reader);
    let px = f64::from(yuv.width * yuv.height);
    let mut rgb = RgbFrame::new(0, 0);
    let mut back = YuvFrame::new(0, 0, YuvFormat::bt709(ChromaSubsampling::Yuv420));
    let mut back444 = YuvFrame::new(0, 0, YuvFormat::bt709(ChromaSubsampling::Yuv444));
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("pool");
    let threads = rayon::current_num_threads();
    let isa = Isa::detect();
    println!(
        "conversions ({}x{}, {:?}): ms per frame with {threads} threads / 1 thread (ns per pixel), \
         the {} build against the baseline (SSE2) build",
        yuv.width,
        yuv.height,
        yuv.format.matrix,
        isa.name()
    );
    let line = |name: &str, f: &mut (dyn FnMut() + Send)| {
        let mut measure = |baseline: bool| {
            simd::force_baseline(baseline);
            let all = per_call_ms(30, &mut *f);
            let single = one.install(|| per_call_ms(30, &mut *f));
            simd::force_baseline(false);
            (all, single)
        };
        let (base_all, base_single) = measure(true);
        let (all, single) = measure(false);
        println!(
            "  {name:<28} {all:6.2} ms / {single:6.2} ms ({:.2} ns/px); baseline {base_all:6.2} / \
             {base_single:6.2} ms: {:.2}x",
            single * 1e6 / px,
            base_single / single
        );
    };
    line("yuv420p -> rgb24 (reader)", &mut || {
        yuv.to_rgb_into(&mut rgb).expect("to rgb")
    });
    line("rgb24 -> yuv420p (writer)", &mut || {
        back.set_from_rgb(&rgb).expect("from rgb")
    });
    line("rgb24 -> yuv444p (writer)", &mut || {
        back444.set_from_rgb(&rgb).expect("from rgb")
    });
}

fn main() {
    let video_dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data/video"
    ));
    let cockatoo = video_dir.join("cockatoo_yuv420.mp4");
    assert!(
        cockatoo.is_file(),
        "{} not found: shared/ must sit next to the checkout",
        cockatoo.display()
    );
    let work = tempfile::tempdir().expect("work dir");
    let temp_root = tempfile::tempdir().expect("temp root");
    let bench = Bench {
        media: Media::new(MediaConfig {
            temp_root: temp_root.path().to_path_buf(),
            ..MediaConfig::default()
        }),
        rt: tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime"),
        work: work.path().to_path_buf(),
        runs: env_or("BENCH_RUNS", 3usize).max(1),
        preset: env_or("BENCH_PRESET", "medium".to_string()),
        crf: env_or("BENCH_CRF", 18u8),
        target: Duration::from_secs_f64(env_or("BENCH_TARGET_SECS", 5.0f64)),
    };

    let hd = work.path().join("cockatoo_1080p.mp4");
    eprintln!("generating the 1080p input (upscaled cockatoo)...");
    ffmpeg(&[
        "-i",
        cockatoo.to_str().expect("utf-8"),
        "-vf",
        "scale=1920:1080:flags=bicubic",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-crf",
        "18",
        hd.to_str().expect("utf-8"),
    ]);

    // A longer input, where fixed costs (process start-up, probes) matter less: cockatoo looped
    // twenty times by stream copy (4 min 40 s of 720p). Only the copy paths are run on it.
    let long = work.path().join("cockatoo_x20.mp4");
    ffmpeg(&[
        "-stream_loop",
        "19",
        "-i",
        cockatoo.to_str().expect("utf-8"),
        "-c",
        "copy",
        long.to_str().expect("utf-8"),
    ]);

    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    let frames_only = only == "frames";
    println!(
        "stereospot-media bench: x264 preset {}, crf {}, segment target {:?}, median of {} runs, {} CPUs, load average {}",
        bench.preset,
        bench.crf,
        bench.target,
        bench.runs,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_average()
    );
    conversions(&bench.media, &hd);
    if only == "conversions" {
        return;
    }
    if !frames_only {
        let mut remux = Vec::new();
        let mut auto = Vec::new();
        let mut auto_method = (ChunkMethod::Auto, 0);
        for _ in 0..bench.runs {
            remux.push(bench.remux(&long));
            let (c, j, m, n) = bench.chunk_join(&long, ChunkMethod::Auto);
            auto.push((c, j));
            auto_method = (m, n);
        }
        let remux_s = median(remux);
        let chunk = median(auto.iter().map(|x| x.0).collect());
        let join = median(auto.iter().map(|x| x.1).collect());
        println!("720p x20: {} (4 min 40 s)", long.display());
        println!(
            "  720p x20 chunk+join auto->{:?}/{} chunk {chunk:7.3}s + join {join:6.3}s = {:7.3}s   vs remux {remux_s:6.3}s: ratio {:5.1}x",
            auto_method.0,
            auto_method.1,
            chunk + join,
            (chunk + join) / remux_s
        );
    }
    for (label, src) in [("720p", cockatoo.as_path()), ("1080p", hd.as_path())] {
        let mut remux = Vec::new();
        let mut validate = Vec::new();
        let mut auto = Vec::new();
        let mut copy = Vec::new();
        let mut reenc = Vec::new();
        let mut plain = Vec::new();
        let mut ours = Vec::new();
        let mut ours_yuv = Vec::new();
        let (mut plain_cpu, mut ours_cpu, mut ours_yuv_cpu) = (Vec::new(), Vec::new(), Vec::new());
        let mut auto_method = (ChunkMethod::Auto, 0);
        let mut frames = 0;
        // Interleave baseline and candidate so machine noise hits both alike.
        for run in 0..bench.runs {
            if !frames_only {
                remux.push(bench.remux(src));
                validate.push(bench.validate(src));
                let (c, j, m, n) = bench.chunk_join(src, ChunkMethod::Auto);
                auto.push((c, j));
                auto_method = (m, n);
                let (c, j, _, _) = bench.chunk_join(src, ChunkMethod::Copy);
                copy.push((c, j));
                let (c, j, _, _) = bench.chunk_join(src, ChunkMethod::Reencode);
                reenc.push((c, j));
            }
            // Alternate who goes first, too.
            let mut baseline = || {
                let (s, c) = bench.plain_transcode(src);
                plain.push(s);
                plain_cpu.push(c);
            };
            if run % 2 == 0 {
                baseline();
            }
            let (s, c, f) = bench.reader_writer(src);
            ours.push(s);
            ours_cpu.push(c);
            frames = f;
            let (s, c, f) = bench.reader_writer_yuv(src);
            assert_eq!(f, frames);
            ours_yuv.push(s);
            ours_yuv_cpu.push(c);
            if run % 2 == 1 {
                baseline();
            }
        }
        println!("{label}: {} ({frames} frames)", src.display());
        let ratios = |v: &[f64]| {
            v.iter()
                .zip(&plain)
                .map(|(o, p)| format!("{:.2}", p / o))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let plain_s = median(plain.clone());
        let plain_c = median(plain_cpu.clone());
        for (name, v, c) in [
            ("RGB", &ours, &ours_cpu),
            ("YUV passthrough", &ours_yuv, &ours_yuv_cpu),
        ] {
            let s = median(v.clone());
            let c = median(c.clone());
            println!(
                "  {label:>5} frame I/O ({name}): reader+writer {:6.1} fps ({s:6.2}s) vs plain ffmpeg decode+encode {:6.1} fps ({plain_s:6.2}s): ratio {:.2} (per run: {}); CPU {c:6.1}s vs {plain_c:6.1}s: ratio {:.2}",
                frames as f64 / s,
                frames as f64 / plain_s,
                plain_s / s,
                ratios(v),
                plain_c / c
            );
        }
        if frames_only {
            continue;
        }
        let remux_s = median(remux);
        let report = |name: &str, v: &[(f64, f64)]| {
            let chunk = median(v.iter().map(|x| x.0).collect());
            let join = median(v.iter().map(|x| x.1).collect());
            println!(
                "  {label:>5} {name:<22} chunk {chunk:7.3}s + join {join:6.3}s = {:7.3}s   vs remux {remux_s:6.3}s: ratio {:5.1}x",
                chunk + join,
                (chunk + join) / remux_s
            );
        };
        println!(
            "  {label:>5} validate (probe, packet scan, 10 s decode check): {:6.3}s (not included below)",
            median(validate)
        );
        report(
            &format!("chunk+join auto->{:?}/{}", auto_method.0, auto_method.1),
            &auto,
        );
        report("chunk+join copy", &copy);
        report("chunk+join re-encode", &reenc);
    }
    println!("load average at the end: {}", load_average());
    let left = std::fs::read_dir(temp_root.path())
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(left, 0, "temp files left behind");
}
