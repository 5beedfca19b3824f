//! `cargo +nightly fuzz run imap_preauth`: the IMAP pre-auth machine over any client
//! byte stream, read in any sizes, with settings from the input (see the layout in
//! `mailproxy_fuzz`). Asserts, after every step: the command buffer stays within its
//! size, every reply is CRLF lines without a bare CR or LF, every login handed to
//! auth_http is line-safe, no log line breaks the log, and the machine always reads
//! or acts.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailproxy::config::ImapSettings;
use mailproxy::proto::imap::{ImapPlan, ImapPreAuth};
use std::sync::Arc;

fuzz_target!(|data: &[u8]| {
    let (settings, reads, stream) = mailproxy_fuzz::parse_input(data);
    let imap = ImapSettings {
        client_buffer: settings.buffer,
        capabilities: vec!["IMAP4".into(), "IMAP4rev1".into(), "UIDPLUS".into()],
        auth: settings.auth,
    };
    let mut machine = ImapPreAuth::new(
        Arc::new(ImapPlan::new(
            &imap,
            settings.starttls,
            mailproxy::proto::CommandLimits::errors(settings.max_errors),
            "mx.test",
        )),
        settings.implicit_tls,
    );
    mailproxy_fuzz::drive(&mut machine, settings.buffer, &settings, reads, stream);
});
