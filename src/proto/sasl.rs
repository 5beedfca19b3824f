//! SASL decoding shared by IMAP `AUTHENTICATE`, POP3 `AUTH` and SMTP `AUTH`.
//!
//! Pure functions, no session state: the protocol machines keep the login and password
//! and decide what to reply. Every rule follows nginx's `ngx_mail_auth_parse` and the
//! `ngx_mail_auth_*` decoders (reference §8), including their leniencies:
//!
//! - base64 decoding stops at the first `=` and ignores everything after it, accepts
//!   missing padding, and rejects any other non-alphabet byte ([`decode_base64`]);
//! - the PLAIN authorization identity is skipped and never checked;
//! - the CRAM-MD5 digest must be 32 bytes long but is not checked for hex.
//!
//! A decoding error never touches the caller's stored credentials (the reference has the
//! CVE-2025-53859 backport): decoders return new values and the caller stores them only
//! on success.

use std::hash::{BuildHasher, Hasher};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::secret::Secret;

/// `Username:` in base64: the LOGIN / EXTERNAL username prompt.
pub const USERNAME_PROMPT: &[u8] = b"VXNlcm5hbWU6";
/// `Password:` in base64: the LOGIN password prompt.
pub const PASSWORD_PROMPT: &[u8] = b"UGFzc3dvcmQ6";

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// How a client opened a SASL exchange (`ngx_mail_auth_parse`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslStart<'a> {
    /// `LOGIN`: prompt for the username.
    LoginPrompt,
    /// `LOGIN <b64 user>`: decode the user, then prompt for the password.
    LoginUsername(&'a [u8]),
    /// `PLAIN`: send an empty challenge.
    PlainPrompt,
    /// `PLAIN <b64>` (SASL-IR): decode and authenticate at once.
    PlainResponse(&'a [u8]),
    /// `CRAM-MD5`: send the salt challenge (only if the mechanism is enabled).
    CramMd5,
    /// `EXTERNAL`: prompt for the username (only if the mechanism is enabled).
    ExternalPrompt,
    /// `EXTERNAL <b64 user>`: authenticate at once, enabled or not (as nginx).
    ExternalResponse(&'a [u8]),
}

/// Picks the mechanism from a command's arguments (`args[0]` is the mechanism name,
/// compared case-insensitively). `None` means "invalid command".
///
/// The caller checks `starttls only` first, as nginx does.
pub fn select_mechanism<A: AsRef<[u8]>>(args: &[A]) -> Option<SaslStart<'_>> {
    let name = args.first()?.as_ref();
    let second = args.get(1).map(|a| a.as_ref());
    let count = args.len();
    if name.eq_ignore_ascii_case(b"LOGIN") {
        match second {
            None => Some(SaslStart::LoginPrompt),
            Some(user) if count == 2 => Some(SaslStart::LoginUsername(user)),
            Some(_) => None,
        }
    } else if name.eq_ignore_ascii_case(b"PLAIN") {
        match second {
            None => Some(SaslStart::PlainPrompt),
            Some(response) if count == 2 => Some(SaslStart::PlainResponse(response)),
            Some(_) => None,
        }
    } else if name.eq_ignore_ascii_case(b"CRAM-MD5") {
        (count == 1).then_some(SaslStart::CramMd5)
    } else if name.eq_ignore_ascii_case(b"EXTERNAL") {
        match second {
            None => Some(SaslStart::ExternalPrompt),
            Some(user) if count == 2 => Some(SaslStart::ExternalResponse(user)),
            Some(_) => None,
        }
    } else {
        None
    }
}

/// Why a SASL response was refused. Every case is a (semantic) invalid command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslError {
    /// Bad base64 in a response of the named mechanism (`PLAIN`, `LOGIN`, ...).
    Base64(&'static str),
    /// PLAIN without the NUL that ends the authorization identity.
    PlainLogin,
    /// PLAIN without the NUL that ends the user.
    PlainPassword,
    /// CRAM-MD5 without `user SP digest`, or a digest that is not 32 bytes.
    CramMd5Hash,
}

impl SaslError {
    /// The text nginx logs at info level for this error.
    pub fn log_message(self) -> String {
        match self {
            SaslError::Base64(mechanism) => {
                format!("client sent invalid base64 encoding in AUTH {mechanism} command")
            }
            SaslError::PlainLogin => "client sent invalid login in AUTH PLAIN command".into(),
            SaslError::PlainPassword => "client sent invalid password in AUTH PLAIN command".into(),
            SaslError::CramMd5Hash => {
                "client sent invalid CRAM-MD5 hash in AUTH CRAM-MD5 command".into()
            }
        }
    }
}

/// A decoded user and secret (password or CRAM-MD5 digest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSecret {
    pub login: Vec<u8>,
    pub secret: Secret<Vec<u8>>,
}

