//! The registry proper: where it lives, model versions and aliases.

mod routing;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};
use vigie_connectors::artifacts::{ArtifactStore, S3Options};
use vigie_connectors::sql::SqlRow;
use vigie_ml::{SavedModel, format};

use crate::db::{Db, Dialect, Sql, Tx};
use crate::{ModelRef, RegistryError, Result, RunStatus, Selector, validate_name};

pub use routing::{AbVariant, Routing, RoutingChange, Split};

const SCHEMA: &str = include_str!("schema.sql");
/// Version 2 added the `routing` tables; `CREATE TABLE IF NOT EXISTS` brings an older
/// database up to date on open, and the stored number is raised then. A database that
/// already stores this number is not written to on open, so any change to `schema.sql`
/// raises it.
const SCHEMA_VERSION: i64 = 2;

/// The alias a model's first version receives by itself.
pub const CHAMPION: &str = "champion";

/// The project's registry: metadata database plus artifact store.
pub struct Registry {
    pub(crate) db: Db,
    artifacts: ArtifactStore,
}

/// Where a registry keeps its metadata and its model files.
#[derive(Debug, Clone)]
pub struct RegistryLocation {
    /// The state folder (usually `<project>/.vigie`): by default it holds the SQLite database
    /// (`registry.db`) and the artifacts (`artifacts/…`).
    pub state_dir: PathBuf,
    /// The metadata database: none for `registry.db` in the state folder,
    /// `postgres://USER:PASSWORD@HOST:PORT/DATABASE` (or `postgresql://…`) for a shared
    /// PostgreSQL, `sqlite:PATH` for another SQLite file.
    pub database: Option<String>,
    /// The artifact store: none for the state folder, `s3://BUCKET[/PREFIX]` for S3 (with the
    /// standard `AWS_*` variables), `file:PATH` for another folder.
    pub artifacts: Option<String>,
    /// S3 settings that override the `AWS_*` environment variables.
    pub s3: S3Options,
    /// How long a change waits for another writer before giving up (nothing is written then).
    pub lock_timeout: Duration,
}

/// How long a change waits for the write lock by default.
pub const LOCK_TIMEOUT: Duration = Duration::from_secs(30);

impl RegistryLocation {
    /// The embedded default: SQLite and artifacts in `state_dir`.
    pub fn new(state_dir: &Path) -> Self {
        RegistryLocation {
            state_dir: state_dir.to_owned(),
            database: None,
            artifacts: None,
            s3: S3Options::default(),
            lock_timeout: LOCK_TIMEOUT,
        }
    }
}

/// A registered version.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionInfo {
    /// Model name.
    pub model: String,
    /// Version number.
    pub version: u32,
    /// The run that produced it.
    pub run_id: String,
    /// The model file, relative to the state folder.
    pub artifact: String,
    /// SHA-256 of the model file.
    pub sha256: String,
    /// Algorithm.
    pub algorithm: String,
    /// Task.
    pub task: String,
    /// When it was registered.
    pub created_at: String,
    /// Aliases pointing at it.
    pub aliases: Vec<String>,
}

/// One line of `vigie models list`.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSummary {
    /// Name.
    pub name: String,
    /// Number of versions.
    pub versions: u32,
    /// Latest version.
    pub latest: u32,
    /// Aliases and the versions they point at.
    pub aliases: Vec<(String, u32)>,
}

/// One move of an alias.
#[derive(Debug, Clone, PartialEq)]
pub struct AliasMove {
    /// Model.
    pub model: String,
    /// Alias.
    pub alias: String,
    /// Version it pointed at before (none when new).
    pub from_version: Option<u32>,
    /// Version it points at after (none when deleted).
    pub to_version: Option<u32>,
    /// `move`, `rollback` or `delete`.
    pub kind: String,
    /// Who.
    pub user: String,
    /// When (RFC 3339).
    pub at: String,
    /// Why.
    pub reason: String,
}

