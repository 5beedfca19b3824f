//! The state every pre-auth machine keeps whatever its protocol (reference §4): the
//! bounded command buffer, the info-level log queue, the syntax error count against
//! `max_errors`, the command count against `max_commands`, the "close after this reply"
//! flag, and the credentials gathered so far.
//!
//! IMAP, POP3 and SMTP each embed a [`PreAuthCore`] and keep only what their protocol
//! adds (parser, expected line, capability lists); [`delegate_pre_auth_core!`] writes
//! the [`PreAuth`](super::PreAuth) methods that are nothing but this plumbing.

use std::collections::VecDeque;

use super::buffer::CommandBuffer;
use super::line_safe;
use super::sasl_state::{ClientLogin, SaslStep, SaslWait};
use super::{Action, AuthMethod, SmtpEnvelope};
use crate::config::Starttls;

pub(crate) struct PreAuthCore {
    pub buffer: CommandBuffer,
    /// Syntax errors so far; the one that reaches `max_errors` closes.
    pub errors: u32,
    /// Commands parsed so far (freenginx's `s->commands`); one over `max_commands` closes.
    commands: u32,
    limits: CommandLimits,
    /// Set when the current reply must be followed by a close.
    pub quit: bool,
    /// The login and password (or digest) the client supplied.
    pub client: ClientLogin,
    /// The APOP / CRAM-MD5 salt (with its CRLF), once made.
    pub salt: Option<Vec<u8>>,
    logs: VecDeque<String>,
    /// The verb of the last command line handled (for the debug log); never an
    /// argument. `SASL response` for a line that answers a SASL challenge.
    pub command: Option<&'static str>,
    internal_error: &'static [u8],
    starttls: Starttls,
    /// The connection is TLS (implicit TLS, or after STARTTLS).
    tls: bool,
}

/// `max_errors` and `max_commands` (freenginx 1.25.5) of a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandLimits {
    /// Syntax errors before the connection is closed.
    pub max_errors: u32,
    /// Commands (any line that parses, SASL responses included) allowed before
    /// authentication; the one after the last is refused and closes.
    pub max_commands: u32,
}

impl CommandLimits {
    /// The defaults: `max_errors 5`, `max_commands 1000`.
    pub const DEFAULT: CommandLimits = CommandLimits {
        max_errors: 5,
        max_commands: 1000,
    };

    /// A server's `max_errors` and `max_commands`.
    pub fn of(server: &crate::config::Server) -> Self {
        CommandLimits {
            max_errors: server.max_errors,
            max_commands: server.max_commands,
        }
    }

    /// `max_errors` with the default `max_commands`.
    pub fn errors(max_errors: u32) -> Self {
        CommandLimits {
            max_errors,
            ..Self::DEFAULT
        }
    }
}

/// What a [`PreAuthCore`] is made of: the server's settings that every protocol shares.
pub(crate) struct CoreSettings {
    pub buffer_size: usize,
    pub limits: CommandLimits,
    /// The protocol's line for any internal error.
    pub internal_error: &'static [u8],
    pub starttls: Starttls,
    /// The connection is already TLS (implicit TLS listener).
    pub tls: bool,
}

impl std::fmt::Debug for PreAuthCore {
    /// Never the password, nor the buffer (it can hold one).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreAuthCore")
            .field("tls", &self.tls)
            .field("errors", &self.errors)
            .field("login", &String::from_utf8_lossy(self.login()))
            .finish_non_exhaustive()
    }
}

impl PreAuthCore {
    pub fn new(settings: CoreSettings) -> Self {
        PreAuthCore {
            buffer: CommandBuffer::new(settings.buffer_size),
            errors: 0,
            commands: 0,
            limits: settings.limits,
            quit: false,
            client: ClientLogin::default(),
            salt: None,
            logs: VecDeque::new(),
            command: None,
            internal_error: settings.internal_error,
            starttls: settings.starttls,
            tls: settings.tls,
        }
    }

