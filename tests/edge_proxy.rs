//! The connection's edges through the real binary: PROXY protocol in (with realip),
//! PROXY protocol out to the backend, and client certificates with their
//! `Auth-SSL-*` headers.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use common::*;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// The request nginx sends for `a LOGIN alice pw` up to and including `Client-IP`.
fn request_head(client_ip: &str) -> String {
    format!(
        "GET /auth HTTP/1.0\r\nHost: 127.0.0.1\r\nAuth-Method: plain\r\nAuth-User: alice\r\n\
         Auth-Pass: pw\r\nAuth-Protocol: imap\r\nAuth-Login-Attempt: 1\r\nClient-IP: {client_ip}\r\n"
    )
}

/// An IMAP proxy whose listener expects a PROXY header; `directives` end its server
/// block.
fn proxy_protocol_server(directives: &str) -> (u16, Proxy) {
    let port = free_port();
    let proxy = Proxy::start(
        &format!(
            "server {{ listen 127.0.0.1:{port} proxy_protocol; protocol imap; {directives} }}"
        ),
        &[port],
    );
    (port, proxy)
}

/// Sends `header`, then logs in as alice; returns the login reply line.
async fn login_after_header(port: u16, header: &[u8]) -> String {
    let mut c = Client::connect(port).await;
    c.w.write_all(header).await.unwrap();
    assert_eq!(c.line().await, "* OK IMAP4 ready\r\n");
    c.send("a LOGIN alice pw\r\n").await;
    c.line().await
}

#[tokio::test]
async fn proxy_v1_from_a_trusted_sender_rewrites_the_client() {
    let auth = refusing_auth("alice", "Nope").await;
    let (port, proxy) = proxy_protocol_server(&format!(
        "auth_http {}/auth; set_real_ip_from 127.0.0.0/8;",
        auth.addr
    ));
    let reply = login_after_header(port, b"PROXY TCP4 192.0.2.7 10.0.0.1 4000 143\r\n").await;
    assert_eq!(reply, "a NO Nope\r\n");
    assert_eq!(
        auth.requests()[0],
        format!(
            "{}Proxy-Protocol-Addr: 192.0.2.7\r\nProxy-Protocol-Port: 4000\r\n\
             Proxy-Protocol-Server-Addr: 10.0.0.1\r\nProxy-Protocol-Server-Port: 143\r\n\r\n",
            request_head("192.0.2.7")
        )
    );
    let log = proxy.wait_log("client login failed");
    // Connected line: the real peer; every later line: the PROXY source.
    assert!(log.contains("*1 client 127.0.0.1:"), "{log}");
    assert!(
        log.contains("client login failed: \"Nope\" while in http auth state, client: 192.0.2.7,"),
        "{log}"
    );
}

#[tokio::test]
async fn proxy_v2_from_an_untrusted_sender_only_adds_headers() {
    let auth = refusing_auth("alice", "Nope").await;
    let (port, _proxy) = proxy_protocol_server(&format!(
        "auth_http {}/auth; set_real_ip_from 10.0.0.0/8;",
        auth.addr
    ));
    let mut header = b"\r\n\r\n\0\r\nQUIT\n\x21\x21\x00\x2b".to_vec();
    header.extend_from_slice(
        &"2001:db8::7"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets(),
    );
    header.extend_from_slice(&std::net::Ipv6Addr::LOCALHOST.octets());
    header.extend_from_slice(&[0x9c, 0x40, 0x03, 0xe1]);
    header.extend_from_slice(&[0x05, 0x00, 0x04, b'u', b'i', b'd', b'1']); // a TLV, skipped
    assert_eq!(header.len(), 16 + 0x2b);
    assert_eq!(login_after_header(port, &header).await, "a NO Nope\r\n");
    assert_eq!(
        auth.requests()[0],
        format!(
            "{}Proxy-Protocol-Addr: 2001:db8::7\r\nProxy-Protocol-Port: 40000\r\n\
             Proxy-Protocol-Server-Addr: ::1\r\nProxy-Protocol-Server-Port: 993\r\n\r\n",
            request_head("127.0.0.1")
        )
    );
}

#[tokio::test]
async fn unknown_header_is_skipped_without_headers() {
    let auth = refusing_auth("alice", "Nope").await;
    let (port, _proxy) = proxy_protocol_server(&format!(
        "auth_http {}/auth; set_real_ip_from 127.0.0.1;",
        auth.addr
    ));
    let reply = login_after_header(port, b"PROXY UNKNOWN ffff::1 ::1 1 2\r\n").await;
    assert_eq!(reply, "a NO Nope\r\n");
    assert_eq!(
        auth.requests()[0],
        format!("{}\r\n", request_head("127.0.0.1"))
    );
}

