//! A weight-free depth estimator from classic 2D-to-3D cues, for offline use, previews and as the
//! speed baseline. It needs no model file, so it must be *selected explicitly*: the pipeline never
//! falls back to it silently when a model is missing.
//!
//! Output is relative inverse depth (near = large), roughly in `0..=1`, at the frame's size.
//!
//! Everything but the first and last pass runs on a grid about
//! [`work_width`](FastDepthOptions::work_width) cells wide (the frame divided by an integer
//! factor: 4 at 720p, 6 at 1080p with the default 320):
//!
//! 1. **One pass over the frame** (rows in parallel) averages colour per cell and accumulates the
//!    full-resolution *fine* gradient energy (squared luma differences), keeping the frame's luma
//!    for step 5.
//! 2. **Cues**, each in `0..=1`, with fixed mappings (no per-frame normalisation, which would
//!    flicker):
//!    - *vertical position*: lower in the frame is nearer (ground planes, the usual framing);
//!    - *sharpness / defocus*: fine energy over the grid's *coarse* energy, both box-averaged. An
//!      edge's coarse energy does not depend on its blur while its fine energy falls as 1/blur,
//!      so the ratio measures focus independently of contrast; in focus is taken as near (shallow
//!      depth of field puts the subject in focus). It is trusted only where there is contrast,
//!      elsewhere it is neutral (0.5);
//!    - *colour*: saturated and warm is nearer, bright-desaturated (hazy, the dark channel prior) is
//!      farther (aerial perspective).
//! 3. **Combination**: a weighted mean of the cues.
//! 4. **Edge-aware smoothing**: a guided filter (He et al. 2010) on the grid, with the grid's luma
//!    as the guide, so depth follows object outlines rather than cells.
//! 5. **Upsampling** as in the fast guided filter (He and Sun 2015): the filter's linear
//!    coefficients are upsampled bilinearly and applied to the full-resolution luma, which puts
//!    depth edges on the image's edges at full resolution.
//!
//! Cost (the `synth` bench): 3.4-4.2 ms of CPU per 720p frame and 5.0-5.4 ms per 1080p frame on
//! this project's shared build machine (AVX2 build: the passes are `multiversion!` kernels), the
//! full-resolution passes spread over the cores by rayon. The loops are written to vectorise:
//! pass 1 sums per column before summing cells, the box filters take differences of prefix sums
//! (four rows at a time), and pass 5 interpolates the coefficients along the grid's rows once.

use rayon::prelude::*;

use stereospot_media::multiversion;
use stereospot_media::simd::Isa;

use crate::depth::DepthModel;
use crate::{DepthMap, Result, RgbFrame, StereoError};

/// Knobs of [`FastDepth`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FastDepthOptions {
    /// Approximate width of the working grid, in cells (default 320).
    pub work_width: u32,
    /// Weight of the vertical-position cue (default 0.5).
    pub vertical_weight: f32,
    /// Weight of the sharpness cue (default 0.3).
    pub sharpness_weight: f32,
    /// Weight of the colour cue (default 0.2).
    pub color_weight: f32,
    /// Radius of the cue averaging and of the guided filter, in grid cells (default 8; at most
    /// 1/16 of the grid's longer side).
    pub smooth_radius: u32,
    /// Guided filter regularisation: luma variance (luma in `0..=1`) below which the guide's edges
    /// are smoothed over (default 0.01, i.e. edges of about 0.1 contrast are kept).
    pub edge_eps: f32,
}

impl Default for FastDepthOptions {
    fn default() -> Self {
        FastDepthOptions {
            work_width: 320,
            vertical_weight: 0.5,
            sharpness_weight: 0.3,
            color_weight: 0.2,
            smooth_radius: 8,
            edge_eps: 0.01,
        }
    }
}

/// Sharpness ratio mapped to 0.5 (in between sharp and blurred).
const SHARPNESS_HALF: f32 = 0.25;
/// Box-averaged coarse gradient energy at which the sharpness cue is half trusted.
const CONTRAST_EPS: f32 = 5e-4;

