//! `POST /api/v1/ingest/single` and `/batch`: the ingest pipeline end to end. Authenticate
//! and rate-limit, read and decode the body, validate each log, reserve quota, append, and
//! answer with one id per accepted log.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::Request;
use ledger_engine::now_micros;
use ledger_engine::timefmt::format_micros;
use serde_json::json;

use super::{blocking, project_access};
use crate::app::{App, Ctx};
use crate::error::{ApiError, ApiResult, ItemError};
use crate::http::{self, Resp};
use crate::ingest::pipeline::{store, Checked};
use crate::ingest::{body, parse, validate};
use crate::limits::admission::Turn;
use crate::meta::{Project, Scope};
use crate::router::Route;

/// Reads, decodes and validates a body (the CPU-heavy part runs off the async workers).
/// The body's claim on the server's body budget comes back with the logs: the caller holds
/// it until it has answered, because the logs parsed from the body live until then.
async fn read_checked<'a>(
    app: &'a App,
    req: Request<Incoming>,
    batch: bool,
    project: &Project,
) -> ApiResult<(Checked, body::Claim, Turn<'a>)> {
    let before_body = if batch {
        crate::ingest::pipeline::expected_logs_before_body(req.headers())
    } else {
        1
    };
    let admitted = app
        .admission
        .admit(&app.engine, project, before_body)
        .await?;
    let window = validate::TimeWindow::new(now_micros(), project.retention_days);
    let framing = parse::framing(req.headers(), batch)?;
    let enc = body::encoding(req.headers())?;
    let limit = app.config.max_body_bytes;
    let (parts, incoming) = req.into_parts();
    let timeout = app.config.body_timeout;
    let raw = body::read_raw(&parts.headers, incoming, limit, timeout, &app.bodies).await?;
    let expected = if batch {
        crate::ingest::pipeline::expected_logs(raw.len())
    } else {
        1
    };
    let turn = app
        .admission
        .turn(&app.engine, project, &admitted, expected)
        .await?;
    // A small plain body takes microseconds to check: not worth a hop to the blocking pool.
    let (checked, claim) = if enc == body::Encoding::Identity && raw.len() <= INLINE_CHECK_BYTES {
        check(raw, enc, limit, framing, batch, &window)?
    } else {
        blocking(move || check(raw, enc, limit, framing, batch, &window)).await??
    };
    Ok((checked, claim, turn))
}

/// Bodies up to this size are validated on the async worker itself.
const INLINE_CHECK_BYTES: usize = 16 << 10;

fn check(
    raw: body::Body,
    enc: body::Encoding,
    limit: usize,
    framing: parse::Framing,
    batch: bool,
    window: &validate::TimeWindow,
) -> ApiResult<(Checked, body::Claim)> {
    let bytes = body::decode(raw, enc, limit)?;
    if !batch {
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| ApiError::InvalidJson("body is not valid UTF-8".into()))?;
        let mut checked = Checked::new(1);
        match validate::validate_in(text, window) {
            Ok(log) => checked.valid.push((0, log, bytes.len() as u64)),
            Err(r) => checked.refuse(0, r, text.to_owned()),
        }
        return Ok((checked, bytes.into_claim()));
    }
    let items = parse::batch(&bytes, framing)?;
    let mut out = Checked::new(items.len());
    for (index, raw) in items.into_iter().enumerate() {
        match validate::validate_in(raw, window) {
            Ok(log) => out.valid.push((index, log, raw.len() as u64)),
            Err(r) => out.refuse(index, r, raw.to_owned()),
        }
    }
    Ok((out, bytes.into_claim()))
}

