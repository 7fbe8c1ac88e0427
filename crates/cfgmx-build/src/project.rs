//! The languages a project compiles, read from its own build files, so that a matrix without
//! `languages` asks a variant only for the compilers the project uses (a C-only project needs
//! no Fortran compiler for clang).
//!
//! CMake: `project(NAME [LANGUAGES] L...)` (none named: CMake's default, C and CXX; `NONE`:
//! none) and `enable_language(L...)`, in `CMakeLists.txt` and the directories it adds with a
//! literal `add_subdirectory`. Meson: `project('name', 'c', ...)` (strings or a list) and
//! `add_languages(...)`, in `meson.build` and literal `subdir()`s. Comments, quoting, bracket
//! arguments, multi-line calls and the case of CMake command names are handled; a language
//! given through a variable cannot be known, and then the answer is "unknown" (`None`), never a
//! guess.

use crate::runner::System;
use cfgmx_model::Language;
use std::collections::BTreeSet;
use std::path::Path;

/// What the project's build files say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Languages {
    /// The languages cfgmx drives (C, C++, Fortran) that the project enables.
    pub languages: BTreeSet<Language>,
    /// Other languages it enables (CUDA, ASM, ...), which cfgmx does not provide compilers for.
    pub others: BTreeSet<String>,
}

/// How deep `add_subdirectory`/`subdir` are followed: deeper trees are vendored code.
const MAX_DEPTH: usize = 8;

/// The project's languages, or `Ok(None)` when its files name them through variables (or
/// cannot be read as the build system's syntax) and so cannot be known without configuring.
pub fn languages(system: System, source: &Path) -> Result<Option<Languages>, String> {
    let mut out = Languages {
        languages: BTreeSet::new(),
        others: BTreeSet::new(),
    };
    let mut saw_project = false;
    let known = match system {
        System::Cmake => cmake_dir(source, 0, &mut out, &mut saw_project)?,
        System::Meson => meson_dir(source, 0, &mut out, &mut saw_project)?,
    };
    if !known {
        return Ok(None);
    }
    if !saw_project && system == System::Cmake {
        // CMake adds an implicit `project()` with its default languages.
        out.languages.extend([Language::C, Language::Cxx]);
    }
    Ok(Some(out))
}

