//! Scripted peers and a proxy runner for the integration tests.
//!
//! The proxy is the real `mailproxy` binary, started on a generated nginx.conf; the
//! auth server and the backends are small scripted servers inside the test, for the
//! things a real server cannot be made to do (stall, lie, send garbage).

#![allow(dead_code)]

pub mod lifecycle;
pub mod pop3;
pub mod smtp;

use std::collections::HashMap;
use std::future::Future;
use std::marker::PhantomData;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::PathBuf;
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// A free loopback port (bound and released; good enough on a test machine).
pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A temp directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "mailproxy-test-{tag}-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A self-signed certificate and key made with the openssl CLI.
pub fn make_cert(dir: &std::path::Path) -> (PathBuf, PathBuf) {
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    (cert, key)
}

/// A running mailproxy; killed on drop.
pub struct Proxy {
    pub child: Child,
    pub dir: TempDir,
    pub log: PathBuf,
}

impl Proxy {
    /// Starts mailproxy with `mail_body` inside `mail { }`. Waits until every port in
    /// `ports` accepts connections.
    pub fn start(mail_body: &str, ports: &[u16]) -> Proxy {
        let dir = TempDir::new("proxy");
        let log = dir.0.join("error.log");
        let conf = dir.0.join("nginx.conf");
        let text = format!(
            "daemon off;\nworker_processes 1;\npid {}/mailproxy.pid;\nerror_log {} info;\n\
             events {{ worker_connections 1024; }}\nmail {{\n{}\n}}\n",
            dir.0.display(),
            log.display(),
            mail_body.replace("$DIR", &dir.0.display().to_string())
        );
        std::fs::write(&conf, text).unwrap();
        Proxy::spawn(dir, &conf, ports)
    }

    /// Runs mailproxy on `conf` (its `error_log` is `dir/error.log`); waits until every
    /// port in `ports` accepts connections.
    pub fn spawn(dir: TempDir, conf: &std::path::Path, ports: &[u16]) -> Proxy {
        let child = Proxy::run(conf);
        let log = dir.0.join("error.log");
        let proxy = Proxy { child, dir, log };
        for &port in ports {
            wait_port(port);
        }
        proxy
    }

