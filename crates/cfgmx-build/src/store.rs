//! The build root: a lock file so one `cfgmx build` at a time owns it, one record per variant
//! keyed by concrete hash (written by [`cfgmx_fs::write_atomic`]), and a source-tree
//! fingerprint that decides whether a passed variant must run again.

use crate::report::VariantResult;
use fs4::fs_std::FileExt;
use std::fs::File;
use std::path::{Path, PathBuf};

/// The name of the lock file `cfgmx build` and `cfgmx expand --lock` write (`job::LockFile`).
pub const LOCK_FILE: &str = "cfgmx.lock";

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
        cfgmx_fs::write_atomic(&self.record_path(key), &text)
    }
}

/// The file every build root holds (and any directory of cfgmx's own outputs may): the
/// fingerprint skips a directory that has it.
pub const LOCK_NAME: &str = "cfgmx-build.lock";

/// A hash of the source tree's paths, sizes and modification times (not contents: this must
/// cost milliseconds), and of the commit `.git` points at (a build may read it: `git
/// describe` in a version string), but not of the rest of `.git` (`git status` rewrites the
/// index). Skips anything under `exclude` (this build's root), and cfgmx's own outputs
/// wherever they are: any build root (a directory holding [`LOCK_NAME`], such as another
/// Slurm task's) and any directory marked as a cache by a `CACHEDIR.TAG` (the generated Slurm
/// scripts mark their output directory so), so concurrent builds writing there never make the
/// source look changed.
pub fn fingerprint(source: &Path, exclude: &[PathBuf]) -> std::io::Result<String> {
    let entries = tree_entries(source, exclude)?;
    let mut h = cfgmx_model::hash::ContentHasher::default();
    for (path, stat) in &entries {
        h.update(path.as_bytes());
        h.update(b"\t");
        h.update(stat.as_bytes());
        h.update(b"\n");
    }
    if let Some(head) = git_head(source) {
        h.update(b"\0git HEAD\t");
        h.update(head.as_bytes());
    }
    Ok(h.finish())
}

/// What [`fingerprint`] hashes: each file's path relative to `source`, with its size and
/// modification time, sorted by path. Two listings compared say which files changed.
pub fn tree_entries(
    source: &Path,
    exclude: &[PathBuf],
) -> std::io::Result<std::collections::BTreeMap<String, String>> {
    let mut entries = std::collections::BTreeMap::new();
    let mut seen = std::collections::HashSet::new();
    if let Ok(c) = source.canonicalize() {
        seen.insert(c);
    }
    walk(source, source, exclude, &mut entries, &mut seen)?;
    Ok(entries)
}

/// The paths that are new, gone or changed from `before` to `after` (at most `max`, sorted).
pub fn changed_paths(
    before: &std::collections::BTreeMap<String, String>,
    after: &std::collections::BTreeMap<String, String>,
    max: usize,
) -> Vec<String> {
    let mut out: Vec<String> = after
        .iter()
        .filter(|(p, s)| before.get(*p) != Some(*s))
        .map(|(p, _)| p.clone())
        .chain(before.keys().filter(|p| !after.contains_key(*p)).cloned())
        .collect();
    out.sort();
    out.dedup();
    out.truncate(max);
    out
}

