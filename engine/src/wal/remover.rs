//! Removing checkpointed WAL files, off the writer thread and in steps.
//!
//! Unlinking a 64 MiB WAL file took 60–75 ms on this project's ext4 disk: freeing its extents
//! holds the journal, so every `fdatasync` that needs a journal commit waits for it. On the
//! writer thread that held every waiting append for as long (the largest stalls after a batch
//! flood, `strace` of `benches/http/flood.sh`); on any thread, one big unlink still stalls the
//! writer's next fsync. So the remover thread renames a large file out of the WAL's names
//! (`…wal` → `…wal.del`, which replay does not read), cuts it down [`STEP`] bytes at a time,
//! each cut synced, and unlinks what is left: each journal commit frees a few MiB, not 64.
//!
//! A crash part-way leaves a `.wal.del` file, which [`remove_leftovers`] deletes at the next
//! open. Its rows were all sealed (that is what made the file removable), so nothing is lost.
//! [`Remover::barrier`] answers only after every removal queued before it, so a caller that
//! must know the WAL no longer holds some bytes (a deletion) waits for the files to be gone.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};

use super::WalStats;
use crate::error::Result;
use crate::fs::FileSystem;

/// Bytes cut from a file per step: one step's unlink-sized stall measured 7–11 ms here,
/// against 60–75 ms for a whole 64 MiB file.
pub const STEP: u64 = 4 << 20;

/// The extension a large file takes while it is cut down (`<n>.wal` → `<n>.wal.del`).
const GOING: &str = "wal.del";
/// The same, as the end of a file name.
const GOING_SUFFIX: &str = ".wal.del";

enum Msg {
    Files(Vec<PathBuf>),
    /// Answers `result` once the files queued before it are removed.
    Barrier(Sender<Result<()>>, Result<()>),
}

/// Handle to the remover thread; dropping it finishes the queued removals and stops it.
pub struct Remover {
    tx: Option<Sender<Msg>>,
    thread: Option<JoinHandle<()>>,
}

