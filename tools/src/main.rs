//! `ledgerctl`: tools around a Ledger node. Each subcommand lives in its own module; add a
//! variant to [`Command`] and a match arm in `main` to add one.

mod loadgen;

use clap::{Parser, Subcommand};

/// Tools for Ledger: load generation (and, offline, inspection of a data directory).
#[derive(Parser)]
#[command(name = "ledgerctl", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Send realistic logs to a running server over HTTP and report latency and throughput.
    Loadgen(loadgen::Args),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Loadgen(args) => loadgen::run(args),
    }
}
