//! Deleting logs by query, for a project's owner: `POST /api/v1/projects/{id}/deletions`
//! starts one (202), `GET .../deletions[/{id}]` says where they stand. The work runs in
//! the background (`crate::deletions`), one deletion at a time, and resumes after a restart.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::Request;
use ledger_engine::now_micros;
use ledger_engine::search::{self, Expr};
use ledger_engine::timefmt::format_micros;
use ledger_engine::Filter;
use serde_json::{json, Map, Value};

use super::logs::scan_request;
use super::{audit, blocking, owned_project, read_object, session_for};
use crate::app::{App, Ctx};
use crate::error::{ApiError, ApiResult};
use crate::http::{self, Resp};
use crate::meta::DeletionRecord;
use crate::tenants::parse_project_id;

/// What a deletion matches: the `/logs` filters (time range included) and the query.
pub struct Conditions {
    pub filter: Filter,
    pub expr: Option<Expr>,
}

/// Fields a deletion request may hold besides `q`: the filters of `/logs`.
const FILTERS: &[&str] = &[
    "start_time",
    "end_time",
    "level",
    "log_type",
    "importance",
    "environment",
    "service",
    "release",
    "error_fingerprint",
    "error_type",
    "source",
    "platform",
    "language",
    "trace_id",
    "span_id",
];

/// Checks a request body's conditions (at least one) and parses them.
pub fn conditions(body: &Map<String, Value>) -> ApiResult<Conditions> {
    let mut pairs = Vec::new();
    let mut q = None;
    for (k, v) in body {
        let text = match v {
            Value::String(s) => s.clone(),
            // Enumerated filters also as lists: "level": ["error", "critical"].
            Value::Array(items) if items.iter().all(Value::is_string) => items
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(","),
            Value::Null => continue,
            _ => return Err(ApiError::invalid_field(format!("{k}: expected a string"))),
        };
        if k == "q" {
            q = Some(text);
        } else if FILTERS.contains(&k.as_str()) || k.starts_with("attr.") {
            pairs.push((k.clone(), text));
        } else {
            return Err(ApiError::invalid_field(format!(
                "{k}: unknown field (expected q, start_time, end_time or a /logs filter)"
            )));
        }
    }
    if q.is_none() && pairs.is_empty() {
        return Err(ApiError::MissingField(
            "at least one condition is required: q, start_time, end_time or a /logs filter".into(),
        ));
    }
    let filter = scan_request(&pairs, &[])
        .map_err(|e| match e {
            ApiError::InvalidQuery(m) => ApiError::invalid_field(m),
            e => e,
        })?
        .filter;
    let expr = match q {
        Some(q) => Some(search::parse(&q).map_err(|e| {
            ApiError::InvalidQuery(format!("q: at position {}: {}", e.position, e.message))
        })?),
        None => None,
    };
    Ok(Conditions { filter, expr })
}

fn deletion_hex(id: u64) -> String {
    format!("{id:016x}")
}

fn parse_deletion_id(s: &str) -> Option<u64> {
    parse_project_id(s)
}

/// The API form of a deletion.
pub fn deletion_json(d: &DeletionRecord, deleted: u64) -> Value {
    let mut v = json!({
        "id": deletion_hex(d.id),
        "state": d.state,
        "deleted": deleted,
        "created_at": format_micros(d.created_at),
        "finished_at": d.finished_at.map(format_micros),
    });
    if let Some(e) = &d.error {
        v["error"] = json!(e);
    }
    v
}

/// `POST /api/v1/projects/{project_id}/deletions` → `202 {"id", "state", "created_at"}`.
pub async fn create(
    app: &Arc<App>,
    req: Request<Incoming>,
    ctx: &mut Ctx,
    id: &str,
) -> ApiResult<Resp> {
    let account = session_for(app, &req, id)?;
    let project = owned_project(app, &account, id)?;
    let body = read_object(app, req).await?;
    conditions(&body)?;
    let (a, pid, acc) = (app.clone(), project.id, account.clone());
    let rec = blocking(move || -> ApiResult<DeletionRecord> {
        let id = a.meta.next_deletion_id()?;
        let rec = DeletionRecord {
            id,
            project: pid,
            account: acc,
            created_at: now_micros(),
            // Every log acknowledged before now has a smaller sequence number.
            through: a.engine.next_seq().saturating_sub(1),
            conditions: body,
            state: "running".into(),
            finished_at: None,
            error: None,
            deleted: 0,
        };
        a.meta.put_deletion(&rec)?;
        Ok(rec)
    })
    .await??;
    audit(app, ctx, &account, "logs.delete", Some(pid), None).await;
    tracing::info!(project = %id, deletion = %deletion_hex(rec.id), "deletion started");
    let answer = json!({
        "id": deletion_hex(rec.id),
        "state": "running",
        "created_at": format_micros(rec.created_at),
    });
    crate::deletions::start(app.clone(), rec);
    Ok(http::json(202, &answer))
}

/// `GET /api/v1/projects/{project_id}/deletions/{id}`.
pub async fn get(
    app: &Arc<App>,
    req: Request<Incoming>,
    id: &str,
    deletion: &str,
) -> ApiResult<Resp> {
    let account = session_for(app, &req, id)?;
    let project = owned_project(app, &account, id)?;
    let did = parse_deletion_id(deletion).ok_or_else(|| ApiError::not_found("deletion"))?;
    let (a, pid) = (app.clone(), project.id);
    let (rec, deleted) = blocking(move || -> ApiResult<_> {
        let rec = a
            .meta
            .deletion(pid, did)?
            .ok_or_else(|| ApiError::not_found("deletion"))?;
        let deleted = crate::deletions::count(&a, &rec);
        Ok((rec, deleted))
    })
    .await??;
    Ok(http::json(200, &deletion_json(&rec, deleted)))
}

/// `GET /api/v1/projects/{project_id}/deletions` → `{"deletions": [...]}`, newest first.
pub async fn list(app: &Arc<App>, req: Request<Incoming>, id: &str) -> ApiResult<Resp> {
    let account = session_for(app, &req, id)?;
    let project = owned_project(app, &account, id)?;
    if let Some((k, _)) = crate::http::query_pairs(req.uri().query())?.first() {
        return Err(ApiError::InvalidQuery(format!("{k}: unknown parameter")));
    }
    let (a, pid) = (app.clone(), project.id);
    let all = blocking(move || -> ApiResult<Vec<Value>> {
        Ok(a.meta
            .deletions(pid, 1000)?
            .iter()
            .map(|d| deletion_json(d, crate::deletions::count(&a, d)))
            .collect())
    })
    .await??;
    Ok(http::json(200, &json!({ "deletions": all })))
}
