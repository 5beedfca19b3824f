//! The POP3 pre-auth dialogue (reference §6) and the POP3 backend login (§10.3).
//!
//! [`Pop3PreAuth`] is nginx's `ngx_mail_pop3_auth_state` as a sans-I/O machine: one
//! command per [`next_action`](PreAuth::next_action) call, replies byte for byte as
//! nginx sends them. The driver rules are IMAP's (see [`super::imap`]): the same
//! session loop serves both.
//!
//! What makes POP3 different from IMAP:
//!
//! - the command buffer is a fixed 128 bytes (there is no `pop3_client_buffer`);
//! - the greeting carries the APOP / CRAM-MD5 salt when either is enabled, so the salt
//!   exists from the start and CRAM-MD5 reuses it;
//! - `USER` moves to a "user" state where only `PASS`, `CAPA`, `QUIT` and `NOOP` work;
//!   **any** invalid command, syntactic or not, goes back to the start state and so
//!   forgets the user (§18.9).
//!
//! # Differences from nginx 1.22.1
//!
//! - A too-long command is logged with only its verb (nginx logs the whole buffer,
//!   which can hold a password).
//! - CRAM-MD5 responses follow the shared rules of [`super::sasl`].
//! - A login or password with CR, LF or NUL is refused with the invalid-command reply
//!   before auth_http ([`super::line_safe`]; nginx sends it on to the backend).
//! - `max_commands` (freenginx 1.25.5): the command past it is refused and closes.

mod backend;
mod parser;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_backend;

pub use backend::Pop3BackendLogin;

use super::core::{delegate_pre_auth_core, CommandLimits, CoreSettings, PreAuthCore};
use super::sasl;
use super::sasl_state::{self, SaslBegin, SaslStep, SaslWait};
use super::{Action, AuthMethod, BackendLogin, PreAuth};
use crate::config::{AuthMethods, Pop3Settings, Starttls};
use crate::secret::Secret;
use parser::{Command, Parsed, Parser};
use std::sync::Arc;

/// nginx's fixed POP3 command buffer (pre-auth lines, and its relay buffer too).
pub const COMMAND_BUFFER: usize = 128;

const GREETING: &[u8] = b"+OK POP3 ready";
const OK: &[u8] = b"+OK\r\n";
const INVALID: &[u8] = b"-ERR invalid command\r\n";
const INTERNAL_ERROR: &[u8] = b"-ERR internal server error\r\n";

/// Which line the dialogue expects next (nginx's `mail_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expecting {
    Command,
    /// After `USER`: `PASS` (or `CAPA`, `QUIT`, `NOOP`).
    Pass,
    Sasl(SaslWait),
}

/// What every POP3 session of one server shares, built once per config generation
/// (nginx builds the same at config time, §6.3) and borrowed by each session.
#[derive(Debug)]
pub struct Pop3Plan {
    starttls: Starttls,
    limits: CommandLimits,
    auth: AuthMethods,
    server_name: String,
    lists: Lists,
}

impl Pop3Plan {
    pub fn new(
        settings: &Pop3Settings,
        starttls: Starttls,
        limits: CommandLimits,
        server_name: &str,
    ) -> Self {
        Pop3Plan {
            starttls,
            limits,
            auth: settings.auth,
            server_name: server_name.to_owned(),
            lists: Lists::new(settings),
        }
    }
}

/// The CAPA and AUTH replies.
#[derive(Debug, Clone)]
struct Lists {
    capability: Vec<u8>,
    starttls: Vec<u8>,
    starttls_only: Vec<u8>,
    auth: Vec<u8>,
}

impl Lists {
    fn new(settings: &Pop3Settings) -> Self {
        const HEADER: &[u8] = b"+OK Capability list follows\r\n";
        let auth = &settings.auth;
        // `pop3_auth plain` implies LOGIN; APOP never appears in these lists.
        let mechanisms: Vec<&str> = [
            (auth.plain, "PLAIN"),
            (auth.plain || auth.login, "LOGIN"),
            (auth.cram_md5, "CRAM-MD5"),
            (auth.external, "EXTERNAL"),
        ]
        .iter()
        .filter(|(enabled, _)| *enabled)
        .map(|&(_, name)| name)
        .collect();

        let mut capability = HEADER.to_vec();
        let mut starttls_only = HEADER.to_vec();
        for name in &settings.capabilities {
            capability.extend_from_slice(format!("{name}\r\n").as_bytes());
            if !name.eq_ignore_ascii_case("USER") {
                starttls_only.extend_from_slice(format!("{name}\r\n").as_bytes());
            }
        }
        capability.extend_from_slice(b"SASL");
        for name in &mechanisms {
            capability.extend_from_slice(format!(" {name}").as_bytes());
        }
        capability.extend_from_slice(b"\r\n");
        let mut starttls = capability.clone();
        starttls.extend_from_slice(b"STLS\r\n.\r\n");
        capability.extend_from_slice(b".\r\n");
        starttls_only.extend_from_slice(b"STLS\r\n.\r\n");

        let mut auth_list = b"+OK methods supported:\r\n".to_vec();
        for name in &mechanisms {
            auth_list.extend_from_slice(format!("{name}\r\n").as_bytes());
        }
        auth_list.extend_from_slice(b".\r\n");
        Lists {
            capability,
            starttls,
            starttls_only,
            auth: auth_list,
        }
    }
}

