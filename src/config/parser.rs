//! Statements → a raw tree of directives and blocks, with `include` resolved.
//!
//! nginx acts on each directive as soon as it is read, so an error in directive 3 is
//! reported even if the file has a syntax error at directive 9. To keep that order
//! without interleaving parsing and building, a syntax error does not discard the
//! tree: the blocks that were open when it happened are marked `truncated`, and the
//! builder reports the error once it has walked everything read before it.
//!
//! `include` is spliced in place (its directives become siblings of the `include`),
//! everywhere, `http {}` and `stream {}` included, as nginx reads them.

use super::lexer::{Lexer, Statement, Terminator};
use super::model::{Location, LogLevel};
use super::Diagnostic;
use std::path::{Path, PathBuf};

/// Includes nested deeper than this are refused (nginx recurses until it runs out of
/// file descriptors; a bound turns an include loop into a clear message).
const MAX_INCLUDE_DEPTH: usize = 32;

/// One directive: its name, arguments, and (for `name ... {`) its block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    pub name: String,
    pub args: Vec<String>,
    /// The line of the `;` or `{` that ended the directive.
    pub location: Location,
    pub block: Option<Block>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Block {
    pub directives: Vec<Directive>,
    /// The parse stopped inside this block; [`Parsed::error`] says why.
    pub truncated: bool,
    /// Where the closing `}` stands (None for the file level or a truncated block).
    pub end: Option<Location>,
}

/// A parsed file: the tree, and the syntax error that cut it short, if any.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub root: Block,
    pub error: Option<Diagnostic>,
    /// The files read, for `-T`.
    pub files: Vec<SourceFile>,
}

/// One config file as read from disk, kept for `-T`'s dump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    pub path: PathBuf,
    pub text: Vec<u8>,
}

/// The file name nginx gives `-g` directives in messages (`... in command line`).
pub const COMMAND_LINE: &str = "command line";

/// Parses `text` as the main config file `path`. `prefix` is the directory relative
/// `include` paths are resolved against (the main file's directory, §19.16).
pub fn parse(text: &[u8], path: &Path, prefix: &Path) -> Parsed {
    let mut parser = Parser {
        prefix: prefix.to_path_buf(),
        error: None,
        depth: 0,
        files: vec![SourceFile {
            path: path.to_path_buf(),
            text: text.to_vec(),
        }],
    };
    let mut root = Block::default();
    let mut lexer = Lexer::new(text, path);
    parser.fill(&mut lexer, &mut root, Level::File);
    Parsed {
        root,
        error: parser.error,
        files: parser.files,
    }
}

/// `-g DIRECTIVES`: nginx reads them before the file, as if they stood at its top, and
/// names them `command line` in messages. Blocks are refused, as by nginx.
pub fn prepend_globals(parsed: &mut Parsed, globals: &[u8], conf_dir: &Path) {
    let mut params = parse(globals, Path::new(COMMAND_LINE), conf_dir);
    if let Some(e) = params.error.as_mut() {
        // nginx's tokenizer words the end of a -g string differently from a file's.
        if e.message.starts_with("unexpected end of file") {
            e.message = "unexpected end of parameter, expecting \";\"".into();
        }
    }
    if let Some(d) = params.root.directives.iter().find(|d| d.block.is_some()) {
        let msg = "block directives are not supported in -g option".to_string();
        params.error = Some(emerg(msg, Some(d.location.clone())));
        params.root.directives.clear();
        params.root.truncated = true;
    }
    if params.error.is_some() {
        // nginx stops at an error in -g before reading the file.
        parsed.root = params.root;
        parsed.error = params.error;
        return;
    }
    let file_directives = std::mem::take(&mut parsed.root.directives);
    parsed.root.directives = params.root.directives;
    parsed.root.directives.extend(file_directives);
    parsed.files.extend(params.files.into_iter().skip(1));
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    /// The top of a file (the main one or an included one at top level).
    File,
    /// Inside `{ ... }` in the file being read.
    Block,
}

struct Parser {
    prefix: PathBuf,
    error: Option<Diagnostic>,
    depth: usize,
    files: Vec<SourceFile>,
}

fn emerg(message: String, location: Option<Location>) -> Diagnostic {
    Diagnostic {
        level: LogLevel::Emerg,
        message,
        location,
    }
}

