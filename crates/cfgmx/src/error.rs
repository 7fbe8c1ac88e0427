//! Errors that reach the user, and how they are shown.

use cfgmx_model::{Diagnostic, Diagnostics};
use codespan_reporting::diagnostic::{Diagnostic as CsDiag, Label, Severity};
use codespan_reporting::files::SimpleFiles;
use codespan_reporting::term::{self, termcolor};
use std::io::IsTerminal;

/// How cfgmx exits: the one table of exit codes. `--help` prints [`Exit::TABLE`] (cli.rs) and
/// the README says the same words (`tests/tests/output.rs` checks they agree).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: done; every variant asked for passed.
    Ok,
    /// 1: something failed: a variant or its tests, or the run itself (an I/O error, a tool
    /// that could not be run). Input and arguments were fine; running again may succeed.
    Failed,
    /// 2: bad input or usage (a data file, an argument, a build root in use): nothing was done.
    Usage,
    /// 101: an internal error, a bug in cfgmx (a panic): please report it.
    Internal,
    /// 130: interrupted (Ctrl-C); finished work is recorded.
    Interrupted,
}

impl Exit {
    /// Every exit code with what it means, as `--help` and the README say it.
    pub const TABLE: [(Exit, &'static str); 5] = [
        (Exit::Ok, "ok"),
        (
            Exit::Failed,
            "a variant, a test or the run failed (I/O, a tool)",
        ),
        (Exit::Usage, "bad input or usage"),
        (Exit::Internal, "internal error (a bug)"),
        (Exit::Interrupted, "interrupted"),
    ];

    pub fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Failed => 1,
            Exit::Usage => 2,
            Exit::Internal => 101,
            Exit::Interrupted => 130,
        }
    }

    /// The table as one line: `0 ok; 1 ...; 130 interrupted` (the meanings hold commas).
    pub fn table_line() -> String {
        Exit::TABLE
            .iter()
            .map(|(e, what)| format!("{} {what}", e.code()))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(e: Exit) -> Self {
        std::process::ExitCode::from(e.code())
    }
}

/// A failure's cause, kept for the message (`std::error::Error::source`).
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a command stopped.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad input files, with locations (exit 2).
    #[error("bad input: {} problem(s) in the input files", .0.diagnostics.len())]
    Input(Diagnostics),
    /// A wrong argument (exit 2): the message says what to do instead.
    #[error("{0}")]
    Usage(String),
    /// Something failed at run time (I/O, a tool): exit 1. `message` says what cfgmx was
    /// doing; `source`, when there is one, why it failed.
    #[error("{message}")]
    Runtime {
        message: String,
        #[source]
        source: Option<Cause>,
    },
}

pub type Result<T> = std::result::Result<T, CliError>;

impl From<Diagnostics> for CliError {
    fn from(d: Diagnostics) -> Self {
        CliError::Input(d)
    }
}

impl CliError {
    pub fn usage(msg: impl Into<String>) -> Self {
        CliError::Usage(msg.into())
    }
    /// A run-time failure whose message says it all.
    pub fn runtime(msg: impl Into<String>) -> Self {
        CliError::Runtime {
            message: msg.into(),
            source: None,
        }
    }
    /// A run-time failure of `what` (`cannot write FILE`) because of `cause`.
    pub fn caused(what: impl Into<String>, cause: impl Into<Cause>) -> Self {
        CliError::Runtime {
            message: what.into(),
            source: Some(cause.into()),
        }
    }
    pub fn exit(&self) -> Exit {
        match self {
            CliError::Input(_) | CliError::Usage(_) => Exit::Usage,
            CliError::Runtime { .. } => Exit::Failed,
        }
    }
    /// The message with its causes, `what: why: why`, as one line.
    pub fn chain(&self) -> String {
        let mut s = self.to_string();
        let mut cause = std::error::Error::source(self);
        while let Some(c) = cause {
            s.push_str(&format!(": {c}"));
            cause = c.source();
        }
        s
    }
}

/// Where an error is said: always on stderr; under `--json`, also as JSON on stdout, where a
/// script reads the command's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Said {
    OnStderr,
    AlsoAsJson,
}

/// Prints `e` as `said` says; returns the exit code.
pub fn report(e: &CliError, said: Said) -> Exit {
    let json = said == Said::AlsoAsJson;
    match e {
        CliError::Input(d) => {
            if json {
                println!(
                    "{}",
                    serde_json::json!({ "error": "bad input", "diagnostics": d.diagnostics })
                );
            }
            print_diagnostics(d);
        }
        CliError::Usage(_) | CliError::Runtime { .. } => {
            let m = e.chain();
            if json {
                println!("{}", serde_json::json!({ "error": m }));
            }
            eprintln!("error: {m}");
        }
    }
    e.exit()
}

/// What a panic prints (the hook in main.rs): an internal error, where, and what to do.
pub fn internal_error_message(what: &str, location: Option<String>) -> String {
    let at = location.map(|l| format!(" at {l}")).unwrap_or_default();
    format!(
        "error: internal error (a bug in cfgmx{at}): {what}\nhint: please report it with the command you ran and this message; exit code {}",
        Exit::Internal.code()
    )
}

