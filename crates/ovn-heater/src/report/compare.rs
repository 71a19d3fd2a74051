//! `ovn-heater compare A B`: two runs side by side in a fixed-width table with B/A ratios,
//! ready to paste into a commit message (how OVN developers publish scale results).
//!
//! Rows: the summary counts, then per stage present in either run each measurement's count,
//! failed, min, median, p90, p99, max and mean (one row when each side has a single sample,
//! e.g. `hv_cfg_settle`), then per daemon role the peak RSS and the mean CPU. A stage or measurement missing from one side shows `-` there, never disappears.
//!
//! Must not know: how the runs were made.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::json::{RunResults, StageResult};
use crate::metrics::Stats;

/// Width of the row label column.
const LABEL: usize = 34;
const COL: usize = 11;

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if a > 0.0 => format!("{:.2}x", b / a),
        (Some(a), Some(b)) if a == 0.0 && b == 0.0 => "1.00x".into(),
        _ => "-".into(),
    }
}

fn num(x: Option<f64>, decimals: usize) -> String {
    x.map(|v| format!("{v:.decimals$}")).unwrap_or_else(|| "-".into())
}

struct Table {
    out: String,
}

impl Table {
    fn header(&mut self, title: &str) {
        let _ = writeln!(self.out, "{:<LABEL$} {:>COL$} {:>COL$} {:>8}", title, "A", "B", "B/A");
    }
    fn row(&mut self, label: &str, a: Option<f64>, b: Option<f64>, decimals: usize) {
        let label = if label.chars().count() > LABEL {
            label.chars().take(LABEL).collect::<String>()
        } else {
            label.to_owned()
        };
        let _ = writeln!(
            self.out,
            "{label:<LABEL$} {:>COL$} {:>COL$} {:>8}",
            num(a, decimals),
            num(b, decimals),
            ratio(a, b)
        );
    }
    fn blank(&mut self) {
        self.out.push('\n');
    }
}

fn stage_names(a: &RunResults, b: &RunResults) -> Vec<String> {
    let mut names: Vec<String> = a.stages.iter().map(|s| s.name.clone()).collect();
    for s in &b.stages {
        if !names.contains(&s.name) {
            names.push(s.name.clone());
        }
    }
    names
}

fn find<'a>(r: &'a RunResults, stage: &str) -> Option<&'a StageResult> {
    r.stages.iter().find(|s| s.name == stage)
}

/// Per role: (peak RSS of any process in MB, sum of the processes' mean CPU %).
fn by_role(r: &RunResults) -> BTreeMap<String, (f64, f64)> {
    let mut roles: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    for p in &r.processes {
        let e = roles.entry(p.role.clone()).or_default();
        e.0 = e.0.max(p.max_rss() as f64 / 1e6);
        e.1 += p.mean_cpu();
    }
    roles
}

