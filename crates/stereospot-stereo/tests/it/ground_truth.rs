//! Acceptance check of the forward warp against real stereo pairs with ground-truth disparity
//! (Middlebury cones, teddy, adirondack; `shared/data/stereo`): warping the left image by its
//! true disparity must predict the right image better than the left image itself does.

use std::path::Path;

use stereospot_stereo::depth::DepthModel;
use stereospot_stereo::depth::fast::FastDepth;
use stereospot_stereo::stabilize::{DepthNormalizer, NormalizerOptions};
use stereospot_stereo::synth::warp_view;
use stereospot_stereo::{DepthMap, RgbFrame};

use crate::support::{parse_pfm, psnr, read_png, stereo_data};

const WITH_TRUTH: [&str; 3] = ["cones", "teddy", "adirondack"];

fn load(dir: &Path) -> (RgbFrame, RgbFrame) {
    let left = read_png(&dir.join("left.png"));
    let right = read_png(&dir.join("right.png"));
    assert_eq!((left.width, left.height), (right.width, right.height));
    (left, right)
}

fn load_disparity(dir: &Path) -> DepthMap {
    let path = dir.join("disparity.pfm");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    parse_pfm(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn known(v: f32) -> bool {
    v.is_finite() && v > 0.0
}

/// Unknown disparity (occlusions, mostly) replaced, along each row, by the smaller of the
/// nearest known values on either side: occluded pixels belong to the background.
fn fill_unknown(d: &DepthMap) -> Vec<f32> {
    let w = d.width as usize;
    let mut out = d.data.clone();
    for row in out.chunks_exact_mut(w) {
        let mut left = vec![f32::NAN; w];
        let mut last = f32::NAN;
        for x in 0..w {
            if known(row[x]) {
                last = row[x];
            }
            left[x] = last;
        }
        let mut last = f32::NAN;
        for x in (0..w).rev() {
            if known(row[x]) {
                last = row[x];
            } else {
                let (a, b) = (left[x], last);
                row[x] = match (a.is_nan(), b.is_nan()) {
                    (false, false) => a.min(b),
                    (false, true) => a,
                    (true, false) => b,
                    (true, true) => 0.0,
                };
            }
        }
    }
    out
}

/// Right-view pixels that some known-disparity left pixel lands on.
fn known_mask(d: &DepthMap) -> Vec<bool> {
    let w = d.width as usize;
    let mut mask = vec![false; d.data.len()];
    for (y, row) in d.data.chunks_exact(w).enumerate() {
        for (x, &v) in row.iter().enumerate() {
            if known(v) {
                let t = (x as f32 - v).round();
                if t >= 0.0 && (t as usize) < w {
                    mask[y * w + t as usize] = true;
                }
            }
        }
    }
    mask
}

/// The right view warped from the left by `disparity` (pixels, left-view).
fn warp_right(left: &RgbFrame, disparity: &[f32]) -> RgbFrame {
    let shift: Vec<f32> = disparity.iter().map(|d| -d).collect();
    let mut out = RgbFrame::new(0, 0);
    warp_view(left, &shift, disparity, &mut out).expect("warp");
    out
}

/// Disparity from the fast estimator, its normalised depth mapped linearly onto `[lo, hi]`.
fn fast_disparity(left: &RgbFrame, lo: f32, hi: f32) -> Vec<f32> {
    let raw = FastDepth::default().estimate(left).expect("fast depth");
    let depth = DepthNormalizer::new(NormalizerOptions::default()).normalize(left, &raw);
    depth.data.iter().map(|z| lo + (hi - lo) * z).collect()
}

fn percentile(values: &[f32], p: f32) -> f32 {
    let mut v: Vec<f32> = values.iter().copied().filter(|&v| known(v)).collect();
    v.sort_by(f32::total_cmp);
    v[((v.len() - 1) as f32 * p / 100.0).round() as usize]
}

#[test]
fn ground_truth_disparity_warps_left_into_right() {
    let data = stereo_data();
    println!();
    println!("PSNR (dB) of the real right view against: the left view itself (identity), the left");
    println!("view warped by the ground-truth disparity (warp_view), and [illustrative] warped by");
    println!("the fast estimator's depth mapped onto the ground truth's 2..98 % disparity range.");
    println!("\"known\" = right-view pixels hit by a known-disparity left pixel.");
    println!();
    println!(
        "{:<11} {:>9} {:>7} | {:>8} {:>8} | {:>8} {:>8} | {:>8}",
        "pair", "size", "known%", "id all", "gt all", "id known", "gt known", "fast all"
    );
    for name in WITH_TRUTH {
        let dir = data.join(name);
        let (left, right) = load(&dir);
        let disp = load_disparity(&dir);
        assert_eq!(
            (disp.width, disp.height),
            (left.width, left.height),
            "{name}"
        );
        let mask = known_mask(&disp);
        let known_pct = 100.0 * mask.iter().filter(|&&k| k).count() as f64 / mask.len() as f64;
        let synth = warp_right(&left, &fill_unknown(&disp));
        let id_all = psnr(&left, &right, None);
        let gt_all = psnr(&synth, &right, None);
        let id_known = psnr(&left, &right, Some(&mask));
        let gt_known = psnr(&synth, &right, Some(&mask));
        let (lo, hi) = (percentile(&disp.data, 2.0), percentile(&disp.data, 98.0));
        let fast = warp_right(&left, &fast_disparity(&left, lo, hi));
        let fast_all = psnr(&fast, &right, None);
        println!(
            "{:<11} {:>9} {:>6.1}% | {:>8.2} {:>8.2} | {:>8.2} {:>8.2} | {:>8.2}",
            name,
            format!("{}x{}", left.width, left.height),
            known_pct,
            id_all,
            gt_all,
            id_known,
            gt_known,
            fast_all
        );
        assert!(gt_all > id_all, "{name}: {gt_all} <= {id_all}");
        assert!(gt_known > id_known, "{name}: {gt_known} <= {id_known}");
    }
    let dir = data.join("bowling");
    let (left, right) = load(&dir);
    assert!(!dir.join("disparity.pfm").exists());
    let id_all = psnr(&left, &right, None);
    // Default divergence (2 % of the width), all in front of the screen: illustrative only.
    let max = 0.02 * left.width as f32;
    let fast = warp_right(&left, &fast_disparity(&left, 0.0, max));
    println!(
        "{:<11} {:>9}    n/a  | {:>8.2}      n/a |      n/a      n/a | {:>8.2}",
        "bowling",
        format!("{}x{}", left.width, left.height),
        id_all,
        psnr(&fast, &right, None)
    );
    println!(
        "bowling: no ground truth; its \"fast all\" maps the fast estimator's depth onto 0..{max:.0} px \
         (default divergence), an illustration, not a check"
    );
}

/// The PFMs are read right side up and in pixels: cones and teddy also ship the original
/// quarter-pixel PGM ground truth (`disp2.pgm`, value = 4 x disparity, 0 = unknown).
#[test]
fn pfm_disparity_matches_the_pgm_ground_truth() {
    for name in ["cones", "teddy"] {
        let dir = stereo_data().join(name);
        let disp = load_disparity(&dir);
        let pgm = std::fs::read(dir.join("disp2.pgm")).expect("disp2.pgm");
        // Binary PGM: "P5 <w> <h> <max>" then one byte per pixel.
        let mut fields = pgm.splitn(5, |b| b.is_ascii_whitespace());
        assert_eq!(fields.next(), Some(&b"P5"[..]));
        let num = |f: Option<&[u8]>| -> usize {
            std::str::from_utf8(f.expect("field"))
                .expect("ascii")
                .parse()
                .expect("number")
        };
        let (w, h, _max) = (num(fields.next()), num(fields.next()), num(fields.next()));
        let body = fields.next().expect("pixels");
        assert_eq!((w, h), (disp.width as usize, disp.height as usize));
        assert_eq!(body.len(), w * h);
        let mut compared = 0;
        for (i, &v) in body.iter().enumerate() {
            if v > 0 {
                assert_eq!(disp.data[i], f32::from(v) / 4.0, "{name} pixel {i}");
                compared += 1;
            } else {
                assert!(!known(disp.data[i]), "{name} pixel {i}");
            }
        }
        assert!(compared > w * h * 9 / 10);
    }
}
