//! The numbers behind the report's charts, reduced so the page stays small at any scale.
//!
//! Every chart is a [`Chart`]: one shared x array and series of values on it (the layout uPlot
//! draws; see `charts.js`). What is reduced and how:
//! - latency over time: every sample as a point up to [`RAW_POINTS_MAX`] samples, above that
//!   [`TIME_BUCKETS`] time buckets, each drawn as its min–max band with p90 and median lines
//!   and the slowest failure;
//! - latency distribution: a histogram of the successful samples in [`HISTOGRAM_BINS`] bins
//!   at most (logarithmic when the values span more than [`LOG_BINS_ABOVE_RATIO`]) with the cumulative
//!   share on a second axis, so p50/p99 can be read off at any sample count;
//! - CPU and RSS over time: one common time grid of at most [`RESOURCE_POINTS_MAX`] points
//!   (mean CPU, peak RSS per grid step), roles with more than [`MAX_LINES_PER_ROLE`] processes
//!   summed into one line.
//!
//! Values are rounded to [`SIGNIFICANT_DIGITS`] significant digits: more than a chart can
//! show, and half the bytes of full precision.
//!
//! Must not know: HTML, how the numbers were measured.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::metrics::procfs::{Reading, Series};
use crate::metrics::Sample;

/// Up to this many samples a latency chart shows each sample; above, time buckets.
pub const RAW_POINTS_MAX: usize = 2000;
/// Time buckets of a latency chart above [`RAW_POINTS_MAX`] samples.
pub const TIME_BUCKETS: usize = 400;
/// Histogram bins at most (from 1,250 samples on) and at least.
pub const HISTOGRAM_BINS: usize = 50;
const MIN_HISTOGRAM_BINS: usize = 5;
/// Histograms use logarithmic bins when max/min exceeds this.
pub const LOG_BINS_ABOVE_RATIO: f64 = 30.0;
/// Points per CPU/RSS line at most.
pub const RESOURCE_POINTS_MAX: usize = 1000;
/// The sampler's period: a CPU/RSS grid is never finer.
const SAMPLING_PERIOD_S: f64 = 0.5;
/// Roles with more processes than this are summed into one line.
pub const MAX_LINES_PER_ROLE: usize = 4;
const SIGNIFICANT_DIGITS: i32 = 4;

/// Series colours: the 20 distinct colours of Sasha Trubetskoy's list, saturated ones first so
/// that up to 15 lines stay apart on white; past 20 the JS dashes the repeats.
pub const PALETTE: &[&str] = &[
    "#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#469990", "#9a6324", "#800000",
    "#808000", "#000075", "#a9a9a9", "#bfef45", "#000000", "#dcbeff", "#fabed4", "#ffe119", "#aaffc3", "#ffd8b1",
];
const FAILED_COLOR: &str = "#d62728";
const OK_COLOR: &str = "#4363d8";

/// How the page formats a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    Seconds,
    /// CPU %, 100 = one core.
    Percent,
    Bytes,
    Count,
    /// A share in %, 0–100.
    Share,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Style {
    Line,
    Points,
    Bars,
    /// Thin line bounding a band.
    Edge,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ChartSeries {
    pub label: String,
    pub color: String,
    pub style: Style,
    /// `y` (left axis) or `y2` (right axis).
    pub scale: &'static str,
    pub values: Vec<Option<f64>>,
    /// Failures: the y axis is scaled to the other series and values above it are drawn on
    /// its top edge (hover shows the real value), so a 30 s timeout does not flatten the rest.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub on_top_edge: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Chart {
    /// `latency-time`, `distribution`, `cpu-time`, `rss-time`: the page's `data-kind`.
    pub kind: &'static str,
    pub title: String,
    /// What was drawn and how it was reduced, shown under the chart.
    pub note: String,
    pub x_unit: Unit,
    pub x_label: String,
    pub log_x: bool,
    /// Fixed x range (a stage's start and end), else the data's.
    pub x_range: Option<[f64; 2]>,
    pub y_unit: Unit,
    pub y2_unit: Option<Unit>,
    /// Time charts get the stage boundaries drawn.
    pub stage_lines: bool,
    pub x: Vec<f64>,
    pub series: Vec<ChartSeries>,
    /// Pairs of series indices (into `series`) whose area between is filled.
    pub bands: Vec<[usize; 2]>,
}

/// `x` rounded to [`SIGNIFICANT_DIGITS`] significant digits.
pub fn round_sig(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return if x.is_finite() { 0.0 } else { f64::NAN };
    }
    let scale = 10f64.powi(SIGNIFICANT_DIGITS - 1 - x.abs().log10().floor() as i32);
    (x * scale).round() / scale
}