fn read(path: &Path) -> Result<String, String> {
    cfgmx_fs::read_to_string(path, cfgmx_fs::MAX_BYTES)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// One call: the command name and its arguments, unquoted; `None` for an argument whose
/// value depends on a variable.
#[derive(Debug, PartialEq)]
struct Call {
    name: String,
    args: Vec<Option<String>>,
}

fn cmake_lang(arg: &str, out: &mut Languages) {
    match arg {
        "C" => {
            out.languages.insert(Language::C);
        }
        "CXX" => {
            out.languages.insert(Language::Cxx);
        }
        "Fortran" => {
            out.languages.insert(Language::Fortran);
        }
        "NONE" => {}
        other => {
            out.others.insert(other.to_string());
        }
    }
}

/// Reads `dir/CMakeLists.txt`; false when a language is named through a variable.
fn cmake_dir(
    dir: &Path,
    depth: usize,
    out: &mut Languages,
    saw_project: &mut bool,
) -> Result<bool, String> {
    let path = dir.join("CMakeLists.txt");
    let text = read(&path)?;
    let calls = cmake_calls(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    for c in calls {
        match c.name.as_str() {
            // A sub-project's project() enables its languages too.
            "project" => {
                *saw_project = true;
                let mut langs: Vec<String> = Vec::new();
                let mut keyword = None;
                // The first argument is the project name.
                for a in c.args.iter().skip(1) {
                    let Some(a) = a else {
                        if keyword.is_none() || keyword == Some("LANGUAGES") {
                            return Ok(false);
                        }
                        continue;
                    };
                    match a.as_str() {
                        "VERSION" | "DESCRIPTION" | "HOMEPAGE_URL" | "LANGUAGES" => {
                            keyword = Some(match a.as_str() {
                                "VERSION" => "VERSION",
                                "DESCRIPTION" => "DESCRIPTION",
                                "HOMEPAGE_URL" => "HOMEPAGE_URL",
                                _ => "LANGUAGES",
                            });
                        }
                        // A keyword's value: the one argument after it.
                        _ if matches!(
                            keyword,
                            Some("VERSION" | "DESCRIPTION" | "HOMEPAGE_URL")
                        ) =>
                        {
                            keyword = None;
                        }
                        _ => langs.push(a.clone()),
                    }
                }
                if langs.is_empty() {
                    // CMake's default when project() names none.
                    out.languages.extend([Language::C, Language::Cxx]);
                }
                for l in &langs {
                    cmake_lang(l, out);
                }
            }
            "enable_language" => {
                for a in &c.args {
                    match a.as_deref() {
                        None => return Ok(false),
                        Some("OPTIONAL") => {}
                        Some(l) => cmake_lang(l, out),
                    }
                }
            }
            "add_subdirectory" if depth < MAX_DEPTH => {
                // A directory named through a variable is skipped: its languages are usually
                // enabled by the top level anyway, and a guess would be worse.
                if let Some(Some(sub)) = c.args.first() {
                    let d = dir.join(sub);
                    if d.join("CMakeLists.txt").is_file()
                        && !cmake_dir(&d, depth + 1, out, saw_project)?
                    {
                        return Ok(false);
                    }
                }
            }
            _ => {}
        }
    }
    Ok(true)
}

/// CMake's command invocations in `text` (names lower-cased: CMake's are case-insensitive).
fn cmake_calls(text: &str) -> Result<Vec<Call>, String> {
    let b = text.as_bytes();
    let mut i = 0;
    let mut calls = Vec::new();
    let line_of = |i: usize| text[..i].matches('\n').count() + 1;
    while i < b.len() {
        let c = b[i];
        if c == b'#' {
            i = skip_cmake_comment(text, i);
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            let name = text[start..i].to_ascii_lowercase();
            while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
                i += 1;
            }
            if i >= b.len() || b[i] != b'(' {
                return Err(format!(
                    "line {}: `{name}` is not followed by `(`",
                    line_of(start)
                ));
            }
            let (args, next) =
                cmake_args(text, i + 1).map_err(|e| format!("line {}: {e}", line_of(start)))?;
            i = next;
            calls.push(Call { name, args });
        } else {
            i += 1;
        }
    }
    Ok(calls)
}

/// The length of a bracket opening `[==[` at `i`, with its `=` count.
fn bracket_open(text: &str, i: usize) -> Option<(usize, usize)> {
    let b = text.as_bytes();
    if b.get(i) != Some(&b'[') {
        return None;
    }
    let mut j = i + 1;
    while b.get(j) == Some(&b'=') {
        j += 1;
    }
    (b.get(j) == Some(&b'[')).then_some((j + 1 - i, j - i - 1))
}

/// Past the end of the bracket content opened with `eq` `=`s, content starting at `i`.
fn bracket_close(text: &str, i: usize, eq: usize) -> Result<(String, usize), String> {
    let close = format!("]{}]", "=".repeat(eq));
    match text[i..].find(&close) {
        Some(k) => Ok((text[i..i + k].to_string(), i + k + close.len())),
        None => Err("unterminated bracket argument or comment".into()),
    }
}

fn skip_cmake_comment(text: &str, i: usize) -> usize {
    if let Some((len, eq)) = bracket_open(text, i + 1) {
        if let Ok((_, next)) = bracket_close(text, i + 1 + len, eq) {
            return next;
        }
    }
    text[i..].find('\n').map_or(text.len(), |k| i + k + 1)
}

/// The arguments of a call whose `(` ends just before `i`: unquoted, quoted and bracket
/// arguments, nested parentheses kept as plain arguments. Returns them and the index after the
/// closing `)`.
fn cmake_args(text: &str, mut i: usize) -> Result<(Vec<Option<String>>, usize), String> {
    let b = text.as_bytes();
    let mut args = Vec::new();
    let mut depth = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b' ' | b'\t' | b'\r' | b'\n' => i += 1,
            b'#' => i = skip_cmake_comment(text, i),
            b'(' => {
                depth += 1;
                i += 1;
            }
            b')' if depth == 0 => return Ok((args, i + 1)),
            b')' => {
                depth -= 1;
                i += 1;
            }
            b'"' => {
                let mut s = String::new();
                let mut var = false;
                i += 1;
                loop {
                    match b.get(i) {
                        None => return Err("unterminated quoted argument".into()),
                        Some(b'"') => break,
                        Some(b'\\') => {
                            if let Some(ch) = text[i + 1..].chars().next() {
                                s.push(ch);
                                i += 1 + ch.len_utf8();
                            } else {
                                i += 1;
                            }
                        }
                        Some(_) => {
                            let ch = text[i..].chars().next().unwrap_or(' ');
                            if ch == '$' && matches!(b.get(i + 1), Some(b'{') | Some(b'E')) {
                                var = true;
                            }
                            s.push(ch);
                            i += ch.len_utf8();
                        }
                    }
                }
                i += 1;
                args.push((!var).then_some(s));
            }
            b'[' if bracket_open(text, i).is_some() => {
                let (len, eq) = bracket_open(text, i).unwrap_or((2, 0));
                let (s, next) = bracket_close(text, i + len, eq)?;
                // Bracket content is literal: no variable is expanded.
                args.push(Some(s));
                i = next;
            }
            _ => {
                let start = i;
                while i < b.len()
                    && !matches!(
                        b[i],
                        b' ' | b'\t' | b'\r' | b'\n' | b'(' | b')' | b'#' | b'"'
                    )
                {
                    i += 1;
                }
                let word = &text[start..i];
                let var = word.contains("${") || word.contains("$ENV{") || word.contains("$<");
                args.push((!var).then(|| word.to_string()));
            }
        }
    }
    Err("unterminated call (no closing `)`)".into())
}

