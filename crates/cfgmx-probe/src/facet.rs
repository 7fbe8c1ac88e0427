//! Facet tests: compile, link and run a small program with each candidate flag of a facet, in
//! the descriptor's order; the first that works is recorded, otherwise why none did.
//!
//! The OpenMP program fails to compile unless `_OPENMP` is defined (clang `-fopenmp=libgomp`
//! accepts the flag without enabling OpenMP), and succeeds only when two threads really ran.

use crate::identify::Identified;
use crate::ProbeOptions;
use cfgmx_exec::{Cmd, Outcome};
use cfgmx_model::toolchain::Verbose;
use cfgmx_model::{Candidate, Driver, FacetResult, Language, ProbeStatus, Toolchain, Version};
use indexmap::IndexMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

const OPENMP_C: &str = r#"#include <omp.h>
#include <stdio.h>
#ifndef _OPENMP
#error "_OPENMP is not defined: the flag did not enable OpenMP"
#endif
static void cfgmx_identity(void);
int main(void) {
  int n = 0;
#pragma omp parallel num_threads(2)
  {
#pragma omp atomic
    n++;
  }
  printf("OPENMP %ld THREADS %d\n", (long)_OPENMP, n);
  cfgmx_identity();
  return omp_get_max_threads() < 1;
}
static void cfgmx_identity(void) {
"#;
const STR_C: &str = "#define CFGMX_STR_(x) #x\n#define CFGMX_STR(x) CFGMX_STR_(x)\n";
// `!$` lines are compiled only when OpenMP is on; some compilers (PGI) accept OpenMP flags
// without enabling it, which leaves the version at 0.
const OPENMP_F: &str = "program cfgmx_probe
!$ use omp_lib
implicit none
integer :: n, v
n = 0
v = 0
!$ v = openmp_version
!$omp parallel num_threads(2)
!$omp atomic
n = n + 1
!$omp end parallel
print '(A,I0,A,I0)', 'OPENMP ', v, ' THREADS ', n
";

/// Marks a line of the program's output that reports an identity macro: `CFGMX-ID <index>
/// <value>`. The name is sent as an index because a Fortran preprocessor may expand a macro
/// name even inside a quoted string.
const ID_MARK: &str = "CFGMX-ID";

/// Ends a compile-time identity message (see [`openmp_program`]).
const ID_END: &str = "CFGMX-END";

/// The OpenMP program, optionally printing which of `ids` the compiler predefines: one compile
/// then both tests the flag and confirms the family (what a separate `-E -dM` run would).
/// A C or C++ program also says them while it compiles, in `#pragma message` lines before its
/// first `#include`: a compiler whose OpenMP header is missing (clang without its version's
/// libomp) still confirms its family without a preprocessor run. The markers are split in the
/// source (`"CFGMX" "-ID"`), so a diagnostic that quotes the source line never matches.
fn openmp_program(lang: Language, ids: &[String]) -> (&'static str, String) {
    let id = |i: usize, m: &str| match lang {
        Language::Fortran => format!("#ifdef {m}\nprint '(A,I0)', '{ID_MARK} {i} ', {m}\n#endif\n"),
        _ => format!("#ifdef {m}\n  puts(\"{ID_MARK} {i} \" CFGMX_STR({m}));\n#endif\n"),
    };
    let body: String = ids.iter().enumerate().map(|(i, m)| id(i, m)).collect();
    let (id_a, id_b) = ID_MARK.split_at(5);
    let (end_a, end_b) = ID_END.split_at(5);
    let said: String = ids
        .iter()
        .enumerate()
        .map(|(i, m)| {
            format!(
                "#ifdef {m}\n#pragma message(\"{id_a}\" \"{id_b} {i} \" CFGMX_STR({m}) \" {end_a}\" \"{end_b}\")\n#endif\n"
            )
        })
        .collect();
    match lang {
        Language::C | Language::Cxx => {
            let file = if lang == Language::C {
                "probe.c"
            } else {
                "probe.cpp"
            };
            (file, format!("{STR_C}{said}{OPENMP_C}{body}}}\n"))
        }
        // `.F90`: preprocessed by every Fortran compiler that has a preprocessor; with no
        // identity macros asked for, the plain `.f90` (one that has none still works).
        Language::Fortran if ids.is_empty() => {
            ("probe.f90", format!("{OPENMP_F}end program cfgmx_probe\n"))
        }
        Language::Fortran => (
            "probe.F90",
            format!("{OPENMP_F}{body}end program cfgmx_probe\n"),
        ),
    }
}

/// The identity macros a fused program printed (`CFGMX-ID` lines), by name.
fn printed_macros(stdout: &str, ids: &[String]) -> IndexMap<String, String> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix(ID_MARK))
        .filter_map(|l| id_line(l, ids))
        .collect()
}

