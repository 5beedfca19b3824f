//! Listeners and client streams.
//!
//! The session layer only sees [`ClientStream`]: an `AsyncRead + AsyncWrite` that is
//! either plain TCP or TLS, and can be upgraded in place by STARTTLS.

pub mod client_cert;
pub mod dns;
pub mod listener;
pub mod proxy_protocol;
pub mod tls;
mod tls_conf;
mod tls_errors;
pub mod tls_lib;
mod tls_socket;
pub mod tls_words;

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use openssl::ssl::{Ssl, SslContext, SslRef};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_openssl::SslStream;

use tls_socket::TlsSocket;

/// A client connection, before or after TLS.
pub enum ClientStream {
    Plain(TcpStream),
    Tls(Box<SslStream<TlsSocket>>),
    /// Taken away for a STARTTLS handshake that did not give it back: every I/O fails.
    Detached,
}

impl ClientStream {
    pub fn is_tls(&self) -> bool {
        matches!(self, ClientStream::Tls(_))
    }

    /// Runs the server handshake on a plain stream. On failure the stream is gone,
    /// which is what nginx does too: a failed handshake closes silently.
    pub async fn into_tls(self, ctx: &SslContext) -> io::Result<ClientStream> {
        let tcp = match self {
            ClientStream::Plain(tcp) => tcp,
            tls @ ClientStream::Tls(_) => return Ok(tls),
            ClientStream::Detached => return Err(detached()),
        };
        let mut ssl = Ssl::new(ctx).map_err(io::Error::other)?;
        // Frees the handshake configuration once the handshake is done (AWS-LC).
        tls_lib::shed_handshake_config(&mut ssl);
        let mut stream = SslStream::new(ssl, TlsSocket::new(tcp)).map_err(io::Error::other)?;
        if let Err(e) = Pin::new(&mut stream).accept().await {
            let alert = stream.get_mut().take_held_alert();
            if let Some(alert) = alert.filter(|_| !openssl_is_silent(&e)) {
                use tokio::io::AsyncWriteExt;
                let _ = stream.get_mut().tcp_mut().write_all(&alert).await;
            }
            return Err(io::Error::other(handshake_error(&e)));
        }
        stream.get_mut().coalesce();
        Ok(ClientStream::Tls(Box::new(stream)))
    }

    /// Writes all of `bytes` and waits until they are in the socket (a TLS stream
    /// collects records until it is flushed).
    pub async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        use tokio::io::AsyncWriteExt;
        self.write_all(bytes).await?;
        self.flush().await
    }

    /// The TLS connection, for certificate checks and `Auth-SSL-*` details.
    pub fn ssl(&self) -> Option<&SslRef> {
        match self {
            ClientStream::Tls(s) => Some(s.ssl()),
            ClientStream::Plain(_) | ClientStream::Detached => None,
        }
    }
}

/// nginx's wording for a failed handshake, so log filters keep matching:
/// `SSL_do_handshake() failed (SSL: error:0A00010B:SSL routines::wrong version number)`.
fn handshake_error(e: &openssl::ssl::Error) -> String {
    let Some(stack) = e.ssl_error() else {
        return format!("SSL_do_handshake() failed ({e})");
    };
    let errors: Vec<String> = stack
        .errors()
        .iter()
        .map(|err| tls_words::ErrorText::from_library(err).error_string())
        .collect();
    format!("SSL_do_handshake() failed (SSL: {})", errors.join(":"))
}

/// Whether OpenSSL 3.0 fails this handshake without an alert: when the client's first
/// record is not TLS at all (`ssl3_get_record`: wrong version number, or an HTTP or
/// proxy request). AWS-LC answers those with an alert, which is then not sent.
fn openssl_is_silent(e: &openssl::ssl::Error) -> bool {
    const SILENT: [&str; 3] = [
        "wrong version number",
        "http request",
        "https proxy request",
    ];
    e.ssl_error().is_some_and(|stack| {
        stack.errors().iter().any(|err| {
            let text = tls_words::ErrorText::from_library(err);
            text.library == "SSL routines" && SILENT.contains(&text.reason.as_ref())
        })
    })
}

fn detached() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "client stream detached")
}

impl AsyncRead for ClientStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            ClientStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            ClientStream::Detached => Poll::Ready(Err(detached())),
        }
    }
}

impl AsyncWrite for ClientStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            ClientStream::Tls(s) => {
                let n = ready!(Pin::new(s.as_mut()).poll_write(cx, buf))?;
                // The records of this write leave in one `send`. What the socket cannot
                // take now goes with the next write, or with `poll_flush`.
                if let Poll::Ready(Err(e)) = s.get_mut().poll_drain(cx) {
                    return Poll::Ready(Err(e));
                }
                Poll::Ready(Ok(n))
            }
            ClientStream::Detached => Poll::Ready(Err(detached())),
        }
    }

    /// Done when every byte written so far is in the socket.
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_flush(cx),
            ClientStream::Tls(s) => {
                ready!(Pin::new(s.as_mut()).poll_flush(cx))?;
                s.get_mut().poll_drain(cx)
            }
            ClientStream::Detached => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            ClientStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            ClientStream::Detached => Poll::Ready(Ok(())),
        }
    }
}

impl crate::relay::ReadReady for ClientStream {
    /// Readable means: OpenSSL holds decrypted bytes, or the socket has data.
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            ClientStream::Plain(s) => s.poll_read_ready(cx),
            ClientStream::Tls(s) if s.ssl().pending() > 0 => Poll::Ready(Ok(())),
            ClientStream::Tls(s) => s.get_ref().tcp().poll_read_ready(cx),
            ClientStream::Detached => Poll::Ready(Ok(())),
        }
    }
}
