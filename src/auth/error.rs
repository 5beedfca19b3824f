//! Why an auth_http exchange failed, worded as nginx logs it.
//!
//! Every variant ends the session with the protocol's internal error line (reference
//! §4.7); the only choice left to the caller is how to log it. `Display` gives nginx's
//! message without the `while in http auth state, client: ...` context, which the
//! session's logger appends (see [`LOG_ACTION`]).

use std::io;

use crate::error::os_error;

/// The `while ...` action nginx prints for every message of this phase.
pub const LOG_ACTION: &str = "in http auth state";

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// nginx: `connect() to 127.0.0.1:9000 failed (111: Connection refused)`.
    #[error("connect() to {peer} failed ({})", os_error(.source))]
    Connect { peer: String, source: io::Error },
    #[error("send() failed ({})", os_error(.source))]
    Send { peer: String, source: io::Error },
    #[error("recv() failed ({})", os_error(.source))]
    Recv { peer: String, source: io::Error },
    /// `auth_http_timeout` expired: it runs from the start of the connect until the
    /// blank line of the response.
    #[error("auth http server {peer} timed out (110: Connection timed out)")]
    TimedOut { peer: String },
    /// The auth server closed before the blank line. nginx logs nothing for this.
    #[error("auth http server {peer} closed the connection before the end of the response")]
    Closed { peer: String },
    /// The response head did not fit in nginx's 1024-byte buffer. nginx logs nothing.
    #[error("auth http server {peer} sent a response header longer than 1024 bytes")]
    TooLong { peer: String },
    /// A CR not followed by LF in the status line.
    #[error("auth http server {peer} sent invalid response")]
    InvalidResponse { peer: String },
    #[error("auth http server {peer} sent invalid header in response")]
    InvalidHeader { peer: String },
    #[error("auth http server {peer} did not send server or port")]
    NoServerOrPort { peer: String },
    #[error("auth http server {peer} did not send password")]
    NoPassword { peer: String },
    #[error("auth http server {peer} sent invalid server address:\"{addr}\"")]
    InvalidAddress { peer: String, addr: String },
    #[error("auth http server {peer} sent invalid server port:\"{port}\"")]
    InvalidPort { peer: String, port: String },
    /// `Auth-User` or `Auth-Pass` with a CR, LF or NUL, which would split a backend
    /// command line (nginx 1.22.1 sends it on). The value is not shown: it can be a
    /// password.
    #[error("auth http server {peer} sent invalid {header}: CR, LF or NUL")]
    UnsafeCredential { peer: String, header: &'static str },
    /// The host name in `Auth-Server` (our extension) did not resolve.
    #[error("\"{name}\" could not be resolved ({detail})")]
    Resolve { name: String, detail: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_refused_reads_like_nginx() {
        let e = AuthError::Connect {
            peer: "127.0.0.1:9000".into(),
            source: io::Error::from_raw_os_error(libc::ECONNREFUSED),
        };
        assert_eq!(
            e.to_string(),
            "connect() to 127.0.0.1:9000 failed (111: Connection refused)"
        );
    }

    #[test]
    fn timeout_reads_like_nginx() {
        let e = AuthError::TimedOut {
            peer: "127.0.0.1:9000".into(),
        };
        assert_eq!(
            e.to_string(),
            "auth http server 127.0.0.1:9000 timed out (110: Connection timed out)"
        );
    }
}
