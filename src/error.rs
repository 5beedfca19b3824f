//! What every layer's error messages share: nginx's `(errno: strerror)` form of an OS
//! error, as in `connect() to 10.0.0.1:143 failed (111: Connection refused)`.

/// Formats an I/O error as nginx does: `2: No such file or directory`.
pub fn os_error(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => {
            let text = std::io::Error::from_raw_os_error(code).to_string();
            let text = text.split(" (os error").next().unwrap_or(&text).to_string();
            format!("{code}: {text}")
        }
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_like_nginx() {
        let e = std::io::Error::from_raw_os_error(libc::ECONNREFUSED);
        assert_eq!(os_error(&e), "111: Connection refused");
        let other = std::io::Error::other("no errno");
        assert_eq!(os_error(&other), "no errno");
    }
}
