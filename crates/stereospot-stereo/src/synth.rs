//! View synthesis: a left and a right view from one frame and its normalised depth.
//!
//! Disparity in pixels is `divergence / 100 * width * (depth01 - convergence)` (positive for
//! pixels nearer than the convergence plane); each view takes half of it, in opposite
//! directions: the left view shifts near pixels right and the right view shifts them left, so
//! they are seen in front of the screen (crossed parallax), and far pixels the other way.
//!
//! Each row is warped independently (rows run in parallel on rayon) by [`warp_view`]'s forward
//! warp:
//!
//! 1. **Sub-pixel rasterisation.** Neighbouring source pixels `x` and `x + 1` land at `t0` and
//!    `t1`. When `0 < t1 - t0 <= 2` they belong to one surface: every target pixel between them
//!    gets the linear interpolation of their colours and priorities (no cracks when a surface
//!    stretches, exact sub-pixel positions). A larger gap is a depth discontinuity (a
//!    disocclusion) and a non-positive one a fold (an occlusion); neither is filled. Pixels at the
//!    end of a surface, or isolated, are also splatted at their nearest target pixel.
//! 2. **Depth order.** Where several samples land on one target pixel the nearest must win.
//!    [`synthesize`] gets this from the visiting order alone: its shift grows with depth, so of
//!    two source pixels that collide the nearer is the one that moved farther in the direction
//!    near pixels move. Visiting pixels towards that side (right to left in the left view,
//!    where near pixels move right) lets every write simply overwrite (McMillan's
//!    occlusion-compatible order). [`warp_view`] takes arbitrary priorities and keeps a per-row
//!    z-buffer instead (the largest priority wins, whatever the traversal order).
//! 3. **Hole filling.** Target pixels nothing landed on (disocclusions) are filled with the colour
//!    of the farther of the two pixels around the hole (the background side), so foreground
//!    colours do not smear into the gap; a hole at the border takes its only neighbour.
//!
//! Rows are packed to one `u32` per pixel, positions are fixed point (1/256 pixel) and colours
//! are interpolated with 8-bit weights. [`synthesize`]'s warp runs in two passes per row: one that
//! computes every source pixel's first sample at once (it vectorises), then a light scatter in
//! occlusion-compatible order that copies runs of 8 samples landing side by side in one go. The
//! row loops are built for baseline x86-64 (SSE2) and for AVX2+FMA, chosen at run time
//! (`stereospot_media::simd`; the same bytes either way). `benches/synth.rs` on the 2-core build
//! machine (AVX2): 9.0-9.4 ms per 1080p frame for both views (18-18.5 ms of CPU), 4.1-4.2 ms at
//! 720p; 12.3 ms at 1080p fused with the Dubois anaglyph ([`synthesize_composed_into`]), 5.7 ms
//! at 720p. The baseline build takes 1.8x as much CPU for synthesis, 1.6x fused with Dubois
//! (whose table lookups do not vectorise).
//!
//! [`synthesize`] first dilates the depth map horizontally (a max filter of
//! [`SynthOptions::dilation`] pixels): depth maps from models are softer than the image, and the
//! blend pixels along an object's outline would otherwise stay behind with the background as a
//! halo. Horizontal dilation is enough because parallax is horizontal, and it keeps rows
//! independent.

use std::sync::LazyLock;

use rayon::prelude::*;

use stereospot_media::multiversion;
use stereospot_media::simd::Isa;

use crate::compose::{
    AnaglyphMethod, StereoFormat, compose_row, dubois_packed_row, size_output, tab_row,
};
use crate::{DepthMap, Result, RgbFrame, StereoError};

/// Largest distance between the targets of two neighbouring source pixels that still counts as
/// one stretched surface (a gap of up to one pixel is interpolated rather than torn).
const MAX_STRETCH: f32 = 2.0;

/// Parameters of [`synthesize`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SynthOptions {
    /// Total disparity range, in percent of the frame width, between depth 0 and depth 1
    /// (default 2.0, as in the original system). `0..=20`.
    pub divergence: f32,
    /// The depth (`0..=1`) shown at the screen plane, with zero parallax (default 0.5). Nearer
    /// pixels pop out, farther ones recede.
    pub convergence: f32,
    /// Horizontal max-filter radius applied to the depth before warping, in pixels (default 2;
    /// 0 disables it). See the module docs.
    pub dilation: u32,
}

impl Default for SynthOptions {
    fn default() -> Self {
        SynthOptions {
            divergence: 2.0,
            convergence: 0.5,
            dilation: 2,
        }
    }
}

impl SynthOptions {
    /// Disparity in pixels (left-view x minus right-view x) of a pixel at normalised depth
    /// `depth01` in a frame `width` pixels wide; positive in front of the screen.
    pub fn disparity(&self, width: u32, depth01: f32) -> f32 {
        self.divergence / 100.0 * width as f32 * (depth01 - self.convergence)
    }

    /// Checks the ranges documented on the fields.
    pub fn check(&self) -> Result<()> {
        if !(self.divergence.is_finite() && (0.0..=20.0).contains(&self.divergence)) {
            return Err(StereoError::InvalidArgument(format!(
                "divergence {} is outside 0..=20 (percent of the width)",
                self.divergence
            )));
        }
        if !(self.convergence.is_finite() && (0.0..=1.0).contains(&self.convergence)) {
            return Err(StereoError::InvalidArgument(format!(
                "convergence {} is outside 0..=1",
                self.convergence
            )));
        }
        Ok(())
    }
}

/// A left and a right view of the same size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StereoPair {
    /// The left eye's view.
    pub left: RgbFrame,
    /// The right eye's view.
    pub right: RgbFrame,
}

impl StereoPair {
    /// Two black views of `w x h`.
    pub fn new(w: u32, h: u32) -> Self {
        StereoPair {
            left: RgbFrame::new(w, h),
            right: RgbFrame::new(w, h),
        }
    }
}

/// Synthesises the left and right views of `frame` from its normalised depth; see
/// [`synthesize_into`].
pub fn synthesize(frame: &RgbFrame, depth01: &DepthMap, opts: &SynthOptions) -> Result<StereoPair> {
    let mut out = StereoPair::new(0, 0);
    synthesize_into(frame, depth01, opts, &mut out)?;
    Ok(out)
}

/// Synthesises the left and right views of `frame` into `out` (resized when needed; its
/// allocations are reused when large enough; both views get `frame.index`).
///
/// `depth01` must have the frame's size, with values in `0..=1` (1 = nearest), as
/// [`crate::stabilize::DepthNormalizer`] produces; values outside (infinities included) are
/// clamped and NaN counts as 0 (farthest).
///
/// # Errors
///
/// [`StereoError::InvalidArgument`] for mismatched sizes, malformed buffers or options outside
/// their ranges.
pub fn synthesize_into(
    frame: &RgbFrame,
    depth01: &DepthMap,
    opts: &SynthOptions,
    out: &mut StereoPair,
) -> Result<()> {
    check_inputs(frame, depth01, opts)?;
    let w = frame.width as usize;
    for v in [&mut out.left, &mut out.right] {
        resize_like(v, frame);
    }
    if w == 0 || frame.height == 0 {
        return Ok(());
    }
    let geo = RowGeometry::new(opts, frame.width);
    synthesize_rows(
        Isa::detect(),
        frame,
        depth01,
        &geo,
        &mut out.left.data,
        &mut out.right.data,
    );
    Ok(())
}

