//! The scenario's `chaos:` entries: when a stage reaches an iteration (the same points as
//! `ext_cmd`), SIGKILL a daemon of the lab — the NB or SB RAFT leader, ovn-northd, or a real
//! chassis' `ovn-controller`/`ovs-vswitchd` — and time how long until OVN served again. Each
//! entry is one sample of the `chaos` measurement (subject: what was killed, with its pid); a
//! cluster that does not serve again within `node_timeout_s` is a failed sample (`system`).
//!
//! Without `restart_after` the daemon stays dead: a leader kill is timed until a one-key write
//! to `NB_Global` (the SB's `SB_Global` after an SB leader kill), retried through the run's own
//! leader-only client, commits — the cluster carries on with its other members; a killed
//! northd or chassis daemon shows as ports that never come up.
//!
//! With `restart_after`, the lab starts the daemon again that long after the kill (same
//! command line, as systemd's `Restart=on-failure` would) while the workload carries on, and
//! the sample of a northd or chassis-daemon kill is timed from the kill until OVN processed
//! work again: a bump of `NB_Global.nb_cfg` reflected in `SB_Global.nb_cfg` (northd), or in
//! that chassis' `Chassis_Private.nb_cfg` (its ovn-controller programmed its flows). Those
//! samples are recorded when recovery is seen; [`Chaos::settle`] waits for them. A leader's
//! sample stays the write above; the member is restarted beside it.
//!
//! Must not know: YAML, the CMS, reports.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ovsdb::{Client, Condition, Mutation, Mutator, Transaction, Value};

use crate::metrics::{FailureClass, Recorder, StageId};
use crate::scenario::{ChaosAction, ChaosTarget};

/// How long one write attempt may take before it is abandoned and tried again.
const ATTEMPT_LIMIT: Duration = Duration::from_secs(2);
/// How often the SB is read while waiting for a restarted daemon to catch up.
const RECOVERY_POLL: Duration = Duration::from_millis(50);

pub struct Chaos {
    shared: Arc<Shared>,
    /// Restarts (and their recovery samples) still running.
    pending: Mutex<tokio::task::JoinSet<()>>,
}

/// What a restart task needs of the run.
struct Shared {
    actions: Vec<ChaosAction>,
    lab: Arc<ovn_lab::Lab>,
    nb: Client,
    sb: Client,
    /// How long OVN has to serve again.
    recovery_limit: Duration,
    /// Told of each kill, so that the victim's death is not taken for a lab failure.
    daemons: Arc<crate::workload::dead_daemons::Daemons>,
}

impl Chaos {
    /// Checks the entries against the run: they need the lab (not `--nb/--sb`), leader kills
    /// need `clustered_db`, a daemon kill names a real chassis of this run, and
    /// `ovs-vswitchd` is not restarted (its VM ports would not survive it).
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
                ChaosTarget::Daemon { daemon, .. } if daemon == "ovs-vswitchd" && a.restart_after.is_some() => {
                    return Err(format!(
                        "chaos kill {}: restart_after is not supported for ovs-vswitchd: a restarted one does not find the VM ports (internal ports moved into the VMs' namespaces) and creates new ones in the chassis' namespace, so the VMs on that chassis lose their ports; drop restart_after, or kill ovn-controller",
                        a.kill
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
            shared: Arc::new(Shared {
                actions,
                lab,
                nb,
                sb,
                recovery_limit,
                daemons,
            }),
            pending: Mutex::new(tokio::task::JoinSet::new()),
        }
    }

    /// Runs the entries for `stage_name` at `iteration`. A leader kill without a restart
    /// returns once the cluster took a write; an entry with `restart_after` returns after the
    /// kill, its restart and sample follow in the background.
    pub async fn at(&self, rec: &Recorder, stage: StageId, stage_name: &str, iteration: usize) {
        let shared = &self.shared;
        for (k, a) in shared.actions.iter().enumerate() {
            if a.stage != stage_name || a.iteration != iteration {
                continue;
            }
            let start = Instant::now();
            let victim = match shared.kill(&a.kill).await {
                Ok(victim) => victim,
                // A kill that could not be done (no such daemon) is the harness' failure.
                Err(e) => {
                    let subject = format!("{} at {stage_name}/{iteration}", a.kill);
                    rec.record_as(
                        stage,
                        "chaos",
                        subject,
                        start,
                        Instant::now(),
                        FailureClass::Harness,
                        Some(e),
                    );
                    continue;
                }
            };
            let subject = format!(
                "{} ({} pid {}) at {stage_name}/{iteration}",
                a.kill, victim.name, victim.pid
            );
            let leader = matches!(a.kill, ChaosTarget::NbLeader | ChaosTarget::SbLeader);
            if leader || a.restart_after.is_none() {
                // A cluster that does not take writes again is OVN's failure.
                let error = shared.wait_for_writes(&a.kill, k).await.err();
                rec.record_as(
                    stage,
                    "chaos",
                    subject.clone(),
                    start,
                    Instant::now(),
                    FailureClass::System,
                    error,
                );
            }
            let Some(after) = a.restart_after else { continue };
            let (shared, rec, target) = (shared.clone(), rec.clone(), a.kill.clone());
            self.pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .spawn(async move {
                    tokio::time::sleep_until((start + after).into()).await;
                    let restarted = shared.lab.restart(&victim.name).await;
                    match restarted {
                        // The restarted member of a leader kill has no sample of its own.
                        Ok(_) if leader => {}
                        Ok(_) => {
                            let error = shared.wait_for_recovery(&target, start).await.err();
                            rec.record_as(
                                stage,
                                "chaos",
                                subject,
                                start,
                                Instant::now(),
                                FailureClass::System,
                                error,
                            );
                        }
                        Err(e) => {
                            let why = format!("cannot restart {}: {e}", victim.name);
                            let subject = if leader {
                                format!("restart of {subject}")
                            } else {
                                subject
                            };
                            rec.record_as(
                                stage,
                                "chaos",
                                subject,
                                start,
                                Instant::now(),
                                FailureClass::Harness,
                                Some(why),
                            );
                        }
                    }
                });
        }
    }

    /// Waits for the restarts under way and their samples (each bounded by its
    /// `restart_after` and `node_timeout_s`).
    pub async fn settle(&self) {
        let mut pending = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()));
        while pending.join_next().await.is_some() {}
    }
}

