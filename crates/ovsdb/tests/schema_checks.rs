//! Client-side schema checks (`DatabaseSchema::check_*`): every rule, on a synthetic schema
//! that has one column per constraint, and on the installed OVN Northbound schema.

use ovsdb::schema::{AtomicType, DatabaseSchema};
use ovsdb::{Atom, Condition, Error, Function, Mutation, Mutator, Operation, Row, Transaction, Uuid, Value};
use serde_json::json;

fn synthetic() -> DatabaseSchema {
    DatabaseSchema::from_json(&json!({
        "name": "Test", "version": "1.0.0",
        "tables": {
            "Things": {
                "isRoot": true,
                "columns": {
                    "name": {"type": {"key": {"type": "string", "minLength": 1, "maxLength": 5}}},
                    "count": {"type": {"key": {"type": "integer", "minInteger": 0, "maxInteger": 10}}},
                    "ratio": {"type": {"key": {"type": "real", "minReal": 0.5, "maxReal": 1.5}}},
                    "flag": {"type": "boolean"},
                    "color": {"type": {"key": {"type": "string", "enum": ["set", ["red", "green", "blue"]]}}},
                    "size": {"type": {"key": {"type": "integer", "enum": ["set", [1, 2, 4]]}, "min": 0, "max": 1}},
                    "tags": {"type": {"key": "string", "min": 0, "max": 3}},
                    "some": {"type": {"key": "integer", "min": 1, "max": "unlimited"}},
                    "weights": {"type": {"key": "string", "value": {"type": "integer", "maxInteger": 100},
                                         "min": 0, "max": "unlimited"}},
                    "parent": {"type": {"key": {"type": "uuid", "refTable": "Things"}, "min": 0, "max": 1}},
                    "id": {"type": "integer", "mutable": false},
                    "scores": {"type": {"key": "real", "min": 0, "max": "unlimited"}},
                    "label": {"type": {"key": "string", "min": 0, "max": 1}}
                }
            }
        }
    }))
    .expect("synthetic schema parses")
}

fn insert(row: Row) -> Operation {
    Operation::Insert {
        table: "Things".into(),
        row,
        uuid_name: None,
    }
}

fn update(row: Row) -> Operation {
    Operation::Update {
        table: "Things".into(),
        conditions: vec![],
        row,
    }
}

fn mutate(m: Mutation) -> Operation {
    Operation::Mutate {
        table: "Things".into(),
        conditions: vec![],
        mutations: vec![m],
    }
}

fn select_where(c: Condition) -> Operation {
    Operation::Select {
        table: "Things".into(),
        conditions: vec![c],
        columns: None,
    }
}

/// Asserts the operation is refused with an `Error::Schema` whose message contains every needle.
#[track_caller]
fn refused(schema: &DatabaseSchema, op: &Operation, needles: &[&str]) {
    match schema.check_operation(op) {
        Err(Error::Schema(msg)) => {
            for needle in needles {
                assert!(
                    msg.contains(needle),
                    "message {msg:?} should contain {needle:?} (op {op:?})"
                );
            }
        }
        other => panic!("expected a schema error for {op:?}, got {other:?}"),
    }
}

#[track_caller]
fn accepted(schema: &DatabaseSchema, op: &Operation) {
    if let Err(e) = schema.check_operation(op) {
        panic!("{op:?} should pass, got {e}");
    }
}

#[test]
fn schema_checks_unknown_table_and_column_suggest_close_matches() {
    let s = synthetic();
    refused(
        &s,
        &Operation::Delete {
            table: "Thing".into(),
            conditions: vec![],
        },
        &["no table \"Thing\"", "did you mean \"Things\""],
    );
    refused(
        &s,
        &insert(Row::new().with("nmae", "x")),
        &["Things", "\"nmae\"", "did you mean \"name\""],
    );
    refused(
        &s,
        &select_where(Condition::eq("colour", "red")),
        &["did you mean \"color\""],
    );
    refused(
        &s,
        &Operation::Select {
            table: "Things".into(),
            conditions: vec![],
            columns: Some(vec!["name".into(), "zzzzzzzzzz".into()]),
        },
        &["no column \"zzzzzzzzzz\""],
    );
    let far = s
        .check_row("Things", &Row::new().with("qqqqqqqqqqqq", 1))
        .unwrap_err()
        .to_string();
    assert!(
        !far.contains("did you mean"),
        "no suggestion when nothing is close: {far}"
    );
}

