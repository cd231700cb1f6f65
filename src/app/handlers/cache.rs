//! `GET /api/lookup/{id}`, `DELETE /api/lookup/{id}`, `DELETE /api/lookup/tags/{tag}` and
//! `GET /api/cache/metrics`: cached lookups in front of a slow origin.
//!
//! The origin is a demo (ids 1..=1000 exist; latency and failure rate from `DEMO_ORIGIN_LATENCY_MS` and
//! `DEMO_ORIGIN_FAILURE_RATE`), or a real upstream when `ORIGIN_URL` is set. Each value is tagged `demo`
//! and `group-<id % 10>`.

use std::rc::Rc;

use serde_json::{Value, json};
use worker::{Context, Env, Response};

use super::super::{config, problem};
use crate::cache::{Cache, CacheOptions, CacheState, Key, Lookup, LookupError};
use crate::client::Json;

/// The largest id the demo origin knows.
const DEMO_IDS: u64 = 1_000;

thread_local! {
    /// Single flight, breaker, memory tier and metrics live as long as the isolate.
    static STATE: Rc<CacheState> = CacheState::new(CacheOptions {
        namespace: "redge:lookup".into(),
        ..CacheOptions::default()
    });
}

fn state() -> Rc<CacheState> {
    STATE.with(Rc::clone)
}

/// The isolate's cache metrics, for a metrics route.
pub fn metrics_json() -> Value {
    state().metrics_json()
}

/// `GET /api/cache/metrics`.
pub fn metrics() -> worker::Result<Response> {
    no_store(Response::from_json(&metrics_json())?)
}

fn parse_id(raw: &str) -> Result<u64, String> {
    let shown: String = raw.chars().take(40).collect();
    match raw.parse::<u64>() {
        Ok(id) if !raw.starts_with('+') && id > 0 => Ok(id),
        _ => Err(format!(
            "the id must be a positive integer (the demo origin knows 1 to {DEMO_IDS}), got {shown:?}"
        )),
    }
}

fn key(id: u64) -> Key {
    Key::new(format!("item:{id}")).tags(["demo".to_owned(), format!("group-{}", id % 10)])
}

/// `GET /api/lookup/{id}`.
pub async fn get(env: &Env, ctx: Context, raw_id: &str) -> worker::Result<Response> {
    let id = match parse_id(raw_id) {
        Ok(id) => id,
        Err(detail) => return problem::problem(400, "Bad Request", &detail),
    };
    let (client, settings) = match (config::client(env), config::lookup(env)) {
        (Ok(client), Ok(settings)) => (client, settings),
        (Err(message), _) | (_, Err(message)) => {
            return problem::problem(500, "Misconfigured", &message);
        }
    };
    let client = Rc::new(client);
    let cache = Cache::new(Rc::clone(&client), state()).spawner(move |task| ctx.wait_until(task));
    let origin_settings = settings.clone();
    let result = cache
        .get_or_fetch(key(id), &settings.policy, move || {
            origin(id, origin_settings)
        })
        .await;
    let fields = |lookup: &Lookup<Json<Value>>| {
        let mut fields = serde_json::Map::new();
        fields.insert("id".into(), json!(id));
        fields.insert(
            "value".into(),
            lookup.value.as_ref().map_or(Value::Null, |v| v.0.clone()),
        );
        fields.insert("status".into(), json!(lookup.status.as_str()));
        // In a problem body `status` is the HTTP status (RFC 9457), so the lookup's is repeated here.
        fields.insert("cache_status".into(), json!(lookup.status.as_str()));
        fields.insert("took_ms".into(), json!(lookup.took_ms));
        fields.insert("origin_calls".into(), json!(cache.state().origin_calls()));
        fields.insert("origin_called".into(), json!(lookup.origin_called));
        fields.insert("origin_failed".into(), json!(lookup.origin_failed));
        fields.insert("from_memory".into(), json!(lookup.from_memory));
        fields.insert("round_trips".into(), json!(client.stats().round_trips));
        fields.insert(
            "breaker".into(),
            json!(cache.state().breaker_state().as_str()),
        );
        fields
    };
    let response = match result {
        Ok(lookup) if lookup.value.is_some() => Response::from_json(&fields(&lookup))?,
        Ok(lookup) => {
            let detail = format!("no item with id {id}");
            problem::problem_with(404, "Not Found", &detail, fields(&lookup))?
        }
        Err(LookupError::InvalidKey(why)) => problem::problem(400, "Bad Request", &why)?,
        Err(LookupError::Origin(why) | LookupError::Joined(why)) => {
            let mut extra = serde_json::Map::new();
            extra.insert("id".into(), json!(id));
            extra.insert("origin_calls".into(), json!(cache.state().origin_calls()));
            let detail =
                format!("the origin failed and nothing was cached to serve instead: {why}");
            problem::problem_with(502, "Bad Gateway", &detail, extra)?
        }
    };
    no_store(response)
}

