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
use crate::error::os_error;
use crate::proto::{BackendLogin, LoginStep};

/// How a backend login ended.
pub enum BackendOutcome {
    /// Logged in: the stream and the reply to pass to the client.
    LoggedIn(TcpStream, Vec<u8>),
    /// The backend said something unexpected: `buffered` is everything it sent.
    Refused { buffered: Vec<u8>, log: String },
    /// Connect error, EOF, timeout, write error: always the internal error line.
    Failed {
        error: BackendError,
        /// nginx's `while ...` phase.
        action: &'static str,
    },
}

/// Why the backend could not be reached or logged in to; `Display` is nginx's text.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("connect() to {addr} failed ({})", os_error(.source))]
    Connect {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{UPSTREAM_TIMED_OUT}")]
    TimedOut,
    #[error("send() failed ({})", os_error(.0))]
    ProxyHeader(std::io::Error),
    /// A `proxy_buffer` too small for even a greeting: nginx ends up here too.
    #[error("upstream sent too long response line")]
    LineTooLong,
    #[error("recv() failed ({})", os_error(.0))]
    Recv(std::io::Error),
    #[error("upstream prematurely closed connection")]
    Closed,
    #[error("upstream write failed")]
    Write,
}

impl BackendError {
    /// nginx logs a timeout at `info`, everything else at `error`.
    pub fn level(&self) -> LogLevel {
        match self {
            BackendError::TimedOut => LogLevel::Info,
            _ => LogLevel::Error,
        }
    }
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
        Ok(Err(source)) => {
            return failed(
                BackendError::Connect { addr, source },
                "connecting to upstream",
            )
        }
        Err(_) => return failed(BackendError::TimedOut, "connecting to upstream"),
    };
    let _ = stream.set_nodelay(true);
    log.debug_event(format_args!("connected to upstream {addr}"));
    if let Some(header) = proxy_header {
        let write = timeout_at(deadline, stream.write_all(&header)).await;
        if let Err(e) = write.unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into())) {
            return failed(
                BackendError::ProxyHeader(e),
                "sending PROXY protocol header to upstream",
            );
        }
    }
    let mut buf = vec![0u8; login.free_space().max(1)];
    loop {
        let room = login.free_space().min(buf.len());
        if room == 0 {
            // A `proxy_buffer` too small for even a greeting: nginx ends up here too.
            return failed(BackendError::LineTooLong, login.log_action());
        }
        let n = match timeout_at(deadline, stream.read(&mut buf[..room])).await {
            Err(_) => return failed(BackendError::TimedOut, login.log_action()),
            Ok(Err(e)) => return failed(BackendError::Recv(e), login.log_action()),
            Ok(Ok(0)) => return failed(BackendError::Closed, login.log_action()),
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
                        return failed(BackendError::Write, login.log_action());
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

fn failed(error: BackendError, action: &'static str) -> BackendOutcome {
    BackendOutcome::Failed { error, action }
}
