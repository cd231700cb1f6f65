//! Leasing against a fake service running the reference models (`reference_server`), on fake clocks:
//! round trips, expiry, failures, late answers, skew, eviction, a restart, and property tests with
//! several isolates under random schedules against the exact fixed window.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::rc::Rc;

use pollster::block_on;
use proptest::prelude::*;

use super::super::tests::{Store, reference, reference_server};
use super::super::*;
use super::take;
use crate::Plan;
use crate::client::{FakeTransport, Reply, fake_server};
use crate::clock::FakeClock;

/// The start of a minute, so that windows of 60 s start at T0.
const T0: u64 = 1_800_000_000_000;

fn config() -> LeaseConfig {
    LeaseConfig {
        hot_after: 5,
        ..LeaseConfig::default()
    }
}

fn isolate(clock: &FakeClock, quota: Quota) -> RateLimiter<FakeClock> {
    isolate_with(clock, quota, config())
}

fn isolate_with(clock: &FakeClock, quota: Quota, config: LeaseConfig) -> RateLimiter<FakeClock> {
    RateLimiter::with_clock(
        vec![
            Policy::new("api", Algorithm::FixedWindow, quota),
            Policy::new("smooth", Algorithm::Gcra, quota),
            Policy::new("log", Algorithm::SlidingLog, quota),
        ],
        clock.clone(),
    )
    .unwrap()
    .failure_policy(FailurePolicy::Closed {
        retry_after_ms: 1_000,
    })
    .leases(config)
    .unwrap()
}

fn client(store: &Store) -> Rc<Client<FakeTransport>> {
    let transport = reference_server(store.clone());
    Rc::new(Client::with_transport("http://redis.test", "t", transport).unwrap())
}

/// A client whose service can be switched off (it then answers every command with an error).
fn switchable(store: &Store, up: &Rc<Cell<bool>>) -> Rc<Client<FakeTransport>> {
    let run = reference(store.clone());
    let up = Rc::clone(up);
    let transport = fake_server(move |args| {
        if up.get() {
            run(args)
        } else {
            Err("LOADING Redis is loading the dataset in memory".into())
        }
    });
    Rc::new(Client::with_transport("http://redis.test", "t", transport).unwrap())
}

fn check(limiter: &RateLimiter<FakeClock>, client: &Client<FakeTransport>, id: &str) -> Decision {
    block_on(limiter.limit(client, "api", id)).unwrap()
}

/// Runs the renewals due now; whether there were any.
fn renew(limiter: &RateLimiter<FakeClock>, client: &Rc<Client<FakeTransport>>) -> bool {
    limiter
        .lease_renewal(Rc::clone(client))
        .map(block_on)
        .is_some()
}

#[test]
fn a_hot_key_is_decided_from_leases_with_renewals_off_the_path() {
    let clock = FakeClock::new(T0);
    let limiter = isolate(&clock, Quota::new(1_000, 60_000));
    let store = Store::default();
    let client = client(&store);
    // Cold: one round trip each, nothing due.
    for _ in 0..4 {
        assert_eq!(check(&limiter, &client, "hot").reason, Reason::WithinLimit);
        assert!(limiter.lease_renewal(Rc::clone(&client)).is_none());
        clock.advance(10);
    }
    let (mut leased, mut renewals, mut path_trips) = (0, 0, 0);
    for _ in 0..400 {
        let before = client.stats().round_trips;
        let d = check(&limiter, &client, "hot");
        path_trips += client.stats().round_trips - before;
        assert!(d.allowed);
        if d.reason == Reason::Leased {
            leased += 1;
            assert!(d.reset_ms <= 60_000 && d.remaining >= 1, "{d:?}");
        }
        renewals += u64::from(renew(&limiter, &client));
        clock.advance(10);
    }
    assert!(leased >= 380, "{leased} of 400 from leases");
    assert!(path_trips <= 20, "{path_trips} round trips on the path");
    assert!(renewals <= 40, "{renewals} renewals");
    let count = store.borrow()[&limiter.key("api", "hot")].b;
    assert_eq!(
        count,
        404 + limiter.leased_units("api", "hot"),
        "Redis counted every admitted request and the units still held"
    );
    assert!(limiter.leased_units("api", "hot") <= 100, "max_lease");
}

