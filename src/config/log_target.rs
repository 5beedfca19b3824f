//! `error_log`'s value, typed: where the lines go ([`LogSink`], with the `syslog:`
//! parameters parsed here) and which lines ([`LogLevel`] and [`DebugPoints`]), read as
//! nginx 1.22.1's `ngx_log_set_log` and `ngx_log_set_levels` read them. Also nginx's
//! level names and its log-line clock, which the `-t` report shares with the runtime
//! log.
//!
//! The runtime side (`log.rs`, `syslog.rs`) imports from here, never the other way:
//! the config pipeline does not depend on the process that writes the logs.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::model::{LogLevel, LogSink, LogTarget};

/// nginx's `err_levels`, most severe first, indexed by `LogLevel as usize`.
const LEVEL_NAMES: [&str; 8] = [
    "emerg", "alert", "crit", "error", "warn", "notice", "info", "debug",
];

/// nginx's level names.
pub fn level_name(level: LogLevel) -> &'static str {
    LEVEL_NAMES[level as usize]
}

fn level_by_name(word: &str) -> Option<LogLevel> {
    Some(match word {
        "emerg" => LogLevel::Emerg,
        "alert" => LogLevel::Alert,
        "crit" => LogLevel::Crit,
        "error" => LogLevel::Error,
        "warn" => LogLevel::Warn,
        "notice" => LogLevel::Notice,
        "info" => LogLevel::Info,
        "debug" => LogLevel::Debug,
        _ => return None,
    })
}

/// The debug lines a log takes: nginx's `debug_core` ... `debug_stream` bits
/// (`NGX_LOG_DEBUG_CORE` ...). `error_log ... debug` takes them all; `debug_mail` (with
/// or without others) takes those points' debug lines and every other level.
///
/// mailproxy writes debug lines at two points: [`EVENT`](Self::EVENT) (accepted
/// connections, TLS handshakes, connects to the auth server and the backend) and
/// [`MAIL`](Self::MAIL) (the session: commands, auth_http, backend login, relay).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DebugPoints(u8);

impl DebugPoints {
    pub const NONE: DebugPoints = DebugPoints(0);
    pub const CORE: DebugPoints = DebugPoints(1);
    pub const ALLOC: DebugPoints = DebugPoints(1 << 1);
    pub const MUTEX: DebugPoints = DebugPoints(1 << 2);
    pub const EVENT: DebugPoints = DebugPoints(1 << 3);
    pub const HTTP: DebugPoints = DebugPoints(1 << 4);
    pub const MAIL: DebugPoints = DebugPoints(1 << 5);
    pub const STREAM: DebugPoints = DebugPoints(1 << 6);
    pub const ALL: DebugPoints = DebugPoints(0x7f);

    /// nginx's `debug_levels`, in bit order.
    const NAMES: [&'static str; 7] = [
        "debug_core",
        "debug_alloc",
        "debug_mutex",
        "debug_event",
        "debug_http",
        "debug_mail",
        "debug_stream",
    ];

    fn by_name(word: &str) -> Option<DebugPoints> {
        let i = Self::NAMES.iter().position(|n| *n == word)?;
        Some(DebugPoints(1 << i))
    }

    /// Whether any of `points` is taken.
    pub fn has(self, points: DebugPoints) -> bool {
        self.0 & points.0 != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn union(self, other: DebugPoints) -> DebugPoints {
        DebugPoints(self.0 | other.0)
    }

    /// The raw bits, for an atomic.
    pub fn bits(self) -> u8 {
        self.0
    }

    pub fn from_bits(bits: u8) -> DebugPoints {
        DebugPoints(bits & Self::ALL.0)
    }
}

impl LogTarget {
    /// A target taking `level` and, for `debug`, every debug line.
    pub fn new(sink: LogSink, level: LogLevel) -> LogTarget {
        let debug = if level == LogLevel::Debug {
            DebugPoints::ALL
        } else {
            DebugPoints::NONE
        };
        LogTarget { sink, level, debug }
    }

