//! `stereospot convert IN OUT`: one file, no server, with a progress bar.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use stereospot_media::{EncodeOptions, Media, MediaConfig, OutputPixelFormat};
use stereospot_stereo::StereoError;
use stereospot_stereo::compose::{AnaglyphMethod, StereoFormat};
use stereospot_stereo::convert::{ConvertOptions, ConvertProgress, ConvertStats, convert_file};
use stereospot_stereo::depth::DepthModel;
use stereospot_stereo::synth::SynthOptions;

use crate::model_args::ModelArgs;

/// Output layout on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FormatArg {
    /// Red/cyan glasses
    Anaglyph,
    /// Full side-by-side (double width)
    Sbs,
    /// Half side-by-side (same width)
    Hsbs,
    /// Top-bottom (same height)
    Tab,
}

/// Anaglyph colour method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AnaglyphArg {
    /// Dubois least-squares red/cyan (least ghosting, good colour)
    Dubois,
    /// Red from the left view, green and blue from the right
    Color,
    /// Red from the left view's luminance, green and blue from the right
    HalfColor,
    /// Grey anaglyph
    Gray,
}

/// Encoder pixel format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PixFmtArg {
    /// 4:2:0: plays everywhere, including browsers
    Yuv420p,
    /// 4:4:4: no chroma bleed between the anaglyph's red and cyan, desktop players only
    Yuv444p,
}

#[derive(Debug, clap::Args)]
pub struct ConvertArgs {
    /// Input video (any format ffmpeg reads)
    pub input: PathBuf,
    /// Output MP4 (written atomically: nothing appears here unless the conversion succeeds)
    pub output: PathBuf,
    /// Output layout
    #[arg(long, value_enum, default_value = "anaglyph")]
    pub format: FormatArg,
    /// Anaglyph colour method (with --format anaglyph)
    #[arg(long, value_enum, default_value = "dubois")]
    pub anaglyph: AnaglyphArg,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Stereo strength: total parallax between the nearest and farthest points, in percent of
    /// the frame width
    #[arg(long, default_value_t = 2.0)]
    pub divergence: f32,
    /// Depth (0 = far, 1 = near) that stays on the screen plane; nearer pops out
    #[arg(long, default_value_t = 0.5)]
    pub convergence: f32,
    /// x264 constant rate factor (0-51, lower is better)
    #[arg(long, default_value_t = 18)]
    pub crf: u8,
    /// x264 preset (ultrafast ... veryslow)
    #[arg(long, default_value = "medium")]
    pub preset: String,
    /// Encoder pixel format
    #[arg(long, value_enum, default_value = "yuv420p")]
    pub pix_fmt: PixFmtArg,
    /// No progress bar (logs only)
    #[arg(long)]
    pub quiet: bool,
}

impl ConvertArgs {
    fn options(&self) -> Result<ConvertOptions> {
        if !(0.0..=20.0).contains(&self.divergence) {
            bail!(
                "--divergence {} is outside 0..=20 (percent of the width)",
                self.divergence
            );
        }
        if !(0.0..=1.0).contains(&self.convergence) {
            bail!("--convergence {} is outside 0..=1", self.convergence);
        }
        let format = match self.format {
            FormatArg::Anaglyph => StereoFormat::Anaglyph(match self.anaglyph {
                AnaglyphArg::Dubois => AnaglyphMethod::Dubois,
                AnaglyphArg::Color => AnaglyphMethod::Color,
                AnaglyphArg::HalfColor => AnaglyphMethod::HalfColor,
                AnaglyphArg::Gray => AnaglyphMethod::Gray,
            }),
            FormatArg::Sbs => StereoFormat::Sbs,
            FormatArg::Hsbs => StereoFormat::Hsbs,
            FormatArg::Tab => StereoFormat::Tab,
        };
        Ok(ConvertOptions {
            format,
            synth: SynthOptions {
                divergence: self.divergence,
                convergence: self.convergence,
                ..SynthOptions::default()
            },
            encode: EncodeOptions {
                crf: self.crf,
                preset: self.preset.clone(),
                pix_fmt: match self.pix_fmt {
                    PixFmtArg::Yuv420p => OutputPixelFormat::Yuv420p,
                    PixFmtArg::Yuv444p => OutputPixelFormat::Yuv444p,
                },
                ..EncodeOptions::default()
            },
            ..ConvertOptions::default()
        })
    }
}

pub async fn run(args: ConvertArgs) -> Result<()> {
    let opts = args.options()?;
    if !args.input.is_file() {
        bail!("{}: no such file", args.input.display());
    }
    let model_args = args.model.clone();
    // Loading a model (and downloading it on first use) is blocking work.
    let mut model: Box<dyn DepthModel> = tokio::task::spawn_blocking(move || model_args.load(true))
        .await
        .context("the model loader panicked")??;

    let cancel = Arc::new(AtomicBool::new(false));
    let on_signal = cancel.clone();
    let signals = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("interrupted: stopping after the current frame");
            on_signal.store(true, Ordering::Relaxed);
        }
    });

    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} frames, {msg}, ETA {eta}",
            )
            .context("progress bar template")?,
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    };
    let media = Media::new(MediaConfig::default());
    let (input, output) = (args.input.clone(), args.output.clone());
    let worker_cancel = cancel.clone();
    let worker_bar = bar.clone();
    let result = tokio::task::spawn_blocking(move || -> Result<ConvertStats, StereoError> {
        let mut progress = |p: ConvertProgress| {
            if let Some(total) = p.frames_total {
                worker_bar.set_length(total.max(p.frames_done));
            }
            worker_bar.set_position(p.frames_done);
            worker_bar.set_message(format!("{:.2} fps", p.fps()));
        };
        convert_file(
            &media,
            &input,
            &output,
            model.as_mut(),
            &opts,
            &mut progress,
            &worker_cancel,
        )
    })
    .await
    .context("the conversion thread panicked")?;
    signals.abort();
    bar.finish_and_clear();
    match result {
        Ok(stats) => {
            let s = &stats.stages;
            let per = |d: Duration| {
                if stats.frames == 0 {
                    0.0
                } else {
                    d.as_secs_f64() * 1000.0 / stats.frames as f64
                }
            };
            eprintln!(
                "wrote {} ({} frames, {}x{} -> {}x{}, {:.2} fps; per frame: decode {:.1} ms, depth {:.1} ms, normalise {:.1} ms, synthesis and compose {:.1} ms, encode {:.1} ms)",
                args.output.display(),
                stats.frames,
                stats.input_size.0,
                stats.input_size.1,
                stats.output_size.0,
                stats.output_size.1,
                stats.fps(),
                per(s.decode),
                per(s.depth),
                per(s.normalize),
                per(s.synth_compose),
                per(s.encode),
            );
            Ok(())
        }
        Err(StereoError::Cancelled) => bail!("cancelled: no output was written"),
        Err(e) => Err(e).with_context(|| format!("converting {}", args.input.display())),
    }
}
