//! Depth Anything V2 Small forward time on ONNX Runtime, and what each speed lever costs.
//!
//! Needs the full-size Small architecture as ONNX (random weights are enough for speed; real
//! weights cannot be downloaded here):
//!
//! ```sh
//! . /tmp/venv-ref/bin/activate
//! python scripts/stereo/export_bench_models.py --reference /tmp/dav2   # see its docs
//! STEREOSPOT_BENCH_MODEL=/tmp/stereospot-bench/dav2_small_random.onnx \
//!     cargo bench -p stereospot-stereo --bench depth
//! ```
//!
//! Every `<model stem>_<variant>.onnx` beside the model (the script writes `_int8`,
//! `_int8_matmul` and `_fp16`) is measured too.
//! `STEREOSPOT_BENCH_RUNS` (default 5) timed runs per configuration, after one warm-up;
//! configurations run round-robin, so a change in machine load hits all of them alike.
//! `STEREOSPOT_BENCH_ONLY=a,b` keeps configurations whose name contains one of the words.
//!
//! Prints, per configuration: median and fastest wall time, the ratio to the baseline (fp32 at
//! 518x518 with the engine's defaults: graph optimisation level 3, one intra-op thread per core,
//! spinning on), the process CPU time per run, and the accuracy it costs against the baseline's
//! output (min-max normalised depth, smaller inputs upsampled to 518x518 as the engine does:
//! relative L2 and max abs). The input is the cones picture (a 375x375 crop), preprocessed like
//! the reference. With random weights the accuracy figures are indicative only.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::TensorRef;
use stereospot_stereo::RgbFrame;
use stereospot_stereo::depth::DepthModel;
use stereospot_stereo::depth::npy;
use stereospot_stereo::depth::onnx::{OnnxDepthModel, OnnxOptions};
use stereospot_stereo::depth::postprocess::resize_bilinear_align_corners;
use stereospot_stereo::depth::preprocess::{ModelInput, preprocess};

type BoxError = Box<dyn std::error::Error>;

struct Config {
    name: String,
    session: Session,
    input: ModelInput,
    times: Vec<Duration>,
    cpu: Vec<Duration>,
    output: Vec<f32>,
}

fn cpu_time() -> Duration {
    // utime + stime of this process, from /proc (no unsafe getrusage).
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return Duration::ZERO;
    };
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // Fields after the command: state is index 0, utime 11, stime 12; 100 ticks per second.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

fn load_avg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn session(
    path: &Path,
    threads: usize,
    level: GraphOptimizationLevel,
    spinning: bool,
) -> Result<Session, BoxError> {
    let env = stereospot_stereo::depth::runtime::environment()?;
    Ok(Session::builder(env)?
        .with_optimization_level(level)?
        .with_intra_threads(threads)?
        .with_intra_op_spinning(spinning)?
        .commit_from_file(path)?)
}

fn run(session: &mut Session, input: &ModelInput) -> Result<Vec<f32>, BoxError> {
    let tensor = TensorRef::from_array_view((input.shape(), input.data.as_slice()))?;
    let outputs = session.run(ort::inputs![tensor])?;
    let (_, values) = outputs[0].try_extract_tensor::<f32>()?;
    Ok(values.to_vec())
}

fn normalised(v: &[f32]) -> Vec<f32> {
    let (lo, hi) = v
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &x| {
            (lo.min(x), hi.max(x))
        });
    let range = (hi - lo).max(f32::MIN_POSITIVE);
    v.iter().map(|&x| (x - lo) / range).collect()
}

fn accuracy(output: &[f32], input: &ModelInput, reference: &[f32], side: usize) -> (f64, f32) {
    let resized = if input.width as usize == side && input.height as usize == side {
        output.to_vec()
    } else {
        resize_bilinear_align_corners(
            output,
            input.width as usize,
            input.height as usize,
            side,
            side,
        )
    };
    let (a, b) = (normalised(&resized), normalised(reference));
    let (mut num, mut den, mut max) = (0f64, 0f64, 0f32);
    for (x, y) in a.iter().zip(&b) {
        let d = f64::from(*x) - f64::from(*y);
        num += d * d;
        den += f64::from(*y) * f64::from(*y);
        max = max.max((x - y).abs());
    }
    ((num / den.max(f64::MIN_POSITIVE)).sqrt(), max)
}

