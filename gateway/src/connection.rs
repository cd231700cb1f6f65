//! Limits on client connections: how long one may wait without a request, how long a request's head
//! may take to arrive, how many may be open at once, and a way for a handler to close its own.
//!
//! The HTTP library only enforces a header-read timeout when a timer is configured, which `axum::serve`
//! does not do, and even then it measures the idle time between two requests with the same timer. So
//! the gateway keeps its own per-connection clock in the socket wrapper [`Watched`], told by
//! [`track`] (from the request middleware) when a request starts and when its response has been
//! handed over:
//!
//! - a new connection must deliver a complete request head within `--header-timeout-ms` of being
//!   accepted (a silent connection, or one that dribbles a header line now and then, is closed);
//! - between requests, a connection may wait `--idle-timeout-ms` for the first byte of the next
//!   request (or for the client to read the previous response: any write moves the clock), then has
//!   `--header-timeout-ms` for the rest of the head;
//! - while a request is being handled nothing is timed here: the body timeout, the Redis deadline and
//!   the SSE stream's own limits apply.
//!
//! Past either timeout the socket reports an error to the HTTP library, which closes the connection.
//! [`Guarded`] counts open connections and closes any beyond `--max-connections` at once, without
//! reading from it, so that a flood cannot exhaust the process's file descriptors and lock out
//! everyone. A handler can end its connection with [`Activity::abort`] (a stalled SSE reader).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::extract::connect_info::{ConnectInfo, Connected};
use axum::response::Response;
use axum::serve::{IncomingStream, Listener};
use futures_util::task::AtomicWaker;
use http_body_util::BodyExt as _;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use crate::metrics::{ClientConnection, Metrics};

/// The timeouts of one connection.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// From accepting a connection, or from the first byte of a later request, to a complete head.
    pub header: Duration,
    /// Between requests, until the first byte of the next one.
    pub idle: Duration,
}

/// What a connection's socket and its requests share.
#[derive(Default)]
pub struct Activity {
    /// Requests being handled or whose response body has not been handed over yet.
    busy: AtomicUsize,
    /// Counts the times `busy` dropped to zero.
    idle_epoch: AtomicU64,
    aborted: AtomicBool,
    /// The connection's task, woken by [`Activity::abort`].
    waker: AtomicWaker,
}

impl Activity {
    /// Closes the connection: its next read or write fails, and its task is woken to do one.
    pub fn abort(&self) {
        self.aborted.store(true, Ordering::Release);
        self.waker.wake();
    }

    fn begin(&self) {
        self.busy.fetch_add(1, Ordering::Relaxed);
    }

    fn end(&self) {
        if self.busy.fetch_sub(1, Ordering::Relaxed) == 1 {
            self.idle_epoch.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The connection a request came on, in its extensions (as `ConnectInfo<Conn>`).
#[derive(Clone)]
pub struct Conn(pub Arc<Activity>);

impl<L> Connected<IncomingStream<'_, Guarded<L>>> for Conn
where
    L: Listener,
    L::Io: Unpin,
{
    fn connect_info(stream: IncomingStream<'_, Guarded<L>>) -> Self {
        Conn(Arc::clone(&stream.io().activity))
    }
}

/// Marks the request's connection busy from the request's arrival until its response body has been
/// handed over (dropped by the HTTP library), so [`Watched`] times only what lies between requests.
/// Called by the one middleware every request passes ([`crate::observe::frame`]: each middleware
/// layer costs an allocation and a move of the whole request future), with [`Busy::until_sent`] on
/// the response.
pub fn track(request: &Request) -> Option<Busy> {
    let ConnectInfo(Conn(activity)) = request.extensions().get::<ConnectInfo<Conn>>()?;
    activity.begin();
    Some(Busy(Arc::clone(activity)))
}

impl Busy {
    /// Keeps the request counted as busy until `response`'s body is dropped.
    pub fn until_sent(self, response: Response) -> Response {
        // The closure owns `self`, so the request counts as busy until the body is dropped.
        response.map(|body| {
            Body::new(body.map_err(move |e| {
                let _ = &self;
                e
            }))
        })
    }
}

/// Counts one request as busy until dropped.
pub struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.end();
    }
}

/// A listener whose connections are [`Watched`] (and counted in the metrics), and, with a cap, at
/// most that many at once.
pub struct Guarded<L> {
    inner: L,
    timeouts: Timeouts,
    cap: Option<Cap>,
    metrics: Arc<Metrics>,
}

/// The open connections of a [`Guarded`] listener and their maximum.
struct Cap {
    open: Arc<AtomicUsize>,
    max: usize,
    refused: Refusals,
}

impl<L> Guarded<L> {
    /// Watches the connections of `inner`; `max`, if given, caps how many are open at once (pass
    /// `None` when the caller caps them itself, as the acceptor of [`crate::run`] does).
    pub fn new(inner: L, timeouts: Timeouts, max: Option<usize>, metrics: Arc<Metrics>) -> Self {
        Guarded {
            inner,
            timeouts,
            cap: max.map(|max| Cap {
                open: Arc::new(AtomicUsize::new(0)),
                max,
                refused: Refusals::new(Arc::clone(&metrics)),
            }),
            metrics,
        }
    }
}

impl<L> Listener for Guarded<L>
where
    L: Listener,
    L::Io: Unpin,
{
    type Io = Watched<L::Io>;
    type Addr = L::Addr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (io, addr) = self.inner.accept().await;
            let slot = match &self.cap {
                None => None,
                Some(cap) => {
                    if cap.open.fetch_add(1, Ordering::AcqRel) >= cap.max {
                        cap.open.fetch_sub(1, Ordering::AcqRel);
                        cap.refused.note(cap.max);
                        // Dropped unread: closed at once.
                        continue;
                    }
                    Some(Open(Arc::clone(&cap.open)))
                }
            };
            let counted = self.metrics.client_connection();
            return (Watched::new(io, self.timeouts, slot, counted), addr);
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// Counts refused connections (in the metrics) and logs them at most once a second, with how many
/// there were.
pub struct Refusals {
    metrics: Arc<Metrics>,
    last_logged: std::sync::Mutex<Option<std::time::Instant>>,
}

impl Refusals {
    /// Counts into `metrics`.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Refusals {
            metrics,
            last_logged: std::sync::Mutex::new(None),
        }
    }

