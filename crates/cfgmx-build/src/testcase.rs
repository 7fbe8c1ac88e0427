//! One of the project's own tests as its driver reported it: what the key line of a failed
//! test step is read from (`keyline.rs`) and what the reports show (`report.rs`, which
//! re-exports it), in a module of its own so neither needs the other's.

use serde::{Deserialize, Serialize};

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
    /// A failed test's own output, its last lines: what it said about why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
}
