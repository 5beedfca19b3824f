//! The incremental verb-line parser shared by POP3 and SMTP (nginx's
//! `ngx_mail_pop3_parse_command` and `ngx_mail_smtp_parse_command`, reference §6.2
//! and §7.5, which are one state machine with different verb tables).
//!
//! ```text
//! line = verb [SP+ arg *(SP+ arg)] [CR] LF
//! ```
//!
//! It scans the command buffer from `pos`, keeps its state between calls (bytes are
//! never scanned twice) and returns after one command or one invalid line. The rules
//! both protocols share:
//!
//! - the verb is one of the protocol's known names, letters only, case-insensitive;
//!   anything else (an unknown verb, an empty line, a leading space) is a syntax error;
//! - arguments are separated by runs of spaces, at most [`Verbs::MAX_ARGS`] per line;
//! - a CR is allowed only right before the LF; a bare LF ends a line too;
//! - after the verb that [`Verbs::starts_sasl`] the parser stays in "argument" mode:
//!   the next line is a bare SASL response (every byte up to a space or the line end
//!   is an argument), until the machine resets it with [`VerbLineParser::reset_line`].
//!
//! Arguments are kept as positions in the buffer (which is never compacted while it
//! holds unconsumed bytes), so a machine can also take the whole command text.

use crate::proto::buffer::CommandBuffer;

/// A protocol's verb set: what differs between the POP3 and SMTP parsers.
pub(crate) trait Verbs: Copy + Eq + 'static {
    /// Every known verb with its name.
    const TABLE: &'static [(&'static [u8], Self)];
    /// A new argument starts only while fewer than this many are stored.
    const MAX_ARGS: usize;

    /// After this verb the next line is a bare SASL response (`AUTH`).
    fn starts_sasl(self) -> bool;

    /// This verb's single argument runs to the line end, spaces included (POP3's
    /// `USER` and `PASS`).
    fn keeps_spaces(self) -> bool {
        false
    }

    /// The verb's name, for the debug log.
    fn name(self) -> &'static str {
        let name = Self::TABLE
            .iter()
            .find(|(_, v)| *v == self)
            .map(|(n, _)| *n);
        name.and_then(|n| std::str::from_utf8(n).ok())
            .unwrap_or("?")
    }
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

/// What one [`VerbLineParser::parse`] call found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Parsed {
    /// No complete line yet; every buffered byte has been scanned.
    Again,
    /// A complete line: see [`VerbLineParser::verb`] and [`VerbLineParser::args`].
    Command,
    /// A syntax error, skipped up to and including its LF (counts toward `max_errors`).
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

/// The parser's state between calls, plus the last command it found.
pub(crate) struct VerbLineParser<V> {
    state: State,
    cmd_start: usize,
    arg_start: usize,
    /// nginx's `s->command`: the last verb recognised; it survives the AUTH response
    /// lines, which have none of their own.
    verb: Option<V>,
    /// `(start, end)` of each argument in the buffer.
    args: Vec<(usize, usize)>,
}

impl<V: Verbs> VerbLineParser<V> {
    pub fn new() -> Self {
        VerbLineParser {
            state: State::Start,
            cmd_start: 0,
            arg_start: 0,
            verb: None,
            args: Vec::new(),
        }
    }

    pub fn verb(&self) -> Option<V> {
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

    /// True between lines (nginx's `s->state == 0`).
    pub fn at_line_start(&self) -> bool {
        self.state == State::Start
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
                        Some(verb) if verb.starts_sasl() => State::Argument,
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
                _ if self.args.len() < V::MAX_ARGS => {
                    self.arg_start = p;
                    self.to(State::Argument)
                }
                _ => Step::Invalid,
            },
            State::Argument => self.in_argument(ch, p),
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

    fn in_argument(&mut self, ch: u8, p: usize) -> Step {
        let keeps_spaces = self.verb.is_some_and(V::keeps_spaces);
        match ch {
            b' ' if keeps_spaces => Step::Continue,
            b' ' | CR | LF => {
                self.args.push((self.arg_start, p));
                self.line_separator(ch)
            }
            _ => Step::Continue,
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
        match buffer.data[from..buffer.last].iter().position(|&b| b == LF) {
            Some(offset) => {
                self.state = State::Start;
                buffer.pos = from + offset + 1;
                Parsed::Invalid
            }
            None => {
                self.state = State::Invalid;
                buffer.pos = buffer.last;
                Parsed::Again
            }
        }
    }
}

fn verb_named<V: Verbs>(name: &[u8]) -> Option<V> {
    V::TABLE
        .iter()
        .find(|(known, _)| name.eq_ignore_ascii_case(known))
        .map(|&(_, verb)| verb)
}
