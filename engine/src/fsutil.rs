//! Small file-system helpers that every durable write goes through.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::error::{EngineError, Result};

/// fsyncs a directory so that a create, rename or delete inside it is durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| EngineError::io(dir, e))
}

/// Creates a directory (and parents) readable only by the owner.
pub fn create_private_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| EngineError::io(dir, e))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| EngineError::io(dir, e))
}

/// Creates a new file (failing if it exists) readable only by the owner.
pub fn create_new(path: &Path) -> Result<File> {
    OpenOptions::new()
        .write(true)
        .read(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| EngineError::io(path, e))
}

/// Writes `bytes` to a new file atomically: a temporary beside it, fsync, rename, fsync the
/// directory. A crash leaves either no file or the whole file, never a part.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = create_new(&tmp)?;
    let res = f
        .write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| EngineError::io(&tmp, e))
        .and_then(|_| std::fs::rename(&tmp, path).map_err(|e| EngineError::io(path, e)));
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}
