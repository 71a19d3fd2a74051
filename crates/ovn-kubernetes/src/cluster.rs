//! The ovn-kubernetes cluster as upstream's `OVNKubernetesCluster`, `WorkerNode`, `Namespace`,
//! `OvnLoadBalancer` and `OvnLoadBalancerGroup` build it: one method per upstream call, each
//! planning its NB transaction(s) from the mimic's state, committing them through the NB
//! `ovsdb::Client`, and recording the result (row UUIDs, VIP maps) only after the commit.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ovsdb::{Client, Condition, Mutation, Mutator, Row, Transaction, TransactionResult, Uuid, Value};
use rand::{Rng, SeedableRng};

use crate::config::{ClusterConfig, Compat, Families, Vip};
use crate::error::{Error, Result};
use crate::net::{endpoint, DualStackIp, DualStackSubnet};

pub const NB: &str = "OVN_Northbound";
/// Each logical load balancer is one row per protocol, with identical VIPs.
pub const PROTOCOLS: [&str; 3] = ["tcp", "udp", "sctp"];
const ACL_DEFAULT_DENY_PRIO: i64 = 1;
const ACL_DEFAULT_ALLOW_ARP_PRIO: i64 = 2;
const ACL_NETPOL_ALLOW_PRIO: i64 = 3;
pub const VIP_PORT: u16 = 80;
pub const BACKEND_PORT: u16 = 8080;

/// Timings of one upstream call (`ovn_stats.timeit`'s count/total/max), successful calls only.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct OpStats {
    pub count: u64,
    pub total: std::time::Duration,
    pub max: std::time::Duration,
}

/// A pod: its logical switch port and the addresses upstream's `LSPort` carries.
#[derive(Clone, Debug)]
pub struct Pod {
    pub name: String,
    pub mac: String,
    pub ip: DualStackIp,
    pub gw: DualStackIp,
    pub ext_gw: DualStackIp,
    /// Index of the worker (chassis `ovn-scale-<worker>`) hosting it.
    pub worker: usize,
    pub uuid: Uuid,
    /// Passive pods are bound but get no network namespace (nobody sends from them).
    pub passive: bool,
    /// When the NB committed its LSP (pod-up latency starts here).
    pub committed: std::time::Instant,
}

/// A worker node (`ovn-scale-<id>`): its switches, gateway router and addresses.
#[derive(Clone, Debug)]
pub struct Worker {
    pub id: usize,
    pub name: String,
    pub int_net: DualStackSubnet,
    pub ext_net: DualStackSubnet,
    pub switch: Option<Uuid>,
    pub gw_router: Option<Uuid>,
    next_lport_index: u64,
}

impl Worker {
    pub fn switch_name(&self) -> String {
        format!("lswitch-{}", self.name)
    }
    pub fn gw_router_name(&self) -> String {
        format!("gwrouter-{}", self.name)
    }
    /// The gateway router's address on the external switch.
    pub fn ext_rp_ip(&self) -> DualStackIp {
        self.ext_net.reverse(1)
    }
}

/// A logical load balancer: one NB row per protocol.
#[derive(Clone, Debug)]
pub struct LoadBalancer {
    pub name: String,
    pub rows: Vec<Uuid>,
    /// VIP → backends, in insertion order (the NB `vips` map is always equal to it).
    pub vips: Vec<Vip>,
    routers: Vec<Uuid>,
    switches: Vec<Uuid>,
    in_group: bool,
}

pub type LbId = usize;
pub type NsId = usize;

/// Upstream's `Namespace`: port groups, address sets, sub-namespaces of a network policy.
#[derive(Clone, Debug)]
pub struct Namespace {
    pub name: String,
    pub ports: Vec<Pod>,
    pub enforcing: bool,
    pub addr_set4: Option<String>,
    pub addr_set6: Option<String>,
    pub sub_pg: Vec<String>,
    pub sub_as: Vec<String>,
    pub load_balancer: Option<LbId>,
    /// Every LB created for this namespace's services (complete cleanup in `fixed`).
    pub lbs: Vec<LbId>,
}

impl Namespace {
    pub fn pg_deny_igr(&self) -> String {
        format!("pg_deny_igr_{}", self.name)
    }
    pub fn pg_deny_egr(&self) -> String {
        format!("pg_deny_egr_{}", self.name)
    }
    pub fn pg(&self) -> String {
        format!("pg_{}", self.name)
    }
}

/// How an ACL is written: `Upstream` keeps upstream's literal strings.
fn acl_row(direction: &str, priority: i64, matches: &str, action: &str) -> Row {
    Row::new()
        .with("direction", direction)
        .with("priority", priority)
        .with("match", matches)
        .with("action", action)
}

fn uuid_set(uuids: &[Uuid]) -> Value {
    Value::set(uuids.iter().copied())
}

fn first_uuid(r: &TransactionResult, named: &Value) -> Result<Uuid> {
    r.inserted(named)
        .ok_or_else(|| Error::Hook("the NB reply lacks an inserted row's UUID".into()))
}

/// A random locally administered unicast MAC, lowercase (what `RandMac()` produces).
fn rand_mac(rng: &mut rand::rngs::StdRng) -> String {
    let mut b: [u8; 6] = rng.gen();
    b[0] = (b[0] & 0xfc) | 0x02;
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        b[0], b[1], b[2], b[3], b[4], b[5]
    )
}

/// The cluster: its NB client, config, and what has been created.
pub struct Ovnk {
    nb: Client,
    pub cfg: ClusterConfig,
    pub families: Families,
    pub compat: Compat,
    rng: rand::rngs::StdRng,
    pub workers: Vec<Worker>,
    pub router: Option<Uuid>,
    pub join_switch: Option<Uuid>,
    pub load_balancer: Option<LbId>,
    pub load_balancer6: Option<LbId>,
    pub lb_group: Option<Uuid>,
    pub lbs: Vec<LoadBalancer>,
    pub namespaces: Vec<Namespace>,
    /// Round-robin cursor of `Cluster.select_worker_for_port` (starts so worker 1 is first).
    last_selected_worker: usize,
    /// Namespaces ever created (upstream's `n_ns`, which places namespace VIPs).
    pub n_ns: u64,
    /// Committed NB transactions, by operation name (the per-test CMS operation counts).
    pub txn_counts: BTreeMap<&'static str, u64>,
    /// Pod LSPs carry `options:requested-chassis=<node>`, as ovn-kubernetes writes (upstream
    /// ovn-heater does not; emulated chassis claim ports by it).
    pub request_chassis: bool,
    /// Per upstream call (`WorkerNode.provision_port`, `Namespace.default_deny`, ...): its
    /// timings since the cluster was created.
    op_stats: BTreeMap<&'static str, OpStats>,
}

