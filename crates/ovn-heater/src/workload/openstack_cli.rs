//! `openstack_base.steps`: a load run whose steps are openstack CLI lines, each run `repeat`
//! times with `${i}` = 1..=repeat (`${i%N}` and `${i/N}` too), e.g. 500 networks each with a
//! subnet and two servers. Each line goes through the same vocabulary and executor as
//! `ovn-heater openstack replay` (`ovn_openstack::replay`), on the run's mimic; every
//! repetition is one sample of the measurement named after the step's command
//! (`network_create`, ...). `server create` is the base test's VM: port create + nova's port
//! update (`create_port`), bound on its hypervisor (`bind_port`), `port_up` from the NB monitor
//! (time from the create), Neutron's ACTIVE rewrites (`port_active`). Without `--host` the
//! servers go round-robin over the compute hosts.
//!
//! Must not know: YAML, clap, how the lab was started.

use std::sync::Arc;
use std::time::Instant;

use anyhow::anyhow;
use ovn_openstack::replay::vocabulary::{parse_openstack, split_words, OpenstackCommand};
use ovn_openstack::replay::Replay;
use ovn_openstack::Neutron;

use super::hosts::Hypervisors;
use super::Run;
use crate::cms::openstack::OpenStack;
use crate::cms::NetworkRef;
use crate::scenario::CliStep;

/// `${i}`, `${i%N}`, `${i/N}` of repetition `i`; other `${...}` are left for the replay's
/// saved variables.
pub fn expand(line: &str, i: usize) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = line;
    while let Some(at) = rest.find("${i") {
        out.push_str(&rest[..at]);
        let end = rest[at..]
            .find('}')
            .ok_or_else(|| format!("unterminated ${{ in {line:?}"))?;
        let expr = &rest[at + 2..at + end];
        let value = match expr.strip_prefix('i') {
            Some("") => i,
            Some(op) => {
                let (kind, n) = op.split_at(1);
                let n: usize = n
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("${{{expr}}}: use ${{i}}, ${{i%N}} or ${{i/N}} with N > 0"))?;
                match kind {
                    "%" => i % n,
                    "/" => i / n,
                    _ => return Err(format!("${{{expr}}}: use ${{i}}, ${{i%N}} or ${{i/N}}")),
                }
            }
            None => unreachable!("found ${{i above"),
        };
        out.push_str(&value.to_string());
        rest = &rest[at + end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Checks one line (with `${i}` = 1) against the vocabulary, before the run starts.
pub fn check_line(line: &str, project: Option<&str>) -> Result<(), String> {
    let expanded = expand(line, 1)?;
    let words = split_words(&expanded)?;
    parse_openstack(&words, project).map_err(|e| e.to_string())?;
    Ok(())
}

/// The measurement a step's samples are recorded under: its command words (`port_create`).
fn measurement(line: &str) -> String {
    line.split_whitespace()
        .take_while(|w| !w.starts_with('-') && !w.contains('$'))
        .take(4)
        .collect::<Vec<_>>()
        .join("_")
}

/// Runs the steps in order, each repetition after the previous one; a failed step stops the
/// run (a failed `server create` is a failed sample, as in the base test).
pub async fn run_steps<H: Hypervisors>(
    run: Arc<Run<OpenStack, H>>,
    steps: &[CliStep],
    neutron: Arc<Neutron>,
) -> anyhow::Result<()> {
    let stage = run.rec.begin_stage("openstack_cli");
    let mut replay = Replay::with_neutron(neutron, run.nb.clone(), run.sb.clone(), true);
    let compute = run.hosts.compute();
    let mut servers = 0usize;
    for (k, step) in steps.iter().enumerate() {
        let name = measurement(&step.openstack);
        for i in 1..=step.repeat {
            let line = expand(&step.openstack, i).map_err(|e| anyhow!("steps[{}]: {e}", k + 1))?;
            let words = split_words(&line).map_err(|e| anyhow!("steps[{}]: {e}", k + 1))?;
            let project = step.project.as_deref().unwrap_or("fake_project_id");
            if let Ok(OpenstackCommand::ServerCreate {
                name: vm,
                network,
                host,
                ..
            }) = parse_openstack(&words, step.project.as_deref())
            {
                let host = if host.is_empty() {
                    compute
                        .get(servers % compute.len().max(1))
                        .cloned()
                        .ok_or_else(|| anyhow!("no compute host to place server {vm} on"))?
                } else {
                    host
                };
                servers += 1;
                let net = NetworkRef {
                    id: network.clone(),
                    name: network,
                    subnet: None,
                };
                if let Some(created) = super::openstack::one_vm(&run, stage, &net, project, &host, &vm).await {
                    replay.set_var(&vm, created.port.id.clone());
                }
                continue;
            }
            run.limiter.acquire().await;
            let started = Instant::now();
            let r = replay.openstack_line(&line, step.project.as_deref()).await;
            run.rec.record(
                stage,
                &name,
                &line,
                started,
                Instant::now(),
                r.as_ref().err().map(|e| e.to_string()),
            );
            r.map_err(|e| anyhow!("steps[{}] (i = {i}): {e}", k + 1))?;
        }
    }
    run.end_stage(stage, "openstack_cli").await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_the_repetition_index() {
        assert_eq!(expand("network create net${i}", 7).unwrap(), "network create net7");
        assert_eq!(
            expand("subnet create --subnet-range 10.${i/256}.${i%256}.0/24 s${i}", 300).unwrap(),
            "subnet create --subnet-range 10.1.44.0/24 s300"
        );
        assert_eq!(expand("port set ${p}", 1).unwrap(), "port set ${p}");
        assert!(expand("x ${i%0}", 1).is_err());
        assert_eq!(
            measurement("security group rule create --ingress x"),
            "security_group_rule_create"
        );
    }

    #[test]
    fn lines_are_checked_against_the_vocabulary() {
        assert!(check_line("network create net${i}", None).is_ok());
        let e = check_line("network create --bogus net${i}", None).unwrap_err();
        assert!(e.contains("--bogus"), "{e}");
    }
}
