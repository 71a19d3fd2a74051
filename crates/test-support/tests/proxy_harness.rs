//! `MethodFilterProxy` in front of a real ovsdb-server, spoken to with raw JSON-RPC: refusals
//! look exactly like the server's own, everything else passes through, and connections and
//! the proxy itself go away when asked.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use serde_json::{json, Value as Json};
use test_support::{MethodFilterProxy, OvsdbServer, TempDir};

const NB: &str = "/usr/share/ovn/ovn-nb.ovsschema";

/// A raw JSON-RPC session: one request at a time, replies read as whole JSON values.
struct Session {
    stream: UnixStream,
    replies: serde_json::StreamDeserializer<'static, serde_json::de::IoRead<UnixStream>, Json>,
}

impl Session {
    fn open(path: &std::path::Path) -> Session {
        let stream = UnixStream::connect(path).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let reader = stream.try_clone().unwrap();
        Session {
            stream,
            replies: serde_json::Deserializer::from_reader(reader).into_iter(),
        }
    }

    /// Sends `request` and returns the next message, or `None` once the connection is closed.
    fn call(&mut self, request: &Json) -> Option<Json> {
        self.stream.write_all(request.to_string().as_bytes()).ok()?;
        self.next()
    }

    fn next(&mut self) -> Option<Json> {
        self.replies.next()?.ok()
    }
}

/// A `monitor_cond` request; its JSON-RPC id doubles as the monitor id (unique per session).
fn monitor_cond(id: u64) -> Json {
    json!({"id": id, "method": "monitor_cond", "params": ["OVN_Northbound", format!("m{id}"), {"NB_Global": [{}]}]})
}

