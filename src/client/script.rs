//! Lua scripts: [`Script`] holds the source and its SHA1 (computed once, when the script is built);
//! [`Client::eval`] runs it with `EVALSHA`, falling back to `EVAL` on `NOSCRIPT`.
//!
//! # Round trips
//!
//! Each isolate remembers, per service URL, which scripts it has seen run (a small thread-local set that
//! the runtime drops with the isolate). The first use sends `EVAL` with the whole source, which also loads
//! the script into Redis's cache: one round trip, never a NOSCRIPT. Later uses send `EVALSHA`: one round
//! trip. If Redis has lost the script since (`SCRIPT FLUSH`, a restart, a failover), the `EVALSHA` fails
//! with NOSCRIPT and the call is repeated as `EVAL`: two round trips, once. With
//! [`Options::eval_first`](super::Options::eval_first) off, a cold isolate starts with `EVALSHA`, as the
//! official SDK does (two round trips when the script was never loaded).

use std::cell::RefCell;
use std::collections::HashSet;
use std::sync::Arc;

use super::cmd::{Cmd, ToArg, cmd};
use super::{Client, FromReply, Reply, Transport, convert};
use crate::{Error, Result};

/// A Lua script and its SHA1, cheap to clone and safe to keep in a `static`.
///
/// ```
/// use redge::client::Script;
/// let script = Script::new("return 1");
/// assert_eq!(script.sha1(), "e0e1f9fabfc9d4800c877a703b823ac0578ff8db");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    source: Arc<str>,
    sha1: Arc<str>,
}

impl Script {
    /// A script from its Lua source; the SHA1 (what `SCRIPT LOAD` answers) is computed here, once.
    pub fn new(source: impl Into<String>) -> Self {
        let source: String = source.into();
        let sha1 = sha1_smol::Sha1::from(source.as_bytes())
            .digest()
            .to_string();
        Script {
            source: source.into(),
            sha1: sha1.into(),
        }
    }

    /// The Lua source.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The lowercase hex SHA1 of the source, as Redis names the script.
    pub fn sha1(&self) -> &str {
        &self.sha1
    }

    /// `EVAL source numkeys keys... args...`.
    pub fn eval_cmd<K: ToArg, A: ToArg>(
        &self,
        keys: impl IntoIterator<Item = K>,
        args: impl IntoIterator<Item = A>,
    ) -> Cmd {
        Invocation::new(self, keys, args).cmd(true)
    }

    /// `EVALSHA sha1 numkeys keys... args...`.
    pub fn evalsha_cmd<K: ToArg, A: ToArg>(
        &self,
        keys: impl IntoIterator<Item = K>,
        args: impl IntoIterator<Item = A>,
    ) -> Cmd {
        Invocation::new(self, keys, args).cmd(false)
    }
}

/// One call of a script: the script, its keys and its arguments, already turned into bytes.
#[derive(Debug, Clone)]
pub(crate) struct Invocation {
    pub(crate) script: Script,
    keys: Vec<Vec<u8>>,
    args: Vec<Vec<u8>>,
}

impl Invocation {
    pub(crate) fn new<K: ToArg, A: ToArg>(
        script: &Script,
        keys: impl IntoIterator<Item = K>,
        args: impl IntoIterator<Item = A>,
    ) -> Self {
        let mut key_bytes = Vec::new();
        for key in keys {
            key.write_arg(&mut key_bytes);
        }
        let mut arg_bytes = Vec::new();
        for arg in args {
            arg.write_arg(&mut arg_bytes);
        }
        Invocation {
            script: script.clone(),
            keys: key_bytes,
            args: arg_bytes,
        }
    }

    /// `EVAL` with the source when `eval` is true, otherwise `EVALSHA` with the hash.
    pub(crate) fn cmd(&self, eval: bool) -> Cmd {
        let head = if eval {
            cmd("EVAL").arg(self.script.source())
        } else {
            cmd("EVALSHA").arg(self.script.sha1())
        };
        head.arg(self.keys.len())
            .args_from(&self.keys)
            .args_from(&self.args)
    }
}

/// Whether a Redis error says that the script is not in the cache.
pub(crate) fn is_noscript(error: &Error) -> bool {
    matches!(error, Error::Redis(text) if text.contains("NOSCRIPT"))
}

