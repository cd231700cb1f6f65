//! The wire format of the HTTP Redis protocol, in both directions.
//!
//! The client encodes commands and decodes replies with these functions; `redge-gateway` decodes commands
//! and encodes replies with the same ones, so the two cannot drift apart.
//!
//! A command is a JSON array of strings. A reply is `{"result": value}` or `{"error": "text"}`. With
//! `Upstash-Encoding: base64`, every string at every depth is standard padded base64, except that a
//! top-level `OK` status may be sent literally. Padded base64 always has a length that is a multiple of
//! four, so the two-character `"OK"` can never be an encoded value: the decoder treats it as the status.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::Value;

use super::cmd::Cmd;
use super::reply::Reply;
use crate::{Error, Result};

/// Request header that asks for base64-encoded strings in replies.
pub const ENCODING_HEADER: &str = "upstash-encoding";
/// Request and response header carrying the read-your-writes token.
pub const SYNC_TOKEN_HEADER: &str = "upstash-sync-token";

/// Encodes one command as the JSON body of `POST /`.
///
/// Arguments travel as JSON strings, so each must be UTF-8; other bytes are refused with
/// [`Error::InvalidArgument`] rather than silently altered.
pub fn encode_command(cmd: &Cmd) -> Result<Vec<u8>> {
    let mut items = Vec::with_capacity(cmd.args().len());
    for (i, arg) in cmd.args().iter().enumerate() {
        match std::str::from_utf8(arg) {
            Ok(s) => items.push(Value::String(s.to_owned())),
            Err(_) => {
                return Err(Error::InvalidArgument(format!(
                    "argument {i} of {} is not valid UTF-8; the JSON request format carries text only",
                    cmd.name()
                )));
            }
        }
    }
    serde_json::to_vec(&Value::Array(items)).map_err(|e| Error::InvalidArgument(e.to_string()))
}

/// Decodes the body of a single-command response with the given HTTP status.
pub fn decode_response(status: u16, body: &[u8], base64: bool) -> Result<Reply> {
    let parsed: std::result::Result<Value, _> = serde_json::from_slice(body);
    let error_text = parsed
        .as_ref()
        .ok()
        .and_then(|v| v.get("error"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    match (status, parsed) {
        // A Redis error: 400 with the verbatim text (some servers send it with 200).
        (200 | 400, Ok(_)) if error_text.is_some() => {
            Err(Error::Redis(error_text.unwrap_or_default()))
        }
        (200, Ok(v)) => match v.get("result") {
            Some(result) => decode_value(result, base64),
            None => Err(Error::Protocol(
                "the response has neither `result` nor `error`".into(),
            )),
        },
        (200, Err(e)) => Err(Error::Protocol(format!("the response is not JSON: {e}"))),
        (status, _) => Err(Error::Http {
            status,
            message: error_text.unwrap_or_else(|| summarize(body)),
        }),
    }
}

/// Decodes one reply value (the content of `result`).
pub fn decode_value(value: &Value, base64: bool) -> Result<Reply> {
    Ok(match value {
        Value::Null => Reply::Nil,
        Value::Bool(b) => Reply::Int(i64::from(*b)),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Reply::Int(i),
            // Doubles normally arrive as strings; keep any other number's text as data.
            None => Reply::Data(n.to_string().into_bytes()),
        },
        Value::String(s) if base64 && s == "OK" => Reply::Status("OK".into()),
        Value::String(s) if base64 => Reply::Data(B64.decode(s).map_err(|_| {
            Error::Protocol(format!(
                "a string of {} characters is not valid base64",
                s.len()
            ))
        })?),
        Value::String(s) => Reply::Data(s.clone().into_bytes()),
        Value::Array(items) => Reply::Array(
            items
                .iter()
                .map(|item| decode_value(item, base64))
                .collect::<Result<_>>()?,
        ),
        Value::Object(map) => match map.get("error").and_then(Value::as_str) {
            Some(text) => Reply::Error(text.to_owned()),
            None => return Err(Error::Protocol("unexpected object inside a reply".into())),
        },
    })
}

/// Encodes a reply value for the `result` field.
///
/// `top_level` marks the whole reply of a single command, the one place where an `OK` status stays
/// literal under base64.
pub fn encode_value(reply: &Reply, base64: bool, top_level: bool) -> Value {
    let text = |bytes: &[u8]| {
        if base64 {
            Value::String(B64.encode(bytes))
        } else {
            Value::String(String::from_utf8_lossy(bytes).into_owned())
        }
    };
    match reply {
        Reply::Nil => Value::Null,
        Reply::Int(n) => Value::from(*n),
        Reply::Status(s) if top_level && s == "OK" => Value::String("OK".into()),
        Reply::Status(s) => text(s.as_bytes()),
        Reply::Data(d) => text(d),
        Reply::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| encode_value(item, base64, false))
                .collect(),
        ),
        Reply::Error(e) => serde_json::json!({ "error": e }),
    }
}

