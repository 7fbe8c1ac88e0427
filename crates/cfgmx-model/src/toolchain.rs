//! Toolchain descriptors: a compiler family as declarative data (`toolchains/<family>.toml`).
//!
//! A descriptor says how to find the family's executables, how to read and confirm its version,
//! and which flags ("facets") spell OpenMP, debug, optimisation, PIC and language standards for
//! it, and how its driver spells definitions, libraries and outputs (`[driver]`, see
//! `driver.rs`). Every descriptor starts from `toolchains/base/defaults.toml` and says only what
//! differs. Adding a compiler is adding a file; no code path is family-specific.

use crate::diag::{Checks, Diagnostic, Diagnostics, Source};
pub use crate::language::Language;
use crate::names::{
    check_flag, check_lib, check_word, compile_regex, valid_file_name, valid_ident,
};
use crate::version::{Version, VersionRange};
use indexmap::IndexMap;
use regex::Regex;
use serde::{Deserialize, Serialize};
use toml::Spanned;

/// The descriptor as written in TOML (parsed with spans for error reporting).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawToolchain {
    name: Spanned<String>,
    #[serde(default)]
    description: String,
    /// CMake's `CMAKE_<LANG>_COMPILER_ID` values this family shows up as.
    #[serde(default)]
    cmake_id: Vec<Spanned<String>>,
    /// Meson's compiler id (`gcc`, `clang`, `intel`, ...).
    #[serde(default)]
    meson_id: Option<Spanned<String>>,
    executables: RawExecutables,
    #[serde(default)]
    version: Vec<RawVersionRule>,
    #[serde(default)]
    identity: Option<Spanned<Identity>>,
    #[serde(default)]
    facets: IndexMap<String, Vec<Spanned<RawCandidate>>>,
    /// The driver's spellings that differ from the defaults.
    #[serde(default)]
    driver: crate::driver::RawDriver,
    /// Environment the compiler needs to run (e.g. `CRAYPE_LINK_TYPE`).
    #[serde(default)]
    env: IndexMap<Spanned<String>, String>,
    /// The system packages that install this compiler (what a CI job installs).
    #[serde(default)]
    packages: crate::packages::RawPackages,
    #[serde(default)]
    notes: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExecutables {
    #[serde(default)]
    c: Vec<Spanned<String>>,
    #[serde(default)]
    cxx: Vec<Spanned<String>>,
    #[serde(default)]
    fortran: Vec<Spanned<String>>,
    /// Regex for a version suffix after the base name (`gcc-12`, `clang-14`); anchored.
    #[serde(default)]
    suffix: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVersionRule {
    args: Vec<String>,
    /// Regexes tried in order; the first match's `version` group (or the named groups `major`,
    /// `minor`, `patch` joined with `.`, or group 1) is the version.
    regex: Spanned<Vec<Spanned<String>>>,
    /// Outputs matching any of these belong to another family.
    #[serde(default)]
    reject: Vec<Spanned<String>>,
    /// Only for executables whose base name is one of these (e.g. ifx vs ifort).
    #[serde(default)]
    only_names: Vec<Spanned<String>>,
    /// Nonzero exit codes that still carry a valid banner (PGI `-V` exits 2 on POWER).
    #[serde(default)]
    ok_status: Option<Spanned<Vec<i32>>>,
    /// The result is only a major version (gcc >= 7 `-dumpversion`); try later rules for more.
    #[serde(default)]
    imprecise: bool,
    /// Where a compile run with other arguments prints this rule's output too.
    #[serde(default)]
    verbose: Option<RawVerbose>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVerbose {
    args: Vec<String>,
    ends: Spanned<String>,
    #[serde(default)]
    noise: Vec<Spanned<String>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    /// Macros that must all be defined when preprocessing with this compiler.
    #[serde(default)]
    pub all: Vec<String>,
    /// Macros none of which may be defined (compilers that fake this family's macros).
    #[serde(default)]
    pub none: Vec<String>,
    /// Macros whose values give the version (major, minor, patch), for cross-checking.
    #[serde(default)]
    pub version: Vec<String>,
    /// Fortran uses other macros for some families; when empty, `all`/`none` apply.
    #[serde(default)]
    pub fortran_all: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCandidate {
    /// Compile flags.
    #[serde(default)]
    flags: Vec<Spanned<String>>,
    /// Link flags.
    #[serde(default)]
    link: Vec<Spanned<String>>,
    /// Runtime libraries the flag needs at link time (`omp`, `gomp`, `iomp5`).
    #[serde(default)]
    libs: Vec<Spanned<String>>,
    /// Languages the flags apply to; all the family's languages when empty.
    #[serde(default)]
    languages: Vec<Language>,
    /// Compiler versions this candidate is for (Spack-style range).
    #[serde(default)]
    versions: Option<String>,
    /// The OpenMP runtime this spelling links (`gomp`, `omp`, `iomp5`, `xlsmp`, ...).
    #[serde(default)]
    runtime: Option<Spanned<String>>,
    /// What to tell the user when the runtime is missing; `{major}` and `{version}` stand
    /// for the compiler's (each version of clang needs the runtime of its own version).
    #[serde(default)]
    hint: Option<String>,
    #[serde(default)]
    note: Option<String>,
}

/// How to read a version from one invocation.
#[derive(Debug, Clone, Serialize)]
pub struct VersionRule {
    pub args: Vec<String>,
    pub regex: Vec<Pattern>,
    pub reject: Vec<Pattern>,
    pub only_names: Vec<String>,
    pub ok_status: Vec<i32>,
    pub imprecise: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verbose: Option<Verbose>,
}

impl VersionRule {
    /// The rule as it bears on variants (what their spec hash covers): without the verbose
    /// compile, which is how the probe asks, not what it reads.
    pub fn for_variants(&self) -> VersionRule {
        VersionRule {
            verbose: None,
            ..self.clone()
        }
    }
}

/// A compile that prints a version rule's output before its own (clang's and flang's `-v`):
/// the probe's first compile of a compiler asks for it there instead of starting the driver
/// once more for the version rule alone.
#[derive(Debug, Clone, Serialize)]
pub struct Verbose {
    /// Added to the compile's command line.
    pub args: Vec<String>,
    /// The last line of the version text within the compile's error output.
    pub ends: Pattern,
    /// The other lines the arguments add to that output (each job's command line, the
    /// header search list): dropped, so the compile's own messages read as without them.
    pub noise: Vec<Pattern>,
}

impl Verbose {
    /// Splits a verbose compile's error output into the version text it opened with (the
    /// version rule's output, through the `ends` line; `None` when it did not open with
    /// one) and the compile's own messages without the lines the arguments added.
    pub fn split(&self, stderr: &str) -> (Option<String>, String) {
        let Some(end) = self.ends.regex().and_then(|re| re.find(stderr)) else {
            return (None, stderr.to_string());
        };
        let cut = stderr[end.end()..]
            .find('\n')
            .map_or(stderr.len(), |n| end.end() + n + 1);
        let (banner, rest) = stderr.split_at(cut);
        let quiet: String = rest
            .split_inclusive('\n')
            .filter(|l| {
                let line = l.trim_end_matches(['\n', '\r']);
                !self.noise.iter().any(|p| p.is_match(line))
            })
            .collect();
        (Some(banner.to_string()), quiet)
    }
}

/// A descriptor's regular expression. Builtin descriptors' patterns (checked by this crate's
/// tests) are compiled on first use: a machine needs a handful of the registry's 45 patterns,
/// and compiling them all was most of every command's start-up. A user's file is compiled
/// when read, so a bad pattern is reported with its position.
#[derive(Debug, Clone)]
pub struct Pattern {
    src: String,
    re: std::sync::OnceLock<Option<Regex>>,
}

impl Pattern {
    pub(crate) fn lazy(src: &str) -> Pattern {
        Pattern {
            src: src.to_string(),
            re: std::sync::OnceLock::new(),
        }
    }

    pub(crate) fn compiled(re: Regex) -> Pattern {
        Pattern {
            src: re.as_str().to_string(),
            re: std::sync::OnceLock::from(Some(re)),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.src
    }

    /// The compiled expression; `None` only for a builtin pattern that does not compile,
    /// which the builtin tests rule out (it then matches nothing).
    pub fn regex(&self) -> Option<&Regex> {
        self.re.get_or_init(|| Regex::new(&self.src).ok()).as_ref()
    }

    pub fn is_match(&self, haystack: &str) -> bool {
        self.regex().is_some_and(|r| r.is_match(haystack))
    }
}

impl Serialize for Pattern {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.src)
    }
}

/// One way of spelling a facet for this family.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Candidate {
    pub flags: Vec<String>,
    pub link: Vec<String>,
    pub libs: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub languages: Vec<Language>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub versions: Option<VersionRange>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    /// A message, not a build input: left out of the serialised descriptor, so editing it
    /// moves no hash.
    #[serde(skip)]
    pub hint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Candidate {
    /// Whether this candidate is meant for a compiler of version `v` (unknown version: yes).
    pub fn fits(&self, v: Option<&Version>) -> bool {
        match (&self.versions, v) {
            (Some(r), Some(v)) => r.contains(v),
            _ => true,
        }
    }

    pub fn applies_to(&self, lang: Language) -> bool {
        self.languages.is_empty() || self.languages.contains(&lang)
    }
}

/// A parsed, validated toolchain descriptor.
#[derive(Debug, Clone, Serialize)]
pub struct Toolchain {
    pub name: String,
    pub description: String,
    pub cmake_id: Vec<String>,
    pub meson_id: Option<String>,
    pub executables: Executables,
    pub version: Vec<VersionRule>,
    pub identity: Identity,
    /// Facet name -> candidates in the order the probe tries them.
    pub facets: IndexMap<String, Vec<Candidate>>,
    /// How its driver spells definitions, libraries, outputs (defaults merged).
    pub driver: crate::Driver,
    pub env: IndexMap<String, String>,
    /// The system packages that install it. Not part of the spec hash: they say where the
    /// compiler comes from, not what it is.
    #[serde(skip_serializing_if = "crate::Packages::is_empty")]
    pub packages: crate::Packages,
    pub notes: Vec<String>,
    /// Where the descriptor came from (`builtin:gcc.toml` or a path).
    #[serde(skip)]
    pub origin: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Executables {
    pub c: Vec<String>,
    pub cxx: Vec<String>,
    pub fortran: Vec<String>,
    pub suffix: Option<Pattern>,
}

impl Executables {
    pub fn for_lang(&self, lang: Language) -> &[String] {
        match lang {
            Language::C => &self.c,
            Language::Cxx => &self.cxx,
            Language::Fortran => &self.fortran,
        }
    }

    /// If `file_name` is one of this family's executables for `lang` (possibly with a version
    /// suffix such as `gcc-12`), the base name it matched.
    pub fn matches(&self, lang: Language, file_name: &str) -> Option<&str> {
        self.for_lang(lang).iter().map(String::as_str).find(|base| {
            if file_name == *base {
                return true;
            }
            match file_name.strip_prefix(*base) {
                Some(rest) if !rest.is_empty() => whole_match(&self.suffix, rest),
                _ => false,
            }
        })
    }
}

impl Toolchain {
    /// Languages this family has executables for.
    pub fn languages(&self) -> Vec<Language> {
        Language::ALL
            .into_iter()
            .filter(|l| !self.executables.for_lang(*l).is_empty())
            .collect()
    }

    /// Candidates of a facet, in probe order; empty when the family has no such facet.
    pub fn facet(&self, name: &str) -> &[Candidate] {
        self.facets.get(name).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The OpenMP runtime library the family's first OpenMP spelling links.
    pub fn openmp_runtime(&self) -> Option<&str> {
        self.facet("openmp")
            .iter()
            .find_map(|c| c.runtime.as_deref())
    }

    /// Parses and validates a descriptor. All problems in the file are reported together.
    pub fn parse(src: &Source) -> Result<Toolchain, Diagnostics> {
        let raw: RawToolchain = crate::diag::parse_toml(src)?;
        let mut errs = Vec::new();
        let name = raw.name.get_ref().clone();
        let packages = raw.packages.clone().check(src, &mut errs);
        if !valid_ident(&name) {
            errs.push(
                Diagnostic::at(
                    src,
                    raw.name.span(),
                    format!("invalid toolchain name `{name}`"),
                )
                .expected("lowercase letters, digits and `-`, starting with a letter"),
            );
        }
        check_executables(src, &raw, &mut errs);
        check_words(src, &raw, &mut errs);
        // Builtin descriptors are checked by tests; a user's file is checked now.
        let checks = Checks::of(src);
        let suffix = match &raw.executables.suffix {
            Some(s) => pattern(src, s, checks, &mut errs),
            None => None,
        };
        let version = raw
            .version
            .iter()
            .map(|rule| version_rule(src, rule, checks, &mut errs))
            .collect();
        let base = defaults();
        let driver = raw.driver.over(&base.driver, src, &mut errs);
        let facets = facets(src, &raw.facets, base, checks, &mut errs);
        if !errs.is_empty() {
            return Err(Diagnostics {
                diagnostics: errs,
                sources: vec![src.clone()],
            });
        }
        Ok(Toolchain {
            name,
            description: raw.description,
            cmake_id: unspan(raw.cmake_id),
            meson_id: raw.meson_id.map(Spanned::into_inner),
            executables: Executables {
                c: unspan(raw.executables.c),
                cxx: unspan(raw.executables.cxx),
                fortran: unspan(raw.executables.fortran),
                suffix,
            },
            version,
            identity: raw.identity.map(Spanned::into_inner).unwrap_or_default(),
            facets,
            driver,
            env: raw
                .env
                .into_iter()
                .map(|(k, v)| (k.into_inner(), v))
                .collect(),
            packages,
            notes: raw.notes,
            origin: src.name.clone(),
        })
    }

    /// Reads a version from one invocation's output, if this family claims it.
    /// `exe_name` is the executable's file name (some families are told apart only by it).
    pub fn detect_version(
        &self,
        exe_name: &str,
        args: &[String],
        output: &str,
    ) -> Option<Detected> {
        for (i, rule) in self.version.iter().enumerate() {
            if rule.args != args {
                continue;
            }
            if !rule.only_names.is_empty()
                && !rule
                    .only_names
                    .iter()
                    .any(|n| base_matches(exe_name, n, &self.executables.suffix))
            {
                continue;
            }
            if rule.reject.iter().any(|r| r.is_match(output)) {
                return None;
            }
            for re in rule.regex.iter().filter_map(Pattern::regex) {
                if let Some(c) = re.captures(output) {
                    let text = match c.name("version") {
                        Some(m) => m.as_str().to_string(),
                        // Banners that split the version (`Release 6.0(Hibiya) Build 1037`):
                        // named groups `major`, `minor`, `patch` are joined with `.`.
                        None if c.name("major").is_some() => ["major", "minor", "patch"]
                            .iter()
                            .filter_map(|g| c.name(g).map(|m| m.as_str()))
                            .collect::<Vec<_>>()
                            .join("."),
                        None => c.get(1)?.as_str().to_string(),
                    };
                    let text = normalise_version(&text);
                    if let Some(v) = Version::parse(&text) {
                        return Some(Detected {
                            version: v,
                            rule: i,
                            imprecise: rule.imprecise,
                        });
                    }
                }
            }
        }
        None
    }

    /// Canonical JSON of the whole descriptor (what `cfgmx toolchains --json` prints).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("descriptor serialises")
    }
}

/// A descriptor lists at least one compiler, each by a plain file name.
fn check_executables(src: &Source, raw: &RawToolchain, errs: &mut Vec<Diagnostic>) {
    let ex = &raw.executables;
    if ex.c.is_empty() && ex.cxx.is_empty() && ex.fortran.is_empty() {
        errs.push(
            Diagnostic::file(&src.name, "`executables` lists no compiler")
                .expected("at least one of `c`, `cxx`, `fortran`"),
        );
    }
    // An executable name is looked up in each PATH directory and pasted into CMake files
    // and shell scripts: a path or a shell metacharacter there would escape all of that.
    let only_names = raw.version.iter().flat_map(|r| &r.only_names);
    for e in
        ex.c.iter()
            .chain(&ex.cxx)
            .chain(&ex.fortran)
            .chain(only_names)
    {
        if !valid_file_name(e.get_ref()) {
            errs.push(
                Diagnostic::at(
                    src,
                    e.span(),
                    format!("invalid executable name {:?}", e.get_ref()),
                )
                .expected(
                    "a plain file name (letters, digits, `.`, `_`, `+`, `-`; no `/`, \
                     spaces or shell characters)",
                ),
            );
        }
    }
}

/// The words a descriptor gives that end up in other files and programs: compiler ids,
/// variable names, identity macros; and the exit statuses its version rules accept.
fn check_words(src: &Source, raw: &RawToolchain, errs: &mut Vec<Diagnostic>) {
    // Ids are compared with what CMake and Meson report and written into their files
    // (a `;` would split a CMake list), so they are single words.
    for id in raw.cmake_id.iter().chain(&raw.meson_id) {
        check_word(
            src,
            id,
            "compiler id",
            "`GNU`, `IntelLLVM`, `intel-llvm`",
            errs,
        );
    }
    // The variables are set for every run of the compiler and written into env scripts.
    for k in raw.env.keys() {
        errs.extend(crate::names::env_name_error(src, k));
    }
    // Identity macros are pasted into the probe's C and Fortran programs (`#ifdef NAME`):
    // anything but an identifier would change the program.
    let no_identity = Identity::default();
    let id = raw.identity.as_ref().map_or(&no_identity, |i| i.get_ref());
    let id_span = raw.identity.as_ref().map_or(0..0, |i| i.span());
    for m in id
        .all
        .iter()
        .chain(&id.none)
        .chain(&id.version)
        .chain(&id.fortran_all)
    {
        let ok = m.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && m.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok {
            errs.push(
                Diagnostic::at(
                    src,
                    id_span.clone(),
                    format!("[identity]: invalid macro name {m:?}"),
                )
                .expected("a C identifier such as `__GNUC__`"),
            );
        }
    }
    // An exit status is 0..=255 and 0 always counts; anything else listed never matches.
    for st in raw.version.iter().filter_map(|r| r.ok_status.as_ref()) {
        if let Some(bad) = st.get_ref().iter().find(|s| !(1..=255).contains(*s)) {
            errs.push(
                Diagnostic::at(
                    src,
                    st.span(),
                    format!("`ok_status` lists {bad}, which is not a failing exit status"),
                )
                .expected("exit statuses from 1 to 255 (0 always counts)"),
            );
        }
    }
}

/// A pattern of a descriptor: compiled now for a user's file (`Checks::All`), when first used for
/// a builtin one (tests compile those).
fn pattern(
    src: &Source,
    s: &Spanned<String>,
    checks: Checks,
    errs: &mut Vec<Diagnostic>,
) -> Option<Pattern> {
    if checks == Checks::All {
        compile_regex(src, s, errs).map(Pattern::compiled)
    } else {
        Some(Pattern::lazy(s.get_ref()))
    }
}

/// One `[[version]]` rule.
fn version_rule(
    src: &Source,
    rule: &RawVersionRule,
    checks: Checks,
    errs: &mut Vec<Diagnostic>,
) -> VersionRule {
    // A rule with no pattern can never read a version: the family would silently
    // never be recognised by it.
    if rule.regex.get_ref().is_empty() {
        errs.push(
            Diagnostic::at(src, rule.regex.span(), "`regex` lists no pattern")
                .expected("at least one pattern with a `(?P<version>...)` group"),
        );
    }
    let regex: Vec<Pattern> = rule
        .regex
        .get_ref()
        .iter()
        .filter_map(|r| {
            let p = pattern(src, r, checks, errs)?;
            // The version is read from a capture group (see `detect_version`): a
            // pattern without one matches the banner and yields nothing.
            if checks == Checks::All && p.regex().is_some_and(|re| re.captures_len() < 2) {
                errs.push(
                    Diagnostic::at(
                        src,
                        r.span(),
                        "version pattern has no capture group to read the version from",
                    )
                    .expected("a `(?P<version>...)` group (or `major`/`minor`/`patch` groups)"),
                );
            }
            Some(p)
        })
        .collect();
    let reject = rule
        .reject
        .iter()
        .filter_map(|r| pattern(src, r, checks, errs))
        .collect();
    VersionRule {
        args: rule.args.clone(),
        regex,
        reject,
        only_names: rule
            .only_names
            .iter()
            .map(|n| n.get_ref().clone())
            .collect(),
        ok_status: rule
            .ok_status
            .as_ref()
            .map(|s| s.get_ref().clone())
            .unwrap_or_default(),
        imprecise: rule.imprecise,
        verbose: rule.verbose.as_ref().map(|v| Verbose {
            args: v.args.clone(),
            ends: pattern(src, &v.ends, checks, errs).unwrap_or_else(|| Pattern::lazy("$^")),
            noise: v
                .noise
                .iter()
                .filter_map(|n| pattern(src, n, checks, errs))
                .collect(),
        }),
    }
}

/// The family's own facets, then the defaults' it does not spell itself; one it spells
/// as `[]` it has not (MSVC has no PIC flag).
fn facets(
    src: &Source,
    raw: &IndexMap<String, Vec<Spanned<RawCandidate>>>,
    base: &Defaults,
    checks: Checks,
    errs: &mut Vec<Diagnostic>,
) -> IndexMap<String, Vec<Candidate>> {
    let own = raw.iter().map(|(n, c)| (src, n, c));
    let inherited = base
        .facets
        .iter()
        .filter(|(n, _)| !raw.contains_key(*n))
        .map(|(n, c)| (&base.src, n, c));
    let mut facets = IndexMap::new();
    for (src, fname, cands) in own.chain(inherited) {
        if cands.is_empty() {
            continue;
        }
        let out = cands
            .iter()
            .map(|c| candidate(src, fname, c, checks, errs))
            .collect();
        facets.insert(fname.clone(), out);
    }
    facets
}

/// One spelling of facet `fname`.
fn candidate(
    src: &Source,
    fname: &str,
    c: &Spanned<RawCandidate>,
    checks: Checks,
    errs: &mut Vec<Diagnostic>,
) -> Candidate {
    let versions = match &c.get_ref().versions {
        Some(r) => match VersionRange::parse(r) {
            Ok(r) => Some(r),
            Err(e) => {
                errs.push(Diagnostic::at(
                    src,
                    c.span(),
                    format!("facet `{fname}`: {e}"),
                ));
                None
            }
        },
        None => None,
    };
    let rc = c.get_ref();
    for f in rc.flags.iter().chain(&rc.link) {
        check_flag(src, f, errs);
    }
    if checks == Checks::All {
        if let Some(rt) = &rc.runtime {
            check_runtime(src, rt, errs);
        }
        for l in &rc.libs {
            check_lib(src, l, errs);
        }
    }
    Candidate {
        flags: rc.flags.iter().map(|f| f.get_ref().clone()).collect(),
        link: rc.link.iter().map(|f| f.get_ref().clone()).collect(),
        libs: rc.libs.iter().map(|l| l.get_ref().clone()).collect(),
        languages: rc.languages.clone(),
        versions,
        runtime: rc.runtime.as_ref().map(|r| r.get_ref().clone()),
        hint: rc.hint.clone(),
        note: rc.note.clone(),
    }
}

/// What every descriptor starts from (`toolchains/base/defaults.toml`): driver spellings and
/// the facets most families spell alike.
struct Defaults {
    src: Source,
    driver: crate::Driver,
    facets: IndexMap<String, Vec<Spanned<RawCandidate>>>,
    build_modes: Vec<BuildMode>,
}

/// A value of the `build` axis: the facet of its name, and the build systems' names for it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BuildMode {
    #[serde(skip_deserializing)]
    pub name: String,
    /// `CMAKE_BUILD_TYPE`.
    pub cmake: String,
    /// Meson's `buildtype`.
    pub meson: String,
}

/// The build modes, in `toolchains/base/defaults.toml`'s order.
pub fn build_modes() -> &'static [BuildMode] {
    &defaults().build_modes
}

fn defaults() -> &'static Defaults {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct RawDefaults {
        driver: crate::driver::RawDriver,
        build_modes: IndexMap<String, BuildMode>,
        #[serde(default)]
        facets: IndexMap<String, Vec<Spanned<RawCandidate>>>,
    }
    static D: std::sync::OnceLock<Defaults> = std::sync::OnceLock::new();
    D.get_or_init(|| {
        let src = Source::new(
            "builtin:toolchains/base/defaults.toml",
            crate::builtin::builtin_toolchain_defaults(),
        );
        let raw: RawDefaults =
            crate::diag::parse_toml(&src).expect("embedded toolchain defaults parse");
        let mut errs = Vec::new();
        let driver = raw.driver.over(&crate::Driver::default(), &src, &mut errs);
        assert!(errs.is_empty(), "embedded toolchain defaults are valid");
        Defaults {
            src,
            driver,
            facets: raw.facets,
            build_modes: raw
                .build_modes
                .into_iter()
                .map(|(name, m)| BuildMode { name, ..m })
                .collect(),
        }
    })
}

