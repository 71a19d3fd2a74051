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
use tokio::sync::oneshot;

const NB: &str = "OVN_Northbound";
const LSP: &str = "Logical_Switch_Port";
const NB_GLOBAL: &str = "NB_Global";

/// When each port turned up, and who waits for a port still down.
#[derive(Default)]
struct Ups {
    at: HashMap<String, Instant>,
    /// One waiter per `wait_up` of a port not yet up: woken by that port alone, so a port
    /// coming up wakes its own VM and not every VM waiting (64 at a time at 1,000 VMs, and
    /// every NB update used to wake them all).
    waiters: HashMap<String, Vec<oneshot::Sender<Instant>>>,
}

impl Ups {
    /// Stamps `name` up at `at` (the first stamp stays) and wakes its waiters.
    fn stamp(&mut self, name: String, at: Instant) {
        let at = *self.at.entry(name.clone()).or_insert(at);
        for waiter in self.waiters.remove(&name).unwrap_or_default() {
            let _ = waiter.send(at);
        }
    }
}

type SharedUps = Arc<Mutex<Ups>>;

pub struct NbWatch {
    replica: Replica,
    ups: SharedUps,
    task: tokio::task::JoinHandle<()>,
}

/// `up` is `true` (an optional boolean: absent, `false` or `true`).
fn is_up(row: &ovsdb::Row) -> bool {
    row.get("up").and_then(Value::as_bool) == Some(true)
}

fn name_of(row: &ovsdb::Row) -> Option<String> {
    row.get("name").and_then(Value::as_str).map(str::to_owned)
}

fn lock(ups: &SharedUps) -> std::sync::MutexGuard<'_, Ups> {
    ups.lock().unwrap_or_else(|p| p.into_inner())
}

/// Stamps every port the replica has up that has no stamp yet, at `now`.
fn stamp_all_up(replica: &Replica, ups: &SharedUps, now: Instant) {
    let up = replica.find(LSP, is_up);
    let mut ups = lock(ups);
    for n in up.iter().filter_map(|(_, row)| name_of(row)) {
        ups.stamp(n, now);
    }
}

impl NbWatch {
    /// Monitors the `Logical_Switch_Port`s that are up (name, up) and `NB_Global` (nb_cfg,
    /// sb_cfg, hv_cfg). Only ports that are up: the server then sends one update per port, when
    /// it comes up, instead of another for its creation (at 1,000 VMs, 1,000 messages fewer
    /// to wake up for and decode).
    pub async fn start(client: &Client) -> anyhow::Result<NbWatch> {
        let request = MonitorRequest::new()
            .table(
                LSP,
                TableMonitor::all()
                    .columns(["name", "up"])
                    .conditions(vec![ovsdb::Condition::eq("up", true)]),
            )
            .table(NB_GLOBAL, TableMonitor::all().columns(["nb_cfg", "sb_cfg", "hv_cfg"]));
        let replica = client
            .monitor(NB, request)
            .await
            .context("cannot monitor the Northbound database")?;
        let mut events = replica.subscribe();
        let ups = SharedUps::default();
        // Ports already up before the workload (e.g. an existing OVN) count from now.
        stamp_all_up(&replica, &ups, Instant::now());
        let task = {
            let ups = ups.clone();
            let replica = replica.clone();
            tokio::spawn(async move {
                loop {
                    match events.recv().await {
                        Ok(RowEvent::Insert { table, new, at, .. }) | Ok(RowEvent::Modify { table, new, at, .. })
                            if table == LSP && is_up(&new) =>
                        {
                            if let Some(n) = name_of(&new) {
                                lock(&ups).stamp(n, at);
                            }
                        }
                        Ok(RowEvent::Resynced { .. }) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                            stamp_all_up(&replica, &ups, Instant::now());
                        }
                        Ok(_) => {}
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                    }
                }
            })
        };
        Ok(NbWatch { replica, ups, task })
    }

    /// When `lsp` turned up (waits for it, up to `timeout`).
    pub async fn wait_up(&self, lsp: &str, timeout: Duration) -> anyhow::Result<Instant> {
        let woken = {
            let mut ups = lock(&self.ups);
            if let Some(at) = ups.at.get(lsp) {
                return Ok(*at);
            }
            let (tx, rx) = oneshot::channel();
            ups.waiters.entry(lsp.to_owned()).or_default().push(tx);
            rx
        };
        match tokio::time::timeout(timeout, woken).await {
            Ok(Ok(at)) => Ok(at),
            _ => {
                // Forget this waiter (and any other whose caller gave up).
                let mut ups = lock(&self.ups);
                if let Some(waiters) = ups.waiters.get_mut(lsp) {
                    waiters.retain(|w| !w.is_closed());
                    if waiters.is_empty() {
                        ups.waiters.remove(lsp);
                    }
                }
                Err(anyhow!(
                    "timeout after {}s: Logical_Switch_Port {lsp} never had up=true (is a chassis claiming it?)",
                    timeout.as_secs()
                ))
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
        assert!(
            lock(&watch.ups).waiters.is_empty(),
            "a waiter that gave up is forgotten"
        );

        // Two waiters of one port, one of another: the port coming up wakes its own two with
        // the same instant; the other stays registered until its port comes up.
        let mut txn = Transaction::new(NB);
        for name in ["p2", "p3"] {
            let lsp = txn.insert(LSP, Row::new().with("name", name));
            txn.mutate(
                "Logical_Switch",
                vec![Condition::eq("name", "ls")],
                vec![Mutation::insert("ports", Value::set([lsp.atom().cloned().unwrap()]))],
            );
        }
        client.transact(txn).await.unwrap();
        let (a, b) = (
            watch.wait_up("p2", Duration::from_secs(10)),
            watch.wait_up("p2", Duration::from_secs(10)),
        );
        let other = tokio::spawn({
            let ups = watch.ups.clone();
            async move {
                // p3's waiter, registered as wait_up does, must outlive p2's wake-up.
                let (tx, rx) = oneshot::channel();
                lock(&ups).waiters.entry("p3".into()).or_default().push(tx);
                rx.await
            }
        });
        let flip = async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let mut txn = Transaction::new(NB);
            txn.update(LSP, vec![Condition::eq("name", "p2")], Row::new().with("up", true));
            client.transact(txn).await.unwrap();
        };
        let (a, b, ()) = tokio::join!(a, b, flip);
        assert_eq!(a.unwrap(), b.unwrap());
        assert!(!other.is_finished(), "p3's waiter was not woken by p2");
        let mut txn = Transaction::new(NB);
        txn.update(LSP, vec![Condition::eq("name", "p3")], Row::new().with("up", true));
        client.transact(txn).await.unwrap();
        assert!(other.await.unwrap().is_ok(), "p3's waiter woken by p3");
    }
}
