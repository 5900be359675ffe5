//! Temporal stabilisation: relative depth from a model (any scale and shift, re-estimated every
//! frame) to depth in `0..=1` (1 = nearest) that does not flicker.
//!
//! Per frame, a regular subsample of at most [`max_samples`](NormalizerOptions::max_samples)
//! finite raw values (so the cost does not grow with the resolution) gives robust statistics:
//! the range `lo..hi` between the [`low_percentile`](NormalizerOptions::low_percentile) and the
//! [`high_percentile`](NormalizerOptions::high_percentile) ([`range_of`]; a few stray pixels do
//! not set the scale), and the median and the 10..90 % spread. [`DepthNormalizer`] maps `raw`
//! linearly from a smoothed range `[lo, hi]` to `[0, 1]`, clamped. Two kinds of change disturb
//! the range, and they are treated differently:
//!
//! - **The model's own scale and shift jitter** (monocular models are affine-invariant: the
//!   same scene comes out with a slightly different scale and offset each frame). Smoothing the
//!   raw range would pass that jitter straight to the output, so by default
//!   ([`follow_scale`](NormalizerOptions::follow_scale)) the range is expressed relative to the
//!   frame's own median and spread, `lo = median + a * spread`, `hi = median + b * spread`: the
//!   median and spread follow each frame, which cancels an affine jitter exactly.
//! - **Content** (an object entering, a bright specular spot) moves the extremes: `a` and `b`
//!   are smoothed with an exponential moving average ([`ema`](NormalizerOptions::ema) is the
//!   newest frame's weight), so the background does not pump when the nearest thing changes.
//!
//! With `follow_scale` off, `lo` and `hi` themselves are averaged (the classic "EMA of the
//! range"). A static scene gives identical output every frame either way: no flicker.
//!
//! **Scene cuts.** The average must not carry one shot's range into the next, so each frame's
//! luma histogram (32 bins, subsampled) is compared with the previous frame's; when their total
//! variation distance (half the L1 distance, `0..=1`) exceeds
//! [`scene_cut_threshold`](NormalizerOptions::scene_cut_threshold), the average is reset to the
//! new frame's value and [`DepthNormalizer::scene_cuts`] counts one. Histograms ignore motion, so
//! pans and moving objects do not look like cuts; a cut between two shots with the same
//! brightness distribution is missed, which only costs a few frames of convergence.
//!
//! **Segment boundaries.** Segments of one video are converted independently, on different
//! workers, so the normaliser of segment `k + 1` cannot continue the average segment `k` ended
//! with. Both sides instead agree on an estimate of the *local* state at the joint:
//!
//! - at the end of segment `k`, the moving average has converged to the frames just before the
//!   joint;
//! - segment `k + 1` does not start from its first frame alone (one noisy estimate) but is seeded
//!   ([`DepthNormalizer::with_state`]) with [`seed_state`]: the median over its first
//!   [`seed_frames`](NormalizerOptions::seed_frames) frames (stopping at a scene cut), i.e. the
//!   state of the frames just after the joint.
//!
//! Every segment, the first included, starts the same way, so a video converted whole and the
//! same video converted in pieces differ only near the joints, by how much the scene's depth
//! distribution changes between the average's lag (about four frames at the default `ema`) and
//! the seed's lead (half the seed frames); the model's scale drift does not count with
//! `follow_scale`. The integration test `stabilize::segment_joint` measures the difference at the
//! joint frame on synthetic sequences (model scale drift and jitter, moving nearest object):
//! about 0.013 mean (0.5 px of disparity at 1080p with the default divergence) when the nearest
//! object approaches fast (1 % of the range per frame), 0.002 when it only jitters; the whole
//! run's own frame-to-frame change there is 0.005 to 0.009.
//!
//! Closer still: a worker that can decode the previous segment's last frames can *pre-roll* the
//! normaliser over about `3 / ema` of them (outputs discarded), which reproduces the whole run's
//! average (under 0.001 in the same test), at the cost of that many extra depth estimates.
//!
//! The pipeline does the cheap version once per job: at chunking, [`relative_range`] of the
//! [`seed_frames`](NormalizerOptions::seed_frames) frames just *before* each joint is stored with
//! the job, and segment `k + 1` starts from it ([`DepthNormalizer::with_relative_seed`]): the
//! state segment `k` ended with, rather than the state of the frames after the joint. On real
//! video with fast depth (the binary's `depth_stats` test, joints every 50 frames) the mean
//! change of the normalised depth across a joint is 0.0043 (car-detection) and 0.0072
//! (cockatoo), against 0.0081 and 0.0093 when each segment seeds from its own first frames, 0.0064
//! and 0.0149 with one range for the whole job (frames sampled across the source), and 0.0034
//! and 0.0073 for the whole run at the same frames.

