//! IMAP pre-auth transcripts (reference §5, §12.1, §17, §18), exact bytes, no sockets.
//! Backend login transcripts are in `tests_backend.rs`.

use super::*;
use crate::proto::sasl::encode_base64;
use crate::proto::testkit::{Client, End};
use crate::proto::Credentials;
use std::sync::Arc;

/// The scripted client of [`crate::proto::testkit`], built from a few knobs.
type Imap = Client<ImapPreAuth>;

struct Setup {
    settings: ImapSettings,
    starttls: Starttls,
    limits: CommandLimits,
    tls: bool,
}

fn setup() -> Setup {
    Setup {
        settings: ImapSettings {
            client_buffer: 4096,
            capabilities: vec!["IMAP4".into(), "IMAP4rev1".into(), "UIDPLUS".into()],
            auth: AuthMethods {
                plain: true,
                ..AuthMethods::default()
            },
        },
        starttls: Starttls::Off,
        limits: CommandLimits::DEFAULT,
        tls: false,
    }
}

impl Setup {
    fn auth(mut self, plain: bool, login: bool, cram_md5: bool, external: bool) -> Self {
        self.settings.auth = AuthMethods {
            plain,
            login,
            cram_md5,
            external,
            ..AuthMethods::default()
        };
        self
    }
    fn capabilities(mut self, items: &[&str]) -> Self {
        self.settings.capabilities = items.iter().map(|s| s.to_string()).collect();
        self
    }
    fn buffer(mut self, size: usize) -> Self {
        self.settings.client_buffer = size;
        self
    }
    fn starttls(mut self, starttls: Starttls) -> Self {
        self.starttls = starttls;
        self
    }
    fn max_errors(mut self, max_errors: u32) -> Self {
        self.limits.max_errors = max_errors;
        self
    }
    fn max_commands(mut self, max_commands: u32) -> Self {
        self.limits.max_commands = max_commands;
        self
    }
    fn implicit_tls(mut self) -> Self {
        self.tls = true;
        self
    }
    fn connect(self) -> Imap {
        let mut machine = ImapPreAuth::new(
            Arc::new(ImapPlan::new(
                &self.settings,
                self.starttls,
                self.limits,
                "mx.test",
            )),
            self.tls,
        );
        assert_eq!(machine.greeting(), b"* OK IMAP4 ready\r\n");
        Client::new(machine)
    }
}

fn plain(login: &str, password: &str) -> Credentials {
    Credentials {
        method: AuthMethod::Plain,
        login: login.into(),
        password: password.into(),
        salt: None,
        smtp: None,
    }
}

const CAPA_DEFAULT: &[u8] = b"* CAPABILITY IMAP4 IMAP4rev1 UIDPLUS AUTH=PLAIN\r\n";
const BAD: &[u8] = b"* BAD invalid command\r\n";

#[test]
fn greeting_and_simple_commands() {
    setup()
        .connect()
        .says(b"a1 NOOP\r\n", b"a1 OK completed\r\n")
        .says(b"x  noop  ignored args\r\n", b"x OK completed\r\n")
        .says(
            b"a2 capability\r\n",
            b"* CAPABILITY IMAP4 IMAP4rev1 UIDPLUS AUTH=PLAIN\r\na2 OK completed\r\n",
        )
        .expect(
            b"a3 LOGOUT\r\n",
            b"* BYE\r\na3 OK completed\r\n",
            End::Closed,
        );
}

