//! [`FaultFs`]: a file system in memory that injects short writes, failed fsyncs, a full
//! disk, read errors and crashes at any numbered write. Built for tests and fuzzing only
//! (`cfg(test)` or the `testing` feature); it is not in the release library.

use std::collections::{HashMap, HashSet};
use std::fmt::Debug;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use super::{DataFile, FileSystem};

/// What a [`FaultFs`] is told to do wrong.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// The write (counting every write, append and truncate from 1) at which the machine
    /// "crashes": that write and everything after it fail, until [`FaultFs::reboot`].
    pub crash_at_write: Option<u64>,
    /// The fsync (counting from 1) that fails with EIO.
    pub fail_fsync: Option<u64>,
    /// Writes that would grow the files' total size past this fail with ENOSPC.
    pub space_bytes: Option<u64>,
    /// The write (counting from 1) that writes only half its bytes, then fails with EIO.
    pub short_write_at: Option<u64>,
    /// Reads of paths containing this text fail with EIO.
    pub eio_reading: Option<String>,
}

#[derive(Debug, Default)]
struct Node {
    /// What a reader sees now.
    data: Vec<u8>,
    /// What survives a crash.
    synced: Vec<u8>,
    /// Only ever appended to (a WAL or segment file), so a crash may keep any prefix of the
    /// unsynced tail; files written in place or resized (redb's) keep only what was synced.
    rewritten: bool,
}

#[derive(Debug, Default)]
struct State {
    /// Names as a process sees them now.
    files: HashMap<PathBuf, Arc<Mutex<Node>>>,
    /// Names as they survive a crash (updated when their directory is synced).
    durable: HashMap<PathBuf, Arc<Mutex<Node>>>,
    dirs: HashSet<PathBuf>,
    writes: u64,
    fsyncs: u64,
    crashed: bool,
    faults: Faults,
}

/// An in-memory file system that keeps two images — what was written and what was synced —
/// and injects faults. A simulated crash ([`FaultFs::reboot`]) keeps only what was synced
/// (plus, for files only ever appended to, a random prefix of what was not, as the kernel may
/// have written some of it back).
#[derive(Debug, Clone, Default)]
pub struct FaultFs {
    state: Arc<Mutex<State>>,
}

#[derive(Debug)]
struct FaultFile {
    fs: FaultFs,
    path: PathBuf,
    node: Arc<Mutex<Node>>,
}

fn usage(st: &State) -> u64 {
    st.files.values().map(|n| n.lock().data.len() as u64).sum()
}

fn eio(what: &str) -> io::Error {
    io::Error::other(what.to_string())
}

impl FaultFs {
    pub fn new(faults: Faults) -> FaultFs {
        let fs = FaultFs::default();
        fs.state.lock().faults = faults;
        fs
    }

    /// Changes the faults from now on (e.g. to let space return).
    pub fn set_faults(&self, faults: Faults) {
        self.state.lock().faults = faults;
    }

    /// Writes counted so far (to size a crash-point sweep).
    pub fn writes(&self) -> u64 {
        self.state.lock().writes
    }

    /// Fsyncs counted so far (to aim [`Faults::fail_fsync`] at a later one).
    pub fn fsyncs(&self) -> u64 {
        self.state.lock().fsyncs
    }

    /// Total size of the files now (what a full disk is measured against).
    pub fn usage(&self) -> u64 {
        usage(&self.state.lock())
    }

    /// True once the simulated crash has happened.
    pub fn crashed(&self) -> bool {
        self.state.lock().crashed
    }

    /// The file system as it is after a crash and restart: durable names, synced bytes,
    /// and for append-only growth a `seed`-chosen prefix of the unsynced tail.
    pub fn reboot(&self, seed: u64) -> FaultFs {
        let st = self.state.lock();
        let mut rng = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let mut files = HashMap::new();
        let mut copies: HashMap<*const Mutex<Node>, Arc<Mutex<Node>>> = HashMap::new();
        for (p, n) in &st.durable {
            let key = Arc::as_ptr(n);
            let copy = copies
                .entry(key)
                .or_insert_with(|| {
                    let g = n.lock();
                    let mut data = g.synced.clone();
                    if !g.rewritten
                        && g.data.len() > g.synced.len()
                        && g.data.starts_with(&g.synced)
                    {
                        let extra = g.data.len() - g.synced.len();
                        let keep = (next() % (extra as u64 + 1)) as usize;
                        data.extend_from_slice(&g.data[g.synced.len()..g.synced.len() + keep]);
                    }
                    Arc::new(Mutex::new(Node {
                        synced: data.clone(),
                        data,
                        rewritten: g.rewritten,
                    }))
                })
                .clone();
            files.insert(p.clone(), copy);
        }
        FaultFs {
            state: Arc::new(Mutex::new(State {
                durable: files.clone(),
                files,
                dirs: st.dirs.clone(),
                ..Default::default()
            })),
        }
    }

    /// Counts a write and applies the faults; returns how many bytes it may write.
    fn admit_write(&self, len: usize) -> io::Result<usize> {
        let mut st = self.state.lock();
        if st.crashed {
            return Err(eio("simulated crash"));
        }
        st.writes += 1;
        if st.faults.crash_at_write == Some(st.writes) {
            st.crashed = true;
            return Err(eio("simulated crash"));
        }
        if let Some(space) = st.faults.space_bytes {
            if usage(&st) + len as u64 > space {
                return Err(io::Error::from_raw_os_error(libc::ENOSPC));
            }
        }
        if st.faults.short_write_at == Some(st.writes) {
            return Ok(len / 2);
        }
        Ok(len)
    }

