//! A frame to the tensor Depth Anything V2 receives, exactly as the reference prepares it.
//!
//! The reference (`depth_anything_v2/dpt.py` `image2tensor`, `util/transform.py`) converts the
//! image to RGB floats in `0..=1`, resizes it with OpenCV's bicubic filter so that it keeps its
//! aspect ratio, both sides are multiples of 14 and the shorter one is at least the input size
//! ("lower bound"), normalises with the ImageNet mean and standard deviation, and lays it out as
//! `1 x 3 x H x W` (NCHW) `float32`. This module does the same:
//!
//! - [`input_size`] is the reference's `Resize.get_size` (NumPy's round-half-to-even, the same
//!   double-precision arithmetic);
//! - the resize is OpenCV's `INTER_CUBIC` (`cv::resize`): source coordinate
//!   `(x + 0.5) * in / out - 0.5` rounded to `f32`, Keys' cubic with `a = -0.75`, taps outside the
//!   image replicated from the border, no antialiasing when shrinking, horizontal pass first;
//! - it runs on the 8-bit values and applies the `/255`, mean and standard deviation to the
//!   result, which is the same affine map (the cubic weights sum to one) in `f32`.
//!
//! Measured against the reference's own output: max abs error below 1e-5 (tests/it/depth.rs).

use rayon::prelude::*;

use crate::{Result, RgbFrame, StereoError};

/// The patch size of the ViT encoder: both input sides are multiples of it.
pub const PATCH: u32 = 14;
/// The input size the model was trained at (the reference's default `input_size`).
pub const DEFAULT_INPUT_SIZE: u32 = 518;
/// ImageNet channel means (R, G, B).
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// ImageNet channel standard deviations (R, G, B).
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// The tensor the model receives, with the size of the frame it came from.
#[derive(Clone, PartialEq)]
pub struct ModelInput {
    /// Tensor width (a multiple of [`PATCH`]).
    pub width: u32,
    /// Tensor height (a multiple of [`PATCH`]).
    pub height: u32,
    /// `3 * height * width` values: the R plane, then G, then B (batch of one, NCHW).
    pub data: Vec<f32>,
    /// Width of the source frame.
    pub source_width: u32,
    /// Height of the source frame.
    pub source_height: u32,
}

impl std::fmt::Debug for ModelInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelInput")
            .field("width", &self.width)
            .field("height", &self.height)
            .field("source_width", &self.source_width)
            .field("source_height", &self.source_height)
            .finish_non_exhaustive()
    }
}

impl ModelInput {
    /// The tensor's shape, `[1, 3, height, width]`.
    pub fn shape(&self) -> [usize; 4] {
        [1, 3, self.height as usize, self.width as usize]
    }
}

/// The reference's `constrain_to_multiple_of(x, min_val)`: the nearest multiple of 14 (ties to
/// even, as `np.round`), or the next one up when that is below `min_val`.
fn constrain_to_multiple_of(x: f64, min_val: f64) -> u32 {
    let m = f64::from(PATCH);
    let mut y = (x / m).round_ties_even() * m;
    if y < min_val {
        y = (x / m).ceil() * m;
    }
    y as u32
}

/// The model input size `(width, height)` for a `width x height` frame at input size `size`:
/// the reference's `Resize(size, size, keep_aspect_ratio=True, ensure_multiple_of=14,
/// resize_method="lower_bound").get_size(width, height)`. The shorter side becomes `size`
/// (rounded to a multiple of 14, never below `size`), the other keeps the aspect ratio.
pub fn input_size(width: u32, height: u32, size: u32) -> Result<(u32, u32)> {
    if width == 0 || height == 0 {
        return Err(StereoError::InvalidArgument(format!(
            "cannot estimate depth on an empty {width}x{height} frame"
        )));
    }
    if !(PATCH..=8192).contains(&size) {
        return Err(StereoError::InvalidArgument(format!(
            "depth input size {size} is out of range ({PATCH}..=8192)"
        )));
    }
    let target = f64::from(size);
    let mut scale_h = target / f64::from(height);
    let mut scale_w = target / f64::from(width);
    if scale_w > scale_h {
        scale_h = scale_w;
    } else {
        scale_w = scale_h;
    }
    let new_h = constrain_to_multiple_of(scale_h * f64::from(height), target);
    let new_w = constrain_to_multiple_of(scale_w * f64::from(width), target);
    if u64::from(new_w) * u64::from(new_h) > 64 * 1024 * 1024 {
        return Err(StereoError::InvalidArgument(format!(
            "a {width}x{height} frame at input size {size} needs a {new_w}x{new_h} tensor: the aspect ratio is too extreme"
        )));
    }
    Ok((new_w, new_h))
}

