//! The path form: `/<cmd>/<arg>/...` with GET, HEAD, POST or PUT.
//!
//! Each segment is percent-decoded on its own, so `%2F` is a slash inside an argument. A non-empty POST
//! or PUT body becomes the last argument as raw bytes (not JSON): the only way to send arbitrary bytes.
//! Query pairs `k=v` add `k` and `v` after the body, in order; `_token` is authentication and is skipped.
//! A single trailing slash is ignored (`/get/k/` is `GET k`).

use axum::extract::{Request, State};
use axum::http::Method;
use axum::response::Response;

use super::command::{access_of, execute, read_body, rejected};
use crate::error::GatewayError;
use crate::format::Format;
use crate::state::AppState;

/// Takes the request whole, as [`super::command::single`] does, instead of copying method, URI and
/// headers out of it.
pub async fn path_form(State(state): State<AppState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let access = access_of(&parts);
    let (method, uri) = (&parts.method, &parts.uri);
    let parsed = async {
        let format = Format::from_headers(&parts.headers)?;
        let mut args = path_args(uri.path())?;
        if method == Method::POST || method == Method::PUT {
            let bytes = read_body(body, &parts.headers, &state).await?;
            if !bytes.is_empty() {
                args.push(Vec::from(bytes));
            }
        }
        if let Some(query) = uri.query() {
            args.extend(query_args(query));
        }
        Ok::<_, GatewayError>((format, args))
    }
    .await;
    match parsed {
        Ok((format, args)) => execute(&state, access, format, args, "path").await,
        Err(e) => rejected(e, "path"),
    }
}

/// The decoded segments of the path; an empty command name is 404.
fn path_args(path: &str) -> Result<Vec<Vec<u8>>, GatewayError> {
    let path = path.strip_prefix('/').unwrap_or(path);
    let path = path.strip_suffix('/').unwrap_or(path);
    let args: Vec<Vec<u8>> = path
        .split('/')
        .map(|s| percent_decode(s.as_bytes()))
        .collect();
    if args[0].is_empty() {
        return Err(GatewayError::NotFound);
    }
    Ok(args)
}

/// `k=v` pairs as `k`, `v`; a bare `k` as `k`; `_token` skipped.
fn query_args(query: &str) -> Vec<Vec<u8>> {
    let mut args = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = match pair.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (pair, None),
        };
        if key == "_token" {
            continue;
        }
        args.push(percent_decode(key.as_bytes()));
        if let Some(value) = value {
            args.push(percent_decode(value.as_bytes()));
        }
    }
    args
}

/// Decodes `%XX` escapes; a `%` not followed by two hex digits stays as it is. `+` stays `+`: path and
/// query are decoded alike (RFC 3986), not as HTML forms.
pub fn percent_decode(input: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] == b'%'
            && let (Some(hi), Some(lo)) = (
                input.get(i + 1).copied().and_then(hex),
                input.get(i + 2).copied().and_then(hex),
            )
        {
            out.push(hi << 4 | lo);
            i += 3;
            continue;
        }
        out.push(input[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_decode_separately() {
        let args = path_args("/SET/a%2Fb/%F0%9F%98%80%ff/").unwrap();
        assert_eq!(
            args,
            vec![
                b"SET".to_vec(),
                b"a/b".to_vec(),
                vec![0xf0, 0x9f, 0x98, 0x80, 0xff]
            ]
        );
        assert!(path_args("/").is_err() && path_args("//x").is_err());
        assert_eq!(percent_decode(b"100%+%zz%4"), b"100%+%zz%4");
    }

    #[test]
    fn query_pairs_follow_in_order() {
        let args = query_args("EX=100&_token=secret&NX&a%20b=c%3Dd");
        assert_eq!(
            args,
            vec![
                b"EX".to_vec(),
                b"100".to_vec(),
                b"NX".to_vec(),
                b"a b".to_vec(),
                b"c=d".to_vec()
            ]
        );
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::collection::vec;
    use proptest::prelude::*;

    /// Percent-encodes every byte but unreserved ones, choosing upper- or lower-case hex per byte.
    fn encode(bytes: &[u8], lower: &[bool]) -> String {
        bytes
            .iter()
            .enumerate()
            .map(|(i, b)| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    (*b as char).to_string()
                }
                _ if lower.get(i).copied().unwrap_or(false) => format!("%{b:02x}"),
                _ => format!("%{b:02X}"),
            })
            .collect()
    }

    proptest! {
        #![proptest_config(crate::wire_tests::config())]

        #[test]
        fn percent_decoding_inverts_encoding(bytes in vec(any::<u8>(), 0..32),
                                             lower in vec(any::<bool>(), 32)) {
            prop_assert_eq!(percent_decode(encode(&bytes, &lower).as_bytes()), bytes);
        }

        #[test]
        fn percent_decoding_never_panics_or_grows(input in vec(any::<u8>(), 0..64)) {
            let out = percent_decode(&input);
            prop_assert!(out.len() <= input.len());
            if !input.contains(&b'%') {
                prop_assert_eq!(out, input);
            }
        }

        #[test]
        fn every_segment_is_one_argument(segments in vec(vec(any::<u8>(), 0..8), 1..6),
                                         lower in vec(any::<bool>(), 8)) {
            let path: String = segments
                .iter()
                .map(|s| format!("/{}", encode(s, &lower)))
                .collect();
            match path_args(&path) {
                Ok(args) => {
                    // A single trailing slash is dropped: an empty last segment is not an argument.
                    let mut expected = segments.clone();
                    if expected.len() > 1 && expected.last().is_some_and(Vec::is_empty) {
                        expected.pop();
                    }
                    prop_assert_eq!(args, expected);
                }
                Err(e) => {
                    prop_assert!(segments[0].is_empty());
                    prop_assert!(matches!(e, GatewayError::NotFound));
                }
            }
        }

        #[test]
        fn arbitrary_paths_and_queries_never_panic(path in ".{0,40}", query in ".{0,40}") {
            if let Ok(args) = path_args(&path) {
                prop_assert!(!args[0].is_empty());
            }
            let _ = query_args(&query);
        }

        #[test]
        fn token_pairs_never_become_arguments(pairs in vec(("[a-z_]{0,6}", vec(any::<u8>(), 0..6)), 0..5),
                                              token in "[ -~]{0,12}", at in any::<prop::sample::Index>()) {
            let lower = [false; 6];
            let mut items: Vec<String> = pairs
                .iter()
                .map(|(k, v)| format!("{}={}", encode(k.as_bytes(), &lower), encode(v, &lower)))
                .collect();
            items.insert(at.index(items.len() + 1), format!("_token={}", encode(token.as_bytes(), &lower)));
            let expected: Vec<Vec<u8>> = pairs
                .iter()
                .filter(|(k, _)| k != "_token")
                .flat_map(|(k, v)| [k.as_bytes().to_vec(), v.clone()])
                .collect();
            prop_assert_eq!(query_args(&items.join("&")), expected);
        }
    }
}
