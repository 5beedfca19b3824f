//! OpenSSL 3.0's words for what the TLS library reports.
//!
//! nginx 1.22.1 on Debian 12 runs on OpenSSL 3.0, and its texts reach clients' auth
//! servers (`Auth-SSL-Verify: FAILED:self-signed certificate`), log filters
//! (`client SSL certificate verify error: (18:self-signed certificate)`) and admins
//! (`... failed (SSL: error:0A00010B:SSL routines::wrong version number)`). AWS-LC says
//! the same things in OpenSSL 1.1's words, packs its error codes differently and names
//! its reasons like macros. This module turns both kinds of text into OpenSSL 3.0's:
//!
//! - certificate verify results: [`verify_error`] (code and text, by OpenSSL 3.0's
//!   numbering, which AWS-LC shares up to code 64);
//! - error-queue entries: [`ErrorText`] (`error:XXXXXXXX:library::reason:data`), with
//!   the reasons both libraries name alike from the generated table in `tls_errors.rs`.
//!
//! On a system-OpenSSL build the library's own words are used (they are 3.0's); the
//! tables are still compiled and their tests check them against that library.

use std::borrow::Cow;

/// OpenSSL 3.0's `X509_verify_cert_error_string`, by code (0..=94), from Debian 12's
/// libcrypto.so.3.
pub const VERIFY_ERRORS: [&str; 95] = [
    "ok",
    "unspecified certificate verification error",
    "unable to get issuer certificate",
    "unable to get certificate CRL",
    "unable to decrypt certificate's signature",
    "unable to decrypt CRL's signature",
    "unable to decode issuer public key",
    "certificate signature failure",
    "CRL signature failure",
    "certificate is not yet valid",
    "certificate has expired",
    "CRL is not yet valid",
    "CRL has expired",
    "format error in certificate's notBefore field",
    "format error in certificate's notAfter field",
    "format error in CRL's lastUpdate field",
    "format error in CRL's nextUpdate field",
    "out of memory",
    "self-signed certificate",
    "self-signed certificate in certificate chain",
    "unable to get local issuer certificate",
    "unable to verify the first certificate",
    "certificate chain too long",
    "certificate revoked",
    "issuer certificate doesn't have a public key",
    "path length constraint exceeded",
    "unsuitable certificate purpose",
    "certificate not trusted",
    "certificate rejected",
    "subject issuer mismatch",
    "authority and subject key identifier mismatch",
    "authority and issuer serial number mismatch",
    "key usage does not include certificate signing",
    "unable to get CRL issuer certificate",
    "unhandled critical extension",
    "key usage does not include CRL signing",
    "unhandled critical CRL extension",
    "invalid non-CA certificate (has CA markings)",
    "proxy path length constraint exceeded",
    "key usage does not include digital signature",
    "proxy certificates not allowed, please set the appropriate flag",
    "invalid or inconsistent certificate extension",
    "invalid or inconsistent certificate policy extension",
    "no explicit policy",
    "different CRL scope",
    "unsupported extension feature",
    "RFC 3779 resource not subset of parent's resources",
    "permitted subtree violation",
    "excluded subtree violation",
    "name constraints minimum and maximum not supported",
    "application verification failure",
    "unsupported name constraint type",
    "unsupported or invalid name constraint syntax",
    "unsupported or invalid name syntax",
    "CRL path validation error",
    "path loop",
    "Suite B: certificate version invalid",
    "Suite B: invalid public key algorithm",
    "Suite B: invalid ECC curve",
    "Suite B: invalid signature algorithm",
    "Suite B: curve not allowed for this LOS",
    "Suite B: cannot sign P-384 with P-256",
    "hostname mismatch",
    "email address mismatch",
    "IP address mismatch",
    "no matching DANE TLSA records",
    "EE certificate key too weak",
    "CA certificate key too weak",
    "CA signature digest algorithm too weak",
    "invalid certificate verification context",
    "issuer certificate lookup error",
    "Certificate Transparency required, but no valid SCTs found",
    "proxy subject name violation",
    "OCSP verification needed",
    "OCSP verification failed",
    "OCSP unknown cert",
    "Cannot find certificate signature algorithm",
    "subject signature algorithm and issuer public key algorithm mismatch",
    "cert info signature and signature algorithm mismatch",
    "invalid CA certificate",
    "Path length invalid for non-CA cert",
    "Path length given without key usage keyCertSign",
    "Key usage keyCertSign invalid for non-CA cert",
    "Issuer name empty",
    "Subject name empty",
    "Missing Authority Key Identifier",
    "Missing Subject Key Identifier",
    "Empty Subject Alternative Name extension",
    "Subject empty and Subject Alt Name extension not critical",
    "Basic Constraints of CA cert not marked critical",
    "Authority Key Identifier marked critical",
    "Subject Key Identifier marked critical",
    "CA cert does not include key usage extension",
    "Using cert extension requires at least X509v3",
    "Certificate public key has explicit ECC parameters",
];

