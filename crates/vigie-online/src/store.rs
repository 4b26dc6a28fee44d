//! [`OnlineLocation`], where the online store is (from `[storage]` of
//! `vigie.toml`), and [`OnlineStore`], one handle on it with the same
//! methods whatever the backend.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use vigie_connectors::mongodb::{LatestDocument, LatestRead, MongoLatest};
use vigie_connectors::postgres::redact_url;
use vigie_core::config::{EMBEDDED, Storage, expand_env};

use crate::embedded::Embedded;
use crate::error::{OnlineError, Result};
use crate::rows::{LatestRow, OnlineRow, version};

/// How long to wait for a MongoDB server that does not answer, unless the URL
/// says (`serverSelectionTimeoutMS`, `connectTimeoutMS`). Short, because the
/// prediction server reads the store inside its requests and readiness gives
/// the store 2 s.
const SERVER_TIMEOUT: Duration = Duration::from_secs(1);

/// Where the online store is. For MongoDB it holds the client (and its pool
/// of connections), shared by every store opened from it.
#[derive(Clone)]
pub struct OnlineLocation {
    target: Target,
}

#[derive(Clone)]
enum Target {
    Embedded(PathBuf),
    Mongo(MongoLatest),
}

impl OnlineLocation {
    /// The embedded store in the SQLite file `path`.
    pub fn embedded(path: impl Into<PathBuf>) -> OnlineLocation {
        OnlineLocation { target: Target::Embedded(path.into()) }
    }

    /// The collection `database.collection` of the MongoDB server at `url`. Nothing is
    /// connected yet: a server that is down is an error of the first read or write.
    pub fn mongodb(url: &str, database: &str, collection: &str) -> Result<OnlineLocation> {
        let collection = MongoLatest::new(url, database, collection, SERVER_TIMEOUT)?;
        Ok(OnlineLocation { target: Target::Mongo(collection) })
    }

    /// The store `[storage]` names: `embedded` is `STATE_DIR/online.db`; a
    /// `mongodb://` URL (after `${VAR}` expansion) is its `online_database`
    /// and `online_collection`.
    pub fn from_config(storage: &Storage, state_dir: &Path) -> Result<OnlineLocation> {
        let online = storage.online.get_ref();
        if online == EMBEDDED {
            return Ok(OnlineLocation::embedded(state_dir.join("online.db")));
        }
        let url = expand_env(online).map_err(OnlineError::Config)?;
        if !url.starts_with("mongodb://") {
            return Err(OnlineError::Config(format!(
                "{:?} is not `embedded` or a MongoDB URL (mongodb://USER:PASSWORD@HOST:PORT/?OPTIONS)",
                redact_url(&url)
            )));
        }
        OnlineLocation::mongodb(&url, &storage.online_database, &storage.online_collection)
    }

    /// Whether the store is the embedded file (read in microseconds from the
    /// page cache), not a server across the network.
    pub fn is_embedded(&self) -> bool {
        matches!(self.target, Target::Embedded(_))
    }

    /// Whether there is a store to read: an embedded file that no writer has
    /// created yet is not; a MongoDB collection is (empty until written).
    pub fn exists(&self) -> bool {
        self.identity().is_some()
    }

    /// Which store is there now: the embedded file's device and inode, so
    /// that a file removed and created again (a handle on the old one would
    /// go on reading it) is told from the one a handle was opened on; `None`
    /// when there is no file yet. A MongoDB collection is always the same.
    pub fn identity(&self) -> Option<(u64, u64)> {
        use std::os::unix::fs::MetadataExt as _;
        match &self.target {
            Target::Embedded(path) => std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino())),
            Target::Mongo(_) => Some((0, 0)),
        }
    }
}

impl fmt::Display for OnlineLocation {
    /// The file, or the MongoDB URL without its password and the collection.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.target {
            Target::Embedded(path) => write!(f, "{}", path.display()),
            Target::Mongo(collection) => write!(f, "{}", collection.describe()),
        }
    }
}

impl fmt::Debug for OnlineLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OnlineLocation({self})")
    }
}

/// One handle on the online store.
pub struct OnlineStore {
    backend: Backend,
}

enum Backend {
    Embedded(Embedded),
    /// The collection, and whether its unique index is known to exist.
    Mongo {
        collection: MongoLatest,
        indexed: bool,
    },
}

impl OnlineStore {
    /// Opens the store at `location` for reading and writing: an embedded
    /// file is created (or upgraded from an earlier layout); a MongoDB
    /// collection gets its unique index at the first write.
    pub fn open(location: &OnlineLocation) -> Result<OnlineStore> {
        let backend = match &location.target {
            Target::Embedded(path) => Backend::Embedded(Embedded::open(path)?),
            Target::Mongo(collection) => {
                Backend::Mongo { collection: collection.clone(), indexed: false }
            }
        };
        Ok(OnlineStore { backend })
    }

    /// Opens an existing store at `location` for reading only, as the server
    /// does while a `vigie materialize` or the stream processor writes it.
    pub fn open_read_only(location: &OnlineLocation) -> Result<OnlineStore> {
        let backend = match &location.target {
            Target::Embedded(path) => Backend::Embedded(Embedded::open_read_only(path)?),
            Target::Mongo(collection) => {
                Backend::Mongo { collection: collection.clone(), indexed: false }
            }
        };
        Ok(OnlineStore { backend })
    }

    /// Upserts `rows` of `view`, each only when newer than the stored row of
    /// its key (see [`crate::rows`]); returns the keys written.
    pub fn write<'a>(
        &mut self,
        view: &str,
        rows: impl IntoIterator<Item = LatestRow<'a>>,
    ) -> Result<usize> {
        let rows = rows
            .into_iter()
            .map(|row| (row.key, row.time, version(row.time, row.arrival), row.values));
        match &mut self.backend {
            Backend::Embedded(store) => store.write(view, rows),
            Backend::Mongo { collection, indexed } => {
                if !*indexed {
                    collection.ensure_index()?;
                    *indexed = true;
                }
                let rows: Vec<_> = rows.collect();
                let documents: Vec<LatestDocument<'_>> = rows
                    .iter()
                    .map(|(key, time, version, values)| LatestDocument {
                        key,
                        time: *time,
                        version,
                        values,
                    })
                    .collect();
                Ok(collection.write(view, &documents)?)
            }
        }
    }

    /// The latest row of `key` in `view`, if any.
    pub fn get(&self, view: &str, key: &str) -> Result<Option<OnlineRow>> {
        match &self.backend {
            Backend::Embedded(store) => store.get(view, key),
            Backend::Mongo { collection, .. } => match collection.get(view, key)? {
                None => Ok(None),
                Some(LatestRead { time: Some(time), values }) => {
                    Ok(Some(OnlineRow { time, values }))
                }
                Some(LatestRead { time: None, .. }) => {
                    Err(OnlineError::Unreadable { view: view.to_owned(), key: key.to_owned() })
                }
            },
        }
    }

    /// Keys stored for `view`.
    pub fn count(&self, view: &str) -> Result<u64> {
        match &self.backend {
            Backend::Embedded(store) => store.count(view),
            Backend::Mongo { collection, .. } => Ok(collection.count(view)?),
        }
    }

    /// The views that have at least one row, by name.
    pub fn views(&self) -> Result<Vec<String>> {
        match &self.backend {
            Backend::Embedded(store) => store.views(),
            Backend::Mongo { collection, .. } => Ok(collection.views()?),
        }
    }
}
