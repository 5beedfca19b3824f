//! The TCP socket under a client's TLS session, with a write-behind buffer.
//!
//! OpenSSL hands its BIO one record (at most 16 KiB of data) per write, so a 64 KiB relay
//! chunk would cost four `send`s, and on every `send` the kernel runs the TCP stack and
//! wakes the receiver once more. Here the records of one `SSL_write` are collected and
//! sent with one `send` ([`TlsSocket::poll_drain`]), which the owner calls right after
//! the `SSL_write`, and again, until it is done, from `poll_flush`.
//!
//! Two rules keep OpenSSL's view simple:
//! - the buffer is used only once the handshake is over ([`TlsSocket::coalesce`]): a
//!   handshake goes straight to the socket, exactly as before;
//! - a flush that OpenSSL itself asks for (a post-handshake message) never fails with
//!   "would block", which OpenSSL would take for an error: it sends what it can and
//!   leaves the rest to the owner's `poll_flush`.
//!
//! An alert that would be the very first byte of the connection is held back
//! ([`TlsSocket::take_held_alert`]): OpenSSL 3.0 sends nothing to a client whose first
//! record is not TLS at all (a plaintext client on an implicit-TLS port), AWS-LC a
//! `protocol_version` alert. The owner sends the alert or drops it once it knows why
//! the handshake failed.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::relay::CHUNK;

/// Room for one relay chunk cut into full records (each adds at most 22 bytes in TLS 1.3
/// and 29 in TLS 1.2 with AES-GCM), so one `SSL_write` of a chunk fits.
const LIMIT: usize = CHUNK + 1024;
/// A TLS record carrying the most data a record may hold (16 KiB).
const FULL_RECORD: usize = 16 * 1024;

pub struct TlsSocket {
    tcp: TcpStream,
    /// Encrypted bytes not sent yet: `out[sent..]`. No capacity while empty.
    out: Vec<u8>,
    sent: usize,
    coalesce: bool,
    /// Whether any byte went to the socket (or was collected) yet.
    wrote: bool,
    /// A lone alert record that would have been the connection's first output.
    held_alert: Option<Vec<u8>>,
}

/// TLS record type of an alert, and the size of one alert record (header + 2 bytes).
const ALERT: u8 = 0x15;
const ALERT_RECORD: usize = 7;

impl TlsSocket {
    pub fn new(tcp: TcpStream) -> TlsSocket {
        TlsSocket {
            tcp,
            out: Vec::new(),
            sent: 0,
            coalesce: false,
            wrote: false,
            held_alert: None,
        }
    }

    /// The alert held back as the connection's first output, if any.
    pub fn take_held_alert(&mut self) -> Option<Vec<u8>> {
        self.held_alert.take()
    }

    pub fn tcp(&self) -> &TcpStream {
        &self.tcp
    }

    pub fn tcp_mut(&mut self) -> &mut TcpStream {
        &mut self.tcp
    }

    /// From now on writes are collected until [`TlsSocket::poll_drain`].
    pub fn coalesce(&mut self) {
        self.coalesce = true;
    }

    /// Sends everything collected; `Pending` until the socket has taken it all. The
    /// buffer is given back once empty, so an idle session holds none.
    pub fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.out.len() {
            match ready!(Pin::new(&mut self.tcp).poll_write(cx, &self.out[self.sent..])) {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(n) => self.sent += n,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        self.out = Vec::new();
        self.sent = 0;
        Poll::Ready(Ok(()))
    }

    fn pending_bytes(&self) -> usize {
        self.out.len() - self.sent
    }
}

impl AsyncRead for TlsSocket {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsSocket {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if !this.wrote && buf.len() == ALERT_RECORD && buf[0] == ALERT {
            this.held_alert = Some(buf.to_vec());
            return Poll::Ready(Ok(buf.len()));
        }
        if let Some(alert) = this.held_alert.take() {
            // Something follows the alert after all: it goes first, unchanged.
            this.out.extend_from_slice(&alert);
        }
        this.wrote = true;
        if !this.coalesce {
            if this.pending_bytes() > 0 {
                ready!(this.poll_drain(cx))?;
            }
            return Pin::new(&mut this.tcp).poll_write(cx, buf);
        }
        if this.pending_bytes() + buf.len() > LIMIT {
            ready!(this.poll_drain(cx))?;
        }
        if this.out.is_empty() && buf.len() > LIMIT {
            return Pin::new(&mut this.tcp).poll_write(cx, buf);
        }
        if this.out.capacity() == 0 {
            // A full record means bulk data: room for a whole chunk at once. A reply
            // line gets what it needs, not 65 KiB to allocate and give back.
            let room = if buf.len() >= FULL_RECORD {
                LIMIT
            } else {
                buf.len()
            };
            this.out.reserve_exact(room);
        }
        this.out.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    /// OpenSSL's own flush: best effort (see the module comment).
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut().poll_drain(cx) {
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Ready(Ok(())) | Poll::Pending => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.tcp).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::poll_fn;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A connected pair; `send_buffer` shrinks our side's socket buffer so that a
    /// writer meets a full socket early.
    async fn pair_with(send_buffer: Option<u32>) -> (TlsSocket, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        if let Some(size) = send_buffer {
            socket.set_send_buffer_size(size).unwrap();
        }
        let (ours, theirs) = tokio::join!(socket.connect(addr), listener.accept());
        (TlsSocket::new(ours.unwrap()), theirs.unwrap().0)
    }

