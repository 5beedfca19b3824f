//! The PROXY protocol directives with their own syntax.
//!
//! `set_real_ip_from` (`ngx_mail_realip_module`): which PROXY protocol senders are
//! trusted to name the client. Parsed like nginx's `ngx_ptocidr`, with its warning for
//! a network address that has host bits set, and host names resolved at load time.
//!
//! `proxy_protocol on|off` towards the backend, plus newer nginx's `v2` (an extension:
//! nginx 1.22.1 refuses it with the flag message kept here for other values).

use std::net::{IpAddr, Ipv4Addr, ToSocketAddrs};

use super::declare::Reading;
use super::model::ProxyProtocolVersion;
use super::model::TrustedSender;
use super::Diagnostic;

/// `proxy_protocol on|off|v2`: the version sent to the backend, none for `off`.
pub fn send_version(
    r: &mut Reading,
    args: &[String],
) -> Result<Option<ProxyProtocolVersion>, Diagnostic> {
    let arg = &args[0];
    let versions = [
        ("on", Some(ProxyProtocolVersion::V1)),
        ("off", None),
        ("v2", Some(ProxyProtocolVersion::V2)),
    ];
    versions
        .into_iter()
        .find(|(w, _)| w.eq_ignore_ascii_case(arg))
        .map(|(_, version)| version)
        .ok_or_else(|| {
            r.emerg(format!(
                "invalid value \"{arg}\" in \"proxy_protocol\" directive, it must be \"on\" or \"off\""
            ))
        })
}

/// One `set_real_ip_from` (or `debug_connection`, which nginx reads the same way): a
/// network, `unix:`, or a host name resolved now (to each of its addresses).
pub fn trusted_sender(r: &mut Reading, args: &[String]) -> Result<Vec<TrustedSender>, Diagnostic> {
    let arg = &args[0];
    if arg == "unix:" {
        return Ok(vec![TrustedSender::Unix]);
    }
    if let Some(cidr) = parse_cidr(arg) {
        if cidr.had_host_bits {
            r.warn(format!("low address bits of {arg} are meaningless"));
        }
        return Ok(vec![TrustedSender::Network {
            addr: cidr.addr,
            bits: cidr.bits,
        }]);
    }
    let lookup = match super::url::offline() {
        true => Err(std::io::ErrorKind::NotFound.into()),
        false => (arg.as_str(), 0).to_socket_addrs(),
    };
    let resolved = lookup
        .map_err(|_: std::io::Error| r.emerg(format!("host not found in {} \"{arg}\"", r.name)))?;
    Ok(resolved
        .map(|a| TrustedSender::Network {
            addr: a.ip(),
            bits: full_bits(a.ip()),
        })
        .collect())
}

struct Cidr {
    /// With the host bits cleared.
    addr: IpAddr,
    bits: u8,
    had_host_bits: bool,
}

fn full_bits(ip: IpAddr) -> u8 {
    if ip.is_ipv4() {
        32
    } else {
        128
    }
}

/// `addr` or `addr/bits`, IPv4 or IPv6.
fn parse_cidr(text: &str) -> Option<Cidr> {
    let (addr, bits) = match text.split_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (text, None),
    };
    let addr: IpAddr = addr.parse().ok()?;
    let max = full_bits(addr);
    let bits = match bits {
        None => max,
        Some(b) => super::values::parse_number(b)
            .filter(|&n| n <= u64::from(max))
            .and_then(|n| u8::try_from(n).ok())?,
    };
    let masked = mask(addr, bits);
    Some(Cidr {
        addr: masked,
        bits,
        had_host_bits: masked != addr,
    })
}

fn mask(addr: IpAddr, bits: u8) -> IpAddr {
    match addr {
        IpAddr::V4(v4) => {
            let m = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(v4) & m))
        }
        IpAddr::V6(v6) => {
            let m = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            IpAddr::V6((u128::from(v6) & m).into())
        }
    }
}

