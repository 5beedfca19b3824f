//! A minimal IMAP client over implicit TLS: exactly the commands the measurements send, with
//! replies checked just enough to notice a proxy that misbehaves. Certificates are not verified
//! (the benchmark uses a throw-away self-signed one), and sessions are never resumed, so every
//! connection costs the proxy one full handshake, as a fresh mail client would.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};

use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_openssl::SslStream;

/// Longest reply line accepted; a longer one means the peer is not speaking IMAP to us.
const MAX_LINE: usize = 16 * 1024;
/// Read buffer; large enough that bulk literals are read in big chunks.
const READ_BUFFER: usize = 64 * 1024;

/// Where to connect and as whom; shared by every connection of a measurement.
pub struct Target {
    pub addr: SocketAddr,
    pub user: String,
    pub pass: String,
    tls: SslConnector,
}

impl Target {
    pub fn new(addr: SocketAddr, user: String, pass: String) -> Result<Target, String> {
        let mut builder = SslConnector::builder(SslMethod::tls_client())
            .map_err(|e| format!("TLS client setup: {e}"))?;
        builder.set_verify(SslVerifyMode::NONE);
        Ok(Target {
            addr,
            user,
            pass,
            tls: builder.build(),
        })
    }
}

fn protocol_error(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.into())
}

/// The TLS version of the first handshake of this process.
static NEGOTIATED: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();

/// The TLS version the proxy negotiated, or `none` before any handshake.
pub fn negotiated_version() -> &'static str {
    NEGOTIATED.get().copied().unwrap_or("none")
}

/// One TLS connection with a read buffer (`buf[start..end]` holds unread bytes).
pub struct Conn {
    stream: SslStream<TcpStream>,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
}

impl Conn {
    /// TCP connect plus TLS handshake; the greeting is not read yet.
    pub async fn connect(target: &Target) -> io::Result<Conn> {
        let tcp = TcpStream::connect(target.addr).await?;
        tcp.set_nodelay(true)?;
        let ssl = target
            .tls
            .configure()
            .and_then(|c| c.verify_hostname(false).into_ssl("localhost"))
            .map_err(io::Error::other)?;
        let mut stream = SslStream::new(ssl, tcp).map_err(io::Error::other)?;
        Pin::new(&mut stream)
            .connect()
            .await
            .map_err(|e| io::Error::other(format!("TLS handshake: {e}")))?;
        NEGOTIATED.get_or_init(|| stream.ssl().version_str());
        Ok(Conn {
            stream,
            buf: vec![0; READ_BUFFER].into_boxed_slice(),
            start: 0,
            end: 0,
        })
    }

    /// Connect, read the greeting and log in: the whole path a mail client waits for.
    pub async fn open_session(target: &Target) -> io::Result<Conn> {
        let mut conn = Conn::connect(target).await?;
        conn.expect_greeting().await?;
        let login = format!("a LOGIN {} {}\r\n", target.user, target.pass);
        conn.command(login.as_bytes(), "a").await?;
        Ok(conn)
    }

    async fn fill(&mut self) -> io::Result<()> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let n = self.stream.read(&mut self.buf[self.end..]).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.end += n;
        Ok(())
    }

    /// The next line without its CRLF, as an owned string (lines are short and rare enough).
    pub async fn read_line(&mut self) -> io::Result<String> {
        loop {
            let unread = &self.buf[self.start..self.end];
            if let Some(pos) = unread.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&unread[..pos]).into_owned();
                self.start += pos + 2;
                return Ok(line);
            }
            if unread.len() >= MAX_LINE {
                return Err(protocol_error("reply line too long"));
            }
            self.fill().await?;
        }
    }

    pub async fn expect_greeting(&mut self) -> io::Result<()> {
        let line = self.read_line().await?;
        if line.starts_with("* OK") {
            Ok(())
        } else {
            Err(protocol_error(format!("unexpected greeting {line:?}")))
        }
    }

    pub async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes).await?;
        self.stream.flush().await
    }

    /// Sends a command and reads replies up to its tagged completion, which must be OK.
    pub async fn command(&mut self, line: &[u8], tag: &str) -> io::Result<()> {
        self.send(line).await?;
        self.expect_tagged_ok(tag).await
    }

    async fn expect_tagged_ok(&mut self, tag: &str) -> io::Result<()> {
        loop {
            let line = self.read_line().await?;
            let Some(rest) = line.strip_prefix(tag).and_then(|r| r.strip_prefix(' ')) else {
                continue; // untagged data or a continuation request
            };
            return if rest.starts_with("OK") {
                Ok(())
            } else {
                Err(protocol_error(format!("command {tag} failed: {line:?}")))
            };
        }
    }

    /// `LOGOUT`, then wait for the proxy to close the connection: a login cycle is only finished
    /// once the proxy has torn the session down.
    pub async fn logout(mut self) -> io::Result<()> {
        self.command(b"z LOGOUT\r\n", "z").await?;
        loop {
            match self.fill().await {
                Ok(()) => self.start = self.end,
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
                // A close without TLS close_notify is normal for IMAP servers after BYE.
                Err(_) => return Ok(()),
            }
        }
    }

    /// `FETCH 1 BODY[]` and read the whole literal; every body byte received is added to
    /// `progress` as it arrives, so throughput can be sampled in the middle of a transfer.
    pub async fn fetch(&mut self, tag: &str, progress: &AtomicU64) -> io::Result<()> {
        self.send(format!("{tag} FETCH 1 BODY[]\r\n").as_bytes())
            .await?;
        let header = self.read_line().await?;
        let size = literal_size(&header)
            .ok_or_else(|| protocol_error(format!("unexpected FETCH reply {header:?}")))?;
        let mut remaining = size;
        while remaining > 0 {
            if self.start == self.end {
                self.fill().await?;
            }
            let take = remaining.min((self.end - self.start) as u64);
            self.start += take as usize;
            remaining -= take;
            progress.fetch_add(take, Ordering::Relaxed);
        }
        self.expect_tagged_ok(tag).await
    }
}

/// The `{N}` at the end of a line that announces a literal.
fn literal_size(line: &str) -> Option<u64> {
    let digits = line.strip_suffix('}')?.rsplit_once('{')?.1;
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::literal_size;

    #[test]
    fn literal_size_reads_the_trailing_braces_only() {
        assert_eq!(literal_size("* 1 FETCH (BODY[] {10485760}"), Some(10485760));
        assert_eq!(literal_size("* 1 FETCH (BODY[] {12} x"), None);
        assert_eq!(literal_size("* 1 FETCH (BODY[] {}"), None);
    }
}
