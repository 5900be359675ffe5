//! Depth estimation behind one trait, so engines can be swapped without touching the pipeline.
//!
//! Engines: [`onnx::OnnxDepthModel`] (Depth Anything V2 on ONNX Runtime). Shared pieces:
//! [`preprocess`] and [`postprocess`] (the reference's image-to-tensor and upsampling),
//! [`model_files`] (which model file, downloaded or local), [`runtime`] (loading ONNX Runtime),
//! [`npy`] (NumPy files, to compare with the Python reference).
//!
//! # Faithfulness
//!
//! Tested against outputs of the official Depth Anything V2 code (`tests/fixtures/`, made by
//! `scripts/stereo/make_fixtures.py` from the reference at commit a561b84 with a tiny model of
//! the same architecture and random weights, since weights cannot be downloaded here):
//! preprocessing max abs error 9.5e-7 (limit 1e-3) on a downscaled and an upscaled non-square
//! picture; the input size table matches the reference's `Resize.get_size` for 160 frame/size
//! pairs; ONNX Runtime forward vs PyTorch relative L2 2.5e-6 (limit 1e-4); the whole `estimate`
//! vs the reference's `infer_image` relative L2 2.4e-6; upsampling max abs 4.8e-7.
//!
//! # Speed
//!
//! `benches/depth.rs` on the full-size Small architecture (random weights, 2 AVX2 cores shared
//! with other builds, so absolute times vary by up to 2x with the load; ratios are from
//! interleaved runs). fp32 at 518x518 with the defaults (graph optimisation level 3, 2 intra-op
//! threads): 0.93 s median on the quietest run. Levers, as time ratios to that, and the cost on
//! min-max normalised depth against it:
//!
//! | lever | time | relative L2 |
//! |---|---|---|
//! | 1 intra-op thread | 1.76x | 0 |
//! | spinning off | 0.98x | 0 |
//! | graph optimisation basic instead of level 3 | 1.01x | 6e-7 |
//! | offline BiasGelu/SkipLayerNorm fusion (ORT transformers optimizer) | 0.98x | 6e-7 |
//! | fp16 | 1.15x | 6.7e-4 |
//! | int8 dynamic, all op types (ConvInteger) | 1.25-1.34x | 3.2e-2 |
//! | int8 dynamic, MatMul only ([`model_files::ModelPrecision::Int8`]) | 0.78x | 1.0e-2 |
//! | input 448 / 392 (fp32) | 0.66-0.72x / 0.47-0.50x | see below |
//! | int8 MatMul at 448 / 392 | 0.54-0.57x / 0.39x | see below |
//!
//! No lever reaches 0.5 s at 518x518 here. The accuracy of smaller inputs cannot be judged with
//! random weights (they measure 0.53-0.57 relative L2, meaning only that a random network is not
//! scale-consistent); measure it with the real model before lowering the input size.
//!
//! Why not: the build and CI machines are AMD EPYC (Zen 3) with AVX2 and FMA only; `/proc/cpuinfo`
//! lists no AVX-512, AMX, VNNI or bf16, whatever the issue assumed. Their fp32 peak is 2 cores x
//! 2.45 GHz x 32 FLOP per cycle = 157 GFLOP/s, so the Small model's ~115 GFLOP at 518x518 cannot
//! take less than 0.73 s in fp32; the 0.93 s measured is 79 % of that peak. An ORT profile of the
//! int8 MatMul model (one thread) puts the quantised linear layers at 28 % of the time, the
//! attention products (Q·Kᵀ and ·V, fp32: dynamic quantisation of two activations costs more
//! than it saves) at 33 %, the DPT head's convolutions at 17 % and softmax at 7 %. The ORT
//! transformers optimizer (model type `vit`) does not recognise DINOv2's attention, so there is
//! no fused attention kernel to gain from either.

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

    /// [`Self::estimate`] into `out`, whose allocation an engine may reuse (the frame loop
    /// calls this once per frame with the same map).
    fn estimate_into(&mut self, frame: &RgbFrame, out: &mut DepthMap) -> Result<()> {
        *out = self.estimate(frame)?;
        Ok(())
    }
}