/// PLAIN: `authzid NUL user NUL password`; the authzid is discarded.
pub fn decode_plain(response: &[u8]) -> Result<UserSecret, SaslError> {
    let plain = decode_base64(response).ok_or(SaslError::Base64("PLAIN"))?;
    let after_authzid = match plain.iter().position(|&b| b == 0) {
        Some(nul) if nul + 1 < plain.len() => nul + 1,
        _ => return Err(SaslError::PlainLogin),
    };
    let rest = &plain[after_authzid..];
    let nul = rest
        .iter()
        .position(|&b| b == 0)
        .ok_or(SaslError::PlainPassword)?;
    Ok(UserSecret {
        login: rest[..nul].to_vec(),
        secret: Secret::new(rest[nul + 1..].to_vec()),
    })
}

/// LOGIN: one base64 line for the username, one for the password; anything decodable
/// (even empty) is accepted.
pub fn decode_login(response: &[u8]) -> Result<Vec<u8>, SaslError> {
    decode_base64(response).ok_or(SaslError::Base64("LOGIN"))
}

/// CRAM-MD5: `user SP digest`, split at the first space; the digest must be 32 bytes.
///
/// nginx keeps the previous password when there is no space (so a stale 32-byte
/// password would pass) and stores the user even when the digest is refused; we refuse
/// a response without a space and store nothing on error (nginx-differences).
pub fn decode_cram_md5(response: &[u8]) -> Result<UserSecret, SaslError> {
    let decoded = decode_base64(response).ok_or(SaslError::Base64("CRAM-MD5"))?;
    let space = decoded
        .iter()
        .position(|&b| b == b' ')
        .ok_or(SaslError::CramMd5Hash)?;
    let digest = &decoded[space + 1..];
    if digest.len() != 32 {
        return Err(SaslError::CramMd5Hash);
    }
    Ok(UserSecret {
        login: decoded[..space].to_vec(),
        secret: Secret::new(digest.to_vec()),
    })
}

/// EXTERNAL: the decoded value is the login; the password is left as it was.
pub fn decode_external(response: &[u8]) -> Result<Vec<u8>, SaslError> {
    decode_base64(response).ok_or(SaslError::Base64("EXTERNAL"))
}

/// The CRAM-MD5 challenge line: `prefix` + base64 of the salt without its CRLF + CRLF.
pub fn cram_md5_challenge(prefix: &[u8], salt: &[u8]) -> Vec<u8> {
    let bare = salt.strip_suffix(b"\r\n").unwrap_or(salt);
    let mut line = prefix.to_vec();
    line.extend_from_slice(&encode_base64(bare));
    line.extend_from_slice(b"\r\n");
    line
}

/// A fresh salt `<RANDOM.UNIXTIME@server_name>\r\n` (`ngx_mail_salt`), RANDOM being
/// a non-negative 31-bit integer like C `random()`.
pub fn make_salt(server_name: &str) -> Vec<u8> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("<{}.{}@{}>\r\n", random31(), now, server_name).into_bytes()
}

