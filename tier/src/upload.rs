//! The uploader: moves what a writer has sealed into the bucket, then publishes a manifest
//! naming it. It runs beside the engine, never on the ingest path; the engine only hears
//! how many sealed bytes wait, so that past a budget it refuses appends (backpressure).
//!
//! A round: copy the catalog (one consistent read, which also lists the sealed segments)
//! and the metadata; upload every listed segment the bucket lacks; upload the copies; write
//! the manifest; then delete what the new manifest no longer names (retention, deletions,
//! replaced copies). A round that fails leaves the last manifest in force and is repeated
//! whole; objects are named by their content's hash, so a repeated upload replaces an object
//! with the same bytes and never makes a second segment.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use ledger_engine::{now_micros, Engine, ProjectId, SealedFile};
use parking_lot::Mutex;

use crate::bucket::Bucket;
use crate::error::{Result, TierError};
use crate::manifest::{
    self, Blob, IndexFile, Manifest, SegmentEntry, MANIFEST_KEY, MANIFEST_VERSION,
};

/// Makes a copy of the server's metadata database at the given path.
pub type MetaSnapshot = Box<dyn Fn(&Path) -> std::result::Result<(), String> + Send + Sync>;

pub struct UploaderConfig {
    /// The data directory (the server secret is read from it).
    pub data_dir: PathBuf,
    /// Where catalog and metadata copies are made before upload.
    pub staging: PathBuf,
    /// Sealed bytes that may wait for the bucket before appends are refused (0: no limit).
    pub backlog_budget: u64,
}

/// Figures for `/metrics` and `/health/deep`, shared with the server.
#[derive(Debug, Default)]
pub struct TierStats {
    pub uploaded_segments: AtomicU64,
    pub uploaded_bytes: AtomicU64,
    pub deleted_objects: AtomicU64,
    pub errors: AtomicU64,
    pub waiting_segments: AtomicU64,
    pub waiting_bytes: AtomicU64,
    /// Generation of the last manifest published (0: none yet).
    pub generation: AtomicU64,
    /// When the last manifest was published (µs; 0: never).
    pub published_at: AtomicI64,
    /// Since when sealed data has been waiting for the bucket (µs; 0: nothing waits).
    pub waiting_since: AtomicI64,
    pub last_error: Mutex<Option<String>>,
}

impl TierStats {
    /// How long the oldest sealed data not yet in the bucket has waited, in seconds.
    pub fn lag_seconds(&self, now_us: i64) -> f64 {
        match self.waiting_since.load(Ordering::Relaxed) {
            0 => 0.0,
            since => (now_us - since).max(0) as f64 / 1e6,
        }
    }
}

/// What one round did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Round {
    pub uploaded_segments: usize,
    pub uploaded_bytes: u64,
    /// The generation published, when this round published one.
    pub published: Option<u64>,
    pub deleted_objects: usize,
}

pub struct Uploader {
    bucket: Bucket,
    engine: Engine,
    config: UploaderConfig,
    meta_snapshot: MetaSnapshot,
    stats: Arc<TierStats>,
    /// What the bucket holds of each sealed segment, by (project, segment id).
    uploaded: HashMap<(ProjectId, u64), SegmentEntry>,
    published: Option<Manifest>,
    started: bool,
    /// Whether the bucket has been swept of objects no manifest names.
    swept: bool,
    /// Told what each manifest holds, so the engine may read those segments remotely.
    directory: Option<Arc<crate::SegmentDirectory>>,
}

/// Segments uploaded at once.
const UPLOADS_AT_ONCE: usize = 4;

/// The files of the index segments `meta.json` names, with their sizes, sorted: every file
/// in `dir` whose name starts with one of its segment ids (tantivy names a segment's files
/// `<id>.<ext>` and its deletes `<id>.<opstamp>.del`). `None` when `meta.json` does not parse.
fn committed_index_files(dir: &Path, meta: &[u8]) -> Option<Vec<(String, u64)>> {
    let v: serde_json::Value = serde_json::from_slice(meta).ok()?;
    let ids: Vec<String> = v
        .get("segments")?
        .as_array()?
        .iter()
        .filter_map(|s| s.get("segment_id")?.as_str().map(|id| id.replace('-', "")))
        .collect();
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).ok()? {
        let e = e.ok()?;
        let name = e.file_name().to_string_lossy().into_owned();
        let id = name.split('.').next().unwrap_or("");
        if ids.iter().any(|s| s == id) {
            out.push((name, e.metadata().ok()?.len()));
        }
    }
    out.sort();
    Some(out)
}

