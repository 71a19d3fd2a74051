//! One emulated chassis: its own Southbound connection and what ovn-controller 23.03 does on it.
//!
//! A chassis is a tokio task driven by a [`EmulatedChassis`] handle. The task connects (and the
//! `ovsdb` client reconnects and resumes on its own), monitors the SB like ovn-controller (one
//! `monitor_cond_since`, into a replica whose filter keeps only this chassis's rows), registers its
//! `Encap`/`Chassis`/`Chassis_Private`, then reacts to every batch of updates by reconciling:
//! it claims the ports bound to it (chassis first, `up` in a second transaction, as a real
//! controller does once flows are installed), claims gateway ports it is the active gateway
//! for, moves its monitor conditions with its local datapaths, and copies `SB_Global.nb_cfg`
//! into its `Chassis_Private`. Reconciling from the current state, rather than replaying
//! events, makes lost events, reconnects and failed transactions harmless: the next round
//! sees what is still to do.
//!
//! Must not know: processes, network namespaces, OVS, the workload that binds ports.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ovsdb::{
    Client, ClientOptions, Condition, ConnectionEvent, MonitorMethod, Replica, Row, RowFilter, Transaction, Uuid, Value,
};
use tokio::sync::{broadcast, mpsc, oneshot, Notify};
use tokio::task::JoinHandle;

use crate::error::{Error, Result};
use crate::keep::ChassisFilter;
use crate::sb::{
    LocalView, MonitorPlan, CHASSIS, CHASSIS_PRIVATE, ENCAP, HA_CHASSIS, HA_CHASSIS_GROUP, PORT_BINDING, SB_DB,
    SB_GLOBAL,
};
use crate::spec::ChassisSpec;

/// How long to wait before reconciling again after a failed transaction.
const RETRY_AFTER: Duration = Duration::from_millis(500);
const RECONNECT_BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Reconcile at least this often. Every change of a kept row wakes the chassis (deletions
/// through `RowFilter::forgets`, rows a diff makes worth keeping through a fetch); this is a
/// safety net, and each tick costs a thousand-chassis farm a thousand reconciles (at 5 s they
/// were 45 % of a 1,000-chassis farm's reconciles while binding).
const RESYNC_INTERVAL: Duration = Duration::from_secs(30);
/// Check the chassis's own rows at least this often even when no change of them arrived (a
/// deleted row is not seen otherwise).
const REGISTRATION_RECHECK: Duration = Duration::from_secs(30);
/// How long [`EmulatedChassis::stop`] waits for the chassis to remove its rows.
const STOP_TIMEOUT: Duration = Duration::from_secs(90);

/// How a chassis connects. The defaults suit one chassis; a farm shares one [`MonitorPlan`].
#[derive(Clone, Debug)]
pub struct ConnectPolicy {
    /// The monitor request to use; `None` fetches the server's schema first (as ovn-controller
    /// does) and trims 23.03's request to it.
    pub plan: Option<Arc<MonitorPlan>>,
    /// Wait this long before the first connection attempt (a farm staggers its chassis).
    pub start_delay: Duration,
    /// ovn-controller's `ovn-remote-probe-interval` (5 s by default).
    pub inactivity_probe: Option<Duration>,
    /// This chassis's own key and certificate for `ssl:` remotes (under SB RBAC its CN must be
    /// the chassis name, as for ovn-controller).
    pub tls: Option<ovsdb::TlsConfig>,
    /// Decode each SB update once with the other chassis sharing this cache (a farm's chassis
    /// with the same monitor request receive byte-identical updates).
    pub update_cache: Option<Arc<ovsdb::UpdateCache>>,
}

impl Default for ConnectPolicy {
    fn default() -> Self {
        ConnectPolicy {
            plan: None,
            start_delay: Duration::ZERO,
            inactivity_probe: Some(Duration::from_secs(5)),
            tls: None,
            update_cache: None,
        }
    }
}

/// Where a chassis stands, for status lines and waits.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChassisStatus {
    pub connected: bool,
    /// The method the server accepted for the chassis's monitor (`monitor_cond_since`, as
    /// ovn-controller, against any ovsdb-server since OVS 2.12).
    pub monitor_method: Option<MonitorMethod>,
    /// Its `Chassis` row exists (and this is its UUID).
    pub chassis_uuid: Option<Uuid>,
    /// The last `nb_cfg` written to its `Chassis_Private`.
    pub nb_cfg_acked: Option<i64>,
    pub ports_bound: usize,
    pub ports_claimed: usize,
    pub ports_up: usize,
    /// Connections lost after the first one was made.
    pub reconnects: u64,
    /// Claims or updates refused by the server, or connection failures, so far.
    pub errors: u64,
    pub last_error: Option<String>,
    /// The task has ended.
    pub stopped: bool,
    /// Rows held in memory, per table (tables with none left out): what the filter and the
    /// monitor conditions let through.
    pub rows_held: BTreeMap<String, usize>,
}

/// One port's progress on this chassis. Instants are when the chassis saw its transaction commit.
#[derive(Clone, Debug, PartialEq)]
pub struct PortStatus {
    pub bound_at: Instant,
    /// `Port_Binding.chassis` now names this chassis.
    pub claimed_at: Option<Instant>,
    /// `Port_Binding.up` is true.
    pub up_at: Option<Instant>,
    /// Why the chassis does not claim it (another chassis is requested).
    pub refused: Option<String>,
}

impl PortStatus {
    fn new() -> Self {
        PortStatus {
            bound_at: Instant::now(),
            claimed_at: None,
            up_at: None,
            refused: None,
        }
    }
}

/// State shared between the handle and the task.
struct Shared {
    spec: ChassisSpec,
    state: Mutex<Published>,
    changed: Notify,
}

