//! Every directive mailproxy understands, each declared once: where it may stand, how
//! many arguments it takes, its typed value and parser, how a repeat and a server
//! without it behave, its default (as config text, read by the same parser), its status
//! and its documentation. [`declare`](super::declare) turns the list into the typed
//! [`Settings`] of a context and the [`TABLE`] the reader walks by; `docs/directives.md`
//! is generated from the same list.
//!
//! The list mirrors the `ngx_command_t` arrays of nginx's core, events and mail
//! modules (1.22.1), so the same file gets the same verdict. Names that nginx knows
//! only from *other* modules (http, stream) are listed in [`FOREIGN`]: nginx says
//! `"X" directive is not allowed here` for them rather than `unknown directive`.

#![allow(clippy::type_complexity)]

use super::declare::{
    directives, ANY, EVENTS, MAIL, MAIL_SERVER, MAIN, NONE, ONE, ONE_MORE, SERVER, TWO,
};
pub use super::declare::{Decl, Set, Slot, Status};
use super::handlers as h;
use super::model::*;
use super::process as p;
use super::values::parse as v;
use std::path::PathBuf;
use std::time::Duration;

directives! {

    // core (ngx_core_module, ngx_conf_file.c)
    /// The workers' user: they serve every client, auth and backend byte, while the master
    /// stays root (config, keys, binding, signals). As in nginx the group defaults to one
    /// named like the user, and the directive is ignored with a warning when not started as
    /// root. A reload starts its workers as the new user. With `master_process off` the one
    /// process drops to `user` after binding, and only when the directive is given.
    "user" user: User = h::user,
        Own, Here, MAIN, (1, 2), Supported,
        default none "nobody nogroup", "user name [group];", "user [group]";
    /// Worker processes sharing the listeners, each one thread (auto = CPU count). A reload
    /// starts the new number. With `master_process off`: the runtime threads of the one
    /// process.
    "worker_processes" worker_processes: WorkerProcesses = h::worker_processes,
        Once, Here, MAIN, ONE, Supported,
        default "1", "worker_processes number | auto;", "number or auto";
    /// The master's pid, mode 0644, written atomically after daemonising, removed at exit;
    /// `-s` reads it. Relative to the prefix. Its own default, so mailproxy never clobbers a
    /// running nginx's.
    "pid" pid: PathBuf = v::prefix_path,
        Once, Here, MAIN, ONE, Supported,
        default "/run/mailproxy.pid", "pid file;", "path";
    /// Fork into the background, as nginx.
    "daemon" daemon: bool = v::flag,
        Once, Here, MAIN, ONE, Supported,
        default "on", "daemon on | off;", "flag";
    /// on: a root master and `worker_processes` unprivileged workers, as nginx; off: one
    /// process serves (reload in place), for tests and debugging.
    "master_process" master_process: bool = v::flag,
        Once, Here, MAIN, ONE, Supported,
        default "on", "master_process on | off;", "flag";
    /// Relative to the main config file's directory; globs sorted; read inside
    /// http{}/stream{} too, as nginx reads them.
    "include" include: () = h::block,
        Own, Here, ANY, ONE, Supported,
        default none "-", "include file | mask;", "path or glob";
    /// Accepted so nginx's `load_module ngx_mail_module.so` works unchanged; the file is
    /// checked as nginx's loader would (missing, not a shared object, not an nginx module,
    /// loaded twice), without loading it. `ngx_stream_module.so` makes `stream {}` known.
    /// After events{}/mail{} it is `specified too late`.
    "load_module" load_module: () = p::load_module,
        Own, Here, MAIN, ONE, Silent,
        default none "-", "load_module file;", "path";
    /// Workers' environment in nginx; mailproxy's workers keep the master's.
    "env" env: Vec<String> = v::args,
        Append, Here, MAIN, ONE, Warn,
        default none "-", "env variable[=value];", "list (repeatable)";
    /// setrlimit(RLIMIT_NOFILE) in each worker, as nginx.
    "worker_rlimit_nofile" worker_rlimit_nofile: u64 = v::number,
        Once, Here, MAIN, ONE, Supported,
        default none "-", "worker_rlimit_nofile number;", "number";
    /// Core files are not tuned by mailproxy.
    "worker_rlimit_core" worker_rlimit_core: String = v::string,
        Once, Here, MAIN, ONE, Warn,
        default none "-", "worker_rlimit_core size;", "size";
    /// A worker told to stop gracefully (QUIT, or the old workers after a reload) closes its
    /// listeners at once and gives its sessions this long to end; without it, no session is
    /// dropped.
    "worker_shutdown_timeout" worker_shutdown_timeout: Duration = v::msec,
        Once, Here, MAIN, ONE, Supported,
        default none "none (wait for ever)", "worker_shutdown_timeout time;", "time (ms)";
    /// Process tuning without meaning here; the value is checked as nginx does.
    "worker_priority" worker_priority: i64 = p::worker_priority,
        Own, Here, MAIN, ONE, Warn,
        default none "0", "worker_priority number;", "number";
    /// Process tuning without meaning here; the masks are checked as nginx does.
    "worker_cpu_affinity" worker_cpu_affinity: Vec<String> = p::cpu_affinity,
        Once, Here, MAIN, ONE_MORE, Warn,
        default none "-", "worker_cpu_affinity cpumask ...;", "list";
    /// Only decides where nginx's workers dump core.
    "working_directory" working_directory: String = v::string,
        Once, Here, MAIN, ONE, Warn,
        default none "-", "working_directory directory;", "path";
    /// No accept mutex between processes.
    "lock_file" lock_file: String = v::string,
        Once, Here, MAIN, ONE, Warn,
        default none "logs/nginx.lock", "lock_file file;", "path";
    /// No regular expressions in mail.
    "pcre_jit" pcre_jit: bool = v::flag,
        Once, Here, MAIN, ONE, Warn,
        default none "off", "pcre_jit on | off;", "flag";
    /// tokio's timers need no tuning.
    "timer_resolution" timer_resolution: Duration = v::msec,
        Once, Here, MAIN, ONE, Warn,
        default none "-", "timer_resolution interval;", "time (ms)";
    /// No thread pools (mailproxy reads no files while serving); `threads=` and the name
    /// are checked as nginx does.
    "thread_pool" thread_pool: Vec<String> = p::thread_pool,
        Own, Here, MAIN, (2, 3), Warn,
        default none "-", "thread_pool name threads=number [max_queue=number];", "name and parameters";
    /// nginx's line format and levels; files (relative to the prefix), stderr, and syslog
    /// over UDP or a unix socket (RFC 3164, as nginx sends it). `memory:` is rejected. Every
    /// error_log of a context gets the lines of its own level (`debug` logs debug lines;
    /// `debug_mail` and the other `debug_*` points are accepted). The top-level ones get the
    /// process lines; a mail{} or server{} one its sessions' (a server without one writes to
    /// mail{}'s, else to the top-level ones).
    "error_log" error_log: Vec<LogTarget> = h::error_log,
        Own, Inherit, MAIN | MAIL_SERVER, ONE_MORE, Supported,
        default none "stderr error", "error_log file | stderr | syslog:server=address[,parameter=value] [level];", "log target and level";

    // events
    /// Required, as in nginx.
    "events" events: () = h::block,
        Own, Here, MAIN, NONE, Supported,
        default none "-", "events { ... }", "block";
    /// Cap on concurrent client connections; a connection over it is closed and `N
    /// worker_connections are not enough` is logged at alert (nginx counts backend and auth
    /// connections too).
    "worker_connections" worker_connections: u64 = h::worker_connections,
        Once, Here, EVENTS, ONE, Supported,
        default "512", "worker_connections number;", "number";
    /// tokio picks epoll; the method must be one nginx knows on Linux.
    "use" use_method: String = p::event_method,
        Once, Here, EVENTS, ONE, Warn,
        default none "-", "use method;", "string";
    /// Event-loop tuning without meaning here.
    "multi_accept" multi_accept: bool = v::flag,
        Once, Here, EVENTS, ONE, Warn,
        default none "off", "multi_accept on | off;", "flag";
    /// No accept mutex between processes.
    "accept_mutex" accept_mutex: bool = v::flag,
        Once, Here, EVENTS, ONE, Warn,
        default none "off", "accept_mutex on | off;", "flag";
    /// No accept mutex between processes.
    "accept_mutex_delay" accept_mutex_delay: Duration = v::msec,
        Once, Here, EVENTS, ONE, Warn,
        default none "500ms", "accept_mutex_delay time;", "time (ms)";
    /// No file AIO in a mail proxy.
    "worker_aio_requests" worker_aio_requests: u64 = v::number,
        Once, Here, EVENTS, ONE, Warn,
        default none "32", "worker_aio_requests number;", "number";
    /// No per-client debug log; addresses are checked as nginx does.
    "debug_connection" debug_connection: Vec<TrustedSender> = super::proxy_protocol::trusted_sender,
        Append, Here, EVENTS, ONE, Warn,
        default none "-", "debug_connection address | CIDR | unix:;", "list (repeatable)";

    // blocks of other modules: read, not served, one warning
    /// Not served. Read with its includes, so that mail's directives inside it are refused
    /// and its shared zones cannot clash with mail's.
    "http" http: () = h::block,
        Own, Here, MAIN, NONE, Supported,
        default none "-", "http { ... }", "block";
    /// As http{}; known only after `load_module ngx_stream_module.so`, as in nginx.
    "stream" stream: () = h::block,
        Own, Here, MAIN, NONE, Supported,
        default none "-", "stream { ... }", "block";

    // ngx_mail_core_module
    /// The mail block; only one.
    "mail" mail: () = h::block,
        Own, Here, MAIN, NONE, Supported,
        default none "-", "mail { ... }", "block";
    /// One mail server; needs a listen, a protocol and an auth_http.
    "server" server: () = h::block,
        Own, Here, MAIL, NONE, Supported,
        default none "-", "server { ... }", "block";
    /// See the reference §2.5. A port range (`143-145`, as Debian's 1.22.1 accepts) is one
    /// listen per port, each bound and served. unix: sockets are not supported yet.
    /// `multipath` (nginx 1.29.7; 1.22.1 refuses it) opens an IPPROTO_MPTCP socket; where
    /// the kernel has no MPTCP the socket is TCP, with one warning (nginx fails to start).
    "listen" listen: Vec<Listen> = h::listen,
        Own, Here, SERVER, ONE_MORE, Supported,
        default none "-", "listen address:port [ssl] [proxy_protocol] [backlog=number] [rcvbuf=size] [sndbuf=size] [bind] [ipv6only=on|off] [so_keepalive=on|off|[keepidle]:[keepintvl]:[keepcnt]] [multipath];", "address and parameters (repeatable)";
    /// Case-sensitive, as in nginx.
    "protocol" protocol: Protocol = h::protocol,
        Replace, Here, SERVER, ONE, Supported,
        default none "from the listen port", "protocol imap | pop3 | smtp;", "imap, pop3 or smtp";
    /// Greetings, SMTP HELO/EHLO, the salt.
    "server_name" server_name: String = v::string,
        Once, Inherit, MAIL_SERVER, ONE, Supported,
        default none "hostname", "server_name name;", "string";
    /// Pre-auth and backend-login deadline.
    "timeout" timeout: Duration = v::msec,
        Once, Inherit, MAIL_SERVER, ONE, Supported,
        default "60s", "timeout time;", "time (ms)";
    /// SMTP client host name lookup (§7.2). `ipv4=off` (nginx 1.23.1; 1.22.1 refuses it)
    /// and `ipv6=off` leave out the A or the AAAA query of the forward confirmation (not
    /// both); `valid=` is checked and ignored (nothing is cached).
    "resolver" resolver: Option<NameServers> = super::resolver::servers,
        Once, Inherit, MAIL_SERVER, ONE_MORE, Supported,
        default "off", "resolver address ... [valid=time] [ipv4=on|off] [ipv6=on|off] | off;", "addresses or off";
    /// Per DNS lookup.
    "resolver_timeout" resolver_timeout: Duration = v::msec,
        Once, Inherit, MAIL_SERVER, ONE, Supported,
        default "30s", "resolver_timeout time;", "time (ms)";
    /// Invalid commands before the connection is closed.
    "max_errors" max_errors: u64 = v::number,
        Once, Inherit, MAIL_SERVER, ONE, Supported,
        default "5", "max_errors number;", "number";
    /// **freenginx 1.25.5; nginx 1.22.1 refuses it.** Commands allowed before
    /// authentication, SASL responses included (syntax errors, too long lines and IMAP
    /// literal announcements are not counted); the one past the limit gets the
    /// invalid-command reply, `client sent too many commands` is logged at info level, and
    /// the connection is closed.
    "max_commands" max_commands: u64 = v::number,
        Once, Inherit, MAIL_SERVER, ONE, Supported,
        default "1000", "max_commands number;", "number";

    // ngx_mail_auth_http_module
    /// `[http://]host[:port][/uri]` or `unix:/path[:/uri]`.
    "auth_http" auth_http: AuthUrl = h::auth_http,
        Replace, Inherit, MAIL_SERVER, ONE, Supported,
        default none "-", "auth_http URL;", "URL";
    "auth_http_timeout" auth_http_timeout: Duration = v::msec,
        Once, Inherit, MAIL_SERVER, ONE, Supported,
        default "60s", "auth_http_timeout time;", "time (ms)";
    /// Appended to every auth request.
    "auth_http_header" auth_http_header: (String, String) = v::pair,
        Append, Inherit, MAIL_SERVER, TWO, Supported,
        default none "-", "auth_http_header header value;", "name and value (repeatable)";
    "auth_http_pass_client_cert" auth_http_pass_client_cert: bool = v::flag,
        Once, Inherit, MAIL_SERVER, ONE, Supported,
        default "off", "auth_http_pass_client_cert on | off;", "flag";

    // mailproxy's own: not in nginx, which would refuse a config that uses it
    /// **mailproxy only; nginx -t refuses it.** Keeps up to this many idle connections to a
    /// TCP auth_http server and asks over HTTP/1.1 instead of nginx's one HTTP/1.0 connection
    /// per request. A connection is reused only after a response with a `Content-Length` (at
    /// most 64 KiB of body) and no `Connection: close`; idle ones are closed after 30 s; a
    /// request that finds its reused connection closed is sent once more on a new one.
    "auth_http_keepalive" auth_http_keepalive: u64 = v::number,
        Once, Inherit, MAIL_SERVER, ONE, Supported,
        default "0", "auth_http_keepalive connections;", "number";

    // ngx_mail_proxy_module
    /// Legacy; proxying always happens (nginx ignores it too).
    "proxy" proxy: bool = v::flag,
        Once, Inherit, MAIL_SERVER, ONE, Silent,
        default none "off", "proxy on | off;", "flag";
    "proxy_buffer" proxy_buffer: usize = v::size,
        Once, Inherit, MAIL_SERVER, ONE, Supported,
        default "4k", "proxy_buffer size;", "size";
    /// Relay idle timeout.
    "proxy_timeout" proxy_timeout: Duration = v::msec,
        Once, Inherit, MAIL_SERVER, ONE, Supported,
        default "24h", "proxy_timeout time;", "time (ms)";
    "proxy_pass_error_message" proxy_pass_error_message: bool = v::flag,
        Once, Inherit, MAIL_SERVER, ONE, Supported,
        default "off", "proxy_pass_error_message on | off;", "flag";
    /// PROXY header to the backend; `v2` (newer nginx) is an extension over 1.22.1.
    "proxy_protocol" proxy_protocol: Option<ProxyProtocolVersion> = super::proxy_protocol::send_version,
        Once, Inherit, MAIL_SERVER, ONE, Supported,
        default "off", "proxy_protocol on | off | v2;", "on, off or v2";
    "proxy_smtp_auth" proxy_smtp_auth: bool = v::flag,
        Once, Inherit, MAIL_SERVER, ONE, Supported,
        default "off", "proxy_smtp_auth on | off;", "flag";
    "xclient" xclient: bool = v::flag,
        Once, Inherit, MAIL_SERVER, ONE, Supported,
        default "on", "xclient on | off;", "flag";

    // ngx_mail_imap_module
    "imap_client_buffer" imap_client_buffer: usize = v::size,
        Once, Inherit, MAIL_SERVER, ONE, Supported,
        default "4k", "imap_client_buffer size;", "size";
    "imap_capabilities" imap_capabilities: Vec<String> = v::args,
        Append, Inherit, MAIL_SERVER, ONE_MORE, Supported,
        default "IMAP4 IMAP4rev1 UIDPLUS", "imap_capabilities extension ...;", "words (repeatable)";
    /// plain login cram-md5 external
    "imap_auth" imap_auth: AuthMethod = v::imap_auth,
        Union, Inherit, MAIL_SERVER, ONE_MORE, Supported,
        default "plain", "imap_auth method ...;", "any of plain login cram-md5 external";

    // ngx_mail_pop3_module
    "pop3_capabilities" pop3_capabilities: Vec<String> = v::args,
        Append, Inherit, MAIL_SERVER, ONE_MORE, Supported,
        default "TOP USER UIDL", "pop3_capabilities extension ...;", "words (repeatable)";
    /// plain apop cram-md5 external
    "pop3_auth" pop3_auth: AuthMethod = v::pop3_auth,
        Union, Inherit, MAIL_SERVER, ONE_MORE, Supported,
        default "plain", "pop3_auth method ...;", "any of plain apop cram-md5 external";

    // ngx_mail_smtp_module
    "smtp_client_buffer" smtp_client_buffer: usize = v::size,
        Once, Inherit, MAIL_SERVER, ONE, Supported,
        default "4k", "smtp_client_buffer size;", "size";
    "smtp_greeting_delay" smtp_greeting_delay: Duration = v::msec,
        Once, Inherit, MAIL_SERVER, ONE, Supported,
        default "0", "smtp_greeting_delay time;", "time (ms)";
    "smtp_capabilities" smtp_capabilities: Vec<String> = v::args,
        Append, Inherit, MAIL_SERVER, ONE_MORE, Supported,
        default none "-", "smtp_capabilities extension ...;", "words (repeatable)";
    /// plain login cram-md5 external none
    "smtp_auth" smtp_auth: AuthMethod = v::smtp_auth,
        Union, Inherit, MAIL_SERVER, ONE_MORE, Supported,
        default "plain login", "smtp_auth method ...;", "any of plain login cram-md5 external none";

    // ngx_mail_ssl_module
    /// Deprecated in nginx 1.15.0 (warning), removed in 1.25.1.
    "ssl" ssl: bool = h::ssl,
        Own, Inherit, MAIL_SERVER, ONE, Supported,
        default "off" by (v::flag), "ssl on | off;", "flag";
    "starttls" starttls: Starttls = h::starttls,
        Own, Inherit, MAIL_SERVER, ONE, Supported,
        default "off" by (v::starttls), "starttls on | off | only;", "on, off or only";
    /// Repeatable (RSA + ECDSA).
    "ssl_certificate" ssl_certificate: String = v::string,
        Append, Inherit, MAIL_SERVER, ONE, Supported,
        default none "-", "ssl_certificate file;", "file (repeatable)";
    /// One per certificate.
    "ssl_certificate_key" ssl_certificate_key: String = v::string,
        Append, Inherit, MAIL_SERVER, ONE, Supported,
        default none "-", "ssl_certificate_key file;", "file (repeatable)";
    /// Read when the directive is read, as nginx does, even where no server uses TLS.
    "ssl_password_file" ssl_password_file: String = h::password_file,
        Once, Inherit, MAIL_SERVER, ONE, Supported,
        default none "-", "ssl_password_file file;", "file";
    "ssl_dhparam" ssl_dhparam: String = v::string,
        Once, Inherit, MAIL_SERVER, ONE, Supported,
        default none "-", "ssl_dhparam file;", "file";
    "ssl_ecdh_curve" ssl_ecdh_curve: String = v::string,
        Once, Inherit, MAIL_SERVER, ONE, Supported,
        default "auto", "ssl_ecdh_curve curve;", "curve list";
    /// nginx 1.22.1's default is `TLSv1 TLSv1.1 TLSv1.2`, of which only TLSv1.2 negotiates
    /// with OpenSSL 3 (§13.4); mailproxy takes newer nginx's `TLSv1.2 TLSv1.3`, so TLS 1.3
    /// clients that failed against 1.22.1 work.
    "ssl_protocols" ssl_protocols: TlsProtocol = v::tls_protocol,
        Union, Inherit, MAIL_SERVER, ONE_MORE, Supported,
        default "TLSv1.2 TLSv1.3", "ssl_protocols [SSLv2] [SSLv3] [TLSv1] [TLSv1.1] [TLSv1.2] [TLSv1.3];", "any of SSLv2 SSLv3 TLSv1 TLSv1.1 TLSv1.2 TLSv1.3";
    "ssl_ciphers" ssl_ciphers: String = v::string,
        Once, Inherit, MAIL_SERVER, ONE, Supported,
        default "HIGH:!aNULL:!MD5", "ssl_ciphers ciphers;", "cipher list";
    "ssl_prefer_server_ciphers" ssl_prefer_server_ciphers: bool = v::flag,
        Once, Inherit, MAIL_SERVER, ONE, Supported,
        default "off", "ssl_prefer_server_ciphers on | off;", "flag";
    /// **nginx 1.29.1; nginx 1.22.1 refuses it.** Compressed server certificates (RFC
    /// 8879) need OpenSSL 3.2 or later (or BoringSSL/AWS-LC); the OpenSSL 3.0 mailproxy is
    /// built with cannot compress them, so it is accepted and checked (a flag) with the
    /// `has no effect` warning, as nginx itself warns `"ssl_certificate_compression" is
    /// not supported on this platform, ignored` on such a library.
    "ssl_certificate_compression" ssl_certificate_compression: bool = v::flag,
        Once, Inherit, MAIL_SERVER, ONE, Warn,
        default none "off", "ssl_certificate_compression on | off;", "flag";
    "ssl_session_cache" ssl_session_cache: CacheParts = h::session_cache,
        Own, Parts, MAIL_SERVER, (1, 2), Supported,
        default none "none", "ssl_session_cache off | none | [builtin[:size]] [shared:name:size];", "cache spec";
    "ssl_session_tickets" ssl_session_tickets: bool = v::flag,
        Once, Inherit, MAIL_SERVER, ONE, Supported,
        default "on", "ssl_session_tickets on | off;", "flag";
    "ssl_session_ticket_key" ssl_session_ticket_key: String = v::string,
        Append, Inherit, MAIL_SERVER, ONE, Warn,
        default none "-", "ssl_session_ticket_key file;", "file (repeatable)";
    "ssl_session_timeout" ssl_session_timeout: Duration = v::sec,
        Once, Inherit, MAIL_SERVER, ONE, Supported,
        default "5m", "ssl_session_timeout time;", "time (s)";
    "ssl_verify_client" ssl_verify_client: VerifyClient = v::verify_client,
        Once, Inherit, MAIL_SERVER, ONE, Supported,
        default "off", "ssl_verify_client on | off | optional | optional_no_ca;", "on, off, optional or optional_no_ca";
    "ssl_verify_depth" ssl_verify_depth: u64 = v::number,
        Once, Inherit, MAIL_SERVER, ONE, Supported,
        default "1", "ssl_verify_depth number;", "number";
    "ssl_client_certificate" ssl_client_certificate: String = v::string,
        Once, Inherit, MAIL_SERVER, ONE, Supported,
        default none "-", "ssl_client_certificate file;", "file";
    "ssl_trusted_certificate" ssl_trusted_certificate: String = v::string,
        Once, Inherit, MAIL_SERVER, ONE, Supported,
        default none "-", "ssl_trusted_certificate file;", "file";
    "ssl_crl" ssl_crl: String = v::string,
        Once, Inherit, MAIL_SERVER, ONE, Supported,
        default none "-", "ssl_crl file;", "file";
    "ssl_conf_command" ssl_conf_command: (String, String) = v::pair,
        Append, Inherit, MAIL_SERVER, TWO, Supported,
        default none "-", "ssl_conf_command name value;", "name and value (repeatable)";

    // ngx_mail_realip_module
    /// Trusted PROXY-protocol senders.
    "set_real_ip_from" set_real_ip_from: Vec<TrustedSender> = super::proxy_protocol::trusted_sender,
        Append, Inherit, MAIL_SERVER, ONE, Supported,
        default none "-", "set_real_ip_from address | CIDR | unix:;", "address, CIDR or unix: (repeatable)";
}

