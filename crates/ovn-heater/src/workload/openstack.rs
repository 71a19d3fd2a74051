//! The OpenStack tests as stages: `networks` (external network, then per project a tenant
//! network + subnet and a router with its gateway and an interface on the subnet), `vms` (each
//! VM: create and bind its port, port up from the NB monitor, Neutron's ACTIVE rewrites, first
//! ping to the gateway), `pings` (mesh inside each project, and to the external host through
//! SNAT) and, with `global.cleanup`, `cleanup`.
//!
//! `openstack_base` is one project whose VMs are spread over the hypervisors;
//! upstream's `base_openstack` is N projects of M VMs placed round-robin, as upstream does.
//! VM actions run on `concurrency` API workers, capped by `ops_per_second`. A failed VM is a
//! failed sample (counted and shown); a failed network or router stops the run.
//!
//! Must not know: YAML, clap, how the lab was started, report formats.

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use ipnet::Ipv4Net;

use super::hosts::{Hypervisors, Plugged};
use super::Run;
use crate::cms::{Cms, NetworkRef, RouterRef, SubnetRef, VmPort};
use crate::metrics::{class_of, FailureClass};
use crate::report::progress::Progress;
use crate::scenario::{Scenario, Workload};

/// Above this many VMs per project, each VM pings only this many of its peers (the next ones
/// in creation order) instead of all of them, to keep the mesh linear.
pub const FULL_MESH_MAX_VMS: usize = 16;

/// VMs whose readiness is awaited at once while later VMs are created: bounds the tasks, the
/// probes and the NB waits in flight (each holds a raw socket on real chassis), and with them
/// the backlog of ports OVN has not bound yet. A closed loop: when OVN falls behind, creation
/// slows down instead of queueing ports that then wait past their timeout for CPU the backlog
/// itself uses.
const READINESS_IN_FLIGHT: usize = 64;

/// The shortest gateway probe after a port came up late: a port that came up just inside its
/// timeout still gets a fair chance to answer.
const MIN_GATEWAY_PROBE: Duration = Duration::from_secs(5);

/// Mesh and external pings in flight at once.
const PINGS_IN_FLIGHT: usize = 128;

#[derive(Clone, Debug, PartialEq)]
pub struct ProjectPlan {
    pub name: String,
    pub cidr: Ipv4Net,
    pub vms: usize,
}

/// What to build, derived from the scenario.
#[derive(Clone, Debug, PartialEq)]
pub struct Topology {
    pub projects: Vec<ProjectPlan>,
    pub gateways_per_router: usize,
    pub external_cidr: Ipv4Net,
    pub cleanup: bool,
}

/// The topology of a scenario's workload.
pub fn topology(s: &Scenario) -> Topology {
    let projects = match &s.workload {
        Workload::OpenstackBase(w) => vec![ProjectPlan {
            name: "project-1".into(),
            cidr: s.cluster.internal_net,
            vms: w.n_hypervisors * w.n_vms_per_hypervisor,
        }],
        Workload::BaseOpenstack(w) => s
            .cluster
            .internal_net
            .subnets(24)
            .map(|it| it.take(w.n_projects).collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(i, cidr)| ProjectPlan {
                name: format!("project-{}", i + 1),
                cidr,
                vms: w.n_vms_per_project,
            })
            .collect(),
    };
    let gateways_per_router = match &s.workload {
        Workload::OpenstackBase(w) => w.n_network_nodes,
        Workload::BaseOpenstack(w) => w.n_chassis_per_gw_lrp,
    };
    Topology {
        projects,
        gateways_per_router,
        external_cidr: s.cluster.external_net,
        // The runner sets it for attached runs (`Global::cleanup_when`).
        cleanup: s.global.cleanup_when(false),
    }
}

struct Project {
    name: String,
    network: NetworkRef,
    subnet: SubnetRef,
    router: RouterRef,
}

pub(super) struct Vm {
    project: usize,
    subject: String,
    pub(super) port: VmPort,
    plugged: Option<Plugged>,
    up: bool,
}