/// The driver spellings of a compiler not yet known to be of any family (the probe's first
/// look at a generic `cc`).
pub fn default_driver() -> &'static crate::Driver {
    &defaults().driver
}

/// Result of reading a version banner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detected {
    pub version: Version,
    /// Index of the version rule that matched.
    pub rule: usize,
    /// Only a major version (ask again with a later rule for more).
    pub imprecise: bool,
}

/// `16_1_1` (some banners join with `_`) -> `16.1.1`.
fn normalise_version(s: &str) -> String {
    s.replace('_', ".")
}

fn base_matches(exe_name: &str, base: &str, suffix: &Option<Pattern>) -> bool {
    if exe_name == base {
        return true;
    }
    match exe_name.strip_prefix(base) {
        Some(rest) if !rest.is_empty() => whole_match(suffix, rest),
        _ => false,
    }
}

/// `rest` is all suffix (the pattern matches from its first to its last character).
fn whole_match(suffix: &Option<Pattern>, rest: &str) -> bool {
    suffix
        .as_ref()
        .and_then(Pattern::regex)
        .and_then(|re| re.find(rest))
        .is_some_and(|m| m.start() == 0 && m.end() == rest.len())
}

fn unspan(v: Vec<Spanned<String>>) -> Vec<String> {
    v.into_iter().map(Spanned::into_inner).collect()
}

