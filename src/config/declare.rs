//! The shape of a directive declaration, and the `directives!` macro that turns the
//! one list in [`super::directives`] into everything else: the typed per-context
//! [`Settings`](super::directives::Settings) struct (one field per directive), its
//! merge (server ← mail), its defaults (parsed by the directive's own value parser, so
//! the documented default and the used one cannot differ) and the lookup table the
//! reader walks by.
//!
//! Nothing after reading looks a directive up by name: the reader stores each value
//! into its typed field, and `merge.rs` reads the fields.

use super::model::{ListenAddr, Location, LogLevel};
use super::Diagnostic;
use std::path::Path;

/// Contexts, as bits so one entry can allow several.
pub type Contexts = u8;
pub const MAIN: Contexts = 1;
pub const EVENTS: Contexts = 2;
pub const MAIL: Contexts = 4;
pub const SERVER: Contexts = 8;
pub const MAIL_SERVER: Contexts = MAIL | SERVER;
/// `include` is allowed everywhere.
pub const ANY: Contexts = MAIN | EVENTS | MAIL | SERVER;

/// Marks "no upper bound" in an argument count.
pub const MANY: u8 = u8::MAX;
pub const ONE: (u8, u8) = (1, 1);
pub const TWO: (u8, u8) = (2, 2);
pub const NONE: (u8, u8) = (0, 0);
pub const ONE_MORE: (u8, u8) = (1, MANY);

/// What mailproxy does with a directive it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Honoured.
    Supported,
    /// Accepted and checked, and needs no effect: nginx itself ignores it (`proxy`),
    /// or mailproxy has it built in (`load_module` of the mail module).
    Silent,
    /// Accepted and checked, but without effect, and the operator may rely on it:
    /// warn `"X" directive has no effect in mailproxy`.
    Warn,
    /// Refused with the given reason, even though nginx would accept it.
    Rejected(&'static str),
}

/// How a second occurrence in the same context behaves (nginx's slot semantics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repeat {
    /// `"X" directive is duplicate`.
    Once,
    /// The later one wins (`auth_http`).
    Replace,
    /// Each occurrence adds its value (arrays: `ssl_certificate`, `auth_http_header`).
    Append,
    /// Keywords are OR-ed together, `duplicate value` warned (bitmasks).
    Union,
    /// Its handler decides (blocks, `ssl_session_cache`, `error_log`).
    Own,
}

/// How a `server {}` gets its value when it sets none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Merge {
    /// From `mail {}`, else the default. Lists are taken whole: a server's list
    /// replaces the mail list (§2.3).
    Inherit,
    /// Only where it is written (`listen`, `protocol`, the main and events context).
    Here,
    /// Part by part ([`Parts`]): `ssl_session_cache`'s builtin and shared halves each
    /// come from the innermost context that sets that half, as nginx merges them.
    Parts,
}

/// A value merged part by part ([`Merge::Parts`]).
pub trait Parts {
    fn inherit_parts(inner: &mut Slot<Self>, outer: &Slot<Self>)
    where
        Self: Sized;
}

/// A value and where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Set<T> {
    pub value: T,
    pub at: Location,
}

/// A directive's value in one context: unset, or set at a place.
pub type Slot<T> = Option<Set<T>>;

/// What a value parser and a handler see of the reader: the directive's name and
/// place, the paths relative ones start from, and where warnings go.
pub struct Reading<'a> {
    pub name: &'static str,
    pub at: &'a Location,
    /// nginx's `-p`: relative `pid` and `error_log` paths join it.
    pub prefix: &'a Path,
    /// The main file's directory: relative `include` and certificate paths join it.
    pub conf_dir: &'a Path,
    pub warnings: &'a mut Vec<Diagnostic>,
    /// Every listen address so far, across servers (duplicates are refused).
    pub listens: &'a mut Vec<ListenAddr>,
    /// `events {}`, `mail {}`, `http {}` or `stream {}` was read: `load_module` is now
    /// too late.
    pub past_modules: bool,
    /// The modules `load_module` loaded so far, by name (`ngx_stream_module`).
    pub modules: &'a mut Vec<String>,
    /// Every shared memory zone declared so far, in http{}, stream{} and mail{}.
    pub zones: &'a mut Vec<Zone>,
}

