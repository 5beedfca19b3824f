//! `error_log syslog:server=ADDR[,facility=F][,severity=S][,tag=T][,nohostname]`:
//! nginx's RFC 3164 sender. Each log line goes out as one datagram,
//! `<PRI>Nov 28 07:07:24 HOST TAG: 2026/11/28 07:07:24 [error] PID#TID: message`,
//! with PRI = facility * 8 + the line's own level (nginx ignores `severity=` when
//! writing), so syslog filters written for nginx keep matching.

use std::net::{SocketAddr, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;

const FACILITIES: &[&str] = &[
    "kern", "user", "mail", "daemon", "auth", "intern", "lpr", "news", "uucp", "clock", "authpriv",
    "ftp", "ntp", "audit", "alert", "cron", "local0", "local1", "local2", "local3", "local4",
    "local5", "local6", "local7",
];
const SEVERITIES: &[&str] = &[
    "emerg", "alert", "crit", "error", "warn", "notice", "info", "debug",
];
/// nginx's `NGX_SYSLOG_MAX_STR`: longer messages are cut.
const MAX_DATAGRAM: usize = 4096;

/// Where a syslog peer lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Server {
    Udp(SocketAddr),
    Unix(PathBuf),
}

/// The parsed parameters of one `syslog:` target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    pub server: Server,
    pub facility: u8,
    pub tag: String,
    pub nohostname: bool,
}

/// Parses what follows `syslog:`, with nginx's messages for every mistake.
pub fn parse(spec: &str) -> Result<Params, String> {
    let (mut server, mut facility, mut severity, mut tag) = (None, None, None, None);
    let mut nohostname = false;
    for part in spec.split(',') {
        if let Some(v) = part.strip_prefix("server=") {
            if server.is_some() {
                return Err("duplicate syslog \"server\"".into());
            }
            server = Some(parse_server(v)?);
        } else if let Some(v) = part.strip_prefix("facility=") {
            if facility.is_some() {
                return Err("duplicate syslog \"facility\"".into());
            }
            let i = FACILITIES.iter().position(|f| *f == v);
            facility = Some(i.ok_or(format!("unknown syslog facility \"{v}\""))?);
        } else if let Some(v) = part.strip_prefix("severity=") {
            if severity.is_some() {
                return Err("duplicate syslog \"severity\"".into());
            }
            let i = SEVERITIES.iter().position(|s| *s == v);
            severity = Some(i.ok_or(format!("unknown syslog severity \"{v}\""))?);
        } else if let Some(v) = part.strip_prefix("tag=") {
            if tag.is_some() {
                return Err("duplicate syslog \"tag\"".into());
            }
            tag = Some(check_tag(v)?);
        } else if part == "nohostname" {
            nohostname = true;
        } else {
            return Err(format!("unknown syslog parameter \"{part}\""));
        }
    }
    Ok(Params {
        server: server.ok_or("no syslog server specified")?,
        facility: facility.map_or(23, |f| f as u8),
        tag: tag.unwrap_or_else(|| "nginx".into()),
        nohostname,
    })
}

fn check_tag(tag: &str) -> Result<String, String> {
    if tag.len() > 32 {
        return Err("syslog tag length exceeds 32".into());
    }
    if !tag.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_') {
        return Err("syslog \"tag\" only allows alphanumeric characters and underscore".into());
    }
    Ok(tag.to_string())
}

fn parse_server(v: &str) -> Result<Server, String> {
    use crate::config::url::{parse_url, UrlMode};
    // nginx's `ngx_parse_url` with default port 514: its errors in its order (`no
    // host`, `invalid port`, then `host not found`).
    let url =
        parse_url(v, UrlMode::Syslog).map_err(|err| format!("{err} in syslog server \"{v}\""))?;
    Ok(match url.unix {
        Some(path) => Server::Unix(path),
        None => Server::Udp(url.addrs[0]),
    })
}

/// A connected sender for one `syslog:` target.
pub struct Sender {
    params: Params,
    hostname: String,
    socket: Socket,
}

enum Socket {
    Udp(UdpSocket),
    Unix(UnixDatagram),
}

