//! The TLS library under the `ssl_*` directives: `ssl_conf_command` reaches the
//! handshake, and what the library cannot do is said at `-t` (issue #12).

mod common;

use std::process::{Command, Stdio};

use common::*;

/// nginx negotiates ChaCha20 with this command; so must mailproxy, on either library.
#[tokio::test]
async fn ssl_conf_command_ciphersuites_and_max_protocol_reach_the_handshake() {
    let dir = TempDir::new("certs");
    let (cert, key) = make_cert(&dir.0);
    let (chacha, tls12) = (free_port(), free_port());
    let body = format!(
        "ssl_certificate {}; ssl_certificate_key {}; auth_http 127.0.0.1:9/auth;\n\
         server {{ listen 127.0.0.1:{chacha} ssl; protocol imap;\n\
                   ssl_conf_command Ciphersuites TLS_CHACHA20_POLY1305_SHA256; }}\n\
         server {{ listen 127.0.0.1:{tls12} ssl; protocol imap;\n\
                   ssl_conf_command MaxProtocol TLSv1.2;\n\
                   ssl_conf_command Options -SessionTicket; }}",
        cert.display(),
        key.display(),
    );
    let _proxy = Proxy::start(&body, &[chacha, tls12]);

    let mut c = TlsClient::connect(chacha).await;
    assert_eq!(c.line().await, "* OK IMAP4 ready\r\n");
    let ssl = c.s.get_ref().ssl();
    assert_eq!(ssl.version_str(), "TLSv1.3");
    assert_eq!(
        ssl.current_cipher().unwrap().name(),
        "TLS_CHACHA20_POLY1305_SHA256"
    );

    let mut c = TlsClient::connect(tls12).await;
    assert_eq!(c.line().await, "* OK IMAP4 ready\r\n");
    assert_eq!(c.s.get_ref().ssl().version_str(), "TLSv1.2");
}

fn test_config(mail_body: &str) -> (bool, String) {
    let dir = TempDir::new("conf");
    let (cert, key) = make_cert(&dir.0);
    let conf = dir.0.join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "error_log stderr;\nevents {{}}\nmail {{ auth_http 127.0.0.1:9/;\n\
             server {{ listen 127.0.0.1:{} ssl; protocol imap;\n\
             ssl_certificate {}; ssl_certificate_key {};\n{mail_body} }} }}\n",
            free_port(),
            cert.display(),
            key.display()
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mailproxy"))
        .arg("-t")
        .arg("-c")
        .arg(&conf)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn an_unknown_ssl_conf_command_fails_the_test_in_nginx_s_words() {
    let (ok, stderr) = test_config("ssl_conf_command Foo bar;");
    assert!(!ok, "{stderr}");
    assert!(
        stderr.contains(
            "[emerg] ",
        ) && stderr.contains(
            ": SSL_CONF_cmd(\"Foo\", \"bar\") failed (SSL: error:0A000182:SSL routines::unknown \
             cmd name:cmd=Foo)\n"
        ),
        "{stderr}"
    );
}

#[test]
fn ssl_dhparam_warns_at_test_time_on_aws_lc() {
    let dir = TempDir::new("dh");
    let dh = dir.0.join("dh.pem");
    let made = Command::new("openssl")
        .args(["dhparam", "-dsaparam", "-out"])
        .arg(&dh)
        .arg("2048")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(made.success());
    let (ok, stderr) = test_config(&format!("ssl_dhparam {};", dh.display()));
    assert!(ok, "{stderr}");
    let warned = stderr.contains("[warn] ")
        && stderr.contains(
            ": \"ssl_dhparam\" has no effect: this mailproxy uses AWS-LC, which has no DHE cipher \
         suites\n",
        );
    assert_eq!(warned, cfg!(feature = "aws-lc"), "{stderr}");
}
