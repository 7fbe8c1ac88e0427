//! Errors that reach the user, and how they are shown.

use cfgmx_model::{Diagnostic, Diagnostics};
use codespan_reporting::diagnostic::{Diagnostic as CsDiag, Label, Severity};
use codespan_reporting::files::SimpleFiles;
use codespan_reporting::term::{self, termcolor};
use std::io::IsTerminal;

/// Why a command stopped.
#[derive(Debug)]
pub enum CliError {
    /// Bad input files, with locations (exit 2).
    Input(Diagnostics),
    /// A wrong argument (exit 2): the message says what to do instead.
    Usage(String),
    /// Something failed at run time (I/O, a tool): exit `code`.
    Runtime { message: String, code: u8 },
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
    pub fn runtime(msg: impl Into<String>) -> Self {
        CliError::Runtime {
            message: msg.into(),
            code: 2,
        }
    }
    pub fn code(&self) -> u8 {
        match self {
            CliError::Input(_) | CliError::Usage(_) => 2,
            CliError::Runtime { code, .. } => *code,
        }
    }
}

/// Prints `e` on stderr (and as JSON on stdout under `--json`); returns the exit code.
pub fn report(e: &CliError, json: bool) -> u8 {
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
        CliError::Usage(m) | CliError::Runtime { message: m, .. } => {
            if json {
                println!("{}", serde_json::json!({ "error": m }));
            }
            eprintln!("error: {m}");
        }
    }
    e.code()
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
