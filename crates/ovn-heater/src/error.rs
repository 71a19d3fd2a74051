//! Exit codes and the errors that choose them.
//!
//! | code | meaning |
//! |------|---------|
//! | 0    | success |
//! | 1    | the run finished, but a check failed on OVN's side (`system` failures: ports not up, pings failed; fidelity diff) |
//! | 2    | bad input or failed preflight: YAML, CIDR, remote string, missing binary, not root |
//! | 3    | the lab or a database failed while running, or the run finished with `harness` failures and no `system` one |
//! | 130  | interrupted (Ctrl-C / SIGTERM); everything was torn down |

pub const EXIT_CHECK_FAILED: u8 = 1;
pub const EXIT_BAD_INPUT: u8 = 2;
pub const EXIT_ENVIRONMENT: u8 = 3;
pub const EXIT_INTERRUPTED: u8 = 130;

/// An error that knows its exit code. Attach with `Err(Failure::bad_input("...").into())`,
/// or wrap a cause: `.map_err(|e| Failure::bad_input_from(e))`.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

#[allow(dead_code)]
impl Failure {
    pub fn bad_input(message: impl Into<String>) -> Self {
        Failure {
            code: EXIT_BAD_INPUT,
            message: message.into(),
        }
    }
    pub fn check_failed(message: impl Into<String>) -> Self {
        Failure {
            code: EXIT_CHECK_FAILED,
            message: message.into(),
        }
    }
    /// A finished run that did not pass: exit 1 when OVN failed (`system`), 3 when only the
    /// harness did.
    pub fn checks_failed(blame: crate::metrics::FailureClass, message: impl Into<String>) -> Self {
        Failure {
            code: match blame {
                crate::metrics::FailureClass::Harness => EXIT_ENVIRONMENT,
                _ => EXIT_CHECK_FAILED,
            },
            message: message.into(),
        }
    }
    pub fn environment(message: impl Into<String>) -> Self {
        Failure {
            code: EXIT_ENVIRONMENT,
            message: message.into(),
        }
    }
    pub fn interrupted() -> Self {
        Failure {
            code: EXIT_INTERRUPTED,
            message: "interrupted; everything started was torn down".into(),
        }
    }
}

/// The exit code for an error chain: the first [`Failure`] in it decides; otherwise errors the
/// user can fix by changing input (bad remotes, schema mismatches) are 2, the rest 3.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if let Some(f) = cause.downcast_ref::<Failure>() {
            return f.code;
        }
        if let Some(e) = cause.downcast_ref::<ovsdb::Error>() {
            return match e {
                ovsdb::Error::InvalidRemote { .. }
                | ovsdb::Error::Schema(_)
                | ovsdb::Error::TlsConfig { .. }
                | ovsdb::Error::Tls { .. } => EXIT_BAD_INPUT,
                _ => EXIT_ENVIRONMENT,
            };
        }
        if cause.downcast_ref::<serde_norway::Error>().is_some() {
            return EXIT_BAD_INPUT;
        }
    }
    EXIT_ENVIRONMENT
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::FailureClass;

    #[test]
    fn failed_checks_exit_1_for_ovn_3_for_the_harness() {
        let code = |blame| exit_code(&anyhow::Error::new(Failure::checks_failed(blame, "x")).context("run"));
        assert_eq!(code(FailureClass::System), EXIT_CHECK_FAILED);
        assert_eq!(code(FailureClass::Harness), EXIT_ENVIRONMENT);
        assert_eq!(code(FailureClass::Skipped), EXIT_CHECK_FAILED);
    }
}
