//! The master process, as nginx's `ngx_master_process_cycle`: it stays root and does
//! only what needs root or must outlive a worker — it holds the listening sockets,
//! reads the config and the keys on reload, reopens the logs, and starts, watches and
//! stops the workers. It never reads a byte from a client, an auth server or a backend.
//!
//! It is single-threaded and has no async runtime, so forking a worker is safe: the
//! signals it acts on stay blocked and are taken one at a time by `sigtimedwait`.
//!
//! - HUP: build the next [`Generation`] beside the running one (a broken config changes
//!   nothing), bind what is new, start its workers, then tell the old workers to QUIT:
//!   they close their listeners and finish their sessions (`worker_shutdown_timeout`
//!   bounds that, if set).
//! - A worker of the current generation that dies is replaced at once, unless it
//!   exited with [`FATAL_EXIT`] (it could not drop privileges: nothing would change).
//! - QUIT: the workers drain, then the master exits. TERM/INT: the workers stop at
//!   once; any still there after [`KILL_AFTER`] get SIGKILL.
//! - USR1: reopen the logs, hand them to the workers' user, tell the workers.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::privileges::{self, WorkerUser};
use super::process::{signal_name, MasterSignals, Received};
use super::worker::{self, WorkerStart, FATAL_EXIT};
use super::{load_generation, Generation, StartError};
use crate::config::parser::os_error;
use crate::config::{LoadOptions, LogLevel, WorkerProcesses};
use crate::log;
use crate::net::listener::{self, BoundListener};

/// How long stopping workers get after TERM before SIGKILL (nginx escalates after ~1 s).
const KILL_AFTER: Duration = Duration::from_secs(1);
/// How often the master looks at the clock when no signal comes.
const TICK: Duration = Duration::from_millis(200);

struct Worker {
    pid: libc::pid_t,
    /// Of the current generation: replaced if it dies. Old workers are only reaped.
    current: bool,
}

enum Stopping {
    /// QUIT: wait for every worker to finish its sessions.
    Graceful,
    /// TERM/INT: workers were told to stop at once; SIGKILL at this instant.
    Fast { kill_at: Instant },
}

pub struct Master {
    path: PathBuf,
    load: LoadOptions,
    generation: Generation,
    /// The listening sockets, kept across reloads for the addresses that stay.
    listeners: Vec<BoundListener>,
    user: Option<WorkerUser>,
    workers: Vec<Worker>,
    signals: MasterSignals,
    stopping: Option<Stopping>,
}

impl Master {
    pub fn new(
        path: PathBuf,
        load: LoadOptions,
        generation: Generation,
        listeners: Vec<BoundListener>,
        user: Option<WorkerUser>,
    ) -> Result<Master, StartError> {
        let signals = MasterSignals::block()
            .map_err(|e| StartError::emerg(format!("sigprocmask() failed ({})", os_error(&e))))?;
        Ok(Master {
            path,
            load,
            generation,
            listeners,
            user,
            workers: Vec::new(),
            signals,
            stopping: None,
        })
    }

    /// Starts the workers and runs until they are all gone after QUIT, TERM or INT.
    pub fn run(mut self) {
        self.start_workers();
        while self.stopping.is_none() || !self.workers.is_empty() {
            if let Some(signal) = self.signals.wait(TICK) {
                self.handle(signal);
            }
            if let Some(Stopping::Fast { kill_at }) = self.stopping {
                if Instant::now() >= kill_at {
                    self.signal_workers(libc::SIGKILL, |_| true);
                    self.stopping = Some(Stopping::Fast {
                        kill_at: Instant::now() + KILL_AFTER,
                    });
                }
            }
        }
        log::write(LogLevel::Notice, "exit");
    }

    fn handle(&mut self, signal: Received) {
        let action = match signal.number {
            libc::SIGHUP => ", reconfiguring",
            libc::SIGUSR1 => ", reopening logs",
            libc::SIGTERM | libc::SIGINT => ", exiting",
            libc::SIGQUIT => ", shutting down",
            _ => "",
        };
        let from = signal
            .from
            .map(|p| format!(" from {p}"))
            .unwrap_or_default();
        log::write(
            LogLevel::Notice,
            &format!(
                "signal {} ({}) received{from}{action}",
                signal.number,
                signal_name(signal.number)
            ),
        );
        match signal.number {
            libc::SIGCHLD => self.reap(),
            libc::SIGHUP if self.stopping.is_none() => self.reload(),
            libc::SIGUSR1 => {
                log::write(LogLevel::Notice, "reopening logs");
                log::reopen(self.user.as_ref().map(|u| u.uid));
                self.signal_workers(libc::SIGUSR1, |_| true);
            }
            libc::SIGQUIT => {
                self.stopping = Some(Stopping::Graceful);
                self.signal_workers(libc::SIGQUIT, |_| true);
                // The workers close theirs; with the master's gone too, new
                // connections are refused instead of queueing for nobody.
                self.listeners.clear();
            }
            libc::SIGTERM | libc::SIGINT => {
                self.stopping = Some(Stopping::Fast {
                    kill_at: Instant::now() + KILL_AFTER,
                });
                self.signal_workers(libc::SIGTERM, |_| true);
                self.listeners.clear();
            }
            _ => {}
        }
    }

