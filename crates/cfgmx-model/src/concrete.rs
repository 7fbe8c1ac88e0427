//! Concretisation: a [`Variant`] on a [`Profile`] becomes a [`ConcreteVariant`]: real compiler
//! paths and versions, the facet flags the probe proved to work, real BLAS library paths, an
//! availability verdict with reasons, and the concrete hash.

use crate::hash::{canonical_json, sha256_hex, CONCRETE_SCHEMA};
use crate::matrix::{BlasRequest, Matrix};
use crate::mpi::MpiImpl;
use crate::profile::{BlasRecord, CompilerRecord, IntWidth, MpiRecord, ProbeStatus, Profile};
use crate::provider::{BlasChoice, Threading};
use crate::registry::Registry;
use crate::resolve::{FlagSet, Resolved, Variant};
use crate::toolchain::Language;
use crate::version::Version;
use indexmap::IndexMap;
use serde::Serialize;

/// A compiler chosen for one language.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ChosenCompiler {
    pub path: String,
    pub family: String,
    pub version: String,
}

/// The MPI wrapper a variant uses for one language.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MpiWrapper {
    pub path: String,
    /// The compiler the wrapper runs as installed (`/usr/bin/gcc`), family and version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compiler: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compiler_family: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compiler_version: Option<String>,
    /// The implementation's variable that points the wrapper at the variant's compiler
    /// (`OMPI_CC`), with that compiler's path; `None` when the wrapper's own compiler is the
    /// variant's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub override_env: Option<(String, String)>,
}

/// The MPI a variant is built with on this machine.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ConcreteMpi {
    pub implementation: String,
    pub version: String,
    /// The launcher installed with the wrappers (`mpirun.openmpi`).
    pub launcher: String,
    /// The launcher's rank-count option (`-n`).
    pub numproc_flag: String,
    /// Ranks a test may start (`MPIEXEC_MAX_NUMPROCS`): the machine's cores over the
    /// variant's threads, so ranks x threads never exceeds the cores.
    pub ranks: u32,
    pub wrappers: IndexMap<Language, MpiWrapper>,
}

/// A variant as it would be built on this machine.
#[derive(Debug, Clone, Serialize)]
pub struct ConcreteVariant {
    #[serde(flatten)]
    pub variant: Variant,
    pub available: bool,
    /// Why it cannot be built here (empty when available).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
    /// Full concrete hash; `None` when the variant is unavailable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concrete_hash: Option<String>,
    pub compilers: IndexMap<Language, ChosenCompiler>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blas_library: Option<BlasRecord>,
    /// The MPI wrappers, launcher and version, for a variant with an `mpi`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mpi: Option<ConcreteMpi>,
    /// The flag set with paths and probed flags.
    pub concrete_flags: FlagSet,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub concrete_warnings: Vec<String>,
    /// Environment modules to load, in order, before any step (the probe found its compilers
    /// or BLAS behind them), and the variables loading them sets: what a build runs under.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub modules: Vec<String>,
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub module_env: IndexMap<String, String>,
}

impl ConcreteVariant {
    /// The hash to show: concrete when there is one, else spec.
    pub fn id_hash(&self) -> &str {
        self.concrete_hash.as_deref().unwrap_or(&self.variant.hash)
    }
}

/// The module sets behind the chosen records, merged: the load lists in order without
/// repeats (a compiler module and an MPI module under it share the compiler), and their
/// variables, a `:` list gaining the other set's entries it lacks, first.
fn modules_of<'a>(
    sets: impl Iterator<Item = &'a crate::ModuleSet>,
) -> (Vec<String>, IndexMap<String, String>) {
    let mut load: Vec<String> = Vec::new();
    let mut env: IndexMap<String, String> = IndexMap::new();
    for set in sets {
        for m in &set.load {
            if !load.contains(m) {
                load.push(m.clone());
            }
        }
        for (k, v) in &set.env {
            let merged = match env.get(k) {
                Some(old) if old != v && (old.contains(':') || v.contains(':')) => {
                    let have: Vec<&str> = old.split(':').collect();
                    let new: Vec<&str> = v.split(':').filter(|e| !have.contains(e)).collect();
                    new.into_iter().chain(have).collect::<Vec<_>>().join(":")
                }
                _ => v.clone(),
            };
            env.insert(k.clone(), merged);
        }
    }
    (load, env)
}

fn usable(c: &CompilerRecord) -> bool {
    c.status == ProbeStatus::Ok
}

