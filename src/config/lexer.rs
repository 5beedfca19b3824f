//! nginx's configuration tokenizer (`ngx_conf_read_token`), rewritten.
//!
//! The lexer hands out whole *statements*, as nginx does: the words of one directive
//! plus what ended them (`;` or `{`), a closing `}`, or the end of the file. The line
//! recorded for a statement is the line of its terminator, because that is the line
//! nginx puts in every message about the directive (reference §19.4).
//!
//! Rules kept from nginx, all of which change what a file means:
//! - words end at space, tab, CR, LF, `;` or `{` — but *not* at `}` (`foo}` is a word);
//! - `#` starts a comment only where a word could start;
//! - a quoted word must be followed by whitespace, `;` or `{` (`"a"b` is an error);
//! - `\` escapes the next character in quoted and bare words alike, and `\"`, `\'`,
//!   `\\`, `\t`, `\r`, `\n` are translated when the word is stored; any other
//!   `\x` keeps its backslash;
//! - `${` right after `$` does not end a word (variables such as `${name}`);
//! - one word may hold at most [`MAX_WORD`] bytes (nginx's read buffer).

use super::model::{Location, LogLevel};
use super::Diagnostic;
use std::path::{Path, PathBuf};

/// nginx reads a config file through a 4096-byte buffer; a longer word cannot fit.
pub const MAX_WORD: usize = 4096;

/// One word of a statement, with the line it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    pub text: String,
    pub line: usize,
}

/// What ended a statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Terminator {
    Semicolon,
    BlockStart,
}

/// One unit of nginx's grammar, as `ngx_conf_read_token` returns them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Statement {
    /// Words ended by `;` or `{`; `line` is the terminator's line.
    Directive {
        words: Vec<Word>,
        end: Terminator,
        line: usize,
    },
    /// A `}` where a new word could start.
    BlockEnd { line: usize },
    /// The end of the file, outside any word.
    Eof { line: usize },
}

/// A tokenizer over one file's bytes.
pub struct Lexer<'a> {
    bytes: &'a [u8],
    pos: usize,
    line: usize,
    file: PathBuf,
}

/// Where the lexer stands between two characters of a statement.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Quote {
    None,
    Single,
    Double,
}

fn is_space(ch: u8) -> bool {
    matches!(ch, b' ' | b'\t' | b'\r' | b'\n')
}

impl<'a> Lexer<'a> {
    pub fn new(bytes: &'a [u8], file: &Path) -> Self {
        Lexer {
            bytes,
            pos: 0,
            line: 1,
            file: file.to_path_buf(),
        }
    }

    pub fn file(&self) -> &Path {
        &self.file
    }

    fn error_at(&self, line: usize, message: String) -> Diagnostic {
        Diagnostic {
            level: LogLevel::Emerg,
            message,
            location: Some(Location {
                file: self.file.clone(),
                line,
            }),
        }
    }

    fn bump(&mut self) -> Option<u8> {
        let ch = *self.bytes.get(self.pos)?;
        self.pos += 1;
        if ch == b'\n' {
            self.line += 1;
        }
        Some(ch)
    }

    /// Reads the next statement.
    pub fn next_statement(&mut self) -> Result<Statement, Diagnostic> {
        let mut words: Vec<Word> = Vec::new();
        loop {
            // Between words: skip blanks and comments, look at the first character.
            let Some(ch) = self.bump() else {
                if words.is_empty() {
                    return Ok(Statement::Eof { line: self.line });
                }
                return Err(self.unexpected_eof());
            };
            match ch {
                c if is_space(c) => continue,
                b';' | b'{' => {
                    if words.is_empty() {
                        let msg = format!("unexpected \"{}\"", ch as char);
                        return Err(self.error_at(self.line, msg));
                    }
                    let end = if ch == b';' {
                        Terminator::Semicolon
                    } else {
                        Terminator::BlockStart
                    };
                    return Ok(Statement::Directive {
                        words,
                        end,
                        line: self.line,
                    });
                }
                b'}' => {
                    if !words.is_empty() {
                        return Err(self.error_at(self.line, "unexpected \"}\"".into()));
                    }
                    return Ok(Statement::BlockEnd { line: self.line });
                }
                b'#' => self.skip_comment(),
                _ => {
                    let (word, ended_by) = self.read_word(ch)?;
                    words.push(word);
                    if let Some(end) = ended_by {
                        return Ok(Statement::Directive {
                            words,
                            end,
                            line: self.line,
                        });
                    }
                }
            }
        }
    }

