//! Tiering against a real S3-protocol server process (Moto): upload, publish, verify,
//! rebuild on an empty directory, retention deleting objects, damage named by verify, and
//! the bucket going away mid-ingest and coming back.

use std::collections::BTreeSet;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ledger_engine::{AppendOptions, Engine, EngineConfig, FsyncPolicy, LogId, Order, ScanRequest};
use ledger_tier::testing::S3Server;
use ledger_tier::{rebuild, verify, Bucket, Uploader, UploaderConfig};

const T0: i64 = 1_795_000_000_000_000;

fn config() -> EngineConfig {
    EngineConfig {
        seal_rows: 300,
        block_rows: 64,
        fsync: FsyncPolicy::Never,
        search: false,
        ..EngineConfig::default()
    }
}

fn ids(e: &Engine, project: u64) -> BTreeSet<LogId> {
    let mut out = BTreeSet::new();
    let mut req = ScanRequest {
        limit: 1000,
        order: Order::Asc,
        ..Default::default()
    };
    loop {
        let page = e.scan(project, &req).unwrap();
        out.extend(page.logs.iter().map(|r| r.id()));
        match page.next_cursor {
            Some(c) => req.cursor = Some(c),
            None => return out,
        }
    }
}

fn ingest(e: &Engine, project: u64, n: usize, seed: u64) -> BTreeSet<LogId> {
    let mut g = ledger_loggen::LogGen::new(seed, T0);
    let mut out = BTreeSet::new();
    for _ in 0..n / 100 {
        let acks = e
            .append(project, g.batch(100), AppendOptions::default())
            .unwrap();
        out.extend(acks.iter().map(|a| a.id));
    }
    out
}

/// A writer's data directory: an engine, a server secret and a stand-in metadata file (the
/// server's meta.redb is opaque to this crate).
fn writer(dir: &Path, bucket: Bucket, budget: u64) -> (Engine, Uploader) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("server.secret"), [7u8; 32]).unwrap();
    let (engine, _) = Engine::open(dir, config()).unwrap();
    let meta_src = dir.join("meta.redb");
    std::fs::write(&meta_src, b"accounts and keys").unwrap();
    let up = uploader(
        bucket,
        &engine,
        dir,
        budget,
        Box::new(move |to| {
            std::fs::copy(&meta_src, to)
                .map(drop)
                .map_err(|e| e.to_string())
        }),
    );
    (engine, up)
}

