//! A scripted POP3 backend for the integration tests.

use std::future::Future;
use std::pin::Pin;

use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::{read_line, Received, Script, ScriptedBackend};

/// How the scripted POP3 backend behaves.
#[derive(Clone)]
pub enum Pop3Script {
    /// Greets, accepts USER and PASS (`+OK Logged in.`), then serves a mailbox of one
    /// message: `STAT`, `RETR 1` (dot-stuffed), `QUIT`; anything else gets `+OK done`.
    Good { message: Vec<u8> },
    /// Greets, accepts USER, answers PASS with these bytes and waits for the close.
    RefusePass(Vec<u8>),
}

/// A scripted POP3 backend recording everything it receives.
pub type Pop3Backend = ScriptedBackend<Pop3Script>;

impl Script for Pop3Script {
    fn serve(self, sock: TcpStream, rec: Received) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(serve(sock, self, rec))
    }
}

/// The RETR reply for `message`: lines starting with `.` get another, then `.\r\n`.
pub fn retr_reply(message: &[u8]) -> Vec<u8> {
    let mut out = format!("+OK {} octets\r\n", message.len()).into_bytes();
    for line in message.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b".") {
            out.push(b'.');
        }
        out.extend_from_slice(line);
    }
    out.extend_from_slice(b".\r\n");
    out
}

async fn serve(sock: TcpStream, script: Pop3Script, rec: Received) {
    let (r, mut w) = sock.into_split();
    let mut r = BufReader::new(r);
    let rec = &*rec;
    let _ = w.write_all(b"+OK fake POP3 ready\r\n").await;
    let _ = read_line(&mut r, rec).await;
    let _ = w.write_all(b"+OK\r\n").await;
    let _ = read_line(&mut r, rec).await;
    let message = match script {
        Pop3Script::RefusePass(reply) => {
            let _ = w.write_all(&reply).await;
            let _ = read_line(&mut r, rec).await;
            return;
        }
        Pop3Script::Good { message } => message,
    };
    let _ = w.write_all(b"+OK Logged in.\r\n").await;
    loop {
        let (n, line) = read_line(&mut r, rec).await;
        if n == 0 {
            return;
        }
        let command = String::from_utf8_lossy(&line).trim_end().to_uppercase();
        let reply = match command.as_str() {
            "STAT" => format!("+OK 1 {}\r\n", message.len()).into_bytes(),
            "RETR 1" => retr_reply(&message),
            "QUIT" => {
                let _ = w.write_all(b"+OK Logging out.\r\n").await;
                return;
            }
            _ => b"+OK done\r\n".to_vec(),
        };
        let _ = w.write_all(&reply).await;
    }
}
