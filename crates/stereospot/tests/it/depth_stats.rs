//! Depth at segment joints on real video (fast depth): a source normalised whole, and the same
//! source cut into segments that are normalised independently, each seeded either from its own
//! first frames (`seed_state`) or from the job-wide range computed once from frames sampled
//! across the whole source (`job_range`, what the chunking step stores for the job). Prints the
//! figures; run with `--nocapture` to see them.

use std::path::Path;

use stereospot_media::{FrameReader, Media, ReadOptions, Resize};
use stereospot_stereo::DepthMap;
use stereospot_stereo::RgbFrame;
use stereospot_stereo::depth::DepthModel;
use stereospot_stereo::depth::fast::{FastDepth, FastDepthOptions};
use stereospot_stereo::stabilize::{
    DepthNormalizer, NormalizerOptions, relative_range, seed_state,
};

fn mean_abs(a: &DepthMap, b: &DepthMap) -> f64 {
    a.data
        .iter()
        .zip(&b.data)
        .map(|(x, y)| f64::from((x - y).abs()))
        .sum::<f64>()
        / a.data.len() as f64
}

fn decode(name: &str) -> Vec<(RgbFrame, DepthMap)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/video")
        .join(name);
    // A third of 720p: the statistics are of the depth distribution, not of detail.
    let opts = ReadOptions {
        resize: Some(Resize::Fit {
            max_width: 320,
            max_height: 240,
        }),
        ..ReadOptions::default()
    };
    let mut reader = FrameReader::open(&Media::default(), &path, &opts).unwrap();
    let mut model = FastDepth::new(FastDepthOptions::default());
    let mut frames = Vec::new();
    while let Some(f) = reader.read_frame().unwrap() {
        let d = model.estimate(&f).unwrap();
        frames.push((f, d));
    }
    frames
}

/// Evenly spaced samples, as the chunking step takes them.
pub fn sample<T>(items: &[T], n: usize) -> Vec<&T> {
    (0..n.min(items.len()))
        .map(|i| &items[i * items.len() / n.min(items.len())])
        .collect()
}

#[derive(Debug, Default)]
struct Figures {
    /// Mean |d(first frame of k+1) - d(last frame of k)| over the joints.
    jump: f64,
    /// Mean |d - whole run's d| at the joints' first frames.
    off_whole: f64,
    /// Mean |d - whole run's d| over every frame.
    off_whole_all: f64,
}

fn measure(name: &str, segment_frames: usize) -> (Figures, Figures, Figures, Figures, f64) {
    let frames = decode(name);
    let opts = NormalizerOptions::default();
    let n = frames.len();
    let whole: Vec<DepthMap> = {
        let mut norm = DepthNormalizer::new(opts);
        frames.iter().map(|(f, d)| norm.normalize(f, d)).collect()
    };
    let job = relative_range(sample(&frames, 16).into_iter().map(|(_, d)| d), &opts).unwrap();
    let run = |mode: u8| -> Vec<DepthMap> {
        let mut out = Vec::with_capacity(n);
        for (k, seg) in frames.chunks(segment_frames).enumerate() {
            let start = k * segment_frames;
            let mut norm = if mode == 1 {
                DepthNormalizer::with_relative_seed(opts, job)
            } else if mode == 2 && start > 0 {
                // The frames just before the joint (the end of the previous segment).
                let before = &frames[start.saturating_sub(opts.seed_frames)..start];
                let seed = relative_range(before.iter().map(|(_, d)| d), &opts).unwrap();
                DepthNormalizer::with_relative_seed(opts, seed)
            } else {
                let lead = seg.iter().take(opts.seed_frames).map(|(f, d)| (f, d));
                DepthNormalizer::with_state(opts, seed_state(lead, &opts).unwrap())
            };
            out.extend(seg.iter().map(|(f, d)| norm.normalize(f, d)));
        }
        out
    };
    let figures = |maps: &[DepthMap]| {
        let joints: Vec<usize> = (segment_frames..n).step_by(segment_frames).collect();
        let k = joints.len() as f64;
        Figures {
            jump: joints
                .iter()
                .map(|&j| mean_abs(&maps[j], &maps[j - 1]))
                .sum::<f64>()
                / k,
            off_whole: joints
                .iter()
                .map(|&j| mean_abs(&maps[j], &whole[j]))
                .sum::<f64>()
                / k,
            off_whole_all: (0..n).map(|i| mean_abs(&maps[i], &whole[i])).sum::<f64>() / n as f64,
        }
    };
    let per_segment = run(0);
    let job_seeded = run(1);
    let before_joint = run(2);
    // The whole run's own frame-to-frame change, away from the joints.
    let steady = (1..n)
        .map(|i| mean_abs(&whole[i], &whole[i - 1]))
        .sum::<f64>()
        / (n - 1) as f64;
    (
        figures(&whole),
        figures(&per_segment),
        figures(&job_seeded),
        figures(&before_joint),
        steady,
    )
}

#[test]
fn depth_at_segment_joints_with_and_without_the_relative_range() {
    for (name, seg) in [("car-detection.mp4", 50), ("cockatoo_yuv420.mp4", 50)] {
        let (whole, per_segment, job, before, steady) = measure(name, seg);
        println!(
            "{name}, joints every {seg} frames, fast depth: frame-to-frame change of the whole run {steady:.4}\n  \
             whole run      : jump at joints {:.4}\n  \
             own first frames: jump {:.4}, off the whole run at the joint {:.4}, over all frames {:.4}\n  \
             job-wide range : jump {:.4}, off the whole run at the joint {:.4}, over all frames {:.4}\n  \
             frames before the joint: jump {:.4}, off the whole run at the joint {:.4}, over all frames {:.4}",
            whole.jump,
            per_segment.jump,
            per_segment.off_whole,
            per_segment.off_whole_all,
            job.jump,
            job.off_whole,
            job.off_whole_all,
            before.jump,
            before.off_whole,
            before.off_whole_all,
        );
        assert!(
            before.jump < per_segment.jump && before.off_whole < per_segment.off_whole,
            "{name}: seeding from the frames before the joint must join better"
        );
    }
}

/// What the chunking step stores: for each joint, the seed from the frames just before it.
#[test]
fn the_engine_analyzer_seeds_each_joint_from_the_frames_before_it() {
    // 320x240: `decode` keeps it as it is.
    let frames = decode("realshort.mp4");
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/video/realshort.mp4");
    let opts = NormalizerOptions::default();
    let firsts = [0u64, 12, 24];
    let mut model = FastDepth::new(FastDepthOptions::default());
    let stats = stereospot::engine_backend::analyze_source(
        &Media::default(),
        &path,
        &firsts,
        &mut model,
        &opts,
    )
    .unwrap();
    assert_eq!(stats.depth_model, model.name());
    assert_eq!(stats.depth_seeds.len(), 3);
    assert_eq!(stats.depth_seeds[0], None);
    for (k, &f) in firsts.iter().enumerate().skip(1) {
        let f = f as usize;
        let want = relative_range(
            frames[f - opts.seed_frames..f].iter().map(|(_, d)| d),
            &opts,
        )
        .unwrap();
        assert_eq!(stats.depth_seeds[k], Some([want.lo, want.hi]), "joint {k}");
    }
}
