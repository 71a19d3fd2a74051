//! [`Scenario`] → upstream-style YAML: what `run --check` prints. Every key under upstream's
//! name (`node_timeout_s: 20`, `db_inactivity_probe: 60000` in ms, as upstream writes them),
//! with every default filled in, so the output runs again as is and reading it back prints
//! the same text. Keys that have no effect here are left out (their notes say so).
//!
//! Must not know: how a scenario is run.

use serde_norway::{Mapping, Value as Yaml};

use super::{ChassisKind, CmsKind, DatapathType, Load, Scenario, Workload};

/// The scenario as this ovn-heater understood it, as YAML.
pub(super) fn to_yaml(s: &Scenario) -> String {
    let mut root = Mapping::new();
    root.insert("global".into(), Yaml::Mapping(global(s)));
    root.insert("cluster".into(), Yaml::Mapping(cluster(s)));
    let (name, workload) = workload(&s.workload);
    root.insert(name.into(), Yaml::Mapping(workload));
    if !s.ext_cmds.is_empty() {
        let list = s.ext_cmds.iter().map(|c| {
            let mut m = Mapping::new();
            m.insert("iteration".into(), uint(c.iteration as u64));
            m.insert("cmd".into(), c.cmd.clone().into());
            m.insert("node".into(), c.node.clone().into());
            m.insert("test".into(), c.test.clone().into());
            if let Some(pid) = &c.pid_name {
                m.insert("pid_name".into(), pid.clone().into());
            }
            m.insert("pid_opt".into(), c.pid_opt.clone().into());
            m.insert("background_opt".into(), c.background.into());
            Yaml::Mapping(m)
        });
        root.insert("ext_cmd".into(), Yaml::Sequence(list.collect()));
    }
    if !s.chaos.is_empty() {
        let list = s.chaos.iter().map(|a| {
            let mut m = Mapping::new();
            m.insert("stage".into(), a.stage.clone().into());
            m.insert("iteration".into(), uint(a.iteration as u64));
            m.insert("kill".into(), a.kill.to_string().into());
            Yaml::Mapping(m)
        });
        root.insert("chaos".into(), Yaml::Sequence(list.collect()));
    }
    serde_norway::to_string(&Yaml::Mapping(root)).unwrap_or_default()
}

fn uint(n: u64) -> Yaml {
    Yaml::Number(n.into())
}

fn global(s: &Scenario) -> Mapping {
    let g = &s.global;
    let mut m = Mapping::new();
    m.insert(
        "cms_name".into(),
        match g.cms {
            CmsKind::Openstack => "openstack".into(),
        },
    );
    m.insert("log_cmds".into(), g.log_cmds.into());
    // Left out when not given: its default depends on where the run goes (true attached, false
    // on a lab), which the scenario does not know.
    if let Some(cleanup) = g.cleanup {
        m.insert("cleanup".into(), cleanup.into());
    }
    m.insert("run_ipv4".into(), g.run_ipv4.into());
    m.insert("run_ipv6".into(), g.run_ipv6.into());
    m
}

fn cluster(s: &Scenario) -> Mapping {
    let c = &s.cluster;
    let mut m = Mapping::new();
    m.insert(
        "chassis".into(),
        match c.chassis {
            ChassisKind::Real => "real",
            ChassisKind::Emulated => "emulated",
        }
        .into(),
    );
    m.insert("clustered_db".into(), c.clustered_db.into());
    m.insert("monitor_all".into(), c.monitor_all.into());
    // `openstack_base` sizes the cluster itself and refuses n_workers.
    if matches!(s.workload, Workload::BaseOpenstack(_)) {
        m.insert("n_workers".into(), uint(c.n_workers as u64));
    }
    m.insert("n_relays".into(), uint(c.n_relays as u64));
    // Emulated chassis run no OVS: the key would only earn a note.
    if c.chassis == ChassisKind::Real {
        m.insert(
            "datapath_type".into(),
            match c.datapath_type {
                DatapathType::System => "system",
                DatapathType::Netdev => "netdev",
            }
            .into(),
        );
    }
    m.insert("raft_election_to".into(), uint(c.raft_election_to));
    m.insert("northd_probe_interval".into(), uint(c.northd_probe_interval_ms));
    m.insert("northd_threads".into(), uint(u64::from(c.northd_threads)));
    m.insert("db_inactivity_probe".into(), uint(c.db_inactivity_probe_ms));
    m.insert("enable_ssl".into(), c.enable_ssl.into());
    m.insert("node_timeout_s".into(), uint(c.node_timeout.as_secs()));
    m.insert("node_net".into(), c.node_net.to_string().into());
    m.insert("internal_net".into(), c.internal_net.to_string().into());
    m.insert("external_net".into(), c.external_net.to_string().into());
    m.insert("physical_net".into(), c.physical_net.clone().into());
    m
}

fn load(m: &mut Mapping, l: &Load) {
    m.insert("concurrency".into(), uint(l.concurrency as u64));
    if let Some(rate) = l.ops_per_second {
        m.insert("ops_per_second".into(), rate.into());
    }
}

