//! `GET /api/lookup/{id}`, `DELETE /api/lookup/{id}`, `DELETE /api/lookup/tags/{tag}` and
//! `GET /api/cache/metrics`: cached lookups in front of a slow origin.
//!
//! The origin is a demo (ids 1..=1000 exist; latency and failure rate from `DEMO_ORIGIN_LATENCY_MS` and
//! `DEMO_ORIGIN_FAILURE_RATE`), or a real upstream when `ORIGIN_URL` is set. Each value is tagged `demo`
//! and `group-<id % 10>`.
//!
//! With `CACHE_COLO_TTL_MS` set, a lookup first asks the location's Cache API (`caches.default`, keys
//! on the Worker's own host): a fresh entry there answers with no Redis round trip, and the route limit
//! does not charge it (it limits Redis work). An invalidation through this Worker deletes the key's
//! colo entry; one made elsewhere, or of a tag, is seen within `CACHE_COLO_TTL_MS`.

use std::rc::Rc;

use serde_json::{Map, Value, json};

use crate::config::LookupSettings;
use crate::context::{Cx, Handler, Shared, Tr, json_response, spawn_background};
use crate::problem::Problem;
use crate::reply::Reply;
use crate::runtime;
use crate::tags;
use redge::cache::{Cache, CacheApi, CacheOptions, CacheState, Key, Lookup, LookupError, Pending};
use redge::client::Json;
use redge::clock::{Clock, SystemClock};
use redge::origin::Origin;
use redge::plan::Plan;

/// The largest id the demo origin knows.
const DEMO_IDS: u64 = 1_000;

thread_local! {
    /// Single flight, breaker, memory tier and metrics live as long as the isolate.
    static STATE: Rc<CacheState> = CacheState::new(CacheOptions {
        namespace: "redge:lookup".into(),
        ..CacheOptions::default()
    });
}

/// The isolate's cache state (metrics, breaker, single flight).
pub(crate) fn state() -> Rc<CacheState> {
    STATE.with(Rc::clone)
}

/// The id of an item, as the demo origin numbers them (1 and up; unknown ids are negative lookups).
pub(crate) fn parse_id(raw: &str) -> Result<u64, Problem> {
    let shown: String = raw.chars().take(40).collect();
    match raw.parse::<u64>() {
        Ok(id) if !raw.starts_with('+') && id > 0 => Ok(id),
        _ => Err(Problem::bad_request(format!(
            "the id must be a positive integer (the demo origin knows 1 to {DEMO_IDS}), got {shown:?}"
        ))),
    }
}

fn key(id: u64) -> Key {
    Key::new(format!("item:{id}")).tags(tags::tags_of(id))
}

/// The request's cache; with the colo tier on, over the Cache API under the Worker's own origin (the
/// host Cloudflare asks cache keys to use).
fn cache(cx: &Cx) -> Cache<Tr> {
    let cache = Cache::new(Rc::clone(&cx.redis), state());
    if cx.config.lookup.policy.colo_ttl_ms == 0 {
        return cache;
    }
    match Origin::of_url(&cx.url) {
        Ok(origin) => cache.colo(CacheApi::new(&origin.to_string())),
        Err(_) => cache,
    }
}

/// `GET /api/lookup/{id}`: the item, through the cache; the read shares the request's round trip.
pub(crate) struct Get;

impl Handler for Get {
    type Pending = (u64, Pending<Json<Value>>);

    async fn prepare(cx: &Cx, plan: &Plan<'_, Tr>) -> Result<Self::Pending, Problem> {
        let id = parse_id(cx.param("id").unwrap_or_default())?;
        Ok((id, prepare_item(cx, plan, id).await))
    }

    /// A lookup answered by the memory or colo tier needs no Redis, so the route limit leaves it be.
    fn has_redis_work(_: &Cx, (_, pending): &Self::Pending) -> bool {
        !pending.answered_by_tier()
    }

    async fn respond(cx: &Cx, (id, pending): Self::Pending, _: Shared) -> Result<Reply, Problem> {
        let lookup = resolve_item(cx, id, pending).await?;
        let fields = item_fields(cx, id, &lookup);
        if lookup.value.is_some() {
            return json_response(200, &Value::Object(fields));
        }
        let mut problem = Problem::new(404, format!("no item with id {id}"));
        for (name, value) in fields {
            if name != "status" {
                problem = problem.with(&name, value);
            }
        }
        Err(problem)
    }
}

/// Adds the cache read of item `id` to the request's plan, after asking the colo tier when it is on
/// (a hit there adds nothing); the read fails open to the origin after the cache's own deadline.
pub(crate) async fn prepare_item(cx: &Cx, plan: &Plan<'_, Tr>, id: u64) -> Pending<Json<Value>> {
    plan.lookup_colo(&cache(cx), key(id), &cx.config.lookup.policy)
        .await
}

