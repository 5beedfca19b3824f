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
//!
//! The state machine is the one SMTP shares ([`crate::proto::verb_line`]).

pub(super) use crate::proto::verb_line::Parsed;
use crate::proto::verb_line::{VerbLineParser, Verbs};

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

impl Verbs for Command {
    const TABLE: &'static [(&'static [u8], Command)] = &[
        (b"USER", Command::User),
        (b"PASS", Command::Pass),
        (b"APOP", Command::Apop),
        (b"QUIT", Command::Quit),
        (b"CAPA", Command::Capa),
        (b"AUTH", Command::Auth),
        (b"NOOP", Command::Noop),
        (b"STLS", Command::Stls),
    ];
    const MAX_ARGS: usize = 3;

    fn starts_sasl(self) -> bool {
        self == Command::Auth
    }

    fn keeps_spaces(self) -> bool {
        matches!(self, Command::User | Command::Pass)
    }
}

/// The shared verb-line parser over POP3's verbs.
pub(super) type Parser = VerbLineParser<Command>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::buffer::CommandBuffer;

    fn parse_all(input: &[u8]) -> (Parsed, Option<Command>, Vec<Vec<u8>>) {
        let mut buffer = CommandBuffer::new(128);
        buffer.append(input);
        let mut parser = Parser::new();
        let parsed = parser.parse(&mut buffer);
        let args = parser.args(&buffer).into_iter().map(<[u8]>::to_vec);
        (parsed, parser.verb(), args.collect())
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
        assert_eq!(parser.verb(), Some(Command::Noop));
        assert!(parser.at_line_start());
    }

    #[test]
    fn after_auth_the_next_line_is_a_bare_response() {
        let mut buffer = CommandBuffer::new(128);
        let mut parser = Parser::new();
        buffer.append(b"AUTH PLAIN\r\nAGEAYg== x\r\n");
        assert_eq!(parser.parse(&mut buffer), Parsed::Command);
        assert!(!parser.at_line_start());
        parser.clear_args();
        parser.expect_response_at(buffer.pos);
        assert_eq!(parser.parse(&mut buffer), Parsed::Command);
        assert_eq!(parser.args(&buffer), [&b"AGEAYg=="[..], b"x"]);
    }
}
