//! What to monitor (tables, columns, conditions) and the updates the server sends
//! (`update`, `update2`, `update3`), decoded into one form. Decoding for a filtered replica
//! skips the tables its filter never keeps (parsed, never built into rows).
//!
//! Must not know: any schema's table names.

use std::collections::BTreeMap;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::{json, Value as Json};

use crate::condition::Condition;
#[cfg(test)]
use crate::datum::Value;
use crate::datum::{Row, Uuid};
use crate::error::{Error, Result};
use crate::filter::{RowFilter, SharedFilter};
use crate::schema::DatabaseSchema;

/// Which protocol a monitor ended up using (the client falls back in this order).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MonitorMethod {
    /// `monitor_cond_since` (update3; resumes from the last transaction id).
    CondSince,
    /// `monitor_cond` (update2).
    Cond,
    /// `monitor` (update).
    Plain,
}

/// Monitoring of one table.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TableMonitor {
    /// `None`: every column.
    pub columns: Option<Vec<String>>,
    /// `None`: every row. `Some(conds)`: rows matching **any** of `conds` (monitor conditions are
    /// disjunctions, unlike a transaction's `where`); `[Condition::Constant(false)]` matches none.
    pub conditions: Option<Vec<Condition>>,
}

impl TableMonitor {
    pub fn all() -> Self {
        TableMonitor::default()
    }
    pub fn columns<I: IntoIterator<Item = S>, S: Into<String>>(mut self, cols: I) -> Self {
        self.columns = Some(cols.into_iter().map(Into::into).collect());
        self
    }
    pub fn conditions(mut self, conds: Vec<Condition>) -> Self {
        self.conditions = Some(conds);
        self
    }
}

/// The tables of one monitor request.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MonitorRequest {
    pub tables: BTreeMap<String, TableMonitor>,
}

impl MonitorRequest {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn table(mut self, name: impl Into<String>, monitor: TableMonitor) -> Self {
        self.tables.insert(name.into(), monitor);
        self
    }
    /// Every table and column of a schema, unconditionally.
    pub fn all_tables(schema: &DatabaseSchema) -> Self {
        MonitorRequest {
            tables: schema.tables.keys().map(|t| (t.clone(), TableMonitor::all())).collect(),
        }
    }
}

/// One row's change within an update, after decoding any of update/update2/update3.
#[derive(Clone, Debug, PartialEq)]
pub enum RowChange {
    /// A new row (or a row of the initial contents); full row.
    Insert(Row),
    /// Changed row: the columns that changed, as their new full values (update2 `modify`
    /// diffs are applied by the replica, which knows the old value).
    Modify(RowDiff),
    Delete,
}

/// The raw change of a `modify`: either full new values (`update`) or an update2 diff.
#[derive(Clone, Debug, PartialEq)]
pub enum RowDiff {
    /// New values of the changed columns.
    New(Row),
    /// update2/update3 `modify` diff: for sets, elements to toggle; for maps, keys to
    /// remove/add/replace; for scalars, the new value.
    Diff2(Row),
}

/// All changes of one notification (one committed transaction, or the initial contents).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TableUpdates {
    pub tables: BTreeMap<String, BTreeMap<Uuid, RowChange>>,
    /// update3: the transaction id after this update.
    pub last_txn_id: Option<Uuid>,
}

impl MonitorMethod {
    /// The JSON-RPC method that starts a monitor of this kind.
    pub fn rpc_name(self) -> &'static str {
        match self {
            MonitorMethod::CondSince => "monitor_cond_since",
            MonitorMethod::Cond => "monitor_cond",
            MonitorMethod::Plain => "monitor",
        }
    }
    /// The notification that carries this kind's updates.
    pub fn notification(self) -> &'static str {
        match self {
            MonitorMethod::CondSince => "update3",
            MonitorMethod::Cond => "update2",
            MonitorMethod::Plain => "update",
        }
    }
}

/// The all-zero transaction id: "I have nothing, send everything" for `monitor_cond_since`.
pub const ZERO_TXN_ID: &str = "00000000-0000-0000-0000-000000000000";

