//! End-to-end IMAP through the real binary, with scripted auth servers and backends:
//! the success path and every error path of the login.

mod common;

use common::*;

/// A plaintext IMAP server block on `port` with extra directives.
fn server(port: u16, auth: std::net::SocketAddr, extra: &str) -> String {
    format!("server {{ listen 127.0.0.1:{port}; protocol imap; auth_http {auth}/auth; {extra} }}")
}

/// Starts a proxy with [`server`] and connects a client past the greeting.
async fn connected(auth: std::net::SocketAddr, extra: &str) -> (Proxy, Client) {
    let port = free_port();
    let proxy = Proxy::start(&server(port, auth, extra), &[port]);
    let mut c = Client::connect(port).await;
    assert_eq!(c.line().await, "* OK IMAP4 ready\r\n");
    (proxy, c)
}

#[tokio::test]
async fn login_is_replayed_with_literals_and_session_is_relayed() {
    let backend = FakeBackend::start(BackendScript::Good { big: 0 }).await;
    let auth = FakeAuth::start(answers(vec![("alice", vec![AuthAnswer::ok(backend.addr)])])).await;
    let (_proxy, mut c) = connected(auth.addr, "").await;
    c.send("a1 LOGIN alice \"se cret\"\r\nb1 NOOP\r\n").await;
    assert_eq!(
        c.line().await,
        "a1 OK [CAPABILITY IMAP4rev1 IDLE] Logged in\r\n"
    );
    assert_eq!(c.line().await, "b1 OK done b1 NOOP\r\n");
    c.send("c1 SELECT INBOX\r\n").await;
    assert_eq!(c.line().await, "c1 OK done c1 SELECT INBOX\r\n");
    assert_eq!(
        backend.received(),
        "a1 LOGIN {5}\r\nalice {7}\r\nse cret\r\nb1 NOOP\r\nc1 SELECT INBOX\r\n"
    );
    let reqs = auth.requests();
    assert_eq!(
        reqs[0],
        format!(
            "GET /auth HTTP/1.0\r\nHost: 127.0.0.1\r\nAuth-Method: plain\r\nAuth-User: alice\r\n\
             Auth-Pass: se%20cret\r\nAuth-Protocol: imap\r\nAuth-Login-Attempt: 1\r\n\
             Client-IP: 127.0.0.1\r\n\r\n"
        )
    );
}

#[tokio::test]
async fn refusal_without_wait_closes() {
    let auth = refusing_auth("bob", "Invalid login or password").await;
    let (proxy, mut c) = connected(auth.addr, "").await;
    c.send("t2 LOGIN bob pw\r\n").await;
    assert_eq!(c.line().await, "t2 NO Invalid login or password\r\n");
    assert!(c.closed().await);
    let log = proxy.wait_log("client login failed");
    assert!(
        log.contains("client login failed: \"Invalid login or password\""),
        "{log}"
    );
    assert!(!log.contains("pw"), "password in log: {log}");
}

#[tokio::test]
async fn refusal_with_wait_delays_and_allows_a_retry() {
    let backend = FakeBackend::start(BackendScript::Good { big: 0 }).await;
    let auth = FakeAuth::start(answers(vec![(
        "carol",
        vec![
            AuthAnswer::headers(&[("Auth-Status", "Try again"), ("Auth-Wait", "1")]),
            AuthAnswer::ok(backend.addr),
        ],
    )]))
    .await;
    let (_proxy, mut c) = connected(auth.addr, "").await;
    let t0 = std::time::Instant::now();
    c.send("t1 LOGIN carol pw\r\n").await;
    assert_eq!(c.line().await, "t1 NO Try again\r\n");
    assert!(t0.elapsed() >= std::time::Duration::from_millis(950));
    c.send("t2 LOGIN carol pw\r\n").await;
    assert_eq!(
        c.line().await,
        "t2 OK [CAPABILITY IMAP4rev1 IDLE] Logged in\r\n"
    );
    let reqs = auth.requests();
    assert!(reqs[1].contains("Auth-Login-Attempt: 2\r\n"), "{}", reqs[1]);
}

