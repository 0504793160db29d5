//! Shared helpers for the engine's integration tests: a seeded generator of realistic logs
//! and engine set-ups with small thresholds so segments really get made.
#![allow(dead_code)]

use ledger_engine::{
    Engine, EngineConfig, Field, FsyncPolicy, Importance, Level, LogType, NewLog, ScanRequest,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub const T0: i64 = 1_795_000_000_000_000;

pub fn small_config() -> EngineConfig {
    EngineConfig {
        seal_rows: 200,
        block_rows: 32,
        fsync: FsyncPolicy::Never,
        wal_file_bytes: 64 << 10,
        ..EngineConfig::default()
    }
}

pub fn open(dir: &std::path::Path, cfg: EngineConfig) -> Engine {
    Engine::open(dir, cfg).expect("engine opens").0
}

/// A log with a message that names its batch and row, so tests can check batches whole.
pub fn tagged(ts: i64, batch: u64, row: usize, of: usize) -> NewLog {
    NewLog::new(ts, Level::Info, LogType::Logger, Importance::Standard)
        .with(Field::Message, format!("b{batch} r{row} of {of}"))
}

pub fn random_log(rng: &mut StdRng, ts: i64) -> NewLog {
    let level = Level::ALL[rng.gen_range(0..5)];
    let mut l = NewLog::new(
        ts,
        level,
        LogType::ALL[rng.gen_range(0..4)],
        Importance::ALL[rng.gen_range(0..3)],
    );
    l.set(
        Field::Message,
        format!(
            "user {} did thing {}",
            rng.gen_range(0..50),
            rng.gen_range(0..3)
        ),
    );
    if rng.gen_bool(0.7) {
        l.set(
            Field::Service,
            ["api", "billing", "web"][rng.gen_range(0..3)],
        );
    }
    if rng.gen_bool(0.5) {
        l.set(Field::Environment, ["prod", "staging"][rng.gen_range(0..2)]);
    }
    if rng.gen_bool(0.3) {
        l.set(Field::Release, format!("v{}", rng.gen_range(1..4)));
    }
    if level.is_error() {
        l.set(
            Field::ErrorType,
            ["ValueError", "KeyError"][rng.gen_range(0..2)],
        );
        l.set(
            Field::ErrorMessage,
            format!("bad value {}", rng.gen_range(0..1000)),
        );
    }
    if rng.gen_bool(0.6) {
        l.set(
            Field::Attributes,
            format!(
                r#"{{"http":{{"status":{}}},"user_id":"u{}","ok":{}}}"#,
                [200, 404, 500][rng.gen_range(0..3)],
                rng.gen_range(0..5),
                rng.gen_bool(0.5)
            ),
        );
    }
    l
}

pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// Every log of a project, oldest first, by paging with the cursor.
/// A project's usage summed over every day.
pub fn total_usage(e: &Engine, project: u64) -> ledger_engine::DayUsage {
    let mut sum = ledger_engine::DayUsage::default();
    for (_, u) in e.usage_range(project, i64::MIN, i64::MAX) {
        sum.add(u);
    }
    sum
}

pub fn all_logs(e: &Engine, project: u64) -> Vec<ledger_engine::LogRecord> {
    scan_all(e, project, ledger_engine::Filter::default())
}

/// Every log of a project that passes `filter`, oldest first, by paging with the cursor.
pub fn scan_all(
    e: &Engine,
    project: u64,
    filter: ledger_engine::Filter,
) -> Vec<ledger_engine::LogRecord> {
    let mut out = Vec::new();
    let mut req = ScanRequest {
        limit: 1000,
        order: ledger_engine::Order::Asc,
        filter,
        ..Default::default()
    };
    loop {
        let page = e.scan(project, &req).expect("scan");
        out.extend(page.logs);
        match page.next_cursor {
            Some(c) => req.cursor = Some(c),
            None => return out,
        }
    }
}

/// Copies a directory tree, leaving out tantivy's lock files (a copy is never the live
/// index's owner).
pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for ent in std::fs::read_dir(from)? {
        let ent = ent?;
        let dst = to.join(ent.file_name());
        if ent.file_type()?.is_dir() {
            copy_dir(&ent.path(), &dst)?;
        } else if ent.file_name() != ".tantivy-writer.lock"
            && ent.file_name() != ".tantivy-meta.lock"
        {
            std::fs::copy(ent.path(), dst)?;
        }
    }
    Ok(())
}
