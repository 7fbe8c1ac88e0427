//! Command-line definition. Help texts teach: each command says what it does, what it reads,
//! and gives an example.

use cfgmx_build::job::LOCK_FILE;
use cfgmx_render::Format;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

const AFTER_HELP: &str = "\
MATRIX is a matrix file (matrices/*.toml) or the name of an embedded one; it defaults to
`hpc16` (gcc, icc, pgi, xl x sequential/threaded BLAS x debug/release = 16 variants).

Hashes: a variant's spec hash covers what the matrix and descriptors ask for; its concrete
hash also covers what this machine gives (compiler paths and versions, the BLAS file), and is
recorded in cfgmx.lock by `build` and `expand --lock`. Both are shown as their first 12 hex
digits everywhere (tables, JSON `short_hash`, build directories, messages); show, env and
reproduce take a name or any hash prefix of at least 7 hex digits.

Examples:
  cfgmx init && cfgmx build cfgmx.toml   # a matrix of this machine's compilers, built here
  cfgmx expand                      # the 16 variants of hpc16, with hashes and flags
  cfgmx expand matrices/my.toml --jsonl | jq .name
  cfgmx show gcc-threaded-release   # one variant whole (by name or hash prefix)
  cfgmx diff gcc-threaded-release icc-threaded-release";

/// The top-level help's epilogue, with the exit codes from their one table.
fn after_help() -> String {
    let (head, examples) = AFTER_HELP
        .split_once("\n\nExamples:")
        .unwrap_or((AFTER_HELP, ""));
    format!(
        "{head}\n\nExit codes: {}.\n\nExamples:{examples}",
        crate::error::Exit::table_line()
    )
}

#[derive(Debug, Parser)]
#[command(
    name = "cfgmx",
    version,
    about = "Enumerate, probe, configure and build every toolchain variant of a numerical library",
    long_about = "cfgmx turns \"which compilers, which BLAS, which threading, which build mode\" into an \
explicit, hashed set of build variants. Toolchain descriptors (toolchains/*.toml) say how each \
compiler family spells OpenMP, debug, optimisation and PIC; a matrix (matrices/*.toml) names the \
axes; cfgmx expands it into variants, each with a content hash.",
    after_help = after_help()
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Clone, Args)]
pub struct Global {
    /// Print machine-readable JSON on stdout instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// Extra toolchain descriptors (*.toml); a file named like a builtin family replaces it.
    #[arg(long, value_name = "DIR", global = true)]
    pub toolchains: Option<PathBuf>,
    /// Extra BLAS provider descriptors (*.toml).
    #[arg(long, value_name = "DIR", global = true)]
    pub providers: Option<PathBuf>,
    /// Extra MPI implementation descriptors (*.toml); a file named like a builtin one replaces it.
    #[arg(long, value_name = "DIR", global = true)]
    pub mpi: Option<PathBuf>,
    /// Also search DIR for compilers (before PATH; its ../lib for BLAS) wherever this machine
    /// is probed: `probe`, `expand --probe`, `build`, `generate`. Repeatable.
    #[arg(long, value_name = "DIR", global = true)]
    pub search: Vec<PathBuf>,
    /// Wherever this machine is probed, ask the module system too (Lmod: `LMOD_CMD`,
    /// `MODULEPATH`): which modules provide compilers, MPI and BLAS, each loaded once in a clean
    /// child environment and probed; variants built from them load their modules.
    #[arg(long, global = true)]
    pub modules: bool,
    /// Colour the output: `auto` on a terminal unless NO_COLOR is set (CLICOLOR_FORCE forces
    /// it), `always` (also through a pipe, even with NO_COLOR), or `never`. JSON is never
    /// coloured.
    #[arg(
        long,
        value_enum,
        value_name = "WHEN",
        default_value = "auto",
        global = true
    )]
    pub color: ColorWhen,
    /// Show long reasons whole (wrapped) instead of one short phrase per table cell.
    #[arg(short, long, global = true)]
    pub verbose: bool,
}

