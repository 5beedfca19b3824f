//! The PROXY protocol (v1 text and v2 binary), sans I/O: a parser for the header a
//! load balancer puts in front of a client connection, and encoders for the header we
//! put in front of a backend connection.
//!
//! Parsing follows nginx's `ngx_proxy_protocol_read` rule by rule (reference §14.1):
//! the header must be whole in what the peer has sent so far (nginx peeks once and
//! never waits for the rest), addresses of v1 are passed on as the text the sender
//! wrote, v2 TLVs are skipped, and every failure closes the connection without a
//! reply. One deliberate difference: the peek window is [`MAX_HEADER`] (4096 bytes,
//! as nginx 1.23.3 and later) instead of 1.22.1's 107, so v2 headers that carry TLVs
//! (HAProxy's `send-proxy-v2` with `unique-id`, SSL information, ...) work.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::auth::ProxyAddrs;

/// How much of the stream start we look at for a header (newer nginx's limit).
pub const MAX_HEADER: usize = 4096;

/// The v2 signature: twelve bytes no text protocol starts with.
const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// Signature, version/command, family/transport, 16-bit length.
const V2_FIXED: usize = 16;

/// A header that was read: how many bytes it took, and what it said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Bytes to consume from the stream; the client's own data starts after them.
    pub len: usize,
    /// `None` for `PROXY UNKNOWN`, v2 `LOCAL`, and v2 families or transports nginx
    /// does not take addresses from (UNIX, UNSPEC, DGRAM).
    pub addrs: Option<ProxyAddrs>,
}

/// Why a header was refused. Every variant closes the connection without a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Broken {
    /// Not a valid v1 header (or too little of any header arrived).
    Header,
    /// v2 with a version nibble other than 2.
    UnknownVersion(u8),
    /// v2 whose announced length is more than what arrived.
    TooLarge,
    /// v2 INET/INET6 whose address block is shorter than the family needs; nginx
    /// closes without logging anything.
    ShortAddresses,
}

impl Broken {
    /// The error-level log line nginx writes, or `None` where it is silent.
    /// `received` is everything peeked, for the `broken header` text.
    pub fn log_message(&self, received: &[u8]) -> Option<String> {
        match self {
            Broken::Header => Some(format!("broken header: {}", shown_header(received))),
            Broken::UnknownVersion(v) => Some(format!("unknown PROXY protocol version: {v}")),
            Broken::TooLarge => Some("header is too large".to_string()),
            Broken::ShortAddresses => None,
        }
    }
}

/// What a `broken header` line shows. nginx 1.22.1 logs every byte peeked (up to 107,
/// CRLFs and all); newer nginx logs up to the first CR or LF, as we do. A first line
/// that is not a PROXY header is a client talking to the wrong port, and it could be
/// a LOGIN with a password, so only its first two words are shown.
fn shown_header(received: &[u8]) -> String {
    let end = received
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(received.len());
    let line = &received[..end];
    if line.starts_with(b"PROXY ") || line.is_empty() {
        format!("\"{}\"", crate::log::escape(line))
    } else {
        crate::proto::redacted_command(line)
    }
}

/// Parses the header at the start of `buf` (everything the peer has sent so far,
/// at most [`MAX_HEADER`] bytes).
pub fn parse(buf: &[u8]) -> Result<Header, Broken> {
    if buf.len() >= V2_FIXED && buf.starts_with(V2_SIGNATURE) {
        return parse_v2(buf);
    }
    parse_v1(buf).ok_or(Broken::Header)
}