/// The JSON body `{"result": ...}` of a successful single command.
pub fn result_body(reply: &Reply, base64: bool) -> Vec<u8> {
    let value = serde_json::json!({ "result": encode_value(reply, base64, true) });
    value.to_string().into_bytes()
}

/// The JSON body `{"error": "..."}`.
pub fn error_body(text: &str) -> Vec<u8> {
    serde_json::json!({ "error": text })
        .to_string()
        .into_bytes()
}

/// Encodes the body of `/pipeline` and `/multi-exec` commands: a JSON array of command arrays.
///
/// # Errors
/// [`Error::InvalidArgument`] when an argument is not UTF-8.
pub fn encode_batch(cmds: &[Cmd]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(cmds.len() * 32 + 2);
    out.push(b'[');
    for (i, cmd) in cmds.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(&encode_command(cmd)?);
    }
    out.push(b']');
    Ok(out)
}

/// Decodes the body of a `/pipeline` or `/multi-exec` response: one entry per command, in order; an
/// entry is `{"result": ...}` or `{"error": "..."}` (without `result`).
pub fn decode_batch(status: u16, body: &[u8], base64: bool) -> Result<Vec<Result<Reply>>> {
    let parsed: std::result::Result<Value, _> = serde_json::from_slice(body);
    let entries = match (status, parsed) {
        (200, Ok(Value::Array(entries))) => entries,
        (200 | 400, Ok(v)) if v.get("error").is_some_and(Value::is_string) => {
            return Err(Error::Redis(
                v["error"].as_str().unwrap_or_default().to_owned(),
            ));
        }
        (200, _) => {
            return Err(Error::Protocol(
                "a batch response must be a JSON array".into(),
            ));
        }
        (status, parsed) => {
            let message = parsed
                .ok()
                .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_owned))
                .unwrap_or_else(|| summarize(body));
            return Err(Error::Http { status, message });
        }
    };
    entries
        .iter()
        .map(|entry| {
            if let Some(text) = entry.get("error").and_then(Value::as_str) {
                Ok(Err(Error::Redis(text.to_owned())))
            } else if let Some(result) = entry.get("result") {
                Ok(decode_value(result, base64))
            } else {
                Err(Error::Protocol(
                    "a batch entry has neither `result` nor `error`".into(),
                ))
            }
        })
        .collect()
}

/// Encodes the body of a batch response from per-command outcomes (`Err` holds Redis's error text).
pub fn batch_body(entries: &[std::result::Result<Reply, String>], base64: bool) -> Vec<u8> {
    let items: Vec<Value> = entries
        .iter()
        .map(|entry| match entry {
            Ok(reply) => serde_json::json!({ "result": encode_value(reply, base64, false) }),
            Err(text) => serde_json::json!({ "error": text }),
        })
        .collect();
    Value::Array(items).to_string().into_bytes()
}

