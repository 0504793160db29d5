//! The server's side of object storage (`--object-store s3://bucket/prefix`): rebuild an
//! empty data directory from the bucket before anything opens it; then, on a writer, run
//! the uploader beside the server — every `upload_interval`, and once more at shutdown
//! after the last seal — backing off while the bucket fails; on a reader (`--role reader`),
//! follow the bucket's manifest and adopt each new one (engine, metadata, projects, keys).
//! What goes where in the bucket is `ledger_tier`'s business.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use ledger_engine::Engine;
use ledger_tier::{
    Bucket, FollowStats, Follower, Manifest, SegmentDirectory, TierStats, Uploader, UploaderConfig,
};
use tokio::sync::watch;

use crate::config::ObjectStoreConfig;
use crate::meta::Meta;

/// Longest wait between rounds while the bucket keeps failing.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// What this node does with its bucket, for `/metrics` and `/health/deep`.
pub enum TierState {
    Writer(Arc<TierStats>),
    Reader(Arc<FollowStats>),
}

/// The work a node runs beside the server.
pub enum Worker {
    Uploader(Uploader),
    Follower(Follower),
}

/// Opens the bucket and, when `data_dir` holds no catalog and the bucket a manifest,
/// rebuilds the directory from it (returning that manifest). Runs before the engine and the
/// metadata open.
pub async fn prepare(config: &ObjectStoreConfig, data_dir: &Path) -> anyhow::Result<Prepared> {
    let bucket = Bucket::open(&config.url)?;
    let report = ledger_tier::rebuild(&bucket, data_dir)
        .await
        .with_context(|| format!("rebuilding {} from {}", data_dir.display(), config.url))?;
    if let Some(r) = &report {
        tracing::warn!(
            bucket = %config.url,
            generation = r.generation,
            published_at = %ledger_engine::timefmt::format_micros(r.published_at),
            segments = r.segments,
            logs = r.rows,
            bytes = r.bytes,
            seconds = r.seconds,
            "data directory rebuilt from object storage: logs not sealed before that manifest \
             were not in the bucket"
        );
    }
    // What the bucket holds, so the engine can open the segments this node evicted.
    let directory = SegmentDirectory::new(bucket.clone(), tokio::runtime::Handle::current());
    match &report {
        Some(r) => directory.set(&r.manifest),
        None => match ledger_tier::read_manifest(&bucket).await {
            Ok(Some(m)) => directory.set(&m),
            Ok(None) => {}
            Err(e) => tracing::warn!(
                error = %e,
                "the bucket's manifest is unreadable: segments evicted from this node's cache \
                 stay unreadable until it restarts with the bucket reachable"
            ),
        },
    }
    Ok(Prepared {
        bucket,
        rebuilt: report.map(|r| r.manifest),
        directory,
    })
}

/// A bucket opened, with what it holds.
pub struct Prepared {
    pub bucket: Bucket,
    /// The manifest the data directory was rebuilt from, when it was.
    pub rebuilt: Option<Manifest>,
    pub directory: Arc<SegmentDirectory>,
}

/// The uploader for this server's engine and metadata.
pub fn uploader(
    bucket: Bucket,
    directory: Arc<SegmentDirectory>,
    config: &ObjectStoreConfig,
    data_dir: &Path,
    engine: Engine,
    meta: Arc<Meta>,
) -> Uploader {
    Uploader::new(
        bucket,
        engine,
        UploaderConfig {
            data_dir: data_dir.to_owned(),
            staging: data_dir.join("tier"),
            backlog_budget: config.backlog_budget,
        },
        Box::new(move |to| meta.snapshot_to(to).map_err(|e| e.to_string())),
    )
    .with_directory(directory)
}

/// Runs the node's worker until `stop`.
pub fn spawn(
    worker: Worker,
    app: &Arc<crate::app::App>,
    config: &ObjectStoreConfig,
    stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    match worker {
        Worker::Uploader(up) => spawn_uploader(
            up,
            app.engine.clone(),
            config.upload_interval,
            config.cache_bytes,
            stop,
        ),
        Worker::Follower(f) => spawn_follower(
            f,
            app.clone(),
            config.follow_interval,
            config.cache_bytes,
            stop,
        ),
    }
}

