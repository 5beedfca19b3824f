//! Whole-pipeline tests: text in, [`Config`] or nginx's exact message out.

use super::*;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

const F: &str = "/etc/mp/nginx.conf";
pub(super) const LOAD: &str = "load_module /usr/lib/nginx/modules/ngx_mail_module.so;\n";

/// A main context that passes, followed by `body` inside `mail {}` (line 3 on).
pub(super) fn mail(body: &str) -> String {
    format!("{LOAD}events {{ }}\nmail {{\n{body}\n}}\n")
}

fn ok(text: &str) -> Loaded {
    match load_str(text, Path::new(F)) {
        Ok(l) => l,
        Err(e) => panic!("unexpected error: {e}\n{text}"),
    }
}

fn err(text: &str) -> String {
    match load_str(text, Path::new(F)) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e.to_string(),
    }
}

fn warnings(l: &Loaded) -> Vec<String> {
    l.warnings.iter().map(|w| w.to_string()).collect()
}

const SERVER: &str =
    "auth_http 127.0.0.1:9000/auth;\nserver { listen 127.0.0.1:21143; protocol imap; }";

#[test]
fn defaults() {
    let l = ok(&mail(SERVER));
    assert!(l.warnings.is_empty());
    let c = &l.config;
    assert_eq!(c.file, PathBuf::from(F));
    assert!(c.daemon);
    assert_eq!(c.worker_processes, WorkerProcesses::Count(1));
    assert_eq!(c.worker_connections, 512);
    let s = &c.servers[0];
    assert_eq!(s.location.line, 5);
    assert_eq!(s.protocol, Protocol::Imap);
    assert_eq!(s.server_name, merge::hostname());
    assert_eq!(s.timeout, Duration::from_secs(60));
    assert_eq!(s.max_errors, 5);
    assert_eq!(
        s.auth_http.target,
        AuthTarget::Tcp("127.0.0.1:9000".parse().unwrap())
    );
    assert_eq!(s.auth_http.host_header, "127.0.0.1");
    assert_eq!(s.auth_http.uri, "/auth");
    assert_eq!(s.auth_http.timeout, Duration::from_secs(60));
    assert!(s.auth_http.headers.is_empty());
    assert_eq!(s.proxy.timeout, Duration::from_secs(86400));
    assert_eq!(s.proxy.buffer, 4096);
    assert!(s.proxy.xclient && !s.proxy.smtp_auth && !s.proxy.pass_error_message);
    assert_eq!(s.imap.client_buffer, 4096);
    assert_eq!(s.imap.capabilities, ["IMAP4", "IMAP4rev1", "UIDPLUS"]);
    assert_eq!(
        s.imap.auth,
        AuthMethods {
            plain: true,
            ..Default::default()
        }
    );
    assert_eq!(s.pop3.capabilities, ["TOP", "USER", "UIDL"]);
    let plain_login = AuthMethods {
        plain: true,
        login: true,
        ..Default::default()
    };
    assert_eq!(s.smtp.auth, plain_login);
    assert!(s.smtp.capabilities.is_empty());
    assert_eq!(s.starttls, Starttls::Off);
    assert!(s.tls.is_none());
    let listen = &s.listens[0];
    assert_eq!(
        listen.addr,
        ListenAddr::Tcp("127.0.0.1:21143".parse().unwrap())
    );
    assert_eq!(
        (listen.backlog, listen.ipv6only, listen.ssl),
        (511, true, false)
    );
}

