//! Replaying a steps file in the openstack CLI's vocabulary against the mimic: the steps format
//! ([`StepsFile`]), the vocabulary ([`vocabulary`]: CLI line → action), and the executor
//! ([`Replay`]) that runs each step, emulates ovn-controller's SB writes for `ovn:` steps and
//! takes settled NB dumps. `ovn-heater openstack replay|walkthrough` and the `openstack_cli`
//! workload drive it.
//!
//! Must not know: clap, YAML parsing, files, printing (dumps are returned as JSON documents).

pub mod vocabulary;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ovsdb::{Client, Condition, Mutation, Row, Transaction, Value};
use serde::Deserialize;

use crate::sb_agent::{self, ChassisSpec};
use crate::{Config, Error, Neutron};
use vocabulary::{parse_openstack, parse_ovn, split_words, ObjectKind, OpenstackCommand, OvnCommand, VocabularyError};

/// The walkthrough steps, shipped with the mimic.
pub const WALKTHROUGH: &str = include_str!("../../steps/walkthrough.yml");

/// A steps file: `steps:` is a list of steps, each one action (or none) and an optional dump.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepsFile {
    #[serde(default)]
    pub description: Option<String>,
    pub steps: Vec<Step>,
}

/// What a step must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Expect {
    /// Neutron must refuse the action (4xx); nothing is written and the replay goes on.
    Refused,
}

#[derive(Debug, Clone, Default, Deserialize)]
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
    /// Save the id of the created (or shown) object under this variable (`${name}` later).
    #[serde(default)]
    pub save: Option<String>,
    /// Dump the NB after this step to `<dump-dir>/<dump>.json`.
    #[serde(default)]
    pub dump: Option<String>,
    /// The command text recorded in the dump (default: the step itself).
    #[serde(default)]
    pub command: Option<String>,
    /// `refused`: the action must be refused as Neutron refuses it.
    #[serde(default)]
    pub expect: Option<Expect>,
}

/// Why a replay stopped. [`ReplayError::is_bad_input`] and [`ReplayError::is_check_failure`]
/// choose the exit code.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// A step that is not well formed, or uses vocabulary the mimic does not accept.
    #[error("step {step}: {why}")]
    BadStep { step: usize, why: String },
    /// The mimic refused the action, as Neutron would (4xx); nothing was written.
    #[error("step {step} (`{line}`) was refused: {source}")]
    Refused {
        step: usize,
        line: String,
        #[source]
        source: Box<Error>,
    },
    /// A step marked `expect: refused` succeeded.
    #[error("step {step} (`{line}`) was expected to be refused (expect: refused) but succeeded")]
    NotRefused { step: usize, line: String },
    /// The NB/SB servers or ovn-northd failed.
    #[error("step {step} failed: {source}")]
    Failed {
        step: usize,
        #[source]
        source: Box<Error>,
    },
}

impl ReplayError {
    /// The steps file is at fault (exit code 2).
    pub fn is_bad_input(&self) -> bool {
        matches!(self, ReplayError::BadStep { .. } | ReplayError::Refused { .. })
    }
    /// The replay ran but a step did not behave as the file says (exit code 1).
    pub fn is_check_failure(&self) -> bool {
        matches!(self, ReplayError::NotRefused { .. })
    }
}

/// Inside one step: the step number is attached by [`Replay::step`].
#[derive(Debug)]
enum StepError {
    Bad(String),
    Mimic(Error),
}

impl From<Error> for StepError {
    fn from(e: Error) -> Self {
        StepError::Mimic(e)
    }
}
impl From<VocabularyError> for StepError {
    fn from(e: VocabularyError) -> Self {
        StepError::Bad(e.to_string())
    }
}
impl From<ovsdb::Error> for StepError {
    fn from(e: ovsdb::Error) -> Self {
        StepError::Mimic(Error::Ovsdb(e))
    }
}

