//! Fixtures, the ONNX Runtime check and comparison metrics.

use std::path::PathBuf;

use stereospot_stereo::RgbFrame;
use stereospot_stereo::depth::npy::{self, NpyArray};

/// `tests/fixtures/<name>`.
pub fn fixture(name: &str) -> PathBuf {
    let p = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures")).join(name);
    assert!(
        p.is_file(),
        "missing fixture {} (regenerate with scripts/stereo/make_fixtures.py)",
        p.display()
    );
    p
}

pub fn f32s(name: &str) -> NpyArray<f32> {
    npy::read(&fixture(name)).expect("float32 fixture")
}

/// An `image_*.npy` fixture (RGB uint8, H x W x 3) as a frame.
pub fn image(name: &str) -> RgbFrame {
    let a: NpyArray<u8> = npy::read(&fixture(name)).expect("uint8 fixture");
    assert_eq!(a.shape.len(), 3);
    assert_eq!(a.shape[2], 3);
    RgbFrame {
        width: a.shape[1] as u32,
        height: a.shape[0] as u32,
        index: 0,
        data: a.data,
    }
}

/// The tiny test model (the official architecture at a tiny width, random weights).
pub fn tiny_model() -> PathBuf {
    fixture("tiny_dav2.onnx")
}

/// Fails the test, with what to do, when ONNX Runtime cannot be loaded: these tests must never
/// pass silently without it.
pub fn require_onnxruntime() {
    if let Err(e) = stereospot_stereo::depth::runtime::environment() {
        panic!(
            "ONNX Runtime is needed for this test and could not be loaded: run `./test` or \
             `scripts/deps.sh test` from the repository root first (it installs the library into \
             .tools/onnxruntime/), or set ORT_DYLIB_PATH. Cause: {e}"
        );
    }
}

/// Largest absolute difference.
pub fn max_abs(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "lengths differ");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// `||a - b|| / ||b||` in f64.
pub fn rel_l2(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len(), "lengths differ");
    let (mut num, mut den) = (0f64, 0f64);
    for (x, y) in a.iter().zip(b) {
        let d = f64::from(*x) - f64::from(*y);
        num += d * d;
        den += f64::from(*y) * f64::from(*y);
    }
    assert!(den > 0.0, "reference is all zeros");
    (num / den).sqrt()
}
