//! The files mailproxy creates (pid file, error logs): mode `0644` whatever the umask,
//! as nginx's `NGX_FILE_DEFAULT_ACCESS` gives them under its daemon's umask of 0.
//!
//! An operator's umask of 077 would otherwise hide the log from the log shipper, and a
//! umask of 0 (what `daemon()` used to leave) makes them writable by every local user:
//! anyone could then point root's `-s stop` at another process through the pid file,
//! or forge `client login failed` lines for fail2ban. A file that already exists keeps
//! its mode and owner: logrotate's `create` line decides those.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// The mode of every file mailproxy creates.
pub const MODE: u32 = 0o644;

/// Opens `path` for appending, creating it with [`MODE`] if it does not exist.
pub fn open_append(path: &Path) -> io::Result<File> {
    match OpenOptions::new()
        .append(true)
        .create_new(true)
        .mode(MODE)
        .open(path)
    {
        Ok(file) => {
            // The umask may have taken bits away: put them back.
            file.set_permissions(std::fs::Permissions::from_mode(MODE))?;
            Ok(file)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            OpenOptions::new().append(true).open(path)
        }
        Err(e) => Err(e),
    }
}

/// Replaces `path` with `contents` atomically: written beside its final name with
/// [`MODE`] and renamed into place, so that a reader (`-s`, an init script, a test)
/// never sees the file existing but still empty.
pub fn write_atomic(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut partial = path.as_os_str().to_owned();
    partial.push(".new");
    let partial = Path::new(&partial);
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(MODE)
            .open(partial)?;
        file.set_permissions(std::fs::Permissions::from_mode(MODE))?;
        file.write_all(contents)?;
        std::fs::rename(partial, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(partial);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().mode() & 0o777
    }

    /// Runs `f` under `mask`; the umask is process-wide, so the two tests share a lock.
    fn with_umask<T>(mask: libc::mode_t, f: impl FnOnce() -> T) -> T {
        static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _guard = LOCK.lock().unwrap();
        // SAFETY: umask only swaps the process's file-creation mask.
        let old = unsafe { libc::umask(mask) };
        let out = f();
        // SAFETY: as above.
        unsafe { libc::umask(old) };
        out
    }

    #[test]
    fn created_files_are_0644_under_any_umask() {
        let dir = std::env::temp_dir().join(format!("mailproxy-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for mask in [0o000, 0o077, 0o022] {
            let log = dir.join(format!("log-{mask:o}"));
            let pid = dir.join(format!("pid-{mask:o}"));
            with_umask(mask, || {
                open_append(&log).unwrap();
                write_atomic(&pid, b"1\n").unwrap();
            });
            assert_eq!(mode(&log), 0o644, "log under umask {mask:o}");
            assert_eq!(mode(&pid), 0o644, "pid under umask {mask:o}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_existing_file_keeps_its_mode_and_is_appended_to() {
        let dir = std::env::temp_dir().join(format!("mailproxy-files2-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("kept");
        std::fs::write(&log, "a\n").unwrap();
        std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o640)).unwrap();
        with_umask(0, || open_append(&log).unwrap().write_all(b"b\n").unwrap());
        assert_eq!(mode(&log), 0o640);
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "a\nb\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