#[derive(Default)]
struct Published {
    status: ChassisStatus,
    ports: HashMap<String, PortStatus>,
}

impl Shared {
    fn publish(&self, f: impl FnOnce(&mut Published)) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut state);
        drop(state);
        self.changed.notify_waiters();
    }
    fn read<R>(&self, f: impl FnOnce(&Published) -> R) -> R {
        f(&self.state.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

enum Command {
    Bind(String),
    Unbind(String),
    Stop {
        cleanup: bool,
        done: oneshot::Sender<Result<()>>,
    },
}

/// A handle on one running emulated chassis. Cheap to clone; the chassis stops (without
/// removing its rows, like a killed ovn-controller) when the last handle is dropped.
#[derive(Clone)]
pub struct EmulatedChassis {
    shared: Arc<Shared>,
    commands: mpsc::UnboundedSender<Command>,
    task: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl std::fmt::Debug for EmulatedChassis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmulatedChassis")
            .field("name", &self.shared.spec.name)
            .finish()
    }
}

impl EmulatedChassis {
    /// Starts a chassis against `sb_remotes` (e.g. `unix:/run/ovn/ovnsb_db.sock` or a list of
    /// relays). Returns at once; see [`EmulatedChassis::wait_registered`].
    pub fn start(sb_remotes: &str, spec: ChassisSpec, policy: ConnectPolicy) -> Result<EmulatedChassis> {
        spec.validate()?;
        let mut options = ClientOptions::new(sb_remotes)
            .map_err(|source| Error::Ovsdb {
                chassis: spec.name.clone(),
                source: Box::new(source),
            })?
            .inactivity_probe(policy.inactivity_probe)
            // Our few operations are fixed; checking them would cost every chassis a parsed schema.
            .check_schema(false);
        if let Some(tls) = &policy.tls {
            options = options.tls(tls.clone());
        }
        if let Some(cache) = &policy.update_cache {
            options = options.update_cache(cache.clone());
        }
        let shared = Arc::new(Shared {
            spec: spec.clone(),
            state: Mutex::new(Published::default()),
            changed: Notify::new(),
        });
        let (commands, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(shared.clone(), options, policy, rx));
        Ok(EmulatedChassis {
            shared,
            commands,
            task: Arc::new(Mutex::new(Some(task))),
        })
    }

    pub fn spec(&self) -> &ChassisSpec {
        &self.shared.spec
    }
    pub fn name(&self) -> &str {
        &self.shared.spec.name
    }
    pub fn status(&self) -> ChassisStatus {
        self.shared.read(|s| s.status.clone())
    }
    /// A port's progress, if it is bound here.
    pub fn port(&self, logical_port: &str) -> Option<PortStatus> {
        self.shared.read(|s| s.ports.get(logical_port).cloned())
    }

    /// Plugs a VIF for `logical_port` (what `external_ids:iface-id` does on a real chassis).
    /// The chassis claims the port as soon as its `Port_Binding` exists and its
    /// `requested-chassis`, if any, names this chassis.
    pub fn bind_port(&self, logical_port: &str) -> Result<()> {
        self.shared.publish(|s| {
            s.ports.entry(logical_port.to_owned()).or_insert_with(PortStatus::new);
        });
        self.send(Command::Bind(logical_port.to_owned()))
    }

    /// Unplugs the VIF: the chassis releases the port (`chassis` cleared, `up` false) if it holds it.
    pub fn unbind_port(&self, logical_port: &str) -> Result<()> {
        self.shared.publish(|s| {
            s.ports.remove(logical_port);
        });
        self.send(Command::Unbind(logical_port.to_owned()))
    }

    /// Waits until this chassis's `Chassis` row exists; returns its UUID.
    pub async fn wait_registered(&self, timeout: Duration) -> Result<Uuid> {
        self.wait_until(timeout, "registration", |s| s.status.chassis_uuid)
            .await
    }

    /// Waits until `logical_port` is claimed and up; returns its status (with the instants).
    pub async fn wait_port_up(&self, logical_port: &str, timeout: Duration) -> Result<PortStatus> {
        self.wait_until(timeout, &format!("port {logical_port} to be up"), |s| {
            s.ports.get(logical_port).filter(|p| p.up_at.is_some()).cloned()
        })
        .await
    }

    /// Waits until the chassis has written `nb_cfg >= at_least` to its `Chassis_Private`.
    pub async fn wait_nb_cfg(&self, at_least: i64, timeout: Duration) -> Result<i64> {
        self.wait_until(timeout, &format!("nb_cfg {at_least} to be acked"), |s| {
            s.status.nb_cfg_acked.filter(|n| *n >= at_least)
        })
        .await
    }

    /// Stops the chassis. With `cleanup`, first releases its ports and deletes its `Chassis`
    /// and `Chassis_Private` (its `Encap` goes with the `Chassis`), as `ovn-appctl exit` does;
    /// without, the rows stay, as after a crash.
    pub async fn stop(&self, cleanup: bool) -> Result<()> {
        let (done, result) = oneshot::channel();
        let mut outcome = Ok(());
        // Without cleanup there is nothing to wait for: the task ends where it stands, as a
        // killed ovn-controller would (even in the middle of a slow transaction).
        if cleanup && self.send(Command::Stop { cleanup, done }).is_ok() {
            // A chassis whose SB is unreachable would wait for it forever; give up on the
            // cleanup after a while and stop anyway.
            match tokio::time::timeout(STOP_TIMEOUT, result).await {
                Ok(Ok(r)) => outcome = r,
                Ok(Err(_)) => {}
                Err(_) => {
                    outcome = Err(Error::Timeout {
                        what: format!("emulated chassis {} to clean up its SB rows", self.name()),
                        after: STOP_TIMEOUT,
                    })
                }
            }
        }
        let task = self.task.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(task) = task {
            task.abort();
        }
        // An aborted task never gets to say so itself; waiters must not wait for it.
        self.shared.publish(|s| {
            s.status.stopped = true;
            s.status.connected = false;
        });
        outcome
    }

    fn send(&self, command: Command) -> Result<()> {
        self.commands.send(command).map_err(|_| Error::Stopped {
            chassis: self.shared.spec.name.clone(),
        })
    }

    async fn wait_until<T>(&self, timeout: Duration, what: &str, check: impl Fn(&Published) -> Option<T>) -> Result<T> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(value) = self.shared.read(&check) {
                return Ok(value);
            }
            if self.shared.read(|s| s.status.stopped) {
                return Err(Error::Stopped {
                    chassis: self.shared.spec.name.clone(),
                });
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                let last = self
                    .status()
                    .last_error
                    .map(|e| format!(" (last error: {e})"))
                    .unwrap_or_default();
                return Err(Error::Timeout {
                    what: format!("{what} on emulated chassis {}{last}", self.shared.spec.name),
                    after: timeout,
                });
            }
        }
    }
}