#[test]
fn proxy_refuses_like_the_server_and_forwards_the_rest() {
    test_support::require_ovn!(
        "proxy_refuses_like_the_server_and_forwards_the_rest",
        ["ovsdb-server", "ovsdb-tool", "ovs-appctl"]
    );
    let server = OvsdbServer::standalone("proxy_refuses", NB);
    let dir = TempDir::new("proxy_refuses");
    let proxy = MethodFilterProxy::start(server.socket_path(), &dir.path().join("p.sock"), &["monitor_cond"]);

    let mut direct = Session::open(server.socket_path());
    let server_says = direct
        .call(&json!({"id": 7, "method": "no_such_method", "params": []}))
        .unwrap();
    let mut proxied = Session::open(proxy.socket_path());
    let proxy_says = proxied.call(&monitor_cond(7)).unwrap();
    assert_eq!(proxy_says.to_string(), server_says.to_string());
    assert_eq!(proxy_says, json!({"id": 7, "error": "unknown method"}));
    assert_eq!(proxy.refused(), vec!["monitor_cond".to_owned()]);

    // Other methods reach the server, several values in one write included.
    let echo = proxied
        .call(&json!({"id": 8, "method": "echo", "params": ["a}\"{"]}))
        .unwrap();
    assert_eq!(echo, json!({"id": 8, "result": ["a}\"{"], "error": null}));
    proxied
        .stream
        .write_all(br#"{"id":9,"method":"list_dbs","params":[]} {"id":10,"method":"echo","params":[]}"#)
        .unwrap();
    let dbs = proxied.next().unwrap();
    assert!(
        dbs["result"].as_array().unwrap().contains(&json!("OVN_Northbound")),
        "{dbs}"
    );
    assert_eq!(proxied.next().unwrap()["id"], json!(10));
    let plain = proxied
        .call(&json!({"id": 11, "method": "monitor", "params": ["OVN_Northbound", "m", {"NB_Global": {}}]}))
        .unwrap();
    assert!(plain["error"].is_null(), "{plain}");
    assert_eq!(proxy.refused(), vec!["monitor_cond".to_owned()]);

    // The refused set can change under a live connection.
    proxy.set_refused(&["echo"]);
    let cond = proxied.call(&monitor_cond(12)).unwrap();
    assert!(cond["error"].is_null(), "{cond}");
    let echo = proxied
        .call(&json!({"id": 13, "method": "echo", "params": []}))
        .unwrap();
    assert_eq!(echo, json!({"id": 13, "error": "unknown method"}));
    assert_eq!(proxy.refused(), vec!["monitor_cond".to_owned(), "echo".to_owned()]);
}

#[test]
fn proxy_drops_connections_and_cleans_up() {
    test_support::require_ovn!(
        "proxy_drops_connections_and_cleans_up",
        ["ovsdb-server", "ovsdb-tool", "ovs-appctl"]
    );
    let server = OvsdbServer::standalone("proxy_drops", NB);
    let dir = TempDir::new("proxy_drops");
    let listen = dir.path().join("p.sock");
    let proxy = MethodFilterProxy::start(server.socket_path(), &listen, &[]);

    let mut first = Session::open(&listen);
    let mut second = Session::open(&listen);
    for s in [&mut first, &mut second] {
        assert!(s.call(&json!({"id": 1, "method": "echo", "params": []})).is_some());
    }
    assert_eq!(proxy.connection_count(), 2);
    proxy.drop_connections();
    assert_eq!(proxy.connection_count(), 0);
    assert!(first.next().is_none(), "the client connection was not closed");
    assert!(second.next().is_none(), "the client connection was not closed");

    // Closed on arrival while not accepting, served again afterwards.
    proxy.set_accepting(false);
    let mut held_off = Session::open(&listen);
    assert!(held_off
        .call(&json!({"id": 2, "method": "echo", "params": []}))
        .is_none());
    proxy.set_accepting(true);
    let mut third = Session::open(&listen);
    assert!(third.call(&json!({"id": 2, "method": "echo", "params": []})).is_some());

    drop(proxy);
    assert!(
        third.next().is_none(),
        "dropping the proxy did not close its connections"
    );
    assert!(!listen.exists(), "the listening socket was not removed");
    assert!(UnixStream::connect(&listen).is_err());
}

#[test]
fn proxy_closes_clients_when_the_server_is_gone() {
    test_support::require_ovn!(
        "proxy_closes_clients_when_the_server_is_gone",
        ["ovsdb-server", "ovsdb-tool", "ovs-appctl"]
    );
    let mut server = OvsdbServer::standalone("proxy_server_gone", NB);
    let dir = TempDir::new("proxy_server_gone");
    let proxy = MethodFilterProxy::start(server.socket_path(), &dir.path().join("p.sock"), &[]);
    let mut session = Session::open(proxy.socket_path());
    assert!(session
        .call(&json!({"id": 1, "method": "echo", "params": []}))
        .is_some());
    server.stop();
    assert!(session.next().is_none(), "the client connection outlived the server's");
    // No upstream: a new client is closed at once.
    let mut refused = Session::open(proxy.socket_path());
    assert!(refused
        .call(&json!({"id": 2, "method": "echo", "params": []}))
        .is_none());
}

#[test]
fn proxy_refusals_never_land_inside_a_server_message() {
    test_support::require_ovn!(
        "proxy_refusals_never_land_inside_a_server_message",
        ["ovsdb-server", "ovsdb-tool", "ovs-appctl"]
    );
    let server = OvsdbServer::standalone("proxy_interleave", NB);
    let dir = TempDir::new("proxy_interleave");
    let proxy = MethodFilterProxy::start(server.socket_path(), &dir.path().join("p.sock"), &["monitor_cond"]);
    let padding = "x".repeat(1024);
    let inserts: Vec<Json> = (0..1000)
        .map(|i| json!({"op": "insert", "table": "Logical_Switch", "row": {"name": format!("ls{i}"), "external_ids": ["map", [["pad", padding]]]}}))
        .collect();
    let mut params = vec![json!("OVN_Northbound")];
    params.extend(inserts);
    let mut direct = Session::open(server.socket_path());
    let done = direct
        .call(&json!({"id": 1, "method": "transact", "params": params}))
        .unwrap();
    assert!(done["error"].is_null(), "{done}");

    // A multi-megabyte reply starts to flow and stalls (nobody reads it), then a refused
    // request is sent: its answer must wait for the end of the reply.
    let mut raw = UnixStream::connect(proxy.socket_path()).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let monitor = json!({"id": 2, "method": "monitor", "params": ["OVN_Northbound", "big", {"Logical_Switch": {}}]});
    raw.write_all(monitor.to_string().as_bytes()).unwrap();
    let mut prefix = vec![0u8; 100];
    raw.read_exact(&mut prefix).unwrap();
    raw.write_all(monitor_cond(3).to_string().as_bytes()).unwrap();
    let reader = std::io::Cursor::new(prefix).chain(raw.try_clone().unwrap());
    let mut replies = serde_json::Deserializer::from_reader(reader).into_iter::<Json>();
    let big = replies.next().unwrap().expect("the big reply arrives whole");
    assert_eq!(big["id"], json!(2));
    assert_eq!(big["result"]["Logical_Switch"].as_object().unwrap().len(), 1000);
    let refusal = replies.next().unwrap().expect("then the refusal");
    assert_eq!(refusal, json!({"id": 3, "error": "unknown method"}));
}
