//! `resolver address ... [valid=time] [ipv4=on|off] [ipv6=on|off];`
//! (`ngx_resolver_create`; `ipv4=` is nginx 1.23.1's, refused by 1.22.1).
//!
//! Addresses are `host[:port]` or `[ipv6][:port]`, port 53 by default; a host name is
//! resolved once, at load time, like nginx does. `valid=` is checked and ignored (we
//! keep no cache); `ipv4=` and `ipv6=` say which of A and AAAA the forward lookup asks.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::time::Duration;

use super::declare::Reading;
use super::model::{NameServers, Resolver};
use super::values::{parse_time, TimeUnit};
use super::Diagnostic;

const DNS_PORT: u16 = 53;

/// The name servers of one `resolver` directive; `None` for `resolver off`.
pub fn servers(r: &mut Reading, args: &[String]) -> Result<Option<NameServers>, Diagnostic> {
    if args.first().map(String::as_str) == Some("off") {
        return Ok(None);
    }
    let mut servers = Vec::new();
    let (mut ipv4, mut ipv6) = (true, true);
    for arg in args {
        if let Some(valid) = arg.strip_prefix("valid=") {
            if parse_time(valid, TimeUnit::Sec).is_none() {
                return Err(r.emerg(format!("invalid parameter: {arg}")));
            }
            continue;
        }
        let family = match arg.split_at_checked(5) {
            Some(("ipv4=", flag)) => Some((&mut ipv4, flag)),
            Some(("ipv6=", flag)) => Some((&mut ipv6, flag)),
            _ => None,
        };
        if let Some((on, flag)) = family {
            *on = match flag {
                "on" => true,
                "off" => false,
                _ => return Err(r.emerg(format!("invalid parameter: {arg}"))),
            };
            continue;
        }
        let addrs = parse_server(arg).map_err(|e| r.emerg(format!("{e} in resolver \"{arg}\"")))?;
        servers.extend(addrs);
    }
    if !ipv4 && !ipv6 {
        return Err(r.emerg("\"ipv4\" and \"ipv6\" cannot both be \"off\""));
    }
    if servers.is_empty() {
        return Err(r.emerg("no name servers defined"));
    }
    Ok(Some(NameServers {
        servers,
        ipv4,
        ipv6,
    }))
}

/// The merged setting: `resolver`'s name servers (none for `off`) with `resolver_timeout`.
pub fn settings(servers: Option<NameServers>, timeout: Duration) -> Option<Resolver> {
    let NameServers {
        servers,
        ipv4,
        ipv6,
    } = servers?;
    Some(Resolver {
        servers,
        timeout,
        ipv4,
        ipv6,
    })
}

fn parse_server(arg: &str) -> Result<Vec<SocketAddr>, &'static str> {
    let (host, port) = if let Some(rest) = arg.strip_prefix('[') {
        let (v6, after) = rest.split_once(']').ok_or("invalid host")?;
        let ip: IpAddr = v6.parse().map_err(|_| "invalid IPv6 address")?;
        let port = match after.strip_prefix(':') {
            Some(p) => parse_port(p)?,
            None if after.is_empty() => DNS_PORT,
            None => return Err("invalid host"),
        };
        return Ok(vec![SocketAddr::new(ip, port)]);
    } else {
        match arg.rsplit_once(':') {
            Some((host, port)) => (host, parse_port(port)?),
            None => (arg, DNS_PORT),
        }
    };
    if host.is_empty() {
        return Err("no host");
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    if super::url::offline() {
        return Err("host not found");
    }
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|_| "host not found")?
        .collect();
    if addrs.is_empty() {
        return Err("host not found");
    }
    Ok(addrs)
}

fn parse_port(text: &str) -> Result<u16, &'static str> {
    text.parse::<u16>()
        .ok()
        .filter(|&p| p != 0 && text.bytes().all(|b| b.is_ascii_digit()))
        .ok_or("invalid port")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::declare::detached;

    fn ok(args: &[&str]) -> Option<Vec<SocketAddr>> {
        Some(read(args)?.servers)
    }

    fn read(args: &[&str]) -> Option<NameServers> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        detached("resolver", |r| servers(r, &args)).unwrap()
    }

    fn err(args: &[&str]) -> String {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        detached("resolver", |r| servers(r, &args))
            .unwrap_err()
            .message
    }

    #[test]
    fn addresses_and_parameters() {
        assert_eq!(ok(&["off"]), None);
        assert_eq!(
            ok(&["127.0.0.1", "[::1]:5353", "valid=30s", "ipv6=off"]).unwrap(),
            [
                "127.0.0.1:53".parse().unwrap(),
                "[::1]:5353".parse::<SocketAddr>().unwrap()
            ]
        );
        assert_eq!(
            ok(&["127.0.0.2:20053"]).unwrap(),
            ["127.0.0.2:20053".parse::<SocketAddr>().unwrap()]
        );
        assert_eq!(
            err(&["127.0.0.1:x"]),
            "invalid port in resolver \"127.0.0.1:x\""
        );
        assert_eq!(err(&["ipv6=maybe"]), "invalid parameter: ipv6=maybe");
        assert_eq!(err(&["valid=30s"]), "no name servers defined");
    }

    /// nginx 1.23.1's `ipv4=`; both off is refused with nginx's text, before the
    /// missing-servers check as in `ngx_resolver_create`.
    #[test]
    fn ipv4_and_ipv6_flags() {
        let both = read(&["127.0.0.1"]).unwrap();
        assert!(both.ipv4 && both.ipv6);
        let v6 = read(&["127.0.0.1", "ipv4=off"]).unwrap();
        assert!(!v6.ipv4 && v6.ipv6);
        let v4 = read(&["ipv6=off", "127.0.0.1", "ipv4=on"]).unwrap();
        assert!(v4.ipv4 && !v4.ipv6);
        assert_eq!(err(&["127.0.0.1", "ipv4=no"]), "invalid parameter: ipv4=no");
        let off = "\"ipv4\" and \"ipv6\" cannot both be \"off\"";
        assert_eq!(err(&["127.0.0.1", "ipv4=off", "ipv6=off"]), off);
        assert_eq!(err(&["ipv4=off", "ipv6=off"]), off);
    }
}
