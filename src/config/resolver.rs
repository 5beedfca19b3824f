//! `resolver address ... [valid=time] [ipv6=on|off];` (`ngx_resolver_create`).
//!
//! Addresses are `host[:port]` or `[ipv6][:port]`, port 53 by default; a host name is
//! resolved once, at load time, like nginx does. `valid=` and `ipv6=` are checked and
//! ignored (we keep no cache; the forward lookup asks for the client's family only).

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::time::Duration;

use super::declare::Reading;
use super::model::Resolver;
use super::values::{parse_time, TimeUnit};
use super::Diagnostic;

const DNS_PORT: u16 = 53;

/// The name servers of one `resolver` directive; `None` for `resolver off`.
pub fn servers(r: &mut Reading, args: &[String]) -> Result<Option<Vec<SocketAddr>>, Diagnostic> {
    if args.first().map(String::as_str) == Some("off") {
        return Ok(None);
    }
    let mut servers = Vec::new();
    for arg in args {
        if let Some(valid) = arg.strip_prefix("valid=") {
            if parse_time(valid, TimeUnit::Sec).is_none() {
                return Err(r.emerg(format!("invalid parameter: {arg}")));
            }
            continue;
        }
        if let Some(flag) = arg.strip_prefix("ipv6=") {
            if flag != "on" && flag != "off" {
                return Err(r.emerg(format!("invalid parameter: {arg}")));
            }
            continue;
        }
        let addrs = parse_server(arg).map_err(|e| r.emerg(format!("{e} in resolver \"{arg}\"")))?;
        servers.extend(addrs);
    }
    if servers.is_empty() {
        return Err(r.emerg("no name servers defined"));
    }
    Ok(Some(servers))
}

/// The merged setting: `resolver`'s name servers (none for `off`) with `resolver_timeout`.
pub fn settings(servers: Option<Vec<SocketAddr>>, timeout: Duration) -> Option<Resolver> {
    Some(Resolver {
        servers: servers?,
        timeout,
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
}