/// Directive names that nginx's http and stream modules define. Used outside their
/// blocks they are `not allowed here`, not `unknown` (§19.9).
pub static FOREIGN: &[&str] = &[
    "access_log",
    "add_header",
    "allow",
    "client_max_body_size",
    "default_type",
    "deny",
    "gzip",
    "index",
    "keepalive_timeout",
    "least_conn",
    "limit_conn",
    "limit_conn_dry_run",
    "limit_conn_log_level",
    "limit_conn_status",
    "limit_conn_zone",
    "location",
    "log_format",
    "map_hash_bucket_size",
    "map_hash_max_size",
    "open_log_file_cache",
    "proxy_bind",
    "proxy_buffer_size",
    "proxy_connect_timeout",
    "proxy_next_upstream",
    "proxy_next_upstream_timeout",
    "proxy_next_upstream_tries",
    "proxy_pass",
    "proxy_set_header",
    "proxy_socket_keepalive",
    "proxy_ssl_certificate",
    "proxy_ssl_certificate_key",
    "proxy_ssl_ciphers",
    "proxy_ssl_conf_command",
    "proxy_ssl_crl",
    "proxy_ssl_name",
    "proxy_ssl_password_file",
    "proxy_ssl_protocols",
    "proxy_ssl_server_name",
    "proxy_ssl_session_reuse",
    "proxy_ssl_trusted_certificate",
    "proxy_ssl_verify",
    "proxy_ssl_verify_depth",
    "random",
    "real_ip_header",
    "return",
    "rewrite",
    "root",
    "sendfile",
    "server_names_hash_bucket_size",
    "server_tokens",
    "split_clients",
    "ssl_buffer_size",
    "ssl_early_data",
    "ssl_reject_handshake",
    "ssl_stapling",
    "ssl_stapling_verify",
    "tcp_nodelay",
    "tcp_nopush",
    "types",
    "types_hash_max_size",
    "upstream",
    "variables_hash_bucket_size",
    "variables_hash_max_size",
];

