//! The two servers behind the proxies during a benchmark. Both are deliberately trivial so that
//! their CPU cost is small next to the proxy's: a real IMAP server (Dovecot) would dominate the
//! profile and hide the difference between the proxies.
//!
//! * `backend`: an IMAP server that accepts any login (including nginx's literal sequence
//!   `TAG LOGIN {n}` / `user {m}` / `pass`), serves one message of a configured size from a
//!   buffer prepared at start, and answers OK to everything else.
//! * `auth`: an auth_http server that sends every login to the backend.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use crate::Args;

/// Longest command line the backend accepts (commands here are a few dozen bytes).
const MAX_COMMAND_LINE: u64 = 8 * 1024;
/// Largest literal accepted inside a command (user names and passwords).
const MAX_COMMAND_LITERAL: usize = 8 * 1024;
/// Largest auth_http request head accepted; nginx's are a few hundred bytes.
const MAX_AUTH_REQUEST: usize = 8 * 1024;

async fn listen(args: &Args) -> Result<TcpListener, String> {
    let host = args.text("host", "127.0.0.1");
    let port: u16 = args.number("port", None)?;
    TcpListener::bind((host.as_str(), port))
        .await
        .map_err(|e| format!("cannot listen on {host}:{port}: {e}"))
}

/// Accepts forever, handing each connection to `serve`. Accept errors (typically running out of
/// file descriptors under the idle test) are survived with a short pause rather than a crash.
async fn accept_loop<F, Fut>(listener: TcpListener, serve: F) -> Result<(), String>
where
    F: Fn(TcpStream) -> Fut,
    Fut: std::future::Future<Output = io::Result<()>> + Send + 'static,
{
    loop {
        match listener.accept().await {
            Ok((socket, _)) => {
                let _ = socket.set_nodelay(true);
                let session = serve(socket);
                tokio::spawn(async move {
                    let _ = session.await;
                });
            }
            Err(e) => {
                eprintln!("mailproxy-bench: accept: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

pub async fn backend(args: &Args) -> Result<(), String> {
    let size: usize = args.number("message-size", Some(10 * 1024 * 1024))?;
    let message = Arc::new(Message::new(size));
    let listener = listen(args).await?;
    accept_loop(listener, move |socket| serve_imap(socket, message.clone())).await
}

/// The served message: a header line with the literal size, the body, and nothing else to
/// compute per FETCH.
struct Message {
    header: Vec<u8>,
    body: Vec<u8>,
}

impl Message {
    /// Text lines of 78 characters plus CRLF, like a large plain-text or base64 mail.
    fn new(size: usize) -> Message {
        let line =
            b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdef\r\n";
        let body: Vec<u8> = line.iter().copied().cycle().take(size).collect();
        let header = format!("* 1 FETCH (BODY[] {{{size}}}\r\n").into_bytes();
        Message { header, body }
    }
}

async fn serve_imap(socket: TcpStream, message: Arc<Message>) -> io::Result<()> {
    let (read_half, mut writer) = socket.into_split();
    let mut reader = BufReader::new(read_half);
    writer.write_all(b"* OK ready\r\n").await?;
    let mut command = Vec::new();
    loop {
        command.clear();
        if !read_command(&mut reader, &mut writer, &mut command).await? {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&command);
        let mut words = text.split_ascii_whitespace();
        let tag = words.next().unwrap_or("*");
        let verb = words.next().unwrap_or("").to_ascii_uppercase();
        match verb.as_str() {
            "LOGIN" => {
                writer
                    .write_all(format!("{tag} OK Logged in\r\n").as_bytes())
                    .await?
            }
            "FETCH" => {
                writer.write_all(&message.header).await?;
                writer.write_all(&message.body).await?;
                let done = format!(")\r\n{tag} OK Fetch completed\r\n");
                writer.write_all(done.as_bytes()).await?;
            }
            "LOGOUT" => {
                let bye = format!("* BYE Logging out\r\n{tag} OK Logout completed\r\n");
                writer.write_all(bye.as_bytes()).await?;
                return writer.shutdown().await;
            }
            "CAPABILITY" => {
                let caps = format!("* CAPABILITY IMAP4rev1\r\n{tag} OK\r\n");
                writer.write_all(caps.as_bytes()).await?;
            }
            _ => writer.write_all(format!("{tag} OK\r\n").as_bytes()).await?,
        }
    }
}

/// Reads one complete command into `command`, including any literals: for a synchronising
/// literal `{n}` it first answers `+ go`, as nginx waits for that before each part of its login.
/// Returns false on a clean end of stream before a command starts.
async fn read_command<R, W>(
    reader: &mut R,
    writer: &mut W,
    command: &mut Vec<u8>,
) -> io::Result<bool>
where
    R: tokio::io::AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin,
{
    loop {
        let before = command.len();
        let n = (&mut *reader)
            .take(MAX_COMMAND_LINE)
            .read_until(b'\n', command)
            .await?;
        if n == 0 {
            return if before == 0 {
                Ok(false)
            } else {
                Err(io::ErrorKind::UnexpectedEof.into())
            };
        }
        if !command.ends_with(b"\n") {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "line too long"));
        }
        let Some((size, synchronising)) = trailing_literal(&command[before..]) else {
            return Ok(true);
        };
        if size > MAX_COMMAND_LITERAL || command.len() + size > MAX_COMMAND_LITERAL * 2 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "literal too big",
            ));
        }
        if synchronising {
            writer.write_all(b"+ go\r\n").await?;
        }
        let start = command.len();
        command.resize(start + size, 0);
        reader.read_exact(&mut command[start..]).await?;
    }
}

