//! The Neutron-shaped API: one async method per Neutron action (in `network.rs`, `router.rs`,
//! `port.rs`, `security_group.rs`), each issuing the NB transactions Neutron's OVN driver
//! issues, in order, and returning their timings.
//!
//! Concurrency: a [`Neutron`] is shared by several API workers (`Arc<Neutron>`). The state is
//! behind a mutex held only while a transaction is planned or its effect applied, never across
//! a round trip; addresses and MACs are reserved when planned, so concurrent actions never
//! pick the same one. Each planned transaction is sent as is; only when the server committed
//! it is its effect applied to the state, so a refused transaction leaves both unchanged.
//!
//! Must not know: processes, namespaces, the CLI, YAML. Reaches OVSDB only through the
//! `ovsdb::Client`s it is given.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use ovsdb::{Client, Condition, Row, Transaction, TransactionResult, Value};

use crate::error::{Error, Result};
use crate::model::{Config, Id, State};
use crate::nb::{self, Planned};

/// How long one NB transaction took, for the runner's per-operation timings.
#[derive(Clone, Debug)]
pub struct TxnTiming {
    pub label: String,
    pub operations: usize,
    pub started: Instant,
    pub elapsed: Duration,
}

/// What one Neutron action did.
#[derive(Clone, Debug)]
pub struct ActionReport {
    pub action: String,
    /// The id of the object created (network, port, ...), if any.
    pub id: Option<Id>,
    pub txns: Vec<TxnTiming>,
    pub elapsed: Duration,
    /// Transactions whose outcome was unknown and that were then verified in the NB
    /// (`Config::verify_unknown_outcomes`): what was found, e.g. `"T8a port LSP: committed"`.
    pub unknown_outcomes: Vec<String>,
}

impl ActionReport {
    fn new(action: impl Into<String>) -> Self {
        ActionReport {
            action: action.into(),
            id: None,
            txns: Vec::new(),
            elapsed: Duration::ZERO,
            unknown_outcomes: Vec::new(),
        }
    }
}

/// A chassis as Neutron's agent cache sees it (from SB `Chassis`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChassisInfo {
    pub name: String,
    pub hostname: String,
    /// `ovn-cms-options` contains `enable-chassis-as-gw`.
    pub gateway: bool,
    /// physnets of `ovn-bridge-mappings`.
    pub physnets: Vec<String>,
}

impl ChassisInfo {
    /// Reads one SB `Chassis` row (Neutron 21 reads `external_ids`, newer ovn-controllers write
    /// `other_config`; either is accepted).
    pub fn from_row(row: &Row) -> Option<Self> {
        let name = row.get("name")?.as_str()?.to_owned();
        let hostname = row.get("hostname").and_then(Value::as_str).unwrap_or("").to_owned();
        let key = |k: &str| {
            ["external_ids", "other_config"]
                .iter()
                .find_map(|c| row.get(c).and_then(|v| v.map_get_str(k)).map(str::to_owned))
                .unwrap_or_default()
        };
        let gateway = key("ovn-cms-options")
            .split(',')
            .any(|o| o.trim() == "enable-chassis-as-gw");
        let physnets = key("ovn-bridge-mappings")
            .split(',')
            .filter_map(|m| m.split_once(':').map(|(p, _)| p.trim().to_owned()))
            .filter(|p| !p.is_empty())
            .collect();
        Some(ChassisInfo {
            name,
            hostname,
            gateway,
            physnets,
        })
    }
}

enum NbTransport {
    Server(Client),
    /// Unit tests: transactions are recorded, inserted rows get fresh UUIDs.
    Recorder(Mutex<Vec<Transaction>>),
}

enum ChassisSource {
    Server(Client),
    Fixed(Vec<ChassisInfo>),
}