fn hash(bytes: &[u8]) -> String {
    hex::encode(blake3::hash(bytes).as_bytes())
}

async fn read(path: PathBuf) -> std::io::Result<Bytes> {
    tokio::task::spawn_blocking(move || std::fs::read(path).map(Bytes::from))
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())))
}

impl Uploader {
    pub fn new(
        bucket: Bucket,
        engine: Engine,
        config: UploaderConfig,
        meta_snapshot: MetaSnapshot,
    ) -> Uploader {
        Uploader {
            bucket,
            engine,
            config,
            meta_snapshot,
            stats: Arc::default(),
            uploaded: HashMap::new(),
            published: None,
            started: false,
            swept: false,
            directory: None,
        }
    }

    /// Keeps `directory` in step with every manifest found or published.
    pub fn with_directory(mut self, directory: Arc<crate::SegmentDirectory>) -> Uploader {
        self.directory = Some(directory);
        self
    }

    pub fn stats(&self) -> Arc<TierStats> {
        self.stats.clone()
    }

    /// The manifest this uploader last published or found.
    pub fn manifest(&self) -> Option<&Manifest> {
        self.published.as_ref()
    }

    /// One round (see the module's documentation). An error is counted and kept for
    /// `/health/deep`; the caller waits and calls again.
    pub async fn round(&mut self) -> Result<Round> {
        match self.try_round().await {
            Ok(r) => {
                *self.stats.last_error.lock() = None;
                Ok(r)
            }
            Err(e) => {
                self.stats.errors.fetch_add(1, Ordering::Relaxed);
                *self.stats.last_error.lock() = Some(e.to_string());
                Err(e)
            }
        }
    }

