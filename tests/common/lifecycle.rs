//! The process life-cycle helpers of the integration tests: configs, `-s` signals,
//! waiting for ports, logs and exits, a logged-in IMAP client, the worker processes
//! of a master.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::*;

pub fn imap_server(port: u16, auth: std::net::SocketAddr) -> String {
    format!("server {{ listen 127.0.0.1:{port}; protocol imap; auth_http {auth}/auth; }}")
}

/// The same main context as `Proxy::start` writes, with `events` and extra main lines.
pub fn write_conf(dir: &Path, main_extra: &str, connections: u32, mail_body: &str) -> PathBuf {
    let conf = dir.join("nginx.conf");
    let workers = if main_extra.contains("worker_processes") {
        ""
    } else {
        "worker_processes 1;\n"
    };
    let text = format!(
        "daemon off;\n{workers}pid {d}/mailproxy.pid;\nerror_log {d}/error.log info;\n\
         {main_extra}\nevents {{ worker_connections {connections}; }}\nmail {{\n{mail_body}\n}}\n",
        d = dir.display()
    );
    std::fs::write(&conf, text).unwrap();
    conf
}

/// Kills the running master and starts a new one on `conf`, once the old workers are
/// gone: until then they still accept on the port, and a test's first connections
/// would reach a dying worker of the old config.
pub fn restart(proxy: &mut Proxy, conf: &Path) {
    let old_workers = workers_of(proxy.child.id(), 0);
    let _ = proxy.child.kill();
    let _ = proxy.child.wait();
    assert!(
        all_gone(&old_workers, Duration::from_secs(5)),
        "the old workers outlived their master"
    );
    proxy.child = Proxy::run(conf);
}

pub fn kill(proxy: &Proxy, sig: libc::c_int) {
    // SAFETY: signalling our own child.
    assert_eq!(
        unsafe { libc::kill(proxy.child.id() as libc::pid_t, sig) },
        0
    );
}

/// `mailproxy -s NAME -c CONF`: its exit status.
pub fn signal_cmd(conf: &Path, name: &str) -> bool {
    Command::new(env!("CARGO_BIN_EXE_mailproxy"))
        .args(["-s", name, "-c"])
        .arg(conf)
        .status()
        .unwrap()
        .success()
}

/// Like `Proxy::wait_log`, with room for a loaded machine.
pub fn wait_log(proxy: &Proxy, needle: &str) -> String {
    proxy.wait_log_within(needle, Duration::from_secs(10))
}

pub fn refused(port: u16) -> bool {
    let until = Instant::now() + Duration::from_secs(2);
    loop {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            return true;
        }
        if Instant::now() > until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn wait_port(port: u16) {
    let until = Instant::now() + Duration::from_secs(5);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < until, "port {port} never opened");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn wait_exit(proxy: &mut Proxy, within: Duration) -> Option<std::process::ExitStatus> {
    let until = Instant::now() + within;
    loop {
        if let Some(status) = proxy.child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() > until {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub async fn logged_in(port: u16) -> Client {
    logged_in_as(port, "alice", "secret").await
}

/// A session logged in as `user` (the scripted backend's LOGIN reply).
pub async fn logged_in_as(port: u16, user: &str, password: &str) -> Client {
    let mut c = Client::connect(port).await;
    assert_eq!(c.line().await, "* OK IMAP4 ready\r\n");
    c.send(&format!("a1 LOGIN {user} {password}\r\n")).await;
    assert_eq!(
        c.line().await,
        "a1 OK [CAPABILITY IMAP4rev1 IDLE] Logged in\r\n"
    );
    c
}

pub async fn peers() -> (FakeBackend, FakeAuth) {
    let backend = FakeBackend::start(BackendScript::Good { big: 0 }).await;
    let answers = HashMap::from([("alice".to_string(), vec![AuthAnswer::ok(backend.addr)])]);
    let auth = FakeAuth::start(answers).await;
    (backend, auth)
}

/// Kills a daemonised mailproxy, found through its pid file, if a test fails.
pub struct Daemon(pub PathBuf);

impl Drop for Daemon {
    fn drop(&mut self) {
        let pid = std::fs::read_to_string(&self.0).ok();
        if let Some(pid) = pid.and_then(|p| p.trim().parse::<libc::pid_t>().ok()) {
            // SAFETY: signalling the process our test started.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

/// The worker processes of master `pid` (its children), waiting up to 5 s for `want`.
pub fn workers_of(pid: u32, want: usize) -> Vec<u32> {
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let children =
            std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        let found: Vec<u32> = children
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
        if found.len() >= want || Instant::now() > until {
            return found;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts mailproxy on [`write_conf`]'s config with `main_extra`; waits for `ports`.
pub fn start_with(main_extra: &str, body: &str, ports: &[u16]) -> Proxy {
    let dir = TempDir::new("proxy");
    let conf = write_conf(&dir.0, main_extra, 1024, body);
    Proxy::spawn(dir, &conf, ports)
}

/// Whether `pid` still runs. A zombie counts as gone: it holds no socket any more, and
/// a worker whose master was killed is reaped by whatever init the machine has, which
/// may take its time.
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name, which is in parentheses and may hold any
        // byte: read it after the last `)`.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Waits up to `within` for every pid in `pids` to be gone.
pub fn all_gone(pids: &[u32], within: Duration) -> bool {
    let until = Instant::now() + within;
    while pids.iter().any(|p| alive(*p)) {
        if Instant::now() > until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}
