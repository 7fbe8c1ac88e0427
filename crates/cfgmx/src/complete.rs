//! Dynamic shell completion (clap_complete's `CompleteEnv`): `source <(COMPLETE=bash cfgmx)`
//! registers cfgmx with the shell, which then asks the binary itself for candidates, so
//! completion offers what exists here and now: the embedded matrices and the `*.toml` files in
//! the current directory for MATRIX, and for a variant the names of the default matrix's
//! variants and the names and hashes recorded in `./cfgmx.lock`. Format names, each with its
//! one-line help, come from `-f`'s possible values, which are cfgmx-render's `FORMATS`. Nothing here may print or fail: a completer that cannot read something
//! offers less.

use clap_complete::engine::CompletionCandidate;
use std::ffi::OsStr;

fn starting_with(
    current: &OsStr,
    words: impl IntoIterator<Item = (String, Option<String>)>,
) -> Vec<CompletionCandidate> {
    let Some(prefix) = current.to_str() else {
        return Vec::new();
    };
    let mut seen = std::collections::BTreeSet::new();
    words
        .into_iter()
        .filter(|(w, _)| w.starts_with(prefix) && seen.insert(w.clone()))
        .map(|(w, help)| {
            let c = CompletionCandidate::new(w);
            match help {
                Some(h) => c.help(Some(h.into())),
                None => c,
            }
        })
        .collect()
}

/// MATRIX: the embedded matrices, then the `*.toml` files of the current directory.
pub fn matrices(current: &OsStr) -> Vec<CompletionCandidate> {
    let embedded = cfgmx_model::registry::builtin_matrix_files()
        .iter()
        .map(|(f, _)| {
            (
                f.trim_end_matches(".toml").to_string(),
                Some("embedded matrix".to_string()),
            )
        });
    let files = std::fs::read_dir(".")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.ends_with(".toml"))
        .map(|n| (n, None));
    starting_with(current, embedded.chain(files))
}

/// A variant: the default matrix's variant names, and every name and hash prefix (12 digits)
/// in `./cfgmx.lock`, whatever matrices it holds.
pub fn variants(current: &OsStr) -> Vec<CompletionCandidate> {
    let mut words: Vec<(String, Option<String>)> = Vec::new();
    let reg = cfgmx_model::Registry::builtin();
    if let Some(src) = cfgmx_model::registry::builtin_matrix(cfgmx_model::DEFAULT_MATRIX) {
        if let Ok(m) = cfgmx_model::Matrix::parse(&src, &reg) {
            if let Ok(set) = m.variant_set(&reg) {
                words.extend(set.variants.iter().map(|v| (v.name.clone(), None)));
            }
        }
    }
    if let Ok(text) = cfgmx_fs::read_to_string(
        std::path::Path::new(cfgmx_build::job::LOCK_FILE),
        cfgmx_fs::MAX_OWN_BYTES,
    ) {
        if let Ok(lock) = serde_json::from_str::<serde_json::Value>(&text) {
            locked(&lock, &mut words);
        }
    }
    starting_with(current, words)
}

/// Every object of the lock with a `name` and a `hash`: its name, and its hash cut to the
/// 12 digits cfgmx shows, helped with the name.
fn locked(v: &serde_json::Value, out: &mut Vec<(String, Option<String>)>) {
    match v {
        serde_json::Value::Object(o) => {
            if let (Some(name), Some(hash)) = (
                o.get("name").and_then(|n| n.as_str()),
                o.get("hash").and_then(|h| h.as_str()),
            ) {
                out.push((name.to_string(), Some("in cfgmx.lock".into())));
                let short: String = hash.chars().take(12).collect();
                out.push((short, Some(name.to_string())));
            }
            for x in o.values() {
                locked(x, out);
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| locked(x, out)),
        _ => {}
    }
}
