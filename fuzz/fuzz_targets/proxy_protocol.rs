//! `cargo +nightly fuzz run proxy_protocol`: the PROXY protocol v1/v2 header parser on
//! any stream start (at most `MAX_HEADER` bytes, as the listener peeks), and the two
//! encoders round-tripped through it with addresses taken from the input.
//!
//! Asserts: a header takes at least one byte and no more than arrived; it parses the
//! same from just its own bytes (nothing after it was looked at); v1 addresses are hex
//! digits, `.` and `:` only, v2 ones are printed IP addresses; `ip_text` reparses to
//! the same address; `encode_v1` / `encode_v2` output parses back to the addresses
//! and ports encoded; no refusal's log line breaks the log.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use libfuzzer_sys::fuzz_target;
use mailproxy::net::proxy_protocol::{self, Broken, MAX_HEADER};
use mailproxy_fuzz::assert_log_line;

fn addr(bytes: &[u8]) -> SocketAddr {
    let mut b = [0u8; 19];
    let n = bytes.len().min(19);
    b[..n].copy_from_slice(&bytes[..n]);
    let port = u16::from_be_bytes([b[17], b[18]]);
    let ip = if b[0] & 1 == 0 {
        IpAddr::V4(Ipv4Addr::new(b[1], b[2], b[3], b[4]))
    } else {
        let mut octets = [0u8; 16];
        octets.copy_from_slice(&b[1..17]);
        // Favour the forms ip_text prints specially: v4-mapped and v4-compatible.
        match b[0] >> 1 & 3 {
            1 => octets[..12].copy_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]),
            2 => octets[..12].fill(0),
            _ => {}
        }
        IpAddr::V6(Ipv6Addr::from(octets))
    };
    SocketAddr::new(ip, port)
}

/// The address a v2 header carries for `ip`: v4-mapped when the other side is IPv6.
fn same_ip(printed: &str, ip: IpAddr) -> bool {
    let parsed: IpAddr = printed.parse().expect("v2 address does not parse");
    let canonical = |ip: IpAddr| match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    };
    canonical(parsed) == canonical(ip)
}

fuzz_target!(|data: &[u8]| {
    let peeked = &data[..data.len().min(MAX_HEADER)];
    match proxy_protocol::parse(peeked) {
        Ok(header) => {
            assert!(header.len > 0 && header.len <= peeked.len(), "{header:?}");
            let own = proxy_protocol::parse(&peeked[..header.len]);
            assert_eq!(
                own.as_ref(),
                Ok(&header),
                "the header depends on later bytes"
            );
            if let Some(addrs) = &header.addrs {
                let v2 = peeked.starts_with(b"\r\n\r\n\0\r\nQUIT\n");
                for text in [&addrs.src_addr, &addrs.dst_addr] {
                    if v2 {
                        let ip: IpAddr = text.parse().expect("v2 address does not parse");
                        assert_eq!(&proxy_protocol::ip_text(ip), text);
                    } else {
                        assert!(
                            text.bytes()
                                .all(|b| b.is_ascii_hexdigit() || b == b'.' || b == b':'),
                            "v1 address {text:?}"
                        );
                    }
                }
            }
        }
        Err(broken) => {
            if let Some(line) = broken.log_message(peeked) {
                assert_log_line("PROXY", &line);
            }
            if let Broken::UnknownVersion(v) = broken {
                assert!(v != 2 && v < 16);
            }
        }
    }

    let client = addr(data);
    let local = addr(data.get(19..).unwrap_or_default());
    for ip in [client.ip(), local.ip()] {
        let text = proxy_protocol::ip_text(ip);
        assert_eq!(
            text.parse::<IpAddr>().ok(),
            Some(ip),
            "ip_text({ip:?}) = {text}"
        );
    }

    let v1 = proxy_protocol::encode_v1(Some(client), local);
    let header = proxy_protocol::parse(&v1).expect("encode_v1 does not parse");
    assert_eq!(header.len, v1.len());
    let addrs = header.addrs.expect("v1 without addresses");
    assert_eq!(addrs.src_addr, proxy_protocol::ip_text(client.ip()));
    assert_eq!(addrs.dst_addr, proxy_protocol::ip_text(local.ip()));
    assert_eq!(
        (addrs.src_port, addrs.dst_port),
        (client.port(), local.port())
    );

    let mut v2 = proxy_protocol::encode_v2(Some(client), local);
    let tail = data.get(38..).unwrap_or_default();
    v2.extend_from_slice(tail);
    let header = proxy_protocol::parse(&v2).expect("encode_v2 does not parse");
    assert_eq!(header.len, v2.len() - tail.len());
    let addrs = header.addrs.expect("v2 without addresses");
    assert!(
        same_ip(&addrs.src_addr, client.ip()),
        "{addrs:?} for {client}"
    );
    assert!(
        same_ip(&addrs.dst_addr, local.ip()),
        "{addrs:?} for {local}"
    );
    assert_eq!(
        (addrs.src_port, addrs.dst_port),
        (client.port(), local.port())
    );

    for encoded in [
        proxy_protocol::encode_v1(None, local),
        proxy_protocol::encode_v2(None, local),
    ] {
        let header = proxy_protocol::parse(&encoded).expect("LOCAL/UNKNOWN does not parse");
        assert_eq!((header.len, header.addrs), (encoded.len(), None));
    }
});
