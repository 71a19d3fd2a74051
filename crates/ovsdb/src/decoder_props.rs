//! Property tests of the decoders the connection's reader uses, each against a plain
//! `serde_json::Value` reading of the same bytes: the read loop's fast path
//! (`plain_response_at` + `plain_results_prefix`), the frame-level `plain_response`,
//! `Incoming::parse`, and the streaming update/update2/update3 and monitor-reply decoders
//! (compared with [`TableUpdates::decode`], which goes through `Value`).
//!
//! Inputs are generated in the exact layout ovsdb-server writes, then mutated (bytes
//! inserted, deleted, replaced, truncated, spans repeated) and followed by arbitrary bytes.
//! The rule checked everywhere: a fast decoder may decline (the general path then reads the
//! message), but whatever it accepts, serde_json accepts too and reads the same way; and on
//! unmutated input in the server's layout it does not decline.
//!
//! `PROPTEST_CASES=20000 cargo test -p ovsdb --lib decoder_props` for a longer hunt.

use proptest::prelude::*;
use serde_json::{json, Value as Json};

use crate::datum::{Row, Uuid};
use crate::jsonrpc::{plain_response, plain_response_at, Incoming};
use crate::monitor::{decode_monitor_reply, decode_update_params, MonitorMethod, TableUpdates, UpdateFormat};
use crate::txn::{plain_results_prefix, OperationResult};

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(256),
        // Shrunk failures are printed; no regression files in the source tree.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Strings with what makes JSON text hard: quotes, backslashes, brackets, controls, non-ASCII.
fn tricky_string() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9_-]{0,10}",
        prop::collection::vec(
            prop_oneof![
                Just("\"".to_owned()),
                Just("\\".to_owned()),
                Just("{\"error\":null}".to_owned()),
                Just(",\"error\":null}".to_owned()),
                Just("]".to_owned()),
                Just("é".to_owned()),
                Just("\u{1F600}".to_owned()),
                Just("\n".to_owned()),
                Just("\u{0}".to_owned()),
                "[a-z ]{1,3}",
            ],
            0..8
        )
        .prop_map(|parts| parts.concat()),
    ]
}

fn uuid_string() -> impl Strategy<Value = String> {
    any::<u128>().prop_map(|u| uuid::Uuid::from_u128(u).to_string())
}

fn atom_json() -> impl Strategy<Value = Json> {
    prop_oneof![
        any::<i64>().prop_map(|i| json!(i)),
        (any::<i32>(), 1u32..8).prop_map(|(m, e)| json!(f64::from(m) / f64::from(1u32 << e) + 0.5)),
        any::<bool>().prop_map(Json::Bool),
        tricky_string().prop_map(Json::String),
        uuid_string().prop_map(|u| json!(["uuid", u])),
    ]
}

fn datum_json() -> impl Strategy<Value = Json> {
    prop_oneof![
        4 => atom_json(),
        1 => prop::collection::vec(atom_json(), 0..4).prop_map(|a| json!(["set", a])),
        1 => prop::collection::vec((atom_json(), atom_json()), 0..4)
            .prop_map(|kv| json!(["map", kv.into_iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>()])),
    ]
}

fn row_json() -> impl Strategy<Value = Json> {
    prop::collection::vec(("[a-z_]{1,8}", datum_json()), 0..5).prop_map(|cols| Json::Object(cols.into_iter().collect()))
}

/// `<table-updates2>` (`v2`) or `<table-updates>` in the layout ovsdb-server writes.
fn table_updates_json(v2: bool) -> impl Strategy<Value = Json> {
    let change = move || -> BoxedStrategy<Json> {
        if v2 {
            prop_oneof![
                row_json().prop_map(|r| json!({ "initial": r })),
                row_json().prop_map(|r| json!({ "insert": r })),
                row_json().prop_map(|r| json!({ "modify": r })),
                Just(json!({ "delete": null })),
            ]
            .boxed()
        } else {
            prop_oneof![
                row_json().prop_map(|r| json!({ "new": r })),
                (row_json(), row_json()).prop_map(|(o, n)| json!({ "old": o, "new": n })),
                row_json().prop_map(|o| json!({ "old": o })),
            ]
            .boxed()
        }
    };
    prop::collection::vec(
        (
            "[A-Z][a-z_]{0,10}",
            prop::collection::vec((uuid_string(), change()), 0..4),
        ),
        0..4,
    )
    .prop_map(|tables| {
        Json::Object(
            tables
                .into_iter()
                .map(|(t, rows)| (t, Json::Object(rows.into_iter().collect())))
                .collect(),
        )
    })
}

