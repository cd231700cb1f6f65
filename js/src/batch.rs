//! `Batch`: a session read, rate-limit checks and cache reads for one request, in ONE round trip.
//!
//! Each capability adds its command to the same pipeline (redge's `prepare` forms); `send()` makes the
//! one request, then each finishes on its own terms: the rate limiter applies its failure policy, a
//! session that Redis could not read rejects (`UnavailableError`), and a cache read becomes a
//! `CacheRead`, which the caller resolves only if the request goes on (so a refused request never
//! reaches the origin): a hit needs nothing more, a miss calls the origin and writes.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use js_sys::{Array, Function, Promise};
use redge::cache::{Key, Policy, Read};
use redge::client::Json;
use redge::clock::{Clock, SystemClock};
use redge::plan::Plan;
use redge::ratelimit::RateLimiter as LimiterInner;
use redge::session::SessionStore as Store;
use wasm_bindgen::prelude::*;

use crate::cache::{self, Cache, Tiers};
use crate::client::{Client, Inner as RedisClient};
use crate::convert::{self, JsResult, invalid};
use crate::options::LimitOptions;
use crate::ratelimit::{RateLimiter, selected};
use crate::session::SessionStore;
use crate::shapes;

/// One request's reads, sent together: `loadSession`, `limit` and `lookup` each add one entry and
/// return the batch, so that calls chain; `send()` resolves with one result per entry, in order (a
/// `LoadedSession` or `null`, a `Decision`, a `CacheRead`). A cached hit with a session and a rate limit
/// is one round trip instead of three.
///
/// In TypeScript, `Batch<T>` carries the result type of each entry added through a chain, so that
/// `const [loaded, decision, read] = await client.batch().loadSession(...).limit(...).lookup(...).send()`
/// types each element; a batch filled in separate statements resolves to `BatchResult[]`.
///
/// Every capability must have been built on the client the batch comes from. The batch is sent as
/// redge's request plan: it waits no longer than the shortest deadline of its parts that fail open (a
/// rate limiter's `timeoutMs`, a cache policy's `deadlineMs`), unless it loads a session, which needs
/// the answer (the client's own `timeoutMs` applies). A part past its deadline answers by its failure
/// policy, as it would alone.
#[wasm_bindgen]
pub struct Batch {
    /// Shared by the batch and every handle its add methods return: they are one batch.
    state: Rc<State>,
}

struct State {
    client: Rc<RedisClient>,
    ops: RefCell<Vec<Op>>,
    sent: Cell<bool>,
}

enum Op {
    Session {
        setup: Rc<crate::session::Setup>,
        token: Option<String>,
    },
    Limit {
        limiter: Rc<LimiterInner>,
        identifier: String,
        policies: Vec<String>,
        cost: u32,
        legacy_headers: bool,
    },
    Lookup {
        tiers: Tiers,
        key: Key,
        policy: Policy,
    },
}

#[wasm_bindgen]
impl Client {
    /// An empty batch on this client: see `Batch`.
    #[wasm_bindgen(unchecked_return_type = "Batch<[]>")]
    pub fn batch(&self) -> Batch {
        Batch {
            state: Rc::new(State {
                client: Rc::clone(&self.inner),
                ops: RefCell::new(Vec::new()),
                sent: Cell::new(false),
            }),
        }
    }
}

