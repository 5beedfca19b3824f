//! The byte copy after login. It parses nothing.
//!
//! nginx semantics kept on purpose: no half-close (when either side reaches EOF or
//! fails, with everything it sent already passed on, the session ends), and the idle
//! timeout (`proxy_timeout`) is re-armed only by activity on the client side.
//!
//! Memory: a logged-in IMAP session is mostly idle (IDLE, or a client that polls), so a
//! direction holds no buffer while it waits; one is allocated when its source becomes
//! readable and given back as soon as a read finds nothing more. A bulk transfer keeps
//! its buffer, and large reads become full-size TLS records.

use std::future::{poll_fn, Future};
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{sleep_until, Instant};

/// Why a relayed session ended, for the log.
#[derive(Debug)]
pub enum RelayEnd {
    ClientClosed,
    BackendClosed,
    ClientError(io::Error),
    BackendError(io::Error),
    ClientTimedOut,
}

/// A stream that can say "readable" without being read, so an idle direction needs no
/// buffer. The default says "ready" at once (the direction then waits in `read`).
pub trait ReadReady: AsyncRead + AsyncWrite + Unpin {
    fn poll_read_ready(&self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl ReadReady for tokio::net::TcpStream {
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        tokio::net::TcpStream::poll_read_ready(self, cx)
    }
}

#[cfg(test)]
impl ReadReady for tokio::io::DuplexStream {}

/// The largest read per direction. 64 KiB from the backend becomes four full TLS
/// records in one `SSL_write`, and one `recv` instead of nginx's sixteen 4 KiB ones.
pub const CHUNK: usize = 64 * 1024;

/// One direction of the copy. `buf` has capacity only while data flows.
struct Pipe {
    buf: Vec<u8>,
    /// How much of `buf` has been written already.
    start: usize,
    /// Bytes were written since the last flush: an idle wake-up need not flush.
    unflushed: bool,
    /// Bytes passed on so far (for the debug log).
    moved: u64,
}

/// What one poll of a direction achieved before it had to wait.
enum Progress {
    /// Waiting now; `read` / `wrote` say whether bytes moved on either side first.
    Pending {
        read: bool,
        wrote: bool,
    },
    /// The source closed, with everything it sent already written.
    Eof,
    ReadError(io::Error),
    WriteError(io::Error),
}

impl Pipe {
    fn new() -> Pipe {
        Pipe {
            buf: Vec::new(),
            start: 0,
            unflushed: false,
            moved: 0,
        }
    }

    /// Moves bytes from `from` to `to` until one of them would block.
    fn poll_copy<R: ReadReady, W: AsyncWrite + Unpin>(
        &mut self,
        cx: &mut Context<'_>,
        from: &mut R,
        to: &mut W,
    ) -> Progress {
        let (mut read, mut wrote) = (false, false);
        loop {
            while self.start < self.buf.len() {
                match Pin::new(&mut *to).poll_write(cx, &self.buf[self.start..]) {
                    Poll::Ready(Ok(0)) => {
                        return Progress::WriteError(io::ErrorKind::WriteZero.into())
                    }
                    Poll::Ready(Ok(n)) => {
                        self.start += n;
                        self.moved += n as u64;
                        wrote = true;
                        self.unflushed = true;
                    }
                    Poll::Ready(Err(e)) => return Progress::WriteError(e),
                    // Keep the buffer until the slow side has taken it all.
                    Poll::Pending => return Progress::Pending { read, wrote },
                }
            }
            // All of it handed over; a TLS client stream sends it now, as one `send`.
            if self.unflushed {
                match Pin::new(&mut *to).poll_flush(cx) {
                    Poll::Ready(Ok(())) => self.unflushed = false,
                    Poll::Ready(Err(e)) => return Progress::WriteError(e),
                    Poll::Pending => return Progress::Pending { read, wrote },
                }
            }
            self.buf.clear();
            self.start = 0;
            if self.buf.capacity() == 0 {
                match from.poll_read_ready(cx) {
                    Poll::Ready(Ok(())) => self.buf.reserve_exact(CHUNK),
                    Poll::Ready(Err(e)) => return Progress::ReadError(e),
                    Poll::Pending => return Progress::Pending { read, wrote },
                }
            }
            let mut rb = ReadBuf::uninit(self.buf.spare_capacity_mut());
            let ours = rb.filled().as_ptr();
            match Pin::new(&mut *from).poll_read(cx, &mut rb) {
                Poll::Ready(Ok(())) => {
                    // A `poll_read` may legally replace the ReadBuf with one over other
                    // memory (safe code can); then `filled` says nothing about our
                    // buffer, and trusting it would expose uninitialised bytes. Tokio's
                    // own `poll_read_buf` makes the same check.
                    assert_eq!(ours, rb.filled().as_ptr(), "poll_read swapped its buffer");
                    let n = rb.filled().len();
                    if n == 0 {
                        return Progress::Eof;
                    }
                    // SAFETY: `poll_read` initialised the first `n` bytes of the spare
                    // capacity: `filled` reports them, and it is still our buffer
                    // (checked above).
                    unsafe { self.buf.set_len(n) };
                    read = true;
                }
                Poll::Ready(Err(e)) => return Progress::ReadError(e),
                Poll::Pending => {
                    // Idle (or the readiness was stale): hold no memory while waiting.
                    self.buf = Vec::new();
                    return Progress::Pending { read, wrote };
                }
            }
        }
    }
}

/// Bytes a relay passed on: client → backend (`up`) and backend → client (`down`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Moved {
    pub up: u64,
    pub down: u64,
}

