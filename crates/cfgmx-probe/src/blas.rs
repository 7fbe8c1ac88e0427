//! BLAS detection: one small C program, compiled once, `dlopen`s a library file and calls the
//! providers' query functions (`openblas_get_parallel`, `bli_info_get_enable_openmp`, ...), so
//! the threading comes from the library itself, not from its file name (Debian names the
//! pthread and OpenMP OpenBLAS files alike). The integer width comes from calling the
//! library's `idamax_` with an `N` that reads 2 as a 32-bit and negative as a 64-bit integer;
//! symbol decorations (scipy-openblas64's `scipy_` / `64_`) from which decorated names the
//! library exports. A layered library (MKL) is asked once per build, with exactly that build's
//! files loaded, what it really runs: its thread count and the OpenMP runtime it loaded. Every
//! symbol and decoration comes from the provider data files.

use crate::discover::{Found, Kind, Lib};
use crate::ProbeOptions;
use cfgmx_exec::Cmd;
use cfgmx_model::{
    BlasFailure, BlasRecord, Build, Decoration, IntWidth, Language, ProbeStatus, Provider,
    Registry, Threading,
};
use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::io::Write;
use std::path::{Path, PathBuf};

const QUERY_C: &str = r#"#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <stdio.h>
/* argv[1]: library; then l:PATH (load first, global), i:NAME (int f(void)), s:NAME
   (const char *f(void)), p:NAME (present?), n:NAME (int f(int), called with -1), b:NAME
   (void f(char *, int)), w:NAME (integer width through INTEGER f(N, X, INCX)), m: (loaded
   objects). */
static int loaded(struct dl_phdr_info *info, size_t size, void *data) {
  (void)size; (void)data;
  if (info->dlpi_name && info->dlpi_name[0]) printf("LOADED %s\n", info->dlpi_name);
  return 0;
}
int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc < 2) return 2;
  int pre = 0;
  for (int i = 2; i < argc; i++) {
    if (argv[i][0] != 'l') continue;
    if (!dlopen(argv[i] + 2, RTLD_LAZY | RTLD_GLOBAL)) { printf("ERROR %s\n", dlerror()); return 3; }
    pre = 1;
  }
  void *h = dlopen(argv[1], pre ? (RTLD_LAZY | RTLD_GLOBAL) : (RTLD_NOW | RTLD_LOCAL));
  if (!h) { printf("ERROR %s\n", dlerror()); return 3; }
  for (int i = 2; i < argc; i++) {
    const char *name = argv[i] + 2;
    char k = argv[i][0];
    if (k == 'l') continue;
    if (k == 'm') { dl_iterate_phdr(loaded, NULL); continue; }
    void *f = dlsym(h, name);
    if (!f && pre) f = dlsym(RTLD_DEFAULT, name);
    if (!f) { printf("MISSING %s\n", name); continue; }
    if (k == 'i') {
      int (*fn)(void) = (int (*)(void))f;
      printf("INT %s %d\n", name, fn());
    } else if (k == 'n') {
      int (*fn)(int) = (int (*)(int))f;
      printf("INT %s %d\n", name, fn(-1));
    } else if (k == 's') {
      const char *(*fn)(void) = (const char *(*)(void))f;
      const char *s = fn();
      printf("STR %s %s\n", name, s ? s : "");
    } else if (k == 'b') {
      char buf[512] = {0};
      ((void (*)(char *, int))f)(buf, (int)sizeof buf - 1);
      for (char *c = buf; *c; c++) if (*c == '\n') *c = ' ';
      printf("STR %s %s\n", name, buf);
    } else if (k == 'w') {
      long long n = (long long)0xFFFFFFFF00000002ULL, inc = 1;
      double x[2] = {1.0, 5.0};
      int r = ((int (*)(void *, void *, void *))f)(&n, x, &inc);
      printf("WIDTH %s %s\n", name, r == 2 ? "32" : r == 0 ? "64" : "?");
    } else {
      printf("HAS %s\n", name);
    }
  }
  return 0;
}
"#;

/// `N` for the integer-width call: read as a 32-bit integer (little-endian low word) it is 2,
/// as a 64-bit one it is negative, for which `i?amax` returns 0 without touching `X`.
const WIDTH_N: i64 = 0xFFFF_FFFF_0000_0002_u64 as i64;