    fn unexpected_eof(&self) -> Diagnostic {
        self.error_at(
            self.line,
            "unexpected end of file, expecting \";\" or \"}\"".into(),
        )
    }

    fn skip_comment(&mut self) {
        while let Some(ch) = self.bump() {
            if ch == b'\n' {
                return;
            }
        }
    }

    /// Reads one word whose first character `first` was already consumed. Returns the
    /// word and, when a `;` or `{` ended it, that terminator.
    fn read_word(&mut self, first: u8) -> Result<(Word, Option<Terminator>), Diagnostic> {
        let start_line = self.line;
        let quote = match first {
            b'"' => Quote::Double,
            b'\'' => Quote::Single,
            _ => Quote::None,
        };
        let start = if quote == Quote::None {
            self.pos - 1
        } else {
            self.pos
        };
        // `escaped`: the previous byte was a backslash; `after_dollar`: it was a `$`.
        let mut escaped = first == b'\\';
        let mut after_dollar = first == b'$';
        loop {
            if self.pos - start >= MAX_WORD {
                return Err(self.too_long(start, start_line, quote));
            }
            let Some(ch) = self.bump() else {
                return Err(self.unexpected_eof());
            };
            if escaped {
                escaped = false;
                continue;
            }
            if ch == b'{' && after_dollar {
                after_dollar = false;
                continue;
            }
            after_dollar = false;
            match ch {
                b'\\' => escaped = true,
                b'$' => after_dollar = true,
                b'"' if quote == Quote::Double => break,
                b'\'' if quote == Quote::Single => break,
                c if quote == Quote::None && (is_space(c) || c == b';' || c == b'{') => {
                    let word = self.make_word(start, self.pos - 1, start_line);
                    let end = match c {
                        b';' => Some(Terminator::Semicolon),
                        b'{' => Some(Terminator::BlockStart),
                        _ => None,
                    };
                    return Ok((word, end));
                }
                _ => {}
            }
        }
        // A closing quote: the word is complete, and something must separate it.
        let word = self.make_word(start, self.pos - 1, start_line);
        match self.bump() {
            None => Err(self.unexpected_eof()),
            Some(c) if is_space(c) => Ok((word, None)),
            Some(b';') => Ok((word, Some(Terminator::Semicolon))),
            Some(b'{') => Ok((word, Some(Terminator::BlockStart))),
            Some(b')') => {
                // nginx lets `)` follow a quoted word and starts a new word with it.
                self.pos -= 1;
                Ok((word, None))
            }
            Some(c) => Err(self.error_at(self.line, format!("unexpected \"{}\"", c as char))),
        }
    }

    fn too_long(&self, start: usize, line: usize, quote: Quote) -> Diagnostic {
        let msg = match quote {
            Quote::Double => {
                "too long parameter, probably missing terminating \"\"\" character".into()
            }
            Quote::Single => {
                "too long parameter, probably missing terminating \"'\" character".into()
            }
            Quote::None => {
                let head = String::from_utf8_lossy(&self.bytes[start..start + 10]);
                format!("too long parameter \"{head}...\" started")
            }
        };
        self.error_at(line, msg)
    }

    fn make_word(&self, start: usize, end: usize, line: usize) -> Word {
        Word {
            text: unescape(&self.bytes[start..end]),
            line,
        }
    }
}

