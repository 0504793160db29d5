//! `ledger-server`: Ledger's HTTP front end over the storage engine — accounts, projects,
//! API keys, limits, ingest (native JSON, OTLP, Elasticsearch bulk, Loki push) and query.
//!
//! Start at [`run`]. A request goes `serve` (connections) → `app` (request id, metrics, log
//! line, panic guard) → `router` → `routes::*` handlers, which use `auth`, `limits`,
//! `ingest` (body → parse → validate) and the engine. Errors are [`error::ApiError`], mapped
//! to HTTP in that one module.

pub mod apidocs;
pub mod app;
pub mod auth;
pub mod config;
pub mod console;
pub mod deletions;
pub mod error;
pub mod http;
pub mod ingest;
pub mod json;
pub mod limits;
pub mod meta;
pub mod openapi;
mod parse_errors;
pub mod rejected;
pub mod router;
pub mod routes;
mod serve;
pub mod tail;
pub mod tasks;
pub mod telemetry;
pub mod tenants;
pub mod tiering;
pub mod trace;

use std::future::Future;
use std::io::Write;
use std::num::NonZeroU32;
use std::sync::Arc;

use anyhow::Context;
use ledger_engine::Engine;

pub use config::Config;

/// Opens the data directory (engine, metadata, secrets) and builds the application state.
#[cfg(test)]
pub(crate) async fn open_app(config: Config) -> anyhow::Result<Arc<app::App>> {
    Ok(open_node(config).await?.0)
}

/// [`open_app`], and the worker that keeps the node and its bucket in step when there is
/// one (after an empty data directory has been rebuilt from the bucket).
pub(crate) async fn open_node(
    mut config: Config,
) -> anyhow::Result<(Arc<app::App>, Option<tiering::Worker>)> {
    config.check().map_err(anyhow::Error::msg)?;
    let iterations = NonZeroU32::new(config.pbkdf2_iterations).context("pbkdf2 iterations")?;
    let dir = config.data_dir.clone();
    ledger_engine::create_private_dir(&dir)
        .with_context(|| format!("creating the data directory {}", dir.display()))?;
    let prepared = match &config.object_store {
        Some(os) => {
            let p = tiering::prepare(os, &dir).await?;
            config.engine.remote = Some(p.directory.clone());
            Some(p)
        }
        None => None,
    };
    let reader = config.role == config::Role::Reader;
    let restored = prepared
        .as_ref()
        .and_then(|p| p.rebuilt.as_ref())
        .is_some_and(|m| !m.index.is_empty());
    // A search index just restored from the bucket is aligned with the catalog at open. A
    // reader's own index is made from the segments it holds at every other start: what it
    // indexed while following may not have been committed before it stopped.
    config.engine.index_restored = restored;
    if reader && prepared.as_ref().is_some_and(|p| p.rebuilt.is_none()) {
        match std::fs::remove_dir_all(dir.join("index")) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).context("removing a reader's search index");
            }
            _ => {}
        }
    }
    let secrets = auth::secret::load_or_create(&dir)?;
    let (engine, meta, rejected) = {
        let (dir, engine_config) = (dir.clone(), config.engine.clone());
        tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
            let (engine, report) = Engine::open(&dir, engine_config)
                .with_context(|| format!("opening the engine in {}", dir.display()))?;
            tracing::info!(
                segments = report.segments,
                wal_files = report.recovery.wal_files,
                batches_replayed = report.recovery.batches_replayed,
                rows_replayed = report.recovery.rows_replayed,
                damaged_segments = report.damaged_segments.len(),
                wal_cuts = report.recovery.cut.len(),
                "engine opened"
            );
            let meta = meta::Meta::open(&dir).context("opening meta.redb")?;
            let rejected = rejected::RejectedList::open(&dir).context("opening rejected.redb")?;
            Ok((engine, meta, rejected))
        })
        .await??
    };
    let meta = Arc::new(meta);
    let tenants = tenants::Tenants::load(&meta).context("loading projects")?;
    let authn = auth::Authenticator {
        jwt: auth::jwt::Jwt::new(&secrets.jwt),
        hasher: auth::keys::KeyHasher::new(secrets.key_hash),
        keys: auth::keys::KeyCache::default(),
    };
    for k in meta.all_keys().context("loading API keys")? {
        if tenants.contains(k.project) {
            authn.keys.insert(&k);
        }
    }
    let worker = match (prepared, &config.object_store) {
        (Some(p), Some(_)) if reader => Some(tiering::Worker::Follower(
            ledger_tier::Follower::new(p.bucket, &dir, p.rebuilt).with_directory(p.directory),
        )),
        (Some(p), Some(os)) => Some(tiering::Worker::Uploader(tiering::uploader(
            p.bucket,
            p.directory,
            os,
            &dir,
            engine.clone(),
            meta.clone(),
        ))),
        _ => None,
    };
    let mut app = app::App::new(config, iterations, engine, meta, authn, tenants, rejected);
    app.tier = worker.as_ref().map(|w| match w {
        tiering::Worker::Uploader(u) => tiering::TierState::Writer(u.stats()),
        tiering::Worker::Follower(f) => tiering::TierState::Reader(f.stats()),
    });
    Ok((Arc::new(app), worker))
}

/// Runs the server on `listener` until `shutdown` completes, then stops accepting, lets
/// in-flight requests finish (up to the configured grace), and closes the engine (seal,
/// sync, checkpoint). Prints `listening on <addr>` to stdout once it serves.
pub async fn run(
    listener: tokio::net::TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let dir = config.data_dir.clone();
    let object_store = config.object_store.clone();
    let (app, worker) = open_node(config).await?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut background = tasks::spawn(&app, &stop_rx);
    if let (Some(w), Some(os)) = (worker, &object_store) {
        background.push(tiering::spawn(w, &app, os, stop_rx.clone()));
    }
    if app.config.role == config::Role::Writer {
        deletions::resume(&app);
    }
    let addr = listener.local_addr().context("listener address")?;
    tracing::info!(%addr, data_dir = %dir.display(), "serving");
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "listening on {addr}");
        let _ = out.flush();
    }
    serve::accept_until(listener, app.clone(), shutdown).await;
    tracing::info!("shutting down: in-flight requests finished");
    let _ = stop_tx.send(true);
    for t in background {
        let _ = t.await;
    }
    let a = app.clone();
    tokio::task::spawn_blocking(move || {
        tasks::flush_key_use(&a);
        a.rejected.close();
        a.engine.close()
    })
    .await?
    .context("closing the engine")?;
    tracing::info!("engine closed; bye");
    Ok(())
}
