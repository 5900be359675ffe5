//! Stereo formats: pack a left/right [`StereoPair`] into one frame for an ordinary video file.
//!
//! | format | output size | layout |
//! |---|---|---|
//! | `anaglyph` | `w x h` | one image for red/cyan glasses ([`AnaglyphMethod`], Dubois by default) |
//! | `sbs` | `2w x h` | full side-by-side: `[left \| right]` |
//! | `hsbs` | `w x h` | half side-by-side: each view squeezed to half width (pairs of columns averaged) |
//! | `tab` | `w x h` | top-and-bottom: each view squeezed to half height, left on top |
//!
//! Output sides are always even (H.264 with 4:2:0 chroma needs that): an odd input side loses its
//! last column or row. Frames from [`stereospot_media::FrameReader`] are always even, so this only
//! matters for callers with odd hand-made frames.
//!
//! # Anaglyph colour space
//!
//! Dubois's matrices come from a least-squares projection in CIE XYZ of the light the display
//! emits through each filter (E. Dubois, "A projection method to generate anaglyph stereo
//! images", ICASSP 2001), so they act on *linear* RGB. We therefore decode the sRGB transfer curve
//! (to 16-bit linear light), apply the matrices in fixed point (each input code's contribution is
//! precomputed, so a pixel costs six table reads and a few additions), clamp and re-encode (a
//! 4096-entry table): within one 8-bit code of the exact computation (tested). Applying them to
//! gamma-encoded values, as many tools do, mixes the channels in the wrong proportions wherever
//! they differ. The other methods (colour, half-colour, grey) only select or
//! mix channels for each eye, which is conventionally done on the encoded values and is what
//! viewers expect from those names, so they work in gamma space; their luma uses the BT.709
//! weights because the pipeline's video is BT.709.

use std::fmt;
use std::str::FromStr;
use std::sync::LazyLock;

use rayon::prelude::*;

use crate::synth::StereoPair;
use crate::{Result, RgbFrame, StereoError};

/// Dubois's least-squares red/cyan matrix for the left view (rows: output R, G, B; columns: input
/// R, G, B; linear RGB).
///
/// Source: Eric Dubois, "Conversion of a Stereo Pair to Anaglyph with the Least-Squares Projection
/// Method", March 2009, and his how-to `LeastSquaresHowToPhotoshop.pdf`
/// (<http://www.site.uottawa.ca/~edubois/anaglyph/>), red-cyan glasses on an LCD.
pub const DUBOIS_RED_CYAN_LEFT: [[f32; 3]; 3] = [
    [0.437, 0.449, 0.164],
    [-0.062, -0.062, -0.024],
    [-0.048, -0.050, -0.017],
];

/// Dubois's least-squares red/cyan matrix for the right view (same source and layout as
/// [`DUBOIS_RED_CYAN_LEFT`]).
pub const DUBOIS_RED_CYAN_RIGHT: [[f32; 3]; 3] = [
    [-0.011, -0.032, -0.007],
    [0.377, 0.761, 0.009],
    [-0.026, -0.093, 1.234],
];

/// How an anaglyph mixes the two views (red filter on the left eye, cyan on the right).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum AnaglyphMethod {
    /// Dubois's least-squares projection: the least retinal rivalry and ghosting of the four.
    #[default]
    Dubois,
    /// Red from the left view, green and blue from the right one: full colour, more rivalry.
    Color,
    /// Red from the left view's luma, green and blue from the right one.
    HalfColor,
    /// Red from the left view's luma, green and blue from the right view's luma.
    Gray,
}

impl AnaglyphMethod {
    /// Every method, in a stable order.
    pub const ALL: [AnaglyphMethod; 4] = [
        AnaglyphMethod::Dubois,
        AnaglyphMethod::Color,
        AnaglyphMethod::HalfColor,
        AnaglyphMethod::Gray,
    ];

