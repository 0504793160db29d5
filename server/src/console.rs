//! The web console: a single-page app (`server/console/`: one HTML page, one ES module, one
//! stylesheet) compiled into the binary, so it works offline and on an air-gapped machine.
//! Served at `/ui/...` (every path there that is not an asset gets the page; the app routes
//! in the browser) and at `/` for a browser (an `Accept` with `text/html` and no credential;
//! Elasticsearch clients get the node info there).
//!
//! Every answer carries a strict Content-Security-Policy: scripts, styles and connections
//! only from this origin, nothing inline, no frames, no plugins. The app itself renders log
//! text with `textContent` only; the policy is the second line of defence.

use hyper::header::{
    HeaderValue, CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use hyper::Response;

use crate::http::{full, Resp};

const INDEX: &str = include_str!("../console/index.html");
const APP_JS: &str = include_str!("../console/app.js");
const STYLE: &str = include_str!("../console/style.css");

/// The policy on every console answer.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; \
    frame-ancestors 'none'";

/// The console's answer for a path under `/ui` (or `/` for a browser).
pub fn page(path: &str) -> Resp {
    let (body, content_type) = match path {
        "/ui/assets/app.js" => (APP_JS, "text/javascript; charset=utf-8"),
        "/ui/assets/style.css" => (STYLE, "text/css; charset=utf-8"),
        p if p.starts_with("/ui/assets/") => return not_found(),
        _ => (INDEX, "text/html; charset=utf-8"),
    };
    let mut r = Response::new(full(body));
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    // Small, and always the binary's own: revalidate rather than serve a stale app.
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

fn not_found() -> Resp {
    crate::http::error(&crate::error::ApiError::not_found("route"))
}

/// Whether a request for `/` comes from a browser that wants a page (not from a client).
pub fn wants_page(headers: &hyper::HeaderMap) -> bool {
    let credential =
        headers.contains_key(hyper::header::AUTHORIZATION) || headers.contains_key("x-api-key");
    let html = headers
        .get(hyper::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("text/html"));
    html && !credential
}