#[test]
fn capability_variants() {
    let all = || setup().auth(true, true, true, true);
    let line =
        b"* CAPABILITY IMAP4 IMAP4rev1 UIDPLUS AUTH=PLAIN AUTH=LOGIN AUTH=CRAM-MD5 AUTH=EXTERNAL";
    let expect = |suffix: &[u8]| [&line[..], suffix, b"\r\nc OK completed\r\n"].concat();

    let mut imap = all().connect();
    imap.says(b"c CAPABILITY\r\n", &expect(b""));

    let mut imap = all().starttls(Starttls::On).connect();
    imap.says(b"c CAPABILITY\r\n", &expect(b" STARTTLS"));
    imap.expect(b"s STARTTLS\r\n", b"s OK completed\r\n", End::StartTls);
    imap.machine.tls_established();
    imap.says(b"c CAPABILITY\r\n", &expect(b""));
    imap.says(b"s STARTTLS\r\n", b"s BAD invalid command\r\n");

    let mut imap = all().starttls(Starttls::On).implicit_tls().connect();
    imap.says(b"c CAPABILITY\r\n", &expect(b""));

    let only = || {
        setup()
            .capabilities(&["IMAP4rev1", "SASL-IR", "IDLE"])
            .starttls(Starttls::Only)
    };
    let mut imap = only().connect();
    imap.says(
        b"c CAPABILITY\r\n",
        b"* CAPABILITY IMAP4rev1 SASL-IR IDLE STARTTLS LOGINDISABLED\r\nc OK completed\r\n",
    );
    imap.expect(b"s STARTTLS\r\n", b"s OK completed\r\n", End::StartTls);
    imap.machine.tls_established();
    imap.says(
        b"c CAPABILITY\r\n",
        b"* CAPABILITY IMAP4rev1 SASL-IR IDLE AUTH=PLAIN\r\nc OK completed\r\n",
    );

    let mut imap = setup().auth(false, true, false, true).connect();
    imap.says(
        b"c CAPABILITY\r\n",
        b"* CAPABILITY IMAP4 IMAP4rev1 UIDPLUS AUTH=LOGIN AUTH=EXTERNAL\r\nc OK completed\r\n",
    );
}

#[test]
fn login_with_atoms_and_pipelined_bytes() {
    let mut imap = setup().connect();
    let credentials = imap.logs_in(b"a LOGIN alice secret\r\nb NOOP\r\n");
    assert_eq!(credentials, plain("alice", "secret"));
    assert_eq!(imap.machine.login(), b"alice");
    assert_eq!(imap.machine.take_pipelined(), b"b NOOP\r\n");
}

#[test]
fn login_with_quoted_strings_and_escapes() {
    let mut imap = setup().connect();
    let credentials = imap.logs_in(b"a LOGIN \"al ice\" \"p\\\\a\\\"ss\"\r\n");
    assert_eq!(credentials, plain("al ice", "p\\a\"ss"));
    // A quoted string ends the argument as if a space followed; `"` inside atoms is plain.
    let mut imap = setup().connect();
    assert_eq!(imap.logs_in(b"a LOGIN \"u\"p\r\n"), plain("u", "p"));
    let mut imap = setup().connect();
    assert_eq!(imap.logs_in(b"a LOGIN u\"x p\"\r\n"), plain("u\"x", "p\""));
    // Empty password allowed, empty user refused (semantic, uncounted).
    let mut imap = setup().max_errors(1).connect();
    imap.says(b"a LOGIN \"\" pw\r\n", b"a BAD invalid command\r\n");
    assert_eq!(imap.logs_in(b"b LOGIN u \"\"\r\n"), plain("u", ""));
}

#[test]
fn login_with_literals() {
    let mut imap = setup().connect();
    imap.says(b"a1 LOGIN {5}\r\n", b"+ OK\r\n")
        .says(b"alice {6}\r\n", b"+ OK\r\n");
    assert_eq!(imap.logs_in(b"secret\r\n"), plain("alice", "secret"));

    // Non-synchronising literals need no continuation. (CR, LF, NUL: see
    // `logins_with_cr_lf_or_nul_are_refused`.)
    let mut imap = setup().connect();
    assert_eq!(
        imap.logs_in(b"a1 LOGIN {5+}\r\nal ce {2+}\r\n\t \r\n"),
        plain("al ce", "\t ")
    );
    // Literal bytes arriving in pieces.
    let mut imap = setup().connect();
    imap.says(b"a LOGIN {3}\r\n", b"+ OK\r\n")
        .says(b"b", b"")
        .says(b"o", b"");
    assert_eq!(imap.logs_in(b"b pw\r\n"), plain("bob", "pw"));
}