#[test]
fn only_fixed_window_keys_are_leased() {
    let clock = FakeClock::new(T0);
    let limiter = isolate(&clock, Quota::new(1_000, 60_000));
    let client = client(&Store::default());
    for policy in ["smooth", "log"] {
        for _ in 0..50 {
            let d = block_on(limiter.limit(&client, policy, "x")).unwrap();
            assert_eq!(d.reason, Reason::WithinLimit);
            assert!(limiter.lease_renewal(Rc::clone(&client)).is_none());
        }
    }
    // A check with a fixed-window key and a GCRA key always asks Redis, so a refusal charges none.
    for _ in 0..20 {
        check(&limiter, &client, "both");
        renew(&limiter, &client);
    }
    assert!(limiter.leased_units("api", "both") > 0);
    let both = [("api", "both"), ("smooth", "both")];
    let d = block_on(limiter.check(&client, &both, 1)).unwrap();
    assert_eq!(d.reason, Reason::WithinLimit);
}

#[test]
fn leasing_is_off_by_default_and_validated() {
    let clock = FakeClock::new(T0);
    let plain = RateLimiter::with_clock(
        vec![Policy::new(
            "api",
            Algorithm::FixedWindow,
            Quota::per_minute(100),
        )],
        clock.clone(),
    )
    .unwrap();
    assert!(plain.lease_config().is_none());
    let client = client(&Store::default());
    for _ in 0..50 {
        assert_eq!(check(&plain, &client, "x").reason, Reason::WithinLimit);
        assert!(plain.lease_renewal(Rc::clone(&client)).is_none());
    }
    for bad in [
        LeaseConfig {
            max_percent: 0,
            ..config()
        },
        LeaseConfig {
            max_percent: 101,
            ..config()
        },
        LeaseConfig {
            hot_after: 0,
            ..config()
        },
        LeaseConfig {
            renew_every_ms: 0,
            ..config()
        },
    ] {
        let e = isolate(&clock, Quota::per_minute(10))
            .leases(bad)
            .unwrap_err();
        assert!(matches!(e, Error::Config(_)), "{e}");
    }
    assert_eq!(config().max_lease(&Quota::per_minute(5)), 1, "at least 1");
    assert_eq!(config().max_lease(&Quota::per_minute(1_000)), 100);
}

/// Warms `id` up until it holds a lease.
fn leased(limiter: &RateLimiter<FakeClock>, client: &Rc<Client<FakeTransport>>, id: &str) {
    for _ in 0..100 {
        if limiter.leased_units("api", id) >= 5 {
            return;
        }
        check(limiter, client, id);
        renew(limiter, client);
    }
    panic!("no lease");
}

#[test]
fn a_plan_waits_for_nothing_when_a_lease_answers() {
    let clock = FakeClock::new(T0);
    let limiter = isolate(&clock, Quota::new(1_000, 60_000));
    let client = client(&Store::default());
    leased(&limiter, &client, "p");
    let before = client.stats().round_trips;
    let plan = Plan::new(&*client);
    let pending = plan.limit(&limiter, &[("api", "p")], 1).unwrap();
    assert!(!pending.needs_round_trip());
    assert!(plan.is_empty() && plan.wait().is_none());
    block_on(plan.send());
    assert_eq!(pending.finish().reason, Reason::Leased);
    assert_eq!(client.stats().round_trips, before);
}

