//! Redis values to protocol replies, flattened to RESP2 shapes.

use redge::client::Reply;
use redis::Value;

/// Converts a value from the Redis client library; RESP3 maps, sets, doubles and booleans become the
/// RESP2 shapes that HTTP clients expect.
pub fn from_redis(value: Value) -> Reply {
    match value {
        Value::Nil => Reply::Nil,
        Value::Int(n) => Reply::Int(n),
        Value::BulkString(bytes) => Reply::Data(bytes),
        Value::SimpleString(s) => Reply::Status(s),
        Value::Okay => Reply::Status("OK".into()),
        Value::Array(items) | Value::Set(items) => {
            Reply::Array(items.into_iter().map(from_redis).collect())
        }
        Value::Push { data, .. } => Reply::Array(data.into_iter().map(from_redis).collect()),
        Value::Map(pairs) => Reply::Array(
            pairs
                .into_iter()
                .flat_map(|(k, v)| [from_redis(k), from_redis(v)])
                .collect(),
        ),
        Value::Attribute { data, .. } => from_redis(*data),
        Value::Double(d) => Reply::Data(d.to_string().into_bytes()),
        Value::Boolean(b) => Reply::Int(i64::from(b)),
        Value::VerbatimString { text, .. } => Reply::Data(text.into_bytes()),
        Value::BigNumber(n) => Reply::Data(n),
        Value::ServerError(e) => Reply::Error(crate::backend::server_error_text(&e)),
        // The value type is non-exhaustive; anything newer is passed on as its debug text.
        #[allow(unreachable_patterns)]
        other => Reply::Data(format!("{other:?}").into_bytes()),
    }
}
