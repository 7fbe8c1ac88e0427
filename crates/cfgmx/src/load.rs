//! Loading inputs: the registry (builtin + `--toolchains`/`--providers` dirs) and a matrix
//! (a file or an embedded name). The only place the CLI reads data files.

use crate::cli::Global;
use crate::error::{CliError, Result};
use cfgmx_model::registry::{builtin_matrix, builtin_matrix_files};
use cfgmx_model::{Diagnostic, Diagnostics, Matrix, Registry, Source, DEFAULT_MATRIX};
use std::path::Path;

/// Largest data file (matrix, descriptor, provider, template, profile) cfgmx reads: 16 MiB.
/// Hand-written inputs are kilobytes; anything this large is a mistake (a log, a binary), and
/// refusing it up front costs nothing where parsing it would cost seconds and memory.
pub const MAX_INPUT_BYTES: u64 = 16 << 20;

/// Reads a text file as a [`Source`]; unreadable, oversized, binary (NUL bytes) or non-UTF-8
/// files become located errors.
pub fn read_source(path: &Path) -> Result<Source> {
    use std::io::Read;
    let name = path.display().to_string();
    let cannot = |e: std::io::Error| {
        let hint = if e.kind() == std::io::ErrorKind::NotFound {
            " (check the path)"
        } else {
            ""
        };
        CliError::from(Diagnostics::one(Diagnostic::file(
            &name,
            format!("cannot read file: {e}{hint}"),
        )))
    };
    let too_big = |size: u64| {
        CliError::from(Diagnostics::one(
            Diagnostic::file(
                &name,
                format!(
                    "file is {:.1} MiB, larger than the {} MiB cfgmx reads",
                    size as f64 / (1u64 << 20) as f64,
                    MAX_INPUT_BYTES >> 20
                ),
            )
            .expected("a hand-written matrix, descriptor or template (check the path)"),
        ))
    };
    let file = std::fs::File::open(path).map_err(cannot)?;
    // The size is checked before reading, and the read is capped too, since a FIFO or a
    // growing file has no trustworthy length.
    if let Ok(meta) = file.metadata() {
        if meta.is_file() && meta.len() > MAX_INPUT_BYTES {
            return Err(too_big(meta.len()));
        }
    }
    let mut bytes = Vec::new();
    file.take(MAX_INPUT_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    if bytes.len() as u64 > MAX_INPUT_BYTES {
        return Err(too_big(bytes.len() as u64));
    }
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

/// The builtin registry plus the user's descriptor directories.
pub fn registry(g: &Global) -> Result<Registry> {
    let mut reg = Registry::builtin();
    if let Some(d) = &g.toolchains {
        reg.add_toolchains(&dir_sources(d)?)?;
    }
    if let Some(d) = &g.providers {
        reg.add_providers(&dir_sources(d)?)?;
    }
    if let Some(d) = &g.mpi {
        reg.add_mpi(&dir_sources(d)?)?;
    }
    Ok(reg)
}

/// Loads MATRIX: a path (contains `/` or ends in `.toml`) or an embedded matrix's name.
pub fn matrix(arg: Option<&str>, reg: &Registry) -> Result<Matrix> {
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
    serde_json::from_str(&src.text).map_err(|e| {
        let off = src.offset(e.line(), e.column());
        Diagnostics::one(
            Diagnostic::at(&src, off..off, format!("not a machine profile: {e}"))
                .expected("a profile as `cfgmx probe --json` writes it"),
        )
        .with_source(&src)
        .into()
    })
}
