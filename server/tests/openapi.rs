//! The OpenAPI document: valid OpenAPI 3.1 (checked by `openapi-spec-validator`), and the
//! server conforms to it under Schemathesis (schema-driven fuzzing of every operation with
//! real credentials and ids): no 5xx, every status, content type and body as documented.
//! Both tools are PyPI packages that `.ci/run` installs; under CI=true a missing one fails.
//!
//! `LEDGER_SCHEMATHESIS_EXAMPLES` (default 25) sets the examples per operation; the long
//! run is e.g. `LEDGER_SCHEMATHESIS_EXAMPLES=500 cargo test -p ledger-server --test openapi`.

mod common;

use std::process::Command;

use common::{log, Server};
use serde_json::{json, Value};

fn tool(name: &str, package: &str) -> bool {
    let found = Command::new(name)
        .arg("--help")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI needs {name}: pip install {package}"
        );
        eprintln!("skipped: {name} is not installed (pip install {package})");
    }
    found
}

#[test]
fn the_document_is_valid_openapi_and_lists_every_route() {
    let s = Server::start(&[]);
    let r = s.get("/api/v1/openapi.json", "");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    let doc = r.json();
    assert_eq!(doc["openapi"], "3.1.0");
    for path in [
        "/api/v1/projects/{project_id}/deletions",
        "/api/v1/projects/{project_id}/rejected",
        "/otlp/v1/logs",
        "/{index}/_bulk",
        "/loki/api/v1/push",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} is not described");
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    // /docs renders it, from assets inside the binary.
    let page = s.get("/docs", "");
    assert_eq!(page.status, 200);
    assert!(page.text().contains("/docs/swagger-ui-bundle.js"));
    assert_eq!(
        s.get("/docs/", "").text(),
        page.text(),
        "the page with a slash"
    );
    assert!(page
        .header("content-security-policy")
        .unwrap()
        .contains("script-src 'self'"));
    let js = s.req(
        "GET",
        "/docs/swagger-ui-bundle.js",
        &[("accept-encoding", "identity")],
        b"",
    );
    assert_eq!(js.status, 200);
    assert!(js.text().contains("SwaggerUIBundle"));

    if !tool("openapi-spec-validator", "openapi-spec-validator") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, r.text()).unwrap();
    let out = Command::new("openapi-spec-validator")
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the document does not validate:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_server_conforms_to_its_document_under_schemathesis() {
    if !tool("st", "schemathesis") {
        return;
    }
    let s = Server::start(&[]);
    let t = s.tenant("schemathesis@example.com");
    // Real data for the operations to reach: logs, an error, a rejected item, a deletion.
    let mut err = log(1, "boom 42");
    err["level"] = json!("error");
    err["error_type"] = json!("ValueError");
    let r = s.post(
        "/api/v1/ingest/batch",
        &t.key,
        &json!({"logs": [log(0, "hello"), err, {"level": "nope"}]}),
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let log_id = r.json()["ids"][0].as_str().unwrap().to_owned();
    let r = s.post(
        &format!("/api/v1/projects/{}/deletions", t.project),
        &t.token,
        &json!({"service": "none"}),
    );
    let deletion = r.json()["id"].as_str().unwrap().to_owned();
    // Throwaway targets for the destructive operations, so they do not take the
    // credentials the rest of the run uses.
    let r = s.post("/api/v1/projects", &t.token, &json!({"name": "throwaway"}));
    let throwaway = r.json()["id"].as_str().unwrap().to_owned();
    let r = s.post(
        &format!("/api/v1/projects/{}/keys", t.project),
        &t.token,
        &json!({"name": "throwaway", "scopes": ["query"]}),
    );
    let throwaway_key = r.json()["id"].as_str().unwrap().to_owned();

    // Room for thousands of requests a minute.
    let r = s.patch(
        &format!("/api/v1/projects/{}", t.project),
        &t.token,
        &json!({"rate_limit_per_minute": 1_000_000, "rate_limit_per_hour": 100_000_000}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let examples = std::env::var("LEDGER_SCHEMATHESIS_EXAMPLES").unwrap_or_else(|_| "25".into());
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("schemathesis.toml");
    let toml = format!(
        r#"
headers = {{ Authorization = "Bearer {token}" }}

[parameters]
project_id = "{project}"
id = "{log_id}"
deletion_id = "{deletion}"
key_id = "{throwaway_key}"
index = "app"
asset = "init.js"

[[operations]]
include-path = "/api/v1/projects/{{project_id}}"
include-method = "DELETE"
parameters = {{ project_id = "{throwaway}" }}

[[operations]]
include-path = "/api/v1/projects/{{project_id}}"
include-method = "PATCH"
parameters = {{ project_id = "{throwaway}" }}

[[operations]]
include-path = "/api/v1/projects/{{project_id}}/deletions"
include-method = "POST"
parameters = {{ project_id = "{throwaway}" }}

[[operations]]
include-tag = "ingest"
headers = {{ Authorization = "Bearer {key}" }}

[[operations]]
include-tag = "shippers"
headers = {{ Authorization = "Bearer {key}" }}
"#,
        token = t.token,
        project = t.project,
        key = t.key,
    );
    std::fs::write(&config, toml).unwrap();
    let url = format!("http://{}/api/v1/openapi.json", s.addr);
    let out = Command::new("st")
        .arg("--config-file")
        .arg(&config)
        .args([
            "run",
            &url,
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance",
            // The live tail streams for up to an hour: it has its own tests.
            "--exclude-path",
            "/api/v1/logs/tail",
            "--max-examples",
            &examples,
            // One worker: Hypothesis's lambda-source cache is not thread-safe and, with two,
            // now and then fails a run with an internal "AST constructor recursion" error.
            "--workers",
            "1",
            "--seed",
            "1",
        ])
        .output()
        .expect("run schemathesis");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let tail = &text[text.len().saturating_sub(20_000)..];
    assert!(out.status.success(), "schemathesis found problems:\n{tail}");
    assert!(text.contains("passed"), "{text}");
    // The server is still up and answering.
    let r = s.get(&format!("/api/v1/logs/{log_id}"), &t.key);
    let v: Value = r.json();
    assert_eq!(v["id"], log_id, "{}", r.text());
}