/// The commit the source's git checkout is at (`HEAD`, its ref resolved through the loose
/// ref or `packed-refs`, also for a worktree whose `.git` is a file), or None outside git.
fn git_head(source: &Path) -> Option<String> {
    let dot = source.join(".git");
    let gitdir = if dot.is_file() {
        let text = cfgmx_fs::read_to_string(&dot, 4096).ok()?;
        let d = PathBuf::from(text.trim().strip_prefix("gitdir:")?.trim());
        if d.is_absolute() {
            d
        } else {
            source.join(d)
        }
    } else {
        dot
    };
    let head = cfgmx_fs::read_to_string(&gitdir.join("HEAD"), 4096).ok()?;
    let Some(name) = head.trim().strip_prefix("ref:").map(str::trim) else {
        return Some(head.trim().to_string());
    };
    // A worktree's branches live in the main repository's directory (`commondir`).
    let common = cfgmx_fs::read_to_string(&gitdir.join("commondir"), 4096)
        .ok()
        .map(|c| gitdir.join(c.trim()));
    for dir in std::iter::once(gitdir.clone()).chain(common) {
        if let Ok(id) = cfgmx_fs::read_to_string(&dir.join(name), 4096) {
            return Some(format!("{name} {}", id.trim()));
        }
        if let Ok(packed) = cfgmx_fs::read_to_string(&dir.join("packed-refs"), cfgmx_fs::MAX_BYTES)
        {
            if let Some(id) = packed
                .lines()
                .find_map(|l| l.strip_suffix(name)?.strip_suffix(' '))
            {
                return Some(format!("{name} {id}"));
            }
        }
    }
    // A branch with no commit yet.
    Some(head.trim().to_string())
}

fn walk(
    base: &Path,
    dir: &Path,
    exclude: &[PathBuf],
    out: &mut std::collections::BTreeMap<String, String>,
    seen: &mut std::collections::HashSet<PathBuf>,
) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let p = e.path();
        // The lock file may sit in the source tree (users commit it); writing it is no change.
        if e.file_name() == ".git"
            || e.file_name() == LOCK_FILE
            || exclude.iter().any(|x| p.starts_with(x))
        {
            continue;
        }
        let md = e.metadata()?;
        if md.is_dir() && (p.join(LOCK_NAME).exists() || p.join("CACHEDIR.TAG").exists()) {
            continue;
        }
        let rel = p.strip_prefix(base).unwrap_or(&p).display().to_string();
        let stat = |md: &std::fs::Metadata| {
            let mtime = md
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            format!("{}\t{mtime}", md.len())
        };
        if md.is_dir() {
            walk(base, &p, exclude, out, seen)?;
        } else if md.is_symlink() {
            // A build reads what a link points at (possibly outside the tree), not the link:
            // its target and the target's stat, not the link's own time; through a link to a
            // directory, every file there (each directory once: a link loop ends).
            let target = std::fs::read_link(&p)?;
            let followed = std::fs::metadata(&p);
            let to = followed.as_ref().map_or_else(
                |_| "dangling".into(),
                |m| if m.is_dir() { "dir".into() } else { stat(m) },
            );
            out.insert(rel, format!("-> {}\t{to}", target.display()));
            if followed.is_ok_and(|m| m.is_dir()) && p.canonicalize().is_ok_and(|c| seen.insert(c))
            {
                walk(base, &p, exclude, out, seen)?;
            }
        } else {
            out.insert(rel, stat(&md));
        }
    }
    Ok(())
}

/// Makes `to` a copy of the source tree `from` (for building from a copy), skipping `.git`
/// and `exclude`: files copied with their modification times (so an unchanged file is not
/// copied again and the incremental build stays incremental), links recreated as links, and
/// whatever `to` holds that `from` does not removed — a file deleted from the source, or one
/// the project's tests wrote into the copy last time, is not there for the build to read.
pub fn copy_tree(from: &Path, to: &Path, exclude: &[PathBuf]) -> std::io::Result<()> {
    copy_dir(from, to, exclude, &from.canonicalize()?)
}

