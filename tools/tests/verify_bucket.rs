//! `ledgerctl verify s3://…` against a real S3-protocol server process (Moto): a whole
//! bucket passes; a damaged and a missing object are each named, and the exit code is 1.

use std::process::Command;

use ledger_engine::{AppendOptions, Engine, EngineConfig, FsyncPolicy};
use ledger_tier::testing::S3Server;
use ledger_tier::{Uploader, UploaderConfig};

fn ledgerctl_verify(s3: &S3Server, url: &str) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ledgerctl"))
        .args(["verify", url])
        .envs(s3.vars())
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn verify_names_each_damaged_or_missing_object_in_the_bucket() {
    let Some(s3) = S3Server::start() else { return };
    let bucket = s3.bucket("checked", "node");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("server.secret"), [1u8; 32]).unwrap();
    let config = EngineConfig {
        seal_rows: 200,
        fsync: FsyncPolicy::Never,
        search: false,
        ..EngineConfig::default()
    };
    let (engine, _) = Engine::open(dir.path(), config).unwrap();
    let mut g = ledger_loggen::LogGen::new(3, ledger_engine::now_micros());
    for _ in 0..6 {
        engine
            .append(7, g.batch(100), AppendOptions::default())
            .unwrap();
    }
    engine.flush().unwrap();
    let mut up = Uploader::new(
        bucket.clone(),
        engine.clone(),
        UploaderConfig {
            data_dir: dir.path().to_owned(),
            staging: dir.path().join("tier"),
            backlog_budget: 0,
        },
        Box::new(|to| std::fs::write(to, b"meta").map_err(|e| e.to_string())),
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(up.round()).unwrap();
    let m = up.manifest().unwrap().clone();
    assert!(!m.segments.is_empty());

    let url = "s3://checked/node";
    let (ok, text) = ledgerctl_verify(&s3, url);
    assert!(ok, "{text}");
    assert!(text.contains("600 logs"), "{text}");
    assert!(text.trim_end().ends_with("ok"), "{text}");

    let (damaged, missing) = (&m.segments[0].blob.key, &m.catalog.key);
    rt.block_on(bucket.put(damaged, bytes::Bytes::from_static(b"garbage")))
        .unwrap();
    rt.block_on(bucket.delete(missing)).unwrap();
    let (ok, text) = ledgerctl_verify(&s3, url);
    assert!(!ok, "{text}");
    assert!(
        text.contains(&format!("damaged: {url}/{damaged}: 7 bytes")),
        "{text}"
    );
    assert!(
        text.contains(&format!("damaged: {url}/{missing}: missing")),
        "{text}"
    );
    assert!(text.contains("2 of"), "{text}");

    let (ok, text) = ledgerctl_verify(&s3, "s3://checked/nothing-here");
    assert!(!ok);
    assert!(text.contains("holds no Ledger manifest"), "{text}");
    engine.close().unwrap();
}
