//! Request bodies: reading them under a size limit and a server-wide memory budget, and
//! undoing `Content-Encoding`.
//!
//! The size limit applies twice: to the bytes on the wire and to the decompressed bytes.
//! The decoders are read through `take(limit + 1)`, so a decompression bomb costs at most
//! the limit in memory before it is refused with 413.
//!
//! The budget ([`BodyBudget`], `--max-body-bytes-in-flight`) bounds what all requests
//! together hold: without it 10,000 connections could each hold a 10 MiB body and its
//! 10 MiB decoded copy. Every buffer a body is read or decoded into draws from it before it
//! grows, so the budget counts bytes as they arrive, not what a client declares (a client
//! declaring 10 MiB and sending nothing holds nothing). Past it the request is 503
//! `unavailable` with `Retry-After`, and nothing of it is stored. The bytes come back as a
//! [`Body`], which holds its [`Claim`] on the budget; the claim is given back when it is
//! dropped. Ingest keeps the claim until it has answered, because the logs parsed from the
//! bytes are in memory until then.

use std::io::Read;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{HeaderMap, CONTENT_ENCODING, CONTENT_LENGTH};

use crate::error::{ApiError, ApiResult};

/// How much of an oversized body is read and thrown away before answering 413, so that a
/// client still sending it can read the answer instead of meeting a reset connection.
const DRAIN_BYTES: usize = 64 << 20;

/// Seconds a client is asked to wait after a 503 for want of budget: bodies in flight are
/// answered within about that, unless they are trickled.
const BUDGET_RETRY_AFTER_SECS: u64 = 1;

/// zstd frames may ask for a window of at most 2^this bytes (16 MiB).
const ZSTD_WINDOW_LOG_MAX: u32 = 24;

/// Decoders are read this much at a time, so the output grows (and draws from the budget)
/// as it inflates.
const DECODE_CHUNK: usize = 64 << 10;

/// The server-wide budget of request body bytes in memory. Cloning shares it.
#[derive(Debug, Clone)]
pub struct BodyBudget {
    state: Arc<BudgetState>,
}

#[derive(Debug)]
struct BudgetState {
    limit: usize,
    used: AtomicUsize,
}

impl BodyBudget {
    /// A budget of `limit` bytes, none of them in use.
    pub fn new(limit: usize) -> BodyBudget {
        BodyBudget {
            state: Arc::new(BudgetState {
                limit,
                used: AtomicUsize::new(0),
            }),
        }
    }

    /// Bytes claimed now, by every request together.
    pub fn in_use(&self) -> usize {
        self.state.used.load(Ordering::Acquire)
    }

    /// Bytes that may still be claimed now.
    pub fn available(&self) -> usize {
        self.state.limit.saturating_sub(self.in_use())
    }

    /// A claim of nothing, to grow as bytes arrive.
    pub fn claim(&self) -> Claim {
        Claim {
            state: self.state.clone(),
            bytes: 0,
        }
    }

    /// Wraps bytes already in memory (`bytes.len()` is claimed), or refuses with 503.
    pub fn admit(&self, bytes: Bytes) -> ApiResult<Body> {
        let mut claim = self.claim();
        claim.grow(bytes.len())?;
        Ok(Body { bytes, claim })
    }
}

fn budget_exhausted(limit: usize) -> ApiError {
    ApiError::unavailable(
        format!(
            "the server holds its limit of {limit} bytes of request bodies in memory; \
             nothing was stored, retry later"
        ),
        BUDGET_RETRY_AFTER_SECS,
    )
}

/// Bytes of the [`BodyBudget`] held by one request; they go back to the budget when the
/// claim is dropped.
#[derive(Debug)]
#[must_use = "a claim gives its bytes back when dropped"]
pub struct Claim {
    state: Arc<BudgetState>,
    bytes: usize,
}

