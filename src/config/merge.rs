//! Scopes → the typed model: server value, else mail value, else the default.
//!
//! Lists (capabilities, `auth_http_header`, certificates) are taken whole from the
//! innermost context that sets them — a server's list *replaces* the mail list (§2.3).

use super::build::{emerg, AuthUrl, Builder, Builtin, Scope, Val};
use super::handlers::resolve;
use super::model::*;
use super::proxy_protocol;
use super::Diagnostic;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// nginx uses the page size; 4k on x86-64 Linux.
const PAGE: usize = 4096;

/// Default `ssl_protocols`. nginx 1.22.1 says `TLSv1 TLSv1.1 TLSv1.2`, but on the
/// reference platform (OpenSSL 3) only TLSv1.2 negotiates anyway (§13.4); we use
/// newer nginx's `TLSv1.2 TLSv1.3`, so TLS 1.3 clients that failed against 1.22.1 work.
const DEFAULT_PROTOCOLS: TlsProtocols = TlsProtocols {
    sslv2: false,
    sslv3: false,
    tlsv1: false,
    tlsv1_1: false,
    tlsv1_2: true,
    tlsv1_3: true,
};

/// A server's view of its settings: its own scope over the mail scope.
struct View<'a> {
    server: &'a Scope,
    mail: &'a Scope,
}