/// Finishes the read of item `id`: served from the cache, or fetched from the origin (and written).
///
/// # Errors
/// 400 for an invalid key; 502 when the origin failed and nothing cached could stand in.
pub(crate) async fn resolve_item(
    cx: &Cx,
    id: u64,
    pending: Pending<Json<Value>>,
) -> Result<Lookup<Json<Value>>, Problem> {
    let runtime = Rc::clone(&cx.runtime);
    let meter = Rc::clone(&cx.meter);
    // After the response: a stale value's refresh (the origin, then one write, announced in
    // `Server-Timing` as `bg`) and colo puts.
    let cache = cache(cx).spawner(move |task| spawn_background(runtime.as_ref(), &meter, 1, task));
    let settings = cx.config.lookup.clone();
    let result = cache
        .resolve(pending.finish(), move || origin(id, settings))
        .await;
    cx.add_timing(
        "cache",
        None,
        Some(match &result {
            Ok(lookup) => lookup.status.as_str(),
            Err(_) => "error",
        }),
    );
    match result {
        Ok(lookup) => Ok(lookup),
        Err(LookupError::InvalidKey(why)) => Err(Problem::bad_request(why)),
        Err(LookupError::Origin(why) | LookupError::Joined(why)) => Err(Problem::new(
            502,
            format!("the origin failed and nothing was cached to serve instead: {why}"),
        )
        .with("id", json!(id))
        .with("origin_calls", json!(state().origin_calls()))),
    }
}

/// What a lookup's response says about it.
pub(crate) fn item_fields(cx: &Cx, id: u64, lookup: &Lookup<Json<Value>>) -> Map<String, Value> {
    let state = state();
    let mut fields = Map::new();
    fields.insert("id".into(), json!(id));
    fields.insert(
        "value".into(),
        lookup.value.as_ref().map_or(Value::Null, |v| v.0.clone()),
    );
    fields.insert("status".into(), json!(lookup.status.as_str()));
    // In a problem body `status` is the HTTP status (RFC 9457), so the lookup's is repeated here.
    fields.insert("cache_status".into(), json!(lookup.status.as_str()));
    fields.insert("took_ms".into(), json!(lookup.took_ms));
    fields.insert("origin_calls".into(), json!(state.origin_calls()));
    let (answered, all) = state.metrics().values().fold((0, 0), |(a, n), m| {
        (a + m.answered_from_cache(), n + m.with_outcome())
    });
    fields.insert(
        "cache_hits".into(),
        json!({ "answered_from_cache": answered, "lookups": all }),
    );
    fields.insert("origin_called".into(), json!(lookup.origin_called));
    fields.insert("origin_failed".into(), json!(lookup.origin_failed));
    fields.insert("from_memory".into(), json!(lookup.from_memory));
    fields.insert("from_colo".into(), json!(lookup.from_colo));
    fields.insert("round_trips".into(), json!(cx.meter.round_trips()));
    fields.insert("breaker".into(), json!(state.breaker_state().as_str()));
    fields
}

/// `DELETE /api/lookup/{id}`: forget one item.
pub(crate) struct Invalidate;

impl Handler for Invalidate {
    type Pending = u64;

    async fn prepare(cx: &Cx, _: &Plan<'_, Tr>) -> Result<u64, Problem> {
        parse_id(cx.param("id").unwrap_or_default())
    }

    async fn respond(cx: &Cx, id: u64, _: Shared) -> Result<Reply, Problem> {
        cache(cx)
            .invalidate(key(id).name())
            .await
            .map_err(invalidation_failed)?;
        json_response(204, &Value::Null)
    }
}

/// `DELETE /api/lookup/tags/{tag}`: forget every item with this tag (one the items carry: see
/// [`tags`]).
pub(crate) struct InvalidateTag;

impl Handler for InvalidateTag {
    type Pending = String;

    async fn prepare(cx: &Cx, _: &Plan<'_, Tr>) -> Result<String, Problem> {
        let tag = cx.param("tag").unwrap_or_default();
        if !tags::is_known(tag) {
            return Err(Problem::bad_request(format!(
                "no item carries this tag; the tags are {}",
                tags::KNOWN
            )));
        }
        Ok(tag.to_owned())
    }

    async fn respond(cx: &Cx, tag: String, _: Shared) -> Result<Reply, Problem> {
        cache(cx)
            .invalidate_tag(&tag)
            .await
            .map_err(invalidation_failed)?;
        json_response(204, &Value::Null)
    }
}

fn invalidation_failed(e: redge::Error) -> Problem {
    if e.is_unavailable() {
        Problem::new(503, format!("the cache could not be invalidated: {e}"))
            .header("retry-after", "1")
    } else {
        Problem::bad_request(e.to_string())
    }
}

/// `GET /api/cache/metrics`: this isolate's cache counters per key group, as JSON.
pub(crate) struct Metrics;

impl Handler for Metrics {
    type Pending = ();

    async fn prepare(_: &Cx, _: &Plan<'_, Tr>) -> Result<(), Problem> {
        Ok(())
    }

    async fn respond(_: &Cx, (): (), _: Shared) -> Result<Reply, Problem> {
        json_response(200, &state().metrics_json())
    }
}

/// The origin: a real upstream when configured, the demo otherwise.
async fn origin(id: u64, settings: LookupSettings) -> Result<Option<Json<Value>>, String> {
    if let Some(base) = &settings.origin_url {
        return runtime::fetch_json(&format!("{base}/{id}"))
            .await
            .map(|found| found.map(Json));
    }
    runtime::sleep_ms(settings.origin_latency_ms).await;
    if runtime::random() < settings.origin_failure_rate {
        return Err("the demo origin failed (DEMO_ORIGIN_FAILURE_RATE)".into());
    }
    if id > DEMO_IDS {
        return Ok(None);
    }
    Ok(Some(Json(json!({
        "id": id,
        "name": format!("Item {id}"),
        "price_cents": (id * 137) % 10_000,
        "fetched_at": SystemClock.now_ms(),
    }))))
}
