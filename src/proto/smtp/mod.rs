//! The SMTP pre-auth dialogue (reference §7) and the SMTP backend login (§10.5).
//!
//! [`SmtpPreAuth`] is nginx's `ngx_mail_smtp_auth_state` as a sans-I/O machine: one
//! command per [`next_action`](PreAuth::next_action) call, replies byte for byte as
//! nginx sends them. The driver rules are the IMAP machine's (see
//! [`crate::proto::imap`]). What happens before the greeting (client host lookup,
//! `smtp_greeting_delay`) is the session's business: the machine is made afterwards,
//! with the host name it must pass on ([`SmtpClient`]).
//!
//! # Differences from nginx 1.22.1
//!
//! - A login or password with CR, LF or NUL is refused with the invalid-command reply
//!   before auth_http ([`super::line_safe`]; nginx sends it on to the backend).
//! - `max_commands` (freenginx 1.25.5): the command past it is refused and closes.
//! - `MAIL` under `smtp_auth none` forgets the credentials of an earlier failed
//!   `AUTH` (nginx 1.29.1), so a `none` request never carries stale ones.
//! - The `530` refusal of `MAIL` logs a redacted command and leaves the buffer alone;
//!   nginx (at `info` level) rewrites CR/LF in the whole buffer for its log line,
//!   which silently drops every command pipelined after the `MAIL`.
//! - CRAM-MD5: a response without `user SP digest` is refused (see
//!   [`sasl::decode_cram_md5`]).
//! - Backend login: see [`SmtpBackendLogin`] (XCLIENT `LOGIN=` is xtext-encoded; AUTH
//!   LOGIN towards a backend that does not offer PLAIN).

mod backend;
mod parser;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_backend;

pub use backend::{BackendPlan, SmtpBackendLogin};

use std::net::IpAddr;
use std::sync::Arc;

use super::core::{delegate_pre_auth_core, CommandLimits, CoreSettings, PreAuthCore};
use super::sasl;
use super::sasl_state::{self, ClientLogin, SaslBegin, SaslStep, SaslWait};
use super::{Action, AuthMethod, BackendLogin, PreAuth, SmtpEnvelope};
use crate::config::{AuthMethods, Server, SmtpSettings, Starttls};
use parser::{Parsed, Parser, Verb};

const OK: &[u8] = b"250 2.0.0 OK\r\n";
const BYE: &[u8] = b"221 2.0.0 Bye\r\n";
const START_TLS: &[u8] = b"220 2.0.0 Start TLS\r\n";
const INVALID: &[u8] = b"500 5.5.1 Invalid command\r\n";
const INVALID_ARGUMENT: &[u8] = b"501 5.5.4 Invalid argument\r\n";
const AUTH_REQUIRED: &[u8] = b"530 5.7.1 Authentication required\r\n";
const BAD_SEQUENCE: &[u8] = b"503 5.5.1 Bad sequence of commands\r\n";
const INTERNAL_ERROR: &[u8] = b"451 4.3.2 Internal server error\r\n";
/// The reply to a client that talks before a delayed greeting (then close).
pub const INVALID_PIPELINING: &[u8] = b"503 5.5.0 Improper use of SMTP command pipelining\r\n";
/// nginx's error code when auth_http sends no `Auth-Error-Code`.
const DEFAULT_ERROR_CODE: &[u8] = b"535 5.7.0";

/// The client host value when nothing better is known (no resolver, NXDOMAIN, no match).
pub const HOST_UNAVAILABLE: &str = "[UNAVAILABLE]";
/// The client host value after a failed lookup (timeout, server failure, bad name).
pub const HOST_TEMPUNAVAIL: &str = "[TEMPUNAVAIL]";

/// Which line the dialogue expects next (nginx's `mail_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expecting {
    Command,
    Sasl(SaslWait),
}

/// What the machine needs of a server's configuration.
#[derive(Debug, Clone)]
pub struct SmtpOptions {
    pub settings: SmtpSettings,
    pub starttls: Starttls,
    /// `max_errors` and `max_commands`.
    pub limits: CommandLimits,
    pub server_name: String,
    /// `xclient`.
    pub xclient: bool,
    /// `proxy_smtp_auth`.
    pub proxy_auth: bool,
}

impl SmtpOptions {
    pub fn from_server(server: &Server) -> Self {
        SmtpOptions {
            settings: server.smtp.clone(),
            starttls: server.starttls,
            limits: CommandLimits::of(server),
            server_name: server.server_name.clone(),
            xclient: server.proxy.xclient,
            proxy_auth: server.proxy.smtp_auth,
        }
    }
}

