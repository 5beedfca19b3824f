//! The auth_http response: an incremental parser of the response head (reference §9.3)
//! and the verdict drawn from it (§9.4).
//!
//! The parser accepts exactly what nginx's `ngx_mail_auth_http_parse_header_line`
//! accepts: it is fed the bytes as they arrive, within nginx's 1024-byte budget, and
//! reports an error at the same byte nginx would.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use super::error::AuthError;
use super::headers as h;
use crate::config::Protocol;
use crate::proto::line_safe;
use crate::secret::Secret;

/// nginx reads the response into a 1024-byte buffer: status line, headers and the
/// blank line must all fit.
pub const MAX_RESPONSE_HEAD: usize = 1024;

/// The recognised headers of one response, raw (nginx unescapes nothing).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthResponse {
    /// The auth server as nginx names it in messages (`127.0.0.1:9000`, `unix:/path`).
    pub peer: String,
    /// The last `Auth-Status` value other than `OK` and `WAIT`: the failure text. A later
    /// `OK` does not cancel it (nginx keeps the error), a later failure replaces it.
    pub failure: Option<Vec<u8>>,
    /// Some `Auth-Status: WAIT` was seen.
    pub wait_status: bool,
    pub server: Option<Vec<u8>>,
    pub port: Option<Vec<u8>>,
    /// Replaces the login for the backend (and the log).
    pub user: Option<Vec<u8>>,
    /// Replaces the password for the backend.
    pub pass: Option<Secret<Vec<u8>>>,
    /// The last decimal `Auth-Wait` in seconds; non-numeric values are ignored.
    pub wait: Option<u64>,
    /// SMTP: replaces the `535 5.7.0` prefix of the error reply.
    pub error_code: Option<Vec<u8>>,
}

/// Where the backend is. nginx accepts only IP literals in `Auth-Server`; we also
/// accept a host name, resolved by [`super::resolve`] (see docs/nginx-differences.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendAddr {
    Ip(SocketAddr),
    Name(String, u16),
}

/// The verdict of an auth_http response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Log in to `backend`, with the overrides the auth server sent.
    Ok {
        backend: BackendAddr,
        login_override: Option<Vec<u8>>,
        password_override: Option<Secret<Vec<u8>>>,
    },
    /// Refuse the login with `message`. With `wait`, sleep first, then send the error
    /// and let the client retry; without, send the error and close.
    Failure {
        message: Vec<u8>,
        wait: Option<Duration>,
        /// SMTP only (`Auth-Error-Code`); always `None` for IMAP and POP3.
        error_code: Option<Vec<u8>>,
    },
    /// Sleep, then send the same request again (same attempt number). If the response
    /// carried `Auth-User` / `Auth-Pass`, nginx has already replaced the session's
    /// credentials with them, so the repeated request carries those.
    Wait(Duration),
}

impl AuthResponse {
    /// The verdict, in nginx's order of checks. `have_password`: the session still has
    /// a password for the backend without `Auth-Pass` (see
    /// [`super::AuthRequest::password_for_backend`]).
    pub fn outcome(&self, protocol: Protocol, have_password: bool) -> Result<Outcome, AuthError> {
        let wait = self.wait.filter(|&s| s > 0).map(Duration::from_secs);
        // An empty failure text makes an IMAP/POP3 error line (`a NO \r\n`), but nginx
        // builds SMTP's line later from the text alone, and an empty one means no error.
        let failure = self
            .failure
            .as_ref()
            .filter(|text| protocol != Protocol::Smtp || !text.is_empty());
        if let Some(text) = failure {
            return Ok(match wait {
                // nginx's session flag for WAIT survives the failure: after the sleep
                // it queries again instead of sending the error.
                Some(wait) if self.wait_status => Outcome::Wait(wait),
                _ => Outcome::Failure {
                    message: text.clone(),
                    wait,
                    error_code: self
                        .error_code
                        .clone()
                        .filter(|_| protocol == Protocol::Smtp),
                },
            });
        }
        if self.wait_status {
            return Ok(Outcome::Wait(wait.unwrap_or(Duration::ZERO)));
        }
        let peer = || self.peer.clone();
        let nonempty = |v: &Option<Vec<u8>>| v.clone().filter(|v| !v.is_empty());
        let (Some(server), Some(port)) = (nonempty(&self.server), nonempty(&self.port)) else {
            return Err(AuthError::NoServerOrPort { peer: peer() });
        };
        if protocol != Protocol::Smtp && !have_password && self.pass.is_none() {
            return Err(AuthError::NoPassword { peer: peer() });
        }
        let lossy = |v: &[u8]| String::from_utf8_lossy(v).into_owned();
        let Some(host) = parse_host(&server) else {
            return Err(AuthError::InvalidAddress {
                peer: peer(),
                addr: lossy(&server),
            });
        };
        let Some(port_number) = parse_decimal(&port)
            .and_then(|p| u16::try_from(p).ok())
            .filter(|&p| p != 0)
        else {
            return Err(AuthError::InvalidPort {
                peer: peer(),
                port: lossy(&port),
            });
        };
        let backend = match host {
            Host::Ip(ip) => BackendAddr::Ip(SocketAddr::new(ip, port_number)),
            Host::Name(name) => BackendAddr::Name(name, port_number),
        };
        Ok(Outcome::Ok {
            backend,
            login_override: self.line_safe_override(h::AUTH_USER, &self.user)?,
            password_override: self.line_safe_password()?,
        })
    }