/// The query program, in Rust, for a binary that runs it as a helper (`cfgmx` does, with the
/// hidden first argument [`crate::HELPER_ARG`]): the same protocol and output as `QUERY_C`, so
/// no C compiler is needed to ask the libraries. The answers go to `out`, which the helper's
/// caller gives as its stdout: the probe that runs it reads them there (the child's protocol,
/// not a message to the user), and a line-buffered stdout keeps the answers given before a
/// library crashes. Returns the exit code.
pub fn query_main(args: &[String], out: &mut dyn Write) -> i32 {
    let Some((lib, specs)) = args.split_first() else {
        return 2;
    };
    // SAFETY: see `open` and `answer`; this runs in a child process so a misbehaving library
    // cannot harm the probe.
    let (h, pre) = match unsafe { open(lib, specs, out) } {
        Ok(opened) => opened,
        Err(code) => return code,
    };
    for spec in specs {
        let (kind, name) = spec.split_at(spec.len().min(2));
        match kind {
            "l:" => continue,
            "m:" => {
                let _ = out.flush();
                let mut target: &mut dyn Write = &mut *out;
                // SAFETY: `loaded` reads `target` back as the `&mut dyn Write` it is, during
                // this call only.
                unsafe {
                    libc::dl_iterate_phdr(
                        Some(loaded),
                        (&mut target as *mut &mut dyn Write).cast::<libc::c_void>(),
                    );
                }
                continue;
            }
            _ => {}
        }
        let Ok(c_name) = CString::new(name) else {
            continue;
        };
        // SAFETY: dlsym with a valid handle and C string.
        let mut f = unsafe { libc::dlsym(h, c_name.as_ptr()) };
        if f.is_null() && pre {
            f = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c_name.as_ptr()) };
        }
        if f.is_null() {
            let _ = writeln!(out, "MISSING {name}");
            continue;
        }
        // SAFETY: see `answer`.
        let line = unsafe { answer(kind, name, f) };
        let _ = writeln!(out, "{line}");
    }
    0
}

/// The last `dlerror()` message.
fn dl_error() -> String {
    // SAFETY: dlerror returns null or a C string valid until the next dl call.
    unsafe {
        let e = libc::dlerror();
        if e.is_null() {
            String::new()
        } else {
            CStr::from_ptr(e).to_string_lossy().into_owned()
        }
    }
}

/// Loads the libraries a layered provider needs first (`l:` specs, global), then `lib`: its
/// handle, and whether anything was preloaded; Err is the exit code (the reason written).
///
/// # Safety
/// dlopen runs the libraries' initialisers.
unsafe fn open(
    lib: &str,
    specs: &[String],
    out: &mut dyn Write,
) -> Result<(*mut libc::c_void, bool), i32> {
    let Ok(c_lib) = CString::new(lib) else {
        return Err(2);
    };
    let mut pre = false;
    for spec in specs.iter().filter(|s| s.starts_with("l:")) {
        let Ok(p) = CString::new(&spec[2..]) else {
            return Err(2);
        };
        if unsafe { libc::dlopen(p.as_ptr(), libc::RTLD_LAZY | libc::RTLD_GLOBAL) }.is_null() {
            let _ = writeln!(out, "ERROR {}", dl_error());
            return Err(3);
        }
        pre = true;
    }
    let mode = if pre {
        libc::RTLD_LAZY | libc::RTLD_GLOBAL
    } else {
        libc::RTLD_NOW | libc::RTLD_LOCAL
    };
    let h = unsafe { libc::dlopen(c_lib.as_ptr(), mode) };
    if h.is_null() {
        let _ = writeln!(out, "ERROR {}", dl_error());
        return Err(3);
    }
    Ok((h, pre))
}

/// Calls symbol `f` as spec kind `kind` says and gives the answer line.
///
/// # Safety
/// Calling the symbols is inherently trusting the library: a provider's documented
/// `int f(void)` / `const char *f(void)`, a Fortran `i?amax`.
unsafe fn answer(kind: &str, name: &str, f: *mut libc::c_void) -> String {
    unsafe {
        match kind {
            "i:" => {
                let f: extern "C" fn() -> libc::c_int = std::mem::transmute(f);
                format!("INT {name} {}", f())
            }
            "n:" => {
                let f: extern "C" fn(libc::c_int) -> libc::c_int = std::mem::transmute(f);
                format!("INT {name} {}", f(-1))
            }
            "s:" => {
                let f: extern "C" fn() -> *const libc::c_char = std::mem::transmute(f);
                let p = f();
                let s = if p.is_null() {
                    String::new()
                } else {
                    CStr::from_ptr(p).to_string_lossy().into_owned()
                };
                format!("STR {name} {s}")
            }
            "b:" => {
                let f: extern "C" fn(*mut libc::c_char, libc::c_int) = std::mem::transmute(f);
                let mut buf = [0 as libc::c_char; 512];
                f(buf.as_mut_ptr(), buf.len() as libc::c_int - 1);
                let s = CStr::from_ptr(buf.as_ptr())
                    .to_string_lossy()
                    .replace('\n', " ");
                format!("STR {name} {s}")
            }
            "w:" => {
                type Amax = extern "C" fn(*const i64, *const f64, *const i64) -> libc::c_int;
                let f: Amax = std::mem::transmute(f);
                let (n, inc, x) = (WIDTH_N, 1_i64, [1.0_f64, 5.0]);
                let w = match f(&n, x.as_ptr(), &inc) {
                    2 => "32",
                    0 => "64",
                    _ => "?",
                };
                format!("WIDTH {name} {w}")
            }
            _ => format!("HAS {name}"),
        }
    }
}

