//! Depth estimation behind one trait, so engines can be swapped without touching the pipeline.
//!
//! Engines: [`onnx::OnnxDepthModel`] (Depth Anything V2 on ONNX Runtime). Shared pieces:
//! [`preprocess`] and [`postprocess`] (the reference's image-to-tensor and upsampling),
//! [`model_files`] (which model file, downloaded or local), [`runtime`] (loading ONNX Runtime),
//! [`npy`] (NumPy files, to compare with the Python reference).

pub mod model_files;
pub mod npy;
pub mod onnx;
pub mod postprocess;
pub mod preprocess;
pub mod runtime;

pub mod fast;

use crate::{DepthMap, Result, RgbFrame};

/// A monocular depth estimator.
pub trait DepthModel: Send {
    /// A short name for logs and benchmarks (e.g. `onnx:depth-anything-v2-small`, `fast`).
    fn name(&self) -> &str;

    /// Relative inverse depth at the frame's resolution: near = large, any scale and shift.
    fn estimate(&mut self, frame: &RgbFrame) -> Result<DepthMap>;
}
