//! The server secret: 32 random bytes in `<data-dir>/server.secret` (mode 0600), made on
//! first start. The JWT signing key and the API key hashing key are derived from it, so
//! replacing the file logs everyone out and invalidates every API key.

use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use anyhow::{bail, Context};
use ring::rand::{SecureRandom, SystemRandom};

const FILE: &str = "server.secret";
const LEN: usize = 32;

/// Keys derived from the server secret, each for one purpose.
pub struct Secrets {
    pub jwt: [u8; 32],
    pub key_hash: [u8; 32],
}

/// Loads the secret, creating it (exclusively, 0600, fsynced) when absent.
pub fn load_or_create(dir: &Path) -> anyhow::Result<Secrets> {
    let path = dir.join(FILE);
    let mut master = [0u8; LEN];
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
    {
        Ok(mut f) => {
            SystemRandom::new()
                .fill(&mut master)
                .map_err(|_| anyhow::anyhow!("the system random source failed"))?;
            f.write_all(&master)
                .and_then(|_| f.sync_all())
                .with_context(|| format!("writing {}", path.display()))?;
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .with_context(|| format!("syncing {}", dir.display()))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let mut f = std::fs::File::open(&path)
                .with_context(|| format!("opening {}", path.display()))?;
            let mut buf = Vec::new();
            f.read_to_end(&mut buf)
                .with_context(|| format!("reading {}", path.display()))?;
            if buf.len() != LEN {
                bail!(
                    "{}: expected {LEN} bytes, found {}; restore it or remove it (which logs everyone out and invalidates every API key)",
                    path.display(),
                    buf.len()
                );
            }
            master.copy_from_slice(&buf);
            // Tighten a copy restored with looser permissions.
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                .with_context(|| format!("chmod {}", path.display()))?;
        }
        Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
    }
    Ok(Secrets {
        jwt: blake3::derive_key("ledger 2026 session token HS256 key", &master),
        key_hash: blake3::derive_key("ledger 2026 API key hash key", &master),
    })
}
