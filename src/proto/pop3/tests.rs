//! POP3 pre-auth transcripts (reference §6, §12.2, §17, §18.9/10/21), exact bytes, no
//! sockets. Backend login transcripts are in `tests_backend.rs`.

use super::*;
use crate::proto::sasl::encode_base64;
use crate::proto::testkit::{Client, End};
use crate::proto::Credentials;
use std::sync::Arc;

const SALT: &[u8] = b"<1611944213.1795842754@mx.test>\r\n";
const SALT_B64: &[u8] = b"PDE2MTE5NDQyMTMuMTc5NTg0Mjc1NEBteC50ZXN0Pg==";
const INVALID: &[u8] = b"-ERR invalid command\r\n";
const CAPA: &[u8] =
    b"+OK Capability list follows\r\nTOP\r\nUSER\r\nUIDL\r\nSASL PLAIN LOGIN\r\n.\r\n";

struct Setup {
    settings: Pop3Settings,
    starttls: Starttls,
    limits: CommandLimits,
    tls: bool,
}

fn setup() -> Setup {
    Setup {
        settings: Pop3Settings {
            capabilities: vec!["TOP".into(), "USER".into(), "UIDL".into()],
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
    fn auth(mut self, plain: bool, apop: bool, cram_md5: bool, external: bool) -> Self {
        self.settings.auth = AuthMethods {
            plain,
            apop,
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
    /// Connects and checks the greeting (with the fixed salt when one is made).
    fn connect(self) -> Pop3 {
        let auth = self.settings.auth;
        let salt = (auth.apop || auth.cram_md5).then(|| SALT.to_vec());
        let plan = Pop3Plan::new(&self.settings, self.starttls, self.limits, "mx.test");
        let mut machine = Pop3PreAuth::with_salt(Arc::new(plan), salt.clone(), self.tls);
        let greeting = match salt {
            Some(salt) => [&b"+OK POP3 ready "[..], &salt].concat(),
            None => b"+OK POP3 ready\r\n".to_vec(),
        };
        assert_eq!(machine.greeting(), greeting);
        Client::new(machine)
    }
}

/// The scripted client of [`crate::proto::testkit`].
type Pop3 = Client<Pop3PreAuth>;

fn creds(method: AuthMethod, login: &[u8], password: &[u8], salt: Option<&[u8]>) -> Credentials {
    Credentials {
        method,
        login: login.to_vec(),
        password: password.into(),
        salt: salt.map(<[u8]>::to_vec),
        smtp: None,
    }
}

fn plain(login: &[u8], password: &[u8]) -> Credentials {
    creds(AuthMethod::Plain, login, password, None)
}

#[test]
fn verified_transcript_with_starttls_on() {
    let mut pop3 = setup().starttls(Starttls::On).connect();
    pop3.says(
        b"CAPA\r\n",
        b"+OK Capability list follows\r\nTOP\r\nUSER\r\nUIDL\r\nSASL PLAIN LOGIN\r\nSTLS\r\n.\r\n",
    )
    .says(
        b"AUTH\r\n",
        b"+OK methods supported:\r\nPLAIN\r\nLOGIN\r\n.\r\n",
    )
    .says(b"STAT\r\n", INVALID)
    .says(b"USER bob\r\n", b"+OK\r\n");
    assert_eq!(pop3.logs_in(b"PASS secret\r\n"), plain(b"bob", b"secret"));
}

#[test]
fn simple_commands() {
    setup()
        .connect()
        .says(b"NOOP\r\n", b"+OK\r\n")
        .says(b"noop extra args\n", b"+OK\r\n")
        .says(b"capa\r\n", CAPA)
        .expect(b"QUIT\r\n", b"+OK\r\n", End::Closed);
    setup()
        .connect()
        .says(b"USER bob\r\n", b"+OK\r\n")
        .says(b"NOOP\r\n", b"+OK\r\n")
        .expect(b"QUIT\r\n", b"+OK\r\n", End::Closed);
}

#[test]
fn greeting_carries_the_salt_for_apop_or_cram_md5() {
    // `connect` checks the greeting for each.
    setup().auth(true, true, false, false).connect();
    setup().auth(false, false, true, false).connect();
    setup().auth(true, false, false, true).connect();
    let settings = setup().auth(false, true, false, false).settings;
    let mut real = Pop3PreAuth::new(
        Arc::new(Pop3Plan::new(
            &settings,
            Starttls::Off,
            CommandLimits::DEFAULT,
            "mx.test",
        )),
        false,
    );
    let greeting = String::from_utf8(real.greeting()).unwrap();
    assert!(greeting.starts_with("+OK POP3 ready <"), "{greeting}");
    assert!(greeting.ends_with("@mx.test>\r\n"), "{greeting}");
}

#[test]
fn capa_variants() {
    let all = || setup().auth(true, true, true, true);
    let sasl = b"SASL PLAIN LOGIN CRAM-MD5 EXTERNAL\r\n";
    let head = b"+OK Capability list follows\r\nTOP\r\nUSER\r\nUIDL\r\n";
    let base = [&head[..], sasl, b".\r\n"].concat();
    let with_stls = [&head[..], sasl, b"STLS\r\n.\r\n"].concat();
    let only = b"+OK Capability list follows\r\nTOP\r\nUIDL\r\nSTLS\r\n.\r\n";

    all().connect().says(b"CAPA\r\n", &base);
    all().connect().says(
        b"AUTH\r\n",
        b"+OK methods supported:\r\nPLAIN\r\nLOGIN\r\nCRAM-MD5\r\nEXTERNAL\r\n.\r\n",
    );
    setup().auth(true, true, true, false).connect().says(
        b"CAPA\r\n",
        b"+OK Capability list follows\r\nTOP\r\nUSER\r\nUIDL\r\nSASL PLAIN LOGIN CRAM-MD5\r\n.\r\n",
    );
    let apop_only = setup().auth(false, true, false, false);
    apop_only
        .connect()
        .says(
            b"CAPA\r\n",
            b"+OK Capability list follows\r\nTOP\r\nUSER\r\nUIDL\r\nSASL\r\n.\r\n",
        )
        .says(b"AUTH\r\n", b"+OK methods supported:\r\n.\r\n");

    let mut pop3 = all().starttls(Starttls::On).connect();
    pop3.says(b"CAPA\r\n", &with_stls);
    pop3.says(b"USER bob\r\n", b"+OK\r\n");
    pop3.says(b"CAPA\r\n", &base); // the user state never shows STLS
    pop3.says(b"XYZ\r\n", INVALID);
    pop3.says(b"CAPA\r\n", &with_stls);

    let mut pop3 = all().starttls(Starttls::Only).connect();
    pop3.says(b"CAPA\r\n", only);
    pop3.expect(b"STLS\r\n", b"+OK\r\n", End::StartTls);
    pop3.machine.tls_established();
    pop3.says(b"CAPA\r\n", &base);
    pop3.says(b"STLS\r\n", INVALID);

    all()
        .starttls(Starttls::On)
        .implicit_tls()
        .connect()
        .says(b"CAPA\r\n", &base);
    setup()
        .capabilities(&["user", "PIPELINING", "EXPIRE 0"])
        .starttls(Starttls::Only)
        .connect()
        .says(
            b"CAPA\r\n",
            b"+OK Capability list follows\r\nPIPELINING\r\nEXPIRE 0\r\nSTLS\r\n.\r\n",
        );
}

#[test]
fn user_and_pass_keep_inner_and_trailing_spaces() {
    let mut pop3 = setup().connect();
    pop3.says(b"USER  bob smith \r\n", b"+OK\r\n");
    assert_eq!(pop3.machine.login(), b"bob smith ");
    assert_eq!(
        pop3.logs_in(b"pass  s e c r e t  \r\n"),
        plain(b"bob smith ", b"s e c r e t  ")
    );
}

#[test]
fn user_and_pass_argument_rules() {
    let mut pop3 = setup().connect();
    pop3.says(b"USER\r\n", INVALID)
        .says(b"USER \r\n", INVALID)
        .says(b"PASS secret\r\n", INVALID) // no USER yet
        .says(b"USER bob\r\n", b"+OK\r\n")
        .says(b"PASS\r\n", INVALID) // empty password refused (§18.21), user forgotten
        .says(b"PASS secret\r\n", INVALID)
        .says(b"USER bob\r\n", b"+OK\r\n");
    assert_eq!(pop3.logs_in(b"PASS x\n"), plain(b"bob", b"x"));
}

#[test]
fn any_invalid_command_forgets_the_user() {
    for wrong in [
        &b"XYZ\r\n"[..],
        b"USER again\r\n",
        b"AUTH\r\n",
        b"AUTH PLAIN\r\n",
        b"APOP a b\r\n",
        b"STLS\r\n",
        b"\r\n",
    ] {
        let mut pop3 = setup()
            .auth(true, true, false, false)
            .starttls(Starttls::On)
            .connect();
        pop3.says(b"USER bob\r\n", b"+OK\r\n")
            .says(wrong, INVALID)
            .says(b"PASS secret\r\n", INVALID);
    }
}

#[test]
fn apop() {
    let digest = b"c4c9334bac560ecc979e58001b3e22fb";
    let mut pop3 = setup().auth(true, true, false, false).connect();
    pop3.says(b"APOP bob\r\n", INVALID)
        .says(b"APOP bob d extra\r\n", INVALID);
    let got = pop3.logs_in(b"APOP bob c4c9334bac560ecc979e58001b3e22fb\r\n");
    assert_eq!(got, creds(AuthMethod::Apop, b"bob", digest, Some(SALT)));
    // Not enabled: refused, and not counted.
    let mut pop3 = setup().max_errors(1).connect();
    pop3.says(b"APOP bob d\r\n", INVALID)
        .says(b"APOP bob d\r\n", INVALID);
}

#[test]
fn auth_login_plain_with_and_without_initial_response() {
    let mut pop3 = setup().connect();
    pop3.says(b"AUTH LOGIN\r\n", b"+ VXNlcm5hbWU6\r\n")
        .says(b"Ym9i\r\n", b"+ UGFzc3dvcmQ6\r\n");
    assert_eq!(pop3.logs_in(b"c2VjcmV0\r\n"), plain(b"bob", b"secret"));

    let mut pop3 = setup().connect();
    pop3.says(b"auth login Ym9i\r\n", b"+ UGFzc3dvcmQ6\r\n");
    assert_eq!(
        pop3.logs_in(b"c2VjcmV0 ignored\r\n"),
        plain(b"bob", b"secret")
    );

    let mut pop3 = setup().connect();
    pop3.says(b"AUTH PLAIN\r\n", b"+ \r\n");
    let response = encode_base64(b"authz\0bob\0secret");
    let line = [&response[..], b"\r\n"].concat();
    assert_eq!(pop3.logs_in(&line), plain(b"bob", b"secret"));

    let mut pop3 = setup().connect();
    let line = [&b"AUTH PLAIN "[..], &response, b"\r\n"].concat();
    assert_eq!(pop3.logs_in(&line), plain(b"bob", b"secret"));
}

#[test]
fn auth_cram_md5_uses_the_greeting_salt() {
    let mut pop3 = setup().auth(true, false, true, false).connect();
    let challenge = [&b"+ "[..], SALT_B64, b"\r\n"].concat();
    pop3.says(b"AUTH CRAM-MD5\r\n", &challenge);
    let digest = b"0123456789abcdef0123456789abcdef";
    let response = encode_base64(&[&b"bob "[..], digest].concat());
    let got = pop3.logs_in(&[&response[..], b"\r\n"].concat());
    assert_eq!(got, creds(AuthMethod::CramMd5, b"bob", digest, Some(SALT)));

    let mut pop3 = setup().auth(true, false, true, false).connect();
    pop3.says(b"AUTH CRAM-MD5\r\n", &challenge).says(
        &[&encode_base64(b"bob 0123")[..], b"\r\n"].concat(),
        INVALID,
    );
    assert_eq!(
        pop3.logs(),
        ["client sent invalid CRAM-MD5 hash in AUTH CRAM-MD5 command"]
    );
    // Disabled, or with an argument: invalid.
    setup().connect().says(b"AUTH CRAM-MD5\r\n", INVALID);
    setup()
        .auth(true, false, true, false)
        .connect()
        .says(b"AUTH CRAM-MD5 x\r\n", INVALID);
}

#[test]
fn auth_external() {
    let mut pop3 = setup().auth(true, false, false, true).connect();
    pop3.says(b"AUTH EXTERNAL\r\n", b"+ VXNlcm5hbWU6\r\n");
    let got = pop3.logs_in(b"Ym9i\r\n");
    assert_eq!(got, creds(AuthMethod::External, b"bob", b"", None));
    // The challenge form needs `external`; the initial response always works.
    let mut pop3 = setup().connect();
    pop3.says(b"AUTH EXTERNAL\r\n", INVALID);
    let got = pop3.logs_in(b"AUTH EXTERNAL Ym9i\r\n");
    assert_eq!(got, creds(AuthMethod::External, b"bob", b"", None));
}

#[test]
fn sasl_errors_go_back_to_the_start_state() {
    let mut pop3 = setup().max_errors(1).connect();
    pop3.says(b"AUTH LOGIN\r\n", b"+ VXNlcm5hbWU6\r\n")
        .says(b"!!!\r\n", INVALID)
        .says(b"AUTH LOGIN Ym9i\r\n", b"+ UGFzc3dvcmQ6\r\n")
        .says(b"*\r\n", INVALID)
        .says(b"AUTH PLAIN\r\n", b"+ \r\n")
        .says(&[&encode_base64(b"bob")[..], b"\r\n"].concat(), INVALID)
        .says(b"AUTH PLAIN *\r\n", INVALID)
        .says(b"AUTH DIGEST-MD5\r\n", INVALID)
        .says(b"AUTH LOGIN a b\r\n", INVALID)
        .says(b"NOOP\r\n", b"+OK\r\n"); // none of these counted
    assert_eq!(
        pop3.logs(),
        [
            "client sent invalid base64 encoding in AUTH LOGIN command",
            "client sent invalid base64 encoding in AUTH LOGIN command",
            "client sent invalid login in AUTH PLAIN command",
            "client sent invalid base64 encoding in AUTH PLAIN command",
        ]
    );
}

/// A SASL response line: base64 of `decoded`, CRLF.
fn sasl_line(decoded: &[u8]) -> Vec<u8> {
    [&encode_base64(decoded)[..], b"\r\n"].concat()
}

const LOGIN_REFUSED: &str = "client sent invalid login: CR, LF or NUL";
const PASSWORD_REFUSED: &str = "client sent invalid password: CR, LF or NUL";

/// Issue #11: `AUTH PLAIN` of `\0alice\r\nDELE 1\0pw` made nginx send `USER alice`,
/// `DELE 1`, `PASS pw` to the backend. A login or password with CR, LF or NUL never
/// goes to auth_http: the invalid-command reply, one info log line, back to the start
/// state. `says` fails if the machine asks to authenticate.
#[test]
fn sasl_logins_with_cr_lf_or_nul_are_refused() {
    let mut pop3 = setup().connect();
    let attack = [&b"AUTH PLAIN "[..], &sasl_line(b"\0alice\r\nDELE 1\0pw")].concat();
    pop3.says(&attack, INVALID);
    assert_eq!(pop3.logs(), [LOGIN_REFUSED]);
    pop3.says(b"AUTH PLAIN\r\n", b"+ \r\n")
        .says(&sasl_line(b"\0alice\0pw\r\nDELE 1"), INVALID);
    assert_eq!(pop3.logs(), [PASSWORD_REFUSED]);
    pop3.says(b"AUTH LOGIN\r\n", b"+ VXNlcm5hbWU6\r\n")
        .says(&sasl_line(b"x\r\nUSER victim"), b"+ UGFzc3dvcmQ6\r\n")
        .says(&sasl_line(b"pw"), INVALID);
    assert_eq!(pop3.logs(), [LOGIN_REFUSED]);
    let line = [&b"AUTH LOGIN "[..], &encode_base64(b"alice"), b"\r\n"].concat();
    pop3.says(&line, b"+ UGFzc3dvcmQ6\r\n")
        .says(&sasl_line(b"pw\nDELE 1"), INVALID);
    assert_eq!(pop3.logs(), [PASSWORD_REFUSED]);
    assert_eq!(pop3.machine.login(), b"");
    pop3.says(b"NOOP\r\n", b"+OK\r\n");
}

#[test]
fn command_logins_with_nul_are_refused() {
    let mut pop3 = setup().auth(true, true, true, true).connect();
    // A CR must be followed by LF here, so a NUL is what an argument can carry.
    pop3.says(b"USER al\0ice\r\n", b"+OK\r\n")
        .says(b"PASS pw\r\n", INVALID)
        .says(b"PASS pw\r\n", INVALID);
    assert_eq!(pop3.logs(), [LOGIN_REFUSED]);
    pop3.says(b"USER alice\r\n", b"+OK\r\n")
        .says(b"PASS p\0w\r\n", INVALID);
    assert_eq!(pop3.logs(), [PASSWORD_REFUSED]);
    let digest = b"c4c9334bac560ecc979e58001b3e22fb";
    pop3.says(&[&b"APOP b\0ob "[..], digest, b"\r\n"].concat(), INVALID);
    assert_eq!(pop3.logs(), [LOGIN_REFUSED]);
    let cram = sasl_line(&[&b"b\rob "[..], digest].concat());
    let challenge = [&b"+ "[..], SALT_B64, b"\r\n"].concat();
    pop3.says(b"AUTH CRAM-MD5\r\n", &challenge)
        .says(&cram, INVALID);
    assert_eq!(pop3.logs(), [LOGIN_REFUSED]);
    pop3.says(
        &[&b"AUTH EXTERNAL "[..], &sasl_line(b"bob\n")].concat(),
        INVALID,
    );
    assert_eq!(pop3.logs(), [LOGIN_REFUSED]);
    let got = pop3.logs_in(&[&b"APOP bob "[..], digest, b"\r\n"].concat());
    assert_eq!(got, creds(AuthMethod::Apop, b"bob", digest, Some(SALT)));
}

#[test]
fn sasl_response_words_and_syntax() {
    // A response starting with a space has an empty first word.
    let mut pop3 = setup().connect();
    pop3.says(b"AUTH LOGIN\r\n", b"+ VXNlcm5hbWU6\r\n")
        .says(b" Ym9i\r\n", b"+ UGFzc3dvcmQ6\r\n");
    assert_eq!(pop3.logs_in(b"\r\n"), plain(b"", b""));
    // Four words is a syntax error: counted, back to the start state.
    let mut pop3 = setup().max_errors(1).connect();
    pop3.says(b"AUTH PLAIN\r\n", b"+ \r\n")
        .expect(b"a b c d\r\n", INVALID, End::Closed);
}

#[test]
fn starttls_only_refuses_logins_until_tls() {
    let mut pop3 = setup()
        .auth(true, true, false, false)
        .starttls(Starttls::Only)
        .connect();
    for line in [
        &b"USER bob\r\n"[..],
        b"APOP bob d\r\n",
        b"AUTH\r\n",
        b"AUTH PLAIN\r\n",
        b"AUTH EXTERNAL Ym9i\r\n",
    ] {
        pop3.says(line, INVALID);
    }
    pop3.says(b"NOOP\r\n", b"+OK\r\n");
    pop3.expect(b"STLS\r\nUSER injected\r\n", b"+OK\r\n", End::StartTls);
    pop3.machine.tls_established();
    assert_eq!(
        pop3.machine.free_space(),
        COMMAND_BUFFER,
        "pipelined input dropped"
    );
    pop3.says(b"USER bob\r\n", b"+OK\r\n");
}

#[test]
fn stls_refused_without_starttls_or_on_tls() {
    setup().connect().says(b"STLS\r\n", INVALID);
    setup()
        .starttls(Starttls::On)
        .implicit_tls()
        .connect()
        .says(b"STLS\r\n", INVALID);
}

#[test]
fn max_errors_counts_only_syntax_errors() {
    let mut pop3 = setup().max_errors(3).connect();
    pop3.says(b"STAT\r\n", INVALID)
        .says(b"USER\r\n", INVALID) // semantic: not counted
        .says(b"RETR 1\r\n", INVALID)
        .expect(b"LIST\r\n", INVALID, End::Closed);
    assert_eq!(pop3.logs(), ["client sent too many invalid commands"]);
}

#[test]
fn command_buffer_is_128_bytes() {
    let fits = [&b"USER "[..], &[b'a'; 121], b"\r\n"].concat();
    assert_eq!(fits.len(), 128);
    setup().connect().says(&fits, b"+OK\r\n");

    let mut pop3 = setup().connect();
    let long = [&b"PASS "[..], &[b'p'; 124], b"\r\n"].concat();
    pop3.expect(&long, INVALID, End::Closed);
    assert_eq!(
        pop3.logs(),
        ["client sent too long command \"PASS...\" (128 bytes)"]
    );

    // Pipelined commands share the buffer until it is consumed (never compacted).
    let mut pop3 = setup().connect();
    let mut input = b"NOOP\r\n".repeat(21);
    input.extend_from_slice(b"NO");
    let expected = [b"+OK\r\n".repeat(21), INVALID.to_vec()].concat();
    pop3.expect(&input, &expected, End::Closed);

    // A too-long SASL response logs nothing of itself.
    let mut pop3 = setup().connect();
    pop3.says(b"AUTH PLAIN\r\n", b"+ \r\n")
        .expect(&[b'A'; 130], INVALID, End::Closed);
    assert_eq!(
        pop3.logs(),
        ["client sent too long command \"...\" (128 bytes)"]
    );
}

#[test]
fn pipelined_commands_are_answered_one_by_one() {
    let mut pop3 = setup().connect();
    assert_eq!(pop3.machine.next_action(), Action::NeedInput);
    pop3.machine
        .receive(b"NOOP\r\nUSER bob\r\nPASS pw\r\nSTAT\r\n");
    assert_eq!(
        pop3.machine.next_action(),
        Action::Reply(b"+OK\r\n".to_vec())
    );
    assert_eq!(
        pop3.machine.next_action(),
        Action::Reply(b"+OK\r\n".to_vec())
    );
    assert_eq!(
        pop3.machine.next_action(),
        Action::Authenticate(plain(b"bob", b"pw"))
    );
    assert_eq!(pop3.machine.take_pipelined(), b"STAT\r\n");
}

#[test]
fn auth_failure_and_retry() {
    let mut pop3 = setup().connect();
    pop3.says(b"USER bob\r\n", b"+OK\r\n");
    pop3.logs_in(b"PASS wrong\r\nUSER bob\r\n");
    assert_eq!(
        pop3.machine.auth_failed(b"Invalid login or password", None),
        b"-ERR Invalid login or password\r\n"
    );
    // Back in the start state; the pipelined USER is processed next.
    pop3.says(b"", b"+OK\r\n");
    assert_eq!(pop3.logs_in(b"PASS right\r\n"), plain(b"bob", b"right"));
    assert_eq!(
        pop3.machine.internal_error(),
        b"-ERR internal server error\r\n"
    );
}

#[test]
fn auth_failure_after_a_sasl_login_parses_commands_again() {
    let mut pop3 = setup().connect();
    pop3.logs_in(b"AUTH PLAIN AGJvYgBwdw==\r\n");
    pop3.machine.auth_failed(b"no", None);
    pop3.says(b"NOOP\r\n", b"+OK\r\n");
}

#[test]
fn debug_never_shows_the_password() {
    let mut pop3 = setup().connect();
    pop3.says(b"USER bob\r\n", b"+OK\r\n");
    let credentials = pop3.logs_in(b"PASS hunter2\r\n");
    assert!(!format!("{:?}", pop3.machine).contains("hunter2"));
    assert!(!format!("{credentials:?}").contains("hunter2"));
}

/// freenginx 1.25.5 `max_commands`: the command past the limit gets the invalid-command
/// reply, logs `client sent too many commands` and closes; syntax errors are not counted.
#[test]
fn max_commands_refuses_and_closes_the_command_past_it() {
    let mut pop3 = setup().max_commands(2).connect();
    pop3.says(b"NOOP\r\n", b"+OK\r\n")
        .says(b"FOO\r\n", INVALID)
        .says(b"USER alice\r\n", b"+OK\r\n");
    assert_eq!(pop3.logs(), Vec::<String>::new());
    pop3.expect(b"PASS secret\r\n", INVALID, End::Closed);
    assert_eq!(pop3.logs(), ["client sent too many commands"]);
}
