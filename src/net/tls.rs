//! Server-side TLS from nginx's `ssl_*` settings, through AWS-LC or OpenSSL.
//!
//! nginx's `ssl_*` directives are OpenSSL settings, so they map one to one: cipher
//! strings, protocol sets, the session cache and its timeout, tickets, DH parameters and
//! curves mean here what they mean to nginx. The library-specific calls are in
//! [`super::tls_lib`], `ssl_conf_command` in [`super::tls_conf`]. What the library
//! cannot do (SSLv2/SSLv3; TLS 1.0/1.1 at OpenSSL's default security level; DHE, X448
//! on AWS-LC: docs/nginx-differences.md) is reported as a warning when the config
//! loads, never as a crash.

use std::fs;
use std::path::Path;

use openssl::dh::Dh;
use openssl::error::ErrorStack;
use openssl::pkey::{PKey, Private};
use openssl::ssl::{
    AlpnError, SslContext, SslContextBuilder, SslMethod, SslMode, SslOptions, SslSessionCacheMode,
    SslVerifyMode, SslVersion,
};
use openssl::x509::verify::X509VerifyFlags;
use openssl::x509::{X509Name, X509};

use super::tls_lib;
pub use super::tls_lib::nginx_ssl_error;
use crate::config::{Protocol, SessionCache, TlsProtocols, TlsSettings, VerifyClient};

/// A TLS set-up failure, worded like nginx's (these carry no FILE:LINE in nginx either).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TlsError(pub String);

