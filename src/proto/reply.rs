//! Reading one backend reply during the login (`ngx_mail_proxy_read_response`,
//! reference §10.2), shared by every protocol's [`BackendLogin`](super::BackendLogin).
//!
//! A reply is complete once at least 4 bytes are buffered and they end with CRLF; a
//! buffer (`proxy_buffer`) that fills up without that is a too-long line. Only the
//! protocol decides whether a complete reply is the expected one.

use super::LoginFailure;

/// What appending backend bytes produced.
pub(crate) enum Fill {
    /// Not complete yet: read more.
    NeedMore,
    /// The buffer is full without a complete reply; nothing is relayed.
    TooLong(LoginFailure),
    /// A complete reply is buffered: check it.
    Complete,
}

/// The backend reply buffer of one login.
pub(crate) struct ReplyBuffer {
    data: Vec<u8>,
    capacity: usize,
}

impl ReplyBuffer {
    /// `capacity` is `proxy_buffer`.
    pub fn new(capacity: usize) -> Self {
        ReplyBuffer {
            data: Vec::with_capacity(capacity),
            capacity,
        }
    }

    pub fn fill(&mut self, bytes: &[u8]) -> Fill {
        let take = bytes.len().min(self.free_space());
        self.data.extend_from_slice(&bytes[..take]);
        if self.data.len() < 4 {
            return Fill::NeedMore;
        }
        if self.data.ends_with(b"\r\n") {
            return Fill::Complete;
        }
        if self.free_space() > 0 {
            return Fill::NeedMore;
        }
        // nginx overwrites the last byte with NUL and logs the rest with `%s`.
        let shown = until_nul(&self.data[..self.data.len() - 1]);
        Fill::TooLong(LoginFailure {
            buffered: Vec::new(),
            log: format!(
                "upstream sent too long response line: \"{}\"",
                String::from_utf8_lossy(shown)
            ),
        })
    }

    pub fn bytes(&self) -> &[u8] {
        &self.data
    }

    /// Empties the buffer after a command is sent: anything else the backend sent
    /// along with the reply is dropped, as nginx does.
    pub fn clear(&mut self) {
        self.data.clear();
    }

    pub fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.data)
    }

    pub fn free_space(&self) -> usize {
        self.capacity.saturating_sub(self.data.len())
    }

    /// The failure for a complete but unexpected reply; the log shows it from `from`
    /// (nginx's `p`) without its final CRLF. Everything buffered is what
    /// `proxy_pass_error_message on` relays.
    pub fn rejected(&self, from: usize) -> LoginFailure {
        let end = self.data.len().saturating_sub(2).max(from);
        let shown = until_nul(&self.data[from..end]);
        LoginFailure {
            buffered: self.data.clone(),
            log: format!(
                "upstream sent invalid response: \"{}\"",
                String::from_utf8_lossy(shown)
            ),
        }
    }
}

/// nginx logs these replies with `%s`, which stops at the first NUL.
fn until_nul(data: &[u8]) -> &[u8] {
    match data.iter().position(|&b| b == 0) {
        Some(nul) => &data[..nul],
        None => data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completion_rule() {
        let mut reply = ReplyBuffer::new(16);
        assert!(matches!(reply.fill(b"+O\r\n"), Fill::Complete));
        reply.clear();
        assert!(
            matches!(reply.fill(b"\r\n"), Fill::NeedMore),
            "under 4 bytes"
        );
        assert!(matches!(reply.fill(b"ab"), Fill::NeedMore), "no final CRLF");
        assert!(matches!(reply.fill(b"\r\n"), Fill::Complete));
        let failure = reply.rejected(0);
        assert_eq!(failure.buffered, b"\r\nab\r\n");
        assert_eq!(failure.log, "upstream sent invalid response: \"\r\nab\"");
    }

    #[test]
    fn too_long_and_nul() {
        let mut reply = ReplyBuffer::new(8);
        match reply.fill(b"-ERR\0abcdefgh") {
            Fill::TooLong(failure) => {
                assert!(failure.buffered.is_empty());
                assert_eq!(
                    failure.log,
                    "upstream sent too long response line: \"-ERR\""
                );
            }
            _ => panic!("a full buffer without CRLF is too long"),
        }
        assert_eq!(reply.free_space(), 0);
    }
}