impl Vm {
    /// Its VM to ping from or to, or why that ping is skipped (`peer`: the VM is the other
    /// end).
    fn pingable(&self, peer: bool) -> Result<Plugged, &'static str> {
        match (&self.plugged, self.up, peer) {
            (Some(p), true, _) => Ok(p.clone()),
            (None, _, false) => Err("bind_port failed"),
            (None, _, true) => Err("the peer's bind_port failed"),
            (Some(_), false, false) => Err("port_up failed"),
            (Some(_), false, true) => Err("the peer's port_up failed"),
        }
    }
}

/// What the stages built, for the later stages and cleanup.
#[derive(Default)]
pub struct Built {
    external: Option<NetworkRef>,
    projects: Vec<Project>,
    vms: Vec<Vm>,
}

/// Runs every stage. `built` keeps what exists, so the caller can clean up after a failure.
pub async fn run_stages<C: Cms, H: Hypervisors>(
    run: Arc<Run<C, H>>,
    topo: &Topology,
    external_gateway: Ipv4Addr,
    built: Arc<tokio::sync::Mutex<Built>>,
) -> anyhow::Result<()> {
    networks(&run, topo, external_gateway, &built).await?;
    vms(&run, topo, &built).await?;
    if run.hosts.can_ping() {
        pings(&run, &built).await?;
    } else {
        run.event("stage pings skipped: emulated chassis have no data path");
    }
    if topo.cleanup {
        cleanup(&run, &built).await?;
    }
    Ok(())
}

async fn networks<C: Cms, H: Hypervisors>(
    run: &Arc<Run<C, H>>,
    topo: &Topology,
    external_gateway: Ipv4Addr,
    built: &tokio::sync::Mutex<Built>,
) -> anyhow::Result<()> {
    let stage = run.rec.begin_stage("networks");
    run.event("stage networks");
    run.ext.at(&run.rec, stage, "networks", 0).await;
    let rec = &run.rec;
    let cms = &run.cms;
    run.limiter.acquire().await;
    let external = rec
        .timed(
            stage,
            "create_external_network",
            "ext-net",
            cms.create_external_network("ext-net", topo.external_cidr, external_gateway),
        )
        .await
        .context("cannot create the external network")?;
    built.lock().await.external = Some(external.clone());
    let progress = Progress::new("networks", topo.projects.len());
    for plan in &topo.projects {
        let name = &plan.name;
        let step = async {
            run.limiter.acquire().await;
            let network = rec
                .timed(
                    stage,
                    "create_network",
                    name.clone(),
                    cms.create_network(&format!("{name}-net"), name),
                )
                .await?;
            run.limiter.acquire().await;
            let subnet = rec
                .timed(
                    stage,
                    "create_subnet",
                    name.clone(),
                    cms.create_subnet(&network, &format!("{name}-subnet"), plan.cidr),
                )
                .await?;
            run.limiter.acquire().await;
            let router = rec
                .timed(
                    stage,
                    "create_router",
                    name.clone(),
                    cms.create_router(&format!("{name}-router"), name),
                )
                .await?;
            run.limiter.acquire().await;
            let gateway_set_at = Instant::now();
            let router = rec
                .timed(
                    stage,
                    "set_router_gateway",
                    name.clone(),
                    cms.set_router_gateway(&router, &external, topo.gateways_per_router),
                )
                .await?;
            // Neutron reacts to the SB claim of the gateway's chassisredirect port.
            if let Some(lrp) = &router.gateway_lrp {
                match run.gateways.wait_bound(lrp, run.timeout).await {
                    Ok((at, host)) => {
                        rec.record(stage, "gateway_bound", name.clone(), gateway_set_at, at, None);
                        run.limiter.acquire().await;
                        let _ = rec
                            .timed(
                                stage,
                                "gateway_active",
                                name.clone(),
                                cms.router_gateway_bound(&router, &host),
                            )
                            .await;
                    }
                    Err(e) => rec.record(
                        stage,
                        "gateway_bound",
                        name.clone(),
                        gateway_set_at,
                        Instant::now(),
                        Some(format!("{e:#}")),
                    ),
                }
            }
            run.limiter.acquire().await;
            rec.timed(
                stage,
                "add_router_interface",
                name.clone(),
                cms.add_router_interface(&router, &subnet),
            )
            .await?;
            let mut network = network;
            network.subnet = Some(subnet.clone());
            anyhow::Ok(Project {
                name: name.clone(),
                network,
                subnet,
                router,
            })
        };
        let result = step.await;
        progress.tick(result.is_ok());
        let project = result.with_context(|| format!("cannot build the networks of {name}"))?;
        built.lock().await.projects.push(project);
    }
    progress.finish();
    run.end_stage(stage, "networks").await;
    Ok(())
}