/// One result of a committed plain transaction, as ovsdb-server writes it.
fn plain_result() -> impl Strategy<Value = Json> {
    prop_oneof![
        Just(json!({})),
        uuid_string().prop_map(|u| json!({ "uuid": ["uuid", u] })),
        // Row counts: the fast path reads up to 19 digits and declines larger.
        (0u64..=999_999_999_999_999_999).prop_map(|n| json!({ "count": n })),
    ]
}

/// Request ids as the client numbers them (a counter from 1; 19 digits at most).
fn request_id() -> impl Strategy<Value = u64> {
    0u64..=999_999_999_999_999_999
}

/// What other replies carry: rows, errors, nulls.
fn other_result() -> impl Strategy<Value = Json> {
    prop_oneof![
        plain_result(),
        prop::collection::vec(row_json(), 0..3).prop_map(|rows| json!({ "rows": rows })),
        tricky_string().prop_map(|e| json!({ "error": e, "details": "d" })),
        Just(Json::Null),
    ]
}

/// Bytes JSON structure hangs on, for insertions and replacements.
fn structural_byte() -> impl Strategy<Value = u8> {
    prop_oneof![prop::sample::select(b"{}[]\",:0123456789 \\-eun".to_vec()), any::<u8>(),]
}

#[derive(Clone, Debug)]
enum Mutation {
    Insert(usize, u8),
    Delete(usize),
    Replace(usize, u8),
    Truncate(usize),
    Repeat(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), structural_byte()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Delete),
        (any::<usize>(), structural_byte()).prop_map(|(i, b)| Mutation::Replace(i, b)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), 1usize..16).prop_map(|(i, n)| Mutation::Repeat(i, n)),
    ]
}

fn mutate(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        let len = bytes.len();
        match *m {
            Mutation::Insert(i, b) => bytes.insert(i % (len + 1), b),
            Mutation::Delete(i) if len > 0 => {
                bytes.remove(i % len);
            }
            Mutation::Replace(i, b) if len > 0 => bytes[i % len] = b,
            Mutation::Truncate(i) => bytes.truncate(i % (len + 1)),
            Mutation::Repeat(i, n) if len > 0 => {
                let start = i % len;
                let span = bytes[start..(start + n).min(len)].to_vec();
                bytes.splice(start..start, span);
            }
            _ => {}
        }
    }
    bytes
}

/// A reply as ovsdb-server writes it: `{"id":N,"result":…,"error":null}`, no spaces.
fn server_reply(id: u64, result: &Json) -> Vec<u8> {
    serde_json::to_vec(&json!({ "id": id, "result": result, "error": null })).expect("encodes")
}

/// The oracle for plain results: a `Value` reading of the result array.
fn results_by_value(result: &Json) -> Option<Vec<OperationResult>> {
    result
        .as_array()?
        .iter()
        .map(|r| {
            let o = r.as_object()?;
            let mut out = OperationResult::default();
            match (o.len(), o.get("uuid"), o.get("count")) {
                (0, _, _) => {}
                (1, Some(u), _) => {
                    let [tag, s] = u.as_array()?.as_slice() else {
                        return None;
                    };
                    (tag == "uuid").then_some(())?;
                    out.uuid = Some(Uuid::parse(s.as_str()?).ok()?);
                }
                (1, _, Some(n)) => out.count = Some(n.as_u64()?),
                _ => return None,
            }
            Some(out)
        })
        .collect()
}

