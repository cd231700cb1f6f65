//! How a reply is written: JSON (optionally base64) or raw RESP2 bytes.

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use redge::client::Reply;
use redge::client::protocol;

use crate::error::GatewayError;

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
            .get(protocol::ENCODING_HEADER)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"base64"));
        match headers.get("upstash-response-format").map(|v| v.as_bytes()) {
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
                json(StatusCode::OK, protocol::result_body(&reply, base64))
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
            Format::Json { base64 } => {
                let entries: Vec<Result<Reply, String>> = entries
                    .into_iter()
                    .map(|entry| match entry {
                        Reply::Error(text) => Err(text),
                        other => Ok(other),
                    })
                    .collect();
                json(StatusCode::OK, protocol::batch_body(&entries, base64))
            }
            // One RESP2 array holding every entry; failed entries are RESP2 errors, as inside EXEC.
            Format::Resp2 => resp2(StatusCode::OK, &Reply::Array(entries)),
        }
    }
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
    fn resp2_and_base64_do_not_mix() {
        let mut headers = HeaderMap::new();
        headers.insert("upstash-response-format", "RESP2".parse().unwrap());
        assert_eq!(Format::from_headers(&headers).unwrap(), Format::Resp2);
        headers.insert("upstash-encoding", "base64".parse().unwrap());
        assert!(Format::from_headers(&headers).is_err());
    }
}
