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
