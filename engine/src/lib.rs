//! `ledger-engine`: everything that stores, indexes and reads logs. It knows nothing of HTTP.
//!
//! Start at [`Engine`]: `open` a data directory, `append` batches, `scan`, `get` and `search`
//! them, read the rollups, `delete_logs`. `engine/FORMAT.md` describes every byte this crate
//! writes.
//!
//! The public surface is deliberate: the engine and its configuration, the log model, the
//! query and search types, the JSON form of a log, RFC 3339 time, the live-tail hub, the
//! file-system seam, and the inspection functions `ledgerctl` uses. The file formats (`wal`,
//! `segment`), the rollup internals and [`fs::FaultFs`] are public only with the `testing`
//! feature, for the engine's own integration tests, the fuzz targets and the benches.

mod catalog;
mod codec;
mod compression;
mod config;
mod db;
mod error;
mod fingerprint;
pub mod fs;
pub mod inspect;
pub mod json;
mod memtable;
mod model;
mod priority;
mod query;
pub mod remote;
pub mod search;
pub mod tail;
pub mod timefmt;
mod usage;

#[cfg(feature = "testing")]
pub mod rollup;
#[cfg(not(feature = "testing"))]
mod rollup;
#[cfg(feature = "testing")]
pub mod segment;
#[cfg(not(feature = "testing"))]
mod segment;
#[cfg(feature = "testing")]
pub mod wal;
#[cfg(not(feature = "testing"))]
mod wal;

/// Copies one redb table between databases (the catalog's and the server's snapshots).
pub use catalog::copy_table as copy_redb_table;
pub use config::{EngineConfig, FsyncPolicy, RecoveryMode};
pub use db::{
    now_micros, project_dir, segment_file, AppendOptions, Appended, Deletion, Engine, EngineStats,
    FollowReport, Health, OpenReport, SealedFile, SMALL_APPEND,
};
pub use error::{Backpressure, EngineError, Invalid, Result};
pub use fingerprint::fingerprint;
pub use fs::create_private_dir;
pub use model::{Field, Importance, Level, LogId, LogRecord, LogType, NewLog, ProjectId};
pub use priority::{lower_priority, shorten_slice};
pub use query::{AttrMatch, Cursor, Filter, Order, Page, ScanRequest, MAX_LIMIT, MAX_OFFSET};
pub use rollup::{
    Bucket, ErrorRateBucket, Pattern, RollupConfig, RollupStatus, TopError, VolumeBucket,
};
pub use segment::SegmentReader;
pub use usage::{day_of, DayUsage};
pub use wal::writer::FSYNC_BUCKETS_US;
pub use wal::{list_files as wal_files, WalStats};
