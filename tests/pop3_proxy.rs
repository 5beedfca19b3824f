//! End-to-end POP3 through the real binary, with scripted auth servers and backends.

mod common;

use common::pop3::{retr_reply, Pop3Backend, Pop3Script};
use common::*;

/// A plaintext POP3 server block on `port` with extra directives.
fn server(port: u16, auth: std::net::SocketAddr, extra: &str) -> String {
    format!("server {{ listen 127.0.0.1:{port}; protocol pop3; auth_http {auth}/auth; {extra} }}")
}

/// Starts a proxy with [`server`] and connects a client past the greeting.
async fn connected(auth: std::net::SocketAddr, extra: &str) -> (Proxy, Client) {
    let port = free_port();
    let proxy = Proxy::start(&server(port, auth, extra), &[port]);
    let mut c = Client::connect(port).await;
    assert_eq!(c.line().await, "+OK POP3 ready\r\n");
    (proxy, c)
}

/// Reads exactly `n` bytes (a multi-line reply).
async fn read_bytes(c: &mut Client, n: usize) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let mut buf = vec![0u8; n];
    tokio::time::timeout(std::time::Duration::from_secs(5), c.r.read_exact(&mut buf))
        .await
        .expect("reply within 5 s")
        .unwrap();
    buf
}

#[tokio::test]
async fn user_pass_login_then_stat_and_retr_are_relayed() {
    let message = b"Subject: hi\r\n\r\n.leading dot\r\nbody\r\n".to_vec();
    let backend = Pop3Backend::start(Pop3Script::Good {
        message: message.clone(),
    })
    .await;
    let auth = FakeAuth::start(answers(vec![("bob", vec![AuthAnswer::ok(backend.addr)])])).await;
    let (proxy, mut c) = connected(auth.addr, "").await;
    c.send("USER bob\r\n").await;
    assert_eq!(c.line().await, "+OK\r\n");
    c.send("PASS se cret\r\nSTAT\r\n").await;
    assert_eq!(c.line().await, "+OK Logged in.\r\n");
    assert_eq!(c.line().await, format!("+OK 1 {}\r\n", message.len()));
    c.send("RETR 1\r\n").await;
    let expected = retr_reply(&message);
    assert_eq!(read_bytes(&mut c, expected.len()).await, expected);
    c.send("QUIT\r\n").await;
    assert_eq!(c.line().await, "+OK Logging out.\r\n");
    assert!(c.closed().await);
    assert_eq!(
        backend.received(),
        "USER bob\r\nPASS se cret\r\nSTAT\r\nRETR 1\r\nQUIT\r\n"
    );
    assert_eq!(
        auth.requests()[0],
        "GET /auth HTTP/1.0\r\nHost: 127.0.0.1\r\nAuth-Method: plain\r\nAuth-User: bob\r\n\
         Auth-Pass: se%20cret\r\nAuth-Protocol: pop3\r\nAuth-Login-Attempt: 1\r\n\
         Client-IP: 127.0.0.1\r\n\r\n"
    );
    let log = proxy.wait_log("proxied session done");
    assert!(log.contains("client logged in"), "{log}");
    assert!(!log.contains("se cret"), "password in log: {log}");
}

#[tokio::test]
async fn refusal_without_wait_closes() {
    let auth = refusing_auth("bob", "Invalid login or password").await;
    let (proxy, mut c) = connected(auth.addr, "").await;
    c.send("USER bob\r\nPASS pw\r\n").await;
    assert_eq!(c.line().await, "+OK\r\n");
    assert_eq!(c.line().await, "-ERR Invalid login or password\r\n");
    assert!(c.closed().await);
    let log = proxy.wait_log("client login failed");
    assert!(
        log.contains("client login failed: \"Invalid login or password\""),
        "{log}"
    );
}