#[test]
fn classic_migration_config() {
    let text = "load_module /usr/lib/nginx/modules/ngx_mail_module.so;
user www-data; worker_processes auto; pid /run/nginx.pid; error_log /var/log/nginx/error.log info;
events { worker_connections 1024; }
mail {
  server_name mail.example.com; auth_http 127.0.0.1:9000/auth; proxy_pass_error_message on;
  imap_capabilities IMAP4rev1 UIDPLUS IDLE LITERAL+ QUOTA; ssl_certificate /etc/ssl/x.pem; ssl_certificate_key /etc/ssl/x.key;
  ssl_protocols TLSv1.2 TLSv1.3; ssl_session_cache shared:MAIL:10m; ssl_session_timeout 10m;
  server { listen 993 ssl; protocol imap; }
  server { listen 143; protocol imap; starttls on; }
}
";
    let l = ok(text);
    assert!(l.warnings.is_empty(), "{:?}", warnings(&l));
    let c = &l.config;
    assert_eq!(c.user, Some(("www-data".into(), None)));
    assert_eq!(c.worker_processes, WorkerProcesses::Auto);
    assert_eq!(c.pid, PathBuf::from("/run/nginx.pid"));
    let log = LogTarget::new(
        LogSink::File("/var/log/nginx/error.log".into()),
        LogLevel::Info,
    );
    assert_eq!(c.error_log, [log]);
    assert_eq!(c.worker_connections, 1024);
    assert_eq!(c.servers.len(), 2);
    let (tls, plain) = (&c.servers[0], &c.servers[1]);
    assert_eq!(tls.server_name, "mail.example.com");
    assert!(tls.proxy.pass_error_message);
    assert_eq!(
        tls.imap.capabilities,
        ["IMAP4rev1", "UIDPLUS", "IDLE", "LITERAL+", "QUOTA"]
    );
    assert_eq!(
        tls.listens[0].addr,
        ListenAddr::Tcp("0.0.0.0:993".parse().unwrap())
    );
    assert!(tls.listens[0].ssl);
    let t = tls.tls.as_ref().unwrap();
    assert_eq!(t.certificates, [PathBuf::from("/etc/ssl/x.pem")]);
    assert_eq!(t.keys, [PathBuf::from("/etc/ssl/x.key")]);
    let protocols = TlsProtocols {
        tlsv1_2: true,
        tlsv1_3: true,
        ..Default::default()
    };
    assert_eq!(t.protocols, protocols);
    let cache = SessionCache::Cache {
        builtin: None,
        shared: Some(("MAIL".into(), 10 << 20)),
    };
    assert_eq!(t.session_cache, cache);
    assert_eq!(t.session_timeout, Duration::from_secs(600));
    assert_eq!(t.location.line, 8);
    assert_eq!(plain.starttls, Starttls::On);
    assert!(!plain.listens[0].ssl);
    assert_eq!(plain.tls.as_ref().unwrap().location.line, 9);
}

#[test]
fn inheritance_replaces_lists() {
    let l = ok(&mail(
        "auth_http 127.0.0.1:9000/a; timeout 10s; imap_capabilities A B; auth_http_header X-A 1;
         imap_capabilities C;
         server { listen 127.0.0.1:21143; protocol imap; }
         server { listen 127.0.0.1:21144; protocol imap; imap_capabilities Z; timeout 1m30s;
                  auth_http_header X-B 2; auth_http_header X-C 3; auth_http unix:/run/a.sock:/x; }",
    ));
    let (a, b) = (&l.config.servers[0], &l.config.servers[1]);
    assert_eq!(a.imap.capabilities, ["A", "B", "C"]);
    assert_eq!(b.imap.capabilities, ["Z"]);
    assert_eq!(a.timeout, Duration::from_secs(10));
    assert_eq!(b.timeout, Duration::from_secs(90));
    assert_eq!(a.auth_http.headers, [("X-A".to_string(), "1".to_string())]);
    let hb: Vec<(String, String)> = vec![("X-B".into(), "2".into()), ("X-C".into(), "3".into())];
    assert_eq!(b.auth_http.headers, hb);
    assert_eq!(b.auth_http.target, AuthTarget::Unix("/run/a.sock".into()));
    assert_eq!(b.auth_http.host_header, "localhost");
    assert_eq!(b.auth_http.uri, "/x");
}