/// Who the client is, for XCLIENT and `Client-Host`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpClient {
    /// The client address (after realip substitution).
    pub addr: IpAddr,
    /// The §7.2 host value: a confirmed name, [`HOST_UNAVAILABLE`] or
    /// [`HOST_TEMPUNAVAIL`].
    pub host: String,
}

/// What every SMTP session of one server shares, built once per config generation
/// (nginx builds the EHLO replies at config time, §7.4) and borrowed by each session.
#[derive(Debug)]
pub struct SmtpPlan {
    options: SmtpOptions,
    ehlo: EhloReplies,
    greeting: Vec<u8>,
}

impl SmtpPlan {
    pub fn new(options: SmtpOptions) -> Self {
        SmtpPlan {
            ehlo: EhloReplies::new(&options.server_name, &options.settings),
            greeting: format!("220 {} ESMTP ready\r\n", options.server_name).into_bytes(),
            options,
        }
    }
}

/// The three EHLO replies.
#[derive(Debug, Clone)]
struct EhloReplies {
    plain: Vec<u8>,
    starttls: Vec<u8>,
    starttls_only: Vec<u8>,
}

impl EhloReplies {
    fn new(server_name: &str, settings: &SmtpSettings) -> Self {
        let mut lines: Vec<String> = vec![server_name.to_owned()];
        lines.extend(settings.capabilities.iter().cloned());
        let before_auth = lines.clone();
        let auth = &settings.auth;
        let mechanisms: String = [
            (auth.plain, " PLAIN"),
            (auth.login, " LOGIN"),
            (auth.cram_md5, " CRAM-MD5"),
            (auth.external, " EXTERNAL"),
        ]
        .iter()
        .filter(|(enabled, _)| *enabled)
        .map(|(_, name)| *name)
        .collect();
        if !mechanisms.is_empty() {
            lines.push(format!("AUTH{mechanisms}"));
        }
        let mut with_starttls = lines.clone();
        with_starttls.push("STARTTLS".into());
        let mut only = before_auth;
        only.push("STARTTLS".into());
        EhloReplies {
            plain: multiline(&lines),
            starttls: multiline(&with_starttls),
            starttls_only: multiline(&only),
        }
    }
}

