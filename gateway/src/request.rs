//! Parsing command requests: a JSON array whose first element is the command name.

use serde_json::value::RawValue;

use crate::error::GatewayError;

/// Parses `["SET","k","v","EX",60]` into raw arguments.
///
/// Strings are taken as their UTF-8 bytes, numbers exactly as written in the JSON (`1e+21` stays
/// `1e+21`), booleans as `true`/`false`. Objects, nested arrays and `null` are refused.
pub fn parse_command(body: &[u8]) -> Result<Vec<Vec<u8>>, GatewayError> {
    let items: Vec<&RawValue> = serde_json::from_slice(body).map_err(|e| {
        GatewayError::BadRequest(format!(
            "the body must be a JSON array of strings and numbers: {e}"
        ))
    })?;
    if items.is_empty() {
        return Err(GatewayError::BadRequest(
            "the command array is empty".into(),
        ));
    }
    let args = items
        .iter()
        .enumerate()
        .map(|(i, raw)| parse_arg(i, raw))
        .collect::<Result<Vec<_>, _>>()?;
    if items[0].get().starts_with('"') {
        Ok(args)
    } else {
        Err(GatewayError::BadRequest(
            "the first element must be the command name, a string".into(),
        ))
    }
}

fn parse_arg(index: usize, raw: &RawValue) -> Result<Vec<u8>, GatewayError> {
    let text = raw.get();
    match text.as_bytes().first() {
        Some(b'"') => serde_json::from_str::<String>(text)
            .map(String::into_bytes)
            .map_err(|e| GatewayError::BadRequest(format!("argument {index}: {e}"))),
        Some(b'-' | b'0'..=b'9') | Some(b't' | b'f') => Ok(text.as_bytes().to_vec()),
        _ => Err(GatewayError::BadRequest(format!(
            "argument {index} must be a string, number or boolean, not {}",
            if text.starts_with('{') {
                "an object"
            } else if text.starts_with('[') {
                "an array"
            } else {
                "null"
            }
        ))),
    }
}

