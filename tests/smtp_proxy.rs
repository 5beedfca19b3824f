//! End-to-end SMTP through the real binary, with a scripted auth server, a scripted
//! SMTP backend and a scripted DNS server.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::smtp::{start_dns, SmtpBackend, SmtpScript};
use common::*;

/// An SMTP server block on `port` named mx.test, with extra directives.
fn server(port: u16, auth: SocketAddr, extra: &str) -> String {
    format!(
        "server {{ listen 127.0.0.1:{port}; protocol smtp; server_name mx.test; \
         auth_http {auth}/auth; {extra} }}"
    )
}

/// Starts backend, auth server (answering `login` with OK) and proxy; returns a
/// client that has read the greeting.
async fn setup(
    script: SmtpScript,
    login: &str,
    extra: &str,
) -> (SmtpBackend, FakeAuth, Proxy, Client) {
    let backend = SmtpBackend::start(script).await;
    let auth = FakeAuth::start(answers(vec![(login, vec![AuthAnswer::ok(backend.addr)])])).await;
    let port = free_port();
    let proxy = Proxy::start(&server(port, auth.addr, extra), &[port]);
    let mut c = Client::connect(port).await;
    assert_eq!(c.line().await, "220 mx.test ESMTP ready\r\n");
    (backend, auth, proxy, c)
}

#[tokio::test]
async fn auth_plain_with_xclient_then_relay() {
    let (backend, auth, _proxy, mut c) = setup(SmtpScript::default(), "alice", "").await;
    c.send("EHLO client.example\r\n").await;
    assert_eq!(c.line().await, "250-mx.test\r\n");
    assert_eq!(c.line().await, "250 AUTH PLAIN LOGIN\r\n");
    c.send("AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n").await;
    assert_eq!(c.line().await, "235 2.0.0 OK\r\n");
    c.send("MAIL FROM:<a@b>\r\n").await;
    assert_eq!(c.line().await, "250 2.1.0 Ok\r\n");
    assert_eq!(
        backend.received(),
        "EHLO mx.test\r\nXCLIENT ADDR=127.0.0.1 LOGIN=alice NAME=[UNAVAILABLE]\r\n\
         EHLO client.example\r\nMAIL FROM:<a@b>\r\n"
    );
    assert_eq!(
        auth.requests()[0],
        "GET /auth HTTP/1.0\r\nHost: 127.0.0.1\r\nAuth-Method: plain\r\nAuth-User: alice\r\n\
         Auth-Pass: secret\r\nAuth-Protocol: smtp\r\nAuth-Login-Attempt: 1\r\n\
         Client-IP: 127.0.0.1\r\nClient-Host: [UNAVAILABLE]\r\n\r\n"
    );
}

#[tokio::test]
async fn xclient_off_says_helo_with_the_server_name() {
    let (backend, _auth, _proxy, mut c) = setup(SmtpScript::default(), "bob", "xclient off;").await;
    c.send("HELO client.example\r\n").await;
    assert_eq!(c.line().await, "250 mx.test\r\n");
    c.send("AUTH LOGIN\r\n").await;
    assert_eq!(c.line().await, "334 VXNlcm5hbWU6\r\n");
    c.send("Ym9i\r\n").await;
    assert_eq!(c.line().await, "334 UGFzc3dvcmQ6\r\n");
    c.send("cHc=\r\n").await;
    assert_eq!(c.line().await, "235 2.0.0 OK\r\n");
    c.send("NOOP\r\n").await;
    assert_eq!(c.line().await, "250 backend got NOOP\r\n");
    assert_eq!(backend.received(), "HELO mx.test\r\nNOOP\r\n");
}

#[tokio::test]
async fn auth_none_replays_the_envelope_and_relays_the_rcpt_reply() {
    let script = SmtpScript {
        rcpt: "554 5.7.1 Relay access denied\r\n",
        ..SmtpScript::default()
    };
    let (backend, auth, _proxy, mut c) = setup(
        script,
        "",
        "smtp_auth none; xclient off; auth_http_header X-Key k;",
    )
    .await;
    c.send("EHLO client.example\r\n").await;
    assert_eq!(c.line().await, "250 mx.test\r\n");
    c.send("MAIL FROM:<a@b> SIZE=10\r\n").await;
    assert_eq!(c.line().await, "250 2.0.0 OK\r\n");
    c.send("RCPT TO:<c@d> NOTIFY=NEVER\r\n").await;
    assert_eq!(c.line().await, "554 5.7.1 Relay access denied\r\n");
    c.send("RSET\r\n").await;
    assert_eq!(c.line().await, "250 backend got RSET\r\n");
    assert_eq!(
        backend.received(),
        "EHLO mx.test\r\nMAIL FROM:<a@b> SIZE=10\r\nRCPT TO:<c@d> NOTIFY=NEVER\r\nRSET\r\n"
    );
    assert_eq!(
        auth.requests()[0],
        "GET /auth HTTP/1.0\r\nHost: 127.0.0.1\r\nAuth-Method: none\r\nAuth-User: \r\n\
         Auth-Pass: \r\nAuth-Protocol: smtp\r\nAuth-Login-Attempt: 1\r\n\
         Client-IP: 127.0.0.1\r\nClient-Host: [UNAVAILABLE]\r\n\
         Auth-SMTP-Helo: client.example\r\nAuth-SMTP-From: MAIL FROM:<a@b> SIZE=10\r\n\
         Auth-SMTP-To: RCPT TO:<c@d> NOTIFY=NEVER\r\nX-Key: k\r\n\r\n"
    );
}

