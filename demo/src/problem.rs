//! JSON error responses (RFC 9457 problem details): the one conversion from errors to HTTP.
//!
//! Every error path of the Worker answers `application/problem+json` with `type`, `title`, `status`,
//! `detail` and, where useful, extension members (`errors` for configuration, `decision` for a 429 ...).
//! `type` is `about:blank` unless a route defines a more specific one, so `title` is the status phrase.

use serde_json::{Map, Value, json};

use super::reply::Reply;
use redge::Error;

/// A problem-details response waiting to be sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// The HTTP status.
    pub status: u16,
    /// A short, stable summary of the kind of problem.
    pub title: String,
    /// What happened this time, and what to do about it.
    pub detail: String,
    /// Extra members of the JSON object.
    pub extensions: Map<String, Value>,
    /// Extra response headers (`Allow`, `Retry-After` ...).
    pub headers: Vec<(String, String)>,
}

impl Problem {
    /// A problem with the standard title of `status`.
    pub fn new(status: u16, detail: impl Into<String>) -> Problem {
        Problem {
            status,
            title: title_of(status).to_owned(),
            detail: detail.into(),
            extensions: Map::new(),
            headers: Vec::new(),
        }
    }

    /// 400: the request is malformed.
    pub fn bad_request(detail: impl Into<String>) -> Problem {
        Problem::new(400, detail)
    }

    /// 404 for a path that no route (and no static file) matches.
    pub fn not_found(path: &str) -> Problem {
        let shown: String = path.chars().take(200).collect();
        Problem::new(
            404,
            format!("no route for {shown}; GET /api lists the routes"),
        )
    }

    /// 405 with the `Allow` header.
    pub fn method_not_allowed(method: &str, path: &str, allow: &str) -> Problem {
        let shown: String = path.chars().take(200).collect();
        Problem::new(
            405,
            format!("{method} is not allowed on {shown}; allowed: {allow}"),
        )
        .header("allow", allow)
    }

    /// Adds an extension member.
    pub fn with(mut self, name: &str, value: Value) -> Problem {
        self.extensions.insert(name.to_owned(), value);
        self
    }

    /// Adds a response header.
    pub fn header(mut self, name: &str, value: &str) -> Problem {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The JSON body. Extension members never overwrite the standard ones.
    pub fn body(&self) -> Value {
        let mut object = self.extensions.clone();
        object.insert("type".into(), json!("about:blank"));
        object.insert("title".into(), json!(self.title));
        object.insert("status".into(), json!(self.status));
        object.insert("detail".into(), json!(self.detail));
        Value::Object(object)
    }
}

impl From<Error> for Problem {
    /// Redis unreachable or too slow: 503 (try again later). A reply we cannot read: 502. Anything else
    /// the Worker did wrong: 500. The message says which, without the token or the URL.
    fn from(error: Error) -> Problem {
        let status = error.status();
        let problem = Problem::new(status, error.to_string());
        if status == 503 {
            problem.header("retry-after", "1")
        } else {
            problem
        }
    }
}

/// The reason phrase of the statuses the Worker uses.
pub fn title_of(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Error",
    }
}

impl Problem {
    /// The HTTP response.
    pub fn into_reply(self) -> Reply {
        let mut reply = Reply::text(
            self.status,
            "application/problem+json",
            self.body().to_string(),
        );
        reply.set("cache-control", "no-store");
        for (name, value) in &self.headers {
            reply.set(name, value);
        }
        reply
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_reply_is_problem_json_never_cached_with_its_headers() {
        let reply = Problem::new(503, "Redis is down")
            .header("Retry-After", "1")
            .header("cache-control", "private")
            .into_reply();
        assert_eq!(reply.status(), 503);
        assert_eq!(
            reply.header("content-type"),
            Some("application/problem+json")
        );
        assert_eq!(reply.header("retry-after"), Some("1"));
        assert_eq!(
            reply.header("cache-control"),
            Some("private"),
            "the problem's own wins"
        );
        let body: Value = serde_json::from_str(reply.body().unwrap()).unwrap();
        assert_eq!(body["detail"], "Redis is down");
    }

    #[test]
    fn the_body_has_the_standard_members_and_extensions() {
        let problem = Problem::new(429, "slow down")
            .with("decision", json!({"allowed": false}))
            .with("status", json!("overwritten?"));
        let body = problem.body();
        assert_eq!(body["type"], "about:blank");
        assert_eq!(body["title"], "Too Many Requests");
        assert_eq!(body["status"], 429);
        assert_eq!(body["detail"], "slow down");
        assert_eq!(body["decision"]["allowed"], false);
    }

    #[test]
    fn errors_map_to_statuses() {
        assert_eq!(Problem::from(Error::Timeout(1000)).status, 503);
        assert_eq!(Problem::from(Error::Transport("reset".into())).status, 503);
        assert_eq!(
            Problem::from(Error::Http {
                status: 401,
                message: String::new()
            })
            .status,
            503
        );
        assert_eq!(Problem::from(Error::Protocol("x".into())).status, 502);
        assert_eq!(Problem::from(Error::NotSent).status, 500);
        let unavailable = Problem::from(Error::Timeout(5));
        assert!(
            unavailable
                .headers
                .contains(&("retry-after".into(), "1".into()))
        );
    }

    #[test]
    fn long_paths_are_cut_in_the_detail() {
        let path = "/x".repeat(1000);
        assert!(Problem::not_found(&path).detail.len() < 300);
        let p = Problem::method_not_allowed("PUT", "/api/health", "GET, HEAD, OPTIONS");
        assert_eq!(p.status, 405);
        assert_eq!(
            p.headers,
            vec![("allow".into(), "GET, HEAD, OPTIONS".into())]
        );
    }
}
