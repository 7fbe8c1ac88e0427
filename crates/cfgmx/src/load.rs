//! Loading inputs: the registry (builtin + `--toolchains`/`--providers` dirs) and a matrix
//! (a file or an embedded name), held in a [`Session`]; profiles, templates and build results.
//! The only place the CLI reads data files (`tests/tests/tidy.rs` keeps it so).

use crate::cli::Global;
use crate::error::{CliError, Result};
use cfgmx_model::registry::{builtin_matrix, builtin_matrix_files};
use cfgmx_model::{Diagnostic, Diagnostics, Matrix, Registry, Source, DEFAULT_MATRIX};
use std::path::Path;

/// Largest data file (matrix, descriptor, provider, template, profile) cfgmx reads: 16 MiB.
/// Hand-written inputs are kilobytes; anything this large is a mistake (a log, a binary), and
/// refusing it up front costs nothing where parsing it would cost seconds and memory.
pub const MAX_INPUT_BYTES: u64 = 16 << 20;

/// Reads at most [`MAX_INPUT_BYTES`] of a regular file through `cfgmx_fs::read`, the one
/// reader: a pipe, socket, device or directory is refused by name (opening a FIFO blocks until
/// something writes to it; `/dev/zero` never ends), and so is a dangling link.
pub fn read_bytes(path: &Path) -> Result<Vec<u8>> {
    let name = path.display().to_string();
    cfgmx_fs::read(path, MAX_INPUT_BYTES).map_err(|e| {
        let d = match &e {
            cfgmx_fs::ReadError::NotRegular(_) => Diagnostic::file(&name, format!("{name}: {e}"))
                .expected("a regular file (cfgmx does not read pipes, sockets or devices)"),
            cfgmx_fs::ReadError::TooBig { size, limit } => Diagnostic::file(
                &name,
                format!(
                    "file is {:.1} MiB, larger than the {} MiB cfgmx reads",
                    *size as f64 / (1u64 << 20) as f64,
                    limit >> 20
                ),
            )
            .expected("a hand-written matrix, descriptor or template (check the path)"),
            _ if e.is_not_found() => {
                Diagnostic::file(&name, format!("cannot read file: {e} (check the path)"))
            }
            _ => Diagnostic::file(&name, format!("cannot read file: {e}")),
        };
        CliError::from(Diagnostics::one(d))
    })
}

/// [`read_bytes`] of a file that may not exist yet (`None` then).
pub fn read_existing(path: &Path) -> Result<Option<Vec<u8>>> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        _ => read_bytes(path).map(Some),
    }
}

/// Reads a text file as a [`Source`]; unreadable, oversized, binary (NUL bytes) or non-UTF-8
/// files become located errors.
pub fn read_source(path: &Path) -> Result<Source> {
    let name = path.display().to_string();
    let bytes = read_bytes(path)?;
    match String::from_utf8(bytes) {
        Ok(t) => {
            let src = Source::new(name, t);
            // A NUL byte means a binary file; no text format cfgmx reads allows one, and the
            // parsers' own messages for it are vague.
            if let Some(off) = src.text.find('\0') {
                return Err(Diagnostics::one(
                    Diagnostic::at(&src, off..off + 1, "a NUL byte (is this a binary file?)")
                        .expected("a text file without NUL bytes"),
                )
                .with_source(&src)
                .into());
            }
            Ok(src)
        }
        Err(e) => {
            let off = e.utf8_error().valid_up_to();
            let text = String::from_utf8_lossy(e.as_bytes()).into_owned();
            let src = Source::new(name, text);
            Err(Diagnostics::one(
                Diagnostic::at(&src, off..off + 1, "invalid UTF-8").expected("a UTF-8 text file"),
            )
            .with_source(&src)
            .into())
        }
    }
}

fn dir_sources(dir: &Path) -> Result<Vec<Source>> {
    let rd = std::fs::read_dir(dir)
        .map_err(|e| CliError::usage(format!("cannot read directory {}: {e}", dir.display())))?;
    let mut paths: Vec<_> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    paths.iter().map(|p| read_source(p)).collect()
}

/// What a command works from, read once per run: the registry (the builtin descriptors plus
/// the user's `--toolchains`, `--providers` and `--mpi` directories) and those directories'
/// files as they were read, which the probe's cache key covers. Commands take a `&Session`
/// rather than reading descriptors themselves, so one `build` parses each file once.
pub struct Session {
    pub registry: Registry,
    /// The user's descriptor files, `--toolchains`, then `--providers`, then `--mpi`, each
    /// directory's files sorted by name.
    user: Vec<(Descriptors, Vec<Source>)>,
}

/// Which kind of descriptor a user's directory holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Descriptors {
    Toolchains,
    Providers,
    Mpi,
}

