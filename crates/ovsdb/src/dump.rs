//! A consistent whole-database dump as one JSON document: one read-only transaction with a
//! `select` of every table, rows kept exactly as the server sent them.
//!
//! The layout is the one `neutron-reference/nbdump.py` writes, so dumps of any writer compare
//! with those reference files: `{"database", "schema_version", "tables": {TABLE: [ROW, ...]}}`
//! with every table (empty ones too), rows sorted by `_uuid`, keys sorted. Callers add their
//! own keys (e.g. `step`, `command`) with [`with_keys`] and write it with [`to_pretty_string`].
//!
//! Must not know: any schema's table names, what the dump is for.

use serde_json::{Map, Value as Json};

use crate::client::Client;
use crate::condition::Condition;
use crate::error::{Error, Result};
use crate::txn::Transaction;

/// Dumps every table of `database` in one transaction.
pub async fn dump(client: &Client, database: &str) -> Result<Json> {
    let schema = client.get_schema(database).await?;
    let tables: Vec<String> = schema.tables.keys().cloned().collect();
    let mut txn = Transaction::new(database);
    for table in &tables {
        txn.select(table.clone(), Vec::<Condition>::new(), None);
    }
    let result = client.transact(txn).await?;
    let mut out = Map::new();
    for (table, op) in tables.iter().zip(result.results.iter()) {
        let rows = op
            .rows
            .as_ref()
            .ok_or_else(|| Error::Decode(format!("select on {table} returned no rows")))?;
        let mut rows: Vec<Json> = rows.iter().map(|r| sorted(r.to_json())).collect();
        rows.sort_by(|a, b| uuid_of(a).cmp(uuid_of(b)));
        out.insert(table.clone(), Json::Array(rows));
    }
    let mut doc = Map::new();
    doc.insert("database".into(), Json::String(database.to_owned()));
    doc.insert("schema_version".into(), Json::String(schema.version.clone()));
    doc.insert("tables".into(), Json::Object(sort_map(out)));
    Ok(Json::Object(sort_map(doc)))
}

fn uuid_of(row: &Json) -> &str {
    row.get("_uuid")
        .and_then(|u| u.get(1))
        .and_then(Json::as_str)
        .unwrap_or("")
}

fn sort_map(m: Map<String, Json>) -> Map<String, Json> {
    let mut entries: Vec<(String, Json)> = m.into_iter().collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    entries.into_iter().collect()
}

fn sorted(j: Json) -> Json {
    match j {
        Json::Object(m) => Json::Object(sort_map(m.into_iter().map(|(k, v)| (k, sorted(v))).collect())),
        Json::Array(a) => Json::Array(a.into_iter().map(sorted).collect()),
        other => other,
    }
}

/// Adds top-level keys (e.g. `step`, `command`) keeping the keys sorted.
pub fn with_keys<'a>(doc: Json, keys: impl IntoIterator<Item = (&'a str, Json)>) -> Json {
    match doc {
        Json::Object(mut m) => {
            for (k, v) in keys {
                m.insert(k.to_owned(), v);
            }
            Json::Object(sort_map(m))
        }
        other => other,
    }
}

/// Serializes like Python's `json.dump(doc, indent=1, sort_keys=True)` plus a final newline
/// (the reference files' exact bytes, given sorted keys).
pub fn to_pretty_string(doc: &Json) -> String {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b" ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    serde::Serialize::serialize(&sorted(doc.clone()), &mut ser).expect("a JSON value always serializes");
    let mut s = String::from_utf8(buf).expect("serde_json writes UTF-8");
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pretty_form_matches_python_indent_1() {
        let doc: Json = serde_json::from_str(r#"{"b": [1, {"y": [], "x": ["set", []]}], "a": "s"}"#).unwrap();
        assert_eq!(
            to_pretty_string(&doc),
            "{\n \"a\": \"s\",\n \"b\": [\n  1,\n  {\n   \"x\": [\n    \"set\",\n    []\n   ],\n   \"y\": []\n  }\n ]\n}\n"
        );
    }
}
