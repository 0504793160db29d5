//! The security review, as tests against the real binary: tenants never reach each other
//! through any route, secrets never reach the log, session tokens accept only HS256 with a
//! valid signature and expiry, and the data directory is private to the server's user.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::*;
use ring::hmac;
use serde_json::{json, Value};

/// Base64url without padding, the JWT alphabet.
fn b64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..=c.len() {
            out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// The JWT signing key the server derives from its secret file.
fn jwt_key(dir: &Path) -> [u8; 32] {
    let master = std::fs::read(dir.join("server.secret")).expect("server.secret");
    blake3::derive_key("ledger 2026 session token HS256 key", &master)
}

fn forge(alg: hmac::Algorithm, key: &[u8], header: &Value, claims: &Value) -> String {
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let sig = hmac::sign(&hmac::Key::new(alg, key), input.as_bytes());
    format!("{input}.{}", b64(sig.as_ref()))
}

fn now_secs() -> i64 {
    ledger_engine::now_micros() / 1_000_000
}

/// A victim with a log, and everything it should never leak.
struct Victim {
    t: Tenant,
    log_id: String,
    secrets: Vec<String>,
}

fn victim(s: &Server) -> Victim {
    let t = s.tenant("victim@example.com");
    let r = s.post(
        "/api/v1/ingest/single",
        &t.key,
        &log(1, "victim-secret-message"),
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let log_id = r.json()["id"].as_str().unwrap().to_owned();
    let secrets = vec![
        t.project.clone(),
        t.key_id.clone(),
        log_id.clone(),
        "victim-secret-message".into(),
        "victim@example.com".into(),
    ];
    Victim { t, log_id, secrets }
}

#[test]
fn no_route_reaches_another_tenants_project() {
    let s = Server::start(&[]);
    let v = victim(&s);
    let a = s.tenant("attacker@example.com");
    let (vp, vk, vl, ap) = (&v.t.project, &v.t.key_id, &v.log_id, &a.project);
    let patch = json!({"name": "pwned", "daily_quota": 0}).to_string();
    let key_body = json!({"name": "x", "scopes": ["query"]}).to_string();
    // Every route of docs/api.md that takes an id or a project, aimed at the victim's.
    let project_reads = [
        "/api/v1/logs",
        "/api/v1/logs/search?q=victim",
        "/api/v1/logs/patterns",
        "/api/v1/metrics/error-rate",
        "/api/v1/metrics/log-volume",
        "/api/v1/metrics/top-errors",
        "/api/v1/metrics/usage-stats",
        "/api/v1/queue/depth",
    ];
    let mut routes: Vec<(&str, String, &str)> = vec![
        ("GET", format!("/api/v1/projects/{vp}"), ""),
        ("PATCH", format!("/api/v1/projects/{vp}"), &patch),
        ("DELETE", format!("/api/v1/projects/{vp}"), ""),
        ("GET", format!("/api/v1/projects/{vp}/keys"), ""),
        ("POST", format!("/api/v1/projects/{vp}/keys"), &key_body),
        ("DELETE", format!("/api/v1/projects/{vp}/keys/{vk}"), ""),
        ("GET", format!("/api/v1/logs/{vl}?project_id={vp}"), ""),
    ];
    for r in project_reads {
        let sep = if r.contains('?') { '&' } else { '?' };
        routes.push(("GET", format!("{r}{sep}project_id={vp}"), ""));
    }
    for cred in [&a.token, &a.key] {
        for (method, path, body) in &routes {
            let ct = [("Content-Type", "application/json")];
            let r = s.send(method, path, cred, &ct, body.as_bytes());
            assert_eq!(r.status, 404, "{method} {path}: {}", r.text());
            assert_eq!(r.json()["error"]["code"], "not_found");
            for secret in &v.secrets {
                assert!(
                    !r.text().contains(secret.as_str()),
                    "{method} {path} leaked {secret}"
                );
            }
        }
    }
    // The victim's ids through the attacker's own project.
    let own = [
        (
            "DELETE",
            format!("/api/v1/projects/{ap}/keys/{vk}"),
            &a.token,
        ),
        (
            "GET",
            format!("/api/v1/logs/{vl}?project_id={ap}"),
            &a.token,
        ),
        ("GET", format!("/api/v1/logs/{vl}"), &a.key),
    ];
    for (method, path, cred) in own {
        s.send(method, &path, cred, &[], b"")
            .expect_error(404, "not_found");
    }
    // An API key cannot manage keys at all; on its own project it learns only that (403),
    // and the same whether the key id is the victim's or does not exist.
    let mine = s.delete(&format!("/api/v1/projects/{ap}/keys/{vk}"), &a.key);
    let none = s.delete(&format!("/api/v1/projects/{ap}/keys/key_nope"), &a.key);
    mine.expect_error(403, "forbidden");
    assert_eq!((mine.status, mine.json()), (none.status, none.json()));
    // Routes without ids answer only the caller's own data.
    let lists = [
        "/api/v1/projects",
        "/api/v1/audit",
        "/api/v1/auth/me",
        "/api/v1/logs",
        "/api/v1/logs/search?q=victim",
        "/api/v1/logs/patterns",
        "/api/v1/metrics/top-errors",
    ];
    for path in lists {
        for cred in [&a.token, &a.key] {
            let sep = if path.contains('?') { '&' } else { '?' };
            let path = match (
                cred == &a.token,
                path.starts_with("/api/v1/logs") || path.contains("metrics"),
            ) {
                (true, true) => format!("{path}{sep}project_id={ap}"),
                _ => path.to_owned(),
            };
            let r = s.get(&path, cred);
            assert!(r.status < 500, "{path}: {}", r.text());
            for secret in &v.secrets {
                assert!(
                    !r.text().contains(secret.as_str()),
                    "{path} leaked {secret}"
                );
            }
        }
    }
    // Ingest goes to the key's own project whatever the query says.
    let r = s.post(
        &format!("/api/v1/ingest/single?project_id={vp}"),
        &a.key,
        &log(2, "planted"),
    );
    assert!(r.status == 202 || r.status == 400, "{}", r.text());
    let metrics = s.get("/metrics", "");
    for secret in &v.secrets {
        assert!(
            !metrics.text().contains(secret.as_str()),
            "/metrics leaked {secret}"
        );
    }
    // The victim is untouched: project, key, and exactly its one log.
    let p = s.get(&format!("/api/v1/projects/{vp}"), &v.t.token);
    assert_eq!(p.json()["name"], "app");
    assert_eq!(p.json()["daily_quota"], 1_000_000);
    let logs = s.get("/api/v1/logs", &v.t.key);
    assert_eq!(
        logs.status,
        200,
        "the victim's key was revoked: {}",
        logs.text()
    );
    let logs = logs.json()["logs"].as_array().unwrap().clone();
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0]["message"], "victim-secret-message");
}

