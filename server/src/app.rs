//! The application state shared by every request, and the per-request wrapper: request id,
//! panic guard, error rendering, metrics and the structured request log.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use futures::FutureExt;
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request};
use ledger_engine::Engine;

use crate::auth::throttle::LoginThrottle;
use crate::auth::Authenticator;
use crate::config::Config;
use crate::error::ApiError;
use crate::http::{self, Resp};
use crate::limits::{RateLimiter, UsageBook};
use crate::meta::Meta;
use crate::router;
use crate::routes;
use crate::telemetry::Telemetry;
use crate::tenants::Tenants;

static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// Everything a request may need. One per server, behind an `Arc`.
pub struct App {
    pub config: Config,
    pub pbkdf2_iterations: NonZeroU32,
    pub engine: Engine,
    pub meta: Arc<Meta>,
    pub auth: Authenticator,
    pub throttle: LoginThrottle,
    pub tenants: Tenants,
    pub rate: RateLimiter,
    pub usage: Arc<UsageBook>,
    pub telemetry: Telemetry,
    /// Bounds concurrent password hashing (hundreds of ms of CPU each) to the core count,
    /// so a flood of logins or registrations queues instead of starving every other request.
    pub kdf: tokio::sync::Semaphore,
    /// Bytes of request bodies in memory, all requests together (`--max-body-bytes-in-flight`).
    pub bodies: crate::ingest::body::BodyBudget,
    /// Ingest requests held for capacity before their bodies are read.
    pub admission: crate::limits::Admission,
    /// Logs rendered for live tails, shared by all of them.
    pub tail_renders: Arc<crate::tail::Renders>,
    /// Set once when the server starts shutting down: open live tails end on it.
    pub stopping: tokio::sync::watch::Sender<bool>,
    /// Log items refused one by one, per project (`GET .../rejected`).
    pub rejected: crate::rejected::RejectedList,
    /// Deletions of logs run one at a time.
    pub deletion_turn: tokio::sync::Semaphore,
    /// Upload or follow figures, when the node has a bucket.
    pub tier: Option<crate::tiering::TierState>,
    request_base: u64,
    request_seq: AtomicU64,
}

/// What a handler knows about its request besides the request itself, and the headers it
/// wants on the answer whatever the answer is (the rate-limit headers).
pub struct Ctx {
    pub peer: SocketAddr,
    pub request_id: String,
    pub headers: HeaderMap,
}