/// The classic-cues depth estimator (see the module docs). Keeps its buffers between frames.
#[derive(Debug, Clone)]
pub struct FastDepth {
    opts: FastDepthOptions,
    /// Full-resolution luma of the last frame.
    luma: Vec<u8>,
    /// Per grid cell: mean R, G, B, luma (`0..=1`) and fine gradient energy.
    cells: Vec<[f32; 5]>,
    grid: Vec<Vec<f32>>,
    tmp: BoxScratch,
    /// Column interpolation table of the last size: left cell and weight of the right one.
    cols: Vec<(u32, f32)>,
    cols_for: (u32, u32),
    /// `grid[A]` and `grid[B]` interpolated to full width (grid height), for pass 5.
    wide_a: Vec<f32>,
    wide_b: Vec<f32>,
}

/// Indices into [`FastDepth::grid`].
mod g {
    pub const I: usize = 0;
    pub const EF: usize = 1;
    pub const EC: usize = 2;
    pub const P: usize = 3;
    pub const II: usize = 4;
    pub const IP: usize = 5;
    pub const M_I: usize = 6;
    pub const M_P: usize = 7;
    pub const M_II: usize = 8;
    pub const M_IP: usize = 9;
    pub const A: usize = 10;
    pub const B: usize = 11;
    pub const COUNT: usize = 12;
}

impl Default for FastDepth {
    fn default() -> Self {
        FastDepth::new(FastDepthOptions::default())
    }
}

impl FastDepth {
    /// An estimator with these options (out-of-range values are clamped: weights at least 0,
    /// `work_width` at least 8, `edge_eps` at least 1e-6).
    pub fn new(opts: FastDepthOptions) -> Self {
        let clean = |v: f32| if v.is_finite() { v.max(0.0) } else { 0.0 };
        let mut opts = FastDepthOptions {
            work_width: opts.work_width.max(8),
            vertical_weight: clean(opts.vertical_weight),
            sharpness_weight: clean(opts.sharpness_weight),
            color_weight: clean(opts.color_weight),
            smooth_radius: opts.smooth_radius,
            edge_eps: if opts.edge_eps.is_finite() {
                opts.edge_eps.max(1e-6)
            } else {
                0.01
            },
        };
        if opts.vertical_weight + opts.sharpness_weight + opts.color_weight <= 0.0 {
            opts.vertical_weight = 1.0;
        }
        FastDepth {
            opts,
            luma: Vec::new(),
            cells: Vec::new(),
            grid: vec![Vec::new(); g::COUNT],
            tmp: BoxScratch::default(),
            cols: Vec::new(),
            cols_for: (0, 0),
            wide_a: Vec::new(),
            wide_b: Vec::new(),
        }
    }

    /// The options in use.
    pub fn options(&self) -> &FastDepthOptions {
        &self.opts
    }

    /// Estimates depth into `out` (resized when needed, allocation reused).
    ///
    /// # Errors
    ///
    /// [`StereoError::InvalidArgument`] for an empty frame or one whose buffer does not match its
    /// size.
    pub fn estimate_into(&mut self, frame: &RgbFrame, out: &mut DepthMap) -> Result<()> {
        let (w, h) = (frame.width as usize, frame.height as usize);
        if w == 0 || h == 0 || frame.data.len() != w * h * 3 {
            return Err(StereoError::InvalidArgument(format!(
                "frame of {}x{} with {} bytes",
                frame.width,
                frame.height,
                frame.data.len()
            )));
        }
        self.estimate_with(Isa::detect(), frame, out);
        Ok(())
    }

    /// [`Self::estimate_into`] after its checks, with the kernels' build chosen by `isa`.
    fn estimate_with(&mut self, isa: Isa, frame: &RgbFrame, out: &mut DepthMap) {
        let (w, h) = (frame.width as usize, frame.height as usize);
        let f = ((w as f32 / self.opts.work_width as f32).round() as usize).clamp(1, w.min(h));
        let (gw, gh) = (w.div_ceil(f), h.div_ceil(f));
        accumulate(isa, self, frame, f, gw, gh);
        // Small frames get a proportionally small radius (1/16 of the grid at most).
        let r = (self.opts.smooth_radius as usize).min(gw.max(gh) / 16);
        grid_passes(isa, self, f, gw, gh, r);
        out.width = frame.width;
        out.height = frame.height;
        out.data.resize(w * h, 0.0);
        upsample(isa, self, w, f, gw, gh, out);
    }