#[test]
fn schema_checks_atomic_types() {
    let s = synthetic();
    accepted(
        &s,
        &insert(Row::new().with("name", "a").with("count", 3).with("flag", true)),
    );
    refused(
        &s,
        &insert(Row::new().with("count", "3")),
        &["Things.count", "\"3\" is a string", "expected an integer"],
    );
    refused(
        &s,
        &insert(Row::new().with("flag", "true")),
        &["Things.flag", "expected a boolean"],
    );
    refused(
        &s,
        &insert(Row::new().with("name", 5)),
        &["Things.name", "5 is an integer", "expected a string"],
    );
    refused(
        &s,
        &insert(Row::new().with("parent", "abc")),
        &["Things.parent", "expected a uuid"],
    );
    refused(
        &s,
        &insert(Row::new().with("count", Atom::Real(2.5))),
        &["2.5 is a real"],
    );
    // Integral reals are integers to ovsdb-server; integers are fine reals.
    accepted(&s, &insert(Row::new().with("count", Value::Atom(Atom::Real(2.0)))));
    accepted(&s, &insert(Row::new().with("ratio", 1)));
    accepted(
        &s,
        &insert(Row::new().with("scores", Value::Set(vec![Atom::Integer(1), Atom::Real(2.5)]))),
    );
}

#[test]
fn schema_checks_uuid_and_named_uuid_references() {
    let s = synthetic();
    accepted(&s, &insert(Row::new().with("parent", Uuid::new_v4())));
    accepted(&s, &insert(Row::new().with("parent", Value::named_uuid("row0"))));
    accepted(&s, &select_where(Condition::eq("_uuid", Value::named_uuid("row0"))));
    accepted(&s, &select_where(Condition::uuid(Uuid::new_v4())));
    refused(
        &s,
        &select_where(Condition::eq("_uuid", "not-a-uuid")),
        &["Things._uuid", "expected a uuid"],
    );
    refused(
        &s,
        &Operation::Insert {
            table: "Things".into(),
            row: Row::new(),
            uuid_name: Some("bad-name".into()),
        },
        &["uuid-name \"bad-name\" is not valid"],
    );
    refused(
        &s,
        &insert(Row::new().with("parent", Value::named_uuid("1st"))),
        &["Things.parent", "\"1st\""],
    );
    let mut txn = Transaction::new("Test");
    let first = txn.insert("Things", Row::new().with("name", "a"));
    txn.insert("Things", Row::new().with("name", "b").with("parent", first));
    for op in txn.operations() {
        accepted(&s, op);
    }
}

#[test]
fn schema_checks_enums() {
    let s = synthetic();
    accepted(&s, &insert(Row::new().with("color", "green")));
    refused(
        &s,
        &insert(Row::new().with("color", "gren")),
        &[
            "Things.color",
            "\"gren\" is not allowed",
            "\"red\", \"green\", \"blue\"",
            "did you mean \"green\"",
        ],
    );
    accepted(&s, &insert(Row::new().with("size", 4)));
    accepted(&s, &insert(Row::new().with("size", Value::empty_set())));
    refused(
        &s,
        &insert(Row::new().with("size", 3)),
        &["Things.size", "3 is not allowed", "1, 2, 4"],
    );
    // ovsdb-server checks condition arguments against the enum too.
    refused(
        &s,
        &select_where(Condition::eq("color", "purple")),
        &["\"purple\" is not allowed"],
    );
}

