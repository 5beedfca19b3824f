//! The incremental IMAP command parser (`ngx_mail_imap_parse_command`, reference §5.2).
//!
//! It scans the command buffer from `pos`, keeps its state between calls (so bytes
//! are never scanned twice), and returns after one command, one synchronising literal
//! announcement, or one invalid line. Its quirks are nginx's:
//!
//! - the tag keeps its trailing space, and a line starting with a space has the empty
//!   tag `" "`;
//! - `{0}` and `{}` literals swallow one byte;
//! - after a literal, `{` starts another literal at once and any other byte acts as a
//!   separator (1.22.1; newer nginx is strict);
//! - the "quoted" flag survives a line that ended inside a quoted string, and is only
//!   reset by a closing quote or an invalid line;
//! - a rejected line ending in `+}` (before the optional CR and the LF) asks for close;
//! - after `AUTHENTICATE`, lines are parsed as bare arguments (SASL responses) until
//!   the machine resets the state.
//!
//! One deliberate difference: a literal length that would overflow is invalid (newer
//! nginx, 1.29.6); 1.22.1 wraps around.

pub(super) use crate::proto::buffer::CommandBuffer;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Command {
    None,
    Login,
    Logout,
    Capability,
    Noop,
    Starttls,
    Authenticate,
}

impl Command {
    /// The command's name, for the debug log.
    pub(super) fn name(self) -> &'static str {
        match self {
            Command::None => "(unknown)",
            Command::Login => "LOGIN",
            Command::Logout => "LOGOUT",
            Command::Capability => "CAPABILITY",
            Command::Noop => "NOOP",
            Command::Starttls => "STARTTLS",
            Command::Authenticate => "AUTHENTICATE",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Start,
    Tag,
    Invalid,
    SpacesBeforeCommand,
    Command,
    SpacesBeforeArgument,
    Argument,
    Backslash,
    Literal,
    NoSyncLiteralArgument,
    StartLiteralArgument,
    LiteralArgument,
    EndLiteralArgument,
    AlmostDone,
}

/// What one [`Parser::parse`] call found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Parsed {
    /// No complete command yet; every buffered byte has been scanned.
    Again,
    /// A complete command: see [`Parser::command`] and [`Parser::args`].
    Command,
    /// A synchronising literal was announced: send `+ OK`, then continue.
    Literal,
    /// A syntax error up to and including the LF. `close`: the line announced a
    /// non-synchronising literal, so the rest of the stream cannot be trusted.
    Invalid { close: bool },
}

/// What the current byte did.
enum Step {
    Continue,
    Done,
    Literal,
    Invalid,
}

const CR: u8 = b'\r';
const LF: u8 = b'\n';
const MAX_TAG_LEN: usize = 32;
const MAX_ARGS: usize = 3;

/// The parser's state between calls, plus the last command it found.
pub(super) struct Parser {
    state: State,
    /// Start and length (incl. the space) of the current tag; length 0 = no tag.
    tag: (usize, usize),
    tag_start: usize,
    cmd_start: usize,
    arg_start: usize,
    pub command: Command,
    /// Arguments of the current command, escapes removed.
    pub args: Vec<Vec<u8>>,
    quoted: bool,
    backslash: bool,
    no_sync_literal: bool,
    literal_len: usize,
}

impl Parser {
    pub fn new() -> Self {
        Parser {
            state: State::Start,
            tag: (0, 0),
            tag_start: 0,
            cmd_start: 0,
            arg_start: 0,
            command: Command::None,
            args: Vec::new(),
            quoted: false,
            backslash: false,
            no_sync_literal: false,
            literal_len: 0,
        }
    }

