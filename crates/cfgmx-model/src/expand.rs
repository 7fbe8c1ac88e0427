//! Lazy expansion of a matrix into combinations, with GitHub Actions' `strategy.matrix`
//! semantics for `exclude` and `include`, then cfgmx's constraints.
//!
//! The order is GitHub's: the Cartesian product of the axes (first axis varies slowest), less
//! the combinations that match an `exclude` entry (a partial match suffices); then each
//! `include` entry, in order, is added to every remaining original combination whose *axis*
//! values it does not contradict (values an earlier include added may be overwritten); an
//! include that fits no original combination becomes a new combination of its own. Finally the
//! constraints drop what they forbid. `[[add]]` entries (cfgmx's, not GitHub's) come last,
//! each a combination of its own with exactly its keys. Memory is constant in the size of the
//! product: only a bit per include entry is kept.

use crate::matrix::{Entry, Matrix};
use std::sync::Arc;

/// One point of the matrix: key -> value, axes first in axis order, then include-added keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Combo {
    /// Position in expansion order (0-based, counting only what survives).
    pub index: u64,
    pub pairs: Vec<(Arc<str>, Arc<str>)>,
    /// The include entry that created this combination, when it is not from the product.
    pub from_include: Option<usize>,
}

impl Combo {
    pub fn get(&self, key: &str) -> Option<&Arc<str>> {
        self.pairs.iter().find(|(k, _)| &**k == key).map(|(_, v)| v)
    }
}

/// Iterator over a matrix's combinations; see the module docs for the semantics.
pub struct Combos<'m> {
    m: &'m Matrix,
    /// Odometer over the axes; `None` once the product is exhausted.
    idx: Option<Vec<usize>>,
    include_matched: Vec<bool>,
    next_include: usize,
    emitted: u64,
    /// How many combinations each constraint removed.
    pub removed_by: Vec<u64>,
}

impl Matrix {
    /// The combinations, lazily.
    pub fn combos(&self) -> Combos<'_> {
        let start = if self.axes.is_empty() || self.axes.iter().any(|a| a.values.is_empty()) {
            None
        } else {
            Some(vec![0; self.axes.len()])
        };
        Combos {
            m: self,
            idx: start,
            include_matched: vec![false; self.include.len()],
            next_include: 0,
            emitted: 0,
            removed_by: vec![0; self.constraints.len()],
        }
    }
}

fn entry_matches(e: &Entry, pairs: &[(Arc<str>, Arc<str>)]) -> bool {
    e.pairs
        .iter()
        .all(|(k, v)| pairs.iter().any(|(pk, pv)| pk == k && pv == v))
}

