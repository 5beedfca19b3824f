//! The three measurements. Each runs a warm-up, then samples the proxy's process tree
//! (`procstat`) at the start and end of a measured window, so that CPU figures cover exactly
//! the work counted in that window.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::{sleep, timeout};

use crate::client::{Conn, Target};
use crate::procstat::{self, Usage};
use crate::{Args, Record};

/// Bound on any single protocol exchange, so a stuck proxy fails the run instead of hanging it.
const STEP_TIMEOUT: Duration = Duration::from_secs(20);

/// The proxy under test plus the common options of every measurement.
struct Setup {
    target: Arc<Target>,
    proxy_pid: Option<u32>,
    record: Record,
}

impl Setup {
    fn new(args: &Args, bench: &str) -> Result<Setup, String> {
        raise_open_file_limit()?;
        let host = args.text("host", "127.0.0.1");
        let port: u16 = args.number("port", None)?;
        let addr: SocketAddr = (host.as_str(), port)
            .to_socket_addrs()
            .map_err(|e| format!("{host}:{port}: {e}"))?
            .next()
            .ok_or_else(|| format!("{host}:{port}: no address"))?;
        let user = args.text("user", "bench");
        let pass = args.text("pass", "secret");
        let mut record = Record::default();
        record.push("bench", bench);
        record.push("proxy", args.text("label", "unknown"));
        Ok(Setup {
            target: Arc::new(Target::new(addr, user, pass)?),
            proxy_pid: args.optional_number("pid")?,
            record,
        })
    }

    fn sample(&self) -> Option<Usage> {
        self.proxy_pid.and_then(procstat::sample)
    }
}

/// Raises the soft open-file limit to the hard limit: the idle test holds thousands of sockets.
pub fn raise_open_file_limit() -> Result<u64, String> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return Err("getrlimit(RLIMIT_NOFILE) failed".into());
        }
        limit.rlim_cur = limit.rlim_max;
        if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
            return Err("setrlimit(RLIMIT_NOFILE) failed".into());
        }
    }
    Ok(limit.rlim_cur)
}

fn seconds(args: &Args, key: &str, default: f64) -> Result<Duration, String> {
    let s: f64 = args.number(key, Some(default))?;
    Duration::try_from_secs_f64(s).map_err(|_| format!("--{key}: bad duration {s}"))
}

/// Counts failures and keeps the first message, which is usually the telling one.
#[derive(Default)]
struct Errors {
    count: AtomicU64,
    first: Mutex<Option<String>>,
}

impl Errors {
    fn add(&self, error: impl ToString) {
        self.count.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut first) = self.first.lock() {
            first.get_or_insert_with(|| error.to_string());
        }
    }

    /// Closes a record: the TLS version the proxy negotiated (so that a table never
    /// compares two different handshakes) and the error count.
    fn report(&self, record: &mut Record) {
        record.push("tls", crate::client::negotiated_version());
        record.push("errors", self.count.load(Ordering::Relaxed));
        if let Ok(Some(first)) = self.first.lock().as_deref() {
            record.push("first_error", first);
        }
    }
}

/// One full login cycle; returns when the login was confirmed (the latency a user sees) and
/// finishes with LOGOUT and the proxy's close.
async fn login_cycle(target: &Target) -> Result<Duration, String> {
    let start = Instant::now();
    let conn = timeout(STEP_TIMEOUT, Conn::open_session(target))
        .await
        .map_err(|_| "login timed out".to_string())?
        .map_err(|e| format!("login: {e}"))?;
    let latency = start.elapsed();
    timeout(STEP_TIMEOUT, conn.logout())
        .await
        .map_err(|_| "logout timed out".to_string())?
        .map_err(|e| format!("logout: {e}"))?;
    Ok(latency)
}