/// One identity line after its mark, `<index> <value>`: the macro's name and its value.
fn id_line(rest: &str, ids: &[String]) -> Option<(String, String)> {
    let mut w = rest.split_whitespace();
    let name = ids.get(w.next()?.parse::<usize>().ok()?)?;
    Some((name.clone(), w.collect::<Vec<_>>().join(" ")))
}

/// The identity macros a C or C++ compiler said while compiling a fused program (its
/// `#pragma message` lines, in whatever words the compiler wraps them), by name.
fn said_macros(text: &str, ids: &[String]) -> IndexMap<String, String> {
    let end = format!(" {ID_END}");
    let mut out = IndexMap::new();
    for line in text.lines() {
        let Some((_, rest)) = line.split_once(ID_MARK) else {
            continue;
        };
        let Some((said, _)) = rest.split_once(&end) else {
            continue;
        };
        if let Some((name, value)) = id_line(said, ids) {
            out.entry(name).or_insert(value);
        }
    }
    out
}

const PLAIN_C: &str = "int main(void) { return 0; }\n";
const PLAIN_F: &str = "program cfgmx_probe\nend program cfgmx_probe\n";

static SCRATCH: AtomicUsize = AtomicUsize::new(0);

/// What to say when a runtime library or its header is missing: the candidate's own hint
/// (descriptor data, with the compiler's version filled in), else a generic one.
pub fn runtime_hint(runtime: &str, hint: Option<&str>, version: &str) -> String {
    match hint {
        Some(h) => {
            let major = version.split('.').next().unwrap_or(version);
            h.replace("{major}", major).replace("{version}", version)
        }
        None => format!("lib{runtime} not found: install the compiler's OpenMP runtime"),
    }
}

/// Why one candidate failed, from the linker's (the family's words) or the dynamic loader's
/// messages.
fn missing_lib(text: &str, lib: &str, driver: &Driver) -> bool {
    driver.says_missing(text, lib)
        || text.contains(&format!("lib{lib}.so")) && text.contains("cannot open shared object")
}

/// Whether `o` failed because the candidate's OpenMP runtime (its header or library) is not
/// installed: the compiler itself worked, and every other spelling of that runtime would
/// fail the same way.
fn runtime_missing(o: &Outcome, cand: &Candidate, driver: &Driver) -> bool {
    let text = o.combined();
    let missing_header =
        text.contains("omp.h") && (text.contains("not found") || text.contains("No such file"));
    cand.runtime
        .as_deref()
        .is_some_and(|rt| missing_header || missing_lib(&text, rt, driver))
}

fn explain(stage: &str, o: &Outcome, cand: &Candidate, sub: Subject) -> String {
    let (version, driver) = (sub.version, sub.driver);
    let text = o.combined();
    let rt = cand.runtime.as_deref();
    let missing_lib = |lib: &str| missing_lib(&text, lib, driver);
    if let Some(rt) = rt {
        if runtime_missing(o, cand, driver) {
            let first = text
                .lines()
                .find(|l| {
                    l.contains("omp")
                        && (l.contains("not found")
                            || l.contains("cannot")
                            || l.contains("No such"))
                })
                .unwrap_or("")
                .trim();
            let hint = runtime_hint(rt, cand.hint.as_deref(), version);
            return format!("{hint} ({stage}: {first})");
        }
    }
    if let Some(lib) = cand.libs.iter().find(|l| missing_lib(l)) {
        return format!("lib{lib} not found ({stage})");
    }
    if text.contains("_OPENMP is not defined") {
        return "flag accepted but OpenMP not enabled (_OPENMP undefined)".into();
    }
    if o.spawn_error.is_some() || o.timed_out || o.signal.is_some() {
        return format!("{stage}: {o}");
    }
    // The linker's own complaint names what is missing; the driver's "linker command failed"
    // after it does not.
    let line = text
        .lines()
        .find(|l| driver.is_link_error(l))
        .or_else(|| {
            text.lines().find(|l| {
                l.contains("error") || l.contains("unrecognized") || l.contains("unknown")
            })
        })
        .or_else(|| text.lines().find(|l| !l.trim().is_empty()))
        .unwrap_or("")
        .trim();
    let line: String = line.chars().take(200).collect();
    format!("{stage} failed: {line}")
}

