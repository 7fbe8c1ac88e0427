//! Tidy checks over the workspace's own sources (rust-analyzer's habit): what ARCHITECTURE.md
//! promises about every module, kept true by a test rather than by hope. The lints that go
//! with them (no `std::process::Command` outside cfgmx-exec, no printing outside the binary)
//! are in clippy.toml and the crates' `[lints]` tables.

use cfgmx_tests::repo;
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

fn sources() -> Vec<PathBuf> {
    let mut out = Vec::new();
    for c in std::fs::read_dir(repo().join("crates")).unwrap() {
        let src = c.unwrap().path().join("src");
        if src.is_dir() {
            rust_files(&src, &mut out);
        }
    }
    out.sort();
    assert!(out.len() > 20, "found only {} source files", out.len());
    out
}

/// Every module says what it is for in a `//!` header, first thing in the file.
#[test]
fn every_module_starts_with_a_header() {
    let missing: Vec<String> = sources()
        .into_iter()
        .filter(|p| {
            !std::fs::read_to_string(p)
                .unwrap()
                .trim_start()
                .starts_with("//!")
        })
        .map(|p| p.display().to_string())
        .collect();
    assert!(missing.is_empty(), "no //! header: {missing:#?}");
}

/// Only cfgmx-exec starts processes and only the binary prints: each library crate denies
/// printing, and clippy.toml disallows `std::process::Command::new` (the lints do the work;
/// this keeps them from being dropped).
#[test]
fn the_lints_that_keep_the_layers_stay_in_place() {
    let clippy = std::fs::read_to_string(repo().join("clippy.toml")).unwrap();
    assert!(
        clippy.contains("path = \"std::process::Command::new\""),
        "clippy.toml no longer disallows std::process::Command::new"
    );
    for c in ["model", "probe", "render", "build", "exec", "fs"] {
        let toml =
            std::fs::read_to_string(repo().join(format!("crates/cfgmx-{c}/Cargo.toml"))).unwrap();
        for lint in ["print_stdout = \"deny\"", "print_stderr = \"deny\""] {
            assert!(toml.contains(lint), "cfgmx-{c} does not deny {lint}");
        }
        let allows_processes = toml.contains("disallowed_methods = \"allow\"");
        assert_eq!(
            allows_processes,
            c == "exec",
            "cfgmx-{c}: who may start processes"
        );
    }
}

/// A compiler's spelling is data (`toolchains/`: `[driver]`, facets), never Rust or a template:
/// a flag or a linker's words written in code is one family's, and the next family (cl, with
/// `/D`, `/Fe`, `/link`) silently gets it. Tests inside the sources (after `#[cfg(test)]`)
/// may spell what they check; a line that spells another tool's argument (CMake's `-D`,
/// ctest's `-E`, `sh -c`) says so with `not a compiler's`. `.so` is left alone: the probe and
/// the runner read it in the names of files on disk (the platform's, not the compiler's).
#[test]
fn no_compiler_spelling_outside_the_data() {
    let flag = regex::Regex::new(
        r#""-(D|I|l|L|o|c|E|x|dM|Wl,|rpath|fopenmp|fPIC|O[0-3s]?|g)("|\{)|cannot find -l|undefined reference|unable to find library|"\.(o|a|obj|lib|dll)""#,
    )
    .unwrap();
    let mut files = sources();
    for e in std::fs::read_dir(repo().join("templates")).unwrap() {
        files.push(e.unwrap().path());
    }
    let mut found = Vec::new();
    for p in files {
        let text = std::fs::read_to_string(&p).unwrap();
        let code = text.split("\n#[cfg(test)]").next().unwrap_or("");
        for (i, line) in code.lines().enumerate() {
            let comment = line.trim_start().starts_with("//");
            if !comment && flag.is_match(line) && !line.contains("not a compiler's") {
                found.push(format!("{}:{}: {}", p.display(), i + 1, line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "compiler spellings in code (move them to toolchains/, `[driver]`):\n{}",
        found.join("\n")
    );
}

/// The OpenMP thread variable is spelled once (`cfgmx_model::OMP_NUM_THREADS`): resolution,
/// link tests, the probe and the build's test runs all set or clear the same name.
#[test]
fn omp_num_threads_is_spelled_once() {
    let mut at = Vec::new();
    for p in sources() {
        let text = std::fs::read_to_string(&p).unwrap();
        let code = text.split("\n#[cfg(test)]").next().unwrap_or("");
        for (i, line) in code.lines().enumerate() {
            if line.contains("\"OMP_NUM_THREADS\"") && !line.trim_start().starts_with("//") {
                at.push(format!("{}:{}", p.display(), i + 1));
            }
        }
    }
    assert_eq!(at.len(), 1, "{at:#?}");
    assert!(at[0].contains("cfgmx-model/src/lib.rs"), "{at:#?}");
}

/// Build modes and their CMake and Meson names are one table (`toolchains/base/defaults.toml`,
/// `[build_modes]`), not strings in code.
#[test]
fn build_type_names_live_in_the_build_modes_table() {
    let names =
        regex::Regex::new(r#""(RelWithDebInfo|MinSizeRel|debugoptimized|minsize)""#).unwrap();
    let mut at = Vec::new();
    for p in sources() {
        let text = std::fs::read_to_string(&p).unwrap();
        let code = text.split("\n#[cfg(test)]").next().unwrap_or("");
        for (i, line) in code.lines().enumerate() {
            if names.is_match(line) && !line.trim_start().starts_with("//") {
                at.push(format!("{}:{}: {}", p.display(), i + 1, line.trim()));
            }
        }
    }
    assert!(at.is_empty(), "{at:#?}");
}

/// One writer and one hash (ARCHITECTURE.md, "Atomic output"): only cfgmx-fs persists a
/// temporary file or syncs a file system, and only `cfgmx_model::hash` computes SHA-256, so a
/// second copy of either (without the fsyncs, or with another hex spelling) cannot creep back.
#[test]
fn one_atomic_writer_and_one_content_hash() {
    let mut stray = Vec::new();
    for p in sources() {
        let text = std::fs::read_to_string(&p).unwrap();
        let code = text.split("\n#[cfg(test)]").next().unwrap_or("");
        let path = p.to_string_lossy().replace('\\', "/");
        for (i, line) in code.lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            let writer = [".persist(", "tempfile_in(", "syncfs("]
                .iter()
                .any(|w| line.contains(w));
            if writer && !path.ends_with("crates/cfgmx-fs/src/lib.rs") {
                stray.push(format!("{path}:{}: {}", i + 1, line.trim()));
            }
            let hash = line.contains("sha2::") || line.contains("hex::encode");
            if hash && !path.ends_with("crates/cfgmx-model/src/hash.rs") {
                stray.push(format!("{path}:{}: {}", i + 1, line.trim()));
            }
        }
    }
    assert!(
        stray.is_empty(),
        "use cfgmx_fs's writers and cfgmx_model::hash: {stray:#?}"
    );
}
