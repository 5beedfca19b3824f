//! Starting the proxy as nginx does — read the config, build TLS contexts and bind
//! (as root), daemonise, write the pid file, raise the file limit, drop privileges —
//! then hand over to [`serve`] for the accept loops and signals.

mod serve;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::parser::os_error;
use crate::config::{self, Config, Listen, LoadOptions, LogLevel, LogSink, WorkerProcesses};
use crate::log;
use crate::net::listener::{bind_all, BoundListener};
use crate::net::tls;
use crate::session::ServerRuntime;

/// A start-up failure, printed as an `[emerg]` line.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StartError(pub String);

/// One loaded configuration, with its servers ready to serve (TLS contexts built).
pub struct Generation {
    pub config: Config,
    pub servers: Vec<Arc<ServerRuntime>>,
}

/// `mailproxy [-c FILE] [-p PREFIX] [-g DIRECTIVES]`: runs until a stop signal.
pub fn start(path: PathBuf, load: LoadOptions) -> Result<(), StartError> {
    let loaded = config::load_with(&path, &load).map_err(|e| {
        for w in &e.warnings {
            log::write(w.level, &w.to_string());
        }
        StartError(e.diagnostic.to_string())
    })?;
    for w in &loaded.warnings {
        log::write(w.level, &w.to_string());
    }
    let config = loaded.config;
    if let Some(target) = &config.error_log {
        log::init(target).map_err(|e| match &target.sink {
            LogSink::File(p) => StartError(format!(
                "open() \"{}\" failed ({})",
                p.display(),
                os_error(&e)
            )),
            _ => StartError(format!("cannot open the error log ({e})")),
        })?;
    }
    let generation = prepare_servers(config)?;
    let bound = bind_all(&listens_of(&generation.config)).map_err(|e| StartError(e.to_string()))?;
    let config = &generation.config;
    if config.daemon {
        daemonize().map_err(|e| StartError(format!("daemon() failed ({})", os_error(&e))))?;
        log::redirect_stderr();
    }
    let pid = config.pid.clone();
    if let Some(pid) = &pid {
        write_pid(pid).map_err(|e| {
            StartError(format!(
                "open() \"{}\" failed ({})",
                pid.display(),
                os_error(&e)
            ))
        })?;
    }
    if let Some(limit) = config.worker_rlimit_nofile {
        raise_nofile(limit);
    }
    if let Some((name, group)) = &config.user {
        drop_privileges(name, group.as_deref()).map_err(StartError)?;
    }
    let result = run(path, load, generation, bound);
    if let Some(pid) = &pid {
        let _ = std::fs::remove_file(pid);
    }
    result
}

/// Builds every server's TLS context and opens its own `error_log`. Also used by a reload, where a failure keeps
/// the old configuration running.
pub fn prepare_servers(config: Config) -> Result<Generation, StartError> {
    let mut servers = Vec::new();
    for conf in &config.servers {
        let tls = match &conf.tls {
            Some(t) => {
                let built =
                    tls::server_context(t, conf.protocol).map_err(|e| StartError(e.to_string()))?;
                for w in &built.warnings {
                    log::write(LogLevel::Warn, w);
                }
                Some(built.context)
            }
            None => None,
        };
        let log = match &conf.error_log {
            Some(target) => Some(log::Log::open(target).map_err(|e| {
                StartError(format!(
                    "open() error log of server in {} failed ({e})",
                    conf.location
                ))
            })?),
            None => None,
        };
        servers.push(Arc::new(ServerRuntime {
            conf: conf.clone(),
            tls,
            log,
        }));
    }
    Ok(Generation { config, servers })
}

/// Every `listen` paired with the index of its server.
pub fn listens_of(config: &Config) -> Vec<(usize, Listen)> {
    config
        .servers
        .iter()
        .enumerate()
        .flat_map(|(i, s)| s.listens.iter().map(move |l| (i, l.clone())))
        .collect()
}

/// `worker_rlimit_nofile N`: nginx sets it in each worker and logs failure at alert.
fn raise_nofile(limit: u64) {
    let rlim = libc::rlimit {
        rlim_cur: limit as libc::rlim_t,
        rlim_max: limit as libc::rlim_t,
    };
    // SAFETY: setrlimit reads the struct we pass; no other preconditions.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &rlim) } == -1 {
        let e = io::Error::last_os_error();
        log::write(
            LogLevel::Alert,
            &format!(
                "setrlimit(RLIMIT_NOFILE, {limit}) failed ({})",
                os_error(&e)
            ),
        );
    }
}

/// Writes the pid file (nginx writes it after daemonising, so it holds the right pid).
/// Written beside its final name and renamed into place, so that `-s` (or a test, or
/// an init script) never reads a pid file that exists but is still empty.
pub fn write_pid(path: &Path) -> io::Result<()> {
    let mut partial = path.as_os_str().to_owned();
    partial.push(".new");
    let partial = Path::new(&partial);
    std::fs::write(partial, format!("{}\n", std::process::id()))?;
    std::fs::rename(partial, path).inspect_err(|_| {
        let _ = std::fs::remove_file(partial);
    })
}