/// Why one candidate did not work; `compile` when its compiler refused the program (rather
/// than hanging, the program failing, or the runtime missing), which a fused program's extra
/// lines could cause; `runtime_missing` when its OpenMP runtime is not installed.
pub struct Failed {
    pub why: String,
    compile: bool,
    runtime_missing: bool,
    /// The compiler hung: asking it again would cost another timeout.
    timed_out: bool,
    /// A fused program (one that also prints the identity macros) did not compile: its
    /// preprocessor lines may be to blame rather than the flag.
    fused: bool,
    /// The identity macros a C or C++ fused program said while compiling, before it failed.
    said: IndexMap<String, String>,
}

impl From<String> for Failed {
    fn from(why: String) -> Failed {
        Failed {
            why,
            compile: false,
            runtime_missing: false,
            timed_out: false,
            fused: false,
            said: IndexMap::new(),
        }
    }
}

/// The first candidate's outcome from the fused test (see [`openmp_with_identity`]): the
/// OpenMP version it reported, or why it failed.
pub type First = Result<Option<String>, Failed>;

/// What one candidate's program said when it worked: the OpenMP version (for `openmp`) and
/// the identity macros it was asked to print.
struct Ran {
    detail: Option<String>,
    macros: IndexMap<String, String>,
}

/// The compiler a candidate is tried with, and its family's driver spellings.
#[derive(Clone, Copy)]
struct Subject<'a> {
    exe: &'a Path,
    lang: Language,
    version: &'a str,
    driver: &'a Driver,
}

/// A compile that also prints the compiler's version text (see [`Verbose`]), for a compiler
/// not asked its version yet: `read` gives the version from that text.
#[derive(Clone, Copy)]
pub struct VersionToo<'a> {
    pub verbose: &'a Verbose,
    pub read: &'a dyn Fn(&str) -> Option<String>,
}

/// The version text a verbose compile printed, and the version read in it.
type Heard = (String, Option<String>);

/// Builds and runs the facet's program with one candidate, its compile also asked for the
/// version text when `too` is given: that text with the version `too` reads in it (when the
/// compile printed one), and the outcome, explained for that version.
fn try_candidate(
    sub: Subject,
    facet: &str,
    cand: &Candidate,
    timeout: Duration,
    work: &Path,
    ids: &[String],
    too: Option<VersionToo>,
) -> (Option<Heard>, Result<Ran, Failed>) {
    let dir = work.join(format!("t{}", SCRATCH.fetch_add(1, Ordering::Relaxed)));
    let trial = Trial {
        sub,
        facet,
        cand,
        dir: &dir,
        timeout,
        ids,
    };
    let built = std::fs::create_dir_all(&dir)
        .map_err(|e| Failed::from(format!("scratch directory: {e}")))
        .and_then(|()| write_and_build(trial, too));
    let (o, text) = match built {
        Ok(built) => built,
        Err(f) => return (None, Err(f)),
    };
    let heard = text.zip(too).map(|(t, too)| {
        let version = (too.read)(&t);
        (t, version)
    });
    // the hint for a missing runtime names the version the text says
    let sub = Subject {
        version: heard
            .as_ref()
            .and_then(|(_, v)| v.as_deref())
            .unwrap_or(sub.version),
        ..sub
    };
    let r = ran_or_failed(Trial { sub, ..trial }, o);
    (heard, r)
}

/// One candidate's test: the compiler, the facet and candidate, the scratch directory, each
/// run's timeout and the identity macros its program prints.
#[derive(Clone, Copy)]
struct Trial<'a> {
    sub: Subject<'a>,
    facet: &'a str,
    cand: &'a Candidate,
    dir: &'a Path,
    timeout: Duration,
    ids: &'a [String],
}

/// Writes the facet's program into the trial's directory and builds it: the build's outcome,
/// and the version text its compile printed when `too` asked for one.
fn write_and_build(
    trial: Trial,
    too: Option<VersionToo>,
) -> Result<(Outcome, Option<String>), Failed> {
    let (lang, dir) = (trial.sub.lang, trial.dir);
    let (file, text) = match (lang, trial.facet == "openmp") {
        (_, true) => openmp_program(lang, trial.ids),
        (Language::C, false) => ("probe.c", PLAIN_C.to_string()),
        (Language::Cxx, false) => ("probe.cpp", PLAIN_C.to_string()),
        (Language::Fortran, false) => ("probe.f90", PLAIN_F.to_string()),
    };
    std::fs::write(dir.join(file), text).map_err(|e| Failed::from(format!("scratch file: {e}")))?;
    let prog = dir.join("probe");
    let verbose = too.map(|t| t.verbose);
    Ok(build(
        trial.sub,
        trial.cand,
        file,
        &prog,
        dir,
        trial.timeout,
        verbose,
    ))
}

