//! Reading one backend reply during the login (`ngx_mail_proxy_read_response`,
//! reference §10.2), shared by every protocol's backend machine.
//!
//! A reply is complete once at least 4 bytes are buffered and they end with CRLF; a
//! buffer (`proxy_buffer`) that fills up without that is a "too long response line".
//! Only the beginning of the reply is then checked by the protocol.

use super::LoginFailure;

/// Where the buffered reply stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    NeedMore,
    TooLong,
    Complete,
}

/// nginx's completeness rule for `reply` in a buffer of `capacity` bytes.
pub fn progress(reply: &[u8], capacity: usize) -> Progress {
    if reply.len() < 4 {
        Progress::NeedMore
    } else if reply.ends_with(b"\r\n") {
        Progress::Complete
    } else if reply.len() >= capacity {
        Progress::TooLong
    } else {
        Progress::NeedMore
    }
}

/// `upstream sent too long response line: "..."`; nginx overwrites the last byte with
/// a NUL before logging, and never relays such a reply.
pub fn too_long(reply: &[u8]) -> LoginFailure {
    let shown = until_nul(&reply[..reply.len().saturating_sub(1)]);
    LoginFailure {
        buffered: Vec::new(),
        log: format!(
            "upstream sent too long response line: \"{}\"",
            String::from_utf8_lossy(shown)
        ),
    }
}

/// `upstream sent invalid response: "..."` showing the reply from `from` without its
/// final CRLF; with `proxy_pass_error_message on` the whole buffer is relayed.
pub fn invalid(reply: &[u8], from: usize) -> LoginFailure {
    let end = reply.len().saturating_sub(2).max(from);
    let shown = until_nul(&reply[from..end]);
    LoginFailure {
        buffered: reply.to_vec(),
        log: format!(
            "upstream sent invalid response: \"{}\"",
            String::from_utf8_lossy(shown)
        ),
    }
}

/// nginx logs these replies with `%s`, which stops at the first NUL.
fn until_nul(data: &[u8]) -> &[u8] {
    match data.iter().position(|&b| b == 0) {
        Some(nul) => &data[..nul],
        None => data,
    }
}
