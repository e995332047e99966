//! A certificate authority and node certificates for trying a deployment,
//! and the TLS set-up of every connection.
//!
//! `tiersync pki init DIR` writes a CA (`ca.pem`, `ca.key`) and the
//! master's policy-signing key pair (`policy-signing.key`,
//! `policy-signing.pub`). `tiersync pki issue DIR --role local --name
//! tokyo` writes `tokyo.pem` and `tokyo.key`, signed by that CA. A node
//! certificate carries its name as common name and DNS subject alternative
//! name, its role as organisational unit, and its site as locality.
//!
//! The certificates never expire (rcgen's default validity). That is
//! convenient for a trial and wrong for production, where certificates come
//! from the organisation's own CA with an expiry and a way to revoke them.
//!
//! Every connection is TLS 1.3 with both sides presenting a certificate
//! that chains to the configured CA, using rustls with the ring provider
//! only.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use ring::rand::SecureRandom as _;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use thiserror::Error;

use crate::config::TlsFiles;
use crate::ids::{PeerIdentity, Role, valid_name};

/// Why certificates or keys could not be made or used.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PkiError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A file exists and would be overwritten.
    #[error("{0} exists; remove it first to replace it")]
    Exists(PathBuf),
    /// A PEM file holds nothing usable.
    #[error("{path}: {message}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Certificate generation failed.
    #[error("certificate generation: {0}")]
    Generate(#[from] rcgen::Error),
    /// The TLS library refused the certificates or keys.
    #[error("TLS set-up: {0}")]
    Tls(#[from] rustls::Error),
    /// The CA certificate could not be used as a trust anchor.
    #[error("CA certificate: {0}")]
    Verifier(String),
    /// A name, role or site is not acceptable.
    #[error("{0}")]
    Usage(String),
    /// The system's random source failed.
    #[error("no randomness available from the operating system")]
    Random,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PkiError + '_ {
    move |source| PkiError::Io { path: path.to_owned(), source }
}

fn write_new(path: &Path, text: &str, private: bool) -> Result<(), PkiError> {
    if path.exists() {
        return Err(PkiError::Exists(path.to_owned()));
    }
    std::fs::write(path, text).map_err(io(path))?;
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::Permissions::from_mode(0o600);
        std::fs::set_permissions(path, mode).map_err(io(path))?;
    }
    #[cfg(not(unix))]
    let _ = private;
    Ok(())
}

/// Creates a CA and the policy-signing key pair in `dir`. Returns the
/// files written.
pub fn init(dir: &Path) -> Result<Vec<PathBuf>, PkiError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;

    // The CA: a self-signed certificate allowed to sign node certificates.
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "tiersync CA");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let cert = params.self_signed(&key)?;
    let (ca_pem, ca_key) = (dir.join("ca.pem"), dir.join("ca.key"));
    write_new(&ca_pem, &cert.pem(), false)?;
    write_new(&ca_key, &key.serialize_pem(), true)?;

    // The master's ed25519 policy-signing key, apart from TLS: it signs
    // policy content, which a compromised local server cannot forge.
    let mut secret = [0u8; 32];
    ring::rand::SystemRandom::new().fill(&mut secret).map_err(|_| PkiError::Random)?;
    let public = tiersync_engine::PolicySigner::from_secret(secret).public();
    let (sk, pk) = (dir.join("policy-signing.key"), dir.join("policy-signing.pub"));
    write_new(&sk, &format!("{}\n", hex(&secret)), true)?;
    write_new(&pk, &format!("{}\n", hex(&public)), false)?;
    Ok(vec![ca_pem, ca_key, sk, pk])
}

/// Issues a certificate for a node or operator, signed by the CA in `dir`.
/// Local servers and clients need a site; a local server's site defaults
/// to its name.
pub fn issue(
    dir: &Path,
    role: Role,
    name: &str,
    site: Option<&str>,
) -> Result<Vec<PathBuf>, PkiError> {
    if !valid_name(name) {
        return Err(PkiError::Usage(format!(
            "name `{name}` must be lower-case letters, digits, `-` and `.` (a DNS name)"
        )));
    }
    let site = match (role, site) {
        (Role::Local, None) => Some(name),
        (Role::Client, None) => {
            return Err(PkiError::Usage("a client certificate needs --site".into()));
        }
        (_, s) => s,
    };
    let ca_pem_path = dir.join("ca.pem");
    let ca_key_path = dir.join("ca.key");
    let ca_pem = std::fs::read_to_string(&ca_pem_path).map_err(io(&ca_pem_path))?;
    let ca_key_text = std::fs::read_to_string(&ca_key_path).map_err(io(&ca_key_path))?;
    let ca_key = KeyPair::from_pem(&ca_key_text)?;
    let issuer = Issuer::from_ca_cert_pem(&ca_pem, ca_key)?;

    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(vec![name.to_string()])?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    dn.push(DnType::OrganizationalUnitName, role.as_str());
    if let Some(site) = site {
        dn.push(DnType::LocalityName, site);
    }
    params.distinguished_name = dn;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    // Local servers are servers to their clients and clients of their
    // parent; one certificate serves both ways for every role.
    params.extended_key_usages =
        vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
    let cert = params.signed_by(&key, &issuer)?;
    let (pem, keyf) = (dir.join(format!("{name}.pem")), dir.join(format!("{name}.key")));
    write_new(&pem, &cert.pem(), false)?;
    write_new(&keyf, &key.serialize_pem(), true)?;
    Ok(vec![pem, keyf])
}

