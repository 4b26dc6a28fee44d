//! Where model files and other run artifacts are kept: a folder on local disk or an S3
//! bucket (AWS or any S3-compatible server), behind one blocking API of whole objects
//! (`put`, `get`, `delete`) addressed by a relative key such as `artifacts/RUN/NAME-v1.vgm`.
//!
//! Both stores go through `object_store`, so local and S3 behave alike (a `put` replaces the
//! object whole; on disk it writes a temporary file, renames it and flushes the file and its
//! folders to the disk). `object_store` is async: each [`ArtifactStore`] drives it on a
//! private current-thread tokio runtime, so callers stay synchronous. Do not call it from inside another tokio runtime. What it does not do: stream
//! large objects (objects are read and written whole) or create buckets. It also holds the
//! feature store's offline store (Parquet parts, state files), which lists its folders.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{
    BackoffConfig, ClientConfigKey, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig,
};

use crate::ConnectorError;

/// Settings of an S3 store that override the standard `AWS_*` environment variables
/// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`,
/// `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP`…), which are read first.
#[derive(Debug, Clone, Default)]
pub struct S3Options {
    /// The server, for S3-compatible stores (`http://127.0.0.1:9000`); none for AWS.
    pub endpoint: Option<String>,
    /// The region (AWS's default, `us-east-1`, when neither set nor in the environment).
    pub region: Option<String>,
    /// Access key id.
    pub access_key_id: Option<String>,
    /// Secret access key.
    pub secret_access_key: Option<String>,
}

/// A store of whole objects addressed by relative keys.
pub struct ArtifactStore {
    store: Arc<dyn ObjectStore>,
    runtime: tokio::runtime::Runtime,
    root: Root,
}

enum Root {
    /// Keys are files under this folder.
    Local(PathBuf),
    /// Keys are objects of this bucket under this prefix (empty, or ending in `/`).
    S3 { bucket: String, prefix: String },
}

fn runtime(location: &str) -> Result<tokio::runtime::Runtime, ConnectorError> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|source| {
        ConnectorError::Artifacts {
            location: location.to_owned(),
            message: format!("cannot start the I/O runtime: {source}"),
            not_found: false,
        }
    })
}

/// Flushes the file `path` to the disk, then each folder from its own up to `root`, whose
/// entries name the new file and folders (`object_store` renames a temporary file into
/// place without either).
fn sync_down_to(root: &Path, path: &Path) -> Result<(), ConnectorError> {
    let sync = |at: &Path| {
        std::fs::File::open(at)
            .and_then(|opened| opened.sync_all())
            .map_err(|source| ConnectorError::Io { path: at.to_owned(), source })
    };
    sync(path)?;
    for folder in path.ancestors().skip(1) {
        sync(folder)?;
        if folder == root {
            break;
        }
    }
    Ok(())
}

/// True when `endpoint` names this machine, where plain HTTP is acceptable.
fn is_loopback(endpoint: &str) -> bool {
    let host = endpoint.split_once("://").map_or(endpoint, |(_, rest)| rest);
    ["127.0.0.1", "localhost", "[::1]"].iter().any(|loopback| {
        host.strip_prefix(loopback)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with([':', '/']))
    })
}

impl ArtifactStore {
    /// Objects as files under `dir` (created when missing).
    pub fn local(dir: &Path) -> Result<Self, ConnectorError> {
        let location = dir.display().to_string();
        std::fs::create_dir_all(dir)
            .map_err(|source| ConnectorError::Io { path: dir.to_owned(), source })?;
        let store =
            LocalFileSystem::new_with_prefix(dir).map_err(|source| ConnectorError::Artifacts {
                location: location.clone(),
                message: source.to_string(),
                not_found: false,
            })?;
        Ok(ArtifactStore {
            store: Arc::new(store),
            runtime: runtime(&location)?,
            root: Root::Local(dir.to_owned()),
        })
    }

