//! Connections: accept, serve HTTP/1.1 on each, and on shutdown stop accepting, let every
//! in-flight request finish (idle keep-alive connections close at once), then return.
//!
//! What a hostile client can hold is bounded here: at most `max_connections` connections
//! (past it, new ones wait in the kernel's listen backlog until one closes), each of which
//! must send a whole request head within `header_timeout` (from its first byte or the end
//! of the previous answer, so idle and slow-loris connections are closed) and at most
//! `max_header_bytes` of it (else 431). Bodies are bounded in `ingest::body`.
//!
//! hyper answers a head it cannot parse (or one over the limit) by itself, with an empty
//! body; `parse_errors` turns those answers into the API's JSON errors.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use crate::app::App;
use crate::parse_errors::ParseErrors;

/// Serves until `shutdown` completes, then drains connections (up to the grace period).
pub async fn accept_until(
    listener: TcpListener,
    app: Arc<App>,
    shutdown: impl Future<Output = ()>,
) {
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut conns = JoinSet::new();
    let slots = Arc::new(Semaphore::new(app.config.max_connections));
    let header_timeout = app.config.header_timeout;
    let max_header_bytes = app.config.max_header_bytes;
    tokio::pin!(shutdown);
    loop {
        while conns.try_join_next().is_some() {}
        // A free slot first, so that at the cap nothing more is accepted.
        let slot = tokio::select! {
            _ = &mut shutdown => break,
            s = slots.clone().acquire_owned() => match s {
                Ok(s) => s,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let mut stop = stop_rx.clone();
        conns.spawn(async move {
            let _slot = slot;
            let service = service_fn(move |req| {
                let app = app.clone();
                async move { Ok::<_, Infallible>(app.handle(req, peer).await) }
            });
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .max_header_size(max_header_bytes)
                .serve_connection(
                    TokioIo::new(ParseErrors::new(stream, max_header_bytes)),
                    service,
                );
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(error = %e, %peer, "connection ended with an error");
                    }
                }
                _ = async { stop.wait_for(|s| *s).await.is_ok() } => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    app.stopping.send_replace(true);
    let grace = app.config.shutdown_grace;
    if tokio::time::timeout(grace, async { while conns.join_next().await.is_some() {} })
        .await
        .is_err()
    {
        tracing::warn!(
            remaining = conns.len(),
            "shutdown grace over; dropping connections"
        );
        conns.abort_all();
    }
}
