//! `ovn-heater compare A B`: a baseline and a candidate side by side, one or several runs per
//! side, in a short fixed-width table (ready to paste into a commit message), as JSON, and as a
//! CI gate (`--threshold PCT`).
//!
//! Rows: the summary counts and failures by class, then per stage its duration and each
//! measurement's p50, p99 and total, then the CPU seconds every process used in that stage
//! (`stages[].cpu_s`, when the runs recorded it), then each role's peak RSS (and, where a side has
//! some, poll-interval warnings per role and the host's CPU steal). With several runs
//! on a side a figure is the median over the runs, and the text shows their spread
//! (`min-max`). A stage, measurement or process missing from one side shows `-` there, never
//! disappears.
//!
//! A row regresses when it is a cost (time, CPU, memory, failures) and the candidate's figure
//! exceeds the baseline's by more than the threshold. Times under [`NOISE_FLOOR_S`] on both
//! sides are not judged: a 0.2 ms → 0.3 ms change is scheduling noise, not a regression.
//!
//! Must not know: how the runs were made.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::json::{RunResults, RunStatus};

/// Width of the row label column.
const LABEL: usize = 36;
const COL: usize = 16;

/// Times below this on both sides are never called a regression.
pub const NOISE_FLOOR_S: f64 = 0.001;

/// One side of the comparison: a label and the runs it stands for.
pub struct Side {
    pub label: String,
    pub runs: Vec<RunResults>,
}

/// What a row measures, which decides whether higher is worse and how it is printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Seconds; higher is worse.
    Seconds,
    /// CPU seconds; higher is worse.
    CpuSeconds,
    /// Megabytes; higher is worse.
    Megabytes,
    /// Failed samples; higher is worse, and any increase counts.
    Failures,
    /// A count that is neither good nor bad when it changes (ports created, pings).
    Count,
}

impl Kind {
    fn decimals(self) -> usize {
        match self {
            Kind::Seconds => 4,
            Kind::CpuSeconds => 2,
            Kind::Megabytes => 1,
            Kind::Failures | Kind::Count => 0,
        }
    }
    fn is_cost(self) -> bool {
        !matches!(self, Kind::Count)
    }
}

/// A figure of one side: the median over its runs and their spread.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Figure {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    /// How many runs had this figure.
    pub runs: usize,
}

