//! Spelling rules every data file shares (environment variable names, identifiers, file and
//! library names, flags, words, patterns), in a module of their own so that the matrix, the
//! descriptors, the drivers and the runtime axes can all use them without importing one
//! another.

use crate::diag::{Diagnostic, Source};
use regex::Regex;
use toml::Spanned;

pub(crate) fn valid_env_name(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(x) if x.is_ascii_alphabetic() || x == '_')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

/// A data file's variable name checked where it stands: `None` when valid, else the located
/// diagnostic every descriptor gives for it.
pub(crate) fn env_name_error(src: &Source, name: &Spanned<String>) -> Option<Diagnostic> {
    (!valid_env_name(name.get_ref())).then(|| {
        Diagnostic::at(
            src,
            name.span(),
            format!("invalid environment variable name {:?}", name.get_ref()),
        )
        .expected("letters, digits and `_`, not starting with a digit")
    })
}

pub(crate) fn compile_regex(
    src: &Source,
    s: &Spanned<String>,
    errs: &mut Vec<Diagnostic>,
) -> Option<Regex> {
    match Regex::new(s.get_ref()) {
        Ok(r) => Some(r),
        Err(e) => {
            let first = e
                .to_string()
                .lines()
                .last()
                .unwrap_or("")
                .trim()
                .to_string();
            errs.push(
                Diagnostic::at(
                    src,
                    s.span(),
                    format!("invalid regular expression: {first}"),
                )
                .expected("a Rust `regex` pattern"),
            );
            None
        }
    }
}

/// A file name that names itself only: no directory, nothing a shell or CMake reads specially.
pub(crate) fn valid_file_name(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && !s.starts_with('-')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-'))
}

/// A library to link: a link name (`-l` + it) or an absolute path to the file. Both go into
/// link lines, CMake lists and shell scripts, so nothing else gets through.
pub(crate) fn check_lib(src: &Source, l: &Spanned<String>, errs: &mut Vec<Diagnostic>) {
    let s = l.get_ref();
    if !valid_lib(s) {
        errs.push(
            Diagnostic::at(src, l.span(), format!("invalid library {s:?}")).expected(
                "a link name (`openblas`, `mkl_core`) or an absolute path (`/opt/x/libx.so`) \
                     of letters, digits, `.`, `_`, `+`, `-`",
            ),
        );
    }
}

/// A flag is one argument: an empty one, or one with spaces around it, reaches the compiler
/// as a file name (`''`, `' -O2'`) and fails every build far from its cause. Other characters
/// (line breaks included) are the generators' to quote or refuse per format.
pub(crate) fn flag_ok(f: &str) -> bool {
    !f.is_empty() && !f.starts_with(' ') && !f.ends_with(' ')
}

pub(crate) fn check_flag(src: &Source, f: &Spanned<String>, errs: &mut Vec<Diagnostic>) {
    if !flag_ok(f.get_ref()) {
        errs.push(
            Diagnostic::at(src, f.span(), format!("invalid flag {:?}", f.get_ref()))
                .expected("one non-empty argument, no space at either end"),
        );
    }
}

/// See `check_lib`.
pub(crate) fn valid_lib(s: &str) -> bool {
    match s.strip_prefix('/') {
        Some(path) => path.split('/').all(valid_file_name),
        None => {
            valid_file_name(s) && s.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
        }
    }
}

/// A name a build system reads as one word: letters, digits, `_`, `-`, `.`.
pub(crate) fn check_word(
    src: &Source,
    w: &Spanned<String>,
    what: &str,
    example: &str,
    errs: &mut Vec<Diagnostic>,
) {
    let s = w.get_ref();
    let ok = s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '+'));
    if !ok {
        errs.push(
            Diagnostic::at(src, w.span(), format!("invalid {what} {s:?}")).expected(format!(
                "one word of letters, digits, `_`, `-`, `.`, `+` ({example})"
            )),
        );
    }
}

pub(crate) fn valid_ident(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}
