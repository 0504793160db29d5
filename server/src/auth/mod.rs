//! Who is calling: credentials from headers, session tokens, API keys, passwords and login
//! throttling.
//!
//! Every credential failure — missing, malformed, expired, revoked, unknown — becomes the
//! same `401 unauthenticated`, so a caller learns nothing about which it was.

pub mod jwt;
pub mod keys;
pub mod password;
pub mod secret;
pub mod throttle;

use std::sync::Arc;

use hyper::header::{HeaderMap, AUTHORIZATION};

use crate::error::ApiError;
use keys::{CachedKey, KeyCache, KeyHasher};

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub enum Principal {
    /// A session token; the account id.
    Session(String),
    /// An API key, as the cache holds it.
    Key(Arc<CachedKey>),
}

/// Checks credentials; owns the keys they are checked with.
pub struct Authenticator {
    pub jwt: jwt::Jwt,
    pub hasher: KeyHasher,
    pub keys: KeyCache,
}

impl Authenticator {
    /// The caller, from `Authorization: Bearer <credential>` or `X-API-Key: <key>`.
    pub fn authenticate(&self, headers: &HeaderMap, now_us: i64) -> Result<Principal, ApiError> {
        let cred = credential(headers).ok_or(ApiError::Unauthenticated)?;
        if cred.starts_with(keys::KEY_PREFIX) {
            if !keys::looks_like_key(cred) {
                return Err(ApiError::Unauthenticated);
            }
            let key = self
                .keys
                .get(&self.hasher.hash(cred))
                .ok_or(ApiError::Unauthenticated)?;
            key.touch(now_us);
            return Ok(Principal::Key(key));
        }
        self.jwt
            .verify(cred, now_us.div_euclid(1_000_000))
            .map(Principal::Session)
            .ok_or(ApiError::Unauthenticated)
    }
}

/// The credential text of a request, if it sent one in a form we accept.
fn credential(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers.get(AUTHORIZATION) {
        let v = v.to_str().ok()?.trim();
        let (scheme, rest) = v.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let rest = rest.trim();
        return (!rest.is_empty()).then_some(rest);
    }
    let v = headers.get("x-api-key")?.to_str().ok()?.trim();
    (!v.is_empty()).then_some(v)
}
