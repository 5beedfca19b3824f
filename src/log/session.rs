//! A session's debug lines: `[debug] ... *N <message>` (nginx writes debug lines
//! without the `, client: ...` context). Each helper checks first that some log of the
//! session's chain takes the point, so a session under `info` formats nothing; the
//! message is a `format_args!`, formatted only when it is written.
//!
//! Secrets never reach these lines: the helpers take typed values and show only what
//! an admin needs (a verb, an address, a status, a count), never a password, an
//! `Auth-Pass`, or a SASL payload.

use std::fmt;

use crate::auth::AuthResponse;
use crate::config::{AuthHttp, DebugPoints, Protocol};
use crate::net::ClientStream;
use crate::relay::{Moved, RelayEnd};
use crate::session::SessionLog;

impl SessionLog {
    /// Whether any log of this session takes debug lines of `point`.
    pub fn debug_enabled(&self, point: DebugPoints) -> bool {
        match &self.sink {
            Some(log) => log.debug_enabled(point),
            None => super::debug_enabled(point),
        }
    }

    /// `*N <message>` at debug, for the logs that take `point`.
    pub fn debug(&self, point: DebugPoints, message: fmt::Arguments<'_>) {
        if !self.debug_enabled(point) {
            return;
        }
        let line = format!("*{} {message}", self.id);
        match &self.sink {
            Some(log) => log.write_debug(point, &line),
            None => super::write_debug(point, &line),
        }
    }

    /// A debug line of the mail session (`debug_mail`).
    pub fn debug_mail(&self, message: fmt::Arguments<'_>) {
        self.debug(DebugPoints::MAIL, message);
    }

    /// A debug line about connections and TLS (`debug_event`).
    pub fn debug_event(&self, message: fmt::Arguments<'_>) {
        self.debug(DebugPoints::EVENT, message);
    }

    /// The TLS handshake's result (protocol and cipher) for a stream just upgraded;
    /// hands the stream back.
    pub fn debug_tls(&self, client: ClientStream) -> ClientStream {
        if self.debug_enabled(DebugPoints::EVENT) {
            if let Some(ssl) = client.ssl() {
                let cipher = ssl.current_cipher().map_or("(none)", |c| c.name());
                let protocol = ssl.version_str();
                self.debug_event(format_args!("SSL: {protocol}, cipher: \"{cipher}\""));
            }
        }
        client
    }

    /// The verb of the pre-auth command just handled (never its arguments).
    pub fn debug_command(&self, protocol: Protocol, verb: Option<&'static str>) {
        if let Some(verb) = verb {
            self.debug_mail(format_args!("{} auth command: {verb}", protocol.name()));
        }
    }

    /// The end of the relay, with the bytes moved each way.
    pub fn debug_relay_end(&self, end: &RelayEnd, moved: Moved) {
        self.debug_mail(format_args!(
            "mail proxy relay end ({end:?}): {} bytes client to upstream, {} bytes upstream to client",
            moved.up, moved.down
        ));
    }

    /// The auth_http request line and where it goes (no header: they carry the
    /// password).
    pub fn debug_auth_request(&self, http: &AuthHttp, attempt: u32) {
        if !self.debug_enabled(DebugPoints::MAIL) {
            return;
        }
        let version = if http.keeps_connections() {
            "1.1"
        } else {
            "1.0"
        };
        self.debug_mail(format_args!(
            "mail auth http request: GET {} HTTP/{version} to {}, attempt {attempt}",
            http.uri, http.target
        ));
    }