impl<'a> View<'a> {
    fn get(&self, name: &str) -> Option<&'a Val> {
        self.server.get(name).or_else(|| self.mail.get(name))
    }

    fn flag(&self, name: &str, default: bool) -> bool {
        match self.get(name) {
            Some(Val::Flag(v)) => *v,
            _ => default,
        }
    }

    fn time(&self, name: &str, default: Duration) -> Duration {
        match self.get(name) {
            Some(Val::Time(v)) => *v,
            _ => default,
        }
    }

    fn size(&self, name: &str, default: usize) -> usize {
        match self.get(name) {
            Some(Val::Size(v)) => *v,
            _ => default,
        }
    }

    fn num(&self, name: &str, default: u64) -> u64 {
        match self.get(name) {
            Some(Val::Num(v)) => *v,
            _ => default,
        }
    }

    fn str(&self, name: &str) -> Option<&'a str> {
        match self.get(name) {
            Some(Val::Str(v)) => Some(v),
            _ => None,
        }
    }

    fn enum_value(&self, name: &str, default: &'static str) -> &'static str {
        match self.get(name) {
            Some(Val::Enum(v)) => v,
            _ => default,
        }
    }

    fn list(&self, name: &str) -> Option<&'a [Vec<String>]> {
        match self.get(name) {
            Some(Val::List(v)) => Some(v),
            _ => None,
        }
    }

    /// A list directive's arguments, flattened (capabilities).
    fn words(&self, name: &str, default: &[&str]) -> Vec<String> {
        match self.list(name) {
            Some(entries) => entries.iter().flatten().cloned().collect(),
            None => default.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn bits(&self, name: &str, default: &[&'static str]) -> Vec<&'static str> {
        match self.get(name) {
            Some(Val::Bits(v)) => v.clone(),
            _ => default.to_vec(),
        }
    }

    fn starttls(&self) -> Starttls {
        match self.enum_value("starttls", "off") {
            "on" => Starttls::On,
            "only" => Starttls::Only,
            _ => Starttls::Off,
        }
    }

    /// What switched TLS on, as nginx names it in messages, and where.
    fn tls_mode(&self) -> Option<(&'static str, Location)> {
        let mode = if self.server.listen_ssl {
            "listen ... ssl"
        } else if self.flag("ssl", false) {
            "ssl"
        } else if self.starttls() != Starttls::Off {
            "starttls"
        } else {
            return None;
        };
        let at = self
            .server
            .tls_switch
            .clone()
            .or_else(|| self.mail.tls_switch.clone());
        Some((mode, at.unwrap_or_else(|| self.server.location.clone())))
    }
}

/// nginx's `ngx_mail_ssl_merge_conf` checks for one server (§19.6, §19.7).
pub fn check_tls(server: &Scope, mail: &Scope) -> Result<(), Diagnostic> {
    let view = View { server, mail };
    let Some((mode, at)) = view.tls_mode() else {
        return Ok(());
    };
    let certs = view.list("ssl_certificate");
    let Some(certs) = certs else {
        let msg = format!("no \"ssl_certificate\" is defined for the \"{mode}\" directive");
        return Err(emerg(msg, &at));
    };
    let Some(keys) = view.list("ssl_certificate_key") else {
        let msg = format!("no \"ssl_certificate_key\" is defined for the \"{mode}\" directive");
        return Err(emerg(msg, &at));
    };
    if keys.len() < certs.len() {
        let last = &certs[certs.len() - 1][0];
        let msg = format!(
            "no \"ssl_certificate_key\" is defined for certificate \"{last}\" and the \"{mode}\" directive"
        );
        return Err(emerg(msg, &at));
    }
    let verify = view.enum_value("ssl_verify_client", "off");
    if verify != "off" && verify != "optional_no_ca" && view.str("ssl_client_certificate").is_none()
    {
        return Err(Diagnostic {
            level: LogLevel::Emerg,
            message: "no ssl_client_certificate for ssl_verify_client".into(),
            location: None,
        });
    }
    Ok(())
}

/// Assembles the whole [`Config`]; every check has already passed.
pub fn config(b: &Builder) -> Config {
    let main = &b.main;
    let events_conns = b
        .events
        .as_ref()
        .and_then(|e| match e.get("worker_connections") {
            Some(Val::Num(n)) => Some(*n),
            _ => None,
        });
    let worker_processes = match main.get("worker_processes") {
        Some(Val::Str(s)) if s == "auto" => WorkerProcesses::Auto,
        Some(Val::Str(s)) => WorkerProcesses::Count(s.parse().unwrap_or(1)),
        _ => WorkerProcesses::Count(1),
    };
    let user = match main.get("user") {
        Some(Val::List(entries)) => entries.first().map(|a| (a[0].clone(), a.get(1).cloned())),
        _ => None,
    };
    let servers = match &b.mail {
        Some(mail) => b
            .servers
            .iter()
            .map(|s| Arc::new(server(s, mail, &b.conf_dir)))
            .collect(),
        None => Vec::new(),
    };
    Config {
        file: b.file.clone(),
        daemon: !matches!(main.get("daemon"), Some(Val::Flag(false))),
        master_process: !matches!(main.get("master_process"), Some(Val::Flag(false))),
        pid: match main.get("pid") {
            Some(Val::Str(p)) => resolve(&b.prefix, p),
            _ => PathBuf::from(super::DEFAULT_PID),
        },
        error_log: main.error_log.clone(),
        worker_processes,
        user,
        worker_connections: events_conns.map_or(512, |n| u32::try_from(n).unwrap_or(u32::MAX)),
        worker_rlimit_nofile: match main.get("worker_rlimit_nofile") {
            Some(Val::Num(n)) => Some(*n),
            _ => None,
        },
        worker_shutdown_timeout: match main.get("worker_shutdown_timeout") {
            Some(Val::Time(t)) => Some(*t),
            _ => None,
        },
        servers,
    }
}

fn server(server: &Scope, mail: &Scope, conf_dir: &Path) -> Server {
    let v = View { server, mail };
    let implicit_tls = v.flag("ssl", false);
    let listens = server
        .listens
        .iter()
        .map(|l| Listen {
            ssl: l.ssl || implicit_tls,
            ..l.clone()
        })
        .collect();
    let auth: &AuthUrl = server
        .auth_http
        .as_ref()
        .or(mail.auth_http.as_ref())
        .expect("auth_http presence is checked when mail closes");
    let headers = v
        .list("auth_http_header")
        .unwrap_or(&[])
        .iter()
        .map(|a| (a[0].clone(), a[1].clone()))
        .collect();
    Server {
        location: server.location.clone(),
        listens,
        protocol: server
            .protocol
            .expect("protocol presence is checked when mail closes"),
        server_name: v
            .str("server_name")
            .filter(|s| !s.is_empty())
            .map_or_else(hostname, str::to_string),
        timeout: v.time("timeout", Duration::from_secs(60)),
        max_errors: u32::try_from(v.num("max_errors", 5)).unwrap_or(u32::MAX),
        error_log: server.error_log.clone().or_else(|| mail.error_log.clone()),
        auth_http: AuthHttp {
            target: auth.target.clone(),
            host_header: auth.host_header.clone(),
            uri: auth.uri.clone(),
            timeout: v.time("auth_http_timeout", Duration::from_secs(60)),
            headers,
            pass_client_cert: v.flag("auth_http_pass_client_cert", false),
            keepalive: usize::try_from(v.num("auth_http_keepalive", 0)).unwrap_or(usize::MAX),
        },
        proxy: ProxySettings {
            buffer: v.size("proxy_buffer", PAGE),
            pass_error_message: v.flag("proxy_pass_error_message", false),
            timeout: v.time("proxy_timeout", Duration::from_secs(24 * 3600)),
            proxy_protocol: proxy_protocol::send_version(v.enum_value("proxy_protocol", "off")),
            smtp_auth: v.flag("proxy_smtp_auth", false),
            xclient: v.flag("xclient", true),
        },
        imap: ImapSettings {
            client_buffer: v.size("imap_client_buffer", PAGE),
            capabilities: v.words("imap_capabilities", &["IMAP4", "IMAP4rev1", "UIDPLUS"]),
            auth: methods(&v.bits("imap_auth", &["plain"])),
        },
        pop3: Pop3Settings {
            capabilities: v.words("pop3_capabilities", &["TOP", "USER", "UIDL"]),
            auth: methods(&v.bits("pop3_auth", &["plain"])),
        },
        smtp: SmtpSettings {
            client_buffer: v.size("smtp_client_buffer", PAGE),
            greeting_delay: v.time("smtp_greeting_delay", Duration::ZERO),
            capabilities: v.words("smtp_capabilities", &[]),
            auth: methods(&v.bits("smtp_auth", &["plain", "login"])),
        },
        starttls: v.starttls(),
        resolver: super::resolver::settings(
            v.list("resolver"),
            v.time("resolver_timeout", Duration::from_secs(30)),
        ),
        tls: v.tls_mode().map(|(_, at)| tls(&v, conf_dir, at)),
        set_real_ip_from: proxy_protocol::trusted_senders(
            v.list("set_real_ip_from").unwrap_or(&[]),
        ),
    }
}

fn methods(words: &[&str]) -> AuthMethods {
    let mut m = AuthMethods::default();
    for w in words {
        match *w {
            "plain" => m.plain = true,
            "login" => m.login = true,
            "apop" => m.apop = true,
            "cram-md5" => m.cram_md5 = true,
            "external" => m.external = true,
            "none" => m.none = true,
            _ => {}
        }
    }
    m
}

fn protocols(words: &[&str]) -> TlsProtocols {
    let mut p = TlsProtocols::default();
    for w in words {
        match *w {
            "SSLv2" => p.sslv2 = true,
            "SSLv3" => p.sslv3 = true,
            "TLSv1" => p.tlsv1 = true,
            "TLSv1.1" => p.tlsv1_1 = true,
            "TLSv1.2" => p.tlsv1_2 = true,
            "TLSv1.3" => p.tlsv1_3 = true,
            _ => {}
        }
    }
    p
}

/// Certificate-like paths are relative to the config directory; `data:` and
/// `engine:` values are kept as written.
fn ssl_path(conf_dir: &Path, value: &str) -> PathBuf {
    if value.starts_with("data:") || value.starts_with("engine:") {
        PathBuf::from(value)
    } else {
        resolve(conf_dir, value)
    }
}

fn tls(v: &View, conf_dir: &Path, location: Location) -> TlsSettings {
    let paths = |name: &str| -> Vec<PathBuf> {
        v.list(name)
            .unwrap_or(&[])
            .iter()
            .map(|a| ssl_path(conf_dir, &a[0]))
            .collect()
    };
    let path = |name: &str| v.str(name).map(|p| ssl_path(conf_dir, p));
    let protocols = match v.get("ssl_protocols") {
        Some(Val::Bits(words)) => protocols(words),
        _ => DEFAULT_PROTOCOLS,
    };
    TlsSettings {
        certificates: paths("ssl_certificate"),
        keys: paths("ssl_certificate_key"),
        password_file: path("ssl_password_file"),
        protocols,
        ciphers: v
            .str("ssl_ciphers")
            .unwrap_or("HIGH:!aNULL:!MD5")
            .to_string(),
        prefer_server_ciphers: v.flag("ssl_prefer_server_ciphers", false),
        session_cache: session_cache(v),
        session_timeout: v.time("ssl_session_timeout", Duration::from_secs(300)),
        session_tickets: v.flag("ssl_session_tickets", true),
        dhparam: path("ssl_dhparam"),
        ecdh_curve: v.str("ssl_ecdh_curve").unwrap_or("auto").to_string(),
        verify_client: match v.enum_value("ssl_verify_client", "off") {
            "on" => VerifyClient::On,
            "optional" => VerifyClient::Optional,
            "optional_no_ca" => VerifyClient::OptionalNoCa,
            _ => VerifyClient::Off,
        },
        verify_depth: u32::try_from(v.num("ssl_verify_depth", 1)).unwrap_or(u32::MAX),
        client_certificate: path("ssl_client_certificate"),
        trusted_certificate: path("ssl_trusted_certificate"),
        crl: path("ssl_crl"),
        conf_commands: v
            .list("ssl_conf_command")
            .unwrap_or(&[])
            .iter()
            .map(|a| (a[0].clone(), a[1].clone()))
            .collect(),
        location,
    }
}

/// `ssl_session_cache`: nginx merges the builtin part and the shared zone separately.
fn session_cache(v: &View) -> SessionCache {
    let builtin = v.server.builtin_cache.or(v.mail.builtin_cache);
    let shared = v
        .server
        .shared_cache
        .as_ref()
        .or(v.mail.shared_cache.as_ref());
    match (builtin, shared) {
        (Some(Builtin::Off), _) => SessionCache::Off,
        (Some(Builtin::Sessions(n)), shared) => SessionCache::Cache {
            builtin: Some(n),
            shared: shared.cloned(),
        },
        (_, Some(shared)) => SessionCache::Cache {
            builtin: None,
            shared: Some(shared.clone()),
        },
        (_, None) => SessionCache::None,
    }
}

/// The machine's host name (nginx's default `server_name`).
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its whole length, and gethostname writes at
    // most that many bytes.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "localhost".to_string();
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}
