//! The one way cfgmx reads a file it did not just write, and the one way it writes one.
//!
//! [`read`] takes regular files only (a FIFO would block the open until something writes to
//! it; `/dev/zero` never ends; a socket or directory is a mistake), at most a given number of
//! bytes, and says which of those it met. Data files, profiles, lock files, report shards,
//! caches and store records all come through here, so the cap and the refusal hold
//! everywhere.
//!
//! [`write_atomic`] (one file) and [`Batch`] (several, made visible together) write through a
//! temporary name and a rename, with the data on disk before the rename and the rename on
//! disk before they return: a reader sees the old file or the new one, never part of one, and
//! a crash or a full disk leaves the old one. Records, caches, reports, build configuration
//! and `generate -o` all write this way.
//!
//! Never: deletes a file it did not create, or follows a path it was not given.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Largest hand-written input cfgmx reads (matrix, descriptor, template, profile): they are
/// kilobytes; anything larger is a mistake (a log, a binary, a device).
pub const MAX_BYTES: u64 = 16 << 20;
/// Largest file cfgmx wrote itself and reads back (lock file, report shard, store record,
/// cache): a lock of ten thousand variants is tens of megabytes.
pub const MAX_OWN_BYTES: u64 = 256 << 20;

/// Why a file was not read.
#[derive(Debug)]
pub enum ReadError {
    /// The operating system's error (not found, permission denied, not UTF-8 for text).
    Io(std::io::Error),
    /// Not a regular file: what it is instead ("a FIFO (named pipe)").
    NotRegular(&'static str),
    /// Larger than the limit: its size (or the bytes seen before giving up).
    TooBig { size: u64, limit: u64 },
    /// A symbolic link whose target does not exist.
    Dangling(PathBuf),
}

impl ReadError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, ReadError::Io(e) if e.kind() == std::io::ErrorKind::NotFound)
    }
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Io(e) => write!(f, "{e}"),
            ReadError::NotRegular(what) => write!(f, "it is {what}, not a regular file"),
            ReadError::TooBig { size, limit } => write!(
                f,
                "it is {:.1} MiB, larger than the {} MiB cfgmx reads",
                *size as f64 / (1u64 << 20) as f64,
                limit >> 20
            ),
            ReadError::Dangling(to) => write!(
                f,
                "it is a symbolic link to {}, which does not exist",
                to.display()
            ),
        }
    }
}

impl std::error::Error for ReadError {}

fn kind(m: &std::fs::Metadata) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt;
    let t = m.file_type();
    if t.is_file() {
        None
    } else if t.is_dir() {
        Some("a directory")
    } else if t.is_fifo() {
        Some("a FIFO (named pipe)")
    } else if t.is_socket() {
        Some("a socket")
    } else if t.is_char_device() || t.is_block_device() {
        Some("a device")
    } else {
        Some("not a regular file")
    }
}

/// Reads at most `limit` bytes of the regular file `path`.
pub fn read(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    use std::os::unix::fs::OpenOptionsExt;
    // Checked before opening, opened without blocking in case the path changed in between,
    // then checked again on what was opened.
    match std::fs::metadata(path) {
        Ok(m) => {
            if let Some(what) = kind(&m) {
                return Err(ReadError::NotRegular(what));
            }
        }
        Err(e) => {
            if let Ok(to) = std::fs::read_link(path) {
                return Err(ReadError::Dangling(to));
            }
            return Err(ReadError::Io(e));
        }
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(ReadError::Io)?;
    let meta = file.metadata().map_err(ReadError::Io)?;
    if let Some(what) = kind(&meta) {
        return Err(ReadError::NotRegular(what));
    }
    if meta.len() > limit {
        return Err(ReadError::TooBig {
            size: meta.len(),
            limit,
        });
    }
    // A growing file has no trustworthy length: the read is capped too.
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)?;
    if bytes.len() as u64 > limit {
        return Err(ReadError::TooBig {
            size: bytes.len() as u64,
            limit,
        });
    }
    Ok(bytes)
}