    async fn try_round(&mut self) -> Result<Round> {
        if !self.started {
            // Continue the bucket's generations, and trust what its manifest already holds
            // of our segments (segment ids are never reused by one catalog).
            if let Some(b) = self.bucket.get(MANIFEST_KEY).await? {
                let m = Manifest::decode(&b)?;
                for s in &m.segments {
                    self.uploaded.insert((s.project, s.id), s.clone());
                }
                self.stats.generation.store(m.generation, Ordering::Relaxed);
                if let Some(d) = &self.directory {
                    d.set(&m);
                }
                self.published = Some(m);
            }
            self.started = true;
        }
        let mut round = Round::default();
        let staging = self.config.staging.clone();
        std::fs::create_dir_all(&staging).map_err(|e| TierError::io(&staging, e))?;
        let (catalog_path, meta_path) = (staging.join("catalog.redb"), staging.join("meta.redb"));
        let files = {
            let (engine, path) = (self.engine.clone(), catalog_path.clone());
            tokio::task::spawn_blocking(move || engine.snapshot_catalog(&path))
                .await
                .map_err(|e| TierError::Snapshot(e.to_string()))??
        };
        (self.meta_snapshot)(&meta_path).map_err(TierError::Snapshot)?;

        let live: HashSet<(ProjectId, u64)> = files.iter().map(|f| (f.project, f.id)).collect();
        self.uploaded.retain(|k, _| live.contains(k));
        let missing: Vec<&SealedFile> = files
            .iter()
            .filter(|f| {
                self.uploaded
                    .get(&(f.project, f.id))
                    .is_none_or(|e| e.blob.bytes != f.bytes)
            })
            .collect();
        self.report_waiting(&missing);
        // A few uploads at once (each holds its segment in memory: at most
        // UPLOADS_AT_ONCE × the seal size).
        // Owned items: a closure over borrowed ones would make the round's future not Send
        // for every lifetime, which spawning it needs.
        let owned: Vec<SealedFile> = missing.iter().map(|f| (*f).clone()).collect();
        let bucket = self.bucket.clone();
        let jobs = owned.into_iter().map(|f| {
            let bucket = bucket.clone();
            async move {
                let bytes = match read(f.path.clone()).await {
                    Ok(b) => b,
                    // Retention or a deletion removed it after the catalog copy: the next
                    // round's copy no longer lists it.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                    Err(e) => return Err(TierError::io(&f.path, e)),
                };
                let blake3 = hash(&bytes);
                let key = manifest::segment_key(f.project, f.id, &blake3);
                let len = bytes.len() as u64;
                bucket.put(&key, bytes).await?;
                Ok(Some(SegmentEntry {
                    project: f.project,
                    id: f.id,
                    rows: f.rows,
                    min_ts: f.min_ts,
                    max_ts: f.max_ts,
                    blob: Blob {
                        key,
                        bytes: len,
                        blake3,
                    },
                }))
            }
        });
        let mut done = futures::stream::iter(jobs).buffer_unordered(UPLOADS_AT_ONCE);
        let mut vanished = false;
        while let Some(r) = done.next().await {
            let Some(e) = r? else {
                vanished = true;
                continue;
            };
            round.uploaded_segments += 1;
            round.uploaded_bytes += e.blob.bytes;
            self.stats.uploaded_segments.fetch_add(1, Ordering::Relaxed);
            self.stats
                .uploaded_bytes
                .fetch_add(e.blob.bytes, Ordering::Relaxed);
            self.uploaded.insert((e.project, e.id), e);
            let left: Vec<&SealedFile> = missing
                .iter()
                .copied()
                .filter(|f| !self.uploaded.contains_key(&(f.project, f.id)))
                .collect();
            self.report_waiting(&left);
        }
        drop(done);
        if vanished {
            return Ok(round);
        }

        let catalog = read(catalog_path.clone())
            .await
            .map_err(|e| TierError::io(&catalog_path, e))?;
        let meta = read(meta_path.clone())
            .await
            .map_err(|e| TierError::io(&meta_path, e))?;
        let secret_path = self.config.data_dir.join("server.secret");
        let secret = read(secret_path.clone())
            .await
            .map_err(|e| TierError::io(&secret_path, e))?;
        let index = self.upload_index().await?;
        let mut segments: Vec<SegmentEntry> = files
            .iter()
            .filter_map(|f| self.uploaded.get(&(f.project, f.id)).cloned())
            .collect();
        segments.sort_by_key(|s| (s.project, s.id));
        let (catalog_hash, meta_hash, secret_hash) = (hash(&catalog), hash(&meta), hash(&secret));
        let prev = self.published.as_ref();
        let unchanged = prev.is_some_and(|p| {
            p.segments == segments
                && p.index == index
                && p.catalog.blake3 == catalog_hash
                && p.meta.blake3 == meta_hash
                && p.secret.blake3 == secret_hash
        });
        if unchanged {
            self.stats.waiting_since.store(0, Ordering::Relaxed);
            return Ok(round);
        }
        let generation = prev.map_or(1, |p| p.generation + 1);
        let same = |old: Option<&Blob>, h: &str| old.filter(|b| b.blake3 == h).cloned();
        let catalog_blob = match same(prev.map(|p| &p.catalog), &catalog_hash) {
            Some(b) => b,
            None => {
                self.put_blob(manifest::catalog_key(generation), catalog)
                    .await?
            }
        };
        let meta_blob = match same(prev.map(|p| &p.meta), &meta_hash) {
            Some(b) => b,
            None => self.put_blob(manifest::meta_key(generation), meta).await?,
        };
        let secret_blob = match same(prev.map(|p| &p.secret), &secret_hash) {
            Some(b) => b,
            None => self.put_blob(manifest::SECRET_KEY.into(), secret).await?,
        };
        let next = Manifest {
            version: MANIFEST_VERSION,
            generation,
            published_at: now_micros(),
            catalog: catalog_blob,
            meta: meta_blob,
            secret: secret_blob,
            segments,
            index,
        };
        self.bucket
            .put(MANIFEST_KEY, Bytes::from(next.encode()))
            .await?;
        round.published = Some(generation);
        if let Some(d) = &self.directory {
            d.set(&next);
        }
        self.stats.generation.store(generation, Ordering::Relaxed);
        self.stats
            .published_at
            .store(next.published_at, Ordering::Relaxed);
        self.stats.waiting_since.store(0, Ordering::Relaxed);
        let old = self.published.replace(next);
        round.deleted_objects = self.collect_garbage(old.as_ref()).await?;
        Ok(round)
    }

