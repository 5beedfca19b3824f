use super::*;

fn addrs(src: &str, sport: u16, dst: &str, dport: u16) -> Option<ProxyAddrs> {
    Some(ProxyAddrs {
        src_addr: src.into(),
        src_port: sport,
        dst_addr: dst.into(),
        dst_port: dport,
    })
}

fn v2(ver_cmd: u8, fam: u8, body: &[u8]) -> Vec<u8> {
    let mut h = V2_SIGNATURE.to_vec();
    h.extend_from_slice(&[ver_cmd, fam]);
    h.extend_from_slice(&(body.len() as u16).to_be_bytes());
    h.extend_from_slice(body);
    h
}

#[test]
fn v1_tcp4_is_consumed_exactly_and_client_data_follows() {
    let buf = b"PROXY TCP4 192.0.2.7 127.0.0.1 40000 143\r\na1 CAPABILITY\r\n";
    let h = parse(buf).unwrap();
    assert_eq!(h.len, 42);
    assert_eq!(&buf[h.len..], b"a1 CAPABILITY\r\n");
    assert_eq!(h.addrs, addrs("192.0.2.7", 40000, "127.0.0.1", 143));
}

#[test]
fn v1_addresses_are_passed_on_as_written() {
    // Family and address syntax are not cross-checked; the text is kept verbatim.
    let h = parse(b"PROXY TCP4 ::FFFF:1.2.3.4 2001:DB8::1 0 65535\r\n").unwrap();
    assert_eq!(h.addrs, addrs("::FFFF:1.2.3.4", 0, "2001:DB8::1", 65535));
    let h = parse(b"PROXY TCP6 1.2.3 4 007 8\r\n").unwrap();
    assert_eq!(h.addrs, addrs("1.2.3", 7, "4", 8));
}

#[test]
fn v1_unknown_is_skipped_without_addresses() {
    let buf = b"PROXY UNKNOWN whatever 1 2\r\nrest";
    assert_eq!(
        parse(buf),
        Ok(Header {
            len: buf.len() - 4,
            addrs: None
        })
    );
    assert_eq!(parse(b"PROXY UNKNOWN\r\n").unwrap().len, 15);
}

#[test]
fn v1_malformed_headers_are_broken() {
    let cases: &[&[u8]] = &[
        b"",
        b"PROXY T",
        b"a1 LOGIN alice secret\r\n",
        b"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n".split_at(20).0,
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX",
        b"PROXY TCP4 1.2.3.g 5.6.7.8 1 2\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8  2\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n",
        b"PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n",
        b"PROXY UNKNOWN no end",
        b"proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
    ];
    for case in cases {
        assert_eq!(
            parse(case),
            Err(Broken::Header),
            "{:?}",
            String::from_utf8_lossy(case)
        );
    }
}

#[test]
fn broken_header_log_shows_first_line_but_never_a_login() {
    let proxy = b"PROXY TCP9 1.2.3.4\r\nmore";
    assert_eq!(
        Broken::Header.log_message(proxy).unwrap(),
        "broken header: \"PROXY TCP9 1.2.3.4\""
    );
    let login = b"a1 LOGIN alice secret\r\n";
    assert_eq!(
        Broken::Header.log_message(login).unwrap(),
        "broken header: \"a1 LOGIN...\" (21 bytes)"
    );
    assert_eq!(
        Broken::Header.log_message(b"a1 CAPABILITY\r\n").unwrap(),
        "broken header: \"a1 CAPABILITY\""
    );
    assert_eq!(
        Broken::Header.log_message(b"").unwrap(),
        "broken header: \"\""
    );
    assert_eq!(Broken::ShortAddresses.log_message(b""), None);
}

#[test]
fn v2_inet_with_tlvs_skipped() {
    let mut body = vec![192, 0, 2, 7, 127, 0, 0, 1, 0x9c, 0x40, 0, 143];
    body.extend_from_slice(&[0x05, 0x00, 0x03, b'a', b'b', b'c']);
    let mut buf = v2(0x21, 0x11, &body);
    let len = buf.len();
    buf.extend_from_slice(b"a1 NOOP\r\n");
    let h = parse(&buf).unwrap();
    assert_eq!(h.len, len);
    assert_eq!(h.addrs, addrs("192.0.2.7", 40000, "127.0.0.1", 143));
}

#[test]
fn v2_inet6_addresses_in_nginx_text_form() {
    let mut body = Vec::new();
    body.extend_from_slice(&"2001:db8::7".parse::<Ipv6Addr>().unwrap().octets());
    body.extend_from_slice(&"::ffff:127.0.0.1".parse::<Ipv6Addr>().unwrap().octets());
    body.extend_from_slice(&[0, 1, 0, 2]);
    let h = parse(&v2(0x21, 0x21, &body)).unwrap();
    assert_eq!(h.addrs, addrs("2001:db8::7", 1, "::ffff:127.0.0.1", 2));
}

