//! The incremental SMTP command parser (`ngx_mail_smtp_parse_command`, reference §7.5).
//!
//! It scans the command buffer from `pos`, keeps its state between calls (bytes are
//! never scanned twice) and returns after one command or one invalid line. nginx's
//! rules, kept:
//!
//! - a verb is 4 letters (`HELO EHLO QUIT AUTH NOOP MAIL RSET RCPT VRFY EXPN HELP`)
//!   or `STARTTLS`, case-insensitive; anything else (`DATA`, `XCLIENT`, an empty line,
//!   a leading space) is a syntax error;
//! - arguments are separated by runs of spaces; at most 11 per line;
//! - a CR is allowed only right before the LF; a bare LF ends a line too;
//! - after an `AUTH` command the parser stays in "argument" mode: the next line is a
//!   bare SASL response (every byte up to a space or the line end is an argument),
//!   until the machine resets it with [`Parser::reset_line`].
//!
//! Arguments are kept as positions in the buffer, so the machine can take the whole
//! command text (`MAIL FROM:<a@b> SIZE=10`) as nginx does.

use crate::proto::buffer::CommandBuffer;

/// The commands nginx's parser knows (`NGX_SMTP_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verb {
    Helo,
    Ehlo,
    Quit,
    Auth,
    Noop,
    Mail,
    Rset,
    Rcpt,
    Vrfy,
    Expn,
    Help,
    Starttls,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Start,
    Command,
    Invalid,
    SpacesBeforeArgument,
    Argument,
    AlmostDone,
}

/// What one [`Parser::parse`] call found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Parsed {
    /// No complete line yet; every buffered byte has been scanned.
    Again,
    /// A complete line: see [`Parser::verb`] and [`Parser::args`].
    Command,
    /// A syntax error, skipped up to and including its LF.
    Invalid,
}

/// What the current byte did.
enum Step {
    Continue,
    Done,
    Invalid,
}

const CR: u8 = b'\r';
const LF: u8 = b'\n';
/// nginx starts a new argument only while fewer than 11 are stored.
const MAX_ARGS: usize = 11;

/// The parser's state between calls, plus the last command it found.
pub(super) struct Parser {
    state: State,
    cmd_start: usize,
    arg_start: usize,
    /// nginx's `s->command`: the last verb recognised; it survives the AUTH response
    /// lines, which have none of their own.
    verb: Option<Verb>,
    /// `(start, end)` of each argument in the buffer.
    args: Vec<(usize, usize)>,
}

impl Parser {
    pub fn new() -> Self {
        Parser {
            state: State::Start,
            cmd_start: 0,
            arg_start: 0,
            verb: None,
            args: Vec::new(),
        }
    }

    pub fn verb(&self) -> Option<Verb> {
        self.verb
    }

    /// The arguments of the line just parsed.
    pub fn args<'b>(&self, buffer: &'b CommandBuffer) -> Vec<&'b [u8]> {
        self.args
            .iter()
            .map(|&(start, end)| &buffer.data[start..end])
            .collect()
    }

    /// The whole command from the verb to the end of its last argument (inner spacing
    /// and case kept, trailing spaces dropped); `None` without arguments.
    pub fn command_text<'b>(&self, buffer: &'b CommandBuffer) -> Option<&'b [u8]> {
        let &(_, end) = self.args.last()?;
        Some(&buffer.data[self.cmd_start..end])
    }

    /// Where the current command's verb starts in the buffer.
    pub fn command_start(&self) -> usize {
        self.cmd_start
    }

    pub fn clear_args(&mut self) {
        self.args.clear();
    }

    /// Back to the start of a line (after an invalid command, a refused AUTH step or
    /// the start of authentication).
    pub fn reset_line(&mut self) {
        self.state = State::Start;
    }

    /// After a reply: if the parser is in the middle of an AUTH exchange, the next
    /// response starts where the buffer now stands.
    pub fn expect_response_at(&mut self, pos: usize) {
        if self.state != State::Start {
            self.arg_start = pos;
        }
    }

    /// Scans from `buffer.pos`; see [`Parsed`].
    pub fn parse(&mut self, buffer: &mut CommandBuffer) -> Parsed {
        let mut p = buffer.pos;
        while p < buffer.last {
            match self.step(&buffer.data, p) {
                Step::Continue => p += 1,
                Step::Done => {
                    buffer.pos = p + 1;
                    self.state = match self.verb {
                        Some(Verb::Auth) => State::Argument,
                        _ => State::Start,
                    };
                    return Parsed::Command;
                }
                Step::Invalid => return self.skip_invalid(buffer, p),
            }
        }
        buffer.pos = p;
        Parsed::Again
    }

    fn step(&mut self, data: &[u8], p: usize) -> Step {
        let ch = data[p];
        match self.state {
            State::Start => {
                self.cmd_start = p;
                self.state = State::Command;
                self.in_command(data, ch, p)
            }
            State::Command => self.in_command(data, ch, p),
            State::Invalid => Step::Invalid,
            State::SpacesBeforeArgument => match ch {
                b' ' => Step::Continue,
                CR => self.to(State::AlmostDone),
                LF => Step::Done,
                _ if self.args.len() < MAX_ARGS => {
                    self.arg_start = p;
                    self.to(State::Argument)
                }
                _ => Step::Invalid,
            },
            State::Argument => match ch {
                b' ' | CR | LF => {
                    self.args.push((self.arg_start, p));
                    self.line_separator(ch)
                }
                _ => Step::Continue,
            },
            State::AlmostDone if ch == LF => Step::Done,
            State::AlmostDone => Step::Invalid,
        }
    }

    fn in_command(&mut self, data: &[u8], ch: u8, p: usize) -> Step {
        if matches!(ch, b' ' | CR | LF) {
            let Some(verb) = verb_named(&data[self.cmd_start..p]) else {
                return Step::Invalid;
            };
            self.verb = Some(verb);
            return self.line_separator(ch);
        }
        if ch.is_ascii_alphabetic() {
            Step::Continue
        } else {
            Step::Invalid
        }
    }

    /// After a verb or an argument: a space, the CR of the line end, or its LF.
    fn line_separator(&mut self, ch: u8) -> Step {
        match ch {
            b' ' => self.to(State::SpacesBeforeArgument),
            CR => self.to(State::AlmostDone),
            _ => Step::Done,
        }
    }

    fn to(&mut self, state: State) -> Step {
        self.state = state;
        Step::Continue
    }

    /// Skips to the LF that ends the invalid line; without one yet, waits in the
    /// invalid state (the rest of the line is skipped when it arrives).
    fn skip_invalid(&mut self, buffer: &mut CommandBuffer, from: usize) -> Parsed {
        self.state = State::Invalid;
        match buffer.data[from..buffer.last].iter().position(|&b| b == LF) {
            Some(offset) => {
                self.state = State::Start;
                buffer.pos = from + offset + 1;
                Parsed::Invalid
            }
            None => {
                buffer.pos = buffer.last;
                Parsed::Again
            }
        }
    }
}