/// `dl_iterate_phdr` callback: one `LOADED` line per loaded object with a name, to the
/// `&mut dyn Write` that `data` points to.
unsafe extern "C" fn loaded(
    info: *mut libc::dl_phdr_info,
    _size: libc::size_t,
    data: *mut libc::c_void,
) -> libc::c_int {
    // SAFETY: the loader passes a valid info whose name is a C string or null; `data` is the
    // writer `query_main` passed, alive for the whole iteration.
    let name = unsafe { (*info).dlpi_name };
    if !name.is_null() {
        let n = unsafe { CStr::from_ptr(name) }.to_string_lossy();
        if !n.is_empty() {
            let out = unsafe { &mut *data.cast::<&mut dyn Write>() };
            let _ = writeln!(out, "LOADED {n}");
        }
    }
    0
}

/// The query program's answers for one library.
#[derive(Debug, Default)]
struct Answers {
    ints: HashMap<String, i64>,
    strs: HashMap<String, String>,
    has: Vec<String>,
    widths: HashMap<String, String>,
    loaded: Vec<String>,
    error: Option<String>,
}

fn parse(out: &str) -> Answers {
    let mut a = Answers::default();
    for l in out.lines() {
        let mut it = l.splitn(3, ' ');
        match (it.next(), it.next(), it.next()) {
            (Some("INT"), Some(n), Some(v)) => {
                if let Ok(v) = v.trim().parse() {
                    a.ints.insert(n.into(), v);
                    a.has.push(n.into());
                }
            }
            (Some("STR"), Some(n), v) => {
                a.strs.insert(n.into(), v.unwrap_or("").trim().into());
                a.has.push(n.into());
            }
            (Some("WIDTH"), Some(n), Some(v)) => {
                a.widths.insert(n.into(), v.trim().into());
                a.has.push(n.into());
            }
            (Some("LOADED"), Some(p), rest) => {
                let mut p = p.to_string();
                if let Some(r) = rest {
                    p = format!("{p} {r}");
                }
                a.loaded.push(p);
            }
            (Some("ERROR"), m, rest) => {
                let m = [m.unwrap_or(""), rest.unwrap_or("")].join(" ");
                a.error = Some(m.trim().to_string());
            }
            (Some("HAS"), Some(n), _) => a.has.push(n.into()),
            _ => {}
        }
    }
    a
}

fn decorate(d: &Decoration, name: &str) -> String {
    format!("{}{name}{}", d.prefix, d.suffix)
}

/// Whether a provider's files can be identified by asking one of them (a threading query, a
/// flag function or a marker symbol); the others are asked per build (MKL) or known only by
/// their name and a BLAS symbol (reference BLAS).
fn identifies(p: &Provider) -> bool {
    let d = &p.detect;
    d.query.is_some() || !d.flags.is_empty() || d.marker.is_some()
}

/// Whether the provider has any question of its own (not just a BLAS symbol): a file answered
/// by name alone (`libblas.so.3`) gives way to one that answered it in the same directory.
fn answers_itself(p: &Provider) -> bool {
    identifies(p) || p.detect.threads.is_some() || p.detect.layer_query.is_some()
}

/// The threading the answers say, and the decoration they came under, if a provider with
/// query functions claims the library.
fn classify(p: &Provider, a: &Answers) -> Option<(Threading, Decoration)> {
    let d = &p.detect;
    for dec in d.decorations() {
        let has = |n: &str| a.has.iter().any(|h| *h == decorate(&dec, n));
        if let Some(q) = &d.query {
            let Some(v) = a.ints.get(&decorate(&dec, q)) else {
                continue;
            };
            return d
                .query_values
                .get(&v.to_string())
                .map(|t| (*t, dec.clone()));
        }
        if !d.flags.is_empty() {
            if !d
                .flags
                .keys()
                .any(|f| a.ints.contains_key(&decorate(&dec, f)))
            {
                continue;
            }
            let t = d
                .flags
                .iter()
                .find(|(f, _)| a.ints.get(&decorate(&dec, f)).is_some_and(|v| *v != 0))
                .map_or(Threading::Sequential, |(_, t)| *t);
            return Some((t, dec));
        }
        if let Some(m) = &d.marker {
            if has(m) {
                return Some((Threading::Sequential, dec));
            }
        }
    }
    None
}

/// The integer width the library answered through `int_probe` under `dec`.
fn width(p: &Provider, dec: &Decoration, a: &Answers) -> Result<IntWidth, String> {
    let Some(probe) = &p.detect.int_probe else {
        return Err(format!("provider {} names no `int_probe`", p.name));
    };
    let name = decorate(dec, probe);
    match a.widths.get(&name).map(String::as_str) {
        Some("32") => Ok(IntWidth::Lp64),
        Some("64") => Ok(IntWidth::Ilp64),
        Some(x) => Err(format!(
            "{name} gave an answer that fits neither width ({x})"
        )),
        None => Err(format!("{name} is not exported")),
    }
}

