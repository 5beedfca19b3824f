//! The error log, in nginx's format, so that fail2ban filters and log shippers written
//! for nginx keep working:
//!
//! `2026/11/28 05:11:32 [info] 15176#15176: *1 client logged in, client: 127.0.0.1, server: 0.0.0.0:993, login: "alice"`
//!
//! Logs are chains, as nginx's: every `error_log` line of a context is an entry that
//! takes the lines of its own level (and, for `debug` or `debug_*`, the debug lines of
//! its points). The main log is process-wide: `-e` or stderr at start-up, the config's
//! top-level chain once it is read, replaced on reload; the process lines (start-up,
//! reload, signals, worker exits) go there. A `server {}` (or `mail {}`) with its own
//! `error_log` lines gets a [`Log`] chain of its own, which its sessions write to
//! instead. Every log is reopened on demand (USR1 / `-s reopen`).
//!
//! Nothing is formatted for a level no entry takes: [`enabled`], [`debug_enabled`] and
//! [`Log::enabled`] are one atomic load or field read, and the session helpers
//! (`session.rs`) check them before they format.

mod session;

use std::fmt;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};

use crate::config::{level_name, timestamp, DebugPoints, LogLevel, LogSink, LogTarget};
use crate::syslog;

enum Sink {
    Stderr,
    File { path: PathBuf, file: File },
    Syslog(syslog::Sender),
}

/// One `error_log` line at run time: its sink and what it takes.
struct Entry {
    sink: RwLock<Sink>,
    level: LogLevel,
    debug: DebugPoints,
}

/// A chain of logs, as nginx keeps one per context: every line goes to each entry whose
/// level (or, for a debug line, debug point) takes it.
pub struct Log {
    entries: Vec<Entry>,
    /// The most verbose level of the chain, and the union of its debug points: what
    /// [`enabled`](Log::enabled) checks before anything is formatted.
    level: LogLevel,
    debug: DebugPoints,
}

/// The main log (the top-level `error_log` chain); `None` until [`init`], when
/// messages go to stderr.
static MAIN: RwLock<Option<Arc<Log>>> = RwLock::new(None);
/// The main chain's most verbose level as `LogLevel as u8`, and its debug points, read
/// on every message without a lock.
static LEVEL: AtomicU8 = AtomicU8::new(LogLevel::Error as u8);
static DEBUG: AtomicU8 = AtomicU8::new(0);
/// While starting (until the pid file is written), warnings and worse also go to the
/// terminal as `mailproxy: [emerg] ...`, as nginx's `ngx_use_stderr` does: a failed
/// start is seen where the admin typed the command, not only in the log file.
static ECHO_TO_STDERR: AtomicBool = AtomicBool::new(false);

/// Every server [`Log`] alive, so a reopen reaches them all.
static SERVER_LOGS: Mutex<Vec<Weak<Log>>> = Mutex::new(Vec::new());

/// A log that could not be opened, in nginx's words
/// (`open() "/var/log/x.log" failed (13: Permission denied)`).
#[derive(Debug)]
pub struct OpenError {
    pub sink: LogSink,
    pub error: std::io::Error,
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.sink {
            LogSink::File(p) => write!(
                f,
                "open() \"{}\" failed ({})",
                p.display(),
                crate::config::parser::os_error(&self.error)
            ),
            _ => write!(f, "cannot open the error log ({})", self.error),
        }
    }
}

impl std::error::Error for OpenError {}

impl Log {
    /// Opens every target of a chain. Logs opened for the same target share nothing
    /// but the file.
    fn open_chain(targets: &[LogTarget]) -> Result<Log, OpenError> {
        let mut entries = Vec::with_capacity(targets.len());
        for target in targets {
            let sink = open(&target.sink).map_err(|error| OpenError {
                sink: target.sink.clone(),
                error,
            })?;
            entries.push(Entry {
                sink: RwLock::new(sink),
                level: target.level,
                debug: target.debug,
            });
        }
        let level = entries
            .iter()
            .map(|e| e.level)
            .max()
            .unwrap_or(LogLevel::Error);
        let debug = (entries.iter()).fold(DebugPoints::NONE, |d, e| d.union(e.debug));
        Ok(Log {
            entries,
            level,
            debug,
        })
    }

    /// A server's (or mail{}'s) own chain; `None` for an empty one, whose sessions then
    /// write to the main log.
    pub fn open(targets: &[LogTarget]) -> Result<Option<Arc<Log>>, OpenError> {
        if targets.is_empty() {
            return Ok(None);
        }
        let log = Arc::new(Log::open_chain(targets)?);
        if let Ok(mut all) = SERVER_LOGS.lock() {
            all.retain(|w| w.strong_count() > 0);
            all.push(Arc::downgrade(&log));
        }
        Ok(Some(log))
    }

