//! nginx's value syntaxes (`core/ngx_parse.c`, `ngx_atoi`), rewritten.

use std::time::Duration;

/// `ngx_atoi`: one or more ASCII digits, nothing else, no sign.
pub fn parse_number(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok().filter(|n| *n <= i64::MAX as u64)
}

/// `ngx_parse_size`: a number with an optional `k`/`K` or `m`/`M` suffix.
pub fn parse_size(text: &str) -> Option<usize> {
    let (digits, scale) = match text.as_bytes().last()? {
        b'k' | b'K' => (&text[..text.len() - 1], 1024),
        b'm' | b'M' => (&text[..text.len() - 1], 1024 * 1024),
        _ => (text, 1),
    };
    let n = usize::try_from(parse_number(digits)?).ok()?;
    n.checked_mul(scale).filter(|v| *v <= isize::MAX as usize)
}

/// Which variant of `ngx_parse_time` a directive uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeUnit {
    /// `ngx_conf_set_msec_slot`: units `w d h m s ms`; `y` and `M` refused.
    Msec,
    /// `ngx_conf_set_sec_slot`: units `y M w d h m s`; `ms` refused.
    Sec,
}

/// `ngx_parse_time`: number+unit groups in decreasing order, optionally separated by
/// spaces; a final bare number is seconds (`timeout 30000;` is 30000 s).
pub fn parse_time(text: &str, unit: TimeUnit) -> Option<Duration> {
    const MINUTE: u64 = 60;
    const HOUR: u64 = 60 * MINUTE;
    const DAY: u64 = 24 * HOUR;
    let is_sec = unit == TimeUnit::Sec;
    let bytes = text.as_bytes();
    // Ranks of units, largest first; each unit must rank after the previous one.
    // 0 = nothing yet, 1 = y, 2 = M, 3 = w, 4 = d, 5 = h, 6 = m, 7 = s, 8 = ms, 9 = " ".
    let mut rank = if is_sec { 0 } else { 2 };
    let mut total_ms: u128 = 0;
    let mut value: u128 = 0;
    let mut valid = false;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        i += 1;
        if b.is_ascii_digit() {
            value = value * 10 + u128::from(b - b'0');
            if value > i64::MAX as u128 {
                return None;
            }
            valid = true;
            continue;
        }
        let (new_rank, ms_per_unit): (u8, u64) = match b {
            b'y' => (1, 365 * DAY * 1000),
            b'M' => (2, 30 * DAY * 1000),
            b'w' => (3, 7 * DAY * 1000),
            b'd' => (4, DAY * 1000),
            b'h' => (5, HOUR * 1000),
            b'm' if bytes.get(i) == Some(&b's') => {
                if is_sec {
                    return None;
                }
                i += 1;
                (8, 1)
            }
            b'm' => (6, MINUTE * 1000),
            b's' => (7, 1000),
            b' ' => (9, 1000),
            _ => return None,
        };
        // A space ends a bare number, which counts as seconds and must come last.
        let refused = if b == b' ' {
            rank >= 7
        } else {
            rank >= new_rank
        };
        if refused {
            return None;
        }
        rank = new_rank;
        total_ms += value * u128::from(ms_per_unit);
        value = 0;
        while bytes.get(i) == Some(&b' ') {
            i += 1;
        }
    }
    if !valid {
        return None;
    }
    total_ms += value * 1000;
    let limit = if is_sec {
        i64::MAX as u128
    } else {
        // msec values are stored in milliseconds.
        i64::MAX as u128 / 1000 * 1000
    };
    if total_ms / 1000 > limit {
        return None;
    }
    let ms = u64::try_from(total_ms).ok()?;
    Some(Duration::from_millis(ms))
}

/// `on` / `off`, case-insensitive.
pub fn parse_flag(text: &str) -> Option<bool> {
    if text.eq_ignore_ascii_case("on") {
        Some(true)
    } else if text.eq_ignore_ascii_case("off") {
        Some(false)
    } else {
        None
    }
}