/// Every spec a provider's questions need, under each of its decorations.
fn specs_for(p: &Provider) -> Vec<String> {
    let d = &p.detect;
    let mut out = Vec::new();
    for dec in d.decorations() {
        let mut add = |kind: &str, n: &Option<String>| {
            if let Some(n) = n {
                out.push(format!("{kind}:{}", decorate(&dec, n)));
            }
        };
        add("i", &d.query);
        add("s", &d.config);
        add("p", &d.marker);
        add("p", &d.symbol);
        add("w", &d.int_probe);
        for f in d.flags.keys() {
            out.push(format!("i:{}", decorate(&dec, f)));
        }
    }
    out
}

/// `libNAME.so` -> `NAME`, `libNAME.so.3` -> `NAME`.
fn link_name(file: &str) -> Option<&str> {
    let r = file.strip_prefix("lib")?;
    let i = r.find(".so")?;
    (r[i + 3..].is_empty() || r[i + 3..].starts_with('.')).then_some(&r[..i])
}

/// How to name library `name` from directory `dir` on a link line: its link name when the
/// development file (`libNAME.so`) is there, else the full path of its shortest versioned file
/// (`libmkl_core.so.3`: `-l` cannot name it), else `None`.
fn in_dir(dir: &Path, name: &str) -> Option<(String, PathBuf)> {
    let dev = dir.join(format!("lib{name}.so"));
    if dev.exists() {
        return Some((name.to_string(), dev));
    }
    let prefix = format!("lib{name}.so.");
    let mut versioned: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_prefix(&prefix))
                .is_some_and(|v| {
                    v.split('.')
                        .all(|x| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit()))
                })
        })
        .collect();
    versioned.sort_by_key(|p| (p.as_os_str().len(), p.clone()));
    let p = versioned.into_iter().next()?;
    Some((p.display().to_string(), p))
}

/// One build's libraries as found beside `lib`: (link-line spellings, files to load for the
/// query in link order, `None` for a system library the C library provides). The found file
/// stands for the build's library that its name matches, or else for the build's first library
/// the provider is detected by (scipy's `libscipy_openblas64_.so` for `openblas`).
type Resolved = (Vec<String>, Vec<Option<String>>);

fn resolve_libs(p: &Provider, b: &Build, lib: &Lib) -> Result<Resolved, String> {
    let dir = lib.path.parent().unwrap_or(Path::new("/"));
    let file = lib.path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let own = link_name(file).unwrap_or("");
    let stands_for = b
        .libs
        .iter()
        .find(|l| *l == own)
        .or_else(|| b.libs.iter().find(|l| p.detect.libraries.contains(l)));
    let (mut link, mut load) = (Vec::new(), Vec::new());
    for l in &b.libs {
        if Some(l) == stands_for {
            match in_dir(dir, own) {
                Some((spelled, path)) => {
                    link.push(spelled);
                    load.push(Some(path.display().to_string()));
                }
                None => {
                    link.push(lib.path.display().to_string());
                    load.push(Some(lib.path.display().to_string()));
                }
            }
            continue;
        }
        if let Some((spelled, path)) = in_dir(dir, l) {
            link.push(spelled);
            load.push(Some(path.display().to_string()));
            continue;
        }
        match p.detect.system_libs.get(l) {
            Some(file) => {
                link.push(l.to_string());
                load.push((!file.is_empty()).then(|| file.clone()));
            }
            None => return Err(format!("lib{l} is not beside {}", lib.path.display())),
        }
    }
    Ok((link, load))
}

/// What asking one library file gave.
#[derive(Debug, Default)]
pub struct Asked {
    pub records: Vec<BlasRecord>,
    pub failure: Option<BlasFailure>,
    pub warnings: Vec<String>,
}

/// The outcome as a failure, when the library crashed, hung or the query did not run.
fn failed(o: &cfgmx_exec::Outcome, lib: &Lib) -> Option<BlasFailure> {
    let status = if o.timed_out {
        ProbeStatus::TimedOut
    } else if o.signal.is_some() {
        ProbeStatus::Crashed
    } else if o.spawn_error.is_some() || !matches!(o.code, Some(0 | 3)) {
        ProbeStatus::Failed
    } else {
        return None;
    };
    Some(BlasFailure {
        path: lib.path.display().to_string(),
        providers: lib.providers.clone(),
        status,
        error: format!("asking it: {o}"),
    })
}

pub struct Detected {
    pub records: Vec<BlasRecord>,
    pub default: Option<String>,
    pub warnings: Vec<String>,
    pub failures: Vec<BlasFailure>,
}

impl Detected {
    fn only(warnings: Vec<String>) -> Detected {
        Detected {
            records: Vec::new(),
            default: None,
            warnings,
            failures: Vec::new(),
        }
    }
}

