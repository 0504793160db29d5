//! Shared pieces of Ledger's benches: the seeded generator of realistic logs (`ledger-loggen`,
//! the same logs `ledgerctl loadgen` sends) and a results table that prints each figure beside
//! its target.

use ledger_engine::NewLog;
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
