//! Route handlers, one module per group of routes, and the helpers they share: who is
//! calling, which project they may touch, rate limiting, and reading JSON bodies.

mod account;
pub(crate) mod deletions;
pub(crate) mod elastic;
mod ingest;
mod keys;
mod logs;
mod loki;
mod metrics;
mod ops;
mod otlp;
mod projects;
mod search;
mod tail;

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::Request;
use ledger_engine::now_micros;
use serde_json::{Map, Value};

use crate::app::{App, Ctx};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::http::Resp;
use crate::ingest::{body, parse};
use crate::meta::{AuditEvent, Project, Scope};
use crate::router::Route;
use crate::tenants::parse_project_id;

/// Runs the handler of a route whose method was already checked.
pub async fn dispatch(
    app: &Arc<App>,
    route: Route,
    req: Request<Incoming>,
    ctx: &mut Ctx,
) -> ApiResult<Resp> {
    use hyper::Method;
    let m = req.method().clone();
    if app.config.role == crate::config::Role::Reader
        && !matches!(m, Method::GET | Method::HEAD | Method::OPTIONS)
        && route != Route::Login
    {
        return Err(ApiError::Forbidden(format!(
            "this node is a reader (--role reader): it serves logs, search and metrics from \
             object storage and takes no writes; send {m} {} to the writer",
            req.uri().path()
        )));
    }
    match route {
        Route::Health => ops::health(),
        Route::HealthDeep => ops::health_deep(app).await,
        Route::Metrics => ops::metrics(app, &req).await,
        Route::Register => account::register(app, req, ctx).await,
        Route::Login => account::login(app, req, ctx).await,
        Route::Me => account::me(app, req).await,
        Route::Audit => account::audit(app, req).await,
        Route::Projects if m == Method::POST => projects::create(app, req, ctx).await,
        Route::Projects => projects::list(app, req),
        Route::Project(id) if m == Method::GET => projects::get(app, req, &id),
        Route::Project(id) if m == Method::PATCH => projects::update(app, req, ctx, &id).await,
        Route::Project(id) => projects::delete(app, req, ctx, &id).await,
        Route::Keys(id) if m == Method::POST => keys::create(app, req, ctx, &id).await,
        Route::Keys(id) => keys::list(app, req, &id).await,
        Route::Key(id, key) => keys::revoke(app, req, ctx, &id, &key).await,
        Route::Rejected(id) => projects::rejected(app, req, &id).await,
        Route::Deletions(id) if m == Method::POST => deletions::create(app, req, ctx, &id).await,
        Route::Deletions(id) => deletions::list(app, req, &id).await,
        Route::Deletion(id, d) => deletions::get(app, req, &id, &d).await,
        Route::IngestSingle => ingest::single(app, req, ctx).await,
        Route::IngestBatch => ingest::batch(app, req, ctx).await,
        Route::QueueDepth => logs::queue_depth(app, req, ctx).await,
        Route::Logs => logs::list(app, req, ctx).await,
        Route::Log(id) => logs::get(app, req, ctx, &id).await,
        Route::LogsSearch => search::search(app, req, ctx).await,
        Route::LogsTail => tail::tail(app, req, ctx).await,
        Route::LogsPatterns => metrics::patterns(app, req, ctx).await,
        Route::ErrorRate => metrics::error_rate(app, req, ctx).await,
        Route::LogVolume => metrics::log_volume(app, req, ctx).await,
        Route::TopErrors => metrics::top_errors(app, req, ctx).await,
        Route::UsageStats => metrics::usage_stats(app, req, ctx).await,
        Route::Root if crate::console::wants_page(req.headers()) => Ok(crate::console::page("/")),
        Route::Root => elastic::root(app, req).await,
        Route::Console => Ok(crate::console::page(req.uri().path())),
        Route::OpenApi => Ok(crate::apidocs::openapi()),
        Route::Docs(asset) => Ok(crate::apidocs::docs(asset.as_deref(), req.headers())),
        Route::EsBulk(index) => elastic::bulk(app, req, ctx, index.as_deref()).await,
        Route::EsLicense => elastic::license(app, req).await,
        Route::LokiPush => loki::push(app, req, ctx).await,
        Route::OtlpLogs => otlp::export(app, req, ctx).await,
    }
}

fn key_not_session() -> ApiError {
    ApiError::Forbidden(
        "this route needs a session token from /api/v1/auth/login, not an API key".into(),
    )
}

/// The account of a session token; API keys are refused (403: valid, but not for this).
pub(crate) fn session(app: &App, req: &Request<Incoming>) -> ApiResult<String> {
    match app.auth.authenticate(req.headers(), now_micros())? {
        Principal::Session(account) => Ok(account),
        Principal::Key(_) => Err(key_not_session()),
    }
}

/// The account of a session token on a route about project `id`. An API key is refused
/// with 403 only on its own project; on any other id it is 404, like a session token on a
/// project it does not own, so no credential can tell another tenant's ids from unknown ones.
pub(crate) fn session_for(app: &App, req: &Request<Incoming>, id: &str) -> ApiResult<String> {
    match app.auth.authenticate(req.headers(), now_micros())? {
        Principal::Session(account) => Ok(account),
        Principal::Key(k) if parse_project_id(id) == Some(k.project) => Err(key_not_session()),
        Principal::Key(_) => Err(ApiError::not_found("project")),
    }
}

