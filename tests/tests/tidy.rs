//! Tidy checks over the workspace's own sources (rust-analyzer's habit): what ARCHITECTURE.md
//! promises about every module, kept true by a test rather than by hope. The lints that go
//! with them (no `std::process::Command` outside cfgmx-exec, no printing outside the binary)
//! are in clippy.toml and the crates' `[lints]` tables.

use cfgmx_tests::repo;
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

fn sources() -> Vec<PathBuf> {
    let mut out = Vec::new();
    for c in std::fs::read_dir(repo().join("crates")).unwrap() {
        let src = c.unwrap().path().join("src");
        if src.is_dir() {
            rust_files(&src, &mut out);
        }
    }
    out.sort();
    assert!(out.len() > 20, "found only {} source files", out.len());
    out
}

/// Every module says what it is for in a `//!` header, first thing in the file.
#[test]
fn every_module_starts_with_a_header() {
    let missing: Vec<String> = sources()
        .into_iter()
        .filter(|p| {
            !std::fs::read_to_string(p)
                .unwrap()
                .trim_start()
                .starts_with("//!")
        })
        .map(|p| p.display().to_string())
        .collect();
    assert!(missing.is_empty(), "no //! header: {missing:#?}");
}

/// Only cfgmx-exec starts processes and only the binary prints: each library crate denies
/// printing, and clippy.toml disallows `std::process::Command::new` (the lints do the work;
/// this keeps them from being dropped).
#[test]
fn the_lints_that_keep_the_layers_stay_in_place() {
    let clippy = std::fs::read_to_string(repo().join("clippy.toml")).unwrap();
    assert!(
        clippy.contains("path = \"std::process::Command::new\""),
        "clippy.toml no longer disallows std::process::Command::new"
    );
    for c in ["model", "probe", "render", "build", "exec", "fs"] {
        let toml =
            std::fs::read_to_string(repo().join(format!("crates/cfgmx-{c}/Cargo.toml"))).unwrap();
        for lint in ["print_stdout = \"deny\"", "print_stderr = \"deny\""] {
            assert!(toml.contains(lint), "cfgmx-{c} does not deny {lint}");
        }
        let allows_processes = toml.contains("disallowed_methods = \"allow\"");
        assert_eq!(
            allows_processes,
            c == "exec",
            "cfgmx-{c}: who may start processes"
        );
    }
}

