//! Small HTTP helpers: JSON answers, error answers, query strings.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE, RETRY_AFTER};
use hyper::{Response, StatusCode};
use serde_json::Value;

use crate::error::{ApiError, ApiResult};

/// Every answer's type.
pub type Resp = Response<Full<Bytes>>;

pub const JSON: &str = "application/json; charset=utf-8";

/// A JSON answer.
pub fn json(status: u16, body: &Value) -> Resp {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut r = Response::new(Full::new(Bytes::from(bytes)));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(JSON));
    r
}

/// `204 No Content`.
pub fn no_content() -> Resp {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::NO_CONTENT;
    r
}

/// A plain-text answer (Prometheus exposition).
pub fn text(body: String, content_type: &'static str) -> Resp {
    let mut r = Response::new(Full::new(Bytes::from(body)));
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

/// Decodes `%XX` escapes and `+` (space) of a query-string component.
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// The decoded `(name, value)` pairs of a query string, in order.
pub fn query_pairs(query: Option<&str>) -> ApiResult<Vec<(String, String)>> {
    let Some(q) = query else {
        return Ok(Vec::new());
    };
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            match (percent_decode(k), percent_decode(v)) {
                (Some(k), Some(v)) => Ok((k, v)),
                _ => Err(ApiError::InvalidQuery(format!(
                    "query parameter {p:?} is not valid percent-encoded UTF-8"
                ))),
            }
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
        assert!(query_pairs(Some("a=%zz")).is_err());
        assert!(query_pairs(Some("a=%ff")).is_err());
    }
}