fn rounded(v: Option<f64>) -> Option<f64> {
    v.map(round_sig).filter(|x| x.is_finite())
}

/// A colour per line, stable for a given index.
pub fn color(i: usize) -> &'static str {
    PALETTE[i % PALETTE.len()]
}

fn series(label: &str, color: &str, style: Style, values: Vec<Option<f64>>) -> ChartSeries {
    ChartSeries {
        label: label.into(),
        color: color.into(),
        style,
        scale: "y",
        values: values.into_iter().map(rounded).collect(),
        on_top_edge: false,
    }
}

/// Latency of each sample over run time (x = when it started); `stage` is the stage's
/// `[start, end]` on the run clock.
pub fn latency_over_time(title: &str, samples: &[Sample], stage: [f64; 2]) -> Chart {
    let mut sorted: Vec<&Sample> = samples.iter().collect();
    sorted.sort_by(|a, b| a.start_s.total_cmp(&b.start_s));
    let x_range = sorted
        .last()
        .map(|s| [stage[0].min(sorted[0].start_s), stage[1].max(s.start_s)]);
    let mut chart = Chart {
        kind: "latency-time",
        title: title.into(),
        note: String::new(),
        x_unit: Unit::Seconds,
        x_label: "run time (sample start)".into(),
        log_x: false,
        x_range,
        y_unit: Unit::Seconds,
        y2_unit: None,
        stage_lines: true,
        x: Vec::new(),
        series: Vec::new(),
        bands: Vec::new(),
    };
    let failed = sorted.iter().filter(|s| !s.ok()).count();
    if sorted.len() <= RAW_POINTS_MAX {
        chart.note = format!(
            "each of the {} samples ({failed} failed, in red; those slower than every success on the top edge)",
            sorted.len()
        );
        chart.x = sorted.iter().map(|s| round_sig_time(s.start_s)).collect();
        let pick = |want_ok: bool| -> Vec<Option<f64>> {
            sorted
                .iter()
                .map(|s| (s.ok() == want_ok).then_some(s.duration_s))
                .collect()
        };
        let mut failures = series("failed after", FAILED_COLOR, Style::Points, pick(false));
        failures.on_top_edge = true;
        chart.series = vec![series("latency", OK_COLOR, Style::Points, pick(true)), failures];
        return chart;
    }
    let (t0, t1) = (sorted[0].start_s, sorted[sorted.len() - 1].start_s);
    let width = ((t1 - t0) / TIME_BUCKETS as f64).max(1e-9);
    let mut ok_buckets: Vec<Vec<f64>> = vec![Vec::new(); TIME_BUCKETS];
    let mut failed_max: Vec<Option<f64>> = vec![None; TIME_BUCKETS];
    for s in &sorted {
        let i = (((s.start_s - t0) / width) as usize).min(TIME_BUCKETS - 1);
        if s.ok() {
            ok_buckets[i].push(s.duration_s);
        } else {
            failed_max[i] = Some(failed_max[i].map_or(s.duration_s, |m: f64| m.max(s.duration_s)));
        }
    }
    for b in &mut ok_buckets {
        b.sort_by(f64::total_cmp);
    }
    let stat = |f: &dyn Fn(&[f64]) -> Option<f64>| -> Vec<Option<f64>> { ok_buckets.iter().map(|b| f(b)).collect() };
    chart.note = format!(
        "{} samples ({failed} failed) in {TIME_BUCKETS} buckets of {}: min–max band, p90 and median lines, slowest failure in red (on the top edge when slower than every success)",
        sorted.len(),
        fmt_seconds(width)
    );
    chart.x = (0..TIME_BUCKETS)
        .map(|i| round_sig_time(t0 + width * (i as f64 + 0.5)))
        .collect();
    let mut failures = series("slowest failure", FAILED_COLOR, Style::Points, failed_max);
    failures.on_top_edge = true;
    chart.series = vec![
        series("max", OK_COLOR, Style::Edge, stat(&|b| b.last().copied())),
        series("p90", "#f58231", Style::Line, stat(&|b| percentile(b, 90.0))),
        series("median", "#000075", Style::Line, stat(&|b| percentile(b, 50.0))),
        series("min", OK_COLOR, Style::Edge, stat(&|b| b.first().copied())),
        failures,
    ];
    chart.bands = vec![[0, 3]];
    chart
}

