//! `report.html`: one self-contained page from a finished [`RunResults`]: inline CSS, inline
//! JavaScript, inline data, no network, so it opens offline and can be mailed as one file.
//!
//! Layout: the verdict (the same rule as `ovn-heater run`'s exit code, see [`verdict`]) and
//! summary, scenario and machine, then per stage the statistics table (min, median, p90, p99,
//! max, mean, total, count, failed per measurement), per measurement its latency over run time
//! and its distribution (histogram and CDF), the failures, northd's stopwatches and the DB
//! sizes; last, CPU and RSS over time, CPU seconds per process and stage, peak RSS per process.
//!
//! Charts are drawn in the browser by uPlot (vendored in `assets/uplot/`, MIT) from data
//! reduced by [`charts`], so the page's size depends on the number of measurements and
//! processes, not of samples: about 0.3 MB at 30 VMs and at 10,000 alike. uPlot rather than
//! hand-drawn SVG: it gives zoom, hover values and canvas drawing (fast at any point count) in
//! 50 kB, where the SVG of one bar per sample reached 3.7 MB at 1,000 VMs with neither.
//!
//! Must not know: how the numbers were measured, any DB connection.

use std::fmt::Write as _;

use serde::Serialize;

use super::charts::{self, fmt_seconds, Chart};
use super::json::{RunResults, StageResult};
use super::verdict::{self, Verdict};
use crate::metrics::procfs::Series;

/// Successful samples a measurement needs for a distribution chart.
const MIN_SAMPLES_FOR_DISTRIBUTION: usize = 5;
/// Failures listed per stage before "... and N more".
const MAX_FAILURES_LISTED: usize = 50;

/// uPlot 1.6.32 from npm (`assets/uplot/README.md`), inlined: the report must work offline
/// and stay one file, so no CDN.
const UPLOT_JS: &str = include_str!("../../assets/uplot/uPlot.iife.min.js");
const UPLOT_CSS: &str = include_str!("../../assets/uplot/uPlot.min.css");
const UPLOT_LICENSE_NOTE: &str = "uPlot 1.6.32, Copyright (c) 2022 Leon Sorokin, MIT License";
/// Builds the charts from the page's data.
const CHARTS_JS: &str = include_str!("charts.js");