use rayon::prelude::*;

use crate::{DepthMap, Result, RgbFrame, StereoError};

/// Bins of the scene-cut luma histogram.
const HIST_BINS: usize = 32;
/// Pixels sampled per frame for the scene-cut histogram (at most).
const HIST_SAMPLES: usize = 16_384;

/// Parameters of [`DepthNormalizer`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NormalizerOptions {
    /// Weight of the newest frame in the moving average, `0 < ema <= 1` (default 0.2: a time
    /// constant of about five frames, a lag of four on steady changes). 1 disables smoothing.
    /// Larger values follow content faster (and join segments more closely, see the module
    /// docs); smaller ones suppress more fluctuation.
    pub ema: f32,
    /// Percentile (in percent) of the raw values mapped to 0 (default 2).
    pub low_percentile: f32,
    /// Percentile (in percent) of the raw values mapped to 1 (default 98).
    pub high_percentile: f32,
    /// Luma-histogram distance (`0..=1`) above which two consecutive frames are a scene cut
    /// (default 0.35).
    pub scene_cut_threshold: f32,
    /// Most raw values sampled per frame for the percentiles (default 16384).
    pub max_samples: usize,
    /// Leading frames of a segment to feed to [`seed_state`] (default 5); advice for the
    /// pipeline, the normaliser itself does not look ahead.
    pub seed_frames: usize,
    /// Follow each frame's median and spread and smooth only the range relative to them
    /// (default `true`: cancels the model's per-frame scale and shift jitter); `false` smooths the
    /// raw range itself. See the module docs.
    pub follow_scale: bool,
}

impl Default for NormalizerOptions {
    fn default() -> Self {
        NormalizerOptions {
            ema: 0.2,
            low_percentile: 2.0,
            high_percentile: 98.0,
            scene_cut_threshold: 0.35,
            max_samples: 16_384,
            seed_frames: 5,
            follow_scale: true,
        }
    }
}

impl NormalizerOptions {
    /// Checks the ranges documented on the fields. The normaliser itself never fails: it clamps
    /// out-of-range values into range.
    pub fn check(&self) -> Result<()> {
        let bad = |what: String| Err(StereoError::InvalidArgument(what));
        if !(self.ema > 0.0 && self.ema <= 1.0) {
            return bad(format!("ema {} is outside (0, 1]", self.ema));
        }
        let (lo, hi) = (self.low_percentile, self.high_percentile);
        if !(lo >= 0.0 && hi <= 100.0 && lo < hi) {
            return bad(format!(
                "percentiles {lo} and {hi} must satisfy 0 <= low < high <= 100"
            ));
        }
        if !(self.scene_cut_threshold > 0.0 && self.scene_cut_threshold <= 1.0) {
            return bad(format!(
                "scene cut threshold {} is outside (0, 1]",
                self.scene_cut_threshold
            ));
        }
        if self.max_samples == 0 {
            return bad("max_samples must be at least 1".into());
        }
        Ok(())
    }

    /// The options with every field clamped into its range.
    fn sanitized(mut self) -> Self {
        self.ema = if self.ema.is_nan() {
            0.2
        } else {
            self.ema.clamp(1e-4, 1.0)
        };
        let lo = if self.low_percentile.is_nan() {
            2.0
        } else {
            self.low_percentile.clamp(0.0, 100.0)
        };
        let hi = if self.high_percentile.is_nan() {
            98.0
        } else {
            self.high_percentile.clamp(0.0, 100.0)
        };
        (self.low_percentile, self.high_percentile) = if lo < hi { (lo, hi) } else { (0.0, 100.0) };
        if self.scene_cut_threshold.is_nan() || self.scene_cut_threshold <= 0.0 {
            self.scene_cut_threshold = 0.35;
        }
        self.max_samples = self.max_samples.max(1);
        self
    }
}