/// Linear interpolation between closest ranks of sorted `xs`, as the statistics tables do.
fn percentile(sorted: &[f64], pct: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    let rank = pct / 100.0 * last as f64;
    let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
    Some(sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo as f64))
}

/// Times on the run clock keep millisecond resolution whatever their size.
fn round_sig_time(t: f64) -> f64 {
    (t * 1000.0).round() / 1000.0
}

/// Histogram of the successful samples' latencies, with the cumulative share (CDF) on a
/// second axis. `None` without successful samples.
pub fn latency_distribution(title: &str, samples: &[Sample]) -> Option<Chart> {
    let mut ok: Vec<f64> = samples.iter().filter(|s| s.ok()).map(|s| s.duration_s).collect();
    if ok.is_empty() {
        return None;
    }
    ok.sort_by(f64::total_cmp);
    let (min, max) = (ok[0], ok[ok.len() - 1]);
    let log = min > 0.0 && max / min > LOG_BINS_ABOVE_RATIO;
    // Twice the square root of the count (Rice's rule), so a few samples are not lost in
    // empty bins.
    let bins = ((2.0 * (ok.len() as f64).sqrt()).ceil() as usize).clamp(MIN_HISTOGRAM_BINS, HISTOGRAM_BINS);
    // Upper bin edges; a sample falls in the first bin whose edge is >= it.
    let edges: Vec<f64> = if max <= min {
        vec![max]
    } else if log {
        let (lo, hi) = (min.ln(), max.ln());
        (1..=bins)
            .map(|i| (lo + (hi - lo) * i as f64 / bins as f64).exp())
            .collect()
    } else {
        (1..=bins).map(|i| min + (max - min) * i as f64 / bins as f64).collect()
    };
    // The first bar spans from here to the first edge: the x axis must start here, not at it.
    let lowest = if edges.len() > 1 {
        min
    } else {
        max - (max.abs() * 0.1).max(1e-6)
    };
    let mut counts = vec![0usize; edges.len()];
    let mut bin = 0;
    for v in &ok {
        while bin + 1 < edges.len() && *v > edges[bin] {
            bin += 1;
        }
        counts[bin] += 1;
    }
    let mut cumulative = 0usize;
    // A first point at the lowest value (no bar, share 0) so the CDF starts from 0.
    let cdf: Vec<Option<f64>> = std::iter::once(Some(0.0))
        .chain(counts.iter().map(|c| {
            cumulative += c;
            Some(100.0 * cumulative as f64 / ok.len() as f64)
        }))
        .collect();
    let failed = samples.len() - ok.len();
    let mut share = series("share ≤ x", "#e6194b", Style::Line, cdf);
    share.scale = "y2";
    Some(Chart {
        kind: "distribution",
        title: title.into(),
        note: format!(
            "{} successful samples in {} {} bins{}; the line is the share of samples at most x (CDF)",
            ok.len(),
            edges.len(),
            if log { "logarithmic" } else { "equal" },
            if failed > 0 {
                format!(" ({failed} failed not counted)")
            } else {
                String::new()
            }
        ),
        x_unit: Unit::Seconds,
        x_label: "latency (bin upper edge)".into(),
        log_x: log,
        x_range: Some([lowest, edges[edges.len() - 1]]),
        y_unit: Unit::Count,
        y2_unit: Some(Unit::Share),
        stage_lines: false,
        // Not rounded: bins of nearly equal samples are narrower than 4 significant digits.
        x: std::iter::once(lowest).chain(edges).collect(),
        series: vec![
            series(
                "samples",
                OK_COLOR,
                Style::Bars,
                std::iter::once(None)
                    .chain(counts.into_iter().map(|c| Some(c as f64)))
                    .collect(),
            ),
            share,
        ],
        bands: Vec::new(),
    })
}