/// Now, RFC 3339 UTC with microseconds (so runs started in one second still order).
pub(crate) fn now() -> String {
    humantime::format_rfc3339_micros(std::time::SystemTime::now()).to_string()
}

fn bump_generation(tx: &Tx<'_>) -> Result<()> {
    tx.execute(
        "INSERT INTO meta(key, value) VALUES ('generation', '1')
         ON CONFLICT(key) DO UPDATE SET value = CAST(CAST(meta.value AS BIGINT) + 1 AS TEXT)",
        &[],
    )?;
    Ok(())
}

/// Hex SHA-256 of `bytes`.
fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Creates the tables when missing and checks the schema version, in one transaction.
/// A database already at [`SCHEMA_VERSION`] is only read: opening it takes no write lock.
fn apply_schema(db: &mut Db) -> Result<()> {
    // A fresh database has no `meta` table yet: that error, as any other here, leaves the
    // check to the transaction below, which reports what is really wrong.
    let current = db
        .query_opt("SELECT value FROM meta WHERE key = 'schema_version'", &[])
        .ok()
        .flatten()
        .and_then(|row| row.text(0).ok())
        .is_some_and(|stored| stored.parse::<i64>() == Ok(SCHEMA_VERSION));
    if current {
        return Ok(());
    }
    let auto_id = match db.dialect() {
        Dialect::Sqlite => "INTEGER PRIMARY KEY AUTOINCREMENT",
        Dialect::Postgres => "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
    };
    let schema = SCHEMA.replace("AUTO_ID", auto_id);
    let location = db.location().to_owned();
    db.transaction(|tx| {
        tx.batch(&schema)?;
        let stored = tx.query_opt("SELECT value FROM meta WHERE key = 'schema_version'", &[])?;
        let stored = match stored {
            Some(row) => Some(tx.read(row.text(0))?),
            None => None,
        };
        match stored.as_deref().map(str::parse::<i64>) {
            None => {
                tx.execute(
                    "INSERT INTO meta(key, value) VALUES ('schema_version', $1)",
                    &[SCHEMA_VERSION.to_string().into()],
                )?;
            }
            Some(Ok(version)) if version < SCHEMA_VERSION => {
                tx.execute(
                    "UPDATE meta SET value = $1 WHERE key = 'schema_version'",
                    &[SCHEMA_VERSION.to_string().into()],
                )?;
            }
            Some(Ok(version)) if version == SCHEMA_VERSION => {}
            Some(_) => {
                return Err(RegistryError::Conflict(format!(
                    "{location} was written by a newer Vigie (schema {}); this build reads schema {SCHEMA_VERSION}",
                    stored.unwrap_or_default()
                )));
            }
        }
        Ok(())
    })
}

/// The aliases of a model with their versions, by alias.
fn aliases_of(db: &impl Sql, name: &str) -> Result<Vec<(String, u32)>> {
    db.query("SELECT alias, version FROM aliases WHERE model = $1 ORDER BY alias", &[name.into()])?
        .iter()
        .map(|row| Ok((db.read(row.text(0))?, db.read(row.u32(1))?)))
        .collect()
}

/// The versions of a model, ascending, with their aliases.
fn versions_of(db: &impl Sql, name: &str) -> Result<Vec<VersionInfo>> {
    let aliases = aliases_of(db, name)?;
    let rows = db.query(
        "SELECT model, version, run_id, artifact, sha256, algorithm, task, created_at FROM versions
         WHERE model = $1 ORDER BY version",
        &[name.into()],
    )?;
    rows.iter()
        .map(|row| {
            let version = db.read(row.u32(1))?;
            Ok(VersionInfo {
                model: db.read(row.text(0))?,
                version,
                run_id: db.read(row.text(2))?,
                artifact: db.read(row.text(3))?,
                sha256: db.read(row.text(4))?,
                algorithm: db.read(row.text(5))?,
                task: db.read(row.text(6))?,
                created_at: db.read(row.text(7))?,
                aliases: aliases
                    .iter()
                    .filter(|(_, v)| *v == version)
                    .map(|(a, _)| a.clone())
                    .collect(),
            })
        })
        .collect()
}