#[wasm_bindgen]
impl Batch {
    /// Adds the read of the session of `token` (as `SessionStore.load`); returns the batch.
    #[wasm_bindgen(
        js_name = loadSession,
        unchecked_return_type = "Batch<[...T, LoadedSession | null]>"
    )]
    pub fn load_session(
        &self,
        sessions: &SessionStore,
        #[wasm_bindgen(unchecked_param_type = "string | null | undefined")] token: JsValue,
    ) -> JsResult<Batch> {
        self.same_client(&sessions.client, "loadSession: this SessionStore")?;
        let token = convert::optional_string(&token, "loadSession: token")?;
        self.push(Op::Session {
            setup: Rc::clone(&sessions.setup),
            token,
        })
    }

    /// Adds a rate-limit check (as `RateLimiter.limit`); returns the batch.
    #[wasm_bindgen(unchecked_return_type = "Batch<[...T, Decision]>")]
    pub fn limit(
        &self,
        limiter: &RateLimiter,
        #[wasm_bindgen(unchecked_param_type = "string")] identifier: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "LimitOptions")] options: JsValue,
    ) -> JsResult<Batch> {
        self.same_client(&limiter.client, "limit: this RateLimiter")?;
        let identifier = convert::string(&identifier, "limit: identifier")?;
        let o: LimitOptions = convert::options(options, "limit options", true)?;
        let policies = selected(&limiter.inner, o.policies, "limit options")?;
        self.push(Op::Limit {
            limiter: Rc::clone(&limiter.inner),
            identifier,
            policies,
            cost: o.cost.unwrap_or(1),
            legacy_headers: limiter.legacy_headers,
        })
    }

    /// Adds the read of a cached lookup; its result is a `CacheRead`, to `resolve(origin)` once the
    /// request is known to go on. Returns the batch.
    #[wasm_bindgen(unchecked_return_type = "Batch<[...T, CacheRead]>")]
    pub fn lookup(
        &self,
        cache: &Cache,
        #[wasm_bindgen(unchecked_param_type = "CacheKey")] key: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "CachePolicy")] policy: JsValue,
    ) -> JsResult<Batch> {
        self.same_client(&cache.client, "lookup: this Cache")?;
        let (key, policy) = cache::key_and_policy(&key, policy)?;
        self.push(Op::Lookup {
            tiers: cache.tiers.clone(),
            key,
            policy,
        })
    }

    /// How many entries were added.
    #[wasm_bindgen(getter)]
    pub fn length(&self) -> u32 {
        u32::try_from(self.state.ops.borrow().len()).unwrap_or(u32::MAX)
    }

    /// Sends every entry in one round trip and resolves with their results, in order. Rejects with
    /// the first failure (a session Redis could not read, a cost above a policy's capacity), as
    /// `Promise.all` would; a rate-limit check never fails because Redis did, and a cache read never
    /// does (a failed one resolves as `bypass`). A batch is sent once.
    #[wasm_bindgen(unchecked_return_type = "Promise<T extends [] ? BatchResult[] : T>")]
    pub fn send(&self) -> Promise {
        let state = &self.state;
        let already = state.sent.replace(true);
        let ops = std::mem::take(&mut *state.ops.borrow_mut());
        let client = Rc::clone(&state.client);
        convert::promise(async move {
            if already {
                return Err(invalid(
                    "send",
                    "this batch was already sent; make a new one",
                ));
            }
            run(&client, ops).await
        })
    }
}

impl Batch {
    /// Adds `op` and returns another handle on this batch, for chaining.
    fn push(&self, op: Op) -> JsResult<Batch> {
        if self.state.sent.get() {
            return Err(invalid(
                "Batch",
                "this batch was already sent; make a new one",
            ));
        }
        self.state.ops.borrow_mut().push(op);
        Ok(Batch {
            state: Rc::clone(&self.state),
        })
    }

    fn same_client(&self, other: &Rc<RedisClient>, what: &str) -> JsResult<()> {
        if Rc::ptr_eq(&self.state.client, other) {
            Ok(())
        } else {
            Err(invalid(
                what,
                "was built on another Client; take the batch from that client",
            ))
        }
    }
}

/// What an entry added to the shared pipeline.
enum Prepared<'l> {
    Session {
        store: Store<'l, redge::client::FetchTransport>,
        token: Option<String>,
        pending: redge::session::Pending<Option<redge::session::Loaded>>,
    },
    Limit {
        limiter: &'l LimiterInner,
        pending: redge::Result<redge::ratelimit::Pending<'l, SystemClock>>,
        legacy_headers: bool,
    },
    Lookup {
        tiers: Tiers,
        pending: redge::cache::Pending<Json<serde_json::Value>>,
    },
}