/// `PROXY TCP4|TCP6 <src> <dst> <sport> <dport>\r\n` or `PROXY UNKNOWN...\r\n`.
/// As in nginx, the family word and the address syntax are not checked against each
/// other: an address is any run of hex digits, `.` and `:`.
fn parse_v1(buf: &[u8]) -> Option<Header> {
    if buf.len() < 8 {
        return None;
    }
    let rest = buf.strip_prefix(b"PROXY ")?;
    if rest.starts_with(b"UNKNOWN") {
        let crlf = rest[7..].windows(2).position(|w| w == b"\r\n")?;
        return Some(Header {
            len: 6 + 7 + crlf + 2,
            addrs: None,
        });
    }
    let rest = rest
        .strip_prefix(b"TCP4 ")
        .or_else(|| rest.strip_prefix(b"TCP6 "))?;
    let mut cursor = Cursor { rest };
    let src_addr = cursor.address()?;
    let dst_addr = cursor.address()?;
    let src_port = cursor.port(b' ')?;
    let dst_port = cursor.port(b'\r')?;
    let rest = cursor.rest.strip_prefix(b"\n")?;
    Some(Header {
        len: buf.len() - rest.len(),
        addrs: Some(ProxyAddrs {
            src_addr,
            src_port,
            dst_addr,
            dst_port,
        }),
    })
}

/// Reads the space-separated v1 fields.
struct Cursor<'a> {
    rest: &'a [u8],
}

impl Cursor<'_> {
    /// Hex digits, `.` and `:` up to a space (which is consumed).
    fn address(&mut self) -> Option<String> {
        let end = self.rest.iter().position(|&b| b == b' ')?;
        let word = &self.rest[..end];
        if !word
            .iter()
            .all(|&b| b.is_ascii_hexdigit() || b == b'.' || b == b':')
        {
            return None;
        }
        self.rest = &self.rest[end + 1..];
        Some(String::from_utf8_lossy(word).into_owned())
    }

    /// Decimal digits up to `sep` (consumed); 0–65535, at least one digit.
    fn port(&mut self, sep: u8) -> Option<u16> {
        let end = self.rest.iter().position(|&b| b == sep)?;
        let word = &self.rest[..end];
        if word.is_empty() || !word.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let port = word
            .iter()
            .try_fold(0u32, |n, &d| {
                let n = n * 10 + u32::from(d - b'0');
                (n <= 65535).then_some(n)
            })
            .and_then(|n| u16::try_from(n).ok())?;
        self.rest = &self.rest[end + 1..];
        Some(port)
    }
}

fn parse_v2(buf: &[u8]) -> Result<Header, Broken> {
    let version = buf[12] >> 4;
    if version != 2 {
        return Err(Broken::UnknownVersion(version));
    }
    let body_len = usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    let body = buf
        .get(V2_FIXED..V2_FIXED + body_len)
        .ok_or(Broken::TooLarge)?;
    let len = V2_FIXED + body_len;
    let command = buf[12] & 0x0f;
    let transport = buf[13] & 0x0f;
    // Only PROXY over STREAM carries addresses nginx uses; LOCAL (health checks) and
    // anything else is consumed and ignored.
    if command != 1 || transport != 1 {
        return Ok(Header { len, addrs: None });
    }
    let addrs = match buf[13] >> 4 {
        1 => {
            let b = body.get(..12).ok_or(Broken::ShortAddresses)?;
            let ip = |at: usize| IpAddr::V4(Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3]));
            (ip(0), ip(4), port_at(b, 8), port_at(b, 10))
        }
        2 => {
            let b = body.get(..36).ok_or(Broken::ShortAddresses)?;
            let ip = |at: usize| {
                let mut octets = [0u8; 16];
                octets.copy_from_slice(&b[at..at + 16]);
                IpAddr::V6(Ipv6Addr::from(octets))
            };
            (ip(0), ip(16), port_at(b, 32), port_at(b, 34))
        }
        _ => return Ok(Header { len, addrs: None }),
    };
    let (src, dst, src_port, dst_port) = addrs;
    Ok(Header {
        len,
        addrs: Some(ProxyAddrs {
            src_addr: ip_text(src),
            src_port,
            dst_addr: ip_text(dst),
            dst_port,
        }),
    })
}

