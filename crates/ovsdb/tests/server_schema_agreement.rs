//! The client-side schema checks agree with a real ovsdb-server: every operation our checks
//! refuse, the server refuses too, and every one they pass, the server commits. Runs the
//! operations with `ovsdb-client transact`, so it does not depend on our own client.

use ovsdb::schema::DatabaseSchema;
use ovsdb::{Condition, Function, Mutation, Mutator, Operation, Row, Value};
use serde_json::{json, Value as Json};
use test_support::OvsdbServer;

const NB: &str = "/usr/share/ovn/ovn-nb.ovsschema";
const VSWITCH: &str = "/usr/share/openvswitch/vswitch.ovsschema";

fn load(path: &str) -> DatabaseSchema {
    let text = std::fs::read_to_string(path).expect("read schema");
    DatabaseSchema::from_json(&serde_json::from_str(&text).expect("schema JSON")).expect("schema parses")
}

/// Whether the server commits `ops` (one transaction), with the reply for messages.
fn server_accepts(server: &OvsdbServer, ops: &[Operation]) -> (bool, String) {
    let mut params = vec![json!(server.database())];
    params.extend(ops.iter().map(Operation::to_json));
    let out = std::process::Command::new(test_support::find_binary("ovsdb-client").expect("ovsdb-client"))
        .args([
            "--timeout=10",
            "transact",
            &server.remote(),
            &Json::Array(params).to_string(),
        ])
        .output()
        .expect("run ovsdb-client");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let reply: Json = serde_json::from_str(&stdout).unwrap_or(Json::Null);
    let ok = out.status.success()
        && reply
            .as_array()
            .is_some_and(|results| results.iter().all(|r| r.get("error").is_none()));
    (ok, format!("{stdout}{}", String::from_utf8_lossy(&out.stderr)))
}

fn insert(table: &str, row: Row) -> Operation {
    Operation::Insert {
        table: table.into(),
        row,
        uuid_name: None,
    }
}

fn select(table: &str, c: Condition) -> Operation {
    Operation::Select {
        table: table.into(),
        conditions: vec![c],
        columns: None,
    }
}

fn mutate(table: &str, m: Mutation) -> Operation {
    Operation::Mutate {
        table: table.into(),
        conditions: vec![],
        mutations: vec![m],
    }
}

/// Runs every case: our verdict must equal the server's.
fn assert_agreement(schema: &DatabaseSchema, server: &OvsdbServer, cases: Vec<(&str, Vec<Operation>)>) {
    let mut disagreements = Vec::new();
    for (name, ops) in cases {
        let ours = ops.iter().try_for_each(|op| schema.check_operation(op));
        let (theirs, reply) = server_accepts(server, &ops);
        if ours.is_ok() != theirs {
            disagreements.push(format!("{name}: ours {ours:?}, server {reply}"));
        }
    }
    assert!(
        disagreements.is_empty(),
        "checks and server disagree:\n{}",
        disagreements.join("\n")
    );
}

