//! The engine's error type. Each variant carries what a person needs to act on it.

use std::path::PathBuf;

use crate::model::ProjectId;

/// Everything the engine can refuse or fail with.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Memory or queue limits are reached; nothing from the request was stored. Retry later.
    #[error("backpressure: {0}")]
    Backpressure(String),

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
    Invalid(String),

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

    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },

    #[error("catalog: {0}")]
    Catalog(String),

    /// The engine is shutting down.
    #[error("engine is closed")]
    Closed,
}

impl EngineError {
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

macro_rules! catalog_error {
    ($($t:ty),*) => {$(
        impl From<$t> for EngineError {
            fn from(e: $t) -> Self {
                EngineError::Catalog(e.to_string())
            }
        }
    )*};
}
catalog_error!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

pub type Result<T, E = EngineError> = std::result::Result<T, E>;