/// The raw-depth range mapped to `0..=1`: `lo` to 0 (far), `hi` to 1 (near).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RangeState {
    /// Raw value mapped to 0.
    pub lo: f32,
    /// Raw value mapped to 1.
    pub hi: f32,
}

/// Normalises a stream of raw depth maps to `0..=1` with a temporally smoothed range (see the
/// module docs). One per stream (segment); not shared between threads.
#[derive(Debug, Clone)]
pub struct DepthNormalizer {
    opts: NormalizerOptions,
    /// The moving average: `(a, b)` relative to median and spread with `follow_scale`, the raw
    /// `(lo, hi)` without.
    average: Option<(f32, f32)>,
    /// A seed not yet converted (it is, at the first frame).
    seed: Option<RangeState>,
    /// The range applied to the last frame.
    last: Option<RangeState>,
    prev_hist: Option<[f32; HIST_BINS]>,
    scene_cuts: u64,
    samples: Vec<f32>,
}

impl DepthNormalizer {
    /// A normaliser that starts from the first frame's range.
    pub fn new(opts: NormalizerOptions) -> Self {
        DepthNormalizer {
            opts: opts.sanitized(),
            average: None,
            seed: None,
            last: None,
            prev_hist: None,
            scene_cuts: 0,
            samples: Vec::new(),
        }
    }

    /// A normaliser seeded with `state` (e.g. [`seed_state`] of the segment's first frames, or a
    /// job-wide range), into which the first frame is then averaged. With
    /// [`follow_scale`](NormalizerOptions::follow_scale) the seed is read relative to the first
    /// frame's median and spread.
    pub fn with_state(opts: NormalizerOptions, state: RangeState) -> Self {
        let mut n = DepthNormalizer::new(opts);
        if state.lo.is_finite() && state.hi.is_finite() {
            n.seed = Some(state);
            n.last = Some(state);
        }
        n
    }

    /// A normaliser seeded with a range from [`relative_range`] (relative to each frame's median
    /// and spread with [`follow_scale`](NormalizerOptions::follow_scale), raw without), so it
    /// applies to any frame whatever the model's scale there. The pipeline computes one per
    /// segment joint, once, from the frames just before the joint (the end of the previous
    /// segment), so segment `k + 1` starts where segment `k`'s average ended.
    pub fn with_relative_seed(opts: NormalizerOptions, relative: RangeState) -> Self {
        let mut n = DepthNormalizer::new(opts);
        if relative.lo.is_finite() && relative.hi.is_finite() && relative.hi > relative.lo {
            n.average = Some((relative.lo, relative.hi));
        }
        n
    }

    /// The range applied to the last frame (the seed before the first frame; `None` before the
    /// first frame of an unseeded normaliser).
    pub fn state(&self) -> Option<RangeState> {
        self.last
    }

    /// Scene cuts detected so far.
    pub fn scene_cuts(&self) -> u64 {
        self.scene_cuts
    }

    /// The options in use (after clamping into range).
    pub fn options(&self) -> &NormalizerOptions {
        &self.opts
    }

    /// Normalises `raw` (the depth of `frame`) into a new map; see [`Self::normalize_into`].
    pub fn normalize(&mut self, frame: &RgbFrame, raw: &DepthMap) -> DepthMap {
        let mut out = DepthMap::new(0, 0);
        self.normalize_into(frame, raw, &mut out);
        out
    }