/// What handling one line produced (nginx's return code plus `s->out`).
enum Outcome {
    Reply(Vec<u8>),
    Invalid,
    Authenticate(AuthMethod),
    StartTls,
}

impl Outcome {
    fn ok() -> Self {
        Outcome::Reply(OK.to_vec())
    }
}

/// The POP3 pre-auth machine; see the module documentation.
pub struct Pop3PreAuth {
    /// The salt in `core` is made at construction when APOP or CRAM-MD5 is enabled
    /// (the greeting shows it).
    core: PreAuthCore,
    parser: Parser,
    expecting: Expecting,
    plan: Arc<Pop3Plan>,
}

impl std::fmt::Debug for Pop3PreAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pop3PreAuth")
            .field("expecting", &self.expecting)
            .field("core", &self.core)
            .finish_non_exhaustive()
    }
}

impl Pop3PreAuth {
    /// `tls`: the connection is already TLS (implicit TLS listener).
    pub fn new(plan: Arc<Pop3Plan>, tls: bool) -> Self {
        let salted = plan.auth.apop || plan.auth.cram_md5;
        let salt = salted.then(|| sasl::make_salt(&plan.server_name));
        Self::with_salt(plan, salt, tls)
    }

    /// As [`new`](Self::new) with a given salt (tests need a fixed one).
    fn with_salt(plan: Arc<Pop3Plan>, salt: Option<Vec<u8>>, tls: bool) -> Self {
        let mut core = PreAuthCore::new(CoreSettings {
            buffer_size: COMMAND_BUFFER,
            limits: plan.limits,
            internal_error: INTERNAL_ERROR,
            starttls: plan.starttls,
            tls,
        });
        core.salt = salt;
        Pop3PreAuth {
            core,
            parser: Parser::new(),
            expecting: Expecting::Command,
            plan,
        }
    }

    fn handle_line(&mut self) -> Outcome {
        let args: Vec<Vec<u8>> = (self.parser.args(&self.core.buffer).into_iter())
            .map(<[u8]>::to_vec)
            .collect();
        let command = self.parser.verb();
        self.core.command = Some(match self.expecting {
            Expecting::Sasl(_) => "SASL response",
            _ => command.map_or("(unknown)", crate::proto::verb_line::Verbs::name),
        });
        match self.expecting {
            Expecting::Command => match command {
                Some(Command::User) => self.user(&args),
                Some(Command::Capa) => Outcome::Reply(self.capabilities(true).to_vec()),
                Some(Command::Apop) => self.apop(&args),
                Some(Command::Auth) => self.auth_command(&args),
                Some(Command::Quit) => self.quit(),
                Some(Command::Noop) => Outcome::ok(),
                Some(Command::Stls) => self.stls(),
                Some(Command::Pass) | None => Outcome::Invalid,
            },
            Expecting::Pass => match command {
                Some(Command::Pass) => self.pass(&args),
                Some(Command::Capa) => Outcome::Reply(self.capabilities(false).to_vec()),
                Some(Command::Quit) => self.quit(),
                Some(Command::Noop) => Outcome::ok(),
                _ => Outcome::Invalid,
            },
            Expecting::Sasl(wait) => {
                let response = args.first().map(Vec::as_slice).unwrap_or_default();
                self.sasl_response(wait, response)
            }
        }
    }

    /// CAPA: STLS is offered only in the start state (`offer_stls`) of a plain connection.
    fn capabilities(&self, offer_stls: bool) -> &[u8] {
        let lists = &self.plan.lists;
        if !offer_stls {
            return &lists.capability;
        }
        (self.core).by_tls_state(&lists.capability, &lists.starttls, &lists.starttls_only)
    }

    fn quit(&mut self) -> Outcome {
        self.core.quit = true;
        Outcome::ok()
    }

    fn user(&mut self, args: &[Vec<u8>]) -> Outcome {
        match args {
            [login] if !self.core.starttls_only() => {
                self.core.client.login = login.clone();
                self.expecting = Expecting::Pass;
                Outcome::ok()
            }
            _ => Outcome::Invalid,
        }
    }

    /// Not checked against `starttls only`: `USER` already was.
    fn pass(&mut self, args: &[Vec<u8>]) -> Outcome {
        match args {
            [password] => {
                self.core.client.password = Some(Secret::new(password.clone()));
                Outcome::Authenticate(AuthMethod::Plain)
            }
            _ => Outcome::Invalid,
        }
    }

