//! The error log, in nginx's format, so that fail2ban filters and log shippers written
//! for nginx keep working:
//!
//! `2026/11/28 05:11:32 [info] 15176#15176: *1 client logged in, client: 127.0.0.1, server: 0.0.0.0:993, login: "alice"`
//!
//! The main log is process-wide: `-e` or stderr at start-up, the config's top-level
//! `error_log` once it is read, replaced on reload. A `server {}` (or `mail {}`) with its
//! own `error_log` gets a [`Log`] of its own, which its sessions write to instead. Every
//! log is reopened on demand (USR1 / `-s reopen`).

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};

use crate::config::{LogLevel, LogSink, LogTarget};
use crate::syslog;

enum Sink {
    Stderr,
    File { path: PathBuf, file: File },
    Syslog(syslog::Sender),
}

/// The current sink; `None` until [`init`], when messages go to stderr.
static SINK: RwLock<Option<Sink>> = RwLock::new(None);
/// The current level as `LogLevel as u8`, read on every message without a lock.
static LEVEL: AtomicU8 = AtomicU8::new(LogLevel::Error as u8);
/// While starting (until the pid file is written), warnings and worse also go to the
/// terminal as `mailproxy: [emerg] ...`, as nginx's `ngx_use_stderr` does: a failed
/// start is seen where the admin typed the command, not only in the log file.
static ECHO_TO_STDERR: AtomicBool = AtomicBool::new(false);

/// A log of its own, for a server block with its own `error_log`.
pub struct Log {
    sink: RwLock<Sink>,
    level: LogLevel,
}

/// Every [`Log`] alive, so a reopen reaches them all.
static SERVER_LOGS: Mutex<Vec<Weak<Log>>> = Mutex::new(Vec::new());

impl Log {
    /// Opens `target`; logs opened for the same target share nothing but the file.
    pub fn open(target: &LogTarget) -> std::io::Result<Arc<Log>> {
        let log = Arc::new(Log {
            sink: RwLock::new(open(&target.sink)?),
            level: target.level,
        });
        if let Ok(mut all) = SERVER_LOGS.lock() {
            all.retain(|w| w.strong_count() > 0);
            all.push(Arc::downgrade(&log));
        }
        Ok(log)
    }

    pub fn enabled(&self, level: LogLevel) -> bool {
        level <= self.level
    }

    /// Like [`write`], into this log.
    pub fn write(&self, level: LogLevel, message: &str) {
        if !self.enabled(level) {
            return;
        }
        if let Ok(sink) = self.sink.read() {
            write_line(Some(&*sink), level, &format_line(level, message));
        }
    }
}

/// Installs (or, on reload, replaces) the process-wide log. On failure the old one
/// stays, so a reload with an unwritable log path keeps logging somewhere.
pub fn init(target: &LogTarget) -> std::io::Result<()> {
    let sink = open(&target.sink)?;
    if let Ok(mut slot) = SINK.write() {
        *slot = Some(sink);
    }
    LEVEL.store(target.level as u8, Ordering::Relaxed);
    Ok(())
}

fn open(sink: &LogSink) -> std::io::Result<Sink> {
    Ok(match sink {
        LogSink::Stderr => Sink::Stderr,
        LogSink::File(path) => Sink::File {
            path: path.clone(),
            file: open_file(path)?,
        },
        LogSink::Syslog(spec) => {
            let params = syslog::parse(spec).map_err(std::io::Error::other)?;
            Sink::Syslog(syslog::Sender::connect(params)?)
        }
    })
}

fn open_file(path: &Path) -> std::io::Result<File> {
    crate::files::open_append(path)
}

/// Reopens every log file (after rotation: USR1 / `-s reopen`). The master passes the
/// workers' user as `owner`: as nginx's `ngx_reopen_files` does, a file not owned by
/// it is handed over (and made readable and writable by its owner), so that the
/// workers, who reopen next without root, can open the new file too.
pub fn reopen(owner: Option<libc::uid_t>) {
    let mut failures = Vec::new();
    if let Ok(mut slot) = SINK.write() {
        if let Some(sink) = slot.as_mut() {
            reopen_sink(sink, owner, &mut failures);
        }
    }
    let logs: Vec<Arc<Log>> = match SERVER_LOGS.lock() {
        Ok(all) => all.iter().filter_map(Weak::upgrade).collect(),
        Err(_) => Vec::new(),
    };
    for log in logs {
        if let Ok(mut sink) = log.sink.write() {
            reopen_sink(&mut sink, owner, &mut failures);
        }
    }
    // Logged once no sink is locked any more.
    for failure in failures {
        write(LogLevel::Emerg, &failure);
    }
}

fn reopen_sink(sink: &mut Sink, owner: Option<libc::uid_t>, failures: &mut Vec<String>) {
    if let Sink::File { path, file } = sink {
        match open_file(path) {
            Ok(f) => {
                if let Some(uid) = owner {
                    failures.extend(hand_over(&f, path, uid));
                }
                *file = f;
            }
            Err(e) => {
                let line = format!(
                    "open() \"{}\" failed ({})\n",
                    path.display(),
                    crate::config::parser::os_error(&e)
                );
                let _ = file.write_all(line.as_bytes());
            }
        }
    }
}

/// Gives a reopened log file to the workers' user `uid`, with `u+rw`; says what failed.
fn hand_over(file: &File, path: &Path, uid: libc::uid_t) -> Option<String> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let meta = file.metadata().ok()?;
    if meta.mode() & 0o600 != 0o600 {
        let _ = file.set_permissions(std::fs::Permissions::from_mode(meta.mode() | 0o600));
    }
    if meta.uid() == uid {
        return None;
    }
    let e = std::os::unix::fs::fchown(file, Some(uid), None).err()?;
    Some(format!(
        "chown(\"{}\", {uid}) failed ({})",
        path.display(),
        crate::config::parser::os_error(&e)
    ))
}

