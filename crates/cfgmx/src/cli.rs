//! Command-line definition. Help texts teach: each command says what it does, what it reads,
//! and gives an example.

use crate::commands;
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

Exit codes: 0 ok, 1 some variant failed, 2 bad input or usage, 130 interrupted.

Examples:
  cfgmx init && cfgmx build cfgmx.toml   # a matrix of this machine's compilers, built here
  cfgmx expand                      # the 16 variants of hpc16, with hashes and flags
  cfgmx expand matrices/my.toml --jsonl | jq .name
  cfgmx show gcc-threaded-release   # one variant whole (by name or hash prefix)
  cfgmx diff gcc-threaded-release icc-threaded-release";

#[derive(Debug, Parser)]
#[command(
    name = "cfgmx",
    version,
    about = "Enumerate, probe, configure and build every toolchain variant of a numerical library",
    long_about = "cfgmx turns \"which compilers, which BLAS, which threading, which build mode\" into an \
explicit, hashed set of build variants. Toolchain descriptors (toolchains/*.toml) say how each \
compiler family spells OpenMP, debug, optimisation and PIC; a matrix (matrices/*.toml) names the \
axes; cfgmx expands it into variants, each with a content hash.",
    after_help = AFTER_HELP
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
    Init(commands::init::InitArgs),
    /// List a matrix's variants with their hashes and resolved flags.
    #[command(
        after_help = "Examples:\n  cfgmx expand\n  cfgmx expand matrices/solver.toml --json\n  cfgmx expand --jsonl > variants.jsonl   # streams; constant memory"
    )]
    Expand(commands::expand::ExpandArgs),
    /// Print one variant whole: axes, compilers, flags, env, hashes.
    #[command(
        after_help = "HASH_OR_NAME is a variant name (gcc-threaded-debug) or a prefix of its spec hash (at least 7 hex digits: `cfgmx --help`, Hashes) in MATRIX, or of a concrete or spec hash in ./cfgmx.lock, which holds every matrix built in this directory; a variant from the lock is shown as it was built.\n\nExamples:\n  cfgmx show gcc-threaded-debug\n  cfgmx show gcc-threaded-debug --spec   # the exact documents the hash is computed from\n  cfgmx show 5f71adba34e2                # a concrete hash from a build's table"
    )]
    Show(commands::show::ShowArgs),
    /// Say exactly which inputs make two variants' hashes differ.
    #[command(
        after_help = "A and B are names or hash prefixes in MATRIX; either may be written FILE.toml#NAME to take it from another matrix file.\n\nExample:\n  cfgmx diff gcc-threaded-debug gcc-sequential-debug"
    )]
    Diff(commands::diff::DiffArgs),
    /// Find this machine's compilers, MPI wrappers and BLAS builds and test what really works.
    #[command(
        after_help = "The result is cached, keyed by the compiler and BLAS files found (each one's path, resolved file, device, inode, size and mtime) and the descriptors and options: a second probe on an unchanged machine runs nothing; a compiler installed or replaced since is probed.\n\nExamples:\n  cfgmx probe\n  cfgmx probe --search /opt/intel/bin --timeout 20 --json\n  cfgmx probe --fresh"
    )]
    Probe(commands::probe::ProbeArgs),
    /// Write CMake presets, toolchain/cache files, Meson native files, env scripts, Lmod
    /// modules or CI matrices for a matrix's variants.
    #[command(
        after_help = "Examples:\n  cfgmx generate -f cmake-presets -o .          # CMakePresets.json: cmake --preset NAME\n  cfgmx generate -f env -o cfgmx --profile profile.json\n  cfgmx generate -f github                       # one-line JSON for fromJSON()\n  cfgmx generate -f github-workflow -o .         # a job per variant, then a merge\n  cfgmx generate -f slurm -o . && sh slurm/submit.sh   # job arrays + a merge job after them\n  cfgmx generate -f lmod -o mods                 # Core/<compiler> + Compiler/... tree\n  cfgmx generate --template mine.md.tera         # your own template (docs/templates.md)"
    )]
    Generate(commands::generate::GenerateArgs),
    /// List the toolchain descriptors (compiler families) and their facets.
    #[command(
        after_help = "Examples:\n  cfgmx toolchains                 # one row per family\n  cfgmx toolchains clang           # one family whole: names, version rules, identity, facets\n  cfgmx toolchains clang --json    # the descriptor as JSON"
    )]
    Toolchains(commands::toolchains::ToolchainsArgs),
    /// List the BLAS providers and their builds (threading, link line, thread variables).
    Providers(commands::toolchains::ProvidersArgs),
    /// Configure, build and test every available variant of a project in parallel.
    #[command(
        after_help = "A variant passes only when tests ran and passed: results come from ctest's JUnit output (CMake >= 3.21) or Meson's testlog.json; a variant that ran no test is `no tests` and exits 1 unless --allow-no-tests. Threaded variants test with the matrix's `threads` (default 2) and need -j at least that. A matrix without `languages` takes them from the project's CMakeLists.txt or meson.build.\n\nExamples:\n  cfgmx build                       # the project in the current directory\n  cfgmx build --source ~/src/mylib --profile profile.json\n  cfgmx build matrices/solver.toml -j 8 --only gcc --html report.html\n  cfgmx build --source . --shard 2/4 --json > shard-2.json   # on CI runner 2 of 4"
    )]
    Build(commands::build::BuildArgs),
    /// Work with `cfgmx build --json` results (merge shards).
    Report(commands::build::ReportArgs),
    /// Print a sourceable sh script with one variant's compilers, flags and env (from cfgmx.lock).
    #[command(
        after_help = "VARIANT is a name or a prefix (at least 7 hex digits) of a concrete or spec hash recorded in the lock file by `cfgmx build` or `cfgmx expand --lock`; the lock holds every matrix built in its directory.\n\nExample:\n  eval \"$(cfgmx env 5f71adba34e2)\" && cmake -S . -B build"
    )]
    Env(commands::build::EnvArgs),
    /// Set up one variant's build directory from cfgmx.lock, configured, to debug it.
    #[command(
        after_help = "VARIANT is a name or a prefix (at least 7 hex digits) of a concrete or spec hash recorded in the lock file; the project is the current directory unless --source says otherwise.\n\nExample:\n  cfgmx reproduce 5f71adba34e2 && cmake --build cfgmx-build/5f71adba34e2"
    )]
    Reproduce(commands::build::ReproduceArgs),
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
