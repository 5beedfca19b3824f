//! `docs/directives.md`, generated from [`super::directives::TABLE`] so the page and
//! the code cannot drift: `mailproxy --dump-directives-md > docs/directives.md`
//! regenerates it, and a unit test fails while the committed file differs.
//!
//! Status, contexts, argument counts and value types come from the table; this file
//! adds only what the table cannot say: the syntax line, nginx's default, and a note.

use super::directives::{Kind, Spec, Status, EVENTS, FOREIGN, MAIL, MAIN, SERVER, TABLE};

/// `(name, syntax, default, note)`.
type Doc = (&'static str, &'static str, &'static str, &'static str);

static DOCS: &[Doc] = &[
    ("user", "user name [group];", "nobody nogroup", "The workers' user: they serve every client, auth and backend byte, while the master stays root (config, keys, binding, signals). As in nginx the group defaults to one named like the user, and the directive is ignored with a warning when not started as root. A reload starts its workers as the new user. With `master_process off` the one process drops to `user` after binding, and only when the directive is given."),
    ("worker_processes", "worker_processes number | auto;", "1", "Worker processes sharing the listeners, each one thread (auto = CPU count). A reload starts the new number. With `master_process off`: the runtime threads of the one process."),
    ("pid", "pid file;", "/run/mailproxy.pid (nginx: /run/nginx.pid)", "The master's pid, mode 0644, written atomically after daemonising, removed at exit; `-s` reads it. Relative to the prefix. Its own default, so mailproxy never clobbers a running nginx's."),
    ("daemon", "daemon on | off;", "on", "Fork into the background, as nginx."),
    ("master_process", "master_process on | off;", "on", "on: a root master and `worker_processes` unprivileged workers, as nginx; off: one process serves (reload in place), for tests and debugging."),
    ("include", "include file | mask;", "-", "Relative to the main config file's directory; globs sorted; includes inside http{}/stream{} are not read."),
    ("load_module", "load_module file;", "-", "Accepted so nginx's `load_module ngx_mail_module.so` works unchanged; after events{}/mail{} it is `specified too late`."),
    ("env", "env variable[=value];", "-", "Workers' environment in nginx; mailproxy's workers keep the master's."),
    ("worker_rlimit_nofile", "worker_rlimit_nofile number;", "-", "setrlimit(RLIMIT_NOFILE) in each worker, as nginx."),
    ("worker_rlimit_core", "worker_rlimit_core size;", "-", "Core files are not tuned by mailproxy."),
    ("worker_shutdown_timeout", "worker_shutdown_timeout time;", "none (wait for ever)", "A worker told to stop gracefully (QUIT, or the old workers after a reload) closes its listeners at once and gives its sessions this long to end; without it, no session is dropped."),
    ("worker_priority", "worker_priority number;", "0", "Process tuning without meaning for one process."),
    ("worker_cpu_affinity", "worker_cpu_affinity cpumask ...;", "-", "Process tuning without meaning for one process."),
    ("working_directory", "working_directory directory;", "-", "Only decides where nginx's workers dump core."),
    ("lock_file", "lock_file file;", "logs/nginx.lock", "No accept mutex between processes."),
    ("pcre_jit", "pcre_jit on | off;", "off", "No regular expressions in mail."),
    ("timer_resolution", "timer_resolution interval;", "-", "tokio's timers need no tuning."),
    ("error_log", "error_log file | stderr | syslog:server=address[,parameter=value] [level];", "stderr error", "nginx's line format and levels; files (relative to the prefix), stderr, and syslog over UDP or a unix socket (RFC 3164, as nginx sends it). `memory:` is rejected. Only the first error_log of a context is used; a server's own error_log takes its sessions' lines."),
    ("events", "events { ... }", "-", "Required, as in nginx."),
    ("worker_connections", "worker_connections number;", "512", "Cap on concurrent client connections; a connection over it is closed and `N worker_connections are not enough` is logged at alert (nginx counts backend and auth connections too)."),
    ("use", "use method;", "-", "tokio picks epoll."),
    ("multi_accept", "multi_accept on | off;", "off", "Event-loop tuning without meaning here."),
    ("accept_mutex", "accept_mutex on | off;", "off", "No accept mutex between processes."),
    ("accept_mutex_delay", "accept_mutex_delay time;", "500ms", "No accept mutex between processes."),
    ("worker_aio_requests", "worker_aio_requests number;", "32", "No file AIO in a mail proxy."),
    ("debug_connection", "debug_connection address | CIDR | unix:;", "-", "nginx needs a --with-debug build for it."),
    ("http", "http { ... }", "-", "Read (so its syntax is checked) and skipped with one warning."),
    ("stream", "stream { ... }", "-", "Read (so its syntax is checked) and skipped with one warning."),
    ("mail", "mail { ... }", "-", "The mail block; only one."),
    ("server", "server { ... }", "-", "One mail server; needs a listen, a protocol and an auth_http."),
    ("listen", "listen address:port [ssl] [proxy_protocol] [backlog=number] [rcvbuf=size] [sndbuf=size] [bind] [ipv6only=on|off] [so_keepalive=on|off|[keepidle]:[keepintvl]:[keepcnt]];", "-", "See the reference §2.5. unix: sockets are not supported yet."),
    ("protocol", "protocol imap | pop3 | smtp;", "from the listen port", "Case-sensitive, as in nginx."),
    ("server_name", "server_name name;", "hostname", "Greetings, SMTP HELO/EHLO, the salt."),
    ("timeout", "timeout time;", "60s", "Pre-auth and backend-login deadline."),
    ("resolver", "resolver address ... [valid=time] [ipv6=on|off] | off;", "off", "SMTP client host name lookup (§7.2)."),
    ("resolver_timeout", "resolver_timeout time;", "30s", "Per DNS lookup."),
    ("max_errors", "max_errors number;", "5", "Invalid commands before the connection is closed."),
    ("auth_http", "auth_http URL;", "-", "`[http://]host[:port][/uri]` or `unix:/path[:/uri]`."),
    ("auth_http_timeout", "auth_http_timeout time;", "60s", ""),
    ("auth_http_header", "auth_http_header header value;", "-", "Appended to every auth request."),
    ("auth_http_pass_client_cert", "auth_http_pass_client_cert on | off;", "off", ""),
    ("auth_http_keepalive", "auth_http_keepalive connections;", "0 (off)", "**mailproxy only; nginx -t refuses it.** Keeps up to this many idle connections to a TCP auth_http server and asks over HTTP/1.1 instead of nginx's one HTTP/1.0 connection per request. A connection is reused only after a response with a `Content-Length` (at most 64 KiB of body) and no `Connection: close`; idle ones are closed after 30 s; a request that finds its reused connection closed is sent once more on a new one."),
    ("proxy", "proxy on | off;", "off", "Legacy; proxying always happens (nginx ignores it too)."),
    ("proxy_buffer", "proxy_buffer size;", "4k", ""),
    ("proxy_timeout", "proxy_timeout time;", "24h", "Relay idle timeout."),
    ("proxy_pass_error_message", "proxy_pass_error_message on | off;", "off", ""),
    ("proxy_protocol", "proxy_protocol on | off | v2;", "off", "PROXY header to the backend; `v2` (newer nginx) is an extension over 1.22.1."),
    ("proxy_smtp_auth", "proxy_smtp_auth on | off;", "off", ""),
    ("xclient", "xclient on | off;", "on", ""),
    ("imap_client_buffer", "imap_client_buffer size;", "4k", ""),
    ("imap_capabilities", "imap_capabilities extension ...;", "IMAP4 IMAP4rev1 UIDPLUS", ""),
    ("imap_auth", "imap_auth method ...;", "plain", "plain login cram-md5 external"),
    ("pop3_capabilities", "pop3_capabilities extension ...;", "TOP USER UIDL", ""),
    ("pop3_auth", "pop3_auth method ...;", "plain", "plain apop cram-md5 external"),
    ("smtp_client_buffer", "smtp_client_buffer size;", "4k", ""),
    ("smtp_greeting_delay", "smtp_greeting_delay time;", "0", ""),
    ("smtp_capabilities", "smtp_capabilities extension ...;", "-", ""),
    ("smtp_auth", "smtp_auth method ...;", "plain login", "plain login cram-md5 external none"),
    ("ssl", "ssl on | off;", "off", "Deprecated in nginx 1.15.0 (warning), removed in 1.25.1."),
    ("starttls", "starttls on | off | only;", "off", ""),
    ("ssl_certificate", "ssl_certificate file;", "-", "Repeatable (RSA + ECDSA)."),
    ("ssl_certificate_key", "ssl_certificate_key file;", "-", "One per certificate."),
    ("ssl_password_file", "ssl_password_file file;", "-", ""),
    ("ssl_dhparam", "ssl_dhparam file;", "-", ""),
    ("ssl_ecdh_curve", "ssl_ecdh_curve curve;", "auto", ""),
    ("ssl_protocols", "ssl_protocols [SSLv2] [SSLv3] [TLSv1] [TLSv1.1] [TLSv1.2] [TLSv1.3];", "TLSv1 TLSv1.1 TLSv1.2", ""),
    ("ssl_ciphers", "ssl_ciphers ciphers;", "HIGH:!aNULL:!MD5", ""),
    ("ssl_prefer_server_ciphers", "ssl_prefer_server_ciphers on | off;", "off", ""),
    ("ssl_session_cache", "ssl_session_cache off | none | [builtin[:size]] [shared:name:size];", "none", ""),
    ("ssl_session_tickets", "ssl_session_tickets on | off;", "on", ""),
    ("ssl_session_ticket_key", "ssl_session_ticket_key file;", "-", ""),
    ("ssl_session_timeout", "ssl_session_timeout time;", "5m", ""),
    ("ssl_verify_client", "ssl_verify_client on | off | optional | optional_no_ca;", "off", ""),
    ("ssl_verify_depth", "ssl_verify_depth number;", "1", ""),
    ("ssl_client_certificate", "ssl_client_certificate file;", "-", ""),
    ("ssl_trusted_certificate", "ssl_trusted_certificate file;", "-", ""),
    ("ssl_crl", "ssl_crl file;", "-", ""),
    ("ssl_conf_command", "ssl_conf_command name value;", "-", ""),
    ("set_real_ip_from", "set_real_ip_from address | CIDR | unix:;", "-", "Trusted PROXY-protocol senders."),
];

