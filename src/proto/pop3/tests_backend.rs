//! POP3 backend login transcripts (reference §10.2–10.4, §17), exact bytes.

use super::*;
use crate::proto::testkit::{invalid, send, step};
use crate::proto::{LoginFailure, LoginStep};
use std::sync::Arc;

fn backend(capacity: usize) -> Pop3BackendLogin {
    Pop3BackendLogin::new(b"bob", b"secret", capacity)
}

#[test]
fn successful_login_relays_the_last_reply() {
    let mut login = backend(4096);
    assert_eq!(login.log_action(), "connecting to upstream");
    step(&mut login, b"+OK Dovecot ready.\r\n", send(b"USER bob\r\n"));
    assert_eq!(login.log_action(), "sending user name to upstream");
    step(&mut login, b"+OK\r\n", send(b"PASS secret\r\n"));
    assert_eq!(login.log_action(), "sending password to upstream");
    let reply = b"+OK Logged in.\r\n";
    step(&mut login, reply, LoginStep::Done(reply.to_vec()));
}

#[test]
fn replies_may_arrive_in_pieces_and_extra_lines_are_dropped() {
    let mut login = backend(4096);
    step(&mut login, b"+O", LoginStep::NeedMore);
    assert_eq!(login.log_action(), "reading response from upstream");
    step(&mut login, b"K hi\r", LoginStep::NeedMore);
    step(&mut login, b"\n", send(b"USER bob\r\n"));
    // A second line in the same read is carried along, then dropped with the buffer.
    step(
        &mut login,
        b"+OK\r\n+OK extra\r\n",
        send(b"PASS secret\r\n"),
    );
    step(
        &mut login,
        b"+OK a\r\n-ERR b\r\n",
        LoginStep::Done(b"+OK a\r\n-ERR b\r\n".to_vec()),
    );
}

#[test]
fn only_plus_ok_is_accepted_at_every_step() {
    let mut login = backend(4096);
    step(
        &mut login,
        b"-ERR busy\r\n",
        invalid(b"-ERR busy\r\n", "-ERR busy"),
    );

    let mut login = backend(4096);
    step(&mut login, b"+OK\r\n", send(b"USER bob\r\n"));
    step(&mut login, b"+ok\r\n", invalid(b"+ok\r\n", "+ok"));

    let mut login = backend(4096);
    step(&mut login, b"+OK\r\n", send(b"USER bob\r\n"));
    step(&mut login, b"+OK\r\n", send(b"PASS secret\r\n"));
    let refusal = b"-ERR [AUTH] Authentication failed.\r\n";
    step(
        &mut login,
        refusal,
        invalid(refusal, "-ERR [AUTH] Authentication failed."),
    );
}

#[test]
fn a_reply_longer_than_proxy_buffer_fails_without_relay() {
    let mut login = backend(16);
    step(&mut login, b"+OK 0123456789", LoginStep::NeedMore);
    step(
        &mut login,
        b"abcdef",
        LoginStep::Failed(LoginFailure {
            buffered: Vec::new(),
            log: "upstream sent too long response line: \"+OK 0123456789a\"".into(),
        }),
    );
}

#[test]
fn apop_and_cram_md5_clients_log_in_with_user_pass() {
    let settings = Pop3Settings {
        capabilities: Vec::new(),
        auth: AuthMethods {
            apop: true,
            ..AuthMethods::default()
        },
    };
    let machine = Pop3PreAuth::new(
        Arc::new(Pop3Plan::new(
            &settings,
            Starttls::Off,
            crate::proto::CommandLimits::DEFAULT,
            "mx.test",
        )),
        false,
    );
    let mut login = machine.backend_login(b"bob", b"plainpw", 4096);
    step_boxed(&mut *login, b"+OK\r\n", send(b"USER bob\r\n"));
    step_boxed(&mut *login, b"+OK\r\n", send(b"PASS plainpw\r\n"));
}

fn step_boxed(login: &mut dyn BackendLogin, reply: &[u8], expected: LoginStep) {
    assert_eq!(login.receive(reply), expected);
}