/// The backend refuses PASS; `pass_error` chooses proxy_pass_error_message.
async fn backend_refuses_pass(pass_error: bool) -> (String, String) {
    let refusal = b"-ERR [AUTH] Authentication failed.\r\n".to_vec();
    let backend = Pop3Backend::start(Pop3Script::RefusePass(refusal)).await;
    let auth = FakeAuth::start(answers(vec![("bob", vec![AuthAnswer::ok(backend.addr)])])).await;
    let port = free_port();
    let extra = if pass_error {
        "proxy_pass_error_message on;"
    } else {
        ""
    };
    let proxy = Proxy::start(&server(port, auth.addr, extra), &[port]);
    let mut c = Client::connect(port).await;
    c.line().await;
    c.send("USER bob\r\nPASS pw\r\n").await;
    assert_eq!(c.line().await, "+OK\r\n");
    let reply = c.line().await;
    assert!(c.closed().await);
    assert_eq!(backend.received(), "USER bob\r\nPASS pw\r\n");
    (reply, proxy.wait_log("upstream sent invalid response"))
}

#[tokio::test]
async fn backend_refusal_is_relayed_with_pass_error_message() {
    let (reply, log) = backend_refuses_pass(true).await;
    assert_eq!(reply, "-ERR [AUTH] Authentication failed.\r\n");
    assert!(
        log.contains("[info]")
            && log
                .contains("upstream sent invalid response: \"-ERR [AUTH] Authentication failed.\""),
        "{log}"
    );
}

#[tokio::test]
async fn backend_refusal_is_an_internal_error_by_default() {
    let (reply, log) = backend_refuses_pass(false).await;
    assert_eq!(reply, "-ERR internal server error\r\n");
    assert!(
        log.contains("[error]") && log.contains("upstream sent invalid response"),
        "{log}"
    );
}

#[tokio::test]
async fn apop_sends_the_greeting_salt_and_logs_in_with_auth_pass() {
    let backend = Pop3Backend::start(Pop3Script::Good {
        message: b"x\r\n".to_vec(),
    })
    .await;
    let ok = AuthAnswer::headers(&[
        ("Auth-Status", "OK"),
        ("Auth-Server", &backend.addr.ip().to_string()),
        ("Auth-Port", &backend.addr.port().to_string()),
        ("Auth-Pass", "plainpw"),
    ]);
    let auth = FakeAuth::start(answers(vec![("bob", vec![ok])])).await;
    let port = free_port();
    let conf = server(
        port,
        auth.addr,
        "server_name mx.test; pop3_auth plain apop;",
    );
    let _proxy = Proxy::start(&conf, &[port]);
    let mut c = Client::connect(port).await;
    let greeting = c.line().await;
    let salt = greeting
        .strip_prefix("+OK POP3 ready ")
        .expect("salted greeting");
    assert!(
        salt.starts_with('<') && salt.ends_with("@mx.test>\r\n"),
        "{greeting}"
    );
    c.send("APOP bob 0123456789abcdef0123456789abcdef\r\n")
        .await;
    assert_eq!(c.line().await, "+OK Logged in.\r\n");
    assert_eq!(backend.received(), "USER bob\r\nPASS plainpw\r\n");
    assert_eq!(
        auth.requests()[0],
        format!(
            "GET /auth HTTP/1.0\r\nHost: 127.0.0.1\r\nAuth-Method: apop\r\nAuth-User: bob\r\n\
             Auth-Pass: 0123456789abcdef0123456789abcdef\r\nAuth-Salt: {salt}\
             Auth-Protocol: pop3\r\nAuth-Login-Attempt: 1\r\nClient-IP: 127.0.0.1\r\n\r\n"
        )
    );
}

/// `AUTH PLAIN` with the base64 of `decoded`.
fn auth_plain(decoded: &[u8]) -> String {
    let response = mailproxy::proto::sasl::encode_base64(decoded);
    format!("AUTH PLAIN {}\r\n", String::from_utf8_lossy(&response))
}

