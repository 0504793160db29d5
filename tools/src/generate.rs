//! `ledgerctl generate`: the load generator's logs on standard output, as NDJSON (what
//! `/ingest/batch` accepts, one log a line) or as CSV for loading into another store, so that
//! a comparison feeds both the same data (benches/classic/).

use std::io::Write;

use clap::ValueEnum;
use ledger_engine::{Field, Importance, Level, LogType, NewLog};
use serde_json::Value;

use crate::loadgen::logs;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Format {
    /// One JSON log a line.
    Ndjson,
    /// RFC 4180 CSV without a header, in the column order of [`CSV_COLUMNS`].
    Csv,
}

/// The CSV columns: every field of a log, then the error fingerprint Ledger computes.
pub const CSV_COLUMNS: [&str; 18] = [
    "timestamp",
    "level",
    "log_type",
    "importance",
    "message",
    "error_type",
    "error_message",
    "stack_trace",
    "service",
    "source",
    "environment",
    "release",
    "platform",
    "language",
    "trace_id",
    "span_id",
    "attributes",
    "error_fingerprint",
];

#[derive(clap::Args)]
pub struct Args {
    /// How many logs.
    #[arg(long, default_value_t = 1000)]
    count: u64,
    /// Seed: the same seed writes the same logs (and `loadgen --seed` sends them).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long, value_enum, default_value_t = Format::Ndjson)]
    format: Format,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let mut r = logs::Rng::new(args.seed);
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as u64;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
    for i in 0..args.count {
        // Spread over the last hour, oldest first.
        let at = now_ms - 3_600_000 + i * 3_600_000 / args.count.max(1);
        let log = logs::log(&mut r, at);
        match args.format {
            Format::Ndjson => writeln!(out, "{log}")?,
            Format::Csv => writeln!(out, "{}", csv_row(&log))?,
        }
    }
    out.flush()?;
    Ok(())
}

/// One CSV line (without the newline) for a generated log.
fn csv_row(log: &Value) -> String {
    let text = |k: &str| match log.get(k) {
        Some(Value::String(s)) => Some(s.clone()),
        Some(v @ Value::Object(_)) => Some(v.to_string()),
        _ => None,
    };
    let fingerprint = to_new_log(log).and_then(|l| ledger_engine::fingerprint::fingerprint(&l));
    CSV_COLUMNS
        .iter()
        .map(|c| match *c {
            "error_fingerprint" => fingerprint.clone(),
            c => text(c),
        })
        .map(|v| v.map_or(String::new(), |s| csv_quote(&s)))
        .collect::<Vec<_>>()
        .join(",")
}

/// Quotes a CSV field: an empty field is NULL to PostgreSQL's `COPY … CSV`, a quoted one
/// is text.
fn csv_quote(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// The log as the engine would store it, to compute its fingerprint.
fn to_new_log(log: &Value) -> Option<NewLog> {
    let s = |k: &str| log.get(k).and_then(Value::as_str);
    let ts = ledger_engine::timefmt::parse_rfc3339(s("timestamp")?)?;
    let mut l = NewLog::new(
        ts,
        Level::parse(s("level")?)?,
        LogType::parse(s("log_type")?)?,
        Importance::parse(s("importance")?)?,
    );
    for f in Field::ALL {
        match log.get(f.name()) {
            Some(Value::String(v)) => {
                l.set(f, v.as_str());
            }
            Some(v @ Value::Object(_)) => {
                l.set(f, v.to_string());
            }
            _ => {}
        }
    }
    Some(l)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_rows_have_every_column_and_errors_a_fingerprint() {
        let mut r = logs::Rng::new(3);
        let mut with_fp = 0;
        for _ in 0..500 {
            let log = logs::log(&mut r, 1_700_000_000_000);
            let row = csv_row(&log);
            // Quoted fields never hold a bare quote, so counting separators outside quotes
            // finds the columns.
            let mut cols = 1;
            let mut quoted = false;
            for c in row.chars() {
                match c {
                    '"' => quoted = !quoted,
                    ',' if !quoted => cols += 1,
                    _ => {}
                }
            }
            assert_eq!(cols, CSV_COLUMNS.len(), "{row}");
            if log.get("stack_trace").is_some() {
                let fp = to_new_log(&log).and_then(|l| ledger_engine::fingerprint::fingerprint(&l));
                assert!(fp.is_some(), "an error has a fingerprint");
                with_fp += 1;
            }
        }
        assert!(with_fp > 0);
    }
}
