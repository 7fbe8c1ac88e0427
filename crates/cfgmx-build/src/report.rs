//! Results and the reporters that consume them: JSON (the record format, also what `report
//! merge` reads), JUnit XML (one suite per variant: a case per step and one per test the
//! project ran) and a self-contained HTML grid compiler x blas x build coloured by result.
//! Pure: they return strings; the CLI writes them.

pub use crate::testcase::{TestCaseResult, TestStatus};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// How one step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Passed,
    Failed,
    /// The test step ran but there was no test to run (testing off, no tests defined).
    NoTests,
    /// Not run (an earlier step failed, or the run was stopped).
    NotRun,
}

/// A variant's steps, in the order they run; recorded and shown by their lowercase names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Step {
    Configure,
    Build,
    Test,
}

impl Step {
    /// Every step, in the order they run.
    pub const ALL: [Step; 3] = [Step::Configure, Step::Build, Step::Test];

    pub fn as_str(self) -> &'static str {
        match self {
            Step::Configure => "configure",
            Step::Build => "build",
            Step::Test => "test",
        }
    }
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Step {
    type Err = String;

    fn from_str(name: &str) -> Result<Step, String> {
        Step::ALL
            .into_iter()
            .find(|s| s.as_str() == name)
            .ok_or_else(|| format!("unknown step `{name}` (configure, build or test)"))
    }
}

/// A step compares with its name, as reports and records spell it.
impl PartialEq<str> for Step {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Step {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// One step: configure, build or test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepResult {
    pub step: Step,
    pub status: StepStatus,
    /// The command line run.
    pub command: String,
    pub exit_code: Option<i32>,
    pub duration_s: f64,
    /// Log file, relative to the build root.
    pub log: String,
    /// Cores this step held from the budget.
    #[serde(default)]
    pub cores: usize,
    /// For a failed step, the lines of the log that say why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The step was ended by `--step-timeout` (its status is `failed`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub timed_out: bool,
}

/// The variant's overall status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Passed,
    Failed,
    /// A step was ended by `--step-timeout`: a failure (exit code 1), counted apart because
    /// the cure differs (a hang or a slow test, not a wrong result).
    TimedOut,
    /// Configured and built, but no test ran: never a pass (the exit code is 1 unless the user
    /// allows it), since nothing was checked.
    NoTests,
    /// Not built in this run because it passed before with the same source and thread count:
    /// a pass (counted as one), marked so a reader knows it was not rebuilt now.
    Cached,
    /// Cannot be built on this machine (a compiler or library missing, a link test failed):
    /// `reason` says why. Never built, so it proves nothing either way.
    Unavailable,
    /// It was running when the run was interrupted; nothing of this attempt is kept.
    Interrupted,
    /// The run stopped (Ctrl-C, --fail-fast) before it started. Reports from before these
    /// statuses said `skipped` for this and for cached passes alike; read back (`report
    /// merge` of old shards) it is the one that claims nothing.
    #[serde(alias = "skipped")]
    NotStarted,
    /// The job building it ended before cfgmx wrote a result (cfgmx missing on the node,
    /// killed, a usage error): the job's wrapper script wrote this one, `reason` says how it
    /// ended. A failure: nothing was proved and something is wrong with the job.
    Crashed,
    /// No result came back for it at all (a job killed with its wrapper, a node lost): the
    /// merge job records it so the report still lists every variant. Exit code 1, like a
    /// variant that ran no test: nothing proved it works.
    Missing,
}

/// Which hash a [`VariantResult`] carries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HashKind {
    #[default]
    Concrete,
    Spec,
}

/// Everything recorded about one variant's build.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariantResult {
    pub name: String,
    /// The concrete hash, or the spec hash of a variant that cannot be built here (it has no
    /// concrete one): `hash_kind` says which.
    pub hash: String,
    #[serde(default)]
    pub hash_kind: HashKind,
    pub compiler: String,
    pub blas: String,
    pub build: String,
    pub status: Status,
    /// Why it did not pass or was not built now: the key line of a failure, why it is
    /// unavailable, why it was cached or not run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// For a failed variant, the step that failed (`configure`, `build`, `test`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_step: Option<String>,
    pub steps: Vec<StepResult>,
    #[serde(default)]
    pub tests_passed: u32,
    #[serde(default)]
    pub tests_failed: u32,
    /// Tests the project skipped or disabled.
    #[serde(default)]
    pub tests_skipped: u32,
    /// Every test the driver ran, in its order.
    #[serde(default)]
    pub tests: Vec<TestCaseResult>,
    /// Where the test results were read from: `ctest-junit`, `meson-testlog`, or
    /// `ctest-summary`/`meson-summary` (the text, for a ctest older than 3.21).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tests_from: Option<String>,
    /// The thread count (`OMP_NUM_THREADS` and the BLAS's own variable) the tests ran with;
    /// none when the test step did not run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads: Option<usize>,
    pub duration_s: f64,
    /// The source tree fingerprint it was built from.
    #[serde(default)]
    pub source_fingerprint: String,
    /// Tool versions (`cmake`, `ninja`, compilers) used.
    #[serde(default)]
    pub tools: indexmap::IndexMap<String, String>,
    /// Build-system warnings worth a maintainer's attention (the project wrote into its
    /// source tree, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// The BLAS files the built executables and libraries load (real paths, from the dynamic
    /// loader), checked against the variant's after the build.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blas_linked: Vec<String>,
    /// A Python project's wheel of this variant, in the build root's wheelhouse.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wheel: Option<String>,
    /// The build root its step logs are relative to (absolute), so reports merged from
    /// shards built in different roots link each variant's logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_root: Option<String>,
    /// The runtime point its test step ran at (the matrix's `[runtime]`): one row per point
    /// of a variant, its configure and build shared with the variant's other points.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<cfgmx_model::Point>,
}

