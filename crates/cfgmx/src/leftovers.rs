//! Nothing left behind: every scratch directory and staging area cfgmx makes carries the
//! process id in its name (`cfgmx-probe-<pid>-…` in the temp directory, `.cfgmx-staging-<pid>`
//! in a `generate -o` directory), so Ctrl-C removes this process's own, and the next run
//! removes those of processes that are gone (SIGKILL, a power cut). A live process's are
//! never touched.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Prefixes of the scratch directories in the temp directory (`<prefix><pid>-<random>`).
pub const SCRATCH_PREFIXES: &[&str] = &["cfgmx-probe-", "cfgmx-proof-", "cfgmx-render-"];
/// A `generate -o` staging directory inside the output directory.
pub const STAGING_PREFIX: &str = ".cfgmx-staging-";

/// Paths to remove if the user interrupts (generate's staging directory).
static ON_INTERRUPT: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Whether process `pid` still runs (`kill(pid, 0)`: anything but "no such process" counts
/// as alive, so a process of another user is left alone).
pub fn alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return true;
    };
    // SAFETY: signal 0 only checks that the process exists.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// The pid in `name` after `prefix` (`cfgmx-probe-123-abc` -> 123).
fn pid_after(name: &str, prefix: &str) -> Option<u32> {
    let rest = name.strip_prefix(prefix)?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let after = &rest[digits.len()..];
    (after.is_empty() || after.starts_with('-'))
        .then(|| digits.parse().ok())
        .flatten()
}

/// Whose leftovers a sweep removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whose {
    /// Those of processes that are gone (a killed run's).
    Dead,
    /// Those too of this process (its own, on Ctrl-C).
    DeadAndMine,
}

/// Removes, in `dir`, the entries named `<prefix><pid>…` whose process is gone (or, with
/// [`Whose::DeadAndMine`], this process's own). Returns how many were removed.
pub fn sweep(dir: &Path, prefixes: &[&str], whose: Whose) -> usize {
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut n = 0;
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(pid) = prefixes.iter().find_map(|p| pid_after(name, p)) else {
            continue;
        };
        let stale = if pid == me {
            whose == Whose::DeadAndMine
        } else {
            !alive(pid)
        };
        if stale {
            let p = e.path();
            let gone = if p.is_dir() && !p.is_symlink() {
                std::fs::remove_dir_all(&p)
            } else {
                std::fs::remove_file(&p)
            };
            n += usize::from(gone.is_ok());
        }
    }
    n
}

/// Old-style temporary files (`.NAME.tmp-<pid>`, written beside each output by earlier
/// versions) of processes that are gone, anywhere under `dir`.
pub fn sweep_tmp_files(dir: &Path) -> usize {
    let mut n = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(ft) = e.file_type() else { continue };
            let name = e.file_name().to_string_lossy().into_owned();
            if ft.is_dir() {
                if !name.starts_with(STAGING_PREFIX) {
                    stack.push(e.path());
                }
                continue;
            }
            let pid = name
                .strip_prefix('.')
                .and_then(|r| r.rsplit_once(".tmp-"))
                .and_then(|(_, pid)| pid.parse::<u32>().ok());
            if pid.is_some_and(|p| p != std::process::id() && !alive(p))
                && std::fs::remove_file(e.path()).is_ok()
            {
                n += 1;
            }
        }
    }
    n
}

/// Whether this process still has a scratch directory in `dir`.
fn mine_left(dir: &Path) -> bool {
    let me = std::process::id();
    std::fs::read_dir(dir).is_ok_and(|d| {
        d.flatten().any(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| SCRATCH_PREFIXES.iter().any(|p| pid_after(n, p) == Some(me)))
        })
    })
}

/// Sweeps the temp directory of dead processes' scratch directories.
pub fn sweep_temp() -> usize {
    sweep(&std::env::temp_dir(), SCRATCH_PREFIXES, Whose::Dead)
}

