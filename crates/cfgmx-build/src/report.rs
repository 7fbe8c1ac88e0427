//! Results and the reporters that consume them: JSON (the record format, also what `report
//! merge` reads), JUnit XML (one suite per variant: a case per step and one per test the
//! project ran) and a self-contained HTML grid compiler x blas x build coloured by result.
//! Pure: they return strings; the CLI writes them.

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

/// One step: configure, build or test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepResult {
    pub step: String,
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
}

/// How one of the project's own tests ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TestStatus {
    Passed,
    Failed,
    /// Skipped or disabled by the project (ctest's SKIP_RETURN_CODE, DISABLED; Meson's SKIP):
    /// it did not run, so it proves nothing.
    Skipped,
}

/// One of the project's tests, as the test driver reported it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestCaseResult {
    pub name: String,
    pub status: TestStatus,
    pub time_s: f64,
}

/// The variant's overall status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Passed,
    Failed,
    /// Configured and built, but no test ran: never a pass (the exit code is 1 unless the user
    /// allows it), since nothing was checked.
    NoTests,
    /// Not built in this run: unchanged since a pass, or stopped by --fail-fast/interrupt.
    Skipped,
}

/// Everything recorded about one variant's build.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariantResult {
    pub name: String,
    pub hash: String,
    pub compiler: String,
    pub blas: String,
    pub build: String,
    pub status: Status,
    /// Why it was skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
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
}

