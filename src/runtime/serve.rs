//! The serving process — a worker, or the one process of `master_process off`: one
//! accept loop per listening socket, the connection cap, and the signals — QUIT
//! drains, TERM/INT stop, USR1 reopens the log, HUP reloads (single process only; a
//! worker ignores it, as nginx's do: its master reloads by starting new workers).
//!
//! A reload builds a whole new [`Generation`] beside the running one and switches
//! only when everything in it is ready, so a broken config never stops service.
//! Listening sockets are keyed by address: an address in both configs keeps its
//! socket (no refused connections during the switch), new addresses are bound before
//! anything changes, removed ones are closed. Sessions hold an `Arc` of the server
//! they started with and finish under their old config.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use super::{install_main_log, load_generation, Generation, StartError};
use crate::config::parser::os_error;
use crate::config::{self, LoadOptions, LogLevel};
use crate::log;
use crate::net::listener::{self, BoundListener, Routes};
use crate::session::{self, Accepted, ServerPlan};

/// What one accept loop serves: its routes and the servers they lead to.
struct Assignment {
    routes: Routes,
    servers: Vec<Arc<ServerPlan>>,
}

struct ActiveListener {
    assignment: watch::Sender<Arc<Assignment>>,
    task: JoinHandle<()>,
}

/// `worker_connections`: how many client connections may be open, and how many are.
struct Limits {
    cap: AtomicUsize,
    active: AtomicUsize,
    idle: Notify,
    /// The most connections open at once since freed memory was last given back.
    high: AtomicUsize,
    /// Memory was given back since the count was last zero: give it back at zero too.
    trimmed: AtomicBool,
}

/// Held by each session; its drop frees the slot and wakes a draining QUIT.
struct Slot(Arc<Limits>);

impl Drop for Slot {
    fn drop(&mut self) {
        let limits = &self.0;
        let left = limits.active.fetch_sub(1, Ordering::AcqRel) - 1;
        if left == 0 {
            limits.idle.notify_waiters();
        }
        let high = limits.high.load(Ordering::Relaxed);
        if worth_trimming(high, left, limits.trimmed.load(Ordering::Relaxed)) {
            limits.high.store(left, Ordering::Relaxed);
            limits.trimmed.store(left > 0, Ordering::Relaxed);
            give_back_freed_heap();
        }
    }
}

/// Sessions that must have closed since the last trim before the next one: ~1.2 MB
/// at the ~19 KB a session held before login in the flood (half of them TLS).
const TRIM_AFTER_CLOSED: usize = 64;

/// Whether to give freed memory back now that a connection closed and `left` are
/// open, at most `high` having been open at once since the last time: when at least
/// [`TRIM_AFTER_CLOSED`] and at least half of them have closed, and once more when
/// the last one closes after such a trim. A steady load never trims; the end of a
/// flood of 1,500 trims six times (at 750, 375, 187, 93, 29 and 0 left).
fn worth_trimming(high: usize, left: usize, trimmed: bool) -> bool {
    let halved = high.saturating_sub(left) >= TRIM_AFTER_CLOSED && left <= high / 2;
    halved || (left == 0 && trimmed)
}

/// Hands the free pages of the heap back to the kernel (`malloc_trim(0)`).
///
/// glibc gives freed memory back only from the top of its heap, and after a flood
/// the heap is free but not at the top: once 1,500 slow connections (half TLS) had
/// closed, a worker's heap was 28.4 MiB with 0.67 MiB in use, and every MiB of it
/// still held a few small chunks, live or cached by tcache. RSS stayed 30 MB above
/// the baseline for good; MALLOC_ARENA_MAX (one thread, one arena),
/// MALLOC_TRIM_THRESHOLD_ and MALLOC_MMAP_THRESHOLD_ changed nothing. malloc_trim
/// also releases the free pages inside the heap (`madvise`): RSS comes back to
/// ~4.5 MB above the baseline, 3.1 MB of it the TLS library's code, paged in once
/// (nginx's grows as much), and the pages of tcache's cached chunks. A trim took
/// 0.4-2.6 ms on that heap. (benches/flood.sh; docs/performance.md, "Memory after a
/// connection flood".)
fn give_back_freed_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks and releases the allocator's own free memory.
    unsafe {
        libc::malloc_trim(0);
    }
}

