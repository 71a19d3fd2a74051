//! `ovn-heater openstack walkthrough|replay`: drive the Neutron mimic (`ovn-openstack`) through
//! a steps file written in the openstack CLI's own vocabulary, plus the chassis-side steps
//! (register a chassis, claim a port), dumping the NB after the steps that ask for it.
//!
//! The walkthrough is the shipped steps file `crates/ovn-openstack/steps/walkthrough.yml`: the
//! base scenario of `neutron-reference`, whose dumps compare equal (normalized) to the real
//! Neutron 21.0.0 ones. See docs/openstack.md for the format.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use ovn_openstack::sb_agent::{self, ChassisSpec};
use ovn_openstack::{
    Config, FixedIpSpec, GatewayLayout, GatewaySpec, NetworkSpec, Neutron, PortSpec, PortUpdate, RuleSpec,
    SubnetGateway, SubnetSpec,
};
use ovsdb::{Client, ClientOptions, Condition, Mutation, Row, Transaction, Value};
use serde::Deserialize;

use crate::error::Failure;

/// The walkthrough steps, shipped with the mimic.
pub const WALKTHROUGH: &str = include_str!("../../../ovn-openstack/steps/walkthrough.yml");

/// Drive the Neutron mimic: the reference walkthrough, or any steps file.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand, Debug)]
enum Command {
    /// Run the reference walkthrough (neutron-reference steps 00..10) on a fresh NB/SB/northd,
    /// writing one NB dump per step (00-initial.json ... 10-floating-ip-associate.json).
    Walkthrough(Target),
    /// Run a steps file (see docs/openstack.md), dumping the NB where a step says `dump:`.
    Replay {
        /// The steps file (YAML).
        steps: PathBuf,
        #[command(flatten)]
        target: Target,
    },
}

#[derive(clap::Args, Debug)]
struct Target {
    /// Northbound DB remote, e.g. unix:/run/ovn/ovnnb_db.sock.
    #[arg(long)]
    nb: String,
    /// Southbound DB remote (chassis for gateway scheduling; chassis-side steps).
    #[arg(long)]
    sb: String,
    /// Where the dumps go (created if missing).
    #[arg(long)]
    dump_dir: PathBuf,
    /// Router gateway layout: `gateway-chassis` (Neutron 21.0.0) or `ha-chassis-group` (master).
    #[arg(long, default_value = "gateway-chassis")]
    gateway_layout: String,
    /// Seed of the mimic's PRNG (ids, MACs, IP picks).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[command(flatten)]
    tls: crate::tls::TlsArgs,
}

#[allow(clippy::print_stdout)]
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (text, source, target) = match args.command {
        Command::Walkthrough(t) => (WALKTHROUGH.to_owned(), "walkthrough.yml".to_owned(), t),
        Command::Replay { steps, target } => {
            let text = std::fs::read_to_string(&steps)
                .map_err(|e| Failure::bad_input(format!("cannot read steps file {}: {e}", steps.display())))?;
            (text, steps.display().to_string(), target)
        }
    };
    let file: StepsFile = serde_yaml::from_str(&text).with_context(|| format!("steps file {source} is not valid"))?;
    file.check()
        .map_err(|e| Failure::bad_input(format!("steps file {source}: {e}")))?;
    if let Some(d) = &file.description {
        tracing::info!("steps file {source}: {d}");
    }
    let layout = match target.gateway_layout.as_str() {
        "gateway-chassis" => GatewayLayout::GatewayChassis,
        "ha-chassis-group" => GatewayLayout::HaChassisGroup,
        other => {
            return Err(Failure::bad_input(format!(
                "--gateway-layout {other:?}: use gateway-chassis (Neutron 21.0.0) or ha-chassis-group (master)"
            ))
            .into())
        }
    };
    std::fs::create_dir_all(&target.dump_dir)
        .map_err(|e| Failure::bad_input(format!("cannot create --dump-dir {}: {e}", target.dump_dir.display())))?;
    let nb = connect(&target.nb, "OVN_Northbound", &target.tls).await?;
    let sb = connect(&target.sb, "OVN_Southbound", &target.tls).await?;
    let config = Config {
        gateway_layout: layout,
        seed: target.seed,
        ..Config::default()
    };
    let mut replay = Replay::new(nb.clone(), sb.clone(), config, target.dump_dir.clone());
    replay.prepare().await?;
    for (i, step) in file.steps.iter().enumerate() {
        let started = Instant::now();
        let what = match replay.step(step).await {
            Ok(what) => what,
            Err(e) => {
                let refused = e.chain().any(|c| {
                    c.downcast_ref::<ovn_openstack::Error>()
                        .is_some_and(|x| x.is_bad_input())
                });
                if refused {
                    // Neutron would have answered 4xx: the input is at fault, nothing was written.
                    return Err(Failure::bad_input(format!("step {} of {source} was refused: {e:#}", i + 1)).into());
                }
                return Err(e.context(format!("step {} of {source} failed", i + 1)));
            }
        };
        println!(
            "{:>3}  {:<60} {:>8.1} ms{}",
            i + 1,
            what.summary,
            started.elapsed().as_secs_f64() * 1e3,
            what.dumped
        );
    }
    nb.close().await;
    sb.close().await;
    Ok(ExitCode::SUCCESS)
}