impl Combos<'_> {
    fn advance(&mut self) {
        let last = self.m.axes.len().saturating_sub(1);
        self.advance_at(last);
    }

    /// Steps the odometer at axis `pos`, resetting the faster axes after it: skips every
    /// combination that shares axes `0..=pos` with the current one.
    fn advance_at(&mut self, pos: usize) {
        let Some(idx) = self.idx.as_mut() else { return };
        for x in idx.iter_mut().skip(pos + 1) {
            *x = 0;
        }
        for i in (0..=pos.min(idx.len().saturating_sub(1))).rev() {
            idx[i] += 1;
            if idx[i] < self.m.axes[i].values.len() {
                return;
            }
            idx[i] = 0;
        }
        self.idx = None;
    }

    /// Applies the constraints; records which one removed the combination.
    fn allowed(&mut self, pairs: &[(Arc<str>, Arc<str>)]) -> bool {
        let get = |k: &str| {
            pairs
                .iter()
                .find(|(pk, _)| &**pk == k)
                .map(|(_, v)| v.clone())
        };
        for (i, c) in self.m.constraints.iter().enumerate() {
            if !c.allows(&get) {
                self.removed_by[i] += 1;
                return false;
            }
        }
        true
    }

    fn product_next(&mut self) -> Option<Combo> {
        loop {
            let idx = self.idx.as_ref()?;
            let mut pairs: Vec<(Arc<str>, Arc<str>)> = self
                .m
                .axes
                .iter()
                .zip(idx)
                .map(|(a, &i)| (a.name.clone(), a.values[i].clone()))
                .collect();
            if let Some(e) = self.m.exclude.iter().find(|e| entry_matches(e, &pairs)) {
                // The entry names only axes (it matched a bare product point), so every
                // combination that keeps those axes' values is excluded too: skip them at once,
                // or excluding all of a huge product would scan it one point at a time.
                let slowest_free = e
                    .pairs
                    .iter()
                    .filter_map(|(k, _)| self.m.axes.iter().position(|a| a.name == *k))
                    .max();
                match slowest_free {
                    Some(pos) => self.advance_at(pos),
                    None => self.idx = None,
                }
                continue;
            }
            self.advance();
            let n_axes = pairs.len();
            for (ii, inc) in self.m.include.iter().enumerate() {
                if inc.new {
                    continue;
                }
                // Fits when it contradicts no original (axis) value.
                let fits = inc.pairs.iter().all(|(k, v)| {
                    match pairs[..n_axes].iter().find(|(pk, _)| pk == k) {
                        Some((_, pv)) => pv == v,
                        None => true,
                    }
                });
                if !fits {
                    continue;
                }
                self.include_matched[ii] = true;
                for (k, v) in &inc.pairs {
                    if pairs[..n_axes].iter().any(|(pk, _)| pk == k) {
                        continue;
                    }
                    match pairs[n_axes..].iter_mut().find(|(pk, _)| pk == k) {
                        Some(slot) => slot.1 = v.clone(),
                        None => pairs.push((k.clone(), v.clone())),
                    }
                }
            }
            if !self.allowed(&pairs) {
                continue;
            }
            return Some(Combo {
                index: 0,
                pairs,
                from_include: None,
            });
        }
    }

    fn include_next(&mut self) -> Option<Combo> {
        while self.next_include < self.m.include.len() {
            let ii = self.next_include;
            self.next_include += 1;
            let inc = &self.m.include[ii];
            if self.include_matched[ii] && !inc.new {
                continue;
            }
            // Axes first in axis order, then the entry's other keys as written.
            let mut pairs: Vec<(Arc<str>, Arc<str>)> = Vec::new();
            for a in &self.m.axes {
                if let Some((k, v)) = inc.pairs.iter().find(|(k, _)| *k == a.name) {
                    pairs.push((k.clone(), v.clone()));
                }
            }
            for (k, v) in &inc.pairs {
                if !self.m.axes.iter().any(|a| a.name == *k) {
                    pairs.push((k.clone(), v.clone()));
                }
            }
            if !self.allowed(&pairs) {
                continue;
            }
            return Some(Combo {
                index: 0,
                pairs,
                from_include: Some(ii),
            });
        }
        None
    }
}

impl Iterator for Combos<'_> {
    type Item = Combo;

    fn next(&mut self) -> Option<Combo> {
        let mut c = match self.product_next() {
            Some(c) => c,
            None => self.include_next()?,
        };
        c.index = self.emitted;
        self.emitted += 1;
        Some(c)
    }
}

#[cfg(test)]
mod tests {
    use crate::{Registry, Source};

    fn combos(toml: &str) -> Vec<Vec<(String, String)>> {
        let reg = Registry::builtin();
        let m = crate::Matrix::parse(&Source::new("t.toml", toml), &reg)
            .unwrap_or_else(|e| panic!("{e}"));
        m.combos()
            .map(|c| {
                c.pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect()
            })
            .collect()
    }