/// Issue #11: nginx sent `USER alice\r\nDELE 1\r\nPASS pw\r\n` to the backend for this
/// login. The auth server here allows anything it is asked about (the escaped attack
/// login too), so only mailproxy's refusal stands between the client and the backend.
#[tokio::test]
async fn auth_plain_with_crlf_in_the_login_or_password_is_refused_before_auth_http() {
    let backend = Pop3Backend::start(Pop3Script::Good {
        message: b"x\r\n".to_vec(),
    })
    .await;
    let allow = vec![AuthAnswer::ok(backend.addr)];
    let auth = FakeAuth::start(answers(vec![
        ("alice%0D%0ADELE%201", allow.clone()),
        ("alice", allow),
    ]))
    .await;
    let (proxy, mut c) = connected(auth.addr, "").await;
    c.send(&auth_plain(b"\0alice\r\nDELE 1\0pw")).await;
    assert_eq!(c.line().await, "-ERR invalid command\r\n");
    c.send(&auth_plain(b"\0alice\0pw\r\nDELE 1")).await;
    assert_eq!(c.line().await, "-ERR invalid command\r\n");
    c.send("QUIT\r\n").await;
    assert_eq!(c.line().await, "+OK\r\n");
    assert!(c.closed().await);
    assert_eq!(
        auth.requests(),
        Vec::<String>::new(),
        "no auth_http request"
    );
    assert_eq!(
        (backend.connections(), backend.received()),
        (0, String::new())
    );
    let log = proxy.wait_log("invalid password");
    assert!(
        log.contains("[info]") && log.contains("client sent invalid login: CR, LF or NUL"),
        "{log}"
    );
    assert!(
        log.contains("client sent invalid password: CR, LF or NUL"),
        "{log}"
    );
    assert!(!log.contains("pw"), "password in log: {log}");
}

/// An `Auth-User` with a NUL (or a bare CR, already a broken header) from the auth
/// server: the client gets the internal error and the backend is never contacted.
#[tokio::test]
async fn auth_user_with_nul_or_cr_from_the_auth_server_never_reaches_the_backend() {
    let backend = Pop3Backend::start(Pop3Script::Good {
        message: b"x\r\n".to_vec(),
    })
    .await;
    let answer = |user: &[u8]| {
        let head = format!(
            "HTTP/1.0 200 OK\r\nAuth-Status: OK\r\nAuth-Server: {}\r\nAuth-Port: {}\r\n",
            backend.addr.ip(),
            backend.addr.port()
        );
        let raw = [head.as_bytes(), b"Auth-User: ", user, b"\r\n\r\n"].concat();
        vec![AuthAnswer::Raw(raw)]
    };
    let auth = FakeAuth::start(answers(vec![
        ("bob", answer(b"victim\0x")),
        ("carol", answer(b"victim\rUSER x")),
    ]))
    .await;
    let port = free_port();
    let proxy = Proxy::start(&server(port, auth.addr, ""), &[port]);
    for user in ["bob", "carol"] {
        let mut c = Client::connect(port).await;
        assert_eq!(c.line().await, "+OK POP3 ready\r\n");
        c.send(&format!("USER {user}\r\nPASS pw\r\n")).await;
        assert_eq!(c.line().await, "+OK\r\n");
        assert_eq!(c.line().await, "-ERR internal server error\r\n");
        assert!(c.closed().await);
    }
    assert_eq!(auth.requests().len(), 2);
    assert_eq!(
        (backend.connections(), backend.received()),
        (0, String::new())
    );
    let peer = auth.addr;
    let log = proxy.wait_log("sent invalid header");
    assert!(log.contains("[error]"), "{log}");
    assert!(
        log.contains(&format!(
            "auth http server {peer} sent invalid Auth-User: CR, LF or NUL"
        )),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "auth http server {peer} sent invalid header in response"
        )),
        "{log}"
    );
}
