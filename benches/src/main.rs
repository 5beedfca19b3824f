//! `mailproxy-bench`: the load generator, fake IMAP backend and fake auth_http server used by
//! `benches/run.sh` to measure mailproxy and nginx's mail module side by side.
//!
//! # Layout
//! * `client.rs`   — a minimal IMAP-over-TLS client (just what the measurements need).
//! * `load.rs`     — the measurements: `logins`, `relay`, `idle`.
//! * `servers.rs`  — `backend` (fast fake IMAP server) and `auth` (fixed auth_http answer).
//! * `procstat.rs` — CPU time and memory of a proxy's process tree, read from /proc.
//! * `report.rs`   — turns the result lines of both proxies into the comparison table.
//!
//! Every measurement prints one line of `key=value` pairs on stdout, so that shell scripts can
//! collect them and `report` can read them back.

mod client;
mod load;
mod procstat;
mod report;
mod servers;

use std::collections::HashMap;
use std::fmt;
use std::process::ExitCode;

const USAGE: &str = "usage: mailproxy-bench COMMAND [--key value]...
commands:
  logins  --port P --concurrency N --duration S [--warmup S] [--pid PID] [--label NAME]
  relay   --port P --conns 8 --duration S [--warmup S] [--pid PID] [--label NAME]
  idle    --port P --conns N [--parallel K] [--settle S] [--pid PID] [--label NAME]
  backend --port P [--message-size BYTES]
  auth    --port P --backend 127.0.0.1:PORT
  report  --results FILE
common: --host 127.0.0.1 --user bench --pass secret
--pid names the proxy's main process: its CPU time and memory (with all its descendants) are
measured; without it those figures are left out.
";

fn main() -> ExitCode {
    let mut argv = std::env::args().skip(1);
    let command = argv.next().unwrap_or_default();
    let args = match Args::parse(argv) {
        Ok(a) => a,
        Err(e) => return fail(&e),
    };
    let outcome = match command.as_str() {
        "logins" => run_async(load::logins(&args)),
        "relay" => run_async(load::relay(&args)),
        "idle" => run_async(load::idle(&args)),
        "backend" => run_async(servers::backend(&args)).map(|()| Record::default()),
        "auth" => run_async(servers::auth(&args)).map(|()| Record::default()),
        "report" => report::print(&args).map(|()| Record::default()),
        _ => {
            eprint!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match outcome {
        Ok(record) if record.is_empty() => ExitCode::SUCCESS,
        Ok(record) => {
            println!("{record}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("mailproxy-bench: {message}");
    ExitCode::FAILURE
}

/// One multi-threaded runtime per process: the load generator must not be the bottleneck on a
/// 2-core machine, so it uses every core just like the proxies do.
fn run_async<T>(future: impl std::future::Future<Output = Result<T, String>>) -> Result<T, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?
        .block_on(future)
}

/// `--key value` pairs. Every option takes exactly one value.
#[derive(Debug, Default)]
pub struct Args {
    values: HashMap<String, String>,
}

impl Args {
    fn parse(argv: impl Iterator<Item = String>) -> Result<Args, String> {
        let mut values = HashMap::new();
        let mut argv = argv.peekable();
        while let Some(arg) = argv.next() {
            let Some(key) = arg.strip_prefix("--") else {
                return Err(format!("unexpected argument {arg:?}\n{USAGE}"));
            };
            let value = argv
                .next()
                .ok_or_else(|| format!("--{key} needs a value"))?;
            values.insert(key.to_string(), value);
        }
        Ok(Args { values })
    }

    pub fn text(&self, key: &str, default: &str) -> String {
        self.values
            .get(key)
            .cloned()
            .unwrap_or_else(|| default.to_string())
    }

    pub fn required(&self, key: &str) -> Result<String, String> {
        self.values
            .get(key)
            .cloned()
            .ok_or_else(|| format!("--{key} is required\n{USAGE}"))
    }

    /// A number; `default` of `None` makes the option required.
    pub fn number<T: std::str::FromStr>(&self, key: &str, default: Option<T>) -> Result<T, String> {
        match (self.values.get(key), default) {
            (Some(v), _) => v
                .parse()
                .map_err(|_| format!("--{key}: not a number: {v:?}")),
            (None, Some(d)) => Ok(d),
            (None, None) => Err(format!("--{key} is required\n{USAGE}")),
        }
    }

    pub fn optional_number<T: std::str::FromStr>(&self, key: &str) -> Result<Option<T>, String> {
        self.values
            .get(key)
            .map(|v| {
                v.parse()
                    .map_err(|_| format!("--{key}: not a number: {v:?}"))
            })
            .transpose()
    }
}

/// One result line: ordered `key=value` pairs separated by single spaces (values never contain
/// spaces: they are numbers or simple names).
#[derive(Debug, Default)]
pub struct Record {
    fields: Vec<(String, String)>,
}

impl Record {
    pub fn push(&mut self, key: &str, value: impl fmt::Display) {
        let value = value.to_string().replace(char::is_whitespace, "_");
        self.fields.push((key.to_string(), value));
    }

    /// A float with a fixed, readable precision.
    pub fn push_f(&mut self, key: &str, value: f64, decimals: usize) {
        self.push(key, format!("{value:.decimals$}"));
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    pub fn parse(line: &str) -> Record {
        let fields = line
            .split_whitespace()
            .filter_map(|pair| pair.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Record { fields }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

impl fmt::Display for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (k, v)) in self.fields.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{k}={v}")?;
        }
        Ok(())
    }
}
