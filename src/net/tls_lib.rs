//! The few TLS-library calls the openssl crate does not offer on both libraries.
//!
//! mailproxy builds on AWS-LC (the default, feature `aws-lc`) or on the system's
//! OpenSSL 3.0 (feature `system-openssl`). AWS-LC's symbols carry a version prefix, so
//! its functions come from `openssl_sys` (which re-exports aws-lc-sys's bindings);
//! OpenSSL's few unbound ones are declared here. Everything that differs between the two
//! libraries goes through this module.

use std::ffi::{c_int, c_long, c_ulong};
use std::path::Path;

use foreign_types::ForeignTypeRef;
use openssl::error::ErrorStack;
use openssl::ssl::{SslContextBuilder, SslRef};
use openssl::x509::X509;

#[cfg(all(feature = "aws-lc", feature = "system-openssl"))]
compile_error!(
    "features `aws-lc` (the default) and `system-openssl` are exclusive: build with \
     `--no-default-features --features system-openssl` for the system's OpenSSL"
);

/// Which library this build uses, for messages.
pub const NAME: &str = if cfg!(feature = "aws-lc") {
    "AWS-LC"
} else {
    "OpenSSL"
};

#[cfg(not(feature = "aws-lc"))]
mod sys {
    use super::*;
    use std::ffi::c_char;
    // All in every libcrypto/libssl 3.0; openssl-sys declares them only under features
    // it does not turn on here, or not at all.
    extern "C" {
        pub fn BIO_new_file(filename: *const c_char, mode: *const c_char) -> *mut openssl_sys::BIO;
        pub fn ERR_error_string_n(code: c_ulong, buf: *mut c_char, len: usize);
        pub fn SSL_CTX_set_timeout(ctx: *mut openssl_sys::SSL_CTX, seconds: c_long) -> c_long;
        pub fn X509_NAME_print_ex(
            out: *mut openssl_sys::BIO,
            name: *const openssl_sys::X509_NAME,
            indent: c_int,
            flags: c_ulong,
        ) -> c_int;
    }
}

#[cfg(feature = "aws-lc")]
mod sys {
    pub use openssl_sys::{BIO_new_file, SSL_CTX_set_timeout, X509_NAME_print_ex};
}

/// `ERR_error_string_n` of OpenSSL: `error:XXXXXXXX:library:function:reason`.
#[cfg(not(feature = "aws-lc"))]
pub fn error_string(code: c_ulong) -> String {
    let mut buf = [0u8; 256];
    // SAFETY: ERR_error_string_n writes at most `buf.len()` bytes, NUL included.
    unsafe { sys::ERR_error_string_n(code, buf.as_mut_ptr().cast(), buf.len()) };
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// What `BIO_new_file(path, "r")` puts on the error queue; `None` if it opens the file.
pub fn open_error(path: &Path) -> Option<ErrorStack> {
    let cpath = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).ok()?;
    // Nothing older may be reported as this failure.
    drop(ErrorStack::get());
    // SAFETY: both arguments are NUL-terminated strings that outlive the call; a
    // returned BIO is freed at once.
    let bio = unsafe { sys::BIO_new_file(cpath.as_ptr(), c"r".as_ptr()) };
    if !bio.is_null() {
        // SAFETY: `bio` came from BIO_new_file and is freed once.
        unsafe { openssl_sys::BIO_free_all(bio) };
        return None;
    }
    Some(ErrorStack::get())
}

/// `SSL_CTX_set_timeout` (AWS-LC takes a u32).
pub fn set_session_timeout(b: &mut SslContextBuilder, secs: u64) {
    #[cfg(feature = "aws-lc")]
    let secs = secs.min(u32::MAX as u64) as u32;
    #[cfg(not(feature = "aws-lc"))]
    let secs = secs.min(c_long::MAX as u64) as c_long;
    // SAFETY: valid context pointer; the call only stores a number.
    unsafe { sys::SSL_CTX_set_timeout(b.as_ptr(), secs) };
}

/// `SSL_CTX_add1_chain_cert`: a chain certificate for the certificate just set, so
/// an RSA and an ECDSA certificate each keep their own chain. A macro over
/// `SSL_CTX_ctrl` in OpenSSL, a function in AWS-LC.
pub fn add_chain_cert(b: &mut SslContextBuilder, cert: &X509) -> Result<(), ErrorStack> {
    #[cfg(feature = "aws-lc")]
    // SAFETY: the context pointer is valid for the builder's lifetime; add1 takes its
    // own reference to the certificate.
    let r = unsafe { openssl_sys::SSL_CTX_add1_chain_cert(b.as_ptr(), cert.as_ptr()) as c_long };
    #[cfg(not(feature = "aws-lc"))]
    // SAFETY: as above; with larg = 1 OpenSSL takes its own reference (add1).
    let r = unsafe {
        const SSL_CTRL_CHAIN_CERT: c_int = 89;
        openssl_sys::SSL_CTX_ctrl(b.as_ptr(), SSL_CTRL_CHAIN_CERT, 1, cert.as_ptr().cast())
    };
    if r <= 0 {
        return Err(ErrorStack::get());
    }
    Ok(())
}

