//! `POST /`: one command; also the execution shared with the path form.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::response::Response;

use crate::commands::loggable;
use crate::error::GatewayError;
use crate::format::Format;
use crate::observe::{Logged, tag};
use crate::policy::{Access, command_name};
use crate::reply::from_redis;
use crate::request::parse_command;
use crate::state::AppState;

/// Takes the request whole and reads what it needs in place: the `HeaderMap` extractor would copy every
/// header of every request.
pub async fn single(State(state): State<AppState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let access = access_of(&parts);
    let parsed = async {
        let format = Format::from_headers(&parts.headers)?;
        let bytes = read_body(body, &parts.headers, &state).await?;
        Ok::<_, GatewayError>((format, parse_command(&bytes)?))
    }
    .await;
    match parsed {
        Ok((format, args)) => execute(&state, access, format, args, "command").await,
        Err(e) => rejected(e, "command"),
    }
}

/// Checks, rewrites and runs one parsed command, and writes its reply in `format`.
pub async fn execute(
    state: &AppState,
    access: Access,
    format: Format,
    mut args: Vec<Vec<u8>>,
    route: &'static str,
) -> Response {
    let name = command_name(&args);
    let outcome = async {
        state.check(&name, &args, access)?;
        let fixup = state.scripts.rewrite(&name, &mut args);
        let value = state.backend.single(&args).await?;
        Ok(fixup.apply(from_redis(value)))
    }
    .await;
    let logged = Logged {
        route,
        command: loggable(&name),
        commands: 1,
    };
    tag(format.single(outcome), logged)
}

/// The access recorded by the auth middleware ([`crate::auth::admit`]), which runs before every command
/// route; read-only if it is somehow missing, the safe side.
pub fn access_of(parts: &axum::http::request::Parts) -> Access {
    parts
        .extensions
        .get::<Access>()
        .copied()
        .unwrap_or(Access::ReadOnly)
}

/// The response to a request refused before its command was known.
pub fn rejected(e: GatewayError, route: &'static str) -> Response {
    use axum::response::IntoResponse;
    let logged = Logged {
        route,
        command: "-",
        commands: 0,
    };
    tag(e.into_response(), logged)
}

/// How many times `--max-body-bytes` an oversized upload is read (and discarded) for, so that its 413
/// reaches the client.
///
/// Clients such as Node's `fetch` write the whole body before they read the response. Answering and
/// closing the connection while such a client still writes makes the kernel reset the connection,
/// and the client reports a network error instead of the 413 and its JSON error. Reading the rest of
/// the body first (bounded by this factor and by `--body-timeout-ms`) lets the answer arrive; past
/// the bound the 413 is sent at once and the connection closed.
pub const DISCARD_FACTOR: u64 = 4;

/// Reads the whole body, refusing more than `--max-body-bytes` with 413, and answering 408 when it has
/// not arrived within `--body-timeout-ms`: the request holds a concurrency slot while it reads, and a
/// client that stalls (or vanishes without closing its connection) must not hold it for ever.
///
/// An oversized body is read to its end and discarded when it is at most [`DISCARD_FACTOR`] times the
/// limit, so that clients that send the whole body before reading receive the 413. A body announced
/// larger than that, or one sent with `Expect: 100-continue` (the client waits for the answer before
/// it sends: curl does this for large bodies), is answered at once without reading it.
pub async fn read_body(
    body: Body,
    headers: &HeaderMap,
    state: &AppState,
) -> Result<axum::body::Bytes, GatewayError> {
    use axum::body::HttpBody as _;
    let limit = state.max_body_bytes as u64;
    let discard_limit = limit.saturating_mul(DISCARD_FACTOR);
    let announced = body.size_hint().lower();
    if announced > limit && (announced > discard_limit || expects_continue(headers)) {
        return Err(GatewayError::TooLarge);
    }
    let read = tokio::time::timeout(state.body_timeout, collect(body, limit, discard_limit));
    let Ok(read) = read.await else {
        return Err(GatewayError::BodyTimeout(state.body_timeout.as_millis()));
    };
    read
}

/// Whether the request asks for `100 Continue` before it sends its body.
fn expects_continue(headers: &HeaderMap) -> bool {
    headers
        .get(axum::http::header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"))
}

/// Collects at most `limit` bytes; past it, reads on and discards up to `discard_limit` bytes in all,
/// then reports [`GatewayError::TooLarge`].
async fn collect(
    body: Body,
    limit: u64,
    discard_limit: u64,
) -> Result<axum::body::Bytes, GatewayError> {
    use http_body_util::BodyExt as _;
    let mut body = body;
    let mut kept: Vec<axum::body::Bytes> = Vec::new();
    let mut seen: u64 = 0;
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|e| GatewayError::BadRequest(format!("could not read the body: {e}")))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        seen = seen.saturating_add(data.len() as u64);
        if seen > discard_limit {
            break;
        }
        if seen <= limit {
            kept.push(data);
        } else {
            kept.clear();
        }
    }
    if seen > limit {
        return Err(GatewayError::TooLarge);
    }
    Ok(match kept.len() {
        0 => axum::body::Bytes::new(),
        1 => kept.pop().unwrap_or_default(),
        _ => kept.concat().into(),
    })
}
