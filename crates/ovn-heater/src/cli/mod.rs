//! Command-line definition and routing. One file per subcommand; this file only routes.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bench;
mod compare;
mod db;
mod docs;
pub(crate) mod duration;
mod fake_chassis;
mod kubernetes;
mod lab;
mod openstack;
mod report;
pub(crate) mod run;
mod run_json;
mod snapshot;

/// Scale tests for OVN's control plane, driven the way OpenStack Neutron drives it.
#[derive(Parser, Debug)]
#[command(name = "ovn-heater", version, about, long_about = None)]
pub struct Cli {
    /// More log output on stderr (-v info, -vv debug; RUST_LOG overrides).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// No progress or informational lines on stderr; warnings and errors are still printed.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Talk to any OVSDB server: dump a database, watch a table.
    Db(db::Args),
    /// Start, inspect and stop a local OVN lab (central DBs, northd, chassis in namespaces).
    Lab(lab::Args),
    /// The OpenStack Neutron mimic: walkthrough and replay of Neutron actions; purge of what runs left.
    Openstack(openstack::Args),
    /// The ovn-kubernetes mimic: the ovnk-reference walkthrough.
    Kubernetes(kubernetes::Args),
    /// Take a normalized NB snapshot, or diff two.
    Snapshot(snapshot::Args),
    /// Run a scenario: bring up the lab, drive the workload, measure, report, clean up.
    #[command(after_help = "Examples:
  sudo ovn-heater run scenarios/openstack-base.yml
  sudo ovn-heater run scenarios/openstack-base.yml --set openstack_base.n_hypervisors=4 --label patch-v2
  ovn-heater run scenarios/openstack-base.yml --check
  sudo ovn-heater -q run scenarios/openstack-base.yml --json > run.json
  ovn-heater run scenarios/openstack-base.yml --nb unix:/run/ovn/ovnnb_db.sock --sb unix:/run/ovn/ovnsb_db.sock --set cluster.chassis=emulated")]
    Run(run::Args),
    /// Compare two results directories side by side.
    #[command(after_help = "Examples:
  ovn-heater compare results/main-run results/patch-run
  ovn-heater compare results/main-run results/patch-run --json --threshold 10")]
    Compare(compare::Args),
    /// Render report.html again from a results.json.
    Report(report::Args),
    /// Run N emulated chassis against a Southbound DB until interrupted.
    #[command(after_help = "Example:
  ovn-heater fake-chassis --sb unix:/tmp/lab/sb.sock --count 100 --monitor-all
  ovn-heater fake-chassis --sb unix:/tmp/lab/sb.sock --count 300 --processing-delay 20ms --probe-interval 1m --status-interval 10s")]
    FakeChassis(fake_chassis::Args),
    /// Benchmarks that print measured figures.
    Bench(bench::Args),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    #[command(after_help = "Examples:
  ovn-heater completions bash > /etc/bash_completion.d/ovn-heater
  ovn-heater completions zsh > ~/.zfunc/_ovn-heater")]
    Completions(docs::CompletionsArgs),
    /// Print the man page, or write one page per command with --out.
    #[command(after_help = "Examples:
  ovn-heater man | man -l -
  ovn-heater man --out /usr/local/share/man/man1")]
    Man(docs::ManArgs),
}

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Db(a) => db::run(a).await,
        Command::Lab(a) => lab::run(a).await,
        Command::Openstack(a) => openstack::run(a).await,
        Command::Kubernetes(a) => kubernetes::run(a).await,
        Command::Snapshot(a) => snapshot::run(a).await,
        Command::Run(a) => run::run(a).await,
        Command::Compare(a) => compare::run(a).await,
        Command::Report(a) => report::run(a).await,
        Command::FakeChassis(a) => fake_chassis::run(a).await,
        Command::Bench(a) => bench::run(a).await,
        Command::Completions(a) => docs::completions(a),
        Command::Man(a) => docs::man(a),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use clap::CommandFactory;

    /// Every command a user runs shows an example in its `--help` (ours, or its long help's).
    #[test]
    fn every_leaf_command_help_has_an_example() {
        fn leaves(cmd: &mut clap::Command, path: String, out: &mut Vec<(String, String)>) {
            let names: Vec<String> = cmd
                .get_subcommands()
                .map(|c| c.get_name().to_owned())
                .filter(|n| n != "help")
                .collect();
            if names.is_empty() {
                out.push((path, cmd.render_long_help().to_string()));
                return;
            }
            for name in names {
                let sub = cmd.find_subcommand_mut(&name).expect("listed above");
                leaves(sub, format!("{path} {name}"), out);
            }
        }
        let mut all = Vec::new();
        leaves(&mut super::Cli::command(), "ovn-heater".into(), &mut all);
        assert!(all.len() > 15, "{} commands", all.len());
        let missing: Vec<&str> = all
            .iter()
            .filter(|(_, help)| !help.contains("Example"))
            .map(|(path, _)| path.as_str())
            .collect();
        assert!(missing.is_empty(), "--help without an example: {missing:?}");
    }

    /// Every command that prints results has `--json` (issue #15): all but those whose output
    /// is JSON already (`db dump`, `db watch`) or not a result (`completions`, `man`).
    #[test]
    fn every_command_printing_results_has_json() {
        fn walk(cmd: &clap::Command, path: String, exempt: &[&str], missing: &mut Vec<String>) {
            let has_json = cmd.get_arguments().any(|a| a.get_long() == Some("json"));
            let subs: Vec<&clap::Command> = cmd.get_subcommands().filter(|c| c.get_name() != "help").collect();
            // A command with subcommands has --json when it does something itself (`snapshot`).
            let acts = subs.is_empty() || cmd.is_args_conflicts_with_subcommands_set();
            if acts && !has_json && !exempt.contains(&path.as_str()) {
                missing.push(path.clone());
            }
            for sub in subs {
                walk(sub, format!("{path} {}", sub.get_name()), exempt, missing);
            }
        }
        let check = |exempt: &[&str]| {
            let mut missing = Vec::new();
            let mut cli = super::Cli::command();
            cli.build();
            walk(&cli, "ovn-heater".into(), exempt, &mut missing);
            missing
        };
        let exempt = [
            "ovn-heater db dump",
            "ovn-heater db watch",
            "ovn-heater completions",
            "ovn-heater man",
        ];
        assert_eq!(check(&exempt), Vec::<String>::new(), "commands without --json");
        assert_eq!(check(&exempt[..3]), ["ovn-heater man"], "the walk sees every command");
    }

    /// Every visible time-valued flag is `--x <DURATION>` (one parser: cli/duration.rs), and
    /// no visible flag name carries a unit.
    #[test]
    fn every_time_valued_flag_takes_a_duration() {
        fn walk(cmd: &clap::Command, path: &str, bad: &mut Vec<String>) {
            for arg in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
                let Some(long) = arg.get_long() else { continue };
                let timed = ["timeout", "interval", "delay", "settle", "timer", "probe"]
                    .iter()
                    .any(|w| long.contains(w));
                let named = arg.get_value_names().is_some_and(|v| v.iter().any(|n| n == "DURATION"));
                if timed != named || long.ends_with("-ms") || long.ends_with("-s") {
                    bad.push(format!("{path} --{long}"));
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), bad);
            }
        }
        let mut bad = Vec::new();
        let mut cli = super::Cli::command();
        cli.build();
        walk(&cli, "ovn-heater", &mut bad);
        assert!(bad.is_empty(), "not --x <DURATION>: {bad:?}");
    }

    fn parse(args: &[&str]) -> Result<super::Cli, clap::Error> {
        use clap::Parser as _;
        super::Cli::try_parse_from(std::iter::once("ovn-heater").chain(args.iter().copied()))
    }

    fn bench_emu(args: &[&str]) -> super::bench::emu::Args {
        let all: Vec<&str> = ["bench", "emu"].iter().chain(args).copied().collect();
        match parse(&all).expect("bench emu parses").command {
            super::Command::Bench(super::bench::Args {
                which: super::bench::Which::Emu(a),
            }) => a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn duration_flags_take_units_and_plain_seconds() {
        let a = bench_emu(&[
            "--processing-delay",
            "20ms",
            "--probe-interval",
            "2m",
            "--batch-timeout",
            "90",
        ]);
        assert_eq!(a.processing_delay, Duration::from_millis(20));
        assert_eq!(a.probe_interval, Duration::from_secs(120));
        assert_eq!(a.batch_timeout, Duration::from_secs(90));
        let e = parse(&["bench", "emu", "--probe-interval", "soon"]).expect_err("not a duration");
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("500ms, 2s, 1m"), "{e}");
    }

    #[test]
    fn old_unit_suffixed_flags_keep_their_unit() {
        let a = bench_emu(&[
            "--processing-delay-ms",
            "20",
            "--probe-interval-s",
            "7",
            "--register-timeout-s",
            "30",
            "--batch-timeout-s",
            "40",
        ]);
        assert_eq!(a.processing_delay_ms, Some(Duration::from_millis(20)));
        assert_eq!(a.probe_interval, Duration::from_secs(7));
        assert_eq!(a.register_timeout, Some(Duration::from_secs(30)));
        assert_eq!(a.batch_timeout, Duration::from_secs(40));
        let e = parse(&[
            "bench",
            "emu",
            "--processing-delay-ms",
            "20",
            "--processing-delay",
            "1s",
        ])
        .expect_err("both");
        assert_eq!(e.kind(), clap::error::ErrorKind::ArgumentConflict);
    }

    #[test]
    fn monitor_all_is_one_switch_with_a_negation_everywhere() {
        assert!(!bench_emu(&[]).no_monitor_all, "bench emu defaults to monitor-all");
        assert!(bench_emu(&["--conditional"]).no_monitor_all, "old spelling");
        assert!(bench_emu(&["--no-monitor-all"]).no_monitor_all);
        assert!(
            !bench_emu(&["--no-monitor-all", "--monitor-all"]).no_monitor_all,
            "the last one wins"
        );
        let lab_up = |args: &[&str]| {
            let all: Vec<&str> = ["lab", "up", "--run-dir", "/tmp/x"]
                .iter()
                .chain(args)
                .copied()
                .collect();
            match parse(&all).expect("lab up parses").command {
                super::Command::Lab(l) => match l.action {
                    super::lab::Action::Up(up) => !up.lab.no_monitor_all,
                    other => panic!("{other:?}"),
                },
                other => panic!("{other:?}"),
            }
        };
        assert!(lab_up(&[]), "lab up defaults to monitor-all");
        assert!(lab_up(&["--monitor-all"]));
        assert!(!lab_up(&["--no-monitor-all"]));
    }

    #[test]
    fn former_millisecond_flags_refuse_a_bare_number() {
        let e = parse(&["lab", "up", "--run-dir", "/tmp/x", "--remote-probe-interval", "60000"]).expect_err("bare");
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("60000ms"), "{e}");
        assert!(parse(&[
            "lab",
            "up",
            "--run-dir",
            "/tmp/x",
            "--remote-probe-interval",
            "60s",
            "--election-timer",
            "1500ms"
        ])
        .is_ok());
    }
}
