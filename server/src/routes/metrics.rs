//! `/api/v1/metrics/*` and `/api/v1/logs/patterns`, answered from the engine's in-memory
//! rollups (no log is read); usage stats come from the server's own quota book.

use std::io::Write as _;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::Request;
use ledger_engine::timefmt::{format_date, format_micros};
use ledger_engine::{now_micros, Level};
use ledger_engine::{Bucket, ErrorRateBucket};
use serde_json::{json, Map, Value};

use super::{blocking, project_access, project_id_param};
use crate::app::{App, Ctx};
use crate::error::{ApiError, ApiResult};
use crate::http::{self, int_param, query_pairs, Resp};
use crate::limits::day_of;
use crate::meta::Scope;

const MAX_DAYS: u64 = 366;
/// Longest window a rollup query takes (a year).
const MAX_HOURS: u64 = 24 * 366;
const MAX_RANKED: u64 = 1_000;

/// The parameters of a rollup route: `hours`, `bucket`, `limit` (each where it applies).
struct Params {
    hours: u32,
    bucket: Bucket,
    limit: usize,
}

fn params(pairs: &[(String, String)], default_bucket: Bucket, ranked: bool) -> ApiResult<Params> {
    let mut p = Params {
        hours: 24,
        bucket: default_bucket,
        limit: 50,
    };
    for (k, v) in pairs {
        match k.as_str() {
            "project_id" => {}
            "hours" => p.hours = int_param(k, v, 1, MAX_HOURS)? as u32,
            "bucket" if !ranked => {
                p.bucket = Bucket::parse(v).ok_or_else(|| {
                    ApiError::InvalidQuery("bucket: expected one of 1m, 5m, 15m, 1h, 1d".into())
                })?
            }
            "limit" if ranked => p.limit = int_param(k, v, 1, MAX_RANKED)? as usize,
            _ => return Err(ApiError::InvalidQuery(format!("{k}: unknown parameter"))),
        }
    }
    Ok(p)
}

/// Runs a rollup read on this thread when the rollups have counted everything appended
/// (the read is then microseconds of work in memory, and a hop to the blocking pool would
/// cost more than it), else on the blocking pool, where it waits for the counting.
async fn rollup_read<T: Send + 'static>(
    app: &Arc<App>,
    f: impl FnOnce() -> T + Send + 'static,
) -> ApiResult<T> {
    if app.engine.rollups_caught_up() {
        Ok(f())
    } else {
        blocking(f).await
    }
}

fn by_level(counts: &[u64; 5]) -> Value {
    let mut m = Map::new();
    for l in Level::ALL {
        m.insert(l.as_str().into(), counts[l as usize].into());
    }
    Value::Object(m)
}

/// `GET /api/v1/metrics/error-rate?hours=24&bucket=5m`
pub async fn error_rate(app: &Arc<App>, req: Request<Incoming>, ctx: &mut Ctx) -> ApiResult<Resp> {
    let pairs = query_pairs(req.uri().query())?;
    let project = project_access(app, &req, ctx, Some(Scope::Query), project_id_param(&pairs))?;
    let p = params(&pairs, Bucket::FiveMinutes, false)?;
    let (a, pid) = (app.clone(), project.id);
    let buckets = rollup_read(app, move || {
        a.engine.error_rate(pid, now_micros(), p.hours, p.bucket)
    })
    .await??;
    Ok(http::json_text(200, error_rate_answer(&buckets)))
}

/// The error-rate answer, `{"buckets": [{"start", "total", "errors", "rate"}, …]}`, written
/// as text: a day of five-minute buckets is 288, and a `Value` tree of them was most of the
/// route's time.
fn error_rate_answer(buckets: &[ErrorRateBucket]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + buckets.len() * 96);
    out.extend_from_slice(b"{\"buckets\":[");
    for (i, b) in buckets.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        // Writing into a `Vec` cannot fail; a formatted timestamp needs no escaping.
        let _ = write!(
            out,
            "{{\"start\":\"{}\",\"total\":{},\"errors\":{},\"rate\":",
            format_micros(b.start_us),
            b.total,
            b.errors
        );
        let _ = serde_json::to_writer(&mut out, &b.rate());
        out.push(b'}');
    }
    out.extend_from_slice(b"]}");
    out
}

/// `GET /api/v1/metrics/log-volume?hours=24&bucket=1h`
pub async fn log_volume(app: &Arc<App>, req: Request<Incoming>, ctx: &mut Ctx) -> ApiResult<Resp> {
    let pairs = query_pairs(req.uri().query())?;
    let project = project_access(app, &req, ctx, Some(Scope::Query), project_id_param(&pairs))?;
    let p = params(&pairs, Bucket::Hour, false)?;
    let (a, pid) = (app.clone(), project.id);
    let buckets = rollup_read(app, move || {
        a.engine.log_volume(pid, now_micros(), p.hours, p.bucket)
    })
    .await??;
    let list: Vec<Value> = buckets
        .iter()
        .map(|b| {
            json!({"start": format_micros(b.start_us), "total": b.total, "by_level": by_level(&b.by_level)})
        })
        .collect();
    Ok(http::json(200, &json!({ "buckets": list })))
}