/// When to colour (`--color`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorWhen {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a matrix for this machine: the compilers and BLAS builds it has, debug and release.
    #[command(
        after_help = "Probes this machine (cached), proves each candidate variant with a link test, and writes FILE (default cfgmx.toml) with the compiler families and versions found, sequential and threaded BLAS where both exist, and debug/release; variants that cannot be built here are left out with the reason in a comment. The matrix takes the languages of the project in --source (default: the current directory) when there is one. An existing FILE is kept unless --force.\n\nExamples:\n  cfgmx init && cfgmx build cfgmx.toml\n  cfgmx init ci.toml --source ~/src/mylib"
    )]
    Init(InitArgs),
    /// List a matrix's variants with their hashes and resolved flags.
    #[command(
        after_help = "Examples:\n  cfgmx expand\n  cfgmx expand matrices/solver.toml --json\n  cfgmx expand --jsonl > variants.jsonl   # streams; constant memory"
    )]
    Expand(ExpandArgs),
    /// Print one variant whole: axes, compilers, flags, env, hashes.
    #[command(
        after_help = "HASH_OR_NAME is a variant name (gcc-threaded-debug) or a prefix of its spec hash (at least 7 hex digits: `cfgmx --help`, Hashes) in MATRIX, or of a concrete or spec hash in ./cfgmx.lock, which holds every matrix built in this directory; a variant from the lock is shown as it was built.\n\nExamples:\n  cfgmx show gcc-threaded-debug\n  cfgmx show gcc-threaded-debug --spec   # the exact documents the hash is computed from\n  cfgmx show 5f71adba34e2                # a concrete hash from a build's table"
    )]
    Show(ShowArgs),
    /// Say exactly which inputs make two variants' hashes differ.
    #[command(
        after_help = "A and B are names or hash prefixes in MATRIX; either may be written FILE.toml#NAME to take it from another matrix file.\n\nExample:\n  cfgmx diff gcc-threaded-debug gcc-sequential-debug"
    )]
    Diff(DiffArgs),
    /// Find this machine's compilers, MPI wrappers and BLAS builds and test what really works.
    #[command(
        after_help = "The result is cached, keyed by the compiler and BLAS files found (each one's path, resolved file, device, inode, size and mtime) and the descriptors and options: a second probe on an unchanged machine runs nothing; a compiler installed or replaced since is probed.\n\nExamples:\n  cfgmx probe\n  cfgmx probe --search /opt/intel/bin --timeout 20 --json\n  cfgmx probe --fresh"
    )]
    Probe(ProbeArgs),
    /// Write CMake presets, toolchain/cache files, Meson native files, env scripts, Lmod
    /// modules or CI matrices for a matrix's variants.
    #[command(
        after_help = "Examples:\n  cfgmx generate -f cmake-presets -o .          # CMakePresets.json: cmake --preset NAME\n  cfgmx generate -f env -o cfgmx --profile profile.json\n  cfgmx generate -f github                       # one-line JSON for fromJSON()\n  cfgmx generate -f github-workflow -o .         # a job per variant, then a merge\n  cfgmx generate -f slurm -o . && sh slurm/submit.sh   # job arrays + a merge job after them\n  cfgmx generate -f lmod -o mods                 # Core/<compiler> + Compiler/... tree\n  cfgmx generate --template mine.md.tera         # your own template (docs/templates.md)"
    )]
    Generate(GenerateArgs),
    /// List the toolchain descriptors (compiler families) and their facets.
    #[command(
        after_help = "Examples:\n  cfgmx toolchains                 # one row per family\n  cfgmx toolchains clang           # one family whole: names, version rules, identity, facets\n  cfgmx toolchains clang --json    # the descriptor as JSON"
    )]
    Toolchains(ToolchainsArgs),
    /// List the BLAS providers and their builds (threading, link line, thread variables).
    Providers(ProvidersArgs),
    /// Configure, build and test every available variant of a project in parallel.
    #[command(
        after_help = "A variant passes only when tests ran and passed: results come from ctest's JUnit output (CMake >= 3.21) or Meson's testlog.json; a variant that ran no test is `no tests` and exits 1 unless --allow-no-tests. Threaded variants test with the matrix's `threads` (default 2) and need -j at least that. A matrix without `languages` takes them from the project's CMakeLists.txt or meson.build.\n\nExamples:\n  cfgmx build                       # the project in the current directory\n  cfgmx build --source ~/src/mylib --profile profile.json\n  cfgmx build matrices/solver.toml -j 8 --only gcc --html report.html\n  cfgmx build --source . --shard 2/4 --json > shard-2.json   # on CI runner 2 of 4"
    )]
    Build(BuildArgs),
    /// Work with `cfgmx build --json` results (merge shards).
    Report(ReportArgs),
    /// Print a sourceable sh script with one variant's compilers, flags and env (from cfgmx.lock).
    #[command(
        after_help = "VARIANT is a name or a prefix (at least 7 hex digits) of a concrete or spec hash recorded in the lock file by `cfgmx build` or `cfgmx expand --lock`; the lock holds every matrix built in its directory.\n\nExample:\n  eval \"$(cfgmx env 5f71adba34e2)\" && cmake -S . -B build"
    )]
    Env(EnvArgs),
    /// Set up one variant's build directory from cfgmx.lock, configured, to debug it.
    #[command(
        after_help = "VARIANT is a name or a prefix (at least 7 hex digits) of a concrete or spec hash recorded in the lock file; the project is the current directory unless --source says otherwise.\n\nExample:\n  cfgmx reproduce 5f71adba34e2 && cmake --build cfgmx-build/5f71adba34e2"
    )]
    Reproduce(ReproduceArgs),
    /// Print a shell completion script.
    #[command(
        after_help = "The script completes subcommands, options and format names. To also complete matrices, variant names and the hashes in ./cfgmx.lock, let cfgmx answer the shell itself: `source <(COMPLETE=bash cfgmx)` in ~/.bashrc (COMPLETE=zsh, fish, elvish or powershell likewise).\n\nExamples:\n  cfgmx completions bash > /etc/bash_completion.d/cfgmx\n  echo 'source <(COMPLETE=bash cfgmx)' >> ~/.bashrc"
    )]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