#[test]
fn secrets_never_reach_the_log() {
    let mut s = Server::start_with_env(&[], &[("LEDGER_LOG", "trace")]);
    let password = "correct horse battery";
    let r = s.post(
        "/api/v1/auth/register",
        "",
        &json!({"email": "quiet@example.com", "password": password}),
    );
    assert_eq!(r.status, 201);
    let r = s.post(
        "/api/v1/auth/login",
        "",
        &json!({"email": "quiet@example.com", "password": password}),
    );
    let token = r.json()["token"].as_str().unwrap().to_owned();
    let wrong = "wrong-password-9f8e7d";
    let r = s.post(
        "/api/v1/auth/login",
        "",
        &json!({"email": "quiet@example.com", "password": wrong}),
    );
    r.expect_error(401, "unauthenticated");
    let p = s.post("/api/v1/projects", &token, &json!({"name": "p"}));
    let pid = p.json()["id"].as_str().unwrap().to_owned();
    let k = s.post(
        &format!("/api/v1/projects/{pid}/keys"),
        &token,
        &json!({"name": "k", "scopes": ["ingest", "query"]}),
    );
    let key = k.json()["key"].as_str().unwrap().to_owned();
    assert_eq!(
        s.post("/api/v1/ingest/single", &key, &log(1, "m")).status,
        202
    );
    assert_eq!(s.get("/api/v1/logs", &key).status, 200);
    let x_api = s.req("GET", "/api/v1/logs", &[("X-API-Key", &key)], b"");
    assert_eq!(x_api.status, 200);
    assert_eq!(
        s.get(&format!("/api/v1/logs?project_id={pid}"), &token)
            .status,
        200
    );
    assert_eq!(
        s.get("/api/v1/logs", "ledger_0123456789abcdefABCDEF0123456789")
            .status,
        401
    );

    let master = std::fs::read(s.dir.join("server.secret")).unwrap();
    let dir = s.dir.clone();
    let log_path = dir.with_extension("log");
    let status = s.stop();
    assert!(status.success(), "{status}");
    let text = std::fs::read(&log_path).unwrap();
    let text = String::from_utf8_lossy(&text);
    assert!(
        text.contains("\"request\""),
        "the log has no request lines: {text}"
    );
    let sig = token.rsplit('.').next().unwrap().to_owned();
    let forbidden = [
        ("the password", password.to_owned()),
        ("the wrong password", wrong.to_owned()),
        ("the API key", key.clone()),
        (
            "the API key's secret part",
            key["ledger_".len()..].to_owned(),
        ),
        ("the session token", token.clone()),
        ("the session token's signature", sig),
        ("the secret (hex)", hex::encode(&master)),
        ("the secret (base64url)", b64(&master)),
        ("the JWT key (hex)", hex::encode(jwt_key(&dir))),
    ];
    for (what, needle) in forbidden {
        assert!(!text.contains(&needle), "{what} is in the log");
    }
    assert!(
        !log_path.exists()
            || !std::fs::read(&log_path)
                .unwrap()
                .windows(32)
                .any(|w| w == master),
        "the raw secret is in the log"
    );
}

