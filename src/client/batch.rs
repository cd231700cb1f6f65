//! Batches: many commands in one round trip, each read back through its own typed [`Handle`].
//!
//! A [`Batch`] is a pipeline (`/pipeline`: in order, not atomic) from [`Client::batch`], or a transaction
//! (`/multi-exec`: atomic) from [`Client::transaction`]. Independent components add their commands to the
//! same batch, the route sends it once, and each component reads its own result:
//!
//! ```no_run
//! # async fn demo(client: &redge::Client, limiter: &redge::RateLimiter) -> redge::Result<()> {
//! use redge::client::commands;
//! let batch = client.batch();
//! let hits = batch.add::<i64>(commands::incr("hits"));               // a component's command
//! let check = limiter.prepare(&batch, &[("per-ip", "203.0.113.7")], 1)?; // another's script
//! batch.send().await?;                                               // ONE round trip
//! let hits = hits.take()?;                                           // typed, per-entry errors
//! let decision = check.finish();                                     // its failure policy applied
//! # Ok(()) }
//! ```
//!
//! [`Plan`](crate::Plan) sends such a batch with the right deadline for the capabilities in it.
//!
//! A component offers `fn prepare<T: Transport>(&self, batch: &Batch<'_, T>) -> Handle<Its>` built with
//! [`Batch::add`] or [`Batch::add_script`] and, for its decode step, [`Handle::map`]: the caller never
//! sees the raw reply.
//!
//! # Guarantees
//!
//! - Order is kept: commands are sent in the order they were added, reads and writes together (the
//!   official SDK splits reads from writes since 1.38).
//! - One entry's error (a Redis error, a type mismatch) is that entry's alone; the others are unaffected.
//! - A pipeline over [`Options::max_batch_commands`](super::Options::max_batch_commands) commands or
//!   [`Options::max_request_bytes`](super::Options::max_request_bytes) bytes is sent as several requests,
//!   one after the other, in order. If one of them fails, it and the ones after it are not applied by us
//!   (they are not sent), and their handles report the error.
//! - A transaction cannot be split: one over the byte limit is refused with [`Error::TooLarge`] before
//!   anything is sent.
//! - Scripts in a pipeline follow [`Client::eval`]'s policy (EVAL on first use per isolate, EVALSHA
//!   after). When an `EVALSHA` entry fails with NOSCRIPT, exactly those entries are sent again as `EVAL`
//!   in one more round trip, so a batch costs one round trip, two after Redis lost a script. (The re-sent
//!   script then runs after the batch's later commands rather than before them.) Scripts in a
//!   transaction are always sent as `EVAL`: a NOSCRIPT there could not be repaired without breaking
//!   atomicity.
//! - Retries: a request whose commands are all read-only is retried like [`Client::query`]; one with a
//!   write is not, unless [`Options::retry_writes`](super::Options::retry_writes) is set.

use std::cell::RefCell;
use std::ops::Range;
use std::rc::Rc;

use super::cmd::Cmd;
use super::script::{Invocation, is_loaded, is_noscript, set_loaded};
use super::{Client, FromReply, Reply, Script, ToArg, Transport, convert, protocol};
use crate::{Error, Result};

/// Commands gathered for one round trip; see the [module docs](self).
#[derive(Debug)]
pub struct Batch<'c, T: Transport> {
    client: &'c Client<T>,
    atomic: bool,
    state: Rc<RefCell<State>>,
}

#[derive(Debug, Default)]
struct State {
    entries: Vec<Entry>,
    results: Vec<Option<Result<Reply>>>,
    sent: bool,
}

#[derive(Debug)]
enum Entry {
    Command(Cmd),
    Script(Invocation),
}

/// The typed result of one entry of a [`Batch`], available after [`Batch::send`].
pub struct Handle<R> {
    state: Rc<RefCell<State>>,
    index: usize,
    decode: Box<dyn FnOnce(Reply) -> Result<R>>,
}

impl<R> std::fmt::Debug for Handle<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle")
            .field("index", &self.index)
            .finish()
    }
}

