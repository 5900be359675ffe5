//! The ONNX Runtime engine: Depth Anything V2 exports run through `ort`.
//!
//! The model contract is that of `onnx-community/depth-anything-v2-*` and of the reference's
//! `forward`: one input `1 x 3 x H x W` float32 (H and W multiples of 14, normalised as
//! [`super::preprocess`] does), one output `N x H x W` (or `N x 1 x H x W`) of relative inverse
//! depth. [`OnnxDepthModel::estimate`] is the reference's `infer_image`: preprocess, forward,
//! bilinear upsampling to the frame's size.

use std::path::{Path, PathBuf};
use std::time::Instant;

use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::TensorRef;

use super::DepthModel;
use super::model_files::{ModelChoice, ModelPrecision, ResolveOptions, resolve_model};
use super::postprocess;
use super::preprocess::{self, DEFAULT_INPUT_SIZE, ModelInput};
use crate::{DepthMap, Result, RgbFrame, StereoError};

/// Where inference runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Device {
    /// ONNX Runtime's CPU execution provider.
    #[default]
    Cpu,
    /// ONNX Runtime's CUDA execution provider (needs the `cuda` feature and an ONNX Runtime
    /// built with CUDA, e.g. the `onnxruntime-gpu` wheel's library).
    Cuda {
        /// The GPU's index.
        device_id: i32,
    },
}

/// Settings of an [`OnnxDepthModel`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnnxOptions {
    /// The reference's `input_size`: the shorter side of the model input (518 by default).
    pub input_size: u32,
    /// Threads inside one operator (`None`: the cores available to this process).
    pub intra_threads: Option<usize>,
    /// Let idle intra-op threads spin before sleeping (ONNX Runtime's default, fastest on an
    /// idle machine). Turn it off when several models or processes share the cores.
    pub allow_spinning: bool,
    /// Where to run.
    pub device: Device,
    /// A name for logs (default: `onnx:<file stem>`).
    pub name: Option<String>,
}

impl Default for OnnxOptions {
    fn default() -> Self {
        OnnxOptions {
            input_size: DEFAULT_INPUT_SIZE,
            intra_threads: None,
            allow_spinning: true,
            device: Device::Cpu,
            name: None,
        }
    }
}

/// The model's raw output: `shape` (`N x H x W`) and values.
#[derive(Clone, PartialEq)]
pub struct ForwardOutput {
    /// Dimensions as the model returned them, with a singleton channel axis dropped.
    pub shape: Vec<usize>,
    /// Values, row-major.
    pub data: Vec<f32>,
}

impl std::fmt::Debug for ForwardOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForwardOutput")
            .field("shape", &self.shape)
            .finish_non_exhaustive()
    }
}

/// Depth Anything V2 (or any model with its contract) on ONNX Runtime.
pub struct OnnxDepthModel {
    session: Session,
    input_name: String,
    path: PathBuf,
    name: String,
    input_size: u32,
}

impl std::fmt::Debug for OnnxDepthModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnnxDepthModel")
            .field("name", &self.name)
            .field("path", &self.path)
            .field("input_size", &self.input_size)
            .finish_non_exhaustive()
    }
}

fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

