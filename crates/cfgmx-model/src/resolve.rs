//! Resolution: a combination, read through the toolchain descriptors and BLAS providers, becomes
//! a [`Variant`] with a flag set (CC/CXX/FC, per-language flags, link flags and libraries,
//! CMake cache variables, environment) and a spec hash.
//!
//! The resolved part depends only on the values of the role axes (`compiler`, `blas`, `build`)
//! and of values that contribute something, so it is memoised: a million variants that differ
//! only in label axes share one resolution.

use crate::diag::Diagnostic;
use crate::expand::Combo;
use crate::hash::{canonical_json, push_json_bytes, sha256_hex, SpecHasher};
use crate::matrix::{
    BlasRequest, CompilerSpec, Contribution, Matrix, TestSettings, BLAS, BUILD, COMPILER, INT, MPI,
    OPENMP,
};
use crate::profile::IntWidth;
use crate::provider::{BlasChoice, Threading};
use crate::registry::Registry;
use crate::toolchain::{Language, Toolchain, VersionRule};
use indexmap::IndexMap;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;

/// Compiler executables and flags for one variant.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct FlagSet {
    /// C compiler (a name before probing, a path after).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cc: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cxx: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fc: Option<String>,
    pub cflags: Vec<String>,
    pub cxxflags: Vec<String>,
    pub fflags: Vec<String>,
    /// Link flags for every language's link: the BLAS build's, the matrix values', and (once
    /// concrete) the BLAS directory's `-L`/`-Wl,-rpath`.
    pub ldflags: Vec<String>,
    /// Facet link flags per language: each is its own compiler driver's spelling (clang's
    /// `-fopenmp=libomp` next to gfortran's `-fopenmp`), so only that language's link gets it.
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub link: IndexMap<Language, Vec<String>>,
    /// Libraries by name (`openblas`, `gomp`), in link order; `-l` is the renderer's business.
    pub libs: Vec<String>,
    /// CMake cache variables (`CMAKE_BUILD_TYPE`, `BLA_VENDOR`, ...).
    pub cmake: IndexMap<String, String>,
    /// Meson built-in or project options contributed by the matrix.
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub meson: IndexMap<String, String>,
    /// Environment for configuring, building and testing (thread counts, matrix env).
    pub env: IndexMap<String, String>,
    /// The C compiler family's spellings, for [`FlagSet::lib_args`]. Not serialised: a fact
    /// of the family, which the spec hash names.
    #[serde(skip)]
    pub driver: crate::Driver,
}

impl FlagSet {
    pub fn flags_mut(&mut self, lang: Language) -> &mut Vec<String> {
        match lang {
            Language::C => &mut self.cflags,
            Language::Cxx => &mut self.cxxflags,
            Language::Fortran => &mut self.fflags,
        }
    }
    pub fn flags(&self, lang: Language) -> &[String] {
        match lang {
            Language::C => &self.cflags,
            Language::Cxx => &self.cxxflags,
            Language::Fortran => &self.fflags,
        }
    }
    pub fn compiler(&self, lang: Language) -> Option<&str> {
        match lang {
            Language::C => self.cc.as_deref(),
            Language::Cxx => self.cxx.as_deref(),
            Language::Fortran => self.fc.as_deref(),
        }
    }
    /// The link flags when `lang`'s compiler drives the link: its facet link flags, then
    /// `ldflags`.
    pub fn link_args(&self, lang: Language) -> Vec<String> {
        let mut v = self.link.get(&lang).cloned().unwrap_or_default();
        push_unique(&mut v, &self.ldflags);
        v
    }

    /// Link flags for a link line whichever of `langs` drives it (`LDFLAGS`, CMake's
    /// `CMAKE_EXE_LINKER_FLAGS`): the facet link flags every language has, less those already
    /// in its compile flags (CMake and make pass compile flags to the link themselves), then
    /// `ldflags`.
    pub fn shared_link_args(&self, langs: &[Language]) -> Vec<String> {
        let mut v: Vec<String> = match langs.first().and_then(|l| self.link.get(l)) {
            Some(first) => first
                .iter()
                .filter(|x| {
                    langs.iter().all(|g| {
                        !self.flags(*g).contains(x)
                            && self.link.get(g).is_some_and(|o| o.contains(x))
                    })
                })
                .cloned()
                .collect(),
            None => Vec::new(),
        };
        push_unique(&mut v, &self.ldflags);
        v
    }

    /// The libraries as linker arguments, in the family's spelling (`-lopenblas`,
    /// `openblas.lib`).
    pub fn lib_args(&self) -> Vec<String> {
        self.libs
            .iter()
            .flat_map(|l| self.driver.library(l))
            .collect()
    }
}

/// The OpenMP facet a variant uses.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct OpenmpUse {
    /// Why: the BLAS build needs it, or a value asked for the facet.
    pub reason: String,
    /// Runtime per language family: C/C++ compiler's, and Fortran's if it differs.
    pub runtimes: Vec<String>,
}

/// The MPI a variant asks for (`mpi = "openmpi@4"`): the implementation and a version range.
/// Concretisation pairs it with the wrappers the probe found.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MpiSpec {
    pub implementation: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub versions: Option<crate::version::VersionRange>,
}