/// A shared memory zone: nginx keeps one list for the whole configuration, so a
/// name is one zone whoever declares it (`ngx_shared_memory_add`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    pub name: String,
    /// In bytes; 0 when the declaration gave none (`zone NAME;` in an upstream).
    pub size: usize,
    /// What declared it (nginx's module tag): `"mail ssl_session_cache"`, ...
    pub owner: &'static str,
}

impl Reading<'_> {
    /// Declares shared zone `name` for `owner`, as `ngx_shared_memory_add`: a name
    /// is refused when another owner declared it, or with another size.
    pub fn declare_zone(
        &mut self,
        name: &str,
        size: usize,
        owner: &'static str,
    ) -> Result<(), Diagnostic> {
        let Some(zone) = self.zones.iter_mut().find(|z| z.name == name) else {
            self.zones.push(Zone {
                name: name.to_string(),
                size,
                owner,
            });
            return Ok(());
        };
        if zone.owner != owner {
            let msg = format!(
                "the shared memory zone \"{name}\" is already declared for a different use"
            );
            return Err(self.emerg(msg));
        }
        if zone.size == 0 {
            zone.size = size;
        }
        if size != 0 && size != zone.size {
            let msg = format!(
                "the size {size} of shared memory zone \"{name}\" conflicts with already declared size {}",
                zone.size
            );
            return Err(self.emerg(msg));
        }
        Ok(())
    }

    /// An `[emerg]` about this directive.
    pub fn emerg(&self, message: impl Into<String>) -> Diagnostic {
        super::build::emerg(message, self.at)
    }

    /// A `[warn]` about this directive.
    pub fn warn(&mut self, message: impl Into<String>) {
        self.warnings.push(Diagnostic {
            level: LogLevel::Warn,
            message: message.into(),
            location: Some(self.at.clone()),
        });
    }
}

/// Runs `f` with a reading of directive `name` outside any file: for defaults and
/// tests. Warnings are dropped.
pub fn detached<T>(name: &'static str, f: impl FnOnce(&mut Reading) -> T) -> T {
    let at = Location {
        file: "default".into(),
        line: 0,
    };
    let mut r = Reading {
        name,
        at: &at,
        prefix: Path::new("/"),
        conf_dir: Path::new("/"),
        warnings: &mut Vec::new(),
        listens: &mut Vec::new(),
        past_modules: false,
        modules: &mut Vec::new(),
        zones: &mut Vec::new(),
    };
    f(&mut r)
}

/// Reads a default: its text, split like a directive's arguments, through the
/// directive's own parser. Panics on a default that does not parse, which the
/// `every_default_parses` test catches.
pub fn parse_default<T>(
    name: &'static str,
    text: &str,
    parse: impl FnOnce(&mut Reading, &[String]) -> Result<T, Diagnostic>,
) -> T {
    let args: Vec<String> = text.split_whitespace().map(str::to_string).collect();
    match detached(name, |r| parse(r, &args)) {
        Ok(v) => v,
        Err(e) => panic!("default of {name} does not parse: {e}"),
    }
}

/// The storing half of [`Repeat`]. `once` checks for a duplicate *before* parsing the
/// value, as nginx's slots do: `timeout 5s; timeout x;` says `is duplicate`, not
/// `invalid value`.
pub mod store {
    use super::*;

    pub fn once<T>(
        slot: &mut Slot<T>,
        r: &mut Reading,
        args: &[String],
        parse: fn(&mut Reading, &[String]) -> Result<T, Diagnostic>,
    ) -> Result<(), Diagnostic> {
        if slot.is_some() {
            return Err(r.emerg(format!("\"{}\" directive is duplicate", r.name)));
        }
        replace(slot, r, args, parse)
    }

    pub fn replace<T>(
        slot: &mut Slot<T>,
        r: &mut Reading,
        args: &[String],
        parse: fn(&mut Reading, &[String]) -> Result<T, Diagnostic>,
    ) -> Result<(), Diagnostic> {
        let value = parse(r, args)?;
        *slot = Some(Set {
            value,
            at: r.at.clone(),
        });
        Ok(())
    }