#[tokio::test]
async fn wait_status_requeries_with_the_same_attempt() {
    let backend = FakeBackend::start(BackendScript::Good { big: 0 }).await;
    let auth = FakeAuth::start(answers(vec![(
        "dave",
        vec![
            AuthAnswer::headers(&[("Auth-Status", "WAIT"), ("Auth-Wait", "0")]),
            AuthAnswer::ok(backend.addr),
        ],
    )]))
    .await;
    let (_proxy, mut c) = connected(auth.addr, "").await;
    c.send("w LOGIN dave pw\r\n").await;
    assert_eq!(
        c.line().await,
        "w OK [CAPABILITY IMAP4rev1 IDLE] Logged in\r\n"
    );
    let reqs = auth.requests();
    assert_eq!(reqs.len(), 2);
    assert!(reqs.iter().all(|r| r.contains("Auth-Login-Attempt: 1\r\n")));
}

/// Every auth_http failure is the client's internal error, and the log says which
/// auth server failed and how.
#[tokio::test]
async fn auth_server_failures_are_internal_errors_that_name_the_server() {
    let cases: Vec<(AuthAnswer, &str)> = vec![
        (
            AuthAnswer::Raw(b"HTTP/1.0 200 OK\r\nBad Header: x\r\n\r\n".to_vec()),
            "sent invalid header in response",
        ),
        (
            AuthAnswer::headers(&[("Auth-Status", "OK")]),
            "did not send server or port",
        ),
        (
            AuthAnswer::headers(&[
                ("Auth-Status", "OK"),
                ("Auth-Server", "127.0.0.1"),
                ("Auth-Port", "99999"),
            ]),
            "sent invalid server port:\"99999\"",
        ),
        (AuthAnswer::Stall, "timed out"),
        (AuthAnswer::Raw(vec![b'X'; 2000]), "auth http server"),
    ];
    for (answer, expected_log) in cases {
        let auth = FakeAuth::start(answers(vec![("erin", vec![answer])])).await;
        let port = free_port();
        let proxy = Proxy::start(
            &server(port, auth.addr, "auth_http_timeout 500ms;"),
            &[port],
        );
        let mut c = Client::connect(port).await;
        c.line().await;
        c.send("x LOGIN erin pw\r\n").await;
        assert_eq!(
            c.line().await,
            "* BAD internal server error\r\n",
            "{expected_log}"
        );
        assert!(c.closed().await);
        let log = proxy.wait_log(expected_log);
        assert!(log.contains(expected_log), "want {expected_log:?} in {log}");
        assert!(
            log.contains(&format!("{}", auth.addr)),
            "server not named: {log}"
        );
    }
}

#[tokio::test]
async fn dead_auth_server_is_an_internal_error() {
    let dead = std::net::SocketAddr::from(([127, 0, 0, 1], free_port()));
    let (proxy, mut c) = connected(dead, "").await;
    c.send("x LOGIN erin pw\r\n").await;
    assert_eq!(c.line().await, "* BAD internal server error\r\n");
    let log = proxy.wait_log("failed");
    assert!(
        log.contains(&dead.to_string()) && log.contains("refused"),
        "{log}"
    );
}

#[tokio::test]
async fn backend_failures() {
    let cases: Vec<(BackendScript, &str, &str, &str)> = vec![
        // script, pass_error_message, what the client sees, what the log says
        (
            BackendScript::Greeting(b"* BYE too busy\r\n".to_vec()),
            "off",
            "* BAD internal server error\r\n",
            "upstream sent invalid response: \"* BYE too busy\"",
        ),
        (
            BackendScript::Greeting(b"* BYE too busy\r\n".to_vec()),
            "on",
            "* BYE too busy\r\n",
            "upstream sent invalid response",
        ),
        (
            BackendScript::RefuseLogin(b"x NO [AUTHENTICATIONFAILED] nope\r\n".to_vec()),
            "on",
            "x NO [AUTHENTICATIONFAILED] nope\r\n",
            "upstream sent invalid response",
        ),
        (
            BackendScript::Stall,
            "on",
            "* BAD internal server error\r\n",
            "upstream timed out",
        ),
    ];
    for (script, pass, seen, logged) in cases {
        let backend = FakeBackend::start(script).await;
        let auth =
            FakeAuth::start(answers(vec![("fay", vec![AuthAnswer::ok(backend.addr)])])).await;
        let port = free_port();
        let extra = format!("timeout 1s; proxy_pass_error_message {pass};");
        let proxy = Proxy::start(&server(port, auth.addr, &extra), &[port]);
        let mut c = Client::connect(port).await;
        c.line().await;
        c.send("x LOGIN fay pw\r\n").await;
        assert_eq!(c.line().await, seen, "{logged}");
        assert!(c.closed().await);
        let log = proxy.wait_log(logged);
        assert!(log.contains(logged), "want {logged:?} in {log}");
    }
}

