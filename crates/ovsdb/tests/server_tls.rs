//! `ovsdb::Client` over `ssl:` against real `ovsdb-server`s serving `pssl:` with certificates
//! made by `ovs-pki`: transactions (single and pipelined), monitors, reconnect with monitor
//! resume, a RAFT cluster followed over TLS, and every way a handshake can fail, each failing
//! at once with its cause named.

use std::time::{Duration, Instant};

use ovsdb::{Client, ClientOptions, Error, MonitorRequest, Row, TableMonitor, TlsConfig, Transaction};
use test_support::{OvsdbServer, Pki, RaftCluster, TlsFiles};

mod common;
use common::{add_switch, name_is, select_all, DB, NB, WAIT};

fn tls(files: &TlsFiles) -> TlsConfig {
    TlsConfig::from_files(&files.private_key, &files.certificate, &files.ca_cert).expect("TLS files load")
}

fn options(remote: &str, files: &TlsFiles) -> ClientOptions {
    ClientOptions::new(remote)
        .unwrap()
        .tls(tls(files))
        .connect_timeout(WAIT)
        .backoff(Duration::from_millis(20), Duration::from_millis(200))
}

/// Connecting with `options` must fail with a TLS error long before the connect timeout
/// (the timeout is made huge, so a client that kept retrying would be caught), and the error
/// must contain `cause`.
async fn refused(options: ClientOptions, cause: &str) -> Error {
    let options = options.connect_timeout(Duration::from_secs(600));
    let outcome = tokio::time::timeout(Duration::from_secs(120), Client::connect(options))
        .await
        .expect("a refused handshake must not hang until the connect timeout");
    let err = outcome.expect_err("the handshake must be refused");
    assert!(
        matches!(err, Error::Tls { .. } | Error::TlsConfig { .. }),
        "expected a TLS error, got {err:?}"
    );
    assert!(err.to_string().contains(cause), "{err} should say {cause:?}");
    err
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_tls_transact_monitor_and_pipeline_over_ssl() {
    test_support::require_ovn!(
        "server_tls_transact_monitor_and_pipeline_over_ssl",
        ["ovsdb-server", "ovsdb-tool", "ovs-pki", "openssl"]
    );
    let pki = Pki::new("server_tls_basic");
    let server = OvsdbServer::standalone_ssl("server_tls_basic", NB, &pki.issue("server"));
    let client = Client::connect(options(&server.ssl_remote(), &pki.issue("client")))
        .await
        .expect("connect over TLS");
    assert_eq!(
        client.current_remote().unwrap().to_string(),
        server.ssl_remote(),
        "connected over ssl:"
    );
    assert!(client.list_dbs().await.unwrap().contains(&DB.to_owned()));
    let replica = client
        .monitor(DB, MonitorRequest::new().table("Logical_Switch", TableMonitor::all()))
        .await
        .unwrap();
    add_switch(&client, "sw-tls").await;
    replica
        .wait_for("Logical_Switch", name_is("sw-tls"), WAIT)
        .await
        .unwrap();

    // Pipelined: many transactions in a few batches, bigger than one TLS record together.
    let batches: Vec<Vec<Transaction>> = (0..4)
        .map(|b| {
            (0..250)
                .map(|i| {
                    let mut txn = Transaction::new(DB);
                    txn.insert(
                        "Logical_Switch",
                        Row::new().with("name", format!("p{b}-{i}")).with(
                            "other_config",
                            ovsdb::Value::string_map([("pad", "x".repeat(200).as_str())]),
                        ),
                    );
                    txn
                })
                .collect()
        })
        .collect();
    let outcomes = futures_join(&client, batches).await;
    assert_eq!(outcomes, 1000, "every pipelined transaction committed");
    replica
        .wait_for("Logical_Switch", name_is("p3-249"), WAIT)
        .await
        .unwrap();
    assert_eq!(replica.len("Logical_Switch"), 1001);
    // A reply far bigger than a TLS record (a select of every row) arrives whole.
    assert_eq!(select_all(&client, "Logical_Switch").await.len(), 1001);
    client.close().await;

    // More clients of the same identity (one shared TlsConfig) to the same live server: no
    // session resumption, which ovsdb-server would answer with an internal_error alert.
    let shared = tls(&pki.issue("shared"));
    for _ in 0..3 {
        let options = ClientOptions::new(&server.ssl_remote()).unwrap().tls(shared.clone());
        let again = Client::connect(options)
            .await
            .expect("a second handshake with the same identity");
        again.echo().await.unwrap();
        again.close().await;
    }
}

async fn futures_join(client: &Client, batches: Vec<Vec<Transaction>>) -> usize {
    let tasks: Vec<_> = batches
        .into_iter()
        .map(|batch| {
            let client = client.clone();
            tokio::spawn(async move { client.transact_many(batch).await })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        ok += t.await.unwrap().into_iter().filter(|r| r.is_ok()).count();
    }
    ok
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_tls_reconnect_resumes_the_monitor() {
    test_support::require_ovn!(
        "server_tls_reconnect_resumes_the_monitor",
        ["ovsdb-server", "ovsdb-tool", "ovs-pki", "openssl"]
    );
    let pki = Pki::new("server_tls_reconnect");
    let mut server = OvsdbServer::standalone_ssl("server_tls_reconnect", NB, &pki.issue("server"));
    let client = Client::connect(options(&server.ssl_remote(), &pki.issue("client")))
        .await
        .unwrap();
    let replica = client
        .monitor(DB, MonitorRequest::new().table("Logical_Switch", TableMonitor::all()))
        .await
        .unwrap();
    add_switch(&client, "before").await;
    replica
        .wait_for("Logical_Switch", name_is("before"), WAIT)
        .await
        .unwrap();
    let mut events = client.connection_events();

    server.restart();
    // Written by another client while ours reconnects: the resumed monitor must bring it.
    let other = Client::connect(options(&server.ssl_remote(), &pki.issue("other")))
        .await
        .unwrap();
    add_switch(&other, "while-away").await;
    replica
        .wait_for("Logical_Switch", name_is("while-away"), WAIT)
        .await
        .expect("the monitor resumed over TLS");
    let mut saw_reconnect = false;
    while let Ok(e) = events.try_recv() {
        saw_reconnect |= matches!(e, ovsdb::ConnectionEvent::Connected { .. });
    }
    assert!(saw_reconnect, "the client reconnected");
    add_switch(&client, "after").await;
    replica
        .wait_for("Logical_Switch", name_is("after"), WAIT)
        .await
        .unwrap();
    assert_eq!(replica.len("Logical_Switch"), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_tls_raft_leader_only_follows_the_leader_over_ssl() {
    test_support::require_ovn!(
        "server_tls_raft_leader_only_follows_the_leader_over_ssl",
        ["ovsdb-server", "ovsdb-tool", "ovs-pki", "openssl"]
    );
    let pki = Pki::new("server_tls_raft");
    let mut cluster = RaftCluster::start_ssl("server_tls_raft", NB, 3, &pki.issue("server"));
    let leader = cluster.wait_for_leader(Duration::from_secs(30));
    let options = options(&cluster.ssl_remotes(), &pki.issue("client"))
        .database(DB)
        .leader_only(true)
        .connect_timeout(Duration::from_secs(30));
    let client = Client::connect(options).await.unwrap();
    assert_eq!(
        client.current_remote().unwrap().to_string(),
        cluster.member(leader).ssl_remote(),
        "leader_only picked the leader among ssl: remotes"
    );
    let replica = client
        .monitor(DB, MonitorRequest::new().table("Logical_Switch", TableMonitor::all()))
        .await
        .unwrap();
    add_switch(&client, "one").await;
    replica.wait_for("Logical_Switch", name_is("one"), WAIT).await.unwrap();

    cluster.kill(leader);
    let new_leader = cluster.wait_for_leader(Duration::from_secs(30));
    // Sent once the client is on the new leader (a transact is never re-sent on its own).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let current = client.current_remote().map(|r| r.to_string());
        if current.as_deref() == Some(cluster.member(new_leader).ssl_remote().as_str()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "client did not move to the new leader: {current:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    add_switch(&client, "two").await;
    replica.wait_for("Logical_Switch", name_is("two"), WAIT).await.unwrap();
    assert_eq!(replica.len("Logical_Switch"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_tls_handshake_failures_name_their_cause_at_once() {
    test_support::require_ovn!(
        "server_tls_handshake_failures_name_their_cause_at_once",
        ["ovsdb-server", "ovsdb-tool", "ovs-pki", "openssl"]
    );
    let pki = Pki::new("server_tls_refusals");
    let foreign = Pki::new("server_tls_refusals_foreign");
    let server = OvsdbServer::standalone_ssl("server_tls_refusals", NB, &pki.issue("server"));
    let good = pki.issue("client");

    // Our CA did not sign the server's certificate.
    let mut trusts_other_ca = good.clone();
    trusts_other_ca.ca_cert = foreign.ca_cert();
    let err = refused(
        options(&server.ssl_remote(), &trusts_other_ca),
        "is not signed by the CA in",
    )
    .await;
    assert!(err.to_string().contains(&server.ssl_remote()), "{err}");

    // The server's CA did not sign ours.
    let stranger = foreign.issue("stranger");
    let mut foreign_client = stranger.clone();
    foreign_client.ca_cert = pki.ca_cert();
    refused(
        options(&server.ssl_remote(), &foreign_client),
        "does not trust our certificate",
    )
    .await;

    // Our certificate expired.
    refused(
        options(&server.ssl_remote(), &pki.issue_expired("old-client")),
        "refused our certificate",
    )
    .await;

    // The server's certificate expired.
    let expired_server = OvsdbServer::standalone_ssl("server_tls_refusals_old", NB, &pki.issue_expired("old-server"));
    refused(options(&expired_server.ssl_remote(), &good), "has expired").await;

    // A plain TCP listener on the other end.
    let plain = server.tcp_remote().replace("tcp:", "ssl:");
    refused(options(&plain, &good), "TLS").await;

    // The other way round, a plain client at a TLS listener: the hang-up is explained.
    let plain_client = ClientOptions::new(&server.ssl_remote().replace("ssl:", "tcp:"))
        .unwrap()
        .connect_timeout(Duration::from_secs(1));
    let err = Client::connect(plain_client)
        .await
        .expect_err("a TLS listener refuses plain clients");
    assert!(err.to_string().contains("a pssl: listener"), "{err}");

    // The key is not the certificate's: refused before anything is sent.
    let mismatched = TlsConfig::from_files(&stranger.private_key, &good.certificate, &good.ca_cert)
        .expect_err("a key that is not the certificate's");
    assert!(
        mismatched.to_string().contains("does not belong to the certificate"),
        "{mismatched}"
    );

    // ssl: without certificates is a configuration error, not a connection attempt.
    let bare = ClientOptions::new(&server.ssl_remote()).unwrap();
    let err = Client::connect(bare).await.expect_err("ssl: needs certificates");
    assert!(matches!(err, Error::TlsConfig { .. }), "{err:?}");

    // Missing files are named.
    let missing = TlsConfig::from_files(
        std::path::Path::new("/nonexistent/key.pem"),
        &good.certificate,
        &good.ca_cert,
    )
    .expect_err("missing key file");
    assert!(missing.to_string().contains("/nonexistent/key.pem"), "{missing}");

    // After all that, the right certificates still work.
    Client::connect(options(&server.ssl_remote(), &good)).await.unwrap();
}