impl App {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        config: Config,
        pbkdf2_iterations: NonZeroU32,
        engine: Engine,
        meta: Arc<Meta>,
        auth: Authenticator,
        tenants: Tenants,
        rejected: crate::rejected::RejectedList,
    ) -> App {
        let throttle = LoginThrottle::new(config.login_window);
        let mut base = [0u8; 8];
        let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut base);
        App {
            pbkdf2_iterations,
            usage: Arc::new(UsageBook::new(meta.clone(), engine.clone())),
            bodies: crate::ingest::body::BodyBudget::new(config.max_body_bytes_in_flight),
            stopping: tokio::sync::watch::Sender::new(false),
            tail_renders: Default::default(),
            rejected,
            deletion_turn: tokio::sync::Semaphore::new(1),
            tier: None,
            admission: crate::limits::Admission::new(
                config.ingest_max_waiting,
                config.ingest_max_wait,
                config.ingest_turns,
            ),
            config,
            engine,
            meta,
            auth,
            throttle,
            tenants,
            rate: RateLimiter::default(),
            telemetry: Telemetry::default(),
            kdf: tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, |n| n.get()),
            ),
            request_base: u64::from_le_bytes(base),
            request_seq: AtomicU64::new(0),
        }
    }

    /// A request id: the client's `X-Request-Id` if it is sane, else a fresh one.
    fn request_id(&self, headers: &HeaderMap) -> String {
        if let Some(v) = headers.get(&X_REQUEST_ID).and_then(|v| v.to_str().ok()) {
            if !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()) {
                return v.to_owned();
            }
        }
        let n = self.request_seq.fetch_add(1, Ordering::Relaxed);
        format!("{:016x}{n:08x}", self.request_base)
    }

    /// Answers one request. Never fails: every error becomes its documented answer.
    pub async fn handle(self: Arc<Self>, mut req: Request<Incoming>, peer: SocketAddr) -> Resp {
        let start = Instant::now();
        let request_id = self.request_id(req.headers());
        let method = method_label(req.method());
        let route = router::resolve(req.uri().path());
        let template = route.as_ref().map_or("unmatched", |r| r.template());
        let path = req.uri().path().to_owned();
        // The request's span exists only while spans are exported: without export the
        // ids still go on the answer and the request's log line, at no span's cost.
        let span = if crate::trace::exporting() {
            tracing::info_span!(
                "request",
                otel.name = %format_args!("{method} {template}"),
                otel.kind = "server",
                http.request.method = method,
                http.route = template,
                request_id = %request_id,
                trace_id = tracing::field::Empty,
                http.response.status_code = tracing::field::Empty,
            )
        } else {
            tracing::Span::none()
        };
        let incoming = req
            .headers()
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .and_then(crate::trace::parse_traceparent);
        let trace = crate::trace::begin(&span, incoming);
        let mut ctx = Ctx {
            peer,
            request_id: request_id.clone(),
            headers: HeaderMap::new(),
        };
        if let Some(r) = &route {
            // HEAD is GET without the body (RFC 9110, 9.3.2) wherever GET is served and the
            // route has no HEAD of its own; hyper sends the answer's head only. Not for the
            // live tail, whose GET holds a stream open.
            if req.method() == Method::HEAD && r.head_as_get() {
                *req.method_mut() = Method::GET;
            }
        }
        let result = match route {
            None => Err(ApiError::not_found("route")),
            Some(route) => match route.check_method(req.method()) {
                Err(_) if route.is_elasticsearch() => Ok(routes::elastic::method_not_allowed(
                    req.headers(),
                    req.method().as_str(),
                    &path,
                    route.allow(),
                )),
                Err(e) => Err(e),
                Ok(()) => {
                    let fut = routes::dispatch(&self, route, req, &mut ctx);
                    let fut = tracing::Instrument::instrument(fut, span.clone());
                    // A panic is a bug; catching it only keeps it from hurting the client: a
                    // 500 instead of a dropped connection.
                    AssertUnwindSafe(fut)
                        .catch_unwind()
                        .await
                        .unwrap_or_else(|_| {
                            tracing::error!(request_id = %request_id, "handler panicked");
                            Err(ApiError::Internal)
                        })
                }
            },
        };
        let mut resp = match result {
            Ok(r) => r,
            Err(e) => http::error(&e),
        };
        let headers = resp.headers_mut();
        for (k, v) in ctx.headers.iter() {
            headers.insert(k.clone(), v.clone());
        }
        if let Ok(v) = HeaderValue::from_str(&request_id) {
            headers.insert(X_REQUEST_ID.clone(), v);
        }
        if let Ok(v) = HeaderValue::from_str(&trace.traceparent) {
            headers.insert(TRACEPARENT.clone(), v);
        }
        let status = resp.status().as_u16();
        span.record("http.response.status_code", status);
        let secs = start.elapsed().as_secs_f64();
        self.telemetry.observe(template, method, status, secs);
        let _in_request = span.enter();
        tracing::info!(
            request_id = %request_id,
            trace_id = %trace.trace_id,
            method,
            path = %path,
            route = template,
            status,
            duration_ms = secs * 1e3,
            peer = %peer,
            "request"
        );
        resp
    }
}

fn method_label(m: &hyper::Method) -> &'static str {
    match m.as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "PATCH" => "PATCH",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        _ => "OTHER",
    }
}
