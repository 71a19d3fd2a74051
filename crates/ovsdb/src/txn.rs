//! Transactions as values: build the operations, then send them with
//! [`Client::transact`](crate::Client::transact). One [`Transaction`] is one `transact` RPC.
//!
//! ```
//! use ovsdb::{Transaction, Row, Value, Condition};
//! let mut txn = Transaction::new("OVN_Northbound");
//! let ls = txn.insert("Logical_Switch", Row::new().with("name", "sw0"));
//! txn.mutate("NB_Global", vec![], vec![ovsdb::Mutation::insert("external_ids",
//!     Value::string_map([("owner", "me")]))]);
//! txn.comment("create sw0");
//! assert_eq!(txn.operations().len(), 3);
//! # let _ = ls;
//! ```

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use serde_json::{json, Value as Json};

use crate::condition::Condition;
use crate::datum::{Row, Value};

/// A mutator of RFC 7047 §5.1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mutator {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Insert,
    Delete,
}

impl Mutator {
    pub fn as_str(self) -> &'static str {
        match self {
            Mutator::Add => "+=",
            Mutator::Sub => "-=",
            Mutator::Mul => "*=",
            Mutator::Div => "/=",
            Mutator::Mod => "%=",
            Mutator::Insert => "insert",
            Mutator::Delete => "delete",
        }
    }
}

/// `[column, mutator, value]`
#[derive(Clone, Debug, PartialEq)]
pub struct Mutation {
    pub column: String,
    pub mutator: Mutator,
    pub value: Value,
}

impl Mutation {
    pub fn new(column: impl Into<String>, mutator: Mutator, value: impl Into<Value>) -> Self {
        Mutation {
            column: column.into(),
            mutator,
            value: value.into(),
        }
    }
    /// Adds elements to a set, or key/value pairs to a map (existing keys are kept).
    pub fn insert(column: impl Into<String>, value: impl Into<Value>) -> Self {
        Self::new(column, Mutator::Insert, value)
    }
    /// Removes elements from a set, or from a map by pairs or by a set of keys.
    pub fn delete(column: impl Into<String>, value: impl Into<Value>) -> Self {
        Self::new(column, Mutator::Delete, value)
    }
    /// The mutation as a JSON value (the wire form, via its `Serialize` impl).
    pub fn to_json(&self) -> Json {
        serde_json::to_value(self).expect("a mutation always serializes")
    }
}

/// One operation of a transaction (RFC 7047 §5.2).
#[derive(Clone, Debug, PartialEq)]
pub enum Operation {
    Insert {
        table: String,
        row: Row,
        uuid_name: Option<String>,
    },
    Select {
        table: String,
        conditions: Vec<Condition>,
        columns: Option<Vec<String>>,
    },
    Update {
        table: String,
        conditions: Vec<Condition>,
        row: Row,
    },
    Mutate {
        table: String,
        conditions: Vec<Condition>,
        mutations: Vec<Mutation>,
    },
    Delete {
        table: String,
        conditions: Vec<Condition>,
    },
    Wait {
        table: String,
        conditions: Vec<Condition>,
        columns: Vec<String>,
        /// true: wait until the rows are equal (`==`); false: until they differ (`!=`).
        until_equal: bool,
        rows: Vec<Row>,
        timeout_ms: Option<u64>,
    },
    Commit {
        durable: bool,
    },
    Abort,
    Comment(String),
    Assert {
        lock: String,
    },
}

impl Operation {
    /// The table this operation touches, if any.
    pub fn table(&self) -> Option<&str> {
        match self {
            Operation::Insert { table, .. }
            | Operation::Select { table, .. }
            | Operation::Update { table, .. }
            | Operation::Mutate { table, .. }
            | Operation::Delete { table, .. }
            | Operation::Wait { table, .. } => Some(table),
            _ => None,
        }
    }
    /// A short human summary, e.g. `insert into Logical_Switch`, used in errors.
    pub fn summary(&self) -> String {
        match self {
            Operation::Insert { table, .. } => format!("insert into {table}"),
            Operation::Select { table, .. } => format!("select from {table}"),
            Operation::Update { table, .. } => format!("update {table}"),
            Operation::Mutate { table, .. } => format!("mutate {table}"),
            Operation::Delete { table, .. } => format!("delete from {table}"),
            Operation::Wait { table, .. } => format!("wait on {table}"),
            Operation::Commit { .. } => "commit".into(),
            Operation::Abort => "abort".into(),
            Operation::Comment(_) => "comment".into(),
            Operation::Assert { lock } => format!("assert lock {lock}"),
        }
    }
    /// The operation as a JSON value (the wire form, via its `Serialize` impl).
    pub fn to_json(&self) -> Json {
        serde_json::to_value(self).expect("an operation always serializes")
    }
}

// Serialized straight to the wire (no intermediate `serde_json::Value`), field for field the
// same as `to_json`: a client sending thousands of small transactions spends its time here.

impl Serialize for Mutation {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        (&self.column, self.mutator.as_str(), &self.value).serialize(s)
    }
}

