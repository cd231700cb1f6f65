//! Stampede protection.
//!
//! - **Single flight, per isolate**: concurrent lookups of one key share one origin call. The first
//!   becomes the leader; the others wait for what it lands (the encoded value, "not found", or the
//!   origin's error message). A leader whose future is dropped before it lands (its request was
//!   cancelled) lands [`Landed::Abandoned`], and its waiters go to the origin themselves rather than hang.
//! - **Lease, across isolates** (optional, for expensive origins): `SET <lock> <token> NX PX <ms>`; the
//!   holder calls the origin and releases the lease with a compare-and-delete script in the same round
//!   trip as its write, so it can never delete a lease that expired and was taken by someone else.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::LazyLock;
use std::task::{Context, Poll, Waker};

use crate::client::{Cmd, Script, cmd};

/// What a leader hands its waiters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Landed {
    /// The value, encoded as its payload.
    Found(Rc<str>),
    /// The origin said "not found".
    NotFound,
    /// The origin failed with this message.
    Failed(Rc<str>),
    /// The leader went away, or its value could not be encoded: go to the origin yourself.
    Abandoned,
}

#[derive(Debug, Default)]
struct Flight {
    landed: RefCell<Option<Landed>>,
    wakers: RefCell<Vec<Waker>>,
}

/// The flights in progress in this isolate, by key.
#[derive(Debug, Default)]
pub struct Flights {
    map: RefCell<HashMap<String, Rc<Flight>>>,
}

/// The outcome of [`Flights::join`].
#[derive(Debug)]
pub enum Role {
    /// Nobody is fetching this key: call the origin, then [`Leader::land`].
    Leader(Leader),
    /// Someone is: await this.
    Follower(Wait),
}

impl Flights {
    /// Becomes the leader for `key`, or a follower of the flight in progress.
    pub fn join(self: &Rc<Self>, key: &str) -> Role {
        let mut map = self.map.borrow_mut();
        if let Some(flight) = map.get(key) {
            return Role::Follower(Wait(Rc::clone(flight)));
        }
        let flight = Rc::new(Flight::default());
        map.insert(key.to_owned(), Rc::clone(&flight));
        Role::Leader(Leader {
            flights: Rc::clone(self),
            key: key.to_owned(),
            flight,
            landed: false,
        })
    }

    /// How many keys are being fetched right now.
    pub fn in_flight(&self) -> usize {
        self.map.borrow().len()
    }
}

/// The one lookup of a key that calls the origin.
#[derive(Debug)]
pub struct Leader {
    flights: Rc<Flights>,
    key: String,
    flight: Rc<Flight>,
    landed: bool,
}

impl Leader {
    /// Hands `landed` to every waiter, present and future, while the flight stays open: a lookup that
    /// arrives between the origin's answer and the end of the write still joins instead of calling the
    /// origin again. The flight ends when the leader is dropped (or [`Leader::land`]s).
    pub fn publish(&mut self, landed: Landed) {
        self.landed = true;
        *self.flight.landed.borrow_mut() = Some(landed);
        for waker in self.flight.wakers.borrow_mut().drain(..) {
            waker.wake();
        }
    }
}

impl Drop for Leader {
    fn drop(&mut self) {
        if !self.landed {
            self.publish(Landed::Abandoned);
        }
        self.flights.map.borrow_mut().remove(&self.key);
    }
}

/// A follower's wait for the leader's outcome: await [`Wait::landed`].
#[derive(Debug)]
pub struct Wait(Rc<Flight>);

/// How often a follower looks for the leader's outcome on wasm.
#[cfg(target_arch = "wasm32")]
const FOLLOWER_POLL_MS: u32 = 5;