    /// Normalises `raw` (the depth of `frame`, used only for scene-cut detection) into `out`
    /// (resized when needed, its allocation reused): values in `0..=1`, 1 = nearest. Non-finite
    /// raw values become 0; a flat map (or one without finite values) becomes 0.5 everywhere.
    pub fn normalize_into(&mut self, frame: &RgbFrame, raw: &DepthMap, out: &mut DepthMap) {
        let hist = luma_histogram(frame);
        let cut = match (&self.prev_hist, &hist) {
            (Some(p), Some(h)) => hist_distance(p, h) > self.opts.scene_cut_threshold,
            _ => false,
        };
        self.prev_hist = hist;
        if cut {
            self.scene_cuts += 1;
            tracing::debug!(frame = frame.index, "scene cut: depth range reset");
        }
        let range = sample_stats(raw, &self.opts, &mut self.samples).and_then(|st| {
            let frame_basis = basis(&st, self.opts.follow_scale)?;
            let observed = frame_basis.relative(st.lo, st.hi);
            if let Some(seed) = self.seed.take() {
                self.average = Some(frame_basis.relative(seed.lo, seed.hi));
            }
            let avg = match self.average {
                Some((a, b)) if !cut => {
                    let e = self.opts.ema;
                    (a + e * (observed.0 - a), b + e * (observed.1 - b))
                }
                _ => observed,
            };
            self.average = Some(avg);
            let (lo, hi) = frame_basis.absolute(avg);
            Some(RangeState { lo, hi })
        });
        if range.is_some() {
            self.last = range;
        }
        out.width = raw.width;
        out.height = raw.height;
        out.data.resize(raw.data.len(), 0.0);
        match range {
            Some(RangeState { lo, hi })
                if hi - lo > f32::EPSILON * (lo.abs() + hi.abs()) && hi > lo =>
            {
                let inv = 1.0 / (hi - lo);
                out.data
                    .par_chunks_mut(16_384)
                    .zip(raw.data.par_chunks(16_384))
                    .for_each(|(o, r)| {
                        for (o, &v) in o.iter_mut().zip(r) {
                            let n = (v - lo) * inv;
                            *o = if n.is_nan() { 0.0 } else { n.clamp(0.0, 1.0) };
                        }
                    });
            }
            _ => out.data.fill(0.5),
        }
    }
}

/// Robust statistics of one raw map's subsample.
#[derive(Debug, Clone, Copy)]
struct Stats {
    lo: f32,
    hi: f32,
    median: f32,
    spread: f32,
}

/// How a frame's range is expressed in the moving average.
#[derive(Debug, Clone, Copy)]
struct Basis {
    origin: f32,
    unit: f32,
}

impl Basis {
    fn relative(self, lo: f32, hi: f32) -> (f32, f32) {
        (
            (lo - self.origin) / self.unit,
            (hi - self.origin) / self.unit,
        )
    }

    fn absolute(self, (a, b): (f32, f32)) -> (f32, f32) {
        (self.origin + a * self.unit, self.origin + b * self.unit)
    }
}

/// The frame's median and spread with `follow` (falling back to the range when the spread is
/// degenerate, `None` when both are); the identity without.
fn basis(st: &Stats, follow: bool) -> Option<Basis> {
    if !follow {
        return Some(Basis {
            origin: 0.0,
            unit: 1.0,
        });
    }
    let tiny = |d: f32| !(d > 1e-6 * (st.lo.abs() + st.hi.abs()) && d > f32::MIN_POSITIVE);
    let unit = if !tiny(st.spread) {
        st.spread
    } else if !tiny(st.hi - st.lo) {
        st.hi - st.lo
    } else {
        return None;
    };
    Some(Basis {
        origin: st.median,
        unit,
    })
}

/// The robust range of one raw map: its low and high percentiles over a subsample (see
/// [`NormalizerOptions`]). A map without finite values gives `lo = hi = 0`.
pub fn range_of(raw: &DepthMap, opts: &NormalizerOptions) -> RangeState {
    sample_stats(raw, &opts.sanitized(), &mut Vec::new()).map_or(
        RangeState { lo: 0.0, hi: 0.0 },
        |st| RangeState {
            lo: st.lo,
            hi: st.hi,
        },
    )
}

/// The per-bound median of `ranges` (`None` when empty).
pub fn median_range(ranges: &[RangeState]) -> Option<RangeState> {
    let (lo, hi) = median_pair(ranges.iter().map(|r| (r.lo, r.hi)))?;
    Some(RangeState { lo, hi })
}

fn median_pair(pairs: impl Iterator<Item = (f32, f32)>) -> Option<(f32, f32)> {
    let (mut a, mut b): (Vec<f32>, Vec<f32>) = pairs.unzip();
    let median = |v: &mut Vec<f32>| {
        v.sort_by(f32::total_cmp);
        let n = v.len();
        if n % 2 == 1 {
            v[n / 2]
        } else {
            0.5 * (v[n / 2 - 1] + v[n / 2])
        }
    };
    if a.is_empty() {
        return None;
    }
    Some((median(&mut a), median(&mut b)))
}