    /// Pass 2 and 3: the cues and their combination into `grid[P]`.
    #[inline(always)]
    fn cues(&mut self, f: usize, gw: usize, gh: usize, r: usize) {
        let n = gw * gh;
        for v in &mut self.grid {
            v.resize(n, 0.0);
        }

        {
            let [i, ef, ec] = self
                .grid
                .get_disjoint_mut([g::I, g::EF, g::EC])
                .unwrap_or_else(|_| unreachable!("distinct indices"));
            for (k, c) in self.cells.iter().enumerate() {
                i[k] = c[3];
                ef[k] = c[4];
            }
            for y in 0..gh {
                for x in 0..gw {
                    let k = y * gw + x;
                    let dx = if x + 1 < gw { i[k + 1] - i[k] } else { 0.0 };
                    let dy = if y + 1 < gh { i[k + gw] - i[k] } else { 0.0 };
                    ec[k] = dx * dx + dy * dy;
                }
            }
        }
        // Box-averaged energies (in place, through the mean buffers).
        let (src_a, src_b) = (
            std::mem::take(&mut self.grid[g::EF]),
            std::mem::take(&mut self.grid[g::EC]),
        );
        let mut ma = std::mem::take(&mut self.grid[g::M_I]);
        let mut mb = std::mem::take(&mut self.grid[g::M_P]);
        box_mean(&src_a, gw, gh, r, &mut ma, &mut self.tmp);
        box_mean(&src_b, gw, gh, r, &mut mb, &mut self.tmp);
        self.grid[g::EF] = src_a;
        self.grid[g::EC] = src_b;

        let o = self.opts;
        let wsum = o.vertical_weight + o.sharpness_weight + o.color_weight;
        let (wv, ws, wc) = (
            o.vertical_weight / wsum,
            o.sharpness_weight / wsum,
            o.color_weight / wsum,
        );
        let p = &mut self.grid[g::P];
        for y in 0..gh {
            let vertical = (y as f32 + 0.5) / gh as f32;
            for x in 0..gw {
                let k = y * gw + x;
                let (ef, ec) = (ma[k], mb[k]);
                let ratio = f as f32 * ef / (ec + 1e-9);
                let sharp = ratio / (ratio + SHARPNESS_HALF);
                let trust = ec / (ec + CONTRAST_EPS);
                let sharpness = 0.5 + trust * (sharp - 0.5);
                let [cr, cg, cb, _, _] = self.cells[k];
                let mx = cr.max(cg).max(cb);
                let mn = cr.min(cg).min(cb);
                let saturation = if mx > 1e-3 { (mx - mn) / mx } else { 0.0 };
                let warmth = 0.5 + 0.5 * (cr - cb);
                let clear = 1.0 - mn;
                let color = 0.4 * saturation + 0.3 * warmth + 0.3 * clear;
                p[k] = wv * vertical + ws * sharpness + wc * color;
            }
        }
        self.grid[g::M_I] = ma;
        self.grid[g::M_P] = mb;
    }

    /// Pass 4: guided filter coefficients, box-averaged, into `grid[A]` and `grid[B]`.
    #[inline(always)]
    fn guided(&mut self, gw: usize, gh: usize, r: usize) {
        let eps = self.opts.edge_eps;
        {
            let [i, p, ii, ip] = self
                .grid
                .get_disjoint_mut([g::I, g::P, g::II, g::IP])
                .unwrap_or_else(|_| unreachable!("distinct indices"));
            for k in 0..i.len() {
                ii[k] = i[k] * i[k];
                ip[k] = i[k] * p[k];
            }
        }
        for (src, dst) in [
            (g::I, g::M_I),
            (g::P, g::M_P),
            (g::II, g::M_II),
            (g::IP, g::M_IP),
        ] {
            let s = std::mem::take(&mut self.grid[src]);
            let mut d = std::mem::take(&mut self.grid[dst]);
            box_mean(&s, gw, gh, r, &mut d, &mut self.tmp);
            self.grid[src] = s;
            self.grid[dst] = d;
        }
        {
            let [mi, mp, mii, mip, a, b] = self
                .grid
                .get_disjoint_mut([g::M_I, g::M_P, g::M_II, g::M_IP, g::II, g::IP])
                .unwrap_or_else(|_| unreachable!("distinct indices"));
            for k in 0..mi.len() {
                let var = (mii[k] - mi[k] * mi[k]).max(0.0);
                let cov = mip[k] - mi[k] * mp[k];
                let ak = cov / (var + eps);
                a[k] = ak;
                b[k] = mp[k] - ak * mi[k];
            }
        }
        for (src, dst) in [(g::II, g::A), (g::IP, g::B)] {
            let s = std::mem::take(&mut self.grid[src]);
            let mut d = std::mem::take(&mut self.grid[dst]);
            box_mean(&s, gw, gh, r, &mut d, &mut self.tmp);
            self.grid[src] = s;
            self.grid[dst] = d;
        }
    }
}

