//! Inference backends: what turns one 2D segment into its stereo version.
//!
//! | backend | where | status |
//! |---|---|---|
//! | [`StubBackend`] | copies the segment | pipeline tests only |
//! | [`HttpBackend`] | POST `{INFERENCE_HTTP_URL}/invocations` (the spec's contract) | here |
//! | `local` | the in-process stereo engine | provided by the binary through [`InferenceBackend`] (the engine lives in `stereospot-stereo`) |
//! | `sagemaker` | SageMaker asynchronous inference | comes with the AWS platform |
//!
//! A backend either converts local files ([`BackendData::LocalFiles`]: the worker downloads the
//! segment, calls [`InferenceBackend::convert`], and uploads the output) or reads and writes the
//! object store itself ([`BackendData::Storage`]: the worker passes the `s3://` URIs in the
//! [`ConvertContext`] and only checks that the output exists afterwards).

use std::fmt::Debug;
use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use stereospot_core::{JobId, StereoMode};

/// Why a conversion failed.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("inference request to {url} failed: {source}")]
    Request {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("inference server answered {status}: {body}")]
    Status { status: u16, body: String },
    /// The engine refused or failed (local engine and future backends).
    #[error("{0}")]
    Engine(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("inference backend {0} is not available in this build")]
    Unavailable(&'static str),
}

/// Where a backend reads its input and writes its output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendData {
    /// Local files: the worker downloads the segment and uploads the output.
    LocalFiles,
    /// The object store, by the URIs in [`ConvertContext`]; the paths passed to
    /// [`InferenceBackend::convert`] point into an empty scratch directory and are not used.
    Storage,
}

/// What a backend may want to know about the segment besides its file.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvertContext {
    pub job_id: JobId,
    pub segment_index: u32,
    pub total_segments: u32,
    /// `s3://bucket/key` of the segment.
    pub input_uri: String,
    /// `s3://bucket/key` the output must be written to.
    pub output_uri: String,
    /// The depth normaliser's seed from the job's statistics ([`crate::analysis`]), if any.
    pub depth_seed: Option<crate::analysis::DepthSeed>,
}

/// Converts one segment.
#[async_trait]
pub trait InferenceBackend: Send + Sync + Debug {
    /// Short name for logs (`stub`, `http`, `local`, ...).
    fn name(&self) -> &'static str;

    /// Where the backend reads and writes.
    fn data(&self) -> BackendData {
        BackendData::LocalFiles
    }

    /// Converts `input` to `output` in `mode`. The output must exist, complete, when this
    /// returns `Ok` (for [`BackendData::Storage`] backends: at `ctx.output_uri`). May be called
    /// again for the same segment (at-least-once delivery): the result must be the same.
    async fn convert(
        &self,
        input: &Path,
        output: &Path,
        mode: StereoMode,
        ctx: &ConvertContext,
    ) -> Result<(), BackendError>;
}

/// Copies the segment unchanged: the pipeline's plumbing without a model. Pipeline tests only.
#[derive(Debug, Clone, Copy, Default)]
pub struct StubBackend;

#[async_trait]
impl InferenceBackend for StubBackend {
    fn name(&self) -> &'static str {
        "stub"
    }

    async fn convert(
        &self,
        input: &Path,
        output: &Path,
        _mode: StereoMode,
        _ctx: &ConvertContext,
    ) -> Result<(), BackendError> {
        tokio::fs::copy(input, output)
            .await
            .map(|_| ())
            .map_err(|source| BackendError::Io {
                context: format!("copying {} to {}", input.display(), output.display()),
                source,
            })
    }
}

/// Calls an inference server: `POST {base_url}/invocations` with
/// `{"s3_input_uri", "s3_output_uri", "mode"}`; a 2xx answer means the output is written.
#[derive(Debug, Clone)]
pub struct HttpBackend {
    client: reqwest::Client,
    url: String,
}

impl HttpBackend {
    /// `base_url` is `INFERENCE_HTTP_URL` (e.g. `http://10.0.1.5:8080`); `timeout` bounds one
    /// call (a segment's whole conversion).
    pub fn new(base_url: &str, timeout: Duration) -> Result<Self, BackendError> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|source| BackendError::Request {
                url: base_url.to_string(),
                source,
            })?;
        Ok(Self {
            client,
            url: format!("{}/invocations", base_url.trim_end_matches('/')),
        })
    }
}

#[async_trait]
impl InferenceBackend for HttpBackend {
    fn name(&self) -> &'static str {
        "http"
    }

    fn data(&self) -> BackendData {
        BackendData::Storage
    }

    async fn convert(
        &self,
        _input: &Path,
        _output: &Path,
        mode: StereoMode,
        ctx: &ConvertContext,
    ) -> Result<(), BackendError> {
        let body = serde_json::json!({
            "s3_input_uri": ctx.input_uri,
            "s3_output_uri": ctx.output_uri,
            "mode": mode.as_str(),
        });
        let request_error = |source| BackendError::Request {
            url: self.url.clone(),
            source,
        };
        let response = self
            .client
            .post(&self.url)
            .json(&body)
            .send()
            .await
            .map_err(request_error)?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let text = response.text().await.unwrap_or_default();
        Err(BackendError::Status {
            status: status.as_u16(),
            body: text.chars().take(500).collect(),
        })
    }
}
