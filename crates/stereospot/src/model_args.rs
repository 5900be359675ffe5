//! The depth-model flags shared by every command that estimates depth.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use stereospot_stereo::depth::DepthModel;
use stereospot_stereo::depth::fast::{FastDepth, FastDepthOptions};
use stereospot_stereo::depth::model_files::{
    ModelChoice, ModelPrecision, NON_COMMERCIAL_LICENSE, ResolveOptions,
};
use stereospot_stereo::depth::onnx::{OnnxDepthModel, OnnxOptions};

/// Which depth estimator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DepthArg {
    /// Depth Anything V2 Small (Apache-2.0; downloaded on first use)
    Small,
    /// Depth Anything V2 Base (CC-BY-NC-4.0: needs --accept-model-license cc-by-nc-4.0)
    Base,
    /// Depth Anything V2 Large (CC-BY-NC-4.0: needs --accept-model-license cc-by-nc-4.0)
    Large,
    /// Weight-free classic cues (position, sharpness, colour): fast, offline, rougher
    Fast,
}

/// Model precision on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PrecisionArg {
    Fp32,
    Fp16,
    Int8,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ModelArgs {
    /// Depth estimator
    #[arg(long, value_enum, env = "STEREOSPOT_DEPTH", default_value = "small")]
    pub depth: DepthArg,
    /// An ONNX model file to use instead of the hub download (same contract as Depth Anything V2:
    /// N x 3 x H x W float32 in, N x H x W relative inverse depth out)
    #[arg(long, env = "STEREOSPOT_MODEL", value_name = "PATH")]
    pub model: Option<PathBuf>,
    /// Model input size: the short side of the frame is resized to this (rounded to multiples of
    /// 14, as the reference does)
    #[arg(long, env = "STEREOSPOT_DEPTH_SIZE", default_value_t = 518)]
    pub depth_size: u32,
    /// Which export of the hub model: fp32 (the reference), fp16 (GPUs), int8 (dynamic
    /// quantisation, faster on CPUs)
    #[arg(
        long,
        value_enum,
        env = "STEREOSPOT_MODEL_PRECISION",
        default_value = "fp32"
    )]
    pub precision: PrecisionArg,
    /// Accept a non-commercial model licence (Base and Large are CC-BY-NC-4.0)
    #[arg(long, env = "STEREOSPOT_ACCEPT_MODEL_LICENSE", value_name = "LICENSE")]
    pub accept_model_license: Option<String>,
}

impl Default for ModelArgs {
    /// What the command line gives without flags: Depth Anything V2 Small, fp32, 518.
    fn default() -> Self {
        ModelArgs {
            depth: DepthArg::Small,
            model: None,
            depth_size: 518,
            precision: PrecisionArg::Fp32,
            accept_model_license: None,
        }
    }
}

impl ModelArgs {
    /// Builds the estimator (downloading the model on first use, with a progress bar when
    /// `progress`). Blocking.
    pub fn load(&self, progress: bool) -> Result<Box<dyn DepthModel>> {
        let choice = match self.depth {
            DepthArg::Fast => {
                if self.model.is_some() {
                    bail!("--model needs an ONNX depth model: it cannot be used with --depth fast");
                }
                return Ok(Box::new(FastDepth::new(FastDepthOptions::default())));
            }
            DepthArg::Small => ModelChoice::Small,
            DepthArg::Base => ModelChoice::Base,
            DepthArg::Large => ModelChoice::Large,
        };
        let accepted = match self.accept_model_license.as_deref() {
            None => false,
            Some(l) if l.eq_ignore_ascii_case(NON_COMMERCIAL_LICENSE) => true,
            Some(other) => bail!(
                "--accept-model-license {other:?}: the only licence that needs accepting is {NON_COMMERCIAL_LICENSE}"
            ),
        };
        let resolve = ResolveOptions {
            precision: match self.precision {
                PrecisionArg::Fp32 => ModelPrecision::Fp32,
                PrecisionArg::Fp16 => ModelPrecision::Fp16,
                PrecisionArg::Int8 => ModelPrecision::Int8,
            },
            accept_non_commercial_license: accepted,
            progress,
            ..ResolveOptions::from_env()
        };
        let opts = OnnxOptions {
            input_size: self.depth_size,
            ..OnnxOptions::default()
        };
        let model = OnnxDepthModel::open(choice, self.model.as_deref(), &resolve, &opts)
            .context("cannot load the depth model")?;
        Ok(Box::new(model))
    }
}
