//! A minimal DNS stub resolver over UDP, for SMTP's client host name lookup (`resolver`,
//! reference §7.2): PTR for the client address, then A/AAAA to confirm the name.
//!
//! nginx talks to the configured name servers itself instead of using the system
//! resolver, so `/etc/hosts` and nsswitch play no part; we do the same. One query is
//! sent to the first server and resent to the next one every [`RESEND`] until an
//! answer with our id and question arrives or the `resolver_timeout` runs out. Like
//! nginx, a successful answer without any record counts as "Host not found".

use std::hash::{BuildHasher, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::time::{timeout_at, Instant};

/// How often an unanswered query is sent again (to the next server).
const RESEND: Duration = Duration::from_secs(1);
/// A UDP DNS message without EDNS is at most 512 bytes; allow for larger ones.
const MAX_MESSAGE: usize = 4096;
const TYPE_A: u16 = 1;
const TYPE_PTR: u16 = 12;
const TYPE_AAAA: u16 = 28;

/// Why a lookup failed, with nginx's numbering for its log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsError {
    /// RCODE 1..=5 (3 = NXDOMAIN, also used for an empty answer).
    Rcode(u8),
    TimedOut,
}

impl DnsError {
    pub const NXDOMAIN: DnsError = DnsError::Rcode(3);

    /// `(N: text)` as nginx's `ngx_resolver_strerror` words it.
    pub fn describe(self) -> String {
        let (code, text) = match self {
            DnsError::TimedOut => (110, "Operation timed out"),
            DnsError::Rcode(code) => (
                i32::from(code),
                match code {
                    1 => "Format error",
                    2 => "Server failure",
                    3 => "Host not found",
                    4 => "Unimplemented",
                    5 => "Operation refused",
                    _ => "Unknown error",
                },
            ),
        };
        format!("{code}: {text}")
    }
}

/// The name a PTR lookup of `addr` gives (the first PTR record, without the final dot).
pub async fn reverse(
    servers: &[SocketAddr],
    addr: IpAddr,
    limit: Duration,
) -> Result<String, DnsError> {
    let answers = query(servers, &reverse_name(addr), TYPE_PTR, limit).await?;
    answers
        .into_iter()
        .find_map(|a| match a {
            Answer::Name(name) => Some(name),
            Answer::Addr(_) => None,
        })
        .ok_or(DnsError::NXDOMAIN)
}

/// The addresses of `name` in the family of `like` (A for IPv4, AAAA for IPv6).
pub async fn forward(
    servers: &[SocketAddr],
    name: &str,
    like: IpAddr,
    limit: Duration,
) -> Result<Vec<IpAddr>, DnsError> {
    let qtype = if like.is_ipv4() { TYPE_A } else { TYPE_AAAA };
    let answers = query(servers, name, qtype, limit).await?;
    let addrs: Vec<IpAddr> = answers
        .into_iter()
        .filter_map(|a| match a {
            Answer::Addr(ip) => Some(ip),
            Answer::Name(_) => None,
        })
        .collect();
    if addrs.is_empty() {
        return Err(DnsError::NXDOMAIN);
    }
    Ok(addrs)
}

/// `4.3.2.1.in-addr.arpa` / nibble-reversed `ip6.arpa`.
pub fn reverse_name(addr: IpAddr) -> String {
    match addr {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            format!("{d}.{c}.{b}.{a}.in-addr.arpa")
        }
        IpAddr::V6(v6) => {
            let mut name = String::with_capacity(72);
            for byte in v6.octets().iter().rev() {
                name.push_str(&format!("{:x}.{:x}.", byte & 15, byte >> 4));
            }
            name.push_str("ip6.arpa");
            name
        }
    }
}

/// One record of an answer that [`decode_response`] keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Name(String),
    Addr(IpAddr),
}

