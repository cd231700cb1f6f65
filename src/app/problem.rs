//! JSON error responses (RFC 9457 problem details).

use serde_json::json;
use worker::Response;

/// A problem-details response with the given status.
pub fn problem(status: u16, title: &str, detail: &str) -> worker::Result<Response> {
    problem_with(status, title, detail, serde_json::Map::new())
}

/// A problem-details response with extension members (RFC 9457 section 3.2).
pub fn problem_with(
    status: u16,
    title: &str,
    detail: &str,
    members: serde_json::Map<String, serde_json::Value>,
) -> worker::Result<Response> {
    let mut body =
        json!({ "type": "about:blank", "title": title, "status": status, "detail": detail });
    if let Some(object) = body.as_object_mut() {
        object.extend(members);
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
