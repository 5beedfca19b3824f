//! The one table of every directive mailproxy understands: where it may stand, how
//! many arguments it takes, what its value is, and whether mailproxy honours it.
//!
//! The table mirrors the `ngx_command_t` arrays of nginx's core, events and mail
//! modules (1.22.1), so the same file gets the same verdict. Names that nginx knows
//! only from *other* modules (http, stream) are listed in [`FOREIGN`]: nginx says
//! `"X" directive is not allowed here` for them rather than `unknown directive`.

/// Contexts, as bits so one entry can allow several.
pub type Contexts = u8;
pub const MAIN: Contexts = 1;
pub const EVENTS: Contexts = 2;
pub const MAIL: Contexts = 4;
pub const SERVER: Contexts = 8;
pub const MAIL_SERVER: Contexts = MAIL | SERVER;
/// `include` is allowed everywhere.
pub const ANY: Contexts = MAIN | EVENTS | MAIL | SERVER;

/// Marks "no upper bound" in [`Spec::max_args`].
pub const MANY: u8 = u8::MAX;

/// What a directive's arguments mean, which decides how they are checked and how a
/// repeated directive behaves (§2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Opens a `{}` block.
    Block,
    /// `on`/`off`; scalar.
    Flag,
    /// Time in milliseconds (`ms` allowed); scalar.
    Msec,
    /// Time in seconds (`y`/`M` allowed); scalar.
    Sec,
    /// Size with `k`/`m`; scalar.
    Size,
    /// Plain number; scalar.
    Number,
    /// Free text; scalar.
    Str,
    /// One keyword of the list, case-insensitive; scalar.
    Enum(&'static [&'static str]),
    /// Keywords OR-ed together; repeats in one context add up.
    Bitmask(&'static [&'static str]),
    /// Each occurrence appends its arguments as one entry.
    List,
    /// Checked by its own handler in `handlers.rs`.
    Custom,
}

impl Kind {
    /// Scalars refuse a second occurrence in one context (`is duplicate`).
    pub fn is_scalar(self) -> bool {
        matches!(
            self,
            Kind::Flag
                | Kind::Msec
                | Kind::Sec
                | Kind::Size
                | Kind::Number
                | Kind::Str
                | Kind::Enum(_)
        )
    }
}

/// What mailproxy does with a directive it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Honoured.
    Supported,
    /// Accepted and checked, and needs no effect: nginx itself ignores it (`proxy`),
    /// or mailproxy has it built in (`load_module` of the mail module).
    Silent,
    /// Accepted and checked, but without effect, and the operator may rely on it:
    /// warn `"X" directive has no effect in mailproxy`.
    Warn,
    /// Refused with the given reason, even though nginx would accept it.
    Rejected(&'static str),
}

#[derive(Debug, Clone, Copy)]
pub struct Spec {
    pub name: &'static str,
    pub contexts: Contexts,
    pub min_args: u8,
    pub max_args: u8,
    pub kind: Kind,
    pub status: Status,
}

const fn d(name: &'static str, contexts: Contexts, args: (u8, u8), kind: Kind) -> Spec {
    Spec {
        name,
        contexts,
        min_args: args.0,
        max_args: args.1,
        kind,
        status: Status::Supported,
    }
}

impl Spec {
    const fn with(self, status: Status) -> Spec {
        Spec { status, ..self }
    }
}

const ONE: (u8, u8) = (1, 1);
const TWO: (u8, u8) = (2, 2);
const NONE: (u8, u8) = (0, 0);
const ONE_MORE: (u8, u8) = (1, MANY);

pub const IMAP_AUTH: &[&str] = &["plain", "login", "cram-md5", "external"];
pub const POP3_AUTH: &[&str] = &["plain", "apop", "cram-md5", "external"];
pub const SMTP_AUTH: &[&str] = &["plain", "login", "cram-md5", "external", "none"];
pub const SSL_PROTOCOLS: &[&str] = &["SSLv2", "SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"];
pub const STARTTLS: &[&str] = &["off", "on", "only"];
pub const VERIFY_CLIENT: &[&str] = &["off", "on", "optional", "optional_no_ca"];

