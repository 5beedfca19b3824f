//! mailproxy: a drop-in replacement for nginx's mail proxy module.
//!
//! # Layout
//!
//! - [`config`]: nginx.conf lexer and parser, the directive table, and the typed,
//!   validated [`config::Config`] every other layer reads.
//! - [`proto`]: the pre-auth dialogues (IMAP, later POP3 and SMTP) as sans-I/O state
//!   machines, the shared SASL decoding, and the backend login sequences.
//! - [`auth`]: the `auth_http` protocol: request encoding, response parsing, and the
//!   client that talks to the auth server. `auth-server/` reuses the protocol types.
//! - [`net`]: listeners and TLS (OpenSSL), and the client stream STARTTLS upgrades.
//! - [`session`]: drives one client connection through its phases: greeting,
//!   pre-auth dialogue, auth_http, backend login, relay.
//! - [`relay`]: the byte copy after login; it parses nothing.
//! - [`runtime`]: start-up (TLS contexts, binding, daemon, pid, user), accept loops,
//!   signals. [`cli`]: nginx's command line. [`log`]: nginx-format error log.

pub mod auth;
pub mod cli;
pub mod config;
pub mod error;
pub mod files;
pub mod log;
pub mod net;
pub mod proto;
pub mod relay;
pub mod runtime;
pub mod secret;
pub mod session;
pub mod syslog;
