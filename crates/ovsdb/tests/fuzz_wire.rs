//! Property tests (proptest) of the public readers of bytes and text from outside: the
//! JSON-RPC framer (the connection's reader cuts every message it does not take by its fast
//! path with it) and the public message parser, OVSDB datum notation, rows, remotes.
//!
//! The reader's own decoders (`plain_response_at` + `plain_results_prefix`, `plain_response`,
//! `Incoming::parse`, the update/update2/update3 and monitor-reply decoders) are crate-private:
//! they are compared with serde_json in `src/decoder_props.rs`, and the whole reader is fed
//! junk over a socket in `tests/reader_junk.rs`.
//!
//! - Arbitrary bytes cut at arbitrary points never panic the framer or the parser.
//! - Valid messages, concatenated with arbitrary whitespace and cut anywhere, come out whole,
//!   in order, and equal to what was sent.
//! - Datum notation round-trips: `to_json(from_json(j)) == j` for every well-formed value.
//! - Remotes: parsing never panics, and a parsed remote re-parses from its display form.

use ovsdb::jsonrpc::{Framer, Message};
use ovsdb::{Remote, Row, Value};
use proptest::prelude::*;
use serde_json::{json, Value as Json};

fn config() -> ProptestConfig {
    ProptestConfig {
        // PROPTEST_CASES=20000 for a longer hunt.
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(256),
        // Shrunk failures are printed; do not write regression files into the source tree.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Strings heavy in what makes framing hard: quotes, backslashes, brackets, non-ASCII.
fn tricky_string() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9_-]{0,12}",
        prop::collection::vec(
            prop_oneof![
                Just("\"".to_owned()),
                Just("\\".to_owned()),
                Just("\\\"".to_owned()),
                Just("{".to_owned()),
                Just("}".to_owned()),
                Just("[".to_owned()),
                Just("]".to_owned()),
                Just("é".to_owned()),
                Just("\u{1F600}".to_owned()),
                Just("\n".to_owned()),
                Just("\u{0}".to_owned()),
                "[a-z ]{1,3}",
            ],
            0..12
        )
        .prop_map(|parts| parts.concat()),
        any::<String>(),
    ]
}

/// Reals that serde_json prints and parses back exactly.
fn exact_real() -> impl Strategy<Value = f64> {
    (any::<i32>(), 0u32..8).prop_map(|(m, e)| f64::from(m) / f64::from(1u32 << e))
}

fn arb_json() -> impl Strategy<Value = Json> {
    let leaf = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::Bool),
        any::<i64>().prop_map(|i| json!(i)),
        exact_real().prop_map(|f| json!(f)),
        tricky_string().prop_map(Json::String),
    ];
    leaf.prop_recursive(4, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Json::Array),
            prop::collection::vec((tricky_string(), inner), 0..6).prop_map(|kv| Json::Object(kv.into_iter().collect())),
        ]
    })
}

fn non_null_json() -> impl Strategy<Value = Json> {
    arb_json().prop_map(|j| if j.is_null() { json!(0) } else { j })
}

fn arb_message() -> impl Strategy<Value = Message> {
    let params = || prop::collection::vec(arb_json(), 0..4).prop_map(Json::Array);
    prop_oneof![
        (non_null_json(), tricky_string(), params()).prop_map(|(id, method, params)| Message::Request {
            id,
            method,
            params
        }),
        (tricky_string(), params()).prop_map(|(method, params)| Message::Notification { method, params }),
        (non_null_json(), non_null_json()).prop_map(|(id, result)| Message::Response {
            id,
            result,
            error: Json::Null
        }),
        (non_null_json(), non_null_json()).prop_map(|(id, error)| Message::Response {
            id,
            result: Json::Null,
            error
        }),
    ]
}

/// Cuts `bytes` at the given points (taken modulo the length, any order, duplicates allowed).
fn chunks(bytes: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    points.push(0);
    points.push(bytes.len());
    points.sort_unstable();
    points.windows(2).map(|w| bytes[w[0]..w[1]].to_vec()).collect()
}