    /// Whether a line of `level` (not `debug`) would be written somewhere.
    pub fn enabled(&self, level: LogLevel) -> bool {
        level <= self.level
    }

    /// Whether a debug line of `point` would be written somewhere.
    pub fn debug_enabled(&self, point: DebugPoints) -> bool {
        self.debug.has(point)
    }

    /// Like [`write`], into this chain.
    pub fn write(&self, level: LogLevel, message: &str) {
        if !self.enabled(level) {
            return;
        }
        let line = format_line(level, message);
        for entry in self.entries.iter().filter(|e| level <= e.level) {
            entry.write_line(level, &line);
        }
    }

    /// A debug line (`[debug]`) for the entries that take `point`.
    pub fn write_debug(&self, point: DebugPoints, message: &str) {
        if !self.debug_enabled(point) {
            return;
        }
        let line = format_line(LogLevel::Debug, message);
        for entry in self.entries.iter().filter(|e| e.debug.has(point)) {
            entry.write_line(LogLevel::Debug, &line);
        }
    }

    fn has_stderr(&self) -> bool {
        (self.entries.iter()).any(|e| e.sink.read().is_ok_and(|s| matches!(*s, Sink::Stderr)))
    }
}

impl Entry {
    fn write_line(&self, level: LogLevel, line: &str) {
        if let Ok(sink) = self.sink.read() {
            write_line(Some(&*sink), level, line);
        }
    }
}

/// Installs (or, on reload, replaces) the main log with one target: `-e`.
pub fn init(target: &LogTarget) -> Result<(), OpenError> {
    init_chain(std::slice::from_ref(target))
}

/// Installs (or replaces) the main log with the top-level `error_log` chain; an empty
/// chain changes nothing. On failure the old log stays, so a reload with an unwritable
/// log path keeps logging somewhere.
pub fn init_chain(targets: &[LogTarget]) -> Result<(), OpenError> {
    if targets.is_empty() {
        return Ok(());
    }
    let log = Arc::new(Log::open_chain(targets)?);
    LEVEL.store(log.level as u8, Ordering::Relaxed);
    DEBUG.store(log.debug.bits(), Ordering::Relaxed);
    if let Ok(mut slot) = MAIN.write() {
        *slot = Some(log);
    }
    Ok(())
}

/// After a reload: the new config's top-level chain becomes the main log (stderr at
/// `error` if it names none). On failure the old log stays, and says so.
pub fn install_main(targets: &[LogTarget]) {
    let stderr = [LogTarget::new(LogSink::Stderr, LogLevel::Error)];
    let targets = if targets.is_empty() {
        &stderr[..]
    } else {
        targets
    };
    if let Err(e) = init_chain(targets) {
        write(LogLevel::Alert, &format!("could not open error log ({e})"));
    }
}

