//! The model file: one versioned, self-describing, checksummed format.
//!
//! Layout: the 8-byte magic `VIGIEMDL`, the format version (`u32`, little
//! endian), the payload length (`u64`), the SHA-256 of the payload, then the
//! payload: the [`SavedModel`] (a tabular model's card, pipeline and
//! estimator, or a forecast model's card and series states) in CBOR (RFC 8949), a
//! self-describing binary form of the same data model as JSON that any CBOR
//! tool reads, which keeps non-finite numbers (a split at +∞) exact and is
//! several times smaller than JSON for large forests. Reading checks each part in that order, so a file from a newer
//! Vigie, a truncated file and a corrupted one each get their own message,
//! and a model is only returned once its parts have been validated.
//!
//! Format history: version 1 held a tabular [`Model`] alone; version 2 holds
//! a [`SavedModel`], so forecast models are files like any other. Version 1
//! files are still read, as tabular models.

use sha2::{Digest, Sha256};

use crate::error::{MlError, Result};
use crate::model::Model;
use crate::saved::SavedModel;

/// Identifies a Vigie model file.
pub const MAGIC: &[u8; 8] = b"VIGIEMDL";
/// The format this build writes, and the newest it reads.
pub const FORMAT_VERSION: u32 = 2;
const HEADER_LEN: usize = 8 + 4 + 8 + 32;

/// Serialises a model into the file format.
pub fn encode(model: &SavedModel) -> Result<Vec<u8>> {
    let mut payload = Vec::new();
    ciborium::into_writer(model, &mut payload)
        .map_err(|e| MlError::Corrupted(format!("cannot serialise: {e}")))?;
    let mut bytes = Vec::with_capacity(HEADER_LEN + payload.len());
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    bytes.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&Sha256::digest(&payload));
    bytes.extend_from_slice(&payload);
    Ok(bytes)
}

/// Reads a model from the file format, refusing anything not exactly as written.
pub fn decode(bytes: &[u8]) -> Result<SavedModel> {
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        return Err(MlError::Corrupted("not a Vigie model file (bad magic bytes)".into()));
    }
    if bytes.len() < HEADER_LEN {
        return Err(MlError::Corrupted(format!(
            "truncated header: {} of {HEADER_LEN} bytes",
            bytes.len()
        )));
    }
    let version = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    if version > FORMAT_VERSION {
        return Err(MlError::Corrupted(format!(
            "written in format version {version} by a newer Vigie; this build reads up to version {FORMAT_VERSION}"
        )));
    }
    if version == 0 {
        return Err(MlError::Corrupted("format version 0 does not exist".into()));
    }
    let mut length_bytes = [0u8; 8];
    length_bytes.copy_from_slice(&bytes[12..20]);
    let length = u64::from_le_bytes(length_bytes);
    let payload = &bytes[HEADER_LEN..];
    if (payload.len() as u64) < length {
        return Err(MlError::Corrupted(format!(
            "truncated: payload has {} of {length} bytes",
            payload.len()
        )));
    }
    if payload.len() as u64 > length {
        return Err(MlError::Corrupted(format!(
            "{} unexpected bytes after the payload",
            payload.len() as u64 - length
        )));
    }
    if Sha256::digest(payload).as_slice() != &bytes[20..52] {
        return Err(MlError::Corrupted(
            "checksum mismatch: the file was modified or damaged".into(),
        ));
    }
    let unreadable = |e: ciborium::de::Error<std::io::Error>| {
        MlError::Corrupted(format!("unreadable payload: {e}"))
    };
    let mut model = if version == 1 {
        SavedModel::from(ciborium::from_reader::<Model, _>(payload).map_err(unreadable)?)
    } else {
        ciborium::from_reader::<SavedModel, _>(payload).map_err(unreadable)?
    };
    model.validate()?;
    Ok(model)
}
