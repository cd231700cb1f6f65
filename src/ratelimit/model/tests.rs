//! The reference models: boundaries, exact retry times, no charge on rejection, peeks, refunds, TTLs,
//! clocks going backwards, GCRA = token bucket, and the all-or-nothing rule across policies.

use proptest::prelude::*;

use super::*;

const T0: u64 = 1_700_000_000_000;

/// Runs one request and applies its write to `state`, like the script does.
fn run(a: Algorithm, state: &mut Option<State>, now: u64, q: &Quota, cost: i64) -> Verdict {
    let step = decide(a, state.as_ref(), now, q, cost);
    match step.write {
        Write::Keep => {}
        Write::Delete => *state = None,
        Write::Set(s, ttl) => {
            assert!(ttl >= 1, "{a:?}: every key has a TTL");
            *state = Some(s);
        }
    }
    step.verdict
}

fn algorithms() -> impl Strategy<Value = Algorithm> {
    prop::sample::select(Algorithm::ALL.to_vec())
}

#[test]
fn state_text_round_trips_and_rejects_garbage() {
    let s = State::new(T0, 1, 2, 3);
    assert_eq!(State::parse(&s.encode()), Some(s));
    let mut log = State::new(T0, 0, 0, 0);
    log.log = vec![(T0 - 900, 1), (T0 - 5, 4), (T0, 1)];
    assert_eq!(log.encode(), format!("{T0}:0:0:0,900,5:4,0"));
    assert_eq!(State::parse(&log.encode()), Some(log));
    for bad in [
        "",
        "1:2:3",
        "1:2:3:4:5",
        "a:b:c:d",
        "-1:0:0:0",
        "5:0:0:0,6",
        "5:0:0:0,x",
        "5:0:0:0,",
    ] {
        assert_eq!(State::parse(bad), None, "{bad}");
    }
}

#[test]
fn the_limit_th_request_passes_and_the_next_does_not() {
    for a in Algorithm::ALL {
        // Start on a window boundary so the windows hold the whole burst.
        let q = Quota::new(5, 10_000);
        let mut state = None;
        for i in 1..=5 {
            let v = run(a, &mut state, T0, &q, 1);
            assert!(v.allowed, "{a:?}: request {i}");
            assert_eq!(v.remaining, 5 - i, "{a:?}");
        }
        let before = state.clone();
        let v = run(a, &mut state, T0, &q, 1);
        assert!(!v.allowed && v.remaining == 0, "{a:?}: the 6th");
        assert!(v.retry_after_ms > 0);
        assert_eq!(state, before, "{a:?}: a rejected request is not charged");
    }
}

#[test]
fn retry_times_per_algorithm() {
    let q = Quota::new(5, 10_000);
    let exhausted = |a| {
        let mut s = None;
        for _ in 0..5 {
            run(a, &mut s, T0 + 1_000, &q, 1);
        }
        s
    };
    // GCRA and token bucket: one request every 2 s comes back.
    for a in [Algorithm::Gcra, Algorithm::TokenBucket] {
        let v = decide(a, exhausted(a).as_ref(), T0 + 1_000, &q, 1).verdict;
        assert_eq!((v.retry_after_ms, v.reset_ms), (2_000, 10_000), "{a:?}");
    }
    // Sliding log: when the five leave the window, 10 s after they came.
    let v = decide(
        Algorithm::SlidingLog,
        exhausted(Algorithm::SlidingLog).as_ref(),
        T0 + 3_000,
        &q,
        1,
    )
    .verdict;
    assert_eq!((v.retry_after_ms, v.reset_ms), (8_000, 8_000));
    // Fixed window: the next window, 9 s later.
    let v = decide(
        Algorithm::FixedWindow,
        exhausted(Algorithm::FixedWindow).as_ref(),
        T0 + 1_000,
        &q,
        1,
    );
    assert_eq!(v.verdict.retry_after_ms, 9_000);
    // Sliding window: in the next window, the 5 requests weigh 5 * (10 - e) / 10; 1 more fits once
    // that is <= 4, at e = 2 s: 9 s + 2 s.
    let v = decide(
        Algorithm::SlidingWindow,
        exhausted(Algorithm::SlidingWindow).as_ref(),
        T0 + 1_000,
        &q,
        1,
    );
    assert_eq!(v.verdict.retry_after_ms, 11_000);
}

