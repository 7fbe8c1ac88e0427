//! "Available" means proven: the link test a concrete variant must pass on the machine, and
//! how its outcome changes the verdict.
//!
//! Concretisation matches a variant against the probe's records, each proven on its own (the
//! compiler's OpenMP flag, the BLAS file's threading). That is not proof that the combination
//! links: a versioned-only library, a runtime of another compiler's version, a BLAS that pulls
//! in a second OpenMP runtime all pass the separate checks. So [`LinkTest`] describes one
//! program built with exactly the variant's compiler, flags and link line, calling the BLAS,
//! run with two threads where the variant is threaded (an MPI variant's compiled with its
//! wrapper and launched on two ranks, judged by [`judge_mpi`]); the probe runs it and returns a
//! [`Proof`]; [`apply`] turns the proof into the verdict. Pure: the probe crate runs the test.

use crate::concrete::ConcreteVariant;
use crate::hash::{canonical_json, sha256_hex};
use crate::profile::BlasRecord;
use crate::registry::Registry;
use crate::toolchain::Language;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

/// Threads a threaded variant's link test runs with: the least count that shows a runtime
/// really runs in parallel (and the default a matrix's tests run with).
pub const PROOF_THREADS: u32 = 2;

/// Ranks an MPI variant's link test is launched on: the least count that shows the launcher
/// really starts a job whose ranks see each other.
pub const PROOF_RANKS: u32 = 2;

/// The OpenMP thread-count variables a link test sets (see [`crate::OMP_NUM_THREADS`]).
pub const OPENMP_THREAD_VARS: &[&str] = &[crate::OMP_NUM_THREADS];

/// Whether `b` takes 64-bit integers, as the probe asked the library.
pub fn blas_ilp64(b: &BlasRecord) -> bool {
    b.int_width == crate::profile::IntWidth::Ilp64
}

/// One program to build and run with a variant's exact toolchain.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LinkTest {
    /// The language the program is written in: the variant's C compiler when it has one.
    pub language: Language,
    pub compiler: String,
    /// Compile flags of that language.
    pub flags: Vec<String>,
    /// The language's link flags and the libraries, as the family's driver orders them
    /// (`Driver::link_tail`: `-L`, rpath, `-lopenblas`; cl: `openblas.lib /link /LIBPATH:`).
    pub link: Vec<String>,
    /// How the driver names the executable (`Driver::output`) where it differs from the
    /// defaults' (`-o`); left out otherwise, so those tests keep their cache keys.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub output: Vec<String>,
    /// Environment the program runs with (the variant's, plus the thread counts).
    pub env: IndexMap<String, String>,
    /// The BLAS routine to call (`dgemm_`), when the variant links a BLAS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blas_symbol: Option<String>,
    /// The BLAS takes 64-bit integers (ILP64).
    #[serde(default)]
    pub blas_int64: bool,
    /// For ILP64: the `idamax_` to call with an `N` that is 2 as a 32-bit integer and
    /// negative as a 64-bit one (the probe's question), so a library that reads 32-bit
    /// integers fails the test instead of computing a plausible product. Absent for LP64, so
    /// LP64 tests keep their cache keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blas_width_symbol: Option<String>,
    /// The BLAS file the program must load, as the probe recorded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blas_path: Option<String>,
    /// OpenMP threads the program must see (threaded variants).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads: Option<u32>,
    /// OpenMP runtime library names (`gomp`, `omp`, `iomp5`) to look for among what the
    /// program loaded.
    pub runtimes: Vec<String>,
    /// What the variant's environment modules set: the compile, link and run happen under it
    /// (Cray's `cc` knows its compiler only from the loaded PrgEnv). Absent without modules,
    /// so other tests keep their cache keys.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub module_env: IndexMap<String, String>,
    /// An MPI variant: the program is an MPI program, compiled with the wrapper and launched
    /// on [`PROOF_RANKS`] ranks. Absent otherwise, so other tests keep their cache keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mpi: Option<MpiLaunchTest>,
}

/// How an MPI variant's link test is compiled, launched and judged.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MpiLaunchTest {
    pub implementation: String,
    /// The wrapper that compiles the program (the test's language).
    pub wrapper: String,
    /// The variant's Fortran wrapper and flags, when it has Fortran: a second program with
    /// `use mpi`, which only compiles where the module files are this compiler's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fortran: Option<(String, Vec<String>)>,
    pub launcher: String,
    /// The launcher's rank-count option (`-n`).
    pub flag: String,
    pub ranks: u32,
    /// Link names of this implementation's library (`mpi` for `libmpi.so.40`).
    pub library_names: Vec<String>,
    /// Link names only other implementations have (`mpich`): a file of one of these loaded
    /// is another MPI.
    pub other_library_names: Vec<String>,
    /// The pattern `MPI_Get_library_version`'s first line must match (the data's
    /// `[library] match`); `None`: the implementation has no library rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub library_match: Option<String>,
    /// The user's variables the launcher reads to decide whether it runs at all (Open MPI as
    /// root), as they were (`None`: unset, and removed from the launch): part of the key, so a
    /// proof made without them is not reused with them. The values are filled by the caller,
    /// which reads the environment.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub user_env: IndexMap<String, Option<String>>,
}