#[tokio::test]
async fn broken_headers_close_silently() {
    let (port, proxy) = proxy_protocol_server("auth_http 127.0.0.1:9/auth;");
    let cases: [&[u8]; 3] = [
        b"PROXY TCP4 192.0.2.7 10.0.0.1 99999 143\r\n",
        b"a1 LOGIN alice secret\r\n",
        b"\r\n\r\n\0\r\nQUIT\n\x11\x11\x00\x0c123456789012",
    ];
    for case in cases {
        let mut c = Client::connect(port).await;
        c.w.write_all(case).await.unwrap();
        assert!(closed_without_a_word(&mut c).await, "{case:?}");
    }
    let log = proxy.wait_log("unknown PROXY protocol version");
    let line = log
        .lines()
        .find(|l| l.contains("broken header: \"PROXY"))
        .unwrap_or_default();
    assert!(line.contains(" [error] "), "{log}");
    assert!(
        line.ends_with(&format!(
            " broken header: \"PROXY TCP4 192.0.2.7 10.0.0.1 99999 143\" \
             while reading PROXY protocol, client: 127.0.0.1, server: 127.0.0.1:{port}"
        )),
        "{log}"
    );
    assert!(
        log.contains("broken header: \"a1 LOGIN...\" (21 bytes)"),
        "{log}"
    );
    assert!(!log.contains("secret"), "{log}");
    assert!(
        log.contains("unknown PROXY protocol version: 1 while reading PROXY protocol"),
        "{log}"
    );
}

/// EOF or a reset (the proxy closes with the client's bytes unread) with nothing
/// sent first.
async fn closed_without_a_word(c: &mut Client) -> bool {
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(std::time::Duration::from_secs(5), c.r.read(&mut buf));
    matches!(read.await, Ok(Ok(0)) | Ok(Err(_)))
}

#[tokio::test]
async fn missing_header_times_out_silently() {
    let (port, proxy) = proxy_protocol_server("auth_http 127.0.0.1:9/auth; timeout 300ms;");
    let mut c = Client::connect(port).await;
    assert!(closed_without_a_word(&mut c).await);
    let log = proxy.wait_log("client timed out");
    assert!(
        log.contains("client timed out (110: Connection timed out) while reading PROXY protocol"),
        "{log}"
    );
}

/// An IMAP backend that first reads a PROXY header of `header_len` bytes (or one
/// line if 0), then accepts nginx's literal LOGIN. Records everything it receives.
async fn proxy_aware_backend(header_len: usize) -> (SocketAddr, Arc<Mutex<Vec<u8>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let rec = seen.clone();
    tokio::spawn(async move {
        let (sock, _) = listener.accept().await.unwrap();
        let (r, mut w) = sock.into_split();
        let mut r = BufReader::new(r);
        let mut header = vec![0u8; header_len];
        if header_len == 0 {
            r.read_until(b'\n', &mut header).await.unwrap();
        } else {
            r.read_exact(&mut header).await.unwrap();
        }
        rec.lock().unwrap().extend_from_slice(&header);
        w.write_all(b"* OK fake ready\r\n").await.unwrap();
        loop {
            let mut line = Vec::new();
            if r.read_until(b'\n', &mut line).await.unwrap_or(0) == 0 {
                return;
            }
            rec.lock().unwrap().extend_from_slice(&line);
            if line.ends_with(b"}\r\n") {
                w.write_all(b"+ go ahead\r\n").await.unwrap();
            } else {
                w.write_all(b"a OK Logged in\r\n").await.unwrap();
                return;
            }
        }
    });
    (addr, seen)
}

#[tokio::test]
async fn proxy_header_to_the_backend_carries_the_realip_client() {
    let (backend, seen) = proxy_aware_backend(0).await;
    let auth = FakeAuth::start(answers(vec![("alice", vec![AuthAnswer::ok(backend)])])).await;
    let (port, _proxy) = proxy_protocol_server(&format!(
        "auth_http {}/auth; set_real_ip_from 127.0.0.1; proxy_protocol on;",
        auth.addr
    ));
    let reply = login_after_header(port, b"PROXY TCP4 192.0.2.7 10.0.0.1 4000 143\r\n").await;
    assert_eq!(reply, "a OK Logged in\r\n");
    assert_eq!(
        String::from_utf8_lossy(&seen.lock().unwrap()),
        format!(
            "PROXY TCP4 192.0.2.7 127.0.0.1 4000 {port}\r\n\
             a LOGIN {{5}}\r\nalice {{2}}\r\npw\r\n"
        )
    );
}

