//! The SMTP backend login (`ngx_mail_proxy_smtp_handler`, reference §10.5):
//!
//! ```text
//! S: 220 ...
//! C: EHLO <server_name>           (HELO if the client never said EHLO and xclient is off)
//! S: 250 ...
//! C: XCLIENT ADDR=<ip> [LOGIN=<login>] NAME=<host>     (xclient on)
//! S: 220/250 ...
//! C: EHLO|HELO <client's helo>    (xclient on and the client sent one)
//! S: 250 ...
//! then  MAIL / RCPT replay         (smtp_auth none; the RCPT reply goes to the client)
//!  or   AUTH PLAIN <b64>  → 235     (proxy_smtp_auth on; the client gets 235 2.0.0 OK)
//!  or   nothing                     (the client gets 235 2.0.0 OK)
//! ```
//!
//! A multi-line reply is complete when its last line has a space after the code; only
//! the first line's code is checked. Any reply to RCPT is accepted and relayed.
//!
//! Beyond nginx 1.22.1:
//! - XCLIENT `LOGIN=` is xtext-encoded (RFC 3461), as nginx 1.29.2 does; 1.22.1 sent
//!   the login raw, so a space in it broke the command.
//! - With `proxy_smtp_auth on`, a backend whose EHLO reply offers `AUTH` with `LOGIN`
//!   but without `PLAIN` is logged in with `AUTH LOGIN` (nginx always sends `AUTH
//!   PLAIN`, which such a backend refuses; nginx trac #601).

use crate::proto::reply::{Fill, ReplyBuffer};
use crate::proto::sasl::encode_base64;
use crate::proto::{BackendLogin, LoginFailure, LoginStep};

use super::SmtpClient;

const READING: &str = "reading response from upstream";
const AUTH_OK: &[u8] = b"235 2.0.0 OK\r\n";

/// Everything the login sequence needs from the session. Holds the password: no Debug.
pub struct BackendPlan {
    pub server_name: String,
    pub xclient: bool,
    /// `proxy_smtp_auth`.
    pub proxy_auth: bool,
    /// The client ever used EHLO.
    pub esmtp: bool,
    /// The client's HELO/EHLO argument (empty if it sent none).
    pub helo: Vec<u8>,
    /// `smtp_auth none`: the client's MAIL and RCPT command texts.
    pub envelope: Option<(Vec<u8>, Vec<u8>)>,
    pub client: SmtpClient,
    pub login: Vec<u8>,
    /// `None`: nginx's "no password available" (EXTERNAL or `none` without `Auth-Pass`).
    pub password: Option<Vec<u8>>,
}

/// The reply being awaited (nginx's `ngx_smtp_*` states, plus the AUTH LOGIN steps).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Awaiting {
    Greeting,
    HeloXclient,
    HeloFrom,
    HeloAuth,
    Helo,
    XclientHelo,
    XclientFrom,
    XclientAuth,
    Xclient,
    AuthLoginUser,
    AuthLoginPassword,
    AuthDone,
    From,
    To,
    LoggedIn,
}

impl Awaiting {
    /// Whether a reply starting with `code` is the expected one.
    fn accepts(self, code: &[u8]) -> bool {
        match self {
            Awaiting::Greeting => code == b"220",
            Awaiting::HeloXclient
            | Awaiting::HeloFrom
            | Awaiting::HeloAuth
            | Awaiting::Helo
            | Awaiting::From => code == b"250",
            Awaiting::XclientHelo
            | Awaiting::XclientFrom
            | Awaiting::XclientAuth
            | Awaiting::Xclient => code == b"220" || code == b"250",
            Awaiting::AuthLoginUser | Awaiting::AuthLoginPassword => code == b"334",
            Awaiting::AuthDone => code == b"235",
            Awaiting::To => true,
            Awaiting::LoggedIn => false,
        }
    }

    /// The reply answers an EHLO/HELO we sent.
    fn is_helo_reply(self) -> bool {
        matches!(
            self,
            Awaiting::HeloXclient
                | Awaiting::HeloFrom
                | Awaiting::HeloAuth
                | Awaiting::Helo
                | Awaiting::XclientHelo
        )
    }
}

/// The SASL mechanisms the backend's last EHLO reply offered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct BackendAuth {
    plain: bool,
    login: bool,
}