/// What a built program (outcome `o`) says: it is run when it built; why it failed when it
/// did not, or did not run as it should.
fn ran_or_failed(trial: Trial, o: Outcome) -> Result<Ran, Failed> {
    let Trial {
        sub,
        facet,
        cand,
        dir,
        timeout,
        ids,
    } = trial;
    let Subject { lang, driver, .. } = sub;
    let omp = facet == "openmp";
    let prog = dir.join("probe");
    if !o.success() {
        let missing = runtime_missing(&o, cand, driver);
        let said = match lang {
            Language::C | Language::Cxx if omp => said_macros(&o.combined(), ids),
            _ => IndexMap::new(),
        };
        return Err(Failed {
            why: explain("compile/link", &o, cand, sub),
            compile: !o.timed_out && o.signal.is_none() && !missing,
            runtime_missing: missing,
            timed_out: o.timed_out,
            fused: false,
            said,
        });
    }
    let run = Cmd::new(&prog)
        .cwd(dir)
        .env("OMP_DYNAMIC", "false")
        // Idle OpenMP threads sleep instead of spinning (libgomp spins ~300k rounds by
        // default): the two threads still run, but the probe no longer burns ~10 ms of CPU
        // per test program waiting for it to exit.
        .env("OMP_WAIT_POLICY", "passive")
        .env_remove(cfgmx_model::OMP_NUM_THREADS)
        .env_remove("OMP_THREAD_LIMIT")
        .timeout(timeout)
        .output();
    if !run.success() {
        return Err(explain("run", &run, cand, sub).into());
    }
    let macros = printed_macros(&run.stdout, ids);
    if !omp {
        return Ok(Ran {
            detail: None,
            macros,
        });
    }
    openmp_ran(&run.stdout).map(|v| Ran {
        detail: Some(v.to_string()),
        macros,
    })
}

/// The OpenMP version an OpenMP test program reported, if OpenMP was on and two threads ran.
fn openmp_ran(stdout: &str) -> Result<u64, Failed> {
    let mut words = stdout.split_whitespace();
    let mut version = None;
    let mut threads = 0;
    while let Some(w) = words.next() {
        match w {
            "OPENMP" => version = words.next().and_then(|v| v.parse::<u64>().ok()),
            "THREADS" => threads = words.next().and_then(|v| v.parse().ok()).unwrap_or(0),
            _ => {}
        }
    }
    match version {
        None | Some(0) => {
            Err(String::from("flag accepted but OpenMP not enabled (no OpenMP version)").into())
        }
        Some(_) if threads < 2 => {
            Err(format!("OpenMP compiled but only {threads} thread ran").into())
        }
        Some(v) => Ok(v),
    }
}

/// Compiles and links `file` in `dir` into `prog` with the candidate's flags: in one run, or
/// compiled and then linked where the family's driver says that starts fewer processes. With
/// `verbose`, the compile also prints the version text: given apart, and taken out of the
/// outcome with the rest of what the verbose arguments added.
fn build(
    sub: Subject,
    cand: &Candidate,
    file: &str,
    prog: &Path,
    dir: &Path,
    timeout: Duration,
    verbose: Option<&Verbose>,
) -> (Outcome, Option<String>) {
    let loud: &[String] = verbose.map_or(&[], |v| &v.args);
    let quiet = |mut o: Outcome| match verbose {
        Some(v) => {
            let (banner, rest) = v.split(&o.stderr);
            o.stderr = rest;
            (o, banner)
        }
        None => (o, None),
    };
    let driver = sub.driver;
    let compiler = |timeout: Duration| {
        Cmd::new(sub.exe)
            .args(&cand.flags)
            .cwd(dir)
            // A crashing LLVM front end (flang-new-16 on OpenMP) otherwise starts
            // llvm-symbolizer to decorate its backtrace: a fifth of a second for a trace
            // nobody reads.
            .env("LLVM_DISABLE_SYMBOLIZATION", "1")
            // The compiler's own temporary files (gcc's `ccXXXX.s`) go into the scratch
            // directory, which is removed even when a Ctrl-C kills the compiler before it
            // cleans up.
            .env("TMPDIR", dir)
            .timeout(timeout)
    };
    let link = |input: &str, timeout: Duration, loud: &[String]| {
        compiler(timeout)
            .args(loud)
            .arg(input)
            .args(driver.output(&prog.display().to_string()))
            .args(driver.link_tail(&cand.link, &cand.libs))
            .output()
    };
    if !driver.compile_then_link.contains(&sub.lang) {
        return quiet(link(file, timeout, loud));
    }
    let obj = format!("probe{}", driver.object_suffix);
    let (compiled, banner) = quiet(
        compiler(timeout)
            .args(loud)
            .args(driver.compile_to(&obj))
            .arg(file)
            .output(),
    );
    if compiled.success() {
        // the two runs share one timeout, as the single run would have had it
        let linked = link(&obj, timeout.saturating_sub(compiled.duration), &[]);
        (linked, banner)
    } else {
        (compiled, banner)
    }
}

