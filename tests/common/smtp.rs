//! A scripted SMTP backend and a tiny DNS server for the SMTP integration tests.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpStream, UdpSocket};

use super::{Received, Script, ScriptedBackend};

/// How the scripted SMTP backend answers.
#[derive(Clone)]
pub struct SmtpScript {
    /// The mechanisms after `250-AUTH` in the EHLO reply (e.g. `PLAIN LOGIN`).
    pub auth: &'static str,
    /// The reply to RCPT.
    pub rcpt: &'static str,
}

impl Default for SmtpScript {
    fn default() -> Self {
        SmtpScript {
            auth: "PLAIN LOGIN",
            rcpt: "250 2.1.5 Ok\r\n",
        }
    }
}

/// A scripted SMTP backend recording every line it receives (all connections).
pub type SmtpBackend = ScriptedBackend<SmtpScript>;

impl Script for SmtpScript {
    fn serve(self, sock: TcpStream, rec: Received) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(converse(sock, self, rec))
    }
}

/// Postfix-like answers: XCLIENT gets a fresh greeting, AUTH LOGIN its two prompts.
async fn converse(sock: TcpStream, script: SmtpScript, rec: Received) {
    let (r, mut w) = sock.into_split();
    let mut r = BufReader::new(r);
    if w.write_all(b"220 backend ESMTP\r\n").await.is_err() {
        return;
    }
    let mut login_prompts = 0;
    loop {
        let mut line = Vec::new();
        match r.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => rec.lock().unwrap().extend_from_slice(&line),
        }
        let text = String::from_utf8_lossy(&line).to_ascii_uppercase();
        let reply = if login_prompts > 0 {
            login_prompts -= 1;
            if login_prompts == 1 {
                "334 UGFzc3dvcmQ6\r\n".to_string()
            } else {
                "235 2.7.0 Authentication successful\r\n".to_string()
            }
        } else if text.starts_with("EHLO") {
            format!(
                "250-backend\r\n250-AUTH {}\r\n250 8BITMIME\r\n",
                script.auth
            )
        } else if text.starts_with("HELO") {
            "250 backend\r\n".to_string()
        } else if text.starts_with("XCLIENT") {
            "220 backend ESMTP\r\n".to_string()
        } else if text.starts_with("AUTH LOGIN") {
            login_prompts = 2;
            "334 VXNlcm5hbWU6\r\n".to_string()
        } else if text.starts_with("AUTH PLAIN") {
            "235 2.7.0 Authentication successful\r\n".to_string()
        } else if text.starts_with("MAIL") {
            "250 2.1.0 Ok\r\n".to_string()
        } else if text.starts_with("RCPT") {
            script.rcpt.to_string()
        } else if text.starts_with("QUIT") {
            let _ = w.write_all(b"221 2.0.0 Bye\r\n").await;
            return;
        } else {
            format!("250 backend got {}", String::from_utf8_lossy(&line))
        };
        if w.write_all(reply.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// A DNS server that answers PTR queries with `name` and A queries for `name` with
/// `addr`; every other question gets NXDOMAIN.
pub async fn start_dns(name: &'static str, addr: [u8; 4]) -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let local = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = [0u8; 512];
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            if let Some(reply) = dns_reply(&buf[..n], name, addr) {
                let _ = socket.send_to(&reply, from).await;
            }
        }
    });
    local
}

fn dns_reply(query: &[u8], name: &str, addr: [u8; 4]) -> Option<Vec<u8>> {
    let mut at = 12;
    let mut labels = Vec::new();
    while *query.get(at)? != 0 {
        let len = usize::from(query[at]);
        labels.push(String::from_utf8_lossy(query.get(at + 1..at + 1 + len)?).into_owned());
        at += 1 + len;
    }
    let qname = labels.join(".");
    let qtype = u16::from_be_bytes([*query.get(at + 1)?, *query.get(at + 2)?]);
    let end = at + 5;
    let mut out = query.get(..end)?.to_vec();
    out[2] = 0x81;
    out[3] = 0x80;
    let rdata = match qtype {
        12 if qname.ends_with(".in-addr.arpa") => {
            let mut wire = Vec::new();
            for label in name.split('.') {
                wire.push(label.len() as u8);
                wire.extend_from_slice(label.as_bytes());
            }
            wire.push(0);
            wire
        }
        1 if qname == name => addr.to_vec(),
        // The name exists but has no AAAA record: an empty answer, not NXDOMAIN (which
        // is about the name, and fails nginx's whole A + AAAA lookup).
        28 if qname == name => return Some(out),
        _ => {
            out[3] = 0x83;
            return Some(out);
        }
    };
    out[7] = 1;
    out.extend_from_slice(&[0xc0, 12]);
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&[0, 1, 0, 0, 0, 60]);
    out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    out.extend_from_slice(&rdata);
    Some(out)
}
