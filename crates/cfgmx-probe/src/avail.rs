//! Asking a module system which modules there are ([`query`]): Lmod's spider, at once; else
//! level by level (`module avail` in JSON or terse form: Environment Modules, an Lmod whose
//! spider has no JSON), each answer listing the modules of the `MODULEPATH` directories in
//! reach, so the hierarchy (a compiler module that `module use`s its MPI level) is followed
//! by loading each candidate in a clean child and asking again; a directory that appears only
//! then is the level that module opens. That child runs the probe helper too, so each
//! candidate is loaded once in all (its answer kept in the [`Tree`]). Loads of one level run
//! in parallel within the probe's jobs. Never loads anything into cfgmx's own environment.

use crate::modules::{clean, dir_state, load_and_probe, query_cmd, wanted};
use crate::modules::{Candidate, Form, Helper, ModuleOptions, Query, Stream, Tree};
use crate::ProbeEvent;
use cfgmx_exec::Cmd;
use cfgmx_model::Registry;
use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

/// How deep the walk follows levels: Core -> compiler -> MPI -> library, and one more.
const MAX_DEPTH: usize = 4;

/// One module of an answer: the directory it is in and its full name (`gcc/12`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Entry {
    pub dir: PathBuf,
    pub name: String,
}

/// Asks the module system which modules there are, by the first of its queries (data file)
/// that answers: Lmod's spider walks the whole hierarchy in one run; `avail` (JSON or terse)
/// answers one level, and the hierarchy is followed by loading ([`walk`]). A
/// query the system's version lacks is skipped; one that fails or answers nothing readable
/// gives way to the next.
pub(crate) fn query(
    reg: &Registry,
    mo: &ModuleOptions,
    helper: &Helper,
    timeout: Duration,
    jobs: usize,
    on_event: &(dyn Fn(ProbeEvent) + Sync),
) -> Result<Tree, String> {
    let sys = mo.sys();
    let mut version: Option<Option<String>> = None;
    let mut why = Vec::new();
    for q in &sys.query {
        if let Some(since) = &q.since {
            let v = version.get_or_insert_with(|| system_version(mo, timeout));
            if let Some(v) = v {
                if older(v, since) {
                    why.push(format!(
                        "{} {v} has no {:?} answer (since {since})",
                        sys.title, q.form
                    ));
                    continue;
                }
            }
        }
        let answer = if q.form == Form::SpiderJson {
            spider(reg, mo, q, timeout)
        } else {
            walk(reg, mo, q, helper, timeout, jobs, on_event)
        };
        match answer {
            Ok(tree) => return Ok(tree),
            Err(e) => why.push(e),
        }
    }
    Err(format!(
        "{} answered none of its queries: {}",
        sys.title,
        why.join("; ")
    ))
}