multiversion! {
/// Pass 1: per-cell mean colour and fine gradient energy; full-resolution luma.
fn accumulate(this: &mut FastDepth, frame: &RgbFrame, f: usize, gw: usize, gh: usize) {
    let (w, h) = (frame.width as usize, frame.height as usize);
    this.luma.resize(w * h, 0);
    this.cells.resize(gw * gh, [0.0; 5]);
    let data = &frame.data;
    let luma_of = |p: &[u8]| -> u8 {
        ((54 * u32::from(p[0]) + 183 * u32::from(p[1]) + 19 * u32::from(p[2]) + 128) >> 8) as u8
    };
    this.luma
        .par_chunks_mut(f * w)
        .zip(this.cells.par_chunks_mut(gw))
        .enumerate()
        .for_each_init(
            || (vec![0u32; w * 3], vec![0u32; w], vec![0u8; w]),
            |(acc_rgb, acc_e, below), (gy, (lum, cells))| {
                // Per column of the band: R, G, B sums (interleaved like the frame) and gradient
                // energy sums, in simple loops that vectorise; then per cell, the columns' sums.
                acc_rgb.fill(0);
                acc_e.fill(0);
                let y0 = gy * f;
                let rows = lum.len() / w;
                for (r, lrow) in lum.chunks_exact_mut(w).enumerate() {
                    let src = &data[(y0 + r) * w * 3..][..w * 3];
                    for (l, p) in lrow.iter_mut().zip(src.chunks_exact(3)) {
                        *l = luma_of(p);
                    }
                }
                // The row below the block, for the last row's vertical differences.
                let has_below = y0 + rows < h;
                if has_below {
                    let src = &data[(y0 + rows) * w * 3..][..w * 3];
                    for (l, p) in below.iter_mut().zip(src.chunks_exact(3)) {
                        *l = luma_of(p);
                    }
                }
                for r in 0..rows {
                    let src = &data[(y0 + r) * w * 3..][..w * 3];
                    for (a, &v) in acc_rgb.iter_mut().zip(src) {
                        *a += u32::from(v);
                    }
                    let l = &lum[r * w..][..w];
                    // Horizontal differences (none at the last column).
                    for ((a, &l0), &l1) in acc_e.iter_mut().zip(l).zip(&l[1..]) {
                        let d = i32::from(l1) - i32::from(l0);
                        *a += (d * d) as u32;
                    }
                    // Vertical differences (none at the frame's last row).
                    let next: Option<&[u8]> = if r + 1 < rows {
                        Some(&lum[(r + 1) * w..][..w])
                    } else if has_below {
                        Some(&below[..])
                    } else {
                        None
                    };
                    if let Some(n) = next {
                        for ((a, &l0), &l1) in acc_e.iter_mut().zip(l).zip(n) {
                            let d = i32::from(l1) - i32::from(l0);
                            *a += (d * d) as u32;
                        }
                    }
                }
                for (gx, c) in cells.iter_mut().enumerate() {
                    let (x0, x1) = (gx * f, ((gx + 1) * f).min(w));
                    let mut sum = [0u64; 4];
                    for (p, &e) in acc_rgb[x0 * 3..x1 * 3].chunks_exact(3).zip(&acc_e[x0..x1]) {
                        sum[0] += u64::from(p[0]);
                        sum[1] += u64::from(p[1]);
                        sum[2] += u64::from(p[2]);
                        sum[3] += u64::from(e);
                    }
                    let n = ((x1 - x0) * rows) as f32;
                    let k = 1.0 / (255.0 * n);
                    let (r, gg, b) = (sum[0] as f32 * k, sum[1] as f32 * k, sum[2] as f32 * k);
                    let l = 0.2126 * r + 0.7152 * gg + 0.0722 * b;
                    *c = [r, gg, b, l, sum[3] as f32 * k / 255.0];
                }
            },
        );
}
}