    pub fn append<T>(
        slot: &mut Slot<Vec<T>>,
        r: &mut Reading,
        args: &[String],
        parse: fn(&mut Reading, &[String]) -> Result<T, Diagnostic>,
    ) -> Result<(), Diagnostic> {
        let value = parse(r, args)?;
        let at = r.at.clone();
        match slot {
            Some(set) => {
                set.value.push(value);
                set.at = at;
            }
            None => {
                *slot = Some(Set {
                    value: vec![value],
                    at,
                })
            }
        }
        Ok(())
    }

    /// Bitmask keywords: each argument parsed on its own, a keyword already set warns
    /// `duplicate value` (across occurrences too, as nginx's `*np & mask`).
    pub fn union<T: PartialEq>(
        slot: &mut Slot<Vec<T>>,
        r: &mut Reading,
        args: &[String],
        parse: fn(&mut Reading, &[String]) -> Result<T, Diagnostic>,
    ) -> Result<(), Diagnostic> {
        let at = r.at.clone();
        let set = slot.get_or_insert_with(|| Set {
            value: Vec::new(),
            at: at.clone(),
        });
        set.at = at;
        for arg in args {
            let word = parse(r, std::slice::from_ref(arg))?;
            if set.value.contains(&word) {
                r.warn(format!("duplicate value \"{arg}\""));
            } else {
                set.value.push(word);
            }
        }
        Ok(())
    }
}

/// One directive: everything mailproxy knows about it.
pub struct Decl<S: 'static> {
    pub name: &'static str,
    pub contexts: Contexts,
    /// Minimum and maximum argument count.
    pub args: (u8, u8),
    pub status: Status,
    pub repeat: Repeat,
    pub merge: Merge,
    /// The config text of the default (parsed by the value parser), or `None` when
    /// there is none or it is computed ([`Decl::default_note`] says how).
    pub default: Option<&'static str>,
    /// What the documentation says about the default when it is not plain config text.
    pub default_note: &'static str,
    /// The syntax line, as nginx's documentation writes it.
    pub syntax: &'static str,
    /// The value, for the directive reference ("time (ms)", "flag", ...).
    pub value: &'static str,
    /// What mailproxy does with it, for the directive reference.
    pub doc: &'static str,
    /// Parses the arguments and stores them into this context's settings.
    pub apply: fn(&mut S, &mut Reading, &[String]) -> Result<(), Diagnostic>,
}

impl<S> Decl<S> {
    pub fn is_block(&self) -> bool {
        self.value == "block"
    }
}

