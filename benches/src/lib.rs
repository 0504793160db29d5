//! Shared pieces of Ledger's benches: the seeded generator of realistic logs (`ledger-loggen`,
//! the same logs `ledgerctl loadgen` sends) and a results table that prints each figure beside
//! its target.

use ledger_engine::{AppendOptions, Engine, EngineError, NewLog, ProjectId};
pub use ledger_loggen::LogGen;

/// Bytes of the JSON a client would send for this log (to measure bytes on disk per byte
/// ingested).
pub fn json_len(l: &NewLog) -> usize {
    serde_json::Value::Object(ledger_engine::json::log_json(l))
        .to_string()
        .len()
}

/// A row of the results table.
pub struct Row {
    pub figure: String,
    pub target: String,
    pub measured: String,
    pub met: Option<bool>,
}

pub fn print_table(rows: &[Row]) {
    println!("\n| figure | target | measured | met |\n| --- | --- | --- | --- |");
    for r in rows {
        let met = match r.met {
            Some(true) => "met",
            Some(false) => "MISSED",
            None => "-",
        };
        println!("| {} | {} | {} | {} |", r.figure, r.target, r.measured, met);
    }
}

/// The value of an environment knob, or a default.
pub fn knob(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Bytes of the files under `p`, subdirectories included (0 for a missing directory).
pub fn dir_bytes(p: &std::path::Path) -> u64 {
    let mut n = 0;
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            let Ok(m) = e.metadata() else { continue };
            n += if m.is_dir() {
                dir_bytes(&e.path())
            } else {
                m.len()
            };
        }
    }
    n
}

/// Copies the directory tree `from` to `to`.
pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let dest = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), dest).expect("copy");
        }
    }
}

/// Appends a batch, waiting out backpressure (the index or the memtables behind) as a
/// well-behaved client does; any other error ends the bench.
pub fn append_retrying(e: &Engine, project: ProjectId, batch: &[NewLog]) {
    loop {
        match e.append(project, batch.to_vec(), AppendOptions::default()) {
            Ok(_) => return,
            Err(EngineError::Backpressure(_)) => {
                std::thread::sleep(std::time::Duration::from_millis(2))
            }
            Err(err) => panic!("{err}"),
        }
    }
}