/// The OpenMP runtimes cfgmx knows: every `runtime` the builtin toolchain descriptors name, in
/// file order. A user's descriptor or provider may only name these; the list grows by adding
/// a builtin descriptor, never by editing Rust.
pub fn openmp_runtimes() -> &'static [String] {
    static RUNTIMES: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    RUNTIMES.get_or_init(|| {
        let mut out: Vec<String> = Vec::new();
        for (f, t) in crate::builtin::builtin_toolchain_files() {
            // Builtin sources skip the runtime check, so this does not recurse.
            let tc = Toolchain::parse(&Source::new(format!("builtin:toolchains/{f}"), *t))
                .expect("embedded toolchain descriptors are valid");
            for c in tc.facets.values().flatten() {
                if let Some(rt) = &c.runtime {
                    if !out.contains(rt) {
                        out.push(rt.clone());
                    }
                }
            }
        }
        out
    })
}

/// An OpenMP runtime must be one the builtin data knows ([`openmp_runtimes`]): the
/// probe, proofs and BLAS matching compare runtimes by name, so a misspelt one would never
/// match anything and every variant using it would fail far from its cause.
pub(crate) fn check_runtime(src: &Source, rt: &Spanned<String>, errs: &mut Vec<Diagnostic>) {
    let known = openmp_runtimes();
    if !known.iter().any(|k| k == rt.get_ref()) {
        errs.push(
            Diagnostic::at(
                src,
                rt.span(),
                format!("unknown OpenMP runtime {:?}", rt.get_ref()),
            )
            .expected(format!("one of {}", known.join(", "))),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builtin patterns are compiled only on first use, so a bad one would surface on some
    /// user's machine as a family never recognised: every one must compile here.
    #[test]
    fn every_builtin_pattern_compiles() {
        let reg = crate::Registry::builtin();
        let mut n = 0;
        for t in reg.toolchains.values() {
            let rules = t
                .version
                .iter()
                .flat_map(|r| r.regex.iter().chain(&r.reject));
            for p in rules.chain(&t.executables.suffix) {
                assert!(p.regex().is_some(), "{}: {:?}", t.name, p.as_str());
                n += 1;
            }
        }
        assert!(n > 40, "only {n} patterns: is the registry empty?");
    }

    #[test]
    fn a_users_bad_pattern_is_refused_when_read() {
        let text = "name = \"mycc\"\n[executables]\nc = [\"mycc\"]\n[[version]]\nargs = [\"--version\"]\nregex = ['mycc (\\d+']\n";
        let err = Toolchain::parse(&Source::new("user.toml", text)).unwrap_err();
        assert!(
            err.to_string().contains("invalid regular expression"),
            "{err}"
        );
        // the same text as a builtin is read lazily: not compiled, so not refused here
        assert!(Toolchain::parse(&Source::new("builtin:toolchains/mycc.toml", text)).is_ok());
    }
}
