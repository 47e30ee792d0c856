//! The two wire protocols the AWS Health API speaks: AWS JSON 1.1 (`POST /` with
//! `X-Amz-Target: AWSHealth_20160804.<Operation>`) and Smithy RPC v2 CBOR
//! (`POST /service/AWSHealth_20160804/operation/<Operation>`, which current AWS SDKs send).
//! Both carry the same shapes; only the encoding differs (CBOR tags timestamps with tag 1).

use base64::Engine;
use ciborium::Value as Cbor;
use serde_json::{Map, Number, Value};

/// Timestamp members of the Health shapes (epoch seconds on the wire).
const TIMESTAMP_MEMBERS: &[&str] = &["startTime", "endTime", "lastUpdatedTime", "from", "to"];

/// An AWS error: `{"__type": ..., "message": ...}` with an HTTP status.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct ApiError {
    pub status: u16,
    pub kind: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn validation(message: impl Into<String>) -> Self {
        ApiError { status: 400, kind: "ValidationException", message: message.into() }
    }

    pub fn serialization(message: impl Into<String>) -> Self {
        ApiError { status: 400, kind: "SerializationException", message: message.into() }
    }

    pub fn invalid_token(message: impl Into<String>) -> Self {
        ApiError { status: 400, kind: "InvalidPaginationToken", message: message.into() }
    }

    pub fn unknown_operation(operation: &str) -> Self {
        ApiError {
            status: 400,
            kind: "UnknownOperationException",
            message: format!("unknown operation {operation}"),
        }
    }

    pub fn to_json(&self) -> Value {
        serde_json::json!({"__type": self.kind, "message": self.message})
    }
}

/// Decodes a CBOR request body into the JSON model the operations read.
pub fn cbor_to_json(bytes: &[u8]) -> Result<Value, ApiError> {
    if bytes.is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    let value: Cbor = ciborium::de::from_reader(bytes)
        .map_err(|e| ApiError::serialization(format!("body is not valid CBOR: {e}")))?;
    Ok(from_cbor(value))
}

fn from_cbor(value: Cbor) -> Value {
    match value {
        Cbor::Integer(i) => {
            let i: i128 = i.into();
            i64::try_from(i).map(Value::from).unwrap_or(Value::Null)
        }
        Cbor::Float(f) => Number::from_f64(f).map(Value::Number).unwrap_or(Value::Null),
        Cbor::Text(t) => Value::String(t),
        Cbor::Bytes(b) => Value::String(base64::engine::general_purpose::STANDARD.encode(b)),
        Cbor::Bool(b) => Value::Bool(b),
        Cbor::Null => Value::Null,
        Cbor::Tag(_, inner) => from_cbor(*inner),
        Cbor::Array(list) => Value::Array(list.into_iter().map(from_cbor).collect()),
        Cbor::Map(entries) => Value::Object(
            entries
                .into_iter()
                .filter_map(|(k, v)| match k {
                    Cbor::Text(key) => Some((key, from_cbor(v))),
                    _ => None,
                })
                .collect(),
        ),
        _ => Value::Null,
    }
}

/// Encodes a response in CBOR, tagging timestamp members (tag 1, epoch seconds).
pub fn json_to_cbor(value: &Value) -> Vec<u8> {
    let mut bytes = Vec::new();
    ciborium::ser::into_writer(&to_cbor(value, false), &mut bytes)
        .expect("writing CBOR to memory cannot fail");
    bytes
}

fn to_cbor(value: &Value, timestamp: bool) -> Cbor {
    match value {
        Value::Null => Cbor::Null,
        Value::Bool(b) => Cbor::Bool(*b),
        Value::Number(n) if timestamp => Cbor::Tag(1, Box::new(Cbor::Float(n.as_f64().unwrap_or_default()))),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Cbor::Integer(i.into()),
            None => Cbor::Float(n.as_f64().unwrap_or_default()),
        },
        Value::String(s) => Cbor::Text(s.clone()),
        Value::Array(list) => Cbor::Array(list.iter().map(|v| to_cbor(v, false)).collect()),
        Value::Object(map) => Cbor::Map(
            map.iter()
                .map(|(k, v)| (Cbor::Text(k.clone()), to_cbor(v, TIMESTAMP_MEMBERS.contains(&k.as_str()))))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trips_with_tagged_timestamps() {
        let value =
            json!({"events": [{"arn": "a", "startTime": 1589077890.53, "count": 3}], "nextToken": null});
        let bytes = json_to_cbor(&value);
        let decoded: Cbor = ciborium::de::from_reader(bytes.as_slice()).unwrap();
        let text = format!("{decoded:?}");
        assert!(text.contains("Tag(1, Float(1589077890.53))"), "{text}");
        assert_eq!(cbor_to_json(&bytes).unwrap(), value);
    }
}
