//! Idle keep-alive connections to auth servers (`auth_http_keepalive`, not in nginx).
//!
//! nginx opens a connection per auth request and closes it after the response head.
//! With `auth_http_keepalive N`, up to N idle connections per server wait here for
//! the next request. A connection comes back only if its whole response was read
//! (see [`super::response::Framing`]); one that idled longer than [`IDLE_TIMEOUT`], or
//! that the server closed meanwhile, is dropped when met.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::Instant;

/// How long a connection may idle here. Servers close idle connections on their own
/// schedule (5 s for many); a request that meets a connection closed at that very
/// moment is sent again on a new one, so this only bounds the descriptors kept.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

struct Idle {
    server: SocketAddr,
    stream: TcpStream,
    since: Instant,
}

/// One pool for the process: a reload keeps the connections to unchanged servers.
static IDLE: Mutex<Vec<Idle>> = Mutex::new(Vec::new());

/// The most recently used live connection to `server`, if any.
pub fn take(server: SocketAddr) -> Option<TcpStream> {
    let mut idle = IDLE.lock().unwrap_or_else(|e| e.into_inner());
    drop_expired(&mut idle);
    while let Some(at) = idle.iter().rposition(|i| i.server == server) {
        let candidate = idle.remove(at);
        if still_open(&candidate.stream) {
            return Some(candidate.stream);
        }
    }
    None
}

/// Keeps `stream` for the next request to `server`, unless `limit` are kept already.
pub fn put(server: SocketAddr, stream: TcpStream, limit: usize) {
    let mut idle = IDLE.lock().unwrap_or_else(|e| e.into_inner());
    drop_expired(&mut idle);
    if idle.iter().filter(|i| i.server == server).count() < limit {
        idle.push(Idle {
            server,
            stream,
            since: Instant::now(),
        });
    }
}

fn drop_expired(idle: &mut Vec<Idle>) {
    idle.retain(|i| i.since.elapsed() < IDLE_TIMEOUT);
}

/// Nothing to read and no end of stream: a server that closed, or sent bytes nobody
/// asked for, does not get the next request.
fn still_open(stream: &TcpStream) -> bool {
    let mut probe = [0u8; 1];
    matches!(stream.try_read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

#[cfg(test)]
pub fn idle_count(server: SocketAddr) -> usize {
    let idle = IDLE.lock().unwrap_or_else(|e| e.into_inner());
    idle.iter().filter(|i| i.server == server).count()
}
