//! Python interpreters as an axis: the `python/*.toml` data (how an implementation's
//! executables are named and what the probe asks each one), the profile's record of an
//! interpreter found, and the choice of one for a variant's `python` axis value.
//!
//! The axis value (`"3.11"`) is in the spec hash like any axis value; the interpreter it
//! resolves to on a machine (its path, full version and tags) is in the concrete hash, so
//! another interpreter of the same minor version is another concrete variant. A value no
//! probed interpreter answers to makes the variant unavailable, with the reason: it is never
//! built with another interpreter.
//!
//! A leaf of the model: it refers to `diag` only (the profile holds its records, the registry
//! its data, concretisation calls [`choose`]).

use crate::diag::{Diagnostic, Diagnostics, Source};
use serde::{Deserialize, Serialize};
use toml::Spanned;

/// The matrix axis naming the interpreter.
pub const AXIS: &str = "python";

/// What a `python` axis value must look like, for messages.
pub const VALUE_EXPECTED: &str =
    "a Python version as a quoted string MAJOR.MINOR, as \"3.12\" (TOML reads 3.10 as 3.1)";

/// Whether `text` is a `python` axis value: `MAJOR.MINOR`, digits only.
pub fn valid_value(text: &str) -> bool {
    let mut parts = text.split('.');
    let num = |p: Option<&str>| {
        p.is_some_and(|x| !x.is_empty() && x.len() <= 3 && x.bytes().all(|b| b.is_ascii_digit()))
    };
    num(parts.next()) && num(parts.next()) && parts.next().is_none()
}

/// One Python implementation's facts (`python/cpython.toml`).
#[derive(Debug, Clone)]
pub struct PythonImpl {
    pub name: String,
    pub description: String,
    /// Executable names it installs; the `version` group is the axis value one answers to.
    pub names: regex::Regex,
    /// The unversioned name (`python3`), reported beside the interpreter it resolves to.
    pub default: Option<String>,
    /// Arguments that make an interpreter print its `key=value` facts.
    pub query: Vec<String>,
    /// Version managers whose shims stand for interpreters installed elsewhere.
    pub shims: Vec<ShimRule>,
}

/// A version manager's shims directory (pyenv's `~/.pyenv/shims`): its scripts run the
/// manager to pick an interpreter, so the probe asks the interpreters it installs instead.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ShimRule {
    /// The manager, for messages (`pyenv`).
    pub manager: String,
    /// The shims directory's own name (`shims`).
    pub dir: String,
    /// Where its interpreters are, relative to the shims directory: `/`-separated, a `*`
    /// component standing for every subdirectory (`../versions/*/bin`).
    pub interpreters: String,
}