/// Everything resolution derives from the role values; shared between variants.
#[derive(Debug, Serialize)]
pub struct Resolved {
    pub compiler: CompilerSpec,
    /// Family that provides Fortran when it is not `compiler.family`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fortran_family: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blas: Option<BlasChoice>,
    /// The abstract BLAS value (`threaded`) or the concrete id as written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blas_request: Option<BlasRequest>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build: Option<String>,
    /// Facets applied, in order (`always`, `debug`, `openmp`, ...).
    pub facets: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub openmp: Option<OpenmpUse>,
    /// The BLAS integer width the variant is built for: `int = "ilp64"`, or a BLAS value that
    /// names an ILP64 build. Left out of the JSON when LP64 (as it was before it existed).
    #[serde(skip_serializing_if = "IntWidth::is_lp64")]
    pub int_width: IntWidth,
    /// `openmp = "off"`: the project compiles without OpenMP whatever its BLAS threading.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub openmp_off: bool,
    /// The MPI asked for; `None` for `mpi = "none"` or no `mpi` axis.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mpi: Option<MpiSpec>,
    pub flags: FlagSet,
    /// Which tests run and how: the matrix's `[test]` under the values' own `test` keys.
    #[serde(skip_serializing_if = "TestSettings::is_empty")]
    pub test: TestSettings,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// SHA-256 of the canonical JSON of the spec document's resolved part (see `hash`).
    #[serde(skip)]
    pub digest: String,
    /// The descriptor facts that went into the hash.
    #[serde(skip)]
    pub(crate) spec_part: serde_json::Value,
    /// This struct's JSON object without its braces, serialised once and spliced into every
    /// variant record that shares it (the streaming hot path).
    #[serde(skip)]
    pub(crate) json_fields: String,
}

/// One resolved point of the matrix.
#[derive(Debug, Clone, Serialize)]
pub struct Variant {
    pub index: u64,
    pub name: String,
    /// Full spec hash (64 hex digits); short forms are unique prefixes.
    pub hash: String,
    pub axes: Axes,
    #[serde(flatten)]
    pub resolved: Arc<Resolved>,
    /// The axes as canonical JSON (keys sorted), as hashed; streamed records reuse it.
    #[serde(skip)]
    axes_json: String,
}

impl Variant {
    /// Appends this variant as one JSON line (same fields as its `Serialize`), splicing the
    /// shared resolved part and the hashed axes JSON instead of serialising them again.
    pub fn write_json_line(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"index\":");
        out.extend_from_slice(itoa::Buffer::new().format(self.index).as_bytes());
        out.extend_from_slice(b",\"name\":");
        push_json_bytes(out, &self.name);
        out.extend_from_slice(b",\"hash\":\"");
        out.extend_from_slice(self.hash.as_bytes());
        // The axes object as hashed: keys sorted (JSON objects are unordered; `--json` keeps
        // the matrix's axis order).
        out.extend_from_slice(b"\",\"axes\":");
        out.extend_from_slice(self.axes_json.as_bytes());
        if !self.resolved.json_fields.is_empty() {
            out.push(b',');
            out.extend_from_slice(self.resolved.json_fields.as_bytes());
        }
        out.extend_from_slice(b"}\n");
    }

    pub fn flags(&self) -> &FlagSet {
        &self.resolved.flags
    }

    /// The document the spec hash is computed from, whole (what `cfgmx show --spec` prints and
    /// `cfgmx diff` compares).
    pub fn spec_document(&self) -> serde_json::Value {
        serde_json::json!({
            "schema": crate::hash::SPEC_SCHEMA,
            "axes": self.axes,
            "resolved": self.resolved.spec_part,
        })
    }
}

/// Turns combinations into variants, memoising the resolution of role values.
pub struct Resolver<'a> {
    pub matrix: &'a Matrix,
    pub registry: &'a Registry,
    memo: HashMap<String, Arc<Resolved>>,
    key_buf: String,
    last: Option<(String, Arc<Resolved>)>,
    order_keys: Vec<Arc<str>>,
    order: Vec<usize>,
}

const MEMO_LIMIT: usize = 4096;

impl<'a> Resolver<'a> {
    pub fn new(matrix: &'a Matrix, registry: &'a Registry) -> Self {
        Resolver {
            matrix,
            registry,
            memo: HashMap::new(),
            key_buf: String::new(),
            last: None,
            order_keys: Vec::new(),
            order: Vec::new(),
        }
    }

    /// Resolves one combination. Fails (with a located diagnostic) only for combinations an
    /// include entry created without a compiler.
    pub fn resolve(&mut self, c: &Combo) -> Result<Variant, Diagnostic> {
        self.resolve_owned(c.clone())
    }

