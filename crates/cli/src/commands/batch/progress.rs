//! Progress on stderr: one updating line on a terminal, otherwise JSON Lines events, at most
//! four a second (and always the last).

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// The batch's progress counters.
pub struct Progress {
    total: usize,
    done: usize,
    verdicts: BTreeMap<String, usize>,
    start: Instant,
    last: Option<Instant>,
    tty: bool,
}

/// The least time between two progress outputs.
const EVERY: Duration = Duration::from_millis(250);

impl Progress {
    /// Progress over `total` jobs to run.
    pub fn new(total: usize) -> Self {
        Progress {
            total,
            done: 0,
            verdicts: BTreeMap::new(),
            start: Instant::now(),
            last: None,
            tty: std::io::stderr().is_terminal(),
        }
    }

    /// One job finished with `verdict`.
    pub fn job_done(&mut self, verdict: &str) {
        self.done += 1;
        *self.verdicts.entry(verdict.to_string()).or_default() += 1;
        let now = Instant::now();
        if self.done == self.total || self.last.is_none_or(|l| now - l >= EVERY) {
            self.last = Some(now);
            self.emit(now - self.start);
        }
    }

    /// The final line (a newline after the terminal line).
    pub fn finish(&mut self) {
        if self.tty && self.last.is_some() {
            eprintln!();
        }
    }

    fn emit(&self, elapsed: Duration) {
        let line = render(self.done, self.total, &self.verdicts, elapsed, self.tty);
        let mut err = std::io::stderr().lock();
        let _ = if self.tty {
            write!(err, "\r\x1b[K{line}")
        } else {
            writeln!(err, "{line}")
        };
        let _ = err.flush();
    }
}

/// One progress output: the terminal line or the JSON event.
pub fn render(
    done: usize,
    total: usize,
    verdicts: &BTreeMap<String, usize>,
    elapsed: Duration,
    tty: bool,
) -> String {
    let secs = elapsed.as_secs_f64();
    let rate = if secs > 0.0 { done as f64 / secs } else { 0.0 };
    let eta = (rate > 0.0).then(|| (total.saturating_sub(done)) as f64 / rate);
    if tty {
        let counts: Vec<String> = verdicts.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let eta = eta.map_or(String::from("?"), |e| format!("{e:.0}s"));
        format!(
            "{done}/{total} jobs  {rate:.2} jobs/s  {}  ETA {eta}",
            counts.join(" ")
        )
    } else {
        let rnd = |x: f64| (x * 100.0).round() / 100.0;
        serde_json::json!({
            "done": done,
            "total": total,
            "verdicts": verdicts,
            "jobs_per_s": rnd(rate),
            "elapsed_s": rnd(secs),
            "eta_s": eta.map(rnd),
        })
        .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms() {
        let v = BTreeMap::from([("AC".to_string(), 2), ("WA".to_string(), 1)]);
        let j: serde_json::Value =
            serde_json::from_str(&render(3, 6, &v, Duration::from_secs(2), false)).unwrap();
        assert_eq!(j["done"], 3);
        assert_eq!(j["verdicts"]["AC"], 2);
        assert_eq!(j["jobs_per_s"], 1.5);
        assert_eq!(j["eta_s"], 2.0);
        assert_eq!(
            render(3, 6, &v, Duration::from_secs(2), true),
            "3/6 jobs  1.50 jobs/s  AC 2 WA 1  ETA 2s"
        );
    }
}
