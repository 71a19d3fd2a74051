//! Transaction contents per Neutron action, without a server: the mimic in recording mode
//! returns the transactions it would send, and each is checked op by op against what
//! Neutron 21.0.0 sends (reference doc §2 and the real snapshots).

use ovn_openstack::{
    ChassisInfo, Config, GatewayLayout, GatewaySpec, NetworkSpec, Neutron, PortSpec, PortUpdate, RuleSpec,
    SubnetGateway, SubnetSpec,
};
use ovsdb::{Operation, Transaction};
use serde_json::Value as Json;

fn chassis() -> Vec<ChassisInfo> {
    vec![
        ChassisInfo {
            name: "hv1".into(),
            hostname: "hv1".into(),
            gateway: false,
            physnets: vec![],
        },
        ChassisInfo {
            name: "gw1".into(),
            hostname: "gw1".into(),
            gateway: true,
            physnets: vec!["physnet1".into()],
        },
        ChassisInfo {
            name: "gw2".into(),
            hostname: "gw2".into(),
            gateway: true,
            physnets: vec!["physnet1".into()],
        },
    ]
}

/// `op table` summary of each operation, e.g. `insert Logical_Switch`.
fn shape(txn: &Transaction) -> Vec<String> {
    txn.operations()
        .iter()
        .map(|op| match op {
            Operation::Insert { table, .. } => format!("insert {table}"),
            Operation::Update { table, .. } => format!("update {table}"),
            Operation::Mutate { table, .. } => format!("mutate {table}"),
            Operation::Delete { table, .. } => format!("delete {table}"),
            Operation::Wait { table, .. } => format!("wait {table}"),
            other => other.summary(),
        })
        .collect()
}

fn row_json(txn: &Transaction, index: usize) -> Json {
    let ops = txn.to_params();
    ops[index + 1].clone()
}

fn map_get<'a>(map: &'a Json, key: &str) -> Option<&'a str> {
    map.get(1)?
        .as_array()?
        .iter()
        .find(|p| p[0] == key)
        .and_then(|p| p[1].as_str())
}

async fn base(layout: GatewayLayout) -> std::sync::Arc<Neutron> {
    let config = Config {
        gateway_layout: layout,
        ..Config::default()
    };
    let n = Neutron::recording(config, chassis());
    n.start().await.unwrap();
    n
}

#[tokio::test]
async fn start_creates_pg_drop_with_two_drop_acls_in_one_txn() {
    let n = Neutron::recording(Config::default(), chassis());
    n.start().await.unwrap();
    let txns = n.take_recorded();
    assert_eq!(txns.len(), 1);
    assert_eq!(
        shape(&txns[0]),
        [
            "assert lock pg_drop_creation",
            "insert ACL",
            "insert ACL",
            "insert Port_Group"
        ]
    );
    let acl = row_json(&txns[0], 1);
    assert_eq!(acl["row"]["priority"], 1001);
    assert_eq!(acl["row"]["match"], "inport == @neutron_pg_drop && ip");
    assert_eq!(acl["row"]["action"], "drop");
}