impl TableMonitor {
    /// One `<monitor-request>` (or `<monitor-cond-request>`) object.
    fn to_json(&self, with_conditions: bool) -> Json {
        let mut o = serde_json::Map::new();
        if let Some(cols) = &self.columns {
            o.insert("columns".into(), json!(cols));
        }
        if with_conditions {
            if let Some(conds) = &self.conditions {
                o.insert(
                    "where".into(),
                    Json::Array(conds.iter().map(Condition::to_json).collect()),
                );
            }
        }
        Json::Object(o)
    }
}

impl MonitorRequest {
    /// Whether any table has conditions (which plain `monitor` cannot express).
    pub fn has_conditions(&self) -> bool {
        self.tables.values().any(|t| t.conditions.is_some())
    }

    /// The `params` of the request starting a monitor with `method`; `last_txn_id` only
    /// matters for `monitor_cond_since` (`None`: send everything).
    pub fn to_params(
        &self,
        method: MonitorMethod,
        database: &str,
        monitor_id: &Json,
        last_txn_id: Option<Uuid>,
    ) -> Json {
        let with_conditions = method != MonitorMethod::Plain;
        let requests: serde_json::Map<String, Json> = self
            .tables
            .iter()
            .map(|(t, m)| (t.clone(), Json::Array(vec![m.to_json(with_conditions)])))
            .collect();
        let mut params = vec![json!(database), monitor_id.clone(), Json::Object(requests)];
        if method == MonitorMethod::CondSince {
            params.push(json!(last_txn_id
                .map(|u| u.to_string())
                .unwrap_or_else(|| ZERO_TXN_ID.to_owned())));
        }
        Json::Array(params)
    }
}

/// Which notification format a JSON table-updates object is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpdateFormat {
    /// `<table-updates>` of RFC 7047 (`old`/`new`).
    Update,
    /// `<table-updates2>` (`initial`/`insert`/`modify`/`delete`), used by update2 and update3.
    Update2,
}

impl TableUpdates {
    /// Decodes a `<table-updates>` or `<table-updates2>` object, taking ownership so row
    /// strings are moved rather than copied.
    pub fn decode(json: Json, format: UpdateFormat) -> Result<TableUpdates> {
        let Json::Object(tables) = json else {
            return Err(Error::Decode(format!("table updates must be an object, got {json}")));
        };
        let mut out = TableUpdates::default();
        for (table, rows) in tables {
            let Json::Object(rows) = rows else {
                return Err(Error::Decode(format!("updates of table {table} must be an object")));
            };
            let mut changes = BTreeMap::new();
            for (uuid, change) in rows {
                let uuid = Uuid::parse(&uuid)?;
                let change = match format {
                    UpdateFormat::Update => decode_row_update(change),
                    UpdateFormat::Update2 => decode_row_update2(change),
                }
                .map_err(|e| Error::Decode(format!("update of {table} row {uuid}: {e}")))?;
                changes.insert(uuid, change);
            }
            out.tables.insert(table, changes);
        }
        Ok(out)
    }

    /// Number of row changes over all tables.
    pub fn len(&self) -> usize {
        self.tables.values().map(BTreeMap::len).sum()
    }
    pub fn is_empty(&self) -> bool {
        self.tables.values().all(BTreeMap::is_empty)
    }
}

impl TableUpdates {
    /// Decodes a `<table-updates>` or `<table-updates2>` straight from JSON text, without an
    /// intermediate `serde_json::Value` (the fast path for big initial dumps).
    pub fn from_json_str(text: &str, format: UpdateFormat) -> Result<TableUpdates> {
        let mut de = serde_json::Deserializer::from_str(text);
        let tables = match format {
            UpdateFormat::Update => TablesDe::<false>::deserialize(&mut de).map(|t| t.0),
            UpdateFormat::Update2 => TablesDe::<true>::deserialize(&mut de).map(|t| t.0),
        }
        .and_then(|t| de.end().map(|()| t))
        .map_err(|e| Error::Decode(format!("table updates: {e}")))?;
        Ok(TableUpdates {
            tables,
            last_txn_id: None,
        })
    }
}

