//! Raw tree → [`Config`]: walks the directives in file order, checking each one the
//! way nginx does when it reads it, so the first error reported is nginx's first.
//!
//! Values are stored per context ([`Scope`]: the main context, `events`, `mail`, each
//! `server`); `merge.rs` then resolves server → mail → default. Directives whose
//! arguments need more than the generic value kinds live in `handlers.rs`.

use super::directives::{self, Contexts, Kind, Spec, Status, EVENTS, MAIL, MAIN, SERVER};
use super::model::*;
use super::parser::{Block, Directive, Parsed};
use super::values::{parse_flag, parse_number, parse_size, parse_time, TimeUnit};
use super::{merge, ConfigError, Diagnostic};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A directive's value after its kind's checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Val {
    Flag(bool),
    Time(Duration),
    Size(usize),
    Num(u64),
    Str(String),
    /// The keyword as spelled in the table.
    Enum(&'static str),
    /// The keywords set, as spelled in the table.
    Bits(Vec<&'static str>),
    /// One entry per occurrence, each the directive's arguments.
    List(Vec<Vec<String>>),
}

#[derive(Debug, Clone)]
pub struct Setting {
    pub val: Val,
    pub location: Location,
}

/// `auth_http` after URL parsing and name resolution.
#[derive(Debug, Clone)]
pub struct AuthUrl {
    pub target: AuthTarget,
    pub host_header: String,
    pub uri: String,
}

/// The first `ssl_session_cache` keyword state, as nginx tracks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
    Off,
    None,
    Sessions(usize),
}

/// Everything set in one context.
#[derive(Debug, Clone)]
pub struct Scope {
    /// Where the block opens (`server {` for messages about a server).
    pub location: Location,
    pub values: HashMap<&'static str, Setting>,
    pub auth_http: Option<AuthUrl>,
    pub error_log: Option<LogTarget>,
    pub builtin_cache: Option<Builtin>,
    pub shared_cache: Option<(String, usize)>,
    pub protocol: Option<Protocol>,
    pub listens: Vec<Listen>,
    /// A `listen ... ssl` was seen in this server.
    pub listen_ssl: bool,
    /// Where TLS was switched on (`listen ... ssl`, `ssl`, `starttls`), for messages.
    pub tls_switch: Option<Location>,
}

impl Scope {
    pub fn new(location: Location) -> Self {
        Scope {
            location,
            values: HashMap::new(),
            auth_http: None,
            error_log: None,
            builtin_cache: None,
            shared_cache: None,
            protocol: None,
            listens: Vec::new(),
            listen_ssl: false,
            tls_switch: None,
        }
    }

    pub fn get(&self, name: &str) -> Option<&Val> {
        self.values.get(name).map(|s| &s.val)
    }
}

/// Where the walker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ctx {
    Main,
    Events,
    Mail,
    /// Index into [`Builder::servers`].
    Server(usize),
}

impl Ctx {
    fn bit(self) -> Contexts {
        match self {
            Ctx::Main => MAIN,
            Ctx::Events => EVENTS,
            Ctx::Mail => MAIL,
            Ctx::Server(_) => SERVER,
        }
    }
}

pub struct Builder {
    /// The main file, and the directory relative paths are resolved against.
    pub file: PathBuf,
    pub conf_dir: PathBuf,
    /// nginx's `-p`: `pid` and `error_log` paths are relative to it (§19.16).
    pub prefix: PathBuf,
    pub main: Scope,
    pub events: Option<Scope>,
    pub mail: Option<Scope>,
    pub servers: Vec<Scope>,
    pub warnings: Vec<Diagnostic>,
    /// Every listen address so far, across servers (duplicates are refused).
    pub all_listens: Vec<ListenAddr>,
    pub syntax_error: Option<Diagnostic>,
    /// The `http`/`stream` blocks seen (each may appear once).
    pub foreign_blocks: Vec<String>,
}

pub fn emerg(message: impl Into<String>, location: &Location) -> Diagnostic {
    Diagnostic {
        level: LogLevel::Emerg,
        message: message.into(),
        location: Some(location.clone()),
    }
}

pub type Step = Result<(), Diagnostic>;