/// `facet`'s candidates for a compiler of `lang` at `version`, in the order they are tried:
/// the fused first test must try exactly the first of them.
fn candidates<'t>(
    t: &'t Toolchain,
    facet: &str,
    lang: Language,
    version: &str,
) -> Vec<&'t Candidate> {
    let v = Version::parse(version);
    t.facet(facet)
        .iter()
        .filter(|c| c.applies_to(lang) && c.fits(v.as_ref()))
        .collect()
}

/// Tries `facet`'s candidates for one compiler, in order; `first` is the first candidate's
/// outcome when the fused test already has it. A candidate whose runtime is in
/// `known_missing` is not tried: it fails for the reason given there. Also gives whether only
/// missing runtimes (or a hang) were to blame, and the runtimes found missing.
fn test_facet(
    t: &Toolchain,
    id: &Identified,
    facet: &str,
    timeout: Duration,
    work: &Path,
    mut first: Option<First>,
    known_missing: &[(String, String)],
) -> (FacetResult, bool, Vec<(String, String)>) {
    let sub = Subject {
        exe: id.exe.path.as_path(),
        lang: id.exe.lang,
        version: id.record.version.as_str(),
        driver: &t.driver,
    };
    let (lang, version) = (sub.lang, sub.version);
    let cands = candidates(t, facet, lang, version);
    if cands.is_empty() {
        let none = FacetResult {
            flag: None,
            works: false,
            reason: Some(format!(
                "{} has no `{facet}` flag for {} {version}",
                t.name,
                lang.as_str()
            )),
            flags: vec![],
            link: vec![],
            libs: vec![],
            detail: None,
        };
        return (none, false, Vec::new());
    }
    let mut why = Vec::new();
    // Runtimes found missing: another spelling of the same runtime would fail the same way.
    let mut missing: Vec<&str> = Vec::new();
    let mut found_missing: Vec<(String, String)> = Vec::new();
    let mut all_missing = true;
    let mut hung = false;
    for c in &cands {
        if c.runtime.as_deref().is_some_and(|r| missing.contains(&r)) {
            continue;
        }
        let flag = c.flags.join(" ");
        let known = c
            .runtime
            .as_deref()
            .filter(|_| first.is_none())
            .and_then(|rt| known_missing.iter().find(|(r, _)| r == rt));
        if let Some((rt, said)) = known {
            missing.push(rt);
            why.push(format!("`{flag}`: {said}"));
            continue;
        }
        let outcome = match first.take() {
            Some(known) => known,
            None => try_candidate(sub, facet, c, timeout, work, &[], None)
                .1
                .map(|r| r.detail),
        };
        match outcome {
            Ok(detail) => return (worked(c, detail), false, found_missing),
            Err(e) => {
                if e.runtime_missing {
                    missing.extend(c.runtime.as_deref());
                    if let Some(rt) = &c.runtime {
                        let seen = format!(
                            "{} [found compiling {} with {}, the same compiler]",
                            e.why,
                            lang.as_str(),
                            id.exe.path.display()
                        );
                        found_missing.push((rt.clone(), seen));
                    }
                } else if e.timed_out {
                    // hung: a plain program would hang too, at the cost of one more timeout
                    hung = true;
                } else {
                    all_missing = false;
                }
                why.push(format!("`{flag}`: {}", e.why));
            }
        }
    }
    let r = FacetResult {
        flag: cands.last().map(|c| c.flags.join(" ")),
        works: false,
        reason: Some(why.join("; ")),
        flags: vec![],
        link: vec![],
        libs: vec![],
        detail: None,
    };
    (r, all_missing || hung, found_missing)
}

fn worked(c: &Candidate, detail: Option<String>) -> FacetResult {
    FacetResult {
        flag: Some(c.flags.join(" ")),
        works: true,
        reason: None,
        flags: c.flags.clone(),
        link: c.link.clone(),
        libs: c.libs.clone(),
        detail,
    }
}

