//! Bounds on what one template may make tera do: `range` longer than [`MAX_RANGE`] items is
//! refused (tera's own builds the whole list first: `range(end=10000000000)` aborted the
//! process allocating it), and one file's output stops at [`MAX_OUTPUT`] bytes. Work that
//! produces no output and no list (nested loops, doubling a string) is bounded by the CLI,
//! which renders users' templates in a child process with a time and memory limit.

use std::collections::HashMap;
use std::io::Write;
use tera::{Result, Value};

/// Longest list `range` makes.
pub const MAX_RANGE: u64 = 1_000_000;
/// Most bytes one rendered file may have.
pub const MAX_OUTPUT: usize = 64 << 20;
/// Found in an error chain when the output limit stopped rendering.
pub const OUTPUT_TAG: &str = "cfgmx-output-limit";

fn arg(args: &HashMap<String, Value>, name: &str, default: u64) -> Result<u64> {
    match args.get(name) {
        None => Ok(default),
        Some(v) => v.as_u64().ok_or_else(|| {
            tera::Error::msg(format!(
                "Function `range` received {name}={v} but `{name}` can only be a non-negative whole number"
            ))
        }),
    }
}

/// tera's `range(end, start=0, step_by=1)`, refusing more than [`MAX_RANGE`] items.
pub fn range(args: &HashMap<String, Value>) -> Result<Value> {
    let start = arg(args, "start", 0)?;
    let step = arg(args, "step_by", 1)?;
    let Some(_) = args.get("end") else {
        return Err(tera::Error::msg(
            "Function `range` was called without the `end` argument",
        ));
    };
    let end = arg(args, "end", 0)?;
    if step == 0 {
        return Err(tera::Error::msg("Function `range` received step_by=0"));
    }
    if start > end {
        return Err(tera::Error::msg(
            "Function `range` was called with a `start` argument greater than the `end` one",
        ));
    }
    let count = (end - start).div_ceil(step);
    if count > MAX_RANGE {
        return Err(tera::Error::msg(format!(
            "Function `range` would make {count} items; cfgmx allows at most {MAX_RANGE}"
        )));
    }
    Ok(Value::Array(
        (start..end)
            .step_by(step as usize)
            .map(Value::from)
            .collect(),
    ))
}

/// A writer that fails once more than `limit` bytes were written: tera writes as it renders,
/// so an endless loop of output stops there instead of filling memory.
pub struct Capped {
    pub buf: Vec<u8>,
    pub limit: usize,
}

impl Write for Capped {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        if self.buf.len() + b.len() > self.limit {
            return Err(std::io::Error::other(OUTPUT_TAG));
        }
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(pairs: &[(&str, u64)]) -> Result<Value> {
        range(
            &pairs
                .iter()
                .map(|(k, v)| (k.to_string(), Value::from(*v)))
                .collect(),
        )
    }

    #[test]
    fn range_keeps_teras_meaning_and_refuses_huge_lists() {
        assert_eq!(
            call(&[("end", 5)]).unwrap(),
            serde_json::json!([0, 1, 2, 3, 4])
        );
        assert_eq!(
            call(&[("start", 1), ("end", 8), ("step_by", 3)]).unwrap(),
            serde_json::json!([1, 4, 7])
        );
        assert_eq!(
            call(&[("end", MAX_RANGE)])
                .unwrap()
                .as_array()
                .unwrap()
                .len(),
            1_000_000
        );
        let e = call(&[("end", 10_000_000_000)]).unwrap_err().to_string();
        assert!(e.contains("at most 1000000"), "{e}");
        assert!(call(&[("end", 5), ("step_by", 0)]).is_err());
        assert!(call(&[("start", 6), ("end", 5)]).is_err());
    }

    #[test]
    fn output_past_the_limit_fails() {
        let mut w = Capped {
            buf: Vec::new(),
            limit: 4,
        };
        assert!(w.write_all(b"abcd").is_ok());
        assert!(w.write_all(b"e").is_err());
        assert_eq!(w.buf, b"abcd");
    }
}