multiversion! {
    /// Passes 2 to 4 on the grid.
    fn grid_passes(this: &mut FastDepth, f: usize, gw: usize, gh: usize, r: usize) {
        this.cues(f, gw, gh, r);
        this.guided(gw, gh, r);
    }
}

multiversion! {
/// Pass 5: `out = A * luma + B` with `A`, `B` upsampled bilinearly.
fn upsample(this: &mut FastDepth, w: usize, f: usize, gw: usize, gh: usize, out: &mut DepthMap) {
    if this.cols_for != (w as u32, f as u32) {
        this.cols = (0..w)
            .map(|x| {
                let (i, t) = cell_coord(x, f, gw);
                (i as u32, t)
            })
            .collect();
        this.cols_for = (w as u32, f as u32);
    }
    // The coefficients interpolated along the grid's rows first (a lookup per value, on a
    // grid-high image), so the full-resolution pass is two straight interpolations per pixel.
    let cols = &this.cols;
    this.wide_a.resize(gh * w, 0.0);
    this.wide_b.resize(gh * w, 0.0);
    this.wide_a
        .par_chunks_exact_mut(w)
        .zip(this.wide_b.par_chunks_exact_mut(w))
        .zip(this.grid[g::A].par_chunks_exact(gw))
        .zip(this.grid[g::B].par_chunks_exact(gw))
        .for_each(|(((wa, wb), a), b)| {
            for ((wa, wb), &(i, t)) in wa.iter_mut().zip(wb.iter_mut()).zip(cols) {
                let i = i as usize;
                let j = (i + 1).min(gw - 1);
                *wa = a[i] + t * (a[j] - a[i]);
                *wb = b[i] + t * (b[j] - b[i]);
            }
        });
    let (wide_a, wide_b) = (&this.wide_a, &this.wide_b);
    let luma = &this.luma;
    out.data
        .par_chunks_exact_mut(w)
        .enumerate()
        .with_min_len(8)
        .for_each(|(y, o)| {
            let (gy, ty) = cell_coord(y, f, gh);
            let gy1 = (gy + 1).min(gh - 1);
            let (a0, a1) = (&wide_a[gy * w..][..w], &wide_a[gy1 * w..][..w]);
            let (b0, b1) = (&wide_b[gy * w..][..w], &wide_b[gy1 * w..][..w]);
            let l = &luma[y * w..][..w];
            for (x, o) in o.iter_mut().enumerate() {
                let av = a0[x] + ty * (a1[x] - a0[x]);
                let bv = b0[x] + ty * (b1[x] - b0[x]);
                *o = av * (f32::from(l[x]) * (1.0 / 255.0)) + bv;
            }
        });
}
}

/// The grid cell left of (above) full-resolution coordinate `x` and the weight of the next one,
/// with cell centres at `(i + 0.5) * f - 0.5`.
#[inline(always)]
fn cell_coord(x: usize, f: usize, n: usize) -> (usize, f32) {
    let c = ((x as f32 + 0.5) / f as f32 - 0.5).clamp(0.0, (n - 1) as f32);
    let i = (c.floor() as usize).min(n - 1);
    (i, c - i as f32)
}

/// Scratch of [`box_mean`].
#[derive(Debug, Clone, Default)]
struct BoxScratch {
    rows: Vec<f32>,
    cols: Vec<f64>,
    /// Reciprocal window size per column.
    inv: Vec<f64>,
    /// Prefix sums of one row.
    prefix: Vec<f64>,
}

