//! nginx's process model through the real binary, started as root: a root master and
//! `nobody` workers, who alone hold client sockets; a killed worker replaced while
//! the other worker's sessions live on; reload drains old workers (bounded by
//! `worker_shutdown_timeout` when set); files 0644 whatever the umask, also after
//! `-s reopen`.

mod common;

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::lifecycle::*;
use common::*;

/// Only root can start a master whose workers drop to `nobody`.
fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// `nobody`'s uid and `nogroup`'s gid: nginx's default worker credentials on Debian.
fn nobody() -> (u32, u32) {
    // SAFETY: the returned pointers are read at once.
    unsafe {
        let pw = libc::getpwnam(c"nobody".as_ptr());
        let gr = libc::getgrnam(c"nogroup".as_ptr());
        assert!(!pw.is_null() && !gr.is_null());
        ((*pw).pw_uid, (*gr).gr_gid)
    }
}

/// A `Status:` field of /proc/PID/status: `[real, effective, saved, fs]`.
fn ids(pid: u32, field: &str) -> Vec<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace()
        .skip(1)
        .map(|n| n.parse().unwrap())
        .collect()
}

/// Starts a master on a config with `main_extra` in the main context.
fn start_master(main_extra: &str, body: &str, port: u16) -> Proxy {
    start_with(main_extra, body, &[port])
}

/// Who holds the proxy's side of each established connection on `port`: the client's
/// port → the pid of the process holding that socket.
fn socket_holders(port: u16) -> HashMap<u16, u32> {
    // inode → the client's port, for sockets whose local port is `port`.
    let mut inodes = HashMap::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let local_port = u16::from_str_radix(f[1].rsplit(':').next().unwrap(), 16).unwrap();
            let remote_port = u16::from_str_radix(f[2].rsplit(':').next().unwrap(), 16).unwrap();
            if local_port == port && f[3] == "01" {
                inodes.insert(format!("socket:[{}]", f[9]), remote_port);
            }
        }
    }
    let mut holders = HashMap::new();
    for proc_entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = proc_entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            if let Some(&client) = inodes.get(target.to_string_lossy().as_ref()) {
                holders.insert(client, pid);
            }
        }
    }
    holders
}

/// A master with two workers as `nobody` (root only), its peers and its port.
async fn two_workers() -> Option<((FakeBackend, FakeAuth), u16, Proxy)> {
    if !is_root() {
        return None;
    }
    let (backend, auth) = peers().await;
    let port = free_port();
    let proxy = start_master("worker_processes 2;", &imap_server(port, auth.addr), port);
    Some(((backend, auth), port, proxy))
}

