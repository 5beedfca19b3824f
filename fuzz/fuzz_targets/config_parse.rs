//! `cargo +nightly fuzz run config_parse`: any bytes through the config lexer, parser
//! and builder must give a config or an error, never a panic or a hang. Includes are
//! resolved under a directory that does not exist; only a `../`-climbing include can
//! reach real files, which are then merely parsed.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ =
        mailproxy::config::load_str(&text, std::path::Path::new("/nonexistent/fuzz/nginx.conf"));
});
