//! `ledgerctl`: offline inspection and verification of a Ledger data directory, and load
//! generation against a running server.

mod bucket;
mod generate;
mod loadgen;
mod offline;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "ledgerctl",
    version,
    about = "Inspect, verify and load-test Ledger"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Projects, segments (time ranges, rows, raw and stored bytes, ratio) and WAL files of a
    /// data directory, or the blocks of one segment file.
    Inspect {
        /// A data directory (the server's `--data-dir`) or one segment file (`*.seg`).
        path: PathBuf,
    },
    /// Checks every checksum of the WAL and the segments; exits 1 naming file and offset on
    /// damage. Given s3://bucket/prefix (AWS variables as for `ledger --object-store`), reads
    /// back every object the bucket's manifest names and exits 1 naming each damaged or
    /// missing one.
    Verify {
        /// The data directory to check (the server's `--data-dir`), or an s3:// URL.
        data_dir: PathBuf,
    },
    /// Writes a segment's logs as NDJSON.
    Dump {
        /// The segment file to read (`<data-dir>/segments/<project>/<id>.seg`).
        segment: PathBuf,
        /// Stop after this many logs (default: all).
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Rebuilds the search index from the segments and the WAL (the server must be
    /// stopped): the whole index, or one project's documents with --project.
    Reindex {
        /// The data directory whose index to rebuild (the server's `--data-dir`).
        data_dir: PathBuf,
        /// A project id (16 hex digits, as the API shows it).
        #[arg(long)]
        project: Option<String>,
    },
    /// Sends realistic logs to a running server over HTTP and reports latency percentiles
    /// and throughput.
    Loadgen(loadgen::Args),
    /// Writes the load generator's logs to standard output as NDJSON or CSV (sample data,
    /// and the same data for a comparison with another store).
    Generate(generate::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let res = match cli.command {
        Command::Inspect { path } => offline::inspect(&path).map(|_| true),
        Command::Verify { data_dir } => match data_dir.to_str() {
            Some(url) if url.starts_with("s3://") => bucket::verify(url),
            _ => offline::verify(&data_dir),
        },
        Command::Dump { segment, limit } => offline::dump(&segment, limit).map(|_| true),
        Command::Reindex { data_dir, project } => {
            offline::reindex(&data_dir, project.as_deref()).map(|_| true)
        }
        Command::Loadgen(args) => loadgen::run(args).map(|_| true),
        Command::Generate(args) => generate::run(args).map(|_| true),
    };
    match res {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("ledgerctl: {e:#}");
            ExitCode::from(2)
        }
    }
}
