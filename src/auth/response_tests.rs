//! Every row of reference §9.3 / §9.4, byte by byte and in pieces.

use super::*;

const PEER: &str = "127.0.0.1:9000";

fn parse(bytes: &[u8]) -> Result<AuthResponse, AuthError> {
    parse_response(PEER, bytes)
}

fn ok(bytes: &[u8]) -> AuthResponse {
    parse(bytes).unwrap()
}

fn outcome(bytes: &[u8], protocol: Protocol) -> Result<Outcome, AuthError> {
    ok(bytes).outcome(protocol, true)
}

fn err_text(result: Result<impl std::fmt::Debug, AuthError>) -> String {
    result.unwrap_err().to_string()
}

fn ip_backend(s: &str) -> BackendAddr {
    BackendAddr::Ip(s.parse().unwrap())
}

#[test]
fn status_line_is_skipped_and_its_code_ignored() {
    let r = ok(b"HTTP/1.0 500 Oops\r\nAuth-Status: OK\r\nAuth-Server: 10.0.0.1\r\nAuth-Port: 143\r\n\r\nbody");
    assert_eq!(r.server.as_deref(), Some(&b"10.0.0.1"[..]));
    assert_eq!(
        r.outcome(Protocol::Imap, true).unwrap(),
        Outcome::Ok {
            backend: ip_backend("10.0.0.1:143"),
            login_override: None,
            password_override: None,
        }
    );
}

#[test]
fn headers_without_status_line() {
    let r = ok(b"Auth-Status: Bad\nAuth-Wait: 2\n\n");
    assert_eq!(r.failure.as_deref(), Some(&b"Bad"[..]));
    assert_eq!(r.wait, Some(2));
    // "HTT" then a header byte: the partial prefix is the start of a header name.
    let r = ok(b"HTTX: 1\r\nAuth-Port: 7\r\n\r\n");
    assert_eq!(r.port.as_deref(), Some(&b"7"[..]));
}

#[test]
fn bare_lf_status_line_and_cr_without_lf() {
    assert!(ok(b"HTTP/1.1 200\nAuth-Server: 1.2.3.4\n\n")
        .server
        .is_some());
    assert_eq!(
        err_text(parse(b"HTTP/1.0 200 OK\rX")),
        "auth http server 127.0.0.1:9000 sent invalid response"
    );
}