#[test]
fn session_tokens_accept_only_valid_hs256() {
    let s = Server::start(&[]);
    let t = s.tenant("jwt@example.com");
    let other = s.tenant("jwt-other@example.com");
    let me = s.get("/api/v1/auth/me", &t.token).json();
    let account = me["account_id"].as_str().unwrap().to_owned();
    let key = jwt_key(&s.dir);
    let now = now_secs();
    let hs256 = json!({"alg": "HS256", "typ": "JWT"});
    let claims = json!({"sub": account, "iat": now, "exp": now + 600});
    // Control: a token made the way the server makes them is accepted, so the refusals
    // below are about the one thing each case changes.
    let good = forge(hmac::HMAC_SHA256, &key, &hs256, &claims);
    assert_eq!(s.get("/api/v1/auth/me", &good).status, 200);

    let parts: Vec<&str> = t.token.split('.').collect();
    let none_header = b64(br#"{"alg":"none","typ":"JWT"}"#);
    let other_sub = json!({"sub": "acc_someone_else", "iat": now, "exp": now + 600});
    let mut forged = vec![
        (
            "alg none, no signature",
            format!("{none_header}.{}.", parts[1]),
        ),
        (
            "alg none, real signature",
            format!("{none_header}.{}.{}", parts[1], parts[2]),
        ),
        (
            "alg None",
            format!("{}.{}.", b64(br#"{"alg":"None"}"#), parts[1]),
        ),
        (
            "no alg",
            format!("{}.{}.{}", b64(br#"{"typ":"JWT"}"#), parts[1], parts[2]),
        ),
        (
            "alg HS512 signed with the real key",
            forge(
                hmac::HMAC_SHA512,
                &key,
                &json!({"alg": "HS512", "typ": "JWT"}),
                &claims,
            ),
        ),
        (
            "alg HS384 signed with the real key",
            forge(
                hmac::HMAC_SHA384,
                &key,
                &json!({"alg": "HS384", "typ": "JWT"}),
                &claims,
            ),
        ),
        (
            "alg RS256",
            format!(
                "{}.{}.{}",
                b64(br#"{"alg":"RS256","typ":"JWT"}"#),
                parts[1],
                parts[2]
            ),
        ),
        (
            "modified payload, old signature",
            format!(
                "{}.{}.{}",
                parts[0],
                b64(other_sub.to_string().as_bytes()),
                parts[2]
            ),
        ),
        (
            "another account's payload, old signature",
            format!(
                "{}.{}.{}",
                parts[0],
                other.token.split('.').nth(1).unwrap(),
                parts[2]
            ),
        ),
        (
            "expired, validly signed",
            forge(
                hmac::HMAC_SHA256,
                &key,
                &hs256,
                &json!({"sub": account, "iat": now - 7200, "exp": now - 3600}),
            ),
        ),
        (
            "expires now, validly signed",
            forge(
                hmac::HMAC_SHA256,
                &key,
                &hs256,
                &json!({"sub": account, "iat": now - 3600, "exp": now - 1}),
            ),
        ),
        (
            "signed with another key",
            forge(hmac::HMAC_SHA256, &[7u8; 32], &hs256, &claims),
        ),
        (
            "truncated signature",
            t.token[..t.token.len() - 4].to_owned(),
        ),
        ("four parts", format!("{}.x", t.token)),
    ];
    let mut bad_sig = t.token.clone().into_bytes();
    let last = bad_sig.len() - 2;
    bad_sig[last] = if bad_sig[last] == b'A' { b'B' } else { b'A' };
    forged.push(("flipped signature", String::from_utf8(bad_sig).unwrap()));
    let mut messages = Vec::new();
    for (what, token) in &forged {
        for path in ["/api/v1/auth/me", "/api/v1/projects"] {
            let r = s.get(path, token);
            assert_eq!(r.status, 401, "{what} on {path}: {}", r.text());
            r.expect_error(401, "unauthenticated");
            messages.push(r.json()["error"]["message"].clone());
        }
    }
    messages.dedup();
    assert_eq!(messages.len(), 1, "refusals differ: {messages:?}");
}

fn walk(dir: &Path, bad: &mut Vec<String>, seen: &mut Vec<String>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let meta = std::fs::symlink_metadata(e.path()).unwrap();
        let mode = meta.permissions().mode() & 0o777;
        seen.push(e.path().display().to_string());
        if meta.is_dir() {
            if mode != 0o700 {
                bad.push(format!("{} {mode:o}", e.path().display()));
            }
            walk(&e.path(), bad, seen);
        } else if mode != 0o600 {
            bad.push(format!("{} {mode:o}", e.path().display()));
        }
    }
}

#[test]
fn data_directory_is_private() {
    let mut s = Server::start(&["--seal-rows", "5"]);
    let t = s.tenant("perm@example.com");
    let logs: Vec<Value> = (0..20)
        .map(|i| log(i, &format!("permission check {i}")))
        .collect();
    let r = s.post("/api/v1/ingest/batch", &t.key, &json!({ "logs": logs }));
    assert_eq!(r.status, 202, "{}", r.text());
    let mut found = false;
    for _ in 0..200 {
        let r = s.get("/api/v1/logs/search?q=permission", &t.key);
        assert_eq!(r.status, 200, "{}", r.text());
        if r.json()["logs"].as_array().unwrap().len() == 20 {
            found = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(found, "the logs never became searchable");
    let dir = s.dir.clone();
    assert!(s.stop().success());
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "the data directory itself");
    let (mut bad, mut seen) = (Vec::new(), Vec::new());
    walk(&dir, &mut bad, &mut seen);
    // The walk covered every kind of file: WAL, sealed segments, the index, metadata.
    for part in [
        "/wal/",
        "/segments/",
        "/index/",
        "meta.redb",
        "server.secret",
    ] {
        assert!(
            seen.iter().any(|p| p.contains(part)),
            "no {part} in the data directory: {seen:#?}"
        );
    }
    assert!(
        bad.is_empty(),
        "not private (want files 600, dirs 700):\n{}",
        bad.join("\n")
    );
}