/// `logins`: N clients, each looping connect → greeting → LOGIN → LOGOUT.
pub async fn logins(args: &Args) -> Result<Record, String> {
    let mut setup = Setup::new(args, "logins")?;
    let concurrency: usize = args.number("concurrency", Some(1))?;
    let duration = seconds(args, "duration", 10.0)?;
    let warmup = seconds(args, "warmup", 1.0)?;
    setup.record.push("concurrency", concurrency);

    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(Errors::default());
    let mut clients = JoinSet::new();
    for _ in 0..concurrency {
        let (target, stop, errors) = (setup.target.clone(), stop.clone(), errors.clone());
        clients.spawn(async move {
            // (time the login completed, latency)
            let mut done: Vec<(Instant, Duration)> = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                match login_cycle(&target).await {
                    Ok(latency) => done.push((Instant::now(), latency)),
                    Err(e) => {
                        errors.add(e);
                        sleep(Duration::from_millis(10)).await;
                    }
                }
            }
            done
        });
    }
    sleep(warmup).await;
    let (t0, before) = (Instant::now(), setup.sample());
    sleep(duration).await;
    let (t1, after) = (Instant::now(), setup.sample());
    stop.store(true, Ordering::Relaxed);

    let mut latencies = Vec::new();
    while let Some(result) = clients.join_next().await {
        let done = result.map_err(|e| format!("client task: {e}"))?;
        latencies.extend(
            done.into_iter()
                .filter(|(at, _)| *at >= t0 && *at <= t1)
                .map(|(_, latency)| latency),
        );
    }
    latencies.sort_unstable();
    let window = (t1 - t0).as_secs_f64();
    let count = latencies.len();
    let record = &mut setup.record;
    record.push("logins", count);
    record.push_f("seconds", window, 2);
    record.push_f("logins_per_s", count as f64 / window, 1);
    record.push_f("p50_ms", percentile_ms(&latencies, 0.50), 3);
    record.push_f("p99_ms", percentile_ms(&latencies, 0.99), 3);
    if let (Some(b), Some(a)) = (before, after) {
        let cpu = a.cpu_seconds - b.cpu_seconds;
        record.push_f("cpu_s", cpu, 2);
        record.push_f("steal_pct", b.steal_percent_until(&a), 1);
        if count > 0 {
            record.push_f("cpu_ms_per_login", cpu * 1000.0 / count as f64, 4);
        }
    }
    errors.report(record);
    Ok(std::mem::take(record))
}

fn percentile_ms(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1].as_secs_f64() * 1000.0
}

/// `relay`: N logged-in connections fetching the backend's message over and over.
pub async fn relay(args: &Args) -> Result<Record, String> {
    let mut setup = Setup::new(args, "relay")?;
    let conns: usize = args.number("conns", Some(8))?;
    let duration = seconds(args, "duration", 10.0)?;
    let warmup = seconds(args, "warmup", 1.0)?;
    setup.record.push("conns", conns);

    let mut sessions = Vec::with_capacity(conns);
    for _ in 0..conns {
        let conn = timeout(STEP_TIMEOUT, Conn::open_session(&setup.target))
            .await
            .map_err(|_| "login timed out".to_string())?
            .map_err(|e| format!("login: {e}"))?;
        sessions.push(conn);
    }
    let received = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(Errors::default());
    let mut fetchers = JoinSet::new();
    for mut conn in sessions {
        let (received, errors) = (received.clone(), errors.clone());
        fetchers.spawn(async move {
            for n in 0u64.. {
                let tag = format!("f{n}");
                match timeout(STEP_TIMEOUT, conn.fetch(&tag, &received)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => return errors.add(format!("fetch: {e}")),
                    Err(_) => return errors.add("fetch timed out"),
                }
            }
        });
    }
    sleep(warmup).await;
    let (t0, bytes0, before) = (
        Instant::now(),
        received.load(Ordering::Relaxed),
        setup.sample(),
    );
    sleep(duration).await;
    let (t1, bytes1, after) = (
        Instant::now(),
        received.load(Ordering::Relaxed),
        setup.sample(),
    );
    fetchers.abort_all();

    let window = (t1 - t0).as_secs_f64();
    let bytes = bytes1 - bytes0;
    let record = &mut setup.record;
    record.push("bytes", bytes);
    record.push_f("seconds", window, 2);
    record.push_f("mb_per_s", bytes as f64 / 1e6 / window, 1);
    if let (Some(b), Some(a)) = (before, after) {
        let cpu = a.cpu_seconds - b.cpu_seconds;
        record.push_f("cpu_s", cpu, 2);
        record.push_f("steal_pct", b.steal_percent_until(&a), 1);
        if bytes > 0 {
            let gib = bytes as f64 / (1u64 << 30) as f64;
            record.push_f("cpu_s_per_gib", cpu / gib, 3);
        }
    }
    errors.report(record);
    Ok(std::mem::take(record))
}

