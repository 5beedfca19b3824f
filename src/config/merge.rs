//! Scopes → the typed model: server value, else mail value, else the default.
//!
//! [`Settings::inherit`] does the server ← mail step for every directive declared
//! `Inherit`; the getters add the declared defaults. Lists (capabilities,
//! `auth_http_header`, certificates) are taken whole from the innermost context that
//! sets them — a server's list *replaces* the mail list (§2.3).

use super::build::{emerg, Builder, Scope};
use super::directives::Settings;
use super::handlers::resolve;
use super::model::*;
use super::Diagnostic;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A server's settings with the mail context's filled in.
fn merged(server: &Scope, mail: &Scope) -> Settings {
    let mut settings = server.settings.clone();
    settings.inherit(&mail.settings);
    settings
}

/// What switched TLS on, as nginx names it in messages, and where.
fn tls_mode(s: &Settings, server: &Scope) -> Option<(&'static str, Location)> {
    let listen_ssl = s
        .listen
        .as_ref()
        .is_some_and(|l| l.value.iter().any(|l| l.ssl));
    let mode = if listen_ssl {
        "listen ... ssl"
    } else if s.ssl() {
        "ssl"
    } else if s.starttls() != Starttls::Off {
        "starttls"
    } else {
        return None;
    };
    let at = s
        .tls_switch
        .clone()
        .unwrap_or_else(|| server.location.clone());
    Some((mode, at))
}

fn values<T: Clone>(slot: &super::declare::Slot<Vec<T>>) -> Vec<T> {
    slot.as_ref().map(|s| s.value.clone()).unwrap_or_default()
}

