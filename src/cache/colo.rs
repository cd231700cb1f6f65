//! The colo tier: fresh values kept in the location's HTTP cache (on Cloudflare, the Workers Cache API,
//! `caches.default`), between this isolate's memory tier and Redis, so that a hit costs no round trip.
//!
//! # Why a tier, and what it costs
//!
//! The memory tier lives in one isolate; a location runs many, and each would ask Redis for the same hot
//! key. The Cache API is shared by every isolate of the zone in one data centre and answers from that
//! data centre, so one Redis read fills it for all of them. The price is consistency: a colo read skips
//! Redis, so it cannot see an invalidation that happened there. The tier is therefore opt-in
//! ([`Policy::colo_ttl_ms`], 0 = off) and every entry carries its own limit.
//!
//! # The bound
//!
//! A colo entry is served only until `colo_ttl_ms` after the moment its value was last confirmed by
//! Redis (the start of the read that found it, or of the read whose miss fetched it from the origin),
//! and never past the value's own fresh time. Any change made in Redis at time `T` (a
//! [`delete`](super::Cache::delete), a [`set`](super::Cache::set), an
//! [`update`](super::Cache::update), an [`invalidate_tag`](super::Cache::invalidate_tag), made by any
//! isolate anywhere) is therefore seen by every colo reader from `T + colo_ttl_ms` on: an entry served
//! later was confirmed after `T`. The bound is on the readers' clocks (`Date.now()` of the machines of one
//! data centre, which agree to well under the bound).
//!
//! Inside that bound the isolate that makes a change does better, at no cost: a `delete`, `set` or
//! `update` of a key deletes that key's colo entry (in its own data centre), and every change leaves a
//! *fence* in the isolate: colo entries confirmed at or before it are misses there. A tag cannot be
//! looked up in the Cache API (entries are listed by URL only), so `invalidate_tag` fences every entry
//! in this isolate and relies on the bound everywhere else.
//!
//! # What is stored
//!
//! Under `<base>/.redge-colo/<name>`, where `name` is the SHA-256 of the Redis URL and the entry's key
//! (two deployments on one zone with different Redis databases never share entries), a response with
//! `Cache-Control: max-age=<s>` (whole seconds, rounded up: the Cache API has no finer unit) whose body
//! is one header line and the Redis envelope:
//!
//! ```text
//! rco1 <confirmed ms> <until ms> <name>\n<the envelope, as in Redis>
//! ```
//!
//! The reader trusts its own `until` (milliseconds), not `max-age`. An entry that does not decode,
//! carries another name (foreign), another tag count, a negative envelope, or is past its `until`,
//! its value's fresh time or the current policy's `colo_ttl_ms`, is a miss: the lookup reads Redis as
//! if the tier were not there, and puts what it finds back.
//!
//! # workerd and the edge
//!
//! `wrangler dev` 4.86 (workerd with Miniflare's cache service) implements `caches.default` as the edge
//! does: `put` then `match` by URL, expiry by `max-age` (in whole seconds), `delete` answering whether an
//! entry existed, entries shared by every isolate of the local runtime (a reload keeps them; they are
//! persisted under `.wrangler/state`), a response without `Cache-Control` not stored. At the edge the
//! Cache API only works on a custom domain: on `*.workers.dev`, in the dashboard's preview and behind
//! Cloudflare Access its operations do nothing, so every colo read is a miss and the lookup costs what
//! it costs without the tier (one local call more). Cloudflare asks for cache keys on the Worker's own
//! host, which is why [`CacheApi`] takes the base URL.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

use sha2::{Digest, Sha256};

use super::envelope::Envelope;
use super::policy::{Freshness, Policy, freshness};

/// The longest [`Policy::colo_ttl_ms`]: the staleness a colo reader may see is this tier's whole
/// price, so it stays short.
pub const MAX_COLO_TTL_MS: u64 = 300_000;

/// The schema of the colo header; a bump turns old entries into misses.
const SCHEMA: &str = "rco1";

/// The most per-key fences an isolate keeps; past it, one fence covers every key.
const MAX_FENCES: usize = 1_024;

/// A colo operation in flight.
pub type ColoFuture<T> = Pin<Box<dyn Future<Output = T>>>;

/// Where the colo tier keeps entries: a per-location HTTP cache. [`CacheApi`] is the Workers Cache API;
/// tests use a map. Entries are named by the cache (a hex string); the store maps a name to its own key.
pub trait ColoStore {
    /// The body stored under `name`; `None` when there is none or the store failed (a miss either way).
    fn get(&self, name: &str) -> ColoFuture<Option<String>>;

