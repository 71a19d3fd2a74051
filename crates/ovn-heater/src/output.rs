//! The only module that prints to the terminal on its own behalf: logging setup and the final
//! error. Subcommands print their results (JSON, tables) to stdout through `println!` in their
//! own files, marked with `#[allow(clippy::print_stdout)]`.
#![allow(clippy::print_stderr)]

use std::io::IsTerminal;

/// `-v` once: info from our crates; twice: debug; `RUST_LOG` overrides.
pub fn init_logging(verbose: u8) {
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

/// Whether stderr is a terminal (progress bars) or not (plain lines).
#[allow(dead_code)]
pub fn stderr_is_terminal() -> bool {
    std::io::stderr().is_terminal()
}
