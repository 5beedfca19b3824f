//! Talking to the auth server: one fresh connection per request, as nginx does, or
//! kept connections with `auth_http_keepalive` (see [`super::pool`]).

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};
use tokio::time::Instant;

use super::error::AuthError;
use super::pool;
use super::request::AuthRequest;
use super::response::{AuthResponse, BackendAddr, Framing, ResponseParser, MAX_RESPONSE_HEAD};
use crate::config::{AuthHttp, AuthTarget};

/// The largest response body read to keep a connection; a longer one closes it.
const MAX_KEPT_BODY: u64 = 64 * 1024;

/// Ask the auth server about `req` and return its parsed response head.
///
/// nginx arms two `auth_http_timeout` timers when it starts connecting: the write timer
/// lasts until the request is fully sent, the read timer until the blank line of the
/// response, and neither is ever extended. Both therefore end at the same instant, so
/// the whole exchange, connect included, gets one deadline. Without keep-alive the
/// connection is closed as soon as the head is complete; the body is never read.
pub async fn query(http: &AuthHttp, req: &AuthRequest) -> Result<AuthResponse, AuthError> {
    let peer = http.target.to_string();
    let deadline = Instant::now() + http.timeout;
    let request = req.encode(http);
    match tokio::time::timeout_at(deadline, exchange(http, &peer, &request)).await {
        Ok(result) => result,
        Err(_elapsed) => Err(AuthError::TimedOut { peer }),
    }
}

async fn exchange(http: &AuthHttp, peer: &str, request: &[u8]) -> Result<AuthResponse, AuthError> {
    match &http.target {
        AuthTarget::Tcp(addr) if http.keeps_connections() => {
            exchange_kept(*addr, http.keepalive, peer, request).await
        }
        AuthTarget::Tcp(addr) => {
            let mut stream = TcpStream::connect(addr)
                .await
                .map_err(connect_error(peer))?;
            // No TCP_NODELAY: the request is one write, which Nagle never holds back.
            Ok(talk(&mut stream, peer, request, false).await?.0)
        }
        AuthTarget::Unix(path) => {
            let mut stream = UnixStream::connect(path)
                .await
                .map_err(connect_error(peer))?;
            Ok(talk(&mut stream, peer, request, false).await?.0)
        }
    }
}

fn connect_error(peer: &str) -> impl FnOnce(std::io::Error) -> AuthError + '_ {
    move |source| AuthError::Connect {
        peer: peer.to_owned(),
        source,
    }
}

/// A kept connection first, if there is one; a new one otherwise, or when the kept one
/// turns out closed before any answer (the server's idle timeout can strike while the
/// request is on its way). Either is kept afterwards if its response allows.
async fn exchange_kept(
    addr: SocketAddr,
    limit: usize,
    peer: &str,
    request: &[u8],
) -> Result<AuthResponse, AuthError> {
    if let Some(mut stream) = pool::take(addr) {
        match talk(&mut stream, peer, request, true).await {
            Ok((response, reusable)) => {
                if reusable {
                    pool::put(addr, stream, limit);
                }
                return Ok(response);
            }
            Err(failed) if !failed.answered => {}
            Err(failed) => return Err(failed.error),
        }
    }
    let mut stream = TcpStream::connect(addr)
        .await
        .map_err(connect_error(peer))?;
    let (response, reusable) = talk(&mut stream, peer, request, true).await?;
    if reusable {
        pool::put(addr, stream, limit);
    }
    Ok(response)
}

/// A failed exchange, and whether the server had answered anything: a kept connection
/// that failed before any answer is retried on a new one.
struct Failed {
    error: AuthError,
    answered: bool,
}

impl From<Failed> for AuthError {
    fn from(failed: Failed) -> AuthError {
        failed.error
    }
}

/// Send the request, then read until the response head is complete. Reads never ask
/// for more than the parser's remaining budget, like nginx's fixed 1024-byte buffer.
/// With `keep`, the body is read too when the head allows the connection to be used
/// again; the `bool` says whether it can.
async fn talk<S>(
    stream: &mut S,
    peer: &str,
    request: &[u8],
    keep: bool,
) -> Result<(AuthResponse, bool), Failed>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    stream.write_all(request).await.map_err(|source| Failed {
        error: AuthError::Send {
            peer: peer.to_owned(),
            source,
        },
        answered: false,
    })?;
    let mut parser = ResponseParser::new(peer);
    let mut buf = [0u8; MAX_RESPONSE_HEAD];
    let mut received = 0;
    loop {
        let room = parser.free_space();
        let n = stream
            .read(&mut buf[..room])
            .await
            .map_err(|source| Failed {
                error: AuthError::Recv {
                    peer: peer.to_owned(),
                    source,
                },
                answered: received > 0,
            })?;
        if n == 0 {
            return Err(Failed {
                error: parser.closed_early(),
                answered: received > 0,
            });
        }
        received += n;
        let head = parser.feed(&buf[..n]).map_err(|error| Failed {
            error,
            answered: true,
        })?;
        if let Some(response) = head {
            let body_read = received - parser.head_len();
            let reusable = keep && skip_body(stream, parser.framing(), body_read).await;
            return Ok((response, reusable));
        }
    }
}

/// Reads and drops the rest of the body so the connection can carry the next request;
/// `false` when it cannot (no length, too long, more bytes than the body, an error).
async fn skip_body<S: AsyncRead + Unpin>(stream: &mut S, framing: Framing, read: usize) -> bool {
    let Some(length) = framing.reusable_after().filter(|&l| l <= MAX_KEPT_BODY) else {
        return false;
    };
    let Some(mut left) = (length as usize).checked_sub(read) else {
        return false;
    };
    let mut sink = [0u8; 1024];
    while left > 0 {
        let want = left.min(sink.len());
        match stream.read(&mut sink[..want]).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => left -= n,
        }
    }
    true
}

/// How long a backend host name lookup may take. nginx has no such lookup (it accepts
/// only IP addresses from the auth server); the caller's login deadline usually cuts
/// in first.
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(30);

/// The socket address of a backend, looking a host name up (first address wins).
pub async fn resolve(addr: &BackendAddr) -> Result<SocketAddr, AuthError> {
    let (name, port) = match addr {
        BackendAddr::Ip(sa) => return Ok(*sa),
        BackendAddr::Name(name, port) => (name, *port),
    };
    let failed = |detail: String| AuthError::Resolve {
        name: name.clone(),
        detail,
    };
    let lookup = tokio::net::lookup_host((name.as_str(), port));
    match tokio::time::timeout(RESOLVE_TIMEOUT, lookup).await {
        Err(_elapsed) => Err(failed("110: Operation timed out".into())),
        Ok(Err(e)) => Err(failed(e.to_string())),
        Ok(Ok(mut addrs)) => addrs
            .next()
            .ok_or_else(|| failed("no address found".into())),
    }
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "keepalive_tests.rs"]
mod keepalive_tests;