async fn run(client: &Rc<RedisClient>, ops: Vec<Op>) -> JsResult<JsValue> {
    let plan = Plan::new(client);
    let mut prepared = Vec::with_capacity(ops.len());
    for op in &ops {
        prepared.push(match op {
            Op::Session { setup, token } => {
                let store = setup.open(client);
                let pending = plan.load_session(&store, token.as_deref().unwrap_or(""));
                Prepared::Session {
                    store,
                    token: token.clone(),
                    pending,
                }
            }
            Op::Limit {
                limiter,
                identifier,
                policies,
                cost,
                legacy_headers,
            } => {
                let subjects: Vec<(&str, &str)> = policies
                    .iter()
                    .map(|p| (p.as_str(), identifier.as_str()))
                    .collect();
                Prepared::Limit {
                    limiter,
                    pending: plan.limit(limiter, &subjects, *cost),
                    legacy_headers: *legacy_headers,
                }
            }
            Op::Lookup { tiers, key, policy } => {
                let cache = tiers.open(client);
                // A fresh colo entry adds nothing to the round trip; the colo is asked (a local Cache
                // API read) only when the cache and the policy have that tier.
                Prepared::Lookup {
                    tiers: tiers.clone(),
                    pending: plan.lookup_colo(&cache, key.clone(), policy).await,
                }
            }
        });
    }
    let now = SystemClock.now_ms();
    // One round trip; each entry reads its own outcome (an error is also what its handle reports).
    let _ = plan.send().await;
    let out = Array::new();
    for p in prepared {
        let value = match p {
            Prepared::Session {
                store,
                token,
                pending,
            } => match pending.finish().map_err(|e| convert::redge_error(&e))? {
                None => JsValue::NULL,
                Some(loaded) => {
                    let cookie = token
                        .as_deref()
                        .and_then(|t| store.refresh_cookie(t, &loaded.session));
                    convert::to_value(&shapes::loaded(&loaded, cookie))?
                }
            },
            Prepared::Limit {
                limiter,
                pending,
                legacy_headers,
            } => {
                let decision = pending.map_err(|e| convert::redge_error(&e))?.finish();
                let background = crate::ratelimit::background(client, limiter);
                crate::ratelimit::decision_value(&decision, now, legacy_headers, background)?
            }
            Prepared::Lookup { tiers, pending } => {
                let read = pending.finish();
                CacheRead {
                    client: Rc::clone(client),
                    tiers,
                    status: read.status().as_str(),
                    read: RefCell::new(Some(read)),
                }
                .into()
            }
        };
        out.push(&value);
    }
    Ok(out.into())
}

/// A cache read made by a `Batch`: `status` says what Redis had (`hit`, `stale`, `negative`, `miss`,
/// `bypass`); `resolve(origin)` completes the lookup as `Cache.getOrFetch` would, calling the origin
/// only when nothing usable was cached.
#[wasm_bindgen]
pub struct CacheRead {
    client: Rc<RedisClient>,
    tiers: Tiers,
    status: &'static str,
    read: RefCell<Option<Read<Json<serde_json::Value>>>>,
}

#[wasm_bindgen]
impl CacheRead {
    /// What the read found, before any origin call.
    #[wasm_bindgen(
        getter,
        unchecked_return_type = "\"hit\" | \"miss\" | \"stale\" | \"negative\" | \"bypass\""
    )]
    pub fn status(&self) -> String {
        self.status.to_owned()
    }

    /// Completes the lookup: a hit is served as is; otherwise `origin()` is awaited (see
    /// `Cache.getOrFetch`, also for `ctx`) and its value written. Resolves once.
    #[wasm_bindgen(unchecked_return_type = "Promise<Lookup>")]
    pub fn resolve(
        &self,
        #[wasm_bindgen(unchecked_param_type = "() => unknown")] origin: JsValue,
        #[wasm_bindgen(
            unchecked_optional_param_type = "{ waitUntil(promise: Promise<unknown>): void }"
        )]
        ctx: JsValue,
    ) -> Promise {
        // A bad origin leaves the read in place, so that a corrected call can still resolve it.
        let origin = match origin.dyn_into::<Function>() {
            Ok(origin) => origin,
            Err(v) => {
                let why = format!("expected an async function, got {}", convert::type_name(&v));
                return Promise::reject(&invalid("resolve: origin", why));
            }
        };
        let read = self.read.borrow_mut().take();
        let cache = self.tiers.open(&self.client);
        convert::promise(async move {
            let Some(read) = read else {
                return Err(invalid("resolve", "this read was already resolved"));
            };
            let cache = cache::with_spawner(cache, &ctx);
            let lookup = cache
                .resolve(read, move || cache::call_origin(origin))
                .await
                .map_err(cache::lookup_error)?;
            convert::to_value(&shapes::lookup(lookup))
        })
    }
}
