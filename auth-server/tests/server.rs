//! `mailproxy-auth` as nginx meets it: the real binary on a loopback port, requests
//! encoded by the library exactly as nginx sends them, answers read by the library's
//! response parser.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use mailproxy::auth::{parse_response, AuthRequest, AuthResponse, Outcome};
use mailproxy::config::{AuthHttp, AuthTarget, Protocol};
use mailproxy::proto::AuthMethod;

const CONFIG: &str = r#"
listen = "127.0.0.1:0"
refuse = ["bob smith"]
refuse_wait = 3
max_attempts = 10

[backend]
imap = "127.0.0.1:1143"
pop3 = "localhost:1110"
"#;

/// The running binary; killed when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
    log: Receiver<String>,
    _dir: TempDir,
}

struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Server {
    fn start(config: &str, name: &str) -> Server {
        let dir =
            std::env::temp_dir().join(format!("mailproxy-auth-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("auth.toml");
        std::fs::write(&file, config).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_mailproxy-auth"))
            .arg("-c")
            .arg(&file)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, log) = channel();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let first = log
            .recv_timeout(Duration::from_secs(10))
            .expect("startup line");
        let addr = first
            .strip_prefix("mailproxy-auth: listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
            .parse()
            .unwrap();
        Server {
            child,
            addr,
            log,
            _dir: TempDir(dir),
        }
    }

    fn http(&self) -> AuthHttp {
        AuthHttp {
            target: AuthTarget::Tcp(self.addr),
            host_header: "127.0.0.1".into(),
            uri: "/auth".into(),
            timeout: Duration::from_secs(5),
            headers: vec![("X-Auth-Key".into(), "s3cret".into())],
            pass_client_cert: false,
            keepalive: 0,
        }
    }

    /// Send raw bytes, read the whole answer (the server closes after an HTTP/1.0 reply).
    fn exchange(&self, request: &[u8]) -> Vec<u8> {
        let mut stream = TcpStream::connect(self.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        stream.write_all(request).unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).unwrap();
        answer
    }

    fn ask(&self, req: &AuthRequest) -> (Vec<u8>, AuthResponse) {
        let raw = self.exchange(&req.encode(&self.http()));
        let parsed = parse_response(&self.addr.to_string(), &raw).unwrap();
        (raw, parsed)
    }

    fn next_log(&self) -> String {
        self.log
            .recv_timeout(Duration::from_secs(5))
            .expect("a log line")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn request(login: &[u8], password: &[u8], protocol: Protocol, attempt: u32) -> AuthRequest {
    AuthRequest {
        method: AuthMethod::Plain,
        login: login.to_vec(),
        password: password.into(),
        salt: None,
        protocol,
        attempt,
        client_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        client_host: None,
        proxy_protocol: None,
        smtp: None,
        ssl: None,
    }
}

#[test]
fn sends_imap_logins_to_the_backend() {
    let server = Server::start(CONFIG, "ok");
    let (raw, response) = server.ask(&request(b"alice", b"hunter2", Protocol::Imap, 1));
    let raw = String::from_utf8(raw).unwrap();
    assert!(
        raw.starts_with("HTTP/1.0 200 OK\r\n") || raw.starts_with("HTTP/1.1 200 OK\r\n"),
        "{raw}"
    );
    assert!(
        raw.contains("\r\nAuth-Status: OK\r\nAuth-Server: 127.0.0.1\r\nAuth-Port: 1143\r\n"),
        "{raw}"
    );
    assert_eq!(
        response.outcome(Protocol::Imap, true).unwrap(),
        Outcome::Ok {
            backend: mailproxy::auth::BackendAddr::Ip("127.0.0.1:1143".parse().unwrap()),
            login_override: None,
            password_override: None,
        }
    );
    let log = server.next_log();
    assert_eq!(
        log,
        "mailproxy-auth: protocol=imap user=\"alice\" client=127.0.0.1 attempt=1 verdict=OK backend=127.0.0.1:1143"
    );
    assert!(!log.contains("hunter2"));
}

#[test]
fn resolves_backend_names_to_an_ip() {
    let server = Server::start(CONFIG, "name");
    let (_, response) = server.ask(&request(b"carol", b"pw", Protocol::Pop3, 1));
    match response.outcome(Protocol::Pop3, true).unwrap() {
        Outcome::Ok {
            backend: mailproxy::auth::BackendAddr::Ip(addr),
            ..
        } => assert!(addr.ip().is_loopback() && addr.port() == 1110, "{addr}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn refuses_listed_users_with_wait_until_the_limit() {
    let server = Server::start(CONFIG, "refuse");
    // nginx sends the login escaped: "bob%20smith".
    let (_, response) = server.ask(&request(b"bob smith", b"x", Protocol::Imap, 9));
    assert_eq!(
        response.outcome(Protocol::Imap, true).unwrap(),
        Outcome::Failure {
            message: b"Invalid login or password".to_vec(),
            wait: Some(Duration::from_secs(3)),
            error_code: None,
        }
    );
    assert!(server
        .next_log()
        .ends_with("user=\"bob smith\" client=127.0.0.1 attempt=9 verdict=refused wait=3"));
    let (_, response) = server.ask(&request(b"bob smith", b"x", Protocol::Imap, 10));
    assert_eq!(response.wait, None);
    assert_eq!(
        response.failure.as_deref(),
        Some(&b"Invalid login or password"[..])
    );
}

#[test]
fn malformed_requests_get_400_and_the_server_keeps_going() {
    let server = Server::start(CONFIG, "bad");
    let answer = server.exchange(b"GET /auth HTTP/1.0\r\nHost: x\r\nAuth-Protocol: imap\r\n\r\n");
    let answer = String::from_utf8(answer).unwrap();
    assert!(answer.contains(" 400 Bad Request\r\n"), "{answer}");
    assert!(
        answer.ends_with("\r\n\r\nmissing Auth-User header\n"),
        "{answer}"
    );

    // SMTP has no backend in this configuration.
    let raw = server.exchange(&request(b"dave", b"pw", Protocol::Smtp, 1).encode(&server.http()));
    assert!(String::from_utf8(raw)
        .unwrap()
        .ends_with("no backend configured for protocol smtp\n"));
    let raw = server.exchange(b"GET / HTTP/1.0\r\nAuth-User: a\r\nAuth-Protocol: nntp\r\n\r\n");
    assert!(String::from_utf8(raw)
        .unwrap()
        .ends_with("unknown Auth-Protocol \"nntp\"\n"));

    let (_, response) = server.ask(&request(b"alice", b"pw", Protocol::Imap, 1));
    assert!(response.failure.is_none() && response.server.is_some());
}

#[test]
fn exits_cleanly_on_sigterm() {
    let mut server = Server::start(CONFIG, "term");
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(server.child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(5);
    let exit = loop {
        if let Some(exit) = server.child.try_wait().unwrap() {
            break exit;
        }
        assert!(Instant::now() < deadline, "still running after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(exit.success(), "{exit:?}");
    assert_eq!(server.next_log(), "mailproxy-auth: SIGTERM, shutting down");
    assert!(TcpStream::connect(server.addr).is_err(), "still listening");
}

#[test]
fn bad_config_is_reported() {
    let out = Command::new(env!("CARGO_BIN_EXE_mailproxy-auth"))
        .args(["-c", "/nonexistent/auth.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.starts_with("mailproxy-auth: cannot read /nonexistent/auth.toml: "),
        "{err}"
    );
}
