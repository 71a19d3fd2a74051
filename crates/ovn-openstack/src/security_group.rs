//! Security groups: the per-project `default` group Neutron creates on a project's first
//! network or port (T1a), `security group create/delete`, `security group rule
//! create/delete`. A group is one Port_Group `pg_<id_with_underscores>`; each rule one ACL.
//!
//! Must not know: connections (see neutron.rs), the CLI.

use ipnet::IpNet;
use ovsdb::{Condition, Row, Transaction, Value};

use crate::error::{Error, Result};
use crate::model::{Direction, Id, SecurityGroup, SecurityGroupRule, State};
use crate::nb::{self, map_of, smap, Planned};
use crate::neutron::{ActionReport, Neutron};

/// `openstack security group rule create`.
#[derive(Clone, Debug)]
pub struct RuleSpec {
    pub security_group: String,
    pub direction: Direction,
    /// 4 or 6 (`--ethertype IPv4|IPv6`).
    pub ethertype: u8,
    /// `tcp`, `udp`, `icmp`, a number, or `None` for any.
    pub protocol: Option<String>,
    pub port_range_min: Option<u16>,
    pub port_range_max: Option<u16>,
    pub remote_ip_prefix: Option<String>,
    pub remote_group: Option<String>,
}

/// `openstack security group set`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SecurityGroupUpdate {
    /// `--name` (refused for a `default` group, whatever the new name).
    pub name: Option<String>,
    /// `--description` (not in the NB).
    pub description: Option<String>,
    /// `--stateful` / `--stateless`: a change is refused while ports use the group.
    pub stateful: Option<bool>,
}

impl Neutron {
    /// `security group set`: Neutron keeps nothing of the group's name or description in the
    /// NB (its revision is not there either). Switching stateful/stateless rewrites every
    /// rule's ACL (`allow-related` <-> `allow-stateless`): per rule, in the group's order, one
    /// transaction removing its ACL and one adding the new one. Refused (409): a switch while
    /// ports use the group, `--name` on a `default` group.
    pub async fn security_group_set(&self, group: &str, update: SecurityGroupUpdate) -> Result<ActionReport> {
        self.action("security group set", |mut report| async move {
            let (id, switched) = self.with_state(|st| -> Result<_> {
                let sg = st.security_group(group)?;
                let switched = update.stateful.is_some_and(|s| s != sg.stateful);
                if switched {
                    if let Some(p) = st.ports.values().find(|p| p.security_groups.contains(&sg.id)) {
                        return Err(Error::InUse {
                            what: format!("security group {}", sg.name),
                            why: format!(
                                "port {} uses it: a group switches between stateful and stateless only while unused",
                                p.id
                            ),
                        });
                    }
                }
                if sg.name == "default" && update.name.is_some() {
                    return Err(Error::InUse {
                        what: format!("security group {}", sg.name),
                        why: "a project's default group cannot be renamed (Neutron's 409)".into(),
                    });
                }
                Ok((sg.id, switched))
            })?;
            let rules = self.with_state(|st| {
                let sg = st.security_groups.get_mut(&id).expect("looked up above");
                if let Some(name) = &update.name {
                    sg.name = name.clone();
                }
                if let Some(stateful) = update.stateful {
                    sg.stateful = stateful;
                }
                sg.rules.clone()
            });
            if switched {
                for rule in rules {
                    self.exec(&mut report, |st| Ok(Some(plan_acl_remove(st, rule)?)))
                        .await?;
                    self.exec(&mut report, |st| Ok(Some(plan_acl_add(st, rule)?))).await?;
                }
            }
            report.id = Some(id);
            Ok(report)
        })
        .await
    }