fn median(v: &[Duration]) -> Duration {
    let mut v = v.to_vec();
    v.sort();
    v[v.len() / 2]
}

fn siblings(model: &Path) -> Vec<(String, PathBuf)> {
    let (Some(dir), Some(stem)) = (model.parent(), model.file_stem().and_then(|s| s.to_str()))
    else {
        return Vec::new();
    };
    let prefix = format!("{stem}_");
    let mut found: Vec<(String, PathBuf)> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter_map(|p| {
                    let name = p.file_name()?.to_str()?;
                    let variant = name.strip_prefix(&prefix)?.strip_suffix(".onnx")?;
                    Some((variant.to_string(), p.clone()))
                })
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

fn cones_square() -> Result<RgbFrame, BoxError> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/image_cones.npy");
    let img: npy::NpyArray<u8> = npy::read(&path)?;
    let (h, w) = (img.shape[0], img.shape[1]);
    let side = h.min(w);
    let x0 = (w - side) / 2;
    let mut data = Vec::with_capacity(side * side * 3);
    for y in 0..side {
        data.extend_from_slice(&img.data[(y * w + x0) * 3..(y * w + x0 + side) * 3]);
    }
    Ok(RgbFrame {
        width: side as u32,
        height: side as u32,
        index: 0,
        data,
    })
}