/// What one rank of an MPI link test said.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RankReport {
    pub rank: u32,
    pub size: u32,
    /// The first line of `MPI_Get_library_version`.
    pub library: String,
    /// Loaded files (from `/proc/self/maps`), real paths.
    pub loaded: Vec<String>,
}

/// The verdict on an MPI launch from what its ranks reported: every rank of `0..ranks` once,
/// each seeing the whole job, each on this implementation's library (its own answer matches
/// the data's pattern, a file of its name loaded, none of another's). `Ok` carries the
/// version and file the ranks loaded, for the record.
pub fn judge_mpi(t: &MpiLaunchTest, what: &str, reports: &[RankReport]) -> Result<String, String> {
    if let Some(r) = reports.iter().find(|r| r.size != t.ranks) {
        return Err(format!(
            "{what}: rank {} saw a job of {} rank(s), not {} (the launcher started separate jobs: another MPI's launcher?)",
            r.rank, r.size, t.ranks
        ));
    }
    let mut seen: Vec<u32> = reports.iter().map(|r| r.rank).collect();
    seen.sort_unstable();
    seen.dedup();
    let want: Vec<u32> = (0..t.ranks).collect();
    if seen != want {
        return Err(format!(
            "{what}: launched on {} ranks, ranks {:?} reported",
            t.ranks, seen
        ));
    }
    let stem = |path: &str| -> String {
        let name = path.rsplit('/').next().unwrap_or(path);
        let name = name.strip_prefix("lib").unwrap_or(name);
        name.split(".so").next().unwrap_or(name).to_string()
    };
    let re = match &t.library_match {
        Some(p) => Some(regex::Regex::new(p).map_err(|e| format!("{what}: library pattern: {e}"))?),
        None => None,
    };
    let mut version = String::new();
    let mut file = String::new();
    for r in reports {
        if let Some(re) = &re {
            match re.captures(&r.library) {
                Some(c) => {
                    version = c
                        .name("version")
                        .map(|m| m.as_str().to_string())
                        .unwrap_or_default()
                }
                None => {
                    return Err(format!(
                        "{what}: rank {} loaded another MPI library than {}: it says {:?}",
                        r.rank, t.implementation, r.library
                    ))
                }
            }
        }
        if let Some(other) = r
            .loaded
            .iter()
            .find(|p| t.other_library_names.contains(&stem(p)))
        {
            return Err(format!(
                "{what}: rank {} loaded {other}, another MPI's library than {}",
                r.rank, t.implementation
            ));
        }
        if !r.loaded.is_empty() {
            match r.loaded.iter().find(|p| t.library_names.contains(&stem(p))) {
                Some(p) => file = p.clone(),
                None => {
                    return Err(format!(
                        "{what}: rank {} loaded no lib{}.so",
                        r.rank,
                        t.library_names.join(".so or lib")
                    ))
                }
            }
        }
    }
    let mut s = format!("{} ranks on {} {version}", t.ranks, t.implementation);
    if !file.is_empty() {
        s.push_str(&format!(" ({file})"));
    }
    Ok(s)
}

impl LinkTest {
    /// Content key: two variants with the same test share one run and one cache entry.
    pub fn key(&self) -> String {
        let v = serde_json::to_value(self).unwrap_or_default();
        sha256_hex(canonical_json(&v).as_bytes())[..32].to_string()
    }
}

/// What the link test showed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Proof {
    /// Compiled, linked, ran, and the BLAS call gave the right answer.
    pub ok: bool,
    /// Why not: the step and the key line of its output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// OpenMP threads the program saw in a parallel region (`None`: built without OpenMP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads: Option<u32>,
    /// OpenMP runtime libraries the program had loaded (real paths).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runtimes_loaded: Vec<String>,
    /// The BLAS file it loaded when that is not the one the variant names (real path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other_blas: Option<String>,
    /// An MPI test: what its ranks showed (`2 ranks on openmpi 4.1.4 (/usr/lib/...)`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mpi: Option<String>,
}

