//! Starting the proxy as nginx does — read the config, build TLS contexts and bind
//! (as root), daemonise, write the pid file — then hand over to the [`master`], which
//! forks unprivileged [`worker`]s that serve, or, with `master_process off`, serve
//! from this one process ([`serve`]).
//!
//! Until the pid file is written, warnings and errors also reach the terminal
//! (`mailproxy: [emerg] bind() to ... failed (98: Address already in use)`), as nginx's
//! do; after that only the error log has them.

mod master;
mod privileges;
mod process;
mod serve;
mod shared;
mod worker;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::config::parser::os_error;
use crate::config::{self, Config, Listen, LoadOptions, LogLevel};
use crate::log;
use crate::net::listener::{self, bind_all, BoundListener, Routes};
use crate::net::tls;
use crate::proto::DialoguePlan;
use crate::session::ServerPlan;

pub use process::{daemonize, write_pid};

/// A failure to start or reload, logged at `level` (`emerg`, or `crit` for an include
/// that cannot be read, as nginx).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct StartError {
    pub level: LogLevel,
    pub message: String,
}

impl StartError {
    pub fn emerg(message: impl Into<String>) -> StartError {
        StartError {
            level: LogLevel::Emerg,
            message: message.into(),
        }
    }
}

/// One config generation's plan: the loaded configuration, each server's
/// [`ServerPlan`] (TLS context, pre-auth lines, log) and the listening sockets it
/// needs, grouped as they will be bound. Start-up, a reload, `-s reload`'s check and
/// `-t` all build exactly this, so a config that passes `-t` starts; only binding is
/// left for start-up and reload.
#[derive(Clone)]
pub struct Generation {
    pub config: Config,
    pub servers: Vec<Arc<ServerPlan>>,
    pub routes: Vec<Routes>,
}

/// How often and how long start-up waits for an address in use (nginx: 5 × 500 ms).
const BIND_TRIES: u32 = 5;
const BIND_RETRY: Duration = Duration::from_millis(500);

/// `mailproxy [-c FILE] [-p PREFIX] [-g DIRECTIVES]`: runs until a stop signal.
pub fn start(path: PathBuf, load: LoadOptions) -> Result<(), StartError> {
    log::echo_to_stderr(true);
    shared::init();
    let generation = load_generation(&path, &load)?;
    let config = &generation.config;
    log::init_chain(&config.error_log).map_err(|e| StartError::emerg(e.to_string()))?;
    let bound = bind_at_start(&generation.routes)?;
    let user = if config.master_process {
        privileges::worker_user(config)
    } else {
        privileges::explicit_user(config)
    }
    .map_err(StartError::emerg)?;
    if config.daemon {
        daemonize()
            .map_err(|e| StartError::emerg(format!("daemon() failed ({})", os_error(&e))))?;
    }
    let pid = config.pid.clone();
    write_pid(&pid).map_err(|e| {
        StartError::emerg(format!(
            "open() \"{}\" failed ({})",
            pid.display(),
            os_error(&e)
        ))
    })?;
    if config.daemon {
        log::redirect_stderr();
    }
    log::echo_to_stderr(false);
    let result = if config.master_process {
        master::Master::new(path, load, generation, bound, user).map(master::Master::run)
    } else {
        single_process(path, load, generation, bound, user)
    };
    let _ = std::fs::remove_file(&pid);
    result
}

/// Reads the config and builds everything a generation needs (TLS contexts, server
/// logs): what start-up, a reload and `-s reload`'s check all do.
pub fn load_generation(path: &Path, load: &LoadOptions) -> Result<Generation, StartError> {
    let loaded = config::load_with(path, load).map_err(|e| {
        for w in &e.warnings {
            log::write(w.level, &w.to_string());
        }
        StartError {
            level: e.diagnostic.level,
            message: e.diagnostic.to_string(),
        }
    })?;
    for w in &loaded.warnings {
        log::write(w.level, &w.to_string());
    }
    plan(loaded.config)
}

/// After a reload: the new config's top-level `error_log` becomes the main log (stderr
/// if it names none). On failure the old log stays.
pub(crate) fn install_main_log(config: &Config) {
    log::install_main(&config.error_log);
}

/// Binds every listen; an address in use is tried again [`BIND_TRIES`] times, as
/// nginx does (an old instance may still be closing).
fn bind_at_start(routes: &[Routes]) -> Result<Vec<BoundListener>, StartError> {
    for _ in 0..BIND_TRIES {
        match bind_all(routes) {
            Ok(bound) => return Ok(bound),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                log::write(LogLevel::Emerg, &e.to_string());
                log::write(LogLevel::Notice, "try again to bind() after 500ms");
                std::thread::sleep(BIND_RETRY);
            }
            Err(e) => return Err(StartError::emerg(e.to_string())),
        }
    }
    Err(StartError::emerg("still could not bind()"))
}