/// The first OpenMP test of a compiler whose version text claims family `t`, fused with its
/// identity check: `t`'s first OpenMP candidate for this version, in a program that also
/// prints which of `ids` are predefined. Gives that candidate's outcome, as [`test_facet`]
/// would have it, and the macros when the program ran (for the caller to confirm the family
/// with). `None` when there is no candidate. A Fortran compile error, which the preprocessor
/// lines of the fused program could have caused, is marked so ([`test_record`] then asks for
/// a plain program before it believes or repeats it).
pub fn openmp_with_identity(
    t: &Toolchain,
    exe: &Path,
    lang: Language,
    version: &str,
    ids: &[String],
    timeout: Duration,
    work: &Path,
) -> Option<(First, Option<IndexMap<String, String>>)> {
    let c = *candidates(t, "openmp", lang, version).first()?;
    let sub = Subject {
        exe,
        lang,
        version,
        driver: &t.driver,
    };
    Some(fused(
        lang,
        try_candidate(sub, "openmp", c, timeout, work, ids, None).1,
    ))
}

/// A fused test's outcome as [`openmp_with_identity`] gives it.
fn fused(lang: Language, r: Result<Ran, Failed>) -> (First, Option<IndexMap<String, String>>) {
    match r {
        Ok(ran) => (Ok(ran.detail), Some(ran.macros)),
        Err(f) if f.compile && lang == Language::Fortran => {
            (Err(Failed { fused: true, ..f }), None)
        }
        // It failed, but what it said while compiling still confirms the family.
        Err(mut f) => {
            let said = std::mem::take(&mut f.said);
            (Err(f), (!said.is_empty()).then_some(said))
        }
    }
}

/// The flags of `t`'s first OpenMP candidate for `lang` at `version`: what
/// [`openmp_with_identity`] tries.
pub fn first_openmp(t: &Toolchain, lang: Language, version: &str) -> Option<Vec<String>> {
    let c = candidates(t, "openmp", lang, version);
    c.first().map(|c| c.flags.clone())
}

/// A first OpenMP test made before the compiler was asked its version (see
/// [`openmp_asking_version`]).
pub struct Asked {
    /// The version text its compile printed.
    pub text: String,
    /// The version that text says to the family asked (`None`: the text is another
    /// family's), and the flags tried: the test counts for a family and version whose
    /// first candidate is these flags.
    pub version: Option<String>,
    pub flags: Vec<String>,
    pub first: First,
    pub macros: Option<IndexMap<String, String>>,
}

/// [`openmp_with_identity`] for a compiler not asked its version yet, claimed by family `t`
/// by its name: the compile also prints the version text (`too`), which saves a run of the
/// version rule alone. Only when `t`'s first OpenMP candidate for `lang` is the same for
/// every version (`Err(false)` without a compile otherwise). `Err(true)` when the compile
/// hung, `Err(false)` when it printed no version text (the arguments may have been misread:
/// its outcome says nothing).
pub fn openmp_asking_version(
    t: &Toolchain,
    exe: &Path,
    lang: Language,
    ids: &[String],
    timeout: Duration,
    work: &Path,
    too: VersionToo,
) -> Result<Asked, bool> {
    let applies = || t.facet("openmp").iter().filter(|c| c.applies_to(lang));
    if applies().any(|c| c.versions.is_some()) {
        return Err(false);
    }
    let c = applies().next().ok_or(false)?;
    let sub = Subject {
        exe,
        lang,
        version: "",
        driver: &t.driver,
    };
    let (heard, r) = try_candidate(sub, "openmp", c, timeout, work, ids, Some(too));
    if matches!(&r, Err(f) if f.timed_out) {
        return Err(true);
    }
    let Some((text, version)) = heard else {
        return Err(false);
    };
    let (first, macros) = fused(lang, r);
    Ok(Asked {
        text,
        version,
        flags: c.flags.clone(),
        first,
        macros,
    })
}

