//! The report at scale: `ovn-heater report` renders a synthetic results.json of 10,000 VMs
//! (10,000 samples per measurement, 20 sampled processes, the tester's CPU seconds) into a
//! page of at most 5 MB that draws every chart in a real headless Chromium
//! (`scripts/check-report.sh`, which also writes and requires a screenshot). The same at 30 VMs,
//! and bad input to `ovn-heater report` exits 2 and writes nothing.
//!
//! `OVN_HEATER_KEEP_REPORTS=DIR cargo test -p ovn-heater --test report_scale` keeps the pages
//! and their screenshots in DIR.

#![allow(clippy::print_stderr)] // the check's figures (render time, size) go to the test log

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

const MAX_REPORT_BYTES: u64 = 5_000_000;

/// A deterministic pseudo-random sequence (no dependency for a test's noise).
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn samples(noise: &mut Noise, n: usize, start: f64, spacing: f64, latency: impl Fn(usize, f64) -> f64) -> Value {
    let list: Vec<Value> = (0..n)
        .map(|i| {
            let d = latency(i, noise.next());
            let mut s = json!({
                "subject": format!("project-{}/vm-{i}@compute-{}", i / 100, i % 8),
                "start_s": start + i as f64 * spacing,
                "duration_s": d,
            });
            // One port in 2,000 never comes up.
            if d >= 30.0 {
                s["error"] = json!("timeout after 30s: Logical_Switch_Port never had up=true");
            }
            s
        })
        .collect();
    let ok: Vec<f64> = {
        let mut v: Vec<f64> = list
            .iter()
            .filter(|s| s.get("error").is_none())
            .map(|s| s["duration_s"].as_f64().unwrap())
            .collect();
        v.sort_by(f64::total_cmp);
        v
    };
    let pct = |p: f64| ok[((p / 100.0) * (ok.len() - 1) as f64).round() as usize];
    let total: f64 = ok.iter().sum();
    json!({
        "stats": {
            "min": ok[0], "median": pct(50.0), "p90": pct(90.0), "p99": pct(99.0), "max": ok[ok.len() - 1],
            "mean": total / ok.len() as f64, "total": total, "count": n, "failed": n - ok.len(),
        },
        "samples": list,
    })
}