/// OpenSSL 3.0's text for an unknown verify code.
const UNKNOWN_VERIFY_ERROR: &str = "unknown certificate verification error";

/// An AWS-LC `X509_V_ERR_*` code as OpenSSL 3.0 numbers it. Codes 0..=64 are the same in
/// both; AWS-LC renumbered the few it kept after that (x509.h of each).
pub fn verify_code_from_aws_lc(code: i32) -> i32 {
    match code {
        65 => 69, // X509_V_ERR_INVALID_CALL
        66 => 70, // X509_V_ERR_STORE_LOOKUP
        68 => 66, // X509_V_ERR_EE_KEY_TOO_SMALL
        69 => 67, // X509_V_ERR_CA_KEY_TOO_SMALL
        70 => 68, // X509_V_ERR_CA_MD_TOO_WEAK
        72 => 94, // X509_V_ERR_EC_KEY_EXPLICIT_PARAMS
        other => other,
    }
}

/// OpenSSL 3.0's text for a verify code in its numbering.
pub fn verify_text(code: i32) -> &'static str {
    usize::try_from(code)
        .ok()
        .and_then(|i| VERIFY_ERRORS.get(i).copied())
        .unwrap_or(UNKNOWN_VERIFY_ERROR)
}

/// The verify result the library reported (`SSL_get_verify_result`), as OpenSSL 3.0
/// reports it: its code and text.
pub fn verify_error(library_code: i32) -> (i32, &'static str) {
    if cfg!(feature = "aws-lc") {
        let code = verify_code_from_aws_lc(library_code);
        // AWS-LC's X509_V_ERR_NAME_CONSTRAINTS_WITHOUT_SANS (67) has no OpenSSL 3.0
        // counterpart; its own text is the honest one.
        if library_code == 67 {
            return (67, "issuer has name constraints but leaf has no SANs");
        }
        (code, verify_text(code))
    } else {
        // SAFETY: X509_verify_cert_error_string answers any code (unknown ones with a
        // fixed text); the result is only read.
        let text =
            unsafe { openssl::x509::X509VerifyResult::from_raw(library_code) }.error_string();
        (library_code, text)
    }
}

/// AWS-LC library number → OpenSSL 3.0 library number and name (`ERR_lib_error_string`).
fn library_from_aws_lc(lib: i32) -> (u32, &'static str) {
    match lib {
        2 => (2, "system library"),
        3 => (3, "bignum routines"),
        4 => (4, "rsa routines"),
        5 => (5, "Diffie-Hellman routines"),
        // AWS-LC's EVP, digest and cipher libraries are OpenSSL's EVP.
        6 | 29 | 30 => (6, "digital envelope routines"),
        7 => (7, "memory buffer routines"),
        8 => (8, "object identifier routines"),
        9 => (9, "PEM routines"),
        10 => (10, "dsa routines"),
        11 => (11, "x509 certificate routines"),
        12 => (13, "asn1 encoding routines"),
        13 => (14, "configuration file routines"),
        14 => (15, "common libcrypto routines"),
        15 => (16, "elliptic curve routines"),
        16 => (20, "SSL routines"),
        17 => (32, "BIO routines"),
        18 => (33, "PKCS7 routines"),
        // OpenSSL files PKCS#8 decryption under PKCS12.
        19 => (35, "PKCS12 routines"),
        20 => (34, "X509 V3 routines"),
        21 => (36, "random number generator"),
        22 => (38, "engine routines"),
        23 => (39, "OCSP routines"),
        24 => (40, "UI routines"),
        26 => (42, "ECDSA routines"),
        27 => (43, "ECDH routines"),
        28 => (48, "HMAC routines"),
        _ => (1, "unknown library"),
    }
}