    /// The STARTTLS handshake succeeded.
    pub fn tls_established(&mut self) {
        self.tls = true;
    }

    /// `starttls only` and not yet TLS: every login command is refused.
    pub fn starttls_only(&self) -> bool {
        !self.tls && self.starttls == Starttls::Only
    }

    /// STARTTLS (STLS) is accepted now.
    pub fn may_start_tls(&self) -> bool {
        !self.tls && self.starttls != Starttls::Off
    }

    /// Which of a capability list's three variants (built at config time) applies:
    /// with STARTTLS offered, with STARTTLS offered and logins hidden, or neither.
    pub fn by_tls_state<'a>(
        &self,
        plain: &'a [u8],
        starttls: &'a [u8],
        starttls_only: &'a [u8],
    ) -> &'a [u8] {
        match (self.tls, self.starttls) {
            (false, Starttls::On) => starttls,
            (false, Starttls::Only) => starttls_only,
            _ => plain,
        }
    }

    /// Queues an info-level log line for the driver ([`take_log`](Self::take_log)).
    pub fn log(&mut self, message: String) {
        self.logs.push_back(message);
    }

    /// Counts a syntax error; the one that reaches `max_errors` closes.
    pub fn count_error(&mut self) {
        self.errors = self.errors.saturating_add(1);
        if self.errors >= self.limits.max_errors {
            self.log("client sent too many invalid commands".into());
            self.quit = true;
        }
    }

    /// Counts a command that parsed (freenginx's `ngx_mail_read_command`: not a syntax
    /// error, a too long line or an IMAP literal announcement). `true` for the one past
    /// `max_commands`: it is logged, gets the invalid-command reply instead of being
    /// handled, and the connection closes after it.
    pub fn count_command(&mut self) -> bool {
        self.commands = self.commands.saturating_add(1);
        if self.commands <= self.limits.max_commands {
            return false;
        }
        self.log("client sent too many commands".into());
        self.quit = true;
        true
    }

    /// The buffer filled up without a complete line: log it, showing only its first
    /// `words` words (see [`super::redacted_words`]), and close after the reply.
    pub fn too_long_command(&mut self, words: usize) {
        let command = super::redacted_words(self.buffer.contents(), words);
        self.log(format!("client sent too long command {command}"));
        self.quit = true;
    }

    /// A SASL response for `wait`; `None` (the invalid-command reply) when refused,
    /// which is logged.
    pub fn sasl_respond(&mut self, wait: SaslWait, response: &[u8]) -> Option<SaslStep> {
        self.client.respond(wait, response, &mut self.logs)
    }

    /// The action for a finished reply: close after it if `quit`, else a STARTTLS
    /// handshake if `start_tls`, else keep going.
    pub fn reply(&self, line: Vec<u8>, start_tls: bool) -> Action {
        if self.quit {
            Action::ReplyAndClose(line)
        } else if start_tls {
            Action::StartTls(line)
        } else {
            Action::Reply(line)
        }
    }

    /// Hands the credentials to auth_http; pipelined bytes stay buffered. The caller
    /// resets its parser to a line start.
    ///
    /// `None` when a credential has a CR, LF or NUL that would split a backend command
    /// line ([`line_safe`]): nothing goes to auth_http, the refusal is logged, the
    /// stored login and password are forgotten (no later command can reuse them), and
    /// the buffer is left alone so the caller can answer with its invalid-command reply,
    /// as for a response that is not base64.
    pub fn authenticate(
        &mut self,
        method: AuthMethod,
        smtp: Option<SmtpEnvelope>,
    ) -> Option<Action> {
        let credentials = self.client.credentials(method, &self.salt, smtp);
        if let Err(field) = line_safe::check_credentials(&credentials) {
            self.log(field.log_message().into());
            self.client = ClientLogin::default();
            return None;
        }
        self.buffer.reset_if_consumed();
        Some(Action::Authenticate(credentials))
    }

    pub fn free_space(&self) -> usize {
        self.buffer.free_space()
    }

    pub fn receive(&mut self, data: &[u8]) {
        self.buffer.append(data);
    }

    pub fn internal_error(&self) -> &'static [u8] {
        self.internal_error
    }

    /// Only for a successful login: the machine is done with these bytes.
    pub fn take_pipelined(&mut self) -> Vec<u8> {
        self.buffer.take_unconsumed()
    }

    pub fn take_log(&mut self) -> Option<String> {
        self.logs.pop_front()
    }

    pub fn login(&self) -> &[u8] {
        &self.client.login
    }
}

