//! `cargo +nightly fuzz run auth_response`: any auth_http response head, fed to
//! `ResponseParser` in read sizes taken from the input, then judged by
//! `AuthResponse::outcome` for each protocol.
//!
//! Input: byte 0 bit 0 = the session still has a password for the backend; then `k`
//! and `k` read sizes (as the pre-auth targets, see `mailproxy_fuzz::Reads`); the rest
//! is what the auth server sends.
//!
//! Asserts: the parser never looks past its 1024-byte budget; feeding in pieces gives
//! what one `parse_response` of the whole gives; a finished head is exactly its first
//! `head_len` bytes; an `Ok` outcome's `Auth-User` / `Auth-Pass` overrides are
//! line-safe; a failure's text makes a CRLF-clean error line in each protocol's
//! machine; no error message breaks its log line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailproxy::auth::{parse_response, AuthError, Outcome, ResponseParser, MAX_RESPONSE_HEAD};
use mailproxy::config::{
    AuthMethods, ImapSettings, Pop3Settings, Protocol, SmtpSettings, Starttls,
};
use mailproxy::proto::imap::{ImapPlan, ImapPreAuth};
use mailproxy::proto::line_safe::is_line_safe;
use mailproxy::proto::pop3::{Pop3Plan, Pop3PreAuth};
use mailproxy::proto::smtp::{SmtpClient, SmtpOptions, SmtpPlan, SmtpPreAuth};
use mailproxy::proto::PreAuth;
use mailproxy_fuzz::{assert_log_line, assert_reply, Reads};
use std::sync::Arc;

const PEER: &str = "127.0.0.1:9000";

/// Feeds `bytes` as the auth client does: at most `free_space` per read, until the
/// head is complete, the parser fails, or the bytes run out (the server closed).
fn feed_in_pieces(
    mut reads: Reads<'_>,
    bytes: &[u8],
) -> (
    Result<mailproxy::auth::AuthResponse, AuthError>,
    ResponseParser,
) {
    let mut parser = ResponseParser::new(PEER);
    let mut rest = bytes;
    loop {
        let room = parser.free_space();
        assert!(room <= MAX_RESPONSE_HEAD);
        assert_eq!(parser.head_len() + room, MAX_RESPONSE_HEAD);
        if rest.is_empty() {
            let closed = parser.closed_early();
            return (Err(closed), parser);
        }
        let n = reads.take().min(rest.len());
        let seen = parser.head_len();
        let result = parser.feed(&rest[..n]);
        assert!(
            parser.head_len() - seen <= n.min(room),
            "looked past the read or the budget"
        );
        rest = &rest[n..];
        match result {
            Ok(Some(response)) => return (Ok(response), parser),
            Ok(None) => {}
            Err(e) => return (Err(e), parser),
        }
    }
}

fn machine(protocol: Protocol) -> Box<dyn PreAuth> {
    let auth = AuthMethods {
        plain: true,
        ..AuthMethods::default()
    };
    match protocol {
        Protocol::Imap => {
            let settings = ImapSettings {
                client_buffer: 64,
                capabilities: Vec::new(),
                auth,
            };
            let plan = ImapPlan::new(&settings, Starttls::Off, mailproxy::proto::CommandLimits::DEFAULT, "mx.test");
            Box::new(ImapPreAuth::new(Arc::new(plan), false))
        }
        Protocol::Pop3 => {
            let settings = Pop3Settings {
                capabilities: Vec::new(),
                auth,
            };
            let plan = Pop3Plan::new(&settings, Starttls::Off, mailproxy::proto::CommandLimits::DEFAULT, "mx.test");
            Box::new(Pop3PreAuth::new(Arc::new(plan), false))
        }
        Protocol::Smtp => Box::new(SmtpPreAuth::new(
            Arc::new(SmtpPlan::new(SmtpOptions {
                settings: SmtpSettings {
                    client_buffer: 64,
                    greeting_delay: Default::default(),
                    capabilities: Vec::new(),
                    auth,
                },
                starttls: Starttls::Off,
                limits: mailproxy::proto::CommandLimits::DEFAULT,
                server_name: "mx.test".into(),
                xclient: false,
                proxy_auth: false,
            })),
            false,
            SmtpClient {
                addr: [192, 0, 2, 1].into(),
                host: "[UNAVAILABLE]".into(),
            },
        )),
    }
}

fuzz_target!(|data: &[u8]| {
    let have_password = data.first().is_some_and(|b| b & 1 != 0);
    let (reads, bytes) = Reads::parse(data.get(1..).unwrap_or_default());

    let (pieces, parser) = feed_in_pieces(reads, bytes);
    let whole = parse_response(PEER, bytes);
    match (&pieces, &whole) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "pieces and whole disagree"),
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
        _ => panic!("pieces {pieces:?} but whole {whole:?}"),
    }
    let response = match pieces {
        Ok(response) => response,
        Err(e) => {
            assert_log_line("auth error", &e.to_string());
            return;
        }
    };
    let head = parser.head_len();
    assert!(head <= bytes.len() && head <= MAX_RESPONSE_HEAD);
    assert_eq!(
        parse_response(PEER, &bytes[..head]).ok().as_ref(),
        Some(&response)
    );
    let pass = response.pass.as_ref().map(|p| p.expose().clone());
    for value in [
        &response.failure,
        &response.user,
        &pass,
        &response.error_code,
    ] {
        if let Some(v) = value {
            assert!(
                !v.contains(&b'\r') && !v.contains(&b'\n'),
                "header value with CR/LF"
            );
        }
    }

    for protocol in [Protocol::Imap, Protocol::Pop3, Protocol::Smtp] {
        match response.outcome(protocol, have_password) {
            Ok(Outcome::Ok {
                login_override,
                password_override,
                ..
            }) => {
                let password = password_override.as_ref().map(|p| p.expose());
                for value in login_override.iter().chain(password) {
                    assert!(
                        is_line_safe(value),
                        "unsafe Auth-User/Auth-Pass got through"
                    );
                }
            }
            Ok(Outcome::Failure {
                message,
                error_code,
                ..
            }) => {
                assert!(protocol == Protocol::Smtp || error_code.is_none());
                let line = machine(protocol).auth_failed(&message, error_code.as_deref());
                assert_reply("auth_failed", &line);
            }
            Ok(Outcome::Wait(_)) => {}
            Err(e) => assert_log_line("outcome error", &e.to_string()),
        }
    }
});
