//! `ledger-engine`: everything that stores, indexes and reads logs. It knows nothing of HTTP.
//!
//! Start at [`Engine`]: `open` a data directory, `append` batches, `scan` and `get` them.
//! `engine/FORMAT.md` describes every byte this crate writes.

pub mod background;
pub mod catalog;
pub mod codec;
pub mod config;
mod engine;
pub mod error;
pub mod fingerprint;
pub mod fs;
pub mod fsutil;
pub mod inspect;
pub mod memtable;
pub mod model;
pub mod query;
pub mod render;
pub mod rollup;
pub mod search;
pub mod segment;
pub mod tail;
pub mod timefmt;
pub mod usage;
pub mod wal;

pub use config::{EngineConfig, FsyncPolicy, RecoveryMode};
pub use engine::{
    now_micros, project_dir, AppendOptions, Appended, Deletion, Engine, EngineStats, Health,
    OpenReport,
};
pub use error::{Backpressure, EngineError, Invalid, Result};
pub use model::{Field, Importance, Level, LogId, LogRecord, LogType, NewLog, ProjectId};
pub use query::{AttrMatch, Cursor, Filter, Order, Page, ScanRequest};
pub use rollup::{
    Bucket, ErrorRateBucket, Pattern, RollupConfig, RollupStatus, TopError, VolumeBucket,
};
pub use usage::DayUsage;