/// What the BLAS probe asks, with which program, of which library files: made without running
/// anything (unless no helper binary is given and the query program must be compiled), so the
/// caller can schedule the per-library queries ([`Plan::query`]) among its other work.
pub struct Plan<'a> {
    reg: &'a Registry,
    specs: Vec<String>,
    prog: PathBuf,
    pre: Vec<String>,
    timeout: std::time::Duration,
    /// The library files to ask, one query each.
    pub libs: Vec<&'a Lib>,
}

/// The plan, or (`Err`) the whole answer when nothing can be asked.
pub fn plan<'a>(
    reg: &'a Registry,
    opts: &ProbeOptions,
    found: &'a Found,
    work: &Path,
) -> Result<Plan<'a>, Detected> {
    if found.libs.is_empty() {
        return Err(Detected::only(Vec::new()));
    }
    let mut specs: Vec<String> = Vec::new();
    for p in reg.providers.values() {
        for s in specs_for(p) {
            if !specs.contains(&s) {
                specs.push(s);
            }
        }
    }

    // The helper binary (cfgmx itself) when there is one; otherwise a compiled C program.
    let prog = match &opts.helper {
        Some(h) => Ok((h.clone(), vec![crate::HELPER_ARG.to_string()])),
        None => compile_query(found, opts, work).map(|p| (p, Vec::new())),
    };
    let (prog, pre) = match prog {
        Ok(p) => p,
        Err(e) => {
            // Without the query a file name says nothing reliable (Debian's libblas.so.3 may
            // be OpenBLAS, BLIS or reference BLAS), so nothing is reported.
            return Err(Detected::only(vec![format!(
                "BLAS libraries not probed: cannot compile the query program: {e}"
            )]));
        }
    };
    Ok(Plan {
        reg,
        specs,
        prog,
        pre,
        timeout: opts.timeout,
        libs: found.libs.iter().collect(),
    })
}

/// Plans, asks every library (in parallel) and finishes: the BLAS probe on its own.
#[cfg(test)]
pub fn detect(reg: &Registry, opts: &ProbeOptions, found: &Found, work: &Path) -> Detected {
    match plan(reg, opts, found, work) {
        Err(d) => d,
        Ok(p) => {
            use rayon::prelude::*;
            let per_lib = p.libs.par_iter().map(|l| p.query(l)).collect();
            p.finish(found, per_lib)
        }
    }
}