impl VariantResult {
    pub fn step(&self, name: &str) -> Option<&StepResult> {
        self.steps.iter().find(|s| s.step == *name)
    }

    /// The variant's name, with its runtime point when it has one: `gcc-debug [threads=2]`.
    pub fn row_name(&self) -> String {
        match &self.runtime {
            Some(p) => format!("{} [{}]", self.name, p.label()),
            None => self.name.clone(),
        }
    }

    /// What identifies the row among a run's: the hash, and the runtime point's key.
    pub fn row_key(&self) -> String {
        match &self.runtime {
            Some(p) => format!("{}@{}", self.hash, p.key()),
            None => self.hash.clone(),
        }
    }

    /// A row for a variant that was not built: no steps, `status` and why.
    pub fn not_built(
        name: &str,
        hash: &str,
        axes: [&str; 3],
        status: Status,
        reason: &str,
    ) -> VariantResult {
        let [compiler, blas, build] = axes;
        VariantResult {
            name: name.into(),
            hash: hash.into(),
            // Only a variant this machine cannot build lacks a concrete hash.
            hash_kind: if status == Status::Unavailable {
                HashKind::Spec
            } else {
                HashKind::Concrete
            },
            compiler: compiler.into(),
            blas: blas.into(),
            build: build.into(),
            status,
            reason: Some(reason.into()),
            failed_step: None,
            steps: Vec::new(),
            tests_passed: 0,
            tests_failed: 0,
            tests_skipped: 0,
            tests: Vec::new(),
            tests_from: None,
            threads: None,
            duration_s: 0.0,
            source_fingerprint: String::new(),
            tools: Default::default(),
            warnings: Vec::new(),
            blas_linked: Vec::new(),
            wheel: None,
            build_root: None,
            runtime: None,
        }
    }

    /// For a failed variant without them, records the step that failed and its key line (the
    /// first line of the step's message), so every report can say why without the log.
    pub fn explain_failure(&mut self) {
        if !self.status.is_failure() || self.failed_step.is_some() {
            return;
        }
        let Some(s) = self.steps.iter().find(|s| s.status == StepStatus::Failed) else {
            return;
        };
        self.failed_step = Some(s.step.to_string());
        if self.reason.is_none() {
            let key = s
                .message
                .as_deref()
                .and_then(|m| m.lines().map(str::trim).find(|l| !l.is_empty()))
                .map_or_else(|| format!("{} failed", s.step), str::to_string);
            self.reason = Some(key);
        }
    }
}

/// A whole run (or several merged).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    pub schema: u32,
    pub matrix: String,
    /// `K/N` when a shard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    pub cores: usize,
    pub wall_s: f64,
    pub variants: Vec<VariantResult>,
}

/// The JUnit suite of a variant at a runtime point (see [`RunReport::junit`]).
fn junit_suite(v: &VariantResult) -> quick_junit::TestSuite {
    use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus, TestSuite};
    // A suite per variant and runtime point, each variable of the point a property.
    let mut suite = TestSuite::new(v.row_name());
    for (k, x) in v.runtime.iter().flat_map(|p| &p.0) {
        suite.add_property(quick_junit::Property::new(
            format!("runtime.{k}"),
            x.clone(),
        ));
    }
    // What the tests ran with and where their results were read from.
    if let Some(t) = v.threads {
        suite.add_property(quick_junit::Property::new("threads", t.to_string()));
    }
    if let Some(f) = &v.tests_from {
        suite.add_property(quick_junit::Property::new("tests_from", f.clone()));
    }
    suite.add_property(quick_junit::Property::new("status", status_class(v.status)));
    // A cached variant passed earlier with this source: its cases pass (a CI dashboard
    // must not read "nothing was tested"), each saying it was not rebuilt now.
    let cached = (v.status == Status::Cached).then(|| {
        format!(
            "cached: {}",
            v.reason.as_deref().unwrap_or("unchanged since it passed")
        )
    });
    if let Some(c) = &cached {
        suite.add_property(quick_junit::Property::new("cached", "true"));
        suite.set_system_out(c.clone());
    }
    if v.steps.is_empty() {
        // Unavailable, interrupted, never started or missing: one skipped case with the
        // reason; a crashed job is a failure (a dashboard must not show it as skipped).
        let mut st = if v.status.is_failure() {
            TestCaseStatus::non_success(NonSuccessKind::Failure)
        } else {
            TestCaseStatus::skipped()
        };
        let why = v.reason.as_deref().unwrap_or("not run");
        st.set_message(format!("{}: {why}", status_label(v.status)));
        let mut tc = TestCase::new("build", st);
        tc.set_classname(class_base(v));
        suite.add_test_case(tc);
    }
    for s in &v.steps {
        if s.step == Step::Test && !v.tests.is_empty() {
            let any_failed = v.tests.iter().any(|t| t.status == TestStatus::Failed);
            for t in &v.tests {
                suite.add_test_case(junit_test_case(v, s, t, cached.as_deref()));
            }
            if s.status != StepStatus::Failed || any_failed {
                continue;
            }
        }
        suite.add_test_case(junit_step_case(v, s, cached.as_deref()));
    }
    suite
}

