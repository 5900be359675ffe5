//! View synthesis and formats on synthetic scenes with known geometry.

use stereospot_stereo::compose::{StereoFormat, compose, compose_into};
use stereospot_stereo::depth::DepthModel;
use stereospot_stereo::depth::fast::FastDepth;
use stereospot_stereo::stabilize::{DepthNormalizer, NormalizerOptions};
use stereospot_stereo::synth::{StereoPair, SynthOptions, synthesize, synthesize_into};
use stereospot_stereo::{DepthMap, RgbFrame};

const W: u32 = 200;
const H: u32 = 60;

fn scene(
    colour: impl Fn(u32, u32) -> [u8; 3],
    depth: impl Fn(u32, u32) -> f32,
) -> (RgbFrame, DepthMap) {
    let mut f = RgbFrame::new(W, H);
    let mut d = DepthMap::new(W, H);
    for y in 0..H {
        for x in 0..W {
            let i = (y * W + x) as usize;
            f.data[i * 3..i * 3 + 3].copy_from_slice(&colour(x, y));
            d.data[i] = depth(x, y);
        }
    }
    (f, d)
}

/// Background colour: red channel encodes the column, so shifts are readable.
fn bg(x: u32) -> [u8; 3] {
    [10 + x as u8, 100, 150]
}

const SQUARE: [u8; 3] = [250, 30, 30];

fn in_square(x: u32, y: u32) -> bool {
    (80..120).contains(&x) && (20..40).contains(&y)
}

/// Divergence 10 % of 200 px, convergence 0.5: depth 1 -> +10 px, depth 0 -> -10 px, so each
/// view moves the square by 5 px and the background by 5 px the other way. No dilation.
fn opts() -> SynthOptions {
    SynthOptions {
        divergence: 10.0,
        convergence: 0.5,
        dilation: 0,
    }
}

#[test]
fn near_square_shifts_by_the_expected_disparity_in_each_view() {
    let (f, d) = scene(
        |x, y| if in_square(x, y) { SQUARE } else { bg(x) },
        |x, y| if in_square(x, y) { 1.0 } else { 0.0 },
    );
    assert_eq!(opts().disparity(W, 1.0), 10.0);
    let pair = synthesize(&f, &d, &opts()).expect("synthesize");
    let (l, r) = (&pair.left, &pair.right);
    // Nearer than the convergence plane: the left view moves it right, the right view left.
    for y in 20..40 {
        for x in 0..W {
            let in_left = (85..125).contains(&x);
            let in_right = (75..115).contains(&x);
            assert_eq!(l.pixel(x, y) == SQUARE, in_left, "left ({x}, {y})");
            assert_eq!(r.pixel(x, y) == SQUARE, in_right, "right ({x}, {y})");
        }
    }
    // Farther than the plane: the background moves the other way (left view: left).
    for y in (0..20).chain(40..H) {
        for x in 0..195 {
            assert_eq!(l.pixel(x, y), bg(x + 5), "left ({x}, {y})");
        }
        for x in 5..W {
            assert_eq!(r.pixel(x, y), bg(x - 5), "right ({x}, {y})");
        }
    }
}

#[test]
fn near_pixels_occlude_far_ones_and_holes_take_the_background() {
    let (f, d) = scene(
        |x, y| if in_square(x, y) { SQUARE } else { bg(x) },
        |x, y| if in_square(x, y) { 1.0 } else { 0.0 },
    );
    let pair = synthesize(&f, &d, &opts()).expect("synthesize");
    let y = 30;
    // Right view: background from x < 80 lands on [5, 85), the square on [75, 115): the square
    // wins on [75, 85). Disoccluded [115, 125) is filled from its far side: background 120.
    for x in 75..85 {
        assert_eq!(pair.right.pixel(x, y), SQUARE, "occlusion at {x}");
    }
    for x in 115..125 {
        assert_eq!(pair.right.pixel(x, y), bg(120), "hole at {x}");
    }
    // Left view: the hole [75, 85) opens on the square's left; filled from background 79.
    for x in 75..85 {
        assert_eq!(pair.left.pixel(x, y), bg(79), "hole at {x}");
    }
    // Border holes take their only neighbour.
    for x in 0..5 {
        assert_eq!(pair.right.pixel(x, y), bg(0), "border {x}");
    }
    for x in 195..W {
        assert_eq!(pair.left.pixel(x, y), bg(199), "border {x}");
    }
}

