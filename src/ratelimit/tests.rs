//! The limiter's own logic (batching, block cache, failure policies, errors) against a fake service that
//! runs the Rust reference models where Redis would run the script. The scripts themselves are tested
//! against real Redis in `tests/ratelimit.rs`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use super::model::{State, Write, decide_all};
use super::*;
use crate::client::{FakeTransport, Reply, fake_server};
use crate::clock::FakeClock;

const T0: u64 = 1_700_000_000_000;

pub(crate) type Store = Rc<RefCell<HashMap<String, State>>>;

/// A service that answers the check and lease scripts with the reference models, over an in-memory
/// store.
pub(crate) fn reference_server(store: Store) -> FakeTransport {
    fake_server(reference(store))
}

/// The service's commands: the reference models where Redis runs the scripts.
pub(crate) fn reference(store: Store) -> impl Fn(&[String]) -> std::result::Result<Reply, String> {
    let lease = Script::new(lease::LEASE_SOURCE);
    move |args: &[String]| {
        let mut store = store.borrow_mut();
        match args[0].as_str() {
            "EVAL" | "EVALSHA" if args[1] == lease.sha1() || args[1] == lease.source() => {
                let n = |i: usize| args.get(i).and_then(|a| a.parse::<u64>().ok()).unwrap_or(1);
                let key = args.get(3).cloned().unwrap_or_default();
                let (now, quota, want) = (n(4), Quota::new(n(5), n(6)), n(7));
                let (grant, write) = lease::take(store.get(&key), now, &quota, want);
                if let Write::Set(s, _) = write {
                    store.insert(key, s);
                }
                let out = [
                    grant.units,
                    grant.window,
                    grant.window_left_ms,
                    grant.remaining,
                ];
                Ok(Reply::Array(
                    out.iter()
                        .map(|v| Reply::Int(i64::try_from(*v).unwrap_or(i64::MAX)))
                        .collect(),
                ))
            }
            "EVAL" | "EVALSHA" => {
                let n: usize = args[2].parse().map_err(|_| "ERR numkeys")?;
                let keys = &args[3..3 + n];
                let argv = &args[3 + n..];
                let now: u64 = argv[0].parse().map_err(|_| "ERR now")?;
                let cost: i64 = argv[1].parse().map_err(|_| "ERR cost")?;
                let policies: Vec<(Algorithm, Quota)> = argv[2..]
                    .chunks(4)
                    .map(|p| {
                        let algorithm = Algorithm::ALL
                            .into_iter()
                            .find(|a| a.code() == p[0])
                            .unwrap_or_default();
                        let n = |i: usize| p[i].parse::<u64>().unwrap_or(1);
                        (algorithm, Quota::new(n(1), n(2)).burst(n(3)))
                    })
                    .collect();
                let states: Vec<Option<State>> =
                    keys.iter().map(|k| store.get(k).cloned()).collect();
                let steps = decide_all(&policies, &states, now, cost);
                let mut out = Vec::new();
                for (key, step) in keys.iter().zip(steps) {
                    match step.write {
                        Write::Keep => {}
                        Write::Delete => {
                            store.remove(key);
                        }
                        Write::Set(s, _) => {
                            store.insert(key.clone(), s);
                        }
                    }
                    let v = step.verdict;
                    for x in [
                        u64::from(v.allowed),
                        v.remaining,
                        v.reset_ms,
                        v.retry_after_ms,
                    ] {
                        out.push(Reply::Int(i64::try_from(x).unwrap_or(i64::MAX)));
                    }
                }
                Ok(Reply::Array(out))
            }
            "DEL" => Ok(Reply::Int(
                args[1..]
                    .iter()
                    .filter(|k| store.remove(*k).is_some())
                    .count() as i64,
            )),
            other => Err(format!("ERR unexpected {other}")),
        }
    }
}

fn limiter(clock: &FakeClock) -> RateLimiter<FakeClock> {
    RateLimiter::with_clock(
        vec![
            Policy::new("burst", Algorithm::Gcra, Quota::new(5, 10_000)),
            Policy::new("window", Algorithm::FixedWindow, Quota::new(3, 60_000)),
            Policy::new("slide", Algorithm::SlidingWindow, Quota::new(100, 60_000)),
        ],
        clock.clone(),
    )
    .unwrap()
}

fn client(transport: FakeTransport) -> Client<FakeTransport> {
    Client::with_transport("http://redis.test", "t", transport).unwrap()
}

fn down() -> FakeTransport {
    FakeTransport::new(|_, _| Err(Error::Transport("connection refused".into())))
}

