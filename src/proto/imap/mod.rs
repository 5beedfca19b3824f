//! The IMAP pre-auth dialogue (reference §5) and the IMAP backend login (§10.3).
//!
//! [`ImapPreAuth`] is nginx's `ngx_mail_imap_auth_state` as a sans-I/O machine: one
//! command per [`next_action`](PreAuth::next_action) call, replies byte for byte as
//! nginx sends them, every quirk of §18 kept (the line syntax is in `parser.rs`).
//!
//! # Rules for the driver
//!
//! nginx's read handler does, each time it runs: one `recv()` into the free tail of
//! the command buffer (skipped when the buffer is full), then the parsing and reply of
//! **one** command. It runs when the socket becomes readable and again right after a
//! reply has been written completely if unparsed bytes remain. A `recv()` that returns
//! EOF (or an error) closes the connection at once, silently, **even if complete
//! commands are still buffered** (§18.18). The driver reproduces this with:
//!
//! 1. Send [`greeting`](PreAuth::greeting), then loop on `next_action()`.
//! 2. `NeedInput`: read at most `free_space()` bytes (waiting as long as needed).
//!    EOF or error: close silently (nothing is sent, nothing logged but the close).
//!    Otherwise `receive()` the bytes and call `next_action()` again.
//! 3. `Reply`: write it completely. Then, if `free_space() > 0`, try **one
//!    non-blocking read** (e.g. `try_read`, or a read future polled once): EOF or error
//!    → close silently; bytes → `receive()`; would-block → nothing. Then call
//!    `next_action()`. (When nothing is buffered this read is what nginx's next read
//!    event would do anyway; when commands are pipelined it is the `recv()` nginx does
//!    before each one, which is how a client EOF overtakes buffered commands.)
//! 4. `ReplyAndClose`: write, then close. `StartTls`: write, run the handshake (within
//!    the same pre-auth deadline), call `tls_established()`, continue with step 1's
//!    loop without a new greeting; the machine has already dropped every byte after
//!    the STARTTLS line.
//! 5. `Authenticate`: stop reading the client. On success call `take_pipelined()` and
//!    forward those bytes to the backend after its login. On failure with `Auth-Wait`
//!    send `auth_failed()`'s line, then continue as after a `Reply` (step 3): buffered
//!    pipelined commands are processed next. Without `Auth-Wait` send the same line
//!    and close.
//!
//! After every `next_action()` drain [`take_log`](PreAuth::take_log) (info level).
//! The deadline (`timeout`) is armed once at the greeting and never re-armed by
//! commands (§4.6); it is not the machine's business.
//!
//! # Differences from nginx 1.22.1
//!
//! - A login or password with CR, LF or NUL is refused with the invalid-command reply
//!   before auth_http ([`super::line_safe`]; nginx sends it on to the backend).
//! - `max_commands` (freenginx 1.25.5): the command past it is refused and closes.
//! - An IMAP literal length that overflows is an invalid command (nginx 1.29.6).
//! - A stale tag (see `parser.rs`) whose bytes are no longer a tag is not echoed: the
//!   reply is untagged (nginx would send the bytes, CR and LF included).
//! - CRAM-MD5: a response without `user SP digest` is refused and nothing is stored on
//!   error (nginx keeps a stale password, so a stale 32-byte one would pass).
//! - Backend login: one untagged line before the tagged `OK` is tolerated and relayed
//!   (nginx 1.27.3), see [`ImapBackendLogin`].

mod backend;
mod parser;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_backend;

pub use backend::ImapBackendLogin;

use super::core::{delegate_pre_auth_core, CommandLimits, CoreSettings, PreAuthCore};
use super::sasl;
use super::sasl_state::{self, SaslBegin, SaslStep, SaslWait};
use super::{Action, AuthMethod, BackendLogin, PreAuth};
use crate::config::{AuthMethods, ImapSettings, Starttls};
use crate::secret::Secret;
use parser::{Command, Parsed, Parser};
use std::sync::Arc;