/// `idle`: open N logged-in sessions, measure the proxy's memory growth per session, then check
/// that every session still answers (NOOP) before closing them all.
pub async fn idle(args: &Args) -> Result<Record, String> {
    let mut setup = Setup::new(args, "idle")?;
    let conns: usize = args.number("conns", None)?;
    let parallel: usize = args.number("parallel", Some(64))?;
    let settle = seconds(args, "settle", 1.0)?;
    setup.record.push("conns", conns);

    let before = setup.sample();
    let started = Instant::now();
    let gate = Arc::new(Semaphore::new(parallel.max(1)));
    let errors = Arc::new(Errors::default());
    let mut openers = JoinSet::new();
    for _ in 0..conns {
        let (target, gate, errors) = (setup.target.clone(), gate.clone(), errors.clone());
        openers.spawn(async move {
            let _permit = gate.acquire_owned().await.ok()?;
            match timeout(STEP_TIMEOUT, Conn::open_session(&target)).await {
                Ok(Ok(conn)) => Some(conn),
                Ok(Err(e)) => {
                    errors.add(format!("login: {e}"));
                    None
                }
                Err(_) => {
                    errors.add("login timed out");
                    None
                }
            }
        });
    }
    let mut sessions = Vec::with_capacity(conns);
    while let Some(opened) = openers.join_next().await {
        sessions.extend(opened.map_err(|e| format!("opener task: {e}"))?);
    }
    let open_seconds = started.elapsed().as_secs_f64();
    sleep(settle).await;
    let after = setup.sample();

    let alive = check_alive(sessions, &errors).await;
    let record = &mut setup.record;
    record.push("opened", alive.0);
    record.push_f("open_seconds", open_seconds, 2);
    record.push("alive", alive.1);
    if let (Some(b), Some(a)) = (before, after) {
        record.push("rss_before_kib", b.rss_kib);
        record.push("rss_after_kib", a.rss_kib);
        record.push("pss_after_kib", a.pss_kib);
        record.push("processes", a.processes);
        if alive.0 > 0 {
            let per = |x: u64, y: u64| (y as f64 - x as f64) / alive.0 as f64;
            record.push_f("rss_kib_per_conn", per(b.rss_kib, a.rss_kib), 2);
            record.push_f("pss_kib_per_conn", per(b.pss_kib, a.pss_kib), 2);
        }
    }
    errors.report(record);
    Ok(std::mem::take(record))
}

/// Sends NOOP on every session (concurrently) and counts the ones that answer OK; returns
/// (sessions opened, sessions alive). Failures are added to `errors`.
async fn check_alive(sessions: Vec<Conn>, errors: &Arc<Errors>) -> (usize, usize) {
    let opened = sessions.len();
    let mut checks = JoinSet::new();
    for mut conn in sessions {
        let errors = errors.clone();
        checks.spawn(async move {
            match timeout(STEP_TIMEOUT, conn.command(b"n NOOP\r\n", "n")).await {
                Ok(Ok(())) => true,
                Ok(Err(e)) => {
                    errors.add(format!("NOOP after idle: {e}"));
                    false
                }
                Err(_) => {
                    errors.add("NOOP after idle timed out");
                    false
                }
            }
        });
    }
    let mut alive = 0;
    while let Some(ok) = checks.join_next().await {
        alive += usize::from(matches!(ok, Ok(true)));
    }
    (opened, alive)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let ms = |v: u64| Duration::from_millis(v);
        let sorted: Vec<Duration> = (1..=100).map(ms).collect();
        assert_eq!(percentile_ms(&sorted, 0.50), 50.0);
        assert_eq!(percentile_ms(&sorted, 0.99), 99.0);
        assert_eq!(percentile_ms(&[ms(7)], 0.99), 7.0);
        assert!(percentile_ms(&[], 0.5).is_nan());
    }
}