#[test]
fn several_policies_in_one_round_trip_and_a_refusal_charges_none() {
    let clock = FakeClock::new(T0);
    let limiter = limiter(&clock);
    let store = Store::default();
    let client = client(reference_server(store.clone()));
    let all = [("burst", "ip"), ("window", "ip"), ("slide", "ip")];
    for i in 0..3 {
        let d = pollster::block_on(limiter.check(&client, &all, 1)).unwrap();
        assert!(d.allowed, "request {i}");
        assert_eq!(d.policies.len(), 3);
    }
    assert_eq!(client.stats().round_trips, 3, "one round trip per check");
    let d = pollster::block_on(limiter.check(&client, &all, 1)).unwrap();
    assert!(!d.allowed);
    assert_eq!(
        (d.policy.as_str(), d.reason),
        ("window", Reason::LimitExceeded)
    );
    assert_eq!(d.retry_after_ms, 60_000 - T0 % 60_000);
    let burst = limiter.key("burst", "ip");
    let used = store.borrow()[&burst].clone();
    assert_eq!(used.a, 3 * 10_000, "GCRA holds 3 charges, not 4");
}

#[test]
fn a_blocked_identifier_is_refused_without_a_round_trip_until_the_exact_time() {
    let clock = FakeClock::new(T0);
    let limiter = limiter(&clock);
    let client = client(reference_server(Store::default()));
    for _ in 0..5 {
        assert!(
            pollster::block_on(limiter.limit(&client, "burst", "u"))
                .unwrap()
                .allowed
        );
    }
    let d = pollster::block_on(limiter.limit(&client, "burst", "u")).unwrap();
    assert_eq!((d.allowed, d.retry_after_ms), (false, 2_000));
    let trips = client.stats().round_trips;
    clock.advance(1_999);
    let d = pollster::block_on(limiter.limit(&client, "burst", "u")).unwrap();
    assert_eq!((d.reason, d.retry_after_ms), (Reason::BlockedLocally, 1));
    assert_eq!(
        client.stats().round_trips,
        trips,
        "no round trip when blocked locally"
    );
    let peek = pollster::block_on(limiter.peek(&client, &[("burst", "u")])).unwrap();
    assert_eq!(peek.reason, Reason::LimitExceeded, "a peek asks Redis");
    clock.advance(1);
    let d = pollster::block_on(limiter.limit(&client, "burst", "u")).unwrap();
    assert!(d.allowed, "on time: asked Redis again and passed");
    assert_eq!(limiter.block_cache().len(), 0);
}

#[test]
fn failure_policies_apply_to_errors() {
    let clock = FakeClock::new(T0);
    let open = limiter(&clock).failure_policy(FailurePolicy::Open);
    let d = pollster::block_on(open.limit(&client(down()), "burst", "x")).unwrap();
    assert_eq!((d.allowed, d.reason), (true, Reason::FailOpen));

    let closed = limiter(&clock).failure_policy(FailurePolicy::Closed {
        retry_after_ms: 1_500,
    });
    let d = pollster::block_on(closed.limit(&client(down()), "burst", "x")).unwrap();
    assert_eq!(
        (d.allowed, d.reason, d.retry_after_ms),
        (false, Reason::FailClosed, 1_500)
    );

    let local = limiter(&clock).failure_policy(FailurePolicy::Local);
    let c = client(down());
    let decisions: Vec<bool> = (0..7)
        .map(|_| {
            pollster::block_on(local.limit(&c, "burst", "x"))
                .unwrap()
                .allowed
        })
        .collect();
    assert_eq!(decisions, [true, true, true, true, true, false, false]);
    let d = pollster::block_on(local.limit(&c, "burst", "x")).unwrap();
    assert_eq!(d.reason, Reason::LocalFallback);

    // A Redis error (not a transport error) is a failure too.
    let broken = client(fake_server(|_| Err("ERR script exploded".into())));
    let pending = {
        let batch = broken.batch();
        let p = open.prepare(&batch, &[("burst", "y")], 1).unwrap();
        let _ = pollster::block_on(batch.send());
        p
    };
    let (d, error) = pending.finish_detailed();
    assert_eq!(d.reason, Reason::FailOpen);
    assert!(error.is_some_and(|e| e.is_redis()));
}

#[test]
fn bad_requests_are_typed_errors_before_any_round_trip() {
    let clock = FakeClock::new(T0);
    let limiter = limiter(&clock);
    let client = client(reference_server(Store::default()));
    let e = pollster::block_on(limiter.check(&client, &[("burst", "u")], 6)).unwrap_err();
    assert!(e.is_insufficient_capacity(), "{e}");
    let e = pollster::block_on(limiter.check(&client, &[("nope", "u")], 1)).unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)));
    assert!(pollster::block_on(limiter.check(&client, &[], 1)).is_err());
    assert_eq!(client.stats().round_trips, 0);
    assert!(
        RateLimiter::new(vec![Policy::new(
            "Bad Name",
            Algorithm::Gcra,
            Quota::per_second(1)
        )])
        .is_err()
    );
    let twice = vec![Policy::new("a", Algorithm::Gcra, Quota::per_second(1)); 2];
    assert!(RateLimiter::new(twice).is_err());
}

