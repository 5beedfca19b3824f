//! nginx.conf → typed, validated [`Config`].
//!
//! The pipeline is [`lexer`] (nginx's tokenizer) → [`parser`] (blocks, `include`) →
//! `build`/`handlers` (the checks of [`directives`], in nginx's order) → `merge`
//! (server ← mail ← defaults) → [`Config`]. Messages use nginx's exact texts so an
//! operator's `nginx -t` habits carry over; see [`check_report`].

pub mod build;
pub mod declare;
pub mod directives;
pub mod directives_doc;
mod foreign;
pub mod handlers;
pub mod lexer;
pub mod log_target;
pub mod merge;
mod model;
pub mod parser;
mod probe;
mod process;
mod proxy_protocol;
mod resolver;
pub mod sockets;
mod system;
pub mod url;
pub mod values;

#[cfg(test)]
mod fuzz_smoke;
#[cfg(test)]
mod nginx_compare;
#[cfg(test)]
mod tests;

pub use log_target::{level_name, timestamp, DebugPoints, SyslogServer, SyslogSpec};
pub use model::*;

/// The pid file when the config names none: mailproxy's own, never nginx's.
pub const DEFAULT_PID: &str = "/run/mailproxy.pid";

use std::path::{Path, PathBuf};

/// A message about the configuration: a warning or the fatal error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// `Warn` for warnings; `Emerg` (or, for an unreadable include, `Crit`) for errors.
    pub level: LogLevel,
    /// nginx's text, without the location.
    pub message: String,
    /// The directive it is about, when nginx names one.
    pub location: Option<Location>,
}

impl std::fmt::Display for Diagnostic {
    /// `<message> in FILE:LINE`, or the bare message.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.location {
            Some(at) => write!(f, "{} in {at}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// A configuration that loaded, and the warnings issued on the way.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<Diagnostic>,
    /// Every file read, main file first, each once, in reading order (for `-T`).
    pub files: Vec<parser::SourceFile>,
}

/// What the command line adds to a config file: nginx's `-p` and `-g`.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// `-p`: relative `-c`, `pid`, `error_log` and `load_module` paths start here.
    pub prefix: PathBuf,
    /// `-g`: directives read as if they stood at the top of the main file.
    pub globals: Option<String>,
    /// `-e`: the log used when the file sets no top-level `error_log`.
    pub default_error_log: Option<LogTarget>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            prefix: PathBuf::from(handlers::PREFIX),
            globals: None,
            default_error_log: None,
        }
    }
}

/// The first fatal problem, as nginx would report it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{diagnostic}")]
pub struct ConfigError {
    pub diagnostic: Diagnostic,
    /// Warnings issued before the error (nginx prints them first).
    pub warnings: Vec<Diagnostic>,
    /// Found after the whole file was read: nginx prints such errors after
    /// "syntax is ok" (§19.2), e.g. `no "events" section in configuration`.
    pub after_syntax_ok: bool,
}

impl ConfigError {
    pub(crate) fn new(
        diagnostic: Diagnostic,
        warnings: Vec<Diagnostic>,
        after_syntax_ok: bool,
    ) -> Self {
        ConfigError {
            diagnostic,
            warnings,
            after_syntax_ok,
        }
    }
}

/// Reads and validates the config file at `path` (and its includes); a relative
/// `path` is taken relative to nginx's prefix, as `nginx -c` does.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    load_with(path, &LoadOptions::default())
}

/// [`load`] with the command line's prefix and `-g` directives.
pub fn load_with(path: &Path, options: &LoadOptions) -> Result<Loaded, ConfigError> {
    let path = absolute(path, &options.prefix);
    match parser::read_config(&path) {
        Ok(text) => load_bytes(&text, &path, options),
        Err(d) => Err(ConfigError::new(d, Vec::new(), false)),
    }
}

/// Validates `text` as if it were the file at `path` (includes are resolved relative
/// to `path`'s directory). For tests and for `-t` on unsaved text.
pub fn load_str(text: &str, path: &Path) -> Result<Loaded, ConfigError> {
    load_bytes(text.as_bytes(), path, &LoadOptions::default())
}

fn load_bytes(text: &[u8], path: &Path, options: &LoadOptions) -> Result<Loaded, ConfigError> {
    let conf_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut parsed = parser::parse(text, path, &conf_dir);
    if let Some(globals) = &options.globals {
        parser::prepend_globals(&mut parsed, globals.as_bytes(), &conf_dir);
    }
    let files = std::mem::take(&mut parsed.files);
    let (mut config, warnings) = build::build(parsed, path, &conf_dir, &options.prefix)?;
    if config.error_log.is_empty() {
        config.error_log.extend(options.default_error_log.clone());
    }
    Ok(Loaded {
        config,
        warnings,
        files,
    })
}

/// `-t`'s checks after `syntax is ok` that look at the system: the pid file's
/// directory, the error logs, the listen addresses (`probe.rs` says how, and why
/// with so few side effects). Start-up makes the same checks by doing the real thing.
pub fn check_system(loaded: Loaded) -> Result<Loaded, ConfigError> {
    match probe::check(&loaded.config) {
        Ok(()) => Ok(loaded),
        Err(d) => Err(ConfigError::new(d, loaded.warnings, true)),
    }
}

/// nginx resolves a relative `-c` path against its prefix (`/usr/share/nginx` on
/// Debian), not the working directory: `nginx -t -c x.conf` reads
/// `/usr/share/nginx/x.conf` (verified). We do the same;
/// `prefix` is nginx's `-p`.
pub fn absolute(path: &Path, prefix: &Path) -> PathBuf {
    handlers::resolve(prefix, &path.to_string_lossy())
}

/// What `mailproxy -t -c FILE` prints on stderr, and whether the test passed.
///
/// The lines are those of Debian's nginx 1.22.1 (§19.1) with the program name
/// `mailproxy`: diagnostics as error-log lines
/// (`2026/11/28 06:02:38 [emerg] 20150#20150: <text> in FILE:LINE`), then
/// `mailproxy: the configuration file FILE syntax is ok` and
/// `mailproxy: configuration file FILE test is successful`, or
/// `mailproxy: configuration file FILE test failed`. Each line ends with `\n`.
pub fn check_report(path: &Path) -> (String, bool) {
    let options = LoadOptions::default();
    let shown = absolute(path, &options.prefix);
    let result = load_with(path, &options);
    report(&shown, &result)
}

/// The text of [`check_report`] for an already computed result.
pub fn report(path: &Path, result: &Result<Loaded, ConfigError>) -> (String, bool) {
    let file = path.display();
    let syntax_ok = format!("mailproxy: the configuration file {file} syntax is ok\n");
    let mut out = String::new();
    match result {
        Ok(loaded) => {
            for w in &loaded.warnings {
                out.push_str(&log_line(w));
            }
            out.push_str(&syntax_ok);
            out.push_str(&format!(
                "mailproxy: configuration file {file} test is successful\n"
            ));
            (out, true)
        }
        Err(e) => {
            for w in &e.warnings {
                out.push_str(&log_line(w));
            }
            if e.after_syntax_ok {
                out.push_str(&syntax_ok);
            }
            out.push_str(&log_line(&e.diagnostic));
            out.push_str(&format!(
                "mailproxy: configuration file {file} test failed\n"
            ));
            (out, false)
        }
    }
}

/// One diagnostic in nginx's error-log format.
pub fn log_line(d: &Diagnostic) -> String {
    let pid = std::process::id();
    format!(
        "{} [{}] {pid}#{pid}: {d}\n",
        timestamp(),
        level_name(d.level)
    )
}
