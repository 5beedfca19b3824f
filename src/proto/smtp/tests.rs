//! SMTP pre-auth transcripts (reference §7, §12.3, §17, §18), exact bytes, no sockets.
//! Backend login transcripts are in `tests_backend.rs`.

use super::*;
use crate::proto::sasl::encode_base64;
use crate::proto::testkit::{Client, End};
use crate::proto::Credentials;
use std::sync::Arc;

/// The scripted client of [`crate::proto::testkit`], with string transcripts.
struct Smtp {
    client: Client<SmtpPreAuth>,
}

pub(super) fn options() -> SmtpOptions {
    SmtpOptions {
        settings: SmtpSettings {
            client_buffer: 4096,
            greeting_delay: std::time::Duration::ZERO,
            capabilities: Vec::new(),
            auth: AuthMethods {
                plain: true,
                login: true,
                ..AuthMethods::default()
            },
        },
        starttls: Starttls::Off,
        limits: CommandLimits::DEFAULT,
        server_name: "mx.test".into(),
        xclient: true,
        proxy_auth: false,
    }
}

pub(super) fn client() -> SmtpClient {
    SmtpClient {
        addr: "127.0.0.1".parse().unwrap(),
        host: HOST_UNAVAILABLE.into(),
    }
}

fn auth(plain: bool, login: bool, cram_md5: bool, external: bool, none: bool) -> AuthMethods {
    AuthMethods {
        plain,
        login,
        cram_md5,
        external,
        none,
        ..AuthMethods::default()
    }
}

impl Smtp {
    fn new(options: SmtpOptions) -> Self {
        Smtp {
            client: Client::new(SmtpPreAuth::new(
                Arc::new(SmtpPlan::new(options)),
                false,
                client(),
            )),
        }
    }

    /// Sends `input`, returns everything written back (concatenated) and how it ended.
    fn send(&mut self, input: &[u8]) -> (String, End) {
        let (out, end) = self.client.send(input);
        (lossy(&out), end)
    }

    /// Sends `input` and expects exactly `reply` with the dialogue going on.
    fn expect(&mut self, input: &str, reply: &str) {
        assert_eq!(
            self.send(input.as_bytes()),
            (reply.to_string(), End::NeedInput),
            "after {input:?}"
        );
    }

