//! The connection's reader against a server that answers with anything: replies to the
//! client's own request ids in ovsdb-server's layout but mutated, notifications of every
//! update kind, arbitrary bytes, cut into arbitrary writes, then the server hangs up.
//!
//! Whatever arrives, no thread panics, and every request the client made completes (with a
//! result or an error) shortly after the server hung up: nothing waits forever.
//!
//! `PROPTEST_CASES=2000 cargo test -p ovsdb --test reader_junk` for a longer hunt.

use std::io::{Read, Write};
use std::os::unix::net::UnixListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ovsdb::{Client, ClientOptions, Row, Transaction};
use proptest::prelude::*;
use serde_json::{json, Value as Json};

static PANICS: AtomicUsize = AtomicUsize::new(0);

/// Counts panics on any thread (the connection's tasks included), keeping the default report.
fn count_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::SeqCst);
            default(info);
        }));
    });
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(256),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// One thing the server writes.
#[derive(Clone, Debug)]
enum Piece {
    /// A reply to the client's request number `n` (modulo how many it sent).
    Reply {
        n: usize,
        result: Json,
        mutations: Vec<(usize, u8, u8)>,
    },
    Notification {
        message: Json,
        mutations: Vec<(usize, u8, u8)>,
    },
    Raw(Vec<u8>),
}

fn uuid_string() -> impl Strategy<Value = String> {
    any::<u128>().prop_map(|u| uuid_of(u).to_string())
}

fn uuid_of(u: u128) -> String {
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        (u >> 96) as u32,
        (u >> 80) as u16,
        (u >> 64) as u16,
        (u >> 48) as u16,
        u & 0xffff_ffff_ffff
    )
}

fn result() -> impl Strategy<Value = Json> {
    let op = prop_oneof![
        Just(json!({})),
        uuid_string().prop_map(|u| json!({"uuid": ["uuid", u]})),
        any::<u32>().prop_map(|n| json!({"count": n})),
        Just(json!({"rows": [{"name": "x", "tags": ["map", [["a", "b"]]]}]})),
        Just(json!({"error": "constraint violation", "details": "d"})),
    ];
    prop_oneof![
        prop::collection::vec(op, 0..4).prop_map(Json::Array),
        Just(Json::Null),
        Just(json!({"a": ["set", []]})),
    ]
}

fn notification() -> impl Strategy<Value = Json> {
    (uuid_string(), uuid_string(), 0usize..3).prop_map(|(row, txn, kind)| {
        let update2 = json!({"Logical_Switch": {row.clone(): {"insert": {"name": "sw", "ports": ["set", []]}}}});
        match kind {
            0 => json!({"id": null, "method": "update", "params": [1, {"Logical_Switch": {row: {"new": {"name": "sw"}}}}]}),
            1 => json!({"id": null, "method": "update2", "params": [1, update2]}),
            _ => json!({"id": null, "method": "update3", "params": [1, txn, update2]}),
        }
    })
}

/// (position, what, byte): 0 inserts, 1 replaces, 2 deletes, 3 truncates.
fn mutations() -> impl Strategy<Value = Vec<(usize, u8, u8)>> {
    prop::collection::vec(
        (
            any::<usize>(),
            0u8..4,
            prop::sample::select(b"{}[]\",:0123456789 \\\xff".to_vec()),
        ),
        0..3,
    )
}

fn mutate(mut bytes: Vec<u8>, mutations: &[(usize, u8, u8)]) -> Vec<u8> {
    for &(at, what, byte) in mutations {
        let len = bytes.len();
        match what {
            0 => bytes.insert(at % (len + 1), byte),
            1 if len > 0 => bytes[at % len] = byte,
            2 if len > 0 => {
                bytes.remove(at % len);
            }
            3 => bytes.truncate(at % (len + 1)),
            _ => {}
        }
    }
    bytes
}

fn piece() -> impl Strategy<Value = Piece> {
    prop_oneof![
        4 => (any::<usize>(), result(), mutations()).prop_map(|(n, result, mutations)| Piece::Reply { n, result, mutations }),
        2 => (notification(), mutations()).prop_map(|(message, mutations)| Piece::Notification { message, mutations }),
        1 => prop::collection::vec(any::<u8>(), 0..64).prop_map(Piece::Raw),
    ]
}

