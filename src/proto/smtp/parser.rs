//! The incremental SMTP command parser (`ngx_mail_smtp_parse_command`, reference §7.5).
//!
//! The state machine is the one POP3 shares ([`crate::proto::verb_line`]); SMTP's part:
//!
//! - a verb is 4 letters (`HELO EHLO QUIT AUTH NOOP MAIL RSET RCPT VRFY EXPN HELP`)
//!   or `STARTTLS`, case-insensitive; anything else (`DATA`, `XCLIENT`, an empty line,
//!   a leading space) is a syntax error;
//! - at most 11 arguments per line;
//! - after `AUTH` the next line is a bare SASL response.
//!
//! Arguments are kept as positions in the buffer, so the machine can take the whole
//! command text (`MAIL FROM:<a@b> SIZE=10`) as nginx does.

pub(super) use crate::proto::verb_line::Parsed;
use crate::proto::verb_line::{VerbLineParser, Verbs};

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

impl Verbs for Verb {
    const TABLE: &'static [(&'static [u8], Verb)] = &[
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
    /// nginx starts a new argument only while fewer than 11 are stored.
    const MAX_ARGS: usize = 11;

    fn starts_sasl(self) -> bool {
        self == Verb::Auth
    }
}

/// The shared verb-line parser over SMTP's verbs.
pub(super) type Parser = VerbLineParser<Verb>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::buffer::CommandBuffer;

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