multiversion! {
    /// [`synthesize_into`]'s rows, in parallel.
    fn synthesize_rows(
        frame: &RgbFrame,
        depth01: &DepthMap,
        geo: &RowGeometry,
        left: &mut [u8],
        right: &mut [u8],
    ) {
        let w = frame.width as usize;
        left.par_chunks_exact_mut(w * 3)
            .zip(right.par_chunks_exact_mut(w * 3))
            .enumerate()
            .with_min_len(4)
            .for_each_init(
                || RowScratch::new(w),
                |s, (y, (left, right))| {
                    s.prepare(frame, depth01, y, geo);
                    for (view, k) in [(left, LEFT), (right, RIGHT)] {
                        s.warp(k);
                        unpack_row(&s.warp.out, view);
                    }
                },
            );
    }
}

/// Synthesises both views of `frame` and composes them in `format` into `out`, one row at a
/// time: the same bytes as [`synthesize_into`] followed by
/// [`compose_into`](crate::compose::compose_into), without storing the views (less memory
/// traffic: the frame loop of [`crate::convert`] uses it).
///
/// # Errors
///
/// As [`synthesize_into`] and [`compose_into`](crate::compose::compose_into).
pub fn synthesize_composed_into(
    frame: &RgbFrame,
    depth01: &DepthMap,
    opts: &SynthOptions,
    format: StereoFormat,
    out: &mut RgbFrame,
) -> Result<()> {
    check_inputs(frame, depth01, opts)?;
    size_output(format, (frame.width, frame.height), frame.index, out)?;
    let geo = RowGeometry::new(opts, frame.width);
    compose_rows(Isa::detect(), frame, depth01, &geo, format, out);
    Ok(())
}

multiversion! {
    /// [`synthesize_composed_into`]'s rows, in parallel (`out` already has the output's size).
    fn compose_rows(
        frame: &RgbFrame,
        depth01: &DepthMap,
        geo: &RowGeometry,
        format: StereoFormat,
        out: &mut RgbFrame,
    ) {
        let w = frame.width as usize;
        let rows = out
            .data
            .par_chunks_exact_mut(out.width as usize * 3)
            .enumerate()
            .with_min_len(4);
        match format {
            StereoFormat::Tab => {
                let half = out.height as usize / 2;
                rows.for_each_init(
                    || (RowScratch::new(w), vec![0u8; w * 3], vec![0u8; w * 3]),
                    |(s, a, b), (y, o)| {
                        let (k, sy) = if y < half {
                            (LEFT, y)
                        } else {
                            (RIGHT, y - half)
                        };
                        for (sy, rgb) in [(2 * sy, &mut *a), (2 * sy + 1, &mut *b)] {
                            s.prepare(frame, depth01, sy, geo);
                            s.warp(k);
                            unpack_row(&s.warp.out, rgb);
                        }
                        tab_row(a, b, o);
                    },
                );
            }
            StereoFormat::Anaglyph(AnaglyphMethod::Dubois) => rows.for_each_init(
                || (RowScratch::new(w), vec![0u32; w]),
                |(s, left), (y, o)| {
                    // Straight from the packed rows: the left one is kept aside while the
                    // right view is warped.
                    s.prepare(frame, depth01, y, geo);
                    s.warp(LEFT);
                    std::mem::swap(&mut s.warp.out, left);
                    s.warp(RIGHT);
                    dubois_packed_row(left, &s.warp.out, o);
                },
            ),
            StereoFormat::Sbs => rows.for_each_init(
                || RowScratch::new(w),
                |s, (y, o)| {
                    // Each view unpacks straight into its half of the output row.
                    let (ol, or) = o.split_at_mut(w * 3);
                    s.prepare(frame, depth01, y, geo);
                    s.warp(LEFT);
                    unpack_row(&s.warp.out, ol);
                    s.warp(RIGHT);
                    unpack_row(&s.warp.out, or);
                },
            ),
            _ => rows.for_each_init(
                || (RowScratch::new(w), vec![0u8; w * 3], vec![0u8; w * 3]),
                |(s, a, b), (y, o)| {
                    s.prepare(frame, depth01, y, geo);
                    s.warp(LEFT);
                    unpack_row(&s.warp.out, a);
                    s.warp(RIGHT);
                    unpack_row(&s.warp.out, b);
                    compose_row(format, a, b, o);
                },
            ),
        }
    }
}

/// The left view's share of the disparity: near pixels move right.
const LEFT: f32 = 0.5;
/// The right view's share: near pixels move left.
const RIGHT: f32 = -0.5;

/// What every row of one frame shares.
struct RowGeometry {
    /// Disparity in pixels per unit of depth above the convergence plane.
    scale: f32,
    convergence: f32,
    radius: usize,
}

impl RowGeometry {
    fn new(opts: &SynthOptions, width: u32) -> Self {
        RowGeometry {
            scale: opts.divergence / 100.0 * width as f32,
            convergence: opts.convergence,
            radius: opts.dilation as usize,
        }
    }
}

fn check_inputs(frame: &RgbFrame, depth01: &DepthMap, opts: &SynthOptions) -> Result<()> {
    opts.check()?;
    check_frame(frame, "frame")?;
    if (depth01.width, depth01.height) != (frame.width, frame.height)
        || depth01.data.len() != frame.width as usize * frame.height as usize
    {
        return Err(StereoError::InvalidArgument(format!(
            "depth map is {}x{} ({} values), frame is {}x{}",
            depth01.width,
            depth01.height,
            depth01.data.len(),
            frame.width,
            frame.height
        )));
    }
    Ok(())
}

/// Forward-warps `src` into `out` (resized when needed): the pixel at `(x, y)` moves to
/// `(x + shift[i], y)` (`i = y * width + x`; positive = right); where several land on one pixel the
/// largest `priority` wins; holes are filled from the background side. See the module docs.
///
/// `shift` and `priority` hold one value per source pixel; pixels with a non-finite shift or
/// priority are dropped. This is the low-level step of [`synthesize`], also used with
/// ground-truth disparity (to synthesise a right view from a left one: `shift = -disparity`,
/// `priority = disparity`).
///
/// # Errors
///
/// [`StereoError::InvalidArgument`] when a buffer does not match the frame's size.
pub fn warp_view(
    src: &RgbFrame,
    shift: &[f32],
    priority: &[f32],
    out: &mut RgbFrame,
) -> Result<()> {
    check_frame(src, "source")?;
    let n = src.width as usize * src.height as usize;
    if shift.len() != n || priority.len() != n {
        return Err(StereoError::InvalidArgument(format!(
            "{} shifts and {} priorities for a {}x{} frame",
            shift.len(),
            priority.len(),
            src.width,
            src.height
        )));
    }
    resize_like(out, src);
    if n == 0 {
        return Ok(());
    }
    warp_rows(Isa::detect(), src, shift, priority, &mut out.data);
    Ok(())
}