#[tokio::test]
async fn refused_backend_connection_is_an_internal_error() {
    let dead = std::net::SocketAddr::from(([127, 0, 0, 1], free_port()));
    let auth = FakeAuth::start(answers(vec![("gus", vec![AuthAnswer::ok(dead)])])).await;
    let (proxy, mut c) = connected(auth.addr, "").await;
    c.send("x LOGIN gus pw\r\n").await;
    assert_eq!(c.line().await, "* BAD internal server error\r\n");
    let log = proxy.wait_log("refused");
    assert!(
        log.contains(&format!("connect() to {dead} failed")),
        "{log}"
    );
}

#[tokio::test]
async fn auth_user_and_pass_rewrite_and_host_name_reach_the_backend() {
    let backend = FakeBackend::start(BackendScript::Good { big: 0 }).await;
    let port_s = backend.addr.port().to_string();
    let auth = FakeAuth::start(answers(vec![(
        "hal",
        vec![AuthAnswer::headers(&[
            ("Auth-Status", "OK"),
            ("Auth-Server", "localhost"),
            ("Auth-Port", &port_s),
            ("Auth-User", "hal@legacy"),
            ("Auth-Pass", "real pw"),
        ])],
    )]))
    .await;
    let (_proxy, mut c) = connected(auth.addr, "").await;
    c.send("x LOGIN hal pw\r\n").await;
    assert_eq!(
        c.line().await,
        "x OK [CAPABILITY IMAP4rev1 IDLE] Logged in\r\n"
    );
    assert_eq!(
        backend.received(),
        "x LOGIN {10}\r\nhal@legacy {7}\r\nreal pw\r\n"
    );
}