/// nginx's `ngx_mail_ssl_merge_conf` checks for one server (§19.6, §19.7).
pub fn check_tls(server: &Scope, mail: &Scope) -> Result<(), Diagnostic> {
    let s = merged(server, mail);
    let Some((mode, at)) = tls_mode(&s, server) else {
        return Ok(());
    };
    let Some(certs) = &s.ssl_certificate else {
        let msg = format!("no \"ssl_certificate\" is defined for the \"{mode}\" directive");
        return Err(emerg(msg, &at));
    };
    let Some(keys) = &s.ssl_certificate_key else {
        let msg = format!("no \"ssl_certificate_key\" is defined for the \"{mode}\" directive");
        return Err(emerg(msg, &at));
    };
    if keys.value.len() < certs.value.len() {
        let last = &certs.value[certs.value.len() - 1];
        let msg = format!(
            "no \"ssl_certificate_key\" is defined for certificate \"{last}\" and the \"{mode}\" directive"
        );
        return Err(emerg(msg, &at));
    }
    let verify = s.ssl_verify_client();
    let needs_ca = matches!(verify, VerifyClient::On | VerifyClient::Optional);
    // nginx 1.27.2: `ssl_trusted_certificate` alone will do (no CA list is sent then).
    // Without either, 1.22.1's words, which the config corpus compares.
    let has_ca = s.ssl_client_certificate.is_some() || s.ssl_trusted_certificate.is_some();
    if needs_ca && !has_ca {
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
    let main = &b.main.settings;
    let worker_connections = match &b.events {
        Some(events) => events.settings.worker_connections(),
        None => main.worker_connections(),
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
        daemon: main.daemon(),
        master_process: main.master_process(),
        pid: main.pid(),
        error_log: values(&main.error_log),
        worker_processes: main.worker_processes(),
        user: main.user.as_ref().map(|u| u.value.clone()),
        worker_connections: u32::try_from(worker_connections).unwrap_or(u32::MAX),
        worker_rlimit_nofile: main.worker_rlimit_nofile.as_ref().map(|n| n.value),
        worker_shutdown_timeout: main.worker_shutdown_timeout.as_ref().map(|t| t.value),
        servers,
    }
}

fn server(scope: &Scope, mail: &Scope, conf_dir: &Path) -> Server {
    let s = merged(scope, mail);
    let implicit_tls = s.ssl();
    let listens = values(&s.listen)
        .into_iter()
        .map(|l| Listen {
            ssl: l.ssl || implicit_tls,
            ..l
        })
        .collect();
    let auth = s
        .auth_http
        .as_ref()
        .expect("auth_http presence is checked when mail closes")
        .value
        .clone();
    let flat = |lists: Vec<Vec<String>>| lists.into_iter().flatten().collect::<Vec<_>>();
    Server {
        location: scope.location.clone(),
        listens,
        protocol: s
            .protocol
            .as_ref()
            .expect("protocol presence is checked when mail closes")
            .value,
        server_name: s
            .server_name
            .as_ref()
            .map(|n| n.value.clone())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(hostname),
        timeout: s.timeout(),
        max_errors: u32::try_from(s.max_errors()).unwrap_or(u32::MAX),
        max_commands: u32::try_from(s.max_commands()).unwrap_or(u32::MAX),
        error_log: values(&s.error_log),
        auth_http: AuthHttp {
            target: auth.target,
            host_header: auth.host_header,
            uri: auth.uri,
            timeout: s.auth_http_timeout(),
            headers: values(&s.auth_http_header),
            pass_client_cert: s.auth_http_pass_client_cert(),
            keepalive: usize::try_from(s.auth_http_keepalive()).unwrap_or(usize::MAX),
        },
        proxy: ProxySettings {
            buffer: s.proxy_buffer(),
            pass_error_message: s.proxy_pass_error_message(),
            timeout: s.proxy_timeout(),
            proxy_protocol: s.proxy_protocol(),
            smtp_auth: s.proxy_smtp_auth(),
            xclient: s.xclient(),
        },
        imap: ImapSettings {
            client_buffer: s.imap_client_buffer(),
            capabilities: flat(s.imap_capabilities()),
            auth: AuthMethods::of(&s.imap_auth()),
        },
        pop3: Pop3Settings {
            capabilities: flat(s.pop3_capabilities()),
            auth: AuthMethods::of(&s.pop3_auth()),
        },
        smtp: SmtpSettings {
            client_buffer: s.smtp_client_buffer(),
            greeting_delay: s.smtp_greeting_delay(),
            capabilities: flat(values(&s.smtp_capabilities)),
            auth: AuthMethods::of(&s.smtp_auth()),
        },
        starttls: s.starttls(),
        resolver: super::resolver::settings(s.resolver(), s.resolver_timeout()),
        tls: tls_mode(&s, scope).map(|(_, at)| tls(&s, conf_dir, at)),
        set_real_ip_from: values(&s.set_real_ip_from).into_iter().flatten().collect(),
    }
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

fn tls(s: &Settings, conf_dir: &Path, location: Location) -> TlsSettings {
    let paths = |list: &super::declare::Slot<Vec<String>>| -> Vec<PathBuf> {
        values(list).iter().map(|p| ssl_path(conf_dir, p)).collect()
    };
    let path =
        |one: &super::declare::Slot<String>| one.as_ref().map(|p| ssl_path(conf_dir, &p.value));
    TlsSettings {
        certificates: paths(&s.ssl_certificate),
        keys: paths(&s.ssl_certificate_key),
        password_file: path(&s.ssl_password_file),
        protocols: TlsProtocols::of(&s.ssl_protocols()),
        ciphers: s.ssl_ciphers(),
        prefer_server_ciphers: s.ssl_prefer_server_ciphers(),
        session_cache: session_cache(s),
        session_timeout: s.ssl_session_timeout(),
        session_tickets: s.ssl_session_tickets(),
        dhparam: path(&s.ssl_dhparam),
        ecdh_curve: s.ssl_ecdh_curve(),
        verify_client: s.ssl_verify_client(),
        verify_depth: u32::try_from(s.ssl_verify_depth()).unwrap_or(u32::MAX),
        client_certificate: path(&s.ssl_client_certificate),
        trusted_certificate: path(&s.ssl_trusted_certificate),
        crl: path(&s.ssl_crl),
        conf_commands: values(&s.ssl_conf_command),
        location,
    }
}

/// `ssl_session_cache`, its halves already merged separately ([`CacheParts`]).
fn session_cache(s: &Settings) -> SessionCache {
    let parts = s
        .ssl_session_cache
        .as_ref()
        .map(|p| p.value.clone())
        .unwrap_or_default();
    match (parts.builtin, parts.shared) {
        (Some(Builtin::Off), _) => SessionCache::Off,
        (Some(Builtin::Sessions(n)), shared) => SessionCache::Cache {
            builtin: Some(n),
            shared,
        },
        (_, Some(shared)) => SessionCache::Cache {
            builtin: None,
            shared: Some(shared),
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
