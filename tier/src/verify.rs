//! Checking a bucket against its manifest: every object named is there, whole, with the
//! hash the manifest gives (`ledgerctl verify s3://…`).

use futures::StreamExt;

use crate::bucket::Bucket;
use crate::error::{Result, TierError};
use crate::manifest::{Manifest, MANIFEST_KEY};
use crate::rebuild::fetch;

/// One object that is not as the manifest says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub key: String,
    pub why: String,
}

#[derive(Debug, Clone)]
pub struct VerifyReport {
    pub generation: u64,
    pub objects: usize,
    pub segments: usize,
    pub rows: u64,
    pub bytes: u64,
    pub damaged: Vec<Finding>,
}

/// Reads every object the manifest names and checks its size and hash. A bucket without a
/// manifest is an error; damaged or missing objects are findings, all of them listed.
pub async fn verify(bucket: &Bucket) -> Result<VerifyReport> {
    let raw = bucket
        .get(MANIFEST_KEY)
        .await?
        .ok_or_else(|| TierError::Manifest {
            key: MANIFEST_KEY.into(),
            why: format!("missing: {} holds no Ledger manifest", bucket.url()),
        })?;
    let m = Manifest::decode(&raw)?;
    let checks = m.blobs().cloned().map(|b| {
        let bucket = bucket.clone();
        async move { fetch(&bucket, &b).await }
    });
    let results: Vec<_> = futures::stream::iter(checks).buffered(4).collect().await;
    let mut damaged = Vec::new();
    let mut bytes = 0;
    for r in results {
        match r {
            Ok(b) => bytes += b.len() as u64,
            Err(TierError::Damaged { key, why }) => damaged.push(Finding { key, why }),
            Err(e) => return Err(e),
        }
    }
    Ok(VerifyReport {
        generation: m.generation,
        objects: m.blobs().count(),
        segments: m.segments.len(),
        rows: m.rows(),
        bytes,
        damaged,
    })
}
