//! nginx's `ngx_parse_url` for the places mail uses it: `listen`, `auth_http` and the
//! `server=` of a `syslog:` log.
//! The error strings are nginx's (`u->err`); callers add the directive context.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlMode {
    /// `listen`: no URI part, a bare number is a port, `*` is the wildcard, default
    /// port 0; a host name gives every address it resolves to.
    Listen,
    /// `auth_http`: a URI part is allowed, default port 80; a host name gives its
    /// first address (IPv4 ones first, as nginx orders them).
    AuthHttp,
    /// `syslog:server=`: no URI part, default port 514, the first address.
    Syslog,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// Set for `unix:` URLs; `addrs` is then empty.
    pub unix: Option<PathBuf>,
    pub addrs: Vec<SocketAddr>,
    /// The host as written (`[::1]` keeps its brackets), as nginx's `u.host`.
    pub host: String,
    pub port: u16,
    /// The end of a `listen` port range (`143-145`); `port` otherwise.
    pub last_port: u16,
    pub uri: String,
}

/// Longest `sun_path`, terminating NUL included.
const SUN_PATH_MAX: usize = 108;

pub fn parse_url(url: &str, mode: UrlMode) -> Result<Url, &'static str> {
    // Byte-wise: `url` may hold any UTF-8, and byte 5 need not be a char boundary.
    if url.len() >= 5 && url.as_bytes()[..5].eq_ignore_ascii_case(b"unix:") {
        return parse_unix(&url[5..], mode);
    }
    if url.starts_with('[') {
        return parse_inet6(url, mode);
    }
    parse_inet(url, mode)
}

fn parse_unix(rest: &str, mode: UrlMode) -> Result<Url, &'static str> {
    let (path, uri) = match (mode, rest.split_once(':')) {
        (UrlMode::AuthHttp, Some((path, uri))) => (path, uri.to_string()),
        _ => (rest, String::new()),
    };
    if path.is_empty() {
        return Err("no path in the unix domain socket");
    }
    if path.len() + 1 > SUN_PATH_MAX {
        return Err("too long path in the unix domain socket");
    }
    Ok(Url {
        unix: Some(PathBuf::from(path)),
        addrs: Vec::new(),
        host: path.to_string(),
        port: 0,
        last_port: 0,
        uri,
    })
}

/// A port: 1..=65535 in plain digits; for `listen`, also a range `LOW-HIGH` (which
/// Debian's 1.22.1 accepts, as newer nginx), each end a port, `LOW <= HIGH`.
fn parse_port(text: &str, mode: UrlMode) -> Result<(u16, u16), &'static str> {
    let one = |text: &str| {
        super::values::parse_number(text)
            .and_then(|n| u16::try_from(n).ok())
            .filter(|n| *n != 0)
            .ok_or("invalid port")
    };
    match text.split_once('-') {
        Some((low, high)) if mode == UrlMode::Listen => {
            let (low, high) = (one(low)?, one(high)?);
            if low > high {
                return Err("invalid port range");
            }
            Ok((low, high))
        }
        _ => one(text).map(|port| (port, port)),
    }
}

fn parse_inet(url: &str, mode: UrlMode) -> Result<Url, &'static str> {
    let colon = url.find(':');
    let uri_at = match (url.find('/'), url.find('?')) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let mut last = url.len();
    let mut colon = colon;
    let mut uri = String::new();
    if let Some(at) = uri_at {
        if mode != UrlMode::AuthHttp {
            return Err("invalid host");
        }
        uri = url[at..].to_string();
        last = at;
        if colon.is_some_and(|c| at < c) {
            colon = None;
        }
    }
    let (host, (port, last_port)) = match colon {
        Some(c) => (&url[..c], parse_port(&url[c + 1..last], mode)?),
        None if mode == UrlMode::Listen && uri_at.is_none() && is_digits(url) => {
            // A listen value that is only a number is a port on the wildcard address.
            let (port, last_port) = parse_port(url, mode)?;
            let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port);
            return Ok(Url {
                unix: None,
                addrs: vec![addr],
                host: String::new(),
                port,
                last_port,
                uri,
            });
        }
        None => (&url[..last], (default_port(mode), default_port(mode))),
    };
    if host.is_empty() {
        return Err("no host");
    }
    let addrs = if mode == UrlMode::Listen && host == "*" {
        vec![SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port)]
    } else if let Some(ip) = parse_ipv4(host) {
        vec![SocketAddr::new(IpAddr::V4(ip), port)]
    } else {
        resolve(host, port, mode)?
    };
    Ok(Url {
        unix: None,
        addrs,
        host: host.to_string(),
        port,
        last_port,
        uri,
    })
}

