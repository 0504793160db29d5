//! The write-ahead log: one append-only log for the whole node.
//!
//! * `format` — the bytes of files, frames and batch records;
//! * `writer` — the single writer thread and its group commit;
//! * `remover` — deleting checkpointed files off the writer thread, in steps;
//! * `replay` (here) — reading the log back at start, with the recovery policy applied.

pub mod format;
mod remover;
pub mod writer;

use std::path::{Path, PathBuf};

use crate::config::RecoveryMode;
use crate::error::{EngineError, Result};
use crate::fs::FileSystem;
use format::{Batch, FileScan};

pub use writer::{Applier, Wal, WalStats};

/// The name of WAL file number `n`.
pub fn file_name(n: u64) -> String {
    format!("{n:016x}.wal")
}

/// WAL files in `dir`, sorted by number.
pub fn list_files(fs: &dyn FileSystem, dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    let entries = match fs.list_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(EngineError::io(dir, e)),
    };
    for (path, is_dir) in entries {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        if let Some(stem) = name.as_deref().and_then(|n| n.strip_suffix(".wal")) {
            if let (Ok(n), false) = (u64::from_str_radix(stem, 16), is_dir) {
                out.push((n, path.clone()));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// What replay found and did; logged at start and returned to the caller.
#[derive(Debug, Default, Clone)]
pub struct RecoveryReport {
    pub wal_files: usize,
    pub wal_bytes: u64,
    pub batches_replayed: u64,
    pub rows_replayed: u64,
    /// Batches already sealed into segments (or of deleted projects) and so skipped.
    pub batches_skipped: u64,
    /// Damage that was cut off, as `(file, offset, bytes dropped, what)`.
    pub cut: Vec<(PathBuf, u64, u64, String)>,
}

/// What the writer needs to continue after replay.
pub struct Replayed {
    pub next_seq: u64,
    pub next_file_no: u64,
    /// Closed files and the highest sequence number each holds (0 when empty).
    pub files: Vec<(u64, u64)>,
    pub report: RecoveryReport,
}

/// Reads and checks one WAL file; the error names the file and offset.
pub fn scan_path(fs: &dyn FileSystem, path: &Path) -> Result<(Vec<u8>, FileScan)> {
    let buf = fs.read(path).map_err(|e| EngineError::io(path, e))?;
    let scan =
        format::scan_file(&buf).map_err(|e| EngineError::corrupt(path, e.offset as u64, e.what))?;
    Ok((buf, scan))
}

/// Replays every WAL file in `dir` in order, calling `on_batch` for each whole batch, and
/// applies `mode` to damage. A torn tail is truncated on disk so the next open is clean.
pub fn replay(
    fs: &dyn FileSystem,
    dir: &Path,
    mode: RecoveryMode,
    mut on_batch: impl FnMut(Batch) -> Result<bool>,
) -> Result<Replayed> {
    remover::remove_leftovers(fs, dir).map_err(|e| EngineError::io(dir, e))?;
    let files = list_files(fs, dir)?;
    let mut report = RecoveryReport {
        wal_files: files.len(),
        ..Default::default()
    };
    let mut next_seq = 1;
    let mut closed = Vec::new();
    let mut next_file_no = 1;
    let count = files.len();
    for (i, (no, path)) in files.into_iter().enumerate() {
        let is_last = i + 1 == count;
        next_file_no = next_file_no.max(no + 1);
        let (buf, scan) = match scan_path(fs, &path) {
            Ok(x) => x,
            // A crash while a new file was being created leaves it without a whole header.
            Err(EngineError::Corrupt { offset, what, .. })
                if is_last && mode != RecoveryMode::AbsoluteConsistency && offset < 24 =>
            {
                let len = fs.read(&path).map(|b| b.len() as u64).unwrap_or(0);
                fs.remove_file(&path)
                    .map_err(|e| EngineError::io(&path, e))?;
                fs.sync_dir(dir).map_err(|e| EngineError::io(dir, e))?;
                report.cut.push((path, 0, len, what));
                continue;
            }
            Err(e) => return Err(e),
        };
        report.wal_bytes += buf.len() as u64;
        if scan.file_no != no {
            return Err(EngineError::corrupt(
                &path,
                format::FILE_NO_OFFSET as u64,
                format!("header says file {} but the name says {no}", scan.file_no),
            ));
        }
        let mut max_seq = 0;
        for (off, range) in &scan.frames {
            let batch = format::decode_batch(&buf[range.clone()])
                .map_err(|e| EngineError::corrupt(&path, *off + 8 + e.offset as u64, e.what))?;
            max_seq = max_seq.max(batch.last_seq());
            next_seq = next_seq.max(batch.last_seq() + 1);
            let rows = batch.records.len() as u64;
            if on_batch(batch)? {
                report.batches_replayed += 1;
                report.rows_replayed += rows;
            } else {
                report.batches_skipped += 1;
            }
        }
        if let Some(d) = scan.damage {
            let tolerated = match mode {
                RecoveryMode::AbsoluteConsistency => false,
                RecoveryMode::TolerateTailCorruption => is_last && d.tail_only,
                RecoveryMode::TolerateAnyCorruption => true,
            };
            if !tolerated {
                return Err(EngineError::corrupt(&path, d.offset, d.what));
            }
            let dropped = buf.len() as u64 - d.offset;
            truncate(fs, &path, d.offset)?;
            report.cut.push((path.clone(), d.offset, dropped, d.what));
        }
        closed.push((no, max_seq));
    }
    Ok(Replayed {
        next_seq,
        next_file_no,
        files: closed,
        report,
    })
}

fn truncate(fs: &dyn FileSystem, path: &Path, len: u64) -> Result<()> {
    let f = fs.open(path).map_err(|e| EngineError::io(path, e))?;
    f.set_len(len)
        .and_then(|_| f.sync_data())
        .map_err(|e| EngineError::io(path, e))
}
