//! Directives with their own argument syntax: `listen`, `protocol`, `auth_http`,
//! `error_log`, `ssl`, `starttls`, `ssl_session_cache`, and the core ones.

use super::build::{
    emerg, find_keyword, scalar_value, AuthUrl, Builder, Builtin, Ctx, Setting, Step, Val,
};
use super::directives::{Kind, STARTTLS};
use super::model::*;
use super::parser::Directive;
use super::url::{parse_url, UrlMode};
use super::values::{parse_number, parse_size, parse_time, TimeUnit};
use std::path::{Path, PathBuf};

/// nginx's `-p` prefix on Debian: relative `pid` and `error_log` paths start here.
pub const PREFIX: &str = "/usr/share/nginx";

/// `NGX_LISTEN_BACKLOG` on Linux.
const DEFAULT_BACKLOG: i32 = 511;

/// nginx's shared zones must hold at least 8 pages.
const MIN_SHARED_CACHE: usize = 8 * 4096;

impl Builder {
    pub(super) fn custom(&mut self, d: &Directive, ctx: Ctx) -> Step {
        match d.name.as_str() {
            "listen" => self.listen(d, ctx),
            "protocol" => self.protocol(d, ctx),
            "auth_http" => self.auth_http(d, ctx),
            "error_log" => self.error_log(d, ctx),
            "ssl" => self.ssl(d, ctx),
            "starttls" => self.starttls(d, ctx),
            "ssl_session_cache" => self.session_cache(d, ctx),
            "set_real_ip_from" => self.set_real_ip_from(d, ctx),
            "proxy_protocol" => self.proxy_protocol(d, ctx),
            "resolver" => {
                super::resolver::servers(&d.args, &d.location)?;
                self.once(d, ctx, Val::List(vec![d.args.clone()]))
            }
            "user" => self.user(d, ctx),
            "worker_processes" => self.worker_processes(d, ctx),
            "worker_connections" => self.worker_connections(d, ctx),
            "load_module" => self.load_module(d),
            "include" => unreachable!("include is expanded by the parser"),
            other => unreachable!("no handler for custom directive {other}"),
        }
    }

    /// `user NAME [GROUP]`: looked up at once, as nginx does (ignored with a warning
    /// when not root).
    fn user(&mut self, d: &Directive, ctx: Ctx) -> Step {
        let group = d.args.get(1).map(String::as_str);
        match super::system::check_user(&d.args[0], group) {
            Ok(true) => self.once(d, ctx, Val::List(vec![d.args.clone()])),
            Ok(false) => {
                self.warn(
                    "the \"user\" directive makes sense only if the master process runs \
                     with super-user privileges, ignored",
                    &d.location,
                );
                Ok(())
            }
            Err(msg) => Err(emerg(msg, &d.location)),
        }
    }

    /// Stores a value that may be given only once per context.
    fn once(&mut self, d: &Directive, ctx: Ctx, val: Val) -> Step {
        let name = directive_name(d);
        let scope = self.scope(ctx);
        if scope.values.contains_key(name) {
            return Err(emerg(
                format!("\"{name}\" directive is duplicate"),
                &d.location,
            ));
        }
        let setting = Setting {
            val,
            location: d.location.clone(),
        };
        scope.values.insert(name, setting);
        Ok(())
    }

    fn worker_processes(&mut self, d: &Directive, ctx: Ctx) -> Step {
        let arg = &d.args[0];
        if self.scope(ctx).values.contains_key("worker_processes") {
            return Err(emerg(
                "\"worker_processes\" directive is duplicate",
                &d.location,
            ));
        }
        if arg != "auto" && parse_number(arg).is_none() {
            return Err(emerg(
                "\"worker_processes\" directive invalid value",
                &d.location,
            ));
        }
        self.once(d, ctx, Val::Str(arg.clone()))
    }

    fn worker_connections(&mut self, d: &Directive, ctx: Ctx) -> Step {
        if self.scope(ctx).values.contains_key("worker_connections") {
            return Err(emerg(
                "\"worker_connections\" directive is duplicate",
                &d.location,
            ));
        }
        let arg = &d.args[0];
        let n = parse_number(arg)
            .ok_or_else(|| emerg(format!("invalid number \"{arg}\""), &d.location))?;
        self.once(d, ctx, Val::Num(n))
    }

    fn load_module(&mut self, d: &Directive) -> Step {
        if self.events.is_some() || self.mail.is_some() {
            return Err(emerg(
                "\"load_module\" directive is specified too late",
                &d.location,
            ));
        }
        Ok(())
    }

    fn protocol(&mut self, d: &Directive, ctx: Ctx) -> Step {
        let protocol = match d.args[0].as_str() {
            "imap" => Protocol::Imap,
            "pop3" => Protocol::Pop3,
            "smtp" => Protocol::Smtp,
            other => return Err(emerg(format!("unknown protocol \"{other}\""), &d.location)),
        };
        self.scope(ctx).protocol = Some(protocol);
        Ok(())
    }