/// The task: connect (retrying), then serve until stopped. Commands received while
/// disconnected are remembered.
async fn run(
    shared: Arc<Shared>,
    options: ClientOptions,
    policy: ConnectPolicy,
    mut rx: mpsc::UnboundedReceiver<Command>,
) {
    let mut worker = Worker {
        shared: shared.clone(),
        filter: Arc::new(ChassisFilter::new(shared.spec.clone())),
        ports: BTreeMap::new(),
        chassis_uuid: None,
        nb_cfg_sent: None,
        sent_conditions: HashMap::new(),
        registration_checked: None,
    };
    tokio::time::sleep(policy.start_delay).await;
    let mut backoff = Duration::from_millis(200);
    loop {
        let session = connect(&shared.spec, worker.filter.clone(), options.clone(), &policy);
        tokio::pin!(session);
        let outcome = loop {
            tokio::select! {
                connected = &mut session => break Some(connected),
                command = rx.recv() => match command {
                    None => break None,
                    Some(Command::Stop { done, .. }) => {
                        // Nothing to clean up without a connection.
                        let _ = done.send(Ok(()));
                        break None;
                    }
                    Some(other) => worker.apply(other),
                },
            }
        };
        let Some(connected) = outcome else {
            break;
        };
        match connected {
            Ok(session) => {
                backoff = Duration::from_millis(200);
                worker.sent_conditions = session.sent_conditions;
                worker.registration_checked = None;
                // A new monitor: rows fetched into the previous replica are gone with it.
                for port in worker.ports.values_mut() {
                    port.fetched = false;
                }
                let ended = worker.serve(&session.client, &session.sb, &session.plan, &mut rx).await;
                session.client.close().await;
                if ended {
                    break;
                }
            }
            Err(e) => {
                worker.record_error(&e);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(RECONNECT_BACKOFF_MAX);
            }
        }
    }
    shared.publish(|s| {
        s.status.stopped = true;
        s.status.connected = false;
    });
}

/// One connection's client and what it monitors.
struct Session {
    client: Client,
    sb: Replica,
    plan: Arc<MonitorPlan>,
    sent_conditions: HashMap<String, Vec<Condition>>,
}

/// The rows of `table` a replica holds, read in place.
fn held_rows<'t>(tables: &'t ovsdb::Tables, table: &str) -> impl Iterator<Item = &'t Row> {
    tables.get(table).into_iter().flat_map(|rows| rows.values())
}

/// Connects and starts the chassis's one monitor: `monitor_cond_since` over ovn-controller's
/// tables and columns (with its conditions when `ovn-monitor-all` is off), into a replica
/// that keeps only what `filter` accepts.
async fn connect(
    spec: &ChassisSpec,
    filter: Arc<ChassisFilter>,
    options: ClientOptions,
    policy: &ConnectPolicy,
) -> Result<Session> {
    let ovsdb_error = |source| Error::Ovsdb {
        chassis: spec.name.clone(),
        source: Box::new(source),
    };
    let client = Client::connect(options).await.map_err(ovsdb_error)?;
    let plan = match &policy.plan {
        Some(plan) => plan.clone(),
        None => {
            let schema = client.get_schema(SB_DB).await.map_err(ovsdb_error)?;
            Arc::new(MonitorPlan::for_schema(&schema))
        }
    };
    let request = plan.request(spec.monitor_all);
    let sent_conditions = request
        .tables
        .iter()
        .filter_map(|(table, monitor)| Some((table.clone(), monitor.conditions.clone()?)))
        .collect();
    let filter: Arc<dyn RowFilter> = filter;
    let sb = client
        .monitor_filtered(SB_DB, request, filter)
        .await
        .map_err(ovsdb_error)?;
    Ok(Session {
        client,
        sb,
        plan,
        sent_conditions,
    })
}

/// What a chassis knows of one port bound to it.
#[derive(Debug, Default)]
struct Port {
    /// Bound through [`EmulatedChassis::bind_port`] (else because it requests this chassis).
    explicit: bool,
    /// Looked up once in this monitor's replica with `Replica::fetch`: its row may predate the
    /// binding, when the filter dropped it (see `Worker::fetch_missing_bindings`).
    fetched: bool,
}

