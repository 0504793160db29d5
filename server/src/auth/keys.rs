//! API keys: generation, keyed hashing, and the in-memory cache that validates them.
//!
//! A key is `ledger_` + 32 characters `[A-Za-z0-9]` (about 190 bits) from the system CSPRNG.
//! Only its blake3 keyed hash is stored. Validation is one hash and one map lookup: the cache
//! holds every live key, and revocation or project deletion removes entries at once, so the
//! next request already fails. `last_used_at` is kept in the cache and written to redb in
//! batches by a background task.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;
use ring::rand::{SecureRandom, SystemRandom};

use crate::meta::{KeyRecord, Scope};

pub const KEY_PREFIX: &str = "ledger_";
const KEY_BODY_LEN: usize = 32;
/// How many characters of a key are shown back as its `prefix`.
const SHOWN_LEN: usize = KEY_PREFIX.len() + 6;
const ALPHABET: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// A fresh key. `None` only if the system random source fails.
pub fn generate() -> Option<String> {
    let rng = SystemRandom::new();
    let mut key = String::with_capacity(KEY_PREFIX.len() + KEY_BODY_LEN);
    key.push_str(KEY_PREFIX);
    let mut buf = [0u8; 64];
    while key.len() < KEY_PREFIX.len() + KEY_BODY_LEN {
        rng.fill(&mut buf).ok()?;
        for b in buf {
            // Rejection sampling: 248 = 4 * 62, so every character is equally likely.
            if b < 248 && key.len() < KEY_PREFIX.len() + KEY_BODY_LEN {
                key.push(ALPHABET[(b % 62) as usize] as char);
            }
        }
    }
    Some(key)
}

/// The part of a key that is shown in listings.
pub fn shown_prefix(key: &str) -> String {
    key.chars().take(SHOWN_LEN).collect()
}

/// True when `s` has the shape of an API key (it may still be unknown).
pub fn looks_like_key(s: &str) -> bool {
    s.strip_prefix(KEY_PREFIX).is_some_and(|body| {
        body.len() == KEY_BODY_LEN && body.bytes().all(|b| b.is_ascii_alphanumeric())
    })
}

/// Hashes keys with the server's secret key.
pub struct KeyHasher {
    key: [u8; 32],
}

impl KeyHasher {
    pub fn new(key: [u8; 32]) -> KeyHasher {
        KeyHasher { key }
    }
    pub fn hash(&self, api_key: &str) -> [u8; 32] {
        *blake3::keyed_hash(&self.key, api_key.as_bytes()).as_bytes()
    }
}

/// A live key as the cache holds it.
#[derive(Debug)]
pub struct CachedKey {
    pub id: String,
    pub project: u64,
    pub scopes: Vec<Scope>,
    /// Unix µs of the last use not yet written to redb (0 when none).
    last_used: AtomicI64,
    dirty: AtomicBool,
}

impl CachedKey {
    pub fn has(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }
    /// Notes a use; cheap enough for every request.
    pub fn touch(&self, now: i64) {
        self.last_used.fetch_max(now, Ordering::Relaxed);
        self.dirty.store(true, Ordering::Relaxed);
    }
    /// The last use this process saw, if any.
    pub fn last_used(&self) -> Option<i64> {
        let v = self.last_used.load(Ordering::Relaxed);
        (v > 0).then_some(v)
    }
}

/// Every live (unrevoked) key, by hash.
#[derive(Default)]
pub struct KeyCache {
    by_hash: RwLock<HashMap<[u8; 32], Arc<CachedKey>>>,
}

impl KeyCache {
    /// Adds a key; revoked records are ignored.
    pub fn insert(&self, rec: &KeyRecord) {
        if rec.revoked_at.is_some() {
            return;
        }
        let Some(hash) = hex::decode(&rec.hash)
            .ok()
            .and_then(|h| <[u8; 32]>::try_from(h.as_slice()).ok())
        else {
            tracing::error!(key_id = %rec.id, "key record has a malformed hash; key disabled");
            return;
        };
        let entry = Arc::new(CachedKey {
            id: rec.id.clone(),
            project: rec.project,
            scopes: rec.scopes.clone(),
            last_used: AtomicI64::new(0),
            dirty: AtomicBool::new(false),
        });
        self.by_hash.write().insert(hash, entry);
    }

    /// Replaces every key with these (a read-only node adopting newer metadata).
    pub fn replace_all<'a>(&self, recs: impl IntoIterator<Item = &'a KeyRecord>) {
        let fresh = KeyCache::default();
        for r in recs {
            fresh.insert(r);
        }
        *self.by_hash.write() = std::mem::take(&mut *fresh.by_hash.write());
    }

    pub fn get(&self, hash: &[u8; 32]) -> Option<Arc<CachedKey>> {
        self.by_hash.read().get(hash).cloned()
    }

    /// The cached entry of a key id (for its in-memory `last_used_at`).
    pub fn by_id(&self, id: &str) -> Option<Arc<CachedKey>> {
        self.by_hash.read().values().find(|k| k.id == id).cloned()
    }

    /// Drops a key at once: the next request with it is refused.
    pub fn remove_id(&self, id: &str) {
        self.by_hash.write().retain(|_, k| k.id != id);
    }

    /// Drops every key of a project.
    pub fn remove_project(&self, project: u64) {
        self.by_hash.write().retain(|_, k| k.project != project);
    }

    /// Uses not yet written to redb, clearing their marks.
    pub fn take_dirty(&self) -> HashMap<String, i64> {
        let mut out = HashMap::new();
        for k in self.by_hash.read().values() {
            if k.dirty.swap(false, Ordering::Relaxed) {
                out.insert(k.id.clone(), k.last_used.load(Ordering::Relaxed));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_have_the_documented_shape() {
        let a = generate().unwrap();
        let b = generate().unwrap();
        assert!(looks_like_key(&a), "{a}");
        assert_ne!(a, b);
        assert!(shown_prefix(&a).starts_with("ledger_"));
        assert!(!looks_like_key("ledger_short"));
        assert!(!looks_like_key(&format!("ledger_{}", "é".repeat(16))));
    }

    #[test]
    fn revocation_is_visible_at_once() {
        let h = KeyHasher::new([1; 32]);
        let key = generate().unwrap();
        let cache = KeyCache::default();
        cache.insert(&KeyRecord {
            id: "key_1".into(),
            project: 9,
            name: "n".into(),
            prefix: shown_prefix(&key),
            scopes: vec![Scope::Ingest],
            hash: hex::encode(h.hash(&key)),
            created_at: 1,
            last_used_at: None,
            revoked_at: None,
        });
        assert_eq!(cache.get(&h.hash(&key)).unwrap().project, 9);
        cache.remove_id("key_1");
        assert!(cache.get(&h.hash(&key)).is_none());
    }
}