impl Remover {
    pub fn start(
        fs: Arc<dyn FileSystem>,
        dir: PathBuf,
        stats: Arc<WalStats>,
    ) -> std::io::Result<Remover> {
        let (tx, rx) = crossbeam_channel::unbounded();
        let thread = std::thread::Builder::new()
            .name("ledger-wal-remove".into())
            .spawn(move || run(&*fs, &dir, &stats, rx))?;
        Ok(Remover {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    /// Queues closed, checkpointed files for removal.
    pub fn remove(&self, files: Vec<PathBuf>) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(Msg::Files(files));
        }
    }

    /// Sends `result` to `reply` once every file queued so far is removed.
    pub fn barrier(&self, reply: Sender<Result<()>>, result: Result<()>) {
        match &self.tx {
            Some(tx) => {
                if let Err(crossbeam_channel::SendError(Msg::Barrier(reply, result))) =
                    tx.send(Msg::Barrier(reply, result))
                {
                    let _ = reply.send(result);
                }
            }
            None => {
                let _ = reply.send(result);
            }
        }
    }
}

impl Drop for Remover {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(fs: &dyn FileSystem, dir: &Path, stats: &WalStats, rx: Receiver<Msg>) {
    for m in rx {
        match m {
            Msg::Files(files) => {
                for path in files {
                    match remove_in_steps(fs, dir, &path) {
                        Ok(()) => {
                            stats.files_deleted.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => {
                            tracing::warn!(file = %path.display(), error = %e, "could not delete a checkpointed WAL file")
                        }
                    }
                }
                let _ = crate::fs::sync_dir_in(fs, dir);
            }
            Msg::Barrier(reply, result) => {
                let _ = reply.send(result);
            }
        }
    }
}

/// Removes one file; one larger than [`STEP`] is renamed aside and cut down first.
fn remove_in_steps(fs: &dyn FileSystem, dir: &Path, path: &Path) -> std::io::Result<()> {
    // One handle for the size and the cuts: it stays the same file across the rename.
    let f = fs.open(path)?;
    let size = f.size()?;
    if size <= STEP {
        drop(f);
        return fs.remove_file(path);
    }
    let going = path.with_extension(GOING);
    fs.rename(path, &going)?;
    // Durable before the first cut: a crash must never leave a cut file under a WAL name.
    fs.sync_dir(dir)?;
    let mut len = size;
    while len > STEP {
        len -= STEP;
        f.set_len(len)?;
        f.sync_data()?;
    }
    drop(f);
    fs.remove_file(&going)
}

/// Deletes the `.wal.del` files a crash left part-way through their removal.
pub fn remove_leftovers(fs: &dyn FileSystem, dir: &Path) -> std::io::Result<()> {
    let entries = match fs.list_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let mut removed = false;
    for (path, is_dir) in entries {
        let going = path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().ends_with(GOING_SUFFIX));
        if going && !is_dir {
            fs.remove_file(&path)?;
            removed = true;
        }
    }
    if removed {
        fs.sync_dir(dir)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::{FaultFs, Faults};

    /// An empty file system with the WAL directory in it.
    fn wal_dir() -> (FaultFs, &'static Path) {
        let fs = FaultFs::new(Faults::default());
        let dir = Path::new("/wal");
        fs.create_dir_all(dir).unwrap();
        (fs, dir)
    }

    fn file(fs: &FaultFs, path: &Path, len: usize) {
        let f = fs.create_new(path).unwrap();
        f.append(&vec![7u8; len]).unwrap();
        f.sync_data().unwrap();
    }

    #[test]
    fn small_and_large_files_are_removed_and_counted() {
        let (fs, dir) = wal_dir();
        let small = dir.join("0000000000000001.wal");
        let large = dir.join("0000000000000002.wal");
        file(&fs, &small, 100);
        file(&fs, &large, (STEP * 2 + 5) as usize);
        let stats = Arc::new(WalStats::default());
        let r = Remover::start(Arc::new(fs.clone()), dir.into(), stats.clone()).unwrap();
        let before = fs.fsyncs();
        r.remove(vec![small.clone(), large.clone()]);
        let (tx, rx) = crossbeam_channel::bounded(1);
        r.barrier(tx, Ok(()));
        rx.recv().unwrap().unwrap();
        // The barrier answered after both were gone.
        assert!(!fs.exists(&small) && !fs.exists(&large));
        assert!(!fs.exists(&large.with_extension(GOING)));
        assert_eq!(stats.files_deleted.load(Ordering::Relaxed), 2);
        // The large one was cut twice (each synced) before its unlink; the small one not.
        assert_eq!(fs.fsyncs() - before, 2);
    }

    #[test]
    fn a_crash_mid_cut_leaves_no_wal_file_and_open_clears_the_rest() {
        let (fs, dir) = wal_dir();
        let large = dir.join("0000000000000003.wal");
        file(&fs, &large, (STEP * 3) as usize);
        fs.sync_dir(dir).unwrap();
        // Crash at the second cut: the rename and the first cut happened.
        fs.set_faults(Faults {
            crash_at_write: Some(fs.writes() + 3),
            ..Faults::default()
        });
        assert!(remove_in_steps(&fs, dir, &large).is_err());
        let fs = fs.reboot(1);
        assert!(
            !fs.exists(&large),
            "a cut file must never keep its WAL name"
        );
        let going = large.with_extension(GOING);
        assert!(fs.exists(&going));
        assert!(super::super::list_files(&fs, dir).unwrap().is_empty());
        // The next open's replay clears it.
        let replayed = super::super::replay(
            &fs,
            dir,
            crate::config::RecoveryMode::TolerateTailCorruption,
            |_| Ok(true),
        )
        .unwrap();
        assert!(replayed.files.is_empty());
        assert!(!fs.exists(&going));
    }
}