/// The `Port_Binding` columns a chassis decides on.
#[derive(Clone, Debug, PartialEq)]
struct Binding {
    uuid: Uuid,
    logical_port: String,
    port_type: String,
    datapath: Option<Uuid>,
    chassis: Option<Uuid>,
    requested_chassis: Option<Uuid>,
    requested_option: Option<String>,
    up: Option<bool>,
    ha_chassis_group: Option<Uuid>,
    /// `options:l3gateway-chassis`.
    l3gateway_chassis: Option<String>,
    /// `options:peer` (patch ports).
    peer: Option<String>,
}

impl Binding {
    fn from_row(uuid: Uuid, row: &Row) -> Binding {
        let mut b = Binding {
            uuid,
            logical_port: String::new(),
            port_type: String::new(),
            datapath: None,
            chassis: None,
            requested_chassis: None,
            requested_option: None,
            up: None,
            ha_chassis_group: None,
            l3gateway_chassis: None,
            peer: None,
        };
        // One pass over the columns: every reconcile of every chassis reads its bindings.
        for (column, value) in row {
            match column.as_str() {
                "logical_port" => b.logical_port = value.as_str().unwrap_or("").to_owned(),
                "type" => b.port_type = value.as_str().unwrap_or("").to_owned(),
                "datapath" => b.datapath = value.as_uuid(),
                "chassis" => b.chassis = value.as_uuid(),
                "requested_chassis" => b.requested_chassis = value.as_uuid(),
                "up" => b.up = value.as_bool(),
                "ha_chassis_group" => b.ha_chassis_group = value.as_uuid(),
                "options" => {
                    let option = |key| value.map_get_str(key).map(str::to_owned);
                    b.requested_option = option("requested-chassis");
                    b.l3gateway_chassis = option("l3gateway-chassis");
                    b.peer = option("peer");
                }
                _ => {}
            }
        }
        b
    }
}

struct Worker {
    shared: Arc<Shared>,
    /// Which rows the replica keeps; its `kept` is signalled whenever a kept row arrives or
    /// changes.
    filter: Arc<ChassisFilter>,
    ports: BTreeMap<String, Port>,
    chassis_uuid: Option<Uuid>,
    nb_cfg_sent: Option<i64>,
    /// The conditions the monitor has now, per conditional table.
    sent_conditions: HashMap<String, Vec<Condition>>,
    /// When registration last found (or made) our rows right, and the filter's count of
    /// changes to them then.
    registration_checked: Option<(u64, Instant)>,
}

impl Worker {
    fn spec(&self) -> &ChassisSpec {
        &self.shared.spec
    }

    fn ovsdb_error(&self, source: ovsdb::Error) -> Error {
        Error::Ovsdb {
            chassis: self.spec().name.clone(),
            source: Box::new(source),
        }
    }

    fn record_error(&self, e: &Error) {
        tracing::warn!("{e}");
        let message = e.to_string();
        self.shared.publish(|s| {
            s.status.errors += 1;
            s.status.last_error = Some(message);
        });
    }

    fn set_bound(&self) {
        let mut keep = self.filter.write();
        keep.bound = self.ports.keys().cloned().collect();
        // Before registration the filter may already know the UUID from our row of a previous run.
        if self.chassis_uuid.is_some() {
            keep.chassis_uuid = self.chassis_uuid;
        }
    }

    fn apply(&mut self, command: Command) {
        match command {
            Command::Bind(port) => {
                self.ports.entry(port).or_default().explicit = true;
            }
            Command::Unbind(port) => {
                // Released by the next reconcile, from the replica's row (still held: it names
                // this chassis).
                self.ports.remove(&port);
            }
            Command::Stop { .. } => {}
        }
        self.set_bound();
    }

    /// Serves one connection. Returns `true` when the chassis must end, `false` to reconnect.
    async fn serve(
        &mut self,
        client: &Client,
        sb: &Replica,
        plan: &MonitorPlan,
        rx: &mut mpsc::UnboundedReceiver<Command>,
    ) -> bool {
        let mut resync = tokio::time::interval(RESYNC_INTERVAL);
        resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut connection = client.connection_events();
        self.shared.publish(|s| {
            s.status.connected = true;
            s.status.monitor_method = sb.method();
        });
        let delay = self.spec().processing_delay;
        loop {
            let retry_at = match self.reconcile(client, sb, plan).await {
                Ok(()) => None,
                Err(e) => {
                    self.record_error(&e);
                    Some(tokio::time::Instant::now() + RETRY_AFTER)
                }
            };
            let mut woken_by_sb = false;
            tokio::select! {
                command = rx.recv() => match command {
                    None => return true,
                    Some(Command::Stop { cleanup, done }) => {
                        let result = if cleanup { self.cleanup(client).await } else { Ok(()) };
                        let _ = done.send(result);
                        return true;
                    }
                    Some(other) => self.apply(other),
                },
                _ = self.filter.kept.notified() => woken_by_sb = true,
                event = connection.recv() => match event {
                    Ok(ConnectionEvent::Disconnected { reason, .. }) => {
                        tracing::info!(chassis = %self.spec().name, "SB connection lost: {reason}");
                        self.shared.publish(|s| {
                            s.status.connected = false;
                            s.status.reconnects += 1;
                        });
                    }
                    Ok(ConnectionEvent::Connected { .. }) => self.shared.publish(|s| s.status.connected = true),
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return false,
                },
                _ = sleep_until(retry_at) => {}
                _ = resync.tick() => {}
            }
            // Take in everything else that is already waiting, so one reconcile covers it all.
            while let Ok(command) = rx.try_recv() {
                if let Command::Stop { cleanup, done } = command {
                    let result = if cleanup { self.cleanup(client).await } else { Ok(()) };
                    let _ = done.send(result);
                    return true;
                }
                self.apply(command);
            }
            if woken_by_sb && !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
        }
    }