fn doc(name: &str) -> Option<&'static Doc> {
    DOCS.iter().find(|d| d.0 == name)
}

fn contexts(spec: &Spec) -> String {
    let names = [
        (MAIN, "main"),
        (EVENTS, "events"),
        (MAIL, "mail"),
        (SERVER, "server"),
    ];
    let list: Vec<&str> = names
        .iter()
        .filter(|(bit, _)| spec.contexts & bit != 0)
        .map(|(_, n)| *n)
        .collect();
    list.join(", ")
}

fn value_type(kind: Kind) -> String {
    match kind {
        Kind::Block => "block".into(),
        Kind::Flag => "flag".into(),
        Kind::Msec => "time (ms)".into(),
        Kind::Sec => "time (s)".into(),
        Kind::Size => "size".into(),
        Kind::Number => "number".into(),
        Kind::Str => "string".into(),
        Kind::Enum(words) => format!("one of {}", words.join(" ")),
        Kind::Bitmask(words) => format!("any of {}", words.join(" ")),
        Kind::List => "list (repeatable)".into(),
        Kind::Custom => "special".into(),
    }
}

fn status(status: Status) -> String {
    match status {
        Status::Supported => "supported".into(),
        Status::Silent => "accepted, nothing to do".into(),
        Status::Warn => "accepted, warns: no effect".into(),
        Status::Rejected(why) => format!("rejected: {why}"),
    }
}