#[test]
fn quirk_zero_length_literal_swallows_one_byte() {
    let mut imap = setup().connect();
    imap.says(b"a LOGIN {0}\r\n", b"+ OK\r\n")
        .says(b"X {2}\r\n", b"+ OK\r\n");
    assert_eq!(imap.logs_in(b"pw\r\n"), plain("X", "pw"));
}

#[test]
fn quirk_literal_directly_followed_by_another() {
    // 1.22.1: `{` right after a literal starts the next one; other bytes separate.
    let mut imap = setup().connect();
    imap.says(b"a LOGIN {1}\r\n", b"+ OK\r\n")
        .says(b"x{1}\r\n", b"+ OK\r\n");
    assert_eq!(imap.logs_in(b"y\r\n"), plain("x", "y"));
    let mut imap = setup().connect();
    imap.says(b"a LOGIN {1}\r\n", b"+ OK\r\n");
    assert_eq!(imap.logs_in(b"xZpw\r\n"), plain("x", "pw"));
}

#[test]
fn literal_length_overflow_is_invalid() {
    setup().connect().says(
        b"a LOGIN {99999999999999999999999}\r\n",
        b"a BAD invalid command\r\n",
    );
}

#[test]
fn pipelined_commands_are_answered_one_by_one() {
    let mut imap = setup().connect();
    imap.says(
        b"a1 NOOP\r\na2 NOOP\r\na3 CAPABILITY\r\n",
        &[
            b"a1 OK completed\r\na2 OK completed\r\n",
            CAPA_DEFAULT,
            b"a3 OK completed\r\n",
        ]
        .concat(),
    );
    assert_eq!(imap.writes.len(), 3, "one write per command");
}

#[test]
fn tags() {
    let tag32 = "t".repeat(32);
    let tag33 = "t".repeat(33);
    setup()
        .max_errors(100)
        .connect()
        .says(
            format!("{tag32} NOOP\r\n").as_bytes(),
            format!("{tag32} OK completed\r\n").as_bytes(),
        )
        .says(format!("{tag33} NOOP\r\n").as_bytes(), BAD)
        .says(b"a-b.c_9 NOOP\r\n", b"a-b.c_9 OK completed\r\n")
        .says(b"bad*tag NOOP\r\n", BAD)
        .says(b"\r\n", BAD)
        .says(b"notag\r\n", BAD)
        .says(b" NOOP\r\n", b" OK completed\r\n")
        .says(b"a \r\n", b"a BAD invalid command\r\n");
}

#[test]
fn line_endings() {
    setup()
        .connect()
        .says(b"a NOOP\n", b"a OK completed\r\n")
        .says(b"b NOOP\rX\r\n", b"b BAD invalid command\r\n")
        .says(b"c LOGIN a\rb c\r\n", b"c BAD invalid command\r\n")
        .says(b"d NOOP\r\n", b"d OK completed\r\n");
}

#[test]
fn unknown_commands_are_syntax_errors() {
    setup()
        .max_errors(100)
        .connect()
        .says(b"a3 FOO\r\n", b"a3 BAD invalid command\r\n")
        .says(b"a4 ID NIL\r\n", b"a4 BAD invalid command\r\n")
        .says(b"a5 SELECT INBOX\r\n", b"a5 BAD invalid command\r\n")
        .says(b"a6 NO0P\r\n", b"a6 BAD invalid command\r\n")
        .says(b"a7 NOOP a b c d\r\n", b"a7 BAD invalid command\r\n");
}

#[test]
fn max_errors_closes_on_the_fifth_syntax_error() {
    let mut imap = setup().connect();
    for tag in ["e1", "e2", "e3", "e4"] {
        imap.says(
            format!("{tag} FOO\r\n").as_bytes(),
            format!("{tag} BAD invalid command\r\n").as_bytes(),
        );
    }
    assert!(imap.logs().is_empty());
    imap.expect(b"e5 FOO\r\n", b"e5 BAD invalid command\r\n", End::Closed);
    assert_eq!(imap.logs(), ["client sent too many invalid commands"]);
}