#[test]
fn invalid_header_bytes() {
    let invalid = "auth http server 127.0.0.1:9000 sent invalid header in response";
    for bad in [
        &b"Auth_Status: OK\r\n\r\n"[..],
        b"Auth Status: OK\r\n\r\n",
        b"-Auth: x\r\n\r\n",
        b" Auth-Status: OK\r\n\r\n",
        b"Auth-Status: OK\rX\r\n\r\n",
        b"Auth-Status: OK\r\n\rX",
        b"garbage garbage\r\n\r\n",
    ] {
        assert_eq!(
            err_text(parse(bad)),
            invalid,
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn value_trimming_keeps_tabs_and_inner_spaces() {
    let r = ok(b"Auth-Status:    Invalid  login \t  \r\nAuth-User:\tbob\t\r\n\r\n");
    assert_eq!(r.failure.as_deref(), Some(&b"Invalid  login \t"[..]));
    assert_eq!(r.user.as_deref(), Some(&b"\tbob\t"[..]));
}

#[test]
fn name_without_colon_is_an_empty_header() {
    let r = ok(b"Auth-Status\r\nAuth-Pass\n\r\n");
    assert_eq!(r.failure.as_deref(), Some(&b""[..]));
    assert_eq!(
        r.pass.as_ref().map(|p| p.expose().as_slice()),
        Some(&b""[..])
    );
}

#[test]
fn names_match_case_insensitively_values_do_not() {
    let r = ok(b"auth-status: ok\r\nAUTH-SERVER: ::1\r\nauth-port: 110\r\n\r\n");
    assert_eq!(r.failure.as_deref(), Some(&b"ok"[..]));
    assert_eq!(
        r.outcome(Protocol::Imap, true).unwrap(),
        Outcome::Failure {
            message: b"ok".to_vec(),
            wait: None,
            error_code: None
        }
    );
}

#[test]
fn last_header_wins_but_ok_does_not_cancel_failure() {
    let r = ok(b"Auth-Port: 1\r\nAuth-Port: 2\r\nAuth-Status: first\r\nAuth-Status: second\r\nAuth-Status: OK\r\n\r\n");
    assert_eq!(r.port.as_deref(), Some(&b"2"[..]));
    assert_eq!(r.failure.as_deref(), Some(&b"second"[..]));
}

#[test]
fn missing_auth_status_is_success() {
    let o = outcome(
        b"Auth-Server: 127.0.0.1\r\nAuth-Port: 143\r\n\r\n",
        Protocol::Imap,
    )
    .unwrap();
    assert!(matches!(o, Outcome::Ok { .. }), "{o:?}");
}

#[test]
fn empty_status_fails_imap_and_pop3_but_not_smtp() {
    let resp = b"Auth-Status: \r\nAuth-Server: 127.0.0.1\r\nAuth-Port: 25\r\n\r\n";
    for protocol in [Protocol::Imap, Protocol::Pop3] {
        assert_eq!(
            outcome(resp, protocol).unwrap(),
            Outcome::Failure {
                message: Vec::new(),
                wait: None,
                error_code: None
            }
        );
    }
    assert!(matches!(
        outcome(resp, Protocol::Smtp).unwrap(),
        Outcome::Ok { .. }
    ));
}

#[test]
fn failure_with_wait_and_smtp_error_code() {
    let resp = b"Auth-Status: Go away\r\nAuth-Wait: 3\r\nAuth-Error-Code: 550 5.7.1\r\n\r\n";
    assert_eq!(
        outcome(resp, Protocol::Smtp).unwrap(),
        Outcome::Failure {
            message: b"Go away".to_vec(),
            wait: Some(Duration::from_secs(3)),
            error_code: Some(b"550 5.7.1".to_vec()),
        }
    );
    // IMAP ignores Auth-Error-Code; Auth-Wait: 0 and junk mean no wait.
    let resp = b"Auth-Status: No\r\nAuth-Wait: 5\r\nAuth-Wait: x1\r\nAuth-Error-Code: 550\r\n\r\n";
    assert_eq!(
        outcome(resp, Protocol::Imap).unwrap(),
        Outcome::Failure {
            message: b"No".to_vec(),
            wait: Some(Duration::from_secs(5)),
            error_code: None
        }
    );
    let resp = b"Auth-Status: No\r\nAuth-Wait: 0\r\n\r\n";
    assert!(matches!(
        outcome(resp, Protocol::Pop3).unwrap(),
        Outcome::Failure { wait: None, .. }
    ));
}

#[test]
fn wait_status_requeries() {
    assert_eq!(
        outcome(b"Auth-Status: WAIT\r\nAuth-Wait: 2\r\n\r\n", Protocol::Imap).unwrap(),
        Outcome::Wait(Duration::from_secs(2))
    );
    assert_eq!(
        outcome(b"Auth-Status: WAIT\r\n\r\n", Protocol::Imap).unwrap(),
        Outcome::Wait(Duration::ZERO)
    );
    // A later OK does not clear WAIT either.
    assert_eq!(
        outcome(
            b"Auth-Status: WAIT\r\nAuth-Status: OK\r\n\r\n",
            Protocol::Pop3
        )
        .unwrap(),
        Outcome::Wait(Duration::ZERO)
    );
}

#[test]
fn server_port_and_password_requirements() {
    let missing = "auth http server 127.0.0.1:9000 did not send server or port";
    assert_eq!(
        err_text(outcome(b"Auth-Status: OK\r\n\r\n", Protocol::Imap)),
        missing
    );
    assert_eq!(
        err_text(outcome(
            b"Auth-Server: 1.2.3.4\r\nAuth-Port:\r\n\r\n",
            Protocol::Smtp
        )),
        missing
    );
    let resp = ok(b"Auth-Server: 1.2.3.4\r\nAuth-Port: 110\r\n\r\n");
    assert_eq!(
        err_text(resp.outcome(Protocol::Pop3, false)),
        "auth http server 127.0.0.1:9000 did not send password"
    );
    assert!(
        resp.outcome(Protocol::Smtp, false).is_ok(),
        "SMTP needs no password"
    );
    let resp =
        ok(b"Auth-Server: 1.2.3.4\r\nAuth-Port: 110\r\nAuth-Pass: \r\nAuth-User: real\r\n\r\n");
    assert_eq!(
        resp.outcome(Protocol::Pop3, false).unwrap(),
        Outcome::Ok {
            backend: ip_backend("1.2.3.4:110"),
            login_override: Some(b"real".to_vec()),
            password_override: Some(Vec::new().into()),
        }
    );
}

/// Issue #11: `Auth-User` / `Auth-Pass` become backend command lines, so one with CR,
/// LF or NUL is a broken answer (the client gets the internal error, the backend is
/// never contacted). On the wire only a NUL gets that far; CR and LF are checked too.
#[test]
fn auth_user_and_pass_with_cr_lf_or_nul_are_refused() {
    let head = b"Auth-Server: 1.2.3.4\r\nAuth-Port: 110\r\n";
    let wire = |extra: &[u8]| ok(&[&head[..], extra, b"\r\n"].concat());
    let refused =
        |header: &str| format!("auth http server {PEER} sent invalid {header}: CR, LF or NUL");
    for protocol in [Protocol::Imap, Protocol::Pop3, Protocol::Smtp] {
        let user = wire(b"Auth-User: alice\0x\r\nAuth-Pass: pw\r\n");
        assert_eq!(err_text(user.outcome(protocol, true)), refused("Auth-User"));
        let pass = wire(b"Auth-Pass: p\0w\r\n");
        assert_eq!(err_text(pass.outcome(protocol, true)), refused("Auth-Pass"));
        for bad in [&b"x\r\nUSER victim"[..], b"victim\r", b"victim\ny"] {
            let mut user = wire(b"");
            user.user = Some(bad.to_vec());
            assert_eq!(err_text(user.outcome(protocol, true)), refused("Auth-User"));
            let mut pass = wire(b"");
            pass.pass = Some(bad.into());
            let text = err_text(pass.outcome(protocol, true));
            assert_eq!(text, refused("Auth-Pass"));
            assert!(!text.contains("victim"), "the value is never shown: {text}");
        }
        // Other control bytes go through (nginx escapes nothing here, the backend
        // login sends them as they are).
        let tab = wire(b"Auth-User: a\tb\x01\r\n").outcome(protocol, true);
        assert!(matches!(tab, Ok(Outcome::Ok { login_override: Some(v), .. }) if v == b"a\tb\x01"));
    }
    // The wire: a bare CR in a value is already an invalid header.
    assert_eq!(
        err_text(parse(&[&head[..], b"Auth-User: a\rb\r\n\r\n"].concat())),
        format!("auth http server {PEER} sent invalid header in response")
    );
}

#[test]
fn addresses_nginx_accepts_and_host_names() {
    let backend = |server: &str| {
        let resp = format!("Auth-Server: {server}\r\nAuth-Port: 0143\r\n\r\n");
        match outcome(resp.as_bytes(), Protocol::Imap) {
            Ok(Outcome::Ok { backend, .. }) => Ok(backend),
            other => Err(err_text(other)),
        }
    };
    assert_eq!(backend("::1"), Ok(ip_backend("[::1]:143")));
    assert_eq!(backend("010.0.0.1").unwrap(), ip_backend("10.0.0.1:143"));
    assert_eq!(backend("1..2.3").unwrap(), ip_backend("1.0.2.3:143"));
    assert_eq!(
        backend("localhost").unwrap(),
        BackendAddr::Name("localhost".into(), 143)
    );
    assert_eq!(
        backend("legacy-1.example.com").unwrap(),
        BackendAddr::Name("legacy-1.example.com".into(), 143)
    );
    for bad in [
        "1.2.3.256",
        "255.255.255.255",
        "1.2.3",
        "[::1]",
        "a b",
        "-x.example",
        "::g",
        "a..b",
    ] {
        assert_eq!(
            backend(bad),
            Err(format!(
                "auth http server 127.0.0.1:9000 sent invalid server address:\"{bad}\""
            ))
        );
    }
}

#[test]
fn invalid_ports() {
    for bad in ["0", "65536", "-1", "14 3", "x", "99999999999999999999"] {
        let resp = format!("Auth-Server: 10.0.0.1\r\nAuth-Port: {bad}\r\n\r\n");
        assert_eq!(
            err_text(outcome(resp.as_bytes(), Protocol::Imap)),
            format!("auth http server 127.0.0.1:9000 sent invalid server port:\"{bad}\"")
        );
    }
    let resp = b"Auth-Server: 10.0.0.1\r\nAuth-Port: 65535\r\n\r\n";
    assert!(outcome(resp, Protocol::Imap).is_ok());
}

#[test]
fn fed_byte_by_byte_equals_fed_at_once() {
    let whole = b"HTTP/1.0 200 OK\r\nAuth-Status: Try  later \r\nAuth-Wait: 4\r\n\r\nignored";
    let mut parser = ResponseParser::new(PEER);
    let mut result = None;
    for (i, b) in whole.iter().enumerate() {
        if let Some(r) = parser.feed(std::slice::from_ref(b)).unwrap() {
            result = Some((i, r));
            break;
        }
    }
    let (end, r) = result.expect("complete");
    assert_eq!(end, whole.len() - "ignored".len() - 1);
    assert_eq!(r, ok(whole));
    assert_eq!(r.failure.as_deref(), Some(&b"Try  later"[..]));
}

#[test]
fn incomplete_and_closed() {
    let mut parser = ResponseParser::new(PEER);
    assert_eq!(
        parser
            .feed(b"HTTP/1.0 200 OK\r\nAuth-Status: OK\r\n")
            .unwrap(),
        None
    );
    assert_eq!(
        parser.closed_early().to_string(),
        "auth http server 127.0.0.1:9000 closed the connection before the end of the response"
    );
    assert!(matches!(parse(b""), Err(AuthError::Closed { .. })));
}

#[test]
fn head_must_end_within_1024_bytes() {
    // Exactly 1024 bytes including the blank line: accepted.
    let filler = |n: usize| format!("X-Pad: {}\r\n", "a".repeat(n - 9));
    let head = |total: usize| {
        let body = "Auth-Server: 1.2.3.4\r\nAuth-Port: 25\r\n";
        let pad = total - body.len() - 2;
        format!("{body}{}\r\n", filler(pad))
    };
    let exact = head(1024);
    assert_eq!(exact.len(), 1024);
    assert!(parse(exact.as_bytes()).is_ok());
    let over = head(1025);
    assert!(matches!(
        parse(over.as_bytes()),
        Err(AuthError::TooLong { .. })
    ));
    // Fed in pieces the limit is the same.
    let mut parser = ResponseParser::new(PEER);
    assert_eq!(parser.feed(&over.as_bytes()[..1000]).unwrap(), None);
    assert_eq!(parser.free_space(), 24);
    assert!(matches!(
        parser.feed(&over.as_bytes()[1000..]),
        Err(AuthError::TooLong { .. })
    ));
}

#[test]
fn debug_hides_pass() {
    let r = ok(b"Auth-Pass: hunter2\r\nAuth-Server: 1.2.3.4\r\nAuth-Port: 1\r\n\r\n");
    assert!(!format!("{r:?}").contains("hunter2"));
    assert!(!format!("{:?}", r.outcome(Protocol::Imap, true).unwrap()).contains("hunter2"));
}

#[test]
fn nginx_status_accumulation_quirks() {
    // SMTP: a later empty Auth-Status replaces the failure text and so cancels it.
    let resp =
        b"Auth-Status: Bad\r\nAuth-Status: \r\nAuth-Server: 1.2.3.4\r\nAuth-Port: 25\r\n\r\n";
    assert!(matches!(
        outcome(resp, Protocol::Smtp).unwrap(),
        Outcome::Ok { .. }
    ));
    assert!(
        matches!(outcome(resp, Protocol::Imap).unwrap(), Outcome::Failure { ref message, .. } if message.is_empty())
    );
    // WAIT plus a failure with a wait: nginx sleeps, then queries again.
    let resp = b"Auth-Status: WAIT\r\nAuth-Status: Bad\r\nAuth-Wait: 2\r\n\r\n";
    assert_eq!(
        outcome(resp, Protocol::Imap).unwrap(),
        Outcome::Wait(Duration::from_secs(2))
    );
    // ... and without a wait it sends the error and closes.
    let resp = b"Auth-Status: WAIT\r\nAuth-Status: Bad\r\n\r\n";
    assert!(matches!(
        outcome(resp, Protocol::Imap).unwrap(),
        Outcome::Failure { wait: None, .. }
    ));
}

fn framing_of(head: &[u8]) -> Framing {
    let mut parser = ResponseParser::new("x");
    parser.feed(head).unwrap().expect("complete head");
    parser.framing()
}

#[test]
fn framing_says_when_a_connection_can_be_kept() {
    let kept = framing_of(b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n");
    assert!(kept.http11);
    assert_eq!(kept.reusable_after(), Some(12));
    assert_eq!(
        framing_of(b"HTTP/1.2 200 OK\r\nContent-Length: 0\r\n\r\n").reusable_after(),
        Some(0)
    );
    // HTTP/1.0 only with an explicit keep-alive.
    assert_eq!(
        framing_of(b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\n").reusable_after(),
        None
    );
    let ka = b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 3\r\n\r\n";
    assert_eq!(framing_of(ka).reusable_after(), Some(3));
    for head in [
        &b"HTTP/1.1 200 OK\r\nConnection: keep-alive, close\r\nContent-Length: 3\r\n\r\n"[..],
        b"HTTP/1.1 200 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
        b"HTTP/1\r\nContent-Length: 3\r\n\r\n",
        b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\n",
        b"Auth-Status: OK\r\nContent-Length: 3\r\n\r\n",
    ] {
        assert_eq!(
            framing_of(head).reusable_after(),
            None,
            "{}",
            String::from_utf8_lossy(head)
        );
    }
}

#[test]
fn head_len_marks_where_the_body_starts() {
    let mut parser = ResponseParser::new("x");
    let bytes = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbody";
    assert!(parser.feed(bytes).unwrap().is_some());
    assert_eq!(parser.head_len(), bytes.len() - 4);
}