async fn connect(remote: &str, database: &str, tls: &crate::tls::TlsArgs) -> anyhow::Result<Client> {
    let options = tls.apply(ClientOptions::new(remote)?.database(database))?;
    Client::connect(options)
        .await
        .with_context(|| format!("cannot connect to the {database} server at {remote}"))
}

// ------------------------------------------------------------------ steps file --

/// A steps file: `steps:` is a list of steps, each one action (or none) and an optional dump.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepsFile {
    #[serde(default)]
    pub description: Option<String>,
    pub steps: Vec<Step>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// An openstack CLI command without the `openstack` word, e.g. `network create net1`.
    #[serde(default)]
    pub openstack: Option<String>,
    /// A chassis-side (ovn-controller) step, e.g. `claim-port ${vmport} hv1 --up`.
    #[serde(default)]
    pub ovn: Option<String>,
    /// The project the request is made in (default: `fake_project_id`).
    #[serde(default)]
    pub project: Option<String>,
    /// Save the id of the created object under this variable (`${name}` later).
    #[serde(default)]
    pub save: Option<String>,
    /// Dump the NB after this step to `<dump-dir>/<dump>.json`.
    #[serde(default)]
    pub dump: Option<String>,
    /// The command text recorded in the dump (default: the step itself).
    #[serde(default)]
    pub command: Option<String>,
}

impl StepsFile {
    fn check(&self) -> Result<(), String> {
        for (i, s) in self.steps.iter().enumerate() {
            if s.openstack.is_some() && s.ovn.is_some() {
                return Err(format!(
                    "step {}: has both `openstack` and `ovn`; split it in two steps",
                    i + 1
                ));
            }
            if s.openstack.is_none() && s.ovn.is_none() && s.dump.is_none() {
                return Err(format!("step {}: needs `openstack`, `ovn` or `dump`", i + 1));
            }
            if let Some(d) = &s.dump {
                if d.is_empty() || d.contains('/') {
                    return Err(format!("step {}: dump name {d:?} must be a plain file name", i + 1));
                }
            }
        }
        Ok(())
    }
}

/// Splits a command line like a POSIX shell would for simple quoting (`'...'`, `"..."`).
pub fn split_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some(x) if x == c => break,
                        Some(x) => cur.push(x),
                        None => return Err(format!("unterminated {c} quote in {line:?}")),
                    }
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// Parsed `--flag [value]` options and positional arguments of one command.
struct Argv {
    options: Vec<(String, Option<String>)>,
    positional: Vec<String>,
}

impl Argv {
    fn parse(words: &[String], boolean: &[&str], valued: &[&str]) -> anyhow::Result<Self> {
        let mut options = Vec::new();
        let mut positional = Vec::new();
        let mut i = 0;
        while i < words.len() {
            let w = &words[i];
            if let Some(name) = w.strip_prefix("--") {
                let (name, inline) = match name.split_once('=') {
                    Some((n, v)) => (n, Some(v.to_owned())),
                    None => (name, None),
                };
                if boolean.contains(&name) {
                    options.push((name.to_owned(), None));
                } else if valued.contains(&name) {
                    let v = match inline {
                        Some(v) => v,
                        None => {
                            i += 1;
                            words.get(i).cloned().ok_or_else(|| anyhow!("--{name} needs a value"))?
                        }
                    };
                    options.push((name.to_owned(), Some(v)));
                } else {
                    let mut known: Vec<&str> = boolean.iter().chain(valued).copied().collect();
                    known.sort_unstable();
                    bail!("unknown option --{name} (known here: --{})", known.join(", --"));
                }
            } else {
                positional.push(w.clone());
            }
            i += 1;
        }
        Ok(Argv { options, positional })
    }
    fn flag(&self, name: &str) -> bool {
        self.options.iter().any(|(n, _)| n == name)
    }
    fn value(&self, name: &str) -> Option<String> {
        self.options
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.clone())
    }
    fn values(&self, name: &str) -> Vec<String> {
        self.options
            .iter()
            .filter(|(n, _)| n == name)
            .filter_map(|(_, v)| v.clone())
            .collect()
    }
    fn one(&self, what: &str) -> anyhow::Result<String> {
        match self.positional.as_slice() {
            [x] => Ok(x.clone()),
            _ => bail!("expected exactly one {what}, got {:?}", self.positional),
        }
    }
    fn two(&self, a: &str, b: &str) -> anyhow::Result<(String, String)> {
        match self.positional.as_slice() {
            [x, y] => Ok((x.clone(), y.clone())),
            _ => bail!("expected {a} and {b}, got {:?}", self.positional),
        }
    }
}