impl BackendAuth {
    /// Reads the `AUTH` (or old `AUTH=`) lines of an EHLO reply; `None` without any.
    fn from_ehlo(reply: &[u8]) -> Option<Self> {
        let mut found: Option<BackendAuth> = None;
        for line in reply.split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let Some(text) = line.get(4..) else { continue };
            let is_auth = text.len() >= 5
                && text[..4].eq_ignore_ascii_case(b"AUTH")
                && (text[4] == b' ' || text[4] == b'=');
            if !is_auth {
                continue;
            }
            let auth = found.get_or_insert_with(BackendAuth::default);
            for mechanism in text[5..].split(|&b| b == b' ') {
                auth.plain |= mechanism.eq_ignore_ascii_case(b"PLAIN");
                auth.login |= mechanism.eq_ignore_ascii_case(b"LOGIN");
            }
        }
        found
    }

    fn wants_login(self) -> bool {
        self.login && !self.plain
    }
}

/// The SMTP login sequence towards one backend.
pub struct SmtpBackendLogin {
    plan: BackendPlan,
    awaiting: Awaiting,
    reply: ReplyBuffer,
    action: &'static str,
    backend_auth: Option<BackendAuth>,
}

impl SmtpBackendLogin {
    /// `capacity` is `proxy_buffer`.
    pub fn new(plan: BackendPlan, capacity: usize) -> Self {
        SmtpBackendLogin {
            plan,
            awaiting: Awaiting::Greeting,
            reply: ReplyBuffer::new(capacity),
            action: "connecting to upstream",
            backend_auth: None,
        }
    }

    /// The state after the HELO steps: replay, AUTH, or done.
    fn after_helo(&self, from: Awaiting, auth: Awaiting, done: Awaiting) -> Awaiting {
        if self.plan.envelope.is_some() {
            from
        } else if self.plan.proxy_auth {
            auth
        } else {
            done
        }
    }

    /// nginx's multi-line rule: wait until the last buffered line is a final one.
    fn multiline_incomplete(&self) -> bool {
        let reply = self.reply.bytes();
        if reply[3] != b'-' {
            return false;
        }
        // Search back for the CRLF before the last line, from 7 bytes before the end.
        let mut m = reply.len() as isize - 7;
        while m > 0 {
            let i = m as usize;
            if reply[i] == b'\r' && reply[i + 1] == b'\n' {
                break;
            }
            m -= 1;
        }
        m <= 0 || reply[m as usize + 5] == b'-'
    }

    /// The command that follows an accepted reply, or the end of the login.
    fn advance(&mut self) -> LoginStep {
        if self.awaiting.is_helo_reply() {
            if let Some(auth) = BackendAuth::from_ehlo(self.reply.bytes()) {
                self.backend_auth = Some(auth);
            }
        }
        let (line, next, action) = match self.awaiting {
            Awaiting::Greeting => self.ehlo(),
            Awaiting::HeloXclient => self.xclient(),
            Awaiting::XclientHelo => {
                let verb = if self.plan.esmtp { "EHLO " } else { "HELO " };
                let line = command(verb.as_bytes(), &self.plan.helo);
                let next = self.after_helo(Awaiting::HeloFrom, Awaiting::HeloAuth, Awaiting::Helo);
                (line, next, "sending client HELO/EHLO to upstream")
            }
            Awaiting::HeloAuth | Awaiting::XclientAuth => return self.auth(),
            Awaiting::AuthLoginUser => (
                command(b"", &encode_base64(&self.plan.login)),
                Awaiting::AuthLoginPassword,
                "sending AUTH to upstream",
            ),
            Awaiting::AuthLoginPassword => {
                let password = self.plan.password.as_deref().unwrap_or_default();
                (
                    command(b"", &encode_base64(password)),
                    Awaiting::AuthDone,
                    "sending AUTH to upstream",
                )
            }
            Awaiting::HeloFrom | Awaiting::XclientFrom => {
                let from = self.plan.envelope.as_ref().map(|e| e.0.as_slice());
                (
                    command(b"", from.unwrap_or_default()),
                    Awaiting::From,
                    "sending MAIL FROM to upstream",
                )
            }
            Awaiting::From => {
                let to = self.plan.envelope.as_ref().map(|e| e.1.as_slice());
                (
                    command(b"", to.unwrap_or_default()),
                    Awaiting::To,
                    "sending RCPT TO to upstream",
                )
            }
            Awaiting::Helo | Awaiting::Xclient | Awaiting::AuthDone => {
                self.awaiting = Awaiting::LoggedIn;
                return LoginStep::Done(AUTH_OK.to_vec());
            }
            Awaiting::To | Awaiting::LoggedIn => {
                self.awaiting = Awaiting::LoggedIn;
                return LoginStep::Done(self.reply.take());
            }
        };
        self.send(line, next, action)
    }

