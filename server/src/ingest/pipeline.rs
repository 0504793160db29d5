//! The part of ingest that every front door shares. A front door (native JSON, OTLP,
//! Elasticsearch `_bulk`, Loki push) owns only its decoding and its mapping onto the Log
//! schema; it hands [`Mapped`] items here, and from then on every door is the same:
//! validate → retention window → quota → append → one id per accepted log.

use std::sync::Arc;

use ledger_engine::{now_micros, AppendOptions, Level, NewLog};
use serde_json::{Map, Value};

use super::body;
use super::validate::{self, Rejection, TimeWindow};
use crate::app::App;
use crate::error::{ApiError, ApiResult, ItemError};
use crate::limits::admission::Turn;
use crate::limits::{day_of, secs_to_midnight};
use crate::meta::Project;
use crate::routes::blocking;

/// Reads a front door's body for `project`: first admission (held for capacity while the
/// engine is under pressure, 503 past the wait, before a byte of the body is read), then
/// the body within the size limit (413) and the server's body budget (503), undoing its
/// `Content-Encoding` (gzip, zstd; others 415) off the async workers when it is large.
/// Then the request's turn (see `limits::admission`), before the body is decoded. Hold the
/// claim and the turn until the request is answered.
pub async fn read_body<'a>(
    app: &'a App,
    req: hyper::Request<hyper::body::Incoming>,
    project: &Project,
) -> ApiResult<(bytes::Bytes, body::Claim, Turn<'a>)> {
    let enc = body::encoding(req.headers())?;
    let admitted = app.admission.admit(&app.engine, project).await?;
    let limit = app.config.max_body_bytes;
    let (parts, incoming) = req.into_parts();
    let raw = body::read_raw(
        &parts.headers,
        incoming,
        limit,
        app.config.body_timeout,
        &app.bodies,
    )
    .await?;
    let turn = app
        .admission
        .turn(&app.engine, project, &admitted, expected_logs(raw.len()))
        .await?;
    let decoded = if enc == body::Encoding::Identity {
        raw
    } else {
        blocking(move || body::decode(raw, enc, limit)).await??
    };
    let (bytes, claim) = decoded.into_parts();
    Ok((bytes, claim, turn))
}

/// How many logs a body of `len` bytes likely carries, before it is parsed: one per
/// 128 bytes (a small log is about that as JSON), at most a full batch. A guess that only
/// decides how much room a request waits for; `append` checks the real count.
pub fn expected_logs(len: usize) -> usize {
    (len / 128).clamp(1, super::parse::MAX_BATCH)
}

/// A level as shippers name it: the Log schema's names (`Level::parse`: `warn`, `fatal`,
/// any case), plus those loggers, SDKs and syslog use (`trace`, `information`, `notice`,
/// `err`, `emerg`, ...). Every front door reads levels through this one table.
pub fn level_name(text: &str) -> Option<Level> {
    Level::parse(text).or_else(|| match text.trim().to_ascii_lowercase().as_str() {
        "trace" | "verbose" => Some(Level::Debug),
        "information" | "notice" => Some(Level::Info),
        "err" => Some(Level::Error),
        "crit" | "alert" | "emerg" | "emergency" | "panic" => Some(Level::Critical),
        _ => None,
    })
}

/// A trace or span id as the Log schema takes it: 1 to `MAX_ID_CHARS` hex digits.
pub fn is_hex_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= validate::MAX_ID_CHARS && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// One item as a front door decoded and mapped it.
pub struct Mapped {
    /// The log, or why this item alone is refused (a message naming the field).
    pub log: Result<NewLog, Rejection>,
    /// What the item counts for in the project's daily usage bytes: its size as sent.
    pub bytes: u64,
}

impl Mapped {
    /// Validates a log already mapped onto the Log schema's field names (a JSON object),
    /// by the same rules as the native routes.
    pub fn from_schema(object: Map<String, Value>, bytes: u64) -> Mapped {
        Mapped {
            log: validate::validate_object(object),
            bytes,
        }
    }

