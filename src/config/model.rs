//! The typed, validated configuration every other layer reads.
//!
//! Built by [`super::load`] from an nginx.conf. Every value is already merged
//! (`mail {}` defaults into each `server {}`, then nginx's built-in defaults), so the
//! rest of the proxy never looks at directives.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::log_target::{DebugPoints, SyslogSpec};

/// Where a directive or block stands, for messages in nginx's `in FILE:LINE` form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: PathBuf,
    pub line: usize,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `-g` directives have no file: nginx says `in command line`.
        if self.file.as_os_str() == "command line" {
            return f.write_str("command line");
        }
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// The whole configuration: the main context plus every mail `server {}`.
#[derive(Debug, Clone)]
pub struct Config {
    /// The main config file as given with `-c`.
    pub file: PathBuf,
    pub daemon: bool,
    /// `master_process off` serves from the one process that starts (nginx's
    /// single-process mode, for tests and debugging); on: a root master and workers.
    pub master_process: bool,
    /// The pid file: `pid`, else [`DEFAULT_PID`](super::DEFAULT_PID).
    pub pid: PathBuf,
    /// The top-level `error_log` lines, each taking the lines of its own level (nginx's
    /// chain of logs); empty means nginx's compiled-in default (stderr on Debian). The
    /// process lines go here, and the sessions' of a server with no log of its own.
    pub error_log: Vec<LogTarget>,
    pub worker_processes: WorkerProcesses,
    /// `user name [group]`.
    pub user: Option<(String, Option<String>)>,
    pub worker_connections: u32,
    pub worker_rlimit_nofile: Option<u64>,
    /// QUIT waits this long for sessions to end; `None` waits for ever, as nginx.
    pub worker_shutdown_timeout: Option<Duration>,
    pub servers: Vec<Arc<Server>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerProcesses {
    Auto,
    Count(usize),
}

/// One `error_log` line: a sink, its minimum level, and the debug points it takes
/// (see [`log_target`](super::log_target)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogTarget {
    pub sink: LogSink,
    pub level: LogLevel,
    pub debug: DebugPoints,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogSink {
    Stderr,
    File(PathBuf),
    /// `syslog:server=...,facility=...,tag=...`.
    Syslog(SyslogSpec),
}

/// nginx's error_log levels, most severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Emerg,
    Alert,
    Crit,
    Error,
    Warn,
    Notice,
    Info,
    Debug,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Imap,
    Pop3,
    Smtp,
}

impl Protocol {
    /// The name nginx uses in `Auth-Protocol` and in `protocol` directives.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Imap => "imap",
            Protocol::Pop3 => "pop3",
            Protocol::Smtp => "smtp",
        }
    }
}

/// One mail `server {}` block with every value merged.
#[derive(Debug, Clone)]
pub struct Server {
    /// Where the `server {` line is.
    pub location: Location,
    pub listens: Vec<Listen>,
    pub protocol: Protocol,
    /// `server_name`, defaulting to the machine's host name.
    pub server_name: String,
    /// Pre-auth deadline and backend-login deadline (nginx's `timeout`).
    pub timeout: Duration,
    pub max_errors: u32,
    /// `max_commands` (freenginx 1.25.5): commands allowed before authentication.
    pub max_commands: u32,
    /// The server's `error_log` chain (its own lines, else mail{}'s); empty: its
    /// sessions write to the main log, as in nginx.
    pub error_log: Vec<LogTarget>,
    pub auth_http: AuthHttp,
    pub proxy: ProxySettings,
    pub imap: ImapSettings,
    pub pop3: Pop3Settings,
    pub smtp: SmtpSettings,
    pub starttls: Starttls,
    /// `resolver` (SMTP client host lookups); `None` for `off`, the default.
    pub resolver: Option<Resolver>,
    /// Present when any listen has `ssl`, `ssl on` is set, or `starttls` is on/only.
    pub tls: Option<TlsSettings>,
    /// `set_real_ip_from`: PROXY protocol senders trusted to name the client.
    pub set_real_ip_from: Vec<TrustedSender>,
}

