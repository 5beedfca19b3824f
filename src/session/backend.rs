//! Connecting to the backend and replaying the login there.
//!
//! nginx's rule, kept: one deadline (`timeout`, not `proxy_timeout`) covers the connect
//! and every login step; any failure before the final reply is the client's internal
//! error, except an unexpected reply with `proxy_pass_error_message on`, which is passed
//! to the client verbatim.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};

use super::{SessionLog, UPSTREAM_TIMED_OUT};
use crate::config::LogLevel;
use crate::proto::{BackendLogin, LoginStep};

/// How a backend login ended.
pub enum BackendOutcome {
    /// Logged in: the stream and the reply to pass to the client.
    LoggedIn(TcpStream, Vec<u8>),
    /// The backend said something unexpected: `buffered` is everything it sent.
    Refused { buffered: Vec<u8>, log: String },
    /// Connect error, EOF, timeout, write error: always the internal error line.
    Failed {
        log: String,
        action: &'static str,
        /// nginx logs a timeout at `info`, everything else at `error`.
        level: LogLevel,
    },
}

/// `proxy_header`, if any, is written as soon as the connection is up, before the
/// backend's greeting is read (`proxy_protocol on`).
pub async fn connect_and_login(
    addr: SocketAddr,
    proxy_header: Option<Vec<u8>>,
    mut login: Box<dyn BackendLogin>,
    deadline: Instant,
    log: &SessionLog,
) -> BackendOutcome {
    log.debug_event(format_args!("connect to upstream {addr}"));
    let mut stream = match timeout_at(deadline, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return failed(connect_error(addr, &e), "connecting to upstream"),
        Err(_) => return failed(UPSTREAM_TIMED_OUT.into(), "connecting to upstream"),
    };
    let _ = stream.set_nodelay(true);
    log.debug_event(format_args!("connected to upstream {addr}"));
    if let Some(header) = proxy_header {
        let write = timeout_at(deadline, stream.write_all(&header)).await;
        if let Err(e) = write.unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into())) {
            return failed(
                format!("send() failed ({e})"),
                "sending PROXY protocol header to upstream",
            );
        }
    }
    let mut buf = vec![0u8; login.free_space().max(1)];
    loop {
        let room = login.free_space().min(buf.len());
        if room == 0 {
            // A `proxy_buffer` too small for even a greeting: nginx ends up here too.
            return failed(
                "upstream sent too long response line".into(),
                login.log_action(),
            );
        }
        let n = match timeout_at(deadline, stream.read(&mut buf[..room])).await {
            Err(_) => return failed(UPSTREAM_TIMED_OUT.into(), login.log_action()),
            Ok(Err(e)) => return failed(format!("recv() failed ({e})"), login.log_action()),
            Ok(Ok(0)) => {
                return failed(
                    "upstream prematurely closed connection".into(),
                    login.log_action(),
                )
            }
            Ok(Ok(n)) => n,
        };
        let mut step = login.receive(&buf[..n]);
        loop {
            match step {
                LoginStep::NeedMore => break,
                LoginStep::Send(bytes) => {
                    log.debug_mail(format_args!(
                        "mail proxy {} ({} bytes)",
                        login.log_action(),
                        bytes.len()
                    ));
                    let write = timeout_at(deadline, stream.write_all(&bytes)).await;
                    if !matches!(write, Ok(Ok(()))) {
                        return failed("upstream write failed".into(), login.log_action());
                    }
                    step = LoginStep::NeedMore;
                }
                LoginStep::Done(reply) => {
                    log.debug_mail(format_args!("mail proxy upstream login done"));
                    return BackendOutcome::LoggedIn(stream, reply);
                }
                LoginStep::Failed(f) => {
                    return BackendOutcome::Refused {
                        buffered: f.buffered,
                        log: f.log,
                    }
                }
            }
        }
    }
}

fn failed(log: String, action: &'static str) -> BackendOutcome {
    let level = if log == UPSTREAM_TIMED_OUT {
        LogLevel::Info
    } else {
        LogLevel::Error
    };
    BackendOutcome::Failed { log, action, level }
}

/// nginx's wording for a failed connect, with the errno it saw.
fn connect_error(addr: SocketAddr, e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => format!(
            "connect() to {addr} failed ({code}: {})",
            std::io::Error::from_raw_os_error(code)
                .to_string()
                .split(" (os error")
                .next()
                .unwrap_or_default()
        ),
        None => format!("connect() to {addr} failed ({e})"),
    }
}