/// OpenSSL 3.0's `ERR_R_<LIB>_LIB` text for a library number in its numbering.
fn common_lib_reason(lib3: u32) -> Option<&'static str> {
    Some(match lib3 {
        2 => "system lib",
        3 => "BN lib",
        4 => "RSA lib",
        5 => "DH lib",
        6 => "EVP lib",
        7 => "BUF lib",
        8 => "OBJ lib",
        9 => "PEM lib",
        10 => "DSA lib",
        11 => "X509 lib",
        13 => "ASN1 lib",
        15 => "CRYPTO lib",
        16 => "EC lib",
        32 => "BIO lib",
        33 => "PKCS7 lib",
        34 => "X509V3 lib",
        38 => "ENGINE lib",
        40 => "UI lib",
        42 => "ECDSA lib",
        _ => return None,
    })
}

/// OpenSSL 3.0's `ERR_RFLAG_COMMON` and `ERR_RFLAG_FATAL`.
const RFLAG_COMMON: u32 = 0x8_0000;
const RFLAG_FATAL: u32 = 0x4_0000;
/// OpenSSL 3.0's `ERR_SYSTEM_FLAG`: a system error is this plus `errno`.
const SYSTEM_FLAG: u32 = 0x8000_0000;

/// One error-queue entry in OpenSSL 3.0's words: what `ERR_error_string_n` prints
/// (`error:0A00010B:SSL routines::wrong version number`) and its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorText {
    pub code: u32,
    pub library: Cow<'static, str>,
    pub reason: Cow<'static, str>,
    pub data: Option<String>,
}

impl ErrorText {
    /// `error:%08X:lib::reason` (OpenSSL 3.0 leaves the function field empty).
    pub fn error_string(&self) -> String {
        format!("error:{:08X}:{}::{}", self.code, self.library, self.reason)
    }

    /// The entry as one of several in nginx's `ngx_ssl_error` text: the error
    /// string, then `:` and the data if there is any.
    pub fn with_data(&self) -> String {
        match &self.data {
            Some(d) if !d.is_empty() => format!("{}:{d}", self.error_string()),
            _ => self.error_string(),
        }
    }

    /// An error the library put on its queue.
    pub fn from_library(e: &openssl::error::Error) -> ErrorText {
        let data = e.data().map(str::to_string);
        if cfg!(feature = "aws-lc") {
            // AWS-LC packs `lib << 24 | reason` (err.h ERR_PACK).
            // `c_ulong` in OpenSSL's bindings, `u32` in AWS-LC's.
            #[allow(clippy::unnecessary_cast)]
            let packed = e.code() as u32;
            from_aws_lc(
                (packed >> 24) as i32,
                (packed & 0xfff) as i32,
                e.reason().unwrap_or(""),
                data,
            )
        } else {
            Self::from_openssl(e, data)
        }
    }

    /// OpenSSL's own rendering (`ERR_error_string_n`: the reason of a system error is
    /// its strerror, which the crate's `reason()` does not give).
    #[cfg(not(feature = "aws-lc"))]
    fn from_openssl(e: &openssl::error::Error, data: Option<String>) -> ErrorText {
        let text = super::tls_lib::error_string(e.code());
        let mut fields = text.splitn(5, ':');
        let (_, _, library, _, reason) = (
            fields.next(),
            fields.next(),
            fields.next().unwrap_or(""),
            fields.next(),
            fields.next().unwrap_or(""),
        );
        ErrorText {
            code: e.code() as u32,
            library: Cow::Owned(library.to_string()),
            reason: Cow::Owned(reason.to_string()),
            data,
        }
    }

    #[cfg(feature = "aws-lc")]
    fn from_openssl(_: &openssl::error::Error, _: Option<String>) -> ErrorText {
        unreachable!("an AWS-LC build has no OpenSSL errors")
    }
}

