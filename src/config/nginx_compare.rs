//! Differential test against the reference binary: every case of
//! `tests::error_cases` (and a few passing configs) goes through `nginx -t` and
//! through [`super::load`], and the diagnostics must be identical.
//!
//! Ignored by default: it needs root (nginx -t opens privileged files) and
//! `/usr/sbin/nginx` with the mail module. Run with
//! `cargo test --lib config::nginx_compare -- --ignored`.

use super::tests::{error_cases, mail, LOAD};
use super::{level_name, load};
use std::path::Path;
use std::process::Command;

/// Cases whose nginx verdict depends on things mailproxy does not do at load time.
fn comparable(text: &str) -> bool {
    // nginx loads certificate files before checking ssl_verify_client;
    // `proxy_protocol v2` is newer nginx's, accepted here as an extension.
    !text.contains("ssl_verify_client") && !text.contains("proxy_protocol v2")
}

/// `[level] message` for each diagnostic nginx printed.
fn nginx_diagnostics(file: &Path) -> Vec<String> {
    let out = Command::new("/usr/sbin/nginx")
        .arg("-t")
        .arg("-c")
        .arg(file)
        .output()
        .expect("run nginx");
    let stderr = String::from_utf8_lossy(&out.stderr);
    stderr
        .lines()
        .filter_map(|line| {
            let level_at = line.find(" [")?;
            let rest = &line[level_at + 1..];
            let close = rest.find("] ")?;
            let after = &rest[close + 2..];
            let colon = after.find(": ")?;
            Some(format!("{} {}", &rest[..=close], &after[colon + 2..]))
        })
        .collect()
}

fn our_diagnostics(file: &Path) -> Vec<String> {
    let (warnings, error) = match load(file) {
        Ok(l) => (l.warnings, None),
        Err(e) => (e.warnings, Some(e.diagnostic)),
    };
    warnings
        .iter()
        .chain(error.iter())
        .filter(|d| !d.message.contains("mailproxy"))
        .map(|d| format!("[{}] {d}", level_name(d.level)))
        .collect()
}

/// Configs nginx accepts or refuses, where only the comparison matters.
fn more_cases() -> Vec<String> {
    let m = |body: &str| mail(&format!("auth_http 127.0.0.1:9000;\n{body}"));
    let srv = |extra: &str| {
        m(&format!(
            "server {{ listen 127.0.0.1:21143 {extra}; protocol imap; }}"
        ))
    };
    let mut cases: Vec<String> = [
        "ipv6only=maybe",
        "ipv6only=ox",
        "backlog=0",
        "backlog=x",
        "rcvbuf=x",
        "sndbuf=1g",
        "so_keepalive=x",
        "so_keepalive=30s::",
        "so_keepalive=::",
        "SSL",
        "bind",
        "default_server",
    ]
    .iter()
    .map(|p| srv(p))
    .collect();
    cases.extend(
        [
            "auth_http 127.0.0.1:9001;\nserver { listen 127.0.0.1:21143; protocol imap; }",
            "server_name a;\nserver_name b;",
            "proxy_protocol v2;",
            "proxy_protocol maybe;",
            "set_real_ip_from 10.1.2.3/8;\nset_real_ip_from unix:;\nset_real_ip_from ::1/128;",
            "set_real_ip_from 1.2.3.4/33;",
            "set_real_ip_from localhost;",
            "ssl off;",
            "ssl on;\nserver { listen 127.0.0.1:21143; protocol imap; }",
            "include a b;",
            "error_log /tmp/x.log bogus;",
            "Timeout 5s;",
            "server_name \"a\"b;",
            "server { listen 127.0.0.1:21143; listen 127.0.0.1:21143; protocol imap; }",
            "server { listen unix:/tmp/mp-cmp.sock; protocol imap; }",
            "server { listen 127.0.0.1; protocol imap; }",
            "server { listen 21143; protocol IMAP; }",
            "auth_http unix:;",
            "auth_http 127.0.0.1:99999;",
            "smtp_auth none login;\npop3_auth APOP;\nstarttls ONLY;\nssl_session_cache builtin:1000 shared:M:1m;",
            "ssl_session_cache foo;",
            "ssl_session_cache builtin:x;",
            "timeout 1m30s;\nproxy_timeout 1h 30;\nsmtp_greeting_delay 500ms;",
            "ssl_session_timeout 5ms;",
            "imap_client_buffer 1g;",
            "resolver 127.0.0.1;\nresolver 127.0.0.1;",
            "server { listen 127.0.0.1:21143; protocol imap; server { } }",
            "events { }",
            "proxy_pass 127.0.0.1;",
            "pop3_client_buffer 1k;",
            "ssl_certificate_compression on;",
            "imap_auth plain plain;\nimap_auth plain;",
            "server { listen 127.0.0.1:21143; protocol imap; starttls on; }",
            "server { listen 127.0.0.1:21143; protocol imap; ssl on; }",
            "starttls on;\nserver { listen 127.0.0.1:21143; protocol imap; }\nserver { listen 127.0.0.1:21144; }",
        ]
        .iter()
        .map(|b| m(b)),
    );
    cases.extend(
        [
            "imap_capabilities A;\nevents {}",
            "server {}\nevents {}",
            "worker_processes 2;\nworker_processes 3;\nevents {}",
            "daemon maybe;\nevents {}",
            "events { use epoll; multi_accept on; accept_mutex off; worker_connections 10; }",
            "events { worker_connections 10; worker_connections 10; }",
            "events { }\nevents { }",
            "events { }\nhttp { server { listen 127.0.0.1:21180; } }",
            "events { }\ninclude /usr/lib;",
            "worker_rlimit_nofile -1;\nevents { }",
            "user www-data www-data extra;\nevents { }",
            "events { } mail { server { listen 127.0.0.1:21143; protocol imap; auth_http 127.0.0.1; } }",
        ]
        .iter()
        .map(|t| format!("{LOAD}{t}\n")),
    );
    cases
}

fn passing_cases() -> Vec<String> {
    vec![
        "load_module /usr/lib/nginx/modules/ngx_mail_module.so;\nevents {}\nmail {\nauth_http 127.0.0.1:9000/a;\n\
         imap_auth plain login PLAIN;\nserver { listen 127.0.0.1:21143; protocol imap; }\n}\n"
            .into(),
        "load_module /usr/lib/nginx/modules/ngx_mail_module.so;\nevents {}\nmail {\nauth_http 127.0.0.1:9000/a;\n\
         server { listen 127.0.0.1:21143; protocol imap;\nssl off; }\n}\n"
            .into(),
    ]
}

#[test]
#[ignore = "needs root and the reference nginx"]
fn same_verdicts_as_nginx() {
    let dir = std::env::temp_dir().join(format!("mailproxy-nginx-compare-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("nginx.conf");
    let cases = error_cases()
        .into_iter()
        .map(|(text, _)| text)
        .chain(passing_cases())
        .chain(more_cases());
    let mut mismatches = Vec::new();
    for text in cases.filter(|t| comparable(t)) {
        let text = format!("pid {}/nginx.pid;\n{text}", dir.display());
        std::fs::write(&file, &text).unwrap();
        let theirs = nginx_diagnostics(&file);
        let ours = our_diagnostics(&file);
        if theirs != ours {
            mismatches.push(format!("{text}\n  nginx: {theirs:?}\n  ours:  {ours:?}"));
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n\n"));
}