/// [`copy_tree`] of one directory; `top` is the canonical source tree.
fn copy_dir(from: &Path, to: &Path, exclude: &[PathBuf], top: &Path) -> std::io::Result<()> {
    if std::fs::symlink_metadata(to).is_ok_and(|m| !m.is_dir()) {
        std::fs::remove_file(to)?;
    }
    std::fs::create_dir_all(to)?;
    let mut kept = std::collections::HashSet::new();
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let p = e.path();
        if e.file_name() == ".git" || exclude.iter().any(|x| p.starts_with(x)) {
            continue;
        }
        let dest = to.join(e.file_name());
        let ft = e.file_type()?;
        // A FIFO, socket or device is no source a build reads, and opening a FIFO to copy it
        // would block until something writes to it.
        if !(ft.is_dir() || ft.is_file() || ft.is_symlink()) {
            continue;
        }
        kept.insert(e.file_name());
        let old = std::fs::symlink_metadata(&dest).ok();
        if ft.is_dir() {
            copy_dir(&p, &dest, exclude, top)?;
        } else if ft.is_symlink() {
            let mut target = std::fs::read_link(&p)?;
            // A relative link out of the tree (`extern -> ../shared`) would point elsewhere
            // from the copy: it gets the absolute path of what it reaches from the source.
            if target.is_relative() {
                let reached = from.join(&target);
                if let Ok(r) = reached.canonicalize() {
                    if !r.starts_with(top) {
                        target = r;
                    }
                }
            }
            if std::fs::read_link(&dest).ok().as_ref() != Some(&target) {
                remove_any(&dest)?;
                std::os::unix::fs::symlink(&target, &dest)?;
            }
        } else {
            let md = e.metadata()?;
            let same = old.as_ref().is_some_and(|b| {
                b.is_file() && md.len() == b.len() && md.modified().ok() == b.modified().ok()
            });
            if !same {
                if old.as_ref().is_some_and(|b| !b.is_file()) {
                    remove_any(&dest)?;
                }
                std::fs::copy(&p, &dest)?;
                let f = std::fs::File::options().write(true).open(&dest)?;
                f.set_modified(md.modified()?)?;
            }
        }
    }
    for e in std::fs::read_dir(to)? {
        let e = e?;
        if !kept.contains(&e.file_name()) {
            remove_any(&e.path())?;
        }
    }
    Ok(())
}

fn remove_any(p: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(p),
        Ok(_) => std::fs::remove_file(p),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// What a build root remembers about the projects built in it: whether each one's build or
/// tests write into its source tree (then every variant is built from its own copy, by
/// default), keyed by the source's canonical path.
pub const SOURCE_WRITES: &str = "source-writes.json";

/// Whether a project writes into its source tree, as far as cfgmx has seen.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceVerdict {
    /// A variant ran its tests from a copy and the copy was left as it was.
    Clean,
    /// A variant's configure, build or tests changed these files of the tree.
    Writes { paths: Vec<String> },
}

impl Store {
    fn verdicts(&self) -> std::collections::BTreeMap<String, SourceVerdict> {
        cfgmx_fs::read(&self.root.join(SOURCE_WRITES), cfgmx_fs::MAX_OWN_BYTES)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// What this build root remembers about the project at `source` (canonical), if anything.
    pub fn source_verdict(&self, source: &Path) -> Option<SourceVerdict> {
        self.verdicts().remove(&source.display().to_string())
    }

    /// Remembers `v` for the project at `source`; the build root holds the lock, so this
    /// read-modify-write has no concurrent writer in another process.
    pub fn remember_source(&self, source: &Path, v: &SourceVerdict) -> std::io::Result<()> {
        let mut all = self.verdicts();
        all.insert(source.display().to_string(), v.clone());
        let text = serde_json::to_vec_pretty(&all).map_err(std::io::Error::other)?;
        cfgmx_fs::write_atomic(&self.root.join(SOURCE_WRITES), &text)
    }
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
    fn a_copy_mirrors_the_source_and_keeps_unchanged_files_as_they_were() {
        let d = tempfile::tempdir().unwrap();
        let (src, dst) = (d.path().join("s"), d.path().join("d"));
        std::fs::create_dir_all(src.join("sub")).unwrap();
        std::fs::write(src.join("a.c"), "int a;").unwrap();
        std::fs::write(src.join("sub/b.c"), "int b;").unwrap();
        std::os::unix::fs::symlink("a.c", src.join("link.c")).unwrap();
        // A FIFO in the tree (a named pipe a developer left there) is not copied, and the
        // copy does not block on it.
        let fifo = std::ffi::CString::new(src.join("pipe").to_str().unwrap()).unwrap();
        // SAFETY: mkfifo with a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        copy_tree(&src, &dst, &[]).unwrap();
        assert!(!dst.join("pipe").exists());
        std::fs::remove_file(src.join("pipe")).unwrap();
        let t = tree_entries(&src, &[]).unwrap();
        // Same paths, sizes and times: the copy's listing is the source's.
        assert_eq!(tree_entries(&dst, &[]).unwrap(), t);
        assert_eq!(
            std::fs::read_link(dst.join("link.c")).unwrap(),
            Path::new("a.c")
        );
        // What a test wrote into the copy, and a file deleted from the source, are gone after
        // the next copy; an unchanged file is not copied again.
        std::fs::write(dst.join("out.dat"), "x").unwrap();
        std::fs::remove_file(src.join("sub/b.c")).unwrap();
        let inode = |p: &Path| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(p).unwrap());
        let a_before = inode(&dst.join("a.c"));
        copy_tree(&src, &dst, &[]).unwrap();
        assert!(!dst.join("out.dat").exists() && !dst.join("sub/b.c").exists());
        assert_eq!(inode(&dst.join("a.c")), a_before);
        assert_eq!(
            changed_paths(&t, &tree_entries(&dst, &[]).unwrap(), 5),
            ["sub/b.c"]
        );
    }

