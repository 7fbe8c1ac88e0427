//! The build root: a lock file so one `cfgmx build` at a time owns it, one record per variant
//! keyed by concrete hash (written atomically: temp file + rename), and a source-tree
//! fingerprint that decides whether a passed variant must run again.

use crate::report::VariantResult;
use fs4::fs_std::FileExt;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes `data` to `path` through a temporary file in the same directory and a rename, so a
/// reader sees the old file or the new one, never half of one (a full disk fails the write,
/// not the old record). The file gets the mode any other tool would give it (0666 less the
/// umask: 0644 under umask 022), not the temp file's private 0600, so a report on a shared
/// cluster is readable by the colleagues the umask lets read it.
pub fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    // open() applies the umask to the mode it is given, as for any new file.
    let perms = {
        use std::os::unix::fs::PermissionsExt;
        std::fs::Permissions::from_mode(0o666)
    };
    let mut tmp = tempfile::Builder::new()
        .permissions(perms)
        .tempfile_in(dir)?;
    tmp.write_all(data)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// An open, locked build root.
#[derive(Debug)]
pub struct Store {
    pub root: PathBuf,
    // Held for the life of the store: the OS drops the lock when the process ends, even killed.
    _lock: File,
}

/// Why the build root could not be opened.
#[derive(Debug)]
pub enum OpenError {
    Busy(PathBuf),
    Io(String),
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::Busy(p) => write!(
                f,
                "another cfgmx build is using the build root {} (lock {} is held); `--wait` waits for it to finish, or use another --build-root",
                p.display(),
                p.join("cfgmx-build.lock").display()
            ),
            OpenError::Io(m) => f.write_str(m),
        }
    }
}

impl Store {
    /// Opens `root`, creating it; refuses at once when another process holds it, or waits for
    /// it with `wait`.
    pub fn open(root: &Path, wait: bool) -> Result<Store, OpenError> {
        let io = |e: std::io::Error| OpenError::Io(format!("build root {}: {e}", root.display()));
        std::fs::create_dir_all(root.join("records")).map_err(io)?;
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(root.join(LOCK_NAME))
            .map_err(io)?;
        if wait {
            f.lock_exclusive().map_err(io)?;
        } else if !f.try_lock_exclusive().map_err(io)? {
            return Err(OpenError::Busy(root.to_path_buf()));
        }
        // Holding the lock, any temporary record is a leftover of a writer that was killed
        // before its rename: never a record, only litter.
        if let Ok(rd) = std::fs::read_dir(root.join("records")) {
            for e in rd.flatten() {
                if e.file_name().to_string_lossy().starts_with(".tmp") {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        Ok(Store {
            root: root.to_path_buf(),
            _lock: f,
        })
    }

    fn record_path(&self, key: &str) -> PathBuf {
        self.root.join("records").join(format!("{key}.json"))
    }

    /// The last record under `key`. A record that exists but does not parse (truncated,
    /// garbage, another tool's file) is deleted and reported as `Err(why)`, so the caller can
    /// warn and rebuild the variant: it then counts as never built.
    pub fn load(&self, key: &str) -> Result<Option<VariantResult>, String> {
        let path = self.record_path(key);
        let bytes = match cfgmx_fs::read(&path, cfgmx_fs::MAX_OWN_BYTES) {
            Ok(b) => b,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            let _ = std::fs::remove_file(&path);
            format!(
                "its record {} was corrupt ({e}) and is discarded",
                path.display()
            )
        })
    }

    pub fn save(&self, key: &str, r: &VariantResult) -> std::io::Result<()> {
        let text = serde_json::to_vec_pretty(r).map_err(std::io::Error::other)?;
        write_atomic(&self.record_path(key), &text)
    }
}

/// The file every build root holds (and any directory of cfgmx's own outputs may): the
/// fingerprint skips a directory that has it.
pub const LOCK_NAME: &str = "cfgmx-build.lock";

/// A hash of the source tree's paths, sizes and modification times (not contents: this must
/// cost milliseconds). Skips `.git`, anything under `exclude` (this build's root), and
/// cfgmx's own outputs wherever they are: any build root (a directory holding
/// [`LOCK_NAME`], such as another Slurm task's) and any directory marked as a cache by a
/// `CACHEDIR.TAG` (the generated Slurm scripts mark their output directory so), so
/// concurrent builds writing there never make the source look changed.
pub fn fingerprint(source: &Path, exclude: &[PathBuf]) -> std::io::Result<String> {
    let mut entries = Vec::new();
    walk(source, source, exclude, &mut entries)?;
    entries.sort();
    let mut h = Sha256::new();
    for e in &entries {
        h.update(e.as_bytes());
        h.update(b"\n");
    }
    Ok(hex::encode(h.finalize()))
}

fn walk(
    base: &Path,
    dir: &Path,
    exclude: &[PathBuf],
    out: &mut Vec<String>,
) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let p = e.path();
        // The lock file may sit in the source tree (users commit it); writing it is no change.
        if e.file_name() == ".git"
            || e.file_name() == crate::job::LOCK_FILE
            || exclude.iter().any(|x| p.starts_with(x))
        {
            continue;
        }
        let md = e.metadata()?;
        if md.is_dir() && (p.join(LOCK_NAME).exists() || p.join("CACHEDIR.TAG").exists()) {
            continue;
        }
        let rel = p.strip_prefix(base).unwrap_or(&p).display().to_string();
        if md.is_dir() {
            walk(base, &p, exclude, out)?;
        } else {
            let mtime = md
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            out.push(format!("{rel}\t{}\t{mtime}", md.len()));
        }
    }
    Ok(())
}

