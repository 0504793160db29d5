//! Operations routes, without credentials: liveness, deep health, Prometheus metrics.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::Request;
use serde_json::{json, Value};

use super::blocking;
use crate::app::App;
use crate::error::ApiResult;
use crate::http::{self, Resp};

/// `GET /health`: the process is serving.
pub fn health() -> ApiResult<Resp> {
    Ok(http::json(200, &json!({"status": "ok"})))
}

fn check(r: &Result<(), String>) -> Value {
    match r {
        Ok(()) => json!({"status": "ok"}),
        Err(e) => json!({"status": "failing", "error": e}),
    }
}

/// `GET /health/deep`: storage writable, WAL writer healthy, sealing (which makes logs
/// searchable) not failing, metadata readable. 503 when any check fails.
pub async fn health_deep(app: &Arc<App>) -> ApiResult<Resp> {
    let a = app.clone();
    let (h, meta) = blocking(move || {
        let meta = a.meta.check().map_err(|e| e.to_string());
        (a.engine.health(), meta)
    })
    .await?;
    let ok =
        h.storage.is_ok() && h.wal.is_ok() && h.flush.is_ok() && h.index.is_ok() && meta.is_ok();
    let stats = app.engine.stats();
    let mut body = json!({
        "status": if ok { "ok" } else { "failing" },
        "checks": {
            "storage": check(&h.storage),
            "wal": check(&h.wal),
            "sealing": check(&h.flush),
            "index": check(&h.index),
            "meta": check(&meta),
        },
        "queue_depth": stats.memtable_rows,
        "index_lag": app.engine.search_lag(),
    });
    // Object storage failing does not fail the node (a writer's ingest goes on, sealed data
    // waiting locally within its budget; a reader serves what it has): it is reported, with
    // how far behind the bucket (or the reader) is.
    if let Some(t) = &app.tier {
        body["checks"]["object_store"] = t.health(ledger_engine::now_micros());
    }
    let mut resp = http::json(if ok { 200 } else { 503 }, &body);
    if !ok {
        resp.headers_mut().insert(
            hyper::header::RETRY_AFTER,
            hyper::header::HeaderValue::from(5u64),
        );
    }
    Ok(resp)
}

/// `GET /metrics`: Prometheus text format, or OpenMetrics when the scraper asks for it (the
/// body is the same exposition).
pub async fn metrics(app: &Arc<App>, req: &Request<Incoming>) -> ApiResult<Resp> {
    let stats = app.engine.stats();
    let mut counters = vec![(
        "ledger_rejected_dropped_bytes",
        "Refused items not kept in the rejected-logs list because its writer was behind",
        app.rejected.dropped_bytes(),
    )];
    let mut gauges = Vec::new();
    if let Some(t) = &app.tier {
        counters.extend(t.counters());
        gauges.extend(t.gauges(ledger_engine::now_micros()));
    }
    let text = app
        .telemetry
        .render(&app.engine, &stats, &counters, &gauges);
    let openmetrics = req
        .headers()
        .get_all(hyper::header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"));
    Ok(if openmetrics {
        http::text(text, crate::telemetry::OPENMETRICS_CONTENT_TYPE)
    } else {
        let classic = crate::telemetry::classic_text(&text);
        http::text(classic, crate::telemetry::TEXT_CONTENT_TYPE)
    })
}
