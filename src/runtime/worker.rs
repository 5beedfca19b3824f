//! One worker process: forked by the master with a generation and its listening
//! sockets, it gives up root before it touches the network, then serves until told to
//! stop. It never reads the config or a key file: both came with the fork.

use super::privileges::WorkerUser;
use super::process::raise_nofile;
use super::serve::{self, Role};
use super::Generation;
use crate::config::LogLevel;
use crate::log;
use crate::net::listener::BoundListener;

/// The exit code of a worker that cannot start (its credentials, its runtime): the
/// master does not respawn it, as nginx's `NGX_FATAL` (`exited with fatal code 2 and
/// cannot be respawned`).
pub const FATAL_EXIT: i32 = 2;

/// Everything a new worker needs, moved into it by the fork.
pub struct WorkerStart {
    pub generation: Generation,
    pub listeners: Vec<BoundListener>,
    pub user: Option<WorkerUser>,
    pub master: libc::pid_t,
}

/// The body of a forked worker; returns its exit code.
/// The master's signals stay blocked until `serve` has its own handlers.
pub fn run(start: WorkerStart) -> i32 {
    if let Some(limit) = start.generation.config.worker_rlimit_nofile {
        raise_nofile(limit);
    }
    if let Some(user) = &start.user {
        if let Err(e) = user.become_this() {
            log::write(LogLevel::Emerg, &e);
            return FATAL_EXIT;
        }
    }
    if !die_with(start.master) {
        return 0;
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            log::write(LogLevel::Emerg, &format!("cannot start the runtime: {e}"));
            return FATAL_EXIT;
        }
    };
    let served = runtime.block_on(serve::serve(
        Role::Worker {
            master: start.master,
        },
        start.generation,
        start.listeners,
    ));
    // Sessions still running (TERM, or QUIT past worker_shutdown_timeout) are cut.
    runtime.shutdown_background();
    match served {
        Ok(()) => 0,
        Err(e) => {
            log::write(LogLevel::Emerg, &e.message);
            FATAL_EXIT
        }
    }
}

/// Asks for SIGTERM when the master dies (set after the credential change, which
/// clears it). nginx's workers outlive a killed master and keep its ports bound, so
/// a new master cannot start; ours stop. False if the master is already gone.
fn die_with(master: libc::pid_t) -> bool {
    // SAFETY: prctl with an integer argument; getppid has no preconditions.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
        libc::getppid() == master
    }
}