fn summarize(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        "empty body".into()
    } else {
        text.chars().take(200).collect()
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use crate::client::cmd::cmd;
    use proptest::prelude::*;

    #[test]
    fn commands_are_json_arrays_of_strings() {
        let body = encode_command(&cmd("SET").arg("k").arg("ü").arg("EX").arg(60)).unwrap();
        assert_eq!(
            String::from_utf8(body).unwrap(),
            r#"["SET","k","ü","EX","60"]"#
        );
    }

    #[test]
    fn non_utf8_arguments_are_refused_not_mangled() {
        let err = encode_command(&cmd("SET").arg("k").arg(vec![0xff, 0xfe])).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(ref m) if m.contains("argument 2 of SET")));
    }

    #[test]
    fn decodes_base64_values_and_literal_ok() {
        let ok = decode_response(200, br#"{"result":"OK"}"#, true).unwrap();
        assert_eq!(ok, Reply::Status("OK".into()));
        let v = decode_response(200, br#"{"result":["/w==",null,5,"T0s="]}"#, true).unwrap();
        assert_eq!(
            v,
            Reply::Array(vec![
                Reply::Data(vec![0xff]),
                Reply::Nil,
                Reply::Int(5),
                Reply::Data(b"OK".to_vec())
            ])
        );
        let big = decode_response(200, br#"{"result":9007199254740993}"#, true).unwrap();
        assert_eq!(big, Reply::Int(9_007_199_254_740_993));
    }

    #[test]
    fn errors_are_typed_by_status() {
        assert_eq!(
            decode_response(400, br#"{"error":"ERR wrong number of arguments"}"#, true),
            Err(Error::Redis("ERR wrong number of arguments".into()))
        );
        assert_eq!(
            decode_response(200, br#"{"error":"NOSCRIPT No matching script."}"#, true),
            Err(Error::Redis("NOSCRIPT No matching script.".into()))
        );
        let auth = decode_response(401, br#"{"error":"Unauthorized"}"#, true).unwrap_err();
        assert!(auth.is_auth());
        let down = decode_response(502, b"", true).unwrap_err();
        assert!(down.is_unavailable());
        assert!(matches!(
            decode_response(200, b"<html>", true),
            Err(Error::Protocol(_))
        ));
        assert!(matches!(
            decode_response(200, br#"{"result":"not base64!"}"#, true),
            Err(Error::Protocol(_))
        ));
        assert!(matches!(
            decode_response(200, br#"{"other":1}"#, true),
            Err(Error::Protocol(_))
        ));
    }

    #[test]
    fn ok_stays_literal_only_at_the_top() {
        let reply = Reply::Array(vec![Reply::Status("OK".into())]);
        assert_eq!(
            String::from_utf8(result_body(&reply, true)).unwrap(),
            r#"{"result":["T0s="]}"#
        );
        assert_eq!(
            String::from_utf8(result_body(&Reply::Status("OK".into()), true)).unwrap(),
            r#"{"result":"OK"}"#
        );
    }

    #[test]
    fn batches_keep_order_and_per_entry_errors() {
        let body = encode_batch(&[cmd("SET").arg("a").arg("1"), cmd("INCR").arg("a")]).unwrap();
        assert_eq!(body, br#"[["SET","a","1"],["INCR","a"]]"#);
        let entries = vec![
            Ok(Reply::Status("OK".into())),
            Err("ERR value is not an integer or out of range".to_owned()),
            Ok(Reply::Int(2)),
        ];
        let wire = batch_body(&entries, true);
        assert_eq!(
            String::from_utf8(wire.clone()).unwrap(),
            r#"[{"result":"T0s="},{"error":"ERR value is not an integer or out of range"},{"result":2}]"#
        );
        let decoded = decode_batch(200, &wire, true).unwrap();
        assert_eq!(decoded[0], Ok(Reply::Data(b"OK".to_vec())));
        assert!(matches!(decoded[1], Err(Error::Redis(ref t)) if t.starts_with("ERR value")));
        assert_eq!(decoded[2], Ok(Reply::Int(2)));
        let aborted = br#"{"error":"EXECABORT Transaction discarded because of previous errors."}"#;
        assert!(matches!(
            decode_batch(400, aborted, true),
            Err(Error::Redis(_))
        ));
        assert!(matches!(
            decode_batch(200, br#"[{}]"#, true),
            Err(Error::Protocol(_))
        ));
        assert!(matches!(
            decode_batch(401, b"", true),
            Err(Error::Http { status: 401, .. })
        ));
    }

    fn arb_reply() -> impl Strategy<Value = Reply> {
        let leaf = prop_oneof![
            Just(Reply::Nil),
            any::<i64>().prop_map(Reply::Int),
            proptest::collection::vec(any::<u8>(), 0..16).prop_map(Reply::Data),
        ];
        leaf.prop_recursive(3, 32, 6, |inner| {
            proptest::collection::vec(inner, 0..6).prop_map(Reply::Array)
        })
    }

    /// A fixed number of cases for CI, and no regression files written into the source tree.
    fn config() -> ProptestConfig {
        ProptestConfig {
            cases: 256,
            failure_persistence: None,
            ..ProptestConfig::default()
        }
    }

    #[test]
    fn hostile_nesting_is_a_protocol_error_not_a_crash() {
        // serde_json stops at 128 levels, long before the stack would overflow.
        let deep = format!(
            r#"{{"result":{}1{}}}"#,
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        assert!(matches!(
            decode_response(200, deep.as_bytes(), true),
            Err(Error::Protocol(_))
        ));
        let batch = format!("[{}]", "[".repeat(100_000));
        assert!(matches!(
            decode_batch(200, batch.as_bytes(), true),
            Err(Error::Protocol(_))
        ));
    }

    #[test]
    fn integers_keep_all_64_bits_and_larger_numbers_stay_text() {
        let body = br#"{"result":[9223372036854775807,-9223372036854775808,9007199254740993,18446744073709551615,1.5]}"#;
        assert_eq!(
            decode_response(200, body, true).unwrap(),
            Reply::Array(vec![
                Reply::Int(i64::MAX),
                Reply::Int(i64::MIN),
                Reply::Int(9_007_199_254_740_993),
                Reply::Data(b"18446744073709551615".to_vec()),
                Reply::Data(b"1.5".to_vec()),
            ])
        );
    }

    /// Text that is nearly a reply: the envelope's keys, brackets, quotes, base64 and escapes.
    fn near_reply() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop_oneof![
                Just(r#"{"result":"#.to_owned()),
                Just(r#"{"error":"#.to_owned()),
                Just(r#""OK""#.to_owned()),
                Just(r#""T0s=""#.to_owned()),
                "[\\[\\]{},:\"0-9a-zA-Z+/=\\\\ .eE\\-]{0,6}",
            ],
            0..12,
        )
        .prop_map(|parts| parts.concat())
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn base64_round_trip_keeps_every_byte(reply in arb_reply()) {
            let body = result_body(&reply, true);
            prop_assert_eq!(decode_response(200, &body, true).unwrap(), reply);
        }

        #[test]
        fn arbitrary_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..128),
                                        status in prop_oneof![Just(200u16), Just(400), Just(500)]) {
            let _ = decode_response(status, &body, true);
            let _ = decode_response(status, &body, false);
            let _ = decode_batch(status, &body, true);
            let _ = decode_batch(status, &body, false);
        }

        #[test]
        fn nearly_valid_replies_never_panic(body in near_reply(),
                                            status in prop_oneof![Just(200u16), Just(400), Just(401), Just(502)],
                                            base64 in any::<bool>()) {
            if let Err(e) = decode_response(status, body.as_bytes(), base64) {
                let _ = e.to_string();
            }
            let _ = decode_batch(status, body.as_bytes(), base64);
        }

        #[test]
        fn plain_replies_round_trip_as_lossy_text(reply in arb_reply()) {
            // Without base64, invalid UTF-8 becomes U+FFFD; everything else arrives as sent.
            fn lossy(reply: &Reply) -> Reply {
                match reply {
                    Reply::Data(d) => Reply::Data(String::from_utf8_lossy(d).into_owned().into_bytes()),
                    Reply::Array(items) => Reply::Array(items.iter().map(lossy).collect()),
                    other => other.clone(),
                }
            }
            let body = result_body(&reply, false);
            prop_assert_eq!(decode_response(200, &body, false).unwrap(), lossy(&reply));
        }
    }
}
