//! Colour conversion between planar 8-bit YUV (4:2:0 and 4:4:4) and packed RGB24, in Rust.
//!
//! The kernels are fixed-point integer code written so that the compiler vectorises it on the
//! baseline x86-64 target (SSE2, 8 lanes of 16 bits): every product is a 16x16-bit multiply
//! whose high half is kept (`pmulhw`/`pmulhuw`), the loops walk `chunks_exact` slices without
//! bounds checks inside, and rows are spread over rayon's threads.
//!
//! Precision (checked against the floating-point formulas in the unit tests): the intermediate
//! sums carry 5 (YUV to RGB), 8 (luma) and 6 (chroma) fractional bits, so results are the
//! correctly rounded value except within a few hundredths of a level of a rounding tie, and
//! never more than one level off.
//!
//! Chroma siting: 4:2:0 chroma is taken to sit at the centre of its 2x2 luma block (JPEG, and
//! what ffmpeg's scaler assumes by default). The writer produces exactly that (each chroma
//! sample is the average of its 2x2 block), and the reader interpolates it back bilinearly
//! (weights 9/16, 3/16, 3/16, 1/16 of the four nearest chroma samples), with the samples at the
//! picture's edges repeated outwards.

use rayon::prelude::*;

use crate::error::{MediaError, Result};
use crate::frames::RgbFrame;
use crate::multiversion;
use crate::simd::Isa;

/// The YUV <-> RGB matrix (ffprobe's `color_space`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum YuvMatrix {
    /// ITU-R BT.601 (`bt470bg`, `smpte170m`): standard-definition video, JPEG.
    Bt601,
    /// ITU-R BT.709: HD video, and what the writer produces.
    #[default]
    Bt709,
    /// ITU-R BT.2020 non-constant luminance (`bt2020nc`).
    Bt2020,
}

impl YuvMatrix {
    /// The luma weights of red and blue (Kr, Kb); green's is 1 - Kr - Kb.
    pub const fn kr_kb(self) -> (f64, f64) {
        match self {
            YuvMatrix::Bt601 => (0.299, 0.114),
            YuvMatrix::Bt709 => (0.2126, 0.0722),
            YuvMatrix::Bt2020 => (0.2627, 0.0593),
        }
    }

    /// The matrix of a stream from its `color_space` tag. Untagged (or unusable) streams get
    /// what players assume: BT.709 from 720 lines up, BT.601 below.
    pub fn from_tag(color_space: Option<&str>, height: u32) -> YuvMatrix {
        match color_space {
            Some("bt709") => YuvMatrix::Bt709,
            Some("bt470bg" | "smpte170m" | "fcc") => YuvMatrix::Bt601,
            Some("bt2020nc" | "bt2020c") => YuvMatrix::Bt2020,
            _ if height >= 720 => YuvMatrix::Bt709,
            _ => YuvMatrix::Bt601,
        }
    }

    /// The name ffmpeg's `scale` filter takes (`in_color_matrix`, `out_color_matrix`).
    pub fn scale_name(self) -> &'static str {
        match self {
            YuvMatrix::Bt601 => "bt601",
            YuvMatrix::Bt709 => "bt709",
            YuvMatrix::Bt2020 => "bt2020",
        }
    }

    /// The stream tag ffmpeg writes for it (`-colorspace`).
    pub fn tag(self) -> &'static str {
        match self {
            YuvMatrix::Bt601 => "smpte170m",
            YuvMatrix::Bt709 => "bt709",
            YuvMatrix::Bt2020 => "bt2020nc",
        }
    }
}

/// The YUV quantisation range (ffprobe's `color_range`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum YuvRange {
    /// "tv": luma 16-235, chroma 16-240. Almost all video; the default for untagged streams.
    #[default]
    Limited,
    /// "pc" (JPEG): every component 0-255.
    Full,
}

impl YuvRange {
    /// The range of a stream from its `color_range` tag and pixel format (`yuvj*` formats are
    /// full range whatever the tag says).
    pub fn from_tag(color_range: Option<&str>, pix_fmt: Option<&str>) -> YuvRange {
        if color_range == Some("pc") || pix_fmt.is_some_and(|p| p.starts_with("yuvj")) {
            YuvRange::Full
        } else {
            YuvRange::Limited
        }
    }

    /// ffmpeg's name: "tv" or "pc".
    pub fn tag(self) -> &'static str {
        match self {
            YuvRange::Limited => "tv",
            YuvRange::Full => "pc",
        }
    }

    /// (luma offset, luma scale, chroma scale): Y = offset + scale * Y', U = 128 + scale * Pb.
    const fn levels(self) -> (f64, f64, f64) {
        match self {
            YuvRange::Limited => (16.0, 219.0, 224.0),
            YuvRange::Full => (0.0, 255.0, 255.0),
        }
    }
}

/// Chroma resolution of planar YUV.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ChromaSubsampling {
    /// 4:2:0: one chroma sample per 2x2 block (`yuv420p`).
    #[default]
    Yuv420,
    /// 4:4:4: full chroma resolution (`yuv444p`).
    Yuv444,
}

impl ChromaSubsampling {
    /// Chroma plane size for a `width` x `height` picture (odd sizes round up in 4:2:0).
    pub fn chroma_size(self, width: usize, height: usize) -> (usize, usize) {
        match self {
            ChromaSubsampling::Yuv420 => (width.div_ceil(2), height.div_ceil(2)),
            ChromaSubsampling::Yuv444 => (width, height),
        }
    }

    /// ffmpeg's pixel format name.
    pub fn pix_fmt(self) -> &'static str {
        match self {
            ChromaSubsampling::Yuv420 => "yuv420p",
            ChromaSubsampling::Yuv444 => "yuv444p",
        }
    }
}

/// How a [`YuvFrame`]'s samples are laid out and what they mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct YuvFormat {
    /// Chroma resolution.
    pub subsampling: ChromaSubsampling,
    /// YUV <-> RGB matrix.
    pub matrix: YuvMatrix,
    /// Quantisation range.
    pub range: YuvRange,
}

impl YuvFormat {
    /// What [`crate::FrameWriter`] encodes: BT.709, limited range, with this subsampling.
    pub fn bt709(subsampling: ChromaSubsampling) -> YuvFormat {
        YuvFormat {
            subsampling,
            matrix: YuvMatrix::Bt709,
            range: YuvRange::Limited,
        }
    }
}