impl OnnxDepthModel {
    /// Loads a model file: graph optimisation level 3, `intra_threads` threads (default: all
    /// available cores), on `device`.
    pub fn load(path: &Path, opts: &OnnxOptions) -> Result<Self> {
        preprocess::input_size(preprocess::PATCH, preprocess::PATCH, opts.input_size)?;
        if !path.is_file() {
            return Err(StereoError::ModelMissing(format!(
                "model file {} does not exist",
                path.display()
            )));
        }
        let env = super::runtime::environment()?;
        let model_err = |e: &dyn std::fmt::Display| StereoError::Model {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        let runtime_err = |e: &dyn std::fmt::Display| StereoError::Runtime(e.to_string());
        let threads = opts.intra_threads.unwrap_or_else(available_cores).max(1);
        let mut builder = Session::builder(env)
            .map_err(|e| runtime_err(&e))?
            .with_optimization_level(GraphOptimizationLevel::Level3)
            .map_err(|e| runtime_err(&e))?
            .with_intra_threads(threads)
            .map_err(|e| runtime_err(&e))?
            .with_intra_op_spinning(opts.allow_spinning)
            .map_err(|e| runtime_err(&e))?;
        builder = register_device(builder, opts.device)?;
        let started = Instant::now();
        let session = builder.commit_from_file(path).map_err(|e| model_err(&e))?;
        let (input_name, output_count) = {
            let inputs = session.inputs();
            if inputs.len() != 1 {
                return Err(model_err(&format!(
                    "expected one input (pixel_values), the model has {}",
                    inputs.len()
                )));
            }
            (inputs[0].name().to_string(), session.outputs().len())
        };
        if output_count == 0 {
            return Err(model_err(&"the model has no output"));
        }
        let name = opts.name.clone().unwrap_or_else(|| {
            format!(
                "onnx:{}",
                path.file_stem().and_then(|s| s.to_str()).unwrap_or("model")
            )
        });
        tracing::info!(
            model = %name,
            path = %path.display(),
            threads,
            device = ?opts.device,
            load_ms = started.elapsed().as_millis() as u64,
            "depth model loaded"
        );
        Ok(OnnxDepthModel {
            session,
            input_name,
            path: path.to_path_buf(),
            name,
            input_size: opts.input_size,
        })
    }

    /// Resolves the model file for `choice` ([`resolve_model`]: explicit path, `WEIGHTS_DIR`, hub
    /// cache or download) and loads it, named `onnx:depth-anything-v2-<size>[-<precision>]`.
    pub fn open(
        choice: ModelChoice,
        explicit: Option<&Path>,
        resolve: &ResolveOptions,
        opts: &OnnxOptions,
    ) -> Result<Self> {
        let path = resolve_model(choice, explicit, resolve)?;
        let mut opts = opts.clone();
        if opts.name.is_none() {
            opts.name = Some(match resolve.precision {
                ModelPrecision::Fp32 => format!("onnx:{}", choice.model_name()),
                p => format!("onnx:{}-{p}", choice.model_name()),
            });
        }
        Self::load(&path, &opts)
    }

    /// The model file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The input size frames are resized to (shorter side).
    pub fn input_size(&self) -> u32 {
        self.input_size
    }

    /// Changes the input size for the next frames.
    pub fn set_input_size(&mut self, size: u32) -> Result<()> {
        preprocess::input_size(preprocess::PATCH, preprocess::PATCH, size)?;
        self.input_size = size;
        Ok(())
    }

    /// The bare forward pass on an NCHW tensor (`shape = [N, 3, H, W]`): the reference's
    /// `forward`, returning `N x H x W`.
    pub fn forward(&mut self, shape: [usize; 4], data: &[f32]) -> Result<ForwardOutput> {
        let [n, c, h, w] = shape;
        if c != 3 || n == 0 || h == 0 || w == 0 || h % 14 != 0 || w % 14 != 0 {
            return Err(StereoError::InvalidArgument(format!(
                "model input must be N x 3 x H x W with H and W multiples of 14, got {shape:?}"
            )));
        }
        if data.len() != n * c * h * w {
            return Err(StereoError::InvalidArgument(format!(
                "model input of shape {shape:?} needs {} values, got {}",
                n * c * h * w,
                data.len()
            )));
        }
        let tensor = TensorRef::from_array_view((shape, data))
            .map_err(|e| StereoError::Runtime(format!("input tensor: {e}")))?;
        let started = Instant::now();
        let outputs = self
            .session
            .run(ort::inputs![self.input_name.as_str() => tensor])
            .map_err(|e| StereoError::Runtime(format!("{}: {e}", self.name)))?;
        let (out_shape, values) =
            outputs[0]
                .try_extract_tensor::<f32>()
                .map_err(|e| StereoError::Model {
                    path: self.path.clone(),
                    message: format!("output is not a float32 tensor: {e}"),
                })?;
        let mut dims: Vec<usize> = out_shape.iter().map(|&d| d.max(0) as usize).collect();
        if dims.len() == 4 && dims[1] == 1 {
            dims.remove(1);
        }
        if dims.len() != 3 || dims[0] != n {
            return Err(StereoError::Model {
                path: self.path.clone(),
                message: format!("output has shape {dims:?}, expected {n} x H x W"),
            });
        }
        tracing::trace!(
            model = %self.name,
            h, w,
            ms = started.elapsed().as_secs_f64() * 1e3,
            "depth forward"
        );
        Ok(ForwardOutput {
            shape: dims,
            data: values.to_vec(),
        })
    }

    /// Preprocessing and forward pass; the model-sized output before upsampling.
    pub fn forward_frame(&mut self, frame: &RgbFrame) -> Result<(ModelInput, ForwardOutput)> {
        let input = preprocess::preprocess(frame, self.input_size)?;
        let output = self.forward(input.shape(), &input.data)?;
        Ok((input, output))
    }
}

#[cfg(feature = "cuda")]
fn register_device(
    builder: ort::session::builder::SessionBuilder,
    device: Device,
) -> Result<ort::session::builder::SessionBuilder> {
    match device {
        Device::Cpu => Ok(builder),
        Device::Cuda { device_id } => builder
            .with_execution_providers([ort::ep::CUDA::default()
                .with_device_id(device_id)
                .build()
                .error_on_failure()])
            .map_err(|e| {
                StereoError::Runtime(format!(
                    "cannot use CUDA device {device_id}: {e} (needs an ONNX Runtime built with \
                     CUDA, e.g. from the onnxruntime-gpu wheel, via ORT_DYLIB_PATH)"
                ))
            }),
    }
}

#[cfg(not(feature = "cuda"))]
fn register_device(
    builder: ort::session::builder::SessionBuilder,
    device: Device,
) -> Result<ort::session::builder::SessionBuilder> {
    match device {
        Device::Cpu => Ok(builder),
        Device::Cuda { .. } => Err(StereoError::InvalidArgument(
            "this build has no CUDA support: rebuild with the `cuda` feature".into(),
        )),
    }
}

impl DepthModel for OnnxDepthModel {
    fn name(&self) -> &str {
        &self.name
    }

    fn estimate(&mut self, frame: &RgbFrame) -> Result<DepthMap> {
        let (_, output) = self.forward_frame(frame)?;
        let mut maps =
            postprocess::depth_maps(&output.data, &output.shape, frame.width, frame.height)?;
        maps.pop().ok_or_else(|| StereoError::Model {
            path: self.path.clone(),
            message: "the model returned an empty batch".into(),
        })
    }
}
