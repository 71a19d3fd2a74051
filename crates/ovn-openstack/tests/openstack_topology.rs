//! Against a real NB + SB + ovn-northd: a whole topology (two projects, routers with
//! gateways on two gateway chassis, VMs that go ACTIVE, floating IPs, security groups and
//! rules) created and then deleted leaves the NB exactly as after start-up; and bad input
//! (unknown objects, overlapping CIDR, full subnet, too many gateway chassis) fails with a
//! clear error and leaves the NB unchanged.

use std::sync::Arc;
use std::time::Duration;

use ovn_openstack::sb_agent::{self, ChassisSpec};
use ovn_openstack::snapshot::{diff_text, Normalizer};
use ovn_openstack::{Config, Error, GatewaySpec, NetworkSpec, Neutron, PortSpec, RuleSpec, SubnetGateway, SubnetSpec};
use ovsdb::{Client, ClientOptions, MonitorRequest, Mutation, Mutator, TableMonitor, Transaction};
use test_support::Central;

const WAIT: Duration = Duration::from_secs(30);

struct Setup {
    _central: Central,
    nb: Client,
    sb: Client,
    neutron: Arc<Neutron>,
}

async fn setup(test: &str) -> Setup {
    let central = Central::start(test);
    let nb = Client::connect(ClientOptions::new(&central.nb_remote()).unwrap())
        .await
        .unwrap();
    let sb = Client::connect(ClientOptions::new(&central.sb_remote()).unwrap())
        .await
        .unwrap();
    for spec in [
        ChassisSpec::compute("hv1", "127.0.0.1"),
        ChassisSpec::compute("hv2", "127.0.0.3"),
        ChassisSpec::gateway("gw1", "127.0.0.2", "physnet1:br-ex"),
        ChassisSpec::gateway("gw2", "127.0.0.4", "physnet1:br-ex"),
    ] {
        sb_agent::register_chassis(&sb, &spec).await.unwrap();
    }
    let neutron = Neutron::new(nb.clone(), sb.clone(), Config::default());
    neutron.start().await.unwrap();
    Setup {
        _central: central,
        nb,
        sb,
        neutron,
    }
}

/// The NB without the header lines, normalized with `n` (shared across calls, so unchanged
/// rows keep their labels).
async fn nb_text(nb: &Client, n: &mut Normalizer) -> String {
    sync_northd(nb).await;
    let doc = ovsdb::dump::dump(nb, "OVN_Northbound").await.unwrap();
    let text = n.normalize(&doc).unwrap();
    text.lines().skip(3).collect::<Vec<_>>().join("\n")
}

