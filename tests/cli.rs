//! nginx's command line through the real binary: `-t`, `-T`, `-q`, `-p`, `-g`, `-e`,
//! and `error_log syslog:` to a loopback UDP socket.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::*;

const GOOD: &str = "daemon off;\nevents { worker_connections 64; }\nmail {\n    include auth.conf;\n    server { listen 127.0.0.1:PORT; protocol imap; }\n}\n";
const AUTH: &str = "auth_http 127.0.0.1:9/auth;\n";

fn mailproxy(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mailproxy"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// A directory with nginx.conf (including auth.conf) on a free port.
fn good_dir() -> (TempDir, String) {
    let dir = TempDir::new("cli");
    let text = GOOD.replace("PORT", &free_port().to_string());
    std::fs::write(dir.0.join("nginx.conf"), &text).unwrap();
    std::fs::write(dir.0.join("auth.conf"), AUTH).unwrap();
    (dir, text)
}

/// stderr without the variable `YYYY/MM/DD HH:MM:SS ` and `PID#TID: ` parts of
/// error-log lines: `[level] message`.
fn masked(stderr: &[u8]) -> String {
    String::from_utf8_lossy(stderr)
        .lines()
        .map(|l| {
            let is_log = l.len() > 21 && &l[4..5] == "/" && &l[19..21] == " [";
            match (is_log, l.find("] ")) {
                (true, Some(level_end)) => {
                    let rest = &l[level_end + 2..];
                    let message = rest.split_once(": ").map_or(rest, |(_, m)| m);
                    format!("{} {message}\n", &l[20..=level_end])
                }
                _ => format!("{l}\n"),
            }
        })
        .collect()
}

#[test]
fn t_prints_nginx_banners_and_q_hides_them() {
    let (dir, _) = good_dir();
    let conf = dir.0.join("nginx.conf");
    let c = conf.to_str().unwrap();
    let out = mailproxy(&["-t", "-c", c], &dir.0);
    assert!(out.status.success());
    assert_eq!(
        masked(&out.stderr),
        format!(
            "mailproxy: the configuration file {c} syntax is ok\n\
             mailproxy: configuration file {c} test is successful\n"
        )
    );
    assert!(out.stdout.is_empty());
    let out = mailproxy(&["-tq", "-c", c], &dir.0);
    assert!(out.status.success());
    assert_eq!(masked(&out.stderr), "");
}

#[test]
fn q_keeps_warnings_and_errors() {
    let dir = TempDir::new("cliq");
    let port = free_port();
    let text = format!(
        "events {{}}\nmail {{ auth_http 127.0.0.1:9; server {{ listen 127.0.0.1:{port}; protocol imap; ssl off; }} }}\n"
    );
    std::fs::write(dir.0.join("w.conf"), text).unwrap();
    let c = dir.0.join("w.conf");
    let c = c.to_str().unwrap();
    let out = mailproxy(&["-q", "-t", "-c", c], &dir.0);
    assert!(out.status.success());
    assert_eq!(
        masked(&out.stderr),
        format!("[warn] the \"ssl\" directive is deprecated, use the \"listen ... ssl\" directive instead in {c}:2\n")
    );
    std::fs::write(dir.0.join("w.conf"), "events {}\nmail { timeout 1x; }\n").unwrap();
    let out = mailproxy(&["-q", "-t", "-c", c], &dir.0);
    assert!(!out.status.success());
    assert_eq!(
        masked(&out.stderr),
        format!(
            "[emerg] \"timeout\" directive invalid value in {c}:2\n\
             mailproxy: configuration file {c} test failed\n"
        )
    );
}

#[test]
fn big_t_dumps_every_file_read_in_nginx_format() {
    let (dir, text) = good_dir();
    let conf = dir.0.join("nginx.conf");
    let c = conf.to_str().unwrap();
    let out = mailproxy(&["-T", "-c", c], &dir.0);
    assert!(out.status.success());
    let expected = format!(
        "# configuration file {c}:\n{text}\n# configuration file {}/auth.conf:\n{AUTH}\n",
        dir.0.display()
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), expected);
    assert!(masked(&out.stderr).ends_with("test is successful\n"));
    // -q hides the banners but not the dump, as in nginx.
    let out = mailproxy(&["-Tq", "-c", c], &dir.0);
    assert_eq!(String::from_utf8_lossy(&out.stdout), expected);
    assert_eq!(masked(&out.stderr), "");
}

