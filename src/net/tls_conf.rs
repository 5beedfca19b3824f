//! `ssl_conf_command`: OpenSSL configuration commands, applied as nginx applies them.
//!
//! nginx (`ngx_ssl_conf_commands`) hands each command to `SSL_CONF_cmd` on an
//! `SSL_CONF_CTX` (flags FILE, SERVER, CLIENT, CERTIFICATE, SHOW_ERRORS) after the rest of
//! the context is set up, then calls `SSL_CONF_CTX_finish`. A command the library does
//! not know or refuses fails the configuration:
//! `SSL_CONF_cmd("Foo", "bar") failed (SSL: error:0A000182:SSL routines::unknown cmd
//! name:cmd=Foo)`.
//!
//! On the system's OpenSSL this module does exactly that. AWS-LC has no `SSL_CONF` API,
//! so there the commands nginx users set are carried out with the equivalent `SSL_CTX`
//! calls ([`aws_lc`]), any other is refused, and errors read as OpenSSL 3.0's (the
//! library's own errors mapped by [`super::tls_words`], then OpenSSL's `bad value`).
//! Names are matched without regard to case, as `SSL_CONF_cmd` does for FILE commands.

use openssl::error::ErrorStack;
use openssl::ssl::SslContextBuilder;

use super::tls::TlsError;

/// Applies every command in order; `warnings` gets what has no effect in this library.
pub fn apply(
    b: &mut SslContextBuilder,
    commands: &[(String, String)],
    warnings: &mut Vec<String>,
) -> Result<(), TlsError> {
    if commands.is_empty() {
        return Ok(());
    }
    imp::apply(b, commands, warnings)
}

fn failed(key: &str, value: &str, queue: &str) -> TlsError {
    TlsError(format!(
        "SSL_CONF_cmd(\"{key}\", \"{value}\") failed ({queue})"
    ))
}

#[cfg(not(feature = "aws-lc"))]
mod imp {
    use std::ffi::{c_char, c_int, c_uint, c_void, CString};

    use super::super::tls_lib::nginx_ssl_error;
    use super::*;

    extern "C" {
        fn SSL_CONF_CTX_new() -> *mut c_void;
        fn SSL_CONF_CTX_free(cctx: *mut c_void);
        fn SSL_CONF_CTX_set_flags(cctx: *mut c_void, flags: c_uint) -> c_uint;
        fn SSL_CONF_CTX_set_ssl_ctx(cctx: *mut c_void, ctx: *mut openssl_sys::SSL_CTX);
        fn SSL_CONF_cmd(cctx: *mut c_void, cmd: *const c_char, value: *const c_char) -> c_int;
        fn SSL_CONF_CTX_finish(cctx: *mut c_void) -> c_int;
    }

    const SSL_CONF_FLAG_FILE: c_uint = 0x2;
    const SSL_CONF_FLAG_CLIENT: c_uint = 0x4;
    const SSL_CONF_FLAG_SERVER: c_uint = 0x8;
    const SSL_CONF_FLAG_SHOW_ERRORS: c_uint = 0x10;
    const SSL_CONF_FLAG_CERTIFICATE: c_uint = 0x20;

    /// Frees the `SSL_CONF_CTX` however `apply` returns.
    struct ConfCtx(*mut c_void);
    impl Drop for ConfCtx {
        fn drop(&mut self) {
            // SAFETY: created by SSL_CONF_CTX_new, freed once.
            unsafe { SSL_CONF_CTX_free(self.0) }
        }
    }