    /// An item refused before it could be mapped.
    pub fn refused(code: &'static str, message: String, bytes: u64) -> Mapped {
        Mapped {
            log: Err(Rejection { code, message }),
            bytes,
        }
    }
}

/// The logs of a request that passed validation, with their size, and those that did not.
pub struct Checked {
    /// `(index in the request, log, usage bytes)`.
    pub valid: Vec<(usize, NewLog, u64)>,
    pub errors: Vec<ItemError>,
    pub total: usize,
}

impl Checked {
    /// Sorts mapped items into valid and refused, refusing timestamps outside `window`.
    pub fn from_mapped(items: Vec<Mapped>, window: &TimeWindow) -> Checked {
        let mut out = Checked {
            valid: Vec::with_capacity(items.len()),
            errors: Vec::new(),
            total: items.len(),
        };
        for (index, m) in items.into_iter().enumerate() {
            match m
                .log
                .and_then(|log| window.check(log.timestamp).map(|()| log))
            {
                Ok(log) => out.valid.push((index, log, m.bytes)),
                Err(r) => out.errors.push(ItemError {
                    index,
                    code: r.code,
                    message: r.message,
                }),
            }
        }
        out
    }
}

/// What an append stored.
pub struct Stored {
    /// `(index in the request, id, ingested_at)` per accepted log, in request order.
    pub ids: Vec<(usize, String, i64)>,
    pub errors: Vec<ItemError>,
    pub total: usize,
}

/// Reserves quota, appends what fits, and answers with the ids.
///
/// The reservation travels into the blocking append and is dropped when the append is
/// over, whether this future is still awaited or was dropped (client gone, shutdown): the
/// engine has counted whatever it stored by then, so the grant is given back exactly once.
pub async fn store(app: &Arc<App>, project: &Project, mut checked: Checked) -> ApiResult<Stored> {
    let now = now_micros();
    let day = day_of(now);
    let want = checked.valid.len() as u64;
    let (a, pid, quota) = (app.clone(), project.id, project.daily_quota);
    // The day's figures are in memory after the first request of the day: reserve inline.
    let reservation = match app.usage.reserve_cached(pid, day, want, quota) {
        Some(r) => r,
        None => blocking(move || a.usage.reserve(pid, day, want, quota)).await??,
    };
    let granted = reservation.granted() as usize;
    if granted < checked.valid.len() {
        for (index, _, _) in checked.valid.drain(granted..) {
            checked.errors.push(ItemError {
                index,
                code: "quota_exceeded",
                message: format!("the project's daily quota of {quota} logs is used up"),
            });
        }
        checked.errors.sort_by_key(|e| e.index);
    }
    app.telemetry.ingested(0, 0, checked.errors.len() as u64);
    if checked.valid.is_empty() {
        let quota_hit = checked.errors.iter().any(|e| e.code == "quota_exceeded");
        return Err(if quota_hit {
            ApiError::QuotaExceeded {
                retry_after: secs_to_midnight(now),
                errors: checked.errors,
            }
        } else {
            ApiError::BatchRejected {
                errors: checked.errors,
            }
        });
    }
    let bytes: u64 = checked.valid.iter().map(|(_, _, b)| b).sum();
    let indexes: Vec<usize> = checked.valid.iter().map(|(i, _, _)| *i).collect();
    let logs: Vec<NewLog> = checked.valid.into_iter().map(|(_, l, _)| l).collect();
    let opts = AppendOptions {
        max_queue_depth: Some(usize::try_from(project.max_queue_depth).unwrap_or(usize::MAX)),
        usage_bytes: bytes,
    };
    let a = app.clone();
    let appended = blocking(move || {
        let _settled_after_the_append = reservation;
        a.engine.append(pid, logs, opts)
    })
    .await??;
    app.telemetry.ingested(appended.len() as u64, bytes, 0);
    Ok(Stored {
        ids: indexes
            .into_iter()
            .zip(appended)
            .map(|(i, a)| (i, a.id.to_string(), a.ingested_at))
            .collect(),
        errors: checked.errors,
        total: checked.total,
    })
}
