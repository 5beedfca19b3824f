//! IMAP backend login transcripts (reference §10.2–10.4, §17), exact bytes.

use super::*;
use crate::proto::testkit::{invalid, send, step};
use crate::proto::{LoginFailure, LoginStep};
use std::sync::Arc;

fn backend(tag: &str, capacity: usize) -> ImapBackendLogin {
    ImapBackendLogin::new(tag.into(), b"alice", b"secret", capacity)
}

/// Runs the greeting and both continuations.
fn up_to_password(tag: &str) -> ImapBackendLogin {
    let mut login = backend(tag, 4096);
    step(
        &mut login,
        b"* OK ready\r\n",
        send(format!("{tag}LOGIN {{5}}\r\n").as_bytes()),
    );
    step(&mut login, b"+ go ahead\r\n", send(b"alice {6}\r\n"));
    step(&mut login, b"+ go ahead\r\n", send(b"secret\r\n"));
    login
}

#[test]
fn successful_login_relays_the_tagged_reply() {
    let mut login = backend("a1 ", 4096);
    assert_eq!(login.log_action(), "connecting to upstream");
    step(
        &mut login,
        b"* OK IMAP4rev1 ready\r\n",
        send(b"a1 LOGIN {5}\r\n"),
    );
    assert_eq!(login.log_action(), "sending LOGIN command to upstream");
    step(&mut login, b"+ go ahead\r\n", send(b"alice {6}\r\n"));
    assert_eq!(login.log_action(), "sending user name to upstream");
    step(&mut login, b"+ go ahead\r\n", send(b"secret\r\n"));
    assert_eq!(login.log_action(), "sending password to upstream");
    let reply = b"a1 OK [CAPABILITY IMAP4rev1 IDLE] Logged in\r\n";
    step(&mut login, reply, LoginStep::Done(reply.to_vec()));
}

#[test]
fn replies_arrive_in_pieces() {
    let mut login = backend("t ", 4096);
    step(&mut login, b"*", LoginStep::NeedMore);
    assert_eq!(login.log_action(), "reading response from upstream");
    step(&mut login, b" O", LoginStep::NeedMore);
    step(&mut login, b"K hi\r", LoginStep::NeedMore);
    assert_eq!(login.free_space(), 4096 - 8);
    step(&mut login, b"\n", send(b"t LOGIN {5}\r\n"));
    assert_eq!(login.free_space(), 4096, "emptied after each command");
    // Fewer than 4 bytes are never a reply, even with CRLF.
    step(&mut login, b"+\r\n", LoginStep::NeedMore);
    step(&mut login, b"x\r\n", send(b"alice {6}\r\n"));
}

#[test]
fn only_the_beginning_of_the_buffer_is_checked() {
    let mut login = backend("t ", 4096);
    // The continuation sent along with the greeting is dropped with it.
    step(
        &mut login,
        b"* OK hi\r\n+ early\r\n",
        send(b"t LOGIN {5}\r\n"),
    );
    step(&mut login, b"+ now\r\n", send(b"alice {6}\r\n"));
}

#[test]
fn bad_greeting() {
    let mut login = backend("t ", 4096);
    let reply = b"* BYE too busy, try later\r\n";
    step(
        &mut login,
        reply,
        invalid(reply, "* BYE too busy, try later"),
    );
    assert_eq!(login.log_action(), "reading response from upstream");
}

#[test]
fn refused_continuation() {
    let mut login = backend("t ", 4096);
    step(&mut login, b"* OK\r\n", send(b"t LOGIN {5}\r\n"));
    step(
        &mut login,
        b"t BAD no literals\r\n",
        invalid(b"t BAD no literals\r\n", "t BAD no literals"),
    );
}

#[test]
fn tagged_no_is_relayable_and_logged_without_the_tag() {
    let mut login = up_to_password("t1 ");
    let reply = b"t1 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n";
    step(
        &mut login,
        reply,
        invalid(reply, "NO [AUTHENTICATIONFAILED] Authentication failed."),
    );
    let mut login = up_to_password("t1 ");
    step(&mut login, b"t2 OK\r\n", invalid(b"t2 OK\r\n", "t2 OK"));
}

#[test]
fn one_untagged_line_before_the_tagged_ok_is_relayed() {
    // nginx >= 1.27.3 behaviour (1.22.1 fails here).
    let mut login = up_to_password("a1 ");
    let both = b"* CAPABILITY IMAP4rev1 IDLE\r\na1 OK Logged in\r\n";
    step(&mut login, both, LoginStep::Done(both.to_vec()));

    let mut login = up_to_password("a1 ");
    step(
        &mut login,
        b"* CAPABILITY IMAP4rev1 IDLE\r\n",
        LoginStep::NeedMore,
    );
    step(&mut login, b"a1 ", LoginStep::NeedMore);
    step(
        &mut login,
        b"OK\r\n",
        LoginStep::Done(both[..29].iter().chain(b"a1 OK\r\n").copied().collect()),
    );

    // A second untagged line is not tolerated; the log starts after the first.
    let mut login = up_to_password("a1 ");
    let two = b"* CAPABILITY X\r\n* OK more\r\na1 OK\r\n";
    step(&mut login, two, invalid(two, "* OK more\r\na1 OK"));
}

#[test]
fn too_long_line_is_never_relayed() {
    let mut login = backend("t ", 16);
    step(&mut login, b"* OK 0123456", LoginStep::NeedMore);
    step(
        &mut login,
        b"789abcdef",
        LoginStep::Failed(LoginFailure {
            buffered: Vec::new(),
            log: "upstream sent too long response line: \"* OK 0123456789\"".into(),
        }),
    );
    // A full buffer that ends with CRLF is a reply.
    let mut login = backend("t ", 16);
    step(&mut login, b"* OK 012345678\r\n", send(b"t LOGIN {5}\r\n"));
}

#[test]
fn logs_stop_at_nul_like_nginx() {
    let mut login = backend("t ", 4096);
    let reply = b"* NO\0hidden\r\n";
    step(&mut login, reply, invalid(reply, "* NO"));
}

#[test]
fn pre_auth_machines_build_the_login_with_the_client_tag() {
    let settings = ImapSettings {
        client_buffer: 4096,
        capabilities: vec!["IMAP4rev1".into()],
        auth: crate::config::AuthMethods {
            plain: true,
            ..Default::default()
        },
    };
    let mut imap = ImapPreAuth::new(
        Arc::new(ImapPlan::new(
            &settings,
            Starttls::Off,
            crate::proto::CommandLimits::DEFAULT,
            "mx.test",
        )),
        false,
    );
    imap.receive(b"A7 AUTHENTICATE PLAIN\r\n");
    assert_eq!(imap.next_action(), Action::Reply(b"+ \r\n".to_vec()));
    imap.receive(b"AHUAcA==\r\n");
    assert!(matches!(imap.next_action(), Action::Authenticate(_)));
    let mut login = imap.backend_login(b"user name", b"p \"w\"", 64);
    step_dyn(&mut *login, b"* OK\r\n", b"A7 LOGIN {9}\r\n");
    step_dyn(&mut *login, b"+ \r\n", b"user name {5}\r\n");
    step_dyn(&mut *login, b"+ \r\n", b"p \"w\"\r\n");
    assert_eq!(
        login.receive(b"A7 OK\r\n"),
        LoginStep::Done(b"A7 OK\r\n".to_vec())
    );
}

fn step_dyn(login: &mut dyn BackendLogin, reply: &[u8], sent: &[u8]) {
    assert_eq!(login.receive(reply), send(sent));
}