impl<R: 'static> Handle<R> {
    /// The entry's result.
    ///
    /// # Errors
    /// [`Error::NotSent`] before the batch was sent; the entry's own error (a Redis error, a
    /// [`Error::Type`] mismatch); or the error of the request that carried (or should have carried) it.
    pub fn take(self) -> Result<R> {
        let mut state = self.state.borrow_mut();
        let outcome = state.results.get_mut(self.index).and_then(Option::take);
        let sent = state.sent;
        drop(state);
        match outcome {
            Some(Ok(reply)) => (self.decode)(reply),
            Some(Err(e)) => Err(e),
            None if !sent => Err(Error::NotSent),
            None => Err(Error::Protocol("no result for this batch entry".into())),
        }
    }

    /// A handle whose result is `f` applied to this one's: a component's decode step.
    pub fn map<U>(self, f: impl FnOnce(R) -> Result<U> + 'static) -> Handle<U> {
        let decode = self.decode;
        Handle {
            state: self.state,
            index: self.index,
            decode: Box::new(move |reply| decode(reply).and_then(f)),
        }
    }
}

impl<T: Transport> Client<T> {
    /// An empty pipeline: commands run in order, not atomically, in as few round trips as the size
    /// limits allow (one, normally).
    pub fn batch(&self) -> Batch<'_, T> {
        Batch {
            client: self,
            atomic: false,
            state: Rc::default(),
        }
    }

    /// An empty transaction (`MULTI` ... `EXEC`): all of its commands run, atomically, or none.
    pub fn transaction(&self) -> Batch<'_, T> {
        Batch {
            client: self,
            atomic: true,
            state: Rc::default(),
        }
    }

    /// Sends `cmds` as one pipeline and returns each command's reply or error, in order.
    ///
    /// # Errors
    /// As [`Batch::send`].
    pub async fn pipeline(&self, cmds: &[Cmd]) -> Result<Vec<Result<Reply>>> {
        let batch = self.batch();
        let handles: Vec<Handle<Reply>> = cmds.iter().map(|c| batch.add(c.clone())).collect();
        batch.send().await?;
        Ok(handles.into_iter().map(Handle::take).collect())
    }
}

