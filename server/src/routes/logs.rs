//! Reading logs: `GET /api/v1/logs` (filters, order, limit, offset, cursor), `GET
//! /api/v1/logs/{id}`, and `GET /api/v1/queue/depth`.

use std::io::Write as _;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::Request;
use ledger_engine::json::write_record_json;
use ledger_engine::timefmt::parse_rfc3339;
use ledger_engine::{
    now_micros, AttrMatch, Cursor, Field, Filter, Importance, Level, LogId, LogRecord, LogType,
    Order, ProjectId, ScanRequest,
};
use ledger_engine::{MAX_LIMIT, MAX_OFFSET};
use serde_json::json;

use super::{blocking, project_access, project_id_param};
use crate::app::{App, Ctx};
use crate::error::{ApiError, ApiResult};
use crate::http::{self, int_param, query_pairs, Resp};
use crate::meta::{Project, Scope};
use crate::tenants::project_hex;

/// A bit mask from a comma list of enum names.
fn mask<T: Copy>(
    name: &str,
    v: &str,
    parse: impl Fn(&str) -> Option<T>,
    bit: impl Fn(T) -> u8,
) -> ApiResult<u8> {
    let mut m = 0u8;
    for part in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let t = parse(part)
            .ok_or_else(|| ApiError::InvalidQuery(format!("{name}: unknown value {part:?}")))?;
        m |= 1 << bit(t);
    }
    if m == 0 {
        return Err(ApiError::InvalidQuery(format!(
            "{name}: expected a comma list of values"
        )));
    }
    Ok(m)
}

fn time(name: &str, v: &str) -> ApiResult<i64> {
    parse_rfc3339(v).ok_or_else(|| {
        ApiError::InvalidQuery(format!("{name}: expected an RFC 3339 time, got {v:?}"))
    })
}

/// Exact-match string filters: the parameter name is the field's JSON name.
fn exact_field(name: &str) -> Option<Field> {
    Some(match name {
        "environment" => Field::Environment,
        "service" => Field::Service,
        "release" => Field::Release,
        "error_fingerprint" => Field::ErrorFingerprint,
        "error_type" => Field::ErrorType,
        "source" => Field::Source,
        "platform" => Field::Platform,
        "language" => Field::Language,
        "trace_id" => Field::TraceId,
        "span_id" => Field::SpanId,
        _ => return None,
    })
}

/// Parses the filters shared by `/logs` and `/logs/search` (and `project_id`, which the
/// caller has already used). Parameters in `extra` are left for the caller.
pub(crate) fn scan_request(pairs: &[(String, String)], extra: &[&str]) -> ApiResult<ScanRequest> {
    let mut f = Filter::default();
    let mut req = ScanRequest {
        limit: 100,
        ..ScanRequest::default()
    };
    let mut cursor = None;
    for (k, v) in pairs {
        match k.as_str() {
            "project_id" => {}
            "start_time" => f.start = Some(time(k, v)?),
            "end_time" => f.end = Some(time(k, v)?),
            "level" => f.levels = Some(mask(k, v, Level::parse, |l| l as u8)?),
            "log_type" => f.log_types = Some(mask(k, v, LogType::parse, |l| l as u8)?),
            "importance" => f.importances = Some(mask(k, v, Importance::parse, |l| l as u8)?),
            "order" => {
                req.order = match v.as_str() {
                    "desc" => Order::Desc,
                    "asc" => Order::Asc,
                    _ => return Err(ApiError::InvalidQuery("order: expected asc or desc".into())),
                }
            }
            "limit" => req.limit = int_param(k, v, 1, MAX_LIMIT as u64)? as usize,
            "offset" => req.offset = int_param(k, v, 0, MAX_OFFSET as u64)? as usize,
            "cursor" if v.is_empty() => {}
            "cursor" => {
                cursor = Some(Cursor::decode(v).ok_or_else(|| {
                    ApiError::InvalidQuery("cursor: not a next_cursor from this route".into())
                })?)
            }
            _ if k.starts_with("attr.") => {
                let path: Vec<String> = k["attr.".len()..].split('.').map(String::from).collect();
                if path.iter().any(String::is_empty) {
                    return Err(ApiError::InvalidQuery(format!(
                        "{k}: empty attribute path segment"
                    )));
                }
                f.attrs.push(AttrMatch {
                    path,
                    value: v.clone(),
                });
            }
            _ => match exact_field(k) {
                Some(field) => f.fields.push((field, v.clone())),
                None if extra.contains(&k.as_str()) => {}
                None => return Err(ApiError::InvalidQuery(format!("{k}: unknown parameter"))),
            },
        }
    }
    if let (Some(start), Some(end)) = (f.start, f.end) {
        if start > end {
            // An empty half-open range (start = end) is a valid question with no logs; a
            // start after the end is a mistake the caller should hear about, as Loki does.
            return Err(ApiError::InvalidQuery(
                "start_time: after end_time (the range is [start_time, end_time))".into(),
            ));
        }
    }
    if let Some(c) = cursor {
        if c.order != req.order {
            return Err(ApiError::InvalidQuery(
                "cursor: it was made for the other order; pass the same order as before".into(),
            ));
        }
        req.cursor = Some(c);
    }
    req.filter = f;
    Ok(req)
}