/// An AWS-LC error (its library, reason number, reason text and data) in OpenSSL 3.0's
/// words. Reasons both libraries name alike get OpenSSL's code from the generated
/// table; any other keeps AWS-LC's reason number under OpenSSL's library number, its
/// text lower-cased as OpenSSL words its reasons.
pub fn from_aws_lc(lib: i32, reason: i32, reason_text: &str, data: Option<String>) -> ErrorText {
    let (lib3, library) = library_from_aws_lc(lib);
    let library = Cow::Borrowed(library);
    let data = data.map(|d| data_from_aws_lc(&d));
    if (lib, reason) == (9, 110) && data.as_deref() == Some("Expecting: ANY PRIVATE KEY") {
        // A file without a PEM key: OpenSSL 3.0 reads keys through its decoders, and
        // they say so in their own words.
        return ErrorText {
            code: 0x1E08_010C,
            library: Cow::Borrowed("DECODER routines"),
            reason: Cow::Borrowed("unsupported"),
            data: Some("No supported data to decode. Input type: PEM".into()),
        };
    }
    if lib == 2 {
        // A system error: `errno` as the reason, strerror as the text (the same in both).
        return ErrorText {
            code: SYSTEM_FLAG | (reason as u32 & 0x7f_ffff),
            library,
            reason: Cow::Owned(reason_text.to_string()),
            data,
        };
    }
    if (lib, reason) == (17, 112) {
        // AWS-LC's BIO_R_SYS_LIB after a failed fopen: OpenSSL 3.0 raises the common
        // ERR_R_SYS_LIB there (`error:10080002:BIO routines::system lib`), not its own,
        // unused BIO_R_SYS_LIB.
        return ErrorText {
            code: (32 << 23) | RFLAG_COMMON | 2,
            library,
            reason: Cow::Borrowed("system lib"),
            data,
        };
    }
    if let Ok(found) = super::tls_errors::REASONS
        .binary_search_by_key(&(lib as u8, reason as u16), |&(l, r, _)| (l, r))
    {
        let code = super::tls_errors::REASONS[found].2;
        return ErrorText {
            code,
            library,
            reason: Cow::Owned(reason_text.to_ascii_lowercase().replace('_', " ")),
            data,
        };
    }
    // AWS-LC's common reasons (err.h): a library number below 64, then the fatal ones.
    let common = match reason {
        1..=63 => {
            let (their_lib, _) = library_from_aws_lc(reason);
            common_lib_reason(their_lib).map(|t| (RFLAG_COMMON | their_lib, t))
        }
        65 => Some((RFLAG_COMMON | RFLAG_FATAL | 0x100, "malloc failure")),
        67 => Some((
            RFLAG_COMMON | RFLAG_FATAL | 0x102,
            "passed a null parameter",
        )),
        68 => Some((RFLAG_COMMON | RFLAG_FATAL | 0x103, "internal error")),
        _ => None,
    };
    if let Some((r, text)) = common {
        return ErrorText {
            code: (lib3 << 23) | r,
            library,
            reason: Cow::Borrowed(text),
            data,
        };
    }
    ErrorText {
        code: (lib3 << 23) | (reason as u32 & 0xfff),
        library,
        reason: Cow::Owned(reason_text.to_ascii_lowercase().replace('_', " ")),
        data,
    }
}