/// The whole page, in table order.
pub fn markdown() -> String {
    let mut out = String::from(
        "# Directives\n\n\
         <!-- Generated by `mailproxy --dump-directives-md` from src/config/directives.rs \
         and src/config/directives_doc.rs. Do not edit: a unit test fails when this file \
         differs. -->\n\n\
         Every directive of nginx 1.22.1's core, events and mail modules that mailproxy \
         reads, and what it does with it. *accepted, warns: no effect* means the directive \
         is checked like nginx checks it but tunes something mailproxy does not have (one \
         process, tokio's event loop), and `-t` and start-up say so with a `[warn]` line; \
         *accepted, nothing to do* is for `proxy` (nginx ignores it too) and \
         `load_module` (the mail module is built in); *rejected* directives fail `-t` \
         with the reason. Names from nginx's http and stream modules are \
         `not allowed here` outside their blocks; any other name is `unknown directive`.\n\n\
         | Directive | Syntax | Default | Context | Value | Status | Notes |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for spec in TABLE {
        let (syntax, default, note) = doc(spec.name).map_or(("", "", ""), |d| (d.1, d.2, d.3));
        out.push_str(&format!(
            "| `{}` | `{}` | {} | {} | {} | {} | {} |\n",
            spec.name,
            syntax.replace('|', "\\|"),
            default,
            contexts(spec),
            value_type(spec.kind),
            status(spec.status),
            note.replace('|', "\\|"),
        ));
    }
    out.push_str("\n## Names of other nginx modules\n\nOutside their own blocks these give `\"X\" directive is not allowed here`, as in nginx: ");
    let names: Vec<String> = FOREIGN.iter().map(|n| format!("`{n}`")).collect();
    out.push_str(&names.join(", "));
    out.push_str(".\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_directive_is_documented_once() {
        for spec in TABLE {
            assert!(
                doc(spec.name).is_some(),
                "{} has no entry in DOCS",
                spec.name
            );
        }
        for d in DOCS {
            assert!(
                TABLE.iter().any(|s| s.name == d.0),
                "{} is not in TABLE",
                d.0
            );
        }
    }

    /// Fails while docs/directives.md differs from the table; regenerate with
    /// `cargo run -- --dump-directives-md > docs/directives.md`.
    #[test]
    fn docs_directives_md_is_generated_from_the_table() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/directives.md");
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == markdown(),
            "docs/directives.md is stale: run `mailproxy --dump-directives-md > docs/directives.md`"
        );
    }
}
