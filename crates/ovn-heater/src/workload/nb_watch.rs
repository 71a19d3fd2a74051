//! The runner's own NB monitor: when each `Logical_Switch_Port` first turned `up` (what
//! Neutron waits for), taken from the monitor's update notifications, never by polling; and
//! `nb_cfg` → `sb_cfg`/`hv_cfg` settling (`ovn-nbctl --wait=hv` semantics).
//!
//! The subscription starts before the workload creates any port, so no transition is missed;
//! should the subscriber lag, the replica is scanned and late ports are stamped on discovery.
//!
//! Must not know: the CMS, chassis, reports.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _};
#[cfg(test)]
use ovsdb::ClientOptions;
use ovsdb::{Client, MonitorRequest, Mutation, Mutator, Replica, RowEvent, TableMonitor, Transaction, Value};
use tokio::sync::Notify;

const NB: &str = "OVN_Northbound";
const LSP: &str = "Logical_Switch_Port";
const NB_GLOBAL: &str = "NB_Global";

type UpTimes = Arc<Mutex<HashMap<String, Instant>>>;

pub struct NbWatch {
    replica: Replica,
    ups: UpTimes,
    changed: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

/// `up` is `true` (an optional boolean: absent, `false` or `true`).
fn is_up(row: &ovsdb::Row) -> bool {
    row.get("up").and_then(Value::as_bool) == Some(true)
}

fn name_of(row: &ovsdb::Row) -> Option<String> {
    row.get("name").and_then(Value::as_str).map(str::to_owned)
}

fn lock(ups: &UpTimes) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
    ups.lock().unwrap_or_else(|p| p.into_inner())
}

impl NbWatch {
    /// Monitors `Logical_Switch_Port` (name, up) and `NB_Global` (nb_cfg, sb_cfg, hv_cfg).
    pub async fn start(client: &Client) -> anyhow::Result<NbWatch> {
        let request = MonitorRequest::new()
            .table(LSP, TableMonitor::all().columns(["name", "up"]))
            .table(NB_GLOBAL, TableMonitor::all().columns(["nb_cfg", "sb_cfg", "hv_cfg"]));
        let replica = client
            .monitor(NB, request)
            .await
            .context("cannot monitor the Northbound database")?;
        let mut events = replica.subscribe();
        let ups: UpTimes = Arc::new(Mutex::new(HashMap::new()));
        let changed = Arc::new(Notify::new());
        // Ports already up before the workload (e.g. an existing OVN) count from now.
        let now = Instant::now();
        for (_, row) in replica.find(LSP, is_up) {
            if let Some(n) = name_of(&row) {
                lock(&ups).insert(n, now);
            }
        }
        let task = {
            let ups = ups.clone();
            let changed = changed.clone();
            let replica = replica.clone();
            tokio::spawn(async move {
                loop {
                    match events.recv().await {
                        Ok(RowEvent::Insert { table, new, at, .. }) | Ok(RowEvent::Modify { table, new, at, .. })
                            if table == LSP && is_up(&new) =>
                        {
                            if let Some(n) = name_of(&new) {
                                lock(&ups).entry(n).or_insert(at);
                            }
                            changed.notify_waiters();
                        }
                        Ok(RowEvent::Resynced { .. }) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                            let now = Instant::now();
                            for (_, row) in replica.find(LSP, is_up) {
                                if let Some(n) = name_of(&row) {
                                    lock(&ups).entry(n).or_insert(now);
                                }
                            }
                            changed.notify_waiters();
                        }
                        Ok(_) => changed.notify_waiters(),
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                    }
                }
            })
        };
        Ok(NbWatch {
            replica,
            ups,
            changed,
            task,
        })
    }

    /// When `lsp` turned up (waits for it, up to `timeout`).
    pub async fn wait_up(&self, lsp: &str, timeout: Duration) -> anyhow::Result<Instant> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(at) = lock(&self.ups).get(lsp) {
                return Ok(*at);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Err(anyhow!(
                    "timeout after {}s: Logical_Switch_Port {lsp} never had up=true (is a chassis claiming it?)",
                    timeout.as_secs()
                ));
            }
        }
    }

    /// Bumps `NB_Global.nb_cfg` and waits for `sb_cfg` (northd wrote the SB) and `hv_cfg`
    /// (every chassis caught up); returns both durations from the bump's start.
    pub async fn settle(&self, client: &Client, timeout: Duration) -> anyhow::Result<(Duration, Duration)> {
        let started = Instant::now();
        let mut txn = Transaction::new(NB);
        txn.mutate(NB_GLOBAL, vec![], vec![Mutation::new("nb_cfg", Mutator::Add, 1i64)]);
        txn.select(NB_GLOBAL, vec![], Some(vec!["nb_cfg".into()]));
        let result = client.transact(txn).await.context("cannot bump NB_Global.nb_cfg")?;
        let target = result
            .results
            .get(1)
            .and_then(|r| r.rows.as_ref())
            .and_then(|rows| rows.first())
            .and_then(|row| row.get("nb_cfg"))
            .and_then(Value::as_i64)
            .ok_or_else(|| anyhow!("NB_Global has no row (is ovn-northd running?)"))?;
        let reached = |column: &'static str| {
            move |row: &ovsdb::Row| row.get(column).and_then(Value::as_i64).is_some_and(|v| v >= target)
        };
        let (sb, hv) = tokio::join!(
            self.replica.wait_for(NB_GLOBAL, reached("sb_cfg"), timeout),
            self.replica.wait_for(NB_GLOBAL, reached("hv_cfg"), timeout)
        );
        let sb_at = sb.map_err(|e| anyhow!("sb_cfg did not reach nb_cfg {target}: {e}"))?.2;
        let hv_at = hv.map_err(|e| anyhow!("hv_cfg did not reach nb_cfg {target}: {e}"))?.2;
        Ok((
            sb_at.saturating_duration_since(started),
            hv_at.saturating_duration_since(started),
        ))
    }
}