/// `<table-updates>` (`V2 = false`) or `<table-updates2>` (`V2 = true`), deserialized directly.
pub(crate) struct TablesDe<const V2: bool>(pub(crate) BTreeMap<String, BTreeMap<Uuid, RowChange>>);

impl<'de, const V2: bool> Deserialize<'de> for TablesDe<V2> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        TablesSeed::<V2> { filter: None }.deserialize(d).map(TablesDe)
    }
}

/// Decodes `<table-updates>`/`<table-updates2>` for one replica: the tables its filter never
/// keeps are skipped with [`de::IgnoredAny`] (still checked to be JSON, never built into rows),
/// which is most of the cost a farm of filtered chassis would otherwise pay per update.
pub(crate) struct TablesSeed<'f, const V2: bool> {
    pub(crate) filter: Option<&'f dyn RowFilter>,
}

impl<'de, const V2: bool> DeserializeSeed<'de> for TablesSeed<'_, V2> {
    type Value = BTreeMap<String, BTreeMap<Uuid, RowChange>>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Self::Value, D::Error> {
        struct V<'f, const V2: bool>(Option<&'f dyn RowFilter>);
        impl<'de, const V2: bool> Visitor<'de> for V<'_, V2> {
            type Value = BTreeMap<String, BTreeMap<Uuid, RowChange>>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object of table updates")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Self::Value, A::Error> {
                let mut tables = BTreeMap::new();
                while let Some(table) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    if self.0.is_some_and(|f| !f.keeps_table(&table)) {
                        map.next_value::<de::IgnoredAny>()?;
                        continue;
                    }
                    let rows = map.next_value::<RowsDe<V2>>()?;
                    tables.insert(table.into_owned(), rows.0);
                }
                Ok(tables)
            }
        }
        d.deserialize_map(V::<V2>(self.filter))
    }
}

/// The `params` of an `update`/`update2`/`update3` notification, decoded in one pass.
pub(crate) struct UpdateParams {
    pub(crate) monitor_id: Json,
    /// update3 only: the transaction id after this update.
    pub(crate) txn_id: Option<Uuid>,
    pub(crate) tables: BTreeMap<String, BTreeMap<Uuid, RowChange>>,
}