async fn vms<C: Cms, H: Hypervisors>(
    run: &Arc<Run<C, H>>,
    topo: &Topology,
    built: &Arc<tokio::sync::Mutex<Built>>,
) -> anyhow::Result<()> {
    let stage = run.rec.begin_stage("vms");
    let hosts = run.hosts.compute();
    anyhow::ensure!(!hosts.is_empty(), "there is no hypervisor to place VMs on");
    // (project index, VM index in project) in creation order, hosts round-robin.
    let jobs: Vec<(usize, usize, String)> = topo
        .projects
        .iter()
        .enumerate()
        .flat_map(|(p, plan)| (0..plan.vms).map(move |i| (p, i)))
        .enumerate()
        .map(|(n, (p, i))| (p, i, hosts[n % hosts.len()].clone()))
        .collect();
    run.event(format!(
        "stage vms: {} VMs on {} {} hypervisors, {} {} API workers",
        jobs.len(),
        hosts.len(),
        run.hosts.kind(),
        run.concurrency,
        run.cms.name()
    ));
    let networks: Vec<NetworkRef> = built.lock().await.projects.iter().map(|p| p.network.clone()).collect();
    let project_names: Vec<String> = built.lock().await.projects.iter().map(|p| p.name.clone()).collect();
    let progress = Arc::new(Progress::new("vms", jobs.len()));
    let jobs = Arc::new(jobs);
    let next = Arc::new(AtomicUsize::new(0));
    let done: Arc<Mutex<Vec<Vm>>> = Arc::new(Mutex::new(Vec::new()));
    // The API workers create and plug VMs one after another; each VM's readiness (port up,
    // first ping to its gateway, ACTIVE) is awaited in a task of its own, so the next VM does
    // not wait for it. Readiness tasks in flight are bounded; each still times from its own
    // VM's creation.
    let readiness = Arc::new(tokio::sync::Semaphore::new(READINESS_IN_FLIGHT));
    let ready_tasks: Arc<Mutex<tokio::task::JoinSet<()>>> = Arc::new(Mutex::new(tokio::task::JoinSet::new()));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..run.concurrency.min(jobs.len().max(1)) {
        let (run, jobs, next, done, progress) =
            (run.clone(), jobs.clone(), next.clone(), done.clone(), progress.clone());
        let (networks, project_names) = (networks.clone(), project_names.clone());
        let (readiness, ready_tasks) = (readiness.clone(), ready_tasks.clone());
        workers.spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::SeqCst);
                let Some((p, i, host)) = jobs.get(n).cloned() else {
                    break;
                };
                run.ext.at(&run.rec, stage, "vms", n).await;
                let subject = format!("{}/vm-{i}@{host}", project_names[p]);
                let Some((mut vm, created_at)) =
                    create_vm(&run, stage, &networks[p], &project_names[p], &host, &subject).await
                else {
                    progress.tick(false);
                    continue;
                };
                vm.project = p;
                let Ok(permit) = readiness.clone().acquire_owned().await else {
                    break;
                };
                let (run, done, progress) = (run.clone(), done.clone(), progress.clone());
                ready_tasks.lock().unwrap_or_else(|e| e.into_inner()).spawn(async move {
                    vm_ready(&run, stage, &mut vm, created_at).await;
                    drop(permit);
                    progress.tick(vm.up);
                    done.lock().unwrap_or_else(|e| e.into_inner()).push(vm);
                });
            }
        });
    }
    while workers.join_next().await.is_some() {}
    let mut ready_tasks = std::mem::take(&mut *ready_tasks.lock().unwrap_or_else(|e| e.into_inner()));
    while ready_tasks.join_next().await.is_some() {}
    progress.finish();
    let mut made = std::mem::take(&mut *done.lock().unwrap_or_else(|e| e.into_inner()));
    made.sort_by(|a, b| a.subject.cmp(&b.subject));
    built.lock().await.vms = made;
    run.end_stage(stage, "vms").await;
    Ok(())
}