impl ShimRule {
    /// The interpreter directories `dir` stands for when it is this manager's shims
    /// directory (it has the rule's name and the pattern finds at least one directory), in
    /// name order; `None` otherwise.
    pub fn expand(&self, dir: &std::path::Path) -> Option<Vec<std::path::PathBuf>> {
        if dir.file_name()? != self.dir.as_str() {
            return None;
        }
        let mut at = vec![dir.to_path_buf()];
        for part in self.interpreters.split('/').filter(|p| !p.is_empty()) {
            at = match part {
                "*" => at
                    .iter()
                    .filter_map(|d| std::fs::read_dir(d).ok())
                    .flat_map(|rd| {
                        let mut subs: Vec<_> = rd.flatten().map(|e| e.path()).collect();
                        subs.sort();
                        subs
                    })
                    .filter(|p| p.is_dir())
                    .collect(),
                ".." => at
                    .iter()
                    .filter_map(|d| d.parent())
                    .map(|d| d.to_path_buf())
                    .collect(),
                name => at
                    .iter()
                    .map(|d| d.join(name))
                    .filter(|p| p.is_dir())
                    .collect(),
            };
        }
        (!at.is_empty()).then_some(at)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawImpl {
    name: Spanned<String>,
    #[serde(default)]
    description: String,
    names: Spanned<String>,
    #[serde(default)]
    default: Option<Spanned<String>>,
    query: RawQuery,
    #[serde(default)]
    shims: Vec<Spanned<ShimRule>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQuery {
    args: Vec<String>,
}

impl PythonImpl {
    /// Parses one data file, reporting every problem at once.
    pub fn parse(src: &Source) -> Result<PythonImpl, Diagnostics> {
        let raw: RawImpl = crate::diag::parse_toml(src)?;
        let mut errs = Vec::new();
        // The name and `default` are only compared (with records, with file names in a
        // directory), never written into a command or a file.
        let name = raw.name.get_ref().clone();
        if name.is_empty() {
            errs.push(
                Diagnostic::at(src, raw.name.span(), "empty Python implementation name")
                    .expected("a name, as \"cpython\""),
            );
        }
        let names = match regex::Regex::new(raw.names.get_ref()) {
            Ok(r) if r.capture_names().any(|n| n == Some("version")) => Some(r),
            Ok(_) => {
                errs.push(
                    Diagnostic::at(src, raw.names.span(), "`names` has no `version` group")
                        .expected(
                            "a regex with (?P<version>...), as '^python(?P<version>3\\.[0-9]+)$'",
                        ),
                );
                None
            }
            Err(e) => {
                errs.push(
                    Diagnostic::at(src, raw.names.span(), format!("invalid regex: {e}"))
                        .expected("a regex over executable names"),
                );
                None
            }
        };
        if let Some(d) = raw.default.as_ref().filter(|d| d.get_ref().contains('/')) {
            errs.push(
                Diagnostic::at(
                    src,
                    d.span(),
                    format!("`default` {:?} is a path", d.get_ref()),
                )
                .expected("an executable's file name, as \"python3\""),
            );
        }
        if raw.query.args.is_empty() {
            errs.push(
                Diagnostic::file(&src.name, "`[query] args` is empty")
                    .expected("the interpreter's arguments that print its facts"),
            );
        }
        for rule in &raw.shims {
            let pat = &rule.get_ref().interpreters;
            let bad = pat.starts_with('/')
                || pat.is_empty()
                || pat
                    .split('/')
                    .any(|c| c.contains('*') && c != "*" || c == ".");
            if bad || rule.get_ref().dir.contains('/') || rule.get_ref().dir.is_empty() {
                errs.push(
                    Diagnostic::at(
                        src,
                        rule.span(),
                        format!("shim rule {pat:?} cannot be used"),
                    )
                    .expected(
                        "a directory name and a relative `/`-separated pattern whose `*` \
                             is a whole component, as dir = \"shims\", interpreters = \
                             \"../versions/*/bin\"",
                    ),
                );
            }
        }
        match (errs.is_empty(), names) {
            (true, Some(names)) => Ok(PythonImpl {
                name,
                description: raw.description,
                names,
                default: raw.default.map(|d| d.into_inner()),
                query: raw.query.args,
                shims: raw.shims.into_iter().map(|r| r.into_inner()).collect(),
            }),
            _ => Err(Diagnostics {
                diagnostics: errs,
                sources: vec![src.clone()],
            }),
        }
    }

    /// The axis value an executable named `file` answers to (`python3.11` -> `3.11`).
    pub fn version_of(&self, file: &str) -> Option<String> {
        self.names
            .captures(file)
            .and_then(|c| c.name("version"))
            .map(|m| m.as_str().to_string())
    }
}

/// One interpreter the probe asked.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PythonRecord {
    /// As found, by its versioned name (`/usr/bin/python3.11`).
    pub path: String,
    /// The implementation's data file name (`cpython`).
    pub implementation: String,
    /// The axis value it answers to (`3.11`).
    pub minor: String,
    /// Its full version (`3.11.2`).
    pub version: String,
    /// The PEP 425 interpreter tag of its wheels (`cp311`).
    pub tag: String,
    /// The ABI tag of its extension modules (`cp311`).
    pub abi: String,
    /// The file suffix of an extension module it imports.
    pub ext_suffix: String,
    /// Its `venv` makes an environment with pip.
    pub venv: bool,
    /// Other names found for the same file (`/usr/bin/python3`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
}

/// An executable named like an interpreter that did not answer the query.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PythonFailure {
    pub path: String,
    /// The axis value its name says (`3.12`); empty for the unversioned name.
    pub minor: String,
    pub error: String,
}

impl PythonRecord {
    /// Reads the `key=value` answer of the implementation's query; `Err` names what is missing.
    pub fn from_answer(
        path: &str,
        implementation: &str,
        minor: &str,
        answer: &str,
    ) -> Result<PythonRecord, String> {
        let get = |k: &str| {
            answer.lines().find_map(|l| {
                l.trim_end()
                    .strip_prefix(k)
                    .and_then(|r| r.strip_prefix('='))
                    .map(str::to_string)
            })
        };
        let mut missing = Vec::new();
        let mut need = |k: &'static str| {
            get(k).filter(|v| !v.is_empty()).unwrap_or_else(|| {
                missing.push(k);
                String::new()
            })
        };
        let version = need("version");
        let tag = need("tag");
        let abi = need("abi");
        let ext_suffix = need("ext_suffix");
        if !missing.is_empty() {
            return Err(format!(
                "{path} answered without {}: {:?}",
                missing.join(", "),
                answer.trim()
            ));
        }
        if version != minor && !version.starts_with(&format!("{minor}.")) {
            return Err(format!(
                "{path} is named for Python {minor} but answers version {version}"
            ));
        }
        Ok(PythonRecord {
            path: path.to_string(),
            implementation: implementation.to_string(),
            minor: minor.to_string(),
            version,
            tag,
            abi,
            ext_suffix,
            venv: get("venv").as_deref() == Some("1"),
            aliases: Vec::new(),
        })
    }
}