async fn query(
    servers: &[SocketAddr],
    name: &str,
    qtype: u16,
    limit: Duration,
) -> Result<Vec<Answer>, DnsError> {
    let deadline = Instant::now() + limit;
    let first = servers.first().ok_or(DnsError::TimedOut)?;
    let bind: SocketAddr = if first.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(bind)
        .await
        .map_err(|_| DnsError::TimedOut)?;
    let id = random_id();
    let message = encode_query(id, name, qtype).ok_or(DnsError::Rcode(1))?;
    let mut buf = vec![0u8; MAX_MESSAGE];
    for attempt in 0.. {
        let server = servers[attempt % servers.len()];
        // A send error (unreachable network) is treated like a lost datagram.
        let _ = socket.send_to(&message, server).await;
        let resend_at = (Instant::now() + RESEND).min(deadline);
        loop {
            let received = timeout_at(resend_at, socket.recv_from(&mut buf)).await;
            match received {
                Err(_) if resend_at >= deadline => return Err(DnsError::TimedOut),
                Err(_) => break,
                Ok(Err(_)) => continue,
                Ok(Ok((n, from))) if servers.contains(&from) => {
                    if let Some(result) = decode_response(&buf[..n], id, qtype) {
                        return result;
                    }
                }
                Ok(Ok(_)) => {}
            }
        }
    }
    Err(DnsError::TimedOut)
}

fn random_id() -> u16 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(u64::from(std::process::id()));
    hasher.finish() as u16
}

/// A standard query with recursion desired. `None` for a name that cannot be encoded.
/// Public for the fuzz targets (`fuzz/`) only.
#[doc(hidden)]
pub fn encode_query(id: u16, name: &str, qtype: u16) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(32 + name.len());
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.trim_end_matches('.').split('.') {
        if label.is_empty() || label.len() > 63 {
            return None;
        }
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    Some(out)
}

/// `None`: not a response to our query (ignore it); else the verdict. Public for the
/// fuzz targets (`fuzz/`) only.
#[doc(hidden)]
pub fn decode_response(msg: &[u8], id: u16, qtype: u16) -> Option<Result<Vec<Answer>, DnsError>> {
    if msg.len() < 12 || msg[..2] != id.to_be_bytes() || msg[2] & 0x80 == 0 {
        return None;
    }
    let rcode = msg[3] & 0x0f;
    if rcode != 0 {
        return Some(Err(DnsError::Rcode(rcode)));
    }
    let count = |at: usize| usize::from(u16::from_be_bytes([msg[at], msg[at + 1]]));
    let (questions, answers) = (count(4), count(6));
    let mut at = 12;
    for _ in 0..questions {
        at = skip_name(msg, at)? + 4;
    }
    let mut found = Vec::new();
    for _ in 0..answers {
        at = skip_name(msg, at)?;
        let header = msg.get(at..at + 10)?;
        let rtype = u16::from_be_bytes([header[0], header[1]]);
        let len = usize::from(u16::from_be_bytes([header[8], header[9]]));
        let data_at = at + 10;
        let data = msg.get(data_at..data_at + len)?;
        match (rtype, qtype) {
            (TYPE_PTR, TYPE_PTR) => found.push(Answer::Name(read_name(msg, data_at)?)),
            (TYPE_A, TYPE_A) if len == 4 => {
                let octets: [u8; 4] = data.try_into().ok()?;
                found.push(Answer::Addr(IpAddr::from(octets)));
            }
            (TYPE_AAAA, TYPE_AAAA) if len == 16 => {
                let octets: [u8; 16] = data.try_into().ok()?;
                found.push(Answer::Addr(IpAddr::from(octets)));
            }
            _ => {}
        }
        at = data_at + len;
    }
    Some(Ok(found))
}

/// The offset just past the (possibly compressed) name at `at`.
fn skip_name(msg: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let len = *msg.get(at)?;
        match len {
            0 => return Some(at + 1),
            l if l & 0xc0 == 0xc0 => return Some(at + 2),
            l => at += 1 + usize::from(l),
        }
    }
}

/// The dotted name at `at`, following compression pointers (bounded, so a pointer loop
/// cannot hang us).
fn read_name(msg: &[u8], mut at: usize) -> Option<String> {
    let mut name = String::new();
    for _ in 0..128 {
        let len = *msg.get(at)?;
        if len == 0 {
            return Some(name);
        }
        if len & 0xc0 == 0xc0 {
            at = usize::from(u16::from_be_bytes([len & 0x3f, *msg.get(at + 1)?]));
            continue;
        }
        let label = msg.get(at + 1..at + 1 + usize::from(len))?;
        if !name.is_empty() {
            name.push('.');
        }
        name.push_str(&String::from_utf8_lossy(label));
        if name.len() > 255 {
            return None;
        }
        at += 1 + usize::from(len);
    }
    None
}

