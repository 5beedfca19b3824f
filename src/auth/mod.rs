//! The `auth_http` protocol, as nginx's mail module speaks it (reference §9).
//!
//! When a client has given credentials, the session builds an [`AuthRequest`] and
//! calls [`query`]: a new HTTP/1.0 connection to the `auth_http` server, the request
//! written byte for byte as nginx writes it, and the response head read (at most 1024
//! bytes) by the incremental [`ResponseParser`]. [`AuthResponse::outcome`] then gives
//! the verdict: log in to a backend ([`Outcome::Ok`], see [`resolve`]), refuse
//! ([`Outcome::Failure`]), or ask again later ([`Outcome::Wait`]). Sleeping, retrying
//! and the client-facing replies are the session's job.
//!
//! Every [`AuthError`] ends the session with the internal error line; its `Display` is
//! nginx's log message.
//!
//! [`headers`] holds the header names once for both sides: `mailproxy-auth` (the
//! `auth-server/` crate) reads and writes the same constants.

mod client;
mod error;
pub mod headers;
mod pool;
mod request;
mod response;

pub use client::{query, resolve, RESOLVE_TIMEOUT};
pub use error::{AuthError, LOG_ACTION};
pub use request::{escape, AuthRequest, ProxyAddrs, SslInfo};
pub use response::{
    parse_response, AuthResponse, BackendAddr, Framing, Outcome, ResponseParser, MAX_RESPONSE_HEAD,
};