    /// Uploads the search index as of its last commit: `meta.json` and the files of the
    /// index segments it names (each written once by tantivy and never changed, so one
    /// already in the bucket under the same name and size is not read again), `meta.json`
    /// last. When tantivy deletes a file meanwhile (a merge), the previous copy stays in
    /// force until the next round.
    async fn upload_index(&self) -> Result<Vec<IndexFile>> {
        let prev: Vec<IndexFile> = self
            .published
            .as_ref()
            .map(|m| m.index.clone())
            .unwrap_or_default();
        let dir = self.config.data_dir.join("index");
        let meta = match read(dir.join("meta.json")).await {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(prev),
            Err(e) => return Err(TierError::io(dir.join("meta.json"), e)),
        };
        let Some(names) = committed_index_files(&dir, &meta) else {
            return Ok(prev);
        };
        let mut out = Vec::with_capacity(names.len() + 1);
        for (name, len) in names {
            if let Some(f) = prev.iter().find(|f| f.name == name && f.blob.bytes == len) {
                out.push(f.clone());
                continue;
            }
            let bytes = match read(dir.join(&name)).await {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(prev),
                Err(e) => return Err(TierError::io(dir.join(&name), e)),
            };
            let blob = self
                .put_blob(manifest::index_key(&name, &hash(&bytes)), bytes)
                .await?;
            out.push(IndexFile { name, blob });
        }
        let name = "meta.json".to_owned();
        let blob = match prev
            .iter()
            .find(|f| f.name == name && f.blob.blake3 == hash(&meta))
        {
            Some(f) => f.blob.clone(),
            None => {
                self.put_blob(manifest::index_key(&name, &hash(&meta)), meta)
                    .await?
            }
        };
        out.push(IndexFile { name, blob });
        Ok(out)
    }

    async fn put_blob(&self, key: String, bytes: Bytes) -> Result<Blob> {
        let blob = Blob {
            bytes: bytes.len() as u64,
            blake3: hash(&bytes),
            key,
        };
        self.bucket.put(&blob.key, bytes).await?;
        Ok(blob)
    }

    fn report_waiting(&self, waiting: &[&SealedFile]) {
        let bytes: u64 = waiting.iter().map(|f| f.bytes).sum();
        let s = &self.stats;
        s.waiting_segments
            .store(waiting.len() as u64, Ordering::Relaxed);
        s.waiting_bytes.store(bytes, Ordering::Relaxed);
        if waiting.is_empty() {
            s.waiting_since.store(0, Ordering::Relaxed);
        } else if s.waiting_since.load(Ordering::Relaxed) == 0 {
            s.waiting_since.store(now_micros(), Ordering::Relaxed);
        }
        self.engine
            .report_upload_backlog(bytes, self.config.backlog_budget);
    }

    /// Deletes what the manifest just published no longer names. The first time, it also
    /// sweeps objects no manifest names (left by a writer that died between an upload and
    /// its manifest); after that, only what the previous manifest named is looked at.
    async fn collect_garbage(&mut self, old: Option<&Manifest>) -> Result<usize> {
        let Some(now) = self.published.as_ref() else {
            return Ok(0);
        };
        let keep: HashSet<&str> = now.blobs().map(|b| b.key.as_str()).collect();
        let mut doomed: Vec<String> = match old {
            Some(old) if old.generation + 1 == now.generation && self.swept => old
                .blobs()
                .map(|b| b.key.clone())
                .filter(|k| !keep.contains(k.as_str()))
                .collect(),
            _ => {
                let mut all = Vec::new();
                for dir in ["segments/", "catalog/", "meta/", "index/"] {
                    all.extend(self.bucket.list(dir).await?.into_iter().map(|(k, _)| k));
                }
                all.retain(|k| !keep.contains(k.as_str()));
                all
            }
        };
        doomed.sort();
        doomed.dedup();
        for k in &doomed {
            self.bucket.delete(k).await?;
        }
        self.stats
            .deleted_objects
            .fetch_add(doomed.len() as u64, Ordering::Relaxed);
        self.swept = true;
        Ok(doomed.len())
    }
}