/// One VM: its port, plugged, up, ACTIVE, first ping to its gateway. `None` when the port
/// could not even be created (the failure is recorded).
pub(super) async fn one_vm<C: Cms, H: Hypervisors>(
    run: &Run<C, H>,
    stage: crate::metrics::StageId,
    network: &NetworkRef,
    project: &str,
    host: &str,
    subject: &str,
) -> Option<Vm> {
    let (mut vm, created_at) = create_vm(run, stage, network, project, host, subject).await?;
    vm_ready(run, stage, &mut vm, created_at).await;
    Some(vm)
}

/// A VM's port created and plugged (bound on its hypervisor), and when its creation began.
/// `None` when the port could not even be created (the failure is recorded).
async fn create_vm<C: Cms, H: Hypervisors>(
    run: &Run<C, H>,
    stage: crate::metrics::StageId,
    network: &NetworkRef,
    project: &str,
    host: &str,
    subject: &str,
) -> Option<(Vm, Instant)> {
    let rec = &run.rec;
    run.limiter.acquire().await;
    let created_at = Instant::now();
    let port = rec
        .timed(
            stage,
            "create_port",
            subject,
            run.cms.create_vm_port(network, host, project),
        )
        .await
        .ok()?;
    let plugged = rec.timed(stage, "bind_port", subject, run.hosts.plug(&port)).await.ok();
    let vm = Vm {
        project: 0,
        subject: subject.to_owned(),
        port,
        plugged,
        up: false,
    };
    Some((vm, created_at))
}