impl Claim {
    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Claims `n` more bytes, or refuses with 503 (claiming nothing) if the budget has not
    /// that much left.
    fn grow(&mut self, n: usize) -> ApiResult<()> {
        let limit = self.state.limit;
        self.state
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(n).filter(|&total| total <= limit)
            })
            .map_err(|_| budget_exhausted(limit))?;
        self.bytes += n;
        Ok(())
    }

    /// Gives back all but `n` bytes (what they covered was freed).
    fn shrink_to(&mut self, n: usize) {
        let freed = self.bytes.saturating_sub(n);
        self.state.used.fetch_sub(freed, Ordering::AcqRel);
        self.bytes -= freed;
    }

    /// Gives every byte back (the buffer it covered was freed).
    fn release(&mut self) {
        self.shrink_to(0);
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.release();
    }
}

/// A request body in memory with its claim on the budget. Dropping it frees the bytes, then
/// gives their claim back (fields drop in order).
#[derive(Debug)]
pub struct Body {
    bytes: Bytes,
    claim: Claim,
}

impl Body {
    /// The bytes and their claim apart, for a caller that needs `Bytes` itself: hold the
    /// claim as long as the bytes, or what is built from them, live.
    pub fn into_parts(self) -> (Bytes, Claim) {
        (self.bytes, self.claim)
    }

    /// Frees the bytes but keeps their claim, for whatever was built from them (parsed
    /// logs) and lives until the request is answered.
    pub fn into_claim(self) -> Claim {
        self.claim
    }
}

impl std::ops::Deref for Body {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

/// Appends `data` to `buf`, first claiming the buffer's new capacity if it must grow: the
/// claim covers what is allocated, not just what is filled. The capacity doubles, up to
/// `max_capacity` (the declared length or the limit), so that a body costs few copies and
/// its buffer is never much larger than itself.
fn append(buf: &mut Vec<u8>, data: &[u8], claim: &mut Claim, max_capacity: usize) -> ApiResult<()> {
    let need = buf.len() + data.len();
    if need > buf.capacity() {
        let capacity = buf.capacity().saturating_mul(2).min(max_capacity).max(need);
        claim.grow(capacity - buf.capacity())?;
        buf.reserve_exact(capacity - buf.len());
    }
    buf.extend_from_slice(data);
    Ok(())
}

/// How a body is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
    /// HTTP's `deflate` is a zlib stream; Loki's clients may send raw DEFLATE under the same
    /// name (Loki reads it so): the zlib header tells them apart.
    Deflate,
    Zstd,
}

/// The body's `Content-Encoding`; anything but gzip, deflate, zstd or identity is 415.
pub fn encoding(headers: &HeaderMap) -> ApiResult<Encoding> {
    let Some(v) = headers.get(CONTENT_ENCODING) else {
        return Ok(Encoding::Identity);
    };
    let v = v.to_str().unwrap_or("").trim().to_ascii_lowercase();
    match v.as_str() {
        "" | "identity" => Ok(Encoding::Identity),
        "gzip" | "x-gzip" => Ok(Encoding::Gzip),
        "deflate" => Ok(Encoding::Deflate),
        "zstd" => Ok(Encoding::Zstd),
        _ => Err(ApiError::UnsupportedMediaType(format!(
            "Content-Encoding {v:?} is not supported: use gzip, deflate, zstd or identity"
        ))),
    }
}

fn too_large(limit: usize) -> ApiError {
    ApiError::PayloadTooLarge(format!(
        "request body is larger than the limit of {limit} bytes"
    ))
}

/// Reads the raw body, refusing more than `limit` bytes (413), a body that takes longer
/// than `timeout` to arrive (a client trickling one, slowloris, is cut off with 408), or
/// one the `budget` cannot hold (503 `unavailable`). A `Content-Length` larger than what is
/// left of the budget is refused at once, without reading the body; a budget that runs out
/// while the body arrives frees what was read and discards the rest (like an oversized
/// body) before answering, so the client can read the answer.
pub async fn read_raw(
    headers: &HeaderMap,
    body: Incoming,
    limit: usize,
    timeout: Duration,
    budget: &BodyBudget,
) -> ApiResult<Body> {
    tokio::time::timeout(timeout, read_limited(headers, body, limit, budget))
        .await
        .map_err(|_| ApiError::RequestTimeout("the request body did not arrive in time".into()))?
}