    async fn pair() -> (TlsSocket, TcpStream) {
        pair_with(None).await
    }

    #[tokio::test]
    async fn before_coalesce_writes_go_straight_out() {
        let (mut sock, mut peer) = pair().await;
        sock.write_all(b"handshake flight").await.unwrap();
        let mut got = [0u8; 16];
        peer.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"handshake flight");
    }

    #[tokio::test]
    async fn a_first_lone_alert_is_held_and_anything_after_it_follows_it() {
        let (mut sock, mut peer) = pair().await;
        let alert = [0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x46];
        sock.write_all(&alert).await.unwrap();
        let mut probe = [0u8; 1];
        // A read that waits: try_read would say "nothing yet" before the reactor had
        // even looked at the socket, so it passed whether or not the alert was sent.
        let read = tokio::time::timeout(Duration::from_millis(50), peer.read(&mut probe));
        assert!(read.await.is_err(), "the alert is held");
        assert_eq!(sock.take_held_alert().as_deref(), Some(&alert[..]));
        assert_eq!(sock.take_held_alert(), None);

        let (mut sock, mut peer) = pair().await;
        sock.write_all(&alert).await.unwrap();
        sock.write_all(b"more").await.unwrap();
        let mut got = [0u8; 11];
        peer.read_exact(&mut got).await.unwrap();
        assert_eq!(&got[..7], &alert);
        assert_eq!(&got[7..], b"more");
        // Only the first output is looked at: a later alert goes out at once.
        sock.write_all(&alert).await.unwrap();
        let mut got = [0u8; 7];
        peer.read_exact(&mut got).await.unwrap();
        assert_eq!(got, alert);
    }

    #[tokio::test]
    async fn records_wait_for_the_drain_and_leave_in_order() {
        let (mut sock, mut peer) = pair().await;
        sock.coalesce();
        for record in [&b"one "[..], b"two ", b"three"] {
            sock.write_all(record).await.unwrap();
        }
        let mut probe = [0u8; 1];
        assert!(
            peer.try_read(&mut probe).is_err(),
            "nothing is sent before the drain"
        );
        poll_fn(|cx| sock.poll_drain(cx)).await.unwrap();
        assert_eq!(sock.out.capacity(), 0, "an empty buffer is given back");
        let mut got = [0u8; 13];
        peer.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"one two three");
    }

    /// A reader slower than the writer: writes wait at the limit, and every byte of a
    /// transfer far larger than the socket buffers arrives intact.
    #[tokio::test]
    async fn a_slow_reader_gets_everything_and_the_buffer_stays_bounded() {
        let (mut sock, mut peer) = pair_with(Some(4096)).await;
        sock.coalesce();
        let body: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
        let sent = body.clone();
        let writer = tokio::spawn(async move {
            let mut met_a_full_socket = false;
            for record in sent.chunks(16_406) {
                sock.write_all(record).await.unwrap();
                assert!(sock.pending_bytes() <= LIMIT);
                let mut cx = Context::from_waker(std::task::Waker::noop());
                met_a_full_socket |= sock.poll_drain(&mut cx).is_pending();
            }
            poll_fn(|cx| sock.poll_drain(cx)).await.unwrap();
            assert!(met_a_full_socket, "the test never filled the socket");
            sock
        });
        let mut got = vec![0u8; body.len()];
        let mut at = 0;
        while at < got.len() {
            let end = (at + 7_000).min(got.len());
            at += peer.read(&mut got[at..end]).await.unwrap();
            tokio::task::yield_now().await;
        }
        assert!(got == body);
        drop(writer.await.unwrap());
    }
}
