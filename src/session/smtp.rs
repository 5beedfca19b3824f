//! What an SMTP session does before its greeting (reference §7.2, §7.3): look up the
//! client's host name when a `resolver` is configured, and hold the greeting for
//! `smtp_greeting_delay`, turning away a client that talks first. Then the common
//! pre-auth dialogue runs with an [`SmtpPreAuth`] machine.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{timeout, Instant};

use super::accept::Peer;
use super::{dialogue, LoggedIn, ServerPlan, SessionLog};
use crate::config::{Resolver, Server};
use crate::net::dns::{self, DnsError};
use crate::net::ClientStream;
use crate::proto::redacted_command;
use crate::proto::smtp::{
    SmtpClient, SmtpPlan, SmtpPreAuth, HOST_TEMPUNAVAIL, HOST_UNAVAILABLE, INVALID_PIPELINING,
};

/// How long a closing TLS session may take to say goodbye.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

pub(super) async fn serve(
    server: Arc<ServerPlan>,
    plan: Arc<SmtpPlan>,
    mut client: ClientStream,
    log: SessionLog,
    peer: Peer,
) -> Option<LoggedIn> {
    let conf = server.conf.clone();
    let host = match &conf.resolver {
        Some(resolver) => client_host(resolver, peer.client.ip(), &log).await,
        None => HOST_UNAVAILABLE.to_owned(),
    };
    if !conf.smtp.greeting_delay.is_zero() && talked_first(&mut client, &conf, &log).await {
        let _ = timeout(CLOSE_GRACE, client.shutdown()).await;
        return None;
    }
    let smtp_client = SmtpClient {
        addr: peer.client.ip(),
        host,
    };
    let machine = SmtpPreAuth::new(plan, client.is_tls(), smtp_client);
    let deadline = Instant::now() + conf.timeout;
    dialogue::run(server, client, Box::new(machine), log, peer, deadline).await
}

/// §7.2: PTR lookup, name check, then a forward lookup that must give the client's
/// address back. Failures are logged at error level, as nginx does.
async fn client_host(resolver: &Resolver, ip: IpAddr, log: &SessionLog) -> String {
    let servers = &resolver.servers;
    let lookup = dns::reverse(servers, ip, resolver.timeout).await;
    log_ignored(&lookup.ignored, log);
    let name = match lookup.result {
        Ok(name) => name,
        Err(e) => {
            let message = format!("{ip} could not be resolved ({})", e.describe());
            log.error(&message, Some("in resolving client address"));
            return unavailable_or_temporary(e);
        }
    };
    if !is_valid_host_name(&name) {
        let message = format!(
            "{ip} resolved to invalid host name \"{}\"",
            crate::log::escape(name.as_bytes())
        );
        log.error(&message, Some("in resolving client address"));
        return HOST_TEMPUNAVAIL.to_owned();
    }
    let (ipv4, ipv6) = (resolver.ipv4, resolver.ipv6);
    let lookup = dns::forward(servers, &name, ipv4, ipv6, resolver.timeout).await;
    log_ignored(&lookup.ignored, log);
    match lookup.result {
        Ok(addrs) if addrs.contains(&ip) => name,
        Ok(_) => HOST_UNAVAILABLE.to_owned(),
        Err(e) => {
            let message = format!("\"{name}\" could not be resolved ({})", e.describe());
            log.error(&message, Some("in resolving client hostname"));
            unavailable_or_temporary(e)
        }
    }
}

/// The answers the resolver dropped, as nginx's resolver logs them (error level).
fn log_ignored(ignored: &[String], log: &SessionLog) {
    for reason in ignored {
        log.bare(crate::config::LogLevel::Error, reason);
    }
}

fn unavailable_or_temporary(e: DnsError) -> String {
    if e == DnsError::NXDOMAIN {
        HOST_UNAVAILABLE.to_owned()
    } else {
        HOST_TEMPUNAVAIL.to_owned()
    }
}

/// The CVE-2026-28753 rule: a non-empty name of letters, digits, `-` and `.` only.
fn is_valid_host_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// §7.3: waits out `smtp_greeting_delay`. `true` if the client spoke (it has been
/// answered `503 5.5.0` and must be closed) or went away; `false` to greet it.
async fn talked_first(client: &mut ClientStream, conf: &Server, log: &SessionLog) -> bool {
    let mut buf = vec![0u8; conf.smtp.client_buffer.max(1)];
    let n = match timeout(conf.smtp.greeting_delay, client.read(&mut buf)).await {
        Err(_) => return false,
        Ok(Ok(0)) | Ok(Err(_)) => return true,
        Ok(Ok(n)) => n,
    };
    let message = format!(
        "client was rejected before greeting: {}",
        redacted_command(&buf[..n])
    );
    log.info(&message, Some("in delay pipelining state"));
    let _ = timeout(conf.timeout, client.send(INVALID_PIPELINING)).await;
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_name_rule() {
        assert!(is_valid_host_name("mail-1.example.org"));
        assert!(!is_valid_host_name(""));
        assert!(!is_valid_host_name("a b"));
        assert!(!is_valid_host_name("x_y.example"));
        assert!(!is_valid_host_name("evil\r\nNAME=x"));
    }
}
