//! JSON error responses (RFC 9457 problem details).

use serde_json::json;
use worker::Response;

/// A problem-details response with the given status.
pub fn problem(status: u16, title: &str, detail: &str) -> worker::Result<Response> {
    problem_with(status, title, detail, serde_json::Map::new())
}

/// A problem-details response with extension members (they never replace the standard ones).
pub fn problem_with(
    status: u16,
    title: &str,
    detail: &str,
    extensions: serde_json::Map<String, serde_json::Value>,
) -> worker::Result<Response> {
    let mut body = extensions;
    for (name, value) in [
        ("type", json!("about:blank")),
        ("title", json!(title)),
        ("status", json!(status)),
        ("detail", json!(detail)),
    ] {
        body.insert(name.to_owned(), value);
    }
    let mut response = Response::from_json(&body)?.with_status(status);
    let headers = response.headers_mut();
    headers.set("content-type", "application/problem+json")?;
    headers.set("cache-control", "no-store")?;
    Ok(response)
}

/// 404 for a path no route or static file matches.
pub fn not_found(path: String) -> worker::Result<Response> {
    let shown: String = path.chars().take(200).collect();
    problem(404, "Not Found", &format!("no route for {shown}"))
}