/// `daemon on`: fork, let the parent exit, start a new session, and point stdio at
/// /dev/null, as nginx's `ngx_daemon` does. Must run before any thread exists.
pub fn daemonize() -> io::Result<()> {
    // SAFETY: called from main before the tokio runtime or any thread is started.
    match unsafe { libc::fork() } {
        -1 => return Err(io::Error::last_os_error()),
        0 => {}
        _ => std::process::exit(0),
    }
    // SAFETY: plain syscalls on our own process.
    unsafe {
        if libc::setsid() == -1 {
            return Err(io::Error::last_os_error());
        }
        libc::umask(0);
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if null >= 0 {
            libc::dup2(null, 0);
            libc::dup2(null, 1);
            if null > 2 {
                libc::close(null);
            }
        }
    }
    Ok(())
}

/// Runs the proxy until a stop signal. `worker_processes` becomes the number of
/// runtime threads (one process serves everything; a reload cannot change it).
fn run(
    path: PathBuf,
    load: LoadOptions,
    generation: Generation,
    bound: Vec<BoundListener>,
) -> Result<(), StartError> {
    let threads = match generation.config.worker_processes {
        WorkerProcesses::Auto => std::thread::available_parallelism().map_or(1, |n| n.get()),
        WorkerProcesses::Count(n) => n.max(1),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .map_err(|e| StartError(format!("cannot start the runtime: {e}")))?;
    let result = rt.block_on(serve::serve(path, load, generation, bound));
    // Sessions still running (TERM, or QUIT past worker_shutdown_timeout) are cut.
    rt.shutdown_background();
    result
}

/// `user name [group]`: after binding (port 993 needs root), become `name`. As in
/// nginx, the group defaults to one named like the user; when we are not root the
/// config reader has already warned and left `user` unset.
pub fn drop_privileges(user: &str, group: Option<&str>) -> Result<(), String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(());
    }
    let group = group.unwrap_or(user);
    let cuser = std::ffi::CString::new(user).map_err(|_| format!("invalid user \"{user}\""))?;
    let cgroup = std::ffi::CString::new(group).map_err(|_| format!("invalid group \"{group}\""))?;
    // SAFETY: getpwnam/getgrnam return pointers to static storage that we read at
    // once, before any other call could overwrite it; we are single-threaded here.
    unsafe {
        let pw = libc::getpwnam(cuser.as_ptr());
        if pw.is_null() {
            return Err(format!("getpwnam(\"{user}\") failed"));
        }
        let uid = (*pw).pw_uid;
        let gr = libc::getgrnam(cgroup.as_ptr());
        if gr.is_null() {
            return Err(format!("getgrnam(\"{group}\") failed"));
        }
        let gid = (*gr).gr_gid;
        if libc::setgid(gid) == -1 {
            return Err(format!(
                "setgid({gid}) failed ({})",
                os_error(&io::Error::last_os_error())
            ));
        }
        if libc::initgroups(cuser.as_ptr(), gid) == -1 {
            return Err(format!(
                "initgroups({user}, {gid}) failed ({})",
                os_error(&io::Error::last_os_error())
            ));
        }
        if libc::setuid(uid) == -1 {
            return Err(format!(
                "setuid({uid}) failed ({})",
                os_error(&io::Error::last_os_error())
            ));
        }
    }
    Ok(())
}

/// `-s stop|quit|reopen|reload`: reads the pid file the config names and signals it.
pub fn signal_running(config_path: &Path, load: &LoadOptions, name: &str) -> Result<(), String> {
    let loaded = config::load_with(config_path, load).map_err(|e| e.to_string())?;
    let pid_path = loaded
        .config
        .pid
        .ok_or_else(|| "no \"pid\" file is configured".to_string())?;
    let text = std::fs::read_to_string(&pid_path).map_err(|e| {
        format!(
            "open() \"{}\" failed ({})",
            pid_path.display(),
            os_error(&e)
        )
    })?;
    let pid: libc::pid_t = text.trim().parse().map_err(|_| {
        format!(
            "invalid PID number \"{}\" in \"{}\"",
            text.trim(),
            pid_path.display()
        )
    })?;
    let sig = match name {
        "stop" => libc::SIGTERM,
        "quit" => libc::SIGQUIT,
        "reopen" => libc::SIGUSR1,
        _ => libc::SIGHUP,
    };
    // SAFETY: kill has no memory-safety preconditions.
    if unsafe { libc::kill(pid, sig) } == -1 {
        return Err(format!(
            "kill({pid}, {sig}) failed ({})",
            os_error(&io::Error::last_os_error())
        ));
    }
    Ok(())
}
