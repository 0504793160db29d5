//! Elasticsearch's routes, for Filebeat, Fluent Bit, Vector, Logstash and the client
//! libraries: `GET|HEAD /` (the node info clients check before they send) and
//! `POST|PUT /_bulk`, `/{index}/_bulk`. Every answer, errors included, is in
//! Elasticsearch's shape and carries `X-Elastic-Product: Elasticsearch` (the official
//! clients refuse a server without it).

use std::sync::Arc;
use std::time::Instant;

use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderValue, ACCEPT, CONTENT_TYPE, RETRY_AFTER};
use hyper::Request;
use ledger_engine::now_micros;
use serde_json::Value;

use super::{blocking, project_access};
use crate::app::{App, Ctx};
use crate::error::ApiError;
use crate::http::{self, Resp};
use crate::ingest::elastic::{self, BulkError};
use crate::ingest::pipeline::{self, Checked};
use crate::ingest::validate::TimeWindow;
use crate::meta::Scope;
use crate::router::Kind;

/// Bodies up to this size are decoded on the async worker itself.
const INLINE_DECODE_BYTES: usize = 16 << 10;

/// A refusal as Elasticsearch words it.
struct EsError {
    status: u16,
    kind: &'static str,
    reason: String,
    retry_after: Option<u64>,
}

impl From<ApiError> for EsError {
    fn from(e: ApiError) -> EsError {
        let kind = match &e {
            ApiError::InvalidJson(_) => "parse_exception",
            ApiError::Unauthenticated | ApiError::Forbidden(_) => "security_exception",
            ApiError::NotFound(_) => "resource_not_found_exception",
            ApiError::RequestTimeout(_) => "timeout_exception",
            ApiError::PayloadTooLarge(_) => "content_too_long_exception",
            ApiError::UnsupportedMediaType(_) => "media_type_header_exception",
            ApiError::RateLimited { .. }
            | ApiError::QuotaExceeded { .. }
            | ApiError::Backpressure { .. } => "es_rejected_execution_exception",
            ApiError::Unavailable { .. } => "unavailable_shards_exception",
            ApiError::Internal => "exception",
            _ => "illegal_argument_exception",
        };
        EsError {
            status: e.status(),
            kind,
            reason: e.to_string(),
            retry_after: e.retry_after(),
        }
    }
}

impl From<BulkError> for EsError {
    fn from(e: BulkError) -> EsError {
        EsError {
            status: e.status,
            kind: e.kind,
            reason: e.reason,
            retry_after: None,
        }
    }
}

/// `GET /` and `HEAD /`: the node info, for a client. (A browser gets the web console
/// there: see `crate::console::wants_page`.)
pub async fn root(app: &Arc<App>, req: Request<Incoming>) -> Result<Resp, ApiError> {
    let h = req.headers();
    let answer = match app.auth.authenticate(h, now_micros()) {
        Ok(_) => Ok(json_bytes(&elastic::node_info())),
        Err(e) => Err(EsError::from(e)),
    };
    Ok(respond(h, answer))
}

/// `GET /_license` and `HEAD /_license`: a basic licence, active, as Elasticsearch answers
/// it. Logstash and Beats ask before they use features a licence decides.
pub async fn license(app: &Arc<App>, req: Request<Incoming>) -> Result<Resp, ApiError> {
    let h = req.headers();
    let answer = match app.auth.authenticate(h, now_micros()) {
        Ok(_) => Ok(json_bytes(&elastic::license_info())),
        Err(e) => Err(EsError::from(e)),
    };
    Ok(respond(h, answer))
}

/// A method an Elasticsearch route does not take: `405` with `Allow`, in the shape
/// Elasticsearch gives this one error (`error` is a string here, not an object).
pub fn method_not_allowed(request: &HeaderMap, method: &str, path: &str, allow: &str) -> Resp {
    let body = serde_json::json!({
        "error": format!(
            "Incorrect HTTP method for uri [{path}] and method [{method}], allowed: [{allow}]"
        ),
        "status": 405,
    });
    let mut r = respond(request, Ok(json_bytes(&body)));
    *r.status_mut() = hyper::StatusCode::METHOD_NOT_ALLOWED;
    if let Ok(v) = HeaderValue::from_str(allow) {
        r.headers_mut().insert(hyper::header::ALLOW, v);
    }
    r
}

