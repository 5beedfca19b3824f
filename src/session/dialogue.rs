//! The pre-auth loop, the auth_http round trips, and the hand-off to the relay.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{sleep, timeout, timeout_at, Instant};

use super::accept::{self, Peer};
use super::backend::{connect_and_login, BackendOutcome};
use super::{ServerPlan, SessionLog, CLIENT_TIMED_OUT};
use crate::auth::{self, AuthRequest, Outcome};
use crate::config::{LogLevel, Server};
use crate::log::escape;
use crate::net::ClientStream;
use crate::proto::{Action, Credentials, PreAuth};
use crate::relay::{relay, RelayEnd};

/// Largest single read from a client during the pre-auth dialogue.
const READ_CHUNK: usize = 4096;
/// How long a closing TLS session may take to say goodbye.
const CLOSE_NOTIFY_GRACE: Duration = Duration::from_secs(1);

struct Dialogue {
    server: Arc<ServerPlan>,
    client: ClientStream,
    machine: Box<dyn PreAuth>,
    log: SessionLog,
    peer: Peer,
    /// The pre-auth deadline: set at the greeting, restarted after an `Auth-Wait`.
    deadline: Instant,
    attempt: u32,
}

/// What the pre-auth loop ended with.
enum PreAuthEnd {
    Close,
    Authenticate(Credentials),
}

/// What one authentication attempt ended with.
enum AuthEnd {
    Close,
    /// Logged in: relay between the client and this backend connection.
    LoggedIn(TcpStream),
    /// The client was refused after an `Auth-Wait`: back to the dialogue.
    Retry,
}

/// A logged-in session, handed back by [`super::serve`]: what the relay needs and
/// nothing of the pre-auth state.
///
/// The relay runs in a task of its own. A tokio task keeps the memory of its
/// future's largest state for its whole life, and the session future (TLS
/// handshake, pre-auth, auth_http, backend login) is ~2.8 KB against the relay's
/// ~0.5 KB: an IMAP client that idles for hours should not keep the difference.
pub struct LoggedIn {
    server: Arc<ServerPlan>,
    client: ClientStream,
    upstream: TcpStream,
    log: SessionLog,
}

pub(super) async fn run(
    server: Arc<ServerPlan>,
    client: ClientStream,
    mut machine: Box<dyn PreAuth>,
    log: SessionLog,
    peer: Peer,
    deadline: Instant,
) -> Option<LoggedIn> {
    let greeting = machine.greeting();
    let mut d = Dialogue {
        server,
        client,
        machine,
        log,
        peer,
        deadline,
        attempt: 0,
    };
    if Box::pin(d.write(&greeting)).await.is_err() {
        return None;
    }
    let mut after_reply = false;
    loop {
        // The phases before the relay are boxed: an async fn's state is as large as
        // its largest phase, and a logged-in session should not carry the pre-auth
        // and auth_http state for hours.
        let creds = match Box::pin(d.pre_auth(after_reply)).await {
            PreAuthEnd::Close => break,
            PreAuthEnd::Authenticate(creds) => creds,
        };
        match Box::pin(d.authenticate(creds)).await {
            AuthEnd::Close => break,
            AuthEnd::LoggedIn(upstream) => return Some(d.logged_in(upstream)),
            // The refusal was a reply: nginx's next read handler run reads first.
            AuthEnd::Retry => after_reply = true,
        }
    }
    d.close().await;
    None
}

impl Dialogue {
    fn conf(&self) -> &Server {
        &self.server.conf
    }