/// The link test of a concrete variant; `None` when it is unavailable already (nothing to
/// prove) or has no compiler.
pub fn link_test(cv: &ConcreteVariant, reg: &Registry) -> Option<LinkTest> {
    if !cv.available {
        return None;
    }
    let f = &cv.concrete_flags;
    let language = [Language::C, Language::Cxx, Language::Fortran]
        .into_iter()
        .find(|l| cv.compilers.contains_key(l))?;
    let compiler = f.compiler(language)?.to_string();
    let link = f.driver.link_tail(&f.link_args(language), &f.libs);
    let output = if f.driver.output == crate::toolchain::default_driver().output {
        Vec::new()
    } else {
        f.driver.output.clone()
    };
    let threaded = cv.variant.resolved.openmp.is_some();
    let mut env = f.env.clone();
    let choice = cv.blas_library.as_ref().and_then(|b| reg.blas(&b.id()));
    if threaded || choice.is_some() {
        let n = PROOF_THREADS.to_string();
        let blas_vars = choice.iter().flat_map(|c| c.build.thread_vars.iter());
        let omp_vars = OPENMP_THREAD_VARS.iter().map(|v| v.to_string());
        for var in blas_vars.cloned().chain(omp_vars) {
            env.insert(var, n.clone());
        }
    }
    let mut runtimes: Vec<String> = Vec::new();
    let from_compilers = reg
        .toolchains
        .values()
        .flat_map(|t| t.facet("openmp").iter().filter_map(|c| c.runtime.clone()));
    let from_blas = reg
        .providers
        .values()
        .flat_map(|p| p.builds.iter().filter_map(|b| b.openmp_runtime.clone()));
    for rt in from_compilers.chain(from_blas) {
        if !runtimes.contains(&rt) {
            runtimes.push(rt);
        }
    }
    let mpi = cv.mpi.as_ref().and_then(|mp| {
        let imp = reg.mpi.get(&mp.implementation)?;
        let lib = imp.library.as_ref();
        let names: Vec<String> = lib.map(|l| l.names.clone()).unwrap_or_default();
        let mut others: Vec<String> = Vec::new();
        for o in reg.mpi.values().filter_map(|o| o.library.as_ref()) {
            for n in &o.names {
                if !names.contains(n) && !others.contains(n) {
                    others.push(n.clone());
                }
            }
        }
        Some(MpiLaunchTest {
            implementation: mp.implementation.clone(),
            wrapper: mp.wrappers.get(&language)?.path.clone(),
            fortran: mp
                .wrappers
                .get(&Language::Fortran)
                .filter(|_| language != Language::Fortran)
                .map(|w| (w.path.clone(), f.fflags.clone())),
            launcher: mp.launcher.clone(),
            flag: mp.numproc_flag.clone(),
            ranks: PROOF_RANKS,
            library_names: names,
            other_library_names: others,
            library_match: lib.map(|l| l.version.pattern.clone()),
            user_env: imp
                .launch
                .user_env
                .iter()
                .map(|n| (n.clone(), None))
                .collect(),
        })
    });
    Some(LinkTest {
        language,
        compiler,
        flags: f.flags(language).to_vec(),
        link,
        output,
        env,
        blas_symbol: cv.blas_library.as_ref().map(|b| b.symbol("dgemm")),
        blas_int64: cv.blas_library.as_ref().is_some_and(blas_ilp64),
        blas_width_symbol: cv
            .blas_library
            .as_ref()
            .filter(|b| blas_ilp64(b))
            .map(|b| b.symbol("idamax")),
        blas_path: cv.blas_library.as_ref().map(|b| b.path.clone()),
        threads: threaded.then_some(PROOF_THREADS),
        runtimes,
        module_env: cv.module_env.clone(),
        mpi,
    })
}

/// Makes `cv` unavailable when its link test failed, and warns when it loaded two OpenMP
/// runtimes (what the program really loaded, after any fallback concretisation made).
pub fn apply(cv: &mut ConcreteVariant, test: &LinkTest, proof: &Proof) {
    let mut reasons = Vec::new();
    if !proof.ok {
        reasons.push(format!(
            "link test failed: {}",
            proof.reason.as_deref().unwrap_or("no reason given")
        ));
    } else if let Some(want) = test.threads {
        match proof.threads {
            Some(got) if got == want => {}
            Some(got) => reasons.push(format!(
                "OpenMP ran {got} thread(s) with OMP_NUM_THREADS={want} in the link test"
            )),
            None => reasons.push(
                "the link test was built without OpenMP although the variant is threaded".into(),
            ),
        }
    }
    if let Some(other) = &proof.other_blas {
        reasons.push(format!(
            "the link test loaded {other}, not {}",
            test.blas_path.as_deref().unwrap_or("the variant's BLAS")
        ));
    }
    if proof.runtimes_loaded.len() > 1 {
        let w = format!(
            "loads {} OpenMP runtimes ({}): threads oversubscribe, and mixing runtimes can crash or give wrong results",
            proof.runtimes_loaded.len(),
            proof.runtimes_loaded.join(", ")
        );
        if !cv.concrete_warnings.contains(&w) {
            cv.concrete_warnings.push(w);
        }
    }
    if !reasons.is_empty() {
        cv.available = false;
        cv.concrete_hash = None;
        cv.reasons.extend(reasons);
    }
}