/// `250-a\r\n250-b\r\n250 c\r\n`.
fn multiline(lines: &[String]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let last = i + 1 == lines.len();
        out.extend_from_slice(if last { b"250 " } else { b"250-" });
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// What handling one line produced.
enum Outcome {
    Reply(Vec<u8>),
    /// The invalid-command reply (syntax errors are counted by the caller).
    Invalid,
    Authenticate(AuthMethod),
    StartTls,
}

impl Outcome {
    fn reply(bytes: &[u8]) -> Self {
        Outcome::Reply(bytes.to_vec())
    }
}

/// The client's HELO and envelope, kept for auth_http and the backend replay.
#[derive(Debug, Clone, Default)]
struct Envelope {
    /// The HELO/EHLO argument; empty until the client sends one.
    helo: Vec<u8>,
    /// The client ever used EHLO (never cleared, as in nginx).
    esmtp: bool,
    /// Whole `MAIL` / `RCPT` command texts (`smtp_auth none`).
    from: Vec<u8>,
    to: Vec<u8>,
}

/// The SMTP pre-auth machine; see the module documentation.
pub struct SmtpPreAuth {
    /// The CRAM-MD5 salt in `core` is made at the first `AUTH CRAM-MD5`, then reused.
    core: PreAuthCore,
    parser: Parser,
    expecting: Expecting,
    plan: Arc<SmtpPlan>,
    client: SmtpClient,
    method: AuthMethod,
    envelope: Envelope,
}

impl std::fmt::Debug for SmtpPreAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpPreAuth")
            .field("expecting", &self.expecting)
            .field("core", &self.core)
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

impl SmtpPreAuth {
    /// `tls`: the connection is already TLS (implicit TLS listener).
    pub fn new(plan: Arc<SmtpPlan>, tls: bool, client: SmtpClient) -> Self {
        let options = &plan.options;
        SmtpPreAuth {
            core: PreAuthCore::new(CoreSettings {
                buffer_size: options.settings.client_buffer,
                limits: options.limits,
                internal_error: INTERNAL_ERROR,
                starttls: options.starttls,
                tls,
            }),
            parser: Parser::new(),
            expecting: Expecting::Command,
            plan,
            client,
            method: AuthMethod::Plain,
            envelope: Envelope::default(),
        }
    }

    fn auth_methods(&self) -> AuthMethods {
        self.plan.options.settings.auth
    }

    fn handle_line(&mut self) -> Outcome {
        self.core.command = Some(match self.expecting {
            Expecting::Sasl(_) => "SASL response",
            Expecting::Command => self
                .parser
                .verb()
                .map_or("(unknown)", crate::proto::verb_line::Verbs::name),
        });
        if let Expecting::Sasl(wait) = self.expecting {
            let response = self
                .parser
                .args(&self.core.buffer)
                .first()
                .map(|a| a.to_vec());
            return self.sasl_response(wait, &response.unwrap_or_default());
        }
        match self.parser.verb() {
            Some(Verb::Helo | Verb::Ehlo) => self.helo(),
            Some(Verb::Auth) => self.auth(),
            Some(Verb::Quit) => {
                self.core.quit = true;
                Outcome::reply(BYE)
            }
            Some(Verb::Mail) => self.mail(),
            Some(Verb::Rcpt) => self.rcpt(),
            Some(Verb::Rset) => {
                self.envelope.from.clear();
                self.envelope.to.clear();
                Outcome::reply(OK)
            }
            Some(Verb::Noop) => Outcome::reply(OK),
            Some(Verb::Starttls) if self.core.may_start_tls() => {
                // RFC 3207: forget everything learnt before the handshake.
                self.envelope.helo.clear();
                self.envelope.from.clear();
                self.envelope.to.clear();
                self.core.buffer.reset();
                Outcome::StartTls
            }
            Some(Verb::Starttls | Verb::Vrfy | Verb::Expn | Verb::Help) | None => Outcome::Invalid,
        }
    }

    fn helo(&mut self) -> Outcome {
        let args = self.parser.args(&self.core.buffer);
        let [name] = args.as_slice() else {
            return Outcome::reply(INVALID_ARGUMENT);
        };
        self.envelope.helo = name.to_vec();
        self.envelope.from.clear();
        self.envelope.to.clear();
        if self.parser.verb() == Some(Verb::Helo) {
            return Outcome::Reply(
                format!("250 {}\r\n", self.plan.options.server_name).into_bytes(),
            );
        }
        self.envelope.esmtp = true;
        let ehlo = &self.plan.ehlo;
        let reply = (self.core).by_tls_state(&ehlo.plain, &ehlo.starttls, &ehlo.starttls_only);
        Outcome::reply(reply)
    }

    fn auth(&mut self) -> Outcome {
        if self.core.starttls_only() {
            return Outcome::Invalid;
        }
        let args: Vec<Vec<u8>> = self
            .parser
            .args(&self.core.buffer)
            .iter()
            .map(|a| a.to_vec())
            .collect();
        if args.is_empty() {
            self.parser.reset_line();
            return Outcome::reply(INVALID_ARGUMENT);
        }
        let Some(mechanism) = sasl::select_mechanism(&args) else {
            return Outcome::Invalid;
        };
        match sasl_state::begin(mechanism, &self.auth_methods()) {
            SaslBegin::Invalid => Outcome::Invalid,
            SaslBegin::Prompt(step) => self.sasl_step(step),
            SaslBegin::Respond(wait, response) => self.sasl_response(wait, response),
            SaslBegin::CramMd5Challenge => {
                let server_name = &self.plan.options.server_name;
                let salt = self
                    .core
                    .salt
                    .get_or_insert_with(|| sasl::make_salt(server_name));
                let challenge = sasl::cram_md5_challenge(b"334 ", salt);
                self.expecting = Expecting::Sasl(SaslWait::CramMd5);
                Outcome::Reply(challenge)
            }
        }
    }

    fn mail(&mut self) -> Outcome {
        if !self.auth_methods().none {
            let start = self.parser.command_start();
            let buffer = &self.core.buffer;
            let command = super::redacted_command(&buffer.data[start..buffer.pos]);
            self.core.log(format!("client was rejected: {command}"));
            return Outcome::reply(AUTH_REQUIRED);
        }
        if !self.envelope.from.is_empty() {
            return Outcome::reply(BAD_SEQUENCE);
        }
        let Some(text) = self.parser.command_text(&self.core.buffer) else {
            return Outcome::reply(INVALID_ARGUMENT);
        };
        self.envelope.from = text.to_vec();
        // nginx 1.29.1: credentials of a failed AUTH must not ride along with `none`.
        self.core.client = ClientLogin::default();
        Outcome::reply(OK)
    }

    fn rcpt(&mut self) -> Outcome {
        if self.envelope.from.is_empty() {
            return Outcome::reply(BAD_SEQUENCE);
        }
        let Some(text) = self.parser.command_text(&self.core.buffer) else {
            return Outcome::reply(INVALID_ARGUMENT);
        };
        self.envelope.to = text.to_vec();
        Outcome::Authenticate(AuthMethod::None)
    }

    /// A line sent in answer to an AUTH challenge (only its first word counts).
    fn sasl_response(&mut self, wait: SaslWait, response: &[u8]) -> Outcome {
        match self.core.sasl_respond(wait, response) {
            Some(step) => self.sasl_step(step),
            None => Outcome::Invalid,
        }
    }

    /// `334 <text>\r\n` and wait for the response line, or authenticate.
    fn sasl_step(&mut self, step: SaslStep) -> Outcome {
        match step {
            SaslStep::Prompt { next, text } => {
                self.expecting = Expecting::Sasl(next);
                Outcome::Reply(sasl_state::challenge_line(b"334 ", text))
            }
            SaslStep::Authenticate(method) => Outcome::Authenticate(method),
        }
    }

    /// Turns an outcome into the action, then does nginx's end-of-command bookkeeping.
    fn finish(&mut self, outcome: Outcome) -> Action {
        let (line, start_tls) = match outcome {
            Outcome::Authenticate(method) => match self.start_authentication(method) {
                Some(action) => return action,
                // A credential with CR, LF or NUL (logged): refused like bad base64.
                None => (self.invalid(), false),
            },
            Outcome::Invalid => (self.invalid(), false),
            Outcome::StartTls => (START_TLS.to_vec(), true),
            Outcome::Reply(line) => (line, false),
        };
        self.parser.clear_args();
        self.core.buffer.reset_if_consumed();
        self.parser.expect_response_at(self.core.buffer.pos);
        self.core.reply(line, start_tls)
    }

    /// The invalid-command reply; the dialogue starts over.
    fn invalid(&mut self) -> Vec<u8> {
        self.parser.reset_line();
        self.expecting = Expecting::Command;
        INVALID.to_vec()
    }

    /// `None`: the core refused the credentials (see [`PreAuthCore::authenticate`]).
    fn start_authentication(&mut self, method: AuthMethod) -> Option<Action> {
        self.parser.clear_args();
        self.parser.reset_line();
        let smtp = (method == AuthMethod::None).then(|| SmtpEnvelope {
            helo: self.envelope.helo.clone(),
            from: self.envelope.from.clone(),
            to: self.envelope.to.clone(),
        });
        let action = self.core.authenticate(method, smtp)?;
        self.method = method;
        Some(action)
    }
}

impl PreAuth for SmtpPreAuth {
    fn greeting(&mut self) -> Vec<u8> {
        self.plan.greeting.clone()
    }

    delegate_pre_auth_core!();

    fn next_action(&mut self) -> Action {
        let outcome = match self.parser.parse(&mut self.core.buffer) {
            Parsed::Again if !self.core.buffer.is_full() => return Action::NeedInput,
            Parsed::Again => {
                self.core.too_long_command(2);
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

    fn auth_failed(&mut self, message: &[u8], smtp_error_code: Option<&[u8]>) -> Vec<u8> {
        self.expecting = Expecting::Command;
        self.method = AuthMethod::Plain;
        let mut line = smtp_error_code
            .filter(|code| !code.is_empty())
            .unwrap_or(DEFAULT_ERROR_CODE)
            .to_vec();
        line.push(b' ');
        line.extend_from_slice(message);
        line.extend_from_slice(b"\r\n");
        line
    }

    fn client_host(&self) -> Option<&str> {
        Some(&self.client.host)
    }

    fn backend_login(
        &self,
        login: &[u8],
        password: &[u8],
        buffer_size: usize,
    ) -> Box<dyn BackendLogin> {
        // nginx has no password for EXTERNAL and `none` unless auth_http sent one.
        let password =
            (self.method == AuthMethod::Plain || !password.is_empty()).then(|| password.to_vec());
        let none = self.method == AuthMethod::None;
        let plan = BackendPlan {
            server_name: self.plan.options.server_name.clone(),
            xclient: self.plan.options.xclient,
            proxy_auth: self.plan.options.proxy_auth,
            esmtp: self.envelope.esmtp,
            helo: self.envelope.helo.clone(),
            envelope: none.then(|| (self.envelope.from.clone(), self.envelope.to.clone())),
            client: self.client.clone(),
            login: login.to_vec(),
            password,
        };
        Box::new(SmtpBackendLogin::new(plan, buffer_size))
    }
}
