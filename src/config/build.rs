//! Raw tree → [`Config`]: walks the directives in file order, checking each one the
//! way nginx does when it reads it, so the first error reported is nginx's first.
//!
//! Values are stored per context ([`Scope`]: the main context, `events`, `mail`, each
//! `server`); `merge.rs` then resolves server → mail → default. Directives whose
//! arguments need more than the generic value kinds live in `handlers.rs`.

use super::declare::{Contexts, Reading, Status, Zone, EVENTS, MAIL, MAIN, SERVER};
use super::directives::{self, Decl, Settings, STREAM_ONLY};
use super::model::*;
use super::parser::{Block, Directive, Parsed};
use super::{merge, ConfigError, Diagnostic};
use std::path::{Path, PathBuf};

/// One context (main, `events`, `mail`, a `server`): where it opens and what it sets.
#[derive(Debug, Clone)]
pub struct Scope {
    /// Where the block opens (`server {` for messages about a server).
    pub location: Location,
    pub settings: Settings,
}

impl Scope {
    pub fn new(location: Location) -> Self {
        Scope {
            location,
            settings: Settings::default(),
        }
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
    /// The modules `load_module` loaded, by name.
    pub modules: Vec<String>,
    /// The shared memory zones declared so far (http{}, stream{}, mail{}).
    pub zones: Vec<Zone>,
}

pub fn emerg(message: impl Into<String>, location: &Location) -> Diagnostic {
    Diagnostic {
        level: LogLevel::Emerg,
        message: message.into(),
        location: Some(location.clone()),
    }
}

pub type Step = Result<(), Diagnostic>;

/// nginx's `ngx_event_init_conf`: one connection per listening socket plus one for
/// the channel to the master. Counted as nginx counts sockets (only mail's: http's and
/// stream's listens are not read), after `syntax is ok` and without a location.
fn enough_connections(config: &Config) -> Step {
    let sockets = super::sockets::nginx_count(config);
    let connections = u64::from(config.worker_connections);
    if connections < sockets as u64 + 1 {
        return Err(Diagnostic {
            level: LogLevel::Emerg,
            message: format!(
                "{connections} worker_connections are not enough for {sockets} listening sockets"
            ),
            location: None,
        });
    }
    Ok(())
}

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
        modules: Vec::new(),
        zones: Vec::new(),
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
    if let Err(d) = enough_connections(&config) {
        return Err(ConfigError::new(d, b.warnings, true));
    }
    Ok((config, b.warnings))
}

impl Builder {
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
        self.end_of(block)
    }

    /// A block the parser cut short at a syntax error reports it once its directives
    /// are read, as nginx reports it where it stopped reading.
    pub(super) fn end_of(&mut self, block: &Block) -> Step {
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
        let unloaded = name == "stream" && !self.stream_loaded();
        let Some(decl) = directives::lookup(name).filter(|_| !unloaded) else {
            let stream_only = self.stream_loaded() && STREAM_ONLY.contains(&name);
            if directives::is_foreign(name) || stream_only {
                return Err(emerg(
                    format!("\"{name}\" directive is not allowed here"),
                    &d.location,
                ));
            }
            return Err(emerg(format!("unknown directive \"{name}\""), &d.location));
        };
        if decl.contexts & ctx.bit() == 0 {
            return Err(emerg(
                format!("\"{name}\" directive is not allowed here"),
                &d.location,
            ));
        }
        let is_block = decl.is_block();
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
        let (min, max) = decl.args;
        if n < usize::from(min) || n > usize::from(max) {
            let msg = format!("invalid number of arguments in \"{name}\" directive");
            return Err(emerg(msg, &d.location));
        }
        if let Status::Rejected(reason) = decl.status {
            let msg = format!("\"{name}\" directive is not supported by mailproxy: {reason}");
            return Err(emerg(msg, &d.location));
        }
        if is_block {
            self.block(d, ctx)?;
        } else {
            self.apply(decl, d, ctx)?;
        }
        if decl.status == Status::Warn {
            self.warn(
                format!("\"{name}\" directive has no effect in mailproxy"),
                &d.location,
            );
        }
        Ok(())
    }

    /// Parses the directive's value into its context's typed settings.
    fn apply(&mut self, decl: &'static Decl<Settings>, d: &Directive, ctx: Ctx) -> Step {
        // nginx counts its modules when it opens any module's block.
        let past_modules =
            self.events.is_some() || self.mail.is_some() || !self.foreign_blocks.is_empty();
        let scope = match ctx {
            Ctx::Main => &mut self.main,
            Ctx::Events => self
                .events
                .as_mut()
                .expect("events scope exists inside events"),
            Ctx::Mail => self.mail.as_mut().expect("mail scope exists inside mail"),
            Ctx::Server(i) => &mut self.servers[i],
        };
        let mut reading = Reading {
            name: decl.name,
            at: &d.location,
            prefix: &self.prefix,
            conf_dir: &self.conf_dir,
            warnings: &mut self.warnings,
            listens: &mut self.all_listens,
            past_modules,
            modules: &mut self.modules,
            zones: &mut self.zones,
        };
        (decl.apply)(&mut scope.settings, &mut reading, &d.args)
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
                if self.servers[index].settings.listen.is_none() {
                    return Err(emerg("no \"listen\" is defined for server", &here));
                }
                Ok(())
            }
            other => {
                // http {} and stream {}: not served, each allowed once, walked for the
                // mistakes nginx would find in them (`foreign.rs`).
                if self.foreign_blocks.iter().any(|b| b == other) {
                    return Err(emerg(format!("\"{other}\" directive is duplicate"), &here));
                }
                self.foreign_blocks.push(other.to_string());
                self.warn(
                    format!("the \"{other}\" block is ignored by mailproxy"),
                    &here,
                );
                self.foreign(inner, other == "stream")
            }
        }
    }

    /// The checks nginx runs when `mail {}` closes, module by module (§19.5): every
    /// server's protocol, then every server's TLS set-up, then every auth_http.
    fn check_servers(&mut self) -> Step {
        for server in &self.servers {
            if server.settings.protocol.is_none() {
                return Err(emerg("unknown mail protocol for server", &server.location));
            }
        }
        let mail = self.mail.as_ref().expect("called when mail closes");
        for server in &self.servers {
            merge::check_tls(server, mail)?;
        }
        for server in &self.servers {
            if server.settings.auth_http.is_none() && mail.settings.auth_http.is_none() {
                return Err(emerg(
                    "no \"auth_http\" is defined for server",
                    &server.location,
                ));
            }
        }
        Ok(())
    }
}