/// One frame of planar 8-bit YUV: rows top to bottom, no padding. Luma is `width * height`
/// bytes; each chroma plane is [`YuvFrame::chroma_size`] (half the width and height, rounded
/// up, in 4:2:0).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct YuvFrame {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Zero-based position in the stream (set by the reader).
    pub index: u64,
    /// Layout, matrix and range of the samples.
    pub format: YuvFormat,
    /// Luma (Y) plane.
    pub y: Vec<u8>,
    /// Blue-difference chroma (Cb, U) plane.
    pub u: Vec<u8>,
    /// Red-difference chroma (Cr, V) plane.
    pub v: Vec<u8>,
}

impl std::fmt::Debug for YuvFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("YuvFrame")
            .field("width", &self.width)
            .field("height", &self.height)
            .field("index", &self.index)
            .field("format", &self.format)
            .field("bytes", &(self.y.len() + self.u.len() + self.v.len()))
            .finish()
    }
}

impl YuvFrame {
    /// A black frame.
    pub fn new(width: u32, height: u32, format: YuvFormat) -> YuvFrame {
        let mut f = YuvFrame {
            width,
            height,
            index: 0,
            format,
            ..YuvFrame::default()
        };
        f.resize();
        let black = match format.range {
            YuvRange::Limited => 16,
            YuvRange::Full => 0,
        };
        f.y.fill(black);
        f.u.fill(128);
        f.v.fill(128);
        f
    }

    /// A frame of zero samples (cheaper than [`YuvFrame::new`] for a buffer about to be
    /// overwritten: the allocation comes zeroed).
    pub(crate) fn zeroed(width: u32, height: u32, format: YuvFormat) -> YuvFrame {
        let (w, h) = (width as usize, height as usize);
        let (cw, ch) = format.subsampling.chroma_size(w, h);
        YuvFrame {
            width,
            height,
            index: 0,
            format,
            y: vec![0; w * h],
            u: vec![0; cw * ch],
            v: vec![0; cw * ch],
        }
    }

    /// Width and height of each chroma plane.
    pub fn chroma_size(&self) -> (u32, u32) {
        let (w, h) = self
            .format
            .subsampling
            .chroma_size(self.width as usize, self.height as usize);
        (w as u32, h as u32)
    }

    /// Sizes the planes for the frame's width, height and subsampling (new samples are zero).
    pub(crate) fn resize(&mut self) {
        let (w, h) = (self.width as usize, self.height as usize);
        let (cw, ch) = self.format.subsampling.chroma_size(w, h);
        self.y.resize(w * h, 0);
        self.u.resize(cw * ch, 0);
        self.v.resize(cw * ch, 0);
    }

    /// Checks that the planes have the sizes the dimensions call for.
    pub fn check(&self) -> Result<()> {
        let (w, h) = (self.width as usize, self.height as usize);
        let (cw, ch) = self.format.subsampling.chroma_size(w, h);
        if self.y.len() != w * h || self.u.len() != cw * ch || self.v.len() != cw * ch {
            return Err(MediaError::InvalidArgument(format!(
                "{w}x{h} {} frame has planes of {}, {} and {} bytes, expected {}, {} and {}",
                self.format.subsampling.pix_fmt(),
                self.y.len(),
                self.u.len(),
                self.v.len(),
                w * h,
                cw * ch,
                cw * ch
            )));
        }
        Ok(())
    }

    /// Converts to RGB24 into `out` (reusing its buffer), with the frame's matrix and range and,
    /// for 4:2:0, bilinear chroma upsampling. `out.index` is set to the frame's.
    pub fn to_rgb_into(&self, out: &mut RgbFrame) -> Result<()> {
        self.check()?;
        out.width = self.width;
        out.height = self.height;
        out.index = self.index;
        out.data
            .resize(self.width as usize * self.height as usize * 3, 0);
        yuv_to_rgb(
            self.format.matrix,
            self.format.range,
            self.format.subsampling,
            (self.width as usize, self.height as usize),
            (&self.y, &self.u, &self.v),
            &mut out.data,
        );
        Ok(())
    }

    /// Converts to a new RGB24 frame.
    pub fn to_rgb(&self) -> Result<RgbFrame> {
        self.check()?;
        let mut out = RgbFrame::new(self.width, self.height);
        self.to_rgb_into(&mut out)?;
        Ok(out)
    }

    /// Converts an RGB24 frame (4:2:0 chroma is the average of each 2x2 block).
    pub fn from_rgb(frame: &RgbFrame, format: YuvFormat) -> Result<YuvFrame> {
        let mut out = YuvFrame::zeroed(frame.width, frame.height, format);
        out.set_from_rgb(frame)?;
        Ok(out)
    }

    /// Converts an RGB24 frame into this one, keeping its format and reusing its buffers.
    pub fn set_from_rgb(&mut self, frame: &RgbFrame) -> Result<()> {
        let (w, h) = (frame.width as usize, frame.height as usize);
        if frame.data.len() != w * h * 3 {
            return Err(MediaError::InvalidArgument(format!(
                "frame {} has {} bytes, expected {} for {w}x{h} RGB24",
                frame.index,
                frame.data.len(),
                w * h * 3
            )));
        }
        self.width = frame.width;
        self.height = frame.height;
        self.index = frame.index;
        self.resize();
        rgb_to_yuv(
            self.format.matrix,
            self.format.range,
            self.format.subsampling,
            (w, h),
            &frame.data,
            (&mut self.y, &mut self.u, &mut self.v),
        );
        Ok(())
    }
}

/// Floating-point YUV -> RGB (0..255, unrounded, unclamped): the reference the fixed-point
/// kernels are tested against.
pub fn yuv_to_rgb_f64(m: YuvMatrix, r: YuvRange, y: f64, u: f64, v: f64) -> [f64; 3] {
    let (kr, kb) = m.kr_kb();
    let kg = 1.0 - kr - kb;
    let (off, ys, cs) = r.levels();
    let yp = (y - off) / ys;
    let pb = (u - 128.0) / cs;
    let pr = (v - 128.0) / cs;
    let red = yp + 2.0 * (1.0 - kr) * pr;
    let blue = yp + 2.0 * (1.0 - kb) * pb;
    let green = (yp - kr * red - kb * blue) / kg;
    [red * 255.0, green * 255.0, blue * 255.0]
}