/// Tests every facet of `opts` for one identified compiler (nothing for an unusable one).
/// `openmp`, when given, is the outcome of that facet's first candidate from the fused test.
/// `known_missing`: runtimes the same real file, tested in another language, found missing.
pub fn test_record(
    opts: &ProbeOptions,
    id: &mut Identified,
    work: &Path,
    mut openmp: Option<First>,
    known_missing: &[(String, String)],
) {
    let Some(t) = id.toolchain.clone() else {
        return;
    };
    if id.record.status != ProbeStatus::Ok {
        return;
    }
    // A fused program the compiler refused may have been refused for its identity lines, not
    // for the flag: the plain program is asked first. A compiler that cannot build even that
    // (flang-new-16 without its runtime libraries) is unusable, and repeating the flag's own
    // test, which fails the same way, would cost another compile (a quarter of a second
    // for flang-new-16 crashing on OpenMP); one that can has the flag tested again without
    // the identity lines.
    let mut plain_builds = false;
    if let Some(Err(fused)) = openmp.as_ref().filter(|o| matches!(o, Err(f) if f.fused)) {
        if let Err(plain) = plain_program(opts, id, &t, work) {
            id.record.status = ProbeStatus::Failed;
            id.record.error = Some(format!("cannot build a plain program: {}", plain.why));
            let why = fused.why.clone();
            for f in &opts.facets {
                let r = untested(f, &t, id, (f == "openmp").then_some(&why));
                id.record.facets.insert(f.clone(), r);
            }
            return;
        }
        (openmp, plain_builds) = (None, true);
    }
    let mut suspect = false;
    for f in &opts.facets {
        let first = if f == "openmp" { openmp.take() } else { None };
        let tested = test_facet(&t, id, f, opts.timeout, work, first, known_missing);
        let (r, only_runtime, missing) = tested;
        suspect |= !r.works && !only_runtime;
        for m in missing {
            if !id.missing_runtimes.contains(&m) {
                id.missing_runtimes.push(m);
            }
        }
        id.record.facets.insert(f.clone(), r);
    }
    // A failed facet may be the facet's fault or the compiler's: one that cannot build even a
    // plain program (flang-new-16 without its runtime libraries) is unusable, not merely
    // without OpenMP. Asked only then, and not when the failure was the runtime's own missing
    // header or library (the compiler got that far), so a working compiler costs nothing more.
    if suspect && !plain_builds {
        if let Err(f) = plain_program(opts, id, &t, work) {
            id.record.status = ProbeStatus::Failed;
            id.record.error = Some(format!("cannot build a plain program: {}", f.why));
        }
    }
}

/// Builds and runs a program that uses no facet at all with the compiler of `id`.
fn plain_program(
    opts: &ProbeOptions,
    id: &Identified,
    t: &Toolchain,
    work: &Path,
) -> Result<Ran, Failed> {
    let plain = Candidate {
        flags: vec![],
        link: vec![],
        libs: vec![],
        languages: vec![],
        versions: None,
        runtime: None,
        hint: None,
        note: None,
    };
    let sub = Subject {
        exe: &id.exe.path,
        lang: id.exe.lang,
        version: &id.record.version,
        driver: &t.driver,
    };
    try_candidate(sub, "plain", &plain, opts.timeout, work, &[], None).1
}

