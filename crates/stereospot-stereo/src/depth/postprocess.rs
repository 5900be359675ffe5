//! The model's output back to the frame's size, as the reference does it.
//!
//! The reference's `infer_image` upsamples the `N x h x w` output with
//! `F.interpolate(depth[:, None], (H, W), mode="bilinear", align_corners=True)`: source coordinate
//! `x * (in - 1) / (out - 1)` (0 when `out == 1`), two taps, the second clamped at the last
//! pixel, in `f32`. [`resize_bilinear_align_corners`] is that; rows run on rayon.

use rayon::prelude::*;

use crate::{DepthMap, Result, StereoError};

/// PyTorch's per-axis indices and weights for bilinear, align_corners=True.
fn linear_taps(src_len: usize, dst_len: usize) -> Vec<(usize, usize, f32)> {
    let scale = if dst_len > 1 {
        (src_len as f32 - 1.0) / (dst_len as f32 - 1.0)
    } else {
        0.0
    };
    (0..dst_len)
        .map(|d| {
            let real = scale * d as f32;
            let i0 = (real as usize).min(src_len - 1);
            let i1 = if i0 < src_len - 1 { i0 + 1 } else { i0 };
            (i0, i1, real - i0 as f32)
        })
        .collect()
}

/// Resizes a `src_w x src_h` single-channel map to `dst_w x dst_h` like
/// `F.interpolate(..., mode="bilinear", align_corners=True)`.
///
/// # Panics
///
/// When `src.len() != src_w * src_h` or a size is zero.
pub fn resize_bilinear_align_corners(
    src: &[f32],
    src_w: usize,
    src_h: usize,
    dst_w: usize,
    dst_h: usize,
) -> Vec<f32> {
    assert_eq!(src.len(), src_w * src_h, "source size");
    assert!(
        src_w > 0 && src_h > 0 && dst_w > 0 && dst_h > 0,
        "empty map"
    );
    let xs = linear_taps(src_w, dst_w);
    let ys = linear_taps(src_h, dst_h);
    let mut out = vec![0f32; dst_w * dst_h];
    out.par_chunks_mut(dst_w)
        .zip(ys.par_iter())
        .for_each(|(row, &(y0, y1, ly))| {
            let r0 = &src[y0 * src_w..(y0 + 1) * src_w];
            let r1 = &src[y1 * src_w..(y1 + 1) * src_w];
            let hy = 1.0 - ly;
            for (o, &(x0, x1, lx)) in row.iter_mut().zip(&xs) {
                let hx = 1.0 - lx;
                *o = hy * (hx * r0[x0] + lx * r0[x1]) + ly * (hx * r1[x0] + lx * r1[x1]);
            }
        });
    out
}

/// Splits a model output of shape `N x h x w` (or `N x 1 x h x w`) into `N` depth maps upsampled
/// to `frame_w x frame_h`.
pub fn depth_maps(
    output: &[f32],
    shape: &[usize],
    frame_w: u32,
    frame_h: u32,
) -> Result<Vec<DepthMap>> {
    let (n, h, w) = match *shape {
        [n, h, w] | [n, 1, h, w] => (n, h, w),
        _ => {
            return Err(StereoError::InvalidArgument(format!(
                "depth output has shape {shape:?}, expected N x H x W"
            )));
        }
    };
    if h == 0 || w == 0 || output.len() != n * h * w {
        return Err(StereoError::InvalidArgument(format!(
            "depth output of shape {shape:?} has {} values",
            output.len()
        )));
    }
    if frame_w == 0 || frame_h == 0 {
        return Err(StereoError::InvalidArgument(format!(
            "cannot upsample depth to an empty {frame_w}x{frame_h} frame"
        )));
    }
    Ok(output
        .chunks_exact(h * w)
        .map(|one| DepthMap {
            width: frame_w,
            height: frame_h,
            data: resize_bilinear_align_corners(one, w, h, frame_w as usize, frame_h as usize),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corners_are_kept_exactly() {
        let src = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let out = resize_bilinear_align_corners(&src, 3, 2, 7, 5);
        assert_eq!(out[0], 1.0);
        assert_eq!(out[6], 3.0);
        assert_eq!(out[28], 4.0);
        assert_eq!(out[34], 6.0);
    }

    #[test]
    fn linear_ramp_stays_linear() {
        // f(x, y) = 2x + 10y sampled on 4x3, upsampled to 10x5: align_corners maps the grids'
        // end points onto each other, so the result is the same plane on the finer grid.
        let src: Vec<f32> = (0..3)
            .flat_map(|y| (0..4).map(move |x| 2.0 * x as f32 + 10.0 * y as f32))
            .collect();
        let out = resize_bilinear_align_corners(&src, 4, 3, 10, 5);
        for y in 0..5 {
            for x in 0..10 {
                let fx = x as f32 * 3.0 / 9.0;
                let fy = y as f32 * 2.0 / 4.0;
                let want = 2.0 * fx + 10.0 * fy;
                assert!((out[y * 10 + x] - want).abs() < 1e-4, "({x},{y})");
            }
        }
    }

    #[test]
    fn midpoints_average_neighbours() {
        let out = resize_bilinear_align_corners(&[0.0, 1.0], 2, 1, 3, 1);
        assert_eq!(out, vec![0.0, 0.5, 1.0]);
    }

    #[test]
    fn single_pixel_outputs_take_the_first_sample() {
        let out = resize_bilinear_align_corners(&[3.0, 5.0, 7.0, 9.0], 2, 2, 1, 1);
        assert_eq!(out, vec![3.0]);
        // One source pixel: constant output.
        let out = resize_bilinear_align_corners(&[4.0], 1, 1, 3, 2);
        assert_eq!(out, vec![4.0; 6]);
    }

    #[test]
    fn same_size_is_identity() {
        let src: Vec<f32> = (0..20).map(|i| (i * i) as f32).collect();
        assert_eq!(resize_bilinear_align_corners(&src, 5, 4, 5, 4), src);
    }

    #[test]
    fn batches_are_split_and_shapes_checked() {
        let out = [1.0f32; 2 * 3 * 4];
        let maps = depth_maps(&out, &[2, 3, 4], 8, 6).unwrap();
        assert_eq!(maps.len(), 2);
        assert_eq!((maps[1].width, maps[1].height), (8, 6));
        assert!(maps[1].data.iter().all(|&v| v == 1.0));
        assert_eq!(depth_maps(&out, &[2, 1, 3, 4], 8, 6).unwrap().len(), 2);
        assert!(depth_maps(&out, &[24], 8, 6).is_err());
        assert!(depth_maps(&out, &[2, 3, 3], 8, 6).is_err());
        assert!(depth_maps(&out, &[2, 3, 4], 0, 6).is_err());
    }
}