#[test]
fn a_live_lease_is_spent_while_redis_is_down_then_the_failure_policy_decides() {
    let clock = FakeClock::new(T0);
    let limiter = isolate(&clock, Quota::new(1_000, 60_000));
    let up = Rc::new(Cell::new(true));
    let client = switchable(&Store::default(), &up);
    leased(&limiter, &client, "d");
    up.set(false);
    let held = limiter.leased_units("api", "d");
    for _ in 0..held {
        let d = check(&limiter, &client, "d");
        assert_eq!((d.allowed, d.reason), (true, Reason::Leased));
    }
    assert_eq!(limiter.leased_units("api", "d"), 0);
    // The renewal fails: no lease of this key until the window ends.
    assert!(renew(&limiter, &client));
    let d = check(&limiter, &client, "d");
    assert_eq!((d.allowed, d.reason), (false, Reason::FailClosed));
    up.set(true);
    for _ in 0..20 {
        assert_eq!(check(&limiter, &client, "d").reason, Reason::WithinLimit);
        assert!(!renew(&limiter, &client), "paused after a failure");
    }
    clock.set(T0 + 60_000);
    for _ in 0..10 {
        check(&limiter, &client, "d");
        renew(&limiter, &client);
    }
    assert!(limiter.leased_units("api", "d") > 0, "leasing again");
}

#[test]
fn a_lease_ends_before_its_window_by_the_skew_margin() {
    let clock = FakeClock::new(T0 + 50_000);
    let limiter = isolate(&clock, Quota::new(1_000, 60_000));
    let client = client(&Store::default());
    leased(&limiter, &client, "w");
    assert!(check(&limiter, &client, "w").reason == Reason::Leased);
    clock.set(T0 + 60_000 - 251);
    let d = check(&limiter, &client, "w");
    assert_eq!(d.reason, Reason::Leased);
    assert_eq!(d.reset_ms, 251, "the window's end");
    clock.set(T0 + 60_000 - 250);
    assert_eq!(limiter.leased_units("api", "w"), 0, "expired at the margin");
    assert_eq!(check(&limiter, &client, "w").reason, Reason::WithinLimit);
}

#[test]
fn a_clock_ahead_elsewhere_ends_the_lease_early_here() {
    let (here, ahead) = (FakeClock::new(T0 + 10_000), FakeClock::new(T0 + 12_000));
    let store = Store::default();
    let (a, b) = (
        isolate(&here, Quota::new(1_000, 60_000)),
        isolate(&ahead, Quota::new(1_000, 60_000)),
    );
    let client = client(&store);
    check(&b, &client, "s"); // Redis has now seen T0 + 12 s
    leased(&a, &client, "s");
    // Redis's window ends at T0 + 60 s by the clock that is 2 s ahead: 2 s earlier by this one.
    here.set(T0 + 58_000 - 251);
    assert_eq!(check(&a, &client, "s").reason, Reason::Leased);
    here.set(T0 + 58_000 - 250);
    assert_eq!(a.leased_units("api", "s"), 0);
}

#[test]
fn a_late_answer_is_never_spent_and_never_repeated_in_its_window() {
    let clock = FakeClock::new(T0 + 59_000);
    let limiter = isolate(&clock, Quota::new(1_000, 60_000));
    let store = Store::default();
    let client = client(&store);
    for _ in 0..6 {
        check(&limiter, &client, "late");
    }
    let task = limiter.lease_renewal(Rc::clone(&client)).unwrap();
    // Redis answers after the window is over on this clock (the script still ran at the send time).
    clock.set(T0 + 59_800);
    block_on(task);
    let counted = store.borrow()[&limiter.key("api", "late")].b;
    assert!(counted > 6, "the grant was counted");
    assert_eq!(limiter.leased_units("api", "late"), 0, "but never spent");
    check(&limiter, &client, "late");
    assert!(
        limiter.lease_renewal(Rc::clone(&client)).is_none(),
        "no other lease in that window"
    );
    // A renewal in flight when the key is reset finds nothing to add to.
    clock.set(T0 + 120_000);
    for _ in 0..6 {
        check(&limiter, &client, "late");
    }
    let task = limiter.lease_renewal(Rc::clone(&client)).unwrap();
    block_on(limiter.reset(&client, "api", "late")).unwrap();
    block_on(task);
    assert_eq!(limiter.leased_units("api", "late"), 0);
}