/// [`read`] as UTF-8 text (invalid UTF-8 is an `Io` error of kind `InvalidData`).
pub fn read_to_string(path: &Path, limit: u64) -> Result<String, ReadError> {
    let bytes = read(path, limit)?;
    String::from_utf8(bytes)
        .map_err(|e| ReadError::Io(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))
}

/// How a written file may be used: its mode is this less the umask, as for any new file
/// (0644 and 0755 under umask 022), not a temporary file's private 0600.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// 0666 less the umask.
    Regular,
    /// A script meant to be run: 0777 less the umask.
    Executable,
}

impl Mode {
    fn bits(self) -> u32 {
        match self {
            Mode::Regular => 0o666,
            Mode::Executable => 0o777,
        }
    }
}

fn parent_of(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Flushes a directory's entries (a rename into it) to disk. A file system that cannot sync
/// a directory (some network ones answer `EINVAL`) has nothing more to offer: not an error.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    match std::fs::File::open(dir).and_then(|d| d.sync_all()) {
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(()),
        r => r,
    }
}

/// Writes `bytes` to `path` (creating its directory) with [`Mode::Regular`]; see
/// [`write_atomic_mode`].
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomic_mode(path, bytes, Mode::Regular)
}

/// Writes `bytes` to `path` through a temporary file in the same directory: written,
/// fsynced, renamed over `path`, then the directory fsynced. A reader sees the old file or
/// the new one, never half of one; a full disk fails the write, not the old file; once this
/// returns, the new file survives a crash. A temporary file left by a killed process is
/// named `.tmp*` (what [`tempfile`] names it).
pub fn write_atomic_mode(path: &Path, bytes: &[u8], mode: Mode) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    let dir = parent_of(path);
    std::fs::create_dir_all(dir)?;
    // open() applies the umask to the mode it is given.
    let mut tmp = tempfile::Builder::new()
        .permissions(std::fs::Permissions::from_mode(mode.bits()))
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    sync_dir(dir)
}

/// Several files made visible together: [`Batch::add`] writes each to a staging directory
/// (on the file system of the targets, so a rename moves it), [`Batch::commit`] puts them all
/// on disk with one `syncfs` (a thousand fsyncs would cost more than the rendering), renames
/// each into place and fsyncs the directories renamed into. Until the first rename nothing
/// has changed; dropping a batch uncommitted removes what it staged.
#[derive(Debug)]
pub struct Batch {
    stage: PathBuf,
    staged: Vec<(PathBuf, PathBuf)>,
}

impl Batch {
    /// A batch staging its files in `stage`, a directory it creates (and removes when done).
    pub fn new(stage: PathBuf) -> Batch {
        Batch {
            stage,
            staged: Vec::new(),
        }
    }

