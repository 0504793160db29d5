//! `loadgen --mode mixed`: the soak. Ingest, `/logs` queries and lookups by id, searches
//! and metrics at once, plus a second project whose logs expire from its one-day retention
//! within a minute of arriving, so the server keeps deleting segments. Samples the server's resident memory each second
//! (`--pid`), and at the end pages through every log of the ingest project to check that
//! every acknowledged id is readable. Any status other than 2xx, 429 and 503 counts as an
//! error; the run fails on any error or any missing id.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use bytes::Bytes;
use hdrhistogram::Histogram;
use ledger_loggen::LogGen;
use parking_lot::Mutex;
use rand::seq::SliceRandom;
use rand::Rng;
use serde_json::{json, Value};

use super::{call, new_hist, Args, HttpClient};

const KINDS: [&str; 6] = [
    "ingest",
    "retention-ingest",
    "query",
    "get",
    "search",
    "metrics",
];

struct Shared {
    hist: Vec<Mutex<Histogram<u64>>>,
    statuses: Mutex<BTreeMap<String, u64>>,
    errors: AtomicU64,
    acked: Mutex<Vec<String>>,
    logs: AtomicU64,
    stop: AtomicBool,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Registers a fresh account and returns its session token.
pub(super) async fn session(client: &HttpClient, base: &str, seed: u64) -> anyhow::Result<String> {
    let email = format!("loadgen-{seed}-{}@example.com", now_ms());
    let body = json!({"email": email, "password": "loadgen password 1"}).to_string();
    let (st, b) = call(
        client,
        "POST",
        &format!("{base}/api/v1/auth/register"),
        None,
        body.into(),
    )
    .await?;
    if st != 201 {
        bail!("register answered {st}: {}", String::from_utf8_lossy(&b));
    }
    Ok(serde_json::from_slice::<Value>(&b)?["token"]
        .as_str()
        .unwrap_or_default()
        .to_owned())
}

/// A project with high limits (and the given retention) and an ingest+query key for it.
pub(super) async fn project(
    client: &HttpClient,
    base: &str,
    token: &str,
    retention: u64,
) -> anyhow::Result<String> {
    let body =
        json!({"name": "soak", "retention_days": retention, "daily_quota": 1_000_000_000_000u64,
        "rate_limit_per_minute": 1_000_000_000_000u64, "rate_limit_per_hour": 1_000_000_000_000u64,
        "max_queue_depth": 1_000_000})
        .to_string();
    let (st, b) = call(
        client,
        "POST",
        &format!("{base}/api/v1/projects"),
        Some(token),
        body.into(),
    )
    .await?;
    if st != 201 {
        bail!(
            "creating a project answered {st}: {}",
            String::from_utf8_lossy(&b)
        );
    }
    let id = serde_json::from_slice::<Value>(&b)?["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let body = json!({"name": "loadgen", "scopes": ["ingest", "query"]}).to_string();
    let (st, b) = call(
        client,
        "POST",
        &format!("{base}/api/v1/projects/{id}/keys"),
        Some(token),
        body.into(),
    )
    .await?;
    if st != 201 {
        bail!(
            "creating a key answered {st}: {}",
            String::from_utf8_lossy(&b)
        );
    }
    Ok(serde_json::from_slice::<Value>(&b)?["key"]
        .as_str()
        .unwrap_or_default()
        .to_owned())
}

fn rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn record(sh: &Shared, kind: usize, began: Instant, res: &anyhow::Result<(u16, Bytes)>) -> bool {
    let label = match res {
        Ok((st, _)) if (200..300).contains(st) => {
            let _ = sh.hist[kind]
                .lock()
                .record((began.elapsed().as_micros() as u64).max(1));
            return true;
        }
        Ok((st @ (429 | 503), _)) => format!("{} {st}", KINDS[kind]),
        Ok((st, b)) => {
            sh.errors.fetch_add(1, Ordering::Relaxed);
            format!(
                "{} {st} (error: {})",
                KINDS[kind],
                String::from_utf8_lossy(&b[..b.len().min(120)])
            )
        }
        Err(e) => {
            sh.errors.fetch_add(1, Ordering::Relaxed);
            format!("{} transport error: {e}", KINDS[kind])
        }
    };
    *sh.statuses.lock().entry(label).or_default() += 1;
    false
}

const SEARCHES: [&str; 5] = [
    "error",
    "timeout",
    "%22not%20found%22",
    "level:error%20-service:auth",
    "attributes.http.status:500",
];
const QUERIES: [&str; 4] = [
    "level=error",
    "service=billing&limit=50",
    "order=asc&limit=20",
    "level=warning,error&environment=production",
];
const METRICS: [&str; 4] = [
    "metrics/error-rate?hours=1&bucket=1m",
    "metrics/log-volume?hours=24",
    "metrics/top-errors?hours=24",
    "logs/patterns?hours=1",
];

#[allow(clippy::too_many_arguments)] // one worker's whole context; a struct would add nothing
async fn worker(
    client: HttpClient,
    base: String,
    key: String,
    old_key: String,
    kind: usize,
    sh: Arc<Shared>,
    seed: u64,
    batch: usize,
) {
    let mut r = LogGen::new(seed, 0);
    while !sh.stop.load(Ordering::Relaxed) {
        let began = Instant::now();
        let res = match KINDS[kind] {
            "ingest" | "retention-ingest" => {
                let old = kind == 1;
                // Retention logs are stamped 5 to 60 s short of their project's one-day
                // retention: accepted (older ones are refused), then expired within a minute,
                // so the server keeps dropping segments.
                let base_ms = if old {
                    now_ms() - 86_400_000 + 5_000 + r.rng().gen_range(0..55_000)
                } else {
                    now_ms()
                };
                let n = if old { 50 } else { batch };
                let logs: Vec<Value> = (0..n)
                    .map(|j| r.json_at((base_ms + j as u64) as i64 * 1000))
                    .collect();
                let body = json!({ "logs": logs }).to_string();
                let k = if old { &old_key } else { &key };
                let res = call(
                    &client,
                    "POST",
                    &format!("{base}/api/v1/ingest/batch"),
                    Some(k),
                    body.into(),
                )
                .await;
                if let Ok((202, b)) = &res {
                    if !old {
                        if let Ok(v) = serde_json::from_slice::<Value>(b) {
                            let ids: Vec<String> = v["ids"]
                                .as_array()
                                .into_iter()
                                .flatten()
                                .filter_map(|x| x.as_str().map(str::to_owned))
                                .collect();
                            sh.logs.fetch_add(ids.len() as u64, Ordering::Relaxed);
                            sh.acked.lock().extend(ids);
                        }
                    }
                }
                if old {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                res
            }
            "query" => {
                call(
                    &client,
                    "GET",
                    &format!("{base}/api/v1/logs?{}", pick(&mut r, &QUERIES)),
                    Some(&key),
                    Bytes::new(),
                )
                .await
            }
            "get" => {
                let id = {
                    let a = sh.acked.lock();
                    a.choose(r.rng()).cloned()
                };
                match id {
                    Some(id) => {
                        call(
                            &client,
                            "GET",
                            &format!("{base}/api/v1/logs/{id}"),
                            Some(&key),
                            Bytes::new(),
                        )
                        .await
                    }
                    None => {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                }
            }
            "search" => {
                call(
                    &client,
                    "GET",
                    &format!(
                        "{base}/api/v1/logs/search?q={}&limit=50",
                        pick(&mut r, &SEARCHES)
                    ),
                    Some(&key),
                    Bytes::new(),
                )
                .await
            }
            _ => {
                call(
                    &client,
                    "GET",
                    &format!("{base}/api/v1/{}", pick(&mut r, &METRICS)),
                    Some(&key),
                    Bytes::new(),
                )
                .await
            }
        };
        if !record(&sh, kind, began, &res) && matches!(&res, Ok((429 | 503, _))) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Pages through every log of the project and returns the ids found.
async fn all_ids(client: &HttpClient, base: &str, key: &str) -> anyhow::Result<HashSet<String>> {
    let mut found = HashSet::new();
    let mut cursor = String::new();
    loop {
        let url = format!("{base}/api/v1/logs?order=asc&limit=1000&cursor={cursor}");
        let (st, b) = call(client, "GET", &url, Some(key), Bytes::new()).await?;
        if st != 200 {
            bail!(
                "paging /logs answered {st}: {}",
                String::from_utf8_lossy(&b)
            );
        }
        let v: Value = serde_json::from_slice(&b)?;
        for l in v["logs"].as_array().into_iter().flatten() {
            if let Some(id) = l["id"].as_str() {
                found.insert(id.to_owned());
            }
        }
        match v["next_cursor"].as_str() {
            Some(c) => cursor = c.to_owned(),
            None => return Ok(found),
        }
    }
}

pub async fn run(args: &Args, client: HttpClient, base: String) -> anyhow::Result<()> {
    let token = session(&client, &base, args.seed).await?;
    let key = project(&client, &base, &token, 30).await?;
    let old_key = project(&client, &base, &token, 1).await?;
    let ingesters = (args.concurrency / 2).max(1);
    println!("loadgen: mixed soak for {:?}: {ingesters} ingesters × {} logs, 1 retention ingester, query, get, search and metrics workers", args.duration, args.batch_size);
    let sh = Arc::new(Shared {
        hist: KINDS.iter().map(|_| Mutex::new(new_hist())).collect(),
        statuses: Mutex::new(BTreeMap::new()),
        errors: AtomicU64::new(0),
        acked: Mutex::new(Vec::new()),
        logs: AtomicU64::new(0),
        stop: AtomicBool::new(false),
    });
    let mut kinds = vec![0; ingesters];
    kinds.extend([1, 2, 3, 4, 5]);
    let tasks: Vec<_> = kinds
        .into_iter()
        .enumerate()
        .map(|(i, kind)| {
            tokio::spawn(worker(
                client.clone(),
                base.clone(),
                key.clone(),
                old_key.clone(),
                kind,
                sh.clone(),
                args.seed * 1000 + i as u64,
                args.batch_size,
            ))
        })
        .collect();
    let start = Instant::now();
    let mut rss = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    while start.elapsed() < args.duration {
        tick.tick().await;
        let kib = args.pid.and_then(rss_kib);
        if let Some(k) = kib {
            rss.push(k);
        }
        let t = start.elapsed().as_secs();
        if t.is_multiple_of(10) || t == 1 {
            println!(
                "t={t:>4}s  {:>10} logs acked  rss {}  errors {}",
                sh.logs.load(Ordering::Relaxed),
                kib.map_or("-".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0)),
                sh.errors.load(Ordering::Relaxed)
            );
        }
    }
    sh.stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    let secs = start.elapsed().as_secs_f64();
    println!("---");
    println!(
        "acked {} logs in {secs:.0}s = {:.0} logs/s",
        sh.logs.load(Ordering::Relaxed),
        sh.logs.load(Ordering::Relaxed) as f64 / secs
    );
    for (i, k) in KINDS.iter().enumerate() {
        let h = sh.hist[i].lock();
        println!(
            "{k:>16}: {:>8} ok  p50 {:>8.2} ms  p99 {:>8.2} ms  max {:>8.2} ms",
            h.len(),
            h.value_at_quantile(0.5) as f64 / 1e3,
            h.value_at_quantile(0.99) as f64 / 1e3,
            h.max() as f64 / 1e3
        );
    }
    for (label, n) in sh.statuses.lock().iter() {
        println!("refused or failed: {n} × {label}");
    }
    if !rss.is_empty() {
        let q = rss.len() / 4;
        let mean = |s: &[u64]| s.iter().sum::<u64>() as f64 / s.len().max(1) as f64 / 1024.0;
        let curve: Vec<String> = rss
            .chunks(rss.len().div_ceil(10).max(1))
            .map(|c| format!("{:.0}", mean(c)))
            .collect();
        println!("rss MiB by tenth of the run: {}", curve.join(" "));
        println!(
            "rss MiB: first quarter mean {:.1}, last quarter mean {:.1}, max {:.1}",
            mean(&rss[..q.max(1)]),
            mean(&rss[rss.len() - q.max(1)..]),
            *rss.iter().max().unwrap_or(&0) as f64 / 1024.0
        );
    }
    let acked: Vec<String> = sh.acked.lock().clone();
    let found = all_ids(&client, &base, &key)
        .await
        .context("reading back every log")?;
    let missing = acked.iter().filter(|id| !found.contains(*id)).count();
    println!(
        "read back: {} acknowledged ids, {} found, {missing} missing",
        acked.len(),
        found.len()
    );
    let errors = sh.errors.load(Ordering::Relaxed);
    if errors > 0 || missing > 0 {
        bail!("soak failed: {errors} errors, {missing} acknowledged ids missing");
    }
    println!("soak passed: no errors beyond the documented limits, every acknowledged id readable");
    Ok(())
}

/// One of `xs` (tables of constants, never empty), from the worker's seeded sequence.
fn pick<'a>(r: &mut LogGen, xs: &'a [&'a str]) -> &'a str {
    xs.choose(r.rng()).copied().unwrap_or_default()
}