const CSS: &str = r#"
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#222;max-width:1400px}
h1{font-size:1.5em;margin-bottom:4px} h2{margin-top:32px;border-bottom:1px solid #ccc} h3{margin-bottom:4px}
h4{margin:4px 0;font-size:13px}
table{border-collapse:collapse;margin:8px 0} th,td{border:1px solid #ccc;padding:3px 8px;text-align:right;font-variant-numeric:tabular-nums}
th{background:#f3f3f3} td.l,th.l{text-align:left}
.status{padding:8px 12px;border-radius:4px;font-weight:600;display:inline-block}
.ok{background:#e6f4ea;color:#1e6b34} .bad{background:#fde8e8;color:#a11}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(560px,1fr));gap:16px}
.charts.small{grid-template-columns:repeat(auto-fill,minmax(400px,1fr))}
figure{margin:0;min-width:0} figcaption{font-size:11px;color:#666}
div.chart{min-height:300px;width:100%} .chart-error{color:#a11}
.hint{font-size:12px;color:#666}
pre{background:#f7f7f7;padding:8px;overflow:auto;max-height:400px;font-size:12px}
td.failed{color:#a11;font-weight:600}
.u-legend{font-size:11px} .u-legend .u-series{padding:0 4px}
"#;

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn fmt_opt_s(x: Option<f64>) -> String {
    x.map(fmt_seconds).unwrap_or_else(|| "–".into())
}

fn fmt_mb(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / 1e6)
}

/// The data the page's script draws from.
#[derive(Serialize)]
struct PageData<'a> {
    stages: Vec<StageSpan<'a>>,
    charts: Vec<Chart>,
}

#[derive(Serialize)]
struct StageSpan<'a> {
    name: &'a str,
    start_s: f64,
    end_s: Option<f64>,
}

/// Stage `[start, end]` on the run clock; a stage the run stopped inside ends at the run's end.
fn stage_span(st: &StageResult, run_end: f64) -> [f64; 2] {
    [
        st.start_s,
        st.duration_s.map_or(run_end.max(st.start_s), |d| st.start_s + d),
    ]
}

/// Renders the whole page; the verdict takes the expected port count from the resolved scenario.
pub fn render(r: &RunResults) -> String {
    render_with_verdict(r, &verdict::judge(r, verdict::expected_ports(&r.scenario.resolved)))
}

/// Renders the whole page with the verdict the caller reached (`ovn-heater run` judges with
/// the scenario it ran).
pub fn render_with_verdict(r: &RunResults, verdict: &Verdict) -> String {
    let mut h = String::with_capacity(256 * 1024);
    let mut charts: Vec<Chart> = Vec::new();
    let title = format!("ovn-heater: {}", r.scenario.name);
    let _ = write!(
        h,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"><title>{}</title><style>/* {UPLOT_LICENSE_NOTE} */\n{UPLOT_CSS}\n{CSS}</style></head><body>",
        escape(&title)
    );
    let _ = write!(h, "<h1>{}</h1>", escape(&title));
    status(&mut h, r, verdict);
    summary(&mut h, r);
    environment(&mut h, r);
    h.push_str("<p class=\"hint\">Charts: drag across a chart to zoom in, double-click to zoom out, hover for values, click a legend entry to hide its series. Dashed vertical lines mark stage boundaries.</p>");
    for stage in &r.stages {
        stage_section(&mut h, &mut charts, stage, r.duration_s);
    }
    resources(&mut h, &mut charts, r);
    let data = PageData {
        stages: r
            .stages
            .iter()
            .map(|st| StageSpan {
                name: &st.name,
                start_s: st.start_s,
                end_s: st.duration_s.map(|d| st.start_s + d),
            })
            .collect(),
        charts,
    };
    // `<` escaped inside JSON strings so no "</script>" can end the data block early.
    let json = serde_json::to_string(&data)
        .unwrap_or_else(|_| "{\"stages\":[],\"charts\":[]}".into())
        .replace('<', "\\u003c");
    let _ = write!(
        h,
        "<noscript><p class=\"status bad\">The charts need JavaScript; the tables above have every figure.</p></noscript><script type=\"application/json\" id=\"report-data\">{json}</script><script>/* {UPLOT_LICENSE_NOTE} */\n{UPLOT_JS}</script><script>{CHARTS_JS}</script>"
    );
    h.push_str("</body></html>\n");
    h
}

fn status(h: &mut String, r: &RunResults, verdict: &Verdict) {
    let class = if verdict.passed { "ok" } else { "bad" };
    let _ = write!(
        h,
        "<p id=\"status\" class=\"status {class}\">{}</p>",
        escape(&verdict.headline)
    );
    if let Some(e) = &r.error {
        let _ = write!(h, "<pre id=\"error\">{}</pre>", escape(e));
    }
}

fn summary(h: &mut String, r: &RunResults) {
    let s = &r.summary;
    h.push_str("<h2>Summary</h2><table id=\"summary\"><tr>");
    for c in [
        "ports created",
        "ports up",
        "failures",
        "system (OVN)",
        "harness",
        "skipped",
        "pings ok",
        "pings failed",
        "CMS actions",
        "duration",
    ] {
        let _ = write!(h, "<th>{c}</th>");
    }
    let _ = write!(
        h,
        "</tr><tr><td>{}</td><td>{}</td><td class=\"{}\">{}</td><td class=\"{}\">{}</td><td class=\"{}\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr></table>",
        s.ports_created,
        s.ports_up,
        if s.failures > 0 { "failed" } else { "" },
        s.failures,
        if s.failures_by_class.system > 0 { "failed" } else { "" },
        s.failures_by_class.system,
        if s.failures_by_class.harness > 0 { "failed" } else { "" },
        s.failures_by_class.harness,
        s.failures_by_class.skipped,
        s.pings_ok,
        s.pings_failed,
        s.cms_actions,
        fmt_seconds(r.duration_s)
    );
}

/// An attached run's lines: its marker, what it found and left in the NB, the servers' `_Server` rows.
fn attached_rows(h: &mut String, a: &crate::report::json::Attached) {
    let counts = |c: &std::collections::BTreeMap<String, usize>| {
        if c.is_empty() {
            "none".to_owned()
        } else {
            c.iter()
                .map(|(t, n)| format!("{t}: {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let server = |s: &Option<crate::report::json::ServerDatabase>| match s {
        Some(s) => format!(
            "{} {}{}{}{}",
            s.name,
            s.model,
            if s.leader { ", leader" } else { "" },
            if s.connected { "" } else { ", NOT connected" },
            s.schema_version
                .as_ref()
                .map(|v| format!(", schema {v}"))
                .unwrap_or_default()
        ),
        None => "not readable".to_owned(),
    };
    let rows = [
        ("attached run id", format!("{} (external_ids:ovn-heater:run)", a.run_id)),
        ("rows of earlier runs at start", counts(&a.found_at_start)),
        (
            "this run's rows left at end",
            match &a.left_at_end {
                Some(c) => format!(
                    "{}{}",
                    counts(c),
                    if a.cleanup { "" } else { " (global.cleanup: false)" }
                ),
                None => "not counted".to_owned(),
            },
        ),
        ("NB server at start", server(&a.nb_server_at_start)),
        ("SB server at start", server(&a.sb_server_at_start)),
    ];
    for (k, v) in rows {
        let _ = write!(
            h,
            "<tr class=\"attached\"><th class=\"l\">{}</th><td class=\"l\">{}</td></tr>",
            escape(k),
            escape(&v)
        );
    }
}

fn environment(h: &mut String, r: &RunResults) {
    let e = &r.environment;
    h.push_str("<h2>Scenario and machine</h2><table id=\"environment\">");
    if let Some(label) = &e.label {
        let _ = write!(
            h,
            "<tr><th class=\"l\">label</th><td class=\"l\" id=\"label\">{}</td></tr>",
            escape(label)
        );
    }
    for (k, v) in [
        ("scenario", format!("{} ({})", r.scenario.name, r.scenario.file)),
        ("workload", r.scenario.workload.clone()),
        ("started", e.started_at.clone()),
        ("target", e.target.clone()),
        (
            "NB / SB",
            format!(
                "{} / {} ({})",
                e.nb_remote,
                e.sb_remote,
                match (e.ssl, e.rbac) {
                    (true, true) => "TLS, SB RBAC for chassis",
                    (true, false) => "TLS",
                    (false, _) => "no TLS",
                }
            ),
        ),
        ("chassis", e.chassis.clone()),
        ("ovn-heater", e.ovn_heater_version.clone()),
        ("OVN", e.ovn_version.clone()),
        ("OVS", e.ovs_version.clone()),
        ("kernel", e.kernel.clone()),
        ("host", e.hostname.clone()),
        ("CPU", format!("{} × {}", e.cpus, e.cpu_model)),
        ("memory", format!("{:.1} GB", e.memory_bytes as f64 / 1e9)),
    ] {
        let _ = write!(
            h,
            "<tr><th class=\"l\">{k}</th><td class=\"l\">{}</td></tr>",
            escape(&v)
        );
    }
    if let Some(a) = &r.attached {
        attached_rows(h, a);
    }
    for (name, b) in &e.binaries {
        let _ = write!(
            h,
            "<tr class=\"binary\"><th class=\"l\">{}</th><td class=\"l\"><code>{}</code> ({})</td></tr>",
            escape(name),
            escape(&b.path),
            escape(&b.version)
        );
    }
    h.push_str("</table>");
    if !r.scenario.notes.is_empty() {
        h.push_str("<h3>Notes</h3><ul id=\"notes\">");
        for n in &r.scenario.notes {
            let _ = write!(h, "<li>{}</li>", escape(n));
        }
        h.push_str("</ul>");
    }
    let resolved = serde_json::to_string_pretty(&r.scenario.resolved).unwrap_or_default();
    let _ = write!(
        h,
        "<details><summary>Scenario with defaults</summary><pre>{}</pre></details>",
        escape(&resolved)
    );
}

/// A chart's place on the page: title, the element the script fills, and what was drawn.
fn chart_figure(h: &mut String, charts: &mut Vec<Chart>, chart: Chart) {
    let _ = write!(
        h,
        "<figure><h4>{}</h4><div class=\"chart\" data-kind=\"{}\" data-chart=\"{}\"></div><figcaption>{}</figcaption></figure>",
        escape(&chart.title),
        chart.kind,
        charts.len(),
        escape(&chart.note)
    );
    charts.push(chart);
}

fn stage_section(h: &mut String, charts: &mut Vec<Chart>, st: &StageResult, run_end: f64) {
    let dur = st
        .duration_s
        .map(fmt_seconds)
        .unwrap_or_else(|| "did not finish".into());
    let _ = write!(
        h,
        "<section class=\"stage\" id=\"stage-{id}\"><h2>Stage {name} <small>({dur}, from {start} of run time)</small></h2>",
        id = escape(&st.name),
        name = escape(&st.name),
        start = fmt_seconds(st.start_s)
    );
    h.push_str("<table class=\"stats\"><tr><th class=\"l\">measurement</th>");
    for c in [
        "min", "median", "p90", "p99", "max", "mean", "total", "count", "failed", "skipped",
    ] {
        let _ = write!(h, "<th>{c}</th>");
    }
    h.push_str("</tr>");
    for (name, m) in &st.measurements {
        let s = &m.stats;
        let _ = write!(
            h,
            "<tr><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"{}\">{}</td><td>{}</td></tr>",
            escape(name),
            fmt_opt_s(s.min),
            fmt_opt_s(s.median),
            fmt_opt_s(s.p90),
            fmt_opt_s(s.p99),
            fmt_opt_s(s.max),
            fmt_opt_s(s.mean),
            fmt_seconds(s.total),
            s.count,
            if s.failed > 0 { "failed" } else { "" },
            match s.harness {
                0 => s.failed.to_string(),
                h if h == s.failed => format!("{h} (harness)"),
                h => format!("{} ({h} harness)", s.failed),
            },
            s.skipped
        );
    }
    h.push_str("</table><div class=\"charts\">");
    let span = stage_span(st, run_end);
    // A single sample is a row of the table, not a chart; a distribution needs a few.
    for (name, m) in &st.measurements {
        // Skipped samples never ran: they have no latency to draw.
        let ran: Vec<crate::metrics::Sample> = if m.stats.skipped > 0 {
            m.samples.iter().filter(|s| !s.skipped()).cloned().collect()
        } else {
            m.samples.clone()
        };
        if ran.len() < 2 {
            continue;
        }
        chart_figure(
            h,
            charts,
            charts::latency_over_time(&format!("{}: {name} over run time", st.name), &ran, span),
        );
        if m.stats.ok() < MIN_SAMPLES_FOR_DISTRIBUTION {
            continue;
        }
        if let Some(d) = charts::latency_distribution(&format!("{}: {name} distribution", st.name), &ran) {
            chart_figure(h, charts, d);
        }
    }
    h.push_str("</div>");
    failures(h, st);
    northd(h, st);
    daemons(h, st);
    db(h, st);
    h.push_str("</section>");
}

/// The stage's failed and skipped samples, OVN's failures first, then the harness', then the
/// skipped ones, each with its class.
fn failures(h: &mut String, st: &StageResult) {
    use crate::metrics::FailureClass;
    let mut failed: Vec<(&String, &crate::metrics::Sample, FailureClass)> = st
        .measurements
        .iter()
        .flat_map(|(n, m)| {
            m.samples
                .iter()
                .filter_map(move |s| s.failure_class().map(|c| (n, s, c)))
        })
        .collect();
    if failed.is_empty() {
        return;
    }
    failed.sort_by_key(|(_, _, class)| *class);
    let count = |class| failed.iter().filter(|f| f.2 == class).count();
    let _ = write!(
        h,
        "<h3>Failures ({} system, {} harness; {} skipped)</h3><table class=\"failures\"><tr><th class=\"l\">measurement</th><th class=\"l\">subject</th><th class=\"l\">class</th><th>after</th><th class=\"l\">error</th></tr>",
        count(FailureClass::System),
        count(FailureClass::Harness),
        count(FailureClass::Skipped),
    );
    for (name, s, class) in failed.iter().take(MAX_FAILURES_LISTED) {
        let _ = write!(
            h,
            "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{class}</td><td>{}</td><td class=\"l\">{}</td></tr>",
            escape(name),
            escape(&s.subject),
            fmt_seconds(s.duration_s),
            escape(s.error.as_deref().unwrap_or(""))
        );
    }
    h.push_str("</table>");
    if failed.len() > MAX_FAILURES_LISTED {
        let _ = write!(
            h,
            "<p>… and {} more (all are in results.json)</p>",
            failed.len() - MAX_FAILURES_LISTED
        );
    }
}

fn northd(h: &mut String, st: &StageResult) {
    let Some(n) = &st.northd else { return };
    let _ = write!(
        h,
        "<h3>northd stopwatches (ms)</h3><p class=\"hint\">{}</p>",
        if n.since_previous_stage {
            "This stage's alone: northd's stopwatches and engine statistics are cleared at every stage's end."
        } else {
            "Cumulative since northd started (results written before per-stage figures)."
        }
    );
    for e in &n.errors {
        let _ = write!(h, "<p class=\"status bad\">{}</p>", escape(e));
    }
    if !n.stopwatches.is_empty() {
        h.push_str("<table class=\"northd\"><tr><th class=\"l\">stopwatch</th><th>samples</th><th>min</th><th>max</th><th>p95</th><th>short-term avg</th><th>long-term avg</th></tr>");
        for (name, sw) in &n.stopwatches {
            let _ = write!(
                h,
                "<tr><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(name),
                sw.samples,
                sw.min_ms,
                sw.max_ms,
                sw.p95_ms,
                sw.short_term_avg_ms,
                sw.long_term_avg_ms
            );
        }
        h.push_str("</table>");
    }
    if !n.inc_engine_text.is_empty() {
        let _ = write!(
            h,
            "<details><summary>inc-engine/show-stats</summary><pre>{}</pre></details>",
            escape(&n.inc_engine_text)
        );
    }
}

/// Each daemon's `memory/show` at the stage's end, with its `coverage/show` and RAFT
/// `cluster/status` behind a click.
fn daemons(h: &mut String, st: &StageResult) {
    if st.daemons.is_empty() {
        return;
    }
    h.push_str("<h3>Daemons at the stage's end</h3><table class=\"daemons\"><tr><th class=\"l\">daemon</th><th class=\"l\">memory/show</th><th class=\"l\">more</th></tr>");
    for (name, d) in &st.daemons {
        let memory: Vec<String> = d.memory.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let mut more = String::new();
        for (what, text) in [
            ("coverage/show", Some(&d.coverage_text)),
            ("cluster/status", d.cluster_status.as_ref()),
        ] {
            if let Some(text) = text.filter(|t| !t.is_empty()) {
                let _ = write!(
                    more,
                    "<details><summary>{what}</summary><pre>{}</pre></details>",
                    escape(text)
                );
            }
        }
        for e in &d.errors {
            let _ = write!(more, "<p class=\"status bad\">{}</p>", escape(e));
        }
        let _ = write!(
            h,
            "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{more}</td></tr>",
            escape(name),
            escape(&memory.join(", "))
        );
    }
    h.push_str("</table>");
}

/// The host's CPU per stage: where the time went on the whole machine, steal included.
fn host_cpu(h: &mut String, r: &RunResults) {
    if r.stages.iter().all(|st| st.host_cpu.is_none()) {
        return;
    }
    h.push_str("<h3>Host CPU per stage (seconds, all CPUs)</h3><p class=\"hint\">From /proc/stat at each stage's start and end. Steal is time the hypervisor gave this machine's CPUs to others: a stage with steal ran on less CPU than the machine has.</p><table id=\"host-cpu\"><tr><th class=\"l\">stage</th><th>user</th><th>system</th><th>idle</th><th>iowait</th><th>steal</th><th>steal %</th><th>busy %</th></tr>");
    for st in &r.stages {
        let Some(c) = &st.host_cpu else { continue };
        let total = c.total_s();
        let pct = |x: f64| {
            if total > 0.0 {
                format!("{:.1}", 100.0 * x / total)
            } else {
                "–".into()
            }
        };
        let _ = write!(
            h,
            "<tr><td class=\"l\">{}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td><td>{}</td><td>{}</td></tr>",
            escape(&st.name),
            c.user_s,
            c.system_s,
            c.idle_s,
            c.iowait_s,
            c.steal_s,
            pct(c.steal_s),
            pct(c.user_s + c.system_s)
        );
    }
    h.push_str("</table>");
}

/// Poll-interval warnings per daemon and stage, and over each whole log.
fn poll_intervals(h: &mut String, r: &RunResults) {
    let mut names: Vec<&String> = r
        .poll_intervals
        .keys()
        .chain(r.stages.iter().flat_map(|st| st.poll_intervals.keys()))
        .collect();
    names.sort();
    names.dedup();
    if names.is_empty() {
        return;
    }
    h.push_str("<h3>Poll-interval warnings</h3><p class=\"hint\">\"Unreasonably long …ms poll interval\" lines in each daemon's log: a main-loop iteration over a second. Count (longest in ms).</p><table id=\"poll-intervals\"><tr><th class=\"l\">daemon</th>");
    for st in &r.stages {
        let _ = write!(h, "<th>{}</th>", escape(&st.name));
    }
    h.push_str("<th>whole log</th></tr>");
    let cell = |p: Option<&crate::metrics::logs::PollIntervals>| match p {
        None => "–".to_owned(),
        Some(p) if p.count == 0 => "0".to_owned(),
        Some(p) => format!("{} ({} ms)", p.count, p.max_ms),
    };
    for name in names {
        let _ = write!(h, "<tr><td class=\"l\">{}</td>", escape(name));
        for st in &r.stages {
            let _ = write!(h, "<td>{}</td>", cell(st.poll_intervals.get(name)));
        }
        let _ = write!(h, "<td>{}</td></tr>", cell(r.poll_intervals.get(name)));
    }
    h.push_str("</table>");
}

fn db(h: &mut String, st: &StageResult) {
    let Some(d) = &st.db else { return };
    h.push_str("<h3>Databases</h3><table class=\"db\"><tr><th class=\"l\">database</th><th>file (MB)</th><th class=\"l\">rows</th></tr>");
    for (name, size) in [("NB", &d.nb), ("SB", &d.sb)] {
        let rows: Vec<String> = size
            .rows
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(t, n)| format!("{t} {n}"))
            .collect();
        let _ = write!(
            h,
            "<tr><td class=\"l\">{name}</td><td>{}</td><td class=\"l\">{}</td></tr>",
            size.file_bytes.map(fmt_mb).unwrap_or_else(|| "–".into()),
            escape(&rows.join(", "))
        );
    }
    h.push_str("</table>");
}

/// A row of the CPU seconds table: a label and its seconds per stage (`None`: not recorded).
type CpuRow = (String, Vec<Option<f64>>);

/// CPU seconds per row (a process, or a crowded role summed as in the charts) and stage: from
/// `stages[].cpu_s` when the run recorded it, else integrated from the /proc readings.
/// Returns the rows and whether they were estimated.
fn cpu_seconds_table(r: &RunResults) -> (Vec<CpuRow>, bool) {
    let recorded = r.stages.iter().any(|st| !st.cpu_s.is_empty());
    let mut rows: Vec<CpuRow> = Vec::new();
    let mut covered: Vec<&str> = Vec::new();
    for line in charts::process_lines(&r.processes) {
        let per_stage = r
            .stages
            .iter()
            .map(|st| {
                if recorded {
                    let v: Vec<f64> = line
                        .processes
                        .iter()
                        .filter_map(|p| st.cpu_s.get(&p.name).copied())
                        .collect();
                    (!v.is_empty()).then(|| v.iter().sum())
                } else {
                    let [from, to] = stage_span(st, r.duration_s);
                    Some(
                        line.processes
                            .iter()
                            .map(|p| charts::cpu_seconds_between(p, from, to))
                            .sum(),
                    )
                }
            })
            .collect();
        covered.extend(line.processes.iter().map(|p| p.name.as_str()));
        rows.push((line.label, per_stage));
    }
    // Processes with CPU seconds but no readings (the tester, when it is not sampled).
    let mut others: Vec<&String> = r.stages.iter().flat_map(|st| st.cpu_s.keys()).collect();
    others.sort();
    others.dedup();
    for name in others {
        if covered.contains(&name.as_str()) {
            continue;
        }
        rows.push((
            name.clone(),
            r.stages.iter().map(|st| st.cpu_s.get(name).copied()).collect(),
        ));
    }
    (rows, !recorded)
}

/// The rest of a seconds-per-stage table whose first header cell is written: a column per
/// stage and a total, then a row per label ("–" where a stage has no figure).
fn seconds_rows(h: &mut String, r: &RunResults, rows: &[CpuRow]) {
    for st in &r.stages {
        let _ = write!(h, "<th>{}</th>", escape(&st.name));
    }
    h.push_str("<th>total</th></tr>");
    for (label, per_stage) in rows {
        let _ = write!(h, "<tr><td class=\"l\">{}</td>", escape(label));
        for v in per_stage {
            let _ = write!(
                h,
                "<td>{}</td>",
                v.map(|s| format!("{s:.2}")).unwrap_or_else(|| "–".into())
            );
        }
        let total: f64 = per_stage.iter().flatten().sum();
        let _ = write!(h, "<td>{total:.2}</td></tr>");
    }
    h.push_str("</table>");
}

/// The tester's CPU per stage split into user and kernel time and by thread
/// (`stages[].tester_cpu`): kernel work it causes, such as creating the VMs' namespaces on the
/// `ovn-lab-netns` threads, apart from its own code.
fn tester_cpu(h: &mut String, r: &RunResults) {
    if r.stages.iter().all(|st| st.tester_cpu.is_none()) {
        return;
    }
    let mut threads: Vec<&String> = r
        .stages
        .iter()
        .filter_map(|st| st.tester_cpu.as_ref())
        .flat_map(|t| t.by_thread.keys())
        .collect();
    threads.sort();
    threads.dedup();
    let mut rows: Vec<CpuRow> = vec![
        (
            "user (its own code)".into(),
            r.stages
                .iter()
                .map(|st| st.tester_cpu.as_ref().map(|t| t.user_s))
                .collect(),
        ),
        (
            "kernel (on its behalf)".into(),
            r.stages
                .iter()
                .map(|st| st.tester_cpu.as_ref().map(|t| t.system_s))
                .collect(),
        ),
    ];
    for name in threads {
        rows.push((
            format!("thread {name}"),
            r.stages
                .iter()
                .map(|st| {
                    st.tester_cpu
                        .as_ref()
                        .map(|t| t.by_thread.get(name).copied().unwrap_or(0.0))
                })
                .collect(),
        ));
    }
    h.push_str("<h3>Tester CPU per stage</h3><p class=\"hint\">ovn-heater's CPU seconds (stages[].tester_cpu): user and kernel time, then the same total by thread. The kernel's work of creating the VMs' network namespaces runs on the ovn-lab-netns threads.</p><table id=\"tester-cpu\"><tr><th class=\"l\">ovn-heater</th>");
    seconds_rows(h, r, &rows);
}

fn resources(h: &mut String, charts: &mut Vec<Chart>, r: &RunResults) {
    let processes: &[Series] = &r.processes;
    h.push_str("<section id=\"resources\"><h2>CPU and memory</h2>");
    let (cpu_rows, estimated) = cpu_seconds_table(r);
    if processes.is_empty() && cpu_rows.is_empty() {
        h.push_str("<p>No process was sampled (the run drove an existing OVN, or stopped before the lab was up).</p></section>");
        return;
    }
    if !processes.is_empty() {
        h.push_str("<div class=\"charts\">");
        chart_figure(
            h,
            charts,
            charts::resource_over_time("CPU over run time (100 % = one core)", processes, true, None),
        );
        chart_figure(
            h,
            charts,
            charts::resource_over_time("RSS over run time", processes, false, None),
        );
        h.push_str("</div>");
        let roles = charts::roles(processes);
        if roles.len() > 1 {
            // Small multiples: each role on its own y scale, so a busy role does not flatten
            // the others' lines.
            h.push_str("<h3>CPU per role</h3><div class=\"charts small\">");
            for role in roles {
                chart_figure(
                    h,
                    charts,
                    charts::resource_over_time(&format!("CPU of {role}"), processes, true, Some(role)),
                );
            }
            h.push_str("</div>");
        }
    }
    let _ = write!(
        h,
        "<h3>CPU seconds per stage</h3><p class=\"hint\">{}</p><table id=\"cpu-seconds\"><tr><th class=\"l\">process</th>",
        match (estimated, r.environment.chassis == "emulated") {
            (true, _) => "Estimated from the /proc readings (CPU % × interval); this results.json has no stages[].cpu_s.",
            (false, false) => "CPU time (user + system) each process used during each stage, from stages[].cpu_s; ovn-heater is the tester itself.",
            (false, true) => "CPU time (user + system) each process used during each stage, from stages[].cpu_s; ovn-heater is the tester itself, and the emulated chassis run inside it: its figures are the farm's too.",
        }
    );
    seconds_rows(h, r, &cpu_rows);
    tester_cpu(h, r);
    host_cpu(h, r);
    poll_intervals(h, r);
    if processes.is_empty() {
        h.push_str("</section>");
        return;
    }
    h.push_str("<h3>Processes</h3><table id=\"processes\"><tr><th class=\"l\">process</th><th class=\"l\">role</th><th>pid</th><th>mean CPU %</th><th>max CPU %</th><th>peak RSS (MB)</th><th>end RSS (MB)</th><th>readings</th><th class=\"l\">note</th></tr>");
    for p in processes {
        let note = p.exited_s.map(|t| format!("exited at {t:.1} s")).unwrap_or_default();
        let _ = write!(
            h,
            "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td><td>{:.1}</td><td>{:.1}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"l\">{}</td></tr>",
            escape(&p.name),
            escape(&p.role),
            p.pid,
            p.mean_cpu(),
            p.max_cpu(),
            fmt_mb(p.peak_rss_bytes.max(p.max_rss())),
            match p.end_rss_bytes {
                // Results written before end RSS existed: the last reading.
                0 => p.readings.last().map(|x| fmt_mb(x.rss_bytes)).unwrap_or_else(|| "–".into()),
                end => fmt_mb(end),
            },
            p.readings.len(),
            escape(&note)
        );
    }
    h.push_str("</table></section>");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::json::tests::example;
    use crate::report::json::RunStatus;

    fn external_references(html: &str) -> Vec<&str> {
        [
            "src=\"http",
            "href=\"http",
            "url(http",
            "import(",
            "fetch(",
            "XMLHttpRequest",
        ]
        .into_iter()
        .filter(|p| html.contains(p))
        .collect()
    }

    /// [`example`] with 10 create_port samples, enough for a distribution chart.
    fn example_with_distribution() -> RunResults {
        let mut r = example(1.0);
        let m = r.stages[0].measurements.get_mut("create_port").unwrap();
        let more: Vec<_> = (4..10)
            .map(|i| crate::report::json::tests::sample(&format!("vm-{i}"), 1.0 + i as f64, 0.0004 * i as f64, None))
            .collect();
        m.samples.extend(more);
        m.stats = crate::metrics::Stats::of(&m.samples);
        r
    }

    #[test]
    fn page_is_self_contained_with_tables_and_charts() {
        let html = render(&example_with_distribution());
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert_eq!(external_references(&html), Vec::<&str>::new(), "works offline");
        assert!(html.contains("id=\"summary\""));
        assert!(html.contains("class=\"stats\""));
        // port_up, create_port and ping_gateway over time; the distribution of create_port
        // (the others have fewer than 5 successful samples); CPU and RSS.
        assert_eq!(html.matches("data-kind=\"latency-time\"").count(), 3);
        assert_eq!(html.matches("data-kind=\"distribution\"").count(), 1);
        assert_eq!(html.matches("data-kind=\"cpu-time\"").count(), 1);
        assert_eq!(html.matches("data-kind=\"rss-time\"").count(), 1);
        assert!(html.contains("timeout after 20s"), "failures listed");
        assert!(html.contains("ovnnb_db_run"));
        assert!(html.contains("Logical_Switch_Port 6"));
        assert!(html.contains("id=\"cpu-seconds\"") && html.contains("id=\"processes\""));
        assert_eq!(html.matches("</script>").count(), 3, "data, uPlot, charts");
    }

    #[test]
    fn status_follows_the_verdict_never_passed_with_failures_or_no_ports() {
        let html = render(&example(1.0)); // one failed sample
        assert!(
            html.contains("class=\"status bad\">NOT PASSED"),
            "{}",
            &html[..2000.min(html.len())]
        );

        let mut r = example(1.0);
        r.summary.failures = 0;
        r.summary.ports_up = r.summary.ports_created;
        assert!(render(&r).contains("class=\"status ok\">passed"));
        r.summary.ports_created = 0;
        r.summary.ports_up = 0;
        assert!(render(&r).contains("no port was created"));
    }

    #[test]
    fn harness_failures_and_skips_are_shown_with_their_class() {
        use crate::metrics::{FailureClass, Stats};
        let mut r = example(1.0);
        let m = r.stages[0].measurements.get_mut("port_up").unwrap();
        m.samples[3].class = Some(FailureClass::Harness);
        m.samples[3].error = Some("cannot plug <vm-3>".into());
        m.samples.push(crate::metrics::Sample {
            class: Some(FailureClass::Skipped),
            ..crate::report::json::tests::sample("vm-3", 5.0, 0.0, Some("skipped: bind_port failed"))
        });
        m.stats = Stats::of(&m.samples);
        r.summary = crate::report::json::summarize(&r.stages, &["create_port"]);
        let html = render(&r);
        assert!(
            html.contains("class=\"status bad\">NOT PASSED (harness failure"),
            "{}",
            &html[..2000.min(html.len())]
        );
        assert!(
            html.contains("<h3>Failures (0 system, 1 harness; 1 skipped)</h3>"),
            "failures heading"
        );
        assert!(html.contains("<td class=\"l\">harness</td>") && html.contains("<td class=\"l\">skipped</td>"));
        assert!(html.contains("cannot plug &lt;vm-3&gt;"));
        assert!(
            html.contains("<td class=\"failed\">1 (harness)</td><td>1</td>"),
            "stats row"
        );
    }

    #[test]
    fn partial_results_are_marked() {
        let mut r = example(1.0);
        r.status = RunStatus::Interrupted;
        r.error = Some("interrupted <by> SIGTERM".into());
        let html = render(&r);
        assert!(html.contains("PARTIAL RESULTS: the run was interrupted"));
        assert!(html.contains("interrupted &lt;by&gt; SIGTERM"));
    }

    #[test]
    fn data_cannot_close_its_script_element() {
        let mut r = example(1.0);
        r.stages[0].name = "</script><script>alert(1)".into();
        let html = render(&r);
        let data_start = html.find("id=\"report-data\">").unwrap();
        let data_end = data_start + html[data_start..].find("</script>").unwrap();
        let data = &html[data_start + "id=\"report-data\">".len()..data_end];
        let v: serde_json::Value = serde_json::from_str(data).unwrap();
        assert_eq!(v["stages"][0]["name"], "</script><script>alert(1)");
    }

    #[test]
    fn attached_runs_show_their_marker_leftovers_and_servers() {
        let mut r = example(1.0);
        assert!(!render(&r).contains("attached run id"));
        r.attached = Some(crate::report::json::Attached {
            run_id: "base-1".into(),
            found_at_start: [("Logical_Switch".to_owned(), 2)].into(),
            cleanup: true,
            left_at_end: Some(Default::default()),
            nb_server_at_start: Some(crate::report::json::ServerDatabase {
                name: "OVN_Northbound".into(),
                model: "clustered".into(),
                connected: true,
                leader: true,
                ..Default::default()
            }),
            sb_server_at_start: None,
        });
        let html = render(&r);
        for needle in [
            "base-1 (external_ids:ovn-heater:run)",
            "Logical_Switch: 2",
            "this run&#39;s rows left at end</th><td class=\"l\">none",
            "OVN_Northbound clustered, leader",
            "SB server at start</th><td class=\"l\">not readable",
        ] {
            assert!(html.contains(needle), "{needle}");
        }
    }

    #[test]
    fn label_binaries_daemons_host_cpu_and_poll_intervals_are_shown() {
        let mut r = example(1.0);
        r.environment.label = Some("patch <v2>".into());
        r.environment.binaries.insert(
            "ovn-northd".into(),
            crate::report::json::Binary {
                path: "/opt/ovn/northd/ovn-northd".into(),
                version: "ovn-northd 24.03.90".into(),
            },
        );
        r.stages[0].host_cpu = Some(crate::metrics::host::HostCpu {
            user_s: 1.0,
            system_s: 0.5,
            idle_s: 2.0,
            iowait_s: 0.0,
            steal_s: 0.5,
        });
        r.stages[0].poll_intervals.insert(
            "northd".into(),
            crate::metrics::logs::PollIntervals { count: 1, max_ms: 1834 },
        );
        let html = render(&r);
        assert!(
            html.contains("<td class=\"l\" id=\"label\">patch &lt;v2&gt;</td>"),
            "label escaped"
        );
        assert!(html.contains("/opt/ovn/northd/ovn-northd</code> (ovn-northd 24.03.90)"));
        assert!(html.contains("idl-cells-OVN_Southbound 5623"), "memory/show figures");
        assert!(html.contains("id=\"host-cpu\""));
        assert!(
            html.contains("<td>0.50</td><td>12.5</td><td>37.5</td>"),
            "steal and busy %"
        );
        assert!(html.contains("id=\"poll-intervals\""));
        assert!(
            html.contains("<td>1 (1834 ms)</td><td>2 (1834 ms)</td>"),
            "stage and whole log"
        );
        assert!(html.contains("This stage's alone"));
    }

    #[test]
    fn cpu_seconds_come_from_stages_cpu_s_with_the_tester() {
        let mut r = example(1.0);
        r.stages[0].cpu_s = [("ovn-northd".to_owned(), 1.5), ("ovn-heater".to_owned(), 0.25)].into();
        let (rows, estimated) = cpu_seconds_table(&r);
        assert!(!estimated);
        assert_eq!(
            rows,
            vec![
                ("ovn-northd".to_owned(), vec![Some(1.5)]),
                ("ovn-heater".to_owned(), vec![Some(0.25)])
            ]
        );
        // The tester's split: user, kernel, then by thread, in its own table.
        r.stages[0].tester_cpu = Some(crate::metrics::procfs::TesterCpu {
            user_s: 0.1,
            system_s: 0.15,
            by_thread: [("tokio-rt-worker".to_owned(), 0.05), ("ovn-lab-netns".to_owned(), 0.2)].into(),
        });
        let html = render(&r);
        assert!(html.contains("id=\"tester-cpu\""));
        assert!(html.contains("<td class=\"l\">kernel (on its behalf)</td><td>0.15</td>"));
        assert!(html.contains("<td class=\"l\">thread ovn-lab-netns</td><td>0.20</td>"));
        assert!(
            !render(&example(1.0)).contains("id=\"tester-cpu\""),
            "no table without the split"
        );
        // Without cpu_s: estimated from the readings (northd: 10/20/0 % per 0.5 s reading).
        let (rows, estimated) = cpu_seconds_table(&example(1.0));
        assert!(estimated);
        assert!(rows[0].1[0].unwrap() > 0.0);
    }

    /// The report opened in a real headless Chromium: tables in the DOM and every chart drawn
    /// by the inlined uPlot.
    #[test]
    fn chromium_draws_every_chart() {
        let Some(chromium) =
            test_support::find_binary("chromium").or_else(|| test_support::find_binary("chromium-browser"))
        else {
            test_support::skip("report_chromium", "chromium not found; apt-get install chromium");
            return;
        };
        let dir = test_support::TempDir::new("report_chromium");
        let page = dir.path().join("report.html");
        std::fs::write(&page, render(&example_with_distribution())).unwrap();
        let profile = dir.path().join("profile");
        let out = std::process::Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("--dump-dom")
            .arg(format!("file://{}", page.display()))
            .output()
            .expect("run chromium");
        let dom = String::from_utf8_lossy(&out.stdout);
        assert!(dom.contains("id=\"summary\""), "no summary table in {dom:.500}");
        assert_eq!(dom.matches("class=\"stats\"").count(), 1);
        assert!(
            dom.contains("data-charts-drawn=\"6\""),
            "3 over time + 1 distribution + CPU + RSS"
        );
        assert_eq!(dom.matches("class=\"uplot").count(), 6);
        assert!(!dom.contains("class=\"chart chart-error\""), "a chart failed");
    }
}
