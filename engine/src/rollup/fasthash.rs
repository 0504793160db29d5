//! A fast keyed hasher for the rollups' maps, whose keys (message templates, fingerprints)
//! come from tenants' logs.
//!
//! `std`'s SipHash costs more per template than all the rest of counting a log. This is the
//! folded-multiply construction of `foldhash`/`ahash`: 8 bytes per step, each step one
//! 64×64→128-bit multiply by a secret key, the halves folded together. The keys are drawn
//! from the operating system's randomness once per engine (through `RandomState`), so a
//! tenant cannot aim keys at one bucket without knowing them.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

/// Builds [`KeyedHasher`]s with this engine's secret keys.
#[derive(Clone)]
pub struct KeyedState {
    k0: u64,
    k1: u64,
}

impl KeyedState {
    /// Fresh random keys.
    pub fn new() -> KeyedState {
        let r = RandomState::new();
        let mut a = r.build_hasher();
        a.write_u64(0x9e37_79b9_7f4a_7c15);
        let mut b = r.build_hasher();
        b.write_u64(0xc2b2_ae3d_27d4_eb4f);
        KeyedState {
            k0: a.finish(),
            k1: b.finish() | 1,
        }
    }
}

impl Default for KeyedState {
    fn default() -> Self {
        KeyedState::new()
    }
}

impl BuildHasher for KeyedState {
    type Hasher = KeyedHasher;
    fn build_hasher(&self) -> KeyedHasher {
        KeyedHasher {
            h: self.k0,
            k: self.k1,
        }
    }
}

/// One hash in progress.
pub struct KeyedHasher {
    h: u64,
    k: u64,
}

#[inline]
fn fold(a: u64, b: u64) -> u64 {
    let x = u128::from(a) * u128::from(b);
    (x as u64) ^ ((x >> 64) as u64)
}

impl KeyedHasher {
    #[inline]
    fn mix(&mut self, w: u64) {
        self.h = fold(self.h ^ w, self.k).rotate_left(23);
    }
}

impl Hasher for KeyedHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.mix(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        let mut w = [0u8; 8];
        w[..rest.len()].copy_from_slice(rest);
        // The length goes in with the tail, so "ab" and "ab\0" differ.
        self.mix(u64::from_le_bytes(w) ^ ((bytes.len() as u64) << 56));
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.mix(u64::from(i) | 0x100);
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.mix(i);
    }

    #[inline]
    fn finish(&self) -> u64 {
        fold(self.h, self.k ^ 0x2d35_8dcc_aa6c_78a5)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &KeyedState, b: &[u8]) -> u64 {
        let mut x = s.build_hasher();
        x.write(b);
        x.finish()
    }

    #[test]
    fn equal_inputs_hash_equal_and_near_inputs_differ() {
        let s = KeyedState::new();
        assert_eq!(h(&s, b"user <*> not found"), h(&s, b"user <*> not found"));
        let mut seen = std::collections::HashSet::new();
        for i in 0..10_000u32 {
            assert!(seen.insert(h(&s, format!("k{i}").as_bytes())));
        }
        assert_ne!(h(&s, b"ab"), h(&s, b"ab\0"));
        assert_ne!(h(&s, b""), h(&s, b"\0"));
        // Different engines, different keys.
        assert_ne!(h(&s, b"x"), h(&KeyedState::new(), b"x"));
    }
}
