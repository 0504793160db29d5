//! Projects, scoped to the owning account: create, list, read, change, delete. An account
//! owns at most `--max-projects-per-account` projects (default 100): each project costs
//! memory however idle it is (its cache entry, rate-limit windows, rollups, a memtable),
//! so the count is bounded by the server, not by the client.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::Request;
use ledger_engine::now_micros;
use ledger_engine::timefmt::format_micros;
use ring::rand::{SecureRandom, SystemRandom};
use serde_json::{json, Map, Value};

use super::{audit, blocking, owned_project, read_object, session, session_for};
use crate::app::{App, Ctx};
use crate::error::{ApiError, ApiResult};
use crate::http::{self, Resp};
use crate::json;
use crate::meta::Project;
use crate::tenants::project_json;

const FIELDS: [&str; 6] = [
    "name",
    "retention_days",
    "daily_quota",
    "rate_limit_per_minute",
    "rate_limit_per_hour",
    "max_queue_depth",
];
const MAX_NAME_CHARS: usize = 200;
const MAX_LIMIT: u64 = 1_000_000_000_000;

/// Creations run one at a time, so that two concurrent requests of one account cannot both
/// take its last free slot. Creating a project is rare and costs one redb write.
static CREATING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn name(body: &Map<String, Value>) -> ApiResult<Option<String>> {
    let Some(n) = json::opt_str(body, "name")? else {
        return Ok(None);
    };
    let n = n.trim().to_owned();
    if n.is_empty() || n.chars().count() > MAX_NAME_CHARS {
        return Err(ApiError::invalid_field(format!(
            "name: 1 to {MAX_NAME_CHARS} characters"
        )));
    }
    Ok(Some(n))
}

/// Applies the optional limit fields of a body to a project.
fn apply_limits(p: &mut Project, body: &Map<String, Value>) -> ApiResult<()> {
    if let Some(v) = json::opt_u64(body, "retention_days", 1, 36_500)? {
        p.retention_days = v;
    }
    if let Some(v) = json::opt_u64(body, "daily_quota", 0, MAX_LIMIT)? {
        p.daily_quota = v;
    }
    if let Some(v) = json::opt_u64(body, "rate_limit_per_minute", 1, MAX_LIMIT)? {
        p.rate_limit_per_minute = v;
    }
    if let Some(v) = json::opt_u64(body, "rate_limit_per_hour", 1, MAX_LIMIT)? {
        p.rate_limit_per_hour = v;
    }
    if let Some(v) = json::opt_u64(body, "max_queue_depth", 0, MAX_LIMIT)? {
        p.max_queue_depth = v;
    }
    Ok(())
}

/// A random non-zero id not used now and never used by a deleted project.
fn fresh_id(app: &App) -> ApiResult<u64> {
    let rng = SystemRandom::new();
    for _ in 0..16 {
        let mut b = [0u8; 8];
        rng.fill(&mut b)
            .map_err(|_| ApiError::unavailable("the system random source failed", 5))?;
        let id = u64::from_le_bytes(b);
        if id != 0 && !app.tenants.contains(id) && !app.engine.is_deleted(id) {
            return Ok(id);
        }
    }
    Err(ApiError::unavailable("could not pick a project id", 1))
}

/// `POST /api/v1/projects`: 403 `forbidden` when the account already owns
/// `max_projects_per_account` projects (a lowered limit leaves existing projects alone).
pub async fn create(app: &Arc<App>, req: Request<Incoming>, ctx: &mut Ctx) -> ApiResult<Resp> {
    let account = session(app, &req)?;
    let body = read_object(app, req).await?;
    json::only(&body, &FIELDS)?;
    let name = name(&body)?.ok_or_else(|| ApiError::MissingField("name: required".into()))?;
    let d = app.config.project_defaults;
    let mut p = Project {
        id: fresh_id(app)?,
        owner: account.clone(),
        name,
        created_at: now_micros(),
        retention_days: d.retention_days,
        daily_quota: d.daily_quota,
        rate_limit_per_minute: d.rate_limit_per_minute,
        rate_limit_per_hour: d.rate_limit_per_hour,
        max_queue_depth: d.max_queue_depth,
    };
    apply_limits(&mut p, &body)?;
    let one_at_a_time = CREATING.lock().await;
    let max = app.config.max_projects_per_account;
    if app.tenants.list(&account).len() >= max {
        return Err(ApiError::Forbidden(format!(
            "an account has at most {max} projects; delete one to create another"
        )));
    }
    let a = app.clone();
    let rec = p.clone();
    blocking(move || a.meta.put_project(&rec)).await??;
    app.tenants.insert(p.clone());
    drop(one_at_a_time);
    audit(app, ctx, &account, "project.create", Some(p.id), None).await;
    Ok(http::json(201, &project_json(&p)))
}