impl Plan<'_> {
    fn ask(
        &self,
        lib: &Path,
        specs: &[String],
        provider: Option<&Provider>,
    ) -> cfgmx_exec::Outcome {
        let mut cmd = Cmd::new(&self.prog)
            .args(&self.pre)
            .arg(lib)
            .args(specs)
            // two OpenMP threads: a threaded layer answers more than one (a pool of two
            // starts fast), the sequential one exactly one
            .env(cfgmx_model::OMP_NUM_THREADS, "2")
            .timeout(self.timeout);
        // the provider's own variables would change its answers: the library's defaults count
        if let Some(p) = provider {
            for v in &p.detect.clear_env {
                cmd = cmd.env_remove(v);
            }
            for (k, v) in &p.detect.query_env {
                cmd = cmd.env(k, v);
            }
            for b in &p.builds {
                for v in b.thread_vars.iter().chain(&b.ignored_vars) {
                    if v != cfgmx_model::OMP_NUM_THREADS {
                        cmd = cmd.env_remove(v);
                    }
                }
            }
        }
        cmd.output()
    }

    /// What one library file is: the records of the build it belongs to (none when it is
    /// not a BLAS a provider recognises), or why it could not be asked.
    pub fn query(&self, lib: &Lib) -> Asked {
        let reg = self.reg;
        let mut asked = Asked::default();
        let o = self.ask(&lib.path, &self.specs, None);
        if let Some(f) = failed(&o, lib) {
            asked.failure = Some(f);
            return asked;
        }
        let a = parse(&o.stdout);
        for p in reg.providers.values().filter(|p| identifies(p)) {
            let Some((t, dec)) = classify(p, &a) else {
                continue;
            };
            let Some(b) = p.builds.iter().find(|b| b.threading == t) else {
                asked.warnings.push(format!(
                    "{}: {} answers {t}, a build its data file does not list",
                    lib.path.display(),
                    p.name
                ));
                return asked;
            };
            let config = p
                .detect
                .config
                .as_ref()
                .and_then(|c| a.strs.get(&decorate(&dec, c)).cloned());
            match (width(p, &dec, &a), resolve_libs(p, b, lib)) {
                (Ok(w), Ok((libs, _))) => {
                    asked.records.push(record(p, b, lib, config, w, &dec, libs));
                }
                (Err(e), _) | (_, Err(e)) => {
                    asked.failure = Some(BlasFailure {
                        path: lib.path.display().to_string(),
                        providers: vec![p.name.clone()],
                        status: ProbeStatus::Unrecognised,
                        error: e,
                    });
                }
            }
            return asked;
        }
        // Providers known by name: each build the file belongs to, asked with that build's
        // files loaded (MKL's layers load only together), or the BLAS symbol alone.
        let own = lib
            .path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(link_name)
            .unwrap_or("");
        // Why builds of this file did not answer: a build whose files are not all here is
        // simply not installed; one that is there but does not load or answers otherwise than
        // its data says is worth telling.
        let mut why: Vec<String> = Vec::new();
        for p in lib
            .providers
            .iter()
            .filter_map(|n| reg.providers.get(n))
            .filter(|p| !identifies(p))
        {
            for b in p.builds.iter().filter(|b| b.libs.iter().any(|l| l == own)) {
                match self.ask_build(p, b, lib) {
                    Ok(Some(r)) => asked.records.push(r),
                    Ok(None) => {}
                    Err(Ok(f)) => {
                        asked.failure = Some(f);
                        return asked;
                    }
                    Err(Err(w)) => why.push(w),
                }
            }
        }
        // Nothing answered: a file that does not even load (a missing dependency) or whose
        // builds all failed is reported; some builds answering, the others are warnings.
        if asked.records.is_empty() {
            if why.is_empty() {
                why.extend(a.error.map(|e| format!("it does not load: {e}")));
            }
            if !why.is_empty() {
                asked.failure = Some(BlasFailure {
                    path: lib.path.display().to_string(),
                    providers: lib.providers.clone(),
                    status: ProbeStatus::Failed,
                    error: why.join("; "),
                });
            }
        } else {
            let at = lib.path.display();
            asked
                .warnings
                .extend(why.into_iter().map(|w| format!("{at}: {w}")));
        }
        asked
    }

    /// Asks build `b` of `p` with its files loaded: `Ok(None)` when the build is not here or
    /// the file is not this provider's BLAS, `Err(Ok)` when the library crashed or hung,
    /// `Err(Err)` when the build's files do not load or answer otherwise than the build says.
    #[allow(clippy::type_complexity)]
    fn ask_build(
        &self,
        p: &Provider,
        b: &Build,
        lib: &Lib,
    ) -> Result<Option<BlasRecord>, Result<BlasFailure, String>> {
        let d = &p.detect;
        // not all of the build's files are here: that build is not installed
        let Ok((libs, load)) = resolve_libs(p, b, lib) else {
            return Ok(None);
        };
        let files: Vec<&String> = load.iter().flatten().collect();
        // The first file on the link line opened last, the rest first in reverse link order
        // (runtimes, then the core, then the layers that need it).
        let Some((main, rest)) = files.split_first() else {
            return Ok(None);
        };
        let mut specs: Vec<String> = rest.iter().rev().map(|f| format!("l:{f}")).collect();
        let dec = Decoration::default();
        let mut add = |kind: &str, n: &Option<String>| {
            if let Some(n) = n {
                specs.push(format!("{kind}:{}", decorate(&dec, n)));
            }
        };
        add("p", &d.symbol);
        add("w", &d.int_probe);
        add("i", &d.threads);
        add("n", &d.layer_query);
        add("b", &d.version_buffer);
        specs.push("m:".into());
        let o = self.ask(Path::new(main.as_str()), &specs, Some(p));
        if let Some(f) = failed(&o, lib) {
            return Err(Ok(f));
        }
        let a = parse(&o.stdout);
        if let Some(e) = a.error {
            return Err(Err(format!(
                "build {}-{} does not load: {e}",
                p.name, b.name
            )));
        }
        if d.symbol.as_ref().is_some_and(|s| !a.has.contains(s)) {
            return Ok(None);
        }
        let w = width(p, &dec, &a).map_err(Err)?;
        if let Some(t) = &d.threads {
            let Some(n) = a.ints.get(t) else {
                return Ok(None);
            };
            let threaded = *n > 1;
            let fits = match b.threading {
                Threading::Sequential => !threaded,
                Threading::Runtime => true,
                _ => threaded,
            };
            let runtime_ok = b.openmp_runtime.as_ref().is_none_or(|rt| {
                let want = format!("lib{rt}.so");
                a.loaded
                    .iter()
                    .any(|l| l.rsplit('/').next().is_some_and(|f| f.starts_with(&want)))
            });
            if !fits || !runtime_ok {
                return Err(Err(format!(
                    "build {}-{} loaded, but it answers {t}() = {n}{}",
                    p.name,
                    b.name,
                    if runtime_ok {
                        String::new()
                    } else {
                        format!(
                            " without lib{} loaded",
                            b.openmp_runtime.as_deref().unwrap_or("")
                        )
                    }
                )));
            }
        }
        let mut config: Vec<String> = Vec::new();
        if let Some(v) = d.version_buffer.as_ref().and_then(|v| a.strs.get(v)) {
            config.push(v.clone());
        }
        if let Some(layer) = d.layer_query.as_ref().and_then(|q| a.ints.get(q)) {
            let name = d
                .layer_values
                .get(&layer.to_string())
                .cloned()
                .unwrap_or_else(|| layer.to_string());
            config.push(format!("threading layer {name}"));
        }
        let config = (!config.is_empty()).then(|| config.join("; "));
        Ok(Some(record(p, b, lib, config, w, &dec, libs)))
    }

    /// The answer from every library's records ([`Plan::query`], in `libs` order): twins
    /// folded into their build, the system default marked.
    pub fn finish(&self, found: &Found, per_lib: Vec<Asked>) -> Detected {
        let reg = self.reg;
        let mut warnings = Vec::new();
        let mut failures = Vec::new();
        let mut all: Vec<Vec<BlasRecord>> = Vec::new();
        for a in per_lib {
            warnings.extend(a.warnings);
            failures.extend(a.failure);
            all.push(a.records);
        }
        let answered = |r: &BlasRecord| {
            reg.providers
                .get(&r.provider)
                .is_some_and(|p| answers_itself(p))
        };
        let mut out: Vec<BlasRecord> = Vec::new();
        for r in all.iter().flatten() {
            // A BLAS-interface file (`libblas.so.3`) known only by its name, beside a build
            // that answered for itself, is that build's, not another provider (Debian's
            // blis-openmp/libblas.so.3 has no bli_*).
            if !answered(r)
                && all
                    .iter()
                    .flatten()
                    .any(|o| o.lib_dir == r.lib_dir && o.provider != r.provider && answered(o))
            {
                continue;
            }
            out.push(r.clone());
        }
        let mut default = None;
        if let Some((link, target)) = &found.default_blas {
            default = Some(target.display().to_string());
            // the alternative points at a build's file, or at its twin in the build's directory
            let real = |p: &Path| std::fs::canonicalize(p).ok();
            let target_dir = target.parent().map(Path::to_path_buf);
            for r in &mut out {
                let p = Path::new(&r.path);
                if real(p).as_ref() == Some(target)
                    || (target_dir.is_some() && real(Path::new(&r.lib_dir)) == target_dir)
                {
                    r.is_default = true;
                }
            }
            if !out.iter().any(|r| r.is_default) {
                warnings.push(format!(
                    "{} points to {}, which is not a BLAS build cfgmx recognised",
                    link.display(),
                    target.display()
                ));
            }
        }
        Detected {
            records: merge(reg, out),
            default,
            warnings,
            failures,
        }
    }
}