/// `POST|PUT /_bulk` and `/{index}/_bulk` → `200 {"took", "errors", "items"}`.
pub async fn bulk(
    app: &Arc<App>,
    req: Request<Incoming>,
    ctx: &mut Ctx,
    path_index: Option<&str>,
) -> Result<Resp, ApiError> {
    let headers = req.headers().clone();
    let answer = store_bulk(app, req, ctx, path_index).await;
    Ok(respond(&headers, answer))
}

async fn store_bulk(
    app: &Arc<App>,
    req: Request<Incoming>,
    ctx: &mut Ctx,
    path_index: Option<&str>,
) -> Result<Vec<u8>, EsError> {
    let start = Instant::now();
    let project = project_access(app, &req, ctx, Some(Scope::Ingest), None)?;
    accepted_content_type(req.headers())?;
    let index = path_index.map(|i| {
        percent_encoding::percent_decode_str(i)
            .decode_utf8_lossy()
            .into_owned()
    });
    let window = TimeWindow::new(now_micros(), project.retention_days);
    let (body, _body_claim, _turn) = pipeline::read_body(app, req, &project).await?;
    let inline = body.len() <= INLINE_DECODE_BYTES;
    let decode = move || {
        elastic::decode(&body, index.as_deref(), now_micros())
            .map(|b| (b.actions, Checked::from_mapped(b.items, &window)))
    };
    let (actions, checked) = if inline {
        decode()?
    } else {
        blocking(decode).await??
    };
    let total = checked.total;
    // The template of the route the request came by: `/_bulk` or `/{index}/_bulk`.
    let route = if path_index.is_some() {
        Kind::EsIndexBulk
    } else {
        Kind::EsBulk
    }
    .template();
    let (ids, errors) = if checked.valid.is_empty() {
        (
            Vec::new(),
            pipeline::refuse_all(app, &project, route, checked),
        )
    } else {
        match pipeline::store(app, &project, route, checked).await {
            Ok(s) => (s.ids, s.errors),
            // No document was valid: each is answered on its own, as Elasticsearch does.
            Err(ApiError::BatchRejected { errors }) => (Vec::new(), errors),
            Err(e) => return Err(e.into()),
        }
    };
    let ids = ids.into_iter().map(|(i, id, _)| (i, id)).collect();
    let outcomes = elastic::outcomes(total, ids, errors);
    let took = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
    Ok(elastic::answer(&actions, &outcomes, took))
}

/// Refuses a body type `_bulk` does not take: NDJSON, JSON, or Elasticsearch's versioned
/// NDJSON for clients of versions 8 and 9. None sent is taken as NDJSON.
fn accepted_content_type(h: &HeaderMap) -> Result<(), EsError> {
    let Some(v) = h.get(CONTENT_TYPE) else {
        return Ok(());
    };
    let v = v.to_str().unwrap_or("").to_ascii_lowercase();
    let (essence, version) = media_type(&v);
    let ok = match essence {
        "application/x-ndjson" | "application/json" => true,
        "application/vnd.elasticsearch+x-ndjson" | "application/vnd.elasticsearch+json" => {
            matches!(version, None | Some("8" | "9"))
        }
        _ => false,
    };
    if ok {
        return Ok(());
    }
    Err(ApiError::UnsupportedMediaType(format!(
        "Content-Type [{v}] is not supported: send application/x-ndjson, application/json or \
         application/vnd.elasticsearch+x-ndjson; compatible-with=8 (or 9)"
    ))
    .into())
}

/// A media type's essence and its `compatible-with` parameter.
fn media_type(v: &str) -> (&str, Option<&str>) {
    let mut parts = v.split(';').map(str::trim);
    let essence = parts.next().unwrap_or("");
    let version = parts.find_map(|p| {
        let (k, v) = p.split_once('=')?;
        (k.trim() == "compatible-with").then(|| v.trim().trim_matches('"'))
    });
    (essence, version)
}

