//! The lab's own PKI for `enable_ssl`: a CA made for the run, and a key and certificate for
//! each daemon and chassis, CN = its name (SB RBAC compares a chassis' CN with the rows it
//! writes). Made in-process with `rcgen` (ECDSA P-256: milliseconds per certificate, where
//! `ovs-pki`'s RSA keys take a fraction of a second each, which a farm of a thousand emulated
//! chassis would feel).
//!
//! Files live in `DIR/pki/`: `cacert.pem`, `cakey.pem` (so another process, e.g. a
//! `fake-chassis` farm, can issue more), and `<name>-privkey.pem` / `<name>-cert.pem`, the
//! layout and names `ovs-pki` uses. Keys are written mode 0600.
//!
//! Must not know: which daemon uses which certificate (the caller names them).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

const CA_CERT: &str = "cacert.pem";
const CA_KEY: &str = "cakey.pem";

/// A private key, its certificate and the CA certificate: what OVS daemons take as
/// `--private-key`, `--certificate` and `--ca-cert`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsFiles {
    pub private_key: PathBuf,
    pub certificate: PathBuf,
    pub ca_cert: PathBuf,
}

impl TlsFiles {
    /// The files as OVS daemon options (`--private-key=…` …).
    pub fn daemon_args(&self) -> Vec<String> {
        vec![
            format!("--private-key={}", self.private_key.display()),
            format!("--certificate={}", self.certificate.display()),
            format!("--ca-cert={}", self.ca_cert.display()),
        ]
    }

    /// The files loaded for an `ovsdb` client.
    pub fn client_tls(&self) -> Result<ovsdb::TlsConfig> {
        ovsdb::TlsConfig::from_files(&self.private_key, &self.certificate, &self.ca_cert)
            .map_err(|e| Error::ovsdb("cannot load the lab's TLS files", e))
    }
}

/// The CA of one lab.
pub struct LabPki {
    dir: PathBuf,
    issuer: Issuer<'static, KeyPair>,
    ca_pem: String,
}

impl std::fmt::Debug for LabPki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LabPki").field("dir", &self.dir).finish()
    }
}

/// The CA's parameters: the same every time for one lab, so the issuer can be rebuilt from
/// the key alone when another process opens the PKI.
fn ca_params(lab: &str) -> Result<CertificateParams> {
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(pki_error)?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "ovn-heater");
    dn.push(DnType::CommonName, format!("ovn-heater lab {lab} CA"));
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(params)
}

fn pki_error(e: rcgen::Error) -> Error {
    Error::Pki(e.to_string())
}

fn write_file(path: &Path, text: &str, private: bool) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    if private {
        options.mode(0o600);
    }
    options
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))
}

impl LabPki {
    /// A new CA for the lab named `lab`, written to `dir` (created if missing).
    pub fn create(dir: &Path, lab: &str) -> Result<LabPki> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
        let key = KeyPair::generate().map_err(pki_error)?;
        let params = ca_params(lab)?;
        let ca_pem = params.self_signed(&key).map_err(pki_error)?.pem();
        write_file(&dir.join(CA_KEY), &key.serialize_pem(), true)?;
        write_file(&dir.join(CA_CERT), &ca_pem, false)?;
        Ok(LabPki {
            dir: dir.to_owned(),
            issuer: Issuer::new(params, key),
            ca_pem,
        })
    }

    /// The CA that [`LabPki::create`] wrote to `dir` for the lab named `lab`.
    pub fn open(dir: &Path, lab: &str) -> Result<LabPki> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read_to_string(&path).map_err(|e| Error::io(format!("cannot read {}", path.display()), e))
        };
        let key = KeyPair::from_pem(&read(CA_KEY)?).map_err(pki_error)?;
        Ok(LabPki {
            dir: dir.to_owned(),
            issuer: Issuer::new(ca_params(lab)?, key),
            ca_pem: read(CA_CERT)?,
        })
    }

    /// The CA certificate file.
    pub fn ca_cert(&self) -> PathBuf {
        self.dir.join(CA_CERT)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A new key and a certificate with CN = `name`, as PEM text (nothing written).
    pub fn issue_pem(&self, name: &str) -> Result<(String, String)> {
        let key = KeyPair::generate().map_err(pki_error)?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(pki_error)?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "ovn-heater");
        dn.push(DnType::CommonName, name);
        params.distinguished_name = dn;
        params.is_ca = IsCa::NoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        // Servers and clients alike (a relay is both).
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&key, &self.issuer).map_err(pki_error)?;
        Ok((key.serialize_pem(), cert.pem()))
    }

    /// [`LabPki::issue_pem`] written as `<name>-privkey.pem` and `<name>-cert.pem`.
    pub fn issue(&self, name: &str) -> Result<TlsFiles> {
        self.issue_into(&self.dir, name)
    }

    /// Like [`LabPki::issue`], into `dir` (created if missing), with a copy of the CA
    /// certificate there (`cacert.pem`): everything a farm on another host needs.
    pub fn issue_into(&self, dir: &Path, name: &str) -> Result<TlsFiles> {
        let (key, cert) = self.issue_pem(name)?;
        std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
        let files = TlsFiles {
            private_key: dir.join(format!("{name}-privkey.pem")),
            certificate: dir.join(format!("{name}-cert.pem")),
            ca_cert: dir.join(CA_CERT),
        };
        if dir != self.dir {
            write_file(&files.ca_cert, &self.ca_pem, false)?;
        }
        write_file(&files.private_key, &key, true)?;
        write_file(&files.certificate, &cert, false)?;
        Ok(files)
    }

    /// A client identity with CN = `name`, made in memory (an emulated chassis).
    pub fn client_tls(&self, name: &str) -> ovsdb::Result<ovsdb::TlsConfig> {
        let (key, cert) = self
            .issue_pem(name)
            .map_err(|e| ovsdb::Error::TlsConfig { reason: e.to_string() })?;
        ovsdb::TlsConfig::from_pem(key.as_bytes(), cert.as_bytes(), self.ca_pem.as_bytes(), name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificates_load_as_client_identities_and_reopen_signs_alike() {
        let dir = std::env::temp_dir().join(format!("ovn-lab-pki-test-{}", std::process::id()));
        let pki = LabPki::create(&dir, "t").unwrap();
        let files = pki.issue("hv1").unwrap();
        files.client_tls().unwrap();
        pki.client_tls("hv2").unwrap();
        let mode = std::fs::metadata(&files.private_key).unwrap().permissions();
        assert_eq!(std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777, 0o600);
        let again = LabPki::open(&dir, "t").unwrap();
        again.issue("hv3").unwrap().client_tls().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
