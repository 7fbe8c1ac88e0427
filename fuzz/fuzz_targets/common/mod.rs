//! Checks shared by the fuzz targets: what every diagnostic must satisfy for the CLI to show
//! it (a span inside its file, on character boundaries, with the line and column it claims),
//! and the CLI's own rendering of it (codespan-reporting), which panics on a bad span; and the
//! small matrix the rendering targets (`render`, `template`) fill their context from.

// Each target includes this module and uses only part of it.
#![allow(dead_code)]

use cfgmx_model::{Diagnostic, Diagnostics, Source};
use codespan_reporting::diagnostic::{Diagnostic as CsDiag, Label};
use codespan_reporting::files::SimpleFiles;
use codespan_reporting::term::{self, termcolor::NoColor};

/// Asserts the invariants of every diagnostic and renders it as `cfgmx` does on stderr.
pub fn check_diagnostics(d: &Diagnostics) {
    assert!(!d.diagnostics.is_empty(), "an error with no diagnostic");
    check_list(&d.diagnostics, &d.sources);
}

/// The same for a list of diagnostics (warnings) pointing into `sources`.
pub fn check_list(ds: &[Diagnostic], sources: &[Source]) {
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
    for diag in ds {
        assert!(!diag.message.is_empty(), "empty message: {diag:?}");
        let src = sources.iter().find(|s| s.name == diag.file);
        if let (Some(span), Some(src)) = (&diag.span, src) {
            let t = &src.text;
            assert!(
                span.start <= span.end && span.end <= t.len(),
                "span {span:?} outside a {}-byte file: {diag:?}",
                t.len()
            );
            assert!(
                t.is_char_boundary(span.start) && t.is_char_boundary(span.end),
                "span {span:?} splits a character: {diag:?}"
            );
            let (l, c) = src.line_col(span.start);
            assert_eq!((diag.line, diag.column), (Some(l), Some(c)), "{diag:?}");
        }
        // Display is what `--json`-less scripts and logs see.
        let _ = diag.to_string();
        let mut cs = CsDiag::error().with_message(&diag.message);
        let id = ids.iter().find(|(n, _)| *n == diag.file).map(|(_, i)| *i);
        if let (Some(id), Some(span)) = (id, &diag.span) {
            cs = cs.with_labels(vec![Label::primary(id, span.clone())]);
        }
        let mut out = NoColor::new(Vec::new());
        let _ = term::emit(&mut out, &term::Config::default(), &files, &cs);
    }
}

/// The small matrix the rendering targets fill their context from.
pub const SMALL: &str = r#"
name = "small"
languages = ["c", "cxx", "fortran"]
[axes]
compiler = ["gcc", "clang"]
blas = ["threaded"]
build = ["debug"]
[values.compiler.clang]
fortran = "gcc"
"#;
