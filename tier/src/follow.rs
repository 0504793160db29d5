//! A reader's side of the bucket: notice each manifest a writer publishes, put the segment
//! files it names in place, and hand over the catalog and metadata copies for the caller to
//! adopt (the engine's `follow`, the server's metadata swap).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use ledger_engine::now_micros;
use parking_lot::Mutex;

use crate::bucket::Bucket;
use crate::error::{Result, TierError};
use crate::manifest::{Manifest, MANIFEST_KEY};
use crate::rebuild::{fetch, write_durable};

/// Figures for `/metrics` and `/health/deep` on a reader.
#[derive(Debug, Default)]
pub struct FollowStats {
    /// Generation of the manifest this node serves (0: none yet).
    pub generation: AtomicU64,
    /// When that manifest was published (µs).
    pub published_at: AtomicI64,
    /// When the bucket was last read successfully (µs).
    pub checked_at: AtomicI64,
    pub downloaded_segments: AtomicU64,
    pub downloaded_bytes: AtomicU64,
    pub errors: AtomicU64,
    pub last_error: Mutex<Option<String>>,
}

/// A newer manifest, its segment files in place, its copies downloaded.
#[derive(Debug)]
pub struct Pending {
    pub manifest: Manifest,
    /// The catalog copy (the engine's `follow` moves it into place).
    pub catalog: PathBuf,
    /// The metadata copy.
    pub meta: PathBuf,
}

pub struct Follower {
    bucket: Bucket,
    data_dir: PathBuf,
    current: Option<Manifest>,
    stats: Arc<FollowStats>,
    directory: Option<Arc<crate::SegmentDirectory>>,
}

impl Follower {
    /// A follower for `data_dir`, which serves `current` (the manifest it was rebuilt from,
    /// or `None` when unknown: then local files of the right size are trusted).
    pub fn new(bucket: Bucket, data_dir: &Path, current: Option<Manifest>) -> Follower {
        let stats = Arc::new(FollowStats::default());
        if let Some(m) = &current {
            stats.generation.store(m.generation, Ordering::Relaxed);
            stats.published_at.store(m.published_at, Ordering::Relaxed);
        }
        Follower {
            bucket,
            data_dir: data_dir.to_owned(),
            current,
            stats,
            directory: None,
        }
    }

    /// Keeps `directory` in step with each manifest handed over (before the caller adopts
    /// it, so segments it names can be opened from the bucket).
    pub fn with_directory(mut self, directory: Arc<crate::SegmentDirectory>) -> Follower {
        self.directory = Some(directory);
        self
    }

    pub fn stats(&self) -> Arc<FollowStats> {
        self.stats.clone()
    }

    /// Reads the manifest; when it is newer than the one served, downloads the segments this
    /// node lacks into place and the catalog and metadata copies into `tier/`.
    pub async fn poll(&mut self) -> Result<Option<Pending>> {
        let r = self.try_poll().await;
        match &r {
            Ok(_) => {
                self.stats.checked_at.store(now_micros(), Ordering::Relaxed);
                *self.stats.last_error.lock() = None;
            }
            Err(e) => {
                self.stats.errors.fetch_add(1, Ordering::Relaxed);
                *self.stats.last_error.lock() = Some(e.to_string());
            }
        }
        r
    }

    async fn try_poll(&mut self) -> Result<Option<Pending>> {
        let Some(raw) = self.bucket.get(MANIFEST_KEY).await? else {
            return Ok(None);
        };
        let m = Manifest::decode(&raw)?;
        if self
            .current
            .as_ref()
            .is_some_and(|c| c.generation >= m.generation)
        {
            return Ok(None);
        }
        // New segments are downloaded (warm for the reads that follow); ones this node
        // already serves stay as they are, local or evicted. After a restart (no manifest
        // known) a local file of the right size is trusted and a missing one is left to be
        // read from the bucket.
        let mut wanted = Vec::new();
        for s in &m.segments {
            let path = self
                .data_dir
                .join(ledger_engine::segment_file(s.project, s.id));
            let fetch = match &self.current {
                Some(c) => !c.segments.iter().any(|o| o.blob.key == s.blob.key),
                None => std::fs::metadata(&path).is_ok_and(|md| md.len() != s.blob.bytes),
            };
            if fetch {
                wanted.push((s.blob.clone(), path));
            }
        }
        let stats = self.stats.clone();
        let jobs = wanted.into_iter().map(|(blob, path)| {
            let (bucket, stats) = (self.bucket.clone(), stats.clone());
            async move {
                let bytes = fetch(&bucket, &blob).await?;
                let n = bytes.len() as u64;
                tokio::task::spawn_blocking(move || write_durable(&path, &bytes))
                    .await
                    .map_err(|e| TierError::Snapshot(e.to_string()))??;
                stats.downloaded_segments.fetch_add(1, Ordering::Relaxed);
                stats.downloaded_bytes.fetch_add(n, Ordering::Relaxed);
                Ok::<(), TierError>(())
            }
        });
        futures::stream::iter(jobs)
            .buffer_unordered(4)
            .try_collect::<Vec<()>>()
            .await?;
        let staging = self.data_dir.join("tier");
        let (catalog, meta) = (
            staging.join("catalog.next.redb"),
            staging.join("meta.next.redb"),
        );
        for (blob, path) in [(&m.catalog, &catalog), (&m.meta, &meta)] {
            let bytes = fetch(&self.bucket, blob).await?;
            let path = path.clone();
            tokio::task::spawn_blocking(move || write_durable(&path, &bytes))
                .await
                .map_err(|e| TierError::Snapshot(e.to_string()))??;
        }
        if let Some(d) = &self.directory {
            d.set(&m);
        }
        Ok(Some(Pending {
            manifest: m,
            catalog,
            meta,
        }))
    }

    /// Records that the caller adopted `p`: it is the manifest this node now serves.
    pub fn adopted(&mut self, p: Pending) {
        self.stats
            .generation
            .store(p.manifest.generation, Ordering::Relaxed);
        self.stats
            .published_at
            .store(p.manifest.published_at, Ordering::Relaxed);
        self.current = Some(p.manifest);
    }
}