/// Every alias move of a model, oldest first.
fn alias_history_of(db: &impl Sql, name: &str) -> Result<Vec<AliasMove>> {
    let rows = db.query(
        "SELECT model, alias, from_version, to_version, kind, user_name, at, reason FROM alias_history
         WHERE model = $1 ORDER BY id",
        &[name.into()],
    )?;
    rows.iter().map(|row| alias_move(db, row)).collect()
}

fn alias_move(db: &impl Sql, row: &SqlRow) -> Result<AliasMove> {
    Ok(AliasMove {
        model: db.read(row.text(0))?,
        alias: db.read(row.text(1))?,
        from_version: db.read(row.opt_u32(2))?,
        to_version: db.read(row.opt_u32(3))?,
        kind: db.read(row.text(4))?,
        user: db.read(row.text(5))?,
        at: db.read(row.text(6))?,
        reason: db.read(row.text(7))?,
    })
}

/// The names of every model, for hints.
fn model_names(db: &impl Sql) -> Result<Vec<String>> {
    db.query("SELECT name FROM models ORDER BY name", &[])?
        .iter()
        .map(|row| db.read(row.text(0)))
        .collect()
}

fn unknown_model(db: &impl Sql, name: &str) -> Result<RegistryError> {
    let names = model_names(db)?;
    let hint = if names.is_empty() {
        "; no model is registered yet (run `vigie train`)".to_owned()
    } else {
        format!("; registered models: {}", names.join(", "))
    };
    Ok(RegistryError::UnknownModel { name: name.to_owned(), hint })
}

fn unknown_version(name: &str, version: u32, known: &[VersionInfo]) -> RegistryError {
    RegistryError::UnknownVersion {
        name: name.to_owned(),
        version,
        available: known.iter().map(|v| v.version.to_string()).collect::<Vec<_>>().join(", "),
    }
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> RegistryError + '_ {
    move |source| RegistryError::Io { path: path.to_owned(), source }
}

impl Registry {
    /// Opens (creating if needed) the registry of the state folder `state_dir` (usually
    /// `<project>/.vigie`): SQLite and artifacts there.
    pub fn open(state_dir: &Path) -> Result<Self> {
        Registry::connect(&RegistryLocation::new(state_dir))
    }

