//! The SASL exchange steps IMAP `AUTHENTICATE`, POP3 `AUTH` and SMTP `AUTH` share
//! (nginx's `ngx_mail_auth_*` calls from each protocol's auth state, reference §8).
//!
//! [`sasl`](super::sasl) decodes; this module decides, the same way for the three
//! protocols, what a chosen mechanism or a decoded response leads to and stores the
//! login and password. Each machine only wraps the result in its own reply syntax
//! (`+ ` or `334 `, tags) and keeps its own quirks.

use std::collections::VecDeque;

use super::sasl::{self, SaslError, SaslStart, PASSWORD_PROMPT, USERNAME_PROMPT};
use super::{AuthMethod, Credentials, SmtpEnvelope};
use crate::config::AuthMethods;
use crate::secret::Secret;

/// Which SASL response a dialogue waits for (the AUTH part of nginx's `mail_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SaslWait {
    LoginUsername,
    LoginPassword,
    Plain,
    CramMd5,
    External,
}

/// Where an accepted SASL step leads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SaslStep {
    /// Send the base64 `text` as a challenge, then wait for `next`.
    Prompt { next: SaslWait, text: &'static [u8] },
    /// Every credential is in: query auth_http.
    Authenticate(AuthMethod),
}

/// What a dialogue does with the mechanism a client chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SaslBegin<'a> {
    /// Unknown or disabled mechanism: the invalid-command reply.
    Invalid,
    /// Prompt for the first response.
    Prompt(SaslStep),
    /// The command carried the first response (SASL-IR): handle it at once.
    Respond(SaslWait, &'a [u8]),
    /// Send the protocol's CRAM-MD5 challenge (its salt is the protocol's business).
    CramMd5Challenge,
}

/// How `mechanism` starts, under the enabled `methods`. LOGIN and PLAIN are always
/// allowed, CRAM-MD5 and an EXTERNAL prompt only when enabled, an EXTERNAL initial
/// response always (as nginx).
pub(crate) fn begin<'a>(mechanism: SaslStart<'a>, methods: &AuthMethods) -> SaslBegin<'a> {
    let prompt = |next, text| SaslBegin::Prompt(SaslStep::Prompt { next, text });
    match mechanism {
        SaslStart::LoginPrompt => prompt(SaslWait::LoginUsername, USERNAME_PROMPT),
        SaslStart::LoginUsername(response) => SaslBegin::Respond(SaslWait::LoginUsername, response),
        SaslStart::PlainPrompt => prompt(SaslWait::Plain, b""),
        SaslStart::PlainResponse(response) => SaslBegin::Respond(SaslWait::Plain, response),
        SaslStart::CramMd5 if methods.cram_md5 => SaslBegin::CramMd5Challenge,
        SaslStart::ExternalPrompt if methods.external => {
            prompt(SaslWait::External, USERNAME_PROMPT)
        }
        SaslStart::CramMd5 | SaslStart::ExternalPrompt => SaslBegin::Invalid,
        SaslStart::ExternalResponse(response) => SaslBegin::Respond(SaslWait::External, response),
    }
}

/// `prefix` + `text` + CRLF: a challenge line (`+ ` for IMAP and POP3, `334 ` for SMTP).
pub(crate) fn challenge_line(prefix: &[u8], text: &[u8]) -> Vec<u8> {
    let mut line = prefix.to_vec();
    line.extend_from_slice(text);
    line.extend_from_slice(b"\r\n");
    line
}

/// The login and password a pre-auth dialogue has collected, by commands or SASL.
#[derive(Debug, Clone, Default)]
pub(crate) struct ClientLogin {
    pub login: Vec<u8>,
    /// nginx tells "no password" (EXTERNAL, SMTP `none`) from an empty one.
    pub password: Option<Secret<Vec<u8>>>,
}