/// The Neutron mimic. See the module docs.
pub struct Neutron {
    state: Mutex<State>,
    /// Serializes "create the project's default group if missing" across API workers, as
    /// Neutron's DB unique constraint does.
    pub(crate) default_sg_creation: tokio::sync::Mutex<()>,
    nb: NbTransport,
    sb: ChassisSource,
    /// Every transaction of unknown outcome verified in the NB, until taken.
    unknown_outcomes: Mutex<Vec<String>>,
}

impl Neutron {
    /// A mimic writing to the NB through `nb` and reading chassis from the SB through `sb`.
    pub fn new(nb: Client, sb: Client, config: Config) -> Arc<Self> {
        Arc::new(Neutron {
            state: Mutex::new(State::new(config)),
            default_sg_creation: tokio::sync::Mutex::new(()),
            nb: NbTransport::Server(nb),
            sb: ChassisSource::Server(sb),
            unknown_outcomes: Mutex::new(Vec::new()),
        })
    }

    /// A mimic that only records its transactions (no server), with a fixed chassis list: for
    /// unit tests of transaction contents.
    pub fn recording(config: Config, chassis: Vec<ChassisInfo>) -> Arc<Self> {
        Arc::new(Neutron {
            state: Mutex::new(State::new(config)),
            default_sg_creation: tokio::sync::Mutex::new(()),
            nb: NbTransport::Recorder(Mutex::new(Vec::new())),
            sb: ChassisSource::Fixed(chassis),
            unknown_outcomes: Mutex::new(Vec::new()),
        })
    }

    /// The transactions of unknown outcome verified in the NB since the last call
    /// (`Config::verify_unknown_outcomes`), e.g. `"T8a port LSP <port id>: committed"`.
    pub fn take_unknown_outcomes(&self) -> Vec<String> {
        std::mem::take(&mut *lock(&self.unknown_outcomes))
    }

    /// The transactions recorded so far (recording mode), and forgets them.
    pub fn take_recorded(&self) -> Vec<Transaction> {
        match &self.nb {
            NbTransport::Recorder(r) => std::mem::take(&mut *lock(r)),
            NbTransport::Server(_) => Vec::new(),
        }
    }

