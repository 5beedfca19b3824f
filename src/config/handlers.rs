//! Directives with their own argument syntax: `listen`, `protocol`, `auth_http`,
//! `error_log`, `ssl`, `starttls`, `ssl_session_cache`, and the core ones. Each is the
//! parser (or, for `Own` directives, the storing handler) its declaration names.

use super::declare::{Parts, Reading, Set, Slot};
use super::directives::Settings;
use super::log_target;
use super::model::*;
use super::parser::os_error;
use super::url::{parse_url, UrlMode};
use super::values::parse::flag;
use super::values::{parse_number, parse_size, parse_time, TimeUnit};
use super::Diagnostic;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// nginx's `-p` prefix on Debian: relative `pid` and `error_log` paths start here.
pub const PREFIX: &str = "/usr/share/nginx";

/// `NGX_LISTEN_BACKLOG` on Linux.
const DEFAULT_BACKLOG: i32 = 511;

/// nginx's shared zones must hold at least 8 pages.
const MIN_SHARED_CACHE: usize = 8 * 4096;

type Step = Result<(), Diagnostic>;

fn set<T>(slot: &mut Slot<T>, value: T, r: &Reading) {
    *slot = Some(Set {
        value,
        at: r.at.clone(),
    });
}

fn duplicate(slot_is_set: bool, r: &Reading) -> Step {
    if slot_is_set {
        return Err(r.emerg(format!("\"{}\" directive is duplicate", r.name)));
    }
    Ok(())
}

/// Blocks and `include` are handled by the reader and the parser; nothing to store.
pub fn block(_: &mut Settings, _: &mut Reading, _: &[String]) -> Step {
    Ok(())
}

/// `user NAME [GROUP]`: looked up at once, as nginx does (ignored with a warning
/// when not root).
pub fn user(s: &mut Settings, r: &mut Reading, args: &[String]) -> Step {
    duplicate(s.user.is_some(), r)?;
    let group = args.get(1).cloned();
    match super::system::check_user(&args[0], group.as_deref()) {
        Ok(true) => {
            set(&mut s.user, (args[0].clone(), group), r);
            Ok(())
        }
        Ok(false) => {
            r.warn(
                "the \"user\" directive makes sense only if the master process runs \
                 with super-user privileges, ignored",
            );
            Ok(())
        }
        Err(msg) => Err(r.emerg(msg)),
    }
}

pub fn worker_processes(r: &mut Reading, args: &[String]) -> Result<WorkerProcesses, Diagnostic> {
    let arg = &args[0];
    if arg == "auto" {
        return Ok(WorkerProcesses::Auto);
    }
    parse_number(arg)
        .and_then(|n| usize::try_from(n).ok())
        .map(WorkerProcesses::Count)
        .ok_or_else(|| r.emerg("\"worker_processes\" directive invalid value"))
}

pub fn worker_connections(r: &mut Reading, args: &[String]) -> Result<u64, Diagnostic> {
    let arg = &args[0];
    parse_number(arg).ok_or_else(|| r.emerg(format!("invalid number \"{arg}\"")))
}

pub fn protocol(r: &mut Reading, args: &[String]) -> Result<Protocol, Diagnostic> {
    match args[0].as_str() {
        "imap" => Ok(Protocol::Imap),
        "pop3" => Ok(Protocol::Pop3),
        "smtp" => Ok(Protocol::Smtp),
        other => Err(r.emerg(format!("unknown protocol \"{other}\""))),
    }
}

/// Repeating auth_http in one context simply overrides (§19.12).
pub fn auth_http(r: &mut Reading, args: &[String]) -> Result<AuthUrl, Diagnostic> {
    let raw = &args[0];
    let url = raw.strip_prefix("http://").unwrap_or(raw);
    let parsed = parse_url(url, UrlMode::AuthHttp)
        .map_err(|err| r.emerg(format!("{err} in auth_http \"{url}\"")))?;
    let target = match parsed.unix {
        Some(path) => AuthTarget::Unix(path),
        None => AuthTarget::Tcp(parsed.addrs[0]),
    };
    let host_header = if matches!(target, AuthTarget::Unix(_)) {
        "localhost".to_string()
    } else {
        parsed.host
    };
    let uri = if parsed.uri.is_empty() {
        "/".to_string()
    } else {
        parsed.uri
    };
    Ok(AuthUrl {
        target,
        host_header,
        uri,
    })
}

