//! [`Pending`]: an operation added to a shared batch, finished after the batch is sent; and the session
//! scripts, each the shared prelude (`scripts/common.lua`) followed by its own body.

use std::sync::OnceLock;

use crate::Result;
use crate::client::{Handle, Script};

/// An operation added to a batch; [`Pending::finish`] reads its outcome once the batch was sent.
pub struct Pending<R> {
    pub(super) state: State<R>,
    /// Runs when the outcome is read, whatever it is (the session cache forgets what a write changed).
    pub(super) after: Option<Box<dyn FnOnce()>>,
}

impl<R: std::fmt::Debug> std::fmt::Debug for Pending<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
pub(super) enum State<R> {
    /// Decided without Redis (a malformed token, bad input).
    Ready(Result<R>),
    Waiting(Handle<R>),
}

impl<R: 'static> Pending<R> {
    pub(super) fn ready(value: Result<R>) -> Self {
        Pending {
            state: State::Ready(value),
            after: None,
        }
    }

    /// Runs `f` when the outcome is read, after anything set before.
    pub(super) fn after(mut self, f: impl FnOnce() + 'static) -> Self {
        self.after = Some(match self.after.take() {
            None => Box::new(f),
            Some(first) => Box::new(move || {
                first();
                f();
            }),
        });
        self
    }

    /// Whether the operation added a command to the batch (false when it was decided locally, for
    /// example for a malformed token).
    pub fn is_queued(&self) -> bool {
        matches!(self.state, State::Waiting(_))
    }

    /// The outcome.
    ///
    /// # Errors
    /// The batch's error for this entry when Redis could not be reached ([`Error::is_unavailable`](crate::Error::is_unavailable):
    /// answer 503, keep the cookie), a Redis or protocol error, [`Error::NotSent`](crate::Error::NotSent) before the batch was
    /// sent, or an input error decided before sending.
    pub fn finish(self) -> Result<R> {
        let outcome = match self.state {
            State::Ready(value) => value,
            State::Waiting(handle) => handle.take(),
        };
        if let Some(after) = self.after {
            after();
        }
        outcome
    }
}

pub(super) struct Scripts {
    pub(super) load: Script,
    pub(super) update: Script,
    pub(super) incr: Script,
    pub(super) issue: Script,
    pub(super) list: Script,
    pub(super) revoke: Script,
    pub(super) revoke_user: Script,
}

macro_rules! session_script {
    ($file:literal) => {
        Script::new(concat!(
            include_str!("scripts/common.lua"),
            include_str!(concat!("scripts/", $file))
        ))
    };
}

pub(super) fn scripts() -> &'static Scripts {
    static SCRIPTS: OnceLock<Scripts> = OnceLock::new();
    SCRIPTS.get_or_init(|| Scripts {
        load: session_script!("load.lua"),
        update: session_script!("update.lua"),
        incr: session_script!("incr.lua"),
        issue: session_script!("issue.lua"),
        list: session_script!("list.lua"),
        revoke: session_script!("revoke.lua"),
        revoke_user: session_script!("revoke_user.lua"),
    })
}