/// Declares every directive. Each entry:
///
/// ```text
/// /// doc text
/// "name" field: Type = parser, Repeat, Merge, contexts, (min, max), Status,
///     default "text" [by (value_parser)] | default none "note", "syntax", "value kind";
/// ```
///
/// generates a `Settings` field `field: Slot<Type>` (`Slot<Vec<Type>>` for `Append`
/// and `Union`), for a text default a getter `field()` returning the merged value or
/// the parsed default, `Settings::inherit` for the `Inherit` fields, and the `TABLE`.
macro_rules! directives {
    ($(
        $(#[doc = $doc:literal])*
        $name:literal $field:ident : $ty:ty = $parse:path,
            $repeat:ident, $merge:ident, $ctx:expr, $args:expr, $status:ident,
            default $($default:literal $(by ($dparse:path))?)? $(none $note:literal)?,
            $syntax:literal, $value:literal;
    )*) => {
        /// Every directive's value in one context (main, events, mail or a server),
        /// as the reader stored it.
        #[derive(Debug, Clone, Default)]
        pub struct Settings {
            $(pub $field: $crate::config::declare::Slot<directives!(@stored $repeat $ty)>,)*
            /// Not a directive: where TLS was last switched on or off here (`listen ...
            /// ssl`, `ssl`, `starttls`; nginx's `scf->file`/`line`), for messages.
            pub tls_switch: Option<$crate::config::model::Location>,
        }

        impl Settings {
            /// Fills what this (server) context leaves unset from `outer` (mail).
            pub fn inherit(&mut self, outer: &Settings) {
                $(directives!(@inherit $merge self outer $field);)*
                if self.tls_switch.is_none() {
                    self.tls_switch = outer.tls_switch.clone();
                }
            }

            $(directives!(@getter $name $field $repeat $ty, $parse $(, $default $(, $dparse)?)?);)*

            /// Reads every text default through its getter (each panics on a default
            /// its parser refuses); returns how many there are.
            #[cfg(test)]
            pub fn read_every_default(&self) -> usize {
                let mut count = 0;
                $(directives!(@touch self count $field $($default)?);)*
                count
            }
        }

        /// The declarations, in nginx's module order.
        pub static TABLE: &[$crate::config::declare::Decl<Settings>] = &[$(
            $crate::config::declare::Decl {
                name: $name,
                contexts: $ctx,
                args: $args,
                status: $crate::config::declare::Status::$status,
                repeat: $crate::config::declare::Repeat::$repeat,
                merge: $crate::config::declare::Merge::$merge,
                default: directives!(@default $($default)?),
                default_note: directives!(@note $($note)?),
                syntax: $syntax,
                value: $value,
                doc: concat!($($doc, "\n"),*),
                apply: |s, r, args| directives!(@store $repeat, s, $field, r, args, $parse),
            },
        )*];
    };

    (@stored Append $ty:ty) => { Vec<$ty> };
    (@stored Union $ty:ty) => { Vec<$ty> };
    (@stored $other:ident $ty:ty) => { $ty };

    (@inherit Inherit $self:ident $outer:ident $field:ident) => {
        if $self.$field.is_none() {
            $self.$field = $outer.$field.clone();
        }
    };
    (@inherit Here $self:ident $outer:ident $field:ident) => {};
    (@inherit Parts $self:ident $outer:ident $field:ident) => {
        $crate::config::declare::Parts::inherit_parts(&mut $self.$field, &$outer.$field);
    };

    (@touch $s:ident $count:ident $field:ident $default:literal) => {
        let _ = $s.$field();
        $count += 1;
    };
    (@touch $s:ident $count:ident $field:ident) => {};

    (@default $default:literal) => { Some($default) };
    (@default) => { None };
    (@note $note:literal) => { $note };
    (@note) => { "" };

    (@store Once, $s:ident, $field:ident, $r:ident, $args:ident, $parse:path) => {
        $crate::config::declare::store::once(&mut $s.$field, $r, $args, $parse)
    };
    (@store Replace, $s:ident, $field:ident, $r:ident, $args:ident, $parse:path) => {
        $crate::config::declare::store::replace(&mut $s.$field, $r, $args, $parse)
    };
    (@store Append, $s:ident, $field:ident, $r:ident, $args:ident, $parse:path) => {
        $crate::config::declare::store::append(&mut $s.$field, $r, $args, $parse)
    };
    (@store Union, $s:ident, $field:ident, $r:ident, $args:ident, $parse:path) => {
        $crate::config::declare::store::union(&mut $s.$field, $r, $args, $parse)
    };
    // `Own`: the parser is a handler that stores by itself (and may look at the
    // context's other settings, as `ssl` and `starttls` do).
    (@store Own, $s:ident, $field:ident, $r:ident, $args:ident, $parse:path) => {
        $parse($s, $r, $args)
    };

    (@getter $name:literal $field:ident $repeat:ident $ty:ty, $parse:path, $default:literal) => {
        /// The value set here, else the default.
        pub fn $field(&self) -> directives!(@stored $repeat $ty) {
            match &self.$field {
                Some(set) => set.value.clone(),
                None => directives!(@parse_default $repeat $name, $default, $parse),
            }
        }
    };
    // An `Own` handler stores by itself; its default is read `by` the value parser.
    (@getter $name:literal $field:ident $repeat:ident $ty:ty, $parse:path, $default:literal, $dparse:path) => {
        directives!(@getter $name $field $repeat $ty, $dparse, $default);
    };
    (@getter $name:literal $field:ident $repeat:ident $ty:ty, $parse:path) => {};

    (@parse_default Union $name:literal, $default:literal, $parse:path) => {
        $default
            .split_whitespace()
            .map(|word| $crate::config::declare::parse_default($name, word, $parse))
            .collect()
    };
    (@parse_default Append $name:literal, $default:literal, $parse:path) => {
        vec![$crate::config::declare::parse_default($name, $default, $parse)]
    };
    (@parse_default $other:ident $name:literal, $default:literal, $parse:path) => {
        $crate::config::declare::parse_default($name, $default, $parse)
    };
}

pub(crate) use directives;