/// OpenCV's `interpolateCubic` (a = -0.75), in `f32` as OpenCV computes it.
fn cubic_coeffs(x: f32) -> [f32; 4] {
    const A: f32 = -0.75;
    let c0 = ((A * (x + 1.0) - 5.0 * A) * (x + 1.0) + 8.0 * A) * (x + 1.0) - 4.0 * A;
    let c1 = ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0;
    let c2 = ((A + 2.0) * (1.0 - x) - (A + 3.0)) * (1.0 - x) * (1.0 - x) + 1.0;
    [c0, c1, c2, 1.0 - c0 - c1 - c2]
}

/// For each output position: the four source indices (border-replicated) and their weights.
#[derive(Debug, Clone, Copy)]
struct Taps {
    index: [usize; 4],
    weight: [f32; 4],
}

fn cubic_taps(src_len: u32, dst_len: u32) -> Vec<Taps> {
    // cv::resize: inv_scale = dst / src (double), scale = 1 / inv_scale.
    let scale = 1.0 / (f64::from(dst_len) / f64::from(src_len));
    let last = i64::from(src_len) - 1;
    (0..dst_len)
        .map(|d| {
            let f = ((f64::from(d) + 0.5) * scale - 0.5) as f32;
            let s = f.floor();
            let weight = cubic_coeffs(f - s);
            let s = s as i64;
            let index = [0, 1, 2, 3].map(|k| (s - 1 + k).clamp(0, last) as usize);
            Taps { index, weight }
        })
        .collect()
}