/// Floating-point RGB (0..255) -> YUV, unrounded: the reference for the writer's kernels.
pub fn rgb_to_yuv_f64(m: YuvMatrix, r: YuvRange, rgb: [f64; 3]) -> [f64; 3] {
    let (kr, kb) = m.kr_kb();
    let kg = 1.0 - kr - kb;
    let (off, ys, cs) = r.levels();
    let [red, green, blue] = rgb.map(|c| c / 255.0);
    let yp = kr * red + kg * green + kb * blue;
    let pb = (blue - yp) / (2.0 * (1.0 - kb));
    let pr = (red - yp) / (2.0 * (1.0 - kr));
    [off + ys * yp, 128.0 + cs * pb, 128.0 + cs * pr]
}

/// `x` rounded to the nearest integer, ties away from zero (`f64::round` as a `const fn`).
const fn round(x: f64) -> i32 {
    if x >= 0.0 {
        (x + 0.5) as i32
    } else {
        -((0.5 - x) as i32)
    }
}

/// Fixed-point YUV -> RGB coefficients.
///
/// Luma enters as `(Y - offset) << 7`, chroma as `(C16 - 2048) << 4` where `C16` is the
/// (interpolated) chroma sample times 16; the products' high halves are in 1/32 levels.
#[derive(Debug, Clone, Copy)]
struct Decoder {
    y_offset: i16,
    y_gain: i16,
    r_v: i16,
    g_u: i16,
    g_v: i16,
    b_u: i16,
}

/// Rounding constant of the decoder's 5 fractional bits: one half, plus one for the truncation
/// of the high-half products (each truncates by half a unit on average).
const DEC_ROUND: i16 = 16 + 1;

impl Decoder {
    const fn new(m: YuvMatrix, r: YuvRange) -> Decoder {
        let (kr, kb) = m.kr_kb();
        let kg = 1.0 - kr - kb;
        let (off, ys, cs) = r.levels();
        let c = 255.0 / cs;
        // Luma: ((Y - off) << 7) * k / 2^16 = (Y - off) * gain * 32 when k = gain * 2^14.
        // Chroma: ((C16 - 2048) << 4) * k / 2^16 = (C - 128) * coef * 32 when k = coef * 2^13.
        Decoder {
            y_offset: off as i16,
            y_gain: round(255.0 / ys * 16384.0) as i16,
            r_v: round(2.0 * (1.0 - kr) * c * 8192.0) as i16,
            g_u: round(-2.0 * (1.0 - kb) * kb / kg * c * 8192.0) as i16,
            g_v: round(-2.0 * (1.0 - kr) * kr / kg * c * 8192.0) as i16,
            b_u: round(2.0 * (1.0 - kb) * c * 8192.0) as i16,
        }
    }
}

/// Fixed-point RGB -> YUV coefficients.
///
/// Luma: components enter as `c << 8`, unsigned products' high halves in 1/256 levels.
/// Chroma: sums of four components (a 2x2 block, or one pixel times four) enter as `s << 5`,
/// signed products' high halves in 1/64 levels.
#[derive(Debug, Clone, Copy)]
struct Encoder {
    y_r: u16,
    y_g: u16,
    y_b: u16,
    y_add: u16,
    u_r: i16,
    u_g: i16,
    u_b: i16,
    v_r: i16,
    v_g: i16,
    v_b: i16,
}

/// Chroma's constant: 128 in 1/64 levels, plus rounding (one half, plus one for the three
/// truncated products).
const ENC_C_ADD: i16 = 128 * 64 + 32 + 1;

impl Encoder {
    const fn new(m: YuvMatrix, r: YuvRange) -> Encoder {
        let (kr, kb) = m.kr_kb();
        let kg = 1.0 - kr - kb;
        let (off, ys, cs) = r.levels();
        // Luma: (c << 8) * k / 2^16 = c * coef * 256 when k = coef * 2^16.
        let ly = ys / 255.0 * 65536.0;
        // Chroma: (s << 5) * k / 2^16 = (s / 4) * coef * 64 when k = coef * 2^15.
        let lc = cs / 255.0 * 32768.0;
        Encoder {
            y_r: round(kr * ly) as u16,
            y_g: round(kg * ly) as u16,
            y_b: round(kb * ly) as u16,
            // Offset, one half, and one for the three truncated products.
            y_add: (off as u16) * 256 + 128 + 1,
            u_r: round(-kr / (2.0 * (1.0 - kb)) * lc) as i16,
            u_g: round(-kg / (2.0 * (1.0 - kb)) * lc) as i16,
            u_b: round(0.5 * lc) as i16,
            v_r: round(0.5 * lc) as i16,
            v_g: round(-kg / (2.0 * (1.0 - kr)) * lc) as i16,
            v_b: round(-kb / (2.0 * (1.0 - kr)) * lc) as i16,
        }
    }
}

/// The coefficients of one (matrix, range) pair as compile-time constants. The kernels are
/// generic over the pair because LLVM only turns `(a as i32 * b as i32) >> 16` into a vector
/// 16-bit high multiply when it can see that both factors are 16-bit, which a coefficient
/// loaded at run time hides (the loop then runs several times slower).
struct Coefs<const M: u8, const R: u8>;

impl<const M: u8, const R: u8> Coefs<M, R> {
    const DEC: Decoder = Decoder::new(YuvMatrix::from_id(M), YuvRange::from_id(R));
    const ENC: Encoder = Encoder::new(YuvMatrix::from_id(M), YuvRange::from_id(R));
}

impl YuvMatrix {
    const fn from_id(id: u8) -> YuvMatrix {
        match id {
            0 => YuvMatrix::Bt601,
            1 => YuvMatrix::Bt709,
            _ => YuvMatrix::Bt2020,
        }
    }
}

impl YuvRange {
    const fn from_id(id: u8) -> YuvRange {
        match id {
            0 => YuvRange::Limited,
            _ => YuvRange::Full,
        }
    }
}