    /// The name used on the wire and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            AnaglyphMethod::Dubois => "dubois",
            AnaglyphMethod::Color => "color",
            AnaglyphMethod::HalfColor => "half-color",
            AnaglyphMethod::Gray => "gray",
        }
    }
}

impl fmt::Display for AnaglyphMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AnaglyphMethod {
    type Err = StereoError;

    fn from_str(s: &str) -> Result<Self> {
        AnaglyphMethod::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| {
                StereoError::InvalidArgument(format!(
                    "unknown anaglyph method {s:?}: expected dubois, color, half-color or gray"
                ))
            })
    }
}

/// How the two views are packed into one output frame (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StereoFormat {
    /// One image for red/cyan glasses.
    Anaglyph(AnaglyphMethod),
    /// Full side-by-side, double width.
    Sbs,
    /// Half side-by-side, input width.
    Hsbs,
    /// Top-and-bottom (half height each), left on top.
    Tab,
}

impl Default for StereoFormat {
    /// Dubois anaglyph, the original system's default mode.
    fn default() -> Self {
        StereoFormat::Anaglyph(AnaglyphMethod::Dubois)
    }
}

impl StereoFormat {
    /// Every format, anaglyph methods first, in a stable order.
    pub const ALL: [StereoFormat; 7] = [
        StereoFormat::Anaglyph(AnaglyphMethod::Dubois),
        StereoFormat::Anaglyph(AnaglyphMethod::Color),
        StereoFormat::Anaglyph(AnaglyphMethod::HalfColor),
        StereoFormat::Anaglyph(AnaglyphMethod::Gray),
        StereoFormat::Sbs,
        StereoFormat::Hsbs,
        StereoFormat::Tab,
    ];

    /// The size of the composed frame for views of `w x h` (both sides even, see the module docs).
    pub fn output_size(&self, w: u32, h: u32) -> (u32, u32) {
        match self {
            StereoFormat::Anaglyph(_) => (w & !1, h & !1),
            StereoFormat::Sbs => (2 * w, h & !1),
            StereoFormat::Hsbs => (2 * (w / 2), h & !1),
            StereoFormat::Tab => (w & !1, 2 * (h / 2)),
        }
    }
}

impl fmt::Display for StereoFormat {
    /// `anaglyph` (Dubois), `anaglyph:<method>` for the other methods, `sbs`, `hsbs`, `tab`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StereoFormat::Anaglyph(AnaglyphMethod::Dubois) => f.write_str("anaglyph"),
            StereoFormat::Anaglyph(m) => write!(f, "anaglyph:{m}"),
            StereoFormat::Sbs => f.write_str("sbs"),
            StereoFormat::Hsbs => f.write_str("hsbs"),
            StereoFormat::Tab => f.write_str("tab"),
        }
    }
}

impl FromStr for StereoFormat {
    type Err = StereoError;

    /// Parses what [`fmt::Display`] writes (`anaglyph:dubois` is accepted too).
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "anaglyph" => Ok(StereoFormat::Anaglyph(AnaglyphMethod::Dubois)),
            "sbs" => Ok(StereoFormat::Sbs),
            "hsbs" => Ok(StereoFormat::Hsbs),
            "tab" => Ok(StereoFormat::Tab),
            _ => match s.strip_prefix("anaglyph:") {
                Some(m) => Ok(StereoFormat::Anaglyph(m.parse()?)),
                None => Err(StereoError::InvalidArgument(format!(
                    "unknown stereo format {s:?}: expected anaglyph, sbs, hsbs or tab"
                ))),
            },
        }
    }
}

/// Packs `pair` into a new frame; see [`compose_into`].
pub fn compose(pair: &StereoPair, format: StereoFormat) -> Result<RgbFrame> {
    let mut out = RgbFrame::new(0, 0);
    compose_into(pair, format, &mut out)?;
    Ok(out)
}