impl Drop for NbWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The runner's SB monitor of gateway ports: when a router's `chassisredirect` port
/// (`cr-<gateway LRP>`) is claimed and by which chassis, as Neutron learns it.
pub struct GatewayWatch {
    replica: Replica,
}

impl GatewayWatch {
    /// Monitors `chassisredirect` Port_Bindings (logical_port, chassis) and Chassis (name, hostname).
    pub async fn start(client: &Client) -> anyhow::Result<GatewayWatch> {
        let request = MonitorRequest::new()
            .table(
                "Port_Binding",
                TableMonitor::all()
                    .columns(["logical_port", "chassis", "type"])
                    .conditions(vec![ovsdb::Condition::eq("type", "chassisredirect")]),
            )
            .table("Chassis", TableMonitor::all().columns(["name", "hostname"]));
        let replica = client
            .monitor("OVN_Southbound", request)
            .await
            .context("cannot monitor the Southbound database")?;
        Ok(GatewayWatch { replica })
    }

    /// When `cr-<lrp>` got a chassis, and that chassis' hostname.
    pub async fn wait_bound(&self, lrp: &str, timeout: Duration) -> anyhow::Result<(Instant, String)> {
        let port = format!("cr-{lrp}");
        let wanted = port.clone();
        let (_, row, at) = self
            .replica
            .wait_for(
                "Port_Binding",
                move |r| {
                    r.get("logical_port").and_then(Value::as_str) == Some(wanted.as_str())
                        && r.get("chassis").is_some_and(|c| !c.is_empty())
                },
                timeout,
            )
            .await
            .map_err(|e| anyhow!("gateway port {port} was not claimed by any chassis: {e}"))?;
        let chassis = row.get("chassis").and_then(Value::as_uuid);
        let host = chassis
            .and_then(|u| self.replica.get("Chassis", u))
            .and_then(|c| {
                c.get("hostname")
                    .and_then(Value::as_str)
                    .filter(|h| !h.is_empty())
                    .or_else(|| c.get("name").and_then(Value::as_str))
                    .map(str::to_owned)
            })
            .ok_or_else(|| anyhow!("gateway port {port} is bound to an unknown chassis"))?;
        Ok((at, host))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ovsdb::{Condition, Row};
    use test_support::server::OvsdbServer;

    #[tokio::test]
    async fn port_up_comes_from_monitor_events() {
        test_support::require_ovn!("nb_watch_port_up", ["ovsdb-server", "ovsdb-tool"]);
        let server = OvsdbServer::standalone("nb_watch_port_up", "/usr/share/ovn/ovn-nb.ovsschema");
        let client = Client::connect(ClientOptions::new(&server.remote()).unwrap())
            .await
            .unwrap();
        let mut txn = Transaction::new(NB);
        let lsp = txn.insert(LSP, Row::new().with("name", "p1"));
        txn.insert(
            "Logical_Switch",
            Row::new()
                .with("name", "ls")
                .with("ports", Value::set([lsp.atom().cloned().unwrap()])),
        );
        client.transact(txn).await.unwrap();
        let watch = NbWatch::start(&client).await.unwrap();
        let waiter = watch.wait_up("p1", Duration::from_secs(10));
        let flip = async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let mut txn = Transaction::new(NB);
            txn.update(LSP, vec![Condition::eq("name", "p1")], Row::new().with("up", true));
            client.transact(txn).await.unwrap();
            Instant::now()
        };
        let (up, flipped) = tokio::join!(waiter, flip);
        let up = up.expect("port seen up");
        assert!(up <= Instant::now());
        let _ = flipped;
        let err = watch.wait_up("nope", Duration::from_millis(100)).await.unwrap_err();
        assert!(err.to_string().contains("never had up=true"), "{err}");
    }
}
