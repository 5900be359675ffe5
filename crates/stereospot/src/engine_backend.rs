//! `INFERENCE_BACKEND=local`: the in-process stereo engine as an [`InferenceBackend`].
//!
//! Each conversion runs on a blocking thread (`spawn_blocking`) with a depth model taken from a
//! small pool: models are loaded on first use (a session costs about a second) and kept for the
//! next segment. The segment is converted video-only: the reassembly muxes the source audio
//! once, so there are no gaps at segment joins.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use stereospot_core::StereoMode;
use stereospot_media::{EncodeOptions, Media};
use stereospot_media::{FrameReader, ReadOptions};
use stereospot_stereo::compose::{AnaglyphMethod, StereoFormat};
use stereospot_stereo::convert::{ConvertOptions, convert_video};
use stereospot_stereo::depth::DepthModel;
use stereospot_stereo::stabilize::{NormalizerOptions, RangeState, relative_range};
use stereospot_workers::{
    BackendError, ConvertContext, InferenceBackend, JobStats, SourceAnalyzer,
};

use crate::model_args::ModelArgs;

/// The stereo format a job's mode asks for.
pub fn format_for(mode: StereoMode) -> StereoFormat {
    match mode {
        StereoMode::Anaglyph => StereoFormat::Anaglyph(AnaglyphMethod::Dubois),
        StereoMode::Sbs => StereoFormat::Sbs,
        StereoMode::Hsbs => StereoFormat::Hsbs,
        StereoMode::Tab => StereoFormat::Tab,
    }
}

type Pool = Arc<Mutex<Vec<Box<dyn DepthModel>>>>;

/// The in-process engine.
pub struct LocalEngineBackend {
    model: ModelArgs,
    media: Media,
    encode: EncodeOptions,
    pool: Pool,
}

impl std::fmt::Debug for LocalEngineBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalEngineBackend")
            .field("model", &self.model)
            .field("encode", &self.encode)
            .finish_non_exhaustive()
    }
}

impl LocalEngineBackend {
    pub fn new(model: ModelArgs, media: Media, encode: EncodeOptions) -> Self {
        LocalEngineBackend {
            model,
            media,
            encode,
            pool: Arc::default(),
        }
    }
}

fn engine_error(e: impl std::error::Error + Send + Sync + 'static) -> BackendError {
    BackendError::Engine(Box::new(e))
}

#[async_trait]
impl InferenceBackend for LocalEngineBackend {
    fn name(&self) -> &'static str {
        "local"
    }

    async fn convert(
        &self,
        input: &Path,
        output: &Path,
        mode: StereoMode,
        ctx: &ConvertContext,
    ) -> Result<(), BackendError> {
        let (input, output) = (input.to_path_buf(), output.to_path_buf());
        let (media, pool, args) = (self.media.clone(), self.pool.clone(), self.model.clone());
        let mut opts = ConvertOptions {
            format: format_for(mode),
            encode: self.encode.clone(),
            ..ConvertOptions::default()
        };
        let seed = ctx.depth_seed.clone();
        let span = tracing::info_span!(
            "convert_segment",
            job_id = %ctx.job_id,
            segment_index = ctx.segment_index
        );
        tokio::task::spawn_blocking(move || -> Result<(), BackendError> {
            let _guard = span.enter();
            let pooled = pool.lock().ok().and_then(|mut p| p.pop());
            let mut model = match pooled {
                Some(m) => m,
                None => args.load(false).map_err(|e| {
                    BackendError::Engine(format!("cannot load the depth model: {e:#}").into())
                })?,
            };
            if let Some(seed) = &seed {
                if seed.model == model.name() {
                    opts.relative_seed = Some(RangeState {
                        lo: seed.range[0],
                        hi: seed.range[1],
                    });
                    tracing::debug!(?seed, "depth normaliser seeded from the job statistics");
                } else {
                    tracing::warn!(stats_model = %seed.model, model = model.name(), "job statistics from another depth model; the segment seeds itself");
                }
            }
            let result = convert_video(
                &media,
                &input,
                &output,
                model.as_mut(),
                &opts,
                &mut |_| {},
                &AtomicBool::new(false),
            );
            if let Ok(mut p) = pool.lock() {
                p.push(model);
            }
            let stats = result.map_err(engine_error)?;
            tracing::info!(
                frames = stats.frames,
                fps = format!("{:.2}", stats.fps()),
                "segment converted"
            );
            Ok(())
        })
        .await
        .map_err(|e| BackendError::Engine(format!("the conversion thread failed: {e}").into()))?
    }
}