#[test]
fn fractional_intervals_stay_exact() {
    // 3 per 1000 ms: an interval of 333.33 ms.
    let q = Quota::new(3, 1_000).burst(1);
    let mut s = None;
    assert!(run(Algorithm::Gcra, &mut s, T0, &q, 1).allowed);
    let v = run(Algorithm::Gcra, &mut s, T0, &q, 1);
    assert_eq!(v.retry_after_ms, 334, "ceil(333.33)");
    assert!(!run(Algorithm::Gcra, &mut s, T0 + 333, &q, 1).allowed);
    assert!(run(Algorithm::Gcra, &mut s, T0 + 334, &q, 1).allowed);
    // The second came 0.67 ms late, so the third is due at 334 + 333.33 = 667.33 ms.
    assert!(!run(Algorithm::Gcra, &mut s, T0 + 667, &q, 1).allowed);
    assert!(run(Algorithm::Gcra, &mut s, T0 + 668, &q, 1).allowed);
}

#[test]
fn a_clock_going_backwards_recovers_nothing() {
    for a in Algorithm::ALL {
        let q = Quota::new(3, 10_000);
        let mut s = None;
        for _ in 0..3 {
            run(a, &mut s, T0 + 5_000, &q, 1);
        }
        // Another isolate whose clock is 20 s behind: the key's own time wins.
        let v = run(a, &mut s, T0 - 15_000, &q, 1);
        assert!(!v.allowed, "{a:?}");
        let ahead = decide(a, s.as_ref(), T0 + 5_000, &q, 1).verdict;
        assert_eq!(v, ahead, "{a:?}: same as at the key's latest time");
    }
}

#[test]
fn refunds_give_budget_back_and_never_exceed_the_full_budget() {
    for a in Algorithm::ALL {
        let q = Quota::new(4, 10_000);
        let mut s = None;
        run(a, &mut s, T0, &q, 3);
        let v = run(a, &mut s, T0, &q, -2);
        assert_eq!(v.remaining, 3, "{a:?}");
        let v = run(a, &mut s, T0, &q, -10);
        assert_eq!(v.remaining, 4, "{a:?}");
        assert_eq!(s, None, "{a:?}: a fully refunded key is deleted");
    }
}

#[test]
fn gcra_and_token_bucket_take_the_same_decisions_on_a_fixed_schedule() {
    let q = Quota::new(7, 3_000).burst(3);
    let (mut g, mut t) = (None, None);
    for i in 0..500u64 {
        let now = T0 + i * 97 % 4_001 + i * 40;
        let cost = i64::try_from(i % 4).unwrap_or(1);
        assert_eq!(
            run(Algorithm::Gcra, &mut g, now, &q, cost),
            run(Algorithm::TokenBucket, &mut t, now, &q, cost),
            "request {i}"
        );
    }
}