    /// The tag with its space, or `* ` when none was parsed. Like nginx's, it points
    /// into the buffer, so after an authentication attempt it may read stale bytes;
    /// unlike nginx's, bytes that are no longer a tag (they could hold a CR or LF and
    /// split the reply line) give `* ` too.
    pub fn tag<'b>(&self, buffer: &'b CommandBuffer) -> &'b [u8] {
        let (start, len) = self.tag;
        if len == 0 {
            return b"* ";
        }
        let tag = &buffer.data[start..start + len];
        match tag.split_last() {
            Some((b' ', name)) if name.iter().all(|&ch| is_tag_char(ch)) => tag,
            _ => b"* ",
        }
    }

    pub fn forget_tag(&mut self) {
        self.tag.1 = 0;
    }

    /// True between commands (nginx's `s->state == 0`).
    pub fn at_line_start(&self) -> bool {
        self.state == State::Start
    }

    /// Back to the start of a line (after an invalid command or authentication).
    pub fn reset_line(&mut self) {
        self.state = State::Start;
    }

    /// After a reply to an `AUTHENTICATE` step: the next line is a bare argument that
    /// starts where the buffer now stands.
    pub fn expect_response_at(&mut self, pos: usize) {
        self.arg_start = pos;
    }

    /// Scans from `buffer.pos`; see [`Parsed`].
    pub fn parse(&mut self, buffer: &mut CommandBuffer) -> Parsed {
        let mut p = buffer.pos;
        while p < buffer.last {
            let step = self.step(&mut buffer.data, p);
            match step {
                Step::Continue => p += 1,
                Step::Done => {
                    buffer.pos = p + 1;
                    self.state = match self.command {
                        Command::Authenticate => State::Argument,
                        _ => State::Start,
                    };
                    return Parsed::Command;
                }
                Step::Literal => {
                    buffer.pos = p + 1;
                    return Parsed::Literal;
                }
                Step::Invalid => return self.skip_invalid(buffer, p),
            }
        }
        buffer.pos = p;
        Parsed::Again
    }

    fn step(&mut self, data: &mut [u8], p: usize) -> Step {
        let ch = data[p];
        match self.state {
            State::Start => {
                self.tag_start = p;
                self.state = State::Tag;
                self.in_tag(ch, p)
            }
            State::Tag => self.in_tag(ch, p),
            State::Invalid => Step::Invalid,
            State::SpacesBeforeCommand => match ch {
                b' ' => Step::Continue,
                CR | LF => Step::Invalid,
                _ => {
                    self.cmd_start = p;
                    self.state = State::Command;
                    Step::Continue
                }
            },
            State::Command => self.in_command(data, ch, p),
            State::SpacesBeforeArgument => self.before_argument(ch, p),
            State::Argument => self.in_argument(data, ch, p),
            State::Backslash => match ch {
                CR | LF => Step::Invalid,
                _ => {
                    self.state = State::Argument;
                    Step::Continue
                }
            },
            State::Literal => self.in_literal_length(ch),
            State::NoSyncLiteralArgument => {
                if ch != b'}' {
                    return Step::Invalid;
                }
                self.no_sync_literal = true;
                self.state = State::StartLiteralArgument;
                Step::Continue
            }
            State::StartLiteralArgument => self.literal_line_end(ch, p),
            State::LiteralArgument => self.in_literal(data, p),
            State::EndLiteralArgument => match ch {
                b'{' if self.args.len() < MAX_ARGS => {
                    self.state = State::Literal;
                    Step::Continue
                }
                b'{' => Step::Invalid,
                CR => {
                    self.state = State::AlmostDone;
                    Step::Continue
                }
                LF => Step::Done,
                _ => {
                    self.state = State::SpacesBeforeArgument;
                    Step::Continue
                }
            },
            State::AlmostDone => match ch {
                LF => Step::Done,
                _ => Step::Invalid,
            },
        }
    }

    fn in_tag(&mut self, ch: u8, p: usize) -> Step {
        match ch {
            b' ' => {
                self.tag = (self.tag_start, p - self.tag_start + 1);
                self.state = State::SpacesBeforeCommand;
                Step::Continue
            }
            CR | LF => Step::Invalid,
            _ if !is_tag_char(ch) || p - self.tag_start >= MAX_TAG_LEN => Step::Invalid,
            _ => Step::Continue,
        }
    }

    fn in_command(&mut self, data: &[u8], ch: u8, p: usize) -> Step {
        if !matches!(ch, b' ' | CR | LF) {
            return if ch.is_ascii_alphabetic() {
                Step::Continue
            } else {
                Step::Invalid
            };
        }
        self.command = match command_named(&data[self.cmd_start..p]) {
            Some(command) => command,
            None => return Step::Invalid,
        };
        match ch {
            b' ' => self.state = State::SpacesBeforeArgument,
            CR => self.state = State::AlmostDone,
            _ => return Step::Done,
        }
        Step::Continue
    }

    fn before_argument(&mut self, ch: u8, p: usize) -> Step {
        match ch {
            b' ' => return Step::Continue,
            CR => {
                self.state = State::AlmostDone;
                return Step::Continue;
            }
            LF => return Step::Done,
            _ => {}
        }
        if self.args.len() >= MAX_ARGS {
            return Step::Invalid;
        }
        match ch {
            b'"' => {
                self.quoted = true;
                self.arg_start = p + 1;
                self.state = State::Argument;
            }
            b'{' => self.state = State::Literal,
            _ => {
                self.arg_start = p;
                self.state = State::Argument;
            }
        }
        Step::Continue
    }

    fn in_argument(&mut self, data: &mut [u8], ch: u8, p: usize) -> Step {
        match ch {
            b' ' if self.quoted => Step::Continue,
            b'"' if !self.quoted => Step::Continue,
            b'\\' => {
                if self.quoted {
                    self.backslash = true;
                    self.state = State::Backslash;
                }
                Step::Continue
            }
            b'"' | b' ' | CR | LF => {
                if ch == b'"' {
                    self.quoted = false;
                }
                self.push_argument(data, p);
                match ch {
                    CR => self.state = State::AlmostDone,
                    LF => return Step::Done,
                    _ => self.state = State::SpacesBeforeArgument,
                }
                Step::Continue
            }
            _ => Step::Continue,
        }
    }

    /// Ends the argument at `end`, removing `\` escapes in place as nginx does (the
    /// buffer is what `client sent too long command` logs).
    fn push_argument(&mut self, data: &mut [u8], end: usize) {
        let start = self.arg_start;
        let mut len = end - start;
        if self.backslash {
            let (mut src, mut dst) = (start, start);
            while src < end {
                if data[src] == b'\\' && src + 1 < end {
                    src += 1;
                }
                data[dst] = data[src];
                src += 1;
                dst += 1;
            }
            len = dst - start;
            self.backslash = false;
        }
        self.args.push(data[start..start + len].to_vec());
    }

    fn in_literal_length(&mut self, ch: u8) -> Step {
        match ch {
            b'0'..=b'9' => {
                let longer = self
                    .literal_len
                    .checked_mul(10)
                    .and_then(|n| n.checked_add(usize::from(ch - b'0')));
                match longer {
                    Some(len) => {
                        self.literal_len = len;
                        Step::Continue
                    }
                    None => Step::Invalid,
                }
            }
            b'}' => {
                self.state = State::StartLiteralArgument;
                Step::Continue
            }
            b'+' => {
                self.state = State::NoSyncLiteralArgument;
                Step::Continue
            }
            _ => Step::Invalid,
        }
    }

    fn literal_line_end(&mut self, ch: u8, p: usize) -> Step {
        match ch {
            CR => Step::Continue,
            LF => {
                self.arg_start = p + 1;
                self.state = State::LiteralArgument;
                if self.no_sync_literal {
                    self.no_sync_literal = false;
                    Step::Continue
                } else {
                    Step::Literal
                }
            }
            _ => Step::Invalid,
        }
    }

    /// Counts literal bytes down; `{0}` still takes one byte (nginx quirk).
    fn in_literal(&mut self, data: &[u8], p: usize) -> Step {
        if self.literal_len > 0 {
            self.literal_len -= 1;
            if self.literal_len > 0 {
                return Step::Continue;
            }
        }
        self.args.push(data[self.arg_start..=p].to_vec());
        self.state = State::EndLiteralArgument;
        Step::Continue
    }

    /// Skips to the LF that ends an invalid line; `Again` if it has not arrived.
    fn skip_invalid(&mut self, buffer: &mut CommandBuffer, from: usize) -> Parsed {
        self.state = State::Invalid;
        self.quoted = false;
        self.backslash = false;
        self.no_sync_literal = false;
        self.literal_len = 0;
        let data = &buffer.data;
        match data[from..buffer.last].iter().position(|&b| b == LF) {
            Some(offset) => {
                let lf = from + offset;
                self.state = State::Start;
                buffer.pos = lf + 1;
                Parsed::Invalid {
                    close: announces_non_sync_literal(data, lf),
                }
            }
            None => {
                buffer.pos = buffer.last;
                Parsed::Again
            }
        }
    }
}

/// Whether the bytes before the LF at `lf` are `+}` (optionally followed by CR).
/// Like nginx, this looks back from the buffer start, not the line start.
fn announces_non_sync_literal(data: &[u8], lf: usize) -> bool {
    if lf <= "{1+}".len() {
        return false;
    }
    let mut p = lf - 1;
    if data[p] == CR {
        p -= 1;
    }
    data[p] == b'}' && data[p - 1] == b'+'
}

fn is_tag_char(ch: u8) -> bool {
    ch.is_ascii_alphanumeric() || matches!(ch, b'-' | b'.' | b'_')
}

fn command_named(name: &[u8]) -> Option<Command> {
    const COMMANDS: [(&[u8], Command); 6] = [
        (b"NOOP", Command::Noop),
        (b"LOGIN", Command::Login),
        (b"LOGOUT", Command::Logout),
        (b"STARTTLS", Command::Starttls),
        (b"CAPABILITY", Command::Capability),
        (b"AUTHENTICATE", Command::Authenticate),
    ];
    COMMANDS
        .iter()
        .find(|(known, _)| known.eq_ignore_ascii_case(name))
        .map(|&(_, command)| command)
}