/// `master_process off`: this process serves, with `worker_processes` runtime threads,
/// after dropping to an explicit `user`.
fn single_process(
    path: PathBuf,
    load: LoadOptions,
    generation: Generation,
    bound: Vec<BoundListener>,
    user: Option<privileges::WorkerUser>,
) -> Result<(), StartError> {
    if let Some(limit) = generation.config.worker_rlimit_nofile {
        process::raise_nofile(limit);
    }
    if let Some(user) = user {
        user.become_this().map_err(StartError::emerg)?;
    }
    let threads = match generation.config.worker_processes {
        config::WorkerProcesses::Auto => {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        }
        config::WorkerProcesses::Count(n) => n.max(1),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .map_err(|e| StartError::emerg(format!("cannot start the runtime: {e}")))?;
    let role = serve::Role::Single { path, load };
    let result = rt.block_on(serve::serve(role, generation, bound));
    // Sessions still running (TERM, or QUIT past worker_shutdown_timeout) are cut.
    rt.shutdown_background();
    result
}

/// Builds the [`Generation`] of a loaded config: every server's TLS context and
/// pre-auth lines, its own `error_log` opened, the listen groups. Also used by a
/// reload, where a failure keeps the old configuration running.
pub fn plan(config: Config) -> Result<Generation, StartError> {
    let routes =
        listener::group(&listens_of(&config)).map_err(|e| StartError::emerg(e.to_string()))?;
    let mut servers = Vec::new();
    for conf in &config.servers {
        let tls = match &conf.tls {
            Some(t) => {
                let built = tls::server_context(t, conf.protocol)
                    .map_err(|e| StartError::emerg(e.to_string()))?;
                for w in &built.warnings {
                    log::write(LogLevel::Warn, w);
                }
                Some(built.context)
            }
            None => None,
        };
        let log = log::Log::open(&conf.error_log).map_err(|e| {
            StartError::emerg(format!(
                "open() error log of server in {} failed ({})",
                conf.location,
                os_error(&e.error)
            ))
        })?;
        servers.push(Arc::new(ServerPlan {
            conf: conf.clone(),
            tls,
            dialogue: DialoguePlan::new(conf),
            log,
        }));
    }
    Ok(Generation {
        config,
        servers,
        routes,
    })
}

/// Every `listen` paired with the index of its server.
fn listens_of(config: &Config) -> Vec<(usize, Listen)> {
    config
        .servers
        .iter()
        .enumerate()
        .flat_map(|(i, s)| s.listens.iter().map(move |l| (i, l.clone())))
        .collect()
}

/// `-s stop|quit|reopen|reload`: reads the pid file the config names and signals it.
/// A reload first loads the new config as start-up would (certificates and keys
/// included), so that a broken one is reported here, with exit 1, and never sent.
pub fn signal_running(
    config_path: &Path,
    load: &LoadOptions,
    name: &str,
) -> Result<(), StartError> {
    log::echo_to_stderr(true);
    let pid_path = if name == "reload" {
        load_generation(config_path, load)?.config.pid
    } else {
        config::load_with(config_path, load)
            .map_err(|e| StartError {
                level: e.diagnostic.level,
                message: e.diagnostic.to_string(),
            })?
            .config
            .pid
    };
    log::write_to_stderr(LogLevel::Notice, "signal process started");
    let error = |message: String| StartError {
        level: LogLevel::Error,
        message,
    };
    let text = std::fs::read_to_string(&pid_path).map_err(|e| {
        error(format!(
            "open() \"{}\" failed ({})",
            pid_path.display(),
            os_error(&e)
        ))
    })?;
    let pid: libc::pid_t = text.trim().parse().map_err(|_| {
        error(format!(
            "invalid PID number \"{}\" in \"{}\"",
            text.trim(),
            pid_path.display()
        ))
    })?;
    let sig = match name {
        "stop" => libc::SIGTERM,
        "quit" => libc::SIGQUIT,
        "reopen" => libc::SIGUSR1,
        _ => libc::SIGHUP,
    };
    // SAFETY: kill has no memory-safety preconditions.
    if unsafe { libc::kill(pid, sig) } == -1 {
        return Err(StartError {
            level: LogLevel::Alert,
            message: format!(
                "kill({pid}, {sig}) failed ({})",
                os_error(&std::io::Error::last_os_error())
            ),
        });
    }
    Ok(())
}
