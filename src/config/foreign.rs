//! `http {}` and `stream {}`: not served by mailproxy, but nginx reads them, so two
//! mistakes in them fail `nginx -t` and must fail here too:
//!
//! - a mail (or core) directive inside them, typically a mail config dropped into
//!   Debian's `conf.d/`, which is included *inside* `http {}`:
//!   `"mail" directive is not allowed here`;
//! - a shared memory zone name used both there and in mail{} (a TLS snippet shared
//!   between http and mail): `the shared memory zone "SSL" is already declared for a
//!   different use`.
//!
//! Everything else in them is nginx's http and stream modules' business and is not
//! interpreted: a name mailproxy does not know may well be theirs.

use super::build::{emerg, Builder, Step};
use super::declare::Reading;
use super::directives::{self, STREAM_ONLY};
use super::handlers::cache_parts;
use super::model::CacheParts;
use super::parser::{Block, Directive};
use super::process::STREAM_MODULE;
use super::values::parse_size;

/// Blocks whose contents are data (map entries, MIME types), not directives.
const DATA_BLOCKS: &[&str] = &[
    "map",
    "geo",
    "types",
    "split_clients",
    "charset_map",
    "match",
];

impl Builder {
    /// Whether `load_module` loaded the stream module, which makes `stream` and its
    /// directive names known.
    pub fn stream_loaded(&self) -> bool {
        self.modules.iter().any(|m| m == STREAM_MODULE)
    }

    /// Walks the contents of `http {}` (`stream == false`) or `stream {}`, nested blocks
    /// included, in file order.
    pub fn foreign(&mut self, block: &Block, stream: bool) -> Step {
        for d in &block.directives {
            self.foreign_directive(d, stream)?;
            if let Some(inner) = &d.block {
                if !DATA_BLOCKS.contains(&d.name.as_str()) {
                    self.foreign(inner, stream)?;
                }
            }
        }
        self.end_of(block)
    }

    fn foreign_directive(&mut self, d: &Directive, stream: bool) -> Step {
        let name = d.name.as_str();
        if name == "stream" && !self.stream_loaded() {
            return Err(emerg(format!("unknown directive \"{name}\""), &d.location));
        }
        let ours =
            directives::lookup(name).is_some_and(|decl| !directives::shared_with(decl, stream));
        let stream_only = !stream && self.stream_loaded() && STREAM_ONLY.contains(&name);
        if ours || stream_only {
            let msg = format!("\"{name}\" directive is not allowed here");
            return Err(emerg(msg, &d.location));
        }
        let Some((zone, size, owner)) = zone_of(d, stream) else {
            return Ok(());
        };
        self.reading(d, |r| r.declare_zone(&zone, size, owner))
    }

    /// Runs `f` with a [`Reading`] at directive `d` (one of http's, which has no
    /// declaration of ours: its name is not needed by the zone check).
    fn reading<T>(&mut self, d: &Directive, f: impl FnOnce(&mut Reading) -> T) -> T {
        let mut r = Reading {
            name: "",
            at: &d.location,
            prefix: &self.prefix,
            conf_dir: &self.conf_dir,
            warnings: &mut self.warnings,
            listens: &mut self.all_listens,
            past_modules: true,
            modules: &mut self.modules,
            zones: &mut self.zones,
        };
        f(&mut r)
    }
}

/// The shared zone an http or stream directive declares, if it is one of the
/// zone-declaring directives and well formed: name, size (0 when not given) and its
/// owner (nginx's module tag). A malformed one is left to nginx's own checks.
fn zone_of(d: &Directive, stream: bool) -> Option<(String, usize, &'static str)> {
    let arg = |prefix: &str| {
        d.args
            .iter()
            .find_map(|a| a.strip_prefix(prefix).map(str::to_string))
    };
    let named = |spec: String| {
        let (name, size) = spec.split_once(':')?;
        Some((name.to_string(), parse_size(size)?))
    };
    let (spec, owner) = match (d.name.as_str(), stream) {
        ("ssl_session_cache", _) => {
            let owner = if stream {
                "stream ssl_session_cache"
            } else {
                "http ssl_session_cache"
            };
            let parts = session_cache_zone(d)?;
            let (name, size) = parts.shared?;
            return Some((name, size, owner));
        }
        ("zone", _) => {
            let name = d.args.first()?.clone();
            let size = match d.args.get(1) {
                Some(size) => parse_size(size)?,
                None => 0,
            };
            let owner = if stream {
                "stream upstream zone"
            } else {
                "http upstream zone"
            };
            return Some((name, size, owner));
        }
        ("limit_conn_zone", false) => (arg("zone=")?, "http limit_conn_zone"),
        ("limit_conn_zone", true) => (arg("zone=")?, "stream limit_conn_zone"),
        ("limit_req_zone", false) => (arg("zone=")?, "http limit_req_zone"),
        ("proxy_cache_path", false) => (arg("keys_zone=")?, "proxy_cache_path"),
        ("fastcgi_cache_path", false) => (arg("keys_zone=")?, "fastcgi_cache_path"),
        ("uwsgi_cache_path", false) => (arg("keys_zone=")?, "uwsgi_cache_path"),
        ("scgi_cache_path", false) => (arg("keys_zone=")?, "scgi_cache_path"),
        _ => return None,
    };
    let (name, size) = named(spec)?;
    Some((name, size, owner))
}

/// http's and stream's `ssl_session_cache` read with mail's parser (same syntax);
/// `None` when malformed.
fn session_cache_zone(d: &Directive) -> Option<CacheParts> {
    super::declare::detached("ssl_session_cache", |r| {
        cache_parts(CacheParts::default(), r, &d.args).ok()
    })
}
