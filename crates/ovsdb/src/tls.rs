//! TLS for `ssl:` remotes, with `rustls` (no OpenSSL): the client's identity and the CA it
//! trusts, read from PEM files as OVS tools take them (`--private-key`, `--certificate`,
//! `--ca-cert`), the server-certificate check OVS itself does, and the socket that encrypts
//! and decrypts on the connection's own buffers.
//!
//! OVS certificates (`ovs-pki`) name no host: their CN is a switch or controller name, and the
//! subject alternative name, when there is one, is that same name. So, like OVS, a server's
//! certificate is checked by its chain only: it must be signed (directly or through the
//! intermediates it sends) by the CA given, and be valid now. The name in the remote is not
//! compared with the certificate.
//!
//! The handshake runs on a tokio socket ([`tokio_rustls`]); the established session is then
//! driven by hand (`rustls::ClientConnection` is sans-I/O), so the connection keeps its plain
//! non-blocking reads and writes and its readiness only while waiting.
//!
//! Must not know: which database lives behind a remote; command-line flags.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::{Arc, Mutex};

use bytes::BytesMut;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::verify_server_cert_signed_by_trust_anchor;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{AlertDescription, CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::error::{Error, Result};

/// Ciphertext read from the socket at once (a TLS record is at most ~16 KiB, so a read carries
/// several); on the stack, so an idle connection holds no read buffer of its own.
const CIPHERTEXT_READ: usize = 64 * 1024;

/// The client side of TLS: our certificate and key, and the CA that must have signed the
/// server's certificate. Cheap to clone (one shared `rustls` configuration); build it once per
/// identity and give it to every client of that identity.
///
/// ```no_run
/// # fn demo() -> ovsdb::Result<()> {
/// use ovsdb::{ClientOptions, TlsConfig};
/// let tls = TlsConfig::from_files(
///     "pki/ovn-privkey.pem".as_ref(),
///     "pki/ovn-cert.pem".as_ref(),
///     "pki/switchca/cacert.pem".as_ref(),
/// )?;
/// let options = ClientOptions::new("ssl:127.0.0.1:6642")?.tls(tls);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct TlsConfig {
    config: Arc<ClientConfig>,
    /// Where the CA certificate came from, to name in errors.
    ca_source: Arc<str>,
    /// Where our certificate came from, to name in errors.
    certificate_source: Arc<str>,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig")
            .field("certificate", &self.certificate_source)
            .field("ca_cert", &self.ca_source)
            .finish()
    }
}

impl TlsConfig {
    /// Reads PEM files as `ovs-pki` writes them: a private key (PKCS#8, PKCS#1 or SEC1), a
    /// certificate (optionally followed by its intermediates), and one or more CA certificates.
    pub fn from_files(private_key: &Path, certificate: &Path, ca_cert: &Path) -> Result<TlsConfig> {
        let read = |what: &str, path: &Path| {
            std::fs::read(path).map_err(|e| Error::TlsConfig {
                reason: format!("cannot read the {what} {}: {e}", path.display()),
            })
        };
        Self::build(
            &read("private key", private_key)?,
            &private_key.display().to_string(),
            &read("certificate", certificate)?,
            &certificate.display().to_string(),
            &read("CA certificate", ca_cert)?,
            &ca_cert.display().to_string(),
        )
    }

    /// Like [`TlsConfig::from_files`], from PEM text in memory (certificates made in-process).
    /// `name` stands for the identity in errors (e.g. the chassis name).
    pub fn from_pem(private_key: &[u8], certificate: &[u8], ca_cert: &[u8], name: &str) -> Result<TlsConfig> {
        Self::build(
            private_key,
            &format!("{name} private key"),
            certificate,
            &format!("{name} certificate"),
            ca_cert,
            &format!("{name} CA certificate"),
        )
    }