/// A project the account owns, by its API id; anything else is 404.
pub(crate) fn owned_project(app: &App, account: &str, id: &str) -> ApiResult<Arc<Project>> {
    parse_project_id(id)
        .and_then(|pid| app.tenants.owned(account, pid))
        .ok_or_else(|| ApiError::not_found("project"))
}

/// The project a project-scoped request acts on, after authentication, authorization and
/// the rate limit. `scope` is what an API key needs (`None`: any scope). A session token
/// names the project with `project_id` (from the query string) and must own it. The
/// `X-RateLimit-*` headers go on the answer whatever happens next.
pub(crate) fn project_access(
    app: &App,
    req: &Request<Incoming>,
    ctx: &mut Ctx,
    scope: Option<Scope>,
    project_id: Option<&str>,
) -> ApiResult<Arc<Project>> {
    let project = match app.auth.authenticate(req.headers(), now_micros())? {
        Principal::Key(key) => {
            let project = app
                .tenants
                .get(key.project)
                .ok_or(ApiError::Unauthenticated)?;
            if project_id.is_some_and(|id| parse_project_id(id) != Some(project.id)) {
                return Err(ApiError::not_found("project"));
            }
            if let Some(s) = scope {
                if !key.has(s) {
                    rate_limit(app, &project, ctx)?;
                    return Err(ApiError::Forbidden(format!(
                        "this API key lacks the {} scope",
                        s.as_str()
                    )));
                }
            }
            project
        }
        Principal::Session(account) => {
            if scope == Some(Scope::Ingest) {
                return Err(ApiError::Forbidden(
                    "ingest needs an API key with the ingest scope".into(),
                ));
            }
            let id = project_id.ok_or_else(|| {
                ApiError::MissingField("project_id: required with a session token".into())
            })?;
            owned_project(app, &account, id)?
        }
    };
    rate_limit(app, &project, ctx)?;
    Ok(project)
}

/// Counts a request against the project's rate limits and sets the `X-RateLimit-*` headers.
fn rate_limit(app: &App, project: &Project, ctx: &mut Ctx) -> ApiResult<()> {
    let s = app.rate.check(
        project.id,
        project.rate_limit_per_minute,
        project.rate_limit_per_hour,
        now_micros().div_euclid(1_000_000),
    );
    let h = &mut ctx.headers;
    h.insert("x-ratelimit-limit", HeaderValue::from(s.limit));
    h.insert("x-ratelimit-remaining", HeaderValue::from(s.remaining));
    h.insert("x-ratelimit-reset", HeaderValue::from(s.reset));
    if s.allowed {
        Ok(())
    } else {
        Err(ApiError::RateLimited {
            message: format!(
                "rate limit of the project reached ({} requests per minute, {} per hour)",
                project.rate_limit_per_minute, project.rate_limit_per_hour
            ),
            retry_after: s.retry_after,
        })
    }
}

/// The `project_id` query parameter, if present.
pub(crate) fn project_id_param(pairs: &[(String, String)]) -> Option<&str> {
    pairs
        .iter()
        .find(|(k, _)| k == "project_id")
        .map(|(_, v)| v.as_str())
}

/// Reads a JSON object body (management routes): JSON or no `Content-Type`, any supported
/// `Content-Encoding`, within the body limit.
pub(crate) async fn read_object(
    app: &App,
    req: Request<Incoming>,
) -> ApiResult<Map<String, Value>> {
    parse::framing(req.headers(), false)?;
    let enc = body::encoding(req.headers())?;
    let limit = app.config.max_body_bytes;
    let (parts, incoming) = req.into_parts();
    let timeout = app.config.body_timeout;
    let raw = body::read_raw(&parts.headers, incoming, limit, timeout, &app.bodies).await?;
    let bytes = match enc {
        body::Encoding::Identity => raw,
        _ => blocking(move || body::decode(raw, enc, limit)).await??,
    };
    crate::json::object(&bytes)
}

/// Runs blocking work (redb, engine, PBKDF2) off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> ApiResult<T> {
    // The work stays inside the request's span (its log lines and exported spans).
    let span = tracing::Span::current();
    Ok(tokio::task::spawn_blocking(move || span.in_scope(f)).await?)
}

/// Appends to the audit log; a failure is logged, not returned: the action itself happened.
pub(crate) async fn audit(
    app: &Arc<App>,
    ctx: &Ctx,
    account: &str,
    action: &str,
    project_id: Option<u64>,
    key_id: Option<String>,
) {
    let event = AuditEvent {
        at: now_micros(),
        action: action.to_owned(),
        account: account.to_owned(),
        project_id,
        key_id,
        source: ctx.peer.ip().to_string(),
    };
    let a = app.clone();
    match blocking(move || a.meta.audit(&event)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(error = %e, action, "could not write the audit log"),
        Err(e) => tracing::error!(error = %e, action, "could not write the audit log"),
    }
}
