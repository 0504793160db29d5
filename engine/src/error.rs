//! The engine's error type. Each variant carries what a person needs to act on it.

use std::path::PathBuf;

use crate::model::ProjectId;

/// Everything the engine can refuse or fail with.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Memory or queue limits are reached; nothing from the request was stored. Retry later.
    #[error("backpressure: {0}")]
    Backpressure(Backpressure),

    /// The engine stopped accepting writes after an unrecoverable I/O failure (a failed
    /// fsync is never retried). Reads keep working.
    #[error("engine is read-only after a write failure: {0}")]
    ReadOnly(String),

    /// A write failed for lack of space; nothing from the request was acknowledged. Writes
    /// resume once space returns.
    #[error("storage is full: {0}")]
    StorageFull(String),

    /// The caller's request is out of range (empty batch, a limit or window out of range):
    /// the caller's mistake, never the engine's.
    #[error("invalid request: {0}")]
    Invalid(Invalid),

    /// A part of the engine that this call needs is off or has failed (metrics after the
    /// rollup thread died, or with rollups disabled; search with the index disabled). Not
    /// the caller's fault; other calls keep working.
    #[error("unavailable: {0}")]
    Unavailable(String),

    /// An engine invariant broke (a bug, not bad input and not damage on disk).
    #[error("internal error: {0}")]
    Internal(String),

    /// The project was deleted.
    #[error("project {0} does not exist")]
    UnknownProject(ProjectId),

    /// A file is damaged; the message names the file and the byte offset.
    #[error("{path}: corrupt at byte {offset}: {what}")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        what: String,
    },

    /// A file operation failed; `path` is the file, `error` what the OS said.
    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        #[source]
        error: std::io::Error,
    },

    /// The catalog database (redb) failed.
    #[error("catalog: {0}")]
    Catalog(#[source] Box<redb::Error>),

    /// A catalog record does not decode: damage, or a record from a newer version.
    #[error("catalog: segment {segment:016x}: {what}")]
    CatalogRecord { segment: u64, what: &'static str },

    /// The engine is shutting down.
    #[error("engine is closed")]
    Closed,
}

impl EngineError {
    /// The catalog refused to begin a transaction because an earlier commit failed: nothing
    /// of this one was written, so files made for it may be removed (unlike after a failed
    /// commit, which may still be durable).
    pub(crate) fn catalog_refused(&self) -> bool {
        matches!(self, EngineError::Catalog(e) if matches!(**e, redb::Error::PreviousIo))
    }

    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        let path = path.into();
        if source.raw_os_error() == Some(libc::ENOSPC) {
            return EngineError::StorageFull(format!("{}: {source}", path.display()));
        }
        EngineError::Io {
            path,
            error: source,
        }
    }
    pub fn corrupt(path: impl Into<PathBuf>, offset: u64, what: impl Into<String>) -> Self {
        EngineError::Corrupt {
            path: path.into(),
            offset,
            what: what.into(),
        }
    }
}

/// Which limit turned an append away.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Backpressure {
    #[error("{held} bytes wait to be sealed (limit {limit})")]
    MemtablesFull { held: usize, limit: usize },
    #[error("{lag} logs wait to be indexed (limit {limit})")]
    IndexBehind { lag: u64, limit: u64 },
    #[error("{waiting} bytes of sealed segments wait to be uploaded to object storage (budget {budget})")]
    UploadBacklog { waiting: u64, budget: u64 },
    #[error("queue depth {depth} + {incoming} would pass the limit {limit}")]
    QueueDepth {
        depth: usize,
        incoming: usize,
        limit: usize,
    },
}

/// What is wrong with a caller's request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    #[error("empty batch")]
    EmptyBatch,
    #[error("limit must be 1 to {max}")]
    Limit { max: usize },
    #[error("offset must be at most {max}")]
    Offset { max: usize },
    #[error("cursor was made for the other order")]
    CursorOrder,
    #[error("hours must be at least 1")]
    ZeroHours,
    #[error("hours {0} is out of range")]
    Hours(u32),
    #[error("the window falls outside the representable time")]
    Window,
    #[error("{hours} hours in {bucket} buckets is {buckets} buckets; at most {max} are allowed")]
    TooManyBuckets {
        hours: u32,
        bucket: crate::rollup::Bucket,
        buckets: usize,
        max: usize,
    },
    #[error("the search index needs the real file system; disable search on a test one")]
    SearchNeedsRealFs,
}

impl From<Backpressure> for EngineError {
    fn from(b: Backpressure) -> Self {
        EngineError::Backpressure(b)
    }
}

impl From<Invalid> for EngineError {
    fn from(i: Invalid) -> Self {
        EngineError::Invalid(i)
    }
}

macro_rules! catalog_error {
    ($($t:ty),*) => {$(
        impl From<$t> for EngineError {
            fn from(e: $t) -> Self {
                EngineError::Catalog(Box::new(e.into()))
            }
        }
    )*};
}
impl From<redb::Error> for EngineError {
    fn from(e: redb::Error) -> Self {
        EngineError::Catalog(Box::new(e))
    }
}

catalog_error!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

pub type Result<T, E = EngineError> = std::result::Result<T, E>;
