//! The catalog: the durable list of sealed segments and what replay needs to skip, in redb.
//!
//! Tables (FORMAT.md, "Catalog"):
//! * `segments`: `(project u64, segment u64)` → encoded [`SegmentMeta`];
//! * `sealed`: `project u64` → highest sequence number sealed into that project's segments;
//! * `deleted`: `project u64` → deletion time (µs); replay drops their WAL batches;
//! * `usage`: `(project u64, day i64)` → `(logs u64, bytes u64)`: the daily usage of every
//!   sealed row (the memtables and the WAL hold the rest; see `usage`);
//! * `meta`: `name str` → `u64` (`next_segment_id`, `max_seq`);
//! * `erased`: `deletion u64` → logs that deletion removed so far (see `engine::deletion`).

use std::collections::{HashMap, HashSet};
use std::path::Path;

use redb::{Database, ReadTransaction, ReadableTable, TableDefinition, WriteTransaction};

use crate::codec::Reader;
use crate::error::{EngineError, Result};
use crate::fs::{FileSystem, RedbBackend};
use crate::model::ProjectId;
use crate::segment::SegmentMeta;
use crate::usage::{DayMap, DayUsage};

const SEGMENTS: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("segments");
const SEALED: TableDefinition<u64, u64> = TableDefinition::new("sealed");
const DELETED: TableDefinition<u64, u64> = TableDefinition::new("deleted");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const USAGE: TableDefinition<(u64, i64), (u64, u64)> = TableDefinition::new("usage");
const ERASED: TableDefinition<u64, u64> = TableDefinition::new("erased");

const SEGMENT_META_VERSION: u8 = 1;

pub struct Catalog {
    /// `None` once closed, so the directory can be opened again while handles linger.
    db: parking_lot::RwLock<Option<Database>>,
}

/// Everything the catalog holds, read once at open.
pub struct CatalogState {
    pub segments: Vec<SegmentMeta>,
    pub sealed: HashMap<ProjectId, u64>,
    pub deleted: HashSet<ProjectId>,
    pub next_segment_id: u64,
    pub max_seq: u64,
    /// Daily usage of the sealed rows.
    pub usage: Vec<((ProjectId, i64), DayUsage)>,
}

fn encode_meta(m: &SegmentMeta) -> Vec<u8> {
    let mut v = vec![SEGMENT_META_VERSION];
    for x in [
        m.min_ts as u64,
        m.max_ts as u64,
        m.min_seq,
        m.max_seq,
        m.rows,
        m.bytes,
        m.raw_bytes,
    ] {
        v.extend_from_slice(&x.to_le_bytes());
    }
    v
}

fn decode_meta(project: u64, id: u64, b: &[u8]) -> Result<SegmentMeta> {
    let bad = |what: &'static str| EngineError::CatalogRecord { segment: id, what };
    let mut r = Reader::new(b);
    if r.u8().map_err(|e| bad(e.what))? != SEGMENT_META_VERSION {
        return Err(bad("unknown segment record version"));
    }
    let mut f = [0u64; 7];
    for x in f.iter_mut() {
        *x = r.u64().map_err(|e| bad(e.what))?;
    }
    Ok(SegmentMeta {
        project,
        id,
        min_ts: f[0] as i64,
        max_ts: f[1] as i64,
        min_seq: f[2],
        max_seq: f[3],
        rows: f[4],
        bytes: f[5],
        raw_bytes: f[6],
    })
}

/// Copies one table, row by row, between two databases (a table the source lacks is skipped).
pub fn copy_table<K: redb::Key + 'static, V: redb::Value + 'static>(
    from: &ReadTransaction,
    to: &WriteTransaction,
    def: TableDefinition<K, V>,
) -> Result<()> {
    let src = match from.open_table(def) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let mut dst = to.open_table(def)?;
    for row in src.iter()? {
        let (k, v) = row?;
        dst.insert(k.value(), v.value())?;
    }
    Ok(())
}