impl<T: Transport> Batch<'_, T> {
    /// Adds a command; its reply will be read as `R`.
    pub fn add<R: FromReply + 'static>(&self, cmd: Cmd) -> Handle<R> {
        let name = cmd.name().to_owned();
        self.push(Entry::Command(cmd), move |reply| convert(&name, reply))
    }

    /// Adds a call of `script` with its keys and arguments; its reply will be read as `R`.
    pub fn add_script<R: FromReply + 'static, K: ToArg, A: ToArg>(
        &self,
        script: &Script,
        keys: impl IntoIterator<Item = K>,
        args: impl IntoIterator<Item = A>,
    ) -> Handle<R> {
        let call = Invocation::new(script, keys, args);
        self.push(Entry::Script(call), |reply| convert("EVALSHA", reply))
    }

    fn push<R>(
        &self,
        entry: Entry,
        decode: impl FnOnce(Reply) -> Result<R> + 'static,
    ) -> Handle<R> {
        let mut state = self.state.borrow_mut();
        state.entries.push(entry);
        state.results.push(None);
        Handle {
            state: Rc::clone(&self.state),
            index: state.entries.len() - 1,
            decode: Box::new(decode),
        }
    }

    /// How many commands were added.
    pub fn len(&self) -> usize {
        self.state.borrow().entries.len()
    }

    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sends every command and stores each result for its handle. An empty batch sends nothing.
    ///
    /// # Errors
    /// The first request-level failure (transport, timeout, HTTP status, an aborted transaction, a
    /// malformed response, [`Error::TooLarge`], [`Error::InvalidArgument`]); the handles it concerns report
    /// it too. Errors of single entries are not returned here but by their handles.
    pub async fn send(self) -> Result<()> {
        let entries = std::mem::take(&mut self.state.borrow_mut().entries);
        let outcome = if entries.is_empty() {
            Ok(Vec::new())
        } else if self.atomic {
            self.send_transaction(&entries).await
        } else {
            self.send_pipeline(&entries).await
        };
        let mut state = self.state.borrow_mut();
        state.sent = true;
        match outcome {
            Ok(results) => {
                let first_failure = results.iter().find_map(|r| match r {
                    Err(e) if e.is_request_level() => Some(e.clone()),
                    _ => None,
                });
                state.results = results.into_iter().map(Some).collect();
                first_failure.map_or(Ok(()), Err)
            }
            Err(e) => {
                state.results = entries.iter().map(|_| Some(Err(e.clone()))).collect();
                Err(e)
            }
        }
    }

    /// Sends like [`Batch::send`], but waits at most `ms`: past it, every handle reports
    /// [`Error::Timeout`] (the request is left to the client's own deadline). This is how a batch shared
    /// by components that fail open (a cache read, a rate-limit check) keeps to their short deadline.
    ///
    /// # Errors
    /// As [`Batch::send`], and [`Error::Timeout`] when `ms` passed first.
    pub async fn send_within(self, ms: u32) -> Result<()> {
        let state = Rc::clone(&self.state);
        let count = self.len();
        match super::within(ms, self.send()).await {
            Some(outcome) => outcome,
            None => {
                let mut state = state.borrow_mut();
                state.sent = true;
                state.results = (0..count).map(|_| Some(Err(Error::Timeout(ms)))).collect();
                Err(Error::Timeout(ms))
            }
        }
    }

    async fn send_transaction(&self, entries: &[Entry]) -> Result<Vec<Result<Reply>>> {
        // Always EVAL inside a transaction (see the module docs).
        let cmds: Vec<Cmd> = entries.iter().map(|e| entry_cmd(e, true)).collect();
        let encoded = encode_all(&cmds)?;
        let limit = self.client.options.max_request_bytes;
        let size = body_len(&encoded);
        if size > limit {
            return Err(Error::TooLarge(format!(
                "a transaction of {} commands and {size} bytes is over the {limit}-byte request limit, \
                 and a transaction cannot be split",
                cmds.len()
            )));
        }
        let read_only = cmds.iter().all(Cmd::is_read_only);
        let response = self
            .client
            .round_trip("/multi-exec", join(&encoded), cmds.len() as u64, read_only)
            .await?;
        let results = protocol::decode_batch(response.status, &response.body, true)?;
        if results.len() != cmds.len() {
            return Err(count_mismatch(cmds.len(), results.len()));
        }
        self.remember_scripts(entries, &results);
        Ok(results)
    }

    async fn send_pipeline(&self, entries: &[Entry]) -> Result<Vec<Result<Reply>>> {
        let url = self.client.url();
        let eval_first = self.client.options.eval_first;
        let sent_sha: Vec<bool> = entries
            .iter()
            .map(|e| match e {
                Entry::Script(call) => !eval_first || is_loaded(url, call.script.sha1()),
                Entry::Command(_) => false,
            })
            .collect();
        let cmds: Vec<Cmd> = entries
            .iter()
            .zip(&sent_sha)
            .map(|(e, sha)| entry_cmd(e, !sha))
            .collect();
        let mut results = self.run_chunks(&cmds).await?;

        // NOSCRIPT: send exactly those entries again, as EVAL, in one more round trip.
        let again: Vec<usize> = (0..entries.len())
            .filter(|&i| sent_sha[i] && results[i].as_ref().is_err_and(is_noscript))
            .collect();
        if !again.is_empty() {
            let retry: Vec<Cmd> = again
                .iter()
                .map(|&i| entry_cmd(&entries[i], true))
                .collect();
            let second = match self.run_chunks(&retry).await {
                Ok(second) => second,
                Err(e) => retry.iter().map(|_| Err(e.clone())).collect(),
            };
            for (i, result) in again.into_iter().zip(second) {
                results[i] = result;
            }
        }
        self.remember_scripts(entries, &results);
        Ok(results)
    }

    /// Sends `cmds` in as many `/pipeline` requests as the limits require, in order. When a request fails,
    /// it and the later ones are not sent and their entries carry its error.
    async fn run_chunks(&self, cmds: &[Cmd]) -> Result<Vec<Result<Reply>>> {
        let encoded = encode_all(cmds)?;
        let options = &self.client.options;
        let ranges = chunk(
            &encoded,
            options.max_request_bytes,
            options.max_batch_commands,
        )?;
        let mut results: Vec<Result<Reply>> = Vec::with_capacity(cmds.len());
        for range in ranges {
            let count = range.len();
            let read_only = cmds[range.clone()].iter().all(Cmd::is_read_only);
            let body = join(&encoded[range]);
            let outcome = match self
                .client
                .round_trip("/pipeline", body, count as u64, read_only)
                .await
            {
                Ok(r) => protocol::decode_batch(r.status, &r.body, true).and_then(|entries| {
                    if entries.len() == count {
                        Ok(entries)
                    } else {
                        Err(count_mismatch(count, entries.len()))
                    }
                }),
                Err(e) => Err(e),
            };
            match outcome {
                Ok(entries) => results.extend(entries),
                Err(e) => {
                    let missing = cmds.len() - results.len();
                    results.extend(std::iter::repeat_n(Err(e), missing));
                    break;
                }
            }
        }
        Ok(results)
    }

    fn remember_scripts(&self, entries: &[Entry], results: &[Result<Reply>]) {
        for (entry, result) in entries.iter().zip(results) {
            if let (Entry::Script(call), Ok(_)) = (entry, result) {
                set_loaded(self.client.url(), call.script.sha1(), true);
            }
        }
    }
}