    /// [`Resolver::resolve`] taking the combination by value (no copy of its pairs).
    pub fn resolve_owned(&mut self, c: Combo) -> Result<Variant, Diagnostic> {
        // The memo key: role values and every value that contributes something.
        self.key_buf.clear();
        for (k, v) in &c.pairs {
            if matches!(&**k, COMPILER | BLAS | BUILD | INT | OPENMP | MPI)
                || self.matrix.contribution(k, v).is_some()
            {
                self.key_buf.push_str(k);
                self.key_buf.push('\u{1f}');
                self.key_buf.push_str(v);
                self.key_buf.push('\u{1e}');
            }
        }
        // Consecutive variants usually share role values: check the last one before hashing.
        let last = match &self.last {
            Some((k, r)) if *k == self.key_buf => Some(r.clone()),
            _ => None,
        };
        let resolved = match last.or_else(|| self.memo.get(&self.key_buf).cloned()) {
            Some(r) => r,
            None => {
                let r = Arc::new(self.resolve_core(&c)?);
                if self.memo.len() >= MEMO_LIMIT {
                    self.memo.clear();
                }
                self.memo.insert(self.key_buf.clone(), r.clone());
                r
            }
        };
        match &mut self.last {
            Some((k, r)) if *k == self.key_buf => *r = resolved.clone(),
            _ => self.last = Some((self.key_buf.clone(), resolved.clone())),
        }
        let mut name = String::with_capacity(32);
        for (i, (_, v)) in c.pairs.iter().enumerate() {
            if i > 0 {
                name.push('-');
            }
            push_slug(&mut name, v);
        }
        finish_name(&mut name);
        // The key order is the same for every product combination: sort once.
        let same_keys = self.order_keys.len() == c.pairs.len()
            && self
                .order_keys
                .iter()
                .zip(&c.pairs)
                .all(|(a, (b, _))| Arc::ptr_eq(a, b));
        if !same_keys {
            self.order_keys = c.pairs.iter().map(|(k, _)| k.clone()).collect();
            self.order = (0..c.pairs.len()).collect();
            let keys = &self.order_keys;
            self.order.sort_unstable_by(|a, b| keys[*a].cmp(&keys[*b]));
        }
        let mut hasher = SpecHasher::new();
        hasher.axes_in_order(&c.pairs, &self.order);
        hasher.part("resolved", &resolved.digest);
        Ok(Variant {
            index: c.index,
            name,
            axes_json: hasher.axes_json().to_string(),
            hash: hasher.finish(),
            axes: Axes(c.pairs),
            resolved,
        })
    }

    /// A combination's resolved part, section by section: compiler and toolchains, BLAS,
    /// MPI, facets, link line and contributions, environment, runtime conflicts, the hashed
    /// part.
    fn resolve_core(&self, c: &Combo) -> Result<Resolved, Diagnostic> {
        let m = self.matrix;
        let reg = self.registry;
        let get = |k: &str| c.get(k).map(|v| &**v);
        let (spec, tc) = self.compiler(c)?;
        let contributions: Vec<(&str, &str, &Contribution)> = c
            .pairs
            .iter()
            .filter_map(|(k, v)| m.contribution(k, v).map(|x| (&**k, &**v, x)))
            .collect();
        let fortran_family = contributions
            .iter()
            .find_map(|(_, _, x)| x.fortran.clone())
            .filter(|f| *f != tc.name);
        let ftc = match &fortran_family {
            Some(f) => reg
                .toolchain(f)
                .cloned()
                .ok_or_else(|| m.axes_diagnostic(format!("unknown toolchain family `{f}`")))?,
            None => tc.clone(),
        };
        let mut rs = Resolving::new(m, tc, ftc);

        let blas_request = get(BLAS).map(BlasRequest::parse);
        let (blas, int_width) = rs.blas(reg, blas_request.as_ref(), get(INT));
        let project_openmp = get(OPENMP);
        let mpi = mpi_spec(m, reg, get(MPI))?;
        let build = get(BUILD).map(str::to_string);
        let openmp = rs.apply_facets(
            build.as_deref(),
            project_openmp,
            blas.as_ref(),
            int_width,
            &contributions,
        );
        rs.blas_link(blas.as_ref(), int_width);
        let test = rs.apply_contributions(&contributions);
        rs.environment(blas.as_ref(), openmp.is_some(), &contributions);
        let runtimes = rs.openmp_conflicts(blas.as_ref(), openmp.is_some());

        let mut r = Resolved {
            compiler: spec,
            fortran_family,
            blas,
            blas_request,
            build,
            facets: std::mem::take(&mut rs.facets),
            openmp: openmp.map(|reason| OpenmpUse { reason, runtimes }),
            int_width,
            openmp_off: project_openmp == Some("off"),
            mpi,
            flags: std::mem::take(&mut rs.flags),
            test,
            warnings: std::mem::take(&mut rs.warnings),
            digest: String::new(),
            spec_part: serde_json::Value::Null,
            json_fields: String::new(),
        };
        r.spec_part = rs.spec_part(&r, reg, &contributions, project_openmp);
        r.digest = sha256_hex(canonical_json(&r.spec_part).as_bytes());
        let whole = serde_json::to_string(&r).expect("resolved part serialises");
        r.json_fields = whole[1..whole.len() - 1].to_string();
        Ok(r)
    }

