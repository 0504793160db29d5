//! Session tokens: JWTs signed with HMAC-SHA256 (ring).
//!
//! Why not `jsonwebtoken`: Ledger issues and accepts one token shape (HS256, three claims, a
//! clock the caller passes in so tests and the server agree on `now`). jsonwebtoken reads the
//! system clock itself, adds a 60 s leeway by default, and brings RSA/EC key parsing we never
//! accept; its HS256 is the same ring HMAC used here. What we did write by hand and should
//! not, base64url, is the base64 crate's.
//!
//! Only `HS256` is accepted: the header's `alg` is compared against it before anything else,
//! so `none` or an asymmetric algorithm can never be smuggled in. The signature check is
//! ring's constant-time `hmac::verify`.

use ring::hmac;
use serde::{Deserialize, Serialize};

/// How long a session token lives.
pub const TOKEN_TTL_SECS: i64 = 3600;

const HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

#[derive(Serialize, Deserialize)]
struct Claims {
    sub: String,
    iat: i64,
    exp: i64,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
}

/// Signs and checks session tokens.
pub struct Jwt {
    key: hmac::Key,
}

impl Jwt {
    pub fn new(secret: &[u8; 32]) -> Jwt {
        Jwt {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
        }
    }

    /// A token for `account`, valid for [`TOKEN_TTL_SECS`] from `now` (Unix seconds), and its
    /// expiry.
    pub fn issue(&self, account: &str, now: i64) -> (String, i64) {
        let exp = now + TOKEN_TTL_SECS;
        let claims = Claims {
            sub: account.to_owned(),
            iat: now,
            exp,
        };
        let payload = serde_json::to_vec(&claims).unwrap_or_default();
        let signing_input = format!(
            "{}.{}",
            b64::encode(HEADER.as_bytes()),
            b64::encode(&payload)
        );
        let sig = hmac::sign(&self.key, signing_input.as_bytes());
        (
            format!("{signing_input}.{}", b64::encode(sig.as_ref())),
            exp,
        )
    }

    /// The account a token was issued to, if the token is well formed, signed by this server
    /// with HS256, and not expired at `now` (Unix seconds).
    pub fn verify(&self, token: &str, now: i64) -> Option<String> {
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let header: Header = serde_json::from_slice(&b64::decode(h)?).ok()?;
        if header.alg != "HS256" {
            return None;
        }
        let sig = b64::decode(s)?;
        let signed = &token[..h.len() + 1 + p.len()];
        hmac::verify(&self.key, signed.as_bytes(), &sig).ok()?;
        let claims: Claims = serde_json::from_slice(&b64::decode(p)?).ok()?;
        (claims.exp > now).then_some(claims.sub)
    }
}

/// Base64url without padding (RFC 4648 §5), the JWT alphabet, through the base64 crate. Its
/// decoder refuses padding and non-canonical trailing bits, so one token has one spelling.
mod b64 {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;

    pub fn encode(data: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(data)
    }

    pub fn decode(s: &str) -> Option<Vec<u8>> {
        URL_SAFE_NO_PAD.decode(s).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_round_trips() {
        for len in 0..20 {
            let data: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            assert_eq!(b64::decode(&b64::encode(&data)), Some(data));
        }
        assert_eq!(b64::encode(b"hi?"), "aGk_");
        assert_eq!(b64::decode("a"), None);
        assert_eq!(b64::decode("aGk="), None);
        assert_eq!(b64::decode("aGl"), None, "non-canonical trailing bits");
    }

    #[test]
    fn tokens_verify_until_they_expire() {
        let jwt = Jwt::new(&[7; 32]);
        let (t, exp) = jwt.issue("acc_1", 1_000);
        assert_eq!(exp, 1_000 + TOKEN_TTL_SECS);
        assert_eq!(jwt.verify(&t, 1_001).as_deref(), Some("acc_1"));
        assert_eq!(jwt.verify(&t, exp), None);
        assert_eq!(Jwt::new(&[8; 32]).verify(&t, 1_001), None);
    }

    #[test]
    fn other_algorithms_and_tampering_are_refused() {
        let jwt = Jwt::new(&[7; 32]);
        let (t, _) = jwt.issue("acc_1", 1_000);
        let parts: Vec<&str> = t.split('.').collect();
        let none = b64::encode(br#"{"alg":"none","typ":"JWT"}"#);
        assert_eq!(jwt.verify(&format!("{none}.{}.", parts[1]), 1_001), None);
        assert_eq!(
            jwt.verify(&format!("{none}.{}.{}", parts[1], parts[2]), 1_001),
            None
        );
        let forged = b64::encode(br#"{"sub":"acc_2","iat":1000,"exp":99999}"#);
        assert_eq!(
            jwt.verify(&format!("{}.{forged}.{}", parts[0], parts[2]), 1_001),
            None
        );
        assert_eq!(jwt.verify("a.b", 1_001), None);
        assert_eq!(jwt.verify("", 1_001), None);
    }
}
