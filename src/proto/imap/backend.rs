//! The IMAP backend login (`ngx_mail_proxy_imap_handler` and
//! `ngx_mail_proxy_read_response`, reference §10.2–10.4):
//!
//! ```text
//! S: * OK ...
//! C: <tag>LOGIN {<len(login)>}\r\n
//! S: + ...
//! C: <login> {<len(password)>}\r\n
//! S: + ...
//! C: <password>\r\n
//! S: <tag>OK ...              → relayed to the client as is
//! ```
//!
//! `<tag>` is the client's own tag with its space, so the backend's tagged reply can be
//! relayed unchanged. A reply is complete once at least 4 bytes are buffered and they
//! end with CRLF; only its beginning is checked, and after each command the buffer is
//! emptied (anything else the backend sent along is dropped, as nginx does).
//!
//! Difference from 1.22.1 (follows nginx 1.27.3+): before the tagged `OK`, one untagged
//! `* ...` line (SmarterMail's and Gmail's `* CAPABILITY ...`) is tolerated and relayed
//! to the client together with the tagged reply; 1.22.1 failed the login.

use crate::proto::reply::{Fill, ReplyBuffer};
use crate::proto::{BackendLogin, LoginStep};

const READING: &str = "reading response from upstream";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Greeting,
    LoginCommand,
    User,
    Password,
    LoggedIn,
}

/// Whether the buffered reply is the one this step expects.
enum Verdict {
    Accepted,
    /// Only an untagged line so far: wait for the tagged reply.
    Incomplete,
    /// Rejected; the log shows the reply from this offset (nginx's `p`).
    Rejected {
        from: usize,
    },
}

/// The IMAP login sequence towards one backend. Holds the password: no Debug.
pub struct ImapBackendLogin {
    tag: Vec<u8>,
    login: Vec<u8>,
    password: Vec<u8>,
    step: Step,
    reply: ReplyBuffer,
    action: &'static str,
}

impl ImapBackendLogin {
    /// `tag` with its trailing space; `capacity` is `proxy_buffer`.
    pub fn new(tag: Vec<u8>, login: &[u8], password: &[u8], capacity: usize) -> Self {
        ImapBackendLogin {
            tag,
            login: login.to_vec(),
            password: password.to_vec(),
            step: Step::Greeting,
            reply: ReplyBuffer::new(capacity),
            action: "connecting to upstream",
        }
    }

    fn check(&self) -> Verdict {
        let reply = self.reply.bytes();
        let accepted = match self.step {
            Step::Greeting => reply.starts_with(b"* OK"),
            Step::LoginCommand | Step::User => reply.starts_with(b"+"),
            Step::Password => return self.check_tagged_ok(),
            Step::LoggedIn => false,
        };
        if accepted {
            Verdict::Accepted
        } else {
            Verdict::Rejected { from: 0 }
        }
    }

    fn check_tagged_ok(&self) -> Verdict {
        let reply = self.reply.bytes();
        let mut p = 0;
        if reply.starts_with(b"* ") {
            p = match find_crlf(&reply[2..]) {
                Some(end) => 2 + end + 2,
                None => reply.len(),
            };
            if reply.len() - p < 4 {
                return Verdict::Incomplete;
            }
        }
        let tagged = &reply[p..];
        if !tagged.starts_with(&self.tag) {
            return Verdict::Rejected { from: p };
        }
        if tagged[self.tag.len()..].starts_with(b"OK") {
            Verdict::Accepted
        } else {
            Verdict::Rejected {
                from: p + self.tag.len(),
            }
        }
    }

    /// The command that follows an accepted reply, or the relayed final reply.
    fn advance(&mut self) -> LoginStep {
        let (line, next, action) = match self.step {
            Step::Greeting => {
                let mut line = self.tag.clone();
                line.extend_from_slice(format!("LOGIN {{{}}}\r\n", self.login.len()).as_bytes());
                (
                    line,
                    Step::LoginCommand,
                    "sending LOGIN command to upstream",
                )
            }
            Step::LoginCommand => {
                let mut line = self.login.clone();
                line.extend_from_slice(format!(" {{{}}}\r\n", self.password.len()).as_bytes());
                (line, Step::User, "sending user name to upstream")
            }
            Step::User => {
                let mut line = self.password.clone();
                line.extend_from_slice(b"\r\n");
                (line, Step::Password, "sending password to upstream")
            }
            Step::Password | Step::LoggedIn => {
                self.step = Step::LoggedIn;
                return LoginStep::Done(self.reply.take());
            }
        };
        self.step = next;
        self.action = action;
        self.reply.clear();
        LoginStep::Send(line)
    }
}

impl BackendLogin for ImapBackendLogin {
    fn receive(&mut self, data: &[u8]) -> LoginStep {
        self.action = READING;
        match self.reply.fill(data) {
            Fill::NeedMore => LoginStep::NeedMore,
            Fill::TooLong(failure) => LoginStep::Failed(failure),
            Fill::Complete => match self.check() {
                Verdict::Accepted => self.advance(),
                Verdict::Incomplete => LoginStep::NeedMore,
                Verdict::Rejected { from } => LoginStep::Failed(self.reply.rejected(from)),
            },
        }
    }

    fn free_space(&self) -> usize {
        self.reply.free_space()
    }

    fn log_action(&self) -> &'static str {
        self.action
    }
}

fn find_crlf(data: &[u8]) -> Option<usize> {
    data.windows(2).position(|w| w == b"\r\n")
}
