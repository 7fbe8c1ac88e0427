//! What commands say about variants of a matrix: the JSON record of one, and the lookup of
//! one by name or hash prefix with a message that helps when it is not there. Shared by
//! `expand`, `show` and `diff`.

use crate::error::{CliError, Result};
use cfgmx_model::{lookup, Lookup, Variant, VariantSet};
use serde::Serialize;

/// A variant as `--json` prints it.
#[derive(Serialize)]
pub struct Record<'a> {
    #[serde(flatten)]
    pub variant: &'a Variant,
    pub short_hash: &'a str,
}

/// Finds a variant by name or hash prefix, with a message that helps when it is not there.
pub fn find<'a>(set: &'a VariantSet, key: &str, matrix_name: &str) -> Result<&'a Variant> {
    match lookup(&set.variants, key, |v| &v.name, |v| vec![v.hash.as_str()]) {
        Lookup::Found(v) => Ok(v),
        Lookup::Ambiguous(vs) => Err(CliError::usage(format!(
            "`{key}` is a prefix of {} hashes ({}); give more digits",
            vs.len(),
            vs.iter()
                .map(|v| format!("{} {}", &v.hash[..set.short_len], v.name))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
        Lookup::NotFound => {
            let close: Vec<&str> = set
                .variants
                .iter()
                .map(|v| v.name.as_str())
                .filter(|n| n.contains(key) || key.contains(*n))
                .take(5)
                .collect();
            let hint = if close.is_empty() {
                "run `cfgmx expand` to list the variants".to_string()
            } else {
                format!("did you mean {}?", close.join(", "))
            };
            Err(CliError::usage(format!(
                "no variant `{key}` in matrix `{matrix_name}`{}; {hint}",
                short_prefix_hint(key)
            )))
        }
    }
}

/// Said after "not found" when the key looks like a hash prefix too short to be looked up.
pub fn short_prefix_hint(key: &str) -> String {
    if !key.is_empty()
        && key.len() < cfgmx_model::MIN_HASH_PREFIX
        && key.bytes().all(|b| b.is_ascii_hexdigit())
    {
        format!(
            " (a hash prefix needs at least {} hex digits)",
            cfgmx_model::MIN_HASH_PREFIX
        )
    } else {
        String::new()
    }
}