#[test]
fn values_and_listen_params() {
    let l = ok(&mail(
        "auth_http 127.0.0.1; timeout 30000; proxy_buffer 16k; imap_client_buffer 1m;
         smtp_capabilities \"SIZE 10485760\" 8BITMIME; imap_auth LOGIN Plain cram-md5;
         server { listen [::1]:21143 backlog=10 rcvbuf=8k sndbuf=4k ipv6only=off so_keepalive=on proxy_protocol bind;
                  listen unix:/tmp/mp.sock; protocol imap; server_name \"\"; max_errors 2; }",
    ));
    let s = &l.config.servers[0];
    assert_eq!(s.timeout, Duration::from_secs(30000));
    assert_eq!(s.proxy.buffer, 16384);
    assert_eq!(s.imap.client_buffer, 1 << 20);
    assert_eq!(s.smtp.capabilities, ["SIZE 10485760", "8BITMIME"]);
    let imap = AuthMethods {
        plain: true,
        login: true,
        cram_md5: true,
        ..Default::default()
    };
    assert_eq!(s.imap.auth, imap);
    assert_eq!(
        s.auth_http.target,
        AuthTarget::Tcp("127.0.0.1:80".parse().unwrap())
    );
    assert_eq!(s.auth_http.uri, "/");
    assert_eq!(s.server_name, merge::hostname());
    assert_eq!(s.max_errors, 2);
    let l0 = &s.listens[0];
    assert_eq!(
        l0.addr,
        ListenAddr::Tcp("[::1]:21143".parse::<SocketAddr>().unwrap())
    );
    assert_eq!(
        (l0.backlog, l0.rcvbuf, l0.sndbuf),
        (10, Some(8192), Some(4096))
    );
    assert!(!l0.ipv6only && l0.proxy_protocol && l0.so_keepalive == Some(true));
    assert_eq!(s.listens[1].addr, ListenAddr::Unix("/tmp/mp.sock".into()));
}

#[test]
fn protocol_inferred_from_port_and_ssl_on() {
    let l = ok(&mail(
        "auth_http 127.0.0.1:9000; ssl_certificate c.pem; ssl_certificate_key c.key;
         server { listen 127.0.0.1:110; listen 127.0.0.1:21110; ssl on; }
         server { listen 127.0.0.1:587; }",
    ));
    let s = &l.config.servers[0];
    assert_eq!(s.protocol, Protocol::Pop3);
    assert!(s.listens.iter().all(|l| l.ssl));
    let t = s.tls.as_ref().unwrap();
    assert_eq!(t.certificates, [PathBuf::from("/etc/mp/c.pem")]);
    assert_eq!(t.location.line, 5);
    assert_eq!(l.config.servers[1].protocol, Protocol::Smtp);
    assert!(l.config.servers[1].tls.is_none());
    assert_eq!(
        warnings(&l),
        [format!(
            "the \"ssl\" directive is deprecated, use the \"listen ... ssl\" directive instead in {F}:5"
        )]
    );
}

#[test]
fn skipped_blocks_and_warnings() {
    let text = mail(
        "auth_http 127.0.0.1:9000; imap_auth plain login plain; resolver 127.0.0.1;
         server { listen 127.0.0.1:21143; protocol imap; }",
    ) + "http {\n server { listen 80; location / { return 200; } }\n}\n";
    let l = ok(&text);
    assert_eq!(
        warnings(&l),
        [
            format!("duplicate value \"plain\" in {F}:4"),
            format!("the \"http\" block is ignored by mailproxy in {F}:7"),
        ]
    );
}

/// Each case: a config and the exact message, with the line nginx names (as if the
/// file were `F`).
pub(super) fn error_cases() -> Vec<(String, String)> {
    vec![
        (mail("mail_debug on;"), format!("unknown directive \"mail_debug\" in {F}:4")),
        (mail("access_log off;"), format!("\"access_log\" directive is not allowed here in {F}:4")),
        (mail("listen 143;"), format!("\"listen\" directive is not allowed here in {F}:4")),
        (mail("timeout 1s 2s;"), format!("invalid number of arguments in \"timeout\" directive in {F}:4")),
        (mail("timeout 1s;\ntimeout 2s;"), format!("\"timeout\" directive is duplicate in {F}:5")),
        (mail("timeout 1y;"), format!("\"timeout\" directive invalid value in {F}:4")),
        (mail("max_errors x;"), format!("\"max_errors\" directive invalid number in {F}:4")),
        (
            mail("xclient yes;"),
            format!("invalid value \"yes\" in \"xclient\" directive, it must be \"on\" or \"off\" in {F}:4"),
        ),
        (mail("imap_auth apop;"), format!("invalid value \"apop\" in {F}:4")),
        (mail("starttls maybe;"), format!("invalid value \"maybe\" in {F}:4")),
        (mail("server {\n}"), format!("no \"listen\" is defined for server in {F}:4")),
        (
            mail("auth_http 127.0.0.1;\nserver {\nlisten 127.0.0.1:21143;\n}"),
            format!("unknown mail protocol for server in {F}:5"),
        ),
        (
            mail("server {\nlisten 127.0.0.1:21143; protocol imap;\n}"),
            format!("no \"auth_http\" is defined for server in {F}:4"),
        ),
        (
            mail("server { listen 21143; protocol imap; }\nserver { listen *:21143; protocol imap; }"),
            format!("duplicate \"0.0.0.0:21143\" address and port pair in {F}:5"),
        ),
        (
            mail("auth_http 127.0.0.1;\nserver {\nlisten 127.0.0.1:21143 ssl;\nprotocol imap; }"),
            format!("no \"ssl_certificate\" is defined for the \"listen ... ssl\" directive in {F}:6"),
        ),
        (
            mail("auth_http 127.0.0.1;\nstarttls on;\nserver {\nlisten 127.0.0.1:21143; protocol imap; }"),
            format!("no \"ssl_certificate\" is defined for the \"starttls\" directive in {F}:5"),
        ),
        (
            mail("auth_http 127.0.0.1; ssl_certificate a; ssl_certificate b; ssl_certificate_key k;\nserver { listen 127.0.0.1:21143 ssl; protocol imap; }"),
            format!("no \"ssl_certificate_key\" is defined for certificate \"b\" and the \"listen ... ssl\" directive in {F}:5"),
        ),
        (mail("ssl on;\nstarttls on;"), format!("\"ssl\" directive conflicts with \"starttls\" in {F}:5")),
        (mail("starttls on;\nssl on;"), format!("\"starttls\" directive conflicts with \"ssl on\" in {F}:5")),
        (mail("auth_http https://localhost/auth;"), format!("invalid port in auth_http \"https://localhost/auth\" in {F}:4")),
        (mail("server { listen 127.0.0.1:21143 reuseport; }"), format!("the invalid \"reuseport\" parameter in {F}:4")),
        (mail("server { listen 127.0.0.1:0; }"), format!("invalid port in \"127.0.0.1:0\" of the \"listen\" directive in {F}:4")),
        (mail("server { protocol imapx; }"), format!("unknown protocol \"imapx\" in {F}:4")),
        (mail("}"), format!("unexpected \"}}\" in {F}:5")),
        (format!("{LOAD}events {{}}\nmail {{\n"), format!("unexpected end of file, expecting \"}}\" in {F}:4")),
        (mail("timeout 5s\n"), format!("unexpected \"}}\" in {F}:6")),
        (mail("timeout 5s {}"), format!("directive \"timeout\" is not terminated by \";\" in {F}:4")),
        ("events;\n".into(), format!("directive \"events\" has no opening \"{{\" in {F}:1")),
        (mail("") + "mail {}\n", format!("\"mail\" directive is duplicate in {F}:6")),
        (mail("") + "load_module x.so;\n", format!("\"load_module\" directive is specified too late in {F}:6")),
        ("worker_processes many;\nevents {}".into(), format!("\"worker_processes\" directive invalid value in {F}:1")),
        ("events { worker_connections many; }".into(), format!("invalid number \"many\" in {F}:1")),
        (format!("{LOAD}mail {{}}\n"), "no \"events\" section in configuration".into()),
        (mail("ssl_verify_client on; ssl_certificate a; ssl_certificate_key b;\nserver { listen 127.0.0.1:21143 ssl; protocol imap; auth_http 127.0.0.1; }"),
            "no ssl_client_certificate for ssl_verify_client".into()),
        (mail("ssl_session_cache shared:X:16k;"), format!("session cache \"shared:X:16k\" is too small in {F}:4")),
    ]
    .into_iter()
    .chain(checked_values())
    .chain(other_modules())
    .collect()
}

/// Values of directives without effect that nginx checks all the same.
fn checked_values() -> Vec<(String, String)> {
    let main = |line: &str| format!("{LOAD}{line}\nevents {{}}\n");
    let events = |line: &str| format!("{LOAD}events {{\n{line}\n}}\n");
    vec![
        (main("thread_pool io threads=0;"), format!("invalid threads value \"threads=0\" in {F}:2")),
        (main("thread_pool io max_queue=1;"), format!("\"thread_pool\" must have \"threads\" parameter in {F}:2")),
        (main("thread_pool io threads=1 max_queue=x;"), format!("invalid max_queue value \"max_queue=x\" in {F}:2")),
        (main("thread_pool io threads=1;\nthread_pool io threads=2;"), format!("duplicate thread pool \"io\" in {F}:3")),
        (main("thread_pool io;"), format!("invalid number of arguments in \"thread_pool\" directive in {F}:2")),
        (main("worker_priority high;"), format!("\"worker_priority\" directive invalid number in {F}:2")),
        (main("worker_priority -5;\nworker_priority 3;"), format!("\"worker_priority\" directive is duplicate in {F}:3")),
        (main("worker_cpu_affinity 01 0x;"), format!("invalid character \"x\" in \"worker_cpu_affinity\" in {F}:2")),
        (main("worker_cpu_affinity 01;\nworker_cpu_affinity 10;"), format!("\"worker_cpu_affinity\" directive is duplicate in {F}:3")),
        (main("worker_cpu_affinity auto 01 10;"), format!("invalid number of arguments in \"worker_cpu_affinity\" directive in {F}:2")),
        (events("use kqueue;"), format!("invalid event type \"kqueue\" in {F}:3")),
        (events("debug_connection 10.0.0.0/40;"), format!("host not found in debug_connection \"10.0.0.0/40\" in {F}:3")),
        (
            format!("{LOAD}events {{ worker_connections 1; }}\nmail {{\n{SERVER}\n}}\n"),
            "1 worker_connections are not enough for 1 listening sockets".into(),
        ),
        (mail("server { listen 127.0.0.1:48103-48100; }"), format!("invalid port range in \"127.0.0.1:48103-48100\" of the \"listen\" directive in {F}:4")),
        (mail("error_log syslog:server=127.0.0.1:99999;"), format!("invalid port in syslog server \"127.0.0.1:99999\" in {F}:4")),
        (mail("error_log syslog:server=;"), format!("no host in syslog server \"\" in {F}:4")),
        (mail("ssl_password_file /nonexistent/pass;"), format!("open() \"/nonexistent/pass\" failed (2: No such file or directory) in {F}:4")),
        (mail("ssl_session_cache shared:Z:1m;\nserver { ssl_session_cache shared:Z:2m; }"),
            format!("the size 2097152 of shared memory zone \"Z\" conflicts with already declared size 1048576 in {F}:5")),
    ]
}

/// `load_module`, and http{}/stream{} read as far as nginx would refuse them.
fn other_modules() -> Vec<(String, String)> {
    let stream = "load_module /usr/lib/nginx/modules/ngx_stream_module.so;\n";
    vec![
        (format!("{LOAD}{LOAD}events {{}}\n"), format!("module \"ngx_mail_module\" is already loaded in {F}:2")),
        (
            "load_module /usr/lib/nginx/modules/nope.so;\nevents {}\n".into(),
            format!("dlopen() \"/usr/lib/nginx/modules/nope.so\" failed (/usr/lib/nginx/modules/nope.so: cannot open shared object file: No such file or directory) in {F}:1"),
        ),
        ("load_module /etc/hostname;\nevents {}\n".into(), format!("dlopen() \"/etc/hostname\" failed (/etc/hostname: file too short) in {F}:1")),
        ("load_module /etc;\nevents {}\n".into(), format!("dlopen() \"/etc\" failed (/etc: cannot read file data: Is a directory) in {F}:1")),
        (mail("") + "stream {\n}\n", format!("unknown directive \"stream\" in {F}:6")),
        (mail("") + "http {\nmail {}\n}\n", format!("\"mail\" directive is not allowed here in {F}:7")),
        (mail("") + "http {\nserver {\nlocation / {\nimap_auth plain;\n}\n}\n}\n", format!("\"imap_auth\" directive is not allowed here in {F}:9")),
        (stream.to_string() + &mail("") + "stream {\nserver {\nstarttls on;\n}\n}\n", format!("\"starttls\" directive is not allowed here in {F}:9")),
        (stream.to_string() + &mail("preread_timeout 5s;"), format!("\"preread_timeout\" directive is not allowed here in {F}:5")),
        (mail("preread_timeout 5s;"), format!("unknown directive \"preread_timeout\" in {F}:4")),
        (mail("ssl_session_cache shared:SSL:1m;") + "http {\nssl_session_cache shared:SSL:1m;\n}\n",
            format!("the shared memory zone \"SSL\" is already declared for a different use in {F}:7")),
        (format!("{LOAD}http {{\nlimit_req_zone $binary_remote_addr zone=Z:1m rate=1r/s;\n}}\nevents {{}}\nmail {{\nssl_session_cache shared:Z:1m;\n}}\n"),
            format!("the shared memory zone \"Z\" is already declared for a different use in {F}:7")),
        (format!("{LOAD}http {{}}\nload_module x.so;\nevents {{}}\n"), format!("\"load_module\" directive is specified too late in {F}:3")),
    ]
}

#[test]
fn checked_but_without_effect() {
    let text = format!("{LOAD}thread_pool default threads=32 other=1;\nthread_pool io threads=4 max_queue=0;\nworker_priority -5;\nworker_cpu_affinity auto 0101;\nevents {{ use epoll; debug_connection unix:; }}\n");
    let l = ok(&text);
    let names: Vec<String> = warnings(&l)
        .iter()
        .filter_map(|w| w.split('"').nth(1))
        .map(str::to_string)
        .collect();
    assert_eq!(
        names,
        [
            "thread_pool",
            "thread_pool",
            "worker_priority",
            "worker_cpu_affinity",
            "use",
            "debug_connection"
        ],
        "{:?}",
        warnings(&l)
    );
    assert!(
        warnings(&l)
            .iter()
            .all(|w| w.contains("directive has no effect in mailproxy")),
        "{:?}",
        warnings(&l)
    );
    // A repeat of priority 0 is no duplicate in nginx (it tests the stored value).
    ok(&format!(
        "{LOAD}worker_priority 0;\nworker_priority 0;\nevents {{}}\n"
    ));
}

#[test]
fn port_ranges_are_one_listen_per_port() {
    let l = ok(&mail(
        "auth_http 127.0.0.1:9000;\nserver { listen 127.0.0.1:48100-48103; protocol imap; }",
    ));
    let ports: Vec<String> = l.config.servers[0]
        .listens
        .iter()
        .map(|l| l.addr.to_string())
        .collect();
    assert_eq!(
        ports,
        [
            "127.0.0.1:48100",
            "127.0.0.1:48101",
            "127.0.0.1:48102",
            "127.0.0.1:48103"
        ]
    );
    // The protocol comes from the range's first port, as nginx's `u.port`.
    let l = ok(&mail(
        "auth_http 127.0.0.1:9000;\nserver { listen 127.0.0.1:143-144; }",
    ));
    assert_eq!(l.config.servers[0].protocol, Protocol::Imap);
    let dup = mail("auth_http 127.0.0.1:9000;\nserver { listen 127.0.0.1:48102; protocol imap; }\nserver { listen 127.0.0.1:48100-48103; protocol imap; }");
    assert_eq!(
        err(&dup),
        format!("duplicate \"127.0.0.1:48102\" address and port pair in {F}:6")
    );
}

#[test]
fn sockets_are_counted_as_nginx_groups_them() {
    let count = |listens: &str| {
        let l = ok(&mail(&format!(
            "auth_http 127.0.0.1:9000;\nserver {{ {listens} protocol imap; }}"
        )));
        sockets::nginx_count(&l.config)
    };
    assert_eq!(count("listen 127.0.0.1:48100; listen *:48100;"), 1);
    assert_eq!(count("listen 127.0.0.1:48100 bind; listen *:48100;"), 2);
    assert_eq!(
        count("listen 127.0.0.1:48100 backlog=10; listen *:48100;"),
        2
    );
    assert_eq!(
        count("listen [::1]:48100; listen [::]:48100; listen 127.0.0.1:48100;"),
        2
    );
    assert_eq!(count("listen 127.0.0.1:48100-48102;"), 3);
}

#[test]
fn stream_is_known_once_its_module_is_loaded() {
    let stream = "load_module /usr/lib/nginx/modules/ngx_stream_module.so;\n";
    let text = stream.to_string() + &mail(SERVER) + "stream {\nserver { listen 127.0.0.1:48200; proxy_pass 127.0.0.1:9; ssl_session_cache shared:S:1m; }\n}\n";
    let l = ok(&text);
    assert_eq!(
        warnings(&l),
        [format!(
            "the \"stream\" block is ignored by mailproxy in {F}:8"
        )]
    );
    // http's data blocks are not directives.
    ok(&(mail(SERVER) + "http {\nmap $host $b {\nmail 1;\n}\ntypes {\ntext/plain mail;\n}\n}\n"));
}

#[test]
fn error_texts_and_lines() {
    for (text, want) in error_cases() {
        assert_eq!(err(&text), want, "config:\n{text}");
    }
}

#[test]
fn earlier_semantic_error_beats_later_syntax_error() {
    // nginx acts on each directive when it reads it.
    assert_eq!(
        err(&mail("bogus;\n;")),
        format!("unknown directive \"bogus\" in {F}:4")
    );
    assert_eq!(
        err(&mail("timeout 1s;\n;")),
        format!("unexpected \";\" in {F}:5")
    );
}

#[test]
fn includes_relative_to_main_directory() {
    let dir = std::env::temp_dir().join(format!("mailproxy-config-inc-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("mail.d")).unwrap();
    std::fs::write(
        dir.join("mail.d/10-auth.conf"),
        "auth_http 127.0.0.1:9000;\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("mail.d/20-srv.conf"),
        "server {\n  listen 127.0.0.1:21143;\n  protocol imap;\n  bogus;\n}\n",
    )
    .unwrap();
    let main = dir.join("nginx.conf");
    std::fs::write(
        &main,
        "events {}\nmail {\n  include mail.d/*.conf;\n  include missing.d/*.conf;\n}\n",
    )
    .unwrap();
    let e = load(&main).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "unknown directive \"bogus\" in {}:4",
            dir.join("mail.d/20-srv.conf").display()
        )
    );
    std::fs::write(
        dir.join("mail.d/20-srv.conf"),
        "server { listen 127.0.0.1:21143; protocol imap; }\n",
    )
    .unwrap();
    let l = load(&main).unwrap();
    assert_eq!(
        l.config.servers[0].location.file,
        dir.join("mail.d/20-srv.conf")
    );
    let (report, passed) = check_report(&main);
    assert!(passed);
    let file = main.display();
    assert_eq!(
        report,
        format!(
            "mailproxy: the configuration file {file} syntax is ok\nmailproxy: configuration file {file} test is successful\n"
        )
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn report_format_on_failure() {
    let result = load_str("events {}\nmail { ssl on; bogus; }\n", Path::new(F));
    let (text, passed) = report(Path::new(F), &result);
    assert!(!passed);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3);
    let pid = std::process::id();
    // `2026/11/28 06:02:38 [warn] 20150#20150: ...`
    let stamp = &lines[0][..19];
    assert!(
        stamp.as_bytes()[4] == b'/' && stamp.as_bytes()[13] == b':',
        "{stamp}"
    );
    assert_eq!(
        &lines[0][19..],
        format!(" [warn] {pid}#{pid}: the \"ssl\" directive is deprecated, use the \"listen ... ssl\" directive instead in {F}:2")
    );
    assert_eq!(
        &lines[1][19..],
        format!(" [emerg] {pid}#{pid}: unknown directive \"bogus\" in {F}:2")
    );
    assert_eq!(
        lines[2],
        format!("mailproxy: configuration file {F} test failed")
    );
    let late = load_str("mail {}\n", Path::new(F));
    let (text, _) = report(Path::new(F), &late);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        format!("mailproxy: the configuration file {F} syntax is ok")
    );
    assert!(lines[1].ends_with(&format!(
        "[emerg] {pid}#{pid}: no \"events\" section in configuration"
    )));
}

#[test]
fn relative_main_file_is_under_the_prefix_like_nginx() {
    let (text, passed) = check_report(Path::new("no-such-mailproxy.conf"));
    assert!(!passed);
    let lines: Vec<&str> = text.lines().collect();
    let pid = std::process::id();
    assert_eq!(
        &lines[0][19..],
        format!(
            " [emerg] {pid}#{pid}: open() \"/usr/share/nginx/no-such-mailproxy.conf\" failed (2: No such file or directory)"
        )
    );
    assert_eq!(
        lines[1],
        "mailproxy: configuration file /usr/share/nginx/no-such-mailproxy.conf test failed"
    );
}

#[test]
fn resolver_is_inherited_and_off_by_default() {
    let text = mail(
        "auth_http 127.0.0.1:9000; resolver 127.0.0.1:20053 valid=10s; resolver_timeout 2s;
         server { listen 127.0.0.1:20025; protocol smtp; }
         server { listen 127.0.0.1:20026; protocol smtp; resolver off; }",
    );
    let l = ok(&text);
    let r = l.config.servers[0].resolver.as_ref().unwrap();
    assert_eq!(r.servers, ["127.0.0.1:20053".parse().unwrap()]);
    assert_eq!(r.timeout, std::time::Duration::from_secs(2));
    assert_eq!(l.config.servers[1].resolver, None);
    let plain = ok(&mail(
        "auth_http 127.0.0.1:9000; server { listen 127.0.0.1:20025; protocol smtp; }",
    ));
    assert_eq!(plain.config.servers[0].resolver, None);
}

// Newer nginx and freenginx directives: nginx 1.22.1 refuses them, so they cannot be
// compared with it (`error_cases` is); these check mailproxy's reading alone.

#[test]
fn max_commands_is_freenginx_s() {
    let l = ok(&mail(
        "auth_http 127.0.0.1:9000; max_commands 20;
         server { listen 127.0.0.1:21143; protocol imap; }
         server { listen 127.0.0.1:21144; protocol imap; max_commands 0; }",
    ));
    assert!(l.warnings.is_empty());
    assert_eq!(l.config.servers[0].max_commands, 20);
    assert_eq!(l.config.servers[1].max_commands, 0);
    assert_eq!(ok(&mail(SERVER)).config.servers[0].max_commands, 1000);
    assert_eq!(
        err(&mail("max_commands many;")),
        format!("\"max_commands\" directive invalid number in {F}:4")
    );
    assert_eq!(
        err(&mail("max_commands 1;\nmax_commands 2;")),
        format!("\"max_commands\" directive is duplicate in {F}:5")
    );
    assert_eq!(
        err(&format!("{LOAD}events {{ }}\nmax_commands 1;\n")),
        format!("\"max_commands\" directive is not allowed here in {F}:3")
    );
}

/// nginx 1.27.2: `ssl_trusted_certificate` alone is enough for `ssl_verify_client on` and
/// `optional` (1.22.1 refuses it; without either the refusal keeps 1.22.1's words).
#[test]
fn verify_client_with_only_trusted_certificates() {
    for mode in ["on", "optional"] {
        let l = ok(&mail(&format!(
            "ssl_verify_client {mode}; ssl_trusted_certificate ca.pem;
             ssl_certificate a; ssl_certificate_key b;
             server {{ listen 127.0.0.1:21143 ssl; protocol imap; auth_http 127.0.0.1; }}"
        )));
        let tls = l.config.servers[0].tls.as_ref().unwrap();
        assert_eq!(tls.client_certificate, None);
        assert_eq!(
            tls.trusted_certificate.as_deref(),
            Some(Path::new("/etc/mp/ca.pem"))
        );
    }
    let neither = mail(
        "ssl_verify_client optional; ssl_certificate a; ssl_certificate_key b;
         server { listen 127.0.0.1:21143 ssl; protocol imap; auth_http 127.0.0.1; }",
    );
    assert_eq!(
        err(&neither),
        "no ssl_client_certificate for ssl_verify_client"
    );
}

/// nginx 1.29.7's `listen ... multipath`: an MPTCP socket of its own.
#[test]
fn listen_multipath() {
    let l = ok(&mail(
        "auth_http 127.0.0.1:9000;
         server { listen 127.0.0.1:21143 multipath; listen 127.0.0.1:21144; protocol imap; }",
    ));
    let listens = &l.config.servers[0].listens;
    assert!(listens[0].multipath && listens[0].bind);
    assert!(!listens[1].multipath && !listens[1].bind);
    assert_eq!(
        err(&mail(
            "auth_http 127.0.0.1:9000; server { listen 127.0.0.1:21143 Multipath; protocol imap; }"
        )),
        format!("the invalid \"Multipath\" parameter in {F}:4")
    );
}

/// nginx 1.29.1's `ssl_certificate_compression`: checked, warned (OpenSSL 3.0 cannot).
#[test]
fn ssl_certificate_compression_warns() {
    let l = ok(&mail(&format!("ssl_certificate_compression on;\n{SERVER}")));
    assert_eq!(
        warnings(&l),
        [format!(
            "\"ssl_certificate_compression\" directive has no effect in mailproxy in {F}:4"
        )]
    );
    assert_eq!(
        err(&mail("ssl_certificate_compression yes;")),
        format!(
            "invalid value \"yes\" in \"ssl_certificate_compression\" directive, it must be \"on\" or \"off\" in {F}:4"
        )
    );
    assert!(err(&format!(
        "{LOAD}events {{ }}\nssl_certificate_compression on;\n"
    ))
    .starts_with("\"ssl_certificate_compression\" directive is not allowed here"));
}