/// Waits for a created VM to be ready: its port up (timed from `created_at`), its first ping
/// to its gateway answered, and the CMS told it is ACTIVE.
async fn vm_ready<C: Cms, H: Hypervisors>(
    run: &Run<C, H>,
    stage: crate::metrics::StageId,
    vm: &mut Vm,
    created_at: Instant,
) {
    let rec = &run.rec;
    let subject = vm.subject.clone();
    let subject = subject.as_str();
    let gateway = vm.port.gateway;
    let pings_gateway = run.hosts.can_ping() && gateway.is_some();
    let Some(plugged) = vm.plugged.clone() else {
        // The harness failed this VM already (bind_port); OVN had no chance to bring it up.
        let now = Instant::now();
        rec.skipped(stage, "port_up", subject, now, "bind_port failed");
        if pings_gateway {
            rec.skipped(stage, "ping_gateway", subject, now, "bind_port failed");
        }
        return;
    };
    // The gateway is probed once the port is up, not from its creation: before ovn-controller
    // has installed the port's flows every probe is dropped, and the VM's kernel re-sends its
    // ARP request every 8 ms (what gives the probe its resolution), so a thousand VMs waiting
    // for their ports would flood the chassis' userspace datapath with ~100k dropped packets
    // per second and slow OVN down by what the harness sends. `ping_gateway` still runs from
    // the VM's creation to the first reply: it is the time until the VM can reach its router.
    let up = run.nb_watch.wait_up(&vm.port.lsp_name, run.timeout).await;
    match &up {
        Ok(at) => rec.record(stage, "port_up", subject, created_at, *at, None),
        Err(e) => {
            // A port on a chassis whose ovn-controller or ovs-vswitchd died cannot come up:
            // the death (recorded once, a harness failure) is the cause, not OVN.
            let dead = run.dead_daemons(stage, Some(&vm.port.host));
            let now = Instant::now();
            if dead.is_empty() {
                rec.record(stage, "port_up", subject, created_at, now, Some(format!("{e:#}")))
            } else {
                let why = format!("{} not running", dead.join(", "));
                rec.skipped(stage, "port_up", subject, now, &why)
            }
            if pings_gateway {
                // Not tried: a port that never came up cannot answer; its port_up is the failure.
                rec.skipped(stage, "ping_gateway", subject, now, "port_up failed");
            }
        }
    }
    if let (Ok(_), true, Some(gw)) = (&up, pings_gateway, gateway) {
        // Whatever is left of the VM's own timeout after its port came up.
        let left = run.timeout.saturating_sub(created_at.elapsed()).max(MIN_GATEWAY_PROBE);
        let (class, error) = match run.hosts.ping(&plugged, gw, left).await {
            Ok(Some(_)) => (FailureClass::System, None),
            Ok(None) => (
                FailureClass::System,
                Some(format!(
                    "no reply from the gateway {gw} within {}s of the VM's creation ({:.1}s after its port came up)",
                    run.timeout.as_secs(),
                    left.as_secs_f64()
                )),
            ),
            Err(e) => (class_of(&e), Some(format!("{e:#}"))),
        };
        rec.record_as(stage, "ping_gateway", subject, created_at, Instant::now(), class, error);
    }
    if up.is_ok() {
        vm.up = true;
        run.limiter.acquire().await;
        let _ = rec
            .timed(stage, "port_active", subject, run.cms.port_up(&vm.port))
            .await;
    }
}

