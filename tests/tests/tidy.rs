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
