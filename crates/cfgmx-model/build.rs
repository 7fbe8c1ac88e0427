//! Embeds the repository's `toolchains/`, `providers/`, `matrices/`, `mpi/` and `python/` TOML
//! files, so the
//! binary carries its defaults and adding a descriptor is adding a file.
use std::fmt::Write;
use std::path::Path;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut out = String::new();
    for dir in ["toolchains", "providers", "matrices", "mpi", "python"] {
        let d = root.join(dir);
        println!("cargo:rerun-if-changed={}", d.display());
        let mut files: Vec<_> = std::fs::read_dir(&d)
            .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        files.retain(|p| p.extension().is_some_and(|e| e == "toml"));
        files.sort();
        writeln!(
            out,
            "pub const {}: &[(&str, &str)] = &[",
            dir.to_uppercase()
        )
        .unwrap();
        for f in files {
            println!("cargo:rerun-if-changed={}", f.display());
            let name = f.file_name().unwrap().to_string_lossy();
            writeln!(
                out,
                "    ({name:?}, include_str!({:?})),",
                f.canonicalize().unwrap().display().to_string()
            )
            .unwrap();
        }
        writeln!(out, "];").unwrap();
    }
    // The defaults every toolchain descriptor starts from (not a descriptor itself).
    let defaults = root.join("toolchains/base/defaults.toml");
    println!("cargo:rerun-if-changed={}", defaults.display());
    writeln!(
        out,
        "pub const TOOLCHAIN_DEFAULTS: &str = include_str!({:?});",
        defaults.canonicalize().unwrap().display().to_string()
    )
    .unwrap();
    let dest = Path::new(&std::env::var("OUT_DIR").unwrap()).join("embedded.rs");
    std::fs::write(dest, out).unwrap();
}