/// Decodes notification params `[monitor-id, (last-txn-id,) table-updates]`. The monitor id
/// comes first on the wire, so `filter_of` can pick the replica's filter before the (possibly
/// large) updates are read, and tables the filter never keeps are skipped.
pub(crate) fn decode_update_params(
    text: &str,
    notification: MonitorMethod,
    filter_of: impl FnOnce(&Json) -> Option<SharedFilter>,
) -> serde_json::Result<UpdateParams> {
    struct V<F>(MonitorMethod, F);
    impl<'de, F: FnOnce(&Json) -> Option<SharedFilter>> Visitor<'de> for V<F> {
        type Value = UpdateParams;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("notification params [monitor-id, (txn-id,) table-updates]")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<UpdateParams, A::Error> {
            let V(method, filter_of) = self;
            let missing = |n| de::Error::invalid_length(n, &"the notification's parameters");
            let monitor_id: Json = seq.next_element()?.ok_or_else(|| missing(0))?;
            let txn_id = match method {
                MonitorMethod::CondSince => Some(seq.next_element::<Uuid>()?.ok_or_else(|| missing(1))?),
                _ => None,
            };
            let filter = filter_of(&monitor_id);
            let filter = filter.as_deref();
            let tables = match method {
                MonitorMethod::Plain => seq.next_element_seed(TablesSeed::<false> { filter })?,
                _ => seq.next_element_seed(TablesSeed::<true> { filter })?,
            }
            .ok_or_else(|| missing(if txn_id.is_some() { 2 } else { 1 }))?;
            if seq.next_element::<de::IgnoredAny>()?.is_some() {
                return Err(de::Error::custom("too many parameters"));
            }
            Ok(UpdateParams {
                monitor_id,
                txn_id,
                tables,
            })
        }
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let params = de.deserialize_seq(V(notification, filter_of))?;
    de.end()?;
    Ok(params)
}

/// A monitor request's reply: `found` and the transaction id (`monitor_cond_since` only) and
/// the initial contents (or, when resuming, the changes since that id).
pub(crate) struct MonitorReply {
    pub(crate) found: bool,
    pub(crate) txn_id: Option<Uuid>,
    pub(crate) tables: BTreeMap<String, BTreeMap<Uuid, RowChange>>,
}

/// Decodes the reply to a monitor request made with `method`, skipping tables `filter` never
/// keeps.
pub(crate) fn decode_monitor_reply(
    text: &str,
    method: MonitorMethod,
    filter: Option<&dyn RowFilter>,
) -> serde_json::Result<MonitorReply> {
    struct Since<'f>(Option<&'f dyn RowFilter>);
    impl<'de> Visitor<'de> for Since<'_> {
        type Value = MonitorReply;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a monitor_cond_since reply [found, last-txn-id, table-updates2]")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<MonitorReply, A::Error> {
            let missing = |n| de::Error::invalid_length(n, &"three elements");
            let found: bool = seq.next_element()?.ok_or_else(|| missing(0))?;
            let txn_id: Uuid = seq.next_element()?.ok_or_else(|| missing(1))?;
            let tables = seq
                .next_element_seed(TablesSeed::<true> { filter: self.0 })?
                .ok_or_else(|| missing(2))?;
            if seq.next_element::<de::IgnoredAny>()?.is_some() {
                return Err(de::Error::custom("too many elements"));
            }
            Ok(MonitorReply {
                found,
                txn_id: Some(txn_id),
                tables,
            })
        }
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let reply = match method {
        MonitorMethod::CondSince => de.deserialize_seq(Since(filter))?,
        MonitorMethod::Cond => MonitorReply {
            found: false,
            txn_id: None,
            tables: TablesSeed::<true> { filter }.deserialize(&mut de)?,
        },
        MonitorMethod::Plain => MonitorReply {
            found: false,
            txn_id: None,
            tables: TablesSeed::<false> { filter }.deserialize(&mut de)?,
        },
    };
    de.end()?;
    Ok(reply)
}

struct RowsDe<const V2: bool>(BTreeMap<Uuid, RowChange>);

impl<'de, const V2: bool> Deserialize<'de> for RowsDe<V2> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V<const V2: bool>;
        impl<'de, const V2: bool> Visitor<'de> for V<V2> {
            type Value = RowsDe<V2>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object of row updates keyed by UUID")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<RowsDe<V2>, A::Error> {
                let mut rows = BTreeMap::new();
                while let Some(uuid) = map.next_key::<Uuid>()? {
                    let change = if V2 {
                        map.next_value::<Change2De>()?.0
                    } else {
                        map.next_value::<Change1De>()?.0
                    };
                    rows.insert(uuid, change);
                }
                Ok(RowsDe(rows))
            }
        }
        d.deserialize_map(V::<V2>)
    }
}

/// `<row-update2>`: exactly one of initial/insert/modify/delete.
struct Change2De(RowChange);

impl<'de> Deserialize<'de> for Change2De {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Change2De;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a row update2 object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Change2De, A::Error> {
                let Some(kind) = map.next_key::<std::borrow::Cow<'de, str>>()? else {
                    return Err(de::Error::custom("empty row update2"));
                };
                let change = match &*kind {
                    "initial" | "insert" => RowChange::Insert(map.next_value()?),
                    "modify" => RowChange::Modify(RowDiff::Diff2(map.next_value()?)),
                    "delete" => {
                        map.next_value::<de::IgnoredAny>()?;
                        RowChange::Delete
                    }
                    other => return Err(de::Error::custom(format!("unknown row update2 kind {other:?}"))),
                };
                if map.next_key::<de::IgnoredAny>()?.is_some() {
                    return Err(de::Error::custom("row update2 with more than one member"));
                }
                Ok(Change2De(change))
            }
        }
        d.deserialize_map(V)
    }
}

/// `<row-update>`: `old` and/or `new`.
struct Change1De(RowChange);