pub fn listen(s: &mut Settings, r: &mut Reading, args: &[String]) -> Step {
    let url = &args[0];
    let parsed = parse_url(url, UrlMode::Listen)
        .map_err(|err| r.emerg(format!("{err} in \"{url}\" of the \"listen\" directive")))?;
    let mut template = Listen {
        addr: ListenAddr::Tcp(([0, 0, 0, 0], 0).into()),
        ssl: false,
        proxy_protocol: false,
        backlog: DEFAULT_BACKLOG,
        rcvbuf: None,
        sndbuf: None,
        ipv6only: true,
        so_keepalive: None,
        bind: false,
        multipath: false,
        location: r.at.clone(),
    };
    if s.protocol.is_none() {
        if let Some(p) = protocol_for_port(parsed.port) {
            set(&mut s.protocol, p, r);
        }
    }
    for param in &args[1..] {
        listen_param(param, &mut template, r)?;
    }
    if template.ssl {
        s.tls_switch = Some(r.at.clone());
    }
    // A port range is one listen per port, each bound and served on its own.
    let ports = parsed.port..=parsed.last_port;
    let addrs: Vec<ListenAddr> = match parsed.unix {
        Some(path) => vec![ListenAddr::Unix(path)],
        None => parsed
            .addrs
            .iter()
            .flat_map(|a| {
                ports
                    .clone()
                    .map(|port| ListenAddr::Tcp(SocketAddr::new(a.ip(), port)))
            })
            .collect(),
    };
    let listens = &mut s.listen.get_or_insert_with(|| Set {
        value: Vec::new(),
        at: r.at.clone(),
    });
    for addr in addrs {
        if r.listens.contains(&addr) {
            return Err(r.emerg(format!("duplicate \"{addr}\" address and port pair")));
        }
        r.listens.push(addr.clone());
        listens.value.push(Listen {
            addr,
            ..template.clone()
        });
    }
    Ok(())
}

/// One `listen` parameter; names are case-sensitive (§19.10).
fn listen_param(param: &str, l: &mut Listen, r: &mut Reading) -> Step {
    let invalid = |what: &str| r.emerg(format!("invalid {what} \"{param}\""));
    // The parameters that make nginx bind the address on its own (`ls->bind = 1`).
    const OWN_SOCKET: &[&str] = &[
        "bind",
        "backlog=",
        "rcvbuf=",
        "sndbuf=",
        "ipv6only=",
        "so_keepalive=",
    ];
    if OWN_SOCKET.iter().any(|p| param.starts_with(p)) {
        l.bind = true;
    }
    if param == "bind" {
        // Routed through a wildcard of its port all the same (`net/listener.rs`).
    } else if let Some(v) = param.strip_prefix("backlog=") {
        let n = parse_number(v).and_then(|n| i32::try_from(n).ok());
        l.backlog = n.filter(|n| *n != 0).ok_or_else(|| invalid("backlog"))?;
    } else if let Some(v) = param.strip_prefix("rcvbuf=") {
        l.rcvbuf = Some(parse_size(v).ok_or_else(|| invalid("rcvbuf"))?);
    } else if let Some(v) = param.strip_prefix("sndbuf=") {
        l.sndbuf = Some(parse_size(v).ok_or_else(|| invalid("sndbuf"))?);
    } else if let Some(v) = param.strip_prefix("ipv6only=o") {
        l.ipv6only = match v {
            "n" => true,
            "ff" => false,
            _ => {
                let msg = format!("invalid ipv6only flags \"{}\"", &param[9..]);
                return Err(r.emerg(msg));
            }
        };
    } else if param == "ssl" {
        l.ssl = true;
    } else if let Some(v) = param.strip_prefix("so_keepalive=") {
        l.so_keepalive = Some(so_keepalive(v, r)?);
    } else if param == "proxy_protocol" {
        l.proxy_protocol = true;
    } else if param == "multipath" {
        // nginx 1.29.7: Multipath TCP, on a socket of its own (`ls->bind = 1`).
        l.multipath = true;
        l.bind = true;
    } else {
        return Err(r.emerg(format!("the invalid \"{param}\" parameter")));
    }
    Ok(())
}

