//! MPI implementations as declarative data (`mpi/<name>.toml`).
//!
//! An implementation (MPICH, Open MPI, Intel MPI, ...) says which compiler-wrapper names it
//! installs per language (with the distribution suffixes: Debian's `mpicc.openmpi`), how a
//! wrapper tells that it belongs to it (an argument and the pattern its answer matches, which
//! also gives the version), how to read the compiler underneath and the variables that
//! override it, its launchers, how a launched program tells which MPI library it loaded
//! (`[library]`) and the settings every launch gets (`[launch]`). The probe is driven by these
//! files alone; the `mpi` matrix axis pairs a variant's compiler with them (`concrete.rs`).

use crate::diag::{Checks, Diagnostic, Diagnostics, Source};
use crate::toolchain::Language;
use regex::Regex;
use serde::{Deserialize, Serialize};
use toml::Spanned;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMpi {
    name: Spanned<String>,
    #[serde(default)]
    description: String,
    wrappers: RawWrappers,
    #[serde(default)]
    suffixes: Vec<Spanned<String>>,
    #[serde(default)]
    dispatchers: Vec<Spanned<String>>,
    #[serde(default)]
    identify: Vec<RawRule>,
    #[serde(default)]
    version_tool: Option<RawTool>,
    #[serde(default)]
    compiler: Option<RawCompiler>,
    #[serde(default)]
    launchers: Vec<Spanned<String>>,
    #[serde(default)]
    library: Option<RawLibrary>,
    #[serde(default)]
    launch: Option<RawLaunch>,
    /// The system packages that install this MPI (what a CI job installs).
    #[serde(default)]
    packages: crate::packages::RawPackages,
    #[serde(default)]
    notes: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWrappers {
    #[serde(default)]
    c: Vec<Spanned<String>>,
    #[serde(default)]
    cxx: Vec<Spanned<String>>,
    #[serde(default)]
    fortran: Vec<Spanned<String>>,
    /// Names that are also plain compilers' (Cray's `cc`): never taken for this MPI by name.
    #[serde(default)]
    shared: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    args: Vec<String>,
    #[serde(rename = "match")]
    pattern: Spanned<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTool {
    tool: Spanned<String>,
    #[serde(default)]
    args: Vec<String>,
    #[serde(rename = "match")]
    pattern: Spanned<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCompiler {
    args: Vec<String>,
    #[serde(default)]
    env: RawEnv,
    #[serde(default)]
    echoed: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLibrary {
    names: Vec<Spanned<String>>,
    #[serde(rename = "match")]
    pattern: Spanned<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLaunch {
    #[serde(default)]
    flag: Option<Spanned<String>>,
    #[serde(default)]
    env: indexmap::IndexMap<Spanned<String>, Spanned<String>>,
    #[serde(default)]
    user_env: Vec<Spanned<String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEnv {
    #[serde(default)]
    c: Vec<Spanned<String>>,
    #[serde(default)]
    cxx: Vec<Spanned<String>>,
    #[serde(default)]
    fortran: Vec<Spanned<String>>,
}

/// A run of the wrapper (or of a tool beside it) and the pattern its output must match. The
/// version is the named groups that took part in the match, joined by `.` in pattern order
/// (`2019 Update 9` read with `(?P<y>\d{4}) Update (?P<u>\d+)` is `2019.9`).
#[derive(Debug, Clone, Serialize)]
pub struct Rule {
    /// A program in the wrapper's directory to run instead of the wrapper (`mpichversion`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    pub args: Vec<String>,
    #[serde(rename = "match")]
    pub pattern: String,
    /// Compiled on first use for a builtin file (as descriptors' patterns are: a warm probe
    /// reads every MPI file and runs none of its rules), when read for a user's file.
    #[serde(skip)]
    re: crate::toolchain::Pattern,
}

impl Rule {
    /// `Some(version)` when `output` matches (the version may be empty when the pattern has
    /// no named group or none took part).
    pub fn read(&self, output: &str) -> Option<String> {
        let re = self.re.regex()?;
        let caps = re.captures(output)?;
        let parts: Vec<&str> = re
            .capture_names()
            .flatten()
            .filter_map(|n| caps.name(n))
            .map(|m| m.as_str())
            .filter(|s| !s.is_empty())
            .collect();
        Some(parts.join("."))
    }
}

/// How to ask a wrapper for the compiler it runs.
#[derive(Debug, Clone, Serialize)]
pub struct CompilerQuery {
    /// Arguments after which the wrapper prints the command it would run; its first word is
    /// the compiler.
    pub args: Vec<String>,
    /// Variables that replace the compiler, per language, highest precedence first.
    pub env_c: Vec<String>,
    pub env_cxx: Vec<String>,
    pub env_fortran: Vec<String>,
    /// The command is the line that echoes `args`' last one (a driver's verbose option prints
    /// the command it runs, then runs it: without the option, what runs answers alone).
    /// Serialised only when set, so the implementations without it keep their variants' hashes.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub echoed: bool,
}

impl CompilerQuery {
    pub fn env(&self, lang: Language) -> &[String] {
        match lang {
            Language::C => &self.env_c,
            Language::Cxx => &self.env_cxx,
            Language::Fortran => &self.env_fortran,
        }
    }
}

/// How a launched program tells which MPI library it loaded.
#[derive(Debug, Clone, Serialize)]
pub struct Library {
    /// Link names of the library file (`mpi` for `libmpi.so.40`).
    pub names: Vec<String>,
    /// Matches the first line of `MPI_Get_library_version`'s answer; gives the version.
    pub version: Rule,
}

/// How cfgmx launches a program on ranks.
#[derive(Debug, Clone, Serialize)]
pub struct Launch {
    /// The launcher's rank-count option (`-n`).
    pub flag: String,
    /// Variables set on every launch (documented settings: oversubscription, binding).
    pub env: indexmap::IndexMap<String, String>,
    /// The user's variables that decide whether the launcher runs at all (Open MPI as root);
    /// never set by cfgmx, passed through and part of a proof's key.
    pub user_env: Vec<String>,
}

impl Default for Launch {
    fn default() -> Launch {
        Launch {
            flag: "-n".into(),
            env: indexmap::IndexMap::new(),
            user_env: Vec::new(),
        }
    }
}

/// A parsed MPI implementation.
#[derive(Debug, Clone, Serialize)]
pub struct MpiImpl {
    pub name: String,
    pub description: String,
    /// Wrapper base names per language.
    pub c: Vec<String>,
    pub cxx: Vec<String>,
    pub fortran: Vec<String>,
    /// Wrapper names that are also plain compilers' names.
    pub shared: Vec<String>,
    /// Suffixes a distribution appends to every wrapper and launcher name (`.openmpi`).
    pub suffixes: Vec<String>,
    /// The real program behind the wrapper names, which acts by the name it is run under.
    pub dispatchers: Vec<String>,
    /// Tried in order; the first that matches names this implementation.
    pub identify: Vec<Rule>,
    /// Asked for the version when the matching rule gave none.
    pub version_tool: Option<Rule>,
    pub compiler: Option<CompilerQuery>,
    pub launchers: Vec<String>,
    /// How a program proves it loaded this MPI; `None`: it cannot be proven.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub library: Option<Library>,
    pub launch: Launch,
    /// The system packages that install it.
    #[serde(skip_serializing_if = "crate::Packages::is_empty")]
    pub packages: crate::Packages,
    pub notes: Vec<String>,
    #[serde(skip)]
    pub origin: String,
}

/// How a wrapper name relates to an implementation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum NameMatch {
    /// With one of its own suffixes (`mpicc.openmpi`): it says which implementation it is.
    Suffixed,
    /// A base name (`mpicc`): many implementations install it.
    Plain,
}

/// One language's wrapper names.
fn wrapper_names(src: &Source, v: &[Spanned<String>], errs: &mut Vec<Diagnostic>) -> Vec<String> {
    for n in v {
        let s = n.get_ref();
        // Looked up on PATH and written into scripts and CMake files: a shell
        // character (`mpi;cc`) would be run, not found.
        if !crate::names::valid_file_name(s) {
            errs.push(
                Diagnostic::at(src, n.span(), format!("invalid wrapper name {s:?}"))
                    .expected("a file name, without `/`, spaces or shell characters"),
            );
        }
    }
    v.iter().map(|n| n.get_ref().clone()).collect()
}

/// Dispatcher and launcher names, suffixes, and that there is an identification rule.
fn check_names(src: &Source, raw: &RawMpi, errs: &mut Vec<Diagnostic>) {
    for (what, list) in [
        ("dispatcher", &raw.dispatchers),
        ("launcher", &raw.launchers),
    ] {
        for n in list {
            if !crate::names::valid_file_name(n.get_ref()) {
                errs.push(
                    Diagnostic::at(
                        src,
                        n.span(),
                        format!("invalid {what} name {:?}", n.get_ref()),
                    )
                    .expected("a file name, without `/`, spaces or shell characters"),
                );
            }
        }
    }
    for s in &raw.suffixes {
        let t = s.get_ref();
        if !(t.starts_with('.') || t.starts_with('-') || t.starts_with('_')) || t.len() < 2 {
            errs.push(
                Diagnostic::at(src, s.span(), format!("invalid suffix {t:?}"))
                    .expected("a separator (`.`, `-` or `_`) and a name, as in \".openmpi\""),
            );
        }
    }
    if raw.identify.is_empty() {
        errs.push(
            Diagnostic::file(&src.name, "no `[[identify]]` rule")
                .expected("at least one: args = [\"-v\"] and the `match` its answer gives"),
        );
    }
}

/// A rule: what to run (a tool beside the wrapper, or the wrapper) and the pattern its
/// answer is matched with.
fn rule(
    src: &Source,
    tool: Option<String>,
    args: Vec<String>,
    p: &Spanned<String>,
    checks: Checks,
    errs: &mut Vec<Diagnostic>,
) -> Option<Rule> {
    let re = match checks {
        Checks::All => {
            crate::names::compile_regex(src, p, errs).map(crate::toolchain::Pattern::compiled)?
        }
        Checks::Cheap => crate::toolchain::Pattern::lazy(p.get_ref()),
    };
    Some(Rule {
        tool,
        args,
        pattern: p.get_ref().clone(),
        re,
    })
}

/// `[version_tool]`.
fn version_tool(
    src: &Source,
    t: &RawTool,
    checks: Checks,
    errs: &mut Vec<Diagnostic>,
) -> Option<Rule> {
    let tool = t.tool.get_ref();
    if tool.is_empty() || tool.contains('/') {
        errs.push(
            Diagnostic::at(src, t.tool.span(), format!("invalid tool name {tool:?}"))
                .expected("a program name found beside the wrapper, without `/`"),
        );
    }
    let r = rule(
        src,
        Some(tool.clone()),
        t.args.clone(),
        &t.pattern,
        checks,
        errs,
    )?;
    // The tool is run only for the version: a pattern that names no group reads none.
    let named = |re: &Regex| re.capture_names().flatten().next().is_some();
    if checks == Checks::All && !r.re.regex().is_some_and(named) {
        errs.push(
            Diagnostic::at(
                src,
                t.pattern.span(),
                "[version_tool] pattern has no named group to read the version from",
            )
            .expected("a `(?P<version>...)` group"),
        );
    }
    Some(r)
}

/// `[compiler]`: the query and the override variables.
fn compiler_query(src: &Source, c: RawCompiler, errs: &mut Vec<Diagnostic>) -> CompilerQuery {
    let mut vars = |v: Vec<Spanned<String>>| -> Vec<String> {
        for n in &v {
            errs.extend(crate::names::env_name_error(src, n));
        }
        v.into_iter().map(Spanned::into_inner).collect()
    };
    CompilerQuery {
        args: c.args,
        env_c: vars(c.env.c),
        env_cxx: vars(c.env.cxx),
        env_fortran: vars(c.env.fortran),
        echoed: c.echoed,
    }
}

/// `[library]`: the library's link names and the pattern its version is read with.
fn library(
    src: &Source,
    l: &RawLibrary,
    checks: Checks,
    errs: &mut Vec<Diagnostic>,
) -> Option<Library> {
    for n in &l.names {
        if !crate::names::valid_file_name(n.get_ref()) || n.get_ref().is_empty() {
            errs.push(
                Diagnostic::at(
                    src,
                    n.span(),
                    format!("invalid library name {:?}", n.get_ref()),
                )
                .expected("a link name, as in \"mpi\" for libmpi.so"),
            );
        }
    }
    let r = rule(src, None, Vec::new(), &l.pattern, checks, errs)?;
    Some(Library {
        names: unspan(&l.names),
        version: r,
    })
}

/// `[launch]`.
fn launch(src: &Source, l: RawLaunch, errs: &mut Vec<Diagnostic>) -> Launch {
    let mut env = indexmap::IndexMap::new();
    for (k, v) in l.env {
        errs.extend(crate::names::env_name_error(src, &k));
        env.insert(k.into_inner(), v.into_inner());
    }
    for n in &l.user_env {
        errs.extend(crate::names::env_name_error(src, n));
    }
    let flag = match l.flag {
        Some(f) if !crate::names::flag_ok(f.get_ref()) || !f.get_ref().starts_with('-') => {
            errs.push(
                Diagnostic::at(
                    src,
                    f.span(),
                    format!("invalid launcher option {:?}", f.get_ref()),
                )
                .expected("one option, as in \"-n\""),
            );
            "-n".to_string()
        }
        Some(f) => f.into_inner(),
        None => "-n".to_string(),
    };
    Launch {
        flag,
        env,
        user_env: unspan(&l.user_env),
    }
}

impl MpiImpl {
    /// Parses and validates an implementation's data. All problems in the file are reported
    /// together.
    pub fn parse(src: &Source) -> Result<MpiImpl, Diagnostics> {
        let raw: RawMpi = crate::diag::parse_toml(src)?;
        let mut errs = Vec::new();
        let packages = raw.packages.clone().check(src, &mut errs);
        let name = raw.name.get_ref().clone();
        if !crate::names::valid_ident(&name) {
            errs.push(
                Diagnostic::at(
                    src,
                    raw.name.span(),
                    format!("invalid MPI implementation name `{name}`"),
                )
                .expected("lowercase letters, digits and `-`, starting with a letter"),
            );
        }
        let w = &raw.wrappers;
        if w.c.is_empty() && w.cxx.is_empty() && w.fortran.is_empty() {
            errs.push(
                Diagnostic::file(&src.name, "no wrapper names under `[wrappers]`")
                    .expected("c = [\"mpicc\"] (and cxx, fortran)"),
            );
        }
        let (c, cxx, fortran) = (
            wrapper_names(src, &w.c, &mut errs),
            wrapper_names(src, &w.cxx, &mut errs),
            wrapper_names(src, &w.fortran, &mut errs),
        );
        check_names(src, &raw, &mut errs);
        // A user's file is checked whole when read; the builtin ones by this crate's tests.
        let checks = Checks::of(src);
        let identify: Vec<Rule> = raw
            .identify
            .iter()
            .filter_map(|r| rule(src, None, r.args.clone(), &r.pattern, checks, &mut errs))
            .collect();
        let version_tool = raw
            .version_tool
            .as_ref()
            .and_then(|t| version_tool(src, t, checks, &mut errs));
        let compiler = raw.compiler.map(|c| compiler_query(src, c, &mut errs));
        let library = raw
            .library
            .as_ref()
            .and_then(|l| library(src, l, checks, &mut errs));
        let launch = match raw.launch {
            None => Launch::default(),
            Some(l) => launch(src, l, &mut errs),
        };
        if !errs.is_empty() {
            return Err(Diagnostics {
                diagnostics: errs,
                sources: vec![src.clone()],
            });
        }
        Ok(MpiImpl {
            name,
            description: raw.description,
            c,
            cxx,
            fortran,
            shared: raw.wrappers.shared,
            suffixes: raw.suffixes.into_iter().map(|s| s.into_inner()).collect(),
            dispatchers: raw
                .dispatchers
                .into_iter()
                .map(Spanned::into_inner)
                .collect(),
            identify,
            version_tool,
            compiler,
            launchers: raw.launchers.into_iter().map(Spanned::into_inner).collect(),
            library,
            launch,
            packages,
            notes: raw.notes,
            origin: src.name.clone(),
        })
    }

    pub fn wrappers(&self, lang: Language) -> &[String] {
        match lang {
            Language::C => &self.c,
            Language::Cxx => &self.cxx,
            Language::Fortran => &self.fortran,
        }
    }

    /// Whether `file_name` is one of this implementation's wrapper names, and its language.
    /// Names shared with plain compilers are left out: they say nothing by themselves.
    pub fn wrapper_name(&self, file_name: &str) -> Option<(Language, NameMatch)> {
        if self.shared.iter().any(|s| s == file_name) {
            return None;
        }
        for l in Language::ALL {
            for base in self.wrappers(l) {
                if file_name == base {
                    return Some((l, NameMatch::Plain));
                }
                if let Some(rest) = file_name.strip_prefix(base.as_str()) {
                    if self.suffixes.iter().any(|s| s == rest) {
                        return Some((l, NameMatch::Suffixed));
                    }
                }
            }
        }
        None
    }

    /// The suffix `file_name` carries, when it is one of this implementation's.
    pub fn suffix_of<'a>(&'a self, file_name: &str) -> Option<&'a str> {
        self.suffixes
            .iter()
            .find(|s| file_name.ends_with(s.as_str()))
            .map(String::as_str)
    }
}

fn unspan(v: &[Spanned<String>]) -> Vec<String> {
    v.iter().map(|s| s.get_ref().clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_join_the_named_groups_that_matched() {
        let src = Source::new(
            "t.toml",
            r#"
name = "x"
wrappers = { c = ["mpicc"] }
[[identify]]
args = ["-v"]
match = 'Library (?P<y>\d{4}(?:\.\d+)*)(?: Update (?P<u>\d+))?'
"#,
        );
        let m = MpiImpl::parse(&src).unwrap();
        let r = &m.identify[0];
        assert_eq!(
            r.read("the Library 2019 Update 9 for").as_deref(),
            Some("2019.9")
        );
        assert_eq!(r.read("the Library 2021.13").as_deref(), Some("2021.13"));
        assert_eq!(r.read("nothing"), None);
    }

    #[test]
    fn every_error_of_a_file_is_reported_with_its_place() {
        let src = Source::new(
            "bad.toml",
            "name = \"Bad\"\nwrappers = { c = [\"bin/mpicc\"] }\nsuffixes = [\"openmpi\"]\n[[identify]]\nargs = []\nmatch = '('\n",
        );
        let e = MpiImpl::parse(&src).unwrap_err();
        let text = e.to_string();
        for want in [
            "invalid MPI implementation name",
            "invalid wrapper name",
            "invalid suffix",
            "invalid regular expression",
        ] {
            assert!(text.contains(want), "{want} not in {text}");
        }
        assert_eq!(e.diagnostics.len(), 4, "{text}");
    }

    /// Real answers of real wrappers (first lines, as released) are each claimed by exactly
    /// one implementation, with the version the release has; a compiler's own answer to the
    /// same arguments (what another implementation's wrapper passes through) by none.
    #[test]
    fn builtin_rules_tell_real_answers_apart() {
        let reg = crate::Registry::builtin();
        let cases: &[(&str, Option<(&str, &str)>)] = &[
            ("mpicc for MPICH version 4.0.2", Some(("mpich", "4.0.2"))),
            ("mpifort for MPICH version 3.3a2", Some(("mpich", "3.3a2"))),
            (
                "mpif90 for MPICH2 version 1.4.1p1",
                Some(("mpich", "1.4.1p1")),
            ),
            (
                "mpicc.openmpi: Open MPI 4.1.4 (Language: C)",
                Some(("openmpi", "4.1.4")),
            ),
            (
                "mpifort: Open MPI 5.0.3 (Language: Fortran)",
                Some(("openmpi", "5.0.3")),
            ),
            (
                "mpiicc for the Intel(R) MPI Library 2019 Update 9 for Linux*",
                Some(("intel-mpi", "2019.9")),
            ),
            (
                "mpigcc for Intel(R) MPI library 2021.13",
                Some(("intel-mpi", "2021.13")),
            ),
            (
                "mpiifx for the Intel(R) MPI Library 2021.18 for Linux*",
                Some(("intel-mpi", "2021.18")),
            ),
            // an unsubstituted release: still Intel MPI, version asked from `mpirun`
            (
                "mpiicpx for the Intel(R) MPI Library @IMPI_OFFICIALVERSION@ for Linux*",
                Some(("intel-mpi", "")),
            ),
            (
                "mpicc for MVAPICH2 version 2.3.7",
                Some(("mvapich", "2.3.7")),
            ),
            (
                "Using built-in specs.\nCOLLECT_GCC=gcc\ngcc version 12.2.0 (Debian 12.2.0-14)",
                None,
            ),
            (
                "gcc: error: unrecognized command-line option '--showme:version'",
                None,
            ),
            ("clang version 14.0.6\nTarget: x86_64-pc-linux-gnu", None),
        ];
        for (text, want) in cases {
            let got: Vec<(String, String)> = reg
                .mpi
                .values()
                .filter_map(|m| {
                    m.identify
                        .iter()
                        .find_map(|r| r.read(text))
                        .map(|v| (m.name.clone(), v))
                })
                .collect();
            let want: Vec<(String, String)> = want
                .iter()
                .map(|(m, v)| (m.to_string(), v.to_string()))
                .collect();
            assert_eq!(got, want, "{text}");
        }
        let tools = [
            ("mpich", "MPICH Version:    \t4.0.2\nMPICH Release date:\tThu Apr  7 2022", "4.0.2"),
            ("openmpi", "Open MPI v4.1.4\n\nhttp://www.open-mpi.org/community/help/", "4.1.4"),
            (
                "intel-mpi",
                "Intel(R) MPI Library for Linux* OS, Version 2021.18.0 Build 20260327 (id: 821f207)",
                "2021.18.0",
            ),
            ("mvapich", "MVAPICH2 2.3.7 Wed March 02 22:00:00 EST 2022 ch3:mrail", "2.3.7"),
        ];
        for (imp, text, v) in tools {
            let t = reg.mpi[imp].version_tool.as_ref().unwrap();
            assert_eq!(t.read(text).as_deref(), Some(v), "{imp}: {text}");
        }
    }

    #[test]
    fn suffixed_names_say_which_implementation_they_are() {
        let reg = crate::Registry::builtin();
        let claims = |n: &str| -> Vec<(String, NameMatch)> {
            reg.mpi
                .values()
                .filter_map(|m| m.wrapper_name(n).map(|(_, how)| (m.name.clone(), how)))
                .collect()
        };
        assert_eq!(
            claims("mpif90.openmpi"),
            [("openmpi".into(), NameMatch::Suffixed)]
        );
        assert_eq!(
            claims("mpicxx.mpich"),
            [("mpich".into(), NameMatch::Suffixed)]
        );
        assert_eq!(claims("mpiifort"), [("intel-mpi".into(), NameMatch::Plain)]);
        let plain: Vec<String> = claims("mpicc").into_iter().map(|(m, _)| m).collect();
        for m in ["intel-mpi", "mpich", "mvapich", "openmpi"] {
            assert!(
                plain.contains(&m.to_string()),
                "{m} installs mpicc: {plain:?}"
            );
        }
        assert!(
            claims("cc").is_empty(),
            "Cray's `cc` is any compiler's name"
        );
        for imp in ["mpich", "openmpi", "intel-mpi", "mvapich", "cray-mpich"] {
            assert!(reg.mpi.contains_key(imp), "{imp} has a data file");
        }
    }
}