fn record(
    p: &Provider,
    b: &Build,
    lib: &Lib,
    config: Option<String>,
    int_width: IntWidth,
    dec: &Decoration,
    libs: Vec<String>,
) -> BlasRecord {
    BlasRecord {
        path: lib.path.display().to_string(),
        provider: p.name.clone(),
        build: b.name.clone(),
        threading: b.threading,
        lib_dir: lib
            .path
            .parent()
            .map(|d| d.display().to_string())
            .unwrap_or_default(),
        config: config.filter(|c| !c.is_empty()),
        is_default: false,
        int_width,
        symbol_prefix: dec.prefix.clone(),
        symbol_suffix: dec.suffix.clone(),
        libs,
    }
}

/// One record per build directory: the provider's own library name (`libopenblas.so`) stands
/// for its BLAS-interface twin (`libblas.so`), inheriting its default mark.
fn merge(reg: &Registry, recs: Vec<BlasRecord>) -> Vec<BlasRecord> {
    let own = |r: &BlasRecord| {
        reg.providers.get(&r.provider).is_some_and(|p| {
            let file = r.path.rsplit('/').next().unwrap_or("");
            p.detect
                .libraries
                .iter()
                .any(|l| file.starts_with(&format!("lib{l}.so")))
        })
    };
    let mut out: Vec<BlasRecord> = Vec::new();
    for r in recs {
        match out
            .iter_mut()
            .find(|o| o.provider == r.provider && o.build == r.build && o.lib_dir == r.lib_dir)
        {
            Some(o) => {
                let default = o.is_default || r.is_default;
                if own(&r) && !own(o) {
                    *o = r;
                }
                o.is_default = default;
            }
            None => out.push(r),
        }
    }
    out.sort_by(|a, b| (&a.provider, &a.build, &a.path).cmp(&(&b.provider, &b.build, &b.path)));
    out
}

