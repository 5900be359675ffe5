//! Depth estimation behind one trait, so engines can be swapped without touching the pipeline.

pub mod fast;

use crate::{DepthMap, Result, RgbFrame};

/// A monocular depth estimator.
pub trait DepthModel: Send {
    /// A short name for logs and benchmarks (e.g. `onnx:depth-anything-v2-small`, `fast`).
    fn name(&self) -> &str;

    /// Relative inverse depth at the frame's resolution: near = large, any scale and shift.
    fn estimate(&mut self, frame: &RgbFrame) -> Result<DepthMap>;
}
