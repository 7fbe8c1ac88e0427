//! The profile cache: one JSON file holding the profile and the key it was made under (every
//! discovered file's path, target, size and mtime, plus the options that change the answer).
//! Written to a temporary name and renamed, so a reader never sees half a file.

use crate::discover::{Found, Stamp};
use crate::ProbeOptions;
use cfgmx_model::{Profile, Registry};
use serde::{Deserialize, Serialize};
use std::path::Path;

pub const CACHE_FILE: &str = "probe-profile.json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Key {
    /// The program version and descriptor set (new descriptors may identify differently).
    pub tool: String,
    pub facets: Vec<String>,
    pub search: Vec<String>,
    pub files: Vec<Stamp>,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    key: Key,
    profile: Profile,
}

pub fn key(reg: &Registry, opts: &ProbeOptions, found: &Found) -> Key {
    let mut tool = format!("cfgmx-probe {}", env!("CARGO_PKG_VERSION"));
    for t in reg.toolchains.values() {
        tool.push(' ');
        tool.push_str(&t.origin);
    }
    for p in reg.providers.values() {
        tool.push(' ');
        tool.push_str(&p.origin);
    }
    Key {
        tool,
        facets: opts.facets.clone(),
        search: opts
            .search
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
        files: found.stamps.clone(),
    }
}

pub fn load(dir: &Path, key: &Key) -> Option<Profile> {
    let text = std::fs::read(dir.join(CACHE_FILE)).ok()?;
    let e: Entry = serde_json::from_slice(&text).ok()?;
    (e.key == *key).then_some(e.profile)
}

pub fn store(dir: &Path, key: &Key, profile: &Profile) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let e = Entry {
        key: key.clone(),
        profile: profile.clone(),
    };
    let text = serde_json::to_vec(&e).map_err(std::io::Error::other)?;
    let tmp = dir.join(format!("{CACHE_FILE}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, dir.join(CACHE_FILE))
}