    /// Brings the SB in line with what this chassis is: registration, claims, releases,
    /// conditions, nb_cfg.
    async fn reconcile(&mut self, client: &Client, sb: &Replica, plan: &MonitorPlan) -> Result<()> {
        // Registration compares our rows with what they should be: only worth it when they
        // changed, or now and then (a deleted row does not pass the filter: see RESYNC).
        let own_rows = self.filter.own_rows_changed.load(Ordering::Relaxed);
        let checked = self.registration_checked.filter(|(rows, at)| {
            *rows == own_rows && self.chassis_uuid.is_some() && at.elapsed() < REGISTRATION_RECHECK
        });
        if checked.is_none() {
            self.register(client, sb).await?;
            self.registration_checked = Some((own_rows, Instant::now()));
        }
        self.adopt_requested_ports(sb);
        // Conditions first: a row may only be fetched once the monitor covers it.
        if !self.spec().monitor_all {
            self.update_conditions(sb, plan).await?;
        }
        let mut bindings = self.bindings(sb);
        if self.fetch_missing_bindings(sb, &bindings).await? {
            bindings = self.bindings(sb);
        }
        let gateway = match self.chassis_uuid {
            Some(me) => self.gateway_ports(sb, me),
            None => Vec::new(),
        };
        self.claim(client, &bindings, &gateway).await?;
        self.release_unbound(client, sb, &gateway).await?;
        if !self.spec().monitor_all {
            // The datapaths of ports claimed just now.
            self.update_conditions(sb, plan).await?;
        }
        self.ack_nb_cfg(client, sb).await?;
        self.publish_ports(sb);
        Ok(())
    }

    /// Creates the `Encap`, `Chassis` and `Chassis_Private` rows, or brings back those a
    /// previous run (or a reconnect) left different.
    async fn register(&mut self, client: &Client, sb: &Replica) -> Result<()> {
        let spec = self.spec().clone();
        let own = sb.find(CHASSIS, |r| r.get("name").and_then(Value::as_str) == Some(&spec.name));
        let private = sb.find(CHASSIS_PRIVATE, |r| {
            r.get("name").and_then(Value::as_str) == Some(&spec.name)
        });
        let private_chassis = private
            .first()
            .and_then(|(_, r)| r.get("chassis").and_then(Value::as_uuid));

        let mut txn = Transaction::new(SB_DB);
        let chassis_ref = match own.first() {
            None => {
                txn.comment(format!("ovn-emu: registering chassis '{}'", spec.name));
                let encap = txn.insert(ENCAP, spec.encap_row());
                txn.insert_named(CHASSIS, spec.chassis_row(encap), "chassis")
            }
            Some((uuid, row)) => {
                let wanted = spec.chassis_row(Value::empty_set());
                let stale = ["hostname", "other_config"]
                    .iter()
                    .any(|c| !same_value(row.get(c), wanted.get(c)));
                let encap_ok = sb
                    .find(ENCAP, |e| {
                        e.get("chassis_name").and_then(Value::as_str) == Some(&spec.name)
                            && e.get("ip").and_then(Value::as_str) == Some(&spec.encap_ip)
                            && e.get("type").and_then(Value::as_str) == Some(&spec.encap_type)
                    })
                    .iter()
                    .any(|(e, _)| {
                        row.get("encaps")
                            .is_some_and(|v| v.atoms().iter().any(|a| a.as_uuid() == Some(*e)))
                    });
                if stale || !encap_ok {
                    txn.comment(format!("ovn-emu: updating chassis '{}'", spec.name));
                    let mut update = Row::new()
                        .with("hostname", spec.hostname.as_str())
                        .with("other_config", spec.other_config());
                    if !encap_ok {
                        update.set("encaps", txn.insert(ENCAP, spec.encap_row()));
                    }
                    txn.update(CHASSIS, vec![Condition::uuid(*uuid)], update);
                }
                Value::uuid(*uuid)
            }
        };
        let chassis_uuid = own.first().map(|(u, _)| *u);
        match private.first() {
            None => {
                txn.insert(
                    CHASSIS_PRIVATE,
                    Row::new()
                        .with("name", spec.name.as_str())
                        .with("chassis", chassis_ref.clone()),
                );
            }
            Some((uuid, _)) if chassis_uuid.is_none() || private_chassis != chassis_uuid => {
                txn.update(
                    CHASSIS_PRIVATE,
                    vec![Condition::uuid(*uuid)],
                    Row::new().with("chassis", chassis_ref.clone()),
                );
            }
            Some(_) => {}
        }
        let uuid = if txn.is_empty() {
            chassis_uuid
        } else {
            let result = client.transact(txn).await.map_err(|e| self.ovsdb_error(e))?;
            chassis_uuid.or_else(|| result.inserted(&chassis_ref))
        };
        if uuid != self.chassis_uuid {
            self.chassis_uuid = uuid;
            self.set_bound();
            self.shared.publish(|s| s.status.chassis_uuid = uuid);
        }
        Ok(())
    }

    /// With `bind_requested`, ports whose `requested-chassis` names this chassis count as bound.
    fn adopt_requested_ports(&mut self, sb: &Replica) {
        if !self.spec().bind_requested {
            return;
        }
        // Read where the rows lie: a reconcile must not copy rows it only looks at.
        let requested: BTreeSet<String> = sb.read(|tables| {
            held_rows(tables, PORT_BINDING)
                .filter(|r| {
                    let option = r.get("options").and_then(|o| o.map_get_str("requested-chassis"));
                    self.requests_us(r.get("requested_chassis").and_then(Value::as_uuid), option)
                })
                .filter_map(|r| r.get("logical_port").and_then(Value::as_str).map(str::to_owned))
                .collect()
        });
        let dropped: Vec<String> = self
            .ports
            .iter()
            .filter(|(name, port)| !port.explicit && !requested.contains(*name))
            .map(|(name, _)| name.clone())
            .collect();
        let mut changed = !dropped.is_empty();
        for name in &dropped {
            self.ports.remove(name);
        }
        if changed {
            self.shared.publish(|s| {
                for name in &dropped {
                    s.ports.remove(name);
                }
            });
        }
        for name in requested {
            if !self.ports.contains_key(&name) {
                self.ports.insert(name.clone(), Port::default());
                self.shared.publish(|s| {
                    s.ports.entry(name).or_insert_with(PortStatus::new);
                });
                changed = true;
            }
        }
        if changed {
            self.set_bound();
        }
    }

