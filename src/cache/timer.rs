//! Time-bounded waits for the cache's own round trips. On wasm a JavaScript `setTimeout` races the
//! request; natively (unit tests, no timer runtime) the wait is unbounded and `sleep` returns at once.

use std::future::Future;

/// `fut`'s output, or `None` when `ms` passed first. The losing request is not aborted here: the client's
/// own deadline aborts it later; the lookup simply stops waiting for it.
pub async fn within<F: Future>(ms: u32, fut: F) -> Option<F::Output> {
    #[cfg(target_arch = "wasm32")]
    {
        use std::pin::pin;
        use std::task::Poll;
        let mut fut = pin!(fut);
        let mut timer = pin!(sleep(ms));
        std::future::poll_fn(|cx| {
            if let Poll::Ready(out) = fut.as_mut().poll(cx) {
                return Poll::Ready(Some(out));
            }
            if timer.as_mut().poll(cx).is_ready() {
                return Poll::Ready(None);
            }
            Poll::Pending
        })
        .await
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = ms;
        Some(fut.await)
    }
}

/// Waits `ms` milliseconds (returns at once natively).
pub async fn sleep(ms: u32) {
    #[cfg(target_arch = "wasm32")]
    {
        use js_sys::{Function, Promise, Reflect};
        use wasm_bindgen::{JsCast, JsValue};
        let global = js_sys::global();
        let Some(set_timeout) = Reflect::get(&global, &JsValue::from_str("setTimeout"))
            .ok()
            .and_then(|f| f.dyn_into::<Function>().ok())
        else {
            return;
        };
        let promise = Promise::new(&mut |resolve, _reject| {
            let _ = set_timeout.call2(&global, &resolve, &JsValue::from(ms));
        });
        let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
    }
    #[cfg(not(target_arch = "wasm32"))]
    let _ = ms;
}
