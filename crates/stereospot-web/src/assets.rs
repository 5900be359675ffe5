//! Static assets, embedded in the binary.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::AppState;

const APP_CSS: &str = include_str!("../static/app.css");
const APP_JS: &str = include_str!("../static/app.js");
const SW_JS: &str = include_str!("../static/sw.js");
const ICON_SVG: &str = include_str!("../static/icon.svg");

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            // Short: a new binary's assets are picked up within minutes, without fingerprints.
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
}

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/static/app.css",
            get(|| async { asset("text/css; charset=utf-8", APP_CSS) }),
        )
        .route(
            "/static/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }),
        )
        .route(
            "/static/icon.svg",
            get(|| async { asset("image/svg+xml", ICON_SVG) }),
        )
        // At the root so that its scope covers every page.
        .route(
            "/sw.js",
            get(|| async { asset("text/javascript; charset=utf-8", SW_JS) }),
        )
}
