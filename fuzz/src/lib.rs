//! What the fuzz targets share: the input layout that carries settings and read sizes
//! next to the bytes, the driver that runs a pre-auth machine the way
//! `session::dialogue` does, and the invariant checks.
//!
//! # Input layout of the pre-auth targets
//!
//! ```text
//! byte 0   starttls (bits 0-1: off, on, only, on), implicit TLS (bit 2),
//!          client buffer size (bits 3-6, an index into BUFFER_SIZES; IMAP and SMTP)
//! byte 1   auth methods: plain, login, apop, cram-md5, external, none (bits 0-5),
//!          SMTP xclient (bit 6), proxy_smtp_auth (bit 7)
//! byte 2   max_errors (byte % 16)
//! byte 3   what auth_http answers the n-th login: bit n % 8 set = refused with
//!          Auth-Wait (the dialogue goes on), clear = logged in (the session ends)
//! byte 4   k, then k read-size bytes (see [`Reads`])
//! rest     the client's byte stream
//! ```
//!
//! Missing header bytes read as 0, so every input means something.

use mailproxy::config::{AuthMethods, Starttls};
use mailproxy::proto::{line_safe, Action, Credentials, PreAuth};

/// Client buffer sizes byte 0 can pick (nginx accepts any size, 0 included).
pub const BUFFER_SIZES: [usize; 16] = [
    4096, 64, 1, 2, 7, 16, 31, 128, 255, 512, 1024, 0, 33, 100, 2048, 8192,
];

/// The pre-auth settings a fuzz input chose.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub starttls: Starttls,
    pub implicit_tls: bool,
    pub buffer: usize,
    pub auth: AuthMethods,
    pub xclient: bool,
    pub proxy_auth: bool,
    pub max_errors: u32,
    decisions: u8,
}

/// How the client's bytes arrive: read sizes used in turn. A size byte gives
/// `(b & 0x7f) + 1` bytes, 0x7f meaning "whatever fits"; its high bit says the read
/// completes right after a reply, before the machine looks at its buffer again (the
/// driver's non-blocking read after each write) instead of when it waits for input.
#[derive(Debug, Clone)]
pub struct Reads<'a> {
    sizes: &'a [u8],
    next: usize,
}

impl<'a> Reads<'a> {
    /// Reads `k` and then `k` size bytes from the start of `data`; the rest is returned.
    pub fn parse(data: &'a [u8]) -> (Reads<'a>, &'a [u8]) {
        let k = usize::from(data.first().copied().unwrap_or(0));
        let rest = data.get(1..).unwrap_or_default();
        let k = k.min(rest.len());
        let (sizes, rest) = rest.split_at(k);
        (Reads { sizes, next: 0 }, rest)
    }

    fn peek(&self) -> u8 {
        if self.sizes.is_empty() {
            0x7f
        } else {
            self.sizes[self.next % self.sizes.len()]
        }
    }

    /// The next read arrives right after a reply.
    pub fn next_is_eager(&self) -> bool {
        self.peek() & 0x80 != 0
    }

    /// The size of the next read (consumes it).
    pub fn take(&mut self) -> usize {
        let b = self.peek() & 0x7f;
        self.next += 1;
        if b == 0x7f {
            usize::MAX
        } else {
            usize::from(b) + 1
        }
    }
}

/// Splits a pre-auth input into its settings, read sizes and client stream.
pub fn parse_input(data: &[u8]) -> (Settings, Reads<'_>, &[u8]) {
    let byte = |i: usize| data.get(i).copied().unwrap_or(0);
    let (a, b) = (byte(0), byte(1));
    let starttls = match a & 3 {
        0 => Starttls::Off,
        2 => Starttls::Only,
        _ => Starttls::On,
    };
    let bit = |n: u8| b & (1 << n) != 0;
    let settings = Settings {
        starttls,
        implicit_tls: a & 4 != 0,
        buffer: BUFFER_SIZES[usize::from((a >> 3) & 15)],
        auth: AuthMethods {
            plain: bit(0),
            login: bit(1),
            apop: bit(2),
            cram_md5: bit(3),
            external: bit(4),
            none: bit(5),
        },
        xclient: bit(6),
        proxy_auth: bit(7),
        max_errors: u32::from(byte(2) % 16),
        decisions: byte(3),
    };
    let (reads, stream) = Reads::parse(data.get(4..).unwrap_or_default());
    (settings, reads, stream)
}

/// A line the proxy writes to a client: not empty, ends with CRLF, and no line of it
/// (split on CRLF) holds a CR or an LF of its own.
pub fn assert_reply(what: &str, bytes: &[u8]) {
    assert!(
        bytes.ends_with(b"\r\n"),
        "{what} not CRLF-terminated: {:?}",
        String::from_utf8_lossy(bytes)
    );
    let body = &bytes[..bytes.len() - 2];
    for line in split_crlf(body) {
        assert!(
            !line.contains(&b'\r') && !line.contains(&b'\n'),
            "{what} has a bare CR or LF: {:?}",
            String::from_utf8_lossy(bytes)
        );
    }
}