#[test]
fn semantic_errors_are_not_counted() {
    let mut imap = setup().max_errors(1).connect();
    for _ in 0..6 {
        imap.says(b"a LOGIN x\r\n", b"a BAD invalid command\r\n");
    }
    imap.says(b"b STARTTLS\r\n", b"b BAD invalid command\r\n")
        .says(b"c AUTHENTICATE\r\n", b"c BAD invalid command\r\n")
        .says(b"d AUTHENTICATE CRAM-MD5\r\n", b"d BAD invalid command\r\n")
        .says(
            b"e AUTHENTICATE DIGEST-MD5\r\n",
            b"e BAD invalid command\r\n",
        )
        .says(
            b"f AUTHENTICATE PLAIN a b\r\n",
            b"f BAD invalid command\r\n",
        )
        .says(b"g LOGIN a b c\r\n", b"g BAD invalid command\r\n")
        .expect(b"h FOO\r\n", b"h BAD invalid command\r\n", End::Closed);
}

#[test]
fn too_long_command_closes_without_counting() {
    let mut imap = setup().buffer(32).max_errors(1).connect();
    imap.expect(
        b"a LOGIN averyveryverylongusername password\r\n",
        b"a BAD invalid command\r\n",
        End::Closed,
    );
    assert_eq!(
        imap.logs(),
        ["client sent too long command \"a LOGIN...\" (32 bytes)"]
    );
    // Before the tag ended: untagged.
    let mut imap = setup().buffer(8).connect();
    imap.expect(b"abcdefghij", BAD, End::Closed);
}

#[test]
fn buffer_is_not_compacted_between_pipelined_commands() {
    // 32 bytes arrive at once: three commands fit, the fourth hits the end.
    let mut imap = setup().buffer(32).connect();
    imap.expect(
        b"a1 NOOP\r\na2 NOOP\r\na3 NOOP\r\na4 NOOP\r\n",
        b"a1 OK completed\r\na2 OK completed\r\na3 OK completed\r\na4 BAD invalid command\r\n",
        End::Closed,
    );
    assert_eq!(
        imap.logs(),
        ["client sent too long command \"a1 NOOP...\" (32 bytes)"]
    );
    // Once everything is consumed the whole buffer is free again.
    let mut imap = setup().buffer(32).connect();
    for _ in 0..10 {
        imap.says(
            b"a1 NOOP\r\na2 NOOP\r\n",
            b"a1 OK completed\r\na2 OK completed\r\n",
        );
        assert_eq!(imap.machine.free_space(), 32);
    }
}

#[test]
fn quirk_rejected_non_sync_literal_closes() {
    setup().connect().expect(
        b"a1 FOO {5+}\r\n",
        b"a1 BAD invalid command\r\n",
        End::Closed,
    );
    setup()
        .connect()
        .expect(b"a1 FOO {5+}\n", b"a1 BAD invalid command\r\n", End::Closed);
    // A synchronising one does not.
    setup()
        .connect()
        .says(b"a1 FOO {5}\r\n", b"a1 BAD invalid command\r\n");
}

#[test]
fn quirk_unterminated_quote_leaks_into_the_next_command() {
    let mut imap = setup().connect();
    imap.says(b"a LOGIN \"abc\r\n", b"a BAD invalid command\r\n")
        .says(b"b LOGIN user pass\r\n", b"b BAD invalid command\r\n");
    assert_eq!(imap.logs_in(b"c LOGIN \"x\" y\r\n"), plain("x", "y"));
}

#[test]
fn starttls_discards_pipelined_input() {
    let mut imap = setup().starttls(Starttls::On).connect();
    imap.expect(
        b"a STARTTLS\r\nb NOOP\r\n",
        b"a OK completed\r\n",
        End::StartTls,
    );
    imap.machine.tls_established();
    assert_eq!(imap.machine.free_space(), 4096);
    imap.says(b"", b"")
        .says(b"c NOOP\r\n", b"c OK completed\r\n");
}

