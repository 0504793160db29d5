//! The server's side of object storage (`--object-store s3://bucket/prefix`): rebuild an
//! empty data directory from the bucket before anything opens it, then run the uploader
//! beside the server — every `upload_interval`, and once more at shutdown after the last
//! seal — backing off while the bucket fails. What goes where is `ledger_tier`'s business.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use ledger_engine::Engine;
use ledger_tier::{Bucket, TierStats, Uploader, UploaderConfig};
use tokio::sync::watch;

use crate::config::ObjectStoreConfig;
use crate::meta::Meta;

/// Longest wait between rounds while the bucket keeps failing.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Opens the bucket and, when `data_dir` holds no catalog and the bucket a manifest,
/// rebuilds the directory from it. Runs before the engine and the metadata open.
pub async fn prepare(config: &ObjectStoreConfig, data_dir: &Path) -> anyhow::Result<Bucket> {
    let bucket = Bucket::open(&config.url)?;
    let report = ledger_tier::rebuild(&bucket, data_dir)
        .await
        .with_context(|| format!("rebuilding {} from {}", data_dir.display(), config.url))?;
    if let Some(r) = report {
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
    Ok(bucket)
}

/// The uploader for this server's engine and metadata.
pub fn uploader(
    bucket: Bucket,
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
}

/// Runs rounds until `stop`; then seals what is unsealed and runs a last round, so a clean
/// shutdown leaves the bucket holding every acknowledged log.
pub fn spawn(
    mut up: Uploader,
    engine: Engine,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut wait = every;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = async { stop.wait_for(|s| *s).await.is_ok() } => break,
            }
            wait = match round(&mut up).await {
                true => every,
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

/// The figures `/metrics` shows: counters, then gauges.
pub fn counters(s: &TierStats) -> [(&'static str, &'static str, u64); 4] {
    use std::sync::atomic::Ordering::Relaxed;
    [
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
    ]
}

pub fn gauges(s: &TierStats, now_us: i64) -> [(&'static str, &'static str, f64); 4] {
    use std::sync::atomic::Ordering::Relaxed;
    [
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
    ]
}