/// Resizes `frame` for the model at input size `size` (see [`input_size`]) and normalises it.
pub fn preprocess(frame: &RgbFrame, size: u32) -> Result<ModelInput> {
    let (sw, sh) = (frame.width, frame.height);
    if frame.data.len() != sw as usize * sh as usize * 3 {
        return Err(StereoError::InvalidArgument(format!(
            "frame {sw}x{sh} has {} bytes, expected {}",
            frame.data.len(),
            sw as usize * sh as usize * 3
        )));
    }
    let (dw, dh) = input_size(sw, sh, size)?;
    let (sw_us, dw_us, dh_us) = (sw as usize, dw as usize, dh as usize);
    let x_taps = cubic_taps(sw, dw);
    let y_taps = cubic_taps(sh, dh);

    // Only the source rows some output row reads are resized horizontally.
    let mut needed = vec![false; sh as usize];
    for t in &y_taps {
        for &i in &t.index {
            needed[i] = true;
        }
    }
    // Horizontal pass: source row -> dw x 3 interleaved values (still 0..=255).
    let row_len = dw_us * 3;
    let mut horizontal = vec![0f32; sh as usize * row_len];
    horizontal
        .par_chunks_mut(row_len)
        .enumerate()
        .filter(|(y, _)| needed[*y])
        .for_each(|(y, out)| {
            let src = &frame.data[y * sw_us * 3..(y + 1) * sw_us * 3];
            for (x, t) in x_taps.iter().enumerate() {
                let mut acc = [0f32; 3];
                for k in 0..4 {
                    let p = t.index[k] * 3;
                    let w = t.weight[k];
                    acc[0] += w * f32::from(src[p]);
                    acc[1] += w * f32::from(src[p + 1]);
                    acc[2] += w * f32::from(src[p + 2]);
                }
                out[x * 3..x * 3 + 3].copy_from_slice(&acc);
            }
        });

    // Vertical pass, then (v / 255 - mean) / std, written as three planes.
    let plane = dw_us * dh_us;
    let mut data = vec![0f32; 3 * plane];
    let (r, gb) = data.split_at_mut(plane);
    let (g, b) = gb.split_at_mut(plane);
    let gain: [f32; 3] = std::array::from_fn(|c| 1.0 / (255.0 * IMAGENET_STD[c]));
    let bias: [f32; 3] = std::array::from_fn(|c| IMAGENET_MEAN[c] / IMAGENET_STD[c]);
    r.par_chunks_mut(dw_us)
        .zip(g.par_chunks_mut(dw_us))
        .zip(b.par_chunks_mut(dw_us))
        .enumerate()
        .for_each(|(y, ((r, g), b))| {
            let t = y_taps[y];
            let rows = t.index.map(|i| &horizontal[i * row_len..(i + 1) * row_len]);
            for x in 0..dw_us {
                let mut acc = [0f32; 3];
                for (row, &w) in rows.iter().zip(&t.weight) {
                    let px = &row[x * 3..x * 3 + 3];
                    acc[0] += w * px[0];
                    acc[1] += w * px[1];
                    acc[2] += w * px[2];
                }
                r[x] = acc[0] * gain[0] - bias[0];
                g[x] = acc[1] * gain[1] - bias[1];
                b[x] = acc[2] * gain[2] - bias[2];
            }
        });

    Ok(ModelInput {
        width: dw,
        height: dh,
        data,
        source_width: sw,
        source_height: sh,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_the_reference() {
        // Values from the reference's Resize.get_size (see tests/fixtures/resize_sizes.json for
        // the full table, checked in the integration tests).
        assert_eq!(input_size(1920, 1080, 518).unwrap(), (924, 518));
        assert_eq!(input_size(1080, 1920, 518).unwrap(), (518, 924));
        assert_eq!(input_size(1280, 720, 518).unwrap(), (924, 518));
        assert_eq!(input_size(640, 480, 518).unwrap(), (686, 518));
        assert_eq!(input_size(100, 100, 518).unwrap(), (518, 518));
        // 500 is not a multiple of 14: round(35.7) = 36 -> 504.
        assert_eq!(input_size(500, 500, 500).unwrap(), (504, 504));
        // 511 / 14 = 36.5 rounds (half to even) to 36 -> 504 < 511, so it goes up to 518.
        assert_eq!(input_size(511, 511, 511).unwrap(), (518, 518));
    }

    #[test]
    fn sizes_are_multiples_of_14_and_keep_the_aspect() {
        for (w, h) in [(1920, 1080), (450, 375), (160, 90), (37, 999), (720, 576)] {
            for size in [140, 392, 448, 518] {
                let (nw, nh) = input_size(w, h, size).unwrap();
                assert_eq!((nw % 14, nh % 14), (0, 0), "{w}x{h}@{size}");
                assert!(nw.min(nh) >= size, "{w}x{h}@{size}: {nw}x{nh}");
                assert!(nw.min(nh) < size + 14, "{w}x{h}@{size}: {nw}x{nh}");
                let aspect = f64::from(w) / f64::from(h);
                let got = f64::from(nw) / f64::from(nh);
                // Within the rounding of one side to a multiple of 14.
                let tol = 7.0 / f64::from(nw.min(nh)) * aspect.max(1.0 / aspect) * 2.0;
                assert!(
                    (got / aspect - 1.0).abs() <= tol,
                    "{w}x{h}@{size}: {nw}x{nh}"
                );
            }
        }
    }

    #[test]
    fn rejects_empty_frames_and_bad_sizes() {
        assert!(input_size(0, 10, 518).is_err());
        assert!(input_size(10, 10, 0).is_err());
        assert!(input_size(10, 10, 13).is_err());
        assert!(input_size(1, 100_000, 518).is_err());
        let frame = RgbFrame {
            width: 4,
            height: 4,
            index: 0,
            data: vec![0; 10],
        };
        assert!(preprocess(&frame, 14).is_err());
    }

    #[test]
    fn cubic_weights_are_keys_with_a_minus_075() {
        assert_eq!(cubic_coeffs(0.0), [0.0, 1.0, 0.0, 0.0]);
        let w = cubic_coeffs(0.5);
        assert!((w[0] - -0.09375).abs() < 1e-7 && (w[1] - 0.59375).abs() < 1e-7);
        assert!((w.iter().sum::<f32>() - 1.0).abs() < 1e-6);
    }

    #[test]
    fn taps_replicate_the_border() {
        // Upscaling 2 -> 4: the first output samples at -0.25.
        let t = cubic_taps(2, 4);
        assert_eq!(t[0].index, [0, 0, 0, 1]);
        assert_eq!(t[3].index, [0, 1, 1, 1]);
    }

    #[test]
    fn uniform_frame_gives_normalised_constants() {
        let mut frame = RgbFrame::new(30, 20);
        for px in frame.data.chunks_exact_mut(3) {
            px.copy_from_slice(&[255, 128, 0]);
        }
        let input = preprocess(&frame, 28).unwrap();
        assert_eq!((input.width, input.height), (42, 28));
        assert_eq!(input.shape(), [1, 3, 28, 42]);
        let plane = 42 * 28;
        for (c, v) in [1.0f32, 128.0 / 255.0, 0.0].into_iter().enumerate() {
            let want = (v - IMAGENET_MEAN[c]) / IMAGENET_STD[c];
            for &got in &input.data[c * plane..(c + 1) * plane] {
                assert!((got - want).abs() < 1e-5, "channel {c}: {got} vs {want}");
            }
        }
    }
}
