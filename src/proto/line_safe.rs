//! The one rule against command injection into a backend (issue #11): a value that a
//! backend login writes into a command line never carries a byte that ends or splits
//! that line: CR, LF or NUL.
//!
//! nginx 1.22.1 copies the login and password raw into e.g. POP3's `USER <login>\r\n`,
//! so a SASL PLAIN login of `alice\r\nDELE 1` runs `DELE 1` on the backend, and with a
//! master password from `Auth-Pass` a login of `x\r\nUSER victim` opens another
//! mailbox. mailproxy refuses such values instead, at the two places every value passes
//! before it can reach a backend:
//!
//! - what the client sent, when a pre-auth machine turns it into [`Credentials`]
//!   (`PreAuthCore::authenticate`): refused with the machine's invalid-command reply,
//!   before the auth_http request;
//! - what the auth server sent (`Auth-User`, `Auth-Pass`), when its answer becomes the
//!   backend's login (`AuthResponse::outcome`): refused as a broken answer, before the
//!   backend is contacted.
//!
//! What the proxy drops unread (the PLAIN authorization identity) is not checked: it
//! reaches neither auth_http nor a backend.

use super::Credentials;

/// The bytes that end or split a command line on a backend.
const LINE_BREAKERS: [u8; 3] = [b'\r', b'\n', 0];

/// `value` can go into a backend command line as it is.
pub fn is_line_safe(value: &[u8]) -> bool {
    !value.iter().any(|b| LINE_BREAKERS.contains(b))
}

/// Which of a client's credentials breaks the rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnsafeField {
    Login,
    /// The password, or the APOP / CRAM-MD5 digest.
    Password,
    /// The salt (made from `server_name`) apart from its own trailing CRLF.
    Salt,
    /// SMTP under `smtp_auth none`: the HELO argument or a MAIL / RCPT text, which
    /// the backend login replays (found by the `smtp_preauth` fuzz target: a NUL got
    /// through, as CR and LF cannot end up inside a parsed line).
    Envelope,
}

impl UnsafeField {
    /// The info-level log line; it never shows the value (a password must not be logged).
    pub fn log_message(self) -> &'static str {
        match self {
            UnsafeField::Login => "client sent invalid login: CR, LF or NUL",
            UnsafeField::Password => "client sent invalid password: CR, LF or NUL",
            UnsafeField::Salt => "invalid salt: server_name has CR, LF or NUL",
            UnsafeField::Envelope => "client sent invalid HELO, MAIL or RCPT: CR, LF or NUL",
        }
    }
}

/// Applies the rule to credentials a client supplied. The salt keeps the CRLF that ends
/// it (nginx's form, which `Auth-Salt` relies on); nothing else may have one.
pub fn check_credentials(credentials: &Credentials) -> Result<(), UnsafeField> {
    let salt = credentials.salt.as_deref().unwrap_or_default();
    let salt = salt.strip_suffix(b"\r\n").unwrap_or(salt);
    let envelope = credentials.smtp.as_ref();
    let helo = envelope.map_or(&[][..], |e| &e.helo[..]);
    let from = envelope.map_or(&[][..], |e| &e.from[..]);
    let to = envelope.map_or(&[][..], |e| &e.to[..]);
    let fields = [
        (&credentials.login[..], UnsafeField::Login),
        (credentials.password.expose(), UnsafeField::Password),
        (salt, UnsafeField::Salt),
        (helo, UnsafeField::Envelope),
        (from, UnsafeField::Envelope),
        (to, UnsafeField::Envelope),
    ];
    match fields.into_iter().find(|(value, _)| !is_line_safe(value)) {
        Some((_, field)) => Err(field),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::AuthMethod;

    fn creds(login: &[u8], password: &[u8], salt: Option<&[u8]>) -> Credentials {
        Credentials {
            method: AuthMethod::Plain,
            login: login.to_vec(),
            password: password.into(),
            salt: salt.map(<[u8]>::to_vec),
            smtp: None,
        }
    }

    #[test]
    fn cr_lf_and_nul_are_the_only_line_breakers() {
        for bad in [&b"a\rb"[..], b"a\nb", b"a\0b", b"\r\n", b"x\r"] {
            assert!(!is_line_safe(bad), "{bad:?}");
        }
        let other: Vec<u8> = (1..=255).filter(|b| *b != b'\r' && *b != b'\n').collect();
        assert!(is_line_safe(&other));
        assert!(is_line_safe(b""));
    }

    #[test]
    fn every_credential_field_is_checked() {
        let salt = b"<1.2@mx.test>\r\n";
        assert_eq!(
            check_credentials(&creds(b"alice", b"pw", Some(salt))),
            Ok(())
        );
        assert_eq!(check_credentials(&creds(b"", b"", None)), Ok(()));
        let login = creds(b"alice\r\nDELE 1", b"pw", None);
        assert_eq!(check_credentials(&login), Err(UnsafeField::Login));
        let password = creds(b"alice", b"pw\r\nDELE 1", None);
        assert_eq!(check_credentials(&password), Err(UnsafeField::Password));
        let salt = creds(b"alice", b"pw", Some(b"<1.2@mx\r\nX>\r\n"));
        assert_eq!(check_credentials(&salt), Err(UnsafeField::Salt));
        let bare_salt = creds(b"alice", b"pw", Some(b"<1.2@mx>\n"));
        assert_eq!(check_credentials(&bare_salt), Err(UnsafeField::Salt));
    }
}