    /// Whether a line of `level` (not debug) goes into this log.
    pub fn takes(&self, level: LogLevel) -> bool {
        level <= self.level && (level != LogLevel::Debug || !self.debug.is_empty())
    }
}

/// The level words after the target (`ngx_log_set_levels`): none is `error`; one of
/// `emerg`..`debug`, or any set of `debug_*` words. A second level word is a
/// `duplicate log level`; a `debug_*` after a level word, or any other word, an
/// `invalid log level`.
pub fn parse_levels(words: &[String]) -> Result<(LogLevel, DebugPoints), String> {
    if words.is_empty() {
        return Ok((LogLevel::Error, DebugPoints::NONE));
    }
    let mut level: Option<LogLevel> = None;
    let mut debug = DebugPoints::NONE;
    for word in words {
        if let Some(l) = level_by_name(word) {
            if level.is_some() || !debug.is_empty() {
                return Err(format!("duplicate log level \"{word}\""));
            }
            level = Some(l);
        } else if let Some(point) = DebugPoints::by_name(word) {
            if level.is_some() {
                return Err(format!("invalid log level \"{word}\""));
            }
            debug = debug.union(point);
        } else {
            return Err(format!("invalid log level \"{word}\""));
        }
    }
    Ok(match level {
        Some(LogLevel::Debug) => (LogLevel::Debug, DebugPoints::ALL),
        Some(l) => (l, DebugPoints::NONE),
        // Only `debug_*` words: nginx's level is then a bit mask above every level.
        None => (LogLevel::Debug, debug),
    })
}

/// `error_log FILE|stderr|syslog:...|memory:... [LEVEL...]`. `prefix` is nginx's `-p`
/// (relative files join it); `conf_file` is the file being read (nginx sizes a
/// `memory:` buffer's minimum by its name). mailproxy refuses `memory:` buffers.
pub fn parse_target(args: &[String], prefix: &Path, conf_file: &Path) -> Result<LogTarget, String> {
    let sink = match args[0].as_str() {
        "stderr" => LogSink::Stderr,
        s if s.starts_with("syslog:") => LogSink::Syslog(parse_syslog(&s["syslog:".len()..])?),
        s if s.starts_with("memory:") => {
            check_memory_size(&s["memory:".len()..], conf_file)?;
            return Err("\"error_log\" directive is not supported by mailproxy: memory buffers are a debugging aid of nginx".into());
        }
        path => LogSink::File(super::handlers::resolve(prefix, path)),
    };
    let (level, debug) = parse_levels(&args[1..])?;
    Ok(LogTarget { sink, level, debug })
}

/// nginx's check of a `memory:SIZE` buffer: a size (`k`, `m`) of at least one maximal
/// log line plus its header, which names the config file.
fn check_memory_size(size: &str, conf_file: &Path) -> Result<(), String> {
    const HEADER_AND_LINE: usize = 2099;
    let needed = HEADER_AND_LINE + conf_file.as_os_str().len();
    match super::values::parse_size(size) {
        Some(n) if n >= needed => Ok(()),
        _ => Err(format!("invalid buffer size \"{size}\"")),
    }
}

const FACILITIES: &[&str] = &[
    "kern", "user", "mail", "daemon", "auth", "intern", "lpr", "news", "uucp", "clock", "authpriv",
    "ftp", "ntp", "audit", "alert", "cron", "local0", "local1", "local2", "local3", "local4",
    "local5", "local6", "local7",
];

/// Where a syslog peer lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyslogServer {
    Udp(SocketAddr),
    Unix(PathBuf),
}

/// The parsed parameters of one `syslog:` target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyslogSpec {
    pub server: SyslogServer,
    /// The facility number (`local7` = 23 by default).
    pub facility: u8,
    pub tag: String,
    pub nohostname: bool,
}

/// Parses what follows `syslog:`, with nginx's messages for every mistake.
/// `severity=` is checked and dropped: nginx sends each line at its own level.
pub fn parse_syslog(spec: &str) -> Result<SyslogSpec, String> {
    let (mut server, mut facility, mut severity, mut tag) = (None, None, None, None);
    let mut nohostname = false;
    for part in spec.split(',') {
        if let Some(v) = part.strip_prefix("server=") {
            if server.is_some() {
                return Err("duplicate syslog \"server\"".into());
            }
            server = Some(parse_syslog_server(v)?);
        } else if let Some(v) = part.strip_prefix("facility=") {
            if facility.is_some() {
                return Err("duplicate syslog \"facility\"".into());
            }
            let i = FACILITIES.iter().position(|f| *f == v);
            facility = Some(i.ok_or(format!("unknown syslog facility \"{v}\""))?);
        } else if let Some(v) = part.strip_prefix("severity=") {
            if severity.is_some() {
                return Err("duplicate syslog \"severity\"".into());
            }
            let i = LEVEL_NAMES.iter().position(|s| *s == v);
            severity = Some(i.ok_or(format!("unknown syslog severity \"{v}\""))?);
        } else if let Some(v) = part.strip_prefix("tag=") {
            if tag.is_some() {
                return Err("duplicate syslog \"tag\"".into());
            }
            tag = Some(check_tag(v)?);
        } else if part == "nohostname" {
            nohostname = true;
        } else {
            return Err(format!("unknown syslog parameter \"{part}\""));
        }
    }
    Ok(SyslogSpec {
        server: server.ok_or("no syslog server specified")?,
        facility: facility.map_or(23, |f| f as u8),
        tag: tag.unwrap_or_else(|| "nginx".into()),
        nohostname,
    })
}

