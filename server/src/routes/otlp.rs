//! `POST /otlp/v1/logs`: OpenTelemetry logs over OTLP/HTTP, so that
//! `OTEL_EXPORTER_OTLP_ENDPOINT=http://host:8000/otlp` works with any SDK or Collector.
//! Decoding and mapping are `ingest::otlp`'s; from the mapped records on this is the shared
//! pipeline. Every answer, errors included, is in OTLP's own shape and in the request's
//! encoding (protobuf or JSON): `ExportLogsServiceResponse` on success, `google.rpc.Status`
//! otherwise, with `Retry-After` on 429 and 503 so SDKs retry.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use hyper::{Request, Response};
use ledger_engine::now_micros;

use super::{blocking, project_access};
use crate::app::{App, Ctx};
use crate::error::{ApiError, ApiResult};
use crate::http::Resp;
use crate::ingest::otlp::{self, Encoding};
use crate::ingest::pipeline::{self, Checked};
use crate::ingest::validate;
use crate::meta::Scope;

/// `POST /otlp/v1/logs`.
pub async fn export(app: &Arc<App>, req: Request<Incoming>, ctx: &mut Ctx) -> ApiResult<Resp> {
    let ct = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let Some(enc) = Encoding::from_content_type(ct.as_deref()) else {
        // The credential is checked first, as on the other doors: a wrong key is 401
        // whatever the body's type.
        let e = match project_access(app, &req, ctx, Some(Scope::Ingest), None) {
            Err(e) => e,
            Ok(_) => ApiError::UnsupportedMediaType(
                "OTLP/HTTP takes application/x-protobuf or application/json".into(),
            ),
        };
        return Ok(answer_error(&e, Encoding::Json));
    };
    Ok(match handle(app, req, ctx, enc).await {
        Ok(r) => r,
        Err(e) => answer_error(&e, enc),
    })
}

async fn handle(
    app: &Arc<App>,
    req: Request<Incoming>,
    ctx: &mut Ctx,
    enc: Encoding,
) -> ApiResult<Resp> {
    let project = project_access(app, &req, ctx, Some(Scope::Ingest), None)?;
    let window = validate::TimeWindow::new(now_micros(), project.retention_days);
    let (bytes, _claim, _turn) = pipeline::read_body(app, req, &project).await?;
    let checked = blocking(move || -> ApiResult<Checked> {
        let request = otlp::decode(&bytes, enc).map_err(ApiError::InvalidJson)?;
        let mapped = otlp::map(request, now_micros());
        Ok(Checked::from_mapped(mapped, &window))
    })
    .await??;
    if checked.total == 0 {
        return Ok(answer(200, otlp::response(0, String::new(), enc), enc));
    }
    let stored = match pipeline::store(
        app,
        &project,
        crate::router::Route::OtlpLogs.template(),
        checked,
    )
    .await
    {
        Ok(s) => s,
        // No record was valid: 400 with the reasons, as the OTLP spec asks.
        Err(ApiError::BatchRejected { errors }) => {
            return Err(ApiError::invalid_field(reasons(&errors)));
        }
        Err(e) => return Err(e),
    };
    let rejected = stored.errors.len() as i64;
    Ok(answer(
        200,
        otlp::response(rejected, reasons(&stored.errors), enc),
        enc,
    ))
}

/// The rejected records' reasons in one message, each with its position in the request.
fn reasons(errors: &[crate::error::ItemError]) -> String {
    const SHOWN: usize = 20;
    let mut out: Vec<String> = errors
        .iter()
        .take(SHOWN)
        .map(|e| format!("log record {}: {}", e.index, e.message))
        .collect();
    if errors.len() > SHOWN {
        out.push(format!("and {} more", errors.len() - SHOWN));
    }
    out.join("; ")
}

fn answer(status: u16, body: Vec<u8>, enc: Encoding) -> Resp {
    let mut r = Response::new(crate::http::full(body));
    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::OK);
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(enc.content_type()));
    r
}

/// An error as `google.rpc.Status` with the HTTP status of the error table, the gRPC code
/// that goes with it, and `Retry-After` where the error has one.
fn answer_error(e: &ApiError, enc: Encoding) -> Resp {
    let status = e.status();
    let code = match status {
        400 | 413 | 415 => 3, // INVALID_ARGUMENT
        401 => 16,            // UNAUTHENTICATED
        403 => 7,             // PERMISSION_DENIED
        404 => 5,             // NOT_FOUND
        429 => 8,             // RESOURCE_EXHAUSTED
        503 => 14,            // UNAVAILABLE
        _ => 13,              // INTERNAL
    };
    let message = e.body()["error"]["message"]
        .as_str()
        .unwrap_or("error")
        .to_owned();
    let mut r = answer(status, otlp::status(code, &message, enc), enc);
    if let Some(secs) = e.retry_after() {
        r.headers_mut().insert(RETRY_AFTER, HeaderValue::from(secs));
    }
    r
}