    fn build(
        key_pem: &[u8],
        key_source: &str,
        cert_pem: &[u8],
        cert_source: &str,
        ca_pem: &[u8],
        ca_source: &str,
    ) -> Result<TlsConfig> {
        let bad = |reason: String| Error::TlsConfig { reason };
        let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| {
            bad(format!(
                "no private key in {key_source} (expected a PEM PRIVATE KEY block): {e}"
            ))
        })?;
        let chain = certificates(cert_pem, cert_source)?;
        let mut roots = RootCertStore::empty();
        for ca in certificates(ca_pem, ca_source)? {
            roots
                .add(ca)
                .map_err(|e| bad(format!("the CA certificate in {ca_source} is not usable: {e}")))?;
        }
        // ring rather than aws-lc-rs: a lighter build, and the OpenSSL of the OVS servers we
        // talk to offers no post-quantum key exchange for aws-lc-rs to add.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = ChainOnlyVerifier {
            roots: Arc::new(roots),
            algorithms: provider.signature_verification_algorithms,
        };
        let mut config = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| bad(format!("no TLS version in common with the crypto provider: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_client_auth_cert(chain, key)
            .map_err(|e| match e {
                rustls::Error::InconsistentKeys(_) => bad(format!(
                    "the private key in {key_source} does not belong to the certificate in {cert_source}"
                )),
                e => bad(format!("cannot use {key_source} with {cert_source}: {e}")),
            })?;
        // No session resumption, as OVS's own clients: ovsdb-server sets no session id
        // context, and OpenSSL then answers a resumption attempt from a verified client with
        // an internal_error alert. (Tickets are also kept per host name, and every server of
        // a lab is 127.0.0.1.)
        config.resumption = rustls::client::Resumption::disabled();
        Ok(TlsConfig {
            config: Arc::new(config),
            ca_source: ca_source.into(),
            certificate_source: cert_source.into(),
        })
    }

    /// Runs the handshake on a connected TCP socket; the error names the cause.
    pub(crate) async fn handshake(&self, host: &str, tcp: tokio::net::TcpStream, remote: &str) -> Result<TlsSocket> {
        let name = server_name(host).map_err(|reason| Error::Tls {
            remote: remote.to_owned(),
            reason,
        })?;
        let connector = tokio_rustls::TlsConnector::from(self.config.clone());
        let stream = connector.connect(name, tcp).await.map_err(|e| Error::Tls {
            remote: remote.to_owned(),
            reason: self.explain(&e),
        })?;
        let (tcp, session) = stream.into_inner();
        let tcp = tcp.into_std().map_err(|e| Error::Connect {
            remote: remote.to_owned(),
            source: e,
        })?;
        Ok(TlsSocket {
            tcp,
            session: Arc::new(Mutex::new(Session {
                tls: session,
                plaintext: 0,
                unread: Vec::new(),
                unread_at: 0,
                eof: false,
                failure: None,
            })),
        })
    }

    /// Says in words why a handshake failed, naming the files involved.
    fn explain(&self, e: &std::io::Error) -> String {
        match e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
            Some(tls) => self.explain_tls(tls),
            None if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                "the server closed the connection during the TLS handshake \
                 (is it a plain tcp: listener rather than pssl:? those close on a TLS hello)"
                    .into()
            }
            None => format!("TLS handshake failed: {e}"),
        }
    }

    /// Says in words what a TLS error means here. With TLS 1.3 the server judges our
    /// certificate after our side of the handshake is done, so its refusal (an alert) comes on
    /// the first read; that is explained the same way.
    pub(crate) fn explain_tls(&self, tls: &rustls::Error) -> String {
        let ca = &self.ca_source;
        let ours = &self.certificate_source;
        use rustls::Error as E;
        match tls {
            E::InvalidCertificate(CertificateError::UnknownIssuer | CertificateError::BadSignature) => {
                format!("the server's certificate is not signed by the CA in {ca} ({tls})")
            }
            E::InvalidCertificate(CertificateError::Expired | CertificateError::ExpiredContext { .. }) => {
                format!("the server's certificate has expired ({tls})")
            }
            E::InvalidCertificate(CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. }) => {
                format!("the server's certificate is not valid yet ({tls})")
            }
            E::InvalidCertificate(other) => format!("the server's certificate was refused: {other:?}"),
            E::AlertReceived(AlertDescription::UnknownCA) => format!(
                "the server does not trust our certificate {ours}: it is not signed by a CA the server was given (unknown CA)"
            ),
            E::AlertReceived(AlertDescription::CertificateExpired) => {
                format!("the server refused our certificate {ours}: it has expired")
            }
            E::AlertReceived(
                alert @ (AlertDescription::BadCertificate
                | AlertDescription::CertificateUnknown
                | AlertDescription::UnsupportedCertificate
                | AlertDescription::CertificateRevoked
                | AlertDescription::CertificateRequired
                | AlertDescription::DecryptError),
            ) => format!("the server refused our certificate {ours} (alert {alert:?})"),
            E::AlertReceived(AlertDescription::HandshakeFailure) => {
                "the server refused the handshake (no TLS version or cipher in common, or it wants a certificate we did not send)"
                    .into()
            }
            E::AlertReceived(alert) => format!("the server ended the handshake with alert {alert:?}"),
            E::InvalidMessage(_) | E::InappropriateMessage { .. } | E::InappropriateHandshakeMessage { .. } => {
                format!("the server does not speak TLS here (a plain tcp: listener rather than pssl:?): {tls}")
            }
            other => format!("TLS handshake failed: {other}"),
        }
    }
}

