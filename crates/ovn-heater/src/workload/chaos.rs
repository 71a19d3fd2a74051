//! The scenario's `chaos:` entries: when a stage reaches an iteration (the same points as
//! `ext_cmd`), SIGKILL a daemon of the lab — the NB or SB RAFT leader, ovn-northd, or a real
//! chassis' `ovn-controller`/`ovs-vswitchd` — and time how long until the cluster served writes
//! again: a one-key write to `NB_Global` (the SB's `SB_Global` after an SB leader kill),
//! retried through the run's own leader-only client until it commits. Each entry is one
//! sample of the `chaos` measurement (subject: what was killed, with its pid); a cluster
//! that does not take a write within `node_timeout_s` is a failed sample.
//!
//! Killed daemons are not restarted: a RAFT cluster carries on with its other members; a
//! killed northd or chassis daemon shows as ports that never come up.
//!
//! Must not know: YAML, the CMS, reports.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ovsdb::{Client, Mutation, Transaction, Value};

use crate::metrics::{FailureClass, Recorder, StageId};
use crate::scenario::{ChaosAction, ChaosTarget};

/// How long one write attempt may take before it is abandoned and tried again.
const ATTEMPT_LIMIT: Duration = Duration::from_secs(2);

pub struct Chaos {
    actions: Vec<ChaosAction>,
    lab: Arc<ovn_lab::Lab>,
    nb: Client,
    sb: Client,
    /// How long the cluster has to serve writes again.
    recovery_limit: Duration,
    /// Told of each kill, so that the victim's death is not taken for a lab failure.
    daemons: Arc<crate::workload::dead_daemons::Daemons>,
}

impl Chaos {
    /// Checks the entries against the run: they need the lab (not `--nb/--sb`), leader kills
    /// need `clustered_db`, a daemon kill names a real chassis of this run.
    pub fn check(actions: &[ChaosAction], lab: bool, clustered: bool, chassis: &[String]) -> Result<(), String> {
        for a in actions {
            if !lab {
                return Err(format!(
                    "chaos kill {}: chaos needs the lab's daemons; it cannot run with --nb/--sb",
                    a.kill
                ));
            }
            match &a.kill {
                ChaosTarget::NbLeader | ChaosTarget::SbLeader if !clustered => {
                    return Err(format!(
                        "chaos kill {}: there is no leader without RAFT; set cluster.clustered_db: true",
                        a.kill
                    ))
                }
                ChaosTarget::Daemon { chassis: c, .. } if !chassis.contains(c) => {
                    return Err(format!(
                        "chaos kill {}: {c} is not a real chassis of this run ({})",
                        a.kill,
                        if chassis.is_empty() {
                            "none: cluster.chassis is emulated".to_owned()
                        } else {
                            chassis.join(", ")
                        }
                    ))
                }
                _ => {}
            }
        }
        Ok(())
    }

    pub fn new(
        actions: Vec<ChaosAction>,
        lab: Arc<ovn_lab::Lab>,
        nb: Client,
        sb: Client,
        recovery_limit: Duration,
        daemons: Arc<crate::workload::dead_daemons::Daemons>,
    ) -> Self {
        Chaos {
            actions,
            lab,
            nb,
            sb,
            recovery_limit,
            daemons,
        }
    }

    /// Runs the entries for `stage_name` at `iteration`.
    pub async fn at(&self, rec: &Recorder, stage: StageId, stage_name: &str, iteration: usize) {
        for (k, a) in self.actions.iter().enumerate() {
            if a.stage != stage_name || a.iteration != iteration {
                continue;
            }
            let start = Instant::now();
            // A cluster that does not take writes again is OVN's failure; a kill that could not
            // be done (no such daemon) the harness'.
            let (subject, class, error) = match self.kill(&a.kill).await {
                Ok(victim) => {
                    let subject = format!("{} ({victim}) at {stage_name}/{iteration}", a.kill);
                    (
                        subject,
                        FailureClass::System,
                        self.wait_for_writes(&a.kill, k).await.err(),
                    )
                }
                Err(e) => (
                    format!("{} at {stage_name}/{iteration}", a.kill),
                    FailureClass::Harness,
                    Some(e),
                ),
            };
            rec.record_as(stage, "chaos", subject, start, Instant::now(), class, error);
        }
    }

