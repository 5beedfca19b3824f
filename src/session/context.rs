//! Log lines for one session, with nginx's context suffix:
//! `*N <message> while <action>, client: <ip>[ using starttls], server: <addr>[, login: "<login>"][, upstream: <addr>]`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use crate::config::LogLevel;
use crate::log::{self, Log};

/// nginx logs its timeouts with the errno text of ETIMEDOUT; log filters match on it.
pub const CLIENT_TIMED_OUT: &str = "client timed out (110: Connection timed out)";
pub const UPSTREAM_TIMED_OUT: &str = "upstream timed out (110: Connection timed out)";

/// Who the session is, for its log lines. Holds no secrets: only the login name.
pub struct SessionLog {
    /// The server's own `error_log`, if it has one; else the main log.
    pub sink: Option<Arc<Log>>,
    pub id: u64,
    pub client: IpAddr,
    pub server: String,
    pub starttls: bool,
    pub login: Option<String>,
    pub upstream: Option<SocketAddr>,
}

impl SessionLog {
    pub fn log(&self, level: LogLevel, message: &str, action: Option<&str>) {
        if !self.enabled(level) {
            return;
        }
        let mut line = format!("*{} {}", self.id, message);
        if let Some(action) = action {
            line.push_str(" while ");
            line.push_str(action);
        }
        line.push_str(&format!(", client: {}", self.client));
        if self.starttls {
            line.push_str(" using starttls");
        }
        line.push_str(&format!(", server: {}", self.server));
        // nginx shows the login only once it is known and non-empty (1.22.1 shows
        // `upstream:` only then too).
        if let Some(login) = self.login.as_deref().filter(|l| !l.is_empty()) {
            line.push_str(&format!(", login: \"{login}\""));
            if let Some(up) = self.upstream {
                line.push_str(&format!(", upstream: {up}"));
            }
        }
        self.write(level, &line);
    }

    /// A line with the `*N` prefix but no context: nginx's `client ... connected to
    /// ...` line is written before the session's log handler is set.
    pub fn bare(&self, level: LogLevel, message: &str) {
        if self.enabled(level) {
            self.write(level, &format!("*{} {}", self.id, message));
        }
    }

    fn enabled(&self, level: LogLevel) -> bool {
        match &self.sink {
            Some(sink) => sink.enabled(level),
            None => log::enabled(level),
        }
    }

    fn write(&self, level: LogLevel, line: &str) {
        match &self.sink {
            Some(sink) => sink.write(level, line),
            None => log::write(level, line),
        }
    }

    pub fn info(&self, message: &str, action: Option<&str>) {
        self.log(LogLevel::Info, message, action);
    }

    pub fn error(&self, message: &str, action: Option<&str>) {
        self.log(LogLevel::Error, message, action);
    }
}
