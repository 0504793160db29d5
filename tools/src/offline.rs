//! `inspect`, `verify` and `dump`: read a data directory or a segment without a server,
//! through the engine's own decoders.

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context, Result};
use ledger_engine::inspect::{self, DirInfo};
use ledger_engine::timefmt::format_micros;
use ledger_engine::SegmentReader;
use ledger_engine::{json, project_dir};

fn ratio(raw: u64, stored: u64) -> String {
    if stored == 0 {
        "-".into()
    } else {
        format!("{:.2}x", raw as f64 / stored as f64)
    }
}

/// Prints what a data directory or a single segment file holds.
pub fn inspect(path: &Path) -> Result<()> {
    if path.is_file() {
        return inspect_segment(path);
    }
    if !path.exists() {
        bail!("{}: no such file or directory", path.display());
    }
    let info: DirInfo = inspect::inspect_dir(path)?;
    let mut projects: Vec<u64> = info.segments.iter().map(|s| s.project).collect();
    projects.dedup();
    println!("data directory {}", path.display());
    println!(
        "{} projects with segments, {} segments, {} WAL files",
        projects.len(),
        info.segments.len(),
        info.wal.len()
    );
    println!("\nsegments:");
    println!(
        "  {:<16} {:<16} {:<27} {:<27} {:>10} {:>12} {:>12} {:>7}",
        "project", "segment", "from", "to", "rows", "raw bytes", "bytes", "ratio"
    );
    let (mut rows, mut raw, mut bytes) = (0, 0, 0);
    for s in &info.segments {
        println!(
            "  {:<16} {:<16x} {:<27} {:<27} {:>10} {:>12} {:>12} {:>7}",
            project_dir(s.project),
            s.id,
            format_micros(s.min_ts),
            format_micros(s.max_ts),
            s.rows,
            s.raw_bytes,
            s.bytes,
            ratio(s.raw_bytes, s.bytes)
        );
        rows += s.rows;
        raw += s.raw_bytes;
        bytes += s.bytes;
    }
    println!(
        "  total: {rows} rows, {raw} raw bytes, {bytes} bytes, ratio {}",
        ratio(raw, bytes)
    );
    println!("\nwrite-ahead log:");
    for w in &info.wal {
        let damage = w
            .damage
            .as_ref()
            .map(|d| format!(", damage at byte {}: {}", d.offset, d.what))
            .unwrap_or_default();
        println!(
            "  {}: {} bytes, {} batches, {} rows{damage}",
            w.path.display(),
            w.bytes,
            w.records,
            w.rows
        );
    }
    match inspect::index_space(path)? {
        None => println!("\nsearch index: none (search off)"),
        Some(ix) => print_index_space(&ix),
    }
    Ok(())
}

/// The committed search index, field by field (bytes, and bytes per indexed log).
fn print_index_space(ix: &inspect::IndexSpace) {
    let per_doc = |b: u64| {
        if ix.docs == 0 {
            "-".to_string()
        } else {
            format!("{:.1}", b as f64 / ix.docs as f64)
        }
    };
    println!(
        "\nsearch index: {} documents in {} segments, {} bytes ({} bytes per log)",
        ix.docs,
        ix.segments,
        ix.total,
        per_doc(ix.total)
    );
    println!(
        "  {:<16} {:>12} {:>12} {:>12} {:>12} {:>12} {:>9}",
        "field", "terms", "postings", "positions", "fast", "total", "per log"
    );
    for f in &ix.fields {
        println!(
            "  {:<16} {:>12} {:>12} {:>12} {:>12} {:>12} {:>9}",
            f.field,
            f.terms,
            f.postings,
            f.positions,
            f.fast,
            f.total(),
            per_doc(f.total())
        );
    }
    println!(
        "  {:<16} {:>64} {:>9}",
        "(document store)",
        ix.store,
        per_doc(ix.store)
    );
    println!(
        "  {:<16} {:>64} {:>9}",
        "(other)",
        ix.other,
        per_doc(ix.other)
    );
}