#[test]
fn server_schema_agreement_on_ovn_northbound() {
    test_support::require_ovn!(
        "server_schema_agreement_on_ovn_northbound",
        ["ovsdb-server", "ovsdb-tool", "ovsdb-client"]
    );
    let server = OvsdbServer::standalone("server_schema_nb", NB);
    let nb = load(NB);
    let acl = |action: &str| {
        Row::new()
            .with("action", action)
            .with("direction", "to-lport")
            .with("match", "ip4")
            .with("priority", 1000)
    };
    let cases = vec![
        ("switch", vec![insert("Logical_Switch", Row::new().with("name", "sw0"))]),
        (
            "switch with map",
            vec![insert(
                "Logical_Switch",
                Row::new()
                    .with("name", "sw1")
                    .with("external_ids", Value::string_map([("k", "v")])),
            )],
        ),
        (
            "port",
            vec![insert(
                "Logical_Switch_Port",
                Row::new()
                    .with("name", "p0")
                    .with("tag_request", 100)
                    .with("enabled", true)
                    .with("addresses", Value::set(["unknown", "router"])),
            )],
        ),
        ("acl", vec![insert("ACL", acl("allow-related"))]),
        ("acl bad action", vec![insert("ACL", acl("alow"))]),
        (
            "tag out of range",
            vec![insert(
                "Logical_Switch_Port",
                Row::new().with("name", "p1").with("tag_request", 5000),
            )],
        ),
        (
            "tag as string",
            vec![insert(
                "Logical_Switch_Port",
                Row::new().with("name", "p2").with("tag_request", "x"),
            )],
        ),
        (
            "enabled as string",
            vec![insert(
                "Logical_Switch_Port",
                Row::new().with("name", "p3").with("enabled", "true"),
            )],
        ),
        (
            "two tags",
            vec![insert(
                "Logical_Switch_Port",
                Row::new().with("name", "p4").with("tag_request", Value::set([1i64, 2])),
            )],
        ),
        (
            "duplicate addresses",
            vec![insert(
                "Logical_Switch_Port",
                Row::new().with("name", "p5").with("addresses", Value::set(["a", "a"])),
            )],
        ),
        (
            "addresses as map",
            vec![insert(
                "Logical_Switch_Port",
                Row::new()
                    .with("name", "p6")
                    .with("addresses", Value::string_map([("a", "b")])),
            )],
        ),
        (
            "options as empty set",
            vec![insert(
                "Logical_Switch_Port",
                Row::new().with("name", "p7").with("options", Value::empty_set()),
            )],
        ),
        (
            "options as empty map",
            vec![insert(
                "Logical_Switch_Port",
                Row::new().with("name", "p8").with("options", Value::empty_map()),
            )],
        ),
        ("unknown table", vec![insert("Logical_Swich", Row::new())]),
        (
            "bad uuid-name",
            vec![Operation::Insert {
                table: "Logical_Switch".into(),
                row: Row::new().with("name", "n1"),
                uuid_name: Some("bad-name".into()),
            }],
        ),
        (
            "good uuid-name",
            vec![Operation::Insert {
                table: "Logical_Switch".into(),
                row: Row::new().with("name", "n2"),
                uuid_name: Some("_ok1".into()),
            }],
        ),
        (
            "unknown column",
            vec![insert("Logical_Switch", Row::new().with("nmae", "x"))],
        ),
        (
            "select range",
            vec![select(
                "Logical_Switch_Port",
                Condition::new("tag_request", Function::Lt, 5),
            )],
        ),
        (
            "select string order",
            vec![select("Logical_Switch", Condition::new("name", Function::Lt, "a"))],
        ),
        (
            "select out of range",
            vec![select("Logical_Switch_Port", Condition::eq("tag_request", 99999))],
        ),
        ("select bad enum", vec![select("ACL", Condition::eq("action", "bogus"))]),
        (
            "select includes many",
            vec![select(
                "Logical_Switch_Port",
                Condition::includes("addresses", Value::set(["a", "b", "c"])),
            )],
        ),
        (
            "select unknown column",
            vec![select("Logical_Switch", Condition::eq("nmae", "x"))],
        ),
        (
            "mutate add",
            vec![mutate(
                "Logical_Switch_Port",
                Mutation::new("tag_request", Mutator::Add, 1),
            )],
        ),
        (
            "mutate insert on scalar",
            vec![mutate("Logical_Switch_Port", Mutation::insert("name", "x"))],
        ),
        (
            "mutate add on string",
            vec![mutate("Logical_Switch_Port", Mutation::new("name", Mutator::Add, 1))],
        ),
        (
            "mutate map insert",
            vec![mutate(
                "Logical_Switch",
                Mutation::insert("external_ids", Value::string_map([("a", "b")])),
            )],
        ),
        (
            "mutate map delete keys",
            vec![mutate(
                "Logical_Switch",
                Mutation::delete("external_ids", Value::set(["a"])),
            )],
        ),
        (
            "mutate map delete bare key",
            vec![mutate("Logical_Switch", Mutation::delete("external_ids", "a"))],
        ),
        (
            "mutate set insert wrong type",
            vec![mutate(
                "Logical_Switch_Port",
                Mutation::insert("addresses", Value::set([1i64])),
            )],
        ),
    ];
    assert_agreement(&nb, &server, cases);
}

#[test]
fn server_schema_agreement_on_immutable_columns() {
    test_support::require_ovn!(
        "server_schema_agreement_on_immutable_columns",
        ["ovsdb-server", "ovsdb-tool", "ovsdb-client"]
    );
    let server = OvsdbServer::standalone("server_schema_vs", VSWITCH);
    let vs = load(VSWITCH);
    let by_name = |name: &str| vec![Condition::eq("name", name)];
    let cases = vec![
        // Bridge is not a root table: insert it together with a reference from the root.
        (
            "insert bridge with immutable name",
            vec![
                Operation::Insert {
                    table: "Bridge".into(),
                    row: Row::new().with("name", "br0"),
                    uuid_name: Some("br".into()),
                },
                insert(
                    "Open_vSwitch",
                    Row::new().with("bridges", Value::set([ovsdb::Atom::NamedUuid("br".into())])),
                ),
            ],
        ),
        (
            "update immutable name",
            vec![Operation::Update {
                table: "Bridge".into(),
                conditions: by_name("br0"),
                row: Row::new().with("name", "br1"),
            }],
        ),
        (
            "update mutable column",
            vec![Operation::Update {
                table: "Bridge".into(),
                conditions: by_name("br0"),
                row: Row::new().with("external_ids", Value::string_map([("a", "b")])),
            }],
        ),
    ];
    assert_agreement(&vs, &server, cases);
}