    pub fn apply(
        b: &mut SslContextBuilder,
        commands: &[(String, String)],
        _warnings: &mut Vec<String>,
    ) -> Result<(), TlsError> {
        drop(ErrorStack::get());
        // SAFETY: a fresh SSL_CONF_CTX, owned by `cctx` from here on.
        let cctx = ConfCtx(unsafe { SSL_CONF_CTX_new() });
        if cctx.0.is_null() {
            return Err(TlsError(format!(
                "SSL_CONF_CTX_new() failed ({})",
                nginx_ssl_error(&ErrorStack::get())
            )));
        }
        // SAFETY: a live SSL_CONF_CTX and the builder's live SSL_CTX, which outlives it.
        unsafe {
            SSL_CONF_CTX_set_flags(
                cctx.0,
                SSL_CONF_FLAG_FILE
                    | SSL_CONF_FLAG_SERVER
                    | SSL_CONF_FLAG_CLIENT
                    | SSL_CONF_FLAG_CERTIFICATE
                    | SSL_CONF_FLAG_SHOW_ERRORS,
            );
            SSL_CONF_CTX_set_ssl_ctx(cctx.0, b.as_ptr());
        }
        for (key, value) in commands {
            let (Ok(k), Ok(v)) = (CString::new(key.as_str()), CString::new(value.as_str())) else {
                return Err(failed(key, value, "SSL:"));
            };
            // SAFETY: NUL-terminated strings that outlive the call.
            let rc = unsafe { SSL_CONF_cmd(cctx.0, k.as_ptr(), v.as_ptr()) };
            if rc <= 0 {
                return Err(failed(key, value, &nginx_ssl_error(&ErrorStack::get())));
            }
        }
        // SAFETY: the live SSL_CONF_CTX.
        if unsafe { SSL_CONF_CTX_finish(cctx.0) } != 1 {
            return Err(TlsError(format!(
                "SSL_CONF_finish() failed ({})",
                nginx_ssl_error(&ErrorStack::get())
            )));
        }
        Ok(())
    }
}

#[cfg(feature = "aws-lc")]
pub(super) mod imp {
    use std::ffi::{c_int, CString};

    use openssl::ssl::{SslOptions, SslVersion};

    use super::super::tls_lib::nginx_ssl_error;
    use super::*;

    /// OpenSSL 3.0's `SSL_R_BAD_VALUE` entry, which `SSL_CONF_cmd` appends to every
    /// refused value.
    fn bad_value(key: &str, value: &str) -> String {
        format!("error:0A000180:SSL routines::bad value:cmd={key}, value={value}")
    }

    /// The message for a value the library refused, as OpenSSL 3.0 words it: for the
    /// commands OpenSSL parses itself only `bad value`; for the others the library's
    /// error queue in OpenSSL's words, then `bad value`.
    fn refused(key: &str, value: &str) -> TlsError {
        let stack = ErrorStack::get();
        let parsed_by_openssl = [
            "SignatureAlgorithms",
            "Options",
            "MinProtocol",
            "MaxProtocol",
            "Protocol",
            "NumTickets",
        ]
        .iter()
        .any(|k| k.eq_ignore_ascii_case(key));
        let queue = if parsed_by_openssl {
            "SSL:".to_string()
        } else {
            nginx_ssl_error(&stack)
        };
        refused_with(key, value, &queue)
    }

    fn refused_with(key: &str, value: &str, queue: &str) -> TlsError {
        failed(key, value, &format!("{queue} {}", bad_value(key, value)))
    }

    /// The commands this build carries out, by OpenSSL's FILE name.
    pub const KNOWN: &[&str] = &[
        "Ciphersuites",
        "CipherString",
        "Options",
        "Groups",
        "Curves",
        "MinProtocol",
        "MaxProtocol",
        "Protocol",
        "SignatureAlgorithms",
        "Certificate",
        "PrivateKey",
        "NumTickets",
        "DHParameters",
    ];

