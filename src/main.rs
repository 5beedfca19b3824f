//! `mailproxy`: parse the command line, load the config, start. Nothing else lives here.

use std::process::ExitCode;

use mailproxy::cli::{self, Options};
use mailproxy::config::{self, LogLevel};
use mailproxy::{log, runtime};

fn main() -> ExitCode {
    let opts = match cli::parse(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("mailproxy: {e}");
            return ExitCode::FAILURE;
        }
    };
    if opts.help || opts.version {
        return print_info(&opts);
    }
    let path = opts.config_path();
    if opts.test {
        let (report, ok) = config::check_report(&path);
        print_report(&report, opts.quiet);
        return if ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }
    if let Some(sig) = &opts.signal {
        return send_signal(&path, sig);
    }
    match start(&opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::write(LogLevel::Emerg, &e);
            ExitCode::FAILURE
        }
    }
}

/// `-t` output; `-q` keeps only the error lines, as in nginx.
fn print_report(report: &str, quiet: bool) {
    for line in report.lines() {
        let banner = line.starts_with("mailproxy: ");
        if !(quiet && (banner || line.contains("[warn]"))) || line.ends_with("test failed") {
            eprintln!("{line}");
        }
    }
}

fn print_info(opts: &Options) -> ExitCode {
    if opts.version {
        eprintln!("mailproxy version: mailproxy/{}", env!("CARGO_PKG_VERSION"));
        if opts.build_info {
            eprintln!("reads nginx.conf like nginx/1.22.1 with the mail module");
            eprintln!("built with {}", openssl::version::version());
        }
    }
    if opts.help {
        eprint!("{}", cli::USAGE);
    }
    ExitCode::SUCCESS
}

fn start(opts: &Options) -> Result<(), String> {
    let loaded = config::load(&opts.config_path()).map_err(|e| e.to_string())?;
    for w in &loaded.warnings {
        log::write(w.level, &w.to_string());
    }
    let config = loaded.config;
    if let Some(target) = &config.error_log {
        log::init(target).map_err(|e| format!("open() error log failed ({e})"))?;
    }
    let daemon = config.daemon;
    let pid = config.pid.clone();
    let user = config.user.clone();
    let prepared = runtime::prepare(config).map_err(|e| e.to_string())?;
    if daemon {
        runtime::daemonize().map_err(|e| format!("daemon() failed ({e})"))?;
    }
    if let Some(pid) = &pid {
        runtime::write_pid(pid)
            .map_err(|e| format!("open() \"{}\" failed ({e})", pid.display()))?;
    }
    if let Some((name, group)) = &user {
        runtime::drop_privileges(name, group.as_deref())?;
    }
    let result = runtime::run(prepared).map_err(|e| e.to_string());
    if let Some(pid) = &pid {
        let _ = std::fs::remove_file(pid);
    }
    result
}

/// `-s stop|quit|reopen|reload`: signal the instance named by the config's pid file.
fn send_signal(path: &std::path::Path, sig: &str) -> ExitCode {
    match runtime::signal_running(path, sig) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::write(LogLevel::Error, &e);
            ExitCode::FAILURE
        }
    }
}