#[test]
fn a_renewal_that_never_runs_counts_as_failed() {
    let clock = FakeClock::new(T0);
    let limiter = isolate(&clock, Quota::new(1_000, 60_000));
    let client = client(&Store::default());
    for _ in 0..6 {
        check(&limiter, &client, "lost");
    }
    drop(limiter.lease_renewal(Rc::clone(&client)).unwrap());
    clock.advance(1_000);
    check(&limiter, &client, "lost");
    assert!(limiter.lease_renewal(Rc::clone(&client)).is_none());
    clock.advance(1_001);
    check(&limiter, &client, "lost");
    assert!(
        limiter.lease_renewal(Rc::clone(&client)).is_none(),
        "past twice its deadline: failed, paused until the window ends"
    );
    clock.set(T0 + 60_000);
    for _ in 0..6 {
        check(&limiter, &client, "lost");
    }
    assert!(limiter.lease_renewal(Rc::clone(&client)).is_some());
}

#[test]
fn an_evicted_isolate_holds_at_most_one_lease_until_the_window_ends() {
    let clock = FakeClock::new(T0);
    let store = Store::default();
    let client = client(&store);
    let quota = Quota::new(100, 60_000);
    {
        let gone = isolate(&clock, quota);
        for _ in 0..60 {
            check(&gone, &client, "e");
            renew(&gone, &client);
        }
        assert!(gone.leased_units("api", "e") > 0);
    } // evicted with its lease
    let other = isolate(&clock, quota);
    let admitted = (0..200)
        .filter(|_| {
            let ok = check(&other, &client, "e").allowed;
            renew(&other, &client);
            ok
        })
        .count();
    let max_lease = config().max_lease(&quota) as usize;
    assert!(
        admitted + 60 >= 100 - max_lease,
        "{admitted}: at most one lease idle"
    );
    assert!(admitted + 60 <= 100, "never over the limit");
    clock.set(T0 + 60_000);
    let d = check(&other, &client, "e");
    assert!(d.allowed && d.remaining >= 99 - max_lease as u64, "{d:?}");
}

#[test]
fn a_restart_loses_the_count_and_leases_add_nothing_to_that() {
    let clock = FakeClock::new(T0);
    let store = Store::default();
    let limiter = isolate(&clock, Quota::new(100, 60_000));
    let client = client(&store);
    leased(&limiter, &client, "r");
    let held = limiter.leased_units("api", "r");
    store.borrow_mut().clear(); // Redis restarted empty
    let admitted = (0..300)
        .filter(|_| {
            let ok = check(&limiter, &client, "r").allowed;
            renew(&limiter, &client);
            ok
        })
        .count() as u64;
    // After the restart: the units held, then at most the limit counted afresh.
    assert!(admitted <= held + 100, "{admitted}");
    let counted = store.borrow()[&limiter.key("api", "r")].b;
    assert!(counted <= 100);
}

/// One step of a random schedule.
#[derive(Debug, Clone)]
enum Step {
    /// Isolate `i` gets a request of cost `cost` after `wait` ms.
    Request { i: usize, wait: u64, cost: u32 },
    /// Isolate `i` starts its due renewals; they reach Redis and come back `delay` ms later.
    Renew { i: usize, delay: u64 },
    /// Isolate `i` is evicted and replaced by a fresh one.
    Evict { i: usize },
}

