//! `/api/v1/metrics/*` and `/api/v1/logs/patterns`. Usage stats come from the server's own
//! quota book. The others will be answered from the engine's in-memory rollups, which are
//! being built separately; until then they answer 503 `unavailable` rather than invent
//! figures.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::Request;
use ledger_engine::now_micros;
use ledger_engine::timefmt::format_date;
use serde_json::{json, Value};

use super::{blocking, project_access, project_id_param};
use crate::app::{App, Ctx};
use crate::error::{ApiError, ApiResult};
use crate::http::{self, int_param, query_pairs, Resp};
use crate::limits::day_of;
use crate::meta::Scope;

const RETRY_AFTER_SECS: u64 = 3600;
const MAX_DAYS: u64 = 366;

/// `GET /api/v1/metrics/{error-rate,log-volume,top-errors}`
pub fn rollup(app: &Arc<App>, req: Request<Incoming>, ctx: &mut Ctx) -> ApiResult<Resp> {
    let pairs = query_pairs(req.uri().query())?;
    project_access(app, &req, ctx, Some(Scope::Query), project_id_param(&pairs))?;
    Err(ApiError::unavailable("not available yet", RETRY_AFTER_SECS))
}

/// `GET /api/v1/logs/patterns`
pub fn patterns(app: &Arc<App>, req: Request<Incoming>, ctx: &mut Ctx) -> ApiResult<Resp> {
    rollup(app, req, ctx)
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
    let rows = blocking(move || a.usage.range(pid, first, today)).await??;
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
