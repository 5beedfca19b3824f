//! `auth_http_keepalive` against scripted HTTP/1.1 auth servers on loopback.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::net::TcpListener;

use super::tests::alice;
use super::*;

const KEEP: &[u8] = b"HTTP/1.1 200 OK\r\nAuth-Status: OK\r\nAuth-Server: 10.0.0.1\r\n\
Auth-Port: 143\r\nContent-Length: 5\r\n\r\nhello";

/// An auth server that answers every request on a connection with `reply`, and
/// closes a connection after `per_connection` answers, or, with `silent_close`,
/// when the request after those arrives.
struct Server {
    http: AuthHttp,
    accepted: Arc<AtomicUsize>,
    requests: Arc<std::sync::Mutex<Vec<Vec<u8>>>>,
}

async fn server(reply: &'static [u8], per_connection: usize, keepalive: usize) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let requests = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (count, log) = (accepted.clone(), requests.clone());
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            count.fetch_add(1, Ordering::SeqCst);
            let log = log.clone();
            tokio::spawn(async move {
                for answered in 0.. {
                    let request = read_head(&mut stream).await;
                    if request.is_empty() || answered == per_connection {
                        return; // closes without an answer
                    }
                    log.lock().unwrap().push(request);
                    if stream.write_all(reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    let http = AuthHttp {
        target: AuthTarget::Tcp(addr),
        host_header: "127.0.0.1".into(),
        uri: "/auth".into(),
        timeout: Duration::from_secs(2),
        headers: Vec::new(),
        pass_client_cert: false,
        keepalive,
    };
    Server {
        http,
        accepted,
        requests,
    }
}

async fn read_head(stream: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte).await {
            Ok(1) => got.push(byte[0]),
            _ => return Vec::new(),
        }
    }
    got
}

async fn ask(s: &Server) -> AuthResponse {
    let response = query(&s.http, &alice()).await.unwrap();
    assert_eq!(response.server.as_deref(), Some(&b"10.0.0.1"[..]));
    response
}

fn addr_of(s: &Server) -> SocketAddr {
    match s.http.target {
        AuthTarget::Tcp(a) => a,
        AuthTarget::Unix(_) => unreachable!(),
    }
}

#[tokio::test]
async fn consecutive_requests_share_one_connection_over_http11() {
    let s = server(KEEP, usize::MAX, 4).await;
    for _ in 0..3 {
        ask(&s).await;
    }
    assert_eq!(s.accepted.load(Ordering::SeqCst), 1);
    let requests = s.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 3);
    for r in &requests {
        assert!(
            r.starts_with(b"GET /auth HTTP/1.1\r\nHost: 127.0.0.1\r\n"),
            "{r:?}"
        );
    }
    assert_eq!(pool::idle_count(addr_of(&s)), 1);
}

#[tokio::test]
async fn without_keepalive_the_request_is_nginxs_http10() {
    let s = server(KEEP, usize::MAX, 0).await;
    ask(&s).await;
    ask(&s).await;
    assert_eq!(s.accepted.load(Ordering::SeqCst), 2);
    assert!(s.requests.lock().unwrap()[0].starts_with(b"GET /auth HTTP/1.0\r\n"));
    assert_eq!(pool::idle_count(addr_of(&s)), 0);
}

#[tokio::test]
async fn responses_that_do_not_allow_reuse_close_the_connection() {
    const CLOSE: &[u8] = b"HTTP/1.1 200 OK\r\nConnection: close\r\nAuth-Status: OK\r\n\
Auth-Server: 10.0.0.1\r\nAuth-Port: 143\r\nContent-Length: 0\r\n\r\n";
    const HTTP10: &[u8] = b"HTTP/1.0 200 OK\r\nAuth-Status: OK\r\nAuth-Server: 10.0.0.1\r\n\
Auth-Port: 143\r\nContent-Length: 0\r\n\r\n";
    const NO_LENGTH: &[u8] =
        b"HTTP/1.1 200 OK\r\nAuth-Status: OK\r\nAuth-Server: 10.0.0.1\r\nAuth-Port: 143\r\n\r\n";
    const CHUNKED: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nAuth-Status: OK\r\n\
Auth-Server: 10.0.0.1\r\nAuth-Port: 143\r\n\r\n0\r\n\r\n";
    for reply in [CLOSE, HTTP10, NO_LENGTH, CHUNKED] {
        let s = server(reply, usize::MAX, 4).await;
        ask(&s).await;
        ask(&s).await;
        assert_eq!(
            s.accepted.load(Ordering::SeqCst),
            2,
            "{}",
            String::from_utf8_lossy(reply)
        );
    }
}

#[tokio::test]
async fn a_kept_connection_the_server_dropped_is_replaced_without_an_error() {
    // Each connection answers once, then closes when the next request arrives.
    let s = server(KEEP, 1, 4).await;
    for _ in 0..3 {
        ask(&s).await;
    }
    assert_eq!(s.accepted.load(Ordering::SeqCst), 3);
    assert_eq!(s.requests.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn no_more_idle_connections_than_the_limit() {
    let s = server(KEEP, usize::MAX, 1).await;
    let (a, b, c) = tokio::join!(ask(&s), ask(&s), ask(&s));
    assert!([a, b, c]
        .iter()
        .all(|r| r.port.as_deref() == Some(&b"143"[..])));
    assert_eq!(s.accepted.load(Ordering::SeqCst), 3);
    assert_eq!(pool::idle_count(addr_of(&s)), 1);
}

#[tokio::test]
async fn an_error_after_an_answer_began_is_not_retried() {
    const CUT: &[u8] = b"HTTP/1.1 200 OK\r\nAuth-Sta";
    let mut s = server(CUT, 1, 4).await;
    s.http.timeout = Duration::from_millis(300);
    let err = query(&s.http, &alice()).await.unwrap_err();
    assert!(matches!(err, AuthError::TimedOut { .. }), "{err}");
    assert_eq!(s.accepted.load(Ordering::SeqCst), 1);
}