    pub fn apply(
        b: &mut SslContextBuilder,
        commands: &[(String, String)],
        warnings: &mut Vec<String>,
    ) -> Result<(), TlsError> {
        for (key, value) in commands {
            drop(ErrorStack::get());
            let Some(name) = KNOWN.iter().find(|k| k.eq_ignore_ascii_case(key)) else {
                return Err(failed(
                    key,
                    value,
                    &format!("SSL: error:0A000182:SSL routines::unknown cmd name:cmd={key}"),
                ));
            };
            let Ok(cvalue) = CString::new(value.as_str()) else {
                return Err(failed(
                    key,
                    value,
                    &format!("SSL: {}", bad_value(key, value)),
                ));
            };
            let ctx = b.as_ptr();
            // SAFETY (every call below): the builder's live SSL_CTX and a NUL-terminated
            // value that outlives the call.
            let ok = match *name {
                "Ciphersuites" => unsafe {
                    openssl_sys::SSL_CTX_set_ciphersuites(ctx, cvalue.as_ptr()) == 1
                },
                "CipherString" => unsafe {
                    openssl_sys::SSL_CTX_set_cipher_list(ctx, cvalue.as_ptr()) == 1
                },
                "Groups" | "Curves" => {
                    let groups = super::super::tls::supported_groups(value, key, warnings);
                    if let Err(queue) = super::super::tls::set_groups_list(b, &groups) {
                        return Err(refused_with(key, value, &queue));
                    }
                    true
                }
                "SignatureAlgorithms" => unsafe {
                    openssl_sys::SSL_CTX_set1_sigalgs_list(ctx, cvalue.as_ptr()) == 1
                },
                "Certificate" => unsafe {
                    openssl_sys::SSL_CTX_use_certificate_chain_file(ctx, cvalue.as_ptr()) == 1
                },
                "PrivateKey" => unsafe {
                    openssl_sys::SSL_CTX_use_PrivateKey_file(
                        ctx,
                        cvalue.as_ptr(),
                        openssl_sys::SSL_FILETYPE_PEM as c_int,
                    ) == 1
                },
                "NumTickets" => match value.parse::<usize>() {
                    Ok(n) => unsafe { openssl_sys::SSL_CTX_set_num_tickets(ctx, n) == 1 },
                    Err(_) => false,
                },
                "MinProtocol" | "MaxProtocol" => match protocol_version(value) {
                    Some(version) => {
                        let r = if *name == "MinProtocol" {
                            b.set_min_proto_version(version)
                        } else {
                            b.set_max_proto_version(version)
                        };
                        r.is_ok()
                    }
                    None => false,
                },
                "Protocol" => apply_flags(b, value, protocol_flag),
                "Options" => {
                    let mut notes = Vec::new();
                    let ok = apply_flags(b, value, |name| option_flag(name, &mut notes));
                    for note in notes {
                        warnings.push(format!(
                            "\"ssl_conf_command Options {note}\" has no effect: this mailproxy \
                             uses AWS-LC, which has no such option"
                        ));
                    }
                    ok
                }
                "DHParameters" => {
                    warnings.push(
                        "\"ssl_conf_command DHParameters\" has no effect: this mailproxy uses \
                         AWS-LC, which has no DHE cipher suites"
                            .into(),
                    );
                    true
                }
                _ => unreachable!("every KNOWN name is handled"),
            };
            if !ok {
                return Err(refused(key, value));
            }
        }
        Ok(())
    }

    /// `MinProtocol`/`MaxProtocol` values (OpenSSL's `protocol_from_string`); `None`
    /// inside means no limit. SSLv3 is a name OpenSSL knows but AWS-LC cannot do.
    fn protocol_version(value: &str) -> Option<Option<SslVersion>> {
        Some(match value {
            v if v.eq_ignore_ascii_case("None") => None,
            "TLSv1" => Some(SslVersion::TLS1),
            "TLSv1.1" => Some(SslVersion::TLS1_1),
            "TLSv1.2" => Some(SslVersion::TLS1_2),
            "TLSv1.3" => Some(SslVersion::TLS1_3),
            _ => return None,
        })
    }

    /// What a flag name does: set these option bits when named plainly (or clear them
    /// when the name has a `-`), or the reverse for OpenSSL's inverted options.
    enum Flag {
        Set(SslOptions),
        Inverted(SslOptions),
        NoEffect,
    }

