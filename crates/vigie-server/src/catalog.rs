//! The models being served, and the thread that keeps them in step with the
//! registry.
//!
//! Each registered tabular model is served at its `champion` (else its
//! latest version). Other versions are loaded on first request and kept. A
//! thread polls the registry's generation counter once a second and swaps in
//! a fresh catalog when it moved, so promotions and rollbacks take effect
//! without a restart and without failing a request in flight (readers hold
//! the old catalog until they finish).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use vigie_ml::{Model, SavedModel};
use vigie_registry::{ModelRef, Registry, Selector};

use crate::error::ApiError;

/// Opens the registry (a SQLite file, or PostgreSQL shared by replicas).
pub type OpenRegistry = Arc<dyn Fn() -> Result<Registry, String> + Send + Sync>;

/// One loaded model version.
#[derive(Debug)]
pub struct Served {
    /// The model's name.
    pub name: String,
    /// Its version.
    pub version: u32,
    /// Its aliases when loaded.
    pub aliases: Vec<String>,
    /// The model.
    pub model: Model,
}

/// A forecast model's serving version.
#[derive(Debug)]
pub struct ServedForecast {
    /// The model's name.
    pub name: String,
    /// Its version.
    pub version: u32,
    /// The model.
    pub forecaster: vigie_ml::forecast::Forecaster,
}

/// The serving version of every model, as of one registry generation.
#[derive(Debug, Default)]
pub struct Catalog {
    /// The registry generation this catalog reflects.
    pub generation: u64,
    /// Model name → its serving version.
    pub models: BTreeMap<String, Arc<Served>>,
    /// Forecast model name → its serving version (`POST /v1/models/{name}/forecast`).
    pub forecasters: BTreeMap<String, Arc<ServedForecast>>,
    /// Models the server skips, with why (unreadable files).
    pub skipped: Vec<(String, String)>,
    /// Model name → its routing between versions, with the versions it needs loaded.
    pub routes: BTreeMap<String, Arc<crate::routing::Route>>,
}

/// What every request handler shares.
pub struct Shared {
    catalog: RwLock<Arc<Catalog>>,
    versions: Mutex<BTreeMap<(String, u32), Arc<Served>>>,
    open: OpenRegistry,
    /// Only this model, when the server is one model's microservice.
    only: Option<String>,
    routing: crate::routing::RoutingState,
    /// Set when the server stops: readiness answers 503 while requests in flight finish.
    draining: AtomicBool,
}

impl Catalog {
    /// Loads the serving version of every model (or only `only`).
    pub fn load(registry: &Registry, only: Option<&str>) -> Result<Catalog, String> {
        let generation = registry.generation().map_err(|e| e.to_string())?;
        let mut catalog = Catalog { generation, ..Catalog::default() };
        let names: Vec<String> = match only {
            Some(name) => vec![name.to_owned()],
            None => {
                registry.models().map_err(|e| e.to_string())?.into_iter().map(|m| m.name).collect()
            }
        };
        for name in names {
            let reference = ModelRef { name: name.clone(), selector: Selector::Default };
            let info = registry.resolve(&reference).map_err(|e| e.to_string())?;
            match registry.load(&info).map_err(|e| e.to_string()) {
                Ok(SavedModel::Forecast(forecaster)) => {
                    catalog.forecasters.insert(
                        name.clone(),
                        Arc::new(ServedForecast {
                            name,
                            version: info.version,
                            forecaster: *forecaster,
                        }),
                    );
                }
                Ok(SavedModel::Tabular(model)) => {
                    let model = *model;
                    catalog.models.insert(
                        name.clone(),
                        Arc::new(Served {
                            name,
                            version: info.version,
                            aliases: info.aliases,
                            model,
                        }),
                    );
                }
                Err(reason) if only.is_some() => return Err(reason),
                Err(reason) => catalog.skipped.push((name, reason)),
            }
        }
        catalog.routes = crate::routing::load_routes(registry, &catalog.models);
        Ok(catalog)
    }
}