/// Parses the body of `/pipeline` and `/multi-exec`: a non-empty JSON array of command arrays.
pub fn parse_batch(body: &[u8]) -> Result<Vec<Vec<Vec<u8>>>, GatewayError> {
    let items: Vec<&RawValue> = serde_json::from_slice(body).map_err(|e| {
        GatewayError::BadRequest(format!(
            "the body must be a JSON array of command arrays: {e}"
        ))
    })?;
    if items.is_empty() {
        return Err(GatewayError::BadRequest("the batch is empty".into()));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, raw)| {
            if !raw.get().starts_with('[') {
                return Err(GatewayError::BadRequest(format!(
                    "command {i} must be a JSON array"
                )));
            }
            parse_command(raw.get().as_bytes()).map_err(|e| match e {
                GatewayError::BadRequest(m) => {
                    GatewayError::BadRequest(format!("command {i}: {m}"))
                }
                other => other,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(body: &str) -> Vec<String> {
        parse_command(body.as_bytes())
            .unwrap()
            .into_iter()
            .map(|a| String::from_utf8(a).unwrap())
            .collect()
    }

    #[test]
    fn numbers_keep_their_literal_text() {
        assert_eq!(
            args(r#"["SET","k",1e+21,"EX",3600,1.50,true]"#),
            ["SET", "k", "1e+21", "EX", "3600", "1.50", "true"]
        );
        assert_eq!(args(r#"["SET","k","\u00fc😀"]"#), ["SET", "k", "ü😀"]);
    }

    #[test]
    fn wrong_shapes_are_bad_requests() {
        for body in [
            "",
            "{",
            "{}",
            "[]",
            "[1]",
            "[null]",
            r#"["GET",null]"#,
            r#"["GET",{"a":1}]"#,
            r#"["GET",["k"]]"#,
            r#""GET""#,
            r#"["GET","\ud800"]"#,
        ] {
            let err = parse_command(body.as_bytes()).unwrap_err();
            assert!(
                matches!(err, GatewayError::BadRequest(_)),
                "{body}: {err:?}"
            );
        }
    }

    #[test]
    fn batches_are_arrays_of_commands() {
        let batch = parse_batch(br#"[["SET","k",1],["get","k"]]"#).unwrap();
        assert_eq!(batch.len(), 2);
        assert_eq!(batch[1], vec![b"get".to_vec(), b"k".to_vec()]);
        for body in [
            "[]",
            "[[]]",
            r#"["GET"]"#,
            r#"[["GET"],"x"]"#,
            r#"[["GET",null]]"#,
            "{}",
            "[[",
        ] {
            assert!(
                matches!(
                    parse_batch(body.as_bytes()),
                    Err(GatewayError::BadRequest(_))
                ),
                "{body}"
            );
        }
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::collection::{btree_map, vec};
    use proptest::prelude::*;
    use serde_json::Value;

    /// Every kind of JSON value; strings include control characters, NUL, CR/LF and non-ASCII.
    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("JSON has no NaN or infinity", |f| f.is_finite())
                .prop_map(Value::from),
            any::<String>().prop_map(Value::String),
            "[\\x00-\\x1f\"\\\\\r\n]{0,6}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 32, 5, |inner| {
            prop_oneof![
                vec(inner.clone(), 0..5).prop_map(Value::Array),
                btree_map(".{0,4}", inner, 0..3)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// A command array: a string name, then mostly acceptable arguments.
    fn arb_command() -> impl Strategy<Value = Value> {
        (any::<String>(), vec(arb_json(), 0..6)).prop_map(|(name, mut args)| {
            args.insert(0, Value::String(name));
            Value::Array(args)
        })
    }

    /// The arguments a well-behaved parser makes of `value`, or `None` when it must refuse it.
    fn expected_command(value: &Value) -> Option<Vec<Vec<u8>>> {
        let items = value.as_array()?;
        if !items.first()?.is_string() {
            return None;
        }
        items
            .iter()
            .map(|item| match item {
                Value::String(s) => Some(s.as_bytes().to_vec()),
                Value::Number(n) => Some(n.to_string().into_bytes()),
                Value::Bool(b) => Some(b.to_string().into_bytes()),
                _ => None,
            })
            .collect()
    }

    fn expected_batch(value: &Value) -> Option<Vec<Vec<Vec<u8>>>> {
        let items = value.as_array().filter(|items| !items.is_empty())?;
        items.iter().map(expected_command).collect()
    }

    /// Text that is nearly JSON: brackets, quotes, escapes, digits and letters in any order.
    fn near_json() -> impl Strategy<Value = String> {
        "[\\[\\]{}\",:0-9a-zA-Z.eE+\\-\\\\u \\x00\u{fc}\u{1F600}]{0,48}"
    }

    fn is_bad_request<T>(outcome: &Result<T, GatewayError>) -> bool {
        matches!(outcome, Ok(_) | Err(GatewayError::BadRequest(_)))
    }

    proptest! {
        #![proptest_config(crate::wire_tests::config())]

        #[test]
        fn arbitrary_bytes_are_parsed_or_refused_as_bad_requests(
            body in vec(any::<u8>(), 0..128),
        ) {
            prop_assert!(is_bad_request(&parse_command(&body)));
            prop_assert!(is_bad_request(&parse_batch(&body)));
        }

        #[test]
        fn nearly_json_text_is_parsed_or_refused_as_bad_requests(body in near_json()) {
            prop_assert!(is_bad_request(&parse_command(body.as_bytes())));
            prop_assert!(is_bad_request(&parse_batch(body.as_bytes())));
        }

        #[test]
        fn any_json_command_gives_exactly_its_scalars(value in prop_oneof![arb_command(), arb_json()],
                                                      pretty in any::<bool>()) {
            let body = if pretty {
                serde_json::to_vec_pretty(&value).unwrap()
            } else {
                serde_json::to_vec(&value).unwrap()
            };
            match (parse_command(&body), expected_command(&value)) {
                (Ok(args), Some(expected)) => prop_assert_eq!(args, expected),
                (Err(GatewayError::BadRequest(_)), None) => {}
                (outcome, expected) => {
                    prop_assert!(false, "{value}: parsed {outcome:?}, expected {expected:?}")
                }
            }
        }

        #[test]
        fn any_json_batch_gives_exactly_its_commands(
            value in prop_oneof![vec(arb_command(), 0..4).prop_map(Value::Array), arb_json()],
        ) {
            let body = serde_json::to_vec(&value).unwrap();
            match (parse_batch(&body), expected_batch(&value)) {
                (Ok(commands), Some(expected)) => prop_assert_eq!(commands, expected),
                (Err(GatewayError::BadRequest(_)), None) => {}
                (outcome, expected) => {
                    prop_assert!(false, "{value}: parsed {outcome:?}, expected {expected:?}")
                }
            }
        }

        #[test]
        fn damaged_commands_never_panic(value in arb_command(), cut in any::<prop::sample::Index>(),
                                        byte in any::<u8>()) {
            let mut body = serde_json::to_vec(&value).unwrap();
            let at = cut.index(body.len() + 1);
            let mut inserted = body.clone();
            inserted.insert(at, byte);
            body.truncate(at);
            for body in [body, inserted] {
                prop_assert!(is_bad_request(&parse_command(&body)));
                prop_assert!(is_bad_request(&parse_batch(&body)));
            }
        }
    }
}