    /// Writes `bytes`, to be renamed to `target` (whose directory is created now).
    pub fn add(&mut self, target: &Path, bytes: &[u8], mode: Mode) -> std::io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::create_dir_all(&self.stage)?;
        std::fs::create_dir_all(parent_of(target))?;
        // Flat names in the staging directory: no tree to mirror, one rename per file.
        let tmp = self.stage.join(self.staged.len().to_string());
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode.bits())
            .open(&tmp)?;
        self.staged.push((tmp, target.to_path_buf()));
        f.write_all(bytes)
    }

    /// Renames every staged file into place, in the order added. An error names the file.
    pub fn commit(mut self) -> Result<(), (PathBuf, std::io::Error)> {
        let staged = std::mem::take(&mut self.staged);
        if let Some((first, target)) = staged.first() {
            // SAFETY: syncfs on a file descriptor this block owns.
            let synced = std::fs::File::open(first).and_then(|f| {
                use std::os::fd::AsRawFd;
                match unsafe { libc::syncfs(f.as_raw_fd()) } {
                    0 => Ok(()),
                    _ => Err(std::io::Error::last_os_error()),
                }
            });
            synced.map_err(|e| (target.clone(), e))?;
        }
        let mut dirs = std::collections::BTreeSet::new();
        for (tmp, target) in &staged {
            std::fs::rename(tmp, target).map_err(|e| (target.clone(), e))?;
            dirs.insert(parent_of(target).to_path_buf());
        }
        for d in dirs {
            sync_dir(&d).map_err(|e| (d.clone(), e))?;
        }
        Ok(())
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.stage);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_files_are_read_and_everything_else_is_named() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("a.toml");
        std::fs::write(&f, "x = 1\n").unwrap();
        assert_eq!(read(&f, MAX_BYTES).unwrap(), b"x = 1\n");
        assert!(matches!(
            read(&f, 3),
            Err(ReadError::TooBig { size: 6, limit: 3 })
        ));
        let fifo = d.path().join("p");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid path string.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        let e = read(&fifo, MAX_BYTES).unwrap_err().to_string();
        assert_eq!(e, "it is a FIFO (named pipe), not a regular file");
        let e = read(Path::new("/dev/zero"), MAX_BYTES)
            .unwrap_err()
            .to_string();
        assert_eq!(e, "it is a device, not a regular file");
        assert!(read(d.path(), MAX_BYTES)
            .unwrap_err()
            .to_string()
            .contains("a directory"));
        let link = d.path().join("gone");
        std::os::unix::fs::symlink("/nonexistent/x", &link).unwrap();
        let e = read(&link, MAX_BYTES).unwrap_err().to_string();
        assert!(e.contains("symbolic link to /nonexistent/x"), "{e}");
        assert!(read(&d.path().join("none"), MAX_BYTES)
            .unwrap_err()
            .is_not_found());
        std::fs::write(&f, [0xff, 0xfe]).unwrap();
        assert!(read_to_string(&f, MAX_BYTES).is_err());
    }

    #[test]
    fn atomic_writes_replace_whole_files_with_the_umask_mode() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("sub/a.json");
        write_atomic(&f, b"one").unwrap();
        write_atomic(&f, b"two").unwrap();
        assert_eq!(std::fs::read(&f).unwrap(), b"two");
        // The test process's umask is whatever the runner set: read it back from the kernel.
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let mask = status
            .lines()
            .find_map(|l| l.strip_prefix("Umask:"))
            .map(|v| u32::from_str_radix(v.trim(), 8).unwrap())
            .unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&f), 0o666 & !mask);
        let x = d.path().join("run.sh");
        write_atomic_mode(&x, b"#!/bin/sh\n", Mode::Executable).unwrap();
        assert_eq!(mode(&x), 0o777 & !mask);
        // Nothing but the two files is left behind.
        let names: Vec<_> = std::fs::read_dir(d.path().join("sub"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["a.json"]);
    }

    #[test]
    fn a_batch_changes_nothing_until_commit_and_cleans_its_stage() {
        let d = tempfile::tempdir().unwrap();
        let stage = d.path().join(".stage");
        let a = d.path().join("x/a");
        std::fs::create_dir_all(d.path().join("x")).unwrap();
        std::fs::write(&a, "old").unwrap();
        let mut b = Batch::new(stage.clone());
        b.add(&a, b"new", Mode::Regular).unwrap();
        b.add(&d.path().join("y/b"), b"b", Mode::Executable)
            .unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), b"old");
        drop(b);
        assert_eq!(std::fs::read(&a).unwrap(), b"old");
        assert!(!stage.exists() && !d.path().join("y/b").exists());
        let mut b = Batch::new(stage.clone());
        b.add(&a, b"new", Mode::Regular).unwrap();
        b.add(&d.path().join("y/b"), b"b", Mode::Executable)
            .unwrap();
        b.commit().unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), b"new");
        assert_eq!(std::fs::read(d.path().join("y/b")).unwrap(), b"b");
        assert!(!stage.exists());
    }
}