/// Calls `$f::<M, R>($args)` for the run-time matrix and range.
macro_rules! specialised {
    ($m:expr, $r:expr, $f:ident($($arg:expr),* $(,)?)) => {
        match ($m, $r) {
            (YuvMatrix::Bt601, YuvRange::Limited) => $f::<0, 0>($($arg),*),
            (YuvMatrix::Bt601, YuvRange::Full) => $f::<0, 1>($($arg),*),
            (YuvMatrix::Bt709, YuvRange::Limited) => $f::<1, 0>($($arg),*),
            (YuvMatrix::Bt709, YuvRange::Full) => $f::<1, 1>($($arg),*),
            (YuvMatrix::Bt2020, YuvRange::Limited) => $f::<2, 0>($($arg),*),
            (YuvMatrix::Bt2020, YuvRange::Full) => $f::<2, 1>($($arg),*),
        }
    };
}

/// Signed 16x16 multiply, high half (`pmulhw`).
#[inline(always)]
fn mulhs(a: i16, b: i16) -> i16 {
    ((i32::from(a) * i32::from(b)) >> 16) as i16
}

/// Unsigned 16x16 multiply, high half (`pmulhuw`).
#[inline(always)]
fn mulhu(a: u16, b: u16) -> u16 {
    ((u32::from(a) * u32::from(b)) >> 16) as u16
}

#[inline(always)]
fn clamp_u8(x: i16) -> u8 {
    x.clamp(0, 255) as u8
}

/// One row: luma `y`, per-pixel chroma `cu`/`cv` in the decoder's input scaling, RGB24 out.
#[inline(always)]
fn decode_row<const M: u8, const R: u8>(y: &[u8], cu: &[i16], cv: &[i16], out: &mut [u8]) {
    let k = Coefs::<M, R>::DEC;
    for (((o, &y), &u), &v) in out.chunks_exact_mut(3).zip(y).zip(cu).zip(cv) {
        let yt = mulhs((i16::from(y) - k.y_offset) << 7, k.y_gain) + DEC_ROUND;
        let r = yt + mulhs(v, k.r_v);
        let g = yt + mulhs(u, k.g_u) + mulhs(v, k.g_v);
        let b = yt + mulhs(u, k.b_u);
        o[0] = clamp_u8(r >> 5);
        o[1] = clamp_u8(g >> 5);
        o[2] = clamp_u8(b >> 5);
    }
}

/// Bilinear 2x upsampling of one chroma row (`cw` samples) for one output row: `near` is the
/// chroma row the output row lies in, `far` the neighbouring one on the output row's side.
/// `tmp` needs `cw + 2` entries; `out` gets `2 * cw` samples in the decoder's input scaling.
#[inline(always)]
fn upsample_row(near: &[u8], far: &[u8], tmp: &mut [i16], out: &mut [i16]) {
    let cw = near.len();
    // Vertically: 3/4 near + 1/4 far (times 4).
    for ((t, &n), &f) in tmp[1..=cw].iter_mut().zip(near).zip(far) {
        *t = 3 * i16::from(n) + i16::from(f);
    }
    tmp[0] = tmp[1];
    tmp[cw + 1] = tmp[cw];
    // Horizontally: output 2i is 3/4 of sample i + 1/4 of i - 1, output 2i + 1 3/4 of i + 1/4
    // of i + 1 (times 16 in all), then centred and shifted into the top bits.
    for (((o, &l), &c), &r) in out
        .chunks_exact_mut(2)
        .zip(&tmp[..cw])
        .zip(&tmp[1..=cw])
        .zip(&tmp[2..cw + 2])
    {
        let c3 = 3 * c;
        o[0] = (c3 + l - 2048) << 4;
        o[1] = (c3 + r - 2048) << 4;
    }
}

/// Full-resolution chroma in the decoder's input scaling.
#[inline(always)]
fn widen_row(c: &[u8], out: &mut [i16]) {
    for (o, &c) in out.iter_mut().zip(c) {
        *o = (i16::from(c) - 128) << 8;
    }
}

/// Rows per rayon task: enough work to amortise the task (a 1080p row is ~2 us of work).
const ROWS_PER_TASK: usize = 8;

/// Planar YUV (`y`: `w * h`, `u`/`v`: the subsampling's chroma size) to RGB24 (`w * h * 3`).
///
/// # Panics
///
/// When a buffer's length does not match the size (callers check first).
pub(crate) fn yuv_to_rgb(
    m: YuvMatrix,
    r: YuvRange,
    s: ChromaSubsampling,
    size: (usize, usize),
    planes: (&[u8], &[u8], &[u8]),
    rgb: &mut [u8],
) {
    let isa = Isa::detect();
    specialised!(m, r, yuv_to_rgb_k(isa, s, size, planes, rgb));
}

multiversion! {
fn yuv_to_rgb_k<const M: u8, const R: u8>(
    s: ChromaSubsampling,
    size: (usize, usize),
    planes: (&[u8], &[u8], &[u8]),
    rgb: &mut [u8],
) {
    let ((w, h), (y, u, v)) = (size, planes);
    let (cw, ch) = s.chroma_size(w, h);
    assert!(y.len() == w * h && u.len() == cw * ch && v.len() == cw * ch);
    assert_eq!(rgb.len(), w * h * 3);
    if w == 0 || h == 0 {
        return;
    }
    let chroma_len = match s {
        ChromaSubsampling::Yuv420 => 2 * cw,
        ChromaSubsampling::Yuv444 => cw,
    };
    rgb.par_chunks_mut(w * 3)
        .enumerate()
        .with_min_len(ROWS_PER_TASK)
        .for_each_init(
            || {
                (
                    vec![0i16; cw + 2],
                    vec![0i16; chroma_len],
                    vec![0i16; chroma_len],
                )
            },
            |(tmp, cu, cv), (row, out)| {
                match s {
                    ChromaSubsampling::Yuv420 => {
                        let near = row / 2;
                        let far = if row % 2 == 0 {
                            near.saturating_sub(1)
                        } else {
                            (near + 1).min(ch - 1)
                        };
                        upsample_row(&u[near * cw..][..cw], &u[far * cw..][..cw], tmp, cu);
                        upsample_row(&v[near * cw..][..cw], &v[far * cw..][..cw], tmp, cv);
                    }
                    ChromaSubsampling::Yuv444 => {
                        widen_row(&u[row * cw..][..cw], cu);
                        widen_row(&v[row * cw..][..cw], cv);
                    }
                }
                decode_row::<M, R>(&y[row * w..][..w], cu, cv, out);
            },
        );
}
}

