//! `cargo +nightly fuzz run sasl`: the SASL decoders on any response, checked against
//! what they promise:
//!
//! - `decode_base64` agrees with a plain reference decoder written here (nginx's
//!   leniency: stop at the first `=`, refuse other non-alphabet bytes and a length of
//!   1 mod 4), and `encode_base64` round-trips any bytes;
//! - PLAIN splits `authzid NUL user NUL password` at the first two NULs;
//! - CRAM-MD5 gives a login without a space and a 32-byte digest;
//! - LOGIN and EXTERNAL are plain base64;
//! - `select_mechanism` on the words of the input picks a mechanism only by its name
//!   and argument count;
//! - a CRAM-MD5 challenge is one CRLF line that decodes back to the salt.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailproxy::proto::sasl::{self, SaslError, SaslStart};

const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Bit by bit, the obvious way.
fn reference_base64(input: &[u8]) -> Option<Vec<u8>> {
    let data = input.split(|&b| b == b'=').next().unwrap_or_default();
    if data.len() % 4 == 1 {
        // Still refused for a bad byte first, but refused either way.
        return None;
    }
    let mut bits = Vec::with_capacity(data.len() * 6);
    for &b in data {
        let value = ALPHABET.iter().position(|&a| a == b)?;
        for i in (0..6).rev() {
            bits.push((value >> i) & 1 == 1);
        }
    }
    Some(
        bits.chunks_exact(8)
            .map(|byte| byte.iter().fold(0u8, |acc, &bit| acc << 1 | u8::from(bit)))
            .collect(),
    )
}

fuzz_target!(|data: &[u8]| {
    let decoded = sasl::decode_base64(data);
    assert_eq!(decoded, reference_base64(data), "decode_base64 disagrees");

    let encoded = sasl::encode_base64(data);
    assert_eq!(encoded.len(), data.len().div_ceil(3) * 4);
    assert_eq!(sasl::decode_base64(&encoded).as_deref(), Some(data));

    match sasl::decode_plain(data) {
        Ok(plain) => {
            let raw = decoded.as_ref().expect("PLAIN accepted bad base64");
            let authzid = raw.iter().position(|&b| b == 0).unwrap();
            let mut rebuilt = raw[..=authzid].to_vec();
            rebuilt.extend_from_slice(&plain.login);
            rebuilt.push(0);
            rebuilt.extend_from_slice(plain.secret.expose());
            assert_eq!(&rebuilt, raw, "PLAIN split wrongly");
            assert!(!plain.login.contains(&0));
        }
        Err(SaslError::Base64("PLAIN")) => assert!(decoded.is_none()),
        Err(SaslError::PlainLogin | SaslError::PlainPassword) => {
            assert!(decoded.is_some())
        }
        Err(other) => panic!("PLAIN gave {other:?}"),
    }

    match sasl::decode_cram_md5(data) {
        Ok(cram) => {
            assert_eq!(cram.secret.expose().len(), 32);
            assert!(!cram.login.contains(&b' '));
            let mut rebuilt = cram.login.clone();
            rebuilt.push(b' ');
            rebuilt.extend_from_slice(cram.secret.expose());
            assert_eq!(Some(rebuilt), decoded);
        }
        Err(SaslError::Base64("CRAM-MD5")) => assert!(decoded.is_none()),
        Err(SaslError::CramMd5Hash) => assert!(decoded.is_some()),
        Err(other) => panic!("CRAM-MD5 gave {other:?}"),
    }

    assert_eq!(sasl::decode_login(data).ok(), decoded);
    assert_eq!(sasl::decode_external(data).ok(), decoded);
    for error in [sasl::decode_login(data), sasl::decode_external(data)] {
        if let Err(e) = error {
            let line = e.log_message();
            assert!(!line.contains(['\r', '\n']), "{line:?}");
        }
    }

    let words: Vec<&[u8]> = data.split(|&b| b == b' ').collect();
    if let Some(start) = sasl::select_mechanism(&words) {
        let name = words[0];
        let (expected, count): (&[u8], &[usize]) = match start {
            SaslStart::LoginPrompt => (b"LOGIN", &[1]),
            SaslStart::LoginUsername(_) => (b"LOGIN", &[2]),
            SaslStart::PlainPrompt => (b"PLAIN", &[1]),
            SaslStart::PlainResponse(_) => (b"PLAIN", &[2]),
            SaslStart::CramMd5 => (b"CRAM-MD5", &[1]),
            SaslStart::ExternalPrompt => (b"EXTERNAL", &[1]),
            SaslStart::ExternalResponse(_) => (b"EXTERNAL", &[2]),
        };
        assert!(name.eq_ignore_ascii_case(expected), "{start:?}");
        assert!(
            count.contains(&words.len()),
            "{start:?} with {} words",
            words.len()
        );
        if let SaslStart::LoginUsername(r)
        | SaslStart::PlainResponse(r)
        | SaslStart::ExternalResponse(r) = start
        {
            assert_eq!(r, words[1]);
        }
    }

    // A salt never has a CR or LF but its own final CRLF (it comes from server_name).
    if !data.contains(&b'\r') && !data.contains(&b'\n') {
        let mut salt = data.to_vec();
        salt.extend_from_slice(b"\r\n");
        for prefix in [&b"+ "[..], b"334 "] {
            let line = sasl::cram_md5_challenge(prefix, &salt);
            mailproxy_fuzz::assert_reply("CRAM-MD5 challenge", &line);
            let text = &line[prefix.len()..line.len() - 2];
            assert_eq!(sasl::decode_base64(text).as_deref(), Some(data));
        }
    }
});
