//! Client certificates after the handshake (`ssl_verify_client`, reference §13.3).
//!
//! The handshake itself never fails on a certificate (the verify callback set in
//! [`super::tls`] accepts everything, as nginx's does); OpenSSL only records the
//! verdict. The session then asks [`check`] whether the client may go on, and
//! [`describe`] what the auth server is told in the `Auth-SSL-*` headers.

use foreign_types::ForeignTypeRef;
use openssl::hash::MessageDigest;
use openssl::ssl::SslRef;
use openssl::x509::{X509Ref, X509VerifyResult};

use super::tls_lib::rfc2253;
use super::tls_words::verify_error;

use crate::auth::SslInfo;
use crate::config::VerifyClient;

/// Why a client may not go on after the handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertRefusal {
    /// Its certificate did not verify (and the mode does not tolerate the error).
    Invalid { code: i32, reason: &'static str },
    /// `ssl_verify_client on` and no certificate was sent.
    Missing,
}

impl CertRefusal {
    /// nginx's info-level log line.
    pub fn log_message(&self) -> String {
        match self {
            CertRefusal::Invalid { code, reason } => {
                format!("client SSL certificate verify error: ({code}:{reason})")
            }
            CertRefusal::Missing => "client sent no required SSL certificate".to_string(),
        }
    }
}

// X509_V_ERR_* codes `optional_no_ca` tolerates (`ngx_ssl_verify_error_optional`).
const DEPTH_ZERO_SELF_SIGNED_CERT: i32 = 18;
const SELF_SIGNED_CERT_IN_CHAIN: i32 = 19;
const UNABLE_TO_GET_ISSUER_CERT_LOCALLY: i32 = 20;
const UNABLE_TO_VERIFY_LEAF_SIGNATURE: i32 = 21;
const CERT_UNTRUSTED: i32 = 27;

fn tolerated_without_ca(code: i32) -> bool {
    matches!(
        code,
        DEPTH_ZERO_SELF_SIGNED_CERT
            | SELF_SIGNED_CERT_IN_CHAIN
            | UNABLE_TO_GET_ISSUER_CERT_LOCALLY
            | UNABLE_TO_VERIFY_LEAF_SIGNATURE
            | CERT_UNTRUSTED
    )
}

/// `ngx_mail_verify_cert`: may this TLS client go on under `mode`?
pub fn check(ssl: &SslRef, mode: VerifyClient) -> Result<(), CertRefusal> {
    if mode == VerifyClient::Off {
        return Ok(());
    }
    let result = ssl.verify_result();
    // Code and text in OpenSSL 3.0's words, whichever library verified.
    let (code, reason) = verify_error(result.as_raw());
    if result != X509VerifyResult::OK
        && !(mode == VerifyClient::OptionalNoCa && tolerated_without_ca(code))
    {
        return Err(CertRefusal::Invalid { code, reason });
    }
    if mode == VerifyClient::On && ssl.peer_certificate().is_none() {
        return Err(CertRefusal::Missing);
    }
    Ok(())
}

/// Drops the connection's session from the server cache, so a refused client cannot
/// resume its way past the check (nginx does the same).
pub fn forget_session(ssl: &SslRef) {
    let ssl = ssl.as_ptr();
    // SAFETY: `ssl` is a live connection; SSL_get_session and SSL_get_SSL_CTX return
    // borrowed pointers valid for its lifetime (or null, which is checked), and
    // SSL_CTX_remove_session only unlinks the session from the cache.
    unsafe {
        let session = openssl_sys::SSL_get_session(ssl);
        let ctx = openssl_sys::SSL_get_SSL_CTX(ssl);
        if !session.is_null() && !ctx.is_null() {
            openssl_sys::SSL_CTX_remove_session(ctx, session);
        }
    }
}

/// What nginx's auth_http module tells about a TLS client: protocol and cipher
/// always; the certificate lines only when `ssl_verify_client` is not off.
pub fn describe(ssl: &SslRef, mode: VerifyClient) -> SslInfo {
    let mut info = SslInfo {
        protocol: ssl.version_str().to_string(),
        cipher: ssl
            .current_cipher()
            .map(|c| c.name().to_string())
            .unwrap_or_default(),
        ..SslInfo::default()
    };
    if mode == VerifyClient::Off {
        return info;
    }
    let Some(cert) = ssl.peer_certificate() else {
        info.verify = Some("NONE".into());
        return info;
    };
    let result = ssl.verify_result();
    info.verify = Some(if result == X509VerifyResult::OK {
        "SUCCESS".into()
    } else {
        format!("FAILED:{}", verify_error(result.as_raw()).1)
    });
    info.subject = rfc2253(cert.subject_name());
    info.issuer = rfc2253(cert.issuer_name());
    info.serial = Some(serial_hex(&cert));
    info.fingerprint = cert
        .digest(MessageDigest::sha1())
        .ok()
        .map(|d| d.iter().map(|b| format!("{b:02x}")).collect());
    info.cert_pem = cert
        .to_pem()
        .ok()
        .map(|pem| String::from_utf8_lossy(&pem).into_owned());
    info
}

/// `i2a_ASN1_INTEGER`: uppercase hex, two digits per byte, `00` for zero.
fn serial_hex(cert: &X509Ref) -> String {
    let Ok(bn) = cert.serial_number().to_bn() else {
        return String::new();
    };
    let bytes = bn.to_vec();
    if bytes.is_empty() {
        return "00".into();
    }
    let sign = if bn.is_negative() { "-" } else { "" };
    let hex: String = bytes.iter().map(|b| format!("{b:02X}")).collect();
    format!("{sign}{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_log_lines_are_nginx_s() {
        let invalid = CertRefusal::Invalid {
            code: 18,
            reason: "self-signed certificate",
        };
        assert_eq!(
            invalid.log_message(),
            "client SSL certificate verify error: (18:self-signed certificate)"
        );
        assert_eq!(
            CertRefusal::Missing.log_message(),
            "client sent no required SSL certificate"
        );
    }

    #[test]
    fn only_optional_no_ca_tolerates_missing_trust() {
        for code in [18, 19, 20, 21, 27] {
            assert!(tolerated_without_ca(code));
        }
        // CERT_HAS_EXPIRED, CERT_REVOKED: never tolerated.
        assert!(!tolerated_without_ca(10));
        assert!(!tolerated_without_ca(23));
    }
}
