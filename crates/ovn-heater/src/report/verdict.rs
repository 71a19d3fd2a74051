//! Did a run pass? One rule, used by `ovn-heater run` for its exit code and by the report for
//! its status line, so the page never says "passed" for a run that exits non-zero.
//!
//! A run passed when it completed, created at least one port, every expected port came up, and
//! no sample failed (a failed ping is a failed sample too).
//!
//! A run that did not pass says whose failure it was ([`Verdict::blame`]): `system` (OVN) when
//! any sample failed on OVN's side, or a check failed with no harness failure to explain it;
//! `harness` when only the harness failed (its dependent samples skipped, its ports missing).
//!
//! Must not know: exit code numbers (the CLI maps a verdict to them), HTML.

use super::json::{RunResults, RunStatus};
use crate::metrics::FailureClass;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub passed: bool,
    /// Who failed, when the run did not pass: [`FailureClass::System`] or
    /// [`FailureClass::Harness`] (never `Skipped`).
    pub blame: Option<FailureClass>,
    /// One line: "passed: 30 of 30 ports up, no failed sample" or what went wrong.
    pub headline: String,
    /// Each reason it did not pass, one line each (empty when it passed).
    pub problems: Vec<String>,
}

/// The ports the scenario asked for, read from the resolved scenario in `results.json`
/// (`None` when the workload is not one this version knows).
pub fn expected_ports(resolved: &serde_json::Value) -> Option<usize> {
    let w = resolved.get("workload")?;
    let n = |section: &serde_json::Value, a: &str, b: &str| -> Option<usize> {
        Some(section.get(a)?.as_u64()? as usize * section.get(b)?.as_u64()? as usize)
    };
    if let Some(o) = w.get("openstack_base") {
        return n(o, "n_hypervisors", "n_vms_per_hypervisor");
    }
    if let Some(b) = w.get("base_openstack") {
        return n(b, "n_projects", "n_vms_per_project");
    }
    None
}