    fn auth_http(&mut self, d: &Directive, ctx: Ctx) -> Step {
        let raw = &d.args[0];
        let url = raw.strip_prefix("http://").unwrap_or(raw);
        let parsed = parse_url(url, UrlMode::AuthHttp)
            .map_err(|err| emerg(format!("{err} in auth_http \"{url}\""), &d.location))?;
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
        // Repeating auth_http in one context simply overrides (§19.12).
        self.scope(ctx).auth_http = Some(AuthUrl {
            target,
            host_header,
            uri,
        });
        Ok(())
    }

    fn listen(&mut self, d: &Directive, ctx: Ctx) -> Step {
        let here = &d.location;
        let url = &d.args[0];
        let parsed = parse_url(url, UrlMode::Listen).map_err(|err| {
            emerg(
                format!("{err} in \"{url}\" of the \"listen\" directive"),
                here,
            )
        })?;
        let mut template = Listen {
            addr: ListenAddr::Tcp(([0, 0, 0, 0], 0).into()),
            ssl: false,
            proxy_protocol: false,
            backlog: DEFAULT_BACKLOG,
            rcvbuf: None,
            sndbuf: None,
            ipv6only: true,
            so_keepalive: None,
            location: here.clone(),
        };
        let scope = self.scope(ctx);
        if scope.protocol.is_none() {
            scope.protocol = protocol_for_port(parsed.port);
        }
        for param in &d.args[1..] {
            self.listen_param(param, &mut template, here, ctx)?;
        }
        let addrs: Vec<ListenAddr> = match parsed.unix {
            Some(path) => vec![ListenAddr::Unix(path)],
            None => parsed.addrs.into_iter().map(ListenAddr::Tcp).collect(),
        };
        for addr in addrs {
            if self.all_listens.contains(&addr) {
                let msg = format!("duplicate \"{addr}\" address and port pair");
                return Err(emerg(msg, here));
            }
            self.all_listens.push(addr.clone());
            let listen = Listen {
                addr,
                ..template.clone()
            };
            self.scope(ctx).listens.push(listen);
        }
        Ok(())
    }

