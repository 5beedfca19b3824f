//! What `-t` checks after `syntax is ok`, in nginx's order: the pid file, the error
//! logs, the listen addresses. nginx's `-t` creates the pid file, opens (creating)
//! every log and binds every listening socket; an admin runs `-t` before a restart
//! precisely to learn that `/run/mailproxy/` is missing or that the address is not
//! configured yet, so mailproxy checks the same things with nginx's messages, with as
//! few side effects as each check allows:
//!
//! - pid file: the directory must exist and be writable (or the file be openable for
//!   writing); the file is not created, since a pid file without a running process
//!   misleads `-s` and init scripts.
//! - error logs: opened for appending, created if missing, as nginx and as start-up
//!   would; nothing is written.
//! - TCP listens: bound and closed at once, never `listen()`ed, so no client can
//!   connect; `EADDRINUSE` is ignored (the running instance holds the port), as in
//!   nginx's `-t`. Only a bind says whether an address is local (a non-local bind
//!   may be allowed by `ip_nonlocal_bind`), and this one is invisible to clients.
//! - unix listens: the socket's directory must exist and be writable; no socket file
//!   is created (nginx's `-t` leaves one behind).

use super::model::{Config, ListenAddr, LogSink, LogTarget};
use super::parser::os_error;
use super::sockets::nginx_sockets;
use super::{Diagnostic, LogLevel};
use socket2::{Domain, Socket, Type};
use std::io;
use std::net::SocketAddr;
use std::path::Path;

/// The checks, stopping at the first failure (located nowhere, as nginx's).
pub fn check(config: &Config) -> Result<(), Diagnostic> {
    let fail = |message: String| Diagnostic {
        level: LogLevel::Emerg,
        message,
        location: None,
    };
    writable_file(&config.pid).map_err(|e| {
        fail(format!(
            "open() \"{}\" failed ({})",
            config.pid.display(),
            os_error(&e)
        ))
    })?;
    let servers = config.servers.iter().flat_map(|s| s.error_log.iter());
    for target in config.error_log.iter().chain(servers) {
        if let LogTarget {
            sink: LogSink::File(path),
            ..
        } = target
        {
            open_log(path).map_err(|e| {
                fail(format!(
                    "open() \"{}\" failed ({})",
                    path.display(),
                    os_error(&e)
                ))
            })?;
        }
    }
    for listen in nginx_sockets(config) {
        let tried = match &listen.addr {
            ListenAddr::Tcp(addr) => bind_and_close(*addr, listen.ipv6only),
            ListenAddr::Unix(path) => writable_dir(path),
        };
        tried.map_err(|e| {
            fail(format!(
                "bind() to {} failed ({})",
                listen.addr,
                os_error(&e)
            ))
        })?;
    }
    Ok(())
}

/// Whether `path` could be opened for writing (created if missing), creating nothing.
fn writable_file(path: &Path) -> io::Result<()> {
    if path.exists() {
        return std::fs::OpenOptions::new().write(true).open(path).map(drop);
    }
    writable_dir(path)
}

/// Whether a file could be created at `path`: its directory exists, is one, and the
/// process may write into it.
fn writable_dir(path: &Path) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !std::fs::metadata(dir)?.is_dir() {
        return Err(io::Error::from_raw_os_error(libc::ENOTDIR));
    }
    let c_dir = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: `c_dir` is a valid NUL-terminated string that outlives the call.
    if unsafe { libc::access(c_dir.as_ptr(), libc::W_OK | libc::X_OK) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Opens a log as nginx does (`O_WRONLY|O_APPEND|O_CREAT`, 0644).
fn open_log(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o644)
        .open(path)
        .map(drop)
}

/// Binds a socket to `addr` with nginx's options and closes it.
fn bind_and_close(addr: SocketAddr, ipv6only: bool) -> io::Result<()> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(ipv6only)?;
    }
    match socket.bind(&addr.into()) {
        Err(e) if e.raw_os_error() == Some(libc::EADDRINUSE) => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{check_system, load_str};
    use std::path::{Path, PathBuf};

    /// A scratch directory named after the test, removed first.
    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("mailproxy-probe-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// `-t`'s system checks on a config whose main context is `main` and whose one
    /// server has `server` (a listen among it).
    fn probe(dir: &Path, main: &str, server: &str) -> Result<(), String> {
        let text = format!(
            "{main}\nevents {{}}\nmail {{\nauth_http 127.0.0.1:9;\nserver {{ protocol imap; {server} }}\n}}\n"
        );
        let loaded = load_str(&text, &dir.join("nginx.conf")).map_err(|e| e.to_string())?;
        let failed = check_system(loaded).err();
        match failed {
            Some(e) => {
                assert!(e.after_syntax_ok, "printed after syntax is ok");
                Err(e.to_string())
            }
            None => Ok(()),
        }
    }

    #[test]
    fn pid_and_logs_as_nginx_opens_them() {
        let dir = scratch("files");
        let d = dir.display();
        let listen = "listen 127.0.0.1:48190;";
        assert_eq!(probe(&dir, &format!("pid {d}/m.pid;"), listen), Ok(()));
        assert!(!dir.join("m.pid").exists(), "the pid file is not created");
        assert_eq!(
            probe(&dir, &format!("pid {d}/no/m.pid;"), listen),
            Err(format!(
                "open() \"{d}/no/m.pid\" failed (2: No such file or directory)"
            ))
        );
        let pid = format!("pid {d}/m.pid;");
        let log = format!("{listen} error_log {d}/imap.log;");
        assert_eq!(
            probe(&dir, &format!("{pid} error_log {d}/main.log;"), &log),
            Ok(())
        );
        assert!(dir.join("main.log").exists() && dir.join("imap.log").exists());
        let log = format!("{listen} error_log {d}/no/imap.log;");
        assert_eq!(
            probe(&dir, &pid, &log),
            Err(format!(
                "open() \"{d}/no/imap.log\" failed (2: No such file or directory)"
            ))
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn listens_as_nginx_binds_them() {
        let dir = scratch("listens");
        let d = dir.display();
        let pid = format!("pid {d}/m.pid;");
        assert_eq!(
            probe(&dir, &pid, "listen 192.0.2.1:48191;"),
            Err("bind() to 192.0.2.1:48191 failed (99: Cannot assign requested address)".into())
        );
        // Served through the wildcard of its port: nginx binds only the wildcard.
        assert_eq!(
            probe(&dir, &pid, "listen 192.0.2.1:48191; listen *:48191;"),
            Ok(())
        );
        // A port in use (by the running instance) is no error.
        let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = held.local_addr().unwrap().port();
        assert_eq!(
            probe(&dir, &pid, &format!("listen 127.0.0.1:{port};")),
            Ok(())
        );
        assert_eq!(
            probe(&dir, &pid, &format!("listen unix:{d}/no/imap.sock;")),
            Err(format!(
                "bind() to unix:{d}/no/imap.sock failed (2: No such file or directory)"
            ))
        );
        assert_eq!(
            probe(&dir, &pid, &format!("listen unix:{d}/imap.sock;")),
            Ok(())
        );
        assert!(!dir.join("imap.sock").exists(), "no socket file is left");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