/// Checks the bucket every `every`; adopts each newer manifest: the engine follows its
/// catalog, then the metadata, projects and keys are swapped for its copy.
fn spawn_follower(
    mut f: Follower,
    app: Arc<crate::app::App>,
    every: Duration,
    cache_bytes: u64,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        // The first look is at once: a reader that restarts catches up before its first tick.
        let mut wait = Duration::ZERO;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = async { stop.wait_for(|s| *s).await.is_ok() } => return,
            }
            wait = match follow_once(&mut f, &app).await {
                Ok(()) => {
                    evict(&app.engine, cache_bytes).await;
                    every
                }
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "following the bucket failed; retrying");
                    (wait * 2).clamp(every, MAX_BACKOFF.max(every))
                }
            };
        }
    })
}

async fn follow_once(f: &mut Follower, app: &Arc<crate::app::App>) -> anyhow::Result<()> {
    let Some(pending) = f.poll().await? else {
        return Ok(());
    };
    let a = app.clone();
    let (catalog, meta) = (pending.catalog.clone(), pending.meta.clone());
    let report = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let report = a.engine.follow(&catalog).context("adopting the catalog")?;
        a.meta
            .replace_with(&meta, &a.config.data_dir)
            .context("adopting the metadata")?;
        a.tenants.replace_all(a.meta.all_projects()?);
        let keys = a.meta.all_keys()?;
        a.auth
            .keys
            .replace_all(keys.iter().filter(|k| a.tenants.contains(k.project)));
        Ok(report)
    })
    .await??;
    tracing::info!(
        generation = pending.manifest.generation,
        added = report.segments_added,
        removed = report.segments_removed,
        logs_added = report.rows_added,
        "adopted a newer manifest"
    );
    f.adopted(pending);
    Ok(())
}

/// Runs rounds until `stop`; then seals what is unsealed and runs a last round, so a clean
/// shutdown leaves the bucket holding every acknowledged log.
fn spawn_uploader(
    mut up: Uploader,
    engine: Engine,
    every: Duration,
    cache_bytes: u64,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        // The first round at once: a writer that restarts uploads what waited meanwhile.
        let mut wait = Duration::ZERO;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = async { stop.wait_for(|s| *s).await.is_ok() } => break,
            }
            wait = match round(&mut up).await {
                true => {
                    evict(&engine, cache_bytes).await;
                    every
                }
                false => (wait * 2).clamp(every, MAX_BACKOFF.max(every)),
            };
        }
        let e = engine.clone();
        match tokio::task::spawn_blocking(move || e.flush()).await {
            Ok(Ok(())) => {
                round(&mut up).await;
            }
            Ok(Err(e)) => tracing::error!(error = %e, "sealing before the last upload failed"),
            Err(e) => tracing::error!(error = %e, "sealing before the last upload failed"),
        }
    })
}

/// Keeps the local segment files within the cache budget (0: no limit).
async fn evict(engine: &Engine, cache_bytes: u64) {
    if cache_bytes == 0 {
        return;
    }
    let e = engine.clone();
    match tokio::task::spawn_blocking(move || e.evict_to(cache_bytes)).await {
        Ok(Ok((0, _))) => {}
        Ok(Ok((segments, bytes))) => {
            tracing::info!(segments, bytes, "evicted segments from the local cache")
        }
        Ok(Err(e)) => tracing::warn!(error = %e, "evicting from the local cache failed"),
        Err(e) => tracing::warn!(error = %e, "evicting from the local cache failed"),
    }
}

async fn round(up: &mut Uploader) -> bool {
    match up.round().await {
        Ok(r) => {
            if let Some(g) = r.published {
                tracing::info!(
                    generation = g,
                    segments = r.uploaded_segments,
                    bytes = r.uploaded_bytes,
                    deleted = r.deleted_objects,
                    "manifest published"
                );
            }
            true
        }
        Err(e) => {
            tracing::warn!(error = %e, "upload to object storage failed; retrying");
            false
        }
    }
}

type Counter = (&'static str, &'static str, u64);
type Gauge = (&'static str, &'static str, f64);

