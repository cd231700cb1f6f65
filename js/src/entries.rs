//! `Cache`'s direct access to entries: `get`, `set`, `delete` and `update`, next to `getOrFetch` and
//! over the same entries (redge's `Cache::get`, `set`, `set_not_found`, `delete` and `update`).

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Function, Promise};
use redge::cache::Cache as Inner;
use redge::client::Json;
use wasm_bindgen::prelude::*;

use crate::cache::{Cache, cache_key, key_and_policy_for};
use crate::convert::{self, invalid, type_name};
use crate::shapes;

#[wasm_bindgen]
impl Cache {
    /// The value cached under `key` (a string, or `{ key, tags }` as it was written), read under
    /// `policy` without calling any origin: `{ status, value }` with status `fresh`, `stale` (past its
    /// TTL, inside the policy's grace), `absent` (a remembered "not found") or `notCached`. One round
    /// trip. Rejects when Redis fails: there is no origin to fall back on.
    #[wasm_bindgen(unchecked_return_type = "Promise<CacheEntry>")]
    pub fn get(
        &self,
        #[wasm_bindgen(unchecked_param_type = "CacheKey")] key: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "CachePolicy")] policy: JsValue,
    ) -> Promise {
        let cache = self.inner();
        convert::promise(async move {
            let (key, policy) = key_and_policy_for("get", &key, policy)?;
            let cached = cache
                .get::<Json<serde_json::Value>>(key, &policy)
                .await
                .map_err(|e| convert::redge_error(&e))?;
            convert::to_value(&shapes::cached(cached))
        })
    }

    /// Caches `value` (anything `JSON.stringify` accepts) under `key` as if an origin had returned it:
    /// fresh for the policy's `ttlMs` (this value's own TTL), then stale for its `graceMs`, tagged with
    /// the key's tags; the next `getOrFetch` is a hit. `null` or `undefined` remembers "not found" for
    /// `negativeTtlMs` (with 0, the default, the entry is deleted), as when an origin returns them.
    /// One round trip.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn set(
        &self,
        #[wasm_bindgen(unchecked_param_type = "CacheKey")] key: JsValue,
        #[wasm_bindgen(unchecked_param_type = "unknown")] value: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "CachePolicy")] policy: JsValue,
    ) -> Promise {
        let cache = self.inner();
        convert::promise(async move {
            let (key, policy) = key_and_policy_for("set", &key, policy)?;
            let written = if value.is_null() || value.is_undefined() {
                cache.set_not_found(key, &policy).await
            } else {
                let value = Json(convert::json(&value, "set: value")?);
                cache.set(key, &value, &policy).await
            };
            written.map_err(|e| convert::redge_error(&e))?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Deletes `key`'s entry (tags play no part); resolves with whether one existed. One round trip.
    #[wasm_bindgen(js_name = delete, unchecked_return_type = "Promise<boolean>")]
    pub fn delete(
        &self,
        #[wasm_bindgen(unchecked_param_type = "CacheKey")] key: JsValue,
    ) -> Promise {
        let cache = self.inner();
        convert::promise(async move {
            let key = cache_key(&key, "delete: key")?;
            let existed = cache
                .delete(key.name())
                .await
                .map_err(|e| convert::redge_error(&e))?;
            Ok(JsValue::from_bool(existed))
        })
    }

    /// Changes the cached value in place, atomically: `change(current)` returns the new value, or
    /// `undefined` to leave it. Resolves with `{ status, value }`: `written` (the new value), `kept`
    /// (the current one) or `notCached` (nothing fresh or stale to change: `change` was not called and
    /// nothing was written). The entry keeps its TTL. `change` must be synchronous and may run more
    /// than once when another isolate writes the key at the same time; if it throws, nothing is written
    /// and the promise rejects with what it threw. Two round trips, one when queued behind another
    /// update of the key in this isolate, plus one per race lost to another isolate.
    #[wasm_bindgen(unchecked_return_type = "Promise<CacheUpdate>")]
    pub fn update(
        &self,
        #[wasm_bindgen(unchecked_param_type = "CacheKey")] key: JsValue,
        #[wasm_bindgen(unchecked_param_type = "CachePolicy | undefined")] policy: JsValue,
        #[wasm_bindgen(unchecked_param_type = "(current: any) => unknown")] change: JsValue,
    ) -> Promise {
        let cache = self.inner();
        convert::promise(async move {
            let (key, policy) = key_and_policy_for("update", &key, policy)?;
            let change: Function = change.dyn_into().map_err(|v: JsValue| {
                invalid(
                    "update: change",
                    format!("expected a function, got {}", type_name(&v)),
                )
            })?;
            // What the function threw (or why its value is unusable): the update then writes nothing
            // and rejects with it.
            let failure: Rc<RefCell<Option<JsValue>>> = Rc::default();
            let failed = Rc::clone(&failure);
            let updated = cache
                .update(
                    key,
                    &policy,
                    move |current: &Json<serde_json::Value>| match apply(&change, &current.0) {
                        Ok(next) => next.map(Json),
                        Err(thrown) => {
                            *failed.borrow_mut() = Some(thrown);
                            None
                        }
                    },
                )
                .await
                .map_err(|e| convert::redge_error(&e))?;
            if let Some(thrown) = failure.take() {
                return Err(thrown);
            }
            convert::to_value(&shapes::updated(updated))
        })
    }
}

impl Cache {
    /// The library's cache for one call.
    pub(crate) fn inner(&self) -> Inner<redge::client::FetchTransport> {
        self.tiers.open(&self.client)
    }
}

/// Calls `change` with the current value: `Ok(None)` when it returned `undefined` (leave the entry),
/// `Err` with what it threw or why its value cannot be cached.
fn apply(
    change: &Function,
    current: &serde_json::Value,
) -> Result<Option<serde_json::Value>, JsValue> {
    let argument = convert::to_value(current)?;
    let next = change.call1(&JsValue::UNDEFINED, &argument)?;
    if next.is_undefined() {
        return Ok(None);
    }
    if next.is_null() {
        return Err(invalid(
            "update: change",
            "it returned null; to remember \"not found\" use set(key, null), to drop the entry delete(key)",
        ));
    }
    if next.is_instance_of::<Promise>() {
        return Err(invalid(
            "update: change",
            "it returned a promise; it must be synchronous (it may run again if another writer wins)",
        ));
    }
    convert::json(&next, "update: the new value").map(Some)
}