fn parse_ip(s: &str, what: &str) -> anyhow::Result<std::net::IpAddr> {
    s.parse().map_err(|_| anyhow!("{what} {s:?} is not an IP address"))
}

/// `--fixed-ip subnet=S,ip-address=IP` (either part optional).
fn parse_fixed_ip(s: &str) -> anyhow::Result<FixedIpSpec> {
    let mut spec = FixedIpSpec::default();
    for part in s.split(',') {
        match part.split_once('=') {
            Some(("subnet", v)) => spec.subnet = Some(v.to_owned()),
            Some(("ip-address", v)) => spec.ip = Some(parse_ip(v, "--fixed-ip ip-address")?),
            _ => bail!("--fixed-ip {s:?}: expected subnet=NAME,ip-address=IP"),
        }
    }
    Ok(spec)
}

// ------------------------------------------------------------------ the replay --

struct StepDone {
    summary: String,
    dumped: String,
}

struct Replay {
    neutron: Arc<Neutron>,
    nb: Client,
    sb: Client,
    dump_dir: PathBuf,
    vars: HashMap<String, String>,
    chassis: Vec<String>,
    /// The `nb_cfg` the chassis last acknowledged: a dump waits for northd's `hv_cfg` to
    /// reach it, so northd's bookkeeping of the acks is settled in every dump.
    acked_cfg: i64,
    started: bool,
}

impl Replay {
    fn new(nb: Client, sb: Client, config: Config, dump_dir: PathBuf) -> Self {
        Replay {
            neutron: Neutron::new(nb.clone(), sb.clone(), config),
            nb,
            sb,
            dump_dir,
            vars: HashMap::new(),
            chassis: Vec::new(),
            acked_cfg: 0,
            started: false,
        }
    }

    /// What `ovn-nbctl init`, `ovn-sbctl init` and `ovn-nbctl --wait=sb sync` do on a fresh
    /// central: the global rows exist and ovn-northd has caught up.
    async fn prepare(&mut self) -> anyhow::Result<()> {
        for (client, db, table) in [
            (&self.nb, "OVN_Northbound", "NB_Global"),
            (&self.sb, "OVN_Southbound", "SB_Global"),
        ] {
            let mut q = Transaction::new(db);
            q.select(table, Vec::<Condition>::new(), Some(vec!["_uuid".into()]));
            let r = client.transact(q).await?;
            if r.results
                .first()
                .and_then(|o| o.rows.as_ref())
                .is_none_or(|rows| rows.is_empty())
            {
                let mut txn = Transaction::new(db);
                txn.insert(table, Row::new());
                client.transact(txn).await?;
            }
        }
        sync_northd(&self.nb, Duration::from_secs(30)).await
    }

