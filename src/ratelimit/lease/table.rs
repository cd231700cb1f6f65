//! The isolate's side of leasing: how hot each key is, the units it holds, and which keys are due a
//! renewal. Pure bookkeeping on a caller-given clock; the limiter sends the renewals.

use std::cell::RefCell;
use std::collections::HashMap;

use super::{Grant, LeaseConfig};
use crate::client::Script;
use crate::ratelimit::quota::Quota;

/// The lease script.
pub(crate) const LEASE_SOURCE: &str = include_str!("../scripts/lease.lua");

/// Units held for one key, spendable until `expires` (this isolate's clock).
#[derive(Debug, Clone, Copy)]
struct Held {
    /// The window the units were counted in (Redis's view), to add a renewal to the same lease.
    window: u64,
    units: u64,
    /// When the window ends on this isolate's clock.
    ends: u64,
    /// When the units stop being spendable: `ends` minus the skew margin.
    expires: u64,
    /// What the window had left after the latest grant.
    remaining: u64,
}

#[derive(Debug)]
struct Entry {
    quota: Quota,
    /// Demand: units seen in the local window starting at `window`, and in the one before, since
    /// `since` (when the key was first seen, or came back after a quiet period).
    since: u64,
    window: u64,
    current: u64,
    previous: u64,
    held: Option<Held>,
    /// A renewal was handed out and has not come back; when it counts as failed.
    renewing: Option<u64>,
    /// No lease before this time (a renewal failed, or the window had nothing left).
    paused_until: u64,
    /// Units a renewal should ask for, once handed out by [`Leases::take_due`].
    due: Option<u64>,
}

impl Entry {
    fn new(quota: Quota) -> Self {
        Entry {
            quota,
            since: 0,
            window: 0,
            current: 0,
            previous: 0,
            held: None,
            renewing: None,
            paused_until: 0,
            due: None,
        }
    }

    /// Units expected over the last period: the previous local window weighted by how much of it the
    /// last period still covers, plus the current one.
    fn estimate(&self, now: u64) -> u64 {
        let period = self.quota.period_ms();
        let elapsed = now.saturating_sub(self.window).min(period);
        let weighted =
            u128::from(self.previous) * u128::from(period - elapsed) / u128::from(period);
        u64::try_from(weighted)
            .unwrap_or(u64::MAX)
            .saturating_add(self.current)
    }

    fn live(&self, now: u64) -> Option<&Held> {
        self.held.as_ref().filter(|h| h.expires > now)
    }

    /// Whether the entry carries nothing worth keeping when the table is full.
    fn idle(&self, now: u64) -> bool {
        self.renewing.is_none() && self.live(now).is_none_or(|h| h.units == 0)
    }
}

/// One renewal to send.
#[derive(Debug, Clone)]
pub(crate) struct Due {
    pub(crate) key: String,
    pub(crate) quota: Quota,
    pub(crate) want: u64,
}

/// A lease's answer to one policy of a check.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Spent {
    pub(crate) remaining: u64,
    pub(crate) reset_ms: u64,
}

/// The per-isolate lease table; see the [module docs](super).
#[derive(Debug)]
pub(crate) struct Leases {
    pub(crate) config: LeaseConfig,
    pub(crate) script: Script,
    entries: RefCell<HashMap<String, Entry>>,
    max_entries: usize,
}

impl Leases {
    pub(crate) fn new(config: LeaseConfig, max_entries: usize) -> Self {
        Leases {
            config,
            script: Script::new(LEASE_SOURCE),
            entries: RefCell::new(HashMap::new()),
            max_entries,
        }
    }

    /// Spends `cost` from the live lease of every key, if every key has one with enough units; else
    /// spends nothing. A key named twice in one check goes to Redis (it would be charged twice).
    pub(crate) fn spend(&self, keys: &[&str], now: u64, cost: u64) -> Option<Vec<Spent>> {
        let mut entries = self.entries.borrow_mut();
        let twice = keys.iter().enumerate().any(|(i, k)| keys[..i].contains(k));
        let enough = !twice
            && keys.iter().all(|k| {
                entries
                    .get(*k)
                    .and_then(|e| e.live(now))
                    .is_some_and(|h| h.units >= cost)
            });
        if !enough || keys.is_empty() {
            return None;
        }
        let spent = keys
            .iter()
            .filter_map(|k| {
                let held = entries.get_mut(*k)?.held.as_mut()?;
                held.units -= cost;
                Some(Spent {
                    remaining: held.remaining.saturating_add(held.units),
                    reset_ms: held.ends.saturating_sub(now),
                })
            })
            .collect();
        Some(spent)
    }

