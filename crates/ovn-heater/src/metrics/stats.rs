//! The summary of one measurement: min, median, p90, p99, max, mean, total, count, failed — the
//! columns OVN developers paste into commit messages.
//!
//! Statistics are over successful samples only; `count` is every sample, `failed` the ones
//! that failed (system and harness; `harness` of them the harness' own), `skipped` the ones not
//! run because their subject failed earlier, so a failure never improves the numbers and never
//! disappears, and is never counted twice.
//! Percentiles interpolate linearly between closest ranks (as pandas and numpy do by default).
//!
//! Must not know: where samples come from.

use serde::{Deserialize, Serialize};

use super::{FailureClass, Sample};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub min: Option<f64>,
    pub median: Option<f64>,
    pub p90: Option<f64>,
    pub p99: Option<f64>,
    pub max: Option<f64>,
    pub mean: Option<f64>,
    pub total: f64,
    pub count: usize,
    /// Failed samples, system and harness (skipped ones are not failures of their own).
    pub failed: usize,
    /// Of `failed`, those the harness failed (absent in older results: none).
    #[serde(default)]
    pub harness: usize,
    /// Samples not run because an earlier sample of their subject failed.
    #[serde(default)]
    pub skipped: usize,
}

impl Stats {
    pub fn of(samples: &[Sample]) -> Stats {
        let mut ok: Vec<f64> = samples.iter().filter(|s| s.ok()).map(|s| s.duration_s).collect();
        ok.sort_by(f64::total_cmp);
        let total: f64 = ok.iter().sum();
        Stats {
            min: ok.first().copied(),
            median: percentile(&ok, 50.0),
            p90: percentile(&ok, 90.0),
            p99: percentile(&ok, 99.0),
            max: ok.last().copied(),
            mean: (!ok.is_empty()).then(|| total / ok.len() as f64),
            total,
            count: samples.len(),
            failed: class_count(samples, FailureClass::System) + class_count(samples, FailureClass::Harness),
            harness: class_count(samples, FailureClass::Harness),
            skipped: class_count(samples, FailureClass::Skipped),
        }
    }

    /// Failed samples that are OVN's (`failed` less the harness' own).
    pub fn system(&self) -> usize {
        self.failed.saturating_sub(self.harness)
    }

    /// Samples that succeeded.
    pub fn ok(&self) -> usize {
        self.count.saturating_sub(self.failed + self.skipped)
    }
}

fn class_count(samples: &[Sample], class: FailureClass) -> usize {
    samples.iter().filter(|s| s.failure_class() == Some(class)).count()
}

/// Linear interpolation between closest ranks of sorted `xs`.
pub fn percentile(sorted: &[f64], pct: f64) -> Option<f64> {
    match sorted.len() {
        0 => None,
        1 => Some(sorted[0]),
        n => {
            let rank = pct / 100.0 * (n - 1) as f64;
            let lo = rank.floor() as usize;
            let hi = rank.ceil() as usize;
            Some(sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo as f64))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(d: f64, ok: bool) -> Sample {
        Sample {
            subject: String::new(),
            start_s: 0.0,
            duration_s: d,
            error: (!ok).then(|| "failed".into()),
            class: None,
        }
    }

    fn classed(class: FailureClass) -> Sample {
        Sample {
            class: Some(class),
            ..s(5.0, false)
        }
    }

    #[test]
    fn classes_are_counted_apart_and_skips_are_not_failures() {
        let st = Stats::of(&[
            s(1.0, true),
            s(2.0, false), // no class: written before classes, a system failure
            classed(FailureClass::System),
            classed(FailureClass::Harness),
            classed(FailureClass::Skipped),
            classed(FailureClass::Skipped),
        ]);
        assert_eq!((st.count, st.failed, st.harness, st.skipped), (6, 3, 1, 2));
        assert_eq!((st.system(), st.ok()), (2, 1));
        assert_eq!(st.max, Some(1.0));
    }

    #[test]
    fn percentiles_match_numpy_linear() {
        let xs: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(percentile(&xs, 50.0), Some(5.5));
        assert!((percentile(&xs, 90.0).unwrap() - 9.1).abs() < 1e-9);
        assert!((percentile(&xs, 99.0).unwrap() - 9.91).abs() < 1e-9);
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&[3.0], 99.0), Some(3.0));
    }

    #[test]
    fn failures_are_counted_not_averaged() {
        let st = Stats::of(&[s(1.0, true), s(3.0, true), s(100.0, false)]);
        assert_eq!(st.count, 3);
        assert_eq!(st.failed, 1);
        assert_eq!(st.max, Some(3.0));
        assert_eq!(st.mean, Some(2.0));
        assert_eq!(st.total, 4.0);
        assert_eq!(st.median, Some(2.0));
    }

    #[test]
    fn all_failed_has_no_figures() {
        let st = Stats::of(&[s(1.0, false)]);
        assert_eq!((st.count, st.failed, st.min, st.mean), (1, 1, None, None));
    }
}
