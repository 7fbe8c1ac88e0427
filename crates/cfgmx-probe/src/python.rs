//! Python interpreters: the executables `python/*.toml` names (`python3.11`, and the
//! unversioned `python3`) in the searched directories, each real file asked once with its
//! implementation's query (version, wheel tag, ABI tag, extension suffix, whether `venv`
//! works). What a matrix's `python` axis value resolves to.
//!
//! A version manager's shims directory on `PATH` (pyenv's) is replaced by the directories of the
//! interpreters it installs (`[[shims]]` in the data): a shim runs the manager's scripts first,
//! and answers only for the version the manager selects.
//!
//! An interpreter is recorded by the file it resolves to: a virtual environment's `python3.11`
//! on `PATH` is a link to its base interpreter, and environments are made from the base.

use cfgmx_exec::Cmd;
use cfgmx_model::{PythonFailure, PythonRecord, Registry};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A candidate interpreter.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// As found (`/usr/bin/python3`).
    pub path: PathBuf,
    /// The file it resolves to.
    pub real: PathBuf,
    pub implementation: String,
    /// The axis value its name says (`3.11`); empty for the unversioned name.
    pub minor: String,
}

/// The candidates in `dirs`, in search order; versioned names before the unversioned one, so a
/// record keeps the versioned name.
pub fn discover(reg: &Registry, dirs: &[PathBuf]) -> Vec<Candidate> {
    let dirs = unshimmed(reg, dirs);
    let mut out = Vec::new();
    for versioned in [true, false] {
        for dir in &dirs {
            let Ok(rd) = std::fs::read_dir(dir) else {
                continue;
            };
            let mut names: Vec<String> = rd
                .flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .collect();
            names.sort();
            for name in names {
                for imp in reg.python.values() {
                    let minor = match (imp.version_of(&name), versioned) {
                        (Some(m), true) => m,
                        (None, false) if imp.default.as_deref() == Some(name.as_str()) => {
                            String::new()
                        }
                        _ => continue,
                    };
                    let path = dir.join(&name);
                    let Ok(real) = std::fs::canonicalize(&path) else {
                        continue;
                    };
                    if executable(&real) {
                        out.push(Candidate {
                            path,
                            real,
                            implementation: imp.name.clone(),
                            minor,
                        });
                    }
                }
            }
        }
    }
    out
}

/// `dirs` with each version manager's shims directory replaced by the directories of the
/// interpreters it installs (data: `[[shims]]`); the shims are never run.
fn unshimmed(reg: &Registry, dirs: &[PathBuf]) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    for dir in dirs {
        let installed = reg
            .python
            .values()
            .flat_map(|imp| &imp.shims)
            .find_map(|rule| rule.expand(dir));
        for d in installed.unwrap_or_else(|| vec![dir.clone()]) {
            if !out.contains(&d) {
                out.push(d);
            }
        }
    }
    out
}

fn executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Asks each real file once, all at once (an interpreter's start-up is most of a query); the other names it was found under become its
/// aliases. A file that fails to answer is a failure, not a record.
pub fn query(
    reg: &Registry,
    found: &[Candidate],
    timeout: Duration,
) -> (Vec<PythonRecord>, Vec<PythonFailure>) {
    // The first name each real file was found under, in search order.
    let mut firsts: Vec<&Candidate> = Vec::new();
    for c in found {
        if !firsts.iter().any(|f| f.real == c.real) {
            firsts.push(c);
        }
    }
    let answers: Vec<Option<cfgmx_exec::Outcome>> = std::thread::scope(|s| {
        let asked: Vec<_> = firsts
            .iter()
            .map(|c| {
                s.spawn(move || {
                    let imp = reg.python.get(&c.implementation)?;
                    Some(Cmd::new(&c.real).args(&imp.query).timeout(timeout).output())
                })
            })
            .collect();
        asked.into_iter().map(|h| h.join().ok().flatten()).collect()
    });
    let mut records: Vec<(PathBuf, PythonRecord)> = Vec::new();
    let mut failures = Vec::new();
    for (c, o) in firsts.iter().zip(answers) {
        let Some(o) = o else { continue };
        match answer(c, &o) {
            Ok(mut r) => {
                for other in found.iter().filter(|x| x.real == c.real) {
                    let p = other.path.display().to_string();
                    if p != r.path && !r.aliases.contains(&p) {
                        r.aliases.push(p);
                    }
                }
                records.push((c.real.clone(), r));
            }
            Err(f) => failures.push(f),
        }
    }
    (records.into_iter().map(|(_, r)| r).collect(), failures)
}

/// One interpreter's record from its answer, or why there is none.
fn answer(c: &Candidate, o: &cfgmx_exec::Outcome) -> Result<PythonRecord, PythonFailure> {
    let fail = |minor: &str, error: String| PythonFailure {
        path: c.path.display().to_string(),
        minor: minor.to_string(),
        error,
    };
    if !o.success() {
        // Its first words (pyenv's `python3.12: command not found`), not the script.
        let said = o.combined();
        let said = said.lines().next().unwrap_or("").trim();
        let status = match (o.code, o.timed_out) {
            (_, true) => "timed out".to_string(),
            (Some(code), _) => format!("exit status {code}"),
            (None, _) => o.spawn_error.clone().unwrap_or_else(|| "killed".into()),
        };
        let error = if said.is_empty() {
            status
        } else {
            format!("{status}: {said}")
        };
        return Err(fail(&c.minor, error));
    }
    // The unversioned name says its minor version only through its answer.
    let minor = if c.minor.is_empty() {
        let v = o
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix("version="))
            .unwrap_or("");
        v.split('.').take(2).collect::<Vec<_>>().join(".")
    } else {
        c.minor.clone()
    };
    let real = c.real.display().to_string();
    PythonRecord::from_answer(&real, &c.implementation, &minor, &o.stdout)
        .map_err(|why| fail(&minor, why))
}