fn meson_lang(arg: &str, out: &mut Languages) {
    match arg.to_ascii_lowercase().as_str() {
        "c" => {
            out.languages.insert(Language::C);
        }
        "cpp" => {
            out.languages.insert(Language::Cxx);
        }
        "fortran" => {
            out.languages.insert(Language::Fortran);
        }
        other => {
            out.others.insert(other.to_string());
        }
    }
}

/// Reads `dir/meson.build`; false when a language is given through a variable.
fn meson_dir(
    dir: &Path,
    depth: usize,
    out: &mut Languages,
    saw_project: &mut bool,
) -> Result<bool, String> {
    let path = dir.join("meson.build");
    let text = read(&path)?;
    let calls = meson_calls(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    for c in calls {
        match c.name.as_str() {
            "project" if !*saw_project => {
                *saw_project = true;
                // The first positional argument is the name; the rest are languages.
                for a in c.args.iter().skip(1) {
                    match a {
                        Some(l) => meson_lang(l, out),
                        None => return Ok(false),
                    }
                }
            }
            "add_languages" => {
                for a in &c.args {
                    match a {
                        Some(l) => meson_lang(l, out),
                        None => return Ok(false),
                    }
                }
            }
            "subdir" if depth < MAX_DEPTH => {
                if let Some(Some(sub)) = c.args.first() {
                    let d = dir.join(sub);
                    if d.join("meson.build").is_file()
                        && !meson_dir(&d, depth + 1, out, saw_project)?
                    {
                        return Ok(false);
                    }
                }
            }
            _ => {}
        }
    }
    Ok(true)
}

/// Meson function calls of interest (`project`, `add_languages`, `subdir`) with their
/// positional arguments: strings (lists flattened), `None` for anything else (a variable).
/// Keyword arguments (`name: value`) are left out.
fn meson_calls(text: &str) -> Result<Vec<Call>, String> {
    let toks = meson_tokens(text)?;
    let mut calls = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let (Tok::Ident(name), Some(Tok::Punct('('))) = (&toks[i], toks.get(i + 1)) else {
            i += 1;
            continue;
        };
        // A method call (`x.project(`) is not the function.
        if i > 0 && toks[i - 1] == Tok::Punct('.') {
            i += 1;
            continue;
        }
        let wanted = matches!(name.as_str(), "project" | "add_languages" | "subdir");
        let mut j = i + 2;
        let mut depth = 0usize;
        let mut args = Vec::new();
        let mut positional = true;
        // Split top-level arguments at commas.
        let mut cur: Vec<&Tok> = Vec::new();
        let flush = |cur: &mut Vec<&Tok>, positional: bool, args: &mut Vec<Option<String>>| {
            if positional && !cur.is_empty() {
                let strings: Vec<&Tok> = cur
                    .iter()
                    .copied()
                    .filter(|t| !matches!(t, Tok::Punct('[' | ']' | ',')))
                    .collect();
                if strings.iter().all(|t| matches!(t, Tok::Str(_))) {
                    for t in strings {
                        if let Tok::Str(s) = t {
                            args.push(Some(s.clone()));
                        }
                    }
                } else {
                    args.push(None);
                }
            }
            cur.clear();
        };
        while j < toks.len() {
            match &toks[j] {
                Tok::Punct('(' | '[' | '{') => {
                    depth += 1;
                    cur.push(&toks[j]);
                }
                Tok::Punct(')') if depth == 0 => break,
                Tok::Punct(')' | ']' | '}') => {
                    depth = depth.saturating_sub(1);
                    cur.push(&toks[j]);
                }
                Tok::Punct(',') if depth == 0 => {
                    flush(&mut cur, positional, &mut args);
                    positional = true;
                }
                Tok::Punct(':') if depth == 0 => {
                    // `name: value`: a keyword argument.
                    positional = false;
                    cur.clear();
                }
                t => cur.push(t),
            }
            j += 1;
        }
        if j >= toks.len() {
            return Err(format!("`{name}(` has no closing `)`"));
        }
        flush(&mut cur, positional, &mut args);
        if wanted {
            calls.push(Call {
                name: name.clone(),
                args,
            });
        }
        i = j + 1;
    }
    Ok(calls)
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Punct(char),
    Other,
}