/// `GET /api/v1/metrics/top-errors?hours=24&limit=50`
pub async fn top_errors(app: &Arc<App>, req: Request<Incoming>, ctx: &mut Ctx) -> ApiResult<Resp> {
    let pairs = query_pairs(req.uri().query())?;
    let project = project_access(app, &req, ctx, Some(Scope::Query), project_id_param(&pairs))?;
    let p = params(&pairs, Bucket::Hour, true)?;
    let (a, pid) = (app.clone(), project.id);
    let errors = rollup_read(app, move || {
        a.engine.top_errors(pid, now_micros(), p.hours, p.limit)
    })
    .await??;
    let list: Vec<Value> = errors
        .iter()
        .map(|e| {
            json!({
                "error_fingerprint": e.fingerprint,
                "error_type": e.error_type,
                "error_message": e.error_message,
                "count": e.count,
                "first_seen": format_micros(e.first_seen_us),
                "last_seen": format_micros(e.last_seen_us),
                "sample_log_id": e.sample_log_id.to_string(),
            })
        })
        .collect();
    Ok(http::json(200, &json!({ "errors": list })))
}

/// `GET /api/v1/logs/patterns?hours=24&limit=50`
pub async fn patterns(app: &Arc<App>, req: Request<Incoming>, ctx: &mut Ctx) -> ApiResult<Resp> {
    let pairs = query_pairs(req.uri().query())?;
    let project = project_access(app, &req, ctx, Some(Scope::Query), project_id_param(&pairs))?;
    let p = params(&pairs, Bucket::Hour, true)?;
    let (a, pid) = (app.clone(), project.id);
    let found = rollup_read(app, move || {
        a.engine.patterns(pid, now_micros(), p.hours, p.limit)
    })
    .await??;
    let list: Vec<Value> = found
        .iter()
        .map(|x| {
            json!({
                "pattern": x.pattern,
                "count": x.count,
                "levels": by_level(&x.levels),
                "first_seen": format_micros(x.first_seen_us),
                "last_seen": format_micros(x.last_seen_us),
                "sample_log_id": x.sample_log_id.to_string(),
            })
        })
        .collect();
    Ok(http::json(200, &json!({ "patterns": list })))
}

/// `GET /api/v1/metrics/usage-stats?days=30` → per-day logs and bytes (oldest first, today
/// last) and today's quota standing.
pub async fn usage_stats(app: &Arc<App>, req: Request<Incoming>, ctx: &mut Ctx) -> ApiResult<Resp> {
    let pairs = query_pairs(req.uri().query())?;
    let project = project_access(app, &req, ctx, Some(Scope::Query), project_id_param(&pairs))?;
    let mut days = 30;
    for (k, v) in &pairs {
        match k.as_str() {
            "days" => days = int_param(k, v, 1, MAX_DAYS)?,
            "project_id" => {}
            _ => return Err(ApiError::InvalidQuery(format!("{k}: unknown parameter"))),
        }
    }
    let now = now_micros();
    let today = day_of(now);
    let first = today - days as i64 + 1;
    let (a, pid) = (app.clone(), project.id);
    // In memory once the project's legacy days were read: answered here, as the rollup
    // routes are, instead of after a hop to the blocking pool.
    let rows = match app.usage.range_cached(pid, first, today) {
        Some(rows) => rows,
        None => blocking(move || a.usage.range(pid, first, today)).await??,
    };
    let used_today = rows.last().map_or(0, |(_, u)| u.logs);
    let list: Vec<Value> = rows
        .iter()
        .map(|(d, u)| json!({"date": format_date(d * 86_400_000_000), "logs": u.logs, "bytes": u.bytes}))
        .collect();
    Ok(http::json(
        200,
        &json!({
            "days": list,
            "today": {
                "logs": used_today,
                "daily_quota": project.daily_quota,
                "remaining": project.daily_quota.saturating_sub(used_today),
            },
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_rate_text_is_the_value_tree_it_replaced() {
        let t0 = 1_795_000_000_000_000;
        let buckets: Vec<ErrorRateBucket> = (0..300u64)
            .map(|i| ErrorRateBucket {
                start_us: t0 + i as i64 * 300_000_000,
                total: i * i % 1_000_003,
                errors: (i * 7) % (i * i % 1_000_003 + 1),
            })
            .collect();
        let list: Vec<Value> = buckets
            .iter()
            .map(|b| {
                json!({"start": format_micros(b.start_us), "total": b.total, "errors": b.errors, "rate": b.rate()})
            })
            .collect();
        // Both through the same parser: it reads a float's shortest text back to a
        // neighbour of the value at times, the same neighbour for the same text.
        let tree: Value =
            serde_json::from_slice(&serde_json::to_vec(&json!({ "buckets": list })).unwrap())
                .unwrap();
        let text: Value = serde_json::from_slice(&error_rate_answer(&buckets)).unwrap();
        assert!(
            text == tree,
            "the text answer differs from the Value tree's"
        );
        let empty: Value = serde_json::from_slice(&error_rate_answer(&[])).unwrap();
        assert_eq!(empty, json!({ "buckets": [] }));
    }
}
