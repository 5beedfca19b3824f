//! Talking to the auth server: one fresh connection per request, as nginx does.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};
use tokio::time::Instant;

use super::error::AuthError;
use super::request::AuthRequest;
use super::response::{AuthResponse, BackendAddr, ResponseParser, MAX_RESPONSE_HEAD};
use crate::config::{AuthHttp, AuthTarget};

/// Ask the auth server about `req` and return its parsed response head.
///
/// nginx arms two `auth_http_timeout` timers when it starts connecting: the write timer
/// lasts until the request is fully sent, the read timer until the blank line of the
/// response, and neither is ever extended. Both therefore end at the same instant, so
/// the whole exchange, connect included, gets one deadline. The connection is closed
/// as soon as the head is complete; the body is never read.
pub async fn query(http: &AuthHttp, req: &AuthRequest) -> Result<AuthResponse, AuthError> {
    let peer = http.target.to_string();
    let deadline = Instant::now() + http.timeout;
    let request = req.encode(http);
    match tokio::time::timeout_at(deadline, exchange(&http.target, &peer, &request)).await {
        Ok(result) => result,
        Err(_elapsed) => Err(AuthError::TimedOut { peer }),
    }
}

async fn exchange(
    target: &AuthTarget,
    peer: &str,
    request: &[u8],
) -> Result<AuthResponse, AuthError> {
    let connect_error = |source| AuthError::Connect {
        peer: peer.to_owned(),
        source,
    };
    match target {
        AuthTarget::Tcp(addr) => {
            // No TCP_NODELAY: the request is one write, which Nagle never holds back.
            let stream = TcpStream::connect(addr).await.map_err(connect_error)?;
            talk(stream, peer, request).await
        }
        AuthTarget::Unix(path) => {
            let stream = UnixStream::connect(path).await.map_err(connect_error)?;
            talk(stream, peer, request).await
        }
    }
}

/// Send the request, then read until the response head is complete. Reads never ask
/// for more than the parser's remaining budget, like nginx's fixed 1024-byte buffer.
async fn talk<S>(mut stream: S, peer: &str, request: &[u8]) -> Result<AuthResponse, AuthError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    stream
        .write_all(request)
        .await
        .map_err(|source| AuthError::Send {
            peer: peer.to_owned(),
            source,
        })?;
    let mut parser = ResponseParser::new(peer);
    let mut buf = [0u8; MAX_RESPONSE_HEAD];
    loop {
        let room = parser.free_space();
        let n = stream
            .read(&mut buf[..room])
            .await
            .map_err(|source| AuthError::Recv {
                peer: peer.to_owned(),
                source,
            })?;
        if n == 0 {
            return Err(parser.closed_early());
        }
        if let Some(response) = parser.feed(&buf[..n])? {
            return Ok(response);
        }
    }
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