    /// Runs `f` over the state (read-only uses, reservations).
    pub fn with_state<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        f(&mut lock(&self.state))
    }

    /// The NB client (None in recording mode).
    pub fn nb_client(&self) -> Option<&Client> {
        match &self.nb {
            NbTransport::Server(c) => Some(c),
            NbTransport::Recorder(_) => None,
        }
    }

    async fn transact(&self, txn: Transaction) -> Result<TransactionResult> {
        let marker = lock(&self.state).config.run_marker.clone();
        let txn = match marker {
            Some(run) => crate::marker::mark(txn, &run),
            None => txn,
        };
        match &self.nb {
            NbTransport::Server(c) => Ok(c.transact(txn).await?),
            NbTransport::Recorder(r) => {
                let mut result = TransactionResult::default();
                for op in txn.operations() {
                    let (uuid, name) = match op {
                        ovsdb::Operation::Insert { uuid_name, .. } => (Some(ovsdb::Uuid::new_v4()), uuid_name.clone()),
                        _ => (None, None),
                    };
                    result.results.push(ovsdb::OperationResult {
                        uuid,
                        uuid_name: name,
                        ..Default::default()
                    });
                }
                lock(r).push(txn);
                Ok(result)
            }
        }
    }

    /// Plans one transaction against the current state, sends it, and applies its effect.
    /// A plan of `None` (nothing to write) sends nothing, as python-ovs skips empty commits.
    pub(crate) async fn exec(
        &self,
        report: &mut ActionReport,
        plan: impl FnOnce(&State) -> Result<Option<Planned>>,
    ) -> Result<()> {
        let planned = {
            let st = lock(&self.state);
            plan(&st)?
        };
        let Some(planned) = planned else { return Ok(()) };
        if planned.txn.is_empty() {
            (planned.commit)(&mut lock(&self.state), &TransactionResult::default());
            return Ok(());
        }
        let operations = planned.txn.operations().len();
        let started = Instant::now();
        tracing::debug!(label = %planned.label, operations, "NB transaction");
        let verify = self.verify_unknown_outcomes().zip(planned.landed.clone());
        let resend = verify.is_some().then(|| planned.txn.clone());
        let result = match (self.transact(planned.txn).await, verify, resend) {
            (Err(Error::Ovsdb(ovsdb::Error::OutcomeUnknown { .. })), Some((limit, landed)), Some(txn)) => {
                let found = self.find_landed(&landed, &txn, limit).await?;
                let revision = landed
                    .revision
                    .as_ref()
                    .map(|r| format!(" (revision {r})"))
                    .unwrap_or_default();
                let note = format!(
                    "{} {}{revision}: outcome unknown, {}",
                    planned.label,
                    landed.name,
                    if found.is_some() {
                        "committed"
                    } else {
                        "not committed: sent again"
                    }
                );
                report.unknown_outcomes.push(note.clone());
                lock(&self.unknown_outcomes).push(note);
                match found {
                    Some(result) => result,
                    None => self.transact(txn).await?,
                }
            }
            (r, _, _) => r?,
        };
        report.txns.push(TxnTiming {
            label: planned.label,
            operations,
            started,
            elapsed: started.elapsed(),
        });
        (planned.commit)(&mut lock(&self.state), &result);
        Ok(())
    }

    fn verify_unknown_outcomes(&self) -> Option<Duration> {
        lock(&self.state).config.verify_unknown_outcomes
    }

    /// Whether `txn` committed, as the row `landed` names shows: if so, the result it had,
    /// for its commit — each row it inserted found in the NB by the values it wrote and, among
    /// rows holding the same values (another router's default route), by the rows that
    /// reference it (see [`resolve_inserted`]). Reads are retried (each within 2 s) until
    /// `limit`, while the cluster has no leader.
    async fn find_landed(
        &self,
        landed: &nb::Landed,
        txn: &Transaction,
        limit: Duration,
    ) -> Result<Option<TransactionResult>> {
        let NbTransport::Server(client) = &self.nb else {
            return Ok(None);
        };
        let mut read = Transaction::new(nb::NB);
        read.select(
            landed.table,
            vec![landed.by.clone()],
            Some(vec!["_uuid".into(), "external_ids".into()]),
        );
        let probes = probes_of(txn);
        for probe in &probes {
            read.select(probe.table, probe.conditions.clone(), None);
        }
        let deadline = Instant::now() + limit;
        let found = loop {
            let error = match tokio::time::timeout(Duration::from_secs(2), client.transact(read.clone())).await {
                Ok(Ok(r)) => break r,
                Ok(Err(e)) => Error::Ovsdb(e),
                Err(_) => Error::Timeout {
                    what: format!("a read of {} {} after an unknown outcome", landed.table, landed.name),
                    after: Duration::from_secs(2),
                },
            };
            if Instant::now() >= deadline {
                return Err(error);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let mut rows: Vec<Vec<Row>> = found.results.into_iter().map(|o| o.rows.unwrap_or_default()).collect();
        let anchor = if rows.is_empty() { Vec::new() } else { rows.remove(0) };
        let committed = anchor.iter().any(|row| match &landed.revision {
            Some(revision) => {
                row.get("external_ids").and_then(|e| e.map_get_str(nb::REVISION)) == Some(revision.as_str())
            }
            None => true,
        });
        if !committed {
            return Ok(None);
        }
        let inserted = resolve_inserted(&probes, &rows);
        let mut result = TransactionResult::default();
        for op in txn.operations() {
            let (uuid, uuid_name) = match op {
                ovsdb::Operation::Insert { uuid_name, .. } => (
                    uuid_name.as_ref().and_then(|n| inserted.get(n.as_str()).copied()),
                    uuid_name.clone(),
                ),
                _ => (None, None),
            };
            result.results.push(ovsdb::OperationResult {
                uuid,
                uuid_name,
                ..Default::default()
            });
        }
        Ok(Some(result))
    }

    /// Deletes from the NB every object this mimic created — also those whose transaction
    /// was cut off and may have committed: the root rows (switches, routers, port groups,
    /// DHCP options, HA chassis groups) whose name or `external_ids` hold an id it handed out,
    /// and `neutron_pg_drop` if it created it; their ports, ACLs, NATs and routes go with
    /// them (garbage collection of non-root rows). One transaction; returns how many root
    /// rows it deleted. For runs against an existing OVN that end early (interrupted or failed).
    pub async fn purge(&self) -> Result<usize> {
        let NbTransport::Server(client) = &self.nb else {
            return Ok(0);
        };
        const ROOTS: [&str; 5] = [
            nb::LOGICAL_SWITCH,
            nb::LOGICAL_ROUTER,
            nb::PORT_GROUP,
            nb::DHCP_OPTIONS,
            nb::HA_CHASSIS_GROUP,
        ];
        let mut select = Transaction::new(nb::NB);
        for table in ROOTS {
            let mut columns = vec!["_uuid".to_owned(), "external_ids".to_owned()];
            if table != nb::DHCP_OPTIONS {
                columns.push("name".into());
            }
            select.select(table, vec![], Some(columns));
        }
        let found = client.transact(select).await?;
        let (issued, pg_drop) = self.with_state(|st| (st.issued.clone(), st.pg_drop.filter(|_| st.pg_drop_created)));
        let mut delete = Transaction::new(nb::NB);
        let mut deleted = 0;
        for (table, result) in ROOTS.iter().zip(&found.results) {
            for row in result.rows.iter().flatten() {
                let Some(uuid) = row.uuid() else { continue };
                let name = row.get("name").and_then(Value::as_str).unwrap_or("");
                let ids = row.get("external_ids").map(Value::to_string_map).unwrap_or_default();
                let ours = Some(uuid) == pg_drop
                    || std::iter::once(name)
                        .chain(ids.values().map(String::as_str))
                        .any(|text| mentions_any(text, &issued));
                if ours {
                    delete.delete(*table, vec![Condition::uuid(uuid)]);
                    deleted += 1;
                }
            }
        }
        if deleted > 0 {
            client.transact(delete).await?;
        }
        Ok(deleted)
    }

    /// Runs one action body, timing it.
    pub(crate) async fn action<F, Fut>(&self, name: &str, body: F) -> Result<ActionReport>
    where
        F: FnOnce(ActionReport) -> Fut,
        Fut: std::future::Future<Output = Result<ActionReport>>,
    {
        let started = Instant::now();
        let mut report = body(ActionReport::new(name)).await?;
        report.elapsed = started.elapsed();
        tracing::info!(action = name, txns = report.txns.len(), elapsed = ?report.elapsed, "neutron action");
        Ok(report)
    }

    /// SB chassis as Neutron's agent cache sees them.
    pub async fn chassis(&self) -> Result<Vec<ChassisInfo>> {
        match &self.sb {
            ChassisSource::Fixed(list) => Ok(list.clone()),
            ChassisSource::Server(sb) => {
                let mut txn = Transaction::new("OVN_Southbound");
                txn.select("Chassis", Vec::<Condition>::new(), None);
                let result = sb.transact(txn).await?;
                let rows = result.results.first().and_then(|r| r.rows.clone()).unwrap_or_default();
                let mut list: Vec<ChassisInfo> = rows.iter().filter_map(ChassisInfo::from_row).collect();
                list.sort_by(|a, b| a.name.cmp(&b.name));
                Ok(list)
            }
        }
    }

    // ------------------------------------------------------------------ start-up --

    /// neutron-server start: `neutron_pg_drop` and its two drop ACLs, if missing (T0). As
    /// Neutron's pre-fork step, this holds the OVSDB lock `pg_drop_creation` while it checks
    /// and creates, so several mimics starting at once create the group once.
    pub async fn start(&self) -> Result<ActionReport> {
        self.action("start", |mut report| async move {
            let client = match &self.nb {
                NbTransport::Server(c) => c.clone(),
                NbTransport::Recorder(_) => {
                    self.exec(&mut report, |_| Ok(Some(plan_pg_drop()))).await?;
                    return Ok(report);
                }
            };
            let mut lock = client.lock(nb::PG_DROP_LOCK).await?;
            tokio::time::timeout(Duration::from_secs(30), lock.acquired())
                .await
                .map_err(|_| Error::Timeout {
                    what: format!("the NB lock {} (held by another neutron-server?)", nb::PG_DROP_LOCK),
                    after: Duration::from_secs(30),
                })??;
            let result = async {
                let mut txn = Transaction::new(nb::NB);
                txn.select(
                    nb::PORT_GROUP,
                    vec![Condition::eq("name", nb::PG_DROP)],
                    Some(vec!["_uuid".into()]),
                );
                let r = client.transact(txn).await?;
                let existing = r
                    .results
                    .first()
                    .and_then(|r| r.rows.as_ref())
                    .and_then(|rows| rows.first())
                    .and_then(Row::uuid);
                match existing {
                    Some(uuid) => {
                        self.with_state(|st| st.pg_drop = Some(uuid));
                        Ok(())
                    }
                    None => self.exec(&mut report, |_| Ok(Some(plan_pg_drop()))).await,
                }
            }
            .await;
            if let Err(e) = lock.unlock().await {
                tracing::warn!("releasing the NB lock {}: {e}", nb::PG_DROP_LOCK);
            }
            result?;
            Ok(report)
        })
        .await
    }
}

/// T0: one transaction creating `neutron_pg_drop` with its two priority-1001 drop ACLs,
/// asserting the `pg_drop_creation` lock first (the caller holds it).
pub fn plan_pg_drop() -> Planned {
    let mut txn = Transaction::new(nb::NB);
    txn.assert_lock(nb::PG_DROP_LOCK);
    let from = txn.insert(
        nb::ACL,
        Row::new()
            .with("direction", "from-lport")
            .with("priority", 1001i64)
            .with("match", format!("inport == @{} && ip", nb::PG_DROP))
            .with("action", "drop"),
    );
    let to = txn.insert(
        nb::ACL,
        Row::new()
            .with("direction", "to-lport")
            .with("priority", 1001i64)
            .with("match", format!("outport == @{} && ip", nb::PG_DROP))
            .with("action", "drop"),
    );
    let acls = Value::Set(vec![
        from.atom().cloned().expect("named uuid"),
        to.atom().cloned().expect("named uuid"),
    ]);
    let pg = txn.insert(nb::PORT_GROUP, Row::new().with("name", nb::PG_DROP).with("acls", acls));
    Planned::new("T0 neutron_pg_drop", txn, move |st, r| {
        st.pg_drop = Some(nb::inserted(r, &pg));
        st.pg_drop_created = true;
    })
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Fails with [`Error::Unknown`]-style context when the pg_drop group was never created.
pub(crate) fn pg_drop(st: &State) -> Result<ovsdb::Uuid> {
    st.pg_drop
        .ok_or_else(|| Error::invalid("state", "neutron_pg_drop is missing: call Neutron::start() first"))
}

/// One read made after an unknown outcome, besides the anchor: the rows holding what an insert
/// of the transaction wrote (`inserted`: its uuid-name), or the row another of its writes
/// changed; `refs`: the columns in which that write named rows inserted by the transaction.
#[derive(Debug)]
struct Probe<'a> {
    table: &'a str,
    conditions: Vec<Condition>,
    inserted: Option<&'a str>,
    refs: Vec<(&'a str, &'a str)>,
}

fn probes_of(txn: &Transaction) -> Vec<Probe<'_>> {
    let mut probes = Vec::new();
    for op in txn.operations() {
        match op {
            ovsdb::Operation::Insert { table, row, uuid_name } => {
                let conditions = written_columns(row);
                // A row that only names other new rows: selecting by nothing would read the
                // whole table; its uuid stays unknown.
                if conditions.is_empty() {
                    continue;
                }
                probes.push(Probe {
                    table: table.as_str(),
                    conditions,
                    inserted: uuid_name.as_deref(),
                    refs: row.columns().flat_map(|(c, v)| named_in(c.as_str(), v)).collect(),
                });
            }
            ovsdb::Operation::Update { table, conditions, row } => {
                let refs: Vec<_> = row.columns().flat_map(|(c, v)| named_in(c.as_str(), v)).collect();
                if !refs.is_empty() && !conditions.iter().any(names_a_new_row) {
                    probes.push(Probe {
                        table: table.as_str(),
                        conditions: conditions.clone(),
                        inserted: None,
                        refs,
                    });
                }
            }
            ovsdb::Operation::Mutate {
                table,
                conditions,
                mutations,
            } => {
                let refs: Vec<_> = mutations
                    .iter()
                    .filter(|m| m.mutator == ovsdb::Mutator::Insert)
                    .flat_map(|m| named_in(m.column.as_str(), &m.value))
                    .collect();
                if !refs.is_empty() && !conditions.iter().any(names_a_new_row) {
                    probes.push(Probe {
                        table: table.as_str(),
                        conditions: conditions.clone(),
                        inserted: None,
                        refs,
                    });
                }
            }
            _ => {}
        }
    }
    probes
}