multiversion! {
    /// [`warp_view`]'s rows, in parallel.
    fn warp_rows(src: &RgbFrame, shift: &[f32], priority: &[f32], out: &mut [u8]) {
        let w = src.width as usize;
        let row = w * 3;
        out.par_chunks_exact_mut(row)
            .enumerate()
            .with_min_len(4)
            .for_each_init(
                || RowScratch::new(w),
                |s, (y, o)| {
                    pack_row(&src.data[y * row..][..row], &mut s.src);
                    let shift = &shift[y * w..][..w];
                    let prio = &priority[y * w..][..w];
                    warp_row(&s.src, shift, prio, &mut s.warp);
                    unpack_row(&s.warp.out, o);
                },
            );
    }
}

fn check_frame(f: &RgbFrame, what: &str) -> Result<()> {
    let expected = f.width as usize * f.height as usize * 3;
    if f.data.len() != expected {
        return Err(StereoError::InvalidArgument(format!(
            "{what} has {} bytes, expected {expected} for {}x{} RGB24",
            f.data.len(),
            f.width,
            f.height
        )));
    }
    Ok(())
}

fn resize_like(out: &mut RgbFrame, like: &RgbFrame) {
    out.width = like.width;
    out.height = like.height;
    out.index = like.index;
    out.data.resize(like.data.len(), 0);
}

/// Per-thread buffers for one row.
struct RowScratch {
    /// The source row, one `u32` (`0x00BBGGRR`) per pixel.
    src: Vec<u32>,
    depth: Vec<f32>,
    disp: Vec<f32>,
    /// The depth as a priority byte (see [`depth_byte`]).
    prio: Vec<u32>,
    tmp: Vec<f32>,
    warp: WarpScratch,
}

impl RowScratch {
    fn new(w: usize) -> Self {
        RowScratch {
            src: vec![0; w],
            depth: vec![0.0; w],
            disp: vec![0.0; w],
            prio: vec![0; w],
            tmp: vec![0.0; w],
            warp: WarpScratch::new(w),
        }
    }

    /// Loads row `y` of `frame` and its depth: packed pixels, dilated depth, disparity and
    /// priority.
    #[inline(always)]
    fn prepare(&mut self, frame: &RgbFrame, depth01: &DepthMap, y: usize, geo: &RowGeometry) {
        let w = self.src.len();
        pack_row(&frame.data[y * w * 3..][..w * 3], &mut self.src);
        dilate_row(
            &depth01.data[y * w..][..w],
            geo.radius,
            &mut self.depth,
            &mut self.tmp,
        );
        for ((disp, q), &z) in self.disp.iter_mut().zip(&mut self.prio).zip(&self.depth) {
            *disp = geo.scale * (z - geo.convergence);
            *q = depth_byte(z);
        }
    }

    /// Warps the prepared row into `self.warp.out` with `k` of the disparity ([`LEFT`] or
    /// [`RIGHT`]).
    #[inline(always)]
    fn warp(&mut self, k: f32) {
        warp_row_ordered(&self.src, &self.disp, k, &self.prio, &mut self.warp);
    }
}

/// A normalised depth (`0..=1`, already clamped) as a priority byte: 1 (farthest) to 255
/// (nearest), so that 0 can mark a hole.
#[inline(always)]
fn depth_byte(z: f32) -> u32 {
    (z * 254.0 + 1.5) as u32
}

/// Buffers of [`warp_row`]; `out` holds the result.
struct WarpScratch {
    /// Target positions in 1/256 pixel, one more than the row (a far sentinel).
    target: Vec<i32>,
    /// Priority of what was written to each target pixel (`-inf` = nothing: a hole).
    z: Vec<f32>,
    out: Vec<u32>,
    /// [`warp_row_ordered`]: per source pixel `x`, the first target pixel of the segment
    /// `x..x + 1`, its sample there, and flags: how many target pixels the segment covers (low
    /// byte), and [`SURFACE_END`] when `x` is splatted.
    first: Vec<i32>,
    sample: Vec<u32>,
    flags: Vec<u32>,
}

/// Flag of a source pixel that ends a surface (or is isolated): it is also splatted.
const SURFACE_END: u32 = 1 << 8;

impl WarpScratch {
    fn new(w: usize) -> Self {
        WarpScratch {
            target: vec![0; w + 1],
            z: vec![0.0; w],
            out: vec![0; w],
            first: vec![0; w],
            sample: vec![0; w],
            flags: vec![0; w],
        }
    }
}

/// Sub-pixel steps of target positions (`>> 8` divides by it).
const SUB: i32 = 256;
/// A target position far outside any row, for dropped pixels.
const FAR: i32 = -(1 << 30);
/// `(1 << 16) / d` for the target distances `d` of linked neighbours (`1..=MAX_STRETCH * SUB`).
static RECIPROCALS: LazyLock<Vec<u32>> = LazyLock::new(|| {
    (0..=(MAX_STRETCH as i32 * SUB) as u32)
        .map(|d| (1u32 << 16).checked_div(d).unwrap_or(0))
        .collect()
});

/// RGB24 to one `u32` per pixel (`0x00BBGGRR`), four pixels (three words) at a time.
#[inline(always)]
fn pack_row(rgb: &[u8], out: &mut [u32]) {
    let word = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    let mut quads = rgb.chunks_exact(12);
    let mut outs = out.chunks_exact_mut(4);
    for (b, o) in (&mut quads).zip(&mut outs) {
        let (w0, w1, w2) = (word(&b[0..4]), word(&b[4..8]), word(&b[8..12]));
        o[0] = w0 & 0xFF_FFFF;
        o[1] = (w0 >> 24 | w1 << 8) & 0xFF_FFFF;
        o[2] = (w1 >> 16 | w2 << 16) & 0xFF_FFFF;
        o[3] = w2 >> 8;
    }
    for (o, p) in outs
        .into_remainder()
        .iter_mut()
        .zip(quads.remainder().chunks_exact(3))
    {
        *o = u32::from(p[0]) | u32::from(p[1]) << 8 | u32::from(p[2]) << 16;
    }
}

/// The inverse of [`pack_row`] (top bytes ignored).
#[inline(always)]
fn unpack_row(px: &[u32], rgb: &mut [u8]) {
    let mut quads = px.chunks_exact(4);
    let mut outs = rgb.chunks_exact_mut(12);
    for (p, o) in (&mut quads).zip(&mut outs) {
        // The top bytes may carry a priority (see `warp_row_ordered`): masked off.
        let (p0, p1, p2) = (p[0] & 0xFF_FFFF, p[1] & 0xFF_FFFF, p[2] & 0xFF_FFFF);
        o[0..4].copy_from_slice(&(p0 | p1 << 24).to_le_bytes());
        o[4..8].copy_from_slice(&(p1 >> 8 | p2 << 16).to_le_bytes());
        o[8..12].copy_from_slice(&(p2 >> 16 | p[3] << 8).to_le_bytes());
    }
    for (p, o) in quads
        .remainder()
        .iter()
        .zip(outs.into_remainder().chunks_exact_mut(3))
    {
        o.copy_from_slice(&p.to_le_bytes()[..3]);
    }
}