/// The interpreter for axis value `want` among the probe's (`Profile::pythons` and
/// `python_failures`): the first answering to it that can make a virtual environment. `Err` is
/// the reason the variant is unavailable.
pub fn choose(
    want: &str,
    pythons: &[PythonRecord],
    failures: &[PythonFailure],
) -> Result<PythonRecord, String> {
    let same: Vec<&PythonRecord> = pythons.iter().filter(|p| p.minor == want).collect();
    if let Some(p) = same.iter().find(|p| p.venv) {
        return Ok((*p).clone());
    }
    if let Some(p) = same.first() {
        return Err(format!(
            "Python {want} at {} has no venv module with pip (Debian: python{want}-venv)",
            p.path
        ));
    }
    let found: Vec<String> = pythons
        .iter()
        .map(|p| format!("{} ({})", p.path, p.version))
        .collect();
    let mut why = format!(
        "missing Python: no interpreter answers to python = {want:?} (found: {})",
        if found.is_empty() {
            "none".to_string()
        } else {
            found.join(", ")
        }
    );
    // One named for it that did not answer says what to fix.
    if let Some(f) = failures.iter().find(|f| f.minor == want) {
        why.push_str(&format!("; {} did not answer: {}", f.path, f.error));
    }
    Err(why)
}

/// What of an interpreter goes into the concrete hash: where it is and what it builds (not
/// the other names it was found under).
pub fn hashed(p: &PythonRecord) -> serde_json::Value {
    serde_json::json!({
        "path": p.path,
        "implementation": p.implementation,
        "version": p.version,
        "tag": p.tag,
        "abi": p.abi,
        "ext_suffix": p.ext_suffix,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_data_and_answers() {
        for (v, ok) in [
            ("3.12", true),
            ("3.9", true),
            ("3", false),
            ("3.12.1", false),
            ("3.x", false),
            ("", false),
            ("py3.12", false),
        ] {
            assert_eq!(valid_value(v), ok, "{v}");
        }
        let reg = crate::Registry::builtin();
        let cp = reg.python.get("cpython").expect("python/cpython.toml");
        assert_eq!(cp.version_of("python3.12").as_deref(), Some("3.12"));
        assert_eq!(cp.version_of("python3.12-config"), None);
        assert_eq!(cp.version_of("python3"), None);
        let r = PythonRecord::from_answer(
            "/usr/bin/python3.11",
            "cpython",
            "3.11",
            "version=3.11.2\ntag=cp311\nabi=cp311\next_suffix=.cpython-311-x86_64-linux-gnu.so\nvenv=1\n",
        )
        .unwrap();
        assert_eq!(
            (r.tag.as_str(), r.abi.as_str(), r.venv),
            ("cp311", "cp311", true)
        );
        let e = PythonRecord::from_answer("/x/python3.12", "cpython", "3.12", "version=3.11.2\n")
            .unwrap_err();
        assert!(e.contains("without tag, abi, ext_suffix"), "{e}");
        let e = PythonRecord::from_answer(
            "/x/python3.12",
            "cpython",
            "3.12",
            "version=3.11.2\ntag=cp311\nabi=cp311\next_suffix=.so\n",
        )
        .unwrap_err();
        assert!(e.contains("answers version 3.11.2"), "{e}");
        let mut pythons = vec![r];
        let mut failures = Vec::new();
        let path = choose("3.11", &pythons, &failures).unwrap().path;
        assert_eq!(path, "/usr/bin/python3.11");
        let why = choose("3.99", &pythons, &failures).unwrap_err();
        assert!(
            why.contains("python = \"3.99\"") && why.contains("/usr/bin/python3.11 (3.11.2)"),
            "{why}"
        );
        failures.push(PythonFailure {
            path: "/shims/python3.99".into(),
            minor: "3.99".into(),
            error: "exit status 127".into(),
        });
        let why = choose("3.99", &pythons, &failures).unwrap_err();
        assert!(why.ends_with("; /shims/python3.99 did not answer: exit status 127"));
        pythons[0].venv = false;
        let why = choose("3.11", &pythons, &failures).unwrap_err();
        assert!(why.contains("no venv"), "{why}");
    }
}