impl Sender {
    pub fn connect(params: Params) -> std::io::Result<Sender> {
        let socket = match &params.server {
            Server::Udp(addr) => {
                let local: SocketAddr = if addr.is_ipv6() {
                    "[::]:0".parse().expect("literal")
                } else {
                    "0.0.0.0:0".parse().expect("literal")
                };
                let s = UdpSocket::bind(local)?;
                s.connect(addr)?;
                Socket::Udp(s)
            }
            Server::Unix(path) => {
                let s = UnixDatagram::unbound()?;
                s.connect(path)?;
                Socket::Unix(s)
            }
        };
        Ok(Sender {
            params,
            hostname: hostname(),
            socket,
        })
    }

    /// Sends one error-log line (`line` without its newline) at `severity` (0 = emerg).
    /// Failures are dropped: nothing sensible can log a failure to log.
    pub fn send(&self, severity: u8, line: &str) {
        let mut datagram = header(&self.params, &self.hostname, severity, &syslog_time());
        datagram.push_str(line);
        let mut end = datagram.len().min(MAX_DATAGRAM);
        while !datagram.is_char_boundary(end) {
            end -= 1;
        }
        let bytes = &datagram.as_bytes()[..end];
        let _ = match &self.socket {
            Socket::Udp(s) => s.send(bytes),
            Socket::Unix(s) => s.send(bytes),
        };
    }
}

/// `<PRI>TIME HOST TAG: ` (or without HOST for `nohostname`).
pub fn header(params: &Params, hostname: &str, severity: u8, time: &str) -> String {
    let pri = u32::from(params.facility) * 8 + u32::from(severity);
    if params.nohostname {
        format!("<{pri}>{time} {}: ", params.tag)
    } else {
        format!("<{pri}>{time} {hostname} {}: ", params.tag)
    }
}

/// The machine's name, as nginx's `cycle->hostname` (lower-cased).
fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into our buffer.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "localhost".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).to_lowercase()
}

/// Local time as RFC 3164 wants it: `Nov  8 07:07:24` (day padded with a space).
fn syslog_time() -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let tm = crate::log::local_time();
    let month = MONTHS[usize::try_from(tm.tm_mon).unwrap_or(0) % 12];
    format!(
        "{month} {:2} {:02}:{:02}:{:02}",
        tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nginx_parameters() {
        let p = parse("server=127.0.0.1:5514,facility=mail,tag=mp,nohostname").unwrap();
        assert_eq!(p.server, Server::Udp("127.0.0.1:5514".parse().unwrap()));
        assert_eq!((p.facility, p.tag.as_str(), p.nohostname), (2, "mp", true));
        let p = parse("server=127.0.0.1").unwrap();
        assert_eq!(p.server, Server::Udp("127.0.0.1:514".parse().unwrap()));
        assert_eq!((p.facility, p.tag.as_str()), (23, "nginx"));
        let p = parse("server=[::1]:600").unwrap();
        assert_eq!(p.server, Server::Udp("[::1]:600".parse().unwrap()));
    }

    #[test]
    fn mistakes_get_nginx_messages() {
        assert_eq!(
            parse("facility=mail").unwrap_err(),
            "no syslog server specified"
        );
        assert_eq!(
            parse("server=127.0.0.1,facility=bogus").unwrap_err(),
            "unknown syslog facility \"bogus\""
        );
        assert_eq!(
            parse("server=127.0.0.1,tag=a-b").unwrap_err(),
            "syslog \"tag\" only allows alphanumeric characters and underscore"
        );
        assert_eq!(
            parse("server=127.0.0.1,x=1").unwrap_err(),
            "unknown syslog parameter \"x=1\""
        );
        assert_eq!(
            parse("server=127.0.0.1,server=127.0.0.2").unwrap_err(),
            "duplicate syslog \"server\""
        );
    }

    #[test]
    fn header_is_rfc3164_as_nginx_sends_it() {
        let p = parse("server=127.0.0.1,facility=local7").unwrap();
        assert_eq!(
            header(&p, "mx", 3, "Nov 28 07:07:24"),
            "<187>Nov 28 07:07:24 mx nginx: "
        );
        let p = parse("server=127.0.0.1,facility=mail,tag=mp,nohostname").unwrap();
        assert_eq!(
            header(&p, "mx", 6, "Nov  8 07:07:24"),
            "<22>Nov  8 07:07:24 mp: "
        );
    }
}
