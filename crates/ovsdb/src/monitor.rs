//! What to monitor (tables, columns, conditions) and the updates the server sends
//! (`update`, `update2`, `update3`), decoded into one form.
//!
//! Must not know: any schema's table names.

use std::collections::BTreeMap;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::{json, Value as Json};

use crate::condition::Condition;
#[cfg(test)]
use crate::datum::Value;
use crate::datum::{Row, Uuid};
use crate::error::{Error, Result};
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
        struct V<const V2: bool>;
        impl<'de, const V2: bool> Visitor<'de> for V<V2> {
            type Value = TablesDe<V2>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object of table updates")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<TablesDe<V2>, A::Error> {
                let mut tables = BTreeMap::new();
                while let Some(table) = map.next_key::<String>()? {
                    let rows = map.next_value::<RowsDe<V2>>()?;
                    tables.insert(table, rows.0);
                }
                Ok(TablesDe(tables))
            }
        }
        d.deserialize_map(V::<V2>)
    }
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
}