#[test]
fn v2_local_unix_unspec_and_dgram_carry_no_addresses() {
    let inet = [1u8, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2];
    for (ver_cmd, fam) in [(0x20, 0x11), (0x21, 0x31), (0x21, 0x00), (0x21, 0x12)] {
        let buf = v2(ver_cmd, fam, &inet);
        assert_eq!(
            parse(&buf),
            Ok(Header {
                len: 28,
                addrs: None
            }),
            "{ver_cmd:x} {fam:x}"
        );
    }
}

#[test]
fn v2_errors() {
    let inet = [1u8, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2];
    assert_eq!(
        parse(&v2(0x11, 0x11, &inet)),
        Err(Broken::UnknownVersion(1))
    );
    let mut cut = v2(0x21, 0x11, &inet);
    cut.pop();
    assert_eq!(parse(&cut), Err(Broken::TooLarge));
    assert_eq!(
        parse(&v2(0x21, 0x11, &inet[..11])),
        Err(Broken::ShortAddresses)
    );
    assert_eq!(
        parse(&v2(0x21, 0x21, &[0; 35])),
        Err(Broken::ShortAddresses)
    );
    // Less than the fixed part: taken for a (broken) v1 header, as nginx does.
    assert_eq!(parse(&V2_SIGNATURE[..]), Err(Broken::Header));
    assert_eq!(
        Broken::UnknownVersion(1).log_message(b"").unwrap(),
        "unknown PROXY protocol version: 1"
    );
    assert_eq!(
        Broken::TooLarge.log_message(b"").unwrap(),
        "header is too large"
    );
}

#[test]
fn v2_header_may_use_the_whole_window() {
    let mut body = vec![1u8, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2];
    body.resize(MAX_HEADER - V2_FIXED, 0);
    assert_eq!(parse(&v2(0x21, 0x11, &body)).unwrap().len, MAX_HEADER);
}

#[test]
fn ipv6_text_follows_ngx_inet6_ntop() {
    let cases = [
        ("::", "::"),
        ("::1", "::1"),
        ("2001:db8::1", "2001:db8::1"),
        ("2001:db8:0:1:0:0:0:1", "2001:db8:0:1::1"),
        ("1:0:1:0:1:0:1:0", "1:0:1:0:1:0:1:0"),
        ("::ffff:1.2.3.4", "::ffff:1.2.3.4"),
        ("::1.2.3.4", "::1.2.3.4"),
        ("FE80::ABCD", "fe80::abcd"),
    ];
    for (input, text) in cases {
        assert_eq!(ip_text(input.parse().unwrap()), text, "{input}");
    }
}

#[test]
fn v1_encoding_matches_nginx() {
    let client: SocketAddr = "127.0.0.1:50782".parse().unwrap();
    let local: SocketAddr = "127.0.0.1:10028".parse().unwrap();
    assert_eq!(
        encode_v1(Some(client), local),
        b"PROXY TCP4 127.0.0.1 127.0.0.1 50782 10028\r\n"
    );
    let client: SocketAddr = "[2001:db8::7]:1".parse().unwrap();
    let local: SocketAddr = "[::1]:143".parse().unwrap();
    assert_eq!(
        encode_v1(Some(client), local),
        b"PROXY TCP6 2001:db8::7 ::1 1 143\r\n"
    );
    assert_eq!(encode_v1(None, local), b"PROXY UNKNOWN\r\n");
}

#[test]
fn v2_encoding_round_trips_and_is_exact() {
    let client: SocketAddr = "192.0.2.7:40000".parse().unwrap();
    let local: SocketAddr = "127.0.0.1:143".parse().unwrap();
    let out = encode_v2(Some(client), local);
    let mut want = V2_SIGNATURE.to_vec();
    want.extend_from_slice(&[
        0x21, 0x11, 0, 12, 192, 0, 2, 7, 127, 0, 0, 1, 0x9c, 0x40, 0, 143,
    ]);
    assert_eq!(out, want);
    assert_eq!(
        parse(&out).unwrap().addrs,
        addrs("192.0.2.7", 40000, "127.0.0.1", 143)
    );
    // Both v4-mapped: demoted to INET.
    let mapped: SocketAddr = "[::ffff:192.0.2.7]:40000".parse().unwrap();
    let local6: SocketAddr = "[::ffff:127.0.0.1]:143".parse().unwrap();
    assert_eq!(encode_v2(Some(mapped), local6), want);
    // Mixed: INET6 with the IPv4 side v4-mapped.
    let local6: SocketAddr = "[::1]:143".parse().unwrap();
    let out = encode_v2(Some(client), local6);
    assert_eq!(&out[12..16], &[0x21, 0x21, 0, 36]);
    assert_eq!(
        parse(&out).unwrap().addrs,
        addrs("::ffff:192.0.2.7", 40000, "::1", 143)
    );
    let mut local_cmd = V2_SIGNATURE.to_vec();
    local_cmd.extend_from_slice(&[0x20, 0x00, 0, 0]);
    assert_eq!(encode_v2(None, local), local_cmd);
}