#[test]
fn schema_checks_integer_and_real_ranges() {
    let s = synthetic();
    accepted(&s, &insert(Row::new().with("count", 0)));
    accepted(&s, &insert(Row::new().with("count", 10)));
    refused(
        &s,
        &insert(Row::new().with("count", 11)),
        &["Things.count", "11 is out of range", "0..=10"],
    );
    refused(&s, &insert(Row::new().with("count", -1)), &["-1 is out of range"]);
    accepted(&s, &insert(Row::new().with("ratio", Value::Atom(Atom::Real(1.5)))));
    refused(
        &s,
        &insert(Row::new().with("ratio", Value::Atom(Atom::Real(0.25)))),
        &["Things.ratio", "0.25 is out of range", "0.5..=1.5"],
    );
    refused(&s, &update(Row::new().with("count", 99)), &["99 is out of range"]);
    refused(&s, &select_where(Condition::eq("count", 99)), &["99 is out of range"]);
}

#[test]
fn schema_checks_string_lengths_count_characters() {
    let s = synthetic();
    accepted(&s, &insert(Row::new().with("name", "abcde")));
    accepted(&s, &insert(Row::new().with("name", "ééééé")));
    refused(
        &s,
        &insert(Row::new().with("name", "abcdef")),
        &["Things.name", "has 6 characters", "1 to 5"],
    );
    refused(&s, &insert(Row::new().with("name", "")), &["has 0 characters"]);
}

#[test]
fn schema_checks_set_sizes() {
    let s = synthetic();
    accepted(&s, &insert(Row::new().with("tags", Value::set(["a", "b", "c"]))));
    accepted(&s, &insert(Row::new().with("tags", Value::empty_set())));
    accepted(&s, &insert(Row::new().with("tags", "single")));
    refused(
        &s,
        &insert(Row::new().with("tags", Value::set(["a", "b", "c", "d"]))),
        &["Things.tags", "got 4 elements", "0 to 3"],
    );
    refused(
        &s,
        &insert(Row::new().with("some", Value::empty_set())),
        &["Things.some", "got 0 elements"],
    );
    accepted(&s, &insert(Row::new().with("some", Value::set([1i64, 2, 3, 4, 5, 6]))));
    refused(
        &s,
        &insert(Row::new().with("count", Value::set([1i64, 2]))),
        &["Things.count", "got 2 elements"],
    );
    refused(
        &s,
        &insert(Row::new().with("tags", Value::set(["a", "a"]))),
        &["set has \"a\" twice"],
    );
    // `includes` takes any number of elements.
    accepted(
        &s,
        &select_where(Condition::includes("tags", Value::set(["a", "b", "c", "d", "e"]))),
    );
    refused(
        &s,
        &select_where(Condition::includes("tags", Value::set([1i64]))),
        &["Things.tags", "1 is an integer"],
    );
}

#[test]
fn schema_checks_map_keys_and_values() {
    let s = synthetic();
    let weights = |pairs: Vec<(Atom, Atom)>| Row::new().with("weights", Value::Map(pairs));
    accepted(&s, &insert(weights(vec![("a".into(), 5.into())])));
    accepted(&s, &insert(weights(vec![])));
    refused(
        &s,
        &insert(weights(vec![(1.into(), 5.into())])),
        &["Things.weights", "key 1 is an integer"],
    );
    refused(
        &s,
        &insert(weights(vec![("a".into(), "x".into())])),
        &["value \"x\" is a string"],
    );
    refused(
        &s,
        &insert(weights(vec![("a".into(), 101.into())])),
        &["value 101 is out of range"],
    );
    refused(
        &s,
        &insert(weights(vec![("a".into(), 1.into()), ("a".into(), 2.into())])),
        &["map has key \"a\" twice"],
    );
    // ovsdb-server refuses ["set", []] for a map column; say how to write it instead.
    refused(
        &s,
        &insert(Row::new().with("weights", Value::empty_set())),
        &["Things.weights", "Value::empty_map"],
    );
    refused(
        &s,
        &insert(Row::new().with("tags", Value::string_map([("a", "b")]))),
        &["Things.tags", "got map"],
    );
}