    /// The combination's compiler value and its toolchain; a combination an include entry
    /// created without one is a located diagnostic.
    fn compiler(&self, c: &Combo) -> Result<(CompilerSpec, Arc<Toolchain>), Diagnostic> {
        let m = self.matrix;
        let Some(cval) = c.get(COMPILER) else {
            let d = match c.from_include {
                Some(i) if m.include[i].new => m.include_diagnostic(i, "this add entry creates a variant of its own, and that variant has no `compiler`"),
                Some(i) => m.include_diagnostic(i, "this include entry fits no combination, so it creates a new variant, and that variant has no `compiler`"),
                None => m.axes_diagnostic("the matrix has no `compiler` axis"),
            };
            return Err(d.expected("a `compiler = \"family\"` key"));
        };
        // Values were validated at parse time; a failure here is a bug, reported, not panicked.
        let spec = CompilerSpec::parse(cval).map_err(|e| m.axes_diagnostic(e))?;
        let tc = self
            .registry
            .toolchain(&spec.family)
            .ok_or_else(|| {
                m.axes_diagnostic(format!("unknown toolchain family `{}`", spec.family))
            })?
            .clone();
        Ok((spec, tc))
    }
}

/// The `mpi` value as a spec (`None` for `none` or no value).
fn mpi_spec(
    m: &Matrix,
    reg: &Registry,
    value: Option<&str>,
) -> Result<Option<MpiSpec>, Diagnostic> {
    match value {
        None | Some("none") => Ok(None),
        Some(text) => {
            // Validated at parse time; a failure here is a bug, reported, not panicked.
            let spec = CompilerSpec::parse(text).map_err(|e| m.axes_diagnostic(e))?;
            if !reg.mpi.contains_key(&spec.family) {
                return Err(
                    m.axes_diagnostic(format!("unknown MPI implementation `{}`", spec.family))
                );
            }
            Ok(Some(MpiSpec {
                implementation: spec.family,
                versions: spec.versions,
            }))
        }
    }
}

/// Whether a toolchain lacking a facet is worth a warning: a build mode, the OpenMP a variant
/// asks for or a value's facet is; `always` and `int64` (which only some languages have) are
/// not.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Need {
    Optional,
    Required,
}

/// One combination's resolution under way: its toolchains (C/C++ and Fortran), and the flags,
/// facets and warnings gathered so far.
struct Resolving<'a> {
    m: &'a Matrix,
    tc: Arc<Toolchain>,
    ftc: Arc<Toolchain>,
    flags: FlagSet,
    facets: Vec<String>,
    /// The descriptors' facet entries used, as hashed.
    facet_sources: IndexMap<String, serde_json::Value>,
    /// Runtime libraries the facets link, put after the BLAS that may need them.
    facet_libs: Vec<String>,
    warnings: Vec<String>,
}

impl<'a> Resolving<'a> {
    /// The driver and each language's compiler (a warning for a language the toolchain
    /// has none for).
    fn new(m: &'a Matrix, tc: Arc<Toolchain>, ftc: Arc<Toolchain>) -> Self {
        let mut rs = Resolving {
            m,
            flags: FlagSet {
                driver: tc.driver.clone(),
                ..FlagSet::default()
            },
            tc,
            ftc,
            facets: Vec::new(),
            facet_sources: IndexMap::new(),
            facet_libs: Vec::new(),
            warnings: Vec::new(),
        };
        for lang in &m.languages {
            let t = rs.lang_tc(*lang);
            let exe = t.executables.for_lang(*lang).first().cloned();
            if exe.is_none() {
                let w = format!("toolchain {} has no {} compiler", t.name, lang.as_str());
                rs.warnings.push(w);
            }
            match lang {
                Language::C => rs.flags.cc = exe,
                Language::Cxx => rs.flags.cxx = exe,
                Language::Fortran => rs.flags.fc = exe,
            }
        }
        rs
    }

    fn lang_tc(&self, l: Language) -> &Arc<Toolchain> {
        if l == Language::Fortran {
            &self.ftc
        } else {
            &self.tc
        }
    }

    /// The BLAS build the `blas` value takes from the registry, and the variant's integer
    /// width (`int`, or an ILP64 build named).
    fn blas(
        &mut self,
        reg: &Registry,
        blas: Option<&BlasRequest>,
        int: Option<&str>,
    ) -> (Option<BlasChoice>, IntWidth) {
        let m = self.m;
        let asked_width = match int {
            Some("ilp64") => IntWidth::Ilp64,
            _ => IntWidth::Lp64,
        };
        let choice = match blas {
            None | Some(BlasRequest::None) => None,
            Some(BlasRequest::Sequential) => pick_blas(
                reg,
                &m.blas_policy.prefer,
                &[Threading::Sequential],
                None,
                asked_width,
            ),
            Some(BlasRequest::Threaded) => pick_blas(
                reg,
                &m.blas_policy.prefer,
                &m.blas_policy.threaded,
                self.tc.openmp_runtime(),
                asked_width,
            ),
            Some(BlasRequest::Named(id)) => reg.blas(id),
        };
        if let (Some(req), None) = (blas, &choice) {
            if *req != BlasRequest::None {
                self.warnings
                    .push(format!("no BLAS provider has a {req} build"));
            }
        }
        // A BLAS value naming an ILP64 build (`mkl-sequential_ilp64`) makes the variant ILP64.
        let named_width = choice.as_ref().map(|b| b.build.int_width);
        let int_width = match (int, named_width) {
            (Some("ilp64"), _) | (None, Some(IntWidth::Ilp64)) => IntWidth::Ilp64,
            (Some(_), Some(IntWidth::Ilp64)) => {
                self.warnings.push(format!(
                    "BLAS {} is ILP64 but the variant is `int = \"lp64\"`: no library fits",
                    blas.map(BlasRequest::as_str).unwrap_or_default()
                ));
                IntWidth::Lp64
            }
            _ => IntWidth::Lp64,
        };
        (choice, int_width)
    }