/// A line to plot: a process, or the sum of a role's processes.
#[derive(Debug)]
pub struct ProcessLine<'a> {
    pub label: String,
    pub processes: Vec<&'a Series>,
}

/// Each process on its own line, except roles with more than [`MAX_LINES_PER_ROLE`]
/// processes, which are summed ("ovn-controller (sum of 20)"). Order: as in `processes`.
pub fn process_lines(processes: &[Series]) -> Vec<ProcessLine<'_>> {
    let mut per_role: BTreeMap<&str, usize> = BTreeMap::new();
    for p in processes {
        *per_role.entry(p.role.as_str()).or_default() += 1;
    }
    let mut lines: Vec<ProcessLine> = Vec::new();
    let mut role_line: BTreeMap<&str, usize> = BTreeMap::new();
    for p in processes {
        let n = per_role[p.role.as_str()];
        if n <= MAX_LINES_PER_ROLE {
            lines.push(ProcessLine {
                label: p.name.clone(),
                processes: vec![p],
            });
        } else if let Some(&i) = role_line.get(p.role.as_str()) {
            lines[i].processes.push(p);
        } else {
            role_line.insert(p.role.as_str(), lines.len());
            lines.push(ProcessLine {
                label: format!("{} (sum of {n})", p.role),
                processes: vec![p],
            });
        }
    }
    lines
}

/// CPU % (`cpu == true`, mean per grid step, summed over a line's processes) or RSS (peak per
/// grid step, summed) over run time: of every line, or with `only_role` of that role's lines
/// (a small multiple; each line keeps its colour from the chart of every line).
pub fn resource_over_time(title: &str, processes: &[Series], cpu: bool, only_role: Option<&str>) -> Chart {
    let lines: Vec<(usize, ProcessLine)> = process_lines(processes)
        .into_iter()
        .enumerate()
        .filter(|(_, l)| only_role.is_none_or(|role| l.processes.iter().all(|p| p.role == role)))
        .collect();
    let readings = || processes.iter().flat_map(|p| p.readings.iter());
    let t0 = readings().map(|r| r.t_s).fold(f64::INFINITY, f64::min);
    let t1 = readings().map(|r| r.t_s).fold(f64::NEG_INFINITY, f64::max);
    let span = if t1 > t0 { t1 - t0 } else { 0.0 };
    let step = (span / RESOURCE_POINTS_MAX as f64).max(SAMPLING_PERIOD_S);
    let n = if t0.is_finite() {
        (span / step).floor() as usize + 1
    } else {
        0
    };
    let cell = |r: &Reading| (((r.t_s - t0) / step) as usize).min(n.saturating_sub(1));
    let value = |r: &Reading| if cpu { r.cpu_pct } else { r.rss_bytes as f64 };
    let series: Vec<ChartSeries> = lines
        .iter()
        .map(|(i, line)| {
            let mut total: Vec<Option<f64>> = vec![None; n];
            for p in &line.processes {
                // One figure per process and grid step, then summed over the line's processes.
                let mut acc: Vec<(f64, usize)> = vec![(0.0, 0); n];
                for r in &p.readings {
                    let a = &mut acc[cell(r)];
                    a.0 = if cpu { a.0 + value(r) } else { a.0.max(value(r)) };
                    a.1 += 1;
                }
                for (t, (v, k)) in total.iter_mut().zip(acc) {
                    if k > 0 {
                        let v = if cpu { v / k as f64 } else { v };
                        *t = Some(t.unwrap_or(0.0) + v);
                    }
                }
            }
            let mut s = series(&line.label, color(*i), Style::Line, total);
            if !cpu {
                // Bytes need no fractional digits.
                s.values = s.values.into_iter().map(|v| v.map(f64::round)).collect();
            }
            s
        })
        .collect();
    Chart {
        kind: if cpu { "cpu-time" } else { "rss-time" },
        title: title.into(),
        note: format!(
            "{} per {} of run time ({}), {} lines",
            if cpu { "mean CPU" } else { "peak RSS" },
            fmt_seconds(step),
            if lines.iter().map(|(_, l)| l.processes.len()).sum::<usize>() > lines.len() {
                format!("roles with more than {MAX_LINES_PER_ROLE} processes summed")
            } else {
                "one line per process".into()
            },
            lines.len()
        ),
        x_unit: Unit::Seconds,
        x_label: "run time".into(),
        log_x: false,
        x_range: None,
        y_unit: if cpu { Unit::Percent } else { Unit::Bytes },
        y2_unit: None,
        stage_lines: true,
        x: (0..n).map(|i| round_sig_time(t0 + step * i as f64)).collect(),
        series,
        bands: Vec::new(),
    }
}

