//! `depth-preprocess` and `depth-forward`: the depth engine's two halves on files, to compare
//! them with the Python reference (Depth Anything V2's `image2tensor` and `forward`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use image::{DynamicImage, ImageDecoder, ImageReader};
use stereospot_stereo::RgbFrame;
use stereospot_stereo::depth::npy;
use stereospot_stereo::depth::onnx::{OnnxDepthModel, OnnxOptions};
use stereospot_stereo::depth::preprocess::{DEFAULT_INPUT_SIZE, preprocess};

#[derive(Debug, clap::Args)]
pub struct DepthPreprocessArgs {
    /// Image to prepare (PNG or JPEG; EXIF orientation applied, alpha dropped)
    pub image: PathBuf,
    /// Input size: the tensor's shorter side (the reference's `input_size`)
    #[arg(long, default_value_t = DEFAULT_INPUT_SIZE)]
    pub size: u32,
    /// Where to write the 1 x 3 x H x W float32 tensor (.npy)
    #[arg(long)]
    pub output: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct DepthForwardArgs {
    /// ONNX model file (input N x 3 x H x W, output N x H x W)
    #[arg(long)]
    pub model: PathBuf,
    /// Input tensor (.npy, float32, N x 3 x H x W with H and W multiples of 14)
    #[arg(long)]
    pub input: PathBuf,
    /// Where to write the output (.npy, float32, N x H x W)
    #[arg(long)]
    pub output: PathBuf,
    /// Intra-op threads (default: every available core)
    #[arg(long)]
    pub threads: Option<usize>,
}

/// Decodes an image the way `cv2.imread(path, cv2.IMREAD_COLOR)` sees it: upright, 8-bit RGB.
pub fn read_image(path: &Path) -> Result<RgbFrame> {
    let mut decoder = ImageReader::open(path)
        .with_context(|| format!("cannot open {}", path.display()))?
        .with_guessed_format()
        .with_context(|| format!("cannot read {}", path.display()))?
        .into_decoder()
        .with_context(|| format!("{} is not a PNG or JPEG image", path.display()))?;
    let orientation = decoder
        .orientation()
        .with_context(|| format!("cannot read the orientation of {}", path.display()))?;
    let mut image = DynamicImage::from_decoder(decoder)
        .with_context(|| format!("cannot decode {}", path.display()))?;
    image.apply_orientation(orientation);
    let rgb = image.to_rgb8();
    Ok(RgbFrame {
        width: rgb.width(),
        height: rgb.height(),
        index: 0,
        data: rgb.into_raw(),
    })
}

pub fn run_preprocess(args: &DepthPreprocessArgs) -> Result<()> {
    let frame = read_image(&args.image)?;
    let input = preprocess(&frame, args.size)
        .with_context(|| format!("cannot preprocess {}", args.image.display()))?;
    npy::write(&args.output, &input.shape(), &input.data)?;
    println!(
        "{}: {}x{} -> tensor 1x3x{}x{} in {}",
        args.image.display(),
        frame.width,
        frame.height,
        input.height,
        input.width,
        args.output.display()
    );
    Ok(())
}

pub fn run_forward(args: &DepthForwardArgs) -> Result<()> {
    let input: npy::NpyArray<f32> = npy::read(&args.input)?;
    let shape: [usize; 4] = match input.shape[..] {
        [n, c, h, w] => [n, c, h, w],
        _ => bail!(
            "{}: expected an N x 3 x H x W tensor, got shape {:?}",
            args.input.display(),
            input.shape
        ),
    };
    let opts = OnnxOptions {
        intra_threads: args.threads,
        ..OnnxOptions::default()
    };
    let mut model = OnnxDepthModel::load(&args.model, &opts)?;
    let started = std::time::Instant::now();
    let output = model.forward(shape, &input.data)?;
    let elapsed = started.elapsed();
    npy::write(&args.output, &output.shape, &output.data)?;
    println!(
        "{}: forward {:?} -> {:?} in {:.3} s, written to {}",
        args.model.display(),
        shape,
        output.shape,
        elapsed.as_secs_f64(),
        args.output.display()
    );
    Ok(())
}
