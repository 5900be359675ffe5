//! Stereo engine benchmark (not a test): per-frame times at 1080p and 720p of the fast depth
//! estimator, normalisation, view synthesis and composition in every format (apart, and fused
//! as the conversion runs them: `synthesize_composed_into`), median of
//! `BENCH_RUNS` (default 21) runs after a warm-up, on rayon's global pool (`RAYON_NUM_THREADS`
//! sets its size). Besides wall time it prints the CPU time of all threads per frame, which a
//! busy machine distorts less.
//!
//! Synthesis and the fused Dubois path are timed a second time with the baseline (SSE2) build of
//! the row kernels, against the best build for this CPU (`stereospot_media::simd`).
//!
//! Run: `cargo bench -p stereospot-stereo --bench synth`. The load average is printed before and
//! after: the numbers are only comparable on a quiet machine.

use std::hint::black_box;
use std::time::Instant;

use stereospot_media::simd::{self, Isa};
use stereospot_stereo::compose::{StereoFormat, compose_into};
use stereospot_stereo::depth::fast::FastDepth;
use stereospot_stereo::stabilize::{DepthNormalizer, NormalizerOptions};
use stereospot_stereo::synth::{
    StereoPair, SynthOptions, synthesize_composed_into, synthesize_into,
};
use stereospot_stereo::{DepthMap, RgbFrame};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// CPU time used so far by all of this process's threads, in nanoseconds (Linux
/// `/proc/self/task/*/schedstat`; 0 elsewhere).
fn cpu_ns() -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .filter_map(|t| t.ok())
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// Per-call times in milliseconds: wall (median of `runs` calls after two warm-up calls) and
/// CPU of all threads (mean; rayon's idle spinning included).
#[derive(Clone, Copy)]
struct Timing {
    wall: f64,
    cpu: f64,
}

fn time(runs: usize, mut f: impl FnMut()) -> Timing {
    f();
    f();
    let cpu0 = cpu_ns();
    let mut v: Vec<f64> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    let cpu = (cpu_ns() - cpu0) as f64 / 1e6 / runs as f64;
    v.sort_by(f64::total_cmp);
    Timing {
        wall: v[v.len() / 2],
        cpu,
    }
}

/// A frame with texture, soft gradients and hard-edged objects.
fn frame(w: u32, h: u32) -> RgbFrame {
    let mut f = RgbFrame::new(w, h);
    for y in 0..h {
        for x in 0..w {
            let i = ((y * w + x) * 3) as usize;
            let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
            let mut v = [
                (60.0 + 120.0 * fy) as u8,
                (90.0 + 80.0 * fx) as u8,
                (200.0 - 100.0 * fy) as u8,
            ];
            let (dx, dy) = (fx - 0.4, fy - 0.6);
            if dx * dx + dy * dy < 0.03 {
                let t = ((x / 3 + y / 3) % 2) as u8 * 60;
                v = [200 - t, 80 + t, 40];
            }
            if (0.65..0.85).contains(&fx) && (0.2..0.7).contains(&fy) {
                v = [30, 30 + (x % 7) as u8 * 20, 60];
            }
            f.data[i..i + 3].copy_from_slice(&v);
        }
    }
    f
}

fn main() {
    let runs = env_or("BENCH_RUNS", 21usize);
    println!(
        "stereo engine bench: median of {runs} runs, {} rayon threads, {} CPUs, load average before: {}",
        rayon::current_num_threads(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load()
    );
    let formats = StereoFormat::ALL;
    for (label, w, h) in [("1080p", 1920, 1080), ("720p", 1280, 720)] {
        let f = frame(w, h);
        let mut model = FastDepth::default();
        let mut raw = DepthMap::new(0, 0);
        let t_depth = time(runs, || {
            model.estimate_into(&f, &mut raw).expect("depth");
        });
        let mut norm = DepthNormalizer::new(NormalizerOptions::default());
        let mut depth = DepthMap::new(0, 0);
        let t_norm = time(runs, || norm.normalize_into(&f, &raw, &mut depth));
        let opts = SynthOptions::default();
        let mut pair = StereoPair::new(w, h);
        let t_synth = time(runs, || {
            synthesize_into(&f, &depth, &opts, &mut pair).expect("synth");
        });
        let mut out = RgbFrame::new(0, 0);
        let t_compose: Vec<(StereoFormat, Timing)> = formats
            .iter()
            .map(|&fmt| {
                let t = time(runs, || {
                    compose_into(&pair, fmt, &mut out).expect("compose");
                    black_box(&out);
                });
                (fmt, t)
            })
            .collect();
        let t_fused: Vec<(StereoFormat, Timing)> = formats
            .iter()
            .map(|&fmt| {
                let t = time(runs, || {
                    synthesize_composed_into(&f, &depth, &opts, fmt, &mut out).expect("fused");
                    black_box(&out);
                });
                (fmt, t)
            })
            .collect();
        // The same two hot paths with the SSE2 build of the kernels, for the ratio.
        simd::force_baseline(true);
        let base_synth = time(runs, || {
            synthesize_into(&f, &depth, &opts, &mut pair).expect("synth");
        });
        let base_fused = time(runs, || {
            synthesize_composed_into(&f, &depth, &opts, formats[0], &mut out).expect("fused");
            black_box(&out);
        });
        simd::force_baseline(false);
        println!("{label} ({w}x{h}), ms per frame: wall (median) / CPU of all threads (mean)");
        let row = |name: &str, t: Timing| println!("  {name:<28} {:7.2} / {:7.2}", t.wall, t.cpu);
        row("fast depth", t_depth);
        row("normalise", t_norm);
        row("synthesize", t_synth);
        for (fmt, t) in &t_compose {
            row(&format!("compose {fmt}"), *t);
        }
        let worst = t_compose.iter().map(|(_, t)| *t).fold(
            Timing {
                wall: 0.0,
                cpu: 0.0,
            },
            |a, b| if b.wall > a.wall { b } else { a },
        );
        let dubois = t_compose[0].1;
        row(
            "synthesize + compose anaglyph",
            Timing {
                wall: t_synth.wall + dubois.wall,
                cpu: t_synth.cpu + dubois.cpu,
            },
        );
        for (fmt, t) in &t_fused {
            row(&format!("fused synth+compose {fmt}"), *t);
        }
        let isa = Isa::detect().name();
        for (name, t, best) in [
            ("synthesize", base_synth, t_synth),
            ("fused anaglyph", base_fused, t_fused[0].1),
        ] {
            println!(
                "  {:<28} {:7.2} / {:7.2}   ({isa} build: {:.2}x faster in CPU time)",
                format!("{name}, baseline build"),
                t.wall,
                t.cpu,
                t.cpu / best.cpu
            );
        }
        row(
            "whole chain (slowest compose)",
            Timing {
                wall: t_depth.wall + t_norm.wall + t_synth.wall + worst.wall,
                cpu: t_depth.cpu + t_norm.cpu + t_synth.cpu + worst.cpu,
            },
        );
    }
    println!("load average after: {}", load());
}