const GREETING: &[u8] = b"* OK IMAP4 ready\r\n";
const OK: &[u8] = b"OK completed\r\n";
const LITERAL_NEXT: &[u8] = b"+ OK\r\n";
const BYE: &[u8] = b"* BYE\r\n";
const INVALID: &[u8] = b"BAD invalid command\r\n";
const INTERNAL_ERROR: &[u8] = b"* BAD internal server error\r\n";

/// Which line the dialogue expects next (nginx's `mail_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expecting {
    Command,
    Sasl(SaslWait),
}

/// What every IMAP session of one server shares, built once per config generation
/// (nginx builds the same at config time, §5.3) and borrowed by each session.
#[derive(Debug)]
pub struct ImapPlan {
    client_buffer: usize,
    starttls: Starttls,
    limits: CommandLimits,
    auth: AuthMethods,
    server_name: String,
    capabilities: CapabilityLines,
}

impl ImapPlan {
    pub fn new(
        settings: &ImapSettings,
        starttls: Starttls,
        limits: CommandLimits,
        server_name: &str,
    ) -> Self {
        ImapPlan {
            client_buffer: settings.client_buffer,
            starttls,
            limits,
            auth: settings.auth,
            server_name: server_name.to_owned(),
            capabilities: CapabilityLines::new(settings),
        }
    }
}

/// The three CAPABILITY lines.
#[derive(Debug, Clone)]
struct CapabilityLines {
    plain: Vec<u8>,
    starttls: Vec<u8>,
    starttls_only: Vec<u8>,
}

impl CapabilityLines {
    fn new(settings: &ImapSettings) -> Self {
        let mut base = b"* CAPABILITY".to_vec();
        for capability in &settings.capabilities {
            base.push(b' ');
            base.extend_from_slice(capability.as_bytes());
        }
        let mut starttls_only = base.clone();
        starttls_only.extend_from_slice(b" STARTTLS LOGINDISABLED\r\n");

        let auth = &settings.auth;
        let mechanisms = [
            (auth.plain, "AUTH=PLAIN"),
            (auth.login, "AUTH=LOGIN"),
            (auth.cram_md5, "AUTH=CRAM-MD5"),
            (auth.external, "AUTH=EXTERNAL"),
        ];
        for (_, name) in mechanisms.iter().filter(|(enabled, _)| *enabled) {
            base.push(b' ');
            base.extend_from_slice(name.as_bytes());
        }
        let mut starttls = base.clone();
        starttls.extend_from_slice(b" STARTTLS\r\n");
        base.extend_from_slice(b"\r\n");
        CapabilityLines {
            plain: base,
            starttls,
            starttls_only,
        }
    }
}

/// What handling one line produced: nginx's return code plus the reply pieces.
enum Outcome {
    /// `text` + (tag if `tagged`) + `out`.
    Reply {
        text: Vec<u8>,
        out: Vec<u8>,
        tagged: bool,
    },
    /// The invalid-command reply; untagged only after a bad AUTHENTICATE LOGIN user.
    Invalid {
        tagged: bool,
    },
    Authenticate(AuthMethod),
    StartTls,
}

impl Outcome {
    fn tagged(text: &[u8], out: &[u8]) -> Self {
        Outcome::Reply {
            text: text.to_vec(),
            out: out.to_vec(),
            tagged: true,
        }
    }

    fn untagged(out: &[u8]) -> Self {
        Outcome::Reply {
            text: Vec::new(),
            out: out.to_vec(),
            tagged: false,
        }
    }

    const INVALID: Outcome = Outcome::Invalid { tagged: true };
}

/// The IMAP pre-auth machine; see the module documentation for the driver rules.
pub struct ImapPreAuth {
    /// The CRAM-MD5 salt in `core` is made at the first `AUTHENTICATE CRAM-MD5`, then
    /// reused.
    core: PreAuthCore,
    parser: Parser,
    expecting: Expecting,
    plan: Arc<ImapPlan>,
}