#[test]
fn overrides_refunds_and_resets() {
    let clock = FakeClock::new(T0);
    let limiter = limiter(&clock)
        .with_override("window", "partner", Quota::new(10, 60_000))
        .unwrap();
    assert!(limiter.clone_quota_check());
    let store = Store::default();
    let client = client(reference_server(store.clone()));
    let d = pollster::block_on(limiter.check(&client, &[("window", "partner")], 10)).unwrap();
    assert_eq!((d.allowed, d.limit, d.remaining), (true, 10, 0));
    let d = pollster::block_on(limiter.refund(&client, "window", "partner", 4)).unwrap();
    assert_eq!(d.remaining, 4);
    pollster::block_on(limiter.reset(&client, "window", "partner")).unwrap();
    assert!(store.borrow().is_empty());
    let d = pollster::block_on(limiter.peek(&client, &[("window", "partner")])).unwrap();
    assert_eq!(d.remaining, 10);
    assert!(
        limiter
            .with_override("nope", "x", Quota::per_second(1))
            .is_err()
    );
    // An override is checked against its policy's algorithm: a sliding log's limit is capped.
    let log = RateLimiter::with_clock(
        vec![Policy::new(
            "log",
            Algorithm::SlidingLog,
            Quota::new(10, 60_000),
        )],
        clock.clone(),
    )
    .unwrap();
    let e = log
        .with_override("log", "partner", Quota::new(10_001, 60_000))
        .unwrap_err();
    assert!(e.to_string().contains("at most 10000"), "{e}");
    let big = vec![Policy::new(
        "log",
        Algorithm::SlidingLog,
        Quota::new(10_001, 60_000),
    )];
    assert!(RateLimiter::with_clock(big, clock.clone()).is_err());
}

impl RateLimiter<FakeClock> {
    fn clone_quota_check(&self) -> bool {
        let policy = self.policy("window").unwrap();
        self.quota_for(policy, "partner").limit() == 10
            && self.quota_for(policy, "other").limit() == 3
    }
}

type Slots = Rc<RefCell<Vec<(String, u16)>>>;

/// The reference service behind a Redis Cluster's key rules: a script whose keys span slots, or that
/// declares none, is refused.
fn cluster(store: Store, slots: Slots) -> Client<FakeTransport> {
    client(fake_server(crate::slot::cluster_checked(
        slots,
        reference(store),
    )))
}

fn two_limiter(clock: &FakeClock) -> RateLimiter<FakeClock> {
    RateLimiter::with_clock(
        vec![
            Policy::new("per-ip", Algorithm::FixedWindow, Quota::new(2, 60_000)),
            Policy::new("per-user", Algorithm::FixedWindow, Quota::new(100, 60_000)),
            Policy::new("burst", Algorithm::Gcra, Quota::new(50, 60_000)),
        ],
        clock.clone(),
    )
    .unwrap()
}

/// Two identifiers whose keys fall in different slots.
fn split_subjects() -> [(&'static str, &'static str); 3] {
    let limiter = two_limiter(&FakeClock::new(T0));
    let (ip, user) = ("10.0.0.1", "alice");
    assert_ne!(
        crate::slot::slot(limiter.key("per-ip", ip).as_bytes()),
        crate::slot::slot(limiter.key("per-user", user).as_bytes())
    );
    [("per-ip", ip), ("burst", user), ("per-user", user)]
}

#[test]
fn one_identifier_is_one_script_in_its_slot_whatever_the_policies() {
    let clock = FakeClock::new(T0);
    let limiter = limiter(&clock);
    let slots = Slots::default();
    let client = cluster(Store::default(), slots.clone());
    for id in ["ip", "", "{x}", "a}b{c", &"long".repeat(100)] {
        let all = [("burst", id), ("window", id), ("slide", id)];
        let d = pollster::block_on(limiter.check(&client, &all, 1)).unwrap();
        assert_eq!(d.reason, Reason::WithinLimit, "{id:?}: {d:?}");
    }
    assert_eq!(slots.borrow().len(), 5, "one script per check");
}

