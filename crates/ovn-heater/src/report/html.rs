//! `report.html`: one self-contained page (inline CSS and SVG, no script, no network) from a
//! finished [`RunResults`].
//!
//! Layout: status and summary, scenario and machine, then per stage the statistics table (min,
//! median, p90, p99, max, mean, total, count, failed per measurement), a latency-per-iteration
//! chart and a histogram per measurement, the failures, northd's stopwatches and the DB sizes;
//! last, CPU and RSS over time per daemon. Chassis daemons are summed per role when there are
//! many chassis, so the page stays readable at scale.
//!
//! Must not know: how the numbers were measured, any DB connection.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::json::{RunResults, RunStatus, StageResult};
use super::svg::{escape, histogram, iteration_bars, time_lines};
use crate::metrics::procfs::Series;

/// Chassis roles plotted per process only up to this many processes per role.
const MAX_LINES_PER_ROLE: usize = 4;
/// Failures listed per stage before "... and N more".
const MAX_FAILURES_LISTED: usize = 50;

const CSS: &str = r#"
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#222;max-width:1200px}
h1{font-size:1.5em;margin-bottom:4px} h2{margin-top:32px;border-bottom:1px solid #ccc} h3{margin-bottom:4px}
table{border-collapse:collapse;margin:8px 0} th,td{border:1px solid #ccc;padding:3px 8px;text-align:right;font-variant-numeric:tabular-nums}
th{background:#f3f3f3} td.l,th.l{text-align:left}
.status{padding:8px 12px;border-radius:4px;font-weight:600;display:inline-block}
.ok{background:#e6f4ea;color:#1e6b34} .bad{background:#fde8e8;color:#a11}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(460px,1fr));gap:12px}
svg.chart{width:100%;height:auto;background:#fff;border:1px solid #eee}
.ct{font-size:13px;text-anchor:middle;font-weight:600} .xt{font-size:10px;text-anchor:middle} .yt{font-size:10px;text-anchor:end}
.xl,.yl{font-size:11px;text-anchor:middle} .lg{font-size:10px}
.grid{stroke:#eee} .axis{stroke:#888} .bar{fill:#4e79a7} .bar.failed{fill:#d62728}
.line{fill:none;stroke-width:1.5}
pre{background:#f7f7f7;padding:8px;overflow:auto;max-height:400px;font-size:12px}
td.failed{color:#a11;font-weight:600}
"#;

fn fmt_s(x: Option<f64>) -> String {
    x.map(|v| format!("{v:.4}")).unwrap_or_else(|| "–".into())
}

fn fmt_mb(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / 1e6)
}

/// Renders the whole page.
pub fn render(r: &RunResults) -> String {
    let mut h = String::with_capacity(64 * 1024);
    let title = format!("ovn-heater: {}", r.scenario.name);
    let _ = write!(
        h,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{CSS}</style></head><body>",
        escape(&title)
    );
    let _ = write!(h, "<h1>{}</h1>", escape(&title));
    status(&mut h, r);
    summary(&mut h, r);
    environment(&mut h, r);
    for stage in &r.stages {
        stage_section(&mut h, stage);
    }
    resources(&mut h, &r.processes);
    h.push_str("</body></html>\n");
    h
}

fn status(h: &mut String, r: &RunResults) {
    let all_up = r.summary.ports_up == r.summary.ports_created;
    let (class, text) = match r.status {
        RunStatus::Complete if r.summary.failures == 0 && all_up => ("ok", "complete: every check passed".to_owned()),
        RunStatus::Complete => (
            "bad",
            format!("complete, with {} failures (see the tables)", r.summary.failures),
        ),
        RunStatus::Failed => ("bad", "PARTIAL RESULTS: the run failed".to_owned()),
        RunStatus::Interrupted => ("bad", "PARTIAL RESULTS: the run was interrupted".to_owned()),
    };
    let _ = write!(h, "<p id=\"status\" class=\"status {class}\">{}</p>", escape(&text));
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
        "pings ok",
        "pings failed",
        "CMS actions",
        "duration (s)",
    ] {
        let _ = write!(h, "<th>{c}</th>");
    }
    let _ = write!(
        h,
        "</tr><tr><td>{}</td><td>{}</td><td class=\"{}\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.1}</td></tr></table>",
        s.ports_created,
        s.ports_up,
        if s.failures > 0 { "failed" } else { "" },
        s.failures,
        s.pings_ok,
        s.pings_failed,
        s.cms_actions,
        r.duration_s
    );
}

fn environment(h: &mut String, r: &RunResults) {
    let e = &r.environment;
    h.push_str("<h2>Scenario and machine</h2><table id=\"environment\">");
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

fn stage_section(h: &mut String, st: &StageResult) {
    let dur = st
        .duration_s
        .map(|d| format!("{d:.2} s"))
        .unwrap_or_else(|| "did not finish".into());
    let _ = write!(
        h,
        "<section class=\"stage\" id=\"stage-{id}\"><h2>Stage {name} <small>({dur})</small></h2>",
        id = escape(&st.name),
        name = escape(&st.name)
    );
    h.push_str("<table class=\"stats\"><tr><th class=\"l\">measurement (s)</th>");
    for c in ["min", "median", "p90", "p99", "max", "mean", "total", "count", "failed"] {
        let _ = write!(h, "<th>{c}</th>");
    }
    h.push_str("</tr>");
    for (name, m) in &st.measurements {
        let s = &m.stats;
        let _ = write!(
            h,
            "<tr><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.4}</td><td>{}</td><td class=\"{}\">{}</td></tr>",
            escape(name),
            fmt_s(s.min),
            fmt_s(s.median),
            fmt_s(s.p90),
            fmt_s(s.p99),
            fmt_s(s.max),
            fmt_s(s.mean),
            s.total,
            s.count,
            if s.failed > 0 { "failed" } else { "" },
            s.failed
        );
    }
    h.push_str("</table><div class=\"charts\">");
    for (name, m) in &st.measurements {
        if m.samples.len() < 2 {
            continue;
        }
        let bars: Vec<(f64, bool)> = m.samples.iter().map(|s| (s.duration_s, !s.ok())).collect();
        h.push_str(&iteration_bars(
            &format!("{}: {name} per iteration", st.name),
            "seconds",
            &bars,
        ));
        let ok: Vec<f64> = m.samples.iter().filter(|s| s.ok()).map(|s| s.duration_s).collect();
        if !ok.is_empty() {
            h.push_str(&histogram(
                &format!("{}: {name} distribution", st.name),
                "seconds",
                &ok,
                20,
            ));
        }
    }
    h.push_str("</div>");
    failures(h, st);
    northd(h, st);
    db(h, st);
    h.push_str("</section>");
}

fn failures(h: &mut String, st: &StageResult) {
    let failed: Vec<(&String, &crate::metrics::Sample)> = st
        .measurements
        .iter()
        .flat_map(|(n, m)| m.samples.iter().filter(|s| !s.ok()).map(move |s| (n, s)))
        .collect();
    if failed.is_empty() {
        return;
    }
    let _ = write!(
        h,
        "<h3>Failures ({})</h3><table class=\"failures\"><tr><th class=\"l\">measurement</th><th class=\"l\">subject</th><th>after (s)</th><th class=\"l\">error</th></tr>",
        failed.len()
    );
    for (name, s) in failed.iter().take(MAX_FAILURES_LISTED) {
        let _ = write!(
            h,
            "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{:.3}</td><td class=\"l\">{}</td></tr>",
            escape(name),
            escape(&s.subject),
            s.duration_s,
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
    h.push_str("<h3>northd stopwatches (ms)</h3>");
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

/// The lines to plot: each process on its own, except roles with many processes, which are
/// summed into one line ("ovn-controller (sum of 20)").
fn plotted_lines(
    processes: &[Series],
    value: impl Fn(&crate::metrics::procfs::Reading) -> f64,
) -> Vec<(String, Vec<(f64, f64)>)> {
    let mut by_role: BTreeMap<&str, Vec<&Series>> = BTreeMap::new();
    for p in processes {
        by_role.entry(p.role.as_str()).or_default().push(p);
    }
    let mut lines = Vec::new();
    for (role, procs) in by_role {
        if procs.len() <= MAX_LINES_PER_ROLE {
            for p in procs {
                lines.push((p.name.clone(), p.readings.iter().map(|r| (r.t_s, value(r))).collect()));
            }
            continue;
        }
        // Sum readings in half-second buckets (the sampling period).
        let mut sums: BTreeMap<i64, f64> = BTreeMap::new();
        for p in &procs {
            for r in &p.readings {
                *sums.entry((r.t_s * 2.0).round() as i64).or_default() += value(r);
            }
        }
        lines.push((
            format!("{role} (sum of {})", procs.len()),
            sums.into_iter().map(|(k, v)| (k as f64 / 2.0, v)).collect(),
        ));
    }
    lines
}

fn resources(h: &mut String, processes: &[Series]) {
    h.push_str("<section id=\"resources\"><h2>CPU and memory of OVN daemons</h2>");
    if processes.is_empty() {
        h.push_str("<p>No process was sampled (the run drove an existing OVN, or stopped before the lab was up).</p></section>");
        return;
    }
    h.push_str("<div class=\"charts\">");
    h.push_str(&time_lines(
        "CPU over time",
        "CPU % (100 = one core)",
        &plotted_lines(processes, |r| r.cpu_pct),
    ));
    h.push_str(&time_lines(
        "RSS over time",
        "RSS (MB)",
        &plotted_lines(processes, |r| r.rss_bytes as f64 / 1e6),
    ));
    h.push_str("</div><table id=\"processes\"><tr><th class=\"l\">process</th><th class=\"l\">role</th><th>pid</th><th>mean CPU %</th><th>max CPU %</th><th>max RSS (MB)</th><th>samples</th><th class=\"l\">note</th></tr>");
    for p in processes {
        let note = p.exited_s.map(|t| format!("exited at {t:.1} s")).unwrap_or_default();
        let _ = write!(
            h,
            "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td><td>{:.1}</td><td>{:.1}</td><td>{}</td><td>{}</td><td class=\"l\">{}</td></tr>",
            escape(&p.name),
            escape(&p.role),
            p.pid,
            p.mean_cpu(),
            p.max_cpu(),
            fmt_mb(p.max_rss()),
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

    #[test]
    fn page_is_self_contained_with_tables_and_charts() {
        let html = render(&example(1.0));
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(!html.contains("<script"), "no script");
        assert!(
            !html.contains("http://")
                || html.matches("http://").count() == html.matches("xmlns=\"http://www.w3.org/2000/svg\"").count()
        );
        assert!(!html.contains("https://"));
        assert!(html.contains("id=\"summary\""));
        assert!(html.contains("class=\"stats\""));
        // port_up and create_port and ping_gateway: a bar chart and a histogram each, plus two lines charts.
        assert_eq!(html.matches("data-kind=\"bars\"").count(), 3);
        assert_eq!(html.matches("data-kind=\"histogram\"").count(), 3);
        assert_eq!(html.matches("data-kind=\"lines\"").count(), 2);
        assert!(html.contains("timeout after 20s"), "failures listed");
        assert!(html.contains("ovnnb_db_run"));
        assert!(html.contains("Logical_Switch_Port 6"));
    }

    #[test]
    fn partial_results_are_marked() {
        let mut r = example(1.0);
        r.status = RunStatus::Interrupted;
        r.error = Some("interrupted <by> SIGTERM".into());
        let html = render(&r);
        assert!(html.contains("PARTIAL RESULTS"));
        assert!(html.contains("interrupted &lt;by&gt; SIGTERM"));
    }

    #[test]
    fn many_chassis_are_summed_per_role() {
        let mut r = example(1.0);
        let base = r.processes[0].clone();
        r.processes = (0..10)
            .map(|i| Series {
                name: format!("ovn-controller@hv-{i}"),
                role: "ovn-controller".into(),
                ..base.clone()
            })
            .collect();
        let lines = plotted_lines(&r.processes, |x| x.cpu_pct);
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].0, "ovn-controller (sum of 10)");
    }

    /// The report opened in a real headless Chromium: tables and charts are in the rendered DOM.
    #[test]
    fn chromium_renders_tables_and_charts() {
        let Some(chromium) =
            test_support::find_binary("chromium").or_else(|| test_support::find_binary("chromium-browser"))
        else {
            test_support::skip("report_chromium", "chromium not found; apt-get install chromium");
            return;
        };
        let dir = test_support::TempDir::new("report_chromium");
        let page = dir.path().join("report.html");
        std::fs::write(&page, render(&example(1.0))).unwrap();
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
        assert_eq!(
            dom.matches("<svg class=\"chart\"").count(),
            8,
            "3 bars + 3 histograms + 2 lines"
        );
        assert!(dom.contains("<rect"), "bars drawn");
        assert!(dom.contains("<path"), "lines drawn");
    }
}