fn port_at(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// An address as nginx prints it (`ngx_sock_ntop`): dotted quad, or IPv6 with the
/// longest run of two or more zero groups compressed, lowercase hex, and a dotted
/// tail for IPv4-mapped (`::ffff:a.b.c.d`) and IPv4-compatible (`::a.b.c.d`) forms.
pub fn ip_text(ip: IpAddr) -> String {
    let v6 = match ip {
        IpAddr::V4(v4) => return v4.to_string(),
        IpAddr::V6(v6) => v6,
    };
    let g = v6.segments();
    let (mut zero, mut max, mut run, mut start) = (None, 1, 0, 0);
    for (i, &group) in g.iter().enumerate() {
        if group != 0 {
            if max < run {
                (zero, max) = (Some(start), run);
            }
            run = 0;
            continue;
        }
        if run == 0 {
            start = i;
        }
        run += 1;
    }
    if max < run {
        (zero, max) = (Some(start), run);
    }
    let o = v6.octets();
    let mut groups = 8;
    let mut out = String::new();
    if zero == Some(0) {
        if (max == 5 && g[5] == 0xffff) || max == 6 || (max == 7 && o[14] != 0 && o[15] != 1) {
            groups = 6;
        }
        out.push(':');
    }
    let mut i = 0;
    while i < groups {
        if Some(i) == zero {
            out.push(':');
            i += max;
            continue;
        }
        out.push_str(&format!("{:x}", g[i]));
        if i < 7 {
            out.push(':');
        }
        i += 1;
    }
    if groups == 6 {
        out.push_str(&format!("{}.{}.{}.{}", o[12], o[13], o[14], o[15]));
    }
    out
}

/// The v1 header nginx sends to a backend (`ngx_proxy_protocol_write`): `client` is
/// the (realip-substituted) client, `local` the listening socket the client reached.
/// A client that is not IP (unix socket) gives `PROXY UNKNOWN`.
pub fn encode_v1(client: Option<SocketAddr>, local: SocketAddr) -> Vec<u8> {
    let Some(client) = client else {
        return b"PROXY UNKNOWN\r\n".to_vec();
    };
    let family = if client.is_ipv4() { "TCP4" } else { "TCP6" };
    format!(
        "PROXY {family} {} {} {} {}\r\n",
        ip_text(client.ip()),
        ip_text(local.ip()),
        client.port(),
        local.port()
    )
    .into_bytes()
}

/// The v2 header of newer nginx's `proxy_protocol v2` (an extension to 1.22.1): PROXY
/// over STREAM with the address block, families promoted to IPv6 if either side is
/// IPv6 (and demoted to IPv4 when both are v4-mapped), and no TLVs. nginx 1.29
/// appends a CRC32C TLV and, for TLS clients, SSL TLVs; backends must skip TLVs
/// anyway, so we send none. No client address (unix socket) gives LOCAL.
pub fn encode_v2(client: Option<SocketAddr>, local: SocketAddr) -> Vec<u8> {
    let mut out = V2_SIGNATURE.to_vec();
    let Some(client) = client else {
        out.extend_from_slice(&[0x20, 0x00, 0, 0]);
        return out;
    };
    // nginx's rule: INET when both sides are IPv4 sockets, or both IPv6 sockets with
    // v4-mapped addresses; otherwise INET6, with an IPv4 side written v4-mapped.
    let as_v6 = |a: SocketAddr| match a.ip() {
        IpAddr::V4(ip) => ip.to_ipv6_mapped(),
        IpAddr::V6(ip) => ip,
    };
    let both_v4 = match (client.ip(), local.ip()) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => Some((src, dst)),
        (IpAddr::V6(src), IpAddr::V6(dst)) => src.to_ipv4_mapped().zip(dst.to_ipv4_mapped()),
        _ => None,
    };
    match both_v4 {
        Some((src, dst)) => {
            out.extend_from_slice(&[0x21, 0x11, 0, 12]);
            out.extend_from_slice(&src.octets());
            out.extend_from_slice(&dst.octets());
        }
        None => {
            out.extend_from_slice(&[0x21, 0x21, 0, 36]);
            out.extend_from_slice(&as_v6(client).octets());
            out.extend_from_slice(&as_v6(local).octets());
        }
    }
    out.extend_from_slice(&client.port().to_be_bytes());
    out.extend_from_slice(&local.port().to_be_bytes());
    out
}

#[cfg(test)]
#[path = "proxy_protocol_tests.rs"]
mod tests;
