//! The TOML configuration of `mailproxy-auth`.
//!
//! ```toml
//! listen = "127.0.0.1:9000"
//! refuse = ["olduser"]          # optional
//! refuse_wait = 3               # optional, seconds of Auth-Wait for refused logins
//! max_attempts = 10             # optional, no Auth-Wait from this attempt on
//!
//! [backend]
//! imap = "legacy.example.com:143"
//! pop3 = "10.0.0.5:110"
//! smtp = "[2001:db8::25]:25"
//! ```

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;

use mailproxy::config::Protocol;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    listen: String,
    backend: Backends,
    #[serde(default)]
    refuse: Vec<String>,
    #[serde(default = "default_refuse_wait")]
    refuse_wait: u64,
    #[serde(default = "default_max_attempts")]
    max_attempts: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Backends {
    imap: Option<String>,
    pop3: Option<String>,
    smtp: Option<String>,
}

fn default_refuse_wait() -> u64 {
    3
}

fn default_max_attempts() -> u32 {
    10
}

/// A backend as configured: a host name or IP literal, looked up at answer time
/// because nginx accepts only IP addresses in `Auth-Server`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub imap: Option<Backend>,
    pub pop3: Option<Backend>,
    pub smtp: Option<Backend>,
    /// Logins (as the client typed them, i.e. unescaped) that are always refused.
    pub refuse: HashSet<Vec<u8>>,
    /// `Auth-Wait` sent with a refusal, so the client may try again; 0 = none.
    pub refuse_wait: u64,
    /// From this `Auth-Login-Attempt` on, a refusal carries no `Auth-Wait`, so the proxy
    /// closes the connection (nginx's docs advise such a limit).
    pub max_attempts: u32,
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Config::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Config, String> {
        let file: File = toml::from_str(text).map_err(|e| e.to_string())?;
        let listen = file
            .listen
            .parse()
            .map_err(|_| format!("listen = \"{}\" is not an IP:port address", file.listen))?;
        let backend = |proto: &str, value: Option<String>| {
            value
                .map(|v| {
                    parse_backend(&v)
                        .ok_or_else(|| format!("backend.{proto} = \"{v}\" is not host:port"))
                })
                .transpose()
        };
        let config = Config {
            listen,
            imap: backend("imap", file.backend.imap)?,
            pop3: backend("pop3", file.backend.pop3)?,
            smtp: backend("smtp", file.backend.smtp)?,
            refuse: file.refuse.into_iter().map(String::into_bytes).collect(),
            refuse_wait: file.refuse_wait,
            max_attempts: file.max_attempts,
        };
        if config.imap.is_none() && config.pop3.is_none() && config.smtp.is_none() {
            return Err("[backend] names no imap, pop3 or smtp backend".into());
        }
        Ok(config)
    }

    pub fn backend(&self, protocol: Protocol) -> Option<&Backend> {
        match protocol {
            Protocol::Imap => self.imap.as_ref(),
            Protocol::Pop3 => self.pop3.as_ref(),
            Protocol::Smtp => self.smtp.as_ref(),
        }
    }
}

/// `host:port` or `[v6]:port`.
fn parse_backend(text: &str) -> Option<Backend> {
    let (host, port) = text.rsplit_once(':')?;
    let host = match host.strip_prefix('[') {
        Some(inner) => inner.strip_suffix(']')?,
        None if host.contains(':') => return None,
        None => host,
    };
    let port = port.parse().ok().filter(|&p: &u16| p != 0)?;
    (!host.is_empty()).then(|| Backend {
        host: host.to_owned(),
        port,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_config() {
        let c = Config::parse(
            "listen = \"127.0.0.1:9000\"\nrefuse = [\"bob smith\"]\n[backend]\nimap = \"legacy.example.com:143\"\nsmtp = \"[::1]:25\"\n",
        )
        .unwrap();
        assert_eq!(c.listen, "127.0.0.1:9000".parse().unwrap());
        assert_eq!(
            c.backend(Protocol::Imap).unwrap().to_string(),
            "legacy.example.com:143"
        );
        assert_eq!(c.backend(Protocol::Smtp).unwrap().host, "::1");
        assert_eq!(c.backend(Protocol::Pop3), None);
        assert!(c.refuse.contains(&b"bob smith"[..]));
        assert_eq!((c.refuse_wait, c.max_attempts), (3, 10));
    }

    #[test]
    fn errors_are_clear() {
        let err = |t: &str| Config::parse(t).unwrap_err();
        assert_eq!(
            err("listen = \"x\"\n[backend]\nimap = \"a:1\"\n"),
            "listen = \"x\" is not an IP:port address"
        );
        assert_eq!(
            err("listen = \"127.0.0.1:1\"\n[backend]\nimap = \"a\"\n"),
            "backend.imap = \"a\" is not host:port"
        );
        assert_eq!(
            err("listen = \"127.0.0.1:1\"\n[backend]\n"),
            "[backend] names no imap, pop3 or smtp backend"
        );
        assert!(
            err("listen = \"127.0.0.1:1\"\nbogus = 1\n[backend]\nimap = \"a:1\"\n")
                .contains("bogus")
        );
    }
}