fn parse_inet6(url: &str, mode: UrlMode) -> Result<Url, &'static str> {
    let close = url.find(']').ok_or("invalid host")?;
    let inner = &url[1..close];
    let mut rest = &url[close + 1..];
    let mut uri = String::new();
    if let Some(at) = rest.find('/') {
        if mode != UrlMode::AuthHttp {
            return Err("invalid host");
        }
        uri = rest[at..].to_string();
        rest = &rest[..at];
    }
    let (port, last_port) = if rest.is_empty() {
        (default_port(mode), default_port(mode))
    } else {
        let digits = rest.strip_prefix(':').ok_or("invalid host")?;
        parse_port(digits, mode)?
    };
    if inner.is_empty() {
        return Err("no host");
    }
    let ip: std::net::Ipv6Addr = inner.parse().map_err(|_| "invalid IPv6 address")?;
    Ok(Url {
        unix: None,
        addrs: vec![SocketAddr::new(IpAddr::V6(ip), port)],
        host: format!("[{inner}]"),
        port,
        last_port,
        uri,
    })
}

fn default_port(mode: UrlMode) -> u16 {
    match mode {
        UrlMode::Listen => 0,
        UrlMode::AuthHttp => 80,
        UrlMode::Syslog => 514,
    }
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || b == b'-')
}

/// `ngx_inet_addr`: strict dotted quad.
fn parse_ipv4(host: &str) -> Option<Ipv4Addr> {
    host.parse().ok()
}

