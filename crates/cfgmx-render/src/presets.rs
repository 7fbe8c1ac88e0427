//! Merging generated presets into a user's CMakePresets.json (`--merge`): the user's presets
//! stay, presets cfgmx generated before (marked `vendor.cfgmx`) are replaced, and a user preset
//! whose name a generated one would take is an error, not an overwrite.

use crate::RenderError;
use serde_json::{Map, Value};

const KINDS: &[&str] = &[
    "configurePresets",
    "buildPresets",
    "testPresets",
    "packagePresets",
    "workflowPresets",
];

fn ours(p: &Value) -> bool {
    p.get("vendor").and_then(|v| v.get("cfgmx")).is_some()
}

fn version_tuple(v: Option<&Value>) -> (u64, u64, u64) {
    let g = |k: &str| {
        v.and_then(|v| v.get(k))
            .and_then(Value::as_u64)
            .unwrap_or(0)
    };
    (g("major"), g("minor"), g("patch"))
}

/// Merges `generated` (a rendered CMakePresets.json) into `existing` (the user's file text,
/// named `existing_name` in messages).
pub fn merge_presets(
    existing_name: &str,
    existing: &str,
    generated: &str,
) -> Result<String, RenderError> {
    let bad = |m: String| RenderError::Merge(format!("{existing_name}: {m}"));
    let mut user: Map<String, Value> = match serde_json::from_str(existing) {
        Ok(Value::Object(o)) => o,
        Ok(_) => return Err(bad("expected a JSON object at the top level".into())),
        Err(e) => {
            return Err(bad(format!(
                "not valid JSON at line {} column {}: {e}",
                e.line(),
                e.column()
            )))
        }
    };
    let gen: Map<String, Value> = match serde_json::from_str(generated) {
        Ok(Value::Object(o)) => o,
        _ => {
            return Err(RenderError::Merge(
                "the generated presets are not a JSON object (template bug)".into(),
            ))
        }
    };
    let uv = user.get("version").and_then(Value::as_u64).unwrap_or(0);
    let gv = gen.get("version").and_then(Value::as_u64).unwrap_or(0);
    user.insert("version".into(), Value::from(uv.max(gv)));
    let (umin, gmin) = (
        version_tuple(user.get("cmakeMinimumRequired")),
        version_tuple(gen.get("cmakeMinimumRequired")),
    );
    if gmin > umin {
        if let Some(m) = gen.get("cmakeMinimumRequired") {
            user.insert("cmakeMinimumRequired".into(), m.clone());
        }
    }
    for kind in KINDS {
        let Some(Value::Array(new)) = gen.get(*kind) else {
            continue;
        };
        let mut kept: Vec<Value> = match user.get(*kind) {
            Some(Value::Array(a)) => a.iter().filter(|p| !ours(p)).cloned().collect(),
            None => Vec::new(),
            Some(_) => return Err(bad(format!("`{kind}` is not an array"))),
        };
        for p in new {
            let name = p.get("name").and_then(Value::as_str).unwrap_or_default();
            if kept
                .iter()
                .any(|k| k.get("name").and_then(Value::as_str) == Some(name))
            {
                return Err(bad(format!(
                    "has its own {} preset named `{name}`, which a generated preset would replace; rename it, or write the generated presets elsewhere",
                    kind.trim_end_matches("Presets")
                )));
            }
        }
        kept.extend(new.iter().cloned());
        user.insert(kind.to_string(), Value::Array(kept));
    }
    let mut text = serde_json::to_string_pretty(&Value::Object(user))
        .map_err(|e| RenderError::Merge(e.to_string()))?;
    text.push('\n');
    Ok(text)
}