impl Figure {
    fn of(mut values: Vec<f64>) -> Option<Figure> {
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        let n = values.len();
        let median = if n % 2 == 1 {
            values[n / 2]
        } else {
            (values[n / 2 - 1] + values[n / 2]) / 2.0
        };
        Some(Figure {
            median,
            min: values[0],
            max: values[n - 1],
            runs: n,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Row {
    /// `summary`, `stage <name>`, `cpu <stage>` or `resources`.
    pub section: String,
    pub name: String,
    pub kind: Kind,
    pub a: Option<Figure>,
    pub b: Option<Figure>,
    /// b / a of the medians, when both exist and a is not zero.
    pub ratio: Option<f64>,
    /// Set when a threshold was given and this row exceeds it.
    pub regression: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SideInfo {
    pub label: String,
    /// The runs' `--label`s (`environment.label`), each once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub run_labels: Vec<String>,
    pub runs: usize,
    pub scenarios: Vec<String>,
    /// Each run's status in words, e.g. `complete, 10 failures`.
    pub statuses: Vec<String>,
}

/// A scenario setting that differs between the two sides (or between runs of one side).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SettingDiff {
    /// Dotted path in the resolved scenario, e.g. `openstack_base.n_vms_per_hypervisor`.
    pub key: String,
    pub a: Vec<serde_json::Value>,
    pub b: Vec<serde_json::Value>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Comparison {
    pub a: SideInfo,
    pub b: SideInfo,
    pub settings: Vec<SettingDiff>,
    /// The threshold the rows were judged against, in percent.
    pub threshold_pct: Option<f64>,
    pub rows: Vec<Row>,
    pub regressions: usize,
}

/// A run's status as a reader wants it: a complete run with failed checks says so.
pub fn status_words(r: &RunResults) -> String {
    let base = match r.status {
        RunStatus::Complete => "complete",
        RunStatus::Failed => "failed",
        RunStatus::Interrupted => "interrupted",
    };
    let c = r.summary.failures_by_class;
    let failures = match r.summary.failures {
        0 => base.to_owned(),
        1 => format!("{base}, 1 failure"),
        n => format!("{base}, {n} failures"),
    };
    let classes = match (c.system, c.harness) {
        (_, 0) => failures,
        (n, h) => format!("{failures} ({n} system, {h} harness)"),
    };
    match c.skipped {
        0 => classes,
        n => format!("{classes}, {n} skipped"),
    }
}

/// A summary row: its name, its kind and how to read it from a run.
type SummaryRow = (&'static str, Kind, fn(&RunResults) -> f64);

/// Builds the comparison; `threshold_pct` marks cost rows of B that exceed A by more than it.
pub fn compare(a: &Side, b: &Side, threshold_pct: Option<f64>) -> Comparison {
    let mut rows = Vec::new();
    let sides = [a, b];

    // Any new failure is a regression ("failures"); the rows by class say whose it was.
    let summary: [SummaryRow; 8] = [
        ("ports created", Kind::Count, |r| r.summary.ports_created as f64),
        ("ports up", Kind::Count, |r| r.summary.ports_up as f64),
        ("failures", Kind::Failures, |r| r.summary.failures as f64),
        ("failures: system (OVN)", Kind::Count, |r| {
            r.summary.failures_by_class.system as f64
        }),
        ("failures: harness", Kind::Count, |r| {
            r.summary.failures_by_class.harness as f64
        }),
        ("skipped samples", Kind::Count, |r| {
            r.summary.failures_by_class.skipped as f64
        }),
        ("pings ok", Kind::Count, |r| r.summary.pings_ok as f64),
        ("run duration (s)", Kind::Seconds, |r| r.duration_s),
    ];
    for (name, kind, f) in summary {
        let [x, y] = sides.map(|s| Figure::of(s.runs.iter().map(f).collect()));
        rows.push(row("summary", name, kind, x, y));
    }

    for stage in stage_names(a, b) {
        let section = format!("stage {stage}");
        let per_side = |s: &Side, f: &dyn Fn(&super::json::StageResult) -> Option<f64>| {
            Figure::of(
                s.runs
                    .iter()
                    .filter_map(|r| r.stages.iter().find(|st| st.name == stage))
                    .filter_map(f)
                    .collect(),
            )
        };
        let duration = |st: &super::json::StageResult| st.duration_s;
        rows.push(row(
            &section,
            "duration",
            Kind::Seconds,
            per_side(a, &duration),
            per_side(b, &duration),
        ));
        for m in measurement_names(a, b, &stage) {
            let stat = |f: fn(&crate::metrics::Stats) -> Option<f64>| {
                let m = m.clone();
                move |st: &super::json::StageResult| st.measurements.get(&m).and_then(|x| f(&x.stats))
            };
            let p50 = stat(|s| s.median);
            let p99 = stat(|s| s.p99);
            let total = stat(|s| (s.count > s.failed).then_some(s.total));
            let failed = stat(|s| Some(s.failed as f64));
            let harness = stat(|s| Some(s.harness as f64));
            let skipped = stat(|s| Some(s.skipped as f64));
            rows.push(row(
                &section,
                &format!("{m} p50"),
                Kind::Seconds,
                per_side(a, &p50),
                per_side(b, &p50),
            ));
            rows.push(row(
                &section,
                &format!("{m} p99"),
                Kind::Seconds,
                per_side(a, &p99),
                per_side(b, &p99),
            ));
            rows.push(row(
                &section,
                &format!("{m} total"),
                Kind::Seconds,
                per_side(a, &total),
                per_side(b, &total),
            ));
            let nonzero = |f: &[&Option<Figure>]| f.iter().any(|f| f.as_ref().is_some_and(|f| f.max > 0.0));
            let (fa, fb) = (per_side(a, &failed), per_side(b, &failed));
            if nonzero(&[&fa, &fb]) {
                rows.push(row(&section, &format!("{m} failed"), Kind::Failures, fa, fb));
            }
            for (what, f) in [("failed: harness", &harness), ("skipped", &skipped)] {
                let (xa, xb) = (per_side(a, f), per_side(b, f));
                if nonzero(&[&xa, &xb]) {
                    rows.push(row(&section, &format!("{m} {what}"), Kind::Count, xa, xb));
                }
            }
        }
        for process in cpu_processes(a, b, &stage) {
            let cpu = |st: &super::json::StageResult| st.cpu_s.get(&process).copied();
            rows.push(row(
                &format!("cpu {stage}"),
                &format!("{process} (s)"),
                Kind::CpuSeconds,
                per_side(a, &cpu),
                per_side(b, &cpu),
            ));
        }
    }

    for role in roles(a, b) {
        let [x, y] = sides.map(|s| {
            Figure::of(
                s.runs
                    .iter()
                    .filter_map(|r| {
                        r.processes
                            .iter()
                            .filter(|p| p.role == role)
                            .map(|p| p.max_rss() as f64 / 1e6)
                            .reduce(f64::max)
                    })
                    .collect(),
            )
        });
        rows.push(row(
            "resources",
            &format!("{role} peak RSS (MB)"),
            Kind::Megabytes,
            x,
            y,
        ));
    }

    // Poll-interval warnings over the whole logs, per role: informative (a loaded machine
    // makes them too), listed only where a side has some.
    for role in roles(a, b) {
        let [x, y] = sides.map(|s| {
            Figure::of(
                s.runs
                    .iter()
                    .filter(|r| !r.poll_intervals.is_empty())
                    .map(|r| {
                        r.processes
                            .iter()
                            .filter(|p| p.role == role)
                            .filter_map(|p| r.poll_intervals.get(&p.name))
                            .map(|p| p.count as f64)
                            .sum()
                    })
                    .collect(),
            )
        });
        if [&x, &y].iter().any(|f| f.as_ref().is_some_and(|f| f.max > 0.0)) {
            rows.push(row(
                "resources",
                &format!("{role} poll-interval warnings"),
                Kind::Count,
                x,
                y,
            ));
        }
    }
    // The hypervisor's steal over the run: where it differs, so may the latencies.
    let [x, y] = sides.map(|s| {
        Figure::of(
            s.runs
                .iter()
                .filter(|r| r.stages.iter().any(|st| st.host_cpu.is_some()))
                .map(|r| r.stages.iter().filter_map(|st| st.host_cpu).map(|c| c.steal_s).sum())
                .collect(),
        )
    });
    if [&x, &y].iter().any(|f| f.as_ref().is_some_and(|f| f.max > 0.0)) {
        rows.push(row("resources", "host CPU steal (s)", Kind::Count, x, y));
    }

    if let Some(pct) = threshold_pct {
        for r in &mut rows {
            r.regression = regresses(r, pct);
        }
    }
    let regressions = rows.iter().filter(|r| r.regression).count();
    Comparison {
        a: side_info(a),
        b: side_info(b),
        settings: setting_diffs(a, b),
        threshold_pct,
        rows,
        regressions,
    }
}

fn row(section: &str, name: &str, kind: Kind, a: Option<Figure>, b: Option<Figure>) -> Row {
    let ratio = match (&a, &b) {
        (Some(a), Some(b)) if a.median != 0.0 => Some(b.median / a.median),
        (Some(a), Some(b)) if a.median == 0.0 && b.median == 0.0 => Some(1.0),
        _ => None,
    };
    Row {
        section: section.to_owned(),
        name: name.to_owned(),
        kind,
        a,
        b,
        ratio,
        regression: false,
    }
}

fn regresses(r: &Row, pct: f64) -> bool {
    let (Some(a), Some(b)) = (&r.a, &r.b) else {
        return false;
    };
    if !r.kind.is_cost() {
        return false;
    }
    match r.kind {
        Kind::Failures => b.median > a.median,
        Kind::Seconds if a.median < NOISE_FLOOR_S && b.median < NOISE_FLOOR_S => false,
        _ => b.median > a.median * (1.0 + pct / 100.0),
    }
}

fn side_info(s: &Side) -> SideInfo {
    let mut scenarios: Vec<String> = s.runs.iter().map(|r| r.scenario.name.clone()).collect();
    scenarios.dedup();
    let mut run_labels: Vec<String> = Vec::new();
    for label in s.runs.iter().filter_map(|r| r.environment.label.clone()) {
        if !run_labels.contains(&label) {
            run_labels.push(label);
        }
    }
    SideInfo {
        label: s.label.clone(),
        run_labels,
        runs: s.runs.len(),
        scenarios,
        statuses: s.runs.iter().map(status_words).collect(),
    }
}

fn stage_names(a: &Side, b: &Side) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for r in a.runs.iter().chain(&b.runs) {
        for s in &r.stages {
            if !names.contains(&s.name) {
                names.push(s.name.clone());
            }
        }
    }
    names
}

fn measurement_names(a: &Side, b: &Side, stage: &str) -> Vec<String> {
    let mut names: Vec<String> = a
        .runs
        .iter()
        .chain(&b.runs)
        .flat_map(|r| r.stages.iter().filter(|s| s.name == stage))
        .flat_map(|s| s.measurements.keys().cloned())
        .collect();
    names.sort();
    names.dedup();
    names
}

fn cpu_processes(a: &Side, b: &Side, stage: &str) -> Vec<String> {
    let mut names: Vec<String> = a
        .runs
        .iter()
        .chain(&b.runs)
        .flat_map(|r| r.stages.iter().filter(|s| s.name == stage))
        .flat_map(|s| s.cpu_s.keys().cloned())
        .collect();
    names.sort();
    names.dedup();
    names
}

fn roles(a: &Side, b: &Side) -> Vec<String> {
    let mut roles: Vec<String> = a
        .runs
        .iter()
        .chain(&b.runs)
        .flat_map(|r| r.processes.iter().map(|p| p.role.clone()))
        .collect();
    roles.sort();
    roles.dedup();
    roles
}

/// Every leaf of a resolved scenario as `dotted.path → value`.
fn flatten(prefix: &str, v: &serde_json::Value, out: &mut BTreeMap<String, serde_json::Value>) {
    match v {
        serde_json::Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        _ => {
            out.insert(prefix.to_owned(), v.clone());
        }
    }
}

/// Settings whose values are not all the same across both sides' runs.
fn setting_diffs(a: &Side, b: &Side) -> Vec<SettingDiff> {
    let flat = |s: &Side| -> Vec<BTreeMap<String, serde_json::Value>> {
        s.runs
            .iter()
            .map(|r| {
                let mut m = BTreeMap::new();
                flatten("", &r.scenario.resolved, &mut m);
                m
            })
            .collect()
    };
    let (fa, fb) = (flat(a), flat(b));
    let mut keys: Vec<&String> = fa.iter().chain(&fb).flat_map(|m| m.keys()).collect();
    keys.sort();
    keys.dedup();
    let values = |runs: &[BTreeMap<String, serde_json::Value>], key: &str| -> Vec<serde_json::Value> {
        let mut vs: Vec<serde_json::Value> = Vec::new();
        for m in runs {
            let v = m.get(key).cloned().unwrap_or(serde_json::Value::Null);
            if !vs.contains(&v) {
                vs.push(v);
            }
        }
        vs
    };
    keys.into_iter()
        .filter_map(|k| {
            let (va, vb) = (values(&fa, k), values(&fb, k));
            (va.len() > 1 || vb.len() > 1 || va != vb).then(|| SettingDiff {
                key: k.clone(),
                a: va,
                b: vb,
            })
        })
        .collect()
}

fn fmt_figure(f: Option<&Figure>, kind: Kind) -> String {
    let d = kind.decimals();
    match f {
        None => "-".into(),
        Some(f) if f.runs > 1 && f.max > f.min => format!("{:.d$} ({:.d$}-{:.d$})", f.median, f.min, f.max),
        Some(f) => format!("{:.d$}", f.median),
    }
}

fn fmt_values(vs: &[serde_json::Value]) -> String {
    vs.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(" | ")
}

/// The comparison as the text the command prints.
pub fn text(c: &Comparison) -> String {
    let mut out = String::new();
    for (tag, s) in [("A", &c.a), ("B", &c.b)] {
        let runs = if s.runs == 1 {
            String::new()
        } else {
            format!(", {} runs", s.runs)
        };
        let labels = if s.run_labels.is_empty() {
            String::new()
        } else {
            format!(" [{}]", s.run_labels.join(", "))
        };
        let _ = writeln!(
            out,
            "{tag}: {}{labels} ({}{runs}: {})",
            s.label,
            s.scenarios.join(", "),
            s.statuses.join("; ")
        );
    }
    if !c.settings.is_empty() {
        let _ = writeln!(out, "settings that differ:");
        for d in &c.settings {
            let _ = writeln!(out, "  {}: {} -> {}", d.key, fmt_values(&d.a), fmt_values(&d.b));
        }
    }
    let multi = c.a.runs > 1 || c.b.runs > 1;
    if multi {
        let _ = writeln!(
            out,
            "figures are medians over the runs, with (min-max) where they differ"
        );
    }
    let mut section = "";
    for r in &c.rows {
        if r.section != section {
            section = &r.section;
            let _ = writeln!(
                out,
                "\n{:<LABEL$} {:>COL$} {:>COL$} {:>8}",
                title(section),
                "A",
                "B",
                "B/A"
            );
        }
        let label: String = r.name.chars().take(LABEL).collect();
        let ratio = r.ratio.map(|x| format!("{x:.2}x")).unwrap_or_else(|| "-".into());
        let flag = if r.regression { "  REGRESSION" } else { "" };
        let _ = writeln!(
            out,
            "{label:<LABEL$} {:>COL$} {:>COL$} {ratio:>8}{flag}",
            fmt_figure(r.a.as_ref(), r.kind),
            fmt_figure(r.b.as_ref(), r.kind),
        );
    }
    if let Some(pct) = c.threshold_pct {
        let _ = writeln!(
            out,
            "\n{} regression(s) over {pct}% (costs only; times under {} ms on both sides not judged)",
            c.regressions,
            NOISE_FLOOR_S * 1e3
        );
    }
    out
}

fn title(section: &str) -> String {
    if let Some(stage) = section.strip_prefix("stage ") {
        format!("Stage {stage} (seconds)")
    } else if let Some(stage) = section.strip_prefix("cpu ") {
        format!("CPU in stage {stage} (seconds)")
    } else if section == "summary" {
        "Summary".into()
    } else {
        "Resources".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::json::tests::example;

    fn side(label: &str, runs: Vec<RunResults>) -> Side {
        Side {
            label: label.into(),
            runs,
        }
    }

    fn find<'a>(c: &'a Comparison, section: &str, name: &str) -> &'a Row {
        c.rows
            .iter()
            .find(|r| r.section == section && r.name == name)
            .unwrap_or_else(|| panic!("no row {section} / {name}"))
    }

    #[test]
    fn short_view_has_p50_p99_total_and_missing_sides() {
        let a = example(1.0);
        let mut b = example(2.0);
        let mut extra = b.stages[0].clone();
        extra.name = "cleanup".into();
        b.stages.push(extra);
        let c = compare(&side("main", vec![a]), &side("patch", vec![b]), None);
        let p50 = find(&c, "stage vms", "create_port p50");
        assert_eq!(p50.ratio.map(|r| (r * 100.0).round()), Some(200.0));
        assert!(find(&c, "stage cleanup", "create_port p50").a.is_none());
        // Eight statistics per measurement are gone: no min/p90/max/mean rows.
        assert!(!c
            .rows
            .iter()
            .any(|r| r.name.ends_with(" min") || r.name.ends_with(" mean")));
        let text = text(&c);
        assert!(
            text.starts_with("A: main (openstack-base: complete, 1 failure)\n"),
            "{text}"
        );
        assert!(text.contains("Stage cleanup (seconds)"));
        assert!(text.contains("northd peak RSS (MB)"));
        assert_eq!(c.regressions, 0);
    }

    #[test]
    fn poll_interval_warnings_and_steal_are_listed_where_a_side_has_some() {
        let a = example(1.0);
        let mut b = example(1.0);
        b.poll_intervals.insert(
            "ovn-northd".into(),
            crate::metrics::logs::PollIntervals { count: 5, max_ms: 1200 },
        );
        b.stages[0].host_cpu = Some(crate::metrics::host::HostCpu {
            steal_s: 0.7,
            ..Default::default()
        });
        let c = compare(&side("a", vec![a.clone()]), &side("b", vec![b]), Some(10.0));
        let polls = find(&c, "resources", "northd poll-interval warnings");
        assert_eq!(polls.b.as_ref().unwrap().median, 5.0);
        assert!(!polls.regression, "informative only");
        assert_eq!(
            find(&c, "resources", "host CPU steal (s)").b.as_ref().unwrap().median,
            0.7
        );
        let c = compare(&side("a", vec![a.clone()]), &side("b", vec![a]), None);
        assert!(!c
            .rows
            .iter()
            .any(|r| r.name.contains("poll-interval") || r.name.contains("steal")));
    }

    #[test]
    fn run_labels_are_in_the_headers() {
        let mut a = example(1.0);
        a.environment.label = Some("main".into());
        let mut b = example(1.0);
        b.environment.label = Some("patch-v2".into());
        let c = compare(&side("r1", vec![a]), &side("r2", vec![b]), None);
        let text = text(&c);
        assert!(text.starts_with("A: r1 [main] ("), "{text}");
        assert!(text.contains("\nB: r2 [patch-v2] ("), "{text}");
        assert_eq!(c.b.run_labels, vec!["patch-v2".to_owned()]);
    }

    #[test]
    fn threshold_flags_costs_only_and_any_new_failure() {
        let a = example(1.0);
        let b = example(1.05);
        let c = compare(&side("a", vec![a.clone()]), &side("b", vec![b]), Some(10.0));
        assert_eq!(c.regressions, 0, "{}", text(&c));
        let slow = example(1.5);
        let c = compare(&side("a", vec![a.clone()]), &side("b", vec![slow]), Some(10.0));
        assert!(find(&c, "stage vms", "create_port p50").regression);
        assert!(!find(&c, "summary", "ports created").regression);
        let mut failing = example(1.0);
        failing.summary.failures += 1;
        let c = compare(&side("a", vec![a]), &side("b", vec![failing]), Some(10.0));
        assert!(find(&c, "summary", "failures").regression);
        assert!(text(&c).contains("REGRESSION"));
    }

    #[test]
    fn failures_are_shown_by_class() {
        use crate::metrics::{FailureClass, Sample, Stats};
        let a = example(1.0);
        let mut b = example(1.0);
        let m = b.stages[0].measurements.get_mut("port_up").unwrap();
        m.samples[3].class = Some(FailureClass::Harness);
        m.samples.push(Sample {
            class: Some(FailureClass::Skipped),
            ..crate::report::json::tests::sample("vm-3", 5.0, 0.0, Some("skipped: bind_port failed"))
        });
        m.stats = Stats::of(&m.samples);
        b.summary = crate::report::json::summarize(&b.stages, &["create_port"]);
        let c = compare(&side("a", vec![a.clone()]), &side("b", vec![b.clone()]), Some(10.0));
        let figures = |name| {
            let r = find(&c, "summary", name);
            (r.a.as_ref().unwrap().median, r.b.as_ref().unwrap().median)
        };
        assert_eq!(figures("failures: system (OVN)"), (1.0, 0.0));
        assert_eq!(figures("failures: harness"), (0.0, 1.0));
        assert_eq!(figures("skipped samples"), (0.0, 1.0));
        assert!(
            !find(&c, "summary", "failures: harness").regression,
            "by-class rows only inform"
        );
        let harness = find(&c, "stage vms", "port_up failed: harness");
        assert_eq!(harness.b.as_ref().unwrap().median, 1.0);
        assert_eq!(find(&c, "stage vms", "port_up skipped").b.as_ref().unwrap().median, 1.0);
        assert_eq!(status_words(&b), "complete, 1 failure (0 system, 1 harness), 1 skipped");
        assert_eq!(status_words(&a), "complete, 1 failure");
    }

    #[test]
    fn several_runs_give_median_and_spread() {
        let runs: Vec<RunResults> = [1.0, 3.0, 2.0].into_iter().map(example).collect();
        let c = compare(&side("a", runs), &side("b", vec![example(2.0)]), None);
        let p50 = find(&c, "stage vms", "create_port p50");
        let a = p50.a.as_ref().expect("figure");
        assert_eq!((a.runs, (a.median * 1e3).round()), (3, 100.0));
        assert_eq!(p50.ratio.map(|r| (r * 100.0).round()), Some(100.0));
        assert!(text(&c).contains("0.1000 (0.0500-0.1500)"), "{}", text(&c));
    }

    #[test]
    fn differing_settings_are_named() {
        let a = example(1.0);
        let mut b = example(1.0);
        b.scenario.resolved = serde_json::json!({"n_hypervisors": 4});
        let c = compare(&side("a", vec![a]), &side("b", vec![b]), None);
        assert_eq!(c.settings.len(), 1);
        assert!(text(&c).contains("n_hypervisors: 2 -> 4"), "{}", text(&c));
    }

    #[test]
    fn cpu_seconds_per_stage_are_rows() {
        let mut a = example(1.0);
        a.stages[0].cpu_s = [("ovn-northd".to_owned(), 2.0)].into();
        let mut b = example(1.0);
        b.stages[0].cpu_s = [("ovn-northd".to_owned(), 3.0)].into();
        let c = compare(&side("a", vec![a]), &side("b", vec![b]), Some(20.0));
        let r = find(&c, "cpu vms", "ovn-northd (s)");
        assert!(r.regression);
        assert!(text(&c).contains("CPU in stage vms (seconds)"));
    }

    #[test]
    fn json_is_serializable() {
        let c = compare(
            &side("a", vec![example(1.0)]),
            &side("b", vec![example(1.0)]),
            Some(5.0),
        );
        let v = serde_json::to_value(&c).expect("json");
        assert_eq!(v["threshold_pct"], 5.0);
        assert!(v["rows"].as_array().is_some_and(|r| !r.is_empty()));
    }
}
