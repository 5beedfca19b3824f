//! Header names of the auth_http protocol, in the spelling nginx sends.
//!
//! One list for both sides: [`super::AuthRequest::encode`] writes the request names,
//! [`super::ResponseParser`] matches the response names (case-insensitively), and
//! `mailproxy-auth` reads and writes the same constants.

// Request headers (proxy → auth server), in the order nginx sends them.
pub const HOST: &str = "Host";
pub const AUTH_METHOD: &str = "Auth-Method";
pub const AUTH_USER: &str = "Auth-User";
pub const AUTH_PASS: &str = "Auth-Pass";
pub const AUTH_SALT: &str = "Auth-Salt";
pub const AUTH_PROTOCOL: &str = "Auth-Protocol";
pub const AUTH_LOGIN_ATTEMPT: &str = "Auth-Login-Attempt";
pub const CLIENT_IP: &str = "Client-IP";
pub const CLIENT_HOST: &str = "Client-Host";
pub const PROXY_PROTOCOL_ADDR: &str = "Proxy-Protocol-Addr";
pub const PROXY_PROTOCOL_PORT: &str = "Proxy-Protocol-Port";
pub const PROXY_PROTOCOL_SERVER_ADDR: &str = "Proxy-Protocol-Server-Addr";
pub const PROXY_PROTOCOL_SERVER_PORT: &str = "Proxy-Protocol-Server-Port";
pub const AUTH_SMTP_HELO: &str = "Auth-SMTP-Helo";
pub const AUTH_SMTP_FROM: &str = "Auth-SMTP-From";
pub const AUTH_SMTP_TO: &str = "Auth-SMTP-To";
pub const AUTH_SSL: &str = "Auth-SSL";
pub const AUTH_SSL_PROTOCOL: &str = "Auth-SSL-Protocol";
pub const AUTH_SSL_CIPHER: &str = "Auth-SSL-Cipher";
pub const AUTH_SSL_VERIFY: &str = "Auth-SSL-Verify";
pub const AUTH_SSL_SUBJECT: &str = "Auth-SSL-Subject";
pub const AUTH_SSL_ISSUER: &str = "Auth-SSL-Issuer";
pub const AUTH_SSL_SERIAL: &str = "Auth-SSL-Serial";
pub const AUTH_SSL_FINGERPRINT: &str = "Auth-SSL-Fingerprint";
pub const AUTH_SSL_CERT: &str = "Auth-SSL-Cert";

// Response headers (auth server → proxy). `Auth-User` and `Auth-Pass` are shared with
// the request.
pub const AUTH_STATUS: &str = "Auth-Status";
pub const AUTH_SERVER: &str = "Auth-Server";
pub const AUTH_PORT: &str = "Auth-Port";
pub const AUTH_WAIT: &str = "Auth-Wait";
pub const AUTH_ERROR_CODE: &str = "Auth-Error-Code";

/// The `Auth-Status` value that lets the login through.
pub const STATUS_OK: &str = "OK";
/// The `Auth-Status` value that asks the proxy to repeat the query after `Auth-Wait`.
pub const STATUS_WAIT: &str = "WAIT";
