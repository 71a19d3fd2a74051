//! Bringing a lab up so that Ctrl-C or SIGTERM during bring-up tears it down, and lab errors
//! mapped to exit codes; shared by `run`, `lab up`, the benchmarks and the ovn-kubernetes driver.

use anyhow::Context as _;
use ovn_lab::{Lab, LabSpec};

use crate::error::Failure;

/// Maps a lab error to the README's exit codes: preflight problems (root, packages, names,
/// run dir, bad spec) are 2, everything else 3.
pub fn lab_failure(err: ovn_lab::Error) -> anyhow::Error {
    let code = if err.is_preflight() {
        crate::error::EXIT_BAD_INPUT
    } else {
        crate::error::EXIT_ENVIRONMENT
    };
    Failure {
        code,
        message: err.to_string(),
    }
    .into()
}

/// Brings a lab up, tearing down what was started when SIGINT/SIGTERM arrives first.
pub async fn up_interruptible(spec: LabSpec) -> anyhow::Result<Lab> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot install the SIGTERM handler")?;
    let mut signal = std::pin::pin!(async {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    });
    tokio::select! {
        biased;
        // Dropping the bring-up future runs its teardown guard.
        _ = &mut signal => Err(Failure::interrupted().into()),
        r = Lab::up(spec) => match r {
            Ok(lab) => Ok(lab),
            // A Ctrl-C reaches the whole process group: a command forked just before it can
            // die of it and fail bring-up before the signal reaches us. Then it is an interrupt.
            Err(e) => match tokio::time::timeout(std::time::Duration::from_millis(300), &mut signal).await {
                Ok(()) => Err(Failure::interrupted().into()),
                Err(_) => Err(lab_failure(e)),
            },
        },
    }
}