/// The system's version, from its `version` answer (`None` when it gives none).
fn system_version(mo: &ModuleOptions, timeout: Duration) -> Option<String> {
    let sys = mo.sys();
    let o = clean(Cmd::new(&mo.command), mo)
        .args(&sys.version)
        .timeout(timeout)
        .output();
    let text = o.combined();
    let at = text.find(&sys.version_after)? + sys.version_after.len();
    let v: String = text[at..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    (!v.is_empty()).then_some(v)
}

/// Whether dotted version `v` is before `since` (numerically, part by part).
fn older(v: &str, since: &str) -> bool {
    let parts = |s: &str| -> Vec<u64> { s.split('.').map(|p| p.parse().unwrap_or(0)).collect() };
    parts(v) < parts(since)
}

/// Asks spider once for the whole hierarchy.
fn spider(
    reg: &Registry,
    mo: &ModuleOptions,
    q: &Query,
    timeout: Duration,
) -> Result<Tree, String> {
    let (command, out) = answer(mo, q, timeout)?;
    if out.trim().is_empty() {
        return Err(format!("`{command}` printed nothing"));
    }
    crate::modules::parse_spider(reg, &out, &mo.module_dirs())
        .map_err(|e| format!("`{command}`: {e}"))
}

/// The walk: the first answer (nothing loaded), then one per candidate, level by level. Each
/// candidate's child loads it once and both asks the query under it and runs the probe helper
/// ([`load_and_probe`]); the helper's answer is kept in the tree for `probe_modules`.
pub(crate) fn walk(
    reg: &Registry,
    mo: &ModuleOptions,
    q: &Query,
    helper: &Helper,
    timeout: Duration,
    jobs: usize,
    on_event: &(dyn Fn(ProbeEvent) + Sync),
) -> Result<Tree, String> {
    let mut tree = Tree {
        dirs: mo.module_dirs(),
        ..Tree::default()
    };
    // Each directory's state before any of its modules is loaded (see `Tree::state`).
    for d in &tree.dirs {
        tree.states.insert(d.clone(), dir_state(d));
    }
    let first = ask(mo, q, timeout)?;
    // The loaded children's level answers, one file each.
    let scratch = tempfile::Builder::new()
        .prefix("cfgmx-modules-")
        .tempdir()
        .map_err(|e| format!("cannot create a scratch directory: {e}"))?;
    let mut seen = HashSet::new();
    // Each candidate to expand, with the directories in reach when it was listed.
    let mut frontier: Vec<(Candidate, HashSet<PathBuf>)> = Vec::new();
    let mut add =
        |tree: &mut Tree, parents: &[String], entries: Vec<Entry>, before: &HashSet<PathBuf>| {
            let now: HashSet<PathBuf> = before
                .iter()
                .cloned()
                .chain(entries.iter().map(|e| e.dir.clone()))
                .collect();
            let mut out = Vec::new();
            for e in entries {
                if !tree.dirs.contains(&e.dir) {
                    tree.states.insert(e.dir.clone(), dir_state(&e.dir));
                    tree.dirs.push(e.dir.clone());
                }
                // Under a parent, only what its load brought into reach is its level.
                if !parents.is_empty() && before.contains(&e.dir) {
                    continue;
                }
                let short = e.name.rsplit_once('/').map_or(e.name.as_str(), |(n, _)| n);
                if !wanted(reg, short) || !seen.insert(e.clone()) {
                    continue;
                }
                let mut load = parents.to_vec();
                load.push(e.name.clone());
                let c = Candidate { load };
                tree.candidates.push(c.clone());
                out.push((c, now.clone()));
            }
            out
        };
    let roots: HashSet<PathBuf> = tree.dirs.iter().cloned().collect();
    frontier.extend(add(&mut tree, &[], first, &roots));
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs.max(1))
        .build()
        .ok();
    for depth in 0..MAX_DEPTH {
        if frontier.is_empty() {
            break;
        }
        let level = Level {
            mo,
            helper,
            q,
            scratch: scratch.path(),
            depth,
        };
        let answers = level.load(&frontier, pool.as_ref(), on_event);
        let mut next = Vec::new();
        for ((c, before), (entries, probed)) in frontier.iter().zip(answers) {
            // A module that does not load opens nothing; its probe answer says why.
            if let Ok(entries) = entries {
                next.extend(add(&mut tree, &c.load, entries, before));
            }
            tree.probed.insert(c.load.clone(), probed);
        }
        frontier = next;
    }
    tree.candidates.sort_by(|a, b| a.load.cmp(&b.load));
    Ok(tree)
}

/// One level of the walk: what its candidates' loaded children need.
struct Level<'a> {
    mo: &'a ModuleOptions,
    helper: &'a Helper,
    q: &'a Query,
    /// Where each child writes its level answer (`DEPTH-INDEX`).
    scratch: &'a std::path::Path,
    depth: usize,
}

/// A candidate's level answer (what its load brought into reach) and its probe answer.
type Answered = (
    Result<Vec<Entry>, String>,
    Result<crate::modules::HelperAnswer, String>,
);

impl Level<'_> {
    /// Loads each candidate once, in parallel within `pool`: its child answers the level
    /// query and then runs the probe helper.
    fn load(
        &self,
        frontier: &[(Candidate, HashSet<PathBuf>)],
        pool: Option<&rayon::ThreadPool>,
        on_event: &(dyn Fn(ProbeEvent) + Sync),
    ) -> Vec<Answered> {
        // Each level is a phase of the progress display: its size is known only once the
        // level above has answered.
        on_event(ProbeEvent::Phase {
            name: "modules",
            total: frontier.len(),
        });
        let go = || {
            use rayon::prelude::*;
            frontier
                .par_iter()
                .enumerate()
                .map(|(i, (c, _))| {
                    let file = self.scratch.join(format!("{}-{i}", self.depth));
                    let probed = load_and_probe(self.mo, self.helper, c, Some((self.q, &file)));
                    on_event(ProbeEvent::Step {
                        what: c.load.join(" "),
                    });
                    (level(self.q, &file), probed)
                })
                .collect::<Vec<_>>()
        };
        match pool {
            Some(p) => p.install(go),
            None => go(),
        }
    }
}

/// The first answer, nothing loaded (in the clean environment).
fn ask(mo: &ModuleOptions, q: &Query, timeout: Duration) -> Result<Vec<Entry>, String> {
    let (command, text) = answer(mo, q, timeout)?;
    parse(q, &text).map_err(|e| format!("`{command}`: {e}"))
}

/// Runs query `q` in the clean environment: the command as run, and the stream the data
/// file says its answer is on; `Err` with the first line it said when it failed.
fn answer(mo: &ModuleOptions, q: &Query, timeout: Duration) -> Result<(String, String), String> {
    let o = query_cmd(mo, q).timeout(timeout).output();
    if !o.success() {
        return Err(format!(
            "`{}` failed: {}",
            o.command,
            o.combined().lines().next().unwrap_or("no output")
        ));
    }
    let text = match q.stream {
        Stream::Stderr => o.stderr,
        Stream::Stdout => o.stdout,
    };
    Ok((o.command, text))
}