/// `on`, `off`, or `idle:intvl:cnt`; the tunable form is checked but mailproxy
/// only switches keepalive on (the model has no place for the three values).
fn so_keepalive(v: &str, r: &mut Reading) -> Result<bool, Diagnostic> {
    match v {
        "on" => return Ok(true),
        "off" => return Ok(false),
        _ => {}
    }
    let invalid = |r: &Reading| r.emerg(format!("invalid so_keepalive value: \"{v}\""));
    let mut parts = v.splitn(3, ':');
    let idle = parts.next().unwrap_or("");
    let intvl = parts.next().unwrap_or("");
    let cnt = parts.next().unwrap_or("");
    let mut any = false;
    for time in [idle, intvl] {
        if !time.is_empty() {
            let t = parse_time(time, TimeUnit::Sec).ok_or_else(|| invalid(r))?;
            any |= !t.is_zero();
        }
    }
    if !cnt.is_empty() {
        any |= parse_number(cnt).ok_or_else(|| invalid(r))? != 0;
    }
    if !any {
        return Err(invalid(r));
    }
    r.warn("so_keepalive timings are ignored by mailproxy, the system defaults apply");
    Ok(true)
}

/// Every `error_log` of a context is kept, in order: nginx writes each line to every
/// log of the chain whose level takes it.
pub fn error_log(s: &mut Settings, r: &mut Reading, args: &[String]) -> Step {
    let target = log_target::parse_target(args, r.prefix, &r.at.file).map_err(|m| r.emerg(m))?;
    match &mut s.error_log {
        Some(chain) => chain.value.push(target),
        None => set(&mut s.error_log, vec![target], r),
    }
    Ok(())
}

/// 1.22.1's deprecated `ssl on|off` (§19.8): warns, and conflicts with `starttls`
/// set in the same context.
pub fn ssl(s: &mut Settings, r: &mut Reading, args: &[String]) -> Step {
    duplicate(s.ssl.is_some(), r)?;
    let on = flag(r, args)?;
    r.warn("the \"ssl\" directive is deprecated, use the \"listen ... ssl\" directive instead");
    let starttls_on = s
        .starttls
        .as_ref()
        .is_some_and(|v| v.value != Starttls::Off);
    if on && starttls_on {
        return Err(r.emerg("\"starttls\" directive conflicts with \"ssl on\""));
    }
    set(&mut s.ssl, on, r);
    switch_tls(s, r);
    Ok(())
}

pub fn starttls(s: &mut Settings, r: &mut Reading, args: &[String]) -> Step {
    duplicate(s.starttls.is_some(), r)?;
    let mode = super::values::parse::starttls(r, args)?;
    if mode != Starttls::Off && s.ssl.as_ref().is_some_and(|v| v.value) {
        return Err(r.emerg("\"ssl\" directive conflicts with \"starttls\""));
    }
    set(&mut s.starttls, mode, r);
    switch_tls(s, r);
    Ok(())
}

/// `ssl`/`starttls` name the place TLS was switched unless a `listen ... ssl` did.
fn switch_tls(s: &mut Settings, r: &Reading) {
    let listen_ssl = s
        .listen
        .as_ref()
        .is_some_and(|l| l.value.iter().any(|l| l.ssl));
    if !listen_ssl {
        s.tls_switch = Some(r.at.clone());
    }
}