#[test]
fn starttls_only_refuses_logins_until_tls() {
    let mut imap = setup().starttls(Starttls::Only).max_errors(1).connect();
    imap.says(b"a LOGIN u p\r\n", b"a BAD invalid command\r\n")
        .says(b"b AUTHENTICATE PLAIN\r\n", b"b BAD invalid command\r\n")
        .says(
            b"c AUTHENTICATE EXTERNAL dQ==\r\n",
            b"c BAD invalid command\r\n",
        )
        .expect(b"d STARTTLS\r\n", b"d OK completed\r\n", End::StartTls);
    imap.machine.tls_established();
    assert_eq!(imap.logs_in(b"e LOGIN u p\r\n"), plain("u", "p"));
}

#[test]
fn authenticate_plain() {
    let response = encode_base64(b"authz\0alice\0secret");
    let mut imap = setup().connect();
    imap.says(b"a AUTHENTICATE PLAIN\r\n", b"+ \r\n");
    let credentials = imap.logs_in(&[&response[..], b"\r\n"].concat());
    assert_eq!(credentials, plain("alice", "secret"));

    let mut imap = setup().connect();
    let command = [b"a authenticate plain ", &response[..], b"\r\n"].concat();
    assert_eq!(imap.logs_in(&command), plain("alice", "secret"));

    // Only the first word of a response line counts.
    let mut imap = setup().connect();
    imap.says(b"a AUTHENTICATE PLAIN\r\n", b"+ \r\n");
    let line = [&response[..], b" trailing words\r\n"].concat();
    assert_eq!(imap.logs_in(&line), plain("alice", "secret"));
}

#[test]
fn authenticate_plain_errors() {
    let mut imap = setup().max_errors(1).connect();
    imap.says(b"a9 AUTHENTICATE PLAIN\r\n", b"+ \r\n")
        .says(b"*\r\n", b"a9 BAD invalid command\r\n");
    assert_eq!(
        imap.logs(),
        ["client sent invalid base64 encoding in AUTH PLAIN command"]
    );
    let no_nul = [
        b"b AUTHENTICATE PLAIN ",
        &encode_base64(b"alice")[..],
        b"\r\n",
    ]
    .concat();
    imap.says(&no_nul, b"b BAD invalid command\r\n");
    assert_eq!(
        imap.logs(),
        ["client sent invalid login in AUTH PLAIN command"]
    );
    imap.says(b"c AUTHENTICATE PLAIN\r\n", b"+ \r\n");
    imap.says(
        &[&encode_base64(b"\0alice")[..], b"\r\n"].concat(),
        b"c BAD invalid command\r\n",
    );
    assert_eq!(
        imap.logs(),
        ["client sent invalid password in AUTH PLAIN command"]
    );
    // Back in the command state.
    imap.says(b"d NOOP\r\n", b"d OK completed\r\n");
}

#[test]
fn authenticate_login() {
    let mut imap = setup().connect();
    imap.says(b"a8 AUTHENTICATE LOGIN\r\n", b"+ VXNlcm5hbWU6\r\n")
        .says(b"YWxpY2U=\r\n", b"+ UGFzc3dvcmQ6\r\n");
    assert_eq!(imap.machine.login(), b"alice");
    assert_eq!(imap.logs_in(b"c2VjcmV0\r\n"), plain("alice", "secret"));

    let mut imap = setup().connect();
    imap.says(b"a AUTHENTICATE LOGIN YWxpY2U=\r\n", b"+ UGFzc3dvcmQ6\r\n");
    assert_eq!(imap.logs_in(b"c2VjcmV0\r\n"), plain("alice", "secret"));
}

