//! Rebuilding a data directory from the bucket: a node whose disk was lost (or a new one)
//! starts with everything the newest manifest names — accounts, keys, projects, limits,
//! usage and every sealed log. What was never sealed (the WAL's tail) is not in the bucket;
//! that is the recovery point.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};

use crate::bucket::Bucket;
use crate::error::{Result, TierError};
use crate::manifest::{Blob, Manifest, MANIFEST_KEY};

/// What a rebuild restored.
#[derive(Debug, Clone)]
pub struct RebuildReport {
    /// The manifest restored.
    pub manifest: Manifest,
    pub generation: u64,
    /// When the manifest restored was published (µs).
    pub published_at: i64,
    pub segments: usize,
    /// Files of the search index restored (0: the engine rebuilds the index from segments).
    pub index_files: usize,
    pub rows: u64,
    pub bytes: u64,
    pub seconds: f64,
}

/// Downloads `blob` and checks its size and hash.
pub(crate) async fn fetch(bucket: &Bucket, blob: &Blob) -> Result<Bytes> {
    let damaged = |why: String| TierError::Damaged {
        key: blob.key.clone(),
        why,
    };
    let bytes = bucket
        .get(&blob.key)
        .await?
        .ok_or_else(|| damaged("missing".into()))?;
    if bytes.len() as u64 != blob.bytes {
        return Err(damaged(format!(
            "{} bytes, the manifest says {}",
            bytes.len(),
            blob.bytes
        )));
    }
    let h = hex::encode(blake3::hash(&bytes).as_bytes());
    if h != blob.blake3 {
        return Err(damaged(format!(
            "BLAKE3 {h}, the manifest says {}",
            blob.blake3
        )));
    }
    Ok(bytes)
}

/// Writes a file whole and durably: a temporary beside it, fsynced, renamed into place.
pub(crate) fn write_durable(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    ledger_engine::create_private_dir(dir).map_err(|e| TierError::Snapshot(e.to_string()))?;
    let tmp = path.with_extension("download");
    let io = |e| TierError::io(path, e);
    {
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io)?;
        f.write_all(bytes).map_err(io)?;
        f.sync_all().map_err(io)?;
    }
    std::fs::rename(&tmp, path).map_err(io)?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| TierError::io(dir, e))
}

/// Rebuilds `data_dir` from the bucket's newest manifest when the directory holds no
/// catalog. Returns `None`, changing nothing, when the directory is already in use or the
/// bucket holds no manifest. Segments come first and the catalog last, so a rebuild cut
/// short leaves no catalog and runs again at the next start.
pub async fn rebuild(bucket: &Bucket, data_dir: &Path) -> Result<Option<RebuildReport>> {
    if data_dir.join("catalog.redb").exists() {
        return Ok(None);
    }
    let Some(raw) = bucket.get(MANIFEST_KEY).await? else {
        return Ok(None);
    };
    let m = Manifest::decode(&raw)?;
    for own in ["meta.redb", "server.secret"] {
        if data_dir.join(own).exists() {
            return Err(TierError::Refused(format!(
                "{} holds {own} but no catalog.redb: not rebuilding over it from {} (move it \
                 away to rebuild)",
                data_dir.display(),
                bucket.url()
            )));
        }
    }
    let started = Instant::now();
    // Each download owns what it uses (a borrowing closure would make this future not
    // Send for every lifetime, which a server spawning it needs).
    let jobs = m.segments.iter().cloned().map(|s| {
        let bucket = bucket.clone();
        let path: PathBuf = data_dir.join(ledger_engine::segment_file(s.project, s.id));
        async move {
            let bytes = fetch(&bucket, &s.blob).await?;
            let n = bytes.len() as u64;
            tokio::task::spawn_blocking(move || write_durable(&path, &bytes))
                .await
                .map_err(|e| TierError::Snapshot(e.to_string()))??;
            Ok::<u64, TierError>(n)
        }
    });
    let sizes: Vec<u64> = futures::stream::iter(jobs)
        .buffer_unordered(4)
        .try_collect()
        .await?;
    // The search index (meta.json last, so a cut-short download leaves no index, which the
    // engine then rebuilds from the segments).
    let mut index = m.index.clone();
    index.sort_by_key(|f| f.name == "meta.json");
    for f in &index {
        if f.name.contains('/') || f.name.starts_with('.') {
            return Err(TierError::Damaged {
                key: f.blob.key.clone(),
                why: format!("index file name {:?} is not a plain file name", f.name),
            });
        }
        let bytes = fetch(bucket, &f.blob).await?;
        let path = data_dir.join("index").join(&f.name);
        tokio::task::spawn_blocking(move || write_durable(&path, &bytes))
            .await
            .map_err(|e| TierError::Snapshot(e.to_string()))??;
    }
    for (blob, name) in [
        (&m.secret, "server.secret"),
        (&m.meta, "meta.redb"),
        (&m.catalog, "catalog.redb"),
    ] {
        let bytes = fetch(bucket, blob).await?;
        let path = data_dir.join(name);
        tokio::task::spawn_blocking(move || write_durable(&path, &bytes))
            .await
            .map_err(|e| TierError::Snapshot(e.to_string()))??;
    }
    Ok(Some(RebuildReport {
        generation: m.generation,
        published_at: m.published_at,
        segments: m.segments.len(),
        index_files: m.index.len(),
        rows: m.rows(),
        bytes: sizes.iter().sum(),
        seconds: started.elapsed().as_secs_f64(),
        manifest: m,
    }))
}
