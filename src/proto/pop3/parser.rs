//! The incremental POP3 command parser (`ngx_mail_pop3_parse_command`, reference §6.2).
//!
//! ```text
//! line = command [SP+ arg *(SP+ arg)] [CR] LF      (at most 3 arguments)
//! ```
//!
//! The command is exactly four letters naming one of the eight known verbs. Its quirks
//! are nginx's:
//!
//! - `USER` and `PASS` have one argument: everything after the first run of spaces,
//!   inner and trailing spaces included;
//! - after `AUTH`, the next line is parsed as bare arguments (the SASL response) from
//!   where the machine says it starts, until the machine resets the state;
//! - a CR must be followed by LF.

use crate::proto::buffer::CommandBuffer;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Command {
    User,
    Pass,
    Apop,
    Quit,
    Capa,
    Auth,
    Noop,
    Stls,
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
    /// A complete line: see [`Parser::command`] and [`Parser::args`].
    Command,
    /// A syntax error up to and including the LF (counts toward `max_errors`).
    Invalid,
}

enum Step {
    Continue,
    Done,
    Invalid,
}

const CR: u8 = b'\r';
const LF: u8 = b'\n';
const MAX_ARGS: usize = 3;

/// The parser's state between calls, plus the last command it found.
pub(super) struct Parser {
    state: State,
    cmd_start: usize,
    arg_start: usize,
    /// The last command parsed; stays `Auth` while SASL responses are parsed.
    pub command: Option<Command>,
    pub args: Vec<Vec<u8>>,
}

impl Parser {
    pub fn new() -> Self {
        Parser {
            state: State::Start,
            cmd_start: 0,
            arg_start: 0,
            command: None,
            args: Vec::new(),
        }
    }

    /// True between lines (nginx's `s->state == 0`).
    pub fn at_line_start(&self) -> bool {
        self.state == State::Start
    }

    /// Back to the start of a line (invalid command, `AUTH` list, authentication).
    pub fn reset_line(&mut self) {
        self.state = State::Start;
    }

    /// After a reply to an `AUTH` step: the next line is a bare response starting at `pos`.
    pub fn expect_response_at(&mut self, pos: usize) {
        self.arg_start = pos;
    }