/// A loaded child's answer, from its file (none when the load or the query failed).
fn level(q: &Query, file: &std::path::Path) -> Result<Vec<Entry>, String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("no answer under the load ({}): {e}", file.display()))?;
    parse(q, &text)
}

fn parse(q: &Query, text: &str) -> Result<Vec<Entry>, String> {
    if q.form == Form::AvailJson {
        parse_json(text, &q.types)
    } else {
        parse_terse(text, &q.marks)
    }
}

/// `avail --json`: `{DIR: {NAME: {"type": ...}}}`, after whatever the command printed first.
pub(crate) fn parse_json(text: &str, types: &[String]) -> Result<Vec<Entry>, String> {
    let at = text
        .find('{')
        .ok_or_else(|| "no JSON in its answer".to_string())?;
    type Dirs = indexmap::IndexMap<String, indexmap::IndexMap<String, serde_json::Value>>;
    let all: Dirs = serde_json::Deserializer::from_str(&text[at..])
        .into_iter::<Dirs>()
        .next()
        .ok_or_else(|| "no JSON in its answer".to_string())?
        .map_err(|e| format!("not avail's JSON: {e}"))?;
    let mut out = Vec::new();
    for (dir, mods) in all {
        for (name, v) in mods {
            let ty = v.get("type").and_then(|t| t.as_str()).unwrap_or_default();
            if types.is_empty() || types.iter().any(|t| t == ty) {
                out.push(Entry {
                    dir: PathBuf::from(&dir),
                    name,
                });
            }
        }
    }
    Ok(out)
}

/// Terse `avail`: a `DIR:` line, then one module a line (a blank or a mark ends the name; a
/// `NAME/` line names no module).
pub(crate) fn parse_terse(text: &str, marks: &[String]) -> Result<Vec<Entry>, String> {
    let mut dir: Option<PathBuf> = None;
    let mut out = Vec::new();
    let mut headers = 0;
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(d) = line.strip_suffix(':').filter(|d| d.starts_with('/')) {
            dir = Some(PathBuf::from(d));
            headers += 1;
            continue;
        }
        let Some(d) = &dir else { continue };
        let mut name = line.split_whitespace().next().unwrap_or_default();
        for m in marks {
            if let Some((n, _)) = name.split_once(m.as_str()) {
                name = n;
            }
        }
        if name.is_empty() || name.ends_with('/') {
            continue;
        }
        out.push(Entry {
            dir: d.clone(),
            name: name.to_string(),
        });
    }
    if headers == 0 && !text.trim().is_empty() {
        return Err("no `DIR:` line in its answer".to_string());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terse_answers_of_lmod_and_environment_modules() {
        let marks = vec!["(".to_string(), "<".to_string()];
        let lmod =
            "/m/Core:\ngcc/\ngcc/11\ngcc/12(L)\n/m/Compiler/gcc/12:\nmpich/\nmpich/4.0 (D)\n";
        let em = "/m/Core:\ngcc/12 <L>\nopenblas/0.3.21-serial(default)\n\n";
        let names = |t| -> Vec<(String, String)> {
            parse_terse(t, &marks)
                .unwrap()
                .into_iter()
                .map(|e| (e.dir.display().to_string(), e.name))
                .collect()
        };
        let p = |d: &str, n: &str| (d.to_string(), n.to_string());
        assert_eq!(
            names(lmod),
            vec![
                p("/m/Core", "gcc/11"),
                p("/m/Core", "gcc/12"),
                p("/m/Compiler/gcc/12", "mpich/4.0")
            ]
        );
        assert_eq!(
            names(em),
            vec![
                p("/m/Core", "gcc/12"),
                p("/m/Core", "openblas/0.3.21-serial")
            ]
        );
        assert!(parse_terse("ERROR: no such option\n", &marks).is_err());
        assert!(parse_terse("", &marks).unwrap().is_empty());
    }

    #[test]
    fn versions_compare_part_by_part() {
        assert!(older("4.4.1", "4.5") && !older("5.2.0", "4.5") && !older("4.5", "4.5"));
        assert!(!older("4.10", "4.5") && older("3.2.10", "4.5"));
    }

    #[test]
    fn json_answer_keeps_module_files_only() {
        let text = "Loading x\n{\"/m/Core\": {\n\"gcc/12\": {\"name\": \"gcc/12\", \"type\": \"modulefile\"},\n\"cc/x\": {\"type\": \"alias\"}}}\n";
        let e = parse_json(text, &["modulefile".to_string()]).unwrap();
        assert_eq!(
            e,
            vec![Entry {
                dir: PathBuf::from("/m/Core"),
                name: "gcc/12".into()
            }]
        );
        assert!(parse_json("ERROR: Invalid option '--json'", &[]).is_err());
    }
}
