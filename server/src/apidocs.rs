//! `GET /api/v1/openapi.json` and `GET /docs`: the OpenAPI document, and Swagger UI
//! rendering it. Swagger UI (Apache-2.0, `server/docs-ui/`, refreshed by its `update.sh`)
//! is compiled into the binary gzip-compressed, served as is to clients that take gzip
//! (every browser) and decompressed once for any other.

use std::sync::OnceLock;

use hyper::header::{
    HeaderValue, ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_SECURITY_POLICY,
    CONTENT_TYPE, REFERRER_POLICY, VARY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use hyper::{HeaderMap, Response};

use crate::http::{full, Resp};

const BUNDLE_GZ: &[u8] = include_bytes!("../docs-ui/swagger-ui-bundle.js.gz");
const STYLE_GZ: &[u8] = include_bytes!("../docs-ui/swagger-ui.css.gz");

const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Ledger API</title>
<link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script>
</body>
</html>
"#;

const INIT: &str = r##"window.ui = SwaggerUIBundle({
  url: "/api/v1/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
});
"##;

/// Swagger UI sets styles inline; scripts, connections and images stay same-origin.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
    connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; \
    frame-ancestors 'none'";

/// `GET /api/v1/openapi.json`.
pub fn openapi() -> Resp {
    let mut r = Response::new(full(crate::openapi::document()));
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    r
}

/// `GET /docs` and `/docs/{asset}`.
pub fn docs(asset: Option<&str>, request: &HeaderMap) -> Resp {
    let (body, content_type): (bytes::Bytes, &'static str) = match asset {
        None => (PAGE.into(), "text/html; charset=utf-8"),
        Some("init.js") => (INIT.into(), "text/javascript; charset=utf-8"),
        Some("swagger-ui-bundle.js") => {
            return compressed(
                BUNDLE_GZ,
                &BUNDLE,
                "text/javascript; charset=utf-8",
                request,
            )
        }
        Some("swagger-ui.css") => {
            return compressed(STYLE_GZ, &STYLE, "text/css; charset=utf-8", request)
        }
        Some(_) => return crate::http::error(&crate::error::ApiError::not_found("route")),
    };
    let mut r = Response::new(full(body));
    headers(r.headers_mut(), content_type);
    r
}

static BUNDLE: OnceLock<bytes::Bytes> = OnceLock::new();
static STYLE: OnceLock<bytes::Bytes> = OnceLock::new();

fn compressed(
    gz: &'static [u8],
    plain: &'static OnceLock<bytes::Bytes>,
    content_type: &'static str,
    request: &HeaderMap,
) -> Resp {
    let takes_gzip = request
        .get_all(ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|e| {
            let mut parts = e.split(';');
            let name = parts.next().unwrap_or("").trim();
            let refused = parts.any(|p| p.trim().replace(' ', "") == "q=0");
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        });
    let mut r = if takes_gzip {
        let mut r = Response::new(full(bytes::Bytes::from_static(gz)));
        r.headers_mut()
            .insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        r
    } else {
        let body = plain.get_or_init(|| {
            let mut out = Vec::new();
            // The input is our own file, checked by a test: it always decompresses.
            let _ = std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(gz), &mut out);
            out.into()
        });
        Response::new(full(body.clone()))
    };
    headers(r.headers_mut(), content_type);
    r.headers_mut()
        .insert(VARY, HeaderValue::from_static("accept-encoding"));
    r
}

fn headers(h: &mut HeaderMap, content_type: &'static str) {
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vendored_assets_decompress_and_are_what_they_say() {
        let plain = |asset: &str| {
            let r = docs(Some(asset), &HeaderMap::new());
            assert_eq!(r.status(), 200);
            assert!(r.headers().get(CONTENT_ENCODING).is_none());
            r
        };
        plain("swagger-ui-bundle.js");
        plain("swagger-ui.css");
        let js = BUNDLE.get().unwrap();
        assert!(
            js.len() > 1_000_000 && std::str::from_utf8(js).unwrap().contains("SwaggerUIBundle")
        );
        let css = STYLE.get().unwrap();
        assert!(std::str::from_utf8(css).unwrap().contains(".swagger-ui"));
        let mut h = HeaderMap::new();
        h.insert(
            ACCEPT_ENCODING,
            HeaderValue::from_static("gzip, deflate, br"),
        );
        let r = docs(Some("swagger-ui-bundle.js"), &h);
        assert_eq!(r.headers()[CONTENT_ENCODING], "gzip");
        assert_eq!(docs(Some("nope.js"), &h).status(), 404);
    }
}
