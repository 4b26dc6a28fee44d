//! Everything that can go wrong while fitting, evaluating, saving or loading a model.

use vigie_core::ErrorCode;

/// An error of the ML engine.
#[derive(Debug, thiserror::Error)]
pub enum MlError {
    /// The training data cannot be used as given (names the column and the problem).
    #[error("{0}")]
    InvalidData(String),
    /// A hyper-parameter is out of range (names the parameter).
    #[error("invalid parameter {name}: {reason}")]
    InvalidParameter {
        /// The parameter's name as the user writes it.
        name: String,
        /// What is wrong with its value.
        reason: String,
    },
    /// A column the model needs is absent from the input.
    #[error("missing input column {0:?}")]
    MissingColumn(String),
    /// An input column has the wrong type.
    #[error("column {column:?} is {got}, the model was trained on {expected}")]
    WrongColumnType {
        /// The column.
        column: String,
        /// Its type in the input.
        got: String,
        /// Its type at training time.
        expected: String,
    },
    /// The algorithm cannot do what was asked (e.g. explain an MLP exactly).
    #[error("{0}")]
    Unsupported(String),
    /// The model is of another kind than the command needs (a forecast model
    /// given to `predict`, a tabular model to `forecast`).
    #[error("{0}")]
    WrongKind(String),
    /// A model file is truncated, corrupted or from a newer format.
    #[error("model file: {0}")]
    Corrupted(String),
    /// The tree-boosting library failed.
    #[error("gradient boosting: {0}")]
    Boosting(String),
}

impl MlError {
    /// The shared classification of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            MlError::InvalidData(_)
            | MlError::InvalidParameter { .. }
            | MlError::MissingColumn(_)
            | MlError::WrongColumnType { .. }
            | MlError::Unsupported(_)
            | MlError::WrongKind(_) => ErrorCode::InvalidInput,
            MlError::Corrupted(_) => ErrorCode::Corrupted,
            MlError::Boosting(_) => ErrorCode::Internal,
        }
    }

    pub(crate) fn param(name: &str, reason: impl Into<String>) -> Self {
        MlError::InvalidParameter { name: name.to_owned(), reason: reason.into() }
    }
}

/// Result alias of the ML engine.
pub type Result<T, E = MlError> = std::result::Result<T, E>;
