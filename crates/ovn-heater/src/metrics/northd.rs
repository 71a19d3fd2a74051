//! northd's own counters at the end of each stage: `ovn-appctl -t <ctl> stopwatch/show` (parsed
//! into per-stopwatch figures) and `inc-engine/show-stats` (kept as text).
//!
//! A failed capture is recorded as its error, never dropped: a report that silently lacks
//! northd's numbers reads like a run where northd did nothing.
//!
//! Must not know: where the control socket comes from.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One `Statistics for 'NAME'` block of `stopwatch/show`, times in milliseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Stopwatch {
    pub samples: u64,
    pub max_ms: f64,
    pub min_ms: f64,
    pub p95_ms: f64,
    pub short_term_avg_ms: f64,
    pub long_term_avg_ms: f64,
}

/// What was captured from northd at a stage's end.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NorthdCapture {
    pub stopwatches: BTreeMap<String, Stopwatch>,
    pub stopwatch_text: String,
    pub inc_engine_text: String,
    /// True when northd's counters were cleared at the previous stage's end, so these figures
    /// cover this stage alone (the first capture covers northd's life up to it). False in
    /// results written before, whose sample counts are cumulative over the run.
    #[serde(default)]
    pub since_previous_stage: bool,
    /// Errors of the capture commands, if any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

/// Parses `stopwatch/show` output.
pub fn parse_stopwatches(text: &str) -> BTreeMap<String, Stopwatch> {
    let mut out = BTreeMap::new();
    let mut current: Option<(String, Stopwatch)> = None;
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("Statistics for '") {
            if let Some((name, sw)) = current.take() {
                out.insert(name, sw);
            }
            let name = rest.trim_end_matches(['\'', ':']).to_owned();
            current = Some((name, Stopwatch::default()));
            continue;
        }
        let Some((_, sw)) = current.as_mut() else { continue };
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let number: f64 = value
            .split_whitespace()
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        match key.trim() {
            "Total samples" => sw.samples = number as u64,
            "Maximum" => sw.max_ms = number,
            "Minimum" => sw.min_ms = number,
            "95th percentile" => sw.p95_ms = number,
            "Short term average" => sw.short_term_avg_ms = number,
            "Long term average" => sw.long_term_avg_ms = number,
            _ => {}
        }
    }
    if let Some((name, sw)) = current {
        out.insert(name, sw);
    }
    out
}

/// `appctl_bin -t ctl command...`'s output; an error says which command failed and why.
pub(crate) async fn appctl(appctl_bin: &Path, ctl: &Path, command: &[&str]) -> Result<String, String> {
    let args = command;
    let command = command.join(" ");
    let out = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::process::Command::new(appctl_bin)
            .arg("-t")
            .arg(ctl)
            .args(args)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .map_err(|_| format!("`ovn-appctl -t {} {command}` did not answer in 10 s", ctl.display()))?
    .map_err(|e| format!("cannot run {}: {e}", appctl_bin.display()))?;
    if !out.status.success() {
        return Err(format!(
            "`ovn-appctl -t {} {command}` failed ({}): {}",
            ctl.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Captures both reports from the northd listening on control socket `ctl`, then clears
/// northd's stopwatches and engine statistics (`stopwatch/reset`, `inc-engine/clear-stats`) so
/// that the next capture covers only what happened since: the figures of each stage are that
/// stage's, not a running total.
pub async fn capture(appctl_bin: &Path, ctl: &Path) -> NorthdCapture {
    let mut cap = NorthdCapture::default();
    match appctl(appctl_bin, ctl, &["stopwatch/show"]).await {
        Ok(text) => {
            cap.stopwatches = parse_stopwatches(&text);
            cap.stopwatch_text = text;
        }
        Err(e) => cap.errors.push(e),
    }
    match appctl(appctl_bin, ctl, &["inc-engine/show-stats"]).await {
        Ok(text) => cap.inc_engine_text = text,
        Err(e) => cap.errors.push(e),
    }
    // Cleared only when both were read: a failed read must not lose the stage's figures.
    if cap.errors.is_empty() {
        let reset = appctl(appctl_bin, ctl, &["stopwatch/reset"]).await;
        let clear = appctl(appctl_bin, ctl, &["inc-engine/clear-stats"]).await;
        match (reset, clear) {
            (Ok(_), Ok(_)) => cap.since_previous_stage = true,
            (Err(e), _) | (_, Err(e)) => cap.errors.push(e),
        }
    }
    cap
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "Statistics for 'ovnnb_db_run'\n  Total samples: 12\n  Maximum: 25 msec\n  Minimum: 1 msec\n  95th percentile: 20.5 msec\n  Short term average: 3.2 msec\n  Long term average: 2.1 msec\nStatistics for 'build_flows_ctx'\n  Total samples: 3\n  Maximum: 7 msec\n  Minimum: 2 msec\n  95th percentile: 6.9 msec\n  Short term average: 4 msec\n  Long term average: 3.5 msec\n";

    #[test]
    fn parses_stopwatch_blocks() {
        let sws = parse_stopwatches(SAMPLE);
        assert_eq!(sws.len(), 2);
        let nb = &sws["ovnnb_db_run"];
        assert_eq!(nb.samples, 12);
        assert_eq!(nb.max_ms, 25.0);
        assert_eq!(nb.p95_ms, 20.5);
        assert_eq!(sws["build_flows_ctx"].long_term_avg_ms, 3.5);
        assert!(parse_stopwatches("").is_empty());
    }

    #[tokio::test]
    async fn capture_reports_errors_instead_of_dropping() {
        let cap = capture(Path::new("/nonexistent/ovn-appctl"), Path::new("/nonexistent.ctl")).await;
        assert_eq!(cap.errors.len(), 2);
        assert!(cap.stopwatches.is_empty());
    }
}