/// Feeds the chunks one by one, draining frames after each; stops at the first error.
fn frame_all(pieces: &[Vec<u8>]) -> (Vec<Vec<u8>>, Option<String>) {
    let mut framer = Framer::new();
    let mut frames = Vec::new();
    for piece in pieces {
        framer.extend(piece);
        loop {
            match framer.next_frame() {
                Ok(Some(frame)) => frames.push(frame.to_vec()),
                Ok(None) => break,
                Err(e) => return (frames, Some(e.to_string())),
            }
        }
    }
    (frames, None)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn fuzz_framer_survives_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2048),
                                            cuts in prop::collection::vec(any::<usize>(), 0..16)) {
        let (frames, _) = frame_all(&chunks(&bytes, &cuts));
        for frame in frames {
            let _ = Message::parse(&frame);
        }
    }

    #[test]
    fn fuzz_framer_survives_json_like_noise(
        pieces in prop::collection::vec(prop_oneof![
            Just(b"{".to_vec()), Just(b"}".to_vec()), Just(b"[".to_vec()), Just(b"]".to_vec()),
            Just(b"\"".to_vec()), Just(b"\\".to_vec()), Just(b" ".to_vec()), Just(b"1".to_vec()),
            Just(b"\"id\":".to_vec()), Just(b",".to_vec()), Just("é".as_bytes().to_vec()),
        ], 0..200),
        cuts in prop::collection::vec(any::<usize>(), 0..16),
    ) {
        let bytes = pieces.concat();
        let (frames, _) = frame_all(&chunks(&bytes, &cuts));
        for frame in frames {
            let _ = Message::parse(&frame);
        }
    }

    #[test]
    fn fuzz_valid_messages_round_trip_whatever_the_split(
        messages in prop::collection::vec(arb_message(), 1..6),
        gaps in prop::collection::vec("[ \t\r\n]{0,3}", 6),
        cuts in prop::collection::vec(any::<usize>(), 0..24),
    ) {
        let mut stream = Vec::new();
        for (m, gap) in messages.iter().zip(&gaps) {
            stream.extend_from_slice(gap.as_bytes());
            m.write_to(&mut stream);
        }
        let (frames, err) = frame_all(&chunks(&stream, &cuts));
        prop_assert!(err.is_none(), "framing error on a valid stream: {err:?}");
        prop_assert_eq!(frames.len(), messages.len());
        for (frame, sent) in frames.iter().zip(&messages) {
            let got = Message::parse(frame).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(&got, sent);
        }
    }

    #[test]
    fn fuzz_valid_message_then_garbage_still_yields_the_message(
        message in arb_message(),
        garbage in prop::collection::vec(any::<u8>(), 0..64),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
    ) {
        let mut stream = message.to_bytes();
        stream.extend_from_slice(&garbage);
        let (frames, _) = frame_all(&chunks(&stream, &cuts));
        prop_assert!(!frames.is_empty());
        prop_assert_eq!(Message::parse(&frames[0]).map_err(|e| TestCaseError::fail(e.to_string()))?, message);
    }

    #[test]
    fn fuzz_datum_and_row_decoding_never_panics(j in arb_json()) {
        if let Ok(v) = Value::from_json(&j) {
            // Whatever decoded must re-decode to itself from its own notation.
            prop_assert_eq!(Value::from_json(&v.to_json()).ok(), Some(v));
        }
        if let Ok(row) = Row::from_json(&j) {
            prop_assert_eq!(Row::from_json(&row.to_json()).ok(), Some(row));
        }
        let _ = ovsdb::Atom::from_json(&j);
        let _ = ovsdb::schema::DatabaseSchema::from_json(&j);
    }

    #[test]
    fn fuzz_datum_notation_round_trips_exactly(j in arb_datum_json()) {
        let v = Value::from_json(&j).map_err(|e| TestCaseError::fail(format!("{j}: {e}")))?;
        prop_assert_eq!(v.to_json(), j);
    }

    #[test]
    fn fuzz_row_notation_round_trips_exactly(
        columns in prop::collection::btree_map("[a-z_]{1,10}", arb_datum_json(), 0..8)
    ) {
        let j = Json::Object(columns.into_iter().collect());
        let row = Row::from_json(&j).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(row.to_json(), j);
    }

    #[test]
    fn fuzz_remote_parse_never_panics_and_reparses(s in prop_oneof![
        any::<String>(),
        "(unix|tcp|ssl|ptcp|punix|tcpx):[\\[\\]:a-z0-9./ ]{0,20}",
        "tcp:\\[[0-9a-f:]{0,12}\\]:[0-9]{0,6}",
        "tcp:[0-9.]{0,15}:[0-9]{0,6}",
    ]) {
        if let Ok(remote) = Remote::parse(&s) {
            let shown = remote.to_string();
            prop_assert_eq!(Remote::parse(&shown).ok(), Some(remote), "{} displayed as {}", s, shown);
        }
        let _ = Remote::parse_list(&s);
    }
}

/// JSON in OVSDB datum notation as ovsdb-server writes it (lowercase UUIDs).
fn arb_atom_json() -> impl Strategy<Value = Json> {
    prop_oneof![
        any::<i64>().prop_map(|i| json!(i)),
        exact_real()
            .prop_filter("integral reals print as integers", |f| f.fract() != 0.0)
            .prop_map(|f| json!(f)),
        any::<bool>().prop_map(Json::Bool),
        tricky_string().prop_map(Json::String),
        any::<u128>().prop_map(|u| json!(["uuid", uuid::Uuid::from_u128(u).to_string()])),
        "[a-z_][a-z0-9_]{0,8}".prop_map(|n| json!(["named-uuid", n])),
    ]
}

fn arb_datum_json() -> impl Strategy<Value = Json> {
    prop_oneof![
        arb_atom_json(),
        prop::collection::vec(arb_atom_json(), 0..5).prop_map(|a| json!(["set", a])),
        prop::collection::vec((arb_atom_json(), arb_atom_json()), 0..5)
            .prop_map(|kv| json!(["map", kv.into_iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>()])),
    ]
}