impl VariantResult {
    pub fn step(&self, name: &str) -> Option<&StepResult> {
        self.steps.iter().find(|s| s.step == name)
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

impl RunReport {
    pub fn passed(&self) -> usize {
        self.count(Status::Passed)
    }
    pub fn failed(&self) -> usize {
        self.count(Status::Failed)
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
            for v in p.variants {
                seen.insert(v.hash.clone(), v);
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
                let status = match v.status {
                    Status::Passed => "passed",
                    Status::Failed => "FAILED",
                    Status::NoTests => "no tests",
                    Status::Skipped => "skipped",
                };
                vec![
                    v.name.clone(),
                    v.hash[..v.hash.len().min(12)].to_string(),
                    status.to_string(),
                    st("configure"),
                    st("build"),
                    st("test"),
                    tests_cell(v),
                    v.threads.map_or("-".to_string(), |t| t.to_string()),
                    format!("{:.1}s", v.duration_s),
                ]
            })
            .collect()
    }

    /// JUnit XML: one suite per variant; a case per step, and the test step as one case per
    /// test the project ran (the step itself appears only when no test result stands for it:
    /// no test ran, or the driver failed with no failed test to show for it).
    pub fn junit(&self) -> String {
        use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
        use std::time::Duration;
        let mut report = Report::new(format!("cfgmx build {}", self.matrix));
        for v in &self.variants {
            let mut suite = TestSuite::new(v.name.clone());
            // What the tests ran with and where their results were read from.
            if let Some(t) = v.threads {
                suite.add_property(quick_junit::Property::new("threads", t.to_string()));
            }
            if let Some(f) = &v.tests_from {
                suite.add_property(quick_junit::Property::new("tests_from", f.clone()));
            }
            if v.steps.is_empty() {
                let mut st = TestCaseStatus::skipped();
                st.set_message(v.reason.clone().unwrap_or_else(|| "not run".into()));
                let mut tc = TestCase::new("build", st);
                tc.set_classname(v.name.clone());
                suite.add_test_case(tc);
            }
            for s in &v.steps {
                if s.step == "test" && !v.tests.is_empty() {
                    let any_failed = v.tests.iter().any(|t| t.status == TestStatus::Failed);
                    for t in &v.tests {
                        let st = match t.status {
                            TestStatus::Passed => TestCaseStatus::success(),
                            TestStatus::Failed => {
                                let mut st = TestCaseStatus::non_success(NonSuccessKind::Failure);
                                st.set_message(format!("test {} failed (log: {})", t.name, s.log));
                                st
                            }
                            TestStatus::Skipped => {
                                let mut st = TestCaseStatus::skipped();
                                st.set_message("skipped by the project");
                                st
                            }
                        };
                        let st = if v.status == Status::Skipped {
                            let mut st = TestCaseStatus::skipped();
                            st.set_message(v.reason.clone().unwrap_or_else(|| "unchanged".into()));
                            st
                        } else {
                            st
                        };
                        let mut tc = TestCase::new(t.name.clone(), st);
                        tc.set_classname(format!(
                            "{}.{}.test",
                            v.name,
                            &v.hash[..v.hash.len().min(12)]
                        ));
                        tc.set_time(Duration::from_secs_f64(t.time_s.max(0.0)));
                        suite.add_test_case(tc);
                    }
                    if s.status != StepStatus::Failed || any_failed {
                        continue;
                    }
                }
                let mut st = match s.status {
                    StepStatus::Passed => TestCaseStatus::success(),
                    StepStatus::Failed => {
                        let mut st = TestCaseStatus::non_success(NonSuccessKind::Failure);
                        st.set_message(format!("{} failed (log: {})", s.step, s.log));
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
                if v.status == Status::Skipped && s.status == StepStatus::Passed {
                    st = TestCaseStatus::skipped();
                    st.set_message(v.reason.clone().unwrap_or_else(|| "unchanged".into()));
                }
                let mut tc = TestCase::new(s.step.clone(), st);
                tc.set_classname(format!("{}.{}", v.name, &v.hash[..v.hash.len().min(12)]));
                tc.set_time(Duration::from_secs_f64(s.duration_s.max(0.0)));
                suite.add_test_case(tc);
            }
            report.add_test_suite(suite);
        }
        report
            .to_string()
            .unwrap_or_else(|e| format!("<!-- cannot serialise JUnit: {e} -->\n"))
    }

    /// A self-contained HTML page: one grid per value of the remaining axes, rows = compiler,
    /// columns = blas x build, each cell coloured by status and linking to its logs.
    /// `log_prefix` is put before each log path (relative to the build root) so links work
    /// from where the page is saved.
    pub fn html(&self, log_prefix: &str) -> String {
        let compilers: Vec<&str> = uniq(self.variants.iter().map(|v| v.compiler.as_str()));
        let blases: Vec<&str> = uniq(self.variants.iter().map(|v| v.blas.as_str()));
        let builds: Vec<&str> = uniq(self.variants.iter().map(|v| v.build.as_str()));
        let mut h = String::new();
        h.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n");
        h.push_str(&format!(
            "<title>cfgmx build: {}</title>\n",
            esc(&self.matrix)
        ));
        h.push_str(STYLE);
        h.push_str("</head><body>\n");
        h.push_str(&format!(
            "<h1>cfgmx build <code>{}</code></h1>\n<p class=\"sum\"><span class=\"passed\">{} passed</span> <span class=\"failed\">{} failed</span> <span class=\"no_tests\">{} no tests</span> <span class=\"skipped\">{} skipped</span> &middot; {} cores &middot; {:.1} s wall</p>\n",
            esc(&self.matrix),
            self.passed(),
            self.failed(),
            self.no_tests(),
            self.count(Status::Skipped),
            self.cores,
            self.wall_s
        ));
        h.push_str("<table class=\"grid\"><thead><tr><th rowspan=\"2\">compiler</th>");
        for b in &blases {
            h.push_str(&format!("<th colspan=\"{}\">{}</th>", builds.len(), esc(b)));
        }
        h.push_str("</tr><tr>");
        for _ in &blases {
            for bu in &builds {
                h.push_str(&format!("<th>{}</th>", esc(bu)));
            }
        }
        h.push_str("</tr></thead><tbody>\n");
        for c in &compilers {
            h.push_str(&format!("<tr><th>{}</th>", esc(c)));
            for b in &blases {
                for bu in &builds {
                    let cell: Vec<&VariantResult> = self
                        .variants
                        .iter()
                        .filter(|v| v.compiler == *c && v.blas == *b && v.build == *bu)
                        .collect();
                    h.push_str(&cell_html(&cell, log_prefix));
                }
            }
            h.push_str("</tr>\n");
        }
        h.push_str("</tbody></table>\n<h2>Variants</h2>\n<table class=\"list\"><tr><th>variant</th><th>hash</th><th>status</th><th>configure</th><th>build</th><th>test</th><th>tests</th><th>threads</th><th>time</th></tr>\n");
        for v in &self.variants {
            h.push_str(&format!(
                "<tr id=\"v-{}\" class=\"{}\"><td>{}</td><td><code>{}</code></td><td>{}</td>",
                esc(&v.hash),
                status_class(v.status),
                esc(&v.name),
                esc(&v.hash[..v.hash.len().min(12)]),
                status_class(v.status)
            ));
            for n in ["configure", "build", "test"] {
                match v.step(n) {
                    Some(s) if !s.log.is_empty() => h.push_str(&format!(
                        "<td class=\"{}\"><a href=\"{}\">{}</a> {:.1}s</td>",
                        step_class(s.status),
                        esc(&format!("{log_prefix}{}", s.log)),
                        step_class(s.status),
                        s.duration_s
                    )),
                    Some(s) => h.push_str(&format!(
                        "<td class=\"{}\">{}</td>",
                        step_class(s.status),
                        step_class(s.status)
                    )),
                    None => h.push_str("<td>-</td>"),
                }
            }
            h.push_str(&format!(
                "<td>{}</td><td>{}</td><td>{:.1}s</td></tr>\n",
                esc(&tests_cell(v)),
                v.threads.map_or("-".to_string(), |t| t.to_string()),
                v.duration_s
            ));
        }
        h.push_str("</table>\n");
        // Every test of every variant: which one failed is what a maintainer looks for first.
        if self.variants.iter().any(|v| !v.tests.is_empty()) {
            h.push_str("<h2>Tests</h2>\n<table class=\"list tests\"><tr><th>variant</th><th>test</th><th>status</th><th>time</th></tr>\n");
            for v in &self.variants {
                for t in &v.tests {
                    let class = match t.status {
                        TestStatus::Passed => "passed",
                        TestStatus::Failed => "failed",
                        TestStatus::Skipped => "skipped",
                    };
                    h.push_str(&format!(
                        "<tr><td><a href=\"#v-{}\">{}</a></td><td>{}</td><td class=\"{class}\">{class}</td><td>{:.2}s</td></tr>\n",
                        esc(&v.hash),
                        esc(&v.name),
                        esc(&t.name),
                        t.time_s
                    ));
                }
            }
            h.push_str("</table>\n");
        }
        h.push_str("</body></html>\n");
        h
    }
}

fn cell_html(cell: &[&VariantResult], log_prefix: &str) -> String {
    if cell.is_empty() {
        return "<td class=\"none\">&ndash;</td>".into();
    }
    // Several variants can share a cell when user axes add dimensions: the worst colours it.
    let worst = cell
        .iter()
        .map(|v| v.status)
        .max_by_key(|s| match s {
            Status::Failed => 3,
            Status::NoTests => 2,
            Status::Passed => 0,
            Status::Skipped => 1,
        })
        .unwrap_or(Status::Skipped);
    let mut s = format!("<td class=\"cell {}\">", status_class(worst));
    for v in cell {
        let failed_step = v
            .steps
            .iter()
            .find(|s| s.status == StepStatus::Failed)
            .map(|s| format!(" &middot; {} failed", esc(&s.step)))
            .unwrap_or_default();
        let log = v
            .steps
            .iter()
            .find(|s| s.status == StepStatus::Failed)
            .or(v.steps.last())
            .filter(|s| !s.log.is_empty())
            .map(|s| format!("{log_prefix}{}", s.log));
        let label = format!(
            "<b>{}</b><br><small><code>{}</code> &middot; {} tests{}{}</small>",
            status_class(v.status),
            esc(&v.hash[..v.hash.len().min(8)]),
            esc(&tests_cell(v)),
            v.threads
                .filter(|t| *t > 1)
                .map(|t| format!(" &middot; {t} threads"))
                .unwrap_or_default(),
            failed_step
        );
        match log {
            Some(l) => s.push_str(&format!(
                "<a href=\"{}\" title=\"{}\">{label}</a>",
                esc(&l),
                esc(&v.name)
            )),
            None => s.push_str(&format!("<a href=\"#v-{}\">{label}</a>", esc(&v.hash))),
        }
    }
    s.push_str("</td>");
    s
}

const STYLE: &str = "<style>
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
h1 code{font-size:90%}
.sum span{padding:.2em .6em;border-radius:.3em;margin-right:.5em}
table.grid{border-collapse:separate;border-spacing:4px;margin:1em 0}
table.grid th{background:#eee;padding:.4em .8em}
table.grid td{width:9em;height:4em;text-align:center;border-radius:.4em}
table.grid td a{color:inherit;text-decoration:none;display:block}
.passed{background:#2e9e4f;color:#fff}
.failed{background:#d33c3c;color:#fff}
.skipped{background:#9aa4ad;color:#fff}
.no_tests{background:#e0a030;color:#fff}
.none{background:#f4f4f4;color:#aaa}
table.list{border-collapse:collapse;margin-top:1em}
table.list td,table.list th{border:1px solid #ddd;padding:.25em .6em;text-align:left}
table.list tr.passed,table.list tr.failed,table.list tr.skipped,table.list tr.no_tests{background:none;color:inherit}
table.list td.passed a,table.list td.failed a,table.list td.no_tests a{color:#fff}
</style>
";

/// `passed/ran`, with the skipped ones named when there are: `2/2`, `1/2 (1 skipped)`.
fn tests_cell(v: &VariantResult) -> String {
    let mut s = format!("{}/{}", v.tests_passed, v.tests_passed + v.tests_failed);
    if v.tests_skipped > 0 {
        s.push_str(&format!(" ({} skipped)", v.tests_skipped));
    }
    s
}

fn status_class(s: Status) -> &'static str {
    match s {
        Status::Passed => "passed",
        Status::Failed => "failed",
        Status::NoTests => "no_tests",
        Status::Skipped => "skipped",
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
            step: name.into(),
            status,
            command: String::new(),
            exit_code: Some(0),
            duration_s: 0.5,
            log: format!("h/logs/{name}.log"),
            cores: 1,
            message: None,
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
            compiler: "gcc".into(),
            blas: "threaded".into(),
            build: name.into(),
            status,
            reason: None,
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
        }
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
        let h = r.html("");
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
    }
}