/// Eight bytes at stream positions `c`, `c + 3`, ..., `c + 21` of the 24 bytes in `w` (little
/// endian): one component of eight RGB24 pixels.
///
/// Each word's bytes of the component are masked out and moved next to each other with one
/// multiplication, whose partial products land in distinct bytes (no carries between them).
#[inline(always)]
fn gather3(w: [u64; 3], c: usize) -> u64 {
    // Bytes 0, 3, 6 of a word -> bytes 5, 6, 7 (then shifted down to 0, 1, 2).
    let b036 =
        |x: u64| ((x & 0x00FF_0000_FF00_00FF).wrapping_mul((1 << 40) | (1 << 24) | (1 << 8))) >> 40;
    // Bytes 1, 4, 7 -> 0, 1, 2.
    let b147 = |x: u64| ((x & 0xFF00_00FF_0000_FF00).wrapping_mul((1 << 32) | (1 << 16) | 1)) >> 40;
    // Bytes 2, 5 -> 0, 1.
    let b25 = |x: u64| ((x & 0x0000_FF00_00FF_0000).wrapping_mul((1 << 32) | (1 << 16))) >> 48;
    match c {
        0 => b036(w[0]) | b147(w[1]) << 24 | b25(w[2]) << 48,
        1 => b147(w[0]) | b25(w[1]) << 24 | b036(w[2]) << 40,
        _ => b25(w[0]) | b036(w[1]) << 16 | b147(w[2]) << 40,
    }
}

/// A writer's per-task scratch: one RGB24 row split into planes of bytes, then of `u16` (the
/// luma kernel needs 16-bit loads to use `pmulhuw`), padded by repeating the last pixel.
#[derive(Debug)]
struct Planes<T> {
    r: Vec<T>,
    g: Vec<T>,
    b: Vec<T>,
}

impl<T: Copy + Default> Planes<T> {
    fn new(len: usize) -> Planes<T> {
        Planes {
            r: vec![T::default(); len],
            g: vec![T::default(); len],
            b: vec![T::default(); len],
        }
    }
}

/// Four `u16` lanes of a word into a slice of four.
#[inline(always)]
fn store_lanes(d: &mut [u16], x: u64) {
    let b = x.to_le_bytes();
    for (i, d) in d.iter_mut().enumerate() {
        *d = u16::from_le_bytes([b[2 * i], b[2 * i + 1]]);
    }
}

/// Splits an RGB24 row into `planes`, repeating its last pixel into their padding; `bytes` is
/// scratch as long as the planes. With `PAIRS`, also the sums of horizontal pixel pairs into
/// `pairs` (half as long).
#[inline(always)]
fn split_row<const PAIRS: bool>(
    rgb: &[u8],
    bytes: &mut Planes<u8>,
    planes: &mut Planes<u16>,
    pairs: &mut Planes<u16>,
) {
    const LOW_BYTES: u64 = 0x00FF_00FF_00FF_00FF;
    let w = rgb.len() / 3;
    let (r, g, b) = (&mut bytes.r[..], &mut bytes.g[..], &mut bytes.b[..]);
    let (pr, pg, pb) = (&mut pairs.r[..], &mut pairs.g[..], &mut pairs.b[..]);
    // Eight pixels at a time as three little-endian words.
    let mut blocks = 0;
    for ((((p, r), g), b), ((pr, pg), pb)) in rgb
        .chunks_exact(24)
        .zip(r.chunks_exact_mut(8))
        .zip(g.chunks_exact_mut(8))
        .zip(b.chunks_exact_mut(8))
        .zip(
            pr.chunks_exact_mut(4)
                .zip(pg.chunks_exact_mut(4))
                .zip(pb.chunks_exact_mut(4)),
        )
    {
        let word = |i: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&p[i * 8..i * 8 + 8]);
            u64::from_le_bytes(a)
        };
        let words = [word(0), word(1), word(2)];
        for (c, (dst, pairs)) in [(r, pr), (g, pg), (b, pb)].into_iter().enumerate() {
            let x = gather3(words, c);
            dst.copy_from_slice(&x.to_le_bytes());
            if PAIRS {
                // Even plus odd bytes: four 16-bit pair sums in one addition.
                store_lanes(pairs, (x & LOW_BYTES) + ((x >> 8) & LOW_BYTES));
            }
        }
        blocks += 1;
    }
    let done = blocks * 8;
    for (i, p) in rgb[done * 3..].chunks_exact(3).enumerate() {
        r[done + i] = p[0];
        g[done + i] = p[1];
        b[done + i] = p[2];
    }
    for (bytes, plane, pairs) in [
        (&mut bytes.r, &mut planes.r, &mut pairs.r),
        (&mut bytes.g, &mut planes.g, &mut pairs.g),
        (&mut bytes.b, &mut planes.b, &mut pairs.b),
    ] {
        if w > 0 && w < bytes.len() {
            let last = bytes[w - 1];
            bytes[w..].fill(last);
        }
        for (d, &s) in plane.iter_mut().zip(bytes.iter()) {
            *d = s.into();
        }
        if PAIRS {
            for (d, s) in pairs[done / 2..]
                .iter_mut()
                .zip(bytes[done..].chunks_exact(2))
            {
                *d = u16::from(s[0]) + u16::from(s[1]);
            }
        }
    }
}

/// Luma of one row.
#[inline(always)]
fn encode_luma<const M: u8, const R: u8>(p: &Planes<u16>, y: &mut [u8]) {
    let k = Coefs::<M, R>::ENC;
    for (((y, &r), &g), &b) in y.iter_mut().zip(&p.r).zip(&p.g).zip(&p.b) {
        let s = mulhu(r << 8, k.y_r) + mulhu(g << 8, k.y_g) + mulhu(b << 8, k.y_b) + k.y_add;
        *y = (s >> 8) as u8;
    }
}

/// `a + b`, plane by plane.
#[inline(always)]
fn add_planes(a: &Planes<u16>, b: &Planes<u16>, out: &mut Planes<u16>) {
    for (d, (a, b)) in [
        (&mut out.r, (&a.r, &b.r)),
        (&mut out.g, (&a.g, &b.g)),
        (&mut out.b, (&a.b, &b.b)),
    ] {
        for ((d, &a), &b) in d.iter_mut().zip(a).zip(b) {
            *d = a + b;
        }
    }
}