#[test]
fn a_rejection_by_one_policy_charges_none() {
    let policies = [
        (Algorithm::Gcra, Quota::new(10, 1_000)),
        (Algorithm::FixedWindow, Quota::new(1, 1_000)),
        (Algorithm::SlidingWindow, Quota::new(10, 1_000)),
    ];
    let mut states = [None, None, None];
    let steps = decide_all(&policies, &states, T0, 1);
    assert!(steps.iter().all(|s| s.verdict.allowed));
    for (state, step) in states.iter_mut().zip(steps) {
        if let Write::Set(s, _) = step.write {
            *state = Some(s);
        }
    }
    let steps = decide_all(&policies, &states, T0, 1);
    assert!(
        steps.iter().all(|s| s.write == Write::Keep),
        "nothing written"
    );
    assert!(steps[0].verdict.allowed && !steps[1].verdict.allowed);
    assert_eq!(steps[0].verdict.remaining, 9, "reported uncharged");
    assert_eq!(steps[2].verdict.remaining, 9);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// `retry_after` is exact: one millisecond earlier the same request is still refused, on time it passes.
    #[test]
    fn retry_after_is_exact(
        a in algorithms(),
        limit in 1u64..20,
        period in 1u64..20_000,
        burst in 1u64..20,
        schedule in prop::collection::vec((0u64..3_000, 0i64..4), 1..60),
    ) {
        let q = Quota::new(limit, period).burst(burst);
        let mut s = None;
        let mut now = T0;
        for (gap, cost) in schedule {
            now += gap;
            let cost = cost.min(i64::try_from(a.capacity(&q)).unwrap_or(1));
            let step = decide(a, s.as_ref(), now, &q, cost);
            if !step.verdict.allowed {
                prop_assert_eq!(&step.write, &Write::Keep, "rejections never write");
                let wait = step.verdict.retry_after_ms;
                prop_assert!(wait > 0);
                prop_assert!(decide(a, s.as_ref(), now + wait, &q, cost).verdict.allowed, "passes on time");
                prop_assert!(!decide(a, s.as_ref(), now + wait - 1, &q, cost).verdict.allowed, "not 1 ms early");
                prop_assert!(step.verdict.reset_ms >= wait || cost == 0);
            }
            if cost == 0 {
                prop_assert_eq!(&step.write, &Write::Keep, "peeks never write");
            }
            run(a, &mut s, now, &q, cost);
        }
    }

    /// A key's TTL is long enough: once it has passed, decisions are those of a missing key.
    #[test]
    fn expiry_never_changes_a_decision(
        a in algorithms(),
        limit in 1u64..20,
        period in 1u64..20_000,
        schedule in prop::collection::vec((0u64..3_000, 1i64..3), 1..40),
        later in 0u64..50_000,
    ) {
        let q = Quota::new(limit, period);
        let mut s = None;
        let mut now = T0;
        for (gap, cost) in schedule {
            now += gap;
            let cost = cost.min(i64::try_from(limit).unwrap_or(1));
            let step = decide(a, s.as_ref(), now, &q, cost);
            if let Write::Set(state, ttl) = step.write {
                let t = now + ttl + later;
                prop_assert_eq!(decide(a, Some(&state), t, &q, 1), decide(a, None, t, &q, 1));
            }
            run(a, &mut s, now, &q, cost);
        }
    }

    /// Fixed windows never allow more than the limit per window; GCRA never more than
    /// `burst + elapsed * limit / period`.
    #[test]
    fn counts_stay_within_the_quota(
        limit in 1u64..30,
        period in 100u64..10_000,
        gaps in prop::collection::vec(0u64..500, 1..200),
    ) {
        let q = Quota::new(limit, period);
        let (mut f, mut g) = (None, None);
        let mut now = T0;
        let mut per_window = std::collections::HashMap::<u64, u64>::new();
        let mut gcra_allowed = 0u64;
        for gap in gaps {
            now += gap;
            if run(Algorithm::FixedWindow, &mut f, now, &q, 1).allowed {
                *per_window.entry(now / period).or_default() += 1;
            }
            if run(Algorithm::Gcra, &mut g, now, &q, 1).allowed {
                gcra_allowed += 1;
            }
            prop_assert!(gcra_allowed <= limit + (now - T0) * limit / period);
        }
        prop_assert!(per_window.values().all(|n| *n <= limit));
    }

    /// The sliding log is the exact sliding window: what it allowed never exceeds the limit in any
    /// `period` ms, and it refuses only when the allowed costs of the last `period` ms leave no room.
    #[test]
    fn the_sliding_log_is_exact(
        limit in 1u64..30,
        period in 10u64..5_000,
        schedule in prop::collection::vec((0u64..400, 0i64..4), 1..200),
    ) {
        let q = Quota::new(limit, period);
        let mut s = None;
        let mut now = T0;
        let mut allowed: Vec<(u64, u64)> = Vec::new();
        for (gap, cost) in schedule {
            now += gap;
            let cost = cost.min(i64::try_from(limit).unwrap_or(1));
            let in_window: u64 = allowed
                .iter()
                .filter(|(t, _)| t + period > now)
                .map(|(_, c)| c)
                .sum();
            let n = units(cost);
            let v = run(Algorithm::SlidingLog, &mut s, now, &q, cost);
            prop_assert_eq!(v.allowed, in_window + n <= limit, "at +{} cost {}", now - T0, cost);
            if v.allowed && cost > 0 {
                allowed.push((now, n));
                prop_assert_eq!(v.remaining, limit - in_window - n);
            }
        }
    }
}
