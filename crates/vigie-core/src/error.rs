//! The one classification of failures shared by every crate.

use serde::{Deserialize, Serialize};

/// What kind of failure an error is, and so who can fix it.
///
/// Each library crate's error enum maps every variant to one code; the server
/// maps codes to HTTP statuses and the CLI to exit codes, each in one place.
/// Add a variant only when a caller must react to it differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The caller's input is malformed or inconsistent (a bad file, column or parameter).
    InvalidInput,
    /// A named thing (model, version, column, file) does not exist.
    NotFound,
    /// The request conflicts with the current state (a version already taken).
    Conflict,
    /// A stored artifact is unreadable: truncated, corrupted or from a newer format.
    Corrupted,
    /// A dependency (disk, database, server) failed or is unreachable.
    Unavailable,
    /// A bug in Vigie: an invariant did not hold.
    Internal,
}

impl ErrorCode {
    /// The process exit code the CLI uses for this kind of failure.
    pub fn exit_code(self) -> i32 {
        match self {
            ErrorCode::InvalidInput | ErrorCode::NotFound | ErrorCode::Conflict => 2,
            ErrorCode::Corrupted | ErrorCode::Unavailable | ErrorCode::Internal => 1,
        }
    }
}