impl Global {
    /// These options as a command on matrix `m` uses them: its `[probe] modules = true` asks
    /// for what `--modules` does.
    pub fn with_matrix(&self, m: &cfgmx_model::Matrix) -> Global {
        let mut g = self.clone();
        g.modules |= m.probe_modules;
        g
    }
}

// The arguments of each command, in the order of `Command`.

#[derive(Debug, Args, Clone, Default)]
pub struct ProbeArgs {
    /// Seconds any one probe command may run before it is reported as hung.
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = parse_secs)]
    pub timeout: f64,
    /// Ignore the cached profile and probe again.
    #[arg(long)]
    pub fresh: bool,
    /// Facets to test besides openmp (debug, pic, cxx17, ...). Repeatable.
    #[arg(long, value_name = "NAME")]
    pub facet: Vec<String>,
    /// Parallel probe jobs (default: CPUs + 1: one more than the cores keeps them busy while a
    /// job waits between its compiler runs; more only time-share the cores).
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
}

fn parse_secs(s: &str) -> std::result::Result<f64, String> {
    match s.parse::<f64>() {
        // Past a year the deadline overflows the clock (a panic, not a message).
        Ok(v) if v > 365.0 * 24.0 * 3600.0 && v.is_finite() => {
            Err(format!("`{s}` seconds is more than a year"))
        }
        Ok(v) if v > 0.0 && v.is_finite() => Ok(v),
        _ => Err(format!("`{s}` is not a positive number of seconds")),
    }
}

#[derive(Debug, Args)]
pub struct ExpandArgs {
    /// Matrix file or embedded matrix name (default: hpc16).
    #[arg(add = clap_complete::engine::ArgValueCompleter::new(crate::complete::matrices))]
    pub matrix: Option<String>,
    /// Stream one JSON record per line as variants are resolved (constant memory; full hashes,
    /// since a unique short prefix needs the whole set).
    #[arg(long, conflicts_with = "json")]
    pub jsonl: bool,
    /// Check each variant against this machine (the cached probe, probing if there is none):
    /// available or why not, and a concrete hash.
    #[arg(long, conflicts_with_all = ["jsonl", "profile"])]
    pub probe: bool,
    /// Write the concrete variants, keyed by hash, to cfgmx.lock (probing this machine unless
    /// --profile is given).
    #[arg(long)]
    pub lock: bool,
    /// Check each variant against a profile written by `cfgmx probe --json` (also for --lock).
    #[arg(long, value_name = "FILE", conflicts_with = "jsonl")]
    pub profile: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Variant name, or a prefix of its spec or concrete hash.
    #[arg(
        value_name = "HASH_OR_NAME",
        add = clap_complete::engine::ArgValueCompleter::new(crate::complete::variants)
    )]
    pub variant: String,
    /// Matrix file or embedded matrix name (default: hpc16).
    #[arg(add = clap_complete::engine::ArgValueCompleter::new(crate::complete::matrices))]
    pub matrix: Option<String>,
    /// Print the documents the spec hash is computed from.
    #[arg(long)]
    pub spec: bool,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// First variant: name or hash prefix, or FILE.toml#NAME.
    #[arg(add = clap_complete::engine::ArgValueCompleter::new(crate::complete::variants))]
    pub a: String,
    /// Second variant: name or hash prefix, or FILE.toml#NAME.
    #[arg(add = clap_complete::engine::ArgValueCompleter::new(crate::complete::variants))]
    pub b: String,
    /// Matrix the names refer to (default: hpc16).
    #[arg(add = clap_complete::engine::ArgValueCompleter::new(crate::complete::matrices))]
    pub matrix: Option<String>,
}

