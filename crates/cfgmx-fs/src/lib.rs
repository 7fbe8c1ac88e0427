//! The one way cfgmx reads a file it did not just write: [`read`] takes regular files only
//! (a FIFO would block the open until something writes to it; `/dev/zero` never ends; a
//! socket or directory is a mistake), at most a given number of bytes, and says which of
//! those it met. Data files, profiles, lock files, report shards, caches and store records all
//! come through here, so the cap and the refusal hold everywhere.
//!
//! Never: creates, writes or deletes anything.

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
}