impl Parser {
    /// Reads statements into `block` until its end. Returns false when parsing must
    /// stop (the error is then in `self.error`, and `block` is marked truncated).
    ///
    /// `level` says whether a `}` or the end of the file closes this block;
    /// an included file's statements are read with `Level::File` into the *current*
    /// block, since the file must end before the block does.
    fn fill(&mut self, lexer: &mut Lexer, block: &mut Block, level: Level) -> bool {
        loop {
            let statement = match lexer.next_statement() {
                Ok(s) => s,
                Err(e) => return self.fail(block, e),
            };
            let location = |line| Location {
                file: lexer.file().to_path_buf(),
                line,
            };
            match statement {
                Statement::Eof { line } => {
                    if level == Level::Block {
                        let msg = "unexpected end of file, expecting \"}\"".to_string();
                        return self.fail(block, emerg(msg, Some(location(line))));
                    }
                    return true;
                }
                Statement::BlockEnd { line } => {
                    if level == Level::File {
                        let msg = "unexpected \"}\"".to_string();
                        return self.fail(block, emerg(msg, Some(location(line))));
                    }
                    block.end = Some(location(line));
                    return true;
                }
                Statement::Directive { words, end, line } => {
                    let mut args: Vec<String> = words.into_iter().map(|w| w.text).collect();
                    let name = args.remove(0);
                    let location = location(line);
                    if name == "include" && end == Terminator::Semicolon {
                        if !self.include(&args, &location, block) {
                            block.truncated = true;
                            return false;
                        }
                        continue;
                    }
                    let mut directive = Directive {
                        name,
                        args,
                        location,
                        block: None,
                    };
                    if end == Terminator::BlockStart {
                        let mut inner = Block::default();
                        let ok = self.fill(lexer, &mut inner, Level::Block);
                        directive.block = Some(inner);
                        block.directives.push(directive);
                        if !ok {
                            block.truncated = true;
                            return false;
                        }
                    } else {
                        block.directives.push(directive);
                    }
                }
            }
        }
    }

    fn fail(&mut self, block: &mut Block, error: Diagnostic) -> bool {
        block.truncated = true;
        self.error = Some(error);
        false
    }

    /// Splices the files named by `include ARG;` into `block`. A wrong argument count
    /// is left in the tree as a plain directive for the builder to report in order.
    fn include(&mut self, args: &[String], location: &Location, block: &mut Block) -> bool {
        if args.len() != 1 {
            block.directives.push(Directive {
                name: "include".into(),
                args: args.to_vec(),
                location: location.clone(),
                block: None,
            });
            return true;
        }
        let pattern = self.prefix.join(&args[0]);
        let files = if args[0].contains(['*', '?', '[']) {
            match expand_glob(&pattern) {
                Ok(files) => files,
                Err(msg) => return self.fail(block, emerg(msg, Some(location.clone()))),
            }
        } else {
            vec![pattern]
        };
        for file in files {
            if !self.include_file(&file, location, block) {
                return false;
            }
        }
        true
    }

    fn include_file(&mut self, file: &Path, location: &Location, block: &mut Block) -> bool {
        if self.depth >= MAX_INCLUDE_DEPTH {
            let msg = format!("too deeply nested include of \"{}\"", file.display());
            return self.fail(block, emerg(msg, Some(location.clone())));
        }
        let text = match read_config(file) {
            Ok(t) => t,
            Err(mut d) => {
                if d.level == LogLevel::Emerg {
                    d.location = Some(location.clone());
                }
                return self.fail(block, d);
            }
        };
        if !self.files.iter().any(|f| f.path == file) {
            self.files.push(SourceFile {
                path: file.to_path_buf(),
                text: text.clone(),
            });
        }
        self.depth += 1;
        let mut lexer = Lexer::new(&text, file);
        let ok = self.fill(&mut lexer, block, Level::File);
        self.depth -= 1;
        ok
    }
}

/// Glob expansion the way nginx's `glob(3)` does it: sorted, and `*` does not match a
/// leading dot. No match is not an error.
fn expand_glob(pattern: &Path) -> Result<Vec<PathBuf>, String> {
    let text = pattern.to_string_lossy();
    let options = glob::MatchOptions {
        case_sensitive: true,
        require_literal_separator: true,
        require_literal_leading_dot: true,
    };
    let paths =
        glob::glob_with(&text, options).map_err(|e| format!("glob() \"{text}\" failed ({e})"))?;
    let mut files: Vec<PathBuf> = paths.filter_map(Result::ok).collect();
    files.sort();
    Ok(files)
}

/// Reads a config file. Errors have no location: the caller adds the `include`'s
/// for an open failure; reading a directory is nginx's location-less `[crit]`.
pub fn read_config(file: &Path) -> Result<Vec<u8>, Diagnostic> {
    std::fs::read(file).map_err(|e| {
        let (level, call) = match e.raw_os_error() {
            Some(libc::EISDIR) => (LogLevel::Crit, "pread()"),
            _ => (LogLevel::Emerg, "open()"),
        };
        let message = format!("{call} \"{}\" failed ({})", file.display(), os_error(&e));
        Diagnostic {
            level,
            message,
            location: None,
        }
    })
}

pub use crate::error::os_error;

#[cfg(test)]
mod tests {
    use super::*;

