//! What happens to a connection before its greeting, and what it leaves for later:
//! the PROXY protocol header and realip (reference §3, §14), the client certificate
//! check after a handshake (§13.3), the `Auth-SSL-*` details, and the PROXY header
//! for the backend.

use std::net::{IpAddr, SocketAddr};

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};

use super::{SessionLog, CLIENT_TIMED_OUT};
use crate::auth::{ProxyAddrs, SslInfo};
use crate::config::{Protocol, ProxyProtocolVersion, Server, VerifyClient};
use crate::net::client_cert::{self, CertRefusal};
use crate::net::proxy_protocol::{self, Header};
use crate::net::ClientStream;

/// nginx's log action while it waits for the PROXY header.
const READING_PROXY_PROTOCOL: &str = "reading PROXY protocol";

/// Who is on the other end, as the rest of the session sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// The client for logs, `Client-IP` and the backend's PROXY header: the TCP peer,
    /// or the PROXY header's source when realip trusts the sender.
    pub client: SocketAddr,
    /// The listening socket the connection reached.
    pub local: SocketAddr,
    /// A received PROXY header's addresses (`Proxy-Protocol-*`), trusted or not.
    pub proxy_header: Option<ProxyAddrs>,
}

/// Reads the PROXY header of a `listen ... proxy_protocol` connection, under the
/// connection's `timeout` deadline. Like nginx, looks once at what has arrived when
/// the socket first becomes readable and consumes exactly the header. `None`: the
/// connection must close without a word (the reason is logged).
pub(super) async fn read_proxy_header(
    stream: &mut TcpStream,
    deadline: Instant,
    log: &SessionLog,
) -> Option<Header> {
    let mut window = vec![0u8; proxy_protocol::MAX_HEADER];
    let seen = match timeout_at(deadline, stream.peek(&mut window)).await {
        Err(_) => {
            log.info(CLIENT_TIMED_OUT, Some(READING_PROXY_PROTOCOL));
            return None;
        }
        Ok(Err(e)) => {
            log.info(
                &format!("recv() failed ({e})"),
                Some(READING_PROXY_PROTOCOL),
            );
            return None;
        }
        Ok(Ok(n)) => &window[..n],
    };
    let header = match proxy_protocol::parse(seen) {
        Ok(header) => header,
        Err(broken) => {
            if let Some(message) = broken.log_message(seen) {
                log.error(&message, Some(READING_PROXY_PROTOCOL));
            }
            return None;
        }
    };
    // The header bytes are already in the socket buffer: this read does not wait.
    let mut consumed = vec![0u8; header.len];
    stream.read_exact(&mut consumed).await.ok()?;
    Some(header)
}

/// realip (`ngx_mail_realip_handler`): the PROXY source becomes the client when the
/// TCP peer is a trusted sender and the source is an IP address.
pub(super) fn peer_after_header(
    conf: &Server,
    tcp_peer: SocketAddr,
    local: SocketAddr,
    header: Option<ProxyAddrs>,
) -> Peer {
    let trusted = conf
        .set_real_ip_from
        .iter()
        .any(|sender| sender.matches(Some(tcp_peer.ip())));
    let client = header
        .as_ref()
        .filter(|_| trusted)
        .and_then(|h| {
            let ip: IpAddr = h.src_addr.parse().ok()?;
            Some(SocketAddr::new(ip, h.src_port))
        })
        .unwrap_or(tcp_peer);
    Peer {
        client,
        local,
        proxy_header: header,
    }
}

/// The PROXY header for the backend (`proxy_protocol on|v2`), written right after
/// connecting: the client as realip left it, and the listening socket it reached.
pub(super) fn backend_proxy_header(conf: &Server, peer: &Peer) -> Option<Vec<u8>> {
    match conf.proxy.proxy_protocol? {
        ProxyProtocolVersion::V1 => Some(proxy_protocol::encode_v1(Some(peer.client), peer.local)),
        ProxyProtocolVersion::V2 => Some(proxy_protocol::encode_v2(Some(peer.client), peer.local)),
    }
}

fn verify_mode(conf: &Server) -> VerifyClient {
    conf.tls
        .as_ref()
        .map_or(VerifyClient::Off, |tls| tls.verify_client)
}

/// The line each protocol closes with when a client certificate is refused
/// (`cert_error` / `no_cert` of nginx's protocol modules).
pub fn cert_refusal_line(protocol: Protocol, refusal: &CertRefusal) -> &'static [u8] {
    let missing = *refusal == CertRefusal::Missing;
    match (protocol, missing) {
        (Protocol::Imap, false) => b"* BYE SSL certificate error\r\n",
        (Protocol::Imap, true) => b"* BYE No required SSL certificate\r\n",
        (Protocol::Pop3, false) => b"-ERR SSL certificate error\r\n",
        (Protocol::Pop3, true) => b"-ERR No required SSL certificate\r\n",
        (Protocol::Smtp, false) => b"421 4.7.1 SSL certificate error\r\n",
        (Protocol::Smtp, true) => b"421 4.7.1 No required SSL certificate\r\n",
    }
}