    fn start_workers(&mut self) {
        log::write(LogLevel::Notice, "start worker processes");
        let count = match self.generation.config.worker_processes {
            WorkerProcesses::Auto => std::thread::available_parallelism().map_or(1, |n| n.get()),
            WorkerProcesses::Count(n) => n.max(1),
        };
        for _ in 0..count {
            self.spawn_worker();
        }
    }

    /// Forks one worker of the current generation.
    fn spawn_worker(&mut self) {
        // SAFETY: the master is single-threaded; the child only runs `worker::run` and
        // exits, never returning into the master's loop.
        match unsafe { libc::fork() } {
            -1 => {
                let e = std::io::Error::last_os_error();
                log::write(
                    LogLevel::Alert,
                    &format!(
                        "fork() failed while spawning \"worker process\" ({})",
                        os_error(&e)
                    ),
                );
            }
            0 => {
                let start = WorkerStart {
                    generation: self.generation.clone(),
                    listeners: std::mem::take(&mut self.listeners),
                    user: self.user.clone(),
                    // SAFETY: getppid has no preconditions.
                    master: unsafe { libc::getppid() },
                };
                let code = worker::run(start);
                std::process::exit(code);
            }
            pid => {
                log::write(LogLevel::Notice, &format!("start worker process {pid}"));
                self.workers.push(Worker { pid, current: true });
            }
        }
    }

    /// Collects every exited worker, logs how it ended, and replaces current ones.
    fn reap(&mut self) {
        loop {
            let mut status = 0;
            // SAFETY: waitpid writes only into `status`.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if pid <= 0 {
                return;
            }
            let Some(i) = self.workers.iter().position(|w| w.pid == pid) else {
                continue;
            };
            let worker = self.workers.remove(i);
            let respawnable = log_exit(pid, status, worker.current);
            if worker.current && respawnable && self.stopping.is_none() {
                self.spawn_worker();
            }
        }
    }

    /// HUP: all or nothing. The old workers are told to QUIT only once the new ones run.
    fn reload(&mut self) {
        log::write(LogLevel::Notice, "reconfiguring");
        let next = match load_generation(&self.path, &self.load) {
            Ok(g) => g,
            Err(e) => return log::write(e.level, &e.message),
        };
        let user = match privileges::worker_user(&next.config) {
            Ok(u) => u,
            Err(e) => return log::write(LogLevel::Emerg, &e),
        };
        let listeners = match self.rebind(&next) {
            Ok(l) => l,
            Err(e) => return log::write(LogLevel::Emerg, &e),
        };
        super::install_main_log(&next.config);
        // Sockets of addresses no longer listed close here; old workers close theirs.
        self.listeners = listeners;
        self.generation = next;
        self.user = user;
        for w in &mut self.workers {
            w.current = false;
        }
        self.start_workers();
        self.signal_workers(libc::SIGQUIT, |w| !w.current);
    }

    /// The listening sockets of `next`: the kept ones with their new routes, the new
    /// ones bound now. Nothing changes if any address cannot be bound.
    fn rebind(&mut self, next: &Generation) -> Result<Vec<BoundListener>, String> {
        let groups = next.routes.clone();
        let mut fresh = Vec::new();
        for routes in &groups {
            if !self.listeners.iter().any(|l| l.routes.addr == routes.addr) {
                fresh.push((
                    routes.addr,
                    listener::bind(routes).map_err(|e| e.to_string())?,
                ));
            }
        }
        let mut kept = std::mem::take(&mut self.listeners);
        let mut out = Vec::with_capacity(groups.len());
        for routes in groups {
            let socket = match kept.iter().position(|l| l.routes.addr == routes.addr) {
                Some(i) => kept.swap_remove(i).socket,
                None => {
                    let i = fresh
                        .iter()
                        .position(|(a, _)| *a == routes.addr)
                        .expect("bound above");
                    fresh.swap_remove(i).1
                }
            };
            out.push(BoundListener { socket, routes });
        }
        Ok(out)
    }

    fn signal_workers(&self, signal: libc::c_int, which: impl Fn(&Worker) -> bool) {
        for w in self.workers.iter().filter(|w| which(w)) {
            // SAFETY: kill has no memory-safety preconditions.
            if unsafe { libc::kill(w.pid, signal) } == -1 {
                let e = std::io::Error::last_os_error();
                log::write(
                    LogLevel::Alert,
                    &format!("kill({}, {signal}) failed ({})", w.pid, os_error(&e)),
                );
            }
        }
    }
}

/// Logs a worker's end in nginx's words; false when it must not be respawned.
fn log_exit(pid: libc::pid_t, status: libc::c_int, current: bool) -> bool {
    if libc::WIFSIGNALED(status) {
        let core = if libc::WCOREDUMP(status) {
            " (core dumped)"
        } else {
            ""
        };
        log::write(
            LogLevel::Alert,
            &format!(
                "worker process {pid} exited on signal {}{core}",
                libc::WTERMSIG(status)
            ),
        );
        return true;
    }
    let code = libc::WEXITSTATUS(status);
    log::write(
        LogLevel::Notice,
        &format!("worker process {pid} exited with code {code}"),
    );
    if code == FATAL_EXIT && current {
        log::write(
            LogLevel::Alert,
            &format!("worker process {pid} exited with fatal code {code} and cannot be respawned"),
        );
        return false;
    }
    true
}
