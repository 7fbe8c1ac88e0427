//! Located diagnostics for data files (matrices, descriptors, templates).
//!
//! The model never prints: it returns [`Diagnostic`]s that carry the file name, the byte span,
//! the 1-based line and column and what was expected. The CLI renders them with a caret excerpt.

use serde::Serialize;
use std::fmt;
use std::ops::Range;
use std::sync::Arc;

/// How much of a data file its parser checks: all of a user's file; of a builtin one, what is
/// cheap, since this crate's tests hold every builtin file to the rest (compiling every
/// pattern and parsing every descriptor at each start-up would cost every run).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Checks {
    All,
    Cheap,
}

impl Checks {
    pub(crate) fn of(src: &Source) -> Checks {
        if src.name.starts_with("builtin:") {
            Checks::Cheap
        } else {
            Checks::All
        }
    }
}

/// A source text with its display name, kept so diagnostics can show an excerpt.
#[derive(Debug, Clone)]
pub struct Source {
    pub name: String,
    pub text: Arc<str>,
}

impl Source {
    pub fn new(name: impl Into<String>, text: impl Into<Arc<str>>) -> Self {
        Source {
            name: name.into(),
            text: text.into(),
        }
    }

    /// Byte offset of a 1-based line and column (the inverse of [`Source::line_col`], for
    /// positions other parsers report, such as serde_json's); clamped to the text.
    pub fn offset(&self, line: usize, col: usize) -> usize {
        let start: usize = self
            .text
            .split_inclusive('\n')
            .take(line.saturating_sub(1))
            .map(str::len)
            .sum();
        let rest = &self.text[start.min(self.text.len())..];
        rest.char_indices()
            .nth(col.saturating_sub(1))
            .map_or(self.text.len(), |(b, _)| start + b)
    }

    /// 1-based (line, column) of a byte offset; the column counts characters, not bytes.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let mut off = offset;
        while off > 0 && !self.text.is_char_boundary(off) {
            off -= 1;
        }
        let before = &self.text[..off];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
        let col = before[line_start..].chars().count() + 1;
        (line, col)
    }
}

/// One problem in one input file, with where it is and what was expected.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: String,
    /// Byte range in the file, when the problem has a place.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub span: Option<Range<usize>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
    pub message: String,
    /// What the file should have had there, phrased for the user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    /// Further notes (e.g. the other place of a duplicate).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl Diagnostic {
    pub fn at(src: &Source, span: Range<usize>, message: impl Into<String>) -> Self {
        let (line, column) = src.line_col(span.start);
        Diagnostic {
            file: src.name.clone(),
            span: Some(span),
            line: Some(line),
            column: Some(column),
            message: message.into(),
            expected: None,
            notes: Vec::new(),
        }
    }

    /// A problem with the whole file (no position), e.g. it could not be read.
    pub fn file(name: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic {
            file: name.into(),
            span: None,
            line: None,
            column: None,
            message: message.into(),
            expected: None,
            notes: Vec::new(),
        }
    }

    pub fn expected(mut self, what: impl Into<String>) -> Self {
        self.expected = Some(what.into());
        self
    }

    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let (Some(l), Some(c)) = (self.line, self.column) {
            write!(f, ":{l}:{c}")?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(e) = &self.expected {
            write!(f, " (expected {e})")?;
        }
        Ok(())
    }
}

/// All the problems found in one load; never empty.
#[derive(Debug, Clone, Serialize)]
pub struct Diagnostics {
    pub diagnostics: Vec<Diagnostic>,
    /// The sources the diagnostics point into, for excerpts.
    #[serde(skip)]
    pub sources: Vec<Source>,
}

