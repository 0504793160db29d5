//! Request bodies: reading them under a size limit and undoing `Content-Encoding`.
//!
//! The limit applies twice: to the bytes on the wire and to the decompressed bytes. The
//! decoders are read through `take(limit + 1)`, so a decompression bomb costs at most the
//! limit in memory before it is refused with 413.

use std::io::Read;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{HeaderMap, CONTENT_ENCODING, CONTENT_LENGTH};

use crate::error::{ApiError, ApiResult};

/// How much of an oversized body is read and thrown away before answering 413, so that a
/// client still sending it can read the answer instead of meeting a reset connection.
const DRAIN_BYTES: usize = 64 << 20;

/// How a body is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
    Zstd,
}

/// The body's `Content-Encoding`; anything but gzip, zstd or identity is 415.
pub fn encoding(headers: &HeaderMap) -> ApiResult<Encoding> {
    let Some(v) = headers.get(CONTENT_ENCODING) else {
        return Ok(Encoding::Identity);
    };
    let v = v.to_str().unwrap_or("").trim().to_ascii_lowercase();
    match v.as_str() {
        "" | "identity" => Ok(Encoding::Identity),
        "gzip" | "x-gzip" => Ok(Encoding::Gzip),
        "zstd" => Ok(Encoding::Zstd),
        _ => Err(ApiError::UnsupportedMediaType(format!(
            "Content-Encoding {v:?} is not supported: use gzip, zstd or identity"
        ))),
    }
}

fn too_large(limit: usize) -> ApiError {
    ApiError::PayloadTooLarge(format!(
        "request body is larger than the limit of {limit} bytes"
    ))
}

/// Reads the raw body, refusing more than `limit` bytes or a body that takes longer than
/// `timeout` to arrive (a client trickling one, slowloris, is cut off with 408).
pub async fn read_raw(
    headers: &HeaderMap,
    body: Incoming,
    limit: usize,
    timeout: Duration,
) -> ApiResult<Bytes> {
    tokio::time::timeout(timeout, read_limited(headers, body, limit))
        .await
        .map_err(|_| ApiError::RequestTimeout("the request body did not arrive in time".into()))?
}

async fn read_limited(headers: &HeaderMap, mut body: Incoming, limit: usize) -> ApiResult<Bytes> {
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let mut over = declared.is_some_and(|n| n > limit as u64);
    // Too large even to drain: answer at once rather than wait for bytes that would all be
    // thrown away (a client may well declare a terabyte and send nothing).
    if declared.is_some_and(|n| n > limit.saturating_add(DRAIN_BYTES) as u64) {
        return Err(too_large(limit));
    }
    let mut buf = BytesMut::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|_| ApiError::InvalidJson("could not read the request body".into()))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        seen = seen.saturating_add(data.len());
        if seen > limit {
            over = true;
            buf = BytesMut::new();
        }
        if over {
            if seen > limit.saturating_add(DRAIN_BYTES) {
                break;
            }
            continue;
        }
        buf.extend_from_slice(&data);
    }
    if over {
        return Err(too_large(limit));
    }
    Ok(buf.freeze())
}

/// Undoes the encoding, refusing output over `limit` bytes. Blocking (CPU-bound).
pub fn decode(raw: Bytes, enc: Encoding, limit: usize) -> ApiResult<Bytes> {
    let bad = |what: &str, e: std::io::Error| {
        ApiError::InvalidJson(format!("request body is not valid {what} data: {e}"))
    };
    let mut out = Vec::new();
    match enc {
        Encoding::Identity => return Ok(raw),
        Encoding::Gzip => {
            let d = flate2::read::MultiGzDecoder::new(&raw[..]);
            d.take(limit as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| bad("gzip", e))?;
        }
        Encoding::Zstd => {
            // A frame that declares more content than the limit is refused before decoding.
            if let Ok(Some(n)) = zstd::zstd_safe::get_frame_content_size(&raw) {
                if n > limit as u64 {
                    return Err(too_large(limit));
                }
            }
            let mut d =
                zstd::stream::read::Decoder::with_buffer(&raw[..]).map_err(|e| bad("zstd", e))?;
            // Bounds the decoder's window buffer (16 MiB) whatever the frame header asks.
            d.window_log_max(24).map_err(|e| bad("zstd", e))?;
            if let Err(e) = d.take(limit as u64 + 1).read_to_end(&mut out) {
                if e.to_string().contains("memory") {
                    return Err(too_large(limit));
                }
                return Err(bad("zstd", e));
            }
        }
    }
    if out.len() > limit {
        return Err(too_large(limit));
    }
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn gzip_bomb_is_refused_within_the_limit() {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..20 {
            enc.write_all(&zeros).unwrap();
        }
        let gz = enc.finish().unwrap();
        assert!(gz.len() < 100_000);
        let e = decode(Bytes::from(gz), Encoding::Gzip, 10 << 20).unwrap_err();
        assert_eq!(e.status(), 413);
    }

    #[test]
    fn zstd_round_trips_and_bombs_are_refused() {
        let small = zstd::encode_all(&b"{\"logs\":[]}"[..], 3).unwrap();
        assert_eq!(
            &decode(Bytes::from(small), Encoding::Zstd, 1024).unwrap()[..],
            b"{\"logs\":[]}"
        );
        let big = zstd::encode_all(&vec![b'a'; 20 << 20][..], 3).unwrap();
        let e = decode(Bytes::from(big), Encoding::Zstd, 10 << 20).unwrap_err();
        assert_eq!(e.status(), 413);
        let e = decode(Bytes::from_static(b"nope"), Encoding::Zstd, 1024).unwrap_err();
        assert_eq!(e.code(), "invalid_json");
    }
}