async fn read_limited(
    headers: &HeaderMap,
    mut body: Incoming,
    limit: usize,
    budget: &BodyBudget,
) -> ApiResult<Body> {
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    // Too large even to drain: answer at once rather than wait for bytes that would all be
    // thrown away (a client may well declare a terabyte and send nothing).
    if declared.is_some_and(|n| n > limit.saturating_add(DRAIN_BYTES) as u64) {
        return Err(too_large(limit));
    }
    let mut refused = declared
        .is_some_and(|n| n > limit as u64)
        .then(|| too_large(limit));
    // A body that could not be held even if it were the only one to arrive from now on:
    // answer before reading (and before hyper sends `100 Continue`).
    if refused.is_none() && declared.is_some_and(|n| n > budget.available() as u64) {
        return Err(budget_exhausted(budget.state.limit));
    }
    let max_capacity = declared.map_or(limit, |n| n as usize);
    let mut claim = budget.claim();
    let mut buf = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|_| ApiError::InvalidJson("could not read the request body".into()))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        seen = seen.saturating_add(data.len());
        if refused.is_none() && seen > limit {
            refused = Some(too_large(limit));
        }
        if refused.is_none() {
            if let Err(e) = append(&mut buf, &data, &mut claim, max_capacity) {
                refused = Some(e);
            }
        }
        if refused.is_some() {
            if buf.capacity() > 0 {
                buf = Vec::new();
                claim.release();
            }
            if seen > limit.saturating_add(DRAIN_BYTES) {
                break;
            }
        }
    }
    if let Some(e) = refused {
        return Err(e);
    }
    Ok(Body {
        bytes: Bytes::from(buf),
        claim,
    })
}

/// Undoes the encoding, refusing output over `limit` bytes (413) or that the budget cannot
/// hold (503). The decoded bytes draw from the same budget as `raw`, as they inflate; the
/// raw bytes and their claim are freed once decoded. Blocking (CPU-bound).
pub fn decode(raw: Body, enc: Encoding, limit: usize) -> ApiResult<Body> {
    let bad = |what: &str, e: std::io::Error| {
        ApiError::InvalidJson(format!("request body is not valid {what} data: {e}"))
    };
    let mut claim = Claim {
        state: raw.claim.state.clone(),
        bytes: 0,
    };
    let mut out = Vec::new();
    match enc {
        Encoding::Identity => return Ok(raw),
        Encoding::Gzip => {
            let d = flate2::read::MultiGzDecoder::new(&raw.bytes[..]);
            // gzip's window is 32 KiB: not worth claiming.
            read_into(d.take(limit as u64 + 1), &mut out, &mut claim, limit, 0)
                .map_err(|e| e.into_api(|e| bad("gzip", e)))?;
        }
        Encoding::Deflate => {
            let data = &raw.bytes[..];
            // A zlib stream starts with a header whose method is 8 (deflate) and whose two
            // bytes, read big-endian, are a multiple of 31 (RFC 1950).
            let zlib = data.len() >= 2
                && data[0] & 0x0f == 8
                && (u16::from(data[0]) << 8 | u16::from(data[1])) % 31 == 0;
            let res = if zlib {
                let d = flate2::read::ZlibDecoder::new(data);
                read_into(d.take(limit as u64 + 1), &mut out, &mut claim, limit, 0)
            } else {
                let d = flate2::read::DeflateDecoder::new(data);
                read_into(d.take(limit as u64 + 1), &mut out, &mut claim, limit, 0)
            };
            res.map_err(|e| e.into_api(|e| bad("deflate", e)))?;
        }
        Encoding::Zstd => {
            // A frame that declares more content than the limit is refused before decoding.
            if let Ok(Some(n)) = zstd::zstd_safe::get_frame_content_size(&raw.bytes) {
                if n > limit as u64 {
                    return Err(too_large(limit));
                }
            }
            let mut d = zstd::stream::read::Decoder::with_buffer(&raw.bytes[..])
                .map_err(|e| bad("zstd", e))?;
            // Bounds the decoder's window buffer whatever the frame header asks.
            d.window_log_max(ZSTD_WINDOW_LOG_MAX)
                .map_err(|e| bad("zstd", e))?;
            let window = 1usize << ZSTD_WINDOW_LOG_MAX;
            read_into(
                d.take(limit as u64 + 1),
                &mut out,
                &mut claim,
                limit,
                window,
            )
            .map_err(|e| {
                e.into_api(|e| {
                    if e.to_string().contains("memory") {
                        too_large(limit)
                    } else {
                        bad("zstd", e)
                    }
                })
            })?;
        }
    }
    if out.len() > limit {
        return Err(too_large(limit));
    }
    // The decoder and its window are gone: keep the claim on the output only, and give the
    // raw bytes back with theirs.
    claim.shrink_to(out.capacity());
    drop(raw);
    Ok(Body {
        bytes: Bytes::from(out),
        claim,
    })
}