fn workload(w: &Workload) -> (&'static str, Mapping) {
    let mut m = Mapping::new();
    match w {
        Workload::OpenstackBase(o) => {
            m.insert("n_hypervisors".into(), uint(o.n_hypervisors as u64));
            m.insert("n_vms_per_hypervisor".into(), uint(o.n_vms_per_hypervisor as u64));
            m.insert("n_network_nodes".into(), uint(o.n_network_nodes as u64));
            load(&mut m, &o.load);
            if !o.steps.is_empty() {
                let steps = o.steps.iter().map(|step| {
                    let mut s = Mapping::new();
                    s.insert("openstack".into(), step.openstack.clone().into());
                    s.insert("repeat".into(), uint(step.repeat as u64));
                    if let Some(p) = &step.project {
                        s.insert("project".into(), p.clone().into());
                    }
                    Yaml::Mapping(s)
                });
                m.insert("steps".into(), Yaml::Sequence(steps.collect()));
            }
        }
        Workload::BaseOpenstack(b) => {
            m.insert("n_projects".into(), uint(b.n_projects as u64));
            m.insert("n_chassis_per_gw_lrp".into(), uint(b.n_chassis_per_gw_lrp as u64));
            m.insert("n_vms_per_project".into(), uint(b.n_vms_per_project as u64));
            if b.passive_vms {
                m.insert("passive_vms".into(), Yaml::Bool(true));
            }
            load(&mut m, &b.load);
        }
    }
    (w.name(), m)
}

#[cfg(test)]
mod tests {
    use super::super::Scenario;

    /// Reads `text`, writes it as YAML, reads that back: the same scenario and the same text.
    fn round_trip(text: &str, origin: &str) {
        let first = Scenario::from_yaml(text, origin, &[]).unwrap_or_else(|e| panic!("{origin}: {e}"));
        let yaml = first.to_yaml();
        let second = Scenario::from_yaml(&yaml, "emitted", &[]).unwrap_or_else(|e| panic!("{origin}: {e}\n{yaml}"));
        assert_eq!(second.to_yaml(), yaml, "{origin}: the text changed");
        // Keys with no effect here are not written (their notes say so); nothing else may change.
        let plain = |s: &Scenario| {
            let mut s = s.clone();
            s.yaml.clear();
            s.notes.clear();
            let defaults = Scenario::from_yaml("openstack_base: {}\n", "defaults", &[]).expect("defaults");
            s.cluster.log_txns_db = false;
            s.cluster.gw_net = defaults.cluster.gw_net;
            s.cluster.cluster_net = defaults.cluster.cluster_net;
            s.cluster.internal_net6 = defaults.cluster.internal_net6;
            s.cluster.external_net6 = defaults.cluster.external_net6;
            if s.cluster.chassis == super::super::ChassisKind::Emulated {
                s.cluster.datapath_type = defaults.cluster.datapath_type;
            }
            s
        };
        assert_eq!(plain(&second), plain(&first), "{origin}: the scenario changed\n{yaml}");
        assert!(
            second.notes.is_empty(),
            "{origin}: the emitted scenario earns notes: {:?}",
            second.notes
        );
    }

    #[test]
    fn every_shipped_openstack_scenario_round_trips() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scenarios");
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).expect("scenarios/") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "yml") {
                round_trip(
                    &std::fs::read_to_string(&path).expect("read"),
                    &path.display().to_string(),
                );
                seen += 1;
            }
        }
        assert!(seen >= 4, "{seen} scenarios");
    }

    #[test]
    fn every_section_round_trips_with_upstream_names() {
        let text = "global: {log_cmds: true, cleanup: true}
cluster: {chassis: emulated, clustered_db: true, n_workers: 4, node_timeout_s: 45, db_inactivity_probe: 30000, physical_net: provider-1, log_txns_db: true, gw_net: 30.0.0.0/16}
base_openstack: {n_projects: 3, n_chassis_per_gw_lrp: 9, n_vms_per_project: 5, concurrency: 2, ops_per_second: 50.5}
ext_cmd:
  - {iteration: 2, cmd: 'ovn-appctl -t ovn-northd inc-engine/recompute', node: central, test: base_openstack, pid_name: ovn-northd, pid_opt: '-p'}
chaos:
  - {stage: vms, iteration: 1, kill: northd}
";
        round_trip(text, "all sections");
        let yaml = Scenario::from_yaml(text, "all", &[]).unwrap().to_yaml();
        for line in [
            "node_timeout_s: 45",
            "db_inactivity_probe: 30000",
            "physical_net: provider-1",
            "n_workers: 4",
            "n_chassis_per_gw_lrp: 4",
            "ops_per_second: 50.5",
            "kill: northd",
            "pid_name: ovn-northd",
        ] {
            assert!(yaml.contains(line), "no {line:?} in\n{yaml}");
        }
        assert!(
            !yaml.contains("log_txns_db") && !yaml.contains("gw_net"),
            "keys with no effect are left out:\n{yaml}"
        );
        assert!(!yaml.contains("nanos"), "{yaml}");
    }

    #[test]
    fn openstack_cli_steps_round_trip() {
        round_trip(
            "openstack_base:\n  steps:\n    - {openstack: 'network create net-${i}', repeat: 3}\n    - {openstack: 'router create r1', project: p1}\n",
            "steps",
        );
    }
}
