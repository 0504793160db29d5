//! The engine's view of the bucket: which sealed segments it holds (from the manifest a
//! node last published or adopted) and read-only handles that read them by byte range. With
//! this, a node's local segment files are a cache (`Engine::evict_to`).

use std::collections::HashMap;
use std::io;
use std::sync::Arc;

use ledger_engine::fs::DataFile;
use ledger_engine::remote::RemoteSegments;
use ledger_engine::ProjectId;
use parking_lot::RwLock;

use crate::bucket::Bucket;
use crate::manifest::{Blob, Manifest};

/// The segments of the newest manifest this node knows, by (project, id).
#[derive(Debug)]
pub struct SegmentDirectory {
    bucket: Bucket,
    runtime: tokio::runtime::Handle,
    held: RwLock<HashMap<(ProjectId, u64), Blob>>,
}

impl SegmentDirectory {
    /// Requests run on `runtime` (the caller's threads only wait for them).
    pub fn new(bucket: Bucket, runtime: tokio::runtime::Handle) -> Arc<SegmentDirectory> {
        Arc::new(SegmentDirectory {
            bucket,
            runtime,
            held: RwLock::default(),
        })
    }

    /// Records what a manifest (published or adopted) holds.
    pub fn set(&self, m: &Manifest) {
        *self.held.write() = m
            .segments
            .iter()
            .map(|s| ((s.project, s.id), s.blob.clone()))
            .collect();
    }
}

impl RemoteSegments for SegmentDirectory {
    fn open(&self, project: ProjectId, id: u64) -> io::Result<Arc<dyn DataFile>> {
        let blob = self
            .held
            .read()
            .get(&(project, id))
            .cloned()
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("segment {id:016x} of project {project:016x} is not in the bucket"),
                )
            })?;
        Ok(Arc::new(RemoteFile {
            bucket: self.bucket.clone(),
            runtime: self.runtime.clone(),
            key: blob.key,
            len: blob.bytes,
        }))
    }

    fn holds(&self, project: ProjectId, id: u64) -> bool {
        self.held.read().contains_key(&(project, id))
    }
}

/// A segment's object, read by byte range. Read-only.
#[derive(Debug)]
struct RemoteFile {
    bucket: Bucket,
    runtime: tokio::runtime::Handle,
    key: String,
    len: u64,
}

fn read_only() -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        "a segment in object storage is read-only",
    )
}

impl DataFile for RemoteFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let want = buf.len() as u64;
        if offset.checked_add(want).is_none_or(|end| end > self.len) {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{}: read past the end", self.key),
            ));
        }
        // The request runs on the runtime; this thread (a blocking one, or even a runtime
        // worker) only waits for its answer, so no runtime is entered from inside another.
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let (bucket, key) = (self.bucket.clone(), self.key.clone());
        self.runtime.spawn(async move {
            let _ = tx.send(bucket.get_range(&key, offset, want).await);
        });
        let bytes = rx
            .recv()
            .map_err(|_| io::Error::other("the object store request was dropped"))?
            .map_err(|e| io::Error::other(format!("{}: {e}", self.key)))?;
        if bytes.len() != buf.len() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "{}: {} bytes for a {} byte range",
                    self.key,
                    bytes.len(),
                    buf.len()
                ),
            ));
        }
        buf.copy_from_slice(&bytes);
        Ok(())
    }
    fn write_at(&self, _: &[u8], _: u64) -> io::Result<()> {
        Err(read_only())
    }
    fn append(&self, _: &[u8]) -> io::Result<()> {
        Err(read_only())
    }
    fn set_len(&self, _: u64) -> io::Result<()> {
        Err(read_only())
    }
    fn size(&self) -> io::Result<u64> {
        Ok(self.len)
    }
    fn sync_data(&self) -> io::Result<()> {
        Ok(())
    }
}
