//! [`Reply`]: a response built in Rust and handed to the runtime in one piece.
//!
//! Every header set on a runtime `Response` is a call into JavaScript with two strings decoded on the
//! way; a problem response with CORS and `Server-Timing` needs about ten of them. A `Reply` keeps its
//! status, headers and body in Rust until the very end, where the dispatcher turns the headers into one
//! JSON text (one string crossing, one `JSON.parse`) and the body into one string. Pure: tested natively.

use serde::Serialize;

/// A response: status, headers (names in lowercase, at most one of each) and an optional text body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Option<String>,
}

impl Reply {
    /// `body` as JSON (`Content-Type: application/json`).
    ///
    /// # Errors
    /// When `body` cannot be serialized (a map with non-string keys, for example).
    pub fn json(status: u16, body: &impl Serialize) -> Result<Reply, serde_json::Error> {
        let text = serde_json::to_string(body)?;
        Ok(Reply::text(status, "application/json", text))
    }

    /// `body` with its content type.
    pub fn text(status: u16, content_type: &str, body: String) -> Reply {
        let mut reply = Reply::empty(status);
        reply.set("content-type", content_type);
        reply.body = Some(body);
        reply
    }

    /// No body, no headers.
    pub fn empty(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: None,
        }
    }

    /// The status.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// Sets header `name` (any case) to `value`, replacing what it had.
    pub fn set(&mut self, name: &str, value: &str) {
        let name = name.to_ascii_lowercase();
        match self.headers.iter_mut().find(|(n, _)| *n == name) {
            Some((_, v)) => value.clone_into(v),
            None => self.headers.push((name, value.to_owned())),
        }
    }

    /// The value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The headers, in the order they were first set.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// The body.
    pub fn body(&self) -> Option<&str> {
        self.body.as_deref()
    }

    /// The headers as a JSON array of `[name, value]` pairs: what the `Headers` constructor takes.
    pub fn headers_json(&self) -> String {
        // Strings always serialize.
        serde_json::to_string(&self.headers).unwrap_or_else(|_| "[]".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_replies_carry_their_type_and_body() {
        let reply = Reply::json(201, &json!({"ok": true})).unwrap();
        assert_eq!(reply.status(), 201);
        assert_eq!(reply.header("Content-Type"), Some("application/json"));
        assert_eq!(reply.body(), Some(r#"{"ok":true}"#));
        let bad: std::collections::HashMap<(u8, u8), u8> = [((1, 2), 3)].into();
        assert!(Reply::json(200, &bad).is_err());
    }

    #[test]
    fn setting_a_header_again_replaces_it_whatever_the_case() {
        let mut reply = Reply::empty(204);
        reply.set("Vary", "Origin");
        reply.set("cache-control", "no-store");
        reply.set("VARY", "Origin, Cookie");
        assert_eq!(
            reply.headers(),
            [
                ("vary".to_owned(), "Origin, Cookie".to_owned()),
                ("cache-control".to_owned(), "no-store".to_owned()),
            ]
        );
        assert_eq!((reply.status(), reply.body()), (204, None));
    }

    #[test]
    fn headers_become_one_json_text_with_every_byte_escaped() {
        let mut reply = Reply::text(200, "text/plain", "hi".into());
        reply.set("x-odd", "quote \" backslash \\ and ünïcode");
        let parsed: Vec<(String, String)> = serde_json::from_str(&reply.headers_json()).unwrap();
        assert_eq!(parsed, reply.headers());
        assert_eq!(Reply::empty(200).headers_json(), "[]");
    }
}
