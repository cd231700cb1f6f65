//! `POST /pipeline`: commands in order on one of the shared connections, not atomic, one entry each;
//! and the checks shared with `/multi-exec`.

use axum::Extension;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use redge::client::Reply;
use redis::Value;

use super::command::{read_body, rejected};
use crate::error::GatewayError;
use crate::format::Format;
use crate::observe::{Logged, tag};
use crate::policy::{Access, command_name};
use crate::reply::from_redis;
use crate::request::parse_batch;
use crate::scripts::Fixup;
use crate::state::AppState;

/// A checked batch, ready to send.
pub struct Batch {
    pub format: Format,
    pub commands: Vec<Vec<Vec<u8>>>,
    pub fixups: Vec<Fixup>,
}

/// Parses and checks a batch. A refused command (or a write from a read-only token) refuses the whole
/// request with 400 before anything runs: running the other commands would leave a half-applied batch
/// the client did not ask for.
pub async fn prepare(
    state: &AppState,
    access: Access,
    headers: &HeaderMap,
    body: Body,
) -> Result<Batch, GatewayError> {
    let format = Format::from_headers(headers)?;
    let bytes = read_body(body, headers, state).await?;
    let mut commands = parse_batch(&bytes)?;
    let mut fixups = Vec::with_capacity(commands.len());
    for args in &mut commands {
        let name = command_name(args);
        state.check(&name, args, access)?;
        fixups.push(state.scripts.rewrite(&name, args));
    }
    Ok(Batch {
        format,
        commands,
        fixups,
    })
}

/// One reply entry per command, with script fixes applied.
pub fn entries(values: Vec<Value>, fixups: &[Fixup]) -> Vec<Reply> {
    values
        .into_iter()
        .zip(fixups)
        .map(|(value, fixup)| fixup.apply(from_redis(value)))
        .collect()
}

pub async fn pipeline(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let batch = match prepare(&state, access, &headers, body).await {
        Ok(batch) => batch,
        Err(e) => return rejected(e, "pipeline"),
    };
    let logged = Logged {
        route: "pipeline",
        command: "batch",
        commands: batch.commands.len(),
    };
    let response = match state.backend.pipeline(&batch.commands).await {
        Ok(values) => batch.format.batch(entries(values, &batch.fixups)),
        Err(e) => batch.format.single(Err(e)),
    };
    tag(response, logged)
}