    /// One `listen` parameter; names are case-sensitive (§19.10).
    fn listen_param(&mut self, param: &str, l: &mut Listen, here: &Location, ctx: Ctx) -> Step {
        let invalid = |what: &str| emerg(format!("invalid {what} \"{param}\""), here);
        if param == "bind" {
            // mailproxy binds every address on its own anyway.
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
                    return Err(emerg(msg, here));
                }
            };
        } else if param == "ssl" {
            l.ssl = true;
            let scope = self.scope(ctx);
            scope.listen_ssl = true;
            scope.tls_switch = Some(here.clone());
        } else if let Some(v) = param.strip_prefix("so_keepalive=") {
            l.so_keepalive = Some(self.so_keepalive(v, here)?);
        } else if param == "proxy_protocol" {
            l.proxy_protocol = true;
        } else {
            return Err(emerg(format!("the invalid \"{param}\" parameter"), here));
        }
        Ok(())
    }

    /// `on`, `off`, or `idle:intvl:cnt`; the tunable form is checked but mailproxy
    /// only switches keepalive on (the model has no place for the three values).
    fn so_keepalive(&mut self, v: &str, here: &Location) -> Result<bool, super::Diagnostic> {
        match v {
            "on" => return Ok(true),
            "off" => return Ok(false),
            _ => {}
        }
        let invalid = || emerg(format!("invalid so_keepalive value: \"{v}\""), here);
        let mut parts = v.splitn(3, ':');
        let idle = parts.next().unwrap_or("");
        let intvl = parts.next().unwrap_or("");
        let cnt = parts.next().unwrap_or("");
        let mut any = false;
        for time in [idle, intvl] {
            if !time.is_empty() {
                let t = parse_time(time, TimeUnit::Sec).ok_or_else(invalid)?;
                any |= !t.is_zero();
            }
        }
        if !cnt.is_empty() {
            any |= parse_number(cnt).ok_or_else(invalid)? != 0;
        }
        if !any {
            return Err(invalid());
        }
        self.warn(
            "so_keepalive timings are ignored by mailproxy, the system defaults apply",
            here,
        );
        Ok(true)
    }

    fn error_log(&mut self, d: &Directive, ctx: Ctx) -> Step {
        let here = &d.location;
        let target = parse_error_log(&d.args, here, &self.prefix)?;
        let scope = self.scope(ctx);
        if scope.error_log.is_some() {
            self.warn(
                "only the first \"error_log\" of a context is used by mailproxy",
                here,
            );
            return Ok(());
        }
        scope.error_log = Some(target);
        Ok(())
    }

    /// 1.22.1's deprecated `ssl on|off` (§19.8): warns, and conflicts with `starttls`
    /// set in the same context.
    fn ssl(&mut self, d: &Directive, ctx: Ctx) -> Step {
        let here = &d.location;
        let scope = self.scope(ctx);
        if scope.values.contains_key("ssl") {
            return Err(emerg("\"ssl\" directive is duplicate", here));
        }
        let val = scalar_value(Kind::Flag, "ssl", &d.args[0], here)?;
        let on = val == Val::Flag(true);
        self.warn(
            "the \"ssl\" directive is deprecated, use the \"listen ... ssl\" directive instead",
            here,
        );
        let scope = self.scope(ctx);
        let starttls_on = matches!(scope.get("starttls"), Some(Val::Enum(v)) if *v != "off");
        if on && starttls_on {
            return Err(emerg(
                "\"starttls\" directive conflicts with \"ssl on\"",
                here,
            ));
        }
        scope.values.insert(
            "ssl",
            Setting {
                val,
                location: here.clone(),
            },
        );
        if !scope.listen_ssl {
            scope.tls_switch = Some(here.clone());
        }
        Ok(())
    }

    fn starttls(&mut self, d: &Directive, ctx: Ctx) -> Step {
        let here = &d.location;
        let scope = self.scope(ctx);
        if scope.values.contains_key("starttls") {
            return Err(emerg("\"starttls\" directive is duplicate", here));
        }
        let arg = &d.args[0];
        let word = find_keyword(STARTTLS, arg)
            .ok_or_else(|| emerg(format!("invalid value \"{arg}\""), here))?;
        if word != "off" && scope.get("ssl") == Some(&Val::Flag(true)) {
            return Err(emerg("\"ssl\" directive conflicts with \"starttls\"", here));
        }
        let setting = Setting {
            val: Val::Enum(word),
            location: here.clone(),
        };
        scope.values.insert("starttls", setting);
        if !scope.listen_ssl {
            scope.tls_switch = Some(here.clone());
        }
        Ok(())
    }

    fn session_cache(&mut self, d: &Directive, ctx: Ctx) -> Step {
        let here = &d.location;
        for arg in &d.args {
            let invalid = || emerg(format!("invalid session cache \"{arg}\""), here);
            let scope = self.scope(ctx);
            match arg.as_str() {
                "off" => scope.builtin_cache = Some(Builtin::Off),
                "none" => scope.builtin_cache = Some(Builtin::None),
                "builtin" => scope.builtin_cache = Some(Builtin::Sessions(20480)),
                _ => {
                    if let Some(n) = arg.strip_prefix("builtin:").filter(|n| !n.is_empty()) {
                        let n = parse_number(n).ok_or_else(invalid)?;
                        scope.builtin_cache = Some(Builtin::Sessions(n as usize));
                    } else if let Some(rest) = arg.strip_prefix("shared:").filter(|r| !r.is_empty())
                    {
                        let (name, size) = rest.split_once(':').unwrap_or((rest, ""));
                        if name.is_empty() {
                            return Err(invalid());
                        }
                        let size = parse_size(size).ok_or_else(invalid)?;
                        if size < MIN_SHARED_CACHE {
                            return Err(emerg(
                                format!("session cache \"{arg}\" is too small"),
                                here,
                            ));
                        }
                        scope.shared_cache = Some((name.to_string(), size));
                    } else {
                        return Err(invalid());
                    }
                }
            }
        }
        Ok(())
    }
}

fn directive_name(d: &Directive) -> &'static str {
    super::directives::lookup(&d.name)
        .map(|spec| spec.name)
        .expect("only table directives reach the handlers")
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

/// `error_log FILE|stderr|syslog:... [LEVEL]`.
fn parse_error_log(
    args: &[String],
    here: &Location,
    prefix: &Path,
) -> Result<LogTarget, super::Diagnostic> {
    let sink = match args[0].as_str() {
        "stderr" => LogSink::Stderr,
        s if s.starts_with("syslog:") => {
            let spec = &s["syslog:".len()..];
            crate::syslog::parse(spec).map_err(|msg| emerg(msg, here))?;
            LogSink::Syslog(spec.to_string())
        }
        s if s.starts_with("memory:") => {
            let msg = "\"error_log\" directive is not supported by mailproxy: memory buffers are a debugging aid of nginx";
            return Err(emerg(msg, here));
        }
        path => LogSink::File(resolve(prefix, path)),
    };
    let level = match args.get(1) {
        None => LogLevel::Error,
        Some(word) => {
            log_level(word).ok_or_else(|| emerg(format!("invalid log level \"{word}\""), here))?
        }
    };
    if let Some(extra) = args.get(2) {
        return Err(emerg(format!("invalid log level \"{extra}\""), here));
    }
    Ok(LogTarget { sink, level })
}

fn log_level(word: &str) -> Option<LogLevel> {
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

/// A path as nginx's `ngx_conf_full_name` makes it: relative ones join `base`.
pub fn resolve(base: &Path, path: &str) -> PathBuf {
    let p = Path::new(path);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}