/// Whether `condition` names a row of the same transaction (such a row cannot be read by it).
fn names_a_new_row(condition: &Condition) -> bool {
    match condition {
        Condition::Compare { value, .. } => !named_in("", value).is_empty(),
        _ => false,
    }
}

/// `(column, uuid-name)` for each row of the same transaction `value` names.
fn named_in<'a>(column: &'a str, value: &'a Value) -> Vec<(&'a str, &'a str)> {
    let atoms: Vec<&ovsdb::Atom> = match value {
        Value::Atom(a) => vec![a],
        Value::Set(set) => set.iter().collect(),
        Value::Map(map) => map.iter().flat_map(|(k, v)| [k, v]).collect(),
    };
    atoms
        .into_iter()
        .filter_map(|a| match a {
            ovsdb::Atom::NamedUuid(n) => Some((column, n.as_str())),
            _ => None,
        })
        .collect()
}

/// The uuid of each row the transaction inserted, from the rows each probe read (`rows[i]` for
/// `probes[i]`): the rows holding what it wrote, narrowed to those a row written by the same
/// transaction references where it named the new row — until nothing narrows further. A row
/// left with several candidates gets the first; one with none stays unknown.
fn resolve_inserted<'a>(probes: &[Probe<'a>], rows: &[Vec<Row>]) -> std::collections::HashMap<&'a str, ovsdb::Uuid> {
    let mut candidates: std::collections::HashMap<&str, Vec<ovsdb::Uuid>> = probes
        .iter()
        .zip(rows)
        .filter_map(|(p, rows)| Some((p.inserted?, rows.iter().filter_map(Row::uuid).collect())))
        .collect();
    for _ in 0..=probes.len() {
        let mut narrowed = false;
        for (probe, rows) in probes.iter().zip(rows) {
            // The row this probe's write went to, once it is known.
            let row = match probe.inserted {
                Some(name) => match candidates.get(name).map(Vec::as_slice) {
                    Some([uuid]) => rows.iter().find(|r| r.uuid() == Some(*uuid)),
                    _ => None,
                },
                None if rows.len() == 1 => rows.first(),
                None => None,
            };
            let Some(row) = row else { continue };
            for (column, named) in &probe.refs {
                let referenced: Vec<ovsdb::Uuid> = match row.get(column) {
                    Some(Value::Atom(a)) => a.as_uuid().into_iter().collect(),
                    Some(Value::Set(set)) => set.iter().filter_map(ovsdb::Atom::as_uuid).collect(),
                    Some(Value::Map(map)) => map
                        .iter()
                        .flat_map(|(k, v)| [k, v])
                        .filter_map(|a| a.as_uuid())
                        .collect(),
                    None => Vec::new(),
                };
                if let Some(c) = candidates.get_mut(named) {
                    let before = c.len();
                    c.retain(|u| referenced.contains(u));
                    narrowed |= c.len() != before;
                }
            }
        }
        if !narrowed {
            break;
        }
    }
    candidates
        .into_iter()
        .filter_map(|(name, c)| c.first().map(|u| (name, *u)))
        .collect()
}