/// `WHAT failed (SSL: ...)`, the error queue in OpenSSL 3.0's words, as nginx's
/// `ngx_ssl_error`.
fn openssl_err(what: String) -> impl FnOnce(ErrorStack) -> TlsError {
    move |e| TlsError(format!("{what} failed ({})", nginx_ssl_error(&e)))
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
    b.set_cipher_list(&library_cipher_string(&tls.ciphers))
        .map_err(openssl_err(format!(
            "SSL_CTX_set_cipher_list(\"{}\")",
            tls.ciphers
        )))?;
    // AWS-LC never compresses (its NO_COMPRESSION is not even bound).
    #[cfg(not(feature = "aws-lc"))]
    let mut options = SslOptions::NO_COMPRESSION;
    #[cfg(feature = "aws-lc")]
    let mut options = SslOptions::empty();
    if tls.prefer_server_ciphers {
        options |= SslOptions::CIPHER_SERVER_PREFERENCE;
    }
    if !tls.session_tickets {
        options |= SslOptions::NO_TICKET;
    }
    b.set_options(options);
    // Idle sessions give their 34 KiB of record buffers back to the allocator: a proxy
    // in front of thousands of IDLEing IMAP clients is mostly idle sessions. (AWS-LC
    // always does: its SSL_MODE_RELEASE_BUFFERS is 0, "ON by default in AWS-LC".)
    b.set_mode(SslMode::RELEASE_BUFFERS);
    // Read whole TCP chunks instead of a 5-byte header and then the record body: half
    // the recv() calls for a client that uploads (APPEND) or pipelines.
    b.set_read_ahead(true);
    load_certificates(&mut b, tls)?;
    if tls.verify_client != VerifyClient::Off {
        set_client_verify(&mut b, tls)?;
    }
    if let Some(path) = &tls.dhparam {
        let pem = read(path, TlsFile::DhParams)?;
        match Dh::params_from_pem(&pem) {
            Ok(dh) => set_dh(&mut b, &dh, path, &mut warnings)?,
            // OpenSSL also reads X9.42 parameters (`openssl dhparam -dsaparam`); AWS-LC
            // does not, and would not use them anyway.
            Err(_) if cfg!(feature = "aws-lc") && is_x942_pem(&pem) => {
                warnings.push(DHPARAM_NO_EFFECT.into());
            }
            Err(e) => {
                return Err(openssl_err(format!(
                    "PEM_read_bio_DHparams(\"{}\")",
                    path.display()
                ))(e))
            }
        }
    }
    set_groups(&mut b, &tls.ecdh_curve, &mut warnings)?;
    set_session_cache(&mut b, tls)?;
    require_alpn(&mut b, protocol);
    // Last, as nginx: the commands may override anything set above.
    super::tls_conf::apply(&mut b, &tls.conf_commands, &mut warnings)?;
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
        let ssl = || {
            tls_lib::open_error(path)
                .map(|stack| nginx_ssl_error(&stack))
                .unwrap_or_else(|| format!("SSL: {e}"))
        };
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

/// `ssl_dhparam`: DHE with these parameters on OpenSSL. AWS-LC has no DHE cipher
/// suites (its `SSL_CTX_set_tmp_dh` does nothing), so there the file is still read and
/// checked, as nginx does, and the admin is told it has no effect.
fn set_dh(
    b: &mut SslContextBuilder,
    dh: &Dh<openssl::pkey::Params>,
    path: &Path,
    warnings: &mut Vec<String>,
) -> Result<(), TlsError> {
    if cfg!(feature = "aws-lc") {
        let _ = (b, dh);
        warnings.push(DHPARAM_NO_EFFECT.into());
        return Ok(());
    }
    b.set_tmp_dh(dh).map_err(openssl_err(format!(
        "SSL_CTX_set_tmp_dh(\"{}\")",
        path.display()
    )))
}

/// Whether the file holds a PEM block of X9.42 DH parameters.
fn is_x942_pem(pem: &[u8]) -> bool {
    let text = String::from_utf8_lossy(pem);
    let Some(start) = text.find("-----BEGIN X9.42 DH PARAMETERS-----") else {
        return false;
    };
    text[start..].contains("-----END X9.42 DH PARAMETERS-----")
}

/// The `[warn]` for `ssl_dhparam` on AWS-LC (docs/nginx-differences.md).
pub const DHPARAM_NO_EFFECT: &str =
    "\"ssl_dhparam\" has no effect: this mailproxy uses AWS-LC, which has no DHE cipher suites";

/// OpenSSL 3.0's groups for `ssl_ecdh_curve auto`, in its order (X448 aside, which
/// AWS-LC lacks). AWS-LC's own default is X25519, P-256, P-384.
const AUTO_GROUPS: &str = "X25519:P-256:P-521:P-384";

/// `ssl_ecdh_curve`: `auto` keeps OpenSSL's default list (on AWS-LC: the same list
/// spelled out), anything else is the list to use.
fn set_groups(
    b: &mut SslContextBuilder,
    curves: &str,
    warnings: &mut Vec<String>,
) -> Result<(), TlsError> {
    let list = if curves == "auto" {
        if !cfg!(feature = "aws-lc") {
            return Ok(());
        }
        AUTO_GROUPS.to_string()
    } else {
        supported_groups(curves, "ssl_ecdh_curve", warnings)
    };
    set_groups_list(b, &list).map_err(|queue| {
        TlsError(format!(
            "SSL_CTX_set1_curves_list(\"{curves}\") failed ({queue})"
        ))
    })
}

/// `SSL_CTX_set1_groups_list`; on failure the error queue as nginx prints it. AWS-LC
/// queues nothing for an unknown group, where OpenSSL 3.0 names it:
/// `error:0A080106:SSL routines::passed invalid argument:group 'bogus' cannot be set`.
pub(super) fn set_groups_list(b: &mut SslContextBuilder, list: &str) -> Result<(), String> {
    let Err(stack) = b.set_groups_list(list) else {
        return Ok(());
    };
    if !stack.errors().is_empty() || !cfg!(feature = "aws-lc") {
        return Err(nginx_ssl_error(&stack));
    }
    let unknown = list.split(':').find(|g| b.set_groups_list(g).is_err());
    drop(ErrorStack::get());
    Err(match unknown {
        Some(group) => format!(
            "SSL: error:0A080106:SSL routines::passed invalid argument:group '{group}' cannot be set"
        ),
        None => "SSL:".into(),
    })
}

/// A group list without what this library lacks (X448 on AWS-LC), with a warning for
/// each group dropped. `directive` names the setting in the warning.
pub(super) fn supported_groups(list: &str, directive: &str, warnings: &mut Vec<String>) -> String {
    if !cfg!(feature = "aws-lc") {
        return list.to_string();
    }
    let (lacking, kept): (Vec<&str>, Vec<&str>) = list
        .split(':')
        .partition(|g| g.eq_ignore_ascii_case("X448"));
    for group in lacking {
        warnings.push(format!(
            "{group} in \"{directive}\" is ignored: this mailproxy uses AWS-LC, which has no X448"
        ));
    }
    kept.join(":")
}

/// The cipher string as the library reads it. AWS-LC has no security levels (it allows
/// TLS 1.0/1.1 and every suite it has without one) and refuses `@SECLEVEL=N`, so every
/// `@SECLEVEL=N` is dropped there, written as its own token (`HIGH:@SECLEVEL=0`) or
/// glued to one (`DEFAULT@SECLEVEL=0`), as OpenSSL accepts both.
fn library_cipher_string(ciphers: &str) -> String {
    if !cfg!(feature = "aws-lc") {
        return ciphers.to_string();
    }
    without_seclevel(ciphers)
}

fn without_seclevel(ciphers: &str) -> String {
    const MARK: &str = "@SECLEVEL=";
    let mut rest = ciphers;
    let mut out = String::with_capacity(ciphers.len());
    while let Some(at) = rest.find(MARK) {
        out.push_str(&rest[..at]);
        let after = &rest[at + MARK.len()..];
        rest = after.trim_start_matches(|c: char| c.is_ascii_digit());
    }
    out.push_str(rest);
    // A token that was only the level leaves an empty one behind.
    out.split(':')
        .filter(|t| !t.is_empty())
        .collect::<Vec<_>>()
        .join(":")
}

/// Maps the `ssl_protocols` set onto OpenSSL's version range. OpenSSL only knows a
/// range, so a set with holes (TLSv1 TLSv1.2) becomes the range plus NO_* options.
fn set_protocols(
    b: &mut SslContextBuilder,
    set: TlsProtocols,
    ciphers: &str,
    warnings: &mut Vec<String>,
) -> Result<(), TlsError> {
    let lib = tls_lib::NAME;
    if set.sslv2 {
        warnings.push(format!(
            "SSLv2 in \"ssl_protocols\" is ignored: this mailproxy uses {lib}, which does not \
             implement it"
        ));
    }
    if set.sslv3 {
        warnings.push(if cfg!(feature = "aws-lc") {
            "SSLv3 in \"ssl_protocols\" is ignored: this mailproxy uses AWS-LC, which does not \
             implement it"
                .into()
        } else {
            "SSLv3 in \"ssl_protocols\" is ignored: the OpenSSL this mailproxy uses is built \
             without SSLv3"
                .into()
        });
    }
    let old_listed = set.tlsv1 || set.tlsv1_1;
    let seclevel_0 = ciphers.contains("@SECLEVEL=0");
    // OpenSSL 3.0 refuses TLS 1.0 and 1.1 at its default security level, so nginx on
    // Debian 12 never negotiates them unless the cipher string says `@SECLEVEL=0`.
    // AWS-LC has no security levels and would; it is given what OpenSSL would do. (If
    // nothing newer is listed they stay, and every such handshake succeeds where
    // nginx's fail: docs/nginx-differences.md.)
    let drop_old =
        cfg!(feature = "aws-lc") && old_listed && !seclevel_0 && (set.tlsv1_2 || set.tlsv1_3);
    let versions = [
        (
            set.tlsv1 && !drop_old,
            SslVersion::TLS1,
            SslOptions::NO_TLSV1,
        ),
        (
            set.tlsv1_1 && !drop_old,
            SslVersion::TLS1_1,
            SslOptions::NO_TLSV1_1,
        ),
        (set.tlsv1_2, SslVersion::TLS1_2, SslOptions::NO_TLSV1_2),
        (set.tlsv1_3, SslVersion::TLS1_3, SslOptions::NO_TLSV1_3),
    ];
    let enabled: Vec<usize> = (0..versions.len()).filter(|&i| versions[i].0).collect();
    let (Some(&lo), Some(&hi)) = (enabled.first(), enabled.last()) else {
        return Err(TlsError(format!(
            "no protocol of \"ssl_protocols\" is supported by this {lib} (enable TLSv1.2 or TLSv1.3)"
        )));
    };
    if old_listed && !seclevel_0 {
        warnings.push(if drop_old {
            "TLSv1 and TLSv1.1 in \"ssl_protocols\" are not enabled: OpenSSL 3.0 refuses them at \
             its default security level, and this mailproxy does the same on AWS-LC; add \
             \":@SECLEVEL=0\" to \"ssl_ciphers\" to allow them"
                .into()
        } else if cfg!(feature = "aws-lc") {
            "TLSv1 and TLSv1.1 in \"ssl_protocols\" stay enabled, as nothing newer is listed: \
             nginx with OpenSSL 3.0 refuses them at its default security level, so its \
             handshakes fail where this mailproxy's on AWS-LC succeed"
                .into()
        } else {
            "TLSv1 and TLSv1.1 in \"ssl_protocols\" are refused by the OpenSSL this mailproxy \
             uses at its default security level; add \":@SECLEVEL=0\" to \"ssl_ciphers\" to \
             allow them"
                .into()
        });
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
        // No PEM certificate in the file: OpenSSL 3.0's PEM_read_bio_X509_AUX error,
        // whichever library looked.
        let leaf = chain.next().ok_or_else(|| {
            TlsError(format!(
                "cannot load certificate \"{}\": PEM_read_bio_X509_AUX() failed (SSL: \
                 error:0480006C:PEM routines::no start line:Expecting: TRUSTED CERTIFICATE)",
                cert_path.display()
            ))
        })?;
        b.set_certificate(&leaf).map_err(openssl_err(format!(
            "SSL_CTX_use_certificate(\"{}\")",
            cert_path.display()
        )))?;
        for extra in chain {
            tls_lib::add_chain_cert(b, &extra).map_err(openssl_err(format!(
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
        tls_lib::load_crl_file(b, crl).map_err(openssl_err(format!(
            "X509_LOOKUP_load_file(\"{}\")",
            crl.display()
        )))?;
        b.cert_store_mut()
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
        "cannot load certificate key \"{}\": PEM_read_bio_PrivateKey() failed ({})",
        path.display(),
        nginx_ssl_error(&last)
    )))
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
    tls_lib::set_session_timeout(b, tls.session_timeout.as_secs());
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

    #[test]
    fn every_seclevel_form_is_dropped_for_aws_lc() {
        assert_eq!(without_seclevel("HIGH:!aNULL:!MD5"), "HIGH:!aNULL:!MD5");
        assert_eq!(without_seclevel("HIGH:!aNULL:@SECLEVEL=0"), "HIGH:!aNULL");
        assert_eq!(without_seclevel("DEFAULT@SECLEVEL=0"), "DEFAULT");
        assert_eq!(without_seclevel("@SECLEVEL=1:HIGH"), "HIGH");
        assert_eq!(
            without_seclevel("HIGH:!aNULL@SECLEVEL=2:!MD5"),
            "HIGH:!aNULL:!MD5"
        );
    }

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