/// A facet not tested on a compiler that cannot build a plain program; `openmp`'s first
/// candidate keeps the reason its fused test gave.
fn untested(facet: &str, t: &Toolchain, id: &Identified, first: Option<&String>) -> FacetResult {
    let cands = candidates(t, facet, id.exe.lang, &id.record.version);
    let reason = match (first, cands.first()) {
        (Some(why), Some(c)) => format!("`{}`: {why}", c.flags.join(" ")),
        _ => "not tested: the compiler cannot build a plain program".to_string(),
    };
    FacetResult {
        flag: cands.last().map(|c| c.flags.join(" ")),
        works: false,
        reason: Some(reason),
        flags: vec![],
        link: vec![],
        libs: vec![],
        detail: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(stderr: &str) -> Outcome {
        Outcome {
            command: "cc".into(),
            code: Some(1),
            signal: None,
            timed_out: false,
            spawn_error: None,
            stdout: String::new(),
            stderr: stderr.into(),
            duration: Duration::ZERO,
        }
    }

    #[test]
    fn identity_lines_are_read_back_by_index() {
        let ids = vec!["__GNUC__".to_string(), "__clang__".to_string()];
        let out = "OPENMP 201511 THREADS 2\nCFGMX-ID 0 12\nCFGMX-ID 7 1\nCFGMX-ID x 3\n";
        let m = printed_macros(out, &ids);
        assert_eq!(m.get("__GNUC__").map(String::as_str), Some("12"));
        assert_eq!(m.len(), 1, "index 7 is out of range, x is no index: {m:?}");
    }

    /// What clang 13, clang 19 and gcc 12 print for the fused program's `#pragma message`
    /// lines before a missing `omp.h` stops them (copied from their stderr): each value is
    /// read back, the quoted source lines never are.
    #[test]
    fn identity_said_while_compiling_is_read_back_from_each_compilers_words() {
        let ids: Vec<String> = ["__clang_major__", "__clang_version__", "__GNUC__"]
            .map(String::from)
            .to_vec();
        let (_, text) = openmp_program(Language::C, &ids);
        // the pragma lines split the markers; the run-time lines have no end marker
        assert!(
            text.lines()
                .all(|l| !(l.contains("CFGMX-ID") || l.contains("CFGMX-END"))
                    || !l.contains("#pragma") && !l.contains("CFGMX-END")),
            "{text}"
        );
        let pragma = text.find("#pragma message").unwrap();
        assert!(
            pragma < text.find("#include").unwrap(),
            "said before the first include"
        );
        let clang13 = r#"probe.c:4:9: warning: CFGMX-ID 0 13 CFGMX-END [-W#pragma-messages]
#pragma message("CFGMX" "-ID 0 " CFGMX_STR(__clang_major__) " CFGMX" "-END")
        ^
probe.c:7:9: warning: CFGMX-ID 1 "13.0.1 " CFGMX-END [-W#pragma-messages]
probe.c:117:10: fatal error: 'omp.h' file not found"#;
        let m = said_macros(clang13, &ids);
        assert_eq!(m["__clang_major__"], "13");
        assert_eq!(m["__clang_version__"], "\"13.0.1 \"");
        assert_eq!(m.len(), 2, "{m:?}");
        let clang19 = "probe.c:4:9: warning: CFGMX-ID 0 19 CFGMX-END [-W#pragma-messages]\n    4 | #pragma message(\"CFGMX\" \"-ID 0 \" CFGMX_STR(__clang_major__) \" CFGMX\" \"-END\")";
        assert_eq!(said_macros(clang19, &ids)["__clang_major__"], "19");
        let gcc = "probe.c:10:9: note: \u{2018}#pragma message: CFGMX-ID 2 12 CFGMX-END\u{2019}\n   10 | #pragma message(\"CFGMX\" \"-ID 2 \" CFGMX_STR(__GNUC__) \" CFGMX\" \"-END\")";
        assert_eq!(said_macros(gcc, &ids)["__GNUC__"], "12");
        // an index out of range, or a line cut before its end marker, says nothing
        assert!(said_macros(
            "warning: CFGMX-ID 9 1 CFGMX-END\nwarning: CFGMX-ID 0 13",
            &ids
        )
        .is_empty());
    }

    #[test]
    fn fused_programs_test_each_macro_and_keep_the_openmp_test() {
        let ids = vec!["__GNUC__".to_string(), "__INTEL_COMPILER".to_string()];
        for lang in [Language::C, Language::Cxx, Language::Fortran] {
            let (file, text) = openmp_program(lang, &ids);
            assert!(text.contains("#ifdef __INTEL_COMPILER"), "{text}");
            assert!(text.contains("OPENMP "), "{text}");
            // a Fortran program with `#ifdef` lines must be one the compiler preprocesses
            assert_eq!(file.ends_with(".F90"), lang == Language::Fortran, "{file}");
            // names travel as indexes: a Fortran preprocessor may expand them in strings
            assert!(!text.contains("'__GNUC__"), "{text}");
        }
        assert_eq!(openmp_program(Language::Fortran, &[]).0, "probe.f90");
    }

    #[test]
    fn failures_are_explained() {
        // clang's own first OpenMP spelling, hint and all, as the descriptor has it
        let reg = cfgmx_model::Registry::builtin();
        let clang = reg.toolchain("clang").unwrap();
        let c = clang.facet("openmp")[0].clone();
        let sub = Subject {
            exe: Path::new("clang"),
            lang: Language::C,
            version: "16.0.6",
            driver: &clang.driver,
        };
        for (stderr, want) in [
            (
                "t.c:1:10: fatal error: 'omp.h' file not found",
                "libomp for clang 16 not found: install libomp-16-dev",
            ),
            (
                "/usr/bin/ld: cannot find -lomp: No such file or directory",
                "libomp for clang 16 not found",
            ),
            (
                "t.c:4:2: error: \"_OPENMP is not defined: the flag did not enable OpenMP\"",
                "OpenMP not enabled",
            ),
            (
                "clang: error: unknown argument: '-qopenmp'",
                "unknown argument: '-qopenmp'",
            ),
        ] {
            let got = explain("compile/link", &outcome(stderr), &c, sub);
            assert!(got.contains(want), "{stderr:?} -> {got:?}");
        }
    }
}
