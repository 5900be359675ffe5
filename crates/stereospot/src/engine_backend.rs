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
use stereospot_stereo::compose::{AnaglyphMethod, StereoFormat};
use stereospot_stereo::convert::{ConvertOptions, convert_video};
use stereospot_stereo::depth::DepthModel;
use stereospot_workers::{BackendError, ConvertContext, InferenceBackend};

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
        let opts = ConvertOptions {
            format: format_for(mode),
            encode: self.encode.clone(),
            ..ConvertOptions::default()
        };
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
