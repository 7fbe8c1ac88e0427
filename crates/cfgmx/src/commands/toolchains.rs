//! `cfgmx toolchains` and `cfgmx providers`: the descriptors cfgmx knows.

use crate::cli::Global;
use crate::error::Result;
use crate::load;
use crate::output::{flags, Table, Term};
use clap::Args;

#[derive(Debug, Args)]
pub struct ToolchainsArgs {
    /// Show one family whole (executables, version rules, identity macros, every facet).
    pub family: Option<String>,
}

#[derive(Debug, Args)]
pub struct ProvidersArgs {}

pub fn run(g: &Global, a: ToolchainsArgs) -> Result<u8> {
    let reg = load::registry(g)?;
    if let Some(f) = &a.family {
        let t = reg.toolchain(f).ok_or_else(|| {
            crate::error::CliError::usage(format!(
                "no toolchain `{f}`; known: {}",
                reg.toolchains
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
        println!(
            "{}",
            serde_json::to_string_pretty(&t.to_json()).unwrap_or_default()
        );
        return Ok(0);
    }
    if g.json {
        let all: Vec<_> = reg.toolchains.values().map(|t| t.to_json()).collect();
        println!("{}", serde_json::to_string_pretty(&all).unwrap_or_default());
        return Ok(0);
    }
    let mut t = Table::new(&[
        "FAMILY", "C", "C++", "FORTRAN", "OPENMP", "DEBUG", "RELEASE", "PIC",
    ]);
    for tc in reg.toolchains.values() {
        let first = |f: &str| {
            tc.facet(f)
                .first()
                .map(|c| flags(&c.flags))
                .unwrap_or_else(|| "-".into())
        };
        let omp = tc
            .facet("openmp")
            .iter()
            .map(|c| flags(&c.flags))
            .collect::<Vec<_>>()
            .join(" | ");
        let ex = |l: &[String]| {
            if l.is_empty() {
                "-".to_string()
            } else {
                l.join(", ")
            }
        };
        t.row(vec![
            tc.name.clone(),
            ex(&tc.executables.c),
            ex(&tc.executables.cxx),
            ex(&tc.executables.fortran),
            if omp.is_empty() { "-".into() } else { omp },
            first("debug"),
            first("release"),
            first("pic"),
        ]);
    }
    let term = Term::stdout(g);
    print!("{}", t.render(&term));
    println!(
        "\n{}",
        term.wrap(
            &format!("{} toolchains; `cfgmx toolchains FAMILY` shows one whole; OpenMP candidates are tried in order by `cfgmx probe`", reg.toolchains.len()),
            0
        )
    );
    Ok(0)
}

pub fn run_providers(g: &Global, _a: ProvidersArgs) -> Result<u8> {
    let reg = load::registry(g)?;
    if g.json {
        let all: Vec<_> = reg
            .providers
            .values()
            .map(|p| serde_json::to_value(&**p).unwrap_or_default())
            .collect();
        println!("{}", serde_json::to_string_pretty(&all).unwrap_or_default());
        return Ok(0);
    }
    let mut t = Table::new(&[
        "BLAS",
        "THREADING",
        "LIBS",
        "CMAKE VENDOR",
        "THREAD VARIABLES (first wins)",
        "IGNORES",
    ]);
    for p in reg.providers.values() {
        for b in &p.builds {
            t.row(vec![
                format!("{}-{}", p.name, b.name),
                b.threading.to_string(),
                b.libs
                    .iter()
                    .map(|l| format!("-l{l}"))
                    .collect::<Vec<_>>()
                    .join(" "),
                b.cmake_vendor.clone().unwrap_or_else(|| "-".into()),
                if b.thread_vars.is_empty() {
                    "-".into()
                } else {
                    b.thread_vars.join(" > ")
                },
                if b.ignored_vars.is_empty() {
                    "-".into()
                } else {
                    b.ignored_vars.join(", ")
                },
            ]);
        }
    }
    print!("{}", t.render(&Term::stdout(g)));
    Ok(0)
}