async fn local_port(c: &Client) -> u16 {
    c.w.local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread")]
async fn workers_run_as_nobody_and_only_they_hold_client_sockets() {
    let Some((_peers, port, proxy)) = two_workers().await else {
        return eprintln!("skipped: needs root");
    };
    let master = proxy.child.id();
    let workers = workers_of(master, 2);
    assert_eq!(workers.len(), 2, "worker_processes 2");
    assert_eq!(ids(master, "Uid:"), [0, 0, 0, 0], "the master stays root");
    let (uid, gid) = nobody();
    for &w in &workers {
        assert_eq!(ids(w, "Uid:"), [uid; 4], "worker {w} runs as nobody");
        assert_eq!(ids(w, "Gid:"), [gid; 4], "worker {w} runs as nogroup");
    }
    let mut sessions = Vec::new();
    for _ in 0..6 {
        sessions.push(logged_in(port).await);
    }
    let holders = socket_holders(port);
    for c in &sessions {
        let client = local_port(c).await;
        let holder = holders.get(&client).copied();
        let holder = holder.unwrap_or_else(|| panic!("no process holds client {client}"));
        assert_ne!(holder, master, "the master holds a client socket");
        assert_eq!(
            ids(holder, "Uid:")[1],
            uid,
            "a client socket in a root process"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_worker_is_replaced_and_the_other_workers_sessions_live_on() {
    let Some((_peers, port, proxy)) = two_workers().await else {
        return eprintln!("skipped: needs root");
    };
    let master = proxy.child.id();
    assert_eq!(workers_of(master, 2).len(), 2);
    // 50 logins at once usually land on both workers; on a loaded machine one may take
    // the whole burst, so more come one at a time until both serve.
    let mut sessions = futures_join(50, port).await;
    let (mut holders, mut by_worker) = (HashMap::new(), HashMap::new());
    for _ in 0..100 {
        holders = socket_holders(port);
        by_worker = HashMap::<u32, usize>::new();
        for c in &sessions {
            *by_worker.entry(holders[&local_port(c).await]).or_default() += 1;
        }
        if by_worker.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        sessions.push(logged_in(port).await);
    }
    assert_eq!(by_worker.len(), 2, "both workers serve: {by_worker:?}");
    let victim = *by_worker.keys().next().unwrap();
    // SAFETY: signalling a worker of the proxy this test started.
    assert_eq!(
        unsafe { libc::kill(victim as libc::pid_t, libc::SIGKILL) },
        0
    );
    let log = wait_log(
        &proxy,
        &format!("worker process {victim} exited on signal 9"),
    );
    assert!(log.contains("[alert]"), "{log}");
    // A new login works within 2 s.
    let until = Instant::now() + Duration::from_secs(2);
    let mut fresh = logged_in(port).await;
    assert!(Instant::now() < until, "no login within 2 s of the kill");
    fresh.send("f NOOP\r\n").await;
    assert_eq!(fresh.line().await, "f OK done f NOOP\r\n");
    let (mut alive, mut cut) = (0, 0);
    for c in &mut sessions {
        let served_by = holders[&local_port(c).await];
        c.send("n NOOP\r\n").await;
        let reply = c.line().await;
        if served_by == victim {
            assert_eq!(reply, "", "a session of the killed worker answered");
            cut += 1;
        } else {
            assert_eq!(
                reply, "n OK done n NOOP\r\n",
                "a live worker's session died"
            );
            alive += 1;
        }
    }
    assert_eq!(alive + cut, sessions.len());
    assert!(sessions.len() >= 50);
    assert_eq!(
        workers_of(master, 2).len(),
        2,
        "the killed worker was replaced"
    );
}

/// `n` logged-in sessions, opened concurrently.
async fn futures_join(n: usize, port: u16) -> Vec<Client> {
    let tasks: Vec<_> = (0..n).map(|_| tokio::spawn(logged_in(port))).collect();
    let mut out = Vec::with_capacity(n);
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

/// A logged-in session, then HUP: the session and the pid of its (now old) worker,
/// once that worker has been told to stop.
async fn reload_with_session(proxy: &Proxy, port: u16) -> (Client, u32) {
    let session = logged_in(port).await;
    let old = socket_holders(port)[&local_port(&session).await];
    kill(proxy, libc::SIGHUP);
    let log = wait_log(proxy, &format!("{old}#{old}: gracefully shutting down"));
    assert!(log.contains("reconfiguring"), "{log}");
    (session, old)
}

#[tokio::test(flavor = "multi_thread")]
async fn reload_without_worker_shutdown_timeout_never_drops_a_session() {
    let (_backend, auth) = peers().await;
    let port = free_port();
    let proxy = start_master("", &imap_server(port, auth.addr), port);
    let (mut session, old) = reload_with_session(&proxy, port).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    session.send("s NOOP\r\n").await;
    assert_eq!(session.line().await, "s OK done s NOOP\r\n");
    assert!(
        !proxy
            .log_text()
            .contains(&format!("worker process {old} exited")),
        "the old worker left with a session"
    );
    // The new generation serves new logins meanwhile.
    let mut new = logged_in(port).await;
    new.send("t NOOP\r\n").await;
    assert_eq!(new.line().await, "t OK done t NOOP\r\n");
    assert_ne!(socket_holders(port)[&local_port(&new).await], old);
    session.send("z LOGOUT\r\n").await;
    drop(session);
    let log = wait_log(&proxy, &format!("worker process {old} exited with code 0"));
    assert!(log.contains(&format!("{old}#")), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn reload_with_worker_shutdown_timeout_closes_what_is_left() {
    let (_backend, auth) = peers().await;
    let port = free_port();
    let proxy = start_master(
        "worker_shutdown_timeout 1s;",
        &imap_server(port, auth.addr),
        port,
    );
    let (mut session, old) = reload_with_session(&proxy, port).await;
    let started = Instant::now();
    assert!(
        session.closed().await,
        "the old session outlived the timeout"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(800),
        "closed too early"
    );
    let log = wait_log(&proxy, &format!("worker process {old} exited with code 0"));
    assert!(log.contains("worker_shutdown_timeout expired"), "{log}");
}

fn mode_and_owner(path: &Path) -> (u32, u32) {
    let meta = std::fs::metadata(path).unwrap();
    (meta.mode() & 0o777, meta.uid())
}

#[tokio::test(flavor = "multi_thread")]
async fn files_are_0644_under_umask_077_and_after_reopen() {
    if !is_root() {
        return eprintln!("skipped: needs root");
    }
    let (_backend, auth) = peers().await;
    let port = free_port();
    let dir = TempDir::new("modes");
    let conf = write_conf(&dir.0, "", 64, &imap_server(port, auth.addr));
    let text = std::fs::read_to_string(&conf).unwrap();
    std::fs::write(&conf, text.replace("daemon off;", "daemon on;")).unwrap();
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "umask 077; exec {} -c {}",
            env!("CARGO_BIN_EXE_mailproxy"),
            conf.display()
        ))
        .status()
        .unwrap();
    assert!(status.success());
    let pid_file = dir.0.join("mailproxy.pid");
    let _daemon = Daemon(pid_file.clone());
    wait_port(port);
    // The socket is bound before the fork, the pid file written after it.
    let until = Instant::now() + Duration::from_secs(5);
    while !pid_file.exists() {
        assert!(Instant::now() < until, "no pid file");
        std::thread::sleep(Duration::from_millis(20));
    }
    let log = dir.0.join("error.log");
    assert_eq!(mode_and_owner(&pid_file), (0o644, 0));
    assert_eq!(mode_and_owner(&log), (0o644, 0));
    let master: u32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let status = std::fs::read_to_string(format!("/proc/{master}/status")).unwrap();
    assert!(status.contains("Umask:\t0022"), "the daemon's umask is 022");
    // Rotation: move the log away, reopen, and the new file is 0644, owned by the
    // workers' user (nginx hands it over so that they can reopen it too).
    std::fs::rename(&log, dir.0.join("error.log.1")).unwrap();
    assert!(signal_cmd(&conf, "reopen"));
    let until = Instant::now() + Duration::from_secs(5);
    while !log.exists() || mode_and_owner(&log).1 == 0 {
        assert!(
            Instant::now() < until,
            "no new log owned by nobody after -s reopen"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(mode_and_owner(&log), (0o644, nobody().0));
    let mut c = Client::connect(port).await;
    assert_eq!(c.line().await, "* OK IMAP4 ready\r\n");
    assert!(signal_cmd(&conf, "stop"));
    assert!(refused(port));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_master_takes_its_workers_with_it() {
    let (_backend, auth) = peers().await;
    let port = free_port();
    let mut proxy = start_master("worker_processes 2;", &imap_server(port, auth.addr), port);
    let workers = workers_of(proxy.child.id(), 2);
    assert_eq!(workers.len(), 2);
    proxy.child.kill().unwrap();
    proxy.child.wait().unwrap();
    assert!(
        all_gone(&workers, Duration::from_secs(3)),
        "workers outlived the master"
    );
    assert!(refused(port), "the port is still held");
}

#[tokio::test(flavor = "multi_thread")]
async fn term_ends_a_draining_worker_at_once() {
    let (_backend, auth) = peers().await;
    let port = free_port();
    let proxy = start_master("", &imap_server(port, auth.addr), port);
    let (mut session, old) = reload_with_session(&proxy, port).await;
    // SAFETY: signalling the old worker of the proxy this test started.
    assert_eq!(unsafe { libc::kill(old as libc::pid_t, libc::SIGTERM) }, 0);
    assert!(
        session.closed().await,
        "the draining worker kept its session"
    );
    let log = wait_log(&proxy, &format!("worker process {old} exited with code 0"));
    assert!(log.contains(&format!("{old}#{old}: exiting")), "{log}");
}