/// Mixes two packed pixels: `(c0 * (256 - a) + c1 * a) / 256`, rounded, `a` in `0..=256`.
#[inline(always)]
fn mix(c0: u32, c1: u32, a: u32) -> u32 {
    let b = 256 - a;
    let rb = ((c0 & 0xFF_00FF) * b + (c1 & 0xFF_00FF) * a + 0x80_0080) >> 8;
    let g = ((c0 & 0xFF00) * b + (c1 & 0xFF00) * a + 0x8000) >> 8;
    (rb & 0xFF_00FF) | (g & 0xFF00)
}

/// Clamps a row of depth to `0..=1` (NaN = 0) and applies a max filter of `radius`. `tmp` is
/// scratch.
#[inline(always)]
fn dilate_row(d: &[f32], radius: usize, out: &mut [f32], tmp: &mut Vec<f32>) {
    let n = d.len();
    for (o, &v) in out.iter_mut().zip(d) {
        // NaN fails the comparison: 0.
        *o = if v >= 0.0 { v.min(1.0) } else { 0.0 };
    }
    if radius == 0 || n < 2 {
        return;
    }
    if radius <= 8 {
        // `radius` passes of a 3-tap max: simple loops the compiler vectorises.
        tmp.resize(n, 0.0);
        for _ in 0..radius {
            tmp.copy_from_slice(out);
            out[0] = tmp[0].max(tmp[1]);
            out[n - 1] = tmp[n - 2].max(tmp[n - 1]);
            for (o, t) in out[1..n - 1].iter_mut().zip(tmp.windows(3)) {
                *o = t[0].max(t[1]).max(t[2]);
            }
        }
        return;
    }
    // van Herk / Gil-Werman for wide windows: prefix maxima (`g`) and suffix maxima within
    // blocks of the window's length over the row padded with `radius` zeros on each side (0 is
    // the farthest depth, so padding never wins).
    let k = 2 * radius + 1;
    let m = n + 2 * radius;
    tmp.clear();
    tmp.resize(radius, 0.0);
    tmp.extend_from_slice(out);
    tmp.resize(m, 0.0);
    let mut g = vec![0.0f32; m];
    for start in (0..m).step_by(k) {
        let end = (start + k).min(m);
        let mut acc = 0.0f32;
        for (gv, &v) in g[start..end].iter_mut().zip(&tmp[start..end]) {
            acc = acc.max(v);
            *gv = acc;
        }
        let mut acc = 0.0f32;
        for v in tmp[start..end].iter_mut().rev() {
            acc = acc.max(*v);
            *v = acc;
        }
    }
    for (x, o) in out.iter_mut().enumerate() {
        // Window [x, x + 2r] of the padded row.
        *o = tmp[x].max(g[x + k - 1]);
    }
}

/// Target positions of a row, in 1/256 pixel: source pixel `x` lands at `x + k * shift[x]`;
/// `target` has one more entry than the row, a far sentinel.
#[inline(always)]
fn targets(shift: &[f32], k: f32, target: &mut [i32]) {
    let w = shift.len();
    // Positions are clamped to 8 px beyond the row (a segment reaching farther is not linked:
    // its other end is outside too), which keeps them within the range of the rounding trick
    // below (|v| < 2^22) for rows up to 16k pixels: adding 1.5 * 2^23 leaves the integer in the
    // low mantissa bits. Unlike `as i32`, this vectorises.
    const MAGIC: f32 = 12_582_912.0;
    let magic_bits = MAGIC.to_bits() as i32;
    let (lo, hi) = (-8.0 * SUB as f32, (w as f32 + 8.0) * SUB as f32);
    for (x, (t, &sh)) in target.iter_mut().zip(shift).enumerate() {
        let v = ((x as f32 + k * sh) * SUB as f32).clamp(lo, hi);
        *t = (v + MAGIC).to_bits() as i32 - magic_bits;
    }
    target[w] = FAR;
}

/// Whether the targets `t0` and `t1` of neighbouring source pixels are one surface: `0 < t1 - t0
/// <= MAX_STRETCH` pixels.
#[inline(always)]
fn is_linked(t0: i32, t1: i32) -> bool {
    (t1.wrapping_sub(t0).wrapping_sub(1) as u32) < (MAX_STRETCH as i32 * SUB) as u32
}

/// [`warp_row`] without a z-buffer, for [`synthesize`]'s rows, where the priority (depth) grows
/// with the shift when `k > 0` and falls with it when `k < 0`. Then of two source pixels that
/// land on one target pixel the nearer is the one that moved farther in the direction near
/// pixels move (the left one of the two when they move right): visiting pixels against that
/// direction, each write may simply overwrite (McMillan's occlusion-compatible order).
/// Interpolated samples obey the same order, since priority is an affine function of the shift
/// along a surface.
///
/// `prio` holds [`depth_byte`]s. `s.out` gets the colour in the low 24 bits and the priority
/// byte of what was written in the top byte (0: a hole, then filled from its farther
/// neighbour); [`unpack_row`] ignores it.
#[inline(always)]
fn warp_row_ordered(src: &[u32], shift: &[f32], k: f32, prio: &[u32], s: &mut WarpScratch) {
    let w = src.len();
    targets(&shift[..w], k, &mut s.target[..w + 1]);
    segment_samples(src, prio, s);
    let out = &mut s.out[..w];
    out.fill(0);
    if k > 0.0 {
        scatter_ordered::<true>(src, prio, s);
    } else {
        scatter_ordered::<false>(src, prio, s);
    }
    fill_holes_packed(&mut s.out[..w], src);
}

/// `(1 << 16) / d` for `d` in `1..=512`, as [`RECIPROCALS`] holds it, but in a form that
/// vectorises on baseline x86-64 (no integer division, table lookup or saturating float cast):
/// the f32 quotient never rounds across an integer (its fraction is a multiple of `1 / d`, far
/// above half an ulp), so rounding `q - 0.5` to nearest (the magic-number trick) is its floor;
/// when `q` is an integer it is even (a power of two), and the tie rounds to it.
#[inline(always)]
fn reciprocal(d: i32) -> i32 {
    const MAGIC: f32 = 12_582_912.0;
    (65536.0 / d as f32 - 0.5 + MAGIC).to_bits() as i32 - MAGIC.to_bits() as i32
}

/// The sample of the segment from source pixel `x` (colour `c0`, priority `q0`, target `t0`) to
/// `x + 1` (`c1`, `q1`, `t1`) at target pixel `p`: colour and priority interpolated with the
/// weight of `x + 1` in 1/256, priority in the top byte.
#[inline(always)]
fn segment_sample(c0: u32, c1: u32, q0: u32, q1: u32, t0: i32, d: i32, p: i32) -> u32 {
    let max_d = MAX_STRETCH as i32 * SUB;
    let r = reciprocal(d.clamp(1, max_d));
    let a = (((p * SUB - t0).clamp(0, max_d) * r) >> 8).min(SUB) as u32;
    let (q0, q1) = (q0 as i32, q1 as i32);
    let q = (q0 + (((q1 - q0) * a as i32 + 128) >> 8)) as u32;
    mix(c0, c1, a) | q << 24
}