/// Judges `r`; `expected_ports` is how many ports the scenario asked for, when known (the run
/// knows it; a report read back from results.json takes it from the resolved scenario).
pub fn judge(r: &RunResults, expected_ports: Option<usize>) -> Verdict {
    let s = &r.summary;
    let mut problems = Vec::new();
    match r.status {
        RunStatus::Complete => {}
        RunStatus::Failed => problems.push("PARTIAL RESULTS: the run failed".to_owned()),
        RunStatus::Interrupted => problems.push("PARTIAL RESULTS: the run was interrupted".to_owned()),
    }
    if s.ports_created == 0 {
        problems.push("no port was created".to_owned());
    }
    let expected = expected_ports.unwrap_or(s.ports_created).max(s.ports_created);
    if s.ports_up < expected {
        problems.push(format!("{} of {expected} ports came up", s.ports_up));
    }
    let by_class = s.failures_by_class;
    if s.failures > 0 {
        problems.push(format!(
            "{} failed samples{}{}",
            s.failures,
            if s.pings_failed > 0 {
                format!(", {} of them pings", s.pings_failed)
            } else {
                String::new()
            },
            match (by_class.system, by_class.harness) {
                (_, 0) => String::new(),
                (0, _) => " (all harness: the lab or ovn-heater failed, not OVN)".to_owned(),
                (n, h) => format!(" ({n} system: OVN, {h} harness: the lab or ovn-heater)"),
            }
        ));
    } else if s.pings_failed > 0 {
        problems.push(format!("{} pings failed", s.pings_failed));
    }
    if by_class.skipped > 0 {
        problems.push(format!(
            "{} samples skipped (their VM or pod had failed earlier)",
            by_class.skipped
        ));
    }
    let passed = problems.is_empty();
    let blame = match (passed, by_class.system, by_class.harness) {
        (true, _, _) => None,
        (false, 0, h) if h > 0 => Some(FailureClass::Harness),
        _ => Some(FailureClass::System),
    };
    let headline = match blame {
        None => format!(
            "passed: {} of {expected} ports up, {} pings answered, no failed sample",
            s.ports_up, s.pings_ok
        ),
        Some(FailureClass::Harness) => format!("NOT PASSED (harness failure, not OVN's): {}", problems.join("; ")),
        Some(_) => format!("NOT PASSED: {}", problems.join("; ")),
    };
    Verdict {
        passed,
        blame,
        headline,
        problems,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::json::tests::example;

    #[test]
    fn a_clean_complete_run_passes() {
        let mut r = example(1.0);
        r.summary.failures = 0;
        r.summary.failures_by_class = Default::default();
        r.summary.ports_up = r.summary.ports_created;
        let v = judge(&r, Some(4));
        assert!(v.passed, "{v:?}");
        assert!(v.headline.starts_with("passed: 4 of 4 ports up"));
    }

    #[test]
    fn no_port_missing_ports_failures_and_partial_runs_do_not_pass() {
        let mut r = example(1.0);
        r.summary.failures = 0;
        r.summary.ports_up = r.summary.ports_created;
        assert!(!judge(&r, Some(10)).passed, "6 ports missing");

        r.summary.ports_created = 0;
        r.summary.ports_up = 0;
        let v = judge(&r, None);
        assert!(!v.passed);
        assert!(v.headline.contains("no port was created"), "{}", v.headline);

        let r = example(1.0); // one failed port_up sample
        let v = judge(&r, Some(4));
        assert!(!v.passed);
        assert!(v.headline.contains("3 of 4 ports came up"), "{}", v.headline);
        assert!(v.headline.contains("1 failed samples"), "{}", v.headline);

        let mut r = example(1.0);
        r.summary.failures = 0;
        r.summary.ports_up = r.summary.ports_created;
        r.status = RunStatus::Interrupted;
        assert!(judge(&r, Some(4))
            .headline
            .contains("PARTIAL RESULTS: the run was interrupted"));
    }

    /// `example` with its one failed port_up sample classed as given (failures recounted).
    fn one_failure_of(class: FailureClass) -> RunResults {
        let mut r = example(1.0);
        let m = r.stages[0].measurements.get_mut("port_up").unwrap();
        m.samples
            .iter_mut()
            .filter(|s| !s.ok())
            .for_each(|s| s.class = Some(class));
        m.stats = crate::metrics::Stats::of(&m.samples);
        r.summary = crate::report::json::summarize(&r.stages, &["create_port"]);
        r
    }

    #[test]
    fn harness_only_failures_blame_the_harness_system_ones_blame_ovn() {
        let v = judge(&one_failure_of(FailureClass::System), Some(4));
        assert_eq!(v.blame, Some(FailureClass::System));
        assert!(v.headline.starts_with("NOT PASSED: "), "{}", v.headline);

        let v = judge(&one_failure_of(FailureClass::Harness), Some(4));
        assert!(!v.passed);
        assert_eq!(v.blame, Some(FailureClass::Harness));
        assert!(v.headline.starts_with("NOT PASSED (harness failure"), "{}", v.headline);
        assert!(v.headline.contains("(all harness: "), "{}", v.headline);

        // A harness failure beside an OVN one: OVN's failure decides.
        let mut r = one_failure_of(FailureClass::Harness);
        let m = r.stages[0].measurements.get_mut("ping_gateway").unwrap();
        m.samples[0].error = Some("no reply".into());
        m.samples[0].class = Some(FailureClass::System);
        m.samples[1].error = Some("skipped: bind_port failed".into());
        m.samples[1].class = Some(FailureClass::Skipped);
        m.stats = crate::metrics::Stats::of(&m.samples);
        r.summary = crate::report::json::summarize(&r.stages, &["create_port"]);
        let v = judge(&r, Some(4));
        assert_eq!(v.blame, Some(FailureClass::System));
        assert!(v.headline.contains("1 system: OVN, 1 harness"), "{}", v.headline);
        assert!(v.headline.contains("1 samples skipped"), "{}", v.headline);

        // Missing ports with no failed sample to explain them are OVN's.
        let mut r = example(1.0);
        r.summary.failures = 0;
        r.summary.failures_by_class = Default::default();
        assert_eq!(judge(&r, Some(4)).blame, Some(FailureClass::System));
        r.summary.ports_up = 4;
        assert_eq!(judge(&r, Some(4)).blame, None);
    }

    #[test]
    fn expected_ports_come_from_either_workload() {
        let os = serde_json::json!({"workload": {"openstack_base": {"n_hypervisors": 3, "n_vms_per_hypervisor": 5}}});
        assert_eq!(expected_ports(&os), Some(15));
        let bo = serde_json::json!({"workload": {"base_openstack": {"n_projects": 2, "n_vms_per_project": 4}}});
        assert_eq!(expected_ports(&bo), Some(8));
        assert_eq!(expected_ports(&serde_json::json!({"n_hypervisors": 2})), None);
    }
}
