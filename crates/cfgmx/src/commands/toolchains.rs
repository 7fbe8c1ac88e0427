//! `cfgmx toolchains` and `cfgmx providers`: the descriptors cfgmx knows.

use crate::cli::{Global, ProvidersArgs, ToolchainsArgs};
use crate::error::{Exit, Result};
use crate::load::Session;
use crate::output::{flags, Table, Term};

pub fn run(g: &Global, a: ToolchainsArgs) -> Result<Exit> {
    let session = Session::load(g)?;
    let reg = &session.registry;
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
        if g.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&t.to_json()).unwrap_or_default()
            );
        } else {
            print!("{}", describe(&t.to_json()));
        }
        return Ok(Exit::Ok);
    }
    if g.json {
        let all: Vec<_> = reg.toolchains.values().map(|t| t.to_json()).collect();
        println!("{}", serde_json::to_string_pretty(&all).unwrap_or_default());
        return Ok(Exit::Ok);
    }
    // Narrow, the flags nearly every family spells alike go first: PIC (`-fPIC`), then debug
    // (`-g -O0`).
    let mut t = Table::new(&[
        "FAMILY", "C", "C++", "FORTRAN", "OPENMP", "DEBUG", "RELEASE", "PIC",
    ])
    .optional(&[7, 5]);
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
    Ok(Exit::Ok)
}

pub fn run_providers(g: &Global, _a: ProvidersArgs) -> Result<Exit> {
    let session = Session::load(g)?;
    let reg = &session.registry;
    if g.json {
        let all: Vec<_> = reg
            .providers
            .values()
            .map(|p| serde_json::to_value(&**p).unwrap_or_default())
            .collect();
        println!("{}", serde_json::to_string_pretty(&all).unwrap_or_default());
        return Ok(Exit::Ok);
    }
    // At 80 columns the link lines, the vendor names and the thread variables cannot all
    // stand whole: the variables it ignores go first, then CMake's vendor name, then the
    // threading (the build's name mostly says it: `-serial`, `_mp`, `-openmp`).
    let mut t = Table::new(&[
        "BLAS",
        "THREADING",
        "LIBS",
        "CMAKE VENDOR",
        "THREADS FROM",
        "IGNORES",
    ])
    .optional(&[5, 3, 1]);
    for p in reg.providers.values() {
        for b in &p.builds {
            t.row(vec![
                cfgmx_model::provider::blas_id(&p.name, &b.name),
                b.threading.to_string(),
                // a provider's libraries, whichever compiler links them: the defaults' spelling
                b.libs
                    .iter()
                    .flat_map(|l| cfgmx_model::toolchain::default_driver().library(l))
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
    Ok(Exit::Ok)
}

/// One descriptor for people: a line per field, a line per version rule and facet candidate.
/// Read from the descriptor's JSON, so a field added to the descriptor shows up here too.
fn describe(t: &serde_json::Value) -> String {
    use serde_json::Value;
    // A scalar or a list of scalars as words; anything else as compact JSON.
    fn words(v: &Value) -> String {
        match v {
            Value::Null => String::new(),
            Value::String(s) => s.clone(),
            Value::Array(a) => a.iter().map(words).collect::<Vec<_>>().join(" "),
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => n.to_string(),
            Value::Object(_) => v.to_string(),
        }
    }
    // `key value` for the fields of `o` that are set, but `skip`.
    fn rest(o: &Value, skip: &[&str]) -> String {
        o.as_object()
            .map(|m| {
                m.iter()
                    .filter(|(k, v)| !skip.contains(&k.as_str()) && !empty(v))
                    .map(|(k, v)| format!("{k} {}", words(v)))
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .unwrap_or_default()
    }
    fn empty(v: &Value) -> bool {
        match v {
            Value::Null | Value::Bool(false) => true,
            Value::String(s) => s.is_empty(),
            Value::Array(a) => a.is_empty(),
            Value::Object(o) => o.is_empty(),
            _ => false,
        }
    }
    let mut s = String::new();
    let mut line = |k: &str, v: String| {
        if !v.is_empty() {
            s.push_str(&format!("{k:<14}{v}\n"));
        }
    };
    line("family", words(&t["name"]));
    line("description", words(&t["description"]));
    line("cmake id", words(&t["cmake_id"]));
    line("meson id", words(&t["meson_id"]));
    let ex = &t["executables"];
    line("C", words(&ex["c"]));
    line("C++", words(&ex["cxx"]));
    line("Fortran", words(&ex["fortran"]));
    line("suffixes", words(&ex["suffix"]));
    for (i, r) in t["version"].as_array().into_iter().flatten().enumerate() {
        let mut l = format!("{}  {}", words(&r["args"]), words(&r["regex"]));
        let more = rest(r, &["args", "regex"]);
        if !more.is_empty() {
            l.push_str(&format!("  ({more})"));
        }
        line(if i == 0 { "version" } else { "" }, l);
    }
    let id = &t["identity"];
    let id_parts: Vec<String> = [
        ("all", "defines"),
        ("none", "not"),
        ("version", "version from"),
        ("fortran_all", "Fortran defines"),
    ]
    .iter()
    .filter(|(k, _)| !empty(&id[*k]))
    .map(|(k, label)| format!("{label} {}", words(&id[*k])))
    .chain(Some(rest(id, &["all", "none", "version", "fortran_all"])).filter(|r| !r.is_empty()))
    .collect();
    line("identity", id_parts.join("; "));
    let mut first = true;
    for (name, cands) in t["facets"].as_object().into_iter().flatten() {
        for (i, c) in cands.as_array().into_iter().flatten().enumerate() {
            let mut l = format!(
                "{:<16}{}",
                if i == 0 { name.as_str() } else { "  or" },
                words(&c["flags"])
            );
            let more = rest(c, &["flags"]);
            if !more.is_empty() {
                l.push_str(&format!("  ({more})"));
            }
            line(if first { "facets" } else { "" }, l);
            first = false;
        }
    }
    line("env", rest(&t["env"], &[]));
    for n in t["notes"].as_array().into_iter().flatten() {
        line("note", words(n));
    }
    s.push_str("\n`--json` prints the descriptor whole, as JSON.\n");
    s
}