impl Ovnk {
    /// A cluster of `cfg.n_workers` workers named `ovn-scale-<i>`; nothing is written yet.
    pub fn new(nb: Client, cfg: ClusterConfig, families: Families, compat: Compat, seed: u64) -> Result<Self> {
        cfg.check(families)?;
        let internal = cfg.internal(families);
        let external = cfg.external(families);
        let workers = (0..cfg.n_workers)
            .map(|i| Worker {
                id: i,
                name: format!("ovn-scale-{i}"),
                int_net: internal.next(i as u64),
                ext_net: external.next(i as u64),
                switch: None,
                gw_router: None,
                next_lport_index: 0,
            })
            .collect();
        Ok(Ovnk {
            nb,
            cfg,
            families,
            compat,
            rng: rand::rngs::StdRng::seed_from_u64(seed),
            workers,
            router: None,
            join_switch: None,
            load_balancer: None,
            load_balancer6: None,
            lb_group: None,
            lbs: Vec::new(),
            namespaces: Vec::new(),
            last_selected_worker: 0,
            n_ns: 0,
            txn_counts: BTreeMap::new(),
            request_chassis: false,
            op_stats: BTreeMap::new(),
        })
    }

    pub fn nb(&self) -> &Client {
        &self.nb
    }

    fn timed(&mut self, op: &'static str, started: std::time::Instant) {
        let took = started.elapsed();
        let st = self.op_stats.entry(op).or_default();
        st.count += 1;
        st.total += took;
        st.max = st.max.max(took);
    }