    fn requests_us(&self, requested_chassis: Option<Uuid>, option: Option<&str>) -> bool {
        (self.chassis_uuid.is_some() && requested_chassis == self.chassis_uuid)
            || option.is_some_and(|r| self.spec().is_requested_by(r))
    }

    /// A port bound after its row arrived: the filter dropped the row then (nothing named this
    /// chassis yet), and no update brings it back unless the row changes. Fetch it once per
    /// monitor, now that the filter keeps it. (Rows inserted later arrive whole and are kept.)
    /// Returns whether it fetched any.
    async fn fetch_missing_bindings(&mut self, sb: &Replica, held: &BTreeMap<String, Binding>) -> Result<bool> {
        // With conditions, a bound port's row is only covered once the conditions name the
        // port, which needs our chassis UUID.
        if !self.spec().monitor_all && self.chassis_uuid.is_none() {
            return Ok(false);
        }
        let missing: Vec<String> = self
            .ports
            .iter()
            .filter(|(name, port)| !port.fetched && !held.contains_key(*name))
            .map(|(name, _)| name.clone())
            .collect();
        let fetched = !missing.is_empty();
        for name in missing {
            sb.fetch(PORT_BINDING, vec![Condition::eq("logical_port", name.as_str())])
                .await
                .map_err(|e| self.ovsdb_error(e))?;
            if let Some(port) = self.ports.get_mut(&name) {
                port.fetched = true;
            }
        }
        Ok(fetched)
    }

    /// The current binding of every bound port whose row exists.
    fn bindings(&self, sb: &Replica) -> BTreeMap<String, Binding> {
        // One pass over the held rows, without copying them: a farm reconciles every chassis
        // on every SB_Global change, and a lookup per port made this quadratic.
        sb.read(|tables| {
            tables
                .get(PORT_BINDING)
                .into_iter()
                .flatten()
                .filter_map(|(uuid, row)| {
                    let name = row.get("logical_port")?.as_str()?;
                    self.ports
                        .contains_key(name)
                        .then(|| (name.to_owned(), Binding::from_row(*uuid, row)))
                })
                .collect()
        })
    }

    /// Claims bound ports (chassis, then `up` in a second transaction, as ovn-controller does
    /// once flows are installed) and gateway ports this chassis is the active gateway for
    /// (chassis and `up` together).
    async fn claim(
        &mut self,
        client: &Client,
        bindings: &BTreeMap<String, Binding>,
        gateway: &[Binding],
    ) -> Result<()> {
        let Some(me) = self.chassis_uuid else {
            return Ok(());
        };
        let mut claims = Transaction::new(SB_DB);
        let mut claimed = Vec::new();
        let mut refusals = Vec::new();
        for (name, b) in bindings {
            if let Some(requested) = b.requested_option.as_deref() {
                if b.requested_chassis != Some(me) && !self.spec().is_requested_by(requested) {
                    refusals.push((name.clone(), format!("requested-chassis is {requested:?}")));
                    continue;
                }
            }
            if b.chassis != Some(me) {
                claims.update(
                    PORT_BINDING,
                    vec![Condition::uuid(b.uuid)],
                    Row::new().with("chassis", Value::uuid(me)),
                );
                claimed.push(name.clone());
            }
        }
        for b in gateway {
            if b.chassis != Some(me) {
                claims.update(
                    PORT_BINDING,
                    vec![Condition::uuid(b.uuid)],
                    Row::new().with("chassis", Value::uuid(me)).with("up", true),
                );
            }
        }
        if !refusals.is_empty() {
            self.shared.publish(|s| {
                for (name, why) in refusals {
                    if let Some(p) = s.ports.get_mut(&name) {
                        p.refused = Some(why);
                    }
                }
            });
        }
        if !claims.is_empty() {
            if !claimed.is_empty() {
                tracing::debug!(chassis = %self.spec().name, ports = ?claimed, "claiming");
            }
            claims.comment(format!("ovn-emu: claiming ports for chassis '{}'", self.spec().name));
            client.transact(claims).await.map_err(|e| self.ovsdb_error(e))?;
            let now = Instant::now();
            self.shared.publish(|s| {
                for name in &claimed {
                    if let Some(p) = s.ports.get_mut(name) {
                        p.claimed_at.get_or_insert(now);
                        p.refused = None;
                    }
                }
            });
        }

        // `up` only where northd initialised it to false: a row without a value is left alone.
        let mut ups = Transaction::new(SB_DB);
        let mut raised = Vec::new();
        for (name, b) in bindings {
            let ours = b.chassis == Some(me) || claimed.contains(name);
            if ours && b.up == Some(false) && !self.refused(name) {
                ups.update(
                    PORT_BINDING,
                    vec![Condition::uuid(b.uuid), Condition::eq("chassis", Value::uuid(me))],
                    Row::new().with("up", true),
                );
                raised.push(name.clone());
            }
        }
        if !ups.is_empty() {
            client.transact(ups).await.map_err(|e| self.ovsdb_error(e))?;
            let now = Instant::now();
            self.shared.publish(|s| {
                for name in &raised {
                    if let Some(p) = s.ports.get_mut(name) {
                        p.claimed_at.get_or_insert(now);
                        p.up_at.get_or_insert(now);
                    }
                }
            });
        }
        Ok(())
    }

