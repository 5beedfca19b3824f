//! Binding `listen` addresses the way nginx does.
//!
//! nginx binds a wildcard address (`*:993`, `[::]:993`) once per port and serves the
//! more specific addresses of that port through it, choosing the server block by the
//! connection's local address. Binding both would fail on Linux (EADDRINUSE), so we
//! group the same way: one socket per wildcard, specific addresses routed through it.

use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener};

use std::sync::atomic::{AtomicBool, Ordering};

use socket2::{Domain, Protocol, Socket, TcpKeepalive, Type};

use crate::config::parser::os_error;
use crate::config::{Listen, ListenAddr};

/// Which server block and listen options a connection gets.
#[derive(Debug, Clone)]
pub struct Route {
    /// Index into the config's servers.
    pub server: usize,
    pub listen: Listen,
    /// The listen address as written, for the `server:` log context.
    pub text: String,
}

/// One bound socket and the routes it serves.
pub struct BoundListener {
    pub socket: TcpListener,
    pub routes: Routes,
}

/// The address a socket is bound to and the server blocks reached through it.
#[derive(Debug, Clone)]
pub struct Routes {
    pub addr: SocketAddr,
    /// The route for an exact local-address match, else the first (the wildcard's).
    pub routes: Vec<Route>,
}

impl Routes {
    /// The local address of a connection accepted here: the listen address itself,
    /// unless that is a wildcard (one `getsockname` saved per connection otherwise).
    pub fn local_addr_of(&self, stream: &tokio::net::TcpStream) -> SocketAddr {
        if self.addr.ip().is_unspecified() {
            stream.local_addr().unwrap_or(self.addr)
        } else {
            self.addr
        }
    }

    /// The route for a connection that arrived on `local`.
    pub fn route_for(&self, local: SocketAddr) -> &Route {
        self.routes
            .iter()
            .find(|r| matches!(&r.listen.addr, ListenAddr::Tcp(a) if a.ip() == local.ip()))
            .unwrap_or(&self.routes[0])
    }
}

/// Binds every TCP listen of every server. `listens` pairs a server index with a
/// listen. Unix-socket listens are reported as unsupported.
pub fn bind_all(groups: &[Routes]) -> io::Result<Vec<BoundListener>> {
    groups
        .iter()
        .map(|routes| {
            let socket = bind(routes)?;
            Ok(BoundListener {
                socket,
                routes: routes.clone(),
            })
        })
        .collect()
}

/// Binds the socket for one group of routes (its first route's address and options).
pub fn bind(routes: &Routes) -> io::Result<TcpListener> {
    let addr = routes.addr;
    bind_tcp(&routes.routes[0].listen, addr).map_err(|e| {
        let text = format!("bind() to {addr} failed ({})", os_error(&e));
        io::Error::new(e.kind(), text)
    })
}

/// Groups listens into sockets as nginx does, without binding: a reload compares
/// these addresses with the sockets it already has.
pub fn group(listens: &[(usize, Listen)]) -> io::Result<Vec<Routes>> {
    let mut bound: Vec<Routes> = Vec::new();
    let (wild, specific): (Vec<_>, Vec<_>) = listens.iter().partition(|(_, l)| is_wildcard(l));
    for (server, listen) in wild.into_iter().chain(specific) {
        let addr = match &listen.addr {
            ListenAddr::Tcp(a) => *a,
            ListenAddr::Unix(p) => {
                return Err(io::Error::other(format!(
                    "listen on unix:{} is not supported yet",
                    p.display()
                )))
            }
        };
        let route = Route {
            server: *server,
            listen: listen.clone(),
            text: addr.to_string(),
        };
        if let Some(b) = bound
            .iter_mut()
            .find(|b| b.addr.ip().is_unspecified() && covers(b.addr, addr))
        {
            b.routes.push(route);
            continue;
        }
        bound.push(Routes {
            addr,
            routes: vec![route],
        });
    }
    Ok(bound)
}

fn is_wildcard(l: &Listen) -> bool {
    matches!(&l.addr, ListenAddr::Tcp(a) if a.ip().is_unspecified())
}

/// Whether a wildcard socket on `wild` receives connections for `addr`.
fn covers(wild: SocketAddr, addr: SocketAddr) -> bool {
    wild.port() == addr.port()
        && matches!(
            (wild.ip(), addr.ip()),
            (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_))
        )
}

