//! How a reply is written: JSON (optionally base64) or raw RESP2 bytes.

use axum::http::{HeaderMap, HeaderName, StatusCode, header};
use axum::response::{IntoResponse, Response};
use redge::client::Reply;
use redge::client::protocol;

use crate::error::GatewayError;

// Header names built at compile time: a lookup by `&str` parses and checks the name again on every
// request.
/// `Upstash-Encoding`.
pub const ENCODING: HeaderName = HeaderName::from_static(protocol::ENCODING_HEADER);
/// `Upstash-Response-Format`.
pub const RESPONSE_FORMAT: HeaderName = HeaderName::from_static("upstash-response-format");
/// `upstash-sync-token`.
pub const SYNC_TOKEN: HeaderName = HeaderName::from_static(protocol::SYNC_TOKEN_HEADER);

/// The reply format a request asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `{"result": ...}`; `base64` encodes every string (`Upstash-Encoding: base64`).
    Json {
        /// Encode strings in base64.
        base64: bool,
    },
    /// `Upstash-Response-Format: resp2`: Redis's reply as RESP2 bytes, `application/octet-stream`.
    Resp2,
}

impl Format {
    /// Reads `Upstash-Encoding` and `Upstash-Response-Format`.
    ///
    /// # Errors
    /// 400 for an unknown response format, or RESP2 combined with base64 (the bytes are already raw).
    pub fn from_headers(headers: &HeaderMap) -> Result<Format, GatewayError> {
        let base64 = headers
            .get(&ENCODING)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"base64"));
        match headers.get(&RESPONSE_FORMAT).map(|v| v.as_bytes()) {
            None => Ok(Format::Json { base64 }),
            Some(v) if v.eq_ignore_ascii_case(b"json") => Ok(Format::Json { base64 }),
            Some(v) if v.eq_ignore_ascii_case(b"resp2") && base64 => Err(GatewayError::BadRequest(
                "Upstash-Response-Format: resp2 cannot be combined with Upstash-Encoding: base64"
                    .into(),
            )),
            Some(v) if v.eq_ignore_ascii_case(b"resp2") => Ok(Format::Resp2),
            Some(_) => Err(GatewayError::BadRequest(
                "Upstash-Response-Format must be json or resp2".into(),
            )),
        }
    }

    /// The response to one command: 200 with the value, or 400 with Redis's error.
    pub fn single(self, outcome: Result<Reply, GatewayError>) -> Response {
        match (self, outcome) {
            (Format::Json { base64 }, Ok(reply)) => {
                json(StatusCode::OK, result_body(&reply, base64))
            }
            (Format::Resp2, Ok(reply)) => resp2(StatusCode::OK, &reply),
            (Format::Resp2, Err(GatewayError::Redis(text))) => {
                resp2(StatusCode::BAD_REQUEST, &Reply::Error(text))
            }
            (_, Err(e)) => e.into_response(),
        }
    }

    /// The 200 response to a batch: one entry per command (`Reply::Error` for a failed one).
    pub fn batch(self, entries: Vec<Reply>) -> Response {
        match self {
            Format::Json { base64 } => json(StatusCode::OK, batch_body(&entries, base64)),
            // One RESP2 array holding every entry; failed entries are RESP2 errors, as inside EXEC.
            Format::Resp2 => resp2(StatusCode::OK, &Reply::Array(entries)),
        }
    }
}

/// `{"result": ...}`, written straight into one buffer: the same bytes as
/// [`protocol::result_body`], without building a `serde_json::Value` tree first.
pub fn result_body(reply: &Reply, base64: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + encoded_len(reply, base64));
    out.extend_from_slice(b"{\"result\":");
    write_json(reply, base64, true, &mut out);
    out.push(b'}');
    out
}

/// The body of `/pipeline` and `/multi-exec`: one `{"result": ...}` or `{"error": "..."}` per command
/// (an error entry is a failed command); the same bytes as [`protocol::batch_body`].
pub fn batch_body(entries: &[Reply], base64: bool) -> Vec<u8> {
    let size: usize = entries.iter().map(|e| 16 + encoded_len(e, base64)).sum();
    let mut out = Vec::with_capacity(2 + size);
    out.push(b'[');
    for (i, entry) in entries.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        match entry {
            Reply::Error(text) => write_error(text, &mut out),
            other => {
                out.extend_from_slice(b"{\"result\":");
                write_json(other, base64, false, &mut out);
                out.push(b'}');
            }
        }
    }
    out.push(b']');
    out
}

/// A guess of the encoded size, to allocate the buffer once in the common cases.
fn encoded_len(reply: &Reply, base64: bool) -> usize {
    match reply {
        Reply::Data(d) if base64 => d.len().div_ceil(3) * 4 + 2,
        Reply::Data(d) => d.len() + 2,
        Reply::Status(s) | Reply::Error(s) => s.len() * 4 / 3 + 16,
        Reply::Array(items) => {
            items
                .iter()
                .map(|i| 1 + encoded_len(i, base64))
                .sum::<usize>()
                + 2
        }
        Reply::Nil | Reply::Int(_) => 20,
    }
}