/// The JUnit case of one test `t` the project ran in test step `s`.
fn junit_test_case(
    v: &VariantResult,
    s: &StepResult,
    t: &TestCaseResult,
    cached: Option<&str>,
) -> quick_junit::TestCase {
    use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus};
    let st = match t.status {
        TestStatus::Passed => TestCaseStatus::success(),
        TestStatus::Failed => {
            let mut st = TestCaseStatus::non_success(NonSuccessKind::Failure);
            // What the test itself said, as the dashboard's message.
            let said = t.output.as_deref().and_then(crate::keyline::test_reason);
            st.set_message(match said {
                Some(l) => format!("{}: {l} (log: {})", t.name, s.log),
                None => format!("test {} failed (log: {})", t.name, s.log),
            });
            if let Some(o) = &t.output {
                st.set_description(o.clone());
            }
            st
        }
        TestStatus::Skipped => {
            let mut st = TestCaseStatus::skipped();
            st.set_message("skipped by the project");
            st
        }
    };
    let mut tc = TestCase::new(t.name.clone(), st);
    if let Some(c) = cached {
        tc.set_system_out(c.to_string());
    }
    tc.set_classname(format!("{}.test", class_base(v)));
    tc.set_time(std::time::Duration::from_secs_f64(t.time_s.max(0.0)));
    tc
}

/// The JUnit case of step `s` itself.
fn junit_step_case(
    v: &VariantResult,
    s: &StepResult,
    cached: Option<&str>,
) -> quick_junit::TestCase {
    use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus};
    let st = match s.status {
        StepStatus::Passed => TestCaseStatus::success(),
        StepStatus::Failed => {
            let mut st = TestCaseStatus::non_success(NonSuccessKind::Failure);
            // The key line first: a dashboard shows the message, not the log.
            match v
                .reason
                .as_deref()
                .filter(|_| v.failed_step.as_deref() == Some(s.step.as_str()))
            {
                Some(key) => st.set_message(format!("{} failed: {key} (log: {})", s.step, s.log)),
                None => st.set_message(format!("{} failed (log: {})", s.step, s.log)),
            };
            if let Some(m) = &s.message {
                st.set_description(m.clone());
            }
            st
        }
        StepStatus::NoTests => {
            let mut st = TestCaseStatus::skipped();
            st.set_message("ran no test");
            st
        }
        StepStatus::NotRun => {
            let mut st = TestCaseStatus::skipped();
            st.set_message("not run");
            st
        }
    };
    let mut tc = TestCase::new(s.step.as_str(), st);
    if let Some(c) = cached {
        tc.set_system_out(c.to_string());
    }
    tc.set_classname(class_base(v));
    tc.set_time(std::time::Duration::from_secs_f64(s.duration_s.max(0.0)));
    tc
}

impl RunReport {
    /// Passes, cached ones included (they passed with this source; `count(Status::Cached)`
    /// says how many were not rebuilt now).
    pub fn passed(&self) -> usize {
        self.count(Status::Passed) + self.count(Status::Cached)
    }
    /// Variants that did not run to an end in this run: interrupted, never started, or with
    /// no result at all.
    pub fn not_run(&self) -> usize {
        self.count(Status::Interrupted)
            + self.count(Status::NotStarted)
            + self.count(Status::Missing)
    }
    /// The one-line summary: each status counted, those with none left out except passed and
    /// failed.
    pub fn summary(&self) -> String {
        let mut parts = vec![format!("{} passed", self.passed())];
        let cached = self.count(Status::Cached);
        if cached > 0 {
            parts[0].push_str(&format!(" ({cached} cached)"));
        }
        parts.push(format!("{} failed", self.count(Status::Failed)));
        for (n, what) in [
            (self.count(Status::TimedOut), "timed out"),
            (self.count(Status::Crashed), "crashed"),
            (self.count(Status::Missing), "missing"),
            (self.no_tests(), "no tests"),
            (self.count(Status::Unavailable), "unavailable"),
            (self.count(Status::Interrupted), "interrupted"),
            (self.count(Status::NotStarted), "not started"),
        ] {
            if n > 0 {
                parts.push(format!("{n} {what}"));
            }
        }
        parts.join(", ")
    }
    /// Failures of every kind: failed, timed out and crashed.
    pub fn failed(&self) -> usize {
        self.count(Status::Failed) + self.count(Status::TimedOut) + self.count(Status::Crashed)
    }
    pub fn no_tests(&self) -> usize {
        self.count(Status::NoTests)
    }
    pub fn count(&self, s: Status) -> usize {
        self.variants.iter().filter(|v| v.status == s).count()
    }

