//! Projects and API keys: CRUD, defaults, validation, revocation, and tenant isolation.

mod common;

use common::{log, Server};
use serde_json::json;

#[test]
fn project_crud_with_defaults() {
    let s = Server::start(&[]);
    let t = s.tenant("a@b.co");
    let r = s.get(&format!("/api/v1/projects/{}", t.project), &t.token);
    assert_eq!(r.status, 200);
    let p = r.json();
    assert_eq!(p["name"], "app");
    assert_eq!(p["retention_days"], 30);
    assert_eq!(p["daily_quota"], 1_000_000);
    assert_eq!(p["rate_limit_per_minute"], 1_000);
    assert_eq!(p["rate_limit_per_hour"], 50_000);
    assert_eq!(p["max_queue_depth"], 100_000);
    assert!(p["created_at"].is_string());
    let id = p["id"].as_str().unwrap();
    assert!(
        id.len() == 16
            && id
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );

    let r = s.post(
        "/api/v1/projects",
        &t.token,
        &json!({"name": "second", "retention_days": 7, "daily_quota": 10, "rate_limit_per_minute": 5,
                "rate_limit_per_hour": 50, "max_queue_depth": 3}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let second = r.json();
    assert_eq!(second["retention_days"], 7);
    assert_eq!(second["max_queue_depth"], 3);
    let sid = second["id"].as_str().unwrap();

    let r = s.get("/api/v1/projects", &t.token);
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["projects"].as_array().unwrap().len(), 2);

    let r = s.patch(
        &format!("/api/v1/projects/{sid}"),
        &t.token,
        &json!({"name": "renamed", "daily_quota": 99}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["name"], "renamed");
    assert_eq!(r.json()["daily_quota"], 99);
    assert_eq!(r.json()["retention_days"], 7);
    assert_eq!(
        s.get(&format!("/api/v1/projects/{sid}"), &t.token).json()["daily_quota"],
        99
    );

    assert_eq!(
        s.delete(&format!("/api/v1/projects/{sid}"), &t.token)
            .status,
        204
    );
    s.get(&format!("/api/v1/projects/{sid}"), &t.token)
        .expect_error(404, "not_found");
    assert_eq!(
        s.get("/api/v1/projects", &t.token).json()["projects"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn project_validation() {
    let s = Server::start(&[]);
    let t = s.tenant("a@b.co");
    let post = |b: serde_json::Value| s.post("/api/v1/projects", &t.token, &b);
    post(json!({})).expect_error(400, "missing_field");
    post(json!({"name": ""})).expect_error(400, "invalid_field");
    post(json!({"name": 3})).expect_error(400, "invalid_field");
    post(json!({"name": "x", "retention_days": 0})).expect_error(400, "invalid_field");
    post(json!({"name": "x", "retention_days": -1})).expect_error(400, "invalid_field");
    post(json!({"name": "x", "daily_quota": "many"})).expect_error(400, "invalid_field");
    post(json!({"name": "x", "rate_limit_per_minute": 1.5})).expect_error(400, "invalid_field");
    post(json!({"name": "x", "retention_day": 3})).expect_error(400, "invalid_field");
    s.patch(
        &format!("/api/v1/projects/{}", t.project),
        &t.token,
        &json!({"max_queue_depth": -5}),
    )
    .expect_error(400, "invalid_field");
    s.get("/api/v1/projects/not-a-project-id", &t.token)
        .expect_error(404, "not_found");
    s.get("/api/v1/projects", &t.key)
        .expect_error(403, "forbidden");
    s.get("/api/v1/projects", "")
        .expect_error(401, "unauthenticated");
}

#[test]
fn keys_are_listed_without_secret_and_revocation_applies_at_once() {
    let s = Server::start(&[]);
    let t = s.tenant("a@b.co");
    let keys_path = format!("/api/v1/projects/{}/keys", t.project);
    let r = s.post(
        &keys_path,
        &t.token,
        &json!({"name": "reader", "scopes": ["query"]}),
    );
    assert_eq!(r.status, 201);
    let k = r.json();
    let key = k["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("ledger_") && key.len() == 39);
    assert!(key[7..].bytes().all(|b| b.is_ascii_alphanumeric()));
    assert!(key.starts_with(k["prefix"].as_str().unwrap()));
    assert_eq!(k["scopes"], json!(["query"]));

    assert_eq!(s.get("/api/v1/logs", &key).status, 200);
    let r = s.get(&keys_path, &t.token);
    assert_eq!(r.status, 200);
    let listed = r.json()["keys"].as_array().unwrap().clone();
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().all(|k| k.get("key").is_none()));
    let reader = listed.iter().find(|x| x["id"] == k["id"]).unwrap();
    assert!(reader["last_used_at"].is_string(), "{reader}");
    assert!(reader["revoked_at"].is_null());

    // A query-only key cannot ingest.
    s.post("/api/v1/ingest/single", &key, &log(1, "x"))
        .expect_error(403, "forbidden");

    let kid = k["id"].as_str().unwrap();
    assert_eq!(
        s.delete(&format!("{keys_path}/{kid}"), &t.token).status,
        204
    );
    s.get("/api/v1/logs", &key)
        .expect_error(401, "unauthenticated");
    let listed = s.get(&keys_path, &t.token).json()["keys"]
        .as_array()
        .unwrap()
        .clone();
    let reader = listed.iter().find(|x| x["id"] == k["id"]).unwrap();
    assert!(reader["revoked_at"].is_string());
    s.delete(&format!("{keys_path}/key_nope"), &t.token)
        .expect_error(404, "not_found");

    let bad = |b: serde_json::Value| s.post(&keys_path, &t.token, &b);
    bad(json!({"name": "x"})).expect_error(400, "missing_field");
    bad(json!({"scopes": ["query"]})).expect_error(400, "missing_field");
    bad(json!({"name": "x", "scopes": ["admin"]})).expect_error(400, "invalid_field");
    bad(json!({"name": "x", "scopes": []})).expect_error(400, "invalid_field");
    bad(json!({"name": "x", "scopes": "query"})).expect_error(400, "invalid_field");
}

#[test]
fn deleting_a_project_revokes_its_keys_and_removes_its_logs() {
    let s = Server::start(&[]);
    let t = s.tenant("a@b.co");
    assert_eq!(
        s.post("/api/v1/ingest/single", &t.key, &log(1, "x")).status,
        202
    );
    assert_eq!(
        s.delete(&format!("/api/v1/projects/{}", t.project), &t.token)
            .status,
        204
    );
    s.get("/api/v1/logs", &t.key)
        .expect_error(401, "unauthenticated");
    s.post("/api/v1/ingest/single", &t.key, &log(2, "y"))
        .expect_error(401, "unauthenticated");
    s.get(&format!("/api/v1/logs?project_id={}", t.project), &t.token)
        .expect_error(404, "not_found");
    s.delete(&format!("/api/v1/projects/{}", t.project), &t.token)
        .expect_error(404, "not_found");
}

#[test]
fn another_tenants_projects_and_keys_are_not_found() {
    let s = Server::start(&[]);
    let a = s.tenant("a@b.co");
    let b = s.tenant("b@b.co");
    let pa = format!("/api/v1/projects/{}", a.project);
    s.get(&pa, &b.token).expect_error(404, "not_found");
    s.patch(&pa, &b.token, &json!({"name": "mine"}))
        .expect_error(404, "not_found");
    s.delete(&pa, &b.token).expect_error(404, "not_found");
    s.get(&format!("{pa}/keys"), &b.token)
        .expect_error(404, "not_found");
    s.post(
        &format!("{pa}/keys"),
        &b.token,
        &json!({"name": "x", "scopes": ["query"]}),
    )
    .expect_error(404, "not_found");
    s.delete(&format!("{pa}/keys/{}", a.key_id), &b.token)
        .expect_error(404, "not_found");
    // B's own project path with A's key id: still not found.
    s.delete(
        &format!("/api/v1/projects/{}/keys/{}", b.project, a.key_id),
        &b.token,
    )
    .expect_error(404, "not_found");
    let list = s.get("/api/v1/projects", &b.token).json();
    assert_eq!(list["projects"].as_array().unwrap().len(), 1);
    assert_eq!(list["projects"][0]["id"], b.project.as_str());
    // A's audit log does not show B's actions.
    let audit = s.get("/api/v1/audit", &a.token).json();
    assert!(audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["project_id"].is_null() || e["project_id"] == a.project.as_str()));
    // And A is untouched.
    assert_eq!(s.get(&pa, &a.token).json()["name"], "app");
    assert_eq!(s.get("/api/v1/logs", &a.key).status, 200);
}
