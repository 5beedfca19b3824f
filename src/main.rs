//! `mailproxy`: parse the command line, then test, signal or start. Nothing else lives here.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use mailproxy::cli::{self, Options};
use mailproxy::config::{self, LoadOptions, LogLevel, LogSink, LogTarget};
use mailproxy::{log, runtime};

fn main() -> ExitCode {
    let opts = match cli::parse(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("mailproxy: {e}");
            return ExitCode::FAILURE;
        }
    };
    if opts.dump_directives_md {
        print!("{}", config::directives_doc::markdown());
        return ExitCode::SUCCESS;
    }
    if opts.help || opts.version {
        return print_info(&opts);
    }
    let prefix = opts.prefix_dir();
    let default_error_log = opts.error_log.as_ref().map(|e| startup_log(e, &prefix));
    if let Some(target) = &default_error_log {
        if let Err(err) = log::init(target) {
            eprintln!("mailproxy: [alert] could not open error log file: {err}");
        }
    }
    let load = LoadOptions {
        prefix,
        globals: opts.directives.clone(),
        default_error_log,
    };
    let path = opts.config_path();
    let ok = if opts.test {
        test_config(&path, &load, &opts)
    } else if let Some(sig) = &opts.signal {
        send_signal(&path, &load, sig)
    } else {
        start(&path, load)
    };
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `-e FILE`: where messages go until the config is read, and afterwards if it sets
/// no top-level `error_log` (nginx's default log). `stderr` is the console; a
/// relative file starts at the prefix, as in nginx.
fn startup_log(arg: &Path, prefix: &Path) -> LogTarget {
    let sink = if arg == Path::new("stderr") {
        LogSink::Stderr
    } else {
        LogSink::File(config::absolute(arg, prefix))
    };
    LogTarget::new(sink, LogLevel::Error)
}

/// `-t` / `-T`: nginx prints the diagnostics and banners on stderr; `-q` drops only
/// the two success banners; `-T` then dumps every file read on stdout.
fn test_config(path: &Path, load: &LoadOptions, opts: &Options) -> bool {
    let shown = config::absolute(path, &load.prefix);
    let result = config::load_with(path, load)
        .and_then(config::check_system)
        .and_then(check_tls);
    let (report, ok) = config::report(&shown, &result);
    for line in report.lines() {
        let banner = line.ends_with("syntax is ok") || line.ends_with("test is successful");
        if !(opts.quiet && banner) {
            eprintln!("{line}");
        }
    }
    if let (true, Ok(loaded)) = (opts.dump, &result) {
        let mut out = std::io::stdout().lock();
        for file in &loaded.files {
            let _ = writeln!(out, "# configuration file {}:", file.path.display());
            let _ = out.write_all(&file.text);
            let _ = out.write_all(b"\n");
        }
    }
    ok
}

/// nginx loads certificates and keys while testing; so do we, by building the same
/// plan start-up builds (TLS contexts, pre-auth lines, logs, listen groups; nothing is
/// bound). Its errors have no FILE:LINE, as nginx's (§19.7).
fn check_tls(loaded: config::Loaded) -> Result<config::Loaded, config::ConfigError> {
    // The contexts' warnings (e.g. `ssl_dhparam` on AWS-LC) are `[warn]` lines on stderr.
    let _ = log::init(&LogTarget::new(LogSink::Stderr, LogLevel::Warn));
    match runtime::plan(loaded.config.clone()) {
        Ok(_) => Ok(loaded),
        Err(e) => Err(config::ConfigError {
            diagnostic: config::Diagnostic {
                level: e.level,
                message: e.message,
                location: None,
            },
            warnings: loaded.warnings,
            after_syntax_ok: false,
        }),
    }
}

fn print_info(opts: &Options) -> ExitCode {
    if opts.version {
        eprintln!("mailproxy version: mailproxy/{}", env!("CARGO_PKG_VERSION"));
        if opts.build_info {
            eprintln!("reads nginx.conf like nginx/1.22.1 with the mail module");
            eprintln!("built with {}", openssl::version::version());
            eprintln!(
                "configure arguments: --prefix={} --conf-path={} --error-log-path=stderr",
                config::handlers::PREFIX,
                cli::DEFAULT_CONFIG
            );
        }
    }
    if opts.help {
        eprint!("{}", cli::USAGE);
    }
    ExitCode::SUCCESS
}

/// Runs until stopped; a failure is logged (and, while starting, shown on stderr).
fn start(path: &Path, load: LoadOptions) -> bool {
    report(runtime::start(path.to_path_buf(), load))
}

/// `-s stop|quit|reopen|reload`: signal the instance named by the config's pid file.
fn send_signal(path: &Path, load: &LoadOptions, sig: &str) -> bool {
    report(runtime::signal_running(path, load, sig))
}

fn report(result: Result<(), runtime::StartError>) -> bool {
    match result {
        Ok(()) => true,
        Err(e) => {
            log::write(e.level, &e.message);
            false
        }
    }
}