    /// Objects of an S3 bucket: `url` is `s3://BUCKET` or `s3://BUCKET/PREFIX`. Plain HTTP is
    /// allowed for an endpoint on this machine (127.0.0.1, localhost) or with `AWS_ALLOW_HTTP=true`.
    pub fn s3(url: &str, options: &S3Options) -> Result<Self, ConnectorError> {
        let invalid = |message: String| ConnectorError::Artifacts {
            location: url.to_owned(),
            message,
            not_found: false,
        };
        let Some(rest) = url.strip_prefix("s3://") else {
            return Err(invalid("expected s3://BUCKET or s3://BUCKET/PREFIX".to_owned()));
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(invalid(
                "no bucket: expected s3://BUCKET or s3://BUCKET/PREFIX".to_owned(),
            ));
        }
        let prefix = prefix.trim_matches('/');
        let prefix = if prefix.is_empty() { String::new() } else { format!("{prefix}/") };
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
        if let Some(endpoint) = &options.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        if let Some(region) = &options.region {
            builder = builder.with_region(region);
        }
        if let Some(key) = &options.access_key_id {
            builder = builder.with_access_key_id(key);
        }
        if let Some(secret) = &options.secret_access_key {
            builder = builder.with_secret_access_key(secret);
        }
        let endpoint = [AmazonS3ConfigKey::S3Endpoint, AmazonS3ConfigKey::Endpoint]
            .iter()
            .find_map(|key| builder.get_config_value(key));
        if endpoint.as_deref().is_some_and(is_loopback) {
            builder = builder.with_allow_http(true);
        }
        // A server that does not answer fails in seconds, not after the default 3 minutes of retries.
        let retry = RetryConfig {
            backoff: BackoffConfig::default(),
            max_retries: 3,
            retry_timeout: Duration::from_secs(30),
        };
        // Through with_config: with_client_options would drop AWS_ALLOW_HTTP and the like.
        let store = builder
            .with_retry(retry)
            .with_config(AmazonS3ConfigKey::Client(ClientConfigKey::ConnectTimeout), "5s")
            .with_config(AmazonS3ConfigKey::Client(ClientConfigKey::Timeout), "60s")
            .build()
            .map_err(|source| invalid(source.to_string()))?;
        Ok(ArtifactStore {
            store: Arc::new(store),
            runtime: runtime(url)?,
            root: Root::S3 { bucket: bucket.to_owned(), prefix },
        })
    }

    /// The underlying object store (rooted at the bucket for S3, at the folder on disk), for
    /// readers that take one, such as the feature store's SQL engine.
    pub fn object_store(&self) -> Arc<dyn ObjectStore> {
        Arc::clone(&self.store)
    }

    /// Where `key` is, for people: a file path or an `s3://` URL.
    pub fn location(&self, key: &str) -> String {
        match &self.root {
            Root::Local(dir) => dir.join(key).display().to_string(),
            Root::S3 { bucket, prefix } => format!("s3://{bucket}/{prefix}{key}"),
        }
    }

    fn path(&self, key: &str) -> Result<ObjectPath, ConnectorError> {
        let full = match &self.root {
            Root::Local(_) => key.to_owned(),
            Root::S3 { prefix, .. } => format!("{prefix}{key}"),
        };
        ObjectPath::parse(&full).map_err(|source| ConnectorError::Artifacts {
            location: self.location(key),
            message: format!("not a valid object key: {source}"),
            not_found: false,
        })
    }

    fn failed(&self, key: &str, source: object_store::Error) -> ConnectorError {
        let not_found = matches!(source, object_store::Error::NotFound { .. });
        let message = if not_found { "no such object".to_owned() } else { source.to_string() };
        ConnectorError::Artifacts { location: self.location(key), message, not_found }
    }

    /// Writes `bytes` as the object `key`, replacing it whole. On local disk the file and
    /// the folders down to it are on the disk when this returns (S3 acknowledges only
    /// stored objects): a registry row written next never names a file a power cut lost.
    pub fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), ConnectorError> {
        let path = self.path(key)?;
        self.runtime
            .block_on(self.store.put(&path, PutPayload::from(bytes)))
            .map_err(|source| self.failed(key, source))?;
        match &self.root {
            Root::Local(root) => sync_down_to(root, &root.join(key)),
            Root::S3 { .. } => Ok(()),
        }
    }

    /// Reads the object `key` whole.
    pub fn get(&self, key: &str) -> Result<Vec<u8>, ConnectorError> {
        self.get_bytes(key).map(|bytes| bytes.to_vec())
    }

    /// Reads the object `key` whole, in the buffer the store read it into (no copy).
    pub fn get_bytes(&self, key: &str) -> Result<bytes::Bytes, ConnectorError> {
        let path = self.path(key)?;
        self.runtime
            .block_on(async {
                let found = self.store.get(&path).await?;
                found.bytes().await
            })
            .map_err(|source| self.failed(key, source))
    }

    /// The keys of the objects under `prefix` (a folder-like key such as `sources/orders/`),
    /// at any depth, in name order.
    pub fn list(&self, prefix: &str) -> Result<Vec<String>, ConnectorError> {
        use futures::TryStreamExt as _;
        let root = match &self.root {
            Root::Local(_) => String::new(),
            Root::S3 { prefix, .. } => prefix.clone(),
        };
        let path = self.path(prefix.trim_end_matches('/'))?;
        let listed: Vec<object_store::ObjectMeta> =
            match self.runtime.block_on(self.store.list(Some(&path)).try_collect::<Vec<_>>()) {
                Ok(listed) => listed,
                Err(object_store::Error::NotFound { .. }) => Vec::new(),
                Err(source) => return Err(self.failed(prefix, source)),
            };
        let mut keys: Vec<String> = listed
            .into_iter()
            .filter_map(|meta| meta.location.as_ref().strip_prefix(&root).map(str::to_owned))
            .collect();
        keys.sort();
        Ok(keys)
    }

    /// Deletes the object `key` (no error when it is already gone).
    pub fn delete(&self, key: &str) -> Result<(), ConnectorError> {
        let path = self.path(key)?;
        match self.runtime.block_on(self.store.delete(&path)) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(source) => Err(self.failed(key, source)),
        }
    }
}

#[cfg(test)]
mod tests;