fn step(isolates: usize) -> impl Strategy<Value = Step> {
    prop_oneof![
        12 => (0..isolates, 0u64..150, prop_oneof![4 => Just(1u32), 1 => 2u32..=3]).prop_map(|(i, wait, cost)| Step::Request { i, wait, cost }),
        4 => (0..isolates, prop_oneof![3 => 0u64..50, 1 => 0u64..3_000])
            .prop_map(|(i, delay)| Step::Renew { i, delay }),
        1 => (0..isolates).prop_map(|i| Step::Evict { i }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Several isolates leasing one key under random schedules: per window, the admitted requests fit
    /// in the exact fixed window, and the refusals are within the stated bound (units leased and never
    /// spent <= isolates x max_lease).
    #[test]
    fn leases_never_over_admit_and_under_admit_within_the_bound(
        isolates in 1usize..5,
        limit in 10u64..200,
        max_percent in 5u8..=50,
        renew_every_ms in 500u64..5_000,
        steps in prop::collection::vec(step(4), 50..400),
    ) {
        let quota = Quota::new(limit, 10_000);
        let config = LeaseConfig { hot_after: 3, max_percent, renew_every_ms, ..config() };
        let isolate = |clock: &FakeClock, quota| isolate_with(clock, quota, config);
        let (mut leased, mut total) = (0u64, 0u64);
        let clock = FakeClock::new(T0);
        let store = Store::default();
        let client = client(&store);
        let mut limiters: Vec<RateLimiter<FakeClock>> =
            (0..isolates).map(|_| isolate(&clock, quota)).collect();
        let max_lease = config.max_lease(&quota);
        // Per window: (units asked for, units admitted).
        let mut windows: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
        let mut exact = None;
        let mut evictions = 0u64;
        let mut pending: Vec<(u64, crate::cache::Task)> = Vec::new();
        for step in steps {
            match step {
                Step::Request { i, wait, cost } => {
                    clock.advance(wait);
                    let now = clock.now_ms();
                    // Renewals whose answers are due arrive first.
                    pending.sort_by_key(|(at, _)| *at);
                    while pending.first().is_some_and(|(at, _)| *at <= now) {
                        let (_, task) = pending.remove(0);
                        block_on(task);
                    }
                    let limiter = &limiters[i % isolates];
                    let d = block_on(limiter.check(&client, &[("api", "k")], cost)).unwrap();
                    let window = windows.entry(now - now % 10_000).or_default();
                    window.0 += u64::from(cost);
                    leased += u64::from(d.reason == Reason::Leased);
                    total += 1;
                    for l in &limiters {
                        prop_assert!(l.leased_units("api", "k") <= max_lease, "an isolate holds one lease at most");
                    }
                    if d.allowed {
                        window.1 += u64::from(cost);
                        // The exact model, fed only what was admitted, admits it too.
                        let s = model::decide(Algorithm::FixedWindow, exact.as_ref(), now, &quota, i64::from(cost));
                        prop_assert!(s.verdict.allowed, "over-admitted at {now}: {d:?}");
                        if let model::Write::Set(state, _) = s.write {
                            exact = Some(state);
                        }
                    }
                }
                Step::Renew { i, delay } => {
                    // The script runs when the task is polled: at `clock` + delay, with the send time
                    // as its `now`, and the answer is applied then.
                    if let Some(task) = limiters[i % isolates].lease_renewal(Rc::clone(&client)) {
                        pending.push((clock.now_ms() + delay, task));
                    }
                }
                Step::Evict { i } => {
                    limiters[i % isolates] = isolate(&clock, quota);
                    evictions += 1;
                }
            }
        }
        // Every isolate that ever existed may have held a lease (an evicted one's renewal may still
        // land), each at most one maximum lease per window; a refused request of cost c leaves up to
        // c - 1 units unused as well.
        let held = (isolates as u64 + evictions) * max_lease;
        for (start, (asked, admitted)) in windows {
            prop_assert!(admitted <= limit, "window {start}: {admitted} > {limit}");
            prop_assert!(
                admitted + 2 >= asked.min(limit.saturating_sub(held)),
                "window {start}: admitted {admitted} of {asked}, limit {limit}, held at most {held}"
            );
        }
        prop_assert!(leased <= total, "{leased} leased decisions, {total} requests");
    }
}

#[test]
fn the_reference_grants_what_the_window_has_left() {
    let q = Quota::new(10, 1_000);
    let (g, w) = take(None, T0 + 300, &q, 4);
    assert_eq!(
        (g.units, g.window, g.window_left_ms, g.remaining),
        (4, T0, 700, 6)
    );
    let model::Write::Set(state, ttl) = w else {
        panic!("{w:?}")
    };
    assert_eq!((state.b, ttl), (4, 700));
    let (g, _) = take(Some(&state), T0 + 400, &q, 8);
    assert_eq!((g.units, g.remaining), (6, 0), "what is left, not more");
    let full = model::State::new(T0 + 400, T0, 10, 0);
    let (g, w) = take(Some(&full), T0 + 500, &q, 1);
    assert_eq!((g.units, w), (0, model::Write::Keep));
    // A stored time ahead of the caller's clock is the time the grant works with.
    let (g, _) = take(Some(&full), T0 + 100, &q, 1);
    assert_eq!(g.window_left_ms, 600);
    let (g, _) = take(Some(&full), T0 + 1_000, &q, 3);
    assert_eq!((g.units, g.window), (3, T0 + 1_000), "a new window");
}

#[test]
fn a_key_named_twice_and_an_answer_out_of_range_promise_nothing_more() {
    let clock = FakeClock::new(T0);
    let limiter = isolate(&clock, Quota::new(1_000, 60_000));
    let store = Store::default();
    let client = client(&store);
    leased(&limiter, &client, "twice");
    let held = limiter.leased_units("api", "twice");
    let d = block_on(limiter.check(&client, &[("api", "twice"), ("api", "twice")], 1)).unwrap();
    assert_eq!(d.reason, Reason::WithinLimit, "asked Redis");
    assert_eq!(limiter.leased_units("api", "twice"), held);

    // A service that grants more than asked, for longer than a window.
    let greedy = Rc::new(
        Client::with_transport(
            "http://redis.test",
            "t",
            fake_server(|args| {
                if args[0].starts_with("EVAL") && args.len() == 8 {
                    let big = Reply::Int(i64::MAX);
                    Ok(Reply::Array(vec![
                        big.clone(),
                        Reply::Int(0),
                        big.clone(),
                        big,
                    ]))
                } else {
                    Err("ERR no".into())
                }
            }),
        )
        .unwrap(),
    );
    for _ in 0..6 {
        block_on(limiter.limit(&greedy, "api", "greedy")).unwrap();
    }
    assert!(renew(&limiter, &greedy));
    let units = limiter.leased_units("api", "greedy");
    assert!(
        (1..=100).contains(&units),
        "{units}: at most what was asked"
    );
    clock.advance(60_000);
    assert_eq!(
        limiter.leased_units("api", "greedy"),
        0,
        "no longer than a window"
    );
}

#[test]
fn lease_scripts_declare_their_one_key_for_a_cluster() {
    let clock = FakeClock::new(T0);
    let limiter = isolate(&clock, Quota::new(1_000, 60_000));
    let store = Store::default();
    let slots = Rc::new(RefCell::new(Vec::new()));
    let run = crate::slot::cluster_checked(Rc::clone(&slots), reference(store.clone()));
    let client = Rc::new(
        Client::with_transport("http://redis.test", "t", crate::client::fake_server(run)).unwrap(),
    );
    for _ in 0..40 {
        assert!(check(&limiter, &client, "hot").allowed);
    }
    assert!(renew(&limiter, &client), "a renewal was due");
    assert!(
        limiter.leased_units("api", "hot") > 0,
        "the renewal passed the cluster's rules"
    );
    let key_slot = crate::slot::slot(limiter.key("api", "hot").as_bytes());
    assert!(slots.borrow().iter().all(|(_, s)| *s == key_slot));
}
