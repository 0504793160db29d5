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
use crate::rejected;
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
    let admitted = app
        .admission
        .admit(
            &app.engine,
            project,
            expected_logs_before_body(req.headers()),
        )
        .await?;
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

/// The same guess before the body is read, from its `Content-Length` (compressed bodies are
/// guessed low, which only makes admission more generous). Without one, the request counts
/// as more than a small append, so it does not take the reserve small appends have past the
/// engine's limits (`ledger_engine::SMALL_APPEND`) and then wait, body read, for its turn.
pub fn expected_logs_before_body(headers: &hyper::HeaderMap) -> usize {
    headers
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
        .map_or(ledger_engine::SMALL_APPEND + 1, expected_logs)
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
    /// A refused item's text for the rejected-logs list.
    pub raw: Option<String>,
}

impl Mapped {
    /// Validates a log already mapped onto the Log schema's field names (a JSON object),
    /// by the same rules as the native routes. A refused object is kept, as mapped, for the
    /// rejected-logs list (unless the door gives its original text with [`Mapped::with_raw`]).
    pub fn from_schema(object: Map<String, Value>, bytes: u64) -> Mapped {
        match validate::validate_object(object) {
            Ok(log) => Mapped {
                log: Ok(log),
                bytes,
                raw: None,
            },
            Err((r, object)) => Mapped {
                log: Err(r),
                bytes,
                raw: Some(Value::Object(object).to_string()),
            },
        }
    }

    /// An item refused before it could be mapped.
    pub fn refused(code: &'static str, message: String, bytes: u64) -> Mapped {
        Mapped {
            log: Err(Rejection { code, message }),
            bytes,
            raw: None,
        }
    }

    /// Gives a refused item the text it was sent as (`text` runs only for a refused item).
    pub fn with_raw(mut self, text: impl FnOnce() -> String) -> Mapped {
        if self.log.is_err() {
            self.raw = Some(text());
        }
        self
    }
}

/// The logs of a request that passed validation, with their size, and those that did not.
pub struct Checked {
    /// `(index in the request, log, usage bytes)`.
    pub valid: Vec<(usize, NewLog, u64)>,
    pub errors: Vec<ItemError>,
    /// The text of each refused item, in the order of `errors`.
    pub raws: Vec<String>,
    pub total: usize,
}

impl Checked {
    /// An empty set for a request of `total` items.
    pub fn new(total: usize) -> Checked {
        Checked {
            valid: Vec::with_capacity(total),
            errors: Vec::new(),
            raws: Vec::new(),
            total,
        }
    }

    /// Refuses item `index`, keeping its text for the rejected-logs list.
    pub fn refuse(&mut self, index: usize, why: Rejection, raw: String) {
        self.errors.push(ItemError {
            index,
            code: why.code,
            message: why.message,
        });
        self.raws.push(raw);
    }

    /// Sorts mapped items into valid and refused, refusing timestamps outside `window`.
    pub fn from_mapped(items: Vec<Mapped>, window: &TimeWindow) -> Checked {
        let mut out = Checked::new(items.len());
        for (index, m) in items.into_iter().enumerate() {
            match m.log {
                Ok(log) => match window.check(log.timestamp) {
                    Ok(()) => out.valid.push((index, log, m.bytes)),
                    Err(r) => out.refuse(index, r, mapped_text(&log)),
                },
                Err(r) => out.refuse(index, r, m.raw.unwrap_or_default()),
            }
        }
        out
    }

    /// The refused items as the rejected-logs list keeps them.
    fn rejected_items(&mut self, route: &str, at: i64) -> Vec<rejected::Item> {
        let raws = std::mem::take(&mut self.raws);
        self.errors
            .iter()
            .zip(raws.into_iter().chain(std::iter::repeat_with(String::new)))
            .map(|(e, raw)| rejected::Item {
                at,
                route: route.to_owned(),
                index: e.index,
                code: e.code.to_owned(),
                message: e.message.clone(),
                raw: rejected::cut(raw, rejected::MAX_RAW_BYTES),
            })
            .collect()
    }
}

/// A log refused after it was mapped (outside the retention window, over quota), as the
/// Log schema's JSON: what the rejected-logs list keeps of it.
pub fn mapped_text(log: &NewLog) -> String {
    Value::Object(ledger_engine::json::log_json(log)).to_string()
}

/// Answers a request none of whose items is valid without touching quota or the engine:
/// the refused items go to the rejected-logs list, their errors come back.
pub fn refuse_all(
    app: &App,
    project: &Project,
    route: &str,
    mut checked: Checked,
) -> Vec<ItemError> {
    app.rejected
        .record(project.id, checked.rejected_items(route, now_micros()));
    checked.errors
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
pub async fn store(
    app: &Arc<App>,
    project: &Project,
    route: &str,
    mut checked: Checked,
) -> ApiResult<Stored> {
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
        let over: Vec<_> = checked.valid.drain(granted..).collect();
        for (index, log, _) in over {
            let why = Rejection {
                code: "quota_exceeded",
                message: format!("the project's daily quota of {quota} logs is used up"),
            };
            checked.refuse(index, why, mapped_text(&log));
        }
    }
    let quota_hit = checked.errors.iter().any(|e| e.code == "quota_exceeded");
    // The refused items go to the rejected-logs list once the rest is stored: a request
    // refused whole (a 429 because nothing fits the quota, a 503 from the engine) is not
    // items refused on their own, so none of its items are kept.
    let items = checked.rejected_items(route, now);
    checked.errors.sort_by_key(|e| e.index);
    app.telemetry.ingested(0, 0, checked.errors.len() as u64);
    if checked.valid.is_empty() {
        return Err(if quota_hit {
            ApiError::QuotaExceeded {
                retry_after: secs_to_midnight(now),
                errors: checked.errors,
            }
        } else {
            // A 400 that names every item: each was refused on its own.
            app.rejected.record(project.id, items);
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
        let appended = a.engine.append(pid, logs, opts)?;
        // Here rather than after the await: the list is kept even if the client is gone.
        a.rejected.record(pid, items);
        Ok::<_, ApiError>(appended)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn with_length(len: Option<usize>) -> hyper::HeaderMap {
        let mut h = hyper::HeaderMap::new();
        if let Some(len) = len {
            h.insert(hyper::header::CONTENT_LENGTH, len.into());
        }
        h
    }

    #[test]
    fn only_small_bodies_count_as_small_appends_before_they_are_read() {
        let small = ledger_engine::SMALL_APPEND;
        // A single log of the usual size, and a few of them, may use the reserve...
        assert!(expected_logs_before_body(&with_length(Some(500))) <= small);
        assert!(expected_logs_before_body(&with_length(Some(2_000))) <= small);
        // ...a batch of a thousand may not, nor a body of unknown length.
        assert!(expected_logs_before_body(&with_length(Some(484_000))) > small);
        assert!(expected_logs_before_body(&with_length(None)) > small);
    }
}
