//! The core and events directives that tune nginx's processes and that mailproxy
//! accepts without effect (`thread_pool`, `worker_priority`, `worker_cpu_affinity`,
//! `use`), and `load_module`. They have no effect, but nginx checks their values, so a
//! value nginx refuses must be refused here too: a config that passes `mailproxy -t`
//! must pass `nginx -t` and the other way round.

use super::declare::{Reading, Set};
use super::directives::Settings;
use super::handlers::resolve;
use super::parser::os_error;
use super::values::parse_number;
use super::Diagnostic;
use std::io::Read;

type Step = Result<(), Diagnostic>;

/// The module whose loading makes `stream {}` known (read, not served), as in nginx.
/// (The mail module needs no loading: mailproxy is it.)
pub const STREAM_MODULE: &str = "ngx_stream_module";

/// `thread_pool NAME threads=N [max_queue=N]` (ngx_thread_pool): `threads=` is
/// required and positive, a name is declared once; other words pass, as in 1.22.1.
pub fn thread_pool(s: &mut Settings, r: &mut Reading, args: &[String]) -> Step {
    let name = &args[0];
    let pools = s.thread_pool.get_or_insert_with(|| Set {
        value: Vec::new(),
        at: r.at.clone(),
    });
    if pools.value.contains(name) {
        return Err(r.emerg(format!("duplicate thread pool \"{name}\"")));
    }
    let mut threads = 0;
    for arg in &args[1..] {
        if let Some(n) = arg.strip_prefix("threads=") {
            threads = parse_number(n)
                .filter(|n| *n > 0)
                .ok_or_else(|| r.emerg(format!("invalid threads value \"{arg}\"")))?;
        } else if let Some(n) = arg.strip_prefix("max_queue=") {
            parse_number(n).ok_or_else(|| r.emerg(format!("invalid max_queue value \"{arg}\"")))?;
        }
    }
    if threads == 0 {
        return Err(r.emerg("\"thread_pool\" must have \"threads\" parameter"));
    }
    pools.value.push(name.clone());
    Ok(())
}

/// `worker_priority [-|+]N` (ngx_set_priority). A repeat is a duplicate only after a
/// non-zero value, as nginx tests the stored priority.
pub fn worker_priority(s: &mut Settings, r: &mut Reading, args: &[String]) -> Step {
    if s.worker_priority.as_ref().is_some_and(|p| p.value != 0) {
        return Err(r.emerg("\"worker_priority\" directive is duplicate"));
    }
    let arg = args[0].as_str();
    let (negative, digits) = match arg.as_bytes().first() {
        Some(b'-') => (true, &arg[1..]),
        Some(b'+') => (false, &arg[1..]),
        _ => (false, arg),
    };
    let n = parse_number(digits)
        .and_then(|n| i64::try_from(n).ok())
        .ok_or_else(|| r.emerg("\"worker_priority\" directive invalid number"))?;
    s.worker_priority = Some(Set {
        value: if negative { -n } else { n },
        at: r.at.clone(),
    });
    Ok(())
}

/// `CPU_SETSIZE` of glibc: the longest mask nginx takes.
const CPU_SETSIZE: usize = 1024;

/// `worker_cpu_affinity auto [MASK] | MASK ...` (ngx_set_cpu_affinity): binary masks,
/// spaces ignored, read from the right as nginx does (so its first bad character is
/// the rightmost one).
pub fn cpu_affinity(r: &mut Reading, args: &[String]) -> Result<Vec<String>, Diagnostic> {
    let masks = match args[0].as_str() {
        "auto" if args.len() > 2 => {
            let msg = "invalid number of arguments in \"worker_cpu_affinity\" directive";
            return Err(r.emerg(msg));
        }
        "auto" => &args[1..],
        _ => args,
    };
    for mask in masks {
        if mask.len() > CPU_SETSIZE {
            let msg = format!("\"worker_cpu_affinity\" supports up to {CPU_SETSIZE} CPUs only");
            return Err(r.emerg(msg));
        }
        if let Some(bad) = mask.chars().rev().find(|c| !matches!(c, ' ' | '0' | '1')) {
            let msg = format!("invalid character \"{bad}\" in \"worker_cpu_affinity\"");
            return Err(r.emerg(msg));
        }
    }
    Ok(args.to_vec())
}

