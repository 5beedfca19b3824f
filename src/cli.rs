//! nginx's command line: `[-?hvVtTq] [-s signal] [-p prefix] [-e filename]
//! [-c filename] [-g directives]`, with values attached (`-cFILE`) or separate.

use std::path::PathBuf;

/// Where mailproxy looks when no `-c` is given: its own file, so that `-s stop` without
/// `-c` can never reach a running nginx (the pid file is its own too,
/// [`crate::config::DEFAULT_PID`]).
pub const DEFAULT_CONFIG: &str = "/etc/mailproxy/nginx.conf";

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Options {
    pub help: bool,
    pub version: bool,
    pub build_info: bool,
    pub test: bool,
    pub dump: bool,
    pub quiet: bool,
    pub signal: Option<String>,
    pub prefix: Option<PathBuf>,
    pub error_log: Option<PathBuf>,
    pub config: Option<PathBuf>,
    pub directives: Option<String>,
    /// Hidden `--dump-directives-md`: print docs/directives.md from the directive table.
    pub dump_directives_md: bool,
}

impl Options {
    /// `-p`, or the compiled-in prefix (Debian's nginx: `/usr/share/nginx`).
    pub fn prefix_dir(&self) -> PathBuf {
        self.prefix
            .clone()
            .unwrap_or_else(|| PathBuf::from(crate::config::handlers::PREFIX))
    }

    pub fn config_path(&self) -> PathBuf {
        self.config
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG))
    }
}

pub const USAGE: &str = "Usage: mailproxy [-?hvVtTq] [-s signal] [-p prefix]
                 [-e filename] [-c filename] [-g directives]

Options:
  -?,-h         : this help
  -v            : show version and exit
  -V            : show version and configure options then exit
  -t            : test configuration and exit
  -T            : test configuration, dump it and exit
  -q            : suppress non-error messages during configuration testing
  -s signal     : send signal to a master process: stop, quit, reopen, reload
  -p prefix     : set prefix path (default: /usr/share/nginx/)
  -e filename   : set error log file (default: stderr)
  -c filename   : set configuration file (default: /etc/mailproxy/nginx.conf)
  -g directives : set global directives out of configuration file

The pid file is /run/mailproxy.pid unless the configuration sets `pid`.
";

/// Parses the arguments after the program name. Errors carry nginx's wording.
pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Options, String> {
    let mut opts = Options::default();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        if arg == "--dump-directives-md" {
            opts.dump_directives_md = true;
            continue;
        }
        let Some(flags) = arg.strip_prefix('-') else {
            return Err(format!("invalid option: \"{arg}\""));
        };
        for (i, c) in flags.char_indices() {
            match c {
                '?' | 'h' => opts.help = true,
                'v' => opts.version = true,
                'V' => {
                    opts.version = true;
                    opts.build_info = true
                }
                't' => opts.test = true,
                'T' => {
                    opts.test = true;
                    opts.dump = true
                }
                'q' => opts.quiet = true,
                's' | 'p' | 'e' | 'c' | 'g' => {
                    let rest = &flags[i + 1..];
                    let value = if rest.is_empty() {
                        args.next().ok_or_else(|| missing_value(c))?
                    } else {
                        rest.to_string()
                    };
                    store(&mut opts, c, value)?;
                    break;
                }
                _ => return Err(format!("invalid option: \"{}\"", &flags[i..])),
            }
        }
    }
    Ok(opts)
}

fn missing_value(c: char) -> String {
    let what = match c {
        's' => "signal",
        'p' => "prefix",
        'e' | 'c' => "file name",
        _ => "directives",
    };
    format!("option \"-{c}\" requires {what}")
}

fn store(opts: &mut Options, c: char, value: String) -> Result<(), String> {
    match c {
        's' => {
            if !matches!(value.as_str(), "stop" | "quit" | "reopen" | "reload") {
                return Err(format!("invalid option: \"-s {value}\""));
            }
            opts.signal = Some(value);
        }
        'p' => opts.prefix = Some(PathBuf::from(value)),
        'e' => opts.error_log = Some(PathBuf::from(value)),
        'c' => opts.config = Some(PathBuf::from(value)),
        _ => opts.directives = Some(value),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Options, String> {
        parse(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn attached_and_separate_values() {
        let o = p(&["-t", "-c", "/x.conf"]).unwrap();
        assert!(o.test);
        assert_eq!(o.config, Some(PathBuf::from("/x.conf")));
        let o = p(&["-tq", "-c/y.conf", "-sreload"]).unwrap();
        assert!(o.test && o.quiet);
        assert_eq!(o.config, Some(PathBuf::from("/y.conf")));
        assert_eq!(o.signal.as_deref(), Some("reload"));
    }

    #[test]
    fn errors_use_nginx_wording() {
        assert_eq!(p(&["-c"]).unwrap_err(), "option \"-c\" requires file name");
        assert_eq!(p(&["-x"]).unwrap_err(), "invalid option: \"x\"");
        assert_eq!(
            p(&["-s", "bogus"]).unwrap_err(),
            "invalid option: \"-s bogus\""
        );
    }
}
