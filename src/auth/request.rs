//! The auth_http request: what the proxy knows about a login attempt, and its exact
//! encoding on the wire (reference §9.2).

use std::net::IpAddr;

use super::headers as h;
use crate::config::{AuthHttp, Protocol};
use crate::proto::{AuthMethod, Credentials, SmtpEnvelope};
use crate::secret::Secret;

/// Everything one auth_http request carries. Owned, so a `WAIT` re-query can send the
/// very same request again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthRequest {
    pub method: AuthMethod,
    pub login: Vec<u8>,
    /// The password, or the APOP / CRAM-MD5 digest.
    pub password: Secret<Vec<u8>>,
    /// The APOP / CRAM-MD5 challenge, ending in CRLF as nginx keeps it.
    pub salt: Option<Vec<u8>>,
    pub protocol: Protocol,
    /// `Auth-Login-Attempt`: 1 for the first login of the session.
    pub attempt: u32,
    /// The client address (after realip substitution).
    pub client_ip: IpAddr,
    /// SMTP only: the resolved client name, `[UNAVAILABLE]` or `[TEMPUNAVAIL]`.
    pub client_host: Option<String>,
    /// The addresses of a received PROXY protocol header (not for UNKNOWN/LOCAL).
    pub proxy_protocol: Option<ProxyAddrs>,
    /// SMTP `smtp_auth none`: HELO argument and the MAIL / RCPT command texts.
    pub smtp: Option<SmtpEnvelope>,
    /// Present iff the client connection is TLS.
    pub ssl: Option<SslInfo>,
}

/// Source and destination of a PROXY protocol header. The addresses are text: nginx
/// passes a v1 header's address words on exactly as the sender wrote them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyAddrs {
    pub src_addr: String,
    pub src_port: u16,
    pub dst_addr: String,
    pub dst_port: u16,
}

/// What nginx tells the auth server about a TLS client connection. Each field that is
/// `None` or empty is left out of the request, as nginx leaves out empty values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SslInfo {
    /// e.g. `TLSv1.2`.
    pub protocol: String,
    /// OpenSSL cipher name, e.g. `ECDHE-RSA-AES256-GCM-SHA384`.
    pub cipher: String,
    /// The certificate fields below are filled only when `ssl_verify_client` is not
    /// off, as nginx reads them only then. `SUCCESS`, `FAILED:<reason>` or `NONE`.
    pub verify: Option<String>,
    /// RFC 2253 one-line DN.
    pub subject: Option<String>,
    /// RFC 2253 one-line DN.
    pub issuer: Option<String>,
    /// Uppercase hex.
    pub serial: Option<String>,
    /// Lowercase hex SHA-1 of the DER certificate.
    pub fingerprint: Option<String>,
    /// The PEM certificate; [`AuthRequest::encode`] sends it (escaped) only with
    /// `auth_http_pass_client_cert on`.
    pub cert_pem: Option<String>,
}

impl AuthRequest {
    /// A request for credentials a pre-auth machine produced; the optional parts
    /// (client host, PROXY addresses, TLS) start empty.
    pub fn new(creds: Credentials, protocol: Protocol, attempt: u32, client_ip: IpAddr) -> Self {
        AuthRequest {
            method: creds.method,
            login: creds.login,
            password: creds.password,
            salt: creds.salt,
            protocol,
            attempt,
            client_ip,
            client_host: None,
            proxy_protocol: None,
            smtp: creds.smtp,
            ssl: None,
        }
    }

    /// Whether `Auth-Salt` goes out. Newer nginx's rule (1.29.1+): only for APOP and
    /// CRAM-MD5. 1.22.1 sends it for every method but `plain` whenever the session has a
    /// salt, which leaks a stale POP3 challenge into EXTERNAL requests.
    fn sends_salt(&self) -> bool {
        matches!(self.method, AuthMethod::Apop | AuthMethod::CramMd5)
            && self.salt.as_ref().is_some_and(|s| !s.is_empty())
    }

    /// The password the backend login may use if the auth server sends no `Auth-Pass`:
    /// `None` when nginx would have none. A digest sent along with a salt is useless to
    /// the backend (nginx clears it), and EXTERNAL / `none` carry no password.
    pub fn password_for_backend(&self) -> Option<&[u8]> {
        if self.sends_salt() {
            return None;
        }
        match self.method {
            AuthMethod::Plain => Some(self.password.expose()),
            _ if !self.password.expose().is_empty() => Some(self.password.expose()),
            _ => None,
        }
    }

