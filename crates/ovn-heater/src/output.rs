//! The only module that prints to the terminal on its own behalf: logging setup, the final
//! error, and the rules for informational lines (`-q` drops them) and for stdout when it
//! carries one JSON document (`--json`). Subcommands print their results (JSON, tables) to
//! stdout through `println!` in their own files, marked with `#[allow(clippy::print_stdout)]`.
#![allow(clippy::print_stderr, clippy::print_stdout)]

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};

/// `-q`: no progress or informational lines on stderr (warnings and errors stay).
static QUIET: AtomicBool = AtomicBool::new(false);
/// `--json` on a command whose stdout is one JSON document: text results go to stderr.
static STDOUT_IS_JSON: AtomicBool = AtomicBool::new(false);

/// `-v` once: info from our crates; twice: debug; `RUST_LOG` overrides. `-q` keeps the
/// default (warnings and errors) and only drops [`info`] lines and progress.
pub fn init_logging(verbose: u8, quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// Prints `error: <top>` then one `  cause: <..>` line per underlying cause.
pub fn print_error(err: &anyhow::Error) {
    let mut chain = err.chain();
    if let Some(top) = chain.next() {
        eprintln!("error: {top}");
    }
    for cause in chain {
        for (i, line) in cause.to_string().lines().enumerate() {
            if i == 0 {
                eprintln!("  cause: {line}");
            } else {
                eprintln!("         {line}");
            }
        }
    }
}

/// Whether `-q` was given.
pub fn is_quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// An informational line on stderr ("results: DIR", "bringing up the lab"); `-q` drops it.
pub fn info(line: &str) {
    if !is_quiet() {
        eprintln!("{line}");
    }
}

/// A warning on stderr; printed even with `-q`.
pub fn warn(line: &str) {
    eprintln!("{line}");
}

/// From now on stdout carries one JSON document (`--json`): [`text_result`] lines go to stderr.
pub fn reserve_stdout_for_json() {
    STDOUT_IS_JSON.store(true, Ordering::Relaxed);
}

/// A line of human-readable results (figures, tables): stdout, or an informational line on
/// stderr when stdout is reserved for a JSON document.
pub fn text_result(line: &str) {
    if STDOUT_IS_JSON.load(Ordering::Relaxed) {
        info(line);
    } else {
        println!("{line}");
    }
}

/// Whether stderr is a terminal (progress bars) or not (plain lines).
#[allow(dead_code)]
pub fn stderr_is_terminal() -> bool {
    std::io::stderr().is_terminal()
}
