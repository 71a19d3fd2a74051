//! Upstream's nine ovn-kubernetes tests, in its order (alphabetical, as do.sh's `yaml.dump`
//! sorts the sections), with its parameter names, and the hooks a host supplies: binding pods
//! on chassis, readiness pings, and the Context boundaries (where measurements or dumps go).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::cluster::{NsId, Ovnk, Pod};
use crate::config::Compat;
use crate::error::{Error, Result};

/// Where in an upstream `Context` the workload is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Before the first iteration (only for a Context that iterates).
    Setup,
    /// After iteration k.
    Iteration(usize),
    /// The Context's exit (also after an upstream exception inside it).
    Exit,
}

/// A Context boundary: `label` is `<test>-<context>` (`density_light-run`), or
/// `prepare_test`.
#[derive(Clone, Copy, Debug)]
pub struct Point<'a> {
    pub label: &'a str,
    pub phase: Phase,
}

/// What the host does beside the NB writes. Pods are bound right after their LSP is
/// created; checks are upstream's pings (a host without a data plane returns `Ok`).
#[allow(async_fn_in_trait)]
pub trait Hooks {
    async fn bind(&mut self, ovnk: &Ovnk, pod: &Pod) -> Result<()>;
    async fn unbind(&mut self, ovnk: &Ovnk, pod: &Pod) -> Result<()>;
    /// `ping_port` from `from` to `to` (readiness and policy checks).
    async fn ping(&mut self, _ovnk: &Ovnk, _from: &Pod, _to: IpAddr) -> Result<()> {
        Ok(())
    }
    /// `ping_external`: the node's external host pings the pod.
    async fn ping_external(&mut self, _ovnk: &Ovnk, _pod: &Pod) -> Result<()> {
        Ok(())
    }
    async fn point(&mut self, ovnk: &Ovnk, point: Point<'_>) -> Result<()>;
}

/// `base_cluster_bringup`.
#[derive(Clone, Debug, Default)]
pub struct BaseClusterBringup {
    pub n_pods_per_node: usize,
}

/// `density_light`.
#[derive(Clone, Debug, Default)]
pub struct DensityLight {
    pub n_pods: usize,
    pub n_startup: usize,
}

/// `density_heavy`.
#[derive(Clone, Debug)]
pub struct DensityHeavy {
    pub n_pods: usize,
    pub n_startup: usize,
    pub pods_vip_ratio: usize,
}

impl Default for DensityHeavy {
    fn default() -> Self {
        DensityHeavy {
            n_pods: 0,
            n_startup: 0,
            pods_vip_ratio: 2,
        }
    }
}

/// `cluster_density`.
#[derive(Clone, Debug, Default)]
pub struct ClusterDensity {
    pub n_runs: usize,
    pub n_startup: usize,
}

/// One `ranges` entry of `netpol_multitenant`.
#[derive(Clone, Copy, Debug)]
pub struct NsRange {
    pub start: usize,
    pub n_pods: usize,
}

/// `netpol_multitenant`.
#[derive(Clone, Debug)]
pub struct NetpolMultitenant {
    pub n_namespaces: usize,
    pub ranges: Vec<NsRange>,
    pub n_external_ips1: usize,
    pub n_external_ips2: usize,
}

impl Default for NetpolMultitenant {
    fn default() -> Self {
        NetpolMultitenant {
            n_namespaces: 0,
            ranges: Vec::new(),
            n_external_ips1: 3,
            n_external_ips2: 20,
        }
    }
}

/// `netpol_small`, `netpol_large`, `netpol_cross_ns` (which ignores `n_labels`).
#[derive(Clone, Debug, Default)]
pub struct Netpol {
    pub n_ns: usize,
    pub pods_ns_ratio: usize,
    pub n_labels: usize,
}

/// `service_route`.
#[derive(Clone, Debug)]
pub struct ServiceRoute {
    pub n_lb: usize,
    pub n_backends: usize,
}

impl Default for ServiceRoute {
    fn default() -> Self {
        ServiceRoute {
            n_lb: 16,
            n_backends: 4,
        }
    }
}

/// The tests a scenario asks for (`None`: its section is absent, the test does not run).
#[derive(Clone, Debug, Default)]
pub struct Tests {
    pub base_cluster_bringup: Option<BaseClusterBringup>,
    pub cluster_density: Option<ClusterDensity>,
    pub density_heavy: Option<DensityHeavy>,
    pub density_light: Option<DensityLight>,
    pub netpol_cross_ns: Option<Netpol>,
    pub netpol_large: Option<Netpol>,
    pub netpol_multitenant: Option<NetpolMultitenant>,
    pub netpol_small: Option<Netpol>,
    pub service_route: Option<ServiceRoute>,
}

impl Tests {
    /// Refuses parameters upstream's constructors refuse (before anything is written).
    pub fn check(&self) -> Result<()> {
        if let Some(t) = &self.cluster_density {
            if t.n_startup > t.n_runs {
                return Err(Error::invalid(
                    "cluster_density",
                    "n_startup is larger than n_runs; lower n_startup",
                ));
            }
        }
        if let Some(t) = &self.density_heavy {
            if t.n_startup > t.n_pods {
                return Err(Error::invalid(
                    "density_heavy",
                    "n_startup is larger than n_pods; lower n_startup",
                ));
            }
        }
        for (name, t) in [
            ("netpol_small", &self.netpol_small),
            ("netpol_large", &self.netpol_large),
        ] {
            if let Some(t) = t {
                if t.n_labels >= t.n_ns * t.pods_ns_ratio || t.n_labels <= 2 {
                    return Err(Error::invalid(
                        name,
                        "needs 3 <= n_labels < n_ns * pods_ns_ratio; change n_labels, n_ns or pods_ns_ratio",
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Runs a Context's iterations with their boundary points.
struct Ctx<'a> {
    label: &'a str,
}

impl<'a> Ctx<'a> {
    async fn setup<H: Hooks>(&self, h: &mut H, o: &Ovnk, n: usize) -> Result<()> {
        if n > 0 {
            h.point(
                o,
                Point {
                    label: self.label,
                    phase: Phase::Setup,
                },
            )
            .await?;
        }
        Ok(())
    }
    async fn iter<H: Hooks>(&self, h: &mut H, o: &Ovnk, k: usize) -> Result<()> {
        h.point(
            o,
            Point {
                label: self.label,
                phase: Phase::Iteration(k),
            },
        )
        .await
    }
    async fn exit<H: Hooks>(&self, h: &mut H, o: &Ovnk) -> Result<()> {
        h.point(
            o,
            Point {
                label: self.label,
                phase: Phase::Exit,
            },
        )
        .await
    }
}

/// Upstream's `Cluster.prepare_test()` inside its `prepare_test clusters` Context.
pub async fn prepare<H: Hooks>(o: &mut Ovnk, h: &mut H) -> Result<()> {
    o.prepare().await?;
    Ctx { label: "prepare_test" }.exit(h, o).await
}

/// Runs every configured test in upstream's order. `cleanup` is `global.cleanup`.
pub async fn run_all<H: Hooks>(o: &mut Ovnk, h: &mut H, tests: &Tests, cleanup: bool) -> Result<()> {
    tests.check()?;
    if let Some(t) = &tests.base_cluster_bringup {
        base_cluster_bringup(o, h, t).await?;
    }
    if let Some(t) = &tests.cluster_density {
        cluster_density(o, h, t, cleanup).await?;
    }
    if let Some(t) = &tests.density_heavy {
        density_heavy(o, h, t, cleanup).await?;
    }
    if let Some(t) = &tests.density_light {
        density_light(o, h, t, cleanup).await?;
    }
    if let Some(t) = &tests.netpol_cross_ns {
        netpol_cross_ns(o, h, t, cleanup).await?;
    }
    if let Some(t) = &tests.netpol_large {
        netpol(o, h, "netpol_large", t, false, cleanup).await?;
    }
    if let Some(t) = &tests.netpol_multitenant {
        netpol_multitenant(o, h, t, cleanup).await?;
    }
    if let Some(t) = &tests.netpol_small {
        netpol(o, h, "netpol_small", t, true, cleanup).await?;
    }
    if let Some(t) = &tests.service_route {
        service_route(o, h, t, cleanup).await?;
    }
    Ok(())
}

/// `Cluster.provision_ports`: `n` pods, one at a time, round robin over the workers.
async fn provision_ports<H: Hooks>(o: &mut Ovnk, h: &mut H, n: usize, passive: bool) -> Result<Vec<Pod>> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let w = o.select_worker_for_port();
        let pod = o.provision_port(w, passive).await?;
        h.bind(o, &pod).await?;
        out.push(pod);
    }
    Ok(out)
}

/// `ping_ports`: each pod reaches its node's external gateway.
async fn ping_ports<H: Hooks>(o: &Ovnk, h: &mut H, ports: &[Pod]) -> Result<()> {
    for p in ports {
        if let Some(gw) = p.ext_gw.ip4() {
            h.ping(o, p, IpAddr::V4(gw)).await?;
        }
        if let Some(gw) = p.ext_gw.ip6() {
            h.ping(o, p, IpAddr::V6(gw)).await?;
        }
    }
    Ok(())
}

/// `Namespace.unprovision`, first half (ports and port groups); `false` where upstream
/// raises (the rest of that cleanup Context is skipped).
async fn ns_unprovision_policies<H: Hooks>(o: &mut Ovnk, h: &mut H, ns: NsId) -> Result<bool> {
    let ports = o.namespaces[ns].ports.clone();
    for p in &ports {
        o.delete_port(p).await?;
        h.unbind(o, p).await?;
    }
    o.namespaces[ns].ports.clear();
    let done = o.ns_unprovision_policies(ns).await?;
    if !done {
        tracing::warn!(
            "upstream compat: Namespace.unprovision({}) raises here, as upstream's does (AttributeError on port_group_del of a list)",
            o.namespaces[ns].name
        );
    }
    Ok(done)
}

/// `Namespace.unprovision` of one namespace.
async fn ns_unprovision<H: Hooks>(o: &mut Ovnk, h: &mut H, ns: NsId) -> Result<bool> {
    let done = ns_unprovision_policies(o, h, ns).await?;
    if done {
        o.ns_unprovision_sets(ns).await?;
    }
    Ok(done)
}

/// Unprovisions namespaces that may refer to each other: every policy goes before any
/// address set (upstream stops at the first namespace, where it raises).
async fn cleanup_namespaces<H: Hooks>(o: &mut Ovnk, h: &mut H, all: &[NsId]) -> Result<()> {
    for ns in all {
        if !ns_unprovision_policies(o, h, *ns).await? {
            return Ok(());
        }
    }
    for ns in all {
        o.ns_unprovision_sets(*ns).await?;
    }
    Ok(())
}

/// `base_cluster_bringup`: the cluster router, join switch and LB, then per worker its
/// topology, `n_pods_per_node` pods and load balancers, then the LB group.
pub async fn base_cluster_bringup<H: Hooks>(o: &mut Ovnk, h: &mut H, t: &BaseClusterBringup) -> Result<()> {
    let ctx = Ctx {
        label: "base_cluster_bringup-run",
    };
    o.create_cluster_router("lr-cluster1").await?;
    o.create_cluster_join_switch("ls-join1").await?;
    o.create_cluster_load_balancer("lb-cluster1").await?;
    let n = o.workers.len();
    ctx.setup(h, o, n).await?;
    for w in 0..n {
        o.provision_worker(w).await?;
        let mut ports = Vec::new();
        for _ in 0..t.n_pods_per_node {
            ports.push(o.provision_port(w, false).await?);
        }
        for p in &ports {
            h.bind(o, p).await?;
        }
        o.provision_load_balancers(w, &ports).await?;
        ping_ports(o, h, &ports).await?;
        ctx.iter(h, o, w).await?;
    }
    o.provision_lb_group("cluster-lb-group1").await?;
    ctx.exit(h, o).await
}

const DENSITY_N_BUILD_PODS: usize = 6;
const DENSITY_N_PODS: usize = 4;

async fn cluster_density_iteration<H: Hooks>(o: &mut Ovnk, h: &mut H, index: usize, passive: bool) -> Result<NsId> {
    let ns = o.ns_create(&format!("NS_density_{index}")).await?;
    let mut build = Vec::new();
    if !passive {
        build = provision_ports(o, h, DENSITY_N_BUILD_PODS, passive).await?;
        o.ns_add_ports(ns, &build).await?;
        ping_ports(o, h, &build).await?;
    }
    let ports = provision_ports(o, h, DENSITY_N_PODS, passive).await?;
    o.ns_add_ports(ns, &ports).await?;
    o.ns_create_load_balancer(ns).await?;
    let lists = [ports[0..2].to_vec(), ports[2..3].to_vec(), ports[3..4].to_vec()];
    if o.families.run_ipv4 {
        o.ns_provision_vips(ns, &lists, 4).await?;
    }
    if o.families.run_ipv6 {
        o.ns_provision_vips(ns, &lists, 6).await?;
    }
    if !passive {
        ping_ports(o, h, &ports).await?;
        o.ns_unprovision_ports(ns, &build).await?;
        for p in &build {
            h.unbind(o, p).await?;
        }
    }
    Ok(ns)
}

/// `cluster_density`: per run a namespace with 6 short-lived build pods, 4 pods, and a
/// namespace LB with 3 VIPs.
pub async fn cluster_density<H: Hooks>(o: &mut Ovnk, h: &mut H, t: &ClusterDensity, cleanup: bool) -> Result<()> {
    let mut all = Vec::new();
    let ctx = Ctx {
        label: "cluster_density-startup",
    };
    for index in 0..t.n_startup {
        all.push(cluster_density_iteration(o, h, index, true).await?);
    }
    ctx.exit(h, o).await?;
    let ctx = Ctx {
        label: "cluster_density-run",
    };
    let n = t.n_runs - t.n_startup;
    ctx.setup(h, o, n).await?;
    for i in 0..n {
        all.push(cluster_density_iteration(o, h, t.n_startup + i, false).await?);
        ctx.iter(h, o, i).await?;
    }
    ctx.exit(h, o).await?;
    if cleanup {
        cleanup_namespaces(o, h, &all).await?;
        Ctx {
            label: "cluster_density-cleanup",
        }
        .exit(h, o)
        .await?;
    }
    Ok(())
}

fn nth_host(base: IpAddr, n: u64) -> IpAddr {
    match base {
        IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a) + n as u32)),
        IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(u128::from(a) + u128::from(n))),
    }
}

/// One `DensityHeavy.run_iteration`: `pods_vip_ratio` pods, the first the backend of
/// `lb_density_heavy_<index>` with the `vip_n`-th VIP of 100.0.0.0/8 (100::/32).
async fn density_heavy_iteration<H: Hooks>(
    o: &mut Ovnk,
    h: &mut H,
    t: &DensityHeavy,
    ns: NsId,
    index: usize,
    vip_n: u64,
    passive: bool,
) -> Result<()> {
    let ports = provision_ports(o, h, t.pods_vip_ratio, passive).await?;
    o.ns_add_ports(ns, &ports).await?;
    let backends = &ports[0..1];
    for (run, family) in [(o.families.run_ipv4, 4u8), (o.families.run_ipv6, 6u8)] {
        if !run {
            continue;
        }
        let (name, vip) = if family == 4 {
            (
                format!("density_heavy_{index}"),
                nth_host(IpAddr::V4(Ipv4Addr::new(100, 0, 0, 0)), vip_n),
            )
        } else {
            (
                format!("density_heavy6_{index}"),
                nth_host(IpAddr::V6("100::".parse().expect("literal")), vip_n),
            )
        };
        let lb = o.lb_create(&format!("lb_{name}")).await?;
        o.namespaces[ns].lbs.push(lb);
        o.provision_lb(lb).await?;
        let backs = backends
            .iter()
            .filter_map(|p| {
                if family == 4 {
                    p.ip.ip4().map(IpAddr::V4)
                } else {
                    p.ip.ip6().map(IpAddr::V6)
                }
            })
            .map(|a| crate::net::endpoint(a, crate::cluster::BACKEND_PORT))
            .collect();
        o.lb_add_vips(lb, &[(crate::net::endpoint(vip, crate::cluster::VIP_PORT), backs)])
            .await?;
    }
    if !passive {
        ping_ports(o, h, &ports).await?;
    }
    Ok(())
}

/// `density_heavy`: pods in groups of `pods_vip_ratio`, the first of each the backend of
/// its own cluster service (`lb_density_heavy_<i>`, VIP 100.0.0.<n>:80).
pub async fn density_heavy<H: Hooks>(o: &mut Ovnk, h: &mut H, t: &DensityHeavy, cleanup: bool) -> Result<()> {
    if t.pods_vip_ratio == 0 {
        return Ok(());
    }
    let ns = o.ns_create("ns_density_heavy").await?;
    let mut next_vip = 0u64;
    let ctx = Ctx {
        label: "density_heavy-startup",
    };
    for j in (0..t.n_startup).step_by(t.pods_vip_ratio) {
        next_vip += 1;
        density_heavy_iteration(o, h, t, ns, j, next_vip, true).await?;
    }
    ctx.exit(h, o).await?;
    let ctx = Ctx {
        label: "density_heavy-run",
    };
    // Upstream divides as floats and its Context truncates.
    let n = (t.n_pods - t.n_startup) / t.pods_vip_ratio;
    ctx.setup(h, o, n).await?;
    for i in 0..n {
        next_vip += 1;
        density_heavy_iteration(o, h, t, ns, i * t.pods_vip_ratio + t.n_startup, next_vip, false).await?;
        ctx.iter(h, o, i).await?;
    }
    ctx.exit(h, o).await?;
    if cleanup {
        let ctx = Ctx {
            label: "density_heavy-cleanup",
        };
        ctx.setup(h, o, 1).await?;
        o.unprovision_vips().await?;
        ctx.iter(h, o, 0).await?;
        ns_unprovision(o, h, ns).await?;
        ctx.exit(h, o).await?;
    }
    Ok(())
}

/// `density_light`: `n_startup` passive pods, then one pod per iteration.
pub async fn density_light<H: Hooks>(o: &mut Ovnk, h: &mut H, t: &DensityLight, cleanup: bool) -> Result<()> {
    let ns = o.ns_create("ns_density_light").await?;
    let ctx = Ctx {
        label: "density_light-startup",
    };
    ctx.setup(h, o, 1).await?;
    let ports = provision_ports(o, h, t.n_startup, true).await?;
    o.ns_add_ports(ns, &ports).await?;
    ctx.iter(h, o, 0).await?;
    ctx.exit(h, o).await?;
    let ctx = Ctx {
        label: "density_light-run",
    };
    let n = t.n_pods.saturating_sub(t.n_startup);
    ctx.setup(h, o, n).await?;
    for i in 0..n {
        let ports = provision_ports(o, h, 1, false).await?;
        o.ns_add_ports(ns, &ports).await?;
        ping_ports(o, h, &ports).await?;
        ctx.iter(h, o, i).await?;
    }
    ctx.exit(h, o).await?;
    if cleanup {
        ns_unprovision(o, h, ns).await?;
        Ctx {
            label: "density_light-cleanup",
        }
        .exit(h, o)
        .await?;
    }
    Ok(())
}

/// `netpol_cross_ns`: namespaces with default deny, each allowing the next one. Upstream
/// reads the section `netpol_cross` (so with its own section it runs nothing): in `upstream`
/// compat the caller passes that section's values.
pub async fn netpol_cross_ns<H: Hooks>(o: &mut Ovnk, h: &mut H, t: &Netpol, cleanup: bool) -> Result<()> {
    let mut all = Vec::new();
    let ctx = Ctx {
        label: "netpol_cross_ns-startup",
    };
    for i in 0..t.n_ns {
        let ports = provision_ports(o, h, t.pods_ns_ratio, false).await?;
        let ns = o.ns_create(&format!("NS_netpol_cross_ns_startup_{i}")).await?;
        o.ns_add_ports(ns, &ports).await?;
        if o.families.run_ipv4 {
            o.ns_default_deny(ns, 4).await?;
        }
        if o.families.run_ipv6 {
            o.ns_default_deny(ns, 6).await?;
        }
        all.push(ns);
    }
    ctx.exit(h, o).await?;
    let ctx = Ctx {
        label: "netpol_cross_ns-run",
    };
    ctx.setup(h, o, t.n_ns).await?;
    for i in 0..t.n_ns {
        let (ns, ext) = (all[i], all[(i + 1) % t.n_ns]);
        for (run, family) in [(o.families.run_ipv4, 4u8), (o.families.run_ipv6, 6u8)] {
            if run {
                o.ns_allow_cross_namespace(ns, ext, family).await?;
            }
        }
        let (src, dst) = (
            o.namespaces[ns].ports.first().cloned(),
            o.namespaces[ext].ports.first().cloned(),
        );
        if let (Some(src), Some(dst)) = (src, dst) {
            for ip in [dst.ip.ip4().map(IpAddr::V4), dst.ip.ip6().map(IpAddr::V6)]
                .into_iter()
                .flatten()
            {
                h.ping(o, &src, ip).await?;
            }
        }
        ctx.iter(h, o, i).await?;
    }
    ctx.exit(h, o).await?;
    if cleanup {
        cleanup_namespaces(o, h, &all).await?;
        Ctx {
            label: "netpol_cross_ns-cleanup",
        }
        .exit(h, o)
        .await?;
    }
    Ok(())
}

/// `netpol_small` (exclude mode) and `netpol_large`: namespaces with default deny, then per
/// label two sub-namespaces and the policy between them.
pub async fn netpol<H: Hooks>(
    o: &mut Ovnk,
    h: &mut H,
    name: &str,
    t: &Netpol,
    exclude: bool,
    cleanup: bool,
) -> Result<()> {
    let mut all = Vec::new();
    let mut ns_ports: Vec<Vec<Pod>> = vec![Vec::new(); t.n_ns];
    let mut labels: Vec<Vec<Pod>> = vec![Vec::new(); t.n_labels];
    let startup = format!("{name}-startup");
    let ctx = Ctx { label: &startup };
    for i in 0..t.n_ns {
        ns_ports[i] = provision_ports(o, h, t.pods_ns_ratio, false).await?;
        let ns = o.ns_create(&format!("NS_{name}_{i}")).await?;
        o.ns_add_ports(ns, &ns_ports[i]).await?;
        o.ns_default_deny(ns, 4).await?;
        all.push(ns);
        // Upstream re-labels every port so far on each pass (duplicates in the lists).
        for (k, p) in ns_ports.iter().flatten().enumerate() {
            labels[k % t.n_labels].push(p.clone());
        }
    }
    ctx.exit(h, o).await?;
    let run = format!("{name}-run");
    let ctx = Ctx { label: &run };
    ctx.setup(h, o, t.n_ns).await?;
    for i in 0..t.n_ns {
        let ns = all[i];
        for lbl in 0..t.n_labels {
            let label = labels[lbl].clone();
            let src = o.ns_create_sub_ns(ns, &label).await?;
            let n = (lbl + 1) % t.n_labels;
            let nlabel: Vec<Pod> = if exclude {
                ns_ports[i]
                    .iter()
                    .filter(|p| !label.iter().chain(labels[n].iter()).any(|q| q.name == p.name))
                    .cloned()
                    .collect()
            } else {
                labels[n].clone()
            };
            let dst = o.ns_create_sub_ns(ns, &nlabel).await?;
            if o.families.run_ipv4 {
                o.ns_allow_sub_namespace(ns, src, dst, 4).await?;
            }
            if o.families.run_ipv6 {
                o.ns_allow_sub_namespace(ns, src, dst, 6).await?;
            }
            if let (Some(a), Some(b)) = (label.first(), nlabel.first()) {
                for ip in [b.ip.ip4().map(IpAddr::V4), b.ip.ip6().map(IpAddr::V6)]
                    .into_iter()
                    .flatten()
                {
                    h.ping(o, a, ip).await?;
                }
            } else if nlabel.is_empty() && o.compat == Compat::Upstream {
                // Upstream indexes nlabel[0] and raises IndexError here.
                return Err(Error::invalid(
                    name,
                    "a namespace has no pod outside two labels (upstream raises IndexError); raise pods_ns_ratio",
                ));
            }
        }
        ctx.iter(h, o, i).await?;
    }
    ctx.exit(h, o).await?;
    if cleanup {
        cleanup_namespaces(o, h, &all).await?;
        Ctx {
            label: &format!("{name}-cleanup"),
        }
        .exit(h, o)
        .await?;
    }
    Ok(())
}

/// `netpol_multitenant`: per namespace 1..n pods (by `ranges`), default deny, allow within
/// the namespace and from two lists of external IPs.
pub async fn netpol_multitenant<H: Hooks>(o: &mut Ovnk, h: &mut H, t: &NetpolMultitenant, cleanup: bool) -> Result<()> {
    let mut ranges = t.ranges.clone();
    ranges.sort_by_key(|r| std::cmp::Reverse(r.start));
    let v4 = |base: [u8; 4], n: usize| -> Vec<IpAddr> {
        (0..n)
            .map(|i| nth_host(IpAddr::V4(Ipv4Addr::from(base)), i as u64))
            .collect()
    };
    let v6 = |base: &str, n: usize| -> Vec<IpAddr> {
        let b: IpAddr = base.parse().expect("literal");
        (0..n).map(|i| nth_host(b, i as u64)).collect()
    };
    let ext1 = v4([42, 42, 42, 1], t.n_external_ips1);
    let mut ext2 = v4([43, 43, 43, 1], t.n_external_ips2);
    let ext6_1 = v6("42:42:42::1", t.n_external_ips1);
    let mut ext6_2 = v6("43:43:43::1", t.n_external_ips2);
    let mut all = Vec::new();
    let ctx = Ctx {
        label: "netpol_multitenant-run",
    };
    ctx.setup(h, o, t.n_namespaces).await?;
    for i in 0..t.n_namespaces {
        let n_ports = ranges.iter().find(|r| i >= r.start).map_or(1, |r| r.n_pods);
        let ns = o.ns_create(&format!("ns_netpol_multitenant_{i}")).await?;
        for _ in 0..n_ports {
            let w = o.select_worker_for_port();
            let p = o.provision_port(w, false).await?;
            h.bind(o, &p).await?;
            o.ns_add_ports(ns, std::slice::from_ref(&p)).await?;
        }
        o.ns_default_deny(ns, 4).await?;
        if o.families.run_ipv4 {
            o.ns_allow_within_namespace(ns, 4).await?;
        }
        if o.families.run_ipv6 {
            o.ns_allow_within_namespace(ns, 6).await?;
        }
        let ports = o.namespaces[ns].ports.clone();
        if ports.len() > 1 {
            let (src, dst) = (&ports[0], &ports[ports.len() - 1]);
            for ip in [dst.ip.ip4().map(IpAddr::V4), dst.ip.ip6().map(IpAddr::V6)]
                .into_iter()
                .flatten()
            {
                h.ping(o, src, ip).await?;
            }
        }
        if o.families.run_ipv4 {
            let mut e1 = ext1.clone();
            o.ns_allow_from_external(ns, &mut e1, false, 4).await?;
            o.ns_allow_from_external(ns, &mut ext2, true, 4).await?;
        }
        if o.families.run_ipv6 {
            let mut e1 = ext6_1.clone();
            o.ns_allow_from_external(ns, &mut e1, false, 6).await?;
            o.ns_allow_from_external(ns, &mut ext6_2, true, 6).await?;
        }
        if let Some(p) = ports.first() {
            h.ping_external(o, p).await?;
        }
        all.push(ns);
        ctx.iter(h, o, i).await?;
    }
    ctx.exit(h, o).await?;
    if cleanup {
        cleanup_namespaces(o, h, &all).await?;
        Ctx {
            label: "netpol_multitenant-cleanup",
        }
        .exit(h, o)
        .await?;
    }
    Ok(())
}

/// `service_route`: per iteration `n_backends + 1` pods, a cluster service
/// (`slb-cluster-<i>`, VIP 90.0.0.<i+1>:80) and per node a node-port-like service
/// (`slb-<i*n_lb+node>`, VIP = the node's external router IP) on its GR and switch.
pub async fn service_route<H: Hooks>(o: &mut Ovnk, h: &mut H, t: &ServiceRoute, cleanup: bool) -> Result<()> {
    let ns = o.ns_create("ns_service_route").await?;
    let ctx = Ctx {
        label: "service_route-run",
    };
    ctx.setup(h, o, t.n_lb).await?;
    for i in 0..t.n_lb {
        let ports = provision_ports(o, h, t.n_backends + 1, false).await?;
        o.ns_add_ports(ns, &ports).await?;
        let backends = &ports[1..];
        let families = [(o.families.run_ipv4, 4u8), (o.families.run_ipv6, 6u8)];
        for (run, family) in families {
            if !run {
                continue;
            }
            let endpoints = |port: u16| -> Vec<String> {
                backends
                    .iter()
                    .filter_map(|p| {
                        if family == 4 {
                            p.ip.ip4().map(IpAddr::V4)
                        } else {
                            p.ip.ip6().map(IpAddr::V6)
                        }
                    })
                    .map(|a| crate::net::endpoint(a, port))
                    .collect()
            };
            let (name, vip) = if family == 4 {
                (
                    format!("slb-cluster-{i}"),
                    nth_host(IpAddr::V4(Ipv4Addr::new(90, 0, 0, 0)), i as u64 + 1),
                )
            } else {
                (
                    format!("slb6-cluster-{i}"),
                    nth_host(IpAddr::V6("9::".parse().expect("literal")), i as u64 + 1),
                )
            };
            let lb = o.lb_create(&name).await?;
            o.namespaces[ns].lbs.push(lb);
            o.provision_lb(lb).await?;
            o.lb_add_vips(
                lb,
                &[(
                    crate::net::endpoint(vip, crate::cluster::VIP_PORT),
                    endpoints(crate::cluster::BACKEND_PORT),
                )],
            )
            .await?;
        }
        for w in 0..o.workers.len() {
            let index = i * t.n_lb + o.workers[w].id;
            for (run, family) in families {
                if !run {
                    continue;
                }
                let worker = o.workers[w].clone();
                let name = if family == 4 {
                    format!("slb-{index}")
                } else {
                    format!("slb6-{index}")
                };
                let vip = if family == 4 {
                    worker.ext_rp_ip().ip4().map(IpAddr::V4)
                } else {
                    worker.ext_rp_ip().ip6().map(IpAddr::V6)
                };
                let Some(vip) = vip else { continue };
                let backs = backends
                    .iter()
                    .filter_map(|p| {
                        if family == 4 {
                            p.ip.ip4().map(IpAddr::V4)
                        } else {
                            p.ip.ip6().map(IpAddr::V6)
                        }
                    })
                    .map(|a| crate::net::endpoint(a, crate::cluster::BACKEND_PORT))
                    .collect();
                let lb = o.lb_create(&name).await?;
                o.namespaces[ns].lbs.push(lb);
                o.lb_add_vips(lb, &[(crate::net::endpoint(vip, crate::cluster::VIP_PORT), backs)])
                    .await?;
                let (Some(gr), Some(ls)) = (worker.gw_router, worker.switch) else {
                    return Err(Error::Unknown {
                        kind: "worker",
                        name: worker.name,
                    });
                };
                o.lb_add_to(lb, &[gr], &[]).await?;
                o.lb_add_to(lb, &[], &[ls]).await?;
            }
        }
        ctx.iter(h, o, i).await?;
    }
    ctx.exit(h, o).await?;
    if cleanup {
        ns_unprovision(o, h, ns).await?;
        Ctx {
            label: "service_route-cleanup",
        }
        .exit(h, o)
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_upstream_refuses_are_refused() {
        let netpol = |n_ns, pods_ns_ratio, n_labels| Tests {
            netpol_small: Some(Netpol {
                n_ns,
                pods_ns_ratio,
                n_labels,
            }),
            ..Tests::default()
        };
        assert!(netpol(2, 3, 3).check().is_ok());
        assert!(netpol(2, 3, 2).check().unwrap_err().is_bad_input());
        assert!(netpol(1, 3, 3).check().is_err());
        let cd = Tests {
            cluster_density: Some(ClusterDensity {
                n_runs: 1,
                n_startup: 2,
            }),
            ..Tests::default()
        };
        assert!(cd.check().unwrap_err().to_string().contains("n_startup"));
        let dh = Tests {
            density_heavy: Some(DensityHeavy {
                n_pods: 2,
                n_startup: 4,
                pods_vip_ratio: 2,
            }),
            ..Tests::default()
        };
        assert!(dh.check().is_err());
    }

    #[test]
    fn upstream_defaults_of_the_sections() {
        assert_eq!(DensityHeavy::default().pods_vip_ratio, 2);
        let sr = ServiceRoute::default();
        assert_eq!((sr.n_lb, sr.n_backends), (16, 4));
        let mt = NetpolMultitenant::default();
        assert_eq!((mt.n_external_ips1, mt.n_external_ips2), (3, 20));
    }
}
