//! `cargo +nightly fuzz run smtp_preauth`: the SMTP pre-auth machine over any client
//! byte stream, read in any sizes, with settings from the input (see the layout in
//! `mailproxy_fuzz`). Same invariants as `imap_preauth`, plus: the HELO, MAIL and
//! RCPT texts of `smtp_auth none` carry no CR or LF.
#![no_main]

use std::sync::Arc;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use mailproxy::config::SmtpSettings;
use mailproxy::proto::smtp::{SmtpClient, SmtpOptions, SmtpPlan, SmtpPreAuth, HOST_UNAVAILABLE};

fuzz_target!(|data: &[u8]| {
    let (settings, reads, stream) = mailproxy_fuzz::parse_input(data);
    let options = SmtpOptions {
        settings: SmtpSettings {
            client_buffer: settings.buffer,
            greeting_delay: Duration::ZERO,
            capabilities: vec!["SIZE 10485760".into(), "8BITMIME".into()],
            auth: settings.auth,
        },
        starttls: settings.starttls,
        limits: mailproxy::proto::CommandLimits::errors(settings.max_errors),
        server_name: "mx.test".into(),
        xclient: settings.xclient,
        proxy_auth: settings.proxy_auth,
    };
    let client = SmtpClient {
        addr: [192, 0, 2, 1].into(),
        host: HOST_UNAVAILABLE.into(),
    };
    let mut machine = SmtpPreAuth::new(
        Arc::new(SmtpPlan::new(options)),
        settings.implicit_tls,
        client,
    );
    mailproxy_fuzz::drive(&mut machine, settings.buffer, &settings, reads, stream);
});