fn certificates(pem: &[u8], source: &str) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::TlsConfig {
            reason: format!("{source} is not a PEM certificate file: {e}"),
        })?;
    if certs.is_empty() {
        return Err(Error::TlsConfig {
            reason: format!("no certificate in {source} (expected a PEM CERTIFICATE block)"),
        });
    }
    Ok(certs)
}

/// The name the handshake carries (SNI for host names; IP addresses are sent as such).
fn server_name(host: &str) -> std::result::Result<ServerName<'static>, String> {
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Ok(ServerName::IpAddress(ip.into()));
    }
    ServerName::try_from(host.to_owned()).map_err(|e| format!("{host:?} is not a host name TLS accepts: {e}"))
}

/// Checks the server's certificate chain against our CA, and nothing else: OVS certificates
/// carry no host name to compare with (see the module docs).
#[derive(Debug)]
struct ChainOnlyVerifier {
    roots: Arc<RootCertStore>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for ChainOnlyVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let cert = ParsedCertificate::try_from(end_entity)?;
        verify_server_cert_signed_by_trust_anchor(&cert, &self.roots, intermediates, now, self.algorithms.all)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// An established TLS session on a non-blocking TCP socket. Clones (one per descriptor the
/// connection registers with the poller) share the session: the reader decrypts, callers
/// encrypt, each under its lock.
pub(crate) struct TlsSocket {
    tcp: std::net::TcpStream,
    session: Arc<Mutex<Session>>,
}

struct Session {
    tls: rustls::ClientConnection,
    /// Decrypted bytes the session holds that the reader has not taken yet.
    plaintext: usize,
    /// Ciphertext read from the socket that the session could not take yet (a read brought
    /// more than the reader had room for), from `unread_at` on; unallocated otherwise.
    unread: Vec<u8>,
    unread_at: usize,
    /// The peer closed the TCP connection (reported once the plaintext before it is read).
    eof: bool,
    /// Why the session failed after the handshake (e.g. the server's alert refusing our
    /// certificate, which TLS 1.3 delivers only then).
    failure: Option<rustls::Error>,
}

impl Session {
    /// Writes the records the session has queued; `Ok(false)` if the socket is full.
    fn flush(&mut self, tcp: &std::net::TcpStream) -> std::io::Result<bool> {
        while self.tls.wants_write() {
            match self.tls.write_tls(&mut &*tcp) {
                Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Hands `ciphertext` to the session and decrypts the records it completes; returns how
    /// much the session took: all of it, unless decrypted bytes pile up unread (rustls holds
    /// a bounded amount) and must be taken first.
    fn feed(&mut self, tcp: &std::net::TcpStream, mut ciphertext: &[u8]) -> std::io::Result<usize> {
        let total = ciphertext.len();
        while !ciphertext.is_empty() {
            match self.tls.read_tls(&mut ciphertext) {
                Ok(0) => break,
                Ok(_) => {}
                // "received plaintext buffer full": read what is decrypted, then feed the rest.
                Err(_) if self.plaintext > 0 => break,
                Err(e) => return Err(e),
            }
            let outcome = self.tls.process_new_packets();
            // Alerts, and answers such as a key update, go out now (best effort).
            let _ = self.flush(tcp);
            match outcome {
                Ok(state) => self.plaintext = state.plaintext_bytes_to_read(),
                Err(e) => {
                    let err = std::io::Error::new(std::io::ErrorKind::InvalidData, format!("TLS: {e}"));
                    self.failure = Some(e);
                    return Err(err);
                }
            }
        }
        Ok(total - ciphertext.len())
    }

    /// Moves up to `max` decrypted bytes into `buf` (zeroing only as many as are moved).
    fn read_plaintext(&mut self, buf: &mut BytesMut, max: usize) -> std::io::Result<usize> {
        let n = self.plaintext.min(max);
        let start = buf.len();
        buf.resize(start + n, 0);
        if let Err(e) = self.tls.reader().read_exact(&mut buf[start..]) {
            buf.truncate(start);
            return Err(e);
        }
        self.plaintext -= n;
        Ok(n)
    }

    fn feed_unread(&mut self, tcp: &std::net::TcpStream) -> std::io::Result<usize> {
        let unread = std::mem::take(&mut self.unread);
        let taken = self.feed(tcp, &unread[self.unread_at..]);
        self.unread = unread;
        let taken = taken?;
        self.unread_at += taken;
        if self.unread_at == self.unread.len() {
            self.unread = Vec::new();
            self.unread_at = 0;
        }
        Ok(taken)
    }
}

impl TlsSocket {
    fn session(&self) -> std::sync::MutexGuard<'_, Session> {
        self.session.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn try_clone(&self) -> std::io::Result<TlsSocket> {
        Ok(TlsSocket {
            tcp: self.tcp.try_clone()?,
            session: self.session.clone(),
        })
    }

    /// Encrypts as much of `bytes` as the session buffers and writes what the socket takes.
    /// Records queued earlier go first: while they cannot, this takes nothing (`WouldBlock`).
    pub(crate) fn send(&self, bytes: &[u8]) -> std::io::Result<usize> {
        let mut session = self.session();
        if !session.flush(&self.tcp)? {
            return Err(std::io::ErrorKind::WouldBlock.into());
        }
        let taken = session.tls.writer().write(bytes)?;
        session.flush(&self.tcp)?;
        Ok(taken)
    }

    /// Writes records still queued; `Ok(false)` if the socket is full (wait until writable).
    pub(crate) fn flush(&self) -> std::io::Result<bool> {
        self.session().flush(&self.tcp)
    }

    /// Whether input is waiting inside the session, so the reader must not wait for the
    /// socket before reading again.
    pub(crate) fn has_buffered_input(&self) -> bool {
        let session = self.session();
        session.plaintext > 0 || session.unread_at < session.unread.len() || session.eof
    }

    /// Reads decrypted bytes into `buf`'s spare capacity (at most `max`): `Ok(0)` once the
    /// peer closed, `WouldBlock` when nothing is there. One read of the socket at most. Also
    /// says whether the socket is known drained: its read returned less than it asked for, so
    /// a next read would only say `WouldBlock` (what is left in the session, decrypted or not,
    /// is [`TlsSocket::has_buffered_input`]).
    pub(crate) fn recv_draining(&self, buf: &mut BytesMut, max: usize) -> std::io::Result<(usize, bool)> {
        let mut session = self.session();
        let room = (buf.capacity() - buf.len()).clamp(1, max);
        let mut got = 0;
        let mut drained = false;
        loop {
            if session.plaintext > 0 {
                got += session.read_plaintext(buf, room - got)?;
                if got == room {
                    return Ok((got, drained));
                }
            }
            if session.unread_at < session.unread.len() {
                if session.feed_unread(&self.tcp)? == 0 && session.plaintext == 0 {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        "TLS: the session takes no more input",
                    ));
                }
                continue;
            }
            if got > 0 {
                return Ok((got, drained));
            }
            if session.eof {
                return Ok((0, drained));
            }
            // Not zeroed: clearing 64 KiB for every read of a message of a few hundred bytes
            // showed in the 1,000-VM tester's profile (and evicts the cache for nothing).
            let mut chunk = std::mem::MaybeUninit::<[u8; CIPHERTEXT_READ]>::uninit();
            let n = loop {
                // SAFETY: `chunk` is writable memory of CIPHERTEXT_READ bytes; the kernel writes
                // at most that many and we use only the `n` it reports.
                let n = unsafe { libc::recv(self.tcp.as_raw_fd(), chunk.as_mut_ptr().cast(), CIPHERTEXT_READ, 0) };
                if n >= 0 {
                    break n as usize;
                }
                let err = std::io::Error::last_os_error();
                if err.kind() != std::io::ErrorKind::Interrupted {
                    return Err(err);
                }
            };
            if n == 0 {
                // Lets the session tell a clean close (close_notify) from a cut; either way the
                // plaintext before it is read first.
                let _ = session.tls.read_tls(&mut &[][..]);
                session.eof = true;
                continue;
            }
            drained = n < CIPHERTEXT_READ;
            // SAFETY: recv wrote the first `n` bytes of `chunk`.
            let chunk = unsafe { std::slice::from_raw_parts(chunk.as_ptr().cast::<u8>(), n) };
            let taken = session.feed(&self.tcp, chunk)?;
            if taken < n {
                session.unread = chunk[taken..].to_vec();
                session.unread_at = 0;
            }
        }
    }

    /// Why the session failed, if it did (see [`Session::failure`]).
    pub(crate) fn failure(&self) -> Option<rustls::Error> {
        self.session().failure.clone()
    }

    /// Ends the session (close_notify, best effort) and the TCP connection.
    pub(crate) fn shutdown(&self) {
        let mut session = self.session();
        session.tls.send_close_notify();
        let _ = session.flush(&self.tcp);
        let _ = self.tcp.shutdown(std::net::Shutdown::Both);
    }
}

impl AsRawFd for TlsSocket {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.tcp.as_raw_fd()
    }
}