/// `POST /api/v1/ingest/single` → `202 {"id", "ingested_at"}`.
pub async fn single(app: &Arc<App>, req: Request<Incoming>, ctx: &mut Ctx) -> ApiResult<Resp> {
    let project = project_access(app, &req, ctx, Some(Scope::Ingest), None)?;
    let (checked, _body_claim, _turn) = read_checked(app, req, false, &project).await?;
    let route = Route::IngestSingle.template();
    let stored = store(app, &project, route, checked)
        .await
        .map_err(|e| match e {
            // A single log over quota has no batch to list.
            ApiError::QuotaExceeded { retry_after, .. } => ApiError::QuotaExceeded {
                retry_after,
                errors: Vec::new(),
            },
            // Nor has a single invalid log: its own error is the answer.
            ApiError::BatchRejected { mut errors } if errors.len() == 1 => {
                let e = errors.remove(0);
                ApiError::from(validate::Rejection {
                    code: e.code,
                    message: e.message,
                })
            }
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
    let (checked, _body_claim, _turn) = read_checked(app, req, true, &project).await?;
    let stored = store(app, &project, Route::IngestBatch.template(), checked).await?;
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

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::time::{Duration, Instant};

    use ledger_engine::{Importance, Level, LogType};

    use super::*;
    use crate::limits::day_of;
    use ledger_engine::NewLog;

    fn project(daily_quota: u64) -> Project {
        Project {
            id: 7,
            owner: "owner".into(),
            name: "cancel".into(),
            created_at: 0,
            retention_days: 30,
            daily_quota,
            rate_limit_per_minute: 1_000,
            rate_limit_per_hour: 50_000,
            max_queue_depth: 1_000_000,
        }
    }

    fn checked(n: usize) -> Checked {
        let log = || NewLog::new(now_micros(), Level::Info, LogType::Logger, Importance::Low);
        let mut c = Checked::new(n);
        c.valid = (0..n).map(|i| (i, log(), 100)).collect();
        c
    }

    /// Requests dropped at random points (a client gone, a task aborted) settle their quota
    /// reservation exactly once: none is left held, and usage equals what was stored.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cancelled_requests_settle_their_quota_exactly_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = crate::Config::new(dir.path().join("data"));
        config.pbkdf2_iterations = 10_000;
        config.engine.search = false;
        let app = crate::open_app(config).await.unwrap();
        let p = project(1_000_000);
        app.tenants.insert(p.clone());
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let (mut cancelled, mut finished) = (0, 0);
        for _ in 0..300 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let n = (seed % 50 + 1) as usize;
            // Half the requests run to their end; the others are dropped after a random
            // 1–8 polls, wherever they are then (before the reservation, during the append).
            // Counting polls instead of time keeps the test independent of the machine's
            // speed: a fast disk finishes an append in well under a millisecond.
            let fut = store(&app, &p, "/test", checked(n));
            if seed.is_multiple_of(2) {
                fut.await.unwrap();
                finished += 1;
                continue;
            }
            let polls = seed % 8 + 1;
            tokio::pin!(fut);
            let mut done = false;
            for _ in 0..polls {
                let step =
                    std::future::poll_fn(|cx| std::task::Poll::Ready(fut.as_mut().poll(cx))).await;
                if let std::task::Poll::Ready(r) = step {
                    r.unwrap();
                    done = true;
                    break;
                }
                tokio::task::yield_now().await;
            }
            if done {
                finished += 1;
            } else {
                cancelled += 1;
            }
        }
        assert!(
            cancelled > 10 && finished > 10,
            "both outcomes must occur: {cancelled} cancelled, {finished} finished"
        );
        // A cancelled request's append still runs to its end on the blocking pool.
        let deadline = Instant::now() + Duration::from_secs(120);
        while app.usage.reserved_total() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(
            app.usage.reserved_total(),
            0,
            "a reservation was never given back"
        );
        let day = day_of(now_micros());
        let stored = app.engine.queue_depth(p.id) as u64;
        assert_eq!(app.usage.day(p.id, day).unwrap().logs, stored);
        // The rest of the day's quota is whole: exactly 10 more fit.
        let tight = project(stored + 10);
        let more = store(&app, &tight, "/test", checked(25)).await.unwrap();
        assert_eq!(more.ids.len(), 10);
        app.engine.close().unwrap();
    }
}
