//! [`Cache::update`]: an atomic read-modify-write of a cached value, by optimistic compare-and-set,
//! and the per-key queues that keep an isolate's own updates from racing each other.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::LazyLock;

use futures_util::lock::Mutex;

use super::entry::payload_within_cap;
use super::envelope::{CacheValue, Envelope};
use super::lookup::{Ctx, parse_generation};
use super::policy::{Freshness, Policy, Standing, freshness, standing};
use super::{Cache, Key};
use crate::client::{Reply, Script, Transport};
use crate::{Error, Result};

/// The most compare-and-set attempts one [`Cache::update`] makes. Only other isolates can make an
/// attempt lose (this isolate's updates of a key queue), and each attempt starts from the entry the
/// lost one was answered with, so with `k` isolates updating one key at once an attempt loses with a
/// chance of about `(k - 1) / k`: with four, 32 attempts all lose about once in 10 000 updates, and
/// giving up there bounds the caller's wait to 33 round trips.
pub const MAX_UPDATE_ATTEMPTS: u32 = 32;

/// What [`Cache::update`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Updated<V> {
    /// The closure's value was written in place of the one it was given.
    Written(V),
    /// The closure returned `None`: the entry was left as it is; this is its value.
    Kept(V),
    /// There was no value to update: nothing cached, an expired entry, a remembered "not found", one
    /// written before a tag was invalidated, or one that does not decode as `V`. The closure was not
    /// called and nothing was written.
    NotCached,
}

/// The compare-and-set behind [`Cache::update`]; see `scripts/update.lua`.
static UPDATE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("scripts/update.lua")));

/// The script behind [`Cache::update`].
pub(super) fn update_script() -> &'static Script {
    &UPDATE
}

/// An entry as this isolate last wrote it: the replies an `MGET` of the entry and its tags would give.
#[derive(Debug)]
pub(super) struct Written {
    tags: Vec<String>,
    replies: Vec<Option<Vec<u8>>>,
}

pub(super) type Queue = Rc<Mutex<Option<Written>>>;

/// The queues of updates per entry key in this isolate. A queue lives while an update of its key runs
/// or waits, and the entry it last wrote lives with it: an update that finds no queue reads Redis.
#[derive(Debug, Default)]
pub(super) struct Queues {
    map: RefCell<HashMap<String, Queue>>,
}

/// A place in a key's queue; the queue goes when its last place does.
pub(super) struct Place<'a> {
    queues: &'a Queues,
    key: &'a str,
    pub(super) queue: Queue,
}

impl Queues {
    pub(super) fn join<'a>(&'a self, key: &'a str) -> Place<'a> {
        let queue = Rc::clone(self.map.borrow_mut().entry(key.to_owned()).or_default());
        Place {
            queues: self,
            key,
            queue,
        }
    }

    /// How many keys have updates running or waiting.
    #[cfg(all(test, not(target_arch = "wasm32")))]
    pub(super) fn len(&self) -> usize {
        self.map.borrow().len()
    }
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        let mut map = self.queues.map.borrow_mut();
        // Only the map and this place hold the queue: nobody else is running or waiting.
        if Rc::strong_count(&self.queue) <= 2
            && map
                .get(self.key)
                .is_some_and(|q| Rc::ptr_eq(q, &self.queue))
        {
            map.remove(self.key);
        }
    }
}

