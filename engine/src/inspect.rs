//! Offline reading of a data directory, for `ledgerctl`: what is there, and whether every
//! checksum holds. Uses the engine's own decoders; changes nothing on disk.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::catalog::Catalog;
use crate::error::{EngineError, Result};
use crate::fs::{FileSystem, RealFs};
pub use crate::search::index::space::{FieldSpace, IndexSpace};
use crate::segment::{SegmentMeta, SegmentReader};
use crate::wal::{self, format};

/// One WAL file as found.
#[derive(Debug, Clone)]
pub struct WalFileInfo {
    pub path: PathBuf,
    pub bytes: u64,
    pub records: usize,
    pub rows: u64,
    pub damage: Option<format::Damage>,
}

/// What a data directory holds.
#[derive(Debug, Clone, Default)]
pub struct DirInfo {
    pub segments: Vec<SegmentMeta>,
    pub wal: Vec<WalFileInfo>,
}

/// A problem `verify` found, naming the file and the byte offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: PathBuf,
    pub offset: u64,
    pub what: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: byte {}: {}",
            self.path.display(),
            self.offset,
            self.what
        )
    }
}

#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    pub wal_files: usize,
    pub wal_records: usize,
    pub segments: usize,
    pub segment_rows: u64,
    /// Damage: acknowledged data that cannot be read back as written.
    pub problems: Vec<Problem>,
    /// Things that are fine but worth saying, e.g. a torn WAL tail the next open will cut.
    pub notes: Vec<String>,
}

fn require_dir(fs: &dyn FileSystem, dir: &Path) -> Result<()> {
    if !fs.exists(&dir.join("catalog.redb")) {
        return Err(EngineError::io(
            dir,
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "not a Ledger data directory (no catalog.redb)",
            ),
        ));
    }
    Ok(())
}

fn catalog_segments(fs: &dyn FileSystem, dir: &Path) -> Result<Vec<SegmentMeta>> {
    let db = dir.join("catalog.redb");
    let c = if fs.is_real() {
        Catalog::open_existing(&db)?
    } else {
        Catalog::open(fs, &db)?
    };
    Ok(c.load()?.segments)
}

/// Path of a segment in a data directory.
pub fn segment_path(dir: &Path, m: &SegmentMeta) -> PathBuf {
    dir.join("segments")
        .join(crate::project_dir(m.project))
        .join(crate::segment::file_name(m.id))
}

fn wal_file_info(path: &Path) -> Result<WalFileInfo> {
    let (buf, scan) = wal::scan_path(&RealFs, path)?;
    let mut rows = 0;
    for (_, r) in &scan.frames {
        if let Ok((_, _, n)) = format::peek_batch(&buf[r.clone()]) {
            rows += u64::from(n);
        }
    }
    Ok(WalFileInfo {
        path: path.to_owned(),
        bytes: buf.len() as u64,
        records: scan.frames.len(),
        rows,
        damage: scan.damage,
    })
}

/// Lists segments (from the catalog) and WAL files with their sizes.
pub fn inspect_dir(dir: &Path) -> Result<DirInfo> {
    require_dir(&RealFs, dir)?;
    let mut info = DirInfo {
        segments: catalog_segments(&RealFs, dir)?,
        ..Default::default()
    };
    for (_, path) in wal::list_files(&RealFs, &dir.join("wal"))? {
        info.wal.push(wal_file_info(&path)?);
    }
    Ok(info)
}

/// Where the search index's bytes go, field by field; `None` when the directory has no index
/// (search off).
pub fn index_space(dir: &Path) -> Result<Option<IndexSpace>> {
    require_dir(&RealFs, dir)?;
    let index = dir.join("index");
    if !index.join("meta.json").exists() {
        return Ok(None);
    }
    crate::search::index::space::index_space(&index).map(Some)
}

/// Checks every checksum in a data directory: each WAL frame and batch, each segment's
/// header, index and blocks, and that the catalog and the segment files agree.
pub fn verify_dir(dir: &Path) -> Result<VerifyReport> {
    verify_dir_in(&RealFs, dir)
}

/// [`verify_dir`] on any file system (tests check a crashed [`crate::fs::FaultFs`]).
pub fn verify_dir_in(fs: &dyn FileSystem, dir: &Path) -> Result<VerifyReport> {
    require_dir(fs, dir)?;
    let mut rep = VerifyReport::default();
    let files = wal::list_files(fs, &dir.join("wal"))?;
    let count = files.len();
    for (i, (_, path)) in files.into_iter().enumerate() {
        rep.wal_files += 1;
        let (buf, scan) = match wal::scan_path(fs, &path) {
            Ok(x) => x,
            Err(EngineError::Corrupt { path, offset, what }) => {
                rep.problems.push(Problem { path, offset, what });
                continue;
            }
            Err(e) => return Err(e),
        };
        for (off, r) in &scan.frames {
            rep.wal_records += 1;
            if let Err(e) = format::decode_batch(&buf[r.clone()]) {
                rep.problems.push(Problem {
                    path: path.clone(),
                    offset: off + format::FRAME_HEADER_LEN as u64 + e.offset as u64,
                    what: e.what.to_string(),
                });
            }
        }
        if let Some(d) = scan.damage {
            if i + 1 == count && d.tail_only {
                rep.notes.push(format!(
                    "{}: torn tail at byte {} ({} bytes of a write never acknowledged); the next open cuts it",
                    path.display(),
                    d.offset,
                    buf.len() as u64 - d.offset
                ));
            } else {
                rep.problems.push(Problem {
                    path: path.clone(),
                    offset: d.offset,
                    what: d.what,
                });
            }
        }
    }
    let mut known = HashSet::new();
    for m in catalog_segments(fs, dir)? {
        let path = segment_path(dir, &m);
        known.insert(path.clone());
        rep.segments += 1;
        match SegmentReader::open(fs, &path).and_then(|s| s.verify()) {
            Ok(rows) => rep.segment_rows += rows,
            Err(EngineError::Corrupt { path, offset, what }) => {
                rep.problems.push(Problem { path, offset, what })
            }
            Err(e) => rep.problems.push(Problem {
                path: path.clone(),
                offset: 0,
                what: e.to_string(),
            }),
        }
    }
    for (pd, _) in fs.list_dir(&dir.join("segments")).unwrap_or_default() {
        for (f, _) in fs.list_dir(&pd).unwrap_or_default() {
            if !known.contains(&f) {
                rep.notes.push(format!(
                    "{}: not in the catalog (a seal interrupted by a crash); the next open removes it",
                    f.display()
                ));
            }
        }
    }
    Ok(rep)
}
