//! `ovn-heater run --json`: one JSON document on stdout once the run has ended, whatever the
//! outcome, built from the results.json the run wrote (OpenStack and ovn-kubernetes alike):
//! where the results are, the verdict and exit code, and results.json's `summary`.
//!
//! Must not know: how a run is driven (that is `workload`).

use std::path::Path;
use std::process::ExitCode;

use serde_json::{json, Value};

use crate::error::{EXIT_BAD_INPUT, EXIT_CHECK_FAILED, EXIT_ENVIRONMENT, EXIT_INTERRUPTED};

/// The document for a run that wrote (or meant to write) its results to `results_dir`.
pub fn document(results_dir: Option<&Path>, ended: &anyhow::Result<ExitCode>) -> Value {
    let results_json = results_dir.map(|d| d.join("results.json")).filter(|p| p.is_file());
    let results: Value = results_json
        .as_ref()
        .and_then(|p| std::fs::read(p).ok())
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or(Value::Null);
    let report = results_dir.map(|d| d.join("report.html")).filter(|p| p.is_file());
    let (code, error) = match ended {
        Ok(_) => (0, None),
        Err(e) => (crate::error::exit_code(e), Some(format!("{e:#}"))),
    };
    let status = results.get("status").cloned().unwrap_or(Value::Null);
    let verdict = match code {
        0 => "passed",
        EXIT_CHECK_FAILED => "system_failures",
        EXIT_BAD_INPUT => "bad_input",
        EXIT_ENVIRONMENT if status == "complete" => "harness_failures",
        EXIT_ENVIRONMENT => "failed",
        EXIT_INTERRUPTED => "interrupted",
        _ => "failed",
    };
    let path = |p: Option<std::path::PathBuf>| p.map(|p| p.display().to_string());
    json!({
        "results_dir": results_dir.map(|d| d.display().to_string()),
        "results_json": path(results_json),
        "report_html": path(report),
        "exit_code": code,
        "verdict": verdict,
        "error": error,
        "status": status,
        "label": results.pointer("/environment/label").cloned().unwrap_or(Value::Null),
        "summary": results.get("summary").cloned().unwrap_or(Value::Null),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Failure;

    #[test]
    fn a_passed_run_points_at_its_files_and_summary() {
        let dir = test_support::TempDir::new("run_json");
        let results = json!({"status": "complete", "environment": {"label": "main"}, "summary": {"failures": 0}});
        std::fs::write(dir.path().join("results.json"), results.to_string()).unwrap();
        std::fs::write(dir.path().join("report.html"), "<html>").unwrap();
        let doc = document(Some(dir.path()), &Ok(ExitCode::SUCCESS));
        assert_eq!(doc["verdict"], "passed");
        assert_eq!(doc["exit_code"], 0);
        assert_eq!(doc["label"], "main");
        assert_eq!(doc["summary"]["failures"], 0);
        assert!(doc["results_json"].as_str().unwrap().ends_with("results.json"));
        assert!(doc["report_html"].as_str().unwrap().ends_with("report.html"));
    }

    #[test]
    fn failures_keep_their_exit_code_and_class() {
        let dir = test_support::TempDir::new("run_json");
        std::fs::write(
            dir.path().join("results.json"),
            r#"{"status": "complete", "summary": {}}"#,
        )
        .unwrap();
        let system = Err(Failure::checks_failed(crate::metrics::FailureClass::System, "ports down").into());
        assert_eq!(document(Some(dir.path()), &system)["verdict"], "system_failures");
        let harness = Err(Failure::checks_failed(crate::metrics::FailureClass::Harness, "tap gone").into());
        let doc = document(Some(dir.path()), &harness);
        assert_eq!(
            (doc["verdict"].as_str(), doc["exit_code"].as_u64()),
            (Some("harness_failures"), Some(3))
        );
        let bad = Err(Failure::bad_input("no such key").into());
        let doc = document(None, &bad);
        assert_eq!(doc["verdict"], "bad_input");
        assert_eq!(doc["results_json"], Value::Null);
        assert!(doc["error"].as_str().unwrap().contains("no such key"));
    }
}