impl<T: Transport + 'static> Cache<T> {
    /// Changes the value cached under `key` in place: `change` gets the current value and returns the
    /// new one (`None` leaves the entry as it is). Atomic with respect to every other writer: concurrent
    /// updates, from this isolate or others, each apply to the value the previous one wrote.
    ///
    /// - **Fresh or stale value**: changed. The entry keeps its creation time, fresh-until time, tags and
    ///   remaining TTL: an update is not a new answer from the origin, so it neither makes a stale value
    ///   fresh nor delays the refresh that replaces it; until then, a stale value served during the grace
    ///   window includes the change. To cache a value with a new TTL, use [`Cache::set`].
    /// - **Nothing usable** (absent, expired, invalidated by a tag, a remembered "not found", another
    ///   kind): [`Updated::NotCached`]; the closure is not called, nothing is written, and this
    ///   isolate's memory copy is dropped. An update never invents a value: fill the entry with
    ///   [`Cache::set`] or [`Cache::get_or_fetch`].
    ///
    /// `change` may run more than once (again after each lost race, on the newer value), so it should
    /// compute from its argument only.
    ///
    /// # Why optimistic concurrency
    ///
    /// `change` cannot run inside Redis, and the HTTP protocol holds no connection on which a `WATCH`
    /// could wait. So an update reads the entry, applies `change` locally, and writes the result with a
    /// compare-and-set script that writes only if the entry's bytes (compared by SHA1) and its tags'
    /// generations are still what was read. When another writer got there first, the script writes
    /// nothing and answers the entry as it is now, and `change` runs again on that: no change is lost,
    /// and a retry needs no read of its own.
    ///
    /// # Round trips
    ///
    /// Updates of one key within an isolate queue behind each other (they would only make each other
    /// lose), and each hands the next the entry it wrote, which the next uses in place of a read (the
    /// compare-and-set checks it anyway). An update costs two round trips (read, compare-and-set) when
    /// no other update of the key is running in the isolate, one when it queued behind one, plus one per
    /// race lost to another isolate; after [`MAX_UPDATE_ATTEMPTS`] lost races it gives up.
    ///
    /// ```no_run
    /// # async fn run<T: redge::client::Transport + 'static>(cache: redge::cache::Cache<T>) -> redge::Result<()> {
    /// use redge::cache::{Policy, Updated};
    /// use redge::client::Json;
    ///
    /// let policy = Policy::new("balances").ttl_ms(30_000);
    /// // Take 500 from the cached balance, unless that would make it negative.
    /// let outcome = cache
    ///     .update("balance:42", &policy, |Json(cents): &Json<i64>| {
    ///         (*cents >= 500).then(|| Json(cents - 500))
    ///     })
    ///     .await?;
    /// match outcome {
    ///     Updated::Written(Json(cents)) => println!("now {cents}"),
    ///     Updated::Kept(Json(cents)) => println!("only {cents}: unchanged"),
    ///     Updated::NotCached => println!("not cached: nothing to change"),
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an unusable key or tag, or a new value that cannot be encoded;
    /// [`Error::TooLarge`] for a new value over the policy's size cap (nothing written);
    /// [`Error::Conflict`] after [`MAX_UPDATE_ATTEMPTS`] lost races; [`Error::Timeout`] past the
    /// policy's deadline for one round trip; any Redis error. After a timeout or a transport error
    /// during the compare-and-set it is unknown whether the write happened, so it is never retried:
    /// a second try would apply the change twice.
    pub async fn update<V, F>(
        &self,
        key: impl Into<Key>,
        policy: &Policy,
        mut change: F,
    ) -> Result<Updated<V>>
    where
        V: CacheValue,
        F: FnMut(&V) -> Option<V>,
    {
        let mut ctx = self.context(key.into(), policy)?;
        let entry_key = ctx.entry_key.clone();
        let place = self.state.updates.join(&entry_key);
        let mut last_written = place.queue.lock().await;
        // The entry as the update before us in the queue wrote it: a guess that saves a read (the
        // compare-and-set checks it). Taken, so that it is gone if this update fails half way.
        let guess = last_written.take().filter(|w| w.tags == ctx.key.tag_list());
        let mut guessed = guess.is_some();
        let mut replies = match guess {
            Some(written) => written.replies,
            None => self.read_entry(&ctx).await?,
        };
        let mut attempts = 0;
        loop {
            let stored = replies.first().cloned().flatten();
            ctx.generations = replies[1.min(replies.len())..]
                .iter()
                .map(|g| parse_generation(g.as_deref()))
                .collect();
            let now = self.state.now_ms();
            let current = match standing(stored.as_deref(), &ctx.generations, now, policy) {
                Standing::Fresh(envelope) | Standing::Stale(envelope) => {
                    envelope.value::<V>().map(|value| (envelope, value))
                }
                Standing::Absent | Standing::Unusable | Standing::Corrupt => None,
            };
            let (Some((envelope, value)), Some(seen)) = (current, stored.as_deref()) else {
                if guessed {
                    // A guess is never the last word on absence: Redis may hold a newer entry.
                    guessed = false;
                    replies = self.read_entry(&ctx).await?;
                    continue;
                }
                self.state.memory.remove(&entry_key);
                return Ok(Updated::NotCached);
            };
            let Some(next) = change(&value) else {
                return Ok(Updated::Kept(value));
            };
            let payload = payload_within_cap(&next, policy)?;
            let written = Envelope {
                payload,
                ..envelope
            };
            let text = written.encode();
            attempts += 1;
            match self.compare_and_set(&ctx, seen, &text).await? {
                None => {
                    let generations = ctx.generations.iter().map(|g| Some(g.to_string().into()));
                    *last_written = Some(Written {
                        tags: ctx.key.tag_list().to_vec(),
                        replies: std::iter::once(Some(text.into_bytes()))
                            .chain(generations)
                            .collect(),
                    });
                    self.state.memory.remove(&entry_key);
                    self.forget_in_colo(ctx.key.name()).await;
                    if freshness(written.fresh_until, now, policy) == Freshness::Fresh {
                        self.remember(&ctx, Rc::new(written), u64::MAX);
                    }
                    return Ok(Updated::Written(next));
                }
                Some(_) if attempts >= MAX_UPDATE_ATTEMPTS => {
                    return Err(Error::Conflict(format!(
                        "the cache entry {:?} kept changing: {attempts} attempts to update it lost",
                        ctx.key.name()
                    )));
                }
                Some(now_stored) => {
                    // The entry as it is now, with the generations read before: enough to try again
                    // when it is still valid under them; otherwise (a write after an invalidation this
                    // isolate has not seen) the next turn reads everything again.
                    guessed = true;
                    replies = std::iter::once(now_stored)
                        .chain(
                            ctx.generations
                                .iter()
                                .map(|g| Some(g.to_string().into_bytes())),
                        )
                        .collect();
                }
            }
        }
    }

    /// Writes `text` if the entry is still `seen`; `None` when written, else the entry as it is now
    /// (`Some(None)`: gone). `text` embeds the generations of `seen`, so the tags need no check here:
    /// an invalidation since makes the new entry a miss, as it made the old one.
    async fn compare_and_set(
        &self,
        ctx: &Ctx,
        seen: &[u8],
        text: &str,
    ) -> Result<Option<Option<Vec<u8>>>> {
        let sha = sha1_smol::Sha1::from(seen).digest().to_string();
        let call = self.client.eval::<Reply, _, _>(
            update_script(),
            [&ctx.entry_key],
            [sha.as_str(), text],
        );
        match self.bounded(ctx, call).await? {
            Reply::Int(1) => Ok(None),
            Reply::Array(items) if items.len() == 1 => match items.into_iter().next() {
                Some(Reply::Data(bytes)) => Ok(Some(Some(bytes))),
                Some(Reply::Nil) => Ok(Some(None)),
                Some(other) => Err(unexpected(&other)),
                None => Err(Error::Protocol(
                    "empty reply to the cache update script".into(),
                )),
            },
            other => Err(unexpected(&other)),
        }
    }
}

fn unexpected(reply: &Reply) -> Error {
    Error::Protocol(format!(
        "unexpected reply to the cache update script: {}",
        reply.shape()
    ))
}