#[tokio::test]
async fn proxy_v2_header_to_the_backend() {
    let (backend, seen) = proxy_aware_backend(28).await;
    let auth = FakeAuth::start(answers(vec![("alice", vec![AuthAnswer::ok(backend)])])).await;
    let port = free_port();
    let _proxy = Proxy::start(
        &format!(
            "server {{ listen 127.0.0.1:{port}; protocol imap; auth_http {}/auth; \
             proxy_protocol v2; }}",
            auth.addr
        ),
        &[port],
    );
    let mut c = Client::connect(port).await;
    let client_port = c.w.local_addr().unwrap().port();
    assert_eq!(c.line().await, "* OK IMAP4 ready\r\n");
    c.send("a LOGIN alice pw\r\n").await;
    assert_eq!(c.line().await, "a OK Logged in\r\n");
    let mut want = b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c\x7f\0\0\x01\x7f\0\0\x01".to_vec();
    want.extend_from_slice(&client_port.to_be_bytes());
    want.extend_from_slice(&port.to_be_bytes());
    want.extend_from_slice(b"a LOGIN {5}\r\nalice {2}\r\npw\r\n");
    assert_eq!(*seen.lock().unwrap(), want);
}

// ---- client certificates ----

fn openssl(dir: &Path, args: &[&str]) {
    let status = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "openssl {args:?}");
}

/// A CA, a client certificate it signed (serial 0x0A1B2C), and a self-signed one.
struct Pki {
    dir: TempDir,
}

impl Pki {
    fn new() -> Pki {
        static COUNT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = TempDir::new(&format!("pki{n}"));
        let d = &dir.0;
        let key = ["-newkey", "rsa:2048", "-nodes"];
        openssl(
            d,
            &[
                &["req", "-x509"],
                &key[..],
                &[
                    "-days",
                    "2",
                    "-subj",
                    "/O=Example Org/CN=Test CA",
                    "-keyout",
                    "ca.key",
                    "-out",
                    "ca.pem",
                ],
            ]
            .concat(),
        );
        openssl(
            d,
            &[
                &["req", "-new"],
                &key[..],
                &[
                    "-subj",
                    "/O=Example Org/CN=client user",
                    "-keyout",
                    "client.key",
                    "-out",
                    "client.csr",
                ],
            ]
            .concat(),
        );
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                "client.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-set_serial",
                "0x0A1B2C",
                "-days",
                "2",
                "-out",
                "client.pem",
            ],
        );
        openssl(
            d,
            &[
                &["req", "-x509"],
                &key[..],
                &[
                    "-days",
                    "2",
                    "-subj",
                    "/CN=stranger",
                    "-keyout",
                    "self.key",
                    "-out",
                    "self.pem",
                ],
            ]
            .concat(),
        );
        Pki { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.0.join(name)
    }

    /// `openssl x509 -noout <flag>` output after its `=`.
    fn field(&self, cert: &str, flag: &[&str]) -> String {
        let out = Command::new("openssl")
            .current_dir(&self.dir.0)
            .args(["x509", "-noout", "-in", cert])
            .args(flag)
            .output()
            .unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        text.trim_end().split_once('=').unwrap().1.to_string()
    }
}

/// An implicit-TLS IMAP server asking for client certificates in `mode`.
fn tls_server(port: u16, auth: SocketAddr, pki: &Pki, mode: &str, extra: &str) -> String {
    let (cert, key) = make_cert(&pki.dir.0);
    format!(
        "server {{ listen 127.0.0.1:{port} ssl; protocol imap; auth_http {auth}/auth;\n\
         ssl_certificate {}; ssl_certificate_key {};\n\
         ssl_verify_client {mode}; ssl_client_certificate {}; {extra} }}",
        cert.display(),
        key.display(),
        pki.path("ca.pem").display()
    )
}

