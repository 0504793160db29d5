//! What can go wrong between a data directory and a bucket.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum TierError {
    #[error("object store URL {url:?}: {why}")]
    Url { url: String, why: String },
    #[error("object store: {0}")]
    Store(#[from] object_store::Error),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Engine(#[from] ledger_engine::EngineError),
    #[error("snapshot: {0}")]
    Snapshot(String),
    #[error("manifest {key}: {why}")]
    Manifest { key: String, why: String },
    #[error("object {key}: {why}")]
    Damaged { key: String, why: String },
    #[error("{0}")]
    Refused(String),
}

impl TierError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> TierError {
        TierError::Io {
            path: path.into(),
            source,
        }
    }
}

pub type Result<T> = std::result::Result<T, TierError>;