/// Registers `p` for removal on Ctrl-C; [`forget`] when it is gone.
pub fn remove_on_interrupt(p: &Path) {
    ON_INTERRUPT
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(p.to_path_buf());
}

pub fn forget(p: &Path) {
    ON_INTERRUPT
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|x| x != p);
}

static EXITING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether the Ctrl-C handler is ending the process (it exits 130 once it has cleaned up).
pub fn exiting() -> bool {
    EXITING.load(std::sync::atomic::Ordering::SeqCst)
}

/// For every command but `build` (whose scheduler has its own handler): on SIGINT/SIGTERM,
/// end the children, remove this process's scratch directories and registered paths, exit 130.
pub fn install_handler() {
    let _ = ctrlc::set_handler(|| {
        EXITING.store(true, std::sync::atomic::Ordering::SeqCst);
        // Held until exit: the main thread, going on with results from killed or unstarted
        // compilers, blocks on its first print instead of reporting them.
        let _out = std::io::stdout().lock();
        let mut err = std::io::stderr().lock();
        // A progress bar (the probe's) is the line the cursor is on: wipe it, so no stale bar
        // stays above the shell prompt (the bar's own thread cannot draw any more).
        // The terminal's echo of `^C` first (a progress bar turned it off), so the cursor is
        // back where the bar is and the shell gets its settings back.
        crate::output::restore_echo();
        if std::io::IsTerminal::is_terminal(&err) {
            let _ = std::io::Write::write_all(&mut err, b"\r\x1b[2K");
            let _ = std::io::Write::flush(&mut err);
        }
        cfgmx_exec::kill_all(std::time::Duration::from_millis(500));
        // Worker threads keep going until exit: one may still write a source file into a
        // scratch directory being removed (rmdir then fails: not empty) or make a new one.
        // No compiler starts any more, so a few passes over a short while settle it.
        let tmp = std::env::temp_dir();
        for _ in 0..25 {
            sweep(&tmp, SCRATCH_PREFIXES, Whose::DeadAndMine);
            let paths = ON_INTERRUPT.lock().map(|v| v.clone()).unwrap_or_default();
            for p in &paths {
                let _ = std::fs::remove_dir_all(p);
            }
            if !mine_left(&tmp) && paths.iter().all(|p| !p.exists()) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        std::process::exit(130);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pids_are_read_from_names() {
        assert_eq!(pid_after("cfgmx-probe-123-abc", "cfgmx-probe-"), Some(123));
        assert_eq!(pid_after(".cfgmx-staging-77", STAGING_PREFIX), Some(77));
        assert_eq!(pid_after("cfgmx-probe-abc", "cfgmx-probe-"), None);
        assert_eq!(pid_after("cfgmx-probe-12x", "cfgmx-probe-"), None);
    }

    #[test]
    fn only_dead_processes_leftovers_are_swept() {
        let d = tempfile::tempdir().unwrap();
        // a pid that cannot exist (above pid_max) and this process's own
        let dead = 4_194_305u32;
        let me = std::process::id();
        for n in [
            format!("cfgmx-probe-{dead}-x"),
            format!("cfgmx-probe-{me}-y"),
        ] {
            std::fs::create_dir(d.path().join(&n)).unwrap();
            std::fs::write(d.path().join(&n).join("f"), "x").unwrap();
        }
        std::fs::create_dir(d.path().join("sub")).unwrap();
        std::fs::write(d.path().join(format!("sub/.a.json.tmp-{dead}")), "x").unwrap();
        std::fs::write(d.path().join(format!("sub/.b.json.tmp-{me}")), "x").unwrap();
        assert_eq!(sweep(d.path(), SCRATCH_PREFIXES, Whose::Dead), 1);
        assert!(d.path().join(format!("cfgmx-probe-{me}-y")).exists());
        assert_eq!(sweep_tmp_files(d.path()), 1);
        assert!(d.path().join(format!("sub/.b.json.tmp-{me}")).exists());
        assert_eq!(sweep(d.path(), SCRATCH_PREFIXES, Whose::DeadAndMine), 1);
    }
}