/// Directive names that only nginx's stream modules define: `not allowed here` outside
/// stream{} once `ngx_stream_module.so` is loaded, `unknown` before (checked against
/// Debian's module).
pub static STREAM_ONLY: &[&str] = &[
    "preread_buffer_size",
    "preread_timeout",
    "proxy_download_rate",
    "proxy_downstream_buffer",
    "proxy_half_close",
    "proxy_protocol_timeout",
    "proxy_requests",
    "proxy_responses",
    "proxy_ssl",
    "proxy_upload_rate",
    "proxy_upstream_buffer",
    "ssl_alpn",
    "ssl_handshake_timeout",
    "ssl_preread",
];

/// Our directives that nginx's http modules also define (somewhere in http{}): any
/// other of ours inside http{} is `not allowed here` (checked against nginx 1.22.1).
pub static ALSO_HTTP: &[&str] = &[
    "include",
    "error_log",
    "server",
    "listen",
    "server_name",
    "resolver",
    "resolver_timeout",
    "ssl",
    "set_real_ip_from",
];

/// The same for stream{} (its `ssl_*` are http's but `ssl` itself; `proxy_timeout`
/// and `proxy_protocol` are stream's own).
pub static ALSO_STREAM: &[&str] = &[
    "include",
    "error_log",
    "server",
    "listen",
    "resolver",
    "resolver_timeout",
    "proxy_timeout",
    "proxy_protocol",
    "set_real_ip_from",
];