/// The most (service, script) pairs remembered per isolate; the set starts over when full.
const LOADED_CAP: usize = 256;

thread_local! {
    static LOADED: RefCell<HashSet<String>> = RefCell::new(HashSet::new());
}

fn loaded_key(url: &str, sha1: &str) -> String {
    format!("{sha1} {url}")
}

/// Whether this isolate has seen `sha1` run on the service at `url`.
pub(crate) fn is_loaded(url: &str, sha1: &str) -> bool {
    LOADED.with(|set| set.borrow().contains(&loaded_key(url, sha1)))
}

/// Remembers (or, with `loaded` false, forgets) that `sha1` is in the service's script cache.
pub(crate) fn set_loaded(url: &str, sha1: &str, loaded: bool) {
    LOADED.with(|set| {
        let mut set = set.borrow_mut();
        if loaded {
            if set.len() >= LOADED_CAP {
                set.clear();
            }
            set.insert(loaded_key(url, sha1));
        } else {
            set.remove(&loaded_key(url, sha1));
        }
    });
}

impl<T: Transport> Client<T> {
    /// Runs a script with its keys and arguments and converts the reply; see the [module docs](self) for
    /// the round trips.
    ///
    /// ```no_run
    /// # async fn demo(client: &redge::Client) -> redge::Result<()> {
    /// use redge::client::Script;
    /// let counter = Script::new("return redis.call('INCR', KEYS[1])");
    /// let n: i64 = client.eval(&counter, ["hits"], [] as [&str; 0]).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`Client::query`]; a script error is [`Error::Redis`] with Redis's text.
    pub async fn eval<R: FromReply, K: ToArg, A: ToArg>(
        &self,
        script: &Script,
        keys: impl IntoIterator<Item = K>,
        args: impl IntoIterator<Item = A>,
    ) -> Result<R> {
        let call = Invocation::new(script, keys, args);
        let sha1 = script.sha1();
        if !self.options.eval_first || is_loaded(self.url(), sha1) {
            let evalsha = call.cmd(false);
            match self.query::<Reply>(&evalsha).await {
                Ok(reply) => {
                    set_loaded(self.url(), sha1, true);
                    return convert(evalsha.name(), reply);
                }
                Err(e) if is_noscript(&e) => set_loaded(self.url(), sha1, false),
                Err(e) => return Err(e),
            }
        }
        let eval = call.cmd(true);
        let reply = self.query::<Reply>(&eval).await?;
        set_loaded(self.url(), sha1, true);
        convert(eval.name(), reply)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha1_matches_redis_script_load() {
        // Values from redis-server's own `SCRIPT LOAD`.
        assert_eq!(
            Script::new("return 1").sha1(),
            "e0e1f9fabfc9d4800c877a703b823ac0578ff8db"
        );
        assert_eq!(
            Script::new("").sha1(),
            "da39a3ee5e6b4b0d3255bfef95601890afd80709"
        );
    }

    #[test]
    fn eval_and_evalsha_carry_keys_then_args() {
        let script = Script::new("return KEYS[1]");
        let e = script.eval_cmd(["k1", "k2"], [&5i64 as &dyn ToArg, &"x"]);
        let args: Vec<&[u8]> = e.args().iter().map(Vec::as_slice).collect();
        assert_eq!(
            args,
            [
                &b"EVAL"[..],
                b"return KEYS[1]",
                b"2",
                b"k1",
                b"k2",
                b"5",
                b"x"
            ]
        );
        let s = script.evalsha_cmd(["k"], [] as [&str; 0]);
        assert_eq!(s.args()[1], script.sha1().as_bytes());
        assert_eq!(s.args()[2], b"1");
    }

    #[test]
    fn loaded_scripts_are_remembered_per_service() {
        set_loaded("http://a", "abc", true);
        assert!(is_loaded("http://a", "abc"));
        assert!(!is_loaded("http://b", "abc"));
        set_loaded("http://a", "abc", false);
        assert!(!is_loaded("http://a", "abc"));
        assert!(is_noscript(&Error::Redis(
            "NOSCRIPT No matching script.".into()
        )));
        assert!(!is_noscript(&Error::Redis("ERR x".into())));
    }
}