#[test]
fn identifiers_in_different_slots_are_one_script_each_in_one_round_trip() {
    let clock = FakeClock::new(T0);
    let limiter = two_limiter(&clock);
    let slots = Slots::default();
    let store = Store::default();
    let client = cluster(store.clone(), slots.clone());
    let subjects = split_subjects();
    let d = pollster::block_on(limiter.check(&client, &subjects, 1)).unwrap();
    assert_eq!(d.reason, Reason::WithinLimit);
    assert_eq!(
        d.policies
            .iter()
            .map(|p| p.policy.as_str())
            .collect::<Vec<_>>(),
        ["per-ip", "burst", "per-user"]
    );
    assert_eq!(client.stats().round_trips, 1);
    let sent: Vec<u16> = slots.borrow().iter().map(|s| s.1).collect();
    assert_eq!(sent.len(), 2, "two slots, two scripts: {sent:?}");
    assert_ne!(sent[0], sent[1]);
    // In a shared batch too.
    let batch = client.batch();
    let pending = limiter.prepare(&batch, &subjects, 1).unwrap();
    assert_eq!(batch.len(), 2);
    pollster::block_on(batch.send()).unwrap();
    assert!(pending.finish().allowed);
    assert_eq!(
        store.borrow()[&limiter.key("per-user", "alice")].b,
        2,
        "two checks counted"
    );
}

#[test]
fn a_refusal_in_one_slot_is_refunded_in_the_others_by_the_background_task() {
    let clock = FakeClock::new(T0);
    let limiter = two_limiter(&clock);
    let store = Store::default();
    let client = Rc::new(cluster(store.clone(), Slots::default()));
    let subjects = split_subjects();
    for _ in 0..2 {
        assert!(
            pollster::block_on(limiter.check(&client, &subjects, 1))
                .unwrap()
                .allowed
        );
    }
    let user_key = limiter.key("per-user", "alice");
    let burst_key = limiter.key("burst", "alice");
    let before = (
        store.borrow()[&user_key].clone(),
        store.borrow()[&burst_key].clone(),
    );
    let d = pollster::block_on(limiter.check(&client, &subjects, 1)).unwrap();
    assert_eq!((d.allowed, d.policy.as_str()), (false, "per-ip"));
    assert_ne!(
        store.borrow()[&user_key],
        before.0,
        "the user's slot admitted and charged"
    );
    assert_eq!(limiter.refunds_owed(), (1, 0));
    let task = limiter.refund_task(Rc::clone(&client)).unwrap();
    pollster::block_on(task);
    assert_eq!(limiter.refunds_owed(), (0, 0));
    assert!(limiter.refund_task(Rc::clone(&client)).is_none());
    assert_eq!(
        store.borrow()[&user_key].b,
        before.0.b,
        "fixed window count restored"
    );
    assert_eq!(store.borrow()[&user_key].c, before.0.c);
    assert_eq!(
        store.borrow()[&burst_key].a,
        before.1.a,
        "GCRA time restored"
    );
    // A refusal in every slot owes nothing.
    let only_ip = [("per-ip", "10.0.0.1")];
    assert!(
        !pollster::block_on(limiter.check(&client, &only_ip, 1))
            .unwrap()
            .allowed
    );
    assert_eq!(limiter.refunds_owed(), (0, 0));
}

#[test]
fn a_failed_slot_goes_to_the_failure_policy_and_a_refusal_owes_the_charged_slots() {
    let clock = FakeClock::new(T0);
    let limiter = two_limiter(&clock).failure_policy(FailurePolicy::Closed {
        retry_after_ms: 1_000,
    });
    let store = Store::default();
    let ip_key = limiter.key("per-ip", "10.0.0.1");
    let inner = reference(store.clone());
    let client = client(fake_server(move |args: &[String]| {
        if args.get(3) == Some(&ip_key) {
            return Err("ERR the ip's node is down".into());
        }
        inner(args)
    }));
    let (d, error) = {
        let batch = client.batch();
        let pending = limiter.prepare(&batch, &split_subjects(), 1).unwrap();
        pollster::block_on(batch.send()).unwrap();
        pending.finish_detailed()
    };
    assert_eq!((d.allowed, d.reason), (false, Reason::FailClosed));
    assert!(error.is_some());
    assert_eq!(limiter.refunds_owed(), (1, 0), "the user's slot charged");
}

#[test]
fn the_refund_queue_is_bounded() {
    let clock = FakeClock::new(T0);
    let limiter = two_limiter(&clock).memory(2, 1 << 20);
    let client = cluster(Store::default(), Slots::default());
    let subjects = split_subjects();
    for _ in 0..6 {
        let _ = pollster::block_on(limiter.check(&client, &subjects, 1)).unwrap();
        // The block cache would answer the next refusals without Redis.
        limiter
            .blocks
            .borrow_mut()
            .forget(&limiter.key("per-ip", "10.0.0.1"));
    }
    assert_eq!(
        limiter.refunds_owed(),
        (2, 2),
        "4 refusals, 2 kept, 2 dropped"
    );
}

#[test]
fn identifiers_spread_over_slots() {
    let limiter = two_limiter(&FakeClock::new(T0));
    let slots: std::collections::HashSet<u16> = (0..1000)
        .map(|i| crate::slot::slot(limiter.key("per-user", &format!("user-{i}")).as_bytes()))
        .collect();
    assert!(slots.len() > 950, "1000 users on {} slots", slots.len());
}