    /// Applies facet `name` for every language whose toolchain has it (once per variant).
    fn add_facet(&mut self, name: &str, need: Need) {
        if self.facets.iter().any(|f| f == name) {
            return;
        }
        // abstract: the probe supplies versions during concretisation
        let version = None;
        let mut any = false;
        for lang in &self.m.languages {
            let t: Arc<Toolchain> = self.lang_tc(*lang).clone();
            if let Some(cand) = t
                .facet(name)
                .iter()
                .find(|c| c.fits(version) && c.applies_to(*lang))
            {
                any = true;
                self.flags
                    .flags_mut(*lang)
                    .extend(cand.flags.iter().cloned());
                if !cand.link.is_empty() {
                    push_unique(self.flags.link.entry(*lang).or_default(), &cand.link);
                }
                push_unique(&mut self.facet_libs, &cand.libs);
            }
            if !t.facet(name).is_empty() {
                self.facet_sources
                    .entry(format!("{}:{}", t.name, name))
                    .or_insert_with(|| serde_json::to_value(t.facet(name)).unwrap_or_default());
            }
        }
        if any {
            self.facets.push(name.to_string());
        } else if need == Need::Required {
            let w = format!("toolchain {} has no `{name}` facet", self.tc.name);
            self.warnings.push(w);
        }
    }

    /// Facets: always, build mode, OpenMP if the BLAS build needs it, then what values ask
    /// for. Returns why the variant uses OpenMP, if it does.
    fn apply_facets(
        &mut self,
        build: Option<&str>,
        project_openmp: Option<&str>,
        blas: Option<&BlasChoice>,
        int_width: IntWidth,
        contributions: &[(&str, &str, &Contribution)],
    ) -> Option<String> {
        self.add_facet("always", Need::Optional);
        if let Some(b) = build {
            self.add_facet(b, Need::Required);
            if let Some(mode) = crate::matrix::build_modes().iter().find(|m| m.name == *b) {
                self.flags
                    .cmake
                    .insert("CMAKE_BUILD_TYPE".into(), mode.cmake.clone());
            }
        }
        let mut openmp = None;
        // The project's OpenMP: asked for (`openmp = "on"`), refused (`"off"`: a threaded
        // BLAS then runs on its own runtime, the project's code stays serial), or by default
        // paired with an OpenMP-threaded BLAS as before the axis existed.
        match project_openmp {
            Some("on") => {
                self.add_facet("openmp", Need::Required);
                openmp = Some("the project's OpenMP is on (`openmp = \"on\"`)".to_string());
            }
            Some(_) => {}
            None => {
                if let Some(b) = blas {
                    if b.build.threading == Threading::Openmp {
                        self.add_facet("openmp", Need::Required);
                        openmp = Some(format!("BLAS build {} is OpenMP-threaded", b.id));
                    }
                }
            }
        }
        if int_width == IntWidth::Ilp64 {
            // Only languages with 64-bit default integers (Fortran) have the facet; C code
            // declares its BLAS integers itself.
            self.add_facet("int64", Need::Optional);
        }
        for (_, _, x) in contributions {
            for f in &x.facets {
                if f == "openmp" && project_openmp == Some("off") {
                    push_unique(
                        &mut self.warnings,
                        &["a matrix value asks for the `openmp` facet, which `openmp = \"off\"` leaves out".to_string()],
                    );
                    continue;
                }
                self.add_facet(f, Need::Required);
                if f == "openmp" && openmp.is_none() {
                    openmp = Some("requested by a matrix value".to_string());
                }
            }
        }
        openmp
    }

    /// BLAS link line and CMake vendor.
    fn blas_link(&mut self, blas: Option<&BlasChoice>, int_width: IntWidth) {
        let flags = &mut self.flags;
        if let Some(b) = blas {
            push_unique(&mut flags.ldflags, &b.build.link);
            push_unique(&mut flags.libs, &b.build.libs);
            if let Some(v) = &b.build.cmake_vendor {
                flags.cmake.insert("BLA_VENDOR".into(), v.clone());
            }
        }
        if int_width == IntWidth::Ilp64 {
            // FindBLAS looks for the 64-bit integer builds only when asked.
            flags.cmake.insert("BLA_SIZEOF_INTEGER".into(), "8".into());
        }
    }

