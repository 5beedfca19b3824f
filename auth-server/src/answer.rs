//! What to answer one auth_http request: the decision, apart from HTTP.

use std::net::SocketAddr;

use hyper::HeaderMap;
use mailproxy::auth::headers as h;
use mailproxy::config::Protocol;

use crate::config::{Backend, Config};

/// The parts of a request the decision needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// The login as the client typed it (nginx's %XX escaping undone).
    pub user: Vec<u8>,
    pub protocol: Protocol,
    pub attempt: u32,
    /// For the log only.
    pub client_ip: String,
}

/// A request that cannot be answered: HTTP 400 with this text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRequest(pub String);

impl Query {
    pub fn from_headers(headers: &HeaderMap) -> Result<Query, BadRequest> {
        let get = |name: &str| headers.get(name).map(|v| v.as_bytes());
        let missing = |name: &str| BadRequest(format!("missing {name} header"));
        let user = get(h::AUTH_USER).ok_or_else(|| missing(h::AUTH_USER))?;
        let protocol = get(h::AUTH_PROTOCOL).ok_or_else(|| missing(h::AUTH_PROTOCOL))?;
        let protocol = [Protocol::Imap, Protocol::Pop3, Protocol::Smtp]
            .into_iter()
            .find(|p| p.name().as_bytes() == protocol)
            .ok_or_else(|| {
                BadRequest(format!(
                    "unknown {} \"{}\"",
                    h::AUTH_PROTOCOL,
                    String::from_utf8_lossy(protocol)
                ))
            })?;
        let attempt = match get(h::AUTH_LOGIN_ATTEMPT) {
            None => 1,
            Some(v) => std::str::from_utf8(v)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| BadRequest(format!("invalid {} header", h::AUTH_LOGIN_ATTEMPT)))?,
        };
        let client_ip = get(h::CLIENT_IP).map(|v| String::from_utf8_lossy(v).into_owned());
        Ok(Query {
            user: unescape(user),
            protocol,
            attempt,
            client_ip: client_ip.unwrap_or_else(|| "-".into()),
        })
    }
}

/// The answer before resolution of the backend name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Send this backend (after looking its name up).
    Backend(Backend),
    /// Refuse; with `Some(wait)` the client may retry after `wait` seconds.
    Refuse { wait: Option<u64> },
}

pub const REFUSED_TEXT: &str = "Invalid login or password";
pub const TEMPFAIL_TEXT: &str = "Temporary server problem, try again later";
/// SMTP reply code for a temporary failure (default would be a permanent 535).
pub const TEMPFAIL_SMTP_CODE: &str = "451 4.3.0";

pub fn decide(config: &Config, query: &Query) -> Result<Decision, BadRequest> {
    let Some(backend) = config.backend(query.protocol) else {
        return Err(BadRequest(format!(
            "no backend configured for protocol {}",
            query.protocol.name()
        )));
    };
    if config.refuse.contains(&query.user) {
        let retry = config.refuse_wait > 0 && query.attempt < config.max_attempts;
        return Ok(Decision::Refuse {
            wait: retry.then_some(config.refuse_wait),
        });
    }
    Ok(Decision::Backend(backend.clone()))
}

/// The first address of `backend`: an IP literal as is, a name looked up now.
pub async fn resolve(backend: &Backend) -> std::io::Result<SocketAddr> {
    let mut addrs = tokio::net::lookup_host((backend.host.as_str(), backend.port)).await?;
    addrs
        .next()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no address"))
}

/// Undo nginx's `%XX` escaping of `Auth-User` (uppercase or lowercase hex; a `%` not
/// followed by two hex digits stays as it is).
pub fn unescape(raw: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let pair = raw
            .get(i + 1)
            .copied()
            .and_then(hex)
            .zip(raw.get(i + 2).copied().and_then(hex));
        match (raw[i], pair) {
            (b'%', Some((hi, lo))) => {
                out.push(hi << 4 | lo);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::parse(
            "listen = \"127.0.0.1:1\"\nrefuse = [\"bob smith\"]\nmax_attempts = 3\n[backend]\nimap = \"127.0.0.1:143\"\n",
        )
        .unwrap()
    }

    fn query(user: &[u8], protocol: Protocol, attempt: u32) -> Query {
        Query {
            user: user.to_vec(),
            protocol,
            attempt,
            client_ip: "127.0.0.1".into(),
        }
    }

    #[test]
    fn unescape_undoes_nginx_escaping() {
        assert_eq!(unescape(b"bob%20smith%25%0a"), b"bob smith%\n".to_vec());
        assert_eq!(unescape(b"100%"), b"100%".to_vec());
        assert_eq!(unescape(b"%zz%2"), b"%zz%2".to_vec());
    }

    #[test]
    fn refusal_waits_until_the_attempt_limit() {
        let c = config();
        assert_eq!(
            decide(&c, &query(b"bob smith", Protocol::Imap, 2)),
            Ok(Decision::Refuse { wait: Some(3) })
        );
        assert_eq!(
            decide(&c, &query(b"bob smith", Protocol::Imap, 3)),
            Ok(Decision::Refuse { wait: None })
        );
        assert_eq!(
            decide(&c, &query(b"alice", Protocol::Imap, 1)),
            Ok(Decision::Backend(Backend {
                host: "127.0.0.1".into(),
                port: 143
            }))
        );
    }

    #[test]
    fn protocol_without_backend_is_a_bad_request() {
        assert_eq!(
            decide(&config(), &query(b"alice", Protocol::Pop3, 1)),
            Err(BadRequest("no backend configured for protocol pop3".into()))
        );
    }

    #[test]
    fn headers_are_read_case_insensitively() {
        let mut headers = HeaderMap::new();
        headers.insert("auth-user", "bob%20smith".parse().unwrap());
        headers.insert("AUTH-PROTOCOL", "smtp".parse().unwrap());
        headers.insert("Auth-Login-Attempt", "4".parse().unwrap());
        let q = Query::from_headers(&headers).unwrap();
        assert_eq!(
            (q.user.as_slice(), q.protocol, q.attempt),
            (&b"bob smith"[..], Protocol::Smtp, 4)
        );
        headers.remove("auth-user");
        assert_eq!(
            Query::from_headers(&headers),
            Err(BadRequest("missing Auth-User header".into()))
        );
    }
}
