//! `#!lua flags=allow-key-locking` stripping and SHA aliasing.

mod common;

use common::{Redis, b64, batch, command, gateway};
use serde_json::json;

const SCRIPT: &str = "#!lua flags=allow-key-locking\nreturn redis.call('INCR', KEYS[1])";

fn sha1_hex(text: &str) -> String {
    sha1_smol::Sha1::from(text).digest().to_string()
}

#[tokio::test]
async fn eval_strips_the_flag_and_evalsha_finds_the_client_hash() {
    let redis = Redis::start();
    let gw = gateway(&redis).await;
    let client_sha = sha1_hex(SCRIPT);

    // Real Redis refuses the flag; the gateway makes it run.
    let eval = command(&gw, json!(["EVAL", SCRIPT, 1, "n"])).await;
    assert_eq!(eval.json, json!({ "result": 1 }));
    let evalsha = command(&gw, json!(["EVALSHA", client_sha, 1, "n"])).await;
    assert_eq!(evalsha.json, json!({ "result": 2 }));
    let exists = command(&gw, json!(["SCRIPT", "EXISTS", client_sha, "0".repeat(40)])).await;
    assert_eq!(exists.json, json!({ "result": [1, 0] }));

    // Error line numbers still match the client's source: the shebang became an empty line.
    let broken = command(
        &gw,
        json!([
            "EVAL",
            "#!lua flags=allow-key-locking\nreturn redis.call('NOPE')",
            0
        ]),
    )
    .await;
    assert_eq!(broken.status, 400);
    assert!(
        broken.json["error"]
            .as_str()
            .unwrap()
            .contains("@user_script:2."),
        "{}",
        broken.json
    );
}

#[tokio::test]
async fn script_load_answers_with_the_client_hash_also_in_batches() {
    let redis = Redis::start();
    let gw = gateway(&redis).await;
    let client_sha = sha1_hex(SCRIPT);

    let load = command(&gw, json!(["SCRIPT", "LOAD", SCRIPT])).await;
    assert_eq!(load.json, json!({ "result": b64(&client_sha) }));

    let pipeline = batch(
        &gw,
        "pipeline",
        json!([
            ["SCRIPT", "FLUSH"],
            ["SCRIPT", "LOAD", SCRIPT],
            ["EVALSHA", client_sha, 1, "p"]
        ]),
    )
    .await;
    assert_eq!(
        pipeline.json,
        json!([{ "result": b64("OK") }, { "result": b64(&client_sha) }, { "result": 1 }])
    );
    let transaction = batch(
        &gw,
        "multi-exec",
        json!([
            ["EVALSHA", client_sha, 1, "p"],
            ["SCRIPT", "EXISTS", client_sha]
        ]),
    )
    .await;
    assert_eq!(
        transaction.json,
        json!([{ "result": 2 }, { "result": [1] }])
    );

    // A script without the flag is untouched: its own hash works directly.
    let plain = "return 7";
    command(&gw, json!(["EVAL", plain, 0])).await;
    let again = command(&gw, json!(["EVALSHA", sha1_hex(plain), 0])).await;
    assert_eq!(again.json, json!({ "result": 7 }));
}