    /// `Auth-User` / `Auth-Pass` as the backend login will use them: refused when they
    /// could split a backend command line ([`line_safe`]). The header parser already
    /// ends a value at CR LF or LF and refuses a bare CR, but a NUL gets through.
    fn line_safe_override(
        &self,
        header: &'static str,
        value: &Option<Vec<u8>>,
    ) -> Result<Option<Vec<u8>>, AuthError> {
        match value {
            Some(bytes) if !line_safe::is_line_safe(bytes) => Err(AuthError::UnsafeCredential {
                peer: self.peer.clone(),
                header,
            }),
            _ => Ok(value.clone()),
        }
    }

    /// `Auth-Pass`, checked as [`Self::line_safe_override`] checks `Auth-User`.
    fn line_safe_password(&self) -> Result<Option<Secret<Vec<u8>>>, AuthError> {
        match &self.pass {
            Some(pass) if !line_safe::is_line_safe(pass.expose()) => {
                Err(AuthError::UnsafeCredential {
                    peer: self.peer.clone(),
                    header: h::AUTH_PASS,
                })
            }
            _ => Ok(self.pass.clone()),
        }
    }

    /// Record one complete header line.
    fn apply(&mut self, name: &[u8], value: &[u8]) {
        let is = |header: &str| name.eq_ignore_ascii_case(header.as_bytes());
        let value = value.to_vec();
        if is(h::AUTH_STATUS) {
            if value == h::STATUS_WAIT.as_bytes() {
                self.wait_status = true;
            } else if value != h::STATUS_OK.as_bytes() {
                self.failure = Some(value);
            }
        } else if is(h::AUTH_SERVER) {
            self.server = Some(value);
        } else if is(h::AUTH_PORT) {
            self.port = Some(value);
        } else if is(h::AUTH_USER) {
            self.user = Some(value);
        } else if is(h::AUTH_PASS) {
            self.pass = Some(Secret::new(value));
        } else if is(h::AUTH_WAIT) {
            if let Some(seconds) = parse_decimal(&value) {
                self.wait = Some(seconds);
            }
        } else if is(h::AUTH_ERROR_CODE) {
            self.error_code = Some(value);
        }
    }
}

enum Host {
    Ip(IpAddr),
    Name(String),
}

/// `Auth-Server`: nginx's IPv4 and IPv6 literals, and (our extension) host names.
fn parse_host(text: &[u8]) -> Option<Host> {
    if let Some(v4) = parse_nginx_ipv4(text) {
        return Some(Host::Ip(IpAddr::V4(v4)));
    }
    let text = std::str::from_utf8(text).ok()?;
    if text.contains(':') {
        return text
            .parse::<Ipv6Addr>()
            .ok()
            .map(|v6| Host::Ip(IpAddr::V6(v6)));
    }
    is_host_name(text).then(|| Host::Name(text.to_owned()))
}

/// nginx's `ngx_inet_addr`: four dot-separated decimal octets, leading zeros and empty
/// octets allowed, and 255.255.255.255 refused (it is nginx's error value).
fn parse_nginx_ipv4(text: &[u8]) -> Option<Ipv4Addr> {
    let mut addr: u32 = 0;
    let mut octet: u32 = 0;
    let mut dots = 0;
    for &b in text {
        match b {
            b'0'..=b'9' => {
                octet = octet * 10 + u32::from(b - b'0');
                if octet > 255 {
                    return None;
                }
            }
            b'.' => {
                addr = (addr << 8) + octet;
                octet = 0;
                dots += 1;
                if dots > 3 {
                    return None;
                }
            }
            _ => return None,
        }
    }
    let addr = (addr << 8) + octet;
    (dots == 3 && addr != u32::MAX).then(|| Ipv4Addr::from(addr))
}

