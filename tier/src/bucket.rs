//! A bucket and a prefix in it, reached through `object_store`: the one place that builds
//! the client, names objects and retries.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey, Checksum};
use object_store::path::Path as ObjectPath;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, RetryConfig};

use crate::error::{Result, TierError};

/// A bucket and a prefix in it: `s3://bucket/prefix`.
#[derive(Clone)]
pub struct Bucket {
    store: Arc<dyn ObjectStore>,
    prefix: String,
    url: String,
}

impl std::fmt::Debug for Bucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bucket").field("url", &self.url).finish()
    }
}

impl Bucket {
    /// Opens `s3://bucket[/prefix]`, with credentials, region and endpoint from the standard
    /// AWS variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`,
    /// `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP`, …). Nothing is contacted yet.
    pub fn open(url: &str) -> Result<Bucket> {
        let vars: Vec<(String, String)> = std::env::vars()
            .filter(|(k, _)| k.starts_with("AWS_"))
            .collect();
        Bucket::open_with(url, &vars)
    }

    /// [`Bucket::open`] with the AWS variables given rather than read from the environment.
    pub fn open_with(url: &str, vars: &[(String, String)]) -> Result<Bucket> {
        let bad = |why: &str| TierError::Url {
            url: url.to_owned(),
            why: why.to_owned(),
        };
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| bad("only s3://bucket/prefix is supported"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(bad("no bucket name"));
        }
        let prefix = prefix.trim_matches('/').to_owned();
        if prefix.split('/').any(|p| p == "." || p == "..") {
            return Err(bad("the prefix may not contain . or .."));
        }
        crate::install_crypto();
        let mut b = AmazonS3Builder::new()
            .with_region("us-east-1")
            .with_bucket_name(bucket)
            .with_checksum_algorithm(Checksum::SHA256)
            .with_retry(RetryConfig {
                backoff: BackoffConfig {
                    init_backoff: Duration::from_millis(100),
                    max_backoff: Duration::from_secs(10),
                    base: 2.0,
                },
                max_retries: 5,
                retry_timeout: Duration::from_secs(60),
            })
            .with_client_options(
                ClientOptions::new()
                    .with_connect_timeout(Duration::from_secs(5))
                    .with_timeout(Duration::from_secs(120)),
            );
        // AWS_REGION outranks AWS_DEFAULT_REGION, as in the AWS SDKs.
        let mut vars: Vec<&(String, String)> = vars.iter().collect();
        vars.sort_by_key(|(k, _)| k == "AWS_REGION");
        for (k, v) in vars {
            b = match k.as_str() {
                "AWS_ENDPOINT_URL" | "AWS_ENDPOINT" => b.with_endpoint(v),
                "AWS_REGION" | "AWS_DEFAULT_REGION" => b.with_region(v),
                "AWS_ALLOW_HTTP" => b.with_allow_http(v.eq_ignore_ascii_case("true") || v == "1"),
                other => match other.to_ascii_lowercase().parse::<AmazonS3ConfigKey>() {
                    Ok(key) => b.with_config(key, v),
                    Err(_) => b,
                },
            };
        }
        let store = b.build().map_err(|e| bad(&e.to_string()))?;
        Ok(Bucket {
            store: Arc::new(store),
            prefix,
            url: url.to_owned(),
        })
    }

    /// The URL this was opened with.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn path(&self, key: &str) -> ObjectPath {
        if self.prefix.is_empty() {
            ObjectPath::from(key)
        } else {
            ObjectPath::from(format!("{}/{key}", self.prefix))
        }
    }

    /// Stores `bytes` under `key` (relative to the prefix), replacing any object there.
    pub async fn put(&self, key: &str, bytes: Bytes) -> Result<()> {
        self.store.put(&self.path(key), bytes.into()).await?;
        Ok(())
    }

    /// The object under `key`, or `None` when there is none.
    pub async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        match self.store.get(&self.path(key)).await {
            Ok(r) => Ok(Some(r.bytes().await?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// `len` bytes of the object under `key` from `offset`.
    pub async fn get_range(&self, key: &str, offset: u64, len: u64) -> Result<Bytes> {
        Ok(self
            .store
            .get_range(&self.path(key), offset..offset + len)
            .await?)
    }

    /// Removes the object under `key`; a missing one is not an error.
    pub async fn delete(&self, key: &str) -> Result<()> {
        match self.store.delete(&self.path(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Every object under `dir` (relative to the prefix): its key and size.
    pub async fn list(&self, dir: &str) -> Result<Vec<(String, u64)>> {
        let base = self.path(dir);
        let strip = if self.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.prefix)
        };
        let metas: Vec<_> = self.store.list(Some(&base)).try_collect().await?;
        Ok(metas
            .into_iter()
            .map(|m| {
                let full = m.location.to_string();
                let key = full.strip_prefix(&strip).unwrap_or(&full).to_owned();
                (key, m.size)
            })
            .collect())
    }
}