impl Wait {
    /// The leader's outcome.
    ///
    /// On wasm the follower looks for it on its own timer instead of being woken by the leader. In
    /// workerd each request has its own I/O context, and a task woken from another request's code runs
    /// its continuation there: the follower's response would be built in the leader's context and the
    /// runtime refuses it ("Cannot perform I/O on behalf of a different request", a 500); and a request
    /// that waits on nothing of its own can be cancelled as hung. A timer the follower sets itself keeps
    /// it in its own context. Natively the leader wakes its followers.
    pub async fn landed(self) -> Landed {
        #[cfg(target_arch = "wasm32")]
        {
            loop {
                let current = self.0.landed.borrow().clone();
                if let Some(landed) = current {
                    return landed;
                }
                super::timer::sleep(FOLLOWER_POLL_MS).await;
            }
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            self.await
        }
    }
}

impl Future for Wait {
    type Output = Landed;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Landed> {
        if let Some(landed) = self.0.landed.borrow().clone() {
            return Poll::Ready(landed);
        }
        let mut wakers = self.0.wakers.borrow_mut();
        if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
            wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

/// Deletes the lease only if it still holds our token. KEYS[1] = lease key, ARGV[1] = token.
static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "-- Compare-and-delete: release a lease only if we still hold it.\n\
         -- KEYS[1] lease key; ARGV[1] our token. Returns 1 if deleted, 0 otherwise.\n\
         if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end\n\
         return 0\n",
    )
});

/// The compare-and-delete script that releases a lease.
pub fn release_script() -> &'static Script {
    &RELEASE
}

/// `SET <lock> <token> NX PX <ms>`: replies `OK` when taken, nil when someone holds it.
pub fn acquire(lock_key: &str, token: &str, ms: u64) -> Cmd {
    cmd("SET")
        .arg(lock_key)
        .arg(token)
        .arg("NX")
        .arg("PX")
        .arg(ms)
}

thread_local! {
    static SEQUENCE: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// A lease token unique enough to tell holders apart (not a secret: it only guards the release).
pub fn token(now_ms: u64) -> String {
    let n = SEQUENCE.with(|s| {
        s.set(s.get().wrapping_add(1));
        s.get()
    });
    #[cfg(target_arch = "wasm32")]
    let noise = (js_sys::Math::random() * 4_294_967_296.0) as u64;
    #[cfg(not(target_arch = "wasm32"))]
    let noise = u64::from(std::process::id());
    format!("{now_ms:x}-{noise:x}-{n:x}")
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    #[test]
    fn followers_get_what_the_leader_lands() {
        let flights = Rc::new(Flights::default());
        let Role::Leader(leader) = flights.join("k") else {
            panic!("first is leader")
        };
        let Role::Follower(a) = flights.join("k") else {
            panic!("second follows")
        };
        let Role::Follower(b) = flights.join("k") else {
            panic!("third follows")
        };
        assert!(matches!(flights.join("other"), Role::Leader(_)));
        assert_eq!(flights.in_flight(), 1, "the other leader was dropped");
        let mut leader = leader;
        leader.publish(Landed::Found("v".into()));
        let Role::Follower(late) = flights.join("k") else {
            panic!("joins a published flight until the leader is done")
        };
        assert_eq!(pollster::block_on(late), Landed::Found("v".into()));
        drop(leader);
        assert_eq!(flights.in_flight(), 0);
        assert_eq!(pollster::block_on(a), Landed::Found("v".into()));
        assert_eq!(pollster::block_on(b), Landed::Found("v".into()));
        assert!(
            matches!(flights.join("k"), Role::Leader(_)),
            "a new flight after landing"
        );
    }

    #[test]
    fn a_dropped_leader_releases_its_followers() {
        let flights = Rc::new(Flights::default());
        let leader = flights.join("k");
        let Role::Follower(wait) = flights.join("k") else {
            panic!("follows")
        };
        drop(leader);
        assert_eq!(pollster::block_on(wait), Landed::Abandoned);
        assert_eq!(flights.in_flight(), 0);
    }

    #[test]
    fn lease_commands() {
        let args: Vec<String> = acquire("l", "t", 500)
            .args()
            .iter()
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        assert_eq!(args, ["SET", "l", "t", "NX", "PX", "500"]);
        assert_ne!(token(1), token(1));
        assert!(release_script().source().contains("GET"));
    }
}
