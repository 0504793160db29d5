//! Small helpers over the [`FileSystem`](crate::fs::FileSystem) seam that every durable
//! write goes through, with errors that name the path.

use std::path::Path;
use std::sync::Arc;

use crate::error::{EngineError, Result};
use crate::fs::{DataFile, FileSystem, RealFs};

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
