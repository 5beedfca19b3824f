//! The PROXY protocol directives with their own syntax.
//!
//! `set_real_ip_from` (`ngx_mail_realip_module`): which PROXY protocol senders are
//! trusted to name the client. Parsed like nginx's `ngx_ptocidr`, with its warning for
//! a network address that has host bits set, and host names resolved at load time.
//!
//! `proxy_protocol on|off` towards the backend, plus newer nginx's `v2` (an extension:
//! nginx 1.22.1 refuses it with the flag message kept here for other values).

use std::net::{IpAddr, Ipv4Addr, ToSocketAddrs};

use super::build::{emerg, Builder, Ctx, Setting, Step, Val};
use super::model::ProxyProtocolVersion;
use super::model::TrustedSender;
use super::parser::Directive;

impl Builder {
    /// `proxy_protocol on|off|v2`, stored as the enum word.
    pub(super) fn proxy_protocol(&mut self, d: &Directive, ctx: Ctx) -> Step {
        let arg = &d.args[0];
        let word = ["on", "off", "v2"]
            .into_iter()
            .find(|w| w.eq_ignore_ascii_case(arg))
            .ok_or_else(|| {
                let msg = format!(
                    "invalid value \"{arg}\" in \"proxy_protocol\" directive, it must be \"on\" or \"off\""
                );
                emerg(msg, &d.location)
            })?;
        let scope = self.scope(ctx);
        if scope.values.contains_key("proxy_protocol") {
            return Err(emerg(
                "\"proxy_protocol\" directive is duplicate",
                &d.location,
            ));
        }
        let setting = Setting {
            val: Val::Enum(word),
            location: d.location.clone(),
        };
        scope.values.insert("proxy_protocol", setting);
        Ok(())
    }

    /// Each occurrence adds to the context's list. The list stores the normalised
    /// `addr/bits` words (or `unix:`), which [`trusted_senders`] turns into the model.
    pub(super) fn set_real_ip_from(&mut self, d: &Directive, ctx: Ctx) -> Step {
        let arg = &d.args[0];
        let words: Vec<String> = if arg == "unix:" {
            vec![arg.clone()]
        } else if let Some(cidr) = parse_cidr(arg) {
            if cidr.had_host_bits {
                self.warn(
                    format!("low address bits of {arg} are meaningless"),
                    &d.location,
                );
            }
            vec![format!("{}/{}", cidr.addr, cidr.bits)]
        } else {
            let lookup = match super::url::offline() {
                true => Err(std::io::ErrorKind::NotFound.into()),
                false => (arg.as_str(), 0).to_socket_addrs(),
            };
            let resolved = lookup.map_err(|_: std::io::Error| {
                emerg(
                    format!("host not found in set_real_ip_from \"{arg}\""),
                    &d.location,
                )
            })?;
            resolved
                .map(|a| format!("{}/{}", a.ip(), full_bits(a.ip())))
                .collect()
        };
        let scope = self.scope(ctx);
        let mut entries = match scope.get("set_real_ip_from") {
            Some(Val::List(entries)) => entries.clone(),
            _ => Vec::new(),
        };
        entries.extend(words.into_iter().map(|w| vec![w]));
        let setting = Setting {
            val: Val::List(entries),
            location: d.location.clone(),
        };
        scope.values.insert("set_real_ip_from", setting);
        Ok(())
    }
}

/// The model for a stored `proxy_protocol` word.
pub fn send_version(word: &str) -> Option<ProxyProtocolVersion> {
    match word {
        "on" => Some(ProxyProtocolVersion::V1),
        "v2" => Some(ProxyProtocolVersion::V2),
        _ => None,
    }
}

/// The model for the words [`Builder::set_real_ip_from`] stored (already valid).
pub fn trusted_senders(entries: &[Vec<String>]) -> Vec<TrustedSender> {
    entries
        .iter()
        .filter_map(|e| e.first())
        .filter_map(|word| {
            if word == "unix:" {
                return Some(TrustedSender::Unix);
            }
            let cidr = parse_cidr(word)?;
            Some(TrustedSender::Network {
                addr: cidr.addr,
                bits: cidr.bits,
            })
        })
        .collect()
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