/// `-f`: one of the renderer's formats (cfgmx-render's `FORMATS`), listed with its help in
/// `--help` and offered, with the same help, by shell completion.
fn format_parser() -> impl clap::builder::TypedValueParser<Value = Format> {
    use clap::builder::{PossibleValue, TypedValueParser};
    clap::builder::PossibleValuesParser::new(
        cfgmx_render::FORMATS
            .iter()
            .map(|f| PossibleValue::new(f.name).help(f.help)),
    )
    .map(|s| s.parse::<Format>().expect("a format from FORMATS"))
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Matrix file or embedded matrix name (default: hpc16).
    #[arg(add = clap_complete::engine::ArgValueCompleter::new(crate::complete::matrices))]
    pub matrix: Option<String>,
    /// Output format.
    #[arg(
        short = 'f',
        long,
        value_name = "FORMAT",
        required_unless_present = "template",
        value_parser = format_parser()
    )]
    pub format: Option<Format>,
    /// Render your own tera template against the same context (see docs/templates.md).
    #[arg(long, value_name = "FILE", conflicts_with = "format")]
    pub template: Option<PathBuf>,
    /// Write the files under DIR (atomically) instead of printing a single file on stdout.
    #[arg(short = 'o', long, value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// Overwrite files in DIR that cfgmx did not generate (or that were edited since).
    #[arg(long)]
    pub force: bool,
    /// Include variants the profile says cannot be built here.
    #[arg(long)]
    pub all: bool,
    /// cmake-presets: merge into DIR/CMakePresets.json, keeping the user's own presets.
    #[arg(long, requires = "output")]
    pub merge: bool,
    /// A machine profile (JSON, as `cfgmx probe --json` writes): real compiler paths, probed
    /// flags and BLAS directories. Default: the cached profile of the last `cfgmx probe` if
    /// the machine is unchanged, else abstract variants.
    #[arg(long, value_name = "FILE")]
    pub profile: Option<PathBuf>,
    /// github-workflow, gitlab: where the jobs install cfgmx from: `git+URL` (cargo install
    /// --git), an `https://` URL of a prebuilt binary, or a directory in the repository (cargo
    /// install --path). Default: crates.io, this cfgmx's version.
    #[arg(long, value_name = "SOURCE")]
    pub cfgmx_from: Option<String>,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The matrix file to write.
    #[arg(default_value = "cfgmx.toml")]
    pub file: PathBuf,
    /// Overwrite the file if it exists.
    #[arg(long)]
    pub force: bool,
    /// The project whose languages the matrix takes (its CMakeLists.txt or meson.build);
    /// without one, every language a compiler was found for.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub source: PathBuf,
}

#[derive(Debug, Args)]
pub struct ToolchainsArgs {
    /// Show one family whole (executables, version rules, identity macros, every facet);
    /// with --json, the descriptor as JSON.
    pub family: Option<String>,
}

