//! A port transaction whose outcome is unknown (the connection to the NB cut with it in
//! flight, as when its RAFT leader is killed), with `Config::verify_unknown_outcomes` set:
//! the mimic checks the NB by the port's revision number — committed: done, not sent again;
//! not committed: sent once more — so the action succeeds and the NB holds the port once.
//! Without the setting, the unknown outcome is the action's error. Against a real NB, through
//! a proxy that cuts the connection before or after the server got the transaction.

use std::sync::Arc;
use std::time::Duration;

use ovn_openstack::{Config, NetworkSpec, Neutron, PortSpec, PortUpdate, SubnetSpec};
use ovsdb::{Client, ClientOptions, Condition, Transaction};
use test_support::{Central, MethodFilterProxy, TempDir};

async fn lsps_named(nb: &Client, name: &str) -> Vec<String> {
    let mut txn = Transaction::new("OVN_Northbound");
    txn.select(
        "Logical_Switch_Port",
        vec![Condition::eq("name", name)],
        Some(vec!["external_ids".into()]),
    );
    let r = nb.transact(txn).await.unwrap();
    r.results[0]
        .rows
        .iter()
        .flatten()
        .map(|row| {
            row.get("external_ids")
                .and_then(|e| e.map_get_str("neutron:revision_number"))
                .unwrap_or("")
                .to_owned()
        })
        .collect()
}

fn port(name: &str) -> PortSpec {
    PortSpec {
        network: "net".into(),
        name: name.into(),
        ..Default::default()
    }
}

async fn setup(central: &Central, proxy: &MethodFilterProxy, verify: Option<Duration>) -> Arc<Neutron> {
    let nb = Client::connect(ClientOptions::new(&proxy.remote()).unwrap())
        .await
        .unwrap();
    let sb = Client::connect(ClientOptions::new(&central.sb_remote()).unwrap())
        .await
        .unwrap();
    let neutron = Neutron::new(
        nb,
        sb,
        Config {
            verify_unknown_outcomes: verify,
            ..Default::default()
        },
    );
    neutron.start().await.unwrap();
    neutron
        .network_create(NetworkSpec {
            name: "net".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    neutron
        .subnet_create(SubnetSpec::new("sub", "net", "10.0.0.0/24"))
        .await
        .unwrap();
    // The project's default security group exists now: a port create is one transaction.
    neutron.port_create(port("first")).await.unwrap();
    neutron
}

#[tokio::test]
async fn port_transactions_of_unknown_outcome_are_checked_in_the_nb_and_sent_again_only_if_lost() {
    let test = "port_transactions_of_unknown_outcome_are_checked_in_the_nb_and_sent_again_only_if_lost";
    test_support::require_ovn!(test, ["ovsdb-server", "ovsdb-tool", "ovn-northd"]);
    let central = Central::start("unknown_outcome");
    let dir = TempDir::new("unknown_outcome");
    let proxy = MethodFilterProxy::start(central.nb().socket_path(), &dir.path().join("nb.sock"), &[]);
    let direct = Client::connect(ClientOptions::new(&central.nb_remote()).unwrap())
        .await
        .unwrap();
    let neutron = setup(&central, &proxy, Some(Duration::from_secs(20))).await;

    // Committed, reply lost: found by its revision, not sent again.
    proxy.cut_next_transaction(true);
    let report = neutron.port_create(port("committed")).await.unwrap();
    let id = report.id.unwrap().to_string();
    assert_eq!(
        report.unknown_outcomes,
        [format!("T8a port LSP {id} (revision 1): outcome unknown, committed")]
    );
    assert_eq!(lsps_named(&direct, &id).await, ["1"]);

    // Lost before the server got it: sent once more.
    proxy.cut_next_transaction(false);
    let report = neutron.port_create(port("lost")).await.unwrap();
    let lost = report.id.unwrap().to_string();
    assert_eq!(
        report.unknown_outcomes,
        [format!(
            "T8a port LSP {lost} (revision 1): outcome unknown, not committed: sent again"
        )]
    );
    assert_eq!(lsps_named(&direct, &lost).await, ["1"]);

    // An update (next revision) whose reply is lost: committed, and the mimic's state follows,
    // so the next update (which verifies the LSP's current external_ids) commits too.
    proxy.cut_next_transaction(true);
    let report = neutron
        .port_update(
            &id,
            PortUpdate {
                host: Some("hv1".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        report.unknown_outcomes,
        [format!("T8b port update {id} (revision 2): outcome unknown, committed")]
    );
    neutron
        .port_update(
            &id,
            PortUpdate {
                host: Some("hv2".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(lsps_named(&direct, &id).await, ["3"]);
    assert_eq!(neutron.take_unknown_outcomes().len(), 3);
}

#[tokio::test]
async fn without_the_setting_an_unknown_outcome_is_the_actions_error() {
    let test = "without_the_setting_an_unknown_outcome_is_the_actions_error";
    test_support::require_ovn!(test, ["ovsdb-server", "ovsdb-tool", "ovn-northd"]);
    let central = Central::start("unknown_outcome");
    let dir = TempDir::new("unknown_outcome");
    let proxy = MethodFilterProxy::start(central.nb().socket_path(), &dir.path().join("nb.sock"), &[]);
    let neutron = setup(&central, &proxy, None).await;
    proxy.cut_next_transaction(true);
    let e = neutron.port_create(port("unknown")).await.unwrap_err();
    assert!(
        matches!(e, ovn_openstack::Error::Ovsdb(ovsdb::Error::OutcomeUnknown { .. })),
        "{e}"
    );
    assert!(neutron.take_unknown_outcomes().is_empty());
}