#[tokio::test]
async fn proxy_smtp_auth_uses_plain() {
    let (backend, _auth, _proxy, mut c) =
        setup(SmtpScript::default(), "smtp%20user", "proxy_smtp_auth on;").await;
    c.send("EHLO x\r\nAUTH LOGIN c210cCB1c2Vy\r\n").await;
    assert_eq!(c.line().await, "250-mx.test\r\n");
    assert_eq!(c.line().await, "250 AUTH PLAIN LOGIN\r\n");
    assert_eq!(c.line().await, "334 UGFzc3dvcmQ6\r\n");
    c.send("cHc=\r\n").await;
    assert_eq!(c.line().await, "235 2.0.0 OK\r\n");
    assert_eq!(
        backend.received(),
        "EHLO mx.test\r\nXCLIENT ADDR=127.0.0.1 NAME=[UNAVAILABLE]\r\nEHLO x\r\n\
         AUTH PLAIN AHNtdHAgdXNlcgBwdw==\r\n"
    );
}

#[tokio::test]
async fn proxy_smtp_auth_falls_back_to_login() {
    let script = SmtpScript {
        auth: "LOGIN",
        ..SmtpScript::default()
    };
    let (backend, _auth, _proxy, mut c) =
        setup(script, "alice", "proxy_smtp_auth on; xclient off;").await;
    // With xclient off, nginx says EHLO to the backend only after a client EHLO.
    c.send("EHLO x\r\n").await;
    assert_eq!(c.line().await, "250-mx.test\r\n");
    assert_eq!(c.line().await, "250 AUTH PLAIN LOGIN\r\n");
    c.send("AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n").await;
    assert_eq!(c.line().await, "235 2.0.0 OK\r\n");
    assert_eq!(
        backend.received(),
        "EHLO mx.test\r\nAUTH LOGIN\r\nYWxpY2U=\r\nc2VjcmV0\r\n"
    );
}

#[tokio::test]
async fn auth_error_code_and_wait() {
    let auth = FakeAuth::start(answers(vec![(
        "eve",
        vec![
            AuthAnswer::headers(&[
                ("Auth-Status", "Go away"),
                ("Auth-Error-Code", "550 5.7.1"),
                ("Auth-Wait", "1"),
            ]),
            AuthAnswer::headers(&[("Auth-Status", "Invalid login or password")]),
        ],
    )]))
    .await;
    let port = free_port();
    let _proxy = Proxy::start(&server(port, auth.addr, ""), &[port]);
    let mut c = Client::connect(port).await;
    c.line().await;
    let t0 = Instant::now();
    c.send("AUTH PLAIN AGV2ZQBwdw==\r\n").await;
    assert_eq!(c.line().await, "550 5.7.1 Go away\r\n");
    assert!(t0.elapsed() >= Duration::from_millis(950));
    c.send("AUTH PLAIN AGV2ZQBwdw==\r\n").await;
    assert_eq!(c.line().await, "535 5.7.0 Invalid login or password\r\n");
    assert!(c.closed().await);
}

#[tokio::test]
async fn greeting_delay_rejects_an_early_talker() {
    let auth = FakeAuth::start(HashMap::new()).await;
    let port = free_port();
    let proxy = Proxy::start(
        &server(port, auth.addr, "smtp_greeting_delay 500ms;"),
        &[port],
    );
    let mut c = Client::connect(port).await;
    c.send("EHLO early\r\n").await;
    assert_eq!(
        c.line().await,
        "503 5.5.0 Improper use of SMTP command pipelining\r\n"
    );
    assert!(c.closed().await);
    let log = proxy.wait_log("rejected before greeting");
    assert!(
        log.contains("client was rejected before greeting: \"EHLO early...\" (12 bytes) while in delay pipelining state"),
        "{log}"
    );
    let mut patient = Client::connect(port).await;
    let t0 = Instant::now();
    assert_eq!(patient.line().await, "220 mx.test ESMTP ready\r\n");
    assert!(t0.elapsed() >= Duration::from_millis(450));
    patient.send("QUIT\r\n").await;
    assert_eq!(patient.line().await, "221 2.0.0 Bye\r\n");
}

#[tokio::test]
async fn resolver_names_the_client() {
    let dns = start_dns("client.test", [127, 0, 0, 1]).await;
    let resolver = format!("resolver {dns}; resolver_timeout 2s;");
    let (backend, auth, _proxy, mut c) = setup(SmtpScript::default(), "alice", &resolver).await;
    c.send("AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n").await;
    assert_eq!(c.line().await, "235 2.0.0 OK\r\n");
    assert_eq!(
        backend.received(),
        "EHLO mx.test\r\nXCLIENT ADDR=127.0.0.1 LOGIN=alice NAME=client.test\r\n"
    );
    assert!(auth.requests()[0].contains("\r\nClient-Host: client.test\r\n"));
}

#[tokio::test]
async fn silent_resolver_gives_tempunavail() {
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let resolver = format!(
        "resolver {}; resolver_timeout 300ms;",
        silent.local_addr().unwrap()
    );
    let (backend, _auth, proxy, mut c) = setup(SmtpScript::default(), "alice", &resolver).await;
    c.send("AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n").await;
    assert_eq!(c.line().await, "235 2.0.0 OK\r\n");
    assert!(backend.received().contains("NAME=[TEMPUNAVAIL]\r\n"));
    let log = proxy.wait_log("could not be resolved");
    assert!(
        log.contains("127.0.0.1 could not be resolved (110: Operation timed out) while in resolving client address"),
        "{log}"
    );
}
