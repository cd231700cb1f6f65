//! What the handlers need from the JavaScript runtime, behind one small trait and a few functions, so
//! that they compile and are unit tested natively.
//!
//! Per request ([`Runtime`]): the request's headers and `ctx.waitUntil`. The Worker's entry point
//! (`dispatch.rs`, wasm only) implements it over the runtime's request and context; the native tests
//! implement it over a map and a list of tasks. Per isolate (functions): the log, `Math.random`,
//! `setTimeout` and `fetch` for the demo origin. Natively the log goes to stderr, `random` is a
//! xorshift generator, `sleep_ms` returns at once and `fetch_json` fails saying why.
//!
//! Redis is reached through the library's `FetchTransport`, which natively fails every call: native
//! handler tests see Redis unreachable, which is what they test (every capability's failure policy).

use std::future::Future;
use std::pin::Pin;

use serde_json::Value;

/// Work to run after the response (`ctx.waitUntil`).
pub(crate) type Task = Pin<Box<dyn Future<Output = ()>>>;

/// The runtime's side of one request.
pub(crate) trait Runtime {
    /// A request header (names are case-insensitive).
    fn header(&self, name: &str) -> Option<String>;

    /// Runs `task` after the response is sent, within the request's lifetime.
    fn wait_until(&self, task: Task);
}

/// How bad a log line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Level {
    /// Something failed.
    Error,
    /// Something needs the operator's attention.
    Warn,
}

/// Writes one log line (`console.error` / `console.warn` in the runtime: `wrangler tail`, Workers Logs).
pub(crate) fn log(level: Level, line: &str) {
    #[cfg(target_arch = "wasm32")]
    match level {
        Level::Error => worker::console_error!("{line}"),
        Level::Warn => worker::console_warn!("{line}"),
    }
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("[{level:?}] {line}");
}

/// A number in `[0, 1)`: `Math.random` (the demo origin's failure rate; nothing secret).
pub(crate) fn random() -> f64 {
    #[cfg(target_arch = "wasm32")]
    {
        js_sys::Math::random()
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        use std::cell::Cell;
        thread_local!(static STATE: Cell<u64> = const { Cell::new(0x9e37_79b9_7f4a_7c15) });
        STATE.with(|s| {
            let mut x = s.get();
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            s.set(x);
            (x >> 11) as f64 / (1u64 << 53) as f64
        })
    }
}

/// Waits on the runtime's `setTimeout` (natively: returns at once).
pub(crate) async fn sleep_ms(ms: u32) {
    #[cfg(target_arch = "wasm32")]
    {
        use wasm_bindgen::JsCast;
        let global = js_sys::global();
        let Some(set_timeout) = js_sys::Reflect::get(&global, &"setTimeout".into())
            .ok()
            .and_then(|f| f.dyn_into::<js_sys::Function>().ok())
        else {
            return;
        };
        let promise = js_sys::Promise::new(&mut |resolve, _| {
            let _ = set_timeout.call2(&global, &resolve, &ms.into());
        });
        let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
    }
    #[cfg(not(target_arch = "wasm32"))]
    let _ = ms;
}

/// `GET url` through the global `fetch` (not `worker::Fetch`, whose `Url` type pulls the IDNA tables
/// into the wasm: over 100 KB gzipped for one URL): the JSON of a 200, `None` for a 404, an error
/// otherwise.
pub(crate) async fn fetch_json(url: &str) -> Result<Option<Value>, String> {
    #[cfg(target_arch = "wasm32")]
    {
        use wasm_bindgen::JsCast;
        use wasm_bindgen_futures::JsFuture;
        let describe = |e: wasm_bindgen::JsValue| format!("the origin could not be reached: {e:?}");
        let global = js_sys::global();
        let fetch: js_sys::Function = js_sys::Reflect::get(&global, &"fetch".into())
            .map_err(describe)?
            .dyn_into()
            .map_err(|_| "this runtime has no fetch".to_owned())?;
        let promise: js_sys::Promise = fetch
            .call1(&global, &wasm_bindgen::JsValue::from_str(url))
            .map_err(describe)?
            .unchecked_into();
        let response: web_sys::Response = JsFuture::from(promise)
            .await
            .map_err(describe)?
            .unchecked_into();
        match response.status() {
            200 => {
                let text = JsFuture::from(response.text().map_err(describe)?)
                    .await
                    .map_err(describe)?
                    .as_string()
                    .unwrap_or_default();
                serde_json::from_str(&text)
                    .map(Some)
                    .map_err(|e| format!("the origin's answer is not JSON: {e}"))
            }
            404 => Ok(None),
            status => Err(format!("the origin answered HTTP {status}")),
        }
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = url;
        Err("the origin could not be reached: fetch exists only in the JavaScript runtime".into())
    }
}
