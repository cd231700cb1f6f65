//! Sending HTTP requests: the [`Transport`] trait and, on wasm, the `fetch` transport.

use crate::Result;
use crate::clock::{Clock, SystemClock};

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

    /// Milliseconds since the Unix epoch, to keep retries inside a call's deadline.
    fn now_ms(&self) -> u64 {
        SystemClock.now_ms()
    }

    /// Waits `ms` milliseconds before a retry.
    ///
    /// The default returns at once (there is no timer without a runtime); the fetch transport waits on a
    /// JavaScript `setTimeout`.
    #[allow(async_fn_in_trait)]
    async fn sleep(&self, ms: u32) {
        let _ = ms;
    }
}

#[cfg(target_arch = "wasm32")]
pub use fetch::FetchTransport;

/// The runtime's `fetch`, which exists only in a JavaScript runtime: outside wasm32 every request fails
/// with [`crate::Error::Transport`] saying so. It lets code written for a Worker (and this crate's
/// examples) compile and be unit tested natively, where a test gives the client a transport of its own.
#[cfg(not(target_arch = "wasm32"))]
#[derive(Debug, Clone, Copy, Default)]
pub struct FetchTransport;

#[cfg(not(target_arch = "wasm32"))]
impl Transport for FetchTransport {
    async fn send(&self, _request: HttpRequest) -> Result<HttpResponse> {
        Err(crate::Error::Transport(
            "fetch is available only in a JavaScript runtime (wasm32); give the client a transport"
                .into(),
        ))
    }
}
#[cfg(target_arch = "wasm32")]
pub(crate) use fetch::sleep_ms;

/// `Some(output)` when `future` finishes within `ms`, `None` when the deadline passes first (the future is
/// then dropped: the request it was waiting on is not aborted here, the client's own deadline does that
/// later). Natively there is no timer: the future always runs to its end.
pub(crate) async fn within<F: std::future::Future>(ms: u32, future: F) -> Option<F::Output> {
    #[cfg(target_arch = "wasm32")]
    {
        use std::task::Poll;
        let mut future = std::pin::pin!(future);
        let mut timer = std::pin::pin!(sleep_ms(ms));
        std::future::poll_fn(|cx| {
            if let Poll::Ready(output) = future.as_mut().poll(cx) {
                return Poll::Ready(Some(output));
            }
            timer.as_mut().poll(cx).map(|()| None)
        })
        .await
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = ms;
        Some(future.await)
    }
}

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

        async fn sleep(&self, ms: u32) {
            sleep_ms(ms).await;
        }
    }

    /// Resolves after `ms` milliseconds, through the runtime's global `setTimeout`.
    pub(crate) async fn sleep_ms(ms: u32) {
        let global = js_sys::global();
        let Ok(set_timeout) = Reflect::get(&global, &JsValue::from_str("setTimeout")) else {
            return;
        };
        let Ok(set_timeout) = set_timeout.dyn_into::<Function>() else {
            return;
        };
        let promise = Promise::new(&mut |resolve, _reject| {
            let _ = set_timeout.call2(&global, &resolve, &JsValue::from(ms));
        });
        let _ = JsFuture::from(promise).await;
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

#[cfg(all(test, not(target_arch = "wasm32")))]
pub(crate) use fake::{FakeTransport, fake_server, ok};

/// A scripted transport for unit tests: a closure answers each request, time is fake and advances only
/// when the client sleeps (or the test says so), and every request is recorded.
#[cfg(all(test, not(target_arch = "wasm32")))]
mod fake {
    use std::cell::{Cell, RefCell};

    use super::{HttpRequest, HttpResponse, Transport};
    use crate::Result;
    use crate::client::{Reply, protocol};

    type Handler = Box<dyn FnMut(&HttpRequest, u64) -> Result<HttpResponse>>;

    pub(crate) struct FakeTransport {
        handler: RefCell<Handler>,
        pub(crate) requests: RefCell<Vec<HttpRequest>>,
        pub(crate) sleeps: RefCell<Vec<u32>>,
        pub(crate) now: Cell<u64>,
    }

    impl FakeTransport {
        pub(crate) fn new(
            handler: impl FnMut(&HttpRequest, u64) -> Result<HttpResponse> + 'static,
        ) -> Self {
            FakeTransport {
                handler: RefCell::new(Box::new(handler)),
                requests: RefCell::new(Vec::new()),
                sleeps: RefCell::new(Vec::new()),
                now: Cell::new(1_000_000),
            }
        }

        /// The JSON bodies sent so far, as text.
        pub(crate) fn bodies(&self) -> Vec<String> {
            self.requests
                .borrow()
                .iter()
                .map(|r| String::from_utf8_lossy(&r.body).into_owned())
                .collect()
        }
    }

    /// A 200 response with the given body.
    pub(crate) fn ok(body: Vec<u8>) -> Result<HttpResponse> {
        Ok(HttpResponse {
            status: 200,
            sync_token: Some("tok".into()),
            body,
        })
    }

    /// A fake service that runs each command through `run` (arguments as text; `Err` is Redis's error
    /// text) and answers in the protocol's shapes for `/`, `/pipeline` and `/multi-exec`.
    pub(crate) fn fake_server(
        run: impl Fn(&[String]) -> std::result::Result<Reply, String> + 'static,
    ) -> FakeTransport {
        FakeTransport::new(move |request, _| {
            let parsed: serde_json::Value =
                serde_json::from_slice(&request.body).unwrap_or_default();
            let as_args = |v: &serde_json::Value| -> Vec<String> {
                v.as_array()
                    .map(|a| {
                        a.iter()
                            .map(|s| s.as_str().unwrap_or("").to_owned())
                            .collect()
                    })
                    .unwrap_or_default()
            };
            if request.url.ends_with("/pipeline") || request.url.ends_with("/multi-exec") {
                let entries: Vec<_> = parsed
                    .as_array()
                    .map(|cmds| cmds.iter().map(|c| run(&as_args(c))).collect())
                    .unwrap_or_default();
                ok(protocol::batch_body(&entries, true))
            } else {
                match run(&as_args(&parsed)) {
                    Ok(reply) => ok(protocol::result_body(&reply, true)),
                    Err(text) => Ok(HttpResponse {
                        status: 400,
                        sync_token: Some("tok-err".into()),
                        body: protocol::error_body(&text),
                    }),
                }
            }
        })
    }

    impl Transport for FakeTransport {
        async fn send(&self, request: HttpRequest) -> Result<HttpResponse> {
            let n = self.requests.borrow().len() as u64;
            let response = (self.handler.borrow_mut())(&request, n);
            self.requests.borrow_mut().push(request);
            response
        }

        fn now_ms(&self) -> u64 {
            self.now.get()
        }

        async fn sleep(&self, ms: u32) {
            self.sleeps.borrow_mut().push(ms);
            self.now.set(self.now.get() + u64::from(ms));
        }
    }
}