/// A DNS name: dot-separated labels of letters, digits, `-` and `_`, with at least one
/// letter somewhere so a mistyped IPv4 address is not taken for a name.
fn is_host_name(text: &str) -> bool {
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && !l.starts_with('-')
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    text.len() <= 253
        && text.bytes().any(|b| b.is_ascii_alphabetic())
        && text.split('.').all(label_ok)
}

/// nginx's `ngx_atoi`: decimal digits only, not empty, at most `i64::MAX`.
fn parse_decimal(text: &[u8]) -> Option<u64> {
    if text.is_empty() {
        return None;
    }
    text.iter().try_fold(0u64, |acc, &b| {
        let digit = u64::from(b.checked_sub(b'0').filter(|&d| d <= 9)?);
        acc.checked_mul(10)?
            .checked_add(digit)
            .filter(|&v| v <= i64::MAX as u64)
    })
}

/// What a response head says about its connection: whether, once the body is read,
/// it can carry another request (`auth_http_keepalive`; nginx never asks).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Framing {
    /// The status line said `HTTP/1.1` or a later 1.x.
    pub http11: bool,
    /// `Connection: close`.
    pub close: bool,
    /// `Connection: keep-alive`.
    pub keep_alive: bool,
    pub content_length: Option<u64>,
    /// A `Transfer-Encoding`, or two different `Content-Length`s: the body's end is not
    /// followed, so the connection is not reused.
    pub unframed: bool,
}

impl Framing {
    /// The body length to read before the connection can be used again, or `None`
    /// when it cannot (the body runs to the close, or the server said so).
    pub fn reusable_after(&self) -> Option<u64> {
        if self.close || self.unframed || !(self.http11 || self.keep_alive) {
            return None;
        }
        self.content_length
    }

    fn note(&mut self, name: &[u8], value: &[u8]) {
        let is = |header: &str| name.eq_ignore_ascii_case(header.as_bytes());
        if is("Connection") {
            for token in value.split(|&b| b == b',') {
                let token = token.trim_ascii();
                self.close |= token.eq_ignore_ascii_case(b"close");
                self.keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if is("Content-Length") {
            let length = parse_decimal(value);
            match (self.content_length, length) {
                (_, None) => self.unframed = true,
                (Some(seen), Some(new)) if seen != new => self.unframed = true,
                (_, Some(new)) => self.content_length = Some(new),
            }
        } else if is("Transfer-Encoding") {
            self.unframed = true;
        }
    }
}

/// Where the parser stands inside the response head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Matching `HTTP/`; the number says how many of its bytes matched so far.
    StatusPrefix(usize),
    /// After `HTTP/`; the number counts the bytes seen of the rest of the line.
    StatusLine(usize),
    StatusCr,
    LineStart,
    Name,
    BeforeValue,
    Value,
    LineCr,
    EndCr,
    Done,
}

/// Incremental parser of one response head.
#[derive(Debug)]
pub struct ResponseParser {
    state: State,
    /// Bytes consumed so far, bounded by [`MAX_RESPONSE_HEAD`].
    seen: usize,
    name: Vec<u8>,
    value: Vec<u8>,
    /// Spaces after the value text, kept only if more text follows (trailing spaces
    /// are trimmed, inner ones kept, tabs are text).
    pending_spaces: usize,
    response: AuthResponse,
    framing: Framing,
}

const STATUS_PREFIX: &[u8] = b"HTTP/";

impl ResponseParser {
    /// `peer`: the auth server as nginx names it, for error messages.
    pub fn new(peer: impl Into<String>) -> Self {
        ResponseParser {
            state: State::StatusPrefix(0),
            seen: 0,
            name: Vec::new(),
            value: Vec::new(),
            pending_spaces: 0,
            response: AuthResponse {
                peer: peer.into(),
                ..AuthResponse::default()
            },
            framing: Framing::default(),
        }
    }

    /// How many more bytes fit in the 1024-byte budget.
    pub fn free_space(&self) -> usize {
        MAX_RESPONSE_HEAD - self.seen
    }

    /// Feed bytes read from the auth server. Returns the response once the blank line
    /// has been seen (exactly once; bytes after it, the body, are ignored), `Ok(None)`
    /// if more is needed. Bytes beyond [`Self::free_space`] are not looked at, as nginx
    /// never reads them; a head that does not end within the budget is
    /// [`AuthError::TooLong`]. After an error the parser is spent: drop it.
    pub fn feed(&mut self, data: &[u8]) -> Result<Option<AuthResponse>, AuthError> {
        if self.state == State::Done {
            return Ok(None);
        }
        let take = data.len().min(self.free_space());
        for &b in &data[..take] {
            self.seen += 1;
            if self.step(b)? {
                self.state = State::Done;
                return Ok(Some(std::mem::take(&mut self.response)));
            }
        }
        if self.free_space() == 0 {
            return Err(AuthError::TooLong { peer: self.peer() });
        }
        Ok(None)
    }

