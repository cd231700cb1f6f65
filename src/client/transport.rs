//! Sending HTTP requests: the [`Transport`] trait and, on wasm, the `fetch` transport.

use crate::Result;

/// An HTTP request to the Redis service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// Absolute URL.
    pub url: String,
    /// Header names and values.
    pub headers: Vec<(String, String)>,
    /// The body (always sent with `POST`).
    pub body: Vec<u8>,
    /// The request is aborted after this many milliseconds.
    pub timeout_ms: u32,
}

/// An HTTP response from the Redis service.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The `upstash-sync-token` header, if present.
    pub sync_token: Option<String>,
    /// The whole body.
    pub body: Vec<u8>,
}

/// Something that can carry an [`HttpRequest`] to the service and bring back its response.
///
/// The futures are not `Send`: JavaScript promises live on one thread.
pub trait Transport {
    /// Sends the request; fails with [`crate::Error::Transport`] or [`crate::Error::Timeout`] when no
    /// HTTP response arrives.
    #[allow(async_fn_in_trait)]
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse>;
}

#[cfg(target_arch = "wasm32")]
pub use fetch::FetchTransport;

#[cfg(target_arch = "wasm32")]
mod fetch {
    use js_sys::{Function, Promise, Reflect, Uint8Array};
    use wasm_bindgen::{JsCast, JsValue};
    use wasm_bindgen_futures::JsFuture;

    use super::{HttpRequest, HttpResponse, Transport};
    use crate::client::protocol::SYNC_TOKEN_HEADER;
    use crate::{Error, Result};

    /// Sends requests through the runtime's global `fetch` (Workers, Node, Deno, browsers), aborting them
    /// with `AbortSignal.timeout` at the deadline.
    #[derive(Debug, Clone, Copy, Default)]
    pub struct FetchTransport;

    impl Transport for FetchTransport {
        async fn send(&self, request: HttpRequest) -> Result<HttpResponse> {
            let timeout_ms = request.timeout_ms;
            let fail = |e: JsValue| describe(e, timeout_ms);
            let headers = web_sys::Headers::new().map_err(fail)?;
            for (name, value) in &request.headers {
                headers.set(name, value).map_err(fail)?;
            }
            let init = web_sys::RequestInit::new();
            init.set_method("POST");
            init.set_headers(&headers);
            init.set_body(&Uint8Array::from(request.body.as_slice()).into());
            let signal = web_sys::AbortSignal::timeout_with_u32(timeout_ms);
            init.set_signal(Some(&signal));

            let global = js_sys::global();
            let fetch: Function = Reflect::get(&global, &JsValue::from_str("fetch"))
                .map_err(fail)?
                .dyn_into()
                .map_err(|_| Error::Transport("this runtime has no global fetch".into()))?;
            let promise: Promise = fetch
                .call2(&global, &JsValue::from_str(&request.url), &init)
                .map_err(fail)?
                .unchecked_into();
            let response: web_sys::Response = JsFuture::from(promise)
                .await
                .map_err(fail)?
                .unchecked_into();
            let status = response.status();
            let sync_token = response
                .headers()
                .get(SYNC_TOKEN_HEADER)
                .ok()
                .flatten()
                .filter(|t| !t.is_empty());
            let buffer = JsFuture::from(response.array_buffer().map_err(fail)?)
                .await
                .map_err(fail)?;
            Ok(HttpResponse {
                status,
                sync_token,
                body: Uint8Array::new(&buffer).to_vec(),
            })
        }
    }

    /// Turns a rejected fetch into a typed error: the abort signal's `TimeoutError` (or `AbortError`)
    /// becomes [`Error::Timeout`], anything else [`Error::Transport`] with the runtime's message.
    fn describe(e: JsValue, timeout_ms: u32) -> Error {
        let name = Reflect::get(&e, &JsValue::from_str("name"))
            .ok()
            .and_then(|v| v.as_string())
            .unwrap_or_default();
        if name == "TimeoutError" || name == "AbortError" {
            return Error::Timeout(timeout_ms);
        }
        let message = Reflect::get(&e, &JsValue::from_str("message"))
            .ok()
            .and_then(|v| v.as_string())
            .or_else(|| e.as_string())
            .unwrap_or_else(|| "fetch failed".into());
        // Node puts the socket-level reason (ECONNREFUSED ...) in `cause`.
        let cause = Reflect::get(&e, &JsValue::from_str("cause"))
            .ok()
            .and_then(|c| Reflect::get(&c, &JsValue::from_str("code")).ok())
            .and_then(|v| v.as_string());
        match cause {
            Some(code) => Error::Transport(format!("{message} ({code})")),
            None => Error::Transport(message),
        }
    }
}