/// Conditions matching a row holding every value `row` writes, except those naming rows
/// inserted in the same transaction (their uuids are not known until it commits).
fn written_columns(row: &Row) -> Vec<Condition> {
    row.columns()
        .filter(|(column, value)| named_in(column.as_str(), value).is_empty())
        .map(|(column, value)| Condition::includes(column.clone(), value.clone()))
        .collect()
}

/// Whether `text` holds one of `ids`, written as Neutron writes them in names and
/// `external_ids` (`neutron-<id>`, `pg_<id with underscores>`, a bare id).
fn mentions_any(text: &str, ids: &std::collections::BTreeSet<Id>) -> bool {
    const LEN: usize = 36;
    let text = text.replace('_', "-");
    let bytes = text.as_bytes();
    (0..=bytes.len().saturating_sub(LEN)).any(|i| {
        (i == 0 || !bytes[i - 1].is_ascii_hexdigit())
            && text
                .get(i..i + LEN)
                .and_then(|candidate| Id::parse_str(candidate).ok())
                .is_some_and(|id| ids.contains(&id))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_inserted_row_like_others_is_told_apart_by_the_row_referencing_it() {
        // A router's default route: the same values as every other router's on that network.
        let lr = ovsdb::Uuid::new_v4();
        let mut txn = Transaction::new(nb::NB);
        let route = txn.insert(
            nb::LOGICAL_ROUTER_STATIC_ROUTE,
            Row::new().with("ip_prefix", "0.0.0.0/0").with("nexthop", "172.16.0.1"),
        );
        nb::mutate_ref(
            &mut txn,
            nb::LOGICAL_ROUTER,
            Value::uuid(lr),
            "static_routes",
            true,
            route.clone(),
        );
        let probes = probes_of(&txn);
        assert_eq!(probes.len(), 2, "{probes:?}");
        let (other, ours) = (ovsdb::Uuid::new_v4(), ovsdb::Uuid::new_v4());
        let route_row = |u| Row::new().with("_uuid", Value::uuid(u));
        let rows = vec![
            vec![route_row(other), route_row(ours)],
            vec![Row::new()
                .with("_uuid", Value::uuid(lr))
                .with("static_routes", Value::Set(vec![ovsdb::Atom::Uuid(ours)]))],
        ];
        let name = match route.atom() {
            Some(ovsdb::Atom::NamedUuid(n)) => n.as_str().to_owned(),
            other => panic!("{other:?}"),
        };
        assert_eq!(resolve_inserted(&probes, &rows).get(name.as_str()), Some(&ours));
    }

    #[test]
    fn ids_are_found_as_neutron_writes_them() {
        let id: Id = "5b0c6a3e-1f2d-4c5b-8a9e-0123456789ab".parse().unwrap();
        let ids = std::collections::BTreeSet::from([id]);
        for text in [
            "neutron-5b0c6a3e-1f2d-4c5b-8a9e-0123456789ab",
            "pg_5b0c6a3e_1f2d_4c5b_8a9e_0123456789ab",
            "5b0c6a3e-1f2d-4c5b-8a9e-0123456789ab",
        ] {
            assert!(mentions_any(text, &ids), "{text}");
        }
        for text in [
            "",
            "neutron_pg_drop",
            "neutron-6b0c6a3e-1f2d-4c5b-8a9e-0123456789ab",
            "x5b0c6a3e-1f2d-4c5b-8a9e-0123456789a",
        ] {
            assert!(!mentions_any(text, &ids), "{text}");
        }
    }
}
