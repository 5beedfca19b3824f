//! Byte-exact checks of the request against the transcripts verified on nginx 1.22.1.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use super::*;
use crate::config::AuthTarget;

fn http(headers: &[(&str, &str)]) -> AuthHttp {
    AuthHttp {
        target: AuthTarget::Tcp("127.0.0.1:9000".parse().unwrap()),
        host_header: "127.0.0.1".into(),
        uri: "/auth".into(),
        timeout: Duration::from_secs(60),
        headers: headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
        pass_client_cert: false,
        keepalive: 0,
    }
}

fn request(method: AuthMethod, login: &[u8], password: &[u8], protocol: Protocol) -> AuthRequest {
    AuthRequest {
        method,
        login: login.to_vec(),
        password: password.into(),
        salt: None,
        protocol,
        attempt: 1,
        client_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        client_host: None,
        proxy_protocol: None,
        smtp: None,
        ssl: None,
    }
}

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap()
}

#[test]
fn imap_plain_with_custom_header_matches_nginx() {
    let req = request(AuthMethod::Plain, b"alice", b"secret", Protocol::Imap);
    assert_eq!(
        text(req.encode(&http(&[("X-Auth-Key", "s3cret")]))),
        "GET /auth HTTP/1.0\r\nHost: 127.0.0.1\r\nAuth-Method: plain\r\nAuth-User: alice\r\n\
         Auth-Pass: secret\r\nAuth-Protocol: imap\r\nAuth-Login-Attempt: 1\r\n\
         Client-IP: 127.0.0.1\r\nX-Auth-Key: s3cret\r\n\r\n"
    );
}

#[test]
fn smtp_none_matches_nginx() {
    let mut req = request(AuthMethod::None, b"", b"", Protocol::Smtp);
    req.client_host = Some("[UNAVAILABLE]".into());
    req.smtp = Some(SmtpEnvelope {
        helo: b"client.example".to_vec(),
        from: b"MAIL FROM:<a@b> SIZE=10".to_vec(),
        to: b"RCPT TO:<c@d> NOTIFY=NEVER".to_vec(),
    });
    assert_eq!(
        text(req.encode(&http(&[("X-Auth-Key", "s3cret")]))),
        "GET /auth HTTP/1.0\r\nHost: 127.0.0.1\r\nAuth-Method: none\r\nAuth-User: \r\n\
         Auth-Pass: \r\nAuth-Protocol: smtp\r\nAuth-Login-Attempt: 1\r\nClient-IP: 127.0.0.1\r\n\
         Client-Host: [UNAVAILABLE]\r\nAuth-SMTP-Helo: client.example\r\n\
         Auth-SMTP-From: MAIL FROM:<a@b> SIZE=10\r\nAuth-SMTP-To: RCPT TO:<c@d> NOTIFY=NEVER\r\n\
         X-Auth-Key: s3cret\r\n\r\n"
    );
}

#[test]
fn pop3_apop_sends_salt_with_its_own_crlf() {
    let mut req = request(
        AuthMethod::Apop,
        b"bob",
        b"0123456789abcdef0123456789abcdef",
        Protocol::Pop3,
    );
    req.salt = Some(b"<1611944213.1795842754@mx.test>\r\n".to_vec());
    req.attempt = 2;
    assert_eq!(
        text(req.encode(&http(&[]))),
        "GET /auth HTTP/1.0\r\nHost: 127.0.0.1\r\nAuth-Method: apop\r\nAuth-User: bob\r\n\
         Auth-Pass: 0123456789abcdef0123456789abcdef\r\n\
         Auth-Salt: <1611944213.1795842754@mx.test>\r\nAuth-Protocol: pop3\r\n\
         Auth-Login-Attempt: 2\r\nClient-IP: 127.0.0.1\r\n\r\n"
    );
    assert_eq!(
        req.password_for_backend(),
        None,
        "the digest is no password"
    );
}

#[test]
fn salt_only_for_apop_and_cram_md5() {
    // Newer nginx's rule: a POP3 session always has a salt, EXTERNAL must not send it.
    let mut req = request(AuthMethod::External, b"cert-user", b"", Protocol::Pop3);
    req.salt = Some(b"<1.2@mx>\r\n".to_vec());
    let encoded = text(req.encode(&http(&[])));
    assert!(!encoded.contains("Auth-Salt"), "{encoded}");
    req.method = AuthMethod::CramMd5;
    assert!(
        text(req.encode(&http(&[]))).contains("\r\nAuth-Salt: <1.2@mx>\r\nAuth-Protocol: pop3\r\n")
    );
    req.method = AuthMethod::Plain;
    assert!(!text(req.encode(&http(&[]))).contains("Auth-Salt"));
}