    /// Creates the project's `default` group (Port_Group + 4 ACLs, one transaction) unless it
    /// exists, as Neutron's NETWORK/PORT `BEFORE_CREATE` callbacks do.
    pub(crate) async fn ensure_default_security_group(&self, report: &mut ActionReport, project: &str) -> Result<()> {
        if self.with_state(|st| st.default_sg.contains_key(project)) {
            return Ok(());
        }
        let _creating = self.default_sg_creation.lock().await;
        if self.with_state(|st| st.default_sg.contains_key(project)) {
            return Ok(());
        }
        let (sg, rules) = self.with_state(|st| {
            let sg = st.new_id();
            let rules: Vec<SecurityGroupRule> = [
                (Direction::Egress, 4, false),
                (Direction::Egress, 6, false),
                (Direction::Ingress, 4, true),
                (Direction::Ingress, 6, true),
            ]
            .into_iter()
            .map(|(direction, ethertype, same_group)| SecurityGroupRule {
                id: st.new_id(),
                security_group: sg,
                direction,
                ethertype,
                protocol: None,
                port_range_min: None,
                port_range_max: None,
                remote_ip_prefix: None,
                remote_group: same_group.then_some(sg),
                acl: ovsdb::Uuid::new_v4(),
            })
            .collect();
            (sg, rules)
        });
        let group = SecurityGroup {
            id: sg,
            name: "default".into(),
            project: project.to_owned(),
            stateful: true,
            rules: rules.iter().map(|r| r.id).collect(),
            port_group: ovsdb::Uuid::new_v4(),
        };
        self.exec(report, |_| {
            Ok(Some(plan_security_group(
                group,
                rules,
                "T1a default security group",
                true,
            )))
        })
        .await
    }

    /// `security group create`: Port_Group + its two egress rules' ACLs, one transaction.
    pub async fn security_group_create(
        &self,
        name: &str,
        project: Option<&str>,
        stateful: bool,
    ) -> Result<ActionReport> {
        self.action("security group create", |mut report| async move {
            let project = project
                .map(str::to_owned)
                .unwrap_or_else(|| self.with_state(|st| st.config.default_project.clone()));
            self.ensure_default_security_group(&mut report, &project).await?;
            let (group, rules) = self.with_state(|st| {
                let sg = st.new_id();
                let rules: Vec<SecurityGroupRule> = [4u8, 6]
                    .into_iter()
                    .map(|ethertype| SecurityGroupRule {
                        id: st.new_id(),
                        security_group: sg,
                        direction: Direction::Egress,
                        ethertype,
                        protocol: None,
                        port_range_min: None,
                        port_range_max: None,
                        remote_ip_prefix: None,
                        remote_group: None,
                        acl: ovsdb::Uuid::new_v4(),
                    })
                    .collect();
                let group = SecurityGroup {
                    id: sg,
                    name: name.to_owned(),
                    project: project.clone(),
                    stateful,
                    rules: rules.iter().map(|r| r.id).collect(),
                    port_group: ovsdb::Uuid::new_v4(),
                };
                (group, rules)
            });
            let id = group.id;
            self.exec(&mut report, |_| {
                Ok(Some(plan_security_group(group, rules, "security group create", false)))
            })
            .await?;
            report.id = Some(id);
            Ok(report)
        })
        .await
    }

    /// `security group delete`: rules of other groups naming it as remote group go first
    /// (one transaction each), then the Port_Group (its ACLs are garbage-collected).
    pub async fn security_group_delete(&self, name: &str) -> Result<ActionReport> {
        self.action("security group delete", |mut report| async move {
            let (id, remote_rules) = self.with_state(|st| -> Result<_> {
                let sg = st.security_group(name)?;
                if let Some(p) = st.ports.values().find(|p| p.security_groups.contains(&sg.id)) {
                    return Err(Error::InUse {
                        what: format!("security group {}", sg.name),
                        why: format!("port {} uses it", p.id),
                    });
                }
                let remote: Vec<Id> = st
                    .rules
                    .values()
                    .filter(|r| r.remote_group == Some(sg.id) && r.security_group != sg.id)
                    .map(|r| r.id)
                    .collect();
                Ok((sg.id, remote))
            })?;
            for rule in remote_rules {
                self.exec(&mut report, |st| Ok(Some(plan_rule_delete(st, rule)?)))
                    .await?;
            }
            self.exec(&mut report, |st| {
                let sg = &st.security_groups[&id];
                let mut txn = Transaction::new(nb::NB);
                txn.delete(nb::PORT_GROUP, vec![Condition::uuid(sg.port_group)]);
                Ok(Some(Planned::new(
                    "security group delete Port_Group",
                    txn,
                    move |st, _| {
                        if let Some(sg) = st.security_groups.remove(&id) {
                            for r in sg.rules {
                                st.rules.remove(&r);
                            }
                            if st.default_sg.get(&sg.project) == Some(&id) {
                                st.default_sg.remove(&sg.project);
                            }
                        }
                    },
                )))
            })
            .await?;
            Ok(report)
        })
        .await
    }