/// Lower-case hexadecimal.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads a 32-byte key written by [`init`] (64 hex digits).
pub fn read_key32(path: &Path) -> Result<[u8; 32], PkiError> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    let t = text.trim();
    let bad = || PkiError::Pem { path: path.to_owned(), message: "expected 64 hex digits".into() };
    if t.len() != 64 {
        return Err(bad());
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(t.get(2 * i..2 * i + 2).ok_or_else(bad)?, 16).map_err(|_| bad())?;
    }
    Ok(out)
}

/// The peer's identity from its end-entity certificate, or `None` when the
/// certificate lacks a name or role.
pub fn identity(cert: &CertificateDer<'_>) -> Option<PeerIdentity> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let subject = parsed.subject();
    let first = |it: &mut dyn Iterator<Item = &x509_parser::x509::AttributeTypeAndValue<'_>>| {
        it.next().and_then(|a| a.as_str().ok()).map(str::to_string)
    };
    let name = first(&mut subject.iter_common_name())?;
    let role = first(&mut subject.iter_organizational_unit())?.parse().ok()?;
    let site = first(&mut subject.iter_locality());
    Some(PeerIdentity { name, role, site })
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

struct Loaded {
    roots: Arc<RootCertStore>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

fn load(files: &TlsFiles) -> Result<Loaded, PkiError> {
    let pem_err = |path: &Path, e: rustls_pki_types::pem::Error| PkiError::Pem {
        path: path.to_owned(),
        message: e.to_string(),
    };
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(&files.ca).map_err(|e| pem_err(&files.ca, e))? {
        roots.add(c.map_err(|e| pem_err(&files.ca, e))?)?;
    }
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| pem_err(&files.cert, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| pem_err(&files.cert, e))?;
    if chain.is_empty() {
        let message = "no certificate in the file".into();
        return Err(PkiError::Pem { path: files.cert.clone(), message });
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| pem_err(&files.key, e))?;
    Ok(Loaded { roots: Arc::new(roots), chain, key })
}

/// This node's own identity, read from its certificate file.
pub fn own_identity(files: &TlsFiles) -> Result<PeerIdentity, PkiError> {
    let loaded = load(files)?;
    identity(&loaded.chain[0]).ok_or_else(|| PkiError::Pem {
        path: files.cert.clone(),
        message: "certificate has no tiersync name and role".into(),
    })
}

/// The TLS configuration of a server: TLS 1.3 only, and a client
/// certificate chaining to the CA is required.
pub fn server_config(files: &TlsFiles) -> Result<Arc<ServerConfig>, PkiError> {
    let l = load(files)?;
    let verifier = WebPkiClientVerifier::builder_with_provider(l.roots, provider())
        .build()
        .map_err(|e| PkiError::Verifier(e.to_string()))?;
    let cfg = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(l.chain, l.key)?;
    Ok(Arc::new(cfg))
}

/// The TLS configuration of a connecting node: TLS 1.3 only, the server's
/// certificate must chain to the CA and name the expected peer, and this
/// node presents its own certificate.
pub fn client_config(files: &TlsFiles) -> Result<Arc<ClientConfig>, PkiError> {
    let l = load(files)?;
    let cfg = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(l.roots)
        .with_client_auth_cert(l.chain, l.key)?;
    Ok(Arc::new(cfg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_certificates_carry_name_role_and_site() {
        let dir = tempfile::tempdir().unwrap();
        init(dir.path()).unwrap();
        issue(dir.path(), Role::Client, "pc1.tokyo", Some("tokyo")).unwrap();
        let files = TlsFiles {
            ca: dir.path().join("ca.pem"),
            cert: dir.path().join("pc1.tokyo.pem"),
            key: dir.path().join("pc1.tokyo.key"),
        };
        let id = own_identity(&files).unwrap();
        assert_eq!(id.name, "pc1.tokyo");
        assert_eq!(id.role, Role::Client);
        assert_eq!(id.site.as_deref(), Some("tokyo"));
        server_config(&files).unwrap();
        client_config(&files).unwrap();
        let sk = read_key32(&dir.path().join("policy-signing.key")).unwrap();
        let pk = read_key32(&dir.path().join("policy-signing.pub")).unwrap();
        assert_eq!(tiersync_engine::PolicySigner::from_secret(sk).public(), pk);
        assert!(matches!(init(dir.path()), Err(PkiError::Exists(_))));
    }
}