/// The whole comparison as text.
pub fn table(a: &RunResults, b: &RunResults, a_label: &str, b_label: &str) -> String {
    let mut t = Table { out: String::new() };
    let _ = writeln!(t.out, "A: {a_label} ({}, {:?})", a.scenario.name, a.status);
    let _ = writeln!(t.out, "B: {b_label} ({}, {:?})", b.scenario.name, b.status);
    if a.scenario.resolved != b.scenario.resolved {
        let _ = writeln!(t.out, "note: the two runs used different scenario settings");
    }
    t.blank();
    t.header("Summary");
    let (sa, sb) = (&a.summary, &b.summary);
    for (label, x, y) in [
        ("ports created", sa.ports_created, sb.ports_created),
        ("ports up", sa.ports_up, sb.ports_up),
        ("failures", sa.failures, sb.failures),
        ("pings ok", sa.pings_ok, sb.pings_ok),
        ("pings failed", sa.pings_failed, sb.pings_failed),
    ] {
        t.row(label, Some(x as f64), Some(y as f64), 0);
    }
    t.row("duration (s)", Some(a.duration_s), Some(b.duration_s), 1);

    for stage in stage_names(a, b) {
        let (x, y) = (find(a, &stage), find(b, &stage));
        let mut names: Vec<&String> = x.iter().chain(y.iter()).flat_map(|s| s.measurements.keys()).collect();
        names.sort();
        names.dedup();
        t.blank();
        t.header(&format!("Stage {stage} (seconds)"));
        t.row(
            "stage duration",
            x.and_then(|s| s.duration_s),
            y.and_then(|s| s.duration_s),
            2,
        );
        for m in names {
            let sx = x.and_then(|s| s.measurements.get(m)).map(|m| &m.stats);
            let sy = y.and_then(|s| s.measurements.get(m)).map(|m| &m.stats);
            let get = |s: Option<&Stats>, f: fn(&Stats) -> Option<f64>| s.and_then(f);
            // One sample per side (a stage-level figure): one row, not eight.
            if sx.map_or(0, |s| s.count) <= 1 && sy.map_or(0, |s| s.count) <= 1 {
                t.row(m, get(sx, |s| s.mean), get(sy, |s| s.mean), 4);
                if sx.map_or(0, |s| s.failed) + sy.map_or(0, |s| s.failed) > 0 {
                    t.row(
                        &format!("{m} failed"),
                        sx.map(|s| s.failed as f64),
                        sy.map(|s| s.failed as f64),
                        0,
                    );
                }
                continue;
            }
            t.row(
                &format!("{m} count"),
                sx.map(|s| s.count as f64),
                sy.map(|s| s.count as f64),
                0,
            );
            t.row(
                &format!("{m} failed"),
                sx.map(|s| s.failed as f64),
                sy.map(|s| s.failed as f64),
                0,
            );
            for (stat, f) in [
                ("min", (|s: &Stats| s.min) as fn(&Stats) -> Option<f64>),
                ("median", |s: &Stats| s.median),
                ("p90", |s: &Stats| s.p90),
                ("p99", |s: &Stats| s.p99),
                ("max", |s: &Stats| s.max),
                ("mean", |s: &Stats| s.mean),
            ] {
                t.row(&format!("{m} {stat}"), get(sx, f), get(sy, f), 4);
            }
        }
    }

    let (ra, rb) = (by_role(a), by_role(b));
    let mut roles: Vec<&String> = ra.keys().chain(rb.keys()).collect();
    roles.sort();
    roles.dedup();
    if !roles.is_empty() {
        t.blank();
        t.header("Resources");
        for role in roles {
            let (x, y) = (ra.get(role), rb.get(role));
            t.row(&format!("{role} peak RSS (MB)"), x.map(|v| v.0), y.map(|v| v.0), 1);
            t.row(&format!("{role} mean CPU (%)"), x.map(|v| v.1), y.map(|v| v.1), 1);
        }
    }
    t.out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::json::tests::example;

    #[test]
    fn ratios_and_missing_sides() {
        assert_eq!(ratio(Some(2.0), Some(1.0)), "0.50x");
        assert_eq!(ratio(Some(0.0), Some(0.0)), "1.00x");
        assert_eq!(ratio(None, Some(1.0)), "-");
        assert_eq!(ratio(Some(0.0), Some(1.0)), "-");
    }

    #[test]
    fn table_lists_every_stage_measurement_and_role() {
        let a = example(1.0);
        let mut b = example(2.0);
        b.stages[0].name = "vms".into();
        let mut extra = b.stages[0].clone();
        extra.name = "cleanup".into();
        b.stages.push(extra);
        let text = table(&a, &b, "main", "patch");
        assert!(text.starts_with("A: main (openstack-base, Complete)\nB: patch"));
        assert!(text.contains("Stage vms (seconds)"));
        assert!(text.contains("Stage cleanup (seconds)"));
        let line = text
            .lines()
            .find(|l| l.starts_with("create_port median"))
            .expect("median row");
        assert!(line.trim_end().ends_with("2.00x"), "{line}");
        assert!(text.contains("northd peak RSS (MB)"));
        // Every row has the same width up to the ratio column.
        let widths: Vec<usize> = text
            .lines()
            .filter(|l| l.contains('x') && l.starts_with("create_port"))
            .map(|l| l.len())
            .collect();
        assert!(widths.windows(2).all(|w| w[0] == w[1]), "{widths:?}");
    }
}
