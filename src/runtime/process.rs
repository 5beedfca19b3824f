//! The process-level chores of start-up, each as nginx does it: daemonising, the pid
//! file, the file limit, and the signal mask the single-threaded master waits on.

use std::io;
use std::path::Path;
use std::time::Duration;

use crate::config::parser::os_error;
use crate::config::LogLevel;
use crate::log;

/// The daemon's umask. nginx leaves 0 and relies on each file's own mode; we create
/// every file with an explicit mode too ([`crate::files`]), and a umask of 022 keeps
/// anything else (a library's file, a core dump) from being world-writable.
const DAEMON_UMASK: libc::mode_t = 0o022;

/// `daemon on`: fork, let the parent exit, start a new session, and point stdin and
/// stdout at /dev/null, as nginx's `ngx_daemon` does. Must run before any thread exists.
pub fn daemonize() -> io::Result<()> {
    // SAFETY: called while the process is single-threaded (no runtime yet).
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
        libc::umask(DAEMON_UMASK);
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

/// Writes the pid file (after daemonising, so it holds the right pid), mode 0644 and
/// atomically.
pub fn write_pid(path: &Path) -> io::Result<()> {
    crate::files::write_atomic(path, format!("{}\n", std::process::id()).as_bytes())
}

/// `worker_rlimit_nofile N`: nginx sets it in each worker and logs failure at alert.
pub fn raise_nofile(limit: u64) {
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

/// The signals mailproxy acts on. They are blocked from the first moment of start-up,
/// before any socket is bound: a signal sent as soon as the port answers (by an init
/// script, or a test) must never meet the default action, which for most of them ends
/// the process. The master then takes them one at a time with [`MasterSignals::wait`];
/// a serving process unblocks them once its own handlers are in place
/// ([`unblock_signals`]), and what arrived meanwhile is delivered then.
pub const MASTER_SIGNALS: [libc::c_int; 6] = [
    libc::SIGHUP,
    libc::SIGUSR1,
    libc::SIGTERM,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGCHLD,
];

/// The master's blocked signal set.
pub struct MasterSignals {
    set: libc::sigset_t,
}

/// One signal taken by the master, with the sender's pid when the kernel says.
pub struct Received {
    pub number: libc::c_int,
    pub from: Option<libc::pid_t>,
}

fn master_set() -> libc::sigset_t {
    // SAFETY: sigset manipulation on a local set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in MASTER_SIGNALS {
            libc::sigaddset(&mut set, sig);
        }
        set
    }
}

/// Blocks [`MASTER_SIGNALS`] in the calling thread (and the threads it starts).
pub fn block_signals() -> io::Result<()> {
    let set = master_set();
    // SAFETY: sigprocmask on this thread with a valid set.
    if unsafe { libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Unblocks [`MASTER_SIGNALS`]: for a process whose handlers are installed.
pub fn unblock_signals() {
    let set = master_set();
    // SAFETY: as in `block_signals`.
    unsafe { libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut()) };
}

impl MasterSignals {
    /// Blocks [`MASTER_SIGNALS`] in the calling (only) thread.
    pub fn block() -> io::Result<MasterSignals> {
        block_signals()?;
        Ok(MasterSignals { set: master_set() })
    }

    /// Waits at most `limit` for one of the blocked signals.
    pub fn wait(&self, limit: Duration) -> Option<Received> {
        let timeout = libc::timespec {
            tv_sec: limit.as_secs() as libc::time_t,
            tv_nsec: limit.subsec_nanos() as libc::c_long,
        };
        // SAFETY: sigtimedwait writes only into `info`, which we own.
        unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            let number = libc::sigtimedwait(&self.set, &mut info, &timeout);
            if number <= 0 {
                return None;
            }
            let from = info.si_pid();
            Some(Received {
                number,
                from: (from > 0).then_some(from),
            })
        }
    }
}

/// nginx's name for a signal number, for log lines.
pub fn signal_name(number: libc::c_int) -> &'static str {
    match number {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGTERM => "SIGTERM",
        libc::SIGCHLD => "SIGCHLD",
        libc::SIGABRT => "SIGABRT",
        _ => "signal",
    }
}