impl Serialize for Operation {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        match self {
            Operation::Insert { table, row, uuid_name } => {
                m.serialize_entry("op", "insert")?;
                m.serialize_entry("table", table)?;
                m.serialize_entry("row", row)?;
                if let Some(n) = uuid_name {
                    m.serialize_entry("uuid-name", n)?;
                }
            }
            Operation::Select {
                table,
                conditions,
                columns,
            } => {
                m.serialize_entry("op", "select")?;
                m.serialize_entry("table", table)?;
                m.serialize_entry("where", conditions)?;
                if let Some(c) = columns {
                    m.serialize_entry("columns", c)?;
                }
            }
            Operation::Update { table, conditions, row } => {
                m.serialize_entry("op", "update")?;
                m.serialize_entry("table", table)?;
                m.serialize_entry("where", conditions)?;
                m.serialize_entry("row", row)?;
            }
            Operation::Mutate {
                table,
                conditions,
                mutations,
            } => {
                m.serialize_entry("op", "mutate")?;
                m.serialize_entry("table", table)?;
                m.serialize_entry("where", conditions)?;
                m.serialize_entry("mutations", mutations)?;
            }
            Operation::Delete { table, conditions } => {
                m.serialize_entry("op", "delete")?;
                m.serialize_entry("table", table)?;
                m.serialize_entry("where", conditions)?;
            }
            Operation::Wait {
                table,
                conditions,
                columns,
                until_equal,
                rows,
                timeout_ms,
            } => {
                m.serialize_entry("op", "wait")?;
                m.serialize_entry("table", table)?;
                m.serialize_entry("where", conditions)?;
                m.serialize_entry("columns", columns)?;
                m.serialize_entry("until", if *until_equal { "==" } else { "!=" })?;
                m.serialize_entry("rows", rows)?;
                if let Some(t) = timeout_ms {
                    m.serialize_entry("timeout", t)?;
                }
            }
            Operation::Commit { durable } => {
                m.serialize_entry("op", "commit")?;
                m.serialize_entry("durable", durable)?;
            }
            Operation::Abort => m.serialize_entry("op", "abort")?,
            Operation::Comment(c) => {
                m.serialize_entry("op", "comment")?;
                m.serialize_entry("comment", c)?;
            }
            Operation::Assert { lock } => {
                m.serialize_entry("op", "assert")?;
                m.serialize_entry("lock", lock)?;
            }
        }
        m.end()
    }
}

/// The `params` of a `transact` request, serialized without building JSON values
/// (see [`Transaction::params`]).
pub struct TransactParams<'a>(&'a Transaction);

impl Serialize for TransactParams<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.operations.len() + 1))?;
        seq.serialize_element(&self.0.database)?;
        for op in &self.0.operations {
            seq.serialize_element(op)?;
        }
        seq.end()
    }
}

/// An ordered list of operations for one database, sent as one `transact` request.
#[derive(Clone, Debug, PartialEq)]
pub struct Transaction {
    database: String,
    operations: Vec<Operation>,
    next_name: usize,
}

impl Transaction {
    pub fn new(database: impl Into<String>) -> Self {
        Transaction {
            database: database.into(),
            operations: Vec::new(),
            next_name: 0,
        }
    }
    pub fn database(&self) -> &str {
        &self.database
    }
    pub fn operations(&self) -> &[Operation] {
        &self.operations
    }
    pub fn into_operations(self) -> Vec<Operation> {
        self.operations
    }
    pub fn is_empty(&self) -> bool {
        self.operations.is_empty()
    }
    /// Appends any operation.
    pub fn push(&mut self, op: Operation) -> &mut Self {
        self.operations.push(op);
        self
    }
    /// Inserts a row under a generated uuid-name and returns a reference to it
    /// (a `named-uuid` value) usable in later operations of this transaction.
    pub fn insert(&mut self, table: impl Into<String>, row: Row) -> Value {
        let name = generated_name(self.next_name);
        self.next_name += 1;
        self.insert_named(table, row, name)
    }
    /// Inserts a row under a uuid-name of the caller's choosing (must match `[a-zA-Z_][a-zA-Z0-9_]*`).
    pub fn insert_named(&mut self, table: impl Into<String>, row: Row, uuid_name: impl Into<String>) -> Value {
        let uuid_name = uuid_name.into();
        self.operations.push(Operation::Insert {
            table: table.into(),
            row,
            uuid_name: Some(uuid_name.clone()),
        });
        Value::named_uuid(uuid_name)
    }
    pub fn select(
        &mut self,
        table: impl Into<String>,
        conditions: Vec<Condition>,
        columns: Option<Vec<String>>,
    ) -> &mut Self {
        self.push(Operation::Select {
            table: table.into(),
            conditions,
            columns,
        })
    }
    pub fn update(&mut self, table: impl Into<String>, conditions: Vec<Condition>, row: Row) -> &mut Self {
        self.push(Operation::Update {
            table: table.into(),
            conditions,
            row,
        })
    }
    pub fn mutate(
        &mut self,
        table: impl Into<String>,
        conditions: Vec<Condition>,
        mutations: Vec<Mutation>,
    ) -> &mut Self {
        self.push(Operation::Mutate {
            table: table.into(),
            conditions,
            mutations,
        })
    }
    pub fn delete(&mut self, table: impl Into<String>, conditions: Vec<Condition>) -> &mut Self {
        self.push(Operation::Delete {
            table: table.into(),
            conditions,
        })
    }
    /// `wait` with `timeout 0` and `until ==`: the optimistic-concurrency guard (python IDL's `verify`).
    pub fn verify(
        &mut self,
        table: impl Into<String>,
        conditions: Vec<Condition>,
        columns: Vec<String>,
        rows: Vec<Row>,
    ) -> &mut Self {
        self.push(Operation::Wait {
            table: table.into(),
            conditions,
            columns,
            until_equal: true,
            rows,
            timeout_ms: Some(0),
        })
    }
    pub fn comment(&mut self, text: impl Into<String>) -> &mut Self {
        self.push(Operation::Comment(text.into()))
    }
    pub fn assert_lock(&mut self, lock: impl Into<String>) -> &mut Self {
        self.push(Operation::Assert { lock: lock.into() })
    }
    /// The same `params` as [`Transaction::to_params`], serializable directly to the wire.
    pub fn params(&self) -> TransactParams<'_> {
        TransactParams(self)
    }
    /// The `params` of the `transact` request: `[database, op, op, ...]`.
    pub fn to_params(&self) -> Json {
        let mut v = vec![json!(self.database)];
        v.extend(self.operations.iter().map(Operation::to_json));
        Json::Array(v)
    }
}

