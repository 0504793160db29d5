//! Ledger's own tracing: W3C trace context on every request, the server's log lines, and
//! (with `--otel-endpoint`) its spans exported over OTLP/HTTP by the OpenTelemetry SDK.
//!
//! Every request's answer and its log line carry its request id and trace id. With export
//! on, each request also runs in a `request` span (the JSON log lines written inside it
//! carry both ids too). An incoming `traceparent` is honoured: its trace id
//! becomes the request's, its span the parent of the server's span; the answer carries the
//! `traceparent` of the server's span. With export on, the engine's spans (`append`, `fsync
//! group`, `seal`, `search`, at trace level) are recorded too and exported in batches off
//! the request path; with it off they are disabled at their call sites (no layer wants
//! trace level), so they cost a load and a branch.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use anyhow::Context as _;
use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState, TracerProvider as _,
};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

/// Whether spans are exported (set once at start).
static EXPORTING: AtomicBool = AtomicBool::new(false);

/// Whether spans are exported (`--otel-endpoint`).
pub fn exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

/// A parsed W3C `traceparent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub sampled: bool,
}

/// Parses `traceparent` (version `00`, or a later version's first four fields, as the spec
/// asks); all-zero ids and malformed values are `None` (the request starts a new trace).
pub fn parse_traceparent(v: &str) -> Option<TraceParent> {
    let mut parts = v.trim().split('-');
    let version = parts.next()?;
    let (trace, span, flags) = (parts.next()?, parts.next()?, parts.next()?);
    let rest = parts.next();
    if version.len() != 2 || version.eq_ignore_ascii_case("ff") || !is_hex(version) {
        return None;
    }
    if version == "00" && rest.is_some() {
        return None;
    }
    let trace_id: [u8; 16] = hex_bytes(trace)?;
    let span_id: [u8; 8] = hex_bytes(span)?;
    let flags: [u8; 1] = hex_bytes(flags)?;
    if trace_id == [0; 16] || span_id == [0; 8] {
        return None;
    }
    Some(TraceParent {
        trace_id,
        span_id,
        sampled: flags[0] & 1 == 1,
    })
}

fn is_hex(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

fn hex_bytes<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != 2 * N || !is_hex(s) {
        return None;
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

/// Fresh ids for requests that bring none (and for the server's span when not exporting):
/// a keyed hash of a counter, unique per process and unpredictable across processes.
struct Ids {
    key: [u8; 32],
    n: AtomicU64,
}

impl Ids {
    fn next(&self) -> [u8; 32] {
        let n = self.n.fetch_add(1, Ordering::Relaxed);
        *blake3::keyed_hash(&self.key, &n.to_le_bytes()).as_bytes()
    }
}

fn ids() -> &'static Ids {
    static IDS: std::sync::OnceLock<Ids> = std::sync::OnceLock::new();
    IDS.get_or_init(|| {
        let mut key = [0u8; 32];
        let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut key);
        Ids {
            key,
            n: AtomicU64::new(1),
        }
    })
}

/// The trace context of one request: the ids its log lines and its answer carry.
pub struct RequestTrace {
    pub trace_id: String,
    /// The `traceparent` to answer with: the server's span.
    pub traceparent: String,
}

/// Opens a request's context on `span` (the request span): from `incoming` when the client
/// sent one, otherwise a new trace. When spans are exported the ids are the exported span's.
pub fn begin(span: &tracing::Span, incoming: Option<TraceParent>) -> RequestTrace {
    if EXPORTING.load(Ordering::Relaxed) {
        if let Some(tp) = incoming {
            let remote = SpanContext::new(
                TraceId::from_bytes(tp.trace_id),
                SpanId::from_bytes(tp.span_id),
                if tp.sampled {
                    TraceFlags::SAMPLED
                } else {
                    TraceFlags::default()
                },
                true,
                TraceState::default(),
            );
            let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(remote));
        }
        let cx = span.context();
        let sc = cx.span().span_context().clone();
        if sc.is_valid() {
            let trace_id = sc.trace_id().to_string();
            let flags = if sc.is_sampled() { "01" } else { "00" };
            let traceparent = format!("00-{trace_id}-{}-{flags}", sc.span_id());
            span.record("trace_id", trace_id.as_str());
            return RequestTrace {
                trace_id,
                traceparent,
            };
        }
    }
    let fresh = ids().next();
    let (trace_id, sampled) = match incoming {
        Some(tp) => (tp.trace_id, tp.sampled),
        None => (fresh[..16].try_into().unwrap_or([1; 16]), false),
    };
    let span_id: [u8; 8] = fresh[16..24].try_into().unwrap_or([1; 8]);
    let trace_id = hex::encode(trace_id);
    let traceparent = format!(
        "00-{trace_id}-{}-{}",
        hex::encode(span_id),
        if sampled { "01" } else { "00" }
    );
    span.record("trace_id", trace_id.as_str());
    RequestTrace {
        trace_id,
        traceparent,
    }
}