/// A TLS client presenting `cert` (a name in `pki`), or no certificate.
async fn tls_client(tcp: TcpStream, pki: &Pki, cert: Option<&str>) -> TlsClient {
    use openssl::ssl::SslFiletype;
    TlsClient::handshake_with(tcp, |b| {
        if let Some(name) = cert {
            b.set_certificate_file(pki.path(&format!("{name}.pem")), SslFiletype::PEM)
                .unwrap();
            b.set_private_key_file(pki.path(&format!("{name}.key")), SslFiletype::PEM)
                .unwrap();
        }
    })
    .await
}

/// The `Auth-SSL` lines every TLS request starts with, as the client negotiated them.
fn ssl_head(c: &TlsClient) -> String {
    let ssl = c.s.get_ref().ssl();
    format!(
        "Auth-SSL: on\r\nAuth-SSL-Protocol: {}\r\nAuth-SSL-Cipher: {}\r\n",
        ssl.version_str(),
        ssl.current_cipher().unwrap().name()
    )
}

async fn connect_tls(port: u16, pki: &Pki, cert: Option<&str>) -> TlsClient {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    tls_client(tcp, pki, cert).await
}

#[tokio::test]
async fn verify_on_without_a_certificate_is_refused() {
    let pki = Pki::new();
    let auth = refusing_auth("alice", "Nope").await;
    let port = free_port();
    let proxy = Proxy::start(&tls_server(port, auth.addr, &pki, "on", ""), &[port]);
    let mut c = connect_tls(port, &pki, None).await;
    assert_eq!(c.line().await, "* BYE No required SSL certificate\r\n");
    assert_eq!(c.line().await, "");
    let log = proxy.wait_log("no required");
    assert!(
        log.contains(
            "client sent no required SSL certificate while SSL handshaking, client: 127.0.0.1"
        ),
        "{log}"
    );
}

#[tokio::test]
async fn verify_optional_refuses_an_untrusted_certificate() {
    let pki = Pki::new();
    let auth = refusing_auth("alice", "Nope").await;
    let port = free_port();
    let proxy = Proxy::start(&tls_server(port, auth.addr, &pki, "optional", ""), &[port]);
    let mut c = connect_tls(port, &pki, Some("self")).await;
    assert_eq!(c.line().await, "* BYE SSL certificate error\r\n");
    assert_eq!(c.line().await, "");
    let log = proxy.wait_log("verify error");
    assert!(
        log.contains("client SSL certificate verify error: (18:self-signed certificate) while SSL handshaking"),
        "{log}"
    );
}

#[tokio::test]
async fn verify_optional_without_a_certificate_says_none() {
    let pki = Pki::new();
    let auth = refusing_auth("alice", "Nope").await;
    let port = free_port();
    let _proxy = Proxy::start(&tls_server(port, auth.addr, &pki, "optional", ""), &[port]);
    let mut c = connect_tls(port, &pki, None).await;
    assert_eq!(c.line().await, "* OK IMAP4 ready\r\n");
    c.send("a LOGIN alice pw\r\n").await;
    assert_eq!(c.line().await, "a NO Nope\r\n");
    assert_eq!(
        auth.requests()[0],
        format!(
            "{}{}Auth-SSL-Verify: NONE\r\n\r\n",
            request_head("127.0.0.1"),
            ssl_head(&c)
        )
    );
}

#[tokio::test]
async fn verified_certificate_details_reach_the_auth_server() {
    let pki = Pki::new();
    let auth = refusing_auth("alice", "Nope").await;
    let port = free_port();
    let conf = tls_server(
        port,
        auth.addr,
        &pki,
        "on",
        "auth_http_pass_client_cert on;",
    );
    let _proxy = Proxy::start(&conf, &[port]);
    let mut c = connect_tls(port, &pki, Some("client")).await;
    assert_eq!(c.line().await, "* OK IMAP4 ready\r\n");
    c.send("a LOGIN alice pw\r\n").await;
    assert_eq!(c.line().await, "a NO Nope\r\n");
    let fingerprint = pki
        .field("client.pem", &["-fingerprint", "-sha1"])
        .replace(':', "")
        .to_lowercase();
    let pem = std::fs::read_to_string(pki.path("client.pem")).unwrap();
    let escaped = pem.replace('\n', "%0A").replace(' ', "%20");
    assert_eq!(pki.field("client.pem", &["-serial"]), "0A1B2C");
    assert_eq!(
        auth.requests()[0],
        format!(
            "{}{}Auth-SSL-Verify: SUCCESS\r\nAuth-SSL-Subject: CN=client user,O=Example Org\r\n\
             Auth-SSL-Issuer: CN=Test CA,O=Example Org\r\nAuth-SSL-Serial: 0A1B2C\r\n\
             Auth-SSL-Fingerprint: {fingerprint}\r\nAuth-SSL-Cert: {escaped}\r\n\r\n",
            request_head("127.0.0.1"),
            ssl_head(&c)
        )
    );
}

