//! Splitting an ingest body into logs: one JSON object, a `{"logs": [...]}` batch, or
//! NDJSON (one log per line). Each log stays raw text here; `validate` reads it.

use hyper::header::{HeaderMap, CONTENT_TYPE};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::error::{ApiError, ApiResult};
use crate::json::classify;

/// Most logs one batch may carry.
pub const MAX_BATCH: usize = 1_000;

/// How a body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Json,
    NdJson,
}

/// The media type of a request (lower-case, without parameters), if it sent one.
pub fn media_type(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(CONTENT_TYPE)?.to_str().ok()?;
    Some(
        v.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase(),
    )
}

/// The framing of an ingest body. No `Content-Type` means JSON; NDJSON only where allowed.
pub fn framing(headers: &HeaderMap, ndjson_allowed: bool) -> ApiResult<Framing> {
    match media_type(headers).as_deref() {
        None | Some("application/json") => Ok(Framing::Json),
        Some("application/x-ndjson" | "application/ndjson") if ndjson_allowed => {
            Ok(Framing::NdJson)
        }
        Some(other) => Err(ApiError::UnsupportedMediaType(format!(
            "Content-Type {other:?} is not accepted here: send application/json{}",
            if ndjson_allowed {
                " or application/x-ndjson"
            } else {
                ""
            }
        ))),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope<'a> {
    #[serde(borrow)]
    logs: Vec<&'a RawValue>,
}

/// The logs of a batch body as raw JSON texts, in order.
pub fn batch(body: &[u8], framing: Framing) -> ApiResult<Vec<&str>> {
    let items: Vec<&str> = match framing {
        Framing::Json => {
            let env: Envelope = serde_json::from_slice(body).map_err(classify)?;
            env.logs.into_iter().map(RawValue::get).collect()
        }
        Framing::NdJson => {
            let text = std::str::from_utf8(body)
                .map_err(|_| ApiError::InvalidJson("body is not valid UTF-8".into()))?;
            text.split('\n')
                .map(|l| l.strip_suffix('\r').unwrap_or(l))
                .filter(|l| !l.trim().is_empty())
                .collect()
        }
    };
    if items.is_empty() {
        return Err(ApiError::invalid_field(
            "logs: a batch holds 1 to 1000 logs, this one holds none",
        ));
    }
    if items.len() > MAX_BATCH {
        return Err(ApiError::BatchTooLarge(format!(
            "a batch holds at most {MAX_BATCH} logs, this one holds {}",
            items.len()
        )));
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_split_in_both_framings() {
        let j = br#"{"logs": [{"a": 1}, {"b": [2]}]}"#;
        assert_eq!(
            batch(j, Framing::Json).unwrap(),
            vec![r#"{"a": 1}"#, r#"{"b": [2]}"#]
        );
        let n = b"{\"a\":1}\r\n\n  \n{\"b\":2}\n";
        assert_eq!(batch(n, Framing::NdJson).unwrap().len(), 2);
        assert_eq!(
            batch(b"{}", Framing::Json).unwrap_err().code(),
            "missing_field"
        );
        assert_eq!(
            batch(b"{\"logs\":[], \"x\":1}", Framing::Json)
                .unwrap_err()
                .code(),
            "invalid_field"
        );
        assert_eq!(
            batch(b"{\"logs\":[]}", Framing::Json).unwrap_err().code(),
            "invalid_field"
        );
        assert_eq!(
            batch(b"{\"logs\":", Framing::Json).unwrap_err().code(),
            "invalid_json"
        );
        assert_eq!(
            batch(b"{\"logs\":5}", Framing::Json).unwrap_err().code(),
            "invalid_field"
        );
        let big = format!("{{\"logs\":[{}]}}", vec!["{}"; 1001].join(","));
        assert_eq!(
            batch(big.as_bytes(), Framing::Json).unwrap_err().code(),
            "batch_too_large"
        );
    }
}