/// results.json of an openstack_base run with `vms` VMs, as `ovn-heater run` writes it (plus
/// fields a newer writer may add, which a reader must ignore).
fn synthetic_results(vms: usize) -> Value {
    let mut noise = Noise(0x9e37_79b9_7f4a_7c15);
    let spacing = 0.1;
    let vms_start = 3.0;
    let vms_len = vms as f64 * spacing + 2.0;
    let ping_start = vms_start + vms_len;
    let ping_len = vms as f64 * 0.02 + 1.0;
    let end = ping_start + ping_len + 1.0;
    // Sub-millisecond NB transactions, port-up latency growing with the number of ports and a
    // long tail, pings of a few milliseconds.
    let create_port = samples(&mut noise, vms, vms_start, spacing, |_, r| 0.0002 + 0.0006 * r);
    let port_up = samples(&mut noise, vms, vms_start, spacing, |i, r| {
        if i % 2000 == 1999 {
            30.0
        } else {
            0.05 + 0.3 * i as f64 / vms as f64 + 0.05 * r + if r > 0.99 { 1.5 * r } else { 0.0 }
        }
    });
    let ping = samples(&mut noise, vms, ping_start, 0.02, |_, r| 0.002 + 0.003 * r);
    let failed = port_up["stats"]["failed"].as_u64().unwrap() as usize;

    let mut processes = Vec::new();
    let mut names: Vec<(String, &str)> = Vec::new();
    for i in 1..=3 {
        names.push((format!("nb-{i}"), "nb"));
        names.push((format!("sb-{i}"), "sb"));
        names.push((format!("relay-{i}"), "relay"));
    }
    names.push(("ovn-northd-1".into(), "northd"));
    names.push(("ovn-northd-2".into(), "northd"));
    names.push(("ovn-heater".into(), "tester"));
    for i in 1..=8 {
        names.push((format!("compute-{i}/ovn-controller"), "controller"));
    }
    for (k, (name, role)) in names.iter().enumerate() {
        let n = (end * 2.0) as usize;
        let readings: Vec<Value> = (0..n)
            .map(|j| {
                let t = j as f64 * 0.5;
                let busy = if t > vms_start && t < ping_start { 1.0 } else { 0.1 };
                json!({
                    "t_s": t,
                    "cpu_pct": ((5.0 + 7.0 * k as f64) * busy * (0.8 + 0.4 * noise.next()) * 10.0).round() / 10.0,
                    "rss_bytes": 20_000_000 + k as u64 * 5_000_000 + (t * 10_000.0) as u64,
                })
            })
            .collect();
        processes.push(json!({
            "name": name, "role": role, "pid": 1000 + k, "readings": readings,
            "peak_rss_bytes": 20_000_000 + k as u64 * 5_000_000 + (end * 10_000.0) as u64,
        }));
    }
    let cpu_s = |scale: f64| -> Value {
        names
            .iter()
            .enumerate()
            .map(|(k, (n, _))| (n.clone(), json!(scale * (1.0 + k as f64))))
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    json!({
        "schema_version": 1,
        "status": "complete",
        "scenario": {
            "name": "openstack-base-10k", "file": "scenarios/openstack-base.yml", "workload": "openstack_base",
            "resolved": {"workload": {"openstack_base": {"n_hypervisors": vms / 10, "n_vms_per_hypervisor": 10}}},
            "notes": [],
        },
        "environment": {
            "ovn_heater_version": "0.1.0", "ovn_version": "23.03.1", "ovs_version": "3.1.0", "kernel": "6.1",
            "hostname": "test", "cpu_model": "synthetic", "cpus": 2, "memory_bytes": 25_000_000_000u64,
            "chassis": "emulated", "target": "lab", "started_at": "2026-12-05T00:00:00Z",
        },
        "duration_s": end,
        "summary": {
            "ports_created": vms, "ports_up": vms - failed, "failures": failed,
            "pings_ok": vms, "pings_failed": 0, "cms_actions": vms + 3,
            "failures_by_class": {"system": failed, "harness": 0, "skipped": 0},
        },
        "stages": [
            {"name": "network", "start_s": 1.0, "duration_s": 2.0, "cpu_s": cpu_s(0.01),
             "measurements": {"create_network": samples(&mut noise, 3, 1.0, 0.5, |_, r| 0.001 + 0.002 * r)}},
            {"name": "vms", "start_s": vms_start, "duration_s": vms_len, "cpu_s": cpu_s(vms as f64 / 100.0),
             "measurements": {"create_port": create_port, "port_up": port_up}},
            {"name": "ping", "start_s": ping_start, "duration_s": ping_len, "cpu_s": cpu_s(vms as f64 / 1000.0),
             "measurements": {"ping_gateway": ping}},
        ],
        "processes": processes,
    })
}

fn ovn_heater(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ovn-heater"))
        .args(args)
        .output()
        .expect("run ovn-heater")
}

/// Writes the results of `vms` VMs and renders them with `ovn-heater report`.
fn render(dir: &Path, vms: usize) -> PathBuf {
    std::fs::write(dir.join("results.json"), synthetic_results(vms).to_string()).unwrap();
    let out = ovn_heater(&["report", "--results", dir.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "ovn-heater report: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir.join("report.html")
}

/// Runs scripts/check-report.sh on `page`: 0 passes, 77 (no chromium) skips, else fails.
fn check_in_chromium(test: &str, page: &Path, min_charts: usize) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/check-report.sh");
    let out = Command::new(script)
        .arg(page)
        .arg(min_charts.to_string())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{text}");
    // To look at the pages: OVN_HEATER_KEEP_REPORTS=DIR keeps a copy of each page and screenshot.
    if let Some(keep) = std::env::var_os("OVN_HEATER_KEEP_REPORTS") {
        let keep = PathBuf::from(keep);
        std::fs::create_dir_all(&keep).unwrap();
        for ext in ["html", "png"] {
            let _ = std::fs::copy(page.with_extension(ext), keep.join(format!("{test}.{ext}")));
        }
    }
    match out.status.code() {
        Some(0) => assert!(page.with_extension("png").is_file(), "no screenshot"),
        Some(77) => {
            test_support::skip(test, "chromium not found; apt-get install chromium (scripts/setup.sh)");
        }
        other => panic!("check-report.sh failed ({other:?}):\n{text}"),
    }
}

#[test]
fn report_of_10000_vms_is_small_and_draws_in_chromium() {
    let dir = test_support::TempDir::new("report_10k");
    let page = render(dir.path(), 10_000);
    let size = std::fs::metadata(&page).unwrap().len();
    let results_size = std::fs::metadata(dir.path().join("results.json")).unwrap().len();
    eprintln!("report.html: {size} bytes for a results.json of {results_size} bytes");
    assert!(size <= MAX_REPORT_BYTES, "report.html is {size} bytes");
    let html = std::fs::read_to_string(&page).unwrap();
    // 4 measurements over time; distributions of those with 5 samples or more (not the 3
    // create_network ones).
    assert_eq!(html.matches("data-kind=\"latency-time\"").count(), 4);
    assert_eq!(html.matches("data-kind=\"distribution\"").count(), 3);
    assert!(
        html.contains("10000 samples (5 failed) in 400 buckets"),
        "port_up is bucketed"
    );
    assert!(
        html.contains("class=\"status bad\">NOT PASSED"),
        "5 ports never came up"
    );
    assert!(html.contains("id=\"cpu-seconds\"") && html.contains("<td class=\"l\">ovn-heater</td>"));
    assert!(html.contains("controller (sum of 8)"));
    check_in_chromium("report_10k", &page, 10);
}

#[test]
fn report_of_30_vms_draws_each_sample_in_chromium() {
    let dir = test_support::TempDir::new("report_30");
    let page = render(dir.path(), 30);
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("each of the 30 samples"));
    assert!(html.contains("class=\"status ok\">passed: 30 of 30 ports up"));
    check_in_chromium("report_30", &page, 10);
}

#[test]
fn report_refuses_what_is_not_a_results_json() {
    let dir = test_support::TempDir::new("report_bad_input");
    let out = ovn_heater(&["report", "--results", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read"));
    std::fs::write(dir.path().join("results.json"), "{\"schema_version\": 1}").unwrap();
    let out = ovn_heater(&["report", "--results", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not an ovn-heater results.json"));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "nothing written");
}

#[test]
fn report_json_names_the_page_written() {
    let dir = test_support::TempDir::new("report_json");
    std::fs::write(dir.path().join("results.json"), synthetic_results(2).to_string()).unwrap();
    let out = ovn_heater(&["report", "--results", dir.path().to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("report --json");
    let page = dir.path().join("report.html");
    assert_eq!(doc["report_html"], page.display().to_string());
    assert_eq!(doc["bytes"], std::fs::metadata(&page).unwrap().len());
}

#[test]
fn report_help_has_examples() {
    let out = ovn_heater(&["report", "--help"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("ovn-heater report --results results/base"));
}
