//! The registry proper: the database, model versions and aliases.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use sha2::{Digest, Sha256};
use vigie_ml::{SavedModel, format};

use crate::{ModelRef, RegistryError, Result, Selector, validate_name};

const SCHEMA: &str = include_str!("schema.sql");
const SCHEMA_VERSION: i64 = 1;

/// The alias a model's first version receives by itself.
pub const CHAMPION: &str = "champion";

/// The project's registry: metadata database plus artifact folder.
pub struct Registry {
    pub(crate) conn: Connection,
    state_dir: PathBuf,
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

/// Runs `f` in one IMMEDIATE transaction: all of it is written, or none.
pub(crate) fn transaction<T>(
    conn: &mut Connection,
    f: impl FnOnce(&Transaction<'_>) -> Result<T>,
) -> Result<T> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let value = f(&tx)?;
    tx.commit()?;
    Ok(value)
}

fn bump_generation(tx: &Transaction<'_>) -> Result<()> {
    tx.execute(
        "INSERT INTO meta(key, value) VALUES ('generation', '1')
         ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1",
        [],
    )?;
    Ok(())
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> RegistryError + '_ {
    move |source| RegistryError::Io { path: path.to_owned(), source }
}

impl Registry {
    /// Opens (creating if needed) the registry of the state folder `state_dir` (usually `<project>/.vigie`).
    pub fn open(state_dir: &Path) -> Result<Self> {
        fs::create_dir_all(state_dir).map_err(io(state_dir))?;
        let path = state_dir.join("registry.db");
        let mut conn = Connection::open(&path)?;
        conn.busy_timeout(Duration::from_secs(30))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(SCHEMA)?;
        let stored: Option<String> = tx
            .query_row("SELECT value FROM meta WHERE key = 'schema_version'", [], |r| r.get(0))
            .optional()?;
        match stored.as_deref().map(str::parse::<i64>) {
            None => {
                tx.execute(
                    "INSERT INTO meta(key, value) VALUES ('schema_version', ?1)",
                    [SCHEMA_VERSION.to_string()],
                )?;
            }
            Some(Ok(version)) if version <= SCHEMA_VERSION => {}
            Some(_) => {
                return Err(RegistryError::Conflict(format!(
                    "{} was written by a newer Vigie (schema {}); this build reads schema {SCHEMA_VERSION}",
                    path.display(),
                    stored.unwrap_or_default()
                )));
            }
        }
        tx.commit()?;
        Ok(Registry { conn, state_dir: state_dir.to_owned() })
    }

    /// A counter that increases with every change to versions or aliases.
    pub fn generation(&self) -> Result<u64> {
        let value: Option<String> = self
            .conn
            .query_row("SELECT value FROM meta WHERE key = 'generation'", [], |r| r.get(0))
            .optional()?;
        Ok(value.and_then(|v| v.parse().ok()).unwrap_or(0))
    }

    /// Saves `model` as an artifact of `run_id` and registers it as the next
    /// version of its name (setting `card.version`). The first version of a
    /// model becomes `champion`. One transaction: a failure leaves nothing registered.
    pub fn register(
        &mut self,
        model: &mut SavedModel,
        run_id: &str,
        user: &str,
    ) -> Result<VersionInfo> {
        validate_name(model.name())?;
        let state_dir = self.state_dir.clone();
        let name = model.name().to_owned();
        transaction(&mut self.conn, |tx| {
            let exists: bool =
                tx.query_row("SELECT COUNT(*) FROM runs WHERE id = ?1", [run_id], |r| {
                    r.get::<_, i64>(0)
                })? > 0;
            if !exists {
                return Err(RegistryError::UnknownRun(run_id.to_owned()));
            }
            let created = now();
            tx.execute(
                "INSERT OR IGNORE INTO models(name, created_at) VALUES (?1, ?2)",
                params![name, created],
            )?;
            let version: u32 = tx.query_row(
                "SELECT COALESCE(MAX(version), 0) + 1 FROM versions WHERE model = ?1",
                [&name],
                |r| r.get(0),
            )?;
            model.set_version(version);
            let bytes = format::encode(model)
                .map_err(|source| RegistryError::Model { path: state_dir.clone(), source })?;
            let sha256: String =
                Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
            let relative = format!("artifacts/{run_id}/{name}-v{version}.vgm");
            let path = state_dir.join(&relative);
            if let Some(folder) = path.parent() {
                fs::create_dir_all(folder).map_err(io(folder))?;
            }
            // Write then rename: a crash leaves no half file under the registered name.
            let partial = path.with_extension("vgm.partial");
            fs::write(&partial, &bytes).map_err(io(&partial))?;
            fs::rename(&partial, &path).map_err(io(&path))?;
            tx.execute(
                "INSERT INTO artifacts(run_id, path, sha256, size) VALUES (?1, ?2, ?3, ?4)",
                params![run_id, relative, sha256, bytes.len() as i64],
            )?;
            tx.execute(
                "INSERT INTO versions(model, version, run_id, artifact, sha256, algorithm, task, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![name, version, run_id, relative, sha256, model.algorithm(), model.task(), created],
            )?;
            let mut aliases = Vec::new();
            if version == 1 {
                move_alias(
                    tx,
                    &name,
                    CHAMPION,
                    version,
                    "move",
                    user,
                    "first version of the model",
                )?;
                aliases.push(CHAMPION.to_owned());
            }
            bump_generation(tx)?;
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
        })
    }

