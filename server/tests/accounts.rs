//! Accounts and sessions against the real binary: register, login, me, audit, throttling.

mod common;

use common::Server;
use serde_json::json;

const PW: &str = "correct horse battery";

#[test]
fn register_login_me_and_audit() {
    let s = Server::start(&[]);
    let r = s.post(
        "/api/v1/auth/register",
        "",
        &json!({"email": "Ana@Example.com", "password": PW}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let j = r.json();
    let account = j["account_id"].as_str().unwrap().to_owned();
    assert!(j["token"].as_str().unwrap().split('.').count() == 3);
    assert!(j["expires_at"].as_str().unwrap().ends_with('Z'));

    let r = s.post(
        "/api/v1/auth/login",
        "",
        &json!({"email": "ana@example.com", "password": PW}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["account_id"], account.as_str());
    let token = r.json()["token"].as_str().unwrap().to_owned();

    let r = s.get("/api/v1/auth/me", &token);
    assert_eq!(r.status, 200);
    // As registered: the lower-case form only finds the account.
    assert_eq!(r.json()["email"], "Ana@Example.com");
    assert_eq!(r.json()["account_id"], account.as_str());
    assert!(r.json()["created_at"].is_string());

    s.post(
        "/api/v1/auth/login",
        "",
        &json!({"email": "ana@example.com", "password": "wrong password!"}),
    )
    .expect_error(401, "unauthenticated");
    let r = s.get("/api/v1/audit", &token);
    assert_eq!(r.status, 200);
    let events = r.json()["events"].as_array().unwrap().clone();
    let actions: Vec<&str> = events
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    // The failed login is written in the background; it may or may not be there yet.
    assert!(actions.ends_with(&["login", "register"]), "{actions:?}");
    assert_eq!(events[events.len() - 1]["source"], "127.0.0.1");
    assert!(events[0]["at"].is_string());

    // Paging: one at a time, newest first, until next_cursor is null.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let r = s.get(&format!("/api/v1/audit?limit=1&cursor={cursor}"), &token);
        assert_eq!(r.status, 200);
        let j = r.json();
        seen.push(j["events"][0]["action"].as_str().unwrap().to_owned());
        match j["next_cursor"].as_str() {
            Some(c) => cursor = c.to_owned(),
            None => break,
        }
    }
    assert_eq!(seen.last().map(String::as_str), Some("register"));
    s.get("/api/v1/audit?limit=0", &token)
        .expect_error(400, "invalid_query");
}

#[test]
fn registration_rules() {
    let s = Server::start(&[]);
    let reg = |body: serde_json::Value| s.post("/api/v1/auth/register", "", &body);
    reg(json!({"email": "a@b.co", "password": "short"})).expect_error(400, "invalid_field");
    reg(json!({"email": "not-an-email", "password": PW})).expect_error(400, "invalid_field");
    reg(json!({"email": 5, "password": PW})).expect_error(400, "invalid_field");
    reg(json!({"password": PW})).expect_error(400, "missing_field");
    reg(json!({"email": "a@b.co"})).expect_error(400, "missing_field");
    s.req(
        "POST",
        "/api/v1/auth/register",
        &[("Content-Type", "application/json")],
        b"{nope",
    )
    .expect_error(400, "invalid_json");
    s.req(
        "POST",
        "/api/v1/auth/register",
        &[("Content-Type", "text/plain")],
        b"{}",
    )
    .expect_error(415, "unsupported_media_type");
    assert_eq!(reg(json!({"email": "a@b.co", "password": PW})).status, 201);
    reg(json!({"email": "A@B.CO", "password": PW})).expect_error(409, "conflict");
}

#[test]
fn every_bad_credential_gets_the_same_401() {
    let s = Server::start(&[]);
    let t = s.tenant("a@b.co");
    let (h, p, sig) = {
        let mut it = t.token.split('.');
        (it.next().unwrap(), it.next().unwrap(), it.next().unwrap())
    };
    let none_alg = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{p}.");
    let tampered = format!("{h}.{p}x.{sig}");
    let unknown_key = format!("ledger_{}", "A".repeat(32));
    let mut messages = Vec::new();
    for cred in [
        "",
        "garbage",
        &none_alg,
        &tampered,
        &unknown_key,
        "ledger_short",
    ] {
        let r = s.get("/api/v1/auth/me", cred);
        r.expect_error(401, "unauthenticated");
        messages.push(r.json()["error"]["message"].clone());
    }
    let r = s.req(
        "GET",
        "/api/v1/auth/me",
        &[("Authorization", "Basic YTpi")],
        b"",
    );
    r.expect_error(401, "unauthenticated");
    messages.push(r.json()["error"]["message"].clone());
    let r = s.req(
        "GET",
        "/api/v1/logs",
        &[("X-API-Key", unknown_key.as_str())],
        b"",
    );
    r.expect_error(401, "unauthenticated");
    messages.push(r.json()["error"]["message"].clone());
    messages.dedup();
    assert_eq!(messages.len(), 1, "{messages:?}");
    // An API key is a valid credential, but not for account routes.
    s.get("/api/v1/auth/me", &t.key)
        .expect_error(403, "forbidden");
}

fn register(s: &Server, email: &str) {
    let r = s.post(
        "/api/v1/auth/register",
        "",
        &json!({"email": email, "password": PW}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
}

fn login(s: &Server, email: &str, password: &str) -> common::Resp {
    s.post(
        "/api/v1/auth/login",
        "",
        &json!({"email": email, "password": password}),
    )
}

#[test]
fn failed_logins_are_throttled_per_email() {
    let s = Server::start(&["--login-max-failures", "3"]);
    register(&s, "a@b.co");
    for _ in 0..3 {
        login(&s, "a@b.co", "wrong wrong wrong").expect_error(401, "unauthenticated");
    }
    // Even the right password is refused while throttled.
    let r = login(&s, "a@b.co", PW);
    r.expect_error(429, "rate_limited");
    let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=900).contains(&wait), "{wait}");
    login(&s, "A@B.co", PW).expect_error(429, "rate_limited");
}

#[test]
fn failures_for_other_emails_from_one_address_do_not_lock_an_account_out() {
    let s = Server::start(&[
        "--login-max-failures",
        "3",
        "--login-max-failures-per-address",
        "8",
    ]);
    register(&s, "ok@b.co");
    // Seven failures from this address, none past its email's limit of 3: a login to
    // another account from the same address still succeeds.
    for i in 0..7 {
        login(&s, &format!("nobody{}@b.co", i % 3), "wrong wrong wrong")
            .expect_error(401, "unauthenticated");
    }
    assert_eq!(login(&s, "ok@b.co", PW).status, 200);
    // The eighth uses up the address's allowance: then every login from it waits.
    login(&s, "nobody9@b.co", "wrong wrong wrong").expect_error(401, "unauthenticated");
    let r = login(&s, "ok@b.co", PW);
    r.expect_error(429, "rate_limited");
    assert!(r.header("retry-after").is_some());
}