    fn credentials(&mut self, input: &str) -> Credentials {
        match self.send(input.as_bytes()) {
            (out, End::Auth(creds)) if out.is_empty() => creds,
            other => panic!("expected authentication after {input:?}, got {other:?}"),
        }
    }
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

const INVALID_TEXT: &str = "500 5.5.1 Invalid command\r\n";

#[test]
fn greeting_and_default_transcript() {
    let mut s = Smtp::new(options());
    assert_eq!(s.client.machine.greeting(), b"220 mx.test ESMTP ready\r\n");
    s.expect(
        "EHLO client.example\r\n",
        "250-mx.test\r\n250 AUTH PLAIN LOGIN\r\n",
    );
    s.expect(
        "MAIL FROM:<a@b>\r\n",
        "530 5.7.1 Authentication required\r\n",
    );
    assert_eq!(
        s.client.machine.take_log().unwrap(),
        "client was rejected: \"MAIL FROM:<a@b>...\" (17 bytes)"
    );
    s.expect(
        "RCPT TO:<c@d>\r\n",
        "503 5.5.1 Bad sequence of commands\r\n",
    );
    s.expect("DATA\r\n", INVALID_TEXT);
    s.expect("AUTH PLAIN\r\n", "334 \r\n");
    let creds = s.credentials("AGFsaWNlAHNlY3JldA==\r\n");
    assert_eq!(creds.method, AuthMethod::Plain);
    assert_eq!(
        (creds.login.as_slice(), creds.password.expose().as_slice()),
        (&b"alice"[..], &b"secret"[..])
    );
    assert_eq!(creds.smtp, None);
}

#[test]
fn helo_and_ehlo_replies() {
    let mut s = Smtp::new(options());
    s.expect("HELO x\r\n", "250 mx.test\r\n");
    s.expect("HELO\r\n", "501 5.5.4 Invalid argument\r\n");
    s.expect("EHLO a b\r\n", "501 5.5.4 Invalid argument\r\n");
    let mut o = options();
    o.settings.auth = auth(false, false, false, false, true);
    Smtp::new(o).expect("ehlo x\r\n", "250 mx.test\r\n");
    let mut o = options();
    o.settings.capabilities = vec!["PIPELINING".into(), "SIZE 100".into()];
    o.settings.auth = auth(true, false, true, false, true);
    o.starttls = Starttls::On;
    let mut s = Smtp::new(o.clone());
    s.expect(
        "EHLO x\r\n",
        "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 100\r\n250-AUTH PLAIN CRAM-MD5\r\n250 STARTTLS\r\n",
    );
    assert_eq!(
        s.send(b"STARTTLS\r\nNOOP\r\n"),
        ("220 2.0.0 Start TLS\r\n".into(), End::StartTls)
    );
    s.client.machine.tls_established();
    s.expect("NOOP\r\n", "250 2.0.0 OK\r\n");
    s.expect(
        "EHLO x\r\n",
        "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 100\r\n250 AUTH PLAIN CRAM-MD5\r\n",
    );
    s.expect("STARTTLS\r\n", INVALID_TEXT);
    o.settings.capabilities = vec!["SIZE 1000".into(), "8BITMIME".into()];
    o.settings.auth = auth(false, false, false, false, true);
    o.starttls = Starttls::Only;
    Smtp::new(o).expect(
        "EHLO x\r\n",
        "250-mx.test\r\n250-SIZE 1000\r\n250-8BITMIME\r\n250 STARTTLS\r\n",
    );
    let mut o = options();
    o.starttls = Starttls::Only;
    let mut s = Smtp::new(o);
    s.expect("EHLO x\r\n", "250-mx.test\r\n250 STARTTLS\r\n");
    s.expect("AUTH PLAIN\r\n", INVALID_TEXT);
}

#[test]
fn simple_commands_and_errors() {
    let mut s = Smtp::new(options());
    s.expect("NOOP\r\nRSET\r\n", "250 2.0.0 OK\r\n250 2.0.0 OK\r\n");
    s.expect("VRFY x\r\nEXPN x\r\nHELP\r\n", &INVALID_TEXT.repeat(3));
    s.expect("STARTTLS\r\n", INVALID_TEXT);
    s.expect("AUTH\r\n", "501 5.5.4 Invalid argument\r\n");
    s.expect("AUTH DIGEST-MD5\r\n", INVALID_TEXT);
    s.expect("AUTH CRAM-MD5\r\n", INVALID_TEXT);
    s.expect("AUTH EXTERNAL\r\n", INVALID_TEXT);
    // None of those counted; five syntax errors close.
    s.expect("DATA\r\nBDAT 1\r\n\r\n", &INVALID_TEXT.repeat(3));
    s.expect("XCLIENT A=b\r\n", INVALID_TEXT);
    assert_eq!(
        s.send(b"ETRN\r\nNOOP\r\n"),
        (INVALID_TEXT.into(), End::Closed)
    );
    let mut s = Smtp::new(options());
    assert_eq!(
        s.send(b"QUIT\r\n"),
        ("221 2.0.0 Bye\r\n".into(), End::Closed)
    );
}

#[test]
fn too_long_command_closes() {
    let mut o = options();
    o.settings.client_buffer = 16;
    let mut s = Smtp::new(o);
    assert_eq!(
        s.send(b"NOOP 12345678901"),
        (INVALID_TEXT.into(), End::Closed)
    );
    assert!(s
        .client
        .machine
        .take_log()
        .unwrap()
        .starts_with("client sent too long command"));
}

#[test]
fn sasl_mechanisms() {
    let mut o = options();
    o.settings.auth = auth(true, true, true, true, false);
    let mut s = Smtp::new(o);
    s.expect("AUTH LOGIN\r\n", "334 VXNlcm5hbWU6\r\n");
    s.expect("Ym9i\r\n", "334 UGFzc3dvcmQ6\r\n");
    let creds = s.credentials("\r\n");
    assert_eq!(
        (creds.login.as_slice(), creds.password.expose().as_slice()),
        (&b"bob"[..], &b""[..])
    );
    s.client.machine.auth_failed(b"x", None);
    s.expect("AUTH LOGIN Ym9i\r\n", "334 UGFzc3dvcmQ6\r\n");
    s.expect("!!\r\n", INVALID_TEXT);
    assert_eq!(
        s.client.machine.take_log().unwrap(),
        "client sent invalid base64 encoding in AUTH LOGIN command"
    );
    s.expect("NOOP\r\n", "250 2.0.0 OK\r\n");
    let (out, end) = s.send(b"AUTH CRAM-MD5\r\n");
    assert!(out.starts_with("334 PD") && out.ends_with("\r\n"), "{out}");
    assert_eq!(end, End::NeedInput);
    let digest = encode_base64(b"carol 0123456789abcdef0123456789abcdef");
    let creds = s.credentials(&format!("{}\r\n", lossy(&digest)));
    assert_eq!(creds.method, AuthMethod::CramMd5);
    assert!(creds.salt.as_ref().unwrap().ends_with(b"@mx.test>\r\n"));
    s.client.machine.auth_failed(b"x", None);
    s.expect("AUTH EXTERNAL\r\n", "334 VXNlcm5hbWU6\r\n");
    let creds = s.credentials("ZGF2ZQ==\r\n");
    assert_eq!(
        (creds.method, creds.login.as_slice()),
        (AuthMethod::External, &b"dave"[..])
    );
    s.client.machine.auth_failed(b"x", None);
    let creds = s.credentials("AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n");
    assert_eq!(creds.login, b"alice");
    s.client.machine.auth_failed(b"x", None);
    s.expect("AUTH PLAIN\r\n", "334 \r\n");
    s.expect("*\r\n", INVALID_TEXT);
    s.expect("NOOP\r\n", "250 2.0.0 OK\r\n");
}

#[test]
fn auth_none_envelope() {
    let mut o = options();
    o.settings.auth = auth(false, false, false, false, true);
    let mut s = Smtp::new(o);
    s.expect("EHLO client.example\r\n", "250 mx.test\r\n");
    s.expect(
        "RCPT TO:<c@d>\r\n",
        "503 5.5.1 Bad sequence of commands\r\n",
    );
    s.expect("MAIL\r\n", "501 5.5.4 Invalid argument\r\n");
    s.expect("MAIL FROM:<a@b>  SIZE=10  \r\n", "250 2.0.0 OK\r\n");
    s.expect(
        "MAIL FROM:<x@y>\r\n",
        "503 5.5.1 Bad sequence of commands\r\n",
    );
    s.expect("RCPT\r\n", "501 5.5.4 Invalid argument\r\n");
    let creds = s.credentials("RCPT TO:<c@d> NOTIFY=NEVER\r\n");
    assert_eq!(creds.method, AuthMethod::None);
    assert_eq!(
        creds.smtp.unwrap(),
        SmtpEnvelope {
            helo: b"client.example".to_vec(),
            from: b"MAIL FROM:<a@b>  SIZE=10".to_vec(),
            to: b"RCPT TO:<c@d> NOTIFY=NEVER".to_vec(),
        }
    );
    // A refusal with Auth-Wait keeps HELO and MAIL: another RCPT tries again.
    assert_eq!(
        s.client.machine.auth_failed(b"Go away", Some(b"550 5.7.1")),
        b"550 5.7.1 Go away\r\n"
    );
    let creds = s.credentials("RCPT TO:<e@f>\r\n");
    assert_eq!(creds.smtp.unwrap().to, b"RCPT TO:<e@f>");
    s.client.machine.auth_failed(b"No", None);
    s.expect("RSET\r\n", "250 2.0.0 OK\r\n");
    s.expect(
        "RCPT TO:<c@d>\r\n",
        "503 5.5.1 Bad sequence of commands\r\n",
    );
}

#[test]
fn none_forgets_a_failed_auth_and_works_under_starttls_only() {
    let mut o = options();
    o.settings.auth = auth(true, true, false, false, true);
    o.starttls = Starttls::Only;
    let mut s = Smtp::new(o);
    s.expect("MAIL FROM:<a@b>\r\n", "250 2.0.0 OK\r\n");
    let creds = s.credentials("RCPT TO:<c@d>\r\n");
    assert_eq!((creds.login.len(), creds.password.expose().len()), (0, 0));
    assert_eq!(creds.smtp.unwrap().helo, b"");
}

#[test]
fn auth_failure_lines() {
    let mut s = Smtp::new(options());
    assert_eq!(
        s.client
            .machine
            .auth_failed(b"Invalid login or password", None),
        b"535 5.7.0 Invalid login or password\r\n"
    );
    assert_eq!(
        s.client.machine.internal_error(),
        b"451 4.3.2 Internal server error\r\n"
    );
}

#[test]
fn pipelined_bytes_after_auth_are_kept() {
    let mut s = Smtp::new(options());
    let creds = s.credentials("AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\nMAIL FROM:<a@b>\r\n");
    assert_eq!(creds.login, b"alice");
    assert_eq!(s.client.machine.take_pipelined(), b"MAIL FROM:<a@b>\r\n");
    assert_eq!(s.client.machine.client_host(), Some(HOST_UNAVAILABLE));
}

#[test]
fn starttls_forgets_helo_and_envelope() {
    let mut o = options();
    o.settings.auth = auth(false, false, false, false, true);
    o.starttls = Starttls::On;
    let mut s = Smtp::new(o);
    s.expect("EHLO a\r\n", "250-mx.test\r\n250 STARTTLS\r\n");
    s.expect("MAIL FROM:<a@b>\r\n", "250 2.0.0 OK\r\n");
    assert_eq!(s.send(b"STARTTLS\r\n").1, End::StartTls);
    s.client.machine.tls_established();
    s.expect(
        "RCPT TO:<c@d>\r\n",
        "503 5.5.1 Bad sequence of commands\r\n",
    );
    s.expect("MAIL FROM:<a@b>\r\n", "250 2.0.0 OK\r\n");
    let creds = s.credentials("RCPT TO:<c@d>\r\n");
    assert_eq!(creds.smtp.unwrap().helo, b"");
}

/// `AUTH <mechanism> <base64 of decoded>` + CRLF, or the bare response line.
fn sasl(prefix: &str, decoded: &[u8]) -> String {
    format!("{prefix}{}\r\n", lossy(&encode_base64(decoded)))
}

/// Issue #11: a login or password with CR, LF or NUL never goes to auth_http (nor to
/// the backend's AUTH or XCLIENT): the invalid-command reply a bad SASL response gets,
/// one info log line, and pipelined commands are still answered. `expect` fails if the
/// machine asks to authenticate.
#[test]
fn sasl_logins_with_cr_lf_or_nul_are_refused() {
    const LOGIN_REFUSED: &str = "client sent invalid login: CR, LF or NUL";
    const PASSWORD_REFUSED: &str = "client sent invalid password: CR, LF or NUL";
    let mut s = Smtp::new(options());
    let attack = sasl("AUTH PLAIN ", b"\0alice\r\nRCPT TO:<x@y>\0pw");
    s.expect(
        &format!("{attack}NOOP\r\n"),
        &format!("{INVALID_TEXT}250 2.0.0 OK\r\n"),
    );
    assert_eq!(s.client.machine.take_log().as_deref(), Some(LOGIN_REFUSED));
    s.expect("AUTH PLAIN\r\n", "334 \r\n");
    s.expect(&sasl("", b"\0alice\0pw\r\nQUIT"), INVALID_TEXT);
    assert_eq!(
        s.client.machine.take_log().as_deref(),
        Some(PASSWORD_REFUSED)
    );
    s.expect("AUTH LOGIN\r\n", "334 VXNlcm5hbWU6\r\n");
    s.expect(&sasl("", b"al\0ice"), "334 UGFzc3dvcmQ6\r\n");
    s.expect(&sasl("", b"pw"), INVALID_TEXT);
    assert_eq!(s.client.machine.take_log().as_deref(), Some(LOGIN_REFUSED));
    s.expect(&sasl("AUTH LOGIN ", b"alice"), "334 UGFzc3dvcmQ6\r\n");
    s.expect(&sasl("", b"pw\r"), INVALID_TEXT);
    assert_eq!(
        s.client.machine.take_log().as_deref(),
        Some(PASSWORD_REFUSED)
    );
    assert_eq!(s.client.machine.take_log(), None);
    let creds = s.credentials(&sasl("AUTH PLAIN ", b"\0alice\0pw"));
    assert_eq!(
        (creds.login, creds.password.into_inner()),
        (b"alice".to_vec(), b"pw".to_vec())
    );
}

/// Issue #11, found by the `smtp_preauth` fuzz target: under `smtp_auth none` the HELO
/// argument and the MAIL and RCPT texts are replayed to the backend, so a NUL in any
/// of them refuses the login before auth_http, as for a login.
#[test]
fn auth_none_envelope_with_a_nul_is_refused() {
    const REFUSED: &str = "client sent invalid HELO, MAIL or RCPT: CR, LF or NUL";
    for (helo, from, to) in [
        (
            "EHLO cli\0ent\r\n",
            "MAIL FROM:<a@b>\r\n",
            "RCPT TO:<c@d>\r\n",
        ),
        (
            "EHLO client\r\n",
            "MAIL FROM:<a\0@b>\r\n",
            "RCPT TO:<c@d>\r\n",
        ),
        (
            "EHLO client\r\n",
            "MAIL FROM:<a@b>\r\n",
            "RCPT TO:<c@d>\0\r\n",
        ),
    ] {
        let mut o = options();
        o.settings.auth = auth(false, false, false, false, true);
        let mut s = Smtp::new(o);
        s.expect(helo, "250 mx.test\r\n");
        s.expect(from, "250 2.0.0 OK\r\n");
        s.expect(to, INVALID_TEXT);
        assert_eq!(
            s.client.machine.take_log().as_deref(),
            Some(REFUSED),
            "{helo:?}"
        );
    }
}

/// freenginx 1.25.5 `max_commands`: the command past the limit gets `500 5.5.1 Invalid
/// command` and the connection closes; syntax errors are not counted.
#[test]
fn max_commands_refuses_and_closes_the_command_past_it() {
    let mut options = options();
    options.limits.max_commands = 2;
    let mut s = Smtp::new(options);
    s.expect(
        "EHLO client.example\r\n",
        "250-mx.test\r\n250 AUTH PLAIN LOGIN\r\n",
    );
    s.expect("DATA\r\n", INVALID_TEXT);
    s.expect("AUTH LOGIN\r\n", "334 VXNlcm5hbWU6\r\n");
    assert_eq!(s.client.machine.take_log(), None);
    assert_eq!(
        s.send(b"YWxpY2U=\r\n"),
        (INVALID_TEXT.to_string(), End::Closed)
    );
    assert_eq!(
        s.client.machine.take_log().as_deref(),
        Some("client sent too many commands")
    );
}
