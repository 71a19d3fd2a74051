//! Running a workload: the shared context of a run's stages (CMS, hypervisors, NB watch,
//! recorder, load shaping) and what happens at the end of every stage (settle `hv_cfg`,
//! northd counters, DB sizes). The OpenStack tests' stages are in [`openstack`]; [`runner`]
//! drives a whole run (lab, monitors, sampler, stages, results files, teardown).
//!
//! Must not know: YAML, clap, how the lab was started, report formats (except [`runner`],
//! which starts the lab and writes the results files).

pub mod attached;
pub mod chaos;
pub mod dead_daemons;
pub mod ext_cmd;
pub mod fault;
pub mod hosts;
pub mod kubernetes;
pub mod lab;
pub mod nb_watch;
pub mod openstack;
pub mod openstack_cli;
pub mod runner;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ovsdb::{Client, Transaction};

use crate::metrics::daemons;
use crate::metrics::{Recorder, StageId};
use crate::report::json::{names, DbFigures, DbSize, ServerDatabase, StageExtras};

/// Caps how many CMS actions start per second, over all workers.
pub struct Limiter {
    interval: Option<Duration>,
    next: tokio::sync::Mutex<tokio::time::Instant>,
}

impl Limiter {
    pub fn new(ops_per_second: Option<f64>) -> Self {
        Limiter {
            interval: ops_per_second.map(|r| Duration::from_secs_f64(1.0 / r)),
            next: tokio::sync::Mutex::new(tokio::time::Instant::now()),
        }
    }
    /// Waits for the next slot (immediately when there is no cap).
    pub async fn acquire(&self) {
        if let Some(slot) = self.reserve().await {
            tokio::time::sleep_until(slot).await;
        }
    }

    /// Takes the next start slot: never earlier than now, one interval after the previous one.
    async fn reserve(&self) -> Option<tokio::time::Instant> {
        let interval = self.interval?;
        let mut next = self.next.lock().await;
        let slot = (*next).max(tokio::time::Instant::now());
        *next = slot + interval;
        Some(slot)
    }
}

/// Where the end-of-stage figures come from.
#[derive(Clone, Default)]
pub struct Probes {
    /// northd's counters and the daemons' figures (with a lab).
    pub daemons: Option<daemons::StageProbes>,
    pub nb_file: Option<PathBuf>,
    pub sb_file: Option<PathBuf>,
}

/// Row counts of every table of `database`, in one transaction.
pub async fn row_counts(client: &Client, database: &str) -> anyhow::Result<BTreeMap<String, u64>> {
    let schema = client.get_schema(database).await?;
    let tables: Vec<String> = schema.tables.keys().cloned().collect();
    let mut txn = Transaction::new(database);
    for t in &tables {
        txn.select(t.clone(), vec![], Some(vec!["_uuid".into()]));
    }
    let result = client.transact(txn).await?;
    Ok(tables
        .into_iter()
        .zip(result.results)
        .map(|(t, r)| (t, r.rows.map(|rows| rows.len() as u64).unwrap_or(0)))
        .collect())
}

/// The server's `_Server.Database` row for `database`, over `client`'s connection (RFC 7047
/// servers without `_Server` — OVS before 2.9 — answer an error).
pub async fn server_database(client: &Client, database: &str) -> anyhow::Result<ServerDatabase> {
    let mut txn = Transaction::new("_Server");
    txn.select("Database", vec![ovsdb::Condition::eq("name", database)], None);
    let result = client.transact(txn).await?;
    let row = result
        .results
        .into_iter()
        .next()
        .and_then(|r| r.rows)
        .and_then(|rows| rows.into_iter().next())
        .ok_or_else(|| anyhow::anyhow!("the server's _Server has no row for {database}"))?;
    let text = |c: &str| row.get(c).and_then(ovsdb::Value::as_str).map(str::to_owned);
    let flag = |c: &str| row.get(c).and_then(ovsdb::Value::as_bool).unwrap_or(false);
    let uuid = |c: &str| row.get(c).and_then(ovsdb::Value::as_uuid).map(|u| u.to_string());
    let schema_version = row
        .get("schema")
        .and_then(ovsdb::Value::as_str)
        .and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok())
        .and_then(|j| j["version"].as_str().map(str::to_owned));
    Ok(ServerDatabase {
        name: database.to_owned(),
        model: text("model").unwrap_or_default(),
        connected: flag("connected"),
        leader: flag("leader"),
        schema_version,
        cid: uuid("cid"),
        sid: uuid("sid"),
        index: row.get("index").and_then(ovsdb::Value::as_i64),
    })
}

