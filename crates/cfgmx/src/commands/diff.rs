//! `cfgmx diff A B`: which inputs make two variants' hashes differ.

use crate::cli::Global;
use crate::error::Result;
use crate::load;
use cfgmx_model::hash::diff_documents;
use clap::Args;
use serde_json::Value;

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// First variant: name or hash prefix, or FILE.toml#NAME.
    #[arg(add = clap_complete::engine::ArgValueCompleter::new(crate::complete::variants))]
    pub a: String,
    /// Second variant: name or hash prefix, or FILE.toml#NAME.
    #[arg(add = clap_complete::engine::ArgValueCompleter::new(crate::complete::variants))]
    pub b: String,
    /// Matrix the names refer to (default: hpc16).
    #[arg(add = clap_complete::engine::ArgValueCompleter::new(crate::complete::matrices))]
    pub matrix: Option<String>,
}

fn fetch(
    g: &Global,
    reg: &cfgmx_model::Registry,
    arg: &str,
    default_matrix: Option<&str>,
) -> Result<(String, String, Value)> {
    let (mfile, key) = match arg.split_once('#') {
        Some((f, k)) => (Some(f), k),
        None => (default_matrix, arg),
    };
    let _ = g;
    let m = load::matrix(mfile, reg)?;
    let set = m.variant_set(reg)?;
    let v = super::show::find(&set, key, &m.name)?;
    Ok((v.name.clone(), v.hash.clone(), v.spec_document()))
}

pub fn run(g: &Global, a: DiffArgs) -> Result<u8> {
    let reg = load::registry(g)?;
    let (na, ha, da) = fetch(g, &reg, &a.a, a.matrix.as_deref())?;
    let (nb, hb, db) = fetch(g, &reg, &a.b, a.matrix.as_deref())?;
    let diffs = diff_documents(&da, &db);
    if g.json {
        let items: Vec<Value> = diffs
            .iter()
            .map(|(p, x, y)| serde_json::json!({"path": p, "a": x, "b": y}))
            .collect();
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({
            "a": {"name": na, "hash": ha}, "b": {"name": nb, "hash": hb}, "same_hash": ha == hb, "differences": items
        })).unwrap_or_default());
        return Ok(0);
    }
    println!(
        "a: {na} {}\nb: {nb} {}",
        cfgmx_model::hash::short_hash(&ha),
        cfgmx_model::hash::short_hash(&hb)
    );
    if diffs.is_empty() {
        println!("identical specs: same hash");
        return Ok(0);
    }
    println!("{} input(s) differ:", diffs.len());
    for (p, x, y) in &diffs {
        println!("  {p}\n    a: {}\n    b: {}", short(x), short(y));
    }
    Ok(0)
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 160 {
        format!("{}…", s.chars().take(160).collect::<String>())
    } else {
        s
    }
}