    fn names(block: &Block) -> Vec<String> {
        block.directives.iter().map(|d| d.name.clone()).collect()
    }

    fn tempdir(tag: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("mailproxy-parser-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("conf.d")).unwrap();
        dir
    }

    #[test]
    fn blocks_nest_and_record_their_end() {
        let p = parse(
            b"a 1;\nmail {\n server {\n }\n}\n",
            Path::new("m.conf"),
            Path::new("/"),
        );
        assert!(p.error.is_none());
        assert_eq!(names(&p.root), ["a", "mail"]);
        let mail = p.root.directives[1].block.as_ref().unwrap();
        assert_eq!(mail.end.as_ref().unwrap().line, 5);
        assert_eq!(names(mail), ["server"]);
    }

    #[test]
    fn syntax_error_keeps_what_came_before() {
        let p = parse(
            b"a;\nmail {\n b;\n c d\n",
            Path::new("m.conf"),
            Path::new("/"),
        );
        assert_eq!(
            p.error.unwrap().to_string(),
            "unexpected end of file, expecting \";\" or \"}\" in m.conf:5"
        );
        assert!(p.root.truncated);
        let mail = p.root.directives[1].block.as_ref().unwrap();
        assert!(mail.truncated);
        assert_eq!(names(mail), ["b"]);
    }

    #[test]
    fn stray_brace_and_missing_brace() {
        let p = parse(b"a;\n}\n", Path::new("m.conf"), Path::new("/"));
        assert_eq!(p.error.unwrap().to_string(), "unexpected \"}\" in m.conf:2");
        let p = parse(b"mail {\n", Path::new("m.conf"), Path::new("/"));
        assert_eq!(
            p.error.unwrap().to_string(),
            "unexpected end of file, expecting \"}\" in m.conf:2"
        );
    }

    #[test]
    fn includes_globs_nested_and_relative_to_main_dir() {
        let dir = tempdir("inc");
        std::fs::write(dir.join("conf.d/b.conf"), "b;\ninclude conf.d/inner.inc;\n").unwrap();
        std::fs::write(dir.join("conf.d/a.conf"), "a;\n").unwrap();
        std::fs::write(dir.join("conf.d/.hidden.conf"), "hidden;\n").unwrap();
        std::fs::write(dir.join("conf.d/inner.inc"), "inner;\n").unwrap();
        let main = dir.join("nginx.conf");
        let text = b"first;\nmail {\ninclude conf.d/*.conf;\ninclude none/*.conf;\n}\nlast;\n";
        let p = parse(text, &main, &dir);
        assert!(p.error.is_none(), "{:?}", p.error);
        let mail = p.root.directives[1].block.as_ref().unwrap();
        assert_eq!(names(mail), ["a", "b", "inner"]);
        assert_eq!(
            mail.directives[2].location.file,
            dir.join("conf.d/inner.inc")
        );
        assert_eq!(mail.directives[1].location.line, 1);
        assert_eq!(names(&p.root), ["first", "mail", "last"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn missing_include_and_errors_inside_includes() {
        let dir = tempdir("miss");
        let main = dir.join("nginx.conf");
        let p = parse(b"\ninclude nope.conf;\n", &main, &dir);
        assert_eq!(
            p.error.unwrap().to_string(),
            format!(
                "open() \"{}\" failed (2: No such file or directory) in {}:2",
                dir.join("nope.conf").display(),
                main.display()
            )
        );
        std::fs::write(dir.join("bad.conf"), "x;\n}\n").unwrap();
        let p = parse(b"mail {\ninclude bad.conf;\n}\n", &main, &dir);
        assert_eq!(
            p.error.unwrap().to_string(),
            format!("unexpected \"}}\" in {}:2", dir.join("bad.conf").display())
        );
        std::fs::write(dir.join("loop.conf"), "include loop.conf;\n").unwrap();
        let p = parse(b"include loop.conf;\n", &main, &dir);
        assert!(p
            .error
            .unwrap()
            .message
            .starts_with("too deeply nested include"));
        let p = parse(b"include conf.d;\n", &main, &dir);
        let e = p.error.unwrap();
        assert_eq!(e.level, LogLevel::Crit);
        let want = format!(
            "pread() \"{}\" failed (21: Is a directory)",
            dir.join("conf.d").display()
        );
        assert_eq!(e.to_string(), want);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// nginx reads http{}'s includes too (Debian's `conf.d/` is included there).
    #[test]
    fn http_contents_are_expanded() {
        let p = parse(
            b"http {\n include /nonexistent/x.conf;\n}\n",
            Path::new("m.conf"),
            Path::new("/"),
        );
        let error = p.error.expect("a missing include inside http fails");
        assert!(error
            .message
            .starts_with("open() \"/nonexistent/x.conf\" failed"));
    }
}