#[cfg(test)]
thread_local! {
    /// Set by the fuzz smoke test: mutated host names would each cost a DNS time-out.
    pub(crate) static OFFLINE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether host names must not be looked up (only ever true in the fuzz smoke test).
pub(crate) fn offline() -> bool {
    #[cfg(test)]
    return OFFLINE.with(|o| o.get());
    #[cfg(not(test))]
    false
}

/// Resolves a host name once, at load time, IPv4 addresses first (nginx's order).
fn resolve(host: &str, port: u16, mode: UrlMode) -> Result<Vec<SocketAddr>, &'static str> {
    if offline() {
        return Err("host not found");
    }
    let found: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|_| "host not found")?
        .collect();
    let mut addrs: Vec<SocketAddr> = found.iter().filter(|a| a.is_ipv4()).copied().collect();
    addrs.extend(found.iter().filter(|a| a.is_ipv6()));
    addrs.dedup();
    if addrs.is_empty() {
        return Err("host not found");
    }
    if mode != UrlMode::Listen {
        addrs.truncate(1);
    }
    Ok(addrs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(url: &str) -> Result<(String, String, String), &'static str> {
        parse_url(url, UrlMode::AuthHttp).map(|u| match u.unix {
            Some(p) => (p.display().to_string(), u.host, u.uri),
            None => (u.addrs[0].to_string(), u.host, u.uri),
        })
    }

    fn listen(url: &str) -> Result<String, &'static str> {
        parse_url(url, UrlMode::Listen).map(|u| match u.unix {
            Some(p) => format!("unix:{}", p.display()),
            None => u.addrs[0].to_string(),
        })
    }

    #[test]
    fn auth_http_forms() {
        let s = |a: &str, b: &str, c: &str| Ok((a.to_string(), b.to_string(), c.to_string()));
        assert_eq!(
            auth("127.0.0.1:9000/auth"),
            s("127.0.0.1:9000", "127.0.0.1", "/auth")
        );
        assert_eq!(auth("127.0.0.1"), s("127.0.0.1:80", "127.0.0.1", ""));
        assert_eq!(
            auth("127.0.0.1/a?b=1"),
            s("127.0.0.1:80", "127.0.0.1", "/a?b=1")
        );
        assert_eq!(auth("127.0.0.1?x"), s("127.0.0.1:80", "127.0.0.1", "?x"));
        assert_eq!(auth("[::1]:9000/x"), s("[::1]:9000", "[::1]", "/x"));
        assert_eq!(
            auth("unix:/run/a.sock:/auth"),
            s("/run/a.sock", "/run/a.sock", "/auth")
        );
        assert_eq!(
            auth("unix:/run/a.sock"),
            s("/run/a.sock", "/run/a.sock", "")
        );
        assert_eq!(auth("https://localhost/auth"), Err("invalid port"));
        assert_eq!(auth("127.0.0.1:0/"), Err("invalid port"));
        assert_eq!(auth("127.0.0.1:70000"), Err("invalid port"));
        assert_eq!(auth(":9000"), Err("no host"));
        assert_eq!(auth("unix:"), Err("no path in the unix domain socket"));
        assert_eq!(auth("[::1"), Err("invalid host"));
        assert_eq!(auth("[zz]:1"), Err("invalid IPv6 address"));
        assert_eq!(auth("no-such-host.invalid:80"), Err("host not found"));
    }

    #[test]
    fn syslog_forms() {
        let syslog = |url: &str| {
            parse_url(url, UrlMode::Syslog).map(|u| match u.unix {
                Some(p) => format!("unix:{}", p.display()),
                None => u.addrs[0].to_string(),
            })
        };
        assert_eq!(syslog("127.0.0.1"), Ok("127.0.0.1:514".into()));
        assert_eq!(syslog("[::1]"), Ok("[::1]:514".into()));
        assert_eq!(syslog("unix:/dev/log"), Ok("unix:/dev/log".into()));
        assert_eq!(syslog(""), Err("no host"));
        assert_eq!(syslog(":514"), Err("no host"));
        assert_eq!(syslog("127.0.0.1:99999"), Err("invalid port"));
        assert_eq!(syslog("127.0.0.1:514-515"), Err("invalid port"));
        assert_eq!(syslog("::1"), Err("invalid port"));
        assert_eq!(syslog("localhost/x"), Err("invalid host"));
        assert_eq!(syslog("unix:"), Err("no path in the unix domain socket"));
    }

    #[test]
    fn listen_forms() {
        assert_eq!(listen("11143"), Ok("0.0.0.0:11143".into()));
        assert_eq!(listen("*:11143"), Ok("0.0.0.0:11143".into()));
        assert_eq!(listen("127.0.0.1:11143"), Ok("127.0.0.1:11143".into()));
        assert_eq!(listen("127.0.0.1"), Ok("127.0.0.1:0".into()));
        assert_eq!(listen("[::1]:11143"), Ok("[::1]:11143".into()));
        assert_eq!(listen("unix:/tmp/x.sock"), Ok("unix:/tmp/x.sock".into()));
        assert_eq!(listen("127.0.0.1:0"), Err("invalid port"));
        assert_eq!(listen("0"), Err("invalid port"));
        assert_eq!(listen("127.0.0.1:143/x"), Err("invalid host"));
        assert_eq!(listen("[::1]x"), Err("invalid host"));
        assert_eq!(listen("143-145"), Ok("0.0.0.0:143".into()));
        let range = parse_url("127.0.0.1:48100-48103", UrlMode::Listen).unwrap();
        assert_eq!((range.port, range.last_port), (48100, 48103));
        assert_eq!(listen("127.0.0.1:5-5"), Ok("127.0.0.1:5".into()));
        assert_eq!(listen("127.0.0.1:6-5"), Err("invalid port range"));
        for bad in ["1-", "-1", "0-5", "1-70000", "1-x", "1-2-3"] {
            assert_eq!(
                listen(&format!("127.0.0.1:{bad}")),
                Err("invalid port"),
                "{bad}"
            );
        }
        assert_eq!(auth("127.0.0.1:1-2"), Err("invalid port"));
        let long = format!("unix:/{}", "x".repeat(120));
        assert_eq!(
            listen(&long),
            Err("too long path in the unix domain socket")
        );
    }
}