/// The value parsers the directive declarations name: each reads a directive's
/// arguments (already counted) into its typed value, with nginx's per-slot messages
/// (§19.11).
pub mod parse {
    use super::*;
    use crate::config::declare::Reading;
    use crate::config::model::{AuthMethod, Starttls, TlsProtocol, VerifyClient};
    use crate::config::Diagnostic;
    use std::path::PathBuf;

    type Parsed<T> = Result<T, Diagnostic>;

    fn invalid_value(r: &Reading) -> Diagnostic {
        r.emerg(format!("\"{}\" directive invalid value", r.name))
    }

    /// `ngx_conf_set_flag_slot`.
    pub fn flag(r: &mut Reading, args: &[String]) -> Parsed<bool> {
        let arg = &args[0];
        parse_flag(arg).ok_or_else(|| {
            r.emerg(format!(
                "invalid value \"{arg}\" in \"{}\" directive, it must be \"on\" or \"off\"",
                r.name
            ))
        })
    }

    /// `ngx_conf_set_msec_slot`.
    pub fn msec(r: &mut Reading, args: &[String]) -> Parsed<Duration> {
        parse_time(&args[0], TimeUnit::Msec).ok_or_else(|| invalid_value(r))
    }

    /// `ngx_conf_set_sec_slot`.
    pub fn sec(r: &mut Reading, args: &[String]) -> Parsed<Duration> {
        parse_time(&args[0], TimeUnit::Sec).ok_or_else(|| invalid_value(r))
    }

    /// `ngx_conf_set_size_slot`.
    pub fn size(r: &mut Reading, args: &[String]) -> Parsed<usize> {
        parse_size(&args[0]).ok_or_else(|| invalid_value(r))
    }

    /// `ngx_conf_set_num_slot`.
    pub fn number(r: &mut Reading, args: &[String]) -> Parsed<u64> {
        parse_number(&args[0])
            .ok_or_else(|| r.emerg(format!("\"{}\" directive invalid number", r.name)))
    }

    /// `ngx_conf_set_str_slot`: the argument as written.
    pub fn string(_: &mut Reading, args: &[String]) -> Parsed<String> {
        Ok(args[0].clone())
    }

    /// A path relative to the prefix (`pid`).
    pub fn prefix_path(r: &mut Reading, args: &[String]) -> Parsed<PathBuf> {
        Ok(crate::config::handlers::resolve(r.prefix, &args[0]))
    }

    /// Every argument (array slots, capabilities).
    pub fn args(_: &mut Reading, args: &[String]) -> Parsed<Vec<String>> {
        Ok(args.to_vec())
    }

    /// `ngx_conf_set_keyval_slot`: name and value.
    pub fn pair(_: &mut Reading, args: &[String]) -> Parsed<(String, String)> {
        Ok((args[0].clone(), args[1].clone()))
    }

    /// One keyword of `words`, case-insensitive (`ngx_conf_set_enum_slot` and
    /// `ngx_conf_set_bitmask_slot`).
    fn keyword<T: Copy>(r: &Reading, words: &[(&str, T)], arg: &str) -> Parsed<T> {
        words
            .iter()
            .find(|(word, _)| word.eq_ignore_ascii_case(arg))
            .map(|(_, value)| *value)
            .ok_or_else(|| r.emerg(format!("invalid value \"{arg}\"")))
    }

    pub fn imap_auth(r: &mut Reading, args: &[String]) -> Parsed<AuthMethod> {
        use AuthMethod::*;
        let words = [
            ("plain", Plain),
            ("login", Login),
            ("cram-md5", CramMd5),
            ("external", External),
        ];
        keyword(r, &words, &args[0])
    }

    pub fn pop3_auth(r: &mut Reading, args: &[String]) -> Parsed<AuthMethod> {
        use AuthMethod::*;
        let words = [
            ("plain", Plain),
            ("apop", Apop),
            ("cram-md5", CramMd5),
            ("external", External),
        ];
        keyword(r, &words, &args[0])
    }

