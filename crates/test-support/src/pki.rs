//! Certificates made the way OVS deployments make them: `ovs-pki` (a CA, then one key and
//! certificate per daemon or chassis, `-u` so the CN is exactly the name RBAC compares), and
//! `openssl ca` for the odd ones tests need (an expired certificate signed by the same CA).
//!
//! ```no_run
//! use test_support::Pki;
//! test_support::require_ovn!("my_test", ["ovs-pki", "openssl"]);
//! let pki = Pki::new("my_test");
//! let server = pki.issue("ovsdb-server");
//! let chassis = pki.issue("hv1"); // CN = hv1
//! let _expired = pki.issue_expired("old");
//! let other = Pki::new("my_test_other"); // a foreign CA
//! # let _ = (server.private_key, chassis.certificate, other.ca_cert());
//! ```
//!
//! Must not know: the `ovsdb` crate.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::TempDir;

/// A private key, its certificate and the CA certificate that signed it: what `ovsdb-server`
/// and OVS clients take as `--private-key`, `--certificate` and `--ca-cert`.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub private_key: PathBuf,
    pub certificate: PathBuf,
    pub ca_cert: PathBuf,
}

impl TlsFiles {
    /// The three files as `ovsdb-server`/`ovn-*` command-line options.
    pub fn daemon_args(&self) -> Vec<String> {
        vec![
            format!("--private-key={}", self.private_key.display()),
            format!("--certificate={}", self.certificate.display()),
            format!("--ca-cert={}", self.ca_cert.display()),
        ]
    }
}

/// An `ovs-pki` PKI in a temp dir (removed on drop unless the test panicked).
pub struct Pki {
    dir: TempDir,
}

fn run(program: &str, args: &[&str], cwd: &Path) {
    let bin = crate::find_binary(program).unwrap_or_else(|| panic!("{program} not found (require_ovn! it first)"));
    let out = Command::new(&bin)
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {} failed ({}): {}{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Pki {
    /// `ovs-pki init`: a new CA (switchca and controllerca; certificates here are `switch`).
    pub fn new(test: &str) -> Pki {
        let dir = TempDir::new(&format!("{}-pki", test.chars().take(30).collect::<String>()));
        let pki = Pki { dir };
        let root = pki.root();
        run(
            "ovs-pki",
            &[&format!("--dir={}", root.display()), "--log=ovs-pki.log", "init"],
            pki.dir.path(),
        );
        pki
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("pki")
    }

    /// The CA certificate (`switchca/cacert.pem`).
    pub fn ca_cert(&self) -> PathBuf {
        self.root().join("switchca").join("cacert.pem")
    }

    /// A key and a certificate with CN = `name` (nothing appended), signed by this CA.
    pub fn issue(&self, name: &str) -> TlsFiles {
        run(
            "ovs-pki",
            &[
                &format!("--dir={}", self.root().display()),
                "--log=ovs-pki.log",
                "-u",
                "req+sign",
                name,
                "switch",
            ],
            self.dir.path(),
        );
        self.files(name)
    }

    /// Like [`Pki::issue`], but the certificate expired long ago (valid 1-2 January 2020).
    pub fn issue_expired(&self, name: &str) -> TlsFiles {
        run(
            "ovs-pki",
            &[
                &format!("--dir={}", self.root().display()),
                "--log=ovs-pki.log",
                "-u",
                "req",
                name,
            ],
            self.dir.path(),
        );
        let req = self.dir.path().join(format!("{name}-req.pem"));
        let cert = self.dir.path().join(format!("{name}-cert.pem"));
        run(
            "openssl",
            &[
                "ca",
                "-config",
                "ca.cnf",
                "-batch",
                "-startdate",
                "20200101000000Z",
                "-enddate",
                "20200102000000Z",
                "-in",
                &req.display().to_string(),
                "-out",
                &cert.display().to_string(),
            ],
            &self.root().join("switchca"),
        );
        self.files(name)
    }

    fn files(&self, name: &str) -> TlsFiles {
        TlsFiles {
            private_key: self.dir.path().join(format!("{name}-privkey.pem")),
            certificate: self.dir.path().join(format!("{name}-cert.pem")),
            ca_cert: self.ca_cert(),
        }
    }

    /// Where the files are (for assertion messages).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}