/// `use METHOD` (ngx_event_use): the event modules of Debian's Linux build are epoll
/// and the core one (`event_core`, which nginx accepts by its module name).
pub fn event_method(r: &mut Reading, args: &[String]) -> Result<String, Diagnostic> {
    match args[0].as_str() {
        "epoll" | "event_core" => Ok(args[0].clone()),
        other => Err(r.emerg(format!("invalid event type \"{other}\""))),
    }
}

/// `load_module FILE` (ngx_load_module): too late after events{}/mail{}, then the
/// file as the dynamic loader would take it, then the module's name, which may be
/// loaded once. The file is examined, never loaded: nginx modules need nginx's
/// symbols. A module is named by its file (`ngx_mail_module.so`), which is how
/// Debian names them.
pub fn load_module(_: &mut Settings, r: &mut Reading, args: &[String]) -> Step {
    if r.past_modules {
        return Err(r.emerg("\"load_module\" directive is specified too late"));
    }
    let path = resolve(r.prefix, &args[0]);
    let shown = path.display().to_string();
    if mail_module_uninstalled(&path) {
        r.warn(format!(
            "\"{shown}\" is not installed: mailproxy has the mail module built in, ignored"
        ));
        return Ok(());
    }
    if let Err(why) = examine_module(&path) {
        return Err(r.emerg(match why {
            Refusal::Loader(why) => format!("dlopen() \"{shown}\" failed ({shown}: {why})"),
            Refusal::NotNginx => format!(
                "dlsym() \"{shown}\", \"ngx_modules\" failed ({shown}: undefined symbol: ngx_modules)"
            ),
        }));
    }
    let name = path
        .file_name()
        .map(|f| f.to_string_lossy())
        .unwrap_or_default();
    let name = name.strip_suffix(".so").unwrap_or(&name).to_string();
    if r.modules.contains(&name) {
        return Err(r.emerg(format!("module \"{name}\" is already loaded")));
    }
    r.modules.push(name);
    Ok(())
}

/// Where Debian installs the mail module (package libnginx-mod-mail).
const DEBIAN_MAIL_MODULE: &str = "/usr/lib/nginx/modules/ngx_mail_module.so";

/// A `load_module` of the mail module on a host where nginx's mail module is not
/// installed at all (nginx removed, mailproxy kept): mailproxy *is* that module, so
/// the line is no reason to refuse the config. Where the module is installed, a
/// wrong path to it is refused as nginx does (a typo nginx would trip over too).
fn mail_module_uninstalled(path: &std::path::Path) -> bool {
    path.file_name().is_some_and(|f| f == "ngx_mail_module.so")
        && !path.exists()
        && !std::path::Path::new(DEBIAN_MAIL_MODULE).exists()
}

enum Refusal {
    /// What `dlerror()` would say after the file's path.
    Loader(String),
    /// A shared object without nginx's `ngx_modules` table.
    NotNginx,
}

/// `sizeof(Elf64_Ehdr)`: glibc refuses a shorter file.
const ELF_HEADER: usize = 64;

/// The checks glibc's `open_verify` makes before mapping a file, with its texts, and
/// whether the file names nginx's `ngx_modules` symbol at all.
fn examine_module(path: &std::path::Path) -> Result<(), Refusal> {
    let loader = |why: String| Refusal::Loader(why);
    let mut file = std::fs::File::open(path)
        .map_err(|e| loader(format!("cannot open shared object file: {}", strerror(&e))))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(|e| loader(format!("cannot read file data: {}", strerror(&e))))?;
    if bytes.len() < ELF_HEADER {
        return Err(loader("file too short".into()));
    }
    if bytes[..4] != *b"\x7fELF" {
        return Err(loader("invalid ELF header".into()));
    }
    if bytes[4] != 2 {
        return Err(loader("wrong ELF class: ELFCLASS32".into()));
    }
    if bytes[5] != 1 {
        return Err(loader("ELF file data encoding not little-endian".into()));
    }
    match u16::from_le_bytes([bytes[16], bytes[17]]) {
        3 => {}
        2 => return Err(loader("cannot dynamically load executable".into())),
        _ => return Err(loader("only ET_DYN and ET_EXEC can be loaded".into())),
    }
    let symbol = b"ngx_modules\0";
    if !bytes.windows(symbol.len()).any(|w| w == symbol) {
        return Err(Refusal::NotNginx);
    }
    Ok(())
}

/// `strerror` alone: [`os_error`] without its `N: ` prefix.
fn strerror(e: &std::io::Error) -> String {
    let text = os_error(e);
    match text.split_once(": ") {
        Some((code, rest)) if code.bytes().all(|b| b.is_ascii_digit()) => rest.to_string(),
        _ => text,
    }
}