/// Computes a job's statistics with the stereo engine's depth model: for each segment joint,
/// the normaliser's seed from the frames just before it (see `stereospot_workers::analysis` and
/// `stereospot_stereo::stabilize`). The source is decoded once, up to the last joint; depth is
/// estimated only for the few frames before each joint.
pub struct EngineAnalyzer {
    model: ModelArgs,
    media: Media,
    normalizer: NormalizerOptions,
    pool: Pool,
}

impl std::fmt::Debug for EngineAnalyzer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineAnalyzer")
            .field("model", &self.model)
            .finish_non_exhaustive()
    }
}

impl EngineAnalyzer {
    pub fn new(model: ModelArgs, media: Media) -> Self {
        EngineAnalyzer {
            model,
            media,
            normalizer: NormalizerOptions::default(),
            pool: Arc::default(),
        }
    }
}

/// The seeds: `depth_seeds[k]` from the `normalizer.seed_frames` frames before `first_frames[k]`.
pub fn analyze_source(
    media: &Media,
    source: &Path,
    first_frames: &[u64],
    model: &mut dyn DepthModel,
    normalizer: &NormalizerOptions,
) -> Result<JobStats, BackendError> {
    let lead = normalizer.seed_frames.max(1) as u64;
    let wanted = |i: u64| {
        first_frames
            .iter()
            .skip(1)
            .position(|&f| i < f && i + lead >= f)
    };
    let last = first_frames.iter().skip(1).max().copied().unwrap_or(0);
    let mut maps: Vec<Vec<stereospot_stereo::DepthMap>> = vec![Vec::new(); first_frames.len()];
    if last > 0 {
        let mut reader =
            FrameReader::open(media, source, &ReadOptions::default()).map_err(engine_error)?;
        let mut frame = stereospot_stereo::RgbFrame::new(0, 0);
        let mut i = 0u64;
        while i < last && reader.read_into(&mut frame).map_err(engine_error)? {
            if let Some(k) = wanted(i) {
                maps[k + 1].push(model.estimate(&frame).map_err(engine_error)?);
            }
            i += 1;
        }
    }
    let depth_seeds = maps
        .iter()
        .enumerate()
        .map(|(k, m)| {
            (k > 0)
                .then(|| relative_range(m.iter(), normalizer))
                .flatten()
                .map(|r| [r.lo, r.hi])
        })
        .collect();
    Ok(JobStats {
        depth_model: model.name().to_string(),
        depth_seeds,
    })
}

#[async_trait]
impl SourceAnalyzer for EngineAnalyzer {
    async fn analyze(&self, source: &Path, first_frames: &[u64]) -> Result<JobStats, BackendError> {
        let (media, pool, args, normalizer) = (
            self.media.clone(),
            self.pool.clone(),
            self.model.clone(),
            self.normalizer,
        );
        let (source, firsts) = (source.to_path_buf(), first_frames.to_vec());
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || {
            let _guard = span.enter();
            let pooled = pool.lock().ok().and_then(|mut p| p.pop());
            let mut model = match pooled {
                Some(m) => m,
                None => args.load(false).map_err(|e| {
                    BackendError::Engine(format!("cannot load the depth model: {e:#}").into())
                })?,
            };
            let result = analyze_source(&media, &source, &firsts, model.as_mut(), &normalizer);
            if let Ok(mut p) = pool.lock() {
                p.push(model);
            }
            result
        })
        .await
        .map_err(|e| BackendError::Engine(format!("the analysis thread failed: {e}").into()))?
    }
}
