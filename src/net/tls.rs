//! Server-side TLS from nginx's `ssl_*` settings, through OpenSSL.
//!
//! This is the one place that names the TLS library. nginx's `ssl_*` directives are
//! OpenSSL settings, so they map one to one: cipher strings, protocol sets, the session
//! cache and its timeout, tickets, DH parameters and curves mean here what they mean to
//! nginx. What this OpenSSL cannot do (SSLv2/SSLv3, TLS 1.0/1.1 at the default security
//! level) is reported as a warning when the config loads, never as a crash.

use std::ffi::c_long;
use std::fs;
use std::path::Path;

use foreign_types::ForeignType;
use openssl::dh::Dh;
use openssl::error::ErrorStack;
use openssl::pkey::{PKey, Private};
use openssl::ssl::{
    AlpnError, SslContext, SslContextBuilder, SslFiletype, SslMethod, SslMode, SslOptions,
    SslSessionCacheMode, SslVerifyMode, SslVersion,
};
use openssl::x509::store::X509Lookup;
use openssl::x509::verify::X509VerifyFlags;
use openssl::x509::{X509Name, X509};

use crate::config::{Protocol, SessionCache, TlsProtocols, TlsSettings, VerifyClient};

/// A TLS set-up failure, worded like nginx's (these carry no FILE:LINE in nginx either).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TlsError(pub String);

fn openssl_err(what: String) -> impl FnOnce(ErrorStack) -> TlsError {
    move |e| TlsError(format!("{what} failed ({e})"))
}

/// A server TLS context plus what the admin should know about it.
pub struct ServerTls {
    pub context: SslContext,
    pub warnings: Vec<String>,
}

/// nginx's session id context for mail (`ngx_mail_ssl_module`): sessions made by mail
/// servers are not resumed elsewhere.
const SESSION_ID_CONTEXT: &[u8] = b"MAIL";

/// Builds the context for one server block.
pub fn server_context(tls: &TlsSettings, protocol: Protocol) -> Result<ServerTls, TlsError> {
    let mut warnings = Vec::new();
    let mut b = SslContextBuilder::new(SslMethod::tls_server())
        .map_err(openssl_err("SSL_CTX_new()".into()))?;
    set_protocols(&mut b, tls.protocols, &tls.ciphers, &mut warnings)?;
    b.set_cipher_list(&tls.ciphers)
        .map_err(openssl_err(format!(
            "SSL_CTX_set_cipher_list(\"{}\")",
            tls.ciphers
        )))?;
    let mut options = SslOptions::NO_COMPRESSION;
    if tls.prefer_server_ciphers {
        options |= SslOptions::CIPHER_SERVER_PREFERENCE;
    }
    if !tls.session_tickets {
        options |= SslOptions::NO_TICKET;
    }
    b.set_options(options);
    // Idle sessions give their 34 KiB of record buffers back to the allocator: a proxy
    // in front of thousands of IDLEing IMAP clients is mostly idle sessions.
    b.set_mode(SslMode::RELEASE_BUFFERS);
    // Read whole TCP chunks instead of a 5-byte header and then the record body: half
    // the recv() calls for a client that uploads (APPEND) or pipelines.
    b.set_read_ahead(true);
    load_certificates(&mut b, tls)?;
    if tls.verify_client != VerifyClient::Off {
        set_client_verify(&mut b, tls)?;
    }
    if let Some(dh) = &tls.dhparam {
        let pem = read(dh, TlsFile::DhParams)?;
        let dh = Dh::params_from_pem(&pem).map_err(openssl_err(format!(
            "PEM_read_bio_DHparams(\"{}\")",
            dh.display()
        )))?;
        b.set_tmp_dh(&dh)
            .map_err(openssl_err("SSL_CTX_set_tmp_dh()".into()))?;
    }
    if tls.ecdh_curve != "auto" {
        b.set_groups_list(&tls.ecdh_curve)
            .map_err(openssl_err(format!(
                "SSL_CTX_set1_curves_list(\"{}\")",
                tls.ecdh_curve
            )))?;
    }
    set_session_cache(&mut b, tls)?;
    require_alpn(&mut b, protocol);
    Ok(ServerTls {
        context: b.build(),
        warnings,
    })
}

/// The files a TLS context reads, each with nginx's message when it cannot be opened.
#[derive(Clone, Copy)]
enum TlsFile {
    Certificate,
    Key,
    DhParams,
    Passwords,
}

