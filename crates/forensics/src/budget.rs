//! The byte budget of one bundle. Everything the sandbox controls in bulk is charged against it:
//! each layer archive's headers, long names and data, the `capture.json` listing of each entry,
//! and each task's /proc files. When a charge does not fit, the capture keeps what it has, stops
//! taking more, and records that the evidence is truncated (in `capture.json`, the signed
//! manifest, `evidence show` and an `evidence_truncated` event).
//!
//! Tasks and layers are captured at the same time, so the layers may use the budget only up to
//! `limit - task_floor`: a flood of files in /tmp cannot crowd out the process state, which is
//! the evidence that says who did what.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

/// Kept for the tasks' /proc files (or a quarter of the limit when that is smaller).
pub const TASK_FLOOR: u64 = 16 << 20;

pub struct Budget {
    limit: u64,
    task_floor: u64,
    used: AtomicU64,
    exhausted: AtomicBool,
    /// What hit the limit first, for the record.
    first: Mutex<Option<String>>,
}

impl Budget {
    pub fn new(limit: u64) -> Budget {
        Budget {
            limit,
            task_floor: TASK_FLOOR.min(limit / 4),
            used: AtomicU64::new(0),
            exhausted: AtomicBool::new(false),
            first: Mutex::new(None),
        }
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }

    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    /// Takes `n` bytes for layer content, all or nothing.
    pub fn take_layer(&self, n: u64) -> bool {
        self.take(n, self.limit - self.task_floor)
    }

    /// Bytes layers may still take.
    pub fn layer_remaining(&self) -> u64 {
        (self.limit - self.task_floor).saturating_sub(self.used())
    }

    /// Takes `n` bytes for task files, all or nothing.
    pub fn take_task(&self, n: u64) -> bool {
        self.take(n, self.limit)
    }

    /// Bytes tasks may still take.
    pub fn task_remaining(&self) -> u64 {
        self.limit.saturating_sub(self.used())
    }

    fn take(&self, n: u64, ceiling: u64) -> bool {
        self.used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| {
                u.checked_add(n).filter(|&t| t <= ceiling)
            })
            .is_ok()
    }

    /// Records that `what` did not fit; the first one is what the record names.
    pub fn exhaust(&self, what: String) {
        self.exhausted.store(true, Ordering::Relaxed);
        let mut first = self.first.lock().expect("budget lock");
        if first.is_none() {
            *first = Some(what);
        }
    }

    pub fn is_exhausted(&self) -> bool {
        self.exhausted.load(Ordering::Relaxed)
    }

    /// The first thing that did not fit, once the budget was reached.
    pub fn truncated(&self) -> Option<String> {
        self.first.lock().expect("budget lock").clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_leave_the_task_floor() {
        let b = Budget::new(100 << 20);
        assert!(
            !b.take_layer(100 << 20),
            "layers cannot take the tasks' share"
        );
        assert!(b.take_layer((100 << 20) - TASK_FLOOR));
        assert_eq!(b.layer_remaining(), 0);
        assert!(b.take_task(TASK_FLOOR));
        assert!(!b.take_task(1));
        assert!(b.truncated().is_none());
        b.exhaust("a".into());
        b.exhaust("b".into());
        assert_eq!(b.truncated().as_deref(), Some("a"));
        let small = Budget::new(4096);
        assert_eq!(small.task_remaining(), 4096);
        assert_eq!(small.layer_remaining(), 3072);
    }
}
