//! Password hashing: PBKDF2-HMAC-SHA256 (ring) with a random 16-byte salt.
//!
//! Stored as `pbkdf2-sha256$<iterations>$<salt hex>$<hash hex>`, so the iteration count can
//! be raised later without breaking existing accounts.

use std::num::NonZeroU32;

use ring::pbkdf2;
use ring::rand::{SecureRandom, SystemRandom};

const ALG: pbkdf2::Algorithm = pbkdf2::PBKDF2_HMAC_SHA256;
const SALT_LEN: usize = 16;
const HASH_LEN: usize = 32;

/// Hashes a password with a fresh salt. `None` only if the system random source fails.
pub fn hash(password: &str, iterations: NonZeroU32) -> Option<String> {
    let mut salt = [0u8; SALT_LEN];
    SystemRandom::new().fill(&mut salt).ok()?;
    let mut out = [0u8; HASH_LEN];
    pbkdf2::derive(ALG, iterations, &salt, password.as_bytes(), &mut out);
    Some(format!(
        "pbkdf2-sha256${iterations}${}${}",
        hex::encode(salt),
        hex::encode(out)
    ))
}

/// True when `password` matches `stored`. The comparison is constant-time (ring).
pub fn verify(password: &str, stored: &str) -> bool {
    let mut parts = stored.split('$');
    let (Some("pbkdf2-sha256"), Some(iter), Some(salt), Some(hash), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return false;
    };
    let (Some(iter), Some(salt), Some(hash)) = (
        iter.parse::<u32>().ok().and_then(NonZeroU32::new),
        hex::decode(salt).ok(),
        hex::decode(hash).ok(),
    ) else {
        return false;
    };
    pbkdf2::verify(ALG, iter, &salt, password.as_bytes(), &hash).is_ok()
}

/// Spends the same time as a real verification, so a login for an unknown email cannot be
/// told apart from a wrong password by its latency.
pub fn verify_dummy(password: &str, iterations: NonZeroU32) {
    let mut out = [0u8; HASH_LEN];
    pbkdf2::derive(
        ALG,
        iterations,
        &[0u8; SALT_LEN],
        password.as_bytes(),
        &mut out,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn right_password_verifies_and_wrong_one_does_not() {
        let n = NonZeroU32::new(1_000).unwrap();
        let h = hash("correct horse battery", n).unwrap();
        assert!(h.starts_with("pbkdf2-sha256$1000$"));
        assert!(verify("correct horse battery", &h));
        assert!(!verify("correct horse batterY", &h));
        assert!(!verify("x", "garbage"));
        assert!(!verify("x", "pbkdf2-sha256$0$00$00"));
        assert_ne!(h, hash("correct horse battery", n).unwrap(), "salts differ");
    }
}