/// Why reading a decoder stopped: the decoder failed, or the budget had no room.
enum DecodeError {
    Io(std::io::Error),
    Budget(ApiError),
}

impl DecodeError {
    fn into_api(self, io: impl FnOnce(std::io::Error) -> ApiError) -> ApiError {
        match self {
            DecodeError::Io(e) => io(e),
            DecodeError::Budget(e) => e,
        }
    }
}

/// Reads `r` to its end into `out`, growing `claim` as `out` grows (up to `limit + 1`
/// bytes of capacity: one past the limit tells an oversized output). A decoder that keeps
/// the last `window` bytes of its output (zstd) holds a second copy of them as they are
/// written, so those are claimed too.
fn read_into(
    mut r: impl Read,
    out: &mut Vec<u8>,
    claim: &mut Claim,
    limit: usize,
    window: usize,
) -> Result<(), DecodeError> {
    let mut chunk = vec![0u8; DECODE_CHUNK];
    let mut shadow = 0;
    loop {
        let n = match r.read(&mut chunk) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(DecodeError::Io(e)),
        };
        append(out, &chunk[..n], claim, limit.saturating_add(1)).map_err(DecodeError::Budget)?;
        let want = out.len().min(window);
        if want > shadow {
            claim.grow(want - shadow).map_err(DecodeError::Budget)?;
            shadow = want;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A body in memory, under a budget with room to spare.
    fn body(bytes: Vec<u8>) -> Body {
        BodyBudget::new(1 << 30).admit(Bytes::from(bytes)).unwrap()
    }

    #[test]
    fn gzip_bomb_is_refused_within_the_limit() {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..20 {
            enc.write_all(&zeros).unwrap();
        }
        let gz = enc.finish().unwrap();
        assert!(gz.len() < 100_000);
        let e = decode(body(gz), Encoding::Gzip, 10 << 20).unwrap_err();
        assert_eq!(e.status(), 413);
    }

    #[test]
    fn deflate_reads_zlib_and_raw_streams_and_refuses_bombs() {
        let text = b"{\"logs\":[]}";
        let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), Default::default());
        zlib.write_all(text).unwrap();
        let mut raw = flate2::write::DeflateEncoder::new(Vec::new(), Default::default());
        raw.write_all(text).unwrap();
        for sent in [zlib.finish().unwrap(), raw.finish().unwrap()] {
            assert_eq!(
                &decode(body(sent), Encoding::Deflate, 1024).unwrap()[..],
                text
            );
        }
        let mut bomb = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        bomb.write_all(&vec![0u8; 20 << 20]).unwrap();
        let e = decode(body(bomb.finish().unwrap()), Encoding::Deflate, 10 << 20).unwrap_err();
        assert_eq!(e.status(), 413);
        let e = decode(body(vec![0xff; 16]), Encoding::Deflate, 1024).unwrap_err();
        assert_eq!(e.code(), "invalid_json");
    }

    #[test]
    fn zstd_round_trips_and_bombs_are_refused() {
        let small = zstd::encode_all(&b"{\"logs\":[]}"[..], 3).unwrap();
        assert_eq!(
            &decode(body(small), Encoding::Zstd, 1024).unwrap()[..],
            b"{\"logs\":[]}"
        );
        let big = zstd::encode_all(&vec![b'a'; 20 << 20][..], 3).unwrap();
        let e = decode(body(big), Encoding::Zstd, 10 << 20).unwrap_err();
        assert_eq!(e.status(), 413);
        let e = decode(body(b"nope".to_vec()), Encoding::Zstd, 1024).unwrap_err();
        assert_eq!(e.code(), "invalid_json");
    }

    #[test]
    fn claims_are_given_back_when_bodies_drop() {
        let budget = BodyBudget::new(1000);
        let a = budget.admit(Bytes::from(vec![1u8; 600])).unwrap();
        assert_eq!(budget.in_use(), 600);
        let e = budget.admit(Bytes::from(vec![2u8; 500])).unwrap_err();
        assert_eq!((e.status(), e.code()), (503, "unavailable"));
        assert!(e.retry_after().is_some());
        assert_eq!(budget.in_use(), 600, "a refused claim must hold nothing");
        let claim = a.into_claim();
        assert_eq!((claim.bytes(), budget.in_use()), (600, 600));
        drop(claim);
        assert_eq!(budget.in_use(), 0);
        assert_eq!(budget.available(), 1000);
    }

    #[test]
    fn buffers_claim_their_capacity_before_growing() {
        let budget = BodyBudget::new(100);
        let mut claim = budget.claim();
        let mut buf = Vec::new();
        append(&mut buf, &[0; 30], &mut claim, 100).unwrap();
        append(&mut buf, &[0; 20], &mut claim, 100).unwrap();
        assert_eq!((buf.len(), buf.capacity(), claim.bytes()), (50, 60, 60));
        // Doubling is capped at the declared size, so 90 bytes fit a budget of 100.
        append(&mut buf, &[0; 40], &mut claim, 90).unwrap();
        assert_eq!((buf.capacity(), claim.bytes()), (90, 90));
        let e = append(&mut buf, &[0; 20], &mut claim, 1000).unwrap_err();
        assert_eq!(e.status(), 503);
        assert_eq!((buf.len(), claim.bytes(), budget.in_use()), (90, 90, 90));
    }

    #[test]
    fn decoded_bytes_draw_from_the_budget_and_the_raw_claim_is_freed() {
        let json = vec![b' '; 1 << 20];
        for (enc, raw) in [
            (Encoding::Gzip, {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), Default::default());
                e.write_all(&json).unwrap();
                e.finish().unwrap()
            }),
            (Encoding::Deflate, {
                let mut e = flate2::write::ZlibEncoder::new(Vec::new(), Default::default());
                e.write_all(&json).unwrap();
                e.finish().unwrap()
            }),
            (Encoding::Zstd, zstd::encode_all(&json[..], 3).unwrap()),
        ] {
            // Room for the compressed body but not for what it inflates to: 503, all given
            // back.
            let tight = BodyBudget::new(512 << 10);
            let b = tight.admit(Bytes::from(raw.clone())).unwrap();
            let e = decode(b, enc, 10 << 20).unwrap_err();
            assert_eq!((e.status(), e.code()), (503, "unavailable"), "{enc:?}");
            assert_eq!(tight.in_use(), 0, "{enc:?}");
            // With room: the decoded body holds a claim on its own buffer only.
            let roomy = BodyBudget::new(8 << 20);
            let b = roomy.admit(Bytes::from(raw)).unwrap();
            let decoded = decode(b, enc, 10 << 20).unwrap();
            assert_eq!(&decoded[..], &json[..], "{enc:?}");
            assert!(
                (json.len()..=2 * json.len()).contains(&roomy.in_use()),
                "{enc:?}: {} bytes claimed for {} decoded",
                roomy.in_use(),
                json.len()
            );
            drop(decoded);
            assert_eq!(roomy.in_use(), 0, "{enc:?}");
        }
    }
}