    fn protocol_flag(name: &str) -> Option<Flag> {
        // `Protocol TLSv1.2` enables the version, i.e. clears its NO_ option.
        Some(Flag::Inverted(match name {
            "TLSv1" => SslOptions::NO_TLSV1,
            "TLSv1.1" => SslOptions::NO_TLSV1_1,
            "TLSv1.2" => SslOptions::NO_TLSV1_2,
            "TLSv1.3" => SslOptions::NO_TLSV1_3,
            "ALL" => {
                SslOptions::NO_TLSV1
                    | SslOptions::NO_TLSV1_1
                    | SslOptions::NO_TLSV1_2
                    | SslOptions::NO_TLSV1_3
            }
            // OpenSSL knows these names; AWS-LC never does them, so enabling or
            // disabling them changes nothing.
            "SSLv2" | "SSLv3" => return Some(Flag::NoEffect),
            _ => return None,
        }))
    }

    /// OpenSSL 3.0's `Options` names (ssl_conf.c `ssl_option_list`).
    fn option_flag(name: &str, no_effect: &mut Vec<String>) -> Option<Flag> {
        Some(match name {
            "SessionTicket" => Flag::Inverted(SslOptions::NO_TICKET),
            "ServerPreference" => Flag::Set(SslOptions::CIPHER_SERVER_PREFERENCE),
            // AWS-LC never compresses, never renegotiates as a server and has no
            // workarounds to switch: these ask for what it already does or cannot do.
            "Compression"
            | "EmptyFragments"
            | "Bugs"
            | "DHSingle"
            | "ECDHSingle"
            | "UnsafeLegacyRenegotiation"
            | "UnsafeLegacyServerConnect"
            | "NoResumptionOnRenegotiation"
            | "LegacyServerConnect"
            | "NoRenegotiation"
            | "ClientRenegotiation"
            | "AllowNoDHEKEX"
            | "PrioritizeChaCha"
            | "MiddleboxCompat"
            | "AntiReplay"
            | "ExtendedMasterSecret"
            | "CANames"
            | "KTLS"
            | "EncryptThenMac"
            | "IgnoreUnexpectedEOF" => {
                no_effect.push(name.to_string());
                Flag::NoEffect
            }
            _ => return None,
        })
    }

