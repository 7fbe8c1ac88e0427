//! One core budget for everything: a GNU make jobserver pool of `cores` tokens that cfgmx's own
//! steps draw from and that nested `make` joins through `MAKEFLAGS`.
//!
//! Accounting: every child a step starts runs one job without asking (its implicit slot), so
//! cfgmx takes a token on the child's behalf before starting it; a make child then draws its
//! extra jobs from the same pool. ninja before 1.13 cannot join a jobserver, so a ninja step
//! takes its whole share of tokens up front and is told `-j` that many: the number of compile
//! processes never exceeds the tokens held, and the tokens never exceed the budget.

use jobserver::{Acquired, Client};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

#[derive(Clone)]
pub struct Budget {
    pub cores: usize,
    client: Client,
    /// Variants currently running, to compute a fair share.
    running: Arc<AtomicUsize>,
    taking: Arc<std::sync::Mutex<()>>,
}

/// Tokens held by one step; returned to the pool on drop (even on panic or error).
pub struct Held {
    tokens: Vec<Acquired>,
}

impl Held {
    pub fn count(&self) -> usize {
        self.tokens.len()
    }
}

impl Budget {
    pub fn new(cores: usize) -> std::io::Result<Budget> {
        let cores = cores.max(1);
        Ok(Budget {
            cores,
            client: Client::new(cores)?,
            running: Arc::new(AtomicUsize::new(0)),
            taking: Arc::new(std::sync::Mutex::new(())),
        })
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Marks a variant as running for the share computation; the guard unmarks it.
    pub fn enter(&self) -> RunningGuard {
        self.running.fetch_add(1, Ordering::SeqCst);
        RunningGuard(self.running.clone())
    }

    /// The cores one running variant may use when `running` share the machine.
    pub fn share(&self) -> usize {
        let r = self.running.load(Ordering::SeqCst).max(1);
        (self.cores / r).max(1)
    }

    /// Blocks for one token, then takes up to `want - 1` more if they are free now (a step
    /// never waits for its extras: the ones it gets are the ones it uses).
    pub fn take(&self, want: usize) -> std::io::Result<Held> {
        // One taker at a time, the first token included: a `take_exactly` waiting for its
        // last token must not be overtaken by a taker that then waits for the lock (each
        // would hold what the other needs). A taker holds no token from an earlier step, so
        // the one waiting here only waits for steps that are running to end.
        let _one = self.taking.lock().unwrap_or_else(|e| e.into_inner());
        let mut tokens = vec![self.client.acquire()?];
        // A pipe-backed pool has no non-blocking acquire: count what is in the pipe and take
        // that many (a make child that races for them can only make this wait, never
        // oversubscribe).
        let free = self.client.available()?;
        for _ in 0..free.min(want.max(1) - 1) {
            tokens.push(self.client.acquire()?);
        }
        Ok(Held { tokens })
    }
}

impl Budget {
    /// Blocks until `n` tokens (at most the whole budget) are held: a threaded variant's tests
    /// wait for the cores their thread count needs rather than run with fewer threads.
    pub fn take_exactly(&self, n: usize) -> std::io::Result<Held> {
        let n = n.clamp(1, self.cores);
        let _one = self.taking.lock().unwrap_or_else(|e| e.into_inner());
        let mut tokens = Vec::with_capacity(n);
        for _ in 0..n {
            tokens.push(self.client.acquire()?);
        }
        Ok(Held { tokens })
    }
}

pub struct RunningGuard(Arc<AtomicUsize>);

impl Drop for RunningGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_never_exceed_the_budget_and_come_back() {
        let b = Budget::new(3).unwrap();
        let a = b.take(2).unwrap();
        assert_eq!(a.count(), 2);
        let c = b.take(5).unwrap();
        assert_eq!(c.count(), 1, "only one token was left");
        drop(a);
        let d = b.take(5).unwrap();
        assert_eq!(d.count(), 2);
    }

    /// A step that needs 2 of 2 cores waits while another holds one, and gets both once it
    /// is returned, never fewer.
    #[test]
    fn take_exactly_waits_for_every_core() {
        let b = Budget::new(2).unwrap();
        let one = b.take(1).unwrap();
        let got = std::sync::Mutex::new(None);
        std::thread::scope(|s| {
            s.spawn(|| {
                let h = b.take_exactly(2).unwrap();
                *got.lock().unwrap() = Some(h.count());
            });
            std::thread::sleep(std::time::Duration::from_millis(200));
            assert_eq!(
                *got.lock().unwrap(),
                None,
                "took 2 cores while only 1 was free"
            );
            drop(one);
        });
        assert_eq!(*got.lock().unwrap(), Some(2));
        // Asking for more than the budget waits for the whole budget, not forever.
        assert_eq!(b.take_exactly(5).unwrap().count(), 2);
    }

    #[test]
    fn share_divides_the_budget_between_running_variants() {
        let b = Budget::new(4).unwrap();
        let _g1 = b.enter();
        assert_eq!(b.share(), 4);
        let _g2 = b.enter();
        let _g3 = b.enter();
        assert_eq!(b.share(), 1);
    }

    #[test]
    // The jobserver crate configures a std Command; this test checks exactly that.
    #[allow(clippy::disallowed_methods)]
    fn make_children_see_the_pool() {
        let b = Budget::new(2).unwrap();
        let mut c = std::process::Command::new("sh");
        c.args(["-c", "echo $MAKEFLAGS"]);
        b.client().configure_make(&mut c);
        let out = c.output().unwrap();
        let s = String::from_utf8_lossy(&out.stdout);
        assert!(s.contains("--jobserver-auth="), "{s}");
    }
}