impl Error {
    /// Whether the error concerns a whole request rather than one command's reply.
    fn is_request_level(&self) -> bool {
        !matches!(self, Error::Redis(_) | Error::Type { .. })
    }
}

fn entry_cmd(entry: &Entry, eval: bool) -> Cmd {
    match entry {
        Entry::Command(cmd) => cmd.clone(),
        Entry::Script(call) => call.cmd(eval),
    }
}

fn encode_all(cmds: &[Cmd]) -> Result<Vec<Vec<u8>>> {
    cmds.iter().map(protocol::encode_command).collect()
}

fn count_mismatch(sent: usize, got: usize) -> Error {
    Error::Protocol(format!("sent {sent} commands, got {got} results"))
}

/// The size of `[a,b,c]` built from encoded commands.
fn body_len(encoded: &[Vec<u8>]) -> usize {
    2 + encoded.iter().map(Vec::len).sum::<usize>() + encoded.len().saturating_sub(1)
}

fn join(encoded: &[Vec<u8>]) -> Vec<u8> {
    let mut body = Vec::with_capacity(body_len(encoded));
    body.push(b'[');
    for (i, cmd) in encoded.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(cmd);
    }
    body.push(b']');
    body
}

/// Splits encoded commands into consecutive ranges whose request bodies stay within `max_bytes` and
/// `max_commands`.
///
/// # Errors
/// [`Error::TooLarge`] when one command alone does not fit.
fn chunk(encoded: &[Vec<u8>], max_bytes: usize, max_commands: usize) -> Result<Vec<Range<usize>>> {
    let mut ranges = Vec::new();
    let mut start = 0;
    let mut size = 2; // the brackets
    for (i, cmd) in encoded.iter().enumerate() {
        if cmd.len() + 2 > max_bytes {
            return Err(Error::TooLarge(format!(
                "command {i} of the batch takes {} bytes, over the {max_bytes}-byte request limit",
                cmd.len()
            )));
        }
        let comma = usize::from(i > start);
        if i > start && (size + comma + cmd.len() > max_bytes || i - start >= max_commands) {
            ranges.push(start..i);
            start = i;
            size = 2;
        }
        size += usize::from(i > start) + cmd.len();
    }
    if start < encoded.len() {
        ranges.push(start..encoded.len());
    }
    Ok(ranges)
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests;