    /// Counts a connection refused because `max` were open, and logs now and then.
    pub fn note(&self, max: usize) {
        let count = self.metrics.connection_refused();
        let mut last = self.last_logged.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_none_or(|at| at.elapsed() >= Duration::from_secs(1)) {
            *last = Some(std::time::Instant::now());
            tracing::warn!(
                max_connections = max,
                refused = count,
                "connection refused: --max-connections are open"
            );
        }
    }
}

/// One open connection of a capped listener; counted down when dropped.
struct Open(Arc<AtomicUsize>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A client connection's socket with the timeouts of this module.
pub struct Watched<Io> {
    io: Io,
    activity: Arc<Activity>,
    timeouts: Timeouts,
    timer: Pin<Box<Sleep>>,
    /// The `idle_epoch` the timer was last armed for.
    armed_epoch: u64,
    /// Whether the timer runs for a head (bytes of it have arrived) rather than for idleness.
    head_started: bool,
    /// Whether a write succeeded since the timer was armed.
    wrote: bool,
    _open: Option<Open>,
    _counted: ClientConnection,
}

impl<Io> Watched<Io> {
    fn new(io: Io, timeouts: Timeouts, open: Option<Open>, counted: ClientConnection) -> Self {
        Watched {
            io,
            activity: Arc::new(Activity::default()),
            timeouts,
            // A new connection owes its first request head at once.
            timer: Box::pin(tokio::time::sleep(timeouts.header)),
            armed_epoch: 0,
            head_started: true,
            wrote: false,
            _open: open,
            _counted: counted,
        }
    }

    fn aborted(&self) -> bool {
        self.activity.aborted.load(Ordering::Acquire)
    }

    fn arm(&mut self, after: Duration) {
        self.timer.as_mut().reset(Instant::now() + after);
    }
}

fn aborted_error() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionAborted, "closed by the gateway")
}

impl<Io: AsyncRead + Unpin> AsyncRead for Watched<Io> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.aborted() {
            return Poll::Ready(Err(aborted_error()));
        }
        let before = buf.filled().len();
        let poll = Pin::new(&mut this.io).poll_read(cx, buf);
        if this.activity.busy.load(Ordering::Relaxed) > 0 {
            if poll.is_pending() {
                this.activity.waker.register(cx.waker());
            }
            return poll;
        }
        match poll {
            Poll::Ready(Ok(())) if buf.filled().len() > before && !this.head_started => {
                // The first byte of the next request: its head is timed from here.
                this.head_started = true;
                let header = this.timeouts.header;
                this.arm(header);
                Poll::Ready(Ok(()))
            }
            Poll::Pending => {
                let epoch = this.activity.idle_epoch.load(Ordering::Relaxed);
                if epoch != this.armed_epoch || this.wrote {
                    // A response was handed over, or written further, since the timer was armed.
                    this.armed_epoch = epoch;
                    this.wrote = false;
                    this.head_started = false;
                    let idle = this.timeouts.idle;
                    this.arm(idle);
                }
                this.activity.waker.register(cx.waker());
                if this.timer.as_mut().poll(cx).is_ready() {
                    let which = if this.head_started { "header" } else { "idle" };
                    tracing::debug!(timeout = which, "closing a connection past its timeout");
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "connection timed out",
                    )));
                }
                Poll::Pending
            }
            other => other,
        }
    }
}

impl<Io: AsyncWrite + Unpin> AsyncWrite for Watched<Io> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.aborted() {
            return Poll::Ready(Err(aborted_error()));
        }
        let poll = Pin::new(&mut this.io).poll_write(cx, buf);
        this.after_write(cx, &poll);
        poll
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.aborted() {
            return Poll::Ready(Err(aborted_error()));
        }
        let poll = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.after_write(cx, &poll);
        poll
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.aborted() {
            return Poll::Ready(Err(aborted_error()));
        }
        let poll = Pin::new(&mut this.io).poll_flush(cx);
        if poll.is_pending() {
            this.activity.waker.register(cx.waker());
        }
        poll
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

impl<Io> Watched<Io> {
    fn after_write(&mut self, cx: &mut Context<'_>, poll: &Poll<io::Result<usize>>) {
        match poll {
            Poll::Ready(Ok(n)) if *n > 0 => self.wrote = true,
            Poll::Pending => self.activity.waker.register(cx.waker()),
            _ => {}
        }
    }
}

/// The soft limit on open files of this process, where the system tells (Linux).
pub fn open_file_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    parse_open_file_limit(&limits)
}

fn parse_open_file_limit(limits: &str) -> Option<usize> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_soft_open_file_limit() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max processes             63704                63704                processes \n\
                      Max open files            1024                 524288               files     \n";
        assert_eq!(parse_open_file_limit(limits), Some(1024));
        let unlimited =
            "Max open files            unlimited            unlimited            files\n";
        assert_eq!(parse_open_file_limit(unlimited), None);
        assert_eq!(parse_open_file_limit(""), None);
    }
}
