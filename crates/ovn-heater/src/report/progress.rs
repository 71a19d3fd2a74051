//! Progress of a stage on stderr: a self-overwriting line with rate and ETA on a terminal,
//! plain lines (at most one per 10 % or 5 s) otherwise, so CI logs stay readable.
//!
//! Must not know: what is being counted.
#![allow(clippy::print_stderr)]

use std::io::IsTerminal;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Counts done/failed items of one stage; shared by the stage's workers.
pub struct Progress {
    label: String,
    total: usize,
    done: AtomicUsize,
    failed: AtomicUsize,
    /// Items not run because an earlier step of theirs failed (not failures of their own).
    skipped: AtomicUsize,
    started: Instant,
    tty: bool,
    /// Last plain line: (when, tenths of the total done).
    last_plain: Mutex<(Instant, usize)>,
}

/// `m:ss` (or `h:mm:ss`).
pub fn fmt_eta(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

impl Progress {
    pub fn new(label: impl Into<String>, total: usize) -> Self {
        Self::with_terminal(label, total, std::io::stderr().is_terminal())
    }

    pub fn with_terminal(label: impl Into<String>, total: usize, tty: bool) -> Self {
        let now = Instant::now();
        Progress {
            label: label.into(),
            total,
            done: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            skipped: AtomicUsize::new(0),
            started: now,
            tty,
            last_plain: Mutex::new((now, 0)),
        }
    }

    /// One item finished (`ok` false for a failure).
    pub fn tick(&self, ok: bool) {
        if !ok {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
        self.advance();
    }

    /// One item skipped: not run, because an earlier step of it failed.
    pub fn tick_skipped(&self) {
        self.skipped.fetch_add(1, Ordering::Relaxed);
        self.advance();
    }

    fn advance(&self) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        if crate::output::is_quiet() {
            return;
        }
        if self.tty {
            eprint!("\r\x1b[2K{}", self.line(done));
            return;
        }
        let tenth = done * 10 / self.total.max(1);
        let mut last = self.last_plain.lock().unwrap_or_else(|p| p.into_inner());
        if tenth > last.1 || last.0.elapsed() >= Duration::from_secs(5) || done == self.total {
            *last = (Instant::now(), tenth);
            eprintln!("{}", self.line(done));
        }
    }

    /// The status line for `done` items.
    pub fn line(&self, done: usize) -> String {
        let failed = self.failed.load(Ordering::Relaxed);
        let elapsed = self.started.elapsed();
        let pct = done * 100 / self.total.max(1);
        let eta = if done > 0 && done < self.total {
            let per_item = elapsed.as_secs_f64() / done as f64;
            format!(
                ", ETA {}",
                fmt_eta(Duration::from_secs_f64(per_item * (self.total - done) as f64))
            )
        } else {
            String::new()
        };
        let failed = match (failed, self.skipped.load(Ordering::Relaxed)) {
            (0, 0) => String::new(),
            (f, 0) => format!(", {f} failed"),
            (f, s) => format!(", {f} failed, {s} skipped"),
        };
        format!(
            "[{}] {done}/{} ({pct}%){failed}, {:.1}s{eta}",
            self.label,
            self.total,
            elapsed.as_secs_f64()
        )
    }

    /// Ends the stage's progress (newline on a terminal).
    pub fn finish(&self) {
        if self.tty && !crate::output::is_quiet() {
            eprintln!();
        }
    }
}

/// A line of its own on stderr during a run (on a terminal, the progress line being drawn is
/// cleared first and redrawn by its next tick).
pub fn notice(line: &str) {
    if crate::output::stderr_is_terminal() {
        eprintln!("\r\x1b[2K{line}");
    } else {
        eprintln!("{line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_shows_counts_failures_and_eta() {
        let p = Progress::with_terminal("vms", 4, false);
        p.failed.store(1, Ordering::Relaxed);
        let line = p.line(2);
        assert!(line.starts_with("[vms] 2/4 (50%), 1 failed, "), "{line}");
        p.skipped.store(1, Ordering::Relaxed);
        let line = p.line(3);
        assert!(line.starts_with("[vms] 3/4 (75%), 1 failed, 1 skipped, "), "{line}");
        assert!(line.contains("ETA 0:00"), "{line}");
        assert!(!p.line(4).contains("ETA"));
    }

    #[test]
    fn eta_format() {
        assert_eq!(fmt_eta(Duration::from_secs(83)), "1:23");
        assert_eq!(fmt_eta(Duration::from_secs(3723)), "1:02:03");
    }
}