    /// Opens (creating the tables if needed) the registry at `location`.
    pub fn connect(location: &RegistryLocation) -> Result<Self> {
        let state_dir = &location.state_dir;
        let mut db = match location.database.as_deref() {
            None => {
                fs::create_dir_all(state_dir).map_err(io(state_dir))?;
                Db::open_sqlite(&state_dir.join("registry.db"), location.lock_timeout)?
            }
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Db::connect_postgres(url, location.lock_timeout)?
            }
            Some(url) if url.starts_with("sqlite:") => {
                let path = Path::new(url.trim_start_matches("sqlite:").trim_start_matches("//"));
                if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    fs::create_dir_all(folder).map_err(io(folder))?;
                }
                Db::open_sqlite(path, location.lock_timeout)?
            }
            Some(other) => {
                return Err(RegistryError::Location(format!(
                    "registry database {:?}: expected postgres://USER:PASSWORD@HOST:PORT/DATABASE or sqlite:PATH",
                    vigie_connectors::postgres::redact_url(other)
                )));
            }
        };
        apply_schema(&mut db)?;
        let artifacts = match location.artifacts.as_deref() {
            None => ArtifactStore::local(state_dir),
            Some(url) if url.starts_with("s3://") => ArtifactStore::s3(url, &location.s3),
            Some(url) if url.starts_with("file:") => ArtifactStore::local(Path::new(
                url.trim_start_matches("file:").trim_start_matches("//"),
            )),
            Some(other) => {
                return Err(RegistryError::Location(format!(
                    "artifact store {other:?}: expected s3://BUCKET[/PREFIX] or file:PATH"
                )));
            }
        }
        .map_err(|source| match source {
            vigie_connectors::ConnectorError::Artifacts { location, message, .. } => {
                RegistryError::Location(format!("artifact store {location}: {message}"))
            }
            other => RegistryError::Artifacts(other),
        })?;
        Ok(Registry { db, artifacts })
    }

    /// A counter that increases with every change to versions or aliases.
    pub fn generation(&self) -> Result<u64> {
        let row = self.db.query_opt("SELECT value FROM meta WHERE key = 'generation'", &[])?;
        let value = match row {
            Some(row) => Some(self.db.read(row.text(0))?),
            None => None,
        };
        Ok(value.and_then(|v| v.parse().ok()).unwrap_or(0))
    }

    /// Saves `model` as an artifact of `run_id` and registers it as the next
    /// version of its name (setting `card.version`). The first version of a
    /// model becomes `champion`. One transaction: a failure leaves nothing registered (and
    /// the model file it may have written is deleted).
    pub fn register(
        &mut self,
        model: &mut SavedModel,
        run_id: &str,
        user: &str,
    ) -> Result<VersionInfo> {
        self.register_ending_run(model, run_id, user, None)
    }

    /// [`Registry::register`], and ends `run_id` with `status` in the same transaction
    /// (one commit, one disk flush): the version and its run's end are written together
    /// or not at all.
    pub fn register_and_end_run(
        &mut self,
        model: &mut SavedModel,
        run_id: &str,
        user: &str,
        status: RunStatus,
    ) -> Result<VersionInfo> {
        self.register_ending_run(model, run_id, user, Some(status))
    }

    fn register_ending_run(
        &mut self,
        model: &mut SavedModel,
        run_id: &str,
        user: &str,
        end: Option<RunStatus>,
    ) -> Result<VersionInfo> {
        validate_name(model.name())?;
        let name = model.name().to_owned();
        let artifacts = &self.artifacts;
        let mut written: Option<String> = None;
        let registered = self.db.transaction(|tx| {
            let exists = tx.read(
                tx.query_one("SELECT COUNT(*) FROM runs WHERE id = $1", &[run_id.into()])?.int(0),
            )? > 0;
            if !exists {
                return Err(RegistryError::UnknownRun(run_id.to_owned()));
            }
            let created = now();
            tx.execute(
                "INSERT INTO models(name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
                &[(&name).into(), (&created).into()],
            )?;
            let after_registered = tx.read(
                tx.query_one(
                    "SELECT COALESCE(MAX(version), 0) + 1 FROM versions WHERE model = $1",
                    &[(&name).into()],
                )?
                .u32(0),
            )?;
            // Versions are never renumbered: a deleted version's number is not given again.
            // The highest number ever given is kept in `meta` (no schema change needed).
            let counter = format!("last_version/{name}");
            let after_deleted = match tx.query_opt("SELECT value FROM meta WHERE key = $1", &[(&counter).into()])? {
                Some(row) => tx.read(row.text(0))?.parse::<u32>().map_or(0, |last| last + 1),
                None => 0,
            };
            let version = after_registered.max(after_deleted);
            tx.execute(
                "INSERT INTO meta(key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                &[(&counter).into(), version.to_string().into()],
            )?;
            model.set_version(version);
            let relative = format!("artifacts/{run_id}/{name}-v{version}.vgm");
            let bytes = format::encode(model).map_err(|source| RegistryError::Model {
                path: PathBuf::from(artifacts.location(&relative)),
                source,
            })?;
            let sha256 = sha256_hex(&bytes);
            let size = bytes.len() as i64;
            // A whole object or none: the local store writes a temporary file and renames it.
            written = Some(relative.clone());
            artifacts.put(&relative, bytes).map_err(RegistryError::Artifacts)?;
            tx.execute(
                "INSERT INTO artifacts(run_id, path, sha256, size) VALUES ($1, $2, $3, $4)",
                &[run_id.into(), (&relative).into(), (&sha256).into(), size.into()],
            )?;
            tx.execute(
                "INSERT INTO versions(model, version, run_id, artifact, sha256, algorithm, task, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[
                    (&name).into(),
                    version.into(),
                    run_id.into(),
                    (&relative).into(),
                    (&sha256).into(),
                    model.algorithm().into(),
                    model.task().into(),
                    (&created).into(),
                ],
            )?;
            let mut aliases = Vec::new();
            if version == 1 {
                move_alias(tx, &name, CHAMPION, version, "move", user, "first version of the model")?;
                aliases.push(CHAMPION.to_owned());
            }
            bump_generation(tx)?;
            if let Some(status) = end {
                crate::tracking::end_run(tx, run_id, status)?;
            }
            Ok(VersionInfo {
                model: name.clone(),
                version,
                run_id: run_id.to_owned(),
                artifact: relative,
                sha256,
                algorithm: model.algorithm().to_owned(),
                task: model.task().to_owned(),
                created_at: created,
                aliases,
            })
        });
        if registered.is_err()
            && let Some(key) = written
        {
            // Not registered, so nothing refers to it; a failed delete only leaves an orphan file.
            let _ = artifacts.delete(&key);
        }
        registered
    }

    /// Every registered model, by name.
    pub fn models(&self) -> Result<Vec<ModelSummary>> {
        let rows = self.db.query(
            "SELECT m.name, COUNT(v.version), COALESCE(MAX(v.version), 0) FROM models m
             LEFT JOIN versions v ON v.model = m.name GROUP BY m.name ORDER BY m.name",
            &[],
        )?;
        let mut models = Vec::new();
        for row in rows {
            let name = self.db.read(row.text(0))?;
            let aliases = self.aliases(&name)?;
            models.push(ModelSummary {
                versions: self.db.read(row.u32(1))?,
                latest: self.db.read(row.u32(2))?,
                name,
                aliases,
            });
        }
        Ok(models)
    }

    /// The aliases of a model with their versions.
    pub fn aliases(&self, name: &str) -> Result<Vec<(String, u32)>> {
        aliases_of(&self.db, name)
    }

    /// The versions of a model, ascending.
    pub fn versions(&self, name: &str) -> Result<Vec<VersionInfo>> {
        versions_of(&self.db, name)
    }

    /// Finds the version a reference names.
    pub fn resolve(&self, reference: &ModelRef) -> Result<VersionInfo> {
        let versions = self.versions(&reference.name)?;
        if versions.is_empty() {
            return Err(unknown_model(&self.db, &reference.name)?);
        }
        let wanted = match &reference.selector {
            Selector::Version(v) => *v,
            Selector::Alias(alias) => {
                let aliases = self.aliases(&reference.name)?;
                let found = aliases.iter().find(|(a, _)| a == alias).map(|(_, v)| *v);
                found.ok_or_else(|| RegistryError::UnknownAlias {
                    name: reference.name.clone(),
                    alias: alias.clone(),
                    hint: if aliases.is_empty() {
                        String::new()
                    } else {
                        format!(
                            "; its aliases are {}",
                            aliases.iter().map(|(a, _)| a.as_str()).collect::<Vec<_>>().join(", ")
                        )
                    },
                })?
            }
            Selector::Default => {
                let champion = self
                    .aliases(&reference.name)?
                    .into_iter()
                    .find(|(a, _)| a == CHAMPION)
                    .map(|(_, v)| v);
                champion.or_else(|| versions.last().map(|v| v.version)).unwrap_or(1)
            }
        };
        versions
            .iter()
            .find(|v| v.version == wanted)
            .cloned()
            .ok_or_else(|| unknown_version(&reference.name, wanted, &versions))
    }

    /// Where a version's model file is: its path under the state folder, or for an S3 store
    /// its `s3://BUCKET/KEY` URL.
    pub fn artifact_path(&self, info: &VersionInfo) -> PathBuf {
        PathBuf::from(self.artifacts.location(&info.artifact))
    }

    /// Loads a version's model, checking the file against the registered checksum.
    pub fn load(&self, info: &VersionInfo) -> Result<SavedModel> {
        let bytes = self.artifacts.get(&info.artifact).map_err(RegistryError::Artifacts)?;
        let path = self.artifact_path(info);
        // The checksum on a second thread while the model decodes (about 7 ms
        // for a 4 MB model, whose decoding takes a few times that).
        let (model, checksum) = std::thread::scope(|scope| {
            let checksum = scope.spawn(|| sha256_hex(&bytes));
            (format::decode(&bytes), checksum.join())
        });
        let model = model.map_err(|source| RegistryError::Model { path: path.clone(), source })?;
        let checksum = checksum.unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        if checksum != info.sha256 {
            return Err(RegistryError::Model {
                path,
                source: vigie_ml::MlError::Corrupted(
                    "the file differs from the one registered (checksum mismatch)".into(),
                ),
            });
        }
        Ok(model)
    }

    /// The bytes of a run artifact, from its path relative to the state folder (as in
    /// [`crate::RunDetail::artifacts`]).
    pub fn artifact_bytes(&self, relative: &str) -> Result<Vec<u8>> {
        self.artifacts.get(relative).map_err(RegistryError::Artifacts)
    }

    /// Points `alias` of `name` at `version`, recording who and why.
    pub fn set_alias(
        &mut self,
        name: &str,
        alias: &str,
        version: u32,
        user: &str,
        reason: &str,
    ) -> Result<AliasMove> {
        validate_name(alias)?;
        self.db.transaction(|tx| {
            let known = versions_of(tx, name)?;
            if known.is_empty() {
                return Err(unknown_model(tx, name)?);
            }
            if !known.iter().any(|v| v.version == version) {
                return Err(unknown_version(name, version, &known));
            }
            let moved = move_alias(tx, name, alias, version, "move", user, reason)?;
            bump_generation(tx)?;
            Ok(moved)
        })
    }

    /// Moves `alias` back to the version it pointed at before its last move
    /// (repeated rollbacks keep going back).
    pub fn rollback(
        &mut self,
        name: &str,
        alias: &str,
        user: &str,
        reason: &str,
    ) -> Result<AliasMove> {
        // Read and moved in one transaction: two rollbacks at once go back two steps, not one twice.
        self.db.transaction(|tx| {
            if versions_of(tx, name)?.is_empty() {
                return Err(unknown_model(tx, name)?);
            }
            let history = alias_history_of(tx, name)?;
            // Replay: moves push, rollbacks pop back to the version they went to (past
            // deleted versions), deletes clear.
            let mut stack: Vec<u32> = Vec::new();
            for entry in history.iter().filter(|m| m.alias == alias) {
                match (entry.kind.as_str(), entry.to_version) {
                    ("rollback", to) => {
                        stack.pop();
                        while let (Some(top), Some(to)) = (stack.last(), to) {
                            if *top == to {
                                break;
                            }
                            stack.pop();
                        }
                    }
                    ("delete", _) => stack.clear(),
                    (_, Some(to)) => stack.push(to),
                    _ => {}
                }
            }
            let Some((&current, earlier)) = stack.split_last() else {
                return Err(RegistryError::UnknownAlias {
                    name: name.to_owned(),
                    alias: alias.to_owned(),
                    hint: String::new(),
                });
            };
            // The latest earlier version that still exists.
            let existing: Vec<u32> = versions_of(tx, name)?.iter().map(|v| v.version).collect();
            let Some(&target) = earlier.iter().rev().find(|v| existing.contains(v)) else {
                let deleted: Vec<String> = earlier.iter().map(|v| format!("v{v}")).collect();
                return Err(RegistryError::Conflict(if deleted.is_empty() {
                    format!(
                        "{name}@{alias} has no earlier version to roll back to: v{current} is the \
                         first it pointed at"
                    )
                } else {
                    format!(
                        "{name}@{alias} has no earlier version to roll back to: the versions it \
                         pointed at before v{current} ({}) were deleted",
                        deleted.join(", ")
                    )
                }));
            };
            let moved = move_alias(tx, name, alias, target, "rollback", user, reason)?;
            bump_generation(tx)?;
            Ok(moved)
        })
    }

    /// Removes an alias.
    pub fn delete_alias(
        &mut self,
        name: &str,
        alias: &str,
        user: &str,
        reason: &str,
    ) -> Result<AliasMove> {
        self.db.transaction(|tx| {
            let current = tx.query_opt(
                "SELECT version FROM aliases WHERE model = $1 AND alias = $2",
                &[name.into(), alias.into()],
            )?;
            let Some(current) = current else {
                return Err(RegistryError::UnknownAlias {
                    name: name.to_owned(),
                    alias: alias.to_owned(),
                    hint: String::new(),
                });
            };
            let current = tx.read(current.u32(0))?;
            tx.execute(
                "DELETE FROM aliases WHERE model = $1 AND alias = $2",
                &[name.into(), alias.into()],
            )?;
            let at = now();
            tx.execute(
                "INSERT INTO alias_history(model, alias, from_version, to_version, kind, user_name, at, reason)
                 VALUES ($1, $2, $3, NULL, 'delete', $4, $5, $6)",
                &[name.into(), alias.into(), current.into(), user.into(), (&at).into(), reason.into()],
            )?;
            bump_generation(tx)?;
            Ok(AliasMove {
                model: name.to_owned(),
                alias: alias.to_owned(),
                from_version: Some(current),
                to_version: None,
                kind: "delete".into(),
                user: user.to_owned(),
                at,
                reason: reason.to_owned(),
            })
        })
    }

    /// Deletes a version's registration (its run and artifact stay, for lineage).
    /// Refused while an alias points at it.
    pub fn delete_version(&mut self, name: &str, version: u32) -> Result<()> {
        self.db.transaction(|tx| {
            let known = versions_of(tx, name)?;
            if known.is_empty() {
                return Err(unknown_model(tx, name)?);
            }
            let Some(info) = known.iter().find(|v| v.version == version) else {
                return Err(unknown_version(name, version, &known));
            };
            if !info.aliases.is_empty() {
                return Err(RegistryError::Conflict(format!(
                    "{name} v{version} is {}; move or delete the alias first",
                    info.aliases.iter().map(|a| format!("@{a}")).collect::<Vec<_>>().join(" and ")
                )));
            }
            routing::refuse_routed_version(tx, name, version)?;
            tx.execute(
                "DELETE FROM versions WHERE model = $1 AND version = $2",
                &[name.into(), version.into()],
            )?;
            bump_generation(tx)?;
            Ok(())
        })
    }

    /// Every alias move of a model, oldest first.
    pub fn alias_history(&self, name: &str) -> Result<Vec<AliasMove>> {
        alias_history_of(&self.db, name)
    }
}