/// Mean over the `(2r + 1)^2` window clipped to the image (running sums, O(1) per value).
#[inline(always)]
fn box_mean(src: &[f32], w: usize, h: usize, r: usize, out: &mut [f32], s: &mut BoxScratch) {
    // Horizontal pass into `s.rows`: prefix sums (one dependent add per value), then window sums
    // as differences of two prefix sums times the window size's reciprocal, which vectorise. A
    // running sum with a division per value was most of this function's time.
    s.rows.resize(w * h, 0.0);
    s.inv.clear();
    s.inv.extend((0..w).map(|x| {
        let n = (x + r).min(w - 1) - x.saturating_sub(r) + 1;
        1.0 / n as f64
    }));
    let rh = r.min(w - 1);
    // Four rows at a time: four independent dependency chains in the prefix sums.
    const ROWS: usize = 4;
    s.prefix.resize(ROWS * (w + 1), 0.0);
    for (src, o) in src.chunks(ROWS * w).zip(s.rows.chunks_mut(ROWS * w)) {
        let n = src.len() / w;
        if n == ROWS {
            let (s0, s1, s2, s3) = (&src[..w], &src[w..2 * w], &src[2 * w..3 * w], &src[3 * w..]);
            let (p0, rest) = s.prefix.split_at_mut(w + 1);
            let (p1, rest) = rest.split_at_mut(w + 1);
            let (p2, p3) = rest.split_at_mut(w + 1);
            let mut acc = [0.0f64; ROWS];
            (p0[0], p1[0], p2[0], p3[0]) = (0.0, 0.0, 0.0, 0.0);
            for x in 0..w {
                acc[0] += f64::from(s0[x]);
                acc[1] += f64::from(s1[x]);
                acc[2] += f64::from(s2[x]);
                acc[3] += f64::from(s3[x]);
                (p0[x + 1], p1[x + 1], p2[x + 1], p3[x + 1]) = (acc[0], acc[1], acc[2], acc[3]);
            }
        } else {
            for (src, p) in src.chunks_exact(w).zip(s.prefix.chunks_exact_mut(w + 1)) {
                let mut acc = 0.0f64;
                p[0] = 0.0;
                for (p, &v) in p[1..].iter_mut().zip(src) {
                    acc += f64::from(v);
                    *p = acc;
                }
            }
        }
        for (o, p) in o.chunks_exact_mut(w).zip(s.prefix.chunks_exact(w + 1)) {
            let inv = &s.inv[..w];
            // Window [x - r, x + r] clipped to the row: prefix[min(x + r + 1, w)] minus
            // prefix[max(x - r, 0)].
            let lo_end = rh;
            let hi_start = (w - rh - 1).max(lo_end);
            for x in 0..lo_end {
                o[x] = ((p[(x + rh + 1).min(w)] - p[0]) * inv[x]) as f32;
            }
            for x in lo_end..hi_start {
                o[x] = ((p[x + rh + 1] - p[x - rh]) * inv[x]) as f32;
            }
            for x in hi_start..w {
                o[x] = ((p[w] - p[x.saturating_sub(rh)]) * inv[x]) as f32;
            }
        }
    }
    // Vertical pass: running column sums.
    let rows = &s.rows;
    s.cols.clear();
    s.cols.resize(w, 0.0);
    for row in rows.chunks_exact(w).take(r.min(h - 1) + 1) {
        for (c, &v) in s.cols.iter_mut().zip(row) {
            *c += f64::from(v);
        }
    }
    for (y, o) in out.chunks_exact_mut(w).enumerate() {
        let n = (y + r).min(h - 1) - y.saturating_sub(r) + 1;
        let inv = 1.0 / n as f64;
        for (o, &c) in o.iter_mut().zip(&s.cols) {
            *o = (c * inv) as f32;
        }
        if y + r + 1 < h {
            for (c, &v) in s.cols.iter_mut().zip(&rows[(y + r + 1) * w..][..w]) {
                *c += f64::from(v);
            }
        }
        if y >= r {
            for (c, &v) in s.cols.iter_mut().zip(&rows[(y - r) * w..][..w]) {
                *c -= f64::from(v);
            }
        }
    }
}

impl DepthModel for FastDepth {
    fn name(&self) -> &str {
        "fast"
    }

    fn estimate(&mut self, frame: &RgbFrame) -> Result<DepthMap> {
        let mut out = DepthMap::new(0, 0);
        FastDepth::estimate_into(self, frame, &mut out)?;
        Ok(out)
    }