/// A cheap non-cryptographic random number: the salt only has to differ between
/// sessions (nginx uses `random()`), so std's randomly keyed hasher is enough.
fn random31() -> u32 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    (hasher.finish() & 0x7fff_ffff) as u32
}

/// nginx's `ngx_decode_base64`: `None` for a non-alphabet byte before the first `=`
/// or a data length ≡ 1 (mod 4); everything from the first `=` on is ignored.
pub fn decode_base64(input: &[u8]) -> Option<Vec<u8>> {
    let data = match input.iter().position(|&b| b == b'=') {
        Some(end) => &input[..end],
        None => input,
    };
    let sextets: Vec<u8> = data.iter().map(|&b| sextet(b)).collect::<Option<_>>()?;
    if sextets.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(sextets.len() * 3 / 4);
    for chunk in sextets.chunks(4) {
        let bits = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &s)| acc | u32::from(s) << (18 - 6 * i));
        let bytes = [(bits >> 16) as u8, (bits >> 8) as u8, bits as u8];
        out.extend_from_slice(&bytes[..chunk.len() - 1]);
    }
    Some(out)
}

fn sextet(b: u8) -> Option<u8> {
    match b {
        b'A'..=b'Z' => Some(b - b'A'),
        b'a'..=b'z' => Some(b - b'a' + 26),
        b'0'..=b'9' => Some(b - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

/// Standard base64 with padding.
pub fn encode_base64(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let bits = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &b)| acc | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(bits >> (18 - 6 * i) & 0x3f) as usize]);
            } else {
                out.push(b'=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_follows_nginx_leniency() {
        assert_eq!(decode_base64(b"YWxpY2U=").unwrap(), b"alice");
        assert_eq!(decode_base64(b"YWxpY2U").unwrap(), b"alice");
        assert_eq!(decode_base64(b"YWxpY2U=!!garbage").unwrap(), b"alice");
        assert_eq!(decode_base64(b"").unwrap(), b"");
        assert_eq!(decode_base64(b"=").unwrap(), b"");
        assert_eq!(decode_base64(b"YWxpY"), None, "length 5 = 1 mod 4");
        assert_eq!(decode_base64(b"YW!p"), None);
        assert_eq!(decode_base64(b"*"), None);
        assert_eq!(decode_base64(b"YW xp"), None);
        assert_eq!(decode_base64(b"+/+/").unwrap(), [0xfb, 0xff, 0xbf]);
    }

    #[test]
    fn base64_encodes_with_padding() {
        assert_eq!(encode_base64(b""), b"");
        assert_eq!(encode_base64(b"a"), b"YQ==");
        assert_eq!(encode_base64(b"ab"), b"YWI=");
        assert_eq!(encode_base64(b"abc"), b"YWJj");
        assert_eq!(encode_base64(b"Username:"), USERNAME_PROMPT);
        assert_eq!(encode_base64(b"Password:"), PASSWORD_PROMPT);
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(decode_base64(&encode_base64(&all)).unwrap(), all);
    }

    #[test]
    fn mechanism_selection() {
        fn sel<'a>(args: &'a [&'a [u8]]) -> Option<SaslStart<'a>> {
            select_mechanism(args)
        }
        assert_eq!(sel(&[b"login"]), Some(SaslStart::LoginPrompt));
        assert_eq!(
            sel(&[b"LOGIN", b"dQ=="]),
            Some(SaslStart::LoginUsername(b"dQ=="))
        );
        assert_eq!(sel(&[b"LOGIN", b"a", b"b"]), None);
        assert_eq!(sel(&[b"Plain"]), Some(SaslStart::PlainPrompt));
        assert_eq!(sel(&[b"PLAIN", b"x"]), Some(SaslStart::PlainResponse(b"x")));
        assert_eq!(sel(&[b"PLAIN", b"x", b"y"]), None);
        assert_eq!(sel(&[b"cram-md5"]), Some(SaslStart::CramMd5));
        assert_eq!(sel(&[b"CRAM-MD5", b"x"]), None);
        assert_eq!(sel(&[b"EXTERNAL"]), Some(SaslStart::ExternalPrompt));
        assert_eq!(
            sel(&[b"EXTERNAL", b"x"]),
            Some(SaslStart::ExternalResponse(b"x"))
        );
        assert_eq!(sel(&[b"EXTERNAL", b"x", b"y"]), None);
        assert_eq!(sel(&[b"DIGEST-MD5"]), None);
        assert_eq!(sel(&[] as &[&[u8]]), None);
    }

    #[test]
    fn plain_decoding() {
        let ok = decode_plain(&encode_base64(b"authz\0alice\0pw")).unwrap();
        assert_eq!(
            (ok.login.as_slice(), ok.secret.expose().as_slice()),
            (&b"alice"[..], &b"pw"[..])
        );
        let empty = decode_plain(&encode_base64(b"\0\0")).unwrap();
        assert_eq!((empty.login.len(), empty.secret.expose().len()), (0, 0));
        let with_nul = decode_plain(&encode_base64(b"\0u\0p\0q")).unwrap();
        assert_eq!(with_nul.secret.expose(), b"p\0q");
        assert_eq!(decode_plain(b"*"), Err(SaslError::Base64("PLAIN")));
        assert_eq!(
            decode_plain(&encode_base64(b"alice")),
            Err(SaslError::PlainLogin)
        );
        assert_eq!(
            decode_plain(&encode_base64(b"alice\0")),
            Err(SaslError::PlainLogin)
        );
        assert_eq!(
            decode_plain(&encode_base64(b"\0alice")),
            Err(SaslError::PlainPassword)
        );
        assert!(!format!("{with_nul:?}").contains("p\\0q"));
    }

    #[test]
    fn cram_md5_decoding() {
        let digest = "0123456789abcdef0123456789abcdef";
        let ok = decode_cram_md5(&encode_base64(format!("bob {digest}").as_bytes())).unwrap();
        assert_eq!(ok.login, b"bob");
        assert_eq!(ok.secret.expose(), digest.as_bytes());
        let short = encode_base64(b"bob 0123");
        assert_eq!(decode_cram_md5(&short), Err(SaslError::CramMd5Hash));
        let no_space = encode_base64(digest.as_bytes());
        assert_eq!(decode_cram_md5(&no_space), Err(SaslError::CramMd5Hash));
        assert_eq!(decode_cram_md5(b"!"), Err(SaslError::Base64("CRAM-MD5")));
    }

    #[test]
    fn error_log_texts() {
        assert_eq!(
            SaslError::Base64("LOGIN").log_message(),
            "client sent invalid base64 encoding in AUTH LOGIN command"
        );
        assert_eq!(
            SaslError::PlainPassword.log_message(),
            "client sent invalid password in AUTH PLAIN command"
        );
    }

    #[test]
    fn salt_and_challenge() {
        let salt = make_salt("mx.test");
        let text = String::from_utf8(salt.clone()).unwrap();
        assert!(
            text.starts_with('<') && text.ends_with("@mx.test>\r\n"),
            "{text}"
        );
        let inner = &text[1..text.find('@').unwrap()];
        let (random, time) = inner.split_once('.').unwrap();
        assert!(random.parse::<u32>().unwrap() <= 0x7fff_ffff);
        assert!(time.parse::<u64>().unwrap() > 1_600_000_000);
        let fixed = b"<1766480764.1795842757@mx.test>\r\n";
        assert_eq!(
            cram_md5_challenge(b"+ ", fixed),
            b"+ PDE3NjY0ODA3NjQuMTc5NTg0Mjc1N0BteC50ZXN0Pg==\r\n"
        );
    }
}
