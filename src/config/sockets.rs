//! The listening sockets nginx opens for mail's `listen`s (`ngx_mail_optimize_servers`):
//! per address family and port, a wildcard address takes the specific addresses of
//! its port, except those with a parameter that needs a socket of its own (`bind`,
//! `backlog=`, `rcvbuf=`, `sndbuf=`, `ipv6only=`, `so_keepalive=`). nginx counts these
//! against `worker_connections`, and `-t` binds them.

use super::model::{Config, Listen, ListenAddr};

/// What nginx groups addresses by: (IPv6, port) for TCP, `None` for unix sockets.
type Port = Option<(bool, u16)>;

/// The sockets, in nginx's order: ports by first appearance, then each port's own
/// sockets before its wildcard.
pub fn nginx_sockets(config: &Config) -> Vec<&Listen> {
    let listens: Vec<&Listen> = config.servers.iter().flat_map(|s| &s.listens).collect();
    let mut groups: Vec<(Port, Vec<&Listen>)> = Vec::new();
    for l in listens {
        let key = match &l.addr {
            ListenAddr::Tcp(a) => Some((a.is_ipv6(), a.port())),
            ListenAddr::Unix(_) => None,
        };
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, members)) => members.push(l),
            None => groups.push((key, vec![l])),
        }
    }
    let mut sockets = Vec::new();
    for (_, members) in groups {
        let wildcard = members.iter().find(|l| is_wildcard(l)).copied();
        let own = members
            .iter()
            .filter(|l| !is_wildcard(l) && (wildcard.is_none() || l.bind));
        sockets.extend(own.copied());
        sockets.extend(wildcard);
    }
    sockets
}

/// How many listening sockets nginx opens for mail.
pub fn nginx_count(config: &Config) -> usize {
    nginx_sockets(config).len()
}

fn is_wildcard(l: &Listen) -> bool {
    matches!(&l.addr, ListenAddr::Tcp(a) if a.ip().is_unspecified())
}