/// Compiles the query program with the first C compiler that can (any will do: it only needs
/// `dlopen`); it runs beside the compiler probes, so it does not wait for their verdicts.
fn compile_query(found: &Found, opts: &ProbeOptions, work: &Path) -> Result<PathBuf, String> {
    let dir = work.join("blas");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("query.c"), QUERY_C).map_err(|e| e.to_string())?;
    let prog = dir.join("query");
    let mut ccs: Vec<&Path> = found
        .exes
        .iter()
        .filter(|e| e.lang == Language::C && e.kind != Kind::Mpi)
        .map(|e| e.path.as_path())
        .collect();
    // the usual system compilers first: they are the likeliest to work
    ccs.sort_by_key(|p| {
        !matches!(
            p.file_name().and_then(|n| n.to_str()),
            Some("cc" | "gcc" | "clang")
        )
    });
    let mut last = String::from("no C compiler found");
    // Not yet identified: spelled as the defaults spell it (these are the system's compilers).
    let driver = cfgmx_model::toolchain::default_driver();
    for cc in ccs.into_iter().take(3) {
        let o = Cmd::new(cc)
            .arg("query.c")
            .args(driver.output(&prog.display().to_string()))
            .args(driver.library("dl"))
            .cwd(&dir)
            .timeout(opts.timeout)
            .output();
        if o.success() {
            return Ok(prog);
        }
        last = format!("{o}: {}", o.stderr.lines().next().unwrap_or(""));
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without a helper binary the probe compiles `QUERY_C` with a C compiler it found; the
    /// Debian OpenBLAS builds (setup.sh) must come out with their real threading.
    #[test]
    fn compiled_query_program_reads_the_threading() {
        let reg = Registry::builtin();
        let opts = ProbeOptions {
            path: Some("/usr/bin".into()),
            ..ProbeOptions::default()
        };
        let found = crate::discover::discover(&reg, &opts);
        let work = tempfile::tempdir().unwrap();
        let d = detect(&reg, &opts, &found, work.path());
        let (recs, warnings) = (d.records, d.warnings);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert!(d.failures.is_empty(), "{:?}", d.failures);
        for (dir, t) in [
            ("openblas-serial", Threading::Sequential),
            ("openblas-pthread", Threading::Pthread),
            ("openblas-openmp", Threading::Openmp),
        ] {
            let r = recs
                .iter()
                .find(|r| r.provider == "openblas" && r.lib_dir.ends_with(dir))
                .unwrap_or_else(|| panic!("no {dir} in {recs:#?}"));
            assert_eq!(r.threading, t);
        }
        // the C program's marker and integer-width questions: ATLAS by its own symbol, every
        // Debian build answers the width its package says (`libopenblas64-*`: 64-bit), and
        // each libopenblas64 build is found in its own directory, not through the
        // alternatives link (scripts/setup.sh installs all three)
        for (provider, dir) in [("atlas", "/atlas"), ("reference", "/blas")] {
            assert!(
                recs.iter()
                    .any(|r| r.provider == provider && r.lib_dir.ends_with(dir)),
                "no {provider} in {dir}: {recs:#?}"
            );
        }
        for r in &recs {
            let ilp64 = r
                .path
                .rsplit('/')
                .next()
                .is_some_and(|n| n.contains("blas64"));
            let want = if ilp64 {
                IntWidth::Ilp64
            } else {
                IntWidth::Lp64
            };
            assert_eq!(r.int_width, want, "{r:#?}");
        }
        for (dir, t) in [
            ("openblas64-serial", Threading::Sequential),
            ("openblas64-pthread", Threading::Pthread),
            ("openblas64-openmp", Threading::Openmp),
        ] {
            let r = recs
                .iter()
                .find(|r| r.lib_dir.ends_with(dir))
                .unwrap_or_else(|| panic!("no {dir} in {recs:#?}"));
            assert_eq!((r.threading, r.int_width), (t, IntWidth::Ilp64));
        }
    }

    #[test]
    fn answers_classify() {
        let reg = Registry::builtin();
        let ob = reg.providers.get("openblas").unwrap();
        let blis = reg.providers.get("blis").unwrap();
        let a = parse("INT openblas_get_parallel 2\nSTR openblas_get_config OpenBLAS 0.3.21 USE_OPENMP\nMISSING bli_info_get_enable_openmp\n");
        let t = |p, a: &Answers| classify(p, a).map(|(t, _)| t);
        assert_eq!(t(ob, &a), Some(Threading::Openmp));
        assert_eq!(t(blis, &a), None);
        let a = parse("MISSING openblas_get_parallel\nINT bli_info_get_enable_openmp 0\nINT bli_info_get_enable_pthreads 1\n");
        assert_eq!(t(blis, &a), Some(Threading::Pthread));
        assert_eq!(t(ob, &a), None);
        let a = parse("INT bli_info_get_enable_openmp 0\nINT bli_info_get_enable_pthreads 0\n");
        assert_eq!(t(blis, &a), Some(Threading::Sequential));
        // scipy-openblas64: the query answers under the provider's decoration
        let a = parse("MISSING openblas_get_parallel\nINT scipy_openblas_get_parallel64_ 1\nWIDTH scipy_idamax_64_ 64\n");
        let (th, dec) = classify(ob, &a).unwrap();
        assert_eq!(
            (th, dec.prefix.as_str(), dec.suffix.as_str()),
            (Threading::Pthread, "scipy_", "64_")
        );
        assert_eq!(width(ob, &dec, &a), Ok(IntWidth::Ilp64));
    }
}