    /// Counts `cost` units of demand for `key` and marks it due a renewal when it is hot and its lease
    /// is at the low-water mark.
    pub(crate) fn observe(&self, key: &str, quota: Quota, now: u64, cost: u64) {
        let mut entries = self.entries.borrow_mut();
        if !entries.contains_key(key) && !self.make_room(&mut entries, now) {
            return;
        }
        let entry = entries
            .entry(key.to_owned())
            .or_insert_with(|| Entry::new(quota));
        if entry.quota != quota {
            *entry = Entry::new(quota);
        }
        let period = quota.period_ms();
        let window = now - now % period;
        if window != entry.window {
            entry.previous = if window == entry.window + period {
                entry.current
            } else {
                entry.since = now;
                0
            };
            entry.current = 0;
            entry.window = window;
        }
        entry.current = entry.current.saturating_add(cost);
        if entry.renewing.is_some_and(|deadline| deadline <= now) {
            // Handed out and never answered (the task did not run, or hangs): it may have been
            // counted, so it is treated as failed.
            entry.renewing = None;
            entry.paused_until = window + period;
        }
        let estimate = entry.estimate(now);
        if estimate < self.config.hot_after || entry.renewing.is_some() || now < entry.paused_until
        {
            return;
        }
        let max = self.config.max_lease(&quota);
        // The rate: the estimate over the time it covers (a period, or less for a key seen recently;
        // at least one renewal interval, so that a short burst does not look like a flood). The lease:
        // what that rate spends during one renewal interval, and no more than until the window ends.
        let renew = self.config.renew_every_ms;
        let span = now
            .saturating_sub(entry.since)
            .clamp(renew.min(period), period);
        let horizon = renew.min(window + period - now).max(1);
        let expected = u128::from(estimate) * u128::from(horizon);
        let target = u64::try_from(expected.div_ceil(u128::from(span.max(1))))
            .unwrap_or(u64::MAX)
            .clamp(1, max);
        let left = entry.live(now).map_or(0, |h| h.units);
        if left <= target / 2 && left < max {
            entry.due = Some(target.min(max - left));
        }
    }

    /// Frees a slot for a new key: drops idle entries when the table is full. False when every entry
    /// holds a lease or waits for one (the new key then gets today's check).
    fn make_room(&self, entries: &mut HashMap<String, Entry>, now: u64) -> bool {
        if entries.len() < self.max_entries {
            return true;
        }
        entries.retain(|_, e| !e.idle(now) || e.estimate(now) >= self.config.hot_after);
        if entries.len() >= self.max_entries {
            entries.retain(|_, e| !e.idle(now));
        }
        entries.len() < self.max_entries
    }

    /// The renewals due, each marked as in flight from `now`.
    pub(crate) fn take_due(&self, now: u64) -> Vec<Due> {
        // A renewal that has not answered after twice its deadline counts as failed.
        let deadline = now.saturating_add(2 * u64::from(self.config.timeout_ms));
        let mut entries = self.entries.borrow_mut();
        entries
            .iter_mut()
            .filter_map(|(key, e)| {
                let want = e.due.take()?;
                e.renewing = Some(deadline);
                Some(Due {
                    key: key.clone(),
                    quota: e.quota,
                    want,
                })
            })
            .collect()
    }

    /// Applies the outcome of renewal `due`: sent at `sent`, answered at `now` (this isolate's clock).
    /// `None` for a failure (error, timeout, unreadable answer).
    pub(crate) fn apply(&self, due: &Due, sent: u64, now: u64, grant: Option<Grant>) {
        let key = due.key.as_str();
        let mut entries = self.entries.borrow_mut();
        let Some(entry) = entries.get_mut(key) else {
            return;
        };
        entry.renewing = None;
        let period = entry.quota.period_ms();
        let Some(grant) = grant else {
            // The grant may have been counted anyway: no more leases of this key this window, so it
            // holds at most one maximum lease unspent (the bound).
            entry.paused_until = sent - sent % period + period;
            return;
        };
        // An answer out of range (a script that is not ours) promises no more than was asked, for no
        // longer than a window.
        let grant = Grant {
            units: grant.units.min(due.want),
            window_left_ms: grant.window_left_ms.min(period),
            ..grant
        };
        // Measured from the send time: the lease ends no later than Redis's window.
        let ends = sent.saturating_add(grant.window_left_ms);
        let expires = ends.saturating_sub(self.config.max_skew_ms);
        if grant.units == 0 {
            entry.paused_until = ends;
        }
        if expires <= now {
            // Answered too late: the units' window is over here; they are never spent, and no other
            // lease is taken in what is left of it (each would come too late as well).
            entry.paused_until = entry.paused_until.max(ends);
            return;
        }
        match entry.held.as_mut() {
            Some(held) if held.window == grant.window && held.expires > now => {
                held.units += grant.units;
                held.remaining = grant.remaining;
            }
            _ => {
                entry.held = Some(Held {
                    window: grant.window,
                    units: grant.units,
                    ends,
                    expires,
                    remaining: grant.remaining,
                });
            }
        }
    }

    /// Forgets `key` (after a reset); a renewal in flight finds nothing to add to.
    pub(crate) fn forget(&self, key: &str) {
        self.entries.borrow_mut().remove(key);
    }

    /// Units this isolate holds of `key` at `now`.
    pub(crate) fn units(&self, key: &str, now: u64) -> u64 {
        self.entries
            .borrow()
            .get(key)
            .and_then(|e| e.live(now))
            .map_or(0, |h| h.units)
    }
}