    fn apop(&mut self, args: &[Vec<u8>]) -> Outcome {
        match args {
            [login, digest] if !self.core.starttls_only() && self.plan.auth.apop => {
                self.core.client.login = login.clone();
                self.core.client.password = Some(Secret::new(digest.clone()));
                Outcome::Authenticate(AuthMethod::Apop)
            }
            _ => Outcome::Invalid,
        }
    }

    fn stls(&mut self) -> Outcome {
        if !self.core.may_start_tls() {
            return Outcome::Invalid;
        }
        self.core.buffer.reset();
        Outcome::StartTls
    }

    fn auth_command(&mut self, args: &[Vec<u8>]) -> Outcome {
        if self.core.starttls_only() {
            return Outcome::Invalid;
        }
        if args.is_empty() {
            self.parser.reset_line();
            return Outcome::Reply(self.plan.lists.auth.clone());
        }
        let Some(mechanism) = sasl::select_mechanism(args) else {
            return Outcome::Invalid;
        };
        match sasl_state::begin(mechanism, &self.plan.auth) {
            SaslBegin::Invalid => Outcome::Invalid,
            SaslBegin::Prompt(step) => self.sasl_step(step),
            SaslBegin::Respond(wait, response) => self.sasl_response(wait, response),
            SaslBegin::CramMd5Challenge => match &self.core.salt {
                Some(salt) => {
                    let challenge = sasl::cram_md5_challenge(b"+ ", salt);
                    self.expecting = Expecting::Sasl(SaslWait::CramMd5);
                    Outcome::Reply(challenge)
                }
                None => Outcome::Invalid,
            },
        }
    }

    /// A line sent in answer to an `AUTH` challenge (only its first word counts).
    fn sasl_response(&mut self, wait: SaslWait, response: &[u8]) -> Outcome {
        match self.core.sasl_respond(wait, response) {
            Some(step) => self.sasl_step(step),
            None => Outcome::Invalid,
        }
    }

    fn sasl_step(&mut self, step: SaslStep) -> Outcome {
        match step {
            SaslStep::Prompt { next, text } => {
                self.expecting = Expecting::Sasl(next);
                Outcome::Reply(sasl_state::challenge_line(b"+ ", text))
            }
            SaslStep::Authenticate(method) => Outcome::Authenticate(method),
        }
    }

    /// Turns an outcome into the action, then does nginx's end-of-command bookkeeping.
    fn finish(&mut self, outcome: Outcome) -> Action {
        let line = match outcome {
            Outcome::Authenticate(method) => match self.start_authentication(method) {
                Some(action) => return action,
                // A credential with CR, LF or NUL (logged): refused like bad base64.
                None => self.invalid(),
            },
            Outcome::Invalid => self.invalid(),
            Outcome::StartTls => {
                self.parser.clear_args();
                return Action::StartTls(OK.to_vec());
            }
            Outcome::Reply(line) => line,
        };
        self.parser.clear_args();
        self.core.buffer.reset_if_consumed();
        if !self.parser.at_line_start() {
            // Within AUTH: the next line is a bare response.
            self.parser.expect_response_at(self.core.buffer.pos);
        }
        self.core.reply(line, false)
    }

    /// The invalid-command reply; the dialogue starts over (and forgets a `USER`).
    fn invalid(&mut self) -> Vec<u8> {
        self.expecting = Expecting::Command;
        self.parser.reset_line();
        INVALID.to_vec()
    }

    /// `None`: the core refused the credentials (see [`PreAuthCore::authenticate`]).
    fn start_authentication(&mut self, method: AuthMethod) -> Option<Action> {
        self.parser.clear_args();
        self.parser.reset_line();
        self.core.authenticate(method, None)
    }

    /// What the too-long log may show: the verb of a command line, nothing of a SASL
    /// response.
    fn too_long_words(&self) -> usize {
        match self.expecting {
            Expecting::Command | Expecting::Pass => 1,
            Expecting::Sasl(_) => 0,
        }
    }
}

impl PreAuth for Pop3PreAuth {
    fn greeting(&mut self) -> Vec<u8> {
        let mut line = GREETING.to_vec();
        if let Some(salt) = &self.core.salt {
            line.push(b' ');
            line.extend_from_slice(salt);
        } else {
            line.extend_from_slice(b"\r\n");
        }
        line
    }

    delegate_pre_auth_core!();

    fn next_action(&mut self) -> Action {
        let outcome = match self.parser.parse(&mut self.core.buffer) {
            Parsed::Again if !self.core.buffer.is_full() => return Action::NeedInput,
            Parsed::Again => {
                self.core.too_long_command(self.too_long_words());
                Outcome::Invalid
            }
            Parsed::Invalid => {
                self.core.count_error();
                Outcome::Invalid
            }
            // freenginx: the command past `max_commands` is refused and closes.
            Parsed::Command if self.core.count_command() => Outcome::Invalid,
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
        let mut line = b"-ERR ".to_vec();
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
        Box::new(Pop3BackendLogin::new(login, password, buffer_size))
    }
}
