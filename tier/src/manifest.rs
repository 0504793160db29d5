//! The manifest: the one object that says what a bucket holds. It is written last, after
//! every object it names, so whatever manifest a reader finds names only whole objects.
//! Layout (relative to the bucket's prefix; FORMAT.md, "Object storage"):
//!
//! ```text
//! manifest.json                                        this file
//! segments/<project:016x>/<segment:016x>-<blake3:16>.seg   sealed segments
//! catalog/<generation:016x>.redb                       the engine's catalog
//! meta/<generation:016x>.redb                          accounts, keys, projects, usage
//! secret/server.secret                                 the server secret
//! index/<blake3:16>-<file name>                        the search index's committed files
//! ```

use ledger_engine::ProjectId;
use serde::{Deserialize, Serialize};

use crate::error::{Result, TierError};

pub const MANIFEST_VERSION: u32 = 1;
pub const MANIFEST_KEY: &str = "manifest.json";
pub const SECRET_KEY: &str = "secret/server.secret";

/// One object: its key, size and BLAKE3 hash (hex).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Blob {
    pub key: String,
    pub bytes: u64,
    pub blake3: String,
}

/// A sealed segment in the bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentEntry {
    pub project: ProjectId,
    pub id: u64,
    pub rows: u64,
    pub min_ts: i64,
    pub max_ts: i64,
    #[serde(flatten)]
    pub blob: Blob,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub version: u32,
    /// Grows by one with every manifest a writer publishes.
    pub generation: u64,
    /// When it was published (µs since the epoch).
    pub published_at: i64,
    pub catalog: Blob,
    pub meta: Blob,
    pub secret: Blob,
    /// Every sealed segment, by project then id.
    pub segments: Vec<SegmentEntry>,
    /// The search index's files as of one commit (`meta.json` and the files of the index
    /// segments it names); empty when the writer keeps no index.
    #[serde(default)]
    pub index: Vec<IndexFile>,
}

/// One file of the search index directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexFile {
    pub name: String,
    #[serde(flatten)]
    pub blob: Blob,
}

impl Manifest {
    pub fn encode(&self) -> Vec<u8> {
        // Plain structs with string keys: serialising cannot fail.
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }

    pub fn decode(bytes: &[u8]) -> Result<Manifest> {
        let bad = |why: String| TierError::Manifest {
            key: MANIFEST_KEY.into(),
            why,
        };
        let m: Manifest = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
        if m.version != MANIFEST_VERSION {
            return Err(bad(format!(
                "version {} (this build reads {MANIFEST_VERSION})",
                m.version
            )));
        }
        Ok(m)
    }

    /// Every object the manifest names.
    pub fn blobs(&self) -> impl Iterator<Item = &Blob> {
        [&self.catalog, &self.meta, &self.secret]
            .into_iter()
            .chain(self.segments.iter().map(|s| &s.blob))
            .chain(self.index.iter().map(|f| &f.blob))
    }

    /// Logs in the sealed segments.
    pub fn rows(&self) -> u64 {
        self.segments.iter().map(|s| s.rows).sum()
    }
}

/// The bucket's manifest, if it has one.
pub async fn read_manifest(bucket: &crate::Bucket) -> Result<Option<Manifest>> {
    match bucket.get(MANIFEST_KEY).await? {
        Some(b) => Manifest::decode(&b).map(Some),
        None => Ok(None),
    }
}

/// The key of a segment's object: its hash is in the name, so two different files never
/// share a key (a writer rebuilt from an older manifest reuses segment ids).
pub fn segment_key(project: ProjectId, id: u64, blake3: &str) -> String {
    format!(
        "segments/{}/{id:016x}-{}.seg",
        ledger_engine::project_dir(project),
        &blake3[..16]
    )
}

/// The key of an index file: content-addressed too (`meta.json` changes at every commit).
pub fn index_key(name: &str, blake3: &str) -> String {
    format!("index/{}-{name}", &blake3[..16])
}

pub fn catalog_key(generation: u64) -> String {
    format!("catalog/{generation:016x}.redb")
}

pub fn meta_key(generation: u64) -> String {
    format!("meta/{generation:016x}.redb")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(key: &str) -> Blob {
        Blob {
            key: key.into(),
            bytes: 3,
            blake3: "ab".repeat(32),
        }
    }

    #[test]
    fn manifest_round_trips_and_refuses_other_versions() {
        let m = Manifest {
            version: MANIFEST_VERSION,
            generation: 7,
            published_at: 1,
            catalog: blob(&catalog_key(7)),
            meta: blob(&meta_key(7)),
            secret: blob(SECRET_KEY),
            segments: vec![SegmentEntry {
                project: 3,
                id: 9,
                rows: 10,
                min_ts: -1,
                max_ts: 5,
                blob: blob(&segment_key(3, 9, &"cd".repeat(32))),
            }],
            index: vec![IndexFile {
                name: "meta.json".into(),
                blob: blob(&index_key("meta.json", &"ef".repeat(32))),
            }],
        };
        let back = Manifest::decode(&m.encode()).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.blobs().count(), 5);
        assert_eq!(
            back.segments[0].blob.key,
            "segments/0000000000000003/0000000000000009-cdcdcdcdcdcdcdcd.seg"
        );
        let mut other = m.clone();
        other.version = 2;
        let err = Manifest::decode(&other.encode()).unwrap_err().to_string();
        assert!(err.contains("version 2"), "{err}");
        assert!(Manifest::decode(b"{").is_err());
    }
}