/// Loads a PEM CRL file into the context's store (`X509_load_crl_file` through a file
/// lookup, as nginx's `ngx_ssl_crl`).
pub fn load_crl_file(b: &mut SslContextBuilder, path: &Path) -> Result<(), ErrorStack> {
    use openssl::x509::store::X509Lookup;
    let store = b.cert_store_mut();
    let lookup = store.add_lookup(X509Lookup::file())?;
    #[cfg(not(feature = "aws-lc"))]
    {
        lookup.load_crl_file(path, openssl::ssl::SslFiletype::PEM)?;
    }
    #[cfg(feature = "aws-lc")]
    {
        let cpath = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
            .map_err(|_| ErrorStack::get())?;
        // SAFETY: a live lookup owned by the store, a NUL-terminated path.
        let n = unsafe {
            openssl_sys::X509_load_crl_file(
                lookup.as_ptr(),
                cpath.as_ptr(),
                openssl_sys::X509_FILETYPE_PEM as c_int,
            )
        };
        if n <= 0 {
            return Err(ErrorStack::get());
        }
    }
    Ok(())
}

/// Asks the library to free the connection's handshake configuration (certificate
/// copies, cipher and group lists, verify parameters) once its handshake is done:
/// `SSL_set_shed_handshake_config`, 1.3 KB per idle session on AWS-LC. The peer
/// certificate and the verify result live in the session and stay. OpenSSL has no
/// such call; there it is a no-op.
pub fn shed_handshake_config(ssl: &mut SslRef) {
    #[cfg(feature = "aws-lc")]
    // SAFETY: a live connection not yet handshaken; the call sets a flag.
    unsafe {
        openssl_sys::SSL_set_shed_handshake_config(ssl.as_ptr(), 1)
    };
    #[cfg(not(feature = "aws-lc"))]
    let _ = ssl;
}

/// `XN_FLAG_RFC2253`: RFC 2253 escaping, `,`/`+` separators, reversed order, short
/// names, unknown fields dumped.
const XN_FLAG_RFC2253: c_ulong = 0x0111_0317;
const BIO_CTRL_PENDING: c_int = 10;

/// The name as `X509_NAME_print_ex(..., XN_FLAG_RFC2253)` prints it, e.g.
/// `CN=client user,O=Example Org`.
pub fn rfc2253(name: &openssl::x509::X509NameRef) -> Option<String> {
    // SAFETY: a fresh memory BIO, written by X509_NAME_print_ex with a valid name,
    // read back for exactly the pending length into a buffer of that size, then freed.
    unsafe {
        let bio = openssl_sys::BIO_new(openssl_sys::BIO_s_mem());
        if bio.is_null() {
            return None;
        }
        let mut text = None;
        #[allow(clippy::useless_conversion)]
        if sys::X509_NAME_print_ex(bio, name.as_ptr(), 0, XN_FLAG_RFC2253.into()) >= 0 {
            let pending = openssl_sys::BIO_ctrl(bio, BIO_CTRL_PENDING, 0, std::ptr::null_mut());
            let len = usize::try_from(pending).unwrap_or(0);
            let mut buf = vec![0u8; len];
            let read = openssl_sys::BIO_read(
                bio,
                buf.as_mut_ptr().cast::<std::ffi::c_void>(),
                c_int::try_from(len).unwrap_or(0),
            );
            buf.truncate(usize::try_from(read).unwrap_or(0));
            text = Some(String::from_utf8_lossy(&buf).into_owned());
        }
        openssl_sys::BIO_free_all(bio);
        text
    }
}

/// An error stack as nginx's `ngx_ssl_error` prints it, in OpenSSL 3.0's words: `SSL:`,
/// then for each error ` ` + `ERR_error_string_n` + (`:` + its data, if any).
pub fn nginx_ssl_error(stack: &ErrorStack) -> String {
    let mut text = String::from("SSL:");
    let mut last = String::new();
    for e in stack.errors() {
        let entry = super::tls_words::ErrorText::from_library(e).with_data();
        // AWS-LC queues some errors twice in a row (e.g. `no cipher match` from the
        // cipher-string parser and again from its caller); OpenSSL once.
        if cfg!(feature = "aws-lc") && entry == last {
            continue;
        }
        text.push(' ');
        text.push_str(&entry);
        last = entry;
    }
    text
}