    /// The facets' runtime libraries, the matrix's `[cmake]`/`[meson]` and the values'
    /// contributions; returns the variant's test settings.
    fn apply_contributions(
        &mut self,
        contributions: &[(&str, &str, &Contribution)],
    ) -> TestSettings {
        let m = self.m;
        let flags = &mut self.flags;
        // Runtime libraries after the BLAS that may need them.
        push_unique(&mut flags.libs, &self.facet_libs);

        // The matrix's `[cmake]`/`[meson]` for every variant, before the values' own, which win.
        for (k, v) in &m.cmake {
            flags.cmake.insert(k.clone(), v.clone());
        }
        for (k, v) in &m.meson {
            flags.meson.insert(k.clone(), v.clone());
        }
        let mut test = m.test.clone();

        // Matrix values' contributions, in key order.
        for (_, _, x) in contributions {
            test.overlay(&x.test);
            flags.cflags.extend(x.cflags.iter().cloned());
            flags.cxxflags.extend(x.cxxflags.iter().cloned());
            flags.fflags.extend(x.fflags.iter().cloned());
            // Definitions go to the C-family languages the matrix builds.
            for d in &x.defines {
                for lang in [Language::C, Language::Cxx] {
                    if m.languages.contains(&lang) {
                        flags.flags_mut(lang).extend(self.tc.driver.define(d));
                    }
                }
            }
            push_unique(&mut flags.ldflags, &x.ldflags);
            push_unique(&mut flags.libs, &x.libs);
            for (k, v) in &x.cmake {
                flags.cmake.insert(k.clone(), v.clone());
            }
            for (k, v) in &x.meson {
                flags.meson.insert(k.clone(), v.clone());
            }
        }
        test
    }

    /// Environment: the toolchain's, the matrix's, thread counts, then values'.
    fn environment(
        &mut self,
        blas: Option<&BlasChoice>,
        openmp: bool,
        contributions: &[(&str, &str, &Contribution)],
    ) {
        let m = self.m;
        let env = &mut self.flags.env;
        for (k, v) in self.tc.env.iter().chain(m.env.iter()) {
            env.insert(k.clone(), v.clone());
        }
        let threads = m.threads.to_string();
        if let Some(b) = blas {
            if b.build.threading.is_threaded() {
                if let Some(var) = b.build.thread_vars.first() {
                    env.insert(var.clone(), threads.clone());
                }
            }
        }
        if openmp {
            env.entry(crate::OMP_NUM_THREADS.into())
                .or_insert(threads.clone());
        }
        for (_, _, x) in contributions {
            for (k, v) in &x.env {
                env.insert(k.clone(), v.clone());
            }
        }
    }

    /// Runtime conflicts a user would otherwise find at 3 a.m., as warnings; returns the
    /// OpenMP runtimes the variant's compilers load.
    fn openmp_conflicts(&mut self, blas: Option<&BlasChoice>, openmp: bool) -> Vec<String> {
        let mut runtimes: Vec<String> = Vec::new();
        if openmp {
            for lang in &self.m.languages {
                if let Some(rt) = self.lang_tc(*lang).openmp_runtime() {
                    if !runtimes.iter().any(|r| r == rt) {
                        runtimes.push(rt.to_string());
                    }
                }
            }
        }
        if let Some(b) = blas {
            if let Some(rt) = &b.build.openmp_runtime {
                if openmp && !runtimes.iter().any(|r| r == rt) {
                    self.warnings.push(format!(
                        "two OpenMP runtimes would load: lib{} (BLAS {}) and lib{} ({})",
                        rt,
                        b.id,
                        runtimes.join(", lib"),
                        self.tc.name
                    ));
                }
            }
            if b.build.threading == Threading::Pthread && openmp {
                self.warnings.push(format!(
                    "pthread BLAS {} called inside OpenMP regions oversubscribes the cores",
                    b.id
                ));
            }
        }
        if runtimes.len() > 1 {
            self.warnings.push(format!(
                "two OpenMP runtimes would load: lib{} (C/C++ and Fortran compilers differ)",
                runtimes.join(" and lib")
            ));
        }
        runtimes
    }

