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
    /// The caller, from any credential form of [`credential`].
    pub fn authenticate(&self, headers: &HeaderMap, now_us: i64) -> Result<Principal, ApiError> {
        let cred = credential(headers).ok_or(ApiError::Unauthenticated)?;
        let cred = cred.as_str();
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

/// The credential text of a request, if it sent one in a form we accept:
///
/// * `Authorization: Bearer <credential>` (a session token or an API key);
/// * `X-API-Key: <key>` (API keys only, not session tokens);
/// * `Authorization: ApiKey <key>` or `ApiKey base64(<anything>:<key>)` (Elasticsearch
///   clients and Filebeat send an id and a key);
/// * `Authorization: Basic base64(<anything>:<key>)` (Fluent Bit, Vector, Logstash, Promtail
///   send a user name and a password: the key is the password).
///
/// The base64 forms only carry API keys: what they decode to must look like one.
pub fn credential(headers: &HeaderMap) -> Option<String> {
    if let Some(v) = headers.get(AUTHORIZATION) {
        let v = v.to_str().ok()?.trim();
        let (scheme, rest) = v.split_once(' ')?;
        let rest = rest.trim();
        if rest.is_empty() {
            return None;
        }
        if scheme.eq_ignore_ascii_case("bearer") {
            return Some(rest.to_owned());
        }
        if scheme.eq_ignore_ascii_case("apikey") && rest.starts_with(keys::KEY_PREFIX) {
            return Some(rest.to_owned());
        }
        if scheme.eq_ignore_ascii_case("apikey") || scheme.eq_ignore_ascii_case("basic") {
            use base64::Engine as _;
            let raw = base64::engine::general_purpose::STANDARD
                .decode(rest)
                .ok()?;
            let text = String::from_utf8(raw).ok()?;
            let (_, key) = text.split_once(':')?;
            return key.starts_with(keys::KEY_PREFIX).then(|| key.to_owned());
        }
        return None;
    }
    // `X-API-Key` carries API keys only, as the contract says; a session token belongs in
    // `Authorization: Bearer`.
    let v = headers.get("x-api-key")?.to_str().ok()?.trim();
    v.starts_with(keys::KEY_PREFIX).then(|| v.to_owned())
}

#[cfg(test)]
mod credential_tests {
    use super::*;
    use base64::Engine as _;

    const KEY: &str = "ledger_abcdefghijklmnopqrstuvwxyz012345";

    fn with(name: &'static str, value: String) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, value.parse().unwrap());
        h
    }

    #[test]
    fn every_shipper_form_yields_the_key() {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        for h in [
            with("authorization", format!("Bearer {KEY}")),
            with("x-api-key", KEY.to_owned()),
            with("authorization", format!("ApiKey {KEY}")),
            with(
                "authorization",
                format!("ApiKey {}", b64(&format!("id:{KEY}"))),
            ),
            with(
                "authorization",
                format!("Basic {}", b64(&format!("elastic:{KEY}"))),
            ),
            with(
                "authorization",
                format!("basic {}", b64(&format!(":{KEY}"))),
            ),
        ] {
            assert_eq!(credential(&h).as_deref(), Some(KEY), "{h:?}");
        }
    }

    #[test]
    fn other_forms_carry_no_credential() {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        for h in [
            with("authorization", "Basic !!!".into()),
            with("authorization", format!("Basic {}", b64("user:password"))),
            with("authorization", format!("Basic {}", b64(KEY))),
            with("authorization", format!("Digest {KEY}")),
            with("authorization", "Bearer ".into()),
            with("x-api-key", "eyJhbGciOiJIUzI1NiJ9.e30.c2ln".into()),
        ] {
            assert_eq!(credential(&h), None, "{h:?}");
        }
    }
}