/// The first, vectorisable pass of [`warp_row_ordered`]: for every source pixel at once, where
/// its segment starts, how many target pixels it covers (usually one), its sample at the first,
/// and whether the pixel ends a surface.
#[inline(always)]
fn segment_samples(src: &[u32], prio: &[u32], s: &mut WarpScratch) {
    let w = src.len();
    if w < 2 {
        // One pixel: no segment, an isolated pixel.
        s.flags[..w].fill(SURFACE_END);
        return;
    }
    let n = w - 1;
    let wmax = (w as i32 - 1) * SUB;
    let seg = |prev_t: i32, t0: i32, t1: i32, c0: u32, c1: u32, q0: u32, q1: u32| {
        let d = t1.wrapping_sub(t0);
        let linked = is_linked(t0, t1);
        let f = (t0.max(0) + SUB - 1) >> 8;
        let l = t1.min(wmax) >> 8;
        let count = if linked && t1 >= 0 && t0 <= wmax {
            (l - f + 1).clamp(0, 255)
        } else {
            0
        };
        let end = !(linked && is_linked(prev_t, t0));
        let flags = count as u32 | if end { SURFACE_END } else { 0 };
        (f, flags, segment_sample(c0, c1, q0, q1, t0, d, f))
    };
    // Pixel 0 has no left segment (its "previous target" is the far sentinel, never linked);
    // the others run in one loop over aligned slices, which vectorises.
    let t = &s.target[..w + 1];
    (s.first[0], s.flags[0], s.sample[0]) = seg(FAR, t[0], t[1], src[0], src[1], prio[0], prio[1]);
    let (tp, t0s, t1s) = (&t[..n - 1], &t[1..n], &t[2..w]);
    let (c0s, c1s) = (&src[1..n], &src[2..w]);
    let (q0s, q1s) = (&prio[1..n], &prio[2..w]);
    let (first, flags, sample) = (&mut s.first[1..n], &mut s.flags[1..n], &mut s.sample[1..n]);
    for x in 0..n - 1 {
        (first[x], flags[x], sample[x]) =
            seg(tp[x], t0s[x], t1s[x], c0s[x], c1s[x], q0s[x], q1s[x]);
    }
    // The last pixel has no right neighbour: it ends its surface.
    s.flags[n] = SURFACE_END;
}

/// The second pass of [`warp_row_ordered`]: writes the samples, visiting source pixels right to
/// left when `REVERSE` (near pixels move right), else left to right, and splats surface ends.
///
/// Pixels go in blocks of 8 in visiting order; a block whose pixels each cover exactly one target
/// pixel, each the next one's neighbour (the bulk of a row: a surface at a slowly varying shift),
/// is one contiguous copy, since its targets are distinct and the order within it cannot matter.
/// Other blocks, and the `w % 8` pixels at the row's left end, go pixel by pixel.
#[inline(always)]
fn scatter_ordered<const REVERSE: bool>(src: &[u32], prio: &[u32], s: &mut WarpScratch) {
    const B: usize = 8;
    let w = src.len();
    let (first, sample, flags) = (&s.first[..w], &s.sample[..w], &s.flags[..w]);
    let out = &mut s.out[..w];
    let seg = Segments {
        src,
        prio,
        target: &s.target[..w + 1],
        first,
        sample,
        flags,
    };
    let tail = w % B;
    if !REVERSE {
        for x in 0..tail {
            seg.write(x, out);
        }
    }
    for i in 0..w / B {
        let x0 = if REVERSE {
            w - (i + 1) * B
        } else {
            tail + i * B
        };
        let (fl, fi) = (&flags[x0..x0 + B], &first[x0..x0 + B]);
        let f0 = fi[0];
        let mut contiguous = true;
        for j in 0..B {
            contiguous &= (fl[j] == 1) & (fi[j] == f0 + j as i32);
        }
        if contiguous {
            // A count of one puts the target inside the row.
            let f0 = f0 as usize;
            out[f0..f0 + B].copy_from_slice(&sample[x0..x0 + B]);
        } else {
            for j in 0..B {
                seg.write(if REVERSE { x0 + B - 1 - j } else { x0 + j }, out);
            }
        }
    }
    if REVERSE {
        for x in (0..tail).rev() {
            seg.write(x, out);
        }
    }
}

/// What [`scatter_ordered`] reads: a row's pixels and [`segment_samples`]' results.
struct Segments<'a> {
    src: &'a [u32],
    prio: &'a [u32],
    target: &'a [i32],
    first: &'a [i32],
    sample: &'a [u32],
    flags: &'a [u32],
}

impl Segments<'_> {
    /// Writes source pixel `x`'s segment and, at a surface's end, its splat.
    #[inline(always)]
    fn write(&self, x: usize, out: &mut [u32]) {
        let (src, prio, target) = (self.src, self.prio, self.target);
        let (first, sample, flags) = (self.first, self.sample, self.flags);
        let w = out.len();
        let fl = flags[x];
        if fl == 1 {
            // The common case: one target pixel, inside a surface.
            out[first[x] as usize] = sample[x];
            return;
        }
        let count = (fl & 0xFF) as i32;
        if count > 0 {
            let f = first[x];
            out[f as usize] = sample[x];
            // A stretched segment covers a second (or, at the limit, third) target pixel.
            for p in f + 1..f + count {
                let (t0, t1) = (target[x], target[x + 1]);
                out[p as usize] =
                    segment_sample(src[x], src[x + 1], prio[x], prio[x + 1], t0, t1 - t0, p);
            }
        }
        if fl & SURFACE_END != 0 {
            // A surface's end or an isolated pixel: splat it at its nearest target pixel. A splat
            // is not exact (rounded), so it does not rely on the order: it only replaces what is
            // strictly farther (a hole, or its own surface's exact sample at a tie, survive).
            let p = (target[x] + SUB / 2) >> 8;
            if (0..w as i32).contains(&p) && prio[x] > out[p as usize] >> 24 {
                out[p as usize] = src[x] | prio[x] << 24;
            }
        }
    }
}

/// [`fill_holes`] for rows that carry their priority byte in the top byte (0: a hole).
#[inline(always)]
fn fill_holes_packed(out: &mut [u32], src: &[u32]) {
    const HOLE: u32 = 1 << 24;
    fill_hole_runs(
        out,
        src,
        |o, x| o[x..x + 16].iter().fold(u32::MAX, |m, &v| m.min(v)) >= HOLE,
        |o, x| o[x] < HOLE,
        |o, l, r| o[l] >> 24 <= o[r] >> 24,
    );
}

