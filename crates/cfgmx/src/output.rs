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
/// in place (`cfgmx env HASH`). Quoted by the same filters as `generate -f env`: each flag is
/// one shell word inside the variable, so `make`'s `$(CC) $(CFLAGS) ...` passes a flag holding
/// `; cmd` as one argument and never runs `cmd`; a value no shell word can hold is refused.
pub fn env_script(j: &cfgmx_build::job::Job) -> crate::error::Result<String> {
    use cfgmx_render::quote::{sh, sh_env, shjoin};
    let refused = |r: cfgmx_render::quote::Refusal| {
        crate::error::CliError::usage(format!(
            "variant {} in the lock file has a value a shell script cannot hold ({}): {:?}",
            j.name, r.reason, r.value
        ))
    };
    let mut out = format!("# cfgmx variant {} ({})\n", j.name, j.hash);
    // Compilers and flags are what make reads; the matrix's own variables are the user's.
    // Quoted only when the value needs it, as `generate -f env` writes words.
    let mut put = |k: &str, v: String, for_make: bool| -> crate::error::Result<()> {
        if for_make {
            sh_env(&v).map_err(refused)?;
        }
        let q = if v.is_empty() {
            sh(&v)
        } else {
            shjoin(std::slice::from_ref(&v))
        };
        out.push_str(&format!("export {k}={}\n", q.map_err(refused)?));
        Ok(())
    };
    for (k, v) in [("CC", &j.cc), ("CXX", &j.cxx), ("FC", &j.fc)] {
        if let Some(v) = v {
            put(k, v.clone(), true)?;
        }
    }
    for (k, words) in [
        ("CFLAGS", &j.cflags),
        ("CXXFLAGS", &j.cxxflags),
        ("FFLAGS", &j.fflags),
        ("LDFLAGS", &j.ldflags),
        ("LIBS", &j.libs),
    ] {
        put(k, shjoin(words).map_err(refused)?, true)?;
    }
    for (k, v) in &j.env {
        let plain = !k.is_empty()
            && !k.starts_with(|c: char| c.is_ascii_digit())
            && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !plain {
            return Err(crate::error::CliError::usage(format!(
                "variant {} in the lock file sets an environment variable named {k:?}, which is not a shell name",
                j.name
            )));
        }
        put(k, v.clone(), false)?;
    }
    Ok(out)
}