/// Inside an `impl PreAuth for ...` of a machine with a `core: PreAuthCore` field: the
/// methods that only forward to the core.
macro_rules! delegate_pre_auth_core {
    () => {
        fn free_space(&self) -> usize {
            self.core.free_space()
        }

        fn receive(&mut self, data: &[u8]) {
            self.core.receive(data)
        }

        fn internal_error(&self) -> &'static [u8] {
            self.core.internal_error()
        }

        fn take_pipelined(&mut self) -> Vec<u8> {
            self.core.take_pipelined()
        }

        fn take_log(&mut self) -> Option<String> {
            self.core.take_log()
        }

        fn login(&self) -> &[u8] {
            self.core.login()
        }

        fn take_command(&mut self) -> Option<&'static str> {
            self.core.command.take()
        }
    };
}
pub(crate) use delegate_pre_auth_core;

#[cfg(test)]
mod tests {
    use super::*;

    fn core(max_errors: u32, starttls: Starttls) -> PreAuthCore {
        PreAuthCore::new(CoreSettings {
            buffer_size: 16,
            limits: CommandLimits::errors(max_errors),
            internal_error: b"-ERR\r\n",
            starttls,
            tls: false,
        })
    }

    #[test]
    fn the_error_that_reaches_max_errors_logs_and_closes() {
        let mut core = core(2, Starttls::Off);
        core.count_error();
        assert_eq!(
            core.reply(b"x\r\n".to_vec(), false),
            Action::Reply(b"x\r\n".to_vec())
        );
        assert_eq!(core.take_log(), None);
        core.count_error();
        assert_eq!(
            core.take_log().as_deref(),
            Some("client sent too many invalid commands")
        );
        assert_eq!(
            core.reply(b"x\r\n".to_vec(), true),
            Action::ReplyAndClose(b"x\r\n".to_vec())
        );
    }

    #[test]
    fn the_command_past_max_commands_logs_and_closes() {
        let mut core = core(5, Starttls::Off);
        core.limits.max_commands = 2;
        assert!(!core.count_command());
        assert!(!core.count_command());
        assert_eq!(core.take_log(), None);
        assert!(!core.quit);
        assert!(core.count_command());
        assert_eq!(
            core.take_log().as_deref(),
            Some("client sent too many commands")
        );
        assert!(core.quit);
    }

    #[test]
    fn too_long_command_shows_only_the_first_words() {
        let mut core = core(5, Starttls::Off);
        core.receive(b"PASS secret and more bytes");
        assert_eq!(core.free_space(), 0);
        core.too_long_command(1);
        let log = "client sent too long command \"PASS...\" (16 bytes)";
        assert_eq!(core.take_log().as_deref(), Some(log));
        assert!(core.quit);
    }

    #[test]
    fn tls_state_picks_the_capability_variant() {
        let mut only = core(5, Starttls::Only);
        assert!(only.starttls_only() && only.may_start_tls());
        assert_eq!(only.by_tls_state(b"p", b"s", b"o"), b"o");
        only.tls_established();
        assert!(!only.starttls_only() && !only.may_start_tls());
        assert_eq!(only.by_tls_state(b"p", b"s", b"o"), b"p");
        assert_eq!(core(5, Starttls::On).by_tls_state(b"p", b"s", b"o"), b"s");
        assert!(!core(5, Starttls::Off).may_start_tls());
    }
}