    /// The hashed part: descriptor facts used, contributions, and the result `r`.
    fn spec_part(
        &self,
        r: &Resolved,
        reg: &Registry,
        contributions: &[(&str, &str, &Contribution)],
        project_openmp: Option<&str>,
    ) -> serde_json::Value {
        let m = self.m;
        let toolchain_part = |t: &Toolchain| {
            let mut part = serde_json::json!({
                "name": t.name,
                "executables": t.executables,
                "version": t.version.iter().map(VersionRule::for_variants).collect::<Vec<_>>(),
                "identity": t.identity,
                "env": t.env,
            });
            // A family's own spellings (cl's `.lib`) shape its link lines; the defaults' are
            // left out, so the hashes of every family that keeps them stay as they were.
            let driver = t.driver.for_variants();
            if driver != crate::toolchain::default_driver().for_variants() {
                part["driver"] = serde_json::to_value(&driver).unwrap_or_default();
            }
            part
        };
        let mut contrib_part = serde_json::Map::new();
        for (k, v, x) in contributions {
            contrib_part.insert(
                format!("{k}={v}"),
                serde_json::to_value(x).unwrap_or_default(),
            );
        }
        let mut spec_part = serde_json::json!({
            "compiler": r.compiler,
            "toolchain": toolchain_part(&self.tc),
            "fortran_toolchain": r.fortran_family.as_ref().map(|_| toolchain_part(&self.ftc)),
            "facets": self.facet_sources,
            "blas": r.blas.as_ref().map(|b| serde_json::json!({"id": b.id, "provider": b.provider, "build": b.build, "pkgconfig": b.pkgconfig})),
            "blas_policy": if r.blas_request.as_ref().is_some_and(BlasRequest::by_policy) { serde_json::to_value(&m.blas_policy).unwrap_or_default() } else { serde_json::Value::Null },
            "languages": m.languages,
            "threads": m.threads,
            "matrix_env": m.env,
            "contributions": contrib_part,
            "flags": r.flags,
        });
        // Only where they apply, so the hashes of variants without them stay as they were.
        if r.int_width == IntWidth::Ilp64 {
            spec_part["int_width"] = serde_json::to_value(r.int_width).unwrap_or_default();
        }
        // A pass proves only the tests it ran: another selection is another result.
        if !r.test.is_empty() {
            spec_part["test"] = serde_json::to_value(&r.test).unwrap_or_default();
        }
        if let Some(o) = project_openmp {
            spec_part["project_openmp"] = serde_json::Value::String(o.to_string());
        }
        if let Some(mp) = &r.mpi {
            // The implementation's data (wrapper names, override variables, launchers, the
            // library check, launch settings): editing it moves the hashes of its variants.
            spec_part["mpi"] = serde_json::json!({
                "spec": mp,
                "implementation": reg.mpi.get(&mp.implementation).map(|i| serde_json::to_value(&**i).unwrap_or_default()),
            });
        }
        spec_part
    }
}

fn push_unique(dst: &mut Vec<String>, src: &[String]) {
    for s in src {
        if !dst.contains(s) {
            dst.push(s.clone());
        }
    }
}

/// What [`blas_order`] asks of each candidate: its provider, threading and OpenMP runtime.
pub type BlasFacts<'a> = (&'a str, Threading, Option<&'a str>);

/// The order an abstract BLAS value (`sequential`, `threaded`) takes candidates in — the
/// registry's builds ([`pick_blas`]) or a profile's records (concretisation): threading modes
/// in `threading`'s order; within a mode, providers in order of `prefer` (a provider it does
/// not name is never taken), a build on the compiler's OpenMP `runtime` before one on another.
pub fn blas_order<'a, T: Copy>(
    items: &[T],
    prefer: &[String],
    threading: &[Threading],
    runtime: Option<&str>,
    facts: impl Fn(T) -> BlasFacts<'a>,
) -> Vec<T> {
    let facts = &facts;
    let mut out = Vec::new();
    for t in threading {
        let in_mode: Vec<T> = prefer
            .iter()
            .flat_map(|p| {
                items.iter().copied().filter(move |i| {
                    let (provider, threading, _) = facts(*i);
                    provider == p && threading == *t
                })
            })
            .collect();
        let own_runtime = |i: &T| {
            let (_, threading, rt) = facts(*i);
            threading != Threading::Openmp || runtime.is_none() || rt == runtime
        };
        out.extend(in_mode.iter().copied().filter(|i| own_runtime(i)));
        out.extend(in_mode.iter().copied().filter(|i| !own_runtime(i)));
    }
    out
}

/// Picks the provider build for an abstract BLAS value, in [`blas_order`]. A build declared
/// ILP64 (MKL's `mkl_intel_ilp64` layers) is picked only for an ILP64 variant, and first for
/// it; a provider whose builds are not declared by width (OpenBLAS: one build name, LP64 and
/// ILP64 files) serves both.
pub fn pick_blas(
    reg: &Registry,
    prefer: &[String],
    threading: &[Threading],
    runtime: Option<&str>,
    width: IntWidth,
) -> Option<BlasChoice> {
    type Candidate<'r> = (
        &'r Arc<crate::provider::Provider>,
        &'r crate::provider::Build,
    );
    let builds: Vec<Candidate> = reg
        .providers
        .values()
        .flat_map(|p| {
            let declared = |t: Threading| {
                p.builds
                    .iter()
                    .any(|b| b.threading == t && b.int_width == width)
            };
            p.builds
                .iter()
                .filter(move |b| {
                    b.int_width == width
                        || (!declared(b.threading) && b.int_width == IntWidth::Lp64)
                })
                .map(move |b| (p, b))
        })
        .collect();
    let ordered = blas_order(&builds, prefer, threading, runtime, |(p, b)| {
        (p.name.as_str(), b.threading, b.openmp_runtime.as_deref())
    });
    let (p, b) = *ordered.first()?;
    Some(BlasChoice {
        id: crate::provider::blas_id(&p.name, &b.name),
        provider: p.name.clone(),
        build: b.clone(),
        pkgconfig: p.pkgconfig.clone(),
    })
}

/// A value as a piece of a variant name: safe as a file name on any system.
pub fn slug(v: &str) -> String {
    let mut s = String::new();
    push_slug(&mut s, v);
    s
}

