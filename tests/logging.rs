//! error_log as nginx keeps it: a chain of logs per context, each taking the lines of
//! its own level; the process lines in the top-level logs, a session's lines in its
//! server's (or mail{}'s) logs; `debug` with real debug lines, and no secret in any.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;

/// Waits up to 5 s for `needle` in the file at `path`; returns the file's text.
fn wait_file(path: &Path, needle: &str) -> String {
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.contains(needle) || Instant::now() > until {
            return text;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A log file that must exist: every `error_log` is opened (and created) at start, so a
/// missing one is a chain entry that was dropped, and a check of what it lacks must not
/// pass on an empty string.
fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Secrets the sessions below send or receive; none may reach any log.
const SECRETS: &[&str] = &[
    "s3cret-pw",
    "backend-pass-9",
    // base64 of "\0carol\0sasl-secret", the AUTHENTICATE PLAIN payload
    "AGNhcm9sAHNhc2wtc2VjcmV0",
    "sasl-secret",
];

#[tokio::test(flavor = "multi_thread")]
async fn each_log_of_a_chain_gets_its_level_and_sessions_go_to_their_server_s() {
    let backend = FakeBackend::start(BackendScript::Good { big: 0 }).await;
    let ok = AuthAnswer::headers(&[
        ("Auth-Status", "OK"),
        ("Auth-Server", "127.0.0.1"),
        ("Auth-Port", &backend.addr.port().to_string()),
        ("Auth-Pass", "backend-pass-9"),
    ]);
    let refuse = AuthAnswer::headers(&[("Auth-Status", "Go away")]);
    let auth = FakeAuth::start(answers(vec![("alice", vec![ok]), ("carol", vec![refuse])])).await;

    let dir = TempDir::new("logging");
    let d = dir.0.clone();
    let (inherits, own) = (free_port(), free_port());
    let conf = d.join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "daemon off;\nworker_processes 1;\npid {d}/mailproxy.pid;\n\
             error_log {d}/error.log info;\nerror_log {d}/main-warn.log warn;\n\
             events {{ worker_connections 64; }}\n\
             mail {{\n  auth_http {auth}/auth;\n\
               error_log {d}/mail-info.log info;\n  error_log {d}/mail-debug.log debug;\n\
               server {{ listen 127.0.0.1:{inherits}; protocol imap; }}\n\
               server {{ listen 127.0.0.1:{own}; protocol imap; error_log {d}/server.log debug_mail; }}\n\
             }}\n",
            d = d.display(),
            auth = auth.addr,
        ),
    )
    .unwrap();
    let proxy = Proxy::spawn(dir, &conf, &[inherits, own]);

    // A session on the server that inherits mail{}'s two logs: login and relay.
    let mut c = Client::connect(inherits).await;
    assert_eq!(c.line().await, "* OK IMAP4 ready\r\n");
    c.send("a0 CAPABILITY\r\n").await;
    c.line().await;
    c.line().await;
    c.send("a1 LOGIN alice s3cret-pw\r\n").await;
    assert!(c.line().await.starts_with("a1 OK"));
    c.send("b1 NOOP\r\n").await;
    assert_eq!(c.line().await, "b1 OK done b1 NOOP\r\n");
    drop(c);
    let mail_info = wait_file(&d.join("mail-info.log"), "proxied session done");

    // A session on the server with its own log: a SASL login, refused.
    let mut c = Client::connect(own).await;
    assert_eq!(c.line().await, "* OK IMAP4 ready\r\n");
    c.send("t1 AUTHENTICATE PLAIN\r\n").await;
    assert_eq!(c.line().await, "+ \r\n");
    c.send("AGNhcm9sAHNhc2wtc2VjcmV0\r\n").await;
    assert_eq!(c.line().await, "t1 NO Go away\r\n");
    let server = wait_file(&d.join("server.log"), "client login failed");

    let main = read(&d.join("error.log"));
    let main_warn = read(&d.join("main-warn.log"));
    let mail_debug = read(&d.join("mail-debug.log"));

    // Top level: the process lines, no session's.
    assert!(
        main.contains("[notice]") && main.contains("start worker process"),
        "{main}"
    );
    assert!(
        !main.contains("connected to") && !main.contains(" *1 "),
        "{main}"
    );
    assert!(
        !main_warn.contains("[notice]") && !main_warn.contains("[info]"),
        "{main_warn}"
    );

    // mail{} at info: the session's info lines, no debug.
    assert!(
        mail_info.contains(&format!("connected to 127.0.0.1:{inherits}")),
        "{mail_info}"
    );
    assert!(
        mail_info.contains("client logged in, client: 127.0.0.1"),
        "{mail_info}"
    );
    assert!(!mail_info.contains("[debug]"), "{mail_info}");

    // mail{} at debug: the same info lines, and the debug points of a session.
    for line in [
        "client logged in",
        "[debug]",
        "accept: 127.0.0.1:",
        "imap auth command: CAPABILITY",
        "imap auth command: LOGIN",
        "mail auth http request: GET /auth HTTP/1.0",
        "Auth-Status: OK, Auth-Server: 127.0.0.1, Auth-Port:",
        "connect to upstream",
        "mail proxy sending password to upstream",
        "mail proxy relay start",
        "mail proxy relay end",
        "bytes client to upstream",
    ] {
        assert!(
            mail_debug.contains(line),
            "no {line:?} in mail-debug.log:\n{mail_debug}"
        );
    }

    // The own server's log took its session, at every level and its debug_mail lines
    // (not debug_event's accept); mail{}'s logs took none of it.
    for line in [
        &format!("connected to 127.0.0.1:{own}")[..],
        "imap auth command: AUTHENTICATE",
        "imap auth command: SASL response",
        "Auth-Status: \"Go away\"",
        "client login failed: \"Go away\"",
    ] {
        assert!(
            server.contains(line),
            "no {line:?} in server.log:\n{server}"
        );
    }
    assert!(!server.contains("accept:"), "{server}");
    let mail_all = format!(
        "{}{}",
        read(&d.join("mail-info.log")),
        read(&d.join("mail-debug.log"))
    );
    assert!(!mail_all.contains(&format!(":{own}")), "{mail_all}");

    for (name, text) in [
        ("error.log", &main),
        ("main-warn.log", &main_warn),
        ("mail-info.log", &read(&d.join("mail-info.log"))),
        ("mail-debug.log", &read(&d.join("mail-debug.log"))),
        ("server.log", &server),
    ] {
        for secret in SECRETS {
            assert!(!text.contains(secret), "{secret} in {name}:\n{text}");
        }
    }
    drop(proxy);
}