impl Session {
    /// Reads the user's descriptor directories and builds the registry.
    pub fn load(g: &Global) -> Result<Session> {
        let mut reg = Registry::builtin();
        let mut user = Vec::new();
        for (kind, dir) in [
            (Descriptors::Toolchains, &g.toolchains),
            (Descriptors::Providers, &g.providers),
            (Descriptors::Mpi, &g.mpi),
        ] {
            let Some(d) = dir else { continue };
            let srcs = dir_sources(d)?;
            match kind {
                Descriptors::Toolchains => reg.add_toolchains(&srcs)?,
                Descriptors::Providers => reg.add_providers(&srcs)?,
                Descriptors::Mpi => reg.add_mpi(&srcs)?,
            }
            user.push((kind, srcs));
        }
        Ok(Session {
            registry: reg,
            user,
        })
    }

    /// The user's descriptor files of every kind, in the order they were read.
    pub fn user_files(&self) -> impl Iterator<Item = &Source> {
        self.user.iter().flat_map(|(_, s)| s)
    }

    /// The user's descriptor files of one kind.
    pub fn user_files_of(&self, kind: Descriptors) -> impl Iterator<Item = &Source> {
        self.user
            .iter()
            .filter(move |(k, _)| *k == kind)
            .flat_map(|(_, s)| s)
    }

    /// Loads MATRIX: a path (contains `/` or ends in `.toml`) or an embedded matrix's name.
    pub fn matrix(&self, arg: Option<&str>) -> Result<Matrix> {
        matrix(arg, &self.registry)
    }
}

/// Loads MATRIX: a path (contains `/` or ends in `.toml`) or an embedded matrix's name.
fn matrix(arg: Option<&str>, reg: &Registry) -> Result<Matrix> {
    let arg = arg.unwrap_or(DEFAULT_MATRIX);
    let src = if arg.contains('/') || arg.ends_with(".toml") || Path::new(arg).is_file() {
        read_source(Path::new(arg))?
    } else {
        builtin_matrix(arg).ok_or_else(|| {
            let names: Vec<&str> = builtin_matrix_files()
                .iter()
                .map(|(f, _)| f.trim_end_matches(".toml"))
                .collect();
            CliError::usage(format!(
                "no matrix file or embedded matrix called `{arg}`; embedded matrices: {}",
                names.join(", ")
            ))
        })?
    };
    let m = Matrix::parse(&src, reg)?;
    crate::error::print_warnings(&m.warnings, std::slice::from_ref(&m.source));
    Ok(m)
}

/// Reads a machine profile written by `cfgmx probe --json`; bad JSON is a located error.
pub fn read_profile(path: &Path) -> Result<cfgmx_model::Profile> {
    let src = read_source(path)?;
    let at = |off: usize, len: usize, msg: String, expected: &str| -> CliError {
        Diagnostics::one(Diagnostic::at(&src, off..off + len, msg).expected(expected))
            .with_source(&src)
            .into()
    };
    let p: cfgmx_model::Profile = serde_json::from_str(&src.text).map_err(|e| {
        let off = src.offset(e.line(), e.column());
        at(
            off,
            0,
            format!("not a machine profile: {e}"),
            "a profile as `cfgmx probe --json` writes it",
        )
    })?;
    if p.schema != cfgmx_model::profile::PROFILE_SCHEMA {
        let off = src.text.find("\"schema\"").unwrap_or(0);
        return Err(at(
            off,
            8,
            format!("profile schema {} is not one this cfgmx reads", p.schema),
            &format!(
                "schema {} (probe again with this cfgmx: `cfgmx probe --json`)",
                cfgmx_model::profile::PROFILE_SCHEMA
            ),
        ));
    }
    // A NUL cannot be in a path or a flag, and would be cut short (or refused) by every
    // consumer of the generated files.
    if let Some(off) = src.text.find("\\u0000") {
        return Err(at(
            off,
            6,
            "a NUL character (\\u0000) in a profile value".into(),
            "paths, versions and flags without NUL characters",
        ));
    }
    Ok(p)
}

/// Reads one shard's result, as `cfgmx build --json` wrote it, for `cfgmx report merge`.
pub fn read_run_report(f: &Path) -> Result<cfgmx_build::report::RunReport> {
    let text = cfgmx_fs::read_to_string(f, cfgmx_fs::MAX_OWN_BYTES)
        .map_err(|e| CliError::usage(format!("cannot read {}: {e}", f.display())))?;
    serde_json::from_str(&text).map_err(|e| {
        CliError::usage(format!(
            "{}:{}:{}: not a `cfgmx build --json` result: {e}",
            f.display(),
            e.line(),
            e.column()
        ))
    })
}
