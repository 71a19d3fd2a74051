//! `--private-key FILE --certificate FILE --ca-cert FILE`: the TLS files of `ssl:` remotes,
//! named as OVS tools name them, flattened into every command that takes a remote.
//!
//! The files are PEM, as `ovs-pki` writes them. The server's certificate is checked against
//! `--ca-cert` by its chain only (OVS certificates name no host). An `ssl:` remote without the
//! three files is bad input (exit 2); files given for plain remotes are ignored, as OVS does.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ovsdb::{ClientOptions, TlsConfig};

use crate::error::Failure;

/// The TLS files for `ssl:` remotes.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct TlsArgs {
    /// Private key for ssl: remotes (PEM), e.g. /etc/ovn/ovn-privkey.pem.
    #[arg(long, value_name = "FILE")]
    pub private_key: Option<PathBuf>,
    /// Certificate for ssl: remotes (PEM), signed by a CA the server trusts; its CN is who
    /// SB RBAC takes us for.
    #[arg(long, value_name = "FILE")]
    pub certificate: Option<PathBuf>,
    /// CA certificate (PEM) that signed the server's certificate, e.g. /etc/ovn/ovnsb-ca.cert.
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    /// Loaded once, on first use.
    #[arg(skip)]
    loaded: OnceLock<TlsConfig>,
}

impl TlsArgs {
    /// Files for clients made in-process (the lab's own certificates).
    pub fn from_files(private_key: &Path, certificate: &Path, ca_cert: &Path) -> TlsArgs {
        TlsArgs {
            private_key: Some(private_key.to_owned()),
            certificate: Some(certificate.to_owned()),
            ca_cert: Some(ca_cert.to_owned()),
            loaded: OnceLock::new(),
        }
    }

    /// Whether all three files were given.
    pub fn given(&self) -> bool {
        self.private_key.is_some() && self.certificate.is_some() && self.ca_cert.is_some()
    }

    /// `options` with the TLS files when one of its remotes is `ssl:`; a bad-input error
    /// (exit 2) naming the flags when they are missing or the files are not usable.
    pub fn apply(&self, options: ClientOptions) -> anyhow::Result<ClientOptions> {
        if !options.needs_tls() {
            return Ok(options);
        }
        let remotes: Vec<String> = options.remotes.iter().map(ToString::to_string).collect();
        Ok(options.tls(self.config(&remotes.join(","))?))
    }

    /// The loaded files; `remote` names what needs them in the error.
    pub fn config(&self, remote: &str) -> anyhow::Result<TlsConfig> {
        if let Some(config) = self.loaded.get() {
            return Ok(config.clone());
        }
        let (Some(key), Some(cert), Some(ca)) = (&self.private_key, &self.certificate, &self.ca_cert) else {
            let missing: Vec<&str> = [
                ("--private-key FILE", self.private_key.is_none()),
                ("--certificate FILE", self.certificate.is_none()),
                ("--ca-cert FILE", self.ca_cert.is_none()),
            ]
            .into_iter()
            .filter_map(|(flag, missing)| missing.then_some(flag))
            .collect();
            return Err(Failure::bad_input(format!(
                "{remote} is an ssl: remote: give {} (PEM files, as ovs-pki makes them)",
                missing.join(" ")
            ))
            .into());
        };
        let config = TlsConfig::from_files(key, cert, ca).map_err(|e| Failure::bad_input(e.to_string()))?;
        Ok(self.loaded.get_or_init(|| config).clone())
    }

    /// Loads the three files (an `ovsdb` error naming what is missing or wrong).
    pub fn load(&self) -> ovsdb::Result<TlsConfig> {
        match (&self.private_key, &self.certificate, &self.ca_cert) {
            (Some(key), Some(cert), Some(ca)) => TlsConfig::from_files(key, cert, ca),
            _ => Err(ovsdb::Error::TlsConfig {
                reason: "ssl: remotes need --private-key, --certificate and --ca-cert".into(),
            }),
        }
    }

    /// The files with `{chassis}` in their names replaced by `chassis` (one certificate per
    /// emulated chassis, as RBAC needs: its CN must be the chassis name).
    pub fn for_chassis(&self, chassis: &str) -> TlsArgs {
        let fill = |p: &Option<PathBuf>| {
            p.as_ref()
                .map(|p| PathBuf::from(p.to_string_lossy().replace("{chassis}", chassis)))
        };
        TlsArgs {
            private_key: fill(&self.private_key),
            certificate: fill(&self.certificate),
            ca_cert: fill(&self.ca_cert),
            loaded: OnceLock::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssl_without_files_is_bad_input_naming_the_missing_flags() {
        let args = TlsArgs {
            certificate: Some("c.pem".into()),
            ..TlsArgs::default()
        };
        let err = args
            .apply(ClientOptions::new("ssl:127.0.0.1:6642").unwrap())
            .unwrap_err();
        assert_eq!(crate::error::exit_code(&err), crate::error::EXIT_BAD_INPUT);
        let text = err.to_string();
        assert!(text.contains("--private-key FILE --ca-cert FILE"), "{text}");
        assert!(!text.contains("--certificate FILE"), "{text}");
    }

    #[test]
    fn plain_remotes_need_no_files() {
        let options = TlsArgs::default()
            .apply(ClientOptions::new("unix:/x.sock,tcp:127.0.0.1:1").unwrap())
            .unwrap();
        assert!(options.tls.is_none());
    }

    #[test]
    fn chassis_placeholder_is_filled_in() {
        let args = TlsArgs {
            private_key: Some("pki/{chassis}-privkey.pem".into()),
            certificate: Some("pki/{chassis}-cert.pem".into()),
            ca_cert: Some("pki/cacert.pem".into()),
            ..TlsArgs::default()
        };
        let hv = args.for_chassis("hv-7");
        assert_eq!(hv.private_key.unwrap(), PathBuf::from("pki/hv-7-privkey.pem"));
        assert_eq!(hv.certificate.unwrap(), PathBuf::from("pki/hv-7-cert.pem"));
        assert_eq!(hv.ca_cert.unwrap(), PathBuf::from("pki/cacert.pem"));
    }
}