/// `DELETE /api/lookup/{id}` and `DELETE /api/lookup/tags/{tag}`.
pub async fn delete(env: &Env, path: &str) -> worker::Result<Response> {
    let client = match config::client(env) {
        Ok(client) => Rc::new(client),
        Err(message) => return problem::problem(500, "Misconfigured", &message),
    };
    let cache = Cache::new(client, state());
    let outcome = match path.strip_prefix("tags/") {
        Some(tag) if !tag.is_empty() && !tag.contains('/') => {
            cache.invalidate_tag(tag).await.map(|_| ())
        }
        Some(_) => return problem::problem(400, "Bad Request", "the tag is empty or contains '/'"),
        None => match parse_id(path) {
            Ok(id) => cache.invalidate(&format!("item:{id}")).await.map(|_| ()),
            Err(detail) => return problem::problem(400, "Bad Request", &detail),
        },
    };
    match outcome {
        Ok(()) => no_store(Response::empty()?.with_status(204)),
        Err(e) if e.is_unavailable() => problem::problem(
            503,
            "Service Unavailable",
            &format!("the cache could not be invalidated: {e}"),
        ),
        Err(e) => problem::problem(400, "Bad Request", &e.to_string()),
    }
}

fn no_store(mut response: Response) -> worker::Result<Response> {
    response.headers_mut().set("cache-control", "no-store")?;
    Ok(response)
}

/// The origin: a real upstream when configured, the demo otherwise.
async fn origin(id: u64, settings: config::LookupConfig) -> Result<Option<Json<Value>>, String> {
    if let Some(base) = &settings.origin_url {
        return upstream(base, id).await;
    }
    sleep_ms(settings.origin_latency_ms).await;
    if js_sys::Math::random() < settings.origin_failure_rate {
        return Err("the demo origin failed (DEMO_ORIGIN_FAILURE_RATE)".into());
    }
    if id > DEMO_IDS {
        return Ok(None);
    }
    Ok(Some(Json(json!({
        "id": id,
        "name": format!("Item {id}"),
        "price_cents": (id * 137) % 10_000,
        "fetched_at": js_sys::Date::now() as u64,
    }))))
}

/// `GET <base>/<id>` through the global `fetch` (not `worker::Fetch`, whose `Url` type pulls the IDNA
/// tables into the wasm: over 100 KB gzipped for one URL).
async fn upstream(base: &str, id: u64) -> Result<Option<Json<Value>>, String> {
    use wasm_bindgen::JsCast;
    use wasm_bindgen_futures::JsFuture;
    let describe = |e: wasm_bindgen::JsValue| format!("the origin could not be reached: {e:?}");
    let global = js_sys::global();
    let fetch: js_sys::Function = js_sys::Reflect::get(&global, &"fetch".into())
        .map_err(describe)?
        .dyn_into()
        .map_err(|_| "this runtime has no fetch".to_owned())?;
    let url = wasm_bindgen::JsValue::from_str(&format!("{base}/{id}"));
    let promise: js_sys::Promise = fetch
        .call1(&global, &url)
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
                .map(|v| Some(Json(v)))
                .map_err(|e| format!("the origin's answer is not JSON: {e}"))
        }
        404 => Ok(None),
        status => Err(format!("the origin answered HTTP {status}")),
    }
}

/// Waits on the runtime's `setTimeout`.
async fn sleep_ms(ms: u32) {
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