/// `ngx_mail_verify_cert`, right after a handshake: `true` if the client may go on.
/// Otherwise the refusal is logged (info, under `action`), the TLS session is dropped
/// from the cache, and the protocol's error line is sent; the caller then closes.
pub(super) async fn client_cert_allowed(
    client: &mut ClientStream,
    conf: &Server,
    log: &SessionLog,
    action: &str,
) -> bool {
    let Some(ssl) = client.ssl() else {
        return true;
    };
    let refusal = match client_cert::check(ssl, verify_mode(conf)) {
        Ok(()) => return true,
        Err(refusal) => refusal,
    };
    log.info(&refusal.log_message(), Some(action));
    client_cert::forget_session(ssl);
    let line = cert_refusal_line(conf.protocol, &refusal);
    let _ = timeout_at(Instant::now() + conf.timeout, client.send(line)).await;
    false
}

/// The `Auth-SSL-*` details of a TLS client, `None` for plaintext.
pub(super) fn ssl_info(client: &ClientStream, conf: &Server) -> Option<SslInfo> {
    client
        .ssl()
        .map(|ssl| client_cert::describe(ssl, verify_mode(conf)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TrustedSender;

    fn conf(trusted: Vec<TrustedSender>) -> Server {
        let text = "events { }\nmail {\nauth_http 127.0.0.1:9000;\n\
                    server { listen 127.0.0.1:21143; protocol imap; }\n}\n";
        let loaded = crate::config::load_str(text, std::path::Path::new("/x.conf")).unwrap();
        let mut server = (*loaded.config.servers[0]).clone();
        server.set_real_ip_from = trusted;
        server
    }

    fn header(src: &str) -> Option<ProxyAddrs> {
        Some(ProxyAddrs {
            src_addr: src.into(),
            src_port: 4000,
            dst_addr: "10.0.0.1".into(),
            dst_port: 143,
        })
    }

    #[test]
    fn realip_only_for_trusted_senders_and_ip_sources() {
        let tcp: SocketAddr = "127.0.0.1:5555".parse().unwrap();
        let local: SocketAddr = "127.0.0.1:143".parse().unwrap();
        let loopback = TrustedSender::Network {
            addr: "127.0.0.0".parse().unwrap(),
            bits: 8,
        };
        let trusting = conf(vec![loopback]);
        let p = peer_after_header(&trusting, tcp, local, header("192.0.2.7"));
        assert_eq!(p.client, "192.0.2.7:4000".parse().unwrap());
        assert_eq!(p.proxy_header, header("192.0.2.7"));
        // Not an IP (v1 text is taken as written): the TCP peer stays.
        let p = peer_after_header(&trusting, tcp, local, header("1.2.3"));
        assert_eq!(p.client, tcp);
        // No set_real_ip_from: addresses are passed on, the client is the TCP peer.
        let p = peer_after_header(&conf(vec![]), tcp, local, header("192.0.2.7"));
        assert_eq!(p.client, tcp);
        assert_eq!(p.proxy_header, header("192.0.2.7"));
        // UNKNOWN / LOCAL header.
        assert_eq!(peer_after_header(&trusting, tcp, local, None).client, tcp);
    }

    #[test]
    fn backend_header_uses_the_realip_client_and_the_listen_address() {
        let mut server = conf(vec![]);
        let peer = Peer {
            client: "192.0.2.7:4000".parse().unwrap(),
            local: "127.0.0.1:143".parse().unwrap(),
            proxy_header: None,
        };
        assert_eq!(backend_proxy_header(&server, &peer), None);
        server.proxy.proxy_protocol = Some(ProxyProtocolVersion::V1);
        assert_eq!(
            backend_proxy_header(&server, &peer).unwrap(),
            b"PROXY TCP4 192.0.2.7 127.0.0.1 4000 143\r\n"
        );
        server.proxy.proxy_protocol = Some(ProxyProtocolVersion::V2);
        assert_eq!(backend_proxy_header(&server, &peer).unwrap().len(), 28);
    }

    #[test]
    fn cert_lines_per_protocol() {
        let bad = CertRefusal::Invalid {
            code: 18,
            reason: "x",
        };
        let lines: Vec<&[u8]> = [Protocol::Imap, Protocol::Pop3, Protocol::Smtp]
            .into_iter()
            .flat_map(|p| {
                [
                    cert_refusal_line(p, &bad),
                    cert_refusal_line(p, &CertRefusal::Missing),
                ]
            })
            .collect();
        assert_eq!(
            lines,
            [
                &b"* BYE SSL certificate error\r\n"[..],
                b"* BYE No required SSL certificate\r\n",
                b"-ERR SSL certificate error\r\n",
                b"-ERR No required SSL certificate\r\n",
                b"421 4.7.1 SSL certificate error\r\n",
                b"421 4.7.1 No required SSL certificate\r\n",
            ]
        );
    }
}