/// Packs `pair` into `out`, resizing it when needed (its allocation is reused when large
/// enough). `out.index` is set to the left view's.
///
/// # Errors
///
/// [`StereoError::InvalidArgument`] when the views differ in size, a buffer does not match its
/// size, or a view is smaller than 2x2.
pub fn compose_into(pair: &StereoPair, format: StereoFormat, out: &mut RgbFrame) -> Result<()> {
    let (l, r) = (&pair.left, &pair.right);
    if (l.width, l.height) != (r.width, r.height) {
        return Err(StereoError::InvalidArgument(format!(
            "left view is {}x{}, right view is {}x{}",
            l.width, l.height, r.width, r.height
        )));
    }
    for (name, v) in [("left", l), ("right", r)] {
        if v.data.len() != v.width as usize * v.height as usize * 3 {
            return Err(StereoError::InvalidArgument(format!(
                "{name} view has {} bytes, expected {} for {}x{} RGB24",
                v.data.len(),
                v.width as usize * v.height as usize * 3,
                v.width,
                v.height
            )));
        }
    }
    size_output(format, (l.width, l.height), l.index, out)?;
    let (ow, oh) = (out.width, out.height);

    let row = l.width as usize * 3;
    let out_row = ow as usize * 3;
    let rows = out.data.par_chunks_exact_mut(out_row).enumerate();
    match format {
        StereoFormat::Tab => {
            let half = oh as usize / 2;
            rows.for_each(|(y, o)| {
                let (v, sy) = if y < half { (l, y) } else { (r, y - half) };
                tab_row(
                    &v.data[2 * sy * row..][..row],
                    &v.data[(2 * sy + 1) * row..][..row],
                    o,
                );
            });
        }
        _ => rows.for_each(|(y, o)| {
            compose_row(
                format,
                &l.data[y * row..][..row],
                &r.data[y * row..][..row],
                o,
            );
        }),
    }
    Ok(())
}

/// Checks that views of `w x h` can be composed (2x2 at least) and gives `out` the size of
/// `format`'s output for them, and `index`.
pub(crate) fn size_output(
    format: StereoFormat,
    (w, h): (u32, u32),
    index: u64,
    out: &mut RgbFrame,
) -> Result<()> {
    if w < 2 || h < 2 {
        return Err(StereoError::InvalidArgument(format!(
            "views of {w}x{h} are too small to compose"
        )));
    }
    let (ow, oh) = format.output_size(w, h);
    out.width = ow;
    out.height = oh;
    out.index = index;
    out.data.resize(ow as usize * oh as usize * 3, 0);
    Ok(())
}

/// Composes one output row of a side-by-side or anaglyph `format` from the views' rows `a`
/// (left) and `b` (right), RGB24 of the views' width; `o` is the output row
/// ([`StereoFormat::output_size`]'s width). Top-and-bottom takes two rows of one view: see
/// [`tab_row`].
#[inline(always)]
pub(crate) fn compose_row(format: StereoFormat, a: &[u8], b: &[u8], o: &mut [u8]) {
    let row = a.len();
    match format {
        StereoFormat::Anaglyph(method) => {
            let n = o.len();
            anaglyph_row(method, &a[..n], &b[..n], o);
        }
        StereoFormat::Sbs => {
            o[..row].copy_from_slice(a);
            o[row..].copy_from_slice(b);
        }
        StereoFormat::Hsbs => {
            let (ol, or) = o.split_at_mut(o.len() / 2);
            squeeze_columns(a, ol);
            squeeze_columns(b, or);
        }
        // Not reached: callers send top-and-bottom rows to `tab_row`.
        StereoFormat::Tab => tab_row(a, b, o),
    }
}

/// One top-and-bottom output row: the mean of two consecutive rows `a` and `b` of one view
/// (the output row may be one pixel narrower than the view).
#[inline(always)]
pub(crate) fn tab_row(a: &[u8], b: &[u8], o: &mut [u8]) {
    for ((o, &a), &b) in o.iter_mut().zip(a).zip(b) {
        *o = avg(a, b);
    }
}