#[test]
fn quirk_bad_base64_in_login_username_is_untagged_and_starless() {
    let mut imap = setup().max_errors(1).connect();
    imap.says(b"a8 AUTHENTICATE LOGIN\r\n", b"+ VXNlcm5hbWU6\r\n")
        .says(b"!!!notbase64\r\n", b"BAD invalid command\r\n");
    assert_eq!(
        imap.logs(),
        ["client sent invalid base64 encoding in AUTH LOGIN command"]
    );
    // The password step and the initial-response form are tagged.
    imap.says(b"b AUTHENTICATE LOGIN\r\n", b"+ VXNlcm5hbWU6\r\n")
        .says(b"dQ==\r\n", b"+ UGFzc3dvcmQ6\r\n")
        .says(b"!\r\n", b"b BAD invalid command\r\n")
        .says(b"c AUTHENTICATE LOGIN !\r\n", b"c BAD invalid command\r\n")
        .says(b"d NOOP\r\n", b"d OK completed\r\n");
}

/// A SASL response line: base64 of `decoded`, CRLF.
fn sasl_line(decoded: &[u8]) -> Vec<u8> {
    [&encode_base64(decoded)[..], b"\r\n"].concat()
}

const LOGIN_REFUSED: &str = "client sent invalid login: CR, LF or NUL";
const PASSWORD_REFUSED: &str = "client sent invalid password: CR, LF or NUL";

/// Issue #11: a login or password with CR, LF or NUL never goes to auth_http (so never
/// to a backend): the invalid-command reply a bad SASL response gets, one info log
/// line, the credentials forgotten, and the dialogue goes on. `says` fails if the
/// machine asks to authenticate.
#[test]
fn logins_with_cr_lf_or_nul_are_refused() {
    let mut imap = setup().connect();
    // Quoted strings and atoms end at CR or LF, but carry a NUL.
    imap.says(b"a LOGIN \"al\0ice\" pw\r\n", b"a BAD invalid command\r\n");
    assert_eq!(imap.logs(), [LOGIN_REFUSED]);
    imap.says(b"b LOGIN alice p\0w\r\n", b"b BAD invalid command\r\n");
    assert_eq!(imap.logs(), [PASSWORD_REFUSED]);
    assert_eq!(imap.machine.login(), b"");
    // Literals carry anything.
    imap.says(b"c LOGIN {13}\r\n", b"+ OK\r\n")
        .says(b"alice\r\nDELE 1 {2}\r\n", b"+ OK\r\n");
    imap.says(b"pw\r\n", b"c BAD invalid command\r\n");
    assert_eq!(imap.logs(), [LOGIN_REFUSED]);
    imap.says(
        b"d LOGIN alice {3+}\r\np\rw\r\n",
        b"d BAD invalid command\r\n",
    );
    assert_eq!(imap.logs(), [PASSWORD_REFUSED]);
    imap.says(b"e NOOP\r\n", b"e OK completed\r\n");
    assert_eq!(imap.logs_in(b"f LOGIN alice pw\r\n"), plain("alice", "pw"));
}

#[test]
fn sasl_logins_with_cr_lf_or_nul_are_refused() {
    let mut imap = setup().auth(true, true, false, false).connect();
    let line = [
        &b"a AUTHENTICATE PLAIN "[..],
        &sasl_line(b"\0alice\r\nDELE 1\0pw"),
    ]
    .concat();
    imap.says(&line, b"a BAD invalid command\r\n");
    assert_eq!(imap.logs(), [LOGIN_REFUSED]);
    imap.says(b"b AUTHENTICATE PLAIN\r\n", b"+ \r\n").says(
        &sasl_line(b"\0alice\0pw\r\nDELE 1"),
        b"b BAD invalid command\r\n",
    );
    assert_eq!(imap.logs(), [PASSWORD_REFUSED]);
    let authzid = [
        &b"c AUTHENTICATE PLAIN "[..],
        &sasl_line(b"x\ny\0alice\0pw"),
    ]
    .concat();
    assert_eq!(
        imap.logs_in(&authzid),
        plain("alice", "pw"),
        "authzid is dropped"
    );
    imap.machine.auth_failed(b"x", None);

    // LOGIN: refused once both are in, so the tagged reply of the password step.
    imap.says(b"d AUTHENTICATE LOGIN\r\n", b"+ VXNlcm5hbWU6\r\n")
        .says(&sasl_line(b"alice\r\nx"), b"+ UGFzc3dvcmQ6\r\n")
        .says(&sasl_line(b"pw"), b"d BAD invalid command\r\n");
    assert_eq!(imap.logs(), [LOGIN_REFUSED]);
    let line = [&b"e AUTHENTICATE LOGIN "[..], &sasl_line(b"alice")].concat();
    imap.says(&line, b"+ UGFzc3dvcmQ6\r\n")
        .says(&sasl_line(b"p\0w"), b"e BAD invalid command\r\n");
    assert_eq!(imap.logs(), [PASSWORD_REFUSED]);
    imap.says(b"f NOOP\r\n", b"f OK completed\r\n");
}

