//! What ovn-controller writes to the Southbound DB, for walkthroughs without real chassis:
//! register a chassis (Chassis + Encap + Chassis_Private, as `ovn-sbctl chassis-add` plus the
//! keys ovn-controller 23.03 sets), claim a port (`ovn-sbctl lsp-bind`, and `up=true` for a
//! VIF), and the liveness heartbeat (`Chassis_Private.nb_cfg = SB_Global.nb_cfg`).
//!
//! This is NOT Neutron: it mimics the other side, so that Neutron's reactions (binding,
//! gateway scheduling, port ACTIVE) can be driven exactly as `neutron-reference/run.sh` does.
//!
//! Must not know: the NB, Neutron state, processes.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ovsdb::{Client, Condition, Row, Transaction, Value};

use crate::error::{Error, Result};

const SB: &str = "OVN_Southbound";

/// One chassis to register.
#[derive(Clone, Debug)]
pub struct ChassisSpec {
    pub name: String,
    pub hostname: String,
    pub encap_ip: String,
    /// Extra keys written to both `external_ids` and `other_config`, e.g.
    /// `ovn-cms-options=enable-chassis-as-gw`, `ovn-bridge-mappings=physnet1:br-ex`.
    pub keys: BTreeMap<String, String>,
}

impl ChassisSpec {
    /// A compute chassis (`hv1` in the reference run).
    pub fn compute(name: &str, encap_ip: &str) -> Self {
        ChassisSpec {
            name: name.into(),
            hostname: name.into(),
            encap_ip: encap_ip.into(),
            keys: BTreeMap::new(),
        }
    }
    /// A gateway chassis with bridge mappings (`gw1` with `physnet1:br-ex`).
    pub fn gateway(name: &str, encap_ip: &str, bridge_mappings: &str) -> Self {
        let mut c = Self::compute(name, encap_ip);
        c.keys.insert("ovn-cms-options".into(), "enable-chassis-as-gw".into());
        c.keys.insert("ovn-bridge-mappings".into(), bridge_mappings.into());
        c
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn first_rows(r: &ovsdb::TransactionResult) -> Vec<Row> {
    r.results.first().and_then(|o| o.rows.clone()).unwrap_or_default()
}

/// Registers a chassis as ovn-controller 23.03 would (one transaction).
pub async fn register_chassis(sb: &Client, spec: &ChassisSpec) -> Result<()> {
    let mut q = Transaction::new(SB);
    q.select(
        "Chassis",
        vec![Condition::eq("name", spec.name.as_str())],
        Some(vec!["_uuid".into()]),
    );
    if !first_rows(&sb.transact(q).await?).is_empty() {
        return Err(Error::invalid(
            format!("chassis {}", spec.name),
            "is already registered in the SB (use a fresh SB, or another name)",
        ));
    }
    let mut keys: BTreeMap<String, String> = BTreeMap::new();
    keys.insert("datapath-type".into(), "system".into());
    keys.insert("iface-types".into(), "geneve,internal,system,tap,vxlan".into());
    keys.extend(spec.keys.clone());
    let map = Value::string_map(keys.iter().map(|(k, v)| (k.clone(), v.clone())));
    let mut txn = Transaction::new(SB);
    let encap = txn.insert(
        "Encap",
        Row::new()
            .with("type", "geneve")
            .with("ip", spec.encap_ip.clone())
            .with("chassis_name", spec.name.clone())
            .with("options", Value::string_map([("csum", "true")])),
    );
    let chassis = txn.insert(
        "Chassis",
        Row::new()
            .with("name", spec.name.clone())
            .with("hostname", spec.hostname.clone())
            .with("encaps", encap)
            .with("external_ids", map.clone())
            .with("other_config", map),
    );
    txn.insert(
        "Chassis_Private",
        Row::new()
            .with("name", spec.name.clone())
            .with("chassis", chassis)
            .with("nb_cfg", 0i64)
            .with("nb_cfg_timestamp", now_ms()),
    );
    sb.transact(txn).await?;
    Ok(())
}

/// The liveness heartbeat of a live ovn-controller: copies `SB_Global.nb_cfg` into each
/// named chassis' `Chassis_Private.nb_cfg` (with a fresh timestamp). Returns the value copied,
/// which ovn-northd then folds into `NB_Global.hv_cfg`.
pub async fn heartbeat(sb: &Client, chassis: &[&str]) -> Result<i64> {
    let mut read = Transaction::new(SB);
    read.select("SB_Global", Vec::<Condition>::new(), Some(vec!["nb_cfg".into()]));
    let rows = first_rows(&sb.transact(read).await?);
    let nb_cfg = rows
        .first()
        .and_then(|r| r.get("nb_cfg"))
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let mut txn = Transaction::new(SB);
    for name in chassis {
        txn.update(
            "Chassis_Private",
            vec![Condition::eq("name", *name)],
            Row::new().with("nb_cfg", nb_cfg).with("nb_cfg_timestamp", now_ms()),
        );
    }
    if !txn.is_empty() {
        sb.transact(txn).await?;
    }
    Ok(nb_cfg)
}

/// `ovn-sbctl lsp-bind PORT CHASSIS` (+ `Port_Binding.up=true` when `up`): waits up to
/// `timeout` for ovn-northd to create the Port_Binding first.
pub async fn claim_port(sb: &Client, logical_port: &str, chassis: &str, up: bool, timeout: Duration) -> Result<()> {
    let mut find = Transaction::new(SB);
    find.select(
        "Chassis",
        vec![Condition::eq("name", chassis)],
        Some(vec!["_uuid".into()]),
    );
    let chassis_uuid = first_rows(&sb.transact(find).await?)
        .first()
        .and_then(Row::uuid)
        .ok_or_else(|| Error::invalid("chassis", format!("{chassis:?} is not registered in the SB")))?;
    let deadline = Instant::now() + timeout;
    loop {
        let mut q = Transaction::new(SB);
        q.select(
            "Port_Binding",
            vec![Condition::eq("logical_port", logical_port)],
            Some(vec!["_uuid".into()]),
        );
        if !first_rows(&sb.transact(q).await?).is_empty() {
            break;
        }
        if Instant::now() >= deadline {
            return Err(Error::Timeout {
                what: format!("ovn-northd to create Port_Binding {logical_port}"),
                after: timeout,
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut row = Row::new().with("chassis", Value::uuid(chassis_uuid));
    if up {
        row.set("up", true);
    }
    let mut txn = Transaction::new(SB);
    txn.update("Port_Binding", vec![Condition::eq("logical_port", logical_port)], row);
    sb.transact(txn).await?;
    Ok(())
}