#[test]
fn nearer_of_two_objects_wins_and_the_gap_takes_the_farther() {
    // Near block [100, 110) at depth 1 (shift +-5), mid block [110, 130) at depth 0.8 (+-3).
    const NEAR: [u8; 3] = [240, 240, 20];
    const MID: [u8; 3] = [20, 240, 240];
    let (f, d) = scene(
        |x, _| match x {
            100..110 => NEAR,
            110..130 => MID,
            _ => bg(x),
        },
        |x, _| match x {
            100..110 => 1.0,
            110..130 => 0.8,
            _ => 0.0,
        },
    );
    let pair = synthesize(&f, &d, &opts()).expect("synthesize");
    // Left view: near on [105, 115), mid on [113, 133): the near block covers [113, 115).
    for x in 105..115 {
        assert_eq!(pair.left.pixel(x, 10), NEAR, "left {x}");
    }
    for x in 115..133 {
        assert_eq!(pair.left.pixel(x, 10), MID, "left {x}");
    }
    // Right view: near on [95, 105), mid on [107, 127): the gap [105, 107) takes the mid block
    // (the farther side), not the near one.
    for x in 95..105 {
        assert_eq!(pair.right.pixel(x, 10), NEAR, "right {x}");
    }
    for x in 105..127 {
        assert_eq!(pair.right.pixel(x, 10), MID, "right {x}");
    }
}

#[test]
fn no_black_pixels_remain_with_smooth_and_sharp_depth() {
    // Non-black colours everywhere; depth: blobs with hard and soft edges.
    let (f, d) = scene(
        |x, y| [20 + (x * 7 % 200) as u8, 20 + (y * 3 % 200) as u8, 90],
        |x, y| {
            let (dx, dy) = (x as f32 - 70.0, y as f32 - 30.0);
            let soft = (-(dx * dx + dy * dy) / 300.0).exp();
            let hard = if (130..170).contains(&x) && (10..50).contains(&y) {
                0.9
            } else {
                0.0
            };
            soft.max(hard)
        },
    );
    for dilation in [0, 2, 5] {
        for divergence in [2.0, 5.0, 15.0] {
            let o = SynthOptions {
                divergence,
                convergence: 0.3,
                dilation,
            };
            let pair = synthesize(&f, &d, &o).expect("synthesize");
            for v in [&pair.left, &pair.right] {
                assert!(
                    v.data.chunks_exact(3).all(|p| p != [0, 0, 0]),
                    "black pixel with {o:?}"
                );
            }
        }
    }
}

#[test]
fn dilation_moves_soft_edges_with_the_foreground() {
    // The depth map is softer than the image: the square's two outer columns on each side have
    // in-between depth. Without dilation they stay behind as a square-coloured halo; with it they
    // move with the square.
    let (f, d) = scene(
        |x, y| if in_square(x, y) { SQUARE } else { bg(x) },
        |x, y| {
            if !in_square(x, y) {
                0.0
            } else if (82..118).contains(&x) {
                1.0
            } else {
                0.5
            }
        },
    );
    let halo = |dilation| {
        let o = SynthOptions { dilation, ..opts() };
        let pair = synthesize(&f, &d, &o).expect("synthesize");
        // Square-coloured pixels outside where the square should be in the left view.
        (0..W)
            .filter(|&x| pair.left.pixel(x, 30) == SQUARE && !(85..125).contains(&x))
            .count()
    };
    assert!(halo(0) > 0);
    assert_eq!(halo(2), 0);
}

#[test]
fn synthesize_into_reuses_buffers() {
    let (f, d) = scene(|x, _| bg(x), |x, _| x as f32 / W as f32);
    let mut out = StereoPair::new(W, H);
    let (pl, pr) = (out.left.data.as_ptr(), out.right.data.as_ptr());
    synthesize_into(&f, &d, &SynthOptions::default(), &mut out).expect("synthesize");
    assert_eq!((out.left.data.as_ptr(), out.right.data.as_ptr()), (pl, pr));
    assert_eq!(
        out,
        synthesize(&f, &d, &SynthOptions::default()).expect("again")
    );
}

#[test]
fn whole_chain_produces_every_format() {
    // Fast depth -> normalise -> synthesize -> compose, on a textured frame.
    let (w, h) = (320u32, 180u32);
    let mut frame = RgbFrame::new(w, h);
    for y in 0..h {
        for x in 0..w {
            let i = ((y * w + x) * 3) as usize;
            let v = ((x / 8 + y / 8) % 2) as u8 * 120 + (y as u8 / 2);
            frame.data[i..i + 3].copy_from_slice(&[v, 255 - v, (x % 256) as u8]);
        }
    }
    let mut model = FastDepth::default();
    let raw = model.estimate(&frame).expect("depth");
    let mut norm = DepthNormalizer::new(NormalizerOptions::default());
    let depth = norm.normalize(&frame, &raw);
    assert!(depth.data.iter().all(|v| (0.0..=1.0).contains(v)));
    let pair = synthesize(&frame, &depth, &SynthOptions::default()).expect("synthesize");
    assert_ne!(pair.left, pair.right);
    let mut out = RgbFrame::new(0, 0);
    let formats = StereoFormat::ALL;
    let sizes = [(w, h), (w, h), (w, h), (w, h), (2 * w, h), (w, h), (w, h)];
    for (format, size) in formats.into_iter().zip(sizes) {
        compose_into(&pair, format, &mut out).expect("compose");
        assert_eq!((out.width, out.height), size, "{format}");
        assert_eq!(format.output_size(w, h), size, "{format}");
        assert_eq!(out, compose(&pair, format).expect("compose"), "{format}");
    }
}