impl<'de> Deserialize<'de> for Change1De {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Wire {
            #[serde(default)]
            old: Option<de::IgnoredAny>,
            #[serde(default)]
            new: Option<Row>,
        }
        let w = Wire::deserialize(d)?;
        Ok(Change1De(match (w.old, w.new) {
            (_, None) => RowChange::Delete,
            (None, Some(new)) => RowChange::Insert(new),
            (Some(_), Some(new)) => RowChange::Modify(RowDiff::New(new)),
        }))
    }
}

fn decode_row_update(change: Json) -> Result<RowChange> {
    let Json::Object(mut o) = change else {
        return Err(Error::Decode("a row update must be an object".into()));
    };
    let new = o.remove("new");
    let old = o.remove("old");
    Ok(match (old, new) {
        (_, None) => RowChange::Delete,
        (None, Some(new)) => RowChange::Insert(Row::from_json_owned(new)?),
        (Some(_), Some(new)) => RowChange::Modify(RowDiff::New(Row::from_json_owned(new)?)),
    })
}

fn decode_row_update2(change: Json) -> Result<RowChange> {
    let Json::Object(o) = change else {
        return Err(Error::Decode("a row update2 must be an object".into()));
    };
    let Some((kind, row)) = o.into_iter().next() else {
        return Err(Error::Decode("empty row update2".into()));
    };
    Ok(match kind.as_str() {
        "initial" | "insert" => RowChange::Insert(Row::from_json_owned(row)?),
        "modify" => RowChange::Modify(RowDiff::Diff2(Row::from_json_owned(row)?)),
        "delete" => RowChange::Delete,
        other => return Err(Error::Decode(format!("unknown row update2 kind {other:?}"))),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    const U1: &str = "11111111-1111-1111-1111-111111111111";
    const U2: &str = "22222222-2222-2222-2222-222222222222";
    const U3: &str = "33333333-3333-3333-3333-333333333333";

    #[test]
    fn decodes_update2() {
        let j = json!({"T": {
            U1: {"initial": {"name": "a"}},
            U2: {"modify": {"tags": ["set", ["x"]]}},
            U3: {"delete": null},
        }});
        let u = TableUpdates::decode(j, UpdateFormat::Update2).unwrap();
        let t = &u.tables["T"];
        assert_eq!(
            t[&Uuid::parse(U1).unwrap()],
            RowChange::Insert(Row::new().with("name", "a"))
        );
        assert_eq!(
            t[&Uuid::parse(U2).unwrap()],
            RowChange::Modify(RowDiff::Diff2(Row::new().with("tags", Value::set(["x"]))))
        );
        assert_eq!(t[&Uuid::parse(U3).unwrap()], RowChange::Delete);
        assert_eq!(u.len(), 3);
    }

    #[test]
    fn decodes_update() {
        let j = json!({"T": {
            U1: {"new": {"name": "a"}},
            U2: {"old": {"name": "b"}, "new": {"name": "c", "n": 1}},
            U3: {"old": {"name": "d"}},
        }});
        let u = TableUpdates::decode(j, UpdateFormat::Update).unwrap();
        let t = &u.tables["T"];
        assert!(matches!(t[&Uuid::parse(U1).unwrap()], RowChange::Insert(_)));
        assert!(matches!(
            t[&Uuid::parse(U2).unwrap()],
            RowChange::Modify(RowDiff::New(_))
        ));
        assert_eq!(t[&Uuid::parse(U3).unwrap()], RowChange::Delete);
    }

    #[test]
    fn text_decoding_equals_value_decoding() {
        let j2 = json!({"T": {
            U1: {"initial": {"name": "a", "m": ["map", [["k", "v"]]]}},
            U2: {"modify": {"tags": ["set", ["x"]]}},
            U3: {"delete": null},
        }, "E": {}});
        let j1 = json!({"T": {
            U1: {"new": {"name": "a"}},
            U2: {"old": {"name": "b"}, "new": {"name": "c", "n": 1}},
            U3: {"old": {"name": "d"}},
        }});
        for (j, f) in [(j2, UpdateFormat::Update2), (j1, UpdateFormat::Update)] {
            let text = j.to_string();
            assert_eq!(
                TableUpdates::from_json_str(&text, f).unwrap(),
                TableUpdates::decode(j, f).unwrap()
            );
        }
        for bad in [
            r#"[]"#,
            r#"{"T": {"x": {"insert": {}}}}"#,
            r#"{"T": {"11111111-1111-1111-1111-111111111111": {"bogus": {}}}}"#,
            r#"{"T": {"11111111-1111-1111-1111-111111111111": {"insert": {}, "delete": null}}}"#,
            r#"{} x"#,
        ] {
            assert!(
                TableUpdates::from_json_str(bad, UpdateFormat::Update2).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn malformed_updates_are_errors() {
        assert!(TableUpdates::decode(json!([]), UpdateFormat::Update2).is_err());
        assert!(TableUpdates::decode(json!({"T": {"not-a-uuid": {"insert": {}}}}), UpdateFormat::Update2).is_err());
        assert!(TableUpdates::decode(json!({"T": {U1: {"bogus": {}}}}), UpdateFormat::Update2).is_err());
    }

    #[test]
    fn request_params() {
        let req = MonitorRequest::new().table(
            "T",
            TableMonitor::all()
                .columns(["a"])
                .conditions(vec![Condition::eq("a", 1), Condition::Constant(false)]),
        );
        let id = json!("m1");
        assert_eq!(
            req.to_params(MonitorMethod::CondSince, "DB", &id, None),
            json!(["DB", "m1", {"T": [{"columns": ["a"], "where": [["a", "==", 1], false]}]}, ZERO_TXN_ID])
        );
        assert_eq!(
            req.to_params(MonitorMethod::Plain, "DB", &id, None),
            json!(["DB", "m1", {"T": [{"columns": ["a"]}]}])
        );
    }

    struct OnlyT;

    impl RowFilter for OnlyT {
        fn keeps_table(&self, table: &str) -> bool {
            table == "T"
        }
        fn keeps(&self, _: &str, _: &Row) -> bool {
            true
        }
    }

    #[test]
    fn filtered_decoding_skips_tables_nobody_keeps() {
        let params = json!(["m1", U1, {
            "T": {U1: {"insert": {"name": "a"}}},
            "Big": {U2: {"insert": {"flows": ["set", [1, 2, 3]]}}},
        }])
        .to_string();
        let filter: SharedFilter = Arc::new(OnlyT);
        let mut asked = None;
        let p = decode_update_params(&params, MonitorMethod::CondSince, |id| {
            asked = Some(id.clone());
            Some(filter.clone())
        })
        .unwrap();
        assert_eq!(asked, Some(json!("m1")));
        assert_eq!(p.txn_id, Some(Uuid::parse(U1).unwrap()));
        assert_eq!(p.tables.keys().collect::<Vec<_>>(), vec!["T"]);
        let unfiltered = decode_update_params(&params, MonitorMethod::CondSince, |_| None).unwrap();
        assert_eq!(unfiltered.tables.len(), 2);
        // Skipped tables are still checked to be JSON; the parameter count is checked too.
        let bad = r#"["m1", "11111111-1111-1111-1111-111111111111", {"Big": {"x": [}}]"#;
        assert!(decode_update_params(bad, MonitorMethod::CondSince, |_| Some(filter.clone())).is_err());
        assert!(decode_update_params(r#"["m1", {}, 1]"#, MonitorMethod::Cond, |_| None).is_err());
        assert!(decode_update_params(r#"["m1"]"#, MonitorMethod::Plain, |_| None).is_err());

        let reply = json!([true, U2, {"Big": {U3: {"initial": {}}}, "T": {}}]).to_string();
        let r = decode_monitor_reply(&reply, MonitorMethod::CondSince, Some(&OnlyT)).unwrap();
        assert!(r.found);
        assert_eq!(r.txn_id, Some(Uuid::parse(U2).unwrap()));
        assert_eq!(r.tables.keys().collect::<Vec<_>>(), vec!["T"]);
        let plain = json!({"Big": {U3: {"new": {}}}}).to_string();
        assert!(decode_monitor_reply(&plain, MonitorMethod::Plain, Some(&OnlyT))
            .unwrap()
            .tables
            .is_empty());
    }
}
