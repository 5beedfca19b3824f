//! `mailproxy-auth`: a tiny auth_http server that sends every login to one legacy
//! backend per protocol. It does not check passwords: the backend does. Logins listed
//! in `refuse` are turned away before they reach it.
//!
//! Usage: `mailproxy-auth -c FILE` (see `examples/auth-server.toml`).
//!
//! Each request gets HTTP 200 with `Auth-Status: OK`, `Auth-Server: <IP>` and
//! `Auth-Port: <port>` (the backend's name is looked up per request, since nginx accepts
//! only IP addresses), or a refusal, or HTTP 400 for a request nginx would never send.
//! One log line per request goes to stderr, without the password.

mod answer;
mod config;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use mailproxy::auth::headers as h;
use tokio::net::TcpListener;

use answer::{BadRequest, Decision, Query};
use config::Config;

/// How long a connection may take to send its request head.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long shutdown waits for requests in flight.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

fn main() -> std::process::ExitCode {
    let config = match config_path().and_then(|path| Config::load(&path)) {
        Ok(config) => Arc::new(config),
        Err(message) => {
            eprintln!("mailproxy-auth: {message}");
            return std::process::ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mailproxy-auth: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(config)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("mailproxy-auth: {message}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `-c FILE`, `--config FILE` or `--config=FILE`.
fn config_path() -> Result<PathBuf, String> {
    const USAGE: &str = "usage: mailproxy-auth -c FILE";
    let mut args = std::env::args_os().skip(1);
    let path = match args.next() {
        Some(flag) if flag == "-c" || flag == "--config" => args.next(),
        Some(flag) => flag
            .to_str()
            .and_then(|f| f.strip_prefix("--config="))
            .map(Into::into),
        None => None,
    };
    match (path, args.next()) {
        (Some(path), None) => Ok(PathBuf::from(path)),
        _ => Err(USAGE.into()),
    }
}

async fn serve(config: Arc<Config>) -> Result<(), String> {
    // Installed before "listening" is printed: a supervisor (or a test) that sends
    // SIGTERM as soon as it reads that line must find the handler in place, not the
    // default action.
    let signals = ShutdownSignals::install()?;
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    eprintln!("mailproxy-auth: listening on {local}");

    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .title_case_headers(true)
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let mut shutdown = std::pin::pin!(signals.next());
    loop {
        let (stream, _peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Usually out of file descriptors: back off instead of spinning.
                    eprintln!("mailproxy-auth: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            signal = &mut shutdown => {
                eprintln!("mailproxy-auth: {signal}, shutting down");
                break;
            }
        };
        let config = config.clone();
        let service = service_fn(move |req| handle(config.clone(), req));
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                eprintln!("mailproxy-auth: connection error: {e}");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        eprintln!("mailproxy-auth: requests still open after {SHUTDOWN_GRACE:?}, leaving them");
    }
    Ok(())
}

/// SIGTERM and SIGINT, caught from the moment [`ShutdownSignals::install`] returns.
struct ShutdownSignals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl ShutdownSignals {
    fn install() -> Result<ShutdownSignals, String> {
        use tokio::signal::unix::{signal, SignalKind};
        let failed = |e: std::io::Error| format!("cannot install signal handlers: {e}");
        Ok(ShutdownSignals {
            term: signal(SignalKind::terminate()).map_err(failed)?,
            int: signal(SignalKind::interrupt()).map_err(failed)?,
        })
    }

    /// Resolves with the name of the first signal.
    async fn next(mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}

async fn handle(
    config: Arc<Config>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let query = match Query::from_headers(req.headers()) {
        Ok(query) => query,
        Err(bad) => return Ok(bad_request(bad, &req)),
    };
    let decision = match answer::decide(&config, &query) {
        Ok(decision) => decision,
        Err(bad) => return Ok(bad_request(bad, &req)),
    };
    let (response, verdict) = match decision {
        Decision::Refuse { wait } => {
            let verdict = match wait {
                Some(w) => format!("refused wait={w}"),
                None => "refused".to_owned(),
            };
            (refusal(answer::REFUSED_TEXT, wait, None), verdict)
        }
        Decision::Backend(backend) => match answer::resolve(&backend).await {
            Ok(addr) => (accept(addr), format!("OK backend={addr}")),
            Err(e) => {
                let code = (query.protocol == mailproxy::config::Protocol::Smtp)
                    .then_some(answer::TEMPFAIL_SMTP_CODE);
                let wait = Some(config.refuse_wait).filter(|&w| w > 0);
                let response = refusal(answer::TEMPFAIL_TEXT, wait, code);
                (response, format!("TEMPFAIL cannot resolve {backend}: {e}"))
            }
        },
    };
    eprintln!(
        "mailproxy-auth: protocol={} user={:?} client={} attempt={} verdict={}",
        query.protocol.name(),
        String::from_utf8_lossy(&query.user),
        query.client_ip,
        query.attempt,
        verdict
    );
    Ok(response)
}

/// HTTP 200 sending the login to `addr`. The IP goes out bare (no brackets for IPv6),
/// as nginx expects in `Auth-Server`.
fn accept(addr: SocketAddr) -> Response<Full<Bytes>> {
    let builder = Response::builder()
        .header(h::AUTH_STATUS, h::STATUS_OK)
        .header(h::AUTH_SERVER, addr.ip().to_string())
        .header(h::AUTH_PORT, addr.port().to_string());
    finish(builder, StatusCode::OK, "")
}

fn refusal(text: &str, wait: Option<u64>, smtp_code: Option<&str>) -> Response<Full<Bytes>> {
    let mut builder = Response::builder().header(h::AUTH_STATUS, text);
    if let Some(wait) = wait {
        builder = builder.header(h::AUTH_WAIT, wait.to_string());
    }
    if let Some(code) = smtp_code {
        builder = builder.header(h::AUTH_ERROR_CODE, code);
    }
    finish(builder, StatusCode::OK, "")
}

fn bad_request(bad: BadRequest, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    eprintln!(
        "mailproxy-auth: bad request {} {}: {}",
        req.method(),
        req.uri(),
        bad.0
    );
    finish(
        Response::builder(),
        StatusCode::BAD_REQUEST,
        &format!("{}\n", bad.0),
    )
}

fn finish(
    builder: hyper::http::response::Builder,
    status: StatusCode,
    body: &str,
) -> Response<Full<Bytes>> {
    builder
        .status(status)
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap_or_else(|_| {
            // Only reachable with an invalid header value, which we never build.
            let mut response = Response::new(Full::new(Bytes::from_static(b"internal error\n")));
            *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            response
        })
}