/// Writes one full log line to stderr whatever the main log is: `-s` reports on the
/// terminal, as nginx's signaller process does with its own start-up log.
pub fn write_to_stderr(level: LogLevel, message: &str) {
    let line = format!("{}\n", format_line(level, message));
    let _ = std::io::stderr().write_all(line.as_bytes());
}

/// Starts or stops the start-up echo of warnings and errors on stderr.
pub fn echo_to_stderr(on: bool) {
    ECHO_TO_STDERR.store(on, Ordering::Relaxed);
}

/// Points fd 2 at the log file, as nginx's `ngx_log_redirect_stderr` does once the
/// log is open: a daemon then holds no terminal or pipe, and a library's stray
/// stderr output lands in the log.
pub fn redirect_stderr() {
    use std::os::fd::AsRawFd;
    if let Ok(slot) = SINK.read() {
        if let Some(Sink::File { file, .. }) = slot.as_ref() {
            // SAFETY: dup2 onto fd 2 of an fd we own; no memory is involved.
            unsafe { libc::dup2(file.as_raw_fd(), libc::STDERR_FILENO) };
        }
    }
}

/// Whether a message of `level` would be written; lets callers skip formatting.
pub fn enabled(level: LogLevel) -> bool {
    level as u8 <= LEVEL.load(Ordering::Relaxed)
}

/// nginx's level names.
pub fn level_name(level: LogLevel) -> &'static str {
    match level {
        LogLevel::Emerg => "emerg",
        LogLevel::Alert => "alert",
        LogLevel::Crit => "crit",
        LogLevel::Error => "error",
        LogLevel::Warn => "warn",
        LogLevel::Notice => "notice",
        LogLevel::Info => "info",
        LogLevel::Debug => "debug",
    }
}

/// Writes one line to the main log: `<time> [<level>] <pid>#<tid>: <message>`.
/// Session messages pass `*N ` prefixes and `, client: ...` contexts inside `message`.
pub fn write(level: LogLevel, message: &str) {
    if !enabled(level) {
        return;
    }
    let line = format_line(level, message);
    let Ok(slot) = SINK.read() else { return };
    write_line(slot.as_ref(), level, &line);
    let to_terminal = !matches!(slot.as_ref(), Some(Sink::Stderr) | None);
    if to_terminal && level <= LogLevel::Warn && ECHO_TO_STDERR.load(Ordering::Relaxed) {
        let echo = format!("mailproxy: [{}] {message}\n", level_name(level));
        let _ = std::io::stderr().write_all(echo.as_bytes());
    }
}

fn format_line(level: LogLevel, message: &str) -> String {
    format!(
        "{} [{}] {}#{}: {}",
        timestamp(),
        level_name(level),
        std::process::id(),
        thread_id(),
        message
    )
}

fn write_line(sink: Option<&Sink>, level: LogLevel, line: &str) {
    match sink {
        Some(Sink::File { file, .. }) => {
            // One write per line: appends from several threads never interleave.
            let _ = (&*file).write_all(format!("{line}\n").as_bytes());
        }
        Some(Sink::Syslog(sender)) => sender.send(level as u8, line),
        Some(Sink::Stderr) | None => {
            let _ = std::io::stderr().write_all(format!("{line}\n").as_bytes());
        }
    }
}

fn thread_id() -> i64 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::syscall(libc::SYS_gettid) }
}

/// The local time now, broken down.
pub fn local_time() -> libc::tm {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let now = libc::time_t::try_from(now).unwrap_or(0);
    // SAFETY: localtime_r writes only into `tm`, which we own.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    unsafe { libc::localtime_r(&now, &mut tm) };
    tm
}

/// Local time as `YYYY/MM/DD HH:MM:SS`, nginx's `ngx_cached_err_log_time`.
pub fn timestamp() -> String {
    let tm = local_time();
    format!(
        "{:04}/{:02}/{:02} {:02}:{:02}:{:02}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    )
}

/// Shows bytes from the wire in a log line: as nginx writes them (`%V`, raw), except
/// that control bytes, and every non-ASCII byte of invalid UTF-8, become `\xNN`, so a
/// client cannot forge or break log lines.
pub fn escape(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len());
    match std::str::from_utf8(bytes) {
        // A UTF-8 login (`café`) reads as nginx writes it; only controls are escaped.
        Ok(text) => {
            for c in text.chars() {
                if c.is_control() {
                    s.push_str(&format!("\\x{:02X}", c as u32));
                } else {
                    s.push(c);
                }
            }
        }
        Err(_) => {
            for &b in bytes {
                if (0x20..0x7f).contains(&b) {
                    s.push(b as char);
                } else {
                    s.push_str(&format!("\\x{b:02X}"));
                }
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_has_nginx_shape() {
        let t = timestamp();
        assert_eq!(t.len(), 19, "{t}");
        assert_eq!(&t[4..5], "/");
        assert_eq!(&t[10..11], " ");
    }

    #[test]
    fn escape_keeps_utf8_and_hides_controls_and_invalid_bytes() {
        assert_eq!(escape("café".as_bytes()), "café");
        assert_eq!(escape(b"a\x01b"), "a\\x01b");
        assert_eq!(escape(b"caf\xE9"), "caf\\xE9");
    }

    #[test]
    fn escape_keeps_printable_and_hides_controls() {
        assert_eq!(escape(b"a b\r\n"), "a b\\x0D\\x0A");
    }
}