    /// Every registered model, by name.
    pub fn models(&self) -> Result<Vec<ModelSummary>> {
        let mut statement = self.conn.prepare(
            "SELECT m.name, COUNT(v.version), COALESCE(MAX(v.version), 0) FROM models m
             LEFT JOIN versions v ON v.model = m.name GROUP BY m.name ORDER BY m.name",
        )?;
        let rows = statement.query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, u32>(1)?, r.get::<_, u32>(2)?))
        })?;
        let mut models = Vec::new();
        for row in rows {
            let (name, versions, latest) = row?;
            let aliases = self.aliases(&name)?;
            models.push(ModelSummary { name, versions, latest, aliases });
        }
        Ok(models)
    }

    /// The aliases of a model with their versions.
    pub fn aliases(&self, name: &str) -> Result<Vec<(String, u32)>> {
        let mut statement = self
            .conn
            .prepare("SELECT alias, version FROM aliases WHERE model = ?1 ORDER BY alias")?;
        let rows = statement.query_map([name], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// The versions of a model, ascending.
    pub fn versions(&self, name: &str) -> Result<Vec<VersionInfo>> {
        let aliases = self.aliases(name)?;
        let mut statement = self.conn.prepare(
            "SELECT model, version, run_id, artifact, sha256, algorithm, task, created_at FROM versions
             WHERE model = ?1 ORDER BY version",
        )?;
        let rows = statement.query_map([name], |r| {
            Ok(VersionInfo {
                model: r.get(0)?,
                version: r.get(1)?,
                run_id: r.get(2)?,
                artifact: r.get(3)?,
                sha256: r.get(4)?,
                algorithm: r.get(5)?,
                task: r.get(6)?,
                created_at: r.get(7)?,
                aliases: Vec::new(),
            })
        })?;
        let mut versions = rows.collect::<Result<Vec<_>, _>>()?;
        for info in &mut versions {
            info.aliases = aliases
                .iter()
                .filter(|(_, v)| *v == info.version)
                .map(|(a, _)| a.clone())
                .collect();
        }
        Ok(versions)
    }

    fn unknown_model(&self, name: &str) -> Result<RegistryError> {
        let names: Vec<String> = self.models()?.into_iter().map(|m| m.name).collect();
        let hint = if names.is_empty() {
            "; no model is registered yet (run `vigie train`)".to_owned()
        } else {
            format!("; registered models: {}", names.join(", "))
        };
        Ok(RegistryError::UnknownModel { name: name.to_owned(), hint })
    }

    /// Finds the version a reference names.
    pub fn resolve(&self, reference: &ModelRef) -> Result<VersionInfo> {
        let versions = self.versions(&reference.name)?;
        if versions.is_empty() {
            return Err(self.unknown_model(&reference.name)?);
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
        versions.iter().find(|v| v.version == wanted).cloned().ok_or_else(|| {
            RegistryError::UnknownVersion {
                name: reference.name.clone(),
                version: wanted,
                available: versions
                    .iter()
                    .map(|v| v.version.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            }
        })
    }

    /// The path of a version's model file.
    pub fn artifact_path(&self, info: &VersionInfo) -> PathBuf {
        self.state_dir.join(&info.artifact)
    }

    /// Loads a version's model, checking the file against the registered checksum.
    pub fn load(&self, info: &VersionInfo) -> Result<SavedModel> {
        let path = self.artifact_path(info);
        let bytes = fs::read(&path).map_err(io(&path))?;
        let sha256: String = Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
        let model = format::decode(&bytes)
            .map_err(|source| RegistryError::Model { path: path.clone(), source })?;
        if sha256 != info.sha256 {
            return Err(RegistryError::Model {
                path,
                source: vigie_ml::MlError::Corrupted(
                    "the file differs from the one registered (checksum mismatch)".into(),
                ),
            });
        }
        Ok(model)
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
        let known = self.versions(name)?;
        if known.is_empty() {
            return Err(self.unknown_model(name)?);
        }
        if !known.iter().any(|v| v.version == version) {
            return Err(RegistryError::UnknownVersion {
                name: name.to_owned(),
                version,
                available: known
                    .iter()
                    .map(|v| v.version.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        self.commit_move(name, alias, version, "move", user, reason)
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
        if self.versions(name)?.is_empty() {
            return Err(self.unknown_model(name)?);
        }
        let history = self.alias_history(name)?;
        // Replay: moves push, rollbacks pop, deletes clear.
        let mut stack: Vec<u32> = Vec::new();
        for entry in history.iter().filter(|m| m.alias == alias) {
            match (entry.kind.as_str(), entry.to_version) {
                ("rollback", _) => {
                    stack.pop();
                }
                ("delete", _) => stack.clear(),
                (_, Some(to)) => stack.push(to),
                _ => {}
            }
        }
        if stack.is_empty() {
            return Err(RegistryError::UnknownAlias {
                name: name.to_owned(),
                alias: alias.to_owned(),
                hint: String::new(),
            });
        }
        let Some(&target) = stack.len().checked_sub(2).and_then(|i| stack.get(i)) else {
            return Err(RegistryError::Conflict(format!(
                "{name}@{alias} has no earlier version to roll back to (it has pointed at v{} only)",
                stack[0]
            )));
        };
        self.commit_move(name, alias, target, "rollback", user, reason)
    }

    /// Moves an alias and bumps the generation, in one transaction.
    fn commit_move(
        &mut self,
        name: &str,
        alias: &str,
        version: u32,
        kind: &str,
        user: &str,
        reason: &str,
    ) -> Result<AliasMove> {
        transaction(&mut self.conn, |tx| {
            let moved = move_alias(tx, name, alias, version, kind, user, reason)?;
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
        transaction(&mut self.conn, |tx| {
            let current: Option<u32> = tx
                .query_row(
                    "SELECT version FROM aliases WHERE model = ?1 AND alias = ?2",
                    params![name, alias],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(current) = current else {
                return Err(RegistryError::UnknownAlias {
                    name: name.to_owned(),
                    alias: alias.to_owned(),
                    hint: String::new(),
                });
            };
            tx.execute(
                "DELETE FROM aliases WHERE model = ?1 AND alias = ?2",
                params![name, alias],
            )?;
            let at = now();
            tx.execute(
                "INSERT INTO alias_history(model, alias, from_version, to_version, kind, user_name, at, reason)
                 VALUES (?1, ?2, ?3, NULL, 'delete', ?4, ?5, ?6)",
                params![name, alias, current, user, at, reason],
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
        let info = self
            .resolve(&ModelRef { name: name.to_owned(), selector: Selector::Version(version) })?;
        if !info.aliases.is_empty() {
            return Err(RegistryError::Conflict(format!(
                "{name} v{version} is {}; move or delete the alias first",
                info.aliases.iter().map(|a| format!("@{a}")).collect::<Vec<_>>().join(" and ")
            )));
        }
        transaction(&mut self.conn, |tx| {
            tx.execute(
                "DELETE FROM versions WHERE model = ?1 AND version = ?2",
                params![name, version],
            )?;
            bump_generation(tx)?;
            Ok(())
        })
    }

    /// Every alias move of a model, oldest first.
    pub fn alias_history(&self, name: &str) -> Result<Vec<AliasMove>> {
        let mut statement = self.conn.prepare(
            "SELECT model, alias, from_version, to_version, kind, user_name, at, reason FROM alias_history
             WHERE model = ?1 ORDER BY id",
        )?;
        let rows = statement.query_map([name], |r| {
            Ok(AliasMove {
                model: r.get(0)?,
                alias: r.get(1)?,
                from_version: r.get(2)?,
                to_version: r.get(3)?,
                kind: r.get(4)?,
                user: r.get(5)?,
                at: r.get(6)?,
                reason: r.get(7)?,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }
}

fn move_alias(
    tx: &Transaction<'_>,
    name: &str,
    alias: &str,
    version: u32,
    kind: &str,
    user: &str,
    reason: &str,
) -> Result<AliasMove> {
    let previous: Option<u32> = tx
        .query_row(
            "SELECT version FROM aliases WHERE model = ?1 AND alias = ?2",
            params![name, alias],
            |r| r.get(0),
        )
        .optional()?;
    tx.execute(
        "INSERT INTO aliases(model, alias, version) VALUES (?1, ?2, ?3)
         ON CONFLICT(model, alias) DO UPDATE SET version = excluded.version",
        params![name, alias, version],
    )?;
    let at = now();
    tx.execute(
        "INSERT INTO alias_history(model, alias, from_version, to_version, kind, user_name, at, reason)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![name, alias, previous, version, kind, user, at, reason],
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

#[cfg(test)]
mod tests;