/// Rounded mean of two bytes.
#[inline(always)]
fn avg(a: u8, b: u8) -> u8 {
    ((u16::from(a) + u16::from(b) + 1) >> 1) as u8
}

/// Halves a row's width by averaging pairs of pixels (`out` has `src.len() / 6` pixels).
#[inline(always)]
fn squeeze_columns(src: &[u8], out: &mut [u8]) {
    for (o, s) in out.chunks_exact_mut(3).zip(src.chunks_exact(6)) {
        o[0] = avg(s[0], s[3]);
        o[1] = avg(s[1], s[4]);
        o[2] = avg(s[2], s[5]);
    }
}

/// BT.709 luma of gamma-encoded RGB, in 8-bit fixed point (weights sum to 256).
#[inline(always)]
fn luma(p: &[u8]) -> u8 {
    ((54 * u32::from(p[0]) + 183 * u32::from(p[1]) + 19 * u32::from(p[2]) + 128) >> 8) as u8
}

/// Fixed-point bits of the Dubois coefficients.
const COEF_BITS: u32 = 12;
/// Bits of the linear-light index into [`FROM_LINEAR`].
const INDEX_BITS: u32 = 12;

/// sRGB decoding, 8-bit code to linear light in 16-bit fixed point (1.0 = 65535).
static TO_LINEAR: LazyLock<[i32; 256]> = LazyLock::new(|| {
    let mut t = [0; 256];
    for (i, v) in t.iter_mut().enumerate() {
        *v = (srgb_to_linear(i as f32 / 255.0) * 65535.0).round() as i32;
    }
    t
});

/// sRGB encoding: linear light as a [`INDEX_BITS`]-bit index (the Dubois sum shifted right by
/// 16, so index `i` is linear `i * 65536 / (65535 * 4096)`) to 8-bit code.
static FROM_LINEAR: LazyLock<Box<[u8; 1 << INDEX_BITS]>> = LazyLock::new(|| {
    let mut t = Box::new([0u8; 1 << INDEX_BITS]);
    for (i, e) in t.iter_mut().enumerate() {
        let lin = i as f64 * 65536.0 / (65535.0 * (1u32 << COEF_BITS) as f64);
        let v = linear_to_srgb(lin.min(1.0) as f32);
        *e = (v * 255.0).round().clamp(0.0, 255.0) as u8;
    }
    t
});

/// The Dubois matrices in fixed point, left and right side by side per output channel.
fn dubois_fixed() -> [[i32; 6]; 3] {
    let q = |v: f32| (v * (1u32 << COEF_BITS) as f32).round() as i32;
    let (l, r) = (DUBOIS_RED_CYAN_LEFT, DUBOIS_RED_CYAN_RIGHT);
    [0, 1, 2].map(|c| {
        [
            q(l[c][0]),
            q(l[c][1]),
            q(l[c][2]),
            q(r[c][0]),
            q(r[c][1]),
            q(r[c][2]),
        ]
    })
}

/// Per input channel (left R, G, B, right R, G, B) and 8-bit code: its contribution to the
/// output R, G, B sums (linear light times the fixed-point coefficient; the fourth lane pads to
/// 16 bytes). The first table also carries the rounding of [`encode`]'s shift.
static DUBOIS_TABLES: LazyLock<Box<DuboisTables>> = LazyLock::new(|| {
    let m = dubois_fixed();
    let lin = &*TO_LINEAR;
    let mut t = Box::new([[[0i32; 4]; 256]; 6]);
    for (k, table) in t.iter_mut().enumerate() {
        for (v, e) in table.iter_mut().enumerate() {
            let round = if k == 0 { 1 << 15 } else { 0 };
            *e = [
                m[0][k] * lin[v] + round,
                m[1][k] * lin[v] + round,
                m[2][k] * lin[v] + round,
                0,
            ];
        }
    }
    t
});

/// The sRGB transfer function's inverse (IEC 61966-2-1).
pub(crate) fn srgb_to_linear(v: f32) -> f32 {
    if v <= 0.04045 {
        v / 12.92
    } else {
        ((v + 0.055) / 1.055).powf(2.4)
    }
}

