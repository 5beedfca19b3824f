//! Every fault of an auth server or a backend, each played 20 times against one worker:
//! the client gets the protocol's reply, the log names what failed, and afterwards the
//! worker's open files are back at their baseline and its memory has not grown (no
//! connection, buffer or task is left behind by a fault path).

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;

use common::lifecycle::*;
use common::*;

/// How often each fault is played.
const ROUNDS: usize = 20;
/// What 20 faults may add to the worker's RSS. A leaked 64 KiB relay buffer, a kept
/// 1 MB auth response or a stuck session each would exceed it.
const RSS_SLACK_KIB: u64 = 1024;

/// The one worker's open files and resident memory.
struct Worker(u32);

impl Worker {
    fn of(proxy: &Proxy) -> Worker {
        let workers = workers_of(proxy.child.id(), 1);
        assert_eq!(workers.len(), 1, "worker_processes 1");
        Worker(workers[0])
    }

    fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.0))
            .unwrap()
            .count()
    }

    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.0)).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    /// Waits up to 3 s for the open files to come back to `baseline`.
    fn fds_back_to(&self, baseline: usize) -> usize {
        let until = Instant::now() + Duration::from_secs(3);
        loop {
            let now = self.fds();
            if now <= baseline || Instant::now() > until {
                return now;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn imap(port: u16, auth: SocketAddr, extra: &str) -> String {
    format!("server {{ listen 127.0.0.1:{port}; protocol imap; auth_http {auth}/auth; {extra} }}")
}

/// Plays `round` ROUNDS times against a proxy that serves `auth` (one warm-up login
/// of `warm_user` first, so that the baseline includes the runtime's lazy set-up),
/// then checks the log for `logged` and the worker's fds and memory.
async fn play<F, Fut>(auth: SocketAddr, extra: &str, logged: &str, round: F)
where
    F: Fn(u16) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let port = free_port();
    let proxy = start_with("", &imap(port, auth, extra), &[port]);
    let worker = Worker::of(&proxy);
    round(port).await;
    // The warm-up's sockets may still be closing: let them.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let fds = worker.fds();
    let rss = worker.rss_kib();
    for _ in 0..ROUNDS {
        round(port).await;
    }
    let log = proxy.wait_log(logged);
    assert!(log.contains(logged), "want {logged:?} in {log}");
    let left = worker.fds_back_to(fds);
    assert!(
        left <= fds,
        "{left} open files after the faults, {fds} before ({logged})"
    );
    let grown = worker.rss_kib().saturating_sub(rss);
    assert!(
        grown < RSS_SLACK_KIB,
        "RSS grew {grown} KiB over {ROUNDS} rounds ({logged})"
    );
}

/// LOGIN, then the expected first reply and the close.
async fn login_fails_with(port: u16, user: &str, reply: &str) {
    let mut c = Client::connect(port).await;
    assert_eq!(c.line().await, "* OK IMAP4 ready\r\n");
    c.send(&format!("x LOGIN {user} pw\r\n")).await;
    assert_eq!(c.line().await, reply);
    assert!(c.closed().await, "not closed after {reply:?}");
}

const INTERNAL: &str = "* BAD internal server error\r\n";

async fn auth_fault(answer: AuthAnswer, logged: &str) {
    let auth = FakeAuth::start(answers(vec![("ann", vec![answer])])).await;
    let round = |port| login_fails_with(port, "ann", INTERNAL);
    play(auth.addr, "auth_http_timeout 300ms;", logged, round).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn auth_server_refuses_the_connection() {
    let dead = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let round = |port| login_fails_with(port, "ann", INTERNAL);
    play(dead, "", "(111: Connection refused)", round).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn auth_server_is_silent() {
    auth_fault(AuthAnswer::Stall, "timed out (110: Connection timed out)").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn auth_server_sends_garbage() {
    let garbage = AuthAnswer::Raw(b"\x00\xffnot http at all\r\n\r\n".to_vec());
    auth_fault(garbage, "sent invalid").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn auth_server_closes_in_the_middle_of_the_headers() {
    let cut = AuthAnswer::Raw(b"HTTP/1.0 200 OK\r\nAuth-Status: OK\r\nAuth-Ser".to_vec());
    auth_fault(cut, "closed the connection before the end of the response").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn auth_server_sends_a_megabyte_of_headers() {
    let mut head = b"HTTP/1.0 200 OK\r\n".to_vec();
    while head.len() < 1 << 20 {
        head.extend_from_slice(b"X-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
    }
    head.extend_from_slice(b"\r\n");
    auth_fault(AuthAnswer::Raw(head), "longer than 1024 bytes").await;
}

/// An auth server that sends `user` to `backend`.
async fn to_backend(backend: SocketAddr) -> FakeAuth {
    FakeAuth::start(answers(vec![("bo", vec![AuthAnswer::ok(backend)])])).await
}

async fn backend_fault(script: BackendScript, logged: &str) {
    let backend = FakeBackend::start(script).await;
    let auth = to_backend(backend.addr).await;
    let round = |port| login_fails_with(port, "bo", INTERNAL);
    play(auth.addr, "timeout 500ms;", logged, round).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn backend_refuses_the_connection() {
    let dead = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let auth = to_backend(dead).await;
    let round = |port| login_fails_with(port, "bo", INTERNAL);
    play(auth.addr, "", &format!("connect() to {dead} failed"), round).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn backend_is_silent() {
    backend_fault(BackendScript::Stall, "upstream timed out").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn backend_sends_a_garbage_greeting() {
    let garbage = BackendScript::Greeting(b"\x00\xff\x01 garbage\r\n".to_vec());
    backend_fault(garbage, "upstream sent invalid response").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn backend_resets_in_the_middle_of_the_relay() {
    let backend = FakeBackend::start(BackendScript::ResetAfterLogin).await;
    let auth = to_backend(backend.addr).await;
    let round = |port| async move {
        let mut c = logged_in_as(port, "bo", "pw").await;
        c.send("f FETCH 1 BODY[]\r\n").await;
        assert_eq!(c.line().await, "* 1 FETCH (BODY[] {1000}\r\n");
        let mut rest = Vec::new();
        let _ = c.r.read_to_end(&mut rest).await;
        assert_eq!(rest, b"partial", "more than the backend sent");
    };
    play(auth.addr, "", "proxied session done (", round).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_reader_does_not_make_the_worker_buffer_the_message() {
    const BIG: usize = 16 << 20;
    let backend = FakeBackend::start(BackendScript::Good { big: BIG }).await;
    let auth = to_backend(backend.addr).await;
    let port = free_port();
    let proxy = start_with("", &imap(port, auth.addr, ""), &[port]);
    let worker = Worker::of(&proxy);
    let mut c = logged_in_as(port, "bo", "pw").await;
    let rss = worker.rss_kib();
    c.send("b FETCH BIG\r\n").await;
    // The client reads nothing for a while: the worker must not take in 16 MiB.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let grown = worker.rss_kib().saturating_sub(rss);
    assert!(
        grown < 2048,
        "the worker buffered {grown} KiB for a reader that waits"
    );
    let head = c.line().await;
    assert_eq!(head, format!("* 1 FETCH (BODY[] {{{BIG}}}\r\n"));
    let mut body = vec![0u8; BIG];
    c.r.read_exact(&mut body).await.unwrap();
    assert!(body == big_body(BIG), "the message arrived changed");
    assert_eq!(c.line().await, ")\r\n");
    assert_eq!(c.line().await, "b OK FETCH done\r\n");
}