    /// Stores `body` under `name` for at most `max_age_s` seconds.
    fn put(&self, name: &str, body: String, max_age_s: u64) -> ColoFuture<Result<(), String>>;

    /// Deletes the entry under `name`, if any.
    fn delete(&self, name: &str) -> ColoFuture<Result<(), String>>;
}

/// The name of an entry's colo copy: the hex SHA-256 of the Redis URL and the entry key.
pub(super) fn name(redis_url: &str, entry_key: &str) -> String {
    let mut hash = Sha256::new();
    hash.update(redis_url.as_bytes());
    hash.update([0]);
    hash.update(entry_key.as_bytes());
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Until when a value confirmed by Redis at `confirmed` may be served from the colo.
pub(super) fn until(confirmed: u64, envelope: &Envelope, policy: &Policy) -> u64 {
    confirmed
        .saturating_add(policy.colo_ttl_ms.min(MAX_COLO_TTL_MS))
        .min(envelope.fresh_until)
}

/// The `max-age` that keeps an entry until `until`: whole seconds, rounded up, at least 1.
pub(super) fn max_age_s(until: u64, now: u64) -> u64 {
    until.saturating_sub(now).div_ceil(1_000).max(1)
}

/// The stored body of a colo entry.
pub(super) fn encode(name: &str, confirmed: u64, until: u64, envelope: &Envelope) -> String {
    format!("{SCHEMA} {confirmed} {until} {name}\n{}", envelope.encode())
}

/// What a colo entry is worth to a reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Servable until `until`.
    Serve { envelope: Envelope, until: u64 },
    /// No entry.
    Absent,
    /// Not a colo entry of this schema, or its envelope does not decode.
    Corrupt,
    /// Another key's entry, another tag list, or a negative envelope (never written here).
    Foreign,
    /// Past its `until`, the value's fresh time or the policy's `colo_ttl_ms`, or confirmed at or before
    /// a fence of this isolate.
    Outdated,
}

/// What the colo entry `stored` is worth at `now` to a lookup of the key named `name` with `tags` tags,
/// under `policy`, in an isolate whose fence for the key is `fence`. The one place that decides.
pub(super) fn verdict(
    stored: Option<&[u8]>,
    name: &str,
    tags: usize,
    fence: u64,
    now: u64,
    policy: &Policy,
) -> Verdict {
    let Some(stored) = stored else {
        return Verdict::Absent;
    };
    let Some((confirmed, until, stored_name, envelope)) = decode(stored) else {
        return Verdict::Corrupt;
    };
    if stored_name != name || envelope.generations.len() != tags || envelope.is_negative() {
        return Verdict::Foreign;
    }
    let policy_until = confirmed.saturating_add(policy.colo_ttl_ms.min(MAX_COLO_TTL_MS));
    let fresh = freshness(envelope.fresh_until, now, policy) == Freshness::Fresh;
    if confirmed <= fence || now >= until || now >= policy_until || !fresh {
        return Verdict::Outdated;
    }
    Verdict::Serve { envelope, until }
}

fn decode(stored: &[u8]) -> Option<(u64, u64, &str, Envelope)> {
    let text = std::str::from_utf8(stored).ok()?;
    let (header, envelope) = text.split_once('\n')?;
    let mut fields = header.split(' ');
    if fields.next()? != SCHEMA {
        return None;
    }
    let confirmed = fields.next()?.parse().ok()?;
    let until = fields.next()?.parse().ok()?;
    let name = fields.next()?;
    if fields.next().is_some() {
        return None;
    }
    let envelope = Envelope::decode(envelope.as_bytes()).ok()?;
    Some((confirmed, until, name, envelope))
}

/// The changes this isolate made: colo entries confirmed at or before a fence are misses here. Bounded:
/// past [`MAX_FENCES`] keys, fences older than [`MAX_COLO_TTL_MS`] go (their entries have expired), and if
/// that is not enough one fence for every key replaces them (more misses, never a stale answer).
#[derive(Debug, Default)]
pub(super) struct Fences {
    inner: RefCell<FenceSet>,
}

#[derive(Debug, Default)]
struct FenceSet {
    every_key: u64,
    keys: HashMap<String, u64>,
}

impl Fences {
    /// Fences every key at `now` (a tag invalidation, a purge).
    pub(super) fn every_key(&self, now: u64) {
        let mut inner = self.inner.borrow_mut();
        inner.every_key = inner.every_key.max(now);
        inner.keys.clear();
    }