#[cfg(test)]
pub mod tests {
    use super::*;

    #[test]
    fn reverse_names() {
        assert_eq!(
            reverse_name("127.0.0.1".parse().unwrap()),
            "1.0.0.127.in-addr.arpa"
        );
        let v6 = reverse_name("2001:db8::1".parse().unwrap());
        assert!(v6.starts_with("1.0.0.0.0.0.0.0."), "{v6}");
        assert!(v6.ends_with(".8.b.d.0.1.0.0.2.ip6.arpa"), "{v6}");
    }

    /// A reply to `query` with the given answers (`rtype`, rdata), name-compressed.
    pub fn reply(query: &[u8], rcode: u8, answers: &[(u16, Vec<u8>)]) -> Vec<u8> {
        let mut out = query.to_vec();
        out[2] = 0x81;
        out[3] = 0x80 | rcode;
        out[6..8].copy_from_slice(&(answers.len() as u16).to_be_bytes());
        for (rtype, data) in answers {
            out.extend_from_slice(&[0xc0, 12]);
            out.extend_from_slice(&rtype.to_be_bytes());
            out.extend_from_slice(&[0, 1, 0, 0, 0, 60]);
            out.extend_from_slice(&(data.len() as u16).to_be_bytes());
            out.extend_from_slice(data);
        }
        out
    }

    /// `name` in wire form.
    pub fn wire_name(name: &str) -> Vec<u8> {
        let mut out = Vec::new();
        for label in name.split('.') {
            out.push(label.len() as u8);
            out.extend_from_slice(label.as_bytes());
        }
        out.push(0);
        out
    }

    #[test]
    fn decodes_answers_and_errors() {
        let q = encode_query(7, "1.0.0.127.in-addr.arpa", TYPE_PTR).unwrap();
        let r = reply(&q, 0, &[(TYPE_PTR, wire_name("mail.example"))]);
        assert_eq!(
            decode_response(&r, 7, TYPE_PTR),
            Some(Ok(vec![Answer::Name("mail.example".into())]))
        );
        assert_eq!(decode_response(&r, 8, TYPE_PTR), None, "other id");
        let nx = reply(&q, 3, &[]);
        assert_eq!(
            decode_response(&nx, 7, TYPE_PTR),
            Some(Err(DnsError::NXDOMAIN))
        );
        let q = encode_query(9, "mail.example", TYPE_A).unwrap();
        let r = reply(
            &q,
            0,
            &[(TYPE_A, vec![127, 0, 0, 1]), (TYPE_AAAA, vec![0; 16])],
        );
        assert_eq!(
            decode_response(&r, 9, TYPE_A),
            Some(Ok(vec![Answer::Addr("127.0.0.1".parse().unwrap())]))
        );
        assert_eq!(decode_response(&r[..r.len() - 3], 9, TYPE_A), None);
        assert_eq!(DnsError::TimedOut.describe(), "110: Operation timed out");
        assert_eq!(DnsError::NXDOMAIN.describe(), "3: Host not found");
    }

    #[tokio::test]
    async fn talks_to_a_server_and_times_out() {
        let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = server.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = [0u8; 512];
            let (n, from) = server.recv_from(&mut buf).await.unwrap();
            let r = reply(&buf[..n], 0, &[(TYPE_PTR, wire_name("host.test"))]);
            server.send_to(&r, from).await.unwrap();
        });
        let ip = "127.0.0.1".parse().unwrap();
        let name = reverse(&[addr], ip, Duration::from_secs(2)).await;
        assert_eq!(name, Ok("host.test".to_string()));
        let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let quiet = silent.local_addr().unwrap();
        let r = reverse(&[quiet], ip, Duration::from_millis(200)).await;
        assert_eq!(r, Err(DnsError::TimedOut));
    }
}
