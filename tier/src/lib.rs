//! `ledger-tier`: Ledger on S3-compatible object storage.
//!
//! A writer uploads every sealed segment, a copy of the engine's catalog, the server's
//! metadata and its secret to a bucket, then publishes a manifest naming exactly those
//! objects ([`Uploader`]). A node started on an empty data directory rebuilds it from the
//! newest manifest ([`rebuild`]); `ledgerctl verify s3://…` checks every object the manifest
//! names ([`verify`]). The bucket layout and the manifest are in `engine/FORMAT.md`,
//! "Object storage".
//!
//! Everything here talks to the network through the `object_store` crate; nothing here runs
//! unless a bucket is configured.

mod bucket;
mod error;
mod follow;
mod manifest;
mod rebuild;
mod remote;
mod upload;
mod verify;

#[cfg(feature = "testing")]
pub mod testing;

pub use bucket::Bucket;
pub use error::{Result, TierError};
pub use follow::{FollowStats, Follower, Pending};
pub use manifest::{read_manifest, Blob, IndexFile, Manifest, SegmentEntry, MANIFEST_VERSION};
pub use rebuild::{rebuild, RebuildReport};
pub use remote::SegmentDirectory;
pub use upload::{MetaSnapshot, Round, TierStats, Uploader, UploaderConfig};
pub use verify::{verify, Finding, VerifyReport};

/// Makes ring rustls's crypto provider for the process (reqwest's TLS asks for the process
/// default); a second call is harmless.
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