    /// Fences the key named `name` at `now`.
    pub(super) fn key(&self, name: &str, now: u64) {
        let mut inner = self.inner.borrow_mut();
        if inner.keys.len() >= MAX_FENCES && !inner.keys.contains_key(name) {
            let horizon = now.saturating_sub(MAX_COLO_TTL_MS);
            inner.keys.retain(|_, at| *at > horizon);
            if inner.keys.len() >= MAX_FENCES {
                inner.every_key = inner.every_key.max(now);
                inner.keys.clear();
                return;
            }
        }
        let at = inner.keys.entry(name.to_owned()).or_default();
        *at = (*at).max(now);
    }

    /// The fence in force for the key named `name`.
    pub(super) fn of(&self, name: &str) -> u64 {
        let inner = self.inner.borrow();
        inner
            .keys
            .get(name)
            .copied()
            .unwrap_or(0)
            .max(inner.every_key)
    }
}

/// The Workers Cache API (`caches.default`) as a [`ColoStore`]. Entries live under
/// `<base>/.redge-colo/<name>`; pass the Worker's own origin (`https://api.example.com`) as `base`, as
/// Cloudflare asks for keys on the Worker's host. Where the runtime has no `caches.default` (Node,
/// natively) every read is a miss and every write fails, without a panic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheApi {
    prefix: String,
}

impl CacheApi {
    /// The Cache API, with keys under `base` (an origin such as `https://api.example.com`).
    pub fn new(base: &str) -> Self {
        CacheApi {
            prefix: format!("{}/.redge-colo/", base.trim_end_matches('/')),
        }
    }

