//! `GET /api/v1/logs/search`: the full-text query language is being built separately (with
//! the engine's search index). Until it lands the route authenticates and authorizes like
//! every query route, then answers 503 `unavailable` — it never pretends with fake results.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::Request;

use super::{project_access, project_id_param};
use crate::app::{App, Ctx};
use crate::error::{ApiError, ApiResult};
use crate::http::{query_pairs, Resp};
use crate::meta::Scope;

/// How long clients are told to wait before asking again.
const RETRY_AFTER_SECS: u64 = 3600;

/// `GET /api/v1/logs/search?q=...`
pub fn search(app: &Arc<App>, req: Request<Incoming>, ctx: &mut Ctx) -> ApiResult<Resp> {
    let pairs = query_pairs(req.uri().query())?;
    project_access(app, &req, ctx, Some(Scope::Query), project_id_param(&pairs))?;
    Err(ApiError::unavailable(
        "full-text search is not available yet",
        RETRY_AFTER_SECS,
    ))
}
