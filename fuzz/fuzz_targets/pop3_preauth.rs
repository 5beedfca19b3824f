//! `cargo +nightly fuzz run pop3_preauth`: the POP3 pre-auth machine (its fixed
//! 128-byte buffer) over any client byte stream, read in any sizes, with settings from
//! the input (see the layout in `mailproxy_fuzz`). Same invariants as `imap_preauth`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailproxy::config::Pop3Settings;
use mailproxy::proto::pop3::{Pop3Plan, Pop3PreAuth, COMMAND_BUFFER};
use std::sync::Arc;

fuzz_target!(|data: &[u8]| {
    let (settings, reads, stream) = mailproxy_fuzz::parse_input(data);
    let pop3 = Pop3Settings {
        capabilities: vec!["TOP".into(), "USER".into(), "UIDL".into()],
        auth: settings.auth,
    };
    let mut machine = Pop3PreAuth::new(
        Arc::new(Pop3Plan::new(
            &pop3,
            settings.starttls,
            mailproxy::proto::CommandLimits::errors(settings.max_errors),
            "mx.test",
        )),
        settings.implicit_tls,
    );
    mailproxy_fuzz::drive(&mut machine, COMMAND_BUFFER, &settings, reads, stream);
});