    fn refused(&self, name: &str) -> bool {
        self.shared
            .read(|s| s.ports.get(name).is_some_and(|p| p.refused.is_some()))
    }

    /// Gateway ports this chassis should hold: `chassisredirect` ports whose HA chassis group
    /// ranks it first among chassis that exist, and `l3gateway` ports pinned to it.
    fn gateway_ports(&self, sb: &Replica, me: Uuid) -> Vec<Binding> {
        let name = &self.spec().name;
        let is_gateway = self.spec().is_gateway;
        sb.find(PORT_BINDING, |r| {
            matches!(
                r.get("type").and_then(Value::as_str),
                Some("chassisredirect" | "l3gateway")
            )
        })
        .into_iter()
        .map(|(uuid, row)| Binding::from_row(uuid, &row))
        .filter(|b| match b.port_type.as_str() {
            "l3gateway" => b.l3gateway_chassis.as_ref() == Some(name),
            _ => is_gateway && b.ha_chassis_group.and_then(|g| active_gateway(sb, g)) == Some(me),
        })
        .collect()
    }

    /// Releases rows this chassis holds but no longer hosts (unbound ports).
    async fn release_unbound(&mut self, client: &Client, sb: &Replica, gateway: &[Binding]) -> Result<()> {
        let Some(me) = self.chassis_uuid else {
            return Ok(());
        };
        let stale: Vec<(Uuid, String)> = sb.read(|tables| {
            tables
                .get(PORT_BINDING)
                .into_iter()
                .flatten()
                .filter(|(_, r)| r.get("chassis").and_then(Value::as_uuid) == Some(me))
                .map(|(uuid, row)| Binding::from_row(*uuid, row))
                .filter(|b| {
                    !self.ports.contains_key(&b.logical_port)
                        && !gateway.iter().any(|g| g.uuid == b.uuid)
                        && !matches!(b.port_type.as_str(), "chassisredirect" | "l3gateway")
                })
                .map(|b| (b.uuid, b.logical_port))
                .collect()
        });
        if stale.is_empty() {
            return Ok(());
        }
        let mut txn = Transaction::new(SB_DB);
        for (uuid, _) in &stale {
            txn.update(
                PORT_BINDING,
                vec![Condition::uuid(*uuid), Condition::eq("chassis", Value::uuid(me))],
                Row::new().with("chassis", Value::empty_set()).with("up", false),
            );
        }
        txn.comment(format!("ovn-emu: releasing ports from chassis '{}'", self.spec().name));
        client.transact(txn).await.map_err(|e| self.ovsdb_error(e))?;
        tracing::debug!(chassis = %self.spec().name, ports = ?stale.iter().map(|s| &s.1).collect::<Vec<_>>(), "released");
        Ok(())
    }

    /// Moves the monitor conditions to the current local datapaths and ports.
    async fn update_conditions(&mut self, sb: &Replica, plan: &MonitorPlan) -> Result<()> {
        let Some(me) = self.chassis_uuid else {
            return Ok(());
        };
        let mut roots: BTreeSet<Uuid> = self.bindings(sb).values().filter_map(|b| b.datapath).collect();
        roots.extend(self.gateway_ports(sb, me).iter().filter_map(|b| b.datapath));
        let view = LocalView {
            chassis_name: self.spec().name.clone(),
            chassis_uuid: Some(me),
            bound_ports: self.ports.keys().cloned().collect(),
            local_datapaths: connected_datapaths(sb, roots),
        };
        // Every changed table in one `monitor_cond_change`, as ovn-controller sends it.
        let changes: Vec<(String, Vec<Condition>)> = view
            .conditions()
            .into_iter()
            .filter(|(table, conditions)| {
                plan.is_conditional(table) && self.sent_conditions.get(*table) != Some(conditions)
            })
            .map(|(table, conditions)| (table.to_owned(), conditions))
            .collect();
        if changes.is_empty() {
            return Ok(());
        }
        sb.change_conditions_of(changes.clone())
            .await
            .map_err(|e| self.ovsdb_error(e))?;
        self.sent_conditions.extend(changes);
        Ok(())
    }

    /// Copies `SB_Global.nb_cfg` into `Chassis_Private.nb_cfg` (+ timestamp), which is what
    /// makes northd's `hv_cfg` and `ovn-nbctl --wait=hv` move.
    async fn ack_nb_cfg(&mut self, client: &Client, sb: &Replica) -> Result<()> {
        let name = self.spec().name.as_str();
        let read = sb.read(|tables| {
            let nb_cfg = held_rows(tables, SB_GLOBAL).next()?.get("nb_cfg")?.as_i64()?;
            let (private, row) = tables
                .get(CHASSIS_PRIVATE)?
                .iter()
                .find(|(_, r)| r.get("name").and_then(Value::as_str) == Some(name))?;
            Some((nb_cfg, *private, row.get("nb_cfg").and_then(Value::as_i64)))
        });
        let Some((nb_cfg, private, current)) = read else {
            return Ok(());
        };
        if current == Some(nb_cfg) {
            if self.nb_cfg_sent != Some(nb_cfg) {
                self.nb_cfg_sent = Some(nb_cfg);
                self.shared.publish(|s| s.status.nb_cfg_acked = Some(nb_cfg));
            }
            return Ok(());
        }
        if self.nb_cfg_sent == Some(nb_cfg) {
            return Ok(());
        }
        let mut txn = Transaction::new(SB_DB);
        txn.update(
            CHASSIS_PRIVATE,
            vec![Condition::uuid(private)],
            Row::new().with("nb_cfg", nb_cfg).with("nb_cfg_timestamp", now_ms()),
        );
        client.transact(txn).await.map_err(|e| self.ovsdb_error(e))?;
        self.nb_cfg_sent = Some(nb_cfg);
        self.shared.publish(|s| s.status.nb_cfg_acked = Some(nb_cfg));
        Ok(())
    }

