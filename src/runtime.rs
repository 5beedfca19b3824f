//! Starting and stopping the proxy: TLS contexts, listeners, daemonising, the pid
//! file, privileges, the tokio runtime, the accept loops and signals.

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

use crate::config::{Config, LogLevel, WorkerProcesses};
use crate::log;
use crate::net::listener::{bind_all, BoundListener, Routes};
use crate::net::tls;
use crate::session::{self, Accepted, ServerRuntime};

/// A start-up failure, printed as an `[emerg]` line.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StartError(pub String);

/// Connection numbers (`*N` in logs), as nginx counts them.
static CONNECTIONS: AtomicU64 = AtomicU64::new(1);

/// Everything prepared before the runtime starts (and before privileges drop).
pub struct Prepared {
    config: Config,
    servers: Vec<Arc<ServerRuntime>>,
    listeners: Vec<BoundListener>,
}

/// Builds TLS contexts and binds every listen. Runs as the invoking user (root for
/// port 993), before `user` drops privileges.
pub fn prepare(config: Config) -> Result<Prepared, StartError> {
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
        servers.push(Arc::new(ServerRuntime {
            conf: conf.clone(),
            tls,
        }));
    }
    let listens: Vec<_> = config
        .servers
        .iter()
        .enumerate()
        .flat_map(|(i, s)| s.listens.iter().map(move |l| (i, l.clone())))
        .collect();
    let listeners = bind_all(&listens).map_err(|e| StartError(e.to_string()))?;
    Ok(Prepared {
        config,
        servers,
        listeners,
    })
}

/// Writes the pid file (nginx writes it after daemonising, so it holds the right pid).
pub fn write_pid(path: &Path) -> io::Result<()> {
    std::fs::write(path, format!("{}\n", std::process::id()))
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

/// Runs the proxy until a stop signal.
pub fn run(prepared: Prepared) -> Result<(), StartError> {
    let threads = match prepared.config.worker_processes {
        WorkerProcesses::Auto => std::thread::available_parallelism().map_or(1, |n| n.get()),
        WorkerProcesses::Count(n) => n.max(1),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .map_err(|e| StartError(format!("cannot start the runtime: {e}")))?;
    rt.block_on(serve(prepared))
}

async fn serve(prepared: Prepared) -> Result<(), StartError> {
    let (stop_tx, stop_rx) = watch::channel(false);
    for bound in prepared.listeners {
        let socket = TcpListener::from_std(bound.socket)
            .map_err(|e| StartError(format!("listen on {} failed ({e})", bound.routes.addr)))?;
        tokio::spawn(accept_loop(
            socket,
            bound.routes,
            prepared.servers.clone(),
            stop_rx.clone(),
        ));
    }
    wait_for_stop().await;
    let _ = stop_tx.send(true);
    Ok(())
}

/// Waits for TERM, INT or QUIT. (HUP reload and USR1 reopen: USR1 reopens the log.)
async fn wait_for_stop() {
    let (Ok(mut term), Ok(mut int), Ok(mut quit), Ok(mut usr1)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::quit()),
        signal(SignalKind::user_defined1()),
    ) else {
        return std::future::pending().await;
    };
    loop {
        tokio::select! {
            _ = term.recv() => return,
            _ = int.recv() => return,
            _ = quit.recv() => return,
            _ = usr1.recv() => log::reopen(),
        }
    }
}

async fn accept_loop(
    socket: TcpListener,
    routes: Routes,
    servers: Vec<Arc<ServerRuntime>>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let (stream, peer) = tokio::select! {
            r = socket.accept() => match r {
                Ok(pair) => pair,
                Err(e) => {
                    log::write(LogLevel::Error, &format!("accept() failed ({e})"));
                    // EMFILE and friends: back off instead of spinning.
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => return,
        };
        let local = stream.local_addr().unwrap_or(routes.addr);
        let route = routes.route_for(local);
        let server = servers[route.server].clone();
        let accepted = Accepted {
            stream,
            peer,
            listen_text: route.text.clone(),
            implicit_tls: route.listen.ssl,
            proxy_protocol: route.listen.proxy_protocol,
            id: CONNECTIONS.fetch_add(1, Ordering::Relaxed),
        };
        tokio::spawn(session::serve(server, accepted));
    }
}

/// `user name [group]`: after binding (port 993 needs root), become `name`. As in
/// nginx, the group defaults to one named like the user, and the directive is
/// ignored with a warning when we are not root.
pub fn drop_privileges(user: &str, group: Option<&str>) -> Result<(), String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        log::write(
            LogLevel::Warn,
            "the \"user\" directive makes sense only if the master process runs with \
             super-user privileges, ignored",
        );
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
                io::Error::last_os_error()
            ));
        }
        if libc::initgroups(cuser.as_ptr(), gid) == -1 {
            return Err(format!(
                "initgroups({user}, {gid}) failed ({})",
                io::Error::last_os_error()
            ));
        }
        if libc::setuid(uid) == -1 {
            return Err(format!(
                "setuid({uid}) failed ({})",
                io::Error::last_os_error()
            ));
        }
    }
    Ok(())
}

/// `-s stop|quit|reopen|reload`: reads the pid file the config names and signals it.
pub fn signal_running(config_path: &Path, name: &str) -> Result<(), String> {
    let loaded = crate::config::load(config_path).map_err(|e| e.to_string())?;
    let pid_path = loaded
        .config
        .pid
        .ok_or_else(|| "no \"pid\" file is configured".to_string())?;
    let text = std::fs::read_to_string(&pid_path)
        .map_err(|e| format!("open() \"{}\" failed ({e})", pid_path.display()))?;
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
            io::Error::last_os_error()
        ));
    }
    Ok(())
}