/// `bytes` split on every CRLF.
pub fn split_crlf(bytes: &[u8]) -> Vec<&[u8]> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i + 1 < bytes.len() {
        if bytes[i] == b'\r' && bytes[i + 1] == b'\n' {
            lines.push(&bytes[start..i]);
            i += 2;
            start = i;
        } else {
            i += 1;
        }
    }
    lines.push(&bytes[start..]);
    lines
}

/// A log line goes to the error log as one line: no CR or LF.
pub fn assert_log_line(what: &str, line: &str) {
    assert!(
        !line.contains(['\r', '\n']),
        "{what} log line breaks the log: {line:?}"
    );
}

/// The injection rule on what a machine hands to auth_http (issue #11).
pub fn assert_credentials(credentials: &Credentials) {
    assert!(
        line_safe::is_line_safe(&credentials.login),
        "login with CR/LF/NUL: {credentials:?}"
    );
    assert!(
        line_safe::is_line_safe(credentials.password.expose()),
        "password with CR/LF/NUL: {credentials:?}"
    );
    assert_eq!(
        line_safe::check_credentials(credentials),
        Ok(()),
        "{credentials:?}"
    );
    if let Some(smtp) = &credentials.smtp {
        for value in [&smtp.helo, &smtp.from, &smtp.to] {
            assert!(
                !value.contains(&b'\r') && !value.contains(&b'\n'),
                "SMTP envelope with CR/LF: {smtp:?}"
            );
        }
    }
}

/// The `Auth-Status` text the driver is given for a refused login.
pub const REFUSAL: &[u8] = b"Invalid login or password";
/// The `Auth-Error-Code` given with it (SMTP only uses it).
pub const ERROR_CODE: &[u8] = b"535 5.7.8";

/// Runs `machine` (whose command buffer holds `bound` bytes) over `stream` read in
/// `reads`, as `session::dialogue` drives it, asserting the invariants after every
/// step. Returns how many logins were attempted.
pub fn drive(
    machine: &mut dyn PreAuth,
    bound: usize,
    settings: &Settings,
    mut reads: Reads<'_>,
    mut stream: &[u8],
) -> usize {
    assert_reply("greeting", &machine.greeting());
    assert_eq!(
        machine.free_space(),
        bound,
        "a new machine's buffer is empty"
    );
    let mut logins = 0;
    // How many actions one buffer's worth of input may cause at most: every action
    // but NeedInput consumes at least one byte or ends the session, plus the few that
    // follow a STARTTLS or a refused login.
    let budget = 2 * bound + 16;
    let mut actions = 0;
    loop {
        actions += 1;
        assert!(actions <= budget, "{actions} actions without reading");
        let action = machine.next_action();
        drain_logs(machine);
        assert!(machine.free_space() <= bound, "free space above the bound");
        let replied = match action {
            Action::NeedInput => {
                assert!(machine.free_space() > 0, "NeedInput with a full buffer");
                // The driver waits for the next read; EOF ends the session.
                if stream.is_empty() {
                    return logins;
                }
                feed(machine, bound, &mut reads, &mut stream);
                actions = 0;
                false
            }
            Action::Reply(bytes) => {
                assert_reply("Reply", &bytes);
                true
            }
            Action::ReplyAndClose(bytes) => {
                assert_reply("ReplyAndClose", &bytes);
                return logins;
            }
            Action::StartTls(bytes) => {
                assert_reply("StartTls", &bytes);
                assert_eq!(
                    machine.free_space(),
                    bound,
                    "bytes after STARTTLS must be dropped"
                );
                machine.tls_established();
                false
            }
            Action::Authenticate(credentials) => {
                assert_credentials(&credentials);
                let refused = settings.decisions & (1 << (logins % 8)) != 0;
                logins += 1;
                if !refused {
                    // Logged in: the pipelined bytes go to the backend after its login.
                    let login = machine.backend_login(
                        &credentials.login,
                        credentials.password.expose(),
                        4096,
                    );
                    assert!(login.free_space() <= 4096);
                    let pipelined = machine.take_pipelined();
                    assert!(pipelined.len() <= bound);
                    assert_eq!(machine.free_space(), bound, "pipelined bytes taken");
                    return logins;
                }
                let line = machine.auth_failed(REFUSAL, Some(ERROR_CODE));
                assert_reply("auth_failed", &line);
                true
            }
        };
        // After a write the driver tries one read that does not wait.
        if replied && reads.next_is_eager() && !stream.is_empty() && machine.free_space() > 0 {
            feed(machine, bound, &mut reads, &mut stream);
            actions = 0;
        }
    }
}

/// One read: at most what the buffer takes (the driver never offers more).
fn feed(machine: &mut dyn PreAuth, bound: usize, reads: &mut Reads<'_>, stream: &mut &[u8]) {
    let room = machine.free_space();
    assert!(room <= bound, "free space {room} above the bound {bound}");
    let n = reads.take().min(room).min(stream.len());
    machine.receive(&stream[..n]);
    *stream = &stream[n..];
    assert_eq!(
        machine.free_space(),
        room - n,
        "receive took other than it was given"
    );
}

fn drain_logs(machine: &mut dyn PreAuth) {
    while let Some(line) = machine.take_log() {
        assert_log_line("pre-auth", &line);
    }
}
