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

use serde_json::Value as Json;

use crate::condition::Condition;
use crate::datum::{Row, Str, Value};

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
    pub column: Str,
    pub mutator: Mutator,
    pub value: Value,
}

impl Mutation {
    pub fn new(column: impl Into<Str>, mutator: Mutator, value: impl Into<Value>) -> Self {
        Mutation {
            column: column.into(),
            mutator,
            value: value.into(),
        }
    }
    /// Adds elements to a set, or key/value pairs to a map (existing keys are kept).
    pub fn insert(column: impl Into<Str>, value: impl Into<Value>) -> Self {
        Self::new(column, Mutator::Insert, value)
    }
    /// Removes elements from a set, or from a map by pairs or by a set of keys.
    pub fn delete(column: impl Into<Str>, value: impl Into<Value>) -> Self {
        Self::new(column, Mutator::Delete, value)
    }
    /// The mutation as a JSON value (the wire form).
    pub fn to_json(&self) -> Json {
        crate::encode::to_json(self)
    }
}

/// One operation of a transaction (RFC 7047 §5.2).
#[derive(Clone, Debug, PartialEq)]
pub enum Operation {
    Insert {
        table: Str,
        row: Row,
        uuid_name: Option<Str>,
    },
    Select {
        table: Str,
        conditions: Vec<Condition>,
        columns: Option<Vec<String>>,
    },
    Update {
        table: Str,
        conditions: Vec<Condition>,
        row: Row,
    },
    Mutate {
        table: Str,
        conditions: Vec<Condition>,
        mutations: Vec<Mutation>,
    },
    Delete {
        table: Str,
        conditions: Vec<Condition>,
    },
    Wait {
        table: Str,
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
    /// The operation as a JSON value (the wire form).
    pub fn to_json(&self) -> Json {
        crate::encode::to_json(self)
    }
}

/// An ordered list of operations for one database, sent as one `transact` request.
#[derive(Clone, Debug, PartialEq)]
pub struct Transaction {
    database: Str,
    operations: Vec<Operation>,
    next_name: usize,
}

impl Transaction {
    pub fn new(database: impl Into<Str>) -> Self {
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
    pub fn insert(&mut self, table: impl Into<Str>, row: Row) -> Value {
        let name = generated_name(self.next_name);
        self.next_name += 1;
        self.insert_named(table, row, name)
    }
    /// Inserts a row under a uuid-name of the caller's choosing (must match `[a-zA-Z_][a-zA-Z0-9_]*`).
    pub fn insert_named(&mut self, table: impl Into<Str>, row: Row, uuid_name: impl Into<Str>) -> Value {
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
        table: impl Into<Str>,
        conditions: Vec<Condition>,
        columns: Option<Vec<String>>,
    ) -> &mut Self {
        self.push(Operation::Select {
            table: table.into(),
            conditions,
            columns,
        })
    }
    pub fn update(&mut self, table: impl Into<Str>, conditions: Vec<Condition>, row: Row) -> &mut Self {
        self.push(Operation::Update {
            table: table.into(),
            conditions,
            row,
        })
    }
    pub fn mutate(&mut self, table: impl Into<Str>, conditions: Vec<Condition>, mutations: Vec<Mutation>) -> &mut Self {
        self.push(Operation::Mutate {
            table: table.into(),
            conditions,
            mutations,
        })
    }
    pub fn delete(&mut self, table: impl Into<Str>, conditions: Vec<Condition>) -> &mut Self {
        self.push(Operation::Delete {
            table: table.into(),
            conditions,
        })
    }
    /// `wait` with `timeout 0` and `until ==`: the optimistic-concurrency guard (python IDL's `verify`).
    pub fn verify(
        &mut self,
        table: impl Into<Str>,
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
    /// The `params` of the `transact` request: `[database, op, op, ...]`.
    pub fn to_params(&self) -> Json {
        crate::encode::to_json(self)
    }
}

/// `row<n>`, written without the formatting machinery: this runs for every insert.
fn generated_name(n: usize) -> Str {
    let mut name = Str::const_new("row");
    name.push_str(itoa::Buffer::new().format(n));
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
    /// `insert`: the uuid-name the request gave the row (not sent by the server; kept from
    /// the operation so [`TransactionResult::inserted`] can find the row by it).
    pub uuid_name: Option<Str>,
}

/// The results of a committed transaction, one per operation, in order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TransactionResult {
    pub results: Vec<OperationResult>,
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
        self.results.iter().find(|r| r.uuid_name.as_deref() == Some(name))?.uuid
    }
}

/// The results of a `transact` reply in the layout ovsdb-server writes for a commit of plain
/// operations (`{}`, `{"uuid":["uuid",…]}`, `{"count":N}` and nothing else, exactly one per
/// operation), read without a JSON parser; `None` for anything else (rows, errors, spaces),
/// which the general decoder then reads. Most replies of a busy writer are of this kind.
pub(crate) fn plain_results(text: &str, ops: usize) -> Option<Vec<OperationResult>> {
    let (results, used) = plain_results_prefix(text.as_bytes())?;
    (used == text.len() && results.len() == ops).then_some(results)
}

/// [`plain_results`] at the start of `bytes` (a reply still in the read buffer): the results
/// and how many bytes their array took, however many operations there were.
pub(crate) fn plain_results_prefix(bytes: &[u8]) -> Option<(Vec<OperationResult>, usize)> {
    let mut rest = bytes.strip_prefix(b"[")?;
    let mut results = Vec::new();
    if let Some(after) = rest.strip_prefix(b"]") {
        return Some((results, bytes.len() - after.len()));
    }
    loop {
        let mut result = OperationResult::default();
        if let Some(after) = rest.strip_prefix(b"{}") {
            rest = after;
        } else if let Some(after) = rest.strip_prefix(b"{\"uuid\":[\"uuid\",\"") {
            let (uuid, after) = (after.get(..36)?, after.get(36..)?);
            result.uuid = Some(crate::datum::Uuid(uuid::Uuid::try_parse_ascii(uuid).ok()?));
            rest = after.strip_prefix(b"\"]}")?;
        } else if let Some(after) = rest.strip_prefix(b"{\"count\":") {
            let digits = after.iter().take_while(|b| b.is_ascii_digit()).count();
            // JSON numbers have no leading zeros; a reply with them is not the server's.
            if digits == 0 || digits > 19 || (digits > 1 && after[0] == b'0') {
                return None;
            }
            let count = after[..digits].iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
            result.count = Some(count);
            rest = after[digits..].strip_prefix(b"}")?;
        } else {
            return None;
        }
        if results.capacity() == 0 {
            // Most transactions a busy writer sends are small: no doubling from four.
            results.reserve_exact(1);
        }
        results.push(result);
        match rest.split_first()? {
            (b',', after) => rest = after,
            (b']', after) => return Some((results, bytes.len() - after.len())),
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn plain_results_read_what_ovsdb_server_writes_and_refuse_the_rest() {
        let u = "0f6b8a9e-41b2-4c55-9d1e-2a3b4c5d6e7f";
        let text = format!(r#"[{{"uuid":["uuid","{u}"]}},{{}},{{"count":12}}]"#);
        let results = plain_results(&text, 3).expect("plain layout");
        assert_eq!(results[0].uuid, Some(Uuid::parse(u).unwrap()));
        assert_eq!(results[1], OperationResult::default());
        assert_eq!(results[2].count, Some(12));
        assert_eq!(plain_results("[]", 0), Some(vec![]));
        for other in [
            // An error after the last operation, rows, spaces, a bad UUID, a short reply.
            format!(r#"[{{"uuid":["uuid","{u}"]}},{{"error":"referential integrity violation"}}]"#),
            r#"[{"rows":[]}]"#.to_owned(),
            r#"[ {} ]"#.to_owned(),
            r#"[{"uuid":["uuid","0f6b8a9e-41b2-4c55-9d1e-2a3b4c5d6eZZ"]}]"#.to_owned(),
            r#"[{"count":99999999999999999999}]"#.to_owned(),
            r#"[{"count":007}]"#.to_owned(),
            "[{}]".to_owned(),
        ] {
            assert_eq!(
                plain_results(&other, if other == "[{}]" { 2 } else { 1 }),
                None,
                "{other}"
            );
        }
    }
    use crate::datum::Uuid;

    #[test]
    fn plain_results_at_the_start_of_a_buffer_say_where_they_end() {
        let u = "0f6b8a9e-41b2-4c55-9d1e-2a3b4c5d6e7f";
        let text = format!(r#"[{{"uuid":["uuid","{u}"]}},{{}},{{"count":3}}],"error":null}}"#);
        let (results, used) = plain_results_prefix(text.as_bytes()).expect("plain layout");
        assert_eq!(&text[used..], r#","error":null}"#);
        assert_eq!(results.len(), 3);
        assert_eq!(results[2].count, Some(3));
        assert_eq!(plain_results_prefix(b"[]x"), Some((vec![], 2)));
        // Cut anywhere, the array is not recognised (the framer then waits for the rest).
        let whole = format!(r#"[{{"uuid":["uuid","{u}"]}},{{}}]"#);
        for cut in 0..whole.len() {
            assert_eq!(
                plain_results_prefix(&whole.as_bytes()[..cut]),
                None,
                "{}",
                &whole[..cut]
            );
        }
        for other in [&b"[{},]"[..], b"[,{}]", b"[{} ]", b"[{\"rows\":[]}]", b"{}"] {
            assert_eq!(plain_results_prefix(other), None, "{}", String::from_utf8_lossy(other));
        }
    }

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
    fn every_operation_has_its_rfc_7047_form() {
        let u = Uuid::new_v4();
        let mut txn = Transaction::new("DB");
        let r = txn.insert("T", Row::new().with("a", 1).with("s", Value::set(["x", "y"])));
        txn.insert_named("T", Row::new().with("ref", r), "mine");
        txn.select("T", vec![Condition::eq("a", 1)], Some(vec!["a".into()]));
        txn.select("T", vec![], None);
        txn.update(
            "T",
            vec![Condition::uuid(u)],
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
        let expected = json!(["DB",
            {"op": "insert", "table": "T", "row": {"a": 1, "s": ["set", ["x", "y"]]}, "uuid-name": "row0"},
            {"op": "insert", "table": "T", "row": {"ref": ["named-uuid", "row0"]}, "uuid-name": "mine"},
            {"op": "select", "table": "T", "where": [["a", "==", 1]], "columns": ["a"]},
            {"op": "select", "table": "T", "where": []},
            {"op": "update", "table": "T", "where": [["_uuid", "==", ["uuid", u.to_string()]]],
             "row": {"m": ["map", [["k", "v"]]]}},
            {"op": "mutate", "table": "T", "where": [true],
             "mutations": [["n", "+=", 1], ["s", "delete", ["set", ["x"]]]]},
            {"op": "delete", "table": "T", "where": [["a", "!=", 2]]},
            {"op": "wait", "table": "T", "where": [], "columns": ["a"], "until": "==", "rows": [{"a": 1}], "timeout": 0},
            {"op": "wait", "table": "T", "where": [], "columns": [], "until": "!=", "rows": []},
            {"op": "commit", "durable": true},
            {"op": "abort"},
            {"op": "comment", "comment": "c"},
            {"op": "assert", "lock": "l"},
        ]);
        assert_eq!(txn.to_params(), expected);
    }
}