async fn pings<C: Cms, H: Hypervisors>(
    run: &Arc<Run<C, H>>,
    built: &Arc<tokio::sync::Mutex<Built>>,
) -> anyhow::Result<()> {
    let stage = run.rec.begin_stage("pings");
    let external = run.hosts.external_ip();
    // Each ping as indices into the VMs (the source, and the peer VM or none for the external
    // host): its subject, ends and chassis are worked out when it runs, so the list of
    // thousands of pings holds no strings or plugged VMs.
    // Lent to the ping workers for the stage, given back to `built` (for cleanup) after it.
    let vms: Arc<Vec<Vm>> = Arc::new(std::mem::take(&mut built.lock().await.vms));
    let mut jobs: Vec<(usize, Option<usize>)> = Vec::new();
    {
        let mut by_project: Vec<Vec<usize>> = Vec::new();
        for (n, vm) in vms.iter().enumerate() {
            if by_project.len() <= vm.project {
                by_project.resize(vm.project + 1, Vec::new());
            }
            by_project[vm.project].push(n);
        }
        // Ordered by peer offset first, so the pings in flight at once come from many VMs
        // rather than one VM pinging its peers at the same time: a VM's probe socket keeps
        // the table of its unanswered requests at its largest size for the rest of the run.
        // The external pings (through each project's router and SNAT to one host) are spread
        // over the rounds too: all at once they would load the gateway chassis alone.
        let widest = by_project.iter().map(Vec::len).max().unwrap_or(0);
        let rounds = FULL_MESH_MAX_VMS.min(widest.saturating_sub(1)).max(1);
        for k in 1..=rounds {
            for members in &by_project {
                let peers = FULL_MESH_MAX_VMS.min(members.len().saturating_sub(1));
                if k <= peers {
                    let n = members.len();
                    jobs.extend((0..n).map(|i| (members[i], Some(members[(i + k) % n]))));
                }
            }
            if external.is_some() {
                let this_round = by_project.iter().flatten().enumerate();
                jobs.extend(this_round.filter(|(n, _)| n % rounds == k - 1).map(|(_, &a)| (a, None)));
            }
        }
    }
    run.event(format!("stage pings: {} pings", jobs.len()));
    run.ext.at(&run.rec, stage, "pings", 0).await;
    let progress = Arc::new(Progress::new("pings", jobs.len()));
    let jobs = Arc::new(jobs);
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = tokio::task::JoinSet::new();
    // Probes are in-process sockets, not processes: many can be in flight at once.
    for _ in 0..PINGS_IN_FLIGHT.min(jobs.len().max(1)) {
        let (run, jobs, next, progress, vms) = (run.clone(), jobs.clone(), next.clone(), progress.clone(), vms.clone());
        workers.spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::SeqCst);
                let Some(&(a, b)) = jobs.get(n) else {
                    break;
                };
                let Some(job) = ping_job(&vms, a, b, external) else {
                    continue;
                };
                let (measurement, subject, from, to, hosts) = job;
                let start = Instant::now();
                // A chassis whose daemon died cannot be programmed for this ping: the death
                // (recorded once) is the failure.
                let dead: Vec<String> = hosts.iter().flat_map(|h| run.dead_daemons(stage, Some(h))).collect();
                if !dead.is_empty() {
                    progress.tick_skipped();
                    let why = format!("{} not running", dead.join(", "));
                    run.rec.skipped(stage, measurement, subject, start, &why);
                    continue;
                }
                let from = match from {
                    Ok(from) => from,
                    Err(why) => {
                        progress.tick_skipped();
                        run.rec.skipped(stage, measurement, subject, start, why);
                        continue;
                    }
                };
                let (class, error) = match run.hosts.ping(&from, to, run.timeout).await {
                    Ok(Some(_)) => (FailureClass::System, None),
                    Ok(None) => (
                        FailureClass::System,
                        Some(format!("no reply within {}s", run.timeout.as_secs())),
                    ),
                    Err(e) => (class_of(&e), Some(format!("{e:#}"))),
                };
                progress.tick(error.is_none());
                run.rec
                    .record_as(stage, measurement, subject, start, Instant::now(), class, error);
            }
        });
    }
    while workers.join_next().await.is_some() {}
    if let Ok(vms) = Arc::try_unwrap(vms) {
        built.lock().await.vms = vms;
    }
    progress.finish();
    run.end_stage(stage, "pings").await;
    Ok(())
}

/// Deletes what was built, in Neutron's order; used as a measured stage (`global.cleanup`).
/// One ping of the pings stage: (measurement, subject, the VM to ping from or why the ping
/// is skipped because a VM at either end never came up, the destination, the chassis of both
/// ends). `peer` is the VM pinged, `None` for the external host.
type PingJob = (
    &'static str,
    String,
    Result<Plugged, &'static str>,
    Ipv4Addr,
    Vec<String>,
);

fn ping_job(vms: &[Vm], from: usize, peer: Option<usize>, external: Option<Ipv4Addr>) -> Option<PingJob> {
    let a = vms.get(from)?;
    let source = a.pingable(false);
    Some(match peer {
        Some(peer) => {
            let b = vms.get(peer)?;
            let source = match (source, b.pingable(true)) {
                (Ok(f), Ok(_)) => Ok(f),
                (Err(why), _) | (Ok(_), Err(why)) => Err(why),
            };
            (
                "ping_mesh",
                format!("{} -> {}", a.subject, b.subject),
                source,
                b.port.ip,
                vec![a.port.host.clone(), b.port.host.clone()],
            )
        }
        None => {
            let ext = external?;
            (
                "ping_external",
                format!("{} -> {ext}", a.subject),
                source,
                ext,
                vec![a.port.host.clone()],
            )
        }
    })
}

