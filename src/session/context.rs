//! Log lines for one session, with nginx's context suffix:
//! `*N <message> while <action>, client: <ip>[ using starttls], server: <addr>[, login: "<login>"][, upstream: <addr>]`.

use std::net::{IpAddr, SocketAddr};

use crate::config::LogLevel;
use crate::log;

/// Who the session is, for its log lines. Holds no secrets: only the login name.
pub struct SessionLog {
    pub id: u64,
    pub client: IpAddr,
    pub server: String,
    pub starttls: bool,
    pub login: Option<String>,
    pub upstream: Option<SocketAddr>,
}

impl SessionLog {
    pub fn log(&self, level: LogLevel, message: &str, action: Option<&str>) {
        if !log::enabled(level) {
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
        if let Some(login) = &self.login {
            line.push_str(&format!(", login: \"{login}\""));
        }
        if let Some(up) = self.upstream {
            line.push_str(&format!(", upstream: {up}"));
        }
        log::write(level, &line);
    }

    /// A line with the `*N` prefix but no context: nginx's `client ... connected to
    /// ...` line is written before the session's log handler is set.
    pub fn bare(&self, level: LogLevel, message: &str) {
        if log::enabled(level) {
            log::write(level, &format!("*{} {}", self.id, message));
        }
    }

    pub fn info(&self, message: &str, action: Option<&str>) {
        self.log(LogLevel::Info, message, action);
    }

    pub fn error(&self, message: &str, action: Option<&str>) {
        self.log(LogLevel::Error, message, action);
    }
}
