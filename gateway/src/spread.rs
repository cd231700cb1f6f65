//! Spreading connections over the server threads of [`run`](crate::run).
//!
//! One acceptor takes every connection from the listening socket and hands it to the thread that
//! holds the fewest open connections at that moment (the lowest index on a tie). Threads that all
//! wait on one socket instead split connections by who wakes first, which leaves one thread with
//! most of a few long-lived keep-alive connections while the other idles; handing them out by count
//! keeps the threads' shares within one connection of each other whenever connections live alike.
//!
//! The choice is [`least_loaded`] (pure, unit-tested); [`Handed`] is a thread's side: an
//! [`axum::serve::Listener`] fed by a channel, whose streams ([`Counted`]) give their slot back when
//! the connection closes.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// The index of the smallest count (the first of equals); `None` when there are none.
pub(crate) fn least_loaded(counts: impl IntoIterator<Item = usize>) -> Option<usize> {
    counts
        .into_iter()
        .enumerate()
        .min_by_key(|&(index, count)| (count, index))
        .map(|(index, _)| index)
}

/// The acceptor's handle on one thread: where to send its connections and how many it holds.
pub(crate) struct Outlet {
    sender: mpsc::UnboundedSender<std::net::TcpStream>,
    open: Arc<AtomicUsize>,
}

/// Connections open over all threads.
pub(crate) fn open(outlets: &[Outlet]) -> usize {
    outlets
        .iter()
        .map(|outlet| outlet.open.load(Ordering::Relaxed))
        .sum()
}

/// Builds the two sides for one thread.
pub(crate) fn channel(local: SocketAddr) -> (Outlet, Handed) {
    let (sender, streams) = mpsc::unbounded_channel();
    let open = Arc::new(AtomicUsize::new(0));
    (
        Outlet {
            sender,
            open: Arc::clone(&open),
        },
        Handed {
            streams,
            open,
            local,
        },
    )
}

/// Hands `stream` to the outlet with the fewest open connections. A thread that has stopped is
/// skipped; `false` when none is left.
pub(crate) fn hand_out(outlets: &[Outlet], stream: std::net::TcpStream) -> bool {
    let mut stream = stream;
    let mut closed = vec![false; outlets.len()];
    loop {
        let counts = outlets.iter().zip(&closed).map(|(outlet, &gone)| {
            if gone {
                usize::MAX
            } else {
                outlet.open.load(Ordering::Relaxed)
            }
        });
        let Some(index) = least_loaded(counts).filter(|&i| !closed[i]) else {
            return false;
        };
        let outlet = &outlets[index];
        outlet.open.fetch_add(1, Ordering::Relaxed);
        match outlet.sender.send(stream) {
            Ok(()) => return true,
            Err(returned) => {
                outlet.open.fetch_sub(1, Ordering::Relaxed);
                closed[index] = true;
                stream = returned.0;
            }
        }
    }
}

/// A server thread's listener: the connections the acceptor hands to it.
pub(crate) struct Handed {
    streams: mpsc::UnboundedReceiver<std::net::TcpStream>,
    open: Arc<AtomicUsize>,
    local: SocketAddr,
}

impl axum::serve::Listener for Handed {
    type Io = Counted;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Counted, SocketAddr) {
        loop {
            let Some(stream) = self.streams.recv().await else {
                // The acceptor has stopped: the server's shutdown is under way and ends this wait.
                return std::future::pending().await;
            };
            let slot = Slot(Arc::clone(&self.open));
            let peer = stream.peer_addr().unwrap_or(self.local);
            match stream
                .set_nonblocking(true)
                .and_then(|()| TcpStream::from_std(stream))
            {
                Ok(stream) => {
                    return (
                        Counted {
                            stream,
                            _slot: slot,
                        },
                        peer,
                    );
                }
                Err(error) => tracing::warn!(%error, "a handed-over connection was dropped"),
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }
}

/// One open connection of a thread; counted down when dropped.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A connection that holds its thread's slot while it is open.
pub(crate) struct Counted {
    stream: TcpStream,
    _slot: Slot,
}

impl Counted {
    /// The socket, for options such as `TCP_NODELAY`.
    pub(crate) fn tcp(&self) -> &TcpStream {
        &self.stream
    }
}

impl AsyncRead for Counted {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fewest_connections_win_and_ties_go_to_the_lowest_index() {
        assert_eq!(least_loaded([3, 1, 2]), Some(1));
        assert_eq!(least_loaded([2, 2, 2]), Some(0));
        assert_eq!(least_loaded([5, 0, 0]), Some(1));
        assert_eq!(least_loaded([7]), Some(0));
        assert_eq!(least_loaded(std::iter::empty()), None);
    }

    fn pair(listener: &std::net::TcpListener) -> std::net::TcpStream {
        let addr = listener.local_addr().unwrap();
        let _client = std::net::TcpStream::connect(addr).unwrap();
        let (server, _) = listener.accept().unwrap();
        server
    }

    #[tokio::test]
    async fn connections_alternate_and_a_closed_one_frees_its_slot() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let local = listener.local_addr().unwrap();
        let (a_out, mut a) = channel(local);
        let (b_out, mut b) = channel(local);
        let outlets = [a_out, b_out];
        use axum::serve::Listener as _;

        for _ in 0..4 {
            assert!(hand_out(&outlets, pair(&listener)));
        }
        let counts = || {
            outlets
                .iter()
                .map(|o| o.open.load(Ordering::Relaxed))
                .collect::<Vec<_>>()
        };
        assert_eq!(counts(), [2, 2]);
        let (first_a, _) = a.accept().await;
        let (_second_a, _) = a.accept().await;
        let (_first_b, _) = b.accept().await;
        drop(first_a);
        assert_eq!(counts(), [1, 2], "a closed connection gives its slot back");
        assert!(hand_out(&outlets, pair(&listener)));
        assert_eq!(
            counts(),
            [2, 2],
            "the next one goes to the thread with fewer"
        );
    }

    #[tokio::test]
    async fn a_stopped_thread_is_skipped_and_none_left_is_reported() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let local = listener.local_addr().unwrap();
        let (a_out, a) = channel(local);
        let (b_out, b) = channel(local);
        let outlets = [a_out, b_out];
        drop(a);
        assert!(hand_out(&outlets, pair(&listener)));
        assert!(hand_out(&outlets, pair(&listener)));
        assert_eq!(outlets[0].open.load(Ordering::Relaxed), 0);
        assert_eq!(outlets[1].open.load(Ordering::Relaxed), 2);
        drop(b);
        assert!(!hand_out(&outlets, pair(&listener)));
        assert_eq!(outlets[1].open.load(Ordering::Relaxed), 2);
    }
}