#[test]
fn authenticate_cram_md5() {
    setup()
        .connect()
        .says(b"t AUTHENTICATE CRAM-MD5\r\n", b"t BAD invalid command\r\n");

    let mut imap = setup().auth(true, false, true, false).connect();
    let (challenge, end) = imap.send(b"t AUTHENTICATE CRAM-MD5\r\n");
    assert_eq!(end, End::NeedInput);
    let salt = imap.machine.core.salt.clone();
    let salt = salt.expect("salt made on first use");
    assert_eq!(challenge, sasl::cram_md5_challenge(b"+ ", &salt));
    assert!(salt.ends_with(b"@mx.test>\r\n"));

    let digest = "0123456789abcdef0123456789abcdef";
    let response = encode_base64(format!("bob {digest}").as_bytes());
    let credentials = imap.logs_in(&[&response[..], b"\r\n"].concat());
    assert_eq!(
        credentials,
        Credentials {
            method: AuthMethod::CramMd5,
            login: b"bob".to_vec(),
            password: digest.into(),
            salt: Some(salt.clone()),
            smtp: None,
        }
    );

    // After a failed attempt the same salt is offered again; a bad digest is refused.
    imap.machine.auth_failed(b"nope", None);
    imap.says(b"u AUTHENTICATE CRAM-MD5\r\n", &challenge)
        .says(b"Ym9iIDEyMw==\r\n", b"u BAD invalid command\r\n");
    assert_eq!(
        imap.logs(),
        ["client sent invalid CRAM-MD5 hash in AUTH CRAM-MD5 command"]
    );
}

#[test]
fn authenticate_external() {
    let external = |login: &str, password: &str| Credentials {
        method: AuthMethod::External,
        ..plain(login, password)
    };
    // Prompt only if enabled; the initial response works regardless.
    let mut imap = setup().connect();
    imap.says(b"a AUTHENTICATE EXTERNAL\r\n", b"a BAD invalid command\r\n");
    assert_eq!(
        imap.logs_in(b"b AUTHENTICATE EXTERNAL YWxpY2U=\r\n"),
        external("alice", "")
    );

    let mut imap = setup().auth(true, false, false, true).connect();
    imap.says(b"a AUTHENTICATE EXTERNAL\r\n", b"+ VXNlcm5hbWU6\r\n");
    assert_eq!(imap.logs_in(b"Ym9i\r\n"), external("bob", ""));

    // The password is whatever an earlier attempt left.
    let mut imap = setup().connect();
    imap.logs_in(b"a LOGIN alice secret\r\n");
    assert_eq!(
        imap.machine.auth_failed(b"try again", None),
        b"a NO try again\r\n"
    );
    assert_eq!(
        imap.logs_in(b"b AUTHENTICATE EXTERNAL Ym9i\r\n"),
        external("bob", "secret")
    );
}

