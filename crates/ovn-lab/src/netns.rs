//! Network namespaces, veths and Linux bridges, through iproute2's `ip`.
//!
//! Every link is created directly inside a namespace of the lab (`ip link add ... netns`), so
//! the root namespace never sees, even briefly, an interface of ours, and interface names only
//! need to be unique within one namespace.
//!
//! Must not know: OVS, OVN, which namespaces make a lab.

use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::process::Cmd;

/// `ip` bound to its path, so every call site reads like the shell command it runs.
#[derive(Clone, Debug)]
pub(crate) struct Ip {
    path: PathBuf,
}

impl Ip {
    pub fn new(path: &Path) -> Self {
        Ip {
            path: path.to_path_buf(),
        }
    }

    fn cmd<I: IntoIterator<Item = S>, S: Into<String>>(&self, args: I) -> Cmd {
        Cmd::new(&self.path).args(args)
    }

    /// `ip -n NS <args>` (or plain `ip <args>`).
    pub async fn run(&self, netns: &str, args: &[&str]) -> Result<String> {
        let mut a = vec!["-n", netns];
        a.extend_from_slice(args);
        self.cmd(a).run().await
    }

    pub async fn add_netns(&self, name: &str) -> Result<()> {
        self.cmd(["netns", "add", name]).run().await?;
        self.run(name, &["link", "set", "lo", "up"]).await?;
        Ok(())
    }

    /// A veth pair: `a_name` in `a_ns`, `b_name` in `b_ns`, both up.
    pub async fn add_veth(&self, a_ns: &str, a_name: &str, b_ns: &str, b_name: &str) -> Result<()> {
        self.run(
            a_ns,
            &[
                "link", "add", a_name, "type", "veth", "peer", "name", b_name, "netns", b_ns,
            ],
        )
        .await?;
        self.run(a_ns, &["link", "set", a_name, "up"]).await?;
        self.run(b_ns, &["link", "set", b_name, "up"]).await?;
        Ok(())
    }

    pub async fn add_bridge(&self, netns: &str, name: &str) -> Result<()> {
        self.run(netns, &["link", "add", name, "type", "bridge"]).await?;
        self.run(netns, &["link", "set", name, "up"]).await?;
        Ok(())
    }

    pub async fn set_master(&self, netns: &str, link: &str, bridge: &str) -> Result<()> {
        self.run(netns, &["link", "set", link, "master", bridge])
            .await
            .map(|_| ())
    }

    pub async fn add_address(&self, netns: &str, link: &str, cidr: &str) -> Result<()> {
        self.run(netns, &["addr", "add", cidr, "dev", link]).await.map(|_| ())
    }

    /// Whether `link` exists in `netns` (no error output for the common "not yet" case).
    pub fn has_link(&self, netns: &str, link: &str) -> bool {
        std::process::Command::new(&self.path)
            .args(["-n", netns, "link", "show", link])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }
}

/// Namespaces whose name starts with `prefix-`, from `/run/netns` (where `ip netns` keeps them).
pub(crate) fn existing_with_prefix(prefix: &str) -> Vec<String> {
    let wanted = format!("{prefix}-");
    let mut v: Vec<String> = std::fs::read_dir("/run/netns")
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(&wanted))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}