/// Creates any table the catalog lacks (all of them, in a new file).
fn ensure_tables(db: &Database) -> Result<()> {
    let tx = db.begin_write()?;
    {
        tx.open_table(SEGMENTS)?;
        tx.open_table(SEALED)?;
        tx.open_table(DELETED)?;
        tx.open_table(META)?;
        tx.open_table(USAGE)?;
    }
    tx.commit()?;
    Ok(())
}

/// Creates an empty catalog beside its final name, then renames it into place, so a crash
/// while redb lays out a new file never leaves a half-made catalog behind.
fn create(fs: &dyn FileSystem, path: &Path) -> Result<()> {
    let tmp = path.with_extension("redb.tmp");
    let _ = fs.remove_file(&tmp);
    {
        let db = if fs.is_real() {
            Database::create(&tmp)?
        } else {
            let f = fs.create_new(&tmp).map_err(|e| EngineError::io(&tmp, e))?;
            Database::builder().create_with_backend(RedbBackend(f))?
        };
        ensure_tables(&db)?;
    }
    fs.rename(&tmp, path)
        .map_err(|e| EngineError::io(path, e))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    fs.sync_dir(dir).map_err(|e| EngineError::io(dir, e))
}

impl Catalog {
    /// Opens or creates the catalog. On the real disk redb manages the file itself (and
    /// locks it against a second process); on any other file system it writes through the
    /// seam.
    pub fn open(fs: &dyn FileSystem, path: &Path) -> Result<Catalog> {
        if !fs.exists(path) {
            create(fs, path)?;
        }
        let db = if fs.is_real() {
            let db = Database::create(path)?;
            // redb creates the file with the default mode; the catalog is private like the rest.
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| EngineError::io(path, e))?;
            db
        } else {
            let file = fs.open(path).map_err(|e| EngineError::io(path, e))?;
            Database::builder().create_with_backend(RedbBackend(file))?
        };
        ensure_tables(&db)?;
        Ok(Catalog {
            db: parking_lot::RwLock::new(Some(db)),
        })
    }

    /// Releases the database file; later calls fail with [`EngineError::Closed`].
    pub fn close(&self) {
        self.db.write().take();
    }

    fn with_db<T>(&self, f: impl FnOnce(&Database) -> Result<T>) -> Result<T> {
        let g = self.db.read();
        f(g.as_ref().ok_or(EngineError::Closed)?)
    }

    /// Swaps the catalog for the copy at `next` (moved to `path`, this catalog's file): a
    /// read-only node adopting the catalog another node published.
    pub fn replace_with(&self, next: &Path, path: &Path) -> Result<()> {
        let mut g = self.db.write();
        if g.is_none() {
            return Err(EngineError::Closed);
        }
        g.take();
        std::fs::rename(next, path).map_err(|e| EngineError::io(path, e))?;
        *g = Some(Database::create(path)?);
        Ok(())
    }

    /// Opens an existing catalog without creating one (for offline tools).
    pub fn open_existing(path: &Path) -> Result<Catalog> {
        Ok(Catalog {
            db: parking_lot::RwLock::new(Some(Database::open(path)?)),
        })
    }

    pub fn load(&self) -> Result<CatalogState> {
        self.with_db(|db| {
            let tx = db.begin_read()?;
            let mut segments = Vec::new();
            for row in tx.open_table(SEGMENTS)?.iter()? {
                let (k, v) = row?;
                let (project, id) = k.value();
                segments.push(decode_meta(project, id, v.value())?);
            }
            let mut sealed = HashMap::new();
            for row in tx.open_table(SEALED)?.iter()? {
                let (k, v) = row?;
                sealed.insert(k.value(), v.value());
            }
            let mut deleted = HashSet::new();
            for row in tx.open_table(DELETED)?.iter()? {
                deleted.insert(row?.0.value());
            }
            let mut usage = Vec::new();
            // A catalog written before usage lived here has no such table (offline tools
            // open it read-only, so it is not created for them).
            match tx.open_table(USAGE) {
                Ok(t) => {
                    for row in t.iter()? {
                        let (k, v) = row?;
                        let (logs, bytes) = v.value();
                        usage.push((k.value(), DayUsage { logs, bytes }));
                    }
                }
                Err(redb::TableError::TableDoesNotExist(_)) => {}
                Err(e) => return Err(e.into()),
            }
            let meta = tx.open_table(META)?;
            let get = |k: &str| -> Result<u64> { Ok(meta.get(k)?.map_or(0, |v| v.value())) };
            Ok(CatalogState {
                segments,
                sealed,
                deleted,
                next_segment_id: get("next_segment_id")?.max(1),
                max_seq: get("max_seq")?,
                usage,
            })
        })
    }

    /// Writes a copy of the whole catalog to a new file at `dest`, from one read transaction,
    /// and returns the segments that copy lists. A bucket publishes the copy with exactly
    /// those segments, so a node rebuilt from it opens a catalog whose files all exist.
    pub fn snapshot_to(&self, dest: &Path) -> Result<Vec<SegmentMeta>> {
        self.with_db(|db| {
            let rtx = db.begin_read()?;
            let _ = std::fs::remove_file(dest);
            let copy = Database::create(dest)?;
            let wtx = copy.begin_write()?;
            copy_table(&rtx, &wtx, SEGMENTS)?;
            copy_table(&rtx, &wtx, SEALED)?;
            copy_table(&rtx, &wtx, DELETED)?;
            copy_table(&rtx, &wtx, META)?;
            copy_table(&rtx, &wtx, USAGE)?;
            copy_table(&rtx, &wtx, ERASED)?;
            wtx.commit()?;
            let mut segments = Vec::new();
            for row in rtx.open_table(SEGMENTS)?.iter()? {
                let (k, v) = row?;
                let (project, id) = k.value();
                segments.push(decode_meta(project, id, v.value())?);
            }
            Ok(segments)
        })
    }

    /// Records a sealed segment, how far its project is sealed and the daily usage of its
    /// rows, in one transaction (so replay counts exactly the usage this does not hold).
    pub fn add_segment(&self, m: &SegmentMeta, sealed_through: u64, usage: &DayMap) -> Result<()> {
        self.with_db(|db| {
            let tx = db.begin_write()?;
            {
                let mut t = tx.open_table(USAGE)?;
                for (day, u) in usage {
                    let (logs, bytes) = t.get((m.project, *day))?.map_or((0, 0), |v| v.value());
                    t.insert((m.project, *day), (logs + u.logs, bytes + u.bytes))?;
                }
            }
            {
                tx.open_table(SEGMENTS)?
                    .insert((m.project, m.id), encode_meta(m).as_slice())?;
                let mut sealed = tx.open_table(SEALED)?;
                let prev = sealed.get(m.project)?.map_or(0, |v| v.value());
                sealed.insert(m.project, prev.max(sealed_through))?;
                let mut meta = tx.open_table(META)?;
                let next = meta.get("next_segment_id")?.map_or(0, |v| v.value());
                meta.insert("next_segment_id", next.max(m.id + 1))?;
                let max = meta.get("max_seq")?.map_or(0, |v| v.value());
                meta.insert("max_seq", max.max(sealed_through))?;
            }
            tx.commit()?;
            Ok(())
        })
    }

    /// Forgets segments (retention). The files are deleted after this commits.
    pub fn remove_segments(&self, project: ProjectId, ids: &[u64]) -> Result<()> {
        self.with_db(|db| {
            let tx = db.begin_write()?;
            {
                let mut t = tx.open_table(SEGMENTS)?;
                for id in ids {
                    t.remove((project, *id))?;
                }
            }
            tx.commit()?;
            Ok(())
        })
    }

    /// Swaps a segment for its rewrite without some of its logs (a deletion), in one
    /// transaction: the old segment goes, the new one (if any log is left) comes, the
    /// removed logs leave the daily usage, and the deletion's count grows by `removed`.
    pub fn replace_segment(
        &self,
        project: ProjectId,
        old: u64,
        new: Option<&SegmentMeta>,
        usage_out: &DayMap,
        deletion: u64,
        removed: u64,
    ) -> Result<()> {
        self.with_db(|db| {
            let tx = db.begin_write()?;
            {
                let mut t = tx.open_table(SEGMENTS)?;
                t.remove((project, old))?;
                if let Some(m) = new {
                    t.insert((m.project, m.id), encode_meta(m).as_slice())?;
                    let mut meta = tx.open_table(META)?;
                    let next = meta.get("next_segment_id")?.map_or(0, |v| v.value());
                    meta.insert("next_segment_id", next.max(m.id + 1))?;
                }
                let mut usage = tx.open_table(USAGE)?;
                for (day, u) in usage_out {
                    let (logs, bytes) = usage.get((project, *day))?.map_or((0, 0), |v| v.value());
                    usage.insert(
                        (project, *day),
                        (logs.saturating_sub(u.logs), bytes.saturating_sub(u.bytes)),
                    )?;
                }
                let mut erased = tx.open_table(ERASED)?;
                let before = erased.get(deletion)?.map_or(0, |v| v.value());
                erased.insert(deletion, before + removed)?;
            }
            tx.commit()?;
            Ok(())
        })
    }

    /// Logs a deletion removed so far (0 for one never seen).
    pub fn erased(&self, deletion: u64) -> Result<u64> {
        self.with_db(|db| {
            let rtx = db.begin_read()?;
            match rtx.open_table(ERASED) {
                Ok(t) => Ok(t.get(deletion)?.map_or(0, |v| v.value())),
                Err(redb::TableError::TableDoesNotExist(_)) => Ok(0),
                Err(e) => Err(e.into()),
            }
        })
    }

    /// Marks a project deleted and forgets its segments.
    pub fn delete_project(&self, project: ProjectId, at: i64, max_seq: u64) -> Result<()> {
        self.with_db(|db| {
            let tx = db.begin_write()?;
            {
                let mut t = tx.open_table(SEGMENTS)?;
                let ids: Vec<u64> = t
                    .range((project, 0)..=(project, u64::MAX))?
                    .map(|r| r.map(|(k, _)| k.value().1))
                    .collect::<std::result::Result<_, _>>()?;
                for id in ids {
                    t.remove((project, id))?;
                }
                tx.open_table(SEALED)?.remove(project)?;
                let mut usage = tx.open_table(USAGE)?;
                let days: Vec<i64> = usage
                    .range((project, i64::MIN)..=(project, i64::MAX))?
                    .map(|r| r.map(|(k, _)| k.value().1))
                    .collect::<std::result::Result<_, _>>()?;
                for d in days {
                    usage.remove((project, d))?;
                }
                tx.open_table(DELETED)?.insert(project, at as u64)?;
                let mut meta = tx.open_table(META)?;
                let max = meta.get("max_seq")?.map_or(0, |v| v.value());
                meta.insert("max_seq", max.max(max_seq))?;
            }
            tx.commit()?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_state_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("catalog.redb");
        let m = SegmentMeta {
            project: 4,
            id: 9,
            min_ts: -3,
            max_ts: 77,
            min_seq: 10,
            max_seq: 20,
            rows: 11,
            bytes: 999,
            raw_bytes: 5000,
        };
        {
            let c = Catalog::open(&crate::fs::RealFs, &p).unwrap();
            let usage = |logs| DayMap::from([(20_000, DayUsage { logs, bytes: 7 })]);
            c.add_segment(&m, 20, &usage(3)).unwrap();
            c.add_segment(&m, 20, &usage(4)).unwrap();
            c.add_segment(
                &SegmentMeta {
                    project: 5,
                    id: 10,
                    ..m.clone()
                },
                30,
                &usage(1),
            )
            .unwrap();
            c.delete_project(5, 1, 31).unwrap();
        }
        let c = Catalog::open(&crate::fs::RealFs, &p).unwrap();
        let s = c.load().unwrap();
        assert_eq!(s.segments, vec![m]);
        assert_eq!(s.sealed.get(&4), Some(&20));
        assert!(s.deleted.contains(&5));
        assert_eq!(s.next_segment_id, 11);
        assert_eq!(s.max_seq, 31);
        assert_eq!(
            s.usage,
            vec![((4, 20_000), DayUsage { logs: 7, bytes: 14 })],
            "usage adds up per seal and goes with its project"
        );
    }
}