fn open(sink: &LogSink) -> std::io::Result<Sink> {
    Ok(match sink {
        LogSink::Stderr => Sink::Stderr,
        LogSink::File(path) => Sink::File {
            path: path.clone(),
            file: open_file(path)?,
        },
        LogSink::Syslog(spec) => Sink::Syslog(syslog::Sender::connect(spec.clone())?),
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
    // The main log first, then the servers' (in the order they were opened).
    let mut logs: Vec<Arc<Log>> = MAIN
        .read()
        .ok()
        .and_then(|m| m.clone())
        .into_iter()
        .collect();
    if let Ok(all) = SERVER_LOGS.lock() {
        logs.extend(all.iter().filter_map(Weak::upgrade));
    }
    for log in logs {
        for entry in &log.entries {
            if let Ok(mut sink) = entry.sink.write() {
                reopen_sink(&mut sink, owner, &mut failures);
            }
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
    // nginx's `ngx_log_get_file_log`: the first file of the chain.
    let Some(main) = MAIN.read().ok().and_then(|m| m.clone()) else {
        return;
    };
    for entry in &main.entries {
        if let Ok(sink) = entry.sink.read() {
            if let Sink::File { file, .. } = &*sink {
                // SAFETY: dup2 onto fd 2 of an fd we own; no memory is involved.
                unsafe { libc::dup2(file.as_raw_fd(), libc::STDERR_FILENO) };
                return;
            }
        }
    }
}

/// Whether a message of `level` would be written to the main log; lets callers skip
/// formatting.
pub fn enabled(level: LogLevel) -> bool {
    level as u8 <= LEVEL.load(Ordering::Relaxed)
}

/// Whether a debug line of `point` would be written to the main log.
pub fn debug_enabled(point: DebugPoints) -> bool {
    DebugPoints::from_bits(DEBUG.load(Ordering::Relaxed)).has(point)
}

/// Writes one line to the main log: `<time> [<level>] <pid>#<tid>: <message>`.
/// Session messages pass `*N ` prefixes and `, client: ...` contexts inside `message`.
pub fn write(level: LogLevel, message: &str) {
    if !enabled(level) {
        return;
    }
    // Only start-up's warnings are echoed; the chain's sinks are looked at only then.
    let echo = level <= LogLevel::Warn && ECHO_TO_STDERR.load(Ordering::Relaxed);
    let guard = MAIN.read();
    let to_terminal = match guard.as_ref().ok().and_then(|m| m.as_ref()) {
        Some(log) => {
            log.write(level, message);
            echo && !log.has_stderr()
        }
        None => {
            write_line(None, level, &format_line(level, message));
            false
        }
    };
    drop(guard);
    if to_terminal {
        let echo = format!("mailproxy: [{}] {message}\n", level_name(level));
        let _ = std::io::stderr().write_all(echo.as_bytes());
    }
}

/// Writes to `log` (a server's chain), or to the main log when it is `None`.
pub fn write_to(log: Option<&Log>, level: LogLevel, message: &str) {
    match log {
        Some(log) => log.write(level, message),
        None => write(level, message),
    }
}

/// A debug line to the main log's entries that take `point`.
pub fn write_debug(point: DebugPoints, message: &str) {
    if !debug_enabled(point) {
        return;
    }
    if let Some(log) = MAIN.read().ok().and_then(|m| m.clone()) {
        log.write_debug(point, message);
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

    fn target(path: &Path, level: LogLevel, debug: DebugPoints) -> LogTarget {
        LogTarget {
            sink: LogSink::File(path.to_path_buf()),
            level,
            debug,
        }
    }

    #[test]
    fn each_entry_of_a_chain_takes_its_own_levels_and_debug_points() {
        let dir = std::env::temp_dir().join(format!("mailproxy-log-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (info, warn, all, mail) = (
            dir.join("info.log"),
            dir.join("warn.log"),
            dir.join("debug.log"),
            dir.join("mail.log"),
        );
        let chain = [
            target(&info, LogLevel::Info, DebugPoints::NONE),
            target(&warn, LogLevel::Warn, DebugPoints::NONE),
            target(&all, LogLevel::Debug, DebugPoints::ALL),
            target(&mail, LogLevel::Debug, DebugPoints::MAIL),
        ];
        let log = Log::open(&chain).unwrap().unwrap();
        assert!(log.enabled(LogLevel::Info) && log.debug_enabled(DebugPoints::EVENT));
        log.write(LogLevel::Error, "an error");
        log.write(LogLevel::Info, "an info");
        log.write_debug(DebugPoints::MAIL, "a mail debug");
        log.write_debug(DebugPoints::EVENT, "an event debug");
        let read = |p: &Path| std::fs::read_to_string(p).unwrap();
        let (info, warn, all, mail) = (read(&info), read(&warn), read(&all), read(&mail));
        assert!(info.contains("[error]") && info.contains("an info") && !info.contains("debug"));
        assert!(
            warn.contains("an error") && !warn.contains("an info"),
            "{warn}"
        );
        assert_eq!(all.lines().count(), 4, "{all}");
        assert!(
            all.contains("[debug]") && all.contains("an event debug"),
            "{all}"
        );
        assert!(
            mail.contains("an info") && mail.contains("a mail debug"),
            "{mail}"
        );
        assert!(!mail.contains("an event debug"), "{mail}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_empty_chain_is_no_log_of_its_own() {
        assert!(Log::open(&[]).unwrap().is_none());
        let quiet = Log::open_chain(&[LogTarget::new(LogSink::Stderr, LogLevel::Warn)]).unwrap();
        assert!(!quiet.enabled(LogLevel::Info) && !quiet.debug_enabled(DebugPoints::MAIL));
    }

    #[test]
    fn a_missing_directory_reads_as_nginx_says_it() {
        let missing = Path::new("/nonexistent-mailproxy-dir/e.log");
        let chain = [LogTarget::new(
            LogSink::File(missing.into()),
            LogLevel::Error,
        )];
        let Err(e) = Log::open(&chain) else {
            panic!("opened {}", missing.display())
        };
        assert_eq!(
            e.to_string(),
            "open() \"/nonexistent-mailproxy-dir/e.log\" failed (2: No such file or directory)"
        );
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