    async fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        let limit = self.conf().timeout;
        match timeout(limit, self.client.send(bytes)).await {
            Ok(r) => r,
            Err(_) => {
                self.log.info(CLIENT_TIMED_OUT, Some("in auth state"));
                Err(io::ErrorKind::TimedOut.into())
            }
        }
    }

    async fn close(&mut self) {
        let _ = timeout(CLOSE_NOTIFY_GRACE, self.client.shutdown()).await;
    }

    /// Runs the dialogue until the client closes, times out, is shown the door, or
    /// supplies credentials. Follows nginx's read rule: before each command, one
    /// read attempt is made; EOF then closes at once, even with commands buffered.
    async fn pre_auth(&mut self, after_reply: bool) -> PreAuthEnd {
        let mut chunk = vec![0u8; READ_CHUNK];
        // nginx reads again only when it comes back for a buffered command after a
        // reply; right after a read, or after a refused login, it parses at once.
        let mut replied = after_reply;
        loop {
            let room = self.machine.free_space().min(READ_CHUNK);
            if replied && room > 0 {
                match try_read_now(&mut self.client, &mut chunk[..room]) {
                    Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => return PreAuthEnd::Close,
                    Poll::Ready(Ok(n)) => self.machine.receive(&chunk[..n]),
                    Poll::Pending => {}
                }
            }
            replied = false;
            let action = self.machine.next_action();
            self.log
                .debug_command(self.conf().protocol, self.machine.take_command());
            while let Some(message) = self.machine.take_log() {
                self.log.info(&message, Some("in auth state"));
            }
            match action {
                Action::NeedInput => {
                    let room = self.machine.free_space().clamp(1, READ_CHUNK);
                    let read = timeout_at(self.deadline, self.client.read(&mut chunk[..room]));
                    match read.await {
                        Err(_) => {
                            self.log.info(CLIENT_TIMED_OUT, Some("in auth state"));
                            return PreAuthEnd::Close;
                        }
                        Ok(Ok(0)) | Ok(Err(_)) => return PreAuthEnd::Close,
                        Ok(Ok(n)) => self.machine.receive(&chunk[..n]),
                    }
                }
                Action::Reply(bytes) => {
                    if self.write(&bytes).await.is_err() {
                        return PreAuthEnd::Close;
                    }
                    replied = true;
                }
                Action::ReplyAndClose(bytes) => {
                    let _ = self.write(&bytes).await;
                    return PreAuthEnd::Close;
                }
                Action::StartTls(bytes) => {
                    if self.write(&bytes).await.is_err() || !self.start_tls().await {
                        return PreAuthEnd::Close;
                    }
                }
                Action::Authenticate(creds) => return PreAuthEnd::Authenticate(creds),
            }
        }
    }

    /// The STARTTLS handshake, under the still-running pre-auth deadline.
    async fn start_tls(&mut self) -> bool {
        let Some(ctx) = self.server.tls.clone() else {
            return false;
        };
        let plain = std::mem::replace(&mut self.client, ClientStream::Detached);
        match timeout_at(self.deadline, plain.into_tls(&ctx)).await {
            Ok(Ok(tls)) => {
                self.client = self.log.debug_tls(tls);
                self.log.starttls = true;
                let conf = &self.server.conf;
                let action = "in starttls state";
                if !accept::client_cert_allowed(&mut self.client, conf, &self.log, action).await {
                    return false;
                }
                self.machine.tls_established();
                true
            }
            Ok(Err(e)) => {
                self.log.info(&e.to_string(), Some("in starttls state"));
                false
            }
            Err(_) => {
                self.log.info(CLIENT_TIMED_OUT, Some("in starttls state"));
                false
            }
        }
    }

    fn auth_request(&self, creds: Credentials) -> AuthRequest {
        let mut request = AuthRequest::new(
            creds,
            self.conf().protocol,
            self.attempt,
            self.peer.client.ip(),
        );
        request.proxy_protocol = self.peer.proxy_header.clone();
        request.ssl = accept::ssl_info(&self.client, self.conf());
        request.client_host = self.machine.client_host().map(str::to_owned);
        request
    }

    /// One authentication: auth_http (with `WAIT` re-queries), then either the
    /// refusal (close, or retry after `Auth-Wait`) or the backend login and relay.
    async fn authenticate(&mut self, creds: Credentials) -> AuthEnd {
        self.attempt += 1;
        self.log.login = Some(escape(&creds.login));
        let request = self.auth_request(creds);
        let have_password = request.password_for_backend().is_some();
        loop {
            self.log
                .debug_auth_request(&self.conf().auth_http, self.attempt);
            let outcome = match auth::query(&self.conf().auth_http, &request).await {
                Ok(response) => self
                    .log
                    .debug_auth_answer(&response)
                    .outcome(self.conf().protocol, have_password),
                Err(e) => Err(e),
            };
            match outcome {
                Err(e) => {
                    // nginx is silent on a few of these; we always say who failed.
                    self.internal_error(&e.to_string(), auth::LOG_ACTION).await;
                    return AuthEnd::Close;
                }
                Ok(Outcome::Wait(pause)) => sleep(pause).await,
                Ok(Outcome::Failure {
                    message,
                    wait,
                    error_code,
                }) => return self.refused(&message, wait, error_code.as_deref()).await,
                Ok(Outcome::Ok {
                    backend,
                    login_override,
                    password_override,
                    ..
                }) => {
                    let login = login_override.unwrap_or_else(|| request.login.clone());
                    let password = match &password_override {
                        Some(pass) => pass.expose().clone(),
                        None => request.password_for_backend().unwrap_or_default().to_vec(),
                    };
                    return match self.login_backend(&backend, login, password).await {
                        Some(upstream) => AuthEnd::LoggedIn(upstream),
                        None => AuthEnd::Close,
                    };
                }
            }
        }
    }

    async fn refused(
        &mut self,
        message: &[u8],
        wait: Option<Duration>,
        error_code: Option<&[u8]>,
    ) -> AuthEnd {
        self.log.info(
            &format!("client login failed: \"{}\"", escape(message)),
            Some(auth::LOG_ACTION),
        );
        let retry = matches!(wait, Some(w) if !w.is_zero());
        if let Some(w) = wait {
            sleep(w).await;
        }
        let line = self.machine.auth_failed(message, error_code);
        if self.write(&line).await.is_err() || !retry {
            return AuthEnd::Close;
        }
        self.deadline = Instant::now() + self.conf().timeout;
        AuthEnd::Retry
    }

    /// Logs in to the backend; `None` when the session is over (the client has been
    /// told, and the log says why).
    async fn login_backend(
        &mut self,
        backend: &auth::BackendAddr,
        login: Vec<u8>,
        password: Vec<u8>,
    ) -> Option<TcpStream> {
        let addr = match auth::resolve(backend).await {
            Ok(addr) => addr,
            Err(e) => {
                self.internal_error(&e.to_string(), auth::LOG_ACTION).await;
                return None;
            }
        };
        self.log.login = Some(escape(&login));
        self.log.upstream = Some(addr);
        let conf = self.server.conf.clone();
        let steps = self
            .machine
            .backend_login(&login, &password, conf.proxy.buffer);
        drop(password);
        let deadline = Instant::now() + conf.timeout;
        let proxy_header = accept::backend_proxy_header(&conf, &self.peer);
        let outcome = connect_and_login(addr, proxy_header, steps, deadline, &self.log).await;
        let (mut upstream, reply) = match outcome {
            BackendOutcome::LoggedIn(stream, reply) => (stream, reply),
            BackendOutcome::Failed { error, action } => {
                self.internal_error_at(error.level(), &error.to_string(), action)
                    .await;
                return None;
            }
            // A reply too long for `proxy_buffer` comes with nothing to pass on.
            BackendOutcome::Refused { buffered, log }
                if conf.proxy.pass_error_message && !buffered.is_empty() =>
            {
                self.log.info(&log, Some("reading response from upstream"));
                let _ = self.write(&buffered).await;
                return None;
            }
            BackendOutcome::Refused { log, .. } => {
                self.internal_error(&log, "reading response from upstream")
                    .await;
                return None;
            }
        };
        if self.write(&reply).await.is_err() {
            return None;
        }
        self.log.info("client logged in", None);
        let pipelined = self.machine.take_pipelined();
        if !pipelined.is_empty() && upstream.write_all(&pipelined).await.is_err() {
            return None;
        }
        Some(upstream)
    }

    /// Keeps what the relay needs; the pre-auth machine and its buffers go.
    fn logged_in(self, upstream: TcpStream) -> LoggedIn {
        LoggedIn {
            server: self.server,
            client: self.client,
            upstream,
            log: self.log,
        }
    }

    async fn internal_error(&mut self, message: &str, action: &str) {
        self.internal_error_at(LogLevel::Error, message, action)
            .await;
    }

    /// The protocol's internal-error line to the client, and why in the log.
    async fn internal_error_at(&mut self, level: LogLevel, message: &str, action: &str) {
        self.log.log(level, message, Some(action));
        let line = self.machine.internal_error();
        let _ = self.write(line).await;
    }
}