    fn kv(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// GitHub docs, "Expanding or adding matrix configurations" (matrix-include.md).
    #[test]
    fn github_include_worked_example() {
        let got = combos(
            r#"
name = "gh"
[axes]
fruit = ["apple", "pear"]
animal = ["cat", "dog"]
[[include]]
color = "green"
[[include]]
color = "pink"
animal = "cat"
[[include]]
fruit = "apple"
shape = "circle"
[[include]]
fruit = "banana"
[[include]]
fruit = "banana"
animal = "cat"
"#,
        );
        let want = vec![
            kv(&[
                ("fruit", "apple"),
                ("animal", "cat"),
                ("color", "pink"),
                ("shape", "circle"),
            ]),
            kv(&[
                ("fruit", "apple"),
                ("animal", "dog"),
                ("color", "green"),
                ("shape", "circle"),
            ]),
            kv(&[("fruit", "pear"), ("animal", "cat"), ("color", "pink")]),
            kv(&[("fruit", "pear"), ("animal", "dog"), ("color", "green")]),
            kv(&[("fruit", "banana")]),
            kv(&[("fruit", "banana"), ("animal", "cat")]),
        ];
        assert_eq!(got, want);
    }

    /// GitHub docs, "Excluding matrix configurations" (matrix-exclude.md): 3x3x2 = 18 less the
    /// partial matches of two entries = 12.
    #[test]
    fn github_exclude_worked_example() {
        let got = combos(
            r#"
name = "gh"
[axes]
os = ["macos-latest", "windows-latest"]
version = [12, 14, 16]
environment = ["staging", "production"]
[[exclude]]
os = "macos-latest"
version = 12
environment = "production"
[[exclude]]
os = "windows-latest"
version = 16
"#,
        );
        assert_eq!(
            got.len(),
            9,
            "2x3x2 = 12, less 1, less the 2 partial matches"
        );
        assert!(!got.contains(&kv(&[
            ("os", "macos-latest"),
            ("version", "12"),
            ("environment", "production")
        ])));
        assert!(!got
            .iter()
            .any(|c| c[0].1 == "windows-latest" && c[1].1 == "16"));
        assert!(got.contains(&kv(&[
            ("os", "macos-latest"),
            ("version", "12"),
            ("environment", "staging")
        ])));
    }

    /// GitHub docs, "Example: Adding configurations" (matrix-add-with-include / the node/os
    /// example): include adds a value to matching jobs and a new job that matches none.
    #[test]
    fn github_include_extends_and_adds() {
        let got = combos(
            r#"
name = "gh"
[axes]
os = ["windows-latest", "ubuntu-latest"]
node = [14, 16]
[[include]]
os = "windows-latest"
node = 16
npm = 6
"#,
        );
        assert_eq!(got.len(), 4);
        assert_eq!(
            got[1],
            kv(&[("os", "windows-latest"), ("node", "16"), ("npm", "6")])
        );
        assert_eq!(got[0], kv(&[("os", "windows-latest"), ("node", "14")]));
    }

    /// GitHub docs, "Example: Adding configurations": node 17 fits no original job, so the
    /// include becomes a fifth job.
    #[test]
    fn github_include_new_job() {
        let got = combos(
            r#"
name = "gh"
[axes]
os = ["windows-latest", "ubuntu-latest"]
node = [14, 16]
[[include]]
os = "windows-latest"
node = 17
"#,
        );
        assert_eq!(got.len(), 5);
        assert_eq!(got[4], kv(&[("os", "windows-latest"), ("node", "17")]));
    }

    /// Includes are processed after excludes, so an include can add back an excluded one.
    #[test]
    fn include_adds_back_excluded() {
        let got = combos(
            r#"
name = "t"
[axes]
compiler = ["gcc", "xl"]
blas = ["sequential", "threaded"]
[[exclude]]
compiler = "xl"
blas = "threaded"
[[include]]
compiler = "xl"
blas = "threaded"
"#,
        );
        assert_eq!(got.len(), 4);
        assert_eq!(got[3], kv(&[("compiler", "xl"), ("blas", "threaded")]));
    }

    /// "If you don't specify any matrix variables, all configurations under include will run."
    #[test]
    fn include_only_matrix() {
        let got = combos(
            r#"
name = "t"
[axes]
[[include]]
compiler = "gcc"
[[include]]
compiler = "clang"
build = "debug"
"#,
        );
        assert_eq!(
            got,
            vec![
                kv(&[("compiler", "gcc")]),
                kv(&[("compiler", "clang"), ("build", "debug")])
            ]
        );
    }

    #[test]
    fn constraints_filter() {
        let got = combos(
            r#"
name = "t"
[axes]
compiler = ["gcc", "apple-clang"]
blas = ["sequential", "threaded"]
[[constraints]]
when = { compiler = "apple-clang" }
forbid = { blas = "threaded" }
reason = "Apple clang ships no OpenMP runtime"
"#,
        );
        assert_eq!(got.len(), 3);
    }

    /// 10^12 combinations, all excluded by entries on the first axis: found empty at once.
    #[test]
    fn excluding_a_huge_product_skips_instead_of_scanning() {
        let mut t = String::from("name = \"x\"\n[axes]\n");
        for a in 0..12 {
            t.push_str(&format!(
                "a{a} = [\"0\",\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\"]\n"
            ));
        }
        for v in 0..10 {
            t.push_str(&format!("[[exclude]]\na0 = \"{v}\"\n"));
        }
        assert!(combos(&t).is_empty());
        // Skipping keeps GitHub's order and drops exactly the matching points.
        let small = combos(
            "name = \"s\"\n[axes]\na = [\"1\",\"2\"]\nb = [\"x\",\"y\"]\nc = [\"p\",\"q\"]\n\
             [[exclude]]\na = \"1\"\nb = \"x\"\n[[exclude]]\nc = \"q\"\n",
        );
        let names: Vec<String> = small
            .iter()
            .map(|c| {
                c.iter()
                    .map(|(_, v)| v.as_str())
                    .collect::<Vec<_>>()
                    .join("-")
            })
            .collect();
        assert_eq!(names, ["1-y-p", "2-x-p", "2-y-p"]);
    }

    /// The issue's case: an MPI job and an ILP64 job added to a 2x2x2 matrix. An include
    /// with those keys would be merged into the matching combination (GitHub semantics), so
    /// users added a one-value `flavor` axis to every name; an `[[add]]` entry is a new
    /// combination as written, and no other variant changes.
    #[test]
    fn add_entries_are_new_jobs_that_rename_nothing() {
        let base = r#"
name = "extra"
[axes]
compiler = ["gcc", "clang"]
blas = ["sequential", "threaded"]
build = ["debug", "release"]
"#;
        let plain = combos(base);
        let with = combos(&format!(
            "{base}[[add]]\ncompiler = \"gcc\"\nblas = \"sequential\"\nbuild = \"release\"\nmpi = \"mpich\"\n[[add]]\ncompiler = \"gcc\"\nblas = \"threaded\"\nbuild = \"release\"\nint = \"ilp64\"\n"
        ));
        assert_eq!(with.len(), 10);
        assert_eq!(
            with[..8],
            plain[..],
            "the product's combinations are untouched"
        );
        assert_eq!(
            with[8],
            kv(&[
                ("compiler", "gcc"),
                ("blas", "sequential"),
                ("build", "release"),
                ("mpi", "mpich")
            ])
        );
        assert_eq!(
            with[9],
            kv(&[
                ("compiler", "gcc"),
                ("blas", "threaded"),
                ("build", "release"),
                ("int", "ilp64")
            ])
        );
        // the same keys as an include are merged into gcc-sequential-release instead
        let merged = combos(&format!(
            "{base}[[include]]\ncompiler = \"gcc\"\nblas = \"sequential\"\nbuild = \"release\"\nmpi = \"mpich\"\n"
        ));
        assert_eq!(merged.len(), 8);
        assert!(merged[1].contains(&("mpi".to_string(), "mpich".to_string())));
    }

    #[test]
    fn streams_large_products_lazily() {
        let reg = Registry::builtin();
        let mut t = String::from("name = \"big\"\n[axes]\n");
        for a in 0..6 {
            let vals: Vec<String> = (0..10).map(|i| format!("\"v{i}\"")).collect();
            t.push_str(&format!("a{a} = [{}]\n", vals.join(",")));
        }
        let m = crate::Matrix::parse(&Source::new("big.toml", t), &reg).unwrap();
        assert_eq!(m.product_size(), 1_000_000);
        let mut it = m.combos();
        let first = it.next().unwrap();
        assert_eq!(first.index, 0);
        assert_eq!(it.nth(999_998).unwrap().index, 999_999);
        assert!(it.next().is_none());
    }
}
