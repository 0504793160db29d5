//! `GET /api/v1/logs/search?q=...`: the query language (see `ledger_engine::search`) with
//! every filter of `/logs`, newest first by default, limit and cursor.
//!
//! The answer is `/logs`'s shape plus `"partial": true|false`: true when the search's
//! candidate or time budget ran out, so the page holds correct matches but others may be
//! missing (follow `next_cursor`, or narrow the query).

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::Request;
use ledger_engine::search::{self, SearchBudget};

use super::logs::{logs_answer, scan_request, within_retention};
use super::{blocking, project_access, project_id_param};
use crate::app::{App, Ctx};
use crate::error::{ApiError, ApiResult};
use crate::http::{self, query_pairs, Resp};
use crate::meta::Scope;

/// `GET /api/v1/logs/search?q=...`
pub async fn search(app: &Arc<App>, req: Request<Incoming>, ctx: &mut Ctx) -> ApiResult<Resp> {
    let pairs = query_pairs(req.uri().query())?;
    let project = project_access(app, &req, ctx, Some(Scope::Query), project_id_param(&pairs))?;
    let q = pairs
        .iter()
        .find(|(k, _)| k == "q")
        .map(|(_, v)| v.clone())
        .ok_or_else(|| ApiError::InvalidQuery("q: required (the search query)".into()))?;
    let expr = search::parse(&q).map_err(|e| {
        ApiError::InvalidQuery(format!("q: at position {}: {}", e.position, e.message))
    })?;
    let scan = within_retention(scan_request(&pairs, &["q"])?, &project);
    let a = app.clone();
    let pid = project.id;
    let page =
        blocking(move || a.engine.search(pid, &expr, &scan, SearchBudget::default())).await??;
    let cursor = page.next_cursor.map(|c| c.encode());
    Ok(http::json_text(
        200,
        logs_answer(&page.logs, pid, cursor.as_deref(), Some(page.partial)),
    ))
}