fn slug_byte_ok(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'+' || b == b'-'
}

/// Appends the slug of `v`: `gcc@10:13` -> `gcc10-13`, other unsafe characters -> `_`. A value
/// that is only dots (`..`) becomes underscores, so a name can never walk out of a directory.
pub fn push_slug(out: &mut String, v: &str) {
    if !v.is_empty()
        && v.bytes().all(slug_byte_ok)
        && !v.bytes().all(|b| b == b'.')
        && !v.starts_with('-')
    {
        out.push_str(v);
        return;
    }
    let start = out.len();
    for c in v.chars() {
        match c {
            '@' => {}
            ':' => out.push('-'),
            c if c.is_ascii() && slug_byte_ok(c as u8) => out.push(c),
            _ => out.push('_'),
        }
    }
    while out.len() > start && out.ends_with('-') {
        out.pop();
    }
    // No leading dash (it would read as an option) and no all-dot component.
    if out[start..].starts_with('-') {
        out.replace_range(start..start + 1, "_");
    }
    if out.len() == start || out[start..].bytes().all(|b| b == b'.') {
        let n = (out.len() - start).max(1);
        out.truncate(start);
        out.extend(std::iter::repeat_n('_', n));
    }
}

/// Longest variant name: names become file and directory names (`env/<name>.sh`,
/// `build/<name>`), and most file systems allow 255 bytes per component.
pub const MAX_NAME: usize = 128;

/// Makes a joined name safe as a file name everywhere: a name longer than [`MAX_NAME`] keeps
/// its start and ends in a hash of the whole (so distinct long names stay distinct), and a
/// name Windows reserves for a device (`CON`, `nul.x`, `COM1`) gets a leading `_`.
pub fn finish_name(name: &mut String) {
    if name.len() > MAX_NAME {
        let digest = sha256_hex(name.as_bytes());
        // Slugs are ASCII, so any byte index is a character boundary.
        name.truncate(MAX_NAME - 17);
        name.push('-');
        name.push_str(&digest[..16]);
    }
    let base = name.split('.').next().unwrap_or("");
    let upper = base.to_ascii_uppercase();
    let reserved = matches!(upper.as_str(), "CON" | "PRN" | "AUX" | "NUL")
        || (upper.len() == 4
            && (upper.starts_with("COM") || upper.starts_with("LPT"))
            && upper.as_bytes()[3].is_ascii_digit());
    if reserved {
        name.insert(0, '_');
    }
}

#[cfg(test)]
mod slug_tests {
    #[test]
    fn names_are_capped_and_never_reserved_devices() {
        let long = "x".repeat(1000);
        let mut a = long.clone();
        super::finish_name(&mut a);
        let mut b = format!("{long}y");
        super::finish_name(&mut b);
        assert_eq!(a.len(), super::MAX_NAME);
        assert_ne!(a, b, "distinct long names stay distinct");
        for (n, want) in [
            ("CON", "_CON"),
            ("nul.x-gcc", "_nul.x-gcc"),
            ("com1", "_com1"),
            ("con-gcc", "con-gcc"),
            ("console", "console"),
            ("gcc", "gcc"),
        ] {
            let mut s = n.to_string();
            super::finish_name(&mut s);
            assert_eq!(s, want, "{n}");
        }
    }

    #[test]
    fn slugs_are_safe_file_names() {
        let cases = [
            ("gcc", "gcc"),
            ("openblas-openmp", "openblas-openmp"),
            ("gcc@10:", "gcc10"),
            ("gcc@10:13", "gcc10-13"),
            ("..", "__"),
            (".", "_"),
            ("", "_"),
            ("a/b", "a_b"),
            ("-rf", "_rf"),
            ("$(touch x)", "__touch_x_"),
            ("é", "_"),
        ];
        for (v, want) in cases {
            assert_eq!(super::slug(v), want, "{v:?}");
        }
    }
}

/// A variant's axis values in order (axes first, then include-added keys); serialises as a
/// JSON object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Axes(pub Vec<(Arc<str>, Arc<str>)>);

impl Axes {
    pub fn get(&self, key: &str) -> Option<&Arc<str>> {
        self.0.iter().find(|(k, _)| &**k == key).map(|(_, v)| v)
    }
    pub fn iter(&self) -> impl Iterator<Item = (&Arc<str>, &Arc<str>)> {
        self.0.iter().map(|(k, v)| (k, v))
    }
    pub fn keys(&self) -> impl Iterator<Item = &Arc<str>> {
        self.0.iter().map(|(k, _)| k)
    }
    pub fn values(&self) -> impl Iterator<Item = &Arc<str>> {
        self.0.iter().map(|(_, v)| v)
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'a> IntoIterator for &'a Axes {
    type Item = (&'a Arc<str>, &'a Arc<str>);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (Arc<str>, Arc<str>)>,
        fn(&'a (Arc<str>, Arc<str>)) -> (&'a Arc<str>, &'a Arc<str>),
    >;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(k, v)| (k, v))
    }
}

impl Serialize for Axes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (&**k, &**v)))
    }
}