/// One `set_real_ip_from` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrustedSender {
    /// A network; `addr` has its host bits cleared.
    Network { addr: std::net::IpAddr, bits: u8 },
    /// `unix:`: connections on unix-socket listeners.
    Unix,
}

/// The PROXY protocol header sent to the backend (`proxy_protocol on|v2`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyProtocolVersion {
    V1,
    /// Newer nginx's binary form; an extension to 1.22.1.
    V2,
}

/// One `listen` directive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listen {
    pub addr: ListenAddr,
    /// Implicit TLS (`listen ... ssl`, or `ssl on` in 1.22.1).
    pub ssl: bool,
    pub proxy_protocol: bool,
    pub backlog: i32,
    pub rcvbuf: Option<usize>,
    pub sndbuf: Option<usize>,
    /// `ipv6only=`; nginx's default is on.
    pub ipv6only: bool,
    pub so_keepalive: Option<bool>,
    /// nginx gives it a socket of its own even beside a wildcard of its port (`bind`,
    /// or a socket option): it counts against `worker_connections` and `-t` binds it.
    pub bind: bool,
    /// `multipath` (nginx 1.29.7): an IPPROTO_MPTCP socket, TCP where the kernel has none.
    pub multipath: bool,
    pub location: Location,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddr {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

impl std::fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ListenAddr::Tcp(a) => write!(f, "{a}"),
            ListenAddr::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

/// `auth_http` and its companions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthHttp {
    pub target: AuthTarget,
    /// The `Host:` header value: the host part of the URL without the port,
    /// `localhost` for unix sockets.
    pub host_header: String,
    /// Path and query, sent verbatim; `/` by default.
    pub uri: String,
    pub timeout: Duration,
    /// `auth_http_header name value;` pairs, in order.
    pub headers: Vec<(String, String)>,
    pub pass_client_cert: bool,
    /// `auth_http_keepalive`: idle connections to keep (0: nginx's one connection per
    /// request, HTTP/1.0).
    pub keepalive: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AuthTarget {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

impl AuthHttp {
    /// `auth_http_keepalive` is on and the server is reached over TCP (a unix socket
    /// costs too little to connect to for a pool to pay).
    pub fn keeps_connections(&self) -> bool {
        self.keepalive > 0 && matches!(self.target, AuthTarget::Tcp(_))
    }
}

impl std::fmt::Display for AuthTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuthTarget::Tcp(a) => write!(f, "{a}"),
            AuthTarget::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxySettings {
    /// `proxy_buffer`: backend→client buffer and the limit on a backend login reply.
    pub buffer: usize,
    pub pass_error_message: bool,
    /// Idle timeout of the relay phase.
    pub timeout: Duration,
    /// Send a PROXY protocol header to the backend.
    pub proxy_protocol: Option<ProxyProtocolVersion>,
    pub smtp_auth: bool,
    pub xclient: bool,
}

/// A set of SASL / login methods, as `imap_auth`, `pop3_auth`, `smtp_auth` hold them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuthMethods {
    pub plain: bool,
    pub login: bool,
    pub apop: bool,
    pub cram_md5: bool,
    pub external: bool,
    pub none: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImapSettings {
    /// `imap_client_buffer`: the largest pre-auth command, literals included.
    pub client_buffer: usize,
    pub capabilities: Vec<String>,
    pub auth: AuthMethods,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pop3Settings {
    pub capabilities: Vec<String>,
    pub auth: AuthMethods,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpSettings {
    pub client_buffer: usize,
    pub greeting_delay: Duration,
    pub capabilities: Vec<String>,
    pub auth: AuthMethods,
}

/// `resolver address ...;` with `resolver_timeout`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolver {
    /// Name servers, queried in turn (port 53 unless given).
    pub servers: Vec<SocketAddr>,
    pub timeout: Duration,
    /// `ipv4=` (nginx 1.23.1) and `ipv6=`: whether client host names are confirmed
    /// with A and with AAAA queries.
    pub ipv4: bool,
    pub ipv6: bool,
}

/// The value of one `resolver` directive other than `off`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameServers {
    pub servers: Vec<SocketAddr>,
    pub ipv4: bool,
    pub ipv6: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Starttls {
    Off,
    On,
    Only,
}

/// `ssl_protocols` as a set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TlsProtocols {
    pub sslv2: bool,
    pub sslv3: bool,
    pub tlsv1: bool,
    pub tlsv1_1: bool,
    pub tlsv1_2: bool,
    pub tlsv1_3: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionCache {
    /// `off`: no cache, and session ids are refused.
    Off,
    /// `none` (the default): no cache, but the client is told sessions may be reused.
    None,
    /// `builtin[:size]` and/or `shared:name:size`; we keep one in-process cache of the
    /// summed size (in sessions for builtin, bytes for shared).
    Cache {
        builtin: Option<usize>,
        shared: Option<(String, usize)>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyClient {
    Off,
    On,
    Optional,
    OptionalNoCa,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// Certificate files, paired by position with `keys`.
    pub certificates: Vec<PathBuf>,
    pub keys: Vec<PathBuf>,
    pub password_file: Option<PathBuf>,
    pub protocols: TlsProtocols,
    pub ciphers: String,
    pub prefer_server_ciphers: bool,
    pub session_cache: SessionCache,
    pub session_timeout: Duration,
    pub session_tickets: bool,
    pub dhparam: Option<PathBuf>,
    pub ecdh_curve: String,
    pub verify_client: VerifyClient,
    pub verify_depth: u32,
    pub client_certificate: Option<PathBuf>,
    pub trusted_certificate: Option<PathBuf>,
    pub crl: Option<PathBuf>,
    pub conf_commands: Vec<(String, String)>,
    /// Where the directive that switched TLS on stands (for messages).
    pub location: Location,
}

/// `user name [group]`.
pub type User = (String, Option<String>);

/// One keyword of `imap_auth`, `pop3_auth` or `smtp_auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    Plain,
    Login,
    Apop,
    CramMd5,
    External,
    None,
}

impl AuthMethods {
    /// The set the keywords of one `*_auth` directive name.
    pub fn of(methods: &[AuthMethod]) -> AuthMethods {
        let mut set = AuthMethods::default();
        for method in methods {
            let bit = match method {
                AuthMethod::Plain => &mut set.plain,
                AuthMethod::Login => &mut set.login,
                AuthMethod::Apop => &mut set.apop,
                AuthMethod::CramMd5 => &mut set.cram_md5,
                AuthMethod::External => &mut set.external,
                AuthMethod::None => &mut set.none,
            };
            *bit = true;
        }
        set
    }
}

/// One keyword of `ssl_protocols`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsProtocol {
    SslV2,
    SslV3,
    TlsV1,
    TlsV1_1,
    TlsV1_2,
    TlsV1_3,
}

impl TlsProtocols {
    /// The set the keywords of `ssl_protocols` name.
    pub fn of(protocols: &[TlsProtocol]) -> TlsProtocols {
        let mut set = TlsProtocols::default();
        for protocol in protocols {
            let bit = match protocol {
                TlsProtocol::SslV2 => &mut set.sslv2,
                TlsProtocol::SslV3 => &mut set.sslv3,
                TlsProtocol::TlsV1 => &mut set.tlsv1,
                TlsProtocol::TlsV1_1 => &mut set.tlsv1_1,
                TlsProtocol::TlsV1_2 => &mut set.tlsv1_2,
                TlsProtocol::TlsV1_3 => &mut set.tlsv1_3,
            };
            *bit = true;
        }
        set
    }
}

/// `auth_http` after URL parsing and name resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthUrl {
    pub target: AuthTarget,
    pub host_header: String,
    pub uri: String,
}

/// The builtin half of `ssl_session_cache`, as nginx tracks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
    Off,
    None,
    Sessions(usize),
}

/// `ssl_session_cache` in one context: its two halves, merged separately.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheParts {
    pub builtin: Option<Builtin>,
    /// `shared:name:size`.
    pub shared: Option<(String, usize)>,
}