    /// Combines shard reports: variants keyed by hash (a later file wins), sorted by name.
    pub fn merge(parts: Vec<RunReport>) -> Result<RunReport, String> {
        let mut out = RunReport {
            schema: 1,
            ..Default::default()
        };
        let mut seen = std::collections::BTreeMap::new();
        for p in parts {
            if out.matrix.is_empty() {
                out.matrix = p.matrix.clone();
            } else if out.matrix != p.matrix {
                return Err(format!(
                    "reports are from different matrices (`{}` and `{}`)",
                    out.matrix, p.matrix
                ));
            }
            out.cores = out.cores.max(p.cores);
            out.wall_s = out.wall_s.max(p.wall_s);
            for mut v in p.variants {
                v.explain_failure();
                // A report written before `hash_kind` existed: only unavailable rows are spec.
                if v.status == Status::Unavailable {
                    v.hash_kind = HashKind::Spec;
                }
                seen.insert(v.row_key(), v);
            }
        }
        out.variants = seen.into_values().collect();
        out.variants.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Rows for the final table: variant, hash, configure/build/test, tests, thread count,
    /// duration.
    pub fn table_rows(&self) -> Vec<Vec<String>> {
        self.variants
            .iter()
            .map(|v| {
                let st = |n: &str| match v.step(n).map(|s| s.status) {
                    Some(StepStatus::Passed) => "ok".to_string(),
                    Some(StepStatus::Failed) => "FAILED".to_string(),
                    Some(StepStatus::NoTests) => "no tests".to_string(),
                    Some(StepStatus::NotRun) | None => "-".to_string(),
                };
                let status = status_label(v.status);
                vec![
                    v.row_name(),
                    // The CONCRETE column: a variant that cannot be built here has none.
                    match v.hash_kind {
                        HashKind::Concrete => cfgmx_model::hash::short_hash(&v.hash).to_string(),
                        HashKind::Spec => "-".to_string(),
                    },
                    status.to_string(),
                    st("configure"),
                    st("build"),
                    st("test"),
                    // Not built (unavailable, not run): no test count or time to claim.
                    if v.steps.is_empty() {
                        "-".to_string()
                    } else {
                        tests_cell(v)
                    },
                    v.threads.map_or("-".to_string(), |t| t.to_string()),
                    if v.steps.is_empty() {
                        "-".to_string()
                    } else {
                        format!("{:.1}s", v.duration_s)
                    },
                ]
            })
            .collect()
    }

    /// The lines printed under the table: for each variant that did not pass now, its status
    /// and why (the failed step and its key line, why it is unavailable or not run).
    pub fn why_lines(&self) -> Vec<String> {
        self.variants
            .iter()
            .filter(|v| !matches!(v.status, Status::Passed | Status::Cached))
            .map(|v| {
                let why = match (&v.failed_step, &v.reason) {
                    (Some(step), Some(r)) => format!("{step} failed: {r}"),
                    (Some(step), None) => format!("{step} failed"),
                    (None, Some(r)) => r.clone(),
                    (None, None) if v.status == Status::NoTests => "ran no test".into(),
                    (None, None) => String::new(),
                };
                format!("{} {}: {why}", status_label(v.status), v.row_name())
            })
            .collect()
    }

    /// JUnit XML: one suite per variant; a case per step, and the test step as one case per
    /// test the project ran (the step itself appears only when no test result stands for it:
    /// no test ran, or the driver failed with no failed test to show for it).
    pub fn junit(&self) -> String {
        let mut report = quick_junit::Report::new(format!("cfgmx build {}", self.matrix));
        for v in &self.variants {
            report.add_test_suite(junit_suite(v));
        }
        report
            .to_string()
            .unwrap_or_else(|e| format!("<!-- cannot serialise JUnit: {e} -->\n"))
    }

    /// A self-contained HTML page (`templates/report.html.tera`): a grid with rows =
    /// compiler, columns = blas x build, each cell coloured by status and linking to its
    /// logs, then every variant and every test. `log_prefix` gives, for a variant, what is
    /// put before each of its log paths (relative to its build root) so links work from where
    /// the page is saved. This builds the values; the template lays them out and tera escapes
    /// each one.
    pub fn html(&self, log_prefix: &dyn Fn(&VariantResult) -> String) -> Result<String, String> {
        use serde_json::{json, Value};
        let compilers: Vec<&str> = uniq(self.variants.iter().map(|v| v.compiler.as_str()));
        let blases: Vec<&str> = uniq(self.variants.iter().map(|v| v.blas.as_str()));
        let builds: Vec<&str> = uniq(self.variants.iter().map(|v| v.build.as_str()));
        let rows: Vec<Value> = compilers
            .iter()
            .map(|c| {
                let cells: Vec<Value> = blases
                    .iter()
                    .flat_map(|b| builds.iter().map(move |bu| (b, bu)))
                    .map(|(b, bu)| {
                        let cell: Vec<&VariantResult> = self
                            .variants
                            .iter()
                            .filter(|v| v.compiler == *c && v.blas == *b && v.build == *bu)
                            .collect();
                        cell_value(&cell, log_prefix)
                    })
                    .collect();
                json!({"compiler": c, "cells": cells})
            })
            .collect();
        let variants: Vec<Value> = self
            .variants
            .iter()
            .map(|v| variant_value(v, log_prefix))
            .collect();
        let tests: Vec<Value> = self
            .variants
            .iter()
            .flat_map(|v| v.tests.iter().map(move |t| (v, t)))
            .map(|(v, t)| {
                json!({
                    "key": v.row_key(),
                    "variant": v.row_name(),
                    "name": t.name,
                    // A failed test's own last lines, folded under its name.
                    "output": t.output,
                    "class": match t.status {
                        TestStatus::Passed => "passed",
                        TestStatus::Failed => "failed",
                        TestStatus::Skipped => "skipped",
                    },
                    "time": format!("{:.2}", t.time_s),
                })
            })
            .collect();
        let ctx = json!({
            "matrix": self.matrix,
            "sum": {
                "passed": self.passed(),
                "cached": self.count(Status::Cached),
                "failed": self.count(Status::Failed) + self.count(Status::Crashed),
                "timed_out": self.count(Status::TimedOut),
                "no_tests": self.no_tests(),
                "unavailable": self.count(Status::Unavailable),
                "not_run": self.not_run(),
                "cores": self.cores,
                "wall": format!("{:.1}", self.wall_s),
            },
            "blases": blases,
            "builds": builds,
            "rows": rows,
            "variants": variants,
            "tests": tests,
        });
        let ctx = tera::Context::from_value(ctx).map_err(|e| e.to_string())?;
        html_tera()?
            .render(HTML_TEMPLATE.0, &ctx)
            .map_err(|e| format!("{}: {e:?}", HTML_TEMPLATE.0))
    }
}

/// A variant's row of the report's table: its status, steps with their logs, and why it did
/// not pass.
fn variant_value(
    v: &VariantResult,
    log_prefix: &dyn Fn(&VariantResult) -> String,
) -> serde_json::Value {
    use serde_json::{json, Value};
    let steps: Vec<Value> = ["configure", "build", "test"]
        .iter()
        .map(|n| match v.step(n) {
            Some(s) => json!({
                "class": step_class(s.status),
                "log": (!s.log.is_empty()).then(|| format!("{}{}", log_prefix(v), s.log)),
                "time": format!("{:.1}", s.duration_s),
            }),
            None => Value::Null,
        })
        .collect();
    // Why it did not pass: the key line, unfolding to the step's excerpt.
    let why = v
        .reason
        .as_deref()
        .filter(|_| !matches!(v.status, Status::Passed | Status::Cached))
        .map(|why| {
            let head = match &v.failed_step {
                Some(step) => format!("{step} failed: {why}"),
                None => why.to_string(),
            };
            let more = v
                .steps
                .iter()
                .find(|s| s.status == StepStatus::Failed)
                .and_then(|s| s.message.as_deref());
            json!({"head": head, "more": more})
        });
    json!({
        "key": v.row_key(),
        "class": status_class(v.status),
        "name": v.row_name(),
        "hash": cfgmx_model::hash::short_hash(&v.hash),
        "status": status_label(v.status),
        "steps": steps,
        "tests": tests_cell(v),
        "threads": v.threads.map_or("-".to_string(), |t| t.to_string()),
        "time": format!("{:.1}", v.duration_s),
        "why": why,
    })
}

/// The report's template, embedded; its name ends in `.html.tera`, which turns on escaping.
const HTML_TEMPLATE: (&str, &str) = (
    "report.html.tera",
    include_str!("../../../templates/report.html.tera"),
);

/// Tera with the report template, parsed once. Escaping is [`esc`]'s (tera's own also
/// writes `/` as `&#x2F;`, which would make every log link harder to read in the source).
fn html_tera() -> Result<&'static tera::Tera, String> {
    static TERA: std::sync::OnceLock<Result<tera::Tera, String>> = std::sync::OnceLock::new();
    TERA.get_or_init(|| {
        let mut t = tera::Tera::default();
        t.autoescape_on(vec![".html.tera"]);
        t.set_escape_fn(esc);
        t.add_raw_template(HTML_TEMPLATE.0, HTML_TEMPLATE.1)
            .map_err(|e| format!("{}: {e:?}", HTML_TEMPLATE.0))?;
        Ok(t)
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// A grid cell's values: no variant (an empty cell), or one block per variant, the cell
/// coloured by the worst.
fn cell_value(
    cell: &[&VariantResult],
    log_prefix: &dyn Fn(&VariantResult) -> String,
) -> serde_json::Value {
    // Several variants can share a cell when user axes add dimensions: the worst colours it.
    let worst = cell
        .iter()
        .map(|v| v.status)
        .max_by_key(|s| match s {
            Status::Failed | Status::TimedOut | Status::Crashed => 6,
            Status::NoTests => 5,
            Status::Interrupted => 4,
            Status::NotStarted | Status::Missing => 3,
            Status::Unavailable => 2,
            Status::Passed => 0,
            Status::Cached => 1,
        })
        .unwrap_or(Status::NotStarted);
    // Several (user axes add dimensions) each get a block of their own colour, named, so a
    // pass beside a failure still reads as a pass.
    let subs: Vec<serde_json::Value> = cell
        .iter()
        .map(|v| {
            // Why it did not pass, in the cell: the failed step and its key line, or why it
            // was not built (unavailable, interrupted, not started).
            let why = match (&v.failed_step, &v.reason) {
                (Some(step), Some(r)) => Some(format!("{step} failed: {r}")),
                (Some(step), None) => Some(format!("{step} failed")),
                (None, Some(r)) if v.status != Status::Cached => Some(r.clone()),
                _ => None,
            };
            let log = v
                .steps
                .iter()
                .find(|s| s.status == StepStatus::Failed)
                .or(v.steps.last())
                .filter(|s| !s.log.is_empty())
                .map(|s| format!("{}{}", log_prefix(v), s.log));
            serde_json::json!({
                "class": status_class(v.status),
                "sub_label": sub_label(cell, v),
                "status": status_label(v.status),
                "hash": match v.hash_kind {
                    HashKind::Concrete => cfgmx_model::hash::short_hash(&v.hash).to_string(),
                    HashKind::Spec => format!("spec {}", cfgmx_model::hash::short_hash(&v.hash)),
                },
                "tests": (!v.steps.is_empty()).then(|| tests_cell(v)),
                "threads": v.threads.filter(|t| *t > 1),
                "why": why,
                "log": log,
                "name": v.row_name(),
                "key": v.row_key(),
            })
        })
        .collect();
    serde_json::json!({
        "class": status_class(worst),
        "multi": cell.len() > 1,
        "subs": subs,
    })
}

/// A sub-cell's name: the runtime point alone when the cell holds one variant's points (its
/// row and column already name the variant), else the variant and its point.
fn sub_label(cell: &[&VariantResult], v: &VariantResult) -> String {
    match &v.runtime {
        Some(p) if cell.iter().all(|o| o.hash == v.hash) => p.label(),
        _ => v.row_name(),
    }
}

/// A JUnit classname's stem: variant, short hash, and the runtime point when there is one
/// (the points of a variant run the same tests: without it a dashboard would merge them).
fn class_base(v: &VariantResult) -> String {
    let short = cfgmx_model::hash::short_hash(&v.hash);
    match &v.runtime {
        Some(p) => format!("{}.{short}[{}]", v.name, p.label()),
        None => format!("{}.{short}", v.name),
    }
}

/// `passed/ran`, with the skipped ones named when there are: `2/2`, `1/2 (1 skipped)`.
fn tests_cell(v: &VariantResult) -> String {
    let mut s = format!("{}/{}", v.tests_passed, v.tests_passed + v.tests_failed);
    if v.tests_skipped > 0 {
        s.push_str(&format!(" ({} skipped)", v.tests_skipped));
    }
    s
}

impl Status {
    /// Failed, timed out or crashed: what makes the exit code 1 and stops `--fail-fast`.
    pub fn is_failure(self) -> bool {
        matches!(self, Status::Failed | Status::TimedOut | Status::Crashed)
    }
}

/// The status as JSON spells it, also the HTML class.
fn status_class(s: Status) -> &'static str {
    match s {
        Status::Passed => "passed",
        Status::Failed => "failed",
        Status::TimedOut => "timed_out",
        Status::NoTests => "no_tests",
        Status::Cached => "cached",
        Status::Unavailable => "unavailable",
        Status::Interrupted => "interrupted",
        Status::NotStarted => "not_started",
        Status::Crashed => "crashed",
        Status::Missing => "missing",
    }
}

/// The status as the table and the HTML show it.
pub fn status_label(s: Status) -> &'static str {
    match s {
        Status::Passed => "passed",
        Status::Failed => "FAILED",
        Status::TimedOut => "TIMED OUT",
        Status::NoTests => "no tests",
        Status::Cached => "passed (cached)",
        Status::Unavailable => "unavailable",
        Status::Interrupted => "interrupted",
        Status::NotStarted => "not started",
        Status::Crashed => "CRASHED",
        Status::Missing => "missing",
    }
}

fn step_class(s: StepStatus) -> &'static str {
    match s {
        StepStatus::Passed => "passed",
        StepStatus::Failed => "failed",
        StepStatus::NoTests => "no_tests",
        StepStatus::NotRun => "skipped",
    }
}