fn color() -> termcolor::ColorChoice {
    if std::env::var_os("NO_COLOR").is_some() || !std::io::stderr().is_terminal() {
        termcolor::ColorChoice::Never
    } else {
        termcolor::ColorChoice::Auto
    }
}

/// Prints located diagnostics with a caret excerpt: `file:line:col`, message, expectation.
pub fn print_diagnostics(d: &Diagnostics) {
    emit(&d.diagnostics, &d.sources, Severity::Error);
}

/// Prints warnings (non-fatal diagnostics) the same way.
pub fn print_warnings(ws: &[Diagnostic], sources: &[cfgmx_model::Source]) {
    emit(ws, sources, Severity::Warning);
}

fn emit(diags: &[Diagnostic], sources: &[cfgmx_model::Source], severity: Severity) {
    if diags.is_empty() {
        return;
    }
    let mut files = SimpleFiles::new();
    let ids: Vec<(String, usize)> = sources
        .iter()
        .map(|s| {
            (
                s.name.clone(),
                files.add(s.name.clone(), s.text.to_string()),
            )
        })
        .collect();
    let writer = termcolor::StandardStream::stderr(color());
    let config = term::Config::default();
    for diag in diags {
        let mut cs = to_codespan(diag, &ids, sources);
        cs.severity = severity;
        if term::emit(&mut writer.lock(), &config, &files, &cs).is_err() {
            eprintln!(
                "{}: {diag}",
                if severity == Severity::Error {
                    "error"
                } else {
                    "warning"
                }
            );
        }
    }
}

/// Longest source line shown in an excerpt: a machine-made line (thousands of nested
/// brackets) would bury the message, so its position is given as `file:line:col` instead.
const MAX_EXCERPT_LINE: usize = 300;

fn excerpt_fits(text: &str, span: &std::ops::Range<usize>) -> bool {
    let clamp = |i: usize| {
        let mut i = i.min(text.len());
        while !text.is_char_boundary(i) {
            i -= 1;
        }
        i
    };
    let (a, b) = (clamp(span.start), clamp(span.end.max(span.start)));
    let start = text[..a].rfind('\n').map_or(0, |i| i + 1);
    let end = text[b..].find('\n').map_or(text.len(), |i| b + i);
    text[start..end]
        .split('\n')
        .all(|l| l.len() <= MAX_EXCERPT_LINE)
}

fn to_codespan(
    diag: &Diagnostic,
    ids: &[(String, usize)],
    sources: &[cfgmx_model::Source],
) -> CsDiag<usize> {
    let mut cs = CsDiag::error().with_message(&diag.message);
    let file_id = ids.iter().find(|(n, _)| *n == diag.file).map(|(_, i)| *i);
    let fits = |span: &std::ops::Range<usize>| {
        sources
            .iter()
            .find(|s| s.name == diag.file)
            .is_none_or(|s| excerpt_fits(&s.text, span))
    };
    let mut notes = Vec::new();
    match (file_id, &diag.span) {
        (Some(id), Some(span)) if fits(span) => {
            let label = Label::primary(id, span.clone());
            let label = match &diag.expected {
                Some(e) => label.with_message(format!("expected {e}")),
                None => label,
            };
            cs = cs.with_labels(vec![label]);
        }
        _ => {
            let mut loc = diag.file.clone();
            if let (Some(l), Some(c)) = (diag.line, diag.column) {
                loc = format!("{loc}:{l}:{c}");
            }
            notes.push(format!("in {loc}"));
            if let Some(e) = &diag.expected {
                notes.push(format!("expected {e}"));
            }
        }
    }
    notes.extend(diag.notes.iter().cloned());
    cs.with_notes(notes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_chain_is_said_after_the_message() {
        let io = std::io::Error::new(std::io::ErrorKind::StorageFull, "No space left on device");
        let e = CliError::caused("cannot write out/x.json", io);
        assert_eq!(
            e.chain(),
            "cannot write out/x.json: No space left on device"
        );
        assert!(std::error::Error::source(&e).is_some());
        assert_eq!(e.exit(), Exit::Failed);
        assert_eq!(CliError::usage("no").exit(), Exit::Usage);
    }

    #[test]
    fn the_table_has_each_code_once_in_order() {
        let codes: Vec<u8> = Exit::TABLE.iter().map(|(e, _)| e.code()).collect();
        assert_eq!(codes, [0, 1, 2, 101, 130]);
        assert!(Exit::table_line().starts_with("0 ok; 1 a variant"));
    }

    #[test]
    fn a_panic_says_internal_error_and_how_to_report_it() {
        let m = internal_error_message("index out of bounds", Some("src/x.rs:3:4".into()));
        assert!(m.starts_with(
            "error: internal error (a bug in cfgmx at src/x.rs:3:4): index out of bounds\n"
        ));
        assert!(m.contains("please report it"), "{m}");
    }
}
