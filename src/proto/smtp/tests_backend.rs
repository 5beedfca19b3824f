//! SMTP backend login transcripts (reference §10.2, §10.4, §10.5, §17).

use super::backend::xtext;
use super::tests::client;
use super::*;
use crate::proto::LoginStep;
use std::sync::Arc;

fn plan() -> BackendPlan {
    BackendPlan {
        server_name: "mx.test".into(),
        xclient: true,
        proxy_auth: false,
        esmtp: true,
        helo: b"client.example".to_vec(),
        envelope: None,
        client: client(),
        login: b"alice".to_vec(),
        password: Some(b"secret".to_vec()),
    }
}

/// Plays `script`: each backend reply and the command it must trigger (`""` for
/// the final step, whose relayed bytes are returned).
fn run(plan: BackendPlan, script: &[(&str, &str)]) -> LoginStep {
    let mut login = SmtpBackendLogin::new(plan, 4096);
    let last = script.len() - 1;
    for (i, (reply, command)) in script.iter().enumerate() {
        let step = login.receive(reply.as_bytes());
        if i == last {
            return step;
        }
        assert_eq!(
            step,
            LoginStep::Send(command.as_bytes().to_vec()),
            "after {reply:?}"
        );
    }
    unreachable!()
}

fn done(bytes: &str) -> LoginStep {
    LoginStep::Done(bytes.as_bytes().to_vec())
}

#[test]
fn xclient_after_client_ehlo() {
    let step = run(
        plan(),
        &[
            ("220 b ESMTP\r\n", "EHLO mx.test\r\n"),
            (
                "250-b\r\n250 PIPELINING\r\n",
                "XCLIENT ADDR=127.0.0.1 LOGIN=alice NAME=[UNAVAILABLE]\r\n",
            ),
            ("220 b ESMTP\r\n", "EHLO client.example\r\n"),
            ("250 b\r\n", ""),
        ],
    );
    assert_eq!(step, done("235 2.0.0 OK\r\n"));
}

#[test]
fn xclient_without_client_helo_and_ipv6() {
    let mut p = plan();
    p.helo.clear();
    p.client.addr = "2001:db8::1".parse().unwrap();
    p.client.host = "[TEMPUNAVAIL]".into();
    p.login = b"user name+x=y".to_vec();
    let step = run(
        p,
        &[
            ("220 b\r\n", "EHLO mx.test\r\n"),
            (
                "250 b\r\n",
                "XCLIENT ADDR=IPV6:2001:db8::1 LOGIN=user+20name+2Bx+3Dy NAME=[TEMPUNAVAIL]\r\n",
            ),
            ("250 ok\r\n", ""),
        ],
    );
    assert_eq!(step, done("235 2.0.0 OK\r\n"));
}

#[test]
fn no_xclient_helo_and_none_replay() {
    let mut p = plan();
    p.xclient = false;
    p.esmtp = false;
    p.envelope = Some((b"MAIL FROM:<a@b>".to_vec(), b"RCPT TO:<reject@d>".to_vec()));
    let step = run(
        p,
        &[
            ("220 b\r\n", "HELO mx.test\r\n"),
            ("250 b\r\n", "MAIL FROM:<a@b>\r\n"),
            ("250 2.1.0 Ok\r\n", "RCPT TO:<reject@d>\r\n"),
            ("554 5.7.1 Relay access denied\r\n", ""),
        ],
    );
    assert_eq!(step, done("554 5.7.1 Relay access denied\r\n"));
}

#[test]
fn xclient_none_replay() {
    let mut p = plan();
    p.login.clear();
    p.helo = b"x".to_vec();
    p.envelope = Some((b"MAIL FROM:<a@b>".to_vec(), b"RCPT TO:<c@d>".to_vec()));
    let step = run(
        p,
        &[
            ("220 b\r\n", "EHLO mx.test\r\n"),
            ("250 b\r\n", "XCLIENT ADDR=127.0.0.1 NAME=[UNAVAILABLE]\r\n"),
            ("220 b\r\n", "EHLO x\r\n"),
            ("250 b\r\n", "MAIL FROM:<a@b>\r\n"),
            ("250 ok\r\n", "RCPT TO:<c@d>\r\n"),
            ("250 2.1.5 Ok\r\n", ""),
        ],
    );
    assert_eq!(step, done("250 2.1.5 Ok\r\n"));
}

