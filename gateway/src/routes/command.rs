//! `POST /`: one command; also the execution shared with the path form.

use axum::body::Body;
use axum::extract::{Request, State};
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
        let bytes = read_body(body, &state).await?;
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
        state.policy.check(&name, &args, access)?;
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

/// Reads the whole body, refusing more than `--max-body-bytes` with 413 (at once when the Content-Length
/// says so), and answering 408 when it has
/// not arrived within `--body-timeout-ms`: the request holds a concurrency slot while it reads, and a
/// client that stalls (or vanishes without closing its connection) must not hold it for ever.
pub async fn read_body(body: Body, state: &AppState) -> Result<axum::body::Bytes, GatewayError> {
    use axum::body::HttpBody as _;
    let limit = state.max_body_bytes;
    // A Content-Length over the limit is refused before a byte of the body is read: the client learns
    // at once (curl waits on `Expect: 100-continue` for exactly this) instead of after sending 10 MiB.
    if body.size_hint().lower() > limit as u64 {
        return Err(GatewayError::TooLarge);
    }
    let read = tokio::time::timeout(state.body_timeout, axum::body::to_bytes(body, limit));
    let Ok(read) = read.await else {
        return Err(GatewayError::BodyTimeout(state.body_timeout.as_millis()));
    };
    read.map_err(|e| {
        let too_large = std::error::Error::source(&e)
            .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
        if too_large {
            GatewayError::TooLarge
        } else {
            GatewayError::BadRequest(format!("could not read the body: {e}"))
        }
    })
}
