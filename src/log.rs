//! The error log, in nginx's format, so that fail2ban filters and log shippers written
//! for nginx keep working:
//!
//! `2026/11/28 05:11:32 [info] 15176#15176: *1 client logged in, client: 127.0.0.1, server: 0.0.0.0:993, login: "alice"`
//!
//! One process-wide sink, set once at start-up; reopened on demand (USR1 / `-s reopen`).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use crate::config::{LogLevel, LogSink, LogTarget};

struct Logger {
    level: LogLevel,
    sink: LogSink,
    file: Mutex<Option<File>>,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

/// Installs the process-wide log. Later calls are ignored (the first config wins until
/// a restart); without a call, messages of level `error` and above go to stderr.
pub fn init(target: &LogTarget) -> std::io::Result<()> {
    let file = open(&target.sink)?;
    let _ = LOGGER.set(Logger {
        level: target.level,
        sink: target.sink.clone(),
        file: Mutex::new(file),
    });
    Ok(())
}

fn open(sink: &LogSink) -> std::io::Result<Option<File>> {
    match sink {
        LogSink::File(path) => open_file(path).map(Some),
        LogSink::Stderr | LogSink::Syslog(_) => Ok(None),
    }
}

fn open_file(path: &PathBuf) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// Reopens the log file (after rotation).
pub fn reopen() {
    if let Some(l) = LOGGER.get() {
        if let Ok(file) = open(&l.sink) {
            if let Ok(mut slot) = l.file.lock() {
                *slot = file;
            }
        }
    }
}

/// Whether a message of `level` would be written; lets callers skip formatting.
pub fn enabled(level: LogLevel) -> bool {
    level <= LOGGER.get().map_or(LogLevel::Error, |l| l.level)
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

/// Writes one line: `<time> [<level>] <pid>#<tid>: <message>`. Session messages pass
/// `*N ` prefixes and `, client: ...` contexts inside `message`.
pub fn write(level: LogLevel, message: &str) {
    if !enabled(level) {
        return;
    }
    let line = format!(
        "{} [{}] {}#{}: {}\n",
        timestamp(),
        level_name(level),
        std::process::id(),
        thread_id(),
        message
    );
    match LOGGER.get() {
        Some(l) => match l.file.lock() {
            Ok(mut f) => match f.as_mut() {
                Some(file) => {
                    let _ = file.write_all(line.as_bytes());
                }
                None => {
                    let _ = std::io::stderr().write_all(line.as_bytes());
                }
            },
            Err(_) => {}
        },
        None => {
            let _ = std::io::stderr().write_all(line.as_bytes());
        }
    }
}

fn thread_id() -> i64 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::syscall(libc::SYS_gettid) }
}

/// Local time as `YYYY/MM/DD HH:MM:SS`, nginx's `ngx_cached_err_log_time`.
pub fn timestamp() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as libc::time_t;
    // SAFETY: localtime_r writes only into `tm`, which we own.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    unsafe { libc::localtime_r(&now, &mut tm) };
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

/// Shows bytes from the wire in a log line the way nginx does (`%V` of raw bytes):
/// printable as is, everything else escaped so a line can't be forged.
pub fn escape(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len());
    for &b in bytes {
        if (0x20..0x7f).contains(&b) {
            s.push(b as char);
        } else {
            s.push_str(&format!("\\x{b:02X}"));
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
    fn escape_keeps_printable_and_hides_controls() {
        assert_eq!(escape(b"a b\r\n"), "a b\\x0D\\x0A");
    }
}
