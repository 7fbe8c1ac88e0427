//! The profile cache: one JSON file holding the profile and the key it was made under: every
//! compiler and BLAS library file discovery found, each with its path, the file it resolves to
//! and that file's device, inode, size and mtime, plus what else changes the answer
//! (descriptors, facets, search options, `PATH`).
//!
//! A warm check runs discovery again (directory listings and stats: no process, nothing
//! probed) and compares the key. A compiler installed since is a new path; a replaced compiler
//! or a switched alternative changes its stamp; a directory on `PATH` that changes for other
//! reasons (a pyenv shims directory) changes nothing, so the profile, and everything generated
//! from it, does not flip between runs. Written to a temporary name and renamed, so a reader
//! never sees half a file.

use crate::discover::{Found, Stamp};
use crate::ProbeOptions;
use cfgmx_model::Profile;
use serde::{Deserialize, Serialize};
use std::path::Path;

pub const CACHE_FILE: &str = "probe-profile.json";

/// The cache of probes with `--modules`: apart from the plain one, so a machine probed both
/// ways (a matrix with `[probe] modules = true`, a plain `cfgmx probe`) keeps both warm.
pub const MODULES_CACHE_FILE: &str = "probe-profile-modules.json";

/// The cache file name for probes with `opts`.
pub fn file_name(opts: &ProbeOptions) -> &'static str {
    if opts.modules.is_some() {
        MODULES_CACHE_FILE
    } else {
        CACHE_FILE
    }
}

/// Everything but the file system that the answer depends on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inputs {
    pub tool: String,
    pub descriptors: String,
    pub facets: Vec<String>,
    pub search: Vec<String>,
    pub path: String,
    /// The module system asked (`--modules`) and its clean environment.
    #[serde(default)]
    pub modules: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Key {
    pub inputs: Inputs,
    pub files: Vec<Stamp>,
    /// With `--modules`: the module tree's directories (`MODULEPATH` and those its hierarchy
    /// opens) and the digest of the stat of every file under them and of the module command
    /// ([`crate::modules::tree_state`]). Empty in caches written before it was a digest: such a
    /// key never matches, so an old cache is probed again rather than reported as corrupt.
    #[serde(default)]
    pub module_dirs: Vec<String>,
    #[serde(default)]
    pub module_tree: String,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    key: Key,
    profile: Profile,
}

/// FNV-1a over the descriptor texts: stable, and cheap enough for the warm path.
pub fn fingerprint<'a>(texts: impl IntoIterator<Item = &'a str>) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for t in texts {
        for b in t.bytes().chain([0xff]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

/// The descriptor fingerprint the options carry, or the builtin descriptors'.
pub fn descriptors(opts: &ProbeOptions) -> String {
    if !opts.descriptors.is_empty() {
        return opts.descriptors.clone();
    }
    let b = cfgmx_model::registry::builtin_toolchain_files()
        .iter()
        .chain(cfgmx_model::registry::builtin_provider_files())
        .chain(cfgmx_model::registry::builtin_mpi_files())
        .map(|(_, t)| *t);
    fingerprint(b)
}

pub fn inputs(opts: &ProbeOptions) -> Inputs {
    Inputs {
        tool: format!("cfgmx-probe {}", env!("CARGO_PKG_VERSION")),
        descriptors: descriptors(opts),
        facets: opts.facets.clone(),
        search: opts
            .search
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
        path: opts
            .path
            .as_ref()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default(),
        modules: opts.modules.as_ref().map(|m| {
            // what is loaded, not the caller's whole (volatile) environment
            let loaded = m.loaded.iter().find(|(k, _)| k == "LOADEDMODULES");
            format!(
                "{} {} {:?} {:?} {}",
                m.system,
                m.command.display(),
                m.env,
                loaded,
                crate::modules::data_fingerprint()
            )
        }),
    }
}

pub fn key(opts: &ProbeOptions, found: &Found) -> Key {
    Key {
        inputs: inputs(opts),
        files: found.stamps.clone(),
        module_dirs: Vec::new(),
        module_tree: String::new(),
    }
}

/// The cache entry; `Err` when the file exists but is not one (truncated, garbage): it is
/// deleted then, so the next probe writes a good one.
fn read(dir: &Path, name: &str) -> Result<Option<Entry>, String> {
    let path = dir.join(name);
    let bytes = match cfgmx_fs::read(&path, cfgmx_fs::MAX_OWN_BYTES) {
        Ok(b) => b,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => {
            return Err(format!(
                "cannot read the probe cache {}: {e}",
                path.display()
            ))
        }
    };
    serde_json::from_slice(&bytes).map(Some).map_err(|e| {
        let _ = std::fs::remove_file(&path);
        format!(
            "the probe cache {} was corrupt ({e}); discarded, the machine is probed again",
            path.display()
        )
    })
}

/// The cached profile when it was made under `key` (what discovery finds now); `Err` says a
/// corrupt cache was discarded. With modules, the key's tree part is filled in from the
/// directories the cache's tree had (stats only: no module command runs).
pub fn load_warm(opts: &ProbeOptions, key: &mut Key) -> Result<Option<Profile>, String> {
    let Some(e) = read(&opts.cache_dir, file_name(opts))? else {
        return Ok(None);
    };
    if let Some(mo) = &opts.modules {
        if e.key.inputs != key.inputs || e.key.files != key.files {
            return Ok(None);
        }
        let dirs: Vec<std::path::PathBuf> = e
            .key
            .module_dirs
            .iter()
            .map(std::path::PathBuf::from)
            .collect();
        key.module_dirs = e.key.module_dirs.clone();
        key.module_tree = crate::modules::tree_state(&mo.command, &dirs, opts.jobs);
    }
    Ok((e.key == *key).then_some(e.profile))
}

pub fn store(dir: &Path, name: &str, key: &Key, profile: &Profile) -> std::io::Result<()> {
    if cfgmx_exec::closing() {
        // Interrupted: compilers were killed or never started, the profile is not the machine.
        return Err(std::io::Error::other("interrupted"));
    }
    std::fs::create_dir_all(dir)?;
    let e = Entry {
        key: key.clone(),
        profile: profile.clone(),
    };
    let text = serde_json::to_vec(&e).map_err(std::io::Error::other)?;
    // Concurrent probes each write whole files and the last rename wins, so readers see one
    // whole cache or another; a full disk leaves no partial temporary file.
    let res = cfgmx_fs::write_atomic(&dir.join(name), &text);
    if res.is_ok() {
        // Link tests were made against the machine as it was: a new profile starts them over.
        let _ = std::fs::remove_file(dir.join(crate::PROOF_FILE));
    }
    res
}
