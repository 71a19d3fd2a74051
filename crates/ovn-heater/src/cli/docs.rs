//! `ovn-heater completions SHELL` and `ovn-heater man [--out DIR]`: shell completions and man
//! pages generated from the clap definition itself, so they never drift from `--help`.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::CommandFactory as _;

use crate::error::Failure;

#[derive(clap::Args, Debug)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(clap::Args, Debug)]
pub struct ManArgs {
    /// Write one page per command into DIR (ovn-heater.1, ovn-heater-run.1, ...; created if
    /// missing) instead of printing the top-level page on stdout.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// Prints the completion script for `args.shell` on stdout.
pub fn completions(args: CompletionsArgs) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    clap_complete::generate(args.shell, &mut super::Cli::command(), "ovn-heater", &mut out);
    out.flush().context("cannot write the completion script")?;
    Ok(ExitCode::SUCCESS)
}

/// Prints the top-level man page, or writes every command's page into `--out`.
pub fn man(args: ManArgs) -> anyhow::Result<ExitCode> {
    let cmd = super::Cli::command();
    match args.out {
        None => {
            let mut out = std::io::stdout().lock();
            clap_mangen::Man::new(cmd)
                .render(&mut out)
                .and_then(|()| out.flush())
                .context("cannot write the man page")?;
        }
        Some(dir) => {
            std::fs::create_dir_all(&dir)
                .map_err(|e| Failure::bad_input(format!("--out {}: cannot create it: {e}", dir.display())))?;
            clap_mangen::generate_to(cmd, &dir)
                .with_context(|| format!("cannot write the man pages into {}", dir.display()))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shell_gets_a_script_naming_the_subcommands() {
        for shell in [
            clap_complete::Shell::Bash,
            clap_complete::Shell::Zsh,
            clap_complete::Shell::Fish,
            clap_complete::Shell::Elvish,
            clap_complete::Shell::PowerShell,
        ] {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut crate::cli::Cli::command(), "ovn-heater", &mut script);
            let script = String::from_utf8(script).expect("UTF-8");
            for sub in ["run", "compare", "fake-chassis", "completions"] {
                assert!(script.contains(sub), "{shell}: no {sub}");
            }
        }
    }

    #[test]
    fn man_pages_exist_for_every_command() {
        let dir = test_support::TempDir::new("man_pages");
        man(ManArgs {
            out: Some(dir.path().join("man1")),
        })
        .expect("man --out");
        for page in [
            "ovn-heater.1",
            "ovn-heater-run.1",
            "ovn-heater-bench-emu.1",
            "ovn-heater-lab-up.1",
        ] {
            let text = std::fs::read_to_string(dir.path().join("man1").join(page)).expect(page);
            assert!(text.contains(".TH"), "{page} is roff");
        }
    }
}
