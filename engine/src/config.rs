//! Engine configuration: durability policy, recovery policy, and limits.

use std::time::Duration;

/// When the WAL is fsynced, and so what a crash can lose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// Group commit: every append returns after an fsync that covers it. A crash of the
    /// process or of the machine loses nothing acknowledged. The default.
    Always,
    /// Appends return after the write reaches the OS; the WAL is fsynced at most this long
    /// afterwards. A process crash loses nothing; a machine crash or power loss can lose the
    /// acknowledged writes of the last interval.
    Interval(Duration),
    /// Never fsync the WAL (the OS writes it back when it likes). A process crash loses
    /// nothing; a machine crash can lose any amount not yet written back. For tests and
    /// throwaway data.
    Never,
}

impl std::str::FromStr for FsyncPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "always" => Ok(FsyncPolicy::Always),
            "never" => Ok(FsyncPolicy::Never),
            _ => {
                let ms = s
                    .strip_prefix("interval:")
                    .and_then(|ms| ms.parse::<u64>().ok())
                    .filter(|ms| *ms > 0)
                    .ok_or_else(|| {
                        format!("fsync policy {s:?}: expected always, never or interval:<ms>")
                    })?;
                Ok(FsyncPolicy::Interval(Duration::from_millis(ms)))
            }
        }
    }
}

/// What opening the engine does with a damaged WAL (model: raft-engine's `RecoveryMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecoveryMode {
    /// Any damage, even an incomplete last record, stops the open with an error.
    AbsoluteConsistency,
    /// An incomplete or corrupt record at the very end of the last WAL file (a write torn by
    /// a crash) is cut off and reported; damage anywhere else stops the open. The default:
    /// a torn tail can only hold a batch that was never acknowledged.
    #[default]
    TolerateTailCorruption,
    /// Damage anywhere is cut: the file is truncated at the first bad record, reported, and
    /// replay goes on with the next file. May lose acknowledged data; for salvage only.
    TolerateAnyCorruption,
}

impl std::str::FromStr for RecoveryMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "absolute" => Ok(RecoveryMode::AbsoluteConsistency),
            "tolerate-tail" => Ok(RecoveryMode::TolerateTailCorruption),
            "tolerate-any" => Ok(RecoveryMode::TolerateAnyCorruption),
            _ => Err(format!(
                "recovery mode {s:?}: expected absolute, tolerate-tail or tolerate-any"
            )),
        }
    }
}

/// Tunables of an engine instance.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Where the WAL, segments and catalog live: the real disk, or a test file system.
    pub fs: std::sync::Arc<dyn crate::fs::FileSystem>,
    /// Where sealed segments can be read when their local file is gone (object storage);
    /// `None`: every segment is local.
    pub remote: Option<std::sync::Arc<dyn crate::remote::RemoteSegments>>,
    pub fsync: FsyncPolicy,
    pub recovery: RecoveryMode,
    /// A WAL file is closed and a new one started past this size.
    pub wal_file_bytes: u64,
    /// A project's memtable is sealed into a segment at this many rows...
    pub seal_rows: usize,
    /// ...or this many bytes (approximate, in memory)...
    pub seal_bytes: usize,
    /// ...or when its oldest row is this old.
    pub seal_age: Duration,
    /// Rows per compressed segment block.
    pub block_rows: usize,
    /// zstd level for segment blocks.
    pub zstd_level: i32,
    /// Over this many bytes in all memtables together, appends get backpressure.
    pub memtable_limit_bytes: usize,
    /// Bytes of decoded blocks kept in the block cache.
    pub block_cache_bytes: usize,
    /// The in-memory metrics rollups: on/off and the per-project caps on error groups and
    /// message patterns (see [`crate::rollup`]).
    pub rollups: crate::rollup::RollupConfig,
    /// Keep a full-text search index (tantivy) of every log.
    pub search: bool,
    /// The search index in the data directory is a copy made on another node (restored from
    /// object storage with the catalog): at open, its documents past what the catalog
    /// sealed are deleted and sealed rows past its watermark are indexed.
    pub index_restored: bool,
    /// A log is findable by search at most this long after its append returns.
    pub search_refresh: Duration,
    /// Memory the search indexer may buffer before it writes a segment of its own.
    pub search_writer_bytes: usize,
    /// Over this many logs waiting to be indexed, appends get backpressure (bounds memory
    /// when ingest outpaces indexing).
    pub search_max_lag: u64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            fs: std::sync::Arc::new(crate::fs::RealFs),
            remote: None,
            index_restored: false,
            fsync: FsyncPolicy::Always,
            recovery: RecoveryMode::default(),
            wal_file_bytes: 64 << 20,
            seal_rows: 50_000,
            seal_bytes: 48 << 20,
            seal_age: Duration::from_secs(60),
            block_rows: 1024,
            zstd_level: 3,
            memtable_limit_bytes: 256 << 20,
            block_cache_bytes: 64 << 20,
            rollups: crate::rollup::RollupConfig::default(),
            search: true,
            search_refresh: Duration::from_secs(1),
            search_writer_bytes: 64 << 20,
            search_max_lag: 200_000,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fsync_policy_parses() {
        assert_eq!("always".parse(), Ok(FsyncPolicy::Always));
        assert_eq!(
            "interval:50".parse(),
            Ok(FsyncPolicy::Interval(Duration::from_millis(50)))
        );
        assert!("interval:0".parse::<FsyncPolicy>().is_err());
        assert!("sometimes".parse::<FsyncPolicy>().is_err());
    }
}