#[test]
fn auth_failure_reply_and_reset() {
    let mut imap = setup().connect();
    imap.logs_in(b"t1 LOGIN badwait pw\r\nt2 NOOP\r\n");
    assert_eq!(
        imap.machine.auth_failed(b"Invalid login or password", None),
        b"t1 NO Invalid login or password\r\n"
    );
    // The pipelined command is answered next.
    imap.says(b"", b"t2 OK completed\r\n")
        .says(b"t3 NOOP\r\n", b"t3 OK completed\r\n");

    // AUTHENTICATE keeps its tag across the continuation.
    let mut imap = setup().connect();
    imap.says(b"p1 AUTHENTICATE PLAIN\r\n", b"+ \r\n");
    imap.logs_in(b"AHUAcA==\r\n");
    assert_eq!(imap.machine.auth_failed(b"no", None), b"p1 NO no\r\n");
    imap.says(b"p2 NOOP\r\n", b"p2 OK completed\r\n");
}

#[test]
fn quirk_stale_tag_after_failed_login() {
    // nginx keeps the tag of the login command; a next line rejected before its tag
    // ends is answered with the bytes now at that position of the buffer (derived from
    // the source, not verified on the binary). While they are still the tag, so is
    // our answer.
    let mut imap = setup().connect();
    imap.logs_in(b"t1 LOGIN u p\r\n\r\n");
    imap.machine.auth_failed(b"no", None);
    imap.says(b"", b"t1 BAD invalid command\r\n")
        .says(b"\r\n", BAD);
}

#[test]
fn stale_tag_bytes_that_are_no_longer_a_tag_answer_untagged() {
    // Found by fuzz/fuzz_targets/imap_preauth.rs: nginx would answer `\n\n\nBAD ...`,
    // a reply with bare LFs; the bytes at the old tag's place are not a tag any more.
    let mut imap = setup().connect();
    imap.logs_in(b"t1 LOGIN u p\r\n");
    imap.machine.auth_failed(b"no", None);
    imap.says(b"\n\n\n", &[BAD, BAD, BAD].concat());
    let mut imap = setup().connect();
    imap.logs_in(b"a1 LOGIN alice secret\r\n");
    assert_eq!(imap.machine.auth_failed(b"no", None), b"a1 NO no\r\n");
    imap.says(b"2\ra LOGIN\r\n", BAD);
}

#[test]
fn internal_error_line() {
    assert_eq!(
        setup().connect().machine.internal_error(),
        b"* BAD internal server error\r\n"
    );
}

#[test]
fn secrets_stay_out_of_debug_output() {
    let mut imap = setup().connect();
    let credentials = imap.logs_in(b"a LOGIN alice hunter2\r\n");
    assert!(!format!("{credentials:?}").contains("hunter2"));
    assert!(!format!("{:?}", imap.machine).contains("hunter2"));
}

/// freenginx 1.25.5 `max_commands`: every command that parses counts (SASL responses
/// too), syntax errors and literal announcements do not; the one past the limit gets
/// the tagged invalid-command reply and the connection closes.
#[test]
fn max_commands_refuses_and_closes_the_command_past_it() {
    let mut imap = setup().max_commands(3).connect();
    imap.says(b"a1 NOOP\r\n", b"a1 OK completed\r\n")
        .says(b"a2 FOO\r\n", b"a2 BAD invalid command\r\n")
        .says(b"a3 LOGIN {5}\r\n", b"+ OK\r\n")
        // A command that parses but is refused counts (LOGIN without a password).
        .says(b"alice\r\n", b"a3 BAD invalid command\r\n")
        .says(b"a4 AUTHENTICATE PLAIN\r\n", b"+ \r\n");
    assert_eq!(imap.logs(), Vec::<String>::new());
    // The third command is a SASL response: refused with the AUTHENTICATE's tag.
    let response = encode_base64(b"\0alice\0pw");
    imap.expect(
        &[&response[..], b"\r\n"].concat(),
        b"a4 BAD invalid command\r\n",
        End::Closed,
    );
    assert_eq!(imap.logs(), ["client sent too many commands"]);
}

#[test]
fn max_commands_zero_refuses_the_first_command() {
    let mut imap = setup().max_commands(0).connect();
    imap.expect(
        b"a1 CAPABILITY\r\n",
        b"a1 BAD invalid command\r\n",
        End::Closed,
    );
    assert_eq!(imap.logs(), ["client sent too many commands"]);
}