#[derive(Debug, Args)]
pub struct ProvidersArgs {}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SystemArg {
    Cmake,
    Meson,
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Matrix file or embedded matrix name (default: hpc16).
    #[arg(add = clap_complete::engine::ArgValueCompleter::new(crate::complete::matrices))]
    pub matrix: Option<String>,
    /// The project to build (its top directory: CMakeLists.txt or meson.build).
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub source: PathBuf,
    /// Where build dirs, logs and records go.
    #[arg(long, value_name = "DIR", default_value = "cfgmx-build")]
    pub build_root: PathBuf,
    /// Cores shared by every variant and the tools inside them (default: all).
    #[arg(short = 'j', long = "jobs", value_name = "N")]
    pub jobs: Option<usize>,
    /// At most N ranks per MPI test (MPIEXEC_MAX_NUMPROCS; default: the cores over the
    /// variant's threads). A Slurm array task passes its allocation's task count.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub mpi_ranks: Option<u32>,
    /// Build system (default: detected from the source tree).
    #[arg(long, value_enum)]
    pub system: Option<SystemArg>,
    /// Only variants whose name contains PATTERN (`*` wildcards) or whose hash starts with it.
    #[arg(long, value_name = "PATTERN")]
    pub only: Vec<String>,
    /// Leave out variants matching PATTERN.
    #[arg(long, value_name = "PATTERN")]
    pub skip: Vec<String>,
    /// Stop starting variants after the first failure.
    #[arg(long)]
    pub fail_fast: bool,
    /// Rebuild variants that passed with an unchanged source tree.
    #[arg(long)]
    pub force: bool,
    /// Build each variant from its own copy of the source, whatever cfgmx knows of the project
    /// (one found to write into its tree is built from copies already).
    #[arg(long)]
    pub copy_source: bool,
    /// Python projects: put each wheel through `auditwheel repair` (installed into the
    /// variant's environment), so it carries its BLAS and OpenMP runtime inside instead of a
    /// RUNPATH into this machine's directories.
    #[arg(long)]
    pub repair: bool,
    /// Build shard K of N (deterministic; every variant lands in exactly one shard).
    #[arg(long, value_name = "K/N")]
    pub shard: Option<String>,
    /// Machine profile (JSON written by `cfgmx probe --json`; default: probe this machine,
    /// cached).
    #[arg(long, value_name = "FILE")]
    pub profile: Option<PathBuf>,
    /// Wait for another build using the same build root instead of refusing.
    #[arg(long)]
    pub wait: bool,
    /// Write a JUnit XML report (one test case per variant and step).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Write a self-contained HTML report (grid compiler x blas x build).
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Time limit for one step, in seconds.
    #[arg(long, value_name = "SECS", value_parser = parse_step_timeout)]
    pub step_timeout: Option<u64>,
    /// Exit 0 even when a variant ran no test (its status stays "no tests", never "passed").
    #[arg(long)]
    pub allow_no_tests: bool,
}

/// A limit of 0 s would fail every step at once (each would "time out" before it started), so
/// it is refused as a usage error rather than read as "no limit" or run. A year is the upper
/// bound: a deadline far past it overflows the clock (a panic, not a message).
fn parse_step_timeout(s: &str) -> std::result::Result<u64, String> {
    const YEAR: u64 = 365 * 24 * 3600;
    match s.parse::<u64>() {
        Ok(0) => Err("a step needs at least 1 second (0 would fail every step)".into()),
        Ok(v) if v > YEAR => Err(format!("{v} s is more than a year ({YEAR} s)")),
        Ok(v) => Ok(v),
        Err(_) => Err(format!("`{s}` is not a whole number of seconds")),
    }
}

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Combine the `--json` results of several shards into one table, JUnit file and HTML page.
    Merge(MergeArgs),
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    #[command(subcommand)]
    pub command: ReportCommand,
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// JSON results (`cfgmx build --json > shard-1.json`).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Exit 0 even when a variant ran no test.
    #[arg(long)]
    pub allow_no_tests: bool,
}

#[derive(Debug, Args)]
pub struct EnvArgs {
    /// Variant name or hash prefix (concrete or spec) in the lock file.
    #[arg(add = clap_complete::engine::ArgValueCompleter::new(crate::complete::variants))]
    pub variant: String,
    /// Lock file.
    #[arg(long, value_name = "FILE", default_value = LOCK_FILE)]
    pub lock: PathBuf,
}

#[derive(Debug, Args)]
pub struct ReproduceArgs {
    /// Variant name or hash prefix (concrete or spec) in the lock file.
    #[arg(add = clap_complete::engine::ArgValueCompleter::new(crate::complete::variants))]
    pub variant: String,
    /// The project (its top directory: CMakeLists.txt or meson.build).
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub source: PathBuf,
    /// Where the build directory goes.
    #[arg(long, value_name = "DIR", default_value = "cfgmx-build")]
    pub build_root: PathBuf,
    /// Lock file to take the variant from.
    #[arg(long, value_name = "FILE", default_value = LOCK_FILE)]
    pub lock: PathBuf,
    #[arg(long, value_enum)]
    pub system: Option<SystemArg>,
}