    /// Timings per upstream call so far (a host subtracts two readings for one Context).
    pub fn op_stats(&self) -> &BTreeMap<&'static str, OpStats> {
        &self.op_stats
    }

    /// Names the workers after the chassis that host them (e.g. an emulated farm's
    /// `ovn-scale-1..N`) instead of `ovn-scale-<i>`; only before anything is written.
    pub fn name_workers(&mut self, names: &[String]) -> Result<()> {
        if names.len() != self.workers.len() || self.router.is_some() {
            return Err(Error::invalid(
                "worker names",
                format!("need {} names, given before the cluster is built", self.workers.len()),
            ));
        }
        for (w, n) in self.workers.iter_mut().zip(names) {
            w.name = n.clone();
        }
        Ok(())
    }

    async fn commit(&mut self, what: &'static str, txn: Transaction) -> Result<TransactionResult> {
        let r = self.nb.transact(txn).await?;
        *self.txn_counts.entry(what).or_insert(0) += 1;
        Ok(r)
    }

    async fn insert_one(&mut self, what: &'static str, table: &str, row: Row) -> Result<Uuid> {
        let mut txn = Transaction::new(NB);
        let named = txn.insert(table, row);
        let r = self.commit(what, txn).await?;
        first_uuid(&r, &named)
    }

    fn gw_net(&self) -> DualStackSubnet {
        self.cfg.gw(self.families)
    }

    fn cluster_net(&self) -> DualStackSubnet {
        self.cfg.cluster(self.families)
    }

    // ------------------------------------------------------------ Cluster.start --

    /// `Cluster.start()`: NB_Global options and name, the Connection's inactivity probe.
    pub async fn prepare(&mut self) -> Result<()> {
        let dp_groups = if self.compat == Compat::Upstream {
            // Python's str(True).
            if self.cfg.logical_dp_groups { "True" } else { "False" }.to_owned()
        } else {
            self.cfg.logical_dp_groups.to_string()
        };
        let options = [
            ("ic-route-learn", "true".to_owned()),
            ("ic-route-adv", "true".to_owned()),
            ("use_logical_dp_groups", dp_groups),
            ("northd_probe_interval", self.cfg.northd_probe_interval.to_string()),
        ];
        for (k, v) in options {
            self.commit("set_global", plan_set_map_key("NB_Global", vec![], "options", k, &v))
                .await?;
        }
        let mut txn = Transaction::new(NB);
        txn.update("NB_Global", vec![], Row::new().with("name", "az0"));
        self.commit("set_global_name", txn).await?;
        let mut txn = Transaction::new(NB);
        txn.update(
            "Connection",
            vec![],
            Row::new().with("inactivity_probe", self.cfg.db_inactivity_probe as i64),
        );
        self.commit("set_inactivity_probe", txn).await?;
        Ok(())
    }

    // ------------------------------------------------------------ cluster-wide --

    /// `create_cluster_router`: the cluster router.
    pub async fn create_cluster_router(&mut self, name: &str) -> Result<()> {
        let uuid = self
            .insert_one("lr_add", "Logical_Router", Row::new().with("name", name))
            .await?;
        self.commit(
            "lr_set_options",
            plan_set_map_key(
                "Logical_Router",
                vec![Condition::uuid(uuid)],
                "options",
                "always_learn_from_arp_request",
                "false",
            ),
        )
        .await?;
        self.router = Some(uuid);
        Ok(())
    }

    /// `create_cluster_join_switch`: the join switch and its link to the cluster router.
    pub async fn create_cluster_join_switch(&mut self, name: &str) -> Result<()> {
        let router = self.router.ok_or(Error::Unknown {
            kind: "cluster router",
            name: "(create_cluster_router first)".into(),
        })?;
        let ls = self
            .insert_one("ls_add", "Logical_Switch", Row::new().with("name", name))
            .await?;
        let lrp = format!("rtr-to-{name}");
        let mac = rand_mac(&mut self.rng);
        self.lrp_add(router, &lrp, &mac, self.gw_net().reverse(1)).await?;
        self.lsp_add_router(ls, &format!("{name}-to-rtr"), &lrp).await?;
        self.join_switch = Some(ls);
        Ok(())
    }

    /// `create_cluster_load_balancer`: the cluster LB (and its IPv6 twin `<name>6`).
    pub async fn create_cluster_load_balancer(&mut self, name: &str) -> Result<()> {
        if self.families.run_ipv4 {
            let lb = self.lb_create(name).await?;
            let vips: Vec<Vip> = self.cfg.vips.iter().map(|v| (v.clone(), Vec::new())).collect();
            self.lb_add_vips(lb, &vips).await?;
            let statics = self.cfg.static_vips.clone();
            self.lb_add_vips(lb, &statics).await?;
            self.load_balancer = Some(lb);
        }
        if self.families.run_ipv6 {
            let lb = self.lb_create(&format!("{name}6")).await?;
            let vips: Vec<Vip> = self.cfg.vips6.iter().map(|v| (v.clone(), Vec::new())).collect();
            self.lb_add_vips(lb, &vips).await?;
            let statics = self.cfg.static_vips6.clone();
            self.lb_add_vips(lb, &statics).await?;
            self.load_balancer6 = Some(lb);
        }
        Ok(())
    }

    /// `provision_lb_group`: the LB group, referenced by every node switch and gateway router.
    pub async fn provision_lb_group(&mut self, name: &str) -> Result<()> {
        let lbg = self
            .insert_one("create_lbg", "Load_Balancer_Group", Row::new().with("name", name))
            .await?;
        self.lb_group = Some(lbg);
        let pairs: Vec<(Option<Uuid>, Option<Uuid>)> = self.workers.iter().map(|w| (w.switch, w.gw_router)).collect();
        for (ls, lr) in pairs {
            if let Some(ls) = ls {
                self.commit(
                    "ls_add_lbg",
                    plan_ref_insert("Logical_Switch", ls, "load_balancer_group", lbg),
                )
                .await?;
            }
            if let Some(lr) = lr {
                self.commit(
                    "lr_add_lbg",
                    plan_ref_insert("Logical_Router", lr, "load_balancer_group", lbg),
                )
                .await?;
            }
        }
        Ok(())
    }

    /// `Cluster.provision_lb`: adds a load balancer's rows to the cluster LB group.
    pub async fn provision_lb(&mut self, lb: LbId) -> Result<()> {
        let lbg = self.lb_group.ok_or(Error::Unknown {
            kind: "load balancer group",
            name: "(run base_cluster_bringup first)".into(),
        })?;
        for row in self.lbs[lb].rows.clone() {
            self.commit(
                "lbg_add_lb",
                plan_ref_insert("Load_Balancer_Group", lbg, "load_balancer", row),
            )
            .await?;
        }
        self.lbs[lb].in_group = true;
        Ok(())
    }

    /// `unprovision_vips`: the cluster LBs back to their static VIPs only.
    pub async fn unprovision_vips(&mut self) -> Result<()> {
        if let Some(lb) = self.load_balancer {
            self.lb_clear_vips(lb).await?;
            let statics = self.cfg.static_vips.clone();
            self.lb_add_vips(lb, &statics).await?;
        }
        if let Some(lb) = self.load_balancer6 {
            self.lb_clear_vips(lb).await?;
            let statics = self.cfg.static_vips6.clone();
            self.lb_add_vips(lb, &statics).await?;
        }
        Ok(())
    }

    // ------------------------------------------------------------ per worker --

    /// `WorkerNode.provision`: node switch, gateway router, external switch, localnet port,
    /// routes and SNAT for worker `w`.
    pub async fn provision_worker(&mut self, w: usize) -> Result<()> {
        let started = std::time::Instant::now();
        let router = self.router.ok_or(Error::Unknown {
            kind: "cluster router",
            name: "(create_cluster_router first)".into(),
        })?;
        let join = self.join_switch.ok_or(Error::Unknown {
            kind: "join switch",
            name: "(create_cluster_join_switch first)".into(),
        })?;
        let worker = self.workers[w].clone();
        let node = worker.name.clone();
        let switch = self
            .insert_one(
                "ls_add",
                "Logical_Switch",
                Row::new().with("name", worker.switch_name()),
            )
            .await?;
        let lrp = format!("rtr-to-node-{node}");
        let mac = rand_mac(&mut self.rng);
        self.lrp_add(router, &lrp, &mac, worker.int_net.reverse(1)).await?;
        self.lsp_add_router(switch, &format!("node-to-rtr-{node}"), &lrp)
            .await?;
        self.lrp_set_gateway_chassis(&lrp, &node, 10).await?;

        let gr = self
            .insert_one(
                "lr_add",
                "Logical_Router",
                Row::new().with("name", worker.gw_router_name()),
            )
            .await?;
        let mut txn = Transaction::new(NB);
        let opts = [
            ("always_learn_from_arp_request", "false"),
            ("dynamic_neigh_routers", "true"),
            ("chassis", node.as_str()),
            ("lb_force_snat_ip", "router_ip"),
            ("snat-ct-zone", "0"),
        ];
        let keys: Vec<&str> = opts.iter().map(|(k, _)| *k).collect();
        txn.mutate(
            "Logical_Router",
            vec![Condition::uuid(gr)],
            vec![Mutation::delete("options", Value::set(keys))],
        );
        txn.mutate(
            "Logical_Router",
            vec![Condition::uuid(gr)],
            vec![Mutation::insert("options", Value::string_map(opts))],
        );
        self.commit("lr_set_options", txn).await?;

        let gr_gw = self.gw_net().reverse(worker.id as u64 + 2);
        let join_lrp = format!("gw-to-join-{node}");
        let mac = rand_mac(&mut self.rng);
        self.lrp_add(gr, &join_lrp, &mac, gr_gw).await?;
        self.lsp_add_router(join, &format!("join-to-gw-{node}"), &join_lrp)
            .await?;

        let ext = self
            .insert_one(
                "ls_add",
                "Logical_Switch",
                Row::new().with("name", format!("ext-{node}")),
            )
            .await?;
        let ext_lrp = format!("gw-to-ext-{node}");
        let mac = rand_mac(&mut self.rng);
        self.lrp_add(gr, &ext_lrp, &mac, worker.ext_rp_ip()).await?;
        self.lsp_add_router(ext, &format!("ext-to-gw-{node}"), &ext_lrp).await?;

        // The localnet port, in upstream's three steps (add, type, options).
        let provnet = format!("provnet-{node}");
        self.lsp_add(
            ext,
            Row::new().with("name", provnet.as_str()).with("addresses", "unknown"),
        )
        .await?;
        let mut txn = Transaction::new(NB);
        txn.update(
            "Logical_Switch_Port",
            vec![Condition::eq("name", provnet.as_str())],
            Row::new().with("type", "localnet"),
        );
        self.commit("lsp_set_type", txn).await?;
        let mut txn = Transaction::new(NB);
        txn.update(
            "Logical_Switch_Port",
            vec![Condition::eq("name", provnet.as_str())],
            Row::new().with(
                "options",
                Value::string_map([("network_name", self.cfg.physical_net.as_str())]),
            ),
        );
        self.commit("lsp_set_options", txn).await?;

        let cluster_net = self.cluster_net();
        let gw_rp = self.gw_net().reverse(1);
        self.route_add(gr, &cluster_net, &gw_rp, "dst-ip").await?;
        let default = DualStackSubnet::new(
            Some("0.0.0.0/0".parse().expect("literal")),
            Some("::/0".parse().expect("literal")),
        );
        self.route_add(gr, &default, &worker.ext_net.reverse(2), "dst-ip")
            .await?;
        self.route_add(router, &worker.int_net, &gr_gw, "src-ip").await?;
        self.nat_add(gr, &gr_gw, &cluster_net).await?;

        let wk = &mut self.workers[w];
        wk.switch = Some(switch);
        wk.gw_router = Some(gr);
        self.timed("WorkerNode.provision", started);
        Ok(())
    }

    /// `WorkerNode.provision_port`: a pod's LSP on worker `w`'s switch (not bound yet).
    pub async fn provision_port(&mut self, w: usize, passive: bool) -> Result<Pod> {
        let started = std::time::Instant::now();
        let worker = self.workers[w].clone();
        let switch = worker.switch.ok_or(Error::Unknown {
            kind: "node switch",
            name: worker.switch_name(),
        })?;
        let index = worker.next_lport_index;
        let name = format!("lp-{}-{}", worker.id, index);
        let mac = rand_mac(&mut self.rng);
        let ip = worker.int_net.forward(index + 1);
        let mut addresses = vec![mac.clone()];
        if let Some(a) = ip.ip4() {
            addresses.push(a.to_string());
        }
        if let Some(a) = ip.ip6() {
            addresses.push(a.to_string());
        }
        let addresses = addresses.join(" ");
        let mut row = Row::new()
            .with("name", name.as_str())
            .with("addresses", addresses.as_str())
            .with("port_security", addresses.as_str());
        if self.request_chassis {
            row.set(
                "options",
                Value::string_map([("requested-chassis", worker.name.as_str())]),
            );
        }
        let uuid = self.lsp_add(switch, row).await?;
        let committed = std::time::Instant::now();
        self.workers[w].next_lport_index += 1;
        self.timed("WorkerNode.provision_port", started);
        Ok(Pod {
            name,
            mac,
            ip,
            gw: worker.int_net.reverse(1),
            ext_gw: worker.ext_net.reverse(2),
            worker: w,
            uuid,
            passive,
            committed,
        })
    }

    /// `Cluster.select_worker_for_port`: round robin, starting with worker 1.
    pub fn select_worker_for_port(&mut self) -> usize {
        self.last_selected_worker = (self.last_selected_worker + 1) % self.workers.len();
        self.last_selected_worker
    }

    /// `WorkerNode.provision_load_balancers`: bring-up pods as cluster LB backends, the
    /// cluster LB on the node switch and GR, and the node's (empty) gateway LB.
    pub async fn provision_load_balancers(&mut self, w: usize, ports: &[Pod]) -> Result<()> {
        let started = std::time::Instant::now();
        let worker = self.workers[w].clone();
        let (Some(switch), Some(gr)) = (worker.switch, worker.gw_router) else {
            return Err(Error::Unknown {
                kind: "worker",
                name: worker.name,
            });
        };
        for (family6, lb) in [(false, self.load_balancer), (true, self.load_balancer6)] {
            let Some(lb) = lb else { continue };
            let backends: Vec<String> = ports
                .iter()
                .filter_map(|p| {
                    if family6 {
                        p.ip.ip6().map(|a| endpoint(IpAddr::V6(a), BACKEND_PORT))
                    } else {
                        p.ip.ip4().map(|a| endpoint(IpAddr::V4(a), BACKEND_PORT))
                    }
                })
                .collect();
            let targets = if family6 {
                self.cfg.vips6.clone()
            } else {
                self.cfg.vips.clone()
            };
            self.lb_add_backends_to_vips(lb, &backends, &targets).await?;
            self.lb_add_to(lb, &[], &[switch]).await?;
            self.lb_add_to(lb, &[gr], &[]).await?;
        }
        if self.families.run_ipv4 {
            let lb = self.lb_create(&format!("lb-{}", worker.gw_router_name())).await?;
            self.lb_add_to(lb, &[gr], &[]).await?;
        }
        if self.families.run_ipv6 {
            let lb = self.lb_create(&format!("lb-{}6", worker.gw_router_name())).await?;
            self.lb_add_to(lb, &[gr], &[]).await?;
        }
        self.timed("WorkerNode.provision_load_balancers", started);
        Ok(())
    }

    /// `ChassisNode.unprovision_port` (NB half): deletes the pod's LSP.
    pub async fn delete_port(&mut self, pod: &Pod) -> Result<()> {
        let started = std::time::Instant::now();
        let switch = self.workers[pod.worker].switch.ok_or(Error::Unknown {
            kind: "node switch",
            name: pod.name.clone(),
        })?;
        let mut txn = Transaction::new(NB);
        txn.mutate(
            "Logical_Switch",
            vec![Condition::uuid(switch)],
            vec![Mutation::delete("ports", Value::uuid(pod.uuid))],
        );
        self.commit("lsp_del", txn).await?;
        self.timed("ChassisNode.unprovision_port", started);
        Ok(())
    }

    // ------------------------------------------------------------ load balancers --

    /// `OvnLoadBalancer(name)`: one row per protocol, no VIPs.
    pub async fn lb_create(&mut self, name: &str) -> Result<LbId> {
        let started = std::time::Instant::now();
        let mut rows = Vec::new();
        for proto in PROTOCOLS {
            let row = Row::new()
                .with("name", format!("{name}-{proto}"))
                .with("protocol", proto)
                .with(
                    "options",
                    Value::string_map([
                        ("reject", "true"),
                        ("event", "false"),
                        ("skip_snat", "false"),
                        ("hairpin_snat_ip", "169.254.169.5 fd69::5"),
                        ("neighbor_responder", "none"),
                    ]),
                );
            rows.push(self.insert_one("create_lb", "Load_Balancer", row).await?);
        }
        self.lbs.push(LoadBalancer {
            name: name.to_owned(),
            rows,
            vips: Vec::new(),
            routers: Vec::new(),
            switches: Vec::new(),
            in_group: false,
        });
        self.timed("OvnLoadBalancer.__init__", started);
        Ok(self.lbs.len() - 1)
    }

    fn vips_value(vips: &[Vip]) -> Value {
        Value::string_map(vips.iter().map(|(k, v)| (k.clone(), v.join(","))))
    }

    async fn lb_write_vips(&mut self, lb: LbId) -> Result<()> {
        let value = Self::vips_value(&self.lbs[lb].vips);
        for row in self.lbs[lb].rows.clone() {
            let mut txn = Transaction::new(NB);
            txn.update(
                "Load_Balancer",
                vec![Condition::uuid(row)],
                Row::new().with("vips", value.clone()),
            );
            self.commit("lb_set_vips", txn).await?;
        }
        Ok(())
    }

    /// `OvnLoadBalancer.add_vips`: appends backends to each VIP (creating it if new).
    pub async fn lb_add_vips(&mut self, lb: LbId, vips: &[Vip]) -> Result<()> {
        let cur = &mut self.lbs[lb].vips;
        for (vip, backends) in vips {
            match cur.iter_mut().find(|(v, _)| v == vip) {
                Some((_, b)) => b.extend(backends.iter().cloned()),
                None => cur.push((vip.clone(), backends.clone())),
            }
        }
        self.lb_write_vips(lb).await
    }

    /// `OvnLoadBalancer.add_backends_to_vip`. Upstream passes a generator, so only the first
    /// matching VIP gets the backends; `fixed` gives them to every VIP in `targets`.
    pub async fn lb_add_backends_to_vips(&mut self, lb: LbId, backends: &[String], targets: &[String]) -> Result<()> {
        let upstream = self.compat == Compat::Upstream;
        let mut consumed = false;
        for (vip, b) in self.lbs[lb].vips.iter_mut() {
            if targets.is_empty() || targets.contains(vip) {
                if upstream && consumed {
                    continue;
                }
                b.extend(backends.iter().cloned());
                consumed = true;
            }
        }
        self.lb_write_vips(lb).await
    }

    /// `OvnLoadBalancer.clear_vips`.
    pub async fn lb_clear_vips(&mut self, lb: LbId) -> Result<()> {
        self.lbs[lb].vips.clear();
        for row in self.lbs[lb].rows.clone() {
            let mut txn = Transaction::new(NB);
            txn.update(
                "Load_Balancer",
                vec![Condition::uuid(row)],
                Row::new().with("vips", Value::empty_map()),
            );
            self.commit("lb_clear_vips", txn).await?;
        }
        Ok(())
    }

    /// `add_to_routers` / `add_to_switches`: one transaction per LB row.
    pub async fn lb_add_to(&mut self, lb: LbId, routers: &[Uuid], switches: &[Uuid]) -> Result<()> {
        for row in self.lbs[lb].rows.clone() {
            let mut txn = Transaction::new(NB);
            for r in routers {
                txn.mutate(
                    "Logical_Router",
                    vec![Condition::uuid(*r)],
                    vec![Mutation::insert("load_balancer", Value::uuid(row))],
                );
            }
            for s in switches {
                txn.mutate(
                    "Logical_Switch",
                    vec![Condition::uuid(*s)],
                    vec![Mutation::insert("load_balancer", Value::uuid(row))],
                );
            }
            if !txn.is_empty() {
                self.commit(if routers.is_empty() { "ls_lb_add" } else { "lr_lb_add" }, txn)
                    .await?;
            }
        }
        let l = &mut self.lbs[lb];
        l.routers.extend(routers.iter().copied());
        l.switches.extend(switches.iter().copied());
        Ok(())
    }

    /// Deletes a load balancer's rows and every reference to them (`fixed` cleanup only:
    /// upstream never deletes load balancers).
    pub async fn lb_delete(&mut self, lb: LbId) -> Result<()> {
        let l = self.lbs[lb].clone();
        let mut txn = Transaction::new(NB);
        let rows = uuid_set(&l.rows);
        for r in &l.routers {
            txn.mutate(
                "Logical_Router",
                vec![Condition::uuid(*r)],
                vec![Mutation::delete("load_balancer", rows.clone())],
            );
        }
        for s in &l.switches {
            txn.mutate(
                "Logical_Switch",
                vec![Condition::uuid(*s)],
                vec![Mutation::delete("load_balancer", rows.clone())],
            );
        }
        if let (true, Some(lbg)) = (l.in_group, self.lb_group) {
            txn.mutate(
                "Load_Balancer_Group",
                vec![Condition::uuid(lbg)],
                vec![Mutation::delete("load_balancer", rows.clone())],
            );
        }
        for row in &l.rows {
            txn.delete("Load_Balancer", vec![Condition::uuid(*row)]);
        }
        self.commit("lb_del", txn).await?;
        let m = &mut self.lbs[lb];
        m.rows.clear();
        m.vips.clear();
        m.routers.clear();
        m.switches.clear();
        m.in_group = false;
        Ok(())
    }

    // ------------------------------------------------------------ namespaces --

    /// `Namespace(name)`: three empty port groups and the address set(s).
    pub async fn ns_create(&mut self, name: &str) -> Result<NsId> {
        let started = std::time::Instant::now();
        let mut ns = Namespace {
            name: name.to_owned(),
            ports: Vec::new(),
            enforcing: false,
            addr_set4: None,
            addr_set6: None,
            sub_pg: Vec::new(),
            sub_as: Vec::new(),
            load_balancer: None,
            lbs: Vec::new(),
        };
        for pg in [ns.pg_deny_igr(), ns.pg_deny_egr(), ns.pg()] {
            self.insert_one("pg_add", "Port_Group", Row::new().with("name", pg))
                .await?;
        }
        if self.families.run_ipv4 {
            let a = format!("as_{name}");
            self.insert_one("address_set_add", "Address_Set", Row::new().with("name", a.as_str()))
                .await?;
            ns.addr_set4 = Some(a);
        }
        if self.families.run_ipv6 {
            let a = format!("as6_{name}");
            self.insert_one("address_set_add", "Address_Set", Row::new().with("name", a.as_str()))
                .await?;
            ns.addr_set6 = Some(a);
        }
        self.n_ns += 1;
        self.namespaces.push(ns);
        self.timed("Namespace.__init__", started);
        Ok(self.namespaces.len() - 1)
    }

    async fn as_add_addrs(&mut self, name: &str, mut addrs: Vec<String>) -> Result<()> {
        addrs.sort();
        addrs.dedup();
        if addrs.is_empty() {
            return Ok(());
        }
        let mut txn = Transaction::new(NB);
        txn.mutate(
            "Address_Set",
            vec![Condition::eq("name", name)],
            vec![Mutation::insert("addresses", Value::set(addrs))],
        );
        self.commit("address_set_add_addrs", txn).await?;
        Ok(())
    }

    async fn as_remove_addrs(&mut self, name: &str, addrs: Vec<String>) -> Result<()> {
        if addrs.is_empty() {
            return Ok(());
        }
        let mut txn = Transaction::new(NB);
        txn.mutate(
            "Address_Set",
            vec![Condition::eq("name", name)],
            vec![Mutation::delete("addresses", Value::set(addrs))],
        );
        self.commit("address_set_remove_addrs", txn).await?;
        Ok(())
    }

    async fn pg_add_ports(&mut self, pg: &str, ports: &[Pod]) -> Result<()> {
        if ports.is_empty() {
            return Ok(());
        }
        // Upstream's label lists repeat ports; the NB column is a set.
        let mut uuids: Vec<Uuid> = ports.iter().map(|p| p.uuid).collect();
        uuids.sort();
        uuids.dedup();
        let mut txn = Transaction::new(NB);
        txn.mutate(
            "Port_Group",
            vec![Condition::eq("name", pg)],
            vec![Mutation::insert("ports", uuid_set(&uuids))],
        );
        self.commit("pg_add_ports", txn).await?;
        Ok(())
    }

    async fn pg_acl_add(&mut self, pg: &str, row: Row) -> Result<()> {
        let mut txn = Transaction::new(NB);
        let acl = txn.insert("ACL", row);
        txn.mutate(
            "Port_Group",
            vec![Condition::eq("name", pg)],
            vec![Mutation::insert("acls", acl)],
        );
        self.commit("pg_acl_add", txn).await?;
        Ok(())
    }

    async fn pg_del(&mut self, pg: &str) -> Result<()> {
        let mut txn = Transaction::new(NB);
        txn.delete("Port_Group", vec![Condition::eq("name", pg)]);
        self.commit("pg_del", txn).await?;
        Ok(())
    }

    async fn as_del(&mut self, name: &str) -> Result<()> {
        let mut txn = Transaction::new(NB);
        txn.delete("Address_Set", vec![Condition::eq("name", name)]);
        self.commit("address_set_del", txn).await?;
        Ok(())
    }

    /// `Namespace.add_ports`: IPs into the address set(s); into the PGs once enforcing.
    pub async fn ns_add_ports(&mut self, ns: NsId, ports: &[Pod]) -> Result<()> {
        let started = std::time::Instant::now();
        self.namespaces[ns].ports.extend(ports.iter().cloned());
        let n = self.namespaces[ns].clone();
        if let Some(a) = &n.addr_set4 {
            let ips = ports.iter().filter_map(|p| p.ip.ip4()).map(|i| i.to_string()).collect();
            self.as_add_addrs(a, ips).await?;
        }
        if let Some(a) = &n.addr_set6 {
            let ips = ports.iter().filter_map(|p| p.ip.ip6()).map(|i| i.to_string()).collect();
            self.as_add_addrs(a, ips).await?;
        }
        if n.enforcing {
            for pg in [n.pg_deny_igr(), n.pg_deny_egr(), n.pg()] {
                self.pg_add_ports(&pg, ports).await?;
            }
        }
        self.timed("Namespace.add_ports", started);
        Ok(())
    }

    /// `Namespace.enforce`: all current ports into the three PGs, once.
    pub async fn ns_enforce(&mut self, ns: NsId) -> Result<()> {
        if self.namespaces[ns].enforcing {
            return Ok(());
        }
        self.namespaces[ns].enforcing = true;
        let n = self.namespaces[ns].clone();
        for pg in [n.pg_deny_igr(), n.pg_deny_egr(), n.pg()] {
            self.pg_add_ports(&pg, &n.ports).await?;
        }
        Ok(())
    }

    /// The address-set reference in a policy match: upstream writes a literal Python
    /// expression behind a backslash; `fixed` the real `$<address set>`.
    fn as_ref(&self, ns: &Namespace, family: u8) -> String {
        match self.compat {
            Compat::Upstream => format!("\\$self.addr_set{family}.name"),
            Compat::Fixed => {
                let name = if family == 6 { &ns.addr_set6 } else { &ns.addr_set4 };
                format!("${}", name.clone().unwrap_or_default())
            }
        }
    }

    fn ip_word(&self, family: u8) -> &'static str {
        // Upstream always writes ip4 in default_deny/allow_within_namespace.
        if self.compat == Compat::Fixed && family == 6 {
            "ip6"
        } else {
            "ip4"
        }
    }

    /// `Namespace.default_deny`: enforce, then deny all but ARP in both directions.
    pub async fn ns_default_deny(&mut self, ns: NsId, family: u8) -> Result<()> {
        let started = std::time::Instant::now();
        self.ns_enforce(ns).await?;
        let n = self.namespaces[ns].clone();
        let (igr, egr) = (n.pg_deny_igr(), n.pg_deny_egr());
        let aset = self.as_ref(&n, family);
        let ip = self.ip_word(family);
        // Egress is matched on the sending port: ovn-kubernetes writes it from-lport.
        let egress_dir = if self.compat == Compat::Fixed {
            "from-lport"
        } else {
            "to-lport"
        };
        self.pg_acl_add(
            &igr,
            acl_row(
                "to-lport",
                ACL_DEFAULT_DENY_PRIO,
                &format!("{ip}.src == {aset} && outport == @{igr}"),
                "drop",
            ),
        )
        .await?;
        self.pg_acl_add(
            &egr,
            acl_row(
                egress_dir,
                ACL_DEFAULT_DENY_PRIO,
                &format!("{ip}.dst == {aset} && inport == @{egr}"),
                "drop",
            ),
        )
        .await?;
        self.pg_acl_add(
            &igr,
            acl_row(
                "to-lport",
                ACL_DEFAULT_ALLOW_ARP_PRIO,
                &format!("outport == @{igr} && arp"),
                "allow",
            ),
        )
        .await?;
        self.pg_acl_add(
            &egr,
            acl_row(
                egress_dir,
                ACL_DEFAULT_ALLOW_ARP_PRIO,
                &format!("inport == @{egr} && arp"),
                "allow",
            ),
        )
        .await?;
        self.timed("Namespace.default_deny", started);
        Ok(())
    }

    /// `Namespace.allow_within_namespace`.
    pub async fn ns_allow_within_namespace(&mut self, ns: NsId, family: u8) -> Result<()> {
        let started = std::time::Instant::now();
        self.ns_enforce(ns).await?;
        let n = self.namespaces[ns].clone();
        let pg = n.pg();
        let aset = self.as_ref(&n, family);
        let ip = self.ip_word(family);
        let egress_dir = if self.compat == Compat::Fixed {
            "from-lport"
        } else {
            "to-lport"
        };
        self.pg_acl_add(
            &pg,
            acl_row(
                "to-lport",
                ACL_NETPOL_ALLOW_PRIO,
                &format!("{ip}.src == {aset} && outport == @{pg}"),
                "allow-related",
            ),
        )
        .await?;
        self.pg_acl_add(
            &pg,
            acl_row(
                egress_dir,
                ACL_NETPOL_ALLOW_PRIO,
                &format!("{ip}.dst == {aset} && inport == @{pg}"),
                "allow-related",
            ),
        )
        .await?;
        self.timed("Namespace.allow_within_namespace", started);
        Ok(())
    }

    /// `Namespace.allow_cross_namespace`: traffic from `other` into `ns`, and from `ns` to
    /// `other`.
    pub async fn ns_allow_cross_namespace(&mut self, ns: NsId, other: NsId, family: u8) -> Result<()> {
        let started = std::time::Instant::now();
        self.ns_enforce(ns).await?;
        let n = self.namespaces[ns].clone();
        let o = self.namespaces[other].clone();
        if n.ports.is_empty() {
            return Ok(());
        }
        // Upstream's version cannot run (it indexes an `OvnNbctl`); this is what ovn-kubernetes
        // writes for "allow from/to namespace `other`": both ACLs name only this namespace's
        // port group (ovn-controller cannot resolve another namespace's group on a switch
        // where that group has no port).
        let pg = n.pg();
        let ip = if family == 6 { "ip6" } else { "ip4" };
        let other_as = self.as_ref(&o, family);
        self.pg_acl_add(
            &pg,
            acl_row(
                "to-lport",
                ACL_NETPOL_ALLOW_PRIO,
                &format!("{ip}.src == {other_as} && outport == @{pg}"),
                "allow-related",
            ),
        )
        .await?;
        self.pg_acl_add(
            &pg,
            acl_row(
                "from-lport",
                ACL_NETPOL_ALLOW_PRIO,
                &format!("{ip}.dst == {other_as} && inport == @{pg}"),
                "allow-related",
            ),
        )
        .await?;
        self.timed("Namespace.allow_cross_namespace", started);
        Ok(())
    }

    /// `Namespace.allow_from_external`: `external_ips` may reach the namespace. With
    /// `include_ext_gw`, the first pod's external gateway is appended to `external_ips`
    /// itself (upstream mutates the caller's list, so later namespaces inherit it).
    pub async fn ns_allow_from_external(
        &mut self,
        ns: NsId,
        external_ips: &mut Vec<IpAddr>,
        include_ext_gw: bool,
        family: u8,
    ) -> Result<()> {
        let started = std::time::Instant::now();
        self.ns_enforce(ns).await?;
        let n = self.namespaces[ns].clone();
        let mut ips = external_ips.clone();
        if include_ext_gw {
            if let Some(first) = n.ports.first() {
                let gw = if family == 6 {
                    first.ext_gw.ip6().map(IpAddr::V6)
                } else {
                    first.ext_gw.ip4().map(IpAddr::V4)
                };
                if let Some(gw) = gw {
                    if self.compat == Compat::Upstream {
                        external_ips.push(gw);
                        ips = external_ips.clone();
                    } else {
                        ips.push(gw);
                    }
                }
            }
        }
        let list = ips.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(",");
        let pg = n.pg();
        let head = match self.compat {
            Compat::Upstream => format!("ip.{family}"),
            Compat::Fixed => format!("ip{family}.src"),
        };
        self.pg_acl_add(
            &pg,
            acl_row(
                "to-lport",
                ACL_NETPOL_ALLOW_PRIO,
                &format!("{head} == {{{list}}} && outport == @{pg}"),
                "allow-related",
            ),
        )
        .await?;
        self.timed("Namespace.allow_from_external", started);
        Ok(())
    }

    /// `Namespace.create_sub_ns`: a sub port group with `ports` and its address set(s);
    /// returns the sub-namespace index.
    pub async fn ns_create_sub_ns(&mut self, ns: NsId, ports: &[Pod]) -> Result<usize> {
        let started = std::time::Instant::now();
        let n = self.namespaces[ns].clone();
        let idx = n.sub_pg.len();
        let suffix = format!("{}_{idx}", n.name);
        let pg = format!("sub_pg_{suffix}");
        self.insert_one("pg_add", "Port_Group", Row::new().with("name", pg.as_str()))
            .await?;
        self.pg_add_ports(&pg, ports).await?;
        self.namespaces[ns].sub_pg.push(pg);
        if self.families.run_ipv4 {
            let a = format!("sub_as_{suffix}");
            self.insert_one("address_set_add", "Address_Set", Row::new().with("name", a.as_str()))
                .await?;
            let ips = ports.iter().filter_map(|p| p.ip.ip4()).map(|i| i.to_string()).collect();
            self.as_add_addrs(&a, ips).await?;
            self.namespaces[ns].sub_as.push(a);
        }
        if self.families.run_ipv6 {
            let a = format!("sub_as_{suffix}6");
            self.insert_one("address_set_add", "Address_Set", Row::new().with("name", a.as_str()))
                .await?;
            let ips = ports.iter().filter_map(|p| p.ip.ip6()).map(|i| i.to_string()).collect();
            self.as_add_addrs(&a, ips).await?;
            self.namespaces[ns].sub_as.push(a);
        }
        self.timed("Namespace.create_sub_ns", started);
        Ok(idx)
    }

    /// `Namespace.allow_sub_namespace`: `src` may reach `dst` (two ACLs on the namespace PG).
    pub async fn ns_allow_sub_namespace(&mut self, ns: NsId, src: usize, dst: usize, family: u8) -> Result<()> {
        let started = std::time::Instant::now();
        let n = self.namespaces[ns].clone();
        let pg = n.pg();
        // Upstream indexes the address sets by sub-PG index (wrong in dual stack) and
        // writes a backslash before `$`.
        let (as_src, as_dst) = match self.compat {
            Compat::Upstream => (
                format!("\\${}", n.sub_as.get(src).cloned().unwrap_or_default()),
                format!("\\${}", n.sub_as.get(dst).cloned().unwrap_or_default()),
            ),
            Compat::Fixed => {
                let per = usize::from(self.families.run_ipv4) + usize::from(self.families.run_ipv6);
                let off = usize::from(family == 6 && self.families.run_ipv4);
                let pick = |i: usize| format!("${}", n.sub_as.get(i * per + off).cloned().unwrap_or_default());
                (pick(src), pick(dst))
            }
        };
        let (pg_src, pg_dst) = (&n.sub_pg[src], &n.sub_pg[dst]);
        let egress_dir = if self.compat == Compat::Fixed {
            "from-lport"
        } else {
            "to-lport"
        };
        // Upstream attaches both to the namespace's group; ovn-kubernetes attaches each ACL to
        // the group its match names (ovn-controller cannot resolve a group on a switch where
        // it has no port).
        let (on_ingress, on_egress) = match self.compat {
            Compat::Upstream => (pg.clone(), pg.clone()),
            Compat::Fixed => (pg_dst.clone(), pg_src.clone()),
        };
        self.pg_acl_add(
            &on_ingress,
            acl_row(
                "to-lport",
                ACL_NETPOL_ALLOW_PRIO,
                &format!("ip{family}.src == {as_src} && outport == @{pg_dst}"),
                "allow-related",
            ),
        )
        .await?;
        self.pg_acl_add(
            &on_egress,
            acl_row(
                egress_dir,
                ACL_NETPOL_ALLOW_PRIO,
                &format!("ip{family}.dst == {as_dst} && inport == @{pg_src}"),
                "allow-related",
            ),
        )
        .await?;
        self.timed("Namespace.allow_sub_namespace", started);
        Ok(())
    }

    /// `Namespace.create_load_balancer` + `Cluster.provision_lb`.
    pub async fn ns_create_load_balancer(&mut self, ns: NsId) -> Result<LbId> {
        let name = format!("lb_{}", self.namespaces[ns].name);
        let lb = self.lb_create(&name).await?;
        self.namespaces[ns].load_balancer = Some(lb);
        self.namespaces[ns].lbs.push(lb);
        self.provision_lb(lb).await?;
        Ok(lb)
    }

    /// `Namespace.provision_vips_to_load_balancers`: VIPs in 30.<n_ns>.0.0/16 (30::/32 for
    /// IPv6), one per backend list.
    pub async fn ns_provision_vips(&mut self, ns: NsId, backend_lists: &[Vec<Pod>], family: u8) -> Result<()> {
        let started = std::time::Instant::now();
        let lb = self.namespaces[ns].load_balancer.ok_or(Error::Unknown {
            kind: "namespace load balancer",
            name: self.namespaces[ns].name.clone(),
        })?;
        let net: ipnet::IpNet = if family == 6 {
            "30::/32".parse().expect("literal")
        } else {
            "30.0.0.0/16".parse().expect("literal")
        };
        let base = match net {
            ipnet::IpNet::V4(n) => DualStackSubnet::new(Some(n), None).next(self.n_ns),
            ipnet::IpNet::V6(n) => DualStackSubnet::new(None, Some(n)).next(self.n_ns),
        };
        let n_vips = self.lbs[lb].vips.len() as u64;
        let vips: Vec<Vip> = backend_lists
            .iter()
            .enumerate()
            .map(|(i, ports)| {
                let at = base.forward(n_vips + 1 + i as u64);
                let (vip, backs): (IpAddr, Vec<String>) = if family == 6 {
                    (
                        IpAddr::V6(at.ip6().expect("v6 net")),
                        ports
                            .iter()
                            .filter_map(|p| p.ip.ip6())
                            .map(|a| endpoint(IpAddr::V6(a), BACKEND_PORT))
                            .collect(),
                    )
                } else {
                    (
                        IpAddr::V4(at.ip4().expect("v4 net")),
                        ports
                            .iter()
                            .filter_map(|p| p.ip.ip4())
                            .map(|a| endpoint(IpAddr::V4(a), BACKEND_PORT))
                            .collect(),
                    )
                };
                (endpoint(vip, VIP_PORT), backs)
            })
            .collect();
        self.lb_add_vips(lb, &vips).await?;
        self.timed("Namespace.provision_vips_to_load_balancers", started);
        Ok(())
    }

    /// `Namespace.unprovision_ports`: removes a subset of the namespace's pods (NB half;
    /// the caller unbinds them). `fixed` also takes their IPs out of the address sets.
    pub async fn ns_unprovision_ports(&mut self, ns: NsId, ports: &[Pod]) -> Result<()> {
        self.namespaces[ns]
            .ports
            .retain(|p| !ports.iter().any(|q| q.name == p.name));
        for p in ports {
            self.delete_port(p).await?;
        }
        if self.compat == Compat::Fixed {
            let n = self.namespaces[ns].clone();
            if let Some(a) = &n.addr_set4 {
                let ips = ports.iter().filter_map(|p| p.ip.ip4()).map(|i| i.to_string()).collect();
                self.as_remove_addrs(a, ips).await?;
            }
            if let Some(a) = &n.addr_set6 {
                let ips = ports.iter().filter_map(|p| p.ip.ip6()).map(|i| i.to_string()).collect();
                self.as_remove_addrs(a, ips).await?;
            }
        }
        Ok(())
    }

    /// `Namespace.unprovision` after its ports are gone (the caller deletes and unbinds the
    /// ports first), first half: the namespace's ACLs (upstream: its port groups). Returns
    /// false where upstream raises: its port groups are deleted, then `port_group_del(list)`
    /// throws, leaving address sets and sub-namespaces behind.
    pub async fn ns_unprovision_policies(&mut self, ns: NsId) -> Result<bool> {
        let n = self.namespaces[ns].clone();
        if self.compat == Compat::Upstream {
            for pg in [n.pg_deny_igr(), n.pg_deny_egr(), n.pg()] {
                self.pg_del(&pg).await?;
            }
            // address_set_del is never executed upstream; then sub_pg (a list) raises.
            return Ok(false);
        }
        // Only the ACLs here: other namespaces' ACLs may still name these port groups.
        let mut txn = Transaction::new(NB);
        for pg in [n.pg_deny_igr(), n.pg_deny_egr(), n.pg()]
            .into_iter()
            .chain(n.sub_pg.iter().cloned())
        {
            txn.update(
                "Port_Group",
                vec![Condition::eq("name", pg.as_str())],
                Row::new().with("acls", Value::empty_set()),
            );
        }
        self.commit("pg_acl_del", txn).await?;
        Ok(true)
    }

    /// Second half (`fixed` only): the port groups, address sets and load balancers. Run it
    /// once no ACL of any namespace refers to them any more (ovn-controller rejects a match
    /// naming a missing port group or address set).
    pub async fn ns_unprovision_sets(&mut self, ns: NsId) -> Result<()> {
        if self.compat == Compat::Upstream {
            return Ok(());
        }
        let n = self.namespaces[ns].clone();
        for pg in [n.pg_deny_igr(), n.pg_deny_egr(), n.pg()].iter().chain(n.sub_pg.iter()) {
            self.pg_del(pg).await?;
        }
        for a in n.addr_set4.iter().chain(n.addr_set6.iter()).chain(n.sub_as.iter()) {
            self.as_del(a).await?;
        }
        for lb in n.lbs {
            self.lb_delete(lb).await?;
        }
        Ok(())
    }

    // ------------------------------------------------------------ row helpers --

    async fn lrp_add(&mut self, router: Uuid, name: &str, mac: &str, ip: DualStackIp) -> Result<()> {
        let mut txn = Transaction::new(NB);
        let lrp = txn.insert(
            "Logical_Router_Port",
            Row::new()
                .with("name", name)
                .with("mac", mac)
                .with("networks", Value::set(ip.networks())),
        );
        txn.mutate(
            "Logical_Router",
            vec![Condition::uuid(router)],
            vec![Mutation::insert("ports", lrp)],
        );
        self.commit("lrp_add", txn).await?;
        Ok(())
    }

    async fn lsp_add(&mut self, switch: Uuid, row: Row) -> Result<Uuid> {
        let mut txn = Transaction::new(NB);
        let lsp = txn.insert("Logical_Switch_Port", row);
        txn.mutate(
            "Logical_Switch",
            vec![Condition::uuid(switch)],
            vec![Mutation::insert("ports", lsp.clone())],
        );
        let r = self.commit("lsp_add", txn).await?;
        first_uuid(&r, &lsp)
    }

    async fn lsp_add_router(&mut self, switch: Uuid, name: &str, router_port: &str) -> Result<Uuid> {
        self.lsp_add(
            switch,
            Row::new()
                .with("name", name)
                .with("type", "router")
                .with("addresses", "router")
                .with("options", Value::string_map([("router-port", router_port)])),
        )
        .await
    }

    async fn lrp_set_gateway_chassis(&mut self, lrp: &str, chassis: &str, priority: i64) -> Result<()> {
        let mut txn = Transaction::new(NB);
        let gc = txn.insert(
            "Gateway_Chassis",
            Row::new()
                .with("name", format!("{lrp}_{chassis}"))
                .with("chassis_name", chassis)
                .with("priority", priority),
        );
        txn.mutate(
            "Logical_Router_Port",
            vec![Condition::eq("name", lrp)],
            vec![Mutation::insert("gateway_chassis", gc)],
        );
        self.commit("lrp_set_gateway_chassis", txn).await?;
        Ok(())
    }

    async fn route_add(&mut self, router: Uuid, net: &DualStackSubnet, gw: &DualStackIp, policy: &str) -> Result<()> {
        let pairs = [
            (net.v4.map(|n| n.to_string()), gw.ip4().map(|a| a.to_string())),
            (net.v6.map(|n| n.to_string()), gw.ip6().map(|a| a.to_string())),
        ];
        for (prefix, nexthop) in pairs {
            let (Some(prefix), Some(nexthop)) = (prefix, nexthop) else {
                continue;
            };
            let mut txn = Transaction::new(NB);
            let route = txn.insert(
                "Logical_Router_Static_Route",
                Row::new()
                    .with("ip_prefix", prefix)
                    .with("nexthop", nexthop)
                    .with("policy", policy),
            );
            txn.mutate(
                "Logical_Router",
                vec![Condition::uuid(router)],
                vec![Mutation::insert("static_routes", route)],
            );
            self.commit("lr_route_add", txn).await?;
        }
        Ok(())
    }

    async fn nat_add(&mut self, router: Uuid, external: &DualStackIp, logical: &DualStackSubnet) -> Result<()> {
        let v6_logical = logical.v6.map(|n| {
            // ovsdbapp 3.0.0 strips a "/32" meant for IPv4 hosts, also from an IPv6 /32.
            if self.compat == Compat::Upstream && n.prefix_len() == 32 {
                n.addr().to_string()
            } else {
                n.to_string()
            }
        });
        let pairs = [
            (external.ip4().map(|a| a.to_string()), logical.v4.map(|n| n.to_string())),
            (external.ip6().map(|a| a.to_string()), v6_logical),
        ];
        for (ext, log) in pairs {
            let (Some(ext), Some(log)) = (ext, log) else { continue };
            let mut txn = Transaction::new(NB);
            let nat = txn.insert(
                "NAT",
                Row::new()
                    .with("type", "snat")
                    .with("external_ip", ext)
                    .with("logical_ip", log),
            );
            txn.mutate(
                "Logical_Router",
                vec![Condition::uuid(router)],
                vec![Mutation::insert("nat", nat)],
            );
            self.commit("lr_nat_add", txn).await?;
        }
        Ok(())
    }
}

/// Sets one key of a map column, keeping the others (ovsdbapp's `db_set` on a map).
pub fn plan_set_map_key(table: &str, conditions: Vec<Condition>, column: &str, key: &str, value: &str) -> Transaction {
    let mut txn = Transaction::new(NB);
    // Two operations: a key inserted into a map that already holds it keeps the old value.
    txn.mutate(
        table,
        conditions.clone(),
        vec![Mutation::new(column, Mutator::Delete, Value::set([key]))],
    );
    txn.mutate(
        table,
        conditions,
        vec![Mutation::insert(column, Value::string_map([(key, value)]))],
    );
    txn
}

/// Adds a reference to a set column of one row (ovsdbapp's `db_add`).
pub fn plan_ref_insert(table: &str, row: Uuid, column: &str, target: Uuid) -> Transaction {
    let mut txn = Transaction::new(NB);
    txn.mutate(
        table,
        vec![Condition::uuid(row)],
        vec![Mutation::insert(column, Value::uuid(target))],
    );
    txn
}
