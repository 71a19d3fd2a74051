//! Fidelity on a corpus: every sequence in `crates/ovn-openstack/tests/corpus/SEQ/steps.yml`
//! is replayed with `ovn-heater openstack replay` against a real NB + SB + ovn-northd, the NB
//! is dumped after every step, and each dump, normalized across the run, must equal the dump
//! real Neutron 21.0.0 wrote after the same step (`SEQ/NN-NAME.txt`, made by
//! `tools/neutron-oracle/regen-corpus.sh`, vendored: no Neutron is needed here).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ovn_openstack::snapshot::{diff_text, Normalizer};
use test_support::{Central, TempDir};

/// Runs the binary with a deadline (killed if it overruns): its exit code and output.
fn run_bounded(args: &[&str], timeout: Duration) -> (Option<i32>, String) {
    test_support::run_bounded(Command::new(env!("CARGO_BIN_EXE_ovn-heater")).args(args), timeout)
}

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../ovn-openstack/tests/corpus")
}

/// The dump name the oracle gives a step without `dump:` (tools/neutron-oracle/README.md).
fn slug(step: &serde_norway::Mapping) -> String {
    let (text, mut words) = if let Some(t) = step.get("openstack").and_then(|v| v.as_str()) {
        (t, vec![])
    } else if let Some(t) = step.get("ovn").and_then(|v| v.as_str()) {
        (t, vec!["ovn".to_owned()])
    } else {
        return "dump".into();
    };
    let mut n = 0;
    for w in text.split_whitespace() {
        if w.starts_with('-') || w.contains('$') || n == 4 {
            break;
        }
        let kept: String = w
            .chars()
            .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            .collect();
        if !kept.is_empty() {
            words.push(kept);
            n += 1;
        }
    }
    words.join("-")
}

/// Replays one sequence; returns the steps that differ (empty when all match).
fn replay_sequence(seq: &Path) -> Vec<String> {
    let name = seq.file_name().unwrap().to_string_lossy().into_owned();
    let text = std::fs::read_to_string(seq.join("steps.yml")).expect("steps.yml");
    let mut file: serde_norway::Value = serde_norway::from_str(&text).expect("steps.yml is YAML");
    let steps = file
        .get_mut("steps")
        .and_then(|s| s.as_sequence_mut())
        .expect("steps list");
    let mut names = Vec::new();
    for (i, step) in steps.iter_mut().enumerate() {
        let m = step.as_mapping_mut().expect("step mapping");
        let base = m
            .get("dump")
            .and_then(|d| d.as_str())
            .map(str::to_owned)
            .unwrap_or_else(|| slug(m));
        let dump = format!("{:02}-{base}", i + 1);
        m.insert("dump".into(), dump.clone().into());
        names.push(dump);
    }
    let central = Central::start(&format!("openstack_corpus_{name}"));
    let dir = TempDir::new(&format!("openstack_corpus_{name}"));
    let steps_path = dir.path().join("steps.yml");
    std::fs::write(&steps_path, serde_norway::to_string(&file).unwrap()).unwrap();
    let out = dir.path().join("dumps");
    let (nb, sb) = (central.nb_remote(), central.sb_remote());
    let (code, log) = run_bounded(
        &[
            "openstack",
            "replay",
            steps_path.to_str().unwrap(),
            "--nb",
            &nb,
            "--sb",
            &sb,
            "--dump-dir",
            out.to_str().unwrap(),
        ],
        Duration::from_secs(300),
    );
    assert_eq!(code, Some(0), "{name}: replay failed:\n{log}");
    let mut n = Normalizer::new();
    let mut failures = Vec::new();
    for step in &names {
        let doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join(format!("{step}.json"))).expect("dump"))
                .expect("json");
        let got = n.normalize(&doc).expect("normalize");
        let want_path = seq.join(format!("{step}.txt"));
        let want = std::fs::read_to_string(&want_path).unwrap_or_else(|e| panic!("{}: {e}", want_path.display()));
        // The header's first line is the command text, which both sides word the same only
        // when the step has `command:`; compare from the `# step:` line on.
        let body = |t: &str| t.lines().skip(1).collect::<Vec<_>>().join("\n");
        if body(&got) != body(&want) {
            failures.push(format!(
                "{name}/{step}: differs from real Neutron (- real, + ours):\n{}",
                diff_text(&want, &got)
            ));
        }
    }
    failures
}

#[test]
fn openstack_corpus_matches_real_neutron() {
    test_support::require_ovn!(
        "openstack_corpus_matches_real_neutron",
        ["ovsdb-server", "ovsdb-tool", "ovn-northd", "ovs-appctl"]
    );
    let mut seqs: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .expect("corpus dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("steps.yml").is_file())
        .collect();
    seqs.sort();
    let only = std::env::var("OPENSTACK_CORPUS").ok();
    let mut failures = Vec::new();
    let mut steps = 0;
    for seq in &seqs {
        if only.as_deref().is_some_and(|o| !o.split(',').any(|x| seq.ends_with(x))) {
            continue;
        }
        steps += std::fs::read_dir(seq)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "txt"))
            })
            .count();
        failures.extend(replay_sequence(seq));
    }
    assert!(steps > 0, "no corpus sequence found in {}", corpus_dir().display());
    assert!(
        failures.is_empty(),
        "{} of {steps} steps differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
