//! Who the workers run as: `user NAME [GROUP]`, or nginx's compiled-in default
//! `nobody nogroup` (what Debian's nginx 1.22.1 runs its workers as), looked up by the
//! root master before it forks, and applied in each new worker before it reads a
//! single byte from the network.

use std::ffi::CString;
use std::io;

use crate::config::parser::os_error;
use crate::config::Config;

/// nginx's default worker user and group on Debian.
const DEFAULT_USER: &str = "nobody";
const DEFAULT_GROUP: &str = "nogroup";

/// A user the workers switch to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerUser {
    pub name: String,
    pub uid: libc::uid_t,
    pub gid: libc::gid_t,
}

/// The workers' user for `config`: `None` when mailproxy was not started as root
/// (there is nothing to drop; the config reader has already warned about `user`).
pub fn worker_user(config: &Config) -> Result<Option<WorkerUser>, String> {
    if !is_root() {
        return Ok(None);
    }
    match &config.user {
        Some((name, group)) => lookup(name, group.as_deref().unwrap_or(name)).map(Some),
        // Systems without Debian's `nogroup` have a `nobody` group instead.
        None => lookup(DEFAULT_USER, DEFAULT_GROUP)
            .or_else(|_| lookup(DEFAULT_USER, DEFAULT_USER))
            .map(Some),
    }
}

/// The explicit `user` only (`master_process off`: nginx's single process keeps root
/// unless told; we drop when told).
pub fn explicit_user(config: &Config) -> Result<Option<WorkerUser>, String> {
    match &config.user {
        Some(_) => worker_user(config),
        None => Ok(None),
    }
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn lookup(user: &str, group: &str) -> Result<WorkerUser, String> {
    let cuser = CString::new(user).map_err(|_| format!("getpwnam(\"{user}\") failed"))?;
    let cgroup = CString::new(group).map_err(|_| format!("getgrnam(\"{group}\") failed"))?;
    // SAFETY: getpwnam/getgrnam return pointers to static storage that we read at once;
    // the master is single-threaded, so nothing else can overwrite it meanwhile.
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
        Ok(WorkerUser {
            name: user.to_string(),
            uid,
            gid: (*gr).gr_gid,
        })
    }
}

impl WorkerUser {
    /// setgid, initgroups, setuid: after this the process cannot get root back. The
    /// messages are nginx's (`ngx_worker_process_init`).
    pub fn become_this(&self) -> Result<(), String> {
        let failed =
            |call: String| format!("{call} failed ({})", os_error(&io::Error::last_os_error()));
        let cname = CString::new(self.name.as_str()).map_err(|_| failed("initgroups()".into()))?;
        // SAFETY: plain credential syscalls on our own process with valid arguments.
        unsafe {
            if libc::setgid(self.gid) == -1 {
                return Err(failed(format!("setgid({})", self.gid)));
            }
            if libc::initgroups(cname.as_ptr(), self.gid) == -1 {
                return Err(failed(format!("initgroups({}, {})", self.name, self.gid)));
            }
            if libc::setuid(self.uid) == -1 {
                return Err(failed(format!("setuid({})", self.uid)));
            }
        }
        Ok(())
    }
}
