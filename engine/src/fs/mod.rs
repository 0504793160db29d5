//! The file-system seam: every byte the WAL, the segments and the catalog write goes through
//! a [`FileSystem`], so tests can swap the real disk for [`FaultFs`], which injects short
//! writes, failed fsyncs, a full disk, read errors and crashes at any numbered write.
//!
//! (Model: tantivy's `Directory` trait, redb's `StorageBackend`.) The search index is not
//! behind the seam: it is rebuildable from segments, and tantivy has its own directory.

use std::fmt::Debug;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{EngineError, Result};

#[cfg(any(test, feature = "testing"))]
mod fault;
#[cfg(any(test, feature = "testing"))]
pub use fault::{FaultFs, Faults};

/// An open file. Methods take `&self`; implementations synchronise internally.
pub trait DataFile: Send + Sync + Debug {
    /// Fills `buf` from `offset`, or fails (short reads are errors).
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    fn write_at(&self, data: &[u8], offset: u64) -> io::Result<()>;
    /// Writes at the end of the file.
    fn append(&self, data: &[u8]) -> io::Result<()>;
    fn set_len(&self, len: u64) -> io::Result<()>;
    fn size(&self) -> io::Result<u64>;
    /// Makes the file's data durable. After an error nothing is known about unsynced data.
    fn sync_data(&self) -> io::Result<()>;
}

/// A file system: the real one, or one for tests.
pub trait FileSystem: Send + Sync + Debug + 'static {
    /// Creates a file that must not exist, readable only by its owner.
    fn create_new(&self, path: &Path) -> io::Result<Arc<dyn DataFile>>;
    /// Opens an existing file, for reading and writing.
    fn open(&self, path: &Path) -> io::Result<Arc<dyn DataFile>>;
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    fn remove_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Creates a directory and its parents, readable only by the owner.
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Makes creations, renames and deletions inside `dir` durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Entries of a directory: `(path, is_dir)`.
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<(PathBuf, bool)>>;
    fn exists(&self, path: &Path) -> bool;
    /// True for the real disk (which other components, like the search index, share).
    fn is_real(&self) -> bool {
        false
    }
}

/// The real file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealFs;

#[derive(Debug)]
struct RealFile(File);

impl DataFile for RealFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.0.read_exact_at(buf, offset)
    }
    fn write_at(&self, data: &[u8], offset: u64) -> io::Result<()> {
        self.0.write_all_at(data, offset)
    }
    fn append(&self, data: &[u8]) -> io::Result<()> {
        // Positional, not O_APPEND: on Linux a pwrite to an O_APPEND file ignores its offset,
        // which would break `write_at`. Every file has one writer, so this does not race.
        let end = self.0.metadata()?.len();
        self.0.write_all_at(data, end)
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
    fn size(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }
    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }
}

impl FileSystem for RealFs {
    fn create_new(&self, path: &Path) -> io::Result<Arc<dyn DataFile>> {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
        Ok(Arc::new(RealFile(f)))
    }
    fn open(&self, path: &Path) -> io::Result<Arc<dyn DataFile>> {
        let f = OpenOptions::new().read(true).write(true).open(path)?;
        Ok(Arc::new(RealFile(f)))
    }
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        std::fs::read(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }
    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_dir_all(path)
    }
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        std::fs::create_dir_all(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<(PathBuf, bool)>> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir)? {
            let e = e?;
            out.push((e.path(), e.file_type()?.is_dir()));
        }
        out.sort();
        Ok(out)
    }
    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }
    fn is_real(&self) -> bool {
        true
    }
}

/// Adapts a [`DataFile`] to redb's storage backend, so the catalog writes through the seam.
#[derive(Debug)]
pub struct RedbBackend(pub Arc<dyn DataFile>);

impl redb::StorageBackend for RedbBackend {
    fn len(&self) -> io::Result<u64> {
        self.0.size()
    }
    fn read(&self, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        let mut buf = vec![0; len];
        self.0.read_at(&mut buf, offset)?;
        Ok(buf)
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
    fn sync_data(&self, _eventual: bool) -> io::Result<()> {
        self.0.sync_data()
    }
    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.0.write_at(data, offset)
    }
}

// Helpers over the seam that every durable write goes through, with errors that name the path.

/// fsyncs a directory so that a create, rename or delete inside it is durable.
pub fn sync_dir_in(fs: &dyn FileSystem, dir: &Path) -> Result<()> {
    fs.sync_dir(dir).map_err(|e| EngineError::io(dir, e))
}

/// Creates a directory (and parents) readable only by the owner.
pub fn create_dir_in(fs: &dyn FileSystem, dir: &Path) -> Result<()> {
    fs.create_dir_all(dir).map_err(|e| EngineError::io(dir, e))
}

/// Creates a new file (failing if it exists) readable only by the owner.
pub fn create_new_in(fs: &dyn FileSystem, path: &Path) -> Result<Arc<dyn DataFile>> {
    fs.create_new(path).map_err(|e| EngineError::io(path, e))
}

/// Writes `bytes` to a new file atomically: a temporary beside it, fsync, rename, fsync the
/// directory. A crash leaves either no file or the whole file, never a part.
pub fn write_atomic_in(fs: &dyn FileSystem, path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let _ = fs.remove_file(&tmp);
    let res = create_new_in(fs, &tmp).and_then(|f| {
        f.append(bytes)
            .and_then(|_| f.sync_data())
            .map_err(|e| EngineError::io(&tmp, e))
    });
    let res = res.and_then(|_| fs.rename(&tmp, path).map_err(|e| EngineError::io(path, e)));
    if res.is_err() {
        let _ = fs.remove_file(&tmp);
    }
    res?;
    sync_dir_in(fs, path.parent().unwrap_or(Path::new(".")))
}

/// [`sync_dir_in`] on the real disk.
pub fn sync_dir(dir: &Path) -> Result<()> {
    sync_dir_in(&RealFs, dir)
}

/// [`create_dir_in`] on the real disk.
pub fn create_private_dir(dir: &Path) -> Result<()> {
    create_dir_in(&RealFs, dir)
}