#[tokio::test]
async fn pre_auth_timeout_is_a_total_deadline() {
    let auth = FakeAuth::start(answers(vec![])).await;
    let (proxy, mut c) = connected(auth.addr, "timeout 1s;").await;
    let t0 = std::time::Instant::now();
    for _ in 0..3 {
        c.send("n NOOP\r\n").await;
        assert_eq!(c.line().await, "n OK completed\r\n");
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    assert!(c.closed().await);
    let waited = t0.elapsed();
    assert!(
        waited < std::time::Duration::from_millis(1500),
        "{waited:?}"
    );
    assert!(proxy
        .wait_log("client timed out")
        .contains("client timed out (110: Connection timed out) while in auth state"));
}

#[tokio::test]
async fn implicit_tls_and_starttls_carry_a_ten_mebibyte_fetch_intact() {
    const BIG: usize = 10 * 1024 * 1024;
    let backend = FakeBackend::start(BackendScript::Good { big: BIG }).await;
    let auth = FakeAuth::start(answers(vec![("ivy", vec![AuthAnswer::ok(backend.addr)])])).await;
    let dir = TempDir::new("certs");
    let (cert, key) = make_cert(&dir.0);
    let (tls_port, plain_port) = (free_port(), free_port());
    let body = format!(
        "ssl_certificate {}; ssl_certificate_key {};\n\
         server {{ listen 127.0.0.1:{tls_port} ssl; protocol imap; auth_http {}/auth; }}\n\
         server {{ listen 127.0.0.1:{plain_port}; protocol imap; starttls only; auth_http {}/auth; }}",
        cert.display(),
        key.display(),
        auth.addr,
        auth.addr
    );
    let _proxy = Proxy::start(&body, &[tls_port, plain_port]);

    let mut c = TlsClient::connect(tls_port).await;
    assert_eq!(c.line().await, "* OK IMAP4 ready\r\n");
    c.send("a LOGIN ivy pw\r\n").await;
    assert_eq!(
        c.line().await,
        "a OK [CAPABILITY IMAP4rev1 IDLE] Logged in\r\n"
    );
    c.send("b FETCH BIG\r\n").await;
    assert_eq!(c.line().await, format!("* 1 FETCH (BODY[] {{{BIG}}}\r\n"));
    assert!(
        c.read_exact(BIG).await == big_body(BIG),
        "10 MiB body differs"
    );
    assert_eq!(c.line().await, ")\r\n");
    assert_eq!(c.line().await, "b OK FETCH done\r\n");

    let mut p = Client::connect(plain_port).await;
    assert_eq!(p.line().await, "* OK IMAP4 ready\r\n");
    p.send("c CAPABILITY\r\n").await;
    assert_eq!(
        p.line().await,
        "* CAPABILITY IMAP4 IMAP4rev1 UIDPLUS STARTTLS LOGINDISABLED\r\n"
    );
    assert_eq!(p.line().await, "c OK completed\r\n");
    p.send("d LOGIN ivy pw\r\n").await;
    assert_eq!(p.line().await, "d BAD invalid command\r\n");
    p.send("e STARTTLS\r\nf NOOP\r\n").await;
    assert_eq!(p.line().await, "e OK completed\r\n");
    let tcp = p.r.into_inner().reunite(p.w).unwrap();
    let mut t = TlsClient::handshake(tcp).await;
    t.send("g CAPABILITY\r\n").await;
    assert_eq!(
        t.line().await,
        "* CAPABILITY IMAP4 IMAP4rev1 UIDPLUS AUTH=PLAIN\r\n"
    );
    assert_eq!(t.line().await, "g OK completed\r\n");
    t.send("h LOGIN ivy pw\r\n").await;
    assert_eq!(
        t.line().await,
        "h OK [CAPABILITY IMAP4rev1 IDLE] Logged in\r\n"
    );
    let reqs = auth.requests();
    assert!(
        reqs.iter().all(|r| r.contains("Auth-SSL: on\r\n")),
        "{reqs:?}"
    );
}

#[tokio::test]
async fn a_server_with_its_own_error_log_writes_its_sessions_there() {
    let auth = FakeAuth::start(answers(vec![(
        "kim",
        vec![AuthAnswer::headers(&[("Auth-Status", "Go away")])],
    )]))
    .await;
    let (own, other) = (free_port(), free_port());
    let body = format!(
        "{}\n{}",
        server(own, auth.addr, "error_log $DIR/own.log info;"),
        server(other, auth.addr, "")
    );
    let proxy = Proxy::start(&body, &[own, other]);
    let own_log = proxy.dir.0.join("own.log");
    for (port, user) in [(own, "kim"), (other, "kim")] {
        let mut c = Client::connect(port).await;
        c.line().await;
        c.send(&format!("a LOGIN {user} pw\r\n")).await;
        assert_eq!(c.line().await, "a NO Go away\r\n");
    }
    let main = proxy.wait_log(&format!("server: 127.0.0.1:{other}, login: \"kim\""));
    assert!(main.contains(&format!("client login failed: \"Go away\" while in http auth state, client: 127.0.0.1, server: 127.0.0.1:{other}")), "{main}");
    assert!(
        !main.contains(&format!("server: 127.0.0.1:{own}")),
        "own server's lines in the main log: {main}"
    );
    let own_text = std::fs::read_to_string(&own_log).unwrap_or_default();
    assert!(own_text.contains(&format!("client login failed: \"Go away\" while in http auth state, client: 127.0.0.1, server: 127.0.0.1:{own}")), "{own_text}");
    // USR1 reopens server logs too (log rotation).
    let rotated = proxy.dir.0.join("own.log.1");
    std::fs::rename(&own_log, &rotated).unwrap();
    // SAFETY: kill on our own child's pid.
    unsafe { libc::kill(proxy.child.id() as i32, libc::SIGUSR1) };
    let until = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while !own_log.exists() && std::time::Instant::now() < until {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // The master has reopened (the file exists); each worker reopens when its own USR1
    // arrives, so a connection accepted just before that still logs to the old file.
    let until = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        let mut c = Client::connect(own).await;
        c.line().await;
        let text = std::fs::read_to_string(&own_log).unwrap_or_default();
        if text.contains("connected to") {
            break;
        }
        assert!(
            std::time::Instant::now() < until,
            "no reopen: {text:?}, rotated: {:?}",
            std::fs::read_to_string(&rotated).unwrap_or_default()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
