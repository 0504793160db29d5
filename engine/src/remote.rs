//! Segments whose bytes live in object storage: the seam through which a node with a
//! bounded local cache reads the segments it evicted (and, after a restart, opens them).
//! The engine knows nothing of buckets; `ledger-tier` implements this.

use std::sync::Arc;

use crate::fs::DataFile;
use crate::model::ProjectId;

pub trait RemoteSegments: Send + Sync + std::fmt::Debug {
    /// A read-only handle on a sealed segment's bytes, read by byte range. `NotFound` when
    /// the store does not hold that segment.
    fn open(&self, project: ProjectId, id: u64) -> std::io::Result<Arc<dyn DataFile>>;
    /// Whether the store holds that segment (so its local file may be evicted).
    fn holds(&self, project: ProjectId, id: u64) -> bool;
}