    /// The URL an entry named `name` is stored under.
    pub fn url(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl ColoStore for CacheApi {
    fn get(&self, _: &str) -> ColoFuture<Option<String>> {
        Box::pin(async { None })
    }

    fn put(&self, _: &str, _: String, _: u64) -> ColoFuture<Result<(), String>> {
        Box::pin(async { Err(NO_CACHE_API.to_owned()) })
    }

    fn delete(&self, _: &str) -> ColoFuture<Result<(), String>> {
        Box::pin(async { Err(NO_CACHE_API.to_owned()) })
    }
}

#[cfg(not(target_arch = "wasm32"))]
const NO_CACHE_API: &str = "the Cache API exists only in a JavaScript runtime (wasm32)";

#[cfg(target_arch = "wasm32")]
mod js {
    use js_sys::{Array, Function, Promise, Reflect};
    use wasm_bindgen::{JsCast, JsValue};
    use wasm_bindgen_futures::JsFuture;

    use super::{CacheApi, ColoFuture, ColoStore};

    /// `caches.default`, when the runtime has one.
    fn default_cache() -> Result<JsValue, String> {
        let caches = Reflect::get(&js_sys::global(), &JsValue::from_str("caches"))
            .ok()
            .filter(|c| c.is_object())
            .ok_or("this runtime has no Cache API (caches)")?;
        Reflect::get(&caches, &JsValue::from_str("default"))
            .ok()
            .filter(|c| c.is_object())
            .ok_or_else(|| "this runtime has no caches.default".to_owned())
    }

    /// Calls `caches.default.<method>(args...)` and waits for its promise.
    async fn call(method: &str, args: Array) -> Result<JsValue, String> {
        let describe = |e: JsValue| {
            Reflect::get(&e, &JsValue::from_str("message"))
                .ok()
                .and_then(|m| m.as_string())
                .unwrap_or_else(|| format!("caches.default.{method} failed"))
        };
        let cache = default_cache()?;
        let function: Function = Reflect::get(&cache, &JsValue::from_str(method))
            .map_err(describe)?
            .dyn_into()
            .map_err(|_| format!("caches.default.{method} is not a function"))?;
        let promise: Promise = function
            .apply(&cache, &args)
            .map_err(describe)?
            .dyn_into()
            .map_err(|_| format!("caches.default.{method} returned no promise"))?;
        JsFuture::from(promise).await.map_err(describe)
    }

    impl ColoStore for CacheApi {
        fn get(&self, name: &str) -> ColoFuture<Option<String>> {
            let url = self.url(name);
            Box::pin(async move {
                let found = call("match", Array::of1(&JsValue::from_str(&url)))
                    .await
                    .ok()?;
                let response: web_sys::Response = found.dyn_into().ok()?;
                let text = JsFuture::from(response.text().ok()?).await.ok()?;
                text.as_string()
            })
        }

        fn put(&self, name: &str, body: String, max_age_s: u64) -> ColoFuture<Result<(), String>> {
            let url = self.url(name);
            Box::pin(async move {
                let describe = |_| "the colo entry could not be built".to_owned();
                let headers = web_sys::Headers::new().map_err(describe)?;
                headers
                    .set("cache-control", &format!("max-age={max_age_s}"))
                    .map_err(describe)?;
                headers
                    .set("content-type", "text/plain; charset=utf-8")
                    .map_err(describe)?;
                let init = web_sys::ResponseInit::new();
                init.set_headers(&headers);
                let response = web_sys::Response::new_with_opt_str_and_init(Some(&body), &init)
                    .map_err(describe)?;
                call("put", Array::of2(&JsValue::from_str(&url), &response))
                    .await
                    .map(drop)
            })
        }

        fn delete(&self, name: &str) -> ColoFuture<Result<(), String>> {
            let url = self.url(name);
            Box::pin(async move {
                call("delete", Array::of1(&JsValue::from_str(&url)))
                    .await
                    .map(drop)
            })
        }
    }
}

/// A colo in memory for tests: a map from name to body, with the time each was put and the `max-age`
/// asked for.
#[cfg(test)]
#[derive(Debug, Default, Clone)]
pub(super) struct FakeColo {
    pub(super) entries: std::rc::Rc<RefCell<HashMap<String, (String, u64)>>>,
    pub(super) puts: std::rc::Rc<std::cell::Cell<u32>>,
}

#[cfg(test)]
impl ColoStore for FakeColo {
    fn get(&self, name: &str) -> ColoFuture<Option<String>> {
        let (entries, name) = (self.entries.clone(), name.to_owned());
        Box::pin(async move { entries.borrow().get(&name).map(|(b, _)| b.clone()) })
    }

    fn put(&self, name: &str, body: String, max_age_s: u64) -> ColoFuture<Result<(), String>> {
        let (entries, puts, name) = (self.entries.clone(), self.puts.clone(), name.to_owned());
        Box::pin(async move {
            puts.set(puts.get() + 1);
            entries.borrow_mut().insert(name, (body, max_age_s));
            Ok(())
        })
    }

    fn delete(&self, name: &str) -> ColoFuture<Result<(), String>> {
        let (entries, name) = (self.entries.clone(), name.to_owned());
        Box::pin(async move {
            entries.borrow_mut().remove(&name);
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::envelope::Kind;

    fn envelope(fresh_until: u64, generations: Vec<u64>) -> Envelope {
        Envelope {
            created: 1_000,
            fresh_until,
            kind: Kind::Text,
            generations,
            payload: "v\nw".into(),
        }
    }

    fn policy() -> Policy {
        Policy::new("g").ttl_ms(60_000).colo_ttl_ms(2_000)
    }

    #[test]
    fn an_entry_round_trips_and_is_served_inside_its_bound_only() {
        let name = name("https://redis.example", "cache:v:k");
        assert_eq!(name.len(), 64);
        let e = envelope(61_000, vec![3]);
        let until = until(10_000, &e, &policy());
        assert_eq!(until, 12_000, "confirmed + colo_ttl_ms");
        let stored = encode(&name, 10_000, until, &e);
        let at = |now, fence| verdict(Some(stored.as_bytes()), &name, 1, fence, now, &policy());
        assert_eq!(
            at(11_999, 0),
            Verdict::Serve {
                envelope: e.clone(),
                until
            }
        );
        assert_eq!(at(12_000, 0), Verdict::Outdated, "until is exclusive");
        assert_eq!(at(11_000, 10_000), Verdict::Outdated, "fenced at the read");
        assert!(matches!(at(11_000, 9_999), Verdict::Serve { .. }));
        let shorter = policy().colo_ttl_ms(500);
        assert_eq!(
            verdict(Some(stored.as_bytes()), &name, 1, 0, 10_500, &shorter),
            Verdict::Outdated,
            "a shorter policy applies to entries already stored"
        );
        assert_eq!(verdict(None, &name, 1, 0, 0, &policy()), Verdict::Absent);
    }

    #[test]
    fn the_value_s_own_freshness_caps_the_colo() {
        let e = envelope(10_500, vec![]);
        assert_eq!(until(10_000, &e, &policy()), 10_500);
        let stored = encode("n", 10_000, 12_000, &e);
        let at = |now| verdict(Some(stored.as_bytes()), "n", 0, 0, now, &policy());
        assert!(matches!(at(10_499), Verdict::Serve { .. }));
        assert_eq!(at(10_500), Verdict::Outdated, "stale values go to Redis");
        let huge = Policy::new("g").ttl_ms(u64::MAX).colo_ttl_ms(u64::MAX);
        assert_eq!(huge.colo_ttl_ms, MAX_COLO_TTL_MS);
        assert_eq!(
            until(u64::MAX - 1, &envelope(u64::MAX, vec![]), &huge),
            u64::MAX
        );
    }

    #[test]
    fn max_age_rounds_up_to_whole_seconds() {
        assert_eq!(max_age_s(12_000, 10_000), 2);
        assert_eq!(max_age_s(12_001, 10_000), 3);
        assert_eq!(max_age_s(10_001, 10_000), 1);
        assert_eq!(max_age_s(9_000, 10_000), 1);
    }

    #[test]
    fn corrupt_foreign_and_negative_entries_are_misses_never_a_panic() {
        let ok = encode("n", 1, 2_000, &envelope(60_000, vec![1]));
        let negative = Envelope {
            kind: Kind::Negative,
            payload: String::new(),
            ..envelope(60_000, vec![1])
        };
        let cases: [(&[u8], Verdict); 11] = [
            (b"", Verdict::Corrupt),
            (b"a plain response body", Verdict::Corrupt),
            (b"rco0 1 2000 n\nrc1 1 60000 t 1\nv", Verdict::Corrupt),
            (b"rco1 1 2000\nrc1 1 60000 t 1\nv", Verdict::Corrupt),
            (b"rco1 1 2000 n extra\nrc1 1 60000 t 1\nv", Verdict::Corrupt),
            (b"rco1 x 2000 n\nrc1 1 60000 t 1\nv", Verdict::Corrupt),
            (b"rco1 1 2000 n\nnot an envelope", Verdict::Corrupt),
            (&[0xff, b'\n'], Verdict::Corrupt),
            (b"rco1 1 2000 other\nrc1 1 60000 t 1\nv", Verdict::Foreign),
            (b"rco1 1 2000 n\nrc1 1 60000 t 1,2\nv", Verdict::Foreign),
            (
                encode("n", 1, 2_000, &negative).into_bytes().leak(),
                Verdict::Foreign,
            ),
        ];
        for (stored, expected) in cases {
            let got = verdict(Some(stored), "n", 1, 0, 1_000, &policy());
            assert_eq!(got, expected, "{:?}", String::from_utf8_lossy(stored));
        }
        assert!(matches!(
            verdict(Some(ok.as_bytes()), "n", 1, 0, 1_000, &policy()),
            Verdict::Serve { .. }
        ));
    }

    #[test]
    fn fences_are_per_key_bounded_and_never_lost() {
        let f = Fences::default();
        assert_eq!(f.of("a"), 0);
        f.key("a", 100);
        f.key("a", 50);
        assert_eq!((f.of("a"), f.of("b")), (100, 0), "a fence never moves back");
        f.every_key(200);
        assert_eq!((f.of("a"), f.of("b")), (200, 200));
        f.key("a", 300);
        assert_eq!((f.of("a"), f.of("b")), (300, 200));

        let f = Fences::default();
        for i in 0..MAX_FENCES as u64 {
            f.key(&format!("k{i}"), 1_000 + i);
        }
        assert_eq!(f.of("k5"), 1_005);
        // Full, and none is old enough to drop: one fence for every key, at the newest time.
        f.key("new", 2_000);
        assert!(f.of("k5") >= 1_005 && f.of("new") >= 2_000 && f.of("other") == 2_000);
        // Full again later: the fences past the longest colo TTL make room.
        let f = Fences::default();
        for i in 0..MAX_FENCES as u64 {
            f.key(&format!("k{i}"), 1_000);
        }
        f.key("late", 1_000 + MAX_COLO_TTL_MS + 1);
        assert_eq!((f.of("late"), f.of("k1")), (1_000 + MAX_COLO_TTL_MS + 1, 0));
    }

    #[cfg(not(target_arch = "wasm32"))]
    #[test]
    fn the_cache_api_store_names_urls_on_the_given_host_and_misses_natively() {
        let api = CacheApi::new("https://api.example.com/");
        assert_eq!(api.url("ab"), "https://api.example.com/.redge-colo/ab");
        assert_eq!(pollster::block_on(api.get("ab")), None);
        assert!(pollster::block_on(api.put("ab", "x".into(), 1)).is_err());
        assert!(pollster::block_on(api.delete("ab")).is_err());
        assert_ne!(name("https://a", "k"), name("https://b", "k"));
        assert_ne!(name("https://a", "k"), name("https://a", "l"));
    }
}
