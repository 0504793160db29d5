//! `--object-store` through the real binary against a real S3-protocol server process
//! (Moto): a writer's sealed logs, accounts and keys reach the bucket; its disk is lost;
//! a fresh writer on an empty directory rebuilds from the bucket and answers as before.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::Server;
use ledger_tier::testing::S3Server;
use serde_json::json;

fn env(s3: &S3Server) -> Vec<(String, String)> {
    s3.vars()
}

fn start(s3: &S3Server, dir: &std::path::Path, url: &str) -> Server {
    let vars = env(s3);
    let env: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Server::start_in_with_env(
        dir,
        &[
            "--object-store",
            url,
            "--upload-interval-secs",
            "1",
            "--seal-age-secs",
            "1",
            "--seal-rows",
            "400",
        ],
        &env,
    )
}

/// Every log of the project, through `/api/v1/logs` pages.
fn all_messages(s: &Server, key: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cursor = String::new();
    loop {
        let r = s.get(&format!("/api/v1/logs?limit=1000&order=asc{cursor}"), key);
        assert_eq!(r.status, 200, "{}", r.text());
        let body = r.json();
        out.extend(
            body["logs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l["message"].as_str().unwrap().to_owned()),
        );
        match body["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => return out,
        }
    }
}

#[test]
fn a_fresh_writer_on_the_bucket_loses_nothing_sealed() {
    let Some(s3) = S3Server::start() else { return };
    s3.create_bucket("ledger");
    let url = "s3://ledger/writer-a";
    let tmp = tempfile::tempdir().unwrap();
    let mut w = start(&s3, &tmp.path().join("a"), url);
    let t = w.tenant("tiered@example.com");
    let mut sent = Vec::new();
    for b in 0..5u64 {
        let logs: Vec<_> = (0..400)
            .map(|i| {
                let m = format!("tiered b{b} i{i} token{}", i % 7);
                sent.push(m.clone());
                common::log(b * 1000 + i, &m)
            })
            .collect();
        let r = w.post("/api/v1/ingest/batch", &t.key, &json!({ "logs": logs }));
        assert_eq!(r.status, 202, "{}", r.text());
    }

    // Within seconds everything is sealed and in a published manifest.
    let bucket = ledger_tier::Bucket::open_with(url, &env(&s3)).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let v = rt.block_on(ledger_tier::verify(&bucket));
        if matches!(&v, Ok(r) if r.rows == 2_000 && r.damaged.is_empty()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "bucket never held all 2,000 logs: {v:?}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let deep = w.get("/health/deep", "").json();
    let os = &deep["checks"]["object_store"];
    assert_eq!(os["status"], "ok", "{deep}");
    assert!(os["manifest_generation"].as_u64().unwrap() >= 1, "{deep}");
    let metrics = w.get("/metrics", "").text();
    assert!(
        metrics.contains("ledger_object_store_uploaded_segments_total"),
        "{metrics}"
    );

    // The writer's disk is lost.
    w.kill9();
    std::fs::remove_dir_all(tmp.path().join("a")).unwrap();

    // A fresh writer on an empty directory rebuilds from the bucket: the account logs in,
    // the API key works, every sealed log is there, search finds them.
    let fresh = start(&s3, &tmp.path().join("b"), url);
    let r = fresh.post(
        "/api/v1/auth/login",
        "",
        &json!({"email": "tiered@example.com", "password": "correct horse battery"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let mut got = all_messages(&fresh, &t.key);
    got.sort();
    sent.sort();
    assert_eq!(got.len(), sent.len());
    assert_eq!(got, sent);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = fresh.get("/api/v1/logs/search?q=token3&limit=1000", &t.key);
        assert_eq!(r.status, 200, "{}", r.text());
        let n = r.json()["logs"].as_array().unwrap().len();
        // 400 per batch, i % 7 == 3: 57 per batch.
        if n == 5 * 57 {
            break;
        }
        assert!(Instant::now() < deadline, "search found {n} of {}", 5 * 57);
        std::thread::sleep(Duration::from_millis(300));
    }
    // And it goes on writing to the same bucket.
    let r = fresh.post(
        "/api/v1/ingest/batch",
        &t.key,
        &json!({ "logs": [common::log(1, "after the rebuild")] }),
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let deadline = Instant::now() + Duration::from_secs(60);
    while rt.block_on(ledger_tier::verify(&bucket)).unwrap().rows != 2_001 {
        assert!(
            Instant::now() < deadline,
            "the rebuilt writer never uploaded"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn a_bad_object_store_url_stops_the_server_with_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ledger"))
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(tmp.path())
        .args(["--object-store", "gs://elsewhere/x"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("only s3://bucket/prefix is supported"),
        "{err}"
    );
}

fn start_reader(s3: &S3Server, dir: &std::path::Path, url: &str) -> Server {
    let vars = env(s3);
    let env: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Server::start_in_with_env(
        dir,
        &[
            "--role",
            "reader",
            "--object-store",
            url,
            "--follow-interval-secs",
            "1",
        ],
        &env,
    )
}

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn two_readers_follow_one_writer_and_refuse_writes() {
    let Some(s3) = S3Server::start() else { return };
    s3.create_bucket("shared");
    let url = "s3://shared/w";
    let tmp = tempfile::tempdir().unwrap();
    let w = start(&s3, &tmp.path().join("w"), url);
    let t = w.tenant("reader@example.com");
    let batch = |from: u64, word: &str| {
        let logs: Vec<_> = (from..from + 300)
            .map(|i| common::log(i, &format!("{word} line {i}")))
            .collect();
        let r = w.post("/api/v1/ingest/batch", &t.key, &json!({ "logs": logs }));
        assert_eq!(r.status, 202, "{}", r.text());
    };
    batch(0, "first");
    let bucket = ledger_tier::Bucket::open_with(url, &env(&s3)).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    wait_for("the first 300 logs in the bucket", || {
        rt.block_on(ledger_tier::verify(&bucket))
            .is_ok_and(|r| r.rows == 300)
    });

    let readers = [
        start_reader(&s3, &tmp.path().join("r1"), url),
        start_reader(&s3, &tmp.path().join("r2"), url),
    ];
    for r in &readers {
        assert_eq!(all_messages(r, &t.key).len(), 300);
        let login = r.post(
            "/api/v1/auth/login",
            "",
            &json!({"email": "reader@example.com", "password": "correct horse battery"}),
        );
        assert_eq!(login.status, 200, "{}", login.text());
        let s = r.get("/api/v1/logs/search?q=first&limit=1000", &t.key);
        assert_eq!(s.status, 200, "{}", s.text());
        let v = r.get("/api/v1/metrics/log-volume?hours=72", &t.key);
        assert_eq!(v.status, 200, "{}", v.text());
        // Writes are refused, naming the role.
        let refused = r.post(
            "/api/v1/ingest/batch",
            &t.key,
            &json!({ "logs": [common::log(1, "to a reader")] }),
        );
        refused.expect_error(403, "forbidden");
        assert!(refused.text().contains("reader"), "{}", refused.text());
        let deep = r.get("/health/deep", "").json();
        assert_eq!(deep["checks"]["object_store"]["role"], "reader", "{deep}");
    }

    // A live tail on a reader sees logs as their segment arrives.
    let mut tail = std::net::TcpStream::connect(&readers[0].addr).unwrap();
    tail.set_read_timeout(Some(Duration::from_millis(250)))
        .unwrap();
    write!(
        tail,
        "GET /api/v1/logs/tail HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\r\n",
        t.key
    )
    .unwrap();
    let mut seen = Vec::new();
    let mut read_until = |needle: &str| {
        let deadline = Instant::now() + Duration::from_secs(90);
        let mut buf = [0u8; 16 << 10];
        while !String::from_utf8_lossy(&seen).contains(needle) {
            assert!(
                Instant::now() < deadline,
                "the reader's tail never showed {needle:?}"
            );
            if let Ok(n) = tail.read(&mut buf) {
                seen.extend_from_slice(&buf[..n]);
            }
        }
    };
    read_until("text/event-stream");

    // New logs and a new key on the writer reach both readers.
    batch(300, "second");
    let k2 = w.post(
        &format!("/api/v1/projects/{}/keys", t.project),
        &t.token,
        &json!({"name": "later", "scopes": ["query"]}),
    );
    assert_eq!(k2.status, 201, "{}", k2.text());
    let k2 = k2.json()["key"].as_str().unwrap().to_owned();
    read_until("second line 599");
    for r in &readers {
        wait_for("the reader to serve 600 logs", || {
            all_messages(r, &t.key).len() == 600
        });
        wait_for("the new key on the reader", || {
            r.get("/api/v1/logs?limit=1", &k2).status == 200
        });
        wait_for("search on the reader to find the new logs", || {
            let s = r.get("/api/v1/logs/search?q=second&limit=1000", &t.key);
            s.status == 200 && s.json()["logs"].as_array().unwrap().len() == 300
        });
    }
}
