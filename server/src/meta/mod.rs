//! The server's metadata in redb (`<data-dir>/meta.redb`): accounts, projects, API key
//! hashes, daily usage and the audit log. The engine's own catalog is a separate file.
//!
//! Records are JSON so a field can be added without a migration; keys are typed. Every
//! method is blocking (a write commits with fsync): call them from blocking tasks.

mod accounts;
mod audit;
mod deletions;
mod keys;
mod projects;
mod usage;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use std::sync::Arc;

use redb::{Database, TableDefinition};
use serde::de::DeserializeOwned;
use serde::Serialize;

pub use accounts::Account;
pub use audit::{AuditEvent, AuditPage};
pub use deletions::DeletionRecord;
pub use keys::{KeyRecord, Scope};
pub use projects::Project;
pub use usage::DayUsage;

pub(crate) const ACCOUNTS: TableDefinition<&str, &[u8]> = TableDefinition::new("accounts");
pub(crate) const EMAILS: TableDefinition<&str, &str> = TableDefinition::new("emails");
pub(crate) const PROJECTS: TableDefinition<u64, &[u8]> = TableDefinition::new("projects");
pub(crate) const KEYS: TableDefinition<&str, &[u8]> = TableDefinition::new("keys");
/// `(project, UTC day number)` → `(logs, bytes)`.
pub(crate) const USAGE: TableDefinition<(u64, i64), (u64, u64)> = TableDefinition::new("usage");
/// `(account, sequence)` → event; the sequence only grows, so a range read is time order.
pub(crate) const AUDIT: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("audit");
pub(crate) const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("counters");
/// `(project, deletion id)` → deletion request and state.
pub(crate) const DELETIONS: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("deletions");

/// A metadata store failure. The server's fault, never the client's.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    #[error("meta.redb: {0}")]
    Store(String),
    #[error("meta.redb: damaged {table} record {key}: {why}")]
    Corrupt {
        table: &'static str,
        key: String,
        why: String,
    },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

macro_rules! store_error {
    ($($t:ty),*) => {$(
        impl From<$t> for MetaError {
            fn from(e: $t) -> Self {
                MetaError::Store(e.to_string())
            }
        }
    )*};
}
store_error!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

pub type MetaResult<T> = Result<T, MetaError>;

/// The metadata database. Cheap to share behind an `Arc`; redb serialises writers itself.
pub struct Meta {
    /// Swapped whole when a read-only node adopts a newer copy (`replace_with`).
    db: parking_lot::RwLock<Arc<Database>>,
}

impl Meta {
    /// Opens (or creates) `meta.redb` in `dir`, readable only by the owner, with every
    /// table present so reads never meet a missing table.
    pub fn open(dir: &Path) -> MetaResult<Meta> {
        let path = dir.join("meta.redb");
        let db = Database::create(&path)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(|e| {
            MetaError::Io {
                path: path.display().to_string(),
                source: e,
            }
        })?;
        let tx = db.begin_write()?;
        {
            tx.open_table(ACCOUNTS)?;
            tx.open_table(EMAILS)?;
            tx.open_table(PROJECTS)?;
            tx.open_table(KEYS)?;
            tx.open_table(USAGE)?;
            tx.open_table(AUDIT)?;
            tx.open_table(COUNTERS)?;
            tx.open_table(DELETIONS)?;
        }
        tx.commit()?;
        Ok(Meta {
            db: parking_lot::RwLock::new(Arc::new(db)),
        })
    }

    /// True when a read transaction can be opened: the `/health/deep` probe.
    pub fn check(&self) -> MetaResult<()> {
        let rtx = self.db().begin_read()?;
        rtx.open_table(COUNTERS)?.get("audit_seq")?;
        Ok(())
    }

    /// Writes a copy of every table to a new database at `dest`, from one read transaction
    /// (what object storage keeps of accounts, keys, projects and usage).
    pub fn snapshot_to(&self, dest: &Path) -> MetaResult<()> {
        use ledger_engine::copy_redb_table as copy;
        let rtx = self.db().begin_read()?;
        let _ = std::fs::remove_file(dest);
        let out = Database::create(dest)?;
        let wtx = out.begin_write()?;
        let engine = |e: ledger_engine::EngineError| MetaError::Store(format!("snapshot: {e}"));
        copy(&rtx, &wtx, ACCOUNTS).map_err(engine)?;
        copy(&rtx, &wtx, EMAILS).map_err(engine)?;
        copy(&rtx, &wtx, PROJECTS).map_err(engine)?;
        copy(&rtx, &wtx, KEYS).map_err(engine)?;
        copy(&rtx, &wtx, USAGE).map_err(engine)?;
        copy(&rtx, &wtx, AUDIT).map_err(engine)?;
        copy(&rtx, &wtx, COUNTERS).map_err(engine)?;
        copy(&rtx, &wtx, DELETIONS).map_err(engine)?;
        wtx.commit()?;
        Ok(())
    }

    pub(crate) fn db(&self) -> Arc<Database> {
        self.db.read().clone()
    }

    /// Swaps the database for the copy at `next` (moved into place as `meta.redb` in `dir`):
    /// a read-only node adopting the metadata its writer published. Transactions already
    /// open finish on the old copy.
    pub fn replace_with(&self, next: &Path, dir: &Path) -> MetaResult<()> {
        let path = dir.join("meta.redb");
        let mut g = self.db.write();
        std::fs::rename(next, &path).map_err(|e| MetaError::Io {
            path: path.display().to_string(),
            source: e,
        })?;
        *g = Arc::new(Database::create(&path)?);
        Ok(())
    }
}

pub(crate) fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    // Serialising these plain structs to JSON cannot fail: no maps with non-string keys.
    serde_json::to_vec(v).unwrap_or_default()
}

pub(crate) fn decode<T: DeserializeOwned>(
    table: &'static str,
    key: impl ToString,
    bytes: &[u8],
) -> MetaResult<T> {
    serde_json::from_slice(bytes).map_err(|e| MetaError::Corrupt {
        table,
        key: key.to_string(),
        why: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reopening_keeps_records() {
        let dir = tempfile::tempdir().unwrap();
        {
            let m = Meta::open(dir.path()).unwrap();
            m.create_account(&Account {
                id: "acc_1".into(),
                email: "a@b.co".into(),
                password_hash: "x".into(),
                created_at: 1,
            })
            .unwrap();
        }
        let m = Meta::open(dir.path()).unwrap();
        assert_eq!(m.account_by_email("a@b.co").unwrap().unwrap().id, "acc_1");
        let mode = std::fs::metadata(dir.path().join("meta.redb"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
