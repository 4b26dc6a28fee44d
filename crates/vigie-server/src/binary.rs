//! The binary tensor data extension of the Open Inference Protocol over
//! HTTP, which `tritonclient.http` uses by default: the body is the JSON
//! request, `Inference-Header-Content-Length` bytes long, followed by the
//! raw tensors in input order, each sized by its `binary_data_size`
//! parameter. Numbers are little-endian; a `BYTES` element is a 4-byte
//! little-endian length and then its bytes. Replies use the same layout for
//! outputs asked for in binary.

use axum::http::HeaderMap;
use serde_json::{Value as Json, json};

use crate::error::ApiError;

/// The header giving the length of the JSON part of a body.
pub const HEADER_LENGTH: &str = "inference-header-content-length";

/// Splits a body into its JSON part and the binary tail (empty when the
/// request carries no binary tensors).
pub fn split<'a>(headers: &HeaderMap, body: &'a [u8]) -> Result<(&'a [u8], &'a [u8]), ApiError> {
    let Some(length) = headers.get(HEADER_LENGTH) else { return Ok((body, &[])) };
    let length: usize =
        length.to_str().ok().and_then(|l| l.trim().parse().ok()).ok_or_else(|| {
            ApiError::bad_request(format!("header {HEADER_LENGTH}: expected a byte count"))
        })?;
    if length > body.len() {
        return Err(ApiError::bad_request(format!(
            "header {HEADER_LENGTH} says {length} bytes of JSON, the body has {}",
            body.len()
        )));
    }
    Ok(body.split_at(length))
}

/// The tail's tensors, taken in input order.
pub struct Tail<'a> {
    rest: &'a [u8],
}

impl<'a> Tail<'a> {
    /// The binary tail of a request.
    pub fn new(rest: &'a [u8]) -> Self {
        Tail { rest }
    }

    /// The next `size` bytes, for the tensor described by `what`.
    pub fn take(&mut self, size: usize, what: &str) -> Result<&'a [u8], ApiError> {
        if size > self.rest.len() {
            return Err(ApiError::bad_request(format!(
                "{what}: binary_data_size {size}, but only {} bytes of binary data are left",
                self.rest.len()
            )));
        }
        let (taken, rest) = self.rest.split_at(size);
        self.rest = rest;
        Ok(taken)
    }

    /// Bytes nobody asked for: an error, as they mean a size was wrong.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(ApiError::bad_request(format!(
                "{} bytes of binary data follow the last binary input",
                self.rest.len()
            )))
        }
    }
}

/// Decodes one binary tensor of `datatype` into JSON values (one per element).
pub fn decode(datatype: &str, bytes: &[u8], what: &str) -> Result<Vec<Json>, ApiError> {
    fn fixed<const N: usize>(
        bytes: &[u8],
        what: &str,
        datatype: &str,
        read: impl Fn([u8; N]) -> Json,
    ) -> Result<Vec<Json>, ApiError> {
        if !bytes.len().is_multiple_of(N) {
            return Err(ApiError::bad_request(format!(
                "{what}: {} bytes is not a whole number of {datatype} values ({N} bytes each)",
                bytes.len()
            )));
        }
        Ok(bytes
            .chunks_exact(N)
            .map(|chunk| {
                let mut array = [0u8; N];
                array.copy_from_slice(chunk);
                read(array)
            })
            .collect())
    }
    match datatype {
        "FP64" => fixed(bytes, what, datatype, |b| json!(f64::from_le_bytes(b))),
        "FP32" => fixed(bytes, what, datatype, |b| json!(f32::from_le_bytes(b))),
        "INT64" => fixed(bytes, what, datatype, |b| json!(i64::from_le_bytes(b))),
        "INT32" => fixed(bytes, what, datatype, |b| json!(i32::from_le_bytes(b))),
        "INT16" => fixed(bytes, what, datatype, |b| json!(i16::from_le_bytes(b))),
        "INT8" => fixed(bytes, what, datatype, |b: [u8; 1]| json!(i8::from_le_bytes(b))),
        "UINT64" => fixed(bytes, what, datatype, |b| json!(u64::from_le_bytes(b))),
        "UINT32" => fixed(bytes, what, datatype, |b| json!(u32::from_le_bytes(b))),
        "UINT16" => fixed(bytes, what, datatype, |b| json!(u16::from_le_bytes(b))),
        "UINT8" => fixed(bytes, what, datatype, |b: [u8; 1]| json!(b[0])),
        "BOOL" => fixed(bytes, what, datatype, |b: [u8; 1]| json!(b[0] != 0)),
        "BYTES" => decode_bytes(bytes, what),
        other => Err(ApiError::bad_request(format!(
            "{what}: datatype {other:?} is not supported in binary form \
             (FP64, FP32, INT8-64, UINT8-64, BOOL, BYTES)"
        ))),
    }
}

fn decode_bytes(mut bytes: &[u8], what: &str) -> Result<Vec<Json>, ApiError> {
    let mut values = Vec::new();
    while !bytes.is_empty() {
        let Some((length, rest)) = bytes.split_first_chunk::<4>() else {
            return Err(ApiError::bad_request(format!(
                "{what}: element {} has a truncated 4-byte length",
                values.len()
            )));
        };
        let length = u32::from_le_bytes(*length) as usize;
        if length > rest.len() {
            return Err(ApiError::bad_request(format!(
                "{what}: element {} says {length} bytes, {} are left",
                values.len(),
                rest.len()
            )));
        }
        let (value, rest) = rest.split_at(length);
        let text = std::str::from_utf8(value).map_err(|_| {
            ApiError::bad_request(format!("{what}: element {} is not UTF-8 text", values.len()))
        })?;
        values.push(json!(text));
        bytes = rest;
    }
    Ok(values)
}

/// `FP64` values in binary form.
pub fn encode_fp64(values: &[f64]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// `BYTES` values in binary form.
pub fn encode_bytes(values: &[String]) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.iter().map(|v| v.len() + 4).sum());
    for value in values {
        out.extend_from_slice(&(value.len() as u32).to_le_bytes());
        out.extend_from_slice(value.as_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_survive_a_round_trip() {
        let numbers = [1.5, -0.25, f64::MAX];
        let decoded = decode("FP64", &encode_fp64(&numbers), "x").expect("fp64");
        assert_eq!(decoded, vec![json!(1.5), json!(-0.25), json!(f64::MAX)]);
        let texts = ["Yes".to_owned(), String::new(), "né".to_owned()];
        let decoded = decode("BYTES", &encode_bytes(&texts), "x").expect("bytes");
        assert_eq!(decoded, vec![json!("Yes"), json!(""), json!("né")]);
    }

    #[test]
    fn broken_tensors_are_named() {
        let error = decode("FP64", &[0; 12], "inputs[0] (\"balance\")").expect_err("12 bytes");
        assert!(error.message.contains("inputs[0] (\"balance\"): 12 bytes"), "{error}");
        let error = decode("BYTES", &[9, 0, 0, 0, b'a'], "t").expect_err("short");
        assert!(error.message.contains("element 0 says 9 bytes, 1 are left"), "{error}");
        let mut tail = Tail::new(&[1, 2, 3]);
        assert!(tail.take(4, "t").is_err());
        assert!(tail.take(2, "t").is_ok());
        assert!(tail.finish().is_err());
    }
}