impl Limits {
    fn admit(self: &Arc<Self>) -> Option<Slot> {
        let cap = self.cap.load(Ordering::Relaxed);
        let before = self
            .active
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < cap).then_some(n + 1)
            })
            .ok()?;
        self.high.fetch_max(before + 1, Ordering::Relaxed);
        Some(Slot(self.clone()))
    }

    async fn wait_idle(&self) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.active.load(Ordering::Acquire) == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// What a process serving sessions is.
pub enum Role {
    /// `master_process off`: HUP re-reads this config in place.
    Single {
        path: std::path::PathBuf,
        load: LoadOptions,
    },
    /// A worker of master `master`: its master reloads; it only drains on QUIT, and
    /// stops when the master is gone.
    Worker { master: libc::pid_t },
}

/// How often a worker checks that its master still exists. The kernel's parent-death
/// signal (asked for in `worker::run`) is the quick way; this catches a master death
/// that signal missed, so a worker never serves on, unsupervised, with the port.
const MASTER_CHECK: Duration = Duration::from_secs(1);

/// Everything the signal loop owns.
struct Instance {
    role: Role,
    generation: Generation,
    listeners: HashMap<SocketAddr, ActiveListener>,
    limits: Arc<Limits>,
}

/// Serves until TERM, INT or QUIT.
pub async fn serve(
    role: Role,
    generation: Generation,
    bound: Vec<BoundListener>,
) -> Result<(), StartError> {
    let limits = Arc::new(Limits {
        cap: AtomicUsize::new(cap_of(&generation.config)),
        active: AtomicUsize::new(0),
        idle: Notify::new(),
        high: AtomicUsize::new(0),
        trimmed: AtomicBool::new(false),
    });
    let mut instance = Instance {
        role,
        generation,
        listeners: HashMap::new(),
        limits,
    };
    for b in bound {
        instance.spawn_listener(b.routes, b.socket)?;
    }
    let mut signals = Signals::new()
        .map_err(|e| StartError::emerg(format!("signal() failed ({})", os_error(&e))))?;
    // Our handlers are in place: what was sent since start-up is delivered now (to this
    // thread; runtime threads started earlier keep the signals blocked).
    super::process::unblock_signals();
    loop {
        match signals.next(&instance.role).await {
            Event::Reload => instance.reload().await,
            Event::Reopen => {
                log::write(LogLevel::Notice, "reopening logs");
                log::reopen(None);
            }
            Event::Stop => return Ok(()),
            Event::Quit => {
                instance.graceful_stop(&mut signals).await;
                return Ok(());
            }
        }
    }
}

fn cap_of(config: &config::Config) -> usize {
    usize::try_from(config.worker_connections).unwrap_or(usize::MAX)
}

impl Instance {
    fn spawn_listener(
        &mut self,
        routes: Routes,
        socket: std::net::TcpListener,
    ) -> Result<(), StartError> {
        let addr = routes.addr;
        let socket = TcpListener::from_std(socket).map_err(|e| {
            StartError::emerg(format!("listen() to {addr} failed ({})", os_error(&e)))
        })?;
        let assignment = Arc::new(Assignment {
            routes,
            servers: self.generation.servers.clone(),
        });
        let (tx, rx) = watch::channel(assignment);
        let task = tokio::spawn(accept_loop(socket, rx, self.limits.clone()));
        self.listeners.insert(
            addr,
            ActiveListener {
                assignment: tx,
                task,
            },
        );
        Ok(())
    }

    /// HUP: read the config again; switch to it only if all of it is usable.
    ///
    /// Reading files, resolving names, loading keys and binding all block, so they run
    /// on the blocking pool while the runtime keeps serving.
    async fn reload(&mut self) {
        let Role::Single { path, load } = &self.role else {
            return;
        };
        let (path, load) = (path.clone(), load.clone());
        let bound: Vec<SocketAddr> = self.listeners.keys().copied().collect();
        let prepared =
            tokio::task::spawn_blocking(move || prepare_reload(&path, &load, &bound)).await;
        let (generation, plan) = match prepared {
            Ok(Ok(next)) => next,
            Ok(Err(e)) => return log::write(e.level, &e.message),
            Err(e) => return log::write(LogLevel::Alert, &format!("reload failed ({e})")),
        };
        install_main_log(&generation.config);
        self.limits
            .cap
            .store(cap_of(&generation.config), Ordering::Relaxed);
        self.generation = generation;
        self.switch(plan);
    }