/// Concretises `v` against `profile`.
pub fn concretize(v: &Variant, m: &Matrix, reg: &Registry, profile: &Profile) -> ConcreteVariant {
    let mut c = Concretizer {
        v,
        r: &v.resolved,
        m,
        reg,
        profile,
        reasons: Vec::new(),
        warnings: Vec::new(),
        flags: v.resolved.flags.clone(),
        compilers: IndexMap::new(),
        records: IndexMap::new(),
    };
    c.choose_compilers();
    c.apply_proven_facets();
    let blas_library = c.choose_blas();
    let mpi = c.choose_mpi(blas_library.as_ref());
    let (modules, module_env) = c.modules(blas_library.as_ref(), mpi.as_ref());
    let available = c.reasons.is_empty();
    let concrete_hash =
        available.then(|| c.concrete_hash(blas_library.as_ref(), mpi.as_ref(), &modules));
    ConcreteVariant {
        variant: v.clone(),
        available,
        reasons: c.reasons,
        concrete_hash,
        compilers: c.compilers,
        blas_library,
        mpi,
        concrete_flags: c.flags,
        concrete_warnings: c.warnings,
        modules,
        module_env,
    }
}

/// One variant's concretisation under way: its inputs, and what each step (compilers,
/// proven facets, BLAS, MPI) has chosen, changed in the flags or found missing so far.
struct Concretizer<'a> {
    v: &'a Variant,
    r: &'a Resolved,
    m: &'a Matrix,
    reg: &'a Registry,
    profile: &'a Profile,
    reasons: Vec<String>,
    warnings: Vec<String>,
    flags: FlagSet,
    compilers: IndexMap<Language, ChosenCompiler>,
    records: IndexMap<Language, &'a CompilerRecord>,
}

/// Languages no compiler of a family was found for, and the names looked for: one reason per
/// family, not one per language.
struct Missing {
    family: String,
    langs: Vec<&'static str>,
    looked: Vec<String>,
}

impl<'a> Concretizer<'a> {
    /// Compilers: for each language, the first usable record of the family in the range,
    /// preferring the directory (and version) of the C compiler so a toolchain stays together.
    fn choose_compilers(&mut self) {
        let r = self.r;
        let mut missing: Vec<Missing> = Vec::new();
        for lang in &self.m.languages {
            let family = if *lang == Language::Fortran {
                r.fortran_family.as_deref().unwrap_or(&r.compiler.family)
            } else {
                &r.compiler.family
            };
            match self.pick_compiler(*lang, family) {
                Some(c) => {
                    self.records.insert(*lang, c);
                    self.compilers.insert(
                        *lang,
                        ChosenCompiler {
                            path: c.path.clone(),
                            family: c.family.clone(),
                            version: c.version.clone(),
                        },
                    );
                    match lang {
                        Language::C => self.flags.cc = Some(c.path.clone()),
                        Language::Cxx => self.flags.cxx = Some(c.path.clone()),
                        Language::Fortran => self.flags.fc = Some(c.path.clone()),
                    }
                }
                None => self.no_compiler(*lang, family, &mut missing),
            }
        }
        for Missing {
            family,
            langs,
            looked,
        } in missing
        {
            self.reasons.push(format!(
                "missing compiler: no {family} for {} (looked for {})",
                langs.join(", "),
                looked.join(", ")
            ));
        }
    }