/// Replaces `${name}` with `lookup(name)`.
pub fn substitute(text: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let end = rest[i..]
            .find('}')
            .ok_or_else(|| format!("unterminated ${{ in {text:?}"))?;
        let name = &rest[i + 2..i + end];
        let v = lookup(name)
            .ok_or_else(|| format!("variable ${{{name}}} is not set (an earlier step needs `save: {name}`)"))?;
        out.push_str(&v);
        rest = &rest[i + end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

impl StepsFile {
    /// Checks every step before anything is sent: shape, variables set before use, and each
    /// command line against the vocabulary. Errors carry the 1-based step number.
    pub fn check(&self) -> Result<(), ReplayError> {
        self.check_with(&[])
    }

    /// As [`StepsFile::check`], with variables the caller sets (e.g. the workload's `i`).
    pub fn check_with(&self, preset: &[&str]) -> Result<(), ReplayError> {
        let mut known: std::collections::HashSet<String> = preset.iter().map(|s| (*s).to_owned()).collect();
        for (i, s) in self.steps.iter().enumerate() {
            let bad = |why: String| ReplayError::BadStep { step: i + 1, why };
            if s.openstack.is_some() && s.ovn.is_some() {
                return Err(bad("has both `openstack` and `ovn`; split it in two steps".into()));
            }
            if s.openstack.is_none() && s.ovn.is_none() && s.dump.is_none() {
                return Err(bad("needs `openstack`, `ovn` or `dump`".into()));
            }
            if let Some(d) = &s.dump {
                if d.is_empty() || d.contains('/') {
                    return Err(bad(format!("dump name {d:?} must be a plain file name")));
                }
            }
            if s.expect.is_some() && s.openstack.is_none() {
                return Err(bad("`expect: refused` goes with an `openstack` step".into()));
            }
            if s.expect.is_some() && s.save.is_some() {
                return Err(bad("a step expected to be refused creates nothing to `save`".into()));
            }
            // Variables stand for ids: a placeholder id is as good as the real one for parsing.
            let set_before = known.clone();
            let placeholder = |name: &str| set_before.contains(name).then(|| format!("var-{name}"));
            if let Some(line) = &s.openstack {
                let line = substitute(line, placeholder).map_err(bad)?;
                let words = split_words(&line).map_err(bad)?;
                let cmd = parse_openstack(&words, s.project.as_deref()).map_err(|e| bad(e.to_string()))?;
                if let OpenstackCommand::ServerCreate { name, host, .. } = &cmd {
                    if host.is_empty() {
                        return Err(bad("server create needs --host (the compute chassis)".into()));
                    }
                    known.insert(name.clone());
                }
                if cmd.is_lookup() && s.save.is_none() {
                    return Err(bad("a `show` step needs `save: VAR` (it writes nothing)".into()));
                }
            } else if let Some(line) = &s.ovn {
                let line = substitute(line, placeholder).map_err(bad)?;
                let words = split_words(&line).map_err(bad)?;
                parse_ovn(&words).map_err(|e| bad(e.to_string()))?;
                if s.save.is_some() {
                    return Err(bad("`save` goes with an `openstack` step".into()));
                }
            }
            if let Some(c) = &s.command {
                substitute(c, placeholder).map_err(bad)?;
            }
            if let Some(v) = &s.save {
                known.insert(v.clone());
            }
        }
        Ok(())
    }
}

/// What one step did.
pub struct StepDone {
    /// `openstack LINE` / `ovn LINE` / `dump NAME` after substitution.
    pub summary: String,
    /// The id the step created or looked up, if any.
    pub id: Option<String>,
    /// `(name, document)` when the step asked for a dump.
    pub dump: Option<(String, serde_json::Value)>,
}

/// Runs steps against the mimic and the NB/SB it was given.
pub struct Replay {
    neutron: Arc<Neutron>,
    nb: Client,
    sb: Client,
    vars: HashMap<String, String>,
    chassis: Vec<String>,
    /// The `nb_cfg` the chassis last acknowledged: a dump waits for northd's `hv_cfg` to
    /// reach it, so northd's bookkeeping of the acks is settled in every dump.
    acked_cfg: i64,
    started: bool,
    /// Wait for ovn-northd before each dump (off for load runs without dumps).
    pub settle_quiet: Duration,
}

impl Replay {
    pub fn new(nb: Client, sb: Client, config: Config) -> Self {
        Replay {
            neutron: Neutron::new(nb.clone(), sb.clone(), config),
            nb,
            sb,
            vars: HashMap::new(),
            chassis: Vec::new(),
            acked_cfg: 0,
            started: false,
            settle_quiet: Duration::from_millis(300),
        }
    }

    /// A replay driving an existing mimic (e.g. the one a load run already started).
    pub fn with_neutron(neutron: Arc<Neutron>, nb: Client, sb: Client, started: bool) -> Self {
        let mut r = Replay::new(nb, sb, Config::default());
        r.neutron = neutron;
        r.started = started;
        r
    }

    /// The mimic this replay drives.
    pub fn neutron(&self) -> &Arc<Neutron> {
        &self.neutron
    }

    /// Sets `${name}` (e.g. the workload's iteration `i`).
    pub fn set_var(&mut self, name: &str, value: String) {
        self.vars.insert(name.to_owned(), value);
    }

    /// What `ovn-nbctl init`, `ovn-sbctl init` and `ovn-nbctl --wait=sb sync` do on a fresh
    /// central: the global rows exist and ovn-northd has caught up.
    pub async fn prepare(&mut self) -> Result<(), ReplayError> {
        let run = async {
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
        };
        run.await.map_err(|source| ReplayError::Failed {
            step: 0,
            source: Box::new(source),
        })
    }

    async fn ensure_started(&mut self) -> Result<(), Error> {
        if !self.started {
            self.neutron.start().await?;
            self.started = true;
        }
        Ok(())
    }

    fn substitute(&self, text: &str) -> Result<String, StepError> {
        substitute(text, |n| self.vars.get(n).cloned()).map_err(StepError::Bad)
    }

    /// Runs step `index` (1-based, for messages). A step marked `expect: refused` succeeds
    /// when the mimic refuses its action (nothing was written) and fails with
    /// [`ReplayError::NotRefused`] when it does not.
    pub async fn step(&mut self, index: usize, step: &Step) -> Result<StepDone, ReplayError> {
        let mut line = String::new();
        let expect_refused = step.expect == Some(Expect::Refused);
        let (summary, default_command, id) = match self.action(step, &mut line).await {
            Ok(_) if expect_refused => return Err(ReplayError::NotRefused { step: index, line }),
            Ok(done) => done,
            Err(StepError::Mimic(e)) if e.is_bad_input() && expect_refused => {
                tracing::debug!("step {index} refused as expected: {e}");
                (
                    format!("openstack {line} (refused, as expected)"),
                    format!("openstack {line}"),
                    None,
                )
            }
            Err(StepError::Bad(why)) => return Err(ReplayError::BadStep { step: index, why }),
            Err(StepError::Mimic(e)) if e.is_bad_input() => {
                return Err(ReplayError::Refused {
                    step: index,
                    line,
                    source: Box::new(e),
                })
            }
            Err(StepError::Mimic(e)) => {
                return Err(ReplayError::Failed {
                    step: index,
                    source: Box::new(e),
                })
            }
        };
        let mut done = StepDone {
            summary,
            id,
            dump: None,
        };
        if let Some(name) = &step.dump {
            let r = async {
                // As with real neutron-server (tools/neutron-oracle): it starts before the
                // first step that is not a chassis-side one.
                if step.ovn.is_none() {
                    self.ensure_started().await?;
                }
                let command = match &step.command {
                    Some(c) => self.substitute(c)?,
                    None => default_command,
                };
                self.dump(name, &command).await
            }
            .await;
            done.dump = Some((name.clone(), r.map_err(|e| to_replay(index, e))?));
            if done.summary.is_empty() {
                done.summary = format!("dump {name}");
            }
        }
        Ok(done)
    }

    /// The step's action: (summary, the dump's default command text, the id it gave).
    async fn action(
        &mut self,
        step: &Step,
        line_out: &mut String,
    ) -> Result<(String, String, Option<String>), StepError> {
        if !self.chassis.is_empty() {
            let names: Vec<&str> = self.chassis.iter().map(String::as_str).collect();
            self.acked_cfg = sb_agent::heartbeat(&self.sb, &names).await?;
        }
        if let Some(line) = &step.openstack {
            self.ensure_started().await?;
            let line = self.substitute(line)?;
            *line_out = line.clone();
            let words = split_words(&line).map_err(StepError::Bad)?;
            let cmd = parse_openstack(&words, step.project.as_deref())?;
            let id = self.openstack(cmd).await?;
            if let (Some(var), Some(id)) = (&step.save, &id) {
                self.vars.insert(var.clone(), id.clone());
            }
            let summary = format!("openstack {line}");
            return Ok((summary.clone(), summary, id));
        }
        if let Some(line) = &step.ovn {
            let line = self.substitute(line)?;
            *line_out = line.clone();
            let words = split_words(&line).map_err(StepError::Bad)?;
            self.ovn(parse_ovn(&words)?).await?;
            return Ok((format!("ovn {line}"), format!("(ovn-controller side: {line})"), None));
        }
        Ok((String::new(), String::new(), None))
    }

    async fn dump(&self, name: &str, command: &str) -> Result<serde_json::Value, StepError> {
        sync_northd(&self.nb, Duration::from_secs(30)).await?;
        // Real ovn-controllers acknowledge every nb_cfg they see, so real Neutron's dumps always
        // show northd's hv_cfg (and its timestamp) caught up: ack the sync just made, then wait
        // for northd to copy the ack, on its own time. Without both, a dump taken right after
        // chassis registered could show hv_cfg_timestamp still 0. Chassis that are not ours
        // could hold hv_cfg back, so this wait only warns.
        if !self.chassis.is_empty() {
            let names: Vec<&str> = self.chassis.iter().map(String::as_str).collect();
            let acked = sb_agent::heartbeat(&self.sb, &names).await?;
            if !nb_global_reaches(&self.nb, "hv_cfg", acked, Duration::from_secs(10)).await? {
                tracing::warn!(
                    "NB_Global.hv_cfg did not reach the chassis' acknowledged nb_cfg={acked} within 10 s; dumping anyway"
                );
            }
        }
        let doc = settled_dump(&self.nb, self.settle_quiet, Duration::from_secs(10)).await?;
        Ok(ovsdb::dump::with_keys(
            doc,
            [
                ("step", serde_json::Value::String(name.to_owned())),
                ("command", serde_json::Value::String(command.to_owned())),
            ],
        ))
    }

    /// Runs one openstack command line (after substitution) outside a steps file; returns the
    /// id it created, if any. For the workload driver.
    pub async fn openstack_line(&mut self, line: &str, project: Option<&str>) -> Result<Option<String>, ReplayError> {
        let step = Step {
            openstack: Some(line.to_owned()),
            project: project.map(str::to_owned),
            ..Step::default()
        };
        self.step(0, &step).await.map(|d| d.id)
    }

    /// One openstack CLI command; returns the id of what it created (or showed), if anything.
    async fn openstack(&mut self, cmd: OpenstackCommand) -> Result<Option<String>, StepError> {
        use OpenstackCommand as C;
        let n = self.neutron.clone();
        let report = match cmd {
            C::NetworkCreate(spec) => n.network_create(spec).await?,
            C::NetworkDelete(names) => return self.each(names, |n, x| async move { n.network_delete(&x).await }).await,
            C::NetworkSet { network, update } => n.network_set(&network, update).await?,
            C::SubnetCreate(spec) => n.subnet_create(spec).await?,
            C::SubnetSet { subnet, update } => n.subnet_set(&subnet, update).await?,
            C::SubnetDelete(names) => return self.each(names, |n, x| async move { n.subnet_delete(&x).await }).await,
            C::RouterCreate { name, project, gateway } => {
                let r = n.router_create(&name, project.as_deref()).await?;
                if let Some(g) = gateway {
                    n.router_set_gateway(&name, g).await?;
                }
                r
            }
            C::RouterDelete(names) => return self.each(names, |n, x| async move { n.router_delete(&x).await }).await,
            C::RouterSetGateway { router, gateway } => n.router_set_gateway(&router, gateway).await?,
            C::RouterUnsetGateway { router } => n.router_unset_gateway(&router).await?,
            C::RouterRoutes { router, edit } => n.router_update_routes(&router, edit).await?,
            C::RouterRename { router, name } => n.router_rename(&router, &name).await?,
            C::RouterAddPort { router, port } => n.router_add_port(&router, &port).await?,
            C::RouterRemovePort { router, port } => n.router_remove_port(&router, &port).await?,
            C::RouterAddSubnet { router, subnet } => n.router_add_subnet(&router, &subnet).await?,
            C::RouterRemoveSubnet { router, subnet } => n.router_remove_subnet(&router, &subnet).await?,
            C::PortCreate(spec) => {
                self.cli_resolves_groups(spec.security_groups.as_deref().unwrap_or_default(), None)
                    .await?;
                n.port_create(spec).await?
            }
            C::PortSet { port, update } => {
                if let Some((_, add)) = &update.security_groups {
                    self.cli_resolves_groups(add, None).await?;
                }
                self.cli_resolves_groups(&update.remove_security_groups, None).await?;
                n.port_update(&port, update).await?
            }
            C::PortDelete(names) => return self.each(names, |n, x| async move { n.port_delete(&x).await }).await,
            C::ServerCreate {
                name,
                network,
                host,
                fixed_ip,
            } => {
                if host.is_empty() {
                    return Err(StepError::Bad(
                        "server create needs --host (the compute chassis)".into(),
                    ));
                }
                let created = n.server_create(&network, &host, fixed_ip).await?;
                let port = created.id.map(|i| i.to_string()).unwrap_or_default();
                let chassis = self.chassis_for_host(&host).await?;
                sb_agent::claim_port(&self.sb, &port, &chassis, true, Duration::from_secs(30)).await?;
                n.wait_port_up(&port, Duration::from_secs(30)).await?;
                self.vars.insert(name, port.clone());
                return Ok(Some(port));
            }
            C::ServerDelete(names) => {
                let mut ports = Vec::new();
                for name in names {
                    ports.push(
                        self.vars
                            .get(&name)
                            .cloned()
                            .ok_or_else(|| StepError::Bad(format!("unknown server {name:?} (create it first)")))?,
                    );
                }
                return self.each(ports, |n, x| async move { n.port_delete(&x).await }).await;
            }
            C::FloatingIpCreate {
                network,
                ip,
                port,
                fixed_ip,
            } => match port {
                Some(port) => n.floating_ip_create_with_port(&network, ip, &port, fixed_ip).await?,
                None => n.floating_ip_create(&network, ip).await?,
            },
            C::FloatingIpSet { fip, port, fixed_ip } => n.floating_ip_set_port(&fip, &port, fixed_ip).await?,
            C::FloatingIpUnset { fip } => n.floating_ip_unset_port(&fip).await?,
            C::FloatingIpDelete(names) => {
                return self
                    .each(names, |n, x| async move { n.floating_ip_delete(&x).await })
                    .await
            }
            C::SecurityGroupCreate {
                name,
                project,
                stateful,
            } => n.security_group_create(&name, project.as_deref(), stateful).await?,
            C::SecurityGroupSet { group, project, update } => {
                self.cli_resolves_groups(std::slice::from_ref(&group), None).await?;
                let id = self.group_in_project(group, project);
                n.security_group_set(&id, update).await?
            }
            C::SecurityGroupDelete { groups, project } => {
                self.cli_resolves_groups(&groups, None).await?;
                let ids: Vec<String> = groups
                    .into_iter()
                    .map(|sg| self.group_in_project(sg, project.clone()))
                    .collect();
                return self
                    .each(ids, |n, x| async move { n.security_group_delete(&x).await })
                    .await;
            }
            C::SecurityGroupRuleCreate(spec) => {
                let mut names = vec![spec.security_group.clone()];
                names.extend(spec.remote_group.clone());
                self.cli_resolves_groups(&names, None).await?;
                n.security_group_rule_create(spec).await?
            }
            C::SecurityGroupRuleDelete(ids) => {
                return self
                    .each(ids, |n, x| async move { n.security_group_rule_delete(&x).await })
                    .await
            }
            C::Show { kind, name, project } => {
                if kind == ObjectKind::SecurityGroup {
                    // The lookup is `GET /security-groups?name=&project_id=`.
                    n.security_groups_listed(project.as_deref()).await?;
                }
                return Ok(Some(self.show(kind, &name, project.as_deref())?));
            }
        };
        Ok(report.id.map(|i| i.to_string()))
    }

    /// A security group's name resolved in `project` (default: the configured one), as names
    /// are per project (every project has a `default`); an id or an unknown name as given.
    fn group_in_project(&self, group: String, project: Option<String>) -> String {
        self.neutron.with_state(|st| {
            let project = project.unwrap_or_else(|| st.config.default_project.clone());
            st.security_groups
                .values()
                .find(|g| g.name == group && g.project == project)
                .map(|g| g.id.to_string())
                .unwrap_or(group)
        })
    }

    /// The openstack CLI resolves a security group given by name with a list call
    /// (`GET /security-groups?name=`), which has a side effect in Neutron (the default group
    /// of the request's project is created if missing).
    async fn cli_resolves_groups(&self, names: &[String], project: Option<&str>) -> Result<(), StepError> {
        if names.iter().any(|n| uuid::Uuid::parse_str(n).is_err()) {
            self.neutron.security_groups_listed(project).await?;
        }
        Ok(())
    }

    /// A delete of several objects: one API call each, in order, as the CLI does.
    async fn each<F, Fut>(&self, names: Vec<String>, f: F) -> Result<Option<String>, StepError>
    where
        F: Fn(Arc<Neutron>, String) -> Fut,
        Fut: std::future::Future<Output = crate::Result<crate::ActionReport>>,
    {
        for name in names {
            f(self.neutron.clone(), name).await?;
        }
        Ok(None)
    }

    /// The id of the one object of that kind with that name (or id), in `project` if given.
    fn show(&self, kind: ObjectKind, name: &str, project: Option<&str>) -> Result<String, StepError> {
        let found = self.neutron.with_state(|st| {
            let in_project = |p: &str| project.is_none_or(|want| want == p);
            let matches: Vec<String> = match kind {
                ObjectKind::Network => st
                    .networks
                    .values()
                    .filter(|o| (o.name == name || o.id.to_string() == name) && in_project(&o.project))
                    .map(|o| o.id.to_string())
                    .collect(),
                ObjectKind::Subnet => st
                    .subnets
                    .values()
                    .filter(|o| (o.name == name || o.id.to_string() == name) && in_project(&o.project))
                    .map(|o| o.id.to_string())
                    .collect(),
                ObjectKind::Port => st
                    .ports
                    .values()
                    .filter(|o| (o.name == name || o.id.to_string() == name) && in_project(&o.project))
                    .map(|o| o.id.to_string())
                    .collect(),
                ObjectKind::Router => st
                    .routers
                    .values()
                    .filter(|o| (o.name == name || o.id.to_string() == name) && in_project(&o.project))
                    .map(|o| o.id.to_string())
                    .collect(),
                ObjectKind::SecurityGroup => st
                    .security_groups
                    .values()
                    .filter(|o| (o.name == name || o.id.to_string() == name) && in_project(&o.project))
                    .map(|o| o.id.to_string())
                    .collect(),
                ObjectKind::FloatingIp => st
                    .floating_ips
                    .values()
                    .filter(|o| (o.ip.to_string() == name || o.id.to_string() == name) && in_project(&o.project))
                    .map(|o| o.id.to_string())
                    .collect(),
            };
            matches
        });
        match found.as_slice() {
            [one] => Ok(one.clone()),
            [] => Err(StepError::Mimic(Error::Unknown {
                kind: "object",
                name: format!(
                    "{kind:?} {name}{}",
                    project.map(|p| format!(" in project {p}")).unwrap_or_default()
                ),
                known: "see earlier steps".into(),
            })),
            many => Err(StepError::Mimic(Error::Invalid {
                what: format!("{kind:?} {name}"),
                why: format!("{} objects have that name; add --project or use an id", many.len()),
            })),
        }
    }

    async fn chassis_for_host(&self, host: &str) -> Result<String, StepError> {
        let all = self.neutron.chassis().await?;
        all.iter()
            .find(|c| c.hostname == host || c.name == host)
            .map(|c| c.name.clone())
            .ok_or_else(|| StepError::Bad(format!("no SB chassis has hostname {host:?} (register it first)")))
    }

    /// One chassis-side step.
    async fn ovn(&mut self, cmd: OvnCommand) -> Result<(), StepError> {
        match cmd {
            OvnCommand::RegisterChassis {
                name,
                encap_ip,
                hostname,
                gateway,
                bridge_mappings,
            } => {
                let mut spec = ChassisSpec::compute(&name, &encap_ip);
                if let Some(h) = hostname {
                    spec.hostname = h;
                }
                if gateway {
                    spec.keys
                        .insert("ovn-cms-options".into(), "enable-chassis-as-gw".into());
                }
                if let Some(m) = bridge_mappings {
                    spec.keys.insert("ovn-bridge-mappings".into(), m);
                }
                sb_agent::register_chassis(&self.sb, &spec).await?;
                self.chassis.push(name);
            }
            OvnCommand::Heartbeat => {
                let names: Vec<&str> = self.chassis.iter().map(String::as_str).collect();
                self.acked_cfg = sb_agent::heartbeat(&self.sb, &names).await?;
            }
            OvnCommand::Sync => sync_northd(&self.nb, Duration::from_secs(30)).await?,
            OvnCommand::ClaimGateway { router } => {
                let (port, chassis) = self.neutron.with_state(|st| -> crate::Result<_> {
                    let r = st.router(&router)?;
                    let g = r.gateway.as_ref().ok_or_else(|| Error::Invalid {
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
                self.neutron.router_gateway_bound(&router, &host).await?;
            }
            OvnCommand::ClaimPort { port, chassis, up } => {
                // A Neutron port by name or id is claimed under its LSP name (its id).
                let port = self
                    .neutron
                    .with_state(|st| st.port(&port).map(|p| p.id.to_string()))
                    .unwrap_or(port);
                sb_agent::claim_port(&self.sb, &port, &chassis, up, Duration::from_secs(30)).await?;
                if up {
                    self.neutron.wait_port_up(&port, Duration::from_secs(30)).await?;
                }
            }
        }
        Ok(())
    }
}

fn to_replay(step: usize, e: StepError) -> ReplayError {
    match e {
        StepError::Bad(why) => ReplayError::BadStep { step, why },
        StepError::Mimic(source) => ReplayError::Failed {
            step,
            source: Box::new(source),
        },
    }
}

/// Bumps `NB_Global.nb_cfg` and waits until ovn-northd reports it in `sb_cfg`: everything
/// written before has been processed (`ovn-nbctl --wait=sb sync`).
pub async fn sync_northd(nb: &Client, timeout: Duration) -> crate::Result<()> {
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
        .ok_or_else(|| Error::invalid("the NB", "NB_Global has no row (is this an OVN Northbound DB?)"))?;
    if nb_global_reaches(nb, "sb_cfg", target, timeout).await? {
        return Ok(());
    }
    Err(Error::Timeout {
        what: format!(
            "ovn-northd to process NB_Global.nb_cfg={target} (is ovn-northd running against this NB and SB?)"
        ),
        after: timeout,
    })
}

/// Waits until the integer `column` of the NB_Global row is at least `target`: true once it
/// is, false if `timeout` passes first.
async fn nb_global_reaches(nb: &Client, column: &str, target: i64, timeout: Duration) -> crate::Result<bool> {
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
async fn settled_dump(nb: &Client, quiet: Duration, timeout: Duration) -> crate::Result<serde_json::Value> {
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
    crate::snapshot::strip_for_snapshot(&mut doc);
    doc.to_string()
}