/// Warps one row of packed pixels into `s.out` for [`warp_view`]: source pixel `x` lands at
/// `x + shift[x]`; where several land on one target pixel the largest priority wins (z-buffer),
/// whatever the priorities. Pixels with a non-finite shift or priority are dropped.
///
/// Positions are fixed point (1/256 pixel) so that the per-pixel work is integer arithmetic.
#[inline(always)]
fn warp_row(src: &[u32], shift: &[f32], prio: &[f32], s: &mut WarpScratch) {
    let w = src.len();
    let (shift, prio) = (&shift[..w], &prio[..w]);
    let target = &mut s.target[..w + 1];
    let z = &mut s.z[..w];
    let out = &mut s.out[..w];
    targets(shift, 1.0, target);
    for ((t, &sh), &p) in target.iter_mut().zip(shift).zip(prio) {
        if !(sh.is_finite() && p.is_finite()) {
            *t = FAR;
        }
    }
    z.fill(f32::NEG_INFINITY);
    let recip = RECIPROCALS.as_slice();
    let max_d = (MAX_STRETCH as i32 * SUB) as u32;
    let wmax = (w as i32 - 1) * SUB;
    let mut t0 = target[0];
    let mut prev_linked = false;
    for x in 0..w {
        let t1 = target[x + 1];
        let d = t1.wrapping_sub(t0);
        // 0 < d <= MAX_STRETCH: x and x + 1 are one surface.
        let linked = (d.wrapping_sub(1) as u32) < max_d;
        if linked && t1 >= 0 && t0 <= wmax {
            // Target pixels p with t0 <= p <= t1, inside the row.
            let first = (t0.max(0) + SUB - 1) >> 8;
            let last = t1.min(wmax) >> 8;
            let (z0, z1) = (prio[x], prio[x + 1]);
            let dz = (z1 - z0) * (1.0 / SUB as f32);
            let (c0, c1) = (src[x], src[x + 1]);
            let r = recip[d as usize];
            for p in first..=last {
                // Weight of x + 1 in 1/256.
                let a = ((p * SUB - t0) as u32 * r) >> 8;
                let zp = z0 + a as i32 as f32 * dz;
                let i = p as usize;
                if zp > z[i] {
                    z[i] = zp;
                    out[i] = mix(c0, c1, a);
                }
            }
        }
        if !(linked && prev_linked) {
            // A surface's end or an isolated pixel: splat it at its nearest target pixel.
            let p = (t0 + SUB / 2) >> 8;
            if (0..w as i32).contains(&p) {
                let i = p as usize;
                if prio[x] > z[i] {
                    z[i] = prio[x];
                    out[i] = src[x];
                }
            }
        }
        prev_linked = linked;
        t0 = t1;
    }
    fill_holes(out, z, src);
}

/// Fills runs of unwritten pixels (`z == -inf`) from the farther of their two neighbours.
#[inline(always)]
fn fill_holes(out: &mut [u32], z: &[f32], src: &[u32]) {
    let z = &z[..out.len()];
    fill_hole_runs(
        out,
        src,
        |_, x| z[x..x + 16].iter().all(|&v| v != f32::NEG_INFINITY),
        |_, x| z[x] == f32::NEG_INFINITY,
        |_, l, r| z[l] <= z[r],
    );
}