fn verb_named(name: &[u8]) -> Option<Verb> {
    const VERBS: [(&[u8], Verb); 12] = [
        (b"HELO", Verb::Helo),
        (b"EHLO", Verb::Ehlo),
        (b"QUIT", Verb::Quit),
        (b"AUTH", Verb::Auth),
        (b"NOOP", Verb::Noop),
        (b"MAIL", Verb::Mail),
        (b"RSET", Verb::Rset),
        (b"RCPT", Verb::Rcpt),
        (b"VRFY", Verb::Vrfy),
        (b"EXPN", Verb::Expn),
        (b"HELP", Verb::Help),
        (b"STARTTLS", Verb::Starttls),
    ];
    VERBS
        .iter()
        .find(|(known, _)| name.eq_ignore_ascii_case(known))
        .map(|&(_, verb)| verb)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(input: &[u8]) -> (Vec<Parsed>, Parser, CommandBuffer) {
        let mut buffer = CommandBuffer::new(256);
        buffer.append(input);
        let mut parser = Parser::new();
        let results = vec![parser.parse(&mut buffer)];
        (results, parser, buffer)
    }

    #[test]
    fn verbs_and_arguments() {
        let (r, p, b) = parse(b"mail  FROM:<a@b>   SIZE=10  \r\n");
        assert_eq!(r, [Parsed::Command]);
        assert_eq!(p.verb(), Some(Verb::Mail));
        assert_eq!(p.args(&b), [&b"FROM:<a@b>"[..], b"SIZE=10"]);
        assert_eq!(p.command_text(&b).unwrap(), b"mail  FROM:<a@b>   SIZE=10");
        let (r, p, _) = parse(b"StartTLS\n");
        assert_eq!((r[0], p.verb()), (Parsed::Command, Some(Verb::Starttls)));
    }

    #[test]
    fn syntax_errors() {
        for line in [
            &b"DATA\r\n"[..],
            b"XCLIENT ADDR=1\r\n",
            b"\r\n",
            b" NOOP\r\n",
            b"NOOP\rX\r\n",
            b"NO0P\r\n",
            b"HELO a b c d e f g h i j k l\r\n",
        ] {
            let (r, _, b) = parse(line);
            assert_eq!(r, [Parsed::Invalid], "{:?}", String::from_utf8_lossy(line));
            assert_eq!(b.pos, b.last);
        }
        let (r, p, b) = parse(b"HELO a b c d e f g h i j k\r\n");
        assert_eq!(r, [Parsed::Command]);
        assert_eq!(p.args(&b).len(), 11);
    }

    #[test]
    fn auth_leaves_argument_mode() {
        let mut buffer = CommandBuffer::new(64);
        buffer.append(b"AUTH PLAIN\r\n one two\r\n");
        let mut parser = Parser::new();
        assert_eq!(parser.parse(&mut buffer), Parsed::Command);
        parser.clear_args();
        parser.expect_response_at(buffer.pos);
        assert_eq!(parser.parse(&mut buffer), Parsed::Command);
        assert_eq!(parser.args(&buffer), [&b""[..], b"one", b"two"]);
    }

    #[test]
    fn incremental_and_invalid_across_reads() {
        let mut buffer = CommandBuffer::new(64);
        let mut parser = Parser::new();
        buffer.append(b"DA");
        assert_eq!(parser.parse(&mut buffer), Parsed::Again);
        buffer.append(b"TA x");
        assert_eq!(parser.parse(&mut buffer), Parsed::Again);
        buffer.append(b"y\r\nNOOP\r\n");
        assert_eq!(parser.parse(&mut buffer), Parsed::Invalid);
        assert_eq!(parser.parse(&mut buffer), Parsed::Command);
        assert_eq!(parser.verb(), Some(Verb::Noop));
    }
}
