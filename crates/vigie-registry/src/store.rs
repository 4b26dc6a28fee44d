//! A directory of model versions: `<state>/models/<name>/v<version>.vgm`.
//!
//! Saving writes the file under a temporary name, then hard-links it to the
//! first free version number: the link fails if another process took that
//! number first, so two trainings saving at once get distinct versions and
//! no file is ever seen half-written.

use std::fs;
use std::path::{Path, PathBuf};

use vigie_ml::{Model, format};

use crate::RegistryError;

/// A model name with an optional version: `NAME` or `NAME:VERSION`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelRef {
    /// The model's name.
    pub name: String,
    /// A version, or `None` for the latest.
    pub version: Option<u32>,
}

impl std::str::FromStr for ModelRef {
    type Err = RegistryError;
    fn from_str(text: &str) -> Result<Self, RegistryError> {
        let (name, version) = match text.split_once(':') {
            None => (text, None),
            Some((name, version)) => {
                let version = version
                    .trim_start_matches('v')
                    .parse::<u32>()
                    .ok()
                    .filter(|v| *v > 0)
                    .ok_or_else(|| {
                        RegistryError::InvalidName(format!(
                            "{text:?}: the version after ':' must be a number from 1"
                        ))
                    })?;
                (name, Some(version))
            }
        };
        validate_name(name)?;
        Ok(ModelRef { name: name.to_owned(), version })
    }
}

/// Checks that `name` can name a model (and a folder): letters, digits, `-`, `_`, `.`.
pub fn validate_name(name: &str) -> Result<(), RegistryError> {
    let valid = !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if valid {
        Ok(())
    } else {
        Err(RegistryError::InvalidName(format!(
            "{name:?} is not a valid model name: use 1 to 128 letters, digits, '-', '_' or '.', not starting with '.'"
        )))
    }
}

/// One stored version.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredVersion {
    /// The model's name.
    pub name: String,
    /// The version.
    pub version: u32,
    /// The file holding it.
    pub path: PathBuf,
}

/// The model files of one project.
#[derive(Debug, Clone)]
pub struct ModelStore {
    root: PathBuf,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> RegistryError + '_ {
    move |source| RegistryError::Io { path: path.to_owned(), source }
}

impl ModelStore {
    /// The store of the project whose state folder is `state_dir` (usually `<project>/.vigie`).
    pub fn open(state_dir: &Path) -> Self {
        ModelStore { root: state_dir.join("models") }
    }

    /// Saves `model` as the next version of its name, setting `card.version`; returns the version.
    pub fn save(&self, model: &mut Model) -> Result<StoredVersion, RegistryError> {
        validate_name(&model.card.name)?;
        let folder = self.root.join(&model.card.name);
        fs::create_dir_all(&folder).map_err(io(&folder))?;
        let mut version = self.versions(&model.card.name)?.last().map_or(1, |v| v.version + 1);
        loop {
            model.card.version = version;
            let bytes = format::encode(model)
                .map_err(|source| RegistryError::Model { path: folder.clone(), source })?;
            let tmp = folder.join(format!(".v{version}.{}.tmp", std::process::id()));
            fs::write(&tmp, &bytes).map_err(io(&tmp))?;
            let target = folder.join(format!("v{version}.vgm"));
            let linked = fs::hard_link(&tmp, &target);
            let _ = fs::remove_file(&tmp);
            match linked {
                Ok(()) => {
                    return Ok(StoredVersion {
                        name: model.card.name.clone(),
                        version,
                        path: target,
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => version += 1,
                Err(e) => return Err(RegistryError::Io { path: target, source: e }),
            }
        }
    }

    /// Every model name, sorted.
    pub fn names(&self) -> Result<Vec<String>, RegistryError> {
        let entries = match fs::read_dir(&self.root) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(RegistryError::Io { path: self.root.clone(), source: e }),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io(&self.root))?;
            if let Some(name) = entry.file_name().to_str()
                && validate_name(name).is_ok()
                && entry.path().is_dir()
            {
                names.push(name.to_owned());
            }
        }
        names.sort();
        Ok(names)
    }

    /// The versions of `name`, ascending.
    pub fn versions(&self, name: &str) -> Result<Vec<StoredVersion>, RegistryError> {
        let folder = self.root.join(name);
        let entries = match fs::read_dir(&folder) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(RegistryError::Io { path: folder, source: e }),
        };
        let mut versions = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io(&folder))?;
            let file_name = entry.file_name();
            let Some(text) = file_name.to_str() else { continue };
            if let Some(version) = text
                .strip_prefix('v')
                .and_then(|t| t.strip_suffix(".vgm"))
                .and_then(|v| v.parse().ok())
            {
                versions.push(StoredVersion { name: name.to_owned(), version, path: entry.path() });
            }
        }
        versions.sort_by_key(|v| v.version);
        Ok(versions)
    }

    /// Finds a stored version (the latest when none is given).
    pub fn resolve(&self, reference: &ModelRef) -> Result<StoredVersion, RegistryError> {
        let versions = self.versions(&reference.name)?;
        if versions.is_empty() {
            let names = self.names()?;
            let hint = if names.is_empty() {
                "; no model is saved yet (run `vigie train`)".to_owned()
            } else {
                format!("; saved models: {}", names.join(", "))
            };
            return Err(RegistryError::UnknownModel { name: reference.name.clone(), hint });
        }
        match reference.version {
            None => versions.last().cloned().ok_or_else(|| RegistryError::UnknownModel {
                name: reference.name.clone(),
                hint: String::new(),
            }),
            Some(version) => {
                versions.iter().find(|v| v.version == version).cloned().ok_or_else(|| {
                    RegistryError::UnknownVersion {
                        name: reference.name.clone(),
                        version,
                        available: versions
                            .iter()
                            .map(|v| v.version.to_string())
                            .collect::<Vec<_>>()
                            .join(", "),
                    }
                })
            }
        }
    }

    /// Loads a stored version.
    pub fn load(&self, stored: &StoredVersion) -> Result<Model, RegistryError> {
        let bytes = fs::read(&stored.path).map_err(io(&stored.path))?;
        format::decode(&bytes)
            .map_err(|source| RegistryError::Model { path: stored.path.clone(), source })
    }
}
