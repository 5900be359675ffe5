//! The middleware every web route passes through: the access token (when configured), the
//! cross-site check on state-changing methods, error rendering (JSON or HTML, as asked) and
//! the security headers.
//!
//! Cross-site requests: browsers send `Sec-Fetch-Site` on every request (all current ones) and
//! `Origin` on every POST/PATCH; a request whose `Sec-Fetch-Site` is not `same-origin` (or
//! `none`), or whose `Origin` is not this server's, is refused with 403. A request with neither
//! header does not come from a browser page (curl, scripts) and is let through: no cookie or
//! ambient credential is at stake for those. The check runs before the token check's cookie can
//! matter, so a token cookie cannot be used by another site either.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use base64::Engine as _;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::AppState;
use crate::error::ErrorBody;

/// The cookie that carries the access token after a `?token=` visit.
pub const TOKEN_COOKIE: &str = "stereospot_token";

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
img-src 'self' data:; media-src 'self' https: blob:; connect-src 'self' https:; \
worker-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'";

/// Whether the client asked for JSON (`Accept: application/json`, or a JSON body without an
/// `Accept` that prefers HTML).
pub fn wants_json(headers: &HeaderMap) -> bool {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if accept.contains("application/json") {
        return true;
    }
    let json_body = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.trim_start().starts_with("application/json"));
    json_body && !accept.contains("text/html")
}

/// Whether a request came over HTTPS to the proxy in front of us (`X-Forwarded-Proto: https`
/// or `Forwarded: proto=https`). The app itself speaks plain HTTP.
pub fn is_https(headers: &HeaderMap) -> bool {
    let xfp = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"));
    let forwarded = headers
        .get(header::FORWARDED)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split([';', ','])
                .any(|p| p.trim().eq_ignore_ascii_case("proto=https"))
        });
    xfp || forwarded
}

/// Why a state-changing request looks cross-site; `None` when it does not.
pub fn cross_site_reason(headers: &HeaderMap) -> Option<&'static str> {
    if let Some(site) = headers.get("sec-fetch-site") {
        return match site.to_str().unwrap_or("") {
            "same-origin" | "none" => None,
            _ => Some("cross-site request refused (Sec-Fetch-Site)"),
        };
    }
    let origin = headers.get(header::ORIGIN)?;
    let Ok(origin) = origin.to_str() else {
        return Some("cross-site request refused (Origin)");
    };
    let authority = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    match (authority, host) {
        (Some(a), Some(h)) if a.eq_ignore_ascii_case(h) => None,
        _ => Some("cross-site request refused (Origin)"),
    }
}

fn is_state_changing(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// How a request presented the access token.
#[derive(Debug, PartialEq, Eq)]
enum TokenCheck {
    Valid,
    /// In the query string: accepted, and remembered in a cookie.
    ValidInQuery,
    Missing,
}

fn same_secret(given: &str, expected: &str) -> bool {
    // Hash first so the comparison is constant-time regardless of lengths.
    let a = Sha256::digest(given.as_bytes());
    let b = Sha256::digest(expected.as_bytes());
    bool::from(a.ct_eq(&b))
}

fn check_token(request: &Request, expected: &str) -> TokenCheck {
    let headers = request.headers();
    if let Some(auth) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        if let Some(bearer) = auth.strip_prefix("Bearer ")
            && same_secret(bearer.trim(), expected)
        {
            return TokenCheck::Valid;
        }
        if let Some(basic) = auth.strip_prefix("Basic ")
            && let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(basic.trim())
            && let Ok(decoded) = String::from_utf8(decoded)
            && let Some((_, password)) = decoded.split_once(':')
            && same_secret(password, expected)
        {
            return TokenCheck::Valid;
        }
    }
    for cookies in headers.get_all(header::COOKIE) {
        let Ok(cookies) = cookies.to_str() else {
            continue;
        };
        for pair in cookies.split(';') {
            if let Some((name, value)) = pair.trim().split_once('=')
                && name == TOKEN_COOKIE
                && same_secret(
                    &percent_encoding::percent_decode_str(value).decode_utf8_lossy(),
                    expected,
                )
            {
                return TokenCheck::Valid;
            }
        }
    }
    if let Some(query) = request.uri().query() {
        for pair in query.split('&') {
            if let Some(value) = pair.strip_prefix("token=") {
                let value = percent_encoding::percent_decode_str(value).decode_utf8_lossy();
                if same_secret(&value, expected) {
                    return TokenCheck::ValidInQuery;
                }
            }
        }
    }
    TokenCheck::Missing
}