    fn switch(&mut self, plan: Plan) {
        let keep: Vec<SocketAddr> = plan.iter().map(|(r, _)| r.addr).collect();
        self.listeners.retain(|addr, l| {
            let kept = keep.contains(addr);
            if !kept {
                l.task.abort();
            }
            kept
        });
        for (routes, fresh) in plan {
            match fresh {
                Some(socket) => {
                    if let Err(e) = self.spawn_listener(routes, socket) {
                        log::write(LogLevel::Emerg, &e.message);
                    }
                }
                None => {
                    if let Some(l) = self.listeners.get(&routes.addr) {
                        let servers = self.generation.servers.clone();
                        let _ = l.assignment.send(Arc::new(Assignment { routes, servers }));
                    }
                }
            }
        }
    }

    /// QUIT: close every listening socket, then wait for the sessions to end, at most
    /// `worker_shutdown_timeout` (nginx's graceful shutdown).
    ///
    /// TERM or INT meanwhile (or, in a worker, the master's death) ends the wait at
    /// once, as in nginx; USR1 still reopens the logs.
    async fn graceful_stop(&mut self, signals: &mut Signals) {
        for (_, l) in self.listeners.drain() {
            l.task.abort();
        }
        log::write(LogLevel::Notice, "gracefully shutting down");
        let limit = self.generation.config.worker_shutdown_timeout;
        let drained = async {
            match limit {
                Some(limit) => tokio::time::timeout(limit, self.limits.wait_idle())
                    .await
                    .is_ok(),
                None => {
                    self.limits.wait_idle().await;
                    true
                }
            }
        };
        let stopped = async {
            loop {
                match signals.next(&self.role).await {
                    Event::Stop => return,
                    Event::Reopen => log::reopen(None),
                    Event::Reload | Event::Quit => {}
                }
            }
        };
        tokio::select! {
            done = drained => if !done {
                let left = self.limits.active.load(Ordering::Acquire);
                log::write(
                    LogLevel::Notice,
                    &format!("worker_shutdown_timeout expired, closing {left} connections"),
                );
            },
            () = stopped => {}
        }
        log::write(LogLevel::Notice, "exiting");
        log::write(LogLevel::Notice, "exit");
    }
}

/// The sockets of the next generation: each address with a new socket, or `None` to
/// keep the one bound now.
type Plan = Vec<(Routes, Option<std::net::TcpListener>)>;

/// The next generation and its sockets; every new address is bound before anything
/// changes: all or nothing.
fn prepare_reload(
    path: &std::path::Path,
    load: &LoadOptions,
    bound: &[SocketAddr],
) -> Result<(Generation, Plan), StartError> {
    let generation = load_generation(path, load)?;
    let groups = generation.routes.clone();
    let mut plan = Vec::with_capacity(groups.len());
    for routes in groups {
        let fresh = if bound.contains(&routes.addr) {
            None
        } else {
            Some(listener::bind(&routes).map_err(|e| StartError::emerg(e.to_string()))?)
        };
        plan.push((routes, fresh));
    }
    Ok((generation, plan))
}

/// The log of a listening socket, as nginx's `ls->log`: its first server's chain (else
/// the main log), where accept failures go.
fn listening_log(assignment: &watch::Receiver<Arc<Assignment>>) -> Option<Arc<log::Log>> {
    let current = assignment.borrow();
    let server = current.routes.routes.first().map_or(0, |r| r.server);
    current.servers.get(server).and_then(|s| s.log.clone())
}