/// Applies nginx's escapes to a raw word.
fn unescape(raw: &[u8]) -> String {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'\\' {
            match raw.get(i + 1) {
                Some(&c @ (b'"' | b'\'' | b'\\')) => {
                    out.push(c);
                    i += 2;
                    continue;
                }
                Some(b't') => {
                    out.push(b'\t');
                    i += 2;
                    continue;
                }
                Some(b'r') => {
                    out.push(b'\r');
                    i += 2;
                    continue;
                }
                Some(b'n') => {
                    out.push(b'\n');
                    i += 2;
                    continue;
                }
                _ => {}
            }
        }
        out.push(raw[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(text: &str) -> Result<Vec<Statement>, String> {
        let mut lx = Lexer::new(text.as_bytes(), Path::new("t.conf"));
        let mut out = Vec::new();
        loop {
            match lx.next_statement() {
                Ok(Statement::Eof { .. }) => return Ok(out),
                Ok(s) => out.push(s),
                Err(d) => return Err(d.to_string()),
            }
        }
    }

    fn words(s: &Statement) -> Vec<&str> {
        match s {
            Statement::Directive { words, .. } => words.iter().map(|w| w.text.as_str()).collect(),
            _ => vec![],
        }
    }

    #[test]
    fn words_terminators_and_lines() {
        let st = all("a b;\nmail {\n x\n  y;\n}\n").unwrap();
        assert_eq!(words(&st[0]), ["a", "b"]);
        assert_eq!(
            st[1],
            Statement::Directive {
                words: vec![Word {
                    text: "mail".into(),
                    line: 2
                }],
                end: Terminator::BlockStart,
                line: 2
            }
        );
        // A directive spread over lines is reported at its terminator's line.
        match &st[2] {
            Statement::Directive { words, line, .. } => {
                assert_eq!(*line, 4);
                assert_eq!(words[0].line, 3);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(st[3], Statement::BlockEnd { line: 5 });
    }

    #[test]
    fn quotes_and_escapes() {
        let st = all(r#"x "SIZE 1" 'a\'b' "q\"\\\t\r\n" a\;b "" c\d;"#).unwrap();
        assert_eq!(
            words(&st[0]),
            ["x", "SIZE 1", "a'b", "q\"\\\t\r\n", "a\\;b", "", "c\\d"]
        );
    }

    #[test]
    fn comments_only_at_word_start() {
        let st = all("a#b c # comment ;\n d;\n#x\n").unwrap();
        assert_eq!(words(&st[0]), ["a#b", "c", "d"]);
    }

    #[test]
    fn brace_inside_word_and_variables() {
        let st = all("a}b ${x} ${;").unwrap();
        assert_eq!(words(&st[0]), ["a}b", "${x}", "${"]);
    }

    #[test]
    fn quoted_word_needs_separator() {
        assert_eq!(
            all("a \"b\"c;").unwrap_err(),
            "unexpected \"c\" in t.conf:1"
        );
        assert!(all("a \"b\";").is_ok());
        assert!(all("a \"b\"{}").is_ok());
    }

    #[test]
    fn syntax_errors_with_lines() {
        assert_eq!(all("\n;").unwrap_err(), "unexpected \";\" in t.conf:2");
        assert_eq!(all("{").unwrap_err(), "unexpected \"{\" in t.conf:1");
        assert_eq!(all("a }").unwrap_err(), "unexpected \"}\" in t.conf:1");
        assert_eq!(
            all("a b\n\n").unwrap_err(),
            "unexpected end of file, expecting \";\" or \"}\" in t.conf:3"
        );
        assert_eq!(
            all("a \"b\n").unwrap_err(),
            "unexpected end of file, expecting \";\" or \"}\" in t.conf:2"
        );
    }

    #[test]
    fn word_length_is_bounded() {
        let long = format!("a {};", "x".repeat(MAX_WORD));
        assert_eq!(
            all(&long).unwrap_err(),
            "too long parameter \"xxxxxxxxxx...\" started in t.conf:1"
        );
        let quoted = format!("a \"{}", "x".repeat(MAX_WORD));
        assert_eq!(
            all(&quoted).unwrap_err(),
            "too long parameter, probably missing terminating \"\"\" character in t.conf:1"
        );
        assert!(all(&format!("a {};", "x".repeat(MAX_WORD - 1))).is_ok());
    }
}