/// Relays until one side closes or the client is idle for `idle`; says why it ended
/// and how many bytes went each way.
pub async fn relay<C: ReadReady, B: ReadReady>(
    client: &mut C,
    backend: &mut B,
    idle: Duration,
) -> (RelayEnd, Moved) {
    let mut up = Pipe::new();
    let mut down = Pipe::new();
    let timer = sleep_until(Instant::now() + idle);
    tokio::pin!(timer);
    let end = poll_fn(|cx| {
        let mut client_active = false;
        match up.poll_copy(cx, client, backend) {
            Progress::Eof => return Poll::Ready(RelayEnd::ClientClosed),
            Progress::ReadError(e) => return Poll::Ready(RelayEnd::ClientError(e)),
            Progress::WriteError(e) => return Poll::Ready(RelayEnd::BackendError(e)),
            Progress::Pending { read, .. } => client_active |= read,
        }
        match down.poll_copy(cx, backend, client) {
            Progress::Eof => return Poll::Ready(RelayEnd::BackendClosed),
            Progress::ReadError(e) => return Poll::Ready(RelayEnd::BackendError(e)),
            Progress::WriteError(e) => return Poll::Ready(RelayEnd::ClientError(e)),
            Progress::Pending { wrote, .. } => client_active |= wrote,
        }
        if client_active {
            timer.as_mut().reset(Instant::now() + idle);
        }
        ready!(timer.as_mut().poll(cx));
        Poll::Ready(RelayEnd::ClientTimedOut)
    })
    .await;
    let moved = Moved {
        up: up.moved,
        down: down.moved,
    };
    (end, moved)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{duplex, AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn copies_both_ways_and_ends_on_client_eof() {
        let (mut client_far, mut client) = duplex(64);
        let (mut backend, mut backend_far) = duplex(64);
        let task =
            tokio::spawn(
                async move { relay(&mut client, &mut backend, Duration::from_secs(5)).await },
            );
        client_far.write_all(b"a1 SELECT INBOX\r\n").await.unwrap();
        let mut got = [0u8; 17];
        backend_far.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"a1 SELECT INBOX\r\n");
        backend_far.write_all(b"a1 OK done\r\n").await.unwrap();
        let mut got = [0u8; 12];
        client_far.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"a1 OK done\r\n");
        drop(client_far);
        let (end, moved) = task.await.unwrap();
        assert!(matches!(end, RelayEnd::ClientClosed));
        assert_eq!(moved, Moved { up: 17, down: 12 });
    }

    #[tokio::test]
    async fn a_large_transfer_arrives_intact_through_a_slow_reader() {
        let (mut client_far, mut client) = duplex(1000);
        let (mut backend, mut backend_far) = duplex(1 << 16);
        let task = tokio::spawn(async move {
            relay(&mut client, &mut backend, Duration::from_secs(5))
                .await
                .0
        });
        let body: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let sent = body.clone();
        let writer = tokio::spawn(async move {
            backend_far.write_all(&sent).await.unwrap();
            backend_far
        });
        let mut got = vec![0u8; body.len()];
        client_far.read_exact(&mut got).await.unwrap();
        assert!(got == body);
        drop(writer.await.unwrap());
        assert!(matches!(task.await.unwrap(), RelayEnd::BackendClosed));
    }

    /// A test stream's write side that takes everything and is always ready.
    macro_rules! write_sink {
        ($t:ty) => {
            impl AsyncWrite for $t {
                fn poll_write(
                    self: Pin<&mut Self>,
                    _: &mut Context<'_>,
                    b: &[u8],
                ) -> Poll<io::Result<usize>> {
                    Poll::Ready(Ok(b.len()))
                }
                fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
                    Poll::Ready(Ok(()))
                }
                fn poll_shutdown(
                    self: Pin<&mut Self>,
                    _: &mut Context<'_>,
                ) -> Poll<io::Result<()>> {
                    Poll::Ready(Ok(()))
                }
            }

            impl ReadReady for $t {}
        };
    }

    /// A reader that answers with a ReadBuf over memory of its own, as safe code may.
    struct SwapsBuffer;

    impl AsyncRead for SwapsBuffer {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let elsewhere: &'static mut [u8] = Box::leak(vec![b'x'; 16].into_boxed_slice());
            let mut other = ReadBuf::new(elsewhere);
            other.set_filled(16);
            *buf = other;
            Poll::Ready(Ok(()))
        }
    }

    write_sink!(SwapsBuffer);

    /// Trusting `filled()` of a swapped ReadBuf would hand 16 uninitialised bytes of
    /// our buffer to the backend; the relay stops instead.
    #[tokio::test]
    async fn a_reader_that_swaps_the_read_buffer_is_caught() {
        let (mut backend, _backend_far) = duplex(64);
        let task = tokio::spawn(async move {
            relay(&mut SwapsBuffer, &mut backend, Duration::from_secs(5))
                .await
                .0
        });
        let ended = tokio::time::timeout(Duration::from_secs(2), task).await;
        let err = ended
            .expect("the relay kept copying a swapped buffer")
            .expect_err("the relay trusted a swapped buffer");
        assert!(err.is_panic());
    }

    /// Says "readable" but has nothing to read: stale readiness, as after pre-auth.
    struct StaleReady;

    impl AsyncRead for StaleReady {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            _: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            Poll::Pending
        }
    }

    write_sink!(StaleReady);

    #[test]
    fn an_idle_direction_holds_no_buffer() {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut pipe = Pipe::new();
        let progress = pipe.poll_copy(&mut cx, &mut StaleReady, &mut StaleReady);
        assert!(matches!(
            progress,
            Progress::Pending {
                read: false,
                wrote: false
            }
        ));
        assert_eq!(pipe.buf.capacity(), 0, "a buffer kept by an idle session");
    }

    #[tokio::test(start_paused = true)]
    async fn idle_client_times_out_after_proxy_timeout() {
        let (mut client_far, mut client) = duplex(1 << 16);
        let (mut backend, mut backend_far) = duplex(1 << 16);
        let task = tokio::spawn(async move {
            relay(&mut client, &mut backend, Duration::from_secs(10))
                .await
                .0
        });
        // A write to the client counts as client activity (as in nginx); after it,
        // silence on both sides must end the session `proxy_timeout` later.
        backend_far.write_all(b"* 1 EXISTS\r\n").await.unwrap();
        let mut got = [0u8; 12];
        client_far.read_exact(&mut got).await.unwrap();
        let t0 = Instant::now();
        let end = task.await.unwrap();
        assert!(matches!(end, RelayEnd::ClientTimedOut), "{end:?}");
        let waited = t0.elapsed();
        assert!(
            waited >= Duration::from_secs(9) && waited <= Duration::from_secs(11),
            "{waited:?}"
        );
    }

    /// Holds what is written until it is flushed, as a TLS client stream does.
    struct HoldsUntilFlushed {
        held: Vec<u8>,
        sent: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    }

    impl ReadReady for HoldsUntilFlushed {}

    impl AsyncRead for HoldsUntilFlushed {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            _: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            Poll::Pending
        }
    }

    impl AsyncWrite for HoldsUntilFlushed {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            b: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.get_mut().held.extend_from_slice(b);
            Poll::Ready(Ok(b.len()))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            let this = self.get_mut();
            this.sent.lock().unwrap().append(&mut this.held);
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.poll_flush(cx)
        }
    }

    #[tokio::test]
    async fn what_reaches_a_buffering_client_is_flushed_before_the_relay_waits() {
        let sent = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut client = HoldsUntilFlushed {
            held: Vec::new(),
            sent: sent.clone(),
        };
        let (mut backend, mut backend_far) = duplex(1 << 16);
        let task = tokio::spawn(async move {
            relay(&mut client, &mut backend, Duration::from_secs(5))
                .await
                .0
        });
        backend_far.write_all(b"* 1 EXISTS\r\n").await.unwrap();
        for _ in 0..100 {
            if !sent.lock().unwrap().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(&sent.lock().unwrap()[..], b"* 1 EXISTS\r\n");
        task.abort();
    }
}
