//! Process behaviour through the real binary: HUP reload (listeners added, removed,
//! kept; running sessions untouched; a broken config keeps the old one), `-s`
//! through the pid file, graceful QUIT, the worker_connections cap.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::lifecycle::*;
use common::*;

#[tokio::test(flavor = "multi_thread")]
async fn hup_adds_and_removes_listeners_and_running_sessions_continue() {
    hup_scenario("").await;
}

/// `master_process off`: the one process reloads in place (its blocking work on the
/// blocking pool), with the same outcome.
#[tokio::test(flavor = "multi_thread")]
async fn single_process_hup_reloads_in_place() {
    hup_scenario("master_process off;").await;
}

async fn hup_scenario(main_extra: &str) {
    let (_backend, auth) = peers().await;
    let (kept, removed, added) = (free_port(), free_port(), free_port());
    let body = format!(
        "{}\n{}",
        imap_server(kept, auth.addr),
        imap_server(removed, auth.addr)
    );
    let proxy = start_with(main_extra, &body, &[kept, removed]);
    let workers = workers_of(proxy.child.id(), 1).len();
    assert_eq!(
        workers,
        usize::from(main_extra.is_empty()),
        "worker processes"
    );
    let mut old = logged_in(kept).await;

    let body = format!(
        "{}\n{}",
        imap_server(kept, auth.addr),
        imap_server(added, auth.addr)
    );
    let conf = write_conf(&proxy.dir.0, main_extra, 1024, &body);
    assert!(signal_cmd(&conf, "reload"));
    let log = wait_log(&proxy, "signal 1 (SIGHUP) received, reconfiguring");
    assert!(log.contains("[notice]"), "{log}");
    wait_port(added);
    assert!(refused(removed), "the removed listener still accepts");
    let mut fresh = Client::connect(kept).await;
    assert_eq!(fresh.line().await, "* OK IMAP4 ready\r\n");
    old.send("b1 NOOP\r\n").await;
    assert_eq!(old.line().await, "b1 OK done b1 NOOP\r\n");

    // A broken config: the old one keeps serving, and the log says why.
    let broken = format!("{}\nbogus_directive on;", imap_server(kept, auth.addr));
    write_conf(&proxy.dir.0, main_extra, 1024, &broken);
    // `-s reload` reads the config first and refuses a broken one, as nginx's does;
    // a bare HUP makes the running process find out for itself.
    assert!(!signal_cmd(&conf, "reload"));
    kill(&proxy, libc::SIGHUP);
    let log = wait_log(&proxy, "unknown directive \"bogus_directive\"");
    let expected = format!(
        "[emerg] {}#", // pid#tid follows
        proxy.child.id()
    );
    let line = log
        .lines()
        .find(|l| l.contains("bogus_directive"))
        .unwrap_or_else(|| panic!("no error logged: {log}"));
    assert!(line.contains(&expected), "{line}");
    assert!(
        line.ends_with(&format!(
            ": unknown directive \"bogus_directive\" in {}:9",
            conf.display()
        )),
        "{line}"
    );
    for port in [kept, added] {
        let mut c = Client::connect(port).await;
        assert_eq!(c.line().await, "* OK IMAP4 ready\r\n");
    }
    old.send("c1 NOOP\r\n").await;
    assert_eq!(old.line().await, "c1 OK done c1 NOOP\r\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn s_quit_stops_listening_and_waits_for_sessions() {
    let (_backend, auth) = peers().await;
    let port = free_port();
    let mut proxy = Proxy::start(&imap_server(port, auth.addr), &[port]);
    let conf = proxy.dir.0.join("nginx.conf");
    let mut session = logged_in(port).await;
    assert!(signal_cmd(&conf, "quit"));
    wait_log(&proxy, "signal 3 (SIGQUIT) received, shutting down");
    assert!(refused(port), "still listening after QUIT");
    session.send("b1 NOOP\r\n").await;
    assert_eq!(session.line().await, "b1 OK done b1 NOOP\r\n");
    assert!(
        wait_exit(&mut proxy, Duration::from_millis(300)).is_none(),
        "exited under a session"
    );
    session.send("z LOGOUT\r\n").await;
    drop(session);
    let status =
        wait_exit(&mut proxy, Duration::from_secs(3)).expect("no exit after the last session");
    assert!(status.success());
    assert!(
        !proxy.dir.0.join("mailproxy.pid").exists(),
        "pid file left behind"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn worker_shutdown_timeout_bounds_a_graceful_stop() {
    let (_backend, auth) = peers().await;
    let port = free_port();
    let mut proxy = Proxy::start(&imap_server(port, auth.addr), &[port]);
    let conf = write_conf(
        &proxy.dir.0,
        "worker_shutdown_timeout 300ms;",
        1024,
        &imap_server(port, auth.addr),
    );
    restart(&mut proxy, &conf);
    wait_port(port);
    let mut session = logged_in(port).await;
    let start = Instant::now();
    assert!(signal_cmd(&conf, "quit"));
    assert!(session.closed().await, "session not cut");
    let status = wait_exit(&mut proxy, Duration::from_secs(3)).expect("no exit");
    assert!(status.success());
    assert!(
        start.elapsed() >= Duration::from_millis(250),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn s_stop_exits_at_once_and_s_reopen_reopens_the_log() {
    let (_backend, auth) = peers().await;
    let port = free_port();
    let mut proxy = Proxy::start(&imap_server(port, auth.addr), &[port]);
    let conf = proxy.dir.0.join("nginx.conf");
    let rotated = proxy.dir.0.join("error.log.1");
    std::fs::rename(&proxy.log, &rotated).unwrap();
    assert!(signal_cmd(&conf, "reopen"));
    let until = Instant::now() + Duration::from_secs(2);
    while !std::fs::read_to_string(&rotated)
        .unwrap()
        .contains("signal 10 (SIGUSR1) received, reopening logs")
    {
        assert!(Instant::now() < until, "USR1 not logged");
        std::thread::sleep(Duration::from_millis(20));
    }
    let _session = logged_in(port).await;
    let log = wait_log(&proxy, "client logged in");
    assert!(
        log.contains("connected to"),
        "new log file not written: {log:?}"
    );
    assert!(signal_cmd(&conf, "stop"));
    let status = wait_exit(&mut proxy, Duration::from_secs(2)).expect("stop did not stop");
    assert!(status.success());
    assert!(refused(port));
}

#[test]
fn s_without_a_running_instance_names_the_pid_file() {
    let dir = TempDir::new("nopid");
    let conf = write_conf(&dir.0, "", 64, "");
    let out = Command::new(env!("CARGO_BIN_EXE_mailproxy"))
        .args(["-s", "reload", "-c"])
        .arg(&conf)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let expected = format!(
        ": open() \"{}/mailproxy.pid\" failed (2: No such file or directory)\n",
        dir.0.display()
    );
    assert!(err.contains("[error]") && err.ends_with(&expected), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn worker_connections_caps_client_connections() {
    let (_backend, auth) = peers().await;
    let port = free_port();
    let mut proxy = Proxy::start(&imap_server(port, auth.addr), &[port]);
    let conf = write_conf(&proxy.dir.0, "", 2, &imap_server(port, auth.addr));
    restart(&mut proxy, &conf);
    wait_port(port);
    // wait_port's probe connection may still hold a slot for a moment.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut first = Client::connect(port).await;
    assert_eq!(first.line().await, "* OK IMAP4 ready\r\n");
    let mut second = Client::connect(port).await;
    assert_eq!(second.line().await, "* OK IMAP4 ready\r\n");
    let mut third = Client::connect(port).await;
    assert!(third.closed().await, "a third connection was served");
    let log = wait_log(&proxy, "2 worker_connections are not enough");
    assert!(log.contains("[alert]"), "{log}");
    drop(first);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut again = Client::connect(port).await;
    assert_eq!(again.line().await, "* OK IMAP4 ready\r\n");
    drop(second);
}

#[tokio::test(flavor = "multi_thread")]
async fn daemon_on_detaches_writes_the_pid_and_sets_the_file_limit() {
    let (_backend, auth) = peers().await;
    let port = free_port();
    let dir = TempDir::new("daemon");
    let conf = write_conf(&dir.0, "", 64, &imap_server(port, auth.addr));
    let text = std::fs::read_to_string(&conf)
        .unwrap()
        .replace("daemon off;", "daemon on;\nworker_rlimit_nofile 1000;");
    std::fs::write(&conf, text).unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_mailproxy"))
        .arg("-c")
        .arg(&conf)
        .status()
        .unwrap();
    assert!(status.success(), "the foreground parent should exit 0");
    let _daemon = Daemon(dir.0.join("mailproxy.pid"));
    wait_port(port);
    // The socket is bound before the fork, the pid file written after it.
    let until = Instant::now() + Duration::from_secs(2);
    while !dir.0.join("mailproxy.pid").exists() {
        assert!(Instant::now() < until, "no pid file");
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid_text = std::fs::read_to_string(dir.0.join("mailproxy.pid")).unwrap();
    let pid: u32 = pid_text.trim().parse().unwrap();
    assert_eq!(pid_text, format!("{pid}\n"));
    // worker_rlimit_nofile is the workers' limit, as in nginx.
    // A worker found at once may not have set it yet: poll.
    let worker = workers_of(pid, 1)[0];
    let open_files = || {
        let limits = std::fs::read_to_string(format!("/proc/{worker}/limits")).unwrap();
        let line = limits
            .lines()
            .find(|l| l.starts_with("Max open files"))
            .unwrap();
        line.split_whitespace()
            .skip(3)
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    };
    let until = Instant::now() + Duration::from_secs(5);
    while open_files() != "1000 1000" && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(open_files(), "1000 1000");
    let mut c = Client::connect(port).await;
    assert_eq!(c.line().await, "* OK IMAP4 ready\r\n");
    assert!(signal_cmd(&conf, "stop"));
    assert!(refused(port));
    let until = Instant::now() + Duration::from_secs(2);
    while dir.0.join("mailproxy.pid").exists() {
        assert!(Instant::now() < until, "pid file not removed at exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}