/// How the server's log lines are written (`--log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line, with the request's id and trace id inside a request.
    Json,
    /// Human-readable lines.
    Text,
}

/// Keeps the span exporter alive; dropping it (at exit) flushes what is queued.
pub struct Guard(Option<SdkTracerProvider>);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            if let Err(e) = p.shutdown() {
                eprintln!("ledger: flushing spans to the OTLP endpoint failed: {e}");
            }
        }
    }
}

/// The OTLP/HTTP traces URL for an endpoint given as a collector's base URL
/// (`http://collector:4318`) or as the full traces URL.
pub fn traces_url(endpoint: &str) -> String {
    let e = endpoint.trim_end_matches('/');
    if e.ends_with("/v1/traces") {
        e.to_owned()
    } else {
        format!("{e}/v1/traces")
    }
}

/// Sets up logging (filtered by `LEDGER_LOG`, default `info`) and, with an endpoint, span
/// export over OTLP/HTTP (protobuf) through a batch processor.
pub fn init(format: LogFormat, otel_endpoint: Option<&str>) -> anyhow::Result<Guard> {
    // reqwest (the span exporter's client, and object storage's) is built with rustls and
    // no crypto provider of its own: ring's is the process's, set before any client exists.
    ledger_tier::install_crypto();
    let filter = tracing_subscriber::EnvFilter::try_from_env("LEDGER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt: Box<dyn Layer<_> + Send + Sync> = match format {
        LogFormat::Text => fmt.with_filter(filter).boxed(),
        LogFormat::Json => fmt
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_filter(filter)
            .boxed(),
    };
    let (otel, provider) = match otel_endpoint {
        None => (None, None),
        Some(endpoint) => {
            use opentelemetry_otlp::WithExportConfig;
            let url = traces_url(endpoint);
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .with_endpoint(url.clone())
                .with_timeout(std::time::Duration::from_secs(10))
                .build()
                .with_context(|| format!("--otel-endpoint {url}"))?;
            let provider = SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .with_resource(
                    opentelemetry_sdk::Resource::builder()
                        .with_service_name("ledger")
                        .with_attribute(opentelemetry::KeyValue::new(
                            "service.version",
                            env!("CARGO_PKG_VERSION"),
                        ))
                        .build(),
                )
                .build();
            let tracer = provider.tracer("ledger");
            let layer = tracing_opentelemetry::layer()
                .with_tracer(tracer)
                .with_filter(
                    tracing_subscriber::filter::Targets::new()
                        .with_target("ledger_server", tracing::Level::TRACE)
                        .with_target("ledger_engine", tracing::Level::TRACE)
                        .with_target("ledger", tracing::Level::TRACE),
                );
            EXPORTING.store(true, Ordering::Relaxed);
            (Some(layer), Some(provider))
        }
    };
    tracing_subscriber::registry()
        .with(fmt)
        .with(otel)
        .try_init()
        .context("setting up logging")?;
    Ok(Guard(provider))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_parses_as_the_w3c_spec_says() {
        let tp =
            parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        assert_eq!(hex::encode(tp.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(hex::encode(tp.span_id), "00f067aa0ba902b7");
        assert!(tp.sampled);
        assert!(
            !parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")
                .unwrap()
                .sampled
        );
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
        ] {
            assert_eq!(parse_traceparent(bad), None, "{bad:?}");
        }
        // A later version may carry more fields.
        assert!(
            parse_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-more")
                .is_some()
        );
    }

    #[test]
    fn the_traces_url_is_the_collector_base_plus_v1_traces() {
        assert_eq!(
            traces_url("http://c:4318"),
            "http://c:4318/v1/traces".to_owned()
        );
        assert_eq!(traces_url("http://c:4318/"), "http://c:4318/v1/traces");
        assert_eq!(
            traces_url("http://c:4318/v1/traces"),
            "http://c:4318/v1/traces"
        );
    }

    #[test]
    fn fresh_ids_differ() {
        let (a, b) = (ids().next(), ids().next());
        assert_ne!(a, b);
    }
}