pub fn session_cache(s: &mut Settings, r: &mut Reading, args: &[String]) -> Step {
    let parts = s
        .ssl_session_cache
        .take()
        .map(|p| p.value)
        .unwrap_or_default();
    let parts = cache_parts(parts, r, args)?;
    if let Some((name, size)) = &parts.shared {
        r.declare_zone(name, *size, "mail ssl_session_cache")?;
    }
    set(&mut s.ssl_session_cache, parts, r);
    Ok(())
}

/// `ssl_session_cache`'s arguments over what the context had; shared by mail's and
/// (to find their zones) http's and stream's, whose syntax is the same.
pub fn cache_parts(
    mut parts: CacheParts,
    r: &mut Reading,
    args: &[String],
) -> Result<CacheParts, Diagnostic> {
    for arg in args {
        let invalid = |r: &Reading| r.emerg(format!("invalid session cache \"{arg}\""));
        match arg.as_str() {
            "off" => parts.builtin = Some(Builtin::Off),
            "none" => parts.builtin = Some(Builtin::None),
            "builtin" => parts.builtin = Some(Builtin::Sessions(20480)),
            _ => {
                if let Some(n) = arg.strip_prefix("builtin:").filter(|n| !n.is_empty()) {
                    let n = parse_number(n).ok_or_else(|| invalid(r))?;
                    parts.builtin = Some(Builtin::Sessions(n as usize));
                } else if let Some(rest) = arg.strip_prefix("shared:").filter(|r| !r.is_empty()) {
                    let (name, size) = rest.split_once(':').unwrap_or((rest, ""));
                    if name.is_empty() {
                        return Err(invalid(r));
                    }
                    let size = parse_size(size).ok_or_else(|| invalid(r))?;
                    if size < MIN_SHARED_CACHE {
                        return Err(r.emerg(format!("session cache \"{arg}\" is too small")));
                    }
                    parts.shared = Some((name.to_string(), size));
                } else {
                    return Err(invalid(r));
                }
            }
        }
    }
    Ok(parts)
}

/// Longest line nginx reads from a password file (`NGX_SSL_PASSWORD_BUFFER_SIZE`).
const PASSWORD_LINE_MAX: usize = 4096;

/// `ssl_password_file FILE`: read now, as nginx's `ngx_ssl_read_password_file` does
/// while parsing, so a missing file fails at this line even where no server uses
/// TLS. The TLS set-up reads the passwords again from the path kept here.
pub fn password_file(r: &mut Reading, args: &[String]) -> Result<String, Diagnostic> {
    let path = resolve(r.conf_dir, &args[0]);
    let shown = path.display();
    let mut file = std::fs::File::open(&path)
        .map_err(|e| r.emerg(format!("open() \"{shown}\" failed ({})", os_error(&e))))?;
    let mut text = Vec::new();
    std::io::Read::read_to_end(&mut file, &mut text)
        .map_err(|e| r.emerg(format!("pread() \"{shown}\" failed ({})", os_error(&e))))?;
    let longest = text.split(|b| *b == b'\n').map(<[u8]>::len).max();
    if longest.is_some_and(|n| n >= PASSWORD_LINE_MAX) {
        return Err(r.emerg(format!("too long line in \"{shown}\"")));
    }
    Ok(args[0].clone())
}

impl Parts for CacheParts {
    fn inherit_parts(inner: &mut Slot<Self>, outer: &Slot<Self>) {
        let Some(outer) = outer else { return };
        match inner {
            None => *inner = Some(outer.clone()),
            Some(set) => {
                set.value.builtin = set.value.builtin.or(outer.value.builtin);
                if set.value.shared.is_none() {
                    set.value.shared = outer.value.shared.clone();
                }
            }
        }
    }
}

/// The protocol nginx infers from a `listen` port (§2.5).
fn protocol_for_port(port: u16) -> Option<Protocol> {
    match port {
        143 | 993 => Some(Protocol::Imap),
        110 | 995 => Some(Protocol::Pop3),
        25 | 465 | 587 => Some(Protocol::Smtp),
        _ => None,
    }
}

/// A path as nginx's `ngx_conf_full_name` makes it: relative ones join `base`.
pub fn resolve(base: &Path, path: &str) -> PathBuf {
    let p = Path::new(path);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}