/// nginx 1.27.2: `ssl_trusted_certificate` alone verifies client certificates (no CA
/// list is sent to the client then: only `ssl_client_certificate` sets one).
#[tokio::test]
async fn trusted_certificate_alone_verifies_client_certificates() {
    let pki = Pki::new();
    let auth = refusing_auth("alice", "Nope").await;
    let port = free_port();
    let (cert, key) = make_cert(&pki.dir.0);
    let conf = format!(
        "server {{ listen 127.0.0.1:{port} ssl; protocol imap; auth_http {}/auth;\n\
         ssl_certificate {}; ssl_certificate_key {};\n\
         ssl_verify_client on; ssl_trusted_certificate {}; }}",
        auth.addr,
        cert.display(),
        key.display(),
        pki.path("ca.pem").display()
    );
    let proxy = Proxy::start(&conf, &[port]);
    let mut c = connect_tls(port, &pki, Some("client")).await;
    assert_eq!(c.line().await, "* OK IMAP4 ready\r\n");
    c.send("a LOGIN alice pw\r\n").await;
    assert_eq!(c.line().await, "a NO Nope\r\n");
    assert!(
        auth.requests()[0].contains("Auth-SSL-Verify: SUCCESS\r\n"),
        "{}",
        auth.requests()[0]
    );
    // An untrusted certificate is refused as with ssl_client_certificate.
    let mut c = connect_tls(port, &pki, Some("self")).await;
    assert_eq!(c.line().await, "* BYE SSL certificate error\r\n");
    proxy.wait_log("verify error");
}

#[tokio::test]
async fn optional_no_ca_passes_an_unverified_certificate_on() {
    let pki = Pki::new();
    let auth = refusing_auth("alice", "Nope").await;
    let port = free_port();
    let _proxy = Proxy::start(
        &tls_server(port, auth.addr, &pki, "optional_no_ca", ""),
        &[port],
    );
    let mut c = connect_tls(port, &pki, Some("self")).await;
    assert_eq!(c.line().await, "* OK IMAP4 ready\r\n");
    c.send("a LOGIN alice pw\r\n").await;
    assert_eq!(c.line().await, "a NO Nope\r\n");
    let fingerprint = pki
        .field("self.pem", &["-fingerprint", "-sha1"])
        .replace(':', "")
        .to_lowercase();
    let serial = pki.field("self.pem", &["-serial"]);
    assert_eq!(
        auth.requests()[0],
        format!(
            "{}{}Auth-SSL-Verify: FAILED:self-signed certificate\r\nAuth-SSL-Subject: CN=stranger\r\n\
             Auth-SSL-Issuer: CN=stranger\r\nAuth-SSL-Serial: {serial}\r\n\
             Auth-SSL-Fingerprint: {fingerprint}\r\n\r\n",
            request_head("127.0.0.1"),
            ssl_head(&c)
        )
    );
}

#[tokio::test]
async fn starttls_checks_the_certificate_before_going_on() {
    let pki = Pki::new();
    let auth = refusing_auth("alice", "Nope").await;
    let port = free_port();
    let (cert, key) = make_cert(&pki.dir.0);
    let proxy = Proxy::start(
        &format!(
            "server {{ listen 127.0.0.1:{port}; protocol imap; auth_http {}/auth; starttls on;\n\
             ssl_certificate {}; ssl_certificate_key {};\n\
             ssl_verify_client on; ssl_client_certificate {}; }}",
            auth.addr,
            cert.display(),
            key.display(),
            pki.path("ca.pem").display()
        ),
        &[port],
    );
    let mut plain = Client::connect(port).await;
    plain.line().await;
    plain.send("s STARTTLS\r\n").await;
    assert_eq!(plain.line().await, "s OK completed\r\n");
    let tcp = plain.r.into_inner().reunite(plain.w).unwrap();
    let mut c = tls_client(tcp, &pki, None).await;
    assert_eq!(c.line().await, "* BYE No required SSL certificate\r\n");
    let log = proxy.wait_log("no required");
    assert!(
        log.contains("client sent no required SSL certificate while in starttls state, client: 127.0.0.1 using starttls"),
        "{log}"
    );
}
