//! Pre-auth dialogues as sans-I/O state machines.
//!
//! A machine owns the client's command buffer (bounded by the protocol's client buffer
//! size, as nginx's is) and never touches a socket. The session driver
//! ([`crate::session`]) feeds it bytes read from the client and carries out the
//! [`Action`]s it returns, one at a time, in order. Replies are therefore never merged
//! or reordered, which is what nginx does too.
//!
//! The backend login sequences ([`BackendLogin`], made by [`PreAuth::backend_login`])
//! are sans-I/O as well.

use crate::secret::Secret;

pub mod buffer;
pub(crate) mod core;
pub use self::core::CommandLimits;
pub mod imap;
pub mod line_safe;
pub mod pop3;
pub mod reply;
pub mod sasl;
pub(crate) mod sasl_state;
pub mod smtp;
#[cfg(test)]
mod testkit;
pub(crate) mod verb_line;

/// The part of a server's plan its pre-auth machines share: capability, CAPA and EHLO
/// lines and the greeting, built once per config generation, not per connection.
#[derive(Debug, Clone)]
pub enum DialoguePlan {
    Imap(std::sync::Arc<imap::ImapPlan>),
    Pop3(std::sync::Arc<pop3::Pop3Plan>),
    Smtp(std::sync::Arc<smtp::SmtpPlan>),
}

impl DialoguePlan {
    pub fn new(server: &crate::config::Server) -> Self {
        use crate::config::Protocol;
        use std::sync::Arc;
        let (starttls, limits, name) = (
            server.starttls,
            CommandLimits::of(server),
            &server.server_name,
        );
        match server.protocol {
            Protocol::Imap => DialoguePlan::Imap(Arc::new(imap::ImapPlan::new(
                &server.imap,
                starttls,
                limits,
                name,
            ))),
            Protocol::Pop3 => DialoguePlan::Pop3(Arc::new(pop3::Pop3Plan::new(
                &server.pop3,
                starttls,
                limits,
                name,
            ))),
            Protocol::Smtp => DialoguePlan::Smtp(Arc::new(smtp::SmtpPlan::new(
                smtp::SmtpOptions::from_server(server),
            ))),
        }
    }
}

/// What the driver must do next for a pre-auth machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Every complete command in the buffer has been handled; read more from the
    /// client (at most [`PreAuth::free_space`] bytes) and call [`PreAuth::receive`].
    NeedInput,
    /// Write these bytes to the client, then call `next_action` again.
    Reply(Vec<u8>),
    /// Write these bytes to the client, then close the connection.
    ReplyAndClose(Vec<u8>),
    /// Write these bytes, then run the TLS handshake. The machine has already
    /// discarded every buffered byte after the STARTTLS line (command injection
    /// protection); after the handshake call [`PreAuth::tls_established`].
    StartTls(Vec<u8>),
    /// The client supplied credentials: query auth_http with them. Bytes the client
    /// pipelined after the login command stay buffered; see [`PreAuth::take_pipelined`].
    /// Credentials with CR, LF or NUL never get here ([`line_safe`]): the machine
    /// answers them with its invalid-command reply instead.
    Authenticate(Credentials),
}

/// How the client authenticated, as sent in `Auth-Method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// IMAP LOGIN, POP3 USER/PASS, SASL PLAIN and LOGIN.
    Plain,
    Apop,
    CramMd5,
    External,
    /// SMTP under `smtp_auth none`.
    None,
}

impl AuthMethod {
    /// The `Auth-Method` header value.
    pub fn name(self) -> &'static str {
        match self {
            AuthMethod::Plain => "plain",
            AuthMethod::Apop => "apop",
            AuthMethod::CramMd5 => "cram-md5",
            AuthMethod::External => "external",
            AuthMethod::None => "none",
        }
    }
}

/// Credentials a client supplied, ready for the auth_http request. A machine hands out
/// only credentials that pass [`line_safe::check_credentials`]: no CR, LF or NUL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub method: AuthMethod,
    pub login: Vec<u8>,
    /// The password, or the APOP / CRAM-MD5 digest.
    pub password: Secret<Vec<u8>>,
    /// The salt / challenge (with its trailing CRLF, as nginx keeps it), if one was made.
    pub salt: Option<Vec<u8>>,
    /// SMTP `smtp_auth none`: the client's HELO argument, MAIL and RCPT command texts.
    pub smtp: Option<SmtpEnvelope>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SmtpEnvelope {
    pub helo: Vec<u8>,
    pub from: Vec<u8>,
    pub to: Vec<u8>,
}

