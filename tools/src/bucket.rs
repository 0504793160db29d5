//! `ledgerctl verify s3://bucket/prefix`: every object the bucket's manifest names is read
//! back and checked against the size and BLAKE3 hash the manifest gives.

use anyhow::Context;

/// Prints what the bucket holds and every damaged or missing object; true when none is.
pub fn verify(url: &str) -> anyhow::Result<bool> {
    let bucket = ledger_tier::Bucket::open(url)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let r = rt.block_on(ledger_tier::verify(&bucket))?;
    println!(
        "{url}: manifest generation {}, {} objects, {} segments, {} logs, {} bytes read",
        r.generation, r.objects, r.segments, r.rows, r.bytes
    );
    for f in &r.damaged {
        println!(
            "damaged: {}/{}: {}",
            url.trim_end_matches('/'),
            f.key,
            f.why
        );
    }
    if r.damaged.is_empty() {
        println!("ok");
    } else {
        println!(
            "{} of {} objects damaged or missing",
            r.damaged.len(),
            r.objects
        );
    }
    Ok(r.damaged.is_empty())
}