/// Whether our directive `decl` is one the http (`stream == false`) or stream
/// modules define too. Every `ssl_*` of mail is in both.
pub fn shared_with(decl: &Decl<Settings>, stream: bool) -> bool {
    let list = if stream { ALSO_STREAM } else { ALSO_HTTP };
    (decl.name.starts_with("ssl_")) || list.contains(&decl.name)
}

/// Looks a directive name up (names are case-sensitive, §19.10).
pub fn lookup(name: &str) -> Option<&'static Decl<Settings>> {
    TABLE.iter().find(|decl| decl.name == name)
}

/// Whether some nginx module other than ours defines `name`.
pub fn is_foreign(name: &str) -> bool {
    FOREIGN.contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_arities_sane() {
        for (i, decl) in TABLE.iter().enumerate() {
            assert!(
                TABLE[i + 1..].iter().all(|s| s.name != decl.name),
                "duplicate entry {}",
                decl.name
            );
            assert!(decl.args.0 <= decl.args.1, "{}", decl.name);
            assert!(!is_foreign(decl.name), "{} is ours", decl.name);
            assert!(!STREAM_ONLY.contains(&decl.name), "{} is ours", decl.name);
            assert!(!decl.syntax.is_empty(), "{} has no syntax line", decl.name);
        }
        for name in STREAM_ONLY {
            assert!(!is_foreign(name), "{name} is stream's only, not http's");
        }
    }

    /// Every text default goes through its directive's parser; the getters would
    /// panic on one that does not parse.
    #[test]
    fn every_default_parses() {
        let with_default = TABLE.iter().filter(|d| d.default.is_some()).count();
        assert_eq!(Settings::default().read_every_default(), with_default);
    }

    #[test]
    fn defaults_are_nginx_values() {
        let s = Settings::default();
        assert_eq!(s.timeout(), Duration::from_secs(60));
        assert_eq!(s.proxy_timeout(), Duration::from_secs(24 * 3600));
        assert_eq!(s.proxy_buffer(), 4096);
        assert_eq!(
            s.imap_capabilities(),
            vec![vec!["IMAP4", "IMAP4rev1", "UIDPLUS"]]
        );
        assert_eq!(s.smtp_auth(), vec![AuthMethod::Plain, AuthMethod::Login]);
        assert_eq!(s.ssl_session_timeout(), Duration::from_secs(300));
        assert_eq!(s.resolver(), None);
        assert_eq!(s.pid(), PathBuf::from(crate::config::DEFAULT_PID));
    }

    #[test]
    fn every_reference_table_directive_is_present() {
        let expected = [
            "mail",
            "server",
            "listen",
            "protocol",
            "server_name",
            "timeout",
            "resolver",
            "resolver_timeout",
            "error_log",
            "max_errors",
            "auth_http",
            "auth_http_header",
            "auth_http_pass_client_cert",
            "auth_http_timeout",
            "proxy",
            "proxy_buffer",
            "proxy_pass_error_message",
            "proxy_timeout",
            "proxy_protocol",
            "proxy_smtp_auth",
            "xclient",
            "imap_auth",
            "imap_capabilities",
            "imap_client_buffer",
            "pop3_auth",
            "pop3_capabilities",
            "smtp_auth",
            "smtp_capabilities",
            "smtp_client_buffer",
            "smtp_greeting_delay",
            "ssl",
            "starttls",
            "ssl_certificate",
            "ssl_certificate_key",
            "ssl_password_file",
            "ssl_dhparam",
            "ssl_ecdh_curve",
            "ssl_protocols",
            "ssl_ciphers",
            "ssl_prefer_server_ciphers",
            "ssl_session_cache",
            "ssl_session_tickets",
            "ssl_session_ticket_key",
            "ssl_session_timeout",
            "ssl_verify_client",
            "ssl_verify_depth",
            "ssl_client_certificate",
            "ssl_trusted_certificate",
            "ssl_crl",
            "ssl_conf_command",
            "set_real_ip_from",
            "user",
            "worker_processes",
            "pid",
            "daemon",
            "master_process",
            "include",
            "load_module",
            "env",
            "worker_rlimit_nofile",
            "worker_shutdown_timeout",
            "events",
            "worker_connections",
            "use",
            "multi_accept",
            "accept_mutex",
        ];
        for name in expected {
            assert!(lookup(name).is_some(), "{name} missing");
        }
        assert!(lookup("Timeout").is_none());
    }
}