/// `GET /api/v1/projects`
pub fn list(app: &Arc<App>, req: Request<Incoming>) -> ApiResult<Resp> {
    let account = session(app, &req)?;
    let projects: Vec<Value> = app
        .tenants
        .list(&account)
        .iter()
        .map(|p| project_json(p))
        .collect();
    Ok(http::json(200, &json!({ "projects": projects })))
}

/// `GET /api/v1/projects/{project_id}`
pub fn get(app: &Arc<App>, req: Request<Incoming>, id: &str) -> ApiResult<Resp> {
    let account = session_for(app, &req, id)?;
    let p = owned_project(app, &account, id)?;
    Ok(http::json(200, &project_json(&p)))
}

/// `PATCH /api/v1/projects/{project_id}`
pub async fn update(
    app: &Arc<App>,
    req: Request<Incoming>,
    ctx: &mut Ctx,
    id: &str,
) -> ApiResult<Resp> {
    let account = session_for(app, &req, id)?;
    let current = owned_project(app, &account, id)?;
    let body = read_object(app, req).await?;
    json::only(&body, &FIELDS)?;
    let mut p = (*current).clone();
    if let Some(n) = name(&body)? {
        p.name = n;
    }
    apply_limits(&mut p, &body)?;
    let a = app.clone();
    let rec = p.clone();
    blocking(move || a.meta.put_project(&rec)).await??;
    // A concurrent delete may have won the race; do not bring the project back.
    if app.tenants.contains(p.id) {
        app.tenants.insert(p.clone());
    }
    audit(app, ctx, &account, "project.update", Some(p.id), None).await;
    Ok(http::json(200, &project_json(&p)))
}

/// `DELETE /api/v1/projects/{project_id}`: its logs, keys and usage go with it.
pub async fn delete(
    app: &Arc<App>,
    req: Request<Incoming>,
    ctx: &mut Ctx,
    id: &str,
) -> ApiResult<Resp> {
    let account = session_for(app, &req, id)?;
    let p = owned_project(app, &account, id)?;
    let pid = p.id;
    // The engine goes first: if it fails, the project is still listed and the delete can be
    // retried; the engine's delete is idempotent.
    let a = app.clone();
    blocking(move || a.engine.delete_project(pid)).await??;
    let a = app.clone();
    let keys = blocking(move || a.meta.delete_project(pid)).await??;
    app.auth.keys.remove_project(pid);
    app.tenants.remove(pid);
    app.rate.forget(pid);
    app.usage.forget(pid);
    app.rejected.forget(pid);
    tracing::info!(project = %id, keys = keys.len(), "project deleted");
    audit(app, ctx, &account, "project.delete", Some(pid), None).await;
    Ok(http::no_content())
}

/// `GET /api/v1/projects/{project_id}/rejected?limit=&cursor=`: the log items ingest routes
/// refused one by one, newest first.
pub async fn rejected(app: &Arc<App>, req: Request<Incoming>, id: &str) -> ApiResult<Resp> {
    let account = session_for(app, &req, id)?;
    let p = owned_project(app, &account, id)?;
    let mut limit = 100usize;
    let mut before = None;
    for (k, v) in crate::http::query_pairs(req.uri().query())? {
        match k.as_str() {
            "limit" => limit = crate::http::int_param("limit", &v, 1, 1000)? as usize,
            "cursor" if v.is_empty() => {}
            "cursor" => {
                before = Some(crate::tenants::hex_u64(&v).ok_or_else(|| {
                    ApiError::InvalidQuery("cursor: not a cursor from this route".into())
                })?)
            }
            _ => return Err(ApiError::InvalidQuery(format!("{k}: unknown parameter"))),
        }
    }
    let (a, pid) = (app.clone(), p.id);
    // Items are written behind the answers that refused them; the list shows every item
    // refused before this request.
    let page = blocking(move || {
        a.rejected.catch_up(std::time::Duration::from_secs(2));
        a.rejected.page(pid, limit, before, now_micros())
    })
    .await??;
    let items: Vec<Value> = page
        .items
        .iter()
        .map(|i| {
            json!({
                "at": format_micros(i.at),
                "route": i.route,
                "index": i.index,
                "code": i.code,
                "message": i.message,
                "raw": i.raw,
            })
        })
        .collect();
    Ok(http::json(
        200,
        &json!({"rejected": items, "next_cursor": page.next.map(|s| format!("{s:016x}"))}),
    ))
}