impl std::fmt::Debug for ImapPreAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImapPreAuth")
            .field("expecting", &self.expecting)
            .field("core", &self.core)
            .finish_non_exhaustive()
    }
}

impl ImapPreAuth {
    /// `tls`: the connection is already TLS (implicit TLS listener).
    pub fn new(plan: Arc<ImapPlan>, tls: bool) -> Self {
        ImapPreAuth {
            core: PreAuthCore::new(CoreSettings {
                buffer_size: plan.client_buffer,
                limits: plan.limits,
                internal_error: INTERNAL_ERROR,
                starttls: plan.starttls,
                tls,
            }),
            parser: Parser::new(),
            expecting: Expecting::Command,
            plan,
        }
    }

    fn handle_line(&mut self) -> Outcome {
        self.core.command = Some(match self.expecting {
            Expecting::Sasl(_) => "SASL response",
            Expecting::Command => self.parser.command.name(),
        });
        let args = std::mem::take(&mut self.parser.args);
        if let Expecting::Sasl(wait) = self.expecting {
            let response = args.first().map(Vec::as_slice).unwrap_or_default();
            // nginx quirk: a bad LOGIN username here gets `BAD invalid command` with
            // neither tag nor `* `.
            let tagged_error = wait != SaslWait::LoginUsername;
            return self.sasl_response(wait, response, tagged_error);
        }
        match self.parser.command {
            Command::Login => self.login_command(&args),
            Command::Authenticate => self.authenticate(&args),
            Command::Capability => {
                let lines = &self.plan.capabilities;
                let line =
                    (self.core).by_tls_state(&lines.plain, &lines.starttls, &lines.starttls_only);
                Outcome::tagged(line, OK)
            }
            Command::Logout => {
                self.core.quit = true;
                Outcome::tagged(BYE, OK)
            }
            Command::Noop => Outcome::tagged(b"", OK),
            Command::Starttls if self.core.may_start_tls() => {
                self.core.buffer.reset();
                Outcome::StartTls
            }
            Command::Starttls | Command::None => Outcome::INVALID,
        }
    }

    fn login_command(&mut self, args: &[Vec<u8>]) -> Outcome {
        match args {
            [login, password] if !login.is_empty() && !self.core.starttls_only() => {
                self.core.client.login = login.clone();
                self.core.client.password = Some(Secret::new(password.clone()));
                Outcome::Authenticate(AuthMethod::Plain)
            }
            _ => Outcome::INVALID,
        }
    }

    fn authenticate(&mut self, args: &[Vec<u8>]) -> Outcome {
        if self.core.starttls_only() {
            return Outcome::INVALID;
        }
        let Some(mechanism) = sasl::select_mechanism(args) else {
            return Outcome::INVALID;
        };
        match sasl_state::begin(mechanism, &self.plan.auth) {
            SaslBegin::Invalid => Outcome::INVALID,
            SaslBegin::Prompt(step) => self.sasl_step(step),
            SaslBegin::Respond(wait, response) => self.sasl_response(wait, response, true),
            SaslBegin::CramMd5Challenge => {
                let server_name = &self.plan.server_name;
                let salt = self
                    .core
                    .salt
                    .get_or_insert_with(|| sasl::make_salt(server_name));
                let challenge = sasl::cram_md5_challenge(b"+ ", salt);
                self.expecting = Expecting::Sasl(SaslWait::CramMd5);
                Outcome::untagged(&challenge)
            }
        }
    }

    /// A SASL response (only its first word counts); `tagged_error`: how a refused
    /// one is answered.
    fn sasl_response(&mut self, wait: SaslWait, response: &[u8], tagged_error: bool) -> Outcome {
        match self.core.sasl_respond(wait, response) {
            Some(step) => self.sasl_step(step),
            None => Outcome::Invalid {
                tagged: tagged_error,
            },
        }
    }