/// Fills each run of holes in `out` with the pixel beside it that `left_is_farther` picks (the
/// background side); a run at the border takes its only neighbour, and a row that is all hole
/// takes `src`. `no_hole_in_16(out, x)` tests 16 pixels from `x` at once (the common case, kept
/// vectorisable); `is_hole(out, x)` one pixel.
#[inline(always)]
fn fill_hole_runs(
    out: &mut [u32],
    src: &[u32],
    no_hole_in_16: impl Fn(&[u32], usize) -> bool,
    is_hole: impl Fn(&[u32], usize) -> bool,
    left_is_farther: impl Fn(&[u32], usize, usize) -> bool,
) {
    let w = out.len();
    let mut x = 0;
    while x < w {
        if x + 16 <= w && no_hole_in_16(out, x) {
            x += 16;
            continue;
        }
        if !is_hole(out, x) {
            x += 1;
            continue;
        }
        let start = x;
        while x < w && is_hole(out, x) {
            x += 1;
        }
        let from = match (start.checked_sub(1), (x < w).then_some(x)) {
            (Some(l), Some(r)) => Some(if left_is_farther(out, l, r) { l } else { r }),
            (Some(l), None) => Some(l),
            (None, Some(r)) => Some(r),
            (None, None) => None,
        };
        match from {
            Some(f) => {
                let c = out[f];
                out[start..x].fill(c);
            }
            // Nothing landed in this row at all: keep the source row.
            None => out.copy_from_slice(src),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame_from(w: u32, h: u32, f: impl Fn(u32, u32) -> [u8; 3]) -> RgbFrame {
        let mut fr = RgbFrame::new(w, h);
        for y in 0..h {
            for x in 0..w {
                let i = ((y * w + x) * 3) as usize;
                fr.data[i..i + 3].copy_from_slice(&f(x, y));
            }
        }
        fr
    }

    fn warp(src: &RgbFrame, shift: &[f32], prio: &[f32]) -> RgbFrame {
        let mut out = RgbFrame::new(0, 0);
        warp_view(src, shift, prio, &mut out).expect("warp");
        out
    }

    #[test]
    fn zero_shift_is_the_identity() {
        let src = frame_from(17, 3, |x, y| [x as u8 * 10, y as u8, 7]);
        let n = 17 * 3;
        let out = warp(&src, &vec![0.0; n], &vec![0.5; n]);
        assert_eq!(out, src);
    }

    #[test]
    fn integer_shift_moves_pixels_exactly() {
        let src = frame_from(20, 1, |x, _| [x as u8 * 10, 0, 0]);
        let out = warp(&src, &[3.0; 20], &[0.0; 20]);
        for x in 3..20 {
            assert_eq!(out.pixel(x, 0)[0], (x as u8 - 3) * 10);
        }
        // The hole at the left border takes its only neighbour.
        for x in 0..3 {
            assert_eq!(out.pixel(x, 0)[0], 0);
        }
    }

    #[test]
    fn sub_pixel_shift_interpolates() {
        let src = frame_from(10, 1, |x, _| [x as u8 * 20, 0, 0]);
        let out = warp(&src, &[0.5; 10], &[0.0; 10]);
        // Target 5 lies halfway between sources 4 (80) and 5 (100).
        assert_eq!(out.pixel(5, 0)[0], 90);
    }

    #[test]
    fn stretched_surfaces_have_no_cracks() {
        // Shift grows by 0.9 px per pixel: neighbours land 1.9 px apart.
        let w = 30usize;
        let shift: Vec<f32> = (0..w).map(|x| 0.9 * x as f32 - 10.0).collect();
        let src = frame_from(w as u32, 1, |x, _| [100 + x as u8, 50, 50]);
        let out = warp(&src, &shift, &vec![0.0; w]);
        // Every pixel written by rasterisation is between its neighbours' colours.
        for x in 1..w as u32 - 1 {
            let c = out.pixel(x, 0)[0];
            assert!((100..130).contains(&c), "{x}: {c}");
        }
    }

    #[test]
    fn near_pixels_win_whatever_the_order() {
        // Two pixels land on target 5: the nearer one (larger priority) must win, from either
        // side.
        for (near_x, far_x) in [(2usize, 8usize), (8, 2)] {
            let src = frame_from(11, 1, |x, _| {
                if x as usize == near_x {
                    [255, 0, 0]
                } else if x as usize == far_x {
                    [0, 0, 255]
                } else {
                    [0, 255, 0]
                }
            });
            let mut shift = vec![0.0f32; 11];
            let mut prio = vec![0.1f32; 11];
            shift[near_x] = 5.0 - near_x as f32;
            shift[far_x] = 5.0 - far_x as f32;
            prio[near_x] = 0.9;
            prio[far_x] = 0.2;
            let out = warp(&src, &shift, &prio);
            assert_eq!(out.pixel(5, 0), [255, 0, 0], "near at {near_x}");
        }
    }

    #[test]
    fn holes_take_the_background_colour() {
        // A near block [10, 15) over a far background; the block moves 4 px left, uncovering
        // [11, 15) - 4 .. on its right side: those pixels must take the background colour.
        let w = 32u32;
        let near = |x: u32| (10..15).contains(&x);
        let src = frame_from(w, 2, |x, _| if near(x) { [250, 0, 0] } else { [0, 0, 90] });
        let n = (w * 2) as usize;
        let mut shift = vec![0.0f32; n];
        let mut prio = vec![0.0f32; n];
        for y in 0..2 {
            for x in 0..w {
                if near(x) {
                    shift[(y * w + x) as usize] = -4.0;
                    prio[(y * w + x) as usize] = 1.0;
                }
            }
        }
        let out = warp(&src, &shift, &prio);
        for x in 0..w {
            let want = if (6..11).contains(&x) {
                [250, 0, 0]
            } else {
                [0, 0, 90]
            };
            assert_eq!(out.pixel(x, 1), want, "x = {x}");
        }
    }

    #[test]
    fn dilation_is_a_max_filter() {
        // Sparse peaks, out-of-range values and NaN, over a row longer than the widest window.
        let mut d: Vec<f32> = (0..61u32)
            .map(|i| {
                if i % 7 == 3 {
                    (i % 5) as f32 * 0.3
                } else {
                    0.1
                }
            })
            .collect();
        d[10] = 2.0;
        d[20] = f32::NAN;
        d[30] = -1.0;
        d[40] = f32::INFINITY;
        for radius in (0..=12).chain([29, 40, 100]) {
            let mut out = vec![0.0; d.len()];
            dilate_row(&d, radius, &mut out, &mut Vec::new());
            for (x, &got) in out.iter().enumerate() {
                let lo = x.saturating_sub(radius);
                let hi = (x + radius).min(d.len() - 1);
                let want = d[lo..=hi]
                    .iter()
                    .map(|&v| if v.is_nan() { 0.0 } else { v.clamp(0.0, 1.0) })
                    .fold(0.0f32, f32::max);
                assert_eq!(got, want, "radius {radius}, x {x}");
            }
        }
        let mut one = [0.7f32];
        dilate_row(&[0.7], 3, &mut one, &mut Vec::new());
        assert_eq!(one, [0.7]);
    }

    #[test]
    fn options_are_checked() {
        let f = RgbFrame::new(8, 2);
        let d = DepthMap::new(8, 2);
        for bad in [
            SynthOptions {
                divergence: -1.0,
                ..Default::default()
            },
            SynthOptions {
                divergence: f32::NAN,
                ..Default::default()
            },
            SynthOptions {
                convergence: 1.5,
                ..Default::default()
            },
        ] {
            let e = synthesize(&f, &d, &bad).expect_err("bad options");
            assert!(matches!(e, StereoError::InvalidArgument(_)), "{e}");
        }
        let e = synthesize(&f, &DepthMap::new(4, 2), &SynthOptions::default())
            .expect_err("size mismatch");
        assert!(matches!(e, StereoError::InvalidArgument(_)), "{e}");
        let e = warp_view(&f, &[0.0; 3], &[0.0; 16], &mut RgbFrame::new(0, 0))
            .expect_err("short shift");
        assert!(matches!(e, StereoError::InvalidArgument(_)), "{e}");
    }

    #[test]
    fn flat_depth_at_the_convergence_plane_changes_nothing() {
        let src = frame_from(40, 4, |x, y| [x as u8, y as u8 * 9, 3]);
        let depth = DepthMap::from_vec(40, 4, vec![0.5; 160]).expect("size");
        let pair = synthesize(&src, &depth, &SynthOptions::default()).expect("synth");
        assert_eq!(pair.left, src);
        assert_eq!(pair.right, src);
    }

    #[test]
    fn packing_round_trips() {
        for w in 0..13usize {
            let rgb: Vec<u8> = (0..w * 3).map(|i| (i * 37 + 5) as u8).collect();
            let mut px = vec![0u32; w];
            pack_row(&rgb, &mut px);
            for (x, &p) in px.iter().enumerate() {
                assert_eq!(
                    p.to_le_bytes(),
                    [rgb[x * 3], rgb[x * 3 + 1], rgb[x * 3 + 2], 0]
                );
            }
            let mut back = vec![0u8; w * 3];
            unpack_row(&px, &mut back);
            assert_eq!(back, rgb, "width {w}");
        }
    }

    /// A textured far plane (depth 0.1) with a near square (depth 0.95) and a soft ramp.
    fn scene(w: u32, h: u32) -> (RgbFrame, DepthMap) {
        let src = frame_from(w, h, |x, y| {
            [
                (x * 7 + y * 3) as u8,
                ((x * 13) ^ (y * 5)) as u8,
                if (x / 4 + y / 4) % 2 == 0 { 40 } else { 200 },
            ]
        });
        let mut depth = DepthMap::new(w, h);
        for y in 0..h {
            for x in 0..w {
                let square = (w / 3..w / 2).contains(&x) && (h / 4..3 * h / 4).contains(&y);
                depth.data[(y * w + x) as usize] = if square {
                    0.95
                } else {
                    0.1 + 0.5 * x as f32 / w as f32
                };
            }
        }
        (src, depth)
    }

    #[test]
    fn block_scatter_writes_what_the_pixel_by_pixel_scatter_writes() {
        // Rows with smooth stretches (contiguous blocks), folds, gaps and row-end overruns, at
        // widths with and without a remainder of 8: the block copies must not change a byte.
        for w in [8usize, 13, 64, 203] {
            for (case, k) in [(0u32, LEFT), (1, RIGHT), (2, LEFT), (3, RIGHT)] {
                let src: Vec<u32> = (0..w as u32).map(|x| x * 0x01_0305 + case).collect();
                let shift: Vec<f32> = (0..w)
                    .map(|x| {
                        let smooth = 3.0 + (x as f32 * 0.05).sin() * 2.5;
                        // Steps (occlusions and disocclusions) in every other case.
                        let step = if case >= 2 && (x / 17) % 2 == 1 {
                            9.0
                        } else {
                            0.0
                        };
                        smooth + step
                    })
                    .collect();
                let prio: Vec<u32> = shift.iter().map(|&v| depth_byte(v / 12.0)).collect();
                let mut s = WarpScratch::new(w);
                targets(&shift, k, &mut s.target[..w + 1]);
                segment_samples(&src, &prio, &mut s);
                let mut reference = vec![0u32; w];
                let seg = Segments {
                    src: &src,
                    prio: &prio,
                    target: &s.target,
                    first: &s.first,
                    sample: &s.sample,
                    flags: &s.flags,
                };
                let contiguous_blocks = (0..w / 8)
                    .filter(|b| {
                        (0..8).all(|j| {
                            let x = b * 8 + j;
                            s.flags[x] == 1 && s.first[x] == s.first[b * 8] + j as i32
                        })
                    })
                    .count();
                if k > 0.0 {
                    (0..w).rev().for_each(|x| seg.write(x, &mut reference));
                } else {
                    (0..w).for_each(|x| seg.write(x, &mut reference));
                }
                s.out.fill(0);
                if k > 0.0 {
                    scatter_ordered::<true>(&src, &prio, &mut s);
                } else {
                    scatter_ordered::<false>(&src, &prio, &mut s);
                }
                assert_eq!(s.out, reference, "w {w} case {case}");
                if w >= 64 {
                    assert!(contiguous_blocks > 0, "w {w} case {case}: no fast block");
                }
            }
        }
    }

    #[test]
    fn float_reciprocals_are_the_integer_ones() {
        for d in 1..=(MAX_STRETCH as i32 * SUB) {
            assert_eq!(reciprocal(d) as u32, RECIPROCALS[d as usize], "d = {d}");
        }
    }

    #[test]
    fn the_ordered_warp_agrees_with_the_z_buffer() {
        // synthesize's visiting order must give what warp_view's z-buffer gives for the same
        // shifts and priorities, occlusions and disocclusions included, up to sub-pixel ties.
        let (w, h) = (97u32, 9u32);
        let (src, depth) = scene(w, h);
        let opts = SynthOptions {
            divergence: 12.0,
            dilation: 0,
            ..Default::default()
        };
        let pair = synthesize(&src, &depth, &opts).expect("synthesize");
        for (view, k) in [(&pair.left, LEFT), (&pair.right, RIGHT)] {
            let shift: Vec<f32> = depth
                .data
                .iter()
                .map(|&z| k * opts.disparity(w, z))
                .collect();
            // The priority bytes the ordered warp compares, so ties resolve alike.
            let prio: Vec<f32> = depth.data.iter().map(|&z| depth_byte(z) as f32).collect();
            let reference = warp(&src, &shift, &prio);
            let differing = (0..w * h)
                .filter(|&i| reference.pixel(i % w, i / w) != view.pixel(i % w, i / w))
                .count();
            // Only ties between a surface end's rounded splat and an exact sample may resolve
            // differently (at most one such pixel per row and border); a wrong occlusion would
            // differ over whole strips.
            assert!(
                differing <= 2 * h as usize,
                "k = {k}: {differing} pixels differ"
            );
        }
    }

    #[test]
    fn near_square_occludes_and_its_hole_takes_the_background() {
        // The left view moves the near square right: its right edge covers the background, and
        // the strip it uncovers on its left takes the background (not the square's colour).
        let (w, h) = (120u32, 4u32);
        let src = frame_from(w, h, |x, _| {
            if (40..60).contains(&x) {
                [255, 0, 0]
            } else {
                [0, 0, 255]
            }
        });
        let depth = DepthMap::from_vec(
            w,
            h,
            (0..w * h)
                .map(|i| {
                    if (40..60).contains(&(i % w)) {
                        1.0
                    } else {
                        0.0
                    }
                })
                .collect(),
        )
        .expect("size");
        let opts = SynthOptions {
            divergence: 10.0,
            convergence: 0.0,
            dilation: 0,
        };
        // Disparity of the square: 10 % of 120 = 12 px; the left view moves it 6 px right.
        let pair = synthesize(&src, &depth, &opts).expect("synthesize");
        for x in 0..w {
            let want = if (46..66).contains(&x) {
                [255, 0, 0]
            } else {
                [0, 0, 255]
            };
            assert_eq!(pair.left.pixel(x, 2), want, "left x = {x}");
            let want = if (34..54).contains(&x) {
                [255, 0, 0]
            } else {
                [0, 0, 255]
            };
            assert_eq!(pair.right.pixel(x, 2), want, "right x = {x}");
        }
    }

    #[test]
    fn fused_synthesis_and_composition_equal_the_two_steps() {
        use crate::compose::compose;
        for (w, h) in [(64u32, 36u32), (31, 17), (2, 2)] {
            let (src, depth) = scene(w, h);
            let opts = SynthOptions::default();
            let pair = synthesize(&src, &depth, &opts).expect("synthesize");
            for format in StereoFormat::ALL {
                let want = compose(&pair, format).expect("compose");
                let mut got = RgbFrame::new(1, 1);
                synthesize_composed_into(&src, &depth, &opts, format, &mut got).expect("fused");
                assert_eq!(got, want, "{format} at {w}x{h}");
            }
        }
        let tiny = frame_from(1, 3, |_, _| [1, 2, 3]);
        let depth = DepthMap::new(1, 3);
        let mut out = RgbFrame::new(0, 0);
        let e = synthesize_composed_into(
            &tiny,
            &depth,
            &SynthOptions::default(),
            StereoFormat::Sbs,
            &mut out,
        )
        .expect_err("1 px wide");
        assert!(matches!(e, StereoError::InvalidArgument(_)), "{e}");
    }

    #[test]
    fn avx2_and_baseline_builds_agree() {
        use crate::compose::AnaglyphMethod;
        let (w, h) = (203u32, 37u32);
        let (src, depth) = scene(w, h);
        // A strong divergence: stretched segments, folds and holes in every row.
        let opts = SynthOptions {
            divergence: 6.0,
            ..SynthOptions::default()
        };
        let geo = RowGeometry::new(&opts, w);
        let views = |isa| {
            let mut pair = StereoPair::new(w, h);
            synthesize_rows(
                isa,
                &src,
                &depth,
                &geo,
                &mut pair.left.data,
                &mut pair.right.data,
            );
            pair
        };
        let base = views(Isa::BASELINE);
        assert_ne!(base.left, base.right);
        assert_eq!(views(Isa::detect()), base);
        for format in [
            StereoFormat::Anaglyph(AnaglyphMethod::Dubois),
            StereoFormat::Tab,
        ] {
            let composed = |isa| {
                let (ow, oh) = format.output_size(w, h);
                let mut out = RgbFrame::new(ow, oh);
                compose_rows(isa, &src, &depth, &geo, format, &mut out);
                out
            };
            assert_eq!(composed(Isa::detect()), composed(Isa::BASELINE), "{format}");
        }
        let n = (w * h) as usize;
        let shift: Vec<f32> = (0..n).map(|i| 4.0 * depth.data[i] - 1.3).collect();
        let warped = |isa| {
            let mut out = vec![0u8; n * 3];
            warp_rows(isa, &src, &shift, &depth.data, &mut out);
            out
        };
        assert_eq!(warped(Isa::detect()), warped(Isa::BASELINE));
    }

    #[test]
    fn degenerate_sizes_work() {
        for (w, h) in [(0, 0), (1, 1), (1, 5), (5, 1), (2, 1)] {
            let src = frame_from(w, h, |x, y| [x as u8 + 1, y as u8 + 1, 9]);
            let depth = DepthMap::from_vec(w, h, vec![1.0; (w * h) as usize]).expect("size");
            let o = SynthOptions {
                divergence: 20.0,
                ..Default::default()
            };
            let pair = synthesize(&src, &depth, &o).expect("synthesize");
            assert_eq!((pair.left.width, pair.left.height), (w, h));
            assert!(pair.left.data.chunks_exact(3).all(|p| p != [0, 0, 0]));
            assert!(pair.right.data.chunks_exact(3).all(|p| p != [0, 0, 0]));
        }
    }

    #[test]
    fn disparity_sign_and_size() {
        let o = SynthOptions::default();
        assert_eq!(o.disparity(1000, 0.5), 0.0);
        assert!((o.disparity(1000, 1.0) - 10.0).abs() < 1e-4);
        assert!((o.disparity(1000, 0.0) + 10.0).abs() < 1e-4);
    }
}