/// Narrows a scan to what is inside the project's retention now.
pub(crate) fn within_retention(mut req: ScanRequest, project: &Project) -> ScanRequest {
    let cutoff = project.retention_cutoff(now_micros());
    req.filter.start = Some(req.filter.start.map_or(cutoff, |s| s.max(cutoff)));
    req
}

/// `GET /api/v1/logs`
pub async fn list(app: &Arc<App>, req: Request<Incoming>, ctx: &mut Ctx) -> ApiResult<Resp> {
    let pairs = query_pairs(req.uri().query())?;
    let project = project_access(app, &req, ctx, Some(Scope::Query), project_id_param(&pairs))?;
    let scan = within_retention(scan_request(&pairs, &[])?, &project);
    let a = app.clone();
    let pid = project.id;
    let page = blocking(move || a.engine.scan(pid, &scan)).await??;
    let cursor = page.next_cursor.map(|c| c.encode());
    Ok(http::json_text(
        200,
        logs_answer(&page.logs, pid, cursor.as_deref(), None),
    ))
}

/// A page of logs as JSON text, `{"logs": [...], "next_cursor": ...}` (and `"partial"` when
/// given), each log written straight from its record (see `write_record_json`).
pub(crate) fn logs_answer(
    logs: &[LogRecord],
    pid: ProjectId,
    next_cursor: Option<&str>,
    partial: Option<bool>,
) -> Vec<u8> {
    let hex = project_hex(pid);
    let mut out = Vec::with_capacity(64 + logs.len() * 768);
    out.extend_from_slice(b"{\"logs\":[");
    for (i, r) in logs.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_record_json(r, &hex, &mut out);
    }
    out.extend_from_slice(b"],\"next_cursor\":");
    // Writing into a `Vec` cannot fail.
    let _ = serde_json::to_writer(&mut out, &next_cursor);
    if let Some(partial) = partial {
        let _ = write!(out, ",\"partial\":{partial}");
    }
    out.push(b'}');
    out
}

/// `GET /api/v1/logs/{id}`: 404 unless the log is in the caller's project.
pub async fn get(
    app: &Arc<App>,
    req: Request<Incoming>,
    ctx: &mut Ctx,
    id: &str,
) -> ApiResult<Resp> {
    let pairs = query_pairs(req.uri().query())?;
    let project = project_access(app, &req, ctx, Some(Scope::Query), project_id_param(&pairs))?;
    let log_id = LogId::parse(id).ok_or_else(|| ApiError::not_found("log"))?;
    let a = app.clone();
    let pid = project.id;
    let cutoff = project.retention_cutoff(now_micros());
    let rec = blocking(move || a.engine.get(pid, log_id))
        .await??
        .filter(|r| r.log.timestamp >= cutoff)
        .ok_or_else(|| ApiError::not_found("log"))?;
    let mut out = Vec::with_capacity(1024);
    write_record_json(&rec, &project_hex(pid), &mut out);
    Ok(http::json_text(200, out))
}

/// `GET /api/v1/queue/depth` → `{"depth", "limit"}` for the caller's project.
pub async fn queue_depth(app: &Arc<App>, req: Request<Incoming>, ctx: &mut Ctx) -> ApiResult<Resp> {
    let pairs = query_pairs(req.uri().query())?;
    let project = project_access(app, &req, ctx, None, project_id_param(&pairs))?;
    Ok(http::json(
        200,
        &json!({"depth": app.engine.queue_depth(project.id), "limit": project.max_queue_depth}),
    ))
}