/// Checks one buffer against the read loop's fast path; returns whether it accepted.
fn check_fast_transact_reply(bytes: &[u8]) -> Result<bool, TestCaseError> {
    let Some((id, results, len)) = plain_response_at(bytes, plain_results_prefix) else {
        return Ok(false);
    };
    prop_assert!(len <= bytes.len());
    let message = &bytes[..len];
    let value: Json = serde_json::from_slice(message).map_err(|e| {
        TestCaseError::fail(format!(
            "fast path accepted what serde_json refuses ({e}): {}",
            String::from_utf8_lossy(message)
        ))
    })?;
    let object = value.as_object().expect("the fast path matched an object");
    prop_assert_eq!(object.len(), 3, "{}", value);
    prop_assert_eq!(object.get("id").and_then(Json::as_u64), Some(id));
    prop_assert_eq!(object.get("error"), Some(&Json::Null));
    let by_value = results_by_value(&object["result"]);
    prop_assert_eq!(by_value.as_ref(), Some(&results), "{}", value);
    Ok(true)
}

/// The oracle for a whole frame: `(id, result)` of a response whose error is null.
fn response_by_value(frame: &[u8]) -> Option<(u64, Json)> {
    let value: Json = serde_json::from_slice(frame).ok()?;
    let o = value.as_object()?;
    (o.len() == 3 && o.get("error") == Some(&Json::Null)).then_some(())?;
    Some((o.get("id")?.as_u64()?, o.get("result")?.clone()))
}

/// serde_json's `Value` reading of text a decoder accepted. serde_json itself skips ignored
/// members more leniently than it builds values (no UTF-8 check of skipped strings, no range
/// check of skipped numbers), so a refusal is a finding only when serde_json's own skipping
/// refuses the text too; `Ok(None)` otherwise, with nothing left to compare.
fn value_of_accepted(bytes: &[u8], decoder: &str) -> Result<Option<Json>, TestCaseError> {
    match serde_json::from_slice::<Json>(bytes) {
        Ok(value) => Ok(Some(value)),
        Err(_) if serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok() => Ok(None),
        Err(e) => Err(TestCaseError::fail(format!(
            "{decoder} accepted what serde_json refuses ({e}): {}",
            String::from_utf8_lossy(bytes)
        ))),
    }
}

/// Both readings of a notification's params must agree wherever the streaming one succeeds.
fn check_update_params(text: &str, method: MonitorMethod) -> Result<bool, TestCaseError> {
    let Ok(fast) = decode_update_params(text, method, |_| None) else {
        return Ok(false);
    };
    let Some(value) = value_of_accepted(text.as_bytes(), "the update decoder")? else {
        return Ok(true);
    };
    let params = value.as_array().expect("params decoded as an array");
    let (txn, updates) = match method {
        MonitorMethod::CondSince => (Some(&params[1]), &params[2]),
        _ => (None, &params[1]),
    };
    prop_assert_eq!(&fast.monitor_id, &params[0]);
    prop_assert_eq!(
        fast.txn_id,
        txn.map(|t| Uuid::parse(t.as_str().expect("txn id is a string")).expect("txn id is a UUID"))
    );
    let format = match method {
        MonitorMethod::Plain => UpdateFormat::Update,
        _ => UpdateFormat::Update2,
    };
    let by_value = TableUpdates::decode(updates.clone(), format).map_err(|e| {
        TestCaseError::fail(format!(
            "the Value decoder refuses what streaming accepted ({e}): {text}"
        ))
    })?;
    prop_assert_eq!(fast.tables, by_value.tables);
    Ok(true)
}