    fn estimate_into(&mut self, frame: &RgbFrame, out: &mut DepthMap) -> Result<()> {
        FastDepth::estimate_into(self, frame, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn solid(w: u32, h: u32, rgb: [u8; 3]) -> RgbFrame {
        let mut f = RgbFrame::new(w, h);
        for p in f.data.chunks_exact_mut(3) {
            p.copy_from_slice(&rgb);
        }
        f
    }

    fn mean(d: &DepthMap, x0: u32, x1: u32, y0: u32, y1: u32) -> f32 {
        let mut s = 0.0;
        for y in y0..y1 {
            for x in x0..x1 {
                s += d.get(x, y);
            }
        }
        s / ((x1 - x0) * (y1 - y0)) as f32
    }

    /// Deterministic noise in 0..256.
    fn noise(x: u32, y: u32) -> u32 {
        let mut v = x.wrapping_mul(0x9E37_79B9) ^ y.wrapping_mul(0x85EB_CA6B);
        v ^= v >> 15;
        v = v.wrapping_mul(0x2C1B_3C6D);
        v ^= v >> 12;
        v & 255
    }

    #[test]
    fn lower_is_nearer_in_a_gradient_free_scene() {
        let mut fd = FastDepth::default();
        assert_eq!(fd.name(), "fast");
        for (w, h) in [(320, 180), (1280, 720), (7, 5)] {
            let d = fd
                .estimate(&solid(w, h, [120, 140, 160]))
                .expect("estimate");
            assert_eq!((d.width, d.height), (w, h));
            assert!(d.data.iter().all(|v| v.is_finite()));
            let top = mean(&d, 0, w, 0, h / 4 + 1);
            let bottom = mean(&d, 0, w, h - h / 4 - 1, h);
            assert!(bottom > top + 0.1, "{w}x{h}: bottom {bottom} top {top}");
            // Rows are uniform: no cue varies horizontally.
            let row = &d.data[(h / 2 * w) as usize..][..w as usize];
            let (lo, hi) = row
                .iter()
                .fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
            assert!(hi - lo < 1e-4, "{w}x{h}: row varies by {}", hi - lo);
        }
    }

    #[test]
    fn sharp_texture_is_nearer_than_blurred_texture() {
        let (w, h) = (640u32, 360u32);
        let tex = |x: u32, y: u32| noise(x, y) as f32;
        // Left half: sharp noise; right half: the same noise box-blurred over 9x9.
        let mut f = RgbFrame::new(w, h);
        let r = 4i32;
        for y in 0..h {
            for x in 0..w {
                let v = if x < w / 2 {
                    tex(x, y)
                } else {
                    let mut s = 0.0;
                    for dy in -r..=r {
                        for dx in -r..=r {
                            let xx = (x as i32 + dx).clamp(0, w as i32 - 1) as u32;
                            let yy = (y as i32 + dy).clamp(0, h as i32 - 1) as u32;
                            s += tex(xx, yy);
                        }
                    }
                    s / ((2 * r + 1) * (2 * r + 1)) as f32
                };
                // Stretch the blurred half's contrast back up so that only focus differs.
                let v = if x < w / 2 {
                    v
                } else {
                    128.0 + (v - 128.0) * 6.0
                };
                let v = v.clamp(0.0, 255.0) as u8;
                let i = ((y * w + x) * 3) as usize;
                f.data[i..i + 3].copy_from_slice(&[v, v, v]);
            }
        }
        let d = FastDepth::default().estimate(&f).expect("estimate");
        let sharp = mean(&d, w / 16, w / 2 - w / 16, h / 8, h - h / 8);
        let blurred = mean(&d, w / 2 + w / 16, w - w / 16, h / 8, h - h / 8);
        assert!(sharp > blurred + 0.02, "sharp {sharp} blurred {blurred}");
    }

    #[test]
    fn warm_saturated_is_nearer_than_hazy() {
        let (w, h) = (320u32, 180u32);
        let mut f = RgbFrame::new(w, h);
        for y in 0..h {
            for x in 0..w {
                let c = if x < w / 2 {
                    [200, 60, 30]
                } else {
                    [190, 200, 215]
                };
                let i = ((y * w + x) * 3) as usize;
                f.data[i..i + 3].copy_from_slice(&c);
            }
        }
        let d = FastDepth::default().estimate(&f).expect("estimate");
        let warm = mean(&d, 10, w / 2 - 10, 10, h - 10);
        let hazy = mean(&d, w / 2 + 10, w - 10, 10, h - 10);
        assert!(warm > hazy + 0.02, "warm {warm} hazy {hazy}");
    }

    #[test]
    fn avx2_and_baseline_builds_agree() {
        let f = RgbFrame {
            width: 203,
            height: 97,
            index: 0,
            data: (0..203 * 97 * 3).map(|i| noise(i, 7) as u8).collect(),
        };
        let (mut a, mut b) = (DepthMap::new(0, 0), DepthMap::new(0, 0));
        let mut model = FastDepth::new(FastDepthOptions {
            work_width: 50,
            ..FastDepthOptions::default()
        });
        model.estimate_with(Isa::BASELINE, &f, &mut a);
        model.estimate_with(Isa::detect(), &f, &mut b);
        let bits = |d: &DepthMap| d.data.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&a), bits(&b));
        assert!(a.data.iter().any(|&v| v != a.data[0]));
    }

