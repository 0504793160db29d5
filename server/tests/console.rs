//! The web console against the real binary: its assets and security headers, and a person
//! using it end to end in a real headless Chromium (`tests/console/e2e.mjs`, driven by
//! playwright-core; Debian's `chromium` and `npm ci` in `tests/console/`, which `.ci/run`
//! installs). Under CI the browser test must run; elsewhere it says why it is skipped.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::Server;

fn page(s: &Server, path: &str, accept: &str) -> common::Resp {
    s.req("GET", path, &[("Accept", accept)], b"")
}

#[test]
fn the_console_is_served_from_the_binary_with_a_strict_policy() {
    let s = Server::start(&[]);
    let html = "text/html,application/xhtml+xml,*/*;q=0.8";
    for path in [
        "/",
        "/ui",
        "/ui/",
        "/ui/signin",
        "/ui/projects/0123456789abcdef/explore",
    ] {
        let r = page(&s, path, html);
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
        assert!(r.text().contains("/ui/assets/app.js"), "{path}");
        let csp = r.header("content-security-policy").expect("a policy");
        for part in [
            "default-src 'none'",
            "script-src 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(part), "{csp}");
        }
        assert!(!csp.contains("unsafe"), "{csp}");
        assert_eq!(r.header("x-frame-options"), Some("DENY"));
    }
    let js = page(&s, "/ui/assets/app.js", "*/*");
    assert_eq!(js.status, 200);
    assert_eq!(
        js.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    // Log text reaches the page as text only: the app never writes markup from data.
    assert!(!js.text().contains("innerHTML"));
    assert_eq!(page(&s, "/ui/assets/style.css", "*/*").status, 200);
    assert_eq!(page(&s, "/ui/assets/nope.js", "*/*").status, 404);
    // A client at / (no text/html) still gets Elasticsearch: its node info with a
    // credential, its own 401 without one; never the page.
    let t = s.tenant("console@example.com");
    let es = s.req(
        "GET",
        "/",
        &[
            ("Accept", "application/json"),
            ("Authorization", &format!("ApiKey {}", t.key)),
        ],
        b"",
    );
    assert_eq!(es.status, 200, "{}", es.text());
    assert!(es.json()["version"]["number"].is_string(), "{}", es.text());
    let anon = page(&s, "/", "application/json");
    assert_eq!(anon.status, 401);
    assert!(!anon.text().contains("app.js"));
    s.req("POST", "/ui/projects", &[], b"")
        .expect_error(405, "method_not_allowed");
}

fn e2e_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/console")
}

/// Why the browser test cannot run here, if it cannot.
fn missing() -> Option<String> {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !Path::new(&chromium).exists() {
        return Some(format!("{chromium} is missing (apt-get install chromium)"));
    }
    if !Command::new("node")
        .arg("--version")
        .status()
        .is_ok_and(|s| s.success())
    {
        return Some("node is missing".into());
    }
    if !e2e_dir().join("node_modules/playwright-core").exists() {
        return Some("playwright-core is missing (npm ci --prefix server/tests/console)".into());
    }
    None
}

#[test]
fn a_person_uses_the_console_end_to_end_in_chromium() {
    if let Some(why) = missing() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI must run the browser test: {why}"
        );
        eprintln!("skipped: {why}");
        return;
    }
    let s = Server::start(&["--tail-keepalive-secs", "1"]);
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let out = Command::new("node")
        .current_dir(e2e_dir())
        .arg("e2e.mjs")
        .arg(format!("http://{}", s.addr))
        .arg(&shots)
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.trim_end().ends_with("ok"),
        "the browser test failed:\n{stdout}\n{stderr}\nserver log:\n{}",
        s.log_text()
    );
}