/// Chroma from sums of four samples of each component.
#[inline(always)]
fn encode_chroma<const M: u8, const R: u8>(s: &Planes<u16>, u: &mut [u8], v: &mut [u8]) {
    let k = Coefs::<M, R>::ENC;
    for ((((uo, vo), &r), &g), &b) in u.iter_mut().zip(v.iter_mut()).zip(&s.r).zip(&s.g).zip(&s.b) {
        let (r, g, b) = ((r << 5) as i16, (g << 5) as i16, (b << 5) as i16);
        let cu = mulhs(r, k.u_r) + mulhs(g, k.u_g) + mulhs(b, k.u_b) + ENC_C_ADD;
        let cv = mulhs(r, k.v_r) + mulhs(g, k.v_g) + mulhs(b, k.v_b) + ENC_C_ADD;
        *uo = clamp_u8(cu >> 6);
        *vo = clamp_u8(cv >> 6);
    }
}

/// RGB24 (`w * h * 3`) to planar YUV with the given subsampling; 4:2:0 chroma is the average
/// of each 2x2 block (an odd size's last row or column repeated).
///
/// # Panics
///
/// When a buffer's length does not match the size (callers check first).
pub(crate) fn rgb_to_yuv(
    m: YuvMatrix,
    r: YuvRange,
    s: ChromaSubsampling,
    size: (usize, usize),
    rgb: &[u8],
    planes: (&mut [u8], &mut [u8], &mut [u8]),
) {
    let isa = Isa::detect();
    specialised!(m, r, rgb_to_yuv_k(isa, s, size, rgb, planes));
}

/// A writer task's scratch.
#[derive(Debug)]
struct EncodeScratch {
    bytes: Planes<u8>,
    row: Planes<u16>,
    pairs0: Planes<u16>,
    pairs1: Planes<u16>,
    sums: Planes<u16>,
}

multiversion! {
fn rgb_to_yuv_k<const M: u8, const R: u8>(
    s: ChromaSubsampling,
    size: (usize, usize),
    rgb: &[u8],
    planes: (&mut [u8], &mut [u8], &mut [u8]),
) {
    let ((w, h), (y, u, v)) = (size, planes);
    let (cw, ch) = s.chroma_size(w, h);
    assert!(y.len() == w * h && u.len() == cw * ch && v.len() == cw * ch);
    assert_eq!(rgb.len(), w * h * 3);
    if w == 0 || h == 0 {
        return;
    }
    let (rows, padded) = match s {
        ChromaSubsampling::Yuv420 => (2, 2 * cw),
        ChromaSubsampling::Yuv444 => (1, w),
    };
    rgb.par_chunks(rows * w * 3)
        .zip(y.par_chunks_mut(rows * w))
        .zip(u.par_chunks_mut(cw).zip(v.par_chunks_mut(cw)))
        .with_min_len(ROWS_PER_TASK / rows)
        .for_each_init(
            || EncodeScratch {
                bytes: Planes::new(padded),
                row: Planes::new(padded),
                pairs0: Planes::new(cw),
                pairs1: Planes::new(cw),
                sums: Planes::new(cw),
            },
            |t, ((src, ys), (us, vs))| {
                let (r0, r1) = src.split_at(w * 3);
                let (y0, y1) = ys.split_at_mut(w);
                match s {
                    ChromaSubsampling::Yuv420 => {
                        split_row::<true>(r0, &mut t.bytes, &mut t.row, &mut t.pairs0);
                        encode_luma::<M, R>(&t.row, y0);
                        if r1.is_empty() {
                            // A last odd row pairs with itself.
                            add_planes(&t.pairs0, &t.pairs0, &mut t.sums);
                        } else {
                            split_row::<true>(r1, &mut t.bytes, &mut t.row, &mut t.pairs1);
                            encode_luma::<M, R>(&t.row, y1);
                            add_planes(&t.pairs0, &t.pairs1, &mut t.sums);
                        }
                    }
                    ChromaSubsampling::Yuv444 => {
                        split_row::<false>(r0, &mut t.bytes, &mut t.row, &mut t.pairs0);
                        encode_luma::<M, R>(&t.row, y0);
                        for (d, s) in [
                            (&mut t.sums.r, &t.row.r),
                            (&mut t.sums.g, &t.row.g),
                            (&mut t.sums.b, &t.row.b),
                        ] {
                            for (d, &s) in d.iter_mut().zip(s) {
                                *d = s << 2;
                            }
                        }
                    }
                }
                encode_chroma::<M, R>(&t.sums, us, vs);
            },
        );
}
}

#[cfg(test)]
mod tests {
    use super::*;

    const MATRICES: [YuvMatrix; 3] = [YuvMatrix::Bt601, YuvMatrix::Bt709, YuvMatrix::Bt2020];
    const RANGES: [YuvRange; 2] = [YuvRange::Limited, YuvRange::Full];

    fn round8(x: f64) -> u8 {
        x.round().clamp(0.0, 255.0) as u8
    }

    /// Distance of `x` from the nearest rounding tie (x.5).
    fn tie_distance(x: f64) -> f64 {
        ((x - x.floor()) - 0.5).abs()
    }

