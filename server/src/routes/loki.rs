//! `POST /loki/api/v1/push`, for Promtail, Grafana Alloy and the Loki outputs of Fluent Bit
//! and Vector: `204` when every entry was stored; `400` naming the entries that were not
//! (the valid ones are stored); errors as plain text, as Loki answers them.

use std::sync::Arc;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_ENCODING, CONTENT_TYPE, RETRY_AFTER};
use hyper::{Request, StatusCode};
use ledger_engine::now_micros;

use super::{blocking, project_access};
use crate::app::{App, Ctx};
use crate::error::{ApiError, ItemError};
use crate::http::{self, Resp};
use crate::ingest::body;
use crate::ingest::loki::{self, EntryName, Format, PushError};
use crate::ingest::pipeline::{self, Checked};
use crate::ingest::validate::TimeWindow;
use crate::meta::Scope;

/// Bodies up to this size are decoded on the async worker itself.
const INLINE_DECODE_BYTES: usize = 16 << 10;

/// At most this many refused entries are named in a `400`; the rest are counted.
const MAX_NAMED: usize = 100;

const TEXT: &str = "text/plain; charset=utf-8";

/// `POST /loki/api/v1/push`.
pub async fn push(app: &Arc<App>, req: Request<Incoming>, ctx: &mut Ctx) -> Result<Resp, ApiError> {
    Ok(match store_push(app, req, ctx).await {
        Ok(resp) => resp,
        Err(e) => text_error(&e),
    })
}

async fn store_push(
    app: &Arc<App>,
    mut req: Request<Incoming>,
    ctx: &mut Ctx,
) -> Result<Resp, ApiError> {
    let project = project_access(app, &req, ctx, Some(Scope::Ingest), None)?;
    // `Content-Encoding: snappy` names the snappy block a protobuf push already is (Vector's
    // Loki sink sends it): nothing more to undo, as Loki reads it.
    let snappy = req
        .headers()
        .get(CONTENT_ENCODING)
        .is_some_and(|v| v.as_bytes().trim_ascii().eq_ignore_ascii_case(b"snappy"));
    if snappy {
        req.headers_mut().remove(CONTENT_ENCODING);
    }
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or("?"));
    let format = Format::from_content_type(content_type).ok_or_else(|| {
        ApiError::UnsupportedMediaType(format!(
            "Content-Type {:?} is not accepted: send application/x-protobuf (snappy) or application/json",
            content_type.unwrap_or_default()
        ))
    })?;
    let window = TimeWindow::new(now_micros(), project.retention_days);
    let (body, _body_claim, _turn) = pipeline::read_body(app, req, &project).await?;
    let body = match format {
        Format::Json => Raw::Sent(body),
        Format::Protobuf => {
            let raw = loki::decompress(&body, app.config.max_body_bytes).map_err(push_error)?;
            drop(body);
            // What the snappy block held counts against the server's body budget too.
            Raw::Unsnapped(app.bodies.admit(Bytes::from(raw))?)
        }
    };
    let small = body.bytes().len() <= INLINE_DECODE_BYTES;
    let decode = move || {
        loki::decode(body.bytes(), format, now_micros())
            .map(|p| (p.names, Checked::from_mapped(p.items, &window)))
            .map_err(push_error)
    };
    let (names, checked) = if small {
        decode()?
    } else {
        blocking(decode).await??
    };
    if checked.total == 0 {
        return Ok(http::no_content());
    }
    let route = crate::router::Route::LokiPush.template();
    let errors = if checked.valid.is_empty() {
        pipeline::refuse_all(app, &project, route, checked)
    } else {
        match pipeline::store(app, &project, route, checked).await {
            Ok(stored) => stored.errors,
            Err(ApiError::BatchRejected { errors }) => errors,
            Err(e) => return Err(e),
        }
    };
    if errors.is_empty() {
        return Ok(http::no_content());
    }
    Ok(text(400, refused_text(&names, &errors)))
}

/// A push body as sent, or as its snappy block decompressed to.
enum Raw {
    Sent(Bytes),
    Unsnapped(body::Body),
}

impl Raw {
    fn bytes(&self) -> &[u8] {
        match self {
            Raw::Sent(b) => b,
            Raw::Unsnapped(b) => b,
        }
    }
}

fn push_error(e: PushError) -> ApiError {
    match e {
        PushError::Invalid(why) => ApiError::InvalidJson(why),
        PushError::TooLarge(why) => ApiError::PayloadTooLarge(why),
    }
}

/// The `400` text: how many entries were not stored, then one line per entry naming it.
fn refused_text(names: &[EntryName], errors: &[ItemError]) -> String {
    let mut out = format!(
        "{} of {} entries were not stored (the others were):\n",
        errors.len(),
        names.len()
    );
    for e in errors.iter().take(MAX_NAMED) {
        match names.get(e.index) {
            Some(name) => out.push_str(&format!("{name}: {}\n", e.message)),
            None => out.push_str(&format!("?: {}\n", e.message)),
        }
    }
    if errors.len() > MAX_NAMED {
        out.push_str(&format!("... and {} more\n", errors.len() - MAX_NAMED));
    }
    out
}

fn text(status: u16, body: String) -> Resp {
    let mut r = http::text(body, TEXT);
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    r
}

/// An error as Loki answers one: its message as plain text, with `Retry-After` where the
/// status calls for one.
fn text_error(e: &ApiError) -> Resp {
    let message = match e {
        ApiError::QuotaExceeded { .. } => {
            "the project's daily quota is used up; nothing was stored".to_owned()
        }
        e => e.to_string(),
    };
    let mut r = text(e.status(), format!("{message}\n"));
    if let Some(secs) = e.retry_after() {
        r.headers_mut().insert(RETRY_AFTER, HeaderValue::from(secs));
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_names_each_entry_up_to_a_bound() {
        let names: Vec<EntryName> = (0..150)
            .map(|entry| EntryName {
                stream: 0,
                entry,
                format: Format::Json,
            })
            .collect();
        let errors: Vec<ItemError> = (0..120)
            .map(|index| ItemError {
                index,
                code: "invalid_field",
                message: "timestamp: bad".into(),
            })
            .collect();
        let t = refused_text(&names, &errors);
        assert!(t.starts_with("120 of 150 entries were not stored"), "{t}");
        assert!(t.contains("streams[0].values[99]: timestamp: bad\n"), "{t}");
        assert!(!t.contains("streams[0].values[100]:"), "{t}");
        assert!(t.ends_with("... and 20 more\n"), "{t}");
    }

    #[test]
    fn errors_are_text_with_retry_after() {
        let r = text_error(&ApiError::RateLimited {
            message: "slow down".into(),
            retry_after: 7,
        });
        assert_eq!(r.status(), 429);
        assert_eq!(r.headers()[CONTENT_TYPE], TEXT);
        assert_eq!(r.headers()[RETRY_AFTER], "7");
        assert_eq!(text_error(&ApiError::Unauthenticated).status(), 401);
    }
}