    /// The parsed auth_http answer: `Auth-Status`, `Auth-Server`/`Auth-Port`,
    /// `Auth-Wait`, `Auth-User` (never `Auth-Pass`).
    pub fn debug_auth_answer<'a>(&self, answer: &'a AuthResponse) -> &'a AuthResponse {
        if !self.debug_enabled(DebugPoints::MAIL) {
            return answer;
        }
        let text = |v: &Option<Vec<u8>>| v.as_deref().map(super::escape);
        let status = match (&answer.failure, answer.wait_status) {
            (Some(failure), _) => format!("\"{}\"", super::escape(failure)),
            (None, true) => "WAIT".to_string(),
            (None, false) => "OK".to_string(),
        };
        let mut line = format!(
            "mail auth http answer from {}: Auth-Status: {status}",
            answer.peer
        );
        if let Some(server) = text(&answer.server) {
            line.push_str(&format!(", Auth-Server: {server}"));
        }
        if let Some(port) = text(&answer.port) {
            line.push_str(&format!(", Auth-Port: {port}"));
        }
        if let Some(wait) = answer.wait {
            line.push_str(&format!(", Auth-Wait: {wait}"));
        }
        if let Some(user) = text(&answer.user) {
            line.push_str(&format!(", Auth-User: \"{user}\""));
        }
        self.debug_mail(format_args!("{line}"));
        answer
    }
}

#[cfg(test)]
mod tests {
    use crate::proto::imap::ImapPreAuth;
    use crate::proto::pop3::Pop3PreAuth;
    use crate::proto::{Action, DialoguePlan, PreAuth};

    /// Feeds `input` and collects the verbs the driver's debug lines would show.
    fn verbs(machine: &mut dyn PreAuth, input: &[u8]) -> Vec<&'static str> {
        machine.receive(input);
        let mut verbs = Vec::new();
        loop {
            let action = machine.next_action();
            verbs.extend(machine.take_command());
            match action {
                Action::NeedInput | Action::Authenticate(_) | Action::ReplyAndClose(_) => {
                    return verbs
                }
                _ => {}
            }
        }
    }

    fn server(protocol: &str) -> crate::config::Server {
        let text = format!(
            "events {{}}\nmail {{ auth_http 127.0.0.1:9000; pop3_auth plain; imap_auth plain login;\n\
             server {{ listen 127.0.0.1:21110; protocol {protocol}; }} }}\n"
        );
        let loaded = crate::config::load_str(&text, std::path::Path::new("/x.conf")).unwrap();
        (*loaded.config.servers[0]).clone()
    }

    /// A pre-auth machine of the one server in a `protocol` config, built from its
    /// plan as a session builds it.
    fn machine(protocol: &str) -> Box<dyn PreAuth> {
        match DialoguePlan::new(&server(protocol)) {
            DialoguePlan::Imap(plan) => Box::new(ImapPreAuth::new(plan, false)),
            DialoguePlan::Pop3(plan) => Box::new(Pop3PreAuth::new(plan, false)),
            DialoguePlan::Smtp(_) => unreachable!("the tests ask for imap and pop3"),
        }
    }

    #[test]
    fn command_verbs_never_show_an_argument() {
        let mut imap = machine("imap");
        assert_eq!(
            verbs(imap.as_mut(), b"a CAPABILITY\r\nb NOOP\r\n"),
            ["CAPABILITY", "NOOP"]
        );
        assert_eq!(
            verbs(imap.as_mut(), b"c AUTHENTICATE LOGIN\r\n"),
            ["AUTHENTICATE"]
        );
        assert_eq!(verbs(imap.as_mut(), b"YWxpY2U=\r\n"), ["SASL response"]);
        assert_eq!(verbs(imap.as_mut(), b"c2VjcmV0\r\n"), ["SASL response"]);
        let mut imap = machine("imap");
        assert_eq!(verbs(imap.as_mut(), b"a LOGIN alice s3cret\r\n"), ["LOGIN"]);

        let mut pop3 = machine("pop3");
        assert_eq!(
            verbs(pop3.as_mut(), b"CAPA\r\nUSER alice\r\n"),
            ["CAPA", "USER"]
        );
        assert_eq!(verbs(pop3.as_mut(), b"PASS s3cret\r\n"), ["PASS"]);
        let mut pop3 = machine("pop3");
        assert_eq!(verbs(pop3.as_mut(), b"AUTH PLAIN\r\n"), ["AUTH"]);
        assert_eq!(
            verbs(pop3.as_mut(), b"AGFsaWNlAHMzY3JldA==\r\n"),
            ["SASL response"]
        );
    }
}
