//! The client compiled to wasm, talking through `fetch` to the real gateway and redis-server.
#![cfg(target_arch = "wasm32")]

mod support;

use redge::Error;
use redge::client::{Client, cmd};
use wasm_bindgen_test::wasm_bindgen_test;

fn client() -> Client<redge::client::FetchTransport> {
    let (url, token) = support::gateway();
    Client::new(&url, &token).unwrap()
}

#[wasm_bindgen_test]
async fn ping_and_set_get_round_trip() {
    let client = client();
    let pong: String = client.query(&cmd("PING")).await.unwrap();
    assert_eq!(pong, "PONG");

    let key = support::unique_key("roundtrip");
    let value = "héllo 😀 OK";
    let _: () = client
        .query(&cmd("SET").arg(&key).arg(value).arg("EX").arg(60))
        .await
        .unwrap();
    let got: Option<String> = client.query(&cmd("GET").arg(&key)).await.unwrap();
    assert_eq!(got.as_deref(), Some(value));
    let stats = client.stats();
    assert_eq!((stats.round_trips, stats.commands), (3, 3));
    assert!(client.sync_token().is_some());
}

#[wasm_bindgen_test]
async fn errors_are_typed() {
    let client = client();
    let err = client
        .query::<()>(&cmd("SET").arg("only-key"))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        Error::Redis("ERR wrong number of arguments for 'set' command".into())
    );

    let key = support::unique_key("type");
    let _: () = client.query(&cmd("SET").arg(&key).arg("x")).await.unwrap();
    let err = client
        .query::<i64>(&cmd("GET").arg(&key))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Type { ref command, .. } if command == "GET"),
        "{err}"
    );

    let (url, _) = support::gateway();
    let bad_token = Client::new(&url, "not-the-token").unwrap();
    assert!(
        bad_token
            .query::<String>(&cmd("PING"))
            .await
            .unwrap_err()
            .is_auth()
    );
}

#[wasm_bindgen_test]
async fn an_unreachable_service_is_a_transport_error() {
    // Port 9 (discard) is closed on test machines: the connection is refused at once.
    let client = Client::new("http://127.0.0.1:9", "token").unwrap();
    let err = client.query::<String>(&cmd("PING")).await.unwrap_err();
    assert!(err.is_unavailable(), "{err}");
}