    /// The mailproxy process itself, on `conf`, in the foreground of the test.
    pub fn run(conf: &std::path::Path) -> Child {
        Command::new(env!("CARGO_BIN_EXE_mailproxy"))
            .arg("-c")
            .arg(conf)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits up to 2 s for `needle` to appear in the error log.
    pub fn wait_log(&self, needle: &str) -> String {
        self.wait_log_within(needle, Duration::from_secs(2))
    }

    /// Waits up to `limit` for `needle` to appear in the error log; returns the log.
    pub fn wait_log_within(&self, needle: &str, limit: Duration) -> String {
        let until = Instant::now() + limit;
        loop {
            let text = self.log_text();
            if text.contains(needle) || Instant::now() > until {
                return text;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_port(port: u16) {
    let until = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < until, "port {port} never opened");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What the scripted auth server answers for one login.
#[derive(Clone)]
pub enum AuthAnswer {
    /// Raw response bytes.
    Raw(Vec<u8>),
    /// Accept the connection and never answer.
    Stall,
}

impl AuthAnswer {
    pub fn ok(backend: SocketAddr) -> AuthAnswer {
        AuthAnswer::headers(&[
            ("Auth-Status", "OK"),
            ("Auth-Server", &backend.ip().to_string()),
            ("Auth-Port", &backend.port().to_string()),
        ])
    }

    pub fn headers(pairs: &[(&str, &str)]) -> AuthAnswer {
        let mut r = b"HTTP/1.0 200 OK\r\n".to_vec();
        for (k, v) in pairs {
            r.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
        }
        r.extend_from_slice(b"\r\n");
        AuthAnswer::Raw(r)
    }
}

/// A scripted auth_http server: answers by the `Auth-User` of each request (a
/// sequence per user, the last one repeating) and records every raw request.
pub struct FakeAuth {
    pub addr: SocketAddr,
    pub requests: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl FakeAuth {
    pub async fn start(answers: HashMap<String, Vec<AuthAnswer>>) -> FakeAuth {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        let answers = Arc::new(Mutex::new(answers));
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let seen = seen.clone();
                let answers = answers.clone();
                tokio::spawn(async move { serve_auth(sock, seen, answers).await });
            }
        });
        FakeAuth { addr, requests }
    }

    pub fn requests(&self) -> Vec<String> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .map(|r| String::from_utf8_lossy(r).into_owned())
            .collect()
    }
}

async fn serve_auth(
    mut sock: TcpStream,
    seen: Arc<Mutex<Vec<Vec<u8>>>>,
    answers: Arc<Mutex<HashMap<String, Vec<AuthAnswer>>>>,
) {
    let mut req = Vec::new();
    let mut buf = [0u8; 2048];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
        match sock.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => req.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&req).into_owned();
    seen.lock().unwrap().push(req);
    let user = text
        .lines()
        .find_map(|l| l.strip_prefix("Auth-User: "))
        .unwrap_or("")
        .to_string();
    let answer = {
        let mut map = answers.lock().unwrap();
        match map.get_mut(&user) {
            Some(list) if list.len() > 1 => list.remove(0),
            Some(list) => list[0].clone(),
            None => AuthAnswer::headers(&[("Auth-Status", "Unknown user")]),
        }
    };
    match answer {
        AuthAnswer::Raw(bytes) => {
            let _ = sock.write_all(&bytes).await;
        }
        AuthAnswer::Stall => tokio::time::sleep(Duration::from_secs(30)).await,
    }
}

/// How the scripted IMAP backend behaves.
#[derive(Clone)]
pub enum BackendScript {
    /// Greets, accepts nginx's literal LOGIN, answers `<tag>OK` with `ok_text`, then
    /// answers every later command with `<tag> OK done <command>`, and `FETCH BIG`
    /// with a literal of `big` bytes.
    Good { big: usize },
    /// Sends this greeting, then closes after the first line it reads.
    Greeting(Vec<u8>),
    /// Greets, then answers the LOGIN command's first line with these bytes.
    RefuseLogin(Vec<u8>),
    /// Accepts and never says anything.
    Stall,
    /// Logs in as `Good` does, answers the first command with the start of a literal,
    /// then resets the connection (RST) in the middle of the relay.
    ResetAfterLogin,
}

/// The answers the scripted auth server gives, in turn, per login.
pub fn answers(pairs: Vec<(&str, Vec<AuthAnswer>)>) -> HashMap<String, Vec<AuthAnswer>> {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// An auth server that refuses `login` once with `Auth-Status: status` (no wait).
pub async fn refusing_auth(login: &str, status: &str) -> FakeAuth {
    FakeAuth::start(answers(vec![(
        login,
        vec![AuthAnswer::headers(&[("Auth-Status", status)])],
    )]))
    .await
}

/// What every scripted backend's bytes received so far are kept in.
pub type Received = Arc<Mutex<Vec<u8>>>;

/// A script a [`ScriptedBackend`] plays to each connection.
pub trait Script: Clone + Send + 'static {
    /// Plays the script on one accepted connection, recording what it reads.
    fn serve(self, sock: TcpStream, rec: Received) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}

/// A loopback backend playing script `S` to every connection, recording everything it
/// receives (all connections).
pub struct ScriptedBackend<S> {
    pub addr: SocketAddr,
    pub received: Received,
    /// Connections accepted so far (a refused login must never open one).
    pub connections: Arc<AtomicUsize>,
    script: PhantomData<S>,
}

impl<S: Script> ScriptedBackend<S> {
    pub async fn start(script: S) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Received::default();
        let rec = received.clone();
        let connections = Arc::new(AtomicUsize::new(0));
        let accepted = connections.clone();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                accepted.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(script.clone().serve(sock, rec.clone()));
            }
        });
        ScriptedBackend {
            addr,
            received,
            connections,
            script: PhantomData,
        }
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    pub fn received(&self) -> String {
        String::from_utf8_lossy(&self.received.lock().unwrap()).into_owned()
    }
}

/// A scripted IMAP backend recording everything it receives.
pub type FakeBackend = ScriptedBackend<BackendScript>;

impl Script for BackendScript {
    fn serve(self, sock: TcpStream, rec: Received) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(run_backend(sock, self, rec))
    }
}

/// The deterministic content of the big FETCH literal.
pub fn big_body(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| b"abcdefghijklmnopqrstuvwxyz0123456789\r\n"[i % 38])
        .collect()
}

async fn read_line<R: AsyncBufReadExt + Unpin>(
    r: &mut R,
    rec: &Mutex<Vec<u8>>,
) -> (usize, Vec<u8>) {
    let mut l = Vec::new();
    let n = r.read_until(b'\n', &mut l).await.unwrap_or(0);
    rec.lock().unwrap().extend_from_slice(&l);
    (n, l)
}