/// The middleware (see the module docs).
pub async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let json = wants_json(request.headers());
    let mut remember_token = None;
    if let Some(expected) = state.config.access_token.as_deref()
        && request.uri().path() != "/healthz"
    {
        match check_token(&request, expected) {
            TokenCheck::Valid => {}
            TokenCheck::ValidInQuery => remember_token = Some(expected.to_string()),
            TokenCheck::Missing => {
                let mut r = render_error(
                    StatusCode::UNAUTHORIZED,
                    "This StereoSpot server needs its access token",
                    json,
                );
                r.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"StereoSpot\", charset=\"UTF-8\""),
                );
                return with_security_headers(r);
            }
        }
    }
    if is_state_changing(request.method())
        && let Some(reason) = cross_site_reason(request.headers())
    {
        tracing::warn!(path = %request.uri().path(), reason, "refused a cross-site request");
        return with_security_headers(render_error(StatusCode::FORBIDDEN, reason, json));
    }
    let mut response = next.run(request).await;
    if let Some(ErrorBody(message)) = response.extensions_mut().remove::<ErrorBody>() {
        let status = response.status();
        let headers = std::mem::take(response.headers_mut());
        response = render_error(status, &message, json);
        for (name, value) in &headers {
            if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
                response.headers_mut().insert(name.clone(), value.clone());
            }
        }
    }
    if let Some(token) = remember_token {
        let cookie = format!(
            "{TOKEN_COOKIE}={}; Path=/; HttpOnly; SameSite=Lax; Max-Age=31536000",
            percent_encoding::utf8_percent_encode(&token, percent_encoding::NON_ALPHANUMERIC)
        );
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    with_security_headers(response)
}

fn render_error(status: StatusCode, message: &str, json: bool) -> Response {
    if json {
        let body = serde_json::json!({ "error": message, "status": status.as_u16() });
        (status, axum::Json(body)).into_response()
    } else {
        let page = crate::views::ErrorPage {
            nav: crate::views::Nav::plain(),
            status: status.as_u16(),
            reason: status.canonical_reason().unwrap_or("Error"),
            message,
        };
        match crate::views::render(&page) {
            Ok(html) => (status, Html(html)).into_response(),
            Err(_) => (status, Body::from(message.to_string())).into_response(),
        }
    }
}

fn with_security_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    let defaults = [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::CONTENT_SECURITY_POLICY, CSP),
    ];
    for (name, value) in defaults {
        if !h.contains_key(&name) {
            h.insert(name, HeaderValue::from_static(value));
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn cross_site_detection() {
        assert_eq!(cross_site_reason(&headers(&[])), None);
        assert_eq!(
            cross_site_reason(&headers(&[("sec-fetch-site", "same-origin")])),
            None
        );
        assert!(cross_site_reason(&headers(&[("sec-fetch-site", "cross-site")])).is_some());
        assert!(cross_site_reason(&headers(&[("sec-fetch-site", "same-site")])).is_some());
        assert_eq!(
            cross_site_reason(&headers(&[
                ("origin", "http://127.0.0.1:8080"),
                ("host", "127.0.0.1:8080")
            ])),
            None
        );
        assert!(
            cross_site_reason(&headers(&[
                ("origin", "http://evil.example"),
                ("host", "127.0.0.1:8080")
            ]))
            .is_some()
        );
        assert!(cross_site_reason(&headers(&[("origin", "null"), ("host", "h")])).is_some());
    }

    #[test]
    fn https_detection() {
        assert!(is_https(&headers(&[("x-forwarded-proto", "https")])));
        assert!(is_https(&headers(&[(
            "forwarded",
            "for=1.2.3.4;proto=https"
        )])));
        assert!(!is_https(&headers(&[("x-forwarded-proto", "http")])));
        assert!(!is_https(&headers(&[])));
    }
}
