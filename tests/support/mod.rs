//! Shared helpers for the wasm test suites, which run in Node (`wasm-pack test --node`) against the real
//! gateway and redis-server that `scripts/test.mjs` starts. The gateway's URL and token arrive in the
//! environment variables `REDGE_TEST_URL` and `REDGE_TEST_TOKEN`.
#![allow(dead_code)]

use js_sys::Reflect;
use wasm_bindgen::JsValue;

/// An environment variable of the Node process running the tests.
pub fn env(name: &str) -> Option<String> {
    let process = Reflect::get(&js_sys::global(), &JsValue::from_str("process")).ok()?;
    let vars = Reflect::get(&process, &JsValue::from_str("env")).ok()?;
    Reflect::get(&vars, &JsValue::from_str(name))
        .ok()?
        .as_string()
}

/// The gateway's URL and token, or a panic that says how to run the suite.
pub fn gateway() -> (String, String) {
    match (env("REDGE_TEST_URL"), env("REDGE_TEST_TOKEN")) {
        (Some(url), Some(token)) => (url, token),
        _ => panic!(
            "REDGE_TEST_URL and REDGE_TEST_TOKEN are not set: run the wasm suite with `npm run test:wasm`"
        ),
    }
}

/// A key no other test uses, so suites can share one Redis.
pub fn unique_key(name: &str) -> String {
    format!(
        "test:{name}:{}:{}",
        js_sys::Date::now() as u64,
        (js_sys::Math::random() * 1e9) as u64
    )
}

/// Waits `ms` on the JavaScript timer.
pub async fn sleep_ms(ms: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        let global = js_sys::global();
        let set_timeout: js_sys::Function =
            Reflect::get(&global, &"setTimeout".into()).unwrap().into();
        set_timeout.call2(&global, &resolve, &ms.into()).unwrap();
    });
    wasm_bindgen_futures::JsFuture::from(promise).await.unwrap();
}

#[wasm_bindgen::prelude::wasm_bindgen(module = "/tests/support/servers.mjs")]
extern "C" {
    #[wasm_bindgen(js_name = startSlowServer)]
    async fn start_slow_server(delay_ms: u32) -> JsValue;
    #[wasm_bindgen(js_name = startFlakyServer)]
    async fn start_flaky_server(drop_first_n: u32, upstream_url: &str) -> JsValue;
    #[wasm_bindgen(js_name = startLateServer)]
    async fn start_late_server(delay_ms: u32, upstream_url: &str) -> JsValue;
    /// How many requests the test server on `port` has received.
    #[wasm_bindgen(js_name = requestCount)]
    pub fn request_count(port: u16) -> u32;
}

/// Starts a server that answers `{"result":"OK"}` after `delay_ms`; returns its port.
pub async fn slow_server(delay_ms: u32) -> u16 {
    start_slow_server(delay_ms).await.as_f64().unwrap_or(0.0) as u16
}

/// Starts a proxy that forwards every request to `upstream_url` after `delay_ms`, even when its client
/// has given up by then (a slow Redis that runs the command late); returns its port.
pub async fn late_server(delay_ms: u32, upstream_url: &str) -> u16 {
    start_late_server(delay_ms, upstream_url)
        .await
        .as_f64()
        .unwrap_or(0.0) as u16
}

/// Starts a proxy to `upstream_url` that resets the first `drop_first_n` connections; returns its port.
pub async fn flaky_server(drop_first_n: u32, upstream_url: &str) -> u16 {
    start_flaky_server(drop_first_n, upstream_url)
        .await
        .as_f64()
        .unwrap_or(0.0) as u16
}