/// The roles of `processes`, in first-seen order, for small multiples.
pub fn roles(processes: &[Series]) -> Vec<&str> {
    let mut roles: Vec<&str> = Vec::new();
    for p in processes {
        if !roles.contains(&p.role.as_str()) {
            roles.push(&p.role);
        }
    }
    roles
}

/// CPU seconds `series` used between `from` and `to` on the run clock, from its readings
/// (each reading's CPU % covers the interval since the previous one).
pub fn cpu_seconds_between(series: &Series, from: f64, to: f64) -> f64 {
    series
        .readings
        .windows(2)
        .filter(|w| w[1].t_s > from && w[1].t_s <= to)
        .map(|w| w[1].cpu_pct / 100.0 * (w[1].t_s - w[0].t_s))
        .sum()
}

/// A duration for people: `312 µs`, `12.3 ms`, `1.25 s`, `2 min 5 s`.
pub fn fmt_seconds(s: f64) -> String {
    let a = s.abs();
    let sig3 = |v: f64, unit: &str| {
        let digits = if v.abs() >= 100.0 {
            0
        } else if v.abs() >= 10.0 {
            1
        } else {
            2
        };
        format!("{v:.digits$} {unit}")
    };
    if a == 0.0 {
        "0 s".into()
    } else if a < 1e-3 {
        sig3(s * 1e6, "µs")
    } else if a < 1.0 {
        sig3(s * 1e3, "ms")
    } else if a < 120.0 {
        sig3(s, "s")
    } else {
        format!("{} min {:.0} s", (s / 60.0).floor(), s % 60.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::json::tests::sample;

    fn samples(n: usize, failed_every: usize) -> Vec<Sample> {
        (0..n)
            .map(|i| {
                let err = (failed_every > 0 && i % failed_every == 0).then_some("timeout");
                sample(
                    &format!("vm-{i}"),
                    i as f64 * 0.1,
                    0.0002 + (i % 100) as f64 * 1e-5,
                    err,
                )
            })
            .collect()
    }

    #[test]
    fn few_samples_are_points_many_are_buckets() {
        let few = latency_over_time("t", &samples(30, 10), [0.0, 5.0]);
        assert_eq!(few.x.len(), 30);
        assert_eq!(few.series[0].values.iter().flatten().count(), 27);
        assert_eq!(few.series[1].values.iter().flatten().count(), 3);
        assert_eq!(few.x_range, Some([0.0, 5.0]));

        let many = latency_over_time("t", &samples(10_000, 1000), [0.0, 1000.0]);
        assert_eq!(many.x.len(), TIME_BUCKETS);
        assert!(many.series.iter().all(|s| s.values.len() == TIME_BUCKETS));
        assert_eq!(many.bands, vec![[0, 3]]);
        let labels: Vec<&str> = many.series.iter().map(|s| s.label.as_str()).collect();
        assert_eq!(labels, ["max", "p90", "median", "min", "slowest failure"]);
        assert_eq!(many.series[4].values.iter().flatten().count(), 10);
        // min <= median <= max in every bucket that has samples.
        for i in 0..TIME_BUCKETS {
            if let (Some(lo), Some(mid), Some(hi)) = (
                many.series[3].values[i],
                many.series[2].values[i],
                many.series[0].values[i],
            ) {
                assert!(lo <= mid && mid <= hi, "bucket {i}: {lo} {mid} {hi}");
            }
        }
    }

    #[test]
    fn distribution_counts_every_successful_sample_once() {
        let s = samples(10_000, 1000);
        let d = latency_distribution("d", &s).unwrap();
        let total: f64 = d.series[0].values.iter().flatten().sum();
        assert_eq!(total, 9_990.0);
        assert_eq!(d.series[1].values.last().unwrap().unwrap(), 100.0);
        assert!(!d.log_x, "0.2–1.2 ms spans less than 30x");
        assert!(d.x.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(
            d.x.len(),
            HISTOGRAM_BINS + 1,
            "the lowest value, then each bin's upper edge"
        );

        let spread: Vec<Sample> = (0..100)
            .map(|i| sample("x", 0.0, 1e-4 * 1.2f64.powi(i), None))
            .collect();
        assert!(latency_distribution("d", &spread).unwrap().log_x);

        let same = vec![sample("x", 0.0, 0.5, None); 3];
        let d = latency_distribution("d", &same).unwrap();
        assert_eq!(d.series[0].values, vec![None, Some(3.0)]);
        assert_eq!(d.series[1].values, vec![Some(0.0), Some(100.0)], "the CDF starts at 0");
        assert_eq!(d.x_range, Some([0.45, 0.5]), "the one bar is inside the axis");
        let d = latency_distribution("d", &s).unwrap();
        assert_eq!(d.x_range.unwrap()[0], 0.0002, "the axis starts at the fastest sample");
        assert!(latency_distribution("d", &[sample("x", 0.0, 1.0, Some("e"))]).is_none());
    }

    fn process(name: &str, role: &str, n: usize) -> Series {
        Series {
            name: name.into(),
            role: role.into(),
            pid: 1,
            readings: (0..n)
                .map(|i| Reading {
                    t_s: i as f64 * 0.5,
                    cpu_pct: 50.0,
                    rss_bytes: 1_000_000 + i as u64,
                })
                .collect(),
            exited_s: None,
            peak_rss_bytes: 1_000_000 + n as u64,
            end_rss_bytes: 1_000_000 + n as u64,
        }
    }

    #[test]
    fn resource_lines_are_summed_per_crowded_role_and_downsampled() {
        let mut procs = vec![process("ovn-northd", "northd", 20_000)];
        procs.extend((0..6).map(|i| process(&format!("ovn-controller@hv-{i}"), "controller", 20_000)));
        let cpu = resource_over_time("cpu", &procs, true, None);
        let labels: Vec<&str> = cpu.series.iter().map(|s| s.label.as_str()).collect();
        assert_eq!(labels, ["ovn-northd", "controller (sum of 6)"]);
        assert!(cpu.x.len() <= RESOURCE_POINTS_MAX + 1, "{}", cpu.x.len());
        assert_eq!(cpu.series[0].values[3], Some(50.0), "mean of the step");
        assert_eq!(cpu.series[1].values[3], Some(300.0), "summed over 6");
        let rss = resource_over_time("rss", &procs[..1], false, None);
        assert!(rss.series[0].values.iter().all(|v| v.unwrap() >= 1_000_000.0));
        assert_ne!(cpu.series[0].color, cpu.series[1].color);
        let controllers = resource_over_time("cpu", &procs, true, Some("controller"));
        assert_eq!(controllers.series.len(), 1);
        assert_eq!(
            controllers.series[0].color, cpu.series[1].color,
            "same colour in the small multiple"
        );
        assert_eq!(roles(&procs), ["northd", "controller"]);
    }

    #[test]
    fn twenty_lines_get_twenty_colours() {
        let distinct: std::collections::BTreeSet<&str> = (0..20).map(color).collect();
        assert_eq!(distinct.len(), 20);
    }

    #[test]
    fn cpu_seconds_integrate_readings_within_the_window() {
        let p = process("n", "northd", 11); // 5 s at 50 %
        assert!((cpu_seconds_between(&p, 0.0, 5.0) - 2.5).abs() < 1e-9);
        assert!((cpu_seconds_between(&p, 1.0, 2.0) - 0.5).abs() < 1e-9);
    }

    #[test]
    fn durations_read_well_below_a_millisecond() {
        assert_eq!(fmt_seconds(0.000_312), "312 µs");
        assert_eq!(fmt_seconds(0.0123), "12.3 ms");
        assert_eq!(fmt_seconds(1.25), "1.25 s");
        assert_eq!(fmt_seconds(0.0), "0 s");
        assert_eq!(round_sig(0.000_123_456), 0.000_123_5);
        assert_eq!(round_sig(123_456.0), 123_500.0);
    }
}