    fn publish_ports(&self, sb: &Replica) {
        let me = self.chassis_uuid;
        let now = Instant::now();
        // Published from where the rows lie (the replica's read lock, then the status's; nothing
        // takes them the other way round): no copy of the bindings per reconcile.
        sb.read(|tables| {
            let held = tables
                .iter()
                .filter(|(_, rows)| !rows.is_empty())
                .map(|(table, rows)| (table.clone(), rows.len()))
                .collect();
            self.shared.publish(|s| self.publish_bindings(tables, s, me, now, held));
        });
    }

    /// The claim and `up` instants of our ports, and what the replica holds.
    fn publish_bindings(
        &self,
        tables: &ovsdb::Tables,
        s: &mut Published,
        me: Option<Uuid>,
        now: Instant,
        held: BTreeMap<String, usize>,
    ) {
        for row in held_rows(tables, PORT_BINDING) {
            let Some(name) = row.get("logical_port").and_then(Value::as_str) else {
                continue;
            };
            if !self.ports.contains_key(name) {
                continue;
            }
            let chassis = row.get("chassis").and_then(Value::as_uuid);
            if let Some(p) = s.ports.get_mut(name) {
                if me.is_some() && chassis == me {
                    p.claimed_at.get_or_insert(now);
                    if row.get("up").and_then(Value::as_bool) == Some(true) {
                        p.up_at.get_or_insert(now);
                    }
                } else if chassis.is_some() {
                    // Another chassis holds it now. (An empty `chassis` may just be our
                    // own claim's update not having arrived yet.)
                    p.claimed_at = None;
                    p.up_at = None;
                }
            }
        }
        s.status.ports_bound = s.ports.len();
        s.status.ports_claimed = s.ports.values().filter(|p| p.claimed_at.is_some()).count();
        s.status.ports_up = s.ports.values().filter(|p| p.up_at.is_some()).count();
        s.status.rows_held = held;
    }

    /// What `ovn-appctl exit` does: release our ports, delete our rows (the `Encap` goes with
    /// the `Chassis` that owns it).
    async fn cleanup(&mut self, client: &Client) -> Result<()> {
        let name = self.spec().name.clone();
        let mut txn = Transaction::new(SB_DB);
        txn.comment(format!("ovn-emu: removing chassis '{name}'"));
        if let Some(me) = self.chassis_uuid {
            txn.update(
                PORT_BINDING,
                vec![Condition::eq("chassis", Value::uuid(me))],
                Row::new().with("chassis", Value::empty_set()).with("up", false),
            );
        }
        txn.delete(CHASSIS_PRIVATE, vec![Condition::eq("name", name.as_str())]);
        txn.delete(CHASSIS, vec![Condition::eq("name", name.as_str())]);
        client.transact(txn).await.map_err(|e| self.ovsdb_error(e))?;
        self.shared.publish(|s| s.status.chassis_uuid = None);
        Ok(())
    }
}

/// The chassis an HA chassis group makes active: the highest priority among members whose
/// chassis exists (the reference is weak, so a deleted chassis leaves it empty). Without BFD
/// between emulated chassis, existing is what "alive" means here.
fn active_gateway(sb: &Replica, group: Uuid) -> Option<Uuid> {
    let group = sb.get(HA_CHASSIS_GROUP, group)?;
    group
        .get("ha_chassis")?
        .atoms()
        .iter()
        .filter_map(|a| sb.get(HA_CHASSIS, a.as_uuid()?))
        .filter_map(|ha| {
            let chassis = ha.get("chassis").and_then(Value::as_uuid)?;
            Some((
                ha.get("priority").and_then(Value::as_i64).unwrap_or(0),
                std::cmp::Reverse(chassis),
                chassis,
            ))
        })
        .max()
        .map(|(_, _, chassis)| chassis)
}

/// `roots` plus every datapath reachable through patch ports (router ports and their peers),
/// as ovn-controller's local datapaths.
fn connected_datapaths(sb: &Replica, roots: BTreeSet<Uuid>) -> BTreeSet<Uuid> {
    let patches: Vec<Binding> = sb
        .find(PORT_BINDING, |r| r.get("type").and_then(Value::as_str) == Some("patch"))
        .into_iter()
        .map(|(u, r)| Binding::from_row(u, &r))
        .collect();
    let datapath_of: HashMap<&str, Uuid> = patches
        .iter()
        .filter_map(|b| Some((b.logical_port.as_str(), b.datapath?)))
        .collect();
    let mut local = roots.clone();
    let mut frontier: Vec<Uuid> = roots.into_iter().collect();
    while let Some(dp) = frontier.pop() {
        for b in patches.iter().filter(|b| b.datapath == Some(dp)) {
            let Some(peer_dp) = b.peer.as_deref().and_then(|p| datapath_of.get(p)) else {
                continue;
            };
            if local.insert(*peer_dp) {
                frontier.push(*peer_dp);
            }
        }
    }
    local
}

fn same_value(a: Option<&Value>, b: Option<&Value>) -> bool {
    match (a, b) {
        (Some(Value::Map(_)), Some(Value::Map(_))) => a.map(Value::to_string_map) == b.map(Value::to_string_map),
        (Some(x), Some(y)) => x.as_str() == y.as_str(),
        (None, None) => true,
        _ => false,
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