    #[test]
    fn links_out_of_the_tree_are_followed_and_stay_valid_in_a_copy() {
        let d = tempfile::tempdir().unwrap();
        let (src, shared) = (d.path().join("proj"), d.path().join("shared"));
        std::fs::create_dir_all(&src).unwrap();
        std::fs::create_dir_all(&shared).unwrap();
        std::fs::write(shared.join("h.h"), "#define A 1").unwrap();
        std::fs::write(src.join("a.c"), "int a;").unwrap();
        std::os::unix::fs::symlink("../shared", src.join("ext")).unwrap();
        std::os::unix::fs::symlink("a.c", src.join("b.c")).unwrap();
        // A loop (a link to the tree's own top) is walked once, not forever.
        std::os::unix::fs::symlink(".", src.join("again")).unwrap();
        let f1 = fingerprint(&src, &[]).unwrap();
        assert!(tree_entries(&src, &[]).unwrap().contains_key("ext/h.h"));
        // A header the build reads through the link changes the fingerprint.
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(shared.join("h.h"), "#define A 2").unwrap();
        assert_ne!(fingerprint(&src, &[]).unwrap(), f1);
        // In a copy elsewhere, the link out of the tree still reaches it; one inside the tree
        // stays relative (the copy's own file).
        let copy = d.path().join("root/abc/src");
        copy_tree(&src, &copy, &[]).unwrap();
        assert_eq!(
            std::fs::read_to_string(copy.join("ext/h.h")).unwrap(),
            "#define A 2"
        );
        assert!(std::fs::read_link(copy.join("ext")).unwrap().is_absolute());
        assert_eq!(
            std::fs::read_link(copy.join("b.c")).unwrap(),
            Path::new("a.c")
        );
    }

    #[test]
    fn the_commit_checked_out_is_part_of_the_fingerprint() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("a.c"), "int a;").unwrap();
        let git = d.path().join(".git");
        std::fs::create_dir_all(git.join("refs/heads")).unwrap();
        std::fs::write(git.join("HEAD"), "ref: refs/heads/main\n").unwrap();
        std::fs::write(git.join("refs/heads/main"), "1111\n").unwrap();
        let f1 = fingerprint(d.path(), &[]).unwrap();
        // `git status` rewrites the index: not a change.
        std::fs::write(git.join("index"), "whatever").unwrap();
        assert_eq!(fingerprint(d.path(), &[]).unwrap(), f1);
        // A new commit with the same files (what `git describe` in a build reads) is one.
        std::fs::write(git.join("refs/heads/main"), "2222\n").unwrap();
        let f2 = fingerprint(d.path(), &[]).unwrap();
        assert_ne!(f2, f1);
        // Through packed-refs too.
        std::fs::remove_file(git.join("refs/heads/main")).unwrap();
        std::fs::write(git.join("packed-refs"), "3333 refs/heads/main\n").unwrap();
        let f3 = fingerprint(d.path(), &[]).unwrap();
        assert_ne!(f3, f2);
        assert_ne!(f3, f1);
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
}