    fn check_alive(&self) -> io::Result<()> {
        if self.state.lock().crashed {
            return Err(eio("simulated crash"));
        }
        Ok(())
    }
}

impl DataFile for FaultFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.fs.check_read(&self.path)?;
        let n = self.node.lock();
        let start = offset as usize;
        let end = start
            .checked_add(buf.len())
            .filter(|e| *e <= n.data.len())
            .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        buf.copy_from_slice(&n.data[start..end]);
        Ok(())
    }
    fn write_at(&self, data: &[u8], offset: u64) -> io::Result<()> {
        let allowed = self.fs.admit_write(data.len())?;
        let mut n = self.node.lock();
        n.rewritten = true;
        let end = offset as usize + allowed;
        if n.data.len() < end {
            n.data.resize(end, 0);
        }
        n.data[offset as usize..end].copy_from_slice(&data[..allowed]);
        if allowed < data.len() {
            return Err(eio("short write"));
        }
        Ok(())
    }
    fn append(&self, data: &[u8]) -> io::Result<()> {
        let allowed = self.fs.admit_write(data.len())?;
        let mut n = self.node.lock();
        n.data.extend_from_slice(&data[..allowed]);
        if allowed < data.len() {
            return Err(eio("short write"));
        }
        Ok(())
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.fs.admit_write(0)?;
        let mut n = self.node.lock();
        if len as usize > n.data.len() {
            n.rewritten = true;
        }
        n.data.resize(len as usize, 0);
        Ok(())
    }
    fn size(&self) -> io::Result<u64> {
        Ok(self.node.lock().data.len() as u64)
    }
    fn sync_data(&self) -> io::Result<()> {
        {
            let mut st = self.fs.state.lock();
            if st.crashed {
                return Err(eio("simulated crash"));
            }
            st.fsyncs += 1;
            if st.faults.fail_fsync == Some(st.fsyncs) {
                return Err(eio("simulated fsync failure"));
            }
        }
        let mut n = self.node.lock();
        n.synced = n.data.clone();
        Ok(())
    }
}

impl FaultFs {
    fn check_read(&self, path: &Path) -> io::Result<()> {
        let st = self.state.lock();
        if let Some(pat) = &st.faults.eio_reading {
            if path.to_string_lossy().contains(pat.as_str()) {
                return Err(eio("simulated read error"));
            }
        }
        Ok(())
    }

    /// The file at `path` as a process sees it now.
    fn node(&self, path: &Path) -> io::Result<Arc<Mutex<Node>>> {
        let st = self.state.lock();
        st.files.get(path).cloned().ok_or_else(|| not_found(path))
    }

    fn file(&self, path: &Path, node: Arc<Mutex<Node>>) -> Arc<dyn DataFile> {
        Arc::new(FaultFile {
            fs: self.clone(),
            path: path.to_owned(),
            node,
        })
    }
}

fn not_found(p: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{}: not found", p.display()),
    )
}

impl FileSystem for FaultFs {
    fn create_new(&self, path: &Path) -> io::Result<Arc<dyn DataFile>> {
        self.check_alive()?;
        let mut st = self.state.lock();
        if st.files.contains_key(path) {
            return Err(io::Error::from(io::ErrorKind::AlreadyExists));
        }
        let node = Arc::new(Mutex::new(Node::default()));
        st.files.insert(path.to_owned(), node.clone());
        drop(st);
        Ok(self.file(path, node))
    }
    fn open(&self, path: &Path) -> io::Result<Arc<dyn DataFile>> {
        self.check_alive()?;
        let node = self.node(path)?;
        Ok(self.file(path, node))
    }
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.check_read(path)?;
        let data = self.node(path)?.lock().data.clone();
        Ok(data)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.admit_write(0)?;
        let mut st = self.state.lock();
        let node = st.files.remove(from).ok_or_else(|| not_found(from))?;
        st.files.insert(to.to_owned(), node);
        Ok(())
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.admit_write(0)?;
        self.state
            .lock()
            .files
            .remove(path)
            .map(|_| ())
            .ok_or_else(|| not_found(path))
    }
    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        self.admit_write(0)?;
        let mut st = self.state.lock();
        st.files.retain(|p, _| !p.starts_with(path));
        st.dirs.retain(|p| !p.starts_with(path));
        Ok(())
    }
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.check_alive()?;
        let mut st = self.state.lock();
        for a in path.ancestors() {
            st.dirs.insert(a.to_owned());
        }
        Ok(())
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut st = self.state.lock();
        if st.crashed {
            return Err(eio("simulated crash"));
        }
        // Entries directly in `dir` become durable as they are now. (Entries under
        // subdirectories are made durable by syncing those.)
        let in_dir = |p: &Path| p.parent() == Some(dir);
        st.durable.retain(|p, _| !in_dir(p));
        let now: Vec<_> = st
            .files
            .iter()
            .filter(|(p, _)| in_dir(p))
            .map(|(p, n)| (p.clone(), n.clone()))
            .collect();
        st.durable.extend(now);
        Ok(())
    }
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<(PathBuf, bool)>> {
        self.check_alive()?;
        let st = self.state.lock();
        if !st.dirs.contains(dir) {
            return Err(not_found(dir));
        }
        let mut out: Vec<(PathBuf, bool)> = st
            .files
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .map(|p| (p.clone(), false))
            .chain(
                st.dirs
                    .iter()
                    .filter(|p| p.parent() == Some(dir))
                    .map(|p| (p.clone(), true)),
            )
            .collect();
        out.sort();
        Ok(out)
    }
    fn exists(&self, path: &Path) -> bool {
        let st = self.state.lock();
        st.files.contains_key(path) || st.dirs.contains(path)
    }
}