proptest! {
    #![proptest_config(config())]

    /// The read loop's fast path reads every plain reply the server writes, whatever follows
    /// it, and reads it as serde_json does.
    #[test]
    fn fast_transact_reply_reads_the_server_layout(
        id in request_id(),
        results in prop::collection::vec(plain_result(), 0..6),
        trailing in prop::collection::vec(any::<u8>(), 0..32),
    ) {
        let reply = server_reply(id, &Json::Array(results));
        let mut bytes = reply.clone();
        bytes.extend_from_slice(&trailing);
        prop_assert!(check_fast_transact_reply(&bytes)?, "declined {}", String::from_utf8_lossy(&reply));
        let (_, _, len) = plain_response_at(&bytes, plain_results_prefix).unwrap();
        prop_assert_eq!(len, reply.len());
        // Not wholly buffered yet: declined, never misread.
        for cut in 0..reply.len() {
            prop_assert!(plain_response_at(&reply[..cut], plain_results_prefix).is_none());
        }
    }

    /// Mutated and non-plain replies: declined, or read exactly as serde_json reads them.
    #[test]
    fn fast_transact_reply_never_misreads(
        id in any::<u64>(),
        results in prop::collection::vec(prop_oneof![3 => plain_result(), 1 => other_result()], 0..5),
        mutations in prop::collection::vec(mutation(), 0..4),
        trailing in prop::collection::vec(any::<u8>(), 0..16),
    ) {
        let mut bytes = mutate(server_reply(id, &Json::Array(results)), &mutations);
        bytes.extend_from_slice(&trailing);
        check_fast_transact_reply(&bytes)?;
    }

    #[test]
    fn fast_transact_reply_survives_arbitrary_bytes(bytes in prop::collection::vec(structural_byte(), 0..256)) {
        let mut prefixed = b"{\"id\":1,\"result\":[".to_vec();
        prefixed.extend_from_slice(&bytes);
        check_fast_transact_reply(&bytes)?;
        check_fast_transact_reply(&prefixed)?;
    }

    /// The frame-level fast path: whatever it accepts, with a result text that is one JSON
    /// value, is that frame's id and result for serde_json too.
    #[test]
    fn plain_response_agrees_with_serde_json(
        id in request_id(),
        result in other_result(),
        mutations in prop::collection::vec(mutation(), 0..4),
    ) {
        let reply = server_reply(id, &result);
        let result_text = serde_json::to_string(&result).unwrap();
        prop_assert_eq!(plain_response(&reply), Some((id, result_text.as_str())));
        let frame = mutate(reply, &mutations);
        if let Some((fast_id, text)) = plain_response(&frame) {
            if let Ok(fast_result) = serde_json::from_str::<Json>(text) {
                prop_assert_eq!(
                    response_by_value(&frame),
                    Some((fast_id, fast_result)),
                    "{}", String::from_utf8_lossy(&frame)
                );
            }
        }
    }

    /// `Incoming::parse` reads the members serde_json reads, and refuses what is not a
    /// JSON-RPC message.
    #[test]
    fn incoming_agrees_with_serde_json(
        id in prop_oneof![Just(None), any::<u64>().prop_map(|i| Some(json!(i))), tricky_string().prop_map(|s| Some(json!(s))), Just(Some(Json::Null))],
        method in prop::option::of(prop_oneof![tricky_string().prop_map(Json::String), Just(json!(3))]),
        params in prop::option::of(table_updates_json(true)),
        result in prop::option::of(other_result()),
        error in prop::option::of(prop_oneof![Just(Json::Null), tricky_string().prop_map(Json::String)]),
        mutations in prop::collection::vec(mutation(), 0..3),
    ) {
        let mut object = serde_json::Map::new();
        for (key, value) in [("id", id), ("method", method), ("params", params.map(|p| json!(["m", p]))), ("result", result), ("error", error)] {
            if let Some(value) = value {
                object.insert(key.to_owned(), value);
            }
        }
        let bytes = mutate(serde_json::to_vec(&Json::Object(object)).unwrap(), &mutations);
        let value: Option<Json> = serde_json::from_slice(&bytes).ok();
        match Incoming::parse(&bytes) {
            Ok(m) => {
                let Some(value) = value_of_accepted(&bytes, "Incoming::parse")? else {
                    return Ok(());
                };
                let o = value.as_object().expect("an object");
                let member = |k: &str| o.get(k).filter(|v| !v.is_null()).cloned();
                prop_assert_eq!(m.id, member("id"));
                prop_assert_eq!(m.method.as_deref().map(|s| json!(s)), member("method"));
                prop_assert_eq!(m.params.map(|p| serde_json::from_str::<Json>(p.get()).unwrap()), member("params"));
                prop_assert_eq!(m.result.map(|p| serde_json::from_str::<Json>(p.get()).unwrap()), member("result"));
                prop_assert_eq!(m.error.filter(|e| !e.is_null()), member("error"));
            }
            Err(_) => {
                // Refused: not an object of distinct members, a method that is not a string,
                // or neither method nor id.
                if let Some(o) = value.as_ref().and_then(Json::as_object) {
                    let text = String::from_utf8_lossy(&bytes);
                    let duplicated = o.keys().any(|k| text.matches(&format!("\"{k}\":")).count() > 1);
                    let method_ok = o.get("method").is_none_or(|m| m.is_null() || m.is_string());
                    let has_one = o.get("method").is_some_and(|m| !m.is_null()) || o.get("id").is_some_and(|i| !i.is_null());
                    prop_assert!(duplicated || !method_ok || !has_one, "Incoming refused {}", text);
                }
            }
        }
    }

    /// update / update2 / update3 params, generated in the server's layout: the streaming
    /// decoder reads them, and as the `Value` decoder does.
    #[test]
    fn update_notifications_decode_as_by_value(
        monitor_id in prop_oneof![tricky_string().prop_map(Json::String), any::<u32>().prop_map(|n| json!(n)), Just(json!(["m", 1]))],
        txn in uuid_string(),
        method in prop::sample::select(vec![MonitorMethod::Plain, MonitorMethod::Cond, MonitorMethod::CondSince]),
        updates in (table_updates_json(true), table_updates_json(false)),
        mutations in prop::collection::vec(mutation(), 0..4),
    ) {
        let (v2, v1) = updates;
        let params = match method {
            MonitorMethod::Plain => json!([monitor_id, v1]),
            MonitorMethod::Cond => json!([monitor_id, v2]),
            MonitorMethod::CondSince => json!([monitor_id, txn, v2]),
        };
        let text = params.to_string();
        prop_assert!(check_update_params(&text, method)?, "refused {}", text);
        let mutated = mutate(text.into_bytes(), &mutations);
        if let Ok(text) = std::str::from_utf8(&mutated) {
            check_update_params(text, method)?;
        }
    }

    /// A monitor_cond_since reply `[found, txn-id, updates]` and a monitor_cond one.
    #[test]
    fn monitor_replies_decode_as_by_value(
        found in any::<bool>(),
        txn in uuid_string(),
        updates in table_updates_json(true),
        mutations in prop::collection::vec(mutation(), 0..4),
    ) {
        for (method, reply) in [
            (MonitorMethod::CondSince, json!([found, txn, updates])),
            (MonitorMethod::Cond, updates.clone()),
        ] {
            let text = reply.to_string();
            let fast = decode_monitor_reply(&text, method, None).map_err(|e| TestCaseError::fail(format!("{e}: {text}")))?;
            prop_assert_eq!(&fast.tables, &TableUpdates::decode(updates.clone(), UpdateFormat::Update2).unwrap().tables);
            let mutated = mutate(text.into_bytes(), &mutations);
            let Ok(text) = std::str::from_utf8(&mutated) else { continue };
            let Ok(fast) = decode_monitor_reply(text, method, None) else { continue };
            let Some(value) = value_of_accepted(text.as_bytes(), "the monitor reply decoder")? else { continue };
            let updates = match method {
                MonitorMethod::CondSince => {
                    prop_assert_eq!(Some(fast.found), value[0].as_bool());
                    prop_assert_eq!(fast.txn_id.map(|u| u.to_string()), value[1].as_str().map(|s| Uuid::parse(s).unwrap().to_string()));
                    value[2].clone()
                }
                _ => value,
            };
            let by_value = TableUpdates::decode(updates, UpdateFormat::Update2)
                .map_err(|e| TestCaseError::fail(format!("the Value decoder refuses what streaming accepted ({e}): {text}")))?;
            prop_assert_eq!(fast.tables, by_value.tables);
        }
    }

    /// `from_json_str` (used on dumps) against `decode` on the same text.
    #[test]
    fn table_updates_from_text_match_by_value(updates in table_updates_json(true), v1 in table_updates_json(false)) {
        for (json, format) in [(updates, UpdateFormat::Update2), (v1, UpdateFormat::Update)] {
            let fast = TableUpdates::from_json_str(&json.to_string(), format).unwrap();
            prop_assert_eq!(fast, TableUpdates::decode(json, format).unwrap());
        }
    }

    /// Rows read by the streaming `Deserialize` equal rows read through `Value`.
    #[test]
    fn rows_deserialize_as_from_value(row in row_json(), mutations in prop::collection::vec(mutation(), 0..3)) {
        let text = mutate(row.to_string().into_bytes(), &mutations);
        if let Ok(fast) = serde_json::from_slice::<Row>(&text) {
            if let Some(value) = value_of_accepted(&text, "Row's Deserialize")? {
                prop_assert_eq!(Some(fast), Row::from_json_owned(value).ok());
            }
        }
    }
}