    #[test]
    fn reference_formulas_match_the_standards() {
        // BT.709 limited: white, black, and the primaries' published code values.
        let m = YuvMatrix::Bt709;
        let r = YuvRange::Limited;
        let c = |rgb| rgb_to_yuv_f64(m, r, rgb).map(|x| x.round() as i32);
        assert_eq!(c([255.0, 255.0, 255.0]), [235, 128, 128]);
        assert_eq!(c([0.0, 0.0, 0.0]), [16, 128, 128]);
        assert_eq!(c([255.0, 0.0, 0.0]), [63, 102, 240]);
        assert_eq!(c([0.0, 255.0, 0.0]), [173, 42, 26]);
        assert_eq!(c([0.0, 0.0, 255.0]), [32, 240, 118]);
        // BT.601 limited red: the classic (81, 90, 240).
        let c601 = rgb_to_yuv_f64(YuvMatrix::Bt601, r, [255.0, 0.0, 0.0]).map(|x| x.round());
        assert_eq!(c601, [81.0, 90.0, 240.0]);
        // Full range (JPEG): red is (76, 85, 255.5 -> clamps to 255).
        let jpeg = rgb_to_yuv_f64(YuvMatrix::Bt601, YuvRange::Full, [255.0, 0.0, 0.0]);
        assert_eq!(jpeg.map(|x| x.round().min(255.0)), [76.0, 85.0, 255.0]);
        // And the decoding formula inverts the encoding one.
        for m in MATRICES {
            for r in RANGES {
                for rgb in [[12.0, 200.0, 77.0], [255.0, 0.0, 128.0], [3.0, 3.0, 250.0]] {
                    let [y, u, v] = rgb_to_yuv_f64(m, r, rgb);
                    let back = yuv_to_rgb_f64(m, r, y, u, v);
                    for (a, b) in rgb.iter().zip(back) {
                        assert!((a - b).abs() < 1e-9, "{m:?} {r:?} {rgb:?} -> {back:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn decoding_every_yuv_triple_is_correctly_rounded() {
        // 4:4:4 so every pixel is one (Y, U, V) triple from the input, all 2^24 of them for each
        // matrix and range: at most one level off, and exact away from rounding ties.
        for m in MATRICES {
            for r in RANGES {
                let (w, h) = (256usize, 256usize);
                let y: Vec<u8> = (0..w * h).map(|i| (i % 256) as u8).collect();
                let mut rgb = vec![0u8; w * h * 3];
                let (mut worst, mut off) = (0.0f64, 0usize);
                for vv in 0..=255u8 {
                    let u: Vec<u8> = (0..w * h).map(|i| (i / 256) as u8).collect();
                    let v = vec![vv; w * h];
                    yuv_to_rgb(
                        m,
                        r,
                        ChromaSubsampling::Yuv444,
                        (w, h),
                        (&y, &u, &v),
                        &mut rgb,
                    );
                    for (i, px) in rgb.chunks_exact(3).enumerate() {
                        let f = yuv_to_rgb_f64(m, r, y[i].into(), u[i].into(), vv.into());
                        for (c, &got) in f.iter().zip(px) {
                            let want = round8(*c);
                            if got != want {
                                let d = (f64::from(got) - c.clamp(0.0, 255.0)).abs();
                                worst = worst.max(d);
                                assert!(
                                    d < 1.0 && tie_distance(*c) < 0.08,
                                    "{m:?} {r:?} yuv ({}, {}, {vv}): {got} for {c}",
                                    y[i],
                                    u[i]
                                );
                                off += 1;
                            }
                        }
                    }
                }
                assert!(off < (1 << 24) * 3 / 50, "{m:?} {r:?}: {off} values off");
            }
        }
    }

    /// An RGB picture whose 2x2 blocks hold all sorts of colours.
    fn test_picture(w: usize, h: usize, seed: u32) -> Vec<u8> {
        let mut x = seed;
        (0..w * h * 3)
            .map(|_| {
                x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (x >> 24) as u8
            })
            .collect()
    }

    fn check_encoding(m: YuvMatrix, r: YuvRange, s: ChromaSubsampling, w: usize, h: usize) {
        let rgb = test_picture(w, h, (w * 31 + h) as u32);
        let (cw, ch) = s.chroma_size(w, h);
        let (mut y, mut u, mut v) = (vec![0; w * h], vec![0; cw * ch], vec![0; cw * ch]);
        rgb_to_yuv(m, r, s, (w, h), &rgb, (&mut y, &mut u, &mut v));
        let px = |x: usize, yy: usize| {
            let i = (yy * w + x) * 3;
            [rgb[i], rgb[i + 1], rgb[i + 2]].map(f64::from)
        };
        let close = |got: u8, want: f64, what: &str| {
            let rounded = round8(want);
            if got != rounded {
                assert!(
                    (f64::from(got) - want.clamp(0.0, 255.0)).abs() < 1.0
                        && tie_distance(want) < 0.05,
                    "{m:?} {r:?} {s:?} {w}x{h} {what}: {got} for {want}"
                );
            }
        };
        for yy in 0..h {
            for x in 0..w {
                close(y[yy * w + x], rgb_to_yuv_f64(m, r, px(x, yy))[0], "luma");
            }
        }
        for cy in 0..ch {
            for cx in 0..cw {
                // The block's pixels, edges repeated (an odd size's last block is one wide).
                let (sub_x, sub_y) = match s {
                    ChromaSubsampling::Yuv420 => (2, 2),
                    ChromaSubsampling::Yuv444 => (1, 1),
                };
                let mut avg = [0.0; 3];
                for dy in 0..sub_y {
                    for dx in 0..sub_x {
                        let p = px((cx * sub_x + dx).min(w - 1), (cy * sub_y + dy).min(h - 1));
                        for c in 0..3 {
                            avg[c] += p[c] / (sub_x * sub_y) as f64;
                        }
                    }
                }
                let want = rgb_to_yuv_f64(m, r, avg);
                close(u[cy * cw + cx], want[1], "u");
                close(v[cy * cw + cx], want[2], "v");
            }
        }
    }

    #[test]
    fn encoding_is_correctly_rounded_with_2x2_chroma_averages() {
        for m in MATRICES {
            for r in RANGES {
                for s in [ChromaSubsampling::Yuv420, ChromaSubsampling::Yuv444] {
                    check_encoding(m, r, s, 64, 48);
                }
            }
        }
    }

    #[test]
    fn odd_sizes_repeat_the_last_row_and_column() {
        for (w, h) in [
            (1, 1),
            (3, 5),
            (17, 2),
            (2, 17),
            (33, 31),
            (22, 6),
            (12, 4),
            (8, 3),
        ] {
            for s in [ChromaSubsampling::Yuv420, ChromaSubsampling::Yuv444] {
                check_encoding(YuvMatrix::Bt709, YuvRange::Limited, s, w, h);
            }
        }
    }

    /// Bilinear, centre-sited 4:2:0 upsampling in floating point, edges repeated.
    fn upsampled(c: &[u8], cw: usize, ch: usize, x: usize, y: usize) -> f64 {
        let at = |i: isize, j: isize| {
            let i = i.clamp(0, cw as isize - 1) as usize;
            let j = j.clamp(0, ch as isize - 1) as usize;
            f64::from(c[j * cw + i])
        };
        // Chroma sample i sits at luma x = 2i + 0.5.
        let fx = (x as f64 - 0.5) / 2.0;
        let fy = (y as f64 - 0.5) / 2.0;
        let (ix, iy) = (fx.floor(), fy.floor());
        let (ax, ay) = (fx - ix, fy - iy);
        let (ix, iy) = (ix as isize, iy as isize);
        (1.0 - ay) * ((1.0 - ax) * at(ix, iy) + ax * at(ix + 1, iy))
            + ay * ((1.0 - ax) * at(ix, iy + 1) + ax * at(ix + 1, iy + 1))
    }

    #[test]
    fn decoding_420_interpolates_chroma_bilinearly_at_every_edge() {
        for (w, h) in [(2, 2), (6, 4), (7, 5), (1, 3), (64, 36)] {
            for m in MATRICES {
                for r in RANGES {
                    let s = ChromaSubsampling::Yuv420;
                    let (cw, ch) = s.chroma_size(w, h);
                    let noise = test_picture(w * h + 2 * cw * ch, 1, (w * 7 + h) as u32);
                    let (y, rest) = noise.split_at(w * h);
                    let (u, rest) = rest.split_at(cw * ch);
                    let v = &rest[..cw * ch];
                    let mut rgb = vec![0; w * h * 3];
                    yuv_to_rgb(m, r, s, (w, h), (y, u, v), &mut rgb);
                    for yy in 0..h {
                        for x in 0..w {
                            let uu = upsampled(u, cw, ch, x, yy);
                            let vv = upsampled(v, cw, ch, x, yy);
                            let f = yuv_to_rgb_f64(m, r, y[yy * w + x].into(), uu, vv);
                            for (c, &got) in f.iter().zip(&rgb[(yy * w + x) * 3..][..3]) {
                                let d = (f64::from(got) - c.clamp(0.0, 255.0)).abs();
                                assert!(d < 1.0, "{m:?} {r:?} {w}x{h} ({x}, {yy}): {got} {c}");
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn smooth_round_trips_are_nearly_exact() {
        // RGB -> 4:2:0 -> RGB on steep gradients (4 and 5 levels per pixel): a 2x2 average
        // followed by bilinear interpolation reproduces a linear ramp, so only rounding is left,
        // except on the outermost pixels, where the ramp is not extrapolated.
        let (w, h) = (64usize, 48usize);
        let rgb: Vec<u8> = (0..h)
            .flat_map(|y| {
                (0..w).flat_map(move |x| [(x * 4) as u8, (y * 5) as u8, (128 + x - y) as u8])
            })
            .collect();
        for m in MATRICES {
            let (mut y, mut u, mut v) = (vec![0; w * h], vec![0; w * h / 4], vec![0; w * h / 4]);
            let s = ChromaSubsampling::Yuv420;
            let r = YuvRange::Limited;
            rgb_to_yuv(m, r, s, (w, h), &rgb, (&mut y, &mut u, &mut v));
            let mut back = vec![0; w * h * 3];
            yuv_to_rgb(m, r, s, (w, h), (&y, &u, &v), &mut back);
            let (mut inner, mut edge) = (0u8, 0u8);
            for yy in 0..h {
                for x in 0..w {
                    let i = (yy * w + x) * 3;
                    let d = (0..3)
                        .map(|c| rgb[i + c].abs_diff(back[i + c]))
                        .max()
                        .unwrap_or(0);
                    if x == 0 || yy == 0 || x == w - 1 || yy == h - 1 {
                        edge = edge.max(d);
                    } else {
                        inner = inner.max(d);
                    }
                }
            }
            assert!(
                inner <= 2 && edge <= 5,
                "{m:?}: max error {inner} inside, {edge} on the edges"
            );
        }
    }

    #[test]
    fn tags_and_fallbacks() {
        assert_eq!(YuvMatrix::from_tag(Some("bt709"), 480), YuvMatrix::Bt709);
        assert_eq!(
            YuvMatrix::from_tag(Some("smpte170m"), 1080),
            YuvMatrix::Bt601
        );
        assert_eq!(YuvMatrix::from_tag(Some("bt470bg"), 1080), YuvMatrix::Bt601);
        assert_eq!(
            YuvMatrix::from_tag(Some("bt2020nc"), 2160),
            YuvMatrix::Bt2020
        );
        assert_eq!(YuvMatrix::from_tag(None, 720), YuvMatrix::Bt709);
        assert_eq!(YuvMatrix::from_tag(None, 576), YuvMatrix::Bt601);
        assert_eq!(YuvMatrix::from_tag(Some("reserved"), 480), YuvMatrix::Bt601);
        assert_eq!(YuvRange::from_tag(None, Some("yuv420p")), YuvRange::Limited);
        assert_eq!(YuvRange::from_tag(Some("tv"), None), YuvRange::Limited);
        assert_eq!(
            YuvRange::from_tag(Some("pc"), Some("yuv420p")),
            YuvRange::Full
        );
        assert_eq!(YuvRange::from_tag(None, Some("yuvj420p")), YuvRange::Full);
    }

    #[test]
    fn avx2_and_baseline_builds_agree() {
        fn run<const M: u8, const R: u8>(
            isa: Isa,
            s: ChromaSubsampling,
            (w, h): (usize, usize),
            rgb: &[u8],
        ) -> Vec<Vec<u8>> {
            let (cw, ch) = s.chroma_size(w, h);
            let (mut y, mut u, mut v) = (vec![0; w * h], vec![0; cw * ch], vec![0; cw * ch]);
            rgb_to_yuv_k::<M, R>(isa, s, (w, h), rgb, (&mut y, &mut u, &mut v));
            let mut back = vec![0; w * h * 3];
            yuv_to_rgb_k::<M, R>(isa, s, (w, h), (&y, &u, &v), &mut back);
            vec![y, u, v, back]
        }
        for (w, h) in [(97, 31), (64, 2), (1, 1)] {
            let rgb = test_picture(w, h, 11);
            for s in [ChromaSubsampling::Yuv420, ChromaSubsampling::Yuv444] {
                let base = run::<1, 0>(Isa::BASELINE, s, (w, h), &rgb);
                assert_eq!(run::<1, 0>(Isa::detect(), s, (w, h), &rgb), base);
                let base = run::<2, 1>(Isa::BASELINE, s, (w, h), &rgb);
                assert_eq!(run::<2, 1>(Isa::detect(), s, (w, h), &rgb), base);
            }
        }
    }
}
