//! Small HTTP helpers: JSON answers, error answers, query strings.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE, RETRY_AFTER};
use hyper::{Response, StatusCode};
use serde_json::Value;

use crate::error::{ApiError, ApiResult};

/// Every answer's body: whole (almost every route) or streamed (the live tail).
pub type Body = UnsyncBoxBody<Bytes, Infallible>;

/// Every answer's type.
pub type Resp = Response<Body>;

/// A whole body.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed_unsync()
}

pub const JSON: &str = "application/json; charset=utf-8";

/// A JSON answer.
pub fn json(status: u16, body: &Value) -> Resp {
    json_text(status, serde_json::to_vec(body).unwrap_or_default())
}

/// A JSON answer already written as text.
pub fn json_text(status: u16, bytes: Vec<u8>) -> Resp {
    let mut r = Response::new(full(bytes));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(JSON));
    r
}

/// `204 No Content`.
pub fn no_content() -> Resp {
    let mut r = Response::new(full(Bytes::new()));
    *r.status_mut() = StatusCode::NO_CONTENT;
    r
}

/// A plain-text answer (Prometheus exposition).
pub fn text(body: String, content_type: &'static str) -> Resp {
    let mut r = Response::new(full(body));
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// The answer for an error: its status, body, and `Retry-After` / `Allow` headers.
pub fn error(e: &ApiError) -> Resp {
    let mut r = json(e.status(), &e.body());
    if let Some(secs) = e.retry_after() {
        r.headers_mut().insert(RETRY_AFTER, HeaderValue::from(secs));
    }
    if let Some(allow) = e.allow() {
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static(allow));
    }
    r
}

/// Decodes one query-string component: `+` is a space, `%XX` a byte; the bytes must be
/// UTF-8. Refuses, saying why, a `%` not followed by two hex digits (`%4`, `%zz`, and
/// `%+5`, which a decoder built on `u8::from_str_radix` would take as 5) and bytes that are
/// not UTF-8. `percent_decode` alone would pass a malformed escape through as text, so
/// escapes are checked here first: a client that sent one meant something else.
fn decode_component(s: &str) -> Result<String, &'static str> {
    let b = s.as_bytes();
    let well_formed = b.iter().enumerate().all(|(i, &c)| {
        c != b'%'
            || b.get(i + 1..i + 3)
                .is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit))
    });
    if !well_formed {
        return Err("each % must be followed by two hex digits (write a literal % as %25)");
    }
    // `+` first, so that an encoded plus (`%2B`) stays a plus.
    let spaced = s.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| "its escapes do not decode to UTF-8 text")
}

/// The decoded `(name, value)` pairs of a query string, in order; empty pairs (`a=1&&b=2`)
/// are skipped and a name without `=` has the empty value. A malformed escape or one that
/// decodes to invalid UTF-8 is `invalid_query`, naming the parameter.
pub fn query_pairs(query: Option<&str>) -> ApiResult<Vec<(String, String)>> {
    let Some(q) = query else {
        return Ok(Vec::new());
    };
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            decode_component(k)
                .and_then(|k| Ok((k, decode_component(v)?)))
                .map_err(|why| ApiError::InvalidQuery(format!("query parameter {p:?}: {why}")))
        })
        .collect()
}

/// Parses an integer query parameter within `min..=max`.
pub fn int_param(name: &str, v: &str, min: u64, max: u64) -> ApiResult<u64> {
    match v.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(ApiError::InvalidQuery(format!(
            "{name}: expected a whole number from {min} to {max}, got {v:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_decode() {
        let p = query_pairs(Some("a=1&b=x%20y+z&&c&attr.http.status=500")).unwrap();
        assert_eq!(p[1], ("b".into(), "x y z".into()));
        assert_eq!(p[2], ("c".into(), "".into()));
        assert_eq!(p[3].0, "attr.http.status");
        assert_eq!(query_pairs(None).unwrap(), Vec::new());
    }

    #[test]
    fn plus_is_a_space_and_an_encoded_plus_is_a_plus() {
        let p = query_pairs(Some("q=a+b&r=a%2Bb&s=%2b%20&t+u=%C3%BC")).unwrap();
        assert_eq!(p[0].1, "a b");
        assert_eq!(p[1].1, "a+b");
        assert_eq!(p[2].1, "+ ");
        assert_eq!(p[3], ("t u".into(), "\u{fc}".into()));
    }

    #[test]
    fn malformed_escapes_are_invalid_query() {
        for q in [
            "a=%+5", "a=%-5", "a=%4", "a=%", "a=%zz", "a=%4g", "a=1%", "%+5=a", "a=%%41",
        ] {
            let e = query_pairs(Some(q)).expect_err(q);
            assert_eq!(e.code(), "invalid_query", "{q}");
            assert_eq!(e.status(), 400, "{q}");
            assert!(e.to_string().contains("two hex digits"), "{q}: {e}");
        }
    }

    #[test]
    fn escapes_of_invalid_utf8_are_invalid_query() {
        for q in ["a=%FF", "a=%ff", "a=%c3%28", "%80=x", "a=%ED%A0%80"] {
            let e = query_pairs(Some(q)).expect_err(q);
            assert_eq!(e.code(), "invalid_query", "{q}");
            assert!(e.to_string().contains("UTF-8"), "{q}: {e}");
        }
    }
}