fn main() -> Result<(), BoxError> {
    let Some(model) = std::env::var_os("STEREOSPOT_BENCH_MODEL").map(PathBuf::from) else {
        println!(
            "depth bench skipped: set STEREOSPOT_BENCH_MODEL to the full-size Depth Anything V2 \
             Small ONNX export, made with\n  . /tmp/venv-ref/bin/activate && python \
             scripts/stereo/export_bench_models.py --reference <Depth-Anything-V2 checkout>\n\
             then STEREOSPOT_BENCH_MODEL=/tmp/stereospot-bench/dav2_small_random.onnx cargo bench \
             -p stereospot-stereo --bench depth"
        );
        return Ok(());
    };
    if !model.is_file() {
        println!(
            "depth bench skipped: STEREOSPOT_BENCH_MODEL={} does not exist (see scripts/stereo/export_bench_models.py)",
            model.display()
        );
        return Ok(());
    }
    let runs: usize = std::env::var("STEREOSPOT_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5)
        .max(1);
    let only: Vec<String> = std::env::var("STEREOSPOT_BENCH_ONLY")
        .map(|v| v.split(',').map(|s| s.trim().to_string()).collect())
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let frame = cones_square()?;
    let l3 = GraphOptimizationLevel::Level3;

    // (name, file, input size, threads, optimisation level, spinning)
    let mut plan: Vec<(String, PathBuf, u32, usize, GraphOptimizationLevel, bool)> = vec![
        (
            "fp32 518 (baseline)".into(),
            model.clone(),
            518,
            cores,
            l3,
            true,
        ),
        ("fp32 518 1 thread".into(), model.clone(), 518, 1, l3, true),
        (
            "fp32 518 no spinning".into(),
            model.clone(),
            518,
            cores,
            l3,
            false,
        ),
        (
            "fp32 518 graph opt basic".into(),
            model.clone(),
            518,
            cores,
            GraphOptimizationLevel::Level1,
            true,
        ),
        ("fp32 448".into(), model.clone(), 448, cores, l3, true),
        ("fp32 392".into(), model.clone(), 392, cores, l3, true),
    ];
    // Every `<stem>_<variant>.onnx` beside the model (export_bench_models.py writes `_int8`,
    // `_int8_matmul` and `_fp16`) at 518, and the MatMul-only int8 at the smaller sizes too.
    for (variant, path) in siblings(&model) {
        plan.push((format!("{variant} 518"), path.clone(), 518, cores, l3, true));
        if variant == "int8_matmul" {
            plan.push((format!("{variant} 448"), path.clone(), 448, cores, l3, true));
            plan.push((format!("{variant} 392"), path, 392, cores, l3, true));
        }
    }
    plan.retain(|p| {
        p.0.contains("baseline") || only.is_empty() || only.iter().any(|o| p.0.contains(o.as_str()))
    });

    println!(
        "depth forward, {} ({cores} cores, load average {} at start), {runs} runs each",
        model.display(),
        load_avg()
    );
    let mut configs = Vec::new();
    for (name, path, size, threads, level, spinning) in plan {
        let started = Instant::now();
        let session = session(&path, threads, level, spinning)?;
        let input = preprocess(&frame, size)?;
        println!(
            "  loaded {name:<26} {}x{} in {:.1} s",
            input.width,
            input.height,
            started.elapsed().as_secs_f64()
        );
        configs.push(Config {
            name,
            session,
            input,
            times: Vec::new(),
            cpu: Vec::new(),
            output: Vec::new(),
        });
    }
    for c in &mut configs {
        c.output = run(&mut c.session, &c.input)?; // warm-up
    }
    for _ in 0..runs {
        for c in &mut configs {
            let (t, cpu) = (Instant::now(), cpu_time());
            c.output = run(&mut c.session, &c.input)?;
            c.times.push(t.elapsed());
            c.cpu.push(cpu_time().saturating_sub(cpu));
        }
    }

    let base = &configs[0];
    let base_median = median(&base.times);
    let reference = base.output.clone();
    println!(
        "\n{:<26} {:>9} {:>9} {:>8} {:>9} {:>11} {:>9}",
        "configuration", "median s", "fastest", "ratio", "cpu s/run", "rel L2", "max abs"
    );
    for c in &configs {
        let m = median(&c.times);
        let fastest = c.times.iter().min().copied().unwrap_or_default();
        let cpu = c.cpu.iter().sum::<Duration>().as_secs_f64() / c.cpu.len() as f64;
        let (rel, max) = accuracy(&c.output, &c.input, &reference, 518);
        println!(
            "{:<26} {:>9.3} {:>9.3} {:>8.2} {:>9.2} {:>11.2e} {:>9.2e}",
            c.name,
            m.as_secs_f64(),
            fastest.as_secs_f64(),
            m.as_secs_f64() / base_median.as_secs_f64(),
            cpu,
            rel,
            max
        );
    }
    println!("load average at end: {}", load_avg());
    drop(configs);

    // The whole engine on a 1080p frame (518 x 924 tensor): preprocessing, forward, upsampling.
    if only.is_empty() || only.iter().any(|o| o == "1080p") {
        let mut big = RgbFrame::new(1920, 1080);
        for (i, px) in big.data.chunks_exact_mut(3).enumerate() {
            let (x, y) = (i % 1920, i / 1920);
            px.copy_from_slice(&[(x / 8) as u8, (y / 5) as u8, ((x ^ y) & 255) as u8]);
        }
        let mut engine = OnnxDepthModel::load(&model, &OnnxOptions::default())?;
        engine.estimate(&big)?;
        let (mut pre, mut total) = (Vec::new(), Vec::new());
        for _ in 0..runs.min(3) {
            let t = Instant::now();
            let input = preprocess(&big, 518)?;
            pre.push(t.elapsed());
            drop(input);
            let t = Instant::now();
            engine.estimate(&big)?;
            total.push(t.elapsed());
        }
        let depth = engine.estimate(&big)?;
        let t = Instant::now();
        let up = resize_bilinear_align_corners(&depth.data[..924 * 518], 924, 518, 1920, 1080);
        let up_time = t.elapsed();
        drop(up);
        println!(
            "\n1080p frame, fp32 at 518 (924x518 tensor): estimate {:.3} s median, of which \
             preprocessing {:.1} ms, upsampling to 1920x1080 about {:.1} ms",
            median(&total).as_secs_f64(),
            median(&pre).as_secs_f64() * 1e3,
            up_time.as_secs_f64() * 1e3
        );
    }
    Ok(())
}