    #[test]
    fn buffers_are_reused_and_results_repeat() {
        let mut fd = FastDepth::default();
        let mut f = RgbFrame::new(96, 54);
        for (i, v) in f.data.iter_mut().enumerate() {
            *v = noise(i as u32, 7) as u8;
        }
        let a = fd.estimate(&f).expect("first");
        let mut out = DepthMap::new(0, 0);
        fd.estimate_into(&solid(200, 100, [9, 9, 9]), &mut out)
            .expect("other size");
        fd.estimate_into(&f, &mut out).expect("again");
        assert_eq!(out, a);
    }

    #[test]
    fn bad_frames_are_refused() {
        let mut fd = FastDepth::default();
        assert!(matches!(
            fd.estimate(&RgbFrame::new(0, 0)),
            Err(StereoError::InvalidArgument(_))
        ));
        let mut f = RgbFrame::new(4, 4);
        f.data.pop();
        assert!(matches!(
            fd.estimate(&f),
            Err(StereoError::InvalidArgument(_))
        ));
    }

    #[test]
    fn extreme_options_are_clamped() {
        let f = solid(300, 200, [90, 120, 150]);
        for opts in [
            FastDepthOptions {
                work_width: 0,
                smooth_radius: 1000,
                edge_eps: f32::NAN,
                ..Default::default()
            },
            FastDepthOptions {
                work_width: 100_000,
                vertical_weight: -1.0,
                sharpness_weight: f32::INFINITY,
                color_weight: 0.0,
                ..Default::default()
            },
        ] {
            let d = FastDepth::new(opts).estimate(&f).expect("estimate");
            assert!(d.data.iter().all(|v| v.is_finite()), "{opts:?}");
        }
    }

    #[test]
    fn box_mean_matches_the_definition() {
        let (w, h) = (13usize, 7usize);
        let src: Vec<f32> = (0..w * h).map(|i| noise(i as u32, 3) as f32).collect();
        for r in [0usize, 1, 3, 5, 6, 7, 12, 20] {
            let mut out = vec![0.0; w * h];
            box_mean(&src, w, h, r, &mut out, &mut BoxScratch::default());
            for y in 0..h {
                for x in 0..w {
                    let (mut s, mut n) = (0.0f64, 0);
                    for yy in y.saturating_sub(r)..=(y + r).min(h - 1) {
                        for xx in x.saturating_sub(r)..=(x + r).min(w - 1) {
                            s += f64::from(src[yy * w + xx]);
                            n += 1;
                        }
                    }
                    let want = (s / n as f64) as f32;
                    assert!((out[y * w + x] - want).abs() < 1e-3, "r {r} ({x}, {y})");
                }
            }
        }
    }

    #[test]
    fn cell_coordinates_cover_the_grid() {
        // Cell centres of a factor-4 grid lie at 1.5, 5.5, ...: clamped at both ends.
        assert_eq!(cell_coord(0, 4, 10), (0, 0.0));
        assert_eq!(cell_coord(38, 4, 10), (9, 0.0));
        assert_eq!(cell_coord(39, 4, 10), (9, 0.0));
        let (i, t) = cell_coord(4, 4, 10);
        assert_eq!(i, 0);
        assert!((t - 0.625).abs() < 1e-6);
        let (i, t) = cell_coord(37, 4, 10);
        assert_eq!(i, 8);
        assert!((t - 0.875).abs() < 1e-6);
    }
}