    /// SIGKILLs the target; returns what was killed (`name pid N`).
    async fn kill(&self, target: &ChaosTarget) -> Result<String, String> {
        let victim = match target {
            ChaosTarget::NbLeader => self.lab.nb_leader().await.map_err(|e| e.to_string())?,
            ChaosTarget::SbLeader => self.lab.sb_leader().await.map_err(|e| e.to_string())?,
            ChaosTarget::Northd => self
                .lab
                .processes()
                .into_iter()
                .find(|p| p.role == ovn_lab::ProcessRole::Northd)
                .ok_or("the lab has no ovn-northd")?,
            ChaosTarget::Daemon { .. } => {
                let name = target.to_string();
                self.lab
                    .processes()
                    .into_iter()
                    .find(|p| p.name == name)
                    .ok_or_else(|| format!("the lab has no process {name}"))?
            }
        };
        self.daemons.killed_by_chaos(victim.pid);
        self.lab.kill(&victim);
        Ok(format!("{} pid {}", victim.name, victim.pid))
    }

    /// Writes one key to `NB_Global` (`SB_Global` after an SB leader kill) until a write
    /// commits; the key names the entry, so a retried write that did commit changes nothing.
    async fn wait_for_writes(&self, target: &ChaosTarget, k: usize) -> Result<(), String> {
        let (client, db, table) = match target {
            ChaosTarget::SbLeader => (&self.sb, "OVN_Southbound", "SB_Global"),
            _ => (&self.nb, "OVN_Northbound", "NB_Global"),
        };
        let deadline = Instant::now() + self.recovery_limit;
        let mut last = String::from("no attempt");
        while Instant::now() < deadline {
            let mut txn = Transaction::new(db);
            txn.mutate(
                table,
                vec![],
                vec![Mutation::insert(
                    "external_ids",
                    Value::string_map([(format!("ovn-heater-chaos-{k}"), target.to_string())]),
                )],
            );
            match tokio::time::timeout(ATTEMPT_LIMIT, client.transact(txn)).await {
                Ok(Ok(_)) => return Ok(()),
                Ok(Err(e)) => last = e.to_string(),
                Err(_) => last = format!("no reply within {ATTEMPT_LIMIT:?}"),
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Err(format!(
            "{db} took no write within {:?} of the kill (last: {last})",
            self.recovery_limit
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action(kill: ChaosTarget) -> ChaosAction {
        ChaosAction {
            stage: "vms".into(),
            iteration: 1,
            kill,
        }
    }

    #[test]
    fn entries_are_checked_against_the_run() {
        let chassis = vec!["compute-1".to_owned()];
        let leader = [action(ChaosTarget::NbLeader)];
        assert!(Chaos::check(&leader, true, true, &chassis).is_ok());
        let e = Chaos::check(&leader, true, false, &chassis).unwrap_err();
        assert!(e.contains("clustered_db: true"), "{e}");
        let e = Chaos::check(&[action(ChaosTarget::Northd)], false, true, &chassis).unwrap_err();
        assert!(e.contains("--nb/--sb"), "{e}");
        let daemon = |c: &str| {
            [action(ChaosTarget::Daemon {
                chassis: c.into(),
                daemon: "ovn-controller".into(),
            })]
        };
        assert!(Chaos::check(&daemon("compute-1"), true, false, &chassis).is_ok());
        let e = Chaos::check(&daemon("compute-9"), true, false, &chassis).unwrap_err();
        assert!(
            e.contains("compute-9 is not a real chassis of this run (compute-1)"),
            "{e}"
        );
        let e = Chaos::check(&daemon("compute-1"), true, false, &[]).unwrap_err();
        assert!(e.contains("emulated"), "{e}");
        assert!(Chaos::check(&[], false, false, &[]).is_ok());
    }
}