/// Reads one of a context's files. For PEM files nginx reports the TLS library's own
/// error (`cannot load certificate key "/k.pem": BIO_new_file() failed (SSL: ...)`);
/// we ask the library to open the file too, so that `Permission denied` and `No such
/// file` read exactly as in nginx. The password file nginx opens itself (`open()`).
fn read(path: &Path, kind: TlsFile) -> Result<Vec<u8>, TlsError> {
    fs::read(path).map_err(|e| {
        let shown = path.display();
        let ssl = || library_open_error(path).unwrap_or_else(|| format!("SSL: {e}"));
        TlsError(match kind {
            TlsFile::Certificate => {
                format!(
                    "cannot load certificate \"{shown}\": BIO_new_file() failed ({})",
                    ssl()
                )
            }
            TlsFile::Key => format!(
                "cannot load certificate key \"{shown}\": BIO_new_file() failed ({})",
                ssl()
            ),
            TlsFile::DhParams => format!("BIO_new_file(\"{shown}\") failed ({})", ssl()),
            TlsFile::Passwords => format!(
                "open() \"{shown}\" failed ({})",
                crate::config::parser::os_error(&e)
            ),
        })
    })
}

// Both are in every libcrypto mailproxy links with; openssl-sys declares them only
// under features it does not turn on here.
extern "C" {
    fn BIO_new_file(
        filename: *const std::ffi::c_char,
        mode: *const std::ffi::c_char,
    ) -> *mut openssl_sys::BIO;
    fn ERR_error_string_n(code: std::ffi::c_ulong, buf: *mut std::ffi::c_char, len: usize);
}

/// What the TLS library's `BIO_new_file(path, "r")` puts on its error queue, in the
/// words of nginx's `ngx_ssl_error`; `None` if it opens the file after all.
fn library_open_error(path: &Path) -> Option<String> {
    let cpath = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).ok()?;
    // Nothing older may be reported as this failure.
    drop(ErrorStack::get());
    // SAFETY: both arguments are NUL-terminated strings that outlive the call; a
    // returned BIO is freed at once.
    let bio = unsafe { BIO_new_file(cpath.as_ptr(), c"r".as_ptr()) };
    if !bio.is_null() {
        // SAFETY: `bio` came from BIO_new_file and is freed once.
        unsafe { openssl_sys::BIO_free_all(bio) };
        return None;
    }
    Some(nginx_ssl_error(&ErrorStack::get()))
}

/// An error stack as nginx's `ngx_ssl_error` prints it: `SSL:`, then for each error
/// ` ` + `ERR_error_string_n` + (`:` + its data, if any).
pub fn nginx_ssl_error(stack: &ErrorStack) -> String {
    let mut text = String::from("SSL:");
    for e in stack.errors() {
        let mut buf = [0u8; 256];
        // SAFETY: ERR_error_string_n writes at most `buf.len()` bytes, NUL included.
        unsafe { ERR_error_string_n(e.code(), buf.as_mut_ptr().cast(), buf.len()) };
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        text.push(' ');
        text.push_str(&String::from_utf8_lossy(&buf[..end]));
        if let Some(data) = e.data().filter(|d| !d.is_empty()) {
            text.push(':');
            text.push_str(data);
        }
    }
    text
}

/// Maps the `ssl_protocols` set onto OpenSSL's version range. OpenSSL only knows a
/// range, so a set with holes (TLSv1 TLSv1.2) becomes the range plus NO_* options.
fn set_protocols(
    b: &mut SslContextBuilder,
    set: TlsProtocols,
    ciphers: &str,
    warnings: &mut Vec<String>,
) -> Result<(), TlsError> {
    if set.sslv2 {
        warnings
            .push("SSLv2 in \"ssl_protocols\" is ignored: OpenSSL no longer implements it".into());
    }
    if set.sslv3 {
        warnings.push(
            "SSLv3 in \"ssl_protocols\" is ignored: this OpenSSL is built without SSLv3".into(),
        );
    }
    let versions = [
        (set.tlsv1, SslVersion::TLS1, SslOptions::NO_TLSV1),
        (set.tlsv1_1, SslVersion::TLS1_1, SslOptions::NO_TLSV1_1),
        (set.tlsv1_2, SslVersion::TLS1_2, SslOptions::NO_TLSV1_2),
        (set.tlsv1_3, SslVersion::TLS1_3, SslOptions::NO_TLSV1_3),
    ];
    let enabled: Vec<usize> = (0..versions.len()).filter(|&i| versions[i].0).collect();
    let (Some(&lo), Some(&hi)) = (enabled.first(), enabled.last()) else {
        return Err(TlsError(
            "no protocol of \"ssl_protocols\" is supported by this OpenSSL (enable TLSv1.2 or TLSv1.3)"
                .into(),
        ));
    };
    if (set.tlsv1 || set.tlsv1_1) && !ciphers.contains("@SECLEVEL=0") {
        warnings.push(
            "TLSv1 and TLSv1.1 in \"ssl_protocols\" are refused by this OpenSSL at its default \
             security level; add \":@SECLEVEL=0\" to \"ssl_ciphers\" to allow them"
                .into(),
        );
    }
    b.set_min_proto_version(Some(versions[lo].1))
        .map_err(openssl_err("SSL_CTX_set_min_proto_version()".into()))?;
    b.set_max_proto_version(Some(versions[hi].1))
        .map_err(openssl_err("SSL_CTX_set_max_proto_version()".into()))?;
    for (on, _, no) in &versions[lo..=hi] {
        if !on {
            b.set_options(*no);
        }
    }
    Ok(())
}