/// Builds the configuration; the error carries the warnings issued before it.
pub fn build(
    parsed: Parsed,
    file: &Path,
    conf_dir: &Path,
    prefix: &Path,
) -> Result<(Config, Vec<Diagnostic>), ConfigError> {
    let start = Location {
        file: file.to_path_buf(),
        line: 1,
    };
    let mut b = Builder {
        file: file.to_path_buf(),
        conf_dir: conf_dir.to_path_buf(),
        prefix: prefix.to_path_buf(),
        main: Scope::new(start),
        events: None,
        mail: None,
        servers: Vec::new(),
        warnings: Vec::new(),
        all_listens: Vec::new(),
        syntax_error: parsed.error,
        foreign_blocks: Vec::new(),
    };
    if let Err(d) = b.walk(&parsed.root, Ctx::Main) {
        return Err(ConfigError::new(d, b.warnings, false));
    }
    if b.events.is_none() {
        let d = Diagnostic {
            level: LogLevel::Emerg,
            message: "no \"events\" section in configuration".into(),
            location: None,
        };
        return Err(ConfigError::new(d, b.warnings, true));
    }
    let config = merge::config(&b);
    Ok((config, b.warnings))
}

impl Builder {
    pub fn scope(&mut self, ctx: Ctx) -> &mut Scope {
        match ctx {
            Ctx::Main => &mut self.main,
            Ctx::Events => self
                .events
                .as_mut()
                .expect("events scope exists inside events"),
            Ctx::Mail => self.mail.as_mut().expect("mail scope exists inside mail"),
            Ctx::Server(i) => &mut self.servers[i],
        }
    }

    pub fn warn(&mut self, message: impl Into<String>, location: &Location) {
        self.warnings.push(Diagnostic {
            level: LogLevel::Warn,
            message: message.into(),
            location: Some(location.clone()),
        });
    }

    fn walk(&mut self, block: &Block, ctx: Ctx) -> Step {
        for directive in &block.directives {
            self.directive(directive, ctx)?;
        }
        if block.truncated {
            if let Some(error) = self.syntax_error.take() {
                return Err(error);
            }
        }
        Ok(())
    }

    /// nginx's `ngx_conf_handler` checks, in its order, then the value.
    fn directive(&mut self, d: &Directive, ctx: Ctx) -> Step {
        let name = d.name.as_str();
        let Some(spec) = directives::lookup(name) else {
            if directives::is_foreign(name) {
                return Err(emerg(
                    format!("\"{name}\" directive is not allowed here"),
                    &d.location,
                ));
            }
            return Err(emerg(format!("unknown directive \"{name}\""), &d.location));
        };
        if spec.contexts & ctx.bit() == 0 {
            return Err(emerg(
                format!("\"{name}\" directive is not allowed here"),
                &d.location,
            ));
        }
        let is_block = spec.kind == Kind::Block;
        if !is_block && d.block.is_some() {
            let msg = format!("directive \"{name}\" is not terminated by \";\"");
            return Err(emerg(msg, &d.location));
        }
        if is_block && d.block.is_none() {
            return Err(emerg(
                format!("directive \"{name}\" has no opening \"{{\""),
                &d.location,
            ));
        }
        let n = d.args.len();
        if n < usize::from(spec.min_args) || n > usize::from(spec.max_args) {
            let msg = format!("invalid number of arguments in \"{name}\" directive");
            return Err(emerg(msg, &d.location));
        }
        if let Status::Rejected(reason) = spec.status {
            let msg = format!("\"{name}\" directive is not supported by mailproxy: {reason}");
            return Err(emerg(msg, &d.location));
        }
        match spec.kind {
            Kind::Block => self.block(d, ctx)?,
            Kind::Custom => self.custom(d, ctx)?,
            _ => self.generic(spec, d, ctx)?,
        }
        if spec.status == Status::Warn {
            self.warn(
                format!("\"{name}\" directive has no effect in mailproxy"),
                &d.location,
            );
        }
        Ok(())
    }

    fn block(&mut self, d: &Directive, ctx: Ctx) -> Step {
        let inner = d.block.as_ref().expect("checked by the caller");
        let here = d.location.clone();
        match d.name.as_str() {
            "events" => {
                if self.events.is_some() {
                    return Err(emerg("\"events\" directive is duplicate", &here));
                }
                self.events = Some(Scope::new(here));
                self.walk(inner, Ctx::Events)
            }
            "mail" => {
                if self.mail.is_some() {
                    return Err(emerg("\"mail\" directive is duplicate", &here));
                }
                self.mail = Some(Scope::new(here));
                self.walk(inner, Ctx::Mail)?;
                self.check_servers()
            }
            "server" => {
                debug_assert_eq!(ctx, Ctx::Mail);
                self.servers.push(Scope::new(here.clone()));
                let index = self.servers.len() - 1;
                self.walk(inner, Ctx::Server(index))?;
                if self.servers[index].listens.is_empty() {
                    return Err(emerg("no \"listen\" is defined for server", &here));
                }
                Ok(())
            }
            other => {
                // http {} and stream {}: not ours; their contents are not interpreted,
                // but like nginx we allow each block once.
                if self.foreign_blocks.iter().any(|b| b == other) {
                    return Err(emerg(format!("\"{other}\" directive is duplicate"), &here));
                }
                self.foreign_blocks.push(other.to_string());
                self.warn(
                    format!("the \"{other}\" block is ignored by mailproxy"),
                    &here,
                );
                if inner.truncated {
                    if let Some(error) = self.syntax_error.take() {
                        return Err(error);
                    }
                }
                Ok(())
            }
        }
    }

