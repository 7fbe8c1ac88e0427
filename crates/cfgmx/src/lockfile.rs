//! `cfgmx.lock` as the commands use it: adding a run's jobs, and finding a variant in it with a
//! message that says where cfgmx looked. Shared by `build`, `expand --lock`, `show`, `env`
//! and `reproduce`.

use crate::error::{CliError, Result};
use crate::records::short_prefix_hint;
use cfgmx_build::job::{Job, LockFile, LOCK_FILE};
use std::path::Path;

/// Adds `jobs` to the lock file at `path` (entries are keyed by hash, so nothing is lost).
pub fn update_lock(path: &Path, matrix: &str, jobs: &[Job]) -> Result<()> {
    LockFile::update(path, matrix, jobs)
        .map_err(|e| CliError::caused(format!("cannot write {}", path.display()), e))
}

/// The variant `key` names in the lock file at `path`, with the matrix it belongs to. Every
/// `Err` says where cfgmx looked: the lock file's full path, and which matrices it holds or
/// that there is none, so a hash from a bug report run in the wrong directory is explained.
pub fn from_lock(path: &Path, key: &str) -> std::result::Result<(String, Job), String> {
    let shown = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    if std::fs::symlink_metadata(path).is_err() {
        return Err(format!(
            "there is no lock file {} (`cfgmx build` and `cfgmx expand --lock` write {LOCK_FILE} in the directory they run in; run this there, or give --lock FILE)",
            shown.display()
        ));
    }
    let lf = LockFile::read(path)?;
    lf.find(key)
        .map(|(m, j)| (m.to_string(), j.clone()))
        .map_err(|e| e.replacen("the lock file", &shown.display().to_string(), 1))
}

/// [`from_lock`] for `env` and `reproduce`, which look nowhere else.
pub fn lock_job(path: &Path, key: &str) -> Result<Job> {
    from_lock(path, key)
        .map(|(_, j)| j)
        .map_err(|e| CliError::usage(format!("{e}{}", short_prefix_hint(key))))
}