impl Diagnostics {
    pub fn one(d: Diagnostic) -> Self {
        Diagnostics {
            diagnostics: vec![d],
            sources: Vec::new(),
        }
    }
    pub fn with_source(mut self, src: &Source) -> Self {
        if !self.sources.iter().any(|s| s.name == src.name) {
            self.sources.push(src.clone());
        }
        self
    }
    pub fn extend(&mut self, other: Diagnostics) {
        self.diagnostics.extend(other.diagnostics);
        for s in other.sources {
            if !self.sources.iter().any(|x| x.name == s.name) {
                self.sources.push(s);
            }
        }
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// Deserialises a TOML data file, refusing any string or key that holds a NUL character.
///
/// A NUL can reach a value only through a `\u0000` escape (TOML forbids the raw byte), and no
/// value with one can be used: the OS cuts arguments, environment and paths at NUL, so a flag
/// or a variable would silently become something shorter. Refusing it here covers matrices,
/// descriptors and providers alike.
pub fn parse_toml<T: serde::de::DeserializeOwned>(src: &Source) -> Result<T, Diagnostics> {
    let raw: T = toml::from_str(&src.text)
        .map_err(|e| Diagnostics::one(from_toml_error(src, &e)).with_source(src))?;
    // Only an escape can produce a NUL, so most files skip the second parse.
    let escape = ["\\u0000", "\\U00000000"]
        .iter()
        .filter_map(|e| src.text.find(e).map(|i| (i, e.len())))
        .min();
    if let Some((at, len)) = escape {
        let has_nul = toml::from_str::<toml::Table>(&src.text)
            .map(|t| table_has_nul(&t))
            .unwrap_or(false);
        if has_nul {
            return Err(Diagnostics::one(
                Diagnostic::at(src, at..at + len, "a NUL character in a value").expected(
                    "values without NUL (programs, environments and paths cannot carry one)",
                ),
            )
            .with_source(src));
        }
    }
    Ok(raw)
}

fn table_has_nul(t: &toml::Table) -> bool {
    t.iter().any(|(k, v)| k.contains('\0') || value_has_nul(v))
}

fn value_has_nul(v: &toml::Value) -> bool {
    match v {
        toml::Value::String(s) => s.contains('\0'),
        toml::Value::Array(a) => a.iter().any(value_has_nul),
        toml::Value::Table(t) => table_has_nul(t),
        _ => false,
    }
}

/// Turns a `toml` parse/deserialise error into a located diagnostic.
pub fn from_toml_error(src: &Source, err: &toml::de::Error) -> Diagnostic {
    let mut msg = err.message().trim().to_string();
    if msg == "recursion limit exceeded" {
        // The parser's own words do not say what the file did wrong.
        msg = "arrays or inline tables nested too deeply (recursion limit exceeded)".into();
    }
    let (message, expected) = if msg.is_empty() {
        // toml says nothing for a stray character it cannot lex (a vertical tab in a comment).
        unexpected_char(src, err.span())
    } else {
        split_expected(&msg)
    };
    let d = match err.span() {
        Some(span) => Diagnostic::at(src, span, message),
        None => Diagnostic::file(&src.name, message),
    };
    match expected {
        Some(e) => d.expected(e),
        None => d,
    }
}

/// A message for the character at `span` when toml gave none.
fn unexpected_char(src: &Source, span: Option<Range<usize>>) -> (String, Option<String>) {
    let c = span.and_then(|s| src.text.get(s.start..).and_then(|t| t.chars().next()));
    match c {
        Some(c) if c.is_control() => (
            format!("unexpected control character U+{:04X}", c as u32),
            Some(
                "no control character but tab and line breaks (TOML forbids them even in comments)"
                    .into(),
            ),
        ),
        Some(c) => (
            format!("unexpected character `{c}`"),
            Some("valid TOML syntax".into()),
        ),
        None => ("invalid TOML".into(), Some("valid TOML syntax".into())),
    }
}

/// serde messages read "invalid type: integer `3`, expected a string"; split off the expectation.
fn split_expected(msg: &str) -> (String, Option<String>) {
    if let Some(i) = msg.find(", expected ") {
        let (a, b) = msg.split_at(i);
        return (a.to_string(), Some(b[", expected ".len()..].to_string()));
    }
    if let Some(i) = msg.find("expected ") {
        if i > 0 {
            let (a, b) = msg.split_at(i);
            return (
                a.trim_end_matches([',', ' ']).to_string(),
                Some(b["expected ".len()..].to_string()),
            );
        }
    }
    (msg.to_string(), None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_chars() {
        let s = Source::new("f.toml", "a = 1\nbé = 2\n");
        assert_eq!(s.line_col(0), (1, 1));
        assert_eq!(s.line_col(6), (2, 1));
        // byte 9 is the space after "bé" (é is two bytes)
        assert_eq!(s.line_col(9), (2, 3));
    }

    #[test]
    fn offset_inverts_line_col() {
        let s = Source::new("f.toml", "a = 1\nbé = 2\n");
        for off in [0, 6, 9, 10] {
            let (l, c) = s.line_col(off);
            assert_eq!(s.offset(l, c), off);
        }
    }

    #[test]
    fn splits_serde_expectation() {
        let (m, e) = split_expected("invalid type: integer `3`, expected a string");
        assert_eq!(m, "invalid type: integer `3`");
        assert_eq!(e.as_deref(), Some("a string"));
    }
}
