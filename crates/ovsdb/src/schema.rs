//! Database schemas (RFC 7047 §3.2) and the client-side checks made against them.
//!
//! Must not know: any particular schema (OVN's included). `_Server` is handled by the client.

use std::collections::BTreeMap;

use serde_json::Value as Json;

use crate::datum::{Atom, Row, Value};
use crate::error::{Error, Result};
use crate::txn::Operation;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AtomicType {
    Integer,
    Real,
    Boolean,
    String,
    Uuid,
}

/// `<base-type>`: an atomic type plus its constraints.
#[derive(Clone, Debug, PartialEq)]
pub struct BaseType {
    pub atomic: AtomicType,
    pub enum_values: Option<Vec<Atom>>,
    pub min_integer: Option<i64>,
    pub max_integer: Option<i64>,
    pub min_real: Option<f64>,
    pub max_real: Option<f64>,
    pub min_length: Option<u64>,
    pub max_length: Option<u64>,
    /// For uuid atoms: the table referred to, and whether the reference is strong.
    pub ref_table: Option<String>,
    pub ref_strong: bool,
}

/// `<type>`: key, optional value (maps), min and max (`None` = "unlimited").
#[derive(Clone, Debug, PartialEq)]
pub struct ColumnType {
    pub key: BaseType,
    pub value: Option<BaseType>,
    pub min: u64,
    pub max: Option<u64>,
}

impl ColumnType {
    pub fn is_map(&self) -> bool {
        self.value.is_some()
    }
    pub fn is_set(&self) -> bool {
        self.value.is_none() && !(self.min == 1 && self.max == Some(1))
    }
    pub fn is_scalar(&self) -> bool {
        self.value.is_none() && self.min == 1 && self.max == Some(1)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct ColumnSchema {
    pub name: String,
    pub column_type: ColumnType,
    pub ephemeral: bool,
    pub mutable: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TableSchema {
    pub name: String,
    pub columns: BTreeMap<String, ColumnSchema>,
    pub is_root: bool,
    pub max_rows: Option<u64>,
    pub indexes: Vec<Vec<String>>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DatabaseSchema {
    pub name: String,
    pub version: String,
    pub tables: BTreeMap<String, TableSchema>,
    /// The schema as the server sent it.
    pub raw: Json,
}

impl DatabaseSchema {
    /// Parses a schema from its JSON (the reply to `get_schema`, or an `.ovsschema` file).
    pub fn from_json(_json: &Json) -> Result<Self> {
        todo!("ovsdb helper: schema parsing")
    }
    pub fn table(&self, name: &str) -> Result<&TableSchema> {
        self.tables.get(name).ok_or_else(|| {
            Error::Schema(format!(
                "database {} has no table {name:?}{}",
                self.name,
                suggest(name, self.tables.keys().map(String::as_str))
            ))
        })
    }
    /// Checks an operation against the schema: tables, columns (with a close-match
    /// suggestion), atom types, enums, integer/real ranges, string lengths, set sizes.
    pub fn check_operation(&self, _op: &Operation) -> Result<()> {
        todo!("ovsdb helper: client-side checks")
    }
    /// Checks one row destined to `table`.
    pub fn check_row(&self, _table: &str, _row: &Row) -> Result<()> {
        todo!("ovsdb helper: client-side checks")
    }
    /// Checks one value against a column type.
    pub fn check_value(&self, _table: &str, _column: &str, _value: &Value) -> Result<()> {
        todo!("ovsdb helper: client-side checks")
    }
}

/// ` (did you mean "X"?)` for the closest candidate by edit distance, or "".
pub fn suggest<'a>(wanted: &str, candidates: impl Iterator<Item = &'a str>) -> String {
    let best = candidates
        .map(|c| (edit_distance(&wanted.to_lowercase(), &c.to_lowercase()), c))
        .min_by_key(|(d, _)| *d);
    match best {
        Some((d, c)) if d <= wanted.len().max(3) / 2 + 1 => format!(" (did you mean {c:?}?)"),
        _ => String::new(),
    }
}

/// Levenshtein distance.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}