#[test]
fn p_is_the_base_of_a_relative_c() {
    let (dir, _) = good_dir();
    let d = dir.0.to_str().unwrap();
    let out = mailproxy(&["-t", "-p", d, "-c", "nginx.conf"], Path::new("/"));
    assert!(out.status.success(), "{}", masked(&out.stderr));
    assert!(masked(&out.stderr).contains(&format!("file {d}/nginx.conf syntax is ok")));
    // Without -p, a relative -c is under the compiled-in prefix, not the cwd.
    let out = mailproxy(&["-t", "-c", "nginx.conf"], &dir.0);
    assert_eq!(
        masked(&out.stderr),
        "[emerg] open() \"/usr/share/nginx/nginx.conf\" failed (2: No such file or directory)\n\
         mailproxy: configuration file /usr/share/nginx/nginx.conf test failed\n"
    );
}

#[test]
fn g_directives_stand_before_the_file() {
    let (dir, _) = good_dir();
    let c = dir.0.join("nginx.conf");
    let c = c.to_str().unwrap();
    let run = |g: &str| masked(&mailproxy(&["-t", "-c", c, "-g", g], &dir.0).stderr);
    assert!(run("pid x.pid;").ends_with("test is successful\n"));
    let failed = format!("mailproxy: configuration file {c} test failed\n");
    assert_eq!(
        run("daemon on;"),
        format!("[emerg] \"daemon\" directive is duplicate in {c}:1\n{failed}")
    );
    assert_eq!(
        run("bogus 1;"),
        format!("[emerg] unknown directive \"bogus\" in command line\n{failed}")
    );
    assert_eq!(
        run("pid x.pid"),
        format!("[emerg] unexpected end of parameter, expecting \";\" in command line\n{failed}")
    );
    assert_eq!(
        run("events {}"),
        format!(
            "[emerg] block directives are not supported in -g option in command line\n{failed}"
        )
    );
}

#[test]
fn e_receives_start_up_errors() {
    let dir = TempDir::new("clie");
    std::fs::write(dir.0.join("bad.conf"), "events {}\nnope;\n").unwrap();
    let c = dir.0.join("bad.conf");
    let out = mailproxy(
        &[
            "-e",
            "start.log",
            "-p",
            dir.0.to_str().unwrap(),
            "-c",
            c.to_str().unwrap(),
        ],
        &dir.0,
    );
    assert!(!out.status.success());
    let log = std::fs::read_to_string(dir.0.join("start.log")).unwrap();
    assert_eq!(
        masked(log.as_bytes()),
        format!("[emerg] unknown directive \"nope\" in {}:2\n", c.display())
    );
}

#[test]
fn error_log_syslog_sends_rfc3164_datagrams() {
    let sink = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sink.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let port = free_port();
    let dir = TempDir::new("clisys");
    let text = format!(
        "daemon off;\npid {}/mp.pid;\nerror_log syslog:server={},facility=mail,tag=mp,nohostname info;\n\
         events {{}}\nmail {{ auth_http 127.0.0.1:9; server {{ listen 127.0.0.1:{port}; protocol imap; }} }}\n",
        dir.0.display(),
        sink.local_addr().unwrap()
    );
    let conf = dir.0.join("nginx.conf");
    std::fs::write(&conf, text).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mailproxy"))
        .arg("-c")
        .arg(&conf)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let until = std::time::Instant::now() + Duration::from_secs(5);
    let conn = loop {
        if let Ok(s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            break s;
        }
        assert!(std::time::Instant::now() < until, "never listened");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut buf = [0u8; 4096];
    // The master's notices (`start worker processes`, ...) come first.
    let datagram = loop {
        let n = sink.recv(&mut buf).expect("no datagram");
        let datagram = String::from_utf8_lossy(&buf[..n]).into_owned();
        if datagram.contains(" [info] ") {
            break datagram;
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    drop(conn);
    // <mail(2)*8 + info(6)>MMM dd hh:mm:ss mp: YYYY/MM/DD hh:mm:ss [info] PID#TID: *1 client ...
    assert!(datagram.starts_with("<22>"), "{datagram}");
    assert_eq!(&datagram[19..24], " mp: ", "{datagram}");
    assert_eq!(&datagram[24 + 4..24 + 5], "/", "{datagram}");
    assert!(datagram.contains(" [info] "), "{datagram}");
    assert!(
        datagram.contains(&format!("connected to 127.0.0.1:{port}")),
        "{datagram}"
    );
}