    fn substitute(&self, text: &str) -> anyhow::Result<String> {
        let mut out = String::new();
        let mut rest = text;
        while let Some(i) = rest.find("${") {
            out.push_str(&rest[..i]);
            let end = rest[i..]
                .find('}')
                .ok_or_else(|| anyhow!("unterminated ${{ in {text:?}"))?;
            let name = &rest[i + 2..i + end];
            let v = self
                .vars
                .get(name)
                .ok_or_else(|| anyhow!("variable ${{{name}}} is not set (an earlier step needs `save: {name}`)"))?;
            out.push_str(v);
            rest = &rest[i + end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    async fn ensure_started(&mut self) -> anyhow::Result<()> {
        if !self.started {
            self.neutron.start().await?;
            self.started = true;
        }
        Ok(())
    }

    async fn step(&mut self, step: &Step) -> anyhow::Result<StepDone> {
        if !self.chassis.is_empty() {
            let names: Vec<&str> = self.chassis.iter().map(String::as_str).collect();
            self.acked_cfg = sb_agent::heartbeat(&self.sb, &names).await?;
        }
        let mut summary = String::new();
        let mut default_command = String::new();
        if let Some(line) = &step.openstack {
            self.ensure_started().await?;
            let line = self.substitute(line)?;
            let words = split_words(&line).map_err(Failure::bad_input)?;
            let id = self.openstack(&words, step.project.as_deref()).await?;
            if let (Some(var), Some(id)) = (&step.save, id) {
                self.vars.insert(var.clone(), id);
            }
            summary = format!("openstack {line}");
            default_command = summary.clone();
        } else if let Some(line) = &step.ovn {
            let line = self.substitute(line)?;
            let words = split_words(&line).map_err(Failure::bad_input)?;
            self.ovn(&words).await?;
            summary = format!("ovn {line}");
            default_command = format!("(ovn-controller side: {line})");
        }
        let mut dumped = String::new();
        if let Some(name) = &step.dump {
            self.ensure_started().await?;
            let command = match &step.command {
                Some(c) => self.substitute(c)?,
                None => default_command,
            };
            let path = self.dump(name, &command).await?;
            dumped = format!("  -> {}", path.display());
            if summary.is_empty() {
                summary = format!("dump {name}");
            }
        }
        Ok(StepDone { summary, dumped })
    }

    async fn dump(&self, name: &str, command: &str) -> anyhow::Result<PathBuf> {
        sync_northd(&self.nb, Duration::from_secs(30)).await?;
        // northd copies the chassis' acks into hv_cfg (and stamps hv_cfg_timestamp) on its own
        // time: without this wait a loaded machine can dump before it did. Chassis that are
        // not ours could hold hv_cfg back, so this wait only warns.
        if !self.chassis.is_empty()
            && !nb_global_reaches(&self.nb, "hv_cfg", self.acked_cfg, Duration::from_secs(10)).await?
        {
            tracing::warn!(
                "NB_Global.hv_cfg did not reach the chassis' acknowledged nb_cfg={} within 10 s; dumping anyway",
                self.acked_cfg
            );
        }
        let doc = settled_dump(&self.nb, Duration::from_millis(300), Duration::from_secs(10)).await?;
        let doc = ovsdb::dump::with_keys(
            doc,
            [
                ("step", serde_json::Value::String(name.to_owned())),
                ("command", serde_json::Value::String(command.to_owned())),
            ],
        );
        let path = self.dump_dir.join(format!("{name}.json"));
        std::fs::write(&path, ovsdb::dump::to_pretty_string(&doc))
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(path)
    }

    /// One openstack CLI command; returns the id of what it created, if anything.
    async fn openstack(&mut self, w: &[String], project: Option<&str>) -> anyhow::Result<Option<String>> {
        let n = &self.neutron;
        let words: Vec<&str> = w.iter().map(String::as_str).collect();
        let project = project.map(str::to_owned);
        let report = match words.as_slice() {
            ["network", "create", rest @ ..] => {
                let a = Argv::parse(
                    &to_owned(rest),
                    &["external", "internal"],
                    &[
                        "provider-network-type",
                        "provider-physical-network",
                        "provider-segment",
                        "project",
                    ],
                )?;
                let segmentation_id = match a.value("provider-segment") {
                    Some(s) => Some(
                        s.parse()
                            .map_err(|_| anyhow!("--provider-segment {s:?} is not a VLAN id"))?,
                    ),
                    None => None,
                };
                n.network_create(NetworkSpec {
                    name: a.one("network name")?,
                    project: a.value("project").or(project),
                    external: a.flag("external"),
                    network_type: a.value("provider-network-type"),
                    physical_network: a.value("provider-physical-network"),
                    segmentation_id,
                })
                .await?
            }
            ["network", "delete", rest @ ..] => {
                n.network_delete(&Argv::parse(&to_owned(rest), &[], &[])?.one("network")?)
                    .await?
            }
            ["subnet", "create", rest @ ..] => {
                let a = Argv::parse(
                    &to_owned(rest),
                    &["dhcp", "no-dhcp"],
                    &[
                        "network",
                        "subnet-range",
                        "gateway",
                        "ip-version",
                        "ipv6-address-mode",
                        "ipv6-ra-mode",
                        "dns-nameserver",
                        "project",
                        "metadata-ip",
                    ],
                )?;
                let network = a
                    .value("network")
                    .ok_or_else(|| anyhow!("subnet create needs --network"))?;
                let cidr = a
                    .value("subnet-range")
                    .ok_or_else(|| anyhow!("subnet create needs --subnet-range"))?;
                let mut spec = SubnetSpec::new(&a.one("subnet name")?, &network, &cidr);
                spec.project = a.value("project").or(project);
                spec.enable_dhcp = !a.flag("no-dhcp");
                spec.gateway = match a.value("gateway").as_deref() {
                    None | Some("auto") => SubnetGateway::Auto,
                    Some("none") => SubnetGateway::None,
                    Some(ip) => SubnetGateway::Ip(parse_ip(ip, "--gateway")?),
                };
                spec.ipv6_address_mode = a.value("ipv6-address-mode");
                spec.dns_nameservers = a.values("dns-nameserver");
                spec.metadata_ip = a
                    .value("metadata-ip")
                    .map(|s| parse_ip(&s, "--metadata-ip"))
                    .transpose()?;
                n.subnet_create(spec).await?
            }
            ["subnet", "delete", rest @ ..] => {
                n.subnet_delete(&Argv::parse(&to_owned(rest), &[], &[])?.one("subnet")?)
                    .await?
            }
            ["router", "create", rest @ ..] => {
                let a = Argv::parse(&to_owned(rest), &[], &["project"])?;
                let p = a.value("project").or(project);
                n.router_create(&a.one("router name")?, p.as_deref()).await?
            }
            ["router", "delete", rest @ ..] => {
                n.router_delete(&Argv::parse(&to_owned(rest), &[], &[])?.one("router")?)
                    .await?
            }
            ["router", "set", rest @ ..] => {
                let a = Argv::parse(
                    &to_owned(rest),
                    &[],
                    &["external-gateway", "fixed-ip", "max-gateway-chassis"],
                )?;
                let network = a
                    .value("external-gateway")
                    .ok_or_else(|| anyhow!("router set: only --external-gateway is supported"))?;
                let fixed_ip = a
                    .value("fixed-ip")
                    .map(|f| parse_fixed_ip(&f))
                    .transpose()?
                    .and_then(|f| f.ip);
                let max_chassis = match a.value("max-gateway-chassis") {
                    Some(s) => Some(
                        s.parse()
                            .map_err(|_| anyhow!("--max-gateway-chassis {s:?} is not a number"))?,
                    ),
                    None => None,
                };
                let spec = GatewaySpec {
                    network,
                    fixed_ip,
                    max_chassis,
                };
                n.router_set_gateway(&a.one("router")?, spec).await?
            }
            ["router", "unset", rest @ ..] => {
                let a = Argv::parse(&to_owned(rest), &["external-gateway"], &[])?;
                if !a.flag("external-gateway") {
                    bail!("router unset: only --external-gateway is supported");
                }
                n.router_unset_gateway(&a.one("router")?).await?
            }
            ["router", "add", "subnet", router, subnet] => n.router_add_subnet(router, subnet).await?,
            ["router", "remove", "subnet", router, subnet] => n.router_remove_subnet(router, subnet).await?,
            ["port", "create", rest @ ..] => {
                let a = Argv::parse(
                    &to_owned(rest),
                    &["no-security-group", "disable-port-security", "enable-port-security"],
                    &[
                        "network",
                        "device",
                        "device-owner",
                        "host",
                        "fixed-ip",
                        "security-group",
                        "project",
                        "dns-name",
                    ],
                )?;
                let network = a
                    .value("network")
                    .ok_or_else(|| anyhow!("port create needs --network"))?;
                let fixed_ips = a
                    .values("fixed-ip")
                    .iter()
                    .map(|f| parse_fixed_ip(f))
                    .collect::<anyhow::Result<_>>()?;
                let security_groups = if a.flag("no-security-group") {
                    Some(vec![])
                } else if a.values("security-group").is_empty() {
                    None
                } else {
                    Some(a.values("security-group"))
                };
                n.port_create(PortSpec {
                    network,
                    name: a.one("port name")?,
                    project: a.value("project").or(project),
                    device_id: a.value("device").unwrap_or_default(),
                    device_owner: a.value("device-owner").unwrap_or_default(),
                    host: a.value("host").unwrap_or_default(),
                    fixed_ips,
                    security_groups,
                    port_security: !a.flag("disable-port-security"),
                })
                .await?
            }
            ["port", "set", rest @ ..] => {
                let a = Argv::parse(
                    &to_owned(rest),
                    &[],
                    &["device", "device-owner", "host", "name", "dns-name"],
                )?;
                let update = PortUpdate {
                    device_id: a.value("device"),
                    device_owner: a.value("device-owner"),
                    host: a.value("host"),
                    name: a.value("name"),
                };
                n.port_update(&a.one("port")?, update).await?
            }
            ["port", "delete", rest @ ..] => {
                n.port_delete(&Argv::parse(&to_owned(rest), &[], &[])?.one("port")?)
                    .await?
            }
            ["server", "create", rest @ ..] => {
                let a = Argv::parse(
                    &to_owned(rest),
                    &[],
                    &["network", "host", "fixed-ip", "flavor", "image"],
                )?;
                let name = a.one("server name")?;
                let network = a
                    .value("network")
                    .ok_or_else(|| anyhow!("server create needs --network"))?;
                let host = a
                    .value("host")
                    .ok_or_else(|| anyhow!("server create needs --host (the compute chassis)"))?;
                let ip = a.value("fixed-ip").map(|s| parse_ip(&s, "--fixed-ip")).transpose()?;
                let created = n.server_create(&network, &host, ip).await?;
                let port = created.id.map(|i| i.to_string()).unwrap_or_default();
                let chassis = self.chassis_for_host(&host).await?;
                sb_agent::claim_port(&self.sb, &port, &chassis, true, Duration::from_secs(30)).await?;
                n.wait_port_up(&port, Duration::from_secs(30)).await?;
                self.vars.insert(name, port.clone());
                return Ok(Some(port));
            }
            ["server", "delete", name] => {
                let port = self
                    .vars
                    .get(*name)
                    .cloned()
                    .ok_or_else(|| anyhow!("unknown server {name:?}"))?;
                n.port_delete(&port).await?
            }
            ["floating", "ip", "create", rest @ ..] => {
                let a = Argv::parse(&to_owned(rest), &[], &["floating-ip-address", "port", "project"])?;
                let ip = a
                    .value("floating-ip-address")
                    .map(|s| parse_ip(&s, "--floating-ip-address"))
                    .transpose()?;
                let created = n.floating_ip_create(&a.one("external network")?, ip).await?;
                if let (Some(port), Some(id)) = (a.value("port"), created.id) {
                    n.floating_ip_set_port(&id.to_string(), &port, None).await?;
                }
                created
            }
            ["floating", "ip", "set", rest @ ..] => {
                let a = Argv::parse(&to_owned(rest), &[], &["port", "fixed-ip-address"])?;
                let port = a.value("port").ok_or_else(|| anyhow!("floating ip set needs --port"))?;
                let ip = a
                    .value("fixed-ip-address")
                    .map(|s| parse_ip(&s, "--fixed-ip-address"))
                    .transpose()?;
                n.floating_ip_set_port(&a.one("floating IP")?, &port, ip).await?
            }
            ["floating", "ip", "unset", rest @ ..] => {
                let a = Argv::parse(&to_owned(rest), &["port"], &[])?;
                n.floating_ip_unset_port(&a.one("floating IP")?).await?
            }
            ["floating", "ip", "delete", fip] => n.floating_ip_delete(fip).await?,
            ["security", "group", "create", rest @ ..] => {
                let a = Argv::parse(&to_owned(rest), &["stateless", "stateful"], &["project", "description"])?;
                let p = a.value("project").or(project);
                n.security_group_create(&a.one("group name")?, p.as_deref(), !a.flag("stateless"))
                    .await?
            }
            ["security", "group", "delete", sg] => {
                // Names are per project (every project has a `default`): resolve in the step's.
                let project = project.unwrap_or_else(|| "fake_project_id".to_owned());
                let id = n.with_state(|st| {
                    st.security_groups
                        .values()
                        .find(|g| g.name == *sg && g.project == project)
                        .map(|g| g.id.to_string())
                });
                n.security_group_delete(id.as_deref().unwrap_or(sg)).await?
            }
            ["security", "group", "rule", "create", rest @ ..] => {
                let a = Argv::parse(
                    &to_owned(rest),
                    &["ingress", "egress"],
                    &["ethertype", "protocol", "dst-port", "remote-ip", "remote-group"],
                )?;
                let ethertype = match a.value("ethertype").as_deref() {
                    None | Some("IPv4") => 4,
                    Some("IPv6") => 6,
                    Some(o) => bail!("--ethertype {o:?}: use IPv4 or IPv6"),
                };
                let (min, max) = match a.value("dst-port") {
                    None => (None, None),
                    Some(p) => {
                        let (a1, b1) = p.split_once(':').unwrap_or((&p, &p));
                        let parse = |x: &str| {
                            x.parse::<u16>()
                                .map_err(|_| anyhow!("--dst-port {p:?} is not PORT[:PORT]"))
                        };
                        (Some(parse(a1)?), Some(parse(b1)?))
                    }
                };
                let protocol = a.value("protocol").filter(|p| p != "any");
                n.security_group_rule_create(RuleSpec {
                    security_group: a.one("security group")?,
                    direction: if a.flag("egress") {
                        ovn_openstack::model::Direction::Egress
                    } else {
                        ovn_openstack::model::Direction::Ingress
                    },
                    ethertype,
                    protocol,
                    port_range_min: min,
                    port_range_max: max,
                    remote_ip_prefix: a.value("remote-ip"),
                    remote_group: a.value("remote-group"),
                })
                .await?
            }
            ["security", "group", "rule", "delete", rule] => n.security_group_rule_delete(rule).await?,
            _ => {
                return Err(Failure::bad_input(format!(
                    "unsupported openstack command {:?} (see docs/openstack.md for the supported ones)",
                    w.join(" ")
                ))
                .into())
            }
        };
        Ok(report.id.map(|i| i.to_string()))
    }

    async fn chassis_for_host(&self, host: &str) -> anyhow::Result<String> {
        let all = self.neutron.chassis().await?;
        all.iter()
            .find(|c| c.hostname == host || c.name == host)
            .map(|c| c.name.clone())
            .ok_or_else(|| anyhow!("no SB chassis has hostname {host:?} (register it first)"))
    }

    /// One chassis-side step.
    async fn ovn(&mut self, w: &[String]) -> anyhow::Result<()> {
        let words: Vec<&str> = w.iter().map(String::as_str).collect();
        match words.as_slice() {
            ["register-chassis", rest @ ..] => {
                let a = Argv::parse(
                    &to_owned(rest),
                    &["gateway"],
                    &["encap-ip", "hostname", "bridge-mappings"],
                )?;
                let name = a.one("chassis name")?;
                let ip = a
                    .value("encap-ip")
                    .ok_or_else(|| anyhow!("register-chassis needs --encap-ip"))?;
                let mut spec = ChassisSpec::compute(&name, &ip);
                if let Some(h) = a.value("hostname") {
                    spec.hostname = h;
                }
                if a.flag("gateway") {
                    spec.keys
                        .insert("ovn-cms-options".into(), "enable-chassis-as-gw".into());
                }
                if let Some(m) = a.value("bridge-mappings") {
                    spec.keys.insert("ovn-bridge-mappings".into(), m);
                }
                sb_agent::register_chassis(&self.sb, &spec).await?;
                self.chassis.push(name);
            }
            ["heartbeat"] => {
                let names: Vec<&str> = self.chassis.iter().map(String::as_str).collect();
                self.acked_cfg = sb_agent::heartbeat(&self.sb, &names).await?;
            }
            ["sync"] => sync_northd(&self.nb, Duration::from_secs(30)).await?,
            ["claim-gateway", router] => {
                let (port, chassis) = self.neutron.with_state(|st| -> ovn_openstack::Result<_> {
                    let r = st.router(router)?;
                    let g = r.gateway.as_ref().ok_or_else(|| ovn_openstack::Error::Invalid {
                        what: "claim-gateway".into(),
                        why: format!("router {router} has no gateway"),
                    })?;
                    Ok((g.port, g.chassis.first().cloned().unwrap_or_default()))
                })?;
                sb_agent::claim_port(
                    &self.sb,
                    &format!("cr-lrp-{port}"),
                    &chassis,
                    false,
                    Duration::from_secs(30),
                )
                .await?;
                let host = self
                    .neutron
                    .chassis()
                    .await?
                    .into_iter()
                    .find(|c| c.name == chassis)
                    .map(|c| c.hostname)
                    .unwrap_or(chassis);
                self.neutron.router_gateway_bound(router, &host).await?;
            }
            ["claim-port", rest @ ..] => {
                let a = Argv::parse(&to_owned(rest), &["up"], &[])?;
                let (port, chassis) = a.two("port", "chassis")?;
                // A Neutron port by name or id is claimed under its LSP name (its id).
                let port = self
                    .neutron
                    .with_state(|st| st.port(&port).map(|p| p.id.to_string()))
                    .unwrap_or(port);
                sb_agent::claim_port(&self.sb, &port, &chassis, a.flag("up"), Duration::from_secs(30)).await?;
                if a.flag("up") {
                    self.neutron.wait_port_up(&port, Duration::from_secs(30)).await?;
                }
            }
            _ => {
                return Err(Failure::bad_input(format!(
                    "unsupported ovn step {:?} (register-chassis, heartbeat, sync, claim-gateway, claim-port)",
                    w.join(" ")
                ))
                .into())
            }
        }
        Ok(())
    }
}

fn to_owned(words: &[&str]) -> Vec<String> {
    words.iter().map(|s| (*s).to_owned()).collect()
}

/// Bumps `NB_Global.nb_cfg` and waits until ovn-northd reports it in `sb_cfg`: everything
/// written before has been processed (`ovn-nbctl --wait=sb sync`).
pub async fn sync_northd(nb: &Client, timeout: Duration) -> anyhow::Result<()> {
    let mut txn = Transaction::new("OVN_Northbound");
    txn.mutate(
        "NB_Global",
        vec![],
        vec![Mutation::new("nb_cfg", ovsdb::Mutator::Add, 1i64)],
    );
    txn.select("NB_Global", vec![], Some(vec!["nb_cfg".into()]));
    let r = nb.transact(txn).await?;
    let target = r
        .results
        .get(1)
        .and_then(|o| o.rows.as_ref())
        .and_then(|rows| rows.first())
        .and_then(|row| row.get("nb_cfg"))
        .and_then(Value::as_i64)
        .ok_or_else(|| anyhow!("NB_Global has no row (is this an OVN Northbound DB?)"))?;
    if nb_global_reaches(nb, "sb_cfg", target, timeout).await? {
        return Ok(());
    }
    Err(Failure::environment(format!(
        "ovn-northd did not process NB_Global.nb_cfg={target} within {timeout:?}; is ovn-northd running against this NB and SB?"
    ))
    .into())
}

/// Waits until the integer `column` of the NB_Global row is at least `target`: true once it
/// is, false if `timeout` passes first.
async fn nb_global_reaches(nb: &Client, column: &str, target: i64, timeout: Duration) -> anyhow::Result<bool> {
    let deadline = Instant::now() + timeout;
    loop {
        let mut q = Transaction::new("OVN_Northbound");
        q.select("NB_Global", vec![], Some(vec![column.into()]));
        let r = nb.transact(q).await?;
        let value = r
            .results
            .first()
            .and_then(|o| o.rows.as_ref())
            .and_then(|rows| rows.first())
            .and_then(|row| row.get(column))
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if value >= target {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Dumps until two dumps `quiet` apart are equal (asynchronous writers such as ovn-northd's
/// `up` updates have finished), at most `timeout`.
async fn settled_dump(nb: &Client, quiet: Duration, timeout: Duration) -> anyhow::Result<serde_json::Value> {
    let deadline = Instant::now() + timeout;
    let mut last = ovsdb::dump::dump(nb, "OVN_Northbound").await?;
    loop {
        tokio::time::sleep(quiet).await;
        let next = ovsdb::dump::dump(nb, "OVN_Northbound").await?;
        if fingerprint(&next) == fingerprint(&last) || Instant::now() >= deadline {
            return Ok(next);
        }
        last = next;
    }
}

fn fingerprint(doc: &serde_json::Value) -> String {
    let mut doc = doc.clone();
    if let Some(tables) = doc.get_mut("tables").and_then(|t| t.as_object_mut()) {
        for rows in tables.values_mut() {
            if let Some(rows) = rows.as_array_mut() {
                for row in rows {
                    if let Some(o) = row.as_object_mut() {
                        o.remove("_version");
                    }
                }
            }
        }
    }
    ovn_openstack::snapshot::strip_for_snapshot(&mut doc);
    doc.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_split_like_a_shell() {
        assert_eq!(
            split_words("port create --network net1 --device x ''").unwrap(),
            vec!["port", "create", "--network", "net1", "--device", "x", ""]
        );
        assert!(split_words("a 'b").is_err());
    }

    #[test]
    fn walkthrough_parses() {
        let f: StepsFile = serde_yaml::from_str(WALKTHROUGH).unwrap();
        f.check().unwrap();
        assert_eq!(f.steps.iter().filter(|s| s.dump.is_some()).count(), 14);
    }
}