/// Waits until ovn-northd has processed everything written so far (its `up` updates
/// included): `ovn-nbctl --wait=sb sync`, then one more round trip.
async fn sync_northd(nb: &Client) {
    for _ in 0..2 {
        let mut txn = Transaction::new("OVN_Northbound");
        txn.mutate("NB_Global", vec![], vec![Mutation::new("nb_cfg", Mutator::Add, 1i64)]);
        txn.select("NB_Global", vec![], Some(vec!["nb_cfg".into()]));
        let r = nb.transact(txn).await.unwrap();
        let target = r.results[1].rows.as_ref().unwrap()[0]
            .get("nb_cfg")
            .and_then(|v| v.as_i64())
            .unwrap();
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let mut q = Transaction::new("OVN_Northbound");
            q.select("NB_Global", vec![], Some(vec!["sb_cfg".into()]));
            let r = nb.transact(q).await.unwrap();
            let sb_cfg = r.results[0].rows.as_ref().unwrap()[0]
                .get("sb_cfg")
                .and_then(|v| v.as_i64())
                .unwrap_or(0);
            if sb_cfg >= target {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "ovn-northd did not catch up");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn server(s: &Setup, network: &str, host: &str) -> String {
    let port = s
        .neutron
        .server_create(network, host, None)
        .await
        .unwrap()
        .id
        .unwrap()
        .to_string();
    sb_agent::claim_port(&s.sb, &port, host, true, WAIT).await.unwrap();
    if host == "hv2" {
        // The NB-monitor flavour the runner uses.
        let replica =
            s.nb.monitor(
                "OVN_Northbound",
                MonitorRequest::new().table("Logical_Switch_Port", TableMonitor::all()),
            )
            .await
            .unwrap();
        let report = s.neutron.wait_port_up_with(&replica, &port, WAIT).await.unwrap();
        assert_eq!(report.txns.len(), 2, "binding commit + ACTIVE");
        replica.cancel().await.unwrap();
    } else {
        s.neutron.wait_port_up(&port, WAIT).await.unwrap();
    }
    port
}

#[tokio::test]
async fn openstack_topology_create_then_delete_restores_the_nb() {
    test_support::require_ovn!(
        "openstack_topology_create_then_delete_restores_the_nb",
        ["ovsdb-server", "ovsdb-tool", "ovn-northd", "ovs-appctl"]
    );
    let s = setup("openstack_topology").await;
    let n = &s.neutron;
    let mut norm = Normalizer::new();
    let initial = nb_text(&s.nb, &mut norm).await;

    n.network_create(NetworkSpec {
        name: "public".into(),
        project: Some("admin".into()),
        external: true,
        network_type: Some("flat".into()),
        physical_network: Some("physnet1".into()),
        ..Default::default()
    })
    .await
    .unwrap();
    let mut ext = SubnetSpec::new("public-sub", "public", "172.24.4.0/24");
    ext.enable_dhcp = false;
    n.subnet_create(ext).await.unwrap();

    let mut fips = Vec::new();
    let mut ports = Vec::new();
    for (i, project) in ["p1", "p2"].into_iter().enumerate() {
        let (net, sub, router) = (
            format!("net-{project}"),
            format!("sub-{project}"),
            format!("r-{project}"),
        );
        n.network_create(NetworkSpec {
            name: net.clone(),
            project: Some(project.into()),
            ..Default::default()
        })
        .await
        .unwrap();
        let mut spec = SubnetSpec::new(&sub, &net, &format!("10.{i}.0.0/24"));
        spec.project = Some(project.into());
        n.subnet_create(spec).await.unwrap();
        let mut v6 = SubnetSpec::new(&format!("{sub}-v6"), &net, &format!("2001:db8:{i}::/64"));
        v6.ipv6_address_mode = Some("dhcpv6-stateful".into());
        n.subnet_create(v6).await.unwrap();
        n.router_create(&router, Some(project)).await.unwrap();
        n.router_set_gateway(
            &router,
            GatewaySpec {
                network: "public".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        n.router_add_subnet(&router, &sub).await.unwrap();
        for host in ["hv1", "hv2"] {
            ports.push(server(&s, &net, host).await);
        }
        let fip = n
            .floating_ip_create("public", None)
            .await
            .unwrap()
            .id
            .unwrap()
            .to_string();
        n.floating_ip_set_port(&fip, ports.last().unwrap(), None).await.unwrap();
        fips.push(fip);
    }
    // A SLAAC subnet added later gives every existing port of net-p2 an EUI-64 address.
    let mut slaac = SubnetSpec::new("slaac", "net-p2", "2001:db8:99::/64");
    slaac.ipv6_address_mode = Some("slaac".into());
    slaac.gateway = SubnetGateway::None;
    n.subnet_create(slaac).await.unwrap();
    n.security_group_create("web", Some("p1"), true).await.unwrap();
    let rule = n
        .security_group_rule_create(RuleSpec {
            security_group: "web".into(),
            direction: ovn_openstack::model::Direction::Ingress,
            ethertype: 4,
            protocol: Some("tcp".into()),
            port_range_min: Some(80),
            port_range_max: Some(81),
            remote_ip_prefix: None,
            remote_group: Some("web".into()),
        })
        .await
        .unwrap()
        .id
        .unwrap()
        .to_string();
    let web_port = n
        .port_create(PortSpec {
            network: "net-p1".into(),
            project: Some("p1".into()),
            security_groups: Some(vec!["web".into()]),
            port_security: Some(true),
            ..Default::default()
        })
        .await
        .unwrap()
        .id
        .unwrap()
        .to_string();
    let built = nb_text(&s.nb, &mut norm).await;
    assert!(
        built.contains("== Gateway_Chassis (4 rows)"),
        "two routers on two gateway chassis:\n{built}"
    );
    assert!(built.contains("type = \"dnat_and_snat\""));

    assert!(
        built.contains("2001:db8:99::eui64(<mac:"),
        "EUI-64 addresses on net-p2's ports:\n{built}"
    );

    // And tear it all down again.
    n.subnet_delete("slaac").await.unwrap();
    n.port_delete(&web_port).await.unwrap();
    n.security_group_rule_delete(&rule).await.unwrap();
    n.security_group_delete("web").await.unwrap();
    n.floating_ip_unset_port(&fips[0]).await.unwrap();
    for fip in &fips {
        n.floating_ip_delete(fip).await.unwrap();
    }
    for port in &ports {
        n.port_delete(port).await.unwrap();
    }
    for project in ["p1", "p2"] {
        let (net, sub, router) = (
            format!("net-{project}"),
            format!("sub-{project}"),
            format!("r-{project}"),
        );
        n.router_remove_subnet(&router, &sub).await.unwrap();
        n.router_unset_gateway(&router).await.unwrap();
        n.router_delete(&router).await.unwrap();
        n.subnet_delete(&format!("{sub}-v6")).await.unwrap();
        n.subnet_delete(&sub).await.unwrap();
        n.network_delete(&net).await.unwrap();
    }
    n.subnet_delete("public-sub").await.unwrap();
    n.network_delete("public").await.unwrap();
    let default_groups: Vec<String> = n.with_state(|st| st.default_sg.values().map(|id| id.to_string()).collect());
    assert!(default_groups.len() >= 3, "p1, p2 and admin got a default group");
    for sg in default_groups {
        n.security_group_delete(&sg).await.unwrap();
    }
    let end = nb_text(&s.nb, &mut norm).await;
    assert!(
        end == initial,
        "NB differs from start-up (- start, + end):\n{}",
        diff_text(&initial, &end)
    );
    n.with_state(|st| {
        assert!(st.ports.is_empty() && st.networks.is_empty() && st.routers.is_empty() && st.subnets.is_empty());
    });
}

#[tokio::test]
async fn openstack_bad_input_is_refused_and_changes_nothing() {
    test_support::require_ovn!(
        "openstack_bad_input_is_refused_and_changes_nothing",
        ["ovsdb-server", "ovsdb-tool", "ovn-northd", "ovs-appctl"]
    );
    let s = setup("openstack_bad_input").await;
    let n = &s.neutron;
    n.network_create(NetworkSpec {
        name: "net1".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    n.subnet_create(SubnetSpec::new("sub1", "net1", "10.0.0.0/24"))
        .await
        .unwrap();
    n.network_create(NetworkSpec {
        name: "tiny".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    // A /30 has two hosts: the gateway and the metadata port.
    n.subnet_create(SubnetSpec::new("tiny-sub", "tiny", "10.9.0.0/30"))
        .await
        .unwrap();
    n.network_create(NetworkSpec {
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
    ext.gateway = SubnetGateway::Auto;
    n.subnet_create(ext).await.unwrap();
    n.router_create("r1", None).await.unwrap();
    n.router_add_subnet("r1", "sub1").await.unwrap();

    let mut norm = Normalizer::new();
    let before = nb_text(&s.nb, &mut norm).await;
    let counts =
        |n: &Neutron| n.with_state(|st| (st.ports.len(), st.subnets.len(), st.networks.len(), st.routers.len()));
    let state_before = counts(n);

    let e = n.network_delete("nope").await.unwrap_err();
    assert!(matches!(e, Error::Unknown { kind: "network", .. }), "{e}");
    assert!(e.to_string().contains("\"nope\""), "{e}");
    let e = n.router_add_subnet("nope", "sub1").await.unwrap_err();
    assert!(matches!(e, Error::Unknown { kind: "router", .. }), "{e}");
    let e = n.port_delete("nope").await.unwrap_err();
    assert!(matches!(e, Error::Unknown { kind: "port", .. }), "{e}");
    let e = n
        .port_create(PortSpec {
            network: "nope".into(),
            port_security: Some(true),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Unknown { kind: "network", .. }), "{e}");
    let e = n
        .subnet_create(SubnetSpec::new("overlap", "net1", "10.0.0.128/25"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::CidrOverlap { .. }), "{e}");
    assert!(e.to_string().contains("10.0.0.0/24"), "{e}");
    let e = n
        .subnet_create(SubnetSpec::new("bad", "net1", "10.0.0.300/24"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Invalid { .. }), "{e}");
    let e = n
        .port_create(PortSpec {
            network: "tiny".into(),
            port_security: Some(true),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(matches!(e, Error::SubnetFull { .. }), "{e}");
    let e = n
        .router_set_gateway(
            "r1",
            GatewaySpec {
                network: "public".into(),
                max_chassis: Some(6),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::TooManyGatewayChassis { requested: 6, max: 5 }),
        "{e}"
    );
    let e = n
        .router_set_gateway(
            "r1",
            GatewaySpec {
                network: "net1".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("not external"), "{e}");
    let e = n.floating_ip_set_port("nope", "nope", None).await.unwrap_err();
    assert!(
        matches!(
            e,
            Error::Unknown {
                kind: "floating IP",
                ..
            }
        ),
        "{e}"
    );
    for e in [
        n.network_delete("net1").await.unwrap_err(),
        n.subnet_delete("sub1").await.unwrap_err(),
        n.router_delete("r1").await.unwrap_err(),
    ] {
        assert!(matches!(e, Error::InUse { .. }), "{e}");
    }
    let e = n.router_add_subnet("r1", "sub1").await.unwrap_err();
    assert!(e.to_string().contains("already has an interface"), "{e}");

    let after = nb_text(&s.nb, &mut norm).await;
    assert!(
        after == before,
        "bad input changed the NB (- before, + after):\n{}",
        diff_text(&before, &after)
    );
    assert_eq!(counts(n), state_before, "bad input changed the mimic's state");
    // The mimic still works after the refusals, and hands out the addresses it would have.
    let port = n
        .port_create(PortSpec {
            network: "net1".into(),
            port_security: Some(true),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(port.id.is_some());
}
