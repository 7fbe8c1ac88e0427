//! `cfgmx diff A B`: which inputs make two variants' hashes differ.

use crate::cli::{DiffArgs, Global};
use crate::error::{Exit, Result};
use crate::load::Session;
use crate::records::find;
use cfgmx_model::hash::diff_documents;
use serde_json::Value;

/// The variant `arg` names (`NAME`, a hash prefix, or `FILE.toml#NAME`): name, spec hash and
/// the documents its hash is computed from.
fn fetch(s: &Session, arg: &str, default_matrix: Option<&str>) -> Result<(String, String, Value)> {
    let (mfile, key) = match arg.split_once('#') {
        Some((f, k)) => (Some(f), k),
        None => (default_matrix, arg),
    };
    let m = s.matrix(mfile)?;
    let set = m.variant_set(&s.registry)?;
    let v = find(&set, key, &m.name)?;
    Ok((v.name.clone(), v.hash.clone(), v.spec_document()))
}

pub fn run(g: &Global, a: DiffArgs) -> Result<Exit> {
    let session = Session::load(g)?;
    let (na, ha, da) = fetch(&session, &a.a, a.matrix.as_deref())?;
    let (nb, hb, db) = fetch(&session, &a.b, a.matrix.as_deref())?;
    let diffs = diff_documents(&da, &db);
    if g.json {
        let items: Vec<Value> = diffs
            .iter()
            .map(|(p, x, y)| serde_json::json!({"path": p, "a": x, "b": y}))
            .collect();
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({
            "a": {"name": na, "hash": ha}, "b": {"name": nb, "hash": hb}, "same_hash": ha == hb, "differences": items
        })).unwrap_or_default());
        return Ok(Exit::Ok);
    }
    println!(
        "a: {na} {}\nb: {nb} {}",
        cfgmx_model::hash::short_hash(&ha),
        cfgmx_model::hash::short_hash(&hb)
    );
    if diffs.is_empty() {
        println!("identical specs: same hash");
        return Ok(Exit::Ok);
    }
    println!("{} input(s) differ:", diffs.len());
    for (p, x, y) in &diffs {
        println!("  {p}\n    a: {}\n    b: {}", short(x), short(y));
    }
    Ok(Exit::Ok)
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 160 {
        format!("{}…", s.chars().take(160).collect::<String>())
    } else {
        s
    }
}