/// Loads every `ssl_certificate` with its `ssl_certificate_key` (an RSA and an ECDSA
/// pair may sit side by side, as in nginx). Each certificate file may carry its chain.
fn load_certificates(b: &mut SslContextBuilder, tls: &TlsSettings) -> Result<(), TlsError> {
    let passwords = match &tls.password_file {
        Some(p) => read_passwords(p)?,
        None => Vec::new(),
    };
    for (cert_path, key_path) in tls.certificates.iter().zip(&tls.keys) {
        let pem = read(cert_path, TlsFile::Certificate)?;
        let mut chain = X509::stack_from_pem(&pem)
            .map_err(openssl_err(format!(
                "cannot load certificate \"{}\": PEM_read_bio_X509_AUX()",
                cert_path.display()
            )))?
            .into_iter();
        let leaf = chain.next().ok_or_else(|| {
            TlsError(format!(
                "cannot load certificate \"{}\": no certificate",
                cert_path.display()
            ))
        })?;
        b.set_certificate(&leaf).map_err(openssl_err(format!(
            "SSL_CTX_use_certificate(\"{}\")",
            cert_path.display()
        )))?;
        for extra in chain {
            add_chain_cert(b, extra).map_err(openssl_err(format!(
                "SSL_CTX_add1_chain_cert(\"{}\")",
                cert_path.display()
            )))?;
        }
        let key = load_key(key_path, &passwords)?;
        b.set_private_key(&key).map_err(openssl_err(format!(
            "SSL_CTX_use_PrivateKey(\"{}\")",
            key_path.display()
        )))?;
        b.check_private_key().map_err(openssl_err(format!(
            "SSL_CTX_check_private_key(\"{}\")",
            key_path.display()
        )))?;
    }
    Ok(())
}

/// `ssl_verify_client` and its companions, as nginx's `ngx_ssl_client_certificate`,
/// `ngx_ssl_trusted_certificate` and `ngx_ssl_crl`. The client is asked for a
/// certificate but the handshake never fails on it: the callback accepts every
/// chain and OpenSSL keeps the verdict for [`super::client_cert::check`], which lets
/// the session answer with the protocol's error line instead of a TLS alert.
fn set_client_verify(b: &mut SslContextBuilder, tls: &TlsSettings) -> Result<(), TlsError> {
    b.set_verify_callback(SslVerifyMode::PEER, |_, _| true);
    b.set_verify_depth(tls.verify_depth);
    if let Some(ca) = &tls.client_certificate {
        load_verify_locations(b, ca)?;
        // The CA names are also sent to the client, to pick its certificate by.
        let names = X509Name::load_client_ca_file(ca).map_err(openssl_err(format!(
            "SSL_load_client_CA_file(\"{}\")",
            ca.display()
        )))?;
        b.set_client_ca_list(names);
    }
    if let Some(trusted) = &tls.trusted_certificate {
        load_verify_locations(b, trusted)?;
    }
    if let Some(crl) = &tls.crl {
        let store = b.cert_store_mut();
        let lookup = store
            .add_lookup(X509Lookup::file())
            .map_err(openssl_err("X509_STORE_add_lookup()".into()))?;
        lookup
            .load_crl_file(crl, SslFiletype::PEM)
            .map_err(openssl_err(format!(
                "X509_LOOKUP_load_file(\"{}\")",
                crl.display()
            )))?;
        store
            .set_flags(X509VerifyFlags::CRL_CHECK | X509VerifyFlags::CRL_CHECK_ALL)
            .map_err(openssl_err("X509_STORE_set_flags()".into()))?;
    }
    Ok(())
}

fn load_verify_locations(b: &mut SslContextBuilder, path: &Path) -> Result<(), TlsError> {
    b.load_verify_locations(Some(path), None)
        .map_err(openssl_err(format!(
            "SSL_CTX_load_verify_locations(\"{}\")",
            path.display()
        )))
}

fn read_passwords(path: &Path) -> Result<Vec<Vec<u8>>, TlsError> {
    let text = read(path, TlsFile::Passwords)?;
    Ok(text
        .split(|&c| c == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l).to_vec())
        .filter(|l| !l.is_empty())
        .collect())
}