/// The sRGB transfer function (IEC 61966-2-1).
pub(crate) fn linear_to_srgb(v: f32) -> f32 {
    if v <= 0.003_130_8 {
        v * 12.92
    } else {
        1.055 * v.powf(1.0 / 2.4) - 0.055
    }
}

/// Encodes a Dubois sum (linear light times `65535 << COEF_BITS`, rounding already added).
#[inline(always)]
fn encode(sum: i32, table: &[u8; 1 << INDEX_BITS]) -> u8 {
    let i = (sum >> 16).clamp(0, (1 << INDEX_BITS) - 1);
    table[i as usize]
}

/// The Dubois tables: see [`DUBOIS_TABLES`].
type DuboisTables = [[[i32; 4]; 256]; 6];

/// One Dubois output pixel (`o`, 3 bytes) from a left and a right pixel's R, G, B codes.
#[inline(always)]
fn dubois_pixel(
    t: &DuboisTables,
    enc: &[u8; 1 << INDEX_BITS],
    a: [usize; 3],
    b: [usize; 3],
    o: &mut [u8],
) {
    let add = |p: [i32; 4], q: [i32; 4]| [p[0] + q[0], p[1] + q[1], p[2] + q[2], p[3] + q[3]];
    let l = add(add(t[0][a[0]], t[1][a[1]]), t[2][a[2]]);
    let r = add(add(t[3][b[0]], t[4][b[1]]), t[5][b[2]]);
    let sum = add(l, r);
    o[0] = encode(sum[0], enc);
    o[1] = encode(sum[1], enc);
    o[2] = encode(sum[2], enc);
}

/// A Dubois anaglyph row straight from the views' packed rows (`0x..BBGGRR` per pixel, top byte
/// ignored, as the view synthesis keeps them): the same bytes as unpacking both rows to RGB24
/// and composing them, without the unpacking.
#[inline(always)]
pub(crate) fn dubois_packed_row(a: &[u32], b: &[u32], o: &mut [u8]) {
    let (t, enc) = (&*DUBOIS_TABLES, &**FROM_LINEAR);
    let px = |p: u32| {
        [
            (p & 0xFF) as usize,
            (p >> 8 & 0xFF) as usize,
            (p >> 16 & 0xFF) as usize,
        ]
    };
    for ((o, &a), &b) in o.chunks_exact_mut(3).zip(a).zip(b) {
        dubois_pixel(t, enc, px(a), px(b), o);
    }
}