async fn accept_loop(
    socket: TcpListener,
    assignment: watch::Receiver<Arc<Assignment>>,
    limits: Arc<Limits>,
) {
    loop {
        let (stream, peer) = match socket.accept().await {
            Ok(pair) => pair,
            Err(e) => {
                log::write_to(
                    listening_log(&assignment).as_deref(),
                    LogLevel::Alert,
                    &format!("accept() failed ({})", os_error(&e)),
                );
                // EMFILE and friends: back off instead of spinning.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(slot) = limits.admit() else {
            let cap = limits.cap.load(Ordering::Relaxed);
            log::write_to(
                listening_log(&assignment).as_deref(),
                LogLevel::Alert,
                &format!("{cap} worker_connections are not enough"),
            );
            drop(stream);
            continue;
        };
        let current = assignment.borrow().clone();
        let local = current.routes.local_addr_of(&stream);
        let route = current.routes.route_for(local);
        let server = current.servers[route.server].clone();
        let accepted = Accepted {
            stream,
            peer,
            local,
            listen_text: route.text.clone(),
            implicit_tls: route.listen.ssl,
            proxy_protocol: route.listen.proxy_protocol,
            id: super::shared::next_connection(),
        };
        let session = async move {
            if let Some(logged_in) = session::serve(server, accepted).await {
                // A small task for the long part of the session; this one ends.
                tokio::spawn(async move {
                    logged_in.relay().await;
                    drop(slot);
                });
            }
        };
        tokio::spawn(session);
        // Let the new session start before taking the next connection. Workers share
        // the listening socket; one that kept accepting a burst would take all of it
        // while the others sleep (nginx spreads a burst with EPOLLEXCLUSIVE). A busy
        // worker now accepts more slowly than an idle one.
        tokio::task::yield_now().await;
    }
}

/// Resolves once the master `master` is no longer this process's parent; never for
/// `None` (the single process has no master).
async fn master_gone(master: Option<libc::pid_t>) {
    let Some(master) = master else {
        return std::future::pending().await;
    };
    loop {
        tokio::time::sleep(MASTER_CHECK).await;
        // SAFETY: getppid has no preconditions.
        if unsafe { libc::getppid() } != master {
            return;
        }
    }
}

enum Event {
    Reload,
    Reopen,
    Stop,
    Quit,
}

struct Signals {
    hup: Signal,
    usr1: Signal,
    term: Signal,
    int: Signal,
    quit: Signal,
}

impl Signals {
    fn new() -> std::io::Result<Signals> {
        Ok(Signals {
            hup: signal(SignalKind::hangup())?,
            usr1: signal(SignalKind::user_defined1())?,
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            quit: signal(SignalKind::quit())?,
        })
    }

    /// The next signal, logged in nginx's words (`signal 1 (SIGHUP) received, reconfiguring`).
    async fn next(&mut self, role: &Role) -> Event {
        let (reload, master) = match role {
            Role::Single { .. } => (", reconfiguring", None),
            Role::Worker { master } => (", ignoring", Some(*master)),
        };
        let (event, number, name, action) = tokio::select! {
            () = master_gone(master) => {
                log::write(LogLevel::Alert, "the master process is gone, exiting");
                return Event::Stop;
            }
            _ = self.hup.recv() => (Event::Reload, 1, "SIGHUP", reload),
            _ = self.usr1.recv() => (Event::Reopen, 10, "SIGUSR1", ", reopening logs"),
            _ = self.term.recv() => (Event::Stop, 15, "SIGTERM", ", exiting"),
            _ = self.int.recv() => (Event::Stop, 2, "SIGINT", ", exiting"),
            _ = self.quit.recv() => (Event::Quit, 3, "SIGQUIT", ", shutting down"),
        };
        log::write(
            LogLevel::Notice,
            &format!("signal {number} ({name}) received{action}"),
        );
        event
    }
}

#[cfg(test)]
mod tests {
    use super::worth_trimming;

    #[test]
    fn trims_when_a_flood_ends_not_under_steady_load() {
        // Churn around 200 sessions, and one session at a time.
        assert!(!worth_trimming(200, 150, false));
        assert!(!worth_trimming(1, 0, false));
        assert!(!worth_trimming(63, 0, false));
        // A flood of 1,500 on its way down, and its last sessions.
        assert!(!worth_trimming(1500, 751, false));
        assert!(worth_trimming(1500, 750, false));
        assert!(worth_trimming(750, 0, true));
        assert!(!worth_trimming(29, 1, true));
        assert!(worth_trimming(29, 0, true));
    }
}