    /// A comma-separated flag list (`-SessionTicket,ServerPreference`), as OpenSSL's
    /// `CONF_parse_list` with `ssl_set_option_list`; `false` on an unknown name.
    fn apply_flags(
        b: &mut SslContextBuilder,
        value: &str,
        mut lookup: impl FnMut(&str) -> Option<Flag>,
    ) -> bool {
        for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (on, name) = match item.strip_prefix('-') {
                Some(rest) => (false, rest),
                None => (true, item.strip_prefix('+').unwrap_or(item)),
            };
            match lookup(name) {
                None => return false,
                Some(Flag::NoEffect) => {}
                Some(Flag::Set(bits)) if on => {
                    b.set_options(bits);
                }
                Some(Flag::Set(bits)) => {
                    b.clear_options(bits);
                }
                Some(Flag::Inverted(bits)) if on => {
                    b.clear_options(bits);
                }
                Some(Flag::Inverted(bits)) => {
                    b.set_options(bits);
                }
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use openssl::ssl::{SslMethod, SslOptions};

    use super::*;

    fn run(commands: &[(&str, &str)]) -> (SslContextBuilder, Result<(), String>, Vec<String>) {
        let mut b = SslContextBuilder::new(SslMethod::tls_server()).unwrap();
        let commands: Vec<(String, String)> = commands
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut warnings = Vec::new();
        let r = apply(&mut b, &commands, &mut warnings).map_err(|e| e.0);
        (b, r, warnings)
    }

    /// nginx 1.22.1 on OpenSSL 3.0, `nginx -t`, for each refused command.
    #[test]
    fn refusals_read_as_nginx_s() {
        let cases = [
            (
                ("Foo", "bar"),
                "SSL_CONF_cmd(\"Foo\", \"bar\") failed (SSL: error:0A000182:SSL routines::\
                 unknown cmd name:cmd=Foo)",
            ),
            (
                ("Ciphersuites", "TLS_BOGUS"),
                "SSL_CONF_cmd(\"Ciphersuites\", \"TLS_BOGUS\") failed (SSL: error:0A0000B9:SSL \
                 routines::no cipher match error:0A000180:SSL routines::bad value:\
                 cmd=Ciphersuites, value=TLS_BOGUS)",
            ),
            (
                ("Options", "Bogus"),
                "SSL_CONF_cmd(\"Options\", \"Bogus\") failed (SSL: error:0A000180:SSL routines::\
                 bad value:cmd=Options, value=Bogus)",
            ),
            (
                ("Groups", "X25519:nonsense"),
                "SSL_CONF_cmd(\"Groups\", \"X25519:nonsense\") failed (SSL: error:0A080106:SSL \
                 routines::passed invalid argument:group 'nonsense' cannot be set \
                 error:0A000180:SSL routines::bad value:cmd=Groups, value=X25519:nonsense)",
            ),
            (
                ("MinProtocol", "bogus"),
                "SSL_CONF_cmd(\"MinProtocol\", \"bogus\") failed (SSL: error:0A000180:SSL \
                 routines::bad value:cmd=MinProtocol, value=bogus)",
            ),
            (
                ("SignatureAlgorithms", "bogus"),
                "SSL_CONF_cmd(\"SignatureAlgorithms\", \"bogus\") failed (SSL: error:0A000180:\
                 SSL routines::bad value:cmd=SignatureAlgorithms, value=bogus)",
            ),
            (
                ("Certificate", "/nonexistent/mailproxy.pem"),
                "SSL_CONF_cmd(\"Certificate\", \"/nonexistent/mailproxy.pem\") failed (SSL: \
                 error:80000002:system library::No such file or directory:calling \
                 fopen(/nonexistent/mailproxy.pem, r) error:10080002:BIO routines::system lib \
                 error:0A080002:SSL routines::system lib error:0A000180:SSL routines::bad \
                 value:cmd=Certificate, value=/nonexistent/mailproxy.pem)",
            ),
        ];
        for ((key, value), nginx) in cases {
            let (_, r, _) = run(&[(key, value)]);
            assert_eq!(r.unwrap_err(), nginx);
        }
    }

    #[test]
    fn options_and_protocols_are_applied() {
        let (b, r, _) = run(&[("Options", "-SessionTicket,ServerPreference")]);
        r.unwrap();
        let options = b.options();
        assert!(options.contains(SslOptions::NO_TICKET));
        assert!(options.contains(SslOptions::CIPHER_SERVER_PREFERENCE));
        let (b, r, _) = run(&[
            ("Options", "ServerPreference"),
            ("Options", "-ServerPreference"),
        ]);
        r.unwrap();
        assert!(!b.options().contains(SslOptions::CIPHER_SERVER_PREFERENCE));
        // Names are case-insensitive, as in SSL_CONF_cmd's file mode.
        let (_, r, _) = run(&[
            ("minprotocol", "TLSv1.2"),
            ("MaxProtocol", "TLSv1.3"),
            ("ciphersuites", "TLS_CHACHA20_POLY1305_SHA256"),
            ("Curves", "P-256:X25519"),
            ("SignatureAlgorithms", "RSA-PSS+SHA256:ECDSA+SHA256"),
        ]);
        r.unwrap();
    }

    #[test]
    fn what_aws_lc_cannot_do_is_a_warning() {
        let (_, r, warnings) = run(&[("Groups", "X448:X25519"), ("Options", "PrioritizeChaCha")]);
        r.unwrap();
        if cfg!(feature = "aws-lc") {
            assert_eq!(
                warnings,
                [
                    "X448 in \"Groups\" is ignored: this mailproxy uses AWS-LC, which has no X448",
                    "\"ssl_conf_command Options PrioritizeChaCha\" has no effect: this mailproxy \
                     uses AWS-LC, which has no such option",
                ]
            );
        } else {
            assert!(warnings.is_empty(), "{warnings:?}");
        }
    }
}