/// The seed for a segment's normaliser from its leading frames (normally
/// [`NormalizerOptions::seed_frames`] of them), stopping before the first scene cut so that one
/// shot is not mixed with the next: the per-bound median of their ranges. With
/// [`follow_scale`](NormalizerOptions::follow_scale) the median is taken relative to each frame's
/// median and spread and expressed in the first frame's raw units (which is how
/// [`DepthNormalizer::with_state`] reads it back), so the model's scale jitter does not leak into
/// the seed. `None` without usable frames.
pub fn seed_state<'a>(
    frames: impl IntoIterator<Item = (&'a RgbFrame, &'a DepthMap)>,
    opts: &NormalizerOptions,
) -> Option<RangeState> {
    let opts = opts.sanitized();
    let mut prev: Option<[f32; HIST_BINS]> = None;
    let mut first: Option<Basis> = None;
    let mut rel = Vec::new();
    let mut samples = Vec::new();
    for (frame, raw) in frames {
        let hist = luma_histogram(frame);
        if let (Some(p), Some(h)) = (&prev, &hist)
            && hist_distance(p, h) > opts.scene_cut_threshold
        {
            break;
        }
        prev = hist;
        let Some(st) = sample_stats(raw, &opts, &mut samples) else {
            continue;
        };
        let Some(b) = basis(&st, opts.follow_scale) else {
            continue;
        };
        first.get_or_insert(b);
        rel.push(b.relative(st.lo, st.hi));
    }
    let (lo, hi) = first?.absolute(median_pair(rel.into_iter())?);
    Some(RangeState { lo, hi })
}

/// A seed for [`DepthNormalizer::with_relative_seed`] from raw depth maps: the per-bound median
/// of their ranges, each relative to its own map's median and spread with
/// [`follow_scale`](NormalizerOptions::follow_scale), raw without. Scene cuts are not looked
/// for. `None` without usable maps.
pub fn relative_range<'a>(
    maps: impl IntoIterator<Item = &'a DepthMap>,
    opts: &NormalizerOptions,
) -> Option<RangeState> {
    let opts = opts.sanitized();
    let mut samples = Vec::new();
    let rel = maps.into_iter().filter_map(|raw| {
        let st = sample_stats(raw, &opts, &mut samples)?;
        Some(basis(&st, opts.follow_scale)?.relative(st.lo, st.hi))
    });
    let rel: Vec<(f32, f32)> = rel.collect();
    let (lo, hi) = median_pair(rel.into_iter())?;
    Some(RangeState { lo, hi })
}

fn hist_distance(a: &[f32; HIST_BINS], b: &[f32; HIST_BINS]) -> f32 {
    0.5 * a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f32>()
}

/// Regular-grid subsample of `raw`'s finite values into `buf`, and its statistics.
fn sample_stats(raw: &DepthMap, opts: &NormalizerOptions, buf: &mut Vec<f32>) -> Option<Stats> {
    let (w, h) = (raw.width as usize, raw.height as usize);
    if raw.data.len() != w * h || w == 0 || h == 0 {
        return None;
    }
    let step = grid_step(w * h, opts.max_samples);
    buf.clear();
    for y in (0..h).step_by(step) {
        let row = &raw.data[y * w..][..w];
        buf.extend(row.iter().step_by(step).copied().filter(|v| v.is_finite()));
    }
    if buf.is_empty() {
        return None;
    }
    let n = buf.len();
    let rank = |p: f32| ((p / 100.0 * (n - 1) as f32).round() as usize).min(n - 1);
    // Ascending ranks, each selected among the values above the previous one.
    let mut ranks = [
        (rank(opts.low_percentile), 0),
        (rank(10.0), 1),
        (rank(50.0), 2),
        (rank(90.0), 3),
        (rank(opts.high_percentile), 4),
    ];
    ranks.sort_unstable();
    let mut values = [0.0f32; 5];
    let mut done = 0; // buf[..done] holds values at or below the last selected rank
    for (r, slot) in ranks {
        if r < done {
            // Same rank as the previous one (or below it, impossible once sorted).
            values[slot] = buf[r];
            continue;
        }
        let (_, v, _) = buf[done..].select_nth_unstable_by(r - done, f32::total_cmp);
        values[slot] = *v;
        done = r + 1;
    }
    Some(Stats {
        lo: values[0],
        hi: values[4],
        median: values[2],
        spread: values[3] - values[1],
    })
}