impl TrustedSender {
    /// nginx's `ngx_cidr_match`: a v4-mapped IPv6 peer matches IPv4 networks.
    pub fn matches(&self, peer: Option<IpAddr>) -> bool {
        match (self, peer) {
            (TrustedSender::Unix, None) => true,
            (TrustedSender::Network { addr, bits }, Some(peer)) => {
                let peer = match peer {
                    IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(peer, IpAddr::V4),
                    v4 => v4,
                };
                peer.is_ipv4() == addr.is_ipv4() && mask(peer, *bits) == *addr
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{load_str, ProxyProtocolVersion};
    use std::path::Path;

    const F: &str = "/etc/mp/nginx.conf";

    fn load(body: &str) -> Result<crate::config::Loaded, String> {
        let text = format!("events {{ }}\nmail {{\nauth_http 127.0.0.1:9000;\n{body}\n}}\n");
        load_str(&text, Path::new(F)).map_err(|e| e.to_string())
    }

    #[test]
    fn set_real_ip_from_merges_and_warns_like_nginx() {
        let l = load(
            "set_real_ip_from 10.1.2.3/8;\nset_real_ip_from unix:;\n\
             server { listen 127.0.0.1:21143; protocol imap; }\n\
             server { listen 127.0.0.1:21144; protocol imap; set_real_ip_from ::1; }",
        )
        .unwrap();
        let warnings: Vec<String> = l.warnings.iter().map(|w| w.to_string()).collect();
        assert_eq!(
            warnings,
            [format!(
                "low address bits of 10.1.2.3/8 are meaningless in {F}:4"
            )]
        );
        let net = |a: &str, bits| TrustedSender::Network {
            addr: a.parse().unwrap(),
            bits,
        };
        assert_eq!(
            l.config.servers[0].set_real_ip_from,
            [net("10.0.0.0", 8), TrustedSender::Unix]
        );
        assert_eq!(l.config.servers[1].set_real_ip_from, [net("::1", 128)]);
        assert_eq!(
            load("set_real_ip_from 1.2.3.4/33;").unwrap_err(),
            format!("host not found in set_real_ip_from \"1.2.3.4/33\" in {F}:4")
        );
    }

    #[test]
    fn proxy_protocol_accepts_v2_as_an_extension() {
        let server = "server { listen 127.0.0.1:21143; protocol imap; }";
        let version = |v: &str| {
            load(&format!("proxy_protocol {v};\n{server}"))
                .map(|l| l.config.servers[0].proxy.proxy_protocol)
        };
        assert_eq!(version("on"), Ok(Some(ProxyProtocolVersion::V1)));
        assert_eq!(version("V2"), Ok(Some(ProxyProtocolVersion::V2)));
        assert_eq!(version("off"), Ok(None));
        assert_eq!(
            version("v1"),
            Err(format!(
                "invalid value \"v1\" in \"proxy_protocol\" directive, it must be \"on\" or \"off\" in {F}:4"
            ))
        );
        assert_eq!(
            load(&format!("proxy_protocol on;\nproxy_protocol on;\n{server}")).unwrap_err(),
            format!("\"proxy_protocol\" directive is duplicate in {F}:5")
        );
    }

    #[test]
    fn cidrs_are_masked_and_flagged() {
        let c = parse_cidr("10.1.2.3/8").unwrap();
        assert_eq!(
            (c.addr.to_string(), c.bits, c.had_host_bits),
            ("10.0.0.0".into(), 8, true)
        );
        let c = parse_cidr("2001:db8::/32").unwrap();
        assert_eq!((c.bits, c.had_host_bits), (32, false));
        assert_eq!(parse_cidr("0.0.0.0/0").unwrap().bits, 0);
        assert!(parse_cidr("1.2.3.4/33").is_none());
        assert!(parse_cidr("::1/129").is_none());
        assert!(parse_cidr("1.2.3.4/").is_none());
        assert!(parse_cidr("1.2.3.4/+1").is_none());
    }

    #[test]
    fn matching_follows_ngx_cidr_match() {
        let net = TrustedSender::Network {
            addr: "127.0.0.0".parse().unwrap(),
            bits: 8,
        };
        assert!(net.matches(Some("127.9.9.9".parse().unwrap())));
        assert!(net.matches(Some("::ffff:127.0.0.1".parse().unwrap())));
        assert!(!net.matches(Some("128.0.0.1".parse().unwrap())));
        assert!(!net.matches(Some("::1".parse().unwrap())));
        assert!(!net.matches(None));
        assert!(TrustedSender::Unix.matches(None));
        assert!(!TrustedSender::Unix.matches(Some("127.0.0.1".parse().unwrap())));
        let all = TrustedSender::Network {
            addr: "::".parse().unwrap(),
            bits: 0,
        };
        assert!(all.matches(Some("2001:db8::1".parse().unwrap())));
    }
}