/// An uploader of `dir`'s engine to `bucket`, staging in `dir/tier`.
fn uploader(
    bucket: Bucket,
    engine: &Engine,
    dir: &Path,
    budget: u64,
    meta: ledger_tier::MetaSnapshot,
) -> Uploader {
    Uploader::new(
        bucket,
        engine.clone(),
        UploaderConfig {
            data_dir: dir.to_owned(),
            staging: dir.join("tier"),
            backlog_budget: budget,
        },
        meta,
    )
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn sealed_segments_reach_the_bucket_and_a_fresh_directory_is_rebuilt_from_it() {
    let Some(s3) = S3Server::start() else { return };
    let rt = rt();
    let bucket = s3.bucket("ledger", "node-a");
    let dir = tempfile::tempdir().unwrap();
    let (engine, mut up) = writer(dir.path(), bucket.clone(), 0);
    let mut acked = ingest(&engine, 1, 2_000, 1);
    let acked2 = ingest(&engine, 2, 700, 2);
    engine.flush().unwrap();

    let r = rt.block_on(up.round()).unwrap();
    let segments = engine.stats().segments;
    assert!(segments >= 2, "{segments} segments");
    assert_eq!(r.uploaded_segments, segments);
    assert_eq!(r.published, Some(1));
    let again = rt.block_on(up.round()).unwrap();
    assert_eq!(
        (again.uploaded_segments, again.published),
        (0, None),
        "nothing new, nothing sent"
    );

    let report = rt.block_on(verify(&bucket)).unwrap();
    assert!(report.damaged.is_empty(), "{:?}", report.damaged);
    assert_eq!(report.rows, 2_700);
    assert_eq!(report.segments, segments);

    // More logs: only the new segments go up, under a new generation.
    acked.extend(ingest(&engine, 1, 500, 3));
    engine.flush().unwrap();
    let r = rt.block_on(up.round()).unwrap();
    assert_eq!(r.uploaded_segments, engine.stats().segments - segments);
    assert_eq!(r.published, Some(2));

    // The disk is lost: a new directory is rebuilt from the bucket and holds every log.
    let fresh = tempfile::tempdir().unwrap();
    let rebuilt = rt
        .block_on(rebuild(&bucket, fresh.path()))
        .unwrap()
        .unwrap();
    assert_eq!(rebuilt.generation, 2);
    assert_eq!(rebuilt.rows, 3_200);
    assert_eq!(
        std::fs::read(fresh.path().join("server.secret")).unwrap(),
        [7u8; 32]
    );
    assert_eq!(
        std::fs::read(fresh.path().join("meta.redb")).unwrap(),
        b"accounts and keys"
    );
    let (restored, open) = Engine::open(fresh.path(), config()).unwrap();
    assert!(open.damaged_segments.is_empty());
    assert_eq!(ids(&restored, 1), acked);
    assert_eq!(ids(&restored, 2), acked2);
    assert!(
        rt.block_on(rebuild(&bucket, fresh.path()))
            .unwrap()
            .is_none(),
        "a directory in use is never rebuilt over"
    );
    restored.close().unwrap();

    // Retention drops project 2's segments; the next manifest leaves them out and their
    // objects are deleted.
    let (dropped, _) = engine.enforce_retention(2, i64::MAX).unwrap();
    assert!(dropped > 0);
    let r = rt.block_on(up.round()).unwrap();
    assert_eq!(r.published, Some(3));
    assert_eq!(
        r.deleted_objects,
        dropped + 1,
        "project 2's segments and the old catalog"
    );
    let left = rt
        .block_on(bucket.list("segments/0000000000000002/"))
        .unwrap();
    assert!(left.is_empty(), "{left:?}");

    // A damaged object is named by verify.
    let victim = up.manifest().unwrap().segments[0].blob.key.clone();
    rt.block_on(bucket.put(&victim, bytes::Bytes::from_static(b"not a segment")))
        .unwrap();
    let report = rt.block_on(verify(&bucket)).unwrap();
    assert_eq!(report.damaged.len(), 1);
    assert_eq!(report.damaged[0].key, victim);
    assert!(
        report.damaged[0].why.contains("bytes"),
        "{:?}",
        report.damaged
    );
    engine.close().unwrap();
}

/// A TCP relay that can be cut (listener closed, connections dropped) and restored on the
/// same port: the bucket "going away" as a network failure would make it.
struct Relay {
    port: u16,
    up: Arc<AtomicBool>,
}

impl Relay {
    fn start(upstream: String) -> Relay {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let flag = up.clone();
        std::thread::spawn(move || {
            for c in l.incoming() {
                let Ok(c) = c else { continue };
                if !flag.load(Ordering::SeqCst) {
                    drop(c);
                    continue;
                }
                let Ok(u) = TcpStream::connect(&upstream) else {
                    continue;
                };
                let (c2, u2) = (c.try_clone().unwrap(), u.try_clone().unwrap());
                let f = flag.clone();
                std::thread::spawn(move || pipe(c, u, f));
                let f = flag.clone();
                std::thread::spawn(move || pipe(u2, c2, f));
            }
        });
        Relay { port, up }
    }
    fn set(&self, up: bool) {
        self.up.store(up, Ordering::SeqCst);
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream, up: Arc<AtomicBool>) {
    use std::io::{Read, Write};
    from.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut buf = [0u8; 16 << 10];
    loop {
        if !up.load(Ordering::SeqCst) {
            break;
        }
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => break,
        }
    }
    let _ = from.shutdown(std::net::Shutdown::Both);
    let _ = to.shutdown(std::net::Shutdown::Both);
}

#[test]
fn bucket_away_mid_ingest_holds_back_then_catches_up_without_duplicates() {
    let Some(s3) = S3Server::start() else { return };
    let rt = rt();
    s3.create_bucket("flaky");
    let relay = Relay::start(s3.endpoint.trim_start_matches("http://").to_owned());
    let mut vars = s3.vars();
    for (k, v) in vars.iter_mut() {
        if k == "AWS_ENDPOINT_URL" {
            *v = format!("http://127.0.0.1:{}", relay.port);
        }
    }
    let bucket = Bucket::open_with("s3://flaky/w", &vars).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (engine, mut up) = writer(dir.path(), bucket.clone(), 1);
    let mut acked = ingest(&engine, 1, 600, 5);
    engine.flush().unwrap();
    rt.block_on(up.round()).unwrap();

    // The bucket goes away: ingest goes on while the backlog is within budget (budget 1
    // byte here, so the first waiting segment passes it), the round fails and says why.
    relay.set(false);
    acked.extend(ingest(&engine, 1, 600, 6));
    engine.flush().unwrap();
    let err = rt.block_on(up.round()).unwrap_err().to_string();
    let stats = up.stats();
    assert_eq!(stats.errors.load(Ordering::Relaxed), 1, "{err}");
    assert!(stats.last_error.lock().is_some());
    assert!(stats.waiting_segments.load(Ordering::Relaxed) >= 1);
    let refused = engine
        .append(
            1,
            ledger_loggen::LogGen::new(9, T0).batch(1),
            AppendOptions::default(),
        )
        .unwrap_err();
    assert!(
        matches!(
            refused,
            ledger_engine::EngineError::Backpressure(
                ledger_engine::Backpressure::UploadBacklog { .. }
            )
        ),
        "{refused}"
    );

    // It comes back: the next round uploads what waited, ingest is accepted again.
    relay.set(true);
    let r = rt.block_on(up.round()).unwrap();
    assert!(r.uploaded_segments >= 1);
    assert_eq!(stats.waiting_bytes.load(Ordering::Relaxed), 0);
    assert!(stats.last_error.lock().is_none());
    acked.extend(ingest(&engine, 1, 100, 7));
    engine.flush().unwrap();
    rt.block_on(up.round()).unwrap();

    // Nothing acked is lost and no segment is in the bucket twice.
    let m = up.manifest().unwrap().clone();
    let objects = rt.block_on(bucket.list("segments/")).unwrap();
    assert_eq!(objects.len(), m.segments.len(), "{objects:?}");
    let fresh = tempfile::tempdir().unwrap();
    rt.block_on(rebuild(&bucket, fresh.path()))
        .unwrap()
        .unwrap();
    let (restored, _) = Engine::open(fresh.path(), config()).unwrap();
    assert_eq!(ids(&restored, 1), acked);
    restored.close().unwrap();
    engine.close().unwrap();
}

#[test]
fn a_reader_engine_follows_new_segments_and_retention() {
    let Some(s3) = S3Server::start() else { return };
    let rt = rt();
    let bucket = s3.bucket("follow", "w");
    let wdir = tempfile::tempdir().unwrap();
    let (writer, mut up) = writer(wdir.path(), bucket.clone(), 0);
    let mut acked = ingest(&writer, 1, 600, 11);
    let other = ingest(&writer, 2, 300, 12);
    writer.flush().unwrap();
    rt.block_on(up.round()).unwrap();

    let rdir = tempfile::tempdir().unwrap();
    let rebuilt = rt.block_on(rebuild(&bucket, rdir.path())).unwrap().unwrap();
    let (reader, _) = Engine::open(rdir.path(), config()).unwrap();
    let mut f = ledger_tier::Follower::new(bucket.clone(), rdir.path(), Some(rebuilt.manifest));
    assert!(
        rt.block_on(f.poll()).unwrap().is_none(),
        "nothing newer yet"
    );
    assert_eq!(ids(&reader, 1), acked);

    // New logs: the reader downloads the new segments and serves them.
    acked.extend(ingest(&writer, 1, 400, 13));
    writer.flush().unwrap();
    rt.block_on(up.round()).unwrap();
    let p = rt.block_on(f.poll()).unwrap().expect("a newer manifest");
    let r = reader.follow(&p.catalog).unwrap();
    f.adopted(p);
    assert!(r.segments_added >= 1 && r.segments_removed == 0, "{r:?}");
    assert_eq!(r.rows_added, 400);
    assert_eq!(ids(&reader, 1), acked);
    assert_eq!(ids(&reader, 2), other);

    // Retention on the writer: the reader drops the same segments and their files.
    writer.enforce_retention(2, i64::MAX).unwrap();
    rt.block_on(up.round()).unwrap();
    let p = rt.block_on(f.poll()).unwrap().expect("a newer manifest");
    let r = reader.follow(&p.catalog).unwrap();
    f.adopted(p);
    assert!(r.segments_removed >= 1, "{r:?}");
    assert!(ids(&reader, 2).is_empty());
    assert_eq!(ids(&reader, 1), acked);
    let left = std::fs::read_dir(rdir.path().join("segments/0000000000000002"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(left, 0, "the dropped segments' files are gone");

    // The adopted catalog is the reader's own now: it reopens to the same logs.
    reader.close().unwrap();
    let (again, _) = Engine::open(rdir.path(), config()).unwrap();
    assert_eq!(ids(&again, 1), acked);
    assert!(ids(&again, 2).is_empty());
    again.close().unwrap();
    writer.close().unwrap();
}

#[test]
fn evicted_segments_are_read_from_the_bucket_by_byte_range_also_after_a_restart() {
    let Some(s3) = S3Server::start() else { return };
    // Remote reads run on a runtime with its own workers; this thread only waits.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let bucket = s3.bucket("cache", "w");
    let directory = ledger_tier::SegmentDirectory::new(bucket.clone(), rt.handle().clone());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("server.secret"), [7u8; 32]).unwrap();
    let cfg = EngineConfig {
        remote: Some(directory.clone()),
        ..config()
    };
    let (engine, _) = Engine::open(dir.path(), cfg.clone()).unwrap();
    let mut up = uploader(
        bucket.clone(),
        &engine,
        dir.path(),
        0,
        Box::new(|to| std::fs::write(to, b"m").map_err(|e| e.to_string())),
    )
    .with_directory(directory.clone());
    let acked = ingest(&engine, 1, 1_500, 21);
    engine.flush().unwrap();
    // Nothing is evicted before the bucket holds it.
    assert_eq!(engine.evict_to(0).unwrap(), (0, 0));
    rt.block_on(up.round()).unwrap();
    let before = engine.stats();
    assert_eq!(before.segment_local_bytes, before.segment_bytes);

    // Keep about half: the least recently read go first.
    let newest = engine
        .scan(
            1,
            &ScanRequest {
                limit: 10,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(newest.logs.len(), 10);
    let budget = before.segment_bytes / 2;
    let (n, bytes) = engine.evict_to(budget).unwrap();
    assert!(n >= 1 && bytes > 0);
    let after = engine.stats();
    assert!(after.segment_local_bytes <= budget, "{after:?}");
    let on_disk: u64 = std::fs::read_dir(dir.path().join("segments/0000000000000001"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert_eq!(
        on_disk, after.segment_local_bytes,
        "evicted files are deleted"
    );
    assert_eq!(ids(&engine, 1), acked, "evicted segments still answer");

    // Everything evicted, then a restart: the segments open from the bucket.
    engine.evict_to(0).unwrap();
    assert_eq!(engine.stats().segment_local_bytes, 0);
    assert_eq!(ids(&engine, 1), acked);
    engine.close().unwrap();
    let (again, report) = Engine::open(dir.path(), cfg).unwrap();
    assert!(report.damaged_segments.is_empty(), "{report:?}");
    assert_eq!(ids(&again, 1), acked);
    again.close().unwrap();
}

#[test]
fn the_search_index_travels_with_the_bucket_and_is_aligned_with_the_catalog() {
    use ledger_engine::{Field, Importance, Level, LogType, NewLog};
    let Some(s3) = S3Server::start() else { return };
    let rt = rt();
    let bucket = s3.bucket("indexed", "w");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("server.secret"), [7u8; 32]).unwrap();
    let cfg = EngineConfig {
        search: true,
        seal_rows: 1_000_000,
        seal_age: Duration::from_secs(3_600),
        ..config()
    };
    let (engine, _) = Engine::open(dir.path(), cfg.clone()).unwrap();
    let mut up = uploader(
        bucket.clone(),
        &engine,
        dir.path(),
        0,
        Box::new(|to| std::fs::write(to, b"m").map_err(|e| e.to_string())),
    );
    let logs = |word: &str, n: usize| -> Vec<NewLog> {
        (0..n)
            .map(|i| {
                NewLog::new(
                    T0 + i as i64,
                    Level::Info,
                    LogType::Logger,
                    Importance::Standard,
                )
                .with(Field::Message, format!("{word} number {i}"))
            })
            .collect()
    };
    engine
        .append(1, logs("sealedword", 500), AppendOptions::default())
        .unwrap();
    engine.flush().unwrap();
    // Acknowledged and indexed but never sealed: what a lost disk takes with it.
    engine
        .append(1, logs("tailword", 200), AppendOptions::default())
        .unwrap();
    engine.refresh_search().unwrap();
    rt.block_on(up.round()).unwrap();
    let m = up.manifest().unwrap().clone();
    assert!(
        m.index.iter().any(|f| f.name == "meta.json"),
        "{:?}",
        m.index
    );
    assert!(m.index.len() > 1);

    let fresh = tempfile::tempdir().unwrap();
    let report = rt
        .block_on(rebuild(&bucket, fresh.path()))
        .unwrap()
        .unwrap();
    assert_eq!(report.index_files, m.index.len());
    let (restored, _) = Engine::open(
        fresh.path(),
        EngineConfig {
            index_restored: true,
            ..cfg
        },
    )
    .unwrap();
    let q = |w: &str| ledger_engine::search::parse(w).unwrap();
    assert_eq!(restored.index_documents(1, &q("sealedword")).unwrap(), 500);
    assert_eq!(
        restored.index_documents(1, &q("tailword")).unwrap(),
        0,
        "documents of rows the catalog never sealed are gone"
    );
    let page = restored
        .search(
            1,
            &q("sealedword"),
            &ScanRequest {
                limit: 1000,
                ..Default::default()
            },
            Default::default(),
        )
        .unwrap();
    assert_eq!(page.logs.len(), 500);
    // New rows get sequence numbers above the restored index's watermark.
    let acks = restored
        .append(1, logs("afterword", 1), AppendOptions::default())
        .unwrap();
    assert!(acks[0].id.seq > 700, "{:?}", acks[0].id);
    restored.close().unwrap();
    engine.close().unwrap();
}
