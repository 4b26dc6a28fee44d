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
//! a [`SavedModel`], so forecast models are files like any other; version 3
//! writes a forecast series' recent values as one byte string
//! ([`packed_floats`]) instead of an array of numbers: they are most of a
//! forecast model (3.4 of 4.1 MB for 1,000 daily series), and the array took
//! most of its decoding time. Version 4 adds the global model's lagged
//! covariates (each series keeps the last values of its future-known
//! covariates): a build that reads up to 3 would refuse such a model's
//! trees for their feature count, so it refuses the file by its version.
//! Version 1, 2 and 3 files are still read.

use sha2::{Digest, Sha256};

use crate::error::{MlError, Result};
use crate::model::Model;
use crate::saved::SavedModel;

/// Identifies a Vigie model file.
pub const MAGIC: &[u8; 8] = b"VIGIEMDL";
/// The format this build writes, and the newest it reads.
pub const FORMAT_VERSION: u32 = 4;
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
    let unreadable = |e: ciborium::de::Error<std::io::Error>| {
        MlError::Corrupted(format!("unreadable payload: {e}"))
    };
    // The checksum beside the decoding; a mismatch is the error either way.
    let (intact, decoded) = rayon::join(
        || Sha256::digest(payload).as_slice() == &bytes[20..52],
        || {
            if version == 1 {
                ciborium::from_reader::<Model, _>(payload).map(SavedModel::from)
            } else {
                ciborium::from_reader::<SavedModel, _>(payload)
            }
        },
    );
    if !intact {
        return Err(MlError::Corrupted(
            "checksum mismatch: the file was modified or damaged".into(),
        ));
    }
    let mut model = decoded.map_err(unreadable)?;
    model.validate()?;
    Ok(model)
}

/// Serde for a list of numbers that binary formats (the model file's CBOR)
/// write as one byte string of little-endian `f64`s, each value exact (NaN
/// payloads too), and human-readable ones (JSON) as a list. Reads either
/// form, so files that wrote the list still load.
pub(crate) mod packed_floats {
    use serde::de::{self, SeqAccess, Visitor};
    use serde::{Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(values: &[f64], serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            return values.serialize(serializer);
        }
        let bytes: Vec<u8> = values.iter().flat_map(|value| value.to_le_bytes()).collect();
        serializer.serialize_bytes(&bytes)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<f64>, D::Error> {
        deserializer.deserialize_any(Floats)
    }

    struct Floats;

    impl<'de> Visitor<'de> for Floats {
        type Value = Vec<f64>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a list of numbers, or their bytes")
        }

        fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<Vec<f64>, E> {
            if !bytes.len().is_multiple_of(8) {
                return Err(E::invalid_length(bytes.len(), &"a multiple of 8 bytes"));
            }
            Ok(bytes
                .chunks_exact(8)
                .map(|chunk| {
                    let mut value = [0u8; 8];
                    value.copy_from_slice(chunk);
                    f64::from_le_bytes(value)
                })
                .collect())
        }

        fn visit_byte_buf<E: de::Error>(self, bytes: Vec<u8>) -> Result<Vec<f64>, E> {
            self.visit_bytes(&bytes)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<f64>, A::Error> {
            let mut values = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 16));
            while let Some(value) = seq.next_element()? {
                values.push(value);
            }
            Ok(values)
        }
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Serialize, Deserialize)]
    struct Packed {
        #[serde(with = "super::packed_floats")]
        values: Vec<f64>,
    }

    /// The same field as format version 2 wrote it: a list of numbers.
    #[derive(Debug, Serialize, Deserialize)]
    struct Listed {
        values: Vec<f64>,
    }

    fn bits(values: &[f64]) -> Vec<u64> {
        values.iter().map(|v| v.to_bits()).collect()
    }

    #[test]
    fn packed_floats_are_bytes_in_cbor_exact_and_still_read_as_a_list() {
        let values = vec![1.5, -0.0, f64::NAN, f64::INFINITY, -3e-310, 123456.789, 0.1];
        let mut cbor = Vec::new();
        ciborium::into_writer(&Packed { values: values.clone() }, &mut cbor).unwrap();
        // One map entry whose value is a byte string (major type 2) of 7 × 8 bytes.
        let value: ciborium::Value = ciborium::from_reader(cbor.as_slice()).unwrap();
        let entries = value.as_map().expect("a map");
        assert_eq!(entries[0].1.as_bytes().map(Vec::len), Some(56));
        let read: Packed = ciborium::from_reader(cbor.as_slice()).unwrap();
        assert_eq!(bits(&read.values), bits(&values));

        let mut listed = Vec::new();
        ciborium::into_writer(&Listed { values: values.clone() }, &mut listed).unwrap();
        let read: Packed = ciborium::from_reader(listed.as_slice()).unwrap();
        assert_eq!(bits(&read.values), bits(&values));
        // Long enough that the reader hands the bytes over as a buffer of their own.
        let long: Vec<f64> = (0..5000).map(|i| f64::from(i) / 7.0).collect();
        let mut cbor = Vec::new();
        ciborium::into_writer(&Packed { values: long.clone() }, &mut cbor).unwrap();
        let read: Packed = ciborium::from_reader(cbor.as_slice()).unwrap();
        assert_eq!(bits(&read.values), bits(&long));
    }

    #[test]
    fn packed_floats_are_a_list_in_json_and_bad_bytes_are_refused() {
        let json = serde_json::to_string(&Packed { values: vec![1.5, 2.0] }).unwrap();
        assert_eq!(json, r#"{"values":[1.5,2.0]}"#);
        let read: Packed = serde_json::from_str(&json).unwrap();
        assert_eq!(read.values, vec![1.5, 2.0]);
        let mut cbor = Vec::new();
        let seven_bytes =
            ciborium::Value::Map(vec![("values".into(), ciborium::Value::Bytes(vec![0; 7]))]);
        ciborium::into_writer(&seven_bytes, &mut cbor).unwrap();
        let error = ciborium::from_reader::<Packed, _>(cbor.as_slice()).unwrap_err().to_string();
        assert!(error.contains("a multiple of 8 bytes"), "{error}");
    }
}