/// The answer's `Content-Type`: Elasticsearch's versioned JSON when the client asked for it
/// (`Accept: application/vnd.elasticsearch+json; compatible-with=8`), else plain JSON.
fn answer_type(h: &HeaderMap) -> HeaderValue {
    let accept = h
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    match media_type(&accept) {
        ("application/vnd.elasticsearch+json", Some(v @ ("8" | "9"))) => HeaderValue::from_str(
            &format!("application/vnd.elasticsearch+json;compatible-with={v}"),
        )
        .unwrap_or(HeaderValue::from_static(http::JSON)),
        _ => HeaderValue::from_static(http::JSON),
    }
}

fn json_bytes(body: &Value) -> Vec<u8> {
    serde_json::to_vec(body).unwrap_or_default()
}

/// An answer in Elasticsearch's shapes, with `X-Elastic-Product`. `answer` is a JSON body.
fn respond(request: &HeaderMap, answer: Result<Vec<u8>, EsError>) -> Resp {
    let mut r = match answer {
        Ok(body) => http::json_text(200, body),
        Err(e) => {
            let mut r = http::json(e.status, &elastic::error_body(e.status, e.kind, &e.reason));
            if let Some(secs) = e.retry_after {
                r.headers_mut().insert(RETRY_AFTER, HeaderValue::from(secs));
            }
            if e.status == 401 {
                // As Elasticsearch answers: the schemes a client may use.
                let h = r.headers_mut();
                h.append(
                    "www-authenticate",
                    HeaderValue::from_static("Basic realm=\"ledger\", charset=\"UTF-8\""),
                );
                h.append("www-authenticate", HeaderValue::from_static("ApiKey"));
            }
            r
        }
    };
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, answer_type(request));
    h.insert(
        "x-elastic-product",
        HeaderValue::from_static("Elasticsearch"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn bulk_takes_ndjson_json_and_versioned_ndjson_of_8_and_9() {
        for ct in [
            "application/x-ndjson",
            "application/json; charset=utf-8",
            "application/vnd.elasticsearch+x-ndjson; compatible-with=8",
            "application/vnd.elasticsearch+x-ndjson;compatible-with=9",
        ] {
            assert!(
                accepted_content_type(&headers(&[("content-type", ct)])).is_ok(),
                "{ct}"
            );
        }
        assert!(accepted_content_type(&HeaderMap::new()).is_ok());
        for ct in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "application/vnd.elasticsearch+x-ndjson; compatible-with=7",
        ] {
            let e = accepted_content_type(&headers(&[("content-type", ct)]))
                .err()
                .unwrap();
            assert_eq!(
                (e.status, e.kind),
                (415, "media_type_header_exception"),
                "{ct}"
            );
        }
    }

    #[test]
    fn answers_carry_the_product_header_and_the_asked_for_type() {
        let h = headers(&[(
            "accept",
            "application/vnd.elasticsearch+json; compatible-with=8",
        )]);
        let r = respond(&h, Ok(b"{}".to_vec()));
        assert_eq!(r.headers()["x-elastic-product"], "Elasticsearch");
        assert_eq!(
            r.headers()[CONTENT_TYPE],
            "application/vnd.elasticsearch+json;compatible-with=8"
        );
        let r = respond(&HeaderMap::new(), Err(ApiError::Unauthenticated.into()));
        assert_eq!(r.status(), 401);
        assert_eq!(r.headers()["x-elastic-product"], "Elasticsearch");
        assert_eq!(r.headers()[CONTENT_TYPE], http::JSON);
        assert_eq!(r.headers().get_all("www-authenticate").iter().count(), 2);
        let busy = ApiError::Backpressure {
            message: "full".into(),
            retry_after: 2,
        };
        let r = respond(&HeaderMap::new(), Err(busy.into()));
        assert_eq!(r.status(), 503);
        assert_eq!(r.headers()[RETRY_AFTER], "2");
    }
}