/// Copies a source tree (for `--copy-source`), skipping `.git` and `exclude`.
pub fn copy_tree(from: &Path, to: &Path, exclude: &[PathBuf]) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let p = e.path();
        if e.file_name() == ".git" || exclude.iter().any(|x| p.starts_with(x)) {
            continue;
        }
        let dest = to.join(e.file_name());
        if e.file_type()?.is_dir() {
            copy_tree(&p, &dest, exclude)?;
        } else {
            // Only copy what changed, so the copy's mtimes (and the incremental build) stay put.
            let same = match (e.metadata(), std::fs::metadata(&dest)) {
                (Ok(a), Ok(b)) => a.len() == b.len() && a.modified().ok() <= b.modified().ok(),
                _ => false,
            };
            if !same {
                std::fs::copy(&p, &dest)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_open_of_a_root_is_refused_while_the_first_holds_it() {
        let d = tempfile::tempdir().unwrap();
        let a = Store::open(d.path(), false).unwrap();
        let b = Store::open(d.path(), false);
        assert!(matches!(b, Err(OpenError::Busy(_))), "{b:?}");
        drop(a);
        assert!(Store::open(d.path(), false).is_ok());
    }

    #[test]
    fn fingerprint_skips_build_roots_and_tagged_output_dirs_inside_the_source() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("main.c"), "int main(void){return 0;}").unwrap();
        let before = fingerprint(d.path(), &[]).unwrap();
        // Another task's build root, and a directory of results tagged as a cache.
        let other = d.path().join("b/gcc-debug");
        let _s = Store::open(&other, false).unwrap();
        std::fs::write(other.join("records/x.json"), "{}").unwrap();
        let out = d.path().join("cfgmx-slurm");
        std::fs::create_dir_all(out.join("logs")).unwrap();
        std::fs::write(
            out.join("CACHEDIR.TAG"),
            "Signature: 8a477f597d28d172789f06886806bc55\n",
        )
        .unwrap();
        std::fs::write(out.join("logs/cfgmx-1_0.out"), "log").unwrap();
        assert_eq!(fingerprint(d.path(), &[]).unwrap(), before);
        // A real source change still counts.
        std::fs::write(d.path().join("b/new.c"), "").unwrap();
        assert_ne!(fingerprint(d.path(), &[]).unwrap(), before);
    }

    #[test]
    fn written_files_take_the_umask_mode_not_the_temp_files_0600() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("report.html");
        write_atomic(&p, b"x").unwrap();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        // The test process's umask is whatever the runner set: read it back from the kernel.
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let umask = status
            .lines()
            .find_map(|l| l.strip_prefix("Umask:"))
            .map(|v| u32::from_str_radix(v.trim(), 8).unwrap())
            .unwrap();
        assert_eq!(mode, 0o666 & !umask, "mode {mode:o} under umask {umask:o}");
    }

    #[test]
    fn fingerprint_changes_with_a_touched_file_only() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("a.c"), "int x;").unwrap();
        std::fs::create_dir(d.path().join("build")).unwrap();
        let ex = vec![d.path().join("build")];
        let f1 = fingerprint(d.path(), &ex).unwrap();
        std::fs::write(d.path().join("build/junk"), "x").unwrap();
        assert_eq!(f1, fingerprint(d.path(), &ex).unwrap());
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(d.path().join("a.c"), "int y;").unwrap();
        assert_ne!(f1, fingerprint(d.path(), &ex).unwrap());
    }

    #[test]
    fn corrupt_records_are_reported_and_removed() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(d.path(), false).unwrap();
        assert_eq!(s.load("k").unwrap(), None);
        for bad in [&b""[..], b"{\"name\": \"x\", \"ha", b"\x00\xff garbage"] {
            std::fs::write(s.record_path("k"), bad).unwrap();
            let e = s.load("k").unwrap_err();
            assert!(e.contains("corrupt") && e.contains("k.json"), "{e}");
            assert!(!s.record_path("k").exists());
        }
        std::fs::write(d.path().join("records/.tmpAbC123"), b"half").unwrap();
        drop(s);
        Store::open(d.path(), false).unwrap();
        assert!(!d.path().join("records/.tmpAbC123").exists());
    }

    #[test]
    fn atomic_write_replaces_whole() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("r.json");
        write_atomic(&p, b"old").unwrap();
        write_atomic(&p, b"new").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"new");
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
    }
}
