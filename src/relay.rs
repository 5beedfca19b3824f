//! The byte copy after login. It parses nothing.
//!
//! nginx semantics kept on purpose: no half-close (when either side reaches EOF or
//! fails, with everything it sent already passed on, the session ends), and the idle
//! timeout (`proxy_timeout`) is re-armed only by activity on the client side.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

/// Why a relayed session ended, for the log.
#[derive(Debug)]
pub enum RelayEnd {
    ClientClosed,
    BackendClosed,
    ClientError(io::Error),
    BackendError(io::Error),
    ClientTimedOut,
}

/// Copy sizes. Reads from the backend are large so that a TLS client gets full 16 KiB
/// records (one record per read instead of nginx's 4 KiB pieces).
#[derive(Debug, Clone, Copy)]
pub struct RelayBuffers {
    pub client_to_backend: usize,
    pub backend_to_client: usize,
}

/// Relays until one side closes or the client is idle for `idle`.
pub async fn relay<C, B>(
    client: &mut C,
    backend: &mut B,
    buffers: RelayBuffers,
    idle: Duration,
) -> RelayEnd
where
    C: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let start = Instant::now();
    let last_client_activity = AtomicU64::new(0);
    let touch = || {
        last_client_activity.store(start.elapsed().as_millis() as u64, Ordering::Relaxed);
    };
    let (mut cr, mut cw) = tokio::io::split(client);
    let (mut br, mut bw) = tokio::io::split(backend);
    let upstream = pump(
        &mut cr,
        &mut bw,
        buffers.client_to_backend,
        &touch,
        Side::Client,
    );
    let downstream = pump(
        &mut br,
        &mut cw,
        buffers.backend_to_client,
        &touch,
        Side::Backend,
    );
    let idle_watch = async {
        loop {
            let last = Duration::from_millis(last_client_activity.load(Ordering::Relaxed));
            let deadline = start + last + idle;
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline).await;
        }
    };
    tokio::select! {
        end = upstream => end,
        end = downstream => end,
        _ = idle_watch => RelayEnd::ClientTimedOut,
    }
}

#[derive(Clone, Copy)]
enum Side {
    Client,
    Backend,
}

/// Copies one direction. `from` says which peer we read; the client side's reads and
/// writes both count as client activity (nginx re-arms its timer on either event).
async fn pump<R, W>(
    reader: &mut R,
    writer: &mut W,
    size: usize,
    touch: &impl Fn(),
    from: Side,
) -> RelayEnd
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; size.max(1)];
    loop {
        let n = match reader.read(&mut buf).await {
            Ok(0) => return closed(from),
            Ok(n) => n,
            Err(e) => return read_error(from, e),
        };
        touch();
        if let Err(e) = writer.write_all(&buf[..n]).await {
            return read_error(other(from), e);
        }
        if let Err(e) = writer.flush().await {
            return read_error(other(from), e);
        }
        touch();
    }
}

fn other(side: Side) -> Side {
    match side {
        Side::Client => Side::Backend,
        Side::Backend => Side::Client,
    }
}

fn closed(side: Side) -> RelayEnd {
    match side {
        Side::Client => RelayEnd::ClientClosed,
        Side::Backend => RelayEnd::BackendClosed,
    }
}

fn read_error(side: Side, e: io::Error) -> RelayEnd {
    match side {
        Side::Client => RelayEnd::ClientError(e),
        Side::Backend => RelayEnd::BackendError(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::duplex;

    const BUFS: RelayBuffers = RelayBuffers {
        client_to_backend: 7,
        backend_to_client: 5,
    };

    #[tokio::test]
    async fn copies_both_ways_and_ends_on_client_eof() {
        let (mut client_far, mut client) = duplex(64);
        let (mut backend, mut backend_far) = duplex(64);
        let task = tokio::spawn(async move {
            relay(&mut client, &mut backend, BUFS, Duration::from_secs(5)).await
        });
        client_far.write_all(b"a1 SELECT INBOX\r\n").await.unwrap();
        let mut got = [0u8; 17];
        backend_far.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"a1 SELECT INBOX\r\n");
        backend_far.write_all(b"a1 OK done\r\n").await.unwrap();
        let mut got = [0u8; 12];
        client_far.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"a1 OK done\r\n");
        drop(client_far);
        assert!(matches!(task.await.unwrap(), RelayEnd::ClientClosed));
    }

    #[tokio::test(start_paused = true)]
    async fn idle_client_times_out_after_proxy_timeout() {
        let (mut client_far, mut client) = duplex(1 << 16);
        let (mut backend, mut backend_far) = duplex(1 << 16);
        let task = tokio::spawn(async move {
            relay(&mut client, &mut backend, BUFS, Duration::from_secs(10)).await
        });
        // A write to the client counts as client activity (as in nginx); after it,
        // silence on both sides must end the session `proxy_timeout` later.
        backend_far.write_all(b"* 1 EXISTS\r\n").await.unwrap();
        let mut got = [0u8; 12];
        client_far.read_exact(&mut got).await.unwrap();
        let t0 = Instant::now();
        let end = task.await.unwrap();
        assert!(matches!(end, RelayEnd::ClientTimedOut), "{end:?}");
        let waited = t0.elapsed();
        assert!(
            waited >= Duration::from_secs(9) && waited <= Duration::from_secs(11),
            "{waited:?}"
        );
    }
}