impl Shared {
    /// SIGKILLs the target; returns what was killed.
    async fn kill(&self, target: &ChaosTarget) -> Result<ovn_lab::ProcessInfo, String> {
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
        Ok(victim)
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

    /// After a restarted northd or chassis daemon: bumps `NB_Global.nb_cfg` and waits until
    /// `SB_Global.nb_cfg` (northd) or the chassis' `Chassis_Private.nb_cfg` reaches it, within
    /// `node_timeout_s` of the kill at `killed`.
    async fn wait_for_recovery(&self, target: &ChaosTarget, killed: Instant) -> Result<(), String> {
        let deadline = killed + self.recovery_limit;
        let late = |what: &str| format!("{what} within {:?} of the kill", self.recovery_limit);
        let target_cfg = loop {
            let mut txn = Transaction::new("OVN_Northbound");
            txn.mutate("NB_Global", vec![], vec![Mutation::new("nb_cfg", Mutator::Add, 1i64)]);
            txn.select("NB_Global", vec![], Some(vec!["nb_cfg".into()]));
            let attempt = tokio::time::timeout(ATTEMPT_LIMIT, self.nb.transact(txn)).await;
            if let Ok(Ok(r)) = attempt {
                break first_i64(&r, 1, "nb_cfg").ok_or("NB_Global has no row")?;
            }
            if Instant::now() >= deadline {
                return Err(late("the NB took no bump of NB_Global.nb_cfg"));
            }
            tokio::time::sleep(RECOVERY_POLL).await;
        };
        let (table, conditions, what) = match target {
            ChaosTarget::Daemon { chassis, .. } => (
                "Chassis_Private",
                vec![Condition::eq("name", chassis.as_str())],
                format!("{chassis}'s Chassis_Private.nb_cfg"),
            ),
            _ => ("SB_Global", vec![], "SB_Global.nb_cfg".to_owned()),
        };
        let mut seen = None;
        loop {
            let mut txn = Transaction::new("OVN_Southbound");
            txn.select(table, conditions.clone(), Some(vec!["nb_cfg".into()]));
            if let Ok(Ok(r)) = tokio::time::timeout(ATTEMPT_LIMIT, self.sb.transact(txn)).await {
                seen = first_i64(&r, 0, "nb_cfg");
                if seen.is_some_and(|v| v >= target_cfg) {
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                return Err(late(&format!(
                    "{what} did not reach nb_cfg {target_cfg} (last seen: {})",
                    seen.map_or_else(|| "none".to_owned(), |v| v.to_string())
                )));
            }
            tokio::time::sleep(RECOVERY_POLL).await;
        }
    }
}

/// Column `column` of the first row that operation `op` of a reply selected.
fn first_i64(reply: &ovsdb::TransactionResult, op: usize, column: &str) -> Option<i64> {
    reply.results.get(op)?.rows.as_ref()?.first()?.get(column)?.as_i64()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action(kill: ChaosTarget) -> ChaosAction {
        ChaosAction {
            stage: "vms".into(),
            iteration: 1,
            kill,
            restart_after: None,
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
