//! `GET /api/v1/logs/tail`: new logs as server-sent events, with the search language and
//! every `/logs` filter, resuming after `Last-Event-ID` from storage (see `crate::tail`).

use std::sync::Arc;
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Request, Response};
use ledger_engine::{now_micros, search, Filter, LogId, LogRecord};

use super::logs::scan_request;
use super::{blocking, project_access, project_id_param};
use crate::app::{App, Ctx};
use crate::error::{ApiError, ApiResult};
use crate::http::{query_pairs, Resp};
use crate::meta::Scope;
use crate::tail::{Keep, TailStream};
use crate::tenants::project_hex;

/// Most open tails per project; past it, 429.
pub const MAX_TAILS_PER_PROJECT: usize = 10;
/// Logs a reader may fall behind before it skips to the newest (`event: overflow`).
pub const MAX_BEHIND: usize = 10_000;
/// How far back `Last-Event-ID` resumes; an older id starts from now.
pub const RESUME_WINDOW: Duration = Duration::from_secs(3_600);

/// `GET /api/v1/logs/tail`
pub async fn tail(app: &Arc<App>, req: Request<Incoming>, ctx: &mut Ctx) -> ApiResult<Resp> {
    let pairs = query_pairs(req.uri().query())?;
    let project = project_access(app, &req, ctx, Some(Scope::Query), project_id_param(&pairs))?;
    let expr = match pairs.iter().find(|(k, _)| k == "q") {
        Some((_, q)) if !q.trim().is_empty() => Some(search::parse(q).map_err(|e| {
            ApiError::InvalidQuery(format!("q: at position {}: {}", e.position, e.message))
        })?),
        _ => None,
    };
    let filter = scan_request(&pairs, &["q", "last_event_id"])?.filter;
    let last_id = req
        .headers()
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| {
            pairs
                .iter()
                .find(|(k, _)| k == "last_event_id")
                .map(|(_, v)| v.clone())
        })
        .filter(|s| !s.is_empty());
    // An id this tail never sent (another server's, a made-up one) starts from now, as an
    // id too old to resume from does: an event stream reconnects with whatever it was given.
    let resume_from = last_id.as_deref().and_then(|s| LogId::parse(s.trim()));

    let pid = project.id;
    // Open first, then read what was missed: a log applied in between is in both, and the
    // stream sends it once (by sequence number).
    let tail = app
        .engine
        .open_tail(pid, MAX_BEHIND, MAX_TAILS_PER_PROJECT)
        .ok_or_else(|| ApiError::RateLimited {
            message: format!(
                "this project already has {MAX_TAILS_PER_PROJECT} open tails; close one first"
            ),
            retry_after: 5,
        })?;
    let (after, backlog, skipped) = match resume_from {
        Some(id) => {
            let a = app.clone();
            let window_start = now_micros() - RESUME_WINDOW.as_micros() as i64;
            blocking(move || -> ApiResult<(u64, Vec<LogRecord>, u64)> {
                // Only an id of this project, ingested within the window, resumes.
                match a.engine.get(pid, id)? {
                    Some(r) if r.ingested_at >= window_start => {
                        let (rows, skipped) =
                            a.engine.since(pid, id.seq, window_start, MAX_BEHIND)?;
                        Ok((id.seq, rows, skipped as u64))
                    }
                    _ => Ok((0, Vec::new(), 0)),
                }
            })
            .await??
        }
        None => (0, Vec::new(), 0),
    };
    // A tail of every log sends the events its project's other such tails share.
    let keep: Option<Keep> = if expr.is_none() && filter == Filter::default() {
        None
    } else {
        Some(Box::new(move |r: &LogRecord| {
            filter.matches(r) && expr.as_ref().is_none_or(|e| search::eval::matches(e, r))
        }))
    };
    let mut stopping = app.stopping.subscribe();
    let max_age = app.config.tail_max_age;
    let end = async move {
        tokio::select! {
            _ = stopping.wait_for(|s| *s) => {}
            _ = tokio::time::sleep(max_age) => {}
        }
    };
    let stream = TailStream::new(
        tail,
        app.tail_renders.clone(),
        project_hex(pid),
        keep,
        after,
        backlog,
        skipped,
        app.config.tail_keepalive,
        end,
    );
    let mut r = Response::new(stream.boxed_unsync());
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Proxies such as nginx would otherwise buffer the stream.
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(r)
}