async fn cleanup<C: Cms, H: Hypervisors>(
    run: &Arc<Run<C, H>>,
    built: &Arc<tokio::sync::Mutex<Built>>,
) -> anyhow::Result<()> {
    let stage = run.rec.begin_stage("cleanup");
    run.event("stage cleanup");
    run.ext.at(&run.rec, stage, "cleanup", 0).await;
    let mut b = built.lock().await;
    let rec = &run.rec;
    let progress = Progress::new("cleanup", b.vms.len() + b.projects.len());
    for vm in std::mem::take(&mut b.vms) {
        run.limiter.acquire().await;
        let r = rec
            .timed(stage, "delete_port", vm.subject.clone(), async {
                if let Some(p) = &vm.plugged {
                    run.hosts.unplug(p).await?;
                }
                run.cms.delete_vm_port(&vm.port).await
            })
            .await;
        progress.tick(r.is_ok());
    }
    for p in std::mem::take(&mut b.projects) {
        let r = async {
            rec.timed(
                stage,
                "remove_router_interface",
                p.name.clone(),
                run.cms.remove_router_interface(&p.router, &p.subnet),
            )
            .await?;
            rec.timed(
                stage,
                "unset_router_gateway",
                p.name.clone(),
                run.cms.unset_router_gateway(&p.router),
            )
            .await?;
            rec.timed(stage, "delete_router", p.name.clone(), run.cms.delete_router(&p.router))
                .await?;
            rec.timed(
                stage,
                "delete_network",
                p.name.clone(),
                run.cms.delete_network(&p.network),
            )
            .await
        }
        .await;
        progress.tick(r.is_ok());
    }
    if let Some(ext) = b.external.take() {
        let _ = rec
            .timed(stage, "delete_network", "ext-net", run.cms.delete_network(&ext))
            .await;
    }
    progress.finish();
    drop(b);
    run.end_stage(stage, "cleanup").await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pings_of_a_vm_that_never_came_up_are_skipped_with_the_reason() {
        let vm = |plugged: bool, up: bool| Vm {
            project: 0,
            subject: "vm".into(),
            port: VmPort {
                id: "p".into(),
                lsp_name: "p".into(),
                mac: "fa:16:3e:00:00:01".into(),
                ip_cidr: "10.0.0.5/24".into(),
                ip: Ipv4Addr::new(10, 0, 0, 5),
                gateway: None,
                mtu: 1442,
                host: "compute-1".into(),
            },
            plugged: plugged.then(|| Plugged::Emulated {
                chassis: "compute-1".into(),
                lsp: "p".into(),
            }),
            up,
        };
        assert!(vm(true, true).pingable(false).is_ok());
        assert_eq!(vm(false, false).pingable(false).unwrap_err(), "bind_port failed");
        assert_eq!(
            vm(false, false).pingable(true).unwrap_err(),
            "the peer's bind_port failed"
        );
        assert_eq!(vm(true, false).pingable(false).unwrap_err(), "port_up failed");
        assert_eq!(vm(true, false).pingable(true).unwrap_err(), "the peer's port_up failed");
    }

    #[test]
    fn base_openstack_gets_one_slash24_per_project() {
        let s = Scenario::from_yaml(
            "cluster:\n  n_workers: 3\nbase_openstack:\n  n_projects: 3\n  n_vms_per_project: 4\n  n_chassis_per_gw_lrp: 2\n",
            "t",
            &[],
        )
        .unwrap();
        let t = topology(&s);
        assert_eq!(t.projects.len(), 3);
        assert_eq!(t.projects[2].cidr.to_string(), "16.0.2.0/24");
        assert_eq!(t.projects[0].vms, 4);
        assert_eq!(t.gateways_per_router, 2);
    }

    #[test]
    fn openstack_base_is_one_project_with_every_vm() {
        let s = Scenario::from_yaml(
            "openstack_base:\n  n_hypervisors: 3\n  n_vms_per_hypervisor: 2\n  n_network_nodes: 2\n",
            "t",
            &[],
        )
        .unwrap();
        let t = topology(&s);
        assert_eq!(t.projects.len(), 1);
        assert_eq!(t.projects[0].vms, 6);
        assert_eq!(t.projects[0].cidr.to_string(), "16.0.0.0/16");
        assert_eq!(t.gateways_per_router, 2);
    }
}
