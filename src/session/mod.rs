//! One client connection, from accept to close:
//! implicit TLS → greeting → pre-auth dialogue (with STARTTLS) → auth_http →
//! backend login → relay.
//!
//! Each phase owns its deadline, as in nginx: the pre-auth `timeout` is a total
//! deadline from the greeting (not an idle timer), the backend login has its own
//! `timeout` deadline, and the relay has `proxy_timeout` re-armed by client activity.

mod accept;
mod backend;
mod context;
mod dialogue;
mod smtp;

use std::net::SocketAddr;
use std::sync::Arc;

use openssl::ssl::SslContext;
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};

use crate::config::{LogLevel, Server};
use crate::net::ClientStream;
use crate::proto::imap::ImapPreAuth;
use crate::proto::pop3::Pop3PreAuth;
use crate::proto::{DialoguePlan, PreAuth};

pub use accept::{cert_refusal_line, Peer};
pub use context::{SessionLog, CLIENT_TIMED_OUT, UPSTREAM_TIMED_OUT};
pub use dialogue::LoggedIn;

/// A server block's plan, built once per config generation and borrowed by every
/// session: its config, its TLS context, the pre-auth lines its dialogues share, and
/// its own `error_log` when it has one (else sessions write to the main log).
pub struct ServerPlan {
    pub conf: Arc<Server>,
    pub tls: Option<SslContext>,
    pub dialogue: DialoguePlan,
    pub log: Option<Arc<crate::log::Log>>,
}

/// One accepted connection on a listen of `server`.
pub struct Accepted {
    pub stream: TcpStream,
    pub peer: SocketAddr,
    /// The address the client connected to.
    pub local: SocketAddr,
    /// The `listen` address text for logs (`server: ...`).
    pub listen_text: String,
    /// `listen ... ssl`.
    pub implicit_tls: bool,
    /// `listen ... proxy_protocol`: a PROXY header comes first.
    pub proxy_protocol: bool,
    pub id: u64,
}

/// Serves one connection up to a successful backend login, and hands the logged-in
/// pair back for the caller to relay in a task of its own (see [`LoggedIn`]).
/// Never panics on peer input; every other way out is logged with who ended the
/// session and why.
pub async fn serve(server: Arc<ServerPlan>, accepted: Accepted) -> Option<LoggedIn> {
    let Accepted {
        mut stream,
        peer,
        local,
        listen_text,
        implicit_tls,
        proxy_protocol,
        id,
    } = accepted;
    // nginx's mail module leaves Nagle on, which holds its greeting after a TLS
    // handshake for ~40 ms; small request/response exchanges want it off.
    let _ = stream.set_nodelay(true);
    let mut log = SessionLog {
        sink: server.log.clone(),
        id,
        client: peer.ip(),
        server: listen_text,
        starttls: false,
        login: None,
        upstream: None,
    };
    log.debug_event(format_args!("accept: {peer} on {}", log.server));
    log.bare(
        LogLevel::Info,
        &format!("client {peer} connected to {}", log.server),
    );
    let conf = &server.conf;
    // One `timeout` covers the PROXY header and the implicit TLS handshake, as in nginx.
    let accept_deadline = Instant::now() + conf.timeout;
    let mut origin = accept::peer_after_header(conf, peer, local, None);
    if proxy_protocol {
        let header = Box::pin(accept::read_proxy_header(
            &mut stream,
            accept_deadline,
            &log,
        ))
        .await?;
        origin = accept::peer_after_header(conf, peer, local, header.addrs);
        log.client = origin.client.ip();
    }
    let mut client = ClientStream::Plain(stream);
    if implicit_tls {
        let Some(ctx) = &server.tls else {
            log.error("no TLS context for \"listen ... ssl\"", None);
            return None;
        };
        match Box::pin(timeout_at(accept_deadline, client.into_tls(ctx))).await {
            Ok(Ok(tls)) => client = log.debug_tls(tls),
            Ok(Err(e)) => {
                log.info(&e.to_string(), Some("SSL handshaking"));
                return None;
            }
            Err(_) => {
                log.info(CLIENT_TIMED_OUT, Some("SSL handshaking"));
                return None;
            }
        }
    }
    if !Box::pin(accept::client_cert_allowed(
        &mut client,
        conf,
        &log,
        "SSL handshaking",
    ))
    .await
    {
        return None;
    }
    let machine: Box<dyn PreAuth> = match &server.dialogue {
        DialoguePlan::Imap(plan) => Box::new(ImapPreAuth::new(plan.clone(), client.is_tls())),
        DialoguePlan::Pop3(plan) => Box::new(Pop3PreAuth::new(plan.clone(), client.is_tls())),
        DialoguePlan::Smtp(plan) => {
            let plan = plan.clone();
            return Box::pin(smtp::serve(server.clone(), plan, client, log, origin)).await;
        }
    };
    let deadline = Instant::now() + conf.timeout;
    dialogue::run(server.clone(), client, machine, log, origin, deadline).await
}