    /// The profile's compiler for `lang` of `family`, in the variant's range and beside the
    /// compilers already chosen.
    fn pick_compiler(&self, lang: Language, family: &str) -> Option<&'a CompilerRecord> {
        let (r, reg, profile) = (self.r, self.reg, self.profile);
        let in_range = |c: &&CompilerRecord| {
            c.family == family
                && c.languages.contains(&lang)
                && usable(c)
                && c.wrapper.as_deref().is_none_or(|w| {
                    // a compiler driver that carries its MPI (Cray's `cc` under a PrgEnv) is
                    // the compiler on that machine: the MPI data says which are (`shared`)
                    w == "ccache" || reg.mpi.get(w).is_some_and(|m| !m.shared.is_empty())
                })
                // `clang@14` with `fortran = "gcc"`: the range is clang's, not gfortran's.
                && (family != r.compiler.family
                    || match (&r.compiler.versions, Version::parse(&c.version)) {
                        (Some(range), Some(ver)) => range.contains(&ver),
                        (Some(_), None) => false,
                        (None, _) => true,
                    })
        };
        let anchor = self.records.values().next().copied();
        let same_dir = |c: &&CompilerRecord| {
            anchor.is_some_and(|a| {
                parent(&a.path) == parent(&c.path)
                    && (a.family != c.family || a.version == c.version)
            })
        };
        profile
            .compilers
            .iter()
            .filter(in_range)
            .find(same_dir)
            // Behind modules, another family's compiler (clang's gfortran) must load beside
            // the first one's: from its module set, else from none (two compiler modules
            // would swap each other out), else any.
            .or_else(|| {
                let set_of = |c: &CompilerRecord| profile.modules_for_compiler(c).map(|m| &m.load);
                let mut fits = profile.compilers.iter().filter(in_range);
                let Some(a) = anchor else {
                    return fits.next();
                };
                let anchor_set = set_of(a);
                fits.clone()
                    .find(|c| set_of(c) == anchor_set)
                    .or_else(|| fits.clone().find(|c| set_of(c).is_none()))
                    .or_else(|| fits.next())
            })
    }

    /// No compiler for `lang`: a reason now when the probe found one that is unusable, else
    /// an entry in `missing`.
    fn no_compiler(&mut self, lang: Language, family: &str, missing: &mut Vec<Missing>) {
        let range = self
            .r
            .compiler
            .versions
            .as_ref()
            .map(|x| format!("@{x}"))
            .unwrap_or_default();
        let names = self
            .reg
            .toolchain(family)
            .map(|t| t.executables.for_lang(lang).join(", "))
            .unwrap_or_default();
        let broken = self
            .profile
            .compilers
            .iter()
            .find(|c| c.family == family && c.languages.contains(&lang) && !usable(c));
        match broken {
            Some(b) => self.reasons.push(format!(
                "{family}{range} {} compiler {} is unusable: {}",
                lang.as_str(),
                b.path,
                b.error.as_deref().unwrap_or("probe failed")
            )),
            None => match missing
                .iter_mut()
                .find(|x| x.family == format!("{family}{range}"))
            {
                Some(x) => {
                    x.langs.push(lang.as_str());
                    x.looked.push(names);
                }
                None => missing.push(Missing {
                    family: format!("{family}{range}"),
                    langs: vec![lang.as_str()],
                    looked: vec![names],
                }),
            },
        }
    }

    /// Facets the probe tested replace the descriptor's first candidate.
    fn apply_proven_facets(&mut self) {
        let (r, reg) = (self.r, self.reg);
        for facet in &r.facets {
            for (lang, rec) in &self.records {
                let Some(res) = rec.facets.get(facet) else {
                    continue;
                };
                if !res.works {
                    let why = res.reason.as_deref().unwrap_or("no candidate flag worked");
                    let msg = if facet == "openmp" {
                        format!("OpenMP flag fails for {} ({}): {why}", rec.path, rec.family)
                    } else {
                        format!("facet `{facet}` fails for {}: {why}", rec.path)
                    };
                    if !self.reasons.contains(&msg) {
                        self.reasons.push(msg);
                    }
                    continue;
                }
                // Swap the descriptor's default spelling for the proven one.
                if let Some(tc) = reg.toolchain(&rec.family) {
                    if let Some(default) = tc.facet(facet).iter().find(|c| c.applies_to(*lang)) {
                        if default.flags != res.flags && !res.flags.is_empty() {
                            let fl = self.flags.flags_mut(*lang);
                            if let Some(pos) = find_sub(fl, &default.flags) {
                                fl.splice(
                                    pos..pos + default.flags.len(),
                                    res.flags.iter().cloned(),
                                );
                            }
                            if let Some(l) = self.flags.link.get_mut(lang) {
                                if let Some(pos) = find_sub(l, &default.link) {
                                    l.splice(
                                        pos..pos + default.link.len(),
                                        res.link.iter().cloned(),
                                    );
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// BLAS: a library file of the chosen build, or for abstract values any fitting one.
    fn choose_blas(&mut self) -> Option<BlasRecord> {
        let (r, profile) = (self.r, self.profile);
        let width = r.int_width;
        let req = r.blas_request.as_ref()?;
        let wanted = self.blas_wanted(req);
        // A variant's program calls plain `dgemm_` with the integers of its width (`int`
        // role, or an ILP64 build named): a decorated library (scipy-openblas64) or one
        // answering another width would link or compute wrongly, so no value picks it (MKL's
        // `mkl_intel_ilp64` layer answers ILP64, so it is never an LP64 variant's).
        let fits = |b: &BlasRecord| b.plain(width);
        // What the value would take at another width or decoration, for the reason below.
        let near: Vec<&BlasRecord> = match req {
            BlasRequest::None => Vec::new(),
            BlasRequest::Sequential | BlasRequest::Threaded => {
                let modes: &[Threading] = if *req == BlasRequest::Sequential {
                    &[Threading::Sequential]
                } else {
                    &self.m.blas_policy.threaded
                };
                profile
                    .blas
                    .iter()
                    .filter(|b| {
                        modes.contains(&b.threading)
                            && self.m.blas_policy.prefer.contains(&b.provider)
                    })
                    .collect()
            }
            _ => wanted.clone(),
        };
        let wanted: Vec<&BlasRecord> = wanted.into_iter().filter(|b| fits(b)).collect();
        // Behind modules, a library must load beside the compiler's modules: the compiler's
        // own set first (a PrgEnv's LibSci), then a library module, then one on no module;
        // never, unless it is all there is, another compiler environment's.
        let compiler_set = self
            .records
            .values()
            .find_map(|c| profile.modules_for_compiler(c));
        let rank = |b: &&&BlasRecord| match (profile.modules_for_blas(b), compiler_set) {
            (Some(s), Some(c)) if s.load == c.load => 0,
            (Some(s), _) if s.compilers.is_empty() => 1,
            (None, _) => 2,
            (Some(_), _) => 3,
        };
        match wanted.iter().min_by_key(rank) {
            Some(b) if *req != BlasRequest::None => {
                self.use_blas(req, b);
                Some((*b).clone())
            }
            Some(_) => None,
            None if *req == BlasRequest::None => None,
            None => {
                self.no_blas(req, &near);
                None
            }
        }
    }

    /// The profile's libraries request `req` takes, in order of preference, of any width.
    fn blas_wanted(&self, req: &BlasRequest) -> Vec<&'a BlasRecord> {
        let (r, m, reg, profile) = (self.r, self.m, self.reg, self.profile);
        match req {
            BlasRequest::None => Vec::new(),
            BlasRequest::Sequential | BlasRequest::Threaded => {
                let modes: Vec<Threading> = if *req == BlasRequest::Sequential {
                    vec![Threading::Sequential]
                } else {
                    m.blas_policy.threaded.clone()
                };
                let runtime = reg
                    .toolchain(&r.compiler.family)
                    .and_then(|t| t.openmp_runtime().map(str::to_string));
                // an abstract value means an undecorated BLAS of the variant's integer width,
                // taken in the order `pick_blas` takes the registry's builds in
                let plain: Vec<&BlasRecord> = profile
                    .blas
                    .iter()
                    .filter(|b| b.plain(r.int_width))
                    .collect();
                crate::resolve::blas_order(
                    &plain,
                    &m.blas_policy.prefer,
                    &modes,
                    runtime.as_deref(),
                    |b| {
                        let build = reg
                            .providers
                            .get(&b.provider)
                            .and_then(|p| p.build(&b.build));
                        (
                            b.provider.as_str(),
                            b.threading,
                            build.and_then(|x| x.openmp_runtime.as_deref()),
                        )
                    },
                )
            }
            BlasRequest::Named(id) => profile
                .blas
                .iter()
                .filter(|b| b.id() == *id || (b.provider == *id))
                .collect(),
        }
    }

    /// Links the variant against `b`, the library request `req` took on this machine.
    fn use_blas(&mut self, req: &BlasRequest, b: &BlasRecord) {
        let r = self.r;
        let choice: Option<BlasChoice> = self.reg.blas(&b.id());
        if let (Some(choice), Some(abstract_choice)) = (&choice, &r.blas) {
            if choice.id != abstract_choice.id {
                self.relink_blas(req, choice, abstract_choice);
            }
        }
        let flags = &mut self.flags;
        flags
            .cmake
            .insert("CMAKE_LIBRARY_PATH".into(), b.lib_dir.clone());
        flags
            .cmake
            .insert("CMAKE_PREFIX_PATH".into(), b.lib_dir.clone());
        let build_libs = choice.as_ref().map(|c| c.build.libs.as_slice());
        apply_blas_link(flags, b, build_libs.unwrap_or(&[]));
        if r.int_width == IntWidth::Ilp64 {
            // FindBLAS takes a `BLAS_LIBRARIES` cache entry as found and skips its
            // search by name (`openblas64` resolves through Debian's alternatives to
            // whichever build is the default): the ILP64 variant gets exactly this file.
            flags.cmake.insert(
                "BLAS_LIBRARIES".into(),
                blas_files(b, &flags.driver).join(";"),
            );
        }
    }

    /// The machine's build `choice` stands for the abstract value's `abstract_choice`, which
    /// resolution linked: warn, and re-link against what is here.
    fn relink_blas(
        &mut self,
        req: &BlasRequest,
        choice: &BlasChoice,
        abstract_choice: &BlasChoice,
    ) {
        let r = self.r;
        let absent = !self.profile.blas.iter().any(|b| {
            b.provider == abstract_choice.provider && b.build == abstract_choice.build.name
        });
        self.warnings.push(if absent {
            format!(
                "BLAS `{req}` resolved to {} on this machine (no {} found)",
                choice.id, abstract_choice.id
            )
        } else {
            format!("BLAS `{req}` resolved to {} on this machine", choice.id)
        });
        // Re-link against what is here.
        let flags = &mut self.flags;
        flags
            .libs
            .retain(|l| !abstract_choice.build.libs.contains(l));
        let mut libs = choice.build.libs.clone();
        libs.append(&mut flags.libs);
        flags.libs = libs;
        match &choice.build.cmake_vendor {
            Some(vendor) => flags.cmake.insert("BLA_VENDOR".into(), vendor.clone()),
            None => flags.cmake.shift_remove("BLA_VENDOR"),
        };
        if choice.build.threading == Threading::Openmp
            && !r.openmp_off
            && !r.facets.iter().any(|f| f == "openmp")
        {
            self.reasons.push(format!(
                "{} needs OpenMP, which this variant's spec does not enable",
                choice.id
            ));
        }
    }

    /// No library fits request `req`: the reason, naming the `near` ones that are there but
    /// do not fit, so the user knows what to install.
    fn no_blas(&mut self, req: &BlasRequest, near: &[&BlasRecord]) {
        let width = self.r.int_width;
        let ilp = if width == IntWidth::Ilp64 {
            " ILP64"
        } else {
            ""
        };
        let mut what = match req {
            BlasRequest::Threaded => format!("no threaded{ilp} BLAS found"),
            BlasRequest::Sequential => format!("no sequential{ilp} BLAS found"),
            id if ilp.is_empty() => format!("BLAS {id} not found"),
            id => format!("no ILP64 build of BLAS {id} found (int = ilp64)"),
        };
        let other: Vec<String> = near
            .iter()
            .filter(|b| !b.plain(width))
            .map(|b| {
                let w = if b.int_width == IntWidth::Ilp64 {
                    "ILP64"
                } else {
                    "LP64"
                };
                if b.symbol_prefix.is_empty() && b.symbol_suffix.is_empty() {
                    format!("{} is {w}", b.path)
                } else {
                    format!(
                        "{} is {w} with decorated symbols ({})",
                        b.path,
                        b.symbol("dgemm")
                    )
                }
            })
            .collect();
        if !other.is_empty() {
            what.push_str(&format!("; found only: {}", other.join(", ")));
        }
        self.reasons.push(what);
    }

    /// The variant's MPI, with ranks so that ranks x threads fits the machine's cores.
    fn choose_mpi(&mut self, blas_library: Option<&BlasRecord>) -> Option<ConcreteMpi> {
        let (r, m, profile) = (self.r, self.m, self.profile);
        let spec = r.mpi.as_ref()?;
        let threaded = r.openmp.is_some()
            || blas_library.is_some_and(|b| b.threading != Threading::Sequential);
        // A runtime point runs every variant's tests with its own thread count, under the one
        // MPIEXEC_MAX_NUMPROCS the build was configured with: the widest point counts.
        let threads = if threaded { m.threads.max(1) } else { 1 }.max(m.runtime.max_threads());
        let ranks = (profile.cpus.max(1) as u32 / threads)
            .min(profile.max_ranks.unwrap_or(u32::MAX))
            .max(1);
        self.pair_mpi(spec, ranks)
    }

    /// The module sets behind the chosen compilers, BLAS and MPI, merged.
    fn modules(
        &self,
        blas_library: Option<&BlasRecord>,
        mpi: Option<&ConcreteMpi>,
    ) -> (Vec<String>, IndexMap<String, String>) {
        let profile = self.profile;
        modules_of(
            self.records
                .values()
                .filter_map(|c| profile.modules_for_compiler(c))
                .chain(blas_library.and_then(|b| profile.modules_for_blas(b)))
                // the MPI paired with it: `gcc/11 mpich/4.0` for the wrappers under gcc/11
                .chain(
                    mpi.iter()
                        .flat_map(|mp| mp.wrappers.values())
                        .filter_map(|w| {
                            let p = crate::Provided {
                                path: w.path.clone(),
                                family: w.compiler_family.clone().unwrap_or_default(),
                                version: w.compiler_version.clone().unwrap_or_default(),
                            };
                            profile.modules.iter().find(|m| m.mpi.contains(&p))
                        }),
                ),
        )
    }

    /// The concrete hash: the spec hash and everything this machine decided.
    fn concrete_hash(
        &self,
        blas_library: Option<&BlasRecord>,
        mpi: Option<&ConcreteMpi>,
        modules: &[String],
    ) -> String {
        let (r, records) = (self.r, &self.records);
        let mut doc = serde_json::json!({
            "compilers": self.compilers,
            "facets": records.iter().map(|(l, c)| (l.as_str(), r.facets.iter().filter_map(|f| c.facets.get(f).map(|x| (f.clone(), x.flags.clone()))).collect::<IndexMap<_, _>>())).collect::<IndexMap<_, _>>(),
            "blas": blas_library.map(|b| serde_json::json!({"path": b.path, "lib_dir": b.lib_dir, "provider": b.provider, "build": b.build})),
            "flags": self.flags,
        });
        // Only a variant with modules hashes them: every other variant keeps its hash.
        if !modules.is_empty() {
            doc["modules"] = serde_json::json!(modules);
        }
        // Only where there is one, so the hashes of variants without MPI stay as they were.
        if let Some(mp) = mpi {
            doc["mpi"] = serde_json::to_value(mp).unwrap_or_default();
            // The rank count follows the cores this run was given (`build -j`, an
            // allocation's tasks), like a runtime thread count: it changes how the tests are
            // launched, not what is built, so `expand --lock` and `build -j 2` name the
            // variant by one hash.
            if let Some(o) = doc["mpi"].as_object_mut() {
                o.remove("ranks");
            }
            if let Some(o) = doc["flags"]["cmake"].as_object_mut() {
                o.remove("MPIEXEC_MAX_NUMPROCS");
            }
        }
        let text = format!(
            "{CONCRETE_SCHEMA}\nspec {}\nconcrete {}\n",
            self.v.hash,
            sha256_hex(canonical_json(&doc).as_bytes())
        );
        sha256_hex(text.as_bytes())
    }
}

impl<'a> Concretizer<'a> {
    /// Pairs the variant's compilers with wrappers of the MPI it asks for: per language, a
    /// wrapper whose own compiler is the variant's (family and version) as it is; otherwise,
    /// for C and C++, a wrapper of the same installation pointed at the variant's compiler by
    /// the implementation's override variable. Fortran cannot be pointed elsewhere: the `mpi`
    /// and `mpi_f08` module files are compiled by one Fortran compiler and only it reads them.
    /// What cannot be paired is a reason; what is paired goes into the flags (CMake's FindMPI
    /// variables, the override and launch environment).
    fn pair_mpi(&mut self, spec: &crate::resolve::MpiSpec, ranks: u32) -> Option<ConcreteMpi> {
        let imp = self.reg.mpi.get(&spec.implementation)?;
        let range = spec
            .versions
            .as_ref()
            .map(|x| format!("@{x}"))
            .unwrap_or_default();
        let what = format!("{}{range}", imp.name);
        let found = self.mpi_records(imp, spec, &what)?;
        let mut wrappers: IndexMap<Language, MpiWrapper> = IndexMap::new();
        let mut anchor: Option<&MpiRecord> = None;
        let mut ok = true;
        for lang in &self.m.languages {
            let Some(chosen) = self.compilers.get(lang) else {
                continue;
            };
            let cands = wrapper_candidates(imp, *lang, &found, anchor, self.profile, chosen);
            match pick_wrapper(imp, &what, *lang, chosen, &cands) {
                Ok((rec, override_env)) => {
                    anchor.get_or_insert(rec);
                    wrappers.insert(
                        *lang,
                        MpiWrapper {
                            path: rec.path.clone(),
                            compiler: rec.compiler.clone(),
                            compiler_family: rec.compiler_family.clone(),
                            compiler_version: rec.compiler_version.clone(),
                            override_env,
                        },
                    );
                }
                Err(why) => {
                    self.reasons.push(why);
                    ok = false;
                }
            }
        }
        let anchor = anchor?;
        let Some(launcher) = anchor.launcher.clone() else {
            self.reasons.push(format!(
                "{} wrapper {} has no launcher beside it (looked for {})",
                imp.name,
                anchor.path,
                imp.launchers.join(", ")
            ));
            return None;
        };
        if !ok {
            return None;
        }
        self.apply_mpi(imp, &wrappers, &launcher, ranks);
        Some(ConcreteMpi {
            implementation: imp.name.clone(),
            version: anchor.version.clone().unwrap_or_default(),
            launcher,
            numproc_flag: imp.launch.flag.clone(),
            ranks,
            wrappers,
        })
    }

    /// The profile's working wrappers of `imp` in the range of `spec`; none is a reason
    /// naming what `what` (`openmpi@4`) found instead.
    fn mpi_records(
        &mut self,
        imp: &MpiImpl,
        spec: &crate::resolve::MpiSpec,
        what: &str,
    ) -> Option<Vec<&'a MpiRecord>> {
        let profile = self.profile;
        let in_range = |r: &&MpiRecord| {
            r.implementation == imp.name
                && r.status == ProbeStatus::Ok
                && match (
                    &spec.versions,
                    r.version.as_deref().and_then(Version::parse),
                ) {
                    (None, _) => true,
                    (Some(range), Some(v)) => range.contains(&v),
                    (Some(_), None) => false,
                }
        };
        let found: Vec<&MpiRecord> = profile.mpi.iter().filter(in_range).collect();
        if !found.is_empty() {
            return Some(found);
        }
        let others: Vec<String> = profile
            .mpi
            .iter()
            .filter(|r| r.implementation == imp.name)
            .map(|r| match r.status {
                ProbeStatus::Ok => format!("{} {}", imp.name, r.version.as_deref().unwrap_or("?")),
                _ => format!("{} ({})", r.path, r.error.as_deref().unwrap_or("unusable")),
            })
            .fold(Vec::new(), |mut v, x| {
                if !v.contains(&x) {
                    v.push(x);
                }
                v
            });
        let mut why = format!("missing MPI: no {what} wrapper found");
        if !others.is_empty() {
            why.push_str(&format!("; found only: {}", others.join(", ")));
        }
        self.reasons.push(why);
        None
    }

    /// The paired wrappers, launcher and rank count into the flags.
    fn apply_mpi(
        &mut self,
        imp: &MpiImpl,
        wrappers: &IndexMap<Language, MpiWrapper>,
        launcher: &str,
        ranks: u32,
    ) {
        let flags = &mut self.flags;
        for (lang, w) in wrappers {
            let var = match lang {
                Language::C => "MPI_C_COMPILER",
                Language::Cxx => "MPI_CXX_COMPILER",
                Language::Fortran => "MPI_Fortran_COMPILER",
            };
            flags.cmake.insert(var.into(), w.path.clone());
            // Meson's `dependency('mpi')` and mpi4py's build look for the wrapper under these
            // names (else `mpicc` on PATH: whichever MPI the distribution's alternatives chose).
            let tool_var = match lang {
                Language::C => "MPICC",
                Language::Cxx => "MPICXX",
                Language::Fortran => "MPIFC",
            };
            flags.env.insert(tool_var.into(), w.path.clone());
            if let Some((k, v)) = &w.override_env {
                flags.env.insert(k.clone(), v.clone());
            }
        }
        flags
            .cmake
            .insert("MPIEXEC_EXECUTABLE".into(), launcher.to_string());
        flags
            .cmake
            .insert("MPIEXEC_NUMPROC_FLAG".into(), imp.launch.flag.clone());
        flags
            .cmake
            .insert("MPIEXEC_MAX_NUMPROCS".into(), ranks.to_string());
        // cfgmx's launch settings win over a matrix's: they are what keeps a test from
        // oversubscribing the cores it holds.
        for (k, v) in &imp.launch.env {
            flags.env.insert(k.clone(), v.clone());
        }
    }
}

/// `found`'s wrappers for `lang`, best first: one installation (the anchor's launcher and
/// version first), the `chosen` compiler's own module level first, suffixed names first, and
/// the data's own order of names (`mpifort` before the older `mpif77`).
fn wrapper_candidates<'r>(
    imp: &MpiImpl,
    lang: Language,
    found: &[&'r MpiRecord],
    anchor: Option<&MpiRecord>,
    profile: &Profile,
    chosen: &ChosenCompiler,
) -> Vec<&'r MpiRecord> {
    // A name with the implementation's own suffix (`mpicc.openmpi`) stays this MPI's when
    // the distribution's alternatives point the plain name at another.
    let suffixed = |r: &MpiRecord| {
        let file = r.path.rsplit('/').next().unwrap_or(&r.path);
        matches!(
            imp.wrapper_name(file),
            Some((_, crate::mpi::NameMatch::Suffixed))
        )
    };
    let mut cands: Vec<&MpiRecord> = found
        .iter()
        .copied()
        .filter(|r| r.language == lang)
        .collect();
    let rank_of = |r: &MpiRecord| {
        let file = r.path.rsplit('/').next().unwrap_or(&r.path);
        imp.wrappers(lang)
            .iter()
            .position(|b| file == b || file.starts_with(&format!("{b}.")))
            .unwrap_or(usize::MAX)
    };
    // Behind modules, the MPI level the compiler's own module opens comes first: a site
    // means its `gcc/12 mpich/4.0`, not a system MPICH that happens to run the same gcc.
    let level = profile.modules.iter().find(|s| {
        s.compilers.iter().any(|p| {
            p.path == chosen.path && p.family == chosen.family && p.version == chosen.version
        })
    });
    let own_level = |r: &MpiRecord| {
        level.is_some_and(|c| {
            profile
                .modules_for_mpi(r)
                .is_some_and(|s| s.load.len() > c.load.len() && s.load.starts_with(&c.load))
        })
    };
    cands.sort_by_key(|r| {
        (
            anchor.is_some_and(|a| a.launcher != r.launcher || a.version != r.version),
            !own_level(r),
            !suffixed(r),
            rank_of(r),
        )
    });
    cands
}

/// A wrapper record, with the override variable and compiler path that point it at the
/// variant's compiler when its own is another.
type Paired<'r> = (&'r MpiRecord, Option<(String, String)>);

/// The wrapper of `cands` (best first) for `lang`, and the override variable pointing it at
/// the `chosen` compiler where its own is another; `Err` is why none fits.
fn pick_wrapper<'r>(
    imp: &MpiImpl,
    what: &str,
    lang: Language,
    chosen: &ChosenCompiler,
    cands: &[&'r MpiRecord],
) -> Result<Paired<'r>, String> {
    let same = |r: &&&MpiRecord| {
        r.compiler_family.as_deref() == Some(chosen.family.as_str())
            && r.compiler_version.as_deref() == Some(chosen.version.as_str())
    };
    let Some(first) = cands.first().copied() else {
        return Err(format!(
            "missing MPI: no {what} {} wrapper found (looked for {})",
            lang.as_str(),
            imp.wrappers(lang).join(", ")
        ));
    };
    match cands.iter().find(same) {
        Some(r) => Ok((*r, None)),
        None if lang == Language::Fortran => Err(format!(
            "{} {}'s Fortran wrapper {} was built with {} {}, this variant's Fortran compiler is {} {}: Fortran module files (`use mpi`, `use mpi_f08`) are compiler-specific, so only an {} built with {} {} fits",
            imp.name,
            first.version.as_deref().unwrap_or("?"),
            first.path,
            first.compiler_family.as_deref().unwrap_or("an unknown compiler"),
            first.compiler_version.as_deref().unwrap_or(""),
            chosen.family,
            chosen.version,
            imp.name,
            chosen.family,
            chosen.version
        )),
        None => {
            let var = imp
                .compiler
                .as_ref()
                .and_then(|c| c.env(lang).first().cloned());
            match var {
                Some(var) => Ok((first, Some((var, chosen.path.clone())))),
                None => Err(format!(
                    "{} {} wrapper {} runs {} {}, not this variant's {} {}, and {} has no variable to change it",
                    imp.name,
                    lang.as_str(),
                    first.path,
                    first.compiler_family.as_deref().unwrap_or("?"),
                    first.compiler_version.as_deref().unwrap_or(""),
                    chosen.family,
                    chosen.version,
                    imp.name
                )),
            }
        }
    }
}

/// Puts `rec`'s link line ([`BlasRecord::link`]) on the variant's: its directory flags first,
/// its libraries where the build's link names stood (`-lmkl_core` becomes the versioned file
/// the probe found), so the variant links exactly what was asked.
fn apply_blas_link(flags: &mut FlagSet, rec: &BlasRecord, build_libs: &[String]) {
    let link = rec.link(&flags.driver);
    if !flags.ldflags.iter().any(|f| f == &link.ldflags[0]) {
        for (i, f) in link.ldflags.into_iter().enumerate() {
            flags.ldflags.insert(i, f);
        }
    }
    // A profile from before records carried their libraries keeps the link names.
    if link.libs.is_empty() {
        return;
    }
    let at = flags
        .libs
        .iter()
        .position(|l| build_libs.contains(l))
        .unwrap_or(0);
    flags.libs.retain(|l| !build_libs.contains(l));
    let at = at.min(flags.libs.len());
    let mut rest = flags.libs.split_off(at);
    for l in link.libs {
        if !flags.libs.contains(&l) && !rest.contains(&l) {
            flags.libs.push(l);
        }
    }
    flags.libs.append(&mut rest);
}

/// A record's libraries as CMake list items: the file the probe asked for its own link name,
/// full paths as they are, and the rest (MKL's system libraries) in the driver's spelling
/// (`-lm`), which `target_link_libraries` passes on.
fn blas_files(rec: &BlasRecord, driver: &crate::Driver) -> Vec<String> {
    let file = rec.path.rsplit('/').next().unwrap_or("");
    let libs = if rec.libs.is_empty() {
        std::slice::from_ref(&rec.path)
    } else {
        rec.libs.as_slice()
    };
    libs.iter()
        .map(|l| {
            if l.contains('/') {
                l.clone()
            } else if file
                .strip_prefix("lib")
                .and_then(|f| f.strip_prefix(l.as_str()))
                .is_some_and(|r| r.starts_with('.'))
            {
                // the probed file itself, whatever this platform calls a shared library
                rec.path.clone()
            } else {
                driver.library(l).concat()
            }
        })
        .collect()
}

fn parent(p: &str) -> &str {
    p.rsplit_once('/').map_or("", |(d, _)| d)
}

fn find_sub(hay: &[String], needle: &[String]) -> Option<usize> {
    if needle.is_empty() || needle.len() > hay.len() {
        return None;
    }
    (0..=hay.len() - needle.len()).find(|&i| hay[i..i + needle.len()] == *needle)
}