async fn run_backend(sock: TcpStream, script: BackendScript, rec: Arc<Mutex<Vec<u8>>>) {
    if matches!(script, BackendScript::ResetAfterLogin) {
        // Closing with a zero linger time sends RST instead of FIN.
        socket2::SockRef::from(&sock)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
    }
    let (r, mut w) = sock.into_split();
    let mut r = BufReader::new(r);
    let rec = &*rec;
    match script {
        BackendScript::Stall => {
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
        BackendScript::Greeting(g) => {
            let _ = w.write_all(&g).await;
            let _ = read_line(&mut r, rec).await;
        }
        BackendScript::RefuseLogin(reply) => {
            let _ = w.write_all(b"* OK fake ready\r\n").await;
            let _ = read_line(&mut r, rec).await;
            let _ = w.write_all(&reply).await;
            let _ = read_line(&mut r, rec).await;
        }
        BackendScript::ResetAfterLogin => {
            accept_login(&mut r, &mut w, rec).await;
            let _ = read_line(&mut r, rec).await;
            let _ = w.write_all(b"* 1 FETCH (BODY[] {1000}\r\npartial").await;
            // Give the proxy the bytes first, then close with the zero linger set
            // above: RST. (Dropping the write half alone would send a FIN first.)
            tokio::time::sleep(Duration::from_millis(50)).await;
            drop(r.into_inner().reunite(w));
        }
        BackendScript::Good { big } => {
            accept_login(&mut r, &mut w, rec).await;
            loop {
                let (n, l) = read_line(&mut r, rec).await;
                if n == 0 {
                    break;
                }
                let text = String::from_utf8_lossy(&l).trim_end().to_string();
                let tag = text.split(' ').next().unwrap_or("*").to_string();
                if text.contains("FETCH BIG") {
                    let body = big_body(big);
                    let head = format!("* 1 FETCH (BODY[] {{{}}}\r\n", body.len());
                    let _ = w.write_all(head.as_bytes()).await;
                    let _ = w.write_all(&body).await;
                    let _ = w
                        .write_all(format!(")\r\n{tag} OK FETCH done\r\n").as_bytes())
                        .await;
                } else {
                    let _ = w
                        .write_all(format!("{tag} OK done {text}\r\n").as_bytes())
                        .await;
                }
            }
        }
    }
}

/// Greets and accepts nginx's literal LOGIN (`TAG LOGIN {n}` / login `{m}` / password).
async fn accept_login(
    r: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
    w: &mut tokio::net::tcp::OwnedWriteHalf,
    rec: &Mutex<Vec<u8>>,
) {
    let _ = w.write_all(b"* OK fake ready\r\n").await;
    let (_, first) = read_line(r, rec).await;
    let tag = first.split(|&b| b == b' ').next().unwrap_or(b"").to_vec();
    let _ = w.write_all(b"+ go ahead\r\n").await;
    let _ = read_line(r, rec).await;
    let _ = w.write_all(b"+ go ahead\r\n").await;
    let _ = read_line(r, rec).await;
    let mut ok = tag;
    ok.extend_from_slice(b" OK [CAPABILITY IMAP4rev1 IDLE] Logged in\r\n");
    let _ = w.write_all(&ok).await;
}

/// A line-oriented test client over plain TCP.
pub struct Client {
    pub r: BufReader<tokio::net::tcp::OwnedReadHalf>,
    pub w: tokio::net::tcp::OwnedWriteHalf,
}

impl Client {
    pub async fn connect(port: u16) -> Client {
        let s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let (r, w) = s.into_split();
        Client {
            r: BufReader::new(r),
            w,
        }
    }

    pub async fn send(&mut self, bytes: &str) {
        self.w.write_all(bytes.as_bytes()).await.unwrap();
    }

    /// Reads one line (with its CRLF), or "" at EOF; fails after 5 s.
    pub async fn line(&mut self) -> String {
        let mut l = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), self.r.read_until(b'\n', &mut l))
            .await
            .expect("no line within 5 s")
            .unwrap();
        String::from_utf8_lossy(&l).into_owned()
    }

    /// True if the proxy closed the connection (EOF within 5 s).
    pub async fn closed(&mut self) -> bool {
        self.line().await.is_empty()
    }
}

/// A TLS client (certificate not verified: the tests use a self-signed one).
pub struct TlsClient {
    pub s: BufReader<tokio_openssl::SslStream<TcpStream>>,
}

impl TlsClient {
    pub async fn connect(port: u16) -> TlsClient {
        let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        TlsClient::handshake(tcp).await
    }

    pub async fn handshake(tcp: TcpStream) -> TlsClient {
        TlsClient::handshake_with(tcp, |_| {}).await
    }

    /// A handshake without verification, after `configure` had its say (a client
    /// certificate, say).
    pub async fn handshake_with(
        tcp: TcpStream,
        configure: impl FnOnce(&mut openssl::ssl::SslConnectorBuilder),
    ) -> TlsClient {
        use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
        let mut b = SslConnector::builder(SslMethod::tls_client()).unwrap();
        b.set_verify(SslVerifyMode::NONE);
        configure(&mut b);
        let ssl = b
            .build()
            .configure()
            .unwrap()
            .into_ssl("localhost")
            .unwrap();
        let mut s = tokio_openssl::SslStream::new(ssl, tcp).unwrap();
        std::pin::Pin::new(&mut s).connect().await.unwrap();
        TlsClient {
            s: BufReader::new(s),
        }
    }

    pub async fn send(&mut self, bytes: &str) {
        self.s.get_mut().write_all(bytes.as_bytes()).await.unwrap();
    }

    pub async fn line(&mut self) -> String {
        let mut l = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), self.s.read_until(b'\n', &mut l))
            .await
            .expect("no line within 5 s")
            .unwrap();
        String::from_utf8_lossy(&l).into_owned()
    }

    pub async fn read_exact(&mut self, n: usize) -> Vec<u8> {
        let mut buf = vec![0u8; n];
        tokio::time::timeout(Duration::from_secs(20), self.s.read_exact(&mut buf))
            .await
            .expect("read timed out")
            .unwrap();
        buf
    }
}