/// One reply value as JSON, following [`protocol::encode_value`]: strings in base64 when asked
/// (except a top-level `OK` status), otherwise as text with invalid UTF-8 replaced.
fn write_json(reply: &Reply, base64: bool, top_level: bool, out: &mut Vec<u8>) {
    match reply {
        Reply::Nil => out.extend_from_slice(b"null"),
        Reply::Int(n) => {
            use std::io::Write as _;
            let _ = write!(out, "{n}");
        }
        Reply::Status(s) if top_level && s == "OK" => out.extend_from_slice(b"\"OK\""),
        Reply::Status(s) => write_text(s.as_bytes(), base64, out),
        Reply::Data(d) => write_text(d, base64, out),
        Reply::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json(item, base64, false, out);
            }
            out.push(b']');
        }
        Reply::Error(text) => write_error(text, out),
    }
}

/// `{"error":"<text>"}`.
fn write_error(text: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"error\":");
    write_string(text, out);
    out.push(b'}');
}

/// Bytes as a JSON string: base64 (no escaping needed), or text with invalid UTF-8 replaced.
fn write_text(bytes: &[u8], base64: bool, out: &mut Vec<u8>) {
    use base64::Engine as _;
    if base64 {
        let engine = &base64::engine::general_purpose::STANDARD;
        let start = out.len() + 1;
        out.resize(start + bytes.len().div_ceil(3) * 4 + 1, b'"');
        let written = engine
            .encode_slice(bytes, &mut out[start..])
            .unwrap_or_default();
        out.truncate(start + written);
        out.push(b'"');
    } else {
        write_string(&String::from_utf8_lossy(bytes), out);
    }
}

/// A JSON string with serde_json's escaping.
fn write_string(text: &str, out: &mut Vec<u8>) {
    // Writing into a Vec cannot fail, and a &str always serialises.
    let _ = serde_json::to_writer(&mut *out, text);
}

/// A JSON response.
pub fn json(status: StatusCode, body: Vec<u8>) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn resp2(status: StatusCode, reply: &Reply) -> Response {
    let mut out = Vec::with_capacity(64);
    write_resp2(reply, &mut out);
    (
        status,
        [(header::CONTENT_TYPE, "application/octet-stream")],
        out,
    )
        .into_response()
}

/// Appends a reply in RESP2 (the bytes redis-server itself would send).
pub fn write_resp2(reply: &Reply, out: &mut Vec<u8>) {
    match reply {
        Reply::Nil => out.extend_from_slice(b"$-1\r\n"),
        Reply::Int(n) => out.extend_from_slice(format!(":{n}\r\n").as_bytes()),
        Reply::Data(bytes) => {
            out.extend_from_slice(format!("${}\r\n", bytes.len()).as_bytes());
            out.extend_from_slice(bytes);
            out.extend_from_slice(b"\r\n");
        }
        Reply::Status(s) => line(b'+', s, out),
        Reply::Error(s) => line(b'-', s, out),
        Reply::Array(items) => {
            out.extend_from_slice(format!("*{}\r\n", items.len()).as_bytes());
            for item in items {
                write_resp2(item, out);
            }
        }
    }
}

/// A simple string or error line; CR and LF cannot occur inside one, so they become spaces.
fn line(prefix: u8, text: &str, out: &mut Vec<u8>) {
    out.push(prefix);
    out.extend(
        text.bytes()
            .map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
    );
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resp2_bytes_match_redis() {
        let reply = Reply::Array(vec![
            Reply::Status("OK".into()),
            Reply::Int(-3),
            Reply::Data(b"a\r\nb".to_vec()),
            Reply::Nil,
            Reply::Error("ERR x".into()),
            Reply::Array(vec![]),
        ]);
        let mut out = Vec::new();
        write_resp2(&reply, &mut out);
        assert_eq!(
            out,
            b"*6\r\n+OK\r\n:-3\r\n$4\r\na\r\nb\r\n$-1\r\n-ERR x\r\n*0\r\n"
        );
    }

    #[test]
    fn json_bodies_match_the_protocol_encoder() {
        let reply = Reply::Array(vec![
            Reply::Status("OK".into()),
            Reply::Int(i64::MIN),
            Reply::Data(b"a\"\\\x01\xff".to_vec()),
            Reply::Nil,
            Reply::Error("ERR \"x\"".into()),
            Reply::Array(vec![]),
        ]);
        for base64 in [false, true] {
            for r in [&reply, &Reply::Status("OK".into()), &Reply::Data(vec![])] {
                assert_eq!(
                    result_body(r, base64),
                    protocol::result_body(r, base64),
                    "{r:?}"
                );
            }
        }
    }

    #[test]
    fn resp2_and_base64_do_not_mix() {
        let mut headers = HeaderMap::new();
        headers.insert("upstash-response-format", "RESP2".parse().unwrap());
        assert_eq!(Format::from_headers(&headers).unwrap(), Format::Resp2);
        headers.insert("upstash-encoding", "base64".parse().unwrap());
        assert!(Format::from_headers(&headers).is_err());
    }
}
