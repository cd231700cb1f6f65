//! A check split by Redis Cluster slot, and the refunds a split check owes.
//!
//! Every key of one identifier shares a slot (the identifier is the key's hash tag), so a check of any
//! number of policies on ONE identifier is one script, atomic as before. A check that names several
//! identifiers (per IP and per user) may touch several slots: a cluster refuses such a script
//! (`CROSSSLOT`), so the check becomes one script per slot, all in the same batch (one round trip; the
//! gateway splits a pipeline by node). Each script charges its policies all or none; the request
//! passes only when every script admits it.
//!
//! When one slot refuses and another admitted, the admitting slot has charged a request that did not
//! pass. That charge is queued here and given back by the next background task
//! ([`RateLimiter::refund_task`](super::RateLimiter::refund_task), started by
//! [`RateLimiter::spawn_lease_renewals`](super::RateLimiter::spawn_lease_renewals)) with the same
//! negative-cost script as [`RateLimiter::refund`](super::RateLimiter::refund).

use std::collections::VecDeque;

use super::Check;

/// The policies of one check that share a slot: one script call.
#[derive(Debug)]
pub(super) struct Group {
    /// Indexes into the check's policies, in order.
    pub(super) members: Vec<usize>,
    /// The script's `KEYS`.
    pub(super) keys: Vec<String>,
    /// The script's `ARGV`: now, cost, then four values per member.
    pub(super) args: Vec<String>,
}

/// Splits `checks` into one group per slot, in the order their slots first appear.
pub(super) fn groups(checks: &[Check], now: u64, cost: i64) -> Vec<Group> {
    let mut slots: Vec<u16> = Vec::new();
    let mut groups: Vec<Group> = Vec::new();
    for (i, check) in checks.iter().enumerate() {
        let slot = crate::slot::slot(check.key.as_bytes());
        let at = match slots.iter().position(|s| *s == slot) {
            Some(at) => at,
            None => {
                slots.push(slot);
                groups.push(Group {
                    members: Vec::new(),
                    keys: Vec::new(),
                    args: vec![now.to_string(), cost.to_string()],
                });
                groups.len() - 1
            }
        };
        let group = &mut groups[at];
        group.members.push(i);
        group.keys.push(check.key.clone());
        group.args.push(check.algorithm.code().to_owned());
        group.args.push(check.quota.limit().to_string());
        group.args.push(check.quota.period_ms().to_string());
        group.args.push(check.quota.burst_size().to_string());
    }
    groups
}

/// A charge to give back: the keys and arguments of one group's script, with the cost negated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Refund {
    pub(super) keys: Vec<String>,
    pub(super) args: Vec<String>,
}

impl Refund {
    /// The refund of what `group` charged at cost `cost` (> 0).
    pub(super) fn of(group: &Group, cost: i64) -> Self {
        let mut args = group.args.clone();
        args[1] = (-cost).to_string();
        Refund {
            keys: group.keys.clone(),
            args,
        }
    }
}

/// The refunds owed, oldest first, at most `capacity` of them: past that the oldest is dropped, and its
/// charge lasts until its state expires (one period at most).
#[derive(Debug)]
pub(super) struct Refunds {
    queue: VecDeque<Refund>,
    capacity: usize,
    dropped: u64,
}

impl Refunds {
    pub(super) fn new(capacity: usize) -> Self {
        Refunds {
            queue: VecDeque::new(),
            capacity,
            dropped: 0,
        }
    }

    pub(super) fn push(&mut self, refund: Refund) {
        if self.capacity == 0 {
            self.dropped += 1;
            return;
        }
        if self.queue.len() == self.capacity {
            self.queue.pop_front();
            self.dropped += 1;
        }
        self.queue.push_back(refund);
    }

    pub(super) fn take(&mut self) -> Vec<Refund> {
        self.queue.drain(..).collect()
    }

    pub(super) fn len(&self) -> usize {
        self.queue.len()
    }

    pub(super) fn dropped(&self) -> u64 {
        self.dropped
    }
}