/// The interface the session driver uses for every protocol's pre-auth dialogue.
pub trait PreAuth: Send {
    /// The greeting, sent once after the connection (and implicit TLS) is up.
    fn greeting(&mut self) -> Vec<u8>;
    /// How many more bytes the command buffer can take (0 = full).
    fn free_space(&self) -> usize;
    /// Append bytes read from the client. Never more than `free_space`.
    fn receive(&mut self, data: &[u8]);
    /// Handle the next buffered command, or ask for input.
    fn next_action(&mut self) -> Action;
    /// The TLS handshake after `StartTls` succeeded: continue in the start state.
    fn tls_established(&mut self);
    /// auth_http refused the login with `message` and an `Auth-Wait`, so the client may
    /// retry: return the error line and go back to the start state.
    fn auth_failed(&mut self, message: &[u8], smtp_error_code: Option<&[u8]>) -> Vec<u8>;
    /// The line sent for any internal error (then the connection closes).
    fn internal_error(&self) -> &'static [u8];
    /// Bytes the client pipelined after the command that started authentication; they
    /// go to the backend once it has logged in.
    fn take_pipelined(&mut self) -> Vec<u8>;
    /// A log message for the last invalid command, if nginx logs one (e.g.
    /// `client sent too long command "..."`; all are info level). Taken once; call it
    /// after every `next_action` until it returns `None`.
    fn take_log(&mut self) -> Option<String> {
        None
    }
    /// The verb of the command line just handled, once (`LOGIN`, `AUTH`, `SASL
    /// response`), for the debug log: never an argument, so never a secret.
    fn take_command(&mut self) -> Option<&'static str> {
        None
    }
    /// The login the client supplied so far (empty if none): nginx appends
    /// `, login: "<login>"` to every log line of the session once it is known.
    fn login(&self) -> &[u8] {
        &[]
    }
    /// SMTP: the `Client-Host` value (resolved name, `[UNAVAILABLE]` or
    /// `[TEMPUNAVAIL]`); the other protocols send none.
    fn client_host(&self) -> Option<&str> {
        None
    }
    /// The machine that logs in to the backend with `login`/`password` (as auth_http
    /// returned them), reading replies into a buffer of `buffer_size` (`proxy_buffer`).
    fn backend_login(
        &self,
        login: &[u8],
        password: &[u8],
        buffer_size: usize,
    ) -> Box<dyn BackendLogin>;
}

/// What the driver must do after feeding backend bytes to a [`BackendLogin`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginStep {
    /// The reply is incomplete: read more (at most `free_space` bytes).
    NeedMore,
    /// The reply was accepted: write these bytes to the backend in one go, then read.
    /// May contain the password: never log it.
    Send(Vec<u8>),
    /// Logged in: relay these bytes (the backend's final reply) to the client, then
    /// start relaying. Log `client logged in` (info).
    Done(Vec<u8>),
    /// The backend refused or misbehaved; the session ends.
    Failed(LoginFailure),
}

/// A failed backend login.
///
/// The driver logs `log` and then: if `proxy_pass_error_message` is on and `buffered`
/// is not empty, logs at info level and sends `buffered` to the client before closing;
/// otherwise logs at error level and sends the internal-error line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginFailure {
    /// Everything buffered from the backend (the reply nginx would relay with
    /// `proxy_pass_error_message on`); empty when nginx never relays it (too long line).
    pub buffered: Vec<u8>,
    /// e.g. `upstream sent invalid response: "..."`.
    pub log: String,
}

/// A backend login sequence as a sans-I/O machine. The driver connects, then feeds
/// every chunk read from the backend to [`receive`](Self::receive). EOF, read errors and
/// the `timeout` deadline are the driver's (internal error, §10).
pub trait BackendLogin: Send {
    /// Append bytes read from the backend (never more than `free_space`).
    fn receive(&mut self, data: &[u8]) -> LoginStep;
    /// Room left in the reply buffer.
    fn free_space(&self) -> usize;
    /// nginx's current `while ...` log action, e.g. `reading response from upstream`.
    fn log_action(&self) -> &'static str;
}

/// What a log line may show of a client's command, quoted: the first two words (the
/// IMAP tag and command, or a POP3/SMTP verb and its first argument) and the size.
/// nginx logs the whole buffer, which can hold a LOGIN password; ours never does.
pub fn redacted_command(buffer: &[u8]) -> String {
    redacted_words(buffer, 2)
}

/// [`redacted_command`] showing only the first `words` words of the first line: POP3's
/// second word can be a password (`PASS`), its first a SASL response.
pub fn redacted_words(buffer: &[u8], words: usize) -> String {
    let line = buffer
        .split(|&b| b == b'\r' || b == b'\n')
        .next()
        .unwrap_or(&[]);
    let shown: Vec<&[u8]> = line.split(|&b| b == b' ').take(words).collect();
    let shown = shown.join(&b' ');
    if shown.len() == buffer.len() {
        return format!("\"{}\"", crate::log::escape(&shown));
    }
    format!(
        "\"{}...\" ({} bytes)",
        crate::log::escape(&shown),
        buffer.len()
    )
}

#[cfg(test)]
mod debug_tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_a_password() {
        let creds = Credentials {
            method: AuthMethod::Plain,
            login: b"alice".to_vec(),
            password: "s3cret-pw".into(),
            salt: None,
            smtp: None,
        };
        let shown = format!("{creds:?}");
        assert!(shown.contains("password: <redacted>"), "{shown}");
        assert!(!shown.contains("s3cret-pw"), "{shown}");
        assert!(
            !shown.contains(&format!("{:?}", b"s3cret-pw")[1..20]),
            "{shown}"
        );
        let request = crate::auth::AuthRequest::new(
            creds,
            crate::config::Protocol::Imap,
            1,
            std::net::IpAddr::from([127, 0, 0, 1]),
        );
        assert!(!format!("{request:?}").contains("s3cret-pw"));
    }
}