    /// The request exactly as nginx writes it (reference §9.2), custom headers last.
    pub fn encode(&self, http: &AuthHttp) -> Vec<u8> {
        let mut out = Vec::with_capacity(512);
        out.extend_from_slice(b"GET ");
        out.extend_from_slice(http.uri.as_bytes());
        // nginx's HTTP/1.0, unless connections are kept (`auth_http_keepalive`).
        let version: &[u8] = if http.keeps_connections() {
            b" HTTP/1.1\r\n"
        } else {
            b" HTTP/1.0\r\n"
        };
        out.extend_from_slice(version);
        line(&mut out, h::HOST, http.host_header.as_bytes());
        line(&mut out, h::AUTH_METHOD, self.method.name().as_bytes());
        line(&mut out, h::AUTH_USER, &escape(&self.login));
        line(&mut out, h::AUTH_PASS, &escape(self.password.expose()));
        if self.sends_salt() {
            self.encode_salt(&mut out);
        }
        line(&mut out, h::AUTH_PROTOCOL, self.protocol.name().as_bytes());
        line(
            &mut out,
            h::AUTH_LOGIN_ATTEMPT,
            self.attempt.to_string().as_bytes(),
        );
        line(
            &mut out,
            h::CLIENT_IP,
            self.client_ip.to_string().as_bytes(),
        );
        if let Some(host) = self.client_host.as_deref().filter(|s| !s.is_empty()) {
            line(&mut out, h::CLIENT_HOST, host.as_bytes());
        }
        if let Some(pp) = &self.proxy_protocol {
            encode_proxy_protocol(&mut out, pp);
        }
        if self.method == AuthMethod::None {
            // nginx sends the three lines (possibly empty) for every `none` request.
            let empty = SmtpEnvelope::default();
            let smtp = self.smtp.as_ref().unwrap_or(&empty);
            line(&mut out, h::AUTH_SMTP_HELO, &smtp.helo);
            line(&mut out, h::AUTH_SMTP_FROM, &smtp.from);
            line(&mut out, h::AUTH_SMTP_TO, &smtp.to);
        }
        if let Some(ssl) = &self.ssl {
            encode_ssl(&mut out, ssl, http.pass_client_cert);
        }
        for (name, value) in &http.headers {
            line(&mut out, name, value.as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out
    }

    /// `Auth-Salt: <salt>`: the salt carries its own CRLF. One without it (never made by
    /// our pre-auth machines) gets one, so it cannot swallow the next header.
    fn encode_salt(&self, out: &mut Vec<u8>) {
        let salt = self.salt.as_deref().unwrap_or_default();
        out.extend_from_slice(h::AUTH_SALT.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(salt);
        if !salt.ends_with(b"\r\n") {
            out.extend_from_slice(b"\r\n");
        }
    }
}

fn encode_proxy_protocol(out: &mut Vec<u8>, pp: &ProxyAddrs) {
    line(out, h::PROXY_PROTOCOL_ADDR, pp.src_addr.as_bytes());
    line(
        out,
        h::PROXY_PROTOCOL_PORT,
        pp.src_port.to_string().as_bytes(),
    );
    line(out, h::PROXY_PROTOCOL_SERVER_ADDR, pp.dst_addr.as_bytes());
    line(
        out,
        h::PROXY_PROTOCOL_SERVER_PORT,
        pp.dst_port.to_string().as_bytes(),
    );
}

fn encode_ssl(out: &mut Vec<u8>, ssl: &SslInfo, pass_client_cert: bool) {
    line(out, h::AUTH_SSL, b"on");
    let fields = [
        (h::AUTH_SSL_PROTOCOL, Some(&ssl.protocol)),
        (h::AUTH_SSL_CIPHER, Some(&ssl.cipher)),
        (h::AUTH_SSL_VERIFY, ssl.verify.as_ref()),
        (h::AUTH_SSL_SUBJECT, ssl.subject.as_ref()),
        (h::AUTH_SSL_ISSUER, ssl.issuer.as_ref()),
        (h::AUTH_SSL_SERIAL, ssl.serial.as_ref()),
        (h::AUTH_SSL_FINGERPRINT, ssl.fingerprint.as_ref()),
    ];
    for (name, value) in fields {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            line(out, name, value.as_bytes());
        }
    }
    if pass_client_cert {
        if let Some(pem) = ssl.cert_pem.as_ref().filter(|v| !v.is_empty()) {
            line(out, h::AUTH_SSL_CERT, &escape(pem.as_bytes()));
        }
    }
}

/// `Name: value\r\n`.
fn line(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// nginx's `NGX_ESCAPE_MAIL_AUTH`: control bytes, space and `%` become `%XX` with
/// uppercase hex; every other byte (DEL and 0x80–0xFF too) goes out raw.
pub fn escape(raw: &[u8]) -> Vec<u8> {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = Vec::with_capacity(raw.len());
    for &b in raw {
        if b <= 0x20 || b == b'%' {
            out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]]);
        } else {
            out.push(b);
        }
    }
    out
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;
