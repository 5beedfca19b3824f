//! The stable-Rust stand-in for `fuzz/` (cargo-fuzz needs nightly): a few thousand
//! configs generated and mutated from a fixed seed go through [`load_str`]; none may
//! panic, and each must finish quickly. A failure prints the input to replay.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::time::{Duration, Instant};

use super::load_str;

const CASES: usize = 20_000;
/// Far above what one small config takes even in a debug build.
const SLOW: Duration = Duration::from_millis(500);

const SEEDS: &[&str] = &[
    "events { worker_connections 64; }\nmail {\n auth_http 127.0.0.1:9/auth;\n server { listen 127.0.0.1:11143; protocol imap; }\n}\n",
    "user www-data;\nworker_processes auto;\npid /run/x.pid;\nerror_log stderr info;\nevents {}\nmail { server_name mx; imap_capabilities IMAP4rev1 \"SASL-IR\"; imap_auth plain login; starttls on; ssl_certificate c.pem; ssl_certificate_key k.pem;\n server { listen 993 ssl; listen [::1]:143 bind; timeout 1m30s; proxy_buffer 8k; } }\n",
    "events {}\nhttp { server { listen 80; location / { return 200 'x;y'; } } }\nstream { server { listen 1; } }\nmail { smtp_auth none; resolver 127.0.0.1 valid=30s; server { listen 25; protocol smtp; xclient off; smtp_capabilities \"SIZE 10\" 8BITMIME; } }\n",
    "events{}mail{ssl_session_cache shared:SSL:10m builtin:1000;ssl_protocols TLSv1.2 TLSv1.3;auth_http_header X-A \"b\\\"c\";server{listen *:110;protocol pop3;pop3_auth apop cram-md5;}}",
];

const TOKENS: &[&str] = &[
    "{",
    "}",
    ";",
    "\"",
    "'",
    "\\",
    "#",
    "\n",
    " ",
    "\t",
    "$",
    "${",
    "include",
    "mail",
    "server",
    "events",
    "listen",
    "http",
    "stream",
    "on",
    "off",
    "1k",
    "10m",
    "30s",
    "0",
    "-1",
    "99999999999999999999",
    "ssl",
    "[::]:1",
    "unix:/x",
    "*:143",
    "auth_http",
    "error_log",
    "syslog:server=127.0.0.1",
    "imap_auth",
    "load_module",
    "x.so",
    "\u{feff}",
    "\u{0}",
    "é",
    "protocol",
    "imap",
    "timeout",
    "ssl_session_cache",
    "shared:A:1k",
];

/// xorshift64*: deterministic, dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Applies 1-8 random edits to `text`: deletions, duplications, token insertions,
/// byte swaps.
fn mutate(rng: &mut Rng, text: &str) -> String {
    let mut bytes = text.as_bytes().to_vec();
    for _ in 0..=rng.below(8) {
        let at = rng.below(bytes.len() + 1);
        match rng.below(4) {
            0 if !bytes.is_empty() => {
                let end = (at + rng.below(16)).min(bytes.len());
                bytes.drain(at.min(end)..end);
            }
            1 if !bytes.is_empty() => {
                let start = rng.below(bytes.len());
                let end = (start + rng.below(64)).min(bytes.len());
                let piece = bytes[start..end].to_vec();
                bytes.splice(at..at, piece);
            }
            2 if !bytes.is_empty() => {
                let i = rng.below(bytes.len());
                let specials = b"{};\"'\\#\n $x";
                bytes[i] = specials[rng.below(specials.len())];
            }
            _ => {
                let token = TOKENS[rng.below(TOKENS.len())].as_bytes().to_vec();
                bytes.splice(at..at, token);
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// A config made only of random tokens.
fn generate(rng: &mut Rng) -> String {
    (0..rng.below(60))
        .map(|_| TOKENS[rng.below(TOKENS.len())])
        .collect::<Vec<_>>()
        .join(if rng.below(2) == 0 { " " } else { "" })
}

#[test]
fn generated_and_mutated_configs_never_panic_and_finish_fast() {
    let mut rng = Rng(0x6d61_696c_7072_6f78);
    super::url::OFFLINE.with(|o| o.set(true));
    let path = Path::new("/nonexistent/fuzz/nginx.conf");
    let started = Instant::now();
    for case in 0..CASES {
        let text = if case % 5 == 0 {
            generate(&mut rng)
        } else {
            let seed = SEEDS[rng.below(SEEDS.len())];
            mutate(&mut rng, seed)
        };
        let begin = Instant::now();
        let outcome = catch_unwind(AssertUnwindSafe(|| load_str(&text, path).is_ok()));
        assert!(outcome.is_ok(), "case {case} panicked on {text:?}");
        assert!(
            begin.elapsed() < SLOW,
            "case {case} took {:?}: {text:?}",
            begin.elapsed()
        );
    }
    assert!(started.elapsed() < Duration::from_secs(60));
}

#[test]
fn the_seeds_themselves_are_valid_or_fail_cleanly() {
    let path = Path::new("/nonexistent/fuzz/nginx.conf");
    assert!(load_str(SEEDS[0], path).is_ok());
}
