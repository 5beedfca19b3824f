//! The config checks that ask the system, as nginx's do at parse time: `user`
//! looks its user and group up (so `user nobody;` fails on Debian, §19.15).

use std::ffi::CString;

/// Whether the user and group of `user NAME [GROUP]` exist; nginx's message if not.
/// Returns `Ok(false)` when not running as root: nginx then ignores the directive
/// with a warning.
pub fn check_user(name: &str, group: Option<&str>) -> Result<bool, String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(false);
    }
    if !user_exists(name) {
        return Err(format!("getpwnam(\"{name}\") failed"));
    }
    let group = group.unwrap_or(name);
    if !group_exists(group) {
        return Err(format!("getgrnam(\"{group}\") failed"));
    }
    Ok(true)
}

fn user_exists(name: &str) -> bool {
    let Ok(cname) = CString::new(name) else {
        return false;
    };
    let mut buf = vec![0u8; 16 * 1024];
    // SAFETY: the reentrant lookup writes only into `pwd`, `buf` and `found`, all ours
    // and sized as passed.
    unsafe {
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        libc::getpwnam_r(
            cname.as_ptr(),
            &mut pwd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut found,
        );
        !found.is_null()
    }
}

fn group_exists(name: &str) -> bool {
    let Ok(cname) = CString::new(name) else {
        return false;
    };
    let mut buf = vec![0u8; 64 * 1024];
    // SAFETY: as in `user_exists`.
    unsafe {
        let mut grp: libc::group = std::mem::zeroed();
        let mut found: *mut libc::group = std::ptr::null_mut();
        libc::getgrnam_r(
            cname.as_ptr(),
            &mut grp,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut found,
        );
        !found.is_null()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_exists_and_nonsense_does_not() {
        assert!(user_exists("root") && group_exists("root"));
        assert!(!user_exists("no-such-user-xq") && !group_exists("no-such-group-xq"));
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            assert_eq!(
                check_user("root", Some("no-such-group-xq")),
                Err("getgrnam(\"no-such-group-xq\") failed".into())
            );
            assert_eq!(check_user("root", None), Ok(true));
        }
    }
}