use Kind::*;

/// Every directive, grouped by the nginx module that defines it.
pub static TABLE: &[Spec] = &[
    // core (ngx_core_module, ngx_conf_file.c)
    d("user", MAIN, (1, 2), Custom),
    d("worker_processes", MAIN, ONE, Custom),
    d("pid", MAIN, ONE, Str),
    d("daemon", MAIN, ONE, Flag),
    d("master_process", MAIN, ONE, Flag),
    d("include", ANY, ONE, Custom),
    d("load_module", MAIN, ONE, Custom).with(Status::Silent),
    d("env", MAIN, ONE, List).with(Status::Warn),
    d("worker_rlimit_nofile", MAIN, ONE, Number),
    d("worker_rlimit_core", MAIN, ONE, Str).with(Status::Warn),
    d("worker_shutdown_timeout", MAIN, ONE, Msec),
    d("worker_priority", MAIN, ONE, Str).with(Status::Warn),
    d("worker_cpu_affinity", MAIN, ONE_MORE, List).with(Status::Warn),
    d("working_directory", MAIN, ONE, Str).with(Status::Warn),
    d("lock_file", MAIN, ONE, Str).with(Status::Warn),
    d("pcre_jit", MAIN, ONE, Flag).with(Status::Warn),
    d("timer_resolution", MAIN, ONE, Msec).with(Status::Warn),
    d("error_log", MAIN | MAIL_SERVER, ONE_MORE, Custom),
    // events
    d("events", MAIN, NONE, Block),
    d("worker_connections", EVENTS, ONE, Custom),
    d("use", EVENTS, ONE, Str).with(Status::Warn),
    d("multi_accept", EVENTS, ONE, Flag).with(Status::Warn),
    d("accept_mutex", EVENTS, ONE, Flag).with(Status::Warn),
    d("accept_mutex_delay", EVENTS, ONE, Msec).with(Status::Warn),
    d("worker_aio_requests", EVENTS, ONE, Number).with(Status::Warn),
    d("debug_connection", EVENTS, ONE, List).with(Status::Warn),
    // blocks of other modules: read, not interpreted, one warning
    d("http", MAIN, NONE, Block),
    d("stream", MAIN, NONE, Block),
    // ngx_mail_core_module
    d("mail", MAIN, NONE, Block),
    d("server", MAIL, NONE, Block),
    d("listen", SERVER, ONE_MORE, Custom),
    d("protocol", SERVER, ONE, Custom),
    d("server_name", MAIL_SERVER, ONE, Str),
    d("timeout", MAIL_SERVER, ONE, Msec),
    d("resolver", MAIL_SERVER, ONE_MORE, Custom),
    d("resolver_timeout", MAIL_SERVER, ONE, Msec),
    d("max_errors", MAIL_SERVER, ONE, Number),
    // ngx_mail_auth_http_module
    d("auth_http", MAIL_SERVER, ONE, Custom),
    d("auth_http_timeout", MAIL_SERVER, ONE, Msec),
    d("auth_http_header", MAIL_SERVER, TWO, List),
    d("auth_http_pass_client_cert", MAIL_SERVER, ONE, Flag),
    // mailproxy's own: not in nginx, which would refuse a config that uses it
    d("auth_http_keepalive", MAIL_SERVER, ONE, Number),
    // ngx_mail_proxy_module
    d("proxy", MAIL_SERVER, ONE, Flag).with(Status::Silent),
    d("proxy_buffer", MAIL_SERVER, ONE, Size),
    d("proxy_timeout", MAIL_SERVER, ONE, Msec),
    d("proxy_pass_error_message", MAIL_SERVER, ONE, Flag),
    d("proxy_protocol", MAIL_SERVER, ONE, Custom),
    d("proxy_smtp_auth", MAIL_SERVER, ONE, Flag),
    d("xclient", MAIL_SERVER, ONE, Flag),
    // ngx_mail_imap_module
    d("imap_client_buffer", MAIL_SERVER, ONE, Size),
    d("imap_capabilities", MAIL_SERVER, ONE_MORE, List),
    d("imap_auth", MAIL_SERVER, ONE_MORE, Bitmask(IMAP_AUTH)),
    // ngx_mail_pop3_module
    d("pop3_capabilities", MAIL_SERVER, ONE_MORE, List),
    d("pop3_auth", MAIL_SERVER, ONE_MORE, Bitmask(POP3_AUTH)),
    // ngx_mail_smtp_module
    d("smtp_client_buffer", MAIL_SERVER, ONE, Size),
    d("smtp_greeting_delay", MAIL_SERVER, ONE, Msec),
    d("smtp_capabilities", MAIL_SERVER, ONE_MORE, List),
    d("smtp_auth", MAIL_SERVER, ONE_MORE, Bitmask(SMTP_AUTH)),
    // ngx_mail_ssl_module
    d("ssl", MAIL_SERVER, ONE, Custom),
    d("starttls", MAIL_SERVER, ONE, Custom),
    d("ssl_certificate", MAIL_SERVER, ONE, List),
    d("ssl_certificate_key", MAIL_SERVER, ONE, List),
    d("ssl_password_file", MAIL_SERVER, ONE, Str),
    d("ssl_dhparam", MAIL_SERVER, ONE, Str),
    d("ssl_ecdh_curve", MAIL_SERVER, ONE, Str),
    d(
        "ssl_protocols",
        MAIL_SERVER,
        ONE_MORE,
        Bitmask(SSL_PROTOCOLS),
    ),
    d("ssl_ciphers", MAIL_SERVER, ONE, Str),
    d("ssl_prefer_server_ciphers", MAIL_SERVER, ONE, Flag),
    d("ssl_session_cache", MAIL_SERVER, (1, 2), Custom),
    d("ssl_session_tickets", MAIL_SERVER, ONE, Flag),
    d("ssl_session_ticket_key", MAIL_SERVER, ONE, List).with(Status::Warn),
    d("ssl_session_timeout", MAIL_SERVER, ONE, Sec),
    d("ssl_verify_client", MAIL_SERVER, ONE, Enum(VERIFY_CLIENT)),
    d("ssl_verify_depth", MAIL_SERVER, ONE, Number),
    d("ssl_client_certificate", MAIL_SERVER, ONE, Str),
    d("ssl_trusted_certificate", MAIL_SERVER, ONE, Str),
    d("ssl_crl", MAIL_SERVER, ONE, Str),
    d("ssl_conf_command", MAIL_SERVER, TWO, List),
    // ngx_mail_realip_module
    d("set_real_ip_from", MAIL_SERVER, ONE, Custom),
];

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
    "limit_conn",
    "location",
    "log_format",
    "proxy_connect_timeout",
    "proxy_pass",
    "proxy_set_header",
    "proxy_ssl",
    "real_ip_header",
    "return",
    "rewrite",
    "root",
    "sendfile",
    "server_names_hash_bucket_size",
    "server_tokens",
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
];

/// Looks a directive name up (names are case-sensitive, §19.10).
pub fn lookup(name: &str) -> Option<&'static Spec> {
    TABLE.iter().find(|spec| spec.name == name)
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
        for (i, spec) in TABLE.iter().enumerate() {
            assert!(
                TABLE[i + 1..].iter().all(|s| s.name != spec.name),
                "duplicate entry {}",
                spec.name
            );
            assert!(spec.min_args <= spec.max_args, "{}", spec.name);
            assert!(!is_foreign(spec.name), "{} is ours", spec.name);
        }
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
        assert!(lookup("ssl_certificate_compression").is_none());
        assert!(lookup("Timeout").is_none());
    }
}
