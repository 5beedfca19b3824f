//! A scripted POP3 backend for the integration tests.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use super::read_line;

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
pub struct Pop3Backend {
    pub addr: SocketAddr,
    pub received: Arc<Mutex<Vec<u8>>>,
}

impl Pop3Backend {
    pub async fn start(script: Pop3Script) -> Pop3Backend {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let rec = received.clone();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let rec = rec.clone();
                let script = script.clone();
                tokio::spawn(async move { serve(sock, script, rec).await });
            }
        });
        Pop3Backend { addr, received }
    }

    pub fn received(&self) -> String {
        String::from_utf8_lossy(&self.received.lock().unwrap()).into_owned()
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

async fn serve(sock: TcpStream, script: Pop3Script, rec: Arc<Mutex<Vec<u8>>>) {
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