    fn send(&mut self, line: Vec<u8>, next: Awaiting, action: &'static str) -> LoginStep {
        self.awaiting = next;
        self.action = action;
        self.reply.clear();
        LoginStep::Send(line)
    }

    fn ehlo(&self) -> (Vec<u8>, Awaiting, &'static str) {
        let verb = if self.plan.esmtp || self.plan.xclient {
            "EHLO "
        } else {
            "HELO "
        };
        let line = command(verb.as_bytes(), self.plan.server_name.as_bytes());
        let next = if self.plan.xclient {
            Awaiting::HeloXclient
        } else {
            self.after_helo(Awaiting::HeloFrom, Awaiting::HeloAuth, Awaiting::Helo)
        };
        (line, next, "sending HELO/EHLO to upstream")
    }

    fn xclient(&self) -> (Vec<u8>, Awaiting, &'static str) {
        let mut line = b"XCLIENT ADDR=".to_vec();
        if self.plan.client.addr.is_ipv6() {
            line.extend_from_slice(b"IPV6:");
        }
        line.extend_from_slice(self.plan.client.addr.to_string().as_bytes());
        if !self.plan.login.is_empty() && !self.plan.proxy_auth {
            line.extend_from_slice(b" LOGIN=");
            line.extend_from_slice(&xtext(&self.plan.login));
        }
        line.extend_from_slice(b" NAME=");
        line.extend_from_slice(self.plan.client.host.as_bytes());
        line.extend_from_slice(b"\r\n");
        let next = if !self.plan.helo.is_empty() {
            Awaiting::XclientHelo
        } else {
            self.after_helo(
                Awaiting::XclientFrom,
                Awaiting::XclientAuth,
                Awaiting::Xclient,
            )
        };
        (line, next, "sending XCLIENT to upstream")
    }

    /// `AUTH PLAIN <b64(\0 login \0 password)>`, or AUTH LOGIN for a backend that
    /// only offers LOGIN.
    fn auth(&mut self) -> LoginStep {
        let action = "sending AUTH to upstream";
        let Some(password) = &self.plan.password else {
            self.action = action;
            return LoginStep::Failed(LoginFailure {
                buffered: Vec::new(),
                log: "no password available".into(),
            });
        };
        let mut plain = vec![0];
        plain.extend_from_slice(&self.plan.login);
        plain.push(0);
        plain.extend_from_slice(password);
        if self.backend_auth.is_some_and(BackendAuth::wants_login) {
            return self.send(b"AUTH LOGIN\r\n".to_vec(), Awaiting::AuthLoginUser, action);
        }
        let line = command(b"AUTH PLAIN ", &encode_base64(&plain));
        self.send(line, Awaiting::AuthDone, action)
    }
}

impl BackendLogin for SmtpBackendLogin {
    fn receive(&mut self, data: &[u8]) -> LoginStep {
        self.action = READING;
        match self.reply.fill(data) {
            Fill::NeedMore => return LoginStep::NeedMore,
            Fill::TooLong(failure) => return LoginStep::Failed(failure),
            Fill::Complete => {}
        }
        if self.multiline_incomplete() {
            return LoginStep::NeedMore;
        }
        if self.awaiting.accepts(&self.reply.bytes()[..3]) {
            self.advance()
        } else {
            LoginStep::Failed(self.reply.rejected(0))
        }
    }

    fn free_space(&self) -> usize {
        self.reply.free_space()
    }

    fn log_action(&self) -> &'static str {
        self.action
    }
}

/// `prefix` + `arg` + CRLF.
fn command(prefix: &[u8], arg: &[u8]) -> Vec<u8> {
    let mut line = Vec::with_capacity(prefix.len() + arg.len() + 2);
    line.extend_from_slice(prefix);
    line.extend_from_slice(arg);
    line.extend_from_slice(b"\r\n");
    line
}

/// RFC 3461 xtext as nginx 1.29.2 writes it: controls, space, `+`, `=`, DEL and bytes
/// above 0x7F become `+XX` (uppercase hex); everything else goes out as is.
pub fn xtext(raw: &[u8]) -> Vec<u8> {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = Vec::with_capacity(raw.len());
    for &b in raw {
        if b <= b' ' || b == b'+' || b == b'=' || b >= 0x7f {
            out.extend_from_slice(&[b'+', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
        } else {
            out.push(b);
        }
    }
    out
}