/// Binds one TCP `listen`: SO_REUSEADDR as nginx sets it, `backlog=`, `rcvbuf=`,
/// `sndbuf=`, `ipv6only=`, `so_keepalive=` and `multipath`.
fn bind_tcp(listen: &Listen, addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = stream_socket(addr, listen.multipath)?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(listen.ipv6only)?;
    }
    if let Some(size) = listen.rcvbuf {
        socket.set_recv_buffer_size(size)?;
    }
    if let Some(size) = listen.sndbuf {
        socket.set_send_buffer_size(size)?;
    }
    if listen.so_keepalive == Some(true) {
        socket.set_tcp_keepalive(&TcpKeepalive::new())?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(listen.backlog)?;
    Ok(socket.into())
}

/// `IPPROTO_MPTCP` (Linux 5.6).
const IPPROTO_MPTCP: i32 = 262;

/// The multipath fallback has been warned about (once per process).
static MPTCP_WARNED: AtomicBool = AtomicBool::new(false);

/// A stream socket for `addr`: Multipath TCP for a `listen ... multipath` (nginx
/// 1.29.7), plain TCP otherwise. Where the kernel has no MPTCP (built without it, or
/// `net.mptcp.enabled = 0`: socket() fails with EPROTONOSUPPORT, ENOPROTOOPT or EINVAL)
/// the socket is TCP and one warning says so; nginx fails to start there instead.
pub fn stream_socket(addr: SocketAddr, multipath: bool) -> io::Result<Socket> {
    let domain = Domain::for_address(addr);
    if !multipath {
        return Socket::new(domain, Type::STREAM, None);
    }
    match Socket::new(domain, Type::STREAM, Some(Protocol::from(IPPROTO_MPTCP))) {
        Err(e) if no_mptcp(&e) => {
            if !MPTCP_WARNED.swap(true, Ordering::Relaxed) {
                let message = format!(
                    "socket() with IPPROTO_MPTCP failed ({}), multipath is not supported \
                     on this system, listening with TCP",
                    os_error(&e)
                );
                crate::log::write(crate::config::LogLevel::Warn, &message);
            }
            Socket::new(domain, Type::STREAM, None)
        }
        other => other,
    }
}

/// socket()'s errors for a kernel without (enabled) MPTCP.
fn no_mptcp(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EPROTONOSUPPORT | libc::ENOPROTOOPT | libc::EINVAL)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn protocol(socket: &Socket) -> i32 {
        socket.protocol().unwrap().map_or(0, i32::from)
    }

    #[test]
    fn multipath_sockets_are_mptcp_where_the_kernel_has_it() {
        let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let tcp = stream_socket(addr, false).unwrap();
        assert_eq!(protocol(&tcp), libc::IPPROTO_TCP);
        let mptcp = stream_socket(addr, true).unwrap();
        let kernel_has_it =
            std::fs::read_to_string("/proc/sys/net/mptcp/enabled").is_ok_and(|v| v.trim() == "1");
        let want = if kernel_has_it {
            IPPROTO_MPTCP
        } else {
            libc::IPPROTO_TCP
        };
        assert_eq!(protocol(&mptcp), want);
    }

    #[test]
    fn no_mptcp_errors() {
        for errno in [libc::EPROTONOSUPPORT, libc::ENOPROTOOPT, libc::EINVAL] {
            assert!(no_mptcp(&io::Error::from_raw_os_error(errno)));
        }
        assert!(!no_mptcp(&io::Error::from_raw_os_error(libc::EMFILE)));
    }

    #[test]
    fn a_multipath_listener_accepts() {
        let listen = Listen {
            addr: ListenAddr::Tcp("127.0.0.1:0".parse().unwrap()),
            ssl: false,
            proxy_protocol: false,
            backlog: 16,
            rcvbuf: None,
            sndbuf: None,
            ipv6only: true,
            so_keepalive: None,
            bind: true,
            multipath: true,
            location: crate::config::Location {
                file: "test".into(),
                line: 1,
            },
        };
        let listener = bind_tcp(&listen, "127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let client = std::net::TcpStream::connect(addr).unwrap();
        let (server, _) = listener.accept().unwrap();
        assert_eq!(server.peer_addr().unwrap(), client.local_addr().unwrap());
    }
}
