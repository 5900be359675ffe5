use std::path::PathBuf;

/// Errors of the stereo engine.
#[derive(Debug, thiserror::Error)]
pub enum StereoError {
    /// A caller passed something that cannot work (bad size, bad option)
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// No model file where one is needed (the message says where to put it)
    #[error("{0}")]
    ModelMissing(String),
    /// A model file that cannot be loaded or does not have the expected contract
    #[error("model {path}: {message}")]
    Model {
        /// The model file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The inference runtime failed (library missing, session or run error)
    #[error("inference runtime: {0}")]
    Runtime(String),
    /// Downloading a model failed
    #[error("download: {0}")]
    Download(String),
    /// File I/O
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Decoding or encoding frames failed
    #[error(transparent)]
    Media(#[from] stereospot_media::MediaError),
    /// The caller asked to stop
    #[error("cancelled")]
    Cancelled,
}

impl StereoError {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        StereoError::Io {
            path: path.into(),
            source,
        }
    }
}

/// Result of the stereo engine.
pub type Result<T, E = StereoError> = std::result::Result<T, E>;
