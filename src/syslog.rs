//! `error_log syslog:server=ADDR[,facility=F][,severity=S][,tag=T][,nohostname]`:
//! nginx's RFC 3164 sender (the parameters are parsed by
//! [`config::log_target`](crate::config::log_target)). Each log line goes out as one datagram,
//! `<PRI>Nov 28 07:07:24 HOST TAG: 2026/11/28 07:07:24 [error] PID#TID: message`,
//! with PRI = facility * 8 + the line's own level (nginx ignores `severity=` when
//! writing), so syslog filters written for nginx keep matching.

use std::net::{SocketAddr, UdpSocket};
use std::os::unix::net::UnixDatagram;

use crate::config::log_target::local_time;
use crate::config::{SyslogServer, SyslogSpec};

/// nginx's `NGX_SYSLOG_MAX_STR`: longer messages are cut.
const MAX_DATAGRAM: usize = 4096;

/// A connected sender for one `syslog:` target.
pub struct Sender {
    params: SyslogSpec,
    hostname: String,
    socket: Socket,
}

enum Socket {
    Udp(UdpSocket),
    Unix(UnixDatagram),
}

impl Sender {
    pub fn connect(params: SyslogSpec) -> std::io::Result<Sender> {
        let socket = match &params.server {
            SyslogServer::Udp(addr) => {
                let local: SocketAddr = if addr.is_ipv6() {
                    "[::]:0".parse().expect("literal")
                } else {
                    "0.0.0.0:0".parse().expect("literal")
                };
                let s = UdpSocket::bind(local)?;
                s.connect(addr)?;
                Socket::Udp(s)
            }
            SyslogServer::Unix(path) => {
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
pub fn header(params: &SyslogSpec, hostname: &str, severity: u8, time: &str) -> String {
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
    let tm = local_time();
    let month = MONTHS[usize::try_from(tm.tm_mon).unwrap_or(0) % 12];
    format!(
        "{month} {:2} {:02}:{:02}:{:02}",
        tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::log_target::parse_syslog;

    #[test]
    fn header_is_rfc3164_as_nginx_sends_it() {
        let p = parse_syslog("server=127.0.0.1,facility=local7").unwrap();
        assert_eq!(
            header(&p, "mx", 3, "Nov 28 07:07:24"),
            "<187>Nov 28 07:07:24 mx nginx: "
        );
        let p = parse_syslog("server=127.0.0.1,facility=mail,tag=mp,nohostname").unwrap();
        assert_eq!(
            header(&p, "mx", 6, "Nov  8 07:07:24"),
            "<22>Nov  8 07:07:24 mp: "
        );
    }
}