#[tokio::test]
async fn network_create_is_default_sg_then_switch_then_metadata_port() {
    let n = base(GatewayLayout::GatewayChassis).await;
    n.take_recorded();
    let report = n
        .network_create(NetworkSpec {
            name: "net1".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(report.txns.len(), 3);
    let txns = n.take_recorded();
    assert_eq!(
        shape(&txns[0]),
        [
            "insert ACL",
            "insert ACL",
            "insert ACL",
            "insert ACL",
            "insert Port_Group"
        ]
    );
    assert_eq!(shape(&txns[1]), ["insert Logical_Switch"]);
    let ls = row_json(&txns[1], 0);
    assert_eq!(map_get(&ls["row"]["external_ids"], "neutron:mtu"), Some("1442"));
    assert_eq!(
        map_get(&ls["row"]["external_ids"], "neutron:revision_number"),
        Some("1")
    );
    assert_eq!(
        shape(&txns[2]),
        [
            "insert Logical_Switch_Port",
            "mutate Logical_Switch",
            "mutate Logical_Switch_Port"
        ]
    );
    let lsp = row_json(&txns[2], 0);
    assert_eq!(lsp["row"]["type"], "localport");
    assert_eq!(map_get(&lsp["row"]["options"], "requested-chassis"), Some(""));
    let qos = row_json(&txns[2], 2);
    assert_eq!(qos["mutations"][0][1], "delete");

    // A second network of the same project reuses its default group.
    n.network_create(NetworkSpec {
        name: "net2".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(n.take_recorded().len(), 2);
}

#[tokio::test]
async fn provider_network_has_its_localnet_port_in_the_switch_txn() {
    let n = base(GatewayLayout::GatewayChassis).await;
    n.network_create(NetworkSpec {
        name: "vl".into(),
        network_type: Some("vlan".into()),
        physical_network: Some("physnet1".into()),
        segmentation_id: Some(100),
        ..Default::default()
    })
    .await
    .unwrap();
    let txns = n.take_recorded();
    let ls_txn = &txns[txns.len() - 2];
    assert_eq!(
        shape(ls_txn),
        [
            "insert Logical_Switch",
            "insert Logical_Switch_Port",
            "mutate Logical_Switch"
        ]
    );
    let localnet = row_json(ls_txn, 1);
    assert_eq!(localnet["row"]["type"], "localnet");
    assert_eq!(localnet["row"]["tag"], 100);
    assert_eq!(map_get(&localnet["row"]["options"], "network_name"), Some("physnet1"));
}

#[tokio::test]
async fn subnet_with_dhcp_is_one_txn_with_wait_first() {
    let n = base(GatewayLayout::GatewayChassis).await;
    n.network_create(NetworkSpec {
        name: "net1".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    n.take_recorded();
    n.subnet_create(SubnetSpec::new("sub1", "net1", "10.0.0.0/24"))
        .await
        .unwrap();
    let txns = n.take_recorded();
    assert_eq!(txns.len(), 1);
    assert_eq!(
        shape(&txns[0]),
        [
            "wait Logical_Switch_Port",
            "insert DHCP_Options",
            "update Logical_Switch_Port",
            "mutate Port_Group"
        ]
    );
    let dhcp = row_json(&txns[0], 1);
    assert_eq!(
        map_get(&dhcp["row"]["options"], "classless_static_route"),
        Some("{169.254.169.254/32,10.0.0.2, 0.0.0.0/0,10.0.0.1}")
    );
    assert_eq!(map_get(&dhcp["row"]["options"], "dns_server"), Some("{8.8.8.8}"));
    let update = row_json(&txns[0], 2);
    assert_eq!(
        map_get(&update["row"]["external_ids"], "neutron:cidrs"),
        Some("10.0.0.2/24")
    );
    assert_eq!(
        map_get(&update["row"]["external_ids"], "neutron:revision_number"),
        Some("2")
    );

    // No DHCP: nothing written. DHCPv6 stateful: the DHCP_Options row alone.
    let mut nodhcp = SubnetSpec::new("sub2", "net1", "10.1.0.0/24");
    nodhcp.enable_dhcp = false;
    nodhcp.gateway = SubnetGateway::None;
    n.subnet_create(nodhcp).await.unwrap();
    assert!(n.take_recorded().is_empty());
    let mut v6 = SubnetSpec::new("sub6", "net1", "2001:db8::/64");
    v6.ipv6_address_mode = Some("dhcpv6-stateful".into());
    n.subnet_create(v6).await.unwrap();
    let txns = n.take_recorded();
    assert_eq!(shape(&txns[0]), ["insert DHCP_Options"]);
    assert_eq!(
        map_get(&row_json(&txns[0], 0)["row"]["options"], "server_id").map(|m| &m[..8]),
        Some("fa:16:3e")
    );
}

async fn topology(n: &Neutron) {
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
    n.router_create("r1", None).await.unwrap();
}

#[tokio::test]
async fn gateway_is_lsp_then_one_l3_txn_with_least_loaded_chassis() {
    let n = base(GatewayLayout::GatewayChassis).await;
    topology(&n).await;
    n.take_recorded();
    let spec = GatewaySpec {
        network: "public".into(),
        fixed_ip: Some("172.24.4.10".parse().unwrap()),
        max_chassis: None,
        snat: None,
    };
    n.router_set_gateway("r1", spec).await.unwrap();
    let txns = n.take_recorded();
    assert_eq!(txns.len(), 2);
    assert_eq!(shape(&txns[0])[0], "insert Logical_Switch_Port");
    assert_eq!(
        shape(&txns[1]),
        [
            "wait Logical_Router",
            "insert Gateway_Chassis",
            "insert Gateway_Chassis",
            "insert Logical_Router_Port",
            "mutate Logical_Router",
            "update Logical_Switch_Port",
            "insert Logical_Router_Static_Route",
            "mutate Logical_Router",
            "update Logical_Router"
        ]
    );
    let first = row_json(&txns[1], 1);
    assert_eq!(first["row"]["chassis_name"], "gw1");
    assert_eq!(first["row"]["priority"], 2);
    let route = row_json(&txns[1], 6);
    assert_eq!(route["row"]["nexthop"], "172.24.4.1");
    let lr = row_json(&txns[1], 8);
    assert_eq!(
        map_get(&lr["row"]["external_ids"], "neutron:revision_number"),
        Some("2")
    );

    // Interface: LSP, then LRP + LSP→router + SNAT, then two ACTIVE echo pairs.
    n.router_add_subnet("r1", "sub1").await.unwrap();
    let txns = n.take_recorded();
    assert_eq!(txns.len(), 6);
    assert_eq!(
        shape(&txns[1]),
        [
            "insert Logical_Router_Port",
            "mutate Logical_Router",
            "update Logical_Switch_Port",
            "insert NAT",
            "mutate Logical_Router"
        ]
    );
    assert_eq!(shape(&txns[3])[0], "wait Logical_Router_Port");

    // A second router's gateway goes to the less loaded chassis first.
    n.router_create("r2", None).await.unwrap();
    n.take_recorded();
    n.router_set_gateway(
        "r2",
        GatewaySpec {
            network: "public".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let txns = n.take_recorded();
    assert_eq!(row_json(&txns[1], 1)["row"]["chassis_name"], "gw2");
}

#[tokio::test]
async fn ha_chassis_group_layout_replaces_gateway_chassis() {
    let n = base(GatewayLayout::HaChassisGroup).await;
    topology(&n).await;
    n.take_recorded();
    n.router_set_gateway(
        "r1",
        GatewaySpec {
            network: "public".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let txns = n.take_recorded();
    let s = shape(&txns[1]);
    assert!(s.contains(&"insert HA_Chassis_Group".to_owned()), "{s:?}");
    assert!(!s.contains(&"insert Gateway_Chassis".to_owned()));
    let hcg = txns[1]
        .operations()
        .iter()
        .position(|o| matches!(o, Operation::Insert { table, .. } if table == "HA_Chassis_Group"))
        .unwrap();
    let row = row_json(&txns[1], hcg);
    assert_eq!(
        row["row"]["name"].as_str().map(|s| s.starts_with("neutron-")),
        Some(true)
    );
}

#[tokio::test]
async fn vm_port_lifecycle_and_floating_ip() {
    let n = base(GatewayLayout::GatewayChassis).await;
    topology(&n).await;
    n.router_set_gateway(
        "r1",
        GatewaySpec {
            network: "public".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    n.router_add_subnet("r1", "sub1").await.unwrap();
    n.take_recorded();
    let port = n
        .port_create(PortSpec {
            network: "net1".into(),
            port_security: Some(true),
            device_id: "vm".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .id
        .unwrap()
        .to_string();
    let txns = n.take_recorded();
    assert_eq!(
        shape(&txns[0]),
        [
            "insert Logical_Switch_Port",
            "mutate Logical_Switch",
            "mutate Logical_Switch_Port",
            "mutate Port_Group",
            "mutate Port_Group"
        ]
    );
    let lsp = row_json(&txns[0], 0);
    assert_eq!(lsp["row"]["addresses"], lsp["row"]["port_security"]);
    assert!(lsp["row"]["dhcpv4_options"].is_array());

    let update = PortUpdate {
        device_owner: Some("compute:nova".into()),
        host: Some("hv1".into()),
        ..Default::default()
    };
    n.port_update(&port, update).await.unwrap();
    let txns = n.take_recorded();
    assert_eq!(
        shape(&txns[0]),
        [
            "wait Logical_Switch_Port",
            "update Logical_Switch_Port",
            "mutate Port_Group"
        ]
    );
    assert_eq!(
        map_get(&row_json(&txns[0], 1)["row"]["options"], "requested-chassis"),
        Some("hv1")
    );

    n.port_up(&port).await.unwrap();
    let txns = n.take_recorded();
    assert_eq!(txns.len(), 2);
    assert_eq!(
        map_get(&row_json(&txns[1], 1)["row"]["external_ids"], "neutron:revision_number"),
        Some("4")
    );
    n.port_up(&port).await.unwrap();
    assert!(n.take_recorded().is_empty(), "a port already ACTIVE is not rewritten");

    let fip = n
        .floating_ip_create("public", None)
        .await
        .unwrap()
        .id
        .unwrap()
        .to_string();
    assert!(n.take_recorded().is_empty(), "floating ip create writes nothing");
    n.floating_ip_set_port(&fip, &port, None).await.unwrap();
    let txns = n.take_recorded();
    assert_eq!(
        shape(&txns[0]),
        ["insert NAT", "mutate Logical_Router", "mutate Logical_Switch_Port"]
    );
    assert_eq!(shape(&txns[1]), ["wait NAT", "mutate NAT"]);
    let nat = row_json(&txns[0], 0);
    assert_eq!(nat["row"]["type"], "dnat_and_snat");
    assert_eq!(
        map_get(&nat["row"]["external_ids"], "neutron:revision_number"),
        Some("1")
    );

    n.port_delete(&port).await.unwrap();
    let txns = n.take_recorded();
    assert_eq!(shape(&txns[0]), ["mutate Logical_Router", "mutate Logical_Switch_Port"]);
    assert_eq!(shape(&txns[1]), ["mutate Logical_Switch"]);
}

#[tokio::test]
async fn security_group_rules_are_one_acl_each() {
    let n = base(GatewayLayout::GatewayChassis).await;
    n.take_recorded();
    n.security_group_create("web", None, true).await.unwrap();
    let txns = n.take_recorded();
    assert_eq!(txns.len(), 2, "the project's default group first, then web");
    assert_eq!(shape(&txns[1]), ["insert ACL", "insert ACL", "insert Port_Group"]);
    let rule = RuleSpec {
        security_group: "web".into(),
        direction: ovn_openstack::model::Direction::Ingress,
        ethertype: 4,
        protocol: Some("tcp".into()),
        port_range_min: Some(22),
        port_range_max: Some(22),
        remote_ip_prefix: Some("0.0.0.0/0".into()),
        remote_group: None,
    };
    let id = n
        .security_group_rule_create(rule)
        .await
        .unwrap()
        .id
        .unwrap()
        .to_string();
    let txns = n.take_recorded();
    assert_eq!(shape(&txns[0]), ["insert ACL", "mutate Port_Group"]);
    let m = row_json(&txns[0], 0)["row"]["match"].as_str().unwrap().to_owned();
    assert!(
        m.ends_with("&& ip4 && ip4.src == 0.0.0.0/0 && tcp && tcp.dst == 22"),
        "{m}"
    );
    n.security_group_rule_delete(&id).await.unwrap();
    assert_eq!(shape(&n.take_recorded()[0]), ["mutate Port_Group"]);
    n.security_group_delete("web").await.unwrap();
    assert_eq!(shape(&n.take_recorded()[0]), ["delete Port_Group"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_api_workers_never_share_an_address_or_a_default_group() {
    let n = base(GatewayLayout::GatewayChassis).await;
    n.network_create(NetworkSpec {
        name: "net1".into(),
        project: Some("other".into()),
        ..Default::default()
    })
    .await
    .unwrap();
    n.subnet_create(SubnetSpec::new("sub1", "net1", "10.0.0.0/24"))
        .await
        .unwrap();
    let mut workers = Vec::new();
    for _ in 0..16 {
        let n = n.clone();
        workers.push(tokio::spawn(async move {
            n.port_create(PortSpec {
                network: "net1".into(),
                port_security: Some(true),
                ..Default::default()
            })
            .await
            .unwrap()
        }));
    }
    for w in workers {
        w.await.unwrap();
    }
    n.with_state(|st| {
        let mut ips: Vec<String> = st
            .ports
            .values()
            .flat_map(|p| p.fixed_ips.iter().map(|f| f.ip.to_string()))
            .collect();
        let mut macs: Vec<String> = st.ports.values().map(|p| p.mac.clone()).collect();
        let (ni, nm) = (ips.len(), macs.len());
        ips.sort();
        ips.dedup();
        macs.sort();
        macs.dedup();
        assert_eq!((ips.len(), macs.len()), (ni, nm), "duplicate address or MAC");
        assert_eq!(st.ports.len(), 17, "16 VM ports + the metadata port");
        // "other" (the network's project) and the default project (the ports') once each.
        assert_eq!(st.default_sg.len(), 2);
        assert_eq!(st.security_groups.len(), 2);
    });
}

#[tokio::test]
async fn ipv6_router_interface_announces_its_address_mode() {
    let n = base(GatewayLayout::GatewayChassis).await;
    n.network_create(NetworkSpec {
        name: "net6".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let mut v6 = SubnetSpec::new("sub6", "net6", "2001:db8::/64");
    v6.ipv6_address_mode = Some("slaac".into());
    n.subnet_create(v6).await.unwrap();
    n.router_create("r6", None).await.unwrap();
    n.take_recorded();
    n.router_add_subnet("r6", "sub6").await.unwrap();
    let txns = n.take_recorded();
    let lrp = row_json(&txns[1], 0);
    // Neutron's default IPv6 gateway is the subnet-router anycast address (corpus
    // ipv6-three-gateways, real Neutron 21.0.0).
    assert_eq!(lrp["row"]["networks"], serde_json::json!(["set", ["2001:db8::/64"]]));
    assert_eq!(map_get(&lrp["row"]["ipv6_ra_configs"], "address_mode"), Some("slaac"));
    assert_eq!(map_get(&lrp["row"]["ipv6_ra_configs"], "send_periodic"), Some("true"));
    assert_eq!(map_get(&lrp["row"]["ipv6_ra_configs"], "mtu"), Some("1442"));
    assert_eq!(shape(&txns[1]).len(), 3, "no SNAT for IPv6 and no gateway");
}

fn gateway(network: &str, ip: &str) -> GatewaySpec {
    GatewaySpec {
        network: network.into(),
        fixed_ip: Some(ip.parse().unwrap()),
        ..Default::default()
    }
}

#[tokio::test]
async fn gateway_readdress_rewrites_the_port_then_recreates_lrp_route_and_snat_keeping_chassis_rows() {
    let n = base(GatewayLayout::GatewayChassis).await;
    topology(&n).await;
    n.router_set_gateway("r1", gateway("public", "172.24.4.10"))
        .await
        .unwrap();
    n.router_add_subnet("r1", "sub1").await.unwrap();
    n.take_recorded();
    n.router_set_gateway("r1", gateway("public", "172.24.4.11"))
        .await
        .unwrap();
    let txns = n.take_recorded();
    // LRP readdress, ML2 LSP, L3 LSP router columns, ML2 LSP again, the router update.
    assert_eq!(txns.len(), 5, "{:?}", txns.iter().map(shape).collect::<Vec<_>>());
    assert_eq!(
        shape(&txns[0]),
        ["wait Logical_Router_Port", "update Logical_Router_Port"]
    );
    let router = shape(&txns[4]);
    for op in [
        "insert Logical_Router_Port",
        "insert Logical_Router_Static_Route",
        "insert NAT",
        "update Logical_Router",
    ] {
        assert!(router.contains(&op.to_owned()), "{op} missing from {router:?}");
    }
    assert!(!router.contains(&"insert Gateway_Chassis".to_owned()), "{router:?}");
    // Refused: an address another router's gateway holds (Neutron's 409), nothing written.
    n.router_create("r2", None).await.unwrap();
    n.router_set_gateway("r2", gateway("public", "172.24.4.20"))
        .await
        .unwrap();
    n.take_recorded();
    let e = n
        .router_set_gateway("r2", gateway("public", "172.24.4.11"))
        .await
        .unwrap_err();
    assert!(e.is_bad_input(), "{e}");
    assert!(n.take_recorded().is_empty());
}

#[tokio::test]
async fn gateway_move_deletes_the_old_port_creates_one_and_swaps_rows_in_one_txn() {
    let n = base(GatewayLayout::GatewayChassis).await;
    topology(&n).await;
    n.network_create(NetworkSpec {
        name: "public2".into(),
        external: true,
        network_type: Some("vlan".into()),
        physical_network: Some("physnet1".into()),
        segmentation_id: Some(100),
        ..Default::default()
    })
    .await
    .unwrap();
    let mut ext = SubnetSpec::new("public2-sub", "public2", "172.24.5.0/24");
    ext.enable_dhcp = false;
    n.subnet_create(ext).await.unwrap();
    n.router_set_gateway("r1", gateway("public", "172.24.4.10"))
        .await
        .unwrap();
    n.take_recorded();
    // Not external: refused before anything is written.
    assert!(n.router_set_gateway("r1", gateway("net1", "10.0.0.50")).await.is_err());
    assert!(n.take_recorded().is_empty());
    n.router_set_gateway("r1", gateway("public2", "172.24.5.10"))
        .await
        .unwrap();
    let txns = n.take_recorded();
    assert_eq!(txns.len(), 3);
    assert_eq!(shape(&txns[0]), ["mutate Logical_Switch"]);
    assert_eq!(shape(&txns[1])[0], "insert Logical_Switch_Port");
    let swap = shape(&txns[2]);
    assert_eq!(swap[0], "wait Logical_Router");
    assert!(swap.contains(&"insert Gateway_Chassis".to_owned()), "{swap:?}");
    assert!(swap.contains(&"insert Logical_Router_Port".to_owned()), "{swap:?}");
}

#[tokio::test]
async fn security_group_stateless_switch_rewrites_each_acl_and_is_refused_in_use() {
    let n = base(GatewayLayout::GatewayChassis).await;
    topology(&n).await;
    n.security_group_create("web", None, true).await.unwrap();
    n.take_recorded();
    let update = ovn_openstack::SecurityGroupUpdate {
        stateful: Some(false),
        ..Default::default()
    };
    n.security_group_set("web", update.clone()).await.unwrap();
    let txns = n.take_recorded();
    // Two egress rules: per rule, the old ACL out, then the new one in.
    assert_eq!(txns.len(), 4);
    assert_eq!(shape(&txns[0]), ["mutate Port_Group"]);
    assert_eq!(shape(&txns[1]), ["insert ACL", "mutate Port_Group"]);
    assert_eq!(row_json(&txns[1], 0)["row"]["action"], "allow-stateless");
    let renamed = ovn_openstack::SecurityGroupUpdate {
        name: Some("web2".into()),
        description: Some("d".into()),
        ..Default::default()
    };
    n.security_group_set("web", renamed).await.unwrap();
    assert!(n.take_recorded().is_empty());
    n.port_create(PortSpec {
        network: "net1".into(),
        name: "p1".into(),
        security_groups: Some(vec!["web2".into()]),
        ..Default::default()
    })
    .await
    .unwrap();
    n.take_recorded();
    let e = n
        .security_group_set(
            "web2",
            ovn_openstack::SecurityGroupUpdate {
                stateful: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("in use"), "{e}");
    assert!(n.take_recorded().is_empty());
}