/// The requests in what the client wrote so far, as (id, method); its probes' string ids
/// are left out.
fn requests(bytes: &[u8]) -> Vec<(u64, String)> {
    serde_json::Deserializer::from_slice(bytes)
        .into_iter::<Json>()
        .map_while(Result::ok)
        .filter_map(|m| Some((m.get("id")?.as_u64()?, m.get("method")?.as_str()?.to_owned())))
        .collect()
}

/// Reads (for a bounded time) until the client has sent `n` requests.
fn read_requests(socket: &mut std::os::unix::net::UnixStream, read: &mut Vec<u8>, n: usize) -> Vec<(u64, String)> {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut seen = requests(read);
    while seen.len() < n && std::time::Instant::now() < deadline {
        let mut chunk = [0u8; 4096];
        match socket.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => read.extend_from_slice(&chunk[..n]),
            Err(_) => {}
        }
        seen = requests(read);
    }
    seen
}

/// Accepts one client, completes its session setup as ovsdb-server does, waits (a bounded
/// time) for its `expected` requests, writes `pieces` in `cuts`-sized writes, and hangs up.
fn serve_junk(listener: UnixListener, expected: usize, pieces: Vec<Piece>, cuts: Vec<usize>) {
    let Ok((mut socket, _)) = listener.accept() else { return };
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("read timeout");
    let mut read = Vec::new();
    let Some((setup, _)) = read_requests(&mut socket, &mut read, 1).first().cloned() else {
        return;
    };
    if socket
        .write_all(format!("{{\"id\":{setup},\"result\":{{}},\"error\":null}}").as_bytes())
        .is_err()
    {
        return;
    }
    let ids: Vec<u64> = read_requests(&mut socket, &mut read, expected + 1)
        .into_iter()
        .skip(1)
        .map(|(id, _)| id)
        .collect();
    let mut out = Vec::new();
    for piece in pieces {
        match piece {
            Piece::Reply { n, result, mutations } => {
                let id = if ids.is_empty() { n as u64 } else { ids[n % ids.len()] };
                let reply = serde_json::to_vec(&json!({"id": id, "result": result, "error": null})).unwrap();
                out.extend(mutate(reply, &mutations));
            }
            Piece::Notification { message, mutations } => {
                out.extend(mutate(serde_json::to_vec(&message).unwrap(), &mutations))
            }
            Piece::Raw(bytes) => out.extend(bytes),
        }
    }
    let mut at = 0;
    for cut in cuts {
        let end = (at + cut % 97 + 1).min(out.len());
        if socket.write_all(&out[at..end]).is_err() {
            return;
        }
        at = end;
    }
    let _ = socket.write_all(&out[at..]);
}

fn insert(name: &str) -> Transaction {
    let mut txn = Transaction::new("OVN_Northbound");
    txn.insert("Logical_Switch", Row::new().with("name", name));
    txn
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn reader_survives_whatever_the_server_sends(
        pieces in prop::collection::vec(piece(), 0..8),
        cuts in prop::collection::vec(any::<usize>(), 0..12),
        batch in 1usize..4,
    ) {
        count_panics();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("junk.sock");
        let listener = UnixListener::bind(&path).unwrap();
        // transact_many's batch plus one plain transact and an echo.
        let expected = batch + 2;
        let server = std::thread::spawn(move || serve_junk(listener, expected, pieces, cuts));

        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let finished = runtime.block_on(async {
            let options = ClientOptions::new(&format!("unix:{}", path.display()))
                .unwrap()
                .check_schema(false)
                .reconnect(false)
                .connect_timeout(Duration::from_secs(5));
            let client = Client::connect(options).await.unwrap();
            let work = async {
                let many = client.transact_many((0..batch).map(|i| insert(&format!("b{i}"))).collect());
                let one = client.transact(insert("one"));
                let echo = client.echo();
                let (many, one, echo) = tokio::join!(many, one, echo);
                (many.len(), one.is_ok(), echo.is_ok())
            };
            // The server hangs up within about 5 s whatever it got: a request still waiting
            // long after that waits forever.
            let outcome = tokio::time::timeout(Duration::from_secs(20), work).await;
            client.close().await;
            outcome
        });
        runtime.shutdown_timeout(Duration::from_secs(5));
        server.join().expect("the junk server thread");
        prop_assert!(finished.is_ok(), "a request never completed");
        prop_assert_eq!(finished.unwrap().0, batch);
        prop_assert_eq!(PANICS.load(Ordering::SeqCst), 0, "a thread panicked");
    }
}
