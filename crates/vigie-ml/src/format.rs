//! The model file: one versioned, self-describing, checksummed format.
//!
//! Layout: the 8-byte magic `VIGIEMDL`, the format version (`u32`, little
//! endian), the payload length (`u64`), the SHA-256 of the payload, then the
//! payload: the [`Model`] (card, pipeline, estimator) in CBOR (RFC 8949), a
//! self-describing binary form of the same data model as JSON that any CBOR
//! tool reads, which keeps non-finite numbers (a split at +∞) exact and is
//! several times smaller than JSON for large forests. Reading checks each part in that order, so a file from a newer
//! Vigie, a truncated file and a corrupted one each get their own message,
//! and a model is only returned once its parts have been validated.

use sha2::{Digest, Sha256};

use crate::error::{MlError, Result};
use crate::model::Model;

/// Identifies a Vigie model file.
pub const MAGIC: &[u8; 8] = b"VIGIEMDL";
/// The format this build writes, and the newest it reads.
pub const FORMAT_VERSION: u32 = 1;
const HEADER_LEN: usize = 8 + 4 + 8 + 32;

/// Serialises a model into the file format.
pub fn encode(model: &Model) -> Result<Vec<u8>> {
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
pub fn decode(bytes: &[u8]) -> Result<Model> {
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
    let mut model: Model = ciborium::from_reader(payload)
        .map_err(|e| MlError::Corrupted(format!("unreadable payload: {e}")))?;
    model.validate()?;
    Ok(model)
}