    /// `security group rule create`: one ACL added to the group's Port_Group.
    /// `GET /security-groups` (a list, e.g. the openstack CLI resolving a group's name):
    /// Neutron creates the `default` group of the filtered project (else of the request's
    /// project, the configured default one) if it is missing.
    pub async fn security_groups_listed(&self, project: Option<&str>) -> Result<ActionReport> {
        self.action("security group list", |mut report| async move {
            let project = project
                .map(str::to_owned)
                .unwrap_or_else(|| self.with_state(|st| st.config.default_project.clone()));
            self.ensure_default_security_group(&mut report, &project).await?;
            Ok(report)
        })
        .await
    }

    pub async fn security_group_rule_create(&self, spec: RuleSpec) -> Result<ActionReport> {
        self.action("security group rule create", |mut report| async move {
            let rule = self.with_state(|st| rule_from_spec(st, &spec))?;
            // Neutron's duplicate check reads the group's rules with a list call, which
            // ensures the request project's default group (the configured default project:
            // the mimic, like a noauth Neutron, has one request project).
            let context_project = self.with_state(|st| st.config.default_project.clone());
            self.ensure_default_security_group(&mut report, &context_project)
                .await?;
            let id = rule.id;
            self.exec(&mut report, |st| {
                let (txn, acl) = acl_link_txn(&rule, &st.security_groups[&rule.security_group]);
                let rule_id = rule.id.to_string();
                let by = Condition::includes(
                    "external_ids",
                    Value::string_map([("neutron:security_group_rule_id", rule_id.as_str())]),
                );
                Ok(Some(
                    Planned::new("security group rule create", txn, move |st, r| {
                        let mut rule = rule;
                        rule.acl = nb::inserted(r, &acl);
                        if let Some(sg) = st.security_groups.get_mut(&rule.security_group) {
                            sg.rules.push(rule.id);
                        }
                        st.rules.insert(rule.id, rule);
                    })
                    .landed_by(nb::ACL, rule_id.clone(), by, None::<i64>),
                ))
            })
            .await?;
            report.id = Some(id);
            Ok(report)
        })
        .await
    }

    /// `security group rule delete`: the ACL leaves the group's Port_Group.
    pub async fn security_group_rule_delete(&self, rule: &str) -> Result<ActionReport> {
        self.action("security group rule delete", |mut report| async move {
            let id = self.with_state(|st| st.rule(rule).map(|r| r.id))?;
            self.exec(&mut report, |st| Ok(Some(plan_rule_delete(st, id)?))).await?;
            Ok(report)
        })
        .await
    }
}

fn rule_from_spec(st: &mut State, spec: &RuleSpec) -> Result<SecurityGroupRule> {
    let sg = st.security_group(&spec.security_group)?.id;
    if spec.ethertype != 4 && spec.ethertype != 6 {
        return Err(Error::invalid("--ethertype", "must be IPv4 or IPv6"));
    }
    let remote_ip_prefix = match &spec.remote_ip_prefix {
        None => None,
        Some(p) => {
            let net: IpNet = p
                .parse()
                .map_err(|_| Error::invalid("--remote-ip", format!("{p:?} is not a CIDR")))?;
            if matches!(net, IpNet::V4(_)) != (spec.ethertype == 4) {
                return Err(Error::invalid(
                    "--remote-ip",
                    format!("{p} does not match the ethertype"),
                ));
            }
            Some(net)
        }
    };
    let remote_group = match &spec.remote_group {
        None => None,
        Some(g) => Some(st.security_group(g)?.id),
    };
    if remote_ip_prefix.is_some() && remote_group.is_some() {
        return Err(Error::invalid("rule", "--remote-ip and --remote-group are exclusive"));
    }
    if let (Some(a), Some(b)) = (spec.port_range_min, spec.port_range_max) {
        if a > b && matches!(spec.protocol.as_deref(), Some("tcp" | "udp" | "sctp")) {
            return Err(Error::invalid("--dst-port", format!("{a}:{b} is not a range")));
        }
    }
    let rule = SecurityGroupRule {
        id: st.new_id(),
        security_group: sg,
        direction: spec.direction,
        ethertype: spec.ethertype,
        protocol: spec.protocol.clone(),
        port_range_min: spec.port_range_min,
        port_range_max: spec.port_range_max,
        remote_ip_prefix,
        remote_group,
        acl: ovsdb::Uuid::new_v4(),
    };
    let m = nb::acl_match(&rule);
    if st
        .rules
        .values()
        .any(|r| r.security_group == sg && r.direction == rule.direction && nb::acl_match(r) == m)
    {
        return Err(Error::invalid("rule", "an identical rule already exists in the group"));
    }
    Ok(rule)
}