#[test]
fn proxy_auth_plain_and_login_fallback() {
    let mut p = plan();
    p.proxy_auth = true;
    p.xclient = false;
    p.login = b"smtp user".to_vec();
    p.password = Some(b"pw".to_vec());
    let step = run(
        p,
        &[
            ("220 b\r\n", "EHLO mx.test\r\n"),
            (
                "250-b\r\n250 AUTH PLAIN LOGIN\r\n",
                "AUTH PLAIN AHNtdHAgdXNlcgBwdw==\r\n",
            ),
            ("235 2.7.0 ok\r\n", ""),
        ],
    );
    assert_eq!(step, done("235 2.0.0 OK\r\n"));
    let mut p = plan();
    p.proxy_auth = true;
    let step = run(
        p,
        &[
            ("220 b\r\n", "EHLO mx.test\r\n"),
            (
                "250-b\r\n250 AUTH PLAIN\r\n",
                "XCLIENT ADDR=127.0.0.1 NAME=[UNAVAILABLE]\r\n",
            ),
            ("220 b\r\n", "EHLO client.example\r\n"),
            (
                "250-b\r\n250-AUTH LOGIN CRAM-MD5\r\n250 8BITMIME\r\n",
                "AUTH LOGIN\r\n",
            ),
            ("334 VXNlcm5hbWU6\r\n", "YWxpY2U=\r\n"),
            ("334 UGFzc3dvcmQ6\r\n", "c2VjcmV0\r\n"),
            ("235 2.7.0 Authentication successful\r\n", ""),
        ],
    );
    assert_eq!(step, done("235 2.0.0 OK\r\n"));
}

#[test]
fn proxy_auth_without_password_fails() {
    let mut p = plan();
    p.proxy_auth = true;
    p.xclient = false;
    p.password = None;
    let step = run(p, &[("220 b\r\n", "EHLO mx.test\r\n"), ("250 b\r\n", "")]);
    let LoginStep::Failed(failure) = step else {
        panic!("{step:?}")
    };
    assert_eq!(failure.log, "no password available");
    assert!(failure.buffered.is_empty());
}

#[test]
fn multiline_waits_for_the_last_line() {
    let mut login = SmtpBackendLogin::new(plan(), 4096);
    assert_eq!(login.receive(b"220-b\r\n"), LoginStep::NeedMore);
    assert_eq!(login.receive(b"220-more\r\n"), LoginStep::NeedMore);
    assert_eq!(
        login.receive(b"220 done\r\n"),
        LoginStep::Send(b"EHLO mx.test\r\n".to_vec())
    );
}

#[test]
fn unexpected_replies() {
    let mut login = SmtpBackendLogin::new(plan(), 4096);
    let LoginStep::Failed(failure) = login.receive(b"554 go away\r\n") else {
        panic!()
    };
    assert_eq!(
        failure.log,
        "upstream sent invalid response: \"554 go away\""
    );
    assert_eq!(failure.buffered, b"554 go away\r\n");
    let mut login = SmtpBackendLogin::new(plan(), 4096);
    login.receive(b"220 b\r\n");
    let LoginStep::Failed(failure) = login.receive(b"220 b\r\n") else {
        panic!()
    };
    assert_eq!(failure.log, "upstream sent invalid response: \"220 b\"");
    let mut login = SmtpBackendLogin::new(plan(), 8);
    let LoginStep::Failed(failure) = login.receive(b"220 long line") else {
        panic!()
    };
    assert_eq!(
        failure.log,
        "upstream sent too long response line: \"220 lon\""
    );
}

#[test]
fn xtext_encoding() {
    assert_eq!(xtext(b"alice@example.org"), b"alice@example.org");
    assert_eq!(
        xtext(b"a b+c=d\x7f\xc3\xa9\x01"),
        b"a+20b+2Bc+3Dd+7F+C3+A9+01"
    );
}

#[test]
fn machine_builds_the_plan() {
    let mut o = super::tests::options();
    o.settings.auth.none = true;
    let mut s = SmtpPreAuth::new(Arc::new(SmtpPlan::new(o)), false, client());
    s.receive(b"HELO h\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n");
    while !matches!(s.next_action(), Action::Authenticate(_)) {}
    let mut login = s.backend_login(b"", b"", 4096);
    assert_eq!(
        login.receive(b"220 b\r\n"),
        LoginStep::Send(b"EHLO mx.test\r\n".to_vec())
    );
    login.receive(b"250 b\r\n");
    assert_eq!(
        login.receive(b"250 b\r\n"),
        LoginStep::Send(b"HELO h\r\n".to_vec())
    );
}