/// A compiler's spelling is data (`toolchains/`: `[driver]`, facets), never Rust or a template:
/// a flag or a linker's words written in code is one family's, and the next family (cl, with
/// `/D`, `/Fe`, `/link`) silently gets it. Tests inside the sources (after `#[cfg(test)]`)
/// may spell what they check; a line that spells another tool's argument (CMake's `-D`,
/// ctest's `-E`, `sh -c`) says so with `not a compiler's`. `.so` is left alone: the probe and
/// the runner read it in the names of files on disk (the platform's, not the compiler's).
#[test]
fn no_compiler_spelling_outside_the_data() {
    let flag = regex::Regex::new(
        r#""-(D|I|l|L|o|c|E|x|dM|Wl,|rpath|fopenmp|fPIC|O[0-3s]?|g)("|\{)|cannot find -l|undefined reference|unable to find library|"\.(o|a|obj|lib|dll)""#,
    )
    .unwrap();
    let mut files = sources();
    for e in std::fs::read_dir(repo().join("templates")).unwrap() {
        files.push(e.unwrap().path());
    }
    let mut found = Vec::new();
    for p in files {
        let text = std::fs::read_to_string(&p).unwrap();
        let code = text.split("\n#[cfg(test)]").next().unwrap_or("");
        for (i, line) in code.lines().enumerate() {
            let comment = line.trim_start().starts_with("//");
            if !comment && flag.is_match(line) && !line.contains("not a compiler's") {
                found.push(format!("{}:{}: {}", p.display(), i + 1, line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "compiler spellings in code (move them to toolchains/, `[driver]`):\n{}",
        found.join("\n")
    );
}

/// The OpenMP thread variable is spelled once (`cfgmx_model::OMP_NUM_THREADS`): resolution,
/// link tests, the probe and the build's test runs all set or clear the same name.
#[test]
fn omp_num_threads_is_spelled_once() {
    let mut at = Vec::new();
    for p in sources() {
        let text = std::fs::read_to_string(&p).unwrap();
        let code = text.split("\n#[cfg(test)]").next().unwrap_or("");
        for (i, line) in code.lines().enumerate() {
            if line.contains("\"OMP_NUM_THREADS\"") && !line.trim_start().starts_with("//") {
                at.push(format!("{}:{}", p.display(), i + 1));
            }
        }
    }
    assert_eq!(at.len(), 1, "{at:#?}");
    assert!(at[0].contains("cfgmx-model/src/lib.rs"), "{at:#?}");
}

/// Build modes and their CMake and Meson names are one table (`toolchains/base/defaults.toml`,
/// `[build_modes]`), not strings in code.
#[test]
fn build_type_names_live_in_the_build_modes_table() {
    let names =
        regex::Regex::new(r#""(RelWithDebInfo|MinSizeRel|debugoptimized|minsize)""#).unwrap();
    let mut at = Vec::new();
    for p in sources() {
        let text = std::fs::read_to_string(&p).unwrap();
        let code = text.split("\n#[cfg(test)]").next().unwrap_or("");
        for (i, line) in code.lines().enumerate() {
            if names.is_match(line) && !line.trim_start().starts_with("//") {
                at.push(format!("{}:{}: {}", p.display(), i + 1, line.trim()));
            }
        }
    }
    assert!(at.is_empty(), "{at:#?}");
}

/// A crate's modules, by path (`commands::build`; the crate root is not one of them), with the
/// text of each outside its `#[cfg(test)]` part (tests may reach anywhere).
struct Modules {
    files: std::collections::BTreeMap<String, (PathBuf, String)>,
}

/// The code of a source file without its tests (a top-level `#[cfg(test)]` and after) and
/// without its `//` comment lines.
fn code_of(text: &str) -> String {
    text.split("\n#[cfg(test)]")
        .next()
        .unwrap_or("")
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The `mod NAME;` declarations of `code`, leaving out `#[cfg(test)] mod NAME;`.
fn mod_declarations(code: &str) -> Vec<String> {
    let decl = regex::Regex::new(r"^\s*(pub(\([^)]*\))?\s+)?mod\s+(\w+)\s*;").unwrap();
    let mut out = Vec::new();
    let mut previous = "";
    for line in code.lines() {
        if let Some(c) = decl.captures(line) {
            if !previous.contains("#[cfg(test)]") {
                out.push(c[3].to_string());
            }
        }
        if !line.trim().is_empty() {
            previous = line;
        }
    }
    out
}

/// Walks a crate's `mod` declarations from its root (`src/lib.rs` or `src/main.rs`).
fn crate_modules(src: &Path) -> Modules {
    let root = ["lib.rs", "main.rs"]
        .iter()
        .map(|f| src.join(f))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{}: no lib.rs or main.rs", src.display()));
    let mut files = std::collections::BTreeMap::new();
    // (module path, its file, the directory its children's files are in)
    let mut todo = vec![(String::new(), root, src.to_path_buf())];
    while let Some((path, file, dir)) = todo.pop() {
        let code = code_of(&std::fs::read_to_string(&file).unwrap());
        for name in mod_declarations(&code) {
            let child = if path.is_empty() {
                name.clone()
            } else {
                format!("{path}::{name}")
            };
            let flat = dir.join(format!("{name}.rs"));
            let (f, d) = if flat.is_file() {
                (flat, dir.join(&name))
            } else {
                (dir.join(&name).join("mod.rs"), dir.join(&name))
            };
            assert!(f.is_file(), "{}: `mod {name};` has no file", file.display());
            todo.push((child, f, d));
        }
        if !path.is_empty() {
            files.insert(path, (file, code));
        }
    }
    Modules { files }
}

/// The modules of `known` that `code`, the text of module `me`, refers to by `crate::`,
/// `super::` or `self::` paths (a `use crate::{a, b::c}` group counts each item). A path
/// names the longest module it starts with; an item of the crate root names none.
fn references(me: &str, code: &str, known: &[&str]) -> std::collections::BTreeSet<String> {
    let path = regex::Regex::new(r"\b(crate|super|self)((?:::(?:super|\w+))*)(::\{)?").unwrap();
    let mut out = std::collections::BTreeSet::new();
    let mut add = |base: Vec<String>, rest: &str| {
        // the longest prefix of base + rest that is a module
        let mut segs = base;
        segs.extend(
            rest.split("::")
                .filter(|s| !s.is_empty())
                .map(str::to_string),
        );
        while !segs.is_empty() {
            let p = segs.join("::");
            if known.contains(&p.as_str()) {
                if p != me {
                    out.insert(p);
                }
                return;
            }
            segs.pop();
        }
    };
    let parent = |m: &str| -> Vec<String> {
        let mut s: Vec<String> = m.split("::").map(str::to_string).collect();
        s.pop();
        s
    };
    for c in path.captures_iter(code) {
        let mut base: Vec<String> = match &c[1] {
            "crate" => Vec::new(),
            "super" => parent(me),
            _ => me.split("::").map(str::to_string).collect(),
        };
        let mut rest = c[2].to_string();
        // `super::super::x`
        while let Some(r) = rest.strip_prefix("::super") {
            base.pop();
            rest = r.to_string();
        }
        if c.get(3).is_some() {
            // `use crate::x::{a, b::c}`: each item of the group, from where the brace opens
            let start = c.get(0).unwrap().end();
            let mut depth = 1;
            let mut end = start;
            for (i, ch) in code[start..].char_indices() {
                match ch {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    _ => {}
                }
                if depth == 0 {
                    end = start + i;
                    break;
                }
            }
            let mut prefix = base.clone();
            prefix.extend(
                rest.split("::")
                    .filter(|s| !s.is_empty())
                    .map(str::to_string),
            );
            for item in code[start..end].split(',') {
                let item = item.trim().trim_start_matches('{');
                let first: String = item
                    .chars()
                    .take_while(|c| *c == ':' || c.is_alphanumeric() || *c == '_')
                    .collect();
                add(prefix.clone(), &first);
            }
            add(prefix, "");
        } else {
            add(base, &rest);
        }
    }
    out
}

type Graph = std::collections::BTreeMap<String, std::collections::BTreeSet<String>>;

/// The import cycles of `graph`: its strongly connected components of more than one module
/// (Tarjan), each with one cycle through it spelled out (`a -> b -> a`).
fn cycles(graph: &Graph) -> Vec<(Vec<String>, String)> {
    struct State<'g> {
        graph: &'g Graph,
        index: std::collections::BTreeMap<&'g str, usize>,
        low: std::collections::BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on_stack: std::collections::BTreeSet<&'g str>,
        sccs: Vec<Vec<String>>,
    }
    fn visit<'g>(s: &mut State<'g>, v: &'g str) {
        let i = s.index.len();
        s.index.insert(v, i);
        s.low.insert(v, i);
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in s.graph.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if s.on_stack.contains(w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut scc = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                scc.push(w.to_string());
                if w == v {
                    break;
                }
            }
            scc.sort();
            s.sccs.push(scc);
        }
    }
    let mut s = State {
        graph,
        index: Default::default(),
        low: Default::default(),
        stack: Vec::new(),
        on_stack: Default::default(),
        sccs: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    let mut out: Vec<(Vec<String>, String)> = s
        .sccs
        .into_iter()
        .filter(|c| c.len() > 1)
        .map(|c| {
            let shown = one_cycle(graph, &c);
            (c, shown)
        })
        .collect();
    out.sort();
    out
}

/// A shortest cycle through the first module of `scc`, inside it (breadth first).
fn one_cycle(graph: &Graph, scc: &[String]) -> String {
    let start = &scc[0];
    let mut from: std::collections::BTreeMap<&str, &str> = Default::default();
    let mut queue = std::collections::VecDeque::from([start.as_str()]);
    while let Some(v) = queue.pop_front() {
        for w in graph.get(v).into_iter().flatten() {
            if !scc.contains(w) {
                continue;
            }
            if w == start {
                let mut path = vec![start.as_str(), v];
                let mut at = v;
                while at != start {
                    at = from[at];
                    path.push(at);
                }
                path.reverse();
                return path.join(" -> ");
            }
            if !from.contains_key(w.as_str()) {
                from.insert(w, v);
                queue.push_back(w);
            }
        }
    }
    scc.join(", ")
}

/// The module graph of crate directory `krate` (its `src/`): an edge per module it refers to.
fn module_graph(krate: &Path) -> Graph {
    let mods = crate_modules(&krate.join("src"));
    let known: Vec<&str> = mods.files.keys().map(String::as_str).collect();
    mods.files
        .iter()
        .map(|(m, (_, code))| (m.clone(), references(m, code, &known)))
        .collect()
}

/// Cycles that exist today, each to be broken by the engineer named (the lead empties this
/// list at merge). A cycle passes only when every module in it is in one entry: a cycle with
/// any other module fails, and so does an entry no cycle touches any more (remove it).
const KNOWN_CYCLES: &[(&str, &[&str])] = &[];

/// No import cycle between the modules of a crate (the crate root, which re-exports and
/// dispatches, is not one of them): a cycle is where "change one, understand all" starts.
#[test]
fn no_import_cycle_between_modules() {
    let mut found = Vec::new();
    let mut touched = std::collections::BTreeSet::new();
    for c in std::fs::read_dir(repo().join("crates")).unwrap() {
        let dir = c.unwrap().path();
        if !dir.join("src").is_dir() {
            continue;
        }
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        for (scc, shown) in cycles(&module_graph(&dir)) {
            for (i, (k, ms)) in KNOWN_CYCLES.iter().enumerate() {
                if *k == name && scc.iter().any(|m| ms.contains(&m.as_str())) {
                    touched.insert(i);
                }
            }
            let known = KNOWN_CYCLES
                .iter()
                .any(|(k, ms)| *k == name && scc.iter().all(|m| ms.contains(&m.as_str())));
            if !known {
                found.push(format!("{name}: {shown} (modules: {})", scc.join(", ")));
            }
        }
    }
    assert!(
        found.is_empty(),
        "import cycles between modules:\n{}",
        found.join("\n")
    );
    let stale: Vec<String> = KNOWN_CYCLES
        .iter()
        .enumerate()
        .filter(|(i, _)| !touched.contains(i))
        .map(|(_, (k, ms))| format!("{k}: {}", ms.join(", ")))
        .collect();
    assert!(
        stale.is_empty(),
        "KNOWN_CYCLES lists cycles that are gone (remove them): {stale:?}"
    );
}

/// The parser and the cycle finder on small hand-made inputs: the test above can fail.
#[test]
fn the_cycle_finder_finds_a_cycle_and_the_parser_its_edges() {
    let graph: Graph = [
        ("a", &["b"][..]),
        ("b", &["c"]),
        ("c", &["a", "d"]),
        ("d", &[]),
        ("e", &["d"]),
    ]
    .into_iter()
    .map(|(k, vs)| (k.to_string(), vs.iter().map(|v| v.to_string()).collect()))
    .collect();
    assert_eq!(
        cycles(&graph),
        [(
            vec!["a".into(), "b".into(), "c".into()],
            "a -> b -> c -> a".into()
        )]
    );
    let acyclic: Graph = graph
        .into_iter()
        .map(|(k, mut vs)| {
            vs.remove("a");
            (k, vs)
        })
        .collect();
    assert!(cycles(&acyclic).is_empty());
    let known = [
        "cli",
        "commands",
        "commands::build",
        "commands::show",
        "load",
        "error",
    ];
    let code = "use crate::{cli::Global, error::{CliError, Result}};\nuse super::build;\nfn f() { crate::load::Session::load(); self::x(); crate::Thing; }";
    let refs: Vec<String> = references("commands::show", &code_of(code), &known)
        .into_iter()
        .collect();
    assert_eq!(refs, ["cli", "commands::build", "error", "load"]);
    // `super::*` is the parent; `super::super::x` climbs twice
    let refs = references(
        "commands::show",
        "use super::*; super::super::cli::x();",
        &known,
    );
    assert_eq!(refs.into_iter().collect::<Vec<_>>(), ["cli", "commands"]);
    // tests and comments are not references
    let code = "// use crate::cli;\nfn f() {}\n#[cfg(test)]\nmod tests { use crate::load; }";
    assert!(references("commands::show", &code_of(code), &known).is_empty());
    assert_eq!(
        mod_declarations("pub mod a;\n#[cfg(test)]\nmod t;\nmod b;"),
        ["a", "b"]
    );
}

/// Commands never call each other (uv's habit): what two need lives in a module of its own
/// (`probing.rs`, `plan.rs`, `lockfile.rs`, `records.rs`), so a command is read alone.
#[test]
fn commands_never_refer_to_another_command() {
    let krate = repo().join("crates/cfgmx");
    let graph = module_graph(&krate);
    let mut found = Vec::new();
    for (m, refs) in &graph {
        let Some(cmd) = m.strip_prefix("commands::") else {
            continue;
        };
        for r in refs {
            if r == "commands" || r.starts_with("commands::") {
                found.push(format!("commands/{cmd}.rs refers to {r}"));
            }
        }
    }
    assert!(graph.contains_key("commands::build"), "{:?}", graph.keys());
    assert!(found.is_empty(), "{found:#?}");
}

/// Data files (toolchains/, providers/, mpi/, matrices/, profiles, templates, build results)
/// are read by load.rs alone in the CLI crate, through its one bounded reader: a second
/// reader is a second set of limits and messages. The files below read something else.
const KNOWN_READERS: &[(&str, &str)] = &[
    // Shell completion lists `*.toml` of the current directory and the lock's names while the
    // user types: it must never fail or print, so it reads leniently on its own.
    ("complete.rs", "completion candidates, never an error"),
    // Scratch and staging directories this process or a dead one left.
    ("leftovers.rs", "lists cfgmx's own scratch directories"),
    // The rendered text its own child process wrote.
    ("template_child.rs", "reads back its child's output"),
];

#[test]
fn data_files_are_read_only_in_load_rs() {
    let read = regex::Regex::new(
        r"\b(fs::read|fs::read_to_string|read_to_string\(|fs::read_dir|File::open|cfgmx_fs::read)",
    )
    .unwrap();
    let src = repo().join("crates/cfgmx/src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut found = Vec::new();
    let mut readers = std::collections::BTreeSet::new();
    for p in files {
        let rel = p.strip_prefix(&src).unwrap().display().to_string();
        let code = code_of(&std::fs::read_to_string(&p).unwrap());
        if !read.is_match(&code) {
            continue;
        }
        readers.insert(rel.clone());
        if rel != "load.rs" && !KNOWN_READERS.iter().any(|(f, _)| *f == rel) {
            for (i, l) in code.lines().enumerate().filter(|(_, l)| read.is_match(l)) {
                found.push(format!("{rel}:{}: {}", i + 1, l.trim()));
            }
        }
    }
    assert!(readers.contains("load.rs"), "{readers:?}");
    assert!(
        found.is_empty(),
        "reads outside load.rs (add a reader to load.rs and call it):\n{}",
        found.join("\n")
    );
}

/// One writer and one hash (ARCHITECTURE.md, "Atomic output"): only cfgmx-fs persists a
/// temporary file or syncs a file system, and only `cfgmx_model::hash` computes SHA-256, so a
/// second copy of either (without the fsyncs, or with another hex spelling) cannot creep back.
#[test]
fn one_atomic_writer_and_one_content_hash() {
    let mut stray = Vec::new();
    for p in sources() {
        let text = std::fs::read_to_string(&p).unwrap();
        let code = text.split("\n#[cfg(test)]").next().unwrap_or("");
        let path = p.to_string_lossy().replace('\\', "/");
        for (i, line) in code.lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            let writer = [".persist(", "tempfile_in(", "syncfs("]
                .iter()
                .any(|w| line.contains(w));
            if writer && !path.ends_with("crates/cfgmx-fs/src/lib.rs") {
                stray.push(format!("{path}:{}: {}", i + 1, line.trim()));
            }
            let hash = line.contains("sha2::") || line.contains("hex::encode");
            if hash && !path.ends_with("crates/cfgmx-model/src/hash.rs") {
                stray.push(format!("{path}:{}: {}", i + 1, line.trim()));
            }
        }
    }
    assert!(
        stray.is_empty(),
        "use cfgmx_fs's writers and cfgmx_model::hash: {stray:#?}"
    );
}

/// The functions of `text` longer than `limit` lines whose comment does not say why: `(name,
/// first line, length)`. A function runs from its `fn` line to the first `}` at its own
/// indentation (rustfmt's layout); its comment is the `///`/`//` and `#[...]` lines above it,
/// and "Long on purpose" there is the reason a reader looks for.
fn long_functions(text: &str, limit: usize) -> Vec<(String, usize, usize)> {
    let fn_line = regex::Regex::new(
        r"^(\s*)(?:pub(?:\([^)]*\))?\s+)?(?:const\s+)?(?:async\s+)?(?:unsafe\s+)?fn\s+(\w+)",
    )
    .unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let Some(c) = fn_line.captures(l) else {
            continue;
        };
        if l.trim_end().ends_with(';') {
            continue; // a trait method's signature
        }
        let close = format!("{}}}", &c[1]);
        let Some(len) = lines[i + 1..]
            .iter()
            .position(|x| x.trim_end() == close)
            .map(|k| k + 2)
        else {
            continue;
        };
        let said = lines[..i]
            .iter()
            .rev()
            .take_while(|x| {
                let t = x.trim_start();
                t.starts_with("//") || t.starts_with("#[")
            })
            .any(|x| x.contains("Long on purpose"));
        if len > limit && !said {
            out.push((c[2].to_string(), i + 1, len));
        }
    }
    out
}

/// Functions fit on a screen: none in crates/*/src runs over 100 lines unless its comment says
/// why (issue 11's rule; the long ones were split along the sections their comments named).
#[test]
fn no_function_over_a_hundred_lines_without_a_reason() {
    let sample = format!(
        "fn short() {{\n}}\n\n/// Long on purpose: a table.\nfn said() {{\n{0}}}\n\nfn long() {{\n{0}}}\n",
        "    x;\n".repeat(120)
    );
    let found = long_functions(&sample, 100);
    assert_eq!(
        found,
        vec![("long".to_string(), 128, 122)],
        "the finder itself"
    );
    let mut long = Vec::new();
    for p in sources() {
        for (name, line, len) in long_functions(&std::fs::read_to_string(&p).unwrap(), 100) {
            long.push(format!("{}:{line} {name} ({len} lines)", p.display()));
        }
    }
    assert!(
        long.is_empty(),
        "split these along their sections, or say in their comment why they are long \
         (\"Long on purpose: ...\"): {long:#?}"
    );
}