    /// Scans from `buffer.pos`; see [`Parsed`].
    pub fn parse(&mut self, buffer: &mut CommandBuffer) -> Parsed {
        let mut p = buffer.pos;
        while p < buffer.last {
            match self.step(&buffer.data, p) {
                Step::Continue => p += 1,
                Step::Done => {
                    buffer.pos = p + 1;
                    self.state = match self.command {
                        Some(Command::Auth) => State::Argument,
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
                CR => {
                    self.state = State::AlmostDone;
                    Step::Continue
                }
                LF => Step::Done,
                _ if self.args.len() < MAX_ARGS => {
                    self.state = State::Argument;
                    self.arg_start = p;
                    Step::Continue
                }
                _ => Step::Invalid,
            },
            State::Argument => self.in_argument(data, ch, p),
            State::AlmostDone => match ch {
                LF => Step::Done,
                _ => Step::Invalid,
            },
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
            Some(command) => Some(command),
            None => return Step::Invalid,
        };
        self.end_of_word(ch)
    }

    fn in_argument(&mut self, data: &[u8], ch: u8, p: usize) -> Step {
        let keeps_spaces = matches!(self.command, Some(Command::User | Command::Pass));
        match ch {
            b' ' if keeps_spaces => Step::Continue,
            b' ' | CR | LF => {
                self.args.push(data[self.arg_start..p].to_vec());
                self.end_of_word(ch)
            }
            _ => Step::Continue,
        }
    }

    /// After the command or an argument, `ch` being SP, CR or LF.
    fn end_of_word(&mut self, ch: u8) -> Step {
        match ch {
            b' ' => self.state = State::SpacesBeforeArgument,
            CR => self.state = State::AlmostDone,
            _ => return Step::Done,
        }
        Step::Continue
    }

    /// Skips to the LF that ends an invalid line; `Again` if it has not arrived.
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

fn command_named(name: &[u8]) -> Option<Command> {
    const COMMANDS: [(&[u8; 4], Command); 8] = [
        (b"USER", Command::User),
        (b"PASS", Command::Pass),
        (b"APOP", Command::Apop),
        (b"QUIT", Command::Quit),
        (b"CAPA", Command::Capa),
        (b"AUTH", Command::Auth),
        (b"NOOP", Command::Noop),
        (b"STLS", Command::Stls),
    ];
    COMMANDS
        .iter()
        .find(|(known, _)| known.eq_ignore_ascii_case(name))
        .map(|&(_, command)| command)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(input: &[u8]) -> (Parsed, Option<Command>, Vec<Vec<u8>>) {
        let mut buffer = CommandBuffer::new(128);
        buffer.append(input);
        let mut parser = Parser::new();
        let parsed = parser.parse(&mut buffer);
        (parsed, parser.command, parser.args)
    }

    #[test]
    fn user_and_pass_keep_their_spaces() {
        let (parsed, command, args) = parse_all(b"USER  bob smith \r\n");
        assert_eq!((parsed, command), (Parsed::Command, Some(Command::User)));
        assert_eq!(args, vec![b"bob smith ".to_vec()]);
        let (_, _, args) = parse_all(b"pass a b\n");
        assert_eq!(args, vec![b"a b".to_vec()]);
    }

    #[test]
    fn other_verbs_split_arguments_at_most_three() {
        let (_, command, args) = parse_all(b"apop  u   d\r\n");
        assert_eq!(command, Some(Command::Apop));
        assert_eq!(args, vec![b"u".to_vec(), b"d".to_vec()]);
        assert_eq!(parse_all(b"AUTH a b c\r\n").0, Parsed::Command);
        assert_eq!(parse_all(b"AUTH a b c d\r\n").0, Parsed::Invalid);
    }

    #[test]
    fn syntax_errors() {
        for line in [
            &b"\r\n"[..],
            b"STAT\r\n",
            b"USERS bob\r\n",
            b"US1R\r\n",
            b"NOOP\rx\n",
            b"USER a\rb\r\n",
        ] {
            assert_eq!(parse_all(line).0, Parsed::Invalid, "{line:?}");
        }
        assert_eq!(parse_all(b"STAT").0, Parsed::Again);
    }

    #[test]
    fn resumes_across_reads_and_skips_invalid_lines() {
        let mut buffer = CommandBuffer::new(128);
        let mut parser = Parser::new();
        buffer.append(b"XYZ 1");
        assert_eq!(parser.parse(&mut buffer), Parsed::Again);
        buffer.append(b"2\r\nNO");
        assert_eq!(parser.parse(&mut buffer), Parsed::Invalid);
        assert_eq!(parser.parse(&mut buffer), Parsed::Again);
        buffer.append(b"OP\r\n");
        assert_eq!(parser.parse(&mut buffer), Parsed::Command);
        assert_eq!(parser.command, Some(Command::Noop));
        assert!(parser.at_line_start());
    }

    #[test]
    fn after_auth_the_next_line_is_a_bare_response() {
        let mut buffer = CommandBuffer::new(128);
        let mut parser = Parser::new();
        buffer.append(b"AUTH PLAIN\r\nAGEAYg== x\r\n");
        assert_eq!(parser.parse(&mut buffer), Parsed::Command);
        assert!(!parser.at_line_start());
        parser.args.clear();
        parser.expect_response_at(buffer.pos);
        assert_eq!(parser.parse(&mut buffer), Parsed::Command);
        assert_eq!(parser.args, vec![b"AGEAYg==".to_vec(), b"x".to_vec()]);
    }
}