impl Shared {
    /// Loads the catalog and starts the thread that follows the registry.
    pub fn start(open: OpenRegistry, only: Option<String>) -> Result<Arc<Shared>, String> {
        let registry = open()?;
        let catalog = Catalog::load(&registry, only.as_deref())?;
        let shared = Arc::new(Shared {
            catalog: RwLock::new(Arc::new(catalog)),
            versions: Mutex::new(BTreeMap::new()),
            open,
            only,
            routing: crate::routing::RoutingState::default(),
            draining: AtomicBool::new(false),
        });
        let watcher = Arc::downgrade(&shared);
        std::thread::Builder::new()
            .name("vigie-registry-watch".into())
            .spawn(move || {
                let mut registry = Some(registry);
                while let Some(shared) = watcher.upgrade() {
                    std::thread::sleep(Duration::from_secs(1));
                    if registry.is_none() {
                        registry = (shared.open)().ok();
                    }
                    let Some(current) = registry.as_ref() else { continue };
                    let Ok(generation) = current.generation() else {
                        registry = None;
                        continue;
                    };
                    if generation != shared.catalog().generation {
                        let _ = shared.refresh(current);
                    }
                }
            })
            .map_err(|e| format!("cannot start the registry watcher: {e}"))?;
        Ok(shared)
    }

    /// The current catalog.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog.read().map_or_else(|poisoned| poisoned.into_inner().clone(), |c| c.clone())
    }

    /// Loads the registry's catalog and swaps it in, unless a newer one is already there
    /// (the watcher and an admin change may both reload).
    pub(crate) fn refresh(&self, registry: &Registry) -> Result<(), String> {
        let fresh = Catalog::load(registry, self.only.as_deref())?;
        let mut slot = self.catalog.write().map_err(|_| "the catalog lock is poisoned")?;
        if fresh.generation >= slot.generation {
            *slot = Arc::new(fresh);
        }
        Ok(())
    }

    /// Marks the server as stopping: from now on readiness answers 503.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }

    /// Whether the server is stopping (finishing its requests in flight).
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Opens a connection to the registry (for admin changes).
    pub(crate) fn open_registry(&self) -> Result<Registry, String> {
        (self.open)()
    }

    /// Routing state: entity key columns and per-variant counters.
    pub fn routing(&self) -> &crate::routing::RoutingState {
        &self.routing
    }

    /// The serving version of `name`.
    pub fn serving(&self, name: &str) -> Result<Arc<Served>, ApiError> {
        let catalog = self.catalog();
        catalog.models.get(name).cloned().ok_or_else(|| unknown(&catalog, name))
    }

    /// Version `version` of `name`, loaded on first use, off the request
    /// runtime (the registry's clients block and own runtimes of their own).
    pub async fn version(
        self: &Arc<Self>,
        name: &str,
        version: u32,
    ) -> Result<Arc<Served>, ApiError> {
        let shared = Arc::clone(self);
        let name = name.to_owned();
        tokio::task::spawn_blocking(move || shared.version_blocking(&name, version)).await.map_err(
            |e| {
                ApiError::from_code(
                    vigie_core::ErrorCode::Internal,
                    format!("loading a version failed: {e}"),
                )
            },
        )?
    }

    fn version_blocking(&self, name: &str, version: u32) -> Result<Arc<Served>, ApiError> {
        let serving = self.serving(name)?;
        if serving.version == version {
            return Ok(serving);
        }
        let key = (name.to_owned(), version);
        if let Some(found) = self.versions.lock().ok().and_then(|v| v.get(&key).cloned()) {
            return Ok(found);
        }
        let registry = (self.open)()
            .map_err(|e| ApiError::from_code(vigie_core::ErrorCode::Unavailable, e))?;
        let reference = ModelRef { name: name.to_owned(), selector: Selector::Version(version) };
        let info = registry
            .resolve(&reference)
            .map_err(|e| ApiError::from_code(e.code(), e.to_string()))?;
        let model = registry
            .load(&info)
            .map_err(|e| ApiError::from_code(e.code(), e.to_string()))?
            .into_tabular()?;
        let served =
            Arc::new(Served { name: name.to_owned(), version, aliases: info.aliases, model });
        if let Ok(mut versions) = self.versions.lock() {
            versions.insert(key, served.clone());
        }
        Ok(served)
    }
}

fn unknown(catalog: &Catalog, name: &str) -> ApiError {
    if let Some((_, reason)) = catalog.skipped.iter().find(|(n, _)| n == name) {
        return ApiError::not_found(format!("model {name:?} is not served: {reason}"));
    }
    if catalog.forecasters.contains_key(name) {
        return ApiError::not_found(format!(
            "model {name:?} is a forecast model: POST /v1/models/{name}/forecast"
        ));
    }
    let names: Vec<&str> = catalog.models.keys().map(String::as_str).collect();
    ApiError::not_found(format!(
        "no model {name:?}; served models: {}",
        if names.is_empty() { "(none)".to_owned() } else { names.join(", ") }
    ))
}
