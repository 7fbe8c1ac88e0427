//! Terminal output helpers: aligned tables and a quiet exit on a closed pipe.

/// Restores the default SIGPIPE action so `cfgmx expand | head` ends quietly instead of
/// panicking on a failed write (Rust ignores SIGPIPE by default).
pub fn reset_sigpipe() {
    #[cfg(unix)]
    // SAFETY: setting a signal disposition to its default at start-up, before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// A left-aligned text table; columns are as wide as their widest cell.
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&str]) -> Table {
        Table {
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn render(&self) -> String {
        let n = self.headers.len();
        let mut w = vec![0usize; n];
        for r in std::iter::once(&self.headers).chain(&self.rows) {
            for (i, c) in r.iter().enumerate().take(n) {
                w[i] = w[i].max(c.chars().count());
            }
        }
        let mut out = String::new();
        for r in std::iter::once(&self.headers).chain(&self.rows) {
            let mut line = String::new();
            for (i, c) in r.iter().enumerate().take(n) {
                if i + 1 == n {
                    line.push_str(c);
                } else {
                    line.push_str(c);
                    line.push_str(&" ".repeat(w[i] - c.chars().count() + 2));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// Joins flags for display, quoting any with spaces.
pub fn flags(fs: &[String]) -> String {
    fs.iter()
        .map(|f| {
            if f.contains(' ') || f.is_empty() {
                format!("{f:?}")
            } else {
                f.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A sourceable POSIX sh script that puts a locked variant's compilers, flags and environment
/// in place (`cfgmx env HASH`): the env file `generate -f env` renders for it, which the lock
/// carries, so there is one writer and one quoting (each flag one shell word inside the
/// variable, so `make`'s `$(CC) $(CFLAGS) ...` never runs a `; cmd` held in a flag).
pub fn env_script(j: &cfgmx_build::job::Job) -> crate::error::Result<String> {
    j.files.get("env").cloned().ok_or_else(|| {
        crate::error::CliError::usage(format!(
            "variant {} ({}) in the lock file has no env script: its entry was written by an \
             older cfgmx, or holds a value a shell script cannot; run `cfgmx expand --lock` or \
             `cfgmx build` again",
            j.name, j.hash
        ))
    })
}