/// Everything a stage needs.
pub struct Run<C, H> {
    pub cms: Arc<C>,
    pub hosts: Arc<H>,
    pub rec: Recorder,
    pub nb_watch: Arc<nb_watch::NbWatch>,
    pub gateways: Arc<nb_watch::GatewayWatch>,
    pub nb: Client,
    pub sb: Client,
    pub limiter: Arc<Limiter>,
    pub concurrency: usize,
    /// Port-up and ping timeout (`cluster.node_timeout_s`).
    pub timeout: Duration,
    pub probes: Probes,
    pub extras: Arc<Mutex<BTreeMap<String, StageExtras>>>,
    /// Upstream's `ext_cmd` entries.
    pub ext: Arc<ext_cmd::ExtCmds>,
    /// Timeline lines for `logs/events.log`.
    pub events: Arc<Mutex<Vec<String>>>,
    /// The lab's daemons that died without a chaos kill (`None` without the lab).
    pub dead_daemons: Option<Arc<dead_daemons::Daemons>>,
}

impl<C: crate::cms::Cms, H> Run<C, H> {
    pub fn event(&self, line: impl Into<String>) {
        let line = format!("{:9.3}s {}", self.rec.clock().now(), line.into());
        tracing::info!("{line}");
        self.events.lock().unwrap_or_else(|p| p.into_inner()).push(line);
    }

    /// The lab daemons (of `chassis`, or all) dead without a chaos kill; each is named on
    /// stderr and recorded once (see [`daemons`]).
    pub fn dead_daemons(&self, stage: StageId, chassis: Option<&str>) -> Vec<String> {
        match &self.dead_daemons {
            Some(d) => d.dead(&self.rec, stage, chassis),
            None => Vec::new(),
        }
    }

    /// Ends a stage: `hv_cfg` settle (recorded), northd counters and DB sizes (kept as extras).
    pub async fn end_stage(&self, stage: StageId, name: &str) {
        for note in self.cms.take_unknown_outcomes() {
            self.event(format!("CMS transaction checked in the NB after a chaos kill: {note}"));
        }
        let start = Instant::now();
        match self.nb_watch.settle(&self.nb, self.timeout).await {
            Ok((sb, hv)) => {
                self.rec.record(stage, "sb_cfg_settle", name, start, start + sb, None);
                self.rec.record(stage, names::HV_SETTLE, name, start, start + hv, None);
            }
            Err(e) => {
                // A chassis whose daemon died cannot acknowledge: the settle is skipped, the
                // death (recorded once) is the failure.
                let dead = self.dead_daemons(stage, None);
                if dead.is_empty() {
                    self.rec.record(
                        stage,
                        names::HV_SETTLE,
                        name,
                        start,
                        Instant::now(),
                        Some(format!("{e:#}")),
                    )
                } else {
                    let why = format!("{} not running", dead.join(", "));
                    self.rec.skipped(stage, names::HV_SETTLE, name, Instant::now(), &why)
                }
            }
        }
        self.dead_daemons(stage, None);
        self.rec.end_stage(stage);
        // The lab's daemons as they are now: a restarted ovn-controller has a new control
        // socket (it is named after its pid).
        let current = self
            .dead_daemons
            .as_ref()
            .and_then(|d| crate::workload::lab::stage_probes(d.lab()));
        let (northd, daemons) = match current.as_ref().or(self.probes.daemons.as_ref()) {
            Some(p) => p.capture().await,
            None => (None, BTreeMap::new()),
        };
        let size = |f: &Option<PathBuf>| f.as_ref().and_then(|p| std::fs::metadata(p).ok()).map(|m| m.len());
        let nb_rows = row_counts(&self.nb, "OVN_Northbound").await.unwrap_or_default();
        let sb_rows = row_counts(&self.sb, "OVN_Southbound").await.unwrap_or_default();
        let db = DbFigures {
            nb: DbSize {
                file_bytes: size(&self.probes.nb_file),
                rows: nb_rows,
                server: server_database(&self.nb, "OVN_Northbound").await.ok(),
            },
            sb: DbSize {
                file_bytes: size(&self.probes.sb_file),
                rows: sb_rows,
                server: server_database(&self.sb, "OVN_Southbound").await.ok(),
            },
        };
        self.extras.lock().unwrap_or_else(|p| p.into_inner()).insert(
            name.to_owned(),
            StageExtras {
                northd,
                db: Some(db),
                daemons,
            },
        );
        self.event(format!("stage {name} done"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn limiter_spaces_slots_by_the_interval() {
        let l = Limiter::new(Some(10.0));
        let mut slots = Vec::new();
        for _ in 0..5 {
            slots.push(l.reserve().await.expect("capped"));
        }
        for w in slots.windows(2) {
            assert!(w[1] - w[0] >= Duration::from_millis(100), "{:?}", w[1] - w[0]);
        }
        assert!(Limiter::new(None).reserve().await.is_none());
    }
}
