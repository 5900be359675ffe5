//! Errors of the web routes. A handler returns a [`WebError`]; [`crate::security::guard`]
//! renders it as JSON (`{"error": ...}`) for clients that ask for JSON, and as an HTML page
//! otherwise.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use stereospot_core::platform::PlatformError;

/// A request that cannot be answered as asked.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct WebError {
    pub status: StatusCode,
    pub message: String,
}

/// The message of an error response, carried to the middleware that renders it.
#[derive(Debug, Clone)]
pub(crate) struct ErrorBody(pub String);

impl WebError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "No such job")
    }

    pub fn page_not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "Page not found")
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    /// A store or storage failure: logged with its cause, shown without it.
    pub fn internal(context: &str, e: &(dyn std::error::Error + 'static)) -> Self {
        tracing::error!(error = %DisplayChain(e), "{context}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong on the server; try again",
        )
    }
}

impl From<PlatformError> for WebError {
    fn from(e: PlatformError) -> Self {
        match &e {
            PlatformError::NotFound(_) => Self::not_found(),
            PlatformError::Transition(t) => Self::conflict(t.to_string()),
            PlatformError::Invalid(m) => Self::bad_request(m.clone()),
            _ => Self::internal("platform request failed", &e),
        }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let mut response = self.status.into_response();
        response.extensions_mut().insert(ErrorBody(self.message));
        response
    }
}

/// Displays an error with its sources, `a: b: c`.
pub(crate) struct DisplayChain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for DisplayChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(s) = source {
            write!(f, ": {s}")?;
            source = s.source();
        }
        Ok(())
    }
}