fn meson_tokens(text: &str) -> Result<Vec<Tok>, String> {
    let mut toks = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '#' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '\'' || (c == 'f' && chars.get(i + 1) == Some(&'\'')) {
            let fmt = c == 'f';
            if fmt {
                i += 1;
            }
            let triple = chars.get(i + 1) == Some(&'\'') && chars.get(i + 2) == Some(&'\'');
            let mut s = String::new();
            if triple {
                i += 3;
                loop {
                    if i >= chars.len() {
                        return Err("unterminated ''' string".into());
                    }
                    if chars[i] == '\''
                        && chars.get(i + 1) == Some(&'\'')
                        && chars.get(i + 2) == Some(&'\'')
                    {
                        i += 3;
                        break;
                    }
                    s.push(chars[i]);
                    i += 1;
                }
            } else {
                i += 1;
                loop {
                    match chars.get(i) {
                        None | Some('\n') => return Err("unterminated string".into()),
                        Some('\'') => {
                            i += 1;
                            break;
                        }
                        Some('\\') => {
                            if let Some(n) = chars.get(i + 1) {
                                s.push(match n {
                                    'n' => '\n',
                                    't' => '\t',
                                    other => *other,
                                });
                            }
                            i += 2;
                        }
                        Some(ch) => {
                            s.push(*ch);
                            i += 1;
                        }
                    }
                }
            }
            // A format string's value depends on variables.
            toks.push(if fmt { Tok::Other } else { Tok::Str(s) });
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            toks.push(Tok::Ident(chars[start..i].iter().collect()));
        } else if "()[]{},:.".contains(c) {
            toks.push(Tok::Punct(c));
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else {
            toks.push(Tok::Other);
            i += 1;
        }
    }
    Ok(toks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Language::{Cxx, Fortran, C};

    fn cmake(files: &[(&str, &str)]) -> Option<(Vec<Language>, Vec<String>)> {
        run(System::Cmake, files)
    }
    fn meson(files: &[(&str, &str)]) -> Option<(Vec<Language>, Vec<String>)> {
        run(System::Meson, files)
    }
    fn run(sys: System, files: &[(&str, &str)]) -> Option<(Vec<Language>, Vec<String>)> {
        let d = tempfile::tempdir().unwrap();
        for (p, t) in files {
            let p = d.path().join(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, t).unwrap();
        }
        languages(sys, d.path()).unwrap().map(|l| {
            (
                l.languages.into_iter().collect(),
                l.others.into_iter().collect(),
            )
        })
    }
    fn langs(v: &[Language]) -> Option<(Vec<Language>, Vec<String>)> {
        Some((v.to_vec(), vec![]))
    }

    #[test]
    fn cmake_project_forms() {
        let top = |s: &str| cmake(&[("CMakeLists.txt", s)]);
        assert_eq!(top("project(x C)"), langs(&[C]));
        assert_eq!(top("project(x)"), langs(&[C, Cxx]), "CMake's default");
        assert_eq!(
            top("PROJECT(x VERSION 1.2 LANGUAGES C Fortran)"),
            langs(&[C, Fortran])
        );
        assert_eq!(
            top("project(x VERSION 1.0 DESCRIPTION \"C and Fortran\" HOMEPAGE_URL u)"),
            langs(&[C, Cxx]),
            "keyword values are not languages"
        );
        assert_eq!(top("project(x NONE)"), langs(&[]));
        assert_eq!(
            top("project(x NONE)\nEnable_Language(Fortran)\nenable_language(CXX OPTIONAL)"),
            langs(&[Cxx, Fortran])
        );
        assert_eq!(
            top("# project(x Fortran)\n#[[ project(y CXX)\n]]\nproject(\n  x  # the name\n  LANGUAGES\n    C\n)\n"),
            langs(&[C]),
            "comments and multi-line calls"
        );
        assert_eq!(top("project(\"x\" \"C\")"), langs(&[C]));
        assert_eq!(top("project([[x]] [=[C]=])"), langs(&[C]));
        assert_eq!(
            top("project(x C CUDA)"),
            Some((vec![C], vec!["CUDA".to_string()]))
        );
        assert_eq!(
            top("cmake_minimum_required(VERSION 3.18)\nset(L Fortran)\nif(X)\nendif()\n"),
            langs(&[C, Cxx]),
            "no project(): CMake's implicit one"
        );
        // Through a variable: unknown, never a guess.
        assert_eq!(top("project(x LANGUAGES ${LANGS})"), None);
        assert_eq!(top("project(x C)\nenable_language(${L})"), None);
        assert_eq!(
            top("project(${NAME} C)"),
            langs(&[C]),
            "the name may be a variable"
        );
        // message() text naming languages is no call of interest.
        assert_eq!(
            top("project(x C)\nmessage(STATUS \"enable_language(Fortran)\")"),
            langs(&[C])
        );
    }

    #[test]
    fn cmake_subdirectories() {
        let r = cmake(&[
            (
                "CMakeLists.txt",
                "project(x C)\nadd_subdirectory(f)\nadd_subdirectory(${X})\n",
            ),
            (
                "f/CMakeLists.txt",
                "enable_language(Fortran)\nproject(sub CXX)\n",
            ),
        ]);
        // A sub-project's project() counts too: it enables its languages.
        assert_eq!(r, langs(&[C, Cxx, Fortran]));
    }

    #[test]
    fn cmake_syntax_errors_are_located() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("CMakeLists.txt"),
            "project(x C)\n\nproject(y \"C)\n",
        )
        .unwrap();
        let e = languages(System::Cmake, d.path()).unwrap_err();
        assert!(e.contains("CMakeLists.txt: line 3"), "{e}");
        assert!(languages(System::Cmake, &d.path().join("nope")).is_err());
    }

    #[test]
    fn meson_project_forms() {
        let top = |s: &str| meson(&[("meson.build", s)]);
        assert_eq!(top("project('x', 'c')"), langs(&[C]));
        assert_eq!(
            top("project('x', ['c', 'cpp'],\n  version: '1.0', # not a language\n  default_options: ['c_std=c11'])\n"),
            langs(&[C, Cxx])
        );
        assert_eq!(top("project('x')"), langs(&[]));
        assert_eq!(
            top("project('x', 'c')\nadd_languages('fortran', required: false)\n"),
            langs(&[C, Fortran])
        );
        assert_eq!(
            top("# project('y', 'cpp')\nproject('''x''', 'C')"),
            langs(&[C])
        );
        assert_eq!(top("langs = ['c']\nproject('x', langs)"), None);
        assert_eq!(
            top("project('x', 'c', 'cuda')"),
            Some((vec![C], vec!["cuda".to_string()]))
        );
        let r = meson(&[
            ("meson.build", "project('x', 'c')\nsubdir('f')\n"),
            ("f/meson.build", "add_languages('fortran')\n"),
        ]);
        assert_eq!(r, langs(&[C, Fortran]));
    }
}
