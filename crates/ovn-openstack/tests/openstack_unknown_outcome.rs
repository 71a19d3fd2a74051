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

async fn rows(nb: &Client, table: &str, condition: Condition) -> Vec<ovsdb::Row> {
    let mut txn = Transaction::new("OVN_Northbound");
    txn.select(table, vec![condition], None);
    let r = nb.transact(txn).await.unwrap();
    r.results[0].rows.clone().unwrap_or_default()
}

fn uuids(row: &ovsdb::Row, column: &str) -> Vec<ovsdb::Uuid> {
    match row.get(column) {
        Some(ovsdb::Value::Set(set)) => set.iter().filter_map(|a| a.as_uuid()).collect(),
        Some(v) => v.as_uuid().into_iter().collect(),
        None => vec![],
    }
}

/// The other transactions a scenario sends (network, subnet, router, router interface,
/// security group and rule creates): each cut in flight, found in the NB by what Neutron
/// writes, sent again only if lost; the rows they inserted are known to the mimic by their
/// real uuids, so the action's next transactions (which name them) commit.
#[tokio::test]
async fn network_router_and_security_group_transactions_of_unknown_outcome_are_checked_in_the_nb() {
    let test = "network_router_and_security_group_transactions_of_unknown_outcome_are_checked_in_the_nb";
    test_support::require_ovn!(test, ["ovsdb-server", "ovsdb-tool", "ovn-northd"]);
    let central = Central::start("unknown_outcome");
    let dir = TempDir::new("unknown_outcome");
    let proxy = MethodFilterProxy::start(central.nb().socket_path(), &dir.path().join("nb.sock"), &[]);
    let direct = Client::connect(ClientOptions::new(&central.nb_remote()).unwrap())
        .await
        .unwrap();
    let neutron = setup(&central, &proxy, Some(Duration::from_secs(20))).await;

    // Network create, committed: the Logical_Switch once, and the metadata port (the next
    // transaction, which names the switch by its uuid) in it.
    proxy.cut_next_transaction_writing(true, "Logical_Switch");
    let report = neutron
        .network_create(NetworkSpec {
            name: "net2".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let net = report.id.unwrap();
    assert_eq!(
        report.unknown_outcomes,
        [format!(
            "T1b Logical_Switch neutron-{net} (revision 1): outcome unknown, committed"
        )]
    );
    let switches = rows(
        &direct,
        "Logical_Switch",
        Condition::eq("name", format!("neutron-{net}").as_str()),
    )
    .await;
    assert_eq!(switches.len(), 1);
    assert_eq!(
        uuids(&switches[0], "ports").len(),
        1,
        "the metadata port is in the switch"
    );

    // Subnet create, its DHCP_Options lost: sent again, one row.
    proxy.cut_next_transaction_writing(false, "DHCP_Options");
    let report = neutron
        .subnet_create(SubnetSpec::new("sub2", "net2", "10.0.1.0/24"))
        .await
        .unwrap();
    let subnet = report.id.unwrap();
    assert_eq!(
        report.unknown_outcomes,
        [format!(
            "T2 subnet DHCP_Options + metadata port {subnet} (revision 0): outcome unknown, not committed: sent again"
        )]
    );
    let by_subnet = Condition::includes(
        "external_ids",
        ovsdb::Value::string_map([("subnet_id", subnet.to_string().as_str())]),
    );
    assert_eq!(rows(&direct, "DHCP_Options", by_subnet).await.len(), 1);

    // Router create, lost: sent again.
    proxy.cut_next_transaction_writing(false, "Logical_Router");
    let report = neutron.router_create("r", None).await.unwrap();
    let router = report.id.unwrap();
    assert_eq!(
        report.unknown_outcomes,
        [format!(
            "T5 Logical_Router neutron-{router} (revision 0): outcome unknown, not committed: sent again"
        )]
    );

    // Router interface add, committed: the LRP once, in the router, and the action's LRP
    // updates (which name it by uuid) commit.
    proxy.cut_next_transaction_writing(true, "Logical_Router_Port");
    let report = neutron.router_add_subnet("r", "sub2").await.unwrap();
    let port = report.id.unwrap();
    assert_eq!(report.unknown_outcomes.len(), 1, "{:?}", report.unknown_outcomes);
    assert!(
        report.unknown_outcomes[0].starts_with(&format!("T7b router interface lrp-{port} (revision ")),
        "{:?}",
        report.unknown_outcomes
    );
    assert!(report.unknown_outcomes[0].ends_with("outcome unknown, committed"));
    let lrps = rows(
        &direct,
        "Logical_Router_Port",
        Condition::eq("name", format!("lrp-{port}").as_str()),
    )
    .await;
    assert_eq!(lrps.len(), 1);
    let routers = rows(
        &direct,
        "Logical_Router",
        Condition::eq("name", format!("neutron-{router}").as_str()),
    )
    .await;
    assert_eq!(routers.len(), 1);
    assert_eq!(uuids(&routers[0], "ports"), [lrps[0].uuid().unwrap()]);

    // Security group create, committed; a rule create, lost: each once.
    proxy.cut_next_transaction_writing(true, "Port_Group");
    let report = neutron.security_group_create("sg", None, true).await.unwrap();
    assert_eq!(report.unknown_outcomes.len(), 1, "{:?}", report.unknown_outcomes);
    assert!(report.unknown_outcomes[0].ends_with(": outcome unknown, committed"));
    let sg = report.id.unwrap();
    let pg = format!("pg_{}", sg.to_string().replace('-', "_"));
    assert_eq!(
        rows(&direct, "Port_Group", Condition::eq("name", pg.as_str()))
            .await
            .len(),
        1
    );
    proxy.cut_next_transaction_writing(false, "\"ACL\"");
    let report = neutron
        .security_group_rule_create(ovn_openstack::RuleSpec {
            security_group: "sg".into(),
            direction: ovn_openstack::model::Direction::Ingress,
            ethertype: 4,
            protocol: Some("tcp".into()),
            port_range_min: Some(22),
            port_range_max: Some(22),
            remote_ip_prefix: None,
            remote_group: None,
        })
        .await
        .unwrap();
    let rule = report.id.unwrap();
    assert_eq!(
        report.unknown_outcomes,
        [format!(
            "security group rule create {rule}: outcome unknown, not committed: sent again"
        )]
    );
    let by_rule = Condition::includes(
        "external_ids",
        ovsdb::Value::string_map([("neutron:security_group_rule_id", rule.to_string().as_str())]),
    );
    assert_eq!(rows(&direct, "ACL", by_rule).await.len(), 1);
    assert_eq!(neutron.take_unknown_outcomes().len(), 6);
}

/// A gateway set whose reply is lost, on the second router of an external network: its
/// default route holds the same values as the first router's, and the mimic must take its own
/// (the one its router references) — else unsetting the gateway would leave it behind.
#[tokio::test]
async fn a_committed_gateway_set_knows_its_own_route_among_identical_ones() {
    let test = "a_committed_gateway_set_knows_its_own_route_among_identical_ones";
    test_support::require_ovn!(test, ["ovsdb-server", "ovsdb-tool", "ovn-northd"]);
    let central = Central::start("unknown_outcome");
    let dir = TempDir::new("unknown_outcome");
    let proxy = MethodFilterProxy::start(central.nb().socket_path(), &dir.path().join("nb.sock"), &[]);
    let direct = Client::connect(ClientOptions::new(&central.nb_remote()).unwrap())
        .await
        .unwrap();
    let sb = Client::connect(ClientOptions::new(&central.sb_remote()).unwrap())
        .await
        .unwrap();
    ovn_openstack::sb_agent::register_chassis(
        &sb,
        &ovn_openstack::sb_agent::ChassisSpec::gateway("gw1", "127.0.0.2", "physnet1:br-ex"),
    )
    .await
    .unwrap();
    let neutron = setup(&central, &proxy, Some(Duration::from_secs(20))).await;
    neutron
        .network_create(NetworkSpec {
            name: "public".into(),
            external: true,
            network_type: Some("flat".into()),
            physical_network: Some("physnet1".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut ext = SubnetSpec::new("public-sub", "public", "172.24.4.0/24");
    ext.enable_dhcp = false;
    neutron.subnet_create(ext).await.unwrap();
    let gateway = || ovn_openstack::GatewaySpec {
        network: "public".into(),
        ..Default::default()
    };
    let mut routers = Vec::new();
    for name in ["r1", "r2"] {
        routers.push(neutron.router_create(name, None).await.unwrap().id.unwrap());
    }
    neutron.router_set_gateway("r1", gateway()).await.unwrap();
    proxy.cut_next_transaction_writing(true, "Logical_Router_Static_Route");
    let report = neutron.router_set_gateway("r2", gateway()).await.unwrap();
    assert_eq!(report.unknown_outcomes.len(), 1, "{:?}", report.unknown_outcomes);
    assert!(
        report.unknown_outcomes[0].starts_with("T6b router gateway lrp-")
            && report.unknown_outcomes[0].ends_with("outcome unknown, committed"),
        "{:?}",
        report.unknown_outcomes
    );
    let routes_of = |router: ovn_openstack::Id| {
        let direct = &direct;
        async move {
            let lr = rows(
                direct,
                "Logical_Router",
                Condition::eq("name", format!("neutron-{router}").as_str()),
            )
            .await;
            uuids(&lr[0], "static_routes")
        }
    };
    assert_eq!(routes_of(routers[1]).await.len(), 1);
    neutron.router_unset_gateway("r2").await.unwrap();
    assert_eq!(routes_of(routers[1]).await, [], "r2's own route is removed");
    assert_eq!(routes_of(routers[0]).await.len(), 1, "r1's route stays");
}
