//! Property tests of the wire format from end to end: a reply as redis-server sends it (RESP2 bytes),
//! parsed by the Redis client library, converted and encoded by the gateway, decoded by redge's client.
//! What the client gets back must be what Redis sent, under the protocol's rules: with base64 every
//! byte survives; without it invalid UTF-8 becomes U+FFFD; statuses are strings except a top-level `OK`
//! under base64; integers keep all 64 bits; errors inside arrays stay errors.

use axum::response::Response;
use proptest::collection::vec;
use proptest::prelude::*;
use redge::Error;
use redge::client::Reply;
use redge::client::protocol::{decode_batch, decode_response};

use crate::error::GatewayError;
use crate::format::{Format, batch_body, result_body, write_resp2};
use crate::reply::from_redis;

/// The property tests' settings: a fixed number of cases for CI, and no regression files written into
/// the source tree.
pub(crate) fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Integers around the limits that matter: 2^53 (where JavaScript numbers lose precision) and i64.
fn arb_int() -> impl Strategy<Value = i64> {
    const SAFE: i64 = 1 << 53;
    prop_oneof![
        any::<i64>(),
        (-4i64..=4).prop_map(|d| SAFE + d),
        (-4i64..=4).prop_map(|d| -SAFE + d),
        Just(i64::MAX),
        Just(i64::MIN),
    ]
}

/// Bytes that stress the encoder: invalid UTF-8, CR/LF, NUL, and strings that look like base64 or `OK`.
fn arb_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        vec(any::<u8>(), 0..24),
        Just(b"OK".to_vec()),
        Just(b"T0s=".to_vec()),
        Just(b"\r\n\0".to_vec()),
        Just(vec![0xff, 0xfe, 0xc3]),
        any::<String>().prop_map(String::into_bytes),
    ]
}

/// Replies redis-server can send in RESP2; `errors` allows error entries (only inside arrays and
/// batches, since a top-level error is a failed command).
fn arb_reply(errors: bool) -> impl Strategy<Value = Reply> {
    let leaf = prop_oneof![
        Just(Reply::Nil),
        arb_int().prop_map(Reply::Int),
        arb_bytes().prop_map(Reply::Data),
        prop_oneof![
            Just("OK".to_owned()),
            Just("QUEUED".to_owned()),
            "[^\r\n]{0,12}"
        ]
        .prop_map(Reply::Status),
    ];
    let leaf = if errors {
        prop_oneof![4 => leaf, 1 => arb_error().prop_map(Reply::Error)].boxed()
    } else {
        leaf.boxed()
    };
    leaf.prop_recursive(4, 48, 6, |inner| vec(inner, 0..6).prop_map(Reply::Array))
}

/// Error texts as Redis writes them: an upper-case code, then optionally a space and a message.
fn arb_error() -> impl Strategy<Value = String> {
    ("[A-Z]{1,10}", proptest::option::of("[^\r\n]{0,16}")).prop_map(|(code, detail)| match detail {
        Some(detail) => format!("{code} {detail}"),
        None => code,
    })
}

/// A top-level reply of one command: any value, or an error (the command failed).
fn arb_single() -> impl Strategy<Value = Reply> {
    prop_oneof![
        6 => arb_reply(true).prop_filter("an error at the top is the next case", |r| {
            !matches!(r, Reply::Error(_))
        }),
        1 => arb_error().prop_map(Reply::Error),
    ]
}

/// Through RESP2 bytes and the Redis client library's parser, as the gateway receives it.
fn received(reply: &Reply) -> redis::Value {
    let mut resp = Vec::new();
    write_resp2(reply, &mut resp);
    redis::parse_redis_value(&resp).expect("RESP2 written by the gateway parses")
}

fn body(response: Response) -> (u16, Vec<u8>) {
    let status = response.status().as_u16();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let bytes = runtime
        .block_on(axum::body::to_bytes(response.into_body(), usize::MAX))
        .expect("body");
    (status, bytes.to_vec())
}

/// What the client must decode from `sent`, per the protocol's encoding rules.
fn expected(sent: &Reply, base64: bool, top_level: bool) -> Reply {
    match sent {
        Reply::Status(s) if base64 && top_level && s == "OK" => Reply::Status("OK".into()),
        Reply::Status(s) => expected(&Reply::Data(s.clone().into_bytes()), base64, top_level),
        Reply::Data(d) if !base64 => {
            Reply::Data(String::from_utf8_lossy(d).into_owned().into_bytes())
        }
        Reply::Array(items) => {
            Reply::Array(items.iter().map(|i| expected(i, base64, false)).collect())
        }
        other => other.clone(),
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn a_single_reply_reaches_the_client_intact(sent in arb_single(), base64 in any::<bool>()) {
        // As `Backend::single` does: a top-level error reply is a failed command.
        let outcome = match from_redis(received(&sent)) {
            Reply::Error(text) => Err(GatewayError::Redis(text)),
            reply => Ok(reply),
        };
        let (status, wire) = body(Format::Json { base64 }.single(outcome));
        let decoded = decode_response(status, &wire, base64);
        match &sent {
            Reply::Error(text) => {
                prop_assert_eq!(status, 400);
                prop_assert_eq!(decoded, Err(Error::Redis(text.clone())));
            }
            _ => {
                prop_assert_eq!(status, 200);
                prop_assert_eq!(decoded, Ok(expected(&sent, base64, true)));
            }
        }
    }

    #[test]
    fn a_batch_reaches_the_client_intact(sent in vec(arb_reply(true), 1..8), base64 in any::<bool>()) {
        let entries = sent.iter().map(|r| from_redis(received(r))).collect();
        let (status, wire) = body(Format::Json { base64 }.batch(entries));
        prop_assert_eq!(status, 200);
        let decoded = decode_batch(status, &wire, base64).expect("a batch body decodes");
        prop_assert_eq!(decoded.len(), sent.len());
        for (got, sent) in decoded.into_iter().zip(&sent) {
            match sent {
                Reply::Error(text) => prop_assert_eq!(got, Err(Error::Redis(text.clone()))),
                _ => prop_assert_eq!(got, Ok(expected(sent, base64, false))),
            }
        }
    }
}

proptest! {
    #![proptest_config(config())]

    /// The gateway writes JSON bodies directly into bytes; they must be the very bytes of the shared
    /// protocol encoder, which builds a `serde_json::Value` first.
    #[test]
    fn json_bodies_are_the_protocol_encoders_bytes(reply in arb_reply(true),
                                                   entries in vec(arb_reply(true), 0..6),
                                                   base64 in any::<bool>()) {
        prop_assert_eq!(result_body(&reply, base64), redge::client::protocol::result_body(&reply, base64));
        let split: Vec<Result<Reply, String>> = entries
            .iter()
            .map(|e| match e {
                Reply::Error(text) => Err(text.clone()),
                other => Ok(other.clone()),
            })
            .collect();
        prop_assert_eq!(batch_body(&entries, base64), redge::client::protocol::batch_body(&split, base64));
    }
}

#[test]
fn deep_nesting_reaches_the_client_intact() {
    // The Redis client library refuses replies nested 99 levels or more (the gateway then answers 503,
    // see tests/hostile.rs) and serde_json refuses more than 128: below both, every level survives.
    let mut reply = Reply::Data(vec![0xff]);
    for _ in 0..97 {
        reply = Reply::Array(vec![reply, Reply::Int(i64::MAX)]);
    }
    let outcome = Ok(from_redis(received(&reply)));
    let (status, wire) = body(Format::Json { base64: true }.single(outcome));
    assert_eq!(decode_response(status, &wire, true), Ok(reply));
}