impl ClientLogin {
    /// Decodes the response awaited in `wait` and stores what it carries. On error
    /// nothing is stored; the caller logs [`SaslError::log_message`]. EXTERNAL sets
    /// the login only; the password stays what it was (as in nginx).
    pub fn accept(&mut self, wait: SaslWait, response: &[u8]) -> Result<SaslStep, SaslError> {
        let method = match wait {
            SaslWait::LoginUsername => {
                self.login = sasl::decode_login(response)?;
                return Ok(SaslStep::Prompt {
                    next: SaslWait::LoginPassword,
                    text: PASSWORD_PROMPT,
                });
            }
            SaslWait::LoginPassword => {
                self.password = Some(Secret::new(sasl::decode_login(response)?));
                AuthMethod::Plain
            }
            SaslWait::Plain | SaslWait::CramMd5 => {
                let decoded = if wait == SaslWait::Plain {
                    sasl::decode_plain(response)?
                } else {
                    sasl::decode_cram_md5(response)?
                };
                self.login = decoded.login;
                self.password = Some(decoded.secret);
                if wait == SaslWait::Plain {
                    AuthMethod::Plain
                } else {
                    AuthMethod::CramMd5
                }
            }
            SaslWait::External => {
                self.login = sasl::decode_external(response)?;
                AuthMethod::External
            }
        };
        Ok(SaslStep::Authenticate(method))
    }

    /// [`accept`](Self::accept) for a dialogue: a refused response is logged into
    /// `logs` (nginx logs it at info level) and gives `None`, the invalid-command reply.
    pub fn respond(
        &mut self,
        wait: SaslWait,
        response: &[u8],
        logs: &mut VecDeque<String>,
    ) -> Option<SaslStep> {
        self.accept(wait, response)
            .map_err(|error| logs.push_back(error.log_message()))
            .ok()
    }

    /// What the machine hands to auth_http ("no password" is sent as an empty one).
    pub fn credentials(
        &self,
        method: AuthMethod,
        salt: &Option<Vec<u8>>,
        smtp: Option<SmtpEnvelope>,
    ) -> Credentials {
        Credentials {
            method,
            login: self.login.clone(),
            password: self.password.clone().unwrap_or_default(),
            salt: salt.clone(),
            smtp,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_then_password_then_authenticate() {
        let mut client = ClientLogin::default();
        let step = client.accept(SaslWait::LoginUsername, b"Ym9i");
        let password_next = SaslStep::Prompt {
            next: SaslWait::LoginPassword,
            text: PASSWORD_PROMPT,
        };
        assert_eq!(step, Ok(password_next));
        let step = client.accept(SaslWait::LoginPassword, b"c2VjcmV0");
        assert_eq!(step, Ok(SaslStep::Authenticate(AuthMethod::Plain)));
        assert_eq!(
            (
                client.login.as_slice(),
                client.password.as_ref().map(|p| p.expose().as_slice())
            ),
            (&b"bob"[..], Some(&b"secret"[..]))
        );
        assert!(!format!("{client:?}").contains("secret"));
    }

    #[test]
    fn errors_store_nothing_and_external_keeps_the_password() {
        let mut client = ClientLogin {
            login: b"old".to_vec(),
            password: Some("pw".into()),
        };
        assert!(client.accept(SaslWait::Plain, b"!!").is_err());
        assert_eq!(client.login, b"old");
        let step = client.accept(SaslWait::External, b"bmV3");
        assert_eq!(step, Ok(SaslStep::Authenticate(AuthMethod::External)));
        assert_eq!(
            (
                client.login.as_slice(),
                client.password.as_ref().map(|p| p.expose().as_slice())
            ),
            (&b"new"[..], Some(&b"pw"[..]))
        );
    }

    #[test]
    fn disabled_mechanisms_are_invalid_except_an_external_response() {
        let none = AuthMethods::default();
        assert_eq!(begin(SaslStart::CramMd5, &none), SaslBegin::Invalid);
        assert_eq!(begin(SaslStart::ExternalPrompt, &none), SaslBegin::Invalid);
        assert_eq!(
            begin(SaslStart::ExternalResponse(b"x"), &none),
            SaslBegin::Respond(SaslWait::External, b"x")
        );
        assert_eq!(challenge_line(b"334 ", b""), b"334 \r\n");
    }
}