fn uniq<'a>(it: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut seen = BTreeSet::new();
    it.filter(|x| seen.insert(*x)).collect()
}

/// Escapes text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(name: &str, status: StepStatus) -> StepResult {
        StepResult {
            step: name.parse().unwrap(),
            status,
            command: String::new(),
            exit_code: Some(0),
            duration_s: 0.5,
            log: format!("h/logs/{name}.log"),
            cores: 1,
            message: None,
            timed_out: false,
        }
    }

    fn variant(
        name: &str,
        status: Status,
        test: StepStatus,
        tests: &[(&str, TestStatus)],
    ) -> VariantResult {
        let n = |s: TestStatus| tests.iter().filter(|t| t.1 == s).count() as u32;
        VariantResult {
            name: name.into(),
            hash: format!("{:0>64}", name.len()),
            hash_kind: HashKind::Concrete,
            compiler: "gcc".into(),
            blas: "threaded".into(),
            build: name.into(),
            status,
            reason: None,
            failed_step: None,
            steps: vec![
                step("configure", StepStatus::Passed),
                step("build", StepStatus::Passed),
                step("test", test),
            ],
            tests_passed: n(TestStatus::Passed),
            tests_failed: n(TestStatus::Failed),
            tests_skipped: n(TestStatus::Skipped),
            tests: tests
                .iter()
                .map(|(n, s)| TestCaseResult {
                    output: None,
                    name: n.to_string(),
                    status: *s,
                    time_s: 0.25,
                })
                .collect(),
            tests_from: Some("ctest-junit".into()),
            threads: Some(2),
            duration_s: 1.0,
            source_fingerprint: String::new(),
            tools: Default::default(),
            warnings: vec![],
            blas_linked: vec![],
            wheel: None,
            build_root: None,
            runtime: None,
        }
    }

    /// A variant's runtime points are rows of their own: merging shards keeps each (the same
    /// hash at two points is two results), JUnit has a suite per point with its values.
    /// Every value reaches the page escaped, through the template's autoescaping: a name or
    /// a test's output cannot open a tag or leave an attribute.
    #[test]
    fn html_escapes_every_value() {
        let mut v = variant(
            "<b>x</b>",
            Status::Failed,
            StepStatus::Failed,
            &[("t\"'<i>", TestStatus::Failed)],
        );
        v.reason = Some("<script>alert(1)</script>".into());
        v.failed_step = Some("test".into());
        v.tests[0].output = Some("a & b".into());
        let r = RunReport {
            schema: 1,
            matrix: "m\"<".into(),
            variants: vec![v],
            ..Default::default()
        };
        let h = r.html(&|_| "logs/\"x".into()).unwrap();
        for raw in ["<b>x", "<script>", "<i>", "m\"<", "/\"x"] {
            assert!(!h.contains(raw), "{raw} unescaped");
        }
        for escaped in [
            "&lt;b&gt;x&lt;/b&gt;",
            "&lt;script&gt;alert(1)&lt;/script&gt;",
            "t&quot;&#39;&lt;i&gt;",
            "a &amp; b",
            "href=\"logs/&quot;xh/logs/test.log\"",
        ] {
            assert!(h.contains(escaped), "{escaped} missing");
        }
    }

    #[test]
    fn runtime_points_are_rows_of_their_own() {
        let at = |t: &str| {
            let mut v = variant(
                "a",
                Status::Passed,
                StepStatus::Passed,
                &[("ok", TestStatus::Passed)],
            );
            v.runtime = Some(cfgmx_model::Point(
                [("threads".to_string(), t.to_string())]
                    .into_iter()
                    .collect(),
            ));
            v
        };
        let part = |t: &str| RunReport {
            schema: 1,
            matrix: "m".into(),
            variants: vec![at(t)],
            ..Default::default()
        };
        let merged = RunReport::merge(vec![part("1"), part("2"), part("1")]).unwrap();
        let names: Vec<String> = merged
            .variants
            .iter()
            .map(VariantResult::row_name)
            .collect();
        assert_eq!(names, ["a [threads=1]", "a [threads=2]"]);
        let back = quick_junit::Report::deserialize_from_str(&merged.junit()).unwrap();
        let suites: Vec<&str> = back.test_suites.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(suites, ["a [threads=1]", "a [threads=2]"]);
        let prop = |i: usize| {
            back.test_suites[i]
                .properties
                .iter()
                .find(|p| p.name.as_str() == "runtime.threads")
                .map(|p| p.value.to_string())
        };
        assert_eq!((prop(0), prop(1)), (Some("1".into()), Some("2".into())));
        // Two sub-cells in the one grid cell, each named by its point.
        let html = merged.html(&|_| String::new()).unwrap();
        assert!(
            html.contains("<small>threads=1</small>") && html.contains("<small>threads=2</small>")
        );
    }

    fn report() -> RunReport {
        RunReport {
            schema: 1,
            matrix: "m".into(),
            shard: None,
            cores: 2,
            wall_s: 1.0,
            variants: vec![
                variant(
                    "a",
                    Status::Failed,
                    StepStatus::Failed,
                    &[
                        ("ok", TestStatus::Passed),
                        ("<bad & \"x\">", TestStatus::Failed),
                        ("skip", TestStatus::Skipped),
                    ],
                ),
                variant("bb", Status::NoTests, StepStatus::NoTests, &[]),
            ],
        }
    }

    /// One JUnit case per test (the test step itself only where no test stands for it), each
    /// with its own status; hostile test names survive as text.
    #[test]
    fn junit_has_a_case_per_test() {
        let xml = report().junit();
        let back = quick_junit::Report::deserialize_from_str(&xml).unwrap();
        let a = &back.test_suites[0];
        let names: Vec<&str> = a.test_cases.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["configure", "build", "ok", "<bad & \"x\">", "skip"]);
        assert!(matches!(
            a.test_cases[2].status,
            quick_junit::TestCaseStatus::Success { .. }
        ));
        assert!(matches!(
            a.test_cases[3].status,
            quick_junit::TestCaseStatus::NonSuccess { .. }
        ));
        assert!(matches!(
            a.test_cases[4].status,
            quick_junit::TestCaseStatus::Skipped { .. }
        ));
        let prop = |k: &str| {
            a.properties
                .iter()
                .find(|p| p.name.as_str() == k)
                .map(|p| p.value.as_str().to_string())
        };
        assert_eq!(prop("threads").as_deref(), Some("2"));
        assert_eq!(prop("tests_from").as_deref(), Some("ctest-junit"));
        let b = &back.test_suites[1];
        let names: Vec<&str> = b.test_cases.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            ["configure", "build", "test"],
            "no test: the step stands"
        );
        assert!(matches!(
            b.test_cases[2].status,
            quick_junit::TestCaseStatus::Skipped { .. }
        ));
    }

    #[test]
    fn table_and_html_show_no_tests_threads_and_each_test() {
        let r = report();
        let rows = r.table_rows();
        assert_eq!(rows[0][2], "FAILED");
        assert_eq!(rows[0][6], "1/2 (1 skipped)");
        assert_eq!(rows[0][7], "2");
        assert_eq!(rows[1][2], "no tests");
        assert_eq!(rows[1][5], "no tests");
        let h = r.html(&|_| String::new()).unwrap();
        assert!(h.contains("1 no tests"), "{h}");
        assert!(h.contains("class=\"cell no_tests\""), "{h}");
        assert!(h.contains("&lt;bad &amp; &quot;x&quot;&gt;"), "{h}");
        assert!(!h.contains("<bad"), "{h}");
        // Round trip: a report merged from JSON keeps the per-test results.
        let json = serde_json::to_string(&r).unwrap();
        let back: RunReport = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
        // A record from before per-test results still reads.
        let old = json
            .replace(",\"tests_skipped\":1", "")
            .replace(",\"threads\":2", "");
        assert!(serde_json::from_str::<RunReport>(&old).is_ok());
        // An old report's "skipped" reads as not started: never counted as a pass.
        let old = json.replace(
            "\"build\":\"bb\",\"status\":\"no_tests\"",
            "\"build\":\"bb\",\"status\":\"skipped\"",
        );
        let back: RunReport = serde_json::from_str(&old).unwrap();
        assert_eq!(back.variants[1].status, Status::NotStarted);
    }

    /// Every status a row can have, as a user reads it in each report: a cached pass counts
    /// as passed everywhere (JUnit cases pass, marked cached), an unavailable or never-started
    /// variant still has its row with the reason, a failure names its step and key line.
    /// Long on purpose: one report of every status, read back through each format in turn,
    /// so that no format can drop a row the others show.
    #[test]
    fn every_variant_has_a_row_with_its_status_and_why() {
        let mut failed = variant("f", Status::Failed, StepStatus::Passed, &[]);
        failed.steps[0].status = StepStatus::Failed;
        failed.steps[0].message =
            Some("CMake Error at CMakeLists.txt:4 (message):\n  no BLAS here\n".into());
        failed.steps[1].status = StepStatus::NotRun;
        failed.steps[2].status = StepStatus::NotRun;
        failed.explain_failure();
        let mut cached = variant(
            "c",
            Status::Cached,
            StepStatus::Passed,
            &[("ok", TestStatus::Passed)],
        );
        cached.reason = Some("unchanged since it passed".into());
        let axes = ["icc", "threaded", "u"];
        let r = RunReport {
            schema: 1,
            matrix: "m".into(),
            shard: None,
            cores: 2,
            wall_s: 1.0,
            variants: vec![
                cached,
                failed,
                VariantResult::not_built(
                    "u",
                    &"9".repeat(64),
                    axes,
                    Status::Unavailable,
                    "no compiler `icc` found",
                ),
                VariantResult::not_built(
                    "ns",
                    &"8".repeat(64),
                    axes,
                    Status::NotStarted,
                    "--fail-fast: an earlier variant failed",
                ),
                VariantResult::not_built(
                    "in",
                    &"7".repeat(64),
                    axes,
                    Status::Interrupted,
                    "interrupted while it was building",
                ),
            ],
        };
        let rows = r.table_rows();
        let status: Vec<&str> = rows.iter().map(|r| r[2].as_str()).collect();
        assert_eq!(
            status,
            [
                "passed (cached)",
                "FAILED",
                "unavailable",
                "not started",
                "interrupted"
            ]
        );
        assert_eq!(
            rows[2][3..],
            ["-", "-", "-", "-", "-", "-"],
            "an unbuilt variant has no step results, tests or time"
        );
        assert_eq!(
            r.why_lines(),
            [
                "FAILED f: configure failed: CMake Error at CMakeLists.txt:4 (message):",
                "unavailable u: no compiler `icc` found",
                "not started ns: --fail-fast: an earlier variant failed",
                "interrupted in: interrupted while it was building",
            ]
        );
        assert_eq!(
            r.summary(),
            "1 passed (1 cached), 1 failed, 1 unavailable, 1 interrupted, 1 not started"
        );

        let json = serde_json::to_value(&r).unwrap();
        let st: Vec<&str> = json["variants"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["status"].as_str().unwrap())
            .collect();
        assert_eq!(
            st,
            [
                "cached",
                "failed",
                "unavailable",
                "not_started",
                "interrupted"
            ]
        );
        assert_eq!(json["variants"][1]["failed_step"], "configure");
        assert_eq!(json["variants"][2]["reason"], "no compiler `icc` found");

        let xml = r.junit();
        let back = quick_junit::Report::deserialize_from_str(&xml).unwrap();
        let suite = |n: &str| {
            back.test_suites
                .iter()
                .find(|s| s.name.as_str() == n)
                .unwrap()
        };
        let c = suite("c");
        assert!(!c.test_cases.is_empty());
        for tc in &c.test_cases {
            assert!(
                matches!(tc.status, quick_junit::TestCaseStatus::Success { .. }),
                "{xml}"
            );
            assert!(
                tc.system_out
                    .as_ref()
                    .is_some_and(|o| o.as_str().starts_with("cached: ")),
                "{xml}"
            );
        }
        assert!(c
            .properties
            .iter()
            .any(|p| p.name.as_str() == "cached" && p.value.as_str() == "true"));
        for (n, why) in [
            ("u", "unavailable: no compiler `icc` found"),
            ("ns", "not started: --fail-fast"),
            ("in", "interrupted: "),
        ] {
            let s = suite(n);
            assert_eq!(s.test_cases.len(), 1);
            match &s.test_cases[0].status {
                quick_junit::TestCaseStatus::Skipped { message, .. } => {
                    assert!(message.as_ref().unwrap().as_str().starts_with(why), "{xml}")
                }
                other => panic!("{n}: {other:?}"),
            }
        }
        match &suite("f").test_cases[0].status {
            quick_junit::TestCaseStatus::NonSuccess { message, .. } => assert!(
                message
                    .as_ref()
                    .unwrap()
                    .as_str()
                    .starts_with("configure failed: CMake Error at CMakeLists.txt:4"),
                "{xml}"
            ),
            other => panic!("{other:?}"),
        }

        let h = r.html(&|_| String::new()).unwrap();
        assert!(h.contains("1 passed (1 cached)</span>"), "{h}");
        assert!(h.contains("1 unavailable</span>"), "{h}");
        assert!(h.contains("2 not run</span>"), "{h}");
        assert!(h.contains("class=\"cell cached\""), "{h}");
        assert!(h.contains("<b>unavailable</b>"), "{h}");
        assert!(h.contains("no compiler `icc` found"), "{h}");
        assert!(
            h.contains("configure failed: CMake Error at CMakeLists.txt:4 (message):"),
            "{h}"
        );
        // Read back (as `report merge` does), nothing is lost.
        let back: RunReport = serde_json::from_value(json).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn crashed_fails_and_missing_is_counted_apart_in_summary_junit_and_html() {
        let mut r = RunReport {
            schema: 1,
            matrix: "m".into(),
            ..Default::default()
        };
        for (n, st) in [("a", Status::Crashed), ("b", Status::Missing)] {
            r.variants.push(VariantResult::not_built(
                n,
                "0123456789abcdef",
                ["gcc", "sequential", "debug"],
                st,
                "why",
            ));
        }
        assert_eq!(r.failed(), 1);
        assert_eq!(r.not_run(), 1);
        assert_eq!(r.summary(), "0 passed, 0 failed, 1 crashed, 1 missing");
        let j = r.junit();
        assert_eq!(j.matches("<failure").count(), 1, "{j}");
        assert_eq!(j.matches("<skipped").count(), 1, "{j}");
        let h = r.html(&|_| String::new()).unwrap();
        assert!(h.contains("1 failed") && h.contains("1 not run"), "{h}");
    }
}
