//! The POP3 backend login (`ngx_mail_proxy_pop3_handler`, reference §10.3):
//!
//! ```text
//! S: +OK ...
//! C: USER <login>\r\n
//! S: +OK ...
//! C: PASS <password>\r\n
//! S: +OK ...                  → relayed to the client as is
//! ```
//!
//! Every reply must start with `+OK`; only the beginning of the buffered data is
//! checked, and after each command the buffer is emptied. APOP and CRAM-MD5 clients are
//! logged in the same way, with the plaintext password the auth server returned.

use crate::proto::reply::{Fill, ReplyBuffer};
use crate::proto::{BackendLogin, LoginStep};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Greeting,
    User,
    Password,
    LoggedIn,
}

/// The POP3 login sequence towards one backend. Holds the password: no Debug.
pub struct Pop3BackendLogin {
    login: Vec<u8>,
    password: Vec<u8>,
    step: Step,
    reply: ReplyBuffer,
    action: &'static str,
}

impl Pop3BackendLogin {
    /// `capacity` is `proxy_buffer`.
    pub fn new(login: &[u8], password: &[u8], capacity: usize) -> Self {
        Pop3BackendLogin {
            login: login.to_vec(),
            password: password.to_vec(),
            step: Step::Greeting,
            reply: ReplyBuffer::new(capacity),
            action: "connecting to upstream",
        }
    }

    /// The command that follows an accepted reply, or the relayed final reply.
    fn advance(&mut self) -> LoginStep {
        let (verb, argument, next, action) = match self.step {
            Step::Greeting => (
                "USER ",
                &self.login,
                Step::User,
                "sending user name to upstream",
            ),
            Step::User => (
                "PASS ",
                &self.password,
                Step::Password,
                "sending password to upstream",
            ),
            Step::Password | Step::LoggedIn => {
                self.step = Step::LoggedIn;
                return LoginStep::Done(self.reply.take());
            }
        };
        let mut line = verb.as_bytes().to_vec();
        line.extend_from_slice(argument);
        line.extend_from_slice(b"\r\n");
        self.step = next;
        self.action = action;
        self.reply.clear();
        LoginStep::Send(line)
    }
}

impl BackendLogin for Pop3BackendLogin {
    fn receive(&mut self, data: &[u8]) -> LoginStep {
        self.action = "reading response from upstream";
        match self.reply.fill(data) {
            Fill::NeedMore => LoginStep::NeedMore,
            Fill::TooLong(failure) => LoginStep::Failed(failure),
            Fill::Complete if self.step == Step::LoggedIn => {
                LoginStep::Failed(self.reply.rejected(0))
            }
            Fill::Complete if self.reply.bytes().starts_with(b"+OK") => self.advance(),
            Fill::Complete => LoginStep::Failed(self.reply.rejected(0)),
        }
    }

    fn free_space(&self) -> usize {
        self.reply.free_space()
    }

    fn log_action(&self) -> &'static str {
        self.action
    }
}