#[inline(always)]
fn anaglyph_row(method: AnaglyphMethod, a: &[u8], b: &[u8], o: &mut [u8]) {
    match method {
        AnaglyphMethod::Dubois => {
            let (t, enc) = (&*DUBOIS_TABLES, &**FROM_LINEAR);
            for ((o, a), b) in o
                .chunks_exact_mut(3)
                .zip(a.chunks_exact(3))
                .zip(b.chunks_exact(3))
            {
                let px = |p: &[u8]| [p[0] as usize, p[1] as usize, p[2] as usize];
                dubois_pixel(t, enc, px(a), px(b), o);
            }
        }
        AnaglyphMethod::Color => {
            for ((o, a), b) in o
                .chunks_exact_mut(3)
                .zip(a.chunks_exact(3))
                .zip(b.chunks_exact(3))
            {
                o[0] = a[0];
                o[1] = b[1];
                o[2] = b[2];
            }
        }
        AnaglyphMethod::HalfColor => {
            for ((o, a), b) in o
                .chunks_exact_mut(3)
                .zip(a.chunks_exact(3))
                .zip(b.chunks_exact(3))
            {
                o[0] = luma(a);
                o[1] = b[1];
                o[2] = b[2];
            }
        }
        AnaglyphMethod::Gray => {
            for ((o, a), b) in o
                .chunks_exact_mut(3)
                .zip(a.chunks_exact(3))
                .zip(b.chunks_exact(3))
            {
                let g = luma(b);
                o[0] = luma(a);
                o[1] = g;
                o[2] = g;
            }
        }
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

    /// A view whose pixel encodes its position: R = x, G = y, B = tag.
    fn coords(w: u32, h: u32, tag: u8) -> RgbFrame {
        let mut f = RgbFrame::new(w, h);
        for y in 0..h {
            for x in 0..w {
                let i = ((y * w + x) * 3) as usize;
                f.data[i..i + 3].copy_from_slice(&[x as u8, y as u8, tag]);
            }
        }
        f
    }

    fn pair(l: RgbFrame, r: RgbFrame) -> StereoPair {
        StereoPair { left: l, right: r }
    }

    #[test]
    fn names_round_trip() {
        for m in AnaglyphMethod::ALL {
            assert_eq!(m.to_string().parse::<AnaglyphMethod>().expect("parse"), m);
            let f = StereoFormat::Anaglyph(m);
            assert_eq!(f.to_string().parse::<StereoFormat>().expect("parse"), f);
        }
        for (s, f) in [
            ("anaglyph", StereoFormat::Anaglyph(AnaglyphMethod::Dubois)),
            ("sbs", StereoFormat::Sbs),
            ("hsbs", StereoFormat::Hsbs),
            ("tab", StereoFormat::Tab),
        ] {
            assert_eq!(s.parse::<StereoFormat>().expect("parse"), f);
            assert_eq!(f.to_string(), s);
        }
        assert_eq!(
            "anaglyph:half-color"
                .parse::<StereoFormat>()
                .expect("parse"),
            StereoFormat::Anaglyph(AnaglyphMethod::HalfColor)
        );
        assert_eq!(AnaglyphMethod::default(), AnaglyphMethod::Dubois);
        assert_eq!(
            StereoFormat::default(),
            StereoFormat::Anaglyph(AnaglyphMethod::Dubois)
        );
        for bad in ["", "SBS", "anaglyph:", "anaglyph:red", "3d"] {
            let e = bad.parse::<StereoFormat>().expect_err(bad);
            assert!(matches!(e, StereoError::InvalidArgument(_)), "{bad}: {e}");
        }
    }

    #[test]
    fn output_sizes_are_even() {
        let a = StereoFormat::Anaglyph(AnaglyphMethod::Gray);
        assert_eq!(a.output_size(1920, 1080), (1920, 1080));
        assert_eq!(StereoFormat::Sbs.output_size(1920, 1080), (3840, 1080));
        assert_eq!(StereoFormat::Hsbs.output_size(1920, 1080), (1920, 1080));
        assert_eq!(StereoFormat::Tab.output_size(1920, 1080), (1920, 1080));
        for f in [a, StereoFormat::Sbs, StereoFormat::Hsbs, StereoFormat::Tab] {
            for (w, h) in [(7, 5), (2, 2), (641, 361), (1280, 720)] {
                let (ow, oh) = f.output_size(w, h);
                assert!(
                    ow % 2 == 0 && oh % 2 == 0 && ow > 0 && oh > 0,
                    "{f} {w}x{h}"
                );
                let out = compose(&pair(coords(w, h, 1), coords(w, h, 2)), f).expect("compose");
                assert_eq!((out.width, out.height), (ow, oh), "{f} {w}x{h}");
                assert_eq!(out.data.len(), (ow * oh * 3) as usize);
            }
        }
    }

    #[test]
    fn sbs_puts_left_then_right_at_full_size() {
        let (l, r) = (coords(6, 4, 1), coords(6, 4, 2));
        let out = compose(&pair(l.clone(), r.clone()), StereoFormat::Sbs).expect("sbs");
        for y in 0..4 {
            for x in 0..6 {
                assert_eq!(out.pixel(x, y), l.pixel(x, y));
                assert_eq!(out.pixel(x + 6, y), r.pixel(x, y));
            }
        }
    }

    #[test]
    fn hsbs_averages_pairs_of_columns() {
        let (l, r) = (coords(8, 2, 10), coords(8, 2, 20));
        let out = compose(&pair(l, r), StereoFormat::Hsbs).expect("hsbs");
        assert_eq!((out.width, out.height), (8, 2));
        for y in 0..2u32 {
            for x in 0..4u32 {
                // Columns 2x and 2x+1 average to 2x + 0.5, rounded up.
                let sx = (2 * x + 1) as u8;
                assert_eq!(out.pixel(x, y), [sx, y as u8, 10]);
                assert_eq!(out.pixel(x + 4, y), [sx, y as u8, 20]);
            }
        }
    }

    #[test]
    fn tab_averages_pairs_of_rows_left_on_top() {
        let (l, r) = (coords(4, 6, 10), coords(4, 6, 20));
        let out = compose(&pair(l, r), StereoFormat::Tab).expect("tab");
        assert_eq!((out.width, out.height), (4, 6));
        for y in 0..3u32 {
            for x in 0..4u32 {
                let sy = (2 * y + 1) as u8;
                assert_eq!(out.pixel(x, y), [x as u8, sy, 10]);
                assert_eq!(out.pixel(x, y + 3), [x as u8, sy, 20]);
            }
        }
    }

    #[test]
    fn simple_anaglyphs_take_the_right_channels() {
        let p = pair(solid(4, 2, [200, 100, 50]), solid(4, 2, [10, 120, 240]));
        let get = |m| compose(&p, StereoFormat::Anaglyph(m)).expect("anaglyph");
        let luma_l = ((54 * 200 + 183 * 100 + 19 * 50 + 128) >> 8) as u8;
        let luma_r = ((54 * 10 + 183 * 120 + 19 * 240 + 128) >> 8) as u8;
        assert_eq!(get(AnaglyphMethod::Color).pixel(3, 1), [200, 120, 240]);
        assert_eq!(
            get(AnaglyphMethod::HalfColor).pixel(3, 1),
            [luma_l, 120, 240]
        );
        assert_eq!(
            get(AnaglyphMethod::Gray).pixel(3, 1),
            [luma_l, luma_r, luma_r]
        );
    }

    #[test]
    fn dubois_matrices_are_the_published_ones() {
        // Dubois, red-cyan, LCD (LeastSquaresHowToPhotoshop.pdf), in thousandths.
        let left = [[437, 449, 164], [-62, -62, -24], [-48, -50, -17]];
        let right = [[-11, -32, -7], [377, 761, 9], [-26, -93, 1234]];
        for (m, published) in [(DUBOIS_RED_CYAN_LEFT, left), (DUBOIS_RED_CYAN_RIGHT, right)] {
            for (row, prow) in m.iter().zip(published) {
                for (&v, p) in row.iter().zip(prow) {
                    assert_eq!((v * 1000.0).round() as i32, p);
                }
            }
        }
        // Their sums per output channel are ~1: grey stays grey.
        for c in 0..3 {
            let s: f32 = (0..3)
                .map(|k| DUBOIS_RED_CYAN_LEFT[c][k] + DUBOIS_RED_CYAN_RIGHT[c][k])
                .sum();
            assert!((s - 1.0).abs() < 0.002, "channel {c}: {s}");
        }
    }

    /// The anaglyph pixel for one left/right pixel, computed independently in f64.
    fn dubois_reference(a: [u8; 3], b: [u8; 3]) -> [u8; 3] {
        let lin = |v: u8| {
            let v = f64::from(v) / 255.0;
            if v <= 0.04045 {
                v / 12.92
            } else {
                ((v + 0.055) / 1.055).powf(2.4)
            }
        };
        let enc = |v: f64| {
            let v = v.clamp(0.0, 1.0);
            let s = if v <= 0.0031308 {
                v * 12.92
            } else {
                1.055 * v.powf(1.0 / 2.4) - 0.055
            };
            (s * 255.0).round() as u8
        };
        let mut out = [0; 3];
        for c in 0..3 {
            let v: f64 = (0..3)
                .map(|k| {
                    f64::from(DUBOIS_RED_CYAN_LEFT[c][k]) * lin(a[k])
                        + f64::from(DUBOIS_RED_CYAN_RIGHT[c][k]) * lin(b[k])
                })
                .sum();
            out[c] = enc(v);
        }
        out
    }

    #[test]
    fn dubois_works_in_linear_light() {
        let cases = [
            ([255, 255, 255], [0, 0, 0]),
            ([0, 0, 0], [255, 255, 255]),
            ([128, 128, 128], [128, 128, 128]),
            ([255, 0, 0], [0, 0, 0]),
            ([0, 0, 0], [0, 0, 255]),
            ([200, 100, 50], [10, 120, 240]),
            ([3, 7, 1], [2, 9, 4]),
        ];
        for (a, b) in cases {
            let out = compose(
                &pair(solid(2, 2, a), solid(2, 2, b)),
                StereoFormat::Anaglyph(AnaglyphMethod::Dubois),
            )
            .expect("dubois");
            let got = out.pixel(1, 1);
            let want = dubois_reference(a, b);
            for c in 0..3 {
                assert!(
                    got[c].abs_diff(want[c]) <= 1,
                    "{a:?}/{b:?}: {got:?} vs {want:?}"
                );
            }
        }
        // Red filter sees the left view, cyan the right one.
        let only_left = compose(
            &pair(solid(2, 2, [255; 3]), solid(2, 2, [0; 3])),
            StereoFormat::default(),
        )
        .expect("dubois");
        assert_eq!(only_left.pixel(0, 0), [255, 0, 0]);
        let only_right = compose(
            &pair(solid(2, 2, [0; 3]), solid(2, 2, [255; 3])),
            StereoFormat::default(),
        )
        .expect("dubois");
        assert_eq!(only_right.pixel(0, 0), [0, 255, 255]);
        // Mid grey in both views stays mid grey: each output channel's weights sum to ~1.
        let grey = compose(
            &pair(solid(2, 2, [128; 3]), solid(2, 2, [128; 3])),
            StereoFormat::default(),
        )
        .expect("dubois");
        for c in grey.pixel(0, 0) {
            assert!(c.abs_diff(128) <= 1, "{c}");
        }
    }

    #[test]
    fn transfer_tables_round_trip() {
        // A code through linear light and back (as through a matrix of weight 1) is unchanged.
        for i in 0..=255u8 {
            let sum = (TO_LINEAR[i as usize] << COEF_BITS) + (1 << 15);
            assert_eq!(encode(sum, &FROM_LINEAR), i);
        }
    }

    #[test]
    fn bad_pairs_are_refused() {
        let e =
            compose(&pair(coords(4, 4, 0), coords(6, 4, 0)), StereoFormat::Sbs).expect_err("sizes");
        assert!(matches!(e, StereoError::InvalidArgument(_)));
        let e =
            compose(&pair(coords(1, 4, 0), coords(1, 4, 0)), StereoFormat::Sbs).expect_err("tiny");
        assert!(matches!(e, StereoError::InvalidArgument(_)));
        let mut short = coords(4, 4, 0);
        short.data.pop();
        let e = compose(&pair(short, coords(4, 4, 0)), StereoFormat::Tab).expect_err("bytes");
        assert!(matches!(e, StereoError::InvalidArgument(_)));
    }

    #[test]
    fn compose_into_reuses_and_resizes_the_output() {
        let p = pair(coords(8, 4, 1), coords(8, 4, 2));
        let mut out = RgbFrame::new(100, 100);
        let cap = out.data.capacity();
        compose_into(&p, StereoFormat::Sbs, &mut out).expect("sbs");
        assert_eq!((out.width, out.height), (16, 4));
        assert_eq!(out.data.capacity(), cap);
        assert_eq!(out, compose(&p, StereoFormat::Sbs).expect("sbs"));
    }
}