/// `{n}` or `{n+}` (LITERAL+) at the end of a line: the size and whether the sender waits for a
/// continuation request.
fn trailing_literal(line: &[u8]) -> Option<(usize, bool)> {
    let line = line
        .strip_suffix(b"\r\n")
        .or_else(|| line.strip_suffix(b"\n"))?;
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|&b| b == b'{')?;
    let spec = &inner[open + 1..];
    let (digits, synchronising) = match spec.strip_suffix(b"+") {
        Some(d) => (d, false),
        None => (spec, true),
    };
    let size = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some((size, synchronising))
}

pub async fn auth(args: &Args) -> Result<(), String> {
    let backend = args.required("backend")?;
    let (host, port) = backend
        .rsplit_once(':')
        .ok_or_else(|| format!("--backend {backend:?}: expected HOST:PORT"))?;
    let headers = format!("Auth-Status: OK\r\nAuth-Server: {host}\r\nAuth-Port: {port}\r\n");
    let replies = AuthReplies {
        http10: format!("HTTP/1.0 200 OK\r\n{headers}\r\n")
            .into_bytes()
            .into(),
        http11: format!("HTTP/1.1 200 OK\r\n{headers}Content-Length: 0\r\n\r\n")
            .into_bytes()
            .into(),
    };
    let listener = listen(args).await?;
    accept_loop(listener, move |socket| answer_auth(socket, replies.clone())).await
}

/// nginx's HTTP/1.0 request gets an answer and a close; an HTTP/1.1 request (mailproxy's
/// `auth_http_keepalive`) gets a framed answer on a connection that stays open.
#[derive(Clone)]
struct AuthReplies {
    http10: Arc<[u8]>,
    http11: Arc<[u8]>,
}

/// Reads request heads (up to the blank line) and sends the fixed answer.
async fn answer_auth(mut socket: TcpStream, replies: AuthReplies) -> io::Result<()> {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    loop {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = socket.read(&mut chunk).await?;
            if n == 0 || head.len() + n > MAX_AUTH_REQUEST {
                return Ok(());
            }
            head.extend_from_slice(&chunk[..n]);
        }
        let keep = head
            .split(|&b| b == b'\n')
            .next()
            .is_some_and(|l| l.ends_with(b"HTTP/1.1\r"));
        if !keep {
            socket.write_all(&replies.http10).await?;
            return socket.shutdown().await;
        }
        socket.write_all(&replies.http11).await?;
        head.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailing_literal_recognises_nginx_login_parts() {
        assert_eq!(trailing_literal(b"a LOGIN {5}\r\n"), Some((5, true)));
        assert_eq!(trailing_literal(b"bench {6}\r\n"), Some((6, true)));
        assert_eq!(trailing_literal(b"a LOGIN {5+}\r\n"), Some((5, false)));
        assert_eq!(trailing_literal(b"secret\r\n"), None);
        assert_eq!(trailing_literal(b"a LOGIN {x}\r\n"), None);
    }

    #[tokio::test]
    async fn backend_reads_nginx_login_sequence() {
        let input: &[u8] = b"a1 LOGIN {5}\r\nbench {6}\r\nsecret\r\n";
        let mut reader = BufReader::new(input);
        let mut written = Vec::new();
        let mut command = Vec::new();
        let complete = read_command(&mut reader, &mut written, &mut command).await;
        assert!(complete.expect("reads"));
        assert_eq!(command, b"a1 LOGIN {5}\r\nbench {6}\r\nsecret\r\n");
        assert_eq!(written, b"+ go\r\n+ go\r\n");
    }
}