/// AWS-LC's error data in OpenSSL 3.0's words: `fopen('FILE','r')` is OpenSSL's
/// `calling fopen(FILE, r)`.
fn data_from_aws_lc(data: &str) -> String {
    if let Some(args) = data
        .strip_prefix("fopen('")
        .and_then(|rest| rest.strip_suffix("')"))
    {
        if let Some((file, mode)) = args.rsplit_once("','") {
            // OpenSSL 3.0 opens PEM files with "r" where AWS-LC says "rb".
            let mode = if mode == "rb" { "r" } else { mode };
            return format!("calling fopen({file}, {mode})");
        }
    }
    data.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_texts_are_openssl_3_s() {
        assert_eq!(verify_text(18), "self-signed certificate");
        assert_eq!(
            verify_text(19),
            "self-signed certificate in certificate chain"
        );
        assert_eq!(verify_text(10), "certificate has expired");
        assert_eq!(verify_text(-1), UNKNOWN_VERIFY_ERROR);
        assert_eq!(verify_text(95), UNKNOWN_VERIFY_ERROR);
        // AWS-LC's renumbered codes land on OpenSSL's.
        assert_eq!(verify_code_from_aws_lc(68), 66);
        assert_eq!(
            verify_text(verify_code_from_aws_lc(68)),
            "EE certificate key too weak"
        );
        assert_eq!(verify_code_from_aws_lc(72), 94);
        assert_eq!(verify_code_from_aws_lc(18), 18);
    }

    /// The library this build links with says the same as the table, except where
    /// the table exists to correct it.
    #[test]
    fn the_verify_table_matches_the_linked_library() {
        for code in 0..=94 {
            // SAFETY: as in verify_error.
            let library = unsafe { openssl::x509::X509VerifyResult::from_raw(code) }.error_string();
            let (ours_code, ours) = verify_error(code);
            if cfg!(feature = "aws-lc") {
                // AWS-LC's 1.1 wording, e.g. "self signed certificate", is corrected.
                if code == 18 {
                    assert_eq!(library, "self signed certificate");
                    assert_eq!(ours, "self-signed certificate");
                }
                if code <= 64 && library != "unknown certificate verification error" {
                    assert_eq!(ours_code, code);
                }
            } else {
                assert_eq!(ours, VERIFY_ERRORS[code as usize], "code {code}");
                assert_eq!((ours_code, ours), (code, library));
            }
        }
    }

    #[test]
    fn aws_lc_errors_read_as_openssl_3_s() {
        // Handshake: AWS-LC SSL_R_WRONG_VERSION_NUMBER (16, 247).
        let e = from_aws_lc(16, 247, "WRONG_VERSION_NUMBER", None);
        assert_eq!(
            e.error_string(),
            "error:0A00010B:SSL routines::wrong version number"
        );
        // A file that does not exist: what nginx prints on OpenSSL 3.0.
        let sys = from_aws_lc(
            2,
            2,
            "No such file or directory",
            Some("fopen('/k.pem','r')".into()),
        );
        assert_eq!(
            sys.with_data(),
            "error:80000002:system library::No such file or directory:calling fopen(/k.pem, r)"
        );
        let bio = from_aws_lc(17, 110, "NO_SUCH_FILE", None);
        assert_eq!(bio.with_data(), "error:10000080:BIO routines::no such file");
        // A file that cannot be read (nginx-compat/startup.py unreadable_key): AWS-LC's
        // BIO_R_SYS_LIB and its common ERR_R_SYS_LIB both read as OpenSSL 3.0's
        // `error:10080002:BIO routines::system lib`.
        let bio = from_aws_lc(17, 112, "SYS_LIB", None);
        assert_eq!(bio.with_data(), "error:10080002:BIO routines::system lib");
        let bio = from_aws_lc(17, 2, "system library", None);
        assert_eq!(bio.with_data(), "error:10080002:BIO routines::system lib");
        let pem = from_aws_lc(9, 110, "NO_START_LINE", None);
        assert_eq!(
            pem.error_string(),
            "error:0480006C:PEM routines::no start line"
        );
        let x509 = from_aws_lc(11, 116, "KEY_VALUES_MISMATCH", None);
        assert_eq!(
            x509.error_string(),
            "error:05800074:x509 certificate routines::key values mismatch"
        );
        let key = from_aws_lc(
            9,
            110,
            "NO_START_LINE",
            Some("Expecting: ANY PRIVATE KEY".into()),
        );
        assert_eq!(
            key.with_data(),
            "error:1E08010C:DECODER routines::unsupported:No supported data to decode. \
             Input type: PEM"
        );
        let conf = from_aws_lc(16, 177, "NO_CIPHER_MATCH", None);
        assert_eq!(
            conf.error_string(),
            "error:0A0000B9:SSL routines::no cipher match"
        );
    }

    #[test]
    fn unmatched_reasons_keep_their_number_in_openssl_s_library() {
        let e = from_aws_lc(16, 4000 & 0xfff, "SOMETHING_NEW", None);
        assert_eq!(e.library, "SSL routines");
        assert_eq!(e.reason, "something new");
        assert_eq!(e.code >> 23, 20);
    }

    #[test]
    fn the_generated_table_is_sorted() {
        let table = super::super::tls_errors::REASONS;
        assert!(table
            .windows(2)
            .all(|w| (w[0].0, w[0].1) < (w[1].0, w[1].1)));
    }
}