fn inspect_segment(path: &Path) -> Result<()> {
    let seg = SegmentReader::open(&ledger_engine::fs::RealFs, path)?;
    let m = seg.meta();
    println!("segment {}", path.display());
    println!(
        "project {}, segment {:x}, {} rows in {} blocks, {} to {}",
        project_dir(m.project),
        m.id,
        m.rows,
        seg.blocks.len(),
        format_micros(m.min_ts),
        format_micros(m.max_ts)
    );
    println!(
        "{} raw bytes, {} bytes on disk, ratio {}",
        m.raw_bytes,
        m.bytes,
        ratio(m.raw_bytes, m.bytes)
    );
    println!(
        "\n  {:>5} {:>10} {:>6} {:>9} {:>9} {:>6} {:<27} {:<27}",
        "block", "offset", "rows", "raw", "stored", "filter", "from", "to"
    );
    for (i, b) in seg.blocks.iter().enumerate() {
        println!(
            "  {:>5} {:>10} {:>6} {:>9} {:>9} {:>6} {:<27} {:<27}",
            i,
            b.offset,
            b.rows,
            b.raw_len,
            b.len,
            b.filter.len(),
            format_micros(b.min_ts),
            format_micros(b.max_ts)
        );
    }
    Ok(())
}

/// Checks every checksum; returns false (exit 1) when anything is damaged.
pub fn verify(path: &Path) -> Result<bool> {
    if !path.is_dir() {
        bail!("{}: not a directory", path.display());
    }
    let rep = inspect::verify_dir(path)?;
    for n in &rep.notes {
        println!("note: {n}");
    }
    for p in &rep.problems {
        eprintln!("damage: {p}");
    }
    println!(
        "checked {} WAL files ({} batches) and {} segments ({} rows): {}",
        rep.wal_files,
        rep.wal_records,
        rep.segments,
        rep.segment_rows,
        if rep.problems.is_empty() {
            "clean".to_string()
        } else {
            format!("{} damaged", rep.problems.len())
        }
    );
    Ok(rep.problems.is_empty())
}

/// Writes a segment's logs as NDJSON, oldest first.
pub fn dump(path: &Path, limit: Option<usize>) -> Result<()> {
    let seg = SegmentReader::open(&ledger_engine::fs::RealFs, path)?;
    let project = project_dir(seg.project);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut left = limit.unwrap_or(usize::MAX);
    for i in 0..seg.blocks.len() {
        if left == 0 {
            break;
        }
        for r in seg.read_block(i)?.iter().take(left) {
            serde_json::to_writer(&mut out, &json::record_json(r, &project))?;
            out.write_all(b"\n").context("stdout")?;
            left -= 1;
        }
    }
    out.flush().context("stdout")?;
    Ok(())
}

/// Rebuilds the search index offline: the whole of it (delete and let the engine rebuild at
/// open), or one project's documents.
pub fn reindex(dir: &Path, project: Option<&str>) -> Result<()> {
    if !dir.join("catalog.redb").is_file() {
        bail!(
            "{}: not a Ledger data directory (no catalog.redb)",
            dir.display()
        );
    }
    let project = project
        .map(|p| {
            u64::from_str_radix(p, 16)
                .ok()
                .filter(|_| p.len() == 16)
                .with_context(|| format!("--project {p:?}: expected 16 hex digits"))
        })
        .transpose()?;
    if project.is_none() {
        let index = dir.join("index");
        if index.exists() {
            std::fs::remove_dir_all(&index)
                .with_context(|| format!("removing {}", index.display()))?;
        }
    }
    let started = std::time::Instant::now();
    let (engine, report) = ledger_engine::Engine::open(dir, ledger_engine::EngineConfig::default())
        .with_context(|| format!("opening {} (is a server running on it?)", dir.display()))?;
    let n = match project {
        Some(p) => engine.reindex_project(p)?,
        None => engine.stats().segment_rows + report.recovery.rows_replayed,
    };
    engine.close()?;
    println!(
        "re-indexed {n} logs{} in {:.1}s",
        project
            .map(|p| format!(" of project {p:016x}"))
            .unwrap_or_default(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