/// Tries the key without a passphrase, then each line of `ssl_password_file`, as nginx.
fn load_key(path: &Path, passwords: &[Vec<u8>]) -> Result<PKey<Private>, TlsError> {
    let pem = read(path, TlsFile::Key)?;
    let mut last = match PKey::private_key_from_pem_passphrase(&pem, b"") {
        Ok(key) if passwords.is_empty() => return Ok(key),
        Ok(key) => return Ok(key),
        Err(e) => e,
    };
    for pass in passwords {
        match PKey::private_key_from_pem_passphrase(&pem, pass) {
            Ok(key) => return Ok(key),
            Err(e) => last = e,
        }
    }
    Err(TlsError(format!(
        "cannot load certificate key \"{}\": PEM_read_bio_PrivateKey() failed ({last})",
        path.display()
    )))
}

/// `SSL_CTX_add1_chain_cert`: a chain certificate for the certificate just set, so
/// an RSA and an ECDSA certificate each keep their own chain.
fn add_chain_cert(b: &mut SslContextBuilder, cert: X509) -> Result<(), ErrorStack> {
    const SSL_CTRL_CHAIN_CERT: std::ffi::c_int = 89;
    // SAFETY: the context pointer is valid for the builder's lifetime; with larg = 1
    // OpenSSL takes its own reference to the certificate (add1), so `cert` may drop.
    let r = unsafe {
        openssl_sys::SSL_CTX_ctrl(b.as_ptr(), SSL_CTRL_CHAIN_CERT, 1, cert.as_ptr().cast())
    };
    if r <= 0 {
        return Err(ErrorStack::get());
    }
    Ok(())
}

extern "C" {
    // Not bound by openssl-sys; a plain function in libssl since 0.9.8.
    fn SSL_CTX_set_timeout(ctx: *mut openssl_sys::SSL_CTX, seconds: c_long) -> c_long;
}

/// `ssl_session_cache` and `ssl_session_timeout`. There is one process, so nginx's
/// `shared:` zone and `builtin` cache are both OpenSSL's in-process cache here.
fn set_session_cache(b: &mut SslContextBuilder, tls: &TlsSettings) -> Result<(), TlsError> {
    b.set_session_id_context(SESSION_ID_CONTEXT)
        .map_err(openssl_err("SSL_CTX_set_session_id_context()".into()))?;
    match &tls.session_cache {
        SessionCache::Off | SessionCache::None => {
            b.set_session_cache_mode(SslSessionCacheMode::OFF);
        }
        SessionCache::Cache { builtin, shared } => {
            b.set_session_cache_mode(SslSessionCacheMode::SERVER);
            // nginx's shared zones hold about 4000 sessions per megabyte.
            let from_shared = shared.as_ref().map_or(0, |(_, bytes)| bytes / 256);
            let sessions = builtin.unwrap_or(0) + from_shared;
            if sessions > 0 {
                b.set_session_cache_size(sessions.min(i32::MAX as usize) as i32);
            }
        }
    }
    let secs = tls.session_timeout.as_secs().min(c_long::MAX as u64) as c_long;
    // SAFETY: valid context pointer; the call only stores a number.
    unsafe { SSL_CTX_set_timeout(b.as_ptr(), secs) };
    Ok(())
}

/// ALPACA protection as in nginx: a client that offers ALPN must offer this protocol's
/// id, or the handshake fails. Clients that send no ALPN are fine.
fn require_alpn(b: &mut SslContextBuilder, protocol: Protocol) {
    let id: &'static [u8] = protocol.name().as_bytes();
    b.set_alpn_select_callback(move |_, offered| {
        let mut rest = offered;
        while let Some((&len, tail)) = rest.split_first() {
            let len = len as usize;
            if tail.len() < len {
                break;
            }
            if &tail[..len] == id {
                return Ok(&tail[..len]);
            }
            rest = &tail[len..];
        }
        Err(AlpnError::ALERT_FATAL)
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// nginx 1.22.1 on OpenSSL 3.0, for `ssl_certificate_key` naming a missing file:
    /// `cannot load certificate key "...": BIO_new_file() failed (SSL: error:80000002:
    /// system library::No such file or directory:calling fopen(..., r) error:10000080:
    /// BIO routines::no such file)`.
    #[test]
    fn an_unopenable_file_reads_as_in_nginx() {
        let path = Path::new("/nonexistent/mailproxy/k.pem");
        let err = read(path, TlsFile::Key).unwrap_err().0;
        let prefix = "cannot load certificate key \"/nonexistent/mailproxy/k.pem\": \
                      BIO_new_file() failed (SSL: error:";
        assert!(err.starts_with(prefix), "{err}");
        assert!(
            err.contains(
                "No such file or directory:calling fopen(/nonexistent/mailproxy/k.pem, r)"
            ),
            "{err}"
        );
        assert!(err.ends_with(')'), "{err}");
        let err = read(path, TlsFile::Passwords).unwrap_err().0;
        assert_eq!(
            err,
            "open() \"/nonexistent/mailproxy/k.pem\" failed (2: No such file or directory)"
        );
    }
}