/// `row<n>`, written without the formatting machinery: this runs for every insert.
fn generated_name(n: usize) -> String {
    let mut digits = [0u8; 20];
    let (mut n, mut start) = (n, digits.len());
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let mut name = String::with_capacity(3 + digits.len() - start);
    name.push_str("row");
    name.extend(digits[start..].iter().map(|&d| char::from(d)));
    name
}

/// The result of one successful operation.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OperationResult {
    /// `insert`: the new row's UUID.
    pub uuid: Option<crate::datum::Uuid>,
    /// `update`, `mutate`, `delete`: how many rows matched.
    pub count: Option<u64>,
    /// `select`: the rows.
    pub rows: Option<Vec<Row>>,
}

/// The results of a committed transaction, one per operation, in order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TransactionResult {
    pub results: Vec<OperationResult>,
    /// Operations of the request, kept so `inserted()` can map uuid-names to UUIDs.
    pub uuid_names: Vec<Option<String>>,
}

impl TransactionResult {
    /// The UUID the server gave the row inserted under `named` (a value from [`Transaction::insert`]
    /// or a uuid-name string).
    pub fn inserted(&self, named: &Value) -> Option<crate::datum::Uuid> {
        let name = match named.atom()? {
            crate::datum::Atom::NamedUuid(n) => n.as_str(),
            crate::datum::Atom::String(n) => n.as_str(),
            _ => return None,
        };
        let i = self.uuid_names.iter().position(|n| n.as_deref() == Some(name))?;
        self.results.get(i)?.uuid
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datum::Uuid;

    #[test]
    fn generated_names_count_up() {
        let mut txn = Transaction::new("DB");
        for n in [0usize, 1, 9, 10, 11, 99, 100, 12345] {
            txn.next_name = n;
            assert_eq!(txn.insert("T", Row::new()), Value::named_uuid(format!("row{n}")));
        }
        assert_eq!(generated_name(usize::MAX), format!("row{}", usize::MAX));
    }

    #[test]
    fn direct_serialization_equals_to_params() {
        let mut txn = Transaction::new("DB");
        let r = txn.insert("T", Row::new().with("a", 1).with("s", Value::set(["x", "y"])));
        txn.insert_named("T", Row::new().with("ref", r), "mine");
        txn.select("T", vec![Condition::eq("a", 1)], Some(vec!["a".into()]));
        txn.select("T", vec![], None);
        txn.update(
            "T",
            vec![Condition::uuid(Uuid::new_v4())],
            Row::new().with("m", Value::string_map([("k", "v")])),
        );
        txn.mutate(
            "T",
            vec![Condition::Constant(true)],
            vec![
                Mutation::new("n", Mutator::Add, 1),
                Mutation::delete("s", Value::set(["x"])),
            ],
        );
        txn.delete("T", vec![Condition::ne("a", 2)]);
        txn.verify("T", vec![], vec!["a".into()], vec![Row::new().with("a", 1)]);
        txn.push(Operation::Wait {
            table: "T".into(),
            conditions: vec![],
            columns: vec![],
            until_equal: false,
            rows: vec![],
            timeout_ms: None,
        });
        txn.push(Operation::Commit { durable: true });
        txn.push(Operation::Abort);
        txn.comment("c");
        txn.assert_lock("l");
        let direct: Json = serde_json::from_slice(&serde_json::to_vec(&txn.params()).unwrap()).unwrap();
        assert_eq!(direct, txn.to_params());
    }
}