    fn sasl_step(&mut self, step: SaslStep) -> Outcome {
        match step {
            SaslStep::Prompt { next, text } => {
                self.expecting = Expecting::Sasl(next);
                Outcome::untagged(&sasl_state::challenge_line(b"+ ", text))
            }
            SaslStep::Authenticate(method) => Outcome::Authenticate(method),
        }
    }

    /// Turns an outcome into the action, then does nginx's end-of-command bookkeeping.
    fn finish(&mut self, outcome: Outcome) -> Action {
        let start_tls = matches!(outcome, Outcome::StartTls);
        let (text, out, tagged) = match outcome {
            Outcome::Authenticate(method) => match self.start_authentication(method) {
                Some(action) => return action,
                // A credential with CR, LF or NUL (logged): refused like bad base64.
                None => self.invalid(true),
            },
            Outcome::Invalid { tagged } => self.invalid(tagged),
            Outcome::StartTls => (Vec::new(), OK.to_vec(), true),
            Outcome::Reply { text, out, tagged } => (text, out, tagged),
        };
        let mut line = text;
        if tagged {
            line.extend_from_slice(self.parser.tag(&self.core.buffer));
        }
        line.extend_from_slice(&out);

        self.parser.args.clear();
        if self.parser.at_line_start() {
            self.core.buffer.reset_if_consumed();
            self.parser.forget_tag();
        } else {
            // Within AUTHENTICATE: keep the tag, the next line is a bare response.
            self.parser.expect_response_at(self.core.buffer.pos);
        }
        self.core.reply(line, start_tls)
    }

    /// The invalid-command reply (text, out, tagged); the dialogue starts over.
    fn invalid(&mut self, tagged: bool) -> (Vec<u8>, Vec<u8>, bool) {
        self.parser.reset_line();
        self.expecting = Expecting::Command;
        (Vec::new(), INVALID.to_vec(), tagged)
    }

    /// `None`: the core refused the credentials (see [`PreAuthCore::authenticate`]).
    fn start_authentication(&mut self, method: AuthMethod) -> Option<Action> {
        self.parser.args.clear();
        self.parser.reset_line();
        self.core.authenticate(method, None)
    }
}

impl PreAuth for ImapPreAuth {
    fn greeting(&mut self) -> Vec<u8> {
        GREETING.to_vec()
    }

    delegate_pre_auth_core!();

    fn next_action(&mut self) -> Action {
        let outcome = match self.parser.parse(&mut self.core.buffer) {
            Parsed::Again if !self.core.buffer.is_full() => return Action::NeedInput,
            Parsed::Again => {
                self.core.too_long_command(2);
                Outcome::INVALID
            }
            Parsed::Invalid { close } => {
                self.core.quit |= close;
                self.core.count_error();
                Outcome::INVALID
            }
            // Mid-command: no bookkeeping, the literal follows.
            Parsed::Literal => return Action::Reply(LITERAL_NEXT.to_vec()),
            // freenginx: the command past `max_commands` is refused, tagged, and closes.
            Parsed::Command if self.core.count_command() => Outcome::INVALID,
            Parsed::Command => self.handle_line(),
        };
        self.finish(outcome)
    }

    fn tls_established(&mut self) {
        self.core.tls_established();
        self.expecting = Expecting::Command;
    }

    fn auth_failed(&mut self, message: &[u8], _smtp_error_code: Option<&[u8]>) -> Vec<u8> {
        self.expecting = Expecting::Command;
        let mut line = self.parser.tag(&self.core.buffer).to_vec();
        line.extend_from_slice(b"NO ");
        line.extend_from_slice(message);
        line.extend_from_slice(b"\r\n");
        line
    }

    fn backend_login(
        &self,
        login: &[u8],
        password: &[u8],
        buffer_size: usize,
    ) -> Box<dyn BackendLogin> {
        let tag = self.parser.tag(&self.core.buffer).to_vec();
        Box::new(ImapBackendLogin::new(tag, login, password, buffer_size))
    }
}