    /// The checks nginx runs when `mail {}` closes, module by module (§19.5): every
    /// server's protocol, then every server's TLS set-up, then every auth_http.
    fn check_servers(&mut self) -> Step {
        for server in &self.servers {
            if server.protocol.is_none() {
                return Err(emerg("unknown mail protocol for server", &server.location));
            }
        }
        let mail = self.mail.as_ref().expect("called when mail closes");
        for server in &self.servers {
            merge::check_tls(server, mail)?;
        }
        for server in &self.servers {
            if server.auth_http.is_none() && mail.auth_http.is_none() {
                return Err(emerg(
                    "no \"auth_http\" is defined for server",
                    &server.location,
                ));
            }
        }
        Ok(())
    }

    /// Flags, times, sizes, numbers, strings, enums, bitmasks and lists.
    fn generic(&mut self, spec: &Spec, d: &Directive, ctx: Ctx) -> Step {
        let name = spec.name;
        let here = &d.location;
        let existing = self.scope(ctx).values.get(name).map(|s| s.val.clone());
        if spec.kind.is_scalar() && existing.is_some() {
            return Err(emerg(format!("\"{name}\" directive is duplicate"), here));
        }
        let val = match spec.kind {
            Kind::Bitmask(keywords) => {
                let mut set = match existing {
                    Some(Val::Bits(set)) => set,
                    _ => Vec::new(),
                };
                for arg in &d.args {
                    let word = find_keyword(keywords, arg)
                        .ok_or_else(|| emerg(format!("invalid value \"{arg}\""), here))?;
                    if set.contains(&word) {
                        self.warn(format!("duplicate value \"{arg}\""), here);
                    } else {
                        set.push(word);
                    }
                }
                Val::Bits(set)
            }
            Kind::List => {
                let mut entries = match existing {
                    Some(Val::List(entries)) => entries,
                    _ => Vec::new(),
                };
                entries.push(d.args.clone());
                Val::List(entries)
            }
            kind => scalar_value(kind, name, &d.args[0], here)?,
        };
        let setting = Setting {
            val,
            location: here.clone(),
        };
        self.scope(ctx).values.insert(name, setting);
        Ok(())
    }
}

/// A keyword of `keywords`, matched case-insensitively.
pub fn find_keyword(keywords: &'static [&'static str], arg: &str) -> Option<&'static str> {
    keywords
        .iter()
        .copied()
        .find(|k| k.eq_ignore_ascii_case(arg))
}

/// Parses one scalar argument, with nginx's per-slot messages (§19.11).
pub fn scalar_value(kind: Kind, name: &str, arg: &str, here: &Location) -> Result<Val, Diagnostic> {
    let invalid = || emerg(format!("\"{name}\" directive invalid value"), here);
    Ok(match kind {
        Kind::Flag => Val::Flag(parse_flag(arg).ok_or_else(|| {
            let msg = format!(
                "invalid value \"{arg}\" in \"{name}\" directive, it must be \"on\" or \"off\""
            );
            emerg(msg, here)
        })?),
        Kind::Msec => Val::Time(parse_time(arg, TimeUnit::Msec).ok_or_else(invalid)?),
        Kind::Sec => Val::Time(parse_time(arg, TimeUnit::Sec).ok_or_else(invalid)?),
        Kind::Size => Val::Size(parse_size(arg).ok_or_else(invalid)?),
        Kind::Number => Val::Num(
            parse_number(arg)
                .ok_or_else(|| emerg(format!("\"{name}\" directive invalid number"), here))?,
        ),
        Kind::Enum(keywords) => Val::Enum(
            find_keyword(keywords, arg)
                .ok_or_else(|| emerg(format!("invalid value \"{arg}\""), here))?,
        ),
        _ => Val::Str(arg.to_string()),
    })
}