/// A group's Port_Group and all its ACLs, one transaction.
pub fn plan_security_group(group: SecurityGroup, rules: Vec<SecurityGroupRule>, label: &str, default: bool) -> Planned {
    let mut txn = Transaction::new(nb::NB);
    let named: Vec<Value> = rules
        .iter()
        .map(|r| txn.insert(nb::ACL, nb::acl_row(r, group.stateful)))
        .collect();
    let acls = Value::Set(named.iter().filter_map(|v| v.atom().cloned()).collect());
    let pg = txn.insert(
        nb::PORT_GROUP,
        Row::new().with("name", nb::pg_name(group.id)).with("acls", acls).with(
            "external_ids",
            smap(&map_of([("neutron:security_group_id", group.id.to_string())])),
        ),
    );
    let pg_name = nb::pg_name(group.id);
    Planned::new(label, txn, move |st, r| {
        let mut group = group;
        group.port_group = nb::inserted(r, &pg);
        for (mut rule, n) in rules.into_iter().zip(named.iter()) {
            rule.acl = nb::inserted(r, n);
            st.rules.insert(rule.id, rule);
        }
        if default {
            st.default_sg.insert(group.project.clone(), group.id);
        }
        st.security_groups.insert(group.id, group);
    })
    .landed_by(
        nb::PORT_GROUP,
        pg_name.clone(),
        Condition::eq("name", pg_name.as_str()),
        None::<i64>,
    )
}

/// The rule's ACL leaves its Port_Group; the rule stays (its ACL is re-added next).
fn plan_acl_remove(st: &State, rule_id: Id) -> Result<Planned> {
    Ok(Planned::new(
        "security group set ACL delete",
        acl_unlink_txn(st, rule_id)?,
        |_, _| {},
    ))
}

/// `pg_acl_add`: the rule's ACL, written with its group's statefulness, joins the group's
/// Port_Group. Returns the transaction and the ACL's named uuid.
fn acl_link_txn(rule: &SecurityGroupRule, sg: &SecurityGroup) -> (Transaction, Value) {
    let mut txn = Transaction::new(nb::NB);
    let acl = txn.insert(nb::ACL, nb::acl_row(rule, sg.stateful));
    nb::mutate_ref(
        &mut txn,
        nb::PORT_GROUP,
        Value::uuid(sg.port_group),
        "acls",
        true,
        acl.clone(),
    );
    (txn, acl)
}

/// `pg_acl_del` of the rule's ACL (the ACL row goes with its last reference).
fn acl_unlink_txn(st: &State, rule_id: Id) -> Result<Transaction> {
    let rule = st
        .rules
        .get(&rule_id)
        .ok_or_else(|| Error::invalid("rule", format!("{rule_id} vanished")))?;
    let pg = st.security_groups[&rule.security_group].port_group;
    let mut txn = Transaction::new(nb::NB);
    nb::mutate_ref(
        &mut txn,
        nb::PORT_GROUP,
        Value::uuid(pg),
        "acls",
        false,
        Value::uuid(rule.acl),
    );
    Ok(txn)
}

/// The rule's ACL, written anew with its group's current statefulness.
fn plan_acl_add(st: &State, rule_id: Id) -> Result<Planned> {
    let rule = st
        .rules
        .get(&rule_id)
        .ok_or_else(|| Error::invalid("rule", format!("{rule_id} vanished")))?;
    let (txn, acl) = acl_link_txn(rule, &st.security_groups[&rule.security_group]);
    Ok(Planned::new("security group set ACL create", txn, move |st, r| {
        if let Some(rule) = st.rules.get_mut(&rule_id) {
            rule.acl = nb::inserted(r, &acl);
        }
    }))
}

/// `pg_acl_del`: the rule's ACL leaves its Port_Group.
pub fn plan_rule_delete(st: &State, rule_id: Id) -> Result<Planned> {
    let txn = acl_unlink_txn(st, rule_id)?;
    Ok(Planned::new("security group rule delete", txn, move |st, _| {
        if let Some(rule) = st.rules.remove(&rule_id) {
            if let Some(sg) = st.security_groups.get_mut(&rule.security_group) {
                sg.rules.retain(|r| *r != rule_id);
            }
        }
    }))
}
