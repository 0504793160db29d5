//! `POST /api/v1/ingest/single` and `/batch`: the ingest pipeline end to end. Authenticate
//! and rate-limit, read and decode the body, validate each log, reserve quota, append, and
//! answer with one id per accepted log.

use std::sync::Arc;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::Request;
use ledger_engine::timefmt::format_micros;
use ledger_engine::{now_micros, AppendOptions, NewLog};
use serde_json::json;

use super::{blocking, project_access};
use crate::app::{App, Ctx};
use crate::error::{ApiError, ApiResult, ItemError};
use crate::http::{self, Resp};
use crate::ingest::{body, parse, validate};
use crate::limits::{day_of, secs_to_midnight};
use crate::meta::{Project, Scope};

/// The logs of a request that passed validation, with their size, and those that did not.
struct Checked {
    valid: Vec<(usize, NewLog, u64)>,
    errors: Vec<ItemError>,
    total: usize,
}

/// Reads, decodes and validates a body (the CPU-heavy part runs off the async workers).
async fn read_checked(app: &App, req: Request<Incoming>, batch: bool) -> ApiResult<Checked> {
    let framing = parse::framing(req.headers(), batch)?;
    let enc = body::encoding(req.headers())?;
    let limit = app.config.max_body_bytes;
    let (parts, incoming) = req.into_parts();
    let raw = body::read_raw(&parts.headers, incoming, limit, app.config.body_timeout).await?;
    // A small plain body takes microseconds to check: not worth a hop to the blocking pool.
    if enc == body::Encoding::Identity && raw.len() <= INLINE_CHECK_BYTES {
        return check(raw, enc, limit, framing, batch);
    }
    blocking(move || check(raw, enc, limit, framing, batch)).await?
}

/// Bodies up to this size are validated on the async worker itself.
const INLINE_CHECK_BYTES: usize = 16 << 10;

fn check(
    raw: Bytes,
    enc: body::Encoding,
    limit: usize,
    framing: parse::Framing,
    batch: bool,
) -> ApiResult<Checked> {
    let bytes = body::decode(raw, enc, limit)?;
    if !batch {
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| ApiError::InvalidJson("body is not valid UTF-8".into()))?;
        let log = validate::validate(text).map_err(ApiError::from)?;
        return Ok(Checked {
            valid: vec![(0, log, bytes.len() as u64)],
            errors: Vec::new(),
            total: 1,
        });
    }
    let items = parse::batch(&bytes, framing)?;
    let mut out = Checked {
        valid: Vec::with_capacity(items.len()),
        errors: Vec::new(),
        total: items.len(),
    };
    for (index, raw) in items.into_iter().enumerate() {
        match validate::validate(raw) {
            Ok(log) => out.valid.push((index, log, raw.len() as u64)),
            Err(r) => out.errors.push(ItemError {
                index,
                code: r.code,
                message: r.message,
            }),
        }
    }
    Ok(out)
}

/// What an append stored.
struct Stored {
    /// `(index in the request, id, ingested_at)` per accepted log, in request order.
    ids: Vec<(usize, String, i64)>,
    errors: Vec<ItemError>,
    total: usize,
}

/// Reserves quota, appends what fits, and records usage.
async fn store(app: &Arc<App>, project: &Project, mut checked: Checked) -> ApiResult<Stored> {
    let now = now_micros();
    let day = day_of(now);
    let want = checked.valid.len() as u64;
    let (a, pid, quota) = (app.clone(), project.id, project.daily_quota);
    // The day's figures are in memory after the first request of the day: reserve inline.
    let granted = match a.usage.reserve_cached(pid, day, want, quota) {
        Some(g) => g,
        None => blocking(move || a.usage.reserve(pid, day, want, quota)).await??,
    } as usize;
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
    };
    let a = app.clone();
    let appended = blocking(move || a.engine.append(pid, logs, opts)).await;
    let appended = match appended {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => {
            app.usage.release(pid, day, granted as u64);
            return Err(e.into());
        }
        Err(e) => {
            app.usage.release(pid, day, granted as u64);
            return Err(e);
        }
    };
    app.usage
        .commit(pid, day, granted as u64, appended.len() as u64, bytes);
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

/// `POST /api/v1/ingest/single` → `202 {"id", "ingested_at"}`.
pub async fn single(app: &Arc<App>, req: Request<Incoming>, ctx: &mut Ctx) -> ApiResult<Resp> {
    let project = project_access(app, &req, ctx, Some(Scope::Ingest), None)?;
    let checked = read_checked(app, req, false).await?;
    let stored = store(app, &project, checked).await.map_err(|e| match e {
        // A single log over quota has no batch to list.
        ApiError::QuotaExceeded { retry_after, .. } => ApiError::QuotaExceeded {
            retry_after,
            errors: Vec::new(),
        },
        e => e,
    })?;
    let (_, id, at) = stored.ids.into_iter().next().ok_or(ApiError::Internal)?;
    Ok(http::json(
        202,
        &json!({"id": id, "ingested_at": format_micros(at)}),
    ))
}

/// `POST /api/v1/ingest/batch` → `202 {"accepted", "rejected", "ids", "errors"}`.
pub async fn batch(app: &Arc<App>, req: Request<Incoming>, ctx: &mut Ctx) -> ApiResult<Resp> {
    let project = project_access(app, &req, ctx, Some(Scope::Ingest), None)?;
    let checked = read_checked(app, req, true).await?;
    let stored = store(app, &project, checked).await?;
    let errors: Vec<_> = stored.errors.iter().map(ItemError::to_json).collect();
    let ids: Vec<&str> = stored.ids.iter().map(|(_, id, _)| id.as_str()).collect();
    Ok(http::json(
        202,
        &json!({
            "accepted": ids.len(),
            "rejected": stored.total - ids.len(),
            "ids": ids,
            "errors": errors,
        }),
    ))
}