#[test]
fn schema_checks_implicit_columns_are_read_only() {
    let s = synthetic();
    refused(
        &s,
        &insert(Row::new().with("_uuid", Uuid::new_v4())),
        &["Things._uuid", "cannot be written"],
    );
    refused(
        &s,
        &update(Row::new().with("_version", Uuid::new_v4())),
        &["Things._version", "cannot be written"],
    );
    refused(
        &s,
        &mutate(Mutation::insert("_uuid", Value::set([Uuid::new_v4()]))),
        &["Things._uuid", "cannot be written"],
    );
    accepted(
        &s,
        &Operation::Select {
            table: "Things".into(),
            conditions: vec![Condition::new("_version", Function::Ne, Uuid::new_v4())],
            columns: Some(vec!["_uuid".into(), "_version".into(), "name".into()]),
        },
    );
}

#[test]
fn schema_checks_immutable_columns_only_at_insert() {
    let s = synthetic();
    accepted(&s, &insert(Row::new().with("id", 7)));
    refused(
        &s,
        &update(Row::new().with("id", 8)),
        &["Things.id", "immutable column"],
    );
    refused(
        &s,
        &mutate(Mutation::new("id", Mutator::Add, 1)),
        &["Things.id", "immutable column"],
    );
    accepted(&s, &select_where(Condition::eq("id", 7)));
}

#[test]
fn schema_checks_mutations() {
    let s = synthetic();
    accepted(&s, &mutate(Mutation::new("count", Mutator::Add, 1)));
    accepted(
        &s,
        &mutate(Mutation::new("scores", Mutator::Mul, Value::Atom(Atom::Real(2.0)))),
    );
    accepted(&s, &mutate(Mutation::insert("tags", Value::set(["a", "b", "c", "d"]))));
    accepted(&s, &mutate(Mutation::delete("tags", "a")));
    accepted(
        &s,
        &mutate(Mutation::insert("weights", Value::Map(vec![("k".into(), 1.into())]))),
    );
    accepted(&s, &mutate(Mutation::delete("weights", Value::set(["k", "j"]))));
    accepted(
        &s,
        &mutate(Mutation::delete("weights", Value::Map(vec![("k".into(), 1.into())]))),
    );
    refused(
        &s,
        &mutate(Mutation::insert("name", "x")),
        &["Things.name", "cannot take \"insert\"", "use update"],
    );
    refused(
        &s,
        &mutate(Mutation::new("name", Mutator::Add, 1)),
        &["Things.name", "cannot take \"+=\""],
    );
    refused(
        &s,
        &mutate(Mutation::new("ratio", Mutator::Mod, 2)),
        &["Things.ratio", "cannot take \"%=\"", "integer"],
    );
    refused(
        &s,
        &mutate(Mutation::new("weights", Mutator::Add, 1)),
        &["Things.weights", "cannot take \"+=\""],
    );
    refused(
        &s,
        &mutate(Mutation::new("count", Mutator::Div, 0)),
        &["Things.count", "\"/=\" by zero"],
    );
    refused(
        &s,
        &mutate(Mutation::new("count", Mutator::Add, "1")),
        &["\"1\" is a string"],
    );
    refused(
        &s,
        &mutate(Mutation::new("count", Mutator::Add, Value::set([1i64, 2]))),
        &["needs a single integer operand"],
    );
    refused(
        &s,
        &mutate(Mutation::insert("tags", Value::set([1i64]))),
        &["Things.tags", "1 is an integer"],
    );
    refused(
        &s,
        &mutate(Mutation::delete("weights", Value::set([1i64]))),
        &["Things.weights", "1 is an integer"],
    );
}