impl TierState {
    /// The `object_store` check of `/health/deep`.
    pub fn health(&self, now_us: i64) -> serde_json::Value {
        use serde_json::json;
        use std::sync::atomic::Ordering::Relaxed;
        let status = |e: Option<String>| match e {
            None => json!({"status": "ok"}),
            Some(e) => json!({"status": "failing", "error": e}),
        };
        match self {
            TierState::Writer(s) => {
                let mut v = status(s.last_error.lock().clone());
                v["role"] = json!("writer");
                v["lag_seconds"] = json!(s.lag_seconds(now_us));
                v["waiting_segments"] = json!(s.waiting_segments.load(Relaxed));
                v["waiting_bytes"] = json!(s.waiting_bytes.load(Relaxed));
                v["manifest_generation"] = json!(s.generation.load(Relaxed));
                v
            }
            TierState::Reader(s) => {
                let mut v = status(s.last_error.lock().clone());
                v["role"] = json!("reader");
                v["manifest_generation"] = json!(s.generation.load(Relaxed));
                v["manifest_age_seconds"] = json!(age(s.published_at.load(Relaxed), now_us));
                v["checked_seconds_ago"] = json!(age(s.checked_at.load(Relaxed), now_us));
                v
            }
        }
    }

    /// Counters for `/metrics` (names without `_total`).
    pub fn counters(&self) -> Vec<Counter> {
        use std::sync::atomic::Ordering::Relaxed;
        match self {
            TierState::Writer(s) => vec![
                (
                    "ledger_object_store_uploaded_segments",
                    "Sealed segments uploaded to object storage",
                    s.uploaded_segments.load(Relaxed),
                ),
                (
                    "ledger_object_store_uploaded_bytes",
                    "Bytes of sealed segments uploaded to object storage",
                    s.uploaded_bytes.load(Relaxed),
                ),
                (
                    "ledger_object_store_deleted_objects",
                    "Objects deleted from the bucket (retention, deletions, replaced copies)",
                    s.deleted_objects.load(Relaxed),
                ),
                (
                    "ledger_object_store_errors",
                    "Upload rounds that failed (each is retried)",
                    s.errors.load(Relaxed),
                ),
            ],
            TierState::Reader(s) => vec![
                (
                    "ledger_object_store_downloaded_segments",
                    "Segments downloaded from object storage",
                    s.downloaded_segments.load(Relaxed),
                ),
                (
                    "ledger_object_store_downloaded_bytes",
                    "Bytes of segments downloaded from object storage",
                    s.downloaded_bytes.load(Relaxed),
                ),
                (
                    "ledger_object_store_errors",
                    "Looks at the bucket that failed (each is retried)",
                    s.errors.load(Relaxed),
                ),
            ],
        }
    }

    /// Gauges for `/metrics`.
    pub fn gauges(&self, now_us: i64) -> Vec<Gauge> {
        use std::sync::atomic::Ordering::Relaxed;
        match self {
            TierState::Writer(s) => vec![
                (
                    "ledger_object_store_waiting_segments",
                    "Sealed segments not yet in the bucket",
                    s.waiting_segments.load(Relaxed) as f64,
                ),
                (
                    "ledger_object_store_waiting_bytes",
                    "Bytes of sealed segments not yet in the bucket",
                    s.waiting_bytes.load(Relaxed) as f64,
                ),
                (
                    "ledger_object_store_lag_seconds",
                    "How long the oldest sealed data not yet in the bucket has waited",
                    s.lag_seconds(now_us),
                ),
                (
                    "ledger_object_store_manifest_generation",
                    "Generation of the last manifest published",
                    s.generation.load(Relaxed) as f64,
                ),
            ],
            TierState::Reader(s) => vec![
                (
                    "ledger_object_store_manifest_generation",
                    "Generation of the manifest this reader serves",
                    s.generation.load(Relaxed) as f64,
                ),
                (
                    "ledger_object_store_manifest_age_seconds",
                    "Age of the manifest this reader serves",
                    age(s.published_at.load(Relaxed), now_us),
                ),
            ],
        }
    }
}

/// Seconds since `at_us` (0 when never).
fn age(at_us: i64, now_us: i64) -> f64 {
    if at_us == 0 {
        0.0
    } else {
        (now_us - at_us).max(0) as f64 / 1e6
    }
}