fn check_tag(tag: &str) -> Result<String, String> {
    if tag.len() > 32 {
        return Err("syslog tag length exceeds 32".into());
    }
    if !tag.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_') {
        return Err("syslog \"tag\" only allows alphanumeric characters and underscore".into());
    }
    Ok(tag.to_string())
}

/// nginx's `ngx_parse_url` with default port 514: its errors in its order (`no host`,
/// `invalid port`, then `host not found`).
fn parse_syslog_server(v: &str) -> Result<SyslogServer, String> {
    use super::url::{parse_url, UrlMode};
    let url =
        parse_url(v, UrlMode::Syslog).map_err(|err| format!("{err} in syslog server \"{v}\""))?;
    Ok(match url.unix {
        Some(path) => SyslogServer::Unix(path),
        None => SyslogServer::Udp(url.addrs[0]),
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    fn levels(s: &str) -> Result<(LogLevel, DebugPoints), String> {
        parse_levels(&words(s))
    }

    #[test]
    fn level_words_as_nginx_reads_them() {
        assert_eq!(levels(""), Ok((LogLevel::Error, DebugPoints::NONE)));
        assert_eq!(levels("info"), Ok((LogLevel::Info, DebugPoints::NONE)));
        assert_eq!(levels("debug"), Ok((LogLevel::Debug, DebugPoints::ALL)));
        let (level, debug) = levels("debug_core debug_mail").unwrap();
        assert_eq!(level, LogLevel::Debug);
        assert!(debug.has(DebugPoints::MAIL) && debug.has(DebugPoints::CORE));
        assert!(!debug.has(DebugPoints::EVENT));
        assert!(levels("debug_mail debug_mail").is_ok());
        assert!(levels("debug_alloc debug_mutex debug_event debug_http debug_stream").is_ok());
    }

    #[test]
    fn level_mistakes_get_nginx_messages() {
        let err = |s| levels(s).unwrap_err();
        assert_eq!(err("warn info"), "duplicate log level \"info\"");
        assert_eq!(err("debug debug"), "duplicate log level \"debug\"");
        assert_eq!(err("debug_mail info"), "duplicate log level \"info\"");
        assert_eq!(err("info debug_mail"), "invalid log level \"debug_mail\"");
        assert_eq!(err("debug debug_mail"), "invalid log level \"debug_mail\"");
        assert_eq!(
            err("debug_mail debug_nosuch"),
            "invalid log level \"debug_nosuch\""
        );
        assert_eq!(err("Debug"), "invalid log level \"Debug\"");
        assert_eq!(
            parse_levels(&[String::new()]).unwrap_err(),
            "invalid log level \"\""
        );
    }

    #[test]
    fn debug_points_take_every_level_and_their_debug_lines() {
        let t = parse_target(&words("stderr debug_mail"), Path::new("/"), Path::new("/x")).unwrap();
        assert!(t.takes(LogLevel::Info) && t.takes(LogLevel::Debug));
        assert!(t.debug.has(DebugPoints::MAIL) && !t.debug.has(DebugPoints::EVENT));
        let t = parse_target(&words("stderr info"), Path::new("/"), Path::new("/x")).unwrap();
        assert!(t.takes(LogLevel::Info) && !t.takes(LogLevel::Debug));
        assert!(t.debug.is_empty());
    }

    #[test]
    fn targets_and_memory_buffers() {
        let t = parse_target(&words("logs/e.log warn"), Path::new("/p"), Path::new("/c")).unwrap();
        assert_eq!(
            t,
            LogTarget::new(LogSink::File("/p/logs/e.log".into()), LogLevel::Warn)
        );
        let conf = Path::new("/tmp/ngx-exp/t.conf"); // 19 bytes: nginx wants 2118
        let err = |s: &str| parse_target(&words(s), Path::new("/"), conf).unwrap_err();
        assert_eq!(err("memory:1x"), "invalid buffer size \"1x\"");
        assert_eq!(err("memory:"), "invalid buffer size \"\"");
        assert_eq!(err("memory:2117"), "invalid buffer size \"2117\"");
        assert!(err("memory:2118").contains("not supported by mailproxy"));
        assert!(err("memory:1m debug").contains("not supported by mailproxy"));
        assert_eq!(err("memory:1x bogus"), "invalid buffer size \"1x\"");
        assert_eq!(err("stderr warn info"), "duplicate log level \"info\"");
    }

    #[test]
    fn parses_syslog_parameters() {
        let p = parse_syslog("server=127.0.0.1:5514,facility=mail,tag=mp,nohostname").unwrap();
        assert_eq!(
            p.server,
            SyslogServer::Udp("127.0.0.1:5514".parse().unwrap())
        );
        assert_eq!((p.facility, p.tag.as_str(), p.nohostname), (2, "mp", true));
        let p = parse_syslog("server=127.0.0.1").unwrap();
        assert_eq!(
            p.server,
            SyslogServer::Udp("127.0.0.1:514".parse().unwrap())
        );
        assert_eq!((p.facility, p.tag.as_str()), (23, "nginx"));
        let p = parse_syslog("server=[::1]:600").unwrap();
        assert_eq!(p.server, SyslogServer::Udp("[::1]:600".parse().unwrap()));
        let p = parse_syslog("server=unix:/dev/log,severity=info").unwrap();
        assert_eq!(p.server, SyslogServer::Unix("/dev/log".into()));
    }

    #[test]
    fn syslog_mistakes_get_nginx_messages() {
        let err = |s| parse_syslog(s).unwrap_err();
        assert_eq!(err("facility=mail"), "no syslog server specified");
        assert_eq!(
            err("server=127.0.0.1,facility=bogus"),
            "unknown syslog facility \"bogus\""
        );
        assert_eq!(
            err("server=127.0.0.1,tag=a-b"),
            "syslog \"tag\" only allows alphanumeric characters and underscore"
        );
        assert_eq!(
            err("server=127.0.0.1,x=1"),
            "unknown syslog parameter \"x=1\""
        );
        assert_eq!(
            err("server=127.0.0.1,server=127.0.0.2"),
            "duplicate syslog \"server\""
        );
        assert_eq!(
            err("server=127.0.0.1,severity=loud"),
            "unknown syslog severity \"loud\""
        );
    }

    fn file(path: &str, level: LogLevel) -> LogTarget {
        LogTarget::new(LogSink::File(path.into()), level)
    }

    #[test]
    fn every_error_log_of_a_context_is_kept_and_servers_inherit_mail_s() {
        let text = "error_log /m1.log info; error_log /m2.log warn;\nevents {}\nmail {\n\
                    auth_http 127.0.0.1:9000;\n\
                    error_log /mail.log notice; error_log /mail-debug.log debug_mail;\n\
                    server { listen 127.0.0.1:21143; protocol imap; }\n\
                    server { listen 127.0.0.1:21144; protocol imap; error_log /own.log debug; }\n}\n";
        let loaded = super::super::load_str(text, Path::new("/x.conf")).unwrap();
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        let c = &loaded.config;
        let main = [
            file("/m1.log", LogLevel::Info),
            file("/m2.log", LogLevel::Warn),
        ];
        assert_eq!(c.error_log, main);
        let mail_debug = LogTarget {
            sink: LogSink::File("/mail-debug.log".into()),
            level: LogLevel::Debug,
            debug: DebugPoints::MAIL,
        };
        assert_eq!(
            c.servers[0].error_log,
            [file("/mail.log", LogLevel::Notice), mail_debug]
        );
        assert_eq!(c.servers[1].error_log, [file("/own.log", LogLevel::Debug)]);
    }

    #[test]
    fn a_server_without_any_log_writes_to_the_main_one() {
        let text = "error_log stderr info;\nevents {}\nmail {\nauth_http 127.0.0.1:9000;\n\
                    server { listen 127.0.0.1:21143; protocol imap; }\n}\n";
        let loaded = super::super::load_str(text, Path::new("/x.conf")).unwrap();
        assert!(loaded.config.servers[0].error_log.is_empty());
        assert_eq!(
            loaded.config.error_log,
            [LogTarget::new(LogSink::Stderr, LogLevel::Info)]
        );
    }

    #[test]
    fn level_names_and_timestamp_shape() {
        assert_eq!(level_name(LogLevel::Emerg), "emerg");
        assert_eq!(level_name(LogLevel::Debug), "debug");
        let t = timestamp();
        assert_eq!(t.len(), 19, "{t}");
        assert_eq!(&t[4..5], "/");
        assert_eq!(&t[10..11], " ");
    }
}