fn move_alias(
    tx: &Tx<'_>,
    name: &str,
    alias: &str,
    version: u32,
    kind: &str,
    user: &str,
    reason: &str,
) -> Result<AliasMove> {
    let previous = tx.query_opt(
        "SELECT version FROM aliases WHERE model = $1 AND alias = $2",
        &[name.into(), alias.into()],
    )?;
    let previous = match previous {
        Some(row) => Some(tx.read(row.u32(0))?),
        None => None,
    };
    tx.execute(
        "INSERT INTO aliases(model, alias, version) VALUES ($1, $2, $3)
         ON CONFLICT(model, alias) DO UPDATE SET version = excluded.version",
        &[name.into(), alias.into(), version.into()],
    )?;
    let at = now();
    tx.execute(
        "INSERT INTO alias_history(model, alias, from_version, to_version, kind, user_name, at, reason)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        &[
            name.into(),
            alias.into(),
            previous.into(),
            version.into(),
            kind.into(),
            user.into(),
            (&at).into(),
            reason.into(),
        ],
    )?;
    Ok(AliasMove {
        model: name.to_owned(),
        alias: alias.to_owned(),
        from_version: previous,
        to_version: Some(version),
        kind: kind.to_owned(),
        user: user.to_owned(),
        at,
        reason: reason.to_owned(),
    })
}
