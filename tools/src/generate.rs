//! `ledgerctl generate`: the load generator's logs on standard output, as NDJSON (what
//! `/ingest/batch` accepts, one log a line) or as CSV for loading into another store, so that
//! a comparison feeds both the same data (benches/classic/).

use std::io::Write;

use clap::ValueEnum;
use ledger_engine::json::log_json;
use ledger_engine::NewLog;
use ledger_loggen::LogGen;
use serde_json::Value;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Format {
    /// One JSON log a line.
    Ndjson,
    /// RFC 4180 CSV without a header, in the column order of [`CSV_COLUMNS`]; absent fields
    /// empty.
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
    let mut r = LogGen::new(args.seed, 0);
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
    let count = args.count.max(1) as i64;
    // Spread over the last hour, oldest first.
    let mut logs = (0..args.count as i64)
        .map(|i| r.log_at((now_ms - 3_600_000 + i * 3_600_000 / count) * 1000));
    match args.format {
        Format::Ndjson => {
            for log in logs {
                writeln!(out, "{}", Value::Object(log_json(&log)))?;
            }
            out.flush()?;
        }
        Format::Csv => {
            let mut csv = csv::WriterBuilder::new()
                .has_headers(false)
                .from_writer(out);
            logs.try_for_each(|log| csv.write_record(csv_row(&log)))?;
            csv.flush()?;
        }
    }
    Ok(())
}

/// One CSV record for a generated log: an absent field is an empty (unquoted) field, which
/// PostgreSQL's `COPY … CSV` reads as NULL; the csv crate quotes only where it must.
fn csv_row(log: &NewLog) -> Vec<String> {
    let json = log_json(log);
    let fingerprint = ledger_engine::fingerprint(log);
    CSV_COLUMNS
        .iter()
        .map(|c| match (*c, json.get(*c)) {
            ("error_fingerprint", _) => fingerprint.clone().unwrap_or_default(),
            (_, Some(Value::String(s))) => s.clone(),
            (_, Some(v @ Value::Object(_))) => v.to_string(),
            _ => String::new(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledger_engine::Field;

    #[test]
    fn csv_rows_read_back_with_every_column_and_errors_a_fingerprint() {
        let mut r = LogGen::new(3, 0);
        let mut w = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(Vec::new());
        let logs: Vec<NewLog> = (0..500).map(|_| r.log_at(1_700_000_000_000_000)).collect();
        for log in &logs {
            w.write_record(csv_row(log)).unwrap();
        }
        let bytes = w.into_inner().unwrap();
        let mut rd = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(bytes.as_slice());
        let mut with_fp = 0;
        for (log, rec) in logs.iter().zip(rd.records()) {
            let rec = rec.unwrap();
            assert_eq!(rec.len(), CSV_COLUMNS.len());
            assert_eq!(&rec[4], log.get(Field::Message).unwrap());
            if let Some(trace) = log.get(Field::StackTrace) {
                assert_eq!(&rec[7], trace, "multi-line fields survive quoting");
                assert_eq!(rec[17].len(), 32, "an error has a fingerprint");
                with_fp += 1;
            } else {
                assert_eq!(&rec[7], "");
            }
        }
        assert!(with_fp > 0);
    }
}