    pub fn smtp_auth(r: &mut Reading, args: &[String]) -> Parsed<AuthMethod> {
        use AuthMethod::*;
        let words = [
            ("plain", Plain),
            ("login", Login),
            ("cram-md5", CramMd5),
            ("external", External),
            ("none", None),
        ];
        keyword(r, &words, &args[0])
    }

    pub fn tls_protocol(r: &mut Reading, args: &[String]) -> Parsed<TlsProtocol> {
        use TlsProtocol::*;
        let words = [
            ("SSLv2", SslV2),
            ("SSLv3", SslV3),
            ("TLSv1", TlsV1),
            ("TLSv1.1", TlsV1_1),
            ("TLSv1.2", TlsV1_2),
            ("TLSv1.3", TlsV1_3),
        ];
        keyword(r, &words, &args[0])
    }

    pub fn verify_client(r: &mut Reading, args: &[String]) -> Parsed<VerifyClient> {
        use VerifyClient::*;
        let words = [
            ("off", Off),
            ("on", On),
            ("optional", Optional),
            ("optional_no_ca", OptionalNoCa),
        ];
        keyword(r, &words, &args[0])
    }

    pub fn starttls(r: &mut Reading, args: &[String]) -> Parsed<Starttls> {
        use Starttls::*;
        keyword(r, &[("off", Off), ("on", On), ("only", Only)], &args[0])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(text: &str) -> Option<u128> {
        parse_time(text, TimeUnit::Msec).map(|d| d.as_millis())
    }

    fn secs(text: &str) -> Option<u64> {
        parse_time(text, TimeUnit::Sec).map(|d| d.as_secs())
    }

    #[test]
    fn times() {
        assert_eq!(ms("1m30s"), Some(90_000));
        assert_eq!(ms("1m 30s"), Some(90_000));
        assert_eq!(ms("30000"), Some(30_000_000));
        assert_eq!(ms("500ms"), Some(500));
        assert_eq!(ms("1s500ms"), Some(1500));
        assert_eq!(ms("1h 5"), Some(3_605_000));
        assert_eq!(ms("24h"), Some(86_400_000));
        assert_eq!(ms("2w1d"), Some(15 * 86_400_000));
        assert_eq!(ms("0"), Some(0));
        assert_eq!(ms("1y"), None);
        assert_eq!(ms("1M"), None);
        assert_eq!(ms("30s1m"), None);
        assert_eq!(ms("1s1s"), None);
        assert_eq!(ms("5s 3"), Some(8000));
        assert_eq!(ms("5 3"), Some(8000));
        assert_eq!(ms("1 2 3"), None);
        assert_eq!(ms(""), None);
        assert_eq!(ms("s"), None);
        assert_eq!(ms("10x"), None);
        assert_eq!(ms("-1"), None);
        assert_eq!(secs("10m"), Some(600));
        assert_eq!(secs("1y"), Some(365 * 86_400));
        assert_eq!(secs("1M"), Some(30 * 86_400));
        assert_eq!(secs("5ms"), None);
        assert_eq!(secs("300"), Some(300));
    }

    #[test]
    fn sizes_numbers_flags() {
        assert_eq!(parse_size("16k"), Some(16384));
        assert_eq!(parse_size("16K"), Some(16384));
        assert_eq!(parse_size("1m"), Some(1_048_576));
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("0"), Some(0));
        assert_eq!(parse_size("1g"), None);
        assert_eq!(parse_size("k"), None);
        assert_eq!(parse_size(""), None);
        assert_eq!(parse_size("1.5k"), None);
        assert_eq!(parse_number("5"), Some(5));
        assert_eq!(parse_number("+5"), None);
        assert_eq!(parse_number(""), None);
        assert_eq!(parse_flag("ON"), Some(true));
        assert_eq!(parse_flag("Off"), Some(false));
        assert_eq!(parse_flag("yes"), None);
    }
}