/// Without any error_log in mail{}, a session writes to every top-level log that
/// takes its level.
#[tokio::test(flavor = "multi_thread")]
async fn a_server_without_a_log_writes_to_the_top_level_chain() {
    let auth = refusing_auth("bob", "Nope").await;
    let dir = TempDir::new("logging-main");
    let d = dir.0.clone();
    let port = free_port();
    let conf = d.join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "daemon off;\nmaster_process off;\npid {d}/mailproxy.pid;\n\
             error_log {d}/error.log info;\nerror_log {d}/debug.log debug;\n\
             error_log {d}/error-only.log error;\nevents {{}}\n\
             mail {{ auth_http {auth}/auth;\n\
               server {{ listen 127.0.0.1:{port}; protocol imap; }} }}\n",
            d = d.display(),
            auth = auth.addr,
        ),
    )
    .unwrap();
    let proxy = Proxy::spawn(dir, &conf, &[port]);
    let mut c = Client::connect(port).await;
    assert_eq!(c.line().await, "* OK IMAP4 ready\r\n");
    c.send("a LOGIN bob s3cret-pw\r\n").await;
    assert_eq!(c.line().await, "a NO Nope\r\n");
    let info = proxy.wait_log("client login failed");
    let debug = wait_file(&d.join("debug.log"), "client login failed");
    assert!(
        info.contains("connected to") && !info.contains("[debug]"),
        "{info}"
    );
    assert!(
        debug.contains("connected to") && debug.contains("imap auth command: LOGIN"),
        "{debug}"
    );
    let error_only = read(&d.join("error-only.log"));
    assert!(!error_only.contains("connected to"), "{error_only}");
    for text in [&info, &debug, &error_only] {
        assert!(!text.contains("s3cret-pw"), "{text}");
    }
}

/// At `debug` the TLS handshake's protocol and cipher are logged, for implicit TLS and
/// STARTTLS; under `info` no debug line is written.
#[tokio::test(flavor = "multi_thread")]
async fn tls_handshakes_are_logged_at_debug_only() {
    let auth = refusing_auth("ivy", "Nope").await;
    let certs = TempDir::new("logging-certs");
    let (cert, key) = make_cert(&certs.0);
    let (tls_port, plain_port) = (free_port(), free_port());
    let body = format!(
        "ssl_certificate {}; ssl_certificate_key {}; auth_http {}/auth;\n\
         server {{ listen 127.0.0.1:{tls_port} ssl; protocol imap; error_log $DIR/tls.log debug; }}\n\
         server {{ listen 127.0.0.1:{plain_port}; protocol imap; starttls on; error_log $DIR/plain.log debug; }}",
        cert.display(),
        key.display(),
        auth.addr,
    );
    let proxy = Proxy::start(&body, &[tls_port, plain_port]);
    let d = proxy.dir.0.clone();

    let mut c = TlsClient::connect(tls_port).await;
    assert_eq!(c.line().await, "* OK IMAP4 ready\r\n");
    c.send("a LOGIN ivy s3cret-pw\r\n").await;
    assert_eq!(c.line().await, "a NO Nope\r\n");
    let tls = wait_file(&d.join("tls.log"), "client login failed");
    assert!(
        tls.contains("[debug]") && tls.contains("SSL: TLSv1."),
        "{tls}"
    );
    assert!(tls.contains("cipher: \""), "{tls}");

    let mut p = Client::connect(plain_port).await;
    assert_eq!(p.line().await, "* OK IMAP4 ready\r\n");
    p.send("s STARTTLS\r\n").await;
    assert_eq!(p.line().await, "s OK completed\r\n");
    let tcp = p.r.into_inner().reunite(p.w).unwrap();
    let mut t = TlsClient::handshake(tcp).await;
    t.send("a LOGIN ivy s3cret-pw\r\n").await;
    assert_eq!(t.line().await, "a NO Nope\r\n");
    let plain = wait_file(&d.join("plain.log"), "client login failed");
    for line in [
        "imap auth command: STARTTLS",
        "SSL: TLSv1.",
        "imap auth command: LOGIN",
    ] {
        assert!(plain.contains(line), "no {line:?} in plain.log:\n{plain}");
    }
    let main = proxy.log_text();
    assert!(
        !main.contains("[debug]") && !main.contains("client login failed"),
        "{main}"
    );
    for text in [&tls, &plain, &main] {
        assert!(!text.contains("s3cret-pw"), "{text}");
    }
}