    /// Bytes of the head, blank line included, once the head is complete: what a
    /// read returned beyond them is the start of the body.
    pub fn head_len(&self) -> usize {
        self.seen
    }

    /// What the head said about the connection (complete once the head is).
    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// The error for an auth server that closed before the end of the head.
    pub fn closed_early(&self) -> AuthError {
        AuthError::Closed { peer: self.peer() }
    }

    fn peer(&self) -> String {
        self.response.peer.clone()
    }

    /// One byte; `true` at the end of the head.
    fn step(&mut self, b: u8) -> Result<bool, AuthError> {
        match self.state {
            State::StatusPrefix(matched) => {
                if b == STATUS_PREFIX[matched] {
                    self.state = match matched + 1 {
                        n if n == STATUS_PREFIX.len() => State::StatusLine(0),
                        n => State::StatusPrefix(n),
                    };
                    return Ok(false);
                }
                // Not a status line: everything so far is the first header line.
                self.state = State::LineStart;
                for &replayed in &STATUS_PREFIX[..matched] {
                    self.header_step(replayed)?;
                }
                self.header_step(b)
            }
            State::StatusLine(at) => {
                match b {
                    b'\r' | b'\n' => {
                        // Fewer than three version bytes (`HTTP/1`): not 1.1.
                        self.framing.http11 &= at >= 3;
                        self.state = if b == b'\r' {
                            State::StatusCr
                        } else {
                            State::LineStart
                        };
                    }
                    _ => {
                        // `1.1` and later minors: the line starts with `1.` and a digit
                        // other than 0; `http11` holds "matched so far" until then.
                        let expected = match at {
                            0 => b == b'1',
                            1 => b == b'.',
                            2 => b.is_ascii_digit() && b != b'0',
                            _ => true,
                        };
                        self.framing.http11 = (at == 0 || self.framing.http11) && expected;
                        self.state = State::StatusLine(at + 1);
                    }
                }
                Ok(false)
            }
            State::StatusCr if b == b'\n' => {
                self.state = State::LineStart;
                Ok(false)
            }
            State::StatusCr => Err(AuthError::InvalidResponse { peer: self.peer() }),
            _ => self.header_step(b),
        }
    }

    /// One byte of the header block (nginx's `parse_header_line` rules).
    fn header_step(&mut self, b: u8) -> Result<bool, AuthError> {
        let name_byte = |b: u8| b.is_ascii_alphanumeric() || b == b'-';
        match (self.state, b) {
            (State::LineStart, b'\r') => self.state = State::EndCr,
            (State::LineStart | State::EndCr, b'\n') => return Ok(true),
            (State::LineStart, _) if b.is_ascii_alphanumeric() => {
                self.name.push(b);
                self.state = State::Name;
            }
            (State::Name, b':') => self.state = State::BeforeValue,
            (State::Name, _) if name_byte(b) => self.name.push(b),
            (State::Name | State::BeforeValue | State::Value, b'\r') => self.state = State::LineCr,
            (State::Name | State::BeforeValue | State::Value | State::LineCr, b'\n') => {
                self.end_line()
            }
            (State::BeforeValue, b' ') => {}
            (State::Value, b' ') => self.pending_spaces += 1,
            (State::BeforeValue | State::Value, _) => {
                let spaces = std::mem::take(&mut self.pending_spaces);
                self.value.extend(std::iter::repeat_n(b' ', spaces));
                self.value.push(b);
                self.state = State::Value;
            }
            _ => return Err(AuthError::InvalidHeader { peer: self.peer() }),
        }
        Ok(false)
    }

    fn end_line(&mut self) {
        let name = std::mem::take(&mut self.name);
        let value = std::mem::take(&mut self.value);
        self.pending_spaces = 0;
        self.framing.note(&name, &value);
        self.response.apply(&name, &value);
        self.state = State::LineStart;
    }
}

/// Parse a complete response head held in memory (tests, tools). Running out of bytes
/// before the blank line is [`AuthError::Closed`].
pub fn parse_response(peer: &str, bytes: &[u8]) -> Result<AuthResponse, AuthError> {
    let mut parser = ResponseParser::new(peer);
    match parser.feed(bytes)? {
        Some(response) => Ok(response),
        None => Err(parser.closed_early()),
    }
}

#[cfg(test)]
#[path = "response_tests.rs"]
mod tests;