/// The grid step that keeps a regular subsample of `n` pixels under `max` values.
fn grid_step(n: usize, max: usize) -> usize {
    let mut step = ((n as f64 / max as f64).sqrt().ceil() as usize).max(1);
    while n.div_ceil(step * step) > max.max(1) * 2 {
        step += 1;
    }
    step
}

/// Normalised luma histogram of a subsample of `frame` (`None` for an empty or malformed frame).
fn luma_histogram(frame: &RgbFrame) -> Option<[f32; HIST_BINS]> {
    let (w, h) = (frame.width as usize, frame.height as usize);
    if w == 0 || h == 0 || frame.data.len() != w * h * 3 {
        return None;
    }
    let step = grid_step(w * h, HIST_SAMPLES);
    let mut counts = [0u32; HIST_BINS];
    let mut total = 0u32;
    for y in (0..h).step_by(step) {
        let row = &frame.data[y * w * 3..][..w * 3];
        for p in row.chunks_exact(3).step_by(step) {
            let l = (54 * u32::from(p[0]) + 183 * u32::from(p[1]) + 19 * u32::from(p[2])) >> 8;
            counts[(l as usize * HIST_BINS) >> 8] += 1;
            total += 1;
        }
    }
    let inv = 1.0 / total.max(1) as f32;
    Some(counts.map(|c| c as f32 * inv))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(w: u32, h: u32, scale: f32, shift: f32) -> DepthMap {
        let data = (0..w * h)
            .map(|i| shift + scale * (i % w) as f32 / (w - 1) as f32)
            .collect();
        DepthMap::from_vec(w, h, data).expect("size")
    }

    fn grey(w: u32, h: u32, v: u8) -> RgbFrame {
        let mut f = RgbFrame::new(w, h);
        f.data.fill(v);
        f
    }

    #[test]
    fn range_is_robust_to_outliers() {
        let mut d = ramp(101, 10, 1.0, 0.0);
        d.data[5] = 1e9;
        d.data[6] = -1e9;
        d.data[7] = f32::NAN;
        let r = range_of(&d, &NormalizerOptions::default());
        assert!((r.lo - 0.02).abs() < 0.011, "{r:?}");
        assert!((r.hi - 0.98).abs() < 0.011, "{r:?}");
        let all = NormalizerOptions {
            low_percentile: 0.0,
            high_percentile: 100.0,
            ..Default::default()
        };
        let r = range_of(&d, &all);
        assert_eq!((r.lo, r.hi), (-1e9, 1e9));
        let empty = DepthMap::from_vec(2, 1, vec![f32::NAN; 2]).expect("size");
        assert_eq!(range_of(&empty, &all), RangeState { lo: 0.0, hi: 0.0 });
    }

    #[test]
    fn subsampling_keeps_the_count_bounded() {
        for (n, max) in [
            (1, 1),
            (100, 1000),
            (1920 * 1080, 16_384),
            (1280 * 720, 4096),
        ] {
            let s = grid_step(n, max);
            assert!(n.div_ceil(s * s) <= 2 * max, "{n} {max} {s}");
        }
        let big = ramp(1920, 1080, 3.0, 1.0);
        let r = range_of(&big, &NormalizerOptions::default());
        // The grid subsample biases the percentiles by under 1 % of the range.
        assert!(
            (r.lo - 1.06).abs() < 0.03 && (r.hi - 3.94).abs() < 0.03,
            "{r:?}"
        );
    }

    #[test]
    fn output_is_clamped_to_unit_range() {
        let mut n = DepthNormalizer::new(NormalizerOptions::default());
        let raw = ramp(64, 4, 10.0, -3.0);
        let out = n.normalize(&grey(64, 4, 100), &raw);
        assert_eq!((out.width, out.height), (64, 4));
        assert!(out.data.iter().all(|v| (0.0..=1.0).contains(v)));
        assert_eq!(out.get(0, 0), 0.0);
        assert_eq!(out.get(63, 3), 1.0);
        // Larger raw = nearer = larger output.
        assert!(out.get(40, 1) > out.get(20, 1));
    }

    #[test]
    fn flat_and_empty_maps_become_mid_depth() {
        let mut n = DepthNormalizer::new(NormalizerOptions::default());
        let flat = DepthMap::from_vec(8, 2, vec![3.0; 16]).expect("size");
        assert!(
            n.normalize(&grey(8, 2, 0), &flat)
                .data
                .iter()
                .all(|&v| v == 0.5)
        );
        let mut n = DepthNormalizer::new(NormalizerOptions::default());
        let nan = DepthMap::from_vec(8, 2, vec![f32::NAN; 16]).expect("size");
        assert!(
            n.normalize(&grey(8, 2, 0), &nan)
                .data
                .iter()
                .all(|&v| v == 0.5)
        );
        assert_eq!(n.state(), None);
    }

    #[test]
    fn static_scene_does_not_flicker() {
        let mut n = DepthNormalizer::new(NormalizerOptions::default());
        let frame = grey(64, 8, 90);
        let raw = ramp(64, 8, 5.0, 2.0);
        let first = n.normalize(&frame, &raw);
        for _ in 0..50 {
            assert_eq!(n.normalize(&frame, &raw), first);
        }
        assert_eq!(n.scene_cuts(), 0);
    }

    #[test]
    fn range_fluctuations_are_smoothed() {
        // A static scene where a small near object (5 % of the pixels) blinks in and out: the
        // 98th percentile jumps every frame. Per-frame normalisation makes the whole background
        // pump; the smoothed range keeps it nearly still, in both modes.
        let frame = grey(100, 20, 90);
        let blink = |on: bool| {
            let mut d = ramp(100, 20, 1.0, 0.0);
            if on {
                for v in &mut d.data[..100] {
                    *v = 3.0;
                }
            }
            d
        };
        for follow_scale in [true, false] {
            let opts = NormalizerOptions {
                follow_scale,
                ..Default::default()
            };
            let mut smooth = DepthNormalizer::new(opts);
            let mut per_frame = DepthNormalizer::new(NormalizerOptions { ema: 1.0, ..opts });
            let (mut a, mut b) = (Vec::new(), Vec::new());
            for i in 0..100 {
                let raw = blink(i % 2 == 1);
                // A background pixel's normalised depth.
                a.push(smooth.normalize(&frame, &raw).get(50, 10));
                b.push(per_frame.normalize(&frame, &raw).get(50, 10));
            }
            let swing = |v: &[f32]| {
                v[40..]
                    .windows(2)
                    .map(|w| (w[1] - w[0]).abs())
                    .fold(0.0f32, f32::max)
            };
            let (sa, sb) = (swing(&a), swing(&b));
            assert!(sb > 0.2, "follow {follow_scale}: per frame {sb}");
            assert!(
                sa < 0.2 * sb,
                "follow {follow_scale}: smoothed {sa} vs per frame {sb}"
            );
        }
    }

    #[test]
    fn model_scale_jitter_is_cancelled_when_following_the_scale() {
        // The model's scale and shift jitter by a few percent per frame on a static scene.
        let frame = grey(64, 8, 90);
        let swing = |follow_scale| {
            let opts = NormalizerOptions {
                follow_scale,
                ..Default::default()
            };
            let mut n = DepthNormalizer::new(opts);
            let mut v = Vec::new();
            for i in 0..100 {
                let j = ((i * 7919) % 101) as f32 / 100.0 - 0.5;
                let k = ((i * 104_729) % 97) as f32 / 96.0 - 0.5;
                v.push(
                    n.normalize(&frame, &ramp(64, 8, 1.0 + 0.06 * j, 0.04 * k))
                        .get(40, 4),
                );
            }
            v[20..]
                .windows(2)
                .map(|w| (w[1] - w[0]).abs())
                .fold(0.0f32, f32::max)
        };
        let (follow, raw) = (swing(true), swing(false));
        assert!(follow < 1e-4, "{follow}");
        assert!(raw > 0.01, "{raw}");
    }

    fn close(a: RangeState, b: RangeState) -> bool {
        let tol = 1e-4 * (1.0 + b.lo.abs() + b.hi.abs());
        (a.lo - b.lo).abs() < tol && (a.hi - b.hi).abs() < tol
    }

    #[test]
    fn scene_cut_resets_the_range() {
        let (dark, bright) = (grey(32, 8, 20), grey(32, 8, 230));
        // Shot B has a small near object (3 % of the frame): a different depth distribution.
        let shot_b = || {
            let mut d = ramp(32, 8, 1.0, 0.0);
            d.data[..8].fill(5.0);
            d
        };
        for follow_scale in [true, false] {
            let opts = NormalizerOptions {
                follow_scale,
                ..Default::default()
            };
            let mut n = DepthNormalizer::new(opts);
            for _ in 0..30 {
                n.normalize(&dark, &ramp(32, 8, 1.0, 0.0));
            }
            // New look: a cut, and shot B's own range at once.
            n.normalize(&bright, &shot_b());
            assert_eq!(n.scene_cuts(), 1);
            let want = range_of(&shot_b(), &opts);
            let got = n.state().expect("state");
            assert!(
                close(got, want),
                "follow {follow_scale}: {got:?} vs {want:?}"
            );
            // Same look: no cut, the range only moves by `ema` towards shot B's.
            let mut m = DepthNormalizer::new(opts);
            for _ in 0..30 {
                m.normalize(&dark, &ramp(32, 8, 1.0, 0.0));
            }
            m.normalize(&dark, &shot_b());
            assert_eq!(m.scene_cuts(), 0);
            let s = m.state().expect("state");
            assert!(
                s.hi < 0.5 * want.hi,
                "follow {follow_scale}: {s:?} vs {want:?}"
            );
        }
    }

    #[test]
    fn affine_changes_are_followed_at_once_when_following_the_scale() {
        let frame = grey(32, 8, 20);
        let mut n = DepthNormalizer::new(NormalizerOptions::default());
        for _ in 0..30 {
            n.normalize(&frame, &ramp(32, 8, 1.0, 0.0));
        }
        let a = n.normalize(&frame, &ramp(32, 8, 1.0, 0.0));
        let b = n.normalize(&frame, &ramp(32, 8, 100.0, 50.0));
        assert_eq!(n.scene_cuts(), 0);
        for (x, y) in a.data.iter().zip(&b.data) {
            assert!((x - y).abs() < 1e-4, "{x} vs {y}");
        }
    }

    #[test]
    fn seeding_uses_the_median_and_stops_at_cuts() {
        let f = grey(32, 8, 50);
        let other = grey(32, 8, 250);
        // Content changes: a small near object (3 % of the frame) of varying value.
        let raw = |near: f32| {
            let mut d = ramp(32, 8, 1.0, 0.0);
            d.data[..8].fill(near);
            d
        };
        let raws: Vec<DepthMap> = [2.0, 6.0, 3.0, 4.0, 100.0].map(raw).into();
        let frames = [&f, &f, &f, &f, &other];
        for follow_scale in [true, false] {
            let opts = NormalizerOptions {
                follow_scale,
                ..Default::default()
            };
            let seed = seed_state(frames.iter().copied().zip(raws.iter()), &opts).expect("seed");
            // The fifth frame is a new shot: the median is over near values 2, 6, 3, 4 -> 3.5.
            let want = range_of(&raw(3.5), &opts);
            assert!(
                close(seed, want),
                "follow {follow_scale}: {seed:?} vs {want:?}"
            );
            let n = DepthNormalizer::with_state(opts, seed);
            assert_eq!(n.state(), Some(seed));
        }
        // Scale jitter does not leak into the seed when following the scale.
        let opts = NormalizerOptions::default();
        let scaled: Vec<DepthMap> = [1.0, 3.0, 0.5].map(|s| ramp(32, 8, s, 0.0)).into();
        let seed = seed_state([&f; 3].into_iter().zip(scaled.iter()), &opts).expect("seed");
        assert!(close(seed, range_of(&scaled[0], &opts)), "{seed:?}");
        assert_eq!(seed_state(std::iter::empty(), &opts), None);
        assert_eq!(
            median_range(&[
                RangeState { lo: 1.0, hi: 2.0 },
                RangeState { lo: 3.0, hi: 6.0 }
            ]),
            Some(RangeState { lo: 2.0, hi: 4.0 })
        );
    }

    #[test]
    fn options_are_checked_and_clamped() {
        assert!(NormalizerOptions::default().check().is_ok());
        for bad in [
            NormalizerOptions {
                ema: 0.0,
                ..Default::default()
            },
            NormalizerOptions {
                low_percentile: 60.0,
                high_percentile: 40.0,
                ..Default::default()
            },
            NormalizerOptions {
                scene_cut_threshold: f32::NAN,
                ..Default::default()
            },
        ] {
            assert!(bad.check().is_err(), "{bad:?}");
            let s = *DepthNormalizer::new(bad).options();
            assert!(s.check().is_ok(), "{s:?}");
        }
    }
}