#[test]
fn schema_checks_conditions() {
    let s = synthetic();
    accepted(&s, &select_where(Condition::new("count", Function::Lt, 5)));
    accepted(&s, &select_where(Condition::new("size", Function::Ge, 2)));
    refused(
        &s,
        &select_where(Condition::new("name", Function::Lt, "a")),
        &["Things.name", "cannot be compared with \"<\""],
    );
    refused(
        &s,
        &select_where(Condition::new("tags", Function::Gt, "a")),
        &["cannot be compared"],
    );
    accepted(&s, &select_where(Condition::Constant(true)));
    refused(
        &s,
        &select_where(Condition::eq("count", Value::set([1i64, 2]))),
        &["got 2 elements"],
    );
    let wait = Operation::Wait {
        table: "Things".into(),
        conditions: vec![Condition::eq("name", "a")],
        columns: vec!["count".into()],
        until_equal: true,
        rows: vec![Row::new().with("count", "three")],
        timeout_ms: Some(0),
    };
    refused(&s, &wait, &["Things.count", "\"three\" is a string"]);
    let wait_unknown = Operation::Wait {
        table: "Things".into(),
        conditions: vec![],
        columns: vec!["cuont".into()],
        until_equal: true,
        rows: vec![],
        timeout_ms: None,
    };
    refused(&s, &wait_unknown, &["did you mean \"count\""]);
}

#[test]
fn schema_checks_check_value_and_non_table_operations() {
    let s = synthetic();
    assert!(s.check_value("Things", "count", &Value::from(3)).is_ok());
    assert!(s.check_value("Things", "_uuid", &Value::uuid(Uuid::new_v4())).is_ok());
    let e = s
        .check_value("Things", "count", &Value::from(30))
        .unwrap_err()
        .to_string();
    assert!(e.contains("Things.count") && e.contains("30"), "{e}");
    for op in [
        Operation::Comment("hi".into()),
        Operation::Commit { durable: false },
        Operation::Abort,
        Operation::Assert { lock: "l".into() },
    ] {
        accepted(&s, &op);
    }
    assert_eq!(
        s.tables["Things"].columns["weights"]
            .column_type
            .value
            .as_ref()
            .unwrap()
            .atomic,
        AtomicType::Integer
    );
}

#[test]
fn schema_checks_on_ovn_northbound() {
    let Ok(text) = std::fs::read_to_string("/usr/share/ovn/ovn-nb.ovsschema") else {
        test_support::skip(
            "schema_checks_on_ovn_northbound",
            "ovn-nb.ovsschema missing; apt-get install ovn-common",
        );
        return;
    };
    let nb = DatabaseSchema::from_json(&serde_json::from_str(&text).unwrap()).unwrap();
    let mut txn = Transaction::new("OVN_Northbound");
    let ls = txn.insert(
        "Logical_Switch",
        Row::new()
            .with("name", "neutron-1")
            .with("external_ids", Value::string_map([("neutron:network_name", "net1")])),
    );
    let lsp = txn.insert(
        "Logical_Switch_Port",
        Row::new()
            .with("name", "p1")
            .with("addresses", Value::set(["fa:16:3e:00:00:01 10.0.0.5"]))
            .with("tag_request", 100)
            .with("enabled", true)
            .with("options", Value::string_map([("requested-chassis", "h1")])),
    );
    txn.mutate(
        "Logical_Switch",
        vec![Condition::eq("_uuid", ls)],
        vec![Mutation::insert("ports", Value::set([lsp.atom().unwrap().clone()]))],
    );
    txn.insert(
        "ACL",
        Row::new()
            .with("action", "allow-related")
            .with("direction", "from-lport")
            .with("match", "inport == \"p1\"")
            .with("priority", 1002),
    );
    for op in txn.operations() {
        accepted(&nb, op);
    }
    refused(
        &nb,
        &Operation::Insert {
            table: "Logical_Switch_Port".into(),
            row: Row::new().with("name", "p").with("tag_request", 5000),
            uuid_name: None,
        },
        &["Logical_Switch_Port.tag_request", "5000 is out of range", "0..=4095"],
    );
    refused(
        &nb,
        &Operation::Insert {
            table: "ACL".into(),
            row: Row::new()
                .with("action", "alow")
                .with("direction", "to-lport")
                .with("match", "1")
                .with("priority", 1),
            uuid_name: None,
        },
        &["ACL.action", "\"alow\"", "did you mean \"allow\""],
    );
    refused(
        &nb,
        &Operation::Insert {
            table: "Logical_Switch_Port".into(),
            row: Row::new().with("name", "p").with("adresses", Value::empty_set()),
            uuid_name: None,
        },
        &["Logical_Switch_Port", "did you mean \"addresses\""],
    );
}
