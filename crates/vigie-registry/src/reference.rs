//! How users name a model: `NAME`, `NAME:VERSION` or `NAME@ALIAS`.

use crate::RegistryError;

/// Which version of a model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// The `champion` alias when set, else the latest version.
    Default,
    /// A version number.
    Version(u32),
    /// An alias.
    Alias(String),
}

/// A model name with a version selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelRef {
    /// The model's name.
    pub name: String,
    /// Which version.
    pub selector: Selector,
}

impl std::str::FromStr for ModelRef {
    type Err = RegistryError;
    fn from_str(text: &str) -> Result<Self, RegistryError> {
        let (name, selector) = if let Some((name, alias)) = text.split_once('@') {
            validate_name(alias)?;
            (name, Selector::Alias(alias.to_owned()))
        } else if let Some((name, version)) = text.split_once(':') {
            let version =
                version.trim_start_matches('v').parse::<u32>().ok().filter(|v| *v > 0).ok_or_else(
                    || {
                        RegistryError::InvalidName(format!(
                            "{text:?}: the version after ':' must be a number from 1"
                        ))
                    },
                )?;
            (name, Selector::Version(version))
        } else {
            (text, Selector::Default)
        };
        validate_name(name)?;
        Ok(ModelRef { name: name.to_owned(), selector })
    }
}

/// Checks that `name` can name a model, an alias or an experiment: 1 to 128
/// letters, digits, `-`, `_` or `.`, not starting with `.`.
pub fn validate_name(name: &str) -> Result<(), RegistryError> {
    let valid = !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if valid {
        Ok(())
    } else {
        Err(RegistryError::InvalidName(format!(
            "{name:?} is not a valid name: use 1 to 128 letters, digits, '-', '_' or '.', not starting with '.'"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse() {
        let parse = |t: &str| t.parse::<ModelRef>();
        assert_eq!(parse("fraud").unwrap().selector, Selector::Default);
        assert_eq!(parse("fraud:3").unwrap().selector, Selector::Version(3));
        assert_eq!(parse("fraud:v3").unwrap().selector, Selector::Version(3));
        assert_eq!(parse("fraud@champion").unwrap().selector, Selector::Alias("champion".into()));
        assert!(parse("fraud:0").is_err());
        assert!(parse("fraud:x").is_err());
        assert!(parse("../etc").is_err());
        assert!(parse("").is_err());
        assert!(parse("a@").is_err());
    }
}
