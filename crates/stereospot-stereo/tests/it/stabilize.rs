//! Segment boundaries: a sequence normalised whole and the same sequence normalised as two
//! independent segments must agree at the joint (see `stabilize`'s module docs).

use stereospot_stereo::stabilize::{DepthNormalizer, NormalizerOptions, seed_state};
use stereospot_stereo::{DepthMap, RgbFrame};

const W: u32 = 160;
const H: u32 = 90;
const FRAMES: usize = 120;
const JOINT: usize = 60;

/// Deterministic noise in -0.5..0.5.
fn jitter(i: usize, salt: u32) -> f32 {
    let mut v = (i as u32).wrapping_mul(0x9E37_79B9) ^ salt.wrapping_mul(0x85EB_CA6B);
    v ^= v >> 15;
    v = v.wrapping_mul(0x2C1B_3C6D);
    v ^= v >> 12;
    (v & 0xFFFF) as f32 / 65535.0 - 0.5
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Content {
    /// The nearest object approaches steadily: its inverse depth grows 1 % of the scene's
    /// range per frame.
    Trend,
    /// The nearest object's inverse depth jitters by +-10 % of the scene's range per frame.
    Noise,
}

/// Frame `t`: a textured scene panning slowly, and the "model's" raw depth for it: a ground
/// ramp and a disc (the nearest object) moving across, with the model's scale drifting 0.2 % per
/// frame and jittering 2 %, and its shift jittering, as a monocular model's output does.
fn frame(t: usize, content: Content) -> (RgbFrame, DepthMap) {
    let mut f = RgbFrame::new(W, H);
    let mut d = DepthMap::new(W, H);
    let scale = (1.0 + 0.002 * t as f32) * (1.0 + 0.04 * jitter(t, 1));
    let shift = 0.02 * jitter(t, 2);
    let near = match content {
        Content::Trend => 0.3 + 0.01 * t as f32,
        Content::Noise => 0.9 + 0.3 * jitter(t, 3),
    };
    let (cx, cy) = (30.0 + t as f32, 50.0);
    for y in 0..H {
        for x in 0..W {
            let i = (y * W + x) as usize;
            let u = x as usize + t / 2;
            let v = (((u / 6 + y as usize / 6) % 2) * 100 + 60 + (y as usize % 40)) as u8;
            f.data[i * 3..i * 3 + 3].copy_from_slice(&[v, v / 2 + 40, 200 - v / 2]);
            let (dx, dy) = (x as f32 - cx, y as f32 - cy);
            let disc = if dx * dx + dy * dy < 400.0 { near } else { 0.0 };
            let ground = y as f32 / H as f32;
            d.data[i] = shift + scale * (0.5 + ground + disc);
        }
    }
    (f, d)
}

/// Normalises `frames` with a fresh normaliser: seeded from its first frames as a segment worker
/// does, or not.
fn run(frames: &[(RgbFrame, DepthMap)], seeded: bool, opts: NormalizerOptions) -> Vec<DepthMap> {
    let mut n = if seeded {
        let lead = frames.iter().take(opts.seed_frames).map(|(f, d)| (f, d));
        DepthNormalizer::with_state(opts, seed_state(lead, &opts).expect("seed"))
    } else {
        DepthNormalizer::new(opts)
    };
    let out = frames.iter().map(|(f, d)| n.normalize(f, d)).collect();
    assert_eq!(n.scene_cuts(), 0);
    out
}

fn mean_abs(a: &DepthMap, b: &DepthMap) -> f32 {
    a.data
        .iter()
        .zip(&b.data)
        .map(|(x, y)| (x - y).abs())
        .sum::<f32>()
        / a.data.len() as f32
}

fn max_abs(a: &DepthMap, b: &DepthMap) -> f32 {
    a.data
        .iter()
        .zip(&b.data)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn segment_joint() {
    let opts = NormalizerOptions::default();
    // Disparity per unit of depth at 1080p with the default divergence (2 % of 1920 px).
    let px = 0.02 * 1920.0;
    let preroll = 15;
    println!();
    println!(
        "segment joint at frame {JOINT} of {FRAMES}, whole run vs a second segment converted \
         independently (ema {}, seed from {} frames; model scale drift 0.2 %/frame, jitter 2 %):",
        opts.ema, opts.seed_frames
    );
    println!("  mean |depth difference| at the joint frame (max), and in px of disparity at 1080p");
    for content in [Content::Trend, Content::Noise] {
        let frames: Vec<_> = (0..FRAMES).map(|t| frame(t, content)).collect();
        let whole = run(&frames, true, opts);
        let seeded = run(&frames[JOINT..], true, opts);
        let unseeded = run(&frames[JOINT..], false, opts);
        let prerolled = run(&frames[JOINT - preroll..], false, opts);
        let w = &whole[JOINT];
        let flicker = (1..FRAMES)
            .map(|t| mean_abs(&whole[t], &whole[t - 1]))
            .sum::<f32>()
            / (FRAMES - 1) as f32;
        let worst_after = (0..FRAMES - JOINT)
            .map(|k| mean_abs(&whole[JOINT + k], &seeded[k]))
            .fold(0.0, f32::max);
        println!(
            "  {content:?} (nearest object {}):",
            match content {
                Content::Trend => "approaching 1 % of the range per frame",
                Content::Noise => "jittering +-10 % of the range per frame",
            }
        );
        for (label, d) in [
            ("seeded (seed_state)", &seeded[0]),
            ("unseeded", &unseeded[0]),
            ("pre-rolled 15 frames", &prerolled[preroll]),
        ] {
            println!(
                "    {label:<21} {:.4} (max {:.4}) = {:.2} px (max {:.2} px)",
                mean_abs(w, d),
                max_abs(w, d),
                mean_abs(w, d) * px,
                max_abs(w, d) * px
            );
        }
        println!(
            "    seeded, worst frame after the joint {worst_after:.4}; for scale, mean frame-to-frame \
             change of the whole run {flicker:.4} ({:.2} px)",
            flicker * px
        );
        assert!(worst_after <= mean_abs(w, &seeded[0]) + 1e-6);
        assert!(mean_abs(w, &seeded[0]) < 0.015, "{content:?}");
        assert!(mean_abs(w, &prerolled[preroll]) < 0.002, "{content:?}");
    }
}
