//! The client against scripted auth servers on loopback.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use tokio::net::{TcpListener, UnixListener};
use tokio::task::JoinHandle;

use super::*;
use crate::auth::Outcome;
use crate::config::{AuthTarget, Protocol};
use crate::proto::AuthMethod;

fn http_for(target: AuthTarget, timeout_ms: u64) -> AuthHttp {
    AuthHttp {
        target,
        host_header: "127.0.0.1".into(),
        uri: "/auth".into(),
        timeout: Duration::from_millis(timeout_ms),
        headers: Vec::new(),
        pass_client_cert: false,
        keepalive: 0,
    }
}

pub(super) fn alice() -> AuthRequest {
    AuthRequest {
        method: AuthMethod::Plain,
        login: b"alice".to_vec(),
        password: b"secret"[..].into(),
        salt: None,
        protocol: Protocol::Imap,
        attempt: 1,
        client_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        client_host: None,
        proxy_protocol: None,
        smtp: None,
        ssl: None,
    }
}

/// How a scripted server behaves after reading the request head.
enum Script {
    /// Write these chunks (pausing between them), then close.
    Reply(Vec<&'static [u8]>),
    /// Keep the connection open and silent.
    Silent,
}

/// Read until the blank line, so the server can show what it received.
async fn read_request<S: AsyncRead + Unpin>(stream: &mut S) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    while !got.ends_with(b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    got
}

async fn play<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, script: Script) -> Vec<u8> {
    let request = read_request(&mut stream).await;
    match script {
        Script::Reply(chunks) => {
            for chunk in chunks {
                let _ = stream.write_all(chunk).await;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        Script::Silent => tokio::time::sleep(Duration::from_secs(5)).await,
    }
    request
}

/// A one-connection TCP auth server; the handle yields the request it read.
async fn tcp_server(script: Script) -> (AuthHttp, JoinHandle<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        play(stream, script).await
    });
    (http_for(AuthTarget::Tcp(addr), 2000), handle)
}

fn peer(http: &AuthHttp) -> String {
    http.target.to_string()
}

#[tokio::test]
async fn sends_exact_request_and_parses_answer() {
    let (http, server) = tcp_server(Script::Reply(vec![
        b"HTTP/1.0 200 OK\r\nAuth-Sta",
        b"tus: OK\r\nAuth-Server: 10.1.2.3\r\nAuth-Port: 143\r\n\r\nbody",
    ]))
    .await;
    let response = query(&http, &alice()).await.unwrap();
    assert_eq!(server.await.unwrap(), alice().encode(&http));
    assert_eq!(
        response.outcome(Protocol::Imap, true).unwrap(),
        Outcome::Ok {
            backend: BackendAddr::Ip("10.1.2.3:143".parse().unwrap()),
            login_override: None,
            password_override: None,
        }
    );
}

#[tokio::test]
async fn connection_refused_reads_like_nginx() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let http = http_for(AuthTarget::Tcp(addr), 2000);
    let err = query(&http, &alice()).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("connect() to {addr} failed (111: Connection refused)")
    );
}

#[tokio::test]
async fn silent_server_times_out_on_time() {
    let (mut http, _server) = tcp_server(Script::Silent).await;
    http.timeout = Duration::from_millis(300);
    let started = std::time::Instant::now();
    let err = query(&http, &alice()).await.unwrap_err();
    let took = started.elapsed();
    assert_eq!(
        err.to_string(),
        format!(
            "auth http server {} timed out (110: Connection timed out)",
            peer(&http)
        )
    );
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_millis(1500),
        "{took:?}"
    );
}

#[tokio::test]
async fn early_close_is_an_error() {
    let (http, _server) = tcp_server(Script::Reply(vec![
        b"HTTP/1.0 200 OK\r\nAuth-Status: OK\r\n",
    ]))
    .await;
    let err = query(&http, &alice()).await.unwrap_err();
    assert!(matches!(err, AuthError::Closed { .. }), "{err}");
}

#[tokio::test]
async fn garbage_is_an_invalid_header() {
    let (http, _server) = tcp_server(Script::Reply(vec![b"<html>oops</html>\r\n\r\n"])).await;
    let err = query(&http, &alice()).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "auth http server {} sent invalid header in response",
            peer(&http)
        )
    );
}

#[tokio::test]
async fn response_head_over_1024_bytes_fails() {
    static LONG: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    let long = LONG.get_or_init(|| {
        let mut v = b"HTTP/1.0 200 OK\r\nAuth-Server: 1.2.3.4\r\nAuth-Port: 1\r\n".to_vec();
        v.extend(b"X-Pad: ".iter().chain(&[b'a'; 1100]).chain(b"\r\n\r\n"));
        v
    });
    let (http, _server) = tcp_server(Script::Reply(vec![long.as_slice()])).await;
    let err = query(&http, &alice()).await.unwrap_err();
    assert!(matches!(err, AuthError::TooLong { .. }), "{err}");
}

#[tokio::test]
async fn wait_is_reported_not_acted_on() {
    let (http, _server) = tcp_server(Script::Reply(vec![
        b"Auth-Status: WAIT\r\nAuth-Wait: 1\r\n\r\n",
    ]))
    .await;
    let started = std::time::Instant::now();
    let response = query(&http, &alice()).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "query must not sleep"
    );
    assert_eq!(
        response.outcome(Protocol::Imap, true).unwrap(),
        Outcome::Wait(Duration::from_secs(1))
    );
}

#[tokio::test]
async fn unix_socket_target() {
    let dir = std::env::temp_dir().join(format!("mailproxy-auth-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path: PathBuf = dir.join("auth.sock");
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).unwrap();
    let server = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        play(stream, Script::Reply(vec![b"Auth-Status: Nope\r\n\r\n"])).await
    });
    let mut http = http_for(AuthTarget::Unix(path.clone()), 2000);
    http.host_header = "localhost".into();
    let response = query(&http, &alice()).await.unwrap();
    assert_eq!(response.peer, format!("unix:{}", path.display()));
    assert_eq!(response.failure.as_deref(), Some(&b"Nope"[..]));
    assert!(server
        .await
        .unwrap()
        .starts_with(b"GET /auth HTTP/1.0\r\nHost: localhost\r\n"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn resolve_ip_and_name() {
    let ip = BackendAddr::Ip("127.0.0.1:143".parse().unwrap());
    assert_eq!(
        resolve(&ip).await.unwrap(),
        "127.0.0.1:143".parse().unwrap()
    );
    let name = resolve(&BackendAddr::Name("localhost".into(), 143))
        .await
        .unwrap();
    assert!(name.ip().is_loopback() && name.port() == 143, "{name}");
    let err = resolve(&BackendAddr::Name("no-such-host.invalid".into(), 1))
        .await
        .unwrap_err();
    assert!(
        matches!(err, crate::auth::AuthError::Resolve { .. }),
        "{err}"
    );
    assert!(
        err.to_string()
            .starts_with("\"no-such-host.invalid\" could not be resolved ("),
        "{err}"
    );
}