/// One read attempt that does not wait: nginx's `recv()` in its read handler, which
/// sees an EOF the client sent after pipelined commands.
fn try_read_now(stream: &mut ClientStream, buf: &mut [u8]) -> Poll<io::Result<usize>> {
    let mut cx = Context::from_waker(std::task::Waker::noop());
    let mut rb = ReadBuf::new(buf);
    match Pin::new(stream).poll_read(&mut cx, &mut rb) {
        Poll::Ready(Ok(())) => Poll::Ready(Ok(rb.filled().len())),
        Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
        Poll::Pending => Poll::Pending,
    }
}

impl LoggedIn {
    /// Relays until either side ends the session, logs why, and says goodbye to the
    /// client's TLS.
    pub async fn relay(self) {
        let LoggedIn {
            server,
            mut client,
            mut upstream,
            log,
        } = self;
        log.debug_mail(format_args!("mail proxy relay start"));
        let (end, moved) = relay(&mut client, &mut upstream, server.conf.proxy.timeout).await;
        log.debug_relay_end(&end, moved);
        match end {
            RelayEnd::ClientTimedOut => log.info(CLIENT_TIMED_OUT, Some("proxying")),
            RelayEnd::ClientError(e) | RelayEnd::BackendError(e) => {
                log.info(&format!("proxied session done ({e})"), None)
            }
            RelayEnd::ClientClosed | RelayEnd::BackendClosed => {
                log.info("proxied session done", None)
            }
        }
        let _ = timeout(CLOSE_NOTIFY_GRACE, client.shutdown()).await;
    }
}