#[test]
fn escaping_is_nginx_mail_auth() {
    let req = request(AuthMethod::Plain, b"bob smith", b"p\\a\"ss", Protocol::Imap);
    let encoded = text(req.encode(&http(&[])));
    assert!(
        encoded.contains("\r\nAuth-User: bob%20smith\r\nAuth-Pass: p\\a\"ss\r\n"),
        "{encoded}"
    );
    assert_eq!(
        escape(b"a%b\r\n\x00\x1f\x7f\xff+:"),
        b"a%25b%0D%0A%00%1F\x7f\xff+:".to_vec()
    );
}

#[test]
fn ipv6_client_ip_has_no_brackets() {
    let mut req = request(AuthMethod::Plain, b"u", b"p", Protocol::Imap);
    req.client_ip = IpAddr::V6("2001:db8::1".parse::<Ipv6Addr>().unwrap());
    assert!(text(req.encode(&http(&[]))).contains("\r\nClient-IP: 2001:db8::1\r\n"));
}

#[test]
fn proxy_protocol_and_tls_lines_in_nginx_order() {
    let mut req = request(AuthMethod::Plain, b"u", b"p", Protocol::Imap);
    req.proxy_protocol = Some(ProxyAddrs {
        src_addr: "192.0.2.1".into(),
        src_port: 5555,
        dst_addr: "2001:db8::2".into(),
        dst_port: 993,
    });
    req.ssl = Some(SslInfo {
        protocol: "TLSv1.2".into(),
        cipher: "ECDHE-RSA-AES256-GCM-SHA384".into(),
        verify: Some("SUCCESS".into()),
        subject: Some("O=Example Org,CN=client user".into()),
        issuer: Some(String::new()),
        serial: Some("0A1B".into()),
        fingerprint: Some("ab01".into()),
        cert_pem: Some("-----BEGIN CERTIFICATE-----\nMII A\n".into()),
    });
    let mut conf = http(&[("X-K", "v")]);
    conf.pass_client_cert = true;
    assert_eq!(
        text(req.encode(&conf)),
        "GET /auth HTTP/1.0\r\nHost: 127.0.0.1\r\nAuth-Method: plain\r\nAuth-User: u\r\n\
         Auth-Pass: p\r\nAuth-Protocol: imap\r\nAuth-Login-Attempt: 1\r\nClient-IP: 127.0.0.1\r\n\
         Proxy-Protocol-Addr: 192.0.2.1\r\nProxy-Protocol-Port: 5555\r\n\
         Proxy-Protocol-Server-Addr: 2001:db8::2\r\nProxy-Protocol-Server-Port: 993\r\n\
         Auth-SSL: on\r\nAuth-SSL-Protocol: TLSv1.2\r\nAuth-SSL-Cipher: ECDHE-RSA-AES256-GCM-SHA384\r\n\
         Auth-SSL-Verify: SUCCESS\r\nAuth-SSL-Subject: O=Example Org,CN=client user\r\n\
         Auth-SSL-Serial: 0A1B\r\nAuth-SSL-Fingerprint: ab01\r\n\
         Auth-SSL-Cert: -----BEGIN%20CERTIFICATE-----%0AMII%20A%0A\r\nX-K: v\r\n\r\n"
    );
    conf.pass_client_cert = false;
    assert!(!text(req.encode(&conf)).contains("Auth-SSL-Cert"));
}

#[test]
fn debug_hides_the_password() {
    let req = request(AuthMethod::Plain, b"alice", b"hunter2", Protocol::Imap);
    let shown = format!("{req:?}");
    assert!(shown.contains("password: <redacted>"), "{shown}");
    // Neither as text nor as the numbers a derived Debug of Vec<u8> would print.
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(
        !shown.contains(&format!("{:?}", b"hunter2")[1..20]),
        "{shown}"
    );
}

#[test]
fn backend_password_follows_nginx() {
    let req = request(AuthMethod::Plain, b"u", b"", Protocol::Imap);
    assert_eq!(
        req.password_for_backend(),
        Some(&b""[..]),
        "an empty LOGIN password counts"
    );
    let req = request(AuthMethod::External, b"u", b"", Protocol::Imap);
    assert_eq!(req.password_for_backend(), None);
}
